//! The MoA plan: moa's front-end IR, stored as TOML.
//!
//! A [`Plan`] can only be built through [`Plan::from_toml_str`] or [`Plan::new`] (and the
//! helpers built on it), all of which validate it, and its fields are private, so later
//! stages (`lower`, `codegen`) never re-check shapes or ranges.
//! The meaning of every field is written once in `docs/DESIGN.md`.

#![warn(missing_docs)]

pub mod rule;
pub mod stats;
pub mod upstream;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use rule::{HeadWindow, Rule, SpanMode, SpanParams, BETA_DEN};

/// The only plan format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// |α| must stay below this so `α + β·N` fits the kernels' 32-bit arithmetic.
pub const MAX_ABS_ALPHA: i64 = 1 << 24;
/// Largest head dimension the kernel templates are written for.
pub const MAX_HEAD_DIM: u32 = 256;

/// The most layers a plan takes (`model.layers`); a model whose config claims more is
/// refused at load (`LlamaConfig` validation).
pub const MAX_LAYERS: u32 = 1024;
/// The most query heads per layer a plan takes (`model.q_heads`); a model whose config
/// claims more is refused at load (`LlamaConfig` validation).
pub const MAX_HEADS: u32 = 1024;

/// The longest context a plan takes (`model.max_context_tokens`, 2^30 tokens); a model
/// whose config claims more is refused at load (`LlamaConfig` validation).
pub const MAX_CONTEXT_TOKENS: u32 = 1 << 30;

/// Every failure of reading, parsing and validating a plan; each names the file (`path`,
/// or what stood for it, e.g. "embedded plan").
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file cannot be read; the OS error is the source.
    #[error("cannot read plan `{path}`")]
    Io {
        /// The plan's path as given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not a plan's TOML (or JSON): the message names the line and column, or the key.
    #[error("{path}: {message}")]
    Parse {
        /// The plan's path, or what stood for it.
        path: String,
        /// The parser's message, with the line and column or the key.
        message: String,
    },
    /// A field outside its allowed range: `field` names it (e.g. `layers[3].rules[0].heads`),
    /// `message` the value and what is allowed.
    #[error("{path}: `{field}` {message}")]
    Invalid {
        /// The plan's path, or what stood for it.
        path: String,
        /// The field as written in TOML, e.g. `model.kv_heads` or `layers[3].alpha`.
        field: String,
        /// The value found and the allowed range (`= 3 is out of range: allowed 1..=2`).
        message: String,
    },
}

/// Model shape the plan was made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    /// The model's name, for readers (free-form, not checked against a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Transformer layers, 1..=1024.
    pub layers: u32,
    /// Query (attention) heads per layer, 1..=1024.
    pub q_heads: u32,
    /// KV heads per layer: 1..=`q_heads`, and a divisor of it (GQA).
    pub kv_heads: u32,
    /// Elements per head vector: 4..=[`MAX_HEAD_DIM`], a multiple of 4.
    pub head_dim: u32,
    /// The longest sequence (prompt + new tokens) the model takes, in tokens:
    /// 1..=[`MAX_CONTEXT_TOKENS`].
    pub max_context_tokens: u32,
}

impl ModelShape {
    /// Query heads that share one KV head (GQA group size).
    pub fn group_size(&self) -> u32 {
        self.q_heads / self.kv_heads
    }
    /// The KV head a query head reads (contiguous grouping, as HF's `repeat_kv`).
    pub fn kv_head_of(&self, q_head: u32) -> u32 {
        q_head / self.group_size()
    }
}

/// How rules become spans, and the convention for N.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanSection {
    /// First tokens of a sequence every head keeps, inside its span (docs/DESIGN.md §3):
    /// 0..=2^20 and at most `model.max_context_tokens`; default 64.
    #[serde(default = "default_sink")]
    pub sink_tokens: u32,
    /// The smallest span a head gets, in tokens: 1..=2^24 and at most
    /// `model.max_context_tokens`; default 128.
    #[serde(default = "default_min_span")]
    pub min_span_tokens: u32,
    /// The plan's block size: spans round up to it and the profiler tiles by it. In
    /// tokens, 1..=4096 and at most `model.max_context_tokens`; default 64.
    #[serde(default = "default_block")]
    pub block_tokens: u32,
    /// How a rule's raw span becomes slots (docs/DESIGN.md §2); default [`SpanMode::Moa`].
    #[serde(default = "default_mode")]
    pub mode: SpanMode,
    /// N = prompt tokens + this many new tokens, fixed when a request starts: 0..=2^30,
    /// default 1024 (upstream's N' = prompt + 1024).
    #[serde(default = "default_max_new")]
    pub max_new_tokens: u32,
}

fn default_sink() -> u32 {
    64
}
fn default_min_span() -> u32 {
    128
}
fn default_block() -> u32 {
    64
}
fn default_mode() -> SpanMode {
    SpanMode::Moa
}
fn default_max_new() -> u32 {
    1024
}

impl Default for SpanSection {
    fn default() -> Self {
        SpanSection {
            sink_tokens: default_sink(),
            min_span_tokens: default_min_span(),
            block_tokens: default_block(),
            mode: default_mode(),
            max_new_tokens: default_max_new(),
        }
    }
}

