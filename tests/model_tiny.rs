//! Model loading and the CPU reference on a tiny random Llama written by the test itself:
//! GGUF (F32 + Q8_0, Q/K permuted as llama.cpp does) and a sharded Hugging Face folder give
//! the same logits; dense and plan-masked logits match a naive f64 implementation; the KV
//! cache path matches the full forward; the GGUF tokenizer and chat template work; bad
//! inputs give errors that name the file and the tensor or key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use moa::model::weights::permute_rope_rows;
use moa::model::{
    tokenizer::gguf_tokenizer_json, ChatMessage, ChatTemplate, CpuReference, HostTensor,
    LlamaConfig, Masking, Model, ModelError, ModelTokenizer,
};
use moa::plan::{LayerRules, Meta, ModelShape, Plan, Rule, SpanMode, SpanSection, BETA_DEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LAYERS: usize = 2;
const HIDDEN: usize = 64;
const FFN: usize = 96;
const Q_HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const VOCAB: usize = 300;
const THETA: f32 = 10_000.0;
const EPS: f32 = 1e-5;
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("model_tiny-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// GPT-2's byte → printable character map (`bytes_to_unicode`).
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut map = vec![' '; 256];
    for (b, c) in printable.iter().zip(&chars) {
        map[*b as usize] = char::from_u32(*c).unwrap();
    }
    map
}

/// Vocabulary: 3 control tokens, the 256 byte tokens, merged tokens, filler.
const MERGES: &[(&str, &str)] = &[
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

fn vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
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

fn id_of(tokens: &[String], s: &str) -> u32 {
    tokens.iter().position(|t| t == s).unwrap() as u32
}

/// The "true" weights in Hugging Face layout, by GGUF name, and how GGUF stores each.
struct Tiny {
    tensors: Vec<(String, HostTensor, GgmlDType)>,
}

fn rand_tensor(rng: &mut StdRng, shape: &[usize], center: f32, scale: f32) -> HostTensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| center + rng.random_range(-scale..scale))
        .collect();
    HostTensor::new(shape.to_vec(), data).unwrap()
}

/// Rounds a tensor through Q8_0 so that the f32 copy equals what GGUF dequantizes to.
fn through_q8(t: HostTensor) -> HostTensor {
    let x = Tensor::from_vec(t.data, t.shape.clone(), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&x, GgmlDType::Q8_0).unwrap();
    let d = q.dequantize(&Device::Cpu).unwrap();
    HostTensor::new(t.shape, d.flatten_all().unwrap().to_vec1().unwrap()).unwrap()
}

fn tiny(seed: u64, tied: bool) -> Tiny {
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
        m("ffn_gate", &[FFN, HIDDEN], q8);
        m("ffn_up", &[FFN, HIDDEN], f32_);
        m("ffn_down", &[HIDDEN, FFN], q8);
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
    Tiny { tensors }
}

impl Tiny {
    fn get(&self, name: &str) -> &HostTensor {
        &self.tensors.iter().find(|(n, ..)| n == name).unwrap().1
    }

