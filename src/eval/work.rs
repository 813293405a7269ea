//! How much arithmetic an evaluation item is, for progress ETAs (`moa eval`): the
//! multiply-adds of its prefills and decode steps, from the model's shape and the plan's
//! spans. A unit that makes a 512-token retrieval batch and a 2048-token perplexity batch
//! comparable before either has been timed; the ETA's rates then come from measured time
//! ([`crate::profile::progress::eta_secs`]).
//!
//! Counted per layer and token: the Q, K, V and O projections and the SwiGLU MLP
//! (`hidden·(q_heads + 2·kv_heads)·head_dim + q_heads·head_dim·hidden + 3·hidden·ffn`), and
//! attention's `2·q_heads·head_dim` per attended key (scores and the weighted sum of V);
//! plus `hidden·vocab` per position whose logits are computed. Norms, RoPE and softmax are
//! left out (a few percent). A query at position `p` (0-based) attends `min(p + 1, span)`
//! keys, `span` being the plan's mean query-head span at the request's N
//! ([`crate::plan::stats::PlanStats::q_density`] · N), or N for dense.

#![warn(missing_docs)]

use crate::model::LlamaConfig;
use crate::plan::{stats::plan_stats, Plan};

/// Multiply-adds of a forward pass of one model, per token, key and logit row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForwardCost {
    /// Projections and MLP of every layer, per token.
    pub per_token: f64,
    /// Attention of every layer, per (query token, attended key).
    pub per_key: f64,
    /// The output projection, per position whose logits are computed.
    pub per_logit_row: f64,
}

/// Σ over query positions `0..len` of `min(p + 1, span)`: the keys a prefill of `len`
/// tokens attends (per head), with spans capped at `span` tokens.
pub fn attended_keys(len: f64, span: f64) -> f64 {
    let s = span.max(1.0);
    if s >= len {
        len * (len + 1.0) / 2.0
    } else {
        s * (s + 1.0) / 2.0 + (len - s) * s
    }
}

impl ForwardCost {
    /// The multiply-adds per token, key and logit row of `cfg`'s model, by the formula of the
    /// module docs.
    pub fn of(cfg: &LlamaConfig) -> ForwardCost {
        let [h, f, qh, kvh, hd, v, l] = [
            cfg.hidden_size,
            cfg.ffn_size,
            cfg.q_heads,
            cfg.kv_heads,
            cfg.head_dim,
            cfg.vocab_size,
            cfg.n_layers,
        ]
        .map(|x| x as f64);
        ForwardCost {
            per_token: l * (h * (qh + 2.0 * kvh) * hd + qh * hd * h + 3.0 * h * f),
            per_key: l * 2.0 * qh * hd,
            per_logit_row: h * v,
        }
    }

    /// A prefill of `rows` prompts of `len` tokens each, attention spans capped at `span`,
    /// with `logit_rows` positions' logits per prompt.
    pub fn prefill(&self, rows: usize, len: usize, span: f64, logit_rows: usize) -> f64 {
        let len = len as f64;
        rows as f64
            * (len * self.per_token
                + attended_keys(len, span) * self.per_key
                + logit_rows as f64 * self.per_logit_row)
    }

    /// `steps` decode steps of `rows` rows after a prompt of `from` tokens (the first step
    /// at position `from`), each with its logits.
    pub fn decode(&self, rows: usize, from: usize, steps: usize, span: f64) -> f64 {
        let (from, steps) = (from as f64, steps as f64);
        let keys = attended_keys(from + steps, span) - attended_keys(from, span);
        rows as f64 * (steps * (self.per_token + self.per_logit_row) + keys * self.per_key)
    }
}

/// The mean query-head span of `plan` at N = `n` tokens (`n` for dense, `plan = None`).
pub fn mean_span(plan: Option<&Plan>, n: u32) -> f64 {
    let n = n.max(1);
    plan.map_or(f64::from(n), |p| {
        plan_stats(p, n, 2).q_density * f64::from(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attended_keys_counts_the_causal_triangle_capped_at_the_span() {
        // 4 queries attend 1 + 2 + 3 + 4 keys; with a span of 2: 1 + 2 + 2 + 2.
        assert_eq!(attended_keys(4.0, 4.0), 10.0);
        assert_eq!(attended_keys(4.0, 100.0), 10.0);
        assert_eq!(attended_keys(4.0, 2.0), 7.0);
        assert_eq!(attended_keys(0.0, 2.0), 0.0);
    }

    #[test]
    fn decode_continues_where_the_prefill_stopped() {
        let c = ForwardCost {
            per_token: 100.0,
            per_key: 1.0,
            per_logit_row: 10.0,
        };
        // Prefilling 6 tokens = prefilling 4 then 2 decode steps, but for the logits
        // (1 row of them after the prefill, one per step after the steps).
        let whole = c.prefill(3, 6, 5.0, 0);
        let split = c.prefill(3, 4, 5.0, 0) + c.decode(3, 4, 2, 5.0) - 3.0 * 2.0 * 10.0;
        assert!((whole - split).abs() < 1e-9, "{whole} vs {split}");
    }
}
