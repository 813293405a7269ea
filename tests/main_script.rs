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
            let command = ["cargo ", "target/release/", "eval "]
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
