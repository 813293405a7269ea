//! `moa eval`: retrieval over a grid of lengths × depths, perplexity of long text, and the
//! effective context length, for dense, a uniform window and plans (docs/CALIBRATION.md,
//! "Evaluation").
//!
//! Everything that does not need a model lives here (prompts, scoring, the effective
//! context length rule, the report), so it is tested on fixed outputs; [`super::gpu`]
//! runs the prompts through the runtime.
//!
//! Two task families, both in raw completion form (no chat template), answers greedy:
//! - `passkey`: calibration's own task (5-digit key in the classic repeated filler);
//! - `code`: a 7-digit "secret code" phrased differently, in the seeded prose of
//!   [`crate::calib::text::generated_sentences`]. Calibration never uses this family, so it
//!   tells whether a plan learned the calibration prompts or long-range retrieval.

#![warn(missing_docs)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::calib::text::{generated_sentences, REPEAT_FILLER};
use crate::calib::{
    needle_prompt, passkey_needle, sample_seed, CalibError, NeedleFormat, TextCodec, PASSKEY_INTRO,
    PASSKEY_QUESTION,
};
use crate::plan::{LayerRules, Meta, Plan, PlanError, Rule, BETA_DEN};

/// A retrieval task family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Calibration's pass key: 5 digits in the repeated filler.
    Passkey,
    /// A 7-digit secret code in generated prose (not used by calibration).
    Code,
}

/// The instruction that opens a `code` prompt, before the story.
pub const CODE_INTRO: &str = "Read the story below. Somewhere in it there is a secret code. Keep the secret code in mind, you will be asked for it at the end.\n\n";
/// The question that closes a `code` prompt, in completion form: the model's next tokens are
/// the code.
pub const CODE_QUESTION: &str = "\n\nWhat was the secret code in the story? The secret code was";

/// Answer tokens generated per retrieval prompt (a 7-digit key is 7 tokens in SmolLM2's
/// tokenizer, which splits digits, plus a leading space).
pub const ANSWER_TOKENS: usize = 10;

impl Family {
    /// The family named `s` (`passkey` or `code`); the error message names the allowed values.
    pub fn parse(s: &str) -> Result<Family, String> {
        match s {
            "passkey" => Ok(Family::Passkey),
            "code" => Ok(Family::Code),
            other => Err(format!(
                "unknown task family `{other}`: expected passkey or code"
            )),
        }
    }

    /// The family's name, as `--tasks` and the report spell it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Passkey => "passkey",
            Family::Code => "code",
        }
    }

    /// The family's filler sentences (seeded for `code`).
    pub fn filler(self, seed: u64) -> Vec<String> {
        match self {
            Family::Passkey => REPEAT_FILLER
                .iter()
                .cycle()
                .take(4000)
                .map(|s| s.to_string())
                .collect(),
            // Another seed stream than calibration's `generated` source.
            Family::Code => generated_sentences(seed ^ 0xc0de_c0de_c0de_c0de, 4000),
        }
    }

    fn key(self, rng: &mut StdRng) -> String {
        match self {
            Family::Passkey => format!("{}", rng.random_range(10_000..100_000u32)),
            Family::Code => format!("{}", rng.random_range(1_000_000..10_000_000u32)),
        }
    }

    /// The prompt without filler, as `needle_prompt` renders it: instruction, needle and
    /// question.
    fn bare_text(self, key: &str) -> String {
        let format = self.format(key);
        let mut bare = String::from(format.intro);
        if !bare.ends_with('\n') {
            bare.push(' ');
        }
        bare.push_str(&format.needle);
        bare.push_str(format.question);
        bare
    }

    /// The shortest `--lengths` value whose prompt holds this family's fixed text with
    /// `codec` (its tokens plus the answer's). Keys are fixed-width numbers; the largest
    /// count over a few keys is taken (a BPE may merge some digit pairs), and
    /// [`build_cases`] still checks each cell's own key. Why: `GridSpec::check` allowed
    /// "138 ..= 512" for a byte-level tokenizer, and 138 was then refused for needing 240
    /// (round 22).
    pub fn shortest_length(self, codec: &dyn TextCodec) -> Result<usize, CalibError> {
        let mut rng = StdRng::seed_from_u64(0);
        let mut most = 0;
        for _ in 0..8 {
            let key = self.key(&mut rng);
            most = most.max(codec.encode(&self.bare_text(&key))?.len());
        }
        Ok(most + ANSWER_TOKENS)
    }

    fn format(self, key: &str) -> NeedleFormat<'static> {
        match self {
            Family::Passkey => NeedleFormat {
                intro: PASSKEY_INTRO,
                needle: passkey_needle(key),
                question: PASSKEY_QUESTION,
            },
            Family::Code => NeedleFormat {
                intro: CODE_INTRO,
                needle: format!("The secret code was {key}."),
                question: CODE_QUESTION,
            },
        }
    }
}

