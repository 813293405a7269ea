//! `moa calib`: calibration prompts answered by the dense model (greedy; the CPU reference,
//! or with `--device cuda` the profiler's model on a GPU),
//! written as JSONL; prints the dense accuracy per task and length.

use std::path::Path;
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
    // Before the model loads and any answer: a `repeat` document cannot be quoted at any
    // length (round 43: refused as a --lengths too short).
    calib::check_quote_source(args.samples, source)
        .with_context(|| format!("--source {} with --samples {}", args.source, args.samples))?;
    let path = super::model_arg(args.model.as_deref())?;
    let context = model::read_config(&path)?.0.context_length;
    check_text_scored(args.text_samples, args.text_scored)?;
    let least_prompt = least_prompt(&path, args.samples > 0)?;
    check_args(
        &args.lengths,
        &|_| "--lengths",
        args.samples + args.text_samples,
        args.max_new_tokens,
        context,
        &path,
        least_prompt,
    )?;
    // Found now, not after minutes of answers (a folder given as --out was refused only
    // when the answers were written).
    super::check_output_file("--out", &args.out)?;
    super::check_not_an_input("--out", &args.out, &[&path])?;
    check_prompt_fits(
        least_prompt,
        args.max_new_tokens,
        context,
        &path,
        "--lengths",
    )?;
    // Before the load: `--device cuda` in a build without the feature, or a misspelt
    // device, was refused only once the f32 weights were in memory (6-18 s and 1.6 GB for
    // a 2-layer Llama-3.2-1B shape on 2 cores; minutes for an 8B model; round 45).
    let device = moa::profile::device(&args.device)?;
    let tokenizer = ModelTokenizer::load(&path)?;
    let loaded = Model::load(&path)?;
    let eos = loaded.special.eos.clone();
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
    let mut log = AnswerLog::open(&args.out, &path, &args.device)?;
    let mut answer = |prompt: &[u32], max_new: usize| -> Result<Vec<u32>, CalibError> {
        progress.start_item(&format!("answering a {}-token prompt", prompt.len()));
        let t = Instant::now();
        if let Some(out) = log.get(prompt, max_new) {
            progress.skip_item(prompt.len() as f64, "  (answered by an earlier run)");
            return Ok(out);
        }
        let mut out = match &gpu {
            Some(m) => m.generate_greedy(prompt, max_new, &eos)?,
            None => reference.generate(prompt, max_new, Masking::Dense, &eos)?,
        };
        // The model ended at once: the end-of-sequence token is its answer.
        if out.is_empty() {
            out.extend(eos.first().copied());
        }
        log.put(prompt, max_new, &out)?;
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
    // "length 256 is too short for this model: …" named no flag (round 41): the library
    // speaks of lengths, the command of the flag that gave them.
    let samples =
        calib::build_samples(&cfg, &tokenizer, &mut answer, &mut report).map_err(|e| match e {
            calib::CalibError::Invalid(m) if m.starts_with("length ") => {
                calib::CalibError::Invalid(format!("{} {}", args.length_flag, &m[7..]))
            }
            e => e,
        })?;
    stop_before_write(&args.out)?;
    calib::write_jsonl(&args.out, &samples)
        .with_context(|| format!("writing {}", args.out.display()))?;
    log.finish();
    outln!(
        "wrote {} to {}",
        moa::input::counted(samples.len(), "sample"),
        args.out.display()
    );
    if let Some(note) = text_scored_note(&samples, args.text_scored) {
        eprintln!("{note}");
    }
    outln!(
        "dense accuracy (pass-key filler: {}; quote documents: {}):",
        passkey_source.name(),
        source.name()
    );
    for a in calib::accuracy(&samples) {
        outln!(
            "  {:<15} {:>6} tokens  {}/{}",
            a.task,
            a.length,
            a.correct,
            a.total
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a `text` sample scores fewer tokens than `--text-scored` (at most a quarter of a
/// sample is scored, `calib::build_samples`), a note naming each length and what it
/// scores: `--text-scored 256` at length 512 scored 127 tokens and said nothing
/// (session 30). `None` when every text sample scores `text_scored`.
pub fn text_scored_note(samples: &[calib::CalibSample], text_scored: usize) -> Option<String> {
    let mut short: Vec<(u32, usize)> = samples
        .iter()
        .filter(|s| s.task == "text" && s.response_tokens.len() < text_scored)
        .map(|s| (s.length_level, s.response_tokens.len()))
        .collect();
    short.sort_unstable();
    short.dedup_by_key(|(n, _)| *n);
    if short.is_empty() {
        return None;
    }
    let each = short
        .iter()
        .map(|(n, k)| format!("{k} tokens at length {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "note: --text-scored {text_scored} is more than a quarter of a text sample, the most \
         scored, so the text samples score {each} (give a longer length, or a smaller \
         --text-scored to silence this)"
    ))
}

/// The name of the test hook [`stop_before_write`] reads.
const STOP_BEFORE_WRITE: &str = "MOA_TEST_STOP_BEFORE_WRITE";

/// A test hook: with `MOA_TEST_STOP_BEFORE_WRITE=calib` in the environment the run stops
/// (an error, exit 1) after every answer is in `<out>.answers` and before `<out>` is
/// written, as a kill there would. tests/resume.rs stopped runs there by making a folder
/// of the fixed temporary `<out>.partial`; the temporaries are per writer now
/// (`calib::write_jsonl`), so that name no longer exists to block. Any other value is
/// ignored.
fn stop_before_write(out: &Path) -> anyhow::Result<()> {
    if std::env::var_os(STOP_BEFORE_WRITE).is_some_and(|v| v == "calib") {
        anyhow::bail!(
            "stopped before writing `{}`: {STOP_BEFORE_WRITE}=calib is set (a test hook; unset it)",
            out.display()
        );
    }
    Ok(())
}

/// The values of `moa calib` (and `moa pipeline`, which passes them on) that the steps
/// would otherwise take silently or fail on late: no sample at all (0 written, exit 0, and
/// the pipeline's next step then found none), no answer token (every answer was the end
/// token), and a length past the model's context (the CPU reference then asked for a
/// cache of the whole length: "memory allocation of 138232265616 bytes failed", an abort,
/// for `--lengths 100000`; 5000 on a 4096-token model ran, beyond what RoPE was trained on).
/// `--text-scored 0` with text samples was refused as "a text sample ... has 245 tokens:
/// too few to score --text-scored 0 of them", blaming the sample.
pub fn check_text_scored(text_samples: usize, text_scored: usize) -> anyhow::Result<()> {
    if text_samples > 0 && text_scored == 0 {
        anyhow::bail!(
            "--text-scored 0: a text sample needs at least 1 scored token: allowed 1 or more (at most a quarter of the sample is scored)"
        );
    }
    Ok(())
}

/// `flag_of(n)` names the flag that gave length `n` (`--lengths`; the pipeline's
/// `--profile-lengths` or `--validate-length`): "length 4096 is past the context" named
/// no flag, and from a default the user had typed no 4096.
pub fn check_args(
    lengths: &[u32],
    flag_of: &dyn Fn(u32) -> &'static str,
    samples: usize,
    max_new_tokens: usize,
    context: usize,
    model: &Path,
    least_prompt: usize,
) -> anyhow::Result<()> {
    if samples == 0 {
        anyhow::bail!("--samples 0 (with no --text-samples) builds no sample: allowed 1 or more");
    }
    if max_new_tokens == 0 {
        anyhow::bail!(
            "--max-new-tokens 0 is out of range: allowed {}",
            crate::DENSE_ANSWER_RANGE
        );
    }
    // `--lengths 1024,1024` built each sample twice (2 x --samples at that length).
    // Named by `flag_of`: `moa pipeline --profile-lengths 1024,1024` was refused as
    // "--lengths gives 1024 twice", a flag the pipeline does not have (round 41).
    if let Some(n) = lengths
        .iter()
        .enumerate()
        .find_map(|(i, n)| lengths[..i].contains(n).then_some(n))
    {
        anyhow::bail!("{} gives {n} twice: allowed each length once", flag_of(*n));
    }
    if let Some(n) = lengths.iter().find(|&&n| n as usize > context) {
        anyhow::bail!(
            "{} {n} is past the context of `{}` ({context} tokens): allowed lengths up to {context}",
            flag_of(*n),
            model.display()
        );
    }
    // `--lengths 0` was refused only after the model loaded (or, with the default text
    // source, as "python3-doc is not installed"), as "length 0 leaves no room for a
    // prompt after 16 answer tokens", naming no flag and no range.
    // The tokenizer's least prompt where a length can hold it; where none can, the
    // subword floor here and [`check_prompt_fits`] after the other checks (the range
    // would read `allowed 236..=128`).
    let mut least_prompt = least_prompt.max(moa::calib::MIN_PROMPT_TOKENS);
    if max_new_tokens.saturating_add(least_prompt) > context {
        least_prompt = moa::calib::MIN_PROMPT_TOKENS;
    }
    let least = max_new_tokens.saturating_add(least_prompt);
    if let Some(n) = lengths.iter().find(|&&n| (n as usize) < least) {
        let what = if least_prompt > moa::calib::MIN_PROMPT_TOKENS {
            ", the pass-key prompt's fixed text with this model's tokenizer,"
        } else {
            ","
        };
        anyhow::bail!(
            "{} {n} is too short: allowed {least}..={context} tokens (a prompt of at least {least_prompt} tokens{what} then the --max-new-tokens {max_new_tokens} answer tokens, within the context of `{}`)",
            flag_of(*n),
            model.display()
        );
    }
    Ok(())
}

/// Refuses every length where the model's context cannot hold a pass-key prompt of
/// `least_prompt` tokens ([`least_prompt`]) and its `max_new_tokens` answer: no length
/// fits. Called after the command's other checks (which [`check_args`] leaves to them).
pub fn check_prompt_fits(
    least_prompt: usize,
    max_new_tokens: usize,
    context: usize,
    model: &Path,
    flags: &str,
) -> anyhow::Result<()> {
    let least = max_new_tokens.saturating_add(least_prompt);
    if least > context {
        anyhow::bail!(
            "{flags}: no length fits the context of `{}` ({context} tokens): a pass-key prompt \
             takes at least {least_prompt} tokens with this model's tokenizer, then the \
             --max-new-tokens {max_new_tokens} answer tokens ({least} in all); use a model of \
             a longer context, or text samples alone (--samples 0 --text-samples K)",
            model.display()
        );
    }
    Ok(())
}

/// The least prompt [`check_args`] allows for `model`: the pass-key prompt's fixed text with
/// its tokenizer where pass-key samples are built (`passkeys`), else (or where the
/// tokenizer does not load) [`moa::calib::MIN_PROMPT_TOKENS`].
pub fn least_prompt(model: &Path, passkeys: bool) -> anyhow::Result<usize> {
    if !passkeys {
        return Ok(calib::MIN_PROMPT_TOKENS);
    }
    // A tokenizer that does not load is reported where the command loads it.
    let Ok(tokenizer) = ModelTokenizer::load(model) else {
        return Ok(calib::MIN_PROMPT_TOKENS);
    };
    Ok(calib::passkey_fixed_tokens(&tokenizer)?.max(calib::MIN_PROMPT_TOKENS))
}

/// The dense answers of a `moa calib` run, appended to `<out>.answers` as each prompt is
/// answered (one JSON line: key, token ids), so that a run stopped before it writes
/// `<out>` (the answers take minutes: 20 s per 2k prompt on 2 cores) loses none of them:
/// the next run with the same --out answers from the log. The key is the prompt, the
/// answer length, the model file (path, size, modification time) and the device, so a
/// changed model or device never reuses an answer. A line cut by a kill is skipped. The
/// log is removed once `<out>` is written.
struct AnswerLog {
    path: std::path::PathBuf,
    /// What every key starts with: the model and device.
    origin: String,
    known: std::collections::HashMap<String, Vec<u32>>,
    /// False for an --out that is not a regular file (`/dev/stdout`).
    enabled: bool,
    /// Opened for appending at the first answer.
    file: Option<std::fs::File>,
    /// The log ends in a line cut by a kill: the next line starts on a line of its own.
    cut: bool,
}

impl AnswerLog {
    fn open(out: &Path, model: &Path, device: &str) -> anyhow::Result<AnswerLog> {
        let mut path = out.as_os_str().to_owned();
        path.push(".answers");
        let path = std::path::PathBuf::from(path);
        let meta = std::fs::metadata(model)
            .with_context(|| format!("cannot read `{}`", model.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let origin = format!(
            "{}|{}|{modified}|{device}",
            std::fs::canonicalize(model)
                .unwrap_or_else(|_| model.to_path_buf())
                .display(),
            meta.len()
        );
        let mut known = std::collections::HashMap::new();
        let mut cut = false;
        // Only a regular file is a log (an --out of /dev/stdout has none).
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            let text = moa::input::read_to_string(&path, "answer log", moa::input::MAX_DATA_BYTES)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            cut = !text.is_empty() && !text.ends_with('\n');
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let (Some(key), Some(ids)) = (v["key"].as_str(), v["answer"].as_array()) else {
                    continue;
                };
                let ids: Option<Vec<u32>> = ids
                    .iter()
                    .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                    .collect();
                if let Some(ids) = ids {
                    known.insert(key.to_string(), ids);
                }
            }
            if !known.is_empty() {
                eprintln!(
                    "   `{}`: {} dense answers of an earlier, stopped run (used where the model, device and prompt are the same)",
                    path.display(),
                    known.len()
                );
            }
        }
        // An --out of /dev/stdout keeps no log; otherwise the log is made at the first
        // answer, so a run refused before any leaves no file.
        let enabled = std::fs::metadata(out).map_or(true, |m| m.is_file());
        Ok(AnswerLog {
            path,
            origin,
            known,
            enabled,
            file: None,
            cut,
        })
    }

    fn key(&self, prompt: &[u32], max_new: usize) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.origin.as_bytes());
        h.update((max_new as u64).to_le_bytes());
        for id in prompt {
            h.update(id.to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn get(&self, prompt: &[u32], max_new: usize) -> Option<Vec<u32>> {
        self.known.get(&self.key(prompt, max_new)).cloned()
    }

    fn put(&mut self, prompt: &[u32], max_new: usize, answer: &[u32]) -> Result<(), CalibError> {
        use std::io::Write;
        let json = serde_json::json!({ "key": self.key(prompt, max_new), "answer": answer });
        if !self.enabled {
            return Ok(());
        }
        let io = |source| CalibError::Io {
            path: self.path.display().to_string(),
            action: "write",
            source,
        };
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            self.file = Some(f);
        }
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        // One write per line, so a kill cuts at most the line being written.
        let line = format!("{}{json}\n", if self.cut { "\n" } else { "" });
        self.cut = false;
        let written = f.write_all(line.as_bytes());
        if written.is_err() && std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0) {
            // A log that never held an answer (a full disk at the first one) is no resume
            // point: it was left beside --out as an empty file (round 22).
            let _ = std::fs::remove_file(&self.path);
        }
        written.map_err(io)
    }

    /// `<out>` is written: the log has served.
    fn finish(self) {
        if self.enabled {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
