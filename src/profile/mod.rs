//! Attention-influence profiling (upstream `scripts/pipeline/pipeline_profile.py`; docs/CALIBRATION.md): for each calibration sample and profile
//! length, the loss is the mean cross-entropy on the response tokens; G = ∂L/∂A for every
//! layer and query head comes from candle autograd (f32) on the CPU or, with the `cuda`
//! feature, on an NVIDIA GPU ([`device`]); the influence
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

#![warn(missing_docs)]

pub mod diagnose;
pub mod file;
pub mod influence;
pub mod model;
pub mod progress;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};

use crate::calib::CalibSample;
use crate::model::ModelError;
use crate::plan::Plan;
pub use file::{
    CutInfluence, InfluenceProfile, ProfileFileError, CUT_TENSOR, INFLUENCE_TENSOR, PROFILE_FORMAT,
    PROFILE_FORMAT_VERSION,
};
pub use model::{AttnEdit, GradModel, HeadMask, LayerAttention, LossSpan, PlanMasks, SeqContext};

/// Every failure of profiling and diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The forward or backward pass failed (candle, out of memory), or a model file.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Bad input (a sample too long for its length, an `--under-plan` plan of another shape,
    /// a bad `--device`, no samples at a length); the message names the value and what is
    /// allowed.
    #[error("{0}")]
    Invalid(String),
}

impl From<candle_core::Error> for ProfileError {
    fn from(e: candle_core::Error) -> Self {
        ProfileError::Model(ModelError::Candle(e))
    }
}

/// Sums of |ΔL| of one sample: `[layers, q_heads, nb, nb]` row-major (per-entry tiles, and
/// cut influence by query block and distance, [`influence::add_head_cuts`]), plus its loss.
pub struct SampleInfluence {
    /// `[layers, q_heads, nb, nb]`: Σ |ΔL_ij| of each `block × block`-token tile, query block
    /// by key block (upstream's 64 × 64 block sums; `nb = n_tokens / block`).
    pub tiles: Vec<f64>,
    /// `[layers, q_heads, nb, nb]`: signed cut influence by query block and distance in
    /// blocks ([`influence::add_head_cuts`]).
    pub cuts: Vec<f64>,
    /// The sample's response loss (mean cross-entropy, nats), under the plan's windows
    /// where the profile is taken under a plan.
    pub loss: f64,
}

/// The sink the cut influence keeps: the plans' default (`SpanSection::default()`), so
/// `moa optimize` can use the cuts for plans with that sink.
pub fn cut_sink_tokens() -> u32 {
    crate::plan::SpanSection::default().sink_tokens
}

/// The device for `--device NAME`: `cpu`, or `cuda` / `cuda:K` (GPU K) in a build with
/// the `cuda` feature (scripts/build-cuda-profiler.sh).
pub fn device(name: &str) -> Result<Device, ProfileError> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(k)) => k,
            _ => {
                return Err(ProfileError::Invalid(format!(
                    "--device `{name}`: expected cpu, cuda or cuda:K (K = GPU index)"
                )))
            }
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(ProfileError::Invalid(format!(
            "--device {name}: this moa was built without the `cuda` feature; build one with \
             scripts/build-cuda-profiler.sh"
        )));
    }
    Device::new_cuda(ordinal)
        .map_err(|e| ProfileError::Invalid(format!("--device {name}: no CUDA device: {e}")))
}

/// The walk for one sequence: forward keeping layer inputs, then layers L−1..0, each
/// giving its heads' A and G to `visit(layer, &LayerAttention)` (on the host). Returns
/// the loss.
pub fn walk_backward(
    model: &GradModel,
    span: &LossSpan,
    visit: &mut dyn FnMut(usize, &LayerAttention),
) -> Result<f64, ProfileError> {
    walk_backward_under(model, span, None, visit)
}

