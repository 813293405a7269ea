//! GGUF files of one's own (a new user's trial, session 16): files a converter could write
//! that moa does not run as written — RoPE scaling it does not implement (YaRN), tensors the
//! forward pass would ignore (biases, experts, QK norms), a wrong shape in the last layer,
//! special token ids past the vocabulary, big-endian byte order, no context length — are
//! refused by the header-only `model::read_config` every command calls first, naming the
//! file, the key or tensor and what is allowed; a version-2 file loads as its version-3
//! twin, and every float and 32-block type to its values. The test writes each file
//! itself (the tiny model of `tests/common/tiny.rs`); < 1 s in all.

mod common;

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use moa::model::{Model, ModelTokenizer};

use common::tiny::*;

/// The tiny model written to `dir/name` with `edit` applied to its metadata and tensors.
fn write(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>),
) -> PathBuf {
    let path = dir.join(name);
    tiny(16, true).write_gguf(&path, edit);
    path
}

fn zeros(shape: &[usize]) -> QTensor {
    let x = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    QTensor::quantize(&x, GgmlDType::F32).unwrap()
}

fn ones(shape: &[usize]) -> QTensor {
    let x = Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap();
    QTensor::quantize(&x, GgmlDType::F32).unwrap()
}

/// The header-only read every command starts with must refuse `path` with all of `want`
/// in its message (and the full load must too).
fn refused(path: &Path, want: &[&str]) {
    let shown = path.display().to_string();
    let e = moa::model::read_config(path)
        .err()
        .unwrap_or_else(|| panic!("{shown}: read_config accepted it"))
        .to_string();
    for w in [shown.as_str()].iter().chain(want) {
        assert!(e.contains(w), "`{w}` not in: {e}");
    }
    let Err(full) = Model::load(path) else {
        panic!("{shown}: Model::load accepted it");
    };
    assert_eq!(full.to_string(), e);
}

#[test]
fn rope_scaling_moa_does_not_implement_is_refused_naming_key_and_value() {
    let dir = tmp("gguf-rope");
    // (file, metadata added, what the error must say)
    type Case = (&'static str, Vec<(&'static str, Value)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "yarn",
            vec![
                ("llama.rope.scaling.type", Value::String("yarn".into())),
                ("llama.rope.scaling.factor", Value::F32(4.0)),
            ],
            "`llama.rope.scaling.type` = `yarn`",
        ),
        (
            "attn-factor",
            vec![("llama.rope.scaling.attn_factor", Value::F32(0.5))],
            "`llama.rope.scaling.attn_factor` = 0.5",
        ),
    ];
    for (name, keys, want) in cases {
        let path = write(&dir, &format!("{name}.gguf"), |md, _| {
            md.extend(keys.into_iter().map(|(k, v)| (k.to_string(), v)));
        });
        refused(&path, &[want, "moa applies plain RoPE", "`linear`"]);
    }
    // Per-pair factors in another type than f32, or beside a linear factor.
    let path = write(&dir, "freqs-f16.gguf", |_, t| {
        let x = Tensor::ones(&[HEAD_DIM / 2], DType::F32, &Device::Cpu).unwrap();
        t.push((
            "rope_freqs.weight".into(),
            QTensor::quantize(&x, GgmlDType::F16).unwrap(),
        ));
    });
    refused(&path, &["`rope_freqs.weight` is F16, expected F32"]);
    let path = write(&dir, "freqs-and-linear.gguf", |md, t| {
        md.push(("llama.rope.scaling.factor".into(), Value::F32(2.0)));
        t.push(("rope_freqs.weight".into(), ones(&[HEAD_DIM / 2])));
    });
    refused(
        &path,
        &["linear scaling (factor 2)", "`rope_freqs.weight` together"],
    );
    // A zero factor in `rope_freqs` would divide by 0.
    let path = write(&dir, "freqs-zero.gguf", |_, t| {
        t.push(("rope_freqs.weight".into(), zeros(&[HEAD_DIM / 2])));
    });
    refused(&path, &["`rope_freqs[0]` = 0", "above 0"]);
}

