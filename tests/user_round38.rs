//! A new user's journey, round 38: a user who measures, on a CPU-only machine (no CUDA
//! driver, no PyTorch). Tried: `moa bench` with every flag of its `--help` (the checks
//! that come before the GPU: bad and zero values, `--checks-only` alone, `--wgpu` without
//! `--parity`, `--no-dense` without a plan, `--kv-heads` with `--model`, repeated
//! `--batch`/`--prompt`/`--plan`, `--json` on a folder, a missing folder, a plan or a file
//! of the model folder, `--prompt`/`--new`/`--parity` past the context of `--like` and of
//! a tiny `--model`), `cargo bench --no-run` and the two CPU benchmarks (`compile`,
//! `optimize`) against benches/RESULTS.md's tables, and the PyTorch peers in
//! benches/peers/ with `--help`, no arguments and bad values under python3 without torch.
//! `moa bench`'s errors named their flag and range, and nothing panicked or hung. What it
//! found wrong, each pinned here: every peer script (`decode_peers.py`, `hf_decode.py`,
//! `hf_prefill.py`, `prefill_peers.py`, `rope_llama3.py`) imported torch first, so on a
//! machine without it even `--help` was a ModuleNotFoundError traceback, and bad values
//! (`--reps 0`, `--new 0`, `--flex-every 0`, `--batch x`, a missing input file, an output
//! in a missing folder) were tracebacks on the GPU machine after the model was built, or
//! not found at all: each now answers `--help` and refuses a bad value naming the flag
//! and the allowed range (argparse's usage error, exit 2) before importing torch, and a
//! missing torch is one line (exit 2); `moa bench --prompt P` and `--parity N` near
//! usize::MAX printed saturated sums (`18446744073709551615 + --new 32 =
//! 18446744073709551615 tokens`): the sums are exact now; `moa bench --checks-only`
//! ignored `--launches`, `--prefill-rows` and `--prefill-sub` (flags of the benchmark rows
//! it does not run) in silence: refused now, naming them; `moa bench --model MISSING` said
//! "cannot read `MISSING`" without the flag: it names `--model` now. `benches/optimize.rs` printed
//! the raw instance's bound and gap as `Some(197.44255932743948)` and let a later plan's
//! gap hide a plan with none in "worst gap" (a benchmark's print, not pinned). Seconds
//! each; nothing here needs a GPU, PyTorch or anything outside the repository (the peer
//! test is skipped where there is no python3).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

common::cli::tagged!();

/// A folder to put first on PYTHONPATH whose `torch` and `transformers` fail to import as
/// missing ones do, so the peers see no PyTorch even where this machine has one.
fn no_torch() -> PathBuf {
    let dir = scratch("no-torch");
    for m in ["torch", "transformers"] {
        std::fs::write(
            dir.join(format!("{m}.py")),
            format!("raise ModuleNotFoundError(\"No module named '{m}'\", name=\"{m}\")\n"),
        )
        .unwrap();
    }
    dir
}

