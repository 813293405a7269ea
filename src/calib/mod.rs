//! Calibration data for profiling (docs/CALIBRATION.md): long inputs whose answers depend
//! on far-away content, answered by the dense model itself (model alignment: its own
//! greedy answer is the target), stored as JSONL with token ids and a response span.
//!
//! Two tasks, both in completion form (the dense SmolLM2-135M does them well, so the
//! profile sees the heads that matter): `passkey` (a 5-digit key at a random depth of
//! filler text, asked for at the end) and `quote` (complete a sentence of the document from
//! its first words, asked after the whole document). [`text`] supplies the filler.
//!
//! Everything here is deterministic by seed; the model enters only through the
//! `answer` callback of [`build_samples`], so tests can use a stub.

#![warn(missing_docs)]

pub mod text;

use std::io::{BufRead, Write};
use std::ops::Range;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::{ModelError, ModelTokenizer};
pub use text::TextSource;

/// Every failure of building, reading and checking calibration data.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    /// A filler text source that is not installed or too short (the Python documentation
    /// without `python3-doc`); the message says what to install or which source to use.
    #[error("{0}")]
    MissingSource(String),
    /// Any other bad input (an unknown text source, a length that leaves no room for a
    /// prompt, filler that does not fit, an empty model answer); the message names the
    /// value and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// A prompt's fixed text (instruction, needle and question) alone takes `fixed` tokens
    /// with the model's tokenizer, more than the `budget` left for the prompt: callers
    /// that know the flag say which length to give (round 22: `moa calib` said "give a
    /// longer length" without the number).
    #[error(
        "the prompt's fixed text (instruction, needle and question) alone takes {fixed} \
         tokens with this tokenizer, more than the {budget} tokens left for a prompt"
    )]
    FixedTextTooLong {
        /// Tokens of the fixed text.
        fixed: usize,
        /// Tokens left for the prompt at this length (the length less the answer's tokens).
        budget: usize,
    },
    /// `action`: what failed (read, write, list), so an input that does not exist is
    /// not reported as "cannot read or write".
    #[error("cannot {action} `{path}`")]
    Io {
        /// The file or folder.
        path: String,
        /// What failed: `read`, `write`, `list`, …
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a calibration JSONL that is not a valid [`CalibSample`].
    #[error("`{path}` line {line}: {message}")]
    Parse {
        /// The JSONL file.
        path: String,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong (not UTF-8, the JSON error, or the failed check).
        message: String,
    },
    /// The tokenizer or the dense model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Text ↔ token ids (the model's tokenizer; tests use a byte-level stub).
pub trait TextCodec {
    /// Token ids of `text` (the model's tokenizer adds its BOS, as
    /// [`ModelTokenizer::encode`] does).
    fn encode(&self, text: &str) -> Result<Vec<u32>, CalibError>;
    /// The text of `ids`, special tokens included.
    fn decode(&self, ids: &[u32]) -> Result<String, CalibError>;
}

impl TextCodec for ModelTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, CalibError> {
        Ok(ModelTokenizer::encode(self, text)?)
    }
    fn decode(&self, ids: &[u32]) -> Result<String, CalibError> {
        Ok(ModelTokenizer::decode(self, ids, false)?)
    }
}

/// What the answer should be and whether the dense model gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// The pass key, or the rest of the quoted sentence.
    pub answer: String,
    /// The dense model's answer starts with it (or, when cut by the token limit, is a
    /// prefix of it).
    pub correct: bool,
    /// Requested relative depth of the needle (pass key or quoted sentence) in the filler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<f64>,
    /// Token index in the prompt where the needle (pass-key or quoted sentence) begins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needle_token: Option<usize>,
}

/// One JSONL line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibSample {
    /// `{task}-{length}-{index}`, e.g. `passkey-1024-0`: unique within one calibration set (not
    /// across sets; see [`CalibSample::fingerprint`]).
    pub id: String,
    /// `passkey`, `quote` or `text`.
    pub task: String,
    /// The profile length N this sample was built for (`n_tokens ≤ length_level`).
    pub length_level: u32,
    /// The prompt's token ids (BOS first where the tokenizer adds one).
    pub prompt_tokens: Vec<u32>,
    /// The dense model's greedy answer (the loss target); for `text`, the text's own
    /// last tokens.
    pub response_tokens: Vec<u32>,
    /// `prompt_tokens.len() + response_tokens.len()`.
    pub n_tokens: usize,
    /// The response mask as a span of the full sequence: `[start, end)`.
    pub response_span: [usize; 2],
    /// The filler's name ([`TextSource::name`]).
    pub source: String,
    /// The seed this sample was drawn from (derived from the run's seed).
    pub seed: u64,
    /// The dense model's answer as text (`response_tokens` decoded).
    pub dense_answer_text: String,
    /// The expected answer and whether the dense model gave it.
    pub expected: Expected,
}

