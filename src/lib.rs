//! moa: a compiler and runtime for MoA (Mixture of Sparse Attention) plans.
//!
//! Pipeline, one module per stage (dependencies flow one way):
//! `plan` (TOML IR, validation) → `lower` (per-layer kernel specs, cache layout) →
//! `codegen` (WGSL and CUDA from minijinja templates) → `runtime` (wgpu and CUDA
//! executors, the CPU reference). Off the serving path: `calib` (calibration data answered
//! by the dense model) → `profile` (attention influence) → `optimize` (plans) → `eval`
//! (validation of plans on held-out samples).

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

// The API an app needs to embed and run a plan's kernels (examples/embed shows it whole):
// compile the plan in `build.rs` ([`compile`] → [`Compiled::write`]), give the embedded
// kernels back at run time without a compiler ([`Compiled::from_embedded`]), and run them
// on a model ([`Model::load`], or weights in memory) through the engine trait
// ([`WgpuEngine::with_kernels`] → `Box<dyn Engine>`).
pub use codegen::{compile, Compiled, Target};
pub use lower::StorageType;
pub use model::Model;
pub use plan::Plan;
pub use runtime::engine::{Engine, EngineError, PrefillProgress, Request, Sampling};
pub use runtime::wgpu::WgpuContext;
pub use runtime::wgpu_engine::WgpuEngine;
