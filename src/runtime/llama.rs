//! GPU executor for Llama-family models on wgpu: weights on the device, the hand-written
//! ops of `shaders/` around the attention kernels `moa-compile` generates for the plan.
//!
//! A request ([`Request`]) fixes N = longest prompt + max new tokens, lowers nothing
//! (the plan was compiled when the engine was built) and allocates every layer's sink +
//! ring cache once from the plan's spans at N. Prefill runs all rows packed (ragged);
//! decode runs one token per row, each row at its own position. Each forward pass is
//! one command buffer (a prefill with progress reports: one per layer); only the sampled
//! token ids (or, for parity tests, the logits) come back to the host.
//!
//! Dense mode is the same code path with a plan whose every span is N.

use std::time::Instant;

use wgpu::util::DeviceExt;

use super::engine::request_n;
use super::shaders::{self, Shader, Types};
use super::wgpu::{
    bind_buffers, storage_u32_buffer, tensor_bytes, uniform_buffer, Dispatch, WgpuAttention,
    WgpuContext,
};
use crate::codegen::{self, Compiled, Target};
use crate::lower::{CacheLayout, KernelModule, StorageType};
use crate::model::{LlamaConfig, Model, Weights};
use crate::plan::{Plan, PlanError};

pub use super::engine::{Engine, EngineError, PrefillProgress, Request, Sampling};

/// A plan in which every head keeps every token: dense attention through the same kernels
/// (`Plan::dense` of the model's shape).
pub fn dense_plan(config: &LlamaConfig) -> Result<Plan, PlanError> {
    Plan::dense(config.model_shape())
}

struct LayerBuffers {
    attn_norm: wgpu::Buffer,
    /// `[(q_heads + 2 kv_heads) * head_dim, hidden]`: q, k, v projections stacked.
    wqkv: wgpu::Buffer,
    wo: wgpu::Buffer,
    ffn_norm: wgpu::Buffer,
    /// `[2 ffn, hidden]`: gate then up, so one linear feeds SwiGLU.
    w_gate_up: wgpu::Buffer,
    w_down: wgpu::Buffer,
}

/// What an unfused RMSNorm needs besides its input and weight: its uniforms, the row
/// index list (identity inside layers) and the buffer it writes.
struct NormIo<'a> {
    params: &'a wgpu::Buffer,
    rows: &'a wgpu::Buffer,
    scratch: &'a wgpu::Buffer,
}

/// What a product reads as its input (see `matvec.wgsl`'s INPUT_MODE).
#[derive(Clone, Copy)]
enum Input<'a> {
    /// f32 activations as they are.
    Plain,
    /// The attention output, in the attention storage type.
    Attention,
    /// RMSNorm of f32 activations with this weight (fused: few-row passes only).
    Norm(&'a wgpu::Buffer),
    /// SwiGLU of a fused [gate | up] buffer (fused: few-row passes only).
    SwiGlu,
}

struct Pipelines {
    embed: wgpu::ComputePipeline,
    rmsnorm: wgpu::ComputePipeline,
    /// Linear with f32 input.
    linear: wgpu::ComputePipeline,
    /// Linear whose input is the attention output (attention storage type).
    linear_attn: wgpu::ComputePipeline,
    /// Few-row (decode) variants: K split across a workgroup.
    matvec: wgpu::ComputePipeline,
    matvec_attn: wgpu::ComputePipeline,
    /// `matvec.wgsl` with RMSNorm (INPUT_MODE 1) or SwiGLU (2) fused into its input.
    matvec_norm: wgpu::ComputePipeline,
    matvec_swiglu: wgpu::ComputePipeline,
    swiglu: wgpu::ComputePipeline,
    rope_kv: wgpu::ComputePipeline,
    argmax: wgpu::ComputePipeline,
    sample: wgpu::ComputePipeline,
}

/// A model on the GPU with the compiled attention kernels of one plan.
pub struct GpuLlama {
    device: wgpu::Device,
    queue: wgpu::Queue,
    config: LlamaConfig,
    plan: Plan,
    module: KernelModule,
    attention: WgpuAttention,
    pipes: Pipelines,
    storage: StorageType,
    embed: wgpu::Buffer,
    /// `None`: tied to `embed`.
    lm_head: Option<wgpu::Buffer>,
    output_norm: wgpu::Buffer,
    layers: Vec<LayerBuffers>,
    /// Bound where a shader declares a buffer that this dispatch does not use.
    dummy: wgpu::Buffer,
    max_binding: u64,
    /// `wgpu <adapter> (<graphics API>)`, for [`Engine::describe`].
    adapter: String,
    weight_bytes: u64,
    /// Use `matvec.wgsl` for few-row products. Off on CPU adapters (lavapipe), where
    /// its workgroup barriers cost more than the parallelism gains (measured: decode
    /// 1.0 → 0.5 tok/s on lavapipe, while a GPU gains).
    split_k_matvec: bool,
}

