//! A fresh clone passes its own tests: no code, test, script or benchmark of the repository
//! reads a path outside it (CI once kept a `shared` folder beside the checkout, a user's clone has
//! none). The check is static, so it costs nothing on CI's two cores: every path literal that
//! climbs with `..` is resolved against the folder it is relative to and must stay inside the
//! repository; shell scripts may only climb from their own folder to the repository root.

use std::path::{Component, Path, PathBuf};

/// The folder beside the checkout that CI once had and a user's clone lacks; spelled in
/// two parts so that this file does not name it itself.
const SIBLING_SHARED: &str = concat!("..", "/shared");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files the build, the tests and the scripts run: sources, tests, examples, benchmarks,
/// scripts and CI. Test data (`tests/fixtures`) and snapshots (`tests/out`) are not code.
fn code_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["src", "tests", "examples", "benches", "scripts", ".ci"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("tests/fixtures") && !p.ends_with("tests/out") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    for f in ["build.rs", "Cargo.toml"] {
        if root().join(f).exists() {
            out.push(root().join(f));
        }
    }
    out.sort();
    out
}

/// `base/rel` with `..` resolved lexically; `None` when it climbs above the file system root.
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn inside_repo(p: Option<PathBuf>) -> bool {
    p.is_some_and(|p| p.starts_with(root()))
}

/// The root of the crate `file` belongs to: the nearest folder above it with a `Cargo.toml`
/// (the repository root for moa itself, `examples/embed` for the example app). Its paths
/// that are not `include_str!`s are relative to it (`CARGO_MANIFEST_DIR`, where cargo runs
/// its tests and build script).
fn crate_root(file: &Path) -> PathBuf {
    file.ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(root()))
        .find(|d| d.join("Cargo.toml").is_file())
        .unwrap_or(root())
        .to_path_buf()
}

/// Every `"..."` literal of a Rust file that climbs with `..`, with whether it sits in an
/// `include_str!`/`include_bytes!` or a `#[path = …]` (relative to the file) or not (relative to the crate's
/// root, [`crate_root`]). Path literals
/// fit on one line, so quotes are paired line by line (a stray `'"'` cannot shift the rest).
fn rust_path_literals(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.contains("..")) {
        let quotes: Vec<usize> = line.match_indices('"').map(|(i, _)| i).collect();
        for pair in quotes.chunks_exact(2) {
            let lit = &line[pair[0] + 1..pair[1]];
            let before = &line[..pair[0]];
            let climbs = lit.starts_with("../") || lit.contains("/../") || lit.ends_with("/..");
            if climbs || (lit == ".." && before.ends_with("join(")) {
                // A `#[path = "…"]` module is relative to its file's folder too (round 44's
                // test includes an example's source that way).
                let include = before.ends_with("include_str!(")
                    || before.ends_with("include_bytes!(")
                    || before.trim_start().ends_with("#[path = ");
                out.push((lit.to_string(), include));
            }
        }
    }
    out
}

/// A file that runs: a shell, Python or Perl script, or a file without an extension under
/// `scripts/` or `.ci/` (`.ci/run`). Logs and results kept under `benches/` (a new user's
/// apt output, `ls -la`'s `..`) read nothing and are not checked for climbs.
fn is_script(file: &Path) -> bool {
    match file.extension().and_then(|e| e.to_str()) {
        Some(ext) => matches!(ext, "sh" | "bash" | "py" | "pl"),
        None => [root().join("scripts"), root().join(".ci")]
            .iter()
            .any(|d| file.starts_with(d)),
    }
}