/// The grid: prompt lengths (tokens, answer included) × relative depths of the needle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridSpec {
    /// Prompt lengths in tokens (answer tokens included).
    pub lengths: Vec<u32>,
    /// Relative depths of the needle in the filler, each in [0, 1].
    pub depths: Vec<f64>,
    /// Seed of the keys and filler starts ([`crate::calib::sample_seed`] per cell).
    pub seed: u64,
}

impl GridSpec {
    /// `n_depths` depths evenly spaced over [0.05, 0.95] (one depth: 0.5).
    pub fn new(lengths: Vec<u32>, n_depths: usize, seed: u64) -> GridSpec {
        let depths = match n_depths {
            0 => Vec::new(),
            1 => vec![0.5],
            k => (0..k)
                // Rounded to 1e-6 so that the JSON shows 0.95, not 0.9500000000000001.
                .map(|i| ((0.05 + 0.9 * i as f64 / (k - 1) as f64) * 1e6).round() / 1e6)
                .collect(),
        };
        GridSpec {
            lengths,
            depths,
            seed,
        }
    }

    /// Errors (naming the option and the allowed range) for a grid the model cannot run,
    /// with the least length a needle prompt takes with a subword tokenizer.
    pub fn check(&self, context_length: usize) -> Result<(), String> {
        self.check_for(context_length, &[])
    }

    /// [`GridSpec::check`] with each scored family's least length with the model's
    /// tokenizer ([`Family::shortest_length`]): a length below the longest is refused in
    /// [`build_cases`]'s words (the family, its fixed text's tokens and the least length),
    /// where "allowed: 138 ..= 512" had let a byte-level tokenizer's 138 through to be
    /// refused for needing 240 (round 22).
    pub fn check_for(
        &self,
        context_length: usize,
        families: &[(Family, usize)],
    ) -> Result<(), String> {
        if self.lengths.is_empty() {
            return Err("--lengths gives no length: allowed one or more".into());
        }
        // `--depths 0` was told "--lengths and --depths must each give at least one
        // value", naming neither the value nor that it is a count.
        if self.depths.is_empty() {
            return Err(
                "--depths 0 is out of range: allowed 1 or more needle depths per length".into(),
            );
        }
        let floor = ANSWER_TOKENS + 128;
        if context_length < floor {
            // The range below would read `allowed: 138 ..= 128`.
            return Err(format!(
                "--lengths: no length fits: a prompt with a needle needs at least {floor} tokens and the model's context is {context_length} tokens (use a model of a longer context)"
            ));
        }
        // The family whose fixed text is longest, where it needs more than the floor.
        let widest = families
            .iter()
            .copied()
            .filter(|&(_, least)| least > floor)
            .max_by_key(|&(_, least)| least);
        let shortest = widest.map_or(floor, |(_, least)| least);
        for &l in &self.lengths {
            let l = l as usize;
            if l > context_length {
                let allowed = if shortest <= context_length {
                    format!("allowed: {shortest} ..= {context_length}")
                } else {
                    format!("allowed: at most {context_length}")
                };
                return Err(format!(
                    "--lengths: {l} tokens is beyond the model's context of {context_length} tokens ({allowed})"
                ));
            }
            if l < shortest {
                let Some((family, least)) = widest else {
                    return Err(format!(
                        "--lengths: {l} tokens is too short for a prompt with a needle (allowed: {floor} ..= {context_length})"
                    ));
                };
                let fixed = least - ANSWER_TOKENS;
                let allowed = if least <= context_length {
                    format!("allowed: {least} or more (up to the model's context of {context_length} tokens), or leave this family out (--tasks)")
                } else {
                    format!("no length fits the model's context of {context_length} tokens: leave this family out (--tasks), or use a model of a longer context")
                };
                return Err(format!(
                    "--lengths {l}: the {} prompt's fixed text (instruction, needle and question) takes {fixed} tokens with this model's tokenizer, more than the {} a {l}-token prompt leaves after the {ANSWER_TOKENS} answer tokens: {allowed}",
                    family.name(),
                    l.saturating_sub(ANSWER_TOKENS)
                ));
            }
        }
        Ok(())
    }
}

