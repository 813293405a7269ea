//! `moa profile`: calibration JSONL → `influence_<N>.safetensors` per length (what
//! `moa optimize --profile` reads), `summary_<N>.tsv` (per-layer sink / diagonal / long-range
//! shares) and `timing_<N>.tsv` (seconds per sample). Each sample's tiles are kept under
//! `samples/<N>/` so a run resumes; `--shard k/n` profiles every n-th sample only (for
//! several processes on one many-core machine), and a last run without it averages them.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::DType;
use moa::calib;
use moa::model::{self, Model};
use moa::profile::progress::{fmt_duration, Progress};
use moa::profile::{self, Event, GradModel};

use crate::args::ProfileArgs;

/// `--block` against the lengths: tiles are `block × block` tokens, so it must divide
/// every length (it used to fail at the first sample as "does not fit length 512 in
/// blocks of 0").
pub fn check_block(block: u32, lengths: &[u32]) -> anyhow::Result<()> {
    if let Some(n) = lengths.iter().find(|&&n| block == 0 || n % block != 0) {
        anyhow::bail!(
            "--block {block} does not divide length {n}: the profile's tiles are block x block tokens; allowed a divisor of every length (default 64)"
        );
    }
    Ok(())
}

pub fn run(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    check_block(args.block, &args.lengths)?;
    // `-o` the model's own folder: its profile_<N>.safetensors would be read back as
    // weight shards of the model (a folder without an index is every *.safetensors in it).
    if args.like.is_none() {
        let model = super::model_or_default(args.model.as_deref());
        let same = |a: &std::path::Path, b: &std::path::Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b);
        if let Some(m) = model.filter(|m| m.is_dir() && same(m, &args.output)) {
            anyhow::bail!(
                "-o `{}` is the model folder `{}`: the profiles written there would be read \
                 back as weight files of the model; give another folder",
                args.output.display(),
                m.display()
            );
        }
    }
    // Also checked where the profile is summed; here before the model loads.
    if !(args.text_weight.is_finite() && args.text_weight >= 0.0) {
        anyhow::bail!(
            "--text-weight {} is out of range: allowed a finite number >= 0",
            args.text_weight
        );
    }
    let samples = calib::read_jsonl(&args.calib)?;
    let shard = match &args.shard {
        Some(text) => Some(parse_shard(text)?),
        None => None,
    };
    // Said as itself: the refusal below of a length left with no sample named the
    // lengths the file does have, 512 among them, for `--lengths 512 --max-samples 0`.
    if args.max_samples == Some(0) {
        anyhow::bail!("--max-samples 0 leaves no sample to profile: allowed 1 or more");
    }
    // An empty calibration file (or one of blank lines) was refused per length as "has no
    // calibration sample of length 512 … it has lengths {}" (session 30).
    if samples.is_empty() {
        anyhow::bail!(
            "`{}` holds no calibration samples (an empty file, or blank lines only): make one with `moa calib --out {} --lengths {}`",
            args.calib.display(),
            args.calib.display(),
            args.lengths
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let mut plan = Vec::with_capacity(args.lengths.len());
    for &n in &args.lengths {
        let (mut used, skipped) = profile::select(&samples, n, args.max_samples);
        if args.drop_wrong {
            let (right, wrong) = profile::split_wrong(used);
            for s in &wrong {
                eprintln!(
                    "length {n}: dropping {} (--drop-wrong): the dense model answered {:?}, expected {:?}",
                    s.id, s.dense_answer_text, s.expected.answer
                );
            }
            if right.is_empty() && !wrong.is_empty() {
                anyhow::bail!(
                    "length {n}: the dense model answered {} of `{}` wrongly, so --drop-wrong leaves nothing to profile (calibrate more samples, or leave out --drop-wrong)",
                    match wrong.len() {
                        1 => "the 1 sample".to_string(),
                        n => format!("all {n} samples"),
                    },
                    args.calib.display()
                );
            }
            used = right;
        }
        let used: Vec<_> = match shard {
            Some((k, m)) => used.into_iter().skip(k).step_by(m).collect(),
            None => used,
        };
        // Refused here, before the model loads and `-o` is created: the same refusal from
        // the profiler came after `create_dir_all` and left an empty output folder.
        if used.is_empty() {
            let have: std::collections::BTreeSet<u32> =
                samples.iter().map(|s| s.length_level).collect();
            let shard_note = match (shard, &args.shard) {
                (Some(_), Some(text)) => format!(" in --shard {text}"),
                _ => String::new(),
            };
            anyhow::bail!(
                "--lengths {n}: `{}` has no calibration sample of length {n}{shard_note} (samples are used at the length they were built for); it has lengths {have:?}: profile one of those, or run `moa calib` with {n} in --lengths",
                args.calib.display()
            );
        }
        plan.push((n, (used, skipped)));
    }
    // The sample store is keyed by tokens and shape, not weights: another model of the
    // same shape profiled into this folder reused the first one's tiles, saying only
    // "reusing its stored tiles". Checked before the model loads.
    let default_model;
    let id = match (&args.like, &args.model) {
        (Some(like), _) => super::model_record::ModelId::Like(like),
        (None, Some(p)) => super::model_record::ModelId::Path(p),
        (None, None) => {
            default_model = model::default_model_path()?;
            super::model_record::ModelId::Path(&default_model)
        }
    };
    let record =
        super::model_record::check(&args.output, id, &super::model_record::PROFILE_FOLDER)?;
    // The plan is read and checked against the model's shape (from the config or GGUF
    // header) before the weights load: a typo in it, or a plan of another model, was
    // reported only after the whole load (2 s for SmolLM2, minutes for a 7B model; round 18).
    let config = match (&args.like, &args.model) {
        (Some(like), _) => model::random::like_or_err(like)?,
        (None, Some(m)) => model::read_config(&super::model_arg(Some(m))?)?.0,
        (None, None) => model::read_config(&model::default_model_path()?)?.0,
    };
    // The samples this run profiles against the model (token ids, context), before the
    // weights load: a file's other lengths may be past the context.
    let profiled = plan.iter().flat_map(|(_, (used, _))| used.iter().copied());
    super::check_calib_vocab(&args.calib, profiled, &config)?;
    let under = match &args.under_plan {
        Some(p) => {
            let plan = moa::plan::Plan::load(p)
                .with_context(|| format!("--under-plan {}", p.display()))?;
            config
                .check_plan(&plan)
                .with_context(|| format!("--under-plan {} does not fit the model", p.display()))?;
            Some(plan)
        }
        None => None,
    };
    // Before the load, as `moa calib` (round 45): a device this build or machine lacks
    // was refused once the f32 weights were in memory.
    let device = profile::device(&args.device)?;
    // The model is loaded once the samples are known to leave something to profile.
    let loaded = match (&args.like, &args.model) {
        (Some(like), _) => {
            let config = model::random::like_or_err(like)?;
            model::random::random_model(&config, 0)
        }
        (None, Some(p)) => Model::load(p)?,
        (None, None) => Model::load(&model::default_model_path()?)?,
    };
    // The weights move into the profiler: the loaded copy and the profiler's were both
    // held until the second was made (twice the f32 weights; round 35).
    let grad = GradModel::from_weights(loaded.config, loaded.weights, DType::F32, &device)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    record.write()?;

    // Work ∝ T² (attention dominates the backward walk at these lengths).
    let total_work: f64 = plan
        .iter()
        .flat_map(|(_, (used, _))| used.iter().map(|s| (s.n_tokens as f64).powi(2)))
        .sum();
    let count: usize = plan.iter().map(|(_, (used, _))| used.len()).sum();
    let mut progress = Progress::new(count, total_work, !args.quiet);
    let store = args.output.join("samples");
    for (n, (used, skipped)) in &plan {
        let mut timing = String::from("length\tsample\tn_tokens\tloss\tseconds\n");
        if *skipped > 0 {
            eprintln!(
                "length {n}: skipping {} longer than {n} tokens",
                moa::input::counted(*skipped, "sample")
            );
        }
        let mut report = |e: Event| match e {
            Event::Start(s) => progress.start_item(&format!(
                "length {n}, sample {} ({} tokens)",
                s.id, s.n_tokens
            )),
            Event::Done(r) if r.cached => progress.skip_item(
                (r.n_tokens as f64).powi(2),
                &format!(
                    "length {} sample {}: reusing its stored tiles",
                    r.length, r.id
                ),
            ),
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
                if let Some(why) = &r.replaced {
                    eprintln!("length {} sample {}: {why}", r.length, r.id);
                }
            }
        };
        let prof = profile::profile_length_under(
            &grad,
            used,
            *n,
            args.block,
            Some(&store),
            args.text_weight,
            under.as_ref(),
            &mut report,
        )
        .with_context(|| match &args.under_plan {
            Some(p) => format!("profiling length {n} under {}", p.display()),
            None => format!("profiling length {n}"),
        })?;
        // Timing of the samples computed in this run (reused ones are not timed again).
        let tfile = match shard {
            Some((k, m)) => args.output.join(format!("timing_{n}_shard{k}of{m}.tsv")),
            None => args.output.join(format!("timing_{n}.tsv")),
        };
        if timing.lines().count() > 1 {
            super::write_whole(&tfile, timing.as_bytes())?;
        }
        if shard.is_some() {
            outln!(
                "length {n}: shard done ({} stored under {})",
                moa::input::counted(used.len(), "sample"),
                store.display()
            );
            continue;
        }
        let file = args.output.join(profile::profile_file_name(*n));
        prof.save(&file)?;
        let sfile = args.output.join(format!("summary_{n}.tsv"));
        super::write_whole(&sfile, profile::summary::summary_tsv(&prof).as_bytes())?;
        outln!(
            "wrote {} ({})",
            file.display(),
            moa::input::counted(used.len(), "sample")
        );
    }
    outln!("total {}", fmt_duration(progress.elapsed()));
    Ok(ExitCode::SUCCESS)
}

/// `k/n` with k < n.
fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard `{text}`: expected k/n with 0 ≤ k < n, e.g. 0/4");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k >= n {
        return Err(bad());
    }
    Ok((k, n))
}
