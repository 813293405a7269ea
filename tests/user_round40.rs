//! A new user's journey, round 40: the leftovers of rounds 28 and 37–39, checked again
//! one by one. Most were fixed since and are pinned where they were fixed (`moa generate
//! --max-new-tokens` -1 and 0 state one range: tests/user_round18.rs; `moa eval --depths`
//! past the distinct needle positions says so: tests/eval_retrieval.rs; a missing
//! `--model` names the flag in every command and `moa bench --checks-only` refuses every
//! row flag given: tests/user_round38.rs; `moa model info` of a broken safetensors exits
//! 2, `--prompt`/`--prompt-file` rows keep the command-line order and config errors name
//! config.json's keys: tests/user_round29.rs). What was still wrong, pinned here: `moa
//! optimize`'s refusals of `--band`, `--mip-gap`, `--extra-length` and
//! `--max-rules-per-layer` opened with one line naming all four flags whatever was at
//! fault, and a `--plan-shape` or `--near` plan of another shape than the profiles was
//! "model shape mismatch: … the plan shape is …" / "the near plan is for …", naming
//! neither flag. Each now names its flag and the allowed range or shape. A second or so;
//! tiny synthetic profiles, no model.

mod common;

use common::profiles::{optimize_args, save_profiles, shape};

common::cli::tagged!();

/// Seeded synthetic profiles of a tiny GQA shape (4 layers × 4 query heads, 2 KV heads
/// of 16) at 512 and 1024 tokens, saved in `dir`; returns their paths.
fn tiny_profiles(dir: &std::path::Path) -> Vec<String> {
    save_profiles(dir, &shape(4, 4, 2, 16, 8192), &[512, 1024])
}

/// Every refusal of a bad `moa optimize` setting names the one flag at fault and its
/// allowed range (the profile-free ones before any profile is read), and a plan of
/// another shape given as `--plan-shape` or `--near` is refused naming that flag, the
/// file and both shapes.
#[test]
fn optimize_refusals_name_the_flag_at_fault() {
    let dir = scratch("optimize-flags");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let missing = dir.join("no-such-profile.safetensors");
    let m = missing.to_str().unwrap();
    let four = "--density/--band, --mip-gap, --extra-length or --max-rules-per-layer";
    for (extra, needle) in [
        (
            vec!["--band", "0.5,0.4"],
            "--band 0.5,0.4 is out of range: allowed `lo,hi` with 0 ≤ lo ≤ hi ≤ 1",
        ),
        (
            vec!["--band", "0.2,1.5"],
            "--band 0.2,1.5 is out of range: allowed `lo,hi` with 0 ≤ lo ≤ hi ≤ 1",
        ),
        (
            vec!["--density", "0.5", "--mip-gap", "2"],
            "--mip-gap 2 is out of range: allowed 0 to 1",
        ),
        (
            vec!["--density", "0.5", "--mip-gap", "NaN"],
            "--mip-gap NaN is out of range: allowed 0 to 1",
        ),
        (
            vec!["--density", "0.5", "--extra-length", "0"],
            "--extra-length 0 is out of range: allowed 1..=1073741824 tokens",
        ),
        (
            vec!["--density", "0.5", "--extra-length", "2000000000"],
            "--extra-length 2000000000 is out of range: allowed 1..=1073741824 tokens",
        ),
        (
            vec!["--density", "0.5", "--max-rules-per-layer", "0"],
            "--max-rules-per-layer 0 is out of range: allowed 1 or more",
        ),
    ] {
        let mut args = vec!["optimize", "--profile", m, "-o", o];
        args.extend(&extra);
        let err = refused("moa", &args, &[needle]);
        assert!(!err.contains(four), "{extra:?}:\n{err}");
        // Refused before the (missing) profile is read.
        assert!(!err.contains("no-such-profile"), "{extra:?}:\n{err}");
    }

    let files = tiny_profiles(&dir);
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let theirs = "3 layers × 8 query heads (2 KV) of 64";
    let ours = "4 layers × 4 query heads (2 KV) of 16";
    let err = refused(
        "moa",
        &optimize_args(
            &files,
            &["--density", "0.5", "--plan-shape", other, "-o", o],
        ),
        &[
            &format!("--plan-shape `{other}` is for {theirs} but --profile `"),
            &format!("is for {ours}: allowed a plan of the profiles' shape"),
        ],
    );
    assert!(!err.contains("model shape mismatch"), "{err}");
    let err = refused(
        "moa",
        &optimize_args(
            &files,
            &[
                "--density",
                "0.5",
                "--near",
                other,
                "--max-changes",
                "2",
                "-o",
                o,
            ],
        ),
        &[&format!(
            "--near `{other}` is for {theirs} but the profiles are for {ours}: allowed a plan \
             of that shape"
        )],
    );
    assert!(!err.contains("model shape mismatch"), "{err}");

    // A near plan of the right shape whose rules the run cannot take (two rules in one KV
    // group under --gqa-native): the optimizer's reason, under a line naming --near.
    let split = dir.join("split.toml");
    let layer = "[[layers]]\nalpha = [0, 64, 0, 0]\nbeta = [0.5, 0.0, 0.5, 0.5]\n";
    std::fs::write(
        &split,
        format!(
            "format_version = 1\n\n[model]\nlayers = 4\nq_heads = 4\nkv_heads = 2\n\
             head_dim = 16\nmax_context_tokens = 8192\n\n{}",
            [layer; 4].join("\n")
        ),
    )
    .unwrap();
    let s = split.to_str().unwrap();
    refused(
        "moa",
        &optimize_args(
            &files,
            &[
                "--density",
                "0.5",
                "--gqa-native",
                "--near",
                s,
                "--max-changes",
                "2",
                "-o",
                o,
            ],
        ),
        &[
            &format!("--near `{s}`"),
            "the near plan gives the query heads of layer 0, unit 0 different rules",
        ],
    );
    assert!(!out.exists(), "a refused run wrote {o}");
}
