//! CI that commits a plan's generated kernels and snapshot-tests them: `moa-compile` must
//! write the same bytes wherever and from whatever working directory it runs, and
//! `moa-compile --check` must say, without writing anything, whether a committed folder is
//! exactly what the plan compiles to, naming each file that is not (exit 1), so that CI
//! fails on a stale or hand-edited kernel. Runs the binary; no GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("compile-check-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `moa-compile args` run in `cwd`: (exit code, stderr).
fn compile(cwd: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir`, relative path → bytes, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_same_plan_compiles_to_the_same_bytes_from_any_folder() {
    let dir = scratch("same");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    // The plan at an absolute path from one folder, a copy by a relative path from another.
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(&plan, b.join("p.toml")).unwrap();
    let (code, err) = compile(&a, &[plan.to_str().unwrap(), "-o", "out"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = compile(&b, &["p.toml", "-o", "nested/out"]);
    assert_eq!(code, 0, "{err}");
    let (ta, tb) = (tree(&a.join("out")), tree(&b.join("nested/out")));
    assert!(
        ta.len() > 4,
        "{:?}",
        ta.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb));
    for ((name, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "{name} differs between the two compiles");
    }
}

#[test]
fn check_names_each_differing_missing_or_extra_file_and_writes_nothing() {
    let dir = scratch("check");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    // A folder that does not exist is not created, and is said in one line (it listed
    // every file of the compile as missing, 123 lines for SmolLM2's plan).
    let (code, err) = compile(&dir, &[p, "-o", o, "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists(), "--check created {o}");
    assert!(
        err.contains(&format!("`{o}` does not exist, so all 15 files")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, err) = compile(&dir, &[p, "-o", o, "--target", "wgsl", "--dtype", "f32"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = compile(
        &dir,
        &[p, "-o", o, "--target", "wgsl", "--dtype", "f32", "--check"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("matches"), "{err}");
    // Another --dtype than the folder's: the manifest and every source differ, and the
    // folder's own flags are named from its manifest (a CI step with the wrong flags saw
    // only every file differ).
    let (code, err) = compile(&dir, &[p, "-o", o, "--target", "wgsl", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("differs: {o}/manifest.json")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "note: {o}/manifest.json says the folder was compiled with --target wgsl --dtype f32"
        )) && err.contains("this check compiled --target wgsl --dtype f16"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "`moa-compile {p} -o {o} --target wgsl --dtype f16` rewrites it"
        )),
        "{err}"
    );
    // --target all over a wgsl folder: the CUDA files missing, manifest and kernels.rs
    // differing, counted apart, never "N of M" with N > M (it said "123 of 93 files" for
    // SmolLM2's f16 folder checked as f32).
    let (code, err) = compile(&dir, &[p, "-o", o, "--check", "--dtype", "f32"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--target all --dtype f32: give --check"),
        "{err}"
    );
    assert!(
        err.contains("(2 differ, 3 missing, listed above; the compile writes 12 files)"),
        "{err}"
    );

    // One kernel edited on its third line, one deleted, one left by a stopped compile of
    // another plan (its marker beside it: without one, a file no manifest lists is the
    // user's and refused, `user_round26`).
    let edited = out.join("wgsl/l01_decode.wgsl");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    let third = text.match_indices('\n').nth(1).unwrap().0 + 1;
    text.insert_str(third, "// hand edit\n");
    std::fs::write(&edited, &text).unwrap();
    std::fs::remove_file(out.join("wgsl/l02_prefill.wgsl")).unwrap();
    std::fs::write(out.join("wgsl/l07_decode.wgsl"), "// old plan\n").unwrap();
    std::fs::write(out.join(".moa-compile-unfinished"), "").unwrap();
    let (code, err) = compile(
        &dir,
        &[p, "-o", o, "--target", "wgsl", "--dtype", "f32", "--check"],
    );
    assert_eq!(code, 1, "{err}");
    for want in [
        format!("differs: {o}/wgsl/l01_decode.wgsl ("),
        "first difference at line 3)".to_string(),
        format!("missing: {o}/wgsl/l02_prefill.wgsl"),
        format!("not produced by this plan (a compile would remove it): {o}/wgsl/l07_decode.wgsl"),
        "(1 differ, 1 missing, 1 would be removed, listed above".to_string(),
    ] {
        assert!(err.contains(&want), "`{want}` not in:\n{err}");
    }
    // Nothing was written: the edit, the deletion and the extra file are all still there.
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), text);
    assert!(!out.join("wgsl/l02_prefill.wgsl").exists());
    assert!(out.join("wgsl/l07_decode.wgsl").exists());

    // A bad plan is an error (exit 2), not a difference.
    let (code, err) = compile(&dir, &["nope.toml", "-o", o, "--check"]);
    assert_eq!(code, 2, "{err}");
}

/// The fixture GQA plan, loaded.
fn fixture_plan() -> moa::Plan {
    moa::Plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml")).unwrap()
}

/// An app that includes `kernels.rs` in a private module and reads only `path` and
/// `source` of `KERNELS` (not `MANIFEST`, not the other fields) builds with `-D warnings`:
/// a dead-code warning there would fail the app's CI. Checked with the rustc that built
/// this test (`--emit=metadata`: the lints run, nothing is linked).
#[test]
fn kernels_rs_is_warning_free_in_a_private_module_of_an_app() {
    let dir = scratch("embed-warnings");
    let compiled =
        moa::codegen::compile(&fixture_plan(), &[moa::Target::Wgsl], moa::StorageType::F32)
            .unwrap();
    compiled.write(&dir.join("kernels")).unwrap();
    std::fs::write(
        dir.join("main.rs"),
        "mod generated {\n    include!(\"kernels/kernels.rs\");\n}\n\n\
         fn main() {\n    for k in generated::KERNELS {\n        println!(\"{} {}\", k.path, k.source.len());\n    }\n}\n",
    )
    .unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .current_dir(&dir)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "app",
        ])
        .args(["--emit=metadata", "-D", "warnings", "main.rs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder whose `manifest.json` or `kernels.rs` moa-compile did not write is refused,
/// naming the file and the ways out, and nothing in it is touched: before, the `files` of
/// an unrelated manifest were deleted and both files overwritten.
#[test]
fn an_unrelated_manifest_or_kernels_rs_is_refused_and_nothing_is_deleted() {
    let dir = scratch("unrelated");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("wgsl")).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let theirs = r#"{"name": "my app", "files": [{"path": "notes.txt"}]}"#;
    std::fs::write(out.join("manifest.json"), theirs).unwrap();
    let before = tree(&out);
    let (code, err) = compile(&dir, &[p, "-o", "out", "--target", "wgsl"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("manifest.json")
            && err.contains("not a manifest moa-compile wrote")
            && err.contains("-o")
            && err.contains("remove this file"),
        "{err}"
    );
    assert_eq!(tree(&out), before, "a refused compile changed the folder");
    // A kernels.rs of the user's, beside no manifest.
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    std::fs::write(out.join("kernels.rs"), "pub fn mine() {}\n").unwrap();
    let before = tree(&out);
    let (code, err) = compile(&dir, &[p, "-o", "out", "--target", "wgsl"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("kernels.rs") && err.contains("not written by moa-compile"),
        "{err}"
    );
    assert_eq!(tree(&out), before, "a refused compile changed the folder");
    // moa-compile's own output is still rewritten in place.
    std::fs::remove_file(out.join("kernels.rs")).unwrap();
    let (code, err) = compile(&dir, &[p, "-o", "out", "--target", "wgsl"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = compile(&dir, &[p, "-o", "out", "--target", "all"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Two compiles into one folder at once (each writing every file, the second run of a
/// pair over a folder of another dtype): temporary names are per process and every file
/// lands by rename, so the folder ends consistent, its manifest's sha256 checks pass.
#[test]
fn concurrent_compiles_into_one_folder_end_consistent() {
    let dir = scratch("concurrent");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    for round in 0..4 {
        // Start from the other dtype's output, so that both runs rewrite every file.
        let (first, second) = if round % 2 == 0 {
            ("f16", "f32")
        } else {
            ("f32", "f16")
        };
        let (code, err) = compile(
            &dir,
            &[p, "-o", "out", "--target", "wgsl", "--dtype", first],
        );
        assert_eq!(code, 0, "{err}");
        let run = || {
            Command::new(env!("CARGO_BIN_EXE_moa-compile"))
                .current_dir(&dir)
                .args([p, "-o", "out", "--target", "wgsl", "--dtype", second])
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (run(), run());
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        let storage = if second == "f16" {
            moa::StorageType::F16
        } else {
            moa::StorageType::F32
        };
        let out = dir.join("out");
        moa::codegen::emit::verify_output(&out).unwrap();
        moa::Compiled::read(&out, &fixture_plan(), storage, moa::Target::Wgsl).unwrap();
        let left: Vec<String> = tree(&out)
            .into_iter()
            .map(|f| f.0)
            .filter(|n| n.contains("moa-tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

/// Kernels of another storage type than the run's are refused naming both ways out: a
/// compile for the run's dtype, or a run in the folder's (`--f32`, or without it).
#[test]
fn a_wrong_dtype_folder_names_the_compile_and_the_run_flag() {
    let dir = scratch("dtype");
    let plan = fixture_plan();
    for (have, want) in [
        (moa::StorageType::F32, moa::StorageType::F16),
        (moa::StorageType::F16, moa::StorageType::F32),
    ] {
        let out = dir.join(have.name());
        moa::codegen::compile(&plan, &[moa::Target::Wgsl], have)
            .unwrap()
            .write(&out)
            .unwrap();
        let e = moa::Compiled::read(&out, &plan, want, moa::Target::Wgsl)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("--dtype {}", want.name())), "{e}");
        // The folder's own path in the commands (round 27: `DIR` where it was known).
        let run = if have == moa::StorageType::F32 {
            format!("moa generate --f32 --kernels {}`", out.display())
        } else {
            "without `--f32`".to_string()
        };
        assert!(e.contains(&run), "{e}");
        assert!(
            // The folder's --target kept (session 56).
            e.contains(&format!(
                "-o {} --target wgsl --dtype {}",
                out.display(),
                want.name()
            )),
            "{e}"
        );
    }
}