impl SpanSection {
    /// The constants [`Rule::span`] reads (`block_tokens` becomes
    /// [`SpanParams::span_round_tokens`]).
    pub fn params(&self) -> SpanParams {
        SpanParams {
            sink_tokens: self.sink_tokens,
            min_span_tokens: self.min_span_tokens,
            span_round_tokens: self.block_tokens,
            mode: self.mode,
        }
    }
}

/// Optional, free-form facts about where a plan came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The KV densities (fractions of the dense cache, each in (0, 1]) the plan was made
    /// for, e.g. the top of `moa optimize`'s density band; nothing enforces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_densities: Vec<f64>,
    /// What made the plan and from what (e.g. `moa optimize`'s profiles and settings, or
    /// an upstream import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// Free text (`moa optimize` records its losses, densities and solver status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// One layer: the rule of every query head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRules {
    /// One rule per query head, indexed by query head (`model.q_heads` entries).
    pub rules: Vec<Rule>,
}

/// A validated plan. Its fields are private: every way to make or change one
/// ([`Plan::from_toml_str`], [`Plan::new`], [`Plan::dense`], [`Plan::with_meta`],
/// [`Plan::with_layers`]) validates, so a plan that exists is valid and later stages
/// (`lower`, `codegen`, the runtimes) never re-check it. Read it through the accessors;
/// to change the shape or spans, take it apart ([`Plan::into_parts`]) and build a new one.
///
/// ```compile_fail
/// # use moa::plan::{ModelShape, Plan};
/// let shape = ModelShape { name: None, layers: 2, q_heads: 4, kv_heads: 2, head_dim: 64,
///     max_context_tokens: 1024 };
/// let mut plan = Plan::dense(shape).unwrap();
/// plan.layers.clear(); // private: a plan with no layers cannot be made
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    model: ModelShape,
    span: SpanSection,
    meta: Meta,
    layers: Vec<LayerRules>,
}

/// What `to_toml` writes.
#[derive(Serialize)]
struct RawPlan {
    format_version: u32,
    model: ModelShape,
    span: SpanSection,
    #[serde(skip_serializing_if = "is_default_meta")]
    meta: Meta,
    layers: Vec<RawLayerOut>,
}

/// What `from_toml_str` reads: every number as written ([`Num`]), so that validation,
/// not serde, reports a wrong type or value with the field's allowed range.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanIn {
    /// `None`: absent (serde's "missing field" pointed at line 1 and named no value).
    #[serde(default)]
    format_version: Option<Num>,
    /// `None`: no `[model]` table (reported naming the fields it needs).
    #[serde(default)]
    model: Option<RawShape>,
    #[serde(default)]
    span: RawSpan,
    #[serde(default)]
    meta: RawMeta,
    /// `None`: the file has no `[[layers]]` table at all, which toml reported as "missing
    /// field `layers`" at line 1, column 1, read as `model.layers` by a user who had
    /// written that; [`Plan::from_toml_str`] names the tables instead.
    #[serde(default)]
    layers: Option<Vec<RawLayer>>,
}

/// `[model]` as written (fields as in [`ModelShape`]); a missing field is `None`, reported
/// by [`Plan::from_toml_str`] with its allowed range (serde said only "missing field").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShape {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    layers: Option<Num>,
    #[serde(default)]
    q_heads: Option<Num>,
    #[serde(default)]
    kv_heads: Option<Num>,
    #[serde(default)]
    head_dim: Option<Num>,
    #[serde(default)]
    max_context_tokens: Option<Num>,
}

/// `[span]` as written; an absent field takes [`SpanSection::default`]'s value.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSpan {
    sink_tokens: Option<Num>,
    min_span_tokens: Option<Num>,
    block_tokens: Option<Num>,
    /// Any TOML value: one that is not `"moa"` or `"upstream"` is reported naming the
    /// field and both values (toml's own error for `mode = 3` was "wanted string or table").
    mode: Option<serde_json::Value>,
    max_new_tokens: Option<Num>,
}

/// `[meta]` as written (fields as in [`Meta`]).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMeta {
    target_densities: Vec<Num>,
    provenance: Option<String>,
    notes: Option<String>,
}

/// A plan number as written, of whatever TOML or JSON type, so that a wrong type or value
/// is reported by validation with the field's allowed range (serde's own error names only
/// the Rust type it expected, `u32` or `f64`, and says nothing of the range).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    /// A whole number past what an i64 holds (TOML reads `18446744073709551616`, 2^64, as
    /// one), as written; always out of range. Serde's own error was "invalid type: integer
    /// `…` as i128, expected a number", naming neither the field nor its range.
    Big(String),
    /// Not a number: how it reads in an error (`"x"` for a string, `[...]` for an array,
    /// `{...}` for a table, a date as written, …).
    Other(String),
}

impl From<u32> for Num {
    fn from(v: u32) -> Self {
        Num::Int(i64::from(v))
    }
}

impl Num {
    /// The value as an error shows it.
    pub(crate) fn shown(&self) -> String {
        match self {
            Num::Int(v) => v.to_string(),
            Num::Float(v) => compact_number(*v),
            Num::Big(s) | Num::Other(s) => s.clone(),
        }
    }

