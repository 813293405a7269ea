//! Upstream MoA plan files (`{"alphas": [[α per head] per layer], "betas": [...]}`),
//! as written by thu-nics/MoA's optimizer. They carry no shape or constants: the
//! importer takes the shape from the caller and the constants of upstream's runtime
//! (`moa_config_to_cache_config`: sink 64, minimum span 128, rounding 64, 1024 new tokens).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

use super::{
    rule_from_num, LayerRules, Meta, ModelShape, Num, Plan, PlanError, SpanMode, SpanSection,
};

/// What `export` writes.
#[derive(Serialize)]
struct UpstreamJson {
    alphas: Vec<Vec<f64>>,
    betas: Vec<Vec<f64>>,
}

/// What `import` reads: numbers as written, so a string or `null` in a row is reported
/// with the field (`alphas[l][h]`) and its allowed range, as a number out of range is.
///
/// Unknown keys are refused, as in plan TOML: a misspelt `beta` beside `alphas` is a
/// typo, not a file upstream writes (its files hold exactly these two keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamIn {
    alphas: Vec<Vec<Num>>,
    betas: Vec<Vec<Num>>,
}

/// The span constants of upstream's runtime, so imported plans reproduce its spans.
pub fn upstream_span_section() -> SpanSection {
    SpanSection {
        sink_tokens: 64,
        min_span_tokens: 128,
        block_tokens: 64,
        mode: SpanMode::Upstream,
        max_new_tokens: 1024,
    }
}

/// Converts upstream JSON into a validated plan of the given shape.
pub fn import(text: &str, path: &str, model: ModelShape) -> Result<Plan, PlanError> {
    let invalid = |field: String, message: String| PlanError::Invalid {
        path: path.to_string(),
        field,
        message,
    };
    // The shape first: the row counts below are checked against it.
    model
        .validate()
        .map_err(|(field, message)| invalid(field, message))?;
    if text.trim().is_empty() {
        // serde_json said "EOF while parsing a value at line 1 column 0" (round 18).
        return Err(PlanError::Parse {
            path: path.to_string(),
            message: format!(
                "is empty ({} bytes): an upstream MoA plan is JSON, {{\"alphas\": [[...]], \"betas\": [[...]]}} with one row per layer and one entry per query head",
                text.len()
            ),
        });
    }
    if !text.trim_start().starts_with('{') && text.contains("format_version") {
        // A moa plan given to the import (a round trip's wrong file) was refused as "not
        // an upstream MoA plan: expected value at line 1 column 1".
        return Err(PlanError::Parse {
            path: path.to_string(),
            message: "is a moa plan (TOML) already, not upstream JSON: it needs no import (`moa plan export` writes a moa plan as upstream JSON)".into(),
        });
    }
    let raw: UpstreamIn = serde_json::from_str(text).map_err(|e| PlanError::Parse {
        path: path.to_string(),
        message: format!(
            "not an upstream MoA plan ({{\"alphas\": [[...]], \"betas\": [[...]]}}): {e}"
        ),
    })?;
    for (name, rows) in [("alphas", &raw.alphas), ("betas", &raw.betas)] {
        if rows.len() != model.layers as usize {
            return Err(invalid(
                name.into(),
                // The shape comes from --layers, --model or --like: name the number, not
                // a flag the user may not have given.
                format!(
                    "has {} layers but the model has {} (model.layers)",
                    rows.len(),
                    model.layers
                ),
            ));
        }
        for (l, row) in rows.iter().enumerate() {
            if row.len() != model.q_heads as usize {
                return Err(invalid(
                    format!("{name}[{l}]"),
                    format!(
                        "has {} heads but the model has {} query heads (model.q_heads; upstream plans are per query head)",
                        row.len(),
                        model.q_heads
                    ),
                ));
            }
        }
    }
    let mut layers = Vec::new();
    for (l, (alphas, betas)) in raw.alphas.iter().zip(&raw.betas).enumerate() {
        let mut rules = Vec::new();
        for (h, (a, b)) in alphas.iter().zip(betas).enumerate() {
            let field = |f: &str| format!("{}s[{l}][{h}]", f);
            rules.push(rule_from_num(a, b).map_err(|(f, m)| invalid(field(f), m))?);
        }
        layers.push(LayerRules { rules });
    }
    let meta = Meta {
        provenance: Some(format!("imported from upstream MoA plan `{path}`")),
        ..Meta::default()
    };
    Plan::new(model, upstream_span_section(), meta, layers).map_err(|e| match e {
        PlanError::Invalid { field, message, .. } => invalid(field, message),
        other => other,
    })
}

/// Writes a plan back in upstream's JSON format (α and β as floats, per query head).
pub fn export(plan: &Plan) -> String {
    let raw = UpstreamJson {
        alphas: plan
            .layers
            .iter()
            .map(|l| l.rules.iter().map(|r| f64::from(r.alpha)).collect())
            .collect(),
        betas: plan
            .layers
            .iter()
            .map(|l| l.rules.iter().map(|r| r.beta()).collect())
            .collect(),
    };
    serde_json::to_string(&raw).expect("plain numbers always serialise")
}
