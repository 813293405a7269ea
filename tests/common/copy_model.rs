//! A two-layer model whose answer heads are known by construction, for the profiling
//! tests (tests/copy_head.rs, tests/under_plan.rs): in layer 1, query heads
//! `0..spec.copies` copy the one "key" token of the prompt however far back it is, and
//! the output layer reads the copied key. The rest is random filler that reaches the loss
//! only through the norms.
//!
//! Residual layout: 0 = bias (1 for every token), 1 = "is a key", 2..10 = key identity,
//! 10..18 = the key copied by the copy heads (all of them write the same dims), 18.. =
//! filler features.
#![allow(dead_code)]

use moa::calib::{CalibSample, Expected};
use moa::model::weights::LayerWeights;
use moa::model::{HostTensor, LlamaConfig, Weights};
use moa::plan::ModelShape;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const HIDDEN: usize = 48;
pub const HEAD_DIM: usize = 8;
pub const HEADS: usize = 4;
pub const FFN: usize = 8;
pub const VOCAB: usize = 64;
/// Tokens 0..KEYS are keys; QUERY asks for the key; the rest is filler.
pub const KEYS: usize = 8;
pub const QUERY: u32 = 8;
/// The profiled length (tokens).
pub const N: u32 = 512;

/// What differs between the tests' copy models.
pub struct CopySpec {
    /// The model's name, also the plan shape's.
    pub name: &'static str,
    /// Seed of the filler weights.
    pub seed: u64,
    /// How many query heads of layer 1 copy the key (from head 0 on).
    pub copies: usize,
    /// q and k weight of the copy heads' score dimension: the larger, the sharper the copy.
    pub score_gain: f32,
    /// Output weight from the copied key to its logit: how sure one copy makes the answer.
    pub out_gain: f32,
}

fn t(shape: &[usize], data: Vec<f32>) -> HostTensor {
    HostTensor::new(shape.to_vec(), data).unwrap()
}

fn rand(rng: &mut StdRng, shape: &[usize], scale: f32) -> HostTensor {
    let n = shape.iter().product();
    t(
        shape,
        (0..n).map(|_| rng.random_range(-scale..scale)).collect(),
    )
}