/// One prompt of the grid.
#[derive(Clone, Debug)]
pub struct Case {
    /// The task family of the prompt (passkey or code).
    pub family: Family,
    /// Index of the prompt's length in [`GridSpec::lengths`].
    pub length_index: usize,
    /// Index of the needle's depth in [`GridSpec::depths`].
    pub depth_index: usize,
    /// The prompt's token ids, at most `length − ANSWER_TOKENS` of them.
    pub prompt: Vec<u32>,
    /// The key the answer must give (5 or 7 digits).
    pub key: String,
    /// Token index in `prompt` where the needle begins.
    pub needle_token: usize,
}

/// The prompts of one family, `[length][depth]` order. Each prompt has at most
/// `length − ANSWER_TOKENS` tokens; keys and filler starts are seeded per cell, so a cell
/// does not change when the grid around it does.
pub fn build_cases(
    family: Family,
    grid: &GridSpec,
    codec: &dyn TextCodec,
) -> Result<Vec<Case>, CalibError> {
    let pool = family.filler(grid.seed);
    let mut out = Vec::new();
    for (li, &length) in grid.lengths.iter().enumerate() {
        for (di, &depth) in grid.depths.iter().enumerate() {
            let salt = (family as usize) << 20 | di;
            let mut rng = StdRng::seed_from_u64(sample_seed(grid.seed, length, salt));
            let key = family.key(&mut rng);
            let budget = length as usize - ANSWER_TOKENS;
            // The prompt without filler, as `needle_prompt` renders it. Where it does not
            // fit, that failed as "the prompt's fixed text … alone takes more than the 190
            // tokens left", naming no flag or family, after `GridSpec::check` had allowed
            // the length (its 138-token floor is a BPE tokenizer's; a byte-level one needs
            // about 300 for `code`; round 20).
            let fixed = codec.encode(&family.bare_text(&key))?.len();
            if fixed > budget {
                return Err(CalibError::Invalid(format!(
                    "--lengths {length}: the {} prompt's fixed text (instruction, needle and question) takes {fixed} tokens with this model's tokenizer, more than the {budget} a {length}-token prompt leaves after the {ANSWER_TOKENS} answer tokens: allowed: {} or more (up to the model's context), or leave this family out (--tasks)",
                    family.name(),
                    fixed + ANSWER_TOKENS
                )));
            }
            let p = needle_prompt(
                &pool,
                codec,
                &mut rng,
                budget,
                depth,
                family.name(),
                &key,
                &family.format(&key),
            )?;
            out.push(Case {
                family,
                length_index: li,
                depth_index: di,
                prompt: p.tokens,
                key,
                needle_token: p.expected.needle_token.unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Per length of the grid, how many distinct needle positions (token index in the prompt)
/// one family's `cases` ([`build_cases`], `[length][depth]` order) hold: a short prompt
/// has fewer places for the needle than `--depths` asks, and its depths then share
/// positions (each with its own key). `lengths` = `grid.lengths.len()`.
pub fn distinct_needle_positions(cases: &[Case], lengths: usize) -> Vec<usize> {
    (0..lengths)
        .map(|li| {
            let mut at: Vec<usize> = cases
                .iter()
                .filter(|c| c.length_index == li)
                .map(|c| c.needle_token)
                .collect();
            at.sort_unstable();
            at.dedup();
            at.len()
        })
        .collect()
}

/// Is `output` (the decoded greedy answer) the key? The first run of digits in it must be
/// the key exactly (upstream LongEval compares one integer of the output; the first is
/// used here because after the key the model goes on with filler, which can hold numbers).
pub fn is_correct(output: &str, key: &str) -> bool {
    let digits: String = output
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    !digits.is_empty() && digits == key
}

/// One family's results for one plan: `correct[length][depth]` and the answers given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyGrid {
    /// The task family these results are of.
    pub family: Family,
    /// `[length][depth]`: the answer was the key ([`is_correct`]).
    pub correct: Vec<Vec<bool>>,
    /// `[length][depth]`: the decoded greedy answers.
    pub answers: Vec<Vec<String>>,
}

impl FamilyGrid {
    /// Accuracy per length in [0, 1].
    pub fn accuracy(&self) -> Vec<f64> {
        self.correct
            .iter()
            .map(|row| {
                if row.is_empty() {
                    0.0
                } else {
                    row.iter().filter(|&&c| c).count() as f64 / row.len() as f64
                }
            })
            .collect()
    }

    /// Correct cells over the whole grid.
    pub fn total_correct(&self) -> usize {
        self.correct.iter().flatten().filter(|&&c| c).count()
    }
}

/// Share of dense's accuracy that a length must keep to count as "effective".
pub const EFFECTIVE_SHARE: f64 = 0.9;

/// The effective context length: the longest grid length L such that at L and at every
/// shorter grid length the plan's accuracy is at least `EFFECTIVE_SHARE` × dense's (a
/// length where dense itself scores 0 counts as kept). `None` when the shortest length
/// already fails. Lengths must be ascending (as [`GridSpec`] holds them after
/// [`sorted_lengths`]).
///
/// This is upstream's "longest input length at which retrieval accuracy stays above 90%"
/// (MoA paper, retrieval evaluation; upstream `scripts/evaluate/retrieval_evaluate.py`), measured against dense instead of absolutely, so that a small model
/// whose dense accuracy drops at long inputs is judged on what sparsity costs.
pub fn effective_context_length(lengths: &[u32], plan: &[f64], dense: &[f64]) -> Option<u32> {
    let mut best = None;
    for ((&l, &p), &d) in lengths.iter().zip(plan).zip(dense) {
        if p + 1e-12 >= EFFECTIVE_SHARE * d {
            best = Some(l);
        } else {
            break;
        }
    }
    best
}

/// Lengths sorted ascending without duplicates.
pub fn sorted_lengths(mut lengths: Vec<u32>) -> Vec<u32> {
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

/// A uniform plan of the given shape and span section: every head keeps the sink and
/// the last `beta·N` tokens (StreamingLLM as upstream runs it), β rounded to 1/`BETA_DEN`.
pub fn uniform_plan(like: &Plan, beta: f64) -> Result<Plan, PlanError> {
    let beta_num = (beta.clamp(0.0, 1.0) * f64::from(BETA_DEN)).round() as u32;
    let rule = Rule { alpha: 0, beta_num };
    Plan::new(
        like.model().clone(),
        like.span().clone(),
        Meta {
            target_densities: vec![f64::from(beta_num) / f64::from(BETA_DEN)],
            provenance: Some(format!(
                "moa eval baseline: every head keeps the sink and the last {:.4}·N tokens",
                f64::from(beta_num) / f64::from(BETA_DEN)
            )),
            notes: None,
        },
        (0..like.model().layers)
            .map(|_| LayerRules {
                rules: vec![rule; like.model().q_heads as usize],
            })
            .collect(),
    )
}

/// What one plan scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// `dense`, `uniform-<d>` or the plan file's name.
    pub name: String,
    /// GQA-native KV-cache density at each grid length (N = length), 1 for dense.
    pub kv_density: Vec<f64>,
    /// One grid per evaluated task family.
    pub retrieval: Vec<FamilyGrid>,
    /// Perplexity of the held-out text's scored tokens (None when not measured).
    pub perplexity: Option<f64>,
    /// Cross-entropy (nats) of every scored token, `[window][token]` (empty when not
    /// measured): paired comparisons with dense and the spread of the estimate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perplexity_nats: Vec<Vec<f32>>,
    /// Per family (same order as `retrieval`): the effective context length.
    pub effective_context: Vec<Option<u32>>,
    /// What was scored: [`crate::eval::masking_key`] (`dense`, or `plan:` and the plan's
    /// hash), so `moa eval --merge` never takes a result for an edited plan that kept its
    /// file name. Absent in reports of moa before session 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<String>,
}

/// The whole evaluation (what `--json` writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The model's path, as given.
    pub model: String,
    /// The back end that ran it, in words (adapter or engine, storage type).
    pub backend: String,
    /// The lengths × depths grid every plan was evaluated on.
    pub grid: GridSpec,
    /// Perplexity windows: `(rows, window tokens, scored tokens per row, text files)`.
    pub perplexity_setup: Option<(usize, usize, usize, Vec<String>)>,
    /// Dense first.
    pub plans: Vec<PlanResult>,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
    /// `--ppl-method both`: per plan, how far the prefill-scored nats are from the
    /// decode-scored ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perplexity_check: Vec<PerplexityCheck>,
}

/// One plan's perplexity scored two ways (`moa eval --backend cuda --ppl-method both`):
/// the prefill path (`eval::gpu::window_token_nats_prefill`) against decode steps
/// (`window_token_nats`), token by token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerplexityCheck {
    /// The plan's name (as in [`PlanResult::name`]).
    pub plan: String,
    /// Scored tokens compared.
    pub tokens: usize,
    /// Largest |prefill − decode| of one token's cross-entropy (nats).
    pub max_abs_nats: f64,
    /// Mean of (prefill − decode) over the tokens (nats): the perplexities' log ratio.
    pub mean_nats: f64,
}

impl PerplexityCheck {
    /// Compares `[window][token]` nats of the two paths (`a` prefill, `b` decode);
    /// windows or tokens missing from either are not counted.
    pub fn new(plan: &str, a: &[Vec<f32>], b: &[Vec<f32>]) -> PerplexityCheck {
        let (mut n, mut max, mut sum) = (0usize, 0f64, 0f64);
        for (x, y) in a.iter().zip(b) {
            for (&p, &q) in x.iter().zip(y) {
                let d = f64::from(p) - f64::from(q);
                n += 1;
                max = max.max(d.abs());
                sum += d;
            }
        }
        PerplexityCheck {
            plan: plan.to_string(),
            tokens: n,
            max_abs_nats: max,
            mean_nats: if n == 0 { 0.0 } else { sum / n as f64 },
        }
    }
}

impl std::fmt::Display for PerplexityCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} tokens, max |Δ| {:.2e} nats per token, mean Δ {:+.2e} nats (perplexity ratio {:.5})",
            self.plan,
            self.tokens,
            self.max_abs_nats,
            self.mean_nats,
            self.mean_nats.exp()
        )
    }
}

