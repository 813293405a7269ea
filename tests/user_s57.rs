//! A new user's journey, round 43 (session 57, branch s57-user; the files before it run to
//! `user_s56.rs`): long sampled generations whose rings wrap, the calibration pipeline end
//! to end on tiny random models with unusual but legal inputs, and the library used from a
//! small program as the crate's docs describe it, on a CPU machine (lavapipe). What the
//! program got wrong, each pinned here: `moa calib --source repeat` with quote samples was
//! refused as "--lengths 1000 is too short … give a longer length", where no length can
//! quote that text; a length with no room for a quote document's sentence was blamed on a
//! text that "repeats itself too much", with no length to give; `moa optimize --plan-shape`
//! with another sink than the profiles' said "profile again with that sink", a profile
//! `moa profile` cannot make; `moa validate --length 512` said "has no samples of
//! length 512", naming neither the flag nor the lengths the file has; the engine started a
//! request past its plan's `model.max_context_tokens` (`EngineError::TooLong` says it is
//! refused, and `moa generate` refuses it); and a prefill prompt too long for its request
//! was told "allowed 1..=N" where the request's buffers held fewer tokens than N.

mod common;

use std::path::{Path, PathBuf};

use common::cli::s;

common::cli::tagged!();

/// A tiny random Llama folder (`moa model random`'s files, byte-level tokenizer) with a
/// 1024-token context: 2 layers, 4 query / 2 KV heads of 16, seed 5. Its pass-key prompt
/// takes about 230 tokens, so calibration lengths of 246 tokens and more are allowed.
fn model_1k(dir: &Path) -> PathBuf {
    common::cli::tiny_model_of(dir, 1024, 5)
}

/// `moa calib --source repeat` with quote samples (every third: `--samples 3` or more) is
/// refused before the model loads, naming the source and what to give instead; it was
/// "--lengths 1000 is too short for this model: no filler sentence has a prefix that occurs
/// once in the document … give a longer length", after the first answers, at any length.
/// `moa pipeline` refuses it the same way, naming its own flag. Pass keys alone (`--samples
/// 2`) still take `repeat` for the quote source they never read.
#[test]
fn calib_refuses_quotes_of_the_repeat_text_naming_the_source() {
    let dir = scratch("repeat");
    let model = model_1k(&dir.join("m"));
    let out = dir.join("c.jsonl");
    let calib = |samples: &str| {
        [
            "calib",
            "--model",
            s(&model),
            "--lengths",
            "1000",
            "--samples",
            samples,
            "--source",
            "repeat",
            "--out",
            s(&out),
        ]
        .map(str::to_string)
    };
    let args = calib("3");
    let err = refused(
        "moa",
        &args.each_ref().map(String::as_str),
        &[
            "--source repeat with --samples 3",
            "the quote task (every third sample: 3 samples a length hold 1 quote) cannot quote the `repeat` text",
            "allowed the python-doc or generated text",
        ],
    );
    assert!(!err.contains("too short"), "{err}");
    assert!(!out.exists());

    let args = calib("2");
    let (code, stdout, err) = run("moa", &args.each_ref().map(String::as_str));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote 2 samples"), "{stdout}");

    let work = dir.join("work");
    refused(
        "moa",
        &[
            "pipeline",
            "--model",
            s(&model),
            "--workdir",
            s(&work),
            "--plans-dir",
            s(&dir.join("plans")),
            "--profile-lengths",
            "320,512",
            "--validate-length",
            "1000",
            "--samples",
            "2",
            "--validate-samples",
            "6",
            "--source",
            "repeat",
        ],
        &[
            "--source repeat with --validate-samples 6",
            "6 samples a length hold 2 quotes",
        ],
    );
    assert!(!work.join("calib.jsonl").exists());
}

