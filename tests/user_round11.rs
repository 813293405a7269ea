//! A new user's journey, round 11 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::Path;

common::cli::tagged!();

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
    // The file sets 1024 (the import wrote it), so "the default when [span] does not
    // set it" alone misread it: the refusal also names the import's flag.
    refused(
        "moa-compile",
        &[p, "-o", o],
        &[
            "span.max_new_tokens",
            "0..=255",
            "which `moa plan import` writes unless given --max-new-tokens",
        ],
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

/// The tiny model's shape (`common::tiny`: 2 layers, 4 query heads over 2 KV heads of 16,
/// 128 tokens of context) as a plan.
const TINY_PLAN: &str = r#"format_version = 1
[model]
name = "tiny"
layers = 2
q_heads = 4
kv_heads = 2
head_dim = 16
max_context_tokens = 128
[span]
sink_tokens = 4
min_span_tokens = 16
block_tokens = 16
mode = "moa"
max_new_tokens = 8
[[layers]]
alpha = [0, 16, 0, 32]
beta = [0.5, 0.0, 0.5, 0.25]
[[layers]]
alpha = [0, 0, 0, 0]
beta = [1.0, 1.0, 1.0, 1.0]
"#;

/// `moa generate --kernels` with a folder the run cannot take (compiled with `--target
/// cuda`, or `--dtype f32` for a run without `--f32`, or with `--backend cuda`) was refused
/// only after the weights loaded (minutes for a 7B model). The weights here miss a tensor,
/// so a refusal from the load would show instead of the folder's. Needs a wgpu adapter
/// (lavapipe in CI) for the run's storage type.
#[test]
fn generate_refuses_a_kernels_folder_it_cannot_run_before_the_weights_load() {
    let dir = scratch("kernels-early");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true)
        .write_gguf(&model, |_, t| t.retain(|(n, _)| n != "blk.1.ffn_up.weight"));
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, TINY_PLAN).unwrap();
    let (m, p) = (model.to_str().unwrap(), plan.to_str().unwrap());
    let cuda = dir.join("cuda");
    let f32 = dir.join("f32");
    let (c, f) = (cuda.to_str().unwrap(), f32.to_str().unwrap());
    for args in [
        &[p, "-o", c, "--target", "cuda"][..],
        &[p, "-o", f, "--target", "wgsl", "--dtype", "f32"][..],
    ] {
        let (code, _, err) = run("moa-compile", args);
        assert_eq!(code, 0, "{err}");
    }
    let base = |k: &str| -> Vec<String> {
        [
            "generate",
            "--model",
            m,
            "--plan",
            p,
            "--kernels",
            k,
            "--raw",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let refused_with = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = refused("moa", &args, needles);
        assert!(!err.contains("ffn_up"), "the weights loaded first:\n{err}");
    };
    refused_with(base(c), &["holds no wgsl kernels"]);
    let mut cuda_backend = base(c);
    cuda_backend.extend(["--backend".to_string(), "cuda".to_string()]);
    refused_with(cuda_backend, &["--kernels is for the wgpu back end"]);
    // f32 kernels for a run that stores f16: only where the adapter has f16 (lavapipe
    // has); on an adapter without it the run is f32 and the folder fits, so the load runs
    // and names the missing tensor.
    let args = base(f);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run("moa", &argv);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("holds f32 kernels but this run stores") || err.contains("ffn_up"),
        "{err}"
    );
}

