//! Snapshot suite: the lowered IR, the generated WGSL and CUDA, and the manifest of the
//! two fixture plans (one MHA in f32, one GQA in f16). Review changes with
//! `cargo insta review`; never edit a `.snap` by hand. A snapshot is never the only
//! check: WGSL is validated by naga inside `codegen::generate`, CUDA is compiled by
//! NVRTC in `tests/cuda_nvrtc.rs`, and numbers are checked in the kernel tests.

use std::path::Path;

use moa::codegen::{self, emit, Target};
use moa::lower::{lower, StorageType};
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
        let module = lower(&plan, storage);
        snapshot(
            "ir",
            name,
            &serde_json::to_string_pretty(&module.layers).unwrap(),
        );
        let mut all = Vec::new();
        for target in [Target::Wgsl, Target::Cuda] {
            let arts = codegen::generate(&module, target)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", target.name()));
            assert!(
                !arts.is_empty(),
                "{name}: no {} kernels generated",
                target.name()
            );
            for a in &arts {
                let file = a.path.replace(['/', '.'], "_");
                snapshot(target.name(), &format!("{name}__{file}"), &a.source);
            }
            all.push((target, arts));
        }
        snapshot("manifest", name, &emit::manifest_json(&module, &all));
    }
}