impl CalibSample {
    /// sha256 (lowercase hex) of what a score or a profile of this sample is computed
    /// from: its tokens and response span. Sample ids (`passkey-1024-0`) repeat in every
    /// calibration of the same lengths, so the stores that outlive a run (profile
    /// samples, validation scores) key by this too.
    pub fn fingerprint(&self) -> String {
        let ids: Vec<String> = self.tokens().iter().map(u32::to_string).collect();
        let text = format!(
            "tokens {}; response {}..{}",
            ids.join(","),
            self.response_span[0],
            self.response_span[1]
        );
        crate::codegen::emit::sha256_hex(text.as_bytes())
    }

    /// Prompt then response: the sequence the profiler runs.
    pub fn tokens(&self) -> Vec<u32> {
        let mut t = self.prompt_tokens.clone();
        t.extend_from_slice(&self.response_tokens);
        t
    }

    /// The answer tokens' positions in [`CalibSample::tokens`].
    pub fn response_range(&self) -> Range<usize> {
        self.prompt_tokens.len()..self.prompt_tokens.len() + self.response_tokens.len()
    }

    /// One flag per token of [`CalibSample::tokens`]: true on the answer.
    pub fn response_mask(&self) -> Vec<bool> {
        let r = self.response_range();
        (0..self.n_tokens).map(|i| r.contains(&i)).collect()
    }

    /// Internal consistency (what a hand-edited file could break).
    pub fn check(&self) -> Result<(), String> {
        let r = self.response_range();
        if self.n_tokens != r.end {
            return Err(format!(
                "n_tokens = {} but prompt + response = {}",
                self.n_tokens, r.end
            ));
        }
        if self.response_span != [r.start, r.end] {
            return Err(format!(
                "response_span = {:?} but the prompt/response split is [{}, {}]",
                self.response_span, r.start, r.end
            ));
        }
        if self.prompt_tokens.is_empty() || self.response_tokens.is_empty() {
            return Err("empty prompt or response".into());
        }
        Ok(())
    }
}

/// How to build a calibration set.
#[derive(Clone, Debug)]
pub struct CalibConfig {
    /// One profile length per level (tokens); every sample fits in its level.
    pub lengths: Vec<u32>,
    /// Samples per length.
    pub samples: usize,
    /// The run's seed; each sample's is derived from it ([`sample_seed`]).
    pub seed: u64,
    /// Filler of the quote task's documents.
    pub source: TextSource,
    /// Filler around the pass key.
    pub passkey_source: TextSource,
    /// The dense model's answer is cut at this many tokens (and at its first newline).
    pub max_new_tokens: usize,
    /// `text` samples per length, after the retrieval ones (0: none). Each is `length`
    /// tokens of running `source` text whose last `text_scored` tokens are the response:
    /// the plain language-model loss of long text, beside the retrieval answers' loss
    /// (docs/CALIBRATION.md, "Perplexity").
    pub text_samples: usize,
    /// Response tokens of a `text` sample (teacher-forced; the text itself is the target).
    pub text_scored: usize,
}

/// The per-sample seed: splitmix64 of (seed, length, index), so adding lengths does not
/// change the other lengths' samples (the sample count sets the pass-key depth strata).
pub fn sample_seed(seed: u64, length: u32, index: usize) -> u64 {
    let mut z =
        seed ^ (u64::from(length) << 32) ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Filler sentences with their token counts.
type Filler = [(String, usize)];

/// The dense model: `answer(prompt_tokens, max_new_tokens)` → its greedy continuation.
pub type AnswerFn<'a> = dyn FnMut(&[u32], usize) -> Result<Vec<u32>, CalibError> + 'a;

/// A prompt before the model answers.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// `passkey` or `quote`.
    pub task: &'static str,
    /// The prompt's token ids, at most the budget given.
    pub tokens: Vec<u32>,
    /// The answer and the needle's depth and token index; `correct` is still false.
    pub expected: Expected,
}

/// The instruction that opens a pass-key prompt (docs/CALIBRATION.md, "passkey").
pub const PASSKEY_INTRO: &str = "There is an important pass key hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the pass key.\n\n";
/// The question that closes a pass-key prompt, in completion form: the model's next tokens
/// are the key.
pub const PASSKEY_QUESTION: &str = "\n\nWhat is the pass key? The pass key is";
/// The instruction that opens a quote prompt, before the document.
pub const QUOTE_INTRO: &str =
    "Read the document below. You will be asked to quote one of its sentences.\n\nDocument:\n";
