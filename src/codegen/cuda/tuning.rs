//! The CUDA kernels' shape choices: [`DecodeTuning`] and [`PrefillTuning`], their defaults
//! (`lower::consts`), the per-layer choice of the prefill form, and the letter forms
//! (`4x3eqmskv`, `3x64x1owghvunca`) that the benchmarks' `--variants` options parse and print.

use crate::lower::consts::{
    CUDA_DECODE_ARRIVE, CUDA_DECODE_CHEAP_ISSUE, CUDA_DECODE_COMBINE_UNROLLED,
    CUDA_DECODE_EARLY_LOADS, CUDA_DECODE_EXIT_ARRIVE_FIRST, CUDA_DECODE_FAST_MERGE,
    CUDA_DECODE_FOUR_CHAINS, CUDA_DECODE_FULL_PROLOGUE, CUDA_DECODE_GQA_COMBINE_UNROLLED,
    CUDA_DECODE_GQA_HALF_PARTIALS, CUDA_DECODE_GQA_Q_FIRST, CUDA_DECODE_HALF_PARTIALS,
    CUDA_DECODE_LAZY_RESCALE, CUDA_DECODE_LEAN_EPILOGUE, CUDA_DECODE_MHA_OWN_MERGE,
    CUDA_DECODE_MHA_PER_TILE, CUDA_DECODE_OWN_MERGE, CUDA_DECODE_PUSH_MERGE, CUDA_DECODE_Q_FIRST,
    CUDA_DECODE_REFILL, CUDA_DECODE_STAGES, CUDA_DECODE_TICKET_MERGE, CUDA_DECODE_UNMASKED_TILES,
    CUDA_DECODE_WARPS, CUDA_DECODE_WARP_PIPES, CUDA_DECODE_WIDE_CLUSTERS, CUDA_DECODE_WIDE_MERGE,
    CUDA_PREFILL_TC_DEEP_RING, CUDA_PREFILL_TC_EARLY_RESCALE, CUDA_PREFILL_TC_END_ALIGNED,
    CUDA_PREFILL_TC_HEAD_TILES, CUDA_PREFILL_TC_KEY_RANGE, CUDA_PREFILL_TC_K_TILE,
    CUDA_PREFILL_TC_LAZY_RESCALE, CUDA_PREFILL_TC_LEAN, CUDA_PREFILL_TC_LEAN_COPY,
    CUDA_PREFILL_TC_LEAN_ENDS, CUDA_PREFILL_TC_LEAN_Q, CUDA_PREFILL_TC_MIN_BLOCKS,
    CUDA_PREFILL_TC_NARROW_REF_TOKENS, CUDA_PREFILL_TC_NARROW_SPAN_SHARE, CUDA_PREFILL_TC_OVERLAP,
    CUDA_PREFILL_TC_OWN_BANDS, CUDA_PREFILL_TC_PERSISTENT, CUDA_PREFILL_TC_PERSISTENT_NARROW,
    CUDA_PREFILL_TC_PINGPONG, CUDA_PREFILL_TC_PV_F16, CUDA_PREFILL_TC_PV_F16_WARPGROUPS,
    CUDA_PREFILL_TC_P_ONCE, CUDA_PREFILL_TC_Q_REGS, CUDA_PREFILL_TC_SKIP,
    CUDA_PREFILL_TC_SWITCH_AT_ONCE, CUDA_PREFILL_TC_THREADS, CUDA_PREFILL_TC_V_F16_IN,
    CUDA_PREFILL_TC_V_UNIT, CUDA_PREFILL_TC_WARP_SPECIALIZED,
};
use crate::lower::{LayerSpec, StorageType};
use crate::plan::SpanParams;

use super::geometry::*;

