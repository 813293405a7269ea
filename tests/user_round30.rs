//! A new user's journey, round 30: `moa generate --kernels` with folders `moa-compile`
//! wrote for this and for other plans, `--plan` given an upstream JSON, `--max-new-tokens`
//! edges and `moa bench`'s checks before the GPU; what it found wrong, each pinned here.
//! The models are tiny random ones (`moa::model::random`, what `moa model random` writes,
//! of a shape that runs in a second on lavapipe); none needs the fetched model or a GPU.

mod common;

use std::path::Path;

use common::cli::{s, tiny_model};

common::cli::tagged!();

/// A plan of [`tiny_model`]'s shape whose layer 0 head 3 has `alpha3` tokens.
fn tiny_plan(alpha3: u32) -> String {
    format!(
        "format_version = 1\n\n[model]\nname = \"tiny\"\nlayers = 2\nq_heads = 4\nkv_heads = 2\n\
         head_dim = 16\nmax_context_tokens = 256\n\n[span]\nsink_tokens = 4\nmin_span_tokens = 8\n\
         block_tokens = 4\nmode = \"moa\"\nmax_new_tokens = 16\n\n[[layers]]\n\
         alpha = [8, 8, 16, {alpha3}]\nbeta = [0.5, 0.25, 0.0, 1.0]\n\n[[layers]]\n\
         alpha = [0, 0, 32, 32]\nbeta = [1.0, 1.0, 0.0, 0.0]\n"
    )
}

/// `moa-compile plan -o out --target wgsl` and `extra` flags, which must succeed.
fn compile(plan: &Path, out: &Path, extra: &[&str]) {
    let args = [
        &[s(plan), "-o", s(out), "--target", "wgsl", "-q"][..],
        extra,
    ]
    .concat();
    let (code, _, err) = run("moa-compile", &args);
    assert_eq!(code, 0, "{err}");
}

