//! Elastic rules and the one definition of which keys a head keeps.
//!
//! Everything here is integer arithmetic on tokens so that the CPU reference, the
//! cache layout and the generated kernels (which evaluate the same formula in WGSL
//! and CUDA) agree bit for bit. `docs/DESIGN.md` states the semantics in prose.

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// β is stored as a multiple of `1 / BETA_DEN`. Kernels evaluate `floor(β·N)` in
/// integers (WGSL in `u32`, CUDA in 64 bits) as `num·(N / DEN) + (num·(N % DEN)) / DEN`,
/// which never overflows a `u32` for `N < 2^32` because `num ≤ DEN = 2^12`.
pub const BETA_DEN: u32 = 4096;

/// How a rule's raw span `α + β·N` becomes the number of KV slots of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanMode {
    /// moa's own rule: `min(N, round_up(max(raw, min_span), span_round))`. The span
    /// never exceeds N, so a head never owns slots that can never fill.
    Moa,
    /// Upstream MoA's runtime (`moa_config_to_cache_config` in thu-nics/MoA):
    /// `round_up(max(min(raw, N), min_span), span_round)`, which can exceed N.
    Upstream,
}

impl SpanMode {
    /// `moa` or `upstream`, as the plan's `span.mode` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanMode::Moa => "moa",
            SpanMode::Upstream => "upstream",
        }
    }
}

/// Constants that turn a rule into a span. All in tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanParams {
    /// The first `sink_tokens` tokens of the sequence are always kept (inside the span).
    pub sink_tokens: u32,
    /// The smallest span any head gets.
    pub min_span_tokens: u32,
    /// Spans are rounded up to a multiple of this (the plan's block size).
    pub span_round_tokens: u32,
    /// How the raw span is clamped and rounded (docs/DESIGN.md §2).
    pub mode: SpanMode,
}

/// One elastic rule: the head keeps `S(N) = α + β·N` tokens (sink included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// α in tokens (may be negative, as in upstream plans).
    pub alpha: i32,
    /// β as a multiple of `1 / BETA_DEN`, in `[0, BETA_DEN]`.
    pub beta_num: u32,
}

impl Rule {
    /// β as a fraction of N, `beta_num / BETA_DEN`, in [0, 1] (exact: a multiple of 2^-12).
    pub fn beta(&self) -> f64 {
        f64::from(self.beta_num) / f64::from(BETA_DEN)
    }

    /// `α + floor(β·N)`, computed exactly as the kernels do.
    pub fn raw_span(&self, n_tokens: u32) -> i64 {
        let q = n_tokens / BETA_DEN;
        let r = n_tokens % BETA_DEN;
        let beta_n = u64::from(self.beta_num) * u64::from(q)
            + (u64::from(self.beta_num) * u64::from(r)) / u64::from(BETA_DEN);
        i64::from(self.alpha) + beta_n as i64
    }

    /// Number of KV slots (sink included) of a head with this rule at sequence length N.
    pub fn span(&self, n_tokens: u32, p: &SpanParams) -> u32 {
        let raw = self.raw_span(n_tokens);
        let n = i64::from(n_tokens);
        let min = i64::from(p.min_span_tokens);
        let round = i64::from(p.span_round_tokens.max(1));
        let round_up = |x: i64| (x + round - 1) / round * round;
        let s = match p.mode {
            SpanMode::Moa => round_up(raw.max(min)).min(n),
            SpanMode::Upstream => round_up(raw.min(n).max(min)),
        };
        // Both branches are ≥ 0: `min` ≥ 1 is guaranteed by plan validation and N ≥ 1.
        u32::try_from(s.max(0)).unwrap_or(u32::MAX)
    }
}

/// The resolved mask of one query head at one N: which keys a query sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadWindow {
    /// Total span S (sink included).
    pub span: u32,
    /// Sink tokens this head keeps: `min(S, sink_tokens)`.
    pub sink: u32,
    /// Most recent tokens this head keeps, the current token included: `S − sink`.
    pub window: u32,
}

impl HeadWindow {
    /// The window of a head with `span` slots (its [`Rule::span`] at N) when the plan
    /// keeps `sink_tokens` sink tokens: the sink is `min(span, sink_tokens)`, the rest is
    /// the recent window (docs/DESIGN.md §3).
    pub fn new(span: u32, sink_tokens: u32) -> Self {
        let sink = span.min(sink_tokens);
        HeadWindow {
            span,
            sink,
            window: span - sink,
        }
    }