/// Decode kernel shape choices (defaults: `lower::consts`). Benchmarks generate variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeTuning {
    /// Warps per block; the tensor-core kernel's key tile is 16 keys per warp.
    pub warps: u32,
    /// cp.async pipeline depth (tiles in flight + the one being computed).
    pub stages: u32,
    /// Tensor-core kernel only: every warp runs its own pipeline over its 16 keys of each
    /// tile (waits with `__syncwarp`), instead of the block waiting for whole tiles
    /// (`__syncthreads`). Same shared memory and key tile.
    pub warp_pipes: bool,
    /// Tensor-core kernel with the block-wide pipeline only (the letter `e`): a block issues
    /// its first `stages - 1` K/V tiles before `griddepcontrol.wait`, so after a
    /// programmatic launch they stream while the kernel before still runs; the one slot
    /// that kernel may write (the current token's, at `row_pos[row]`) is read again after
    /// the wait (docs/DESIGN.md §6). A no-op for plain launches.
    pub early_loads: bool,
    /// The letter `m`: the segment's last chunk learns it is last from one thread's
    /// acquire-release atomic (no fence in every thread), and merges the partials of up to
    /// [`decode_merge_batch`] chunks per L2 round trip, each thread its own output
    /// elements (no shared-memory weights, no barriers), instead of two round trips per
    /// 32 chunks.
    pub fast_merge: bool,
    /// Tensor-core kernel with the block-wide pipeline and at least 3 stages (the letter
    /// `s`): the lean epilogue. The warps' states go to a stage the last two tiles do not
    /// use, so no barrier precedes the stores; only the group's own query columns are
    /// stored (not the MMA's padding columns), with a row stride of head_dim + 4 floats (no
    /// shared-memory bank conflicts).
    pub lean: bool,
    /// With the fast merge on tensor cores (the letter `t`): the ticket merge. A chunk of a
    /// split segment takes a ticket (a relaxed atomic) when it starts its last tile; the
    /// last ticket merges, keeping its own state in registers, after the others have
    /// published their partials (a release add each, waited for with acquire loads), so
    /// its own partial stores, fence and counter round trip leave the critical path.
    pub ticket: bool,
    /// Tensor-core kernel with the block-wide pipeline (the letter `f`): the full
    /// prologue. A block issues all `stages` tiles before its first wait, not
    /// `stages - 1` (no stage is computed on yet), so it has a stage more in flight while
    /// it waits for Q and its first tile; the loop's first iteration then issues nothing.
    pub full_prologue: bool,
    /// Tensor-core kernel with the block-wide pipeline (the letter `r`): refill when free.
    /// A stage is refilled once every warp has finished computing its tile (a block barrier
    /// after the math), not once the next tile has landed (the barrier before the math, which
    /// also makes that tile visible), so a block waiting for a tile has `stages` tiles in
    /// flight, not `stages - 1`, and a burst of landed tiles no longer holds the next copy
    /// behind the slowest warp's math on the tile before. Two barriers per tile.
    pub refill: bool,
    /// With refill when free (the letter `a`): arrival barriers. Each stage has an
    /// mbarrier that every thread's `cp.async.mbarrier.arrive.noinc` counts, so a warp
    /// waits for a tile's copies by the barrier's phase instead of its own copies and a
    /// block barrier: one block barrier per tile (the refill's) instead of two.
    pub arrive: bool,
    /// Tensor-core kernel (the letter `u`): unmasked tiles. Where a GQA group's heads have
    /// different spans, a warp skips the per-key mask on a 16-key tile that every head of
    /// the group sees whole (sink slots every head keeps, or ring slots younger than the
    /// narrowest window), instead of masking every tile of such a segment.
    pub unmasked_tiles: bool,
    /// Tensor-core kernel (the letter `c`): Q·Kᵀ of a tile in four independent MMA chains
    /// over head_dim (k steps taken mod 4, summed in a tree), not two, so the scores are
    /// ready after ⌈KSTEPS / 4⌉ dependent MMAs instead of ⌈KSTEPS / 2⌉ (2 instead of 4 at
    /// head_dim 128), at 8 more registers. The sum is reassociated: scores change by f32
    /// rounding only.
    pub four_chains: bool,
    /// Tensor-core kernel with the block-wide pipeline (the letter `i`): cheap refill
    /// issue. Each thread's 16-byte pieces of a tile lie a fixed stride apart in the cache
    /// and at fixed offsets of a stage, so a tile wholly inside the chunk is issued from one
    /// pointer advanced per tile, with no per-piece bound test or address math (the same
    /// pieces per thread as without it; only a chunk's last, partial tile takes the tested
    /// path).
    pub cheap_issue: bool,
    /// Tensor-core kernel (the letter `l`): lazy rescale. A warp keeps its columns'
    /// running maxima while every score of a tile lies within 2^8 (8 in log2 units) of
    /// them (one vote, no shuffles): no max reduction, no correction factor and no
    /// rescale of the accumulators on that tile; otherwise the exact update. Exact either
    /// way (P ≤ 2^8 shares the stale max with l and the accumulators; f32 holds them).
    pub lazy_rescale: bool,
    /// With the fast merge (the letter `b`): batches of up to 32 chunks per L2 round trip
    /// with 128 registers of partial sums per thread ([`decode_merge_batch_wide`]: 32 for
    /// a GQA group of 4 at head_dim 128), not 64 registers (16), so segments of 17–32
    /// chunks merge in one round trip instead of two. The merge runs after the main loop,
    /// whose registers are dead by then.
    pub wide_merge: bool,
    /// Tensor-core kernel with early loads (the letter `q`): Q first. After
    /// `griddepcontrol.wait` a block issues its Q loads (whose address needs only the work
    /// item) before anything consumes `row_pos`, so Q's L2 round trip runs beside
    /// `row_pos`'s instead of after it (without it ptxas issues them after the first use of
    /// `row_pos`: two dependent round trips before the first tile's math).
    pub q_first: bool,
    /// Tensor-core kernel (the letter `p`): push merge in thread-block clusters. A block
    /// of a cluster launch sends each output element's state (and each head's m, l) of its
    /// chunk straight into the shared memory of the segment's block that merges it
    /// (`st.async`, completing that block's mbarrier transaction count), so a merging block
    /// waits only for its own barrier's phase: no `barrier.cluster` with its
    /// `MEMBAR.ALL.GPU` around the exchange, no remote load round trip, no barrier before
    /// exit; a segment of one chunk writes O at once.
    pub push_merge: bool,
    /// The cluster merge's exit (the letter `o`): a block of a cluster launch computes its
    /// share of O from the other blocks' states into shared memory (2 KB more per block;
    /// an array in registers moved ptxas's allocation for the whole kernel), arrives at the
    /// exit barrier (release: its remote loads are complete, and no global store is
    /// pending, so the arrive's `MEMBAR.ALL.GPU` has nothing to wait for), and only then
    /// stores O and waits for the others; without it the O stores come first and the
    /// arrive's fence waits for their acknowledgements (one L2 write round trip at every
    /// cluster's end). Plain launches run the same code as without it.
    pub exit_arrive_first: bool,
    /// Tensor-core kernel (the letter `k`): combine unrolled. The block's combine of its
    /// warps' states (per output element: the head's max over the warps, each warp's
    /// weight exp2(m_w − m), the weighted sums of acc and l) runs for all of a thread's
    /// elements at once, branch-free: every shared-memory load of the elements' states is
    /// issued before the first exp2, so the elements' chains overlap instead of running one
    /// after another (4 per thread for a GQA group of 4 at head_dim 128 and 128 threads).
    /// Same arithmetic, reassociated only where a warp saw no key (its weight 0 is now
    /// multiplied in, not skipped).
    pub combine_unrolled: bool,
    /// With the fast merge (the letter `g`): the counter merge on cluster launches too. A
    /// block of a cluster launch writes its partial and counts itself in, and the segment's
    /// last arrival merges from L2, as on a plain list, instead of the exchange through
    /// distributed shared memory between two cluster barriers; the work list and its
    /// clusters are unchanged (the cluster then only co-schedules a segment's chunks).
    pub global_merge: bool,
    /// The letter `h`: clusters of up to 16 blocks ([`decode_max_cluster`]). The cluster
    /// merge takes segments of up to 16 chunks (CUDA's non-portable cluster size: the
    /// manifest's `tiles.cluster` says 16, and the executor allows it on the function with
    /// `CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED`), so the host may pack a step's
    /// segments into clusters of 16 where a segment needs 9–16 chunks, moving its merge
    /// from L2 (partials, arrival counter, merge round trips) to distributed shared memory.
    /// Only the merge's loop bound changes in the kernel.
    pub wide_clusters: bool,
    /// With the fast merge on tensor cores (the letter `v`): half partials. A chunk of a
    /// split segment on a plain launch writes its normalised output o = a / l in f16
    /// (head_dim × 2 bytes per query head, not head_dim × 4, in rows of their own: 256-byte
    /// aligned at head_dim 128) and its (m, l) in f32 to a second region of the same
    /// scratch buffer (`n_items × group × (head_dim / 2 + 2)` floats of the ABI's
    /// `n_items × group × (head_dim + 2)`), and
    /// the merge loads pairs of elements as one 32-bit `half2` per chunk, so a thread's
    /// registers hold twice the chunks of a batch ([`decode_merge_batch_half`]: 32 for a
    /// GQA group of 4 at head_dim 128, where the f32 merge takes 16) and the partials'
    /// bytes halve both ways. The merge weights chunk c by exp2(m_c − m)·l_c (the same sum:
    /// a_c = l_c·o_c). Error: f16 rounds o_c to 2^-11 of its magnitude (≤ max |V|), below a
    /// bf16 output's own rounding; |o_c| above f16's 65504 would overflow (never for
    /// attention over f16 values; for bf16 values that large, keep it off). Needs head_dim
    /// % 64 == 0 (a warp's 32 pairs lie in one head); cluster launches are unchanged (no
    /// partials), and it replaces neither the ticket merge nor the probes' paths.
    pub half_partials: bool,
    /// With the fast merge on tensor cores, not the ticket merge (the letter `j`): the last
    /// arrival merges from its own registers. A chunk of a split segment on a plain launch
    /// writes its partial as before, then counts its arrival with one thread's acquire
    /// atomic (not acquire-release: it waits for nothing of its own) in the low half of the
    /// segment's counter; a chunk that is not the last publishes its partial with a release
    /// add to the high half and exits, and the last one keeps its own state in registers,
    /// merges the others' partials once the high half says all are published (it knows
    /// that from its own atomic's value, or polls with acquire loads: every other chunk has
    /// already arrived, so it waits only for stores in flight) and re-arms the counter. Its
    /// own partial stores and the fence before its release leave the launch's critical
    /// path (one round trip of write acknowledgements); the others' publication moves one
    /// atomic later. Same results as the fast merge, the merger's own state unrounded.
    /// Measured a tie where a segment's chunks finish together (one-wave lists) and
    /// 0.1–0.5 µs faster where they finish apart ([`CUDA_DECODE_OWN_MERGE`]).
    pub own_merge: bool,
    /// Benchmark probe only (the letter `z`): the kernel streams its chunk's K/V tiles and
    /// does nothing else (no math, no merge, O unwritten), so its time is the floor of this
    /// work list's memory traffic. Never a runtime kernel: its output is undefined.
    pub probe: bool,
    /// Benchmark probe only (the letter `y`): the whole kernel, but a chunk of a split
    /// segment writes its partial and exits (no arrival counter, no merge), so the time
    /// against the full kernel is what the arrival and the merge cost. Output undefined.
    pub probe_no_merge: bool,
    /// Benchmark probe only (the letter `n`): as `y` but nothing is stored after the
    /// block's combine (no partial, no O), so `n` − `x` is the combine and `y` − `n` the
    /// stores. `y` and `n` take the plain path on a cluster launch too (no exchange between
    /// the cluster's blocks: `y` writes the partial a plain list would). Output undefined.
    pub probe_no_store: bool,
    /// Benchmark probe only (the letter `x`): the stream and the math of every tile, then
    /// nothing (no combine of the warps' states, no partial or O written), so its time
    /// against `y` is what the epilogue and the writes cost. Output undefined.
    pub probe_no_epilogue: bool,
    /// The letter `G` (session 34's path, kept to measure against): a GQA group past
    /// [`CUDA_DECODE_BLOCK_GROUP`](crate::lower::consts::CUDA_DECODE_BLOCK_GROUP) runs whole in one block instead of as sub-groups
    /// ([`decode_sub_groups`]).
    pub whole_group: bool,
    /// The letter `A` (session 36, tensor cores; opt-in): all sub-groups of 8 of a GQA
    /// group past [`CUDA_DECODE_BLOCK_GROUP`](crate::lower::consts::CUDA_DECODE_BLOCK_GROUP) ([`decode_sub_groups`]) share one block over
    /// ONE staged K/V tile: the block has `warps` warps per MMA column tile of its heads
    /// (so `WARPSxSTAGES` keeps its key tile of `16 · warps` keys and its stages; MQA's 32
    /// heads at `4x3`: 16 warps), each warp its 16 keys against one column tile of 8
    /// heads, and the warps' states are merged per column over the `warps` key-row warps
    /// ([`decode_block_sub_groups`], [`decode_col_tiles`]). A K/V slot then crosses L2 → SM
    /// once per KV head instead of once per 8 query heads. Measured (benches/RESULTS.md,
    /// decode "Session 36 (branch s36-mqa)"): MQA B = 16 16k 11–17 % faster than the
    /// sub-groups; slower at 4k and at B = 4 (1–9 µs), so not the default. Its pairs form
    /// (two sub-groups a block, the letter `P`) won no cell and was deleted.
    pub sub_groups_shared: bool,
}

