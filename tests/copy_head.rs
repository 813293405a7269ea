//! The pipeline on a model whose answer head is known by construction: layer 1, query
//! head 0 copies the one "key" token of the prompt, however far back it is, and the output
//! layer reads the copied key. Profiling + optimizing at 50% density must give that head a
//! span that reaches the key, where a uniform N/2 window does not (and loses the answer);
//! `moa diagnose`'s analysis must name that head.

use candle_core::DType;
use moa::calib::{CalibSample, Expected};
use moa::model::weights::LayerWeights;
use moa::model::{HostTensor, LlamaConfig, Weights};
use moa::optimize::{optimize, Objective, OptimizeConfig};
use moa::plan::{HeadWindow, ModelShape, Plan, Rule, SpanSection, BETA_DEN};
use moa::profile::diagnose::{diagnose, DiagnoseOptions};
use moa::profile::{profile_length, GradModel, LossSpan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HIDDEN: usize = 48;
const HEAD_DIM: usize = 8;
const HEADS: usize = 4;
const FFN: usize = 8;
const VOCAB: usize = 64;
/// Tokens 0..KEYS are keys; QUERY asks for the key; the rest is filler.
const KEYS: usize = 8;
const QUERY: u32 = 8;
const N: u32 = 512;

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

/// Residual layout: 0 = bias (1 for every token), 1 = "is a key", 2..10 = key identity,
/// 10..18 = the key copied by the copy head, 18.. = filler features.
fn copy_model() -> (LlamaConfig, Weights) {
    let mut rng = StdRng::seed_from_u64(11);
    let config = LlamaConfig {
        name: Some("copy-head".into()),
        n_layers: 2,
        hidden_size: HIDDEN,
        ffn_size: FFN,
        q_heads: HEADS,
        kv_heads: HEADS,
        head_dim: HEAD_DIM,
        // The copy head uses the slowest RoPE pair, which then barely turns over 512
        // tokens: its scores do not depend on the distance.
        rope_theta: 1.0e6,
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
        for o in 18..HIDDEN {
            for i in HEAD_DIM..q_dim {
                wo[o * q_dim + i] = rng.random_range(-0.2..0.2);
            }
        }
        if copy {
            // Head 0: dimension 3 of the head (the slowest RoPE pair with its partner 7)
            // gets q = 2.5·bias and k = 2.5·key-flag; v copies the key identity; the
            // output writes it to dims 10..18.
            for r in 0..HEAD_DIM {
                for c in 0..HIDDEN {
                    wq.data[r * HIDDEN + c] = 0.0;
                    wk.data[r * HIDDEN + c] = 0.0;
                    wv.data[r * HIDDEN + c] = 0.0;
                }
            }
            wq.data[3 * HIDDEN] = 2.5;
            wk.data[3 * HIDDEN + 1] = 2.5;
            for i in 0..HEAD_DIM {
                wv.data[i * HIDDEN + 2 + i] = 1.0;
                wo[(10 + i) * q_dim + i] = 1.0;
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
        out[k * HIDDEN + 10 + k] = 6.0;
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

/// A prompt of filler with the key at `key_pos`, ending with QUERY; the answer is the key.
fn sample(i: usize, key_pos: usize, len: usize) -> CalibSample {
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

fn shape() -> ModelShape {
    ModelShape {
        name: Some("copy-head".into()),
        layers: 2,
        q_heads: HEADS as u32,
        kv_heads: HEADS as u32,
        head_dim: HEAD_DIM as u32,
        max_context_tokens: 1024,
    }
}

#[test]
fn pipeline_keeps_the_copy_head_long_and_the_uniform_window_loses_it() {
    let (config, weights) = copy_model();
    let model = GradModel::new(config, &weights, DType::F32).unwrap();
    // Keys 330..440 tokens before the question: beyond a uniform N/2 window.
    let samples: Vec<CalibSample> = (0..6)
        .map(|i| sample(i, 70 + 20 * i, N as usize - 1))
        .collect();
    let refs: Vec<&CalibSample> = samples.iter().collect();
    let profile = profile_length(&model, &refs, N, 64, None, &mut |_| {}).unwrap();
    let cfg = OptimizeConfig {
        model: Some(shape()),
        density_band: (0.45, 0.5),
        objective: Objective::Single { n_tokens: N },
        ..OptimizeConfig::default()
    };
    let result = optimize(&[profile], &["copy".into()], &cfg).unwrap();
    let plan: &Plan = &result.plans[0].plan;
    let span = SpanSection::default();
    let uniform = Rule {
        alpha: 0,
        beta_num: BETA_DEN / 2,
    }
    .span(N, &span.params());
    let uniform_w = HeadWindow::new(uniform, span.sink_tokens);
    for s in &samples {
        let key = s.expected.needle_token.unwrap() as u64;
        let row = (s.response_span[0] - 1) as u64;
        assert!(
            plan.window(1, 0, N).keeps(row, key),
            "the plan's copy head (span {}) misses the key {} tokens back; plan: {:?}",
            plan.q_span(1, 0, N),
            row - key,
            plan.layers()
        );
        assert!(
            !uniform_w.keeps(row, key),
            "the uniform window reaches the key"
        );
    }
    // The answer: kept under the plan, lost under the uniform window.
    let s = &samples[0];
    let tokens = s.tokens();
    let span_of = LossSpan {
        tokens: &tokens,
        response: s.response_range(),
    };
    let dense = model.loss(&span_of, None).unwrap();
    let planned = model
        .loss_windows(&span_of, &|l, h| Some(plan.window(l, h, N)), &[])
        .unwrap();
    let flat = model
        .loss_windows(&span_of, &|_, _| Some(uniform_w), &[])
        .unwrap();
    assert!(dense < 0.5, "the constructed model answers (loss {dense})");
    assert!(
        planned < dense + 0.2,
        "plan loss {planned} vs dense {dense}"
    );
    assert!(flat > dense + 1.0, "uniform loss {flat} vs dense {dense}");

    // The diagnosis names the copy head: most key mass, a large ablation, reached by
    // the plan.
    let d = diagnose(
        &model,
        s,
        s.expected.needle_token.unwrap()..s.expected.needle_token.unwrap() + 1,
        plan,
        N,
        DiagnoseOptions {
            ablate: 2,
            restore_heads: 2,
            restore_layers: true,
        },
    )
    .unwrap();
    let top = &d.heads[0];
    assert_eq!((top.layer, top.q_head), (1, 0), "{:?}", &d.heads[..3]);
    assert!(top.attn_mass > 0.9, "{}", top.attn_mass);
    assert!(top.ablation.unwrap() > 1.0, "{:?}", top.ablation);
    assert!(top.reaches);
    assert!((d.plan_loss - planned).abs() < 1e-4);
    assert!((d.uniform_loss - flat).abs() < 1e-4);
}
