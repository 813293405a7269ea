//! The kernels of one MoA plan, compiled by `build.rs` and embedded in the binary, and what
//! an app needs to run them: [`plan`] and [`kernels`] give them back without a plan file or
//! a compiler at run time, and [`engine`] puts them behind moa's engine trait.

use std::error::Error;
use std::path::Path;

use moa::codegen::CodegenError;
use moa::model::{ChatMessage, ChatTemplate, ModelTokenizer};
use moa::plan::PlanError;
use moa::{Compiled, Engine, EngineError, Model, Plan, Sampling, Target, WgpuContext, WgpuEngine};

/// What `build.rs` generated: `MANIFEST` (the manifest JSON) and `KERNELS` (every kernel
/// with its source embedded by `include_str!`).
pub mod generated {
    include!("../kernels/kernels.rs");
}

/// The plan's TOML text, as `build.rs` read it.
pub const PLAN_TOML: &str = include_str!("../kernels/plan.toml");

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

/// A greedy chat answer from a model file (GGUF, or a Hugging Face folder) through the
/// embedded kernels: what an app with real weights does. `main` runs random weights
/// instead, so that CI needs no model file; to chat, point `build.rs`'s `PLAN` at a plan
/// for your model (e.g. `plans/smollm2-135m-moa-50.toml` for the model `moa model fetch`
/// gets) and call this. At most `max_new` tokens, fewer when the model ends its answer.
/// Errors: the model is not of the plan's shape, or any load or device error.
pub fn chat(
    ctx: &WgpuContext,
    model_path: &Path,
    message: &str,
    max_new: usize,
) -> Result<String, Box<dyn Error>> {
    let model = Model::load(model_path)?;
    let tokenizer = ModelTokenizer::load(model_path)?;
    // Chat models carry their template; a model without one gets the text as it is.
    let prompt = match ChatTemplate::load(model_path)? {
        Some(t) => t.apply(&tokenizer, &[ChatMessage::new("user", message)], true)?,
        None => tokenizer.encode(message)?,
    };
    let engine = engine(ctx, &model)?;
    let mut req = engine.start(&[prompt.len()], max_new, 0)?;
    let mut next = engine.prefill_tokens(&mut req, &[prompt], Sampling::greedy())?;
    let mut answer = Vec::new();
    while !model.special.eos.contains(&next[0]) {
        answer.push(next[0]);
        if answer.len() == max_new {
            break;
        }
        next = engine.decode_tokens(&mut req, &next, Sampling::greedy())?;
    }
    Ok(tokenizer.decode(&answer, true)?)
}
