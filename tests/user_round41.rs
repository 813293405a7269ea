//! A new user's journey, round 41: the docs as written. On a CPU-only machine (lavapipe),
//! every command, flag, snippet and figure of README.md, docs/MODEL.md, docs/EMBEDDING.md,
//! docs/TESTING.md and docs/CALIBRATION.md tried as written (the fetched SmolLM2 where it
//! was in the cache, tiny `moa model random` models otherwise; `--backend cuda`, `--device
//! cuda` and `moa bench` only as far as their refusals without a driver). What the program
//! got wrong, each pinned here: `moa pipeline --profile-lengths 1024,1024` was refused as
//! "--lengths gives 1024 twice", a flag the pipeline does not have, and every length,
//! `--samples` or `--max-new-tokens` refusal of the pipeline opened with one line naming
//! four flags whatever was at fault; a length too short for the quote task was "length 256
//! is too short for this model", no flag; `MOA_WGPU_STATS=1` on a CPU adapter printed the
//! load's warm-up request (two steps of shader compilation, hundreds of ms each) as a
//! decode summary before the run's own; `moa calib --help` said `--device cuda` recomputes
//! the whole prompt for every token, where it prefills once and keeps each layer's K and
//! V (docs/CALIBRATION.md had it right); README says `--quiet`/`-q` hides a progress bar,
//! and `moa profile -q` / `moa eval -q` were usage errors; the CPU adapter's "building the
//! engine" line promised "10-20 s for SmolLM2" where a cold load took 5 s with the built-in
//! plan and 170 s with a `--kernels` folder (one attention kernel per layer); a relative or
//! file `MOA_CACHE` was "model fetch failed: …" in `moa model info` and `moa generate`,
//! which fetch nothing; `moa-compile --check --wgsl-prefill-q-tile 128` suggested a rewrite
//! without the flag (the same check then failed again), and a default check of a tuned
//! folder named no flag; `moa eval --backend cpu --ppl-method both` was told of wgpu.
//! Seconds each: tiny models, lavapipe only for a 2-layer model.

mod common;

use std::process::Command;

use common::cli::s;
use common::tiny::{sparse_plan, tiny};

common::cli::tagged!();

/// `moa pipeline`'s length refusals name the one flag at fault (`--profile-lengths`,
/// `--validate-length`, `--samples`, `--max-new-tokens`) and its range, with no line
/// naming four flags before it and no `--lengths`, which is `moa calib`'s flag.
#[test]
fn pipeline_length_refusals_name_the_pipelines_own_flag() {
    let dir = scratch("pipeline-lengths");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    let m = s(&model);
    let work = dir.join("work");
    let w = s(&work);
    let four = "--profile-lengths, --validate-length, --samples or --max-new-tokens";
    for (extra, needle) in [
        (
            vec!["--profile-lengths", "128,128", "--validate-length", "256"],
            "--profile-lengths gives 128 twice: allowed each length once",
        ),
        (
            vec!["--profile-lengths", "128", "--validate-length", "4096"],
            "--validate-length 4096 is past the context of",
        ),
        (
            vec!["--profile-lengths", "128", "--validate-length", "256"]
                .into_iter()
                .chain(["--samples", "0"])
                .collect(),
            "--samples 0 (with no --text-samples) builds no sample: allowed 1 or more",
        ),
        (
            vec!["--profile-lengths", "128", "--validate-length", "256"]
                .into_iter()
                .chain(["--max-new-tokens", "0"])
                .collect(),
            "--max-new-tokens 0 is out of range: allowed 1 or more",
        ),
    ] {
        let args = [&["pipeline", "--model", m, "--workdir", w][..], &extra[..]].concat();
        let err = refused("moa", &args, &[needle]);
        assert!(
            !err.contains(four),
            "{args:?}: the four-flag line in:\n{err}"
        );
        assert!(
            !err.contains("--lengths "),
            "{args:?}: `--lengths` in:\n{err}"
        );
    }
    // `moa calib`, whose flag it is, still says `--lengths`.
    refused(
        "moa",
        &["calib", "--model", m, "--out", s(&dir.join("c.jsonl"))]
            .into_iter()
            .chain(["--lengths", "128,128", "--source", "generated"])
            .collect::<Vec<_>>(),
        &["--lengths gives 128 twice: allowed each length once"],
    );
}

