//! Snapshot suite: the lowered IR, the generated WGSL and CUDA, and the manifest of the
//! two fixture plans (one MHA in f32, one GQA in f16). Review changes with
//! `cargo insta review`; never edit a `.snap` by hand. A snapshot is never the only
//! check: WGSL is validated by naga inside `codegen::compile`, CUDA is compiled by
//! NVRTC in `tests/cuda_nvrtc.rs`, and numbers are checked in the kernel tests.

use std::path::Path;

use moa::codegen::{self, Target};
use moa::lower::StorageType;
use moa::plan::Plan;

const FIXTURES: &[(&str, StorageType)] = &[
    ("fixture-mha", StorageType::F32),
    ("fixture-gqa", StorageType::F16),
];

fn snapshot(folder: &str, name: &str, contents: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/out")
            .join(folder),
    );
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name.to_string(), contents));
}

#[test]
fn fixtures() {
    let only = std::env::var("MOA_SNAPSHOT").unwrap_or_default();
    for &(name, storage) in FIXTURES {
        if !name.contains(&only) {
            continue;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plans/{name}.toml"));
        let plan = Plan::load(&path).unwrap();
        let compiled = codegen::compile(&plan, &[Target::Wgsl, Target::Cuda], storage)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        snapshot(
            "ir",
            name,
            &serde_json::to_string_pretty(&compiled.module().layers).unwrap(),
        );
        for target in [Target::Wgsl, Target::Cuda] {
            let arts = compiled.artifacts(target);
            assert!(
                !arts.is_empty(),
                "{name}: no {} kernels generated",
                target.name()
            );
            for a in arts {
                let file = a.path.replace(['/', '.'], "_");
                snapshot(target.name(), &format!("{name}__{file}"), &a.source);
            }
        }
        snapshot("manifest", name, &without_commit(&compiled.manifest_json()));
    }
}

/// The manifest with its `moa_version` (`0.1.0+git.<commit>`, which changes with every
/// commit) replaced by `[moa_version]`: the snapshot is of what the kernels depend on.
fn without_commit(manifest: &str) -> String {
    let key = format!("\"moa_version\": {:?}", codegen::emit::MOA_VERSION);
    assert!(manifest.contains(&key), "no {key} in the manifest");
    manifest.replacen(&key, "\"moa_version\": \"[moa_version]\"", 1)
}

/// The bf16 CUDA prefill's pre-pass as the manifest lists it (`abi.prepass`: the buffers
/// to zero, then each kernel's symbol, arguments, block and grid rule), for every layer of
/// both fixture plans: what an app launches before each prefill (docs/EMBEDDING.md).
#[test]
fn bf16_prefill_prepass_in_the_manifest() {
    for &(name, _) in FIXTURES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plans/{name}.toml"));
        let plan = Plan::load(&path).unwrap();
        let compiled = codegen::compile(&plan, &[Target::Cuda], StorageType::Bf16).unwrap();
        let m: serde_json::Value = serde_json::from_str(&compiled.manifest_json()).unwrap();
        let prepass: Vec<serde_json::Value> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["kernels"].as_array().unwrap().iter())
            .filter(|k| k["phase"] == "prefill")
            .map(
                |k| serde_json::json!({"kernel": k["entry_point"], "prepass": k["abi"]["prepass"]}),
            )
            .collect();
        snapshot(
            "manifest",
            &format!("{name}-bf16-prepass"),
            &serde_json::to_string_pretty(&prepass).unwrap(),
        );
    }
}

/// `moa-compile` is a thin shell over the library: the folder it writes holds exactly what
/// `codegen::compile` returns (every source, `manifest.json`, `kernels.rs`), so an app's
/// `build.rs` calling the library embeds the same kernels as a command-line compile.
#[test]
fn moa_compile_writes_what_the_library_compiles() {
    for &(name, storage) in FIXTURES {
        let plan_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plans/{name}.toml"));
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("compile-cli-{name}"));
        let _ = std::fs::remove_dir_all(&out);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_moa-compile"))
            .arg(&plan_path)
            .arg("-o")
            .arg(&out)
            .args(["--dtype", storage.name()])
            .status()
            .unwrap();
        assert!(status.success(), "{name}: moa-compile failed");
        let plan = Plan::load(&plan_path).unwrap();
        let compiled = codegen::compile(&plan, &[Target::Wgsl, Target::Cuda], storage).unwrap();
        let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap();
        assert_eq!(read("manifest.json"), compiled.manifest_json(), "{name}");
        assert_eq!(read("kernels.rs"), compiled.embed_rs(), "{name}");
        let mut files = 0;
        for (_, arts) in compiled.all_artifacts() {
            for a in arts {
                assert_eq!(read(&a.path), a.source, "{name}: {}", a.path);
                files += 1;
            }
        }
        // Nothing else was written: the sources, the manifest and kernels.rs.
        let written: usize = ["wgsl", "cuda"]
            .iter()
            .map(|d| std::fs::read_dir(out.join(d)).unwrap().count())
            .sum();
        assert_eq!(written, files, "{name}");
    }
}

/// What an app embeds (the manifest text and the sources by path) gives back the same
/// kernels without generating anything, and only for the plan they were compiled for.
#[test]
fn embedded_kernels_come_back_for_their_plan_only() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let plan = Plan::load(&path).unwrap();
    let compiled = codegen::compile(&plan, &[Target::Wgsl], StorageType::F32).unwrap();
    let manifest = compiled.manifest_json();
    let sources: Vec<(&str, &str)> = compiled
        .artifacts(Target::Wgsl)
        .iter()
        .map(|a| (a.path.as_str(), a.source.as_str()))
        .collect();
    let back = codegen::Compiled::from_embedded(&plan, Target::Wgsl, &manifest, &sources).unwrap();
    assert_eq!(back.storage(), StorageType::F32);
    assert_eq!(
        back.artifacts(Target::Wgsl),
        compiled.artifacts(Target::Wgsl)
    );
    back.check_plan(&plan).unwrap();
    // Another plan (one rule changed) is refused, naming the first differing constant.
    let other = Plan::from_toml_str(
        &plan
            .to_toml()
            .replacen("alpha = [0, 0, 64", "alpha = [16, 0, 64", 1),
        "other",
    )
    .unwrap();
    assert_ne!(other, plan);
    let e = codegen::Compiled::from_embedded(&other, Target::Wgsl, &manifest, &sources)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cache_layout.layers[0]"), "{e}");
    let e = compiled.check_plan(&other).err().unwrap().to_string();
    assert!(e.contains("another plan") && e.contains("layers[0]"), "{e}");
    // A source missing from what was embedded is named.
    let e = codegen::Compiled::from_embedded(&plan, Target::Wgsl, &manifest, &sources[1..])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(sources[0].0), "{e}");
    // No target is an error, not an empty result.
    assert!(codegen::compile(&plan, &[], StorageType::F32).is_err());
}