/// The scaling moa applies (session 18): llama.cpp's linear keys (the older
/// `llama.rope.scale_linear` too, which used to run unscaled) and Llama 3.1's
/// `rope_freqs` tensor are read into the config, so every back end rotates with them.
/// Neutral values are no scaling.
#[test]
fn linear_and_per_pair_rope_scaling_is_read_into_the_config() {
    use moa::model::RopeScaling;
    let dir = tmp("gguf-rope-read");
    let scaling = |path: &Path| Model::load(path).unwrap().config.rope_scaling;
    let linear = Some(RopeScaling::Linear { factor: 4.0 });
    let path = write(&dir, "linear.gguf", |md, _| {
        md.push((
            "llama.rope.scaling.type".into(),
            Value::String("linear".into()),
        ));
        md.push(("llama.rope.scaling.factor".into(), Value::F32(4.0)));
        md.push((
            "llama.rope.scaling.original_context_length".into(),
            Value::U32(8192),
        ));
    });
    assert_eq!(scaling(&path), linear);
    let path = write(&dir, "scale-linear.gguf", |md, _| {
        md.push(("llama.rope.scale_linear".into(), Value::F32(4.0)));
    });
    assert_eq!(scaling(&path), linear);
    let factors: Vec<f32> = (0..HEAD_DIM / 2).map(|j| 1.0 + j as f32).collect();
    let path = write(&dir, "llama3.gguf", |_, t| {
        let x = Tensor::new(factors.as_slice(), &Device::Cpu).unwrap();
        t.push((
            "rope_freqs.weight".into(),
            QTensor::quantize(&x, GgmlDType::F32).unwrap(),
        ));
    });
    assert_eq!(
        moa::model::read_config(&path).unwrap().0.rope_scaling,
        Some(RopeScaling::FreqFactors(factors.clone()))
    );
    assert_eq!(scaling(&path), Some(RopeScaling::FreqFactors(factors)));
    let path = write(&dir, "none.gguf", |md, _| {
        md.push((
            "llama.rope.scaling.type".into(),
            Value::String("none".into()),
        ));
        md.push(("llama.rope.scaling.factor".into(), Value::F32(1.0)));
    });
    assert_eq!(scaling(&path), None);
}

#[test]
fn tensors_the_forward_pass_would_ignore_are_refused() {
    let dir = tmp("gguf-extra");
    let q = Q_HEADS * HEAD_DIM;
    for (name, tensor, shape, want) in [
        ("bias", "blk.0.attn_q.bias", vec![q], "a bias"),
        (
            "experts",
            "blk.1.ffn_gate_exps.weight",
            vec![4, FFN, HIDDEN],
            "mixture-of-experts",
        ),
        (
            "qk-norm",
            "blk.0.attn_k_norm.weight",
            vec![HEAD_DIM],
            "query/key norm",
        ),
        (
            "other",
            "blk.0.attn_sub_norm.weight",
            vec![HIDDEN],
            "not a tensor",
        ),
    ] {
        let path = write(&dir, &format!("{name}.gguf"), |_, t| {
            t.push((tensor.to_string(), zeros(&shape)));
        });
        refused(
            &path,
            &[
                format!("`{tensor}`").as_str(),
                want,
                "`blk.N.attn_q.weight`",
            ],
        );
    }
    // Mixtral's files say `general.architecture` = llama.
    let path = write(&dir, "mixtral.gguf", |md, _| {
        md.push(("llama.expert_count".into(), Value::U32(8)));
    });
    refused(
        &path,
        &["`llama.expert_count` = 8", "dense Llama MLPs only"],
    );
    // A rotary buffer (RoPE recomputes it) is not refused.
    let path = write(&dir, "rot.gguf", |_, t| {
        t.push(("blk.0.attn_rot_embd.weight".into(), zeros(&[HEAD_DIM / 2])));
    });
    Model::load(&path).unwrap();

    // The same for a Hugging Face folder: a bias tensor in a shard of its own.
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    tiny(16, true).write_hf(&hf, DType::F32, true);
    let bias = "model.layers.1.self_attn.v_proj.bias";
    let t = Tensor::zeros(KV_HEADS * HEAD_DIM, DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([(bias.to_string(), t)]),
        hf.join("extra.safetensors"),
    )
    .unwrap();
    let index = hf.join("model.safetensors.index.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    json["weight_map"][bias] = "extra.safetensors".into();
    std::fs::write(&index, json.to_string()).unwrap();
    let e = Model::load(&hf).unwrap_err().to_string();
    for w in [
        format!("`{bias}`").as_str(),
        "a bias",
        "`model.embed_tokens.weight`",
    ] {
        assert!(e.contains(w), "`{w}` not in: {e}");
    }
}

/// A wrong shape in the last layer: refused from the tensor index, before the data of
/// any tensor is read (before, after every tensor ahead of it was dequantized).
#[test]
fn a_shape_against_the_metadata_is_refused_from_the_index() {
    let dir = tmp("gguf-shape");
    let path = write(&dir, "shape.gguf", |_, t| {
        for (n, q) in t.iter_mut() {
            if n == "blk.1.ffn_down.weight" {
                *q = zeros(&[HIDDEN, FFN + 32]);
            }
        }
    });
    refused(
        &path,
        &["`blk.1.ffn_down.weight`", "[64, 128]", "expected [64, 96]"],
    );
    // The metadata disagreeing with every tensor: the first one named.
    let path = write(&dir, "ffn.gguf", |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.feed_forward_length" {
                *v = Value::U32(128);
            }
        }
    });
    refused(&path, &["`blk.0.ffn_", "expected [128, 64]"]);
}

