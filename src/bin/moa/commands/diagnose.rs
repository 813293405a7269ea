//! `moa diagnose`: for calibration (or evaluation) samples, which heads carry the answer,
//! what the influence profile makes of them, and whether a plan's spans reach the key
//! (src/profile/diagnose.rs; docs/CALIBRATION.md "Diagnosis").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::DType;
use moa::calib::{self, passkey_needle};
use moa::model::{self, Model, ModelTokenizer};
use moa::plan::Plan;
use moa::profile::diagnose::{diagnose, key_range, report_text, DiagnoseOptions};
use moa::profile::GradModel;

/// `moa diagnose`.
#[derive(clap::Args)]
pub struct DiagnoseArgs {
    /// Calibration JSONL (`moa calib`); samples need a needle position (pass key, quote).
    #[arg(long)]
    pub calib: PathBuf,
    /// The plan whose spans are checked.
    #[arg(long)]
    pub plan: PathBuf,
    /// Only this sample id (repeatable; default: every sample with a needle).
    #[arg(long)]
    pub sample: Vec<String>,
    /// At most this many samples.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// N at which the plan's spans are taken (default: the sample's length level, as the
    /// profile and `moa validate` use it).
    #[arg(long)]
    pub n: Option<u32>,
    /// Heads listed per sample, by key mass.
    #[arg(long, default_value_t = 12)]
    pub top: usize,
    /// Heads (by key mass) whose key removal is measured by a forward pass (0: none).
    #[arg(long, default_value_t = 6)]
    pub ablate: usize,
    /// Heads (by key mass, among those the plan does not reach) whose restore gain is
    /// measured: plan loss minus the loss with that head dense.
    #[arg(long, default_value_t = 6)]
    pub restore_heads: usize,
    /// Measure every layer's restore gain (one forward pass per layer).
    #[arg(long)]
    pub restore_layers: bool,
    /// Key length in tokens from the needle's start, 1 or more (default: the pass-key
    /// needle sentence, or the response plus 12 tokens for a quote); a key past the
    /// prompt's end is cut there.
    #[arg(long)]
    pub key_tokens: Option<usize>,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the report here too (`-` or the file stdout goes to: the printed report is
    /// that output, written once).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    // Before the model loads: `--n 0` or an N past the plan's context took spans the plan
    // does not define, and `--key-tokens 0` measured a key of one token, without a word.
    let context = plan.model().max_context_tokens;
    if let Some(n) = args.n.filter(|n| !(1..=context).contains(n)) {
        bail!(
            "--n {n} is out of range: allowed 1..={context} (the plan's model.max_context_tokens)"
        );
    }
    if args.key_tokens == Some(0) {
        bail!("--key-tokens 0: allowed 1 or more (tokens of the key from the needle's start)");
    }
    if args.max_samples == Some(0) {
        bail!("--max-samples 0 selects no sample: allowed 1 or more");
    }
    // Written after every sample is diagnosed (minutes of forward and backward passes):
    // a missing folder or a folder given as the file failed only then.
    // `--output -` (or the file stdout goes to) is the report printed anyway.
    if let Some(o) = args.output.as_deref().filter(|o| !super::is_stdout(o)) {
        super::check_output_file("--output", o)?;
        let model = super::model_or_default(args.model.as_deref());
        let mut inputs = vec![args.calib.as_path(), args.plan.as_path()];
        inputs.extend(model.as_deref());
        super::check_not_an_input("--output", o, &inputs)?;
    }
    let samples = calib::read_jsonl(&args.calib)?;
    // A --sample the file does not hold is said before the model loads (minutes for a
    // big one): it was found only then, and the message did not list the samples.
    let with_needle: Vec<&str> = samples
        .iter()
        .filter(|s| s.expected.needle_token.is_some())
        .map(|s| s.id.as_str())
        .collect();
    let listed = if with_needle.len() > 12 {
        format!(
            "{}, … ({} in all)",
            with_needle[..12].join(", "),
            with_needle.len()
        )
    } else {
        with_needle.join(", ")
    };
    if !args.sample.is_empty()
        && !with_needle
            .iter()
            .any(|id| args.sample.iter().any(|s| s == id))
    {
        bail!(
            "`{}` has no sample with a needle position among {:?}{}",
            args.calib.display(),
            args.sample,
            if with_needle.is_empty() {
                String::new()
            } else {
                format!(": its samples with a needle are {listed}")
            }
        );
    }
    // A file with no sample to diagnose (empty, or only running-text samples) was said
    // after the model had loaded (5.7 s for SmolLM2; round 18's leftover): an empty one
    // before the model is looked for, one of running text after the config's checks.
    let no_needle = |what: String| {
        anyhow::anyhow!(
            "`{}` has no sample with a needle position ({what}): diagnose needs pass-key or quote samples; make them with `moa calib --out {} --lengths 1024`",
            args.calib.display(),
            args.calib.display()
        )
    };
    if samples.is_empty() {
        return Err(no_needle(
            "it holds no sample: an empty file, or blank lines only".into(),
        ));
    }
    let path = super::model_arg(args.model.as_deref())?;
    // The calibration's token ids and the plan's shape against the config, before any
    // weight is read (both were checked after the load).
    let config = model::read_config(&path)?.0;
    super::check_calib_vocab(&args.calib, &samples, &config)?;
    config.check_plan(&plan).with_context(|| {
        format!(
            "plan `{}` does not fit `{}`",
            args.plan.display(),
            path.display()
        )
    })?;
    if with_needle.is_empty() {
        return Err(no_needle(format!(
            "{} running text",
            match samples.len() {
                1 => "its 1 sample is".to_string(),
                n => format!("its {n} samples are"),
            }
        )));
    }
    let loaded = Model::load(&path)?;
    let tokenizer = ModelTokenizer::load(&path)?;
    let grad = GradModel::from_weights(
        loaded.config,
        loaded.weights,
        DType::F32,
        &candle_core::Device::Cpu,
    )?;
    let chosen: Vec<_> = samples
        .iter()
        .filter(|s| s.expected.needle_token.is_some())
        .filter(|s| args.sample.is_empty() || args.sample.contains(&s.id))
        .take(args.max_samples.unwrap_or(usize::MAX))
        .collect();
    if chosen.is_empty() {
        bail!(
            "`{}` has no sample with a needle position",
            args.calib.display()
        );
    }
    let mut out = String::new();
    for s in chosen {
        let key_tokens = match args.key_tokens {
            Some(k) => k,
            None if s.task == "passkey" => tokenizer
                .encode(&format!(" {}", passkey_needle(&s.expected.answer)))?
                .len(),
            None => s.response_tokens.len() + 12,
        };
        let key = key_range(s, key_tokens).map_err(|e| anyhow::anyhow!(e))?;
        let n = args.n.unwrap_or_else(|| moa::eval::sample_n(s));
        eprintln!("diagnosing {} ({} tokens)...", s.id, s.n_tokens);
        let opts = DiagnoseOptions {
            ablate: args.ablate,
            restore_heads: args.restore_heads,
            restore_layers: args.restore_layers,
        };
        let d = diagnose(&grad, s, key, &plan, n, opts)?;
        let text = report_text(&d, args.top, plan.span().sink_tokens);
        outln!("{text}");
        out.push_str(&text);
        out.push('\n');
    }
    if let Some(o) = args.output.as_deref().filter(|o| !super::is_stdout(o)) {
        super::write_whole(o, out.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