/// Runs `python3 benches/peers/<script> args` without torch; None where there is no
/// python3. Returns (exit code, stdout, stderr).
fn peer(script: &str, args: &[&str]) -> Option<(i32, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .env("PYTHONPATH", no_torch())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .ok()?;
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Every peer script answers `--help` without torch; with arguments it would run, it says
/// in one line (exit 2) that it needs PyTorch; a bad value is refused naming its flag and
/// range. Each was a ModuleNotFoundError traceback before any of it.
#[test]
fn peer_scripts_check_their_arguments_before_torch() {
    if peer("rope_llama3.py", &["--help"]).is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let dir = scratch("peers");
    let spans = dir.join("spans.json");
    std::fs::write(
        &spans,
        r#"[{"model":"m","prompt":8,"q_heads":4,"kv_heads":2,"head_dim":16,"n_tokens":8,"layers":[]}]"#,
    )
    .unwrap();
    let rows = dir.join("moa.jsonl");
    std::fs::write(&rows, "{\"dtype\": \"bf16\"}\n").unwrap();
    let missing = dir.join("no-such-folder").join("out.jsonl");
    let spans = spans.to_str().unwrap();
    let rows = rows.to_str().unwrap();
    let missing = missing.to_str().unwrap();

    for script in [
        "decode_peers.py",
        "hf_decode.py",
        "hf_prefill.py",
        "prefill_peers.py",
        "rope_llama3.py",
    ] {
        let (code, out, err) = peer(script, &["--help"]).unwrap();
        assert_eq!(code, 0, "{script} --help:\n{err}");
        assert!(out.contains("usage:"), "{script} --help:\n{out}");
        assert!(!err.contains("Traceback"), "{script} --help:\n{err}");
    }

    // Arguments that would run: one line saying what is missing, exit 2.
    for (script, args) in [
        ("decode_peers.py", vec!["--spans", spans]),
        ("hf_decode.py", vec![]),
        ("hf_prefill.py", vec![]),
        ("prefill_peers.py", vec![rows]),
        ("rope_llama3.py", vec![]),
    ] {
        let (code, _, err) = peer(script, &args).unwrap();
        assert_eq!(code, 2, "{script} {args:?}:\n{err}");
        assert!(!err.contains("Traceback"), "{script} {args:?}:\n{err}");
        assert!(
            err.contains("needs PyTorch") && err.contains("run it on the GPU machine"),
            "{script} {args:?}:\n{err}"
        );
    }

    // Bad values: argparse's usage error naming the flag and what it allows.
    let bad: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "decode_peers.py",
            vec!["--spans", "/no/such/spans.json"],
            "argument --spans: cannot read `/no/such/spans.json`",
        ),
        (
            "decode_peers.py",
            vec!["--spans", rows],
            "argument --spans: `",
        ),
        (
            "decode_peers.py",
            vec!["--spans", spans, "--batch", "16,0"],
            "argument --batch: in `16,0`: 0: allowed 1 or more",
        ),
        (
            "decode_peers.py",
            vec!["--spans", spans, "--replays", "0"],
            "argument --replays: 0: allowed 1 or more",
        ),
        (
            "decode_peers.py",
            vec!["--spans", spans, "--flex-layers", "1,x"],
            "argument --flex-layers: in `1,x`: `x` is not a whole number: allowed 0 or more, or `all` or `none`",
        ),
        (
            "decode_peers.py",
            vec!["--spans", spans, "--json", missing],
            "argument --json: `",
        ),
        (
            "hf_decode.py",
            vec!["--new", "0"],
            "argument --new: 0: allowed 1 or more",
        ),
        (
            "hf_decode.py",
            vec!["--batch", "4,mx"],
            "argument --batch: in `4,mx`: `mx` is not a whole number: allowed 1 or more, or `max`",
        ),
        (
            "hf_decode.py",
            vec!["--reserve-gib", "-1"],
            "argument --reserve-gib: -1: allowed 0 or more",
        ),
        (
            "hf_decode.py",
            vec!["--kv-heads", "4"],
            "--kv-heads 4 does not divide the 9 query heads of --like smollm2-135m: allowed 1, 3, 9",
        ),
        (
            "hf_prefill.py",
            vec!["--reps", "0"],
            "argument --reps: 0: allowed 1 or more",
        ),
        (
            "hf_prefill.py",
            vec!["--like", "llama-4"],
            "argument --like: invalid choice: 'llama-4'",
        ),
        (
            "hf_prefill.py",
            vec!["--attn", "sdpa,flash"],
            "argument --attn: `flash` in `sdpa,flash`: allowed sdpa, eager",
        ),
        (
            "prefill_peers.py",
            vec![rows, "--flex-every", "0"],
            "argument --flex-every: 0: allowed 1 or more",
        ),
        (
            "prefill_peers.py",
            vec![spans],
            "argument moa: `",
        ),
        (
            "prefill_peers.py",
            vec!["/no/such/moa.jsonl"],
            "argument moa: cannot read `/no/such/moa.jsonl`",
        ),
        (
            "rope_llama3.py",
            vec!["--device", "cuda"],
            "unrecognized arguments: --device cuda",
        ),
    ];
    for (script, args, want) in bad {
        let (code, _, err) = peer(script, &args).unwrap();
        assert_eq!(code, 2, "{script} {args:?}:\n{err}");
        assert!(
            err.contains(want),
            "{script} {args:?}: `{want}` not in:\n{err}"
        );
        assert!(!err.contains("Traceback"), "{script} {args:?}:\n{err}");
        assert!(!err.contains("needs PyTorch"), "{script} {args:?}:\n{err}");
    }
}

