//! CUDA back end: one CUDA C++ file per layer (`cuda/lLL.cu`): a fused prefill kernel
//! (`templates/cuda/layer.cu.j2`) and a split-K decode kernel over a host-built work list
//! that merges its own chunks (`templates/cuda/decode.cu.j2`, tensor cores for f16/bf16).
//!
//! The layer's rules, sink, span constants, head map and scale are baked into the source;
//! N, the row count, the per-row lengths / positions and the decode work list are kernel
//! parameters. Spans and segment offsets are computed from N on the device with the same
//! integer formulas as `plan::Rule::span` and `lower::CacheLayout`. Each kernel's
//! interface is emitted as one [`KernelAbi`].

#![warn(missing_docs)]

use serde::Serialize;
use serde_json::json;

use super::abi::{Access, Arg, Elem, Grid, KernelAbi, Param, Tiles};
use super::ctx::LayerCtx;
use super::{render, Artifact, CodegenError, KernelInfo, Phase, Target};
use crate::lower::consts::{
    CUDA_DECODE_ARRIVE, CUDA_DECODE_CHEAP_ISSUE, CUDA_DECODE_COMBINE_UNROLLED,
    CUDA_DECODE_EARLY_LOADS, CUDA_DECODE_EXIT_ARRIVE_FIRST, CUDA_DECODE_FAST_MERGE,
    CUDA_DECODE_FOUR_CHAINS, CUDA_DECODE_FULL_PROLOGUE, CUDA_DECODE_GQA_COMBINE_UNROLLED,
    CUDA_DECODE_GQA_HALF_PARTIALS, CUDA_DECODE_GQA_Q_FIRST, CUDA_DECODE_LAZY_RESCALE,
    CUDA_DECODE_LEAN_EPILOGUE, CUDA_DECODE_MHA_PER_TILE, CUDA_DECODE_PUSH_MERGE,
    CUDA_DECODE_Q_FIRST, CUDA_DECODE_REFILL, CUDA_DECODE_TICKET_MERGE, CUDA_DECODE_UNMASKED_TILES,
    CUDA_DECODE_WIDE_MERGE,
};
use crate::lower::consts::{
    CUDA_DECODE_BLOCK_GROUP, CUDA_DECODE_HALF_PARTIALS, CUDA_DECODE_MHA_OWN_MERGE,
    CUDA_DECODE_OWN_MERGE, CUDA_DECODE_PORTABLE_CLUSTER, CUDA_DECODE_WIDE_CLUSTER,
    CUDA_DECODE_WIDE_CLUSTERS,
};
use crate::lower::consts::{
    CUDA_DECODE_STAGES, CUDA_DECODE_WARPS, CUDA_DECODE_WARP_PIPES, CUDA_PREFILL_K_TILE,
    CUDA_PREFILL_Q_TILE, CUDA_PREFILL_TC_DEEP_RING, CUDA_PREFILL_TC_EARLY_RESCALE,
    CUDA_PREFILL_TC_END_ALIGNED, CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS,
    CUDA_PREFILL_TC_HEAD_TILES, CUDA_PREFILL_TC_KEY_RANGE, CUDA_PREFILL_TC_K_TILE,
    CUDA_PREFILL_TC_LAZY_RESCALE, CUDA_PREFILL_TC_LEAN, CUDA_PREFILL_TC_LEAN_COPY,
    CUDA_PREFILL_TC_LEAN_ENDS, CUDA_PREFILL_TC_LEAN_Q, CUDA_PREFILL_TC_MIN_BLOCKS,
    CUDA_PREFILL_TC_NARROW_REF_TOKENS, CUDA_PREFILL_TC_NARROW_SPAN_SHARE, CUDA_PREFILL_TC_OVERLAP,
    CUDA_PREFILL_TC_OWN_BANDS, CUDA_PREFILL_TC_PERSISTENT, CUDA_PREFILL_TC_PERSISTENT_NARROW,
    CUDA_PREFILL_TC_PINGPONG, CUDA_PREFILL_TC_PV_F16, CUDA_PREFILL_TC_PV_F16_WARPGROUPS,
    CUDA_PREFILL_TC_P_ONCE, CUDA_PREFILL_TC_Q_REGS, CUDA_PREFILL_TC_SKIP,
    CUDA_PREFILL_TC_SWITCH_AT_ONCE, CUDA_PREFILL_TC_THREADS, CUDA_PREFILL_TC_V_F16_IN,
    CUDA_PREFILL_TC_V_UNIT, CUDA_PREFILL_TC_WARP_SPECIALIZED, CUDA_PREFILL_THREADS,
};
use crate::lower::{KernelModule, LayerSpec, StorageType};
use crate::plan::SpanParams;

const COMMON: &str = include_str!("../../templates/cuda/common.cu.j2");
const LAYER: &str = include_str!("../../templates/cuda/layer.cu.j2");
const PREFILL: &str = include_str!("../../templates/cuda/prefill.cu.j2");
const DECODE: &str = include_str!("../../templates/cuda/decode.cu.j2");

/// Path of a layer's file inside the output folder.
pub fn layer_path(layer: u32) -> String {
    format!("cuda/l{layer:02}.cu")
}

/// The entry point of a layer's prefill kernel, e.g. `moa_prefill_bf16_hd128_l03`: what the
/// CUDA runtime looks the function up by.
pub fn prefill_name(storage: StorageType, head_dim: u32, layer: u32) -> String {
    format!("moa_prefill_{}_hd{head_dim}_l{layer:02}", storage.name())
}

/// The entry point of a layer's decode kernel, e.g. `moa_decode_bf16_hd128_l03`.
pub fn decode_name(storage: StorageType, head_dim: u32, layer: u32) -> String {
    format!("moa_decode_{}_hd{head_dim}_l{layer:02}", storage.name())
}

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
    /// [`CUDA_DECODE_BLOCK_GROUP`] runs whole in one block instead of as sub-groups
    /// ([`decode_sub_groups`]).
    pub whole_group: bool,
    /// The letter `A` (session 36, tensor cores; opt-in): all sub-groups of 8 of a GQA
    /// group past [`CUDA_DECODE_BLOCK_GROUP`] ([`decode_sub_groups`]) share one block over
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
    /// The kernel then takes [`Arg::VF16`] and [`Arg::VMax`] (codegen::abi states the
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
    /// blocks. The grid is one block per SM ([`Grid::PersistentQueryTiles`]); each block
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

/// The largest thread-block cluster (blocks along x) a decode kernel of `tuning` merges a
/// segment in, which its manifest entry carries as `tiles.cluster`: CUDA's portable 8, or
/// 16 with [`DecodeTuning::wide_clusters`] (non-portable: an executor launching clusters of
/// more than 8 must allow them on the function first).
pub fn decode_max_cluster(tuning: DecodeTuning) -> u32 {
    if tuning.wide_clusters {
        CUDA_DECODE_WIDE_CLUSTER
    } else {
        CUDA_DECODE_PORTABLE_CLUSTER
    }
}

/// Chunks whose partials the fast merge (`DecodeTuning::fast_merge`) loads per L2 round
/// trip: one chunk's (m, l) per lane, so at most 32, and each thread keeps the batch's
/// partial sums of its `ceil(group_size × head_dim / threads)` output elements (at most 8,
/// else the kernel keeps the shared-memory merge), 64 registers in all: 16 chunks for a
/// GQA group of 4 at head_dim 128 and 128 threads, 32 for MHA.
pub fn decode_merge_batch(head_dim: u32, group_size: u32, threads: u32) -> u32 {
    let per_thread = (group_size * head_dim).div_ceil(threads.max(1)).max(1);
    (64 / per_thread).clamp(1, 32)
}

/// [`decode_merge_batch`] with 128 registers of partial sums per thread
/// (`DecodeTuning::wide_merge`): 32 chunks for a GQA group of 4 at head_dim 128 and 128
/// threads, 16 for a group of 8.
pub fn decode_merge_batch_wide(head_dim: u32, group_size: u32, threads: u32) -> u32 {
    let per_thread = (group_size * head_dim).div_ceil(threads.max(1)).max(1);
    (128 / per_thread).clamp(1, 32)
}

/// [`decode_merge_batch`] with half partials (`DecodeTuning::half_partials`): a thread
/// owns pairs of output elements and loads each chunk's pair as one 32-bit `half2`, so
/// 64 registers hold `64 / ceil(group_size × head_dim / 2 / threads)` chunks (at most 32):
/// 32 for a GQA group of 4 at head_dim 128 and 128 threads, and for MHA.
pub fn decode_merge_batch_half(head_dim: u32, group_size: u32, threads: u32) -> u32 {
    let pairs_per_thread = (group_size * head_dim / 2).div_ceil(threads.max(1)).max(1);
    (64 / pairs_per_thread).clamp(1, 32)
}

/// Whether the lean decode epilogue (`DecodeTuning::lean`) applies: tensor cores, the
/// block-wide pipeline, at least 3 stages (the states take the stage of tile
/// n_tiles − 2, which needs a third), and the warps' states fit that one stage (the
/// template's static_assert): m and l, then a row of `head_dim + 4` floats per warp and
/// query column, in a stage's K and V tiles of `16 · warps` keys of 16-bit elements.
/// A GQA group past 8 (16 query columns) does not fit: a plan of 32 query heads over one
/// KV head compiled with moa-compile and failed NVRTC's static_assert (round 20).
pub fn decode_lean(
    storage: StorageType,
    head_dim: u32,
    group_size: u32,
    tuning: DecodeTuning,
) -> bool {
    let q_cols = u64::from(decode_q_cols(storage, head_dim, group_size));
    let (warps, d) = (u64::from(tuning.warps), u64::from(head_dim));
    let states = (2 * warps * q_cols + warps * q_cols * (d + 4)) * 4;
    let stage = 2 * 16 * warps * d * 2;
    tuning.lean
        && decode_uses_mma(storage, head_dim)
        && !tuning.warp_pipes
        && tuning.stages >= 3
        && states <= stage
}

/// Whether a module's decode runs on tensor cores: 16-bit storage and `head_dim % 16 == 0`
/// (the MMA's k step); otherwise the scalar kernel.
pub fn decode_uses_mma(storage: StorageType, head_dim: u32) -> bool {
    storage.is_half() && head_dim.is_multiple_of(16)
}

/// Query columns of a decode block: the GQA group padded to the MMA's 8 columns (keys
/// fill the MMA's 16 rows, so MHA pads 1 head to 8, not 16), or the group itself for the
/// scalar kernel.
pub fn decode_q_cols(storage: StorageType, head_dim: u32, group_size: u32) -> u32 {
    if decode_uses_mma(storage, head_dim) {
        group_size.div_ceil(8) * 8
    } else {
        group_size
    }
}

