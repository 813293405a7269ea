//! Candidate rules, and what a rule costs a head at one length: the influence mass its
//! mask drops (loss) and its KV density.

#![warn(missing_docs)]

use crate::plan::{HeadWindow, Rule, SpanParams, BETA_DEN};

/// The (α, β) grid of upstream MoA (`scripts/pipeline/elastic_generate.py`).
///
/// α runs over multiples of `alpha_step` from `−min_len` to `max_profile`, β over
/// multiples of `1/beta_steps` in [0, 1]; a pair is kept iff
/// `α + β·max_profile ≤ max_profile`, `α + β·max_len ≤ max_len` and `α + β·min_len > 0`
/// (a positive span at the shortest profiled length). Dense `(0, 1)` is always included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandidateGrid {
    /// Shortest profiled length.
    pub min_len: u32,
    /// Longest profiled length.
    pub max_profile: u32,
    /// Longest length the plan must serve (densities are constrained up to here).
    pub max_len: u32,
    /// α step in tokens (upstream: 1024).
    pub alpha_step: u32,
    /// β is a multiple of `1/beta_steps` (upstream: 8); must divide [`BETA_DEN`].
    pub beta_steps: u32,
    /// Largest α kept (tokens); `None`: upstream's grid. A rule with α > 0 keeps α tokens
    /// more than β·N at every length, so it is dense at the profiled lengths up to α and
    /// becomes α/N sparse beyond them, where no profile prices the keys it then drops:
    /// with profiles at 1k and 2k, `(α = 2048, β = 0)` costs nothing in the objective and
    /// half the cache at 4k. `Some(0)` keeps the rules that scale with N only.
    pub max_alpha: Option<i32>,
    /// Smallest β kept, in `1/BETA_DEN` units (0: every step). A floor under every head's
    /// share of N: the profile's first-order cut cost prices what a window drops from
    /// the answers it was built from, and cutting heads to N/8 cost running text's
    /// language-model loss more than the uniform N/2 window (docs/CALIBRATION.md,
    /// "Perplexity"); held-out validation chooses between grids with and without it.
    pub min_beta_num: u32,
}

impl CandidateGrid {
    /// Upstream's grid for the given profiled lengths and longest served length.
    pub fn upstream(min_len: u32, max_profile: u32, max_len: u32) -> Self {
        CandidateGrid {
            min_len,
            max_profile,
            max_len,
            alpha_step: 1024,
            beta_steps: 8,
            max_alpha: None,
            min_beta_num: 0,
        }
    }

    /// The candidate rules, sorted by `α + β·max_len` (upstream's order), dense last
    /// among equals. Never empty: dense is always there.
    pub fn rules(&self) -> Vec<Rule> {
        let step = i64::from(self.alpha_step.max(1));
        let beta_steps = self.beta_steps.clamp(1, BETA_DEN);
        let (min_len, max_p, max_l) = (
            i64::from(self.min_len),
            i64::from(self.max_profile),
            i64::from(self.max_len),
        );
        let mut rules = vec![Rule {
            alpha: 0,
            beta_num: BETA_DEN,
        }];
        let mut a = -(min_len / step) * step;
        while a <= max_p {
            for b in 0..=beta_steps {
                let beta_num = b * (BETA_DEN / beta_steps);
                let Ok(alpha) = i32::try_from(a) else {
                    continue;
                };
                let r = Rule { alpha, beta_num };
                // Exact integer form of the float filter: α + β·L ≤ L etc.
                if self.max_alpha.is_none_or(|m| alpha <= m)
                    && beta_num >= self.min_beta_num
                    && r.raw_span(self.max_profile) <= max_p
                    && r.raw_span(self.max_len) <= max_l
                    && r.raw_span(self.min_len) > 0
                    && !rules.contains(&r)
                {
                    rules.push(r);
                }
            }
            a += step;
        }
        rules.sort_by_key(|r| (r.raw_span(self.max_len), r.beta_num));
        rules
    }
}

/// KV density of a rule at length N: `span(N) / N`.
pub fn rule_density(rule: Rule, n_tokens: u32, span: &SpanParams) -> f64 {
    f64::from(rule.span(n_tokens, span)) / f64::from(n_tokens.max(1))
}

