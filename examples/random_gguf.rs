//! A random Llama-family GGUF file of a known shape, for measurements that need a real file
//! of a size no test fixture has (benches/RESULTS.md, sessions 57 and 58): matrices in one
//! of three mixes, F32 norms, a tied embedding and a filler vocabulary of byte-level tokens.
//!
//! `cargo run --release --example random_gguf -- OUT.gguf [--like NAME] [--mix MIX] [--layers N] [--context N]`
//! - `--like`: a shape of `moa::model::random::like` (default `llama-3.2-1b`);
//! - `--layers`: decoder layers (default: the shape's), e.g. 2 for a file that keeps the
//!   real widths (an embedding over a 128 MiB binding) at a fraction of the size;
//! - `--context`: the context length the file states (default 4096, what every earlier
//!   file stated; a longer one lets a prompt past one prefill pass run, session 61);
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
/// What the command line asks: the output path, the shape (with `--layers` applied) and the
/// types of the ordinary and the sensitive matrices.
pub struct Args {
    /// The file to write.
    pub out: String,
    /// `--like`'s name.
    pub like: String,
    /// The shape to write: `--like`'s, with `--layers` where given.
    pub config: moa::model::LlamaConfig,
    /// The type of most matrices, and of attn_v and ffn_down.
    pub types: (GgmlDType, GgmlDType),
    /// `--context`: the context length the file states (tokens).
    pub context: usize,
}

/// Reads the command line (without the program name). Every flag takes a value; an
/// unknown flag, a second path or a flag without its value is refused, naming it (round
/// 45: `--layers 2` was ignored without a word, and the 16-layer file written in its place).
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    let usage = "usage: random_gguf OUT.gguf [--like NAME] [--mix q8_0|q4_0|q4_k_m] [--layers N] [--context N]";
    let (mut out, mut like, mut mix, mut layers, mut context) = (None, None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--like" => &mut like,
            "--mix" => &mut mix,
            "--layers" => &mut layers,
            "--context" => &mut context,
            "-h" | "--help" => return Err(usage.to_string()),
            f if f.starts_with('-') => return Err(format!("unknown flag `{f}`; {usage}")),
            path => {
                if let Some(first) = &out {
                    return Err(format!(
                        "a second output `{path}` (after `{first}`); {usage}"
                    ));
                }
                out = Some(path.to_string());
                continue;
            }
        };
        match it.next() {
            Some(v) => *slot = Some(v.clone()),
            None => return Err(format!("{a} needs a value; {usage}")),
        }
    }
    let out = out.ok_or_else(|| format!("no output file given; {usage}"))?;
    let like = like.unwrap_or_else(|| "llama-3.2-1b".to_string());
    let types = match mix.as_deref().unwrap_or("q8_0") {
        "q8_0" => (GgmlDType::Q8_0, GgmlDType::Q8_0),
        "q4_0" => (GgmlDType::Q4_0, GgmlDType::Q4_0),
        "q4_k_m" => (GgmlDType::Q4K, GgmlDType::Q6K),
        m => return Err(format!("--mix {m} is not a mix it writes; {usage}")),
    };
    let mut config = moa::model::random::like_or_err(&like).map_err(|e| format!("--like: {e}"))?;
    if let Some(n) = layers {
        config.n_layers = match n.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => n,
            _ => return Err(format!("--layers {n} is out of range: allowed 1..=1024")),
        };
    }
    let context = match context {
        None => 4096,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (2..=1 << 20).contains(&n) => n,
            _ => {
                return Err(format!(
                    "--context {n} is out of range: allowed 2..=1048576 tokens"
                ))
            }
        },
    };
    Ok(Args {
        out,
        like,
        config,
        types,
        context,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args {
        out,
        like,
        config: c,
        types: (main_t, sensitive),
        context,
    } = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("random_gguf: {e}");
        std::process::exit(2)
    });
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
        ("llama.context_length".into(), u(context)),
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
