//! `moa eval` without a GPU: prompts of the grid, scoring of fixed outputs, the effective
//! context length rule, the report (markdown, JSON, heatmap), and the errors for bad inputs
//! (a plan of another shape, a length beyond the model's context).

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::Value;
use common::bytes::Bytes;
use common::tiny::{self, tiny};
use moa::calib::TextCodec;
use moa::eval::heatmap::heatmap_png;
use moa::eval::retrieval::{
    build_cases, distinct_needle_positions, effective_context_length, fmt_len, is_correct,
    text_windows, uniform_plan, EvalReport, Family, FamilyGrid, GridSpec, PlanResult,
    ANSWER_TOKENS,
};
use moa::plan::Plan;

#[test]
fn answers_are_scored_by_their_first_number() {
    assert!(is_correct(" 73665. The grass is green.", "73665"));
    assert!(is_correct("73665", "73665"));
    assert!(is_correct(" 4827163.", "4827163"));
    // A prefix of the key, a longer number, another number first: wrong.
    assert!(!is_correct(" 7366", "73665"));
    assert!(!is_correct(" 736651", "73665"));
    assert!(!is_correct(" 12 then 73665", "73665"));
    assert!(!is_correct(" a special syntax", "73665"));
    assert!(!is_correct("", "73665"));
}

#[test]
fn effective_context_is_the_longest_length_kept_from_the_shortest_on() {
    let lengths = [1024, 2048, 4096, 7680];
    let dense = [1.0, 1.0, 1.0, 0.75];
    // Kept everywhere (90% of dense: 0.9 up to 4k, 0.675 at 7.5k).
    assert_eq!(
        effective_context_length(&lengths, &[1.0, 0.9, 1.0, 0.75], &dense),
        Some(7680)
    );
    // 7/8 = 0.875 < 0.9 at 2k: the run ends at 1k even though 4k is kept again.
    assert_eq!(
        effective_context_length(&lengths, &[1.0, 0.875, 1.0, 0.75], &dense),
        Some(1024)
    );
    // Failing at the shortest length: no effective context.
    assert_eq!(
        effective_context_length(&lengths, &[0.5, 1.0, 1.0, 1.0], &dense),
        None
    );
    // A length where dense scores 0 is kept by any plan.
    assert_eq!(
        effective_context_length(&[1024, 2048], &[1.0, 0.0], &[1.0, 0.0]),
        Some(2048)
    );
}

fn grid_of(family: Family, rows: &[&[bool]]) -> FamilyGrid {
    FamilyGrid {
        family,
        correct: rows.iter().map(|r| r.to_vec()).collect(),
        answers: rows
            .iter()
            .map(|r| r.iter().map(|_| String::new()).collect())
            .collect(),
    }
}

fn fixed_report() -> EvalReport {
    let grid = GridSpec::new(vec![1024, 2048], 4, 0);
    let plan = |name: &str, pk: &[&[bool]], code: &[&[bool]], ppl: f64| PlanResult {
        name: name.into(),
        kv_density: vec![0.5, 0.5],
        retrieval: vec![grid_of(Family::Passkey, pk), grid_of(Family::Code, code)],
        perplexity: Some(ppl),
        perplexity_nats: Vec::new(),
        effective_context: Vec::new(),
        masking: None,
    };
    let t = true;
    let f = false;
    let mut r = EvalReport {
        perplexity_check: Vec::new(),
        model: "fixed".into(),
        backend: "none".into(),
        grid,
        perplexity_setup: None,
        plans: vec![
            plan(
                "dense",
                &[&[t, t, t, t], &[t, t, t, t]],
                &[&[t, t, t, f], &[t, t, t, t]],
                10.0,
            ),
            plan(
                "uniform-50",
                &[&[f, f, t, t], &[f, f, t, t]],
                &[&[f, t, t, f], &[f, f, t, t]],
                11.0,
            ),
            plan(
                "moa-50",
                &[&[t, t, t, t], &[f, t, t, t]],
                &[&[t, t, t, f], &[t, t, t, t]],
                10.2,
            ),
        ],
        seconds: 0.0,
    };
    r.finish();
    r
}

