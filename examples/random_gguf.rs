//! A random Llama-family GGUF file of a known shape, for measurements that need a real file
//! of a size no test fixture has (benches/RESULTS.md, sessions 57 and 58): matrices in one
//! of three mixes, F32 norms, a tied embedding and a filler vocabulary of byte-level tokens.
//!
//! `cargo run --release --example random_gguf -- OUT.gguf [--like NAME] [--mix MIX]`
//! - `--like`: a shape of `moa::model::random::like` (default `llama-3.2-1b`);
//! - `--mix`: `q8_0` (every matrix Q8_0: session 57's file, 1.32 GB at 1B), `q4_0`, or
//!   `q4_k_m` (llama.cpp's Q4_K_M recipe in short: Q4_K, with Q6_K for attn_v and
//!   ffn_down; a matrix whose rows are not a whole number of 256-weight super-blocks
//!   takes llama.cpp's fallback instead, Q5_0 for Q4_K and Q8_0 for Q6_K, as published
//!   files of SmolLM2's 576-wide shape hold: round 44 found `--like smollm2-135m --mix
//!   q4_k_m` ended in candle's "last dim divisible by block size" panic).
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: random_gguf OUT.gguf [--like NAME] [--mix q8_0|q4_0|q4_k_m]";
    let out = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .expect(usage)
        .clone();
    let opt = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .map_or(default.to_string(), |i| {
                args.get(i + 1).expect(usage).clone()
            })
    };
    let like = opt("--like", "llama-3.2-1b");
    let (main_t, sensitive) = match opt("--mix", "q8_0").as_str() {
        "q8_0" => (GgmlDType::Q8_0, GgmlDType::Q8_0),
        "q4_0" => (GgmlDType::Q4_0, GgmlDType::Q4_0),
        "q4_k_m" => (GgmlDType::Q4K, GgmlDType::Q6K),
        m => panic!("--mix {m}: {usage}"),
    };
    let c = moa::model::random::like_or_err(&like).unwrap_or_else(|e| panic!("--like: {e}"));
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3i32, 3, 3];
    let map = moa::model::random::byte_level_chars();
    for ch in map {
        tokens.push(ch.to_string());
        types.push(1);
    }
    while tokens.len() < c.vocab_size {
        tokens.push(format!("<unused{}>", tokens.len()));
        types.push(1);
    }
    let u = |v: usize| Value::U32(v as u32);
    let md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.name".into(), Value::String(like.clone())),
        ("llama.block_count".into(), u(c.n_layers)),
        ("llama.context_length".into(), u(4096)),
        ("llama.embedding_length".into(), u(c.hidden_size)),
        ("llama.feed_forward_length".into(), u(c.ffn_size)),
        ("llama.attention.head_count".into(), u(c.q_heads)),
        ("llama.attention.head_count_kv".into(), u(c.kv_heads)),
        ("llama.rope.dimension_count".into(), u(c.head_dim)),
        ("llama.rope.freq_base".into(), Value::F32(500000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
        ("tokenizer.ggml.bos_token_id".into(), u(1)),
        ("tokenizer.ggml.eos_token_id".into(), u(2)),
    ];
    // Each tensor's name, shape, centre, half-width and type; drawn and quantized below,
    // a thread per tensor (an 8B shape's Q4_K_M file took ~4 minutes on one thread).
    let mut specs: Vec<(String, Vec<usize>, f32, f32, GgmlDType)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, center: f32, scale: f32, dt: GgmlDType| {
        specs.push((name, shape, center, scale, dt));
    };
    let (h, q, kv, f) = (
        c.hidden_size,
        c.q_heads * c.head_dim,
        c.kv_heads * c.head_dim,
        c.ffn_size,
    );
    let (q8, qs) = (main_t, sensitive);
    let f32_ = GgmlDType::F32;
    add("token_embd".into(), vec![c.vocab_size, h], 0.0, 1.0, q8);
    for l in 0..c.n_layers {
        let s = 1.0 / (h as f32).sqrt();
        add(format!("blk.{l}.attn_q"), vec![q, h], 0.0, s, q8);
        add(format!("blk.{l}.attn_k"), vec![kv, h], 0.0, s, q8);
        add(format!("blk.{l}.attn_v"), vec![kv, h], 0.0, s, qs);
        add(format!("blk.{l}.attn_output"), vec![h, q], 0.0, s, q8);
        add(format!("blk.{l}.ffn_gate"), vec![f, h], 0.0, s, q8);
        add(format!("blk.{l}.ffn_up"), vec![f, h], 0.0, s, q8);
        add(
            format!("blk.{l}.ffn_down"),
            vec![h, f],
            0.0,
            1.0 / (f as f32).sqrt(),
            qs,
        );
        add(format!("blk.{l}.attn_norm"), vec![h], 1.0, 0.2, f32_);
        add(format!("blk.{l}.ffn_norm"), vec![h], 1.0, 0.2, f32_);
    }
    add("output_norm".into(), vec![h], 1.0, 0.2, f32_);
    let t: Vec<(String, QTensor)> = specs
        .into_par_iter()
        .enumerate()
        .map(|(i, (name, shape, center, scale, dt))| {
            // A stream per tensor, so the file does not depend on the threads' order.
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + i as u64);
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| center + rng.random_range(-scale..scale))
                .collect();
            let dt = matrix_type(dt, shape[shape.len() - 1]);
            let x = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
            (format!("{name}.weight"), QTensor::quantize(&x, dt).unwrap())
        })
        .collect();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut fh = std::fs::File::create(out).unwrap();
    gguf_file::write(&mut fh, &md_refs, &t_refs).unwrap();
}

/// The type a matrix of `cols` weights a row is written in when its mix asks `dt`: a
/// K-quant needs whole 256-weight super-blocks a row, and llama.cpp falls back to Q5_0
/// for Q4_K and to Q8_0 for Q6_K where a row has none (SmolLM2's 576-wide rows), so
/// `--mix q4_k_m` of such a shape writes what a published Q4_K_M file of it holds.
pub fn matrix_type(dt: GgmlDType, cols: usize) -> GgmlDType {
    match dt {
        GgmlDType::Q4K if !cols.is_multiple_of(256) => GgmlDType::Q5_0,
        GgmlDType::Q6K if !cols.is_multiple_of(256) => GgmlDType::Q8_0,
        _ => dt,
    }
}
