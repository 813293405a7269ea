//! The plan optimizer: from influence profiles to per-head rules (issue #4 part 3).
//!
//! 1. [`CandidateGrid`]: upstream's (α, β) grid (`scripts/pipeline/elastic_generate.py`), dense always included.
//! 2. Cost of a rule for a head at a profiled length N: the influence mass its mask
//!    drops, at block granularity but with moa's token-exact mask ([`KeptShare`]);
//!    density of a rule at N: `span(N) / N`.
//! 3. An [`Instance`] per objective: one rule per unit (query head, or KV-head group
//!    with `gqa_native`), at most K distinct rules per layer, the mean KV density inside
//!    a band at every profiled length and at the extra lengths. Solved by the MILP
//!    (good_lp + microlp) when small, by the Lagrangian path otherwise ([`solve`]);
//!    every solve has a gap and a time limit and reports its status.
//! 4. A single objective (loss at one length) or upstream's ε-constraint method over the
//!    profiled lengths (payoff table, grid of upper bounds on the other losses, Pareto
//!    filter). Each kept assignment becomes a [`Plan`] with its provenance in `meta`.

#![warn(missing_docs)]

pub mod cost;
mod lagrange;
mod milp;
pub mod problem;

use std::time::{Duration, Instant};

pub use cost::{rule_density, rule_loss, CandidateGrid, HeadInfluence, KeptShare};
pub use lagrange::layer_bound_is_exact;
pub use problem::{
    solve, Assignment, Instance, Method, Row, SolveOptions, SolveStatus, AUTO_MILP_MAX_VARS,
    ROW_TOLERANCE,
};

use crate::plan::{
    HeadWindow, LayerRules, Meta, ModelShape, Plan, PlanError, Rule, SpanSection, BETA_DEN,
};
use crate::profile::influence::cut_loss;
use crate::profile::{InfluenceProfile, ProfileFileError};

/// Every failure of [`optimize`]: bad inputs, an infeasible band, a solver error.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// An influence profile that cannot be read.
    #[error(transparent)]
    Profile(#[from] ProfileFileError),
    /// Profiles of different model shapes, lengths or block sizes, or a profile (or near
    /// plan) not of the expected shape; the message names both sides.
    #[error("model shape mismatch: {0}")]
    ShapeMismatch(String),
    /// No assignment meets the density band and the per-layer rule limit (or an ε bound); the
    /// message names the rows or the length.
    #[error("infeasible: {0}")]
    Infeasible(String),
    /// Settings out of range (an empty band, no profiles, a zero rule limit, a bad instance).
    #[error("invalid optimizer settings: {0}")]
    InvalidConfig(String),
    /// The MILP solver (microlp) failed for another reason than infeasibility.
    #[error("solver failed: {0}")]
    Solver(String),
    /// The span section or a produced plan does not validate.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Longest extra length accepted, in tokens (a plan's `max_context_tokens` limit).
pub const MAX_LENGTH: u32 = 1 << 30;

/// What to minimise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Objective {
    /// The summed loss at this profiled length.
    Single {
        /// The profiled length N, in tokens.
        n_tokens: u32,
    },
    /// The loss summed over these profiled lengths (each the mean first-order loss change
    /// of its samples, so the sum is the expected loss of requests spread evenly over the
    /// lengths): one solve. A plan for every one of several lengths, where a single
    /// length's profile prices only the keys at that length's distances
    /// (docs/CALIBRATION.md, "The 25% plan, session 9").
    Sum {
        /// The profiled lengths N, in tokens.
        n_tokens: Vec<u32>,
    },
    /// ε-constraint over all profiled lengths: each range of the payoff table is cut into
    /// `intervals` steps (upstream: 4).
    Pareto {
        /// Steps per payoff-table range (0 is taken as 1).
        intervals: usize,
    },
}

/// The span section a plan for a model of `context` tokens is written with: `span` as
/// given, except a `max_new_tokens` that leaves no prompt token in the context (the
/// default 1024 on a test model of 512 or 1024 tokens), which becomes half the context,
/// with a note saying so. Round 24: `moa pipeline` on a 512-token model wrote a plan that
/// `moa-compile` then refused (`span.max_new_tokens` = 1024, allowed 0..=511). The rules
/// do not depend on it: it is the N the plan's compiled kernels are checked against.
pub fn span_for_context(span: &SpanSection, context: u32) -> (SpanSection, String) {
    let mut span = span.clone();
    if span.max_new_tokens < context {
        return (span, String::new());
    }
    let was = span.max_new_tokens;
    span.max_new_tokens = context / 2;
    let note = format!(
        "; span.max_new_tokens {was} left no prompt token in the model's context of \
         {context} tokens: written as {} (half the context)",
        span.max_new_tokens
    );
    (span, note)
}

