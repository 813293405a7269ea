//! WGSL back end: per layer a fused prefill and a fused split-K decode kernel, plus one
//! decode merge kernel shared by all layers. Every module is validated with naga before
//! it leaves this function, so an invalid kernel is a compiler error, not a driver one.

use serde::Serialize;
use serde_json::json;

use super::abi::{Access, Arg, Elem, Grid, KernelAbi, Param, Tiles};
use super::ctx::LayerCtx;
use super::{Artifact, CodegenError, KernelInfo, Phase, Target};
use crate::lower::consts::{
    WGSL_DECODE_CHUNK, WGSL_DECODE_THREADS, WGSL_PREFILL_K_TILE, WGSL_PREFILL_Q_TILE,
    WGSL_WORKGROUP_STORAGE_BYTES,
};
use crate::lower::{KernelModule, StorageType};

const PREFILL: &str = "prefill.wgsl.j2";
const DECODE: &str = "decode.wgsl.j2";
const MERGE: &str = "decode_merge.wgsl.j2";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "span.wgsl.j2",
        include_str!("../../templates/wgsl/span.wgsl.j2"),
    ),
    (
        PREFILL,
        include_str!("../../templates/wgsl/prefill.wgsl.j2"),
    ),
    (DECODE, include_str!("../../templates/wgsl/decode.wgsl.j2")),
    (
        MERGE,
        include_str!("../../templates/wgsl/decode_merge.wgsl.j2"),
    ),
];

/// Keys per prefill tile for a head dim: the K and V tiles (f32) must fit the
/// workgroup memory budget, so large head dims get shorter tiles (a power of two).
pub fn prefill_k_tile(head_dim: u32) -> u32 {
    let fit = WGSL_WORKGROUP_STORAGE_BYTES / (2 * 4 * head_dim.max(1));
    let mut tile = WGSL_PREFILL_K_TILE;
    while tile > 1 && tile > fit {
        tile /= 2;
    }
    tile
}

/// Workgroup bytes of the decode kernel's score tile (scores of every query head of the
/// group for every slot, the live flags, and per-head max and sum).
fn decode_score_bytes(group_size: u32, chunk: u32) -> u32 {
    group_size * chunk * 4 + chunk * 4 + group_size * 8
}

/// Slots per decode chunk: `WGSL_DECODE_CHUNK`, halved while the score tile of a large
/// GQA group would not fit the workgroup memory budget.
pub fn decode_chunk(group_size: u32) -> u32 {
    let mut chunk = WGSL_DECODE_CHUNK;
    while chunk > 1 && decode_score_bytes(group_size, chunk) > WGSL_WORKGROUP_STORAGE_BYTES {
        chunk /= 2;
    }
    chunk
}

/// Whether the decode kernel stages the GQA group's queries in workgroup memory: it
/// does when they fit next to the score tile; otherwise they are re-read from Q.
pub fn decode_stages_q(group_size: u32, head_dim: u32) -> bool {
    decode_score_bytes(group_size, decode_chunk(group_size)) + group_size * head_dim * 4
        <= WGSL_WORKGROUP_STORAGE_BYTES
}

/// The decode work list binding, `u32[n_items, 8]` (`runtime::worklist::DecodeWork`,
/// built by the host with chunks of the kernel's `tiles.chunk` slots).
fn work_param(index: u32) -> Param {
    Param::buffer(index, Arg::Work, Access::Read, Elem::U32, &["n_items", "8"])
}

#[derive(Serialize)]
struct PrefillCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    q_tile: u32,
    k_tile: u32,
}

#[derive(Serialize)]
struct DecodeCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    chunk: u32,
    threads: u32,
    stage_q: bool,
}

#[derive(Serialize)]
struct MergeCtx<'a> {
    storage: &'a str,
    head_dim: u32,
    q_heads: u32,
    kv_heads: u32,
    threads: u32,
    entry_point: &'a str,
}

