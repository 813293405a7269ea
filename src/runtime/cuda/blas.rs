//! Projections through cuBLAS: `y = x · wᵀ` with weights and inputs in the storage type
//! and f32 outputs (f32 accumulation), so the residual stream and the logits stay f32 and
//! a residual add is the GEMM's `beta = 1` (no extra pass over the activations).
//!
//! Row-major `x [t, k]`, `w [n, k]`, `y [t, n]` are, to column-major cuBLAS, `xᵀ [k, t]`,
//! `wᵀ [k, n]` and `yᵀ [n, t]`; so `yᵀ = op(wᵀ)ᵀ · xᵀ` is `gemm(T, N, m = n, n = t, k)`.

#![warn(missing_docs)]

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::result::gemm_ex;
use cudarc::cublas::sys;
use cudarc::cublas::CudaBlas;
use cudarc::driver::CudaStream;

use super::ops::DevMem;
use super::CudaError;
use crate::lower::StorageType;

/// cuBLAS workspace, given to the handle once so a CUDA-graph capture never allocates.
const WORKSPACE_BYTES: usize = 64 << 20;

/// A cuBLAS handle bound to the engine's stream.
pub struct Gemm {
    blas: CudaBlas,
    storage: StorageType,
    _workspace: DevMem,
}

fn blas_err(what: &str, e: impl std::fmt::Debug) -> CudaError {
    CudaError::InvalidInput(format!("cuBLAS failed while {what}: {e:?}"))
}

impl Gemm {
    /// A handle on `stream`; a missing libcublas is an error with what to install.
    pub fn new(stream: &Arc<CudaStream>, storage: StorageType) -> Result<Gemm, CudaError> {
        // SAFETY: only probes whether the library loads. (A `cuda`-feature build links
        // libcublas instead: a missing library fails at process start there.)
        #[cfg(feature = "cuda-loading")]
        if !unsafe { sys::is_culib_present() } {
            return Err(CudaError::DriverMissing {
                detail: "libcublas.so (CUDA 12 or 13) was not found on the library path; \
                         put the CUDA toolkit's lib64 (or pip's nvidia/cublas/lib) on LD_LIBRARY_PATH"
                    .into(),
            });
        }
        let blas = CudaBlas::new(stream.clone()).map_err(|e| blas_err("creating a handle", e))?;
        let workspace = DevMem::alloc(stream, WORKSPACE_BYTES, "the cuBLAS workspace")?;
        // SAFETY: the workspace outlives the handle (both are fields of `Gemm`, the handle
        // dropped first).
        unsafe {
            sys::cublasSetWorkspace_v2(
                *blas.handle(),
                workspace.ptr as *mut c_void,
                WORKSPACE_BYTES,
            )
            .result()
            .map_err(|e| blas_err("setting the workspace", e))?;
        }
        Ok(Gemm {
            blas,
            storage,
            _workspace: workspace,
        })
    }

    fn dtype(&self) -> sys::cudaDataType {
        match self.storage {
            StorageType::F32 => sys::cudaDataType::CUDA_R_32F,
            StorageType::F16 => sys::cudaDataType::CUDA_R_16F,
            StorageType::Bf16 => sys::cudaDataType::CUDA_R_16BF,
        }
    }

    /// `y[t, n] (f32) = x[t, k] · w[n, k]ᵀ`, plus the old `y` when `accumulate`.
    ///
    /// # Safety
    /// `x` holds `t·k` and `w` `n·k` values of the storage type, `y` `t·n` f32.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn linear(
        &self,
        x: u64,
        w: u64,
        y: u64,
        t: usize,
        k: usize,
        n: usize,
        accumulate: bool,
    ) -> Result<(), CudaError> {
        if t == 0 || n == 0 {
            return Ok(());
        }
        let int = |v: usize| {
            i32::try_from(v)
                .map_err(|_| CudaError::InvalidInput(format!("GEMM size {v} exceeds i32")))
        };
        let (alpha, beta) = (1f32, if accumulate { 1f32 } else { 0f32 });
        let dt = self.dtype();
        // SAFETY: the caller's contract; alpha and beta are host scalars (the handle's
        // default pointer mode), read before the call returns (also under capture).
        unsafe {
            gemm_ex(
                *self.blas.handle(),
                sys::cublasOperation_t::CUBLAS_OP_T,
                sys::cublasOperation_t::CUBLAS_OP_N,
                int(n)?,
                int(t)?,
                int(k)?,
                (&alpha as *const f32).cast(),
                w as *const c_void,
                dt,
                int(k)?,
                x as *const c_void,
                dt,
                int(k)?,
                (&beta as *const f32).cast(),
                y as *mut c_void,
                sys::cudaDataType::CUDA_R_32F,
                int(n)?,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| blas_err(&format!("a {t}x{k} by {n}x{k} product"), e))
    }
}