/// Sub-groups a decode block's GQA group of `group_size` query heads is cut into: 1 up to
/// [`CUDA_DECODE_BLOCK_GROUP`] heads (or with [`DecodeTuning::whole_group`]), else the
/// fewest equal sub-groups of at most that many heads (16 → 2 of 8, 32 → 4 of 8, 12 → 2 of
/// 6), on tensor cores and in the scalar kernel alike (session 36: the scalar f32 kernel
/// stages its whole group's query rows and keeps per-head registers, so 64 heads over one
/// KV head at head_dim 256 needed 330 752 bytes of shared memory and was refused where
/// f16 ran; as 8 sub-groups of 8 it needs 141 440). Each sub-group is a segment of the work
/// list of its own over its KV head's cache (`lower::CacheLayout::sub_grouped`), so the
/// kernel is generated for a group of `group_size / sub-groups` heads over `kv_heads ×
/// sub-groups` segments, and a KV head's slots are read once per sub-group (the later
/// reads mostly from L2: the sub-groups' items run side by side). The manifest's
/// `tiles.sub_groups` carries it (absent: 1).
/// The storage and head_dim choose only whether `A` shares a block ([`decode_block_sub_groups`]).
pub fn decode_sub_groups(
    storage: StorageType,
    head_dim: u32,
    group_size: u32,
    tuning: DecodeTuning,
) -> u32 {
    decode_groups_of_eight(group_size, tuning)
        / decode_block_sub_groups(storage, head_dim, group_size, tuning)
}

/// The sub-groups of at most [`CUDA_DECODE_BLOCK_GROUP`] heads a group is cut into, before
/// `A` puts them in one block (1 where [`decode_sub_groups`] keeps the group whole); the
/// same on tensor cores and in the scalar kernel (session 36, s36-wide).
fn decode_groups_of_eight(group_size: u32, tuning: DecodeTuning) -> u32 {
    if tuning.whole_group || group_size <= CUDA_DECODE_BLOCK_GROUP {
        return 1;
    }
    (group_size.div_ceil(CUDA_DECODE_BLOCK_GROUP)..=group_size)
        .find(|s| group_size.is_multiple_of(*s))
        .unwrap_or(group_size)
}

/// Sub-groups of at most [`CUDA_DECODE_BLOCK_GROUP`] heads that share one decode block's
/// staged K/V tiles (session 36): 1 by default; with [`DecodeTuning::sub_groups_shared`]
/// (`A`) all of them (16 → one block of 2 × 8, 32 → one block of 4 × 8). Above 1 the
/// block's warps split over the column tiles of its heads ([`decode_col_tiles`]).
pub fn decode_block_sub_groups(
    storage: StorageType,
    head_dim: u32,
    group_size: u32,
    tuning: DecodeTuning,
) -> u32 {
    let s = decode_groups_of_eight(group_size, tuning);
    // `A` is a form of the tensor-core kernel; the scalar kernel keeps one sub-group a block.
    if tuning.sub_groups_shared && decode_uses_mma(storage, head_dim) {
        s
    } else {
        1
    }
}

/// MMA column tiles (8 query heads each) a decode block's warps are split over: 1 (every
/// warp computes all of its block's columns) unless sub-groups share the block
/// ([`decode_block_sub_groups`] > 1); then the block's heads padded to 8 per tile, and the
/// block has `tuning.warps` warps per column tile.
pub fn decode_col_tiles(
    storage: StorageType,
    head_dim: u32,
    group_size: u32,
    tuning: DecodeTuning,
) -> u32 {
    if decode_block_sub_groups(storage, head_dim, group_size, tuning) > 1 {
        let block_heads = group_size / decode_sub_groups(storage, head_dim, group_size, tuning);
        decode_q_cols(storage, head_dim, block_heads) / 8
    } else {
        1
    }
}

/// Keys per pipeline stage of the tensor-core decode (16 per warp), or per warp step of
/// the scalar one (32 per warp). Work-list chunks are multiples of it.
pub fn decode_key_tile(storage: StorageType, head_dim: u32, tuning: DecodeTuning) -> u32 {
    if decode_uses_mma(storage, head_dim) {
        16 * tuning.warps
    } else {
        32 * tuning.warps
    }
}

/// Output dims each lane owns in the P·V product: the smallest divisor of `head_dim`
/// that lets 32 lanes cover it (so no lane owns a partial run of dims).
pub fn dims_per_lane(head_dim: u32) -> u32 {
    let min = head_dim.div_ceil(32).max(1);
    (min..=head_dim)
        .find(|d| head_dim.is_multiple_of(*d))
        .unwrap_or(head_dim)
}

/// Elements per vector load when staging K/V rows: 16 bytes where `head_dim` allows,
/// else 8 (plan validation guarantees `head_dim % 4 == 0`).
pub fn load_vec(storage: StorageType, head_dim: u32) -> u32 {
    let full = 16 / storage.bytes() as u32;
    if head_dim.is_multiple_of(full) {
        full
    } else {
        4
    }
}

/// Shared-memory row stride in floats (4 floats of padding against bank conflicts).
fn ks_stride(head_dim: u32) -> u32 {
    head_dim + 4
}

/// Whether a layer's prefill runs on tensor cores (mma.sync m16n8k16): 16-bit storage
/// (f16, bf16) and whole 16-dim k-steps. Otherwise it is the scalar f32 kernel.
pub fn prefill_tensor_cores(storage: StorageType, head_dim: u32) -> bool {
    storage != StorageType::F32 && head_dim.is_multiple_of(16)
}

/// Whether the tensor-core prefill also has its warpgroup-MMA (wgmma) body, used where the
/// source is compiled for sm_90a: 64-element swizzle panels need `head_dim % 64 == 0`.
pub fn prefill_wgmma(storage: StorageType, head_dim: u32) -> bool {
    prefill_tensor_cores(storage, head_dim) && head_dim.is_multiple_of(64)
}

/// Threads per prefill block (with `warp_specialized`, the producer warpgroup too: it
/// idles in the mma.sync body, whose launch contract is the same).
pub fn prefill_threads(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        128 * (tuning.warpgroups + u32::from(tuning.warp_specialized))
    } else {
        CUDA_PREFILL_THREADS
    }
}

/// Query rows per prefill block (the launch grid's z is `ceil(max_row_len / this)`).
pub fn prefill_q_tile(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        64 * tuning.warpgroups
    } else {
        CUDA_PREFILL_Q_TILE
    }
}

/// Keys per prefill K/V tile.
pub fn prefill_k_tile(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        tuning.k_tile
    } else {
        CUDA_PREFILL_K_TILE
    }
}

/// Dynamic shared memory an sm_90 block can opt into (CUDA programming guide, compute
/// capability 9.0: 227 KiB).
const PREFILL_MAX_SHARED_BYTES: u32 = 227 * 1024;

/// Shared memory the warp-specialized prefill's Q tile and K/V ring may take: all an sm_90
/// block can opt into less 1 KiB for the mbarriers and `h`'s words. At head_dim 128 that
/// is 4 stages of 64-key tiles (the cap) and 3 of 128-key tiles (2 under the 192 KiB of
/// sessions 6-7, too few for `g` and `o`).
const PREFILL_WS_RING_BYTES: u32 = PREFILL_MAX_SHARED_BYTES - 1024;

