//! A new user's journey, round 10 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::{Path, PathBuf};

common::cli::tagged!();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Names of the files in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `moa plan import/export -o`: the input itself given as the output replaced it (the plan
/// became JSON, the upstream file TOML); a folder as the output failed at the rename and
/// left `FOLDER.partial-<pid>` beside it; a missing folder was reported as the temporary's
/// name. Each is refused now, naming the user's path, and nothing is left behind.
#[test]
fn plan_import_and_export_never_overwrite_their_input_or_leave_temporaries() {
    let dir = scratch("output");
    let plan = dir.join("p.toml");
    std::fs::copy(root().join("plans/fixture-gqa.toml"), &plan).unwrap();
    let before = std::fs::read(&plan).unwrap();
    let p = plan.to_str().unwrap();
    // The same file under another spelling is still the input.
    let same = format!("{}/./p.toml", dir.display());
    for out in [p, same.as_str()] {
        refused(
            "moa",
            &["plan", "export", p, "-o", out],
            &["is the input", "p.toml"],
        );
    }
    assert_eq!(
        std::fs::read(&plan).unwrap(),
        before,
        "the plan was replaced"
    );

    let json = dir.join("up.json");
    let (code, _, err) = run("moa", &["plan", "export", p, "-o", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let up = std::fs::read(&json).unwrap();
    let j = json.to_str().unwrap();
    let shape = [
        "--layers",
        "3",
        "--heads",
        "8",
        "--kv-heads",
        "2",
        "--head-dim",
        "64",
    ];
    let mut args = vec!["plan", "import", j];
    args.extend(shape);
    args.extend(["-o", j]);
    refused("moa", &args, &["is the input", "up.json"]);
    assert_eq!(
        std::fs::read(&json).unwrap(),
        up,
        "the upstream file was replaced"
    );

    // A folder, and a file in a missing folder: the user's path named, nothing left.
    let folder = dir.join("sub");
    std::fs::create_dir(&folder).unwrap();
    let missing = dir.join("nope/x.json");
    for (out, needle) in [
        (folder.to_str().unwrap(), "is a folder"),
        (missing.to_str().unwrap(), "does not exist"),
    ] {
        let err = refused("moa", &["plan", "export", p, "-o", out], &[out, needle]);
        assert!(!err.contains(".partial-"), "a temporary named:\n{err}");
    }
    assert_eq!(names(&dir), ["p.toml", "sub", "up.json"]);
    // The wrong file of a round trip: a moa plan given to the import.
    let mut args = vec!["plan", "import", p];
    args.extend(shape);
    refused(
        "moa",
        &args,
        &["is a moa plan (TOML) already", "moa plan export"],
    );
    assert!(names(&folder).is_empty());
}

/// A user's own small model: a random-weight Hugging Face folder of a 2048-token context
/// (4 layers, 8 query / 2 KV heads of 32), as `moa model random` writes one.
fn small_model(dir: &Path) -> PathBuf {
    let config = moa::model::LlamaConfig {
        name: Some("small".into()),
        n_layers: 4,
        hidden_size: 256,
        ffn_size: 688,
        q_heads: 8,
        kv_heads: 2,
        head_dim: 32,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: moa::model::random::BYTE_VOCAB,
        tied_embeddings: false,
        context_length: 2048,
    };
    let path = dir.join("small");
    let model = moa::model::random::random_model(&config, 1);
    moa::model::random::write_hf_folder(&model, &path).unwrap();
    path
}

/// `moa model random`'s `config.json` held `"rms_norm_eps": 9.999999747378752e-6` (1e-5
/// as f32, widened), not the `1e-05` of a real config; `moa model info` of a small model
/// said "0.003 billion (loading needs about 0.0 GB ...)".
#[test]
fn a_small_models_config_and_info_read_as_written() {
    let dir = scratch("info");
    let model = small_model(&dir);
    let text = std::fs::read_to_string(model.join("config.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["rms_norm_eps"].as_f64(), Some(1e-5), "{text}");
    assert_eq!(json["rope_theta"].as_f64(), Some(10_000.0), "{text}");
    let (code, out, err) = run("moa", &["model", "info", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // 4 x (2 x 256 x 256 + 2 x 64 x 256 + 3 x 256 x 688 + 2 x 256) + 2 x 259 x 256 + 256
    // = 2 903 808 parameters, 4 bytes each.
    assert!(
        out.contains("parameters       2.90 million (loading needs about 11.6 MB of memory"),
        "{out}"
    );
    // A folder's dtypes, as a GGUF's tensor types are listed (`moa model random` writes
    // bf16; 9 tensors per layer, the embedding, the head and the final norm).
    assert!(out.contains("tensor_types     BF16 x 39"), "{out}");
}

/// `moa eval` on a model of a 2048-token context was refused for its own defaults
/// ("--lengths: 4096 tokens is beyond the model's context", then "--ppl-length 4096 is out
/// of range"), values the user never gave. The defaults now stop at the context, and a
/// note says so; a length the user gives is still checked as given.
#[test]
fn eval_defaults_fit_a_short_context_and_given_lengths_are_checked() {
    let dir = scratch("eval");
    let model = small_model(&dir);
    let m = model.to_str().unwrap();
    // A plan of another shape stops the run after the defaults are settled, before any
    // GPU work.
    let other = root().join("plans/fixture-gqa.toml");
    let o = other.to_str().unwrap();
    let err = refused(
        "moa",
        &["eval", "--model", m, "--plan", o],
        &["does not fit", "model.layers"],
    );
    for note in [
        "moa eval: --lengths 1024,2048 (the default is 1024,2048,4096,7680; the model's context is 2048 tokens)",
        "moa eval: --ppl-length 2048 (the model's context; the default is 4096)",
    ] {
        assert!(err.contains(note), "no `{note}` in:\n{err}");
    }
    refused(
        "moa",
        &["eval", "--model", m, "--plan", o, "--lengths", "4096"],
        &["--lengths: 4096 tokens is beyond the model's context of 2048 tokens"],
    );
    // A plan of the model's shape, for the check after the plans.
    let up = dir.join("up.json");
    let row = |v: &str| format!("[{}]", [v; 8].join(","));
    let rows = |v: &str| format!("[{}]", vec![row(v); 4].join(","));
    std::fs::write(
        &up,
        format!(r#"{{"alphas": {}, "betas": {}}}"#, rows("0"), rows("0.5")),
    )
    .unwrap();
    let plan = dir.join("small.toml");
    let p = plan.to_str().unwrap();
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--model",
            m,
            "-o",
            p,
        ],
    );
    assert_eq!(code, 0, "{err}");
    refused(
        "moa",
        &[
            "eval",
            "--model",
            m,
            "--plan",
            p,
            "--lengths",
            "1024",
            "--ppl-length",
            "4096",
        ],
        &["--ppl-length 4096 is out of range: allowed 2..=2048"],
    );
}

/// `moa bench --parity 0 --checks-only` compared no token and would pass; on a machine
/// without the CUDA driver, `--parity N` first made a random SmolLM2-shaped model on the
/// CPU (a minute, silently) before failing at the first CUDA call.
#[test]
fn bench_refuses_parity_0_and_a_missing_driver_before_any_work() {
    refused(
        "moa",
        &["bench", "--parity", "0", "--checks-only"],
        &["--parity 0: allowed 1 or more"],
    );
    if moa::runtime::cuda::ops::driver_present().is_ok() {
        return; // a GPU machine: the run would start
    }
    // Said by the check before the model is made (the CUDA call's own error came after).
    refused(
        "moa",
        &["bench", "--parity", "4", "--checks-only"],
        &["moa bench runs the CUDA engine, which needs an NVIDIA GPU and its driver"],
    );
}

/// Every `--like` help names every shape `--like` takes: `moa plan show --help` and `moa
/// bench --help` left out llama-3.2-1b, which both accept; `moa --help` said the `model`
/// command had fetch and info, not random.
#[test]
fn help_names_every_shape_and_subcommand() {
    for cmd in [
        &["plan", "show", "--help"][..],
        &["bench", "--help"],
        &["profile", "--help"],
        &["model", "random", "--help"],
    ] {
        let (code, out, err) = run("moa", cmd);
        assert_eq!(code, 0, "{cmd:?}: {err}");
        // Help wraps long lines: compare with the line breaks and indents removed.
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        for shape in moa::model::random::SHAPES {
            assert!(
                flat.contains(shape),
                "{cmd:?} does not name `{shape}`:\n{out}"
            );
        }
    }
    let (_, out, _) = run("moa", &["--help"]);
    assert!(out.contains("(fetch, info, random)"), "{out}");
}

/// `moa-compile MODEL`: a user's model given where the plan goes was refused as "is a
/// directory", "is JSON, not a moa plan: convert an upstream MoA plan", "is not UTF-8
/// text" or "larger than the 67108864 bytes allowed for a plan". Each now says what was
/// given and how a plan for that model is made, naming the model folder.
#[test]
fn compile_names_a_model_given_as_the_plan() {
    let dir = scratch("compile-model");
    let model = small_model(&dir);
    let gguf = dir.join("m.gguf");
    // A GGUF header's magic and version; the rest is not read.
    std::fs::write(
        &gguf,
        [&b"GGUF"[..], &3u32.to_le_bytes(), &[0u8; 64]].concat(),
    )
    .unwrap();
    let m = model.display().to_string();
    let out = dir.join("out");
    for (given, what, named) in [
        (model.clone(), "is a model folder", m.as_str()),
        (
            model.join("config.json"),
            "is a model's config.json",
            m.as_str(),
        ),
        (
            model.join("model.safetensors"),
            "is a safetensors weight file",
            m.as_str(),
        ),
        (gguf.clone(), "is a GGUF model file", gguf.to_str().unwrap()),
    ] {
        refused(
            "moa-compile",
            &[given.to_str().unwrap(), "-o", out.to_str().unwrap()],
            &[
                what,
                "not a plan",
                &format!("moa plan import UPSTREAM.json --model {named} -o PLAN.toml"),
            ],
        );
    }
    assert!(!out.exists());
}

/// `moa generate --model MODEL --kernels DIR` without `--plan` on a model other than
/// SmolLM2 was told "pass --plan PLAN.toml or --dense", and `--dense` with `--kernels` is
/// refused by the parser: the message now asks for the plan the folder was compiled from.
#[test]
fn generate_with_a_kernels_folder_asks_for_its_plan() {
    let dir = scratch("kernels");
    let model = small_model(&dir);
    let m = model.to_str().unwrap();
    let up = dir.join("up.json");
    let row = format!("[{}]", ["0.5"; 8].join(","));
    let zeros = format!("[{}]", ["0"; 8].join(","));
    std::fs::write(
        &up,
        format!(
            r#"{{"alphas": [{}], "betas": [{}]}}"#,
            vec![zeros; 4].join(","),
            vec![row; 4].join(",")
        ),
    )
    .unwrap();
    let plan = dir.join("small.toml");
    let p = plan.to_str().unwrap();
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--model",
            m,
            "-o",
            p,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let (code, _, err) = run("moa-compile", &[p, "-o", o, "--target", "wgsl"]);
    assert_eq!(code, 0, "{err}");
    let err = refused(
        "moa",
        &["generate", "--model", m, "--kernels", o, "--prompt", "hi"],
        &[&format!(
            "has another shape: pass --plan with the plan that `{o}` was compiled from"
        )],
    );
    assert!(!err.contains("--dense"), "{err}");
}

/// `moa diagnose --sample ID` with an id the calibration file does not hold was found
/// only after the model loaded (minutes for a big one), and the message did not say which
/// samples there are. It is checked first now and lists the samples with a needle.
#[test]
fn diagnose_names_the_samples_before_the_model_loads() {
    let dir = scratch("diagnose");
    let sample = |id: &str, needle: Option<usize>| moa::calib::CalibSample {
        id: id.into(),
        task: "passkey".into(),
        length_level: 16,
        prompt_tokens: (3..15).collect(),
        response_tokens: vec![20, 21],
        n_tokens: 14,
        response_span: [12, 14],
        source: "test".into(),
        seed: 0,
        dense_answer_text: String::new(),
        expected: moa::calib::Expected {
            answer: String::new(),
            correct: true,
            depth: None,
            needle_token: needle,
        },
    };
    let calib = dir.join("c.jsonl");
    let lines: Vec<String> = [
        sample("passkey-16-0", Some(4)),
        sample("text-16-0", None),
        sample("passkey-16-1", Some(6)),
    ]
    .iter()
    .map(|s| serde_json::to_string(s).unwrap())
    .collect();
    std::fs::write(&calib, lines.join("\n") + "\n").unwrap();
    let plan = root().join("plans/fixture-gqa.toml");
    // The model does not exist: reading it would fail first, as it did.
    let missing = dir.join("no-model.gguf");
    refused(
        "moa",
        &[
            "diagnose",
            "--calib",
            calib.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "--model",
            missing.to_str().unwrap(),
            "--sample",
            "passkey-16-9",
        ],
        &[
            r#"has no sample with a needle position among ["passkey-16-9"]: its samples with a needle are passkey-16-0, passkey-16-1"#,
        ],
    );
}