/// The wgpu engine's part of a [`Request`]: KV caches sized from the plan at N,
/// activations sized for the longest pass, the recorded decode step.
struct WgpuRequest {
    layouts: Vec<CacheLayout>,
    k_cache: Vec<wgpu::Buffer>,
    v_cache: Vec<wgpu::Buffer>,
    rope: wgpu::Buffer,
    act: Activations,
    partials: wgpu::Buffer,
    /// Inputs of decode steps, rewritten every step.
    decode_io: StepIo,
    /// The decode step's dispatches, recorded on the first step and replayed after.
    decode_record: Option<(OutputKind, Vec<Dispatch>)>,
}

/// Names the wgpu engine in [`Request`]s and their errors.
const BACKEND: &str = "wgpu";

struct Activations {
    capacity: usize,
    x: wgpu::Buffer,
    x_alt: wgpu::Buffer,
    h: wgpu::Buffer,
    qkv: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    attn_out: wgpu::Buffer,
    gate_up: wgpu::Buffer,
    ffn_act: wgpu::Buffer,
    last: wgpu::Buffer,
    logits: wgpu::Buffer,
    tokens_out: wgpu::Buffer,
}

/// A packed prefill batch: tokens, per-token (position, row, last position, 0),
/// `row_start`, and the index of each row's last token.
type PackedPrefill = (Vec<u32>, Vec<[u32; 4]>, Vec<u32>, Vec<u32>);

/// What a forward pass returns: logits, or the chosen token of each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputKind {
    Logits,
    Argmax,
    /// Temperature and top-p as f32 bits (they go into a uniform as is).
    Sample {
        temperature: u32,
        top_p: u32,
    },
}

impl OutputKind {
    fn of(s: Sampling) -> OutputKind {
        if s.temperature <= 0.0 {
            OutputKind::Argmax
        } else {
            OutputKind::Sample {
                temperature: s.temperature.to_bits(),
                top_p: s.top_p.clamp(0.0, 1.0).to_bits(),
            }
        }
    }
}

/// Input buffers of one forward pass.
struct StepIo {
    t: usize,
    tokens: wgpu::Buffer,
    /// Per token: (position, row, last position of the row in this pass, 0).
    info: wgpu::Buffer,
    /// Index of each row's last token in the pass.
    last: wgpu::Buffer,
    /// Position of each row's newest token (decode attention).
    row_pos: wgpu::Buffer,
    identity: wgpu::Buffer,
    /// One uniform number per row for sampling.
    uniforms: wgpu::Buffer,
    /// Prefill only: `row_start` and the longest row.
    prefill: Option<(wgpu::Buffer, u32)>,
}

/// Up to this many rows, products use `matvec.wgsl` (K split across a workgroup);
/// above, `linear.wgsl` (one 4 × 4 block per invocation) has enough parallelism.
const MATVEC_MAX_ROWS: usize = 32;

/// f16 where the adapter has SHADER_F16 (unless `force_f32`), else f32.
fn storage_for(ctx: &WgpuContext, force_f32: bool) -> StorageType {
    if ctx.has_f16() && !force_f32 {
        StorageType::F16
    } else {
        StorageType::F32
    }
}

fn elem_bytes(t: StorageType) -> u64 {
    t.bytes() as u64
}

impl GpuLlama {
    /// Uploads the model and compiles the plan's attention kernels (`plan = None`: dense).
    /// f16 storage for weights, activations between kernels stay f32; f16 is used only
    /// where the adapter has SHADER_F16, unless `force_f32`.
    pub fn new(
        ctx: &WgpuContext,
        model: &Model,
        plan: Option<&Plan>,
        force_f32: bool,
    ) -> Result<GpuLlama, EngineError> {
        let plan = match plan {
            Some(p) => {
                model.config.check_plan(p)?;
                p.clone()
            }
            None => dense_plan(&model.config)?,
        };
        let kernels = codegen::compile(&plan, &[Target::Wgsl], storage_for(ctx, force_f32))?;
        Self::with_kernels(ctx, model, &plan, &kernels)
    }

    /// Like [`Self::new`], but the attention kernels are read from a `moa-compile` output
    /// folder (its manifest must match `plan` and the chosen storage type).
    pub fn from_compiled(
        ctx: &WgpuContext,
        model: &Model,
        plan: &Plan,
        force_f32: bool,
        kernels_dir: &std::path::Path,
    ) -> Result<GpuLlama, EngineError> {
        model.config.check_plan(plan)?;
        let storage = storage_for(ctx, force_f32);
        let kernels = Compiled::read(kernels_dir, plan, storage, Target::Wgsl)?;
        Self::with_kernels(ctx, model, plan, &kernels)
    }

