//! A new user's journey, round 27 (benches/RESULTS.md): `moa-compile` output folders as a
//! user meets them (a manifest removed by hand, a check while a compile writes, a file
//! where a kernel folder goes); what it found wrong, each pinned here. None of these needs
//! the fetched model or a GPU.

mod common;

use common::cli::s;

common::cli::tagged!();

/// The fixture plan and a compile of it into `dir/out` (WGSL only: fast).
fn compiled(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let out = dir.join("out");
    let (code, _, err) = run(
        "moa-compile",
        &[s(&plan), "-o", s(&out), "--target", "wgsl"],
    );
    assert_eq!(code, 0, "{err}");
    (plan, out)
}

/// Round 27 (after session 41 made an unlisted file of moa's name a user's unless a
/// stopped compile's marker stands beside it): removing `manifest.json` by hand made the
/// folder a dead end, every file moa wrote "not written by moa-compile" and no way out
/// named. A file holding exactly this compile's output, or listed by moa's `kernels.rs`,
/// is moa's; with neither, the refusal says the folder has no manifest and how to recover.
#[test]
fn a_folder_whose_manifest_was_removed_is_not_a_dead_end() {
    let dir = scratch("no-manifest");
    let (plan, out) = compiled(&dir);
    let wgsl = ["--target", "wgsl"];
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    // `--check` lists the missing manifest (exit 1), the same plan's compile restores it.
    let (code, _, err) = run(
        "moa-compile",
        &[&[s(&plan), "-o", s(&out), "--check"][..], &wgsl].concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("missing: ") && err.contains("manifest.json"),
        "{err}"
    );
    assert!(!err.contains("did not write"), "{err}");
    let (code, _, err) = run(
        "moa-compile",
        &[&[s(&plan), "-o", s(&out)][..], &wgsl].concat(),
    );
    assert_eq!(code, 0, "{err}");
    // Another plan: the files differ, but moa's kernels.rs lists them.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        common::cli::fixture_gqa().replace("alpha = [32, 32, 32, 32", "alpha = [16, 32, 32, 32"),
    )
    .unwrap();
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let (code, _, err) = run(
        "moa-compile",
        &[&[s(&other), "-o", s(&out)][..], &wgsl].concat(),
    );
    assert_eq!(code, 0, "{err}");
    // Neither manifest nor kernels.rs, another plan: refused, the way out named.
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    std::fs::remove_file(out.join("kernels.rs")).unwrap();
    let err = refused(
        "moa-compile",
        &[&[s(&plan), "-o", s(&out)][..], &wgsl].concat(),
        &[
            "holds kernel files moa-compile did not write",
            "holds no manifest.json: if these files are an earlier compile's whose manifest was removed, remove",
        ],
    );
    assert!(out.join("wgsl/l00_decode.wgsl").exists(), "{err}");
}

/// `--check` while a compile writes the folder compared half of it and called it a
/// stopped compile; it now waits for the writer, as the loaders do.
#[test]
fn check_waits_for_a_compile_writing_the_folder() {
    let dir = scratch("check-waits");
    let (plan, out) = compiled(&dir);
    let held = std::fs::File::open(&out).unwrap();
    held.lock().unwrap();
    let err_path = dir.join("stderr.txt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .args([s(&plan), "-o", s(&out), "--target", "wgsl", "--check"])
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&err_path)
        .unwrap()
        .contains("is being written by another process")
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "--check ended while a writer held the folder:\n{}",
            std::fs::read_to_string(&err_path).unwrap()
        );
        assert!(t0.elapsed().as_secs() < 120, "--check never said it waits");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    drop(held);
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("matches"), "{err}");
}

/// A file named `cuda` where moa-compile makes its CUDA folder was found only at the first
/// write, after the whole generation, leaving the WGSL files and the stopped-compile marker
/// in the user's folder. It is refused before anything is written.
#[test]
fn a_file_named_like_a_kernel_folder_is_refused_before_writing() {
    let dir = scratch("cuda-file");
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let out = dir.join("proj");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("cuda"), "hi\n").unwrap();
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&out)],
        &["cuda` is a file, not a folder", "nothing was written"],
    );
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cuda"], "the refused compile wrote into the folder");
}

