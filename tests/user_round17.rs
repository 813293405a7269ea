//! A new user's journey, round 17 (benches/RESULTS.md): an app that embeds `moa-compile`'s
//! output, a CI that snapshot-tests it, and the plan pipeline on one's own small model, on
//! a CPU machine; what was found wrong, each pinned here. None of these needs a GPU, the
//! fetched model or anything outside the repository.

mod common;

use common::cli::{fixture_gqa, s};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

common::cli::tagged!();

/// Every file under `dir` by its path relative to `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A CI that snapshot-tests kernels edits a plan and recompiles or checks: one head's rule
/// edited in layer 1 of a 3-layer plan was reported as "held the kernels of another plan
/// (`fixture-gqa`: …), now replaced: … give each plan its own -o", advice for a mix-up, not
/// an edit, and `--check` listed the changed files by line only. Both now say it is an
/// earlier version of the same plan and name the layers whose rules moved (or the span
/// fields), and only that layer's kernels and the manifest change.
#[test]
fn an_edited_plan_names_the_layers_whose_rules_moved() {
    let dir = scratch("edited-plan");
    let text = fixture_gqa();
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, &text).unwrap();
    let edited = dir.join("edited.toml");
    let one_head = text.replace(
        "beta = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
        "beta = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
    );
    assert_ne!(one_head, text);
    std::fs::write(&edited, &one_head).unwrap();
    let out = dir.join("k");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let before = tree(&out);

    let layer = "`fixture-gqa` with other rules in layer 1 (1 of 3 layers)";
    let (code, _, err) = run("moa-compile", &[s(&edited), "-o", s(&out), "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("is of another version of this model's plan (an earlier edit, or another plan of the same model): {layer}")),
        "{err}"
    );
    assert!(!err.contains("is another plan's"), "{err}");
    for f in [
        "wgsl/l00_prefill.wgsl",
        "wgsl/l02_decode.wgsl",
        "cuda/l00.cu",
    ] {
        assert!(!err.contains(f), "{f} should not differ: {err}");
    }

    let (code, _, err) = run("moa-compile", &[s(&edited), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "held the kernels of another version of this model's plan (an earlier edit of this plan, or another plan of the same model), {layer}; now updated"
        )),
        "{err}"
    );
    assert!(!err.contains("kernels of another plan ("), "{err}");
    let after = tree(&out);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, _)| k)
        .collect();
    for c in &changed {
        assert!(
            c.starts_with("wgsl/l01_") || *c == "cuda/l01.cu" || *c == "manifest.json",
            "only layer 1's kernels and the manifest should change: {changed:?}"
        );
    }
    assert!(changed.iter().any(|c| *c == "cuda/l01.cu"), "{changed:?}");

    // A span constant moves every layer.
    let sink = dir.join("sink.toml");
    std::fs::write(
        &sink,
        one_head.replace("sink_tokens = 16", "sink_tokens = 32"),
    )
    .unwrap();
    let (code, _, err) = run("moa-compile", &[s(&sink), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("`fixture-gqa` with other span constants (`sink_tokens` 16 -> 32): every layer's kernels differ"),
        "{err}"
    );
    // Another model is still another plan.
    let mha = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-mha.toml");
    let (code, _, err) = run("moa-compile", &[s(&mha), "-o", s(&out), "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("manifest.json is another plan's (`fixture-gqa`: 3 layers"),
        "{err}"
    );
}

/// The snapshot a CI commits does not depend on where or how `moa-compile` runs: another
/// working directory and relative paths (another folder's plan file and output), the engine's `MOA_*` settings, one rayon thread,
/// another time zone and locale give the same bytes as a plain run.
#[test]
fn the_output_does_not_depend_on_the_directory_environment_or_threads() {
    let dir = scratch("same-bytes");
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, fixture_gqa()).unwrap();
    let a = dir.join("a");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&a), "-q"]);
    assert_eq!(code, 0, "{err}");
    let sub = dir.join("x/y");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(&plan, sub.join("plan.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .current_dir(&sub)
        .args(["plan.toml", "-o", "b", "-q"])
        .env("MOA_WGPU_COOP", "0")
        .env("MOA_WGSL_SG_DECODE", "0")
        .env("MOA_WGSL_DECODE_FORM", "not-a-form")
        .env("RAYON_NUM_THREADS", "1")
        .env("TZ", "Asia/Tokyo")
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree(&a) == tree(&sub.join("b")), "the two outputs differ");
}

