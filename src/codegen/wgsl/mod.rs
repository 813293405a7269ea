//! WGSL back end: per layer a fused prefill and a fused split-K decode kernel, plus one
//! decode merge kernel shared by all layers. Every module is validated with naga before
//! it leaves this function, so an invalid kernel is a compiler error, not a driver one.

#![warn(missing_docs)]

use serde::Serialize;
use serde_json::json;

use super::abi::{Access, Arg, Elem, Grid, KernelAbi, Param, Tiles};
use super::ctx::LayerCtx;
use super::{Artifact, CodegenError, KernelInfo, Phase, Target};
use crate::lower::consts::{
    WGSL_DECODE_THREADS, WGSL_PREFILL_Q_TILE, WGSL_WORKGROUP_STORAGE_BYTES,
};
use crate::lower::{KernelModule, StorageType};

mod decode;
mod prefill;

pub use decode::*;
pub use prefill::*;

const PREFILL: &str = "prefill.wgsl.j2";
const PREFILL_COOP: &str = "prefill_coop.wgsl.j2";
const PREFILL_COOP_GROUP: &str = "prefill_coop_group.wgsl.j2";
const DECODE: &str = "decode.wgsl.j2";
const DECODE_COOP: &str = "decode_coop.wgsl.j2";
const DECODE_SG: &str = "decode_sg.wgsl.j2";
const DECODE_SG_PIPE: &str = "decode_sg_pipe.wgsl.j2";
const DECODE_SG_FLAT: &str = "decode_sg_flat.wgsl.j2";
const MERGE: &str = "decode_merge.wgsl.j2";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "span.wgsl.j2",
        include_str!("../../../templates/wgsl/span.wgsl.j2"),
    ),
    (
        "decode_fused_merge.wgsl.j2",
        include_str!("../../../templates/wgsl/decode_fused_merge.wgsl.j2"),
    ),
    (
        PREFILL,
        include_str!("../../../templates/wgsl/prefill.wgsl.j2"),
    ),
    (
        PREFILL_COOP,
        include_str!("../../../templates/wgsl/prefill_coop.wgsl.j2"),
    ),
    (
        PREFILL_COOP_GROUP,
        include_str!("../../../templates/wgsl/prefill_coop_group.wgsl.j2"),
    ),
    (
        DECODE,
        include_str!("../../../templates/wgsl/decode.wgsl.j2"),
    ),
    (
        DECODE_COOP,
        include_str!("../../../templates/wgsl/decode_coop.wgsl.j2"),
    ),
    (
        MERGE,
        include_str!("../../../templates/wgsl/decode_merge.wgsl.j2"),
    ),
    (
        DECODE_SG,
        include_str!("../../../templates/wgsl/decode_sg.wgsl.j2"),
    ),
    (
        DECODE_SG_PIPE,
        include_str!("../../../templates/wgsl/decode_sg_pipe.wgsl.j2"),
    ),
    (
        DECODE_SG_FLAT,
        include_str!("../../../templates/wgsl/decode_sg_flat.wgsl.j2"),
    ),
];

/// The decode work list binding, `u32[n_items, 8]` (`runtime::worklist::DecodeWork`,
/// built by the host with chunks of a multiple of the kernel's `tiles.k_tile` slots).
fn work_param(index: u32) -> Param {
    Param::buffer(index, Arg::Work, Access::Read, Elem::U32, &["n_items", "8"])
}

/// The bindings of the scalar and flat decodes: [`decode_params`], the fused merge's where
/// it merges itself, and last the per-layer rules table where its rules are read from one
/// ([`WgslTuning::rules_table`]: `u32[q_heads, 2]`, [`Arg::Rules`]).
fn decode_bindings(e: Elem, fused: bool, rules_table: bool) -> Vec<Param> {
    let mut params = decode_params(e);
    if fused {
        params.extend(fused_merge_params(e));
    }
    if rules_table {
        let index = params.len() as u32;
        params.push(Param::buffer(
            index,
            Arg::Rules,
            Access::Read,
            Elem::U32,
            &["q_heads", "2"],
        ));
    }
    params
}

/// Where a module's scalar prefill and scalar / flat decodes get their rules from
/// ([`WgslTuning::rules_table`] and the module), decided once for the whole module before
/// its layers are generated in parallel runs.
#[derive(Clone, Copy, Debug)]
struct RulesForm {
    /// Every layer's text names no layer, so layers of one shape share it (and the
    /// executor's pipeline): [`WgslTuning::rules_table`].
    shared: bool,
    /// The rules are read from the layer's [`Arg::Rules`] table: `shared` on a module whose
    /// layers' rules differ. A module whose layers all have the same rules (dense, uniform)
    /// keeps them baked in its one text: the table's loads cost ~0.3 µs a layer there
    /// (DESIGN §7.7 "s44-attn").
    table: bool,
}

impl RulesForm {
    fn of(module: &KernelModule, tuning: &WgslTuning) -> RulesForm {
        RulesForm {
            shared: tuning.rules_table,
            table: tuning.rules_table && !same_rules_on_every_layer(module),
        }
    }

    /// A kernel's entry point: `base` alone where the text is shared, else with the layer.
    fn entry(self, base: String, label: &str) -> String {
        if self.shared {
            base
        } else {
            format!("{base}_{label}")
        }
    }
}

/// A kernel whose source is shared by the layers of its shape ([`RulesForm::shared`]): its
/// entry point names no layer, so its name gets the layer's label (`…_l03`, what logs and
/// errors show), and its constants record where its rules come from.
fn name_shared_kernel(kernel: &mut KernelInfo, label: &str, rules: RulesForm) {
    kernel.name = format!("{}_{label}", kernel.entry_point);
    kernel.constants["rules_table"] = rules.table.into();
}

/// Bindings 0–6 of every decode form (scalar, subgroup, cooperative-matrix): sizes, row
/// positions, Q, the K and V caches, the work list and the partials. One list, so the
/// forms the executor swaps for one another cannot drift apart.
fn decode_params(e: Elem) -> Vec<Param> {
    let kv_shape = ["rows", "row_slots", "head_dim"];
    vec![
        Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::NItems, Arg::Pad]),
        Param::buffer(1, Arg::RowPos, Access::Read, Elem::U32, &["rows"]),
        Param::buffer(2, Arg::Q, Access::Read, e, &["rows", "q_heads", "head_dim"]),
        Param::buffer(3, Arg::KCache, Access::Read, e, &kv_shape),
        Param::buffer(4, Arg::VCache, Access::Read, e, &kv_shape),
        work_param(5),
        Param::buffer(
            6,
            Arg::Partials,
            Access::ReadWrite,
            Elem::F32,
            &["n_items", "group_size", "head_dim + 2"],
        ),
    ]
}

/// The bindings a decode that merges itself adds ([`WgslTuning::decode_fused_merge`]):
/// the per-segment arrival counters (`rows × kv_heads` u32) and O.
fn fused_merge_params(e: Elem) -> [Param; 2] {
    [
        Param::buffer(
            7,
            Arg::SegDone,
            Access::ReadWrite,
            Elem::U32,
            &["rows * kv_heads"],
        ),
        Param::buffer(
            8,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["rows", "q_heads", "head_dim"],
        ),
    ]
}

#[derive(Serialize)]
struct PrefillCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    q_tile: u32,
    k_tile: u32,
    /// [`RulesForm::shared`]: the source names no layer.
    shared_text: bool,
    /// [`RulesForm::table`]: rules from the [`Arg::Rules`] binding (6).
    rules_table: bool,
    /// [`WgslTuning::prefill_key_pairs`] (the template also needs an even `k_tile`).
    key_pairs: bool,
}

#[derive(Serialize)]
struct PrefillCoopCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// f32 elements of the scores / P·V buffer: 64 queries × max(64, head_dim).
    s_len: u32,
}

