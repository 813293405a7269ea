//! Validation of plans (`moa validate`): the response loss of held-out calibration samples
//! under each plan's masks, against dense, on the CPU reference (f32).
//!
//! The loss is the one the profile was built from (cross-entropy of the dense model's own
//! answer, response tokens only; docs/CALIBRATION.md), so "validation loss − dense loss" is
//! what the optimizer tried to keep small, measured at a length it never saw. The sequence
//! length N that sizes each head's span is the sample's length level (what a request of that
//! size would get), never less than the sample's token count.

#![warn(missing_docs)]

mod cache;
pub mod gpu;
pub mod heatmap;
pub mod retrieval;
pub mod work;

pub use cache::{masking_key, ScoreCache};

use std::fmt::Write as _;

use crate::calib::CalibSample;
use crate::model::{CpuReference, Masking, ModelError};
use crate::plan::{stats::plan_stats, Plan};

/// One sample under one masking.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleScore {
    /// The sample's [`CalibSample::id`]; in a score-cache row, `<id>@<16 hex digits of
    /// its fingerprint>` ([`CalibSample::fingerprint`]), as [`validate`] writes it.
    pub sample_id: String,
    /// Mean cross-entropy (nats) over the response tokens.
    pub loss: f64,
    /// Response tokens whose argmax (teacher-forced) is the dense answer's token.
    pub agree: usize,
    /// Response tokens scored (the sample's response span).
    pub n_response: usize,
}

/// The sequence length N a sample is evaluated at (sizes every head's span).
pub fn sample_n(sample: &CalibSample) -> u32 {
    sample.length_level.max(sample.n_tokens as u32)
}

/// Scores one sample: `plan = None` is dense attention.
pub fn score_sample(
    reference: &CpuReference,
    sample: &CalibSample,
    plan: Option<&Plan>,
) -> Result<SampleScore, ModelError> {
    sample.check().map_err(ModelError::Invalid)?;
    let tokens = sample.tokens();
    let response = sample.response_range();
    // Token t is predicted by the logits of position t − 1.
    let rows = response.start - 1..response.end - 1;
    let masking = Masking::of(plan, sample_n(sample));
    let logits = reference.forward_rows(&tokens, masking, rows)?;
    let vocab = *logits.shape.last().unwrap_or(&0);
    Ok(response_score(
        &sample.id,
        &logits.data,
        vocab,
        &tokens[response],
    ))
}

/// −log softmax(row)\[target\], in f64 (log-sum-exp around the maximum).
pub fn cross_entropy(row: &[f32], target: usize) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + sum.ln() - row[target] as f64
}

/// A plan's (or dense's) scores over the held-out samples.
#[derive(Clone, Debug)]
pub struct PlanReport {
    /// `dense` or the plan's file name.
    pub name: String,
    /// GQA-native KV density at each sample's N, averaged (1 for dense).
    pub kv_density: f64,
    /// One score per sample scored so far, in sample order.
    pub scores: Vec<SampleScore>,
}

impl PlanReport {
    /// An empty report of `plan` (`None`: dense) over `samples`; the KV density is computed
    /// here ([`plan_stats`] at each sample's N, [`sample_n`]).
    pub fn new(name: String, plan: Option<&Plan>, samples: &[CalibSample]) -> PlanReport {
        let kv_density = match plan {
            Some(p) if !samples.is_empty() => {
                samples
                    .iter()
                    .map(|s| plan_stats(p, sample_n(s), 2).kv_density)
                    .sum::<f64>()
                    / samples.len() as f64
            }
            _ => 1.0,
        };
        PlanReport {
            name,
            kv_density,
            scores: Vec::new(),
        }
    }

    /// Mean of the samples' losses, in nats (NaN with no scores).
    pub fn mean_loss(&self) -> f64 {
        mean(self.scores.iter().map(|s| s.loss))
    }