/// [`walk_backward`] with every head restricted to `masks` (a plan's windows): the loss and
/// G are those of the model under the plan, and the probabilities given to `visit` are the
/// causal (unmasked) rows of the same scores, so that the cut formula gives the change of
/// moving one head's window from the plan's to another ([`sample_influence_under`]).
pub fn walk_backward_under(
    model: &GradModel,
    span: &LossSpan,
    masks: Option<&PlanMasks>,
    visit: &mut dyn FnMut(usize, &LayerAttention),
) -> Result<f64, ProfileError> {
    walk_layers(model, span, masks, &mut |l, x, grad, ctx| {
        let (gx, attn) = model.layer_backward(l, x, grad, ctx)?;
        visit(l, &attn);
        Ok(gx)
    })
}

/// The backward step of one layer: (layer, its input, the gradient at its output,
/// context) → the gradient at its input.
type LayerStep<'a> =
    dyn FnMut(usize, &Tensor, &Tensor, &SeqContext) -> Result<Tensor, ModelError> + 'a;

/// Forward keeping layer inputs, the loss's gradient at the top, then `step` for layers
/// L−1..0. Returns the loss.
fn walk_layers(
    model: &GradModel,
    span: &LossSpan,
    masks: Option<&PlanMasks>,
    step: &mut LayerStep,
) -> Result<f64, ProfileError> {
    let ctx = model.context_under(span.tokens.len(), masks)?;
    let mut xs = model.forward_inputs(span.tokens, &ctx, None)?;
    let last = xs.pop().ok_or(ModelError::EmptyInput)?;
    let (mut grad, loss) = model.top_grad(&last, span)?;
    drop(last);
    for l in (0..model.config.n_layers).rev() {
        // The input of layer l is no longer needed once its step is done: pop it.
        let x = xs.pop().ok_or(ModelError::EmptyInput)?;
        grad = step(l, &x, &grad, &ctx)?;
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
    sample_influence_under(model, span, n_tokens, block, None)
}

/// [`sample_influence`] taken under a plan (`masks`: its windows at `n_tokens`): the
/// forward pass, the loss and G = ∂L/∂A are the model's with every head restricted to its
/// window, and the cut formula is applied to the causal rows P of the same scores. For a
/// row with kept set K_d = keys closer than d blocks (and the sink), linearising at the
/// plan's rows A gives `ΔL(plan → d) = Σ_{K_d} G·P / P(K_d) − Σ G·A`, so the stored
/// `cuts[qb, d]` = `(P_S·u − u_S)/(1 − P_S)` with u = Σ G·P (the dense formula on P)
/// equals `ΔL(plan → d) − ΔL(plan → dense)`: the loss of giving that head window d rather
/// than the whole row *while every other head keeps the plan's window*, which is 0 at
/// every d for a head the rows do not need and large for heads that only matter together.
/// With a dense plan it is [`sample_influence`]'s value (docs/CALIBRATION.md, "Cost under
/// the plan"). The per-entry tiles are the per-entry formula on (P, G).
pub fn sample_influence_under(
    model: &GradModel,
    span: &LossSpan,
    n_tokens: usize,
    block: usize,
    masks: Option<&PlanMasks>,
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
    let mut cuts = vec![0.0f64; tiles.len()];
    let sink = cut_sink_tokens() as usize;
    if !model.device.is_cpu() {
        // On a GPU the influence is summed there ([`influence::group_tiles_and_cuts`]):
        // copying every head's A and G to the host would move 2·L·H·T² floats per sample.
        let loss = walk_layers(model, span, masks, &mut |l, x, grad, ctx| {
            model.layer_backward_groups(l, x, grad, ctx, &mut |hs, a, g| {
                let (t, c) = influence::group_tiles_and_cuts(a, g, block, nb, sink)?;
                let off = (l * heads + hs.start) * nb * nb;
                tiles[off..off + t.len()].copy_from_slice(&t);
                cuts[off..off + c.len()].copy_from_slice(&c);
                Ok(())
            })
        })?;
        return Ok(SampleInfluence { tiles, cuts, loss });
    }
    let loss = walk_backward_under(model, span, masks, &mut |l, attn| {
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
            influence::add_head_cuts(
                &attn.probs[h],
                &attn.grads[h],
                t,
                block,
                nb,
                sink,
                false,
                &mut cuts[off..off + nb * nb],
            );
        }
    })?;
    Ok(SampleInfluence { tiles, cuts, loss })
}

