//! The kernels of one MoA plan, compiled by `build.rs` and embedded in the binary, and what
//! an app needs to run them: [`plan`] and [`kernels`] give them back without a plan file or
//! a compiler at run time, and [`engine`] puts them behind moa's engine trait.

use moa::codegen::CodegenError;
use moa::plan::PlanError;
use moa::{Compiled, Engine, EngineError, Model, Plan, Target, WgpuContext, WgpuEngine};

/// What `build.rs` generated: `MANIFEST` (the manifest JSON) and `KERNELS` (every kernel
/// with its source embedded by `include_str!`).
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/kernels/kernels.rs"));
}

/// The plan's TOML text, as `build.rs` read it.
pub const PLAN_TOML: &str = include_str!(concat!(env!("OUT_DIR"), "/plan.toml"));

/// The embedded plan, parsed and validated.
pub fn plan() -> Result<Plan, PlanError> {
    Plan::from_toml_str(PLAN_TOML, "embedded plan")
}

/// The embedded kernels of `plan`, checked against it (a plan other than the one
/// `build.rs` compiled is refused, naming the first field that differs).
pub fn kernels(plan: &Plan) -> Result<Compiled, CodegenError> {
    let sources: Vec<(&str, &str)> = generated::KERNELS
        .iter()
        .map(|k| (k.path, k.source))
        .collect();
    Compiled::from_embedded(plan, Target::Wgsl, generated::MANIFEST, &sources)
}

/// `model` on the wgpu device of `ctx`, its attention run by the embedded kernels of the
/// embedded plan. Errors when the model's shape is not the plan's, or the device lacks what
/// the kernels need.
pub fn engine(ctx: &WgpuContext, model: &Model) -> Result<Box<dyn Engine>, EngineError> {
    let plan = plan()?;
    let kernels = kernels(&plan)?;
    Ok(Box::new(WgpuEngine::with_kernels(
        ctx, model, &plan, &kernels,
    )?))
}
