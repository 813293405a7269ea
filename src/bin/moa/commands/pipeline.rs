//! `moa pipeline`: calib → profile → optimize → validate for one model, in a work folder,
//! each step skipped when its output is already there (so an interrupted run resumes, and
//! any step can be redone by deleting its output). The best validated plan per density
//! goes to `<plans-dir>/<name>-<percent>.toml`.
//!
//! With `--near PLAN --max-changes K` the profile and optimize steps are one trust-region
//! step from PLAN instead (docs/CALIBRATION.md, "A trust-region step"): profiles taken
//! under PLAN, in a folder named by PLAN's hash so that they never mix with dense ones or
//! another plan's, and plans at most K units away from PLAN; PLAN is validated beside them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use moa::calib;
use moa::profile;

use crate::args::{CalibArgs, OptimizeArgs, PipelineArgs, ProfileArgs, ValidateArgs};

fn step(name: &str, what: &str) {
    eprintln!("\n== {name}: {what}");
}

fn reuse(path: &Path) {
    eprintln!(
        "   reusing `{}` (delete it to redo this step and the ones after it)",
        path.display()
    );
}

/// A calibration file with samples at every length in `lengths`, built unless it exists;
/// `Ok(true)` when it was built by this call.
fn calib_file(
    args: &PipelineArgs,
    path: &Path,
    lengths: &[u32],
    length_flag: &'static str,
    samples: usize,
    seed: u64,
) -> anyhow::Result<bool> {
    if path.exists() {
        let have = calib::read_jsonl(path)?;
        for &n in lengths {
            if !have.iter().any(|s| s.length_level == n) {
                bail!(
                    "`{}` has no samples of length {n}: delete it so the pipeline rebuilds it",
                    path.display()
                );
            }
            if let Some(differs) = calib_settings_differ(args, &have, n, samples, seed) {
                bail!(
                    "`{}` was made with other settings than this run's: {differs}; delete \
                     it to redo this step and the ones after it with these settings, or \
                     give the settings it was made with",
                    path.display()
                );
            }
        }
        reuse(path);
        return Ok(false);
    }
    // Straight to `path`: calib writes it atomically (`<path>.partial-<pid>-<n>` renamed over it,
    // `calib::write_jsonl`), so a half-written file never counts as done, and its
    // "wrote N samples to ..." line names the file the user sees (a pipeline-level
    // temporary name made it name `calib.jsonl.partial`, renamed away right after). The
    // answer log `<path>.answers` lets a stopped run resume as a plain `moa calib` does.
    super::calib::run(CalibArgs {
        out: path.to_path_buf(),
        lengths: lengths.to_vec(),
        samples,
        seed,
        source: args.source.clone(),
        passkey_source: args.passkey_source.clone(),
        max_new_tokens: args.max_new_tokens,
        text_samples: args.text_samples,
        text_scored: args.text_scored,
        model: args.model.clone(),
        device: args.device.clone(),
        length_flag,
    })?;
    Ok(true)
}