impl EvalReport {
    /// Fills every non-dense plan's `effective_context` from dense (`plans[0]`).
    pub fn finish(&mut self) {
        let Some(dense) = self.plans.first().cloned() else {
            return;
        };
        for p in &mut self.plans {
            p.effective_context = p
                .retrieval
                .iter()
                .map(|g| {
                    let d = dense
                        .retrieval
                        .iter()
                        .find(|x| x.family == g.family)
                        .map(FamilyGrid::accuracy)
                        .unwrap_or_default();
                    effective_context_length(&self.grid.lengths, &g.accuracy(), &d)
                })
                .collect();
        }
    }

    /// The markdown table: one row per plan and family, correct/depths per length.
    pub fn markdown(&self) -> String {
        let n_depths = self.grid.depths.len();
        let mut s = String::new();
        s.push_str("| plan | task | ");
        for l in &self.grid.lengths {
            s.push_str(&format!("{} | ", fmt_len(*l)));
        }
        s.push_str("sum | eff. context | KV density | perplexity |\n|---|---|");
        for _ in &self.grid.lengths {
            s.push_str("---|");
        }
        s.push_str("---|---|---|---|\n");
        let dense_ppl = self.plans.first().and_then(|d| d.perplexity);
        for p in &self.plans {
            for (fi, g) in p.retrieval.iter().enumerate() {
                s.push_str(&format!("| {} | {} | ", p.name, g.family.name()));
                for row in &g.correct {
                    s.push_str(&format!(
                        "{}/{} | ",
                        row.iter().filter(|&&c| c).count(),
                        n_depths
                    ));
                }
                let eff = match p.effective_context.get(fi).copied().flatten() {
                    Some(l) => fmt_len(l),
                    None => "< shortest".into(),
                };
                let dens = match (p.kv_density.first(), p.kv_density.last()) {
                    (Some(a), Some(b)) if (a - b).abs() > 5e-3 => format!("{a:.2}–{b:.2}"),
                    (Some(a), _) => format!("{a:.2}"),
                    _ => "".into(),
                };
                let ppl = match (fi, p.perplexity, dense_ppl) {
                    (0, Some(x), Some(d)) if p.name != "dense" => {
                        match relative_change(p, x, self.plans.first(), d) {
                            Some(c) => format!("{} ({c:+.1}%)", p.perplexity_cell(x)),
                            None => p.perplexity_cell(x),
                        }
                    }
                    (0, Some(x), _) => p.perplexity_cell(x),
                    _ => String::new(),
                };
                s.push_str(&format!(
                    "{}/{} | {eff} | {dens} | {ppl} |\n",
                    g.total_correct(),
                    n_depths * g.correct.len()
                ));
            }
        }
        s
    }
}