impl DecodeTuning {
    /// The compiler's decode shape for a model whose GQA group has `group_size` query
    /// heads: [`Default`], and for MHA (a group of 1) also the cheap refill issue (`i`),
    /// four Q·Kᵀ chains (`c`) and the lazy rescale (`l`) where
    /// [`CUDA_DECODE_MHA_PER_TILE`] says so (measured faster on every Vicuna-7B layer, a tie
    /// on Llama-3-8B's GQA groups of 4; benches/RESULTS.md, decode "Session 15"), and for
    /// GQA (a group of 2 or more) Q first (`q`) where [`CUDA_DECODE_GQA_Q_FIRST`] says so
    /// (0.992–0.999 of the time in geometric mean on Llama-3-8B; a tie on Vicuna-7B;
    /// decode "Session 16") and the combine unrolled (`k`) where
    /// [`CUDA_DECODE_GQA_COMBINE_UNROLLED`] says so (0.966–0.995 of the time in geometric
    /// mean on Llama-3-8B, faster on every layer of every configuration in two blocks; on
    /// Vicuna-7B faster at B = 4, a tie at B = 16; decode "Session 18") and half partials
    /// (`v`) where [`CUDA_DECODE_GQA_HALF_PARTIALS`] says so (0.990–0.996 of the time in
    /// geometric mean on Llama-3-8B's 16k configurations, where every list merges through
    /// L2, a tie at 4k, where most lists are clusters; on Vicuna-7B 1.010–1.012 at B = 4
    /// 4k; decode "Session 20"), and for MHA the last arrival merging from its registers
    /// (`j`) where [`CUDA_DECODE_MHA_OWN_MERGE`] says so (Vicuna-7B B = 4: −0.11 / −0.21 µs
    /// per layer in median at 4k / 16k; a tie on Llama-3-8B; decode "Session 21").
    pub fn default_for(group_size: u32) -> Self {
        let mut t = Self::default();
        if group_size == 1 && CUDA_DECODE_MHA_PER_TILE {
            t.cheap_issue = true;
            t.four_chains = true;
            t.lazy_rescale = true;
        }
        if group_size >= 2 && CUDA_DECODE_GQA_Q_FIRST {
            t.q_first = true;
        }
        if group_size >= 2 && CUDA_DECODE_GQA_COMBINE_UNROLLED {
            t.combine_unrolled = true;
        }
        if group_size >= 2 && CUDA_DECODE_GQA_HALF_PARTIALS {
            t.half_partials = true;
        }
        if group_size == 1 && CUDA_DECODE_MHA_OWN_MERGE {
            t.own_merge = true;
        }
        t
    }

    /// Whether this is a benchmark probe (`z`, `y`, `n`, `x`), whose output is undefined.
    pub fn is_probe(&self) -> bool {
        self.probe || self.probe_no_merge || self.probe_no_store || self.probe_no_epilogue
    }
}

impl Default for DecodeTuning {
    fn default() -> Self {
        DecodeTuning {
            warps: CUDA_DECODE_WARPS,
            stages: CUDA_DECODE_STAGES,
            warp_pipes: CUDA_DECODE_WARP_PIPES,
            early_loads: CUDA_DECODE_EARLY_LOADS,
            fast_merge: CUDA_DECODE_FAST_MERGE,
            lean: CUDA_DECODE_LEAN_EPILOGUE,
            ticket: CUDA_DECODE_TICKET_MERGE,
            full_prologue: CUDA_DECODE_FULL_PROLOGUE,
            refill: CUDA_DECODE_REFILL,
            arrive: CUDA_DECODE_ARRIVE,
            unmasked_tiles: CUDA_DECODE_UNMASKED_TILES,
            four_chains: CUDA_DECODE_FOUR_CHAINS,
            cheap_issue: CUDA_DECODE_CHEAP_ISSUE,
            lazy_rescale: CUDA_DECODE_LAZY_RESCALE,
            wide_merge: CUDA_DECODE_WIDE_MERGE,
            q_first: CUDA_DECODE_Q_FIRST,
            push_merge: CUDA_DECODE_PUSH_MERGE,
            exit_arrive_first: CUDA_DECODE_EXIT_ARRIVE_FIRST,
            combine_unrolled: CUDA_DECODE_COMBINE_UNROLLED,
            half_partials: CUDA_DECODE_HALF_PARTIALS,
            own_merge: CUDA_DECODE_OWN_MERGE,
            global_merge: false,
            wide_clusters: CUDA_DECODE_WIDE_CLUSTERS,
            probe: false,
            probe_no_merge: false,
            probe_no_store: false,
            probe_no_epilogue: false,
            whole_group: false,
            sub_groups_shared: false,
        }
    }
}

