//! Helpers shared by the integration tests.

pub mod bytes;
pub mod cli;
pub mod copy_model;
pub mod llvmpipe;
pub mod mqa;
pub mod profiles;
pub mod samples;
pub mod sweeps;
pub mod tiny;