/// A pid that no process has: one above the kernel's `pid_max` (Linux; `None` elsewhere,
/// where a leftover's run cannot be told dead and is kept).
fn dead_pid() -> Option<u32> {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max").ok()?;
    Some(max.trim().parse::<u32>().ok()? + 1)
}

/// A killed `moa-compile` leaves `<file>.moa-tmp-<pid>-<n>` files in its output folder:
/// the next run removes those of a process that has ended, and keeps a running one's
/// (here this test's own pid stands for another live compile).
#[test]
fn a_killed_compiles_temporaries_are_removed_and_a_live_ones_kept() {
    let Some(dead) = dead_pid() else { return };
    let live = std::process::id();
    let dir = scratch("dead-temps");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let (code, err) = compile(&dir, &[p, "-o", "out"]);
    assert_eq!(code, 0, "{err}");
    let out = dir.join("out");
    let dead_top = out.join(format!("manifest.json.moa-tmp-{dead}-0"));
    let dead_wgsl = out.join(format!("wgsl/l00.wgsl.moa-tmp-{dead}-3"));
    let live_wgsl = out.join(format!("wgsl/l00.wgsl.moa-tmp-{live}-1"));
    let not_ours = out.join(format!("notes.moa-tmp-{dead}"));
    for f in [&dead_top, &dead_wgsl, &live_wgsl, &not_ours] {
        std::fs::write(f, "cut").unwrap();
    }
    // An unchanged output is not rewritten, but the leftovers still go.
    let (code, err) = compile(&dir, &[p, "-o", "out"]);
    assert_eq!(code, 0, "{err}");
    assert!(!dead_top.exists() && !dead_wgsl.exists(), "{err}");
    assert!(live_wgsl.exists() && not_ours.exists());
}

