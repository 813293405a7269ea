//! End-to-end measurements of the CUDA engine (`moa bench`) and its parity check against
//! the CPU reference and the wgpu engine.
//!
//! Decode roofline: a step must read every weight once and every K/V slot its rows see
//! (the work list's written slots, K and V), so its least time is
//! `(weight bytes + KV bytes read) / copy bandwidth`, the bandwidth measured in the same
//! run by a copy kernel (bytes read + written per second). The fraction reached is that
//! time over the measured step time.

#![warn(missing_docs)]

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::engine::CudaLlama;
use super::ops::DevMem;
use crate::lower::StorageType;
use crate::model::{CpuReference, Masking, Model};
use crate::plan::Plan;
use crate::runtime::engine::{Engine, EngineError, Sampling};
use crate::runtime::wgpu::WgpuContext;
use crate::runtime::wgpu_engine::WgpuEngine;

fn cu(e: super::CudaError) -> EngineError {
    EngineError::Cuda(e)
}

/// Device copy bandwidth in bytes (read + written) per second: `reps` copies of a
/// `bytes`-byte buffer after one warm-up, timed on the host around a synchronisation.
pub fn copy_bandwidth(engine: &CudaLlama, bytes: usize, reps: usize) -> Result<f64, EngineError> {
    let s = engine.stream();
    let bytes = bytes / 16 * 16;
    let src = DevMem::zeros(s, bytes, "copy source").map_err(cu)?;
    let dst = DevMem::alloc(s, bytes, "copy destination").map_err(cu)?;
    let sync = || {
        s.synchronize().map_err(|e| EngineError::Gpu {
            what: "the copy benchmark".into(),
            message: e.to_string(),
        })
    };
    // SAFETY: both buffers hold `bytes` bytes.
    unsafe { engine.ops().copy(s, src.ptr, dst.ptr, bytes as u64) }.map_err(cu)?;
    sync()?;
    let t0 = Instant::now();
    for _ in 0..reps {
        unsafe { engine.ops().copy(s, src.ptr, dst.ptr, bytes as u64) }.map_err(cu)?;
    }
    sync()?;
    Ok(2.0 * bytes as f64 * reps as f64 / t0.elapsed().as_secs_f64())
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// "dense" or the plan's label.
    pub label: String,
    /// The engine's storage type (`f32`, `f16`, `bf16`).
    pub storage: String,
    /// Tokens per prompt.
    pub prompt: usize,
    /// Rows (prompts) of the request.
    pub batch: usize,
    /// Decode steps run, warm-up included ([`BenchSpec::new_tokens`]).
    pub new_tokens: usize,
    /// Whether decode steps replay a captured CUDA graph (else plain launches).
    pub cuda_graph: bool,
    /// Rows the prefill computed (`batch`, or `--prefill-rows`: the rest copied their
    /// caches from these, `CudaLlama::prefill_sample_rows`).
    pub prefill_rows: usize,
    /// Prefill of the computed rows (all their prompt tokens, plus the copies), seconds,
    /// and computed prompt tokens per second.
    pub prefill_s: f64,
    /// Computed prompt tokens per second of the prefill.
    pub prefill_tok_s: f64,
    /// Mean decode step (every row one token, including the host's uploads and the
    /// tokens' read-back), milliseconds, and generated tokens per second.
    pub step_ms: f64,
    /// Generated tokens per second of the decode (rows / step time).
    pub decode_tok_s: f64,
    /// Bytes of weights on the device (a decode step reads each once).
    pub weight_bytes: u64,
    /// KV bytes a step reads at the middle of the measured steps.
    pub kv_read_bytes: u64,
    /// KV cache allocated by the request.
    pub kv_bytes: u64,
    /// Copy bandwidth measured in the same run ([`copy_bandwidth`]), GB (1e9 bytes) read +
    /// written per second.
    pub copy_gb_s: f64,
    /// (weights + KV read) / copy bandwidth, milliseconds.
    pub roofline_ms: f64,
    /// roofline_ms / step_ms.
    pub roofline_fraction: f64,
}