/// K/V buffers (stages) of the prefill's load ring: 2 for the double buffer, and with
/// `warp_specialized` as many as fit with the Q tile in `PREFILL_WS_RING_BYTES`, at most 4,
/// or 5 with `deep_ring` (the producer runs up to that many tiles ahead of the consumers).
pub fn prefill_stages(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> u32 {
    if !tuning.warp_specialized || !prefill_wgmma(storage, head_dim) {
        return 2;
    }
    // `t`: two Q tiles (the next query tile's loads while the current one runs).
    let q = prefill_q_tile(storage, head_dim, tuning)
        * head_dim
        * 2
        * if tuning.persistent { 2 } else { 1 };
    let stage = 2 * tuning.k_tile * head_dim * 2;
    let most = if tuning.deep_ring { 5 } else { 4 };
    (PREFILL_WS_RING_BYTES.saturating_sub(q) / stage).clamp(2, most)
}

/// Whether the producer's copies are strength-reduced (`PrefillTuning::lean_copy`): each
/// of its 128 threads keeps one 16-byte column chunk, which needs 128 to be a multiple of
/// the head_dim / 8 chunks of a row and the rows a thread copies to lie 8 apart (the
/// swizzle's period): head_dim 64 and 128.
pub fn prefill_lean_copy(head_dim: u32, tuning: PrefillTuning) -> bool {
    tuning.lean_copy && tuning.warp_specialized && (head_dim == 64 || head_dim == 128)
}

/// The mean over a layer's query heads of the share of the last `n_tokens` positions that
/// a query at the end of an `n_tokens` sequence sees (its span, sink included, capped at
/// `n_tokens`), in [0, 1]: how narrow the layer's bands are, whatever the batch.
/// `PrefillTuning::for_layer`'s rule (`a`); 1 for a layer without query heads.
pub fn prefill_span_share(layer: &LayerSpec, span: &SpanParams, n_tokens: u32) -> f64 {
    if layer.q_heads.is_empty() || n_tokens == 0 {
        return 1.0;
    }
    let sum: f64 = layer
        .q_heads
        .iter()
        .map(|h| f64::from(h.rule.span(n_tokens, span).min(n_tokens)) / f64::from(n_tokens))
        .sum();
    sum / layer.q_heads.len() as f64
}

/// Whether a layer's prefill runs P·V on f16 operands (`PrefillTuning::pv_f16`): the
/// warp-specialized wgmma body in bf16 storage.
pub fn prefill_pv_f16(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> bool {
    tuning.pv_f16
        && tuning.warp_specialized
        && storage == StorageType::Bf16
        && prefill_wgmma(storage, head_dim)
}

/// Whether a layer's prefill takes V already in f16 (`PrefillTuning::v_f16_in` where
/// [`prefill_pv_f16`] holds): its module then also has the pre-pass kernels
/// `{prefill}_vmax` and `{prefill}_vf16`.
pub fn prefill_v_f16_in(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> bool {
    tuning.v_f16_in && prefill_pv_f16(storage, head_dim, tuning)
}

/// Registers per thread of the warp-specialized prefill's producer and consumer
/// warpgroups after `setmaxnreg` (PTX ISA: multiples of 8 in 24..=256): the producer keeps
/// 40 (its cp.async loop spilled at 24), and the consumers share what the block was
/// launched with (65536 / threads, rounded down to 8, at 1 block per SM) less the
/// producer's, at most 240.
pub fn prefill_ws_registers(tuning: PrefillTuning) -> (u32, u32) {
    let threads = 128 * (tuning.warpgroups + 1);
    let launch = (65536 / threads).min(255) / 8 * 8;
    let producer = 40;
    let consumer =
        ((launch * threads - producer * 128) / (128 * tuning.warpgroups)).min(240) / 8 * 8;
    (producer, consumer)
}

/// Dynamic shared memory of a layer's prefill kernel in bytes. Tensor cores: the Q tile
/// and two K and two V tiles (double buffer) in the storage type, rows padded by 8
/// elements for ldmatrix (the wgmma body needs the same tiles unpadded, less); with
/// `warp_specialized` at least the Q tile, the ring of [`prefill_stages`] unpadded K/V
/// buffers and two mbarriers per stage. Scalar: Q, K and V tiles in f32, rows padded by 4
/// floats.
pub fn prefill_shared_bytes(storage: StorageType, head_dim: u32, tuning: PrefillTuning) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        let q_tile = prefill_q_tile(storage, head_dim, tuning);
        let padded = (q_tile + 4 * tuning.k_tile) * (head_dim + 8) * 2;
        if tuning.warp_specialized && prefill_wgmma(storage, head_dim) {
            let stages = prefill_stages(storage, head_dim, tuning);
            let q_tiles = if tuning.persistent { 2 } else { 1 };
            let ring =
                (q_tiles * q_tile + stages * 2 * tuning.k_tile) * head_dim * 2 + stages * 2 * 8;
            // `t`: the Q tiles' full and empty barriers, their two item words and the
            // query-tile count.
            let ring = ring
                + if tuning.persistent {
                    2 * 2 * 8 + 2 * 4 + 8
                } else {
                    0
                };
            // `t` with `b`: the two Q tiles' geometry words (32 bytes each).
            let ring = ring
                + if tuning.persistent && tuning.lean_ends {
                    2 * 32
                } else {
                    0
                };
            // `h`: each stage's V exponent and the producer's two rounds of 4 warp maxima.
            let ring = ring
                + if prefill_pv_f16(storage, head_dim, tuning) {
                    (stages + 8) * 4
                } else {
                    0
                };
            padded.max(ring)
        } else {
            padded
        }
    } else {
        (CUDA_PREFILL_Q_TILE + 2 * CUDA_PREFILL_K_TILE) * ks_stride(head_dim) * 4
    }
}

/// Dynamic shared memory of a decode kernel. Tensor cores: `stages` K and V tiles of
/// 16-bit elements, or the warps' states at the end, whichever is larger. Scalar: the
/// group's queries (f32), then the larger of the warps' K rows and the warps' states.
pub fn decode_shared_bytes(
    storage: StorageType,
    head_dim: u32,
    group_size: u32,
    tuning: DecodeTuning,
) -> u32 {
    let warps = tuning.warps;
    let q_cols = decode_q_cols(storage, head_dim, group_size);
    // m and l per (warp, column), then each column's accumulator row (head_dim floats, or
    // head_dim + 4 with the lean epilogue's padding).
    let row = if decode_lean(storage, head_dim, group_size, tuning) {
        head_dim + 4
    } else {
        head_dim
    };
    let states = warps * q_cols * (row + 2) * 4;
    if decode_uses_mma(storage, head_dim) {
        let tiles = tuning.stages * 2 * 16 * warps * head_dim * 2;
        tiles.max(states)
    } else {
        let k_rows = warps * 32 * ks_stride(head_dim) * 4;
        group_size * ks_stride(head_dim) * 4 + k_rows.max(states)
    }
}

#[derive(Serialize)]
struct RuleHeads {
    alpha: i32,
    beta_num: u32,
    beta: f64,
    heads: Vec<u32>,
}

#[derive(Serialize)]
struct CudaLayerCtx {
    layer: LayerCtx,
    dtype: &'static str,
    rule_heads: Vec<RuleHeads>,
    dims_per_lane: u32,
    load_vec: u32,
    prefill_name: String,
    decode_name: String,
    /// Prefill on tensor cores (`prefill_tensor_cores`), with mma operands of `mma_type`.
    prefill_tc: bool,
    prefill_wgmma: bool,
    mma_type: &'static str,
    prefill_threads: u32,
    prefill_min_blocks: u32,
    prefill_q_tile: u32,
    prefill_k_tile: u32,
    prefill_smem_bytes: u32,
    prefill_overlap: bool,
    prefill_skip: bool,
    /// Warp-specialized sm_90a body (`PrefillTuning::warp_specialized`), its K/V ring
    /// depth and the registers `setmaxnreg` gives producer and consumers.
    prefill_ws: bool,
    /// The consumers' MMA turns (`PrefillTuning::pingpong`).
    prefill_pingpong: bool,
    prefill_stages: u32,
    prefill_producer_regs: u32,
    prefill_consumer_regs: u32,
    /// Parts P enters P·V in: 2 (bf16 hi + lo) unless `PrefillTuning::p_once` or 16-bit
    /// f16, which keeps 11 bits (1).
    prefill_p_parts: u32,
    /// P·V on f16 operands (`prefill_pv_f16`).
    prefill_pv_f16: bool,
    /// V arrives in f16 (`prefill_v_f16_in`).
    prefill_v_f16_in: bool,
    /// Lazy rescale of O (`PrefillTuning::lazy_rescale`, the wgmma bodies' softmax).
    prefill_lazy: bool,
    /// The `u` form of the `v` pre-pass (`PrefillTuning::v_unit`).
    prefill_v_unit: bool,
    /// Q as register A fragments of Q·Kᵀ (`PrefillTuning::q_regs`).
    prefill_q_regs: bool,
    /// O rescaled while the next Q·Kᵀ executes (`PrefillTuning::early_rescale`).
    prefill_early_rescale: bool,
    /// The leaner consumer section (`PrefillTuning::lean`).
    prefill_lean: bool,
    /// The strength-reduced producer copies (`PrefillTuning::lean_copy`).
    prefill_lean_copy: bool,
    /// Each consumer warpgroup's own key tiles (`PrefillTuning::key_range`).
    prefill_key_range: bool,
    /// Persistent blocks (`PrefillTuning::persistent`, the wgmma body only).
    prefill_persistent: bool,
    /// Query tiles counted from the row's end (`PrefillTuning::end_aligned`, the `w` body)
    /// where the longest row has at most `prefill_end_align_tiles` query tiles.
    prefill_end_aligned: bool,
    prefill_end_align_tiles: u32,
    /// A pair's query tiles launched back to back (`PrefillTuning::head_tiles`, with `f`).
    prefill_head_tiles: u32,
    /// Lean Q copy and output stores (`PrefillTuning::lean_ends`, the `w` body).
    prefill_lean_ends: bool,
    /// Own bands (`PrefillTuning::own_bands`, the `w` body).
    prefill_own_bands: bool,
    /// `t`'s producer hands a query tile's last K/V tile over at once
    /// (`PrefillTuning::switch_at_once`; read inside the persistent body only).
    prefill_switch_at_once: bool,
    /// `t`'s producer copies Q in `c`'s form (`PrefillTuning::lean_q`; persistent body only).
    prefill_lean_q: bool,
    decode_mma: bool,
    decode_threads: u32,
    decode_stages: u32,
    decode_warp_pipes: bool,
    /// `DecodeTuning::early_loads` where it applies (tensor cores, block-wide pipeline).
    decode_early_loads: bool,
    decode_fast_merge: bool,
    /// Chunks per round trip of the fast merge ([`decode_merge_batch`], or
    /// [`decode_merge_batch_half`] with `decode_half_partials`).
    decode_merge_batch: u32,
    /// `DecodeTuning::half_partials` where it applies (the fast merge on tensor cores,
    /// head_dim % 64 == 0, not the ticket merge).
    decode_half_partials: bool,
    /// `DecodeTuning::lean` where it applies (tensor cores, block-wide pipeline, ≥ 3 stages).
    decode_lean: bool,
    /// Row stride (floats) of the warps' accumulators in shared memory.
    decode_wstride: u32,
    /// `DecodeTuning::ticket` where it applies (the fast merge on tensor cores, no probe
    /// that skips the arrival).
    decode_ticket: bool,
    /// `DecodeTuning::own_merge` where it applies (the fast merge on tensor cores, not the
    /// ticket merge, no probe).
    decode_own_merge: bool,
    /// `DecodeTuning::full_prologue` where it applies (tensor cores, block-wide pipeline).
    decode_full_prologue: bool,
    /// `DecodeTuning::refill` where it applies (tensor cores, block-wide pipeline).
    decode_refill: bool,
    /// `DecodeTuning::arrive` where it applies (with `decode_refill`).
    decode_arrive: bool,
    /// `DecodeTuning::unmasked_tiles` where it applies (tensor cores).
    decode_unmasked_tiles: bool,
    /// `DecodeTuning::cheap_issue` where it applies (tensor cores, block-wide pipeline).
    decode_cheap_issue: bool,
    /// `DecodeTuning::four_chains` where it applies (tensor cores).
    decode_four_chains: bool,
    /// `DecodeTuning::lazy_rescale` where it applies (tensor cores).
    decode_lazy: bool,
    /// `DecodeTuning::q_first` where it applies (with `decode_early_loads`).
    decode_q_first: bool,
    /// `DecodeTuning::push_merge` where it applies (tensor cores).
    decode_push: bool,
    /// `DecodeTuning::exit_arrive_first` where it applies (tensor cores, the cluster merge
    /// rather than the push merge).
    decode_exit_arrive: bool,
    decode_probe: bool,
    decode_probe_no_merge: bool,
    /// `DecodeTuning::probe_no_store` (tensor cores).
    decode_probe_no_store: bool,
    /// `DecodeTuning::combine_unrolled` where it applies (tensor cores).
    decode_combine_unrolled: bool,
    /// `DecodeTuning::global_merge` where it applies (the fast merge, not the push merge).
    decode_global_merge: bool,
    decode_probe_no_epilogue: bool,
    /// [`decode_max_cluster`]: the cluster merge's `MAX_CLUSTER`.
    decode_max_cluster: u32,
    decode_q_cols: u32,
    decode_smem_bytes: u32,
    /// [`decode_sub_groups`]: above 1 the decode is generated for `decode_group` query
    /// heads over `decode_kv_heads` = kv_heads × sub-groups work-list segments.
    decode_sub_groups: u32,
    decode_group: u32,
    decode_kv_heads: u32,
    /// [`decode_col_tiles`]: above 1 the block's `decode_threads` are `tuning.warps` warps
    /// per MMA column tile, each warp one column tile of the block's heads, and the warps'
    /// states are merged over the `tuning.warps` key-row warps of each column.
    decode_col_tiles: u32,
}

/// Parameters of a layer's prefill kernel, in order.
fn prefill_params(storage: StorageType, v_f16_in: bool) -> Vec<Param> {
    let e = Elem::of(storage);
    let kv = ["total_tokens", "kv_heads", "head_dim"];
    let mut params = vec![
        Param::buffer(
            0,
            Arg::Q,
            Access::Read,
            e,
            &["total_tokens", "q_heads", "head_dim"],
        ),
        Param::buffer(1, Arg::K, Access::Read, e, &kv),
    ];
    if v_f16_in {
        // The `v` variant: the pre-pass kernels' f16 copy of V and its scales.
        params.push(Param::buffer(2, Arg::VF16, Access::Read, Elem::F16, &kv));
        params.push(Param::buffer(
            3,
            Arg::VMax,
            Access::Read,
            Elem::U32,
            &["kv_heads"],
        ));
    } else {
        params.push(Param::buffer(2, Arg::V, Access::Read, e, &kv));
    }
    let n = params.len() as u32;
    params.extend([
        Param::buffer(n, Arg::RowStart, Access::Read, Elem::U32, &["rows + 1"]),
        Param::buffer(
            n + 1,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["total_tokens", "q_heads", "head_dim"],
        ),
        Param::value(n + 2, Arg::NTokens),
        Param::value(n + 3, Arg::Rows),
    ]);
    params
}

/// Parameters of a layer's decode kernel, in order (`templates/cuda/decode.cu.j2`).
/// With sub-groups (`sub_groups` > 1, [`decode_sub_groups`]) the arrival counters are one
/// per work-list segment, `rows × kv_heads × sub_groups`.
fn decode_params(storage: StorageType, sub_groups: u32) -> Vec<Param> {
    let e = Elem::of(storage);
    let seg_done = match sub_groups {
        1 => "rows * kv_heads".to_string(),
        n => format!("rows * kv_heads * {n}"),
    };
    vec![
        Param::buffer(0, Arg::Q, Access::Read, e, &["rows", "q_heads", "head_dim"]),
        Param::buffer(
            1,
            Arg::KCache,
            Access::Read,
            e,
            &["rows", "row_slots", "head_dim"],
        ),
        Param::buffer(
            2,
            Arg::VCache,
            Access::Read,
            e,
            &["rows", "row_slots", "head_dim"],
        ),
        Param::buffer(3, Arg::RowPos, Access::Read, Elem::U32, &["rows"]),
        Param::buffer(4, Arg::Work, Access::Read, Elem::U32, &["n_items", "8"]),
        Param::buffer(
            5,
            Arg::Partials,
            Access::ReadWrite,
            Elem::F32,
            &["n_items", "group_size", "head_dim + 2"],
        ),
        Param::buffer(
            6,
            Arg::SegDone,
            Access::ReadWrite,
            Elem::U32,
            &[seg_done.as_str()],
        ),
        Param::buffer(
            7,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["rows", "q_heads", "head_dim"],
        ),
        Param::value(8, Arg::NTokens),
        Param::value(9, Arg::NItems),
    ]
}

fn layer_ctx(
    module: &KernelModule,
    layer: &LayerSpec,
    tuning: DecodeTuning,
    pt: PrefillTuning,
) -> CudaLayerCtx {
    let lctx = LayerCtx::new(module, layer);
    let d = module.shape.head_dim;
    // The query heads of one decode block: a group past 8 is cut into sub-groups.
    let sub_groups = decode_sub_groups(module.storage, d, lctx.group_size, tuning);
    let dg = lctx.group_size / sub_groups;
    // Sub-groups sharing a block (`A`): `tuning.warps` warps per column tile.
    let col_tiles = decode_col_tiles(module.storage, d, lctx.group_size, tuning);
    let threads = 32 * tuning.warps * col_tiles;
    let rule_heads = layer
        .groups
        .iter()
        .map(|g| RuleHeads {
            alpha: g.rule.alpha,
            beta_num: g.rule.beta_num,
            beta: g.rule.beta(),
            heads: g.q_heads.clone(),
        })
        .collect();
    let decode_fast_merge =
        tuning.fast_merge && d.is_multiple_of(32) && (dg * d).div_ceil(threads) <= 8;
    let decode_ticket = tuning.ticket
        && decode_uses_mma(module.storage, d)
        && decode_fast_merge
        && !tuning.probe
        && !tuning.probe_no_merge
        && !tuning.probe_no_store
        && !tuning.probe_no_epilogue;
    // A warp's 32 pairs of merged elements (64) must lie in one head.
    let decode_half_partials = tuning.half_partials
        && decode_fast_merge
        && decode_uses_mma(module.storage, d)
        && d.is_multiple_of(64)
        && !decode_ticket;
    // The lean epilogue's row stride (head_dim + 4), where its states fit a stage.
    let decode_lean = decode_lean(module.storage, d, dg, tuning);
    let decode_own_merge = tuning.own_merge
        && decode_fast_merge
        && decode_uses_mma(module.storage, d)
        && !decode_ticket
        && !tuning.is_probe();
    CudaLayerCtx {
        dtype: module.storage.name(),
        rule_heads,
        dims_per_lane: dims_per_lane(d),
        load_vec: load_vec(module.storage, d),
        prefill_name: prefill_name(module.storage, d, layer.layer),
        decode_name: decode_name(module.storage, d, layer.layer),
        prefill_tc: prefill_tensor_cores(module.storage, d),
        prefill_wgmma: prefill_wgmma(module.storage, d),
        mma_type: module.storage.name(),
        prefill_threads: prefill_threads(module.storage, d, pt),
        // Two resident blocks of 256 threads cap registers at 128 per thread: enough up to
        // head_dim 128 (64 f32 accumulators of O per thread); wider heads get one block
        // and more registers.
        prefill_min_blocks: if d <= 128 { pt.blocks_per_sm } else { 1 },
        prefill_q_tile: prefill_q_tile(module.storage, d, pt),
        prefill_k_tile: prefill_k_tile(module.storage, d, pt),
        prefill_smem_bytes: prefill_shared_bytes(module.storage, d, pt),
        prefill_overlap: pt.overlap,
        prefill_skip: pt.skip,
        prefill_ws: pt.warp_specialized,
        prefill_pingpong: pt.pingpong,
        prefill_stages: prefill_stages(module.storage, d, pt),
        prefill_producer_regs: prefill_ws_registers(pt).0,
        prefill_consumer_regs: prefill_ws_registers(pt).1,
        prefill_p_parts: if module.storage == StorageType::Bf16 && !pt.p_once {
            2
        } else {
            1
        },
        prefill_pv_f16: prefill_pv_f16(module.storage, d, pt),
        prefill_v_f16_in: prefill_v_f16_in(module.storage, d, pt),
        prefill_lazy: pt.lazy_rescale,
        prefill_v_unit: pt.v_unit && prefill_v_f16_in(module.storage, d, pt),
        prefill_q_regs: pt.q_regs,
        prefill_early_rescale: pt.early_rescale,
        prefill_lean: pt.lean,
        prefill_lean_copy: prefill_lean_copy(d, pt),
        prefill_key_range: pt.key_range,
        prefill_persistent: pt.persistent
            && pt.warp_specialized
            && prefill_wgmma(module.storage, d),
        prefill_end_aligned: pt.end_aligned && pt.warp_specialized,
        // `y`: every launch's grid has fewer query tiles than this (rows of u32 tokens).
        prefill_end_align_tiles: match pt.end_aligned_always {
            true => u32::MAX,
            false => CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS.div_ceil(64 * pt.warpgroups),
        },
        prefill_head_tiles: if pt.end_aligned && pt.warp_specialized {
            pt.head_tiles
        } else {
            1
        },
        // `b` at head_dim 64 and 128, where a row is a whole number of chunks per lane
        // pass (elsewhere the generic copies, as `c`).
        prefill_lean_ends: pt.lean_ends && pt.warp_specialized && (d == 64 || d == 128),
        prefill_own_bands: pt.own_bands && pt.warp_specialized,
        prefill_switch_at_once: pt.switch_at_once,
        prefill_lean_q: pt.lean_q && prefill_lean_copy(d, pt),
        decode_mma: decode_uses_mma(module.storage, d),
        decode_threads: threads,
        decode_stages: tuning.stages,
        decode_warp_pipes: tuning.warp_pipes,
        decode_early_loads: tuning.early_loads
            && !tuning.warp_pipes
            && decode_uses_mma(module.storage, d),
        // Up to 8 output elements per thread (every MMA shape up to a group of 8 at head_dim
        // 128; beyond, the batch's registers would spill), and a warp's elements of one head
        // (head_dim % 32 == 0, so shuffles share a chunk's weight); else the shared-memory
        // merge.
        decode_fast_merge,
        decode_merge_batch: if decode_half_partials {
            decode_merge_batch_half(d, dg, threads)
        } else if tuning.wide_merge {
            decode_merge_batch_wide(d, dg, threads)
        } else {
            decode_merge_batch(d, dg, threads)
        },
        decode_half_partials,
        decode_lean,
        decode_wstride: if decode_lean { d + 4 } else { d },
        decode_ticket,
        decode_own_merge,
        decode_full_prologue: tuning.full_prologue
            && !tuning.warp_pipes
            && decode_uses_mma(module.storage, d),
        decode_refill: tuning.refill && !tuning.warp_pipes && decode_uses_mma(module.storage, d),
        decode_unmasked_tiles: tuning.unmasked_tiles && decode_uses_mma(module.storage, d),
        decode_cheap_issue: tuning.cheap_issue
            && !tuning.warp_pipes
            && decode_uses_mma(module.storage, d),
        decode_four_chains: tuning.four_chains && decode_uses_mma(module.storage, d),
        decode_lazy: tuning.lazy_rescale && decode_uses_mma(module.storage, d),
        decode_q_first: tuning.q_first
            && tuning.early_loads
            && !tuning.warp_pipes
            && decode_uses_mma(module.storage, d),
        decode_push: tuning.push_merge && decode_uses_mma(module.storage, d),
        decode_exit_arrive: tuning.exit_arrive_first
            && !tuning.push_merge
            && decode_uses_mma(module.storage, d),
        decode_arrive: tuning.arrive
            && tuning.refill
            && !tuning.warp_pipes
            && decode_uses_mma(module.storage, d),
        decode_probe: tuning.probe && decode_uses_mma(module.storage, d),
        decode_probe_no_merge: tuning.probe_no_merge,
        decode_probe_no_store: tuning.probe_no_store && decode_uses_mma(module.storage, d),
        decode_combine_unrolled: tuning.combine_unrolled && decode_uses_mma(module.storage, d),
        decode_global_merge: tuning.global_merge && !tuning.push_merge,
        decode_probe_no_epilogue: tuning.probe_no_epilogue && decode_uses_mma(module.storage, d),
        decode_max_cluster: decode_max_cluster(tuning),
        decode_q_cols: decode_q_cols(module.storage, d, dg),
        decode_smem_bytes: decode_shared_bytes(module.storage, d, dg, tuning),
        decode_sub_groups: sub_groups,
        decode_group: dg,
        decode_kv_heads: lctx.kv_heads * sub_groups,
        decode_col_tiles: col_tiles,
        layer: lctx,
    }
}

/// The plan constants a layer's kernels bake in, as recorded in the manifest.
fn layer_constants(ctx: &CudaLayerCtx) -> serde_json::Value {
    let l = &ctx.layer;
    json!({
        "storage": ctx.dtype,
        "head_dim": l.head_dim,
        "q_heads": l.q_heads,
        "kv_heads": l.kv_heads,
        "group_size": l.group_size,
        "scale": l.scale,
        "sink_tokens": l.sink_tokens,
        "min_span_tokens": l.min_span_tokens,
        "span_round_tokens": l.span_round_tokens,
        "span_mode": l.span_mode,
        "beta_den": l.beta_den,
        "rules": ctx.rule_heads,
        "kv_head_of_q_head": l.heads.iter().map(|h| h.kv_head).collect::<Vec<_>>(),
    })
}

/// One CUDA C++ file per layer ([`layer_path`]) with its prefill and decode kernels, in
/// the default decode and prefill shapes for the module's GQA group, storage type and
/// head_dim. Not checked against resource limits here ([`super::generate`] does).
/// Errors: [`CodegenError::Render`] (a compiler bug), and [`CodegenError::Unsupported`]
/// where a shape does not fit (shared memory per block, warps per block).
pub fn generate(module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    generate_tuned(module, DecodeTuning::default_for(module.shape.group_size()))
}

/// [`generate`] with a chosen decode shape (benchmarks compare variants).
pub fn generate_tuned(
    module: &KernelModule,
    tuning: DecodeTuning,
) -> Result<Vec<Artifact>, CodegenError> {
    generate_variant(
        module,
        tuning,
        PrefillTuning::default_for(module.storage, module.shape.head_dim),
    )
}

/// [`generate`] with chosen decode and prefill shapes (benchmarks compare variants).
pub fn generate_variant(
    module: &KernelModule,
    tuning: DecodeTuning,
    prefill: PrefillTuning,
) -> Result<Vec<Artifact>, CodegenError> {
    generate_variant_progress(module, tuning, prefill, &mut |_, _| {})
}

/// [`generate_variant`], calling `progress(files_done, files)` after each layer's file
/// (one per layer, prefill and decode in it).
pub(crate) fn generate_variant_progress(
    module: &KernelModule,
    tuning: DecodeTuning,
    prefill: PrefillTuning,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Artifact>, CodegenError> {
    prefill
        .check()
        .map_err(|message| CodegenError::Unsupported {
            target: "cuda",
            message: format!("prefill tuning {prefill}: {message}"),
        })?;
    // `a` generates `t` on some layers: the checks below take that form, the most shared
    // memory and the fewest stages.
    let widest = PrefillTuning {
        persistent: prefill.persistent || prefill.persistent_narrow,
        persistent_narrow: false,
        ..prefill
    };
    // 227 KiB: the most dynamic shared memory an sm_90 block can opt into (128-key tiles
    // at head_dim 256 need more).
    let d = module.shape.head_dim;
    let smem = prefill_shared_bytes(module.storage, d, widest);
    if smem > PREFILL_MAX_SHARED_BYTES {
        return Err(CodegenError::Unsupported {
            target: "cuda",
            message: format!(
                "prefill tuning {prefill} at head_dim {d} needs {smem} bytes of shared memory \
                 per block, over the {PREFILL_MAX_SHARED_BYTES} an sm_90 block can have \
                 (use 64-key tiles)"
            ),
        });
    }
    // The ping-pong and overlapped consumers release a K/V buffer one section after its
    // tile's Q·Kᵀ (the next section's P·V reads its V), and the producer hands tile j over
    // only after issuing tile j + 1's copies, into the buffer of tile j + 1 − stages: with
    // 2 stages the consumers release that buffer only after receiving tile j, a deadlock
    // (2x128x1wg hung on the H200, benches/RESULTS.md, call 6).
    let stages = prefill_stages(module.storage, d, widest);
    if prefill.warp_specialized
        && (prefill.pingpong || prefill.overlap)
        && prefill_wgmma(module.storage, d)
        && stages < 3
    {
        return Err(CodegenError::Unsupported {
            target: "cuda",
            message: format!(
                "prefill tuning {prefill} at head_dim {d} has {stages} K/V stages, and `g` or \
                 `o` with `w` needs at least 3 (use 64-key tiles)"
            ),
        });
    }
    // `t`'s and `d`'s producers copy V as it is: the in-kernel conversion of `h` without
    // `v` is not built into their loops.
    if (widest.persistent || prefill.own_bands)
        && prefill_pv_f16(module.storage, d, prefill)
        && !prefill_v_f16_in(module.storage, d, prefill)
    {
        return Err(CodegenError::Unsupported {
            target: "cuda",
            message: format!("prefill tuning {prefill}: `t` or `d` with `h` needs `v` in bf16"),
        });
    }
    if tuning.warps == 0 || tuning.warps > 16 || tuning.stages < 2 {
        return Err(CodegenError::Unsupported {
            target: "cuda",
            message: format!(
                "decode tuning {tuning:?}: warps must be in 1..=16 and stages at least 2"
            ),
        });
    }
    let col_tiles = decode_col_tiles(
        module.storage,
        module.shape.head_dim,
        module.shape.group_size(),
        tuning,
    );
    if tuning.warps * col_tiles > 32 {
        return Err(CodegenError::Unsupported {
            target: "cuda",
            message: format!(
                "decode tuning {tuning}: {} warps per column tile x {col_tiles} column tiles \
                 is over a block's 32 warps",
                tuning.warps
            ),
        });
    }
    let env = super::environment(&[
        ("common.cu.j2", COMMON),
        ("layer.cu.j2", LAYER),
        ("prefill.cu.j2", PREFILL),
        ("decode.cu.j2", DECODE),
    ])?;
    let d = module.shape.head_dim;
    let mut out = Vec::with_capacity(module.layers.len());
    for layer in &module.layers {
        let prefill = prefill.for_layer(layer, &module.span);
        let ctx = layer_ctx(module, layer, tuning, prefill);
        let source = render(&env, "layer.cu.j2", Some(layer.layer), &ctx)?;
        let constants = layer_constants(&ctx);
        let mut prefill_constants = constants.clone();
        prefill_constants["tensor_cores"] = json!(ctx.prefill_tc);
        prefill_constants["wgmma_on_sm90a"] = json!(ctx.prefill_wgmma);
        prefill_constants["tuning"] = json!(prefill.to_string());
        let kernels = vec![
            KernelInfo::new(
                Target::Cuda,
                Phase::Prefill,
                Some(layer.layer),
                ctx.prefill_name.clone(),
                KernelAbi {
                    params: prefill_params(module.storage, ctx.prefill_v_f16_in),
                    block: [ctx.prefill_threads, 1, 1],
                    grid: if ctx.prefill_persistent {
                        Grid::PersistentQueryTiles {
                            q_tile: ctx.prefill_q_tile,
                        }
                    } else {
                        Grid::HeadsThenQueryTiles {
                            q_tile: ctx.prefill_q_tile,
                        }
                    },
                    tiles: Tiles {
                        q_tile: Some(ctx.prefill_q_tile),
                        k_tile: Some(ctx.prefill_k_tile),
                        // The warp-specialized body's K/V ring depth (the others double-buffer).
                        stages: (ctx.prefill_ws && ctx.prefill_wgmma).then_some(ctx.prefill_stages),
                        ..Tiles::default()
                    },
                    dynamic_shared_bytes: ctx.prefill_smem_bytes,
                    // The kernels that fill its `v_f16` and `v_max` (Arg::VF16), listed so
                    // that an app launches them from the manifest alone (docs/EMBEDDING.md).
                    prepass: ctx.prefill_v_f16_in.then(|| {
                        crate::codegen::abi::v_prepass(
                            &ctx.prefill_name,
                            Elem::of(module.storage),
                            ctx.prefill_v_unit,
                            crate::runtime::cuda::V_PREPASS_BLOCKS,
                        )
                    }),
                },
                prefill_constants,
            ),
            KernelInfo::new(
                Target::Cuda,
                Phase::Decode,
                Some(layer.layer),
                ctx.decode_name.clone(),
                KernelAbi {
                    params: decode_params(module.storage, ctx.decode_sub_groups),
                    block: [ctx.decode_threads, 1, 1],
                    grid: Grid::WorkItems,
                    tiles: Tiles {
                        k_tile: Some(decode_key_tile(module.storage, d, tuning)),
                        stages: ctx.decode_mma.then_some(tuning.stages),
                        q_cols: Some(ctx.decode_q_cols),
                        cluster: Some(ctx.decode_max_cluster),
                        sub_groups: (ctx.decode_sub_groups > 1).then_some(ctx.decode_sub_groups),
                        ..Tiles::default()
                    },
                    dynamic_shared_bytes: ctx.decode_smem_bytes,
                    prepass: None,
                },
                constants,
            ),
        ];
        out.push(Artifact {
            path: layer_path(layer.layer),
            source,
            workgroup_bytes: None,
            kernels,
        });
        progress(out.len(), module.layers.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round 20: the lean decode epilogue stores the warps' states in one pipeline stage,
    /// which a GQA group past 8 does not fit; moa-compile wrote such kernels and NVRTC
    /// failed their static_assert. Groups up to 8 keep it (unchanged); larger ones run as
    /// sub-groups of at most 8 (session 35), whose blocks keep it, or whole in one block
    /// (`G`), which takes the shared-memory epilogue.
    #[test]
    fn the_lean_decode_epilogue_is_kept_only_where_the_states_fit_a_stage() {
        for storage in [StorageType::F16, StorageType::Bf16] {
            for d in [16, 32, 64, 128, 256] {
                for group in [1, 2, 4, 8, 9, 16, 32, 64] {
                    for whole_group in [false, true] {
                        let t = DecodeTuning {
                            whole_group,
                            ..DecodeTuning::default_for(group)
                        };
                        let lean = decode_lean(storage, d, group, t);
                        let fits = (t.lean && t.stages >= 3 && !t.warp_pipes) && group <= 8;
                        assert_eq!(lean, fits, "{storage:?} head_dim {d} group {group}");
                        let sub = decode_sub_groups(storage, d, group, t);
                        assert_eq!(sub > 1, !whole_group && group > 8, "group {group}");
                        assert!(group.is_multiple_of(sub) && (sub == 1 || group / sub <= 8));
                        let m = dense_module(group, 1, d, storage);
                        let src = &generate_tuned(&m, t).unwrap()[0].source;
                        assert_eq!(
                            src.contains("\"the warps' states fit one stage\""),
                            decode_lean(storage, d, group / sub, t),
                            "{storage:?} head_dim {d} group {group} {t}"
                        );
                    }
                }
            }
        }
    }

    /// Session 35: a GQA group past 8 on tensor cores runs as the fewest equal sub-groups
    /// of at most 8 heads, each a work-list segment of its own; the ABI says how many
    /// (`tiles.sub_groups`) and sizes `seg_done` per segment. Session 36: the scalar (f32)
    /// kernel too. Groups up to 8 and `G` keep one block per group and an ABI without the
    /// field.
    #[test]
    fn wide_groups_run_as_sub_groups_of_at_most_eight() {
        let t = DecodeTuning::default_for(16);
        let whole = DecodeTuning {
            whole_group: true,
            ..t
        };
        assert_eq!("4x3eqmskvG".parse::<DecodeTuning>(), Ok(whole));
        assert_eq!(whole.to_string(), "4x3eqmskvG");
        for (group, sub) in [
            (1, 1),
            (4, 1),
            (8, 1),
            (9, 3),
            (12, 2),
            (16, 2),
            (32, 4),
            (64, 8),
        ] {
            assert_eq!(decode_sub_groups(StorageType::Bf16, 128, group, t), sub);
            assert_eq!(decode_sub_groups(StorageType::Bf16, 128, group, whole), 1);
            // Session 36: the scalar (f32) kernel too.
            assert_eq!(decode_sub_groups(StorageType::F32, 128, group, t), sub);
            assert_eq!(decode_sub_groups(StorageType::F32, 128, group, whole), 1);
        }
        for (group, kv) in [(4, 8), (16, 2), (32, 1)] {
            for storage in [StorageType::Bf16, StorageType::F32] {
                let m = dense_module(32, kv, 128, storage);
                assert_eq!(m.shape.group_size(), group);
                for tuning in [t, whole] {
                    let art = &generate_tuned(&m, tuning).unwrap()[0];
                    let abi = &art.kernels[1].abi;
                    let sub = decode_sub_groups(storage, 128, group, tuning);
                    assert_eq!(abi.tiles.sub_groups, (sub > 1).then_some(sub));
                    // The scalar kernel's columns are its (sub-)group's heads, unpadded.
                    let cols = match storage {
                        StorageType::F32 => group / sub,
                        _ => 8 * (group / sub).div_ceil(8),
                    };
                    assert_eq!(abi.tiles.q_cols, Some(cols), "{storage:?} group {group}");
                    let seg_done = abi.params.iter().find(|p| p.arg == Arg::SegDone).unwrap();
                    let want = match sub {
                        1 => "rows * kv_heads".to_string(),
                        n => format!("rows * kv_heads * {n}"),
                    };
                    assert_eq!(seg_done.shape, [want]);
                    assert_eq!(
                        art.source.contains("namespace decode_sub {"),
                        sub > 1,
                        "group {group} {tuning}"
                    );
                    if sub > 1 {
                        assert!(art.source.contains(&format!(
                            "constexpr int GROUP = {};\nconstexpr int KV_HEADS = {};",
                            group / sub,
                            kv * sub
                        )));
                    }
                }
            }
        }
    }

    /// Session 36: `A` puts all sub-groups of 8 of a KV head in one block whose warps
    /// split over the column tiles; the work list then has one segment a KV head, the block
    /// `warps × column tiles` warps and the same key tile. Groups up to 8, the scalar
    /// kernel and `G` are unchanged (the same source as without the letter).
    #[test]
    fn sub_groups_share_a_block_with_a() {
        let base = DecodeTuning::default_for(16);
        let all = DecodeTuning {
            sub_groups_shared: true,
            ..base
        };
        assert_eq!("4x3eqmskvA".parse::<DecodeTuning>(), Ok(all));
        assert_eq!(all.to_string(), "4x3eqmskvA");
        for bad in ["4x3GA", "4x3wA", "4x3AA", "4x3P"] {
            assert!(bad.parse::<DecodeTuning>().is_err(), "{bad}");
        }
        let bf = StorageType::Bf16;
        // (group, sub-groups a block, segments a KV head, column tiles)
        for (group, want) in [
            (4, (1, 1, 1)),
            (8, (1, 1, 1)),
            (9, (3, 1, 2)),
            (12, (2, 1, 2)),
            (16, (2, 1, 2)),
            (32, (4, 1, 4)),
            (64, (8, 1, 8)),
        ] {
            let got = (
                decode_block_sub_groups(bf, 128, group, all),
                decode_sub_groups(bf, 128, group, all),
                decode_col_tiles(bf, 128, group, all),
            );
            assert_eq!(got, want, "group {group}");
            assert_eq!(decode_col_tiles(bf, 128, group, base), 1);
            // `A` leaves the scalar kernel as it is: its sub-groups of <= 8 (s36-wide).
            assert_eq!(
                decode_sub_groups(StorageType::F32, 128, group, all),
                decode_sub_groups(StorageType::F32, 128, group, base)
            );
            assert_eq!(decode_col_tiles(StorageType::F32, 128, group, all), 1);
        }
        for (kv, group) in [(8, 4), (2, 16), (1, 32)] {
            let m = dense_module(32, kv, 128, bf);
            let plain = &generate_tuned(&m, base).unwrap()[0];
            let art = &generate_tuned(&m, all).unwrap()[0];
            let abi = &art.kernels[1].abi;
            let ct = decode_col_tiles(bf, 128, group, all);
            assert_eq!(abi.block[0], 32 * all.warps * ct);
            assert_eq!(abi.tiles.k_tile, Some(16 * all.warps));
            assert_eq!(abi.tiles.sub_groups, None);
            assert_eq!(abi.tiles.q_cols, Some(8 * group.div_ceil(8)));
            if group <= 8 {
                assert_eq!(art.source, plain.source);
            } else {
                assert!(art.source.contains(&format!("constexpr int NCT = {ct};")));
                assert!(art.source.contains("constexpr int KT = 16 * KWARPS;"));
                assert!(!plain.source.contains("KWARPS"));
            }
        }
        // 8 warps a column tile over 8 column tiles (64 heads) is past 32 warps a block.
        let m = dense_module(64, 1, 128, bf);
        let wide = DecodeTuning { warps: 8, ..all };
        assert!(generate_tuned(&m, wide).is_err());
        assert!(generate_tuned(&m, all).is_ok());
    }

    /// A one-layer dense plan of `q_heads` / `kv_heads` heads of `head_dim`, lowered to
    /// `storage` (4096-token context): the module the prefill tuning tests generate from.
    fn dense_module(
        q_heads: u32,
        kv_heads: u32,
        head_dim: u32,
        storage: StorageType,
    ) -> crate::lower::KernelModule {
        crate::lower::lower(
            &crate::plan::Plan::dense(crate::plan::ModelShape {
                name: None,
                layers: 1,
                q_heads,
                kv_heads,
                head_dim,
                max_context_tokens: 4096,
            })
            .unwrap(),
            storage,
        )
    }

    #[test]
    fn prefill_geometry_fits_an_sm90_block() {
        for storage in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
            for d in [4, 32, 36, 64, 68, 96, 128, 256] {
                let t = PrefillTuning::default_for(storage, d);
                let threads = prefill_threads(storage, d, t);
                assert_eq!(threads % 32, 0);
                if prefill_tensor_cores(storage, d) {
                    // 16 query rows per computing warp (not the producer's); whole mma
                    // k-steps over head_dim.
                    let computing = threads - 128 * u32::from(t.warp_specialized);
                    assert_eq!(prefill_q_tile(storage, d, t), 16 * computing / 32, "d {d}");
                    assert_eq!(d % 16, 0);
                }
                if prefill_wgmma(storage, d) {
                    assert_eq!(threads % 128, 0, "whole warpgroups");
                    assert_eq!(d % 64, 0);
                }
                // 227 KiB: the most dynamic shared memory an sm_90 block can opt into.
                assert!(prefill_shared_bytes(storage, d, t) <= 227 * 1024, "d {d}");
            }
        }
        // Two blocks share an SM at head_dim 128 (228 KiB per SM, 1 KiB reserved per block).
        let t = PrefillTuning::default_for(StorageType::Bf16, 128);
        if t.blocks_per_sm == 2 {
            assert!(2 * (prefill_shared_bytes(StorageType::Bf16, 128, t) + 1024) <= 228 * 1024);
        }
        assert!(!prefill_tensor_cores(StorageType::F32, 128));
        assert!(!prefill_wgmma(StorageType::F16, 32));
    }

    #[test]
    fn prefill_variants_parse_print_and_fit() {
        for text in [
            "2x64x2",
            "2x64x2s",
            "2x64x2os",
            "2x128x1os",
            "3x64x1os",
            "1x64x2s",
            "2x64x2p",
            "2x64x2sp",
            "2x64x1w",
            "2x128x1w",
            "2x64x1pw",
            "2x64x1wg",
            "2x64x1pwg",
            "2x64x1owg",
            "2x64x1ow",
            "2x64x1owgh",
            "2x64x1wh",
            "2x64x1owghv",
            "2x64x1owgr",
            "2x64x1owghvr",
            "2x64x2r",
            "2x64x1owghvu",
            "2x64x1owghvur",
            "3x64x1owghvunc",
            "3x64x1owghvunck",
            "2x64x1owgnc",
            "2x64x1owgc",
            "2x64x1owgk",
            "3x64x1owghvunct",
            "2x64x1owgnct",
            "2x64x1owgnt",
            "3x64x1owghnct",
            "3x64x1owghvunca",
            "2x64x1owgnca",
            "3x64x1owghvuncaf",
            "3x64x1owghvunctf",
            "3x64x1owghncf",
            "2x64x1wf",
            "3x64x1owghvuncafj",
            "3x64x1owghvuncafm",
            "3x64x1owghvunctfi",
            "3x64x1owghncfm",
            "3x64x1owghvuncafym",
            "3x64x1owghvunctfy",
            "3x64x1owghvuncafbm",
            "3x64x1owghvunctfbm",
            "2x64x1owgncb",
            "3x64x1owghvuncafbdm",
            "3x64x1owghvunctfbdm",
            "2x64x1owghvuncbd",
            "3x64x1owghvuncafbdzm",
            "3x64x1owghvunctfbdzm",
            "2x64x1owghvuncbdz",
            "3x64x1owghvuncafbdHm",
            "3x64x1owghvuncafbdQm",
            "3x64x1owghvuncafbdHQm",
            "3x64x1owghvunctfbdHQm",
            "2x64x1owghvunctbdHQ",
        ] {
            let t: PrefillTuning = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
            let smem = prefill_shared_bytes(StorageType::Bf16, 128, t);
            assert!(
                t.blocks_per_sm * (smem + 1024) <= 228 * 1024,
                "{text}: {smem} bytes"
            );
        }
        for bad in [
            "2x64",
            "4x64x1",
            "2x64x2f",
            "2x64x2of",
            "2x64x1owgl",
            "2x96x1",
            "2x64x3",
            "2x64x2q",
            "axbxc",
            "3x64x1w",
            "1x64x1w",
            "2x64x2w",
            "2x64x1sw",
            "2x64x1osw",
            "2x64x2g",
            "2x64x2h",
            "2x64x1oh",
            "2x64x1pwh",
            "2x64x1owghu",
            "2x64x1wgnt",
            "2x64x1ownt",
            "2x64x1owgt",
            "3x64x1owghvunckt",
            "2x64x1owgnqt",
            "2x64x1owgnet",
            "2x64x2t",
            "3x64x1owghvuncta",
            "2x64x1wgna",
            "3x64x1owghvuncka",
            "2x64x2a",
            // `j`, `m`, `i`: only with `f`, one of them.
            "3x64x1owghvuncaj",
            "3x64x1owghvuncafjm",
            "3x64x1owghvuncafmi",
            // `y`: only with `f`.
            "3x64x1owghvuncaym",
            "3x64x1owghvuncay",
            // `b`: only with `w`.
            "2x64x2b",
            // `H` and `Q`: only with `t` or `a`; `Q` only with `c`.
            "3x64x1owghvuncfbdHm",
            "3x64x1owghvuncfbdQm",
            "3x64x1owghvunafbdQm",
            // `d`: only with `w`, `g`, `o` and `n`, not with `k`.
            "2x64x1owd",
            "2x64x1owgnckd",
            // `z`: only with `w`.
            "2x64x2z",
        ] {
            let e = bad.parse::<PrefillTuning>().unwrap_err();
            assert!(e.contains(bad) && e.contains("WGxBNxBLOCKS"), "{e}");
        }
        assert_eq!(
            PrefillTuning::default().to_string().parse(),
            Ok(PrefillTuning::default())
        );
    }

    /// The default is `2x64x1owghvunc` in bf16 and `2x64x1owgnc` in f16 (`2x64x1owg` where
    /// there is no wgmma body; three warpgroups at head_dim 128) wherever it generates, and falls back to 2x64x2 where the ring holds
    /// fewer than the 3 stages ping-pong and overlap need (head_dim 256).
    #[test]
    fn prefill_default_per_shape() {
        assert_eq!(PrefillTuning::default().to_string(), "2x64x1owghvunc");
        for (storage, d, want) in [
            (StorageType::Bf16, 128, "3x64x1owghvuncafbdHQm"),
            (StorageType::F16, 128, "3x64x1owghncf"),
            (StorageType::F16, 64, "2x64x1owgnc"),
            (StorageType::Bf16, 192, "2x64x1owghvun"),
            (StorageType::Bf16, 96, "2x64x1owg"),
            (StorageType::F16, 96, "2x64x1owg"),
            (StorageType::Bf16, 256, "2x64x2"),
        ] {
            let t = PrefillTuning::default_for(storage, d);
            assert_eq!(t.to_string(), want, "{} d {d}", storage.name());
            let module = dense_module(2, 1, d, storage);
            let arts = generate(&module).unwrap_or_else(|e| panic!("d {d}: {e}"));
            // `f`: rows of up to CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS (8192) tokens, 43
            // query tiles of 192 rows, take tiles from the row's end.
            assert_eq!(
                arts[0]
                    .source
                    .contains("constexpr unsigned PF_END_ALIGN_TILES = 43;"),
                t.end_aligned,
                "{t}"
            );
        }
    }

    /// `j`, `m`, `i` change only which block computes which query tile (`pf_order`, with
    /// the tile count of each group); without them the source is session 16's default's,
    /// byte for byte (same cubin keys as before the letters existed). `m` is bf16's
    /// default at head_dim 128 (`CUDA_PREFILL_TC_HEAD_TILES`), not f16's (not timed).
    #[test]
    fn head_tiles_order_changes_only_the_launch_order() {
        assert_eq!(
            PrefillTuning::default_for(StorageType::Bf16, 128).to_string(),
            "3x64x1owghvuncafbdHQm"
        );
        assert_eq!(
            PrefillTuning::default_for(StorageType::F16, 128).head_tiles,
            1
        );
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        let def = src("3x64x1owghvuncaf");
        assert!(!def.contains("pf_order") && !def.contains("PF_HEAD_TILES"));
        for (v, n) in [("j", 2), ("m", 4), ("i", 8)] {
            for form in ["3x64x1owghvuncaf", "3x64x1owghvunctf"] {
                let s = src(&format!("{form}{v}"));
                assert!(
                    s.contains(&format!("constexpr unsigned PF_HEAD_TILES = {n};"))
                        && s.contains("pf_order("),
                    "{form}{v}"
                );
            }
        }
    }

    /// `b` adds the lean Q copy (the one-tile kernel) and output stores: the source
    /// without it is the default's, and with it the generic loops are gone.
    #[test]
    fn lean_ends_replace_only_the_copy_loops() {
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        for (form, q_copy) in [("3x64x1owghvuncaf", true), ("3x64x1owghvunctf", false)] {
            let (def, b) = (src(&format!("{form}m")), src(&format!("{form}bm")));
            assert_ne!(def, b, "{form}");
            assert!(b.contains("constexpr int OSTEP = 32 / CHUNKS;"), "{form}");
            // The portable body keeps its generic loop.
            let generic = "for (int i = lane; i < 16 * CHUNKS; i += 32)";
            assert_eq!(
                b.matches(generic).count() + 1,
                def.matches(generic).count(),
                "{form}"
            );
            assert!(b.contains("stmatrix.sync.aligned.m8n8.x4"), "{form}");
            assert_eq!(
                b.contains("constexpr int QSTEP = 128 / CHUNKS;"),
                q_copy,
                "{form}"
            );
            assert!(!def.contains("OSTEP") && !def.contains("QSTEP"), "{form}");
        }
    }

    /// `z` changes the one-tile kernel's ring to 5 stages at head_dim 128 (64-key tiles) and
    /// nothing else: `t`'s two Q tiles leave room for 4, so its source stays the default's.
    #[test]
    fn deep_ring_changes_only_the_one_tile_stage_count() {
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        let stages = |v: &str| prefill_stages(StorageType::Bf16, 128, v.parse().unwrap());
        assert_eq!(stages("3x64x1owghvuncafbdm"), 4);
        assert_eq!(stages("3x64x1owghvuncafbdzm"), 5);
        assert_eq!(stages("3x64x1owghvunctfbdzm"), 4);
        let (def, z) = (src("3x64x1owghvuncfbdm"), src("3x64x1owghvuncfbdzm"));
        // The stage count, and the shared memory it takes (in a comment of the source): a
        // fifth K and V tile, its two mbarriers and its V exponent word.
        let smem = |v: &str| prefill_shared_bytes(StorageType::Bf16, 128, v.parse().unwrap());
        let (def_smem, z_smem) = (smem("3x64x1owghvuncfbdm"), smem("3x64x1owghvuncfbdzm"));
        assert_eq!(z_smem - def_smem, 32 * 1024 + 2 * 8 + 4);
        assert!(z_smem <= PREFILL_MAX_SHARED_BYTES);
        assert_eq!(
            def.replace(
                "constexpr int WS_STAGES = 4;",
                "constexpr int WS_STAGES = 5;"
            )
            .replace(&format!("({def_smem} bytes"), &format!("({z_smem} bytes")),
            z
        );
        assert_eq!(src("3x64x1owghvunctfbdm"), src("3x64x1owghvunctfbdzm"));
    }

    /// `H` and `Q` change only `t`'s producer (its switch between query tiles): with `a` the
    /// one-tile layers' sources are the default's byte for byte (and their tuning drops the
    /// letters), and in `t` the consumers' code is unchanged.
    #[test]
    fn switch_letters_change_only_the_persistent_producer() {
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        // A dense layer takes one block per query tile under `a`: nothing changes.
        let def = src("3x64x1owghvuncafbdm");
        for v in [
            "3x64x1owghvuncafbdHm",
            "3x64x1owghvuncafbdQm",
            "3x64x1owghvuncafbdHQm",
        ] {
            assert_eq!(src(v), def, "{v}");
        }
        let t: PrefillTuning = "3x64x1owghvuncafbdHQm".parse().unwrap();
        let wide = t.for_layer(&module.layers[0], &module.span);
        assert!(!wide.persistent && !wide.switch_at_once && !wide.lean_q);
        assert_eq!(wide.to_string(), "3x64x1owghvuncfbdm");
        // `t` on every layer: the producer's Q copy and its last hand-over change, the
        // consumers (from `// Consumers.` on) do not.
        let (tdef, h, q, hq) = (
            src("3x64x1owghvunctfbdm"),
            src("3x64x1owghvunctfbdHm"),
            src("3x64x1owghvunctfbdQm"),
            src("3x64x1owghvunctfbdHQm"),
        );
        let consumers = |s: &str| s[s.find("// Consumers.").unwrap()..].to_string();
        for (name, v) in [("H", &h), ("Q", &q), ("HQ", &hq)] {
            assert_ne!(*v, tdef, "{name}");
            assert_eq!(consumers(v), consumers(&tdef), "{name}");
        }
        assert!(h.contains("w_pre") && hq.contains("w_pre") && !q.contains("w_pre"));
        assert!(q.contains("`Q`: one fixed Q chunk") && !h.contains("`Q`: one fixed Q chunk"));
    }

    /// `d` replaces the consumers' section loop and the producer's hand-over rule in both
    /// forms (one-tile and `t`); without it the source is session 19's default's, and `h` without `v`
    /// is refused as for `t`.
    #[test]
    fn own_bands_change_the_loop_and_the_producer() {
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        for form in ["3x64x1owghvuncafb", "3x64x1owghvunctfb"] {
            let (def, d) = (src(&format!("{form}m")), src(&format!("{form}dm")));
            assert_ne!(def, d, "{form}");
            for marker in ["mb_test(", "own_range(", "n_pad"] {
                assert!(
                    d.contains(marker) && !def.contains(marker),
                    "{form} {marker}"
                );
            }
        }
        let e = generate_variant(
            &module,
            DecodeTuning::default(),
            "3x64x1owghncd".parse().unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs `v`"), "{e}");
    }

    /// `y` changes only the tile count up to which query tiles are counted from the row's
    /// end: every other line of the source is the default's.
    #[test]
    fn end_aligned_always_changes_only_the_length_rule() {
        let module = dense_module(8, 2, 128, StorageType::Bf16);
        let src = |v: &str| {
            generate_variant(&module, DecodeTuning::default(), v.parse().unwrap()).unwrap()[0]
                .source
                .clone()
        };
        for form in ["3x64x1owghvuncafm", "3x64x1owghvunctfm"] {
            // `…fm` → `…fym`: the letters' order is `f`, `y`, then the launch order.
            let (def, y) = (src(form), src(&format!("{}ym", &form[..form.len() - 1])));
            let differ: Vec<(&str, &str)> =
                def.lines().zip(y.lines()).filter(|(a, b)| a != b).collect();
            assert_eq!(
                differ,
                [(
                    "constexpr unsigned PF_END_ALIGN_TILES = 43;",
                    "constexpr unsigned PF_END_ALIGN_TILES = 4294967295;"
                )],
                "{form}"
            );
            assert_eq!(def.lines().count(), y.lines().count());
        }
    }

    /// The `w` variant: a producer warpgroup beside the consumers, a ring of up to 4 K/V
    /// buffers with its mbarriers within an SM's shared memory, and `setmaxnreg` counts
    /// that fit the registers the block was launched with.
    #[test]
    fn warp_specialized_prefill_fits() {
        for (text, stages) in [
            ("2x64x1w", 4),
            ("2x64x1pw", 4),
            ("2x128x1w", 3),
            ("2x128x1owgh", 3),
        ] {
            let t: PrefillTuning = text.parse().unwrap();
            let (bf16, d) = (StorageType::Bf16, 128);
            assert_eq!(prefill_threads(bf16, d, t), 384);
            assert_eq!(prefill_q_tile(bf16, d, t), 128);
            assert_eq!(prefill_stages(bf16, d, t), stages, "{text}");
            let smem = prefill_shared_bytes(bf16, d, t);
            // At least the ring (the mma.sync body's padded double buffer may need more).
            assert!(
                smem >= (128 + stages * 2 * t.k_tile) * d * 2 + stages * 16,
                "{text}"
            );
            assert!(smem + 1024 <= 228 * 1024, "{text}: {smem}");
            let (producer, consumer) = prefill_ws_registers(t);
            assert_eq!((producer, consumer), (40, 232));
            // 65536 / 384 threads = 168 per thread at launch (multiples of 8).
            assert!(producer * 128 + consumer * 256 <= 168 * 384);
        }
        // Three consumer warpgroups (P·V in f16): 512 threads, a 192-row query tile, 4
        // stages, and consumers of 152 registers beside a producer of 40.
        let t: PrefillTuning = "3x64x1owghvu".parse().unwrap();
        let (bf16, d) = (StorageType::Bf16, 128);
        assert_eq!(prefill_threads(bf16, d, t), 512);
        assert_eq!(prefill_q_tile(bf16, d, t), 192);
        assert_eq!(prefill_stages(bf16, d, t), 4);
        assert_eq!(prefill_ws_registers(t), (40, 152));
        assert!(prefill_shared_bytes(bf16, d, t) + 1024 <= 228 * 1024);
        // Without `h` (P in two bf16 parts) three consumers would serialize: refused.
        assert!("3x64x1owg".parse::<PrefillTuning>().is_err());
        // 128-key tiles at head_dim 256 do not fit an SM: an error naming the variant.
        let module = dense_module(2, 1, 256, StorageType::Bf16);
        let e = generate_variant(
            &module,
            DecodeTuning::default(),
            "2x128x1w".parse().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2x128x1w") && e.contains("head_dim 256"), "{e}");
        // Ping-pong or overlap with only 2 stages (64-key tiles at head_dim 256) would
        // deadlock: an error naming the variant.
        for v in ["2x64x1wg", "2x64x1ow"] {
            let e = generate_variant(&module, DecodeTuning::default(), v.parse().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(v) && e.contains("2 K/V stages"), "{e}");
        }
        assert_eq!(
            prefill_stages(StorageType::Bf16, 256, "2x64x1w".parse().unwrap()),
            2
        );
        assert!(
            generate_variant(&module, DecodeTuning::default(), "2x64x1w".parse().unwrap()).is_ok()
        );
        // Without wgmma (head_dim 96) the body is mma.sync: double buffer, producer idle.
        let t: PrefillTuning = "2x64x1w".parse().unwrap();
        assert_eq!(prefill_stages(StorageType::F16, 96, t), 2);
        assert_eq!(prefill_threads(StorageType::F16, 96, t), 384);
    }

    /// `t`: two Q tiles beside the ring still leave 4 stages at head_dim 128 (2 or 3
    /// consumer warpgroups), the ABI takes the persistent grid, and where the second Q tile
    /// would leave fewer than 3 stages (head_dim 192) the default drops `t`, not `w`.
    #[test]
    fn persistent_prefill_fits() {
        for (text, storage) in [
            ("3x64x1owghvunct", StorageType::Bf16),
            ("2x64x1owgnct", StorageType::F16),
            ("3x64x1owghnct", StorageType::F16),
        ] {
            let t: PrefillTuning = text.parse().unwrap();
            assert_eq!(prefill_stages(storage, 128, t), 4, "{text}");
            let smem = prefill_shared_bytes(storage, 128, t);
            assert!(smem <= PREFILL_MAX_SHARED_BYTES, "{text}: {smem}");
            let q = prefill_q_tile(storage, 128, t) * 128 * 2;
            assert!(
                smem >= 2 * q + 4 * 2 * 64 * 128 * 2 + 4 * 16 + 2 * 16,
                "{text}: {smem}"
            );
            let module = dense_module(4, 2, 128, storage);
            let artifacts = generate_variant(&module, DecodeTuning::default(), t).unwrap();
            let k = artifacts
                .iter()
                .flat_map(|a| &a.kernels)
                .find(|k| k.phase == Phase::Prefill)
                .unwrap();
            assert_eq!(k.abi.grid, Grid::PersistentQueryTiles { q_tile: q / 256 });
            assert!(artifacts[0].source.contains("pf_item_next"), "{text}");
        }
        // bf16 `h` without `v` converts V in the producer, which `t`'s loop does not.
        let module = dense_module(2, 1, 128, StorageType::Bf16);
        let t: PrefillTuning = "2x64x1owghnt".parse().unwrap();
        assert!(generate_variant(&module, DecodeTuning::default(), t).is_err());
        let mut t = PrefillTuning::default_for(StorageType::Bf16, 192);
        assert!(!t.persistent && t.warp_specialized, "{t}");
        t.persistent = true;
        assert!(prefill_stages(StorageType::Bf16, 192, t) < 3);
    }

    /// `a`: persistent blocks (`t`) on the narrow layers only, by the layer's mean span
    /// share at `CUDA_PREFILL_TC_NARROW_REF_TOKENS`; every other layer's source is the
    /// one-tile kernel's byte for byte (the same cubin), and each kernel's `tuning`
    /// constant names the form it was generated in.
    #[test]
    fn narrow_layers_take_persistent_blocks() {
        let plan = crate::plan::Plan::from_toml_str(
            r#"
format_version = 1
[model]
layers = 3
q_heads = 4
kv_heads = 1
head_dim = 128
max_context_tokens = 32768
[span]
sink_tokens = 64
min_span_tokens = 64
block_tokens = 64
mode = "moa"
[[layers]]
alpha = [512, 512, 1024, 0]
beta = [0.125, 0.1875, 0.125, 0.25]
[[layers]]
alpha = [0, 0, 0, 0]
beta = [1.0, 1.0, 1.0, 1.0]
[[layers]]
alpha = [0, 0, 0, 0]
beta = [0.5, 0.25, 0.375, 0.5]
"#,
            "narrow.toml",
        )
        .unwrap();
        let module = crate::lower::lower(&plan, StorageType::Bf16);
        let share: Vec<f64> = module
            .layers
            .iter()
            .map(|l| prefill_span_share(l, &module.span, CUDA_PREFILL_TC_NARROW_REF_TOKENS))
            .collect();
        // The betas' mean plus the alphas' 2048 of 4 · 16384 tokens; 1; 0.40625.
        assert!(
            (share[0] - (0.171875 + 2048.0 / 65536.0)).abs() < 0.005,
            "{share:?}"
        );
        assert!(
            (share[1] - 1.0).abs() < 1e-9 && (share[2] - 0.40625).abs() < 0.005,
            "{share:?}"
        );
        let narrow = [true, false, false];
        let t: PrefillTuning = "3x64x1owghvunca".parse().unwrap();
        let artifacts = generate_variant(&module, DecodeTuning::default(), t).unwrap();
        let base = generate_variant(
            &module,
            DecodeTuning::default(),
            "3x64x1owghvunc".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(artifacts.len(), 3);
        for ((a, b), narrow) in artifacts.iter().zip(&base).zip(narrow) {
            let k = a
                .kernels
                .iter()
                .find(|k| k.phase == Phase::Prefill)
                .unwrap();
            let want = if narrow {
                "3x64x1owghvunct"
            } else {
                "3x64x1owghvunc"
            };
            assert_eq!(k.constants["tuning"], json!(want));
            assert_eq!(
                matches!(k.abi.grid, Grid::PersistentQueryTiles { .. }),
                narrow
            );
            assert_eq!(a.source.contains("pf_item_next"), narrow);
            assert_eq!(a.source == b.source, !narrow);
        }
        // Where the default has `a` it is the bf16 head_dim-128 one, and `t` with it never.
        for (storage, d) in [
            (StorageType::Bf16, 128),
            (StorageType::F16, 128),
            (StorageType::Bf16, 64),
        ] {
            let t = PrefillTuning::default_for(storage, d);
            assert!(!(t.persistent && t.persistent_narrow), "{t}");
            if t.persistent_narrow {
                assert_eq!((storage, d), (StorageType::Bf16, 128), "{t}");
            }
        }
    }

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
    fn the_wide_cluster_letter_sets_the_kernels_largest_cluster() {
        // Session 19: `h` merges in clusters of up to 16 (non-portable), the rest in 8.
        let t: DecodeTuning = "4x3eqmskh".parse().unwrap();
        assert!(t.wide_clusters);
        assert_eq!(decode_max_cluster(t), 16);
        assert_eq!(decode_max_cluster(DecodeTuning::default_for(4)), 8);
        assert_eq!(decode_max_cluster(DecodeTuning::default_for(1)), 8);
    }

    #[test]
    fn fast_merge_batches_fill_64_registers_and_at_most_the_lanes() {
        // GQA-4 at head_dim 128 over 128 threads: 4 elements per thread, 16 chunks.
        assert_eq!(decode_merge_batch(128, 4, 128), 16);
        // MHA: one element per thread, one chunk per lane.
        assert_eq!(decode_merge_batch(128, 1, 128), 32);
        assert_eq!(decode_merge_batch(128, 8, 128), 8);
        assert_eq!(decode_merge_batch(64, 4, 128), 32);
        assert_eq!(decode_merge_batch_wide(128, 4, 128), 32);
        assert_eq!(decode_merge_batch_wide(128, 8, 128), 16);
        // Half partials: pairs per thread, one 32-bit register per chunk and pair.
        assert_eq!(decode_merge_batch_half(128, 4, 128), 32);
        assert_eq!(decode_merge_batch_half(128, 1, 128), 32);
        assert_eq!(decode_merge_batch_half(128, 8, 128), 16);
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

    #[test]
    fn lanes_cover_head_dim_exactly() {
        for d in (4..=256).step_by(4) {
            let dpl = dims_per_lane(d);
            assert_eq!(d % dpl, 0, "d {d}");
            assert!(d / dpl <= 32, "d {d}");
        }
        assert_eq!(dims_per_lane(128), 4);
        assert_eq!(dims_per_lane(32), 1);
        assert_eq!(dims_per_lane(68), 4);
    }
}