/// Fewest words of the quoted sentence the question gives (more when needed to make the
/// prefix unique in the document); the model completes the rest.
pub const QUOTE_PREFIX_WORDS: usize = 5;

/// The end of a quote prompt: the sentence's first words with no question around them, so
/// the completion is the rest of the sentence, copied from the document (SmolLM2-135M
/// closed the quote at once when the prefix was quoted inside a question).
pub fn quote_question(prefix: &str) -> String {
    format!("\n\nEnd of document. Here is one of its sentences again, word for word: {prefix}")
}

/// The needle sentence that hides pass key `key` (given twice) in the filler.
pub fn passkey_needle(key: &str) -> String {
    format!("The pass key is {key}. Remember it. {key} is the pass key.")
}

/// Consecutive sentences of `pool` from a random start (wrapping), with their token counts,
/// until about `budget` tokens.
fn take_filler(
    pool: &[String],
    codec: &dyn TextCodec,
    rng: &mut StdRng,
    budget: usize,
) -> Result<Vec<(String, usize)>, CalibError> {
    if pool.is_empty() {
        return Err(CalibError::Invalid("the filler text pool is empty".into()));
    }
    let mut at = rng.random_range(0..pool.len());
    let mut out = Vec::new();
    let mut total = 0;
    loop {
        let s = &pool[at % pool.len()];
        let n = codec.encode(&format!(" {s}"))?.len();
        // Stop before the budget is exceeded: the prompt must fit, and the sentences
        // are whole.
        if total + n > budget {
            break;
        }
        total += n;
        out.push((s.clone(), n));
        at += 1;
        if out.len() > 4 * pool.len() + budget {
            break;
        }
    }
    Ok(out)
}

