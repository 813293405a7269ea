//! The plan pipeline as a new user tries it on the CPU with a random model (`moa model
//! random`, then calib → profile → optimize → validate, as README and
//! docs/CALIBRATION.md show). Runs the binary; no GPU, nothing outside the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pipeline-user-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `moa args` in `cwd`: (exit code, stdout, stderr).
fn moa(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `moa model random` wrote weights and a config but no tokenizer, so the pipeline's
/// first step stopped on "cannot read `rnd/tokenizer.json`: No such file or directory".
/// It now writes a byte-level tokenizer (one token per byte), calib answers with it, and
/// a folder without one is refused saying which commands need it and what to do.
#[test]
fn a_random_model_has_a_tokenizer_and_calib_runs_on_it() {
    let dir = scratch("random");
    let (code, _, err) = moa(
        &dir,
        &["model", "random", "--like", "smollm2-135m", "-o", "rnd"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = moa(&dir, &["model", "info", "rnd"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tokenizer        259 tokens"), "{out}");
    let args = [
        "calib",
        "--model",
        "rnd",
        "--out",
        "c.jsonl",
        "--lengths",
        "256",
        "--samples",
        "1",
        "--max-new-tokens",
        "2",
    ];
    let (code, out, err) = moa(&dir, &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote 1 samples to c.jsonl"), "{out}");

    std::fs::remove_file(dir.join("rnd/tokenizer.json")).unwrap();
    let (code, _, err) = moa(&dir, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "`rnd`: tokenizer: the folder has no tokenizer.json, which generate, calib, eval \
             and diagnose need"
        ) && err.contains("copy in the tokenizer.json of the model the weights come from"),
        "{err}"
    );
}

/// The byte-level tokenizer gives one id per byte (3 + byte) and decodes any UTF-8 text
/// back unchanged; its special tokens are the config's BOS (1) and EOS (2).
#[test]
fn the_byte_level_tokenizer_round_trips_any_text() {
    let doc = moa::model::random::byte_level_tokenizer_json();
    let tok: tokenizers::Tokenizer = doc.to_string().parse().unwrap();
    assert_eq!(tok.get_vocab_size(true), moa::model::random::BYTE_VOCAB);
    let text = "Pass key 73665, héllo ✓ \t\n";
    let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
    let want: Vec<u32> = text.bytes().map(|b| 3 + u32::from(b)).collect();
    assert_eq!(ids, want);
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    assert_eq!(tok.token_to_id("<s>"), Some(1));
    assert_eq!(tok.token_to_id("</s>"), Some(2));
}
