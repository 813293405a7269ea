//! The lowered IR: what every back end generates from. This file is the spec.
//!
//! Units are tokens. A query head with rule (α, β) has, at sequence length N, the
//! span `S = rule.span(N)` (see `plan::rule`): it keeps the first `min(S, sink)`
//! tokens (the sink) plus the most recent `S − min(S, sink)` tokens, the current
//! token included. `plan::HeadWindow::keeps` is the only definition of that mask.
//!
//! GQA: query head `h` reads KV head `h / (q_heads / kv_heads)` (contiguous groups,
//! as HF's `repeat_kv`). A KV head's cache segment holds the largest span of its
//! query heads; each query head still masks to its own span inside that segment.
//!
//! KV cache of one layer (the "arena"), per batch row: the KV heads' segments one
//! after another, `row_slots = Σ_kv S_kv` slots of `head_dim` elements each, for K
//! and for V (two buffers `[rows, row_slots, head_dim]`). Segment `kv` starts at
//! `offset_kv = Σ_{j<kv} S_j` and holds a sink region of `sink_kv = min(S_kv, sink)`
//! slots (token p < sink_kv lives at slot p) followed by a ring of
//! `ring_kv = S_kv − sink_kv` slots (token p ≥ sink_kv lives at slot
//! `sink_kv + (p − sink_kv) mod ring_kv`; with ring_kv = 0 such tokens are not kept).
//! Keys are stored after RoPE at absolute positions, so slot order never matters to
//! attention; a key's position, where a mask needs it, follows from the current
//! position t: ring slot j holds `t − ((t − sink_kv − j) mod ring_kv)`.

#![warn(missing_docs)]

use serde::Serialize;

use crate::plan::{HeadWindow, ModelShape, Rule, SpanParams};

/// Element type of Q, K, V and O in device memory. Arithmetic is always f32.
/// `Bf16` (what 7B-class checkpoints ship in) is CUDA-only: WGSL has no bf16 type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// IEEE binary32, 4 bytes an element.
    F32,
    /// IEEE binary16, 2 bytes an element.
    F16,
    /// bfloat16, 2 bytes an element (CUDA only).
    Bf16,
}

impl StorageType {
    /// `f32`, `f16` or `bf16`: as `moa-compile --dtype`, the manifest's `storage` and the
    /// generated kernels' names spell it.
    pub fn name(self) -> &'static str {
        match self {
            StorageType::F32 => "f32",
            StorageType::F16 => "f16",
            StorageType::Bf16 => "bf16",
        }
    }
    /// Bytes of one element in device memory: 4 for f32, 2 for f16 and bf16.
    pub fn bytes(self) -> usize {
        match self {
            StorageType::F32 => 4,
            StorageType::F16 | StorageType::Bf16 => 2,
        }
    }

    /// Rounds an f32 to the nearest value this type holds (what a kernel reads after
    /// the host converts its input).
    pub fn quantize(self, x: f32) -> f32 {
        match self {
            StorageType::F32 => x,
            StorageType::F16 => half::f16::from_f32(x).to_f32(),
            StorageType::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Whether the type is a 16-bit float the tensor cores take (f16, bf16).
    pub fn is_half(self) -> bool {
        matches!(self, StorageType::F16 | StorageType::Bf16)
    }
}

/// A whole plan, lowered.
#[derive(Clone, Debug, Serialize)]
pub struct KernelModule {
    /// The model's attention shape (layers, query and KV heads, head_dim) from the plan.
    pub shape: ModelShape,
    /// The plan's span constants (sink, minimum span, rounding, mode), in tokens.
    pub span: SpanParams,
    /// Element type of Q, K, V and O the kernels are generated for.
    pub storage: StorageType,
    /// One entry per layer, indexed by layer.
    pub layers: Vec<LayerSpec>,
}

impl KernelModule {
    /// Every layer's [`CacheLayout`] at N = `n_tokens`, by layer: the caches a request of
    /// that N allocates (both engines and the memory planner size them from this).
    pub fn cache_layouts(&self, n_tokens: u32) -> Vec<CacheLayout> {
        self.layers
            .iter()
            .map(|l| CacheLayout::new(l, &self.span, n_tokens))
            .collect()
    }
}

/// One layer: everything a fused prefill or decode kernel bakes in.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSpec {
    /// The layer's index in the model (0-based).
    pub layer: u32,
    /// Distinct rules of the layer, sorted by (α, β); heads sharing a rule.
    pub groups: Vec<RuleGroup>,
    /// Indexed by query head.
    pub q_heads: Vec<QHeadSpec>,
    /// Indexed by KV head.
    pub kv_heads: Vec<KvHeadSpec>,
}

/// One distinct rule of a layer and the query heads that have it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleGroup {
    /// The rule (α in tokens, β as a multiple of 1 / [`BETA_DEN`](crate::plan::BETA_DEN)).
    #[serde(serialize_with = "ser_rule")]
    pub rule: Rule,
    /// The query heads with this rule, ascending.
    pub q_heads: Vec<u32>,
}

/// One query head of a layer: its KV head and rule.
#[derive(Clone, Debug, Serialize)]
pub struct QHeadSpec {
    /// The query head's index in the layer.
    pub q_head: u32,
    /// The KV head it reads: `q_head / (q_heads / kv_heads)` (contiguous GQA groups).
    pub kv_head: u32,
    /// The head's rule, from the plan.
    #[serde(serialize_with = "ser_rule")]
    pub rule: Rule,
    /// Index into `LayerSpec::groups`.
    pub group: u32,
}

