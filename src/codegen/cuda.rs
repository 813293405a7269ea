//! CUDA back end (filled in by the CUDA kernels work).

use super::{Artifact, CodegenError};
use crate::lower::KernelModule;

pub fn generate(_module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    Ok(Vec::new())
}
