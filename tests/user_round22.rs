//! A new user's journey, round 22 (benches/RESULTS.md): Hugging Face folders of every
//! config.json, dtype and shard variant, GGUF metadata, `moa generate`'s sampling options,
//! `moa eval` / `calib` / `pipeline` on tiny inputs, and outputs after Ctrl-C; what it found
//! wrong, each pinned here. None of these needs the fetched model or a GPU.

mod common;

use common::cli::s;
use std::path::{Path, PathBuf};

common::cli::tagged!();

/// A one-layer Llama folder (hidden 8, 2 query / 1 KV heads of 4, byte-level tokenizer of
/// 259 tokens over 260 embedding rows) whose context is `context` tokens, BF16 weights of 0
/// (norms of 1), and `nan` in the `nan_at` element of the down projection where given.
fn tiny_folder(dir: &Path, context: usize, nan_at: Option<usize>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "vocab_size": 260,
        "tie_word_embeddings": true, "max_position_embeddings": context,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        moa::model::random::byte_level_tokenizer_json().to_string(),
    )
    .unwrap();
    let l = "model.layers.0.";
    let tensors: Vec<(String, Vec<u64>)> = vec![
        ("model.embed_tokens.weight".into(), vec![260, 8]),
        ("model.norm.weight".into(), vec![8]),
        (format!("{l}input_layernorm.weight"), vec![8]),
        (format!("{l}self_attn.q_proj.weight"), vec![8, 8]),
        (format!("{l}self_attn.k_proj.weight"), vec![4, 8]),
        (format!("{l}self_attn.v_proj.weight"), vec![4, 8]),
        (format!("{l}self_attn.o_proj.weight"), vec![8, 8]),
        (format!("{l}post_attention_layernorm.weight"), vec![8]),
        (format!("{l}mlp.gate_proj.weight"), vec![16, 8]),
        (format!("{l}mlp.up_proj.weight"), vec![16, 8]),
        (format!("{l}mlp.down_proj.weight"), vec![8, 16]),
    ];
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape) in &tensors {
        let n = shape.iter().product::<u64>() as usize;
        // BF16: 1.0 is 0x3f80, 0 is 0, a quiet NaN 0x7fc0.
        let mut v: Vec<u16> = vec![
            if name.ends_with("norm.weight") {
                0x3f80
            } else {
                0
            };
            n
        ];
        if let (Some(i), true) = (nan_at, name.ends_with("down_proj.weight")) {
            v[i] = 0x7fc0;
        }
        let at = data.len() as u64;
        data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [at, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    dir.to_path_buf()
}

/// `common::cli::tagged!()` names this file's scratch folders and model cache after the
/// file itself (the 13 hand-written wrappers it replaced each spelled the tag out).
#[test]
fn the_tagged_helpers_take_this_files_name() {
    assert_eq!(tag(), "user_round22");
    let d = scratch("tag");
    assert!(d.ends_with("user_round22-tag"), "{}", d.display());
}

/// One NaN in a folder's down projection ran with exit 0, every logit NaN and every
/// generated token the vocabulary's last id. A load now refuses a non-finite weight,
/// naming the file, the tensor, its shape and the element; a GGUF's too. A folder of
/// finite weights still loads.
#[test]
fn non_finite_weights_are_refused_naming_file_tensor_and_element() {
    let dir = scratch("nan");
    let fine = tiny_folder(&dir.join("fine"), 512, None);
    moa::model::Model::load(&fine).unwrap();
    let nan = tiny_folder(&dir.join("nan"), 512, Some(21));
    let e = moa::model::Model::load(&nan).unwrap_err().to_string();
    for want in [
        "nan/model.safetensors`",
        "tensor `model.layers.0.mlp.down_proj.weight` [8, 16] holds NaN at index [1, 5]",
        "(the only one)",
        "allowed: finite weights",
    ] {
        assert!(e.contains(want), "`{want}` not in: {e}");
    }

    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    let gguf = dir.join("inf.gguf");
    common::tiny::tiny(3, true).write_gguf(&gguf, |_, tensors| {
        let (_, t) = tensors
            .iter_mut()
            .find(|(n, _)| n == "blk.1.ffn_up.weight")
            .unwrap();
        let shape = t.shape().dims().to_vec();
        let mut v = vec![0.25f32; shape.iter().product()];
        v[3] = f32::INFINITY;
        v[7] = f32::NEG_INFINITY;
        let x = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
        *t = QTensor::quantize(&x, GgmlDType::F32).unwrap();
    });
    let e = moa::model::Model::load(&gguf).unwrap_err().to_string();
    for want in [
        "inf.gguf`",
        "tensor `blk.1.ffn_up.weight`",
        "holds inf at index [0, 3]",
        "2 non-finite values in all",
    ] {
        assert!(e.contains(want), "`{want}` not in: {e}");
    }
}

/// `moa eval --lengths 16` on a byte-level tokenizer said "allowed: 138 ..= 512", and 138
/// was then refused for needing 240 (now the first answer names the family and 240); `moa calib --lengths 64` said "allowed 80..=512", and
/// 80 was refused with "give a longer length", no number. Both ranges now start at the
/// least length this model's tokenizer allows, and that length passes the check; where
/// no length fits the context, calib says so instead of an empty range.
#[test]
fn eval_and_calib_ranges_start_at_the_tokenizers_least_length() {
    let dir = scratch("least");
    let model = tiny_folder(&dir.join("m"), 512, None);
    let least = |err: &str, after: &str| -> String {
        err.split(after)
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    };
    let eval = |length: &str, extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--backend",
            "cpu",
            "--model",
            s(&model),
            "--lengths",
            length,
            "--ppl-rows",
            "0",
            "--no-uniform",
            "--quiet",
        ];
        a.extend_from_slice(extra);
        run("moa", &a)
    };
    let (code, _, err) = eval("16", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--lengths 16: the ") && err.contains("prompt's fixed text"),
        "{err}"
    );
    let n = least(&err, "allowed: ");
    assert!(n.parse::<usize>().unwrap() > 138, "{err}");
    // The least length passes the grid's check: the run stops at the plan (read after it).
    let missing = dir.join("missing.toml");
    let (code, _, err) = eval(&n, &["--plan", s(&missing)]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("--lengths"), "--lengths {n}: {err}");
    assert!(err.contains("missing.toml"), "{err}");
    let (_, _, err) = eval(&(n.parse::<usize>().unwrap() - 1).to_string(), &[]);
    assert!(
        err.contains(&format!(
            "allowed: {n} or more (up to the model's context of 512 tokens)"
        )),
        "{err}"
    );

    let out = dir.join("c.jsonl");
    let calib = |length: &str| {
        run(
            "moa",
            &[
                "calib",
                "--model",
                s(&model),
                "--out",
                s(&out),
                "--lengths",
                length,
                "--samples",
                "1",
                "--source",
                "generated",
            ],
        )
    };
    let err = refused(
        "moa",
        &[
            "calib",
            "--model",
            s(&model),
            "--out",
            s(&out),
            "--lengths",
            "64",
            "--source",
            "generated",
        ],
        &[
            "--lengths 64 is too short: allowed ",
            "the pass-key prompt's fixed text with this model's tokenizer",
        ],
    );
    let m = least(&err, "allowed ");
    assert!(m.parse::<usize>().unwrap() > 80, "{err}");
    let (code, _, err) = calib(&m);
    assert_eq!(code, 0, "--lengths {m}: {err}");
    assert!(out.is_file());

    // A 128-token context holds no pass-key prompt of this tokenizer: said once the other
    // flags are checked, not as the empty range "allowed 246..=128".
    let short = tiny_folder(&dir.join("short"), 128, None);
    refused(
        "moa",
        &[
            "calib",
            "--model",
            s(&short),
            "--out",
            s(&dir.join("d.jsonl")),
            "--lengths",
            "128",
            "--source",
            "generated",
        ],
        &[
            "--lengths: no length fits the context of",
            "(128 tokens): a pass-key prompt takes at least",
            "--samples 0 --text-samples K",
        ],
    );
    // The pipeline says it last, after every other flag, and makes no work folder.
    let work = dir.join("work");
    refused(
        "moa",
        &[
            "pipeline",
            "--model",
            s(&short),
            "--workdir",
            s(&work),
            "--plans-dir",
            s(&dir.join("plans")),
            "--profile-lengths",
            "96",
            "--validate-length",
            "128",
            "--block",
            "32",
            "--densities",
            "1",
            "--source",
            "generated",
        ],
        &["--profile-lengths, --validate-length: no length fits the context of"],
    );
    assert!(!work.exists());
}

