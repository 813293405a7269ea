//! The assignment problem the optimizer solves, independent of where the numbers come from.
//!
//! Units (query heads, or KV-head groups in GQA-native mode) are grouped by layer; each
//! unit takes exactly one of `rules` candidate rules; a layer uses at most
//! `max_rules_per_layer` distinct rules; linear side rows (density bands, ε bounds) hold;
//! the summed cost is minimal.

#![warn(missing_docs)]

use std::time::Duration;

use super::OptimizeError;

/// A linear row `lo ≤ Σ_u coef[u·R + rule(u)] ≤ hi` (either side may be infinite).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Shown in errors and reports, e.g. `density@4096`.
    pub name: String,
    /// `[units · rules]`.
    pub coef: Vec<f64>,
    /// Lower bound of the row's sum (`f64::NEG_INFINITY`: none).
    pub lo: f64,
    /// Upper bound of the row's sum (`f64::INFINITY`: none).
    pub hi: f64,
}

/// One instance. `cost` and each row's `coef` are `[units · rules]`, row-major by unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Candidate rules per unit (R); every unit chooses among the same R.
    pub rules: usize,
    /// `layer_of[u]`: the layer of unit u (units of a layer need not be contiguous).
    pub layer_of: Vec<usize>,
    /// `[units · rules]`: the cost of unit u taking rule r at `u · rules + r`, minimised
    /// summed over units (from the optimizer: the influence the rule's mask drops,
    /// upstream `MoA/universal/optimizer.py`).
    pub cost: Vec<f64>,
    /// The side rows (density band at each constrained length, ε bounds, the near-plan row).
    pub rows: Vec<Row>,
    /// At most this many distinct rules per layer (≥ 1).
    pub max_rules_per_layer: usize,
}

/// Absolute slack allowed on a row, relative to its scale: rows are checked in f64 and
/// solver output is re-checked with this, so "holds exactly" means to ~1e-9.
pub const ROW_TOLERANCE: f64 = 1e-9;

impl Instance {
    /// Number of units (query heads, or KV-head groups with `gqa_native`).
    pub fn units(&self) -> usize {
        self.layer_of.len()
    }

    /// Number of layers: one past the largest layer index of a unit.
    pub fn layers(&self) -> usize {
        self.layer_of.iter().map(|l| l + 1).max().unwrap_or(0)
    }

    /// Units of each layer, in unit order.
    pub fn layer_units(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.layers()];
        for (u, &l) in self.layer_of.iter().enumerate() {
            out[l].push(u);
        }
        out
    }

    /// Checks sizes; the solvers rely on them.
    pub fn validate(&self) -> Result<(), OptimizeError> {
        let bad = |m: String| Err(OptimizeError::InvalidConfig(m));
        let n = self.units() * self.rules;
        if self.rules == 0 || self.units() == 0 {
            return bad("the instance has no units or no rules".into());
        }
        if self.max_rules_per_layer == 0 {
            return bad("max rules per layer must be at least 1".into());
        }
        if self.cost.len() != n || self.cost.iter().any(|c| !c.is_finite()) {
            return bad(format!("cost must hold {n} finite values (units × rules)"));
        }
        for r in &self.rows {
            if r.coef.len() != n || r.coef.iter().any(|c| !c.is_finite()) {
                return bad(format!(
                    "row `{}` must hold {n} finite coefficients",
                    r.name
                ));
            }
            if r.lo.is_nan() || r.hi.is_nan() || r.lo > r.hi {
                return bad(format!("row `{}` has bounds {} > {}", r.name, r.lo, r.hi));
            }
        }
        Ok(())
    }

    /// Summed cost of `assign` (a rule index per unit).
    pub fn objective(&self, assign: &[usize]) -> f64 {
        assign
            .iter()
            .enumerate()
            .map(|(u, &c)| self.cost[u * self.rules + c])
            .sum()
    }

    /// `Σ_u row.coef[u · rules + assign[u]]`: the value the row bounds, for `assign`.
    pub fn row_value(&self, row: &Row, assign: &[usize]) -> f64 {
        assign
            .iter()
            .enumerate()
            .map(|(u, &c)| row.coef[u * self.rules + c])
            .sum()
    }

    /// The first violated constraint, described, or `None` if `assign` is feasible.
    pub fn violation(&self, assign: &[usize]) -> Option<String> {
        if assign.len() != self.units() || assign.iter().any(|&c| c >= self.rules) {
            return Some("not one valid rule per unit".into());
        }
        for (l, units) in self.layer_units().iter().enumerate() {
            let mut used: Vec<usize> = units.iter().map(|&u| assign[u]).collect();
            used.sort_unstable();
            used.dedup();
            if used.len() > self.max_rules_per_layer {
                return Some(format!(
                    "layer {l} uses {} rules (limit {})",
                    used.len(),
                    self.max_rules_per_layer
                ));
            }
        }
        for r in &self.rows {
            let v = self.row_value(r, assign);
            let tol = ROW_TOLERANCE * (1.0 + r.lo.abs().min(r.hi.abs()).min(1e300));
            if v < r.lo - tol || v > r.hi + tol {
                return Some(format!(
                    "row `{}` = {v} is outside [{}, {}]",
                    r.name, r.lo, r.hi
                ));
            }
        }
        None
    }
}