    /// Fraction of response tokens, over all samples, where the plan's argmax is the dense
    /// answer's token.
    pub fn agreement(&self) -> f64 {
        let n: usize = self.scores.iter().map(|s| s.n_response).sum();
        let a: usize = self.scores.iter().map(|s| s.agree).sum();
        if n == 0 {
            0.0
        } else {
            a as f64 / n as f64
        }
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Index of the plan report with the lowest mean loss (ties: the first), skipping dense
/// (index 0 by convention is never special: callers pass plans only).
pub fn best(reports: &[PlanReport]) -> Option<usize> {
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.mean_loss().is_finite())
        .min_by(|a, b| a.1.mean_loss().total_cmp(&b.1.mean_loss()))
        .map(|(i, _)| i)
}

/// The validation table: one row per plan, loss and its excess over dense.
pub fn report_tsv(dense: &PlanReport, plans: &[PlanReport]) -> String {
    let mut out = String::from("plan\tkv_density\tmean_loss\tdelta_vs_dense\tagreement\tsamples\n");
    let base = dense.mean_loss();
    for r in std::iter::once(dense).chain(plans) {
        let _ = writeln!(
            out,
            "{}\t{:.4}\t{:.4}\t{:+.4}\t{:.3}\t{}",
            r.name,
            r.kv_density,
            r.mean_loss(),
            r.mean_loss() - base,
            r.agreement(),
            r.scores.len()
        );
    }
    out
}

/// What [`validate`] reports as it goes.
pub enum Event<'a> {
    /// About to score `sample` under `masking` (`dense` or a plan name).
    Start {
        /// `dense` or the plan's name.
        masking: &'a str,
        /// The sample about to be scored.
        sample: &'a CalibSample,
    },
    /// Scored (`cached`: taken from the cache, not computed).
    Done {
        /// `dense` or the plan's name.
        masking: &'a str,
        /// The sample's score.
        score: &'a SampleScore,
        /// Taken from the score cache, not computed.
        cached: bool,
    },
}

/// Scores one sample under one masking (`None`: dense): the CPU reference
/// ([`score_sample`]) or the GPU runtime (`moa validate --gpu`).
pub type Scorer<'a> =
    dyn FnMut(&CalibSample, Option<&Plan>) -> Result<SampleScore, ValidateError> + 'a;

/// Scores dense and every plan on every sample, taking what the cache already has and
/// recording what it computes. `backend` names the scorer in the cache keys (scores of the
/// CPU reference and of the GPU runtime differ in the last digits). Plans are scored one
/// after the other, all samples each, so a scorer can keep one plan's state. Returns
/// (dense, plans in the given order).
pub fn validate(
    samples: &[CalibSample],
    plans: &[(String, Plan)],
    backend: &str,
    cache: &mut ScoreCache,
    score: &mut Scorer,
    report: &mut dyn FnMut(Event),
) -> Result<(PlanReport, Vec<PlanReport>), ValidateError> {
    let mut run = |name: &str, plan: Option<&Plan>| -> Result<PlanReport, ValidateError> {
        let key = format!("{backend}:{}", masking_key(plan));
        let mut r = PlanReport::new(name.to_string(), plan, samples);
        for s in samples {
            // The sample's id and fingerprint: ids repeat across calibrations (a held-out
            // file made again with another seed has the same `passkey-4096-0`), and a
            // cache keyed by the id alone gave the earlier file's scores as this one's.
            let cache_id = format!("{}@{}", s.id, &s.fingerprint()[..16]);
            if let Some(cached) = cache.get(&key, &cache_id) {
                let cached = SampleScore {
                    sample_id: s.id.clone(),
                    ..cached.clone()
                };
                report(Event::Done {
                    masking: name,
                    score: &cached,
                    cached: true,
                });
                r.scores.push(cached);
                continue;
            }
            report(Event::Start {
                masking: name,
                sample: s,
            });
            let one = score(s, plan)?;
            let row = SampleScore {
                sample_id: cache_id,
                ..one.clone()
            };
            cache.put(&key, row).map_err(ValidateError::Cache)?;
            report(Event::Done {
                masking: name,
                score: &one,
                cached: false,
            });
            r.scores.push(one);
        }
        Ok(r)
    };
    let dense = run("dense", None)?;
    let mut out = Vec::with_capacity(plans.len());
    for (name, plan) in plans {
        out.push(run(name, Some(plan))?);
    }
    Ok((dense, out))
}

/// Mean cross-entropy and argmax agreement of `targets` under `logits` (one row per
/// target, `vocab` wide).
pub fn response_score(
    sample_id: &str,
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
) -> SampleScore {
    let mut loss = 0.0;
    let mut agree = 0;
    for (row, &target) in logits.chunks_exact(vocab).zip(targets) {
        loss += cross_entropy(row, target as usize);
        if crate::model::reference::argmax(row) == target {
            agree += 1;
        }
    }
    SampleScore {
        sample_id: sample_id.to_string(),
        loss: loss / targets.len().max(1) as f64,
        agree,
        n_response: targets.len(),
    }
}

/// Every failure of [`validate`] and of scoring one sample.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The CPU reference forward pass failed, or a sample is malformed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The GPU engine failed (`moa validate --gpu`).
    #[error(transparent)]
    Engine(#[from] crate::runtime::engine::EngineError),
    /// The score cache could not be written; the message names the file.
    #[error("score cache: {0}")]
    Cache(String),
}
