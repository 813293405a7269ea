//! Helpers shared by the integration tests.

pub mod bytes;
pub mod samples;
pub mod tiny;
