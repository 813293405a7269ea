//! wgpu executor for the generated WGSL kernels: a device ([`WgpuContext`]) and the
//! compiled pipelines of one plan ([`WgpuAttention`]). Buffers are uploaded per call and
//! outputs read back as f32; this is the test and reference harness, not a serving
//! engine, but it launches the kernels exactly as an app would (one decode step = one
//! command buffer with the decode and merge dispatches).

#![warn(missing_docs)]

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use crate::codegen::abi::{Arg, KernelAbi, LaunchSize};
use crate::codegen::wgsl::DECODE_PARTIAL_EMPTY;
use crate::codegen::{Artifact, KernelInfo, Phase};
use crate::lower::{CacheLayout, KernelModule, StorageType};
use crate::runtime::cases::{DecodeCase, PrefillCase};
use crate::runtime::wgpu_engine::WgpuContextOptions;
use crate::runtime::worklist::{choose_chunk, DecodeWork};

/// Gives the process a private `XDG_RUNTIME_DIR` when it has none (unset, empty, or not a
/// folder): Mesa's Vulkan drivers (lavapipe among them) warn
/// "XDG_RUNTIME_DIR is invalid or not set in the environment" on every start without one,
/// which a user running the binary outside the scripts sees as an error. The folder is
/// `$TMPDIR/moa-runtime-<uid>`, mode 0700 and owned by this user (the rules of the XDG base
/// directory spec); one that exists but is not ours and private is not used, a fresh
/// `moa-runtime-<uid>-<pid>` is made instead. Returns the folder it set, `None` when the
/// variable was fine or nothing could be made (then the warning is all that happens).
///
/// Call it first thing in `main`, before any thread starts: changing the environment of a
/// process whose other threads read it is undefined behaviour in C libraries.
pub fn ensure_xdg_runtime_dir() -> Option<std::path::PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
            if !dir.is_empty() && std::path::Path::new(&dir).is_dir() {
                return None;
            }
        }
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let private = |p: &std::path::Path| {
            std::fs::symlink_metadata(p).is_ok_and(|m| {
                m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700
            })
        };
        let tmp = std::env::temp_dir();
        let candidates = [
            tmp.join(format!("moa-runtime-{uid}")),
            tmp.join(format!("moa-runtime-{uid}-{}", std::process::id())),
        ];
        for dir in candidates {
            // `mode` applies only when the folder is created; an existing one is checked.
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
            if private(&dir) {
                std::env::set_var("XDG_RUNTIME_DIR", &dir);
                return Some(dir);
            }
        }
        None
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Errors of the wgpu executor and of the context it runs on: opening a device
/// ([`WgpuContext::new`]), building the plan's pipelines ([`WgpuAttention::new`]) and
/// running or reading back a kernel. Each message names the adapter, kernel or tensor.
#[derive(Debug, thiserror::Error)]
pub enum WgpuError {
    /// wgpu found no adapter at all (no Vulkan, Metal, DX12 or GL driver loads); holds
    /// wgpu's own reason.
    #[error(
        "no wgpu adapter found ({0}): install a Vulkan driver, e.g. \
         `apt-get install -y mesa-vulkan-drivers libvulkan1` for lavapipe"
    )]
    NoAdapter(String),
    /// The only adapter is on wgpu's OpenGL fallback, which moa does not support unless
    /// `WGPU_BACKEND` names `gl`.
    #[error(
        "the only wgpu adapter is `{adapter}` on OpenGL, wgpu's fallback when no Vulkan \
         driver loads (VK_ICD_FILENAMES={icd}, VK_DRIVER_FILES={driver}): moa runs on \
         Vulkan, Metal or DX12 (on llvmpipe through OpenGL a tiny model's generate had not \
         finished after 120 s where Vulkan lavapipe takes 20 s). Install a Vulkan driver \
         (`apt-get install -y mesa-vulkan-drivers libvulkan1` for lavapipe) or point those \
         variables at an existing ICD file; or set WGPU_BACKEND=gl to run on OpenGL anyway"
    )]
    OpenGlOnly {
        /// The GL adapter's name (e.g. `llvmpipe`).
        adapter: String,
        /// `VK_ICD_FILENAMES` as set (in backticks) or `unset`.
        icd: String,
        /// `VK_DRIVER_FILES` as set (in backticks) or `unset`.
        driver: String,
    },
    /// The adapter refused `request_device` with its own limits and the features moa asked
    /// for.
    #[error("cannot open a wgpu device on `{adapter}`: {message}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// wgpu's error text.
        message: String,
    },
    /// The plan's storage type is f16 but the adapter (named) lacks `SHADER_F16`;
    /// returned by [`WgpuAttention::new`].
    #[error("the plan stores tensors as f16 but adapter `{0}` has no SHADER_F16")]
    NoF16(String),
    /// The artifacts have no WGSL kernel for a phase of a layer the module lists (artifacts
    /// generated from another plan, or for CUDA only), or one of a phase and layer this
    /// executor does not run (a prefill or decode kernel naming no layer).
    #[error("no generated kernel for {phase:?} of layer {layer:?}; were the artifacts generated from this plan for WGSL?")]
    MissingKernel {
        /// The phase whose kernel is missing.
        phase: Phase,
        /// The plan's layer number the kernel is for; `None` where it names none.
        layer: Option<u32>,
    },
    /// A kernel's manifest ABI lacks a constant the launch needs, or has it as 0 (a tile
    /// size such as `tiles.q_tile`).
    #[error("kernel `{kernel}` has no `{name}` in its manifest ABI")]
    MissingConstant {
        /// The kernel's name in the manifest.
        kernel: String,
        /// The constant, e.g. `tiles.k_tile`.
        name: String,
    },
    /// A kernel's ABI binds an argument this executor does not supply for its phase.
    #[error("kernel `{kernel}` binds {arg:?} (binding {index}), which this call does not provide")]
    MissingArg {
        /// The kernel's name in the manifest.
        kernel: String,
        /// The argument the ABI names.
        arg: Arg,
        /// Its binding index in group 0.
        index: u32,
    },
    /// The device rejected a shader module or pipeline (a validation error scope
    /// reported it).
    #[error("kernel `{kernel}` failed to compile on the device: {message}")]
    Pipeline {
        /// The artifact's path (its kernels share one module).
        kernel: String,
        /// The driver's or wgpu's validation message.
        message: String,
    },
    /// A layer index (position in the module's layers, not the plan's layer number) past
    /// the module's layer count.
    #[error("layer {layer} is out of range: the plan has {layers} layers")]
    Layer {
        /// The index asked for.
        layer: usize,
        /// How many layers the module has.
        layers: usize,
    },
    /// An input tensor's length (elements) does not match the shape the module's model
    /// shape gives.
    #[error("`{name}` has {got} elements, expected {expected} ({shape})")]
    Shape {
        /// The argument, e.g. `q` or `k_cache`.
        name: &'static str,
        /// Its length in elements.
        got: usize,
        /// The length its shape gives.
        expected: usize,
        /// The expected shape, e.g. `[total_tokens, q_heads, head_dim]`.
        shape: String,
    },
    /// An input outside what the kernels accept: `row_start` not starting at 0 or
    /// decreasing, N (tokens) outside `1..=2^31-1`, a decode grid past the device's
    /// limits.
    #[error("invalid input: {0}")]
    Input(String),
    /// A validation error reported while encoding or submitting a kernel's dispatches.
    #[error("running `{kernel}` failed: {message}")]
    Run {
        /// The kernel's name.
        kernel: String,
        /// wgpu's error text.
        message: String,
    },
    /// Mapping or polling a read-back buffer failed (device lost, or a map error).
    #[error("reading results back failed: {0}")]
    Readback(String),
    /// A malformed `MOA_WGPU_*` / `MOA_WGSL_*` setting ([`WgpuContextOptions::from_env`]).
    #[error(transparent)]
    Options(#[from] crate::runtime::wgpu_engine::OptionsError),
}

/// One wgpu device and queue (Vulkan preferred: it is what lavapipe and real GPUs share).
pub struct WgpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    f16: bool,
    /// The adapter's shaders may use `unpack2x16float` and the other f16-in-f32
    /// conversions (wgpu's `DownlevelFlags::SHADER_F16_IN_F32`: Vulkan with SHADER_F16,
    /// Metal, DX12; not every GLES).
    f16_in_f32: bool,
    coop: Option<CoopMatrix>,
    coop_configs: Vec<wgpu::CooperativeMatrixProperties>,
    subgroup: Option<u32>,
    /// `SUBGROUP_BARRIER` was requested (with subgroups, where the adapter has it).
    subgroup_barrier: bool,
    /// The settings it was opened with (`MOA_WGPU_COOP`, `MOA_WGPU_SUBGROUPS`,
    /// `MOA_WGSL_DECODE`, `MOA_WGSL_RESCALE`).
    options: WgpuContextOptions,
}

