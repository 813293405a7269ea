//! `moa profile`: calibration JSONL → `influence_<N>.safetensors` per length (what
//! `moa optimize --profile` reads), `summary_<N>.tsv` (per-layer sink / diagonal / long-range
//! shares) and `timing.tsv` (seconds per sample and length).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::DType;
use moa::calib;
use moa::model::{self, Model};
use moa::profile::progress::{fmt_duration, Progress};
use moa::profile::{self, Event, GradModel};

use crate::args::ProfileArgs;

pub fn run(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    let samples = calib::read_jsonl(&args.calib)?;
    let path = match &args.model {
        Some(p) => p.clone(),
        None => model::default_model_path()?,
    };
    let loaded = Model::load(&path)?;
    let grad = GradModel::new(loaded.config.clone(), &loaded.weights, DType::F32)?;
    drop(loaded);
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;

    let plan: Vec<_> = args
        .lengths
        .iter()
        .map(|&n| (n, profile::select(&samples, n, args.max_samples)))
        .collect();
    // Work ∝ T² (attention dominates the backward walk at these lengths).
    let total_work: f64 = plan
        .iter()
        .flat_map(|(_, (used, _))| used.iter().map(|s| (s.n_tokens as f64).powi(2)))
        .sum();
    let count: usize = plan.iter().map(|(_, (used, _))| used.len()).sum();
    let mut progress = Progress::new(count, total_work, !args.quiet);
    let mut timing = String::from("length\tsample\tn_tokens\tloss\tseconds\n");
    for (n, (used, skipped)) in &plan {
        if *skipped > 0 {
            eprintln!("length {n}: skipping {skipped} samples longer than {n} tokens");
        }
        let mut report = |e: Event| match e {
            Event::Start(s) => progress.start_item(&format!(
                "length {n}, sample {} ({} tokens)",
                s.id, s.n_tokens
            )),
            Event::Done(r) => {
                let _ = writeln!(
                    timing,
                    "{}\t{}\t{}\t{:.4}\t{:.2}",
                    r.length,
                    r.id,
                    r.n_tokens,
                    r.loss,
                    r.elapsed.as_secs_f64()
                );
                progress.finish_item(
                    (r.n_tokens as f64).powi(2),
                    &format!(
                        "length {} sample {} ({} tokens): loss {:.3}, {}",
                        r.length,
                        r.id,
                        r.n_tokens,
                        r.loss,
                        fmt_duration(r.elapsed)
                    ),
                );
            }
        };
        let prof = profile::profile_length(&grad, used, *n, args.block, &mut report)?;
        let file = args.output.join(profile::profile_file_name(*n));
        prof.save(&file)?;
        let sfile = args.output.join(format!("summary_{n}.tsv"));
        std::fs::write(&sfile, profile::summary::summary_tsv(&prof))
            .with_context(|| format!("writing {}", sfile.display()))?;
        println!("wrote {} ({} samples)", file.display(), used.len());
    }
    let tfile = args.output.join("timing.tsv");
    std::fs::write(&tfile, timing).with_context(|| format!("writing {}", tfile.display()))?;
    println!("total {}", fmt_duration(progress.elapsed()));
    Ok(ExitCode::SUCCESS)
}