/// Prefill kernel shape choices on tensor cores (defaults: `lower::consts`); the scalar
/// f32 kernel ignores them. Benchmarks generate variants (`examples/bench_prefill.rs`)
/// and name them `WGxBNxBLOCKS` plus the letters `o` (overlap), `s` (skip), `p` (P once),
/// `w` (warp-specialized), `g` (ping-pong of the consumers' MMA turns, with `w`), `h`
/// (bf16: P·V in f16, with `w`), `v` (V arrives in f16, with `h`), `u` (`v`'s pre-pass
/// reads V once), `r` (lazy rescale), `q` (Q in registers), `e` (O rescaled under
/// Q·Kᵀ) and the later letters below (`n`, `c`, `k`, `t`, `a`, `f`, `j`/`m`/`i`), e.g. `2x64x2s`,
/// `2x64x1w`, `2x64x1wg`, `2x64x1owghv`, `2x64x1owghvuqe` or `3x64x1owghvuncaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefillTuning {
    /// Warpgroups (4 warps, 64 query rows each) per block, 1..=3: the query tile is 64 × this.
    pub warpgroups: u32,
    /// Keys per K/V tile: 64 or 128.
    pub k_tile: u32,
    /// Blocks per SM the kernel is compiled for (`__launch_bounds__`), 1 or 2: caps the
    /// registers per thread at 65536 / (threads × this).
    pub blocks_per_sm: u32,
    /// sm_90a: issue Q·Kᵀ of tile j + 1 with P·V of tile j and run tile j + 1's softmax
    /// while both execute (FlashAttention-3's intra-warpgroup overlap).
    pub overlap: bool,
    /// sm_90a: each warpgroup masks per element only the key tiles where its own 64 query
    /// rows need it and, without `overlap`, computes only the tiles those rows see (the
    /// overlapped pipeline issues every tile: ptxas serializes wgmma under a branch).
    pub skip: bool,
    /// bf16: P enters P·V rounded once to bf16 (one MMA per step), not as bf16(p) plus its
    /// rounding remainder (two MMAs; `templates/cuda/prefill.cu.j2`, `P_PARTS`). Faster,
    /// but over the 3e-3 bf16 tolerance on some upstream layers
    /// (tests/prefill_bf16_rounding.rs). f16 always uses one part.
    pub p_once: bool,
    /// sm_90a: one more warpgroup per block, a producer that only streams K/V tiles in
    /// (cp.async into a ring of [`prefill_stages`] buffers, handed over by mbarriers), and
    /// `warpgroups` consumer warpgroups that only compute; `setmaxnreg` moves the
    /// producer's registers to the consumers (FlashAttention-3's warp specialization), so
    /// that bf16's two-part P fits beside O without ptxas serializing the MMAs. Needs
    /// 2 (consumer) warpgroups, or 3 with `pv_f16` and 64-key tiles, and 1 block per SM;
    /// not combined with `skip`. With
    /// `overlap`, each consumer runs the softmax of tile j while P·V of tile j − 1
    /// executes, P alternating between two register sets.
    pub warp_specialized: bool,
    /// With `warp_specialized`: the two consumer warpgroups take turns on the tensor cores
    /// (FlashAttention-3's ping-pong): a pair of named barriers lets one warpgroup issue its
    /// MMAs (P·V of tile j − 1 with Q·Kᵀ of tile j) only after the other has issued its own,
    /// so one's softmax runs while the other's MMAs execute.
    pub pingpong: bool,
    /// With `warp_specialized`, bf16 storage: P·V runs on f16 operands, one MMA per step.
    /// The producer converts each V tile in shared memory to f16 after scaling it by a
    /// power of two 2^-E (E = the running maximum over the tiles so far of the tile's
    /// largest exponent less 14, so every scaled |v| < 2^15); the consumers rescale O by
    /// 2^(E_old - E_new) when E grows and the output by 2^E. P then keeps 11 bits (2^-12
    /// relative, as f16 storage) instead of bf16's 8 in one part or ~16 in two parts
    /// (`p_once`), at the one-part MMA count. f16 storage ignores it (already f16).
    pub pv_f16: bool,
    /// With `pv_f16` (the `v` flag): V arrives in f16 already, converted before the
    /// kernel by the module's two pre-pass kernels (`{prefill}_vmax`, `{prefill}_vf16`)
    /// with one power-of-two scale per KV head, so the producer only copies (as for K).
    /// The kernel then takes [`Arg::VF16`](crate::codegen::abi::Arg::VF16) and [`Arg::VMax`](crate::codegen::abi::Arg::VMax) (codegen::abi states the
    /// host contract); sm_90a only (the portable body traps).
    pub v_f16_in: bool,
    /// sm_90a (the `r` flag): lazy rescale (FlashAttention-4's). A row's running max
    /// stays while a tile's maximum exceeds it by at most 2^8 (8 in log2 units), so O is
    /// rescaled only when the max grows by more; exact (O and the row sum l share the
    /// stale max, the weights stay below 2^8). The mma.sync body ignores it.
    pub lazy_rescale: bool,
    /// With `v` (the `u` flag): the pre-pass converts V at scale 1 in the same pass that
    /// finds each KV head's largest |v| (`{prefill}_vcvt`), and converts again only the
    /// heads whose largest |v| lies outside [2^-10, 2^15) (`{prefill}_vfix`), so V is read
    /// once, not twice (codegen::abi::Arg::VF16 states both forms of the host contract).
    pub v_unit: bool,
    /// With `warp_specialized` and `overlap`, sm_90a (the `q` flag): each consumer keeps its
    /// Q rows as wgmma A fragments in registers (32 per thread at head_dim 128, loaded once
    /// by ldmatrix) and issues Q·Kᵀ with A from registers, so the tensor cores read only K
    /// from shared memory: per pair of 64-key tiles the block's shared-memory traffic falls
    /// from 128 KiB (Q 32, K 32, V 32, the producer's writes 32) to 96 KiB, which at the
    /// dense MMA rate is 94 of the 128 bytes per cycle an SM's shared memory delivers.
    pub q_regs: bool,
    /// With `warp_specialized` and `overlap`, sm_90a (the `e` flag): O's rescale by the last
    /// tile's correction runs after the next Q·Kᵀ is issued and before P·V is, while that
    /// Q·Kᵀ executes (FlashAttention-3's order), instead of between P·V's completion and
    /// the next turn, where it lengthens each consumer's serial chain.
    pub early_rescale: bool,
    /// With `warp_specialized`, sm_90a (the `n` flag): a leaner consumer section. The
    /// wgmma descriptors of a tile are one base word plus immediates (not rebuilt from the
    /// address for each 16-wide step: ~50 uniform instructions per tile between the
    /// turn and the last MMA issue), the masking leaves the row-max loop (one branch per
    /// tile instead of one per score pair), and a tile is masked per element only where
    /// the warp's own 16 query rows need it, not the whole block's 64 × warpgroups rows
    /// (a 192-row block's band has ~7 such tiles; a warp's ~2). Same outputs.
    pub lean: bool,
    /// With `warp_specialized` (the `c` flag): the producer's copy loop strength-reduced.
    /// Each producer thread copies one fixed 16-byte column chunk of every 8th row, so the
    /// shared and global addresses of a tile are a base plus compile-time steps.
    pub lean_copy: bool,
    /// With `warp_specialized` and `overlap`, not `early_rescale`, sm_90a (the `k` flag):
    /// each consumer warpgroup issues MMAs only for the key tiles its own 64 rows see
    /// (the block's sink tiles and its own band, which starts up to 2 tiles later and
    /// ends up to 2 tiles earlier than the block's), taking its other turns without MMAs.
    /// With 3 warpgroups the block's band is 128 keys wider than one warpgroup's: up to
    /// 4 of a warpgroup's tiles per block are wasted, 11% of a dense layer's work at 4k
    /// and up to 31% on Vicuna-7B's narrowest 4k layers (2% and 9% at this granularity).
    pub key_range: bool,
    /// With `warp_specialized`, `pingpong`, `overlap` and `lean`, without `key_range`,
    /// `early_rescale` and `q_regs`, and in bf16 `v_f16_in` where `pv_f16` (the `t` flag): persistent
    /// blocks. The grid is one block per SM ([`Grid::PersistentQueryTiles`](crate::codegen::abi::Grid::PersistentQueryTiles)); each block
    /// takes query tiles (today's blocks, in today's order) from a counter in the module
    /// and its producer loads the next tile's Q (a second Q buffer) and first K/V tiles
    /// while the consumers finish the current one, so the per-block fixed cost (launch,
    /// barrier set-up, Q load, the ring's fill: about 7 us a block on the H200, RESULTS
    /// "Session 12") overlaps the previous tile's work. sm_90a only (the portable body
    /// traps). A module's prefill must not run concurrently with itself (the counter).
    pub persistent: bool,
    /// The `a` flag, under the same conditions as `t` and not with it: persistent blocks
    /// on the module's narrow layers only ([`PrefillTuning::for_layer`]: the layer's mean
    /// span at `CUDA_PREFILL_TC_NARROW_REF_TOKENS` tokens is at most
    /// `CUDA_PREFILL_TC_NARROW_SPAN_SHARE` of them), one block per query tile elsewhere.
    /// `t` saves fixed cost per query tile and costs ~2% per key tile, so it pays where a
    /// query tile has few key tiles and loses on near-dense layers at 16k (RESULTS,
    /// "Session 12, second round"). Each layer's kernel is generated with the tuning
    /// `for_layer` gives it (its manifest constant `tuning` says which).
    pub persistent_narrow: bool,
    /// With `warp_specialized`, sm_90a (the `f` flag): where the launch's longest row is at
    /// most `CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS` tokens, a row's query tiles are counted
    /// from its last token, so the partial tile (a row length not a multiple of the tile's
    /// rows) is the row's first, with the shortest band, not its last, with the longest.
    /// Every consumer warpgroup computes every key tile of its block, so a partial last tile
    /// of 64 rows at 4096 tokens cost a whole 192-row tile's band (5% of a dense 4k layer's
    /// tiles). Longer launches keep the tiles from the row's start: at 16k x 1 the end-aligned
    /// tiles were 1.00x on Llama-3-8B but up to 1.16x on Vicuna-7B (H200, benches/RESULTS.md,
    /// "Session 15"). The portable body keeps its own (start-aligned) tiles under the same grid.
    pub end_aligned: bool,
    /// With `end_aligned` (letters `j` = 2, `m` = 4, `i` = 8; 1 without them, the grid's own
    /// order): the launch order takes a (query head, row) pair's query tiles this many at a
    /// time, back to back, so that they start together and stream the same K/V tiles a few
    /// tiles apart: all but the first read them from L2. In the grid's order the next tile of
    /// a pair starts one block's time later, after every other pair has streamed its band
    /// (Vicuna-7B 4k x 4: 128 pairs, 268 MB of K/V through the 50 MB L2, each K/V byte read
    /// from DRAM ~12 times; the board lowers the SM clock under that load, RESULTS
    /// "Session 16"). The grid, its size and the kernel's arithmetic are unchanged; only
    /// which block computes which tile (and `t`'s counter numbering) changes. `m` is the
    /// bf16 default at head_dim 128 since session 17 (`CUDA_PREFILL_TC_HEAD_TILES`): on the
    /// H200 it cut Vicuna-7B's DRAM reads 3x and, run in blocks, its 4k x 4 prefill to
    /// 0.93x (an interleaved A/B, which runs both variants at one clock, showed 0.994x;
    /// benches/RESULTS.md, "Session 17").
    pub head_tiles: u32,
    /// With `end_aligned` (the `y` flag, session 18; opt-in): count query tiles from the
    /// row's end at every length, not only up to `CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS`.
    /// At 16k x 1 the partial tile (16384 % 192 = 64 rows) is then the row's first, with a
    /// one-tile band, instead of its last, whose band is the row's longest (1.5% of a dense
    /// 16k layer's tiles). Session 15's rule came from an A/B that lost up to 16% on
    /// Vicuna-7B at 16k, which the tile count does not explain; session 16 found that
    /// configuration's interleaved rounds drifting by 3–5%, so `y` is timed in blocks.
    pub end_aligned_always: bool,
    /// With `warp_specialized`, sm_90a (the `b` flag, session 19; opt-in): lean block ends.
    /// The one-tile kernel's consumers copy their Q rows as the producer's `c` copies do
    /// (one fixed 16-byte chunk per thread, compile-time row steps) and each warpgroup
    /// waits for its own 64 rows only; every form writes its output rows with one fixed
    /// chunk per lane and compile-time steps. Nsight Compute's samples of Vicuna-7B l15 and
    /// l27 at 4k x 4 (benches/RESULTS.md, "Session 19") put ~0.8 us of a block's prologue in
    /// the generic Q copy loop and ~1.6 us of each query tile's epilogue in the output loop,
    /// both issue-bound on 64-bit index arithmetic; the fitted fixed cost is 4.05 us a block.
    /// At head_dim 64 and 128 only (elsewhere the generic loops, as for `c`).
    pub lean_ends: bool,
    /// With `warp_specialized`, `pingpong`, `overlap` and `lean`, without `key_range`,
    /// `early_rescale` and `q_regs`, and in bf16 `v_f16_in` where `pv_f16` (the `d` flag,
    /// session 20; opt-in): own bands. Each consumer warpgroup takes sections only for its
    /// own key tiles (the block's sink tiles and its own 64 rows' band, which starts up to
    /// 2 tiles after the block's and ends up to 2 before it) and counts them on its own, so
    /// the round robin of turns has the largest own count + 1 turns a query tile instead of
    /// the block's tile count + 1: on a narrow band 2 fewer (Vicuna-7B l27 at 4k x 4: 13.3
    /// → 11.7 a query tile, `benches/prefill/s20/own_bands.py`). `k` kept a turn for every
    /// position and took ~0.99x, since each warpgroup's serial chain, not the tensor pipe,
    /// sets the pace (benches/RESULTS.md, "Session 11"). The producer hands a landed tile
    /// over before it blocks on a ring slot, so that a warpgroup may skip 2 band positions
    /// after a sink tile. In the one-tile kernel and in `t`; same outputs (a warpgroup's
    /// rows see none of the tiles it skips).
    pub own_bands: bool,
    /// With `warp_specialized` (the `z` flag, session 21; opt-in): a deeper K/V ring, up to
    /// 5 stages where they fit beside the Q tile ([`prefill_stages`]; at head_dim 128 with
    /// 64-key tiles the one-tile kernel's 48 KiB Q tile and 5 stages of 32 KiB take 208 KiB
    /// of the 227 KiB, while `t`'s two Q tiles leave room for 4 only, so `t` and `a`'s narrow
    /// layers keep 4). With `d` the warpgroups' positions are skewed by up to 2, so the
    /// producer, which may run the ring's stage count ahead of the slowest warpgroup's
    /// release, leads the last warpgroup by ~1 section at 4 stages (RESULTS "Session 20"):
    /// a fifth stage gives it ~2, so a K/V tile that comes from DRAM waits less often.
    /// Nothing else changes (same tiles, same arithmetic, same outputs). Measured within the
    /// noise (one-tile layers 0.997-1.002x in blocks on the H200, benches/RESULTS.md
    /// "Session 21"): the one-tile loop does not wait on its K/V tiles.
    pub deep_ring: bool,
    /// With `t` or `a` (the `H` flag, session 23; bf16's default at head_dim 128 since session
    /// 24, with `Q`): the persistent producer hands a query tile's last K/V tile over as soon
    /// as it lands, with thread 0's claim of the next query tile in flight, instead of after
    /// the claim, the next tile's geometry and its Q copy were issued. A clock64 trace of `t`
    /// showed the last warpgroup's last band section waiting ~2900 SM cycles a query tile for
    /// that tile (~8% of a Vicuna-7B l27 query tile at 4k x 4;
    /// `benches/prefill/s23/trace_report.py`). The claim is issued where it was (not a tile
    /// ahead, as session 22's removed `x`; session 24's `G` and `L`, which claimed one and two
    /// K/V tiles earlier, lost too: DESIGN §6.1 "s24-prefill"). Same tiles, same arithmetic,
    /// same outputs; the one-tile kernel (no next tile) is unchanged. Alone it took
    /// 1.000-1.006x on the H200 (the next tile then waits for its Q, whose generic copy slows
    /// under the consumers' work); with `lean_q` 0.971-0.975x on the `t` layers at 4k x 4
    /// (benches/RESULTS.md, "Session 23").
    pub switch_at_once: bool,
    /// With `t` or `a` and `c` (the `Q` flag, session 23; bf16's default at head_dim 128 since
    /// session 24, with `H`): the persistent producer copies each query tile's Q as `c`
    /// copies K/V (one fixed 16-byte chunk a thread, compile-time row steps) instead of the
    /// generic loop (a division, the swizzle and 64-bit addresses per chunk, 24 chunks a
    /// thread at 192 rows), which lies on the path from a query tile's claim to the next
    /// tile's first section. Same outputs.
    pub lean_q: bool,
}