/// The cooperative-matrix configuration the prefill products use (issue 12 item 2):
/// 16 × 16 × 16 with f16 operands, the accumulator type the adapter offers (f32
/// preferred), on an adapter with one fixed subgroup size (a workgroup is 4 subgroups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopMatrix {
    /// Element type of the accumulator (f32 or f16).
    pub accumulator: crate::lower::StorageType,
    /// Invocations per subgroup.
    pub subgroup: u32,
}

/// Picks the configuration [`CoopMatrix`] describes from an adapter's reported ones:
/// `None` when there is no 16 × 16 × 16 f16 one or the subgroup size is not fixed.
pub fn choose_coop_matrix(
    configs: &[wgpu::CooperativeMatrixProperties],
    subgroup_min: u32,
    subgroup_max: u32,
) -> Option<CoopMatrix> {
    use crate::lower::StorageType;
    use wgpu::CooperativeScalarType as T;
    if subgroup_min != subgroup_max || subgroup_min == 0 {
        return None;
    }
    let has = |cr: T| {
        configs.iter().any(|c| {
            (c.m_size, c.n_size, c.k_size) == (16, 16, 16) && c.ab_type == T::F16 && c.cr_type == cr
        })
    };
    let accumulator = if has(T::F32) {
        StorageType::F32
    } else if has(T::F16) {
        StorageType::F16
    } else {
        return None;
    };
    Some(CoopMatrix {
        accumulator,
        subgroup: subgroup_min,
    })
}

/// The subgroup size `matvec_sg.wgsl` is built for: `None` without the feature, with a
/// size that varies between dispatches (min != max: its workgroups place 64 / size
/// subgroups by a fixed size), or with one that is not a power of two from 8 to 64 (its
/// workgroup memory holds 32 subgroups' sums: 256 invocations of 8).
pub fn choose_subgroup_size(feature: bool, min: u32, max: u32) -> Option<u32> {
    (feature && min == max && min.is_power_of_two() && (8..=64).contains(&min)).then_some(min)
}

impl WgpuContext {
    /// Opens the first adapter wgpu offers, preferring Vulkan, with SHADER_F16 where the
    /// adapter has it and the adapter's own limits (lavapipe's exceed WebGPU defaults),
    /// with the environment's settings ([`WgpuContextOptions::from_env`]; a malformed one
    /// is [`WgpuError::Options`]). An OpenGL adapter (wgpu's fallback without a Vulkan
    /// driver) is [`WgpuError::OpenGlOnly`] unless `WGPU_BACKEND` names `gl`.
    pub fn new() -> Result<WgpuContext, WgpuError> {
        Self::with_options(WgpuContextOptions::from_env()?)
    }

    /// [`Self::new`] with `options` instead of the environment's settings.
    pub fn with_options(options: WgpuContextOptions) -> Result<WgpuContext, WgpuError> {
        pollster::block_on(Self::new_async(options))
    }

    /// The settings this context was opened with.
    pub fn options(&self) -> &WgpuContextOptions {
        &self.options
    }

    async fn new_async(options: WgpuContextOptions) -> Result<WgpuContext, WgpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        // Vulkan first, then real GPUs before CPU ones; the GL backend lacks f16.
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (
                i.backend != wgpu::Backend::Vulkan,
                i.device_type == wgpu::DeviceType::Cpu,
            )
        });
        let adapter = match adapters.into_iter().next() {
            Some(a) => a,
            None => {
                let err = instance
                    .request_adapter(&wgpu::RequestAdapterOptions::default())
                    .await
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "enumerate_adapters returned none".into());
                return Err(WgpuError::NoAdapter(err));
            }
        };
        let info = adapter.get_info();
        // Vulkan sorts first, so GL here means no Vulkan driver loaded (a missing ICD
        // file, no Mesa): wgpu then falls back to llvmpipe through OpenGL, which ran a
        // tiny model many times slower than lavapipe and looked like a hang. Refused
        // unless the user asked for GL through wgpu's own WGPU_BACKEND.
        let gl_asked = wgpu::Backends::from_env().is_some_and(|b| b.contains(wgpu::Backends::GL));
        if info.backend == wgpu::Backend::Gl && !gl_asked {
            let var = |k: &str| {
                std::env::var(k)
                    .map(|v| format!("`{v}`"))
                    .unwrap_or_else(|_| "unset".into())
            };
            return Err(WgpuError::OpenGlOnly {
                adapter: info.name.clone(),
                icd: var("VK_ICD_FILENAMES"),
                driver: var("VK_DRIVER_FILES"),
            });
        }
        let f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        let f16_in_f32 = adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32);
        let mut required_features = if f16 {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        };
        // Matrix units for the prefill products where the adapter offers them, unless
        // MOA_WGPU_COOP=0 (the tiled products then run, e.g. to compare the two).
        let coop_feature = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let coop_configs =
            if f16 && options.cooperative_matrices && adapter.features().contains(coop_feature) {
                adapter.cooperative_matrix_properties()
            } else {
                Vec::new()
            };
        let coop = choose_coop_matrix(
            &coop_configs,
            info.subgroup_min_size,
            info.subgroup_max_size,
        );
        // Subgroup operations for the decode products (`matvec_sg.wgsl`) where the adapter
        // has them with one fixed subgroup size that divides a 64-wide workgroup, unless
        // MOA_WGPU_SUBGROUPS=0.
        let subgroup = choose_subgroup_size(
            options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP),
            info.subgroup_min_size,
            info.subgroup_max_size,
        );
        if subgroup.is_some() {
            required_features |= wgpu::Features::SUBGROUP;
        }
        // Subgroup-scope barriers (the prefill attention's group forms 2 and 3) where the
        // adapter has them with subgroups.
        let subgroup_barrier = subgroup.is_some()
            && adapter
                .features()
                .contains(wgpu::Features::SUBGROUP_BARRIER);
        if subgroup_barrier {
            required_features |= wgpu::Features::SUBGROUP_BARRIER;
        }
        let experimental_features = if coop.is_some() {
            required_features |= coop_feature;
            // SAFETY: wgpu asks callers of experimental features to accept that they may
            // have bugs; the engine checks the matrix product against the tiled one on
            // this device before using it (`WgpuEngine` start-up) and falls back.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("moa"),
                required_features,
                required_limits: adapter.limits(),
                experimental_features,
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| WgpuError::Device {
                adapter: info.name.clone(),
                message: e.to_string(),
            })?;
        Ok(WgpuContext {
            device,
            queue,
            info,
            f16,
            f16_in_f32,
            coop,
            coop_configs,
            subgroup,
            subgroup_barrier,
            options,
        })
    }

    /// Whether the device has subgroup-scope barriers (`subgroupBarrier`; wgpu's
    /// `SUBGROUP_BARRIER` feature, requested with subgroups).
    pub fn subgroup_barrier(&self) -> bool {
        self.subgroup_barrier
    }

    /// The subgroup size of the decode products on subgroups, where the device has the
    /// `SUBGROUP` feature with one fixed size dividing 64 ([`choose_subgroup_size`]).
    pub fn subgroup_size(&self) -> Option<u32> {
        self.subgroup
    }

    /// The cooperative-matrix configuration the prefill products can use, if any.
    pub fn coop_matrix(&self) -> Option<CoopMatrix> {
        self.coop
    }

    /// Every cooperative-matrix configuration the adapter reports (empty without the
    /// feature, or with MOA_WGPU_COOP=0), as `MxNxK ab->cr` strings.
    pub fn coop_configs(&self) -> Vec<String> {
        self.coop_configs
            .iter()
            .map(|c| {
                format!(
                    "{}x{}x{} {:?}->{:?}",
                    c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type
                )
            })
            .collect()
    }

    /// The adapter's name as the driver reports it (e.g. `llvmpipe (LLVM 15.0.7, 256 bits)`).
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// The backend the device was opened on (Vulkan first; GL only when `WGPU_BACKEND` asks).
    pub fn backend(&self) -> wgpu::Backend {
        self.info.backend
    }

    /// Everything wgpu reports about the adapter (vendor, device type, driver, subgroup sizes).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether f16 storage (`enable f16;`) kernels can run on this device.
    pub fn has_f16(&self) -> bool {
        self.f16
    }

    /// Whether shaders may convert f16 pairs held in 32-bit words (`unpack2x16float`), which
    /// the flat decode's 16-byte-word loads need ([`crate::codegen::wgsl::WgslTuning::decode_sg_flat_words`]).
    pub fn has_f16_in_f32(&self) -> bool {
        self.f16_in_f32
    }

    /// The wgpu device, for creating buffers and pipelines on it.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The device's one queue, for writes and submissions.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
}

