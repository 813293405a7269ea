//! Runs this package's binaries as a user would, for the tests that pin a command's exit
//! code and message.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `moa` (`bin` = "moa") or `moa-compile` (any other `bin`) with `args` and a model
/// cache of its own under the tests' scratch folder (`<tag>-no-cache`), so no test touches
/// the user's cache; returns (exit code, stdout, stderr), -1 for a signal.
pub fn run(tag: &str, bin: &str, args: &[&str]) -> (i32, String, String) {
    let exe = match bin {
        "moa" => env!("CARGO_BIN_EXE_moa"),
        _ => env!("CARGO_BIN_EXE_moa-compile"),
    };
    let out = Command::new(exe)
        .env(
            "MOA_CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-no-cache")),
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

/// [`run`], expecting exit 2 with every one of `needles` on stderr and no panic; returns
/// stderr.
pub fn refused(tag: &str, bin: &str, args: &[&str], needles: &[&str]) -> String {
    let (code, _, err) = run(tag, bin, args);
    assert_eq!(code, 2, "{bin} {args:?} should fail with exit 2:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{bin} {args:?}: `{n}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{bin} {args:?} panicked:\n{err}");
    err
}

/// An empty folder `<tag>-<name>` under the tests' scratch folder (`CARGO_TARGET_TMPDIR`),
/// emptied first so a rerun starts clean.
pub fn scratch(tag: &str, name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path as the `&str` a command-line argument takes (the tests' paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The text of `plans/<name>` (a committed fixture or example plan).
pub fn plan_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `plans/fixture-gqa.toml`'s text: 3 layers, 8 query / 2 KV heads of 64, a 1024-token
/// context.
pub fn fixture_gqa() -> String {
    plan_text("fixture-gqa.toml")
}