/// Which algorithm solves an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The MILP for small instances (≤ [`AUTO_MILP_MAX_VARS`] x-variables), the
    /// Lagrangian path otherwise.
    Auto,
    /// good_lp + microlp, binary x[unit, rule] and y[layer, rule]. If microlp fails
    /// numerically, the Lagrangian path answers instead (reported in `Assignment::method`).
    Milp,
    /// Per-layer exact enumeration under Lagrange multipliers on the side rows, repair
    /// to feasibility, dual bound as the gap certificate (`lagrange.rs`).
    Lagrangian,
}

/// Above this many x-variables `Method::Auto` uses the Lagrangian path: microlp's
/// branch and bound with the x ≤ y linking rows does not finish 7B-size instances in
/// minutes, while the relaxation has a tiny duality gap there (few side rows, many units).
pub const AUTO_MILP_MAX_VARS: usize = 2000;

/// How to solve one [`Instance`]: method, gap and time limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveOptions {
    /// Which solver ([`Method::Auto`]: by the instance's size, see [`AUTO_MILP_MAX_VARS`]).
    pub method: Method,
    /// Stop when `(objective − lower bound) / |objective| ≤ mip_gap`.
    pub mip_gap: f64,
    /// Wall-clock limit of this solve.
    pub time_limit: Duration,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            method: Method::Auto,
            mip_gap: 1e-3,
            time_limit: Duration::from_secs(60),
        }
    }
}

/// How a solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolveStatus {
    /// Proven optimal (within solver tolerance).
    Optimal,
    /// The gap to the lower bound is at most the requested MIP gap.
    GapLimit,
    /// The time (or iteration) limit came first; the assignment is feasible, the gap is
    /// what was reached.
    TimeLimit,
    /// The Lagrangian dual ascent stopped improving before reaching the MIP gap; the
    /// assignment is feasible and the reported gap is a proven bound.
    Stalled,
}

impl SolveStatus {
    /// The status as reports and plan `meta` spell it: `optimal`, `gap-limit`, `time-limit`,
    /// `stalled`.
    pub fn as_str(self) -> &'static str {
        match self {
            SolveStatus::Optimal => "optimal",
            SolveStatus::GapLimit => "gap-limit",
            SolveStatus::TimeLimit => "time-limit",
            SolveStatus::Stalled => "stalled",
        }
    }
}

/// A feasible assignment and what is known about its optimality.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Rule index of every unit.
    pub rule_of_unit: Vec<usize>,
    /// The summed cost of `rule_of_unit` ([`Instance::objective`]).
    pub objective: f64,
    /// A proven lower bound on the optimum, when the method gives one.
    pub lower_bound: Option<f64>,
    /// `(objective − lower_bound) / max(|objective|, 1e-12)`; for microlp's `Optimal` /
    /// `GapLimit` without a bound: 0 / the requested gap (microlp does not export its bound).
    pub gap: Option<f64>,
    /// How the solve ended.
    pub status: SolveStatus,
    /// The method that produced it (never [`Method::Auto`]).
    pub method: Method,
    /// Wall-clock time of the solve, in seconds.
    pub seconds: f64,
}

pub(crate) fn relative_gap(objective: f64, lower: f64) -> f64 {
    ((objective - lower) / objective.abs().max(1e-12)).max(0.0)
}

/// Solves one instance with the chosen method; the result is always re-checked against
/// every constraint in f64.
pub fn solve(inst: &Instance, opts: &SolveOptions) -> Result<Assignment, OptimizeError> {
    inst.validate()?;
    let method = match opts.method {
        Method::Auto if inst.units() * inst.rules <= AUTO_MILP_MAX_VARS => Method::Milp,
        Method::Auto => Method::Lagrangian,
        m => m,
    };
    let start = std::time::Instant::now();
    let out = match method {
        Method::Milp => match super::milp::solve(inst, opts) {
            // microlp can fail numerically ("singular matrix", seen on ε-constraint rows
            // of tiny instances); the Lagrangian path still gives a feasible assignment
            // with a proven gap, and `Assignment::method` says which one answered.
            // It gets what is left of the budget (at least a second to find a point).
            Err(OptimizeError::Solver(_)) => {
                let left = opts.time_limit.saturating_sub(start.elapsed());
                let opts = SolveOptions {
                    time_limit: left.max(Duration::from_secs(1)),
                    ..*opts
                };
                super::lagrange::solve(inst, &opts)?
            }
            other => other?,
        },
        _ => super::lagrange::solve(inst, opts)?,
    };
    if let Some(v) = inst.violation(&out.rule_of_unit) {
        return Err(OptimizeError::Solver(format!(
            "the {method:?} solver returned an assignment that violates a constraint: {v}"
        )));
    }
    Ok(out)
}
