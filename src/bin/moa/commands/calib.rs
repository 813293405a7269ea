//! `moa calib`: calibration prompts answered by the dense model (greedy; the CPU reference,
//! or with `--device cuda` the profiler's model on a GPU),
//! written as JSONL; prints the dense accuracy per task and length.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use moa::calib::{self, CalibConfig, CalibError, TextSource};
use moa::model::{self, CpuReference, Masking, Model, ModelTokenizer};
use moa::profile::progress::{fmt_duration, Progress};
use moa::profile::GradModel;

use crate::args::CalibArgs;

pub fn run(args: CalibArgs) -> anyhow::Result<ExitCode> {
    let source = TextSource::parse(&args.source)?;
    let passkey_source = TextSource::parse(&args.passkey_source)?;
    let path = match &args.model {
        Some(p) => p.clone(),
        None => model::default_model_path()?,
    };
    let tokenizer = ModelTokenizer::load(&path)?;
    let loaded = Model::load(&path)?;
    let eos = loaded.special.eos.clone();
    let device = moa::profile::device(&args.device)?;
    // On a GPU the dense answers come from the profiler's model (f32, no KV cache).
    let gpu = if device.is_cpu() {
        None
    } else {
        Some(GradModel::new_on(
            loaded.config.clone(),
            &loaded.weights,
            DType::F32,
            &device,
        )?)
    };
    let reference = CpuReference::from_model(loaded)?;
    let cfg = CalibConfig {
        lengths: args.lengths.clone(),
        samples: args.samples,
        seed: args.seed,
        source,
        passkey_source,
        max_new_tokens: args.max_new_tokens,
        text_samples: args.text_samples,
        text_scored: args.text_scored,
    };
    let total_work: f64 = cfg
        .lengths
        .iter()
        .map(|&n| f64::from(n) * cfg.samples as f64)
        .sum();
    let mut progress = Progress::new(cfg.lengths.len() * cfg.samples, total_work, true);
    let mut answer = |prompt: &[u32], max_new: usize| -> Result<Vec<u32>, CalibError> {
        progress.start_item(&format!("answering a {}-token prompt", prompt.len()));
        let t = Instant::now();
        let mut out = match &gpu {
            Some(m) => m.generate_greedy(prompt, max_new, &eos)?,
            None => reference.generate(prompt, max_new, Masking::Dense, &eos)?,
        };
        // The model ended at once: the end-of-sequence token is its answer.
        if out.is_empty() {
            out.extend(eos.first().copied());
        }
        progress.finish_item(
            prompt.len() as f64,
            &format!("  ({})", fmt_duration(t.elapsed())),
        );
        Ok(out)
    };
    let mut report = |i: usize, n: usize, s: &calib::CalibSample| {
        eprintln!(
            "sample {i}/{n} {} ({} tokens): {:?} -> expected {:?}: {}",
            s.id,
            s.n_tokens,
            s.dense_answer_text,
            s.expected.answer,
            if s.expected.correct { "right" } else { "wrong" }
        );
    };
    let samples = calib::build_samples(&cfg, &tokenizer, &mut answer, &mut report)?;
    calib::write_jsonl(&args.out, &samples)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {} samples to {}", samples.len(), args.out.display());
    println!(
        "dense accuracy (pass-key filler: {}; quote documents: {}):",
        passkey_source.name(),
        source.name()
    );
    for a in calib::accuracy(&samples) {
        println!(
            "  {:<15} {:>6} tokens  {}/{}",
            a.task, a.length, a.correct, a.total
        );
    }
    Ok(ExitCode::SUCCESS)
}
