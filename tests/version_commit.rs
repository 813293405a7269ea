//! `moa_version` (every manifest, `--version`) names the moa commit, so that an app that
//! commits `moa-compile` output can tell which moa wrote it (docs/EMBEDDING.md, "The
//! output folder"): `0.1.0+git.<commit>[.modified]`, or `0.1.0+no-git` for a build that
//! knew no commit. The rules of `build.rs` run here on throw-away folders: two clones of
//! one commit at different paths give the same string, an edit marks it `.modified`, a
//! folder inside another repository does not take that repository's commit, and cargo's
//! `.cargo_vcs_info.json` names the commit of a packaged crate. Needs `git` (skipped
//! without it); a second or so.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build script's functions (its `main` unused here).
#[allow(dead_code)]
mod build_script {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs"));
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("version-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=moa", "-c", "user.email=moa@example.org"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn well_formed(v: &str) -> bool {
    let Some(rest) = v.strip_prefix(concat!(env!("CARGO_PKG_VERSION"), "+")) else {
        return false;
    };
    if rest == "no-git" {
        return true;
    }
    let Some(rest) = rest.strip_prefix("git.") else {
        return false;
    };
    let (sha, tail) = rest.split_at(rest.len().min(40));
    sha.len() == 40
        && sha.bytes().all(|b| b.is_ascii_hexdigit())
        && (tail.is_empty() || tail == ".modified")
}

#[test]
fn version_and_manifest_name_the_commit_moa_was_built_from() {
    let v = moa::codegen::emit::MOA_VERSION;
    assert!(well_formed(v), "{v}");
    for bin in [env!("CARGO_BIN_EXE_moa"), env!("CARGO_BIN_EXE_moa-compile")] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.trim().ends_with(&format!(" {v}")),
            "{text}"
        );
    }
    let plan = moa::Plan::load(&root().join("plans/fixture-gqa.toml")).unwrap();
    let c = moa::compile(&plan, &[moa::Target::Wgsl], moa::StorageType::F32).unwrap();
    let m: serde_json::Value = serde_json::from_str(&c.manifest_json()).unwrap();
    assert_eq!(m["moa_version"], v);
    // In a git checkout, the commit is HEAD's: cargo reran build.rs when HEAD moved.
    let top = git(root(), &["rev-parse", "--show-toplevel"]);
    if top.as_deref().map(|t| Path::new(t).canonicalize().ok()) == Some(root().canonicalize().ok())
    {
        let head = git(root(), &["rev-parse", "HEAD"]).unwrap();
        assert!(
            v.contains(&format!("+git.{head}")),
            "{v} is not HEAD {head}"
        );
    }
}