/// One kernel launch with its bind group and grid, built once and encodable many
/// times: decode steps of a request reuse the same buffers, so their bind groups need
/// not be rebuilt per step (creating them is most of a small step's host time).
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// The compute pipeline (one entry point of a kernel).
    pub pipeline: wgpu::ComputePipeline,
    /// Its bind group 0, binding the buffers in the ABI's order.
    pub bind: wgpu::BindGroup,
    /// Workgroups per dimension, `[x, y, z]`.
    pub groups: [u32; 3],
}

impl Dispatch {
    /// Records the launch into `pass`: sets the pipeline and bind group 0, dispatches
    /// `groups`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
    }
}

/// The WGSL decode's grid for `n_items` work items under `max_per_dim` workgroups per
/// dimension: `[min(n, X), ceil(n / X), 1]`, so a list past one dimension still launches
/// every item (never a truncated list); `None` past `X²` items. At least one workgroup.
pub fn fold_items(n_items: u32, max_per_dim: u32) -> Option<[u32; 3]> {
    let x = max_per_dim.max(1);
    let n = n_items.max(1);
    let y = n.div_ceil(x);
    (y <= x).then_some([n.min(x), y, 1])
}

struct Kernel {
    name: String,
    pipeline: wgpu::ComputePipeline,
    abi: KernelAbi,
    /// Work items a workgroup of a decode takes (the manifest constant `decode_sg_items`
    /// of the pipelined decode on subgroups, `WgslTuning::decode_sg_pipe`; 1 for every
    /// other kernel): its grid covers ceil(n_items / items) workgroups. (u8: the
    /// template takes at most `DECODE_SG_MAX_ITEMS`.)
    items: u8,
    /// Subgroups a workgroup of the flat decode on subgroups (the manifest constant
    /// `decode_sg_flat_subgroups`, written where it is not 4; 0 for every other kernel):
    /// the work list's chunk model assumes the residency it allows
    /// ([`crate::lower::consts::wgsl_decode_concurrent_workgroups_of`]).
    flat_subgroups: u8,
}

/// [`Kernel::items`] of a manifest kernel.
fn items_per_workgroup(k: &KernelInfo) -> u8 {
    k.constants
        .get("decode_sg_items")
        .and_then(serde_json::Value::as_u64)
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(1)
        .max(1)
}

/// [`Kernel::flat_subgroups`] of a manifest kernel.
fn flat_subgroups_of(k: &KernelInfo) -> u8 {
    k.constants
        .get("decode_sg_flat_subgroups")
        .and_then(serde_json::Value::as_u64)
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(0)
}

/// The compiled attention kernels of one plan: per layer prefill and decode, plus the
/// shared merge. Pipelines are built once, here.
pub struct WgpuAttention {
    device: wgpu::Device,
    queue: wgpu::Queue,
    module: KernelModule,
    prefill: HashMap<u32, Kernel>,
    decode: HashMap<u32, Kernel>,
    merge: Kernel,
    chunk: u32,
    /// Workgroups per grid dimension the decode grid is folded at, below the adapter's
    /// limit where a test lowered it ([`Self::fold_decode_grid_at`]).
    grid_x: Option<u32>,
    /// Which decode kernels run, and why (see [`Self::decode_kernels`]).
    decode_kind: String,
    /// Per layer (by its index in the module), the [`Arg::Rules`] table of its query heads
    /// ([`head_rules`]), bound where the layer's prefill or decode reads its rules from one.
    rules: Vec<wgpu::Buffer>,
}

/// The [`Arg::Rules`] table of one layer, `u32[q_heads, 2]`: each query head's α (an
/// i32's bits, tokens) and β·BETA_DEN, in query-head order, as `plan::Rule` holds them.
pub fn head_rules(layer: &crate::lower::LayerSpec) -> Vec<u32> {
    layer
        .q_heads
        .iter()
        .flat_map(|h| [h.rule.alpha as u32, h.rule.beta_num])
        .collect()
}

/// How [`WgpuAttention`] builds its decode and merge pipelines: choices that change
/// speed, not results (the generated kernels write every workgroup word before reading
/// it, and index only inside their arrays; both are checked against the CPU reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodePipelineOptions {
    /// wgpu zero-fills a kernel's workgroup memory at the start of every workgroup unless
    /// told not to (about 15 KB per decode workgroup: stores and a barrier per work item).
    pub zero_init_workgroup_memory: bool,
    /// naga's runtime checks: clamped indices into workgroup and local arrays and a
    /// counter on every loop. Off: `create_shader_module_trusted` with none.
    pub runtime_checks: bool,
}

/// Both off by default: on the H200 through Vulkan the checks cost the Llama-3-8B decode
/// 160 → 168 registers and 9% of its code, and together with the zero-fill 0.93× its
/// time, 0.96× on Vicuna-7B (benches/RESULTS.md, "WGSL decode, session 11").
impl Default for DecodePipelineOptions {
    fn default() -> Self {
        DecodePipelineOptions {
            zero_init_workgroup_memory: false,
            runtime_checks: false,
        }
    }
}

/// Whether the decode on cooperative matrices is wanted: with `MOA_WGSL_DECODE=coop`, on
/// an adapter with 16 × 16 × 16 f16 matrices accumulating in f32 (the scores need f32).
/// Not by default: on the H200 it measured 0.7–0.9× the scalar decode's rate
/// (benches/RESULTS.md, "WGSL decode on cooperative matrices", calls 10–11).
fn coop_decode_matrix(ctx: &WgpuContext) -> Result<CoopMatrix, String> {
    if !ctx.options.wgsl_coop_decode {
        return Err(
            "the default; MOA_WGSL_DECODE=coop opts in to the cooperative-matrix decode".into(),
        );
    }
    match ctx.coop {
        Some(c) if c.accumulator == StorageType::F32 => Ok(c),
        Some(_) => Err("the adapter's f16 matrices accumulate only in f16".into()),
        None => Err("no cooperative matrices on this adapter".into()),
    }
}

/// Compiles a decode kernel on cooperative matrices with the adapter's subgroup size (and
/// `MOA_WGSL_RESCALE`, the rescale threshold in log2 units, where set: tests use 0 to
/// exercise the rescale); the driver's complaint on failure (the caller falls back).
fn build_coop_decode(
    device: &wgpu::Device,
    artifact: &Artifact,
    k: &KernelInfo,
    coop: CoopMatrix,
    rescale: Option<u32>,
) -> Result<wgpu::ComputePipeline, String> {
    let mut constants = vec![("MOA_SG", f64::from(coop.subgroup))];
    if let Some(r) = rescale {
        constants.push(("MOA_RESCALE", f64::from(r)));
    }
    // Every workgroup array of the kernel is written before it is read (stale scores are
    // masked by select), as `matrix_pipeline` requires.
    matrix_pipeline(
        device,
        &k.name,
        &artifact.source,
        &k.entry_point,
        &constants,
    )
}

/// Compiles one WGSL compute kernel on cooperative matrices (or any kernel compiled only
/// where the adapter may refuse it) with its pipeline overrides, inside a validation
/// error scope, so a driver that rejects it is the driver's complaint as text (the callers
/// fall back to their scalar or tiled kernels) rather than a device-lost error later.
/// Workgroup memory is not zeroed: the kernel must write every workgroup array before
/// reading it (zeroing ~20 KB per workgroup would cost every work item).
pub(crate) fn matrix_pipeline(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entry_point: &str,
    constants: &[(&str, f64)],
) -> Result<wgpu::ComputePipeline, String> {
    matrix_pipeline_checked(device, label, source, entry_point, constants, true)
}