/// `llama.context_length` is required (as llama.cpp requires it): moa assumed 2048 for a
/// file without it, so the model ran past the context it was trained for, or refused
/// lengths it was trained on, and every message named a length the file never gave.
#[test]
fn a_file_without_its_context_length_is_refused() {
    let dir = tmp("gguf-context");
    let path = write(&dir, "no-context.gguf", |md, _| {
        md.retain(|(k, _)| k != "llama.context_length")
    });
    refused(&path, &["missing metadata key `llama.context_length`"]);
}

#[test]
fn special_token_ids_past_the_vocabulary_are_refused() {
    let dir = tmp("gguf-special");
    for key in ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"] {
        let path = write(&dir, &format!("{key}.gguf"), |md, _| {
            for (k, v) in md.iter_mut() {
                if k == key {
                    *v = Value::U32(99_999);
                }
            }
        });
        refused(&path, &[format!("`{key}`").as_str(), "99999", "0..300"]);
    }
}

/// The vocabulary against the model, as llama.cpp checks it: one token per embedding
/// row, one integer token type per token.
#[test]
fn a_vocabulary_that_does_not_fit_the_model_is_refused() {
    let dir = tmp("gguf-vocab");
    let path = write(&dir, "short.gguf", |md, _| {
        for (k, v) in md.iter_mut() {
            if let ("tokenizer.ggml.tokens" | "tokenizer.ggml.token_type", Value::Array(a)) =
                (k.as_str(), v)
            {
                a.truncate(290);
            }
        }
    });
    refused(
        &path,
        &[
            "`tokenizer.ggml.tokens`",
            "holds 290 tokens",
            "the model has 300",
        ],
    );
    let path = write(&dir, "types.gguf", |md, _| {
        for (k, v) in md.iter_mut() {
            if let ("tokenizer.ggml.token_type", Value::Array(a)) = (k.as_str(), v) {
                a.pop();
            }
        }
    });
    refused(
        &path,
        &["`tokenizer.ggml.token_type`", "299 entries for 300 tokens"],
    );
    let path = write(&dir, "type-kind.gguf", |md, _| {
        for (k, v) in md.iter_mut() {
            if let ("tokenizer.ggml.token_type", Value::Array(a)) = (k.as_str(), v) {
                a[1] = Value::I32(-3);
            }
        }
    });
    refused(
        &path,
        &["`tokenizer.ggml.token_type`", "entry 1", "integer"],
    );
}

