//! The MoA plan: moa's front-end IR, stored as TOML.
//!
//! A [`Plan`] can only be built through [`Plan::from_toml_str`] or [`Plan::new`] (and the
//! helpers built on it), all of which validate it, and its fields are private, so later
//! stages (`lower`, `codegen`) never re-check shapes or ranges.
//! The meaning of every field is written once in `docs/DESIGN.md`.

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

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{field}` {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

/// Model shape the plan was made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub layers: u32,
    pub q_heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
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
    #[serde(default = "default_sink")]
    pub sink_tokens: u32,
    #[serde(default = "default_min_span")]
    pub min_span_tokens: u32,
    /// The plan's block size: spans round up to it and the profiler tiles by it.
    #[serde(default = "default_block")]
    pub block_tokens: u32,
    #[serde(default = "default_mode")]
    pub mode: SpanMode,
    /// N = prompt tokens + this many new tokens, fixed when a request starts.
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_densities: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// One layer: the rule of every query head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRules {
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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan<L> {
    format_version: u32,
    model: ModelShape,
    #[serde(default)]
    span: SpanSection,
    #[serde(default, skip_serializing_if = "is_default_meta")]
    meta: Meta,
    layers: Vec<L>,
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
    /// α per query head, in tokens.
    alpha: Vec<f64>,
    /// β per query head, a fraction of N.
    beta: Vec<f64>,
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

/// Checks a raw (α, β) pair and converts it; `field` names the place for errors.
pub fn rule_from_f64(alpha: f64, beta: f64) -> Result<Rule, (&'static str, String)> {
    if !alpha.is_finite() || alpha.fract() != 0.0 || alpha.abs() >= MAX_ABS_ALPHA as f64 {
        return Err((
            "alpha",
            format!(
                "= {} is not allowed: alpha must be a whole number of tokens with |alpha| < {MAX_ABS_ALPHA}",
                compact_number(alpha)
            ),
        ));
    }
    if !beta.is_finite() || !(0.0..=1.0).contains(&beta) {
        return Err((
            "beta",
            format!(
                "= {} is out of range: beta must be a fraction of N in [0, 1]",
                compact_number(beta)
            ),
        ));
    }
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
        let text = crate::input::read_to_string(path, "plan", crate::input::MAX_TEXT_BYTES)
            .map_err(|source| PlanError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Plan::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates plan TOML; `path` only names the source in errors.
    pub fn from_toml_str(text: &str, path: &str) -> Result<Plan, PlanError> {
        let raw: RawPlan<RawLayer> = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: path.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |field: String, message: String| PlanError::Invalid {
            path: path.to_string(),
            field,
            message,
        };
        if raw.format_version != FORMAT_VERSION {
            return Err(invalid(
                "format_version".into(),
                format!(
                    "= {} is not supported: this moa reads format_version = {FORMAT_VERSION}",
                    raw.format_version
                ),
            ));
        }
        // The shape first: the per-layer checks below count entries against it, so
        // `q_heads = 0` must be reported as itself, not as a wrong alpha length.
        raw.model
            .validate()
            .map_err(|(field, message)| invalid(field, message))?;
        let mut layers = Vec::with_capacity(raw.layers.len());
        for (l, layer) in raw.layers.iter().enumerate() {
            for (name, len) in [("alpha", layer.alpha.len()), ("beta", layer.beta.len())] {
                if len != raw.model.q_heads as usize {
                    return Err(invalid(
                        format!("layers[{l}].{name}"),
                        format!(
                            "has {len} entries: expected one per query head, model.q_heads = {}",
                            raw.model.q_heads
                        ),
                    ));
                }
            }
            let mut rules = Vec::with_capacity(layer.alpha.len());
            for (h, (&a, &b)) in layer.alpha.iter().zip(&layer.beta).enumerate() {
                let rule = rule_from_f64(a, b)
                    .map_err(|(f, m)| invalid(format!("layers[{l}].{f}[{h}]"), m))?;
                rules.push(rule);
            }
            layers.push(LayerRules { rules });
        }
        let plan = Plan {
            model: raw.model,
            span: raw.span,
            meta: raw.meta,
            layers,
        };
        plan.validate()
            .map_err(|(field, message)| invalid(field, message))?;
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
    }
}

impl ModelShape {
    /// Checks every field against its allowed range; `Err((field, message))` names the
    /// field as in TOML (`model.q_heads`, …).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let m = self;
        range("model.layers", m.layers, 1, 1024)?;
        range("model.q_heads", m.q_heads, 1, 1024)?;
        range("model.kv_heads", m.kv_heads, 1, m.q_heads)?;
        if !m.q_heads.is_multiple_of(m.kv_heads) {
            return Err((
                "model.kv_heads".into(),
                format!(
                    "= {} does not divide model.q_heads = {}: every KV head must serve the same number of query heads",
                    m.kv_heads, m.q_heads
                ),
            ));
        }
        range("model.head_dim", m.head_dim, 4, MAX_HEAD_DIM)?;
        if !m.head_dim.is_multiple_of(4) {
            return Err((
                "model.head_dim".into(),
                format!(
                    "= {} is not a multiple of 4: kernels load keys as 4-wide vectors",
                    m.head_dim
                ),
            ));
        }
        range("model.max_context_tokens", m.max_context_tokens, 1, 1 << 30)?;
        Ok(())
    }
}

/// `Err((field, "= v is out of range: allowed lo..=hi"))` unless `lo ≤ v ≤ hi`.
fn range(field: &str, v: u32, lo: u32, hi: u32) -> Result<(), (String, String)> {
    if v < lo || v > hi {
        Err((
            field.to_string(),
            format!("= {v} is out of range: allowed {lo}..={hi}"),
        ))
    } else {
        Ok(())
    }
}

/// [`range`] with the upper bound also capped at `model.max_context_tokens`: a sink,
/// minimum span or block longer than any sequence the model can hold is never what a plan
/// means (every head would keep only its first tokens, or be silently dense in `moa` span
/// mode and larger than dense in `upstream` mode), so it is refused, naming the cap.
fn range_in_context(
    field: &str,
    v: u32,
    lo: u32,
    hi: u32,
    ctx: u32,
) -> Result<(), (String, String)> {
    if ctx >= hi {
        return range(field, v, lo, hi);
    }
    if v < lo || v > ctx {
        return Err((
            field.to_string(),
            format!(
                "= {v} is out of range: allowed {lo}..={ctx} (at most model.max_context_tokens = {ctx})"
            ),
        ));
    }
    Ok(())
}

impl Plan {
    fn validate(&self) -> Result<(), (String, String)> {
        let m = &self.model;
        m.validate()?;
        let s = &self.span;
        let ctx = m.max_context_tokens;
        range_in_context("span.sink_tokens", s.sink_tokens, 0, 1 << 20, ctx)?;
        range_in_context("span.min_span_tokens", s.min_span_tokens, 1, 1 << 24, ctx)?;
        range_in_context("span.block_tokens", s.block_tokens, 1, 4096, ctx)?;
        range("span.max_new_tokens", s.max_new_tokens, 0, 1 << 30)?;
        for (i, d) in self.meta.target_densities.iter().enumerate() {
            if !d.is_finite() || *d <= 0.0 || *d > 1.0 {
                return Err((
                    format!("meta.target_densities[{i}]"),
                    format!(
                        "= {} is out of range: a density is in (0, 1]",
                        compact_number(*d)
                    ),
                ));
            }
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