/// [`matrix_pipeline`] with naga's runtime checks (index clamps, loop counters) on or off
/// (`create_shader_module_trusted`). Unchecked is for kernels whose indices the host's
/// grid and `params` bound: with the checks, the driver cannot unroll the prefill
/// product's staging loops and keeps their registers in local memory (RESULTS "wgpu
/// engine, session 27 (branch s27-gemm)": 21–25 against 38–54 TFLOP/s).
pub(crate) fn matrix_pipeline_checked(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entry_point: &str,
    constants: &[(&str, f64)],
    checked: bool,
) -> Result<wgpu::ComputePipeline, String> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    let module = if checked {
        device.create_shader_module(desc)
    } else {
        // SAFETY: the caller's kernel keeps its indices inside its buffers (bounded by
        // `params` and the host's grid) and bounds every loop by constants or `params`.
        unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
    };
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module: &module,
        entry_point: Some(entry_point),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(e.to_string()),
        None => Ok(pipeline),
    }
}

fn tile(k: &KernelInfo, name: &str, value: Option<u32>) -> Result<u32, WgpuError> {
    value
        .filter(|&v| v > 0)
        .ok_or_else(|| WgpuError::MissingConstant {
            kernel: k.name.clone(),
            name: format!("tiles.{name}"),
        })
}

impl WgpuAttention {
    /// Compiles every kernel of `artifacts` (the WGSL output of `codegen::generate` for
    /// `module`, or the same read back from a compile output folder).
    pub fn new(
        ctx: &WgpuContext,
        module: &KernelModule,
        artifacts: &[Artifact],
    ) -> Result<WgpuAttention, WgpuError> {
        Self::new_with(ctx, module, artifacts, DecodePipelineOptions::default())
    }

