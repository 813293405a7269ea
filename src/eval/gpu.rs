//! Scoring on the GPU runtime: the plan's compiled attention kernels, teacher-forced.
//!
//! The prompt is prefilled (its last logits predict the first response token), then each
//! response token but the last is fed as a decode step (its logits predict the next one),
//! so the loss is the one the CPU reference gives, computed by the kernels that will serve
//! the plan, in the runtime's storage type. N is the sample's N ([`super::sample_n`]), as a
//! request of that length would get. On an H200 (Vulkan) a 4k-token sample takes well under
//! a second, where the CPU reference needs about a minute.

use super::{masking_key, response_score, sample_n, SampleScore, ValidateError};
use crate::calib::CalibSample;
use crate::model::Model;
use crate::plan::Plan;
use crate::runtime::llama::{EngineError, GpuLlama};
use crate::runtime::wgpu::WgpuContext;

/// Keeps the engine of the plan being scored (samples come plan by plan).
pub struct GpuScorer<'a> {
    ctx: &'a WgpuContext,
    model: &'a Model,
    force_f32: bool,
    current: Option<(String, GpuLlama)>,
}

impl<'a> GpuScorer<'a> {
    pub fn new(ctx: &'a WgpuContext, model: &'a Model, force_f32: bool) -> Self {
        GpuScorer {
            ctx,
            model,
            force_f32,
            current: None,
        }
    }

    /// The cache's backend name: `gpu-f16` or `gpu-f32` (the storage type changes the
    /// last digits of the loss).
    pub fn backend(&self) -> Result<String, EngineError> {
        let engine = GpuLlama::new(self.ctx, self.model, None, self.force_f32)?;
        Ok(format!("gpu-{}", engine.storage().name()))
    }

    pub fn score(
        &mut self,
        sample: &CalibSample,
        plan: Option<&Plan>,
    ) -> Result<SampleScore, ValidateError> {
        sample.check().map_err(crate::model::ModelError::Invalid)?;
        let key = masking_key(plan);
        if self.current.as_ref().map(|(k, _)| k) != Some(&key) {
            // Drop the old engine first: two models' buffers need not fit together.
            self.current = None;
            let engine = GpuLlama::new(self.ctx, self.model, plan, self.force_f32)?;
            self.current = Some((key, engine));
        }
        let Some((_, gpu)) = &self.current else {
            unreachable!("the engine was just built");
        };
        let prompt = &sample.prompt_tokens;
        let response = &sample.response_tokens;
        let n = sample_n(sample) as usize;
        let mut req = gpu.start(&[prompt.len()], n - prompt.len(), 0)?;
        let mut logits = gpu
            .prefill_logits(&mut req, std::slice::from_ref(prompt))?
            .remove(0);
        for &t in &response[..response.len() - 1] {
            logits.extend(gpu.decode_logits(&mut req, &[t])?.remove(0));
        }
        Ok(response_score(
            &sample.id,
            &logits,
            self.model.config.vocab_size,
            response,
        ))
    }
}
