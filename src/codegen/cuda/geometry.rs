//! What a CUDA kernel's tuning implies for its launch and resources: tile sizes, threads,
//! pipeline stages, shared memory, merge batches and sub-groups, from the storage type,
//! head_dim, GQA group size and [`DecodeTuning`] / [`PrefillTuning`]. The same functions
//! serve codegen (the kernels' constants and [`KernelAbi`](super::super::abi::KernelAbi)) and the executors.

use crate::lower::consts::{
    CUDA_DECODE_BLOCK_GROUP, CUDA_DECODE_PORTABLE_CLUSTER, CUDA_DECODE_WIDE_CLUSTER,
    CUDA_PREFILL_K_TILE, CUDA_PREFILL_Q_TILE, CUDA_PREFILL_THREADS,
};
use crate::lower::{LayerSpec, StorageType};
use crate::plan::SpanParams;

use super::tuning::{DecodeTuning, PrefillTuning};

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
pub(super) const PREFILL_MAX_SHARED_BYTES: u32 = 227 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

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