/// The model of `spec` (config, weights), f32 host tensors.
pub fn copy_model(spec: &CopySpec) -> (LlamaConfig, Weights) {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let config = LlamaConfig {
        name: Some(spec.name.into()),
        n_layers: 2,
        hidden_size: HIDDEN,
        ffn_size: FFN,
        q_heads: HEADS,
        kv_heads: HEADS,
        head_dim: HEAD_DIM,
        // The copy heads use the slowest RoPE pair, which then barely turns over 512
        // tokens: their scores do not depend on the distance.
        rope_theta: 1.0e6,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: VOCAB,
        tied_embeddings: false,
        context_length: 1024,
    };
    let mut embd = vec![0.0f32; VOCAB * HIDDEN];
    for tok in 0..VOCAB {
        let row = &mut embd[tok * HIDDEN..(tok + 1) * HIDDEN];
        row[0] = 1.0;
        if tok < KEYS {
            row[1] = 1.0;
            row[2 + tok] = 1.0;
        } else {
            for v in &mut row[18..] {
                *v = rng.random_range(-0.4..0.4);
            }
        }
    }
    let q_dim = HEADS * HEAD_DIM;
    let layer = |rng: &mut StdRng, copy: bool| {
        // Other heads: random attention whose output lands in the filler features only,
        // so they matter to the loss a little (through the norms), not for the answer.
        let mut wq = rand(rng, &[q_dim, HIDDEN], 0.5);
        let mut wk = rand(rng, &[q_dim, HIDDEN], 0.5);
        let mut wv = rand(rng, &[q_dim, HIDDEN], 0.3);
        let mut wo = vec![0.0f32; HIDDEN * q_dim];
        let first_filler = if copy { spec.copies * HEAD_DIM } else { 0 };
        for o in 18..HIDDEN {
            for i in first_filler..q_dim {
                wo[o * q_dim + i] = rng.random_range(-0.2..0.2);
            }
        }
        if copy {
            // Each copy head: dimension 3 of the head (the slowest RoPE pair with its
            // partner 7) gets q = gain·bias and k = gain·key-flag; v copies the key
            // identity; the output writes it to dims 10..18.
            for h in 0..spec.copies {
                let r0 = h * HEAD_DIM;
                for r in r0..r0 + HEAD_DIM {
                    for c in 0..HIDDEN {
                        wq.data[r * HIDDEN + c] = 0.0;
                        wk.data[r * HIDDEN + c] = 0.0;
                        wv.data[r * HIDDEN + c] = 0.0;
                    }
                }
                wq.data[(r0 + 3) * HIDDEN] = spec.score_gain;
                wk.data[(r0 + 3) * HIDDEN + 1] = spec.score_gain;
                for i in 0..HEAD_DIM {
                    wv.data[(r0 + i) * HIDDEN + 2 + i] = 1.0;
                    wo[(10 + i) * q_dim + r0 + i] = 1.0;
                }
            }
        }
        LayerWeights {
            attn_norm: t(&[HIDDEN], vec![1.0; HIDDEN]),
            attn_q: wq,
            attn_k: wk,
            attn_v: wv,
            attn_output: t(&[HIDDEN, q_dim], wo),
            ffn_norm: t(&[HIDDEN], vec![1.0; HIDDEN]),
            ffn_gate: t(&[FFN, HIDDEN], vec![0.0; FFN * HIDDEN]),
            ffn_up: t(&[FFN, HIDDEN], vec![0.0; FFN * HIDDEN]),
            ffn_down: t(&[HIDDEN, FFN], vec![0.0; FFN * HIDDEN]),
        }
    };
    let layers = vec![layer(&mut rng, false), layer(&mut rng, true)];
    // The output reads the copied key (dims 10..18) into the key tokens' logits.
    let mut out = vec![0.0f32; VOCAB * HIDDEN];
    for k in 0..KEYS {
        out[k * HIDDEN + 10 + k] = spec.out_gain;
    }
    for tok in KEYS..VOCAB {
        for c in 18..HIDDEN {
            out[tok * HIDDEN + c] = rng.random_range(-0.1..0.1);
        }
    }
    let weights = Weights {
        token_embd: t(&[VOCAB, HIDDEN], embd),
        layers,
        output_norm: t(&[HIDDEN], vec![1.0; HIDDEN]),
        output: Some(t(&[VOCAB, HIDDEN], out)),
    };
    (config, weights)
}

/// A prompt of `len − 1` tokens of filler with the key `i % KEYS` at `key_pos`, ending
/// with QUERY; the response (one token) is the key. Seeded by `i`.
pub fn sample(i: usize, key_pos: usize, len: usize) -> CalibSample {
    let mut rng = StdRng::seed_from_u64(100 + i as u64);
    let key = (i % KEYS) as u32;
    let mut prompt: Vec<u32> = (0..len - 2)
        .map(|_| rng.random_range(QUERY + 1..VOCAB as u32))
        .collect();
    prompt[key_pos] = key;
    prompt.push(QUERY);
    let n = prompt.len() + 1;
    CalibSample {
        id: format!("copy-{i}"),
        task: "passkey".into(),
        length_level: N,
        response_span: [prompt.len(), n],
        prompt_tokens: prompt,
        response_tokens: vec![key],
        n_tokens: n,
        source: "constructed".into(),
        seed: i as u64,
        dense_answer_text: String::new(),
        expected: Expected {
            answer: key.to_string(),
            correct: true,
            depth: None,
            needle_token: Some(key_pos),
        },
    }
}

/// The plan shape of a copy model named `name`.
pub fn shape(name: &str) -> ModelShape {
    ModelShape {
        name: Some(name.into()),
        layers: 2,
        q_heads: HEADS as u32,
        kv_heads: HEADS as u32,
        head_dim: HEAD_DIM as u32,
        max_context_tokens: 1024,
    }
}
