//! A tiny random-weight Llama written by the tests themselves (GGUF with permuted Q/K
//! and Q8_0 tensors, and a Hugging Face safetensors folder), plus a naive f64 reference.
#![allow(dead_code)]

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use moa::model::weights::permute_rope_rows;
use moa::model::{HostTensor, LlamaConfig};
use moa::plan::{LayerRules, Meta, ModelShape, Plan, Rule, SpanMode, SpanSection, BETA_DEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const LAYERS: usize = 2;
pub const HIDDEN: usize = 64;
pub const FFN: usize = 96;
pub const Q_HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 16;
pub const VOCAB: usize = 300;
pub const THETA: f32 = 10_000.0;
pub const EPS: f32 = 1e-5;
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

pub fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("model_tiny-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// GPT-2's byte → printable character map (`bytes_to_unicode`).
pub fn byte_chars() -> Vec<char> {
    moa::model::random::byte_level_chars().to_vec()
}

/// Vocabulary: 3 control tokens, the 256 byte tokens, merged tokens, filler.
pub const MERGES: &[(&str, &str)] = &[
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    ("Ġ", "w"),
    ("o", "r"),
    ("Ġw", "or"),
    ("l", "d"),
    ("Ġwor", "ld"),
];

pub fn vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3, 3, 3];
    for c in byte_chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    for (a, b) in MERGES {
        tokens.push(format!("{a}{b}"));
        types.push(1);
    }
    while tokens.len() < VOCAB {
        tokens.push(format!("<unused{}>", tokens.len()));
        types.push(1);
    }
    let merges = MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect();
    (tokens, types, merges)
}

pub fn id_of(tokens: &[String], s: &str) -> u32 {
    tokens.iter().position(|t| t == s).unwrap() as u32
}

/// The "true" weights in Hugging Face layout, by GGUF name, and how GGUF stores each.
pub struct Tiny {
    tensors: Vec<(String, HostTensor, GgmlDType)>,
    /// Units of the MLP ([`FFN`] unless made by [`tiny_ffn`]).
    ffn: usize,
}

pub fn rand_tensor(rng: &mut StdRng, shape: &[usize], center: f32, scale: f32) -> HostTensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| center + rng.random_range(-scale..scale))
        .collect();
    HostTensor::new(shape.to_vec(), data).unwrap()
}

/// Rounds a tensor through Q8_0 so that the f32 copy equals what GGUF dequantizes to.
pub fn through_q8(t: HostTensor) -> HostTensor {
    let x = Tensor::from_vec(t.data, t.shape.clone(), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&x, GgmlDType::Q8_0).unwrap();
    let d = q.dequantize(&Device::Cpu).unwrap();
    HostTensor::new(t.shape, d.flatten_all().unwrap().to_vec1().unwrap()).unwrap()
}

pub fn tiny(seed: u64, tied: bool) -> Tiny {
    tiny_ffn(seed, tied, FFN)
}

/// [`tiny`] with `ffn` units in its MLP in place of [`FFN`] (products of a larger K).
pub fn tiny_ffn(seed: u64, tied: bool, ffn: usize) -> Tiny {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors = Vec::new();
    let mut add = |name: String, t: HostTensor, dt: GgmlDType| {
        let t = if dt == GgmlDType::Q8_0 {
            through_q8(t)
        } else {
            t
        };
        tensors.push((name, t, dt));
    };
    let (f32_, q8) = (GgmlDType::F32, GgmlDType::Q8_0);
    add(
        "token_embd".into(),
        rand_tensor(&mut rng, &[VOCAB, HIDDEN], 0.0, 1.0),
        q8,
    );
    for l in 0..LAYERS {
        let mut m = |name: &str, shape: &[usize], dt| {
            let scale = 1.0 / (shape[1] as f32).sqrt();
            add(
                format!("blk.{l}.{name}"),
                rand_tensor(&mut rng, shape, 0.0, 2.0 * scale),
                dt,
            );
        };
        m("attn_q", &[Q_HEADS * HEAD_DIM, HIDDEN], q8);
        m("attn_k", &[KV_HEADS * HEAD_DIM, HIDDEN], f32_);
        m("attn_v", &[KV_HEADS * HEAD_DIM, HIDDEN], q8);
        m("attn_output", &[HIDDEN, Q_HEADS * HEAD_DIM], f32_);
        m("ffn_gate", &[ffn, HIDDEN], q8);
        m("ffn_up", &[ffn, HIDDEN], f32_);
        m("ffn_down", &[HIDDEN, ffn], q8);
        for n in ["attn_norm", "ffn_norm"] {
            add(
                format!("blk.{l}.{n}"),
                rand_tensor(&mut rng, &[HIDDEN], 1.0, 0.2),
                f32_,
            );
        }
    }
    add(
        "output_norm".into(),
        rand_tensor(&mut rng, &[HIDDEN], 1.0, 0.2),
        f32_,
    );
    if !tied {
        add(
            "output".into(),
            rand_tensor(&mut rng, &[VOCAB, HIDDEN], 0.0, 0.3),
            f32_,
        );
    }
    Tiny { tensors, ffn }
}