fn violations() -> Vec<String> {
    let mut bad = Vec::new();
    let this_file = root().join("tests/self_contained.rs");
    for file in code_files() {
        if file == this_file {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // binary files
        };
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let dir = file.parent().unwrap();
        if text.contains(SIBLING_SHARED) || text.contains("/work/shared") {
            bad.push(format!("{rel}: names {SIBLING_SHARED}"));
        }
        if rel.ends_with(".rs") {
            for (lit, include) in rust_path_literals(&text) {
                let base = if include {
                    dir.to_path_buf()
                } else {
                    crate_root(&file)
                };
                if !inside_repo(resolve(&base, &lit)) {
                    bad.push(format!("{rel}: path \"{lit}\" leaves the repository"));
                }
            }
        } else if file.file_name().is_some_and(|n| n == "Cargo.toml") {
            // A nested crate's manifest may name moa by a path relative to its folder.
            for (lit, _) in rust_path_literals(&text) {
                if !inside_repo(resolve(dir, &lit)) {
                    bad.push(format!("{rel}: path \"{lit}\" leaves the repository"));
                }
            }
        } else if is_script(&file) {
            // Scripts: the only climb allowed is from the script's folder to the root.
            let allowed = "$(dirname \"$0\")/..";
            let allowed_src = "$(dirname \"${BASH_SOURCE[0]}\")/..";
            for (n, line) in text.lines().enumerate() {
                let stripped = line.replace(allowed, "").replace(allowed_src, "");
                if stripped.contains("../") || stripped.ends_with("..") {
                    bad.push(format!(
                        "{rel}:{}: climbs out of the repository: {line}",
                        n + 1
                    ));
                }
            }
            for (n, line) in text.lines().enumerate() {
                if line.contains(allowed) || line.contains(allowed_src) {
                    // `scripts/x.sh` and `.ci/run` sit one level below the root.
                    if file.parent().and_then(Path::parent) != Some(root()) {
                        bad.push(format!("{rel}:{}: climbs past the root: {line}", n + 1));
                    }
                }
            }
        }
    }
    bad
}

#[test]
fn nothing_outside_the_repository_is_read() {
    let files = code_files();
    assert!(
        files.iter().any(|f| f.ends_with("tests/plan.rs")),
        "the scan found no tests: {}",
        root().display()
    );
    let bad = violations();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_scan_catches_a_climb_out() {
    // The rule itself, on the shapes that once broke a fresh clone.
    let lits = rust_path_literals(
        r#"root.join("../outside/upstream-plans"); include_str!("../../templates/a.j2"); s.starts_with("..")"#,
    );
    assert_eq!(
        lits,
        vec![
            ("../outside/upstream-plans".to_string(), false),
            ("../../templates/a.j2".to_string(), true)
        ]
    );
    assert!(!inside_repo(resolve(root(), &lits[0].0)));
    assert!(inside_repo(resolve(
        &root().join("src/codegen"),
        &lits[1].0
    )));
    // `#[path]` on a module: relative to the file, as rustc resolves it.
    let lits = rust_path_literals(r#"#[path = "../examples/random_gguf.rs"]"#);
    assert_eq!(lits, vec![("../examples/random_gguf.rs".to_string(), true)]);
    assert!(inside_repo(resolve(&root().join("tests"), &lits[0].0)));
    assert!(!inside_repo(resolve(root(), "tests/../../x")));
    assert!(inside_repo(resolve(
        root(),
        "tests/fixtures/upstream-plans"
    )));
    // A nested crate's paths are relative to its own root.
    let nested = root().join("examples/embed");
    assert_eq!(crate_root(&nested.join("build.rs")), nested);
    assert_eq!(crate_root(&root().join("tests/plan.rs")), root());
    assert!(inside_repo(resolve(
        &nested,
        "../../plans/fixture-gqa.toml"
    )));
    assert!(!inside_repo(resolve(&nested, "../../../outside")));
}

#[test]
fn the_upstream_fixtures_carry_their_licence() {
    let dir = root().join("tests/fixtures/upstream-plans");
    let licence = std::fs::read_to_string(dir.join("LICENSE")).unwrap();
    assert!(licence.starts_with("MIT License"), "{licence}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("thu-nics/MoA"), "{readme}");
    // Other developers benchmark with these two; the tests import all five.
    for model in [
        "lmsys--vicuna-7b-v1.5-16k",
        "gradientai--Llama-3-8B-Instruct-262k",
    ] {
        for file in ["moa_alpha_beta.json", "streamingllm_alpha_beta.json"] {
            assert!(dir.join(model).join(file).is_file(), "{model}/{file}");
        }
    }
}