/// A plan renamed (same shape) compiled into its old folder read "another plan (`gen`: 3
/// layers, …)" with the new plan's own shape and nothing showing what changed: the note
/// now says the field.
#[test]
fn a_renamed_plan_says_what_differs() {
    let dir = scratch("renamed");
    let (_, out) = compiled(&dir);
    let renamed = dir.join("renamed.toml");
    std::fs::write(
        &renamed,
        common::cli::fixture_gqa().replace("name = \"fixture-gqa\"", "name = \"renamed\""),
    )
    .unwrap();
    let (code, _, err) = run(
        "moa-compile",
        &[s(&renamed), "-o", s(&out), "--target", "wgsl"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("head_dim 64; it differs in `name` \"fixture-gqa\" -> \"renamed\")"),
        "{err}"
    );
}

/// `moa plan show - --max-batch` said "cannot read plan `-`" while the README says `plan
/// show` reads `-` and pipes: the plan TOML now comes from standard input there too.
#[test]
fn max_batch_reads_the_plan_from_standard_input() {
    use std::io::Write;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smollm2-135m-moa-50.toml"),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["plan", "show", "-", "--max-batch", "--prompt-len", "100"])
        .args(["--memory", "1", "--like", "smollm2-135m"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("\nstdin ") && stdout.contains("rows with the plan"),
        "{stdout}"
    );
}

/// `plan show`'s sink note counted only the spans below N ("3 of 24 … are at most the
/// sink" where all 24 were) without saying why: it now says "below N" and how many span N
/// (those keep every token, whatever the sink).
#[test]
fn the_sink_note_says_which_spans_it_counts() {
    let dir = scratch("sink-note");
    let plan = dir.join("s64.toml");
    std::fs::write(
        &plan,
        common::cli::fixture_gqa().replace("sink_tokens = 16", "sink_tokens = 64"),
    )
    .unwrap();
    let (code, out, err) = run("moa", &["plan", "show", s(&plan), "--prompt-len", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "of 24 query-head spans at N = 37 are at most the sink (64 tokens) and below N ("
        ) && out.contains(" span N or more: those keep every token)"),
        "{out}"
    );
}

/// `--check` of a folder against a plan of many layers printed every file (4 084 "would be
/// removed" lines for a 1024-layer folder): at most 40 lines of each kind now, then a count,
/// and the totals still count every file.
#[test]
fn check_lists_at_most_forty_files_of_a_kind() {
    let dir = scratch("check-cap");
    let layers = (0..20)
        .map(|_| "[[layers]]\nalpha = [0, 0]\nbeta = [1.0, 1.0]\n")
        .collect::<String>();
    let plan = dir.join("deep.toml");
    std::fs::write(
        &plan,
        format!(
            "format_version = 1\n\n[model]\nname = \"deep\"\nlayers = 20\nq_heads = 2\nkv_heads = 1\nhead_dim = 16\nmax_context_tokens = 1024\n\n[span]\nmax_new_tokens = 64\n\n{layers}"
        ),
    )
    .unwrap();
    let out = dir.join("empty");
    std::fs::create_dir_all(&out).unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "--check"]);
    assert_eq!(code, 1, "{err}");
    let listed = err.lines().filter(|l| l.starts_with("  missing: ")).count();
    assert_eq!(listed, 40, "{err}");
    // 20 layers × (WGSL prefill, WGSL decode, CUDA), the decode merge, manifest, kernels.rs.
    let files = 20 * 3 + 1 + 2;
    assert!(
        err.contains(&format!("… and {} more of the kind `missing`", files - 40))
            && err.contains(&format!(
                "({files} missing, at most 40 of a kind listed above; the compile writes {files} files)"
            )),
        "{err}"
    );
}