/// Round 30: `moa generate --plan P --kernels DIR` refused a folder of another plan of
/// the same shape, one of f32 kernels, one with a kernel file missing and one whose
/// manifest was cut short with "`moa-compile PLAN -o DIR`": the library reads folders for
/// apps too and names no plan, but generate knows the plan's path. Each names it now; a
/// folder of another plan also says to give its own plan with --plan; a cut-short manifest
/// says how to recover (it said only where the JSON ended); a folder a stopped compile
/// left (its marker, no manifest) says so instead of "it is the folder moa-compile
/// writes"; a file given for the folder (its manifest.json, the plan) was answered with
/// `moa-compile PLAN -o THAT_FILE`, and is named as a file now, with the folder to give.
/// All before the weights load.
#[test]
fn kernels_folder_refusals_name_the_plan_given() {
    let dir = scratch("kernels");
    let model = tiny_model(&dir.join("m"));
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, tiny_plan(0)).unwrap();
    let other = dir.join("other.toml");
    std::fs::write(&other, tiny_plan(4)).unwrap();
    let gen = |kernels: &Path, needles: &[&str]| {
        let err = refused(
            "moa",
            &[
                "generate",
                "--model",
                s(&model),
                "--plan",
                s(&plan),
                "--kernels",
                s(kernels),
                "--prompt",
                "hi",
                "--max-new-tokens",
                "2",
            ],
            needles,
        );
        assert!(!err.contains("moa-compile PLAN"), "{err}");
        assert!(!err.contains("building the engine"), "{err}");
        err
    };
    // Another plan of the same shape.
    let k = dir.join("k-other");
    compile(&other, &k, &[]);
    gen(
        &k,
        &[
            "was compiled for another plan",
            "give the plan it was compiled from with --plan, or compile this plan with",
            &format!(
                "`moa-compile {} -o {} --target wgsl --dtype f16`",
                s(&plan),
                s(&k)
            ),
        ],
    );
    // f32 kernels for an f16 run (lavapipe has shader-f16).
    let k = dir.join("k-f32");
    compile(&plan, &k, &["--dtype", "f32"]);
    gen(
        &k,
        &[
            "holds f32 kernels",
            &format!(
                "`moa-compile {} -o {} --target wgsl --dtype f16`",
                s(&plan),
                s(&k)
            ),
        ],
    );
    // A kernel file removed.
    let k = dir.join("k-missing");
    compile(&plan, &k, &[]);
    std::fs::remove_file(k.join("wgsl/l01_decode.wgsl")).unwrap();
    gen(
        &k,
        &[
            "but the file is missing",
            // The folder's --target (session 56: the rewrite dropped it).
            &format!(
                "re-run `moa-compile {} -o {} --target wgsl`",
                s(&plan),
                s(&k)
            ),
        ],
    );
    // The manifest cut short.
    let k = dir.join("k-cut");
    compile(&plan, &k, &[]);
    let m = std::fs::read(k.join("manifest.json")).unwrap();
    std::fs::write(k.join("manifest.json"), &m[..200]).unwrap();
    gen(
        &k,
        &[
            "manifest.json: not JSON: ",
            &format!("; re-run `moa-compile {} -o {}`", s(&plan), s(&k)),
        ],
    );
    // A compile stopped before its manifest: the marker, no manifest.
    let k = dir.join("k-stopped");
    compile(&plan, &k, &[]);
    std::fs::remove_file(k.join("manifest.json")).unwrap();
    std::fs::write(k.join(moa::codegen::emit::UNFINISHED_MARKER), "").unwrap();
    let err = gen(
        &k,
        &[
            "no manifest.json there, and its `.moa-compile-unfinished` says a moa-compile into it was stopped before it finished",
            &format!("(`moa-compile {} -o {} --target wgsl`)", s(&plan), s(&k)),
        ],
    );
    assert!(
        !err.contains("it is the folder moa-compile writes"),
        "{err}"
    );
    // A file given for the folder: its manifest, or the plan. The refusal advised
    // `moa-compile ... -o k/manifest.json` (a compile into the user's file).
    let k = dir.join("k-file");
    compile(&plan, &k, &[]);
    let manifest = k.join("manifest.json");
    let err = gen(
        &manifest,
        &[&format!(
            "--kernels `{}` is a file; --kernels takes a folder: it is a folder's manifest: give the folder, --kernels {}",
            s(&manifest),
            s(&k)
        )],
    );
    assert!(!err.contains("-o "), "{err}");
    let err = gen(
        &plan,
        &[&format!(
            "--kernels `{}` is a file; --kernels takes a folder: give the folder moa-compile wrote (`moa-compile {} -o DIR --target wgsl`, then --kernels DIR)",
            s(&plan),
            s(&plan)
        )],
    );
    assert!(!err.contains(&format!("-o {}", s(&plan))), "{err}");
    // The same folder whole again runs.
    compile(&plan, &k, &[]);
    let (code, _, err) = run(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--kernels",
            s(&k),
            "--prompt",
            "hi",
            "--max-new-tokens",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// Round 30: `moa generate --plan up.json` (an upstream MoA plan, which `moa bench` and
/// `moa plan show --max-batch` import themselves) was refused with "moa plan import FILE
/// --model MODEL -o PLAN.toml", placeholders for what the command line holds. It names
/// the file, the model and a TOML beside the file.
#[test]
fn an_upstream_json_plan_is_refused_with_the_import_command_for_this_model() {
    let dir = scratch("json-plan");
    let model = tiny_model(&dir.join("m"));
    let up = dir.join("up.json");
    std::fs::write(
        &up,
        r#"{"alphas": [[8,8,16,0],[0,0,32,32]], "betas": [[0.5,0.25,0,1],[1,1,0,0]]}"#,
    )
    .unwrap();
    refused(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--plan",
            s(&up),
            "--prompt",
            "hi",
        ],
        &[
            &format!("`{}` is JSON, not a moa plan (TOML)", s(&up)),
            &format!(
                "`moa plan import {} --model {} -o {}`, then give --plan {}",
                s(&up),
                s(&model),
                s(&dir.join("up.toml")),
                s(&dir.join("up.toml"))
            ),
        ],
    );
}