/// What differs between the samples of length `n` in a calibration file being reused and
/// what this run's flags would make (`None`: nothing that the file shows). Why: a step
/// whose output is there is skipped, so a second run with `--samples 5` where the first
/// had 3 profiled, optimized and validated the first run's samples and said only
/// "reusing". Checked: the retrieval and text sample counts, each sample's seed (from
/// `--seed` and its index), its filler source, and answers longer than --max-new-tokens.
fn calib_settings_differ(
    args: &PipelineArgs,
    have: &[calib::CalibSample],
    n: u32,
    samples: usize,
    seed: u64,
) -> Option<String> {
    let at_n: Vec<&calib::CalibSample> = have.iter().filter(|s| s.length_level == n).collect();
    let texts = at_n.iter().filter(|s| s.task == "text").count();
    let retrieval = at_n.len() - texts;
    if retrieval != samples {
        return Some(format!(
            "it holds {retrieval} retrieval samples of length {n} and this run asks for \
             {samples} (--samples for the profile lengths, --validate-samples for the \
             held-out length)"
        ));
    }
    if texts != args.text_samples {
        return Some(format!(
            "it holds {texts} text samples of length {n} and --text-samples is {}",
            args.text_samples
        ));
    }
    let source = calib::TextSource::parse(&args.source).ok()?;
    let passkey_source = calib::TextSource::parse(&args.passkey_source).ok()?;
    for s in &at_n {
        let index =
            s.id.rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok());
        if index.is_some_and(|i| calib::sample_seed(seed, n, i) != s.seed) {
            return Some(format!(
                "sample `{}` was drawn with another --seed than {}",
                s.id, args.seed
            ));
        }
        let (want, flag) = if s.task == "passkey" {
            (passkey_source.name(), "--passkey-source")
        } else {
            (source.name(), "--source")
        };
        if s.source != want {
            return Some(format!(
                "sample `{}` has the filler `{}` and {flag} gives `{want}`",
                s.id, s.source
            ));
        }
        if s.task != "text" && s.response_tokens.len() > args.max_new_tokens {
            return Some(format!(
                "sample `{}` has an answer of {} tokens, more than --max-new-tokens {}",
                s.id,
                s.response_tokens.len(),
                args.max_new_tokens
            ));
        }
    }
    None
}

/// Makes the child `cmd` starts end (SIGTERM) when this process ends, on Linux: a
/// pipeline killed alone (a CI job's timeout, Python's `Popen.terminate()` or
/// `subprocess.run(timeout=...)`, `kill PID`: the signal reaches the pipeline, not its
/// process group as Ctrl-C in a terminal does) left its `moa profile --shard` children
/// running for the rest of their share, writing into the work folder beside the re-run
/// (round 36). Elsewhere nothing is set and the children run to their end as before.
fn end_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: the hook runs in the forked child before exec and calls only the
        // async-signal-safe `prctl` and `getppid`, allocating nothing.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent ended between the fork and the prctl: no signal will come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "the moa pipeline that started it ended",
                    ));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Profiles in `args.profile_jobs` child processes (`moa profile --shard k/n`), each with
