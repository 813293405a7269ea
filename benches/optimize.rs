//! How long the plan optimizer takes, on seeded synthetic influence profiles:
//! a SmolLM2-135M-shaped instance (30 layers × 9 query heads, 3 KV heads; profiles at
//! 1k/2k/4k, density also at 8k) and a 7B-size one (32 × 32 heads, profiles at 2k/4k/8k,
//! density also at 16k: 48 candidate rules, the band at 4 lengths, ≤ 2 rules per layer).
//! Run with `cargo bench --bench optimize`; `MOA_BENCH_MILP=1` also runs microlp on the
//! large instances (slow: it shows why the Lagrangian path exists);
//! `MOA_BENCH_ONLY=TEXT` runs only the rows whose "shape: row" label contains TEXT
//! (e.g. `MOA_BENCH_ONLY="7B shape: pareto"`; the raw instance's label is "raw 7B").
//! A benchmark, not a test: it prints, it never asserts.

use std::time::{Duration, Instant};

use moa::optimize::{
    optimize, solve, Instance, Method, Objective, OptimizeConfig, OptimizeResult, Row, SolveOptions,
};
use moa::plan::ModelShape;
use moa::profile::InfluenceProfile;

fn report(label: &str, r: &Result<OptimizeResult, moa::optimize::OptimizeError>) {
    match r {
        Err(e) => println!("{label:<44} error: {e}"),
        Ok(r) => {
            let worst_gap = r
                .plans
                .iter()
                .map(|p| p.gap.unwrap_or(f64::NAN))
                // A plan with no proven gap makes the worst NaN; before, a later plan's gap
                // replaced that NaN (`f64::max` skips NaN), hiding it (round 38).
                .fold(0.0f64, |m, g| {
                    if m.is_nan() || g.is_nan() {
                        f64::NAN
                    } else {
                        m.max(g)
                    }
                });
            let p0 = &r.plans[0];
            let statuses: Vec<&str> = r.plans.iter().map(|p| p.status.as_str()).collect();
            let mut st = statuses.clone();
            st.sort_unstable();
            st.dedup();
            println!(
                "{label:<44} {:>7.2} s  {:>2} solves  {:>2} plans  status {:<20} loss@{} {:.5}  worst gap {:.2e}  method {:?}",
                r.seconds,
                r.solves,
                r.plans.len(),
                st.join(","),
                p0.primary,
                p0.losses.iter().find(|l| l.0 == p0.primary).map_or(f64::NAN, |l| l.1),
                worst_gap,
                p0.method,
            );
        }
    }
}

fn config(
    band: (f64, f64),
    extra: u32,
    objective: Objective,
    method: Method,
    gqa: bool,
) -> OptimizeConfig {
    OptimizeConfig {
        density_band: band,
        extra_lengths: vec![extra],
        max_rules_per_layer: 2,
        gqa_native: gqa,
        objective,
        solve: SolveOptions {
            method,
            mip_gap: 1e-3,
            time_limit: Duration::from_secs(60),
        },
        ..OptimizeConfig::default()
    }
}

/// Whether the row labelled `label` runs (`MOA_BENCH_ONLY` unset, or a part of it).
fn selected(label: &str) -> bool {
    std::env::var("MOA_BENCH_ONLY").map_or(true, |only| label.contains(&only))
}

fn run_shape(name: &str, model: ModelShape, lengths: [u32; 3], run_milp: bool) {
    let t = Instant::now();
    let profiles: Vec<InfluenceProfile> = lengths
        .iter()
        .map(|&n| InfluenceProfile::synthetic(model.clone(), n, 64, 2024))
        .collect();
    println!(
        "{name}: {} layers × {} heads ({} KV), profiles at {lengths:?} generated in {:.2} s",
        model.layers,
        model.q_heads,
        model.kv_heads,
        t.elapsed().as_secs_f64()
    );
    let names: Vec<String> = lengths.iter().map(|n| format!("synthetic-{n}")).collect();
    let extra = 2 * lengths[2];
    let band = (0.45, 0.5);
    let single = Objective::Single {
        n_tokens: lengths[2],
    };
    for (label, cfg) in [
        (
            "single objective, lagrangian",
            config(band, extra, single.clone(), Method::Lagrangian, false),
        ),
        (
            "single objective, gqa-native, auto",
            config(band, extra, single.clone(), Method::Auto, true),
        ),
        (
            "pareto (ε grid 2), lagrangian",
            config(
                band,
                extra,
                Objective::Pareto { intervals: 2 },
                Method::Lagrangian,
                false,
            ),
        ),
        (
            "pareto (ε grid 4, upstream), lagrangian",
            config(
                band,
                extra,
                Objective::Pareto { intervals: 4 },
                Method::Lagrangian,
                false,
            ),
        ),
    ] {
        if !selected(&format!("{name}: {label}")) {
            continue;
        }
        report(&format!("  {label}"), &optimize(&profiles, &names, &cfg));
    }
    if run_milp && selected(&format!("{name}: single objective, microlp MILP")) {
        let cfg = config(band, extra, single, Method::Milp, false);
        report(
            "  single objective, microlp MILP (60 s)",
            &optimize(&profiles, &names, &cfg),
        );
    }
}

