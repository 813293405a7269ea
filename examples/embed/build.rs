//! Compiles the plan into WGSL kernels at build time, through the library entry
//! `moa::codegen::compile`, and writes them where `src/lib.rs` embeds them from: the
//! app carries no plan file and runs no compiler.

use std::path::PathBuf;

use moa::{Plan, StorageType, Target};

/// The plan, relative to this crate: the repository's small GQA fixture (3 layers, 8 query
/// heads over 2 KV heads, head_dim 64), whose heads have different spans.
const PLAN: &str = "../../plans/fixture-gqa.toml";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let plan_path = manifest_dir.join(PLAN);
    println!("cargo::rerun-if-changed={}", plan_path.display());
    let plan = Plan::load(&plan_path)?;
    // f32 storage: every adapter runs it (f16 needs SHADER_F16).
    let compiled = moa::compile(&plan, &[Target::Wgsl], StorageType::F32)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // `kernels.rs`, `manifest.json` and the sources, as `moa-compile` writes them.
    compiled.write(&out.join("kernels"))?;
    // The plan as TOML text: parsed (and validated) at run time, never read from a file.
    moa::codegen::emit::write_if_different(&out.join("plan.toml"), &plan.to_toml())?;
    Ok(())
}
