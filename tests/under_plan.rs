//! Profiling under a plan (`moa profile --under-plan`) on a model whose answer heads are
//! known by construction and **redundant**: layer 1, query heads 0 and 1 both copy the one
//! key token of the prompt, and either copy alone lets the output answer. At dense, cutting
//! one of them costs almost nothing (the other still copies), so a cost taken at dense
//! cannot see that cutting both loses the answer: the cause of the 25% plan's misses
//! (docs/CALIBRATION.md, "The 25% plan, session 9"). Under a plan that cuts both, each
//! one's cut is priced with the other already cut, and re-optimising from that profile
//! gives them spans that reach the key again, where the uniform window at the same density
//! does not.

use candle_core::DType;
use moa::calib::{CalibSample, Expected};
use moa::model::weights::LayerWeights;
use moa::model::{HostTensor, LlamaConfig, Weights};
use moa::optimize::{optimize, Near, Objective, OptimizeConfig};
use moa::plan::{HeadWindow, LayerRules, Meta, ModelShape, Plan, Rule, SpanSection, BETA_DEN};
use moa::profile::{profile_length, profile_length_under, GradModel, InfluenceProfile, LossSpan};
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
/// Layer 1's query heads 0..COPIES copy the key.
const COPIES: usize = 2;

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

/// Residual layout as in `tests/copy_head.rs`: 0 = bias, 1 = "is a key", 2..10 = key
/// identity, 10..18 = the key copied by the copy heads (both write the same dims), 18.. =
/// filler features.
fn redundant_copy_model() -> (LlamaConfig, Weights) {
    let mut rng = StdRng::seed_from_u64(7);
    let config = LlamaConfig {
        name: Some("two-copy-heads".into()),
        n_layers: 2,
        hidden_size: HIDDEN,
        ffn_size: FFN,
        q_heads: HEADS,
        kv_heads: HEADS,
        head_dim: HEAD_DIM,
        // The copy heads use the slowest RoPE pair, which barely turns over 512 tokens.
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
        let mut wq = rand(rng, &[q_dim, HIDDEN], 0.5);
        let mut wk = rand(rng, &[q_dim, HIDDEN], 0.5);
        let mut wv = rand(rng, &[q_dim, HIDDEN], 0.3);
        let mut wo = vec![0.0f32; HIDDEN * q_dim];
        let first_filler = if copy { COPIES * HEAD_DIM } else { 0 };
        for o in 18..HIDDEN {
            for i in first_filler..q_dim {
                wo[o * q_dim + i] = rng.random_range(-0.2..0.2);
            }
        }
        if copy {
            for h in 0..COPIES {
                let r0 = h * HEAD_DIM;
                for r in r0..r0 + HEAD_DIM {
                    for c in 0..HIDDEN {
                        wq.data[r * HIDDEN + c] = 0.0;
                        wk.data[r * HIDDEN + c] = 0.0;
                        wv.data[r * HIDDEN + c] = 0.0;
                    }
                }
                wq.data[(r0 + 3) * HIDDEN] = 3.0;
                wk.data[(r0 + 3) * HIDDEN + 1] = 3.0;
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
    // Strong enough that one copy alone answers with near certainty.
    let mut out = vec![0.0f32; VOCAB * HIDDEN];
    for k in 0..KEYS {
        out[k * HIDDEN + 10 + k] = 20.0;
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

/// Filler with the key at `key_pos`, ending with QUERY; the answer is the key.
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
        name: Some("two-copy-heads".into()),
        layers: 2,
        q_heads: HEADS as u32,
        kv_heads: HEADS as u32,
        head_dim: HEAD_DIM as u32,
        max_context_tokens: 1024,
    }
}

fn beta(num: u32) -> Rule {
    Rule {
        alpha: 0,
        beta_num: num,
    }
}

/// Every head dense except the copy heads, cut to N/4 (the start point a dense-priced
/// optimizer can reach: each copy head alone costs ~nothing).
fn plan_cutting_both_copies() -> Plan {
    let dense = beta(BETA_DEN);
    let layers = vec![
        LayerRules {
            rules: vec![dense; HEADS],
        },
        LayerRules {
            rules: (0..HEADS)
                .map(|h| {
                    if h < COPIES {
                        beta(BETA_DEN / 4)
                    } else {
                        dense
                    }
                })
                .collect(),
        },
    ];
    Plan::new(shape(), SpanSection::default(), Meta::default(), layers).unwrap()
}

/// Σ_qb cuts[qb, d] of one head at the window `d` blocks (64 tokens each) past the sink.
fn cut_at(p: &InfluenceProfile, layer: usize, head: usize, window: u32) -> f64 {
    let nb = p.n_blocks();
    let c = p.head_cuts(layer, head).unwrap();
    let d = (window / p.block_tokens) as usize;
    if d >= nb {
        return 0.0;
    }
    (0..nb).map(|qb| f64::from(c[qb * nb + d])).sum()
}

fn samples() -> Vec<CalibSample> {
    // Keys 330..440 tokens before the question: beyond N/4 and N/2 windows.
    (0..4)
        .map(|i| sample(i, 70 + 30 * i, N as usize - 1))
        .collect()
}

#[test]
fn a_dense_plan_gives_the_dense_profile() {
    let (config, weights) = redundant_copy_model();
    let model = GradModel::new(config, &weights, DType::F64).unwrap();
    let samples = samples();
    let refs: Vec<&CalibSample> = samples.iter().take(2).collect();
    let dense = profile_length(&model, &refs, N, 64, None, &mut |_| {}).unwrap();
    let all = Plan::dense(shape()).unwrap();
    let under =
        profile_length_under(&model, &refs, N, 64, None, 1.0, Some(&all), &mut |_| {}).unwrap();
    assert!(dense.under_plan.is_none());
    assert!(under.under_plan.as_deref().unwrap().starts_with("plan:"));
    let (a, b) = (&dense.cuts.unwrap().values, &under.cuts.unwrap().values);
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * scale,
            "cut #{i}: dense {x}, under a dense plan {y}"
        );
    }
}

#[test]
fn under_the_plan_the_redundant_heads_are_priced_and_restored() {
    let (config, weights) = redundant_copy_model();
    let model = GradModel::new(config, &weights, DType::F32).unwrap();
    let samples = samples();
    let refs: Vec<&CalibSample> = samples.iter().collect();
    let start = plan_cutting_both_copies();
    let cut_window = start.window(1, 0, N).window;

    // The construction: dense answers; either copy head alone answers; both cut do not.
    let s = &samples[0];
    let tokens = s.tokens();
    let span = LossSpan {
        tokens: &tokens,
        response: s.response_range(),
    };
    let loss_with =
        |w: &dyn Fn(usize, usize) -> Option<HeadWindow>| model.loss_windows(&span, w, &[]).unwrap();
    let dense_loss = loss_with(&|_, _| None);
    let one_cut = loss_with(&|l, h| (l == 1 && h == 0).then(|| start.window(1, 0, N)));
    let both_cut = loss_with(&|l, h| Some(start.window(l, h, N)));
    eprintln!(
        "loss: dense {dense_loss:.4}, one copy head cut {one_cut:.4}, both cut {both_cut:.4}"
    );
    assert!(dense_loss < 0.05, "dense loss {dense_loss}");
    assert!(one_cut < 0.05, "one copy head cut: loss {one_cut}");
    assert!(both_cut > 1.0, "both copy heads cut: loss {both_cut}");

    // At dense, each copy head's cut to the start plan's window costs ~nothing; under the
    // start plan it costs (to first order) a large part of the answer.
    let dense = profile_length(&model, &refs, N, 64, None, &mut |_| {}).unwrap();
    let under =
        profile_length_under(&model, &refs, N, 64, None, 1.0, Some(&start), &mut |_| {}).unwrap();
    for h in 0..COPIES {
        let (at_dense, at_plan) = (
            cut_at(&dense, 1, h, cut_window),
            cut_at(&under, 1, h, cut_window),
        );
        eprintln!("head 1.{h} cut to the start plan's window: cost at dense {at_dense:.5}, under the plan {at_plan:.4}");
        assert!(
            at_dense.abs() < 0.02,
            "head 1.{h}: cost at dense {at_dense}"
        );
        assert!(
            at_plan > 0.2 && at_plan > 20.0 * at_dense.abs(),
            "head 1.{h}: cost under the plan {at_plan}, at dense {at_dense}"
        );
    }

    // Re-optimised from the profile taken under the start plan, at the density the start
    // plan could have had (50%), the copy heads reach the key and the answer is back; the
    // uniform N/2 window loses it.
    let cfg = OptimizeConfig {
        model: Some(shape()),
        density_band: (0.45, 0.5),
        objective: Objective::Single { n_tokens: N },
        ..OptimizeConfig::default()
    };
    let result = optimize(&[under], &["under".into()], &cfg).unwrap();
    let plan = &result.plans[0].plan;
    assert!(
        result.plans[0]
            .plan
            .meta()
            .provenance
            .as_deref()
            .unwrap()
            .contains("taken under plan:"),
        "{:?}",
        plan.meta().provenance
    );
    let sp = SpanSection::default();
    let uniform = HeadWindow::new(beta(BETA_DEN / 2).span(N, &sp.params()), sp.sink_tokens);
    for s in &samples {
        let key = s.expected.needle_token.unwrap() as u64;
        let row = (s.response_span[0] - 1) as u64;
        assert!(
            (0..COPIES).any(|h| plan.window(1, h, N).keeps(row, key)),
            "no copy head reaches the key {} tokens back: {:?}",
            row - key,
            plan.layers()
        );
        assert!(!uniform.keeps(row, key));
    }
    let planned = loss_with(&|l, h| Some(plan.window(l, h, N)));
    let flat = loss_with(&|_, _| Some(uniform));
    eprintln!(
        "re-optimised spans of the copy heads {:?}; loss {planned:.4}, uniform N/2 {flat:.4}",
        (0..COPIES)
            .map(|h| plan.q_span(1, h, N))
            .collect::<Vec<_>>()
    );
    assert!(
        planned < dense_loss + 0.05,
        "re-optimised plan: loss {planned}"
    );
    assert!(flat > 1.0, "uniform N/2 window: loss {flat}");
}

#[test]
fn a_plan_of_another_shape_is_refused() {
    let (config, weights) = redundant_copy_model();
    let model = GradModel::new(config, &weights, DType::F32).unwrap();
    let samples = samples();
    let refs: Vec<&CalibSample> = samples.iter().take(1).collect();
    let mut other = shape();
    other.layers = 3;
    let plan = Plan::dense(other).unwrap();
    let e = profile_length_under(&model, &refs, N, 64, None, 1.0, Some(&plan), &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--under-plan") && e.contains("layers=3"), "{e}");
}

#[test]
fn profiles_of_one_length_average_and_keep_their_plan() {
    let with_cuts = |seed: u64, under: Option<&str>| {
        let p = InfluenceProfile::synthetic(shape(), N, 64, seed);
        let cuts: Vec<f32> = p.influence.iter().map(|v| v - 0.001).collect();
        let mut p = p.with_cuts(64, cuts).unwrap();
        p.under_plan = under.map(str::to_string);
        p
    };
    let (a, b) = (with_cuts(1, Some("plan:aaaa")), with_cuts(2, None));
    // The plan a profile was taken under survives the file.
    let dir = std::env::temp_dir().join(format!("moa-under-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("a.safetensors");
    a.save(&f).unwrap();
    assert_eq!(InfluenceProfile::load(&f).unwrap(), a);
    std::fs::remove_dir_all(&dir).unwrap();

    let m = InfluenceProfile::mean(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(m.under_plan.as_deref(), Some("plan:aaaa+dense"));
    let (ca, cb, cm) = (
        &a.cuts.as_ref().unwrap().values,
        &b.cuts.as_ref().unwrap().values,
        &m.cuts.as_ref().unwrap().values,
    );
    for i in [0, 17, cm.len() - 1] {
        assert!((cm[i] - (ca[i] + cb[i]) / 2.0).abs() < 1e-7);
        assert!((m.influence[i] - (a.influence[i] + b.influence[i]) / 2.0).abs() < 1e-7);
    }
    let other = with_cuts(3, None)
        .with_cuts(32, vec![0.0; a.influence.len()])
        .unwrap();
    let e = InfluenceProfile::mean(&[a, other]).unwrap_err();
    assert!(e.contains("cut sink"), "{e}");
}

#[test]
fn near_keeps_the_plan_within_max_changes() {
    // Two synthetic profiles: the plan optimised on the first is the near plan; the second
    // moves the optimum, and --max-changes bounds how far.
    let (a, b) = (
        InfluenceProfile::synthetic(shape(), N, 64, 1),
        InfluenceProfile::synthetic(shape(), N, 64, 9),
    );
    let cfg = OptimizeConfig {
        model: Some(shape()),
        density_band: (0.4, 0.5),
        objective: Objective::Single { n_tokens: N },
        ..OptimizeConfig::default()
    };
    let solve = |p: &InfluenceProfile, near: Option<Near>| {
        let cfg = OptimizeConfig {
            near,
            ..cfg.clone()
        };
        optimize(std::slice::from_ref(p), &[], &cfg).map(|r| r.plans[0].plan.clone())
    };
    let start = solve(&a, None).unwrap();
    let changed = |p: &Plan| {
        (0..2)
            .flat_map(|l| (0..HEADS).map(move |h| (l, h)))
            .filter(|&(l, h)| p.layers()[l].rules[h] != start.layers()[l].rules[h])
            .count()
    };
    let free = solve(&b, None).unwrap();
    for k in [0, 1, 2] {
        let near = solve(
            &b,
            Some(Near {
                plan: start.clone(),
                max_changes: k,
            }),
        )
        .unwrap();
        assert!(changed(&near) <= k, "{k}: {} changed", changed(&near));
        assert!(near
            .meta()
            .provenance
            .as_deref()
            .unwrap()
            .contains("near plan"));
    }
    eprintln!("units changed by the free optimum: {}", changed(&free));
    assert!(
        changed(&free) > 2,
        "the second profile should move the optimum further than 2 units"
    );
    let mut other = shape();
    other.layers = 3;
    let wrong = Plan::dense(other).unwrap();
    let e = solve(
        &b,
        Some(Near {
            plan: wrong,
            max_changes: 1,
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("near plan") && e.contains("layers=3"), "{e}");
}