/// A two-layer random model of SmolLM2's heads (vocabulary 300, byte-level tokenizer) as
/// a Hugging Face folder `dir/name`, its weights drawn from `seed`.
fn tiny_model(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let m = moa::model::random::random_model(&c, seed);
    let path = dir.join(name);
    moa::model::random::write_hf_folder(&m, &path).unwrap();
    path
}

/// An empty calibration file (or one of blank lines) given to `moa profile` was refused as
/// "has no calibration sample of length 512 … it has lengths {}": it says the file holds
/// no samples and how to make one.
#[test]
fn an_empty_calibration_file_is_said_to_be_empty() {
    let dir = scratch("empty-calib");
    let model = tiny_model(&dir, "m", 3);
    for (name, text) in [("empty.jsonl", ""), ("blank.jsonl", "\n\n")] {
        let calib = dir.join(name);
        std::fs::write(&calib, text).unwrap();
        let out = dir.join("p");
        let (code, _, err) = run(
            "moa",
            &[
                "profile",
                "--model",
                s(&model),
                "--calib",
                s(&calib),
                "--lengths",
                "256",
                "-o",
                s(&out),
            ],
        );
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains(&format!(
                "`{}` holds no calibration samples",
                calib.display()
            )) && err.contains("moa calib --out")
                && !err.contains("lengths {}"),
            "{err}"
        );
        assert!(!out.exists(), "{err}");
    }
}

/// `moa calib --text-samples 1` at length 256 scores at most a quarter of the sample, so
/// the default `--text-scored 256` became 64 tokens without a word: a note names what each
/// length scores; a `--text-scored` that fits says nothing.
#[test]
fn text_scored_past_a_quarter_of_the_sample_is_said() {
    let dir = scratch("text-scored");
    let model = tiny_model(&dir, "m", 4);
    let calib = |out: &Path, scored: &str| {
        run(
            "moa",
            &[
                "calib",
                "--model",
                s(&model),
                "--out",
                s(out),
                "--lengths",
                "256",
                "--samples",
                "1",
                "--text-samples",
                "1",
                "--text-scored",
                scored,
                "--max-new-tokens",
                "2",
                "--source",
                "generated",
            ],
        )
    };
    let out = dir.join("c.jsonl");
    let (code, _, err) = calib(&out, "256");
    assert_eq!(code, 0, "{err}");
    let samples = moa::calib::read_jsonl(&out).unwrap();
    let text = samples.iter().find(|s| s.task == "text").unwrap();
    let k = text.response_tokens.len();
    assert!(k <= 256 / 4, "{k}");
    assert!(
        err.contains(&format!(
            "note: --text-scored 256 is more than a quarter of a text sample, the most scored, so the text samples score {k} tokens at length 256"
        )),
        "{err}"
    );
    let out2 = dir.join("c2.jsonl");
    let (code, _, err) = calib(&out2, "10");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("--text-scored"), "{err}");
}

/// The kernels of `text` (a plan) for WGSL in f32: the manifest and each source by path.
fn embedded(text: &str) -> (moa::Plan, String, Vec<(String, String)>) {
    let plan = moa::Plan::from_toml_str(text, "plan.toml").unwrap();
    let c = moa::compile(&plan, &[moa::Target::Wgsl], moa::StorageType::F32).unwrap();
    let sources = c
        .artifacts(moa::Target::Wgsl)
        .iter()
        .map(|a| (a.path.clone(), a.source.clone()))
        .collect();
    (plan, c.manifest_json(), sources)
}

