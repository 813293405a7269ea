//! The README's main command (`scripts/main.sh`) and CI's (`scripts/test.sh`) on a fresh
//! Debian machine as a user without root: whether Vulkan is there is decided by
//! `ldconfig -p`, and ldconfig lives in /usr/sbin, which a Debian user's PATH lacks.

use std::path::Path;
use std::process::Command;

/// With a user's PATH (no sbin), `ldconfig -p` was "command not found", so both scripts
/// took Vulkan for missing and ran `sudo apt-get install` on every run: a password prompt,
/// and a user without sudo could not run the main command at all. The check now finds
/// ldconfig in /usr/sbin or /sbin whatever the PATH.
#[test]
fn the_vulkan_check_finds_ldconfig_without_sbin_on_path() {
    if !["/usr/sbin/ldconfig", "/sbin/ldconfig"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        eprintln!("skipped: no ldconfig in /usr/sbin or /sbin on this system");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["scripts/main.sh", "scripts/test.sh"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("ldconfig -p"))
            .unwrap_or_else(|| panic!("{script}: no `ldconfig -p` line"));
        let check = line
            .trim_start()
            .strip_prefix("if ! ")
            .and_then(|l| l.split(" | ").next())
            .unwrap_or_else(|| panic!("{script}: unexpected check line `{line}`"));
        let out = Command::new("bash")
            .args(["-c", &format!("{check} > /dev/null")])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: `{check}` fails with a user's PATH: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The README's two commands read literally: each step of `scripts/main.sh` and
/// `scripts/test.sh` says what it does and about how long it takes before it runs (the
/// scripts printed nothing of their own, so a 10-minute build or a 30-minute `cargo test`
/// looked like a hang between cargo's lines). Every command line comes after a numbered
/// `step` line, the steps count up to 4/4, and each gives a duration.
#[test]
fn each_step_of_the_readme_commands_says_what_it_does_and_how_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["scripts/main.sh", "scripts/test.sh"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        let mut last = 0;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("step \"") {
                let n: u32 = rest[..1].parse().unwrap();
                assert!(rest[1..].starts_with("/4: "), "{script}: `{line}`");
                let timed = ["min", " s", "second", "a minute"]
                    .iter()
                    .any(|t| rest.contains(t));
                assert!(timed, "{script}: `{line}` says no duration");
                if n > 0 {
                    assert_eq!(n, last + 1, "{script}: `{line}` out of order");
                    last = n;
                }
            }
            let command = ["cargo ", "target/release/", "\"$bin/", "eval "]
                .iter()
                .any(|c| line.starts_with(c));
            assert!(
                !command || last > 0,
                "{script}: `{line}` runs before any step says what it does"
            );
        }
        assert_eq!(last, 4, "{script}");
    }
}

/// A user who sets `CARGO_TARGET_DIR` (a shared or faster disk; round 15 built with
/// `CARGO_TARGET_DIR=/work/main/target` as told) saw `./scripts/main.sh` build, then fail
/// "target/release/moa: No such file or directory": the scripts ran a fixed
/// `target/release`. Both scripts source `scripts/bin-dir.sh`, which asks cargo where its
/// target folder is (`cargo metadata`, which also follows a config's
/// `build.target-dir`), else takes `CARGO_TARGET_DIR`, else `target`. It runs here with a
/// `CARGO_TARGET_DIR` and without one, and no script line runs a binary from
/// `target/release` itself.
#[test]
fn the_scripts_run_the_binaries_where_cargo_put_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["scripts/main.sh", "scripts/pipeline.sh"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        for line in &code {
            assert!(
                !line.contains("target/release/"),
                "{script}: `{line}` runs a binary from a fixed target/release"
            );
        }
        assert!(
            code.iter()
                .any(|l| l.trim_start().starts_with("source scripts/bin-dir.sh")),
            "{script} does not source scripts/bin-dir.sh"
        );
    }
    let bin = |target: Option<&str>| {
        let mut c = Command::new("bash");
        c.args([
            "-euo",
            "pipefail",
            "-c",
            "source scripts/bin-dir.sh\necho \"$bin\"",
        ])
        .current_dir(root);
        match target {
            Some(t) => c.env("CARGO_TARGET_DIR", t),
            None => c.env_remove("CARGO_TARGET_DIR"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(bin(Some("/elsewhere/t")), "/elsewhere/t/release");
    let own = bin(None);
    assert!(
        own == "target/release" || Path::new(&own) == root.join("target/release"),
        "{own}"
    );
}