/// Settings of one [`optimize`] run: span map, density band, rule limit, objective, solver.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeConfig {
    /// The plan's span section (sink, min span, rounding, mode): the rule → span map.
    pub span: SpanSection,
    /// Expected model shape (e.g. from `--plan-shape`); profiles must match it.
    pub model: Option<ModelShape>,
    /// Mean KV density must lie in `[lo, hi]` at every constrained length.
    pub density_band: (f64, f64),
    /// Density-only lengths beyond the profiled ones (e.g. 2× the longest).
    pub extra_lengths: Vec<u32>,
    /// At most this many distinct rules in a layer (≥ 1; upstream's `--num_plan_limit`: 2,
    /// `MoA/universal/optimizer.py`).
    pub max_rules_per_layer: usize,
    /// One rule per KV-head group: loss summed over the group's query heads, density
    /// counted per KV head (the runtime cache is then exactly the constrained density).
    pub gqa_native: bool,
    /// What to minimise.
    pub objective: Objective,
    /// Candidate grid; `None`: upstream's grid for the profiled and extra lengths.
    pub grid: Option<CandidateGrid>,
    /// `time_limit` is the budget of the whole run, shared among the ε solves.
    pub solve: SolveOptions,
    /// Stay near a plan: a trust region for re-optimising from profiles taken under that
    /// plan ([`Near`]); `None`: no such bound.
    pub near: Option<Near>,
}

/// At most `max_changes` units (KV groups with `gqa_native`, else query heads) take a
/// rule other than `plan`'s. A cost taken under a plan (`moa profile --under-plan`)
/// prices each head's move away from that plan with the others kept at it, so it is good
/// for a few moves at a time; an unbounded re-optimisation moved 27–40 of 90 groups at
/// once and swung between plans (docs/CALIBRATION.md, "Cost under the plan"). One linear
/// row, `Σ_u [rule(u) ≠ plan's] ≤ max_changes`, beside the density rows. `plan` must have
/// the model's shape, one rule per unit, and its rules among the candidates.
#[derive(Clone, Debug, PartialEq)]
pub struct Near {
    /// The plan to stay near (usually the one the profiles were taken under).
    pub plan: Plan,
    /// Units that may take a rule other than `plan`'s.
    pub max_changes: usize,
}

impl Default for OptimizeConfig {
    fn default() -> Self {
        OptimizeConfig {
            span: SpanSection::default(),
            model: None,
            density_band: (0.45, 0.5),
            extra_lengths: Vec::new(),
            max_rules_per_layer: 2,
            gqa_native: false,
            objective: Objective::Pareto { intervals: 4 },
            grid: None,
            solve: SolveOptions::default(),
            near: None,
        }
    }
}

/// Checks that the density band can be met at every constrained length (the profiled
/// `lengths`, sorted, and `cfg.extra_lengths`) by the candidate rules: their KV densities
/// there depend on N, the span constants and the grid, not on the profiles, so `moa
/// pipeline` checks this before its calibration (a band below the sinks' reach failed
/// only after the calibration and profiling, half an hour on SmolLM2). `Infeasible`
/// names the length, the reach and the span constants.
pub fn check_density_reach(cfg: &OptimizeConfig, lengths: &[u32]) -> Result<(), OptimizeError> {
    let (Some(&first), Some(&last)) = (lengths.first(), lengths.last()) else {
        return Ok(());
    };
    let (lo, hi) = cfg.density_band;
    let mut constrained = lengths.to_vec();
    constrained.extend(cfg.extra_lengths.iter().copied());
    constrained.sort_unstable();
    constrained.dedup();
    let max_len = constrained.last().copied().unwrap_or(1);
    let grid = cfg
        .grid
        .unwrap_or_else(|| CandidateGrid::upstream(first, last, max_len));
    let rules = grid.rules();
    let sp = cfg.span.params();
    for &n in &constrained {
        let (dmin, dmax) = rules
            .iter()
            .map(|r| rule_density(*r, n, &sp))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if hi < dmin - ROW_TOLERANCE || lo > dmax + ROW_TOLERANCE {
            let num = crate::plan::compact_number;
            // A length only the extra lengths ask for is named as such (round 46: `moa
            // optimize --extra-length 100` read as if a profile were at fault).
            let (which, longer) = if lengths.contains(&n) {
                ("", "profile longer lengths")
            } else {
                (
                    " (an extra constrained length, `--extra-length`, not a profiled one)",
                    "give a longer extra length or none",
                )
            };
            return Err(OptimizeError::Infeasible(format!(
                "density band [{}, {}] cannot be met at N = {n}{which}: the candidate rules give \
                 a KV density between {dmin:.4} and {dmax:.4} there (sink {} tokens, min span {} \
                 tokens, rounding {}): ask for a density in that range, or {longer} (a short N \
                 leaves the sink and the least span a larger share)",
                num(lo),
                num(hi),
                sp.sink_tokens,
                sp.min_span_tokens,
                sp.span_round_tokens
            )));
        }
    }
    Ok(())
}