impl Default for PrefillTuning {
    fn default() -> Self {
        PrefillTuning {
            warpgroups: CUDA_PREFILL_TC_THREADS / 128,
            k_tile: CUDA_PREFILL_TC_K_TILE,
            blocks_per_sm: CUDA_PREFILL_TC_MIN_BLOCKS,
            overlap: CUDA_PREFILL_TC_OVERLAP,
            skip: CUDA_PREFILL_TC_SKIP,
            p_once: CUDA_PREFILL_TC_P_ONCE,
            warp_specialized: CUDA_PREFILL_TC_WARP_SPECIALIZED,
            pingpong: CUDA_PREFILL_TC_PINGPONG,
            pv_f16: CUDA_PREFILL_TC_PV_F16,
            v_f16_in: CUDA_PREFILL_TC_V_F16_IN,
            lazy_rescale: CUDA_PREFILL_TC_LAZY_RESCALE,
            v_unit: CUDA_PREFILL_TC_V_UNIT,
            q_regs: CUDA_PREFILL_TC_Q_REGS,
            early_rescale: CUDA_PREFILL_TC_EARLY_RESCALE,
            lean: CUDA_PREFILL_TC_LEAN,
            lean_copy: CUDA_PREFILL_TC_LEAN_COPY,
            key_range: CUDA_PREFILL_TC_KEY_RANGE,
            // Only bf16 at head_dim 128 takes `t` or `a` (`default_for`).
            persistent: false,
            persistent_narrow: false,
            // Only bf16 and f16 at head_dim 128 take `f` (`default_for`).
            end_aligned: false,
            head_tiles: 1,
            end_aligned_always: false,
            lean_ends: false,
            own_bands: false,
            // Only bf16 at head_dim 128 would take `z` (`default_for`).
            deep_ring: false,
            // Only bf16 at head_dim 128 would take `H` and `Q` (`default_for`).
            switch_at_once: false,
            lean_q: false,
        }
    }
}

impl std::fmt::Display for PrefillTuning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}x{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}",
            self.warpgroups,
            self.k_tile,
            self.blocks_per_sm,
            if self.overlap { "o" } else { "" },
            if self.skip { "s" } else { "" },
            if self.p_once { "p" } else { "" },
            if self.warp_specialized { "w" } else { "" },
            if self.pingpong { "g" } else { "" },
            if self.pv_f16 { "h" } else { "" },
            if self.v_f16_in { "v" } else { "" },
            if self.v_unit { "u" } else { "" },
            if self.lazy_rescale { "r" } else { "" },
            if self.q_regs { "q" } else { "" },
            if self.early_rescale { "e" } else { "" },
            if self.lean { "n" } else { "" },
            if self.lean_copy { "c" } else { "" },
            if self.key_range { "k" } else { "" },
            if self.persistent { "t" } else { "" },
            if self.persistent_narrow { "a" } else { "" },
            if self.end_aligned { "f" } else { "" },
            if self.end_aligned_always { "y" } else { "" },
            if self.lean_ends { "b" } else { "" },
            if self.own_bands { "d" } else { "" },
            if self.deep_ring { "z" } else { "" },
            if self.switch_at_once { "H" } else { "" },
            if self.lean_q { "Q" } else { "" },
            match self.head_tiles {
                2 => "j",
                4 => "m",
                8 => "i",
                _ => "",
            }
        )
    }
}

