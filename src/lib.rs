//! moa: a compiler and runtime for MoA (Mixture of Sparse Attention) plans.
//!
//! Pipeline, one module per stage (dependencies flow one way):
//! `plan` (TOML IR, validation) → `lower` (per-layer kernel specs, cache layout) →
//! `codegen` (WGSL and CUDA from minijinja templates) → `runtime` (wgpu and CUDA
//! executors, the CPU reference). Off the serving path: `calib` (calibration data answered
//! by the dense model) → `profile` (attention influence) → `optimize` (plans) → `eval`
//! (validation of plans on held-out samples).
//!
//! # Running a plan from an app
//!
//! The API an app needs to embed and run a plan's kernels is re-exported at the crate root
//! (`examples/embed` in the repository shows it whole, docs/EMBEDDING.md the files):
//! compile the plan ([`Plan::load`] or [`Plan::from_toml_str`], then [`compile`], and
//! [`Compiled::write`] from a `build.rs`), give embedded kernels back at run time without a
//! compiler ([`Compiled::from_embedded`]), and run them on a model ([`Model::load`], a GGUF
//! file or a Hugging Face folder) through the engine trait ([`WgpuEngine::with_kernels`] on
//! a [`WgpuContext`], used as a `Box<dyn Engine>`): [`Engine::start`] a [`Request`], then
//! [`Engine::prefill_tokens`] and [`Engine::decode_tokens`] with a [`Sampling`]. The
//! tokenizer and chat template are [`model::ModelTokenizer`] and [`model::ChatTemplate`].
//!
//! Every error is an enum a caller can match on, each message naming the file, field and
//! allowed range: [`EngineError`] (a prompt past the context is
//! [`EngineError::TooLong`]), which wraps [`plan::PlanError`], [`codegen::CodegenError`],
//! [`model::ModelError`] (a model of another shape than the plan's is
//! [`model::ModelError::PlanMismatch`]) and the back ends' errors.
//!
//! ```no_run
//! use moa::model::{ChatMessage, ChatTemplate, ModelTokenizer};
//! use moa::{compile, Engine, Model, Plan, Sampling, StorageType, Target, WgpuContext, WgpuEngine};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model_path = Path::new("SmolLM2-135M-Instruct.Q4_1.gguf");
//! let plan = Plan::load(Path::new("plans/smollm2-135m-moa-50.toml"))?;
//! let kernels = compile(&plan, &[Target::Wgsl], StorageType::F16)?;
//! let model = Model::load(model_path)?;
//! let tokenizer = ModelTokenizer::load(model_path)?;
//! let prompt = match ChatTemplate::load(model_path)? {
//!     Some(t) => t.apply(&tokenizer, &[ChatMessage::new("user", "What is 2+2?")], true)?,
//!     None => tokenizer.encode("What is 2+2?")?,
//! };
//! let ctx = WgpuContext::new()?;
//! let engine: Box<dyn Engine> = Box::new(WgpuEngine::with_kernels(&ctx, &model, &plan, &kernels)?);
//! let max_new = 32;
//! let mut req = engine.start(&[prompt.len()], max_new, 0)?;
//! let mut next = engine.prefill_tokens(&mut req, &[prompt], Sampling::greedy())?;
//! let mut answer = Vec::new();
//! while !model.special.eos.contains(&next[0]) {
//!     answer.push(next[0]);
//!     if answer.len() == max_new {
//!         break;
//!     }
//!     next = engine.decode_tokens(&mut req, &next, Sampling::greedy())?;
//! }
//! println!("{}", tokenizer.decode(&answer, true)?);
//! # Ok(())
//! # }
//! ```

// Every public item says what it holds (shapes, units, errors, a formula's source): the
// brief's rule, held by the compiler since session 37 documented the last 634.
#![warn(missing_docs)]

pub mod calib;
pub mod codegen;
pub mod eval;
pub mod input;
pub mod lower;
pub mod model;
pub mod optimize;
pub mod plan;
pub mod profile;
pub mod runtime;

// The API an app needs, re-exported here: the crate documentation above says how it fits.
pub use codegen::{compile, Compiled, Target};
pub use lower::StorageType;
pub use model::Model;
pub use plan::Plan;
pub use runtime::engine::{Engine, EngineError, ModelRef, PrefillProgress, Request, Sampling};
pub use runtime::wgpu::WgpuContext;
pub use runtime::wgpu_engine::WgpuEngine;
