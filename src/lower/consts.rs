//! Constants shared by the host and the generated kernels, defined once.
//! Templates receive them through their context, never as literals.

#![warn(missing_docs)]

/// WGSL prefill: queries per workgroup (one invocation per query row).
pub const WGSL_PREFILL_Q_TILE: u32 = 32;
/// WGSL prefill: keys staged in workgroup memory per step (at most; halved for large
/// head dims so the K and V tiles fit `WGSL_WORKGROUP_STORAGE_BYTES`).
pub const WGSL_PREFILL_K_TILE: u32 = 32;
/// WGSL: workgroup memory a kernel may use. WebGPU's default limit, so the kernels run
/// on any adapter without raising limits.
pub const WGSL_WORKGROUP_STORAGE_BYTES: u32 = 16384;
/// WGSL decode: invocations per workgroup (rounded down to whole K/V rows of loads;
/// one slot per invocation per tile). Also the merge's workgroup size.
pub const WGSL_DECODE_THREADS: u32 = 128;
/// WGSL decode: workgroups the host assumes run at once when it picks the work list's
/// chunk length (`runtime::worklist::choose_chunk`; wgpu reports no SM count). The
/// H200's 132 SMs × 8 resident 128-invocation workgroups; a smaller GPU just runs more
/// waves of the same chunks.
pub const WGSL_DECODE_CONCURRENT_WORKGROUPS: u32 = 1056;
/// WGSL decode: the same for a GQA layer (group ≥ 2). The driver gives the decode of
/// Llama-3-8B's shape (head_dim 128, group 4, f16) 158–168 registers per invocation,
/// so 3 workgroups of 128 per SM: 396 on the H200's 132 SMs (RESULTS, WGSL decode
/// session 11). The chunks this model picks with 396 took 0.90× the time of those with
/// 264 (the session-10 value, which beat 1056 by 0.74–1.01×) on Llama-3-8B (session 12):
/// the model fits best where it assumes the residency the registers allow.
pub const WGSL_DECODE_CONCURRENT_WORKGROUPS_GQA: u32 = 396;
/// WGSL decode: the same for a GQA layer of head_dim ≤ 64. The driver gives the decode
/// of SmolLM2-135M's shape (head_dim 64, group 3, f16) 128 registers per invocation, so
/// 4 workgroups per SM (528 on the H200), against 168 and 3 per SM for Llama-3-8B's
/// (head_dim 128, group 4; RESULTS, WGSL decode session 11, read through
/// VK_KHR_pipeline_executable_properties); its 16-row 4k steps took 0.90× the time with
/// the chunks this model picks with 528 as with 264. (With f16 products, session 12, it
/// takes 102 registers, so 5 per SM, but the chunks picked with 660 took 1.02× the time of
/// those with 528: kept.) Head_dim stands in for the
/// register count, which codegen cannot know: two measured shapes, not a fitted rule.
pub const WGSL_DECODE_CONCURRENT_WORKGROUPS_GQA_HD64: u32 = 528;

/// Workgroups the host's chunk model assumes resident for a WGSL decode layer of this
/// GQA group and head_dim (the three constants above).
pub fn wgsl_decode_concurrent_workgroups(group_size: u32, head_dim: u32) -> u32 {
    match (group_size > 1, head_dim <= 64) {
        (false, _) => WGSL_DECODE_CONCURRENT_WORKGROUPS,
        (true, false) => WGSL_DECODE_CONCURRENT_WORKGROUPS_GQA,
        (true, true) => WGSL_DECODE_CONCURRENT_WORKGROUPS_GQA_HD64,
    }
}

/// WGSL decode: the same for the flat decode on subgroups with 8 subgroups a workgroup
/// (`WgslTuning::decode_sg_flat_subgroups`; the engine's default at head_dim ≤ 64 in a
/// GQA group) at head_dim ≤ 64 in a GQA group: 256 invocations at 80 registers
/// (SmolLM2-135M's shape, Q·K in f16), so 3 workgroups an SM, 396 on the H200. With the 528 above,
/// 24 of SmolLM2's 30 layers at 16 × 4160 got 400–528 items, a second wave, and the
/// attention took 20.5–21.2 µs a layer against the 4-subgroup form's 19.4–19.5; with 396
/// (240–368 items) 17.9–18.5 against 19.5–19.6 in three pairs (RESULTS, "WGSL decode,
/// session 20"). With Q·K in f32 (the f16 dot failed `tests/model_gpu.rs`'s parity on the
/// H200) the form takes 119 registers (session 21; the 102 read in session 20 was the
/// scalar decode's), so 2 workgroups an SM, 264: there 18.4–18.6 µs a
/// layer against 22.5–23.7 told 396 and 18.9–19.2 for 4 subgroups (RESULTS, "Session 20,
/// lead calls", call 3).
pub const WGSL_DECODE_CONCURRENT_WORKGROUPS_FLAT8_GQA_HD64: u32 = 264;

/// [`wgsl_decode_concurrent_workgroups`] for a decode whose kernel is the flat decode on
/// subgroups with `flat_subgroups` subgroups a workgroup (0: another kernel, or the flat
/// one with 4): [`WGSL_DECODE_CONCURRENT_WORKGROUPS_FLAT8_GQA_HD64`] for 8 at head_dim ≤ 64
/// in a GQA group, the shape's constant otherwise (the other combinations are not
/// measured).
pub fn wgsl_decode_concurrent_workgroups_of(
    group_size: u32,
    head_dim: u32,
    flat_subgroups: u32,
) -> u32 {
    if flat_subgroups == 8 && group_size > 1 && head_dim <= 64 {
        WGSL_DECODE_CONCURRENT_WORKGROUPS_FLAT8_GQA_HD64
    } else {
        wgsl_decode_concurrent_workgroups(group_size, head_dim)
    }
}

