//! Attention-influence profiling (moa.md §3): for each calibration sample and profile
//! length, the loss is the mean cross-entropy on the response tokens; G = ∂L/∂A for every
//! layer and query head comes from candle autograd on the CPU (f32); the influence
//! |ΔL_ij| ([`influence`]) is summed into block×block tiles and averaged over samples; one
//! [`InfluenceProfile`] per length is what `moa optimize` reads.
//!
//! Memory is bounded by one layer ([`model`]): the forward pass keeps the hidden states
//! between layers only; the backward walk recomputes layer l from its input and back-
//! propagates the gradient that arrived from layer l + 1.
//!
//! Sample selection (docs/CALIBRATION.md): a length N uses the samples built for it
//! (`length_level == N`); a sample longer than N is skipped (as upstream does), a shorter
//! one fills the top-left tiles (upstream pads after the response, where G = 0, so the
//! tiles are the same). The mean divides by the number of samples used.

pub mod influence;
pub mod model;
pub mod progress;
pub mod summary;

use std::time::{Duration, Instant};

use candle_core::DType;

use crate::calib::CalibSample;
use crate::model::ModelError;
use crate::optimize::InfluenceProfile;
pub use model::{AttnEdit, GradModel, LayerAttention, LossSpan};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Invalid(String),
}

impl From<candle_core::Error> for ProfileError {
    fn from(e: candle_core::Error) -> Self {
        ProfileError::Model(ModelError::Candle(e))
    }
}

/// Sums of |ΔL| of one sample: `[layers, q_heads, nb, nb]` row-major, plus its loss.
pub struct SampleInfluence {
    pub tiles: Vec<f64>,
    pub loss: f64,
}

/// The walk for one sequence: forward keeping layer inputs, then layers L−1..0, each
/// giving its heads' A and G to `visit(layer, &LayerAttention)`. Returns the loss.
pub fn walk_backward(
    model: &GradModel,
    span: &LossSpan,
    visit: &mut dyn FnMut(usize, &LayerAttention),
) -> Result<f64, ProfileError> {
    let ctx = model.context(span.tokens.len())?;
    let mut xs = model.forward_inputs(span.tokens, &ctx, None)?;
    let last = xs.pop().ok_or(ModelError::EmptyInput)?;
    let (mut grad, loss) = model.top_grad(&last, span)?;
    drop(last);
    for l in (0..model.config.n_layers).rev() {
        // The input of layer l is no longer needed once its step is done: pop it.
        let x = xs.pop().ok_or(ModelError::EmptyInput)?;
        let (gx, attn) = model.layer_backward(l, &x, &grad, &ctx)?;
        visit(l, &attn);
        grad = gx;
    }
    Ok(loss)
}

/// The tile sums of one sample at profile length `n_tokens` (the sample must fit).
pub fn sample_influence(
    model: &GradModel,
    span: &LossSpan,
    n_tokens: usize,
    block: usize,
) -> Result<SampleInfluence, ProfileError> {
    let t = span.tokens.len();
    if block == 0 || !n_tokens.is_multiple_of(block) || t > n_tokens {
        return Err(ProfileError::Invalid(format!(
            "a {t}-token sample does not fit length {n_tokens} in blocks of {block}"
        )));
    }
    let nb = n_tokens / block;
    let heads = model.config.q_heads;
    let mut tiles = vec![0.0f64; model.config.n_layers * heads * nb * nb];
    let loss = walk_backward(model, span, &mut |l, attn| {
        for h in 0..heads {
            let off = (l * heads + h) * nb * nb;
            influence::add_head_tiles(
                &attn.probs[h],
                &attn.grads[h],
                t,
                block,
                nb,
                &mut tiles[off..off + nb * nb],
            );
        }
    })?;
    Ok(SampleInfluence { tiles, loss })
}

/// What happened to one sample (for the progress bar and the timing table).
#[derive(Clone, Debug)]
pub struct SampleReport {
    pub id: String,
    pub length: u32,
    pub n_tokens: usize,
    pub loss: f64,
    pub elapsed: Duration,
}

/// The samples profiled at `length` and the number skipped for being longer.
pub fn select(
    samples: &[CalibSample],
    length: u32,
    max_samples: Option<usize>,
) -> (Vec<&CalibSample>, usize) {
    let level: Vec<&CalibSample> = samples
        .iter()
        .filter(|s| s.length_level == length)
        .collect();
    let skipped = level
        .iter()
        .filter(|s| s.n_tokens > length as usize)
        .count();
    let mut used: Vec<&CalibSample> = level
        .into_iter()
        .filter(|s| s.n_tokens <= length as usize)
        .collect();
    if let Some(k) = max_samples {
        used.truncate(k);
    }
    (used, skipped)
}

/// What [`profile_length`] tells its caller as it goes.
pub enum Event<'a> {
    Start(&'a CalibSample),
    Done(&'a SampleReport),
}

/// Profiles `samples` at one length: the mean of their tile sums as an
/// [`InfluenceProfile`]. `report` is called before and after each sample.
pub fn profile_length(
    model: &GradModel,
    samples: &[&CalibSample],
    length: u32,
    block: u32,
    report: &mut dyn FnMut(Event),
) -> Result<InfluenceProfile, ProfileError> {
    if model.dtype != DType::F32 && model.dtype != DType::F64 {
        return Err(ProfileError::Invalid("profile in f32 or f64".into()));
    }
    if samples.is_empty() {
        return Err(ProfileError::Invalid(format!(
            "no calibration sample for length {length} (samples are used at the length they \
             were built for: run `moa calib` with this length in --lengths)"
        )));
    }
    let (n, b) = (length as usize, block as usize);
    let mut sum: Option<Vec<f64>> = None;
    for s in samples {
        report(Event::Start(s));
        let start = Instant::now();
        let tokens = s.tokens();
        let span = LossSpan {
            tokens: &tokens,
            response: s.response_range(),
        };
        let one = sample_influence(model, &span, n, b)?;
        match &mut sum {
            Some(acc) => acc.iter_mut().zip(&one.tiles).for_each(|(a, v)| *a += v),
            None => sum = Some(one.tiles),
        }
        report(Event::Done(&SampleReport {
            id: s.id.clone(),
            length,
            n_tokens: s.n_tokens,
            loss: one.loss,
            elapsed: start.elapsed(),
        }));
    }
    let count = samples.len() as f64;
    let mean = sum
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v / count) as f32)
        .collect();
    InfluenceProfile::new(model.config.model_shape(), length, block, mean)
        .map_err(ProfileError::Invalid)
}

/// The output file name for one length (what `moa optimize --profile` is given).
pub fn profile_file_name(length: u32) -> String {
    format!("influence_{length}.safetensors")
}
