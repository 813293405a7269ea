//! A new user's journey, round 21 (benches/RESULTS.md): plans at the edges of the IR on
//! lavapipe against the CPU reference, and what the fresh look at the CLI found wrong,
//! each pinned here. Nothing here needs the fetched model or anything outside the
//! repository; the kernel and engine tests need a wgpu adapter (lavapipe in CI).

mod common;

use common::cli::s;

use moa::codegen::{self, Target};
use moa::lower::{self, StorageType};
use moa::model::{CpuReference, LlamaConfig, Masking};
use moa::plan::Plan;
use moa::runtime::cases::{
    check_output, decode_case, prefill_case, standard_layer_cases, tolerance,
};
use moa::runtime::engine::Engine;
use moa::runtime::wgpu::{WgpuAttention, WgpuContext};
use moa::runtime::wgpu_engine::WgpuEngine;

common::cli::tagged!();

/// A plan's TOML: `rows[l]` = layer l's (alphas, betas).
#[allow(clippy::too_many_arguments)]
fn plan_toml(
    q: u32,
    kv: u32,
    hd: u32,
    ctx: u32,
    (sink, min, block, max_new): (u32, u32, u32, u32),
    mode: &str,
    rows: &[(Vec<i64>, Vec<f64>)],
) -> String {
    let mut t = format!(
        "format_version = 1\n[model]\nname = \"edge\"\nlayers = {}\nq_heads = {q}\nkv_heads = {kv}\n\
         head_dim = {hd}\nmax_context_tokens = {ctx}\n[span]\nsink_tokens = {sink}\n\
         min_span_tokens = {min}\nblock_tokens = {block}\nmode = \"{mode}\"\nmax_new_tokens = {max_new}\n",
        rows.len()
    );
    for (a, b) in rows {
        t += &format!("[[layers]]\nalpha = {a:?}\nbeta = {b:?}\n");
    }
    t
}

/// Plans at the IR's edges (benches/new-user/s35/mkplans-edges.py has the full set), by
/// name, with the storage types each runs in here: spans of 1 token (with and without a
/// sink), a sink longer than every span (the head keeps only its first S tokens), spans
/// past the context (moa and upstream mode), a layer of dense heads beside one at the
/// minimum, one query head over one KV head, a 16-token context, and head_dim 4, 12, 20,
/// 80 and 96 (the random plans of tests/wgpu_kernels.rs draw 16..128 in powers of two).
fn edge_plans() -> Vec<(&'static str, Plan, Vec<StorageType>)> {
    use StorageType::{F16, F32};
    let two = |a: Vec<i64>, b: Vec<f64>| vec![(a.clone(), b.clone()), (a, b)];
    let std = (16, 32, 16, 32);
    let four =
        |hd: u32, a: Vec<i64>, b: Vec<f64>| plan_toml(4, 2, hd, 1024, std, "moa", &two(a, b));
    let list: Vec<(&str, String, Vec<StorageType>)> = vec![
        (
            "span1",
            plan_toml(
                4,
                2,
                64,
                1024,
                (0, 1, 1, 32),
                "moa",
                &two(vec![0, -5, 64, 0], vec![0.0, 0.0, 0.25, 1.0]),
            ),
            vec![F32],
        ),
        (
            "span1-sink",
            plan_toml(
                4,
                2,
                64,
                1024,
                (4, 1, 1, 32),
                "moa",
                &two(vec![0, 1, 2, 0], vec![0.0, 0.0, 0.0, 1.0]),
            ),
            vec![F16],
        ),
        (
            "sink-gt-span",
            plan_toml(
                4,
                2,
                64,
                1024,
                (64, 8, 8, 32),
                "moa",
                &two(vec![8, 16, 24, 0], vec![0.0; 4]),
            ),
            vec![F32],
        ),
        (
            "span-past-ctx",
            four(64, vec![2048, 0, 4096, 0], vec![0.0, 1.0, 0.0, 0.5]),
            vec![F16],
        ),
        (
            "span-past-ctx-up",
            plan_toml(
                4,
                2,
                64,
                1024,
                std,
                "upstream",
                &two(vec![2048, 0, 4096, 0], vec![0.0, 1.0, 0.0, 0.5]),
            ),
            vec![F32],
        ),
        (
            "dense-layer",
            plan_toml(
                4,
                2,
                64,
                1024,
                std,
                "moa",
                &[(vec![0; 4], vec![1.0; 4]), (vec![-100; 4], vec![0.0; 4])],
            ),
            vec![F16],
        ),
        (
            "mqa1",
            plan_toml(1, 1, 64, 1024, std, "moa", &two(vec![64], vec![0.25])),
            vec![F32],
        ),
        (
            "ctx16",
            plan_toml(
                4,
                2,
                64,
                16,
                (4, 4, 4, 15),
                "moa",
                &two(vec![0, 4, 8, 0], vec![0.0, 0.0, 0.25, 1.0]),
            ),
            vec![F32, F16],
        ),
        (
            "hd4",
            four(4, vec![0, 32, 64, 0], vec![0.5, 0.0, 0.25, 1.0]),
            vec![F32],
        ),
        (
            "hd12",
            four(12, vec![0, 32, 64, 0], vec![0.5, 0.0, 0.25, 1.0]),
            vec![F16],
        ),
        (
            "hd20",
            four(20, vec![0, 32, 64, 0], vec![0.5, 0.0, 0.25, 1.0]),
            vec![F32],
        ),
        (
            "hd80",
            four(80, vec![0, 32, 64, 0], vec![0.5, 0.0, 0.25, 1.0]),
            vec![F32, F16],
        ),
        (
            "hd96-gqa3",
            plan_toml(
                6,
                2,
                96,
                1024,
                std,
                "moa",
                &two(
                    vec![0, 32, 64, 128, 0, 0],
                    vec![0.5, 0.0, 0.0, 0.0, 1.0, 0.25],
                ),
            ),
            vec![F32, F16],
        ),
    ];
    list.into_iter()
        .map(|(n, t, st)| {
            (
                n,
                Plan::from_toml_str(&t, n).unwrap_or_else(|e| panic!("{n}: {e}")),
                st,
            )
        })
        .collect()
}

