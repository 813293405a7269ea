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

/// A tiny random Llama folder (`moa model random`'s generator and files: bf16 weights,
/// config.json and a byte-level tokenizer) at `dir`: 2 layers, 4 query / 2 KV heads of
/// 16, a 256-token context, seed 7. Small enough to generate in a second on lavapipe.
pub fn tiny_model(dir: &Path) -> std::path::PathBuf {
    tiny_model_of(dir, 256, 7)
}

/// [`tiny_model`]'s shape with a context of `context_length` tokens and weights of `seed`.
pub fn tiny_model_of(dir: &Path, context_length: usize, seed: u64) -> std::path::PathBuf {
    use moa::model::random;
    let config = moa::model::LlamaConfig {
        name: None,
        n_layers: 2,
        hidden_size: 64,
        ffn_size: 96,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab_size: 300,
        context_length,
        rope_scaling: None,
        ..random::like("smollm2-135m").unwrap()
    };
    random::write_hf_folder(&random::random_model(&config, seed), dir).unwrap();
    dir.to_path_buf()
}

/// Defines the invoking file's `tag()`, `scratch(name)`, `run(bin, args)` and
/// `refused(bin, args, needles)`: [`scratch`], [`run`] and [`refused`] under the tag of the
/// file that invokes it, its name without `.rs` (`file!()` in a macro names the file of the
/// first invocation). The grouped files share one process, so each one's scratch folders
/// and model cache must carry its own name (tests/group.rs); before, every file wrapped the
/// three itself with the name written out, one more place to get it wrong. Invoke it at
/// the top level of a file that declares `mod common;`: `common::cli::tagged!();`.
#[allow(unused_macros)]
macro_rules! tagged {
    () => {
        /// This file's name without `.rs`: the tag of its scratch folders and model cache.
        #[allow(dead_code)]
        fn tag() -> &'static str {
            let file = file!();
            let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
            name.strip_suffix(".rs").unwrap_or(name)
        }

        /// [`common::cli::scratch`] under this file's tag.
        #[allow(dead_code)]
        fn scratch(name: &str) -> std::path::PathBuf {
            common::cli::scratch(tag(), name)
        }

        /// [`common::cli::run`] with this file's own model cache.
        #[allow(dead_code)]
        fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
            common::cli::run(tag(), bin, args)
        }

        /// [`common::cli::refused`] with this file's own model cache.
        #[allow(dead_code)]
        fn refused(bin: &str, args: &[&str], needles: &[&str]) -> String {
            common::cli::refused(tag(), bin, args, needles)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use tagged;