impl OptimizeConfig {
    /// Checks the settings that do not depend on the profiles: the density band, the
    /// MIP gap (finite, in [0, 1]), the extra lengths (1..=[`MAX_LENGTH`]) and the rule
    /// budget. Errors are `InvalidConfig` naming the setting and its allowed range.
    pub fn validate(&self) -> Result<(), OptimizeError> {
        let cfg = self;
        let (lo, hi) = cfg.density_band;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi && hi <= 1.0) {
            return Err(OptimizeError::InvalidConfig(format!(
                "density band [{}, {}] must satisfy 0 ≤ lo ≤ hi ≤ 1",
                crate::plan::compact_number(lo),
                crate::plan::compact_number(hi)
            )));
        }
        let gap = cfg.solve.mip_gap;
        if !(gap.is_finite() && (0.0..=1.0).contains(&gap)) {
            return Err(OptimizeError::InvalidConfig(format!(
                "mip_gap = {} is out of range: a relative optimality gap is in [0, 1]",
                crate::plan::compact_number(gap)
            )));
        }
        if let Some(&n) = cfg
            .extra_lengths
            .iter()
            .find(|&&n| n == 0 || n > MAX_LENGTH)
        {
            return Err(OptimizeError::InvalidConfig(format!(
                "extra length {n} is out of range: allowed 1..={MAX_LENGTH} tokens"
            )));
        }
        if cfg.max_rules_per_layer == 0 {
            return Err(OptimizeError::InvalidConfig(
                "max rules per layer must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One produced plan and the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizedPlan {
    /// The plan, with its provenance (objective, lengths, band, solver) in `meta`.
    pub plan: Plan,
    /// `(N, dropped influence)` at every profiled length.
    pub losses: Vec<(u32, f64)>,
    /// `(N, constrained mean KV density)` at every constrained length.
    pub densities: Vec<(u32, f64)>,
    /// `(N, runtime KV-cache density)`: per KV head the largest span of its query heads
    /// (DESIGN.md §4); equals `densities` with `gqa_native` or MHA.
    pub cache_densities: Vec<(u32, f64)>,
    /// The length whose loss was minimised in this solve (with [`Objective::Sum`], the
    /// shortest of its lengths).
    pub primary: u32,
    /// Every length whose loss entered the minimised sum (`[primary]` but with
    /// [`Objective::Sum`]).
    pub objective_lengths: Vec<u32>,
    /// How this plan's solve ended.
    pub status: SolveStatus,
    /// The solve's relative optimality gap, where known ([`Assignment::gap`]).
    pub gap: Option<f64>,
    /// A proven lower bound on the minimised loss, where the method gives one.
    pub lower_bound: Option<f64>,
    /// The method that solved it (MILP or Lagrangian).
    pub method: Method,
    /// Wall-clock time of this plan's solve, in seconds.
    pub seconds: f64,
}

/// Everything one [`optimize`] run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeResult {
    /// Pareto-optimal plans (one for a single objective), by increasing primary loss.
    pub plans: Vec<OptimizedPlan>,
    /// The candidate rules, in grid order (an [`Assignment`]'s rule index points here).
    pub rules: Vec<Rule>,
    /// The profiled lengths N, in tokens, sorted.
    pub profiled_lengths: Vec<u32>,
    /// The lengths whose mean KV density the band constrains: the profiled and the extra
    /// ones, in tokens, sorted.
    pub constrained_lengths: Vec<u32>,
    /// Solves run (payoff table and ε points).
    pub solves: usize,
    /// ε points that gave no plan, and why (infeasible box, budget spent).
    pub skipped: Vec<String>,
    /// Solved points dropped by the Pareto filter: another point's losses are no larger
    /// at every profiled length and smaller at one.
    pub dominated: usize,
    /// Solved points dropped as repeats of a kept plan (the same rule per unit, or the
    /// same losses at every profiled length); with `dominated` and `plans`, every solve
    /// that found a plan is accounted for.
    pub duplicates: usize,
    /// Per profiled length with cut influence, `(N, negative, total)`: how many of the
    /// (query head, candidate rule) cut influences were below 0 and so cost 0 (a mask
    /// that lowers the loss to first order is not a gain the solver may spend). A plan
    /// whose loss is 0 at N chose only such rules there; [`zero_loss_note`] says so.
    pub negative_cuts: Vec<(u32, usize, usize)>,
    /// Wall-clock time of the whole run, in seconds.
    pub seconds: f64,
}

/// Why `plan`'s loss is 0 at some profiled length, when it is: every head's chosen rule
/// has a negative first-order cut influence there, and a cost is never below 0. `None`
/// when no loss is 0 or the zeros are not from negative cut influence.
pub fn zero_loss_note(result: &OptimizeResult, plan: &OptimizedPlan) -> Option<String> {
    let zeros: Vec<String> = plan
        .losses
        .iter()
        .filter(|(_, loss)| *loss == 0.0)
        .filter_map(|(n, _)| {
            let (_, neg, total) = result.negative_cuts.iter().find(|c| c.0 == *n)?;
            (*neg > 0).then(|| format!("N = {n} ({neg} of {total} head-rule cut influences < 0)"))
        })
        .collect();
    (!zeros.is_empty()).then(|| {
        format!(
            "loss 0 at {}: not a bug; removing the keys past each chosen window lowers the \
             loss to first order there (signed cut influence < 0, common on tiny or random \
             models), and a rule's cost is its cut influence clamped at 0, so plans are told \
             apart by density alone at that length",
            zeros.join(", ")
        )
    })
}

fn shape_str(m: &ModelShape) -> String {
    format!(
        "layers={} q_heads={} kv_heads={} head_dim={}",
        m.layers, m.q_heads, m.kv_heads, m.head_dim
    )
}

fn same_shape(a: &ModelShape, b: &ModelShape) -> bool {
    (a.layers, a.q_heads, a.kv_heads, a.head_dim) == (b.layers, b.q_heads, b.kv_heads, b.head_dim)
}

/// Everything derived from the profiles once: rules, per-unit costs at each profiled
/// length, density rows.
struct Prepared {
    model: ModelShape,
    rules: Vec<Rule>,
    lengths: Vec<u32>,
    constrained: Vec<u32>,
    layer_of: Vec<usize>,
    /// `costs[p][u·R + c]`.
    costs: Vec<Vec<f64>>,
    density_rows: Vec<Row>,
    /// The trust-region row of [`Near`], if any.
    near: Option<Row>,
    /// Profile labels in `lengths` order.
    sources: Vec<String>,
    /// Every profile's cost was its cut influence (else some used per-entry tiles).
    cut_costs: bool,
    /// `(N, negative, total)` per profile that used cut influence.
    negative_cuts: Vec<(u32, usize, usize)>,
}

fn prepare(
    profiles: &[InfluenceProfile],
    names: &[String],
    cfg: &OptimizeConfig,
) -> Result<Prepared, OptimizeError> {
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("profile #{i}"))
    };
    let first = profiles
        .first()
        .ok_or_else(|| OptimizeError::InvalidConfig("no influence profile given".into()))?;
    let model = cfg.model.clone().unwrap_or_else(|| first.model.clone());
    for (i, p) in profiles.iter().enumerate() {
        if !same_shape(&p.model, &model) {
            let against = if cfg.model.is_some() {
                "the plan shape".to_string()
            } else {
                format!("`{}`", name(0))
            };
            return Err(OptimizeError::ShapeMismatch(format!(
                "`{}` is for {} but {against} is {}",
                name(i),
                shape_str(&p.model),
                shape_str(&model)
            )));
        }
        if p.block_tokens != first.block_tokens {
            return Err(OptimizeError::ShapeMismatch(format!(
                "`{}` has block_tokens = {} but `{}` has {}",
                name(i),
                p.block_tokens,
                name(0),
                first.block_tokens
            )));
        }
        if let Some(j) = profiles[..i].iter().position(|q| q.n_tokens == p.n_tokens) {
            return Err(OptimizeError::InvalidConfig(format!(
                "`{}` and `{}` are both profiled at N = {}",
                name(j),
                name(i),
                p.n_tokens
            )));
        }
    }
    cfg.validate()?;
    let (lo, hi) = cfg.density_band;
    let mut order: Vec<usize> = (0..profiles.len()).collect();
    order.sort_by_key(|&i| profiles[i].n_tokens);
    let lengths: Vec<u32> = order.iter().map(|&i| profiles[i].n_tokens).collect();
    let mut constrained = lengths.clone();
    constrained.extend(cfg.extra_lengths.iter().copied());
    constrained.sort_unstable();
    constrained.dedup();
    let max_len = constrained.last().copied().unwrap_or(1);
    let grid = cfg.grid.unwrap_or_else(|| {
        CandidateGrid::upstream(lengths[0], lengths[lengths.len() - 1], max_len)
    });
    let rules = grid.rules();
    let nr = rules.len();
    let sp = cfg.span.params();