impl PlanResult {
    /// The mean cross-entropy of the scored tokens, in nats (None when not measured).
    pub fn mean_nats(&self) -> Option<f64> {
        let n: usize = self.perplexity_nats.iter().map(Vec::len).sum();
        (n > 0).then(|| {
            self.perplexity_nats
                .iter()
                .flatten()
                .map(|&x| f64::from(x))
                .sum::<f64>()
                / n as f64
        })
    }

    /// The markdown's perplexity `x`: [`fmt_perplexity`], or `e^<mean nats>` where it
    /// overflows f64 (a mean past 709 nats, as a random-weight model's is: the cell read
    /// `inf`, and the JSON holds `null`).
    fn perplexity_cell(&self, x: f64) -> String {
        match self.mean_nats() {
            Some(m) if !x.is_finite() && m.is_finite() => format!("e^{m:.1}"),
            _ => fmt_perplexity(x),
        }
    }
}

/// A plan's perplexity change against dense's, in percent: `x / d − 1`, or from the mean
/// nats (`e^(m − m_dense) − 1`) where either perplexity overflowed f64; None where neither
/// gives a finite number. Two infinite perplexities printed `inf (NaN%)` (round 46).
fn relative_change(p: &PlanResult, x: f64, dense: Option<&PlanResult>, d: f64) -> Option<f64> {
    let direct = 100.0 * (x / d - 1.0);
    if x.is_finite() && d.is_finite() && direct.is_finite() {
        return Some(direct);
    }
    let (m, md) = (p.mean_nats()?, dense?.mean_nats()?);
    let c = 100.0 * ((m - md).exp() - 1.0);
    c.is_finite().then_some(c)
}