/// Round 21's leftover: `moa bench --json /proc/x` (a folder that exists and takes no new
/// files) was reported only after the CUDA driver check. The output is probed with the
/// other flags, before the driver.
#[test]
#[cfg(target_os = "linux")]
fn bench_json_where_no_file_can_be_made_is_refused_before_the_driver() {
    let err = refused(
        "moa",
        &["bench", "--json", "/proc/moa-bench.jsonl"],
        &[
            "--json `/proc/moa-bench.jsonl`: cannot write in `/proc`",
            "takes no new files",
            "nothing was written",
        ],
    );
    assert!(!err.contains("CUDA"), "{err}");
    // A writable place passes the probe and leaves nothing behind.
    let dir = scratch("bench-json");
    let (_, _, err) = run("moa", &["bench", "--json", s(&dir.join("b.jsonl"))]);
    assert!(!err.contains("--json"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{err}");
}

/// A GGUF without the metadata llama.cpp treats as optional (`general.name`,
/// `tokenizer.ggml.pre`, `token_type`, `add_bos_token`, the chat template, the special
/// token ids, `llama.rope.freq_base` at its default 10000, `llama.vocab_size`) loads as
/// the same model: the CPU reference's logits equal the whole file's, and its tokenizer
/// loads (GPT-2's pre-tokenizer, every token a normal one). A required key still names
/// itself.
#[test]
fn a_gguf_without_its_optional_metadata_loads_as_the_same_model() {
    let dir = scratch("gguf-optional");
    let whole = dir.join("whole.gguf");
    let bare = dir.join("bare.gguf");
    let tiny = common::tiny::tiny(4, false);
    tiny.write_gguf(&whole, |_, _| {});
    let optional = [
        "general.name",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "llama.rope.freq_base",
        "llama.vocab_size",
    ];
    tiny.write_gguf(&bare, |md, _| {
        md.retain(|(k, _)| !optional.contains(&k.as_str()))
    });
    let a = moa::model::Model::load(&whole).unwrap();
    let b = moa::model::Model::load(&bare).unwrap();
    assert_eq!(b.config.name, None);
    assert_eq!(b.config.rope_theta, a.config.rope_theta);
    assert_eq!(b.special.bos, None);
    let tokens = common::tiny::tokens(17, 5);
    let logits = |m: moa::model::Model| {
        moa::model::CpuReference::from_model(m)
            .unwrap()
            .forward(&tokens, moa::model::Masking::Dense)
            .unwrap()
            .data
    };
    assert_eq!(logits(a), logits(b));
    let t = moa::model::ModelTokenizer::load(&bare).unwrap();
    assert!(!t.encode("hello world").unwrap().is_empty());

    let no_eps = dir.join("no-eps.gguf");
    tiny.write_gguf(&no_eps, |md, _| {
        md.retain(|(k, _)| k != "llama.attention.layer_norm_rms_epsilon")
    });
    let e = moa::model::Model::load(&no_eps).unwrap_err().to_string();
    assert!(
        e.contains("no-eps.gguf") && e.contains("`llama.attention.layer_norm_rms_epsilon`"),
        "{e}"
    );
}

/// `moa-compile` onto a full disk (round 22: a 96 KiB tmpfs) failed at the third kernel
/// file and left the output folder it had made, with two kernels and no manifest. Now a
/// folder the run made is removed on a failed write; one that existed keeps what it had
/// and is said to hold no manifest. A write that fails is made here with a file size
/// limit (`ulimit -f`, SIGXFSZ ignored: the write returns EFBIG), which needs no root.
#[test]
#[cfg(target_os = "linux")]
fn a_compile_whose_write_fails_leaves_no_folder_it_made() {
    let dir = scratch("write-fails");
    let plan = dir.join("p.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let limited = |out: &Path| {
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$1\" -o \"$2\"")
            .arg(env!("CARGO_BIN_EXE_moa-compile"))
            .arg(&plan)
            .arg(out)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let new = dir.join("new");
    let (code, err) = limited(&new.join("out"));
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "writing the kernels failed;",
        "which this run made, is removed (nothing half-written is left)",
        "File too large",
    ] {
        assert!(err.contains(want), "`{want}` not in: {err}");
    }
    assert!(!new.exists(), "{err}");
    let old = scratch("write-fails-existing");
    let (code, err) = limited(&old);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("now holds no manifest.json"), "{err}");
    assert!(old.is_dir() && !old.join("manifest.json").exists());
}

