//! Template contexts shared by the WGSL and CUDA back ends: the per-layer constants
//! every attention kernel bakes in. One typed struct, never ad-hoc maps.

#![warn(missing_docs)]

use serde::Serialize;

use crate::lower::{KernelModule, LayerSpec};
use crate::plan::{SpanMode, BETA_DEN};

/// One query head's baked constants.
#[derive(Clone, Debug, Serialize)]
pub struct QHeadCtx {
    /// The query head's index in the layer.
    pub q_head: u32,
    /// The KV head it reads (contiguous GQA groups, docs/DESIGN.md §4).
    pub kv_head: u32,
    /// α in tokens (may be negative).
    pub alpha: i32,
    /// β·BETA_DEN, so β·N = (beta_num·N) / BETA_DEN in integers.
    pub beta_num: u32,
    /// Index of the head's rule among the layer's distinct rules.
    pub group: u32,
}

/// One KV head: its query heads are `q_first .. q_first + group_size`.
#[derive(Clone, Debug, Serialize)]
pub struct KvHeadCtx {
    /// The KV head's index in the layer.
    pub kv_head: u32,
    /// Its first query head (`kv_head · group_size`).
    pub q_first: u32,
    /// The KV head's query heads share one rule: the segment needs no per-head mask.
    pub uniform_rule: bool,
}

/// Distinct rules of the layer (spans are computed per rule, then looked up per head).
#[derive(Clone, Debug, Serialize)]
pub struct RuleCtx {
    /// α in tokens (may be negative).
    pub alpha: i32,
    /// β·BETA_DEN, as in [`QHeadCtx::beta_num`].
    pub beta_num: u32,
    /// β as a number (for comments; kernels use `beta_num`).
    pub beta: f64,
    /// The query heads with this rule, ascending (a kernel's per-head switch lists them).
    pub heads: Vec<u32>,
}

/// Everything a per-layer attention template needs, besides target tile constants.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCtx {
    /// The layer's index in the model.
    pub layer: u32,
    /// Two-digit layer label used in names (`l03`).
    pub layer_label: String,
    /// Storage type name, `f32`, `f16` or `bf16` (`StorageType::name`).
    pub storage: &'static str,
    /// Elements per head vector.
    pub head_dim: u32,
    /// Query heads of the layer.
    pub q_heads: u32,
    /// KV heads of the layer.
    pub kv_heads: u32,
    /// Query heads per KV head (`q_heads / kv_heads`).
    pub group_size: u32,
    /// 1/sqrt(head_dim), printed with full f32 precision.
    pub scale: String,
    /// The plan's sink, in tokens (`span.sink_tokens`).
    pub sink_tokens: u32,
    /// The smallest span, in tokens (`span.min_span_tokens`).
    pub min_span_tokens: u32,
    /// Spans round up to a multiple of this many tokens (`span.block_tokens`, at least 1).
    pub span_round_tokens: u32,
    /// "moa" or "upstream": clamp to N after or before rounding (see `plan::rule`).
    pub span_mode: &'static str,
    /// The denominator of β ([`BETA_DEN`], 4096).
    pub beta_den: u32,
    /// The layer's distinct rules, sorted by (α, β) as in `LayerSpec::groups`.
    pub rules: Vec<RuleCtx>,
    /// One entry per query head, indexed by query head.
    pub heads: Vec<QHeadCtx>,
    /// One entry per KV head, indexed by KV head.
    pub kv: Vec<KvHeadCtx>,
}

impl LayerCtx {
    /// The context of `layer` of `module`: its shape, span constants and rules.
    pub fn new(module: &KernelModule, layer: &LayerSpec) -> LayerCtx {
        let shape = &module.shape;
        let scale = 1.0f32 / (shape.head_dim as f32).sqrt();
        LayerCtx {
            layer: layer.layer,
            layer_label: format!("l{:02}", layer.layer),
            storage: module.storage.name(),
            head_dim: shape.head_dim,
            q_heads: shape.q_heads,
            kv_heads: shape.kv_heads,
            group_size: shape.group_size(),
            scale: format_f32(scale),
            sink_tokens: module.span.sink_tokens,
            min_span_tokens: module.span.min_span_tokens,
            span_round_tokens: module.span.span_round_tokens.max(1),
            span_mode: match module.span.mode {
                SpanMode::Moa => "moa",
                SpanMode::Upstream => "upstream",
            },
            beta_den: BETA_DEN,
            rules: layer
                .groups
                .iter()
                .map(|g| RuleCtx {
                    alpha: g.rule.alpha,
                    beta_num: g.rule.beta_num,
                    beta: g.rule.beta(),
                    heads: g.q_heads.clone(),
                })
                .collect(),
            heads: layer
                .q_heads
                .iter()
                .map(|h| QHeadCtx {
                    q_head: h.q_head,
                    kv_head: h.kv_head,
                    alpha: h.rule.alpha,
                    beta_num: h.rule.beta_num,
                    group: h.group,
                })
                .collect(),
            kv: layer
                .kv_heads
                .iter()
                .map(|k| KvHeadCtx {
                    kv_head: k.kv_head,
                    q_first: k.q_heads.first().copied().unwrap_or(0),
                    uniform_rule: k.uniform_rule,
                })
                .collect(),
        }
    }
}

/// Shortest decimal that round-trips to the same f32, always with a decimal point
/// (so WGSL and CUDA read it as a float literal).
pub fn format_f32(x: f32) -> String {
    let s = format!("{x:?}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}