/// A perplexity as the report shows it: three decimals (`12.345`), or three significant
/// digits with an exponent from 10^6 on (`2.653e58`), where a random-weight model's
/// perplexity printed as a 59-digit number.
pub fn fmt_perplexity(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e6 {
        format!("{x:.3}")
    } else {
        format!("{x:.3e}")
    }
}

/// `1024` → `1k`, `7680` → `7.5k`, `1000` → `1000`.
pub fn fmt_len(l: u32) -> String {
    if l.is_multiple_of(512) {
        let k = f64::from(l) / 1024.0;
        if k.fract() == 0.0 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else {
        l.to_string()
    }
}

/// Perplexity from summed cross-entropy (nats) over `count` tokens.
pub fn perplexity(sum_nats: f64, count: usize) -> f64 {
    (sum_nats / count.max(1) as f64).exp()
}

/// `rows` windows of `window` tokens from `tokens`, evenly spread (overlapping when the
/// text is short); an error when the text has fewer than `window` tokens.
pub fn text_windows(tokens: &[u32], window: usize, rows: usize) -> Result<Vec<Vec<u32>>, String> {
    if tokens.len() < window {
        return Err(format!(
            "the perplexity text has {} tokens, fewer than --ppl-length {window}: give more text (--ppl-text) or a shorter window",
            tokens.len()
        ));
    }
    let span = tokens.len() - window;
    Ok((0..rows.max(1))
        .map(|r| {
            let start = if rows <= 1 { 0 } else { span * r / (rows - 1) };
            tokens[start..start + window].to_vec()
        })
        .collect())
}
