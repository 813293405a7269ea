//! A new user's journey, round 42 (session 56, branch s56-user; the
//! files before it run to `user_round41.rs`): what changed since session 38, pressed at its
//! edges on a CPU machine (lavapipe). The wgpu engine's `MOA_*` settings at bad and at every
//! other value, texture-only f16 weights, moa-compile's WGSL prefill flags on odd shapes,
//! and upstream plans imported whole and broken. What the program got wrong, each pinned
//! here: an upstream plan written as a JSON list (`[[alphas…], [betas…]]`) was imported as
//! if it were the object; Python's bare `NaN` / `Infinity` in one was "expected value at
//! line 1 column 431", naming neither the value nor its field; and every rewrite a kernels
//! folder's loader suggested (`re-run moa-compile PLAN -o DIR`, "compile this plan with
//! …", "compile them for f16 (…)") dropped the flags the folder was compiled with, so an
//! f32 `--target wgsl` folder with one edited file was rewritten as f16 for every target,
//! and the next `moa generate --f32 --kernels` refused it as "holds f16 kernels".

mod common;

use std::process::Command;

use moa::codegen::{emit, Target};
use moa::lower::{lower, StorageType};
use moa::plan::Plan;

use common::cli::s;

common::cli::tagged!();

/// The upstream Llama-3.2-1B plan's text (16 layers, 32 query heads).
fn upstream_1b() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json",
    );
    std::fs::read_to_string(path).unwrap()
}

