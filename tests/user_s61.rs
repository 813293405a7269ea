//! A new user's journey, round 46 (session 61, branch s61-user; the files before it run to
//! `user_s60.rs`): "my own Llama-family model, my own plan" — a random Llama-3.2-1B-shape
//! Hugging Face folder and Q4_K_M GGUF of 2 layers through `moa calib` → `moa profile` →
//! `moa optimize` and `moa pipeline` at the smallest settings, the plan shown, compiled for
//! both targets, run by `moa generate` and `moa eval`, with bad input along the way. What
//! the programs got wrong, each pinned here (benches/new-user/s61/journey.md has the runs).

mod common;

use common::cli::s;

common::cli::tagged!();

/// `moa calib --lengths 512,256 --samples 3` on a model with a byte-level tokenizer: the
/// third sample of each length quotes a document, whose fixed text does not fit 256 tokens.
/// The refusal came only when that sample's turn came, after the model had answered every
/// 512-token prompt and two 256-token ones (on the 1B shape 12 s; minutes for a real model
/// on a CPU). Every prompt is now built before the first answer, so the length is refused
/// at once, naming the flag, and nothing was answered.
#[test]
fn calib_refuses_a_length_too_short_for_the_quote_task_before_answering_any_prompt() {
    let dir = scratch("calib-quote");
    let model = common::cli::tiny_model_of(&dir.join("m"), 1024, 7);
    let out = dir.join("calib.jsonl");
    let err = refused(
        "moa",
        &[
            "calib",
            "--out",
            s(&out),
            "--lengths",
            "512,256",
            "--samples",
            "3",
            "--source",
            "generated",
            "--model",
            s(&model),
        ],
        &[
            "--lengths 256 is too short for this model",
            "quote prompt's fixed text",
            "or more holds any of its sentences",
        ],
    );
    assert!(!err.contains("answering"), "a prompt was answered:\n{err}");
    assert!(!err.contains("sample 1/"), "a sample was made:\n{err}");
    let mut answers = out.clone().into_os_string();
    answers.push(".answers");
    assert!(
        !std::path::Path::new(&answers).exists(),
        "answers were logged"
    );
    assert!(!out.exists());
    // Pass keys only (2 samples a length) fit 256 tokens: the same lengths are made.
    let (code, _, err) = run(
        "moa",
        &[
            "calib",
            "--out",
            s(&out),
            "--lengths",
            "512,256",
            "--samples",
            "2",
            "--model",
            s(&model),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), 4);
}

/// `moa optimize --near PLAN --max-changes 0` wrote PLAN's rules back unchanged, and
/// `--max-changes 100` for a plan of 16 KV groups bound nothing, both with exit 0, where
/// `moa pipeline --near` refuses them. Each is now refused with the range, counted as
/// `--gqa-native` counts units (KV groups with it, query heads without).
#[test]
fn optimize_refuses_max_changes_outside_the_near_plans_units() {
    use common::profiles::{optimize_args, save_profiles, shape};
    let dir = scratch("near-range");
    // 3 layers, 8 query / 2 KV heads of 64, 1024 tokens.
    let files = save_profiles(&dir, &shape(3, 8, 2, 64, 1024), &[256, 512]);
    // The near plan: one this optimizer makes from the profiles, one rule per KV group.
    let first = dir.join("first");
    let (code, _, err) = run(
        "moa",
        &optimize_args(
            &files,
            &["--density", "0.5", "--gqa-native", "-o", s(&first)],
        ),
    );
    assert_eq!(code, 0, "{err}");
    let near = first.join("plan_0.toml");
    let out = dir.join("opt");
    let args = |k: &'static str, gqa: bool| {
        let mut extra = vec![
            "--density",
            "0.5",
            "--near",
            s(&near),
            "--max-changes",
            k,
            "-o",
            s(&out),
        ];
        if gqa {
            extra.push("--gqa-native");
        }
        optimize_args(&files, &extra)
    };
    refused(
        "moa",
        &args("0", true),
        &[
            "--max-changes 0 is out of range: allowed 1 to 6",
            "3 layers × 2 KV groups",
            "0 would return the plan unchanged",
        ],
    );
    refused(
        "moa",
        &args("7", true),
        &["--max-changes 7 is out of range: allowed 1 to 6"],
    );
    // Without --gqa-native the units are query heads: 7 is in range, 25 is not.
    refused(
        "moa",
        &args("25", false),
        &[
            "--max-changes 25 is out of range: allowed 1 to 24",
            "3 layers × 8 query heads",
        ],
    );
    assert!(!out.exists(), "a refused run made its output folder");
    // The ends of the range run.
    for (k, gqa) in [("6", true), ("1", true), ("24", false)] {
        let (code, _, err) = run("moa", &args(k, gqa));
        assert_eq!(code, 0, "--max-changes {k}: {err}");
    }
    assert_eq!(code, 0, "{err}");
}