    let (layers, q_heads) = (model.layers as usize, model.q_heads as usize);
    let group = if cfg.gqa_native {
        model.group_size() as usize
    } else {
        1
    };
    let units_per_layer = q_heads / group;
    let nu = layers * units_per_layer;
    let layer_of: Vec<usize> = (0..nu).map(|u| u / units_per_layer).collect();

    let mut costs = Vec::with_capacity(order.len());
    let mut cut_costs = true;
    let mut negative_cuts = Vec::new();
    for &i in &order {
        let p = &profiles[i];
        let nb = p.n_blocks();
        let kept: Vec<KeptShare> = rules
            .iter()
            .map(|r| {
                KeptShare::new(
                    r.span(p.n_tokens, &sp),
                    sp.sink_tokens,
                    p.n_tokens,
                    p.block_tokens,
                )
            })
            .collect();
        let sink_blocks = kept[0].sink_blocks;
        // Cut influence, when profiled for this sink: the first-order loss of removing
        // everything past each window at once (profile::influence::add_head_cuts).
        let windows: Vec<u32> = rules
            .iter()
            .map(|r| HeadWindow::new(r.span(p.n_tokens, &sp), sp.sink_tokens).window)
            .collect();
        let use_cuts = match &p.cuts {
            Some(c) if c.sink_tokens == sp.sink_tokens => true,
            Some(c) => {
                return Err(OptimizeError::InvalidConfig(format!(
                    "`{}` has cut influence for a {}-token sink but the plan's span.sink_tokens is {}: allowed a plan of the profile's sink (`moa profile` takes the cut influence for the default {}-token sink only, so no profile of another sink can be made)",
                    name(i),
                    c.sink_tokens,
                    sp.sink_tokens,
                    crate::profile::cut_sink_tokens()
                )))
            }
            None => false,
        };
        cut_costs &= use_cuts;
        let (mut negative, mut total) = (0usize, 0usize);
        let mut cost = vec![0.0; nu * nr];
        for l in 0..layers {
            for h in 0..q_heads {
                let u = l * units_per_layer + h / group;
                if let (true, Some(cuts)) = (use_cuts, p.head_cuts(l, h)) {
                    let mut col = vec![0.0f64; nb];
                    for qb in 0..nb {
                        for (d, c) in col.iter_mut().enumerate() {
                            *c += f64::from(cuts[qb * nb + d]);
                        }
                    }
                    // The expected first-order change, signed over rows and samples; a
                    // mask that helps to first order costs 0 (a loss is never negative).
                    for (c, &w) in windows.iter().enumerate() {
                        let loss = cut_loss(&col, w, p.block_tokens);
                        negative += usize::from(loss < 0.0);
                        total += 1;
                        cost[u * nr + c] += loss.max(0.0);
                    }
                } else {
                    let head = HeadInfluence::new(p.head(l, h), nb, sink_blocks);
                    for (c, k) in kept.iter().enumerate() {
                        cost[u * nr + c] += head.loss(k);
                    }
                }
            }
        }
        costs.push(cost);
        if use_cuts {
            negative_cuts.push((p.n_tokens, negative, total));
        }
    }

