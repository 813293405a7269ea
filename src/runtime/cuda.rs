//! CUDA executor for the generated CUDA kernels: NVRTC compiles the sources to PTX,
//! cudarc loads them and launches prefill and decode (+ merge) on case inputs.
//!
//! Both NVRTC and the driver are loaded dynamically by cudarc, which *panics* when a
//! library is missing; every entry point here catches that and returns
//! [`CudaError::NvrtcMissing`] / [`CudaError::DriverMissing`] with install instructions,
//! so a machine without CUDA gets an error message, not a crash.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cases::{
    check_output, decode_case, max_abs_error, prefill_case, standard_cases, tolerance,
};
use super::cases::{DecodeCase, PrefillCase};
use crate::codegen::cuda::{
    decode_name, decode_shared_bytes, merge_name, merge_threads, prefill_name, prefill_q_tile,
    prefill_shared_bytes, prefill_threads,
};
use crate::codegen::{Artifact, CodegenError};
use crate::lower::consts::{CUDA_DECODE_CHUNK, CUDA_DECODE_THREADS};
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

#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error("NVRTC could not be loaded ({detail}); {INSTALL_HINT}")]
    NvrtcMissing { detail: String },
    #[error("the CUDA driver (libcuda.so) could not be loaded ({detail}); the kernels can only run on a machine with an NVIDIA GPU and driver")]
    DriverMissing { detail: String },
    #[error("`cuda_fp16.h` was not found (searched: {searched}); set {INCLUDE_ENV} to a CUDA include folder, or {INSTALL_HINT}")]
    HeadersMissing { searched: String },
    /// Generated source that NVRTC rejects is a compiler bug.
    #[error("compiler bug: NVRTC rejected `{name}` for {arch}:\n{log}")]
    Compile {
        name: String,
        arch: String,
        log: String,
    },
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    #[error("CUDA driver call failed while {what}")]
    Driver {
        what: String,
        #[source]
        source: DriverError,
    },
    #[error("kernel `{0}` is missing from the generated CUDA sources")]
    MissingKernel(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
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

/// A device buffer in the module's storage type (f16 and bf16 travel as bit patterns).
enum DevBuf {
    F32(CudaSlice<f32>),
    Half(CudaSlice<u16>),
}

struct LayerKernels {
    prefill: CudaFunction,
    decode: CudaFunction,
}

/// The generated kernels of one module, loaded on one GPU.
pub struct CudaAttention {
    module: KernelModule,
    stream: Arc<CudaStream>,
    layers: Vec<LayerKernels>,
    merge: CudaFunction,
}

impl CudaAttention {
    /// Generates, compiles (for `arch`) and loads every kernel of `module` on GPU `ordinal`.
    pub fn new(
        module: &KernelModule,
        ordinal: usize,
        arch: &'static str,
    ) -> Result<CudaAttention, CudaError> {
        let artifacts = crate::codegen::cuda::generate(module)?;
        let ctx = catch_unwind(AssertUnwindSafe(|| CudaContext::new(ordinal)))
            .map_err(|p| CudaError::DriverMissing {
                detail: panic_text(p),
            })?
            .map_err(driver(format!("opening GPU {ordinal}")))?;
        let stream = ctx.default_stream();
        let mut functions = std::collections::HashMap::new();
        for a in &artifacts {
            let ptx = compile_artifact(a, arch)?;
            let m = ctx
                .load_module(Ptx::from_src(ptx))
                .map_err(driver(format!("loading `{}`", a.path)))?;
            for k in &a.kernels {
                let f = m
                    .load_function(&k.entry_point)
                    .map_err(driver(format!("looking up `{}`", k.entry_point)))?;
                let smem = k
                    .constants
                    .get("dynamic_shared_bytes")
                    .and_then(|v| v.as_i64());
                if let Some(bytes) = smem {
                    // Blocks get more than 48 KiB of dynamic shared memory only when asked for.
                    f.set_attribute(
                        CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        bytes as i32,
                    )
                    .map_err(driver(format!(
                        "raising the shared-memory limit of `{}`",
                        k.entry_point
                    )))?;
                }
                functions.insert(k.entry_point.clone(), f);
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
                })
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        let merge = take(merge_name(s, d))?;
        Ok(CudaAttention {
            module: module.clone(),
            stream,
            layers,
            merge,
        })
    }

    pub fn module(&self) -> &KernelModule {
        &self.module
    }

    fn upload(&self, data: &[f32]) -> Result<DevBuf, CudaError> {
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
        let cfg = prefill_launch(&self.module, rows, max_len)?;
        let rows_u32 = rows as u32;
        let mut lb = self.stream.launch_builder(&kernels.prefill);
        push(&mut lb, &qb);
        push(&mut lb, &kb);
        push(&mut lb, &vb);
        lb.arg(&starts);
        push(&mut lb, &out);
        lb.arg(&n_tokens);
        lb.arg(&rows_u32);
        // SAFETY: the argument list matches the kernel's parameters (codegen::cuda
        // prefill_bindings) and every buffer has the size checked above.
        unsafe { lb.launch(cfg) }.map_err(driver("launching prefill"))?;
        self.stream
            .synchronize()
            .map_err(driver("running prefill"))?;
        self.download(&out)
    }

    /// One decode step of one layer over a cache laid out as `layout` (split-K kernel,
    /// then the merge). Shapes as in `reference::decode_ref`; returns `[rows, q_heads, D]`.
    pub fn decode(
        &self,
        layer: usize,
        layout: &CacheLayout,
        row_pos: &[u32],
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, CudaError> {
        let s = &self.module.shape;
        let (hq, d) = (s.q_heads as usize, s.head_dim as usize);
        let kernels = self.layer(layer)?;
        let rows = row_pos.len();
        let slots = layout.row_slots as usize;
        if q.len() != rows * hq * d
            || k_cache.len() != rows * slots * d
            || v_cache.len() != k_cache.len()
        {
            return Err(CudaError::InvalidInput(
                "decode tensors do not match the cache layout".into(),
            ));
        }
        let out = self.poisoned(rows * hq * d)?;
        if rows == 0 {
            return self.download(&out);
        }
        let max_span = layout.segments.iter().map(|g| g.span).max().unwrap_or(0);
        let n_chunks = max_span.div_ceil(CUDA_DECODE_CHUNK).max(1);
        let (qb, kb, vb) = (
            self.upload(q)?,
            self.upload(k_cache)?,
            self.upload(v_cache)?,
        );
        let pos = self
            .stream
            .clone_htod(row_pos)
            .map_err(driver("uploading row_pos"))?;
        let part_len = rows * hq * n_chunks as usize * (d + 2);
        let partials = self
            .stream
            .clone_htod(&vec![f32::NAN; part_len])
            .map_err(driver("allocating decode partials"))?;
        let (n_tokens, rows_u32) = (layout.n_tokens, rows as u32);
        let cfg = LaunchConfig {
            grid_dim: (n_chunks, s.kv_heads, rows_u32),
            block_dim: (CUDA_DECODE_THREADS, 1, 1),
            shared_mem_bytes: decode_shared_bytes(s.head_dim, s.group_size()),
        };
        let mut lb = self.stream.launch_builder(&kernels.decode);
        push(&mut lb, &qb);
        push(&mut lb, &kb);
        push(&mut lb, &vb);
        lb.arg(&pos);
        lb.arg(&partials);
        lb.arg(&n_tokens);
        lb.arg(&rows_u32);
        // SAFETY: arguments match codegen::cuda decode_bindings; sizes checked above, and
        // the partials hold n_chunks = ceil(max segment span / CHUNK) chunks, as the
        // kernel computes from N.
        unsafe { lb.launch(cfg) }.map_err(driver("launching decode"))?;
        let cfg = LaunchConfig {
            grid_dim: (s.q_heads, rows_u32, 1),
            block_dim: (merge_threads(s.head_dim), 1, 1),
            shared_mem_bytes: 0,
        };
        let mut lb = self.stream.launch_builder(&self.merge);
        lb.arg(&partials);
        push(&mut lb, &out);
        lb.arg(&n_chunks);
        lb.arg(&rows_u32);
        // SAFETY: arguments match codegen::cuda merge_bindings; grid x is q_heads.
        unsafe { lb.launch(cfg) }.map_err(driver("launching decode merge"))?;
        self.stream
            .synchronize()
            .map_err(driver("running decode"))?;
        self.download(&out)
    }

    pub fn run_prefill_case(&self, c: &PrefillCase) -> Result<Vec<f32>, CudaError> {
        self.prefill(c.layer, c.n_tokens, &c.row_start, &c.q, &c.k, &c.v)
    }

    pub fn run_decode_case(&self, c: &DecodeCase) -> Result<Vec<f32>, CudaError> {
        self.decode(c.layer, &c.layout, &c.row_pos, &c.q, &c.k_cache, &c.v_cache)
    }
}

/// Launch geometry of a layer's prefill kernel (codegen::cuda, "grid" in the manifest):
/// grid [q_heads, rows, ceil(max_row_len / q_tile)], the kernel counting z from the last
/// query tile so that long bands start first. Grid y and z are limited to 65535.
pub fn prefill_launch(
    module: &KernelModule,
    rows: usize,
    max_row_len: u32,
) -> Result<LaunchConfig, CudaError> {
    let (storage, d) = (module.storage, module.shape.head_dim);
    let tiles = max_row_len.div_ceil(prefill_q_tile(storage, d));
    if rows > 65_535 || tiles > 65_535 {
        return Err(CudaError::InvalidInput(format!(
            "prefill of {rows} rows of up to {max_row_len} tokens exceeds the launch grid \
             (at most 65535 rows and 65535 query tiles of {} tokens)",
            prefill_q_tile(storage, d)
        )));
    }
    Ok(LaunchConfig {
        grid_dim: (module.shape.q_heads, rows as u32, tiles),
        block_dim: (prefill_threads(storage, d), 1, 1),
        shared_mem_bytes: prefill_shared_bytes(storage, d),
    })
}

fn push<'a>(lb: &mut cudarc::driver::LaunchArgs<'a>, buf: &'a DevBuf) {
    match buf {
        DevBuf::F32(s) => lb.arg(s),
        DevBuf::Half(s) => lb.arg(s),
    };
}

/// The outcome of one case on the GPU.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub max_error: f32,
    pub tolerance: f32,
    pub passed: bool,
    /// Where the error is largest, when the case failed.
    pub detail: Option<String>,
}