/// `moa generate --kernels DIR` on a CPU adapter with `MOA_WGPU_STATS=1` prints one decode
/// summary, the run's: the warm-up request of the load (run on CPU adapters only) printed
/// its own first. The "building the engine" line says what a `--kernels` folder's first
/// load costs (an attention kernel per layer), not the built-in plan's "10-20 s".
#[test]
fn stats_print_the_runs_decode_only_and_the_load_line_tells_a_kernels_folder_apart() {
    let dir = scratch("stats");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |_, _| {});
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, sparse_plan().to_toml()).unwrap();
    let kernels = dir.join("kernels");
    let (code, _, err) = run(
        "moa-compile",
        &[
            s(&plan),
            "-o",
            s(&kernels),
            "--target",
            "wgsl",
            "--dtype",
            "f32",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let o = c
        .env("MOA_WGPU_STATS", "1")
        .args([
            "generate",
            "--f32",
            "--raw",
            "--ignore-eos",
            "--prompt",
            "hello",
        ])
        .args([
            "--max-new-tokens",
            "4",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
        ])
        .args(["--kernels", s(&kernels)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let summaries = err
        .lines()
        .filter(|l| l.contains("dispatches/step"))
        .count();
    assert_eq!(summaries, 1, "one decode summary, the run's:\n{err}");
    // The run's 3 steps after the prefill's first token, not the warm-up's 2.
    assert!(err.contains("decode: 3 steps,"), "{err}");
    if err.contains("llvmpipe") {
        assert!(
            err.contains("a --kernels folder has an attention kernel per layer"),
            "{err}"
        );
        assert!(!err.contains("10-20 s"), "{err}");
    }
}

/// `moa calib --help` says what `--device cuda` does, as docs/CALIBRATION.md does: the
/// prompt prefilled once, keeping each layer's K and V (it said "each token recomputing the
/// whole prompt").
#[test]
fn calib_help_says_the_gpu_answers_from_a_kept_cache() {
    let (code, out, err) = run("moa", &["calib", "--help"]);
    assert_eq!(code, 0, "{err}");
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the prompt prefilled once keeping each layer's K and V"),
        "{out}"
    );
    assert!(!flat.contains("recomputing the whole prompt"), "{out}");
}

/// A relative `MOA_CACHE` or one naming a file is said as what it is, naming the variable,
/// by the commands that only look for the default model (`moa model info`, `moa
/// generate`): they said "model fetch failed: …" though nothing was fetched.
#[test]
fn a_bad_moa_cache_is_not_a_failed_fetch() {
    let dir = scratch("cache");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    for (cache, needle) in [
        ("cache", "MOA_CACHE `cache` is a relative path".to_string()),
        (
            s(&file),
            format!("MOA_CACHE `{}` is a file, not a folder", s(&file)),
        ),
    ] {
        for args in [
            &["model", "info"][..],
            &["generate", "--prompt", "hi", "--max-new-tokens", "1"][..],
        ] {
            let o = Command::new(env!("CARGO_BIN_EXE_moa"))
                .current_dir(&dir)
                .env("MOA_CACHE", cache)
                .args(args)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(&needle), "{args:?}: `{needle}` not in:\n{err}");
            assert!(!err.contains("model fetch failed"), "{args:?}:\n{err}");
        }
    }
}

/// `-q` hides the progress bar of `moa profile` and `moa eval` as it does moa-compile's
/// (README: "`--quiet`/`-q` hides a progress bar"); both were usage errors.
#[test]
fn the_progress_bars_take_dash_q() {
    for cmd in ["profile", "eval"] {
        let (code, out, err) = run("moa", &[cmd, "-q", "--help"]);
        assert_eq!(code, 0, "moa {cmd} -q: {err}");
        assert!(out.contains("-q, --quiet"), "moa {cmd} --help:\n{out}");
    }
}

/// `moa-compile --check` with `--wgsl-prefill-q-tile` / `--wgsl-prefill-key-pairs`
/// suggests a rewrite with those flags (it gave one without them, after which the same
/// check failed again), and a check without them of a folder compiled with a query tile
/// says the folder's tile and flag, as it says the folder's `--target` and `--dtype`.
#[test]
fn compile_check_keeps_and_names_the_wgsl_prefill_flags() {
    let dir = scratch("check-tuning");
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let (p, out) = (s(&plan), dir.join("kernels"));
    let o = s(&out);
    let tuned = ["--wgsl-prefill-q-tile", "128", "--wgsl-prefill-key-pairs"];
    let (code, _, err) = run("moa-compile", &[p, "-o", o, "--target", "wgsl", "-q"]);
    assert_eq!(code, 0, "{err}");
    let check = |extra: &[&str]| {
        run(
            "moa-compile",
            &[&[p, "-o", o, "--target", "wgsl", "--check"][..], extra].concat(),
        )
    };
    let (code, _, err) = check(&tuned);
    assert_eq!(code, 1, "{err}");
    let rewrite = format!(
        "`moa-compile {p} -o {o} --target wgsl --dtype f16 --wgsl-prefill-q-tile 128 \
         --wgsl-prefill-key-pairs` rewrites it"
    );
    assert!(err.contains(&rewrite), "`{rewrite}` not in:\n{err}");
    assert!(err.contains("has 32 queries a workgroup"), "{err}");
    // The suggested rewrite, then the same check passes.
    let (code, _, err) = run(
        "moa-compile",
        &[&[p, "-o", o, "--target", "wgsl", "-q"][..], &tuned].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = check(&tuned);
    assert_eq!(code, 0, "{err}");
    // The default check of the tuned folder names the folder's flag.
    let (code, _, err) = check(&[]);
    assert_eq!(code, 1, "{err}");
    for want in [
        "manifest.json's WGSL prefill has 128 queries a workgroup",
        "and this check compiled 32",
        "--wgsl-prefill-q-tile 128",
    ] {
        assert!(err.contains(want), "`{want}` not in:\n{err}");
    }
}

/// A length too short for the quote task (a byte-level tokenizer's 256 tokens hold no
/// sentence whose opening words occur once) is refused naming the flag that gave it:
/// `--lengths` in `moa calib`, `--profile-lengths` in `moa pipeline`; both said "length
/// 256 is too short for this model", no flag.
#[test]
fn a_length_too_short_for_the_quote_task_names_its_flag() {
    let dir = scratch("quote-length");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    let m = s(&model);
    refused(
        "moa",
        &["calib", "--model", m, "--out", s(&dir.join("c.jsonl"))]
            .into_iter()
            .chain([
                "--lengths",
                "256",
                "--samples",
                "3",
                "--source",
                "generated",
            ])
            .collect::<Vec<_>>(),
        &[
            "--lengths 256 is too short for this model",
            "give a longer length",
        ],
    );
    refused(
        "moa",
        &["pipeline", "--model", m, "--workdir", s(&dir.join("w"))]
            .into_iter()
            .chain(["--profile-lengths", "250", "--validate-length", "256"])
            .chain([
                "--samples",
                "3",
                "--source",
                "generated",
                "--block",
                "2",
                "--densities",
                "0.75",
            ])
            .collect::<Vec<_>>(),
        &["--profile-lengths 250 is too short for this model"],
    );
}

/// `moa eval --ppl-method` beside another backend than cuda is refused naming the value and
/// what that backend does: `--backend cpu` was told "wgpu always teacher-forces by decode
/// steps". Before the model loads (a model folder with no weights would fail after).
#[test]
fn ppl_method_refusals_name_the_backend_given() {
    let dir = scratch("ppl-method");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    for (backend, says) in [
        (
            "cpu",
            "--backend cpu scores each perplexity window by one forward pass",
        ),
        (
            "wgpu",
            "--backend wgpu always teacher-forces by decode steps",
        ),
    ] {
        let err = refused(
            "moa",
            &["eval", "--model", s(&model), "--backend", backend]
                .into_iter()
                .chain([
                    "--ppl-method",
                    "both",
                    "--lengths",
                    "256",
                    "--ppl-scored",
                    "64",
                    "-q",
                ])
                .collect::<Vec<_>>(),
            &["--ppl-method both is for --backend cuda", says],
        );
        assert!(backend == "wgpu" || !err.contains("wgpu"), "{err}");
    }
}