fn join(sents: &[(String, usize)]) -> String {
    sents
        .iter()
        .map(|(s, _)| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encodes `render(filler)` and drops filler sentences from the end until the prompt fits
/// `budget` tokens.
fn fit(
    codec: &dyn TextCodec,
    budget: usize,
    filler: &mut Vec<(String, usize)>,
    render: &dyn Fn(&Filler) -> String,
) -> Result<Vec<u32>, CalibError> {
    loop {
        let tokens = codec.encode(&render(filler))?;
        if tokens.len() <= budget {
            return Ok(tokens);
        }
        // Drop about the excess at once (the sentence counts are estimates), then re-check.
        let mut excess = tokens.len() - budget;
        while excess > 0 {
            let Some((_, n)) = filler.pop() else {
                // The filler is gone: what is left is the fixed text alone.
                let fixed = codec.encode(&render(filler))?.len();
                return Err(CalibError::FixedTextTooLong { fixed, budget });
            };
            excess = excess.saturating_sub(n.max(1));
        }
    }
}

/// The text around a needle: an instruction, the needle sentence(s), the closing question.
#[derive(Clone, Debug)]
pub struct NeedleFormat<'a> {
    /// The instruction before the filler ([`PASSKEY_INTRO`] or [`QUOTE_INTRO`]).
    pub intro: &'a str,
    /// The sentence(s) hidden in the filler.
    pub needle: String,
    /// The text after the filler that asks for the answer.
    pub question: &'a str,
}

/// A pass-key prompt of at most `budget` tokens with the key at relative `depth` ∈ [0, 1]
/// of the filler.
pub fn passkey_prompt(
    pool: &[String],
    codec: &dyn TextCodec,
    rng: &mut StdRng,
    budget: usize,
    depth: f64,
) -> Result<Prompt, CalibError> {
    let key = format!("{}", rng.random_range(10_000..100_000u32));
    let format = NeedleFormat {
        intro: PASSKEY_INTRO,
        needle: passkey_needle(&key),
        question: PASSKEY_QUESTION,
    };
    needle_prompt(pool, codec, rng, budget, depth, "passkey", &key, &format)
}

/// The fewest tokens a pass-key prompt takes with `codec`: its fixed text (instruction,
/// needle and question) without filler, the largest over a few keys (fixed-width numbers;
/// a BPE may merge some digit pairs). `moa calib` and `moa pipeline` check their lengths
/// against it before any work: [`MIN_PROMPT_TOKENS`] is a subword tokenizer's floor, and a
/// byte-level tokenizer's pass-key prompt takes about 230 tokens (round 22: `--lengths 80`
/// was allowed as "80..=512", then refused without the number).
pub fn passkey_fixed_tokens(codec: &dyn TextCodec) -> Result<usize, CalibError> {
    let mut rng = StdRng::seed_from_u64(0);
    let mut most = 0;
    for _ in 0..8 {
        let key = format!("{}", rng.random_range(10_000..100_000u32));
        let mut bare = String::from(PASSKEY_INTRO);
        if !bare.ends_with('\n') {
            bare.push(' ');
        }
        bare.push_str(&passkey_needle(&key));
        bare.push_str(PASSKEY_QUESTION);
        most = most.max(codec.encode(&bare)?.len());
    }
    Ok(most)
}

/// A needle-in-filler prompt of at most `budget` tokens: `format.intro`, filler from `pool`
/// with `format.needle` at relative `depth` ∈ [0, 1] of it, then `format.question`. The
/// expected answer is `key`; `needle_token` is the prompt token where the needle begins.
#[allow(clippy::too_many_arguments)]
pub fn needle_prompt(
    pool: &[String],
    codec: &dyn TextCodec,
    rng: &mut StdRng,
    budget: usize,
    depth: f64,
    task: &'static str,
    key: &str,
    format: &NeedleFormat,
) -> Result<Prompt, CalibError> {
    let (intro, needle, question) = (format.intro, format.needle.as_str(), format.question);
    let overhead = codec.encode(&format!("{intro}{needle}{question}"))?.len() + 2;
    let mut filler = take_filler(pool, codec, rng, budget.saturating_sub(overhead))?;
    let total: usize = filler.iter().map(|(_, n)| n).sum();
    // Split where the running token count reaches depth·total.
    let target = depth.clamp(0.0, 1.0) * total as f64;
    let mut acc = 0usize;
    let mut split = filler.len();
    for (i, (_, n)) in filler.iter().enumerate() {
        if acc as f64 + *n as f64 / 2.0 > target {
            split = i;
            break;
        }
        acc += n;
    }
    let render = |f: &[(String, usize)]| -> String {
        // If `fit` had to drop sentences, they come off the end (after the needle first).
        let cut = split.min(f.len());
        let b = join(&f[..cut]);
        let a = join(&f[cut..]);
        let mut s = String::from(intro);
        for part in [b.as_str(), needle, a.as_str()] {
            if !part.is_empty() {
                if !s.ends_with('\n') {
                    s.push(' ');
                }
                s.push_str(part);
            }
        }
        s.push_str(question);
        s
    };
    let tokens = fit(codec, budget, &mut filler, &render)?;
    let before = &filler[..split.min(filler.len())];
    let needle_token = codec.encode(&format!("{intro}{}", join(before)))?.len();
    Ok(Prompt {
        task,
        tokens,
        expected: Expected {
            answer: key.to_string(),
            correct: false,
            depth: Some(depth),
            needle_token: Some(needle_token),
        },
    })
}

/// A "quote the sentence that begins with ..." prompt of at most `budget` tokens: the
/// sentence sits at relative `depth` of the document and the answer is the rest of it,
/// copied from far back (what the dense SmolLM2-135M does well, unlike "repeat the first
/// sentence", which it failed at every length: docs/CALIBRATION.md).
pub fn quote_prompt(
    pool: &[String],
    codec: &dyn TextCodec,
    rng: &mut StdRng,
    budget: usize,
    depth: f64,
) -> Result<Prompt, CalibError> {
    // An estimate (a typical prefix): `fit` drops filler if the real question is longer.
    let typical = quote_question(&"word ".repeat(QUOTE_PREFIX_WORDS + 1));
    let overhead = codec.encode(&format!("{QUOTE_INTRO}{typical}"))?.len() + 2;
    let mut filler = take_filler(pool, codec, rng, budget.saturating_sub(overhead))?;
    // The quoted sentence's prefix must name it: the shortest prefix of at least
    // QUOTE_PREFIX_WORDS words that occurs once in the document, leaving at least three
    // words to complete. `fit` may drop a few sentences off the end, so the sentence is
    // taken from the first 90%.
    if filler.is_empty() {
        // No sentence fits beside the fixed text: the length is short, not the text
        // repetitive (round 43: "the text source repeats itself too much" at
        // `--lengths 260` of a byte-level model, where 280 worked). The least length holds
        // the fixed text and the text's longest sentence, whichever one a sample starts at.
        let mut longest = 0;
        for s in pool {
            longest = longest.max(codec.encode(&format!(" {s}"))?.len());
        }
        return Err(CalibError::FixedTextTooLong {
            fixed: overhead + longest,
            budget,
        });
    }
    let document = format!(" {}", join(&filler));
    let usable = (filler.len() * 9 / 10).max(1).min(filler.len());
    let candidates: Vec<(usize, usize)> = (0..usable)
        .filter_map(|i| {
            let words: Vec<&str> = filler[i].0.split_whitespace().collect();
            (QUOTE_PREFIX_WORDS..words.len().saturating_sub(2))
                .find(|&k| {
                    document
                        .matches(&format!(" {}", words[..k].join(" ")))
                        .count()
                        == 1
                })
                .map(|k| (i, k))
        })
        .collect();
    if candidates.is_empty() {
        return Err(CalibError::Invalid(
            "no filler sentence has a prefix that occurs once in the document (the text \
             source repeats itself too much for the quote task)"
                .into(),
        ));
    }
    let pick = (depth.clamp(0.0, 1.0) * candidates.len() as f64) as usize;
    let (idx, k) = candidates[pick.min(candidates.len() - 1)];
    let sentence = filler[idx].0.clone();
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let prefix = words[..k].join(" ");
    let rest = words[k..].join(" ");
    let question = quote_question(&prefix);
    let render = |f: &[(String, usize)]| format!("{QUOTE_INTRO}{}{question}", join(f));
    let tokens = fit(codec, budget, &mut filler, &render)?;
    if idx >= filler.len() {
        return Err(CalibError::Invalid(format!(
            "the quoted sentence did not fit in {budget} tokens"
        )));
    }
    let needle_token = codec
        .encode(&format!("{QUOTE_INTRO}{}", join(&filler[..idx])))?
        .len();
    Ok(Prompt {
        task: "quote",
        tokens,
        expected: Expected {
            answer: rest,
            correct: false,
            depth: Some(depth),
            needle_token: Some(needle_token),
        },
    })
}

/// A `text` sample's tokens: consecutive sentences of `pool` from a random start, as many
/// as fit in `length` tokens; the caller splits off the last `text_scored` as the response.
/// Perplexity is measured this way (`moa eval`: long windows, the last tokens scored), so
/// a profile of these samples prices what a plan's windows cost the next-token loss of
/// running text, which the retrieval answers do not see.
pub fn text_tokens(
    pool: &[String],
    codec: &dyn TextCodec,
    rng: &mut StdRng,
    length: usize,
) -> Result<Vec<u32>, CalibError> {
    let mut filler = take_filler(pool, codec, rng, length)?;
    let render = |f: &Filler| join(f);
    fit(codec, length, &mut filler, &render)
}

/// Does the (possibly cut) answer give the expected one?
pub fn answer_is_correct(answer: &str, expected: &str) -> bool {
    // A quoted answer may end with the closing quote.
    let a = answer.trim().trim_end_matches('"');
    let e = expected.trim();
    !a.is_empty() && (a.starts_with(e) || (a.len() >= 8 && e.starts_with(a)))
}

/// The answer cut before its first newline (the answer to a completion prompt is its
/// first line; the rest is the model rambling on), keeping at least one token.
pub fn cut_answer(codec: &dyn TextCodec, answer: &[u32]) -> Result<Vec<u32>, CalibError> {
    for i in 1..answer.len() {
        if codec.decode(&answer[..=i])?.contains('\n') {
            // Keep the first token even if it is the newline: the target is never empty.
            let first_has_nl = codec.decode(&answer[..1])?.contains('\n');
            return Ok(answer[..i.max(usize::from(first_has_nl))].to_vec());
        }
    }
    Ok(answer.to_vec())
}

/// The answer cut after the token where one of `stops` first appears (inclusive): an
/// answer ends with its sentence (after a pass key the model goes on with filler:
/// " 62674. The sun is yellow."). Easy filler tokens in the target would dilute the loss
/// the profile is built from.
pub fn cut_after(
    codec: &dyn TextCodec,
    answer: &[u32],
    stops: &[char],
) -> Result<Vec<u32>, CalibError> {
    for i in 0..answer.len() {
        if codec.decode(&answer[..=i])?.contains(stops) {
            return Ok(answer[..=i].to_vec());
        }
    }
    Ok(answer.to_vec())
}

/// The characters that end a task's answer (see [`cut_after`]): both answers are the end
/// of one sentence.
pub fn answer_stops(task: &str) -> &'static [char] {
    match task {
        "passkey" | "quote" => &['.', '?', '!'],
        _ => &[],
    }
}

