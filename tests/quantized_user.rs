//! A user's own K-quantized GGUF (Q4_K and Q6_K, the types most published files use, as
//! llama.cpp's Q4_K_M mixes them: Q6_K for the embedding and V, Q4_K elsewhere) through
//! `moa generate` on the GPU (lavapipe in CI): the tokens must be those of the same model
//! written as F32 after candle dequantized it, so moa's own decoders (`model::quant`)
//! hold on the whole path (load, engine, kernels), not only against candle in isolation
//! (`tests/k_quants.rs`). A random Llama of 2 layers whose rows are whole 256-weight
//! super-blocks; a few seconds.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::tiny::{rand_tensor, tiny, tmp, VOCAB};
use rand::rngs::StdRng;
use rand::SeedableRng;

const HIDDEN: usize = 256;
const FFN: usize = 512;
const Q_HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 64;

fn moa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

/// The tiny model's tokenizer and template with this file's shape.
fn metadata() -> Vec<(String, Value)> {
    let mut md = tiny(5, true).metadata();
    for (k, v) in md.iter_mut() {
        let n = match k.as_str() {
            "llama.embedding_length" => HIDDEN,
            "llama.feed_forward_length" => FFN,
            "llama.attention.head_count" => Q_HEADS,
            "llama.attention.head_count_kv" => KV_HEADS,
            "llama.rope.dimension_count" => HEAD_DIM,
            _ => continue,
        };
        *v = Value::U32(n as u32);
    }
    md
}

/// Random tensors by GGUF name, each with the type a Q4_K_M file gives it.
fn tensors() -> Vec<(String, QTensor)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut t = |shape: &[usize], scale: f32, center: f32, dt: GgmlDType| {
        let h = rand_tensor(&mut rng, shape, center, scale);
        let x = Tensor::from_vec(h.data, h.shape, &Device::Cpu).unwrap();
        QTensor::quantize(&x, dt).unwrap()
    };
    let (q4, q6, f32_) = (GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F32);
    let mut out = vec![(
        "token_embd.weight".to_string(),
        t(&[VOCAB, HIDDEN], 1.0, 0.0, q6),
    )];
    for l in 0..2 {
        let s = |cols: usize| 2.0 / (cols as f32).sqrt();
        for (name, shape, dt) in [
            ("attn_q", [Q_HEADS * HEAD_DIM, HIDDEN], q4),
            ("attn_k", [KV_HEADS * HEAD_DIM, HIDDEN], q4),
            ("attn_v", [KV_HEADS * HEAD_DIM, HIDDEN], q6),
            ("attn_output", [HIDDEN, Q_HEADS * HEAD_DIM], q4),
            ("ffn_gate", [FFN, HIDDEN], q4),
            ("ffn_up", [FFN, HIDDEN], q4),
            ("ffn_down", [HIDDEN, FFN], q6),
        ] {
            out.push((
                format!("blk.{l}.{name}.weight"),
                t(&shape, s(shape[1]), 0.0, dt),
            ));
        }
        for n in ["attn_norm", "ffn_norm"] {
            out.push((format!("blk.{l}.{n}.weight"), t(&[HIDDEN], 0.2, 1.0, f32_)));
        }
    }
    out.push(("output_norm.weight".into(), t(&[HIDDEN], 0.2, 1.0, f32_)));
    out
}

fn write(path: &Path, md: &[(String, Value)], tensors: &[(String, QTensor)]) {
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

/// Every tensor of `quantized` as candle dequantizes it, stored F32.
fn f32_twin(quantized: &[(String, QTensor)]) -> Vec<(String, QTensor)> {
    quantized
        .iter()
        .map(|(n, q)| {
            let d = q.dequantize(&Device::Cpu).unwrap();
            (n.clone(), QTensor::quantize(&d, GgmlDType::F32).unwrap())
        })
        .collect()
}

/// The Q4_K_M file and its F32 twin ([`f32_twin`]) in `dir`: `(quantized, twin)` paths.
fn write_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (md, quantized) = (metadata(), tensors());
    let q_path = dir.join("model-Q4_K_M.gguf");
    write(&q_path, &md, &quantized);
    let f_path = dir.join("model-F32.gguf");
    write(&f_path, &md, &f32_twin(&quantized));
    (q_path, f_path)
}

/// Prompt and generated ids of one greedy run (`--print-ids`), and stdout.
fn generate(model: &Path) -> (String, String) {
    let out = moa()
        .args(["generate", "--dense", "--f32", "--raw"])
        .arg("--model")
        .arg(model)
        .args(["--prompt", "hello world", "--max-new-tokens", "6"])
        .args(["--ignore-eos", "--print-ids"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{}: {err}", model.display());
    let ids = err
        .lines()
        .filter(|l| l.contains("ids"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!ids.is_empty(), "no ids printed: {err}");
    (ids, String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn a_q4_k_m_gguf_generates_the_tokens_of_its_dequantized_twin() {
    let dir = tmp("k-quant-user");
    let (q_path, f_path) = write_pair(&dir);

    let info = moa().args(["model", "info"]).arg(&q_path).output().unwrap();
    let info_text =
        String::from_utf8_lossy(&info.stdout).to_string() + &String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success(), "{info_text}");
    // What the file stores and what a load costs (f32 in memory, whatever the file holds).
    for want in [
        "tensor_types     F32 x 5, Q4_K x 10, Q6_K x 5",
        "parameters       ",
        " million (loading needs about ",
        " MB of memory: f32",
    ] {
        assert!(info_text.contains(want), "no `{want}` in:\n{info_text}");
    }

    let (q_ids, q_text) = generate(&q_path);
    let (f_ids, f_text) = generate(&f_path);
    assert_eq!(q_ids, f_ids);
    assert_eq!(q_text, f_text);
}

/// `moa model info`'s `generate` line says what `moa generate` holds of the weights (round
/// 44: info gave only `Model::load`'s f32 figure, 7× a Q4_K file, which generate never
/// holds): the wgpu engine's f16 copy, the same for a file and its F32 twin, and for the
/// Q4_K_M file a smaller copy with its blocks kept, which the twin has none of.
#[test]
fn info_says_what_generate_holds_of_the_weights() {
    let dir = tmp("k-quant-info");
    let (q_path, f_path) = write_pair(&dir);
    let generate_line = |path: &Path| {
        let out = moa().args(["model", "info"]).arg(path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}");
        text.lines()
            .find(|l| l.starts_with("generate "))
            .unwrap_or_else(|| panic!("no generate line in:\n{text}"))
            .to_string()
    };
    // "… holds 1.9 MB of them in f16 (0.8 MB with the file's quantization kept …".
    let mb = |line: &str, after: &str| -> f64 {
        line.split(after)
            .nth(1)
            .and_then(|t| t.split(" MB").next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no `{after}N MB` in: {line}"))
    };
    let (q, f) = (generate_line(&q_path), generate_line(&f_path));
    assert!(q.contains("streams the weights (host peak about "), "{q}");
    assert_eq!(mb(&q, "holds "), mb(&f, "holds "), "{q}\n{f}");
    let kept = mb(&q, "in f16 (");
    assert!(kept > 0.0 && kept < mb(&q, "holds "), "{q}");
    assert!(q.contains("MOA_WGPU_QUANT_WEIGHTS"), "{q}");
    assert!(!f.contains("quantization kept"), "{f}");
}
