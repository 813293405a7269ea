//! Issue 10 §3: values that used to hang or be accepted silently. Each test pins the value
//! from the report and the named error (field, flag or file, and the allowed range) that
//! now replaces the hang, the wrap-around or the exit 0. The binaries are run where the
//! report used them; none of these needs a GPU or the fetched model.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use moa::codegen::{self, emit, limits, Target};
use moa::lower::{lower, StorageType};
use moa::plan::stats::plan_stats;
use moa::plan::{upstream, LayerRules, Meta, ModelShape, Plan, Rule, SpanMode, SpanSection};

common::cli::tagged!();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("plans").join(name)
}

fn shape(layers: u32, q_heads: u32, kv_heads: u32, head_dim: u32) -> ModelShape {
    ModelShape {
        name: Some("test".into()),
        layers,
        q_heads,
        kv_heads,
        head_dim,
        max_context_tokens: 4096,
    }
}

fn uniform_plan(layers: u32, q_heads: u32, kv_heads: u32, head_dim: u32, alpha: i32) -> Plan {
    let rules = vec![
        Rule {
            alpha,
            beta_num: 1024
        };
        q_heads as usize
    ];
    Plan::new(
        shape(layers, q_heads, kv_heads, head_dim),
        SpanSection::default(),
        Meta::default(),
        (0..layers)
            .map(|_| LayerRules {
                rules: rules.clone(),
            })
            .collect(),
    )
    .unwrap()
}

#[test]
#[cfg(unix)]
fn devices_and_oversized_files_are_refused_not_read() {
    let dev = Path::new("/dev/zero");
    // Each of these read /dev/zero without end before.
    refused(
        "moa-compile",
        &["/dev/zero"],
        &["/dev/zero", "character device"],
    );
    refused(
        "moa",
        &["plan", "show", "/dev/zero", "--prompt-len", "10"],
        &["/dev/zero", "character device"],
    );
    refused(
        "moa",
        &[
            "plan",
            "import",
            "/dev/zero",
            "--layers",
            "1",
            "--heads",
            "1",
            "--kv-heads",
            "1",
            "--head-dim",
            "64",
        ],
        &["character device"],
    );
    let e = Plan::load(dev).unwrap_err();
    assert!(format!("{e}: {}", std::error::Error::source(&e).unwrap()).contains("character device"));
    let e = moa::calib::read_jsonl(dev).unwrap_err();
    assert!(format!("{e:?}").contains("character device"), "{e:?}");
    let e = moa::model::gguf::GgufFile::open(dev).err().unwrap();
    assert!(format!("{e:?}").contains("character device"), "{e:?}");
    let e = moa::profile::InfluenceProfile::load(dev).unwrap_err();
    assert!(format!("{e:?}").contains("character device"), "{e:?}");
    let e = moa::input::read_to_string(Path::new("/"), "plan", 100).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");

    // A (sparse) plan file just over the limit is refused from its size alone.
    let dir = scratch("big");
    let big = dir.join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(moa::input::MAX_TEXT_BYTES + 1).unwrap();
    let e = Plan::load(&big).unwrap_err();
    let msg = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        msg.contains("larger than the 67108864 bytes allowed for a plan"),
        "{msg}"
    );
}

#[test]
fn generate_refuses_bad_sampling_values_before_loading_anything() {
    for (flag, value, field) in [
        ("--temperature", "nan", "`temperature` = NaN"),
        // Said as the flag: past f32's largest a number reads as inf too (round 16).
        ("--temperature", "inf", "--temperature is inf"),
        ("--temperature", "-1", "`temperature` = -1"),
        ("--top-p", "2", "`top_p` = 2"),
        ("--top-p", "-1", "`top_p` = -1"),
        ("--top-p", "0", "`top_p` = 0"),
    ] {
        let arg = format!("{flag}={value}");
        refused(
            "moa",
            &["generate", "--dense", "--prompt", "hi", &arg],
            &[field, "out of range", "invalid --temperature or --top-p"],
        );
    }
    refused(
        "moa",
        &[
            "generate",
            "--dense",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "0",
        ],
        &["--max-new-tokens 0 is out of range"],
    );
}

/// The tiny test model (context 128 tokens, 300 ids) as a GGUF file; `vocab` < 300 cuts
/// the embedding (and so the model's vocab_size) while the tokenizer keeps all 300 ids.
fn tiny_gguf(dir: &Path, vocab: usize) -> PathBuf {
    use candle_core::quantized::gguf_file::Value;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&path, |md, tensors| {
        if vocab < common::tiny::VOCAB {
            md.push(("llama.vocab_size".into(), Value::U32(vocab as u32)));
            let t = tensors
                .iter_mut()
                .find(|(n, _)| n == "token_embd.weight")
                .unwrap();
            let x = Tensor::zeros(
                (vocab, common::tiny::HIDDEN),
                candle_core::DType::F32,
                &Device::Cpu,
            )
            .unwrap();
            t.1 = QTensor::quantize(&x, GgmlDType::F32).unwrap();
        }
    });
    path
}

#[test]
fn generate_max_new_tokens_does_not_wrap_around() {
    let dir = scratch("wrap");
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let m = model.to_str().unwrap();
    // usize::MAX used to wrap prompt + max_new around and stream forever.
    let err = refused(
        "moa",
        &[
            "generate",
            "--model",
            m,
            "--dense",
            "--raw",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "18446744073709551615",
        ],
        &[
            "--max-new-tokens 18446744073709551615 is out of range: allowed 1..=",
            "context of 128 tokens",
        ],
    );
    assert!(err.lines().count() < 10, "{err}");
    refused(
        "moa",
        &[
            "generate",
            "--model",
            m,
            "--dense",
            "--raw",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "200",
        ],
        &["--max-new-tokens 200 is out of range"],
    );
    // The tiny model's context is 128 tokens: the default of 128 cannot fit, and the
    // refusal says it was the default, not a number the user typed.
    refused(
        "moa",
        &[
            "generate", "--model", m, "--dense", "--raw", "--prompt", "hello",
        ],
        &["--max-new-tokens 128 (the default when the flag is not given) is out of range"],
    );
}