    /// [`Self::new`] with the scalar decode and merge pipelines built as `options` says.
    pub fn new_with(
        ctx: &WgpuContext,
        module: &KernelModule,
        artifacts: &[Artifact],
        options: DecodePipelineOptions,
    ) -> Result<WgpuAttention, WgpuError> {
        if module.storage == StorageType::F16 && !ctx.f16 {
            return Err(WgpuError::NoF16(ctx.info.name.clone()));
        }
        let device = &ctx.device;
        let mut prefill = HashMap::new();
        let mut decode = HashMap::new();
        let mut merge = None;
        let mut chunk = None;
        // The decode on cooperative matrices where the adapter has them (each in its own
        // module), else the scalar decode every adapter runs.
        let coop = coop_decode_matrix(ctx);
        let mut coop_decode = HashMap::new();
        let mut coop_chunk = None;
        let mut coop_failed = None;
        // The scalar kernels of one artifact (one shader module, a pipeline per entry
        // point). A driver that rejects a naga-validated module reports through the
        // error scope, not a panic, so the message can name the kernel.
        let build_scalar = |artifact: &Artifact,
                            wgsl_kernels: &[&'_ KernelInfo]|
         -> Result<Vec<wgpu::ComputePipeline>, WgpuError> {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let decode_phase = wgsl_kernels
                .iter()
                .all(|k| matches!(k.phase, Phase::Decode | Phase::DecodeMerge));
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(&artifact.path),
                source: wgpu::ShaderSource::Wgsl(artifact.source.as_str().into()),
            };
            let shader = if decode_phase && !options.runtime_checks {
                // SAFETY: the generated decode and merge index only inside their arrays
                // (indices are clamped into the tile and the list by construction), and
                // every loop is bounded by the work item; CI runs them against the CPU
                // reference (tests/wgsl_decode_forms.rs) with these options.
                unsafe {
                    device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                device.create_shader_module(desc)
            };
            let zero_init = !decode_phase || options.zero_init_workgroup_memory;
            let mut built = Vec::new();
            for k in wgsl_kernels.iter() {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&k.name),
                    layout: None,
                    module: &shader,
                    entry_point: Some(&k.entry_point),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        zero_initialize_workgroup_memory: zero_init,
                        ..Default::default()
                    },
                    cache: None,
                });
                built.push(pipeline);
            }
            if let Some(err) = pollster::block_on(scope.pop()) {
                return Err(WgpuError::Pipeline {
                    kernel: artifact.path.clone(),
                    message: err.to_string(),
                });
            }
            Ok(built)
        };
        // Built on all cores at once (the driver's compile is most of a first load on the
        // H200: NVIDIA's Vulkan driver caches it on disk for later loads); error scopes
        // are per thread (wgpu 30). The cooperative-matrix decode stays below.
        fn wgsl_of(artifact: &Artifact) -> Vec<&KernelInfo> {
            artifact
                .kernels
                .iter()
                .filter(|k| k.target == crate::codegen::Target::Wgsl)
                .collect()
        }
        fn scalar_of(artifact: &Artifact) -> Option<Vec<&KernelInfo>> {
            let wgsl_kernels = wgsl_of(artifact);
            (!wgsl_kernels.is_empty()
                && !wgsl_kernels.iter().any(|k| k.abi.tiles.subgroups.is_some()))
            .then_some(wgsl_kernels)
        }
        // Artifacts whose source and entry points equal an earlier one's (the flat decode
        // with its rules in a table: every layer of one shape) share its pipelines: one
        // compile, and one copy of the code on the GPU, so consecutive layers' dispatches
        // run the same code (a dispatch whose code differs from the last one's starts
        // cold: session 43).
        let same_as: Vec<usize> = {
            let mut first: HashMap<(&str, Vec<&str>), usize> = HashMap::new();
            artifacts
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let entries = wgsl_of(a).iter().map(|k| k.entry_point.as_str()).collect();
                    *first.entry((a.source.as_str(), entries)).or_insert(i)
                })
                .collect()
        };
        let mut shared: HashMap<usize, Vec<wgpu::ComputePipeline>> = HashMap::new();
        let mut prebuilt: Vec<Option<Result<Vec<wgpu::ComputePipeline>, WgpuError>>> = {
            use rayon::prelude::*;
            artifacts
                .par_iter()
                .enumerate()
                .map(|(index, artifact)| {
                    if same_as[index] != index {
                        return None;
                    }
                    let kernels = scalar_of(artifact)?;
                    // A panicked build is built again below, on this thread.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        build_scalar(artifact, &kernels)
                    }))
                    .ok()
                })
                .collect()
        };
        for (index, artifact) in artifacts.iter().enumerate() {
            let wgsl_kernels = wgsl_of(artifact);
            if wgsl_kernels.is_empty() {
                continue;
            }
            if let Some(k) = wgsl_kernels
                .iter()
                .find(|k| k.abi.tiles.subgroups.is_some())
            {
                if let (Ok(c), None, (Phase::Decode, Some(l))) =
                    (&coop, &coop_failed, (k.phase, k.layer))
                {
                    match build_coop_decode(device, artifact, k, *c, ctx.options.wgsl_rescale) {
                        Ok(pipeline) => {
                            coop_chunk = Some(tile(k, "k_tile", k.abi.tiles.k_tile)?);
                            coop_decode.insert(
                                l,
                                Kernel {
                                    name: k.name.clone(),
                                    pipeline,
                                    abi: k.abi.clone(),
                                    items: 1,
                                    flat_subgroups: 0,
                                },
                            );
                        }
                        Err(e) => coop_failed = Some(format!("{}: {e}", k.name)),
                    }
                }
                continue;
            }
            let built = match shared.get(&same_as[index]) {
                Some(pipelines) if same_as[index] != index => pipelines.clone(),
                _ => prebuilt[index]
                    .take()
                    .unwrap_or_else(|| build_scalar(artifact, &wgsl_kernels))?,
            };
            if same_as[index] == index {
                shared.insert(index, built.clone());
            }
            for (k, pipeline) in wgsl_kernels.iter().zip(built) {
                let kernel = Kernel {
                    name: k.name.clone(),
                    pipeline,
                    abi: k.abi.clone(),
                    items: items_per_workgroup(k),
                    flat_subgroups: flat_subgroups_of(k),
                };
                match (k.phase, k.layer) {
                    (Phase::Prefill, Some(l)) => {
                        // The grid rule carries the tile; a manifest without it is stale.
                        tile(k, "q_tile", k.abi.tiles.q_tile)?;
                        prefill.insert(l, kernel);
                    }
                    (Phase::Decode, Some(l)) => {
                        chunk = Some(tile(k, "k_tile", k.abi.tiles.k_tile)?);
                        decode.insert(l, kernel);
                    }
                    (Phase::DecodeMerge, _) => merge = Some(kernel),
                    (phase, layer) => return Err(WgpuError::MissingKernel { phase, layer }),
                }
            }
        }
        for layer in &module.layers {
            for (phase, map) in [(Phase::Prefill, &prefill), (Phase::Decode, &decode)] {
                if !map.contains_key(&layer.layer) {
                    return Err(WgpuError::MissingKernel {
                        phase,
                        layer: Some(layer.layer),
                    });
                }
            }
        }
        let merge = merge.ok_or(WgpuError::MissingKernel {
            phase: Phase::DecodeMerge,
            layer: None,
        })?;
        let all_coop = !module.layers.is_empty()
            && module
                .layers
                .iter()
                .all(|l| coop_decode.contains_key(&l.layer));
        let decode_kind = match (&coop, coop_failed) {
            (_, Some(e)) => format!("scalar (the cooperative-matrix decode failed to build: {e})"),
            (Ok(c), None) if all_coop => {
                decode = coop_decode;
                chunk = coop_chunk;
                format!(
                    "cooperative matrix 16x16x16 f16->f32 (subgroup {})",
                    c.subgroup
                )
            }
            (Ok(_), None) => "scalar (the plan's layers have no cooperative-matrix decode: f32 storage, head_dim or group)".into(),
            (Err(why), None) => format!("scalar ({why})"),
        };
        Ok(WgpuAttention {
            device: ctx.device.clone(),
            queue: ctx.queue.clone(),
            module: module.clone(),
            prefill,
            decode,
            merge,
            // Set whenever the module has a layer; a module without layers
            // never launches prefill or decode.
            chunk: chunk.unwrap_or(1),
            grid_x: None,
            decode_kind,
            rules: module
                .layers
                .iter()
                .map(|l| storage_u32_buffer(device, "rules", &head_rules(l)))
                .collect(),
        })
    }

    /// Which decode kernels run: "cooperative matrix ..." or "scalar (why)".
    pub fn decode_kernels(&self) -> &str {
        &self.decode_kind
    }

    /// Folds decode grids as if the adapter allowed only `x` (>= 1) workgroups per
    /// dimension, so tests run the 2-D grid a work list past 65535 items gets (item =
    /// y · num_workgroups.x + x, padding workgroups end at once) on small cases.
    pub fn fold_decode_grid_at(&mut self, x: u32) {
        self.grid_x = Some(x.max(1));
    }

    /// The lowered module (model shape, storage type, per-layer specs) the kernels were
    /// built for.
    pub fn module(&self) -> &KernelModule {
        &self.module
    }

    fn layer_kernel<'a>(
        &self,
        map: &'a HashMap<u32, Kernel>,
        layer: usize,
        phase: Phase,
    ) -> Result<&'a Kernel, WgpuError> {
        let spec = self.module.layers.get(layer).ok_or(WgpuError::Layer {
            layer,
            layers: self.module.layers.len(),
        })?;
        map.get(&spec.layer).ok_or(WgpuError::MissingKernel {
            phase,
            layer: Some(spec.layer),
        })
    }

    /// Prefill of one layer over a packed ragged batch (see [`PrefillCase`] for the
    /// layouts). Returns O as `[total_tokens, q_heads, head_dim]`.
    pub fn prefill(
        &self,
        layer: usize,
        n_tokens: u32,
        row_start: &[u32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<Vec<f32>, WgpuError> {
        let kernel = self.layer_kernel(&self.prefill, layer, Phase::Prefill)?;
        let s = &self.module.shape;
        let (hq, hkv, d) = (s.q_heads as usize, s.kv_heads as usize, s.head_dim as usize);
        if row_start.first() != Some(&0) || row_start.windows(2).any(|w| w[1] < w[0]) {
            return Err(WgpuError::Input(
                "row_start must start at 0 and never decrease".into(),
            ));
        }
        check_n(n_tokens)?;
        let rows = row_start.len() - 1;
        let total = row_start[rows] as usize;
        check_len("q", q, total * hq * d, "[total_tokens, q_heads, head_dim]")?;
        check_len(
            "k",
            k,
            total * hkv * d,
            "[total_tokens, kv_heads, head_dim]",
        )?;
        check_len(
            "v",
            v,
            total * hkv * d,
            "[total_tokens, kv_heads, head_dim]",
        )?;
        let max_len = row_start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        if total == 0 {
            return Ok(Vec::new());
        }
        // Buffer, bind group and dispatch errors (e.g. a tensor above the adapter's
        // binding limit) come back as values, not as wgpu's default panic.
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let row_start_buf = self.storage_u32("row_start", row_start);
        let q_buf = self.storage_tensor("q", q);
        let k_buf = self.storage_tensor("k", k);
        let v_buf = self.storage_tensor("v", v);
        let o_buf = self.poisoned_output("o", total * hq * d, self.module.storage);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.encode_prefill(
                &mut pass,
                layer,
                n_tokens,
                rows as u32,
                max_len,
                [&row_start_buf, &q_buf, &k_buf, &v_buf, &o_buf],
            )?;
        }
        self.submit_and_read(&kernel.name, scope, encoder, &o_buf, total * hq * d)
    }

    /// Prefill of one layer over one row whose queries and output are held in buffers of
    /// `part_tokens` tokens each (the last may be shorter), one dispatch per part with
    /// [`Arg::QStart`] at the part's first token, and K and V whole: how an executor runs
    /// a row whose per-token activations exceed one storage binding (docs/DESIGN.md §7).
    /// `q` is `[tokens, q_heads, head_dim]`, `k` and `v` `[tokens, kv_heads, head_dim]`;
    /// returns O as `[tokens, q_heads, head_dim]`, the parts' outputs in order.
    /// Errors: `part_tokens` not a positive multiple of the kernel's query tile, or the
    /// errors of [`Self::prefill`].
    pub fn prefill_in_parts(
        &self,
        layer: usize,
        n_tokens: u32,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        part_tokens: u32,
    ) -> Result<Vec<f32>, WgpuError> {
        let kernel = self.layer_kernel(&self.prefill, layer, Phase::Prefill)?;
        let q_tile = match kernel.abi.grid {
            crate::codegen::abi::Grid::QueryTiles { q_tile } => q_tile,
            other => {
                return Err(WgpuError::Input(format!(
                    "{}: launched by {other:?}, not by query tiles",
                    kernel.name
                )))
            }
        };
        if part_tokens == 0 || !part_tokens.is_multiple_of(q_tile) {
            return Err(WgpuError::Input(format!(
                "part_tokens {part_tokens} must be a positive multiple of {}'s query tile ({q_tile} tokens)",
                kernel.name
            )));
        }
        check_n(n_tokens)?;
        let s = &self.module.shape;
        let (hq, hkv, d) = (s.q_heads as usize, s.kv_heads as usize, s.head_dim as usize);
        let total = q.len() / (hq * d).max(1);
        check_len("q", q, total * hq * d, "[tokens, q_heads, head_dim]")?;
        check_len("k", k, total * hkv * d, "[tokens, kv_heads, head_dim]")?;
        check_len("v", v, total * hkv * d, "[tokens, kv_heads, head_dim]")?;
        if total == 0 {
            return Ok(Vec::new());
        }
        let row_start = self.storage_u32("row_start", &[0, total as u32]);
        let k_buf = self.storage_tensor("k", k);
        let v_buf = self.storage_tensor("v", v);
        let part = part_tokens as usize;
        let mut out = Vec::with_capacity(total * hq * d);
        for q_start in (0..total).step_by(part) {
            let len = part.min(total - q_start);
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let q_buf =
                self.storage_tensor("q part", &q[q_start * hq * d..(q_start + len) * hq * d]);
            let o_buf = self.poisoned_output("o part", len * hq * d, self.module.storage);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                self.prefill_dispatch_from(
                    layer,
                    n_tokens,
                    1,
                    q_start as u32,
                    len as u32,
                    [&row_start, &q_buf, &k_buf, &v_buf, &o_buf],
                )?
                .encode(&mut pass);
            }
            out.extend(self.submit_and_read(&kernel.name, scope, encoder, &o_buf, len * hq * d)?);
        }
        Ok(out)
    }

    /// Records the prefill of one layer into a compute pass over device buffers
    /// `[row_start, q, k, v, o]` (layouts as in [`Self::prefill`]); `max_len` is the
    /// longest row. For runtimes that keep activations on the device.
    pub fn encode_prefill(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        max_len: u32,
        buffers: [&wgpu::Buffer; 5],
    ) -> Result<(), WgpuError> {
        self.prefill_dispatch(layer, n_tokens, rows, max_len, buffers)?
            .encode(pass);
        Ok(())
    }

    /// The prefill of one layer as a reusable [`Dispatch`] (see [`Self::encode_prefill`]).
    pub fn prefill_dispatch(
        &self,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        max_len: u32,
        buffers: [&wgpu::Buffer; 5],
    ) -> Result<Dispatch, WgpuError> {
        self.prefill_dispatch_from(layer, n_tokens, rows, 0, max_len, buffers)
    }

    /// [`Self::prefill_dispatch`] over the queries `q_start .. q_start + q_len` of each row
    /// ([`Arg::QStart`]): Q and `o` hold the row's tokens from `row_start + q_start` on,
    /// K and V the whole rows. With `q_start` a multiple of the kernel's query tile, a
    /// one-row pass can hold its queries in several buffers (docs/DESIGN.md §7).
    /// Errors: as [`Self::prefill_dispatch`].
    pub fn prefill_dispatch_from(
        &self,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        q_start: u32,
        q_len: u32,
        buffers: [&wgpu::Buffer; 5],
    ) -> Result<Dispatch, WgpuError> {
        let kernel = self.layer_kernel(&self.prefill, layer, Phase::Prefill)?;
        check_n(n_tokens)?;
        let [row_start, q, k, v, o] = buffers;
        let size = LaunchSize {
            rows,
            max_row_len: q_len,
            ..self.launch_size()
        };
        let values = [
            (Arg::NTokens, n_tokens),
            (Arg::Rows, rows),
            (Arg::QStart, q_start),
        ];
        let buffers = [
            (Arg::RowStart, row_start),
            (Arg::Q, q),
            (Arg::K, k),
            (Arg::V, v),
            (Arg::Out, o),
            (Arg::Rules, &self.rules[layer]),
        ];
        self.dispatch(kernel, &values, &buffers, &size)
    }

    /// The decode work list for rows at `row_pos` over `layout`: every (row, KV head)
    /// segment's written slots in chunks of a multiple of the kernel's `tiles.k_tile`
    /// slots, the multiple chosen from the layer's total work (`worklist::choose_chunk`
    /// with `consts::wgsl_decode_concurrent_workgroups_of` for the group, head_dim and the
    /// flat decode's subgroups a workgroup: few long chunks when there is much work,
    /// short ones when few segments must fill the GPU; docs/DESIGN.md §6). A runtime that
    /// records a step once for many steps passes `u32::MAX` for every row (the list then
    /// covers whole segments: unwritten slots are masked in the kernel), so the list does
    /// not change while a ring fills.
    pub fn decode_work(&self, layout: &CacheLayout, row_pos: &[u32]) -> DecodeWork {
        let chunk = choose_chunk(
            layout,
            row_pos,
            self.chunk,
            crate::lower::consts::wgsl_decode_concurrent_workgroups_of(
                self.module.shape.group_size(),
                self.module.shape.head_dim,
                self.decode
                    .values()
                    .map(|k| u32::from(k.flat_subgroups))
                    .max()
                    .unwrap_or(0),
            ),
        );
        DecodeWork::build(layout, row_pos, chunk)
    }

    /// [`Self::decode_work`] with chunks of exactly `chunk` slots (rounded up to the
    /// kernel's tile), for tests and benchmarks that pick the split themselves.
    pub fn decode_work_chunked(
        &self,
        layout: &CacheLayout,
        row_pos: &[u32],
        chunk: u32,
    ) -> DecodeWork {
        DecodeWork::build(
            layout,
            row_pos,
            chunk.max(1).div_ceil(self.chunk) * self.chunk,
        )
    }

    /// f32 elements of the decode scratch for a work list of `n_items` items:
    /// `[n_items, group_size, head_dim + 2]`.
    pub fn partials_len(&self, n_items: u32) -> usize {
        let s = &self.module.shape;
        n_items as usize * s.group_size() as usize * (s.head_dim as usize + 2)
    }

    /// Whether the decode kernels merge each segment's partials themselves
    /// (`WgslTuning::decode_fused_merge`: their ABI binds the per-segment counters), so a
    /// step is one dispatch and its scratch must start as [`Self::decode_scratch`] makes it.
    pub fn decode_fused(&self) -> bool {
        self.decode
            .values()
            .any(|k| k.abi.params.iter().any(|p| p.arg == Arg::SegDone))
    }

    /// The decode's scratch for a work list of `n_items` items over `rows` rows: the
    /// partials ([`Self::partials_len`] f32, every word [`DECODE_PARTIAL_EMPTY`] where the
    /// decode merges itself: its mergers poll a word until an item has written it, and
    /// empty it again) and the per-segment arrival counters (`rows × kv_heads` u32, zero;
    /// the last item of each segment re-arms its own). Both stay valid across steps and
    /// layers of the same head shape, provided every step runs to its end.
    pub fn decode_scratch(&self, n_items: u32, rows: u32) -> (wgpu::Buffer, wgpu::Buffer) {
        let fill = if self.decode_fused() {
            DECODE_PARTIAL_EMPTY
        } else {
            0
        };
        let partials = vec![fill; self.partials_len(n_items).max(1)];
        let segs = rows as usize * self.module.shape.kv_heads as usize;
        let words = |label: &str, data: &[u32]| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                })
        };
        (
            words("partials", &partials),
            words("seg_done", &vec![0u32; segs.max(1)]),
        )
    }

    /// Records one decode step (decode + merge) of one layer into a compute pass over
    /// device buffers `[row_pos, q, k_cache, v_cache, work, partials, seg_done, o]`;
    /// `work` holds [`Self::decode_work`]'s `flat()` list of `n_items` items, `partials`
    /// and `seg_done` are [`Self::decode_scratch`]`(n_items, rows)`.
    pub fn encode_decode(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        n_items: u32,
        buffers: [&wgpu::Buffer; 8],
    ) -> Result<(), WgpuError> {
        // Same pass: wgpu orders the merge's read of `partials` after the writes.
        for d in self.decode_dispatches(layer, n_tokens, rows, n_items, buffers)? {
            d.encode(pass);
        }
        Ok(())
    }

    /// One decode step of one layer as reusable [`Dispatch`]es (the decode, then the merge
    /// unless the decode merges itself: [`Self::decode_fused`]), for runtimes that record
    /// the same step many times over the same buffers (`buffers` as in
    /// [`Self::encode_decode`]).
    pub fn decode_dispatches(
        &self,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        n_items: u32,
        buffers: [&wgpu::Buffer; 8],
    ) -> Result<Vec<Dispatch>, WgpuError> {
        let kernel = self.layer_kernel(&self.decode, layer, Phase::Decode)?;
        check_n(n_tokens)?;
        let [row_pos, q, k_cache, v_cache, work, partials, seg_done, o] = buffers;
        // Lists longer than a grid dimension fold into y (the kernel reads the item as
        // y * num_workgroups.x + x and ends workgroups past the list).
        let max_groups = self
            .device
            .limits()
            .max_compute_workgroups_per_dimension
            .max(1);
        // A workgroup of the pipelined decode on subgroups takes `items` consecutive items.
        let groups = n_items.div_ceil(u32::from(kernel.items));
        let folded = fold_items(groups, max_groups).ok_or_else(|| {
            WgpuError::Input(format!(
                "the decode work list has {n_items} items, above the adapter's \
                 {max_groups} x {max_groups} workgroups per dispatch (fewer rows per step fit)"
            ))
        })?;
        let values = [
            (Arg::NTokens, n_tokens),
            (Arg::Rows, rows),
            (Arg::NItems, n_items),
        ];
        let buffers = [
            (Arg::RowPos, row_pos),
            (Arg::Q, q),
            (Arg::KCache, k_cache),
            (Arg::VCache, v_cache),
            (Arg::Work, work),
            (Arg::Partials, partials),
            (Arg::SegDone, seg_done),
            (Arg::Out, o),
            (Arg::Rules, &self.rules[layer]),
        ];
        let size = LaunchSize {
            rows,
            n_items,
            ..self.launch_size()
        };
        let mut decode = self.dispatch(kernel, &values, &buffers, &size)?;
        decode.groups = folded;
        if kernel.abi.params.iter().any(|p| p.arg == Arg::SegDone) {
            return Ok(vec![decode]);
        }
        Ok(vec![
            decode,
            self.dispatch(&self.merge, &values, &buffers, &size)?,
        ])
    }

    /// One decode step of one layer: every row's current token (at `row_pos[b]`) is
    /// already in the cache, laid out as `CacheLayout::new(layer, span, n_tokens)`.
    /// The decode and merge dispatches go into one command buffer. Returns O as
    /// `[rows, q_heads, head_dim]`. The work list covers each segment's written slots.
    pub fn decode(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, WgpuError> {
        self.decode_listing(layer, n_tokens, row_pos, row_pos, None, q, k_cache, v_cache)
    }

    /// [`Self::decode`] with the work list cut into chunks of `chunk` slots (rounded up
    /// to the kernel's tile) instead of the host's choice: tests use it to run chunks of
    /// one tile and of several tiles (the kernel's online softmax across tiles) and the
    /// merge over many chunks.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_chunked(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        chunk: u32,
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, WgpuError> {
        let c = Some(chunk);
        self.decode_listing(layer, n_tokens, row_pos, row_pos, c, q, k_cache, v_cache)
    }

    /// `steps` decode steps of one layer back to back over one scratch
    /// ([`Self::decode_scratch`]), as the wgpu engine runs a request's steps, chunks of
    /// `chunk` slots (rounded up to the tile): O is cleared to 0 before each step after the
    /// first, and the last step's O is returned, with whether the scratch is back to its
    /// start (every partial word [`DECODE_PARTIAL_EMPTY`] and every counter 0) where the
    /// decode merges itself (always true otherwise). A fused merge that failed to re-arm a
    /// counter would leave a segment unmerged (O = 0), and one that left a word filled
    /// would let the next step read a stale partial: tests check both.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_repeated(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        chunk: u32,
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
        steps: u32,
    ) -> Result<(Vec<f32>, bool), WgpuError> {
        let c = Some(chunk);
        self.decode_steps(
            layer, n_tokens, row_pos, row_pos, c, q, k_cache, v_cache, steps,
        )
    }

    /// The u32 words of a buffer made with COPY_SRC.
    fn read_words(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>, WgpuError> {
        let bytes = buffer.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        map_for_read(&self.device, &staging)?;
        let words = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| WgpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        staging.unmap();
        Ok(words)
    }

    /// Slots per tile of the decode kernels (work-list chunks are multiples of it).
    pub fn decode_tile(&self) -> u32 {
        self.chunk
    }

    /// [`Self::decode`] with a work list over whole segments, written or not, as the wgpu
    /// engine launches it (its recorded step keeps one list for the whole request); the
    /// kernel must mask the unwritten slots.
    pub fn decode_whole_segments(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, WgpuError> {
        let whole = vec![u32::MAX; row_pos.len()];
        self.decode_listing(layer, n_tokens, row_pos, &whole, None, q, k_cache, v_cache)
    }

    /// A decode step whose work list is built for rows at `list_pos`, in chunks of
    /// `chunk` slots if given, else as [`Self::decode_work`] chooses.
    #[allow(clippy::too_many_arguments)]
    fn decode_listing(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        list_pos: &[u32],
        chunk: Option<u32>,
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
    ) -> Result<Vec<f32>, WgpuError> {
        let (out, _) = self.decode_steps(
            layer, n_tokens, row_pos, list_pos, chunk, q, k_cache, v_cache, 1,
        )?;
        Ok(out)
    }

    /// `steps` (at least one) decode steps of one layer over one work list, built for rows
    /// at `list_pos` in chunks of `chunk` slots if given (else as [`Self::decode_work`]
    /// chooses), and one scratch: the decode that merges itself gets
    /// [`Self::decode_scratch`], the separate merge partials poisoned with NaN (so a read
    /// of a partial no item wrote shows). O is cleared to 0 before each step after the
    /// first; returns the last step's O and whether the scratch is back to its start (see
    /// [`Self::decode_repeated`]; always true without the fused merge).
    #[allow(clippy::too_many_arguments)]
    fn decode_steps(
        &self,
        layer: usize,
        n_tokens: u32,
        row_pos: &[u32],
        list_pos: &[u32],
        chunk: Option<u32>,
        q: &[f32],
        k_cache: &[f32],
        v_cache: &[f32],
        steps: u32,
    ) -> Result<(Vec<f32>, bool), WgpuError> {
        let kernel = self.layer_kernel(&self.decode, layer, Phase::Decode)?;
        check_n(n_tokens)?;
        let s = &self.module.shape;
        let (hq, d) = (s.q_heads as usize, s.head_dim as usize);
        let layout = CacheLayout::new(&self.module.layers[layer], &self.module.span, n_tokens);
        let rows = row_pos.len();
        let slots = layout.row_slots as usize;
        check_len("q", q, rows * hq * d, "[rows, q_heads, head_dim]")?;
        let cache_shape = format!("[rows, row_slots = {slots}, head_dim] at N = {n_tokens}");
        check_len("k_cache", k_cache, rows * slots * d, &cache_shape)?;
        check_len("v_cache", v_cache, rows * slots * d, &cache_shape)?;
        if rows == 0 {
            return Ok((Vec::new(), true));
        }
        let work = match chunk {
            Some(c) => self.decode_work_chunked(&layout, list_pos, c),
            None => self.decode_work(&layout, list_pos),
        };
        let n_items = work.n_items();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let row_pos_buf = self.storage_u32("row_pos", row_pos);
        let q_buf = self.storage_tensor("q", q);
        let k_buf = self.storage_tensor("k_cache", k_cache);
        let v_buf = self.storage_tensor("v_cache", v_cache);
        let work_buf = self.storage_u32("work", &work.flat());
        let (partials, seg_done) = if self.decode_fused() {
            self.decode_scratch(n_items, rows as u32)
        } else {
            let p = self.poisoned_output("partials", self.partials_len(n_items), StorageType::F32);
            (p, self.storage_u32("seg_done", &[0]))
        };
        let o_buf = self.poisoned_output("o", rows * hq * d, self.module.storage);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        for step in 0..steps.max(1) {
            if step > 0 {
                encoder.clear_buffer(&o_buf, 0, None);
            }
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.encode_decode(
                &mut pass,
                layer,
                n_tokens,
                rows as u32,
                n_items,
                [
                    &row_pos_buf,
                    &q_buf,
                    &k_buf,
                    &v_buf,
                    &work_buf,
                    &partials,
                    &seg_done,
                    &o_buf,
                ],
            )?;
        }
        let out = self.submit_and_read(&kernel.name, scope, encoder, &o_buf, rows * hq * d)?;
        if !self.decode_fused() {
            return Ok((out, true));
        }
        let p = self.read_words(&partials)?;
        let c = self.read_words(&seg_done)?;
        let clean = p.iter().all(|&w| w == DECODE_PARTIAL_EMPTY) && c.iter().all(|&w| w == 0);
        Ok((out, clean))
    }

    /// [`Self::prefill`] on a test case's layer, N, rows and Q/K/V; O as
    /// `[total_tokens, q_heads, head_dim]`, errors as there.
    pub fn run_prefill_case(&self, case: &PrefillCase) -> Result<Vec<f32>, WgpuError> {
        self.prefill(
            case.layer,
            case.n_tokens,
            &case.row_start,
            &case.q,
            &case.k,
            &case.v,
        )
    }

    /// [`Self::decode`] on a test case's layer, N, row positions, Q and caches; O as
    /// `[rows, q_heads, head_dim]`, errors as there.
    pub fn run_decode_case(&self, case: &DecodeCase) -> Result<Vec<f32>, WgpuError> {
        self.decode(
            case.layer,
            case.layout.n_tokens,
            &case.row_pos,
            &case.q,
            &case.k_cache,
            &case.v_cache,
        )
    }

    fn uniform(&self, words: &[u32; 4]) -> wgpu::Buffer {
        uniform_buffer(&self.device, words)
    }

    fn storage_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        storage_u32_buffer(&self.device, label, data)
    }

    fn storage_tensor(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let bytes = tensor_bytes(data, self.module.storage);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    /// An output buffer filled with NaN, so any element a kernel fails to write shows up.
    fn poisoned_output(&self, label: &str, len: usize, storage: StorageType) -> wgpu::Buffer {
        let bytes = tensor_bytes(&vec![f32::NAN; len], storage);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    fn launch_size(&self) -> LaunchSize {
        LaunchSize {
            q_heads: self.module.shape.q_heads,
            kv_heads: self.module.shape.kv_heads,
            ..LaunchSize::default()
        }
    }

    /// A dispatch of `kernel` bound from its ABI: the uniform block's words from
    /// `values` (padding 0), every other binding from `buffers`, by [`Arg`]; the grid from
    /// the ABI's rule.
    fn dispatch(
        &self,
        kernel: &Kernel,
        values: &[(Arg, u32)],
        buffers: &[(Arg, &wgpu::Buffer)],
        size: &LaunchSize,
    ) -> Result<Dispatch, WgpuError> {
        let missing = |p: &crate::codegen::abi::Param, arg: Arg| WgpuError::MissingArg {
            kernel: kernel.name.clone(),
            arg,
            index: p.index,
        };
        let mut uniforms = Vec::new();
        for p in &kernel.abi.params {
            if p.arg == Arg::Params {
                let mut words = [0u32; 4];
                for (w, f) in words.iter_mut().zip(&p.fields) {
                    if *f != Arg::Pad {
                        *w = values
                            .iter()
                            .find(|(a, _)| a == f)
                            .map(|(_, v)| *v)
                            .ok_or_else(|| missing(p, *f))?;
                    }
                }
                uniforms.push(self.uniform(&words));
            }
        }
        let mut uniform_iter = uniforms.iter();
        let mut bound: Vec<&wgpu::Buffer> = Vec::with_capacity(kernel.abi.params.len());
        for p in &kernel.abi.params {
            let b = if p.arg == Arg::Params {
                uniform_iter.next().ok_or_else(|| missing(p, p.arg))?
            } else {
                buffers
                    .iter()
                    .find(|(a, _)| *a == p.arg)
                    .map(|(_, b)| *b)
                    .ok_or_else(|| missing(p, p.arg))?
            };
            bound.push(b);
        }
        Ok(Dispatch {
            pipeline: kernel.pipeline.clone(),
            bind: bind_buffers(&self.device, &kernel.pipeline, Some(&kernel.name), &bound),
            groups: kernel.abi.grid.dims(size),
        })
    }

    fn submit_and_read(
        &self,
        kernel: &str,
        scope: wgpu::ErrorScopeGuard,
        mut encoder: wgpu::CommandEncoder,
        output: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<f32>, WgpuError> {
        let bytes = output.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(output, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(WgpuError::Run {
                kernel: kernel.to_string(),
                message: err.to_string(),
            });
        }
        map_for_read(&self.device, &staging)?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| WgpuError::Readback(e.to_string()))?;
        let out = match self.module.storage {
            StorageType::F32 => bytemuck::cast_slice::<u8, f32>(&view)[..len].to_vec(),
            StorageType::F16 => bytemuck::cast_slice::<u8, half::f16>(&view)[..len]
                .iter()
                .map(|x| x.to_f32())
                .collect(),
            StorageType::Bf16 => bytemuck::cast_slice::<u8, half::bf16>(&view)[..len]
                .iter()
                .map(|x| x.to_f32())
                .collect(),
        };
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

fn check_n(n_tokens: u32) -> Result<(), WgpuError> {
    // Kernels evaluate α + floor(β·N) in i32.
    if n_tokens == 0 || n_tokens > i32::MAX as u32 {
        return Err(WgpuError::Input(format!(
            "N = {n_tokens} is out of range: it must be in 1..=2^31-1"
        )));
    }
    Ok(())
}

fn check_len(
    name: &'static str,
    data: &[f32],
    expected: usize,
    shape: &str,
) -> Result<(), WgpuError> {
    if data.len() != expected {
        return Err(WgpuError::Shape {
            name,
            got: data.len(),
            expected,
            shape: shape.to_string(),
        });
    }
    Ok(())
}

/// A uniform buffer holding kernel parameters as 32-bit words.
pub fn uniform_buffer(device: &wgpu::Device, words: &[u32]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(words),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

/// A storage buffer of u32 values, rewritable with `Queue::write_buffer`.
pub fn storage_u32_buffer(device: &wgpu::Device, label: &str, data: &[u32]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    })
}

/// A bind group of group 0 binding `buffers` in order (binding i = `buffers[i]`).
pub fn bind_buffers(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    label: Option<&str>,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Device bytes of a tensor in the plan's storage type (f32, f16 or bf16, little-endian,
/// rounded to nearest). Storage buffers are padded with zeros to a multiple of 4 bytes and
/// at least 4 (an odd-length or empty f16 tensor would otherwise be rejected).
pub fn tensor_bytes(data: &[f32], storage: StorageType) -> Vec<u8> {
    let mut bytes = match storage {
        StorageType::F32 => bytemuck::cast_slice(data).to_vec(),
        StorageType::F16 => {
            let h: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
            bytemuck::cast_slice(&h).to_vec()
        }
        StorageType::Bf16 => {
            let h: Vec<half::bf16> = data.iter().map(|&x| half::bf16::from_f32(x)).collect();
            bytemuck::cast_slice(&h).to_vec()
        }
    };
    bytes.resize(bytes.len().next_multiple_of(4).max(4), 0);
    bytes
}

/// Maps `staging` (MAP_READ, its copies already submitted) for reading and waits until it
/// is mapped: the one read-back wait of the attention executor.
fn map_for_read(device: &wgpu::Device, staging: &wgpu::Buffer) -> Result<(), WgpuError> {
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        // The receiver outlives the poll below; a closed channel cannot happen.
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| WgpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| WgpuError::Readback(e.to_string()))?
        .map_err(|e| WgpuError::Readback(e.to_string()))
}

#[cfg(test)]
mod coop_choice_tests {
    use super::{choose_coop_matrix, choose_subgroup_size, CoopMatrix};
    use crate::lower::StorageType;
    use wgpu::CooperativeScalarType as T;

    fn config(m: u32, n: u32, k: u32, ab: T, cr: T) -> wgpu::CooperativeMatrixProperties {
        wgpu::CooperativeMatrixProperties {
            m_size: m,
            n_size: n,
            k_size: k,
            ab_type: ab,
            cr_type: cr,
            saturating_accumulation: false,
        }
    }

    /// What the H200's Vulkan driver reports (benches/RESULTS.md): 16x16x16 f16 with an
    /// f32 accumulator is chosen over f16; without it f16; other shapes, f32 operands or a
    /// variable subgroup size give no matrix path (the tiled products run).
    #[test]
    fn the_16x16x16_f16_configuration_is_chosen_from_what_the_adapter_reports() {
        let h200 = [
            config(16, 16, 16, T::F16, T::F16),
            config(16, 8, 16, T::F16, T::F16),
            config(16, 16, 16, T::F16, T::F32),
            config(16, 8, 8, T::F16, T::F32),
        ];
        let f32_acc = CoopMatrix {
            accumulator: StorageType::F32,
            subgroup: 32,
        };
        assert_eq!(choose_coop_matrix(&h200, 32, 32), Some(f32_acc));
        let f16_only = [config(16, 16, 16, T::F16, T::F16)];
        assert_eq!(
            choose_coop_matrix(&f16_only, 64, 64).map(|c| c.accumulator),
            Some(StorageType::F16)
        );
        assert_eq!(choose_coop_matrix(&h200, 8, 32), None);
        assert_eq!(choose_coop_matrix(&[], 32, 32), None);
        let others = [
            config(8, 8, 8, T::F32, T::F32),
            config(16, 8, 16, T::F16, T::F32),
        ];
        assert_eq!(choose_coop_matrix(&others, 32, 32), None);
    }

    /// The subgroup products need the feature and one fixed power-of-two size that
    /// divides a 64-wide workgroup (NVIDIA 32, AMD 64 or 32 fixed, lavapipe's 8).
    #[test]
    fn the_subgroup_products_take_only_a_fixed_size_dividing_64() {
        assert_eq!(choose_subgroup_size(true, 32, 32), Some(32));
        assert_eq!(choose_subgroup_size(true, 64, 64), Some(64));
        assert_eq!(choose_subgroup_size(true, 8, 8), Some(8));
        assert_eq!(choose_subgroup_size(true, 4, 4), None);
        assert_eq!(choose_subgroup_size(false, 32, 32), None);
        assert_eq!(choose_subgroup_size(true, 8, 32), None);
        assert_eq!(choose_subgroup_size(true, 128, 128), None);
        assert_eq!(choose_subgroup_size(true, 24, 24), None);
        assert_eq!(choose_subgroup_size(true, 0, 0), None);
    }
}
