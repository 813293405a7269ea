//! Resource limits of each target, checked once for every generated kernel before any
//! file is written, so a plan whose kernels cannot launch is refused by `moa-compile`
//! (naming the layer, the kernel and the limit) instead of failing at run time.
//!
//! The figures come from what the back ends record, not from a second model of the
//! kernels: threads from the ABI's block ([`KernelInfo::abi`], `block`); CUDA shared memory from the
//! `dynamic_shared_bytes` (and, if a kernel declares any, `static_shared_bytes`) constants
//! that `cuda.rs` computes (`prefill_shared_bytes`, `decode_shared_bytes`); WGSL workgroup
//! memory from the generated module itself (naga sizes every `var<workgroup>`). A kernel
//! rewrite changes those figures and this check follows.

#![warn(missing_docs)]

use super::{Artifact, CodegenError, KernelInfo, Target};

/// What one thread block / workgroup of a target may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetLimits {
    /// Where the numbers come from, for messages.
    pub source: &'static str,
    /// Threads (invocations) per block / workgroup, the product of the three dimensions.
    pub max_threads: u32,
    /// Per dimension (x, y, z).
    pub max_size: [u32; 3],
    /// Shared (CUDA) / workgroup (WGSL) memory in bytes.
    pub max_shared_bytes: u32,
}

/// CUDA on sm_90 (H100 / H200): 1024 threads per block (x, y ≤ 1024, z ≤ 64) and 227 KiB
/// of shared memory per block with the opt-in attribute
/// (`cudaFuncAttributeMaxDynamicSharedMemorySize`; CUDA C Programming Guide, "Compute
/// Capabilities", table of technical specifications).
pub const CUDA_SM90: TargetLimits = TargetLimits {
    source: "CUDA sm_90: 227 KiB of shared memory per block with the opt-in attribute",
    max_threads: 1024,
    max_size: [1024, 1024, 64],
    max_shared_bytes: 227 * 1024,
};

/// wgpu's default limits (`wgpu::Limits::default()`, the WebGPU defaults), which the
/// runtime requests so that kernels run on any adapter.
pub fn wgpu_default() -> TargetLimits {
    let l = wgpu::Limits::default();
    TargetLimits {
        source: "wgpu default limits",
        max_threads: l.max_compute_invocations_per_workgroup,
        max_size: [
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
        ],
        max_shared_bytes: l.max_compute_workgroup_storage_size,
    }
}

/// The limits a target's kernels are checked against.
pub fn limits(target: Target) -> TargetLimits {
    match target {
        Target::Cuda => CUDA_SM90,
        Target::Wgsl => wgpu_default(),
    }
}

/// What one kernel needs per block / workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelResources {
    /// Threads per block / invocations per workgroup (x, y, z): the ABI's `block`.
    pub size: [u32; 3],
    /// Shared (CUDA: dynamic plus static) / workgroup (WGSL) memory, in bytes.
    pub shared_bytes: u64,
}

fn compiler_bug(kernel: &KernelInfo, message: String) -> CodegenError {
    CodegenError::Resources {
        target: kernel.target.name(),
        layer: kernel.layer,
        kernel: kernel.name.clone(),
        message: format!("compiler bug: {message}"),
    }
}

/// Bytes of workgroup memory a parsed WGSL module declares (every `var<workgroup>`; each
/// module holds one entry point). Errors: a type naga cannot size, as a message.
pub fn workgroup_bytes(module: &naga::Module) -> Result<u64, String> {
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| format!("cannot size the WGSL types: {e}"))?;
    Ok(module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
        .map(|(_, g)| u64::from(layouter[g.ty].size))
        .sum())
}

/// [`workgroup_bytes`] of a WGSL file that was not sized when it was generated.
fn wgsl_workgroup_bytes(kernel: &KernelInfo, source: &str) -> Result<u64, CodegenError> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| compiler_bug(kernel, format!("generated WGSL does not parse: {e}")))?;
    workgroup_bytes(&module).map_err(|e| compiler_bug(kernel, e))
}

/// The resources of `kernel`, defined in `artifact`.
pub fn resources(
    kernel: &KernelInfo,
    artifact: &Artifact,
) -> Result<KernelResources, CodegenError> {
    let shared_bytes = match kernel.target {
        Target::Wgsl => match artifact.workgroup_bytes {
            Some(bytes) => bytes,
            None => wgsl_workgroup_bytes(kernel, &artifact.source)?,
        },
        // The figure the executor launches with (the typed kernel ABI), plus any static
        // shared memory a template declares.
        Target::Cuda => {
            let fixed = kernel
                .constants
                .get("static_shared_bytes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            u64::from(kernel.abi.dynamic_shared_bytes).saturating_add(fixed)
        }
    };
    Ok(KernelResources {
        size: kernel.abi.block,
        shared_bytes,
    })
}

/// Checks every kernel of `artifacts` against the limits of `target`. Errors name the
/// layer, the kernel, the resource, what it needs and what the target allows.
pub fn check(target: Target, artifacts: &[Artifact]) -> Result<(), CodegenError> {
    let lim = limits(target);
    for a in artifacts {
        for k in &a.kernels {
            let r = resources(k, a)?;
            let fail = |message: String| CodegenError::Resources {
                target: target.name(),
                layer: k.layer,
                kernel: k.name.clone(),
                message,
            };
            let threads = r.size.iter().map(|&s| u64::from(s)).product::<u64>();
            if threads == 0 || threads > u64::from(lim.max_threads) {
                return Err(fail(format!(
                    "needs {threads} threads per block ({:?}); allowed 1..={} ({})",
                    r.size, lim.max_threads, lim.source
                )));
            }
            for (d, (&s, &m)) in ["x", "y", "z"].iter().zip(r.size.iter().zip(&lim.max_size)) {
                if s > m {
                    return Err(fail(format!(
                        "has block size {s} in {d}; allowed at most {m} ({})",
                        lim.source
                    )));
                }
            }
            // The WGSL decode on cooperative matrices runs only on adapters that have them
            // (GPUs, 32 KiB or more); the executor falls back to the layer's scalar decode
            // where the device refuses it.
            // So does a scalar decode wider than the default workgroup
            // (`WgslTuning::decode_threads`, opt-in).
            let max_shared = if target == Target::Wgsl && k.abi.tiles.subgroups.is_some() {
                super::wgsl::DECODE_COOP_WORKGROUP_BYTES
            } else if target == Target::Wgsl
                && k.phase == super::Phase::Decode
                && threads > u64::from(crate::lower::consts::WGSL_DECODE_THREADS)
            {
                super::wgsl::DECODE_WIDE_WORKGROUP_BYTES
            } else {
                lim.max_shared_bytes
            };
            if r.shared_bytes > u64::from(max_shared) {
                return Err(fail(format!(
                    "needs {} bytes of {} memory per block; allowed at most {} ({}); \
                     the figure grows with head_dim and with the query heads per KV head",
                    r.shared_bytes,
                    if target == Target::Cuda {
                        "shared"
                    } else {
                        "workgroup"
                    },
                    max_shared,
                    lim.source
                )));
            }
        }
    }
    Ok(())
}