#[derive(Serialize)]
struct PrefillCoopGroupCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// 16-query blocks per workgroup (each for every head of the group).
    q_blocks: u32,
    /// Queries per workgroup: 16 · `q_blocks`.
    q_tile: u32,
    /// Subgroups per workgroup: group size · `q_blocks`.
    subgroups: u32,
    /// The variant: `form`, `diag`, `stage_k`, `v_early`, `v_in_k`, `mask_select` and
    /// `score_regs`, each under its own name.
    #[serde(flatten)]
    variant: PrefillGroupForm,
}

#[derive(Serialize)]
struct DecodeCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    tile: u32,
    threads: u32,
    kv_vec: u32,
    kv_type: &'a str,
    slot_groups: u32,
    p_len: u32,
    stage_q: bool,
    batch: u32,
    /// [`WgslTuning::decode_quad_shuffle`], where the form is `Quad`.
    quad_shuffle: bool,
    /// [`WgslTuning::decode_f16_qk`], where it applies (`Quad`, f16 storage).
    f16_qk: bool,
    /// [`WgslTuning::decode_f16_pv`], where it applies (`Quad`, f16 storage).
    f16_pv: bool,
    /// [`WgslTuning::decode_qk_sums`] (applies with the paired end-of-chunk sums).
    qk_sums: bool,
    /// Whether the group's heads are unrolled (`head_ids` = "0u", "1u", ...) or looped
    /// over (`head_ids` = ["g"]).
    unroll_heads: bool,
    head_ids: Vec<String>,
    /// The lazy maximum ([`DecodeForm::Lazy`]).
    lazy: bool,
    /// Q.K by four invocations per slot ([`DecodeForm::Quad`]).
    quad: bool,
    /// [`WgslTuning::decode_lazy_margin`].
    lazy_margin: u32,
    /// [`WgslTuning::decode_early_v`].
    early_v: bool,
    /// [`WgslTuning::decode_paired_epilogue`], where it applies.
    paired_epilogue: bool,
    /// Heads whose slot-group accumulators fit the Q·K partials' buffer at once
    /// (`group × tile / (threads × kv_vec / 4)`), for the paired end-of-chunk sum.
    epi_heads: u32,
    /// [`WgslTuning::decode_fused_merge`]: the segment's last item merges into O.
    fused: bool,
    /// Chunks whose partials a fused merger loads at once ([`DECODE_MERGE_BATCH`]).
    merge_batch: u32,
    /// [`WgslTuning::decode_v_first`], where it applies (`Quad`, one load batch each).
    v_first: bool,
    /// [`RulesForm::shared`]: the source names no layer.
    shared_text: bool,
    /// [`RulesForm::table`]: rules from the [`Arg::Rules`] binding.
    rules_table: bool,
}

#[derive(Serialize)]
struct DecodeSgCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// Invocations per subgroup (the adapter's fixed size).
    sg: u32,
    /// Subgroups per workgroup ([`DECODE_SG_SUBGROUPS`]; the flat form's
    /// [`WgslTuning::decode_sg_flat_subgroups`]).
    subgroups: u32,
    /// The lane masks that sum a value column's slot lanes (head_dim / 8, doubling, < sg).
    xor_masks: Vec<u32>,
    /// [`WgslTuning::decode_sg_diag`].
    diag: bool,
    /// [`WgslTuning::decode_sg_pipe`] (the pipelined template only).
    items: u32,
    /// [`SgFlat::Early`] (the flat template only): each subgroup's first block issued
    /// before the row position.
    early: bool,
    /// log2(head_dim / 8): the flat template's butterfly steps.
    log_dv8: u32,
    /// The flat template's loads a lane issues per step (half of head_dim / 8, at least
    /// 1): a subgroup step covers `nl × sg / (head_dim / 8)` slots.
    nl: u32,
    /// log2(`nl`): the flat template's transposing butterfly steps.
    log_nl: u32,
    /// The lane masks that finish a score after the butterfly where `nl` < head_dim / 8
    /// (`nl`, doubling, < head_dim / 8).
    sum_masks: Vec<u32>,
    /// [`WgslTuning::decode_sg_piece`].
    piece: u8,
    /// [`WgslTuning::decode_sg_no_combine`].
    no_combine: bool,
    /// [`WgslTuning::decode_sg_flat_qk`]'s name (`f32`, `h16`, `reload`, `h16-reload`).
    qk: &'static str,
    /// [`WgslTuning::decode_sg_flat_words`] (the flat template only; it applies them to
    /// f16 storage with f32 products).
    words: bool,
    /// [`WgslTuning::decode_fused_merge`] (the flat template only): the segment's last
    /// item merges into O (`decode_fused_merge.wgsl.j2`).
    fused: bool,
    /// Chunks whose partials a fused merger loads at once ([`DECODE_MERGE_BATCH`]).
    merge_batch: u32,
    /// [`WgslTuning::decode_sg_flat_cmax`] (the flat template only).
    cmax: bool,
    /// [`WgslTuning::decode_sg_flat_qpack`] where it applies (the flat template with
    /// [`Self::words`] and [`FlatQk::F32`]).
    qpack: bool,
    /// The lane masks of a slot class's step maxima with [`Self::cmax`]: the column bits
    /// below `nl` (1, doubling, < `nl`), over which a class's lanes hold distinct slots.
    cmax_masks: Vec<u32>,
    /// [`RulesForm::shared`] (the flat template only): the source names no layer.
    shared_text: bool,
    /// [`RulesForm::table`] (the flat template only): rules from the [`Arg::Rules`]
    /// binding.
    rules_table: bool,
}

#[derive(Serialize)]
struct DecodeCoopCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    tile: u32,
    subgroups: u32,
    f_len: u32,
    prefetch: bool,
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

/// `constants` with the f16-product and Q·K-sum choices of a decode added where one is
/// on (so manifests without them do not change).
fn with_f16_products(
    constants: serde_json::Value,
    f16_qk: bool,
    f16_pv: bool,
    lazy_margin: u32,
    qk_sums: bool,
) -> serde_json::Value {
    let c = if f16_qk || f16_pv {
        merge_json(
            constants,
            json!({
                "decode_f16_qk": f16_qk,
                "decode_f16_pv": f16_pv,
                "decode_lazy_margin": lazy_margin,
            }),
        )
    } else {
        constants
    };
    if qk_sums {
        merge_json(c, json!({ "decode_qk_sums": true }))
    } else {
        c
    }
}

/// `constants` with the fused merge and early-V-at-tile-start choices added where on (so
/// manifests without them do not change).
fn with_decode_flags(
    constants: serde_json::Value,
    fused: bool,
    v_first: bool,
) -> serde_json::Value {
    let mut extra = serde_json::Map::new();
    if fused {
        extra.insert("decode_fused_merge".into(), true.into());
    }
    if v_first {
        extra.insert("decode_v_first".into(), true.into());
    }
    merge_json(constants, serde_json::Value::Object(extra))
}