impl Tiny {
    pub fn get(&self, name: &str) -> &HostTensor {
        &self.tensors.iter().find(|(n, ..)| n == name).unwrap().1
    }

    pub fn metadata(&self) -> Vec<(String, Value)> {
        let (tokens, types, merges) = vocab();
        let u = |v: usize| Value::U32(v as u32);
        vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("general.name".into(), Value::String("tiny".into())),
            ("llama.block_count".into(), u(LAYERS)),
            ("llama.context_length".into(), u(128)),
            ("llama.embedding_length".into(), u(HIDDEN)),
            ("llama.feed_forward_length".into(), u(self.ffn)),
            ("llama.attention.head_count".into(), u(Q_HEADS)),
            ("llama.attention.head_count_kv".into(), u(KV_HEADS)),
            ("llama.rope.dimension_count".into(), u(HEAD_DIM)),
            ("llama.rope.freq_base".into(), Value::F32(THETA)),
            (
                "llama.attention.layer_norm_rms_epsilon".into(),
                Value::F32(EPS),
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
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(merges.into_iter().map(Value::String).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".into(), u(1)),
            ("tokenizer.ggml.eos_token_id".into(), u(2)),
            (
                "tokenizer.chat_template".into(),
                Value::String(CHATML.into()),
            ),
        ]
    }

    /// Writes a GGUF file the way llama.cpp's converter would: Q/K rows permuted for
    /// interleaved RoPE. `edit` may change metadata and tensors first.
    pub fn write_gguf(
        &self,
        path: &Path,
        edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>),
    ) {
        let mut md = self.metadata();
        let mut qt: Vec<(String, QTensor)> = self
            .tensors
            .iter()
            .map(|(name, t, dt)| {
                let data = if name.ends_with("attn_q") {
                    permute_rope_rows(&t.data, Q_HEADS, HEAD_DIM, HIDDEN)
                } else if name.ends_with("attn_k") {
                    permute_rope_rows(&t.data, KV_HEADS, HEAD_DIM, HIDDEN)
                } else {
                    t.data.clone()
                };
                let x = Tensor::from_vec(data, t.shape.clone(), &Device::Cpu).unwrap();
                (
                    format!("{name}.weight"),
                    QTensor::quantize(&x, *dt).unwrap(),
                )
            })
            .collect();
        edit(&mut md, &mut qt);
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = qt.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut f = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    }

