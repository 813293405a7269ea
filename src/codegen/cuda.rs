//! CUDA back end: one CUDA C++ file per layer (`cuda/lLL.cu`, a fused prefill and a fused
//! split-K decode kernel) plus `cuda/decode_merge.cu`, shared by every layer.
//!
//! The layer's rules, sink, span constants, head map and scale are baked into the source;
//! N, the row count and the per-row lengths / positions are kernel parameters. Spans,
//! segment offsets and the chunk count are computed from N on the device with the same
//! integer formulas as `plan::Rule::span` and `lower::CacheLayout`.

use serde::Serialize;
use serde_json::json;

use super::ctx::LayerCtx;
use super::{render, Artifact, BindingInfo, CodegenError, KernelInfo, Phase, Target};
use crate::lower::consts::{
    CUDA_DECODE_CHUNK, CUDA_DECODE_THREADS, CUDA_PREFILL_K_TILE, CUDA_PREFILL_Q_TILE,
    CUDA_PREFILL_TC_K_TILE, CUDA_PREFILL_TC_MIN_BLOCKS, CUDA_PREFILL_TC_Q_TILE,
    CUDA_PREFILL_TC_THREADS, CUDA_PREFILL_THREADS,
};
use crate::lower::{KernelModule, LayerSpec, StorageType};

const COMMON: &str = include_str!("../../templates/cuda/common.cu.j2");
const LAYER: &str = include_str!("../../templates/cuda/layer.cu.j2");
const PREFILL: &str = include_str!("../../templates/cuda/prefill.cu.j2");
const MERGE: &str = include_str!("../../templates/cuda/decode_merge.cu.j2");

/// Path of the merge kernel's file inside the output folder.
pub const MERGE_PATH: &str = "cuda/decode_merge.cu";

/// Path of a layer's file inside the output folder.
pub fn layer_path(layer: u32) -> String {
    format!("cuda/l{layer:02}.cu")
}

pub fn prefill_name(storage: StorageType, head_dim: u32, layer: u32) -> String {
    format!("moa_prefill_{}_hd{head_dim}_l{layer:02}", storage.name())
}

pub fn decode_name(storage: StorageType, head_dim: u32, layer: u32) -> String {
    format!("moa_decode_{}_hd{head_dim}_l{layer:02}", storage.name())
}

pub fn merge_name(storage: StorageType, head_dim: u32) -> String {
    format!("moa_decode_merge_{}_hd{head_dim}", storage.name())
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

/// Threads per prefill block.
pub fn prefill_threads(storage: StorageType, head_dim: u32) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        CUDA_PREFILL_TC_THREADS
    } else {
        CUDA_PREFILL_THREADS
    }
}

/// Query rows per prefill block (the launch grid's z is `ceil(max_row_len / this)`).
pub fn prefill_q_tile(storage: StorageType, head_dim: u32) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        CUDA_PREFILL_TC_Q_TILE
    } else {
        CUDA_PREFILL_Q_TILE
    }
}

/// Keys per prefill K/V tile.
pub fn prefill_k_tile(storage: StorageType, head_dim: u32) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        CUDA_PREFILL_TC_K_TILE
    } else {
        CUDA_PREFILL_K_TILE
    }
}

/// Dynamic shared memory of a layer's prefill kernel in bytes. Tensor cores: the Q tile
/// and two K and two V tiles (double buffer) in the storage type, rows padded by 8
/// elements for ldmatrix (the wgmma body needs the same tiles unpadded, less); scalar:
/// Q, K and V tiles in f32, rows padded by 4 floats.
pub fn prefill_shared_bytes(storage: StorageType, head_dim: u32) -> u32 {
    if prefill_tensor_cores(storage, head_dim) {
        (CUDA_PREFILL_TC_Q_TILE + 4 * CUDA_PREFILL_TC_K_TILE) * (head_dim + 8) * 2
    } else {
        (CUDA_PREFILL_Q_TILE + 2 * CUDA_PREFILL_K_TILE) * ks_stride(head_dim) * 4
    }
}

/// Dynamic shared memory of a decode kernel: the group's queries, then the larger of the
/// warps' K rows and the warps' partial states.
pub fn decode_shared_bytes(head_dim: u32, group_size: u32) -> u32 {
    let warps = CUDA_DECODE_THREADS / 32;
    let k_rows = warps * 32 * ks_stride(head_dim);
    let states = warps * group_size * (head_dim + 2);
    (group_size * ks_stride(head_dim) + k_rows.max(states)) * 4
}