/// `moa plan import` of a broken copy of an upstream plan: a JSON list in place of the
/// object is refused (it was imported), and Python's bare `NaN` / `Infinity` / `-Infinity`
/// are named by their field and allowed range (it was serde's "expected value at line 1
/// column N"). The plan as written still imports.
#[test]
fn plan_import_names_a_list_and_pythons_nan() {
    let dir = scratch("import");
    let shape = [
        "--layers",
        "16",
        "--heads",
        "32",
        "--kv-heads",
        "8",
        "--head-dim",
        "64",
    ];
    let import = |name: &str, text: &str| {
        let f = dir.join(format!("{name}.json"));
        std::fs::write(&f, text).unwrap();
        let args = [&["plan", "import", s(&f)][..], &shape[..]].concat();
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let text = upstream_1b();
    let args = import("ok", &text);
    let (code, out, err) = run("moa", &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[[layers]]"), "{out}");

    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = serde_json::to_string(&[&v["alphas"], &v["betas"]]).unwrap();
    let args = import("list", &list);
    refused(
        "moa",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["list.json: holds a JSON list, not an object: an upstream MoA plan is {\"alphas\""],
    );

    // Python's json.dump of float("nan") / float("inf") in the third layer's second head.
    let mut nan = v.clone();
    nan["alphas"][2][1] = serde_json::json!("@NAN@");
    nan["betas"][3][4] = serde_json::json!("@INF@");
    let written = serde_json::to_string(&nan)
        .unwrap()
        .replace("\"@NAN@\"", "NaN")
        .replace("\"@INF@\"", "Infinity");
    let args = import("nan", &written);
    refused(
        "moa",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["nan.json: `alphas[2][1]` = NaN is not allowed: alpha must be a whole number of tokens with |alpha| < 16777216"],
    );
    let written = written.replacen("NaN", "-1024.0", 1);
    let args = import("inf", &written);
    let err = refused(
        "moa",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["inf.json: `betas[3][4]` = inf is out of range: beta must be a fraction of N in [0, 1]"],
    );
    assert!(!err.contains("expected value"), "{err}");
}

/// Every rewrite a kernels folder's loader suggests keeps the flags the folder records
/// (`--target`, `--dtype`, `--wgsl-prefill-q-tile`, and since `tiles.keys_per_step`
/// `--wgsl-prefill-key-pairs`), and following it gives a folder the
/// same run takes; a folder of moa-compile's defaults is told the plain command.
#[test]
fn a_kernels_folders_rewrite_keeps_its_flags() {
    let dir = scratch("rewrite");
    let plan_path = dir.join("plan.toml");
    std::fs::write(&plan_path, common::cli::fixture_gqa()).unwrap();
    let plan = Plan::load(&plan_path).unwrap();
    let out = dir.join("kernels");
    let o = s(&out);
    let flags = [
        "--target",
        "wgsl",
        "--dtype",
        "f32",
        "--wgsl-prefill-q-tile",
        "128",
        "--wgsl-prefill-key-pairs",
    ];
    let compile = |extra: &[&str]| {
        let (code, _, err) = run(
            "moa-compile",
            &[&[s(&plan_path), "-o", o, "-q"][..], extra].concat(),
        );
        assert_eq!(code, 0, "{err}");
    };
    compile(&flags);
    let f32_module = lower(&plan, StorageType::F32);
    emit::read_output(&out, &f32_module, Target::Wgsl).unwrap();

    // A kernel file edited after the compile: the rewrite names the folder's flags.
    let file = out.join("wgsl/l01_decode.wgsl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("// edited\n");
    std::fs::write(&file, &text).unwrap();
    let want = format!(
        "re-run `moa-compile PLAN -o {o} --target wgsl --dtype f32 --wgsl-prefill-q-tile 128 --wgsl-prefill-key-pairs`"
    );
    for e in [
        emit::verify_output(&out).unwrap_err().to_string(),
        emit::read_output(&out, &f32_module, Target::Wgsl)
            .unwrap_err()
            .to_string(),
    ] {
        assert!(e.contains(&want), "`{want}` not in: {e}");
    }
    // The f16 run's way out keeps the target and tile, with the run's dtype.
    let e = emit::read_output(&out, &lower(&plan, StorageType::F16), Target::Wgsl)
        .unwrap_err()
        .to_string();
    let want =
        format!("(`moa-compile PLAN -o {o} --target wgsl --dtype f16 --wgsl-prefill-q-tile 128 --wgsl-prefill-key-pairs`)");
    assert!(e.contains(&want), "`{want}` not in: {e}");
    // Another plan of the same shape: compile this plan as the folder was.
    let other = Plan::from_toml_str(
        &common::cli::fixture_gqa().replace("alpha = [32, 32, 32, 32", "alpha = [48, 32, 32, 32"),
        "other.toml",
    )
    .unwrap();
    let e = emit::read_output(&out, &lower(&other, StorageType::F32), Target::Wgsl)
        .unwrap_err()
        .to_string();
    let want = format!(
        "compile this plan with `moa-compile PLAN -o {o} --target wgsl --dtype f32 --wgsl-prefill-q-tile 128 --wgsl-prefill-key-pairs`"
    );
    assert!(e.contains(&want), "`{want}` not in: {e}");

    // Following the first rewrite: the f32 run takes the folder again.
    compile(&flags);
    emit::verify_output(&out).unwrap();
    emit::read_output(&out, &f32_module, Target::Wgsl).unwrap();

    // moa-compile's defaults (every target, f16, 32 queries): the plain command.
    compile(&[]);
    let file = out.join("wgsl/l01_decode.wgsl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("// edited\n");
    std::fs::write(&file, &text).unwrap();
    let e = emit::verify_output(&out).unwrap_err().to_string();
    assert!(
        e.ends_with(&format!("re-run `moa-compile PLAN -o {o}`")),
        "{e}"
    );
}

/// README's main command with the user's questions: `scripts/main.sh "-5 plus 3?"` passed
/// `--prompt -5 plus 3?`, which clap took for a flag ("unexpected argument '-5' found"),
/// and a second question was dropped unread. Each question is now one `--prompt=TEXT` row;
/// none asks the default question. Run with stand-ins for cargo, moa and moa-compile that
/// record their arguments (the script's build, fetch and compile are not what is tested).
#[test]
fn main_sh_passes_every_question_whatever_it_starts_with() {
    let vulkan = Command::new("bash")
        .args([
            "-c",
            "PATH=\"$PATH:/usr/sbin:/sbin\" ldconfig -p | grep -q libvulkan.so.1",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !vulkan {
        // The script would install lavapipe with apt-get first.
        eprintln!("skipped: no Vulkan loader on this system");
        return;
    }
    let dir = scratch("main-sh");
    let (bin, release) = (dir.join("bin"), dir.join("target/release"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&release).unwrap();
    let calls = dir.join("calls");
    let stub = |path: &std::path::Path, body: &str| {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut p = std::fs::metadata(path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(path, p).unwrap();
    };
    stub(&bin.join("cargo"), "exit 0");
    stub(&release.join("moa-compile"), "exit 0");
    stub(
        &release.join("moa"),
        &format!(
            "for a in \"$@\"; do printf '[%s]' \"$a\"; done >> '{}'; echo >> '{}'",
            calls.display(),
            calls.display()
        ),
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/main.sh");
    let main = |questions: &[&str]| {
        let _ = std::fs::remove_file(&calls);
        let out = Command::new("bash")
            .arg(&script)
            .args(questions)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env("XDG_RUNTIME_DIR", &dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::read_to_string(&calls).unwrap();
        log.lines()
            .find(|l| l.starts_with("[generate]"))
            .unwrap_or_else(|| panic!("no generate call in:\n{log}"))
            .to_string()
    };
    let call = main(&["-5 plus 3?", "And 7 times 6?"]);
    assert!(
        call.contains("[--prompt=-5 plus 3?][--prompt=And 7 times 6?]"),
        "{call}"
    );
    let call = main(&[]);
    assert!(
        call.contains("[--prompt=What is 2+2? Answer in one sentence.]"),
        "{call}"
    );
}

/// `moa generate --prompt "-5 plus 3?"` was clap's "unexpected argument '-5' found": a
/// message may start with `-` now, and a flag where the message should be (`--prompt
/// --raw`, which hyphen values would take as the text) is refused naming it.
#[test]
fn a_prompt_may_start_with_a_hyphen_and_a_flag_is_not_a_prompt() {
    let dir = scratch("hyphen");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    let m = s(&model);
    let args = |prompt: &'static str| {
        vec![
            "generate",
            "--model",
            m,
            "--dense",
            "--raw",
            "--max-new-tokens",
            "1",
            "--print-ids",
            "--prompt",
            prompt,
        ]
    };
    let (code, _, err) = run("moa", &args("-5 plus 3?"));
    assert_eq!(code, 0, "{err}");
    // The byte-level tokenizer: one token a byte, '-' first (id 3 + 45).
    assert!(err.contains("ids[0] prompt [48, 56, 35,"), "{err}");
    for flag in ["--raw", "-h", "--max-new-tokens=3"] {
        refused(
            "moa",
            &args(flag),
            &[&format!(
                "--prompt #1 is `{flag}`, a flag of moa generate: give the message's text after --prompt"
            )],
        );
    }
}

/// `moa eval` of a model with a 256-token context at its defaults: the window took the
/// model's context (256) and the scored tokens their default 256, refused as "--ppl-scored
/// 256 is out of range", a flag the user never gave, so such a model could not be scored
/// at all without it. A window of 256 tokens or fewer now scores half of it, saying so; a
/// --ppl-scored given past the window is still refused.
#[test]
fn eval_of_a_short_context_model_runs_at_its_defaults() {
    let dir = scratch("eval-short");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    let m = s(&model);
    let base = [
        "eval",
        "--model",
        m,
        "--backend",
        "cpu",
        "--tasks",
        "passkey",
        "--lengths",
        "256",
        "--depths",
        "1",
        "--ppl-rows",
        "1",
        "--no-uniform",
    ];
    let (code, _, err) = run("moa", &base);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("moa eval: --ppl-scored 128 (half of --ppl-length 256; the default is 256)"),
        "{err}"
    );
    assert!(err.contains("dense: perplexity"), "{err}");
    let (code, _, err) = run("moa", &[&base[..], &["--ppl-length", "100"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--ppl-scored 50 (half of --ppl-length 100"),
        "{err}"
    );
    refused(
        "moa",
        &[&base[..], &["--ppl-scored", "256"]].concat(),
        &["--ppl-scored 256 is out of range: allowed 1..=255 (below --ppl-length 256)"],
    );
}

/// `MOA_WGPU_TEXTURE_WEIGHTS=1` with `--f32` (the textures hold f16 weights) was taken
/// without a word: the load line now says it is not applied and why; with f16 storage it
/// is applied and the line names the textures.
#[test]
fn texture_weights_asked_with_f32_storage_are_said_not_applied() {
    let dir = scratch("texture-f32");
    let model = common::cli::tiny_model(&dir.join("tiny"));
    let generate = |f32: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        c.env("MOA_WGPU_TEXTURE_WEIGHTS", "1")
            .env("MOA_CACHE", dir.join("no-cache"))
            .args(["generate", "--model", s(&model), "--dense", "--raw"])
            .args(["--prompt", "hi", "--max-new-tokens", "1"]);
        if f32 {
            c.arg("--f32");
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    let note = "MOA_WGPU_TEXTURE_WEIGHTS=1 not applied (the textures hold f16 weights, and this engine stores f32)";
    let err = generate(true);
    assert!(err.contains(note), "{err}");
    let err = generate(false);
    assert!(!err.contains(note), "{err}");
    assert!(err.contains("from textures"), "{err}");
}
