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
