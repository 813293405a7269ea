//! Executors for the generated kernels, and the CPU reference they are tested against.

#![warn(missing_docs)]

pub mod cases;
pub mod cuda;
pub mod cuda_bench;
pub mod engine;
pub mod memory;
pub mod reference;
pub mod shaders;
pub mod wgpu;
pub mod wgpu_engine;
pub mod worklist;