/// The constants every per-layer kernel bakes in, as recorded in the manifest.
fn layer_constants(ctx: &LayerCtx) -> serde_json::Value {
    json!({
        "head_dim": ctx.head_dim,
        "q_heads": ctx.q_heads,
        "kv_heads": ctx.kv_heads,
        "group_size": ctx.group_size,
        "scale": ctx.scale,
        "sink_tokens": ctx.sink_tokens,
        "min_span_tokens": ctx.min_span_tokens,
        "span_round_tokens": ctx.span_round_tokens,
        "span_mode": ctx.span_mode,
        "beta_den": ctx.beta_den,
        "heads": ctx.heads.iter().map(|h| json!({
            "q_head": h.q_head,
            "kv_head": h.kv_head,
            "alpha": h.alpha,
            "beta_num": h.beta_num,
        })).collect::<Vec<_>>(),
    })
}

fn merge_json(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// Parses and validates one generated module; a failure is a compiler bug and names
/// the layer and template.
pub fn validate(source: &str, template: &str, layer: Option<u32>) -> Result<(), CodegenError> {
    let invalid = |message: String| CodegenError::InvalidWgsl {
        template: template.to_string(),
        layer,
        message,
    };
    let module =
        naga::front::wgsl::parse_str(source).map_err(|e| invalid(e.emit_to_string(source)))?;
    // Only f16 beyond WebGPU core: the kernels must run wherever wgpu offers SHADER_F16.
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SHADER_FLOAT16,
    )
    .validate(&module)
    .map_err(|e| invalid(e.emit_to_string(source)))?;
    Ok(())
}