/// Threads of the merge kernel: one per output dim, in whole warps.
pub fn merge_threads(head_dim: u32) -> u32 {
    head_dim.div_ceil(32) * 32
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
    decode_chunk: u32,
    decode_threads: u32,
    decode_smem_bytes: u32,
}

#[derive(Serialize)]
struct MergeCtx {
    dtype: &'static str,
    head_dim: u32,
    merge_name: String,
    merge_threads: u32,
}

fn elem(storage: StorageType) -> &'static str {
    storage.name()
}

fn binding(index: u32, name: &str, access: &str, ty: String) -> BindingInfo {
    BindingInfo {
        index,
        name: name.to_string(),
        access: access.to_string(),
        ty,
    }
}

/// Kernel parameters of a layer's prefill kernel, in order.
fn prefill_bindings(storage: StorageType) -> Vec<BindingInfo> {
    let e = elem(storage);
    vec![
        binding(
            0,
            "q",
            "const",
            format!("{e}[total_tokens, q_heads, head_dim]"),
        ),
        binding(
            1,
            "k",
            "const",
            format!("{e}[total_tokens, kv_heads, head_dim]"),
        ),
        binding(
            2,
            "v",
            "const",
            format!("{e}[total_tokens, kv_heads, head_dim]"),
        ),
        binding(3, "row_start", "const", "u32[rows + 1]".into()),
        binding(
            4,
            "out",
            "mut",
            format!("{e}[total_tokens, q_heads, head_dim]"),
        ),
        binding(5, "n_tokens", "value", "u32".into()),
        binding(6, "rows", "value", "u32".into()),
    ]
}

fn decode_bindings(storage: StorageType) -> Vec<BindingInfo> {
    let e = elem(storage);
    vec![
        binding(0, "q", "const", format!("{e}[rows, q_heads, head_dim]")),
        binding(
            1,
            "k_cache",
            "const",
            format!("{e}[rows, row_slots, head_dim]"),
        ),
        binding(
            2,
            "v_cache",
            "const",
            format!("{e}[rows, row_slots, head_dim]"),
        ),
        binding(3, "row_pos", "const", "u32[rows]".into()),
        binding(
            4,
            "partials",
            "mut",
            "f32[rows, q_heads, n_chunks, head_dim + 2]".into(),
        ),
        binding(5, "n_tokens", "value", "u32".into()),
        binding(6, "rows", "value", "u32".into()),
    ]
}

fn merge_bindings(storage: StorageType) -> Vec<BindingInfo> {
    let e = elem(storage);
    vec![
        binding(
            0,
            "partials",
            "const",
            "f32[rows, q_heads, n_chunks, head_dim + 2]".into(),
        ),
        binding(1, "out", "mut", format!("{e}[rows, q_heads, head_dim]")),
        binding(2, "n_chunks", "value", "u32".into()),
        binding(3, "rows", "value", "u32".into()),
    ]
}

fn layer_ctx(module: &KernelModule, layer: &LayerSpec) -> CudaLayerCtx {
    let lctx = LayerCtx::new(module, layer);
    let d = module.shape.head_dim;
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
        prefill_threads: prefill_threads(module.storage, d),
        // Two resident blocks cap registers at 128 per thread: enough up to head_dim 128
        // (64 f32 accumulators of O per thread); wider heads get one block and more registers.
        prefill_min_blocks: if d <= 128 {
            CUDA_PREFILL_TC_MIN_BLOCKS
        } else {
            1
        },
        prefill_q_tile: prefill_q_tile(module.storage, d),
        prefill_k_tile: prefill_k_tile(module.storage, d),
        prefill_smem_bytes: prefill_shared_bytes(module.storage, d),
        decode_chunk: CUDA_DECODE_CHUNK,
        decode_threads: CUDA_DECODE_THREADS,
        decode_smem_bytes: decode_shared_bytes(d, lctx.group_size),
        layer: lctx,
    }
}

