//! CUDA executor for the generated CUDA kernels: NVRTC compiles the sources to PTX,
//! cudarc loads them and launches prefill and decode (+ merge) on case inputs.
//!
//! Both NVRTC and the driver are loaded dynamically by cudarc, which *panics* when a
//! library is missing; every entry point here catches that and returns
//! [`CudaError::NvrtcMissing`] / [`CudaError::DriverMissing`] with install instructions,
//! so a machine without CUDA gets an error message, not a crash.

#![warn(missing_docs)]

// The Llama engine built on these kernels (cuda/engine.rs), its ops and projections.
pub mod bench;
pub mod blas;
pub mod engine;
pub mod ops;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute_enum};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cases::{
    check_output, decode_case, max_abs_error, prefill_case, standard_layer_cases, tolerance,
};
use super::cases::{DecodeCase, PrefillCase};
use super::worklist::{
    choose_split_in, cuda_chunk_policy, ChunkPolicy, DecodeSlots, DecodeSplit, DecodeWork,
    MAX_CLUSTER, MAX_CLUSTER_WIDE,
};
use crate::codegen::abi::{v_prepass, Arg, Elem, Grid, KernelAbi, LaunchSize, Prepass};
use crate::codegen::cuda::{decode_name, prefill_name, DecodeTuning, PrefillTuning};
use crate::codegen::{Artifact, CodegenError};
use crate::lower::{CacheLayout, KernelModule, StorageType};

/// The architecture the kernels are compiled for by default: H100 / H200 with their
/// arch-specific instructions, so the prefill runs on warpgroup MMA (wgmma). Compiled for
/// plain `sm_90` (or older) the same source takes its portable mma.sync body.
pub const DEFAULT_ARCH: &str = "sm_90a";
/// Folder(s) holding `cuda_fp16.h` (`:`-separated), searched before the usual places.
pub const INCLUDE_ENV: &str = "MOA_CUDA_INCLUDE";

const INSTALL_HINT: &str = "run `eval \"$(scripts/cuda-deps.sh)\"` in the repository (it fetches NVIDIA's \
    NVRTC 12.9 and runtime-header wheels and exports LD_LIBRARY_PATH and MOA_CUDA_INCLUDE), or put a \
    CUDA 12+ libnvrtc.so on LD_LIBRARY_PATH";

/// Errors of the CUDA executor, its engine and benches: loading NVRTC and the driver,
/// compiling the generated sources, driver calls, and inputs the kernels cannot take.
/// Messages carry install instructions where a library is missing.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// `libnvrtc.so` could not be loaded (cudarc's panic, caught).
    #[error("NVRTC could not be loaded ({detail}); {INSTALL_HINT}")]
    NvrtcMissing {
        /// cudarc's panic message.
        detail: String,
    },
    /// `libcuda.so` could not be loaded (cudarc's panic, caught): no NVIDIA driver here.
    #[error("the CUDA driver (libcuda.so) could not be loaded ({detail}); the kernels can only run on a machine with an NVIDIA GPU and driver")]
    DriverMissing {
        /// cudarc's panic message.
        detail: String,
    },
    /// No folder of [`INCLUDE_ENV`], `CUDA_PATH`, `/usr/local/cuda` or the repository's
    /// `.cache/cuda` holds `cuda_fp16.h` ([`fp16_include_dir`]).
    #[error("`cuda_fp16.h` was not found (searched: {searched}); set {INCLUDE_ENV} to a CUDA include folder, or {INSTALL_HINT}")]
    HeadersMissing {
        /// The folders searched, `, `-separated.
        searched: String,
    },
    /// Generated source that NVRTC rejects is a compiler bug.
    #[error("compiler bug: NVRTC rejected `{name}` for {arch}:\n{log}")]
    Compile {
        /// The artifact's path (`<source>` for a bare source).
        name: String,
        /// The architecture compiled for, e.g. `sm_90a`.
        arch: String,
        /// NVRTC's compile log.
        log: String,
    },
    /// Generating the CUDA sources for the module failed.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// A driver call (context, module load, allocation, copy, launch, synchronize)
    /// failed.
    #[error("CUDA driver call failed while {what}")]
    Driver {
        /// What was being done, e.g. `zeroing the V maxima`.
        what: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// A kernel the launch needs (named) is not in the generated or loaded sources.
    #[error("kernel `{0}` is missing from the generated CUDA sources")]
    MissingKernel(String),
    /// An input the kernels cannot take (tensors whose lengths do not match the shapes, a
    /// layer out of range, zero rows, a grid or cluster past the device's limits), or a
    /// cuBLAS failure; the message says which.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// [`CUBIN_ENV`] is set to something that is not a folder ([`cubin_dir`]).
    #[error("{CUBIN_ENV}={0:?} is not a folder: point it at a folder of precompiled kernels (examples/cuda_cubins.rs writes one) or unset it to compile with NVRTC")]
    CubinDir(String),
}

fn driver(what: impl Into<String>) -> impl FnOnce(DriverError) -> CudaError {
    let what = what.into();
    move |source| CudaError::Driver { what, source }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Folders searched for `cuda_fp16.h`, in order: `$MOA_CUDA_INCLUDE`, `$CUDA_PATH/include`,
/// `/usr/local/cuda/include`, and the wheel cache of `scripts/cuda-deps.sh` in this crate.
pub fn include_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os(INCLUDE_ENV) {
        dirs.extend(std::env::split_paths(&v));
    }
    if let Some(v) = std::env::var_os("CUDA_PATH") {
        dirs.push(PathBuf::from(v).join("include"));
    }
    dirs.push(PathBuf::from("/usr/local/cuda/include"));
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/cuda/root/nvidia/cuda_runtime/include"),
    );
    dirs
}