    check_density_reach(cfg, &lengths)?;
    let mut density_rows = Vec::with_capacity(constrained.len());
    for &n in &constrained {
        let d: Vec<f64> = rules.iter().map(|r| rule_density(*r, n, &sp)).collect();
        let mut coef = vec![0.0; nu * nr];
        for u in 0..nu {
            for c in 0..nr {
                coef[u * nr + c] = d[c] / nu as f64;
            }
        }
        density_rows.push(Row {
            name: format!("density@{n}"),
            coef,
            lo,
            hi,
        });
    }
    // A profile taken under a plan (`moa profile --under-plan`) says so in the provenance.
    let near = match &cfg.near {
        Some(n) => Some(near_row(n, &model, &rules, group, units_per_layer)?),
        None => None,
    };
    let sources = order
        .iter()
        .map(|&i| match &profiles[i].under_plan {
            Some(u) => format!("{} [taken under {u}]", name(i)),
            None => name(i),
        })
        .collect();
    Ok(Prepared {
        cut_costs,
        negative_cuts,
        sources,
        model,
        rules,
        lengths,
        constrained,
        layer_of,
        costs,
        density_rows,
        near,
    })
}

/// The trust-region row of [`Near`]: coefficient 1 for every rule of a unit but the near
/// plan's, at most `max_changes`.
fn near_row(
    near: &Near,
    model: &ModelShape,
    rules: &[Rule],
    group: usize,
    units_per_layer: usize,
) -> Result<Row, OptimizeError> {
    let pm = near.plan.model();
    if !same_shape(pm, model) {
        return Err(OptimizeError::ShapeMismatch(format!(
            "the near plan is for {} but the profiles are for {}",
            shape_str(pm),
            shape_str(model)
        )));
    }
    let nr = rules.len();
    let layers = near.plan.layers();
    let mut coef = vec![1.0; layers.len() * units_per_layer * nr];
    for (l, layer) in layers.iter().enumerate() {
        for k in 0..units_per_layer {
            let heads = &layer.rules[k * group..(k + 1) * group];
            let r = heads[0];
            if heads.iter().any(|&x| x != r) {
                return Err(OptimizeError::InvalidConfig(format!(
                    "the near plan gives the query heads of layer {l}, unit {k} different rules: with one rule per KV group (--gqa-native) they must agree"
                )));
            }
            let c = rules.iter().position(|&x| x == r).ok_or_else(|| {
                OptimizeError::InvalidConfig(format!(
                    "the near plan's rule of layer {l}, unit {k} (alpha {}, beta {}/{BETA_DEN}) is not a candidate rule: optimise with the grid it was made with (--max-alpha, --min-beta, the profiled lengths)",
                    r.alpha, r.beta_num
                ))
            })?;
            coef[(l * units_per_layer + k) * nr + c] = 0.0;
        }
    }
    Ok(Row {
        name: "changes from the near plan".into(),
        coef,
        lo: f64::NEG_INFINITY,
        hi: near.max_changes as f64,
    })
}