/// The constants a layer's kernels bake in, as recorded in the manifest.
fn layer_constants(ctx: &CudaLayerCtx, phase: Phase) -> serde_json::Value {
    let l = &ctx.layer;
    let (tiles, smem, grid) = match phase {
        Phase::Prefill => (
            json!({
                "q_tile": ctx.prefill_q_tile,
                "k_tile": ctx.prefill_k_tile,
                "tensor_cores": ctx.prefill_tc,
                "wgmma_on_sm90a": ctx.prefill_wgmma,
            }),
            ctx.prefill_smem_bytes,
            format!(
                "[q_heads, rows, ceil(max_row_len / {})]",
                ctx.prefill_q_tile
            ),
        ),
        _ => (
            json!({ "chunk": ctx.decode_chunk }),
            ctx.decode_smem_bytes,
            format!(
                "[ceil(max segment span / {}), kv_heads, rows]",
                ctx.decode_chunk
            ),
        ),
    };
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
        "tiles": tiles,
        "dynamic_shared_bytes": smem,
        "grid": grid,
    })
}

pub fn generate(module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    let env = super::environment(&[
        ("common.cu.j2", COMMON),
        ("layer.cu.j2", LAYER),
        ("prefill.cu.j2", PREFILL),
        ("decode_merge.cu.j2", MERGE),
    ])?;
    let d = module.shape.head_dim;
    let mut out = Vec::with_capacity(module.layers.len() + 1);
    for layer in &module.layers {
        let ctx = layer_ctx(module, layer);
        let source = render(&env, "layer.cu.j2", Some(layer.layer), &ctx)?;
        let kernels = vec![
            KernelInfo {
                name: ctx.prefill_name.clone(),
                target: Target::Cuda,
                phase: Phase::Prefill,
                layer: Some(layer.layer),
                entry_point: ctx.prefill_name.clone(),
                workgroup_size: [ctx.prefill_threads, 1, 1],
                bindings: prefill_bindings(module.storage),
                constants: layer_constants(&ctx, Phase::Prefill),
            },
            KernelInfo {
                name: ctx.decode_name.clone(),
                target: Target::Cuda,
                phase: Phase::Decode,
                layer: Some(layer.layer),
                entry_point: ctx.decode_name.clone(),
                workgroup_size: [CUDA_DECODE_THREADS, 1, 1],
                bindings: decode_bindings(module.storage),
                constants: layer_constants(&ctx, Phase::Decode),
            },
        ];
        out.push(Artifact {
            path: layer_path(layer.layer),
            source,
            kernels,
        });
    }
    let mctx = MergeCtx {
        dtype: module.storage.name(),
        head_dim: d,
        merge_name: merge_name(module.storage, d),
        merge_threads: merge_threads(d),
    };
    let source = render(&env, "decode_merge.cu.j2", None, &mctx)?;
    out.push(Artifact {
        path: MERGE_PATH.to_string(),
        source,
        kernels: vec![KernelInfo {
            name: mctx.merge_name.clone(),
            target: Target::Cuda,
            phase: Phase::DecodeMerge,
            layer: None,
            entry_point: mctx.merge_name.clone(),
            workgroup_size: [mctx.merge_threads, 1, 1],
            bindings: merge_bindings(module.storage),
            constants: json!({
                "storage": module.storage.name(),
                "head_dim": d,
                "grid": "[q_heads, rows]",
                "partial_layout": "acc[head_dim] unnormalised, m (log2 units), l; l = 0 marks an empty chunk",
            }),
        }],
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_geometry_fits_an_sm90_block() {
        for storage in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
            for d in [4, 32, 36, 64, 68, 96, 128, 256] {
                let threads = prefill_threads(storage, d);
                assert_eq!(threads % 32, 0);
                if prefill_tensor_cores(storage, d) {
                    // 16 query rows per warp; whole mma k-steps over head_dim.
                    assert_eq!(prefill_q_tile(storage, d), 16 * threads / 32, "d {d}");
                    assert_eq!(d % 16, 0);
                }
                if prefill_wgmma(storage, d) {
                    assert_eq!(threads % 128, 0, "whole warpgroups");
                    assert_eq!(d % 64, 0);
                }
                // 227 KiB: the most dynamic shared memory an sm_90 block can opt into.
                assert!(prefill_shared_bytes(storage, d) <= 227 * 1024, "d {d}");
            }
        }
        // Two blocks share an SM at head_dim 128 (228 KiB per SM, 1 KiB reserved per block).
        assert!(2 * (prefill_shared_bytes(StorageType::Bf16, 128) + 1024) <= 228 * 1024);
        assert!(!prefill_tensor_cores(StorageType::F32, 128));
        assert!(!prefill_wgmma(StorageType::F16, 32));
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