/// The error `Compiled::from_embedded` gives for `plan` with these WGSL `sources` (path,
/// text) and `manifest` (the test fails if they load).
fn embedding_error(plan: &moa::Plan, manifest: &str, sources: &[(String, String)]) -> String {
    let refs: Vec<(&str, &str)> = sources
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    match moa::Compiled::from_embedded(plan, moa::Target::Wgsl, manifest, &refs) {
        Ok(_) => panic!("the kernels loaded for a plan they were not compiled from"),
        Err(e) => e.to_string(),
    }
}

/// An app that embeds a committed `moa-compile` folder, checked out on Windows with git's
/// core.autocrlf, failed on "expected 51534 bytes, sha256 …; it has 52800 bytes …; rebuild
/// the app, whose build.rs writes the kernels and the manifest together" (there was no
/// build.rs): the loader says the file is the same text with CRLF line ends and how to
/// keep git from converting, and its advice names both ways kernels are written.
#[test]
fn an_embedded_kernel_with_crlf_line_ends_is_named_so() {
    let (plan, manifest, mut sources) = embedded(&fixture_gqa());
    sources[1].1 = sources[1].1.replace('\n', "\r\n");
    let e = embedding_error(&plan, &manifest, &sources);
    assert!(
        e.contains(&sources[1].0) && e.contains("CRLF line ends") && e.contains("* -text"),
        "{e}"
    );
    // Another edit is still an edit, with the rewrite's two ways.
    sources[1].1 = sources[1]
        .1
        .replace("\r\n", "\n")
        .replacen("fn ", "fn  ", 1);
    let e = embedding_error(&plan, &manifest, &sources);
    assert!(!e.contains("CRLF"), "{e}");
    assert!(
        e.contains("build.rs") && e.contains("moa-compile PLAN -o DIR"),
        "{e}"
    );
}

/// Kernels of a plan whose one head's rule was then edited were refused as "was compiled
/// for another plan: `cache_layout.layers[1].groups[0].q_heads[0]` is 0 in the manifest
/// but the plan needs 1", the grouping the head left rather than its rule: the head's rule
/// is named first now.
#[test]
fn kernels_of_a_plan_before_one_head_was_edited_name_that_head() {
    let text = fixture_gqa();
    let (_, manifest, sources) = embedded(&text);
    let edited = text.replace(
        "beta = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
        "beta = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
    );
    let plan = moa::Plan::from_toml_str(&edited, "edited.toml").unwrap();
    let e = embedding_error(&plan, &manifest, &sources);
    assert!(
        e.contains("cache_layout.layers[1].q_heads[0].rule.beta"),
        "{e}"
    );
    assert!(!e.contains("groups"), "{e}");
    // Where the edit moves the head to another group index (layer 2 of round 17's plan,
    // every head at β 0.25, head 0 edited to 0.375), the rule is still named, not
    // `q_heads[0].group`.
    let text = "format_version = 1\n[model]\nname = \"m\"\nlayers = 1\nq_heads = 8\nkv_heads = 2\n\
                head_dim = 32\nmax_context_tokens = 2048\n[span]\nsink_tokens = 64\n\
                min_span_tokens = 128\nblock_tokens = 64\nmode = \"moa\"\nmax_new_tokens = 1024\n\
                [[layers]]\nalpha = [0, 0, 0, 0, 0, 0, 0, 0]\n\
                beta = [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]\n";
    let (_, manifest, sources) = embedded(text);
    let plan = moa::Plan::from_toml_str(
        &text.replace("beta = [0.25,", "beta = [0.375,"),
        "edited.toml",
    )
    .unwrap();
    let e = embedding_error(&plan, &manifest, &sources);
    assert!(
        e.contains("`cache_layout.layers[0].q_heads[0].rule.beta` is 0.25 in the manifest but the plan needs 0.375"),
        "{e}"
    );
}