/// Dense accuracy of one task at one length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accuracy {
    /// `passkey` or `quote`.
    pub task: String,
    /// The profile length level (tokens).
    pub length: u32,
    /// Samples whose dense answer is the expected one.
    pub correct: usize,
    /// Samples of this task and length.
    pub total: usize,
}

/// Refuses quote samples (every third of `samples`: 3 or more) from
/// [`TextSource::Repeat`]: its five sentences of at most five words repeat, so none can be
/// named by its first words, at any length (round 43: `moa calib --source repeat --samples
/// 3` was refused as "--lengths 1000 is too short … give a longer length").
pub fn check_quote_source(samples: usize, source: TextSource) -> Result<(), CalibError> {
    if samples >= 3 && source == TextSource::Repeat {
        return Err(CalibError::Invalid(format!(
            "the quote task (every third sample: {samples} samples a length hold {}) cannot \
             quote the `repeat` text: its five sentences of at most five words repeat, so no \
             sentence is named by its first words at any length; allowed the python-doc or \
             generated text for the quote documents, or 1 or 2 samples a length (pass keys \
             only; `repeat` stays the pass-key filler)",
            crate::input::counted(samples / 3, "quote")
        )));
    }
    Ok(())
}

/// The fewest prompt tokens a calibration length must leave before the answer tokens.
pub const MIN_PROMPT_TOKENS: usize = 64;