/// CUDA prefill: queries per thread block (8 query rows per warp).
pub const CUDA_PREFILL_Q_TILE: u32 = 32;
/// CUDA prefill: keys per tile. The kernel maps one key of a tile to one lane, so this
/// is the warp width.
pub const CUDA_PREFILL_K_TILE: u32 = 32;
/// CUDA prefill: threads per block (4 warps).
pub const CUDA_PREFILL_THREADS: u32 = 128;
/// CUDA prefill on tensor cores (f16 / bf16, head_dim a multiple of 16): threads per block
/// (8 warps; on sm_90a two warpgroups of 64 query rows each). The query tile is 16 rows
/// per warp, so 128: every K/V tile brought into shared memory then serves twice the rows
/// of a 64-row block, which halves the L2 → SM traffic that bounds a 64-row block (H200,
/// benches/RESULTS.md, "CUDA prefill on tensor cores").
pub const CUDA_PREFILL_TC_THREADS: u32 = 256;
/// CUDA prefill on tensor cores: keys per K/V tile. With two buffers of K and V and the Q
/// tile the block takes 96 KiB of shared memory at head_dim 128, so two blocks share an SM
/// (128-key tiles leave room for one, and measured 20% slower).
pub const CUDA_PREFILL_TC_K_TILE: u32 = 64;
/// CUDA prefill on tensor cores: blocks per SM the kernel is compiled for. 1: the
/// warp-specialized default (below) gives its consumers 232 registers per thread through
/// `setmaxnreg`, which one block of 384 threads per SM allows. (Without it, 2 blocks of 256
/// threads at 128 registers overlapped one block's MMAs with the other's softmax.)
pub const CUDA_PREFILL_TC_MIN_BLOCKS: u32 = 1;
/// CUDA prefill on sm_90a: overlap the softmax of key tile j with P·V of tile j − 1
/// inside each warpgroup (`codegen::cuda::PrefillTuning::overlap`). On, with the warp
/// specialization and ping-pong below: `2x64x1owg`, checked on both upstream plans in f16
/// and bf16 and clean under compute-sanitizer memcheck, racecheck and synccheck, takes
/// 0.858x the time of the former default 2x64x2 (geometric mean of every layer of both
/// plans at 4k x 4 and 16k x 1, 128 rows, interleaved rounds) and is faster on every row
/// (worst 0.963; the A/A spread of one kernel against itself reached 0.92-1.06), with
/// identical outputs (H200, benches/RESULTS.md, "Call 8"). Without `w` it measured 9-25%
/// slower than two blocks per SM.
pub const CUDA_PREFILL_TC_OVERLAP: bool = true;
/// CUDA prefill on sm_90a: a producer warpgroup streams K/V into a 4-stage mbarrier ring
/// while two consumer warpgroups compute (`codegen::cuda::PrefillTuning::warp_specialized`,
/// FlashAttention-3's split; docs/DESIGN.md §6.1). On: see `CUDA_PREFILL_TC_OVERLAP`.
pub const CUDA_PREFILL_TC_WARP_SPECIALIZED: bool = true;
/// CUDA prefill on sm_90a: the two consumer warpgroups take turns issuing their MMAs
/// (`codegen::cuda::PrefillTuning::pingpong`). On: see `CUDA_PREFILL_TC_OVERLAP`.
pub const CUDA_PREFILL_TC_PINGPONG: bool = true;
/// CUDA prefill in bf16 on sm_90a: P·V on f16 operands (`codegen::cuda::PrefillTuning::pv_f16`),
/// one MMA per step where bf16 needs P in two parts. On, with V converted before the kernel
/// (`CUDA_PREFILL_TC_V_F16_IN`): with the producer converting V instead it was 1.43x the
/// time of 2x64x2 (the conversion starved the consumers; benches/RESULTS.md, "Call 8").
/// f16 storage ignores it (its P·V is on f16 operands already).
pub const CUDA_PREFILL_TC_PV_F16: bool = true;
/// CUDA prefill in bf16 on sm_90a, with `CUDA_PREFILL_TC_PV_F16`: V converted to f16 by the
/// module's pre-pass kernels, one power-of-two scale per KV head
/// (`codegen::cuda::PrefillTuning::v_f16_in`, the `v` letter). On: `2x64x1owghv` passes
/// cuda_check on both upstream plans in bf16 (max 2.075e-3, tolerance 3e-3), memcheck and
/// racecheck are clean, and it takes 0.941x the time of `2x64x1owg` (geometric mean of
/// every layer of both plans at 4k x 4 and 16k x 1, the pre-pass included; no row slower
/// beyond the A/A noise; H200, benches/RESULTS.md, "Session 9, call 1").
pub const CUDA_PREFILL_TC_V_F16_IN: bool = true;
/// CUDA prefill in bf16 on sm_90a, with `CUDA_PREFILL_TC_V_F16_IN`: the pre-pass reads V
/// once (`codegen::cuda::PrefillTuning::v_unit`, the `u` letter: converted at scale 1 while
/// the maxima are found, re-converted only for heads outside [2^-10, 2^15)). On:
/// `2x64x1owghvu` gives outputs identical to `2x64x1owghv` on layers 0 and 31 of both
/// upstream plans, its pre-pass passed cuda_check, memcheck and racecheck (as
/// `2x64x1owghvur`), and it takes 0.987x `2x64x1owghv`'s time (0.970x on Vicuna 4k x 4,
/// faster on every row there; no row slower beyond the A/A noise; H200,
/// benches/RESULTS.md, "Session 9, call 2").
pub const CUDA_PREFILL_TC_V_UNIT: bool = true;
/// CUDA prefill on sm_90a: lazy rescale of O (`codegen::cuda::PrefillTuning::lazy_rescale`,
/// the `r` letter). Off: exact, but 0.998x `2x64x1owghvu`'s time on the geometric mean,
/// worst row 1.036 (H200, benches/RESULTS.md, "Session 9, call 2"): the rescale it skips
/// is not on the critical path.
pub const CUDA_PREFILL_TC_LAZY_RESCALE: bool = false;
/// CUDA prefill in bf16 on sm_90a at head_dim 128, with `CUDA_PREFILL_TC_PV_F16`: consumer
/// warpgroups per block (`codegen::cuda::PrefillTuning::warpgroups`; the ping-pong turns go
/// round the three). 3: `3x64x1owghvu` takes 0.906x the time of `2x64x1owghvu` on the
/// geometric mean of every layer of both upstream plans at 4k x 4 and 16k x 1 (128 rows,
/// faster on every row, worst 0.994, paired worst 0.971; 0.81-0.98x on a dense plan), with
/// outputs identical on the layers compared (H200, benches/RESULTS.md, "Session 10").
/// P in one f16 part leaves the 152 registers of three consumers enough; 2 elsewhere.
/// Since session 12 also f16 storage at head_dim 128 (its P·V is one f16 MMA per step
/// too): `3x64x1owghnc` takes 0.869x the time of `2x64x1owgnc` over the same 128 rows
/// (faster on every row, worst 0.945; 0.84-0.90 per configuration; H200,
/// benches/RESULTS.md, "Session 12").
pub const CUDA_PREFILL_TC_PV_F16_WARPGROUPS: u32 = 3;
/// CUDA prefill on sm_90a: Q·Kᵀ with Q's A fragments in registers
/// (`codegen::cuda::PrefillTuning::q_regs`, the `q` letter). Off: 0.993x `2x64x1owghvu`
/// on the geometric mean of every layer (53 of 128 rows slower, all within the A/A noise;
/// H200, benches/RESULTS.md, "Session 10"): shared-memory reads are not the limit.
pub const CUDA_PREFILL_TC_Q_REGS: bool = false;
/// CUDA prefill on sm_90a: O's rescale while the next Q·Kᵀ executes
/// (`codegen::cuda::PrefillTuning::early_rescale`, the `e` letter). Off: 1.159x the time
/// of `2x64x1owghvu` on the geometric mean, slower on every row (f16: 1.172x `2x64x1owg`;
/// H200, benches/RESULTS.md, "Session 10").
pub const CUDA_PREFILL_TC_EARLY_RESCALE: bool = false;
/// CUDA prefill on sm_90a, warp-specialized body: the leaner consumer section
/// (`codegen::cuda::PrefillTuning::lean`, the `n` letter: descriptors as a base plus
/// immediates, masking out of the row-max loop, per-warp boundary tiles). On, with `c`:
/// `3x64x1owghvunc` takes 0.778x the time of `3x64x1owghvu` on the geometric mean of every
/// layer of both upstream plans at 4k x 4 and 16k x 1 (128 rows, every row faster, worst
/// 0.874; `n` alone 0.918x on 32 sub-layer rows), outputs identical; in f16
/// `2x64x1owgnck` takes 0.814x `2x64x1owg` (128 rows, every row faster; H200,
/// benches/RESULTS.md, "Session 11").
pub const CUDA_PREFILL_TC_LEAN: bool = true;
/// CUDA prefill on sm_90a, warp-specialized body: the strength-reduced producer copies
/// (`codegen::cuda::PrefillTuning::lean_copy`, the `c` letter). On, with `n` (above; `c`
/// alone 0.931x `3x64x1owghvu` on 32 sub-layer rows).
pub const CUDA_PREFILL_TC_LEAN_COPY: bool = true;
/// CUDA prefill on sm_90a, warp-specialized overlapped body: each consumer warpgroup
/// issues MMAs only for its own key tiles (`codegen::cuda::PrefillTuning::key_range`, the
/// `k` letter). Off: `3x64x1owghvunck` takes 1.004x `3x64x1owghvunc` (0.989x at 4k, where
/// the tile count predicted 0.85-0.93, and 1.015-1.026x at 16k; H200, benches/RESULTS.md,
/// "Session 11"): the skipped MMAs were not what the consumers waited on.
pub const CUDA_PREFILL_TC_KEY_RANGE: bool = false;
/// CUDA prefill on sm_90a, warp-specialized overlapped body: persistent blocks
/// (`codegen::cuda::PrefillTuning::persistent`, the `t` letter), one per SM, each taking
/// query tiles from a counter while its producer loads the next tile's Q and K/V under the
/// current one's last sections. `PrefillTuning::default_for` applies this constant to bf16
/// at head_dim 128 only (three consumer warpgroups with P·V in f16). Off: with the
/// consumers' loop over ring positions (529 SASS instructions a section, base 530)
/// `3x64x1owghvunct` takes 0.9925x the time of `3x64x1owghvunc` over every layer of both
/// upstream plans (0.980-0.983 at 4k x 4, 1.002-1.005 at 16k x 1, worst row 1.072; H200,
/// benches/RESULTS.md, "Session 12, second round"), but it moves the rows that issue 8's
/// targets judge the wrong way: layers within 1.15x of the ideal 5 -> 2 of 128, and the
/// dense plans at 16k x 1 (the near-dense layers, which must not be slower than dense)
/// 1.05-1.06x. The first form took 1.008x (13 more instructions a section). Other
/// storages and shapes were not measured with the new loop.
pub const CUDA_PREFILL_TC_PERSISTENT: bool = false;
/// CUDA prefill on sm_90a: persistent blocks on a plan's narrow layers only
/// (`codegen::cuda::PrefillTuning::persistent_narrow`, the `a` letter; one block per query
/// tile elsewhere), applied by `PrefillTuning::default_for` where `t` would be. A layer is
/// narrow where its mean span at `CUDA_PREFILL_TC_NARROW_REF_TOKENS` tokens is at most
/// `CUDA_PREFILL_TC_NARROW_SPAN_SHARE` of them (`codegen::cuda::prefill_span_share`).
/// On (session 13): on the 12 narrow layers of each upstream plan `3x64x1owghvunca` took
/// 0.966-0.981x the time of `3x64x1owghvunc` at 4k x 4 and 0.993-0.995x at 16k x 1 in two
/// calls (worst row 1.043, within the A/A noise), with outputs identical, and it generates
/// the same kernels on the other layers (the near-dense ones, where `t` lost 5-7% at 16k,
/// keep one block per query tile); Vicuna-7B l27 at 4k x 4 2.25 -> 2.16x its ideal (H200,
/// benches/RESULTS.md, "Session 13").
pub const CUDA_PREFILL_TC_PERSISTENT_NARROW: bool = true;
/// The sequence length at which `CUDA_PREFILL_TC_PERSISTENT_NARROW`'s rule measures a
/// layer's spans (upstream MoA rules grow with N, so the share is taken at a long prompt).
pub const CUDA_PREFILL_TC_NARROW_REF_TOKENS: u32 = 16384;
/// The largest mean span share (span / N at `CUDA_PREFILL_TC_NARROW_REF_TOKENS`) of a layer
/// that `CUDA_PREFILL_TC_PERSISTENT_NARROW` gives persistent blocks. From session 12's rows
/// of `t` on every layer: at or below 0.4, 0.975x at 4k x 4 and 0.993x at 16k x 1 with no
/// row slower beyond the noise; from 0.4 to 0.6 about even at 16k; above, up to 1.07x.
pub const CUDA_PREFILL_TC_NARROW_SPAN_SHARE: f64 = 0.4;
/// CUDA prefill on sm_90a, warp-specialized body at head_dim 128 (bf16 and f16): a row's
/// query tiles counted from its last token where the launch's longest row is at most
/// `CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS`, so the partial tile is the row's first, with the
/// shortest band (`codegen::cuda::PrefillTuning::end_aligned`, the `f` letter). Session 15
/// (H200, benches/RESULTS.md): `3x64x1owghvuncaf` took 0.966x (Llama-3-8B) and 0.971x
/// (Vicuna-7B) the time of `3x64x1owghvunca` at 4k x 4, faster on 63 of 64 layers, the
/// near-dense Vicuna-7B layers 1.44 -> 1.38x dense SDPA; at 16k x 1 without the length rule
/// 0.997x on Llama-3-8B and 1.045x on Vicuna-7B (23 of 32 layers slower, up to 1.16x).
pub const CUDA_PREFILL_TC_END_ALIGNED: bool = true;
/// The longest row (tokens) at which `CUDA_PREFILL_TC_END_ALIGNED` counts query tiles from
/// the row's end; longer launches keep them from the row's start (the kernel reads its grid).
pub const CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS: u32 = 8192;
/// CUDA prefill on sm_90a, bf16 at head_dim 128 with `CUDA_PREFILL_TC_END_ALIGNED`: the
/// launch order takes a (query head, row) pair's query tiles this many at a time, so their
/// blocks stream the pair's K/V together and all but the first read it from L2
/// (`codegen::cuda::PrefillTuning::head_tiles`; letters `j` = 2, `m` = 4, `i` = 8). Session 17
/// (H200, benches/RESULTS.md "Session 17" and the lead's blocked A/B): `m` cut Vicuna-7B's
/// DRAM reads of K/V 3x (L2 hit 6% -> 55%, SM clock 1.654 -> 1.730 GHz at equal cycles) and,
/// run in blocks (every layer with the default, then every layer with `m`, twice),
/// took 0.928x / 0.926x of the default's time summed over Vicuna-7B's 32 layers at 4k x 4
/// (every layer faster in both pairs, 0.88-0.98; A/A 0.94-1.04) and 0.980x over
/// Llama-3-8B's (median 0.986, worst layer 1.004). f16 keeps 1: `m` passes its checks
/// there but was not timed.
pub const CUDA_PREFILL_TC_HEAD_TILES: u32 = 4;
/// CUDA prefill on sm_90a, bf16 at head_dim 128: lean block ends
/// (`codegen::cuda::PrefillTuning::lean_ends`, the `b` letter, session 19): the one-tile
/// kernel's Q copy and every form's output stores strength-reduced, `t`'s query-tile
/// geometry from shared memory. On since session 19: in blocks on the H200 it took
/// 0.977-0.986x of the previous default's sum at 4k x 4 (both upstream plans, 125 of 128
/// layer rows below 1.0, the rest <= 1.001, two calls) and 0.996-0.999x at 16k x 1 (within
/// the noise, never slower beyond it); its outputs equal the previous default's (max
/// difference 0.0 on Vicuna-7B l0/l2/l15/l27), `cuda_check` bf16 unchanged, memcheck and
/// racecheck clean (benches/RESULTS.md, "Session 19").
pub const CUDA_PREFILL_TC_LEAN_ENDS: bool = true;
/// CUDA prefill on sm_90a, bf16 at head_dim 128: own bands
/// (`codegen::cuda::PrefillTuning::own_bands`, the `d` letter, session 20): each consumer
/// warpgroup takes sections only for its own 64 rows' key tiles, counted on its own, so a
/// narrow layer's query tile takes up to 2 fewer turns. On since session 20: in blocks on
/// the H200 it took 0.974-0.976x of the previous default's sum at 4k x 4 (both upstream
/// plans, every layer <= 1.001, the narrow layers 0.940-0.993) and 0.989-0.990x at 16k x 1
/// (within the noise, layers up to 1.009); its outputs equal the previous default's (max
/// difference 0.0 on six layers), `cuda_check` bf16 unchanged, memcheck and racecheck
/// clean (benches/RESULTS.md, "Session 20 (branch s20-prefill").
pub const CUDA_PREFILL_TC_OWN_BANDS: bool = true;
/// CUDA prefill on sm_90a: a K/V ring of up to 5 stages where they fit beside the Q tile
/// (`codegen::cuda::PrefillTuning::deep_ring`, the `z` letter, session 21; at head_dim 128
/// the one-tile kernel only). Off: in blocks on the H200 it took 0.997-1.002x of the default
/// on the one-tile layers (medians per upstream plan at 4k x 4 and 16k x 1), inside the spread
/// of the identical kernels on the `t` layers (0.988-1.005); outputs equal, `cuda_check` bf16
/// unchanged, memcheck and racecheck clean (benches/RESULTS.md, "Session 21 (branch
/// s21-prefill").
pub const CUDA_PREFILL_TC_DEEP_RING: bool = false;
/// CUDA prefill on sm_90a, persistent blocks (`t`, and `a`'s narrow layers): the producer
/// hands a query tile's last K/V tile over as soon as it lands, with the next tile's claim in
/// flight, not after the claim and the next tile's Q copy were issued
/// (`codegen::cuda::PrefillTuning::switch_at_once`, the `H` letter, session 23). On since
/// session 24, with `Q` (below): alone it took 1.000-1.006x on the `t` layers in blocks on
/// the H200 (the next tile then waits for its Q, whose generic copy slows under the
/// consumers' work); with `Q` 0.971-0.975x at 4k x 4 (every `t` layer <= 0.987, the identical
/// one-tile kernels 0.997-1.003) and 0.991-0.998x at 16k x 1 (within the noise), outputs
/// equal, `cuda_check` bf16 unchanged, memcheck and racecheck clean, engine-form layers
/// within 1.15 x ideal 20/27/27/31 -> 20/31/28/32 of 32 (benches/RESULTS.md, "Session 23
/// (branch s23-prefill"; the default's checks "Session 24 (branch s24-prefill").
pub const CUDA_PREFILL_TC_SWITCH_AT_ONCE: bool = true;
/// CUDA prefill on sm_90a, persistent blocks with `c`: the producer copies Q with one fixed
/// chunk a thread and compile-time row steps (`codegen::cuda::PrefillTuning::lean_q`, the `Q`
/// letter, session 23). On since session 24, with `H` (above, which says why): alone 0.970 /
/// 0.982x on the `t` layers of Vicuna-7B / Llama-3-8B at 4k x 4 in blocks on the H200,
/// 1.000 / 0.987x at 16k x 1 (benches/RESULTS.md, "Session 23 (branch s23-prefill").
pub const CUDA_PREFILL_TC_LEAN_Q: bool = true;
/// CUDA prefill on sm_90a: each warpgroup computes only the key tiles its own 64 query
/// rows see (`codegen::cuda::PrefillTuning::skip`). Off: the variant with it ranked behind
/// the plain kernel in the H200 sweep (benches/RESULTS.md) and costs 24 bytes of spills.
pub const CUDA_PREFILL_TC_SKIP: bool = false;
/// CUDA prefill in bf16: P enters P·V rounded once (`codegen::cuda::PrefillTuning::p_once`).
/// Off: rounded once, P's 2^-9 error plus the output's rounding exceeded the 3e-3 bf16
/// tolerance on six upstream-plan cases (tests/prefill_bf16_rounding.rs); P = hi + lo
/// doubles the P·V MMAs (cost in benches/RESULTS.md, "CUDA prefill on tensor cores").
pub const CUDA_PREFILL_TC_P_ONCE: bool = false;
/// CUDA decode: warps per block. The tensor-core kernel gives each warp 16 keys of a
/// pipeline stage (key tile 64 with 4 warps).
pub const CUDA_DECODE_WARPS: u32 = 4;
/// CUDA decode: cp.async pipeline depth (K/V tiles in shared memory at once): 4 warps x
/// 3 stages of 32 KB (head_dim 128, 16-bit) = 96 KB per block, two blocks (8 warps) per
/// SM. Measured on the H200 (benches/RESULTS.md, call 4): ahead of warp-private pipelines
/// of the same shared memory (4x3w, 2-6 % slower), 4x2w (1-3 %) and 2x6w (4-26 %); earlier
/// calls: 4x4 (one block per SM) 0-25 % and 2x6 5-35 % slower.
pub const CUDA_DECODE_STAGES: u32 = 3;
/// CUDA decode: whether each warp of the tensor-core kernel runs its own copy pipeline
/// (`codegen::cuda::DecodeTuning::warp_pipes`); measured slower (see the stages above).
pub const CUDA_DECODE_WARP_PIPES: bool = false;
/// CUDA decode: a block issues its first K/V tiles before `griddepcontrol.wait`
/// (`codegen::cuda::DecodeTuning::early_loads`), so after a programmatic launch they
/// stream while the cache write still runs. Measured on the H200 after the cache write's
/// shape (benches/RESULTS.md, call 14): 0.3–0.85 µs less per launch on Llama-3-8B at B = 4,
/// about nothing elsewhere.
pub const CUDA_DECODE_EARLY_LOADS: bool = true;
/// CUDA decode: the last chunk of a segment merges the partials in one L2 round trip per
/// batch of chunks (16 for a GQA group of 4, 32 for MHA), after one thread's
/// acquire-release atomic (`codegen::cuda::DecodeTuning::fast_merge`). With the early loads
/// (call 15): 0.944 of the previous kernel's time on Llama-3-8B at B = 4, 4k, 0.959 on
/// Vicuna-7B, 0.975–0.999 elsewhere (geometric means); a first form with batches of 8
/// (GQA) was slower where segments had 9–16 chunks (call 14).
pub const CUDA_DECODE_FAST_MERGE: bool = true;
/// CUDA decode: the lean epilogue (`codegen::cuda::DecodeTuning::lean`): the warps'
/// states go to a stage the last two tiles do not use (no barrier before the stores), only
/// the group's own columns, with a padded row stride (no bank conflicts). Measured on the
/// H200 in the model's position (benches/RESULTS.md, decode calls 18–19): up to 0.84 µs
/// less per launch on 126 of 128 Llama-3-8B layer × configuration cells, 0.981–0.997 of
/// the time in geometric mean per configuration (Vicuna-7B 0.983–0.997).
pub const CUDA_DECODE_LEAN_EPILOGUE: bool = true;
/// CUDA decode: the ticket merge (`codegen::cuda::DecodeTuning::ticket`): the chunk that
/// starts its last tile last merges, without writing its own partial, once the others
/// have published theirs. Measured slower on every layer (benches/RESULTS.md, decode call
/// 18: +0.1 to +3.3 µs per launch at B = 4, up to +7 µs where lists run in several waves, a
/// waiting merger holding its slot), so off.
pub const CUDA_DECODE_TICKET_MERGE: bool = false;
/// CUDA decode: the full prologue (`codegen::cuda::DecodeTuning::full_prologue`): a block
/// issues every stage's tile before its first wait, not `stages - 1`. Measured slower
/// (decode call 18: +0.1 to +1.9 µs per launch on most layers), so off.
pub const CUDA_DECODE_FULL_PROLOGUE: bool = false;
/// CUDA decode: refill when free (`codegen::cuda::DecodeTuning::refill`): a stage is
/// refilled once every warp has finished its tile, not once the next tile has landed.
/// Measured slower (benches/RESULTS.md, decode call 20): Llama-3-8B 1.020–1.030 of the
/// time in geometric mean per configuration (up to +8 µs per layer), Vicuna-7B
/// 1.001–1.008; a third tile in flight does not speed the bare stream (probe `z`), and the
/// barrier after the math costs more than the earlier refill gains. So off.
pub const CUDA_DECODE_REFILL: bool = false;
/// CUDA decode: arrival barriers with refill when free
/// (`codegen::cuda::DecodeTuning::arrive`): a warp waits for a tile's copies on the
/// stage's mbarrier, not on a block barrier. Measured (decode call 20): Llama-3-8B
/// 1.016–1.025 of the default's time in geometric mean, Vicuna-7B 0.997–1.000. So off.
pub const CUDA_DECODE_ARRIVE: bool = false;
/// CUDA decode: unmasked tiles (`codegen::cuda::DecodeTuning::unmasked_tiles`): a warp
/// skips the per-key mask on a tile every head of the GQA group sees whole. Measured
/// (decode call 21, Llama-3-8B): 1.003–1.006 of the default's time in geometric mean, the
/// stream-and-math probe 0.13–0.23 µs slower: the per-tile test costs more than the mask
/// it skips. So off.
pub const CUDA_DECODE_UNMASKED_TILES: bool = false;
/// CUDA decode, MHA models only (`codegen::cuda::DecodeTuning::default_for` with a group
/// of 1): the cheap refill issue, four Q·Kᵀ chains and the lazy rescale together
/// (`4x3eiclms`). Measured (benches/RESULTS.md, decode "Session 15"): Vicuna-7B
/// 0.987–0.994 of `4x3ems`'s time in geometric mean per configuration, faster on every
/// layer; on Llama-3-8B (groups of 4) a tie (median −0.03 to +0.09 µs per layer, within
/// the A/A noise), with `i` alone 0.5–2.9 µs slower, so GQA keeps the plain default.
pub const CUDA_DECODE_MHA_PER_TILE: bool = true;
/// CUDA decode: cheap refill issue (`codegen::cuda::DecodeTuning::cheap_issue`): full
/// tiles are issued from one pointer per thread advanced per tile. Opt-in (session 15,
/// benches/RESULTS.md "Session 15").
pub const CUDA_DECODE_CHEAP_ISSUE: bool = false;
/// CUDA decode: Q·Kᵀ in four MMA chains (`codegen::cuda::DecodeTuning::four_chains`), not
/// two. Opt-in (session 15, benches/RESULTS.md "Session 15").
pub const CUDA_DECODE_FOUR_CHAINS: bool = false;
/// CUDA decode: lazy rescale (`codegen::cuda::DecodeTuning::lazy_rescale`): the running
/// max is kept while a tile's scores stay within 2^8 of it. Opt-in (session 15,
/// benches/RESULTS.md "Session 15").
pub const CUDA_DECODE_LAZY_RESCALE: bool = false;
/// CUDA decode: wide merge batches (`codegen::cuda::DecodeTuning::wide_merge`): up to 32
/// chunks per L2 round trip with 128 registers of partial sums per thread (16 with 64).
/// Measured (decode call 19, against the lean epilogue alone): 0.3–0.7 µs less on the
/// layers whose segments have 17–22 chunks (Llama-3-8B B = 4, 16k, layers 27 and 29), but
/// 0.1–0.7 µs more on most others (the kernel then takes 202 registers, and the main loop
/// is compiled differently): 1.001 against 0.995 of 4x3em's time in geometric mean at
/// B = 4, 16k. So off.
pub const CUDA_DECODE_WIDE_MERGE: bool = false;
/// CUDA decode: Q first (`codegen::cuda::DecodeTuning::q_first`): after the grid wait a
/// block loads Q before anything waits for `row_pos`, so the two round trips overlap. Off
/// in [`Default`](crate::codegen::cuda::DecodeTuning) (MHA: a tie on Vicuna-7B, medians −0.12 to
/// +0.22 µs per configuration); GQA models take it through [`CUDA_DECODE_GQA_Q_FIRST`].
pub const CUDA_DECODE_Q_FIRST: bool = false;
/// CUDA decode: GQA models (group ≥ 2) take Q first (`DecodeTuning::default_for`).
/// Measured (session 16, benches/RESULTS.md "Session 16", Llama-3-8B, every layer, two
/// runs): 0.992–0.999 of 4x3ems's time in geometric mean per configuration, mean −0.04 to
/// −0.25 µs per layer; slower in both runs on 6 of 128 layer × configuration cells, by at
/// most 0.38 µs (inside the A/A noise).
pub const CUDA_DECODE_GQA_Q_FIRST: bool = true;
/// CUDA decode: push merge in clusters (`codegen::cuda::DecodeTuning::push_merge`): the
/// chunks of a segment send their states into the merging blocks' shared memory
/// (`st.async` completing an mbarrier's transaction count) instead of two cluster barriers
/// and remote loads. Opt-in until measured (session 16, benches/RESULTS.md "Session 16").
pub const CUDA_DECODE_PUSH_MERGE: bool = false;
/// CUDA decode: the cluster merge arrives at its exit barrier before its O stores
/// (`codegen::cuda::DecodeTuning::exit_arrive_first`), so the arrive's release fence does
/// not wait for the stores' acknowledgements. Off: measured (session 17, benches/RESULTS.md
/// "Session 17", every layer of both plans, two runs) +0.12 to +0.19 µs per layer in median
/// on cluster lists, a tie on plain ones; the stores' acknowledgements were not on the
/// launch's critical path.
pub const CUDA_DECODE_EXIT_ARRIVE_FIRST: bool = false;
/// CUDA decode: combine unrolled (`codegen::cuda::DecodeTuning::combine_unrolled`): the
/// block's combine of its warps' states for all of a thread's output elements at once,
/// branch-free. Off in [`Default`](crate::codegen::cuda::DecodeTuning) (MHA, one element per
/// thread: Vicuna-7B 0.995–0.998 of the time in geometric mean at B = 4, a tie at B = 16,
/// where 3 of 32 layers were faster in both blocks at 16k); GQA models take it through
/// [`CUDA_DECODE_GQA_COMBINE_UNROLLED`] (session 18, benches/RESULTS.md decode "Session 18").
pub const CUDA_DECODE_COMBINE_UNROLLED: bool = false;
/// CUDA decode: GQA models (group ≥ 2) take the combine unrolled (`DecodeTuning::default_for`).
/// Measured (session 18, benches/RESULTS.md decode "Session 18", Llama-3-8B, every layer,
/// B = 16 and 4, 4k and 16k, two blocks each): 0.966–0.995 of 4x3eqms's time in geometric
/// mean per configuration, −0.5 to −1.0 µs per layer in median, faster in both blocks on
/// all 128 layer × configuration cells.
pub const CUDA_DECODE_GQA_COMBINE_UNROLLED: bool = true;
/// CUDA decode: clusters of up to 16 blocks (`codegen::cuda::DecodeTuning::wide_clusters`,
/// the letter `h`): the kernel merges segments of up to 16 chunks through distributed
/// shared memory (CUDA's non-portable cluster size, which the executor allows on the
/// function), and the host may pack a step's segments into clusters of 16. Off: measured
/// (session 19, benches/RESULTS.md decode "Session 19", Llama-3-8B, every layer, three
/// A/B passes) a tie where the lists do not change (B = 16: 1.000–1.003 of 4x3eqmsk's time
/// in geometric mean), 0.999–1.001 at B = 4 16k (layer 29 −0.5 to −0.9 µs, layer 27 +0.1
/// to +0.5: the only two lists that change, no target cell moves) and 1.013–1.015 at B = 4
/// 4k (lists that were plain lose 0.3–1.4 µs as clusters of 16 with longer items).
pub const CUDA_DECODE_WIDE_CLUSTERS: bool = false;
/// CUDA decode: half partials (`codegen::cuda::DecodeTuning::half_partials`, the letter
/// `v`): a chunk of a split segment on a plain launch writes its normalised output in f16
/// (half the partial's bytes, in aligned rows) and the merge takes up to 32 chunks per L2
/// round trip with the registers of 16. Off in [`Default`](crate::codegen::cuda::DecodeTuning)
/// (MHA: Vicuna-7B 1.010–1.012 of 4x3eiclms's time in geometric mean at B = 4 4k, +0.43 µs
/// per layer in median, slower on every plain list); GQA models take it through
/// [`CUDA_DECODE_GQA_HALF_PARTIALS`].
pub const CUDA_DECODE_HALF_PARTIALS: bool = false;
/// CUDA decode: the last arrival merges from its own registers
/// (`codegen::cuda::DecodeTuning::own_merge`, the letter `j`): its own partial stores and
/// the fence before its release leave the critical path of a segment merged through L2.
/// Off: measured (session 21, benches/RESULTS.md decode "Session 21", both upstream plans,
/// every layer, three A/B passes) a tie on Llama-3-8B's one-wave B = 4 16k lists (+0.00 µs
/// per layer in median: the merger waits for the latest peer's publication instead of its
/// own fence), −0.14 / −0.26 µs in median on Vicuna-7B at B = 4 4k / 16k (faster in every
/// pass on 13 of 32 layers; 18 → 19–20 layers ≥ 3.8 TB/s at 4k), and on Llama's cluster
/// lists, whose path it does not change, −2.8 to +2.6 µs on single layers (27 and 29 at
/// B = 16 4k, two of the missing cells, +0.3 to +1.1).
pub const CUDA_DECODE_OWN_MERGE: bool = false;
/// CUDA decode, MHA models only (`codegen::cuda::DecodeTuning::default_for` with a group
/// of 1): the last arrival merges from its own registers ([`CUDA_DECODE_OWN_MERGE`]'s
/// `j`; `4x3eiclmsj`). Measured (benches/RESULTS.md, decode "Session 21", call 1's three
/// passes and the lead's closing call's five, Vicuna-7B B = 4): −0.11 / −0.21 µs per layer
/// in median at 4k / 16k (A/A +0.00 / −0.05), never slower than +0.07 µs in median at 4k
/// and +0.24 at 16k (layer 24); layers ≥ 3.8 TB/s at 4k 18 → 19–20 of 32 in every pass.
/// `cuda_check` passes with it on Vicuna-7B in f16 (4.128e-4) and bf16 (2.075e-3).
pub const CUDA_DECODE_MHA_OWN_MERGE: bool = true;
/// CUDA decode: GQA models (group ≥ 2) take half partials (`DecodeTuning::default_for`).
/// Measured (session 20, benches/RESULTS.md decode "Session 20", Llama-3-8B, every layer,
/// B = 16 and 4, 4k and 16k, three A/B passes): 0.990–0.996 of 4x3eqmsk's time in geometric
/// mean at 16k (every list merges through L2: −0.35 µs per layer in median at B = 4,
/// −0.77 at B = 16; −1.5 to −1.7 µs on the segments of 17–22 chunks, one merge round trip
/// instead of two), 0.996–1.002 at 4k (cluster lists, whose path it does not change);
/// faster in every pass on 76 of 128 cells, slower in every pass on 7, by at most 0.19 µs.
/// The f16 partial holds a chunk's output (a convex combination of V rows) to 2^-11 of
/// its magnitude; values of V beyond f16's ±65504 would overflow it.
pub const CUDA_DECODE_GQA_HALF_PARTIALS: bool = true;
/// The largest thread-block cluster (blocks) the CUDA decode kernel merges in without
/// [`CUDA_DECODE_WIDE_CLUSTERS`]: CUDA's portable cluster size.
pub const CUDA_DECODE_PORTABLE_CLUSTER: u32 = 8;
/// The largest thread-block cluster (blocks) the CUDA decode kernel merges in with
/// [`CUDA_DECODE_WIDE_CLUSTERS`]: the non-portable size sm_90 allows once the function
/// opts in (`CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED`).
pub const CUDA_DECODE_WIDE_CLUSTER: u32 = 16;
/// The most query heads one CUDA decode block computes (tensor-core and, since session 36,
/// scalar kernel): a GQA group past
/// it is cut into sub-groups of at most this many heads (`codegen::cuda::decode_sub_groups`),
/// each its own work-list segment over the same KV head's cache, so the kernel is the
/// group-of-≤8 kernel (fast merge, lean epilogue, half partials, 162 registers at
/// head_dim 128). Session 35 (s35-wide): the whole group of 16 in one block took 255
/// registers and the shared-memory merge, of 32 also 688 bytes of spills and one block an
/// SM (benches/RESULTS.md, "Session 35 (branch s35-wide)").
pub const CUDA_DECODE_BLOCK_GROUP: u32 = 8;
