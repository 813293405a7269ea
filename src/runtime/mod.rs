//! Executors for the generated kernels, and the CPU reference they are tested against.

pub mod reference;