/// Runs the optimizer. `names` label the profiles in errors and provenance (may be
/// empty). The whole run respects `cfg.solve.time_limit`.
pub fn optimize(
    profiles: &[InfluenceProfile],
    names: &[String],
    cfg: &OptimizeConfig,
) -> Result<OptimizeResult, OptimizeError> {
    let start = Instant::now();
    let prep = prepare(profiles, names, cfg)?;
    let np = prep.lengths.len();
    let base = Instance {
        rules: prep.rules.len(),
        layer_of: prep.layer_of.clone(),
        cost: Vec::new(),
        rows: prep
            .density_rows
            .iter()
            .chain(&prep.near)
            .cloned()
            .collect(),
        max_rules_per_layer: cfg.max_rules_per_layer,
    };
    let budget = cfg.solve.time_limit;
    // Round 24: `--pareto-intervals 4294967296` made `solves_left as u32` zero (a panic,
    // "divide by zero error when dividing duration by scalar"); past u32::MAX solves each
    // gets the share of u32::MAX, and the loop below stops when the budget is spent.
    let left = |solves_left: usize| -> Duration {
        budget.saturating_sub(start.elapsed())
            / u32::try_from(solves_left.max(1)).unwrap_or(u32::MAX)
    };
    let mut solves = 0usize;
    let mut skipped = Vec::new();
    // (indices of the lengths whose summed loss was minimised, assignment)
    let mut found: Vec<(Vec<usize>, Assignment)> = Vec::new();

    let index_of = |n_tokens: u32| {
        prep.lengths
            .iter()
            .position(|&n| n == n_tokens)
            .ok_or_else(|| {
                OptimizeError::InvalidConfig(format!(
                    "objective length N = {n_tokens} is not a profiled length ({:?})",
                    prep.lengths
                ))
            })
    };
    let primaries: Vec<Vec<usize>> = match &cfg.objective {
        Objective::Single { n_tokens } => vec![vec![index_of(*n_tokens)?]],
        Objective::Sum { n_tokens } => {
            let mut set = n_tokens
                .iter()
                .map(|&n| index_of(n))
                .collect::<Result<Vec<_>, _>>()?;
            set.sort_unstable();
            set.dedup();
            if set.is_empty() {
                return Err(OptimizeError::InvalidConfig(
                    "a summed objective needs at least one profiled length".into(),
                ));
            }
            vec![set]
        }
        Objective::Pareto { .. } => (0..np).map(|i| vec![i]).collect(),
    };
    let intervals = match cfg.objective {
        Objective::Pareto { intervals } if np > 1 => intervals.max(1),
        _ => 0,
    };
    let summed_cost = |set: &[usize]| -> Vec<f64> {
        let mut c = prep.costs[set[0]].clone();
        for &m in &set[1..] {
            for (a, b) in c.iter_mut().zip(&prep.costs[m]) {
                *a += b;
            }
        }
        c
    };
    let eps_points = if intervals > 0 {
        u32::try_from(np - 1)
            .ok()
            .and_then(|e| intervals.checked_pow(e))
            .unwrap_or(usize::MAX)
    } else {
        0
    };
    let total_solves = primaries.len().saturating_mul(eps_points.saturating_add(1));

    // Payoff table (or the single solve).
    for (k, set) in primaries.iter().enumerate() {
        let inst = Instance {
            cost: summed_cost(set),
            ..base.clone()
        };
        let opts = SolveOptions {
            time_limit: left(total_solves - k),
            ..cfg.solve
        };
        solves += 1;
        found.push((set.clone(), solve(&inst, &opts)?));
    }
    if intervals > 0 {
        let value = |p: usize, a: &Assignment| -> f64 {
            a.rule_of_unit
                .iter()
                .enumerate()
                .map(|(u, &c)| prep.costs[p][u * base.rules + c])
                .sum()
        };
        let range: Vec<(f64, f64)> = (0..np)
            .map(|m| {
                let vals: Vec<f64> = found.iter().map(|(_, a)| value(m, a)).collect();
                let lo = value(m, &found[m].1);
                (lo, vals.iter().copied().fold(lo, f64::max))
            })
            .collect();
        'outer: for p in 0..np {
            let others: Vec<usize> = (0..np).filter(|&m| m != p).collect();
            for combo in 0..eps_points {
                let done = solves;
                if start.elapsed() >= budget {
                    skipped.push(format!(
                        "{} ε points not solved: the time budget of {:.0} s is spent",
                        total_solves - done,
                        budget.as_secs_f64()
                    ));
                    break 'outer;
                }
                let mut rows: Vec<Row> = prep
                    .density_rows
                    .iter()
                    .chain(&prep.near)
                    .cloned()
                    .collect();
                let mut idx = combo;
                let mut label = Vec::new();
                for &m in &others {
                    let j = idx % intervals + 1;
                    idx /= intervals;
                    let (lo, hi) = range[m];
                    let bound = lo + (hi - lo) * j as f64 / intervals as f64;
                    label.push(format!("loss@{} ≤ {bound:.6}", prep.lengths[m]));
                    rows.push(Row {
                        name: format!("loss@{}", prep.lengths[m]),
                        coef: prep.costs[m].clone(),
                        lo: f64::NEG_INFINITY,
                        hi: bound,
                    });
                }
                let inst = Instance {
                    cost: prep.costs[p].clone(),
                    rows,
                    ..base.clone()
                };
                let opts = SolveOptions {
                    time_limit: left(total_solves - done),
                    ..cfg.solve
                };
                solves += 1;
                match solve(&inst, &opts) {
                    Ok(a) => found.push((vec![p], a)),
                    Err(OptimizeError::Infeasible(why)) => skipped.push(format!(
                        "min loss@{} with {}: {why}",
                        prep.lengths[p],
                        label.join(", ")
                    )),
                    Err(e) => return Err(e),
                }
            }
        }
    }

    // Loss vectors, duplicate removal, Pareto filter.
    let losses_of = |a: &Assignment| -> Vec<f64> {
        (0..np)
            .map(|m| {
                a.rule_of_unit
                    .iter()
                    .enumerate()
                    .map(|(u, &c)| prep.costs[m][u * base.rules + c])
                    .sum()
            })
            .collect()
    };
    let vecs: Vec<Vec<f64>> = found.iter().map(|(_, a)| losses_of(a)).collect();
    let mut keep: Vec<usize> = Vec::new();
    let (mut dominated_n, mut duplicates) = (0usize, 0usize);
    for i in 0..found.len() {
        let dominated = (0..found.len()).any(|j| {
            j != i
                && vecs[j].iter().zip(&vecs[i]).all(|(a, b)| a <= b)
                && vecs[j].iter().zip(&vecs[i]).any(|(a, b)| a < b)
        });
        let duplicate = keep
            .iter()
            .any(|&k| found[k].1.rule_of_unit == found[i].1.rule_of_unit || vecs[k] == vecs[i]);
        if !dominated && !duplicate {
            keep.push(i);
        } else if dominated {
            dominated_n += 1;
        } else {
            duplicates += 1;
        }
    }
    let mut plans = Vec::with_capacity(keep.len());
    for &i in &keep {
        plans.push(to_plan(&prep, cfg, &found[i].0, &found[i].1, &vecs[i])?);
    }
    plans.sort_by(|a, b| a.losses[0].1.total_cmp(&b.losses[0].1));
    Ok(OptimizeResult {
        plans,
        rules: prep.rules,
        profiled_lengths: prep.lengths,
        constrained_lengths: prep.constrained,
        solves,
        skipped,
        dominated: dominated_n,
        duplicates,
        negative_cuts: prep.negative_cuts,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn to_plan(
    prep: &Prepared,
    cfg: &OptimizeConfig,
    objective: &[usize],
    a: &Assignment,
    losses: &[f64],
) -> Result<OptimizedPlan, OptimizeError> {
    let m = &prep.model;
    let (layers, q_heads) = (m.layers as usize, m.q_heads as usize);
    let group = if cfg.gqa_native {
        m.group_size() as usize
    } else {
        1
    };
    let per_layer = q_heads / group;
    let layer_rules: Vec<LayerRules> = (0..layers)
        .map(|l| LayerRules {
            rules: (0..q_heads)
                .map(|h| prep.rules[a.rule_of_unit[l * per_layer + h / group]])
                .collect(),
        })
        .collect();
    let densities: Vec<(u32, f64)> = prep
        .density_rows
        .iter()
        .zip(&prep.constrained)
        .map(|(r, &n)| {
            let v = a
                .rule_of_unit
                .iter()
                .enumerate()
                .map(|(u, &c)| r.coef[u * prep.rules.len() + c])
                .sum();
            (n, v)
        })
        .collect();
    let sources: Vec<String> = prep
        .lengths
        .iter()
        .zip(&prep.sources)
        .map(|(n, file)| format!("{file} (N={n})"))
        .collect();
    let fmt_pairs = |v: &[(u32, f64)]| {
        v.iter()
            .map(|(n, x)| format!("{n}: {x:.6}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let loss_pairs: Vec<(u32, f64)> = prep
        .lengths
        .iter()
        .copied()
        .zip(losses.iter().copied())
        .collect();
    let gap = a.gap.map_or("unknown".to_string(), |g| format!("{g:.3e}"));
    let (lo, hi) = cfg.density_band;
    let near = cfg.near.as_ref().map_or(String::new(), |n| {
        format!(
            "; at most {} changed from the near plan {}",
            crate::input::counted(n.max_changes, "unit"),
            crate::eval::masking_key(Some(&n.plan))
        )
    });
    let provenance = format!(
        "moa optimize from {}; cost: {}; {}; KV density band [{lo}, {hi}] at N = {:?}; at most {} per layer; {}; minimised loss at N = {}{near}",
        sources.join(", "),
        if prep.cut_costs { "cut influence (all keys past each window removed at once)" } else { "per-entry influence tiles" },
        crate::input::counted(prep.rules.len(), "candidate rule"),
        prep.constrained,
        crate::input::counted(cfg.max_rules_per_layer, "rule"),
        if cfg.gqa_native { "one rule per KV-head group (gqa-native)" } else { "one rule per query head" },
        objective
            .iter()
            .map(|&i| prep.lengths[i].to_string())
            .collect::<Vec<_>>()
            .join(" + "),
    );
    let notes = format!(
        "losses (dropped influence) {}; mean KV densities {}; solver {:?} status {} gap {gap}{}",
        fmt_pairs(&loss_pairs),
        fmt_pairs(&densities),
        a.method,
        a.status.as_str(),
        a.lower_bound
            .map_or(String::new(), |b| format!(" lower bound {b:.6}")),
    );
    // Build a plan with a GQA-unaware span section first to get the runtime densities.
    let (span, span_note) = span_for_context(&cfg.span, m.max_context_tokens);
    let notes = notes + &span_note;
    let plan = Plan::new(
        m.clone(),
        span,
        Meta {
            target_densities: if hi > 0.0 { vec![hi] } else { Vec::new() },
            provenance: Some(provenance),
            notes: Some(notes),
        },
        layer_rules,
    )?;
    let cache_densities = prep
        .constrained
        .iter()
        .map(|&n| {
            let total: u64 = (0..layers)
                .flat_map(|l| (0..m.kv_heads as usize).map(move |g| (l, g)))
                .map(|(l, g)| u64::from(plan.kv_span(l, g, n)))
                .sum();
            (
                n,
                total as f64 / (f64::from(n) * (layers * m.kv_heads as usize) as f64),
            )
        })
        .collect();
    Ok(OptimizedPlan {
        plan,
        losses: loss_pairs,
        densities,
        cache_densities,
        primary: prep.lengths[objective[0]],
        objective_lengths: objective.iter().map(|&i| prep.lengths[i]).collect(),
        status: a.status,
        gap: a.gap,
        lower_bound: a.lower_bound,
        method: a.method,
        seconds: a.seconds,
    })
}
