//! A new user's journey, round 31: a user who brings their own Llama-family model (odd but
//! legal shapes: head_dim 32 or 128, GQA groups of 1 to 8, llama3 rope scaling, untied f16
//! weights, a vocabulary past the tokenizer's), imports an upstream plan, compiles it with
//! `moa-compile` and runs `moa generate` with and without `--kernels` and with
//! `MOA_WGSL_RULES_TABLE` set and unset; what it found wrong, each pinned here. The models
//! are tiny random ones (`moa::model::random`, what `moa model random` writes, of a shape
//! that runs in a second on lavapipe); none needs the fetched model or a GPU.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::{s, tiny_model};

common::cli::tagged!();

/// A plan of [`tiny_model`]'s shape whose two layers have different rules (so each
/// layer's baked decode is its own shader text, and the table form reads other rows).
fn tiny_plan() -> String {
    "format_version = 1\n\n[model]\nname = \"tiny\"\nlayers = 2\nq_heads = 4\nkv_heads = 2\n\
     head_dim = 16\nmax_context_tokens = 256\n\n[span]\nsink_tokens = 4\nmin_span_tokens = 8\n\
     block_tokens = 4\nmode = \"moa\"\nmax_new_tokens = 16\n\n[[layers]]\n\
     alpha = [8, 8, 16, 4]\nbeta = [0.5, 0.25, 0.0, 1.0]\n\n[[layers]]\n\
     alpha = [0, 12, 32, 20]\nbeta = [1.0, 0.125, 0.0, 0.375]\n"
        .to_string()
}

/// `moa` with `args` and the environment variables `env` (besides [`run`]'s own cache);
/// returns (exit code, stdout, stderr).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moa"));
    cmd.env(
        "MOA_CACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-no-cache", tag())),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `ids[..]` lines of a `--print-ids` run's stderr.
fn ids(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.starts_with("ids["))
        .map(str::to_string)
        .collect()
}

/// Round 31: `MOA_WGSL_RULES_TABLE=0 moa generate --kernels DIR` (a user comparing the
/// table form with the baked one) was refused "moa-compile writes the default tuning",
/// though the folder holds exactly the rules baked in, what `0` asks. It is taken now, and
/// gives the greedy tokens of the engine's own kernels with the table and without; a form
/// the folder cannot honour (`MOA_WGSL_SG_DECODE=0`) is still refused, saying what
/// moa-compile writes, and a bad value names the variable and its values.
#[test]
fn rules_table_off_is_taken_over_a_compiled_folder() {
    let dir = scratch("table");
    let model = tiny_model(&dir.join("m"));
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, tiny_plan()).unwrap();
    let kernels = dir.join("k");
    let (code, _, err) = run(
        "moa-compile",
        &[s(&plan), "-o", s(&kernels), "--target", "wgsl", "-q"],
    );
    assert_eq!(code, 0, "{err}");
    let long = "a prompt long enough that every rule's span is shorter than N: ".repeat(2);
    let base = [
        "generate",
        "--model",
        s(&model),
        "--plan",
        s(&plan),
        "--prompt",
        &long,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "12",
        "--ignore-eos",
        "--print-ids",
    ];
    let with_kernels = [&base[..], &["--kernels", s(&kernels)]].concat();
    let gen = |args: &[&str], env: &[(&str, &str)]| {
        let (code, _, err) = run_env(args, env);
        assert_eq!(code, 0, "{args:?} {env:?}:\n{err}");
        let ids = ids(&err);
        assert_eq!(ids.len(), 6, "{err}");
        ids
    };
    let table = gen(&base, &[]);
    assert_eq!(gen(&base, &[("MOA_WGSL_RULES_TABLE", "0")]), table);
    assert_eq!(gen(&base, &[("MOA_WGSL_RULES_TABLE", "1")]), table);
    assert_eq!(gen(&with_kernels, &[("MOA_WGSL_RULES_TABLE", "0")]), table);
    assert_eq!(gen(&with_kernels, &[]), table);
    // What a folder cannot honour: refused before the weights load, saying what it holds.
    let (code, _, err) = run_env(&with_kernels, &[("MOA_WGSL_SG_DECODE", "0")]);
    assert_eq!(code, 2, "{err}");
    for n in [
        "MOA_WGSL_SG_DECODE=0",
        "moa-compile writes its own",
        "only MOA_WGSL_RULES_TABLE=0",
    ] {
        assert!(err.contains(n), "`{n}` not in:\n{err}");
    }
    assert!(!err.contains("writes the default tuning"), "{err}");
    for bad in ["2", "yes", "off"] {
        let (code, _, err) = run_env(&base, &[("MOA_WGSL_RULES_TABLE", bad)]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains(&format!("MOA_WGSL_RULES_TABLE=\"{bad}\""))
                && err.contains("accepted: 0 or 1"),
            "{bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Round 31: a model whose vocabulary (300) runs past its tokenizer's 259 tokens sampled
/// ids with no token, and the text dropped them silently (a row of 40 ids printed 10
/// characters). Each such row is named on stderr now, with how many ids, which, and both
/// sizes.
#[test]
fn generated_ids_without_a_token_are_named() {
    let dir = scratch("lost");
    let model = tiny_model(&dir.join("m"));
    let (code, out, err) = run_env(
        &[
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "40",
            "--ignore-eos",
            "--temperature",
            "50",
            "--seed",
            "3",
            "--print-ids",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let generated: Vec<u32> = err
        .lines()
        .find_map(|l| l.strip_prefix("ids[0] generated "))
        .map(|l| {
            l.trim_matches(|c| c == '[' || c == ']')
                .split(", ")
                .map(|t| t.parse().unwrap())
                .collect()
        })
        .unwrap();
    let lost = generated.iter().filter(|&&id| id >= 259).count();
    assert!(
        lost > 0,
        "the seed drew no id past the tokenizer: {generated:?}"
    );
    let note = format!("row 0: {lost} of its 40 generated ids have no token in");
    assert!(err.contains(&note), "`{note}` not in:\n{err}");
    assert!(
        err.contains("(259 tokens; the model's vocabulary is 300)"),
        "{err}"
    );
    assert!(!out.contains("no token"), "the note goes to stderr: {out}");
}

/// Round 31: a bad `MOA_WGSL_RULES_TABLE` (or any engine setting) was refused only once
/// the engine was built: after the weights loaded (minutes for an 8B model) and after
/// "building the engine … 1-5 min". It is refused before the load now: a model whose first
/// weight is NaN, which the load refuses, is not reached.
#[test]
fn bad_engine_settings_are_refused_before_the_weights_load() {
    let dir = scratch("early");
    let model = tiny_model(&dir.join("m"));
    let file = model.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The first tensor's first element: a bf16 NaN.
    bytes[8 + header..8 + header + 2].copy_from_slice(&[0xc0, 0x7f]);
    std::fs::write(&file, bytes).unwrap();
    let args = [
        "generate",
        "--model",
        s(&model),
        "--dense",
        "--prompt",
        "hi",
        "--max-new-tokens",
        "2",
    ];
    let (code, _, err) = run_env(&args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NaN"), "the load refuses the weight:\n{err}");
    let (code, _, err) = run_env(&args, &[("MOA_WGSL_RULES_TABLE", "2")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("MOA_WGSL_RULES_TABLE=\"2\"") && err.contains("accepted: 0 or 1"),
        "{err}"
    );
    assert!(!err.contains("NaN"), "the weights were read first:\n{err}");
    assert!(!err.contains("building the engine"), "{err}");
}