/// an equal share of the cores: candle's CPU forward does not scale past a few threads, so
/// on a many-core machine processes are what makes profiling fast. The samples land in
/// the profile folder's store; the in-process run after this only averages them.
fn profile_in_processes(
    args: &PipelineArgs,
    calib: &Path,
    out: &Path,
    lengths: &[u32],
    under_plan: Option<&Path>,
) -> anyhow::Result<()> {
    let jobs = args.profile_jobs;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let exe = std::env::current_exe().context("finding the moa executable")?;
    let lengths: Vec<String> = lengths.iter().map(u32::to_string).collect();
    eprintln!("   {jobs} processes x {threads} threads (--profile-jobs)");
    let mut children = Vec::with_capacity(jobs);
    for k in 0..jobs {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("profile")
            .arg("--calib")
            .arg(calib)
            .arg("--lengths")
            .arg(lengths.join(","))
            .arg("--block")
            .arg(args.block.to_string())
            .arg("--shard")
            .arg(format!("{k}/{jobs}"))
            .arg("--quiet")
            .arg("-o")
            .arg(out)
            .env("RAYON_NUM_THREADS", threads.to_string());
        if let Some(m) = &args.model {
            cmd.arg("--model").arg(m);
        }
        if let Some(p) = under_plan {
            cmd.arg("--under-plan").arg(p);
        }
        if args.drop_wrong {
            cmd.arg("--drop-wrong");
        }
        end_with_parent(&mut cmd);
        children.push(
            cmd.spawn()
                .with_context(|| format!("starting `{}`", exe.display()))?,
        );
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait().context("waiting for a profile process")?.success() {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {jobs} profile processes failed (their errors are above)");
    }
    Ok(())
}

/// The trust-region step of `--near PLAN --max-changes K`, checked before any step runs.
struct NearStep {
    plan: PathBuf,
    /// The hex digits of PLAN's hash ([`moa::eval::masking_key`]): names its folders.
    hash: String,
    max_changes: usize,
}

fn near_step(args: &PipelineArgs) -> anyhow::Result<Option<NearStep>> {
    let (Some(path), Some(k)) = (&args.near, args.max_changes) else {
        return Ok(None);
    };
    let plan = moa::plan::Plan::load(path)
        .with_context(|| format!("--near `{}`: not a usable plan", path.display()))?;
    let model = super::model_arg(args.model.as_deref())?;
    let (config, _) = moa::model::read_config(&model)
        .with_context(|| format!("reading the config of `{}`", model.display()))?;
    config.check_plan(&plan).with_context(|| {
        format!(
            "--near `{}` is for another model shape than `{}`",
            path.display(),
            model.display()
        )
    })?;
    let units = if args.per_query_head {
        "query heads"
    } else {
        "KV groups"
    };
    super::check_max_changes(k, path, plan.model(), !args.per_query_head, units)?;
    // The optimizer checks these too, but only after the profiles: here they cost nothing.
    let grid = {
        let mut lens = args.profile_lengths.clone();
        lens.sort_unstable();
        let (Some(&lo), Some(&hi)) = (lens.first(), lens.last()) else {
            bail!("--profile-lengths: give at least one length to profile under --near");
        };
        moa::optimize::CandidateGrid {
            max_alpha: Some(0),
            ..moa::optimize::CandidateGrid::upstream(lo, hi, hi.max(args.validate_length))
        }
        .rules()
    };
    let m = plan.model();
    let group = if args.per_query_head {
        1
    } else {
        (m.q_heads / m.kv_heads.max(1)) as usize
    };
    for (l, layer) in plan.layers().iter().enumerate() {
        for (u, heads) in layer.rules.chunks(group).enumerate() {
            let r = heads[0];
            if heads.iter().any(|&x| x != r) {
                bail!(
                    "--near `{}`: layer {l}, KV group {u} gives its query heads different rules; the pipeline optimises one rule per KV group (or give --per-query-head)",
                    path.display()
                );
            }
            if !grid.contains(&r) {
                bail!(
                    "--near `{}`: layer {l}, unit {u} has the rule alpha {}, beta {}/{}, not one of the pipeline's candidate rules (alpha 0, beta a multiple of 1/8 with the span within N at --profile-lengths and --validate-length)",
                    path.display(),
                    r.alpha,
                    r.beta_num,
                    moa::plan::BETA_DEN
                );
            }
        }
    }
    let key = moa::eval::masking_key(Some(&plan));
    Ok(Some(NearStep {
        plan: path.clone(),
        hash: key.trim_start_matches("plan:").to_string(),
        max_changes: k,
    }))
}

/// `0.5` → `50`, `0.125` → `12.5`.
/// At most 6 decimals: `0.333 * 100.0` is 33.300000000000004 in f64, which named the plan
/// `<name>-33.300000000000004.toml`.
pub fn percent_label(density: f64) -> String {
    let p = density * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round() as i64)
    } else {
        let s = format!("{p:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// What names a model's work folder and plans: `smollm2-135m` for the default model, else
/// the --model file's stem or folder's name, lowercased, other characters than letters,
/// digits, `.`, `_` and `-` as `-`. Why: with fixed defaults, `moa pipeline --model M`
/// resumed from SmolLM2's work folder (its calibration and profiles, skipped as done) and
/// overwrote the shipped plans/smollm2-135m-moa-*.toml with plans for M.
fn model_label(model: Option<&std::path::Path>) -> String {
    // A folder's whole name: `Llama-3.2-1B` has no extension to strip.
    let stem = model.and_then(|m| {
        if m.extension().is_some_and(|e| e == "gguf") {
            m.file_stem()
        } else {
            m.file_name()
        }
    });
    let Some(stem) = stem else {
        return "smollm2-135m".into();
    };
    stem.to_string_lossy()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Refuses a `--name` that makes no usable plan file name: `--name ''` wrote
/// `plans/-50.toml`, which `moa-compile`, `moa plan show` and `moa generate --plan` then
/// read as a flag, after the whole run (round 46). Allowed: a name that is not empty and
/// does not start with `-`.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.starts_with('-') {
        bail!(
            "--name `{name}` is not usable: the plans are written as <name>-<percent>.toml, \
             and {}; allowed a name that is not empty and does not start with `-`",
            if name.is_empty() {
                "an empty name gives files such as `-50.toml`, which every command takes for a flag"
                    .to_string()
            } else {
                format!("a file such as `{name}-50.toml` is taken for a flag by every command")
            }
        );
    }
    Ok(())
}

pub fn run(args: PipelineArgs) -> anyhow::Result<ExitCode> {
    let label = model_label(args.model.as_deref());
    let workdir = args
        .workdir
        .clone()
        .unwrap_or_else(|| std::path::Path::new("runs").join(&label));
    let name = args.name.clone().unwrap_or_else(|| format!("{label}-moa"));
    check_name(&name)?;
    // 0 ran as 1 without a word (round 46).
    if args.profile_jobs == 0 {
        bail!("--profile-jobs 0 is out of range: allowed 1 or more (processes that profile)");
    }
    let w = &workdir;
    // The plans by name, as they will be written (a `<percent>` pattern hid what the
    // percent would be).
    let plan_files: Vec<String> = args
        .densities
        .iter()
        .map(|&d| {
            args.plans_dir
                .join(format!("{name}-{}.toml", percent_label(d)))
                .display()
                .to_string()
        })
        .collect();
    eprintln!(
        "moa pipeline: work folder {}, plans {}",
        w.display(),
        plan_files.join(", ")
    );
    // Two densities with one label (0.5 and 0.50) would run twice into one folder and plan.
    if let Some((i, f)) = plan_files
        .iter()
        .enumerate()
        .find(|(i, f)| plan_files[..*i].contains(f))
    {
        bail!(
            "--densities: {} names the plan `{f}` a second time: give each density once",
            args.densities[i]
        );
    }
    if let Some(&n) = args
        .profile_lengths
        .iter()
        .find(|&&n| n >= args.validate_length)
    {
        // The range too (round 22: a user with one profile length of 512 on a 512-token
        // model had to work out that no validation length was left).
        let longest = args.profile_lengths.iter().max().copied().unwrap_or(n);
        bail!(
            "--validate-length {} must be longer than every profile length (found {n}): \
             validation measures a length the profile never saw; allowed {} or more, up to \
             the model's context (or shorter --profile-lengths)",
            args.validate_length,
            u64::from(longest) + 1
        );
    }
    for &d in &args.densities {
        if !(d > 0.0 && d <= 1.0) {
            bail!("--densities: {d} is outside (0, 1]");
        }
    }
    if let Some(n) = args
        .objective_lengths
        .iter()
        .find(|n| !args.profile_lengths.contains(n))
    {
        bail!(
            "--objective-lengths: {n} is not one of --profile-lengths {:?}",
            args.profile_lengths
        );
    }
    // Before the long steps: bad values fail in a second, not after calibration.
    // `--device` too (calib loads the model before it asks for the device; round 45).
    moa::profile::device(&args.device)?;
    let model_path = super::model_arg(args.model.as_deref())?;
    let context = moa::model::read_config(&model_path)?.0.context_length;
    let mut lengths = args.profile_lengths.clone();
    lengths.push(args.validate_length);
    super::calib::check_text_scored(args.text_samples, args.text_scored)?;
    // A `repeat` document cannot be quoted (round 43: refused after the calibration's
    // first answers as a length too short). Before the text source's own checks.
    if let Ok(source) = calib::TextSource::parse(&args.source) {
        for (flag, n) in [
            ("--samples", args.samples),
            ("--validate-samples", args.validate_samples),
        ] {
            calib::check_quote_source(n, source)
                .with_context(|| format!("--source {} with {flag} {n}", args.source))?;
        }
    }
    let profiled = args.profile_lengths.clone();
    let least_prompt =
        super::calib::least_prompt(&model_path, args.samples + args.validate_samples > 0)?;
    super::calib::check_args(
        &lengths,
        &move |n| {
            if profiled.contains(&n) {
                "--profile-lengths"
            } else {
                "--validate-length"
            }
        },
        args.samples + args.text_samples,
        args.max_new_tokens,
        context,
        &model_path,
        least_prompt,
    )?;
    if args.validate_samples + args.text_samples == 0 {
        bail!("--validate-samples 0 (with no --text-samples) leaves nothing to validate: allowed 1 or more");
    }
    super::profile::check_block(args.block, &args.profile_lengths)?;
    let near = near_step(&args)?;
    // The later steps' settings too, or a bad one fails after an hour of calibration and
    // profiling (`--time-limit 0`, `--text-weight -1`, `--max-rules-per-layer 0`).
    if !(args.text_weight.is_finite() && args.text_weight >= 0.0) {
        bail!(
            "--text-weight {} is out of range: allowed a finite number >= 0",
            args.text_weight
        );
    }
    for &density in &args.densities {
        super::optimize::check_settings(&optimize_args(&args, density))?;
    }
    // A density below what the sinks and the least span leave at the profile lengths
    // failed at the optimize step, after the calibration and the profiles.
    let span = match &near {
        Some(n) => moa::plan::Plan::load(&n.plan)?.span().clone(),
        None => moa::plan::SpanSection::default(),
    };
    for &density in &args.densities {
        super::optimize::check_reach(
            &optimize_args(&args, density),
            &args.profile_lengths,
            span.clone(),
        )
        .with_context(|| format!("--densities {density}"))?;
    }
    // Where the results go, checked now: `--plans-dir FILE` failed "creating FILE: File
    // exists" when the first plan was written, after the whole run (1.5 h on SmolLM2).
    super::check_output_folder("--workdir", w)?;
    super::check_output_folder("--plans-dir", &args.plans_dir)?;
    if let Some(f) = plan_files.iter().find(|f| Path::new(f).is_dir()) {
        bail!("--plans-dir: the plan file `{f}` is a folder: move it, or give another --name");
    }
    // Only once the values are known good: a refused run leaves no empty work folder.
    let record = super::model_record::check(
        w,
        super::model_record::ModelId::Path(&model_path),
        &super::model_record::WORK_FOLDER,
    )?;
    // Last of the checks: every other flag is named first (a tiny test model's context
    // holds no pass-key prompt).
    super::calib::check_prompt_fits(
        least_prompt,
        args.max_new_tokens,
        context,
        &model_path,
        "--profile-lengths, --validate-length",
    )?;
    std::fs::create_dir_all(w).with_context(|| format!("creating {}", w.display()))?;
    // Held to the end of the run (the kernel drops it when the process ends, killed or
    // not): a second pipeline on this folder redid the first's steps beside it and
    // appended its scores to `scores.tsv` a second time (round 36).
    let _lock = lock_work_folder(w)?;
    record.write()?;

    step(
        "1/5 calib",
        "calibration samples answered by the dense model",
    );
    let calib_path = w.join("calib.jsonl");
    let calib_built = calib_file(
        &args,
        &calib_path,
        &args.profile_lengths,
        "--profile-lengths",
        args.samples,
        args.seed,
    )?;

    step("2/5 calib", "held-out samples at the validation length");
    let heldout = w.join("heldout.jsonl");
    // Another seed: held-out prompts share no filler draw or key with the profiled ones.
    calib_file(
        &args,
        &heldout,
        &[args.validate_length],
        "--validate-length",
        args.validate_samples,
        args.seed.wrapping_add(1_000_003),
    )?;

    let prof_dir = match &near {
        Some(n) => {
            step(
                "3/5 profile",
                &format!(
                    "influence of every attention entry on the response loss, under --near `{}`",
                    n.plan.display()
                ),
            );
            w.join(format!("profiles-under-{}", n.hash))
        }
        None => {
            step(
                "3/5 profile",
                "influence of every attention entry on the response loss",
            );
            w.join("profiles")
        }
    };
    let under_plan = near.as_ref().map(|n| n.plan.clone());
    let profile_files: Vec<PathBuf> = args
        .profile_lengths
        .iter()
        .map(|&n| prof_dir.join(profile::profile_file_name(n)))
        .collect();
    // A step made in this run makes the steps after it again: the profiles of a
    // calibration built now (deleted to redo it, as `reuse` says) were of the earlier
    // one, and so were the plans optimized from them; both were reused before.
    let missing: Vec<u32> = args
        .profile_lengths
        .iter()
        .zip(&profile_files)
        .filter(|(_, f)| calib_built || !f.exists())
        .map(|(&n, _)| n)
        .collect();
    for f in profile_files.iter().filter(|f| f.exists()) {
        if calib_built {
            eprintln!(
                "   redoing `{}`: `{}` was built in this run (samples it holds are read back from the store)",
                f.display(),
                calib_path.display()
            );
        } else {
            reuse(f);
        }
    }
    let profiled = !missing.is_empty();
    // One process per GPU is enough: the shards are for candle's CPU threads.
    if !missing.is_empty() && args.profile_jobs > 1 && args.device == "cpu" {
        profile_in_processes(
            &args,
            &calib_path,
            &prof_dir,
            &missing,
            under_plan.as_deref(),
        )?;
    }
    if !missing.is_empty() {
        super::profile::run(ProfileArgs {
            calib: calib_path.clone(),
            lengths: missing,
            block: args.block,
            max_samples: None,
            model: args.model.clone(),
            like: None,
            output: prof_dir.clone(),
            quiet: false,
            shard: None,
            device: args.device.clone(),
            text_weight: args.text_weight,
            // The pipeline profiles every answer unless told (its tests run a random
            // model, which answers nothing right).
            drop_wrong: args.drop_wrong,
            // At dense, or under the --near plan (docs/CALIBRATION.md, "Cost under the
            // plan"); its own folder, so a resumed run never mixes the two.
            under_plan: under_plan.clone(),
        })?;
    }

    let mut chosen = Vec::new();
    for &density in &args.densities {
        let pct = percent_label(density);
        step(
            "4/5 optimize",
            &match args.objective_lengths.as_slice() {
                [] => format!("plans at {pct}% KV density (Pareto set over the profiled lengths)"),
                ns => format!("a plan at {pct}% KV density (loss summed at N = {ns:?})"),
            },
        );
        let opt_dir = match &near {
            Some(n) => w.join(format!("optimize-{pct}-near-{}-k{}", n.hash, n.max_changes)),
            None => w.join(format!("optimize-{pct}")),
        };
        let done = opt_dir.join("summary.txt").exists();
        if done && !profiled {
            reuse(&opt_dir);
        } else {
            if done {
                eprintln!(
                    "   redoing `{}`: its profiles were made in this run",
                    opt_dir.display()
                );
            }
            super::optimize::run(OptimizeArgs {
                profiles: profile_files.clone(),
                near: under_plan.clone(),
                max_changes: near.as_ref().map(|n| n.max_changes),
                // The written plans keep the near plan's model name and [span] section.
                plan_shape: under_plan.clone(),
                output: opt_dir.clone(),
                ..optimize_args(&args, density)
            })
            .with_context(|| match &near {
                Some(n) => format!(
                    "optimizing at {pct}% with --near `{}` --max-changes {}",
                    n.plan.display(),
                    n.max_changes
                ),
                None => format!("optimizing at {pct}%"),
            })?;
        }
        let mut plans: Vec<PathBuf> = std::fs::read_dir(&opt_dir)
            .with_context(|| format!("reading {}", opt_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        plans.sort();
        if plans.is_empty() {
            bail!(
                "the optimizer wrote no plan to `{}` (see its summary.txt)",
                opt_dir.display()
            );
        }
        // The step is taken only if a candidate validates better than where it started.
        if let Some(p) = &under_plan {
            plans.push(p.clone());
        }

        step(
            "5/5 validate",
            &format!(
                "held-out loss at {} tokens of the {} plan(s) at {pct}%",
                args.validate_length,
                plans.len()
            ),
        );
        let out = args.plans_dir.join(format!("{name}-{pct}.toml"));
        let vargs = ValidateArgs {
            calib: heldout.clone(),
            plans,
            length: Some(args.validate_length),
            max_samples: None,
            model: args.model.clone(),
            cache: Some(w.join("scores.tsv")),
            // Written below, with the chosen plan.
            output: None,
            best: None,
            gpu: args.gpu,
            f32: false,
        };
        let outcome = super::validate::validate(&vargs)?;
        out!("{}", outcome.table);
        super::write_whole(
            &w.join(format!("validate-{pct}.tsv")),
            outcome.table.as_bytes(),
        )?;
        let Some((src, report)) = &outcome.best else {
            bail!("no plan at {pct}% has a finite held-out loss");
        };
        super::validate::write_best(src, report, &outcome.dense, &heldout, &out)?;
        chosen.push((out, src.clone()));
    }
    outln!();
    for (out, src) in chosen {
        outln!("wrote {} (from {})", out.display(), src.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `moa optimize`'s arguments for one density of the pipeline, without profiles, near
/// plan or output folder (the run fills those in; the early check needs none of them).
fn optimize_args(args: &PipelineArgs, density: f64) -> OptimizeArgs {
    OptimizeArgs {
        profiles: Vec::new(),
        density: Some(density),
        band: None,
        max_rules_per_layer: args.max_rules_per_layer,
        gqa_native: !args.per_query_head,
        time_limit: args.time_limit,
        mip_gap: 1e-3,
        extra_lengths: vec![args.validate_length],
        objective_lengths: args.objective_lengths.clone(),
        pareto_intervals: None,
        // Rules that scale with N only: the plans serve the validation length,
        // beyond every profile, where an α > 0 rule drops keys no profile priced
        // (docs/CALIBRATION.md, "Diagnosis", finding 4).
        max_alpha: Some(0),
        min_beta: None,
        near: None,
        max_changes: None,
        plan_shape: None,
        method: "auto".into(),
        output: PathBuf::new(),
    }
}

/// The work folder's lock file: `<workdir>/.moa-pipeline.lock`, holding the running
/// pipeline's process id (for the message a second one gets).
const LOCK_FILE: &str = ".moa-pipeline.lock";

/// Takes `<workdir>/.moa-pipeline.lock` exclusively (an advisory `flock`, released when
/// the returned file is dropped or the process ends) and writes this process's id into it.
///
/// # Errors
/// Another process holds the lock ("another `moa pipeline` (process N) is running in the
/// work folder …"), or the file cannot be created or written.
fn lock_work_folder(w: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = w.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the work folder's lock `{}`", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let who = match pid.trim() {
                "" => String::new(),
                p => format!(" (process {p})"),
            };
            bail!(
                "another `moa pipeline`{who} is running in the work folder `{}`: wait for it \
                 to end (this run would resume from its files), or give another --workdir",
                w.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking `{}`", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("writing `{}`", path.display()))?;
    Ok(file)
}
