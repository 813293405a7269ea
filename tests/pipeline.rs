//! `moa pipeline` and `moa validate` end to end on the tiny random Llama (generated filler):
//! the chosen plan holds its density band at the validation length and records its scores,
//! a second run resumes from every output, a third after the calibration was deleted
//! makes the profiles and plans again, and bad plans are refused by name. With
//! `--near PLAN --max-changes K` (one trust-region step from PLAN): the profiles are taken
//! under PLAN in their own folder, the chosen plan is at most K KV groups from PLAN, and a
//! bad PLAN or K is a clear error before any step runs.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{self, tiny};
use moa::plan::{stats::plan_stats, LayerRules, Meta, ModelShape, Plan, Rule, SpanSection};

fn moa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(args)
        .output()
        .expect("running moa")
}

/// The tiny model with a 4k context (its tokenizer spends about a token per byte, so the
/// calibration prompts need a few hundred tokens at least).
fn tiny_gguf(dir: &Path) -> String {
    let path = dir.join("tiny.gguf");
    tiny(31, true).write_gguf(&path, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(4096);
            }
        }
    });
    path.display().to_string()
}

#[test]
fn pipeline_finds_validates_and_resumes() {
    let dir = tiny::tmp("pipeline");
    let model = tiny_gguf(&dir);
    let work = dir.join("work");
    let plans = dir.join("plans");
    let args = [
        "pipeline",
        "--model",
        &model,
        "--workdir",
        work.to_str().unwrap(),
        "--plans-dir",
        plans.to_str().unwrap(),
        "--name",
        "tiny-moa",
        "--profile-lengths",
        "512,1024",
        "--validate-length",
        "2048",
        "--samples",
        "3",
        "--validate-samples",
        "2",
        "--densities",
        "0.5",
        "--source",
        "generated",
        "--max-new-tokens",
        "4",
        "--time-limit",
        "20",
        // Two child processes share the profiling (the sharded path end to end).
        "--profile-jobs",
        "2",
    ];
    let out = moa(&args);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let chosen = plans.join("tiny-moa-50.toml");
    let plan = Plan::load(&chosen).unwrap();
    // The band [0.45, 0.5] holds at the held-out length, where the optimizer enforced it.
    let d = plan_stats(&plan, 2048, 2).kv_density;
    assert!((0.45 - 1e-9..=0.5 + 1e-9).contains(&d), "density {d}");
    let notes = plan.meta().notes.clone().unwrap_or_default();
    assert!(notes.contains("held-out samples"), "{notes}");
    assert!(stdout.contains("dense\t1.0000"), "{stdout}");
    // calib's line names the file the user finds, not a temporary name renamed away.
    let wrote = format!("samples to {}\n", work.join("calib.jsonl").display());
    assert!(stdout.contains(&wrote), "{stdout}");
    assert!(!stdout.contains(".partial"), "{stdout}");
    for f in [
        "calib.jsonl",
        "heldout.jsonl",
        "profiles/influence_512.safetensors",
        "profiles/influence_1024.safetensors",
        "optimize-50/summary.txt",
        "scores.tsv",
        "validate-50.tsv",
    ] {
        assert!(work.join(f).exists(), "{f} missing");
    }

    // Everything is reused; the scores come from the cache; the same plan is chosen.
    let again = moa(&args);
    let log2 = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{log2}");
    assert_eq!(log2.matches("reusing").count(), 5, "{log2}");
    assert!(log2.contains("(cached)"), "{log2}");
    assert_eq!(Plan::load(&chosen).unwrap(), plan);

    // The calibration deleted to redo it, as the log says: the steps after it are made
    // again, not reused (the profiles and plans were of the earlier calibration); here
    // the same seed rebuilds the same samples, so their tiles come back from the store.
    std::fs::remove_file(work.join("calib.jsonl")).unwrap();
    let third = moa(&args);
    let log3 = String::from_utf8_lossy(&third.stderr).to_string();
    assert!(third.status.success(), "{log3}");
    for f in ["influence_512", "influence_1024"] {
        assert!(
            log3.contains(&format!(
                "redoing `{}",
                work.join("profiles").join(f).display()
            )),
            "{f}: {log3}"
        );
    }
    assert!(log3.contains("reusing its stored tiles"), "{log3}");
    assert!(
        log3.contains(&format!("redoing `{}`", work.join("optimize-50").display())),
        "{log3}"
    );
    assert_eq!(
        log3.matches("   reusing `").count(),
        1,
        "only heldout.jsonl: {log3}"
    );
    assert_eq!(Plan::load(&chosen).unwrap(), plan);
}