/// A killed `moa model random -o DIR` leaves `DIR.partial-<pid>`: the next write of `DIR`
/// removes a dead run's, and keeps a running one's (pid 1 always runs) and another
/// folder's.
#[test]
fn a_killed_random_models_partial_folder_is_removed_and_a_live_ones_kept() {
    let Some(dead) = dead_pid() else { return };
    let dir = scratch("dead-partials");
    let config = moa::model::LlamaConfig {
        name: Some("tiny".into()),
        n_layers: 1,
        hidden_size: 16,
        ffn_size: 32,
        q_heads: 2,
        kv_heads: 1,
        head_dim: 8,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: 32,
        tied_embeddings: true,
        context_length: 64,
    };
    let dead_partial = dir.join(format!("m.partial-{dead}"));
    let live_partial = dir.join("m.partial-1");
    let other = dir.join(format!("mm.partial-{dead}"));
    for d in [&dead_partial, &live_partial, &other] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("model.safetensors"), "cut").unwrap();
    }
    let m = moa::model::random::random_model(&config, 1);
    moa::model::random::write_hf_folder(&m, &dir.join("m")).unwrap();
    assert!(dir.join("m/config.json").is_file());
    assert!(!dead_partial.exists());
    assert!(live_partial.exists() && other.exists());
}

