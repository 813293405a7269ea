//! A new user's journey, round 19 (benches/RESULTS.md): round 18's leftovers, hostile
//! model folders and plans, moa-compile's outputs; what was found wrong, each pinned here.
//! None of these needs the fetched model or anything outside the repository.

mod common;

use common::cli::{fixture_gqa, s};
use std::path::{Path, PathBuf};

common::cli::tagged!();

/// A Hugging Face folder of `plans/fixture-gqa.toml`'s shape (3 layers, 8 query / 2 KV
/// heads of 64, a 1024-token context) with a byte-level tokenizer and a weights file that
/// cannot load (16 bytes of nothing): what is read before the weights works, a load fails.
fn folder_whose_weights_fail(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 3,
        "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 64,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "vocab_size": 260,
        "tie_word_embeddings": true, "max_position_embeddings": 1024,
        "bos_token_id": 1, "eos_token_id": 2,
    });
    std::fs::write(m.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        m.join("tokenizer.json"),
        moa::model::random::byte_level_tokenizer_json().to_string(),
    )
    .unwrap();
    std::fs::write(m.join("model.safetensors"), [0u8; 16]).unwrap();
    m
}

/// Round 18's leftover: `moa diagnose` with a calibration file holding no sample to
/// diagnose (empty, or running text only) loaded the model first (5.7 s for SmolLM2) and
/// only then said so. An empty file is said before the model is even looked for (here
/// the model does not exist, and the error is still the calibration file's), one of
/// running text before the weights.
#[test]
fn diagnose_without_a_needle_sample_is_refused_before_the_model() {
    let dir = scratch("diagnose-empty");
    let calib = dir.join("empty.jsonl");
    std::fs::write(&calib, "").unwrap();
    let plan = dir.join("gqa.toml");
    std::fs::write(&plan, fixture_gqa()).unwrap();
    let missing = dir.join("no-such-model.gguf");
    let args = [
        "diagnose",
        "--calib",
        s(&calib),
        "--plan",
        s(&plan),
        "--model",
        s(&missing),
    ];
    let err = refused(
        "moa",
        &args,
        &[
            s(&calib),
            "has no sample with a needle position",
            "it holds no sample",
        ],
    );
    assert!(!err.contains("no-such-model"), "{err}");
    // Running-text samples only (no needle): said after the config's checks (the
    // samples' token ids against its vocabulary), before the weights, which here cannot
    // load.
    let tokens: Vec<u32> = (0..40).map(|i| 100 + i % 50).collect();
    let mut text = common::samples::sample("t0", tokens, 4, 256);
    text.task = "text".into();
    moa::calib::write_jsonl(&calib, &[text]).unwrap();
    let model = folder_whose_weights_fail(&dir);
    let err = refused(
        "moa",
        &[
            "diagnose",
            "--calib",
            s(&calib),
            "--plan",
            s(&plan),
            "--model",
            s(&model),
        ],
        &[
            "has no sample with a needle position",
            "its 1 sample is running text",
        ],
    );
    assert!(!err.contains("safetensors"), "the weights were read: {err}");
}

/// `moa diagnose` checked the plan against the model after loading the weights: a plan
/// of another shape is now refused from the model's config alone (the weights here
/// cannot load, and the error is the shape's).
#[test]
fn diagnose_checks_the_plans_shape_before_the_weights() {
    let dir = scratch("diagnose-shape");
    let model = folder_whose_weights_fail(&dir);
    let calib = dir.join("calib.jsonl");
    let tokens: Vec<u32> = (0..40).map(|i| 100 + i % 50).collect();
    let mut sample = common::samples::sample("s0", tokens, 4, 256);
    sample.expected.needle_token = Some(10);
    moa::calib::write_jsonl(&calib, &[sample]).unwrap();
    // The fixture's shape but 4 query heads a layer (2 per KV head).
    let plan = dir.join("four-heads.toml");
    let mut text = fixture_gqa().replacen("q_heads = 8", "q_heads = 4", 1);
    for line in text.clone().lines() {
        if let Some(list) = line
            .strip_prefix("alpha = [")
            .or(line.strip_prefix("beta = ["))
        {
            let kept: Vec<&str> = list.trim_end_matches(']').split(", ").take(4).collect();
            let key = if line.starts_with("alpha") {
                "alpha"
            } else {
                "beta"
            };
            text = text.replacen(line, &format!("{key} = [{}]", kept.join(", ")), 1);
        }
    }
    std::fs::write(&plan, text).unwrap();
    let err = refused(
        "moa",
        &[
            "diagnose",
            "--calib",
            s(&calib),
            "--plan",
            s(&plan),
            "--model",
            s(&model),
        ],
        &[s(&plan), "does not fit", "q_heads"],
    );
    assert!(!err.contains("safetensors"), "the weights were read: {err}");
}

/// Round 18's leftover: `moa eval --ppl-text` files were read after the model had loaded
/// (5 s for SmolLM2, minutes for a 7B model), so an empty one was said only then. They
/// are read with the tokenizer now, before the weights: here the weights cannot load, and
/// the error is the text's. (The adapter is created first: lavapipe in CI.)
#[test]
fn eval_reads_the_perplexity_text_before_the_weights() {
    let dir = scratch("eval-ppl-text");
    let model = folder_whose_weights_fail(&dir);
    let plan = dir.join("gqa.toml");
    std::fs::write(&plan, fixture_gqa()).unwrap();
    let empty = dir.join("held-out.txt");
    std::fs::write(&empty, "\n  \n").unwrap();
    let err = refused(
        "moa",
        &[
            "eval",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--lengths",
            "256",
            "--depths",
            "1",
            "--ppl-length",
            "128",
            "--ppl-scored",
            "64",
            "--ppl-rows",
            "1",
            "--ppl-text",
            s(&empty),
        ],
        &["--ppl-text", s(&empty), "is empty"],
    );
    assert!(!err.contains("safetensors"), "the weights were read: {err}");
}

/// `moa model info` on a folder listed an integer tensor as `I16 x 1`, unmarked, where a
/// GGUF's unreadable type is marked and its first tensor named: a load refused the folder
/// only later. Marked and named now.
#[test]
fn model_info_marks_a_folders_dtype_moa_cannot_read() {
    let dir = scratch("info-dtype");
    let model = folder_whose_weights_fail(&dir);
    let header = serde_json::json!({
        "model.norm.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
        "model.embed_tokens.weight": {"dtype": "I16", "shape": [2], "data_offsets": [4, 8]},
    })
    .to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 8]);
    std::fs::write(model.join("model.safetensors"), bytes).unwrap();
    // The folder also lacks most tensors its config asks for: every line is printed, then
    // the command exits 2 naming them (round 28: it exited 0); an unreadable dtype alone
    // leaves it 0, as for a GGUF.
    let (code, out, err) = run("moa", &["model", "info", s(&model)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("missing from the safetensors headers"),
        "{err}"
    );
    assert!(out.contains("BF16 x 1, I16 x 1 (moa cannot read)"), "{out}");
    assert!(
        out.contains(
            "1 tensor of a dtype moa cannot read (the first: `model.embed_tokens.weight`, I16"
        ),
        "{out}"
    );
}
