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
