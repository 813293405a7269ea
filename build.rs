// Build script: records which moa commit is built, as `MOA_VERSION` (read by
// `codegen::emit::MOA_VERSION`: every manifest's `moa_version`, and `--version`), because
// the crate's version (0.1.0) is the same in every commit while generated kernels change
// between commits (docs/EMBEDDING.md, "The output folder").
//
// - `MOA_BUILD_COMMIT` (40 hex digits) set at build time: that commit (a packager who
//   builds from a tarball and knows its commit).
// - Else a git checkout with `git` on PATH: `git rev-parse HEAD`, plus `.modified` when
//   tracked files that enter the binary (src, templates, shaders, build.rs, Cargo.toml,
//   Cargo.lock) differ from that commit.
// - Else a crate unpacked by cargo (`cargo package` / crates.io): the commit in its
//   `.cargo_vcs_info.json`.
// - Else: `+no-git` (built from a tarball, commit unknown).
//
// Nothing here depends on the checkout's path, so two clones of one commit write the
// same bytes. The script reruns only when HEAD, the branch it names or those files move.

use std::path::Path;
use std::process::Command;

/// What enters the binary, hence what makes a checkout `.modified`.
const TRACKED: &[&str] = &[
    "src",
    "templates",
    "shaders",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
];

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn main() {
    println!("cargo:rerun-if-env-changed=MOA_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let suffix = match std::env::var("MOA_BUILD_COMMIT") {
        Ok(c) if is_commit(c.trim()) => format!("+git.{}", c.trim().to_ascii_lowercase()),
        Ok(c) => {
            // A build script cannot fail with a sentence of its own; say it and go on.
            println!("cargo:warning=MOA_BUILD_COMMIT={c:?} is not a 40-hex-digit commit; ignored");
            from_checkout(&root)
        }
        Err(_) => from_checkout(&root),
    };
    println!("cargo:rustc-env=MOA_VERSION={version}{suffix}");
}

/// `+git.<commit>[.modified]` from the checkout at `root`, else from cargo's
/// `.cargo_vcs_info.json`, else `+no-git`.
pub fn from_checkout(root: &Path) -> String {
    // Only a checkout whose top is this crate's folder: a tarball unpacked inside some
    // other repository must not take that repository's commit.
    let top = git(root, &["rev-parse", "--show-toplevel"]);
    let ours = top
        .as_deref()
        .map(Path::new)
        .and_then(|t| t.canonicalize().ok())
        == root.canonicalize().ok();
    if let (true, Some(head)) = (ours, git(root, &["rev-parse", "HEAD"])) {
        if is_commit(&head) {
            rerun_on_head_moves(root);
            for t in TRACKED {
                if root.join(t).exists() {
                    println!("cargo:rerun-if-changed={t}");
                }
            }
            let mut args = vec![
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
            ];
            args.extend_from_slice(TRACKED);
            let modified = git(root, &args).is_none_or(|s| !s.is_empty());
            return format!("+git.{head}{}", if modified { ".modified" } else { "" });
        }
    }
    let vcs = root.join(".cargo_vcs_info.json");
    println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    if let Some(sha) = std::fs::read_to_string(&vcs)
        .ok()
        .and_then(|t| vcs_sha1(&t))
    {
        return format!("+git.{sha}");
    }
    "+no-git".to_string()
}

/// The `"sha1": "<40 hex>"` of a `.cargo_vcs_info.json` (no JSON parser in a build script).
fn vcs_sha1(text: &str) -> Option<String> {
    let at = text.find("\"sha1\"")?;
    let rest = &text[at + 6..];
    let start = rest.find('"')? + 1;
    let sha = rest.get(start..start + 40)?;
    is_commit(sha).then(|| sha.to_ascii_lowercase())
}

/// Reruns the script when HEAD moves: the `HEAD` file (a checkout of another branch or
/// commit), the branch's ref file and `packed-refs` (a commit on the branch). Paths that do
/// not exist are not named (cargo would rerun the script on every build).
fn rerun_on_head_moves(root: &Path) {
    let abs = |p: String| {
        let p = Path::new(&p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        }
    };
    let mut files = Vec::new();
    if let Some(dir) = git(root, &["rev-parse", "--git-dir"]) {
        files.push(abs(dir).join("HEAD"));
    }
    if let Some(common) = git(root, &["rev-parse", "--git-common-dir"]) {
        let common = abs(common);
        if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
            files.push(common.join(branch));
        }
        files.push(common.join("packed-refs"));
    }
    for f in files.into_iter().filter(|f| f.exists()) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
}