/// The first candidate folder that holds `cuda_fp16.h`.
pub fn fp16_include_dir() -> Result<PathBuf, CudaError> {
    let dirs = include_candidates();
    dirs.iter()
        .find(|d| d.join("cuda_fp16.h").is_file())
        .cloned()
        .ok_or_else(|| CudaError::HeadersMissing {
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Compiles one CUDA C++ source to PTX for `arch` (e.g. "sm_90") with NVRTC.
pub fn compile_ptx(source: &str, arch: &'static str) -> Result<String, CudaError> {
    compile_named("<source>", source, arch)
}

/// Compiles a generated artifact; errors name its path.
pub fn compile_artifact(artifact: &Artifact, arch: &'static str) -> Result<String, CudaError> {
    compile_named(&artifact.path, &artifact.source, arch)
}

/// Folder of precompiled kernels (`<cubin_key>.cubin`, or `<cubin_key>.ptx` that the
/// driver assembles), loaded instead of compiling with NVRTC when the file for a source is
/// there (`examples/cuda_cubins.rs` writes cubins, `bench_prefill --ptx-cache` PTX), so a
/// GPU machine with little time does not spend it in NVRTC.
pub const CUBIN_ENV: &str = "MOA_CUBIN_DIR";

/// The file stem of a source's cubin: SHA-256 of the architecture and the source text.
pub fn cubin_key(source: &str, arch: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(arch.as_bytes());
    h.update([0u8]);
    h.update(source.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The folder [`CUBIN_ENV`] names (unset or empty: `None`). Errors: a value that is not a
/// folder (a typo would otherwise silently compile everything with NVRTC).
pub fn cubin_dir() -> Result<Option<PathBuf>, CudaError> {
    cubin_dir_of(std::env::var_os(CUBIN_ENV))
}

/// [`cubin_dir`] for the value `v` of [`CUBIN_ENV`].
fn cubin_dir_of(v: Option<std::ffi::OsString>) -> Result<Option<PathBuf>, CudaError> {
    match v.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if Path::new(&v).is_dir() => Ok(Some(PathBuf::from(v))),
        Some(v) => Err(CudaError::CubinDir(v.to_string_lossy().into_owned())),
    }
}

/// The kernel image of every artifact: the cubin (or PTX) from [`CUBIN_ENV`] where one
/// exists, else PTX from NVRTC (compiled in parallel). Errors: [`CUBIN_ENV`] set to
/// something that is not a folder, or NVRTC's.
pub fn load_images(artifacts: &[Artifact], arch: &'static str) -> Result<Vec<Ptx>, CudaError> {
    let dir = cubin_dir()?;
    let cached: Vec<Option<Ptx>> = artifacts
        .iter()
        .map(|a| {
            let key = cubin_key(&a.source, arch);
            dir.as_ref().and_then(|d| {
                std::fs::read(d.join(format!("{key}.cubin")))
                    .ok()
                    .map(Ptx::from_binary)
                    .or_else(|| {
                        std::fs::read_to_string(d.join(format!("{key}.ptx")))
                            .ok()
                            .map(Ptx::from_src)
                    })
            })
        })
        .collect();
    let missing: Vec<Artifact> = artifacts
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|(a, _)| a.clone())
        .collect();
    let mut compiled = compile_all(&missing, arch)?.into_iter();
    cached
        .into_iter()
        .map(|c| match c {
            Some(image) => Ok(image),
            None => compiled
                .next()
                .map(Ptx::from_src)
                .ok_or_else(|| CudaError::InvalidInput("compiled fewer kernels than asked".into())),
        })
        .collect()
}

/// Compiles every artifact, on as many threads as the machine has cores; the first
/// error (in artifact order) is returned.
pub fn compile_all(artifacts: &[Artifact], arch: &'static str) -> Result<Vec<String>, CudaError> {
    use rayon::prelude::*;
    artifacts
        .par_iter()
        .map(|a| {
            // cudarc panics where NVRTC cannot be loaded: that is an error of this call.
            std::panic::catch_unwind(|| compile_artifact(a, arch)).unwrap_or_else(|p| {
                Err(CudaError::NvrtcMissing {
                    detail: panic_text(p),
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

fn compile_named(name: &str, source: &str, arch: &'static str) -> Result<String, CudaError> {
    let mut include_paths = Vec::new();
    if source.contains("cuda_fp16.h") || source.contains("cuda_bf16.h") {
        include_paths.push(fp16_include_dir()?.display().to_string());
    }
    let opts = CompileOptions {
        arch: Some(arch),
        include_paths,
        name: Some(name.rsplit('/').next().unwrap_or(name).to_string()),
        options: vec!["--std=c++17".into()],
        ..CompileOptions::default()
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        cudarc::nvrtc::compile_ptx_with_opts(source, opts)
    }))
    .map_err(|p| CudaError::NvrtcMissing {
        detail: panic_text(p),
    })?;
    match result {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(CompileError::CompileError { log, .. }) => Err(CudaError::Compile {
            name: name.to_string(),
            arch: arch.to_string(),
            log: log.to_string_lossy().into_owned(),
        }),
        Err(other) => Err(CudaError::Compile {
            name: name.to_string(),
            arch: arch.to_string(),
            log: format!("{other:?}"),
        }),
    }
}

/// A device buffer in the module's storage type (f16 and bf16 travel as their bits).
pub enum DevBuf {
    /// f32 storage.
    F32(CudaSlice<f32>),
    /// f16 or bf16 storage, each element as its 16 bits.
    Half(CudaSlice<u16>),
}

/// One argument value for a launch, looked up by [`Arg`] while walking a kernel's ABI.
#[derive(Clone, Copy)]
pub enum ArgVal<'a> {
    /// A tensor in the storage type (Q, K, V, caches, O).
    Tensor(&'a DevBuf),
    /// A u32 buffer (row starts and positions, the work list, segment counters, the V
    /// maxima as bits).
    U32s(&'a CudaSlice<u32>),
    /// An f32 buffer (the decode partials).
    F32s(&'a CudaSlice<f32>),
    /// A scalar passed by value (N in tokens, rows, work items).
    Value(u32),
}

/// A loaded kernel and the interface it was generated with.
pub struct LoadedKernel {
    /// The function loaded from the kernel's module.
    pub function: CudaFunction,
    /// Its parameters, grid and tiles as the manifest gives them.
    pub abi: KernelAbi,
    /// Its entry point (the `extern "C"` name).
    pub name: String,
}

impl LoadedKernel {
    /// Queues one launch on `stream`: arguments in the order of the ABI's parameters,
    /// each taken from `args` by its [`Arg`]; grid from the ABI's rule.
    ///
    /// # Safety
    /// Every buffer in `args` must have the shape the ABI gives it for `size` (checked
    /// by the callers in this module before they build `args`).
    pub unsafe fn launch(
        &self,
        stream: &Arc<CudaStream>,
        args: &[(Arg, ArgVal<'_>)],
        size: &LaunchSize,
    ) -> Result<(), CudaError> {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.launch_with(stream, args, size, false) }
    }

    /// [`Self::launch`], optionally as a programmatic dependent launch (Hopper; CUDA
    /// `cudaLaunchAttributeProgrammaticStreamSerialization`): the grid may be scheduled
    /// while the previous kernel on `stream` is still finishing, so its blocks become
    /// resident in the previous grid's tail and start at once when it completes. Only
    /// for kernels that execute `griddepcontrol.wait` before touching memory an earlier
    /// kernel writes (the decode kernels do, see templates/cuda/decode.cu.j2); for others
    /// the flag would be a race.
    ///
    /// # Safety
    /// As [`Self::launch`]; with `programmatic`, the kernel must wait as described.
    pub unsafe fn launch_with(
        &self,
        stream: &Arc<CudaStream>,
        args: &[(Arg, ArgVal<'_>)],
        size: &LaunchSize,
        programmatic: bool,
    ) -> Result<(), CudaError> {
        let mut lb = stream.launch_builder(&self.function);
        let values = self.ordered_args(args)?;
        let g = self.grid_on(stream, size)?;
        let cfg = LaunchConfig {
            grid_dim: (g[0], g[1], g[2]),
            block_dim: (self.abi.block[0], self.abi.block[1], self.abi.block[2]),
            shared_mem_bytes: self.abi.dynamic_shared_bytes,
        };
        if g.contains(&0) {
            return Ok(());
        }
        if programmatic {
            // SAFETY: as above; the caller vouches for the kernel's griddepcontrol.wait.
            return unsafe { self.launch_ex(stream, &values, cfg, true, 1) };
        }
        for v in &values {
            match v {
                ArgVal::Tensor(t) => match *t {
                    DevBuf::F32(b) => lb.arg(b),
                    DevBuf::Half(b) => lb.arg(b),
                },
                ArgVal::U32s(b) => lb.arg(*b),
                ArgVal::F32s(b) => lb.arg(*b),
                ArgVal::Value(x) => lb.arg(x),
            };
        }
        // SAFETY: the arguments follow the kernel's own ABI; shapes are the caller's
        // contract (see above).
        unsafe { lb.launch(cfg) }.map_err(driver(format!("launching `{}`", self.name)))?;
        Ok(())
    }

    /// The launch grid for `size` on `stream`'s device: a persistent grid
    /// ([`Grid::PersistentQueryTiles`]) takes one block per SM (its kernels run one block
    /// per SM), every other rule its [`Grid::dims`].
    fn grid_on(&self, stream: &Arc<CudaStream>, size: &LaunchSize) -> Result<[u32; 3], CudaError> {
        let sms = match self.abi.grid {
            Grid::PersistentQueryTiles { .. } => stream
                .context()
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_err(driver("reading the SM count"))?
                .max(1) as u32,
            _ => 0,
        };
        Ok(self.abi.grid.dims_on(size, sms))
    }

    /// The call's arguments in the kernel's parameter order (its ABI); a parameter the
    /// call does not provide is [`CudaError::InvalidInput`] naming it.
    fn ordered_args<'a>(&self, args: &[(Arg, ArgVal<'a>)]) -> Result<Vec<ArgVal<'a>>, CudaError> {
        self.abi
            .params
            .iter()
            .map(|p| {
                args.iter()
                    .find(|(a, _)| *a == p.arg)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        CudaError::InvalidInput(format!(
                            "kernel `{}` takes {:?} (parameter {}), which this call does not provide",
                            self.name, p.arg, p.index
                        ))
                    })
            })
            .collect()
    }

    /// [`Self::launch_with`] as thread-block clusters of `cluster` blocks along x (sm_90;
    /// 1 to [`Self::max_cluster`]): the grid's x must be a multiple of `cluster`. For the
    /// decode kernels, whose work list then holds each segment as one aligned cluster
    /// (`worklist::DecodeWork::build_clusters`).
    ///
    /// # Safety
    /// As [`Self::launch_with`]; the kernel must be written for the cluster shape.
    pub unsafe fn launch_clustered(
        &self,
        stream: &Arc<CudaStream>,
        args: &[(Arg, ArgVal<'_>)],
        size: &LaunchSize,
        programmatic: bool,
        cluster: u32,
    ) -> Result<(), CudaError> {
        if cluster <= 1 {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.launch_with(stream, args, size, programmatic) };
        }
        let g = self.grid_on(stream, size)?;
        if g.contains(&0) {
            return Ok(());
        }
        let max = self.max_cluster();
        if cluster > max || !g[0].is_multiple_of(cluster) {
            return Err(CudaError::InvalidInput(format!(
                "`{}`: clusters of {cluster} blocks need 2..={max} blocks dividing the grid's x ({})",
                self.name, g[0]
            )));
        }
        let values = self.ordered_args(args)?;
        let cfg = LaunchConfig {
            grid_dim: (g[0], g[1], g[2]),
            block_dim: (self.abi.block[0], self.abi.block[1], self.abi.block[2]),
            shared_mem_bytes: self.abi.dynamic_shared_bytes,
        };
        // SAFETY: the caller's contract, passed on.
        unsafe { self.launch_ex(stream, &values, cfg, programmatic, cluster) }
    }

    /// The largest thread-block cluster this kernel may be launched as: its ABI's
    /// `tiles.cluster` (16 for the `h` decode kernels, whose function allows non-portable
    /// cluster sizes once loaded), else CUDA's portable [`MAX_CLUSTER`].
    pub fn max_cluster(&self) -> u32 {
        self.abi.tiles.cluster.unwrap_or(MAX_CLUSTER).max(1)
    }

    /// The work-list segments this decode kernel takes per KV head: its ABI's
    /// `tiles.sub_groups` (a GQA group past 8 cut into sub-groups,
    /// `codegen::cuda::decode_sub_groups`), else 1. Its work lists are built over
    /// `layout.sub_grouped(n)` ([`CacheLayout::sub_grouped`]).
    pub fn sub_groups(&self) -> u32 {
        self.abi.tiles.sub_groups.unwrap_or(1).max(1)
    }

    /// `cuLaunchKernelEx` with the programmatic-stream-serialization attribute and / or a
    /// cluster dimension (cudarc's launch builder sets no launch attributes). Parameters
    /// are passed as pointers to 8-byte slots: a device pointer, or a `u32` in the slot's
    /// low bytes (little endian).
    ///
    /// # Safety
    /// As [`Self::launch_with`].
    unsafe fn launch_ex(
        &self,
        stream: &Arc<CudaStream>,
        values: &[ArgVal<'_>],
        cfg: LaunchConfig,
        programmatic: bool,
        cluster: u32,
    ) -> Result<(), CudaError> {
        use cudarc::driver::DevicePtr;
        let mut slots: Vec<u64> = values
            .iter()
            .map(|v| match *v {
                ArgVal::Tensor(DevBuf::F32(b)) => b.device_ptr(stream).0,
                ArgVal::Tensor(DevBuf::Half(b)) => b.device_ptr(stream).0,
                ArgVal::U32s(b) => b.device_ptr(stream).0,
                ArgVal::F32s(b) => b.device_ptr(stream).0,
                ArgVal::Value(x) => u64::from(x),
            })
            .collect();
        // SAFETY: the caller's contract.
        unsafe {
            launch_raw_ex(
                stream,
                &self.function,
                &self.name,
                &mut slots,
                cfg,
                programmatic,
                cluster,
            )
        }
    }
}

/// `cuLaunchKernelEx` of `function` with the programmatic-stream-serialization attribute
/// and / or a cluster dimension of `cluster` blocks along x (cudarc's launch builder sets
/// no launch attributes). `slots` holds one 8-byte slot per kernel parameter, in order: a
/// device pointer, or a 4-byte value in the slot's low bytes (little endian).
///
/// # Safety
/// The slots match the kernel's parameters, every buffer is as large as the kernel
/// indexes it for `cfg`, and with `programmatic` the kernel waits for the previous grid
/// (`griddepcontrol.wait`) before reading anything that grid may write.
pub(crate) unsafe fn launch_raw_ex(
    stream: &Arc<CudaStream>,
    function: &CudaFunction,
    name: &str,
    slots: &mut [u64],
    cfg: LaunchConfig,
    programmatic: bool,
    cluster: u32,
) -> Result<(), CudaError> {
    {
        use cudarc::driver::sys;
        let mut params: Vec<*mut std::ffi::c_void> = slots
            .iter_mut()
            .map(|s| (s as *mut u64).cast::<std::ffi::c_void>())
            .collect();
        let mut attrs = Vec::with_capacity(2);
        if programmatic {
            let mut attr = sys::CUlaunchAttribute {
                id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
                pad: [0; 4],
                // SAFETY: a plain-old-data union; every field is valid when zeroed.
                value: unsafe { std::mem::zeroed() },
            };
            attr.value.programmaticStreamSerializationAllowed = 1;
            attrs.push(attr);
        }
        if cluster > 1 {
            attrs.push(cluster_attribute(cluster));
        }
        let config = sys::CUlaunchConfig {
            gridDimX: cfg.grid_dim.0,
            gridDimY: cfg.grid_dim.1,
            gridDimZ: cfg.grid_dim.2,
            blockDimX: cfg.block_dim.0,
            blockDimY: cfg.block_dim.1,
            blockDimZ: cfg.block_dim.2,
            sharedMemBytes: cfg.shared_mem_bytes,
            hStream: stream.cu_stream(),
            attrs: attrs.as_mut_ptr(),
            numAttrs: attrs.len() as u32,
        };
        stream
            .context()
            .bind_to_thread()
            .map_err(driver(format!("launching `{name}`")))?;
        // SAFETY: `params` points at one live slot per kernel parameter, in ABI order;
        // `config` and `attr` outlive the call.
        unsafe {
            sys::cuLaunchKernelEx(
                &config,
                function.cu_function(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        }
        .result()
        .map_err(driver(format!(
            "launching `{name}` (programmatic {programmatic}, cluster {cluster})"
        )))
    }
}

/// The `v` prefill variant's pre-pass kernels of one layer, which turn V into the f16 copy
/// its prefill takes: `{prefill}_vmax` then `{prefill}_vf16`, or in the `u` form
/// `{prefill}_vcvt` then `{prefill}_vfix` (codegen::abi::Arg::VF16).
pub struct VPrepass {
    first: CudaFunction,
    second: CudaFunction,
    /// The `u` form: the first kernel also writes the f16 copy.
    unit: bool,
    /// Both launches' grid rule, as the manifest's `abi.prepass` gives it
    /// ([`Grid::TokenGroups`], or [`Grid::StridedTokenGroups`] in the `u` form).
    grid: Grid,
}

/// Blocks of 128 threads that the `u` pre-pass kernels (`_vcvt`, `_vfix`) are launched
/// with, over all KV heads (at least one per head): about one wave on an H200 (132 SMs, 8
/// blocks of 56 registers a thread each). One block per 64 tokens, as before session 13,
/// made Vicuna-7B's 32 KV heads × 16k tokens 8192 blocks of 16 KiB each.
pub const V_PREPASS_BLOCKS: u32 = 1024;

/// The grid of the `v` pre-pass kernels for `total` tokens: `[ceil(total / 64), kv_heads]`,
/// one block per 64-token group; in the `u` form (`unit`), whose kernels loop over the
/// groups, at most `max(1, V_PREPASS_BLOCKS / kv_heads)` blocks per KV head.
pub fn v_prepass_grid(total: u32, kv_heads: u32, unit: bool) -> (u32, u32, u32) {
    let groups = total.div_ceil(64);
    let x = if unit {
        groups.min((V_PREPASS_BLOCKS / kv_heads.max(1)).max(1))
    } else {
        groups
    };
    (x, kv_heads, 1)
}

/// Bytes the `v` pre-pass needs beside V for a pass of `total` tokens: the f16 copy
/// (`[total, kv_heads, head_dim]`, 2 bytes each) and the maxima (`u32[kv_heads]`).
pub fn v_prepass_bytes(total: usize, kv_heads: usize, head_dim: usize) -> (usize, usize) {
    (total * kv_heads * head_dim * 2, kv_heads * 4)
}

/// The pre-pass of the prefill `entry_point` of `artifact`, checked, or `None` where that
/// prefill takes V as stored (no [`Arg::VF16`] parameter). A manifest of version 4 (and
/// an artifact moa generates) names it in the prefill's `abi.prepass`
/// ([`crate::codegen::abi::v_prepass`]), which is taken as it is once it is the form
/// [`VPrepass::queue`] launches: the same kernels, arguments and grid rules, whatever
/// `blocks` it gives. A version-3 folder (written before session 18) lists no pre-pass:
/// its form is read from the source (`{entry_point}_vcvt(` is the `u` form) and its grid is
/// [`V_PREPASS_BLOCKS`]'s, as moa launched them then.
///
/// # Errors
/// [`CudaError::MissingKernel`] when `artifact` has no kernel `entry_point`;
/// [`CudaError::InvalidInput`] naming the file and kernel when its `abi.prepass` is not a
/// pre-pass of `entry_point`'s V, or lists one for a prefill that takes no f16 V.
pub fn prepass_of(artifact: &Artifact, entry_point: &str) -> Result<Option<Prepass>, CudaError> {
    let Some(k) = artifact
        .kernels
        .iter()
        .find(|k| k.entry_point == entry_point)
    else {
        return Err(CudaError::MissingKernel(entry_point.into()));
    };
    let takes_f16 = k.abi.param(Arg::VF16).is_some();
    let bad = |why: String| {
        CudaError::InvalidInput(format!(
            "`{}`: the `abi.prepass` of kernel `{entry_point}` {why}; recompile the folder with this moa (`moa-compile`)",
            artifact.path
        ))
    };
    // V is stored as K is (the prefill that takes the f16 copy has no V of its own).
    let storage = match k.abi.param(Arg::K) {
        Some(p) => p.elem,
        None if takes_f16 => return Err(bad("belongs to a kernel without a K parameter".into())),
        None => Elem::Bf16,
    };
    match (&k.abi.prepass, takes_f16) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(bad(
            "lists a pre-pass, but the kernel takes no f16 copy of V (`v_f16`) for it to write"
                .into(),
        )),
        // Version 3: no `abi.prepass`; the source says which form the kernels are.
        (None, true) => {
            let unit = artifact.source.contains(&format!("{entry_point}_vcvt("));
            Ok(Some(v_prepass(
                entry_point,
                storage,
                unit,
                V_PREPASS_BLOCKS,
            )))
        }
        (Some(listed), true) => {
            let (unit, blocks) = match listed.launches.first().map(|l| l.abi.grid) {
                Some(Grid::StridedTokenGroups { blocks, .. }) if blocks > 0 => (true, blocks),
                Some(Grid::TokenGroups { .. }) => (false, V_PREPASS_BLOCKS),
                other => {
                    return Err(bad(format!(
                        "starts with grid {other:?}, not token_groups or strided_token_groups of blocks > 0"
                    )))
                }
            };
            let want = v_prepass(entry_point, storage, unit, blocks);
            if *listed != want {
                let json = |p: &Prepass| serde_json::to_value(p).unwrap_or_default();
                let diff = crate::codegen::emit::first_difference(
                    "abi.prepass",
                    &json(listed),
                    &json(&want),
                )
                .unwrap_or_default();
                return Err(bad(format!(
                    "is not the V pre-pass this moa launches: {diff}"
                )));
            }
            Ok(Some(want))
        }
    }
}

impl VPrepass {
    /// The pre-pass kernels of the prefill `entry_point` in `artifact`, loaded from its
    /// module image `m` as [`prepass_of`] names them, or `None` where that prefill takes
    /// V as stored.
    pub fn load(
        m: &Arc<cudarc::driver::CudaModule>,
        artifact: &Artifact,
        entry_point: &str,
    ) -> Result<Option<VPrepass>, CudaError> {
        let Some(pre) = prepass_of(artifact, entry_point)? else {
            return Ok(None);
        };
        let f = |i: usize| {
            let name = &pre.launches[i].entry_point;
            m.load_function(name)
                .map_err(driver(format!("looking up `{name}`")))
        };
        let grid = pre.launches[0].abi.grid;
        Ok(Some(VPrepass {
            first: f(0)?,
            second: f(1)?,
            unit: matches!(grid, Grid::StridedTokenGroups { .. }),
            grid,
        }))
    }

    /// The launch grid of both kernels for a pass of `total` tokens.
    fn dims(&self, total: u32, kv_heads: u32) -> (u32, u32, u32) {
        let s = LaunchSize {
            kv_heads,
            ..LaunchSize::default()
        };
        let [x, y, z] = self.grid.dims_tokens(&s, total);
        (x, y, z)
    }

    /// Queues the pre-pass on `stream` (no synchronisation), the host contract of
    /// `codegen::abi::Arg::VF16`: `v_max` zeroed, then `_vmax(v, row_start, rows, v_max)`
    /// and `_vf16(v, row_start, rows, v_max, v_f16)` on the grid
    /// `[ceil(total / 64), kv_heads]` of 128 threads (`u`: `_vcvt` and `_vfix`, both
    /// `(v, row_start, rows, v_max, v_f16)`, on `[min(ceil(total / 64), max(1,
    /// blocks / kv_heads)), kv_heads]`, `blocks` the manifest's, else
    /// [`V_PREPASS_BLOCKS`]). Addresses are device pointers, so the
    /// engine's raw allocations and `CudaSlice`s both fit; CUDA-graph capture is fine (a
    /// memset and two launches).
    ///
    /// # Safety
    /// `v` holds `total` tokens × `kv_heads` × head_dim 16-bit values, `row_start`
    /// `rows + 1` words whose last is `total`, `v_max` `kv_heads` words and `v_f16` as many
    /// 16-bit values as `v`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn queue(
        &self,
        stream: &Arc<CudaStream>,
        v: u64,
        row_start: u64,
        rows: u32,
        v_max: u64,
        v_f16: u64,
        total: u32,
        kv_heads: u32,
    ) -> Result<(), CudaError> {
        if total == 0 || kv_heads == 0 {
            return Ok(());
        }
        let cfg = LaunchConfig {
            grid_dim: self.dims(total, kv_heads),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the caller's contract (v_max holds kv_heads words).
        unsafe { zero_v_max(stream, v_max, kv_heads) }?;
        // SAFETY: the caller's contract.
        unsafe {
            let mut first = stream.launch_builder(&self.first);
            first.arg(&v).arg(&row_start).arg(&rows).arg(&v_max);
            if self.unit {
                first.arg(&v_f16);
            }
            first.launch(cfg)
        }
        .map_err(driver("launching the V maxima pre-pass"))?;
        // SAFETY: the caller's contract.
        unsafe { self.queue_second(stream, cfg, [v, row_start, v_max, v_f16], rows) }
    }

    /// The `u` form (`_vcvt` + `_vfix`), whose first half the CUDA engine's cache write can
    /// do instead (`ops::OpKernels::v_write` with the f16 copy, after [`zero_v_max`]).
    pub fn unit(&self) -> bool {
        self.unit
    }

    /// The rest of the `u` pre-pass after the cache write's half: `_vfix(v, row_start,
    /// rows, v_max, v_f16)` on [`VPrepass::queue`]'s grid, which converts again only the
    /// KV heads whose E is not 0 (its blocks return at once elsewhere). Errors on the `v`
    /// form, whose `_vf16` needs the maxima of a pass of its own.
    ///
    /// # Safety
    /// As [`VPrepass::queue`], and `v_f16` and `v_max` hold what `_vcvt` would have
    /// written: f16(v) of every value and the per-KV-head largest |v| as bf16 bits.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn queue_fix(
        &self,
        stream: &Arc<CudaStream>,
        v: u64,
        row_start: u64,
        rows: u32,
        v_max: u64,
        v_f16: u64,
        total: u32,
        kv_heads: u32,
    ) -> Result<(), CudaError> {
        if !self.unit {
            return Err(CudaError::InvalidInput(
                "the `v` pre-pass (`_vmax`, `_vf16`) has no half to leave to the cache write; only `u` does".into(),
            ));
        }
        if total == 0 || kv_heads == 0 {
            return Ok(());
        }
        let cfg = LaunchConfig {
            grid_dim: self.dims(total, kv_heads),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the caller's contract.
        unsafe { self.queue_second(stream, cfg, [v, row_start, v_max, v_f16], rows) }
    }

    /// `_vf16` / `_vfix(v, row_start, rows, v_max, v_f16)` on `cfg`: the second kernel of
    /// both [`VPrepass::queue`] and [`VPrepass::queue_fix`].
    ///
    /// # Safety
    /// As [`VPrepass::queue`]; `ptrs` is `[v, row_start, v_max, v_f16]`.
    unsafe fn queue_second(
        &self,
        stream: &Arc<CudaStream>,
        cfg: LaunchConfig,
        ptrs: [u64; 4],
        rows: u32,
    ) -> Result<(), CudaError> {
        let [v, row_start, v_max, v_f16] = ptrs;
        // SAFETY: the caller's contract.
        unsafe {
            stream
                .launch_builder(&self.second)
                .arg(&v)
                .arg(&row_start)
                .arg(&rows)
                .arg(&v_max)
                .arg(&v_f16)
                .launch(cfg)
        }
        .map_err(driver("launching the V f16 pre-pass"))?;
        Ok(())
    }
}

/// Zeroes the `kv_heads` words of V maxima at `v_max` on `stream` (queued, no
/// synchronisation; fine under CUDA-graph capture): before `{prefill}_vmax` / `_vcvt`, or
/// before the first `ops::OpKernels::v_write` of a prefill pass (codegen::abi::Arg::VMax).
///
/// # Safety
/// `v_max` is a device address of at least `kv_heads` words.
pub unsafe fn zero_v_max(
    stream: &Arc<CudaStream>,
    v_max: u64,
    kv_heads: u32,
) -> Result<(), CudaError> {
    stream
        .context()
        .bind_to_thread()
        .map_err(driver("zeroing the V maxima"))?;
    // SAFETY: the caller's contract.
    unsafe {
        cudarc::driver::result::memset_d8_async(v_max, 0, kv_heads as usize * 4, stream.cu_stream())
    }
    .map_err(driver("zeroing the V maxima"))
}

struct LayerKernels {
    prefill: LoadedKernel,
    decode: LoadedKernel,
    /// The `v` prefill variant's pre-pass kernels (`_vmax`, `_vf16`; codegen::abi::Arg::VF16).
    prefill_prepass: Option<VPrepass>,
}

/// One decode step of one layer with every buffer on the device, ready to be launched
/// (many times, e.g. inside a CUDA graph).
pub struct DecodeCall {
    layer: usize,
    rows: u32,
    n_tokens: u32,
    q: DevBuf,
    k_cache: DevBuf,
    v_cache: DevBuf,
    row_pos: CudaSlice<u32>,
    work: CudaSlice<u32>,
    partials: CudaSlice<f32>,
    seg_done: CudaSlice<u32>,
    out: DevBuf,
    n_items: u32,
    /// Slots per work-list chunk (the longest item of a cluster split).
    pub chunk: u32,
    /// Blocks per thread-block cluster (1: equal chunks merged through global memory).
    cluster: u32,
}

impl DecodeCall {
    /// Items in the step's work list (one chunk of one segment each, see
    /// [`DecodeWork`]).
    pub fn n_items(&self) -> u32 {
        self.n_items
    }

    /// Blocks per thread-block cluster of the launch (1: a plain launch).
    pub fn cluster(&self) -> u32 {
        self.cluster
    }

    /// The step's inputs a kernel before the launch may write (benchmarks model that
    /// kernel, `cuda_bench::Producer`): Q `[rows, q_heads, D]`, the K and V caches
    /// `[rows, row_slots, D]`.
    pub fn written_inputs(&self) -> [&DevBuf; 3] {
        [&self.q, &self.k_cache, &self.v_cache]
    }
}

/// The generated kernels of one module, loaded on one GPU.
pub struct CudaAttention {
    module: KernelModule,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    layers: Vec<LayerKernels>,
    /// Blocks of the decode kernel the GPU runs at once (SMs × blocks per SM).
    decode_slots: u32,
    /// The same, plainly and as clusters of 2, 4 and 8 ([`Self::decode_resident`]).
    decode_resident: DecodeSlots,
    /// How decode work lists are cut when no chunk is given ([`cuda_chunk_policy`]).
    chunk_policy: ChunkPolicy,
}

impl CudaAttention {
    /// Generates, compiles (for `arch`) and loads every kernel of `module` on GPU `ordinal`.
    pub fn new(
        module: &KernelModule,
        ordinal: usize,
        arch: &'static str,
    ) -> Result<CudaAttention, CudaError> {
        Self::new_tuned(
            module,
            ordinal,
            arch,
            DecodeTuning::default_for(module.shape.group_size()),
        )
    }

    /// [`Self::new`] with a chosen decode kernel shape.
    pub fn new_tuned(
        module: &KernelModule,
        ordinal: usize,
        arch: &'static str,
        tuning: DecodeTuning,
    ) -> Result<CudaAttention, CudaError> {
        let prefill = PrefillTuning::default_for(module.storage, module.shape.head_dim);
        Self::new_variant(module, ordinal, arch, tuning, prefill)
    }

    /// [`Self::new`] with chosen decode and prefill kernel shapes.
    pub fn new_variant(
        module: &KernelModule,
        ordinal: usize,
        arch: &'static str,
        tuning: DecodeTuning,
        prefill: PrefillTuning,
    ) -> Result<CudaAttention, CudaError> {
        // The library's compile entry, with the same resource check as `moa-compile`: a
        // tuning or plan whose kernels need more shared memory or threads than sm_90
        // allows is refused before NVRTC runs.
        use crate::codegen::{CompileOptions, Compiled, Target};
        let options = CompileOptions {
            cuda_decode: tuning,
            cuda_prefill: prefill,
            ..CompileOptions::default()
        };
        let artifacts = Compiled::from_module(module.clone(), &[Target::Cuda], options)?
            .into_artifacts(Target::Cuda);
        let ctx = catch_unwind(AssertUnwindSafe(|| CudaContext::new(ordinal)))
            .map_err(|p| CudaError::DriverMissing {
                detail: panic_text(p),
            })?
            .map_err(driver(format!("opening GPU {ordinal}")))?;
        // One stream, launches in order: no per-buffer events (they would also break
        // CUDA-graph capture).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver("creating a stream"))?;
        // NVRTC runs one compile per thread; a 32-layer plan compiles in parallel.
        let images = load_images(&artifacts, arch)?;
        let mut functions = std::collections::HashMap::new();
        let mut prepasses = std::collections::HashMap::new();
        for (a, image) in artifacts.iter().zip(images) {
            let m = ctx
                .load_module(image)
                .map_err(driver(format!("loading `{}`", a.path)))?;
            for k in &a.kernels {
                // A prefill that takes V in f16 comes with its pre-pass kernels.
                if let Some(pre) = VPrepass::load(&m, a, &k.entry_point)? {
                    prepasses.insert(k.entry_point.clone(), pre);
                }
                let f = m
                    .load_function(&k.entry_point)
                    .map_err(driver(format!("looking up `{}`", k.entry_point)))?;
                // Blocks get more than 48 KiB of dynamic shared memory only when asked for.
                f.set_attribute(
                    CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    k.abi.dynamic_shared_bytes as i32,
                )
                .map_err(driver(format!(
                    "raising the shared-memory limit of `{}`",
                    k.entry_point
                )))?;
                // Clusters of more than 8 blocks (the `h` decode kernels' 16, the ABI's
                // tiles.cluster) only where the function allows non-portable sizes.
                if k.abi.tiles.cluster.is_some_and(|c| c > MAX_CLUSTER) {
                    f.set_attribute(
                        CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                        1,
                    )
                    .map_err(driver(format!(
                        "allowing non-portable cluster sizes for `{}`",
                        k.entry_point
                    )))?;
                }
                functions.insert(
                    k.entry_point.clone(),
                    LoadedKernel {
                        function: f,
                        abi: k.abi.clone(),
                        name: k.entry_point.clone(),
                    },
                );
            }
        }
        let (s, d) = (module.storage, module.shape.head_dim);
        let mut take = |name: String| {
            functions
                .remove(&name)
                .ok_or(CudaError::MissingKernel(name))
        };
        let layers = module
            .layers
            .iter()
            .map(|l| {
                Ok(LayerKernels {
                    prefill: take(prefill_name(s, d, l.layer))?,
                    decode: take(decode_name(s, d, l.layer))?,
                    prefill_prepass: prepasses.remove(&prefill_name(s, d, l.layer)),
                })
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        let decode_slots = match layers.first() {
            Some(l) => {
                let sms = ctx
                    .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                    .map_err(driver("reading the SM count"))?;
                let per_sm = l
                    .decode
                    .function
                    .occupancy_max_active_blocks_per_multiprocessor(
                        l.decode.abi.block[0],
                        l.decode.abi.dynamic_shared_bytes as usize,
                        None,
                    )
                    .map_err(driver("reading the decode kernel's occupancy"))?;
                (sms.max(1) as u32) * per_sm.max(1)
            }
            None => 1,
        };
        let mut gpu = CudaAttention {
            module: module.clone(),
            ctx,
            stream,
            layers,
            decode_slots,
            decode_resident: DecodeSlots::estimate(decode_slots),
            chunk_policy: cuda_chunk_policy(module.shape.group_size()),
        };
        // Resident clusters as the driver counts them (sm_90; elsewhere, or if the query
        // fails, the estimate stays: cluster policies then fall back to plain lists only
        // where the estimate says so).
        if !gpu.layers.is_empty() {
            let mut clusters = gpu.decode_resident.cluster_blocks;
            for (i, size) in [2u32, 4, MAX_CLUSTER].into_iter().enumerate() {
                match gpu.decode_max_active_clusters(0, size) {
                    Ok(n) if n > 0 => clusters[i] = n * size,
                    _ => {}
                }
            }
            gpu.decode_resident.cluster_blocks = clusters;
            // Clusters of 16 only for kernels that merge in them (`h`); the estimate's 0
            // stays if the driver does not answer, so no policy builds them.
            if gpu.layers[0].decode.max_cluster() >= MAX_CLUSTER_WIDE {
                if let Ok(n) = gpu.decode_max_active_clusters(0, MAX_CLUSTER_WIDE) {
                    gpu.decode_resident.wide_blocks = n * MAX_CLUSTER_WIDE;
                }
            }
        }
        Ok(gpu)
    }

    /// The lowered module (model shape, storage type, per-layer specs) the kernels were
    /// built for.
    pub fn module(&self) -> &KernelModule {
        &self.module
    }

    /// The stream every launch and copy of this executor is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The CUDA context of the GPU it was opened on.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Decode blocks resident at once on this GPU (the work list's wave size).
    pub fn decode_slots(&self) -> u32 {
        self.decode_slots
    }

    /// Decode blocks resident at once, plainly and as clusters of 2, 4 and 8, and of 16
    /// for the `h` kernels (the driver's `cuOccupancyMaxActiveClusters` of layer 0's
    /// kernel where it answers).
    pub fn decode_resident(&self) -> DecodeSlots {
        self.decode_resident
    }

    /// Thread-block clusters of `cluster` blocks of `layer`'s decode kernel that the GPU
    /// holds at once (`cuOccupancyMaxActiveClusters`; a cluster must fit in one GPC, so
    /// this can be less than [`Self::decode_slots`] / `cluster`). `cluster` 1 to the
    /// kernel's [`LoadedKernel::max_cluster`] (8, or 16 for the `h` kernels).
    pub fn decode_max_active_clusters(&self, layer: usize, cluster: u32) -> Result<u32, CudaError> {
        use cudarc::driver::sys;
        let k = &self.layer(layer)?.decode;
        let max = k.max_cluster();
        if !(1..=max).contains(&cluster) {
            return Err(CudaError::InvalidInput(format!(
                "clusters of {cluster} blocks: 1 to {max}"
            )));
        }
        let mut attr = cluster_attribute(cluster);
        let config = sys::CUlaunchConfig {
            gridDimX: cluster * self.decode_slots.max(1),
            gridDimY: 1,
            gridDimZ: 1,
            blockDimX: k.abi.block[0],
            blockDimY: k.abi.block[1],
            blockDimZ: k.abi.block[2],
            sharedMemBytes: k.abi.dynamic_shared_bytes,
            hStream: self.stream.cu_stream(),
            attrs: &mut attr,
            numAttrs: 1,
        };
        self.ctx
            .bind_to_thread()
            .map_err(driver("querying resident clusters"))?;
        let mut n: std::ffi::c_int = 0;
        // SAFETY: `n`, `config` and `attr` outlive the call; the function is loaded.
        unsafe { sys::cuOccupancyMaxActiveClusters(&mut n, k.function.cu_function(), &config) }
            .result()
            .map_err(driver("querying resident clusters"))?;
        Ok(n.max(0) as u32)
    }

    /// The chunk policy of decode work lists built without an explicit chunk.
    pub fn chunk_policy(&self) -> ChunkPolicy {
        self.chunk_policy
    }

    /// Replaces the chunk policy (benchmarks and checks of a candidate policy; the
    /// default is [`cuda_chunk_policy`] of the model's GQA group).
    pub fn set_chunk_policy(&mut self, policy: ChunkPolicy) {
        self.chunk_policy = policy;
    }

    /// Uploads f32 host values converted to the storage type.
    pub fn upload(&self, data: &[f32]) -> Result<DevBuf, CudaError> {
        let up = driver("uploading an input");
        Ok(match self.module.storage {
            StorageType::F32 => DevBuf::F32(self.stream.clone_htod(data).map_err(up)?),
            StorageType::F16 => {
                let bits: Vec<u16> = data
                    .iter()
                    .map(|&x| half::f16::from_f32(x).to_bits())
                    .collect();
                DevBuf::Half(self.stream.clone_htod(&bits).map_err(up)?)
            }
            StorageType::Bf16 => {
                let bits: Vec<u16> = data
                    .iter()
                    .map(|&x| half::bf16::from_f32(x).to_bits())
                    .collect();
                DevBuf::Half(self.stream.clone_htod(&bits).map_err(up)?)
            }
        })
    }

    /// An uninitialised-content tensor of `len` elements (zeros), for benchmarks that fill
    /// it on the device.
    pub fn zeros(&self, len: usize) -> Result<DevBuf, CudaError> {
        let up = driver("allocating a tensor");
        Ok(match self.module.storage {
            StorageType::F32 => DevBuf::F32(self.stream.alloc_zeros(len).map_err(up)?),
            _ => DevBuf::Half(self.stream.alloc_zeros(len).map_err(up)?),
        })
    }

    /// An output buffer filled with NaN, so an element no kernel writes fails the check.
    fn poisoned(&self, len: usize) -> Result<DevBuf, CudaError> {
        let up = driver("allocating an output");
        Ok(match self.module.storage {
            StorageType::F32 => {
                DevBuf::F32(self.stream.clone_htod(&vec![f32::NAN; len]).map_err(up)?)
            }
            StorageType::F16 => DevBuf::Half(
                self.stream
                    .clone_htod(&vec![half::f16::NAN.to_bits(); len])
                    .map_err(up)?,
            ),
            StorageType::Bf16 => DevBuf::Half(
                self.stream
                    .clone_htod(&vec![half::bf16::NAN.to_bits(); len])
                    .map_err(up)?,
            ),
        })
    }

    fn download(&self, buf: &DevBuf) -> Result<Vec<f32>, CudaError> {
        let down = driver("downloading an output");
        Ok(match buf {
            DevBuf::F32(s) => self.stream.clone_dtoh(s).map_err(down)?,
            DevBuf::Half(s) => {
                let bits = self.stream.clone_dtoh(s).map_err(down)?;
                match self.module.storage {
                    StorageType::Bf16 => bits
                        .into_iter()
                        .map(|b| half::bf16::from_bits(b).to_f32())
                        .collect(),
                    _ => bits
                        .into_iter()
                        .map(|b| half::f16::from_bits(b).to_f32())
                        .collect(),
                }
            }
        })
    }

    /// The loaded (prefill, decode) kernels of `layer`, for engines that launch them on
    /// their own buffers (`cuda::engine`).
    pub fn layer_kernels(&self, layer: usize) -> Result<(&LoadedKernel, &LoadedKernel), CudaError> {
        let k = self.layer(layer)?;
        Ok((&k.prefill, &k.decode))
    }

    /// The pre-pass kernels of `layer`'s prefill where it takes V in f16 (the `v`
    /// variant, `codegen::abi::Arg::VF16`), else `None`: engines that launch the prefill
    /// on their own buffers queue it before the prefill ([`VPrepass::queue`]).
    pub fn prefill_prepass(&self, layer: usize) -> Result<Option<&VPrepass>, CudaError> {
        Ok(self.layer(layer)?.prefill_prepass.as_ref())
    }

    fn layer(&self, layer: usize) -> Result<&LayerKernels, CudaError> {
        self.layers
            .get(layer)
            .ok_or_else(|| CudaError::InvalidInput(format!("layer {layer} out of range")))
    }

    /// Prefill of one layer over a packed ragged batch (f32 host values, converted to the
    /// storage type). Shapes as in `reference::prefill_ref`; returns `[total, q_heads, D]`.
    #[allow(clippy::too_many_arguments)]
    pub fn prefill(
        &self,
        layer: usize,
        n_tokens: u32,
        row_start: &[u32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<Vec<f32>, CudaError> {
        let s = &self.module.shape;
        let (hq, hkv, d) = (s.q_heads as usize, s.kv_heads as usize, s.head_dim as usize);
        let kernels = self.layer(layer)?;
        let rows = row_start.len().saturating_sub(1);
        let total = row_start.last().copied().unwrap_or(0) as usize;
        if row_start.windows(2).any(|w| w[1] < w[0])
            || q.len() != total * hq * d
            || k.len() != total * hkv * d
            || v.len() != k.len()
        {
            return Err(CudaError::InvalidInput(
                "prefill tensors do not match row_start".into(),
            ));
        }
        let max_len = row_start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let out = self.poisoned(total * hq * d)?;
        if rows == 0 || max_len == 0 {
            return self.download(&out);
        }
        let (qb, kb, vb) = (self.upload(q)?, self.upload(k)?, self.upload(v)?);
        let starts = self
            .stream
            .clone_htod(row_start)
            .map_err(driver("uploading row_start"))?;
        let size = LaunchSize {
            rows: rows as u32,
            q_heads: s.q_heads,
            kv_heads: s.kv_heads,
            max_row_len: max_len,
            ..LaunchSize::default()
        };
        // The `v` variant: V in f16 by its pre-pass (the contract of codegen::abi::Arg::VF16).
        let v16 = self
            .stream
            .alloc_zeros::<u16>(if kernels.prefill_prepass.is_some() {
                v.len()
            } else {
                1
            })
            .map_err(driver("allocating the f16 copy of V"))?;
        let vmax = self
            .stream
            .alloc_zeros::<u32>(hkv)
            .map_err(driver("allocating the V maxima"))?;
        if let (Some(pre), DevBuf::Half(v_bits)) = (&kernels.prefill_prepass, &vb) {
            use cudarc::driver::DevicePtr;
            let st = &self.stream;
            // SAFETY: V holds `total` tokens of kv_heads × head_dim values, starts rows + 1
            // words ending at total, vmax kv_heads words, v16 as many 16-bit values as V.
            unsafe {
                pre.queue(
                    st,
                    v_bits.device_ptr(st).0,
                    starts.device_ptr(st).0,
                    rows as u32,
                    vmax.device_ptr(st).0,
                    v16.device_ptr(st).0,
                    total as u32,
                    s.kv_heads,
                )
            }?;
        }
        let v16 = DevBuf::Half(v16);
        let args = [
            (Arg::Q, ArgVal::Tensor(&qb)),
            (Arg::K, ArgVal::Tensor(&kb)),
            (Arg::V, ArgVal::Tensor(&vb)),
            (Arg::VF16, ArgVal::Tensor(&v16)),
            (Arg::VMax, ArgVal::U32s(&vmax)),
            (Arg::RowStart, ArgVal::U32s(&starts)),
            (Arg::Out, ArgVal::Tensor(&out)),
            (Arg::NTokens, ArgVal::Value(n_tokens)),
            (Arg::Rows, ArgVal::Value(rows as u32)),
        ];
        // CUDA limits grid y and z to 65535 (the prefill grid puts rows and query tiles there).
        if kernels.prefill.abi.grid.dims(&size)[1..]
            .iter()
            .any(|&g| g > 65_535)
        {
            return Err(CudaError::InvalidInput(format!(
                "prefill of {rows} rows of up to {max_len} tokens exceeds the launch grid \
                 (grid {:?}; y and z at most 65535)",
                kernels.prefill.abi.grid.dims(&size)
            )));
        }
        // SAFETY: every tensor has the size checked above.
        unsafe { kernels.prefill.launch(&self.stream, &args, &size) }?;
        self.stream
            .synchronize()
            .map_err(driver("running prefill"))?;
        self.download(&out)
    }

    /// Uploads one decode step of one layer (cache laid out as `layout`, rows at
    /// `row_pos`) and builds its work list, in chunks of `chunk` slots (rounded up to the
    /// kernel's key tile) or, with `None`, as [`Self::chunk_policy`] cuts it.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_decode(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
        q: DevBuf,
        k_cache: DevBuf,
        v_cache: DevBuf,
        chunk: Option<u32>,
    ) -> Result<DecodeCall, CudaError> {
        let split = chunk.map(DecodeSplit::chunks);
        self.prepare_decode_split(layer, layout, row_pos, q, k_cache, v_cache, split)
    }

    /// How [`Self::chunk_policy`] cuts a decode step of `layer` (layout, rows at `row_pos`).
    pub fn decode_split(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
    ) -> Result<DecodeSplit, CudaError> {
        let tile = self
            .layer(layer)?
            .decode
            .abi
            .tiles
            .k_tile
            .unwrap_or(1)
            .max(1);
        Ok(choose_split_in(
            self.chunk_policy,
            &self.decode_layout(layer, layout)?,
            row_pos,
            tile,
            self.decode_resident,
            self.module.shape.group_size(),
        ))
    }

    /// The layout `layer`'s decode work lists are built over: `layout` itself, or with
    /// sub-groups ([`LoadedKernel::sub_groups`]) each KV head's segment repeated once per
    /// sub-group ([`CacheLayout::sub_grouped`]).
    pub fn decode_layout(
        &self,
        layer: usize,
        layout: &CacheLayout,
    ) -> Result<CacheLayout, CudaError> {
        Ok(layout.sub_grouped(self.layer(layer)?.decode.sub_groups()))
    }

    /// [`Self::prepare_decode`] with a chosen split: equal chunks (`cluster` 1; `chunk`
    /// rounded up to the key tile) or one thread-block cluster of `cluster` items per
    /// segment (2 to the kernel's [`LoadedKernel::max_cluster`]); `None`:
    /// [`Self::decode_split`].
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_decode_split(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
        q: DevBuf,
        k_cache: DevBuf,
        v_cache: DevBuf,
        split: Option<DecodeSplit>,
    ) -> Result<DecodeCall, CudaError> {
        let s = &self.module.shape;
        let (hq, d, group) = (
            s.q_heads as usize,
            s.head_dim as usize,
            s.group_size() as usize,
        );
        let kernels = self.layer(layer)?;
        let rows = row_pos.len();
        let len = |b: &DevBuf| match b {
            DevBuf::F32(x) => x.len(),
            DevBuf::Half(x) => x.len(),
        };
        let slots = layout.row_slots as usize;
        if len(&q) != rows * hq * d
            || len(&k_cache) != rows * slots * d
            || len(&v_cache) != len(&k_cache)
            || layout.segments.len() != s.kv_heads as usize
        {
            return Err(CudaError::InvalidInput(format!(
                "decode tensors do not match the cache layout: q {} (want rows {rows} x {hq} x {d}), \
                 k/v cache {} / {} (want rows x row_slots {slots} x {d})",
                len(&q),
                len(&k_cache),
                len(&v_cache)
            )));
        }
        if rows == 0 {
            return Err(CudaError::InvalidInput("decode of zero rows".into()));
        }
        let tile = kernels.decode.abi.tiles.k_tile.unwrap_or(1).max(1);
        let split = match split {
            Some(DecodeSplit {
                chunk,
                cluster,
                last_extra,
                ..
            }) if cluster <= 1 => DecodeSplit {
                last_extra,
                ..DecodeSplit::chunks(chunk.max(1).div_ceil(tile) * tile)
            },
            Some(DecodeSplit { cluster, .. }) if cluster > kernels.decode.max_cluster() => {
                return Err(CudaError::InvalidInput(format!(
                    "decode clusters of {cluster} blocks: at most {} for `{}`",
                    kernels.decode.max_cluster(),
                    kernels.decode.name
                )))
            }
            Some(sp) => sp,
            None => self.decode_split(layer, layout, row_pos)?,
        };
        // With sub-groups, a segment per (row, KV head, sub-group): `seg_done` below holds a
        // counter for each, the partials (items × group × (D + 2)) more than enough.
        let work = DecodeWork::build_split(
            &layout.sub_grouped(kernels.decode.sub_groups()),
            row_pos,
            split,
            tile,
        );
        let chunk = work.chunk;
        let up = |what: &'static str| driver(format!("uploading {what}"));
        let row_pos_d = self.stream.clone_htod(row_pos).map_err(up("row_pos"))?;
        let work_d = self
            .stream
            .clone_htod(&work.flat())
            .map_err(up("the work list"))?;
        let partials = self
            .stream
            .alloc_zeros::<f32>((work.items.len() * group * (d + 2)).max(1))
            .map_err(up("decode partials"))?;
        let seg_done = self
            .stream
            .alloc_zeros::<u32>(work.seg_chunks.len())
            .map_err(up("seg_done"))?;
        let out = self.poisoned(rows * hq * d)?;
        Ok(DecodeCall {
            layer,
            rows: rows as u32,
            n_tokens: layout.n_tokens,
            q,
            k_cache,
            v_cache,
            row_pos: row_pos_d,
            work: work_d,
            partials,
            seg_done,
            out,
            n_items: work.n_items(),
            chunk,
            cluster: split.cluster,
        })
    }

    /// Queues one decode launch of a prepared call (no synchronisation).
    pub fn launch_decode(&self, call: &DecodeCall) -> Result<(), CudaError> {
        self.launch_decode_with(call, false)
    }

    /// [`Self::launch_decode`], optionally as a programmatic dependent launch
    /// ([`LoadedKernel::launch_with`]): the decode kernel loads its work item, then waits
    /// for the previous grid (`griddepcontrol.wait`) before reading anything else, so the
    /// work list must not be written by the kernel launched just before it.
    pub fn launch_decode_with(
        &self,
        call: &DecodeCall,
        programmatic: bool,
    ) -> Result<(), CudaError> {
        let kernels = self.layer(call.layer)?;
        let s = &self.module.shape;
        let size = LaunchSize {
            rows: call.rows,
            q_heads: s.q_heads,
            kv_heads: s.kv_heads,
            n_items: call.n_items,
            ..LaunchSize::default()
        };
        let args = [
            (Arg::Q, ArgVal::Tensor(&call.q)),
            (Arg::KCache, ArgVal::Tensor(&call.k_cache)),
            (Arg::VCache, ArgVal::Tensor(&call.v_cache)),
            (Arg::RowPos, ArgVal::U32s(&call.row_pos)),
            (Arg::Work, ArgVal::U32s(&call.work)),
            (Arg::Partials, ArgVal::F32s(&call.partials)),
            (Arg::SegDone, ArgVal::U32s(&call.seg_done)),
            (Arg::Out, ArgVal::Tensor(&call.out)),
            (Arg::NTokens, ArgVal::Value(call.n_tokens)),
            (Arg::NItems, ArgVal::Value(call.n_items)),
        ];
        // SAFETY: prepare_decode checked every tensor against the layout and sized the
        // work list, partials and counters from the same work list; the decode kernels
        // wait for the previous grid before touching anything but the work list.
        unsafe {
            kernels
                .decode
                .launch_clustered(&self.stream, &args, &size, programmatic, call.cluster)
        }
    }

    /// The output of a prepared call, after its launches finished.
    pub fn decode_output(&self, call: &DecodeCall) -> Result<Vec<f32>, CudaError> {
        self.stream
            .synchronize()
            .map_err(driver("running decode"))?;
        self.download(&call.out)
    }

    /// One decode step of one layer over a cache laid out as `layout` (one launch: the
    /// work list's chunks merge themselves). Shapes as in `reference::decode_ref`;
    /// returns `[rows, q_heads, D]`.
    pub fn decode(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, CudaError> {
        self.decode_chunked(layer, layout, row_pos, q, k_cache, v_cache, None)
    }

    /// [`Self::decode`] with a chosen chunk size (tests force multi-chunk segments).
    #[allow(clippy::too_many_arguments)]
    pub fn decode_chunked(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
        chunk: Option<u32>,
    ) -> Result<Vec<f32>, CudaError> {
        if row_pos.is_empty() {
            return Ok(Vec::new());
        }
        let call = self.prepare_decode(
            layer,
            layout,
            row_pos,
            self.upload(q)?,
            self.upload(k_cache)?,
            self.upload(v_cache)?,
            chunk,
        )?;
        self.launch_decode(&call)?;
        self.decode_output(&call)
    }

    /// [`Self::prefill`] on a test case's layer, N, rows and Q/K/V; O as
    /// `[total_tokens, q_heads, head_dim]`, errors as there.
    pub fn run_prefill_case(&self, c: &PrefillCase) -> Result<Vec<f32>, CudaError> {
        self.prefill(c.layer, c.n_tokens, &c.row_start, &c.q, &c.k, &c.v)
    }

    /// [`Self::decode`] on a test case's layer, cache layout, row positions, Q and caches;
    /// O as `[rows, q_heads, head_dim]`, errors as there.
    pub fn run_decode_case(&self, c: &DecodeCase) -> Result<Vec<f32>, CudaError> {
        self.decode(c.layer, &c.layout, &c.row_pos, &c.q, &c.k_cache, &c.v_cache)
    }
}

/// The outcome of one case on the GPU.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name: layer, phase, row lengths or positions, N.
    pub name: String,
    /// Largest absolute difference from the CPU reference over the output (infinite
    /// where the kernel wrote NaN).
    pub max_error: f32,
    /// The storage type's bound ([`tolerance`]: 1e-4 f32, 2e-3 f16, 3e-3 bf16).
    pub tolerance: f32,
    /// `max_error <= tolerance`.
    pub passed: bool,
    /// Where the error is largest, when the case failed.
    pub detail: Option<String>,
}

/// Every case of a [`check`] run.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The module's storage type the kernels ran in.
    pub storage: StorageType,
    /// The architecture they were compiled for, e.g. `sm_90a`.
    pub arch: String,
    /// Every case's outcome, prefill and decode of every layer.
    pub cases: Vec<CaseResult>,
}

impl CheckReport {
    /// Whether every case is within its tolerance.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }
    /// The cases past their tolerance.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.passed)
    }
    /// The largest [`CaseResult::max_error`] over all cases (0 with none).
    pub fn max_error(&self) -> f32 {
        self.cases.iter().map(|c| c.max_error).fold(0.0, f32::max)
    }
}

/// Random batches beyond the standard cases: ragged prefill rows up to 300 tokens with N
/// between the longest row and twice it, and decode rows anywhere in 0..3000 (before,
/// at and long after the ring wraps) with N in 1..=3000.
pub fn random_cases(module: &KernelModule, seed: u64) -> (Vec<PrefillCase>, Vec<DecodeCase>) {
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for layer in 0..module.layers.len() {
        let (p, d) = random_layer_cases(module, layer, seed);
        prefill.push(p);
        decode.push(d);
    }
    (prefill, decode)
}

/// The random cases of one layer (its own generator, so layers build in parallel).
pub fn random_layer_cases(
    module: &KernelModule,
    layer: usize,
    seed: u64,
) -> (PrefillCase, DecodeCase) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d6f_615f_6375_6461 ^ ((layer as u64) << 40));
    let lens: Vec<u32> = (0..3).map(|_| rng.random_range(1..=300)).collect();
    let max = lens.iter().copied().max().unwrap_or(1);
    let n = max + rng.random_range(0..=max);
    let p = prefill_case(module, layer, &lens, n, rng.random());
    let pos: Vec<u32> = (0..3).map(|_| rng.random_range(0..3000)).collect();
    let n = rng.random_range(1..=3000);
    let d = decode_case(module, layer, &pos, n, rng.random());
    (p, d)
}

/// Runs the standard cases and [`random_cases`] of every layer of `module` on GPU 0
/// (compiled for [`DEFAULT_ARCH`]) against the CPU reference.
pub fn check(module: &KernelModule, seed: u64) -> Result<CheckReport, CudaError> {
    check_on(module, seed, 0, DEFAULT_ARCH)
}

/// [`check`] on a chosen GPU and architecture.
pub fn check_on(
    module: &KernelModule,
    seed: u64,
    ordinal: usize,
    arch: &'static str,
) -> Result<CheckReport, CudaError> {
    check_tuned(
        module,
        seed,
        ordinal,
        arch,
        DecodeTuning::default_for(module.shape.group_size()),
    )
}

/// [`check_on`] with a chosen decode kernel shape.
pub fn check_tuned(
    module: &KernelModule,
    seed: u64,
    ordinal: usize,
    arch: &'static str,
    tuning: DecodeTuning,
) -> Result<CheckReport, CudaError> {
    check_variant(
        module,
        seed,
        ordinal,
        arch,
        tuning,
        PrefillTuning::default_for(module.storage, module.shape.head_dim),
        cuda_chunk_policy(module.shape.group_size()),
    )
}

/// [`check_on`] with chosen decode and prefill kernel shapes and decode chunk policy (the
/// runtime-chunk decode cases use the policy's chunk; each case also runs in chunks of one
/// key tile).
pub fn check_variant(
    module: &KernelModule,
    seed: u64,
    ordinal: usize,
    arch: &'static str,
    tuning: DecodeTuning,
    prefill: PrefillTuning,
    chunk_policy: ChunkPolicy,
) -> Result<CheckReport, CudaError> {
    let mut gpu = CudaAttention::new_variant(module, ordinal, arch, tuning, prefill)?;
    gpu.set_chunk_policy(chunk_policy);
    let tol = tolerance(module.storage);
    let (hq, d) = (
        module.shape.q_heads as usize,
        module.shape.head_dim as usize,
    );
    // The CPU reference dominates a check of a 32-layer plan: build the layers' cases on
    // every core (the cases of `standard_cases` and `random_cases`, layer by layer).
    let built: Vec<(Vec<PrefillCase>, Vec<DecodeCase>)> = {
        use rayon::prelude::*;
        (0..module.layers.len())
            .into_par_iter()
            .map(|l| {
                let (mut p, mut d) = standard_layer_cases(module, l, seed);
                let (rp, rd) = random_layer_cases(module, l, seed);
                p.push(rp);
                d.push(rd);
                (p, d)
            })
            .collect()
    };
    let (mut prefill, mut decode): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for (p, d) in built {
        prefill.extend(p);
        decode.extend(d);
    }

    let programmatic = gpu
        .ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
        .map_err(driver("reading the compute capability"))?
        >= 9;
    let writer = super::cuda_bench::Producer::new(&gpu.ctx, &gpu.stream)?;
    let mut cases = Vec::new();
    let mut record = |name: &str, actual: &[f32], expected: &[f32]| {
        let (max_error, _) = max_abs_error(actual, expected);
        let verdict = check_output(name, hq, d, actual, expected, tol);
        cases.push(CaseResult {
            name: name.to_string(),
            max_error,
            tolerance: tol,
            passed: verdict.is_ok(),
            detail: verdict.err(),
        });
    };
    for c in &prefill {
        let out = gpu.run_prefill_case(c)?;
        record(&c.name, &out, &c.expected);
    }
    for c in &decode {
        let out = gpu.run_decode_case(c)?;
        record(&c.name, &out, &c.expected);
        // Chunks of one key tile: every segment longer than a tile merges its chunks.
        let out = gpu.decode_chunked(
            c.layer,
            &c.layout,
            &c.row_pos,
            &c.q,
            &c.k_cache,
            &c.v_cache,
            Some(1),
        )?;
        record(&format!("{} chunk=tile", c.name), &out, &c.expected);
        if programmatic {
            // Programmatic dependent launches (Hopper and newer): the same call three
            // times back to back, the second and third scheduled in their predecessor's
            // tail. Each must wait for the previous grid's merge and re-armed counters: a
            // launch that counted a leftover arrival would merge early and write a wrong O.
            let call = gpu.prepare_decode(
                c.layer,
                &c.layout,
                &c.row_pos,
                gpu.upload(&c.q)?,
                gpu.upload(&c.k_cache)?,
                gpu.upload(&c.v_cache)?,
                Some(1),
            )?;
            gpu.launch_decode(&call)?;
            gpu.launch_decode_with(&call, true)?;
            gpu.launch_decode_with(&call, true)?;
            let out = gpu.decode_output(&call)?;
            record(&format!("{} chunk=tile pdl", c.name), &out, &c.expected);
            // After the kernel that writes the step's Q and current K/V slots (the cache
            // write's shape), launched programmatically: the decode issues its first tiles
            // before that kernel is done (DecodeTuning::early_loads), so those inputs start
            // as NaN and only the writer's values may reach O. Runtime chunks and chunks
            // of one key tile (the current slot then in a chunk's first tile).
            // (A layer whose cache holds no slot has nothing to write.)
            let chunks: &[Option<u32>] = if c.k_cache.is_empty() {
                &[]
            } else {
                &[None, Some(1)]
            };
            for &chunk in chunks {
                let (call, qkv, slots) = after_write_inputs(&gpu, c, chunk)?;
                // SAFETY: current_slots computed every slot offset from the call's layout.
                unsafe {
                    writer.launch(
                        &qkv,
                        call.written_inputs(),
                        &slots,
                        [
                            c.row_pos.len() as u32,
                            module.shape.q_heads,
                            module.shape.kv_heads,
                            module.shape.head_dim,
                        ],
                        module.storage,
                        true,
                    )?;
                }
                gpu.launch_decode_with(&call, true)?;
                let out = gpu.decode_output(&call)?;
                let chunk_name = if chunk.is_some() { " chunk=tile" } else { "" };
                record(
                    &format!("{}{chunk_name} pdl after write", c.name),
                    &out,
                    &c.expected,
                );
            }
            // Thread-block clusters (sm_90): every segment one cluster of 2 or of
            // MAX_CLUSTER blocks merging through distributed shared memory, with empty
            // items where a segment has fewer written slots than blocks. Then whole
            // segments packed into clusters (DecodeWork::build_packed), in chunks of one
            // key tile: segments of one to `size` items share a cluster, spare blocks are
            // empty items (clusters of 4 and MAX_CLUSTER). Each MAX_CLUSTER list also runs
            // as a programmatic launch right after a plain one. A kernel that merges in
            // clusters of 16 (`h`, the ABI's tiles.cluster) runs the same lists of 16 too.
            let widest = gpu.layer(c.layer)?.decode.max_cluster();
            let tile = gpu
                .layer(c.layer)?
                .decode
                .abi
                .tiles
                .k_tile
                .unwrap_or(1)
                .max(1);
            let mut sizes = vec![2, MAX_CLUSTER];
            if widest > MAX_CLUSTER {
                sizes.push(widest);
            }
            let mut splits: Vec<(DecodeSplit, String)> = sizes
                .iter()
                .map(|&z| (DecodeSplit::clusters(z, 0), format!("cluster={z}")))
                .collect();
            sizes[0] = 4;
            splits.extend(
                sizes
                    .iter()
                    .map(|&z| (DecodeSplit::packed(z, 1), format!("packed={z}"))),
            );
            // Plain lists whose segments' last chunk is one or three tiles longer than their
            // one-tile chunks, and whose segments' tiles spread evenly over chunks of up to
            // three tiles (DecodeWork::build_last_longer): items of unequal lengths on the
            // L2 merge.
            splits.extend([(1, 1), (1, 3), (3, 0)].map(|(n, x)| {
                (
                    DecodeSplit::last_longer(n * tile, x),
                    format!("chunk={n}tiles last+{x}"),
                )
            }));
            for (split, label) in splits {
                let size = split.cluster;
                let call = gpu.prepare_decode_split(
                    c.layer,
                    &c.layout,
                    &c.row_pos,
                    gpu.upload(&c.q)?,
                    gpu.upload(&c.k_cache)?,
                    gpu.upload(&c.v_cache)?,
                    Some(split),
                )?;
                gpu.launch_decode(&call)?;
                if size >= MAX_CLUSTER {
                    gpu.launch_decode_with(&call, true)?;
                }
                let out = gpu.decode_output(&call)?;
                record(&format!("{} {label}", c.name), &out, &c.expected);
            }
        }
    }
    Ok(CheckReport {
        storage: module.storage,
        arch: arch.to_string(),
        cases,
    })
}

/// A decode call of case `c` whose Q and current-token K/V slots hold NaN, and what a
/// [`super::cuda_bench::Producer`] needs to write the case's values there: QKV f32
/// `[rows, q_heads + 2 kv_heads, head_dim]` and the slots' element offsets.
fn after_write_inputs(
    gpu: &CudaAttention,
    c: &DecodeCase,
    chunk: Option<u32>,
) -> Result<(DecodeCall, CudaSlice<f32>, CudaSlice<u64>), CudaError> {
    use super::cuda_bench::{current_slots, NO_SLOT};
    let shape = &gpu.module.shape;
    let (hq, hkv, d) = (
        shape.q_heads as usize,
        shape.kv_heads as usize,
        shape.head_dim as usize,
    );
    let rows = c.row_pos.len();
    let slots = current_slots(&c.layout, &c.row_pos, shape.head_dim);
    let (mut k, mut v) = (c.k_cache.clone(), c.v_cache.clone());
    let mut qkv = vec![0.0f32; rows * (hq + 2 * hkv) * d];
    for r in 0..rows {
        let heads = r * (hq + 2 * hkv);
        qkv[heads * d..(heads + hq) * d].copy_from_slice(&c.q[r * hq * d..(r + 1) * hq * d]);
        for h in 0..hkv {
            let off = slots[r * hkv + h];
            if off == NO_SLOT {
                continue;
            }
            let off = off as usize;
            let (kd, vd) = ((heads + hq + h) * d, (heads + hq + hkv + h) * d);
            qkv[kd..kd + d].copy_from_slice(&c.k_cache[off..off + d]);
            qkv[vd..vd + d].copy_from_slice(&c.v_cache[off..off + d]);
            k[off..off + d].fill(f32::NAN);
            v[off..off + d].fill(f32::NAN);
        }
    }
    let q = vec![f32::NAN; c.q.len()];
    let call = gpu.prepare_decode(
        c.layer,
        &c.layout,
        &c.row_pos,
        gpu.upload(&q)?,
        gpu.upload(&k)?,
        gpu.upload(&v)?,
        chunk,
    )?;
    let up = driver("uploading the writer's inputs");
    Ok((
        call,
        gpu.stream.clone_htod(&qkv).map_err(up)?,
        gpu.stream
            .clone_htod(&slots)
            .map_err(driver("uploading the writer's slots"))?,
    ))
}

/// The launch attribute of thread-block clusters of `cluster` blocks along x (sm_90), as
/// both the clustered launch and the resident-cluster query pass it to the driver.
fn cluster_attribute(cluster: u32) -> cudarc::driver::sys::CUlaunchAttribute {
    use cudarc::driver::sys;
    let mut attr = sys::CUlaunchAttribute {
        id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION,
        pad: [0; 4],
        // SAFETY: a plain-old-data union; every field is valid when zeroed.
        value: unsafe { std::mem::zeroed() },
    };
    attr.value.clusterDim.x = cluster;
    attr.value.clusterDim.y = 1;
    attr.value.clusterDim.z = 1;
    attr
}

#[cfg(test)]
mod tests {
    use super::{cubin_dir_of, v_prepass_grid, CudaError, V_PREPASS_BLOCKS};

    /// `MOA_CUBIN_DIR` unset or empty: no folder; a folder: it; anything else (a typo) an
    /// error naming the variable and the value, not a silent fall back to NVRTC.
    #[test]
    fn the_cubin_folder_must_be_a_folder() {
        assert!(cubin_dir_of(None).unwrap().is_none());
        assert!(cubin_dir_of(Some("".into())).unwrap().is_none());
        let here = std::env::temp_dir();
        assert_eq!(cubin_dir_of(Some(here.clone().into())).unwrap(), Some(here));
        let err = cubin_dir_of(Some("/no/such/cubins".into())).unwrap_err();
        assert!(matches!(err, CudaError::CubinDir(_)));
        let text = err.to_string();
        assert!(
            text.contains("MOA_CUBIN_DIR") && text.contains("/no/such/cubins"),
            "{text}"
        );
    }

    /// The `u` pre-pass takes about one wave of blocks however long the batch, at least one
    /// per KV head and never more than one per 64-token group; `v` keeps one per group.
    #[test]
    fn v_prepass_grids() {
        // Vicuna-7B at 4 x 4096 tokens: 256 groups, 32 blocks per head (8 groups each).
        assert_eq!(v_prepass_grid(16384, 32, true), (32, 32, 1));
        assert_eq!(v_prepass_grid(16384, 32, false), (256, 32, 1));
        // Llama-3-8B: 128 blocks per head; a short batch: one per group.
        assert_eq!(v_prepass_grid(16384, 8, true), (128, 8, 1));
        assert_eq!(v_prepass_grid(130, 8, true), (3, 8, 1));
        // More heads than V_PREPASS_BLOCKS: still one block per head.
        assert_eq!(v_prepass_grid(4096, V_PREPASS_BLOCKS * 2, true).0, 1);
        for (total, heads) in [(1, 1), (64, 4), (65, 4), (100_000, 2), (100_000, 64)] {
            let (x, y, _) = v_prepass_grid(total, heads, true);
            assert!(x >= 1 && x <= total.div_ceil(64) && y == heads);
            assert!(x * heads <= V_PREPASS_BLOCKS.max(heads), "{total} {heads}");
        }
    }
}