/// One KV head of a layer and the query heads (its GQA group) that read it.
#[derive(Clone, Debug, Serialize)]
pub struct KvHeadSpec {
    /// The KV head's index in the layer.
    pub kv_head: u32,
    /// The query heads reading this KV head, in order.
    pub q_heads: Vec<u32>,
    /// All query heads of the group share one rule: no per-head mask inside the segment.
    pub uniform_rule: bool,
}

fn ser_rule<S: serde::Serializer>(r: &Rule, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("Rule", 3)?;
    st.serialize_field("alpha", &r.alpha)?;
    st.serialize_field("beta", &r.beta())?;
    st.serialize_field("beta_num", &r.beta_num)?;
    st.end()
}

impl LayerSpec {
    /// The mask of a query head at sequence length N.
    pub fn window(&self, q_head: usize, n_tokens: u32, span: &SpanParams) -> HeadWindow {
        HeadWindow::new(
            self.q_heads[q_head].rule.span(n_tokens, span),
            span.sink_tokens,
        )
    }
}

/// One KV head's cache segment at a given N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// First slot of the segment within a row of the arena.
    pub offset: u32,
    /// Slots of the segment: the largest span of the KV head's query heads.
    pub span: u32,
    /// Sink slots, `min(span, sink_tokens)`.
    pub sink: u32,
    /// Ring slots, `span − sink`.
    pub ring: u32,
}

/// The cache layout of one layer at one N (fixed when a request starts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheLayout {
    /// N (prompt + max new tokens) the spans were evaluated at.
    pub n_tokens: u32,
    /// One segment per KV head, in KV-head order, back to back within a row.
    pub segments: Vec<Segment>,
    /// Slots per batch row: Σ segment spans.
    pub row_slots: u32,
}

impl CacheLayout {
    /// The layout of `layer` at N = `n_tokens`: each KV head's segment spans the largest
    /// [`Rule::span`] of its query heads (docs/DESIGN.md §4, §5).
    pub fn new(layer: &LayerSpec, span: &SpanParams, n_tokens: u32) -> CacheLayout {
        let mut offset = 0u32;
        let segments = layer
            .kv_heads
            .iter()
            .map(|kv| {
                let s = kv
                    .q_heads
                    .iter()
                    .map(|&h| layer.q_heads[h as usize].rule.span(n_tokens, span))
                    .max()
                    .unwrap_or(0);
                let sink = s.min(span.sink_tokens);
                let seg = Segment {
                    offset,
                    span: s,
                    sink,
                    ring: s - sink,
                };
                offset += s;
                seg
            })
            .collect();
        CacheLayout {
            n_tokens,
            segments,
            row_slots: offset,
        }
    }

    /// [`Self::new`]'s `row_slots` in 64 bits, which cannot wrap: Σ over the KV heads of
    /// their largest span at N = `n_tokens`. A layout whose `row_slots × head_dim` exceeds
    /// `u32::MAX` cannot be addressed by the kernels (u32 element indices); `moa-compile`
    /// refuses such a plan with this figure (`codegen::compile`).
    pub fn row_slots_wide(layer: &LayerSpec, span: &SpanParams, n_tokens: u32) -> u64 {
        layer
            .kv_heads
            .iter()
            .map(|kv| {
                kv.q_heads
                    .iter()
                    .map(|&h| u64::from(layer.q_heads[h as usize].rule.span(n_tokens, span)))
                    .max()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Slot (within a row) where the key of token `pos` of `kv_head` is written, or
    /// `None` if this KV head never keeps tokens at that position.
    pub fn slot_of(&self, kv_head: usize, pos: u64) -> Option<u32> {
        let s = self.segments[kv_head];
        if pos < u64::from(s.sink) {
            Some(s.offset + pos as u32)
        } else if s.ring == 0 {
            None
        } else {
            Some(s.offset + s.sink + ((pos - u64::from(s.sink)) % u64::from(s.ring)) as u32)
        }
    }

    /// The decode work list's view of this layout for a kernel that cuts each GQA group
    /// into `sub_groups` sub-groups (the CUDA decode's `tiles.sub_groups`,
    /// `codegen::cuda::decode_sub_groups`): every KV head's segment repeated `sub_groups`
    /// times in a row (same offset, span, sink and ring), so a work list built over it
    /// (`runtime::worklist::DecodeWork`) has segment (row · kv_heads + kv_head) ·
    /// sub_groups + sub-group, each reading its KV head's slots. `row_slots` and `n_tokens`
    /// are unchanged; 1 (or 0) returns the layout as it is. Only for work lists: the cache
    /// itself is laid out as `self`.
    pub fn sub_grouped(&self, sub_groups: u32) -> CacheLayout {
        let n = sub_groups.max(1) as usize;
        CacheLayout {
            n_tokens: self.n_tokens,
            segments: self
                .segments
                .iter()
                .flat_map(|s| std::iter::repeat_n(*s, n))
                .collect(),
            row_slots: self.row_slots,
        }
    }

    /// Position held by each slot of a segment once tokens `0..=t` were written
    /// (`None` for slots not yet filled). The decode kernels' view of the ring.
    pub fn positions(&self, kv_head: usize, t: u64) -> Vec<Option<u64>> {
        let s = self.segments[kv_head];
        let mut out = Vec::with_capacity(s.span as usize);
        for j in 0..s.sink {
            out.push((u64::from(j) <= t).then_some(u64::from(j)));
        }
        for j in 0..s.ring {
            let sink = u64::from(s.sink);
            if t < sink {
                out.push(None);
                continue;
            }
            let ring = u64::from(s.ring);
            // Age of the key in ring slot j: how many tokens ago it was written.
            let age = (t - sink + ring - u64::from(j)) % ring;
            out.push(t.checked_sub(age).filter(|&p| p >= sink));
        }
        out
    }
}
