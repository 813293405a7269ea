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
use crate::lower::consts::CUDA_PREFILL_TC_END_ALIGNED_MAX_TOKENS;
use crate::lower::{KernelModule, LayerSpec, StorageType};

mod geometry;
mod tuning;

use geometry::PREFILL_MAX_SHARED_BYTES;
pub use geometry::*;
pub use tuning::{DecodeTuning, PrefillTuning};

const COMMON: &str = include_str!("../../../templates/cuda/common.cu.j2");
const LAYER: &str = include_str!("../../../templates/cuda/layer.cu.j2");
const PREFILL: &str = include_str!("../../../templates/cuda/prefill.cu.j2");
const DECODE: &str = include_str!("../../../templates/cuda/decode.cu.j2");

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

#[derive(Serialize)]
struct CudaLayerCtx {
    layer: LayerCtx,
    dtype: &'static str,
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
        "rules": l.rules,
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
    use crate::lower::consts::CUDA_PREFILL_TC_NARROW_REF_TOKENS;

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
}
