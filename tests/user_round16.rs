//! A new user's journey, round 16 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::{Path, PathBuf};

/// [`common::cli::scratch`] under this file's tag.
fn scratch(name: &str) -> PathBuf {
    common::cli::scratch("user_round16", name)
}

/// [`common::cli::run`] with this file's own model cache.
fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    common::cli::run("user_round16", bin, args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A plan of `layers` layers, 64 query / 8 KV heads of 128 (round 15's largest plan's
/// shape): its WGSL takes ≈ 0.2 s per layer to generate and check on one core.
fn wide_plan(layers: usize) -> String {
    let mut t = format!(
        "format_version = 1\n[model]\nname = \"wide\"\nlayers = {layers}\nq_heads = 64\n\
         kv_heads = 8\nhead_dim = 128\nmax_context_tokens = 131072\n[span]\nsink_tokens = 64\n\
         min_span_tokens = 128\nblock_tokens = 64\nmode = \"moa\"\nmax_new_tokens = 1024\n"
    );
    for l in 0..layers {
        let alpha: Vec<String> = (0..64)
            .map(|h| ((l * 7 + h * 3) % 6 * 128).to_string())
            .collect();
        let beta: Vec<String> = (0..64)
            .map(|h| format!("{}", ((l * 131 + h * 17) % 4097) as f64 / 4096.0))
            .collect();
        t += &format!(
            "[[layers]]\nalpha = [{}]\nbeta = [{}]\n",
            alpha.join(", "),
            beta.join(", ")
        );
    }
    t
}

/// Runs `moa-compile args` with stderr on a pseudo-terminal (stdout discarded) and
/// returns (exit code, everything written to stderr); `None` where no pseudo-terminal
/// can be opened (a container without /dev/ptmx).
#[cfg(target_os = "linux")]
fn compile_on_a_terminal(args: &[&str]) -> Option<(i32, String)> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::process::{Command, Stdio};

    // SAFETY: plain POSIX calls on descriptors this test owns; each result is checked.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 {
            return None;
        }
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = libc::ptsname(master);
        assert!(!name.is_null());
        let name = std::ffi::CStr::from_ptr(name).to_owned();
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(slave >= 0, "cannot open the terminal's slave side");
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The child holds the only slave descriptor: once it exits, reading the master side
    // ends (Linux answers EIO).
    let mut master = master;
    let mut err = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => err.extend_from_slice(&buf[..n]),
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    Some((code, String::from_utf8_lossy(&err).into_owned()))
}

/// The files under `dir` with their bytes, by path relative to it, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `moa-compile` printed nothing while it compiled: round 15's 1024-layer plan ran 229 s
/// silently. On a terminal it now redraws one status line on stderr (the target, files
/// generated or checked of all, elapsed time, ETA) once a second has passed, and erases
/// it before its summary; into a pipe, or with `--quiet` / `-q`, it prints only the
/// summary, as before. The output folder is the same either way.
#[test]
fn compile_progress_only_on_a_terminal_and_never_with_quiet() {
    let dir = scratch("progress");
    let plan = dir.join("wide.toml");
    // 24 layers: ≈ 5 s here, so the line (drawn from 1 s on) shows on faster machines too.
    std::fs::write(&plan, wide_plan(24)).unwrap();

    // stderr into a pipe: the summary line alone.
    let piped = dir.join("piped");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&piped)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("moa-compile: 24 layers -> "), "{err}");
    assert!(!err.contains('\r') && !err.contains("elapsed"), "{err}");

    #[cfg(target_os = "linux")]
    {
        let shown = dir.join("shown");
        let Some((code, err)) = compile_on_a_terminal(&[s(&plan), "-o", s(&shown)]) else {
            eprintln!(
                "no pseudo-terminal here (posix_openpt failed): the terminal half is skipped"
            );
            return;
        };
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("\r\x1b[Kmoa-compile: wgsl ")
                && err.contains(" files generated (")
                && err.contains("/73 files")
                && err.contains(" elapsed"),
            "no progress line on the terminal:\n{err:?}"
        );
        // Erased before the summary, which is the last thing written.
        let last = err.rsplit("\r\x1b[K").next().unwrap();
        assert!(last.starts_with("moa-compile: 24 layers -> "), "{err:?}");
        assert_eq!(last.trim_end().lines().count(), 1, "{err:?}");
        assert_eq!(
            tree(&piped),
            tree(&shown),
            "the progress line changed the output"
        );

        for quiet in ["--quiet", "-q"] {
            let out = dir.join(format!("quiet{quiet}"));
            let (code, err) = compile_on_a_terminal(&[s(&plan), "-o", s(&out), quiet]).unwrap();
            assert_eq!(code, 0, "{err}");
            assert!(
                !err.contains('\x1b') && !err.contains("elapsed"),
                "{quiet}: {err:?}"
            );
            assert!(err.starts_with("moa-compile: 24 layers -> "), "{err:?}");
        }
    }
}

/// The library's `compile_with_progress` gives exactly `compile`'s kernels, and reports
/// each target's files in order: generation rising to the file count, then the limits
/// check likewise.
#[test]
fn compile_with_progress_reports_every_file_and_changes_nothing() {
    use moa::codegen::{self, CompileProgress, CompileStage, Target};
    let plan_path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let plan = moa::plan::Plan::load(Path::new(plan_path)).unwrap();
    let targets = [Target::Wgsl, Target::Cuda];
    let storage = moa::lower::StorageType::F16;
    let plain = codegen::compile(&plan, &targets, storage).unwrap();
    let mut seen: Vec<CompileProgress> = Vec::new();
    let reported =
        codegen::compile_with_progress(&plan, &targets, storage, &mut |p| seen.push(*p)).unwrap();
    assert_eq!(plain.manifest_json(), reported.manifest_json());
    assert_eq!(plain.embed_rs(), reported.embed_rs());
    for t in targets {
        let files = plain.artifacts(t).len();
        for stage in [CompileStage::Generate, CompileStage::Limits] {
            let done: Vec<usize> = seen
                .iter()
                .filter(|p| p.target == t && p.stage == stage)
                .inspect(|p| assert_eq!(p.files, files, "{p:?}"))
                .map(|p| p.files_done)
                .collect();
            assert!(
                done.windows(2).all(|w| w[0] <= w[1]),
                "{t:?} {stage:?}: {done:?}"
            );
            assert_eq!(done.last(), Some(&files), "{t:?} {stage:?}: {done:?}");
        }
    }
    // Targets in the order asked, each generated before it is checked.
    let order: Vec<(Target, CompileStage)> = seen.iter().fold(Vec::new(), |mut v, p| {
        if v.last() != Some(&(p.target, p.stage)) {
            v.push((p.target, p.stage));
        }
        v
    });
    assert_eq!(
        order,
        [
            (Target::Wgsl, CompileStage::Generate),
            (Target::Wgsl, CompileStage::Limits),
            (Target::Cuda, CompileStage::Generate),
            (Target::Cuda, CompileStage::Limits),
        ]
    );
}