impl std::str::FromStr for PrefillTuning {
    type Err = String;
    /// Parses `WGxBNxBLOCKS[o][s][p][w][g][h][v][u][r][q][e][n][c][k][t][a][f][y][b][d][z][H][Q][j|m|i]` (as written by `Display`) and checks the ranges.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "prefill variant `{text}`: {why} (expected WGxBNxBLOCKS[o][s][p][w][g][h][v][u][r][q][e][n][c][k][t][a][f][y][b][d][z][H][Q][j|m|i], warpgroups 1..=3, \
                 key tile 64 or 128, blocks 1 or 2, `w` with 2 warpgroups (3 with `h` and 64-key tiles) and 1 block and \
                 without `s`, `g` and `h` only with `w`, `h` without `p`, `v` only with `h`, `u` only with `v`, `q` and `e` only with `o` and `w`, `n` and `c` only with `w`, `k` only with `o` and `w` and without `e`, `t` and `a` only with `w`, `g`, `o` and `n` and without `k`, `e` and `q`, not together, `f` only with `w`, `y` only with `f`, `b` only with `w`, `d` only with `w`, `g`, `o` and `n` and without `k`, `e` and `q`, `z` only with `w`, `H` only with `t` or `a`, `Q` only with `t` or `a` and `c`, one of `j`, `m`, `i` only with `f`, e.g. 2x64x2s, 2x64x1w, \
                 2x64x1wg or 2x64x1owgh)"
            )
        };
        let flags_at = text
            .find(|c: char| c.is_ascii_alphabetic() && c != 'x')
            .unwrap_or(text.len());
        let (dims, flags) = text.split_at(flags_at);
        let nums: Vec<u32> = dims
            .split('x')
            .map(|n| n.parse().map_err(|_| bad("not three numbers")))
            .collect::<Result<_, _>>()?;
        let [warpgroups, k_tile, blocks_per_sm] = nums[..] else {
            return Err(bad("not three numbers"));
        };
        if flags.chars().any(|c| {
            !matches!(
                c,
                'o' | 's'
                    | 'p'
                    | 'w'
                    | 'g'
                    | 'h'
                    | 'v'
                    | 'u'
                    | 'r'
                    | 'q'
                    | 'e'
                    | 'n'
                    | 'c'
                    | 'k'
                    | 't'
                    | 'a'
                    | 'f'
                    | 'y'
                    | 'b'
                    | 'd'
                    | 'z'
                    | 'H'
                    | 'Q'
                    | 'j'
                    | 'm'
                    | 'i'
            )
        }) {
            return Err(bad("unknown flag"));
        }
        let order: Vec<u32> = flags
            .chars()
            .filter_map(|c| match c {
                'j' => Some(2),
                'm' => Some(4),
                'i' => Some(8),
                _ => None,
            })
            .collect();
        if order.len() > 1 {
            return Err(bad("more than one of `j`, `m`, `i`"));
        }
        let t = PrefillTuning {
            warpgroups,
            k_tile,
            blocks_per_sm,
            overlap: flags.contains('o'),
            skip: flags.contains('s'),
            p_once: flags.contains('p'),
            warp_specialized: flags.contains('w'),
            pingpong: flags.contains('g'),
            pv_f16: flags.contains('h'),
            v_f16_in: flags.contains('v'),
            lazy_rescale: flags.contains('r'),
            v_unit: flags.contains('u'),
            q_regs: flags.contains('q'),
            early_rescale: flags.contains('e'),
            lean: flags.contains('n'),
            lean_copy: flags.contains('c'),
            key_range: flags.contains('k'),
            persistent: flags.contains('t'),
            persistent_narrow: flags.contains('a'),
            end_aligned: flags.contains('f'),
            head_tiles: order.first().copied().unwrap_or(1),
            end_aligned_always: flags.contains('y'),
            lean_ends: flags.contains('b'),
            own_bands: flags.contains('d'),
            deep_ring: flags.contains('z'),
            switch_at_once: flags.contains('H'),
            lean_q: flags.contains('Q'),
        };
        t.check().map_err(|e| bad(&e))?;
        Ok(t)
    }
}

impl PrefillTuning {
    /// The default for a module's storage and head_dim: [`PrefillTuning::default`]
    /// (`2x64x1owghvunc`: bf16 multiplies P·V on f16 operands, V converted before the
    /// kernel by its one-read pre-pass, lean consumer sections and producer copies;
    /// `2x64x1owgnc` where P·V in f16 does not apply, f16 storage among them, and
    /// `2x64x1owg` without a wgmma body), with three consumer warpgroups (`3x64x1owghvunca`:
    /// persistent blocks on the narrow layers, `CUDA_PREFILL_TC_PERSISTENT_NARROW`, since
    /// session 13; on every layer, `3x64x1owghvunct`, where `CUDA_PREFILL_TC_PERSISTENT` is on;
    /// query tiles from the row's end on launches up to 8192 tokens, `f`, since session 15) where
    /// P·V is in f16 at head_dim 128 (`CUDA_PREFILL_TC_PV_F16_WARPGROUPS`), three warpgroups for f16
    /// storage too since session 12 (`3x64x1owghncf`: the `h` lets `check` take three); `c` only
    /// at head_dim 64 and 128 ([`prefill_lean_copy`]),
    /// where `generate_variant` accepts it, else the former default 2x64x2
    /// (two blocks of 256 threads, no producer). The ping-pong and overlap consumers need
    /// 3 K/V stages, which the 226 KiB ring holds at head_dim <= 192 but not at 256
    /// (2 stages: each side would wait for the other, see `generate_variant`).
    pub fn default_for(storage: StorageType, head_dim: u32) -> PrefillTuning {
        let mut t = PrefillTuning::default();
        // `h` and `v` only change bf16's wgmma body (f16 storage already multiplies f16
        // operands and reads V as it is, with no pre-pass to pay): the name says what is
        // generated, so f16 and the mma.sync body keep `2x64x1owg`.
        if !prefill_wgmma(storage, head_dim) {
            // `n`, `c` and `k` change only the wgmma body.
            t.lean = false;
            t.lean_copy = false;
            t.key_range = false;
            t.persistent = false;
            t.persistent_narrow = false;
            t.end_aligned = false;
        }
        t.lean_copy &= prefill_lean_copy(head_dim, t);
        if storage == StorageType::F16 && head_dim == 128 && prefill_wgmma(storage, head_dim) {
            // f16's P·V is one f16 MMA per step already: three consumer warpgroups fit as
            // in bf16 with `h` (measured at head_dim 128). `h` stays in the name: it is the
            // letter that lets `check` take three consumers, and f16 ignores it otherwise
            // (`3x64x1owghnc`, the variant timed).
            t.pv_f16 = true;
            t.v_f16_in = false;
            t.v_unit = false;
            t.warpgroups = CUDA_PREFILL_TC_PV_F16_WARPGROUPS;
            // Query tiles from the row's end on short launches (`f`, measured here).
            t.end_aligned = CUDA_PREFILL_TC_END_ALIGNED;
        } else if !prefill_pv_f16(storage, head_dim, t) {
            t.pv_f16 = false;
            t.v_f16_in = false;
            t.v_unit = false;
        } else if head_dim == 128 {
            // Three consumer warpgroups where P·V is one f16 MMA per step (the two-part P
            // does not fit their registers), at the head_dim they were measured at, and
            // persistent blocks there (`CUDA_PREFILL_TC_PERSISTENT`, measured only there).
            t.warpgroups = CUDA_PREFILL_TC_PV_F16_WARPGROUPS;
            t.persistent = CUDA_PREFILL_TC_PERSISTENT;
            // Or on the narrow layers only (`a`, `CUDA_PREFILL_TC_PERSISTENT_NARROW`).
            t.persistent_narrow = CUDA_PREFILL_TC_PERSISTENT_NARROW && !t.persistent;
            t.end_aligned = CUDA_PREFILL_TC_END_ALIGNED;
            // A pair's query tiles launched together (`m`, measured in bf16 only).
            if t.end_aligned {
                t.head_tiles = CUDA_PREFILL_TC_HEAD_TILES;
            }
            // Lean block ends (`b`, measured in bf16 at head_dim 128 only).
            t.lean_ends = CUDA_PREFILL_TC_LEAN_ENDS;
            // Own bands (`d`, measured in bf16 at head_dim 128 only).
            t.own_bands = CUDA_PREFILL_TC_OWN_BANDS;
            // A 5-stage ring where it fits (`z`, opt-in, bf16 at head_dim 128 only).
            t.deep_ring = CUDA_PREFILL_TC_DEEP_RING;
            // `t`'s producer: the last K/V tile at once, lean Q copies (`H`, `Q`, since session 24).
            let persistent = t.persistent || t.persistent_narrow;
            t.switch_at_once = CUDA_PREFILL_TC_SWITCH_AT_ONCE && persistent;
            t.lean_q = CUDA_PREFILL_TC_LEAN_Q && t.lean_copy && persistent;
        }
        let runs = |t: PrefillTuning| {
            let needs_stages = t.warp_specialized && (t.pingpong || t.overlap);
            prefill_shared_bytes(storage, head_dim, t) <= PREFILL_MAX_SHARED_BYTES
                && !(needs_stages
                    && prefill_wgmma(storage, head_dim)
                    && prefill_stages(storage, head_dim, t) < 3)
        };
        // `a`: where the narrow layers' persistent form does not fit, none takes it.
        if t.persistent_narrow
            && !runs(PrefillTuning {
                persistent: true,
                persistent_narrow: false,
                ..t
            })
        {
            t.persistent_narrow = false;
        }
        if runs(t) {
            return t;
        }
        // `t`'s second Q tile leaves fewer K/V stages: at head_dim 192 two, too few for the
        // ping-pong; there the blocks are not persistent rather than not warp-specialized.
        let one_tile = PrefillTuning {
            persistent: false,
            persistent_narrow: false,
            ..t
        };
        if t.persistent && runs(one_tile) {
            return one_tile;
        }
        PrefillTuning {
            blocks_per_sm: 2,
            overlap: false,
            warp_specialized: false,
            pingpong: false,
            pv_f16: false,
            v_f16_in: false,
            v_unit: false,
            lean: false,
            lean_copy: false,
            key_range: false,
            persistent: false,
            persistent_narrow: false,
            end_aligned: false,
            head_tiles: 1,
            end_aligned_always: false,
            lean_ends: false,
            own_bands: false,
            deep_ring: false,
            switch_at_once: false,
            lean_q: false,
            ..t
        }
    }