    /// Writes a Hugging Face folder (2 shards + index, `dtype`), unpermuted Q/K.
    pub fn write_hf(&self, dir: &Path, dtype: DType, tied: bool) {
        let config = serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": HIDDEN, "intermediate_size": self.ffn, "num_hidden_layers": LAYERS,
            "num_attention_heads": Q_HEADS, "num_key_value_heads": KV_HEADS,
            "rope_theta": THETA, "rms_norm_eps": EPS, "vocab_size": VOCAB,
            "tie_word_embeddings": tied, "max_position_embeddings": 128,
            "bos_token_id": 1, "eos_token_id": 2, "rope_scaling": null,
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let mut shards: [HashMap<String, Tensor>; 2] = Default::default();
        let mut weight_map = serde_json::Map::new();
        for (i, (name, t, _)) in self.tensors.iter().enumerate() {
            let hf = moa::model::safetensors::hf_tensor_name(name);
            let x = Tensor::from_vec(t.data.clone(), t.shape.clone(), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let shard = i % 2;
            weight_map.insert(
                hf.clone(),
                format!("model-0000{}-of-00002.safetensors", shard + 1).into(),
            );
            shards[shard].insert(hf, x);
        }
        for (s, m) in shards.iter().enumerate() {
            candle_core::safetensors::save(
                m,
                dir.join(format!("model-0000{}-of-00002.safetensors", s + 1)),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string(),
        )
        .unwrap();
    }

    pub fn config(&self, tied: bool) -> LlamaConfig {
        LlamaConfig {
            name: None,
            n_layers: LAYERS,
            hidden_size: HIDDEN,
            ffn_size: self.ffn,
            q_heads: Q_HEADS,
            kv_heads: KV_HEADS,
            head_dim: HEAD_DIM,
            rope_theta: THETA,
            rope_scaling: None,
            rms_norm_eps: EPS,
            vocab_size: VOCAB,
            tied_embeddings: tied,
            context_length: 128,
        }
    }
}

/// Straightforward f64 Llama: per position, per head loops; half-split RoPE; `keeps(layer,
/// q_head, q, k)` decides the mask.
pub fn naive_logits(
    w: &Tiny,
    tied: bool,
    tokens: &[u32],
    keeps: impl Fn(usize, usize, usize, usize) -> bool,
) -> Vec<f32> {
    let t = |n: &str| -> Vec<f64> { w.get(n).data.iter().map(|&v| f64::from(v)).collect() };
    let matvec = |m: &[f64], x: &[f64]| -> Vec<f64> {
        let cols = x.len();
        m.chunks(cols)
            .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    };
    let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let inv = 1.0 / (ms + f64::from(EPS)).sqrt();
        x.iter().zip(g).map(|(v, g)| v * inv * g).collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        let half = HEAD_DIM / 2;
        for j in 0..half {
            let a = pos as f64 * f64::from(THETA).powf(-(2.0 * j as f64) / HEAD_DIM as f64);
            let (x1, x2) = (v[j], v[j + half]);
            v[j] = x1 * a.cos() - x2 * a.sin();
            v[j + half] = x2 * a.cos() + x1 * a.sin();
        }
    };
    let emb = t("token_embd");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&id| emb[id as usize * HIDDEN..(id as usize + 1) * HIDDEN].to_vec())
        .collect();
    for l in 0..LAYERS {
        let p = |n: &str| t(&format!("blk.{l}.{n}"));
        let (wq, wk, wv, wo) = (p("attn_q"), p("attn_k"), p("attn_v"), p("attn_output"));
        let (mut qs, mut ks, mut vs) = (vec![], vec![], vec![]);
        for (pos, x) in xs.iter().enumerate() {
            let h = rms(x, &p("attn_norm"));
            let mut q = matvec(&wq, &h);
            let mut k = matvec(&wk, &h);
            for head in q.chunks_mut(HEAD_DIM) {
                rope(head, pos);
            }
            for head in k.chunks_mut(HEAD_DIM) {
                rope(head, pos);
            }
            qs.push(q);
            ks.push(k);
            vs.push(matvec(&wv, &h));
        }
        for (pos, x) in xs.iter_mut().enumerate() {
            let mut attn = vec![0.0; Q_HEADS * HEAD_DIM];
            for qh in 0..Q_HEADS {
                let kvh = qh / (Q_HEADS / KV_HEADS);
                let q = &qs[pos][qh * HEAD_DIM..(qh + 1) * HEAD_DIM];
                let kept: Vec<usize> = (0..=pos).filter(|&k| keeps(l, qh, pos, k)).collect();
                let scores: Vec<f64> = kept
                    .iter()
                    .map(|&k| {
                        let key = &ks[k][kvh * HEAD_DIM..(kvh + 1) * HEAD_DIM];
                        q.iter().zip(key).map(|(a, b)| a * b).sum::<f64>()
                            / (HEAD_DIM as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (i, &k) in kept.iter().enumerate() {
                    for d in 0..HEAD_DIM {
                        attn[qh * HEAD_DIM + d] += e[i] / sum * vs[k][kvh * HEAD_DIM + d];
                    }
                }
            }
            let o = matvec(&wo, &attn);
            x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
            let h = rms(x, &p("ffn_norm"));
            let g = matvec(&p("ffn_gate"), &h);
            let u = matvec(&p("ffn_up"), &h);
            let act: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = matvec(&p("ffn_down"), &act);
            x.iter_mut().zip(d).for_each(|(a, b)| *a += b);
        }
    }
    let head = if tied { t("token_embd") } else { t("output") };
    xs.iter()
        .flat_map(|x| matvec(&head, &rms(x, &t("output_norm"))))
        .map(|v| v as f32)
        .collect()
}

/// Max |a − b|, asserting it is at most `tol`; reports the worst (position, token).
pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32, ctx: &str) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{ctx}: lengths differ");
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let d = (a - e).abs();
        if d > worst || d.is_nan() {
            worst = d;
            at = i;
        }
    }
    assert!(
        worst <= tol,
        "{ctx}: max |diff| = {worst} > {tol} at position {}, token {} ({} vs {})",
        at / VOCAB,
        at % VOCAB,
        actual[at],
        expected[at]
    );
    worst
}

pub fn tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..VOCAB as u32)).collect()
}

/// Mixed spans inside each GQA group, a dense head, sink 2, N = 19.
pub fn sparse_plan() -> Plan {
    let shape = ModelShape {
        name: Some("tiny".into()),
        layers: LAYERS as u32,
        q_heads: Q_HEADS as u32,
        kv_heads: KV_HEADS as u32,
        head_dim: HEAD_DIM as u32,
        max_context_tokens: 128,
    };
    let span = SpanSection {
        sink_tokens: 2,
        min_span_tokens: 3,
        block_tokens: 1,
        mode: SpanMode::Moa,
        max_new_tokens: 0,
    };
    let r = |alpha: i32, beta: u32| Rule {
        alpha,
        beta_num: beta * BETA_DEN / 8,
    };
    let layers = vec![
        LayerRules {
            rules: vec![r(5, 0), r(0, 4), r(0, 8), r(3, 1)],
        },
        LayerRules {
            rules: vec![r(1, 0), r(7, 0), r(-2, 6), r(4, 2)],
        },
    ];
    Plan::new(shape, span, Meta::default(), layers).unwrap()
}
