//! Plan IR: parsing, validation errors, TOML round trip, upstream import/export and
//! upstream's span formula on every upstream plan.

use std::path::{Path, PathBuf};

use moa::plan::{upstream, ModelShape, Plan, PlanError};

/// Upstream's plans, carried in the repository (tests/fixtures/upstream-plans/README.md).
fn upstream_plans() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-plans")
}

/// Upstream plans with the shapes of their models (layers, q heads, kv heads, head_dim).
const UPSTREAM: &[(&str, u32, u32, u32, u32)] = &[
    ("gradientai--Llama-3-8B-Instruct-262k", 32, 32, 8, 128),
    ("lmsys--vicuna-13b-v1.5-16k", 40, 40, 40, 128),
    ("lmsys--vicuna-7b-v1.5-16k", 32, 32, 32, 128),
    ("meta-llama--Llama-3.2-1B-Instruct", 16, 32, 8, 64),
    ("meta-llama--Llama-3.2-3B-Instruct", 28, 24, 8, 128),
];

fn import(dir: &str, file: &str, l: u32, h: u32, kv: u32, d: u32) -> (Plan, serde_json::Value) {
    let path = upstream_plans().join(dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape = ModelShape {
        name: Some(dir.into()),
        layers: l,
        q_heads: h,
        kv_heads: kv,
        head_dim: d,
        max_context_tokens: 32768,
    };
    let plan = upstream::import(&text, &path.display().to_string(), shape).unwrap();
    (plan, serde_json::from_str(&text).unwrap())
}

/// Upstream's runtime, transcribed from `moa_config_to_cache_config` (Python floats).
fn upstream_span(alpha: f64, beta: f64, prompt: u32) -> u32 {
    let n = f64::from(prompt + 1024);
    let s = (alpha + beta * n).trunc();
    let s = s.min(n);
    ((s.max(128.0) / 64.0).ceil() * 64.0) as u32
}

#[test]
fn upstream_spans_reproduced_on_every_plan() {
    for &(dir, l, h, kv, d) in UPSTREAM {
        for file in ["moa_alpha_beta.json", "streamingllm_alpha_beta.json"] {
            let (plan, json) = import(dir, file, l, h, kv, d);
            for prompt in [100, 2048, 8192, 12288, 16384 - 1024 + 1] {
                let n = plan.n_for_prompt(prompt);
                for layer in 0..l as usize {
                    for head in 0..h as usize {
                        let a = json["alphas"][layer][head].as_f64().unwrap();
                        let b = json["betas"][layer][head].as_f64().unwrap();
                        assert_eq!(
                            plan.q_span(layer, head, n),
                            upstream_span(a, b, prompt),
                            "{dir}/{file} layer {layer} head {head} prompt {prompt}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn vicuna_7b_check_value() {
    let (plan, _) = import(
        "lmsys--vicuna-7b-v1.5-16k",
        "moa_alpha_beta.json",
        32,
        32,
        32,
        128,
    );
    let n = plan.n_for_prompt(8192);
    let spans: Vec<u32> = (0..32)
        .flat_map(|l| (0..32).map(move |h| (l, h)))
        .map(|(l, h)| plan.q_span(l, h, n))
        .collect();
    let mean = spans.iter().map(|&s| f64::from(s)).sum::<f64>() / spans.len() as f64;
    assert_eq!(mean, 4544.0);
    assert_eq!(spans.iter().min(), Some(&1152));
    assert_eq!(spans.iter().max(), Some(&8192));
    let st = moa::plan::stats::plan_stats(&plan, n, 2);
    assert!((st.q_density - 0.493).abs() < 5e-4, "{}", st.q_density);
}

#[test]
fn toml_round_trips_and_export_gives_upstream_back() {
    for &(dir, l, h, kv, d) in UPSTREAM {
        let (plan, json) = import(dir, "moa_alpha_beta.json", l, h, kv, d);
        let again = Plan::from_toml_str(&plan.to_toml(), "roundtrip.toml").unwrap();
        assert_eq!(again, plan, "{dir}");
        let back: serde_json::Value = serde_json::from_str(&upstream::export(&plan)).unwrap();
        assert_eq!(back["alphas"], json["alphas"], "{dir}");
        assert_eq!(back["betas"], json["betas"], "{dir}");
    }
    for name in ["fixture-mha", "fixture-gqa"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plans/{name}.toml"));
        let plan = Plan::load(&path).unwrap();
        assert_eq!(Plan::from_toml_str(&plan.to_toml(), name).unwrap(), plan);
    }
}

const GOOD: &str = r#"
format_version = 1
[model]
layers = 1
q_heads = 4
kv_heads = 2
head_dim = 32
max_context_tokens = 256
[[layers]]
alpha = [0, 16, 0, 16]
beta = [0.5, 0.0, 0.5, 0.0]
"#;

fn error(text: &str) -> String {
    match Plan::from_toml_str(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_upstream_constants_in_moa_mode() {
    let plan = Plan::from_toml_str(GOOD, "good.toml").unwrap();
    assert_eq!(plan.span().sink_tokens, 64);
    assert_eq!(plan.span().min_span_tokens, 128);
    assert_eq!(plan.span().block_tokens, 64);
    assert_eq!(plan.span().max_new_tokens, 1024);
    assert_eq!(plan.span().mode, moa::plan::SpanMode::Moa);
}

#[test]
fn errors_name_file_field_and_allowed_range() {
    let cases: &[(&str, &str, &str)] = &[
        ("format_version = 1", "format_version = 2", "bad.toml: `format_version` = 2 is not supported"),
        ("beta = [0.5, 0.0, 0.5, 0.0]", "beta = [0.5, 0.0, 1.5, 0.0]", "bad.toml: `layers[0].beta[2]` = 1.5 is out of range: beta must be a fraction of N in [0, 1]"),
        ("beta = [0.5, 0.0, 0.5, 0.0]", "beta = [0.5, 0.0, 0.3, 0.0]", "`layers[0].beta[2]` = 0.3 is not a multiple of 1/4096"),
        ("alpha = [0, 16, 0, 16]", "alpha = [0, 16.5, 0, 16]", "`layers[0].alpha[1]` = 16.5 is not allowed: alpha must be a whole number of tokens"),
        ("alpha = [0, 16, 0, 16]", "alpha = [0, 16, 0]", "`layers[0].alpha` has 3 entries: expected one per query head, model.q_heads = 4"),
        ("kv_heads = 2", "kv_heads = 3", "`model.kv_heads` = 3 does not divide model.q_heads = 4: every KV head must serve the same number of query heads (allowed 1, 2, 4)"),
        ("kv_heads = 2", "kv_heads = 8", "`model.kv_heads` = 8 is out of range: allowed 1..=4 (at most model.q_heads = 4)"),
        ("format_version = 1", "format_version = \"1\"", "`format_version` = \"1\" is not a whole number: this moa reads format_version = 1"),
        ("head_dim = 32", "head_dim = 30", "`model.head_dim` = 30 is not a multiple of 4"),
        ("head_dim = 32", "head_dim = 512", "`model.head_dim` = 512 is out of range: allowed 4..=256"),
        ("layers = 1", "layers = 2", "`layers` has 1 entries: expected one per layer, model.layers = 2"),
        ("head_dim = 32", "head_dim = 32\nheads = 3", "unknown field `heads`"),
        ("beta = [0.5, 0.0, 0.5, 0.0]", "beta = [0.5, 0.0, nan, 0.0]", "`layers[0].beta[2]` = NaN is out of range"),
    ];
    for (from, to, want) in cases {
        assert!(GOOD.contains(from), "fixture lacks {from}");
        let msg = error(&GOOD.replacen(from, to, 1));
        assert!(
            msg.contains(want),
            "for `{to}`:\n  got  {msg}\n  want {want}"
        );
        assert!(msg.starts_with("bad.toml"), "{msg}");
    }
    let span = GOOD.replace("[[layers]]", "[span]\nmin_span_tokens = 0\n[[layers]]");
    assert!(error(&span).contains("`span.min_span_tokens` = 0 is out of range: allowed 1..="));
    let meta = GOOD.replace("[[layers]]", "[meta]\ntarget_densities = [1.5]\n[[layers]]");
    assert!(error(&meta).contains("`meta.target_densities[0]` = 1.5 is out of range"));
    assert!(error("not toml [").starts_with("bad.toml: "));
}

/// Session 12's fresh-user finding: `sink_tokens = "x"`, `-1` or `1.5` gave serde's
/// "invalid type: string, expected u32" with no allowed range. Every number of a plan is
/// now read as written and checked by validation, so a wrong type and a wrong value of a
/// field give the same message: file, field, value as written, allowed range.
#[test]
fn a_number_of_the_wrong_type_or_sign_names_the_field_and_its_range() {
    let span = |line: &str| GOOD.replace("[[layers]]", &format!("[span]\n{line}\n[[layers]]"));
    let sink = "`span.sink_tokens`";
    let range = "allowed 0..=256 (at most model.max_context_tokens = 256)";
    for (line, want) in [
        (
            "sink_tokens = \"x\"",
            format!("{sink} = \"x\" is not a whole number: {range}"),
        ),
        (
            "sink_tokens = -1",
            format!("{sink} = -1 is out of range: {range}"),
        ),
        (
            "sink_tokens = 1.5",
            format!("{sink} = 1.5 is not a whole number: {range}"),
        ),
        (
            "sink_tokens = true",
            format!("{sink} = true is not a whole number: {range}"),
        ),
        (
            "sink_tokens = [1]",
            format!("{sink} = [...] is not a whole number: {range}"),
        ),
        (
            "sink_tokens = 1979-05-27",
            format!("{sink} = 1979-05-27 is not a whole number: {range}"),
        ),
        (
            "sink_tokens = 1e300",
            format!("{sink} = 1e300 is out of range: {range}"),
        ),
        (
            "max_new_tokens = -5",
            "`span.max_new_tokens` = -5 is out of range: allowed 0..=1073741824 (to be compiled \
             or imported, 0..=255: N = prompt + max_new_tokens must fit model.max_context_tokens \
             = 256 with at least one prompt token)"
                .to_string(),
        ),
        (
            "block_tokens = \"64\"",
            "`span.block_tokens` = \"64\" is not a whole number: allowed 1..=256 (at most"
                .to_string(),
        ),
    ] {
        let msg = error(&span(line));
        assert!(msg.starts_with("bad.toml: "), "{msg}");
        assert!(
            msg.contains(&want),
            "for `{line}`:\n  got  {msg}\n  want {want}"
        );
    }
    for (from, to, want) in [
        (
            "q_heads = 4",
            "q_heads = \"4\"",
            "`model.q_heads` = \"4\" is not a whole number: allowed 1..=1024",
        ),
        (
            "layers = 1",
            "layers = -2",
            "`model.layers` = -2 is out of range: allowed 1..=1024",
        ),
        (
            "head_dim = 32",
            "head_dim = 32.5",
            "`model.head_dim` = 32.5 is not a whole number: allowed 4..=256",
        ),
        (
            "max_context_tokens = 256",
            "max_context_tokens = 4294967296",
            "`model.max_context_tokens` = 4294967296 is out of range: allowed 1..=1073741824",
        ),
        (
            "format_version = 1",
            "format_version = \"1\"",
            "`format_version` = \"1\" is not a whole number",
        ),
        (
            "alpha = [0, 16, 0, 16]",
            "alpha = [0, \"x\", 0, 16]",
            "`layers[0].alpha[1]` = \"x\" is not allowed: alpha must be a whole number of tokens",
        ),
        (
            "beta = [0.5, 0.0, 0.5, 0.0]",
            "beta = [0.5, 0.0, true, 0.0]",
            "`layers[0].beta[2]` = true is not a number: beta must be a fraction of N in [0, 1], a multiple of 1/4096",
        ),
        (
            // A quoted number inside the range is still not a number (not "out of range").
            "beta = [0.5, 0.0, 0.5, 0.0]",
            "beta = [0.5, 0.0, \"0.5\", 0.0]",
            "`layers[0].beta[2]` = \"0.5\" is not a number: beta must be a fraction of N in [0, 1]",
        ),
    ] {
        assert!(GOOD.contains(from), "fixture lacks {from}");
        let msg = error(&GOOD.replacen(from, to, 1));
        assert!(msg.starts_with("bad.toml: "), "{msg}");
        assert!(
            msg.contains(want),
            "for `{to}`:\n  got  {msg}\n  want {want}"
        );
    }
    // A long string is cut: the error stays one short line.
    let msg = error(&span(&format!("sink_tokens = \"{}\"", "x".repeat(10_000))));
    let want = format!("= \"{}\"... is not a whole number", "x".repeat(40));
    assert!(msg.contains(&want) && msg.len() < 200, "{msg}");
    let meta = GOOD.replace(
        "[[layers]]",
        "[meta]\ntarget_densities = [\"half\"]\n[[layers]]",
    );
    assert!(error(&meta)
        .contains("`meta.target_densities[0]` = \"half\" is not a number: a density is in (0, 1]"));
    // A whole number written as a float is that number, as for alpha.
    let plan =
        Plan::from_toml_str(&span("sink_tokens = 16.0\nmax_new_tokens = 32"), "ok.toml").unwrap();
    assert_eq!(plan.span().sink_tokens, 16);
    // Upstream JSON: a string or null in a row is named as not a number, with the range.
    let shape = ModelShape {
        name: None,
        layers: 1,
        q_heads: 2,
        kv_heads: 1,
        head_dim: 64,
        max_context_tokens: 4096,
    };
    for (json, want) in [
        (
            r#"{"alphas": [[0, "x"]], "betas": [[0.5, 0.5]]}"#,
            "u.json: `alphas[0][1]` = \"x\" is not allowed: alpha must be a whole number",
        ),
        (
            r#"{"alphas": [[0, 0]], "betas": [[null, 0.5]]}"#,
            "u.json: `betas[0][0]` = null is not a number: beta must be a fraction of N in [0, 1]",
        ),
    ] {
        let e = upstream::import(json, "u.json", shape.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn an_upstream_json_where_a_plan_goes_says_how_to_convert_it() {
    // moa-compile, plan show and generate --plan echoed the whole JSON line (10 kB) in a
    // TOML "expected key" error.
    let path = upstream_plans().join("meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json");
    let e = Plan::load(&path).unwrap_err().to_string();
    assert!(
        e.ends_with("moa_alpha_beta.json: is JSON, not a moa plan (TOML): convert an upstream MoA plan ({\"alphas\": ..., \"betas\": ...}) with `moa plan import FILE --model MODEL -o PLAN.toml`"),
        "{e}"
    );
    // Any other long line that toml quotes is cut.
    let long = format!("alpha = [0, 16, 0, 16{}, ?]", ", 0".repeat(500));
    let e = error(&GOOD.replace("alpha = [0, 16, 0, 16]", &long));
    assert!(
        e.contains("alpha = [0, 16, 0, 16, 0, 0") && e.contains("..."),
        "{e}"
    );
    assert!(e.lines().all(|l| l.chars().count() <= 200), "{e}");
}

#[test]
fn load_names_a_missing_file() {
    let err = Plan::load(Path::new("no/such/plan.toml")).unwrap_err();
    assert!(matches!(err, PlanError::Io { .. }));
    assert!(err.to_string().contains("no/such/plan.toml"));
}

#[test]
fn upstream_import_rejects_wrong_shapes() {
    let path = upstream_plans().join("lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let shape = |l, h| ModelShape {
        name: None,
        layers: l,
        q_heads: h,
        kv_heads: 1,
        head_dim: 128,
        max_context_tokens: 4096,
    };
    let e = upstream::import(&text, "v7.json", shape(30, 32))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`alphas` has 32 layers but the model has 30 (model.layers)"),
        "{e}"
    );
    let e = upstream::import(&text, "v7.json", shape(32, 16))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`alphas[0]` has 32 heads but the model has 16 query heads"),
        "{e}"
    );
    let e = upstream::import("{\"alphas\": 3}", "x.json", shape(1, 1))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.json: not an upstream MoA plan"), "{e}");
    // An unknown key (here a misspelt `betas`) was dropped without a word.
    let e = upstream::import(
        r#"{"alphas": [[0]], "betas": [[0.5]], "beta": [[0.25]]}"#,
        "x.json",
        shape(1, 1),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("x.json: not an upstream MoA plan") && e.contains("unknown field `beta`"),
        "{e}"
    );
}

/// `Plan::dense` keeps every token of every head at any N (DESIGN.md §2): the dense
/// baseline that the runtime, the benchmarks and `moa eval` run through the same kernels.
#[test]
fn dense_plan_spans_are_n() {
    let shape = ModelShape {
        name: None,
        layers: 3,
        q_heads: 8,
        kv_heads: 2,
        head_dim: 64,
        max_context_tokens: 1 << 20,
    };
    let plan = Plan::dense(shape.clone()).expect("dense plan of a valid shape");
    for n in [1u32, 2, 63, 64, 65, 4097, 100_000] {
        for layer in 0..3 {
            for q in 0..8 {
                assert_eq!(plan.q_span(layer, q, n), n, "layer {layer} head {q} N {n}");
                assert!(plan.window(layer, q, n).keeps(u64::from(n) - 1, 0));
            }
            for kv in 0..2 {
                assert_eq!(plan.kv_span(layer, kv, n), n);
            }
        }
    }
    let bad = ModelShape {
        q_heads: 0,
        ..shape
    };
    let err = Plan::dense(bad).unwrap_err().to_string();
    assert!(err.contains("model.q_heads"), "{err}");
}

/// A plan that exists is valid: its fields are private (the doc test on `Plan` checks that
/// assigning one does not compile), and every way to change one validates again.
#[test]
fn a_plan_cannot_be_changed_into_an_invalid_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let plan = Plan::load(&path).unwrap();
    // Taken apart and built again unchanged: the same plan.
    let (shape, span, meta, layers) = plan.clone().into_parts();
    let again = Plan::new(shape.clone(), span.clone(), meta.clone(), layers.clone()).unwrap();
    assert_eq!(again, plan);
    // A layer too few, a rule too many, a density out of range, a head count that no
    // longer divides: each refused, naming the field.
    let e = |r: Result<Plan, PlanError>| r.expect_err("must be refused").to_string();
    let short = layers[..layers.len() - 1].to_vec();
    assert!(e(plan.clone().with_layers(short)).contains("`layers`"));
    let mut wide = layers.clone();
    let first = wide[2].rules[0];
    wide[2].rules.push(first);
    assert!(e(plan.clone().with_layers(wide)).contains("`layers[2]`"));
    let mut big = layers.clone();
    big[0].rules[0].beta_num = moa::plan::BETA_DEN + 1;
    assert!(e(plan.clone().with_layers(big)).contains("layers[0] head 0"));
    let mut bad_meta = meta.clone();
    bad_meta.target_densities = vec![0.5, 1.5];
    assert!(e(plan.clone().with_meta(bad_meta)).contains("meta.target_densities[1]"));
    let mut odd = shape.clone();
    odd.kv_heads = 3;
    assert!(e(Plan::new(odd, span.clone(), meta.clone(), layers.clone())).contains("kv_heads"));
    // A valid change goes through and is visible through the accessors.
    let mut noted = meta;
    noted.notes = Some("checked".into());
    let noted = plan.clone().with_meta(noted).unwrap();
    assert_eq!(noted.meta().notes.as_deref(), Some("checked"));
    assert_eq!(noted.layers(), plan.layers());
}

/// Input errors name the input with its article: "an upstream plan must be UTF-8", not
/// "a upstream plan".
#[test]
fn input_errors_name_the_input_with_its_article() {
    let dir = std::env::temp_dir().join(format!("moa-plan-article-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("u.json");
    // Not `ff fe`: that is UTF-16's byte-order mark, named as such (user_round18).
    std::fs::write(&f, b"\xff\xff").unwrap();
    let e = moa::input::read_to_string(&f, "upstream plan", 100).unwrap_err();
    assert!(
        e.to_string().ends_with(": an upstream plan must be UTF-8"),
        "{e}"
    );
    let e = moa::input::read_to_string(&f, "plan", 100).unwrap_err();
    assert!(e.to_string().ends_with(": a plan must be UTF-8"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