fn merge_json(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// Parses and validates one generated module; a failure is a compiler bug and names
/// the layer and template. Returns the bytes of workgroup memory the module declares (every
/// `var<workgroup>`, sized by naga's layouter), which the generator records in
/// [`Artifact::workgroup_bytes`] so that the limits check does not parse the file again.
pub fn validate(source: &str, template: &str, layer: Option<u32>) -> Result<u64, CodegenError> {
    // Only f16 beyond WebGPU core: the kernels must run wherever wgpu offers SHADER_F16.
    validate_with(
        source,
        template,
        layer,
        naga::valid::Capabilities::SHADER_FLOAT16,
    )
}

/// [`validate`] with the capabilities the kernel may use (the decode on cooperative
/// matrices adds `COOPERATIVE_MATRIX`).
pub fn validate_with(
    source: &str,
    template: &str,
    layer: Option<u32>,
    capabilities: naga::valid::Capabilities,
) -> Result<u64, CodegenError> {
    let invalid = |message: String| CodegenError::InvalidWgsl {
        template: template.to_string(),
        layer,
        message,
    };
    let module =
        naga::front::wgsl::parse_str(source).map_err(|e| invalid(e.emit_to_string(source)))?;
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities);
    if capabilities.contains(naga::valid::Capabilities::SUBGROUP) {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    validator
        .validate(&module)
        .map_err(|e| invalid(e.emit_to_string(source)))?;
    super::limits::workgroup_bytes(&module).map_err(invalid)
}

/// Every WGSL file of `module` in the default [`WgslTuning`]: per layer a prefill and a
/// decode file, then a decode on cooperative matrices per layer where the storage, GQA
/// group and head_dim fit it, then one merge file; each validated with naga. Not checked against resource limits here
/// ([`super::generate`] does). Errors: [`CodegenError::Unsupported`] for bf16 storage
/// or a head_dim / GQA group the decode cannot hold in workgroup memory,
/// [`CodegenError::Render`] and [`CodegenError::InvalidWgsl`] (compiler bugs).
pub fn generate(module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    generate_with(module, WgslTuning::default())
}

/// [`generate`] with the speed choices of `tuning`.
pub fn generate_with(
    module: &KernelModule,
    tuning: WgslTuning,
) -> Result<Vec<Artifact>, CodegenError> {
    generate_with_progress(module, tuning, &mut |_, _| {})
}

/// Whether every layer of `module` gives each query head the same rule as every other
/// layer (dense and uniform plans): then [`WgslTuning::rules_table`] has nothing
/// to share and the rules stay baked.
fn same_rules_on_every_layer(module: &KernelModule) -> bool {
    let rules = |l: &crate::lower::LayerSpec| l.q_heads.iter().map(|h| h.rule).collect::<Vec<_>>();
    module
        .layers
        .windows(2)
        .all(|w| rules(&w[0]) == rules(&w[1]))
}

/// [`generate_with`], calling `progress(files_done, files)` as the source files are
/// generated (each rendered and validated with naga, ≈ 0.2 s per layer for 64 query heads
/// of head_dim 128 on one CPU core), `files_done` rising to `files` (the last call).
///
/// The layers are generated on every core: the module is cut into runs of consecutive
/// layers, each run is generated alone ([`generate_part`]: its layers' prefill and decode
/// files, its cooperative decode files, then the merge file, which depends on the shape
/// only), and the runs' files are put back in [`generate_part`]'s order for the whole
/// module: every layer's prefill and decode files, every cooperative decode file, one
/// merge file. A layer's files depend on nothing but the shape, the span parameters and
/// that layer, so the output is byte for byte the one-thread output
/// (`tests/snapshots.rs`). On an error the first failing run's first error is returned.
pub(crate) fn generate_with_progress(
    module: &KernelModule,
    tuning: WgslTuning,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Artifact>, CodegenError> {
    // Decided for the whole module: the runs below see only their own layers.
    let rules = RulesForm::of(module, &tuning);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 || module.layers.len() < 2 {
        return generate_part(module, tuning, rules, progress);
    }
    // Four runs a core, so a core whose runs hold larger layers does not form a tail.
    let per = module.layers.len().div_ceil(threads * 4).max(1);
    let parts: Vec<KernelModule> = module
        .layers
        .chunks(per)
        .map(|layers| KernelModule {
            shape: module.shape.clone(),
            span: module.span,
            storage: module.storage,
            layers: layers.to_vec(),
        })
        .collect();
    let coop = decode_coop_fits(
        module.storage,
        module.shape.group_size(),
        module.shape.head_dim,
    );
    let per_layer = 2 + usize::from(coop);
    let files = module.layers.len() * per_layer + 1;
    // Workers send (run, files of the run done) on a channel; this thread adds them up and
    // reports the sum, which only rises.
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let runs = parts.len();
    let results: Vec<Result<Vec<Artifact>, CodegenError>> = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            use rayon::prelude::*;
            parts
                .par_iter()
                .enumerate()
                .map_with(tx, |tx, (run, part)| {
                    // The run's own merge file is dropped below: not counted.
                    let own = part.layers.len() * per_layer;
                    generate_part(part, tuning, rules, &mut |done, _| {
                        let _ = tx.send((run, done.min(own)));
                    })
                })
                .collect()
        });
        let mut done = vec![0; runs];
        progress(0, files);
        for (run, d) in rx.iter() {
            done[run] = d;
            progress(done.iter().sum::<usize>().min(files - 1), files);
        }
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let mut pairs = Vec::with_capacity(files);
    let mut coops = Vec::new();
    let mut merge = None;
    for r in results {
        let mut part = r?;
        merge = part.pop();
        let pd = part.len() - part.len() / per_layer * usize::from(coop);
        coops.extend(part.drain(pd..));
        pairs.append(&mut part);
    }
    pairs.append(&mut coops);
    pairs.extend(merge);
    debug_assert_eq!(
        pairs.len(),
        files,
        "the WGSL file count of the whole module"
    );
    progress(pairs.len(), pairs.len());
    Ok(pairs)
}