pub fn generate(module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    if module.storage == StorageType::Bf16 {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: "bf16 storage: WGSL has no bf16 type (use f16 or f32, or --target cuda)"
                .into(),
        });
    }
    let env = super::environment(TEMPLATES)?;
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    let hq = module.shape.q_heads;
    let hkv = module.shape.kv_heads;
    let group = module.shape.group_size();
    let mut artifacts = Vec::with_capacity(2 * module.layers.len() + 1);

    let e = Elem::of(module.storage);
    let qkv = |first: u32, q_rows: &str, k: Arg, v: Arg, kv_shape: [&str; 3]| {
        vec![
            Param::buffer(
                first,
                Arg::Q,
                Access::Read,
                e,
                &[q_rows, "q_heads", "head_dim"],
            ),
            Param::buffer(first + 1, k, Access::Read, e, &kv_shape),
            Param::buffer(first + 2, v, Access::Read, e, &kv_shape),
        ]
    };

    for layer in &module.layers {
        let ctx = LayerCtx::new(module, layer);
        let label = &ctx.layer_label;
        let base_constants = layer_constants(&ctx);

        let entry = format!("moa_prefill_{dtype}_hd{d}_{label}");
        let k_tile = prefill_k_tile(d);
        let source = super::render(
            &env,
            PREFILL,
            Some(layer.layer),
            &PrefillCtx {
                layer: &ctx,
                entry_point: &entry,
                q_tile: WGSL_PREFILL_Q_TILE,
                k_tile,
            },
        )?;
        validate(&source, PREFILL, Some(layer.layer))?;
        let mut params = vec![
            Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::Pad, Arg::Pad]),
            Param::buffer(1, Arg::RowStart, Access::Read, Elem::U32, &["rows + 1"]),
        ];
        params.extend(qkv(
            2,
            "total_tokens",
            Arg::K,
            Arg::V,
            ["total_tokens", "kv_heads", "head_dim"],
        ));
        params.push(Param::buffer(
            5,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["total_tokens", "q_heads", "head_dim"],
        ));
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_prefill.wgsl"),
            source,
            kernels: vec![KernelInfo {
                name: entry.clone(),
                target: Target::Wgsl,
                phase: Phase::Prefill,
                layer: Some(layer.layer),
                entry_point: entry,
                abi: KernelAbi {
                    params,
                    block: [WGSL_PREFILL_Q_TILE, 1, 1],
                    grid: Grid::QueryTiles {
                        q_tile: WGSL_PREFILL_Q_TILE,
                    },
                    tiles: Tiles {
                        q_tile: Some(WGSL_PREFILL_Q_TILE),
                        k_tile: Some(k_tile),
                        ..Tiles::default()
                    },
                    dynamic_shared_bytes: 0,
                },
                constants: base_constants.clone(),
            }],
        });

        let entry = format!("moa_decode_{dtype}_hd{d}_{label}");
        let stage_q = decode_stages_q(group, d);
        let chunk = decode_chunk(group);
        let source = super::render(
            &env,
            DECODE,
            Some(layer.layer),
            &DecodeCtx {
                layer: &ctx,
                entry_point: &entry,
                chunk,
                threads: WGSL_DECODE_THREADS,
                stage_q,
            },
        )?;
        validate(&source, DECODE, Some(layer.layer))?;
        let mut params = vec![
            Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::NItems, Arg::Pad]),
            Param::buffer(1, Arg::RowPos, Access::Read, Elem::U32, &["rows"]),
        ];
        params.extend(qkv(
            2,
            "rows",
            Arg::KCache,
            Arg::VCache,
            ["rows", "row_slots", "head_dim"],
        ));
        params.push(work_param(5));
        params.push(Param::buffer(
            6,
            Arg::Partials,
            Access::ReadWrite,
            Elem::F32,
            &["n_items", "group_size", "head_dim + 2"],
        ));
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_decode.wgsl"),
            source,
            kernels: vec![KernelInfo {
                name: entry.clone(),
                target: Target::Wgsl,
                phase: Phase::Decode,
                layer: Some(layer.layer),
                entry_point: entry,
                abi: KernelAbi {
                    params,
                    block: [WGSL_DECODE_THREADS, 1, 1],
                    grid: Grid::WorkItems,
                    tiles: Tiles {
                        chunk: Some(chunk),
                        ..Tiles::default()
                    },
                    dynamic_shared_bytes: 0,
                },
                constants: merge_json(base_constants, json!({ "stage_q": stage_q })),
            }],
        });
    }

    let entry = format!("moa_decode_merge_{dtype}_hd{d}");
    let source = super::render(
        &env,
        MERGE,
        None,
        &MergeCtx {
            storage: dtype,
            head_dim: d,
            q_heads: hq,
            kv_heads: hkv,
            threads: WGSL_DECODE_THREADS,
            entry_point: &entry,
        },
    )?;
    validate(&source, MERGE, None)?;
    artifacts.push(Artifact {
        path: "wgsl/decode_merge.wgsl".into(),
        source,
        kernels: vec![KernelInfo {
            name: entry.clone(),
            target: Target::Wgsl,
            phase: Phase::DecodeMerge,
            layer: None,
            entry_point: entry,
            abi: KernelAbi {
                params: vec![
                    Param::uniform(0, &[Arg::Rows, Arg::NItems, Arg::Pad, Arg::Pad]),
                    work_param(1),
                    Param::buffer(
                        2,
                        Arg::Partials,
                        Access::Read,
                        Elem::F32,
                        &["n_items", "group_size", "head_dim + 2"],
                    ),
                    Param::buffer(
                        3,
                        Arg::Out,
                        Access::ReadWrite,
                        e,
                        &["rows", "q_heads", "head_dim"],
                    ),
                ],
                block: [WGSL_DECODE_THREADS, 1, 1],
                grid: Grid::QueryHeads,
                tiles: Tiles::default(),
                dynamic_shared_bytes: 0,
            },
            constants: json!({
                "head_dim": d,
                "q_heads": hq,
                "kv_heads": hkv,
            }),
        }],
    });
    Ok(artifacts)
}
