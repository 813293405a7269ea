//! A new user's journey, round 11 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("user_round11-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// [`common::cli::run`] with this file's own model cache.
fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    common::cli::run("user_round11", bin, args)
}

/// [`common::cli::refused`] with this file's own model cache.
fn refused(bin: &str, args: &[&str], needles: &[&str]) -> String {
    common::cli::refused("user_round11", bin, args, needles)
}

/// An upstream plan of 2 layers of 4 query heads.
const UPSTREAM: &str = r#"{"alphas": [[0, 64, 0, 32], [128, 0, 0, 0]],
 "betas": [[0.5, 0.0, 0.25, 0.5], [0.0, 1.0, 1.0, 0.5]]}"#;

/// A small model's context (256 tokens) met upstream's `max_new_tokens` = 1024: `moa plan
/// import` wrote a plan that `moa-compile` refuses, and the only way out was a hand edit of
/// the TOML. `--max-new-tokens` sets it; a value that leaves no prompt token is refused
/// naming the range, and the warning names the flag.
#[test]
fn plan_import_takes_max_new_tokens_for_a_short_context() {
    let dir = scratch("max-new");
    let up = dir.join("up.json");
    std::fs::write(&up, UPSTREAM).unwrap();
    let up = up.to_str().unwrap();
    let shape = [
        "--layers",
        "2",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--head-dim",
        "32",
        "--max-context",
        "256",
    ];
    let plan = dir.join("p.toml");
    let p = plan.to_str().unwrap();
    let mut args = vec!["plan", "import", up, "-o", p];
    args.extend(shape);
    let (code, _, err) = run("moa", &args);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("import again with --max-new-tokens N (0..=255)"),
        "{err}"
    );
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    refused(
        "moa-compile",
        &[p, "-o", o],
        &["span.max_new_tokens", "0..=255"],
    );

    args.extend(["--max-new-tokens", "64"]);
    let (code, _, err) = run("moa", &args);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("max_new_tokens = 64"), "{text}");
    // Only max_new_tokens moved: upstream's span constants stay.
    assert!(
        text.contains("sink_tokens = 64") && text.contains("mode = \"upstream\""),
        "{text}"
    );
    let (code, _, err) = run("moa-compile", &[p, "-o", o, "--target", "wgsl"]);
    assert_eq!(code, 0, "{err}");

    let n = args.len();
    args[n - 1] = "256";
    refused(
        "moa",
        &args,
        &["--max-new-tokens 256 is out of range: allowed 0..=255"],
    );
}