/// Builds every sample: prompts per length (two pass-key prompts, then one quote prompt,
/// repeating), answered by `answer(prompt_tokens, max_new_tokens)` (the dense
/// model's greedy continuation). `progress(i, n)` is called after each sample.
pub fn build_samples(
    cfg: &CalibConfig,
    codec: &dyn TextCodec,
    answer: &mut AnswerFn,
    progress: &mut dyn FnMut(usize, usize, &CalibSample),
) -> Result<Vec<CalibSample>, CalibError> {
    // Each pool only where a sample reads it: `--samples 1` or 2 (pass keys only) failed
    // on a machine without python3-doc, the default quote source it never used (round 24).
    let quotes_or_text = cfg.samples >= 3 || cfg.text_samples > 0;
    check_quote_source(cfg.samples, cfg.source)?;
    let pool = if quotes_or_text {
        cfg.source.sentences(cfg.seed)?
    } else {
        Vec::new()
    };
    let passkey_pool = if cfg.samples == 0 {
        Vec::new()
    } else if cfg.passkey_source == cfg.source && quotes_or_text {
        pool.clone()
    } else {
        cfg.passkey_source.sentences(cfg.seed)?
    };
    let total = cfg.lengths.len() * (cfg.samples + cfg.text_samples);
    // Every retrieval prompt of every length first, then the answers: a length too short
    // for the quote task (`--lengths 2048,256 --samples 3`) was refused only when its
    // third sample came up, after the model had answered every earlier prompt (minutes
    // on a CPU for a real model; round 46). Building a prompt is cheap (tokenizing) and
    // each uses its own seeded stream, so the samples are the same either way.
    let mut prompts: Vec<Vec<(u64, Prompt)>> = Vec::with_capacity(cfg.lengths.len());
    for &length in &cfg.lengths {
        let mut of_length = Vec::with_capacity(cfg.samples);
        let budget = (length as usize)
            .checked_sub(cfg.max_new_tokens)
            .filter(|b| *b >= MIN_PROMPT_TOKENS)
            .ok_or_else(|| {
                CalibError::Invalid(format!(
                    "length {length} leaves no room for a prompt after {} answer tokens",
                    cfg.max_new_tokens
                ))
            })?;
        for s in 0..cfg.samples {
            let seed = sample_seed(cfg.seed, length, s);
            let mut rng = StdRng::seed_from_u64(seed);
            // Stratified depths per task: each sample gets its own slice of [0, 1].
            let prompt = if s % 3 == 2 {
                let k = s / 3;
                let n_quotes = cfg.samples / 3;
                let depth = (k as f64 + rng.random::<f64>()) / n_quotes.max(1) as f64;
                quote_prompt(&pool, codec, &mut rng, budget, depth)
            } else {
                let k = s - s / 3;
                let n_keys = cfg.samples - cfg.samples / 3;
                let depth = (k as f64 + rng.random::<f64>()) / n_keys.max(1) as f64;
                passkey_prompt(&passkey_pool, codec, &mut rng, budget, depth)
            };
            // Which length, and what to give: "the prompt template alone needs more than
            // 84 tokens" named neither, after a check that allowed the length (its least
            // prompt, 64 tokens, assumes a subword tokenizer; a byte-level one needs more).
            let prompt = prompt.map_err(|e| match e {
                CalibError::FixedTextTooLong { fixed, budget } => CalibError::Invalid(format!(
                    "length {length} is too short for this model: the {} with its \
                     tokenizer, more than the {budget} left after the {} answer tokens \
                     (--max-new-tokens): {}",
                    if s % 3 == 2 {
                        format!(
                            "quote prompt's fixed text (instruction and question) and one \
                             sentence of its document take up to {fixed} tokens"
                        )
                    } else {
                        format!(
                            "passkey prompt's fixed text (instruction, needle and question) \
                             alone takes {fixed} tokens"
                        )
                    },
                    cfg.max_new_tokens,
                    if s % 3 == 2 {
                        // The text's longest sentence: shorter lengths may hold the one a
                        // sample starts at.
                        format!(
                            "give a longer length: {} or more holds any of its sentences, \
                             where the model's context allows (else 1 or 2 samples a length, \
                             pass keys only)",
                            fixed + cfg.max_new_tokens
                        )
                    } else {
                        format!(
                            "allowed {} or more (up to the model's context)",
                            fixed + cfg.max_new_tokens
                        )
                    }
                )),
                CalibError::Invalid(m) => CalibError::Invalid(format!(
                    "length {length} is too short for this model: {m} after the {} answer \
                     tokens (--max-new-tokens); give a longer length",
                    cfg.max_new_tokens
                )),
                e => e,
            })?;
            of_length.push((seed, prompt));
        }
        prompts.push(of_length);
    }
    let mut out = Vec::with_capacity(total);
    for (&length, of_length) in cfg.lengths.iter().zip(prompts) {
        for (s, (seed, prompt)) in of_length.into_iter().enumerate() {
            let raw = answer(&prompt.tokens, cfg.max_new_tokens)?;
            if raw.is_empty() {
                return Err(CalibError::Invalid(
                    "the model's answer is empty (the answer callback must return at least \
                     one token, e.g. the end-of-sequence token)"
                        .into(),
                ));
            }
            let mut response = cut_answer(codec, &raw)?;
            let stops = answer_stops(prompt.task);
            if !stops.is_empty() {
                response = cut_after(codec, &response, stops)?;
            }
            let text = codec.decode(&response)?;
            let mut expected = prompt.expected;
            expected.correct = answer_is_correct(&text, &expected.answer);
            let n_tokens = prompt.tokens.len() + response.len();
            let sample = CalibSample {
                id: format!("{}-{length}-{s}", prompt.task),
                task: prompt.task.to_string(),
                length_level: length,
                response_span: [prompt.tokens.len(), n_tokens],
                prompt_tokens: prompt.tokens,
                response_tokens: response,
                n_tokens,
                source: if prompt.task == "passkey" {
                    cfg.passkey_source.name()
                } else {
                    cfg.source.name()
                }
                .to_string(),
                seed,
                dense_answer_text: text,
                expected,
            };
            out.push(sample);
            progress(out.len(), total, &out[out.len() - 1]);
        }
        // Plain text: no answer to ask for, the text's own last tokens are the target.
        // Indices after the retrieval samples, so adding text samples changes none of those.
        for k in 0..cfg.text_samples {
            let s = cfg.samples + k;
            let seed = sample_seed(cfg.seed, length, s);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut tokens = text_tokens(&pool, codec, &mut rng, length as usize)?;
            let scored = cfg.text_scored.min(tokens.len() / 4);
            if scored == 0 {
                return Err(CalibError::Invalid(format!(
                    "a text sample at length {length} has {} tokens: too few to score \
                     --text-scored {} of them",
                    tokens.len(),
                    cfg.text_scored
                )));
            }
            let response = tokens.split_off(tokens.len() - scored);
            let n_tokens = tokens.len() + response.len();
            let text = codec.decode(&response)?;
            let sample = CalibSample {
                id: format!("text-{length}-{s}"),
                task: "text".into(),
                length_level: length,
                response_span: [tokens.len(), n_tokens],
                prompt_tokens: tokens,
                response_tokens: response,
                n_tokens,
                source: cfg.source.name().to_string(),
                seed,
                dense_answer_text: text.clone(),
                expected: Expected {
                    answer: text,
                    correct: true,
                    depth: None,
                    needle_token: None,
                },
            };
            out.push(sample);
            progress(out.len(), total, &out[out.len() - 1]);
        }
    }
    Ok(out)
}

