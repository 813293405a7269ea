//! `moa validate`: held-out response loss of each plan against dense (CPU reference), a
//! TSV table, and optionally the best plan copied out with its validation recorded.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use moa::calib::{self, CalibSample};
use moa::eval::gpu::GpuScorer;
use moa::eval::{self, Event, PlanReport, ScoreCache};
use moa::model::{self, CpuReference, Model};
use moa::plan::Plan;
use moa::profile::progress::{fmt_duration, Progress};
use moa::runtime::wgpu::WgpuContext;

use crate::args::ValidateArgs;

/// What a validation run decided.
pub struct Outcome {
    pub table: String,
    /// The best plan's file and report (lowest mean held-out loss).
    pub best: Option<(PathBuf, PlanReport)>,
    pub dense: PlanReport,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let outcome = validate(&args)?;
    out!("{}", outcome.table);
    // `-o -` / `-o /dev/stdout`: the table above is that output.
    if let Some(o) = args.output.as_deref().filter(|o| !super::is_stdout(o)) {
        super::write_whole(o, outcome.table.as_bytes())?;
    }
    if let (Some(dst), Some((src, report))) = (&args.best, &outcome.best) {
        write_best(src, report, &outcome.dense, &args.calib, dst)?;
        outln!("best: {} -> {}", src.display(), dst.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate(args: &ValidateArgs) -> anyhow::Result<Outcome> {
    if args.max_samples == Some(0) {
        bail!("--max-samples 0 selects no sample: allowed 1 or more");
    }
    // `--output -` (or the file stdout goes to) is the table printed anyway.
    let output = args.output.as_deref().filter(|o| !super::is_stdout(o));
    for (flag, path) in [("--output", output), ("--best", args.best.as_deref())] {
        if let Some(p) = path {
            super::check_output_file(flag, p)?;
        }
    }
    super::check_distinct_outputs(&[("--output", output), ("--best", args.best.as_deref())])?;
    // The table over the held-out file, a plan or a model file replaced it (after the
    // whole run); so did the best plan over a model file.
    let model = super::model_or_default(args.model.as_deref());
    if let Some(o) = output {
        let mut inputs: Vec<&std::path::Path> = vec![&args.calib];
        inputs.extend(args.plans.iter().map(PathBuf::as_path));
        inputs.extend(model.as_deref());
        super::check_not_an_input("--output", o, &inputs)?;
    }
    if let Some(b) = &args.best {
        let mut inputs: Vec<&std::path::Path> = vec![&args.calib];
        inputs.extend(model.as_deref());
        super::check_not_an_input("--best", b, &inputs)?;
    }
    // One plan twice was validated twice, its row repeated in the table.
    super::check_distinct_files("--plan", &args.plans)?;
    let all = calib::read_jsonl(&args.calib)?;
    let all_levels: Vec<u32> = all.iter().map(|s| s.length_level).collect();
    let samples: Vec<CalibSample> = all
        .into_iter()
        .filter(|s| args.length.is_none_or(|n| s.length_level == n))
        .take(args.max_samples.unwrap_or(usize::MAX))
        .collect();
    if samples.is_empty() {
        // Round 43: "has no samples of length 512" named neither the flag nor the lengths
        // the file has (`moa profile --lengths` names both).
        let mut levels: Vec<u32> = all_levels;
        levels.sort_unstable();
        levels.dedup();
        match args.length {
            Some(n) if !levels.is_empty() => bail!(
                "--length {n}: `{}` has no sample of length {n}: allowed {} (the length levels \
                 its samples were built for)",
                args.calib.display(),
                levels
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => bail!("`{}` has no samples", args.calib.display()),
        }
    }
    let mut plans = Vec::with_capacity(args.plans.len());
    for p in &args.plans {
        plans.push((p.display().to_string(), Plan::load(p)?));
    }
    let path = super::model_arg(args.model.as_deref())?;
    // Before the weights load (a sample past the context was scored: round 35).
    let config = model::read_config(&path)?.0;
    super::check_calib_vocab(&args.calib, &samples, &config)?;
    // The adapter before the weights, and a sample whose prompt is past one prefill pass
    // of it refused now: the engine refused it after the load (round 45).
    let ctx = if args.gpu {
        let ctx = WgpuContext::new()?;
        let storage = moa::runtime::wgpu_engine::storage_for(&ctx, args.f32);
        let limit = super::prefill_row_limit(&ctx, &config, storage)?;
        if let Some(s) = samples
            .iter()
            .find(|s| s.prompt_tokens.len() > limit.tokens)
        {
            bail!(
                "--gpu: sample `{}` of `{}` has a prompt of {} tokens, and {}; validate it on the CPU (without --gpu), or give --length with shorter samples",
                s.id,
                args.calib.display(),
                s.prompt_tokens.len(),
                limit.why(&ctx, &config, storage)
            );
        }
        Some(ctx)
    } else {
        None
    };
    let model = Model::load(&path)?;
    for (name, plan) in &plans {
        model.config.check_plan(plan).with_context(|| {
            format!("plan `{name}` does not fit the model `{}`", path.display())
        })?;
    }
    let mut cache = match &args.cache {
        Some(c) => ScoreCache::open(c).map_err(anyhow::Error::msg)?,
        None => ScoreCache::in_memory(),
    };
    // Work ∝ T² per forward (attention dominates at these lengths).
    let per_round: f64 = samples.iter().map(|s| (s.n_tokens as f64).powi(2)).sum();
    let mut progress = Progress::new(
        samples.len() * (plans.len() + 1),
        per_round * (plans.len() + 1) as f64,
        true,
    );
    let mut n_tokens = std::collections::HashMap::new();
    for s in &samples {
        n_tokens.insert(s.id.clone(), s.n_tokens);
    }
    let mut report = |e: Event| match e {
        Event::Start { masking, sample } => progress.start_item(&format!(
            "{masking}: {} ({} tokens)",
            sample.id, sample.n_tokens
        )),
        Event::Done {
            masking,
            score,
            cached,
        } => {
            let work = (n_tokens[&score.sample_id] as f64).powi(2);
            let line = format!(
                "{masking}: {} loss {:.4} agree {}/{}{}",
                score.sample_id,
                score.loss,
                score.agree,
                score.n_response,
                if cached { " (cached)" } else { "" }
            );
            if cached {
                progress.skip_item(work, &line);
            } else {
                progress.finish_item(work, &line);
            }
        }
    };
    let (dense, reports) = if let Some(ctx) = ctx {
        let mut scorer = GpuScorer::new(&ctx, &model, args.f32);
        let backend = scorer.backend()?;
        eprintln!("scoring on {} ({backend})", ctx.adapter_name());
        eval::validate(
            &samples,
            &plans,
            &backend,
            &mut cache,
            &mut |s, p| scorer.score(s, p),
            &mut report,
        )?
    } else {
        let reference = CpuReference::from_model(model)?;
        eval::validate(
            &samples,
            &plans,
            "cpu",
            &mut cache,
            &mut |s, p| Ok(eval::score_sample(&reference, s, p)?),
            &mut report,
        )?
    };
    eprintln!("validated in {}", fmt_duration(progress.elapsed()));
    let table = eval::report_tsv(&dense, &reports);
    let best = eval::best(&reports).map(|i| (args.plans[i].clone(), reports[i].clone()));
    Ok(Outcome { table, best, dense })
}

/// Copies the best plan to `dst` with its validation in `meta.notes` (kept when the source
/// had notes: they are appended to).
pub fn write_best(
    src: &Path,
    report: &PlanReport,
    dense: &PlanReport,
    calib: &Path,
    dst: &Path,
) -> anyhow::Result<()> {
    let plan = Plan::load(src)?;
    let line = format!(
        "validated on {} held-out samples of `{}`: mean response loss {:.4} (dense {:.4}, \
         {:+.4}), argmax agreement with the dense answer {:.3}, KV density {:.3} at the \
         samples' lengths; chosen as the lowest loss among the candidates",
        report.scores.len(),
        calib.display(),
        report.mean_loss(),
        dense.mean_loss(),
        report.mean_loss() - dense.mean_loss(),
        report.agreement(),
        report.kv_density
    );
    let mut meta = plan.meta().clone();
    meta.notes = Some(match meta.notes.take() {
        Some(n) => format!("{n}; {line}"),
        None => line,
    });
    let plan = plan.with_meta(meta)?;
    if let Some(dir) = dst.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    super::write_whole(dst, plan.to_toml().as_bytes())
}
