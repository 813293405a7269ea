//! Command-line values at their edges (session 15's new-user trial): each is refused
//! before any heavy work, naming the flag and what it allows, never a panic. No GPU: every
//! case fails before an adapter, a CUDA driver or the weights are needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// [`common::cli::scratch`] under this file's tag.
fn scratch(name: &str) -> PathBuf {
    common::cli::scratch("flag_edges", name)
}

/// Runs `moa args`, expects exit 2 (refused; clap's own errors too) with every needle on
/// stderr and no panic.
fn refused(args: &[&str], needles: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        // Never the user's model cache: a case that got that far would fail anyway.
        .env(
            "MOA_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("flag_edges-no-cache"),
        )
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "moa {args:?}:\n{err}");
    for n in needles {
        assert!(err.contains(n), "moa {args:?}: `{n}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "moa {args:?} panicked:\n{err}");
}

/// A negative number was taken for a flag by clap ("unexpected argument '-1' found",
/// naming no flag); now it reaches the flag's check.
#[test]
fn negative_numbers_reach_the_flags_own_check() {
    let m = [
        "generate",
        "--model",
        "/nonexistent/model.gguf",
        "--prompt",
        "hi",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { m.iter().chain(extra).copied().collect() };
    refused(
        &with(&["--temperature", "-1"]),
        &["`temperature` = -1 is out of range", "finite number >= 0"],
    );
    refused(
        &with(&["--top-p", "-0.5"]),
        &["`top_p` = -0.5 is out of range", "(0, 1]"],
    );
    refused(
        &with(&["--max-new-tokens", "-3"]),
        &["invalid value '-3' for '--max-new-tokens"],
    );
    refused(
        &with(&["--seed", "-1"]),
        &["invalid value '-1' for '--seed"],
    );
    // 1/T overflowed in the sampling kernels: tokens other than greedy's, no error.
    refused(
        &with(&["--temperature", "1e-40"]),
        &["--temperature 1e-40 is out of range: allowed 0 (greedy) or a finite number >= 1.1754944e-38"],
    );
}

/// `moa optimize --time-limit 1e300` passed the "positive number" check and panicked in
/// `Duration::from_secs_f64`; `--min-beta` was checked only after the profiles loaded.
#[test]
fn optimize_refuses_settings_before_reading_profiles() {
    let base = [
        "optimize",
        "--profile",
        "/nonexistent/p.safetensors",
        "--density",
        "0.5",
        "-o",
        "/nonexistent/out",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    for t in ["1e300", "0", "NaN", "-1"] {
        refused(
            &with(&["--time-limit", t]),
            &["--time-limit", "allowed a number of seconds in (0, 1e9]"],
        );
    }
    refused(
        &with(&["--min-beta", "NaN"]),
        &["--min-beta NaN is outside 0 to 1"],
    );
}

/// `moa pipeline` checked the optimizer's and the profiler's settings only when it got to
/// those steps, after the calibration (an hour on two cores): `--time-limit 1e300`
/// panicked there, `--text-weight -1` and `--max-rules-per-layer 0` failed there. Now
/// before any step, leaving no work folder.
#[test]
fn pipeline_refuses_later_steps_settings_before_the_first() {
    let dir = scratch("pipeline");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&model, |_, _| {});
    let work = dir.join("work");
    let (m, w) = (model.to_str().unwrap(), work.to_str().unwrap());
    let short = [
        "pipeline",
        "--model",
        m,
        "--workdir",
        w,
        // Lengths the tiny model (context 128) takes: at least 64 prompt tokens before the
        // 16 answer tokens (64 is refused as too short since session 19), in tiles of 32.
        "--profile-lengths",
        "96",
        "--validate-length",
        "128",
        "--block",
        "32",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { short.iter().chain(extra).copied().collect() };
    refused(
        &with(&["--time-limit", "1e300"]),
        &["--time-limit 1e300 is out of range"],
    );
    refused(
        &with(&["--text-weight", "-1"]),
        &["--text-weight -1 is out of range: allowed a finite number >= 0"],
    );
    refused(
        &with(&["--max-rules-per-layer", "0"]),
        &["--max-rules-per-layer 0 is out of range: allowed 1 or more"],
    );
    assert!(!work.exists(), "a refused pipeline left a work folder");
    // `moa profile` checks --text-weight before it loads the model.
    refused(
        &[
            "profile",
            "--model",
            m,
            "--calib",
            "/nonexistent/c.jsonl",
            "--lengths",
            "64",
            "-o",
            w,
            "--text-weight",
            "NaN",
        ],
        &["--text-weight NaN is out of range"],
    );
}

/// `moa eval`: a perplexity window with no token to score (`--ppl-scored 0`), none before
/// the scored ones (`--ppl-scored` ≥ `--ppl-length`) or empty (`--ppl-length 0`) failed
/// only after the whole retrieval grid had run, perplexity being scored last.
#[test]
fn eval_refuses_a_perplexity_window_before_the_model_loads() {
    let dir = scratch("eval");
    let model = dir.join("tiny.gguf");
    // The tiny model's 128-token context is too short for a needle prompt.
    common::tiny::tiny(3, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = candle_core::quantized::gguf_file::Value::U32(2048);
            }
        }
    });
    let m = model.to_str().unwrap();
    let base = ["eval", "--model", m, "--lengths", "1024"];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    refused(
        &with(&["--ppl-length", "0"]),
        &["--ppl-length 0 is out of range: allowed 2..=2048"],
    );
    refused(
        &with(&["--ppl-length", "1024", "--ppl-scored", "0"]),
        &["--ppl-scored 0 is out of range: allowed 1..=1023"],
    );
    refused(
        &with(&["--ppl-length", "1024", "--ppl-scored", "1024"]),
        &["--ppl-scored 1024 is out of range"],
    );
    refused(
        &with(&["--ppl-length", "4096"]),
        &["--ppl-length 4096 is out of range: allowed 2..=2048"],
    );
    // The report goes to a missing folder: found after the first plan's scoring before.
    let json = dir.join("missing/r.json");
    let j = json.to_str().unwrap();
    refused(
        &[&base[..], &["--json", j]].concat(),
        &[&format!("--json `{j}`: the folder `"), "does not exist"],
    );
    // The heatmaps' folder was made only once every plan was scored (session 19): a file
    // where it should go is named first.
    let taken = dir.join("taken");
    std::fs::write(&taken, "a file").unwrap();
    let t = taken.to_str().unwrap();
    refused(
        &[&base[..], &["--heatmaps", t]].concat(),
        &[&format!("--heatmaps `{t}` exists and is not a folder")],
    );
    // A count of 0 depths names the flag (it read "--lengths and --depths must each give
    // at least one value").
    refused(
        &with(&["--depths", "0"]),
        &["--depths 0 is out of range: allowed 1 or more needle depths per length"],
    );
}