impl BenchRow {
    /// One markdown table row (see [`table_header`]).
    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {}{:.3} | {:.0} | {:.3} | {:.0} | {} | {} | {} | {:.1}% |",
            self.label,
            self.storage,
            self.prompt,
            self.batch,
            if self.cuda_graph { "graph" } else { "launches" },
            if self.prefill_rows < self.batch {
                format!("{} rows: ", self.prefill_rows)
            } else {
                String::new()
            },
            self.prefill_s,
            self.prefill_tok_s,
            self.step_ms,
            self.decode_tok_s,
            fixed_or_significant(self.weight_bytes as f64 / 1e9, 2),
            fixed_or_significant(self.kv_read_bytes as f64 / 1e9, 2),
            fixed_or_significant(self.roofline_ms, 3),
            100.0 * self.roofline_fraction
        )
    }
}

/// `x` with `decimals` decimals where that shows a digit that is not 0, else with three
/// significant digits: a tiny model's weights printed "0.00" GB a row (round 30), while a
/// 7B model's rows print as before.
fn fixed_or_significant(x: f64, decimals: usize) -> String {
    if x == 0.0 || !x.is_finite() || x.abs() >= 10f64.powi(-(decimals as i32)) {
        return format!("{x:.decimals$}");
    }
    let places = (-x.abs().log10().floor()) as usize + 2;
    format!("{x:.places$}")
}

/// The markdown table's header and separator lines for [`BenchRow::markdown`] rows.
pub fn table_header() -> String {
    "| plan | dtype | prompt | batch | decode | prefill s | prefill tok/s | step ms | decode tok/s | weights GB | KV read GB/step | roofline ms | of roofline |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|".into()
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// Tokens per random prompt.
    pub prompt: usize,
    /// Rows (prompts) of the request.
    pub batch: usize,
    /// Decode steps; the first two are warm-up (graph capture), the rest are timed.
    pub new_tokens: usize,
    /// Seed of the random prompts (and of the request).
    pub seed: u64,
}

/// Prefill `batch` random prompts of `prompt` tokens, then decode `new_tokens` steps
/// greedily, timing both. `copy_bytes_per_s` from [`copy_bandwidth`].
pub fn run(
    engine: &CudaLlama,
    label: &str,
    spec: &BenchSpec,
    copy_bytes_per_s: f64,
) -> Result<BenchRow, EngineError> {
    if spec.new_tokens < 4 {
        return Err(EngineError::Input(format!(
            "--new {} is too few: allowed 4 or more (two warm-up steps, then timed steps)",
            spec.new_tokens
        )));
    }
    let vocab = engine.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let prompts = random_prompts(&vec![spec.prompt; spec.batch], vocab, &mut rng);
    let mut req = engine.start(&vec![spec.prompt; spec.batch], spec.new_tokens, spec.seed)?;
    let t0 = Instant::now();
    let mut tokens = engine.prefill_tokens(&mut req, &prompts, Sampling::greedy())?;
    let prefill_s = t0.elapsed().as_secs_f64();
    let warm = 2;
    for _ in 0..warm {
        tokens = engine.decode_tokens(&mut req, &tokens, Sampling::greedy())?;
    }
    let steps = spec.new_tokens - warm;
    let t0 = Instant::now();
    for _ in 0..steps {
        tokens = engine.decode_tokens(&mut req, &tokens, Sampling::greedy())?;
    }
    let step_s = t0.elapsed().as_secs_f64() / steps as f64;
    let prefill_rows = engine
        .prefill_sample_rows
        .map_or(spec.batch, |k| k.clamp(1, spec.batch));
    let mid = (spec.prompt + warm + steps / 2) as u32;
    let kv_read = engine.kv_read_bytes(&engine.layouts(req.n_tokens()), &vec![mid; spec.batch]);
    let roofline_s = (engine.weight_bytes() + kv_read) as f64 / copy_bytes_per_s;
    Ok(BenchRow {
        label: label.to_string(),
        storage: super::ops::storage_name(engine.storage()).into(),
        prompt: spec.prompt,
        batch: spec.batch,
        new_tokens: spec.new_tokens,
        cuda_graph: engine.use_graph,
        prefill_rows,
        prefill_s,
        prefill_tok_s: (spec.prompt * prefill_rows) as f64 / prefill_s,
        step_ms: step_s * 1e3,
        decode_tok_s: spec.batch as f64 / step_s,
        weight_bytes: engine.weight_bytes(),
        kv_read_bytes: kv_read,
        kv_bytes: req.kv_bytes(),
        copy_gb_s: copy_bytes_per_s / 1e9,
        roofline_ms: roofline_s * 1e3,
        roofline_fraction: roofline_s / step_s,
    })
}

/// Greedy tokens of one engine for every row.
pub type RowTokens = Vec<Vec<u32>>;

