//! Span statistics of a plan at one sequence length: what `moa plan show` prints.

#![warn(missing_docs)]

use super::Plan;

/// Per-layer span figures at one N.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// The shortest query-head span of the layer, in slots (tokens).
    pub min_q_span: u32,
    /// The mean query-head span of the layer, in slots.
    pub mean_q_span: f64,
    /// The longest query-head span of the layer, in slots.
    pub max_q_span: u32,
    /// Σ over KV heads of the KV span (the slots this layer's cache holds per row).
    pub kv_slots: u64,
    /// Distinct (α, β) rules among the layer's query heads.
    pub distinct_rules: usize,
}

/// A plan's span and cache figures at one N (what [`plan_stats`] returns).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanStats {
    /// N the spans were evaluated at, in tokens.
    pub n_tokens: u32,
    /// One entry per layer, indexed by layer.
    pub layers: Vec<LayerStats>,
    /// KV slots of the GQA-native cache (one segment per KV head) over the dense GQA cache.
    pub kv_density: f64,
    /// Σ query-head spans over (layers·q_heads·N): upstream's "KV density", which
    /// counts an MHA-expanded cache.
    pub q_density: f64,
    /// Bytes of K and V per batch row of this plan's GQA-native cache: Σ KV-head spans
    /// (all layers) · head_dim · 2 · `bytes_per_elem`.
    pub kv_bytes: u64,
    /// Bytes of K and V per batch row of the dense GQA cache: layers · kv_heads · N ·
    /// head_dim · 2 · `bytes_per_elem`.
    pub dense_kv_bytes: u64,
    /// Bytes of K and V per batch row that upstream's MHA-expanded cache would need (one
    /// segment per query head): Σ query-head spans (all layers) · head_dim · 2 ·
    /// `bytes_per_elem`.
    pub upstream_kv_bytes: u64,
    /// KV heads (over all layers) whose span exceeds N. Always 0 in `moa` span mode;
    /// in `upstream` mode spans round up past N, and then `kv_bytes` can exceed
    /// `dense_kv_bytes` (docs/DESIGN.md §2).
    pub kv_spans_over_n: u64,
}

/// Bytes per cached element `plan_stats` accepts: 1 (8-bit) to 8 (f64).
pub const BYTES_PER_ELEM: std::ops::RangeInclusive<u64> = 1..=8;

/// Span figures of `plan` at N = `n_tokens` (≥ 1; densities are per N), with K and V
/// bytes at `bytes_per_elem` (see [`BYTES_PER_ELEM`]; callers check user input).
pub fn plan_stats(plan: &Plan, n_tokens: u32, bytes_per_elem: u64) -> PlanStats {
    let m = &plan.model;
    let mut layers = Vec::new();
    let (mut kv_total, mut q_total, mut over) = (0u64, 0u64, 0u64);
    for l in 0..m.layers as usize {
        let spans: Vec<u32> = (0..m.q_heads as usize)
            .map(|h| plan.q_span(l, h, n_tokens))
            .collect();
        let kv_spans: Vec<u32> = (0..m.kv_heads as usize)
            .map(|k| plan.kv_span(l, k, n_tokens))
            .collect();
        let kv_slots: u64 = kv_spans.iter().map(|&s| u64::from(s)).sum();
        over += kv_spans.iter().filter(|&&s| s > n_tokens).count() as u64;
        let mut rules = plan.layers[l].rules.clone();
        rules.sort();
        rules.dedup();
        let q_sum: u64 = spans.iter().map(|&s| u64::from(s)).sum();
        kv_total += kv_slots;
        q_total += q_sum;
        layers.push(LayerStats {
            min_q_span: spans.iter().copied().min().unwrap_or(0),
            mean_q_span: q_sum as f64 / spans.len() as f64,
            max_q_span: spans.iter().copied().max().unwrap_or(0),
            kv_slots,
            distinct_rules: rules.len(),
        });
    }
    let n = u64::from(n_tokens);
    let per_slot = u64::from(m.head_dim) * 2 * bytes_per_elem;
    PlanStats {
        n_tokens,
        layers,
        kv_density: kv_total as f64 / (u64::from(m.layers) * u64::from(m.kv_heads) * n) as f64,
        q_density: q_total as f64 / (u64::from(m.layers) * u64::from(m.q_heads) * n) as f64,
        kv_bytes: kv_total * per_slot,
        dense_kv_bytes: u64::from(m.layers) * u64::from(m.kv_heads) * n * per_slot,
        upstream_kv_bytes: q_total * per_slot,
        kv_spans_over_n: over,
    }
}