/// Round 30: `--max-new-tokens 0` was refused with "generation needs at least 1 new
/// token", no range, where 252 said "allowed 1..=251"; both say the range now (0's before
/// the model is read, so in words). With
/// `--max-new-tokens 1` the prefill gives the only token and the summary said "decode: 0
/// steps x 1 row in 0.00 s = 0.0 tok/s", a decode that seemed to run and crawl: it says
/// no step ran now. The KV cache line said "0.00 MiB with this plan vs 0.00 MiB dense"
/// of a tiny model; it takes `moa plan show`'s units (KiB, or bytes, below 1 MiB).
#[test]
fn max_new_tokens_edges_say_the_range_and_what_ran() {
    let dir = scratch("max-new");
    let model = tiny_model(&dir.join("m"));
    let args = |n: &'static str| {
        vec![
            "generate".to_string(),
            "--model".into(),
            s(&model).into(),
            "--dense".into(),
            "--raw".into(),
            "--ignore-eos".into(),
            "--prompt".into(),
            "hello".into(),
            "--max-new-tokens".into(),
            n.into(),
        ]
    };
    let v = args("0");
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    refused(
        "moa",
        &v,
        &["--max-new-tokens 0 is out of range: allowed 1..=(the model's context minus the longest prompt's tokens)"],
    );
    let v = args("252");
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    refused(
        "moa",
        &v,
        &["--max-new-tokens 252 is out of range: allowed 1..=251"],
    );
    let v = args("1");
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    let (code, _, err) = run("moa", &v);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("prefill: 5 tokens in ")
            && err.contains("; decode: no step (the prefill gave each row's only new token)"),
        "{err}"
    );
    assert!(!err.contains("tok/s; decode: 0"), "{err}");
    // The tiny cache in KiB, as `moa plan show` says it, not "0.00 MiB ... 0.00 MiB dense";
    // under --dense without a plan to compare with (round 31).
    assert!(err.contains(" KiB (dense attention)"), "{err}");
    assert!(!err.contains("with this plan"), "{err}");
    assert!(!err.contains("0.00 MiB"), "{err}");
}

/// Round 30: `moa bench --model M --parity N` with a model whose context is at most
/// --parity's 400-token prompts said "allowed --parity 1..=0", a range nothing is in.
/// It says the model is too short for --parity, before the CUDA driver is looked for.
#[test]
fn bench_parity_with_a_short_context_model_says_why_not_an_empty_range() {
    let dir = scratch("bench-parity");
    let model = tiny_model(&dir.join("m"));
    let err = refused(
        "moa",
        &[
            "bench",
            "--model",
            s(&model),
            "--parity",
            "10",
            "--checks-only",
        ],
        &[&format!(
            "--parity runs prompts of up to 400 tokens, and the model's context is 256 tokens (--model `{}`): --parity needs a model whose context is more than 400 tokens",
            s(&model)
        )],
    );
    assert!(!err.contains("1..=0"), "{err}");
    assert!(!err.contains("CUDA driver"), "{err}");
}

/// Round 30: a plan given where the model goes (`moa generate --model plan.toml`, `moa
/// model info up.json`) was refused as "GGUF header: header field `magic` is 0x6d726f66
/// ...: not a GGUF file" and no more. The refusal now says what the file is and where a
/// plan goes.
#[test]
fn a_plan_given_as_the_model_is_named_as_a_plan() {
    let dir = scratch("plan-as-model");
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, tiny_plan(0)).unwrap();
    let up = dir.join("up.json");
    std::fs::write(
        &up,
        r#"{"alphas": [[8,8,16,0]], "betas": [[0.5,0.25,0,1]]}"#,
    )
    .unwrap();
    refused(
        "moa",
        &["generate", "--model", s(&plan), "--prompt", "hi"],
        &["not a GGUF file; it is a moa plan (TOML), not a model: a model is a GGUF file or a Hugging Face folder, and a plan goes to --plan"],
    );
    refused(
        "moa",
        &["model", "info", s(&up)],
        &["not a GGUF file; it is an upstream MoA plan (JSON), not a model"],
    );
}

/// Round 30's leftover (session 43): `--top-k` past the model's vocabulary was accepted and
/// kept every token, a cut that did nothing, silently; it is refused naming the model and
/// the allowed range (0 = every token, or 1..=vocab), before anything runs.
#[test]
fn top_k_past_the_vocabulary_is_refused() {
    let dir = scratch("topk");
    let model = tiny_model(&dir.join("m"));
    let err = refused(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--prompt",
            "hi",
            "--temperature",
            "1",
            "--top-k",
            "301",
            "--max-new-tokens",
            "2",
        ],
        &[
            "--top-k 301",
            "vocabulary of 300 tokens",
            "allowed 0 (every token) or 1..=300",
        ],
    );
    assert!(!err.contains("building the engine"), "{err}");
}