/// Dense accuracy per (task, length), in order of first appearance; `text` samples have no
/// answer to get right and are left out.
pub fn accuracy(samples: &[CalibSample]) -> Vec<Accuracy> {
    let mut out: Vec<Accuracy> = Vec::new();
    for s in samples.iter().filter(|s| s.task != "text") {
        let i = match out
            .iter()
            .position(|a| a.task == s.task && a.length == s.length_level)
        {
            Some(i) => i,
            None => {
                out.push(Accuracy {
                    task: s.task.clone(),
                    length: s.length_level,
                    ..Accuracy::default()
                });
                out.len() - 1
            }
        };
        out[i].total += 1;
        out[i].correct += usize::from(s.expected.correct);
    }
    out
}

/// Writes `samples` as JSONL at `path`, through a temporary file beside it
/// (`<path>.partial-<pid>-<n>`) that is renamed over `path` once complete: a process killed
/// during the write leaves `path` as it was, never a file cut after some whole lines, which
/// would read back as a valid calibration with fewer samples. The temporary is the
/// writer's own: two runs writing one `--out` at once (two `moa calib`, or two pipelines
/// on one work folder) shared a fixed `<path>.partial`, so one could rename the other's
/// half-written file into place, or fail "No such file" when the other renamed it away;
/// now each renames a whole file and the last rename wins. Temporaries that killed runs
/// left are removed ([`crate::codegen::emit::remove_dead_temps`]; a running process's are
/// kept). Errors: [`CalibError::Io`] naming `path`.
pub fn write_jsonl(path: &Path, samples: &[CalibSample]) -> Result<(), CalibError> {
    let io = |source| CalibError::Io {
        path: path.display().to_string(),
        action: "write",
        source,
    };
    // A device or pipe (`--out /dev/stdout`) is written directly: renaming over it would
    // replace it.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    if !special {
        remove_dead_partials(path);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tmp.push(format!(".partial-{}-{n}", std::process::id()));
    }
    let tmp = std::path::PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    for s in samples {
        let line = serde_json::to_string(s).map_err(|e| CalibError::Invalid(e.to_string()))?;
        writeln!(w, "{line}").map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    if special {
        return Ok(());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Removes the `<path>.partial-<pid>-<n>` files of [`write_jsonl`] whose process has ended.
fn remove_dead_partials(path: &Path) {
    let (Some(name), dir) = (path.file_name(), path.parent()) else {
        return;
    };
    let dir = dir
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!("{}.partial-", name.to_string_lossy());
    let pid_of = |f: &str| -> Option<u32> {
        let (pid, n) = f.strip_prefix(&prefix)?.split_once('-')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        (digits(pid) && digits(n)).then(|| pid.parse().ok())?
    };
    crate::codegen::emit::remove_dead_temps(dir, pid_of, "unfinished calibration files");
}

/// Reads a calibration JSONL (as [`write_jsonl`] writes it), one [`CalibSample`] a line,
/// blank lines skipped, each sample checked. Errors: [`CalibError::Io`] for a file that
/// cannot be read (or is past the input size limit), [`CalibError::Parse`] naming the line
/// for one that is not UTF-8, not a sample or fails its checks.
pub fn read_jsonl(path: &Path) -> Result<Vec<CalibSample>, CalibError> {
    let shown = path.display().to_string();
    let (file, _) =
        crate::input::open_regular(path, "calibration JSONL", crate::input::MAX_DATA_BYTES)
            .map_err(|source| CalibError::Io {
                path: shown.clone(),
                action: "read",
                source,
            })?;
    let mut out = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let mut bytes = Vec::new();
    for i in 0.. {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| CalibError::Io {
                path: shown.clone(),
                action: "read",
                source,
            })?;
        if n == 0 {
            break;
        }
        let parse = |message: String| CalibError::Parse {
            path: shown.clone(),
            line: i + 1,
            message,
        };
        // Read line by line as bytes: `lines()` failed on a non-UTF-8 file with only
        // "stream did not contain valid UTF-8", naming no line (round 18). A UTF-8
        // byte-order mark is dropped, as `input::read_to_string` does.
        let raw = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            Some(rest) if i == 0 => rest,
            _ => &bytes[..],
        };
        let line = std::str::from_utf8(raw).map_err(|e| {
            parse(if i == 0 && (raw.starts_with(&[0xFF, 0xFE]) || raw.starts_with(&[0xFE, 0xFF])) {
                "is UTF-16 text (it starts with a UTF-16 byte-order mark): a calibration JSONL must be UTF-8, as `moa calib` writes it".to_string()
            } else {
                format!(
                    "is not UTF-8 text (invalid byte at column {}): a calibration JSONL must be UTF-8, as `moa calib` writes it",
                    e.valid_up_to() + 1
                )
            })
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let s: CalibSample = serde_json::from_str(line).map_err(|e| {
            // The last line without its line end, ending mid-value: a copy or an edit cut
            // short. serde's "EOF while parsing a value at line 1 column 639" named a line
            // 1 of a line 2 (round 24).
            if e.is_eof() && !bytes.ends_with(b"\n") {
                parse(format!(
                    "the file ends in the middle of this sample (the last line, {} bytes, has \
                     no line end and its JSON stops short: {e}): the file was cut (a copy or \
                     download stopped part-way); remove that line, or make the file again",
                    bytes.len()
                ))
            } else {
                parse(e.to_string())
            }
        })?;
        s.check().map_err(parse)?;
        out.push(s);
    }
    Ok(out)
}