/// The files of `module`'s layers, one thread: each layer's prefill and decode files,
/// then each layer's cooperative decode file where it fits, then the merge file; calling
/// `progress(files_done, files)` before each layer's prefill and decode files, after each
/// cooperative decode file and after the merge file (`files_done == files`).
fn generate_part(
    module: &KernelModule,
    tuning: WgslTuning,
    rules: RulesForm,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Artifact>, CodegenError> {
    if module.storage == StorageType::Bf16 {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: "bf16 storage: WGSL has no bf16 type (use f16 or f32, or --target cuda)"
                .into(),
        });
    }
    if let Some(q) = tuning.prefill_q_tile.filter(|q| !(1..=256).contains(q)) {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "prefill_q_tile {q}: allowed 1..=256 (queries a workgroup, within WebGPU's default 256 invocations)"
            ),
        });
    }
    if tuning.decode_sg_no_combine && tuning.decode_fused_merge.unwrap_or(false) {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: "decode_sg_no_combine (a timing diagnostic) with the fused merge: the \
                      merger would read partials no single store wrote"
                .into(),
        });
    }
    let env = super::environment(TEMPLATES)?;
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    let hq = module.shape.q_heads;
    let hkv = module.shape.kv_heads;
    let group = module.shape.group_size();
    let coop = decode_coop_fits(module.storage, group, d);
    // Per layer a prefill and a decode file (and a cooperative decode where it fits), then
    // the merge shared by all layers.
    let files = module.layers.len() * (2 + usize::from(coop)) + 1;
    let mut artifacts = Vec::with_capacity(files);

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
        // Here, not at the loop's end: the subgroup decode's branch `continue`s.
        progress(artifacts.len(), files);
        let ctx = LayerCtx::new(module, layer);
        let label = &ctx.layer_label;
        let base_constants = layer_constants(&ctx);

        // With the rules in a table, or one rule set on every layer, the scalar prefill's
        // source names no layer either ([`RulesForm`]).
        let entry = rules.entry(format!("moa_prefill_{dtype}_hd{d}"), label);
        let k_tile = prefill_k_tile(d);
        let q_tile = tuning.prefill_q_tile.unwrap_or(WGSL_PREFILL_Q_TILE);
        // The template takes pairs only where a tile's keys pair up (`prefill.wgsl.j2`).
        let key_pairs = tuning.prefill_key_pairs.unwrap_or(false) && k_tile.is_multiple_of(2);
        let source = super::render(
            &env,
            PREFILL,
            Some(layer.layer),
            &PrefillCtx {
                layer: &ctx,
                entry_point: &entry,
                q_tile,
                k_tile,
                shared_text: rules.shared,
                rules_table: rules.table,
                key_pairs,
            },
        )?;
        let workgroup_bytes = validate(&source, PREFILL, Some(layer.layer))?;
        let mut params = vec![
            Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::QStart, Arg::Pad]),
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
        if rules.table {
            params.push(Param::buffer(
                6,
                Arg::Rules,
                Access::Read,
                Elem::U32,
                &["q_heads", "2"],
            ));
        }
        let mut kernel = KernelInfo::new(
            Target::Wgsl,
            Phase::Prefill,
            Some(layer.layer),
            entry,
            KernelAbi::new(
                params,
                [q_tile, 1, 1],
                Grid::QueryTiles { q_tile },
                Tiles {
                    q_tile: Some(q_tile),
                    k_tile: Some(k_tile),
                    keys_per_step: key_pairs.then_some(2),
                    ..Tiles::default()
                },
            ),
            base_constants.clone(),
        );
        if rules.shared {
            name_shared_kernel(&mut kernel, label, rules);
        }
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_prefill.wgsl"),
            source,
            workgroup_bytes: Some(workgroup_bytes),
            kernels: vec![kernel],
        });

        // With the rules in a table, or one rule set on every layer ([`RulesForm`]), the
        // scalar decode's source names no layer either: layers of one decode shape share
        // its text and the executor's pipeline (the kernel's name keeps the layer).
        let entry = rules.entry(format!("moa_decode_{dtype}_hd{d}"), label);
        let threads = tuning.decode_threads.clamp(32, 256);
        let budget = if threads > WGSL_DECODE_THREADS {
            DECODE_WIDE_WORKGROUP_BYTES
        } else {
            WGSL_WORKGROUP_STORAGE_BYTES
        };
        let shape = decode_shape_sized(
            module.storage,
            group,
            d,
            !tuning.decode_narrow_loads,
            threads,
            budget,
        )?;
        // Off unless asked for: it lost in the engine's step (`decode_fused_merge`).
        let fused = tuning.decode_fused_merge.unwrap_or(false);
        // The decode on subgroups where asked and the layer fits it (with the fused merge
        // only in the flat form, which has one; the other subgroup forms leave it to the
        // scalar form): same work list (the scalar tile), partials and merge.
        let sg_fuses = tuning.decode_sg_flat != SgFlat::Off && tuning.decode_sg_pipe == 0;
        if let Some(sg) = tuning
            .decode_subgroup
            .map(u32::from)
            .filter(|&sg| (!fused || sg_fuses) && decode_sg_fits(sg, group, d))
        {
            artifacts.push(decode_sg_artifact(
                module,
                &ctx,
                &env,
                sg,
                &tuning,
                rules,
                shape.tile,
                base_constants,
            )?);
            continue;
        }
        // The fused merge's one workgroup word (which item merges) comes off the budget.
        let budget = budget
            - if fused {
                DECODE_FUSED_WORKGROUP_BYTES
            } else {
                0
            };
        let form = decode_form_within(tuning.decode_form, &shape, group, d, budget);
        let batch = tuning.decode_load_batch.clamp(1, 64);
        // Early V loads need a lazy form and all of a tile's V loads in one batch.
        let early_v = form != DecodeForm::Eager
            && tuning.decode_early_v.unwrap_or(group > 1)
            && shape.tile.div_ceil(shape.slot_groups) <= batch;
        let quad = form == DecodeForm::Quad;
        // Heads whose accumulators (threads × kv_vec / 4 vec4 each) fit the partials'
        // buffer (group × tile vec4) at once.
        let epi_heads = if quad {
            group * shape.tile / (shape.threads * shape.kv_vec / 4)
        } else {
            0
        };
        let paired_epilogue = quad && tuning.decode_paired_epilogue && epi_heads >= 1;
        let half = quad && module.storage == StorageType::F16;
        let (f16_qk, f16_pv) = (
            half && tuning.decode_f16_qk,
            half && tuning.decode_f16_pv.unwrap_or(group > 1),
        );
        // The Q·K invocations' sums of p where the paired end-of-chunk sums run and their
        // per-8-slot sums fit the budget (with f32 queries they may not).
        let qk_sums = paired_epilogue
            && tuning.decode_qk_sums
            && decode_workgroup_bytes_with(&shape, form, group, d, f16_qk, true) <= budget;
        let lazy_margin = if f16_pv {
            tuning.decode_lazy_margin.min(DECODE_F16_PV_MARGIN)
        } else {
            tuning.decode_lazy_margin.min(64)
        };
        // V loads at the tile's start need its K loads and its V loads each in one batch.
        let v_first = quad
            && tuning.decode_v_first
            && shape.tile.div_ceil(shape.slot_groups) <= batch
            && (shape.tile / (shape.threads / 4)) * (d / shape.kv_vec / 4) <= batch;
        let kv_type = match (module.storage, shape.kv_vec) {
            (StorageType::F16, 8) => "mat2x4<f16>",
            (StorageType::F16, _) => "vec4<f16>",
            _ => "vec4<f32>",
        };
        let source = super::render(
            &env,
            DECODE,
            Some(layer.layer),
            &DecodeCtx {
                layer: &ctx,
                entry_point: &entry,
                tile: shape.tile,
                threads: shape.threads,
                kv_vec: shape.kv_vec,
                kv_type,
                slot_groups: shape.slot_groups,
                p_len: shape.p_len,
                stage_q: shape.stage_q,
                batch,
                quad_shuffle: quad && tuning.decode_quad_shuffle,
                f16_qk,
                f16_pv,
                qk_sums,
                unroll_heads: group <= DECODE_UNROLLED_GROUP,
                head_ids: if group <= DECODE_UNROLLED_GROUP {
                    (0..group).map(|g| format!("{g}u")).collect()
                } else {
                    vec!["g".into()]
                },
                lazy: form != DecodeForm::Eager,
                quad: form == DecodeForm::Quad,
                lazy_margin,
                early_v,
                paired_epilogue,
                epi_heads: epi_heads.max(1),
                fused,
                merge_batch: DECODE_MERGE_BATCH,
                v_first,
                shared_text: rules.shared,
                rules_table: rules.table,
            },
        )?;
        let workgroup_bytes = if quad && tuning.decode_quad_shuffle {
            validate_with(
                &source,
                DECODE,
                Some(layer.layer),
                naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::SUBGROUP,
            )?
        } else {
            validate(&source, DECODE, Some(layer.layer))?
        };
        let params = decode_bindings(e, fused, rules.table);
        let mut kernel = KernelInfo::new(
            Target::Wgsl,
            Phase::Decode,
            Some(layer.layer),
            entry,
            KernelAbi::new(
                params,
                [shape.threads, 1, 1],
                Grid::WorkItems,
                Tiles {
                    k_tile: Some(shape.tile),
                    ..Tiles::default()
                },
            ),
            with_decode_flags(
                with_f16_products(
                    merge_json(
                        base_constants,
                        if quad && tuning.decode_quad_shuffle {
                            // Recorded only where on, so default manifests do not change.
                            json!({
                                "stage_q": shape.stage_q,
                                "kv_vec": shape.kv_vec,
                                "decode_form": form.name(),
                                "decode_early_v": early_v,
                                "decode_paired_epilogue": paired_epilogue,
                                "decode_quad_shuffle": true,
                            })
                        } else if form == DecodeForm::Eager {
                            json!({ "stage_q": shape.stage_q, "kv_vec": shape.kv_vec })
                        } else {
                            json!({
                                "stage_q": shape.stage_q,
                                "kv_vec": shape.kv_vec,
                                "decode_form": form.name(),
                                "decode_early_v": early_v,
                                "decode_paired_epilogue": paired_epilogue,
                            })
                        },
                    ),
                    f16_qk,
                    f16_pv,
                    lazy_margin,
                    qk_sums,
                ),
                fused,
                v_first,
            ),
        );
        if rules.shared {
            name_shared_kernel(&mut kernel, label, rules);
        }
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_decode.wgsl"),
            source,
            workgroup_bytes: Some(workgroup_bytes),
            kernels: vec![kernel],
        });
    }

    if coop {
        for layer in &module.layers {
            artifacts.push(decode_coop_artifact(module, layer, &env, tuning)?);
            progress(artifacts.len(), files);
        }
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
    let workgroup_bytes = validate(&source, MERGE, None)?;
    artifacts.push(Artifact {
        path: "wgsl/decode_merge.wgsl".into(),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![KernelInfo::new(
            Target::Wgsl,
            Phase::DecodeMerge,
            None,
            entry,
            KernelAbi::new(
                vec![
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
                [WGSL_DECODE_THREADS, 1, 1],
                Grid::QueryHeads,
                Tiles::default(),
            ),
            json!({
                "head_dim": d,
                "q_heads": hq,
                "kv_heads": hkv,
            }),
        )],
    });
    debug_assert_eq!(
        artifacts.len(),
        files,
        "the WGSL file count announced to progress"
    );
    progress(artifacts.len(), artifacts.len());
    Ok(artifacts)
}

/// The decode of one layer on subgroups (`decode_sg.wgsl.j2`; [`WgslTuning::decode_subgroup`]):
/// the scalar decode's bindings, partials and work list (chunks of `tile` slots, the
/// scalar form's, so both run the same grid), `DECODE_SG_SUBGROUPS × sg` invocations.
#[allow(clippy::too_many_arguments)]
fn decode_sg_artifact(
    module: &KernelModule,
    ctx: &LayerCtx,
    env: &minijinja::Environment<'_>,
    sg: u32,
    tuning: &WgslTuning,
    rules: RulesForm,
    tile: u32,
    base_constants: serde_json::Value,
) -> Result<Artifact, CodegenError> {
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    let label = &ctx.layer_label;
    let layer = ctx.layer;
    let xor_masks: Vec<u32> = std::iter::successors(Some(d / 8), |m| Some(m * 2))
        .take_while(|&m| m < sg)
        .collect();
    // The pipelined form where asked ([`WgslTuning::decode_sg_pipe`]), at most
    // [`DECODE_SG_MAX_ITEMS`] items a workgroup.
    let diag = tuning.decode_sg_diag;
    let items = u32::from(tuning.decode_sg_pipe).min(DECODE_SG_MAX_ITEMS);
    // The pipelined form where asked, else the flat form where asked
    // ([`WgslTuning::decode_sg_flat`]), else the plain one.
    let flat = if items > 0 {
        SgFlat::Off
    } else {
        tuning.decode_sg_flat
    };
    // The flat form merges its segments itself where asked (the caller keeps the scalar
    // form for the other subgroup forms when the merge is fused).
    let fused = flat != SgFlat::Off && tuning.decode_fused_merge.unwrap_or(false);
    // With the rules read from a table the source names no layer (one text, and one
    // pipeline in the executor, for every layer of the shape); the kernel's name keeps it.
    // The other subgroup forms keep their rules baked in a text a layer.
    let rules = RulesForm {
        shared: rules.shared && flat != SgFlat::Off,
        table: rules.table && flat != SgFlat::Off,
    };
    let entry = rules.entry(format!("moa_decode_sg_{dtype}_hd{d}"), label);
    let template = match (items > 0, flat) {
        (true, _) => DECODE_SG_PIPE,
        (false, SgFlat::Off) => DECODE_SG,
        (false, _) => DECODE_SG_FLAT,
    };
    // The flat form's loads a lane per step: half a row's vectors, so a step's K (and
    // then its V, issued after the scores into the same registers) stays within the
    // registers that keep 4 workgroups an SM (DESIGN §7.7).
    let dv8 = (d / 8).max(1);
    let nl = match tuning.decode_sg_flat_nl {
        0 => (dv8 / 2).max(1),
        // (A power of two: the butterfly halves it.)
        n => (1u32 << u32::from(n).ilog2()).min(dv8),
    };
    let cmax = flat != SgFlat::Off && tuning.decode_sg_flat_cmax;
    let cmax_masks: Vec<u32> = std::iter::successors(Some(1), |m| Some(m * 2))
        .take_while(|&m| m < nl)
        .collect();
    let sum_masks: Vec<u32> = std::iter::successors(Some(nl), |m| Some(m * 2))
        .take_while(|&m| m < dv8)
        .collect();
    // K and V read as 16-byte words where asked and it applies (f16 storage, f32 products).
    let words = flat != SgFlat::Off
        && tuning.decode_sg_flat_words
        && module.storage == StorageType::F16
        && !matches!(tuning.decode_sg_flat_qk, FlatQk::H16 | FlatQk::H16Reload);
    // Q held as packed f16 words where asked and it applies (the words' f32 products).
    let qpack = words
        && tuning.decode_sg_flat_qpack
        && tuning.decode_sg_flat_qk == FlatQk::F32
        && !tuning.decode_sg_diag
        && tuning.decode_sg_piece == 0;
    let subgroups = if flat == SgFlat::Off {
        DECODE_SG_SUBGROUPS
    } else {
        flat_subgroups(tuning.decode_sg_flat_subgroups, sg, ctx.group_size, d)
    };
    let source = super::render(
        env,
        template,
        Some(layer),
        &DecodeSgCtx {
            layer: ctx,
            entry_point: &entry,
            sg,
            subgroups,
            xor_masks,
            diag,
            items,
            early: flat == SgFlat::Early,
            log_dv8: dv8.ilog2(),
            nl,
            log_nl: nl.ilog2(),
            sum_masks,
            piece: tuning.decode_sg_piece,
            no_combine: tuning.decode_sg_no_combine,
            qk: tuning.decode_sg_flat_qk.name(),
            words,
            fused,
            merge_batch: DECODE_MERGE_BATCH,
            cmax,
            cmax_masks,
            qpack,
            shared_text: rules.shared,
            rules_table: rules.table,
        },
    )?;
    let workgroup_bytes = validate_with(
        &source,
        template,
        Some(layer),
        naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SUBGROUP
            | if words {
                // unpack2x16float.
                naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
            } else {
                naga::valid::Capabilities::empty()
            },
    )?;
    let e = Elem::of(module.storage);
    let params = decode_bindings(e, fused, rules.table);
    let mut extra = json!({ "decode_form": "subgroup", "decode_subgroup": sg });
    if fused {
        extra["decode_fused_merge"] = true.into();
    }
    if diag {
        extra["decode_sg_diag"] = true.into();
    }
    if items > 0 {
        extra["decode_sg_items"] = items.into();
    }
    if flat != SgFlat::Off {
        extra["decode_sg_flat"] = flat.name().into();
        if tuning.decode_sg_piece > 0 {
            extra["decode_sg_piece"] = tuning.decode_sg_piece.into();
        }
        if tuning.decode_sg_no_combine {
            extra["decode_sg_no_combine"] = true.into();
        }
        if subgroups != DECODE_SG_SUBGROUPS {
            extra["decode_sg_flat_subgroups"] = subgroups.into();
        }
        if tuning.decode_sg_flat_qk != FlatQk::F32 {
            extra["decode_sg_flat_qk"] = tuning.decode_sg_flat_qk.name().into();
        }
        if words {
            extra["decode_sg_flat_words"] = true.into();
        }
        if cmax {
            extra["decode_sg_flat_cmax"] = true.into();
        }
        if qpack {
            extra["decode_sg_flat_qpack"] = true.into();
        }
        if tuning.decode_sg_flat_nl != 0 {
            extra["decode_sg_flat_nl"] = nl.into();
        }
    }
    let mut kernel = KernelInfo::new(
        Target::Wgsl,
        Phase::Decode,
        Some(layer),
        entry,
        KernelAbi::new(
            params,
            [subgroups * sg, 1, 1],
            Grid::WorkItems,
            Tiles {
                k_tile: Some(tile),
                ..Tiles::default()
            },
        ),
        merge_json(base_constants, extra),
    );
    if rules.shared {
        name_shared_kernel(&mut kernel, label, rules);
    }
    Ok(Artifact {
        path: format!("wgsl/{label}_decode.wgsl"),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![kernel],
    })
}

/// The decode of one layer on cooperative matrices (`decode_coop.wgsl.j2`; DESIGN §6):
/// the scalar decode's bindings, partials and work list, in its own module (the
/// `enable wgpu_cooperative_matrix` would stop the layer's other kernels from compiling
/// on adapters without it). The executor picks it where the adapter has the matrices.
fn decode_coop_artifact(
    module: &KernelModule,
    layer: &crate::lower::LayerSpec,
    env: &minijinja::Environment<'_>,
    tuning: WgslTuning,
) -> Result<Artifact, CodegenError> {
    let ctx = LayerCtx::new(module, layer);
    let label = &ctx.layer_label;
    let d = module.shape.head_dim;
    let dtype = module.storage.name();
    let entry = format!("moa_decode_coop_{dtype}_hd{d}_{label}");
    let template = DECODE_COOP;
    let source = super::render(
        env,
        template,
        Some(layer.layer),
        &DecodeCoopCtx {
            layer: &ctx,
            entry_point: &entry,
            tile: DECODE_COOP_TILE,
            subgroups: DECODE_COOP_SUBGROUPS,
            f_len: (DECODE_COOP_TILE * 16).max(16 * (d + 16)),
            prefetch: tuning.coop_prefetch,
        },
    )?;
    let workgroup_bytes = validate_with(
        &source,
        template,
        Some(layer.layer),
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::COOPERATIVE_MATRIX,
    )?;
    let e = Elem::of(module.storage);
    let params = decode_params(e);
    Ok(Artifact {
        path: format!("wgsl/{label}_decode_coop.wgsl"),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![KernelInfo::new(
            Target::Wgsl,
            Phase::Decode,
            Some(layer.layer),
            entry,
            KernelAbi::new(
                params,
                [32 * DECODE_COOP_SUBGROUPS, 1, 1],
                Grid::WorkItems,
                Tiles {
                    k_tile: Some(DECODE_COOP_TILE),
                    q_cols: Some(16),
                    subgroups: Some(DECODE_COOP_SUBGROUPS),
                    ..Tiles::default()
                },
            ),
            merge_json(
                layer_constants(&ctx),
                json!({ "workgroup_bytes": decode_coop_workgroup_bytes(d) }),
            ),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower;
    use crate::plan::Plan;

    fn plan(name: &str) -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        Plan::load(&path).unwrap()
    }

    /// The decode merges its segments itself only when asked (`decode_fused_merge:
    /// Some(true)`), and binds the counters and O then; by default every shape keeps the
    /// separate merge dispatch.
    #[test]
    fn the_fused_merge_is_opt_in() {
        let binds_counters = |name: &str, fused: Option<bool>| {
            let tuning = WgslTuning {
                decode_fused_merge: fused,
                ..Default::default()
            };
            let arts = generate_with(&lower(&plan(name), StorageType::F16), tuning).unwrap();
            let decodes: Vec<bool> = arts
                .iter()
                .flat_map(|a| &a.kernels)
                .filter(|k| k.phase == Phase::Decode && k.abi.tiles.subgroups.is_none())
                .map(|k| {
                    let args: Vec<Arg> = k.abi.params.iter().map(|p| p.arg).collect();
                    args.contains(&Arg::SegDone) && args.contains(&Arg::Out)
                })
                .collect();
            assert!(!decodes.is_empty(), "{name}: no decode");
            assert!(decodes.iter().all(|&d| d == decodes[0]), "{name}: mixed");
            decodes[0]
        };
        for name in [
            "plans/fixture-gqa.toml",
            "plans/fixture-mha.toml",
            "plans/smollm2-135m-moa-50.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            assert!(!binds_counters(name, None), "{name}");
            assert!(binds_counters(name, Some(true)), "{name}");
        }
    }

    /// The layers that get the matrix decode: f16 GQA at head_dim 64 and 128 do, f32 and
    /// head_dim 32 (columns per subgroup below one 16-wide matrix) do not.
    #[test]
    fn the_matrix_decode_is_generated_where_it_fits() {
        assert!(decode_coop_fits(StorageType::F16, 4, 128));
        assert!(decode_coop_fits(StorageType::F16, 1, 64));
        assert!(decode_coop_fits(StorageType::F16, 16, 128));
        assert!(!decode_coop_fits(StorageType::F32, 4, 128));
        assert!(!decode_coop_fits(StorageType::F16, 4, 32));
        assert!(!decode_coop_fits(StorageType::F16, 32, 128));
        assert!(!decode_coop_fits(StorageType::F16, 4, 96));
        assert!(decode_coop_workgroup_bytes(128) <= DECODE_COOP_WORKGROUP_BYTES);
        // The figure is what the module declares (naga's sizes, as `limits` counts).
        let arts = generate(&lower(
            &plan("benches/decode-h200/wgsl-gqa-hd128.toml"),
            StorageType::F16,
        ))
        .unwrap();
        let a = arts
            .iter()
            .find(|a| a.kernels[0].abi.tiles.subgroups.is_some())
            .unwrap();
        let r = super::super::limits::resources(&a.kernels[0], a).unwrap();
        assert_eq!(r.shared_bytes, u64::from(decode_coop_workgroup_bytes(128)));
        let count = |name: &str, storage| {
            let arts = generate(&lower(&plan(name), storage)).unwrap();
            arts.iter()
                .flat_map(|a| &a.kernels)
                .filter(|k| k.abi.tiles.subgroups.is_some())
                .count()
        };
        assert_eq!(count("plans/fixture-gqa.toml", StorageType::F16), 3);
        assert_eq!(count("plans/fixture-gqa.toml", StorageType::F32), 0);
        assert_eq!(count("plans/fixture-mha.toml", StorageType::F16), 0);
        assert_eq!(
            count("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
            lower(
                &plan("benches/decode-h200/wgsl-gqa-hd128.toml"),
                StorageType::F16
            )
            .layers
            .len()
        );
    }

    /// No adapter here has cooperative matrices (lavapipe), so the matrix decode is checked
    /// as far as the Vulkan back end goes without one: naga validates it (inside
    /// `generate`), the subgroup size and rescale overrides resolve, and SPIR-V is written.
    /// Validates a WGSL module with naga (every capability, as the matrix kernels need),
    /// resolves the entry point's pipeline overrides and writes SPIR-V 1.3, as the Vulkan
    /// back end does: the words, or the first error as text.
    fn spirv(source: &str, entry: &str, overrides: &[(&str, f64)]) -> Result<Vec<u32>, String> {
        let module = naga::front::wgsl::parse_str(source).map_err(|e| e.to_string())?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| e.to_string())?;
        let mut constants = naga::back::PipelineConstants::default();
        for (name, value) in overrides {
            constants.insert(name.to_string(), *value);
        }
        let entry = Some((naga::ShaderStage::Compute, entry));
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, entry, &constants)
                .map_err(|e| e.to_string())?;
        let options = naga::back::spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &options, None).map_err(|e| e.to_string())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_matrix_decode_translates_to_spirv() {
        for name in [
            "plans/fixture-gqa.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            for coop_prefetch in [false, true] {
                let arts = generate_with(
                    &lower(&plan(name), StorageType::F16),
                    WgslTuning {
                        coop_prefetch,
                        ..WgslTuning::default()
                    },
                )
                .unwrap();
                let coop: Vec<&Artifact> = arts
                    .iter()
                    .filter(|a| a.kernels[0].abi.tiles.subgroups.is_some())
                    .collect();
                assert!(!coop.is_empty(), "{name}");
                for a in coop {
                    let entry = a.kernels[0].entry_point.as_str();
                    let spv = spirv(&a.source, entry, &[("MOA_SG", 32.0), ("MOA_RESCALE", 0.0)])
                        .unwrap_or_else(|e| panic!("{name} {}: {e}", a.path));
                    assert!(spv.len() > 100);
                }
            }
        }
    }

    /// The matrix-unit prefill of every layer of the shipped SmolLM2 plan (head_dim 64) and
    /// of a dense head_dim-128 shape validates with naga and translates to SPIR-V with the
    /// subgroup size resolved, as the Vulkan back end does (no adapter here offers
    /// cooperative matrices: the device runs it); f32 storage and head_dim 72 are refused.
    #[test]
    fn the_matrix_unit_prefill_validates_and_translates_to_spirv() {
        let root = env!("CARGO_MANIFEST_DIR");
        let plan = Plan::load(std::path::Path::new(&format!(
            "{root}/plans/smollm2-135m-moa-50.toml"
        )))
        .unwrap();
        let mut shape = plan.model().clone();
        shape.head_dim = 128;
        let dense = Plan::dense(shape).unwrap();
        for plan in [&plan, &dense] {
            let kernels = prefill_coop(&lower(plan, StorageType::F16)).unwrap();
            assert_eq!(kernels.len(), plan.layers().len());
            for k in kernels.iter().take(2) {
                let words = spirv(&k.source, &k.entry_point, &[("SG", 32.0)])
                    .unwrap_or_else(|e| panic!("layer {}: {e}", k.layer));
                assert!(words.len() > 100);
            }
        }
        let err = prefill_coop(&lower(&plan, StorageType::F32)).unwrap_err();
        assert!(err.to_string().contains("f16 storage"), "{err}");
        // The group form too, at every subgroup size it takes, and with a group of one
        // (4 query blocks), two (2) and four (1 block) heads.
        let mut shapes = vec![plan.clone(), dense.clone()];
        for (q, kv) in [(4, 4), (4, 2), (8, 2)] {
            let mut s = plan.model().clone();
            (s.q_heads, s.kv_heads, s.head_dim) = (q, kv, 16);
            shapes.push(Plan::dense(s).unwrap());
        }
        for p in &shapes {
            let kernels = prefill_coop_group(&lower(p, StorageType::F16)).unwrap();
            assert_eq!(kernels.len(), p.layers().len());
            let g = p.model().q_heads / p.model().kv_heads;
            // Every layer (naga validated each inside prefill_coop_group) translates at
            // the NVIDIA subgroup size; the first two at the others too.
            for (i, k) in kernels.iter().enumerate() {
                assert!(k.group);
                assert_eq!(k.q_tile, 16 * prefill_group_q_blocks(g).unwrap());
                let sizes: &[f64] = if i < 2 { &[16.0, 32.0, 64.0] } else { &[32.0] };
                for &sg in sizes {
                    let words = spirv(&k.source, &k.entry_point, &[("SG", sg)])
                        .unwrap_or_else(|e| panic!("group form, layer {}: {e}", k.layer));
                    assert!(words.len() > 100);
                }
            }
        }
        // The variants (form 1, the diagnostics, K staged or not, V early or not, V in
        // K's tile or not, its diagnostics)
        // validate (naga, inside) and translate, on the plan's shape and a group of one.
        // (form, diag, stage_k, v_early, v_in_k, mask_select), then score_regs.
        fn form_of(
            (form, diag, stage_k, v_early, v_in_k, mask_select): (u32, u32, bool, bool, bool, bool),
            score_regs: bool,
        ) -> PrefillGroupForm {
            PrefillGroupForm {
                form,
                diag,
                stage_k,
                v_early,
                v_in_k,
                mask_select,
                score_regs,
            }
        }
        for p in [&shapes[0], &shapes[2]] {
            let module = lower(p, StorageType::F16);
            for t in [
                (1, 0, false, false, false, false),
                (1, 1, false, false, false, false),
                (1, 2, false, false, false, false),
                (1, 3, false, false, false, false),
                (2, 1, false, false, false, false),
                (2, 2, false, false, false, false),
                (2, 3, false, false, false, false),
                (2, 4, false, false, false, false),
                (2, 5, false, false, false, false),
                (2, 0, false, false, false, false),
                (2, 0, true, false, false, false),
                (1, 0, true, false, false, false),
                (2, 0, false, true, false, false),
                (2, 0, true, true, false, false),
                (1, 0, true, true, false, false),
                (2, 0, true, true, true, false),
                (1, 0, true, false, true, false),
                (2, 1, true, false, true, false),
                (2, 7, true, false, true, false),
                (2, 0, true, true, true, true),
                (2, 0, true, true, false, true),
                (1, 0, true, false, true, true),
                (2, 0, false, false, false, true),
                (2, 3, false, false, false, true),
            ] {
                let variant = form_of(t, false);
                let kernels = prefill_coop_group_form(&module, variant).unwrap();
                for k in kernels.iter().take(2) {
                    spirv(&k.source, &k.entry_point, &[("SG", 32.0)])
                        .unwrap_or_else(|e| panic!("{variant:?}, layer {}: {e}", k.layer));
                }
            }
            for t in [
                (0, 0, false, false, false, false),
                (3, 0, false, false, false, false),
                (4, 0, false, false, false, false),
                (1, 8, false, false, false, false),
                (2, 2, true, false, false, false),
                (2, 4, false, true, false, false),
                (2, 0, false, true, true, false),
                (2, 6, true, false, true, false),
                (2, 7, false, false, false, false),
                (2, 1, true, true, true, false),
                (2, 1, true, false, true, true),
            ] {
                let variant = form_of(t, false);
                assert!(prefill_coop_group_form(&module, variant).is_err());
            }
            // Scores in registers (with and without select masks and staging; SG 16, 32,
            // 64: the register array is sized for 16), and not with diagnostic 1.
            for t in [
                (2, 0, true, true, true, true),
                (2, 0, true, true, true, false),
                (1, 0, true, false, true, false),
                (2, 0, false, false, false, false),
                (2, 7, true, false, true, true),
            ] {
                let variant = form_of(t, true);
                let kernels = prefill_coop_group_form(&module, variant).unwrap();
                for k in kernels.iter().take(2) {
                    // 128: the 4-key groups' other mapping (moa_sr_key: kpl = 8).
                    for sg in [16.0, 32.0, 64.0, 128.0] {
                        spirv(&k.source, &k.entry_point, &[("SG", sg)])
                            .unwrap_or_else(|e| panic!("{variant:?}, layer {}: {e}", k.layer));
                    }
                }
                let wrong = PrefillGroupForm { diag: 1, ..variant };
                assert!(prefill_coop_group_form(&module, wrong).is_err());
            }
        }
        assert_eq!(prefill_group_q_blocks(3), Some(2));
        // K staged: 6 × 6656 + 9216 = 49152 bytes at head_dim 64; at 128 one block a head.
        assert_eq!(prefill_group_q_blocks_staged(3, 64, 0), Some(2));
        assert_eq!(prefill_group_q_blocks_staged(3, 64, 1), Some(2));
        assert_eq!(prefill_group_q_blocks_staged(3, 128, 1), Some(1));
        assert!(prefill_group_stage_fits(3, 64, 1) && !prefill_group_stage_fits(8, 64, 1));
        assert!(!prefill_group_stage_fits(3, 128, 1) && !prefill_group_stage_fits(3, 64, 2));
        assert_eq!(prefill_group_q_blocks(8), None);
        assert!(prefill_coop_group(&lower(&plan, StorageType::F32)).is_err());
        let mut shape = plan.model().clone();
        shape.head_dim = 72;
        let odd = Plan::dense(shape).unwrap();
        assert!(prefill_coop(&lower(&odd, StorageType::F16)).is_err());
    }

    /// Every form of the scalar decode validates with naga (inside `generate_with`),
    /// translates to SPIR-V, declares the workgroup bytes its form adds, and falls back
    /// where it does not apply: f32 and f16, head_dim 32 to 128, MHA, GQA and a group too
    /// large to unroll.
    #[test]
    fn wider_narrower_and_shuffled_decodes_fit_their_limits() {
        // The opt-in workgroup sizes and quad shuffles keep the quad form where it fits
        // (256 invocations: within the wide budget, past WebGPU's 16 KiB), record what
        // they are, and pass the limits check the executors run.
        for name in [
            "plans/fixture-gqa.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            let module = lower(&plan(name), StorageType::F16);
            for (threads, shuffle) in [(64, false), (256, false), (128, true), (256, true)] {
                let tuning = WgslTuning {
                    decode_threads: threads,
                    decode_quad_shuffle: shuffle,
                    ..WgslTuning::default()
                };
                let arts = generate_with(&module, tuning).unwrap();
                super::super::limits::check(Target::Wgsl, &arts)
                    .unwrap_or_else(|e| panic!("{name} {threads} {shuffle}: {e}"));
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    assert_eq!(k.abi.block[0], threads, "{name}");
                    assert_eq!(k.abi.tiles.k_tile, Some(threads), "{name}");
                    assert_eq!(k.constants["decode_form"], "quad", "{name} {threads}");
                    assert_eq!(
                        k.constants.get("decode_quad_shuffle") == Some(&json!(true)),
                        shuffle,
                        "{name}"
                    );
                    assert_eq!(a.source.contains("subgroupShuffleXor"), shuffle, "{name}");
                }
            }
        }
    }

    /// The f16 products and the Q·K invocations' sums of p validate (inside
    /// `generate_with`), pass the limits check, translate to SPIR-V, apply only where
    /// they fit (the quad form with f16 storage; the sums with paired end-of-chunk sums)
    /// and are recorded in the manifest only where on.
    #[cfg(target_os = "linux")]
    #[test]
    fn f16_products_and_qk_sums_apply_where_they_fit() {
        let cases = [
            ("plans/fixture-mha.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F32),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
        ];
        for (name, storage) in cases {
            let module = lower(&plan(name), storage);
            let group = module.shape.group_size();
            for (qk, pv, sums) in [
                (false, Some(false), false),
                (true, Some(false), false),
                (false, Some(true), true),
                (true, None, true),
            ] {
                let tuning = WgslTuning {
                    decode_f16_qk: qk,
                    decode_f16_pv: pv,
                    decode_qk_sums: sums,
                    decode_lazy_margin: 8,
                    ..WgslTuning::default()
                };
                let arts = generate_with(&module, tuning).unwrap();
                super::super::limits::check(Target::Wgsl, &arts)
                    .unwrap_or_else(|e| panic!("{name} {storage:?}: {e}"));
                let half = storage == StorageType::F16;
                let want_pv = half && pv.unwrap_or(group > 1);
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    let label = format!("{name} {storage:?} qk {qk} pv {pv:?} sums {sums}");
                    assert_eq!(k.constants["decode_form"], "quad", "{label}");
                    let on = |key: &str| k.constants.get(key) == Some(&json!(true));
                    assert_eq!(on("decode_f16_qk"), half && qk, "{label}");
                    assert_eq!(on("decode_f16_pv"), want_pv, "{label}");
                    if want_pv {
                        assert_eq!(
                            k.constants["decode_lazy_margin"], DECODE_F16_PV_MARGIN,
                            "{label}"
                        );
                    }
                    let paired = on("decode_paired_epilogue");
                    assert_eq!(on("decode_qk_sums"), sums && paired, "{label}");
                    assert_eq!(
                        a.source.contains("fn moa_part16"),
                        half && (qk || want_pv),
                        "{label}"
                    );
                    assert_eq!(
                        a.source.contains("Sums of p (this variant)"),
                        sums && paired,
                        "{label}"
                    );
                    let shape = decode_shape(storage, group, module.shape.head_dim).unwrap();
                    let r = super::super::limits::resources(k, a).unwrap();
                    let fused = u64::from(
                        DECODE_FUSED_WORKGROUP_BYTES
                            * u32::from(
                                k.constants.get("decode_fused_merge") == Some(&json!(true)),
                            ),
                    );
                    assert_eq!(
                        r.shared_bytes - fused,
                        u64::from(decode_workgroup_bytes_with(
                            &shape,
                            DecodeForm::Quad,
                            group,
                            module.shape.head_dim,
                            on("decode_f16_qk"),
                            on("decode_qk_sums"),
                        )),
                        "{label}"
                    );
                    let spv = spirv(&a.source, &k.entry_point, &[])
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert!(spv.len() > 100, "{label}");
                }
            }
        }
    }

    #[test]
    fn every_scalar_decode_form_validates_and_falls_back() {
        let cases = [
            ("plans/fixture-mha.toml", StorageType::F32),
            ("plans/fixture-mha.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F32),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F32),
        ];
        for (name, storage) in cases {
            let module = lower(&plan(name), storage);
            let group = module.shape.group_size();
            let d = module.shape.head_dim;
            for (wanted, early_v, paired, batch, narrow) in [
                (DecodeForm::Eager, false, true, 16, false),
                (DecodeForm::Lazy, false, false, 16, false),
                (DecodeForm::Lazy, true, true, 8, true),
                (DecodeForm::Quad, false, false, 16, false),
                (DecodeForm::Quad, true, false, 16, false),
                (DecodeForm::Quad, false, true, 8, false),
                (DecodeForm::Quad, true, true, 16, false),
                (DecodeForm::Quad, true, true, 16, true),
            ] {
                let tuning = WgslTuning {
                    decode_form: wanted,
                    decode_early_v: Some(early_v),
                    decode_paired_epilogue: paired,
                    decode_load_batch: batch,
                    decode_narrow_loads: narrow,
                    ..WgslTuning::default()
                };
                let shape = decode_shape_with(storage, group, d, !narrow).unwrap();
                let arts = generate_with(&module, tuning).unwrap();
                let got = decode_form_for(wanted, &shape, group, d);
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    let form = k.constants["decode_form"].as_str().unwrap_or("eager");
                    assert_eq!(form, got.name(), "{name} {storage:?} {wanted:?}");
                    // Paired sums only in the quad form, and only where a head's
                    // accumulators fit its partials' buffer; early V only where a
                    // tile's V loads fit one batch.
                    let epi = group * shape.tile / (shape.threads * shape.kv_vec / 4);
                    assert_eq!(
                        k.constants["decode_paired_epilogue"] == true,
                        paired && got == DecodeForm::Quad && epi >= 1,
                        "{name} {storage:?} {wanted:?}"
                    );
                    if k.constants["decode_early_v"] == true {
                        assert!(shape.tile.div_ceil(shape.slot_groups) <= batch);
                    }
                    assert_eq!(k.constants["kv_vec"], shape.kv_vec, "{name} {storage:?}");
                    let r = super::super::limits::resources(k, a).unwrap();
                    let f16_qk = k.constants.get("decode_f16_qk") == Some(&json!(true));
                    let fused = u64::from(
                        DECODE_FUSED_WORKGROUP_BYTES
                            * u32::from(
                                k.constants.get("decode_fused_merge") == Some(&json!(true)),
                            ),
                    );
                    assert_eq!(
                        r.shared_bytes - fused,
                        u64::from(decode_workgroup_bytes_with(
                            &shape, got, group, d, f16_qk, false
                        )),
                        "{name} {storage:?} {wanted:?}"
                    );
                    spirv(&a.source, &k.entry_point, &[])
                        .unwrap_or_else(|e| panic!("{name} {storage:?} {wanted:?}: {e}"));
                }
            }
        }
        // A group past the unrolled limit keeps the eager form.
        let shape = decode_shape(StorageType::F16, 16, 64).unwrap();
        assert_eq!(
            decode_form_for(DecodeForm::Quad, &shape, 16, 64),
            DecodeForm::Eager
        );
        // Llama-3-8B's layer shape (group 4, head_dim 128, f16) gets the quad form.
        let shape = decode_shape(StorageType::F16, 4, 128).unwrap();
        assert_eq!(
            decode_form_for(DecodeForm::Quad, &shape, 4, 128),
            DecodeForm::Quad
        );
        for f in [DecodeForm::Eager, DecodeForm::Lazy, DecodeForm::Quad] {
            assert_eq!(DecodeForm::parse(f.name()), Some(f));
        }
        assert_eq!(DecodeForm::parse("fast"), None);
    }

    /// A GQA group whose per-head state cannot fit the workgroup memory is refused with
    /// the largest group that fits at that head dim, and that group does fit.
    #[test]
    fn oversized_group_names_the_allowed_range() {
        let err = decode_shape(StorageType::F16, 1024, 128)
            .unwrap_err()
            .to_string();
        let largest: u32 = err
            .split("allowed 1..=")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no allowed range in: {err}"));
        assert!(err.contains("model.q_heads / model.kv_heads"), "{err}");
        decode_shape(StorageType::F16, largest, 128).unwrap_or_else(|e| panic!("{largest}: {e}"));
        assert!(decode_shape(StorageType::F16, largest + 1, 128).is_err());
    }
}
