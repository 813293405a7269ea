//! The exact MILP (good_lp + microlp), for small instances and for verification.
//!
//! ```text
//! min  Σ cost[u,c]·x[u,c]
//! s.t. Σ_c x[u,c] = 1                 ∀u        one rule per unit
//!      x[u,c] ≤ y[layer(u),c]         ∀u,c      (only when the limit can bind)
//!      Σ_c y[l,c] ≤ K                 ∀l        at most K rules per layer
//!      lo_r ≤ Σ coef_r[u,c]·x[u,c] ≤ hi_r       side rows (density bands, ε bounds)
//! ```
//! Always solved with a MIP gap and a time limit (feasibility.md §4: microlp without a
//! gap can take minutes on a few hundred heads).

#![warn(missing_docs)]

use std::time::Instant;

use good_lp::solvers::microlp::microlp;
use good_lp::{
    variable, Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus, SolverModel,
    Variable, WithMipGap, WithTimeLimit,
};

use super::problem::{Assignment, Instance, Method, SolveOptions, SolveStatus};
use super::OptimizeError;

pub(crate) fn solve(inst: &Instance, opts: &SolveOptions) -> Result<Assignment, OptimizeError> {
    let start = Instant::now();
    let nr = inst.rules;
    let nu = inst.units();
    let layers = inst.layer_units();
    // Scale the objective to max |cost| = 1: microlp's tolerances are absolute.
    let cscale = inst.cost.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    let cscale = if cscale > 0.0 { cscale } else { 1.0 };

    let mut vars = ProblemVariables::new();
    let x: Vec<Variable> = vars.add_vector(variable().binary(), nu * nr);
    let limit_binds = layers
        .iter()
        .any(|u| inst.max_rules_per_layer < nr.min(u.len()));
    let y: Vec<Variable> = if limit_binds {
        vars.add_vector(variable().binary(), layers.len() * nr)
    } else {
        Vec::new()
    };
    let mut objective = Expression::with_capacity(nu * nr);
    for (i, v) in x.iter().enumerate() {
        if inst.cost[i] != 0.0 {
            objective.add_mul(inst.cost[i] / cscale, *v);
        }
    }
    let mut model = vars
        .minimise(objective)
        .using(microlp)
        .with_time_limit(opts.time_limit.as_secs_f64())
        .with_mip_gap(opts.mip_gap as f32)
        .map_err(|e| OptimizeError::Solver(format!("invalid MIP gap {}: {e}", opts.mip_gap)))?;

    for u in 0..nu {
        let mut e = Expression::with_capacity(nr);
        for c in 0..nr {
            e.add_mul(1.0, x[u * nr + c]);
        }
        model.add_constraint(e.eq(1.0));
    }
    if limit_binds {
        for (l, units) in layers.iter().enumerate() {
            let mut e = Expression::with_capacity(nr);
            for c in 0..nr {
                e.add_mul(1.0, y[l * nr + c]);
                for &u in units {
                    model.add_constraint(Expression::from(x[u * nr + c]).leq(y[l * nr + c]));
                }
            }
            model.add_constraint(e.leq(inst.max_rules_per_layer as f64));
        }
    }
    // Identical rows (e.g. density at two lengths where every span scales with N) make
    // microlp's basis singular: merge them into one row with the intersected bounds.
    let mut rows: Vec<(&[f64], f64, f64)> = Vec::new();
    for r in &inst.rows {
        match rows.iter_mut().find(|(c, _, _)| *c == r.coef.as_slice()) {
            Some(m) => {
                m.1 = m.1.max(r.lo);
                m.2 = m.2.min(r.hi);
            }
            None => rows.push((&r.coef, r.lo, r.hi)),
        }
    }
    for (coef, lo, hi) in rows {
        let r = super::problem::Row {
            name: String::new(),
            coef: coef.to_vec(),
            lo,
            hi,
        };
        let r = &r;
        // Rows are scaled to bounds of about 1, for the same reason as the objective.
        let s = [r.lo, r.hi]
            .iter()
            .filter(|b| b.is_finite())
            .fold(0.0f64, |m, b| m.max(b.abs()));
        let s = if s > 0.0 { s } else { 1.0 };
        let mut e = Expression::with_capacity(nu * nr);
        for (i, v) in x.iter().enumerate() {
            if r.coef[i] != 0.0 {
                e.add_mul(r.coef[i] / s, *v);
            }
        }
        if r.lo.is_finite() && r.hi.is_finite() && r.lo == r.hi {
            model.add_constraint(e.eq(r.lo / s));
            continue;
        }
        if r.hi.is_finite() {
            model.add_constraint(e.clone().leq(r.hi / s));
        }
        if r.lo.is_finite() {
            model.add_constraint(e.geq(r.lo / s));
        }
    }
    let sol = model.solve().map_err(|e| match e {
        ResolutionError::Infeasible => OptimizeError::Infeasible(format!(
            "the MILP is infeasible: no assignment satisfies {} with at most {} per layer",
            inst.rows
                .iter()
                .map(|r| format!("{} in [{}, {}]", r.name, r.lo, r.hi))
                .collect::<Vec<_>>()
                .join(", "),
            crate::input::counted(inst.max_rules_per_layer, "rule")
        )),
        other => OptimizeError::Solver(format!("microlp: {other}")),
    })?;
    let status = match sol.status() {
        SolutionStatus::Optimal => SolveStatus::Optimal,
        SolutionStatus::GapLimit => SolveStatus::GapLimit,
        SolutionStatus::TimeLimit => SolveStatus::TimeLimit,
    };
    let rule_of_unit: Vec<usize> = (0..nu)
        .map(|u| {
            (0..nr)
                .max_by(|&a, &b| {
                    sol.value(x[u * nr + a])
                        .total_cmp(&sol.value(x[u * nr + b]))
                })
                .unwrap_or(0)
        })
        .collect();
    let objective = inst.objective(&rule_of_unit);
    // microlp does not export its best bound: Optimal means gap 0 (to its tolerance),
    // GapLimit means at most the requested gap; after a time limit the gap is unknown.
    let gap = match status {
        SolveStatus::Optimal => Some(0.0),
        SolveStatus::GapLimit => Some(opts.mip_gap),
        _ => None,
    };
    Ok(Assignment {
        rule_of_unit,
        objective,
        lower_bound: None,
        gap,
        status,
        method: Method::Milp,
        seconds: start.elapsed().as_secs_f64(),
    })
}