/// Missing tokenizer metadata names the key and the file (a GGUF written without its
/// vocabulary, as some conversion scripts do).
#[test]
fn missing_tokenizer_metadata_names_the_key() {
    let dir = tmp("gguf-tokenizer");
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
    ] {
        let path = write(&dir, &format!("{key}.gguf"), |md, _| {
            md.retain(|(k, _)| k != key)
        });
        let e = ModelTokenizer::load(&path).unwrap_err().to_string();
        let shown = path.display().to_string();
        for w in [shown.as_str(), format!("`{key}`").as_str()] {
            assert!(e.contains(w), "`{w}` not in: {e}");
        }
    }
}

/// A version-2 file (candle's writer; u64 counts, like 3) loads exactly as its version-3
/// twin (llama.cpp's today); a big-endian file (llama.cpp writes them for s390x, with the
/// same magic bytes) is named as such instead of "version = 50331648".
#[test]
fn version_two_loads_and_big_endian_is_named() {
    let dir = tmp("gguf-version");
    let v2 = write(&dir, "v2.gguf", |_, _| {});
    let bytes = std::fs::read(&v2).unwrap();
    assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
    let mut v3 = bytes.clone();
    v3[4..8].copy_from_slice(&3u32.to_le_bytes());
    let v3_path = dir.join("v3.gguf");
    std::fs::write(&v3_path, v3).unwrap();
    let (a, b) = (Model::load(&v2).unwrap(), Model::load(&v3_path).unwrap());
    assert_eq!(a.config, b.config);
    assert_eq!(a.weights, b.weights);

    let mut be = bytes;
    be[4..8].copy_from_slice(&3u32.to_be_bytes());
    let be_path = dir.join("big-endian.gguf");
    std::fs::write(&be_path, be).unwrap();
    refused(&be_path, &["big-endian", "little-endian GGUF"]);
}

/// A quantized tensor whose rows are not whole blocks (a hand-made or damaged file: the
/// 64-value `attn_norm` relabelled Q4_K, whose blocks hold 256) is refused from the
/// header, naming the tensor, the type, the row length and the block; before, candle's
/// "not divisible by the block size" came when that tensor was read.
#[test]
fn quantized_rows_that_are_not_whole_blocks_are_refused_from_the_header() {
    let dir = tmp("gguf-blocks");
    let good = write(&dir, "good.gguf", |_, _| {});
    let mut bytes = std::fs::read(&good).unwrap();
    let name = b"blk.1.attn_norm.weight";
    // The tensor info: name, n_dims (u32), one u64 per dimension, then the ggml type.
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 4 + 8;
    assert_eq!(
        &bytes[at..at + 4],
        &0u32.to_le_bytes(),
        "not the F32 type field"
    );
    bytes[at..at + 4].copy_from_slice(&12u32.to_le_bytes());
    let path = dir.join("q4k-rows.gguf");
    std::fs::write(&path, bytes).unwrap();
    refused(
        &path,
        &[
            "`blk.1.attn_norm.weight`",
            "Q4_K",
            "rows of 64",
            "multiple of 256",
        ],
    );
}

