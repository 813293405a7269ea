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

use std::path::{Path, PathBuf};
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
    /// NaN when the tiles were read from the store.
    pub loss: f64,
    pub elapsed: Duration,
    /// Read from the store, not computed.
    pub cached: bool,
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
///
/// With `store`, each sample's tiles are kept as `<store>/<length>/<id>.safetensors` and a
/// sample whose file is there is not recomputed: an interrupted run resumes, and several
/// processes can profile disjoint shards of the samples into one store (a 4k-token sample
/// costs about 15 minutes on two cores). Tiles go through f32 either way, so the mean is
/// the same whether a sample was computed now or read back.
pub fn profile_length(
    model: &GradModel,
    samples: &[&CalibSample],
    length: u32,
    block: u32,
    store: Option<&Path>,
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
    let shape = model.config.model_shape();
    let mut sum: Option<Vec<f64>> = None;
    for s in samples {
        let file = store.map(|d| sample_file(d, length, &s.id));
        let cached = match &file {
            Some(f) if f.exists() => {
                let p =
                    InfluenceProfile::load(f).map_err(|e| ProfileError::Invalid(e.to_string()))?;
                if p.model != shape || p.n_tokens != length || p.block_tokens != block {
                    return Err(ProfileError::Invalid(format!(
                        "`{}` was profiled for another model, length or block size: delete it",
                        f.display()
                    )));
                }
                Some(p)
            }
            _ => None,
        };
        let start = Instant::now();
        let (tiles, loss, was_cached) = match cached {
            Some(p) => (p.influence, f64::NAN, true),
            None => {
                report(Event::Start(s));
                let tokens = s.tokens();
                let span = LossSpan {
                    tokens: &tokens,
                    response: s.response_range(),
                };
                let one = sample_influence(model, &span, n, b)?;
                let tiles: Vec<f32> = one.tiles.iter().map(|&v| v as f32).collect();
                if let Some(f) = &file {
                    save_sample(f, &shape, length, block, &tiles)?;
                }
                (tiles, one.loss, false)
            }
        };
        match &mut sum {
            Some(acc) => acc
                .iter_mut()
                .zip(&tiles)
                .for_each(|(a, &v)| *a += f64::from(v)),
            None => sum = Some(tiles.iter().map(|&v| f64::from(v)).collect()),
        }
        report(Event::Done(&SampleReport {
            id: s.id.clone(),
            length,
            n_tokens: s.n_tokens,
            loss,
            elapsed: start.elapsed(),
            cached: was_cached,
        }));
    }
    let count = samples.len() as f64;
    let mean = sum
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v / count) as f32)
        .collect();
    InfluenceProfile::new(shape, length, block, mean).map_err(ProfileError::Invalid)
}

/// Where [`profile_length`] keeps one sample's tiles.
pub fn sample_file(store: &Path, length: u32, id: &str) -> PathBuf {
    store
        .join(length.to_string())
        .join(format!("{id}.safetensors"))
}

fn save_sample(
    file: &Path,
    shape: &crate::plan::ModelShape,
    length: u32,
    block: u32,
    tiles: &[f32],
) -> Result<(), ProfileError> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            ProfileError::Invalid(format!("cannot create `{}`: {e}", dir.display()))
        })?;
    }
    let p = InfluenceProfile::new(shape.clone(), length, block, tiles.to_vec())
        .map_err(ProfileError::Invalid)?;
    // Written under another name, then renamed: a killed process leaves no half file
    // that a later run would take for a finished sample.
    let tmp = file.with_extension("partial");
    p.save(&tmp)
        .map_err(|e| ProfileError::Invalid(e.to_string()))?;
    std::fs::rename(&tmp, file)
        .map_err(|e| ProfileError::Invalid(format!("cannot write `{}`: {e}", file.display())))
}

/// The output file name for one length (what `moa optimize --profile` is given).
pub fn profile_file_name(length: u32) -> String {
    format!("influence_{length}.safetensors")
}