/// What happened to one sample (for the progress bar and the timing table).
#[derive(Clone, Debug)]
pub struct SampleReport {
    /// The sample's [`CalibSample::id`].
    pub id: String,
    /// The profile length level N, in tokens.
    pub length: u32,
    /// The sample's token count (prompt and response).
    pub n_tokens: usize,
    /// NaN when the tiles were read from the store.
    pub loss: f64,
    /// Wall-clock time of this sample (read or computed).
    pub elapsed: Duration,
    /// Read from the store, not computed.
    pub cached: bool,
    /// Why a stored file of this sample's id was not read back but computed again and
    /// replaced (it holds another sample's tiles, or no fingerprint); `None` otherwise.
    pub replaced: Option<String>,
}

/// The fingerprint a stored sample's file records (metadata `sample`):
/// [`CalibSample::fingerprint`]. Why: the store is keyed by sample id (`passkey-1024-0`),
/// which every calibration of the same lengths repeats, so profiling another calibration
/// (another seed, model or source) into the same `-o` folder read the earlier
/// calibration's tiles back as this one's, without a word.
pub fn sample_fingerprint(s: &CalibSample) -> String {
    s.fingerprint()
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

/// Splits a length's samples into those the dense model answered right and those it did
/// not (`expected.correct`; `text` samples have no answer to get wrong and are always
/// kept). A wrong answer is still the loss target of its sample, so profiling it would
/// price the heads that lead to the wrong answer: `moa profile --drop-wrong` leaves such
/// samples out (docs/CALIBRATION.md, "The 25% plan, session 9").
pub fn split_wrong(samples: Vec<&CalibSample>) -> (Vec<&CalibSample>, Vec<&CalibSample>) {
    samples
        .into_iter()
        .partition(|s| s.task == "text" || s.expected.correct)
}

/// What [`profile_length`] tells its caller as it goes.
pub enum Event<'a> {
    /// About to profile this sample.
    Start(&'a CalibSample),
    /// The sample is profiled (or read from the store).
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
    profile_length_weighted(model, samples, length, block, store, 1.0, report)
}

/// [`profile_length`] with the `text` samples (running text, `moa calib --text-samples`)
/// weighted `text_weight` against 1 for every retrieval sample: the profile is
/// Σ w_s·tiles_s / Σ w_s, so the optimizer's objective is the retrieval loss plus
/// `text_weight` × (text samples / retrieval samples) × the language-model loss of long
/// text, without profiling more text samples (a stored sample is read back, so trying
/// several weights costs one average each; docs/CALIBRATION.md, "Perplexity").
/// `text_weight` must be finite and ≥ 0, and the weights must not all be 0.
pub fn profile_length_weighted(
    model: &GradModel,
    samples: &[&CalibSample],
    length: u32,
    block: u32,
    store: Option<&Path>,
    text_weight: f64,
    report: &mut dyn FnMut(Event),
) -> Result<InfluenceProfile, ProfileError> {
    profile_length_under(
        model,
        samples,
        length,
        block,
        store,
        text_weight,
        None,
        report,
    )
}

/// [`profile_length_weighted`] taken under `plan` ([`sample_influence_under`], the plan's
/// windows at `length`): `moa profile --under-plan`. The profile and every stored sample
/// record the plan (`under_plan`: [`crate::eval::masking_key`]); a stored sample
/// taken under another plan, or dense when a plan is given (or the reverse), is an error
/// naming its file rather than being mixed in. The plan must have the model's shape.
#[allow(clippy::too_many_arguments)]
pub fn profile_length_under(
    model: &GradModel,
    samples: &[&CalibSample],
    length: u32,
    block: u32,
    store: Option<&Path>,
    text_weight: f64,
    plan: Option<&Plan>,
    report: &mut dyn FnMut(Event),
) -> Result<InfluenceProfile, ProfileError> {
    let under = plan.map(|p| crate::eval::masking_key(Some(p)));
    let masks = match plan {
        None => None,
        Some(p) => {
            let (a, b) = (p.model(), model.config.model_shape());
            if (a.layers, a.q_heads, a.kv_heads, a.head_dim)
                != (b.layers, b.q_heads, b.kv_heads, b.head_dim)
            {
                return Err(ProfileError::Invalid(format!(
                    "--under-plan: the plan is for layers={} q_heads={} kv_heads={} head_dim={}, the model has layers={} q_heads={} kv_heads={} head_dim={}",
                    a.layers, a.q_heads, a.kv_heads, a.head_dim, b.layers, b.q_heads, b.kv_heads, b.head_dim
                )));
            }
            Some(PlanMasks::from_plan(p, length))
        }
    };
    if !(text_weight.is_finite() && text_weight >= 0.0) {
        return Err(ProfileError::Invalid(format!(
            "text weight {text_weight}: allowed a finite number ≥ 0"
        )));
    }
    let weight = |s: &CalibSample| if s.task == "text" { text_weight } else { 1.0 };
    let total_weight: f64 = samples.iter().map(|s| weight(s)).sum();
    if !samples.is_empty() && total_weight <= 0.0 {
        return Err(ProfileError::Invalid(format!(
            "every sample at length {length} has weight 0 (text weight 0 and only text samples)"
        )));
    }
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
    let sink = cut_sink_tokens();
    let mut sum: Option<Vec<f64>> = None;
    let mut cut_sum: Option<Vec<f64>> = None;
    for s in samples {
        let file = store.map(|d| sample_file(d, length, &s.id));
        let fingerprint = sample_fingerprint(s);
        let mut replaced = None;
        let cached = match &file {
            // A sample stored before cut influence existed is computed again.
            Some(f) if f.exists() && has_cuts(f, sink) => {
                let p =
                    InfluenceProfile::load(f).map_err(|e| ProfileError::Invalid(e.to_string()))?;
                if p.model != shape || p.n_tokens != length || p.block_tokens != block {
                    // Which of the three, with both values: "another model, length or block
                    // size" left a user who had only changed --block guessing.
                    let (a, b) = (&p.model, &shape);
                    let differs = if p.block_tokens != block {
                        format!(
                            "with --block {} and this run gives --block {block}",
                            p.block_tokens
                        )
                    } else if p.n_tokens != length {
                        format!("at length {} and this run profiles {length}", p.n_tokens)
                    } else {
                        format!(
                            "for a model of layers={} q_heads={} kv_heads={} head_dim={} and \
                             this model has layers={} q_heads={} kv_heads={} head_dim={}",
                            a.layers,
                            a.q_heads,
                            a.kv_heads,
                            a.head_dim,
                            b.layers,
                            b.q_heads,
                            b.kv_heads,
                            b.head_dim
                        )
                    };
                    return Err(ProfileError::Invalid(format!(
                        "`{}` was profiled {differs}: use another output folder, or delete \
                         its samples folder `{}` to profile again",
                        f.display(),
                        f.parent().and_then(Path::parent).unwrap_or(f).display()
                    )));
                }
                if p.under_plan != under {
                    return Err(ProfileError::Invalid(format!(
                        "`{}` was profiled under {} but this run profiles under {}: use another output folder or delete it",
                        f.display(),
                        p.under_plan.as_deref().unwrap_or("no plan (dense)"),
                        under.as_deref().unwrap_or("no plan (dense)"),
                    )));
                }
                match &p.sample {
                    Some(f) if *f == fingerprint => Some(p),
                    other => {
                        replaced = Some(match other {
                            Some(_) => format!(
                                "`{}` held the tiles of another sample with id `{}` (an earlier calibration's): computed again and replaced",
                                f.display(),
                                s.id
                            ),
                            None => format!(
                                "`{}` records no sample fingerprint (an older moa's), so it cannot be matched to this sample: computed again and replaced",
                                f.display()
                            ),
                        });
                        None
                    }
                }
            }
            _ => None,
        };
        let start = Instant::now();
        let (tiles, cuts, loss, was_cached) = match cached {
            Some(p) => {
                let cuts = p.cuts.map(|c| c.values).unwrap_or_default();
                (p.influence, cuts, f64::NAN, true)
            }
            None => {
                report(Event::Start(s));
                let tokens = s.tokens();
                let span = LossSpan {
                    tokens: &tokens,
                    response: s.response_range(),
                };
                let one = sample_influence_under(model, &span, n, b, masks.as_ref())?;
                let tiles: Vec<f32> = one.tiles.iter().map(|&v| v as f32).collect();
                let cuts: Vec<f32> = one.cuts.iter().map(|&v| v as f32).collect();
                if let Some(f) = &file {
                    save_sample(
                        f,
                        &shape,
                        length,
                        block,
                        &tiles,
                        &cuts,
                        under.as_deref(),
                        &fingerprint,
                    )?;
                }
                (tiles, cuts, one.loss, false)
            }
        };
        let w = weight(s);
        match &mut cut_sum {
            Some(acc) => acc
                .iter_mut()
                .zip(&cuts)
                .for_each(|(a, &v)| *a += w * f64::from(v)),
            None => cut_sum = Some(cuts.iter().map(|&v| w * f64::from(v)).collect()),
        }
        match &mut sum {
            Some(acc) => acc
                .iter_mut()
                .zip(&tiles)
                .for_each(|(a, &v)| *a += w * f64::from(v)),
            None => sum = Some(tiles.iter().map(|&v| w * f64::from(v)).collect()),
        }
        report(Event::Done(&SampleReport {
            id: s.id.clone(),
            length,
            n_tokens: s.n_tokens,
            loss,
            elapsed: start.elapsed(),
            cached: was_cached,
            replaced,
        }));
    }
    let count = total_weight;
    let mean = sum
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v / count) as f32)
        .collect();
    let cut_mean = cut_sum
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v / count) as f32)
        .collect();
    let mut p = InfluenceProfile::new(shape, length, block, mean)
        .and_then(|p| p.with_cuts(sink, cut_mean))
        .map_err(ProfileError::Invalid)?;
    p.under_plan = under;
    Ok(p)
}