/// A calibration length that leaves a quote prompt room for its fixed text but for no
/// sentence of its document (a byte-level tokenizer: the fixed text alone is about 190
/// tokens) was refused as "no filler sentence has a prefix that occurs once in the document
/// (the text source repeats itself too much …)"; it now says the length is short and which
/// length holds any sentence of the text, and that length works.
#[test]
fn a_length_too_short_for_a_quote_names_the_length_that_holds_one() {
    let dir = scratch("quote-short");
    let model = model_1k(&dir.join("m"));
    let out = dir.join("c.jsonl");
    let calib = |length: &str| {
        [
            "calib",
            "--model",
            s(&model),
            "--lengths",
            length,
            "--samples",
            "3",
            "--source",
            "generated",
            "--out",
            s(&out),
        ]
        .map(str::to_string)
    };
    let args = calib("260");
    let err = refused(
        "moa",
        &args.each_ref().map(String::as_str),
        &[
            "--lengths 260 is too short for this model: the quote prompt's fixed text (instruction and question) and one sentence of its document take up to ",
            "more than the 244 left after the 16 answer tokens (--max-new-tokens): give a longer length: ",
            " or more holds any of its sentences, where the model's context allows (else 1 or 2 samples a length, pass keys only)",
        ],
    );
    assert!(!err.contains("repeats itself"), "{err}");
    let least = err
        .split("(--max-new-tokens): give a longer length: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no least length in:\n{err}"));
    assert!((261..=1024).contains(&least), "{least}:\n{err}");
    let args = calib(&least.to_string());
    let (code, stdout, err) = run("moa", &args.each_ref().map(String::as_str));
    assert_eq!(code, 0, "--lengths {least}: {err}");
    assert!(stdout.contains("wrote 3 samples"), "{stdout}");
}