/// `-o` naming a file failed only at the first kernel file ("cannot write
/// `OUT/wgsl/l00_prefill.wgsl`: Not a directory"); now it is named before any work.
#[test]
fn an_output_that_is_a_file_is_named() {
    let dir = scratch("output-file");
    std::fs::write(dir.join("out"), "mine").unwrap();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let (code, err) = compile(&dir, &[plan.to_str().unwrap(), "-o", "out"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("-o `out` is not a folder: moa-compile writes a folder"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("out")).unwrap(), "mine");
}

/// `-o` at a project folder whose `wgsl/` or `cuda/` holds the user's own shaders: the
/// compile removed them as "kernel files this compile does not produce" (`2 kernel files
/// ... removed`), so `-o assets` deleted `assets/wgsl/blur.wgsl`. Now the folder is
/// refused naming them, before anything is written or deleted, by a compile and by
/// `--check` alike; moa's own leftovers (another plan's `l07_decode.wgsl`) still go.
#[test]
fn kernel_files_moa_did_not_write_are_refused_never_removed() {
    let dir = scratch("foreign");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let out = dir.join("assets");
    std::fs::create_dir_all(out.join("wgsl")).unwrap();
    std::fs::create_dir_all(out.join("cuda")).unwrap();
    std::fs::write(out.join("wgsl/blur.wgsl"), "// my shader\n").unwrap();
    std::fs::write(out.join("cuda/mine.cu"), "// my kernel\n").unwrap();
    std::fs::write(out.join("wgsl/notes.txt"), "not a kernel\n").unwrap();
    for extra in [&[][..], &["--check"][..]] {
        let mut args = vec![p, "-o", "assets"];
        args.extend_from_slice(extra);
        let (code, err) = compile(&dir, &args);
        // `--check` names the refusal with exit 1, as for a foreign manifest (round 27:
        // it failed with exit 2, "the plan does not compile", for a plan that compiles).
        let refused = if extra.is_empty() { 2 } else { 1 };
        assert_eq!(code, refused, "{args:?}: {err}");
        for want in [
            "-o `assets` holds kernel files moa-compile did not write",
            "`assets/cuda/mine.cu`, `assets/wgsl/blur.wgsl`",
            "give another output folder (-o), or move these files",
        ] {
            assert!(err.contains(want), "`{want}` not in:\n{err}");
        }
        assert!(!out.join("manifest.json").exists());
    }
    assert_eq!(
        std::fs::read_to_string(out.join("wgsl/blur.wgsl")).unwrap(),
        "// my shader\n"
    );
    assert!(out.join("cuda/mine.cu").exists());

    // Without the user's kernels the folder compiles; a file of moa's form beside a
    // stopped compile's marker is that compile's leftover.
    std::fs::remove_file(out.join("wgsl/blur.wgsl")).unwrap();
    std::fs::remove_file(out.join("cuda/mine.cu")).unwrap();
    std::fs::write(out.join("wgsl/l07_decode.wgsl"), "// another plan's\n").unwrap();
    std::fs::write(out.join(".moa-compile-unfinished"), "").unwrap();
    let (code, err) = compile(&dir, &[p, "-o", "assets"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("wgsl/l07_decode.wgsl").exists(), "{err}");
    assert!(out.join("wgsl/notes.txt").exists());
}

/// A committed kernel folder checked out on Windows with git's `core.autocrlf` has CRLF
/// line ends: `--check` said "differs ... first difference at line 1" for every file and
/// the loaders refused them by sha256, with nothing pointing at line endings. It now says
/// the file differs only in line endings and how to keep git from converting.
#[test]
fn check_says_when_a_file_differs_only_in_line_endings() {
    let dir = scratch("crlf");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let args = [p, "-o", "out", "--target", "wgsl", "--dtype", "f32"];
    let (code, err) = compile(&dir, &args);
    assert_eq!(code, 0, "{err}");
    let file = dir.join("out/wgsl/l00_prefill.wgsl");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace('\n', "\r\n")).unwrap();
    let mut check = args.to_vec();
    check.push("--check");
    let (code, err) = compile(&dir, &check);
    assert_eq!(code, 1, "{err}");
    for want in [
        "differs only in line endings (CRLF where moa-compile writes LF): out/wgsl/l00_prefill.wgsl",
        "`* -text` in a .gitattributes",
        "(1 differ, listed above",
    ] {
        assert!(err.contains(want), "`{want}` not in:\n{err}");
    }
}

/// `--wgsl-prefill-q-tile` and `--wgsl-prefill-key-pairs` write the scalar prefill the wgpu
/// engine runs on a GPU (the forms `tests/wgsl_decode_forms.rs::prefill_key_pairs_match_reference`
/// checks against the CPU reference): the folder's sources are exactly the library's for that
/// tuning, its manifest launches 128 invocations a workgroup, `--check` needs the same flags,
/// and out-of-range or CUDA-only uses are refused, naming the flag (they were missing: an
/// app embedding moa-compile's kernels got 32 queries a workgroup and one key a step).
#[test]
fn wgsl_prefill_flags_write_the_gpu_forms_and_check_needs_them() {
    use moa::codegen::{wgsl, Compiled, Phase, Target};
    use moa::lower::StorageType;
    let dir = scratch("wgsl-prefill-flags");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let p = plan.to_str().unwrap();
    let flags = ["--wgsl-prefill-q-tile", "128", "--wgsl-prefill-key-pairs"];
    let mut args = vec![p, "-o", "out", "--target", "wgsl"];
    args.extend(flags);
    let (code, err) = compile(&dir, &args);
    assert_eq!(code, 0, "{err}");

    let read = Compiled::read(
        &dir.join("out"),
        &fixture_plan(),
        StorageType::F16,
        Target::Wgsl,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tuning = wgsl::WgslTuning {
        prefill_q_tile: Some(128),
        prefill_key_pairs: Some(true),
        ..Default::default()
    };
    let lib = wgsl::generate_with(
        &moa::lower::lower(&fixture_plan(), StorageType::F16),
        tuning,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let arts = read.artifacts(Target::Wgsl);
    assert_eq!(arts.len(), lib.len());
    let mut prefills = 0;
    for (a, b) in arts.iter().zip(&lib) {
        assert_eq!(a.path, b.path);
        assert!(
            a.source == b.source,
            "{} differs from the library's",
            a.path
        );
        if a.kernels[0].phase == Phase::Prefill {
            prefills += 1;
            assert_eq!(a.kernels[0].abi.block, [128, 1, 1], "{}", a.path);
            assert_eq!(a.kernels[0].abi.tiles.keys_per_step, Some(2), "{}", a.path);
            assert!(a.source.contains("two keys a step"), "{}", a.path);
        }
    }
    assert!(prefills > 0);

    // --check with the same flags: identical; without them: the prefill files differ.
    let mut check = args.clone();
    check.push("--check");
    let (code, err) = compile(&dir, &check);
    assert_eq!(code, 0, "{err}");
    let (code, err) = compile(&dir, &[p, "-o", "out", "--target", "wgsl", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("prefill"), "{err}");

    for (bad, want) in [
        (vec!["--wgsl-prefill-q-tile", "0"], "1..=256"),
        (vec!["--wgsl-prefill-q-tile", "257"], "1..=256"),
        (
            vec!["--target", "cuda", "--wgsl-prefill-key-pairs"],
            "--wgsl-prefill-key-pairs shapes the WGSL kernels, and --target cuda writes none",
        ),
        (
            vec!["--target", "cuda", "--wgsl-prefill-q-tile", "64"],
            "--wgsl-prefill-q-tile shapes the WGSL kernels",
        ),
    ] {
        let mut a = vec![p, "-o", "bad"];
        a.extend(bad.iter().copied());
        let (code, err) = compile(&dir, &a);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains(want), "{bad:?}: {err}");
        assert!(err.contains("--wgsl-prefill"), "{bad:?}: {err}");
        assert!(!dir.join("bad").exists(), "{bad:?} wrote a folder");
    }
}
