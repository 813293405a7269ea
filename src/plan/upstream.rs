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
    if text.trim_start().starts_with('[') {
        // serde reads a struct from a JSON list too, so `[[alphas...], [betas...]]` was
        // taken as a plan, the two lists in either order (user round 42, session 56).
        return Err(PlanError::Parse {
            path: path.to_string(),
            message: "holds a JSON list, not an object: an upstream MoA plan is {\"alphas\": [[...]], \"betas\": [[...]]}, one row per layer and one entry per query head in each".into(),
        });
    }
    let raw: UpstreamIn = serde_json::from_str(text)
        .or_else(|e| {
            // Python's json module writes a NaN or infinite float as a bare `NaN` /
            // `Infinity`, which JSON does not have: serde said "expected value at line 1
            // column 431", naming neither the value nor its place (session 56). Read them
            // as the floats they stand for, so the rule checks below name the field
            // (`alphas[2][1]` = NaN) and its allowed range, as for a plan TOML's `nan`.
            // Another fault beside them keeps serde's first error, whose column is the
            // file's (the rewritten text is longer).
            let Some(mut raw) = non_finite_as_strings(text)
                .and_then(|written| serde_json::from_str::<UpstreamIn>(&written).ok())
            else {
                return Err(e);
            };
            for row in raw.alphas.iter_mut().chain(raw.betas.iter_mut()) {
                for n in row.iter_mut() {
                    if let Some(v) = non_finite_of(n) {
                        *n = Num::Float(v);
                    }
                }
            }
            Ok(raw)
        })
        .map_err(|e: serde_json::Error| PlanError::Parse {
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

/// The bare words Python's `json.dump` writes for floats JSON cannot hold, with the
/// values they stand for. Each is read as a string holding a NUL first
/// ([`non_finite_as_strings`]), which no plan file holds, then turned back into its float.
const NON_FINITE: [(&str, f64); 3] = [
    ("-Infinity", f64::NEG_INFINITY),
    ("Infinity", f64::INFINITY),
    ("NaN", f64::NAN),
];

/// `text` with every `NaN`, `Infinity` and `-Infinity` outside a string written as the
/// string `"\u0000NaN"` (…), so that it parses as JSON; `None` where it holds none.
fn non_finite_as_strings(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut found) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some((word, _)) = NON_FINITE.iter().find(|(w, _)| rest.starts_with(w)) {
            out.push_str(&format!("\"\\u0000{word}\""));
            rest = &rest[word.len()..];
            found = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    found.then_some(out)
}

/// The float a value [`non_finite_as_strings`] wrote stands for.
fn non_finite_of(n: &Num) -> Option<f64> {
    let Num::Other(shown) = n else {
        return None;
    };
    NON_FINITE
        .iter()
        .find(|(word, _)| *shown == format!("{:?}", format!("\0{word}")))
        .map(|(_, v)| *v)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ModelShape {
        ModelShape {
            name: None,
            layers: 1,
            q_heads: 2,
            kv_heads: 1,
            head_dim: 64,
            max_context_tokens: 4096,
        }
    }

    fn refusal(text: &str) -> String {
        import(text, "u.json", shape()).unwrap_err().to_string()
    }

    /// Python's `NaN` / `Infinity` / `-Infinity` are named by their field and range; the
    /// same words inside a string stay text; a list in place of the object is refused.
    #[test]
    fn non_finite_numbers_and_lists_are_named() {
        let e = refusal(r#"{"alphas": [[0, NaN]], "betas": [[0.5, 0.5]]}"#);
        assert_eq!(
            e,
            "u.json: `alphas[0][1]` = NaN is not allowed: alpha must be a whole number of tokens with |alpha| < 16777216"
        );
        let e = refusal(r#"{"alphas": [[0, 0]], "betas": [[0.5, Infinity]]}"#);
        assert!(e.contains("`betas[0][1]` = inf is out of range"), "{e}");
        let e = refusal(r#"{"alphas": [[-Infinity, 0]], "betas": [[0.5, 0.5]]}"#);
        assert!(e.contains("`alphas[0][0]` = -inf is not allowed"), "{e}");
        // A quoted "NaN" is a string, shown as one; a NaN beside another fault keeps
        // serde's own error and column.
        let e = refusal(r#"{"alphas": [[0, "NaN"]], "betas": [[0.5, 0.5]]}"#);
        assert!(e.contains("`alphas[0][1]` = \"NaN\" is not allowed"), "{e}");
        let e = refusal(r#"{"alphas": [[0, NaN]], "betas": [[0.5, 0.5]] x}"#);
        assert!(e.contains("expected value at line 1 column 17"), "{e}");
        assert_eq!(
            non_finite_as_strings(r#"{"a\"NaN": [NaN]}"#).as_deref(),
            Some(r#"{"a\"NaN": ["\u0000NaN"]}"#)
        );
        assert_eq!(non_finite_as_strings(r#"{"NaN": 1}"#), None);
        let e = refusal(r#"[[[0, 0]], [[0.5, 0.5]]]"#);
        assert!(e.contains("holds a JSON list, not an object"), "{e}");
        let e = refusal(" \n[[[0.5, 0.5]], [[0, 0]]]");
        assert!(e.contains("holds a JSON list, not an object"), "{e}");
        import(
            r#"{"alphas": [[0, 0]], "betas": [[0.5, 0.5]]}"#,
            "u.json",
            shape(),
        )
        .unwrap();
    }
}