/// `moa optimize --plan-shape` with a plan of another sink than the profiles' cut influence
/// names the flag, the two sinks and the allowed value; it was "invalid optimizer settings:
/// … profile again with that sink", which `moa profile` cannot do (it takes the cuts for the
/// default 64-token sink only). The plan with the profiles' sink is taken.
#[test]
fn plan_shape_of_another_sink_is_refused_naming_the_sink_a_profile_has() {
    use moa::profile::InfluenceProfile;
    let dir = scratch("sink");
    let shape = common::profiles::shape(2, 4, 2, 16, 1024);
    let n = 512;
    let nb = (n / 64) as usize;
    let profile = dir.join("p512.safetensors");
    InfluenceProfile::synthetic(shape.clone(), n, 64, 7)
        .with_cuts(64, vec![0.001; 2 * 4 * nb * nb])
        .unwrap()
        .save(&profile)
        .unwrap();
    let plan = |sink: u32| {
        let mut text = format!(
            "format_version = 1\n[model]\nname = \"synthetic-2x4\"\nlayers = 2\nq_heads = 4\n\
             kv_heads = 2\nhead_dim = 16\nmax_context_tokens = 1024\n[span]\n\
             sink_tokens = {sink}\nmin_span_tokens = 128\nblock_tokens = 64\nmode = \"moa\"\n\
             max_new_tokens = 64\n"
        );
        for _ in 0..2 {
            text.push_str("[[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [1.0, 1.0, 1.0, 1.0]\n");
        }
        let path = dir.join(format!("sink{sink}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let sink8 = plan(8);
    let out = dir.join("o8");
    let err = refused(
        "moa",
        &[
            "optimize",
            "--profile",
            s(&profile),
            "--density",
            "0.7",
            "--plan-shape",
            s(&sink8),
            "-o",
            s(&out),
        ],
        &[
            &format!("--plan-shape `{}` has span.sink_tokens = 8", sink8.display()),
            "holds cut influence for a 64-token sink, the one `moa profile` takes: allowed a plan with sink_tokens = 64",
        ],
    );
    assert!(!err.contains("profile again"), "{err}");
    let sink64 = plan(64);
    let (code, _, err) = run(
        "moa",
        &[
            "optimize",
            "--profile",
            s(&profile),
            "--density",
            "0.7",
            "--plan-shape",
            s(&sink64),
            "-o",
            s(&dir.join("o64")),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// The library's own refusal (another sink than the cuts') names the sink `moa profile`
/// takes instead of asking for a profile of the plan's sink.
#[test]
fn the_optimizers_sink_refusal_names_what_a_profile_can_have() {
    use moa::optimize::{optimize, OptimizeConfig};
    use moa::profile::InfluenceProfile;
    let shape = common::profiles::shape(2, 4, 2, 16, 1024);
    let nb = 8;
    let profile = InfluenceProfile::synthetic(shape.clone(), 512, 64, 7)
        .with_cuts(64, vec![0.001; 2 * 4 * nb * nb])
        .unwrap();
    let mut cfg = OptimizeConfig {
        model: Some(shape),
        density_band: (0.63, 0.7),
        ..OptimizeConfig::default()
    };
    cfg.span.sink_tokens = 8;
    let Err(e) = optimize(&[profile], &["p512".to_string()], &cfg) else {
        panic!("a plan of sink 8 over cuts of sink 64 is refused");
    };
    let err = e.to_string();
    assert!(
        err.contains("`p512` has cut influence for a 64-token sink but the plan's span.sink_tokens is 8: allowed a plan of the profile's sink (`moa profile` takes the cut influence for the default 64-token sink only"),
        "{err}"
    );
}

/// `moa validate --length N` where the calibration file has no sample of that length names
/// the flag and the lengths it has; it was "`F` has no samples of length 512".
#[test]
fn validate_length_names_the_lengths_the_file_has() {
    let dir = scratch("validate-length");
    let model = common::cli::tiny_model(&dir.join("m"));
    let calib = dir.join("held.jsonl");
    let samples = vec![
        common::samples::sample("a-200-0", (3..43).collect(), 4, 200),
        common::samples::sample("b-100-0", (3..23).collect(), 4, 100),
    ];
    moa::calib::write_jsonl(&calib, &samples).unwrap();
    let plan = dir.join("dense.toml");
    std::fs::write(
        &plan,
        moa::plan::Plan::dense(moa::model::read_config(&model).unwrap().0.model_shape())
            .unwrap()
            .to_toml(),
    )
    .unwrap();
    refused(
        "moa",
        &[
            "validate",
            "--model",
            s(&model),
            "--calib",
            s(&calib),
            "--plan",
            s(&plan),
            "--length",
            "512",
        ],
        &[&format!(
            "--length 512: `{}` has no sample of length 512: allowed 100, 200 (the length levels its samples were built for)",
            calib.display()
        )],
    );
}

/// The tiny GGUF model (128-token context) and `common::tiny::sparse_plan`'s rules in a
/// plan made for 64-token requests.
fn short_plan() -> moa::Plan {
    let p = common::tiny::sparse_plan();
    let mut shape = p.model().clone();
    shape.max_context_tokens = 64;
    moa::Plan::new(
        shape,
        p.span().clone(),
        moa::plan::Meta::default(),
        p.layers().to_vec(),
    )
    .unwrap()
}

/// `request_n`, which every back end's `Engine::start` calls first: N past the plan's
/// `model.max_context_tokens` (a plan made for shorter requests than the model's context) is
/// [`moa::EngineError::TooLong`] with the plan's context, as the error's docs say; it was
/// started (`moa generate` refused it, the library did not). N within it, and the model's
/// own context with a plan of the model's, still start.
#[test]
fn a_request_past_the_plans_context_is_too_long() {
    use moa::runtime::engine::request_n;
    use moa::EngineError;
    let dir = scratch("too-long");
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(5, true).write_gguf(&path, |_, _| {});
    let config = moa::model::read_config(&path).unwrap().0;
    assert_eq!(config.context_length, 128);
    let short = short_plan();
    match request_n(&[60], 10, &config, &short) {
        Err(e @ EngineError::TooLong { context: 64, .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("the prompt (60 tokens) plus 10 new tokens exceeds the context of 64 tokens (the model's context length, or the plan's model.max_context_tokens where that is shorter)"),
                "{text}"
            );
        }
        other => panic!("N = 70 past the plan's 64 tokens: {other:?}"),
    }
    assert_eq!(request_n(&[60, 3], 4, &config, &short).unwrap(), 64);
    let full = common::tiny::sparse_plan();
    assert_eq!(request_n(&[60], 68, &config, &full).unwrap(), 128);
    assert!(matches!(
        request_n(&[60], 69, &config, &full),
        Err(EngineError::TooLong { context: 128, .. })
    ));
}

/// The wgpu engine end to end (lavapipe): a start past the plan's context is refused, and a
/// prefill prompt longer than the request takes is told the range that holds. An 11-token
/// prompt in a request started for `[3]` with N = 8 was "allowed 1..=8 (N of this
/// request)", and 8 tokens then "allowed 1..=3"; a refused prefill leaves the request as it
/// was, so a prompt it takes runs after it.
#[test]
fn the_engine_names_the_range_a_prefill_takes() {
    use moa::{Engine, EngineError, Sampling, WgpuContext, WgpuEngine};
    common::llvmpipe::compile_kernels_fast();
    let dir = scratch("prefill-range");
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(5, true).write_gguf(&path, |_, _| {});
    let model = moa::Model::load(&path).unwrap();
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required");
    let short = short_plan();
    let engine = WgpuEngine::new(&ctx, &model, Some(&short), true).unwrap();
    assert!(matches!(
        engine.start(&[60], 10, 0),
        Err(EngineError::TooLong { context: 64, .. })
    ));
    let mut req = engine.start(&[3], 5, 0).unwrap();
    for n in [11, 8] {
        let e = engine
            .prefill_tokens(&mut req, &[vec![1; n]], Sampling::greedy())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "prompt 0 has {n} tokens, more than the 3 this request's prefill buffers hold"
            )) && e.contains("allowed 1..=3;"),
            "{e}"
        );
    }
    let first = engine
        .prefill_tokens(&mut req, &[vec![1, 2, 3]], Sampling::greedy())
        .unwrap();
    assert_eq!(first.len(), 1);
}

/// `moa eval --merge` of a report measured with other perplexity settings names them as the
/// flags that set them; it printed Rust's `Some((2, 1024, 256, ["docs/DESIGN.md",
/// "README.md"]))`. The CPU reference on the tiny model: a second each.
#[test]
fn eval_merge_names_the_other_perplexity_settings_by_their_flags() {
    let dir = scratch("merge");
    let model = common::cli::tiny_model(&dir.join("m"));
    let report = dir.join("r.json");
    let eval = |rows: &str| {
        [
            "eval",
            "--model",
            s(&model),
            "--backend",
            "cpu",
            "--lengths",
            "256",
            "--depths",
            "1",
            "--tasks",
            "passkey",
            "--ppl-rows",
            rows,
            "-q",
        ]
        .map(str::to_string)
    };
    let mut first = eval("2").to_vec();
    first.extend(["--json".into(), s(&report).into()]);
    let (code, _, err) = run("moa", &first.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let mut second = eval("1").to_vec();
    second.extend(["--merge".into(), s(&report).into()]);
    let err = refused(
        "moa",
        &second.iter().map(String::as_str).collect::<Vec<_>>(),
        &[&format!(
            "--merge: `{}` measured perplexity with --ppl-rows 2, --ppl-length 256, --ppl-scored 128 over the text of docs/DESIGN.md, README.md; this run: --ppl-rows 1, --ppl-length 256, --ppl-scored 128 over the text of docs/DESIGN.md, README.md: give the same",
            report.display()
        )],
    );
    assert!(!err.contains("Some(("), "{err}");
}
