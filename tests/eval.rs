//! Validation scores: the GPU runtime (teacher-forced through the plan's generated kernels
//! on wgpu; lavapipe in CI) gives the CPU reference's response loss, dense and sparse, and
//! the plan's masks change that loss (or the comparison proves nothing).

mod common;

use common::samples::sample;
use common::tiny::{self, tiny};
use moa::eval::{self, gpu::GpuScorer};
use moa::model::{CpuReference, Model};
use moa::runtime::wgpu::WgpuContext;

#[test]
fn gpu_scores_match_the_cpu_reference() {
    let dir = tiny::tmp("eval-gpu");
    let path = dir.join("tiny.gguf");
    tiny(41, true).write_gguf(&path, |_, _| {});
    let model = Model::load(&path).unwrap();
    let plan = tiny::sparse_plan();
    // Ragged lengths; N (the level) above the token count, as for real samples.
    let samples = [
        sample("a", tiny::tokens(40, 1), 6, 48),
        sample("b", tiny::tokens(23, 2), 1, 32),
    ];
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required");
    let mut gpu = GpuScorer::new(&ctx, &model, true);
    let cpu = CpuReference::from_model(model.clone()).unwrap();
    for s in &samples {
        let mut losses = Vec::new();
        for p in [None, Some(&plan)] {
            let want = eval::score_sample(&cpu, s, p).unwrap();
            let got = gpu.score(s, p).unwrap();
            assert_eq!(got.n_response, s.response_tokens.len());
            assert!(
                (got.loss - want.loss).abs() < 1e-3,
                "{} plan {}: gpu {} cpu {}",
                s.id,
                p.is_some(),
                got.loss,
                want.loss
            );
            assert_eq!(got.agree, want.agree, "{}", s.id);
            losses.push(want.loss);
        }
        assert!(
            (losses[0] - losses[1]).abs() > 1e-2,
            "{}: the plan does not change the loss",
            s.id
        );
    }
    // The same masking twice in a row reuses the engine built for it: the same answer.
    let again = [
        gpu.score(&samples[0], Some(&plan)).unwrap(),
        gpu.score(&samples[0], Some(&plan)).unwrap(),
    ];
    assert_eq!(again[0].loss, again[1].loss);
    assert_eq!(again[0].agree, again[1].agree);
}