    /// The value as a float, if it is a number.
    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Num::Int(v) => Some(*v as f64),
            Num::Float(v) => Some(*v),
            Num::Big(s) => s.parse().ok(),
            Num::Other(_) => None,
        }
    }

    /// The value as an integer, if it is a whole number (`64.0` is, as α's floats are).
    fn whole(&self) -> Option<i64> {
        match self {
            Num::Int(v) => Some(*v),
            Num::Float(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18 => {
                Some(*v as i64)
            }
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(i64::try_from(v).map_or(Num::Big(v.to_string()), Num::Int))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Num, E> {
                Ok(i64::try_from(v).map_or(Num::Big(v.to_string()), Num::Int))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Num, E> {
                Ok(i64::try_from(v).map_or(Num::Big(v.to_string()), Num::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Num, E> {
                Ok(Num::Other(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Num, E> {
                // Quoted and escaped; a long string is cut so the error stays one line.
                const SHOWN_CHARS: usize = 40;
                Ok(Num::Other(if v.chars().count() > SHOWN_CHARS {
                    let cut: String = v.chars().take(SHOWN_CHARS).collect();
                    format!("{:?}...", cut)
                } else {
                    format!("{v:?}")
                }))
            }
            fn visit_unit<E>(self) -> Result<Num, E> {
                Ok(Num::Other("null".into()))
            }
            fn visit_none<E>(self) -> Result<Num, E> {
                Ok(Num::Other("null".into()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Num, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Num::Other("[...]".into()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Num, A::Error> {
                // The toml crate hands a date or time over as a map of one private key
                // (`$__toml_private_datetime`) whose value is the date as written.
                let mut shown = "{...}".to_string();
                while let Some(key) = a.next_key::<String>()? {
                    if key.starts_with("$__toml_private") {
                        shown = a.next_value::<String>()?;
                    } else {
                        a.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Num::Other(shown))
            }
        }
        d.deserialize_any(V)
    }
}

fn is_default_meta(m: &Meta) -> bool {
    *m == Meta::default()
}

/// What `to_toml` writes: α as TOML integers (tokens), β as floats.
#[derive(Serialize)]
struct RawLayerOut {
    alpha: Vec<i64>,
    beta: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    /// α per query head, in tokens (`None`: absent, reported with the layer's index).
    #[serde(default)]
    alpha: Option<Vec<Num>>,
    /// β per query head, a fraction of N (`None`: absent).
    #[serde(default)]
    beta: Option<Vec<Num>>,
}

/// A number as it goes into an error message: Rust's shortest round-trip form, unless
/// that is long (`1e-300` prints as 300 digits with `{}`), then scientific notation.
pub fn compact_number(x: f64) -> String {
    let plain = x.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// `text` with every line longer than 160 characters cut there (`...` added): toml's
/// errors quote the offending source line, which in a plan can be a layer's whole α list.
fn shorten_lines(text: &str) -> String {
    const MAX_CHARS: usize = 160;
    text.lines()
        .map(|l| {
            if l.chars().count() > MAX_CHARS {
                format!("{}...", l.chars().take(MAX_CHARS).collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a raw (α, β) pair and converts it; `field` names the place for errors.
pub fn rule_from_f64(alpha: f64, beta: f64) -> Result<Rule, (&'static str, String)> {
    rule_from_num(&Num::Float(alpha), &Num::Float(beta))
}

/// [`rule_from_f64`] for numbers as written, which may not be numbers at all.
/// What a model path given where a plan goes is (a Hugging Face folder, its
/// `config.json` or a `.safetensors` file, a GGUF file), or `None`. Why: `moa-compile
/// MODEL` said "is a directory", "is JSON, not a moa plan: convert an upstream MoA plan",
/// "is not UTF-8 text" or "larger than the 67108864 bytes allowed for a plan", none of
/// which says that a model was given and how its plan is made.
fn model_given_as_plan(path: &Path) -> Option<&'static str> {
    use std::io::Read as _;
    if path.is_dir() {
        return path
            .join("config.json")
            .is_file()
            .then_some("a model folder (Hugging Face: config.json and weights)");
    }
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let head = &head[..n];
    if head.starts_with(b"GGUF") {
        return Some("a GGUF model file");
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        return Some("a safetensors weight file");
    }
    if path.file_name().is_some_and(|f| f == "config.json") {
        let text = String::from_utf8_lossy(head);
        let config_key = [
            "\"model_type\"",
            "\"architectures\"",
            "\"num_hidden_layers\"",
        ];
        if config_key.iter().any(|k| text.contains(k)) {
            return Some("a model's config.json");
        }
    }
    None
}

/// The model a [`model_given_as_plan`] path belongs to, for the hint: the folder of its
/// `config.json` or `.safetensors` file, else the path.
fn model_path_shown(path: &Path) -> String {
    let in_folder = path.is_file()
        && (path.file_name().is_some_and(|f| f == "config.json")
            || path.extension().is_some_and(|e| e == "safetensors"));
    match path
        .parent()
        .filter(|d| in_folder && !d.as_os_str().is_empty())
    {
        Some(dir) => dir.display().to_string(),
        None if in_folder => ".".into(),
        None => path.display().to_string(),
    }
}

pub(crate) fn rule_from_num(alpha: &Num, beta: &Num) -> Result<Rule, (&'static str, String)> {
    let Some(alpha) = alpha
        .number()
        .filter(|a| a.is_finite() && a.fract() == 0.0 && a.abs() < MAX_ABS_ALPHA as f64)
    else {
        return Err((
            "alpha",
            format!(
                "= {} is not allowed: alpha must be a whole number of tokens with |alpha| < {MAX_ABS_ALPHA}",
                alpha.shown()
            ),
        ));
    };
    let Some(beta_value) = beta.number() else {
        // A string, boolean or null: say it is not a number (a quoted "0.5" is inside the
        // range, so "out of range" would mislead).
        return Err((
            "beta",
            format!(
                "= {} is not a number: beta must be a fraction of N in [0, 1], a multiple of 1/{BETA_DEN}",
                beta.shown()
            ),
        ));
    };
    if !(beta_value.is_finite() && (0.0..=1.0).contains(&beta_value)) {
        return Err((
            "beta",
            format!(
                "= {} is out of range: beta must be a fraction of N in [0, 1]",
                beta.shown()
            ),
        ));
    }
    let beta = beta_value;
    let scaled = beta * f64::from(BETA_DEN);
    if scaled.fract() != 0.0 {
        return Err((
            "beta",
            format!(
                "= {} is not a multiple of 1/{BETA_DEN}: kernels evaluate beta*N exactly in integers (round it, e.g. to {})",
                compact_number(beta),
                scaled.round() / f64::from(BETA_DEN)
            ),
        ));
    }
    Ok(Rule {
        alpha: alpha as i32,
        beta_num: scaled as u32,
    })
}

impl Plan {
    /// Reads and validates a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        if let Some(what) = model_given_as_plan(path) {
            return Err(PlanError::Parse {
                path: path.display().to_string(),
                message: format!(
                    "is {what}, not a plan: a plan for a model comes from `moa plan import UPSTREAM.json --model {} -o PLAN.toml` (an upstream MoA plan), `moa pipeline --model {0}` (a plan search), or a TOML written by hand (docs/DESIGN.md)",
                    model_path_shown(path)
                ),
            });
        }
        let text = crate::input::read_to_string(path, "plan", crate::input::MAX_TEXT_BYTES)
            .map_err(|source| PlanError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Plan::from_toml_str(&text, &path.display().to_string())
    }

    /// [`Plan::load`], and from a pipe too: `-` reads standard input, and a FIFO (`/dev/stdin`
    /// at the end of a pipe, bash's `<(cmd)`) is read to its end, within the same 64 MiB,
    /// so `moa plan import UP.json --model M | moa-compile - -o out` chains; both were
    /// refused ("cannot read plan `-`: No such file", "is a FIFO (named pipe): moa reads a
    /// plan only from a regular file"). For commands that read the plan once (moa-compile,
    /// `moa plan show`, `moa plan export`): a pipe cannot be read twice. Errors name
    /// `standard input` for `-`.
    pub fn load_piped(path: &Path) -> Result<Plan, PlanError> {
        if path == Path::new("-") {
            let text = crate::input::read_stdin_to_string("plan", crate::input::MAX_TEXT_BYTES)
                .map_err(|source| PlanError::Io {
                    path: "standard input (-)".into(),
                    source,
                })?;
            return Plan::from_toml_str(&text, "standard input (-)");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
                let text =
                    crate::input::read_text_or_pipe(path, "plan", crate::input::MAX_TEXT_BYTES)
                        .map_err(|source| PlanError::Io {
                            path: path.display().to_string(),
                            source,
                        })?;
                return Plan::from_toml_str(&text, &path.display().to_string());
            }
        }
        Plan::load(path)
    }

    /// Parses and validates plan TOML; `path` only names the source in errors.
    pub fn from_toml_str(text: &str, path: &str) -> Result<Plan, PlanError> {
        if text.trim_start().starts_with('{') {
            // toml would echo the whole JSON line (10 kB for a 16-layer plan) and say
            // "expected key"; an upstream plan given where a moa plan goes is the cause.
            return Err(PlanError::Parse {
                path: path.to_string(),
                message: "is JSON, not a moa plan (TOML): convert an upstream MoA plan ({\"alphas\": ..., \"betas\": ...}) with `moa plan import FILE --model MODEL -o PLAN.toml`".into(),
            });
        }
        if text.trim().is_empty() {
            // toml said "missing field `format_version`" at line 1, column 1 of a 0-byte
            // file (one cut short by a full disk, or `> p.toml` of a command that failed).
            return Err(PlanError::Parse {
                path: path.to_string(),
                message: format!(
                    "is empty ({} bytes{}): a plan is TOML with `format_version = {FORMAT_VERSION}`, a [model] table, an optional [span] table and one [[layers]] table per layer (docs/DESIGN.md; e.g. plans/fixture-gqa.toml)",
                    text.len(),
                    if text.is_empty() { "" } else { ", blank" }
                ),
            });
        }
        let raw: RawPlanIn = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: path.to_string(),
            message: shorten_lines(e.to_string().trim_end()),
        })?;
        let invalid = |(field, message): (String, String)| PlanError::Invalid {
            path: path.to_string(),
            field,
            message,
        };
        let version = raw
            .format_version
            .unwrap_or_else(|| Num::Other(MISSING.into()));
        if version.whole() != Some(i64::from(FORMAT_VERSION)) {
            let what = if version == Num::Other(MISSING.into()) {
                "is missing".to_string()
            } else if version.whole().is_none() {
                // `"1"` or `1.5` read "is not supported", as if another version (round 27).
                format!("= {} is not a whole number", version.shown())
            } else {
                format!("= {} is not supported", version.shown())
            };
            return Err(invalid((
                "format_version".into(),
                format!(
                    "{what}: this moa reads format_version = {FORMAT_VERSION} (the plan's first line)"
                ),
            )));
        }
        let Some(m) = &raw.model else {
            return Err(invalid((
                "model".into(),
                "is missing: the plan needs a [model] table with layers, q_heads, kv_heads, head_dim and max_context_tokens (the model's shape), as in plans/fixture-gqa.toml".into(),
            )));
        };
        // The shape first: the span's ranges are capped by its context, and the per-layer
        // checks below count entries against it, so `q_heads = 0` must be reported as
        // itself, not as a wrong alpha length. A missing field is reported by `range` with
        // its allowed range.
        let missing = Num::Other(MISSING.into());
        let model = shape_from(
            m.name.clone(),
            [
                m.layers.as_ref().unwrap_or(&missing),
                m.q_heads.as_ref().unwrap_or(&missing),
                m.kv_heads.as_ref().unwrap_or(&missing),
                m.head_dim.as_ref().unwrap_or(&missing),
                m.max_context_tokens.as_ref().unwrap_or(&missing),
            ],
        )
        .map_err(invalid)?;
        let d = SpanSection::default();
        let s = &raw.span;
        let span = span_from(
            model.max_context_tokens,
            [
                s.sink_tokens.as_ref().unwrap_or(&d.sink_tokens.into()),
                s.min_span_tokens
                    .as_ref()
                    .unwrap_or(&d.min_span_tokens.into()),
                s.block_tokens.as_ref().unwrap_or(&d.block_tokens.into()),
                s.max_new_tokens
                    .as_ref()
                    .unwrap_or(&d.max_new_tokens.into()),
            ],
            span_mode(s.mode.as_ref()).map_err(invalid)?,
        )
        .map_err(invalid)?;
        let target_densities = raw
            .meta
            .target_densities
            .iter()
            .enumerate()
            .map(|(i, v)| density(i, v))
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
        let meta = Meta {
            target_densities,
            provenance: raw.meta.provenance,
            notes: raw.meta.notes,
        };
        let Some(raw_layers) = &raw.layers else {
            return Err(invalid((
                "layers".into(),
                format!(
                    "is missing: the plan has no `[[layers]]` table; it needs one per layer \
                     (model.layers = {}), each with `alpha` and `beta` lists of one entry per \
                     query head (model.q_heads = {}), as in plans/fixture-gqa.toml",
                    model.layers, model.q_heads
                ),
            )));
        };
        let mut layers = Vec::with_capacity(raw_layers.len());
        for (l, layer) in raw_layers.iter().enumerate() {
            let (Some(alpha), Some(beta)) = (&layer.alpha, &layer.beta) else {
                let name = if layer.alpha.is_none() {
                    "alpha"
                } else {
                    "beta"
                };
                return Err(invalid((
                    format!("layers[{l}].{name}"),
                    format!(
                        "is missing: every [[layers]] table needs `alpha` (tokens, whole numbers with |alpha| < {MAX_ABS_ALPHA}) and `beta` (fractions of N in [0, 1]), one entry per query head (model.q_heads = {})",
                        model.q_heads
                    ),
                )));
            };
            for (name, len) in [("alpha", alpha.len()), ("beta", beta.len())] {
                if len != model.q_heads as usize {
                    // One rule per KV head is what a GQA-native plan would be written
                    // as; the format has none (docs/DESIGN.md §4), so say how to write it.
                    let per_kv = if len == model.kv_heads as usize {
                        format!(
                            " (rules are per query head, not per KV head: repeat each KV head's rule for its {} query heads, docs/DESIGN.md §4)",
                            model.q_heads / model.kv_heads
                        )
                    } else {
                        String::new()
                    };
                    return Err(invalid((
                        format!("layers[{l}].{name}"),
                        format!(
                            "has {len} entries: expected one per query head, model.q_heads = {}{per_kv}",
                            model.q_heads
                        ),
                    )));
                }
            }
            let mut rules = Vec::with_capacity(alpha.len());
            for (h, (a, b)) in alpha.iter().zip(beta).enumerate() {
                let rule = rule_from_num(a, b)
                    .map_err(|(f, m)| invalid((format!("layers[{l}].{f}[{h}]"), m)))?;
                rules.push(rule);
            }
            layers.push(LayerRules { rules });
        }
        let plan = Plan {
            model,
            span,
            meta,
            layers,
        };
        plan.validate().map_err(invalid)?;
        Ok(plan)
    }

    /// Builds a plan in memory and validates it (errors name the field as in TOML).
    pub fn new(
        model: ModelShape,
        span: SpanSection,
        meta: Meta,
        layers: Vec<LayerRules>,
    ) -> Result<Plan, PlanError> {
        let plan = Plan {
            model,
            span,
            meta,
            layers,
        };
        plan.validate()
            .map_err(|(field, message)| PlanError::Invalid {
                path: "<plan>".into(),
                field,
                message,
            })?;
        Ok(plan)
    }

    /// The model shape the plan was made for.
    pub fn model(&self) -> &ModelShape {
        &self.model
    }

    /// How rules become spans (sink, minimum span, block, mode, new tokens for N).
    pub fn span(&self) -> &SpanSection {
        &self.span
    }

    /// Where the plan came from (free-form; validated ranges only for densities).
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// One entry per layer (`model().layers` of them), each with one rule per query head.
    pub fn layers(&self) -> &[LayerRules] {
        &self.layers
    }

    /// The plan with `meta` replaced, validated (a target density outside (0, 1] is an
    /// error naming it).
    pub fn with_meta(self, meta: Meta) -> Result<Plan, PlanError> {
        Plan::new(self.model, self.span, meta, self.layers)
    }

    /// The plan with `layers` replaced, validated (one entry per layer, one rule per query
    /// head, each in range).
    pub fn with_layers(self, layers: Vec<LayerRules>) -> Result<Plan, PlanError> {
        Plan::new(self.model, self.span, self.meta, layers)
    }

    /// The parts, to build a changed plan with [`Plan::new`] (which validates again).
    pub fn into_parts(self) -> (ModelShape, SpanSection, Meta, Vec<LayerRules>) {
        (self.model, self.span, self.meta, self.layers)
    }

    /// The dense plan of `model`: every query head of every layer keeps every token
    /// (α = 0, β = 1, no sink, no rounding, so each span is exactly N, DESIGN.md §2).
    /// Dense attention then runs through the same generated kernels as a sparse plan.
    /// Errors: `PlanError::Invalid` when `model` itself is out of range.
    pub fn dense(model: ModelShape) -> Result<Plan, PlanError> {
        let rule = Rule {
            alpha: 0,
            beta_num: BETA_DEN,
        };
        let layers = (0..model.layers)
            .map(|_| LayerRules {
                rules: vec![rule; model.q_heads as usize],
            })
            .collect();
        Plan::new(
            model,
            SpanSection {
                sink_tokens: 0,
                min_span_tokens: 1,
                block_tokens: 1,
                mode: SpanMode::Moa,
                max_new_tokens: 0,
            },
            Meta {
                provenance: Some("dense: every span is N".into()),
                ..Meta::default()
            },
            layers,
        )
        // Not "<plan>": no file was given, the shape is the model's.
        .map_err(|e| match e {
            PlanError::Invalid { field, message, .. } => PlanError::Invalid {
                path: "the dense plan of the model's shape".into(),
                field,
                message,
            },
            e => e,
        })
    }
}

impl ModelShape {
    /// Checks every field against its allowed range; `Err((field, message))` names the
    /// field as in TOML (`model.q_heads`, …).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let m = self;
        let fields = [
            m.layers,
            m.q_heads,
            m.kv_heads,
            m.head_dim,
            m.max_context_tokens,
        ];
        shape_from(m.name.clone(), fields.map(Num::from).each_ref()).map(drop)
    }
}

/// The one definition of the shape's ranges: `[layers, q_heads, kv_heads, head_dim,
/// max_context_tokens]` as written, checked in that order.
fn shape_from(name: Option<String>, v: [&Num; 5]) -> Result<ModelShape, (String, String)> {
    let layers = range("model.layers", v[0], 1, MAX_LAYERS)?;
    let q_heads = range("model.q_heads", v[1], 1, MAX_HEADS)?;
    let kv_heads = range_noted(
        "model.kv_heads",
        v[2],
        1,
        q_heads,
        &format!(" (at most model.q_heads = {q_heads})"),
    )?;
    if !q_heads.is_multiple_of(kv_heads) {
        // The allowed values, not only the rule (round 27).
        let divisors = (1..=q_heads)
            .filter(|d| q_heads.is_multiple_of(*d))
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err((
            "model.kv_heads".into(),
            format!(
                "= {kv_heads} does not divide model.q_heads = {q_heads}: every KV head must serve the same number of query heads (allowed {divisors})"
            ),
        ));
    }
    let head_dim = range("model.head_dim", v[3], 4, MAX_HEAD_DIM)?;
    if !head_dim.is_multiple_of(4) {
        return Err((
            "model.head_dim".into(),
            format!("= {head_dim} is not a multiple of 4: kernels load keys as 4-wide vectors"),
        ));
    }
    let max_context_tokens = range("model.max_context_tokens", v[4], 1, MAX_CONTEXT_TOKENS)?;
    Ok(ModelShape {
        name,
        layers,
        q_heads,
        kv_heads,
        head_dim,
        max_context_tokens,
    })
}

/// The one definition of the span section's ranges: `[sink_tokens, min_span_tokens,
/// block_tokens, max_new_tokens]` as written, for a model of `ctx` tokens of context.
fn span_from(ctx: u32, v: [&Num; 4], mode: SpanMode) -> Result<SpanSection, (String, String)> {
    Ok(SpanSection {
        sink_tokens: range_in_context("span.sink_tokens", v[0], 0, 1 << 20, ctx)?,
        min_span_tokens: range_in_context("span.min_span_tokens", v[1], 1, 1 << 24, ctx)?,
        block_tokens: range_in_context("span.block_tokens", v[2], 1, 4096, ctx)?,
        mode,
        // Validation allows any N the rules can be evaluated at (see `check_prompt_room`);
        // the note gives the narrower range a plan must keep to be compiled or imported.
        max_new_tokens: range_noted(
            "span.max_new_tokens",
            v[3],
            0,
            1 << 30,
            &format!(
                " (to be compiled or imported, 0..={}: N = prompt + max_new_tokens must fit \
                 model.max_context_tokens = {ctx} with at least one prompt token)",
                ctx.saturating_sub(1)
            ),
        )?,
    })
}

/// How an absent required field is held in a [`Num`] while it is checked (a string value
/// shows quoted, so no plan value reads as this).
const MISSING: &str = "(missing)";

/// `span.mode` as written: absent is the default (`moa`); anything but the strings `"moa"`
/// and `"upstream"` is refused naming both.
fn span_mode(v: Option<&serde_json::Value>) -> Result<SpanMode, (String, String)> {
    let Some(v) = v else {
        return Ok(SpanSection::default().mode);
    };
    serde_json::from_value(v.clone()).map_err(|_| {
        let shown = match v {
            serde_json::Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        (
            "span.mode".into(),
            format!("= {shown} is not a span mode: allowed \"moa\" (spans never past N, the default) or \"upstream\" (upstream MoA's rounding, docs/DESIGN.md §2)"),
        )
    })
}

/// `meta.target_densities[i]`, a density in (0, 1].
fn density(i: usize, v: &Num) -> Result<f64, (String, String)> {
    match v.number() {
        Some(d) if d.is_finite() && d > 0.0 && d <= 1.0 => Ok(d),
        Some(_) => Err((
            format!("meta.target_densities[{i}]"),
            format!("= {} is out of range: a density is in (0, 1]", v.shown()),
        )),
        None => Err((
            format!("meta.target_densities[{i}]"),
            format!("= {} is not a number: a density is in (0, 1]", v.shown()),
        )),
    }
}

/// `v` as a whole number in `lo..=hi`, or `Err((field, "= v is out of range: allowed
/// lo..=hi"))` (`is not a whole number` for a fraction, a string, …).
fn range(field: &str, v: &Num, lo: u32, hi: u32) -> Result<u32, (String, String)> {
    range_noted(field, v, lo, hi, "")
}

/// [`range`] with `note` after the allowed range.
fn range_noted(
    field: &str,
    v: &Num,
    lo: u32,
    hi: u32,
    note: &str,
) -> Result<u32, (String, String)> {
    let what = match (v.whole(), v) {
        (None, Num::Other(s)) if s == MISSING => {
            return Err((
                field.to_string(),
                format!("is missing: allowed {lo}..={hi}{note}"),
            ))
        }
        (Some(x), _) => match u32::try_from(x) {
            Ok(x) if (lo..=hi).contains(&x) => return Ok(x),
            _ => "is out of range",
        },
        // Whole, but past what an i64 holds.
        (None, Num::Float(x)) if x.is_finite() && x.fract() == 0.0 => "is out of range",
        (None, Num::Big(_)) => "is out of range",
        (None, _) => "is not a whole number",
    };
    Err((
        field.to_string(),
        format!("= {} {what}: allowed {lo}..={hi}{note}", v.shown()),
    ))
}

/// [`range`] with the upper bound also capped at `model.max_context_tokens`: a sink,
/// minimum span or block longer than any sequence the model can hold is never what a plan
/// means (every head would keep only its first tokens, or be silently dense in `moa` span
/// mode and larger than dense in `upstream` mode), so it is refused, naming the cap.
fn range_in_context(
    field: &str,
    v: &Num,
    lo: u32,
    hi: u32,
    ctx: u32,
) -> Result<u32, (String, String)> {
    if ctx >= hi {
        return range(field, v, lo, hi);
    }
    range_noted(
        field,
        v,
        lo,
        ctx,
        &format!(" (at most model.max_context_tokens = {ctx})"),
    )
}

impl Plan {
    fn validate(&self) -> Result<(), (String, String)> {
        let m = &self.model;
        m.validate()?;
        let s = &self.span;
        let fields = [
            s.sink_tokens,
            s.min_span_tokens,
            s.block_tokens,
            s.max_new_tokens,
        ];
        span_from(
            m.max_context_tokens,
            fields.map(Num::from).each_ref(),
            s.mode,
        )?;
        for (i, &d) in self.meta.target_densities.iter().enumerate() {
            density(i, &Num::Float(d))?;
        }
        if self.layers.len() != m.layers as usize {
            return Err((
                "layers".into(),
                format!(
                    "has {} entries: expected one per layer, model.layers = {}",
                    self.layers.len(),
                    m.layers
                ),
            ));
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.rules.len() != m.q_heads as usize {
                return Err((
                    format!("layers[{l}]"),
                    format!(
                        "has {} rules: expected model.q_heads = {}",
                        layer.rules.len(),
                        m.q_heads
                    ),
                ));
            }
            for (h, r) in layer.rules.iter().enumerate() {
                if i64::from(r.alpha).abs() >= MAX_ABS_ALPHA || r.beta_num > BETA_DEN {
                    return Err((
                        format!("layers[{l}] head {h}"),
                        "has alpha or beta out of range".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the plan as TOML; `from_toml_str(to_toml())` gives back an equal plan.
    pub fn to_toml(&self) -> String {
        let raw = RawPlan {
            format_version: FORMAT_VERSION,
            model: self.model.clone(),
            span: self.span.clone(),
            meta: self.meta.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| RawLayerOut {
                    alpha: l.rules.iter().map(|r| i64::from(r.alpha)).collect(),
                    beta: l.rules.iter().map(Rule::beta).collect(),
                })
                .collect(),
        };
        let body =
            toml::to_string(&raw).expect("a plan always serialises: plain numbers and strings");
        format!("# MoA plan: see docs/DESIGN.md for the meaning of every field\n{body}")
    }

    /// N for a request: prompt tokens plus the plan's `max_new_tokens`.
    pub fn n_for_prompt(&self, prompt_tokens: u32) -> u32 {
        prompt_tokens.saturating_add(self.span.max_new_tokens)
    }

    /// The prompt lengths a request of this plan may have: `1..=model.max_context_tokens −
    /// span.max_new_tokens` (N must fit the model's context). `None` when `max_new_tokens`
    /// leaves no room for a prompt.
    pub fn prompt_range(&self) -> Option<std::ops::RangeInclusive<u32>> {
        let room = self
            .model
            .max_context_tokens
            .checked_sub(self.span.max_new_tokens)?;
        (room >= 1).then_some(1..=room)
    }

    /// Refuses a plan that no request can run: one whose `span.max_new_tokens` leaves no
    /// prompt token in `model.max_context_tokens` (N = prompt + max_new_tokens must fit the
    /// context, DESIGN.md §2). Validation allows such a plan, since the rules are
    /// evaluated at any N by the optimizer, profiler and `plan show` (and test models of a
    /// short context keep the default 1024); `moa-compile` and `moa plan import` call this
    /// so that kernels are never written for a plan nobody can run. `path` names the file.
    pub fn check_prompt_room(&self, path: &str) -> Result<(), PlanError> {
        let (ctx, max_new) = (self.model.max_context_tokens, self.span.max_new_tokens);
        if self.prompt_range().is_some() {
            return Ok(());
        }
        let default = if max_new == default_max_new() {
            // Also what `moa plan import` writes (upstream's), where the file then sets it:
            // "the default when [span] does not set it" alone misread such a plan.
            format!(
                " ({max_new} is the default when [span] does not set it, and upstream's, which `moa plan import` writes unless given --max-new-tokens)"
            )
        } else {
            String::new()
        };
        Err(PlanError::Invalid {
            path: path.to_string(),
            field: "span.max_new_tokens".into(),
            message: format!(
                "= {max_new} is out of range: allowed 0..={} (N = prompt + max_new_tokens must fit model.max_context_tokens = {ctx} with at least one prompt token){default}",
                ctx - 1
            ),
        })
    }

    /// [`Plan::n_for_prompt`] for a prompt length given by a user: errors (naming the
    /// allowed range) when the prompt is empty or N would exceed `model.max_context_tokens`.
    pub fn checked_n_for_prompt(&self, prompt_tokens: u32) -> Result<u32, String> {
        let (ctx, max_new) = (self.model.max_context_tokens, self.span.max_new_tokens);
        match self.prompt_range() {
            None => Err(format!(
                "span.max_new_tokens = {max_new} leaves no room for a prompt in model.max_context_tokens = {ctx}"
            )),
            Some(r) if !r.contains(&prompt_tokens) => Err(format!(
                "prompt length {prompt_tokens} is out of range: allowed {}..={} (N = prompt + span.max_new_tokens {max_new} must fit model.max_context_tokens = {ctx})",
                r.start(),
                r.end()
            )),
            Some(_) => Ok(prompt_tokens + max_new),
        }
    }

    /// Span of one query head at sequence length N.
    pub fn q_span(&self, layer: usize, q_head: usize, n_tokens: u32) -> u32 {
        self.layers[layer].rules[q_head].span(n_tokens, &self.span.params())
    }

    /// The mask of one query head at sequence length N.
    pub fn window(&self, layer: usize, q_head: usize, n_tokens: u32) -> HeadWindow {
        HeadWindow::new(self.q_span(layer, q_head, n_tokens), self.span.sink_tokens)
    }

    /// Span of a KV head: the largest span among its query heads, so that every
    /// query head of the group finds its keys in the shared cache segment.
    pub fn kv_span(&self, layer: usize, kv_head: usize, n_tokens: u32) -> u32 {
        let g = self.model.group_size() as usize;
        (kv_head * g..(kv_head + 1) * g)
            .map(|h| self.q_span(layer, h, n_tokens))
            .max()
            .unwrap_or(0)
    }
}