#[test]
fn report_scores_fixed_outputs() {
    let r = fixed_report();
    assert_eq!(r.plans[0].effective_context, vec![Some(2048), Some(2048)]);
    assert_eq!(r.plans[1].effective_context, vec![None, None]);
    // moa-50: passkey 3/4 = 0.75 < 0.9 at 2k; code 3/3 of dense's 3 at 1k, 4/4 at 2k.
    assert_eq!(r.plans[2].effective_context, vec![Some(1024), Some(2048)]);
    assert_eq!(r.plans[2].retrieval[0].accuracy(), vec![1.0, 0.75]);
    let md = r.markdown();
    assert!(
        md.contains("| plan | task | 1k | 2k | sum | eff. context"),
        "{md}"
    );
    assert!(
        md.contains(
            "| uniform-50 | passkey | 2/4 | 2/4 | 4/8 | < shortest | 0.50 | 11.000 (+10.0%) |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| moa-50 | passkey | 4/4 | 3/4 | 7/8 | 1k | 0.50 | 10.200 (+2.0%) |"),
        "{md}"
    );
    assert!(
        md.contains("| moa-50 | code | 3/4 | 4/4 | 7/8 | 2k | 0.50 |  |"),
        "{md}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["plans"][2]["effective_context"][0], 1024);
    assert_eq!(json["plans"][0]["retrieval"][1]["family"], "code");
}

#[test]
fn heatmap_is_a_png() {
    let r = fixed_report();
    let bytes = heatmap_png(
        "moa-50",
        &r.grid,
        &r.plans[2].retrieval,
        &r.plans[0].retrieval,
    )
    .unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 500);
}

#[test]
fn grid_prompts_fit_hold_the_key_and_are_seeded() {
    let grid = GridSpec::new(vec![600, 900], 3, 7);
    assert_eq!(grid.depths, vec![0.05, 0.5, 0.95]);
    for family in [Family::Passkey, Family::Code] {
        let cases = build_cases(family, &grid, &Bytes).unwrap();
        assert_eq!(cases.len(), 6);
        for c in &cases {
            let len = grid.lengths[c.length_index] as usize;
            assert!(
                c.prompt.len() <= len - ANSWER_TOKENS,
                "{} > {len}",
                c.prompt.len()
            );
            assert!(
                c.prompt.len() > len - ANSWER_TOKENS - 120,
                "prompt too short"
            );
            let text = Bytes.decode(&c.prompt).unwrap();
            let at = text.find(&c.key).expect("the key is in the prompt");
            assert_eq!(
                at,
                c.needle_token + text[c.needle_token..].find(&c.key).unwrap()
            );
            let want = match family {
                Family::Passkey => 5,
                Family::Code => 7,
            };
            assert_eq!(c.key.len(), want);
        }
        // Deeper needles sit later in the prompt.
        assert!(cases[0].needle_token < cases[1].needle_token);
        assert!(cases[1].needle_token < cases[2].needle_token);
        let again = build_cases(family, &grid, &Bytes).unwrap();
        assert_eq!(cases[4].prompt, again[4].prompt);
        // A cell does not depend on the other lengths of the grid.
        let alone = build_cases(family, &GridSpec::new(vec![900], 3, 7), &Bytes).unwrap();
        assert_eq!(alone[1].prompt, cases[4].prompt);
        assert_eq!(distinct_needle_positions(&cases, 2), vec![3, 3]);
    }
    let code = build_cases(Family::Code, &grid, &Bytes).unwrap();
    let text = Bytes.decode(&code[0].prompt).unwrap();
    assert!(text.contains("secret code") && !text.contains("pass key"));
}

/// Round 37: at a short length `--depths` past the places the prompt has for the needle
/// gave cases at the same positions, counted as other depths silently; `moa eval` now
/// notes it from [`distinct_needle_positions`].
#[test]
fn depths_past_a_short_prompts_needle_places_are_counted() {
    let grid = GridSpec::new(vec![600, 4000], 60, 7);
    let cases = build_cases(Family::Passkey, &grid, &Bytes).unwrap();
    let distinct = distinct_needle_positions(&cases, 2);
    assert!(
        distinct[0] < 60,
        "600 bytes hold 60 needle places? {distinct:?}"
    );
    assert!(distinct[1] > distinct[0], "{distinct:?}");
}

