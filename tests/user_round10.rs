//! A new user's journey, round 10 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("user_round10-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `moa` (or `moa-compile`) with an empty model cache; returns (exit code, stdout,
/// stderr).
fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    let exe = match bin {
        "moa" => env!("CARGO_BIN_EXE_moa"),
        _ => env!("CARGO_BIN_EXE_moa-compile"),
    };
    let out = Command::new(exe)
        .env(
            "MOA_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_round10-no-cache"),
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs and expects exit 2 with every one of `needles` on stderr, and no panic.
fn refused(bin: &str, args: &[&str], needles: &[&str]) -> String {
    let (code, _, err) = run(bin, args);
    assert_eq!(code, 2, "{bin} {args:?} should fail with exit 2:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{bin} {args:?}: `{n}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{bin} {args:?} panicked:\n{err}");
    err
}

/// Names of the files in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `moa plan import/export -o`: the input itself given as the output replaced it (the plan
/// became JSON, the upstream file TOML); a folder as the output failed at the rename and
/// left `FOLDER.partial-<pid>` beside it; a missing folder was reported as the temporary's
/// name. Each is refused now, naming the user's path, and nothing is left behind.
#[test]
fn plan_import_and_export_never_overwrite_their_input_or_leave_temporaries() {
    let dir = scratch("output");
    let plan = dir.join("p.toml");
    std::fs::copy(root().join("plans/fixture-gqa.toml"), &plan).unwrap();
    let before = std::fs::read(&plan).unwrap();
    let p = plan.to_str().unwrap();
    // The same file under another spelling is still the input.
    let same = format!("{}/./p.toml", dir.display());
    for out in [p, same.as_str()] {
        refused(
            "moa",
            &["plan", "export", p, "-o", out],
            &["is the input", "p.toml"],
        );
    }
    assert_eq!(
        std::fs::read(&plan).unwrap(),
        before,
        "the plan was replaced"
    );

    let json = dir.join("up.json");
    let (code, _, err) = run("moa", &["plan", "export", p, "-o", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let up = std::fs::read(&json).unwrap();
    let j = json.to_str().unwrap();
    let shape = [
        "--layers",
        "3",
        "--heads",
        "8",
        "--kv-heads",
        "2",
        "--head-dim",
        "64",
    ];
    let mut args = vec!["plan", "import", j];
    args.extend(shape);
    args.extend(["-o", j]);
    refused("moa", &args, &["is the input", "up.json"]);
    assert_eq!(
        std::fs::read(&json).unwrap(),
        up,
        "the upstream file was replaced"
    );

    // A folder, and a file in a missing folder: the user's path named, nothing left.
    let folder = dir.join("sub");
    std::fs::create_dir(&folder).unwrap();
    let missing = dir.join("nope/x.json");
    for (out, needle) in [
        (folder.to_str().unwrap(), "is a folder"),
        (missing.to_str().unwrap(), "does not exist"),
    ] {
        let err = refused("moa", &["plan", "export", p, "-o", out], &[out, needle]);
        assert!(!err.contains(".partial-"), "a temporary named:\n{err}");
    }
    assert_eq!(names(&dir), ["p.toml", "sub", "up.json"]);
    assert!(names(&folder).is_empty());
}

/// `moa bench --parity 0 --checks-only` compared no token and would pass; on a machine
/// without the CUDA driver, `--parity N` first made a random SmolLM2-shaped model on the
/// CPU (a minute, silently) before failing at the first CUDA call.
#[test]
fn bench_refuses_parity_0_and_a_missing_driver_before_any_work() {
    refused(
        "moa",
        &["bench", "--parity", "0", "--checks-only"],
        &["--parity 0: allowed 1 or more"],
    );
    if moa::runtime::cuda::ops::driver_present().is_ok() {
        return; // a GPU machine: the run would start
    }
    // Said by the check before the model is made (the CUDA call's own error came after).
    refused(
        "moa",
        &["bench", "--parity", "4", "--checks-only"],
        &["moa bench runs the CUDA engine, which needs an NVIDIA GPU and its driver"],
    );
}