/// `moa bench`'s length checks summed in a saturating usize, so a --prompt or --parity
/// near usize::MAX printed a sum equal to one of its terms; the sums are exact now.
#[test]
fn bench_length_sums_add_up() {
    let huge = usize::MAX.to_string();
    let err = refused(
        "moa",
        &["bench", "--prompt", &huge],
        &[&format!(
            "--prompt {huge} + --new 32 = {} tokens is past the context of --like smollm2-135m: 8192 tokens",
            usize::MAX as u128 + 32
        )],
    );
    assert!(!err.contains("CUDA"), "{err}");
    refused(
        "moa",
        &["bench", "--checks-only", "--parity", &huge],
        &[&format!(
            "--parity {huge}: its longest prompt (400 tokens) + {huge} = {} tokens is past the model's context of 8192 tokens; allowed --parity 1..=7792",
            usize::MAX as u128 + 400
        )],
    );
}

/// `--launches`, `--prefill-rows` and `--prefill-sub` set how the benchmark rows run; with
/// `--checks-only` (no rows) they were ignored in silence. Refused now, naming them; the
/// checks alone still pass these checks (and stop at the missing CUDA driver here).
#[test]
fn benchmark_row_flags_with_checks_only_are_refused() {
    for (extra, named) in [
        (vec!["--launches"], "--launches set how"),
        (vec!["--prefill-rows", "2"], "--prefill-rows set how"),
        (
            vec!["--prefill-sub", "64", "--launches"],
            "--launches, --prefill-sub set how",
        ),
        // Round 38's leftover: these had defaults, so a given one went unnoticed.
        (vec!["--batch", "4"], "--batch set how"),
        (vec!["--prompt", "512"], "--prompt set how"),
        (vec!["--new", "8"], "--new set how"),
        (vec!["--max-batch", "8"], "--max-batch set how"),
        (vec!["--prefill-chunk", "512"], "--prefill-chunk set how"),
        (vec!["--dtype", "f16"], "--dtype set how"),
        (
            vec!["--like", "llama-3-8b", "--no-dense"],
            "--like, --no-dense set how",
        ),
        (
            vec!["--plan", concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml")],
            "--plan is used by the benchmark rows and --parity, and --checks-only --check-ops runs neither",
        ),
        (vec!["--fuse"], "--fuse is used by the benchmark rows and --parity"),
    ] {
        let mut args = vec!["bench", "--checks-only", "--check-ops"];
        args.extend(extra);
        refused("moa", &args, &[named, "runs n"]);
    }
    let (code, _, err) = run("moa", &["bench", "--checks-only", "--check-ops"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("--checks-only runs none"), "{err}");
}

/// `moa bench --model` of a missing path said "cannot read `PATH`", not which flag gave
/// it; the flag is named now, before the CUDA driver is looked for.
#[test]
fn a_missing_bench_model_names_its_flag() {
    let missing = scratch("missing-model").join("no-such-model");
    let err = refused(
        "moa",
        &["bench", "--model", missing.to_str().unwrap()],
        &[&format!("--model `{}`", missing.display())],
    );
    assert!(!err.contains("CUDA"), "{err}");
}

/// Round 38's leftover: `moa generate`, `eval`, `calib`, `pipeline`, `validate`,
/// `diagnose` and `profile` with a missing `--model` said "cannot read `PATH`" without the
/// flag; each names it now (`commands::model_arg`), before any other input is read.
#[test]
fn a_missing_model_names_its_flag_in_every_command() {
    let dir = scratch("missing-model-all");
    let missing = dir.join("no-such-model.gguf");
    let m = missing.to_str().unwrap();
    let out = dir.join("c.jsonl");
    let o = out.to_str().unwrap();
    let work = dir.join("work");
    let w = work.to_str().unwrap();
    for args in [
        vec!["generate", "--prompt", "hi", "--model", m],
        vec!["eval", "--lengths", "256", "--model", m],
        vec!["calib", "--out", o, "--model", m],
        vec!["pipeline", "--workdir", w, "--model", m],
    ] {
        refused(
            "moa",
            &args,
            &[&format!("--model `{m}`: cannot read it (give a GGUF file")],
        );
    }
}