/// The share of every tile's causal (query, key) pairs that one rule keeps at one length.
///
/// **Block approximation** (the optimizer and the runtime agree on the mask, only the
/// influence inside a tile is assumed uniform): the loss of a rule is
/// `Σ_tiles E[qb, kb] · (1 − kept(qb, kb) / causal(qb, kb))`, where `kept` counts, exactly,
/// the pairs `(q, k)` of the tile with `k ≤ q` that [`HeadWindow::keeps`] keeps for the
/// rule's span at N (sink inside the span, current token included, DESIGN.md §3), and
/// `causal` counts the tile's pairs with `k ≤ q` (`B²` below the diagonal, `B(B+1)/2` on
/// it). So a tile half inside the window loses half its mass.
///
/// Tiles whose key block lies past the sink depend only on the diagonal offset
/// `d = qb − kb`, so they are one number per offset (`band[d]`); key blocks that touch the
/// sink are kept per tile (`sink[qb · sink_blocks + kb]`). This makes the loss of a head
/// O(NB · (1 + sink_blocks)) per rule once its diagonal sums are known.
#[derive(Clone, Debug)]
pub struct KeptShare {
    /// `[NB]`: kept share of a tile past the sink at diagonal offset `d = qb − kb` (blocks).
    pub band: Vec<f64>,
    /// `[NB · sink_blocks]`: kept share of tile `(qb, kb)` for key blocks touching the sink, at
    /// `qb · sink_blocks + kb` (0 above the diagonal).
    pub sink: Vec<f64>,
    /// Key blocks that touch the sink: `ceil(sink_tokens / block_tokens)`, at most NB.
    pub sink_blocks: usize,
}

impl KeptShare {
    /// Kept shares of the rule whose span is `span_tokens` (sink included) with
    /// `sink_tokens` of sink, at length `n_tokens` with `block_tokens`-token tiles (NB =
    /// `n_tokens / block_tokens`, whole blocks only).
    pub fn new(span_tokens: u32, sink_tokens: u32, n_tokens: u32, block_tokens: u32) -> Self {
        let w = HeadWindow::new(span_tokens, sink_tokens);
        let b = i64::from(block_tokens);
        let nb = (n_tokens / block_tokens) as usize;
        let sink_blocks = (sink_tokens.div_ceil(block_tokens) as usize).min(nb);
        let window = i64::from(w.window);
        let full = (b * b) as f64;
        let diag = (b * (b + 1) / 2) as f64;
        // band[d]: pairs with 0 ≤ d·B + δ < window, δ = i − j ∈ (−B, B) occurring B − |δ| times.
        let band = (0..nb)
            .map(|d| {
                let base = d as i64 * b;
                let kept: i64 = (-(b - 1)..b)
                    .filter(|&delta| {
                        let dist = base + delta;
                        dist >= 0 && dist < window
                    })
                    .map(|delta| b - delta.abs())
                    .sum();
                kept as f64 / if d == 0 { diag } else { full }
            })
            .collect();
        let sink_end = i64::from(w.sink);
        let mut sink = vec![0.0; nb * sink_blocks];
        for qb in 0..nb {
            for kb in 0..sink_blocks.min(qb + 1) {
                let k0 = kb as i64 * b;
                let mut kept = 0i64;
                for q in qb as i64 * b..(qb as i64 + 1) * b {
                    // Keys of this tile the query may see at all (causal).
                    let k1 = (k0 + b).min(q + 1);
                    if k1 <= k0 {
                        continue;
                    }
                    // k < sink, plus k in the recent window [q − window + 1, q], disjoint.
                    let in_sink = (k1.min(sink_end) - k0).max(0);
                    let recent_from = (q - window + 1).max(sink_end).max(k0);
                    kept += in_sink + (k1 - recent_from).max(0);
                }
                sink[qb * sink_blocks + kb] = kept as f64 / if qb == kb { diag } else { full };
            }
        }
        KeptShare {
            band,
            sink,
            sink_blocks,
        }
    }
}

/// One head's influence at one length, folded for [`KeptShare`]: diagonal sums over the
/// key blocks past the sink, the sink tiles as they are, and the total mass.
#[derive(Clone, Debug)]
pub struct HeadInfluence {
    /// `[NB]`: summed influence of the causal tiles past the sink at each diagonal offset
    /// `d = qb − kb`.
    pub diag: Vec<f64>,
    /// `[NB · sink_blocks]`: the influence of tile `(qb, kb)` for key blocks touching the sink,
    /// at `qb · sink_blocks + kb`.
    pub sink: Vec<f64>,
    /// Influence of every causal tile (kb ≤ qb) of the head.
    pub total: f64,
}