/// Whether a stored sample has cut influence for `sink` (else it is profiled again).
fn has_cuts(file: &Path, sink: u32) -> bool {
    InfluenceProfile::load(file)
        .map(|p| p.cuts.is_some_and(|c| c.sink_tokens == sink))
        .unwrap_or(true)
}

/// Where [`profile_length`] keeps one sample's tiles.
pub fn sample_file(store: &Path, length: u32, id: &str) -> PathBuf {
    store
        .join(length.to_string())
        .join(format!("{id}.safetensors"))
}

#[allow(clippy::too_many_arguments)]
fn save_sample(
    file: &Path,
    shape: &crate::plan::ModelShape,
    length: u32,
    block: u32,
    tiles: &[f32],
    cuts: &[f32],
    under_plan: Option<&str>,
    fingerprint: &str,
) -> Result<(), ProfileError> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            ProfileError::Invalid(format!("cannot create `{}`: {e}", dir.display()))
        })?;
    }
    let mut p = InfluenceProfile::new(shape.clone(), length, block, tiles.to_vec())
        .and_then(|p| p.with_cuts(cut_sink_tokens(), cuts.to_vec()))
        .map_err(ProfileError::Invalid)?;
    p.under_plan = under_plan.map(str::to_string);
    p.sample = Some(fingerprint.to_string());
    // `save` writes a temporary of this writer's own and renames it: a killed process
    // leaves no half file that a later run would take for a finished sample, and two
    // processes profiling one sample into one store do not share a temporary (a fixed
    // `<id>.partial` did).
    p.save(file)
        .map_err(|e| ProfileError::Invalid(e.to_string()))
}

/// The output file name for one length (what `moa optimize --profile` is given).
pub fn profile_file_name(length: u32) -> String {
    format!("influence_{length}.safetensors")
}