fn context() -> &'static WgpuContext {
    static CTX: std::sync::OnceLock<WgpuContext> = std::sync::OnceLock::new();
    CTX.get_or_init(|| WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required"))
}

/// Every edge plan's generated WGSL (the scalar decode that `moa-compile` folders and
/// embedding apps run, and the prefill), run on the adapter against the CPU reference:
/// layer 0's standard cases (ragged prefill, decode before and after the ring wraps),
/// both layers for the plan whose layers differ, cases within the context for the
/// 16-token one. Round 21 ran these and more (head_dim 256, groups of 8) and all matched.
/// A plan listed with two storage types runs in one of them, taking turns, and in both
/// under `MOA_TEST_FULL=1` (`common::sweeps`: llvmpipe compiling the kernels is most of
/// this test's minute in CI; session 54).
#[test]
fn edge_plans_wgsl_kernels_match_the_cpu_reference() {
    let ctx = context();
    let mut failures = Vec::new();
    for (p, (name, plan, storages)) in edge_plans().into_iter().enumerate() {
        let count = storages.len();
        for (s, storage) in storages.into_iter().enumerate() {
            if !common::sweeps::runs(p, false, s, count) {
                continue;
            }
            let t0 = std::time::Instant::now();
            let module = lower::lower(&plan, storage);
            let artifacts = codegen::generate(&module, Target::Wgsl)
                .unwrap_or_else(|e| panic!("{name} {storage:?}: {e}"));
            let exec = WgpuAttention::new(ctx, &module, &artifacts)
                .unwrap_or_else(|e| panic!("{name} {storage:?}: {e}"));
            let (hq, d) = (
                module.shape.q_heads as usize,
                module.shape.head_dim as usize,
            );
            let tol = tolerance(storage);
            let (mut prefill, mut decode) = (Vec::new(), Vec::new());
            if plan.model().max_context_tokens >= 1024 {
                let layers = if name == "dense-layer" { 0..2 } else { 0..1 };
                for layer in layers {
                    let (p, dc) = standard_layer_cases(&module, layer, 0x21);
                    prefill.extend(p);
                    decode.extend(dc);
                }
            } else {
                prefill.push(prefill_case(&module, 0, &[1, 16, 7], 16, 1));
                decode.push(decode_case(&module, 0, &[0, 15, 9], 16, 2));
                // Generation past N (the windows keep sliding).
                decode.push(decode_case(&module, 1, &[40, 3], 16, 3));
            }
            for case in &prefill {
                let got = exec
                    .run_prefill_case(case)
                    .unwrap_or_else(|e| panic!("{name} {storage:?} {}: {e}", case.name));
                if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                    failures.push(format!("{name} {storage:?}: {e}"));
                }
            }
            for case in &decode {
                let got = exec
                    .run_decode_case(case)
                    .unwrap_or_else(|e| panic!("{name} {storage:?} {}: {e}", case.name));
                if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                    failures.push(format!("{name} {storage:?}: {e}"));
                }
            }
            eprintln!("{name} {storage:?}: {:.1?}", t0.elapsed());
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A random-weight model of `head_dim` with `q` query heads over `kv` KV heads.
fn model_of(hd: u32, q: u32, kv: u32) -> moa::model::Model {
    let config = LlamaConfig {
        name: Some(format!("edge hd{hd}")),
        n_layers: 2,
        hidden_size: (q * hd) as usize,
        ffn_size: 64,
        q_heads: q as usize,
        kv_heads: kv as usize,
        head_dim: hd as usize,
        rope_theta: 10000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: 96,
        tied_embeddings: true,
        context_length: 1024,
    };
    moa::model::random::random_model(&config, 21)
}

/// The wgpu engine (every kernel of a model: embedding, norms, RoPE and the KV write, the
/// attention, the products) on models of head_dim 80 and 96 with one or two KV heads and
/// a plan whose heads sit at the IR's edges (a span of 1, a sink past the span, a span
/// past the context; the second layer dense), against the CPU reference: a ragged
/// prefill and 4 decode steps, f32 and f16. Round 21 also ran head_dim 256, 4 and 12,
/// dense too (benches/new-user/s35/engine-edges.log): all within tolerance.
#[test]
fn engine_runs_edge_head_dims_and_rules_as_the_cpu_reference() {
    let ctx = context();
    let mut failures = Vec::new();
    for (hd, q, kv, force_f32) in [(80u32, 4u32, 1u32, false), (96, 4, 2, true)] {
        let model = model_of(hd, q, kv);
        let cpu = CpuReference::from_model(model.clone()).unwrap();
        let t = plan_toml(
            q,
            kv,
            hd,
            1024,
            (6, 1, 1, 32),
            "moa",
            &[
                (vec![0, 2048, 8, 0], vec![0.0, 0.0, 0.0, 1.0]),
                (vec![0; 4], vec![1.0; 4]),
            ],
        );
        let plan = Plan::from_toml_str(&t, "edge").unwrap();
        let what = format!("hd {hd} q {q} kv {kv} f32 {force_f32}");
        let t0 = std::time::Instant::now();
        let gpu = WgpuEngine::new(ctx, &model, Some(&plan), force_f32)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let lens = [19usize, 5, 33];
        let prompts: Vec<Vec<u32>> = lens
            .iter()
            .enumerate()
            .map(|(b, &n)| (0..n).map(|i| ((i * 7 + b * 13 + 1) % 96) as u32).collect())
            .collect();
        let steps = 4;
        let mut req = gpu.start(&lens, steps, 0).unwrap();
        let masking = Masking::Plan {
            plan: &plan,
            n_tokens: req.n_tokens(),
        };
        let tol = if force_f32 { 2e-3 } else { 4e-2 };
        let got = gpu.prefill_logits(&mut req, &prompts).unwrap();
        let mut seqs = prompts.clone();
        let mut worst = 0f32;
        for (b, p) in prompts.iter().enumerate() {
            let want = cpu.forward(p, masking).unwrap();
            let last = &want.data[(p.len() - 1) * 96..p.len() * 96];
            worst = worst.max(moa::runtime::cases::max_abs_error(&got[b], last).0);
        }
        for step in 0..steps {
            let next: Vec<u32> = (0..3).map(|b| ((step * 37 + b * 11) % 96) as u32).collect();
            let got = gpu.decode_logits(&mut req, &next).unwrap();
            for (b, seq) in seqs.iter_mut().enumerate() {
                seq.push(next[b]);
                let want = cpu.forward(seq, masking).unwrap();
                let last = &want.data[(seq.len() - 1) * 96..seq.len() * 96];
                worst = worst.max(moa::runtime::cases::max_abs_error(&got[b], last).0);
            }
        }
        eprintln!("{what}: max |err| {worst} in {:.1?}", t0.elapsed());
        if worst >= tol {
            failures.push(format!("{what}: max |err| {worst} (tolerance {tol})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Round 20's leftover: `moa-compile -o /proc/x` said "cannot write in `/proc`: No such
/// file or directory", the OS's words for a folder that exists (a virtual file system
/// takes no new files). Now it says what the folder is, the OS's words kept.
#[test]
fn compile_names_a_folder_that_takes_no_files_as_such() {
    let plan = scratch("proc").join("p.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    if !std::path::Path::new("/proc/self").is_dir() {
        eprintln!("no /proc here: nothing to check");
        return;
    }
    refused(
        "moa-compile",
        &[s(&plan), "-o", "/proc/moa-round21/out", "-q"],
        &[
            "-o `/proc/moa-round21/out`: cannot write in `/proc`",
            "the folder exists but takes no new files (a virtual file system",
            "No such file or directory",
            "nothing was written",
        ],
    );
}

/// A plan whose spans at N are at most the sink (`sink_tokens` 64 over spans of 8..24):
/// valid, and the kernels do what docs/DESIGN.md §3 says (the head keeps its first S
/// tokens, never the current one), but nothing said so. `moa plan show` now notes it; a
/// plan with every span past the sink (fixture-gqa) prints no such line.
#[test]
fn plan_show_notes_spans_at_most_the_sink() {
    let dir = scratch("sink-span");
    let toml = plan_toml(
        4,
        2,
        64,
        1024,
        (64, 8, 8, 32),
        "moa",
        &[(vec![8, 16, 24, 0], vec![0.0; 4])],
    );
    let p = dir.join("sink.toml");
    std::fs::write(&p, toml).unwrap();
    let (code, out, err) = run("moa", &["plan", "show", s(&p), "--prompt-len", "100"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "note: 4 of 4 query-head spans at N = 132 are at most the sink (64 tokens) and below N: such a head \
             keeps only its first S tokens and never a recent one, not even the current token"
        ) && out.contains("a span.sink_tokens below span.min_span_tokens (8) avoids it"),
        "{out}"
    );
    let g = dir.join("gqa.toml");
    std::fs::write(&g, common::cli::fixture_gqa()).unwrap();
    let (code, out, err) = run("moa", &["plan", "show", s(&g), "--prompt-len", "100"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("at most the sink"), "{out}");
}

/// README.md and docs/*.md, concatenated.
fn docs_text() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut t = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    names.sort();
    for p in names {
        t += &std::fs::read_to_string(p).unwrap();
    }
    t
}

/// The other direction of `docs_contract`'s check (every flag the docs give is in its
/// command's `--help`): every flag a `--help` lists is named in README.md or docs/ (by its
/// long form, or its short form where it has one), so a flag is never only discoverable
/// by reading `--help`. Round 21 found 16 named nowhere (`moa optimize --method`,
/// `--mip-gap`, `moa generate --ignore-eos`, `moa plan show --bytes-per-elem`, ...).
#[test]
fn every_flag_of_every_help_is_named_in_the_docs() {
    let docs = docs_text();
    let named = |flag: &str| {
        docs.match_indices(flag).any(|(i, _)| {
            let after = docs[i + flag.len()..].chars().next();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
    };
    let commands = |words: &[&str]| -> Vec<String> {
        let mut args = words.to_vec();
        args.push("--help");
        let (_, out, _) = run("moa", &args);
        out.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect()
    };
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    for c in commands(&[]) {
        let subs = commands(&[&c]);
        if subs.is_empty() {
            lists.push(("moa".into(), vec![c.clone()]));
        } else {
            lists.extend(
                subs.iter()
                    .map(|s| ("moa".into(), vec![c.clone(), s.clone()])),
            );
        }
    }
    lists.push(("moa-compile".into(), Vec::new()));
    let mut missing = Vec::new();
    let mut checked = 0;
    for (bin, words) in &lists {
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        let (code, out, err) = run(bin, &args);
        assert_eq!(code, 0, "{bin} {args:?}: {err}");
        for l in out.lines() {
            let l = l.trim_start();
            if !l.starts_with('-') {
                continue;
            }
            // `-o, --output <OUTPUT>` or `--seed <SEED>`.
            let mut short = None;
            let mut long = None;
            for w in l
                .split([' ', ','])
                .take_while(|w| w.starts_with('-') || w.is_empty())
            {
                if w.starts_with("--") {
                    long = Some(w.to_string());
                } else if w.len() == 2 {
                    short = Some(w.to_string());
                }
            }
            let Some(long) = long else { continue };
            if long == "--help" || long == "--version" {
                continue;
            }
            checked += 1;
            if !named(&long) && !short.as_deref().is_some_and(|s| named(&format!("{s} "))) {
                missing.push(format!("{bin} {} {long}", words.join(" ")));
            }
        }
    }
    assert!(checked >= 150, "{checked} flags");
    assert!(
        missing.is_empty(),
        "flags no doc names:\n{}",
        missing.join("\n")
    );
}

/// `moa generate --prompt` given bytes that are not UTF-8 (a Latin-1 shell variable):
/// clap said "invalid UTF-8 was detected in one or more arguments", naming none. Now the
/// argument's position, its flag and what to do; a path of any bytes still reaches the
/// file's own check (clap takes paths as they are).
#[cfg(unix)]
#[test]
fn a_text_argument_that_is_not_utf8_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
        .env("MOA_CACHE", scratch("utf8").join("cache"))
        .arg("generate")
        .arg("--prompt")
        .arg(bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("argument 3 (`caf\u{fffd}`, U+FFFD where a byte is not UTF-8), the value of `--prompt`, is not UTF-8 text"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
        .arg("plan")
        .arg("show")
        .arg(std::ffi::OsStr::from_bytes(b"\xff.toml"))
        .args(["--prompt-len", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot read plan `\u{fffd}.toml`"), "{err}");
}

/// Round 20's leftover: `moa eval --backend cpu`'s memory check counted 3 copies of a
/// layer's score matrix; round 21 measured SmolLM2's peak at about 4.5 copies besides
/// the weights (0.80, 1.33 and 3.28 GB at 1034, 2058 and 4106 tokens), so a run the
/// check passed could still run out of memory. It now counts 5, said in the refusal,
/// which comes before the weights are read (this folder's cannot load).
#[test]
fn eval_on_the_cpu_counts_five_copies_of_the_scores() {
    let dir = scratch("cpu-memory");
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 3,
        "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "vocab_size": 260,
        "tie_word_embeddings": true, "max_position_embeddings": 1 << 20,
        "bos_token_id": 1, "eos_token_id": 2,
    });
    std::fs::write(m.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        m.join("tokenizer.json"),
        moa::model::random::byte_level_tokenizer_json().to_string(),
    )
    .unwrap();
    std::fs::write(m.join("model.safetensors"), [0u8; 16]).unwrap();
    // 5 copies × 4 bytes × 8 heads × 1000010² = 160003.2 GB.
    refused(
        "moa",
        &[
            "eval",
            "--backend",
            "cpu",
            "--model",
            s(&m),
            "--lengths",
            "1000000",
            "--depths",
            "1",
            "--tasks",
            "passkey",
            "--ppl-rows",
            "0",
            "--no-uniform",
            "--quiet",
        ],
        &[
            "--backend cpu at 1000010 tokens needs about",
            "160003.2 GB of attention scores",
        ],
    );
}