    /// The tuning `layer`'s prefill is generated with: `self`, but with `a`
    /// ([`PrefillTuning::persistent_narrow`]) persistent blocks (`t`) where the layer is
    /// narrow, its [`prefill_span_share`] at `CUDA_PREFILL_TC_NARROW_REF_TOKENS` tokens at
    /// most `CUDA_PREFILL_TC_NARROW_SPAN_SHARE`, and one block per query tile elsewhere.
    /// The rule reads only the plan, so a layer's kernel is the same at every prompt
    /// length (the kernels are compiled before the prompt is known).
    pub fn for_layer(self, layer: &LayerSpec, span: &SpanParams) -> PrefillTuning {
        if !self.persistent_narrow {
            return self;
        }
        let persistent = prefill_span_share(layer, span, CUDA_PREFILL_TC_NARROW_REF_TOKENS)
            <= CUDA_PREFILL_TC_NARROW_SPAN_SHARE;
        PrefillTuning {
            persistent,
            persistent_narrow: false,
            // `H` and `Q` change only the persistent producer: the one-tile layers' name says
            // what is generated.
            switch_at_once: self.switch_at_once && persistent,
            lean_q: self.lean_q && persistent,
            ..self
        }
    }

    /// Whether this is the lean overlapped ping-pong consumers' loop (`w`, `g`, `o`, `n`
    /// without `k`, `e` or `q`): the one body the query-tile loop (`t`, `a`) and the
    /// own-band sections (`d`) are built into.
    fn lean_pingpong_loop(&self) -> bool {
        self.warp_specialized
            && self.pingpong
            && self.overlap
            && self.lean
            && !self.key_range
            && !self.early_rescale
            && !self.q_regs
    }

    /// The ranges the template supports.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3).contains(&self.warpgroups) {
            return Err(format!("{} warpgroups", self.warpgroups));
        }
        if self.k_tile != 64 && self.k_tile != 128 {
            return Err(format!("key tile {}", self.k_tile));
        }
        if !(1..=2).contains(&self.blocks_per_sm) {
            return Err(format!("{} blocks per SM", self.blocks_per_sm));
        }
        if self.warp_specialized {
            // One consumer warpgroup has 255 registers without setmaxnreg; two blocks of
            // producer + consumers leave the consumers no more than without a producer;
            // three consumers get 152 registers, where ptxas serializes the two-part P·V
            // (C7512) as at 128, so three need P·V in f16 (`h`: one part, 16 registers
            // of P instead of 32).
            let consumers_fit =
                self.warpgroups == 2 || (self.warpgroups == 3 && self.pv_f16 && self.k_tile == 64);
            if !consumers_fit || self.blocks_per_sm != 1 {
                return Err(format!(
                    "`w` with {} warpgroups and {} blocks per SM",
                    self.warpgroups, self.blocks_per_sm
                ));
            }
            if self.skip {
                return Err("`w` with `s` (not built)".into());
            }
        }
        if self.pingpong && !self.warp_specialized {
            // The turns are between the consumer warpgroups of the `w` body.
            return Err("`g` without `w`".into());
        }
        if self.pv_f16 && !self.warp_specialized {
            // The producer warpgroup converts V to f16.
            return Err("`h` without `w`".into());
        }
        if self.pv_f16 && self.p_once {
            return Err("`h` with `p` (`h` is one part in f16)".into());
        }
        if self.v_f16_in && !self.pv_f16 {
            // Only the f16 P·V reads f16 V.
            return Err("`v` without `h`".into());
        }
        if self.v_unit && !self.v_f16_in {
            // `u` is a form of `v`'s pre-pass.
            return Err("`u` without `v`".into());
        }
        if (self.q_regs || self.early_rescale) && !(self.warp_specialized && self.overlap) {
            // Both change only the overlapped consumer loop of the `w` body.
            return Err("`q` or `e` without `o` and `w`".into());
        }
        if (self.lean || self.lean_copy) && !self.warp_specialized {
            // Both change only the `w` body (its consumer sections and its producer).
            return Err("`n` or `c` without `w`".into());
        }
        if self.key_range && !(self.warp_specialized && self.overlap && !self.early_rescale) {
            // The own-tile sections are a form of the overlapped consumer loop.
            return Err("`k` without `o` and `w`, or with `e`".into());
        }
        if self.persistent && self.persistent_narrow {
            // `t` is every layer, `a` the narrow ones.
            return Err("`t` with `a`".into());
        }
        if (self.persistent || self.persistent_narrow) && !self.lean_pingpong_loop() {
            // The query-tile loop is built into the lean overlapped ping-pong consumers only.
            return Err("`t` or `a` without `w`, `g`, `o` and `n`, or with `k`, `e` or `q`".into());
        }
        if self.end_aligned && !self.warp_specialized {
            // The query-tile geometry is the `w` body's.
            return Err("`f` without `w`".into());
        }
        if !matches!(self.head_tiles, 1 | 2 | 4 | 8) {
            return Err(format!(
                "{} query tiles of a head back to back",
                self.head_tiles
            ));
        }
        if self.end_aligned_always && !self.end_aligned {
            return Err("`y` without `f`".into());
        }
        if self.lean_ends && !self.warp_specialized {
            // The block ends it changes are the `w` body's.
            return Err("`b` without `w`".into());
        }
        if self.own_bands && !self.lean_pingpong_loop() {
            // The own-band sections are a form of `t`'s and the one-tile kernel's lean
            // overlapped ping-pong loop.
            return Err("`d` without `w`, `g`, `o` and `n`, or with `k`, `e` or `q`".into());
        }
        if self.deep_ring && !self.warp_specialized {
            // Only the producer's ring has more than the double buffer's 2 stages.
            return Err("`z` without `w`".into());
        }
        if (self.switch_at_once || self.lean_q) && !(self.persistent || self.persistent_narrow) {
            // Both change the persistent producer's switch between query tiles.
            return Err("`H` or `Q` without `t` or `a`".into());
        }
        if self.lean_q && !self.lean_copy {
            // The Q copy takes `c`'s fixed chunk and row steps.
            return Err("`Q` without `c`".into());
        }
        if self.head_tiles > 1 && !self.end_aligned {
            // The launch order is built into the `f` geometry (one-tile and persistent).
            return Err("`j`, `m` or `i` without `f`".into());
        }
        Ok(())
    }
}

