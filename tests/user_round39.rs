//! A new user's journey, round 39: a user who brings influence profiles and wants plans.
//! Tried: `moa optimize` with every flag of its `--help` on seeded synthetic profiles
//! (`InfluenceProfile::synthetic`, saved as the safetensors `--profile` reads) of a
//! SmolLM2 shape (30 × 9 heads, 3 KV, at 1k/2k/4k) and a 7B shape (32 × 32, at 2k/4k/8k),
//! and `cargo bench --bench optimize`, whose 7B "pareto (ε grid 4)" row spent its 60 s.
//! What it found wrong, each pinned here: every Lagrangian solve began with 48 uniform
//! starts whose greedy repair took 1.2 s on the 7B shape (a tuple sort of 49 k moves per
//! round, and rounds that moved nothing repeated up to 8 times) without looking at the
//! clock, so each of the 51 solves of a 60 s grid (1.17 s each) overran its share and
//! ended with a gap near 1, and `--time-limit 1` on the 7B shape took over 4 s: the repair
//! is faster with the same moves in the same order, the starts stop at the limit, and a
//! solve that found no plan in its time says so, the CLI naming `--time-limit` (it blamed
//! the band and said "widen the band"); `--pareto-intervals K` beside `--objective-length`
//! was ignored in silence: refused now, naming both; summary.txt said "5 plan(s) from 51
//! solve(s)" and left the others unexplained: a `dropped:` line counts the dominated and
//! duplicate points beside the `skipped:` ones; `--objective-length 999` (no profile of
//! that length) named no flag: it names the flag and the profiled lengths now. Seconds
//! each, tiny shapes.

mod common;

use common::profiles::{optimize_args, save_profiles, shape};

common::cli::tagged!();

/// Not a test: writes SmolLM2- and 7B-shaped profiles under `$MOA_R39_PROFILES` for a
/// user's own `moa optimize` runs (`cargo test --release --test group -- --ignored
/// write_journey_profiles`).
#[test]
#[ignore]
fn write_journey_profiles() {
    let Some(root) = std::env::var_os("MOA_R39_PROFILES") else {
        return;
    };
    let root = std::path::PathBuf::from(root);
    for (name, model, lengths) in [
        ("smollm2", shape(30, 9, 3, 64, 8192), vec![1024, 2048, 4096]),
        ("7b", shape(32, 32, 32, 128, 32768), vec![2048, 4096, 8192]),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        save_profiles(&dir, &model, &lengths);
    }
}

/// A tiny GQA shape (4 layers × 4 query heads, 2 KV heads of 16) whose profiles at 512,
/// 1024 and 2048 tokens give a Pareto run of a second or less.
fn tiny_profiles(name: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = scratch(name);
    let files = save_profiles(&dir, &shape(4, 4, 2, 16, 8192), &[512, 1024, 2048]);
    (dir, files)
}

