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
use moa::calib::CalibSample;
use moa::optimize::{optimize, Near, Objective, OptimizeConfig};
use moa::plan::{HeadWindow, LayerRules, Meta, Plan, Rule, SpanSection, BETA_DEN};
use moa::profile::{profile_length, profile_length_under, GradModel, InfluenceProfile, LossSpan};

mod common;

use common::copy_model::{copy_model, sample, shape, CopySpec, HEADS, N};

/// Layer 1's query heads 0..2 copy the key, strongly enough that one copy alone answers
/// with near certainty.
const MODEL: CopySpec = CopySpec {
    name: "two-copy-heads",
    seed: 7,
    copies: 2,
    score_gain: 3.0,
    out_gain: 20.0,
};

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
                    if h < MODEL.copies {
                        beta(BETA_DEN / 4)
                    } else {
                        dense
                    }
                })
                .collect(),
        },
    ];
    Plan::new(
        shape(MODEL.name),
        SpanSection::default(),
        Meta::default(),
        layers,
    )
    .unwrap()
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
    let (config, weights) = copy_model(&MODEL);
    let model = GradModel::new(config, &weights, DType::F64).unwrap();
    let samples = samples();
    let refs: Vec<&CalibSample> = samples.iter().take(2).collect();
    let dense = profile_length(&model, &refs, N, 64, None, &mut |_| {}).unwrap();
    let all = Plan::dense(shape(MODEL.name)).unwrap();
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
    let (config, weights) = copy_model(&MODEL);
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
    for h in 0..MODEL.copies {
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
        model: Some(shape(MODEL.name)),
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
            (0..MODEL.copies).any(|h| plan.window(1, h, N).keeps(row, key)),
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
        (0..MODEL.copies)
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
    let (config, weights) = copy_model(&MODEL);
    let model = GradModel::new(config, &weights, DType::F32).unwrap();
    let samples = samples();
    let refs: Vec<&CalibSample> = samples.iter().take(1).collect();
    let mut other = shape(MODEL.name);
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
        let p = InfluenceProfile::synthetic(shape(MODEL.name), N, 64, seed);
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
        InfluenceProfile::synthetic(shape(MODEL.name), N, 64, 1),
        InfluenceProfile::synthetic(shape(MODEL.name), N, 64, 9),
    );
    let cfg = OptimizeConfig {
        model: Some(shape(MODEL.name)),
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
    let mut other = shape(MODEL.name);
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