#[test]
fn build_script_gives_one_string_per_commit_whatever_the_path() {
    let Some(_) = git(root(), &["--version"]) else {
        eprintln!("no git on PATH: skipped");
        return;
    };
    let base = tmp("clones");
    let a = base.join("first");
    std::fs::create_dir_all(a.join("src")).unwrap();
    std::fs::write(a.join("src/lib.rs"), "// one\n").unwrap();
    std::fs::write(a.join("README.md"), "not tracked by the rule\n").unwrap();
    git(&a, &["init", "-q"]).unwrap();
    git(&a, &["add", "."]).unwrap();
    git(&a, &["commit", "-q", "-m", "one"]).unwrap();
    let sha = git(&a, &["rev-parse", "HEAD"]).unwrap();
    let b = base.join("another path with spaces");
    git(
        &base,
        &["clone", "-q", a.to_str().unwrap(), b.to_str().unwrap()],
    )
    .unwrap();
    let clean = format!("+git.{sha}");
    assert_eq!(build_script::from_checkout(&a), clean);
    assert_eq!(build_script::from_checkout(&b), clean);
    // A file outside what enters the binary does not count; src does.
    std::fs::write(b.join("README.md"), "edited\n").unwrap();
    assert_eq!(build_script::from_checkout(&b), clean);
    std::fs::write(b.join("src/lib.rs"), "// two\n").unwrap();
    assert_eq!(build_script::from_checkout(&b), format!("{clean}.modified"));

    // A crate folder inside another repository (a tarball unpacked in a project) knows
    // no commit, unless cargo's packaging recorded one.
    let inner = a.join("vendor/moa");
    std::fs::create_dir_all(&inner).unwrap();
    assert_eq!(build_script::from_checkout(&inner), "+no-git");
    let packaged = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(
        inner.join(".cargo_vcs_info.json"),
        format!(
            "{{\n  \"git\": {{\n    \"sha1\": \"{packaged}\"\n  }},\n  \"path_in_vcs\": \"\"\n}}\n"
        ),
    )
    .unwrap();
    assert_eq!(
        build_script::from_checkout(&inner),
        format!("+git.{packaged}")
    );
    // Outside any repository.
    let lone = std::env::temp_dir().join(format!("moa-version-lone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&lone);
    std::fs::create_dir_all(&lone).unwrap();
    if git(&lone, &["rev-parse", "--show-toplevel"]).is_none() {
        assert_eq!(build_script::from_checkout(&lone), "+no-git");
    }
    let _ = std::fs::remove_dir_all(&lone);
}

/// A committed kernel folder after moa moved to another commit with no kernel change:
/// `--check` still fails (the manifest records the moa that wrote it), but says that only
/// `moa_version` differs and which moa wrote it, instead of "differs at line 3".
#[test]
fn check_says_when_only_the_moa_commit_differs() {
    let dir = tmp("check-commit");
    let plan = root().join("plans/fixture-gqa.toml");
    let out = dir.join("out");
    let args = [
        plan.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--target",
        "wgsl",
        "--dtype",
        "f32",
    ];
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
            .args(args)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    assert_eq!(run(&[]).0, Some(0));
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let v = moa::codegen::emit::MOA_VERSION;
    let older = "0.1.0+git.0123456789abcdef0123456789abcdef01234567";
    std::fs::write(&manifest, text.replace(v, older)).unwrap();
    let (code, err) = run(&["--check"]);
    assert_eq!(code, Some(1), "{err}");
    for want in [
        "differs only in moa_version",
        &format!("written by moa {older}, this is moa {v}"),
    ] {
        assert!(err.contains(want), "`{want}` not in:\n{err}");
    }
    // Anything else that differs is a plain difference.
    std::fs::write(
        &manifest,
        text.replace(v, older)
            .replacen("\"sink_tokens\": 16", "\"sink_tokens\": 17", 1),
    )
    .unwrap();
    let (code, err) = run(&["--check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("differs: ") && !err.contains("only in moa_version"),
        "{err}"
    );
}

/// Manifest version 4 only added `abi.prepass`: a folder that moa-compile wrote at version
/// 3 (before session 18) still loads (`moa generate --kernels`, `Compiled::read`), while
/// version 2 (no sha256) and a newer one are refused naming the versions read.
#[test]
fn a_version_3_folder_still_loads() {
    use moa::codegen::{Compiled, Target};
    let dir = tmp("manifest-v3");
    let plan = moa::Plan::load(&root().join("plans/fixture-gqa.toml")).unwrap();
    let c = moa::compile(&plan, &[Target::Wgsl], moa::StorageType::F32).unwrap();
    c.write(&dir).unwrap();
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let with = |v: u32| {
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        m["manifest_version"] = serde_json::json!(v);
        std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        Compiled::read(&dir, &plan, moa::StorageType::F32, Target::Wgsl)
    };
    assert!(with(3).is_ok());
    assert!(with(4).is_ok());
    for v in [2, 5] {
        let e = with(v).err().unwrap().to_string();
        assert!(
            e.contains(&format!("manifest_version {v}")) && e.contains("3..=4"),
            "{e}"
        );
    }
}

/// The CUDA executors take the bf16 prefill's V pre-pass from the manifest's
/// `abi.prepass` (version 4) and, for a version-3 folder, which lists none, from the
/// source as before (session 19: they searched the source always). Both give the same
/// kernels and grids, in the `u` form (the default) and the `v` form; a listing that is
/// not the pre-pass moa launches is refused naming the file, the kernel and the field.
/// CPU only: what `VPrepass::load` would look up, without a GPU.
#[test]
fn the_cuda_prefill_prepass_comes_from_the_manifest_and_from_a_version_3_source() {
    use moa::codegen::abi::Grid;
    use moa::codegen::cuda::{prefill_name, PrefillTuning};
    use moa::codegen::{CompileOptions, Compiled, Target};
    use moa::runtime::cuda::{prepass_of, V_PREPASS_BLOCKS};
    let plan = moa::Plan::load(&root().join("plans/fixture-gqa.toml")).unwrap();
    let storage = moa::StorageType::Bf16;
    let d = plan.model().head_dim;
    let name = prefill_name(storage, d, 0);
    // The default compile (`u` form), through a folder at versions 4 and 3.
    let dir = tmp("prepass-folder");
    let c = moa::compile(&plan, &[Target::Cuda], storage).unwrap();
    c.write(&dir).unwrap();
    let prefill_file = |c: &Compiled| {
        c.artifacts(Target::Cuda)
            .iter()
            .find(|a| a.kernels.iter().any(|k| k.entry_point == name))
            .unwrap()
            .clone()
    };
    let v4 = Compiled::read(&dir, &plan, storage, Target::Cuda).unwrap();
    let listed = prefill_file(&v4)
        .kernels
        .iter()
        .find(|k| k.entry_point == name)
        .unwrap()
        .abi
        .prepass
        .clone();
    let from_v4 = prepass_of(&prefill_file(&v4), &name).unwrap().unwrap();
    assert_eq!(Some(&from_v4), listed.as_ref());
    assert_eq!(
        from_v4.launches[0].abi.grid,
        Grid::StridedTokenGroups {
            tokens: 64,
            blocks: V_PREPASS_BLOCKS
        }
    );
    assert!(from_v4.launches[0].entry_point.ends_with("_vcvt"));
    // Version 3: the same folder with no `abi.prepass` anywhere.
    let path = dir.join("manifest.json");
    let v4_text = std::fs::read_to_string(&path).unwrap();
    let rewrite = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut m: serde_json::Value = serde_json::from_str(&v4_text).unwrap();
        for f in m["files"].as_array_mut().unwrap() {
            for k in f["kernels"].as_array_mut().unwrap() {
                if k["entry_point"] == serde_json::json!(name) {
                    edit(&mut k["abi"]);
                }
            }
        }
        m
    };
    let mut v3 = rewrite(&|abi| {
        abi.as_object_mut().unwrap().remove("prepass");
    });
    v3["manifest_version"] = serde_json::json!(3);
    std::fs::write(&path, serde_json::to_string_pretty(&v3).unwrap()).unwrap();
    let old = Compiled::read(&dir, &plan, storage, Target::Cuda).unwrap();
    assert!(prefill_file(&old)
        .kernels
        .iter()
        .all(|k| k.abi.prepass.is_none()));
    assert_eq!(
        prepass_of(&prefill_file(&old), &name).unwrap().unwrap(),
        from_v4
    );
    // A listing with another block count is taken as it is (the grid is the manifest's).
    let fewer = rewrite(&|abi| {
        for l in abi["prepass"]["launches"].as_array_mut().unwrap() {
            l["abi"]["grid"]["blocks"] = serde_json::json!(256);
        }
    });
    std::fs::write(&path, serde_json::to_string_pretty(&fewer).unwrap()).unwrap();
    let read = Compiled::read(&dir, &plan, storage, Target::Cuda).unwrap();
    let p = prepass_of(&prefill_file(&read), &name).unwrap().unwrap();
    assert_eq!(
        p.launches[1].abi.grid,
        Grid::StridedTokenGroups {
            tokens: 64,
            blocks: 256
        }
    );
    // Launches in the wrong order are refused, naming the file, kernel and field.
    let swapped = rewrite(&|abi| {
        abi["prepass"]["launches"].as_array_mut().unwrap().reverse();
    });
    std::fs::write(&path, serde_json::to_string_pretty(&swapped).unwrap()).unwrap();
    let read = Compiled::read(&dir, &plan, storage, Target::Cuda).unwrap();
    let file = prefill_file(&read);
    let e = prepass_of(&file, &name).unwrap_err().to_string();
    for want in [file.path.as_str(), name.as_str(), "abi.prepass.launches[0]"] {
        assert!(e.contains(want), "no `{want}` in: {e}");
    }
    // The `v` form (`_vmax`, `_vf16` on token groups), listed and from the source.
    let tuning = PrefillTuning {
        v_unit: false,
        ..PrefillTuning::default_for(storage, d)
    };
    let options = CompileOptions {
        cuda_prefill: tuning,
        ..CompileOptions::default()
    };
    let module = moa::lower::lower(&plan, storage);
    let v = Compiled::from_module(module, &[Target::Cuda], options).unwrap();
    let mut file = prefill_file(&v);
    let listed = prepass_of(&file, &name).unwrap().unwrap();
    assert_eq!(
        listed.launches[0].abi.grid,
        Grid::TokenGroups { tokens: 64 }
    );
    assert!(listed.launches[1].entry_point.ends_with("_vf16"));
    for k in &mut file.kernels {
        k.abi.prepass = None;
    }
    assert_eq!(prepass_of(&file, &name).unwrap().unwrap(), listed);
    // A decode kernel takes no pre-pass.
    let decode = moa::codegen::cuda::decode_name(storage, d, 0);
    let dfile = c
        .artifacts(Target::Cuda)
        .iter()
        .find(|a| a.kernels.iter().any(|k| k.entry_point == decode))
        .unwrap();
    assert!(prepass_of(dfile, &decode).unwrap().is_none());
}