/// Every solve of a Pareto run is accounted for in summary.txt (a plan, a `skipped:` line
/// or the `dropped:` counts), every plan holds the band and the rule limit, and two
/// identical runs write the same plans byte for byte.
#[test]
fn summary_accounts_for_every_solve() {
    let (dir, files) = tiny_profiles("pareto");
    let mut written = Vec::new();
    for run_no in 0..2 {
        let out = dir.join(format!("out{run_no}"));
        let args = optimize_args(
            &files,
            &[
                "--density",
                "0.5",
                "--pareto-intervals",
                "3",
                "--method",
                "lagrangian",
                "--time-limit",
                "60",
                "-o",
                common::cli::s(&out),
            ],
        );
        let (code, _, err) = run("moa", &args);
        assert_eq!(code, 0, "{err}");
        let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
        let head = summary.lines().next().unwrap();
        let num = |after: &str| -> usize {
            let words: Vec<&str> = head.split_whitespace().collect();
            let i = words.iter().position(|w| *w == after).unwrap();
            words[i - 1].parse().unwrap()
        };
        let (plans, solves) = (num("plan(s)"), num("solve(s)"));
        let skipped = summary
            .lines()
            .filter(|l| l.starts_with("skipped:"))
            .count();
        let dropped: usize = summary
            .lines()
            .find(|l| l.starts_with("dropped:"))
            .map_or(0, |l| {
                l.split_whitespace()
                    .filter_map(|w| w.parse::<usize>().ok())
                    .sum()
            });
        assert_eq!(plans + skipped + dropped, solves, "{summary}");
        assert!(
            plans < solves,
            "a grid of 3 should repeat some plan:\n{summary}"
        );
        let mut these = Vec::new();
        for i in 0..plans {
            let text = std::fs::read_to_string(out.join(format!("plan_{i}.toml"))).unwrap();
            let plan = moa::plan::Plan::load(&out.join(format!("plan_{i}.toml"))).unwrap();
            for layer in plan.layers() {
                let mut rules = layer.rules.clone();
                rules.sort_by_key(|r| (r.alpha, r.beta_num));
                rules.dedup();
                assert!(
                    rules.len() <= 2,
                    "plan_{i}: {} rules in a layer",
                    rules.len()
                );
            }
            for n in [512u32, 1024, 2048, 4096] {
                let m = plan.model();
                let d: f64 = (0..m.layers as usize)
                    .flat_map(|l| (0..m.q_heads as usize).map(move |h| (l, h)))
                    .map(|(l, h)| f64::from(plan.q_span(l, h, n)) / f64::from(n))
                    .sum::<f64>()
                    / f64::from(m.layers * m.q_heads);
                assert!(
                    (0.45 - 1e-9..=0.5 + 1e-9).contains(&d),
                    "plan_{i}: density {d} at N = {n}"
                );
            }
            these.push(text);
        }
        written.push(these);
    }
    assert_eq!(
        written[0], written[1],
        "two identical runs wrote other plans"
    );
}

/// `moa optimize` on [`tiny_profiles`] with `--density 0.5`, `flags` and an output folder:
/// refused (exit 2) with every one of `needles` on stderr and no summary written; stderr.
fn refused_optimize(name: &str, flags: &[&str], needles: &[&str]) -> String {
    let (dir, files) = tiny_profiles(name);
    let out = dir.join("out");
    let mut extra = vec!["--density", "0.5"];
    extra.extend(flags);
    extra.extend(["-o", common::cli::s(&out)]);
    let err = refused("moa", &optimize_args(&files, &extra), needles);
    assert!(!out.join("summary.txt").exists(), "{err}");
    err
}

/// `--pareto-intervals` steps the ε grid of the Pareto set; with `--objective-length`
/// there is one solve and it was ignored in silence.
#[test]
fn pareto_intervals_with_objective_length_is_refused() {
    refused_optimize(
        "intervals",
        &["--objective-length", "1024", "--pareto-intervals", "3"],
        &["--pareto-intervals 3", "--objective-length 1024"],
    );
}

/// A solve that finds no plan inside its share of `--time-limit` says so and names the
/// flag; it was blamed on the band ("widen the band"), and the uniform starts ran past
/// the limit without looking at the clock.
#[test]
fn time_limit_spent_before_a_plan_names_the_flag() {
    let err = refused_optimize(
        "time",
        &["--method", "lagrangian", "--time-limit", "0.000000001"],
        &["--time-limit", "time limit"],
    );
    assert!(!err.contains("widen the band"), "{err}");
}

/// An objective length that no profile has is refused naming `--objective-length` and the
/// lengths it may take (the optimizer's "objective length N = 999 is not a profiled
/// length" named no flag).
#[test]
fn objective_length_not_profiled_names_the_flag_and_the_lengths() {
    refused_optimize(
        "objective",
        &["--objective-length", "999"],
        &["--objective-length 999", "allowed 512, 1024, 2048"],
    );
}
