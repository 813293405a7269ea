//! Work a stopped run keeps: `moa calib` logs each dense answer as it is computed (its
//! answers are minutes of the pipeline's first step), so a run stopped before it writes
//! its output answers again from the log, to the same bytes; the log is never used for
//! another model. Runs the binary on the tiny random Llama; no GPU.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{self, tiny};

/// `moa calib` of 3 samples at 512 tokens into `out`: (success, stderr).
fn calib(model: &Path, out: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["calib", "--model", model.to_str().unwrap(), "--out"])
        .arg(out)
        .args(["--lengths", "512", "--samples", "3", "--seed", "5"])
        .args(["--source", "generated", "--max-new-tokens", "8"])
        .output()
        .expect("running moa");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_stopped_calib_reuses_its_answers_and_writes_the_same_file() {
    let dir = tiny::tmp("resume-calib");
    let model = dir.join("tiny.gguf");
    let other = dir.join("other.gguf");
    for (seed, path) in [(21, &model), (22, &other)] {
        // A 1k context: the prompts are 512 tokens (the tiny model's own is 128).
        tiny(seed, true).write_gguf(path, |md, _| {
            for (k, v) in md.iter_mut() {
                if k == "llama.context_length" {
                    *v = Value::U32(1024);
                }
            }
        });
    }

    // The reference: one run that is not stopped leaves no log.
    let (ok, err) = calib(&model, &dir.join("ref.jsonl"));
    assert!(ok, "{err}");
    assert!(!dir.join("ref.jsonl.answers").exists());
    let want = std::fs::read(dir.join("ref.jsonl")).unwrap();

    // A run stopped after its answers, before its output is written (here: a folder
    // stands where the output's temporary file goes, so the write fails).
    let out = dir.join("calib.jsonl");
    let blocker = dir.join("calib.jsonl.partial");
    std::fs::create_dir_all(&blocker).unwrap();
    let (ok, err) = calib(&model, &out);
    assert!(!ok, "the write should have failed:\n{err}");
    assert!(!out.exists());
    let log = dir.join("calib.jsonl.answers");
    assert!(log.exists(), "no answer log after a stopped run:\n{err}");
    std::fs::remove_dir(&blocker).unwrap();
    // A line cut by the kill is skipped, not an error.
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"key\": \"cut");
    std::fs::write(&log, text).unwrap();

    // Another model at the same --out reuses nothing (its answers would be another's).
    let other_out = dir.join("other.jsonl");
    std::fs::copy(&log, dir.join("other.jsonl.answers")).unwrap();
    let (ok, err) = calib(&other, &other_out);
    assert!(ok, "{err}");
    assert!(!err.contains("answered by an earlier run"), "{err}");

    // The same run again: every answer from the log, the same bytes, the log removed.
    let (ok, err) = calib(&model, &out);
    assert!(ok, "{err}");
    assert_eq!(
        err.matches("(answered by an earlier run)").count(),
        3,
        "{err}"
    );
    assert!(
        err.contains("3 dense answers of an earlier, stopped run"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), want);
    assert!(!log.exists());
    assert!(!blocker.exists());
}