/// Every case of a [`check`] run.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub storage: StorageType,
    pub arch: String,
    pub cases: Vec<CaseResult>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.passed)
    }
    pub fn max_error(&self) -> f32 {
        self.cases.iter().map(|c| c.max_error).fold(0.0, f32::max)
    }
}

/// Random batches beyond the standard cases: ragged prefill rows up to 300 tokens with N
/// between the longest row and twice it, and decode rows anywhere in 0..3000 (before,
/// at and long after the ring wraps) with N in 1..=3000.
pub fn random_cases(module: &KernelModule, seed: u64) -> (Vec<PrefillCase>, Vec<DecodeCase>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d6f_615f_6375_6461);
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for layer in 0..module.layers.len() {
        let lens: Vec<u32> = (0..3).map(|_| rng.random_range(1..=300)).collect();
        let max = lens.iter().copied().max().unwrap_or(1);
        let n = max + rng.random_range(0..=max);
        prefill.push(prefill_case(module, layer, &lens, n, rng.random()));
        let pos: Vec<u32> = (0..3).map(|_| rng.random_range(0..3000)).collect();
        let n = rng.random_range(1..=3000);
        decode.push(decode_case(module, layer, &pos, n, rng.random()));
    }
    (prefill, decode)
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
    let gpu = CudaAttention::new(module, ordinal, arch)?;
    let tol = tolerance(module.storage);
    let (hq, d) = (
        module.shape.q_heads as usize,
        module.shape.head_dim as usize,
    );
    let (mut prefill, mut decode) = standard_cases(module, seed);
    let (rp, rd) = random_cases(module, seed);
    prefill.extend(rp);
    decode.extend(rd);
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
    }
    Ok(CheckReport {
        storage: module.storage,
        arch: arch.to_string(),
        cases,
    })
}
