//! A new user's journey, round 25 (benches/RESULTS.md): the imported upstream plans of the
//! 1B–8B shapes through `moa plan import`, `moa plan show --max-batch` and `moa model
//! random`; what it found wrong, each pinned here. (Round 25's β given as a quoted number
//! is pinned in `tests/plan.rs`, the subgroup settings that do not apply in
//! `tests/wgpu_options.rs`.) None of these needs the fetched model or a GPU.

mod common;

use common::cli::s;
use std::path::{Path, PathBuf};

common::cli::tagged!();

fn upstream(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream-plans")
        .join(name)
        .join("moa_alpha_beta.json")
}

/// `moa plan import … --kv-heads 64` was refused as the JSON file's fault (`u.json:
/// model.kv_heads = 64 is out of range`); the value came from the flag, which is named.
#[test]
fn a_shape_flag_out_of_range_is_named_as_the_flag() {
    let up = upstream("meta-llama--Llama-3.2-1B-Instruct");
    let base = ["plan", "import", s(&up), "--layers", "16"];
    for (extra, needle) in [
        (
            ["--heads", "32", "--kv-heads", "64", "--head-dim", "64"],
            "--kv-heads 64 is out of range: allowed 1..=32 (at most model.q_heads = 32) (the plan's `model.kv_heads`)",
        ),
        (
            ["--heads", "32", "--kv-heads", "7", "--head-dim", "64"],
            "--kv-heads 7 does not divide model.q_heads = 32",
        ),
        (
            ["--heads", "32", "--kv-heads", "8", "--head-dim", "66"],
            "--head-dim 66 is not a multiple of 4",
        ),
    ] {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let err = refused("moa", &args, &[needle]);
        assert!(!err.contains("moa_alpha_beta.json: `model."), "{err}");
    }
}

/// `moa plan show --max-batch` planned a 100k-token prompt for an imported 8B plan of
/// 32k tokens (the `--like` shape's context is longer); the engine refuses such a request
/// (DESIGN §8), so the planner does too, naming the plan's context.
#[test]
fn max_batch_keeps_to_the_plans_context() {
    let dir = scratch("max-batch-context");
    let plan = dir.join("l8b.toml");
    let up = upstream("gradientai--Llama-3-8B-Instruct-262k");
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            s(&up),
            "--layers",
            "32",
            "--heads",
            "32",
            "--kv-heads",
            "8",
            "--head-dim",
            "128",
            "--max-context",
            "32768",
            "-o",
            s(&plan),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let p = s(&plan);
    let show = |prompt| {
        [
            "plan",
            "show",
            p,
            "--max-batch",
            "--like",
            "llama-3-8b",
            "--memory",
            "135",
            "--prompt-len",
            prompt,
        ]
    };
    refused(
        "moa",
        &show("100000"),
        &[
            "--prompt-len 100000 + --new 1024",
            "the context of plan `l8b` (its model.max_context_tokens) is 32768",
            "allowed --prompt-len 1..=31744",
        ],
    );
    let args = show("31744");
    let (code, out, err) = run("moa", &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("largest batch"), "{out}");
}

/// `moa model random -o FOLDER` over a folder holding tokenizer.json and a README said
/// "config.json and model.safetensors would be replaced": neither was there. It names what
/// is there.
#[test]
fn model_random_names_what_the_folder_holds() {
    let dir = scratch("random-holds");
    let out = dir.join("onlytok");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("tokenizer.json"), b"{}").unwrap();
    std::fs::write(out.join("README"), b"mine").unwrap();
    let err = refused(
        "moa",
        &["model", "random", "--like", "smollm2-135m", "-o", s(&out)],
        &[
            "exists and is not an empty folder",
            "this one holds README, tokenizer.json",
        ],
    );
    assert!(!err.contains("would be replaced"), "{err}");
    assert_eq!(std::fs::read(out.join("tokenizer.json")).unwrap(), b"{}");
    // Many files: four named, the rest counted.
    for i in 0..6 {
        std::fs::write(out.join(format!("f{i}")), b"").unwrap();
    }
    refused(
        "moa",
        &["model", "random", "--like", "smollm2-135m", "-o", s(&out)],
        &["this one holds README, f0, f1, f2 and 4 more"],
    );
}