/// Greedy generation on any engine: prefill, then `new - 1` decode steps; `[rows][new]`.
pub fn greedy(
    engine: &dyn Engine,
    prompts: &[Vec<u32>],
    new: usize,
) -> Result<RowTokens, EngineError> {
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut req = engine.start(&lens, new, 0)?;
    let mut out = vec![Vec::new(); prompts.len()];
    let mut t = engine.prefill_tokens(&mut req, prompts, Sampling::greedy())?;
    for _ in 0..new {
        for (o, &x) in out.iter_mut().zip(&t) {
            o.push(x);
        }
        if out[0].len() == new {
            break;
        }
        t = engine.decode_tokens(&mut req, &t, Sampling::greedy())?;
    }
    Ok(out)
}

/// The CPU reference's greedy `new` tokens of every prompt under `masking`: what the
/// parity checks compare an engine's tokens with.
fn reference_tokens(
    cpu: &CpuReference,
    prompts: &[Vec<u32>],
    new: usize,
    masking: Masking,
) -> Result<RowTokens, EngineError> {
    prompts
        .iter()
        .map(|pr| Ok(cpu.generate(pr, new, masking, &[])?))
        .collect()
}

/// Prompts of random token ids below `vocab`, one of each length of `lens`, drawn from
/// `rng` row by row (the benchmark's and the parity checks' inputs).
pub fn random_prompts(lens: &[usize], vocab: u32, rng: &mut StdRng) -> Vec<Vec<u32>> {
    lens.iter()
        .map(|&n| (0..n).map(|_| rng.random_range(0..vocab)).collect())
        .collect()
}

/// One parity comparison.
#[derive(Clone, Debug, Serialize)]
pub struct ParityRow {
    /// `dense` or `plan`: which masking both sides ran.
    pub label: String,
    /// The engine compared, e.g. `cuda f16` or `wgpu f32`.
    pub engine: String,
    /// Tokens equal to the CPU reference's, all rows together, and how many there are.
    pub equal: usize,
    /// Tokens compared, all rows together (a length difference counts as unequal tokens).
    pub total: usize,
    /// (row, step) of the first difference.
    pub first_difference: Option<(usize, usize)>,
}

fn agreement(label: &str, engine: &str, got: &RowTokens, want: &RowTokens) -> ParityRow {
    let mut equal = 0;
    let mut total = 0;
    let mut first = None;
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            total += 1;
            if a == b {
                equal += 1;
            } else if first.is_none_or(|(_, s)| i < s) {
                first = Some((r, i));
            }
        }
        total += g.len().abs_diff(w.len());
    }
    ParityRow {
        label: label.to_string(),
        engine: engine.to_string(),
        equal,
        total,
        first_difference: first,
    }
}

/// Greedy tokens of the CPU reference, the CUDA engine (each of `storages`) and, with a
/// wgpu context, the wgpu engine (f32 storage), dense and with `plan`, `new` tokens per
/// row; every engine compared with the CPU reference.
pub fn parity(
    model: &Model,
    plan: Option<&Plan>,
    prompts: &[Vec<u32>],
    new: usize,
    storages: &[StorageType],
    wgpu: Option<&WgpuContext>,
    ordinal: usize,
) -> Result<Vec<ParityRow>, EngineError> {
    let cpu = CpuReference::from_model(model.clone())?;
    let n_tokens = (prompts.iter().map(Vec::len).max().unwrap_or(0) + new) as u32;
    let mut rows = Vec::new();
    let mut cases: Vec<(&str, Option<&Plan>)> = vec![("dense", None)];
    if let Some(p) = plan {
        cases.push(("plan", Some(p)));
    }
    for (label, p) in cases {
        let want = reference_tokens(&cpu, prompts, new, Masking::of(p, n_tokens))?;
        for &s in storages {
            let engine = CudaLlama::new(model, p, s, ordinal)?;
            let got = greedy(&engine, prompts, new)?;
            rows.push(agreement(
                label,
                &format!("cuda {}", super::ops::storage_name(s)),
                &got,
                &want,
            ));
        }
        if let Some(ctx) = wgpu {
            let engine = WgpuEngine::new(ctx, model, p, true)?;
            let got = greedy(&engine, prompts, new)?;
            rows.push(agreement(label, "wgpu f32", &got, &want));
        }
    }
    Ok(rows)
}