    /// The single source of truth for the mask: does a query at absolute position
    /// `q_pos` attend to the key at absolute position `k_pos`?
    pub fn keeps(&self, q_pos: u64, k_pos: u64) -> bool {
        k_pos <= q_pos && (k_pos < u64::from(self.sink) || q_pos - k_pos < u64::from(self.window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: SpanParams = SpanParams {
        sink_tokens: 64,
        min_span_tokens: 128,
        span_round_tokens: 64,
        mode: SpanMode::Upstream,
    };

    fn rule(alpha: i32, beta: f64) -> Rule {
        Rule {
            alpha,
            beta_num: (beta * f64::from(BETA_DEN)) as u32,
        }
    }

    #[test]
    fn upstream_span_matches_python_formula() {
        // int(α + β·N'); min(S, N'); ceil(max(S,128)/64)·64
        for &(a, b, n, want) in &[
            (0, 0.5, 9216, 4608),
            (-1024, 0.875, 9216, 7040),
            (1024, 0.0, 9216, 1024),
            (0, 0.125, 1100, 192), // 137 -> 192
            (0, 1.0, 1100, 1152),  // clamped to N then rounded up past N
            (-1024, 0.125, 2048, 128),
        ] {
            assert_eq!(
                rule(a, b).span(n, &UPSTREAM),
                want,
                "alpha {a} beta {b} N {n}"
            );
        }
    }

    #[test]
    fn moa_span_never_exceeds_n() {
        let p = SpanParams {
            mode: SpanMode::Moa,
            ..UPSTREAM
        };
        assert_eq!(rule(0, 1.0).span(1100, &p), 1100);
        assert_eq!(rule(0, 0.0).span(100, &p), 100);
        assert_eq!(rule(0, 0.125).span(1100, &p), 192);
    }

    #[test]
    fn window_counts_sink_and_current_token() {
        let w = HeadWindow::new(6, 2);
        let seen: Vec<u64> = (0..=10).filter(|&k| w.keeps(10, k)).collect();
        assert_eq!(seen, vec![0, 1, 7, 8, 9, 10]);
        // span smaller than the sink: only the first `span` tokens
        let w = HeadWindow::new(3, 8);
        let seen: Vec<u64> = (0..=10).filter(|&k| w.keeps(10, k)).collect();
        assert_eq!(seen, vec![0, 1, 2]);
    }

    #[test]
    fn raw_span_is_exact_for_large_n() {
        let r = Rule {
            alpha: -7,
            beta_num: 4095,
        };
        let n = 4_000_000_001u32;
        let exact = (-7i128 + (4095i128 * i128::from(n)) / 4096) as i64;
        assert_eq!(r.raw_span(n), exact);
    }

    /// docs/DESIGN.md §1: the generated kernels evaluate floor(β·N) as
    /// `num·(N / 4096) + (num·(N % 4096)) / 4096` (templates/wgsl/span.wgsl.j2 in `u32`,
    /// templates/cuda/layer.cu.j2 in 64 bits), which must equal the CPU's [`Rule::raw_span`]
    /// for every β numerator and N: in `u32` neither product can overflow
    /// (num ≤ 4096, so num·(N / 4096) ≤ N and num·(N % 4096) < 2^24).
    #[test]
    fn the_kernels_split_beta_formula_is_exact_in_u32() {
        let wgsl = |num: u32, n: u32| -> u32 {
            let q = n / BETA_DEN;
            let r = n % BETA_DEN;
            let a = num.checked_mul(q).unwrap();
            a.checked_add(num.checked_mul(r).unwrap() / BETA_DEN)
                .unwrap()
        };
        let ns = (0..=20_000u32).chain((0..32).map(|b| 1u32 << b)).chain([
            4095,
            4097,
            8191,
            1 << 20,
            (1 << 24) - 1,
            u32::MAX - 1,
            u32::MAX,
        ]);
        for n in ns {
            for num in (0..=BETA_DEN).step_by(97).chain([1, 2047, 4095, BETA_DEN]) {
                let exact = (u64::from(num) * u64::from(n)) / u64::from(BETA_DEN);
                assert_eq!(u64::from(wgsl(num, n)), exact, "num {num} N {n}");
                let r = Rule {
                    alpha: 0,
                    beta_num: num,
                };
                assert_eq!(r.raw_span(n), exact as i64, "num {num} N {n}");
            }
        }
    }
}