/// The raw instance of the brief: 1024 heads × 48 rules, density band at 4 lengths
/// (8 rows), ≤ 2 rules per layer, random costs shaped like real losses.
fn raw_7b_instance() -> Instance {
    let (units, rules) = (1024usize, 48usize);
    let mut s = 0x1234_5678u64;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut cost = Vec::with_capacity(units * rules);
    let mut rows: Vec<Row> = (0..4)
        .map(|k| Row {
            name: format!("density@{}", 2048 << k),
            coef: Vec::with_capacity(units * rules),
            lo: 0.45,
            hi: 0.5,
        })
        .collect();
    for _ in 0..units {
        let decay = 0.5 + 4.0 * rnd();
        for c in 0..rules {
            let keep = (c + 1) as f64 / rules as f64;
            cost.push((-decay * keep).exp() * (1.0 + 0.05 * rnd()) - (-decay).exp());
            for (k, row) in rows.iter_mut().enumerate() {
                // Longer lengths make α-heavy rules sparser, as spans α + β·N do.
                let d = (keep * (1.0 - 0.1 * k as f64) + 0.05 * k as f64).min(1.0);
                row.coef.push(d / units as f64);
            }
        }
    }
    Instance {
        rules,
        layer_of: (0..units).map(|u| u / 32).collect(),
        cost: cost.iter().map(|c| c.max(0.0)).collect(),
        rows,
        max_rules_per_layer: 2,
    }
}

fn main() {
    let run_milp = std::env::var_os("MOA_BENCH_MILP").is_some();
    run_shape(
        "SmolLM2-135M shape",
        ModelShape {
            name: Some("SmolLM2-135M-Instruct".into()),
            layers: 30,
            q_heads: 9,
            kv_heads: 3,
            head_dim: 64,
            max_context_tokens: 8192,
        },
        [1024, 2048, 4096],
        run_milp,
    );
    run_shape(
        "7B shape",
        ModelShape {
            name: Some("synthetic-7B".into()),
            layers: 32,
            q_heads: 32,
            kv_heads: 32,
            head_dim: 128,
            max_context_tokens: 32768,
        },
        [2048, 4096, 8192],
        run_milp,
    );
    let inst = raw_7b_instance();
    for method in [Method::Lagrangian, Method::Milp] {
        if (method == Method::Milp && !run_milp) || !selected("raw 7B instance") {
            continue;
        }
        let opts = SolveOptions {
            method,
            mip_gap: 1e-3,
            time_limit: Duration::from_secs(60),
        };
        let t = Instant::now();
        match solve(&inst, &opts) {
            Ok(a) => println!(
                // Formatted as the other lines (`{:?}` printed `bound Some(197.44255932743948)
                // gap Some(0.0003513143142156277)`, round 38); "none" where no bound is proven.
                "raw 7B instance (1024 × 48, 8 rows, K=2), {method:?}: {:.2} s  status {}  objective {:.5}  bound {}  gap {}",
                t.elapsed().as_secs_f64(),
                a.status.as_str(),
                a.objective,
                a.lower_bound.map_or("none".into(), |b| format!("{b:.5}")),
                a.gap.map_or("none".into(), |g| format!("{g:.2e}"))
            ),
            Err(e) => println!(
                "raw 7B instance, {method:?}: {:.2} s  error: {e}",
                t.elapsed().as_secs_f64()
            ),
        }
    }
}
