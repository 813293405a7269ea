//! The pipeline on a model whose answer head is known by construction: layer 1, query
//! head 0 copies the one "key" token of the prompt, however far back it is, and the output
//! layer reads the copied key. Profiling + optimizing at 50% density must give that head a
//! span that reaches the key, where a uniform N/2 window does not (and loses the answer);
//! `moa diagnose`'s analysis must name that head.

use candle_core::DType;
use moa::calib::CalibSample;
use moa::optimize::{optimize, Objective, OptimizeConfig};
use moa::plan::{HeadWindow, Plan, Rule, SpanSection, BETA_DEN};
use moa::profile::diagnose::{diagnose, DiagnoseOptions};
use moa::profile::{profile_length, GradModel, LossSpan};

mod common;

use common::copy_model::{copy_model, sample, shape, CopySpec, N};

/// One copy head, a softer score and output than tests/under_plan.rs's two.
const MODEL: CopySpec = CopySpec {
    name: "copy-head",
    seed: 11,
    copies: 1,
    score_gain: 2.5,
    out_gain: 6.0,
};

#[test]
fn pipeline_keeps_the_copy_head_long_and_the_uniform_window_loses_it() {
    let (config, weights) = copy_model(&MODEL);
    let model = GradModel::new(config, &weights, DType::F32).unwrap();
    // Keys 330..440 tokens before the question: beyond a uniform N/2 window.
    let samples: Vec<CalibSample> = (0..6)
        .map(|i| sample(i, 70 + 20 * i, N as usize - 1))
        .collect();
    let refs: Vec<&CalibSample> = samples.iter().collect();
    let profile = profile_length(&model, &refs, N, 64, None, &mut |_| {}).unwrap();
    let cfg = OptimizeConfig {
        model: Some(shape(MODEL.name)),
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