/// Every float and 32-block type a converter may write for a 64-wide Llama loads to the
/// values that type holds (what candle's own dequantization gives), Q/K un-permuted:
/// BF16, F16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (K-quants need rows of 256: tests/k_quants).
#[test]
fn every_block_32_and_float_type_loads_to_its_values() {
    let dir = tmp("gguf-types");
    let base = write(&dir, "f32.gguf", |_, t| {
        for (_, q) in t.iter_mut() {
            *q = QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
        }
    });
    let want = Model::load(&base).unwrap();
    for ty in [
        GgmlDType::BF16,
        GgmlDType::F16,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
    ] {
        let mut stored = Vec::new();
        let path = write(&dir, &format!("{ty:?}.gguf"), |_, t| {
            for (name, q) in t.iter_mut() {
                let x = q.dequantize(&Device::Cpu).unwrap();
                *q = QTensor::quantize(&x, ty).unwrap();
                stored.push((name.clone(), q.dequantize(&Device::Cpu).unwrap()));
            }
        });
        let got = Model::load(&path).unwrap_or_else(|e| panic!("{ty:?}: {e}"));
        assert_eq!(got.config, want.config, "{ty:?}");
        // The file's values, un-permuted as the loader does, against what was loaded.
        let moa_name = |n: &str| n.trim_end_matches(".weight").to_string();
        for (name, x) in &stored {
            let mut v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let cols = HIDDEN;
            if name.ends_with("attn_q.weight") {
                v = moa::model::weights::unpermute_rope_rows(&v, Q_HEADS, HEAD_DIM, cols);
            } else if name.ends_with("attn_k.weight") {
                v = moa::model::weights::unpermute_rope_rows(&v, KV_HEADS, HEAD_DIM, cols);
            }
            let n = moa_name(name);
            let w = &got.weights;
            let loaded = w.tensor(&n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(loaded.data, v, "{ty:?} {name}");
        }
    }
}

/// A file of a Hugging Face folder given as the model (a shard, its config.json) is read
/// as GGUF; the refusal says to give the folder (it said only "not a GGUF file").
#[test]
fn a_file_of_a_hugging_face_folder_names_the_folder() {
    let dir = tmp("gguf-hf-file");
    tiny(16, true).write_hf(&dir, DType::F32, true);
    for name in ["model-00001-of-00002.safetensors", "config.json"] {
        let path = dir.join(name);
        refused(
            &path,
            &[
                "not a GGUF file",
                &format!(
                    "Hugging Face folder `{}`: give the folder itself",
                    dir.display()
                ),
            ],
        );
    }
}

/// Per-layer head counts (an array, as DeciLM or OpenELM files have) name the key and say
/// why one number is needed, instead of printing the whole array.
#[test]
fn per_layer_head_counts_are_refused_in_one_line() {
    let dir = tmp("gguf-per-layer");
    let key = "llama.attention.head_count_kv";
    let path = write(&dir, "per-layer.gguf", |md, _| {
        for (k, v) in md.iter_mut() {
            if k == key {
                *v = Value::Array(vec![Value::U32(2); LAYERS]);
            }
        }
    });
    refused(
        &path,
        &[
            &format!("`{key}` is an array of 2 values"),
            "the same shape",
        ],
    );
}

/// A LoRA adapter GGUF (llama.cpp writes `general.type` = `adapter` and the base model's
/// architecture, without its shape keys) is named as such, not as a missing
/// `llama.block_count`; `general.type` = `model` loads; a PEFT adapter folder is named too.
#[test]
fn a_lora_adapter_is_named_as_one() {
    let dir = tmp("gguf-adapter");
    let path = write(&dir, "adapter.gguf", |md, _| {
        md.retain(|(k, _)| !k.starts_with("llama."));
        md.push(("general.type".into(), Value::String("adapter".into())));
        md.push(("adapter.type".into(), Value::String("lora".into())));
    });
    refused(
        &path,
        &[
            "`general.type` is `adapter`",
            "LoRA adapter",
            "llama-export-lora",
        ],
    );
    let path = write(&dir, "model.gguf", |md, _| {
        md.push(("general.type".into(), Value::String("model".into())));
    });
    Model::load(&path).unwrap();
    // A PEFT adapter folder (adapter_config.json, adapter_model.safetensors).
    let peft = dir.join("peft");
    std::fs::create_dir_all(&peft).unwrap();
    std::fs::write(
        peft.join("adapter_config.json"),
        "{\"peft_type\": \"LORA\"}",
    )
    .unwrap();
    std::fs::write(peft.join("adapter_model.safetensors"), b"").unwrap();
    let e = Model::load(&peft).unwrap_err().to_string();
    assert!(
        e.contains("no `config.json`") && e.contains("PEFT/LoRA adapter"),
        "{e}"
    );
}