/// An empty prompt (`--prompt "$Q"` with Q unset, an empty --prompt-file) is refused
/// naming the flag, before the weights load: it used to answer an empty chat message, or
/// with --raw fail after the load with "every prompt needs at least one token". The
/// weights here miss a tensor, so an error from the load would show instead.
#[test]
fn generate_refuses_an_empty_prompt_before_the_weights_load() {
    let dir = scratch("empty-prompt");
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(3, true)
        .write_gguf(&path, |_, t| t.retain(|(n, _)| n != "blk.1.ffn_up.weight"));
    let m = path.to_str().unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let e = empty.to_str().unwrap();
    let base = ["generate", "--model", m, "--dense", "--max-new-tokens", "2"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    refused(
        "moa",
        &with(&["--prompt", ""]),
        &["--prompt #1 is empty: give the text of the user message"],
    );
    refused(
        "moa",
        &with(&["--raw", "--prompt", "hi", "--prompt", " "]),
        &["--prompt #2 is empty"],
    );
    let mut args = with(&["--prompt", "hi", "--prompt-file"]);
    args.push(e);
    refused("moa", &args, &[&format!("--prompt-file `{e}` is empty")]);
    // A prompt past the context (128 tokens) is named by its flag, also before the load.
    let long = "word ".repeat(200);
    let mut args = with(&["--raw", "--prompt", "hi", "--prompt"]);
    args.push(&long);
    refused(
        "moa",
        &args,
        &[
            "--prompt #2 has",
            "leaves no room for a new token",
            "(128 tokens): allowed 1..=127 prompt tokens; shorten it",
        ],
    );
    // Not empty: now the load runs, and names the missing tensor.
    refused(
        "moa",
        &with(&["--prompt", "hi"]),
        &["`blk.1.ffn_up.weight`"],
    );
}

/// `moa calib`, `profile` and `pipeline` values that were taken silently or failed late:
/// a length past the model's context aborted the process ("memory allocation of
/// 138232265616 bytes failed" for `--lengths 100000` on a 4k model), `--samples 0` wrote
/// an empty file and exited 0 (the pipeline then failed at the profile step, its work
/// folder holding the empty calibration), `--max-new-tokens 0` made every answer the end
/// token, an --out in a missing folder failed after every answer was computed, and
/// `--block 7` failed at the first sample. Each is refused before any work, naming the
/// flag and what is allowed; a refused pipeline creates no work folder.
#[test]
fn calib_profile_and_pipeline_refuse_values_before_any_work() {
    let dir = scratch("calib-values");
    // The tiny model's context is 128 tokens.
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let m = model.to_str().unwrap();
    let out = dir.join("c.jsonl");
    let o = out.to_str().unwrap();
    let calib = |extra: &[&str]| -> Vec<String> {
        ["calib", "--model", m, "--out", o, "--source", "generated"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let check = |args: Vec<String>, needles: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused("moa", &a, needles);
    };
    check(
        calib(&["--lengths", "100000"]),
        &[
            "--lengths 100000 is past the context of",
            "(128 tokens): allowed lengths up to 128",
        ],
    );
    // Too short for a prompt before the 16 answer tokens: refused before the model loads,
    // naming the range (session 19).
    check(
        calib(&["--lengths", "0"]),
        &[
            "--lengths 0 is too short: allowed 80..=128 tokens",
            "--max-new-tokens 16",
        ],
    );
    check(
        calib(&["--lengths", "128,79"]),
        &["--lengths 79 is too short: allowed 80..=128 tokens"],
    );
    check(
        calib(&["--lengths", "128", "--samples", "0"]),
        &["--samples 0 (with no --text-samples) builds no sample: allowed 1 or more"],
    );
    check(
        calib(&["--lengths", "128", "--max-new-tokens", "0"]),
        &["--max-new-tokens 0 is out of range: allowed 1 or more (the dense answer needs at least 1 token)"],
    );
    assert!(!out.exists());
    let nowhere = dir.join("missing/c.jsonl");
    let n = nowhere.to_str().unwrap();
    refused(
        "moa",
        &["calib", "--model", m, "--out", n, "--lengths", "128"],
        &[&format!("--out `{n}`: the folder `"), "does not exist"],
    );
    refused(
        "moa",
        &[
            "profile",
            "--model",
            m,
            "--calib",
            o,
            "--lengths",
            "128",
            "-o",
            o,
            "--block",
            "7",
        ],
        &[
            "--block 7 does not divide length 128",
            "allowed a divisor of every length",
        ],
    );
    let work = dir.join("work");
    let w = work.to_str().unwrap();
    let pipeline = |extra: &[&str], needles: &[&str]| {
        let mut a = vec!["pipeline", "--model", m, "--workdir", w];
        a.extend_from_slice(extra);
        refused("moa", &a, needles);
        assert!(!work.exists(), "{extra:?} left a work folder");
    };
    // At least 64 prompt tokens before the 16 answer tokens, in tiles of 32.
    let short = ["--profile-lengths", "96", "--validate-length", "128"];
    let block = ["--block", "32"];
    pipeline(
        &["--profile-lengths", "64", "--validate-length", "100000"],
        &["--validate-length 100000 is past the context"],
    );
    // 64 leaves 48 prompt tokens before the 16 answer tokens: calib refused it only after
    // the work folder was made (session 19).
    pipeline(
        &["--profile-lengths", "64", "--validate-length", "128"],
        &["--profile-lengths 64 is too short: allowed 80..=128 tokens"],
    );
    pipeline(
        &[&short[..], &block[..], &["--samples", "0"]].concat(),
        &["--samples 0"],
    );
    pipeline(
        &[&short[..], &block[..], &["--validate-samples", "0"]].concat(),
        &["--validate-samples 0 (with no --text-samples) leaves nothing to validate"],
    );
    pipeline(
        &[&short[..], &["--block", "0"]].concat(),
        &["--block 0 does not divide length 96"],
    );
}

#[test]
fn generate_refuses_token_ids_beyond_the_models_vocabulary() {
    let dir = scratch("vocab");
    // Ids 0..259 are the control and byte tokens; "hello" is one merged token (id ≥ 259).
    let model = tiny_gguf(&dir, 259);
    // One raw, dense token of "hello" from the model at `m`.
    let generate = |m| {
        [
            "generate",
            "--model",
            m,
            "--dense",
            "--raw",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "1",
        ]
    };
    refused(
        "moa",
        &generate(model.to_str().unwrap()),
        // Refused from the GGUF header since session 16 (as llama.cpp refuses it), before
        // the prompt is tokenized; a Hugging Face folder meets the generate-time check.
        &[
            "`tokenizer.ggml.tokens` holds 300 tokens but the model has 259",
            "allowed exactly one token per row",
        ],
    );
    // The same mismatch in a Hugging Face folder (tokenizer.json of 300 ids over 259
    // embedding rows): refused when the prompt's ids are checked, before the weights load.
    let (hf, _) = tiny_hf("vocab-hf");
    let g = moa::model::gguf::GgufFile::open(&tiny_gguf(&scratch("vocab-tok"), 300)).unwrap();
    let doc = moa::model::tokenizer::gguf_tokenizer_json(&g).unwrap();
    std::fs::write(hf.join("tokenizer.json"), doc.to_string()).unwrap();
    let cfg_path = hf.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["vocab_size"] = 259.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let embed = "model.embed_tokens.weight";
    for shard in std::fs::read_dir(&hf).unwrap().map(|e| e.unwrap().path()) {
        if shard.extension().is_some_and(|e| e == "safetensors") {
            let mut t = candle_core::safetensors::load(&shard, &candle_core::Device::Cpu).unwrap();
            if t.contains_key(embed) {
                let x = candle_core::Tensor::zeros(
                    (259, common::tiny::HIDDEN),
                    candle_core::DType::F32,
                    &candle_core::Device::Cpu,
                )
                .unwrap();
                t.insert(embed.to_string(), x);
                candle_core::safetensors::save(&t, &shard).unwrap();
            }
        }
    }
    refused(
        "moa",
        &generate(hf.to_str().unwrap()),
        &[
            "vocab_size is 259",
            "tokenizer and weights do not belong together",
        ],
    );
}

#[test]
fn plan_show_checks_prompt_len_and_bytes_per_elem() {
    let gqa = fixture("fixture-gqa.toml");
    let p = gqa.to_str().unwrap();
    // fixture-gqa: max_context_tokens 1024, max_new_tokens 32.
    refused(
        "moa",
        &["plan", "show", p, "--prompt-len", "0"],
        &["--prompt-len 0", "allowed 1..=992"],
    );
    refused(
        "moa",
        &["plan", "show", p, "--prompt-len", "993"],
        &[
            "--prompt-len 993",
            "allowed 1..=992",
            "model.max_context_tokens = 1024",
        ],
    );
    for b in ["0", "1000000"] {
        refused(
            "moa",
            &[
                "plan",
                "show",
                p,
                "--prompt-len",
                "100",
                "--bytes-per-elem",
                b,
            ],
            &[&format!(
                "--bytes-per-elem {b} is out of range: allowed 1..=8"
            )],
        );
    }
    let (code, out, err) = run("moa", &["plan", "show", p, "--prompt-len", "992"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("NaN"), "{out}");
    assert!(out.contains("N = prompt 992 + max_new 32 = 1024"), "{out}");
}

#[test]
fn plan_import_takes_head_dim_from_a_flag_or_a_model_never_a_default() {
    let dir = scratch("import");
    let json = dir.join("up.json");
    std::fs::write(
        &json,
        r#"{"alphas": [[0,0,0,0],[0,0,0,0]], "betas": [[0.5,0.5,0.5,0.5],[1,1,1,1]]}"#,
    )
    .unwrap();
    let j = json.to_str().unwrap();
    refused(
        "moa",
        &[
            "plan",
            "import",
            j,
            "--layers",
            "2",
            "--heads",
            "4",
            "--kv-heads",
            "2",
        ],
        &["--head-dim"],
    );
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let m = model.to_str().unwrap();
    let (code, out, err) = run("moa", &["plan", "import", j, "--model", m]);
    assert_eq!(code, 0, "{err}");
    let plan = Plan::from_toml_str(&out, "import").unwrap();
    assert_eq!(plan.model().head_dim, common::tiny::HEAD_DIM as u32);
    // `-o FILE` is written whole through a temporary file that is renamed (a run stopped
    // mid-write left a cut plan), nothing left beside it; a device such as /dev/stdout is
    // written in place.
    let file = dir.join("imported.toml");
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            j,
            "--model",
            m,
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (code, stdout, err) = run(
        "moa",
        &["plan", "import", j, "--model", m, "-o", "/dev/stdout"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, out);
    assert_eq!(plan.model().kv_heads, common::tiny::KV_HEADS as u32);
    assert_eq!(plan.model().max_context_tokens, 128);
    refused(
        "moa",
        &["plan", "import", j, "--model", m, "--head-dim", "128"],
        &["--head-dim 128 disagrees with the model", "says 16"],
    );
    // A longer context than the model's is refused (a shorter one is a choice, here
    // refused only by upstream's minimum span of 128).
    refused(
        "moa",
        &["plan", "import", j, "--model", m, "--max-context", "129"],
        &["--max-context 129 is out of range: allowed 128..=128 (at least upstream's span.min_span_tokens = 128, which an imported plan keeps; at most the context of the model `"],
    );
    // 0 names the flag (session 19: it was refused as the JSON file's
    // `model.max_context_tokens`, a field the user never wrote), with or without a model.
    refused(
        "moa",
        &["plan", "import", j, "--model", m, "--max-context", "0"],
        &["--max-context 0 is out of range: allowed 128..=128 (at least upstream's span.min_span_tokens = 128, which an imported plan keeps; at most the context of the model `"],
    );
    refused(
        "moa",
        &[
            "plan", "import", j, "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--head-dim", "16", "--max-context", "0",
        ],
        &["--max-context 0 is out of range: allowed 128..=1073741824 (at least upstream's span.min_span_tokens = 128, which an imported plan keeps; at most the longest context a plan takes)"],
    );
}

#[test]
fn optimize_refuses_nan_mip_gap_and_zero_extra_length() {
    let dir = scratch("optimize");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let missing = dir.join("missing.safetensors");
    let m = missing.to_str().unwrap();
    refused(
        "moa",
        &[
            "optimize",
            "--profile",
            m,
            "--density",
            "0.5",
            "--mip-gap",
            "nan",
            "-o",
            o,
        ],
        &["--mip-gap NaN is out of range: allowed 0 to 1"],
    );
    refused(
        "moa",
        &[
            "optimize",
            "--profile",
            m,
            "--density",
            "0.5",
            "--extra-length",
            "0",
            "-o",
            o,
        ],
        &["--extra-length 0 is out of range: allowed 1..="],
    );
    let cfg = moa::optimize::OptimizeConfig {
        extra_lengths: vec![4096, 0],
        ..Default::default()
    };
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("extra length 0"));
}

#[test]
fn plan_messages_name_the_field_compactly() {
    let text = std::fs::read_to_string(fixture("fixture-gqa.toml")).unwrap();
    // q_heads = 0 is a range error on q_heads, not an alpha-length error.
    let e = Plan::from_toml_str(&text.replace("q_heads = 8", "q_heads = 0"), "p.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "p.toml: `model.q_heads` = 0 is out of range: allowed 1..=1024"
    );
    let e = upstream::import(
        r#"{"alphas": [], "betas": []}"#,
        "u.json",
        shape(1, 0, 1, 64),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`model.q_heads` = 0 is out of range"), "{e}");
    // alpha = 1e-300 used to print as 300 digits.
    let e = Plan::from_toml_str(
        &text.replacen("alpha = [0, 0, 64", "alpha = [1e-300, 0, 64", 1),
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`layers[0].alpha[0]` = 1e-300 is not allowed"),
        "{e}"
    );
    assert!(e.len() < 200, "{e}");
}

#[test]
fn kernels_mismatch_names_the_first_differing_constant_in_one_short_line() {
    let dir = scratch("mismatch");
    let a = Plan::load(&fixture("fixture-gqa.toml")).unwrap();
    let module = lower(&a, StorageType::F16);
    let arts = codegen::generate(&module, Target::Wgsl).unwrap();
    emit::write_output(&dir, &module, &[(Target::Wgsl, arts)]).unwrap();
    // Same shape and span constants, one α changed in layer 2.
    let text = std::fs::read_to_string(fixture("fixture-gqa.toml"))
        .unwrap()
        .replace("alpha = [32, 32, 32, 32", "alpha = [48, 32, 32, 32");
    let b = Plan::from_toml_str(&text, "b.toml").unwrap();
    let e = emit::read_output(&dir, &lower(&b, StorageType::F16), Target::Wgsl)
        .unwrap_err()
        .to_string();
    assert!(e.len() < 400, "{} characters: {e}", e.len());
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("cache_layout.layers[2]"), "{e}");

    let long = serde_json::json!({ "a": [1, 2, "x".repeat(10_000)] });
    let other = serde_json::json!({ "a": [1, 2, "y".repeat(10_000)] });
    let d = emit::first_difference("m", &long, &other).unwrap();
    assert!(d.starts_with("`m.a[2]` is \"xxx"), "{d}");
    assert!(d.len() < 400, "{d}");
    assert_eq!(emit::first_difference("m", &long, &long), None);
}

#[test]
fn compile_refuses_kernels_over_the_targets_resource_limits() {
    // 64 query heads on one KV head with head_dim 256 (the report's 5 MB case). Whole in
    // one block, the scalar (f32) CUDA decode stages the group's query rows and partial
    // states in shared memory: 330 752 bytes, over sm_90's 227 KiB. Session 35 ran such a
    // group as sub-groups of at most 8 heads on the tensor-core decode (f16 / bf16), and
    // session 36 the scalar decode too (141 440 bytes), so the plan fits in every storage.
    let plan = uniform_plan(2, 64, 1, 256, 256);
    for storage in [StorageType::F16, StorageType::Bf16, StorageType::F32] {
        let arts = codegen::generate(&lower(&plan, storage), Target::Cuda)
            .unwrap_or_else(|e| panic!("{storage:?}: {e}"));
        let decode = &arts[0].kernels[1].abi;
        assert_eq!(decode.tiles.sub_groups, Some(8), "{storage:?}");
    }
    // So does every shape a plan may have (head_dim up to 256, any group), in every storage.
    for head_dim in [4, 36, 100, 128, 256] {
        for q_heads in [1, 12, 64] {
            let p = uniform_plan(1, q_heads, 1, head_dim, 256);
            for storage in [StorageType::F16, StorageType::Bf16, StorageType::F32] {
                codegen::generate(&lower(&p, storage), Target::Cuda).unwrap_or_else(|e| {
                    panic!("{q_heads} heads / 1, head_dim {head_dim}, {storage:?}: {e}")
                });
            }
        }
    }
    let module = lower(&plan, StorageType::F32);
    // WGSL re-tiles for its 16 KiB and fits.
    codegen::generate(&module, Target::Wgsl).unwrap();

    // Whole in one block (`G`, session 34's path) the scalar decode is still over the
    // limit: the check refuses it, naming the layer, the kernel, its bytes and the limit.
    let group = module.shape.group_size();
    let whole = codegen::cuda::DecodeTuning {
        whole_group: true,
        ..codegen::cuda::DecodeTuning::default_for(group)
    };
    let arts = codegen::cuda::generate_tuned(&module, whole).unwrap();
    let e = limits::check(Target::Cuda, &arts).unwrap_err().to_string();
    assert!(
        e.starts_with("layer 0: cuda kernel `moa_decode_f32_hd256_l00`"),
        "{e}"
    );
    assert!(e.contains("330752 bytes of shared memory per block"), "{e}");
    assert!(
        e.contains(&format!("allowed at most {} (CUDA sm_90", 227 * 1024)),
        "{e}"
    );
    // The CUDA runtime, which generates its kernels itself, refuses that tuning the same
    // way, before it needs a driver (so this holds on a machine without a GPU).
    let e = match moa::runtime::cuda::CudaAttention::new_tuned(
        &module,
        0,
        moa::runtime::cuda::DEFAULT_ARCH,
        whole,
    ) {
        Ok(_) => panic!("the CUDA runtime accepted a kernel over sm_90's shared memory"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("bytes of shared memory per block"), "{e}");

    // The CLI compiles the f32 plan (it refused it, naming the plan file, layer 0 and the
    // limit, before session 36), with 8 sub-groups in the manifest.
    let dir = scratch("limits");
    let file = dir.join("big.toml");
    std::fs::write(&file, plan.to_toml()).unwrap();
    let out = dir.join("out");
    let (code, _, err) = run(
        "moa-compile",
        &[
            file.to_str().unwrap(),
            "--dtype",
            "f32",
            "--target",
            "cuda",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"sub_groups\": 8"), "{manifest}");

    // Every shipped plan fits both targets.
    for name in [
        "fixture-mha.toml",
        "fixture-gqa.toml",
        "smollm2-135m-moa-50.toml",
        "smollm2-135m-moa-25.toml",
    ] {
        let m = lower(&Plan::load(&fixture(name)).unwrap(), StorageType::F16);
        for t in [Target::Wgsl, Target::Cuda] {
            codegen::generate(&m, t).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    // The check reads what the back end records: a kernel whose block is too large.
    let m = lower(
        &Plan::load(&fixture("fixture-mha.toml")).unwrap(),
        StorageType::F32,
    );
    let mut arts = codegen::generate(&m, Target::Wgsl).unwrap();
    // The workgroup memory recorded when naga validated each file is what a fresh parse
    // of the file sizes (the limits check reads the record instead of parsing again).
    for a in &arts {
        let recorded = limits::resources(&a.kernels[0], a).unwrap().shared_bytes;
        assert!(a.workgroup_bytes.is_some(), "{}", a.path);
        let mut parsed = a.clone();
        parsed.workgroup_bytes = None;
        let fresh = limits::resources(&parsed.kernels[0], &parsed)
            .unwrap()
            .shared_bytes;
        assert_eq!(recorded, fresh, "{}", a.path);
        assert!(fresh > 0, "{}", a.path);
    }
    arts[0].kernels[0].abi.block = [512, 1, 1];
    let e = limits::check(Target::Wgsl, &arts).unwrap_err().to_string();
    assert!(e.contains("needs 512 threads per block"), "{e}");
    assert!(e.contains("allowed 1..=256 (wgpu default limits)"), "{e}");
}

fn listed_files(dir: &Path) -> Vec<String> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut v: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn kernel_files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for sub in ["wgsl", "cuda"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                v.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn compiling_a_smaller_plan_into_a_used_folder_leaves_no_stale_kernels() {
    let dir = scratch("stale");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let big = dir.join("big.toml");
    std::fs::write(&big, uniform_plan(12, 4, 2, 64, 128).to_toml()).unwrap();
    let small = dir.join("small.toml");
    std::fs::write(&small, uniform_plan(3, 4, 2, 64, 128).to_toml()).unwrap();

    let (code, _, err) = run("moa-compile", &[big.to_str().unwrap(), "-o", o]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("cuda/l11.cu").exists());
    let (code, _, err) = run("moa-compile", &[small.to_str().unwrap(), "-o", o]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("cuda/l11.cu").exists());
    assert!(!out.join("wgsl/l03_prefill.wgsl").exists());
    assert_eq!(kernel_files(&out), listed_files(&out));
    // Only one target now: the other target's folder is emptied too.
    let (code, _, err) = run(
        "moa-compile",
        &[small.to_str().unwrap(), "-o", o, "--target", "wgsl"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(kernel_files(&out), listed_files(&out));
    assert!(kernel_files(&out).iter().all(|f| f.starts_with("wgsl/")));
    // The removal is said, not counted as files written (it used to print "5 files
    // written" for the manifest and kernels.rs written and 3 .cu files removed).
    assert!(err.contains("; 2 files written to "), "{err}");
    assert!(
        err.contains("; 3 kernel files this compile does not produce removed from "),
        "{err}"
    );
    // A second identical compile changes nothing.
    let (code, _, err) = run(
        "moa-compile",
        &[small.to_str().unwrap(), "-o", o, "--target", "wgsl"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 files written"), "{err}");
}

#[test]
fn kv_memory_never_exceeds_dense_in_moa_mode_and_plan_show_says_when_upstream_does() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    // moa span mode: every span <= N, so the GQA-native cache is at most dense, at any N.
    for _ in 0..300 {
        let (q, kv) = [(4, 4), (8, 2), (9, 3), (6, 1)][rng.random_range(0..4)];
        let layers = (0..2)
            .map(|_| LayerRules {
                rules: (0..q)
                    .map(|_| Rule {
                        alpha: rng.random_range(-4096..4096),
                        beta_num: rng.random_range(0..=4096),
                    })
                    .collect(),
            })
            .collect();
        let span = SpanSection {
            sink_tokens: rng.random_range(0..128),
            min_span_tokens: rng.random_range(1..512),
            block_tokens: rng.random_range(1..128),
            mode: SpanMode::Moa,
            max_new_tokens: 0,
        };
        let plan = Plan::new(shape(2, q, kv, 64), span, Meta::default(), layers).unwrap();
        let n = rng.random_range(1..20_000);
        let st = plan_stats(&plan, n, 2);
        assert!(st.kv_bytes <= st.dense_kv_bytes, "N {n}: {st:?}");
        assert_eq!(st.kv_spans_over_n, 0);
    }

    // The report's case: an imported (upstream-mode) plan at short N is above dense, and
    // `moa plan show` says why and that the guarantee is moa mode's.
    let dir = scratch("kv");
    let json = dir.join("up.json");
    std::fs::write(
        &json,
        r#"{"alphas": [[2048,2048,2048,2048],[0,0,0,0]], "betas": [[0,0,0,0],[1,1,1,1]]}"#,
    )
    .unwrap();
    let toml = dir.join("up.toml");
    let args = [
        "plan",
        "import",
        json.to_str().unwrap(),
        "--layers",
        "2",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--head-dim",
        "64",
        "-o",
        toml.to_str().unwrap(),
    ];
    let (code, _, err) = run("moa", &args);
    assert_eq!(code, 0, "{err}");
    // N = 1 + 1024 new tokens = 1025: both layers' spans, min(2048, N) and min(N, N),
    // round up to the block: 1088 slots > N, 106.1% of dense.
    let (code, out, err) = run(
        "moa",
        &["plan", "show", toml.to_str().unwrap(), "--prompt-len", "1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("upstream span mode: 4 of 4 KV-head spans exceed N = 1025"),
        "{out}"
    );
    assert!(
        out.contains("the cache is 106.1% of dense, MORE than dense"),
        "{out}"
    );
    assert!(
        out.contains("only moa span mode guarantees at most dense"),
        "{out}"
    );
    let plan = Plan::load(&toml).unwrap();
    let st = plan_stats(&plan, 1025, 2);
    assert!(st.kv_bytes > st.dense_kv_bytes);
    // At N = 4096 (a multiple of the block, above every span) it is within dense.
    let (code, out, err) = run(
        "moa",
        &[
            "plan",
            "show",
            toml.to_str().unwrap(),
            "--prompt-len",
            "3072",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no KV-head span exceeds N = 4096"), "{out}");
}

#[test]
fn span_constants_longer_than_the_context_are_refused() {
    // A sink, minimum span or block past model.max_context_tokens (1024 here) used to
    // compile with exit 0: every head prefix-only (sink) or silently dense (moa mode).
    let text = std::fs::read_to_string(fixture("fixture-gqa.toml")).unwrap();
    for (from, to, want) in [
        (
            "sink_tokens = 16",
            "sink_tokens = 5000",
            "p.toml: `span.sink_tokens` = 5000 is out of range: allowed 0..=1024 (at most model.max_context_tokens = 1024)",
        ),
        (
            "min_span_tokens = 32",
            "min_span_tokens = 100000",
            "p.toml: `span.min_span_tokens` = 100000 is out of range: allowed 1..=1024 (at most model.max_context_tokens = 1024)",
        ),
        (
            "block_tokens = 16",
            "block_tokens = 2048",
            "p.toml: `span.block_tokens` = 2048 is out of range: allowed 1..=1024 (at most model.max_context_tokens = 1024)",
        ),
    ] {
        let e = Plan::from_toml_str(&text.replace(from, to), "p.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
    }
    // Up to the context is allowed; past the fixed bound the fixed bound is named.
    Plan::from_toml_str(
        &text.replace("sink_tokens = 16", "sink_tokens = 1024"),
        "p.toml",
    )
    .unwrap();
    let big = text.replace("max_context_tokens = 1024", "max_context_tokens = 1048576");
    let e = Plan::from_toml_str(
        &big.replace("block_tokens = 16", "block_tokens = 5000"),
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.ends_with("= 5000 is out of range: allowed 1..=4096"),
        "{e}"
    );

    // The CLI names the file and writes nothing.
    let dir = scratch("span-context");
    let file = dir.join("sink.toml");
    std::fs::write(
        &file,
        text.replace("sink_tokens = 16", "sink_tokens = 5000"),
    )
    .unwrap();
    let out = dir.join("out");
    refused(
        "moa-compile",
        &[file.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &["sink.toml: `span.sink_tokens` = 5000 is out of range: allowed 0..=1024"],
    );
    assert!(!out.join("manifest.json").exists());
    // An upstream import for a context shorter than upstream's minimum span (128).
    let json = dir.join("u.json");
    std::fs::write(&json, r#"{"alphas": [[0, 0]], "betas": [[0.5, 0.5]]}"#).unwrap();
    let j = json.to_str().unwrap();
    refused(
        "moa",
        &[
            "plan", "import", j, "--layers", "1", "--heads", "2", "--kv-heads", "1",
            "--head-dim", "64", "--max-context", "100",
        ],
        // Round 20: this named `span.min_span_tokens`, which import has no flag for.
        &["--max-context 100 is out of range: allowed 128..=1073741824 (at least upstream's span.min_span_tokens = 128"],
    );
}

#[test]
fn compile_refuses_max_new_tokens_that_leave_no_prompt_in_the_context() {
    // Session 12's fresh-user finding 2: max_new_tokens past model.max_context_tokens
    // compiled with exit 0, though no request can run such a plan (N = prompt + new).
    let text = std::fs::read_to_string(fixture("fixture-gqa.toml")).unwrap();
    assert!(text.contains("max_new_tokens = 32\n") && text.contains("max_context_tokens = 1024"));
    let dir = scratch("max-new");
    let out = dir.join("out");
    let compile = |name: &str, toml: String| {
        let file = dir.join(name);
        std::fs::write(&file, toml).unwrap();
        file.to_str().unwrap().to_string()
    };
    let f = compile(
        "new.toml",
        text.replace("max_new_tokens = 32", "max_new_tokens = 5000"),
    );
    refused(
        "moa-compile",
        &[&f, "-o", out.to_str().unwrap()],
        &["new.toml: `span.max_new_tokens` = 5000 is out of range: allowed 0..=1023 (N = prompt + max_new_tokens must fit model.max_context_tokens = 1024 with at least one prompt token)"],
    );
    assert!(!out.join("manifest.json").exists());
    // Not set: the default 1024 is named as the default.
    let f = compile("default.toml", text.replace("max_new_tokens = 32\n", ""));
    refused(
        "moa-compile",
        &[&f, "-o", out.to_str().unwrap()],
        &[
            "`span.max_new_tokens` = 1024 is out of range: allowed 0..=1023",
            "1024 is the default when [span] does not set it",
        ],
    );
    // One prompt token left is enough.
    let f = compile(
        "edge.toml",
        text.replace("max_new_tokens = 32", "max_new_tokens = 1023"),
    );
    let (code, _, err) = run(
        "moa-compile",
        &[&f, "-o", out.to_str().unwrap(), "--target", "wgsl"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn plan_import_writes_and_prints_the_context_it_assumes() {
    // Session 12's fresh-user finding 3: with shape flags only, the context defaulted to
    // 32768 and nothing said so.
    let dir = scratch("import-context");
    let json = dir.join("up.json");
    std::fs::write(&json, r#"{"alphas": [[0, 0]], "betas": [[0.5, 0.5]]}"#).unwrap();
    let j = json.to_str().unwrap();
    let shape = [
        "--layers",
        "1",
        "--heads",
        "2",
        "--kv-heads",
        "1",
        "--head-dim",
        "64",
    ];
    let (code, out, err) = run("moa", &[&["plan", "import", j][..], &shape].concat());
    assert_eq!(code, 0, "{err}");
    let note = "model.max_context_tokens = 32768 is assumed, not the model's: neither --max-context nor --model was given";
    assert!(err.contains(note), "{err}");
    let plan = Plan::from_toml_str(&out, "import").unwrap();
    assert_eq!(plan.model().max_context_tokens, 32768);
    assert_eq!(plan.meta().notes.as_deref(), Some(note));
    // Given, nothing is assumed.
    let (code, out, err) = run(
        "moa",
        &[&["plan", "import", j, "--max-context", "4096"][..], &shape].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("assumed"), "{err}");
    let plan = Plan::from_toml_str(&out, "import").unwrap();
    assert_eq!(
        (plan.model().max_context_tokens, plan.meta().notes.clone()),
        (4096, None)
    );
    // A context that upstream's 1024 new tokens fill is written, with a warning.
    let (code, _, err) = run(
        "moa",
        &[&["plan", "import", j, "--max-context", "1024"][..], &shape].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: model.max_context_tokens = 1024 leaves no prompt token"),
        "{err}"
    );
}

#[test]
fn generate_names_both_files_when_the_plan_is_for_another_model() {
    // A plan of another shape used to say only "plan does not fit the model: plan
    // `model.layers` = 3, model has 2", after loading the weights.
    let dir = scratch("other-model");
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let plan = fixture("fixture-gqa.toml");
    // "hello" from the tiny model with the other model's plan.
    let (m, p) = (model.to_str().unwrap(), plan.to_str().unwrap());
    let generate = ["generate", "--model", m, "--plan", p, "--prompt", "hello"];
    refused(
        "moa",
        &generate,
        &[
            "fixture-gqa.toml` was made for another model than `",
            "tiny.gguf`",
            "plan `model.layers` = 3, model has 2",
        ],
    );
    // A --kernels folder moa-compile never wrote, said before anything loads.
    let missing = dir.join("no-kernels");
    refused(
        "moa",
        &[&generate[..], &["--kernels", missing.to_str().unwrap()]].concat(),
        &[
            "no-kernels`: no manifest.json there; it is the folder moa-compile writes (`moa-compile ",
        ],
    );
}

/// The tiny model as a Hugging Face folder (F32, two shards), and its first shard.
fn tiny_hf(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    common::tiny::tiny(3, true).write_hf(&dir, candle_core::DType::F32, true);
    let shard = dir.join("model-00001-of-00002.safetensors");
    (dir, shard)
}

/// Rewrites one tensor's dtype in a safetensors header (same length: `F32` → `I32`).
fn retype(shard: &Path, from: &str, to: &str) -> String {
    let mut bytes = std::fs::read(shard).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().to_string();
    let at = header.find(&format!("\"dtype\":\"{from}\"")).unwrap();
    let name_end = header[..at].rfind("\":{").unwrap();
    let name = header[..name_end].rsplit('"').next().unwrap().to_string();
    let new = header.replacen(
        &format!("\"dtype\":\"{from}\""),
        &format!("\"dtype\":\"{to}\""),
        1,
    );
    assert_eq!(new.len(), header.len());
    bytes.splice(8..8 + n, new.into_bytes());
    std::fs::write(shard, bytes).unwrap();
    name
}

#[test]
fn a_broken_safetensors_file_is_named_with_what_is_wrong() {
    use moa::model::Model;
    let err = |dir: &Path| Model::load(dir).unwrap_err().to_string();
    // Truncated (a download cut short): candle said "file not fully covered".
    let (dir, shard) = tiny_hf("st-truncated");
    let len = std::fs::metadata(&shard).unwrap().len();
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..(len / 2) as usize]).unwrap();
    let e = err(&dir);
    assert!(
        e.contains("model-00001-of-00002.safetensors`: tensor `"),
        "{e}"
    );
    assert!(
        e.contains(&format!("the file is truncated ({} bytes)", len / 2)),
        "{e}"
    );
    std::fs::write(&shard, &bytes[..5]).unwrap();
    assert!(
        err(&dir).contains("the file has 5 bytes, less than the 8 of a safetensors header length")
    );
    std::fs::write(&shard, &bytes[..100]).unwrap();
    assert!(err(&dir).contains("the header length says"));
    // An unknown dtype, and one whose width does not match the tensor's bytes.
    let (dir, shard) = tiny_hf("st-dtype");
    let name = retype(&shard, "F32", "X32");
    assert!(err(&dir).contains(&format!("tensor `{name}` has an unknown dtype `X32`")));
    let (dir, shard) = tiny_hf("st-width");
    let name = retype(&shard, "F32", "I64");
    let e = err(&dir);
    assert!(e.contains(&format!("tensor `{name}` (I64 [")), "{e}");
    assert!(
        e.contains("needs") && e.contains("but its data_offsets"),
        "{e}"
    );
    // Two copies of the weights (a consolidated file beside its shards, no index): the
    // later file won silently.
    let (dir, shard) = tiny_hf("st-twice");
    std::fs::remove_file(dir.join("model.safetensors.index.json")).unwrap();
    std::fs::copy(&shard, dir.join("model.safetensors")).unwrap();
    let e = err(&dir);
    assert!(
        e.contains("model.safetensors`: tensor `")
            && e.contains("is also in `")
            && e.contains("the folder holds two copies of the weights"),
        "{e}"
    );
    // An integer tensor of a float's width loaded as numbers and ran as garbage.
    let (dir, shard) = tiny_hf("st-int");
    let name = retype(&shard, "F32", "I32");
    let e = err(&dir);
    assert!(
        e.contains(&format!(
            "tensor `{name}` has dtype I32: moa reads float weights"
        )),
        "{e}"
    );
}

#[test]
fn a_truncated_gguf_is_refused_when_opened_not_tensors_later() {
    // A download cut short loaded tensor after tensor and failed at the first missing
    // one ("tensor needs N bytes at offset O, only 0 remaining in file"); `moa model info`
    // and `plan import --model` accepted it.
    let dir = scratch("gguf-truncated");
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let bytes = std::fs::read(&model).unwrap();
    let cut = bytes.len() - 1;
    std::fs::write(&model, &bytes[..cut]).unwrap();
    let e = moa::model::Model::load(&model).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "tiny.gguf`: the file is truncated: it has {cut} bytes but its tensor data ends at byte {}",
            bytes.len()
        )),
        "{e}"
    );
    refused(
        "moa",
        &["model", "info", model.to_str().unwrap()],
        &["tiny.gguf`: the file is truncated"],
    );
    // The whole file: special ids print as plain numbers (they printed `Some(1)`).
    std::fs::write(&model, &bytes).unwrap();
    let (code, out, err) = run("moa", &["model", "info", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nbos              1\neos              2\n"),
        "{out}"
    );
}

#[test]
fn a_config_with_fewer_layers_than_the_weights_is_refused_not_truncated() {
    use candle_core::quantized::gguf_file::Value;
    use moa::model::Model;
    // num_hidden_layers = 1 over the tiny model's 2 layers ran the first layer only, exit 0.
    let (dir, _) = tiny_hf("fewer-layers-hf");
    let config = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["num_hidden_layers"] = 1.into();
    std::fs::write(&config, json.to_string()).unwrap();
    let e = Model::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("config.json`: the weights hold 2 layers (tensor `model.layers.1.")
            && e.contains("but num_hidden_layers = 1: config and weights disagree"),
        "{e}"
    );
    // The same in GGUF.
    let dir = scratch("fewer-layers-gguf");
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&path, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.block_count" {
                *v = Value::U32(1);
            }
        }
    });
    let e = Model::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("the weights hold 2 layers (tensor `blk.1.")
            && e.contains("but llama.block_count = 1"),
        "{e}"
    );
    // A folder without config.json that holds a GGUF file names it.
    let e = Model::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("has no `config.json`; it holds `")
            && e.contains("tiny.gguf`: pass a GGUF file itself"),
        "{e}"
    );
    // A context of 0 is refused with the config, not later as "no room for a new token".
    let (dir, _) = tiny_hf("zero-context");
    json["num_hidden_layers"] = (common::tiny::LAYERS).into();
    json["max_position_embeddings"] = 0.into();
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    let e = moa::model::read_config(&dir).unwrap_err().to_string();
    assert!(
        e.contains(
            "config.json`: unsupported model: `max_position_embeddings` is 0: allowed 1 or more"
        ),
        "{e}"
    );
}

#[test]
fn pipeline_names_its_work_folder_and_plans_after_the_model() {
    // `moa pipeline --model M` used SmolLM2's defaults: it resumed from runs/smollm2-135m
    // (SmolLM2's calibration and profiles, skipped as done) and wrote
    // plans/smollm2-135m-moa-*.toml, the shipped plans, with plans for M.
    let dir = scratch("pipeline-names");
    let stderr = |model: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_moa"))
            .current_dir(&dir)
            .env("MOA_CACHE", dir.join("no-cache"))
            // Refused before any step: only the names are under test.
            .args(["pipeline", "--model", model, "--validate-length", "10"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = stderr("models/Llama-3.2-1B Instruct");
    assert!(
        e.contains(&format!(
            "work folder {}, plans {}, {}",
            Path::new("runs/llama-3.2-1b-instruct").display(),
            Path::new("plans/llama-3.2-1b-instruct-moa-50.toml").display(),
            Path::new("plans/llama-3.2-1b-instruct-moa-25.toml").display()
        )),
        "{e}"
    );
    let e = stderr("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        e.contains("runs/smollm2-135m-instruct.q4_1, plans plans/smollm2-135m-instruct.q4_1-moa-"),
        "{e}"
    );
}

#[test]
fn a_calibration_of_another_tokenizer_names_the_file_and_sample() {
    // validate, profile and diagnose said only "token id 5000 is out of range: vocabulary
    // has 300 tokens", deep in the forward pass.
    let dir = scratch("calib-vocab");
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let calib = dir.join("other.jsonl");
    let mut tokens = common::tiny::tokens(40, 1);
    tokens[7] = 5000;
    moa::calib::write_jsonl(&calib, &[common::samples::sample("s0", tokens, 4, 64)]).unwrap();
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, common::tiny::sparse_plan().to_toml()).unwrap();
    let prof = dir.join("prof");
    let (m, c, p, o) = (
        model.to_str().unwrap(),
        calib.to_str().unwrap(),
        plan.to_str().unwrap(),
        prof.to_str().unwrap(),
    );
    let want = "other.jsonl`: sample `s0` has token id 5000, but the model `";
    let tail =
        "has vocab_size 300 (ids 0..=299): the calibration was made with another model's tokenizer";
    for args in [
        vec!["validate", "--calib", c, "--plan", p, "--model", m],
        vec!["diagnose", "--calib", c, "--plan", p, "--model", m],
        vec![
            "profile",
            "--calib",
            c,
            "--lengths",
            "64",
            "-o",
            o,
            "--model",
            m,
        ],
    ] {
        refused("moa", &args, &[want, tail]);
    }
}

#[test]
fn model_random_never_writes_over_a_folder_that_holds_files() {
    // `-o` at a real model's folder replaced its config.json and weights with random ones.
    let (dir, _) = tiny_hf("random-over");
    let config = std::fs::read(dir.join("config.json")).unwrap();
    refused(
        "moa",
        &[
            "model",
            "random",
            "--like",
            "smollm2-135m",
            "-o",
            dir.to_str().unwrap(),
        ],
        &["exists and is not an empty folder: moa model random writes a new one"],
    );
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), config);
    let file = dir.join("config.json");
    refused(
        "moa",
        &[
            "model",
            "random",
            "--like",
            "smollm2-135m",
            "-o",
            file.to_str().unwrap(),
        ],
        &["config.json` is a file, not a folder"],
    );
}

#[test]
fn generate_refuses_a_request_longer_than_the_plans_context() {
    // A plan made for 20 tokens of context ran at N = 35 with exit 0 (plan show refuses
    // such a length; generate did not).
    let dir = scratch("plan-context");
    let model = tiny_gguf(&dir, common::tiny::VOCAB);
    let plan = dir.join("short.toml");
    let toml = common::tiny::sparse_plan().to_toml();
    assert!(toml.contains("max_context_tokens = 128"));
    std::fs::write(
        &plan,
        toml.replace("max_context_tokens = 128", "max_context_tokens = 20"),
    )
    .unwrap();
    let (m, p) = (model.to_str().unwrap(), plan.to_str().unwrap());
    let args = |new: &'static str| {
        vec![
            "generate",
            "--model",
            m,
            "--plan",
            p,
            "--raw",
            "--prompt",
            "hello",
            "--max-new-tokens",
            new,
        ]
    };
    refused(
        "moa",
        &args("30"),
        &[
            "+ --max-new-tokens 30 = ",
            "tokens is past the plan's model.max_context_tokens = 20 (`",
            "short.toml`): allowed N 1..=20",
        ],
    );
}

#[test]
fn plan_export_says_when_the_json_loses_the_plans_span_constants() {
    // Exporting a moa-mode plan (sink 16, block 16, …) wrote JSON silently; upstream's
    // runtime reads it with sink 64, min span 128, block 64 and upstream span mode.
    let (code, out, err) = run(
        "moa",
        &[
            "plan",
            "export",
            fixture("fixture-gqa.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("{\"alphas\""), "{out}");
    assert!(
        err.contains("fixture-gqa.toml` has [span] sink 16, min span 32, block 16, mode moa, max_new 32; upstream JSON cannot carry them"),
        "{err}"
    );
    // An imported plan has upstream's constants: nothing to say.
    let dir = scratch("export");
    let json = dir.join("up.json");
    std::fs::write(&json, r#"{"alphas": [[0, 0]], "betas": [[0.5, 0.5]]}"#).unwrap();
    let toml = dir.join("up.toml");
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            json.to_str().unwrap(),
            "--layers",
            "1",
            "--heads",
            "2",
            "--kv-heads",
            "1",
            "--head-dim",
            "64",
            "--max-context",
            "4096",
            "-o",
            toml.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run("moa", &["plan", "export", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

/// A kernel file of a compiled folder that was truncated, edited in place (same length) or
/// deleted is refused by every loader (the CUDA and WGSL readers, `generate --kernels`
/// before the model loads, an app's embedded copy), naming the file, what the manifest
/// records (bytes, sha256) and what the file has, never as a compile error later.
/// [docs/DESIGN.md §8]
#[test]
fn a_truncated_edited_or_deleted_kernel_file_is_refused_naming_it() {
    let plan = Plan::load(&fixture("fixture-gqa.toml")).unwrap();
    let compiled =
        codegen::compile(&plan, &[Target::Wgsl, Target::Cuda], StorageType::F16).unwrap();
    let expected = |rel: &str| {
        let a = compiled
            .all_artifacts()
            .iter()
            .flat_map(|(_, a)| a.iter())
            .find(|a| a.path == rel)
            .unwrap();
        (a.source.len(), emit::sha256_hex(a.source.as_bytes()))
    };
    // Each case: which file, which target reads it, what is done to it, what is said.
    type Break = fn(&Path);
    let cases: [(&str, Target, Break, &str); 3] = [
        (
            "wgsl/l01_decode.wgsl",
            Target::Wgsl,
            |p| {
                let t = std::fs::read(p).unwrap();
                std::fs::write(p, &t[..t.len() / 2]).unwrap();
            },
            "bytes (sha256 ",
        ),
        (
            "cuda/l02.cu",
            Target::Cuda,
            |p| {
                let t = std::fs::read_to_string(p).unwrap();
                let edited = t.replacen("float", "FLOAT", 1);
                assert_eq!(edited.len(), t.len());
                assert_ne!(edited, t);
                std::fs::write(p, edited).unwrap();
            },
            "(edited after moa-compile wrote it)",
        ),
        (
            "wgsl/l00_prefill.wgsl",
            Target::Wgsl,
            |p| std::fs::remove_file(p).unwrap(),
            "but the file is missing",
        ),
    ];
    for (i, (rel, target, break_it, says)) in cases.into_iter().enumerate() {
        let dir = scratch(&format!("kernel-file-{i}"));
        compiled.write(&dir).unwrap();
        codegen::Compiled::read(&dir, &plan, StorageType::F16, target).unwrap();
        emit::verify_output(&dir).unwrap();
        let file = dir.join(rel);
        assert!(file.is_file(), "{rel}");
        break_it(&file);
        let (bytes, sha) = expected(rel);
        let want = [
            format!("kernel file `{}` does not match ", file.display()),
            "manifest.json (written by moa-compile ".to_string(),
            format!("expected {bytes} bytes, sha256 {sha}"),
            says.to_string(),
            format!("re-run `moa-compile PLAN -o {}`", dir.display()),
        ];
        let read = codegen::Compiled::read(&dir, &plan, StorageType::F16, target)
            .expect_err(rel)
            .to_string();
        let verified = emit::verify_output(&dir).unwrap_err().to_string();
        assert_eq!(read, verified);
        for w in &want {
            assert!(read.contains(w.as_str()), "`{w}` not in: {read}");
        }
        // `generate --kernels` says it before anything loads: the model does not exist.
        let msg = refused(
            "moa",
            &[
                "generate",
                "--model",
                dir.join("no-model.gguf").to_str().unwrap(),
                "--prompt",
                "hello",
                "--kernels",
                dir.to_str().unwrap(),
            ],
            &[&want[0], &want[2], says],
        );
        assert!(!msg.contains("no-model"), "{msg}");
    }

    // A manifest of an older moa-compile (no `bytes` / `sha256`) is refused with the fix.
    let dir = scratch("kernel-file-old-manifest");
    compiled.write(&dir).unwrap();
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["manifest_version"] = serde_json::json!(2);
    for f in m["files"].as_array_mut().unwrap() {
        let f = f.as_object_mut().unwrap();
        f.remove("bytes");
        f.remove("sha256");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let e = codegen::Compiled::read(&dir, &plan, StorageType::F16, Target::Wgsl)
        .err()
        .unwrap()
        .to_string();
    for w in [
        "manifest_version 2 (written by moa-compile ",
        "records no byte length or sha256 per kernel file",
        &format!("re-run `moa-compile PLAN -o {}`", dir.display()),
    ] {
        assert!(e.contains(w), "`{w}` not in: {e}");
    }

    // An app's embedded copy is checked the same way.
    let manifest = compiled.manifest_json();
    let mut sources: Vec<(String, String)> = compiled
        .artifacts(Target::Wgsl)
        .iter()
        .map(|a| (a.path.clone(), a.source.clone()))
        .collect();
    sources[0].1.truncate(100);
    let refs: Vec<(&str, &str)> = sources
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    let e = codegen::Compiled::from_embedded(&plan, Target::Wgsl, &manifest, &refs)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&format!(
            "kernel file `{}` does not match embedded manifest",
            sources[0].0
        )) && e.contains("it has 100 bytes"),
        "{e}"
    );
}

/// `moa model info` on a folder without tokenizer.json (what `moa model random` writes)
/// shows the config and says there is no tokenizer; it failed with "cannot read
/// tokenizer.json" on the folders moa itself writes.
#[test]
fn model_info_shows_a_folder_without_a_tokenizer() {
    let (dir, _) = tiny_hf("info-no-tokenizer");
    let _ = std::fs::remove_file(dir.join("tokenizer.json"));
    let (code, out, err) = run("moa", &["model", "info", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("layers ") && out.contains("tokenizer        none: no tokenizer.json"),
        "{out}"
    );
}

/// Config keys whose other values change what the model computes were read past: a
/// `hidden_act` = "gelu" model ran with SiLU and a `partial_rotary_factor` = 0.5 one
/// rotated every dimension, both without a word (docs/MODEL.md promised a refusal naming
/// the key). Llama's own values (and `null`) still load.
#[test]
fn a_config_key_that_changes_the_computation_is_refused() {
    use moa::model::Model;
    let (dir, _) = tiny_hf("config-keys");
    let config = dir.join("config.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut json = original.clone();
        json[key] = value;
        std::fs::write(&config, json.to_string()).unwrap();
        Model::load(&dir).map(|_| ()).map_err(|e| e.to_string())
    };
    let e = with("hidden_act", "gelu".into()).unwrap_err();
    assert!(e.contains("`hidden_act` is \"gelu\", only \"silu\""), "{e}");
    let e = with("partial_rotary_factor", 0.5.into()).unwrap_err();
    assert!(
        e.contains("`partial_rotary_factor` is 0.5: partial rotary is not supported"),
        "{e}"
    );
    with("hidden_act", "silu".into()).unwrap();
    with("partial_rotary_factor", 1.0.into()).unwrap();
    with("hidden_act", serde_json::Value::Null).unwrap();
    // transformers writes `{"rope_type": "default"}` for an unscaled model: it loads; a
    // scaling moa does not implement, or one without its parameters, is refused, naming
    // the value and what is allowed; linear and llama3 load into the config.
    with("rope_scaling", serde_json::json!({"rope_type": "default"})).unwrap();
    with(
        "rope_scaling",
        serde_json::json!({"type": "default", "factor": 1.0}),
    )
    .unwrap();
    let e = with(
        "rope_scaling",
        serde_json::json!({"rope_type": "llama3", "factor": 8.0}),
    )
    .unwrap_err();
    assert!(
        e.contains("`rope_scaling` is {")
            && e.contains("`low_freq_factor` is missing")
            && e.contains("\"default\""),
        "{e}"
    );
    let e = with(
        "rope_scaling",
        serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
    )
    .unwrap_err();
    assert!(e.contains("the kind `yarn` is not implemented"), "{e}");
    let e = with(
        "rope_scaling",
        serde_json::json!({"rope_type": "default", "factor": 2.0}),
    )
    .unwrap_err();
    assert!(e.contains("`rope_scaling` is"), "{e}");
    with(
        "rope_scaling",
        serde_json::json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    )
    .unwrap();
    with(
        "rope_scaling",
        serde_json::json!({"type": "linear", "factor": 2.0}),
    )
    .unwrap();
}

/// `moa model random`'s folders keep a model's RoPE scaling (session 18): the random
/// Llama-3.2-1B shape carries the real model's `llama3` scaling, written as transformers
/// spells it and read back into the same config.
#[test]
fn a_random_model_folder_keeps_its_rope_scaling() {
    use moa::model::{random, Model, RopeScaling};
    let one_b = random::like("llama-3.2-1b").unwrap();
    assert!(matches!(
        one_b.rope_scaling,
        Some(RopeScaling::Llama3 { factor, .. }) if factor == 32.0
    ));
    // The 1B's scaling on a model small enough to write in a test.
    let config = moa::model::LlamaConfig {
        n_layers: 1,
        hidden_size: 64,
        ffn_size: 96,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab_size: 300,
        context_length: 256,
        ..one_b
    };
    let dir = std::env::temp_dir().join(format!("moa-random-rope-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    random::write_hf_folder(&random::random_model(&config, 3), &dir).unwrap();
    let json = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(
        json.contains("\"rope_type\":\"llama3\"")
            && json.contains("\"original_max_position_embeddings\":8192"),
        "{json}"
    );
    let loaded = Model::load(&dir).unwrap();
    assert_eq!(loaded.config.rope_scaling, config.rope_scaling);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missing input of optimize, validate, profile or diagnose is said as "cannot read":
/// the calibration and profile errors said "cannot read or write" for an input that did
/// not exist (session 19).
#[test]
fn a_missing_calibration_or_profile_says_cannot_read() {
    let dir = scratch("missing-inputs");
    let missing = |name: &str| dir.join(name).display().to_string();
    let profile = missing("nope.safetensors");
    let calib = missing("nope.jsonl");
    let plan = root().join("plans/fixture-gqa.toml").display().to_string();
    let out = missing("o");
    for (args, what) in [
        (
            vec![
                "optimize",
                "--profile",
                &profile,
                "--density",
                "0.5",
                "-o",
                &out,
            ],
            &profile,
        ),
        (vec!["validate", "--calib", &calib, "--plan", &plan], &calib),
        (vec!["diagnose", "--calib", &calib, "--plan", &plan], &calib),
    ] {
        let err = refused("moa", &args, &[&format!("cannot read `{what}`")]);
        assert!(!err.contains("read or write"), "{err}");
    }
    // Outputs written at the end are checked first: validate's --best and --output in a
    // missing folder or naming a folder, optimize's -o naming a file (session 19: found
    // after the validation or the solve).
    let nowhere = missing("no-such-folder/best.toml");
    refused(
        "moa",
        &[
            "validate", "--calib", &calib, "--plan", &plan, "--best", &nowhere,
        ],
        &[
            &format!("--best `{nowhere}`: the folder `"),
            "does not exist",
        ],
    );
    let here = dir.display().to_string();
    refused(
        "moa",
        &[
            "validate", "--calib", &calib, "--plan", &plan, "--output", &here,
        ],
        &[&format!("--output `{here}` is a folder")],
    );
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = file.display().to_string();
    refused(
        "moa",
        &[
            "optimize",
            "--profile",
            &profile,
            "--density",
            "0.5",
            "-o",
            &f,
        ],
        &[&format!("-o `{f}` exists and is not a folder")],
    );
}