/// A prompt file far past the context was encoded whole before its length was refused: an
/// 80 MB file for a 256-token context took 56.6 s and 12.8 GB of memory. A text whose
/// length alone proves it too long is refused before encoding (saying "at least"), and the
/// bound never exceeds the real count (no prompt that fits is refused by it).
#[test]
fn a_prompt_file_surely_past_the_context_is_refused_before_it_is_encoded() {
    let dir = scratch("huge-prompt");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true)
        .write_gguf(&model, |_, t| t.retain(|(n, _)| n != "blk.1.ffn_up.weight"));
    let tok = moa::model::tokenizer::ModelTokenizer::load(&model).unwrap();
    for text in [
        "a".repeat(10_000),
        "hello world, ".repeat(500),
        "ünïcödé ✓ 𝐀 ".repeat(300),
        "<|im_start|>".repeat(200),
    ] {
        let real = tok.encode(&text).unwrap().len();
        let fewest = tok
            .fewest_tokens(&text)
            .expect("the tiny model's tokenizer is BPE");
        assert!(fewest <= real, "{fewest} > {real} for {:?}…", &text[..20]);
    }
    let file = dir.join("huge.txt");
    std::fs::write(&file, "word ".repeat(2_000_000)).unwrap();
    let (m, f) = (model.to_str().unwrap(), file.to_str().unwrap());
    let err = refused(
        "moa",
        &[
            "generate",
            "--model",
            m,
            "--dense",
            "--raw",
            "--prompt-file",
            f,
            "--max-new-tokens",
            "2",
        ],
        &[
            "has 10000000 bytes, at least",
            "(128 tokens): allowed 1..=127 prompt tokens",
        ],
    );
    assert!(!err.contains("ffn_up"), "{err}");
}

/// `moa plan show --max-batch` named a flag the user never gave: an upstream JSON (whose
/// imported `max_new_tokens` is 1024) for a 256-token model was refused as "--new 1024",
/// and a prompt past the context as "--prompt …", the hidden alias of `--prompt-len`.
#[test]
fn max_batch_names_the_defaulted_new_tokens_and_the_prompt_len_flag() {
    let dir = scratch("max-batch-new");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&model, |_, _| {});
    let up = dir.join("up.json");
    std::fs::write(
        &up,
        r#"{"alphas": [[0, 16, 0, 32], [0, 0, 0, 0]], "betas": [[0.5, 0.0, 0.5, 0.25], [1, 1, 1, 1]]}"#,
    )
    .unwrap();
    let (m, u) = (model.to_str().unwrap(), up.to_str().unwrap());
    let base = [
        "plan",
        "show",
        u,
        "--max-batch",
        "--model",
        m,
        "--memory",
        "1",
        "--prompt-len",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    refused(
        "moa",
        &with(&["16"]),
        &[
            "--new 1024 (the plan's span.max_new_tokens, taken when --new is not given: give --new 0..=127)",
        ],
    );
    refused(
        "moa",
        &with(&["120", "--new", "16"]),
        &[
            "--prompt-len 120 + --new 16 = 136 tokens",
            "allowed --prompt-len 1..=112 with --new 16",
        ],
    );
    let (code, out, err) = run("moa", &with(&["100", "--new", "16"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("largest batch"), "{out}");
}

/// Two plans compiled into one folder: the second replaced the first's kernels, said only
/// as "6 kernel files this compile does not produce removed", which read as if both were
/// there. The note names the plan replaced; recompiling the same plan (another --target or
/// --dtype included) says nothing of the kind.
#[test]
fn a_second_plan_into_one_folder_says_it_replaced_the_first() {
    let dir = scratch("two-plans");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gqa = root.join("plans/fixture-gqa.toml");
    let mha = root.join("plans/fixture-mha.toml");
    let (g, m) = (gqa.to_str().unwrap(), mha.to_str().unwrap());
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let note = "held the kernels of another plan (`fixture-gqa`: 3 layers, 8 query heads, 2 KV heads, head_dim 64), now replaced";
    let (code, _, err) = run("moa-compile", &[g, "-o", o]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("another plan"), "{err}");
    let (code, _, err) = run("moa-compile", &[m, "-o", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(note), "{err}");
    for again in [&[m, "-o", o][..], &[m, "-o", o, "--dtype", "f32"][..]] {
        let (code, _, err) = run("moa-compile", again);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("another plan"), "{err}");
    }
}