    fn metadata(&self) -> Vec<(String, Value)> {
        let (tokens, types, merges) = vocab();
        let u = |v: usize| Value::U32(v as u32);
        vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("general.name".into(), Value::String("tiny".into())),
            ("llama.block_count".into(), u(LAYERS)),
            ("llama.context_length".into(), u(128)),
            ("llama.embedding_length".into(), u(HIDDEN)),
            ("llama.feed_forward_length".into(), u(FFN)),
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
    fn write_gguf(
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
    fn write_hf(&self, dir: &Path, dtype: DType, tied: bool) {
        let config = serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
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

    fn config(&self, tied: bool) -> LlamaConfig {
        LlamaConfig {
            name: None,
            n_layers: LAYERS,
            hidden_size: HIDDEN,
            ffn_size: FFN,
            q_heads: Q_HEADS,
            kv_heads: KV_HEADS,
            head_dim: HEAD_DIM,
            rope_theta: THETA,
            rms_norm_eps: EPS,
            vocab_size: VOCAB,
            tied_embeddings: tied,
            context_length: 128,
        }
    }
}

/// Straightforward f64 Llama: per position, per head loops; half-split RoPE; `keeps(layer,
/// q_head, q, k)` decides the mask.
fn naive_logits(
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
fn assert_close(actual: &[f32], expected: &[f32], tol: f32, ctx: &str) -> f32 {
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

fn tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..VOCAB as u32)).collect()
}

/// Mixed spans inside each GQA group, a dense head, sink 2, N = 19.
fn sparse_plan() -> Plan {
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

#[test]
fn gguf_and_hf_folder_give_the_same_config_weights_and_logits() {
    let w = tiny(1, true);
    let dir = tmp("same");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    w.write_hf(&hf, DType::F32, true);

    let a = Model::load(&gguf).unwrap();
    let b = Model::load(&hf).unwrap();
    let want = LlamaConfig {
        name: Some("tiny".into()),
        ..w.config(true)
    };
    assert_eq!(a.config, want);
    assert_eq!(
        b.config,
        LlamaConfig {
            name: Some("hf".into()),
            ..want
        }
    );
    assert_eq!(a.special.bos, Some(1));
    assert_eq!(a.special.eos, vec![2]);
    assert_eq!(b.special.eos, vec![2]);
    // Un-permuted GGUF Q/K equal the Hugging Face rows exactly.
    assert_eq!(a.weights.layers[1].attn_q, *w.get("blk.1.attn_q"));
    assert_eq!(a.weights.layers[0].attn_k, *w.get("blk.0.attn_k"));
    assert_eq!(a.weights, b.weights);
    assert!(a.weights.output.is_none());

    let ids = tokens(19, 7);
    let la = CpuReference::from_model(a)
        .unwrap()
        .forward(&ids, Masking::Dense)
        .unwrap();
    let lb = CpuReference::from_model(b)
        .unwrap()
        .forward(&ids, Masking::Dense)
        .unwrap();
    assert_eq!(la.shape, vec![19, VOCAB]);
    assert_close(&la.data, &lb.data, 0.0, "gguf vs hf");
}

#[test]
fn half_precision_hf_weights_load_as_f32() {
    let w = tiny(2, false);
    for dtype in [DType::F16, DType::BF16] {
        let dir = tmp(&format!("half-{dtype:?}"));
        w.write_hf(&dir, dtype, false);
        let m = Model::load(&dir).unwrap();
        let out = m.weights.output.as_ref().unwrap();
        let want = w.get("output");
        let tol = if dtype == DType::F16 { 1e-3 } else { 4e-3 };
        for (a, b) in out.data.iter().zip(&want.data) {
            assert!((a - b).abs() <= tol, "{dtype:?}: {a} vs {b}");
        }
    }
}

#[test]
fn dense_logits_match_naive_implementation() {
    for (seed, tied) in [(3, true), (4, false)] {
        let w = tiny(seed, tied);
        let dir = tmp(&format!("dense-{seed}"));
        let gguf = dir.join("tiny.gguf");
        w.write_gguf(&gguf, |_, _| {});
        let model = CpuReference::from_model(Model::load(&gguf).unwrap()).unwrap();
        for n in [1, 3, 19] {
            let ids = tokens(n, seed + n as u64);
            let got = model.forward(&ids, Masking::Dense).unwrap();
            let want = naive_logits(&w, tied, &ids, |_, _, q, k| k <= q);
            assert_close(&got.data, &want, 1e-4, &format!("seed {seed}, n {n}"));
        }
    }
}

#[test]
fn plan_logits_differ_from_dense_and_match_naive_masked() {
    let w = tiny(5, true);
    let dir = tmp("plan");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let model = CpuReference::from_model(Model::load(&gguf).unwrap()).unwrap();
    let plan = sparse_plan();
    let n = 19u32;
    let ids = tokens(n as usize, 11);
    let masking = Masking::Plan {
        plan: &plan,
        n_tokens: n,
    };
    let sparse = model.forward(&ids, masking).unwrap();
    let dense = model.forward(&ids, Masking::Dense).unwrap();
    let want = naive_logits(&w, true, &ids, |l, h, q, k| {
        plan.window(l, h, n).keeps(q as u64, k as u64)
    });
    assert_close(&sparse.data, &want, 1e-4, "plan vs naive masked");
    let diff = sparse
        .data
        .iter()
        .zip(&dense.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff > 1e-2, "plan logits equal dense (max diff {diff})");
    // The first tokens are inside every window: identical to dense there.
    assert_close(
        &sparse.data[..3 * VOCAB],
        &dense.data[..3 * VOCAB],
        1e-5,
        "first 3 positions",
    );
}

#[test]
fn kv_cache_decode_matches_full_forward() {
    let w = tiny(6, false);
    let dir = tmp("kvcache");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let model = CpuReference::from_model(Model::load(&gguf).unwrap()).unwrap();
    let plan = sparse_plan();
    let ids = tokens(19, 12);
    for masking in [
        Masking::Dense,
        Masking::Plan {
            plan: &plan,
            n_tokens: 19,
        },
    ] {
        let full = model.forward(&ids, masking).unwrap();
        let mut cache = model.new_cache();
        let mut rows = model
            .forward_with_cache(&mut cache, &ids[..7], masking)
            .unwrap()
            .data;
        for &id in &ids[7..] {
            rows.extend(model.next_token_logits(&mut cache, &[id], masking).unwrap());
        }
        assert_eq!(cache.len(), 19);
        assert_close(&rows, &full.data, 1e-5, &format!("{masking:?}"));
    }
    // Greedy generation is the argmax of the full forward, token by token.
    let out = model.generate(&ids[..5], 6, Masking::Dense, &[]).unwrap();
    let mut seq = ids[..5].to_vec();
    for &t in &out {
        let l = model.forward(&seq, Masking::Dense).unwrap();
        let last = &l.data[(seq.len() - 1) * VOCAB..];
        assert_eq!(t, moa::model::reference::argmax(last));
        seq.push(t);
    }
    assert_eq!(out.len(), 6);
}

#[test]
fn gguf_tokenizer_and_chat_template() {
    let w = tiny(7, true);
    let dir = tmp("tok");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let (toks, ..) = vocab();
    let tok = ModelTokenizer::load(&gguf).unwrap();
    let ids = tok.encode("hello world 42").unwrap();
    let want: Vec<u32> = ["hello", "Ġworld", "Ġ", "4", "2"]
        .iter()
        .map(|s| id_of(&toks, s))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(tok.decode(&ids, false).unwrap(), "hello world 42");
    let ids = tok.encode("<|im_start|>hi<|im_end|>").unwrap();
    assert_eq!(ids, vec![1, id_of(&toks, "h"), id_of(&toks, "i"), 2]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "hi");

    // The same document, as a folder's tokenizer.json, gives the same ids.
    let g = moa::model::gguf::GgufFile::open(&gguf).unwrap();
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    w.write_hf(&hf, DType::F32, true);
    std::fs::write(
        hf.join("tokenizer.json"),
        gguf_tokenizer_json(&g).unwrap().to_string(),
    )
    .unwrap();
    std::fs::write(
        hf.join("tokenizer_config.json"),
        serde_json::json!({"chat_template": CHATML, "bos_token": "<|im_start|>",
            "eos_token": {"content": "<|im_end|>"}})
        .to_string(),
    )
    .unwrap();
    let tok_hf = ModelTokenizer::load(&hf).unwrap();
    assert_eq!(tok_hf.encode("hello world 42").unwrap(), want);

    let msgs = [ChatMessage::new("user", "hi")];
    for path in [&gguf, &hf] {
        let t = ChatTemplate::load(path).unwrap().unwrap();
        assert_eq!(t.eos_token, "<|im_end|>");
        assert_eq!(
            t.render(&msgs, true).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            t.render(&msgs, false).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n"
        );
    }
}

fn load_err(path: &Path) -> (ModelError, String) {
    let e = Model::load(path).unwrap_err();
    let s = e.to_string();
    (e, s)
}

#[test]
fn errors_name_the_file_and_the_tensor_or_key() {
    let w = tiny(8, true);
    let dir = tmp("errors");

    let (e, s) = load_err(&dir.join("nope.gguf"));
    assert!(matches!(e, ModelError::Io { .. }), "{s}");
    assert!(s.contains("nope.gguf"), "{s}");

    let missing = dir.join("missing.gguf");
    w.write_gguf(&missing, |_, t| {
        t.retain(|(n, _)| n != "blk.1.ffn_up.weight")
    });
    let (e, s) = load_err(&missing);
    assert!(matches!(e, ModelError::MissingTensor { .. }), "{s}");
    assert!(
        s.contains("missing.gguf") && s.contains("`blk.1.ffn_up.weight`") && s.contains("[96, 64]"),
        "{s}"
    );

    let bad = dir.join("shape.gguf");
    w.write_gguf(&bad, |_, t| {
        let x = Tensor::zeros((FFN, 32), DType::F32, &Device::Cpu).unwrap();
        for (n, q) in t.iter_mut() {
            if n == "blk.0.ffn_gate.weight" {
                *q = QTensor::quantize(&x, GgmlDType::F32).unwrap();
            }
        }
    });
    let (e, s) = load_err(&bad);
    assert!(matches!(e, ModelError::BadShape { .. }), "{s}");
    assert!(
        s.contains("`blk.0.ffn_gate.weight`") && s.contains("[96, 32]") && s.contains("[96, 64]"),
        "{s}"
    );

    let nokey = dir.join("nokey.gguf");
    w.write_gguf(&nokey, |md, _| md.retain(|(k, _)| k != "llama.block_count"));
    let (e, s) = load_err(&nokey);
    assert!(matches!(e, ModelError::MissingKey { .. }), "{s}");
    assert!(
        s.contains("nokey.gguf") && s.contains("`llama.block_count`"),
        "{s}"
    );

    let not_gguf = dir.join("text.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    let (e, s) = load_err(&not_gguf);
    assert!(matches!(e, ModelError::Format { .. }), "{s}");

    // A Hugging Face folder names the shard-independent HF tensor name.
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    w.write_hf(&hf, DType::F32, false); // not tied, but no lm_head.weight written
    let (e, s) = load_err(&hf);
    assert!(matches!(e, ModelError::MissingTensor { .. }), "{s}");
    assert!(
        s.contains("`lm_head.weight`") && s.contains("[300, 64]"),
        "{s}"
    );

    let cfg_path = hf.join("config.json");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut no_hidden = cfg.clone();
    no_hidden.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(&cfg_path, no_hidden.to_string()).unwrap();
    let (e, s) = load_err(&hf);
    assert!(matches!(e, ModelError::MissingKey { .. }), "{s}");
    assert!(
        s.contains("config.json") && s.contains("`hidden_size`"),
        "{s}"
    );
    let mut qwen = cfg.clone();
    qwen["model_type"] = "qwen2".into();
    qwen["architectures"] = serde_json::json!(["Qwen2ForCausalLM"]);
    std::fs::write(&cfg_path, qwen.to_string()).unwrap();
    let (e, s) = load_err(&hf);
    assert!(matches!(e, ModelError::Unsupported { .. }), "{s}");
    assert!(s.contains("`qwen2`"), "{s}");

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (e, s) = load_err(&empty);
    assert!(matches!(e, ModelError::Io { .. }), "{s}");
    assert!(s.contains("config.json"), "{s}");
}

#[test]
fn plan_for_another_shape_is_rejected() {
    let w = tiny(9, true);
    let dir = tmp("planshape");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let model = CpuReference::from_model(Model::load(&gguf).unwrap()).unwrap();
    let mut plan = sparse_plan();
    plan.model.kv_heads = 4;
    let e = model
        .forward(
            &[1, 2, 3],
            Masking::Plan {
                plan: &plan,
                n_tokens: 3,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::PlanMismatch {
                field: "model.kv_heads",
                plan: 4,
                model: 2
            }
        ),
        "{e}"
    );
    let e = model.forward(&[1, 300], Masking::Dense).unwrap_err();
    assert!(
        matches!(e, ModelError::TokenOutOfRange { id: 300, .. }),
        "{e}"
    );
    let e = model.forward(&[], Masking::Dense).unwrap_err();
    assert!(matches!(e, ModelError::EmptyInput), "{e}");
}

#[test]
fn default_model_path_says_how_to_fetch() {
    let dir = tmp("cache");
    // The only test of this binary that touches the environment.
    std::env::set_var("MOA_CACHE", &dir);
    let e = moa::model::default_model_path().unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, ModelError::NotFetched { .. }), "{s}");
    assert!(
        s.contains("moa model fetch") && s.contains(dir.to_str().unwrap()),
        "{s}"
    );
}