/// `moa pipeline --name ''` ran the whole pipeline and wrote `plans/-50.toml`, a file that
/// `moa-compile`, `moa plan show` and `moa generate --plan` then read as a flag;
/// `--profile-jobs 0` ran as 1 without a word. Both are refused before any step, naming
/// the flag and what is allowed.
#[test]
fn pipeline_refuses_an_empty_name_and_zero_profile_jobs_before_any_step() {
    let dir = scratch("pipeline-name");
    let model = common::cli::tiny_model(&dir.join("m"));
    let work = dir.join("w");
    let plans = dir.join("plans");
    let base = [
        "pipeline",
        "--model",
        s(&model),
        "--workdir",
        s(&work),
        "--plans-dir",
        s(&plans),
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    refused(
        "moa",
        &with(&["--name", ""]),
        &[
            "--name `` is not usable",
            "`-50.toml`",
            "allowed a name that is not empty and does not start with `-`",
        ],
    );
    refused(
        "moa",
        &with(&["--name=-mine"]),
        &["--name `-mine` is not usable", "`-mine-50.toml`"],
    );
    refused(
        "moa",
        &with(&["--profile-jobs", "0"]),
        &["--profile-jobs 0 is out of range: allowed 1 or more"],
    );
    assert!(!work.exists(), "a refused run made the work folder");
    assert!(!plans.exists(), "a refused run made the plans folder");
}

/// `moa eval --backend cpu` of the Llama-3.2-1B shape's random weights: each scored token
/// costs about 1100 nats, so the perplexity e^1100 overflows f64, and the table read
/// `inf` for dense and `inf (NaN%)` for every plan. The cell now gives the perplexity as
/// `e^<mean nats>` and the change from the mean nats; a finite perplexity reads as before.
#[test]
fn eval_table_gives_an_overflowing_perplexity_as_a_power_of_e_and_its_change() {
    use moa::eval::retrieval::EvalReport;
    let plan = |name: &str, nats: [f32; 2]| {
        format!(
            r#"{{"name": "{name}", "kv_density": [1.0],
                "retrieval": [{{"family": "passkey", "correct": [[false]], "answers": [["x"]]}}],
                "perplexity": null, "perplexity_nats": [[{}, {}]],
                "effective_context": [512]}}"#,
            nats[0], nats[1]
        )
    };
    let json = format!(
        r#"{{"model": "m", "backend": "cpu", "grid": {{"lengths": [512], "depths": [0.5], "seed": 0}},
            "perplexity_setup": [1, 512, 2, ["t"]], "seconds": 1.0,
            "plans": [{}, {}]}}"#,
        plan("dense", [1100.0, 1120.0]),
        plan("mine", [1100.5, 1120.5])
    );
    let mut report: EvalReport = serde_json::from_str(&json).unwrap();
    for p in &mut report.plans {
        p.perplexity = Some(f64::INFINITY);
    }
    let md = report.markdown();
    assert!(!md.contains("NaN"), "{md}");
    assert!(md.contains("| e^1110.0 |"), "{md}");
    // e^0.5 − 1 = +64.9%.
    assert!(md.contains("| e^1110.5 (+64.9%) |"), "{md}");
    // A finite perplexity keeps its three decimals and the ratio.
    report.plans[0].perplexity = Some(10.0);
    report.plans[1].perplexity = Some(11.0);
    let md = report.markdown();
    assert!(md.contains("| 10.000 |"), "{md}");
    assert!(md.contains("| 11.000 (+10.0%) |"), "{md}");
}