#[test]
fn grid_and_text_errors_name_the_limit() {
    let e = GridSpec::new(vec![1024, 9000], 8, 0)
        .check(8192)
        .unwrap_err();
    assert!(
        e.contains("9000") && e.contains("8192") && e.contains("--lengths"),
        "{e}"
    );
    let e = GridSpec::new(vec![20], 8, 0).check(8192).unwrap_err();
    assert!(e.contains("too short"), "{e}");
    let e = GridSpec::new(vec![1024], 0, 0).check(8192).unwrap_err();
    assert!(e.contains("--depths"), "{e}");
    let e = text_windows(&[1, 2, 3], 10, 2).unwrap_err();
    assert!(e.contains("--ppl-length 10"), "{e}");
    let w = text_windows(&(0..100).collect::<Vec<u32>>(), 40, 3).unwrap();
    assert_eq!(w[0][0], 0);
    assert_eq!(w[2][39], 99);
    assert_eq!(fmt_len(7680), "7.5k");
    assert_eq!(fmt_len(1000), "1000");
}

#[test]
fn uniform_baseline_keeps_the_shape_and_density() {
    let plan = Plan::load(Path::new("plans/smollm2-135m-moa-50.toml")).unwrap();
    let u = uniform_plan(&plan, 0.5).unwrap();
    assert_eq!(u.model(), plan.model());
    assert!(u
        .layers()
        .iter()
        .all(|l| l.rules.iter().all(|r| r.alpha == 0 && r.beta() == 0.5)));
    let d = moa::plan::stats::plan_stats(&u, 4096, 2).kv_density;
    assert!((d - 0.5).abs() < 1e-9, "{d}");
}

fn moa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(args)
        .output()
        .expect("running moa")
}

#[test]
fn eval_refuses_bad_inputs_before_any_gpu_work() {
    let dir = tiny::tmp("eval-errors");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let m = model.to_str().unwrap();
    // A plan made for SmolLM2 (30 layers) on the 2-layer tiny model.
    let out = moa(&[
        "eval",
        "--model",
        m,
        "--lengths",
        "1024",
        "--plan",
        "plans/smollm2-135m-moa-50.toml",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("smollm2-135m-moa-50.toml") && err.contains("layers"),
        "{err}"
    );
    // The perplexity method is the CUDA engine's choice; wgpu has only decode steps.
    let out = moa(&[
        "eval",
        "--model",
        m,
        "--lengths",
        "1024",
        "--ppl-rows",
        "0",
        "--ppl-method",
        "both",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--ppl-method") && err.contains("--backend cuda"),
        "{err}"
    );
    // A length beyond the model's context.
    let out = moa(&["eval", "--model", m, "--lengths", "1024,4096"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("4096") && err.contains("2048"), "{err}");
    // An unknown task family.
    let out = moa(&[
        "eval",
        "--model",
        m,
        "--lengths",
        "1024",
        "--tasks",
        "lines",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lines") && err.contains("passkey or code"),
        "{err}"
    );
}

/// `moa eval --ppl-method both`: the per-token comparison of the two perplexity paths.
#[test]
fn perplexity_check_compares_token_by_token() {
    use moa::eval::retrieval::PerplexityCheck;
    let a = vec![vec![1.0f32, 2.0, 3.0], vec![0.5, 0.25]];
    let b = vec![vec![1.0f32, 2.5, 3.0], vec![0.25, 0.25, 9.0]];
    let c = PerplexityCheck::new("p", &a, &b);
    assert_eq!(c.tokens, 5);
    assert!((c.max_abs_nats - 0.5).abs() < 1e-12);
    assert!((c.mean_nats - (-0.5 + 0.25) / 5.0).abs() < 1e-12);
    assert!(c.to_string().contains("5 tokens"), "{c}");
}

/// `moa eval` run outside the repository root: its default perplexity texts
/// (docs/DESIGN.md, README.md) were read from the working directory, so it failed with
/// "--ppl-text: cannot read `docs/DESIGN.md`" anywhere else. They are built in now: the
/// run gets past the texts to the next check (here the refused --ppl-method, which comes
/// before any GPU work).
#[test]
fn eval_runs_outside_the_repository_root() {
    let dir = tiny::tmp("eval-elsewhere");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        .current_dir(&dir)
        .args(["eval", "--model", model.to_str().unwrap()])
        .args([
            "--lengths",
            "1024",
            "--ppl-length",
            "1024",
            "--ppl-method",
            "both",
        ])
        .output()
        .expect("running moa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("cannot read"), "{err}");
    assert!(
        err.contains("--ppl-method") && err.contains("--backend cuda"),
        "{err}"
    );
}