    /// Uploads the model and loads `kernels`, the WGSL attention kernels compiled ahead of
    /// time for `plan` (e.g. embedded in an app by its `build.rs`): nothing is generated.
    /// Weights, Q/K/V and the cache use the kernels' storage type. Errors: a plan of another
    /// shape than the model, kernels of another plan or without WGSL, f16 kernels on an
    /// adapter without SHADER_F16, a tensor over the adapter's binding limit.
    pub fn with_kernels(
        ctx: &WgpuContext,
        model: &Model,
        plan: &Plan,
        kernels: &Compiled,
    ) -> Result<GpuLlama, EngineError> {
        let config = model.config.clone();
        config.check_plan(plan)?;
        kernels.check_plan(plan)?;
        let plan = plan.clone();
        if !config.head_dim.is_multiple_of(2)
            || !config.hidden_size.is_multiple_of(4)
            || !config.ffn_size.is_multiple_of(4)
        {
            return Err(EngineError::Input(format!(
                "unsupported shape: head_dim {} must be even, hidden {} and ffn {} multiples of 4",
                config.head_dim, config.hidden_size, config.ffn_size
            )));
        }
        if config.kv_heads > 64 {
            return Err(EngineError::Input(format!(
                "{} KV heads: the RoPE/KV-write shader supports at most 64",
                config.kv_heads
            )));
        }
        let storage = kernels.storage();
        let module = kernels.module().clone();
        let artifacts = kernels.artifacts(Target::Wgsl);
        if artifacts.is_empty() {
            return Err(EngineError::Input(
                "the compiled kernels hold no WGSL: compile the plan for the wgsl target".into(),
            ));
        }
        let attention = WgpuAttention::new(ctx, &module, artifacts)?;
        let device = ctx.device().clone();
        let queue = ctx.queue().clone();
        let max_binding = device.limits().max_storage_buffer_binding_size;
        let types = Types {
            weights: storage,
            input: StorageType::F32,
            attention: storage,
        };
        // `constants`: WGSL overrides. Shaders given constants write their workgroup
        // memory before reading it, so its zero-initialisation (wgpu's default, a cost on
        // every dispatch) is skipped for them.
        let pipe_with = |s: Shader,
                         t: Types,
                         constants: &[(&str, f64)]|
         -> Result<wgpu::ComputePipeline, EngineError> {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(s.name),
                source: wgpu::ShaderSource::Wgsl(s.source(t).into()),
            });
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(s.name),
                layout: None,
                module: &module,
                entry_point: Some(s.entry_point),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: constants.is_empty(),
                },
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(EngineError::Gpu {
                    what: format!("compiling {}", s.name),
                    message: e.to_string(),
                });
            }
            Ok(p)
        };
        let pipe = |s: Shader, t: Types| pipe_with(s, t, &[]);
        let pipes = Pipelines {
            embed: pipe(shaders::EMBED, types)?,
            rmsnorm: pipe(shaders::RMSNORM, types)?,
            linear: pipe(shaders::LINEAR, types)?,
            linear_attn: pipe(
                shaders::LINEAR,
                Types {
                    input: storage,
                    ..types
                },
            )?,
            matvec: pipe_with(shaders::MATVEC, types, &[("INPUT_MODE", 0.0)])?,
            matvec_attn: pipe_with(
                shaders::MATVEC,
                Types {
                    input: storage,
                    ..types
                },
                &[("INPUT_MODE", 0.0)],
            )?,
            matvec_norm: pipe_with(shaders::MATVEC, types, &[("INPUT_MODE", 1.0)])?,
            matvec_swiglu: pipe_with(shaders::MATVEC, types, &[("INPUT_MODE", 2.0)])?,
            swiglu: pipe(shaders::SWIGLU, types)?,
            rope_kv: pipe(shaders::ROPE_KV, types)?,
            argmax: pipe(shaders::ARGMAX, types)?,
            sample: pipe(shaders::SAMPLE, types)?,
        };
        let mut weight_bytes = 0u64;
        let mut upload = |name: &str, data: &[f32], t: StorageType| {
            let bytes = tensor_bytes(data, t);
            weight_bytes += bytes.len() as u64;
            if bytes.len() as u64 > max_binding {
                return Err(EngineError::TooLarge {
                    name: name.to_string(),
                    bytes: bytes.len() as u64,
                    limit: max_binding,
                });
            }
            Ok(
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                }),
            )
        };
        let w: &Weights = &model.weights;
        let embed = upload("token_embd", &w.token_embd.data, storage)?;
        let lm_head = match &w.output {
            Some(t) => Some(upload("output", &t.data, storage)?),
            None => None,
        };
        let output_norm = upload("output_norm", &w.output_norm.data, StorageType::F32)?;
        let mut layers = Vec::new();
        for (i, l) in w.layers.iter().enumerate() {
            let cat = |a: &[f32], b: &[f32], c: &[f32]| [a, b, c].concat();
            layers.push(LayerBuffers {
                attn_norm: upload(
                    &format!("blk.{i}.attn_norm"),
                    &l.attn_norm.data,
                    StorageType::F32,
                )?,
                wqkv: upload(
                    &format!("blk.{i}.attn_qkv"),
                    &cat(&l.attn_q.data, &l.attn_k.data, &l.attn_v.data),
                    storage,
                )?,
                wo: upload(
                    &format!("blk.{i}.attn_output"),
                    &l.attn_output.data,
                    storage,
                )?,
                ffn_norm: upload(
                    &format!("blk.{i}.ffn_norm"),
                    &l.ffn_norm.data,
                    StorageType::F32,
                )?,
                w_gate_up: upload(
                    &format!("blk.{i}.ffn_gate_up"),
                    &cat(&l.ffn_gate.data, &l.ffn_up.data, &[]),
                    storage,
                )?,
                w_down: upload(&format!("blk.{i}.ffn_down"), &l.ffn_down.data, storage)?,
            });
        }
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuLlama {
            device,
            queue,
            config,
            plan,
            module,
            attention,
            pipes,
            storage,
            embed,
            lm_head,
            output_norm,
            layers,
            dummy,
            max_binding,
            adapter: format!("wgpu {} ({:?})", ctx.adapter_name(), ctx.backend()),
            weight_bytes,
            split_k_matvec: ctx.adapter_info().device_type != wgpu::DeviceType::Cpu,
        })
    }

    /// Chooses the few-row product kernel (tests exercise both on any adapter).
    pub fn set_split_k_matvec(&mut self, on: bool) {
        self.split_k_matvec = on;
    }

    fn buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, EngineError> {
        if bytes > self.max_binding {
            return Err(EngineError::TooLarge {
                name: label.to_string(),
                bytes,
                limit: self.max_binding,
            });
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    fn activations(&self, tokens: usize, rows: usize) -> Result<Activations, EngineError> {
        let c = &self.config;
        let f = 4u64;
        let s = elem_bytes(self.storage);
        let t = tokens as u64;
        let heads = (c.q_heads + 2 * c.kv_heads) as u64;
        let hd = c.head_dim as u64;
        Ok(Activations {
            capacity: tokens,
            x: self.buffer("x", t * c.hidden_size as u64 * f)?,
            x_alt: self.buffer("x_alt", t * c.hidden_size as u64 * f)?,
            h: self.buffer("h", t * c.hidden_size as u64 * f)?,
            qkv: self.buffer("qkv", t * heads * hd * f)?,
            q: self.buffer("q", t * c.q_heads as u64 * hd * s)?,
            k: self.buffer("k", t * c.kv_heads as u64 * hd * s)?,
            v: self.buffer("v", t * c.kv_heads as u64 * hd * s)?,
            attn_out: self.buffer("attn_out", t * c.q_heads as u64 * hd * s)?,
            gate_up: self.buffer("gate_up", t * 2 * c.ffn_size as u64 * f)?,
            ffn_act: self.buffer("ffn_act", t * c.ffn_size as u64 * f)?,
            last: self.buffer("last", rows as u64 * c.hidden_size as u64 * f)?,
            logits: self.buffer("logits", rows as u64 * c.vocab_size as u64 * f)?,
            tokens_out: self.buffer("tokens_out", rows as u64 * 4)?,
        })
    }

    fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        uniform_buffer(&self.device, words)
    }

    fn storage_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        storage_u32_buffer(&self.device, label, data)
    }

    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Dispatch {
        let bind = bind_buffers(&self.device, pipeline, None, buffers);
        Dispatch {
            pipeline: pipeline.clone(),
            bind,
            groups,
        }
    }

    /// Can this pass fuse RMSNorm and SwiGLU into its products (`matvec.wgsl` only)?
    fn fuses(&self, rows: usize) -> bool {
        self.split_k_matvec && rows <= MATVEC_MAX_ROWS
    }

    /// `out = f(x) · wᵀ (+ residual)`; `f` is given by `input`. `Input::Norm` and
    /// `Input::SwiGlu` need [`Self::fuses`]; the caller dispatches the op itself otherwise.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &self,
        input: Input,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        residual: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
        rows: usize,
        k: usize,
        n_out: usize,
    ) -> Dispatch {
        let eps = self.config.rms_norm_eps.to_bits();
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            n_out as u32,
            u32::from(residual.is_some()),
            eps,
            0,
            0,
            0,
        ]);
        let norm = match input {
            Input::Norm(weight) => weight,
            _ => &self.dummy,
        };
        // Few rows: split K across a workgroup (a decode step would otherwise run a
        // handful of workgroups, each walking K serially).
        if self.fuses(rows) {
            let pipe = match input {
                Input::Plain => &self.pipes.matvec,
                Input::Attention => &self.pipes.matvec_attn,
                Input::Norm(_) => &self.pipes.matvec_norm,
                Input::SwiGlu => &self.pipes.matvec_swiglu,
            };
            let buffers = [&params, x, w, residual.unwrap_or(&self.dummy), out, norm];
            return self.dispatch(
                pipe,
                &buffers,
                [(n_out as u32).div_ceil(4), (rows as u32).div_ceil(4), 1],
            );
        }
        let pipe = match input {
            Input::Plain => &self.pipes.linear,
            Input::Attention => &self.pipes.linear_attn,
            Input::Norm(_) | Input::SwiGlu => {
                unreachable!("fused inputs are only asked for when the pass fuses")
            }
        };
        let buffers = [&params, x, w, residual.unwrap_or(&self.dummy), out];
        self.dispatch(
            pipe,
            &buffers,
            [(n_out as u32).div_ceil(256), (rows as u32).div_ceil(4), 1],
        )
    }

    /// `out = RMSNorm(x; weight) · wᵀ`: one fused product in few-row passes, else the norm
    /// into `norm.scratch` and a plain product.
    #[allow(clippy::too_many_arguments)]
    fn norm_linear(
        &self,
        d: &mut Vec<Dispatch>,
        fuse: bool,
        norm: &NormIo,
        x: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        w: &wgpu::Buffer,
        out: &wgpu::Buffer,
        rows: usize,
        n_out: usize,
    ) {
        let k = self.config.hidden_size;
        if fuse {
            d.push(self.linear(Input::Norm(weight), x, w, None, out, rows, k, n_out));
        } else {
            d.push(self.dispatch(
                &self.pipes.rmsnorm,
                &[norm.params, x, norm.rows, weight, norm.scratch],
                [rows as u32, 1, 1],
            ));
            d.push(self.linear(Input::Plain, norm.scratch, w, None, out, rows, k, n_out));
        }
    }

    /// Device buffers for one pass's inputs (tokens, per-token info, each row's last
    /// token, positions, sampling uniforms), writable so decode steps reuse them.
    fn step_io(
        &self,
        tokens: &[u32],
        info: &[[u32; 4]],
        last: &[u32],
        row_start: Option<&[u32]>,
    ) -> StepIo {
        // Ids were checked against the vocabulary by the callers (`engine::check_ids`); the clamp
        // only keeps the embedding gather in bounds for the zero-filled decode buffers.
        let vocab = self.config.vocab_size as u32;
        let clamped: Vec<u32> = tokens.iter().map(|&x| x.min(vocab - 1)).collect();
        let row_pos: Vec<u32> = last.iter().map(|&i| info[i as usize][0]).collect();
        let identity: Vec<u32> = (0..tokens.len() as u32).collect();
        StepIo {
            t: tokens.len(),
            tokens: self.storage_u32("tokens", &clamped),
            info: self.storage_u32("tok_info", info.as_flattened()),
            last: self.storage_u32("last_index", last),
            row_pos: self.storage_u32("row_pos", &row_pos),
            identity: self.storage_u32("rows", &identity),
            uniforms: self.storage_u32("uniforms", &vec![0; last.len()]),
            prefill: row_start.map(|r| {
                let max_len = r.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                (self.storage_u32("row_start", r), max_len)
            }),
        }
    }

    /// Every dispatch of one forward pass over `io`, in order. Prefill passes record
    /// once; decode passes record once per request and are replayed every step.
    fn record(
        &self,
        req: &Request,
        io: &StepIo,
        output: OutputKind,
    ) -> Result<Vec<Dispatch>, EngineError> {
        Ok(self.record_marked(req, io, output)?.0)
    }

    /// [`Self::record`] plus, per layer, the index one past its last dispatch (the points
    /// where a prefill can be split into one submission per layer to report progress).
    fn record_marked(
        &self,
        req: &Request,
        io: &StepIo,
        output: OutputKind,
    ) -> Result<(Vec<Dispatch>, Vec<usize>), EngineError> {
        let mut layer_end = Vec::with_capacity(self.layers.len());
        let c = &self.config;
        let t = io.t;
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let a = &st.act;
        let (hidden, hd) = (c.hidden_size, c.head_dim);
        let qkv_dim = (c.q_heads + 2 * c.kv_heads) * hd;
        let norm_params = self.uniform(&[t as u32, hidden as u32, c.rms_norm_eps.to_bits(), 0]);
        let mut d = Vec::new();
        let p = self.uniform(&[t as u32, hidden as u32, c.vocab_size as u32, 0]);
        d.push(self.dispatch(
            &self.pipes.embed,
            &[&p, &io.tokens, &self.embed, &a.x],
            [(hidden as u32).div_ceil(64), t as u32, 1],
        ));
        // Decode-sized passes fuse both RMSNorms and SwiGLU into the products that read
        // them: 7 dispatches per layer instead of 10.
        let fuse = self.fuses(t);
        for (l, lw) in self.layers.iter().enumerate() {
            let norm = NormIo {
                params: &norm_params,
                rows: &io.identity,
                scratch: &a.h,
            };
            self.norm_linear(
                &mut d,
                fuse,
                &norm,
                &a.x,
                &lw.attn_norm,
                &lw.wqkv,
                &a.qkv,
                t,
                qkv_dim,
            );
            let layout = &st.layouts[l];
            let mut words = vec![
                t as u32,
                c.q_heads as u32,
                c.kv_heads as u32,
                hd as u32,
                layout.row_slots,
                1,
                0,
                0,
            ];
            for i in 0..64 {
                match layout.segments.get(i) {
                    Some(s) => words.extend([s.offset, s.sink, s.ring, 0]),
                    None => words.extend([0, 0, 0, 0]),
                }
            }
            let rp = self.uniform(&words);
            d.push(self.dispatch(
                &self.pipes.rope_kv,
                &[
                    &rp,
                    &a.qkv,
                    &io.info,
                    &st.rope,
                    &a.q,
                    &a.k,
                    &a.v,
                    &st.k_cache[l],
                    &st.v_cache[l],
                ],
                [
                    (hd as u32 / 2).div_ceil(32),
                    (c.q_heads + 2 * c.kv_heads) as u32,
                    t as u32,
                ],
            ));
            match &io.prefill {
                Some((row_start, max_len)) => d.push(self.attention.prefill_dispatch(
                    l,
                    req.n_tokens(),
                    req.rows() as u32,
                    *max_len,
                    [row_start, &a.q, &a.k, &a.v, &a.attn_out],
                )?),
                None => d.extend(self.attention.decode_dispatches(
                    l,
                    req.n_tokens(),
                    req.rows() as u32,
                    self.attention.n_chunks(layout),
                    [
                        &io.row_pos,
                        &a.q,
                        &st.k_cache[l],
                        &st.v_cache[l],
                        &st.partials,
                        &a.attn_out,
                    ],
                )?),
            }
            d.push(self.linear(
                Input::Attention,
                &a.attn_out,
                &lw.wo,
                Some(&a.x),
                &a.x_alt,
                t,
                c.q_heads * hd,
                hidden,
            ));
            self.norm_linear(
                &mut d,
                fuse,
                &norm,
                &a.x_alt,
                &lw.ffn_norm,
                &lw.w_gate_up,
                &a.gate_up,
                t,
                2 * c.ffn_size,
            );
            if fuse {
                d.push(self.linear(
                    Input::SwiGlu,
                    &a.gate_up,
                    &lw.w_down,
                    Some(&a.x_alt),
                    &a.x,
                    t,
                    c.ffn_size,
                    hidden,
                ));
            } else {
                let sp = self.uniform(&[t as u32, c.ffn_size as u32, 0, 0]);
                d.push(self.dispatch(
                    &self.pipes.swiglu,
                    &[&sp, &a.gate_up, &a.ffn_act],
                    [(c.ffn_size as u32).div_ceil(64), t as u32, 1],
                ));
                d.push(self.linear(
                    Input::Plain,
                    &a.ffn_act,
                    &lw.w_down,
                    Some(&a.x_alt),
                    &a.x,
                    t,
                    c.ffn_size,
                    hidden,
                ));
            }
            layer_end.push(d.len());
        }
        let rows = req.rows();
        let fp = self.uniform(&[rows as u32, hidden as u32, c.rms_norm_eps.to_bits(), 0]);
        d.push(self.dispatch(
            &self.pipes.rmsnorm,
            &[&fp, &a.x, &io.last, &self.output_norm, &a.last],
            [rows as u32, 1, 1],
        ));
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        d.push(self.linear(
            Input::Plain,
            &a.last,
            head,
            None,
            &a.logits,
            rows,
            hidden,
            c.vocab_size,
        ));
        match output {
            OutputKind::Logits => {}
            OutputKind::Argmax => {
                let p = self.uniform(&[rows as u32, c.vocab_size as u32, 0, 0]);
                d.push(self.dispatch(
                    &self.pipes.argmax,
                    &[&p, &a.logits, &a.tokens_out],
                    [rows as u32, 1, 1],
                ));
            }
            OutputKind::Sample { temperature, top_p } => {
                let p = self.uniform(&[rows as u32, c.vocab_size as u32, temperature, top_p]);
                d.push(self.dispatch(
                    &self.pipes.sample,
                    &[&p, &a.logits, &io.uniforms, &a.tokens_out],
                    [rows as u32, 1, 1],
                ));
            }
        }
        Ok((d, layer_end))
    }

    /// Encodes `dispatches` into one command buffer, submits it and reads back the
    /// logits or the chosen tokens.
    fn run_pass(
        &self,
        req: &Request,
        dispatches: &[Dispatch],
        output: OutputKind,
    ) -> Result<Vec<u32>, EngineError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.encode(&mut pass);
            }
        }
        let (src, words) = self.output_buffer(req, output)?;
        self.read_back(scope, encoder, src, words)
    }

    /// [`Self::run_pass`] submitted one layer at a time, waiting for each, so `progress`
    /// hears of every finished layer: real progress of a single prefill pass (every layer
    /// processes every token), at the cost of one device round trip per layer.
    fn run_pass_by_layer(
        &self,
        req: &Request,
        dispatches: &[Dispatch],
        layer_end: &[usize],
        output: OutputKind,
        tokens: usize,
        progress: &mut dyn FnMut(&PrefillProgress),
    ) -> Result<Vec<u32>, EngineError> {
        let t0 = Instant::now();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let encode = |range: &[Dispatch]| {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for d in range {
                    d.encode(&mut pass);
                }
            }
            encoder
        };
        let mut start = 0;
        for (i, &end) in layer_end.iter().enumerate() {
            self.queue
                .submit([encode(&dispatches[start..end]).finish()]);
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| EngineError::Gpu {
                    what: "waiting for the GPU".into(),
                    message: e.to_string(),
                })?;
            start = end;
            progress(&PrefillProgress {
                layers_done: i + 1,
                layers: layer_end.len(),
                tokens,
                elapsed: t0.elapsed(),
            });
        }
        let (src, words) = self.output_buffer(req, output)?;
        self.read_back(scope, encode(&dispatches[start..]), src, words)
    }

    /// The buffer a pass's result is read from and its length in 32-bit words: the
    /// logits `[rows][vocab]` or the chosen tokens `[rows]`.
    fn output_buffer<'r>(
        &self,
        req: &'r Request,
        output: OutputKind,
    ) -> Result<(&'r wgpu::Buffer, usize), EngineError> {
        let act = &req.state::<WgpuRequest>(BACKEND)?.act;
        Ok(match output {
            OutputKind::Logits => (&act.logits, req.rows() * self.config.vocab_size),
            _ => (&act.tokens_out, req.rows()),
        })
    }

    /// Draws this step's uniform numbers for sampling (one per row).
    fn write_uniforms(&self, req: &mut Request, io_uniforms: &wgpu::Buffer) {
        let u: Vec<u32> = req.draw_uniforms().iter().map(|x| x.to_bits()).collect();
        self.queue
            .write_buffer(io_uniforms, 0, bytemuck::cast_slice(&u));
    }

    /// A prefill pass over packed rows: one submission, or one per layer with `progress`.
    fn forward_prefill(
        &self,
        req: &mut Request,
        packed: PackedPrefill,
        output: OutputKind,
        progress: Option<&mut dyn FnMut(&PrefillProgress)>,
    ) -> Result<Vec<u32>, EngineError> {
        let (tokens, info, row_start, last) = packed;
        let rows = req.rows();
        let st = req.state_mut::<WgpuRequest>(BACKEND)?;
        if tokens.len() > st.act.capacity {
            st.act = self.activations(tokens.len(), rows)?;
            st.decode_record = None;
        }
        let io = self.step_io(&tokens, &info, &last, Some(&row_start));
        self.write_uniforms(req, &io.uniforms);
        match progress {
            None => {
                let rec = self.record(req, &io, output)?;
                self.run_pass(req, &rec, output)
            }
            Some(progress) => {
                let (rec, layer_end) = self.record_marked(req, &io, output)?;
                self.run_pass_by_layer(req, &rec, &layer_end, output, tokens.len(), progress)
            }
        }
    }

    /// A decode pass: one token per row, through the request's recorded dispatches.
    fn forward_decode(
        &self,
        req: &mut Request,
        tokens: &[u32],
        output: OutputKind,
    ) -> Result<Vec<u32>, EngineError> {
        req.check_decode(tokens, self.config.vocab_size)?;
        let info: Vec<[u32; 4]> = req
            .row_len()
            .iter()
            .enumerate()
            .map(|(b, &pos)| [pos, b as u32, pos, 0])
            .collect();
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let q = &self.queue;
        q.write_buffer(&st.decode_io.tokens, 0, bytemuck::cast_slice(tokens));
        q.write_buffer(
            &st.decode_io.info,
            0,
            bytemuck::cast_slice(info.as_flattened()),
        );
        q.write_buffer(
            &st.decode_io.row_pos,
            0,
            bytemuck::cast_slice(req.row_len()),
        );
        let uniforms = st.decode_io.uniforms.clone();
        self.write_uniforms(req, &uniforms);
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let stale = !matches!(&st.decode_record, Some((k, _)) if *k == output);
        if stale {
            let rec = self.record(req, &st.decode_io, output)?;
            req.state_mut::<WgpuRequest>(BACKEND)?.decode_record = Some((output, rec));
        }
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let out = match &st.decode_record {
            Some((_, rec)) => self.run_pass(req, rec, output)?,
            None => {
                return Err(EngineError::Input(
                    "decode dispatches were not recorded".into(),
                ))
            }
        };
        req.advance();
        Ok(out)
    }

    fn read_back(
        &self,
        scope: wgpu::ErrorScopeGuard,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        words: usize,
    ) -> Result<Vec<u32>, EngineError> {
        let bytes = (words * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let gpu = |what: &str, message: String| EngineError::Gpu {
            what: what.to_string(),
            message,
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(gpu("a forward pass", e.to_string()));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver lives until the poll below returns.
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| gpu("waiting for the GPU", e.to_string()))?;
        rx.recv()
            .map_err(|e| gpu("read-back", e.to_string()))?
            .map_err(|e| gpu("read-back", e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| gpu("read-back", e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, u32>(&view)[..words].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Checks the prompts (see [`Request::begin_prefill`]) and packs them into one
    /// ragged batch.
    fn prefill_inputs(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
    ) -> Result<PackedPrefill, EngineError> {
        req.state::<WgpuRequest>(BACKEND)?;
        req.begin_prefill(prompts, self.config.vocab_size)?;
        let mut tokens = Vec::new();
        let mut info = Vec::new();
        let mut row_start = vec![0u32];
        let mut last = Vec::new();
        for (b, p) in prompts.iter().enumerate() {
            let n = p.len() as u32;
            for (i, &tok) in p.iter().enumerate() {
                tokens.push(tok);
                info.push([i as u32, b as u32, n - 1, 0]);
            }
            row_start.push(tokens.len() as u32);
            last.push(tokens.len() as u32 - 1);
        }
        Ok((tokens, info, row_start, last))
    }

    fn split_logits(&self, raw: &[u32]) -> Vec<Vec<f32>> {
        raw.chunks(self.config.vocab_size)
            .map(|r| r.iter().map(|&b| f32::from_bits(b)).collect())
            .collect()
    }
}

impl Engine for GpuLlama {
    fn describe(&self) -> String {
        self.adapter.clone()
    }

    fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn storage(&self) -> StorageType {
        self.storage
    }

    fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    fn kv_bytes(&self, rows: usize, n_tokens: u32) -> u64 {
        let d = self.config.head_dim as u64;
        self.module
            .layers
            .iter()
            .map(|l| u64::from(CacheLayout::new(l, &self.module.span, n_tokens).row_slots))
            .sum::<u64>()
            * 2
            * d
            * rows as u64
            * elem_bytes(self.storage)
    }

    fn start(
        &self,
        prompt_lens: &[usize],
        max_new: usize,
        seed: u64,
    ) -> Result<Request, EngineError> {
        let n_tokens = request_n(prompt_lens, max_new, &self.config)?;
        let rows = prompt_lens.len();
        let hd = self.config.head_dim;
        let d = hd as u64;
        let s = elem_bytes(self.storage);
        let layouts: Vec<CacheLayout> = self
            .module
            .layers
            .iter()
            .map(|l| CacheLayout::new(l, &self.module.span, n_tokens))
            .collect();
        let mut k_cache = Vec::new();
        let mut v_cache = Vec::new();
        let mut kv_bytes = 0;
        for (i, layout) in layouts.iter().enumerate() {
            let bytes = rows as u64 * u64::from(layout.row_slots) * d * s;
            kv_bytes += 2 * bytes;
            k_cache.push(self.buffer(&format!("k_cache.{i}"), bytes)?);
            v_cache.push(self.buffer(&format!("v_cache.{i}"), bytes)?);
        }
        // cos/sin per (position, pair), computed in f64 like the CPU reference.
        let half = hd / 2;
        let theta = f64::from(self.config.rope_theta);
        let mut table = Vec::with_capacity(n_tokens as usize * half * 2);
        for p in 0..n_tokens as usize {
            for j in 0..half {
                let inv = theta.powf(-((2 * j) as f64) / hd as f64);
                let a = p as f64 * inv;
                table.push(a.cos() as f32);
                table.push(a.sin() as f32);
            }
        }
        let rope = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("rope"),
                contents: bytemuck::cast_slice(&table),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let total: usize = prompt_lens.iter().sum();
        let act = self.activations(total.max(rows), rows)?;
        let n_chunks = layouts
            .iter()
            .map(|l| self.attention.n_chunks(l))
            .max()
            .unwrap_or(1);
        let partials = self.buffer(
            "partials",
            (rows * self.config.q_heads * n_chunks as usize * (hd + 2) * 4) as u64,
        )?;
        let zeros = vec![0u32; rows];
        let decode_io = self.step_io(
            &zeros,
            &vec![[0u32; 4]; rows],
            &(0..rows as u32).collect::<Vec<_>>(),
            None,
        );
        let state = WgpuRequest {
            layouts,
            k_cache,
            v_cache,
            rope,
            act,
            partials,
            decode_io,
            decode_record: None,
        };
        Ok(Request::new(BACKEND, rows, n_tokens, kv_bytes, seed, state))
    }

    fn prefill_logits(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let packed = self.prefill_inputs(req, prompts)?;
        let raw = self.forward_prefill(req, packed, OutputKind::Logits, None)?;
        Ok(self.split_logits(&raw))
    }

    fn prefill_tokens(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        let packed = self.prefill_inputs(req, prompts)?;
        self.forward_prefill(req, packed, OutputKind::of(sampling), None)
    }

    fn prefill_tokens_with_progress(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
        progress: &mut dyn FnMut(&PrefillProgress),
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        let packed = self.prefill_inputs(req, prompts)?;
        self.forward_prefill(req, packed, OutputKind::of(sampling), Some(progress))
    }

    fn decode_logits(
        &self,
        req: &mut Request,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let raw = self.forward_decode(req, tokens, OutputKind::Logits)?;
        Ok(self.split_logits(&raw))
    }

    fn decode_tokens(
        &self,
        req: &mut Request,
        tokens: &[u32],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        self.forward_decode(req, tokens, OutputKind::of(sampling))
    }
}