/// `moa bench`: a bad --batch was found once the first engine was built (after the checks
/// and the copy-bandwidth run), `--batch 0` printed "no row fits", `--new 0` failed each
/// row. Refused before the CUDA driver loads, so this runs on machines without one.
#[test]
fn bench_refuses_counts_before_the_driver_loads() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--check-ops", "--like", "llama-2-7"],
            "unknown model shape `llama-2-7`",
        ),
        (
            &["--check-ops", "--plan", "plans/fixture-gqa.toml"],
            "plan `model.layers` = 3, model has 30",
        ),
        (
            &["--batch", "0"],
            "--batch `0`: allowed a count of 1 or more, or `max`",
        ),
        (&["--batch", "1,many"], "--batch `many`"),
        (&["--new", "2"], "--new 2 is too few: allowed 4 or more"),
        (&["--prompt", "1024,0"], "--prompt 0: allowed 1 or more"),
        (
            &["--prefill-chunk", "0"],
            "--prefill-chunk 0: allowed 1 or more",
        ),
        (&["--max-batch", "0"], "--max-batch 0: allowed 1 or more"),
    ];
    for (extra, needle) in cases {
        let args: Vec<&str> = ["bench"].iter().chain(extra).copied().collect();
        refused(&args, &[needle]);
    }
}

/// `moa diagnose --n 0` (or an N past the plan's context) took spans the plan does not
/// define, `--key-tokens 0` measured a one-token key, and `--max-samples 0` in diagnose
/// and validate said the calibration file "has no samples": each named now, before the
/// calibration file or the model is read.
#[test]
fn diagnose_and_validate_refuse_counts_naming_the_flag() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let base = ["diagnose", "--calib", "/nonexistent/c.jsonl", "--plan", p];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    refused(
        &with(&["--n", "0"]),
        &["--n 0 is out of range: allowed 1..=1024 (the plan's model.max_context_tokens)"],
    );
    refused(&with(&["--n", "1025"]), &["--n 1025 is out of range"]);
    refused(
        &with(&["--key-tokens", "0"]),
        &["--key-tokens 0: allowed 1 or more"],
    );
    refused(
        &with(&["--max-samples", "0"]),
        &["--max-samples 0 selects no sample"],
    );
    refused(
        &[
            "validate",
            "--calib",
            "/nonexistent/c.jsonl",
            "--plan",
            p,
            "--max-samples",
            "0",
        ],
        &["--max-samples 0 selects no sample"],
    );
}

/// `moa calib --lengths 64,128,64` built the samples of 64 twice, and `--text-scored 0` was
/// blamed on the sample ("has 245 tokens: too few to score --text-scored 0 of them").
#[test]
fn calib_refuses_a_repeated_length_and_no_scored_text() {
    let dir = scratch("calib");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&model, |_, _| {});
    let out = dir.join("c.jsonl");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    let base = ["calib", "--model", m, "--out", o, "--source", "generated"];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    refused(
        &with(&["--lengths", "64,128,64"]),
        &["--lengths gives 64 twice: allowed each length once"],
    );
    refused(
        &with(&[
            "--lengths",
            "128",
            "--text-samples",
            "1",
            "--text-scored",
            "0",
        ]),
        &["--text-scored 0: a text sample needs at least 1 scored token: allowed 1 or more"],
    );
    assert!(!out.exists());
}

/// `moa generate --dense` on a model whose shape the kernels do not take (head_dim 18)
/// failed after the weights loaded as "<plan>: `model.head_dim` = 18 ...", naming a plan
/// the user never gave; now before the load, naming --dense and the model.
#[test]
fn dense_on_a_shape_the_kernels_do_not_take_names_the_model() {
    let dir = scratch("dense-shape");
    common::tiny::tiny(3, true).write_hf(&dir, candle_core::DType::F32, true);
    let config = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["head_dim"] = 18.into();
    std::fs::write(&config, json.to_string()).unwrap();
    let d = dir.to_str().unwrap();
    refused(
        &["generate", "--dense", "--model", d, "--prompt", "hi"],
        &[
            "--dense: the model `",
            "has a shape moa's attention kernels do not take",
            "the dense plan of the model's shape: `model.head_dim` = 18 is not a multiple of 4",
        ],
    );
}