impl std::fmt::Display for DecodeTuning {
    /// `WARPSxSTAGES` and the letters of the options that are on, in the order `w`
    /// (warp-private pipelines), `e` (early loads), `q` (Q first), `f` (full prologue), `r`
    /// (refill when free), `a` (arrival barriers), `i` (cheap refill issue), `u` (unmasked
    /// tiles), `c` (four Q·Kᵀ chains), `l` (lazy rescale), `m` (fast merge), `s` (lean
    /// epilogue), `k` (combine unrolled), `g` (counter merge on cluster lists), `h` (clusters of
    /// up to 16), `v` (half partials), `j` (the last arrival merges from its registers), `p` (push merge), `o` (exit arrive first), `t`
    /// (ticket merge), `b` (wide merge batches), `z`, `y`, `n` and `x` (the probes), `G`
    /// (a group past 8 whole in one block), `A` (a KV head's sub-groups sharing one
    /// block's tiles), e.g.
    /// `4x3em`, `4x3efmstb`, `4x3eqmsk` or `4x3w`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.warps, self.stages)?;
        for (on, letter) in [
            (self.warp_pipes, 'w'),
            (self.early_loads, 'e'),
            (self.q_first, 'q'),
            (self.full_prologue, 'f'),
            (self.refill, 'r'),
            (self.arrive, 'a'),
            (self.cheap_issue, 'i'),
            (self.unmasked_tiles, 'u'),
            (self.four_chains, 'c'),
            (self.lazy_rescale, 'l'),
            (self.fast_merge, 'm'),
            (self.lean, 's'),
            (self.combine_unrolled, 'k'),
            (self.global_merge, 'g'),
            (self.wide_clusters, 'h'),
            (self.half_partials, 'v'),
            (self.own_merge, 'j'),
            (self.push_merge, 'p'),
            (self.exit_arrive_first, 'o'),
            (self.ticket, 't'),
            (self.wide_merge, 'b'),
            (self.probe, 'z'),
            (self.probe_no_merge, 'y'),
            (self.probe_no_store, 'n'),
            (self.probe_no_epilogue, 'x'),
            (self.whole_group, 'G'),
            (self.sub_groups_shared, 'A'),
        ] {
            if on {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for DecodeTuning {
    type Err = String;

    /// Parses what [`Display`](std::fmt::Display) writes: `WARPSxSTAGES` and any of the
    /// letters `w`, `e`, `q`, `f`, `r`, `a`, `i`, `u`, `c`, `l`, `m`, `s`, `k`, `g`, `h`, `v`, `j`, `p`, `o`, `t`, `b`, `z`, `y`, `n`, `x`, `G`, `A` (a letter not
    /// written is off, whatever the default); `a` needs `r`; `A` excludes `G` and `w`.
    fn from_str(v: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "decode variant `{v}`: expected WARPSxSTAGES and option letters from w, e, q, f, r, \
                 a, i, u, c, l, m, s, k, g, h, v, j, p, o, t, b, z, y, n, x, G, A (a only with r; A not with G or w), e.g. 4x3, 4x3emsb or 4x3w"
            )
        };
        let (w, rest) = v.split_once('x').ok_or_else(bad)?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (s, letters) = rest.split_at(digits);
        let mut t = DecodeTuning {
            warps: w.parse().map_err(|_| bad())?,
            stages: s.parse().map_err(|_| bad())?,
            warp_pipes: false,
            early_loads: false,
            fast_merge: false,
            lean: false,
            ticket: false,
            full_prologue: false,
            refill: false,
            arrive: false,
            unmasked_tiles: false,
            four_chains: false,
            cheap_issue: false,
            lazy_rescale: false,
            wide_merge: false,
            q_first: false,
            push_merge: false,
            exit_arrive_first: false,
            combine_unrolled: false,
            global_merge: false,
            wide_clusters: false,
            half_partials: false,
            own_merge: false,
            probe: false,
            probe_no_merge: false,
            probe_no_store: false,
            probe_no_epilogue: false,
            whole_group: false,
            sub_groups_shared: false,
        };
        for c in letters.chars() {
            let flag = match c {
                'w' => &mut t.warp_pipes,
                'e' => &mut t.early_loads,
                'f' => &mut t.full_prologue,
                'r' => &mut t.refill,
                'a' => &mut t.arrive,
                'u' => &mut t.unmasked_tiles,
                'c' => &mut t.four_chains,
                'i' => &mut t.cheap_issue,
                'l' => &mut t.lazy_rescale,
                'm' => &mut t.fast_merge,
                's' => &mut t.lean,
                't' => &mut t.ticket,
                'b' => &mut t.wide_merge,
                'q' => &mut t.q_first,
                'p' => &mut t.push_merge,
                'o' => &mut t.exit_arrive_first,
                'k' => &mut t.combine_unrolled,
                'g' => &mut t.global_merge,
                'h' => &mut t.wide_clusters,
                'v' => &mut t.half_partials,
                'j' => &mut t.own_merge,
                'n' => &mut t.probe_no_store,
                'z' => &mut t.probe,
                'y' => &mut t.probe_no_merge,
                'x' => &mut t.probe_no_epilogue,
                'G' => &mut t.whole_group,
                'A' => &mut t.sub_groups_shared,
                _ => return Err(bad()),
            };
            if *flag {
                return Err(bad());
            }
            *flag = true;
        }
        if t.arrive && !t.refill {
            // The arrival barriers replace the barrier before each tile, which only the
            // refill's barrier after the math makes safe to drop.
            return Err(bad());
        }
        if t.sub_groups_shared && (t.whole_group || t.warp_pipes) {
            // One block's warps split over column tiles share the block-wide pipeline.
            return Err(bad());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_tunings_parse_what_they_print() {
        for v in [
            "4x3",
            "4x3w",
            "4x3em",
            "4x3e",
            "4x3m",
            "4x3ez",
            "4x3emy",
            "2x6w",
            "4x3emst",
            "4x3ems",
            "4x3emt",
            "4x3emx",
            "4x3efmst",
            "4x3efm",
            "4x3efmstb",
            "4x3emsb",
            "4x3ermsx",
            "4x3erz",
            "4x3eramsx",
            "4x3eraz",
            "4x3eums",
            "4x3eraumsx",
            "4x3eims",
            "4x3ecms",
            "4x3elms",
            "4x3eiclms",
            "4x3eiclmsx",
            "4x3eqms",
            "4x3emsp",
            "4x3eqmsp",
            "4x3eqiclmsp",
            "4x3eqmso",
            "4x3eiclmso",
            "4x3eqmspo",
            "4x3eqmsk",
            "4x3eiclmsk",
            "4x3eqmsg",
            "4x3eqmskg",
            "4x3eqmsn",
            "4x3eqmskn",
            "4x3eqmsky",
            "4x3eqmskh",
            "4x3eqmskvj",
            "4x3eiclmsj",
        ] {
            let t: DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.to_string(), v);
        }
        // Letters in any order, each once; the default prints its letters.
        assert_eq!(
            "4x3me".parse::<DecodeTuning>().unwrap().to_string(),
            "4x3em"
        );
        for bad in [
            "4x3ee", "4x3hh", "4x3jj", "4x3d", "x3", "4x", "4x3 e", "4x3ema", "4x3qq", "4x3kk",
            "4x3vv",
        ] {
            let e = bad.parse::<DecodeTuning>().unwrap_err();
            assert!(
                e.contains(bad)
                    && e.contains("w, e, q, f, r, a, i, u, c, l, m, s, k, g, h, v, j, p, o, t"),
                "{e}"
            );
        }
        let d = DecodeTuning::default();
        assert_eq!(d.to_string().parse::<DecodeTuning>(), Ok(d));
        assert!(!d.is_probe());
    }

    #[test]
    fn mha_takes_the_per_tile_options_by_default() {
        // Session 15 (benches/RESULTS.md): 4x3eiclms for a group of 1; session 16: Q first
        // for GQA groups; session 18: the combine unrolled for GQA groups.
        // Session 21: the last arrival merging from its registers (`j`) for a group of 1.
        assert_eq!(DecodeTuning::default_for(1).to_string(), "4x3eiclmsj");
        // Session 20: half partials for GQA groups.
        for g in [2, 4, 8] {
            assert_eq!(DecodeTuning::default_for(g).to_string(), "4x3eqmskv");
        }
        assert_eq!(DecodeTuning::default().to_string(), "4x3ems");
    }

    #[test]
    fn the_half_partials_letter_round_trips_and_is_the_gqa_default() {
        // Session 20: `v` writes f16 partials; GQA groups take it, MHA does not.
        let t: DecodeTuning = "4x3eqmskv".parse().unwrap();
        assert!(t.half_partials);
        assert_eq!(t.to_string(), "4x3eqmskv");
        assert_eq!("4x3evqmsk".parse::<DecodeTuning>(), Ok(t));
        assert_eq!(DecodeTuning::default_for(4), t);
        assert!(!DecodeTuning::default_for(1).half_partials);
        assert!(!DecodeTuning::default().half_partials);
    }

    #[test]
    fn the_own_merge_letter_round_trips_and_is_the_mha_default() {
        // Session 21: `j`, the last arrival merges from its registers; MHA models take it
        // (Vicuna-7B B = 4), GQA groups do not (a tie on Llama-3-8B).
        let t: DecodeTuning = "4x3eqmskvj".parse().unwrap();
        assert!(t.own_merge);
        assert_eq!(t.to_string(), "4x3eqmskvj");
        assert_eq!("4x3jeqmskv".parse::<DecodeTuning>(), Ok(t));
        assert!(!DecodeTuning::default_for(4).own_merge);
        assert!(DecodeTuning::default_for(1).own_merge);
        assert!(!DecodeTuning::default().own_merge);
    }
}