#[test]
fn validate_refuses_a_plan_of_another_shape() {
    let dir = tiny::tmp("validate-shape");
    let model = tiny_gguf(&dir);
    let calib = dir.join("calib.jsonl");
    let out = moa(&[
        "calib",
        "--model",
        &model,
        "--out",
        calib.to_str().unwrap(),
        "--lengths",
        "512",
        "--samples",
        "1",
        "--source",
        "generated",
        "--max-new-tokens",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-mha.toml");
    let out = moa(&[
        "validate",
        "--model",
        &model,
        "--calib",
        calib.to_str().unwrap(),
        "--plan",
        fixture,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fixture-mha.toml") && err.contains("does not fit"),
        "{err}"
    );
}

/// A plan of the tiny model's shape on the pipeline's grid (α = 0, β in eighths), inside
/// the 50% band: per layer one KV group at 3/8 and one at 5/8 of N.
fn tiny_near_plan(path: &Path) {
    let rule = |eighths: u32| Rule {
        alpha: 0,
        beta_num: eighths * moa::plan::BETA_DEN / 8,
    };
    let group = tiny::Q_HEADS / tiny::KV_HEADS;
    let layers = (0..tiny::LAYERS)
        .map(|_| LayerRules {
            rules: (0..tiny::Q_HEADS)
                .map(|h| if h / group == 0 { rule(3) } else { rule(5) })
                .collect(),
        })
        .collect();
    let shape = ModelShape {
        name: Some("tiny".into()),
        layers: tiny::LAYERS as u32,
        q_heads: tiny::Q_HEADS as u32,
        kv_heads: tiny::KV_HEADS as u32,
        head_dim: tiny::HEAD_DIM as u32,
        max_context_tokens: 4096,
    };
    let plan = Plan::new(shape, SpanSection::default(), Meta::default(), layers).unwrap();
    std::fs::write(path, plan.to_toml()).unwrap();
}

/// KV groups whose rule differs between two plans of one shape.
fn changed_groups(a: &Plan, b: &Plan) -> usize {
    let group = (a.model().q_heads / a.model().kv_heads) as usize;
    a.layers()
        .iter()
        .zip(b.layers())
        .map(|(x, y)| {
            x.rules
                .chunks(group)
                .zip(y.rules.chunks(group))
                .filter(|(u, v)| u != v)
                .count()
        })
        .sum()
}

#[test]
fn pipeline_near_takes_one_trust_region_step() {
    let dir = tiny::tmp("pipeline-near");
    let model = tiny_gguf(&dir);
    let work = dir.join("work");
    let plans = dir.join("plans");
    let near = dir.join("near.toml");
    tiny_near_plan(&near);
    let run = |near: &str, k: &str| {
        moa(&[
            "pipeline",
            "--model",
            &model,
            "--workdir",
            work.to_str().unwrap(),
            "--plans-dir",
            plans.to_str().unwrap(),
            "--name",
            "tiny-near",
            "--profile-lengths",
            "512",
            "--validate-length",
            "1024",
            "--samples",
            "2",
            "--validate-samples",
            "1",
            "--densities",
            "0.5",
            "--source",
            "generated",
            "--max-new-tokens",
            "2",
            "--time-limit",
            "10",
            // The shards get --under-plan too.
            "--profile-jobs",
            "2",
            "--near",
            near,
            "--max-changes",
            k,
        ])
    };
    let out = run(near.to_str().unwrap(), "2");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    let start = Plan::load(&near).unwrap();
    let chosen = Plan::load(&plans.join("tiny-near-50.toml")).unwrap();
    assert!(changed_groups(&start, &chosen) <= 2, "{chosen:?}");
    // Profiles under the plan, in their own folder; no dense profile is taken.
    let hash = moa::eval::masking_key(Some(&start));
    let hex = hash.trim_start_matches("plan:");
    let prof = work.join(format!("profiles-under-{hex}/influence_512.safetensors"));
    let p = moa::profile::InfluenceProfile::load(&prof).unwrap();
    assert_eq!(p.under_plan.as_deref(), Some(hash.as_str()));
    assert!(!work.join("profiles").exists());
    // The step moved, within the region, where the same profile optimised without the
    // region moves more groups than K.
    let step = Plan::load(&work.join(format!("optimize-50-near-{hex}-k2/plan_0.toml"))).unwrap();
    assert!((1..=2).contains(&changed_groups(&start, &step)), "{step:?}");
    let free = dir.join("free");
    let out = moa(&[
        "optimize",
        "--profile",
        prof.to_str().unwrap(),
        "--density",
        "0.5",
        "--gqa-native",
        "--max-alpha",
        "0",
        "--extra-length",
        "1024",
        "-o",
        free.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let free = Plan::load(&free.join("plan_0.toml")).unwrap();
    assert!(changed_groups(&start, &free) > 2, "{free:?}");

    // Resumes: calib, held-out, the profile and the optimizer output are reused.
    let again = run(near.to_str().unwrap(), "2");
    let log2 = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{log2}");
    assert_eq!(log2.matches("reusing").count(), 4, "{log2}");

    // Bad inputs: named flag, file and allowed range, before any step runs.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-mha.toml");
    let bad = |near: &str, k: &str, want: &[&str]| {
        let out = run(near, k);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("== 1/5"),
            "{err}"
        );
        for w in want {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
    };
    bad(
        fixture,
        "1",
        &["--near", "fixture-mha.toml", "another model shape"],
    );
    let n = near.to_str().unwrap();
    bad(n, "0", &["--max-changes 0", "allowed 1 to 4", "near.toml"]);
    bad(n, "5", &["--max-changes 5", "allowed 1 to 4"]);
    let junk = dir.join("junk.toml");
    std::fs::write(&junk, "not a plan").unwrap();
    bad(
        junk.to_str().unwrap(),
        "1",
        &["--near", "junk.toml", "not a usable plan"],
    );
}