/// `moa calib` onto a full disk failed at its first answer and left an empty
/// `<out>.answers` (the resume log, which then held nothing to resume). A log that never
/// held an answer is removed with the failure; writes fail here by `ulimit -f 0`.
#[test]
#[cfg(target_os = "linux")]
fn calib_leaves_no_empty_answer_log_when_its_first_write_fails() {
    let dir = scratch("answers-fail");
    let model = tiny_folder(&dir.join("m"), 512, None);
    let out = dir.join("c.jsonl");
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(
            "trap '' XFSZ; ulimit -f 0; exec \"$0\" calib --model \"$1\" --out \"$2\" \
             --lengths 300 --samples 1 --source generated",
        )
        .arg(env!("CARGO_BIN_EXE_moa"))
        .arg(&model)
        .arg(&out)
        .env("MOA_CACHE", dir.join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("c.jsonl.answers`"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("m")], "{err}");
}

/// K-quants where llama.cpp's mixes seldom put them: every matrix of a layer in Q4_K or
/// Q6_K (Q and K, whose rows the loader un-permutes after dequantizing), the embedding in
/// Q6_K, the output layer in Q4_K, and both RMSNorm weights (vectors of 256) in Q4_K. The
/// loaded model computes the logits of a model built from candle's dequantized values,
/// exactly as assembled by hand (same f32 weights, same CPU reference).
#[test]
fn k_quant_tensors_anywhere_load_as_their_dequantized_values() {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use moa::model::weights::{permute_rope_rows, HostTensor};
    let config = moa::model::LlamaConfig {
        name: Some("k-quants".into()),
        n_layers: 1,
        hidden_size: 256,
        ffn_size: 256,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 64,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: 64,
        tied_embeddings: false,
        context_length: 256,
    };
    let mut src = moa::model::random::random_model(&config, 11);
    // Norms of varied values: candle's Q4_K makes a constant row (the random model's
    // norms of 1) all zeros, which would zero the logits and hide every difference.
    let vary = |t: &mut HostTensor| {
        for (i, v) in t.data.iter_mut().enumerate() {
            *v = 1.0 + 0.05 * ((i * 7 % 13) as f32 - 6.0) / 6.0;
        }
    };
    vary(&mut src.weights.output_norm);
    vary(&mut src.weights.layers[0].attn_norm);
    vary(&mut src.weights.layers[0].ffn_norm);
    let w = &src.weights;
    let l = &w.layers[0];
    // (GGUF name, HF-layout tensor, heads whose rows are permuted for GGUF, type)
    let parts: Vec<(&str, &HostTensor, Option<usize>, GgmlDType)> = vec![
        ("token_embd.weight", &w.token_embd, None, GgmlDType::Q6K),
        ("output_norm.weight", &w.output_norm, None, GgmlDType::Q4K),
        (
            "output.weight",
            w.output.as_ref().unwrap(),
            None,
            GgmlDType::Q4K,
        ),
        ("blk.0.attn_norm.weight", &l.attn_norm, None, GgmlDType::Q4K),
        ("blk.0.attn_q.weight", &l.attn_q, Some(4), GgmlDType::Q4K),
        ("blk.0.attn_k.weight", &l.attn_k, Some(2), GgmlDType::Q6K),
        ("blk.0.attn_v.weight", &l.attn_v, None, GgmlDType::Q4K),
        (
            "blk.0.attn_output.weight",
            &l.attn_output,
            None,
            GgmlDType::Q6K,
        ),
        ("blk.0.ffn_norm.weight", &l.ffn_norm, None, GgmlDType::Q4K),
        ("blk.0.ffn_gate.weight", &l.ffn_gate, None, GgmlDType::Q6K),
        ("blk.0.ffn_up.weight", &l.ffn_up, None, GgmlDType::Q4K),
        ("blk.0.ffn_down.weight", &l.ffn_down, None, GgmlDType::Q6K),
    ];
    let mut quantized = Vec::new();
    let mut expected = src.clone();
    for (name, t, heads, ty) in &parts {
        let data = match heads {
            Some(h) => permute_rope_rows(&t.data, *h, 64, 256),
            None => t.data.clone(),
        };
        let x = Tensor::from_vec(data, t.shape.clone(), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&x, *ty).unwrap();
        // What a load must give: candle's dequantized values, rows un-permuted back.
        let back: Vec<f32> = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let back = match heads {
            Some(h) => moa::model::weights::unpermute_rope_rows(&back, *h, 64, 256),
            None => back,
        };
        let el = &mut expected.weights.layers[0];
        let slot = match *name {
            "token_embd.weight" => &mut expected.weights.token_embd,
            "output_norm.weight" => &mut expected.weights.output_norm,
            "output.weight" => expected.weights.output.as_mut().unwrap(),
            "blk.0.attn_norm.weight" => &mut el.attn_norm,
            "blk.0.attn_q.weight" => &mut el.attn_q,
            "blk.0.attn_k.weight" => &mut el.attn_k,
            "blk.0.attn_v.weight" => &mut el.attn_v,
            "blk.0.attn_output.weight" => &mut el.attn_output,
            "blk.0.ffn_norm.weight" => &mut el.ffn_norm,
            "blk.0.ffn_gate.weight" => &mut el.ffn_gate,
            "blk.0.ffn_up.weight" => &mut el.ffn_up,
            _ => &mut el.ffn_down,
        };
        slot.data = back;
        quantized.push((name.to_string(), q));
    }
    let u = |v: u32| Value::U32(v);
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", u(1)),
        ("llama.context_length", u(256)),
        ("llama.embedding_length", u(256)),
        ("llama.feed_forward_length", u(256)),
        ("llama.attention.head_count", u(4)),
        ("llama.attention.head_count_kv", u(2)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
    ];
    let dir = scratch("k-quants");
    let path = dir.join("k.gguf");
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = quantized.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    drop(f);
    let loaded = moa::model::Model::load(&path).unwrap();
    assert_eq!(loaded.config.vocab_size, 64);
    assert!(!loaded.config.tied_embeddings);
    let tokens: Vec<u32> = (0..19).map(|i| (i * 7 % 64) as u32).collect();
    let logits = |m: moa::model::Model| {
        moa::model::CpuReference::from_model(m)
            .unwrap()
            .forward(&tokens, moa::model::Masking::Dense)
            .unwrap()
            .data
    };
    let (got, want) = (logits(loaded), logits(expected));
    let err = moa::runtime::cases::max_abs_error(&got, &want).0;
    assert!(err <= 1e-4, "max |logit difference| {err}");
}
