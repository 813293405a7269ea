//! Scoring on the GPU runtime: the plan's compiled attention kernels, teacher-forced.
//!
//! The prompt is prefilled (its last logits predict the first response token), then each
//! response token but the last is fed as a decode step (its logits predict the next one),
//! so the loss is the one the CPU reference gives, computed by the kernels that will serve
//! the plan, in the runtime's storage type. N is the sample's N ([`super::sample_n`]), as a
//! request of that length would get. On an H200 (Vulkan) a 4k-token sample takes well under
//! a second, where the CPU reference needs about a minute.

#![warn(missing_docs)]

use super::{masking_key, response_score, sample_n, SampleScore, ValidateError};
use crate::calib::CalibSample;
use crate::model::Model;
use crate::plan::Plan;
use crate::runtime::cuda::engine::CudaLlama;
use crate::runtime::engine::{Engine, EngineError, Sampling};
use crate::runtime::wgpu::WgpuContext;
use crate::runtime::wgpu_engine::WgpuEngine;

/// Keeps the engine of the plan being scored (samples come plan by plan).
pub struct GpuScorer<'a> {
    ctx: &'a WgpuContext,
    model: &'a Model,
    force_f32: bool,
    current: Option<(String, WgpuEngine)>,
}

impl<'a> GpuScorer<'a> {
    /// A scorer on `ctx` for `model`, in f32 storage when `force_f32`, else the engine's
    /// default storage type. Builds no engine yet.
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
        let engine = WgpuEngine::new(self.ctx, self.model, None, self.force_f32)?;
        Ok(format!("gpu-{}", engine.storage().name()))
    }

    /// Teacher-forced score of `sample` under `plan` (`None`: dense) on the GPU, at N =
    /// [`sample_n`]; the engine is rebuilt only when the plan changes. Errors:
    /// [`ValidateError::Model`] for a malformed sample, [`ValidateError::Engine`] for the engine.
    pub fn score(
        &mut self,
        sample: &CalibSample,
        plan: Option<&Plan>,
    ) -> Result<SampleScore, ValidateError> {
        sample.check().map_err(crate::model::ModelError::Invalid)?;
        let key = masking_key(plan);
        let gpu = match self.current.take() {
            Some((k, engine)) if k == key => &self.current.insert((k, engine)).1,
            old => {
                // Drop the old engine first: two models' buffers need not fit together.
                drop(old);
                let engine = WgpuEngine::new(self.ctx, self.model, plan, self.force_f32)?;
                &self.current.insert((key, engine)).1
            }
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

/// Greedy answers of one batch of prompts through `gpu` (`max_new` tokens each, no stop):
/// one prefill of every row, then decode steps; N = longest prompt + `max_new`.
pub fn greedy_batch(
    gpu: &dyn Engine,
    prompts: &[Vec<u32>],
    max_new: usize,
) -> Result<Vec<Vec<u32>>, EngineError> {
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut req = gpu.start(&lens, max_new, 0)?;
    let greedy = Sampling::greedy();
    let mut next = gpu.prefill_tokens(&mut req, prompts, greedy)?;
    let mut out: Vec<Vec<u32>> = next.iter().map(|&t| vec![t]).collect();
    for _ in 1..max_new {
        next = gpu.decode_tokens(&mut req, &next, greedy)?;
        for (o, &t) in out.iter_mut().zip(&next) {
            o.push(t);
        }
    }
    Ok(out)
}

/// Teacher-forced cross-entropy of the last `scored` tokens of every window (all windows
/// the same length): prefill `window[..len − scored]`, then feed the window's tokens one
/// decode step at a time. Returns (summed nats, scored tokens).
pub fn window_nats(
    gpu: &dyn Engine,
    windows: &[Vec<u32>],
    scored: usize,
    vocab: usize,
) -> Result<(f64, usize), EngineError> {
    let per = window_token_nats(gpu, windows, scored, vocab)?;
    let sum = per.iter().flatten().map(|&x| f64::from(x)).sum();
    Ok((sum, scored * windows.len()))
}

/// The one length of perplexity `windows` that score their last `scored` tokens: an
/// error unless they share it and it is above `scored` (and `scored` above 0). Every
/// window scorer's first check (the GPU paths here, `moa eval`'s CPU reference).
pub fn window_len(windows: &[Vec<u32>], scored: usize) -> Result<usize, EngineError> {
    let len = windows.first().map_or(0, Vec::len);
    if scored == 0 || scored >= len || windows.iter().any(|w| w.len() != len) {
        return Err(EngineError::Input(format!(
            "perplexity windows must share one length above the scored tokens ({scored})"
        )));
    }
    Ok(len)
}

/// [`window_nats`] per token: `[windows][scored]` cross-entropies (nats) of the scored
/// tokens in order, so a plan's loss can be compared with dense token by token (paired
/// differences, by position, by whether the token repeats earlier text).
pub fn window_token_nats(
    gpu: &dyn Engine,
    windows: &[Vec<u32>],
    scored: usize,
    vocab: usize,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let len = window_len(windows, scored)?;
    let ctx = len - scored;
    let prompts: Vec<Vec<u32>> = windows.iter().map(|w| w[..ctx].to_vec()).collect();
    let mut req = gpu.start(&vec![ctx; windows.len()], scored, 0)?;
    let mut logits = gpu.prefill_logits(&mut req, &prompts)?;
    let mut out = vec![Vec::with_capacity(scored); windows.len()];
    for i in ctx..len {
        for ((row, w), o) in logits.iter().zip(windows).zip(out.iter_mut()) {
            o.push(super::cross_entropy(&row[..vocab], w[i] as usize) as f32);
        }
        if i + 1 < len {
            let feed: Vec<u32> = windows.iter().map(|w| w[i]).collect();
            logits = gpu.decode_logits(&mut req, &feed)?;
        }
    }
    Ok(out)
}

/// [`window_token_nats`] from one prefill per window and no decode steps, through the CUDA
/// engine's [`CudaLlama::prefill_positions_logits`]: window w[..len − 1] is prefilled at
/// N = len (what the decode path's request gets: `ctx` prompt tokens + `scored` new ones),
/// and the logits at positions `len − scored − 1 .. len − 1` score the last `scored`
/// tokens. Same masks, same N, same cross-entropy as the decode path, so the nats agree up
/// to the storage type's rounding in the two kernels (`tests/cuda_engine.rs` checks it); on
/// the H200 8 windows × 512 scored tokens take one prefill of 32k tokens instead of 512
/// decode steps.
pub fn window_token_nats_prefill(
    gpu: &CudaLlama,
    windows: &[Vec<u32>],
    scored: usize,
    vocab: usize,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let len = window_len(windows, scored)?;
    for w in windows {
        // The last token is only a target, never fed: checked here, so no thread below
        // can index past the logits.
        crate::runtime::engine::check_ids(w, vocab, "perplexity window")?;
    }
    let prompts: Vec<Vec<u32>> = windows.iter().map(|w| w[..len - 1].to_vec()).collect();
    let mut req = gpu.start(&vec![len - 1; windows.len()], 1, 0)?;
    let from = vec![len - 1 - scored; windows.len()];
    let mut out = vec![Vec::with_capacity(scored); windows.len()];
    gpu.prefill_positions_logits(&mut req, &prompts, &from, &mut |pairs, logits| {
        // The host's share: one log-sum-exp over the vocabulary per position, on every
        // core (SmolLM2: 49k exponentials a token).
        if logits.len() != pairs.len() * vocab {
            return Err(EngineError::Input(format!(
                "the perplexity got {} logits for {} positions of a {vocab}-token vocabulary",
                logits.len(),
                pairs.len()
            )));
        }
        let nats: Vec<f32> = {
            use rayon::prelude::*;
            pairs
                .par_iter()
                .zip(logits.par_chunks_exact(vocab))
                .map(|(&(row, pos), l)| {
                    super::cross_entropy(l, windows[row][pos + 1] as usize) as f32
                })
                .collect()
        };
        for (&(row, _), x) in pairs.iter().zip(nats) {
            out[row].push(x);
        }
        Ok(())
    })?;
    Ok(out)
}