impl HeadInfluence {
    /// `tile` is the head's `[NB, NB]` block sums; only the causal half (kb ≤ qb) counts.
    pub fn new(tile: &[f32], nb: usize, sink_blocks: usize) -> Self {
        let mut diag = vec![0.0; nb];
        let mut sink = vec![0.0; nb * sink_blocks];
        let mut total = 0.0;
        for qb in 0..nb {
            for kb in 0..=qb {
                let e = f64::from(tile[qb * nb + kb]);
                total += e;
                if kb < sink_blocks {
                    sink[qb * sink_blocks + kb] = e;
                } else {
                    diag[qb - kb] += e;
                }
            }
        }
        HeadInfluence { diag, sink, total }
    }

    /// Influence mass dropped by a mask with the given kept shares.
    pub fn loss(&self, kept: &KeptShare) -> f64 {
        let band: f64 = self.diag.iter().zip(&kept.band).map(|(e, f)| e * f).sum();
        let sink: f64 = self.sink.iter().zip(&kept.sink).map(|(e, f)| e * f).sum();
        // Rounding can leave −1e-16 for a dense rule; a loss is never negative.
        (self.total - band - sink).max(0.0)
    }
}

/// The loss of a rule for one head's `[NB, NB]` block sums at the profile's length:
/// the convenience form of [`KeptShare`] + [`HeadInfluence`].
pub fn rule_loss(
    tile: &[f32],
    n_tokens: u32,
    block_tokens: u32,
    rule: Rule,
    span: &SpanParams,
) -> f64 {
    let kept = KeptShare::new(
        rule.span(n_tokens, span),
        span.sink_tokens,
        n_tokens,
        block_tokens,
    );
    let nb = (n_tokens / block_tokens) as usize;
    HeadInfluence::new(tile, nb, kept.sink_blocks).loss(&kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SpanMode;

    /// The folded formula equals counting pairs with `HeadWindow::keeps` directly.
    #[test]
    fn kept_share_matches_token_mask() {
        let (n, b) = (256u32, 16u32);
        let nb = (n / b) as usize;
        for &(span, sink) in &[(256, 64), (100, 64), (40, 64), (96, 8), (17, 0), (130, 20)] {
            let kept = KeptShare::new(span, sink, n, b);
            let w = HeadWindow::new(span, sink);
            for qb in 0..nb {
                for kb in 0..=qb {
                    let (mut k_n, mut c_n) = (0u32, 0u32);
                    for q in qb as u64 * 16..(qb as u64 + 1) * 16 {
                        for k in kb as u64 * 16..(kb as u64 + 1) * 16 {
                            if k <= q {
                                c_n += 1;
                                k_n += u32::from(w.keeps(q, k));
                            }
                        }
                    }
                    let want = f64::from(k_n) / f64::from(c_n);
                    let got = if kb < kept.sink_blocks {
                        kept.sink[qb * kept.sink_blocks + kb]
                    } else {
                        kept.band[qb - kb]
                    };
                    assert!(
                        (got - want).abs() < 1e-12,
                        "span {span} sink {sink} tile ({qb},{kb}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn upstream_grid_has_48_rules() {
        let rules = CandidateGrid::upstream(2048, 8192, 16384).rules();
        assert_eq!(rules.len(), 48);
        assert!(rules.contains(&Rule {
            alpha: 0,
            beta_num: BETA_DEN
        }));
        assert!(rules.iter().all(|r| r.alpha > -2048));
    }

    #[test]
    fn dense_rule_loses_nothing() {
        let p = SpanParams {
            sink_tokens: 64,
            min_span_tokens: 128,
            span_round_tokens: 64,
            mode: SpanMode::Moa,
        };
        let tile: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let dense = Rule {
            alpha: 0,
            beta_num: BETA_DEN,
        };
        assert_eq!(rule_loss(&tile, 512, 64, dense, &p), 0.0);
        let sparse = Rule {
            alpha: 128,
            beta_num: 0,
        };
        assert!(rule_loss(&tile, 512, 64, sparse, &p) > 0.0);
    }
}