/// [`CudaLlama::prefill_sub_tokens`] and [`CudaLlama::fuse_small_decode`] against the
/// CPU reference, f32: greedy `new` tokens of `prompts` after a prefill whose norms, QKV
/// and FFN run over groups of `sub` tokens (groups that cut rows, and rows whose ring
/// slots a later group overwrites), decoding with the fused norm + projection kernels
/// when `fuse`.
pub fn grouped_prefill_check(
    model: &Model,
    plan: Option<&Plan>,
    prompts: &[Vec<u32>],
    new: usize,
    sub: usize,
    fuse: bool,
    ordinal: usize,
) -> Result<ParityRow, EngineError> {
    let cpu = CpuReference::from_model(model.clone())?;
    let n_tokens = (prompts.iter().map(Vec::len).max().unwrap_or(0) + new) as u32;
    let want = reference_tokens(&cpu, prompts, new, Masking::of(plan, n_tokens))?;
    let mut engine = CudaLlama::new(model, plan, StorageType::F32, ordinal)?;
    engine.prefill_sub_tokens = Some(sub);
    engine.fuse_small_decode = fuse;
    let got = greedy(&engine, prompts, new)?;
    Ok(agreement(
        if plan.is_some() { "plan" } else { "dense" },
        &format!(
            "cuda f32, prefill groups of {sub} tokens{}",
            if fuse { ", fused decode norms" } else { "" }
        ),
        &got,
        &want,
    ))
}

/// [`CudaLlama::prefill_sample_rows`] against a full prefill, f32: 5 rows whose prompts
/// repeat 2 prompts of `prompt` tokens (row b = prompt b mod 2), greedy `new` tokens
/// after a full prefill and after a prefill that computes 2 rows and copies the rest.
/// The copies must give every row the caches and logits its own prefill gives.
pub fn sampled_prefill_check(
    model: &Model,
    plan: Option<&Plan>,
    prompt: usize,
    new: usize,
    ordinal: usize,
) -> Result<ParityRow, EngineError> {
    let vocab = model.config.vocab_size as u32;
    let base = random_prompts(&[prompt; 2], vocab, &mut StdRng::seed_from_u64(7));
    let prompts: Vec<Vec<u32>> = (0..5).map(|b| base[b % 2].clone()).collect();
    let mut engine = CudaLlama::new(model, plan, StorageType::F32, ordinal)?;
    let full = greedy(&engine, &prompts, new)?;
    engine.prefill_sample_rows = Some(2);
    let sampled = greedy(&engine, &prompts, new)?;
    Ok(agreement(
        if plan.is_some() { "plan" } else { "dense" },
        "cuda f32, 2 of 5 rows prefilled",
        &sampled,
        &full,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny model's bytes show three significant digits (round 30: "0.00" GB); large ones
    /// keep the table's fixed decimals.
    #[test]
    fn small_sizes_keep_significant_digits() {
        assert_eq!(fixed_or_significant(13.4821, 2), "13.48");
        assert_eq!(fixed_or_significant(0.0123, 2), "0.01");
        assert_eq!(fixed_or_significant(0.000_151_234, 2), "0.000151");
        assert_eq!(fixed_or_significant(0.004_56, 2), "0.00456");
        assert_eq!(fixed_or_significant(0.0, 2), "0.00");
        assert_eq!(fixed_or_significant(0.000_123_4, 3), "0.000123");
        assert_eq!(fixed_or_significant(1.5, 3), "1.500");
    }

    #[test]
    fn agreement_counts_and_finds_the_first_difference() {
        let want = vec![vec![1, 2, 3], vec![4, 5, 6]];
        let got = vec![vec![1, 2, 3], vec![4, 9, 6]];
        let r = agreement("dense", "x", &got, &want);
        assert_eq!((r.equal, r.total, r.first_difference), (5, 6, Some((1, 1))));
        let r = agreement("dense", "x", &want, &want);
        assert_eq!((r.equal, r.first_difference), (6, None));
    }

    /// The prompts are the draws of one stream, row after row, token after token (the
    /// loops `moa bench` and the parity checks wrote out before this function).
    #[test]
    fn random_prompts_draw_rows_in_order() {
        let mut rng = StdRng::seed_from_u64(3);
        let want: Vec<Vec<u32>> = [4usize, 0, 2]
            .iter()
            .map(|&n| (0..n).map(|_| rng.random_range(0..50u32)).collect())
            .collect();
        let got = random_prompts(&[4, 0, 2], 50, &mut StdRng::seed_from_u64(3));
        assert_eq!(got, want);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [4, 0, 2]);
    }
}
