//! The wgpu engine ([`Engine`] on wgpu): Llama-family models with weights on the device,
//! the hand-written ops of `shaders/` around the attention kernels compiled for the plan.
//!
//! A request ([`Request`]) fixes N = longest prompt + max new tokens, lowers nothing
//! (the plan was compiled when the engine was built) and allocates every layer's sink +
//! ring cache once from the plan's spans at N. Prefill runs all rows packed (ragged);
//! decode runs one token per row, each row at its own position. Each forward pass is
//! one command buffer (a prefill with progress reports: one per layer); only the sampled
//! token ids (or, for parity tests, the logits) come back to the host.
//!
//! Dense mode is the same code path with a plan whose every span is N.
//!
//! By job: `pipelines` (the ops' compute pipelines), `weights` (upload, split over the
//! binding limit), `cache` (a layer's KV cache split by rows over the limit), `chunks` (prefill passes and token chunks sized from the binding limit),
//! `request` (a request's caches and buffers), `record` (the dispatches of a pass),
//! `forward` (running passes, prefill and decode), `profile` (a pass's time per dispatch
//! kind), `product_bench` (the prefill product on matrix units alone, timed and checked).

#![warn(missing_docs)]

pub mod cache;
pub mod chunks;
mod coop;
mod coop_matvec;
mod coop_whole;
mod forward;
pub mod options;
mod pipelines;
pub mod product_bench;
mod profile;
mod record;
mod request;
mod weights;

use forward::OutputKind;
pub use options::{
    CoopDecodeChoice, CoopHeadChoice, OptionsError, WgpuContextOptions, WgpuEngineOptions,
};
pub use pipelines::SubgroupProducts;
use pipelines::{CoopPipes, Pipelines, SgKnobs};
pub use profile::KindTime;
pub use request::DecodeStats;
pub use weights::rows_per_part;
use weights::{DeviceWeights, LayerBuffers, Matrix};

use super::engine::{
    split_logits, Engine, EngineError, ModelRef, PrefillProgress, Request, Sampling,
};
use super::wgpu::{WgpuAttention, WgpuContext, WgpuError};
use crate::codegen::{Compiled, Target};
use crate::lower::{KernelModule, StorageType};
use crate::model::LlamaConfig;
use crate::plan::{Plan, PlanError};

/// A plan in which every head keeps every token: dense attention through the same kernels
/// (`Plan::dense` of the model's shape).
pub fn dense_plan(config: &LlamaConfig) -> Result<Plan, PlanError> {
    Plan::dense(config.model_shape())
}

/// A model on a wgpu device with the compiled attention kernels of one plan: the wgpu
/// implementation of [`Engine`].
pub struct WgpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    config: LlamaConfig,
    plan: Plan,
    module: KernelModule,
    attention: WgpuAttention,
    pipes: Pipelines,
    storage: StorageType,
    /// Split by rows over the binding limit, like every matrix (DESIGN.md §7).
    embed: Matrix,
    /// `None`: tied to `embed`.
    lm_head: Option<Matrix>,
    output_norm: wgpu::Buffer,
    layers: Vec<LayerBuffers>,
    /// Bound where a shader declares a buffer that this dispatch does not use.
    dummy: wgpu::Buffer,
    /// The storage binding limit in bytes the engine plans for: the adapter's, or a lower
    /// one given to [`Self::new_with_binding_limit`].
    max_binding: u64,
    /// `wgpu <adapter> (<graphics API>)`, for [`Engine::describe`].
    adapter: String,
    weight_bytes: u64,
    /// The settings the engine was built with ([`WgpuEngineOptions`]; the `set_*`
    /// methods change the live fields below, not this copy).
    options: WgpuEngineOptions,
    /// Use `matvec.wgsl` for few-row products. Off on CPU adapters (lavapipe), where
    /// its workgroup barriers cost more than the parallelism gains (measured: decode
    /// 1.0 → 0.5 tok/s on lavapipe, while a GPU gains); `MOA_WGPU_SPLIT_K=1` or `0`
    /// forces it.
    split_k_matvec: bool,
    /// Many-row products off matrix units on `linear_tiled.wgsl` (`MOA_WGPU_TILED`).
    tiled_products: bool,
    /// The f16 product weights also in textures, which `linear_words.wgsl` reads
    /// (`MOA_WGPU_TEXTURE_WEIGHTS`, `auto` = on for CPU adapters whose products all run
    /// it, where a texture load is vectorized and a storage load is not).
    texture_weights: bool,
    /// [`Self::texture_weights`] without the storage copies: no path of this engine reads
    /// them ([`Self::texture_only_weights`]).
    texture_only: bool,
    /// Whether any layer matrix is on the device in its file's quantization
    /// ([`weights::Part::quant`], `MOA_WGPU_QUANT_WEIGHTS`).
    quant_weights: bool,
    /// (kept quantized, all) layer matrices: the load line says how many a file of mixed
    /// types kept (round 44: a SmolLM2 Q4_K_M file, mostly Q5_0, kept 30 of 120 and
    /// the line said "layer matrices kept").
    quant_kept: (usize, usize),
    /// Where quantized parts are written out in f16 for a prefill's products on matrix
    /// units or tiles (`dequant.wgsl`; the largest part's f16 bytes): f16 storage with
    /// those products only.
    quant_scratch: Option<wgpu::Buffer>,
    /// The adapter's fixed subgroup size, where it has subgroup operations
    /// (`WgpuContext::subgroup_size`).
    subgroup: Option<u32>,
    /// Few-row products on subgroups (`matvec_sg.wgsl`) where they were built (the
    /// default: on the H200 the SmolLM2 16 × 4k plan step went from 4.99 to 2.51 ms,
    /// benches/RESULTS.md, wgpu session 9), else `matvec.wgsl` (`MOA_WGPU_MATVEC=tree`).
    subgroup_matvec: bool,
    /// Prefill products on matrix units, where the adapter has them and they passed the
    /// start-up check (`coop`).
    coop: Option<CoopPipes>,
    /// The prefill attention on matrix units, where the adapter has them and it passed
    /// the start-up check against the scalar kernel (`coop`); `MOA_WGPU_COOP_ATTN=0`
    /// keeps the scalar kernel.
    coop_attention: Option<coop::CoopAttention>,
    /// Which prefill products run, for [`Engine::describe`] and [`Self::products`].
    products: String,
    /// Greedy decode steps take the two-stage argmax (`argmax.wgsl`'s blocks + finish);
    /// `MOA_WGPU_ARGMAX2=0` keeps one workgroup per row (for side-by-side runs).
    two_stage_argmax: bool,
    /// Decode steps encode the next step's command buffer while the device runs this
    /// one (`forward::forward_decode`); `MOA_WGPU_PREENCODE=0` encodes after the wait.
    pre_encode: bool,
    /// Greedy decode steps submit the next step before waiting for this one, its input
    /// tokens copied on the device from this step's output, so the device runs steps
    /// back to back instead of idling for each step's round trip to the host
    /// (`forward::forward_decode`); `MOA_WGPU_AHEAD=0` waits for each call.
    submit_ahead: bool,
    /// Decode steps read their tokens where the last step's argmax wrote them (the
    /// request's `decode_io.tokens` is `act.tokens_out`), so a step submitted ahead starts
    /// with its pass, not a copy (`MOA_WGPU_FEED_IN_PLACE`).
    feed_in_place: bool,
    /// Decode passes on the subgroup products put SwiGLU into the gate/up product's
    /// epilogue (`moa_matvec_sg_swiglu_out`), so the down product reads `ffn` values a
    /// row instead of `2 · ffn`; `MOA_WGPU_SWIGLU_OUT=0` keeps SwiGLU in the down
    /// product's input.
    swiglu_out: bool,
    /// Seconds spent at load running every pipeline once (`Self::warm_up`), where the
    /// engine did (CPU adapters).
    warm_up: Option<f64>,
    /// The decode products on matrix units (`coop_matvec`); boxed, as callers hold the
    /// engine by value beside the CUDA engine (an enum's variants stay near in size).
    coop_decode: Box<coop_matvec::CoopDecode>,
    /// Slots per decode work item for requests started from now on (rounded up to the
    /// decode's key tile; [`Self::set_decode_chunk`]); `None`: chosen per layer from the
    /// layer's work (`WgpuAttention::decode_work`).
    decode_chunk: Option<u32>,
    /// Resident workgroups the work-list model assumes where [`Self::decode_chunk`] is
    /// `None` (`WgpuEngineOptions::decode_resident`); `None`: the shape's constant.
    decode_resident: Option<u32>,
}

/// The environment's engine settings, a malformed one an error naming it.
fn env_options() -> Result<WgpuEngineOptions, EngineError> {
    WgpuEngineOptions::from_env().map_err(|e| EngineError::Wgpu(WgpuError::from(e)))
}

/// The WGSL attention kernels of `plan` compiled in process with `options.wgsl_tuning`
/// (the default tuning: the bytes `moa-compile` writes), f16 or f32 as [`storage_for`].
fn compile_plan(
    ctx: &WgpuContext,
    plan: &Plan,
    force_f32: bool,
    options: &WgpuEngineOptions,
) -> Result<Compiled, EngineError> {
    let storage = storage_for(ctx, force_f32);
    let mut tuning = options.wgsl_tuning;
    // The decode on subgroups asked for "the adapter's size" (`MOA_WGSL_SG_DECODE`): the
    // size the subgroup products use (none: the scalar decode runs).
    if tuning.decode_subgroup == Some(0) {
        tuning.decode_subgroup = ctx.subgroup_size().and_then(|s| u8::try_from(s).ok());
    }
    // The 16-byte-word loads (`MOA_WGSL_SG_FLAT_WORDS`, on by default) convert with
    // `unpack2x16float`, which an adapter without wgpu's SHADER_F16_IN_F32 cannot compile:
    // there the flat form reads `mat2x4<f16>` as before (the same bytes, the same results).
    if tuning.decode_sg_flat_words && !ctx.has_f16_in_f32() {
        tuning.decode_sg_flat_words = false;
    }
    // The scalar prefill's two keys a step, unset: on GPUs, not on a CPU adapter
    // (`crate::codegen::wgsl::WgslTuning::prefill_key_pairs`).
    // So are its 128 queries a workgroup (`WgslTuning::prefill_q_tile`; 32 on a CPU
    // adapter, where a short row's tile would run 128 lanes for a few queries).
    let gpu = ctx.adapter_info().device_type != wgpu::DeviceType::Cpu;
    if tuning.prefill_key_pairs.is_none() {
        tuning.prefill_key_pairs = Some(gpu);
    }
    if tuning.prefill_q_tile.is_none() && gpu {
        tuning.prefill_q_tile = Some(ENGINE_GPU_PREFILL_Q_TILE);
    }
    // The fused merge, unset (`MOA_WGSL_FUSED_MERGE`): the form's choice, on where the
    // flat decode on subgroups runs (`options::engine_fused_merge`).
    let shape = plan.model();
    tuning.decode_fused_merge = Some(options::engine_fused_merge(
        &tuning,
        shape.group_size(),
        shape.head_dim,
    ));
    Ok(Compiled::wgsl_with(plan, storage, tuning)?)
}

/// The scalar prefill's queries a workgroup the engine takes on GPU adapters
/// (`WgslTuning::prefill_q_tile`; DESIGN §7.7 "s47-pattn").
pub const ENGINE_GPU_PREFILL_Q_TILE: u32 = 128;

/// What kernels compiled ahead of time run, for the refusals of a tuning asked over them.
pub const PRECOMPILED_TUNING: &str = "precompiled kernels keep the tuning they were written \
     with; moa-compile writes its own (the scalar decode, each layer's rules baked in), and \
     of the MOA_WGSL_* settings only MOA_WGSL_RULES_TABLE=0, the rules baked, is taken over \
     them";

/// Kernels compiled ahead of time (`origin`: a `moa-compile` folder, an app's embedded
/// kernels) carry the tuning they were generated with, which the engine cannot change:
/// where `options` ask another WGSL tuning this is an error saying so, rather than a run
/// that silently times the folder's kernels under the asked form's name.
fn refuse_tuning_over(options: &WgpuEngineOptions, origin: &str) -> Result<(), EngineError> {
    let asked = options.wgsl_tuning_asked_over_precompiled();
    if asked.is_empty() {
        return Ok(());
    }
    Err(EngineError::Input(format!(
        "{} asks the WGSL attention kernels in a tuning other than the default, but the \
         kernels come precompiled from {origin} ({PRECOMPILED_TUNING}): unset it, or let \
         the engine compile the plan itself (no --kernels)",
        asked.join(", ")
    )))
}

/// The storage type a [`WgpuEngine`] on `ctx` uses: f16 where the adapter has
/// SHADER_F16 (unless `force_f32`), else f32. Public so a caller can size a run before
/// building the engine (`moa generate`'s memory check).
pub fn storage_for(ctx: &WgpuContext, force_f32: bool) -> StorageType {
    if ctx.has_f16() && !force_f32 {
        StorageType::F16
    } else {
        StorageType::F32
    }
}

fn elem_bytes(t: StorageType) -> u64 {
    t.bytes() as u64
}

/// The product paths an engine built with some [`WgpuEngineOptions`] takes on an adapter
/// ([`WgpuEngineOptions::product_paths`]): what its `auto` settings resolve to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductPaths {
    /// The split-K decode products (`MOA_WGPU_SPLIT_K`; `auto` = on for GPU adapters).
    pub split_k_matvec: bool,
    /// The tiled many-row products (`MOA_WGPU_TILED`; `auto` = on for GPU adapters).
    pub tiled_products: bool,
    /// The f16 matrices uploaded as textures too (`MOA_WGPU_TEXTURE_WEIGHTS`).
    pub texture_weights: bool,
    /// The textures without the storage copies: `linear_words.wgsl` runs every product.
    pub texture_only: bool,
    /// A GGUF file's quantization kept on the device where it has one
    /// (`MOA_WGPU_QUANT_WEIGHTS`).
    pub keep_quantization: bool,
}

impl WgpuEngineOptions {
    /// What these options' `auto` settings resolve to on `ctx` with weights in `storage`:
    /// the engine's own choice ([`WgpuEngine::new_with_options`]), and what `moa
    /// generate`'s memory check counts before the engine exists.
    ///
    /// * split-K decode and tiled products: on for GPU adapters;
    /// * texture weights: where no product reads a storage buffer (no split-K or tiled
    ///   products, no matrix units) `linear_words.wgsl` runs every product and the
    ///   textures replace the storage copies, so a CPU adapter's weights take their own
    ///   size and read as textures (2× the storage step on session 52's machine, a tie on
    ///   session 55's: DESIGN.md §7.3); f16 storage only;
    /// * the file's quantization: on where a GPU adapter runs the split-K decode products
    ///   on subgroups of a fixed size (H100, session 58: 34–44% less device memory, the
    ///   same tokens, prefill at parity, one-row decode 1.04–1.14×, 16 rows 0.86–1.03×),
    ///   and since session 60 where the texture form runs every product (lavapipe: the
    ///   same tokens in a third less memory at the f16 copy's speed,
    ///   `quant_weights_texture.wgsl`); off elsewhere (a GPU whose subgroup size varies,
    ///   a CPU adapter with split-K on: their quantized forms read storage buffers).
    pub fn product_paths(&self, ctx: &WgpuContext, storage: StorageType) -> ProductPaths {
        let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
        let split_k_matvec = self.split_k.unwrap_or(!cpu);
        let tiled_products = self.tiled.unwrap_or(!cpu);
        let words_only = !split_k_matvec && !tiled_products && ctx.coop_matrix().is_none();
        let texture_weights =
            storage == StorageType::F16 && self.texture_weights.unwrap_or(cpu && words_only);
        let texture_only = texture_weights && words_only;
        let quant_auto =
            (!cpu && split_k_matvec && self.subgroup_matvec && ctx.subgroup_size().is_some())
                || texture_only;
        ProductPaths {
            split_k_matvec,
            tiled_products,
            texture_weights,
            texture_only,
            keep_quantization: self.quant_weights.unwrap_or(quant_auto),
        }
    }
}

impl WgpuEngine {
    /// Uploads the model and compiles the plan's attention kernels (`plan = None`: dense).
    /// f16 storage for weights, activations between kernels stay f32; f16 is used only
    /// where the adapter has SHADER_F16, unless `force_f32`. `model` is `&Model`, or
    /// `&mut Model` to give its host weights up as they are uploaded ([`ModelRef`]: the
    /// load's peak host memory drops by the device copy's size on a CPU adapter); every
    /// constructor takes either.
    pub fn new<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: Option<&Plan>,
        force_f32: bool,
    ) -> Result<WgpuEngine, EngineError> {
        Self::compile_and_build(ctx, model.into(), plan, force_f32, env_options()?, None)
    }

    /// [`Self::new`] with `options` instead of the environment's `MOA_WGPU_*` settings
    /// (tests and benches choose paths without a process-wide environment).
    pub fn new_with_options<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: Option<&Plan>,
        force_f32: bool,
        options: WgpuEngineOptions,
    ) -> Result<WgpuEngine, EngineError> {
        Self::compile_and_build(ctx, model.into(), plan, force_f32, options, None)
    }

    /// [`Self::new`] planning for a storage binding limit of `max_binding` bytes (clamped to
    /// the adapter's own): weights are split and buffers bounded as on an adapter with that
    /// limit. Tests use it to exercise the split paths on a tiny model.
    pub fn new_with_binding_limit<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: Option<&Plan>,
        force_f32: bool,
        max_binding: u64,
    ) -> Result<WgpuEngine, EngineError> {
        let options = env_options()?;
        Self::new_with_options_and_binding_limit(ctx, model, plan, force_f32, options, max_binding)
    }

    /// [`Self::new_with_binding_limit`] with `options` instead of the environment's
    /// `MOA_WGPU_*` settings (tests choose a product path at load where a CPU adapter's
    /// default would keep no storage copy of the weights for it).
    pub fn new_with_options_and_binding_limit<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: Option<&Plan>,
        force_f32: bool,
        options: WgpuEngineOptions,
        max_binding: u64,
    ) -> Result<WgpuEngine, EngineError> {
        Self::compile_and_build(
            ctx,
            model.into(),
            plan,
            force_f32,
            options,
            Some(max_binding),
        )
    }

    /// The constructors that compile the plan in process (`plan = None`: dense), after
    /// checking it against the model's shape.
    fn compile_and_build(
        ctx: &WgpuContext,
        model: ModelRef<'_>,
        plan: Option<&Plan>,
        force_f32: bool,
        options: WgpuEngineOptions,
        max_binding: Option<u64>,
    ) -> Result<WgpuEngine, EngineError> {
        let plan = match plan {
            Some(p) => {
                model.config().check_plan(p)?;
                p.clone()
            }
            None => dense_plan(model.config())?,
        };
        let kernels = compile_plan(ctx, &plan, force_f32, &options)?;
        Self::build(ctx, model, &plan, &kernels, max_binding, options)
    }

    /// The storage binding limit (bytes) this engine plans its buffers for.
    pub fn max_binding(&self) -> u64 {
        self.max_binding
    }

    /// Like [`Self::new`], but the attention kernels are read from a `moa-compile` output
    /// folder (its manifest must match `plan` and the chosen storage type).
    pub fn from_compiled<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: &Plan,
        force_f32: bool,
        kernels_dir: &std::path::Path,
    ) -> Result<WgpuEngine, EngineError> {
        let model = model.into();
        model.config().check_plan(plan)?;
        let storage = storage_for(ctx, force_f32);
        let options = env_options()?;
        refuse_tuning_over(&options, &format!("the folder `{}`", kernels_dir.display()))?;
        let kernels = Compiled::read(kernels_dir, plan, storage, Target::Wgsl)?;
        Self::build(ctx, model, plan, &kernels, None, options)
    }

    /// Uploads the model and loads `kernels`, the WGSL attention kernels compiled ahead of
    /// time for `plan` (e.g. embedded in an app by its `build.rs`): nothing is generated.
    /// Weights, Q/K/V and the cache use the kernels' storage type. Errors: a plan of another
    /// shape than the model, kernels of another plan or without WGSL, f16 kernels on an
    /// adapter without SHADER_F16, a matrix row or norm vector over the adapter's binding
    /// limit (larger matrices are split by rows, DESIGN.md §7).
    pub fn with_kernels<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: &Plan,
        kernels: &Compiled,
    ) -> Result<WgpuEngine, EngineError> {
        let options = env_options()?;
        refuse_tuning_over(&options, "the given kernels")?;
        Self::build(ctx, model.into(), plan, kernels, None, options)
    }

    /// [`Self::with_kernels`] with `options` instead of the environment's settings.
    pub fn with_kernels_and_options<'m>(
        ctx: &WgpuContext,
        model: impl Into<ModelRef<'m>>,
        plan: &Plan,
        kernels: &Compiled,
        options: WgpuEngineOptions,
    ) -> Result<WgpuEngine, EngineError> {
        refuse_tuning_over(&options, "the given kernels")?;
        Self::build(ctx, model.into(), plan, kernels, None, options)
    }

    /// The settings the engine was built with.
    pub fn options(&self) -> &WgpuEngineOptions {
        &self.options
    }

    fn build(
        ctx: &WgpuContext,
        model: ModelRef<'_>,
        plan: &Plan,
        kernels: &Compiled,
        max_binding: Option<u64>,
        options: WgpuEngineOptions,
    ) -> Result<WgpuEngine, EngineError> {
        let config = model.config().clone();
        config.check_plan(plan)?;
        kernels.check_plan(plan)?;
        let plan = plan.clone();
        // Every product's K is read four values a load (`linear.wgsl`, `matvec*.wgsl`):
        // hidden and ffn are checked here, q_heads × head_dim (the output product's) by the
        // plan, whose head_dim is a multiple of 4 (`plan` validation).
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
        let adapter_limit = device.limits().max_storage_buffer_binding_size;
        let planned = options.binding_limit(adapter_limit);
        let max_binding = max_binding.map_or(planned, |m| m.min(planned));
        let ProductPaths {
            split_k_matvec,
            tiled_products,
            texture_weights,
            texture_only,
            keep_quantization,
        } = options.product_paths(ctx, storage);
        // Only a streamed GGUF file has any quantization to keep, and only for one are the
        // quantized pipelines built, `1` too (on lavapipe their compiled code cost ~96 MB
        // of host memory and ~1 s of load, round 44).
        let quant_asked = keep_quantization && model.quantized_layers();
        let texture_shape = texture_weights.then(|| weights::TextureShape {
            width: weights::TEXTURE_WIDTH,
            max_height: device.limits().max_texture_dimension_2d,
        });
        let pipes = Pipelines::new(
            &device,
            storage,
            options.row_block,
            ctx.subgroup_size(),
            SubgroupProducts::from_options(&options),
            SgKnobs::from_options(&options),
            options.unchecked_products,
            options.rope_tokens,
            options.tiled_block,
            texture_weights,
            quant_asked,
            &fit_shapes(
                &options,
                &config,
                ctx.subgroup_size(),
                device.limits().max_compute_invocations_per_workgroup,
            ),
        )?;
        // Taken weights (`&mut Model`) leave the model here and go tensor by tensor;
        // streamed ones are read from the file tensor by tensor.
        let weights = DeviceWeights::upload(
            &device,
            &queue,
            &config,
            model.into_feed(),
            storage,
            max_binding,
            texture_shape,
            !texture_only,
            quant_asked,
        )?;
        let DeviceWeights {
            embed,
            lm_head,
            output_norm,
            layers,
            bytes: weight_bytes,
        } = weights;
        let quant_kept = layers
            .iter()
            .flat_map(|l| [&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down])
            .fold((0, 0), |(k, n), m| (k + usize::from(m.quantized()), n + 1));
        let quant_weights = quant_kept.0 > 0;
        let scratch_bytes = layers
            .iter()
            .flat_map(|l| [&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down])
            .map(|m| m.quant_scratch_bytes())
            .max()
            .unwrap_or(0);
        let quant_scratch = (scratch_bytes > 0
            && storage == StorageType::F16
            && (tiled_products || ctx.coop_matrix().is_some()))
        .then(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("quantized weights in f16"),
                size: scratch_bytes.next_multiple_of(16),
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let (coop, products) = match ctx.coop_matrix() {
            Some(c) if storage == StorageType::F16 => {
                match pipelines::coop_pipes(
                    &device,
                    storage,
                    c,
                    !options.unchecked_products,
                    options.coop_direct,
                    options.coop_swiglu,
                ) {
                    Ok(p) => (
                        Some(p),
                        format!(
                            "cooperative matrix 16x16x16 f16->{} (subgroup {})",
                            c.accumulator.name(),
                            c.subgroup
                        ),
                    ),
                    Err(e) => (
                        None,
                        format!("tiled (the cooperative-matrix product failed to compile: {e})"),
                    ),
                }
            }
            Some(_) => (None, "tiled (f32 storage)".to_string()),
            None => (
                None,
                "tiled (no cooperative matrices on this adapter)".to_string(),
            ),
        };
        let head = coop_matvec::coop_head(
            &device,
            storage,
            ctx.coop_matrix(),
            (config.hidden_size, config.vocab_size),
            &options,
        );
        let (out, gate_up, qkv) = coop_matvec::coop_products(
            &device,
            &options,
            storage,
            ctx.coop_matrix(),
            config.q_heads * config.head_dim,
            config.hidden_size,
            config.head_dim,
        );
        let fused = coop_matvec::fused_mlp(
            &device,
            &options,
            storage,
            ctx.coop_matrix(),
            ctx.adapter_info().device_type == wgpu::DeviceType::Cpu,
            (config.q_heads * config.head_dim, config.hidden_size),
        );
        // The fused dispatch builds its own output phase (whether or not the separate
        // output product runs on matrix units) but replaces the matrix-unit gate/up
        // product, so it needs that one (the default where matrix units exist). Session
        // 32's call 1 asked for it with the output product on subgroups (the default)
        // and this filter, then on both products, dropped it without a word.
        let fused = fused.map(|f| {
            f.and_then(|f| {
                gate_up
                    .is_some()
                    .then_some(f)
                    .ok_or_else(|| "the gate/up product is not on matrix units".to_string())
            })
        });
        let fused_note = match &fused {
            Some(Err(why)) => format!("; MOA_WGPU_DECODE_FUSED_MLP=1 not used: {why}"),
            _ => String::new(),
        };
        let fused_mlp = fused.and_then(Result::ok);
        let head_kind = match &head {
            Ok(h) if h.staged.is_some() => "matrix units (coop_head.wgsl)".to_string(),
            Ok(_) => "matrix units (coop_matvec.wgsl)".to_string(),
            Err(why) => format!("as the other products (the matrix-unit head: {why})"),
        };
        let mut engine = WgpuEngine {
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
            options,
            split_k_matvec,
            tiled_products,
            texture_weights,
            texture_only,
            quant_weights,
            quant_kept,
            quant_scratch,
            subgroup: ctx.subgroup_size(),
            subgroup_matvec: options.subgroup_matvec,
            coop,
            coop_attention: None,
            products,
            two_stage_argmax: options.two_stage_argmax,
            pre_encode: options.pre_encode,
            submit_ahead: options.submit_ahead,
            feed_in_place: options.feed_in_place,
            swiglu_out: options.swiglu_out,
            warm_up: None,
            coop_decode: Box::new(coop_matvec::CoopDecode {
                head,
                out,
                gate_up,
                qkv,
                fused_mlp,
                note: fused_note,
                head_kind,
            }),
            decode_chunk: options.decode_chunk.map(std::num::NonZeroU32::get),
            decode_resident: options.decode_resident.map(std::num::NonZeroU32::get),
        };
        engine.settle_coop();
        // The direct stores exist only with an f32 accumulator (coop_linear_direct.wgsl).
        if ctx
            .coop_matrix()
            .is_some_and(|c| c.accumulator == StorageType::F32)
        {
            engine.settle_coop_whole();
            engine.settle_coop_swiglu();
        }
        engine.settle_coop_head();
        if let (Some(c), true, true) = (
            ctx.coop_matrix(),
            engine.coop.is_some(),
            options.coop_attention,
        ) {
            // The group form's softmax uses subgroup shuffles.
            let group = options.coop_attention_group && ctx.subgroup_size().is_some();
            // K staged where asked and it fits (not with diagnostics 2 to 5, which read K
            // or V from storage; its words are unpacked with unpack2x16float).
            let stage_k = options.coop_attention_stage_k
                && !(2..=5).contains(&options.coop_attention_diag)
                && ctx.has_f16_in_f32()
                && crate::codegen::wgsl::prefill_group_stage_fits(
                    engine.config.q_heads as u32 / engine.config.kv_heads as u32,
                    engine.config.head_dim as u32,
                    1,
                );
            let asked = crate::codegen::wgsl::PrefillGroupForm {
                // Form 2 needs subgroup barriers: without them, form 1.
                form: match options.coop_attention_form {
                    2 if !ctx.subgroup_barrier() => 1,
                    f => f,
                },
                diag: options.coop_attention_diag,
                stage_k,
                // V early only beside staged K (alone it lost on the H200 with moa-50:
                // 134.2 against 129.5 ms, session 30), unless K staging was turned off.
                v_early: options.coop_attention_v_early
                    && options.coop_attention_diag == 0
                    && (stage_k || !options.coop_attention_stage_k),
                // V staged in K's tile only beside staged K (diagnostics 6 and 7 need it:
                // without, their build fails and the scalar attention runs).
                v_in_k: options.coop_attention_v_in_k && stage_k,
                // Select masks (not with diagnostic 1, which has no softmax).
                mask_select: options.coop_attention_mask_select && options.coop_attention_diag != 1,
                // Scores in registers (the same: no softmax, nothing to hold).
                score_regs: options.coop_attention_score_regs && options.coop_attention_diag != 1,
            };
            // Session 28's group kernel (workgroup barriers, K and V from storage where
            // they are used): the second try where the asked variant is another and fails
            // to build or to match the scalar kernel (a subgroup barrier orders workgroup
            // memory on the H200; SPIR-V names only subgroup memory for it, so another
            // driver may not).
            let plain = crate::codegen::wgsl::PrefillGroupForm::PLAIN;
            let before = engine.products.clone();
            let mut tries = vec![asked];
            if group && asked.diag == 0 && asked != plain {
                tries.push(plain);
            }
            let mut failed = String::new();
            for (n, variant) in tries.iter().enumerate() {
                if n > 0 {
                    // The first try's verdict, kept as a note.
                    failed = engine.products[before.len()..]
                        .trim_start_matches("; ")
                        .to_string();
                    engine.products = before.clone();
                }
                match coop::coop_attention(
                    &engine.device,
                    &engine.module,
                    c,
                    group,
                    *variant,
                    !options.unchecked_products,
                ) {
                    Ok(a) => {
                        engine.coop_attention = Some(a);
                        engine.settle_coop_attention();
                    }
                    Err(e) => {
                        engine.products = format!(
                            "{}; prefill attention: scalar (matrix-unit kernel not built: {e})",
                            engine.products
                        );
                    }
                }
                if engine.coop_attention.is_some() {
                    break;
                }
            }
            if !failed.is_empty() {
                engine.products = format!(
                    "{} (after {variant:?}: {failed})",
                    engine.products,
                    variant = asked
                );
            }
        }
        let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
        if options.warm_up.unwrap_or(cpu) {
            let t0 = std::time::Instant::now();
            engine.warm_up()?;
            engine.warm_up = Some(t0.elapsed().as_secs_f64());
        }
        Ok(engine)
    }

    /// Runs every pipeline that a request of up to 32 rows uses once, on a throw-away
    /// request of one row (a 2-token prompt, then a greedy and a sampled decode step):
    /// llvmpipe (lavapipe) compiles a kernel at its first dispatch, not when wgpu creates
    /// the pipeline, so without this a first run's prefill and decode times held about
    /// 100 s of shader compilation (benches/RESULTS.md, `moa generate` on lavapipe).
    /// Done at load on CPU adapters (`MOA_WGPU_WARM=0` skips it, `=1` forces it on any
    /// adapter), so the cost shows as load time. Not covered: the one-workgroup argmax of
    /// passes over 32 rows and paths switched on after load (the `set_*` methods).
    fn warm_up(&self) -> Result<(), EngineError> {
        let greedy = Sampling::greedy();
        let sampled = Sampling {
            temperature: 1.0,
            top_p: 0.9,
            top_k: 40,
            seed: 0,
        };
        let mut req = self.start(&[2], 2, 0)?;
        // Not the user's request: `MOA_WGPU_STATS=1` printed its two steps (hundreds of
        // ms each, the compilation) as a decode summary before the run's own (round 41).
        req.state_mut::<request::WgpuRequest>(request::BACKEND)?
            .print_stats = false;
        let t = self.prefill_tokens(&mut req, &[vec![0, 1]], greedy)?;
        let t = self.decode_tokens(&mut req, &t, greedy)?;
        self.decode_tokens(&mut req, &t, sampled)?;
        Ok(())
    }

    /// Seconds the engine spent at load running each pipeline once (`None` where it did
    /// not: GPU adapters compile when the pipeline is created).
    pub fn warm_up_seconds(&self) -> Option<f64> {
        self.warm_up
    }

    /// The decode steps of `req` so far: dispatches per step and host-side times
    /// (`MOA_WGPU_STATS=1` also prints them when the request ends). Errors: a request of
    /// another engine.
    pub fn decode_stats(&self, req: &Request) -> Result<DecodeStats, EngineError> {
        Ok(req.state::<request::WgpuRequest>(request::BACKEND)?.stats)
    }

    /// Per layer, the row ranges of the parts its KV cache is split into over the binding
    /// limit (one range `0..rows` where the layer's cache fits one binding; `cache`).
    /// Errors: a request of another engine.
    pub fn cache_parts(
        &self,
        req: &Request,
    ) -> Result<Vec<Vec<std::ops::Range<usize>>>, EngineError> {
        let st = req.state::<request::WgpuRequest>(request::BACKEND)?;
        Ok(st
            .caches
            .iter()
            .map(|layer| layer.iter().map(|p| p.rows.clone()).collect())
            .collect())
    }

    /// Chooses the greedy decode's argmax: two stages (the default) or one workgroup per
    /// row (tests compare both).
    pub fn set_two_stage_argmax(&mut self, on: bool) {
        self.two_stage_argmax = on;
    }

    /// Encodes each decode step's successor while the device runs it (the default), or
    /// each step after the previous one's result (tests compare both).
    pub fn set_pre_encode(&mut self, on: bool) {
        self.pre_encode = on;
    }

    /// Submits each greedy decode step's successor before waiting for it (the default),
    /// or runs each step when its call comes (tests compare both).
    pub fn set_submit_ahead(&mut self, on: bool) {
        self.submit_ahead = on;
    }

    /// Decode steps read their tokens from the last step's argmax output in place (no
    /// copy at the top of a step submitted ahead), or from a buffer of their own that such
    /// a step fills by a copy. Takes effect for requests started after it (tests compare
    /// both).
    pub fn set_feed_in_place(&mut self, on: bool) {
        self.feed_in_place = on;
    }

    /// Puts SwiGLU into the decode gate/up product's epilogue (the default where the
    /// subgroup products run) or into the down product's input (tests compare both).
    pub fn set_swiglu_out(&mut self, on: bool) {
        self.swiglu_out = on;
    }

    /// Rows per workgroup of the few-row products (4, 8 or 16; `matvec.wgsl`'s ROW_BLOCK),
    /// rebuilding their pipelines (tests compare them). Errors: another block, or a
    /// pipeline the driver rejects.
    pub fn set_row_block(&mut self, row_block: u32) -> Result<(), EngineError> {
        if ![4, 8, 16].contains(&row_block) {
            return Err(EngineError::Input(format!(
                "row block {row_block}: the few-row products take 4, 8 or 16 rows per workgroup"
            )));
        }
        self.rebuild_pipes(row_block, self.sg_choice())
    }

    /// The subgroup products' timing diagnostic (`MOA_WGPU_SG_DIAG`: 0 none, 1 no K
    /// loop, 2 one row's x for all rows, 3 the K loop's loads only, 4 its weight loads
    /// only, 5 its x loads only), rebuilding their pipelines, so that a bench times each
    /// form over one request's caches. **1–5 give wrong results.** Errors: another value,
    /// or a pipeline the driver rejects.
    pub fn set_sg_diag(&mut self, diag: u32) -> Result<(), EngineError> {
        if diag > 5 {
            return Err(EngineError::Input(format!(
                "subgroup product diagnostic {diag}: 0 to 5"
            )));
        }
        self.options.sg_diag = diag;
        self.rebuild_pipes(self.pipes.row_block, self.sg_choice())
    }

    /// Rebuilds the engine's pipelines for the model's shape with the given few-row
    /// product choice (`set_row_block`).
    fn rebuild_pipes(
        &mut self,
        row_block: u32,
        sg_choice: SubgroupProducts,
    ) -> Result<(), EngineError> {
        self.pipes = Pipelines::new(
            &self.device,
            self.storage,
            row_block,
            self.subgroup,
            sg_choice,
            SgKnobs::from_options(&self.options),
            self.options.unchecked_products,
            self.options.rope_tokens,
            self.options.tiled_block,
            self.texture_weights,
            self.quant_weights,
            &fit_shapes(
                &self.options,
                &self.config,
                self.subgroup,
                self.device.limits().max_compute_invocations_per_workgroup,
            ),
        )?;
        Ok(())
    }

    /// The subgroup products' choice the pipelines were built with (the default where
    /// they were not).
    fn sg_choice(&self) -> SubgroupProducts {
        self.pipes
            .matvec_sg
            .as_ref()
            .map_or(SubgroupProducts::from_options(&self.options), |p| p.choice)
    }

    /// Few-row products on subgroups (`matvec_sg.wgsl`, `Some`: with these overrides) or
    /// on `matvec.wgsl` (`None`). Errors: `Some` where they cannot be built (no fixed
    /// subgroup size, or the driver refused them; the message says which), a KSPLIT
    /// other than 1, 2, 4 or 8, column groups other than 1, 2, 4 or 8, rows a
    /// workgroup row other than 4, 8 or 16, or an unroll other than 1, 2 or 4.
    pub fn set_subgroup_matvec(&mut self, on: Option<SubgroupProducts>) -> Result<(), EngineError> {
        if let Some(choice) = on {
            if choice.ksplit.is_some_and(|k| ![1, 2, 4, 8].contains(&k)) {
                return Err(EngineError::Input(format!(
                    "KSPLIT {:?}: the subgroup products split K over 1, 2, 4 or 8 subgroups",
                    choice.ksplit
                )));
            }
            if choice.groups.is_some_and(|g| ![1, 2, 4, 8].contains(&g)) {
                return Err(EngineError::Input(format!(
                    "column groups {:?}: a subgroup product's workgroup holds 1, 2, 4 or 8",
                    choice.groups
                )));
            }
            if choice.rows.is_some_and(|r| ![4, 8, 16].contains(&r)) {
                return Err(EngineError::Input(format!(
                    "rows {:?}: a subgroup product's workgroup row holds 4, 8 or 16 rows",
                    choice.rows
                )));
            }
            if choice.unroll.is_some_and(|u| ![1, 2, 4].contains(&u)) {
                return Err(EngineError::Input(format!(
                    "unroll {:?}: a subgroup product's K loop issues 1, 2 or 4 trips' weight loads first",
                    choice.unroll
                )));
            }
            if let Err(why) = &self.pipes.matvec_sg {
                return Err(EngineError::Input(format!(
                    "subgroup decode products unavailable: {why}"
                )));
            }
            if self.sg_choice() != choice {
                self.rebuild_pipes(self.pipes.row_block, choice)?;
            }
        }
        self.subgroup_matvec = on.is_some();
        Ok(())
    }

    /// Whether the quantized products' pipelines were built: asked for
    /// (`MOA_WGPU_QUANT_WEIGHTS=1`, [`WgpuEngineOptions::quant_weights`]) and the model a
    /// stream with blocks to keep ([`crate::ModelRef::quantized_layers`]).
    pub fn quant_products_built(&self) -> bool {
        self.pipes.quant.is_some()
    }

    /// The few-row (decode) product kernel in use, for [`Engine::describe`]; with
    /// `MOA_WGPU_TEXTURE_WEIGHTS=1` asked where the engine stores f32 (the textures hold
    /// f16 weights), a note that it is not applied: `--f32` with it said nothing of the
    /// setting (session 56).
    pub fn decode_products(&self) -> String {
        let mut form = self.decode_products_form();
        if self.quant_weights {
            let (kept, all) = self.quant_kept;
            if kept < all {
                form += &format!(
                    "; {kept} of {all} layer matrices kept in their GGUF quantization (the \
                     others hold a tensor of another type than {}, such as F16 or Q3_K, and \
                     are stored in {})",
                    crate::model::KEPT_TYPES,
                    self.storage.name()
                );
            } else {
                form += "; layer matrices kept in their GGUF quantization";
            }
            if self.texture_weights {
                // The CPU adapters' form (`MOA_WGPU_TEXTURE_WEIGHTS`).
                form += " (MOA_WGPU_QUANT_WEIGHTS: linear_words.wgsl with the codes from \
                         textures, quant_weights_texture.wgsl)";
            } else {
                form += " (MOA_WGPU_QUANT_WEIGHTS: matvec_q.wgsl, and quant_weights.wgsl in \
                         linear_words.wgsl, matvec.wgsl and matvec_sg.wgsl)";
            }
        } else if self.options.quant_weights == Some(true) {
            form += &format!(
                "; MOA_WGPU_QUANT_WEIGHTS=1 not applied (no layer matrix came as {} blocks: \
                 only a GGUF file streamed to the engine, as `moa generate` loads it, has them)",
                crate::model::KEPT_TYPES
            );
        }
        if self.options.texture_weights == Some(true) && !self.texture_weights {
            return form
                + "; MOA_WGPU_TEXTURE_WEIGHTS=1 not applied (the textures hold f16 weights, and \
                   this engine stores f32)";
        }
        form
    }

    fn decode_products_form(&self) -> String {
        // Subgroup-product settings where those products do not run are named as not
        // applied, as the WGSL attention forms are (round 25).
        let not_applied = |why: &str| {
            let asked = self.options.subgroup_products_asked();
            if asked.is_empty() {
                String::new()
            } else {
                format!("; {} not applied ({why})", asked.join(", "))
            }
        };
        if !self.split_k_matvec {
            let form = if self.texture_weights {
                "4 columns × 1 or 2 rows an invocation, f16 weights eight a load from \
                 textures where K allows (linear_words.wgsl, MOA_WGPU_TEXTURE_WEIGHTS)"
            } else if self.pipes.linear_words.is_some() {
                "4 columns × 1 or 2 rows an invocation, f16 weights eight a load where K \
                 allows (linear_words.wgsl)"
            } else {
                "one dot product per invocation (linear.wgsl)"
            };
            return form.to_string()
                + &not_applied(
                    "the subgroup products are split-K products, off on this adapter: MOA_WGPU_SPLIT_K=1 turns them on",
                );
        }
        let coop = match (&self.coop_decode.out, &self.coop_decode.gate_up) {
            (None, None) => "",
            (Some(_), None) => "; output products on matrix units (coop_matvec.wgsl)",
            (None, Some(_)) => "; gate/up products on matrix units (coop_matvec.wgsl)",
            (Some(_), Some(_)) => {
                "; output and gate/up products on matrix units (coop_matvec.wgsl)"
            }
        };
        let sg = match (&self.pipes.matvec_sg, self.subgroup_matvec) {
            (Ok(p), true) => format!(
                "subgroup {} (matvec_sg.wgsl, KSPLIT {}{})",
                p.subgroup,
                p.choice
                    .ksplit
                    .map_or("per product".to_string(), |k| k.to_string()),
                p.choice.groups.map_or(String::new(), |g| format!(
                    ", column groups a workgroup: {g}"
                )) + &format!(
                    ", {} rows a workgroup row",
                    p.choice.rows.unwrap_or(pipelines::default_rows(p.subgroup))
                ) + &p.few_description()
                    + &p.unroll_description()
                    + &p.fitted_description()
                    + &sg_knobs_description(
                        SgKnobs::from_options(&self.options),
                        p.has_four_row_loops(),
                    )
            ),
            (Err(why), true) => {
                format!("workgroup tree (matvec.wgsl; subgroups: {why})")
                    + &not_applied("no subgroup products on this adapter")
            }
            _ => {
                "workgroup tree (matvec.wgsl)".to_string()
                    + &not_applied("MOA_WGPU_MATVEC=tree runs the workgroup tree")
            }
        };
        let qkv = if self.coop_decode.qkv.is_some() {
            "; QKV products on matrix units (coop_matvec.wgsl, RoPE + cache write in the epilogue)"
        } else {
            ""
        };
        let walk = match &self.coop_decode.out {
            Some(coop_matvec::CoopProduct {
                direct: Some(_), ..
            }) => ", B fragments loaded before x, the output product's A straight from storage",
            _ => "",
        };
        let fused = match &self.coop_decode.fused_mlp {
            Some(f) => format!(
                "; output + gate/up products in one dispatch of at most {} workgroups meeting between them (MOA_WGPU_DECODE_FUSED_MLP=1; {})",
                f.max_groups, f.form
            ),
            None => String::new(),
        };
        let unchecked = if self.options.coop_decode_unchecked
            && (self.coop_decode.out.is_some()
                || self.coop_decode.gate_up.is_some()
                || self.coop_decode.qkv.is_some())
        {
            "; the matrix-unit products without naga's runtime checks (MOA_WGPU_COOP_DECODE_UNCHECKED)"
        } else {
            ""
        };
        sg + coop + walk + qkv + unchecked + &fused + &self.coop_decode.note
    }

    /// Fixes the slots of each decode work item of requests started from now on
    /// (`Some(c)`: `c` rounded up to the decode's key tile) instead of choosing them per
    /// layer (`None`, the default). Small shapes get one-tile chunks from the choice, so
    /// tests use it to run the decode's tile loop (the lazy forms' later tiles) through
    /// the engine.
    pub fn set_decode_chunk(&mut self, slots: Option<u32>) {
        self.decode_chunk = slots;
    }

    /// Chooses the few-row product kernel (tests exercise both on any adapter). Errors:
    /// split-K asked of an engine that keeps its f16 product weights only as textures (a
    /// CPU adapter's default, `MOA_WGPU_TEXTURE_WEIGHTS`), whose split-K products would
    /// have no storage copy to read ([`EngineError::Input`], saying which option keeps
    /// both).
    pub fn set_split_k_matvec(&mut self, on: bool) -> Result<(), EngineError> {
        if on && self.texture_only {
            return Err(EngineError::Input(
                "split-K products read the weights from storage buffers, and this engine keeps \
                 its f16 product weights only as textures (MOA_WGPU_TEXTURE_WEIGHTS, the CPU \
                 adapters' default): build it with MOA_WGPU_SPLIT_K=1 or \
                 MOA_WGPU_TEXTURE_WEIGHTS=0 (WgpuEngineOptions::split_k / texture_weights)"
                    .into(),
            ));
        }
        self.split_k_matvec = on;
        Ok(())
    }

    /// Whether the f16 product weights are on the device only as textures (no storage
    /// copies): a CPU adapter's default, where `linear_words.wgsl` runs every product
    /// (`MOA_WGPU_TEXTURE_WEIGHTS`).
    pub fn texture_only_weights(&self) -> bool {
        self.texture_only
    }

    /// A storage buffer of `bytes` for the model's data, within [`Self::max_binding`].
    pub(super) fn buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, EngineError> {
        self.buffer_within(label, bytes, self.max_binding)
    }

    /// A scratch buffer of a start-up check (fixed shapes of tens of KB, far below WebGPU's
    /// 128 MiB minimum binding limit), within the adapter's own limit rather than
    /// [`Self::max_binding`]: a planning limit below the adapter's (tests plan for 12–24
    /// KiB) bounds the model's buffers, and bounding the checks by it failed them, which
    /// silently turned the matrix-unit products off in that engine alone (session 15: the
    /// H200's chunked prefill then ran tiled products against the unlimited engine's
    /// matrix units, 2.5e-3 apart in f16).
    pub(super) fn check_buffer(
        &self,
        label: &str,
        bytes: u64,
    ) -> Result<wgpu::Buffer, EngineError> {
        let adapter = self.device.limits().max_storage_buffer_binding_size;
        self.buffer_within(label, bytes, adapter)
    }

    fn buffer_within(
        &self,
        label: &str,
        bytes: u64,
        limit: u64,
    ) -> Result<wgpu::Buffer, EngineError> {
        if bytes > limit {
            return Err(EngineError::TooLarge {
                name: label.to_string(),
                bytes,
                limit,
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
}

impl Engine for WgpuEngine {
    fn describe(&self) -> String {
        let warm = self.warm_up.map_or(String::new(), |s| {
            format!("; each kernel run once at load ({s:.1} s: llvmpipe compiles at first use)")
        });
        // The attention kernels' tuning where not the default, so a bench's log says
        // which decode form it timed.
        let coop_decode = self.attention.decode_kernels().starts_with("cooperative");
        let tuning = self.options.wgsl_tuning_note(coop_decode);
        // Off matrix units, which many-row form runs (session 45: GPU adapters tile in
        // workgroup memory, CPU adapters keep the per-invocation block).
        let form = match (&self.coop, self.tiled_products) {
            (Some(_), _) => "",
            (None, true) if self.options.tiled_block == 8 => {
                " (128 × 128 workgroup tiles, linear_tiled.wgsl)"
            }
            (None, true) => " (64 × 64 workgroup tiles, linear_tiled.wgsl)",
            (None, false) if self.texture_weights => {
                " (4 columns × up to 8 rows an invocation, f16 weights eight a load from \
                 textures where K allows: linear_words.wgsl, MOA_WGPU_TEXTURE_WEIGHTS)"
            }
            (None, false) if self.pipes.linear_words.is_some() => {
                " (4 columns × up to 8 rows an invocation, f16 weights eight a load where K \
                 allows: linear_words.wgsl)"
            }
            (None, false) => " (a 4 × 4 block an invocation, linear.wgsl)",
        };
        // `products` names the family off matrix units "tiled (why)"; where the per-invocation
        // blocks run instead (a CPU adapter's default), that word would name a kernel that
        // does not run (round 42), so the line says which does.
        let products = match (&self.coop, self.tiled_products) {
            (None, false) => match self.products.strip_prefix("tiled") {
                Some(why) => format!("per-invocation blocks{why}"),
                None => self.products.clone(),
            },
            _ => self.products.clone(),
        };
        format!(
            "{}, prefill products: {products}{form}; decode products: {}; decode LM head: {}{tuning}{warm}",
            self.adapter,
            self.decode_products(),
            self.coop_decode.head_kind
        )
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

    fn module(&self) -> &KernelModule {
        &self.module
    }

    fn start(
        &self,
        prompt_lens: &[usize],
        max_new: usize,
        seed: u64,
    ) -> Result<Request, EngineError> {
        self.start_request(prompt_lens, max_new, seed)
    }

    fn prefill_logits(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let raw = self.forward_prefill(req, prompts, OutputKind::Logits, None)?;
        Ok(split_logits(&raw, self.config.vocab_size))
    }

    fn prefill_tokens(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        self.forward_prefill(req, prompts, OutputKind::of(sampling), None)
    }

    fn prefill_tokens_with_progress(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
        progress: &mut dyn FnMut(&PrefillProgress),
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        self.forward_prefill(req, prompts, OutputKind::of(sampling), Some(progress))
    }

    fn decode_logits(
        &self,
        req: &mut Request,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let raw = self.forward_decode(req, tokens, OutputKind::Logits)?;
        Ok(split_logits(&raw, self.config.vocab_size))
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

/// The subgroup products' knobs away from their defaults, for the description: empty at
/// the defaults, else ", epilogue loads after the K loop" (`MOA_WGPU_SG_EARLY=0`) and/or
/// ", x loads with the weights' at 4 rows" (`MOA_WGPU_SG_XFIRST=1`, where a K loop at 4
/// rows a workgroup row was built: `four_rows`; else said not to apply).
fn sg_knobs_description(k: SgKnobs, four_rows: bool) -> String {
    let mut s = String::new();
    if !k.early {
        s.push_str(", epilogue loads after the K loop");
    }
    match (k.xfirst, four_rows) {
        (true, true) => s.push_str(", x loads with the weights' at 4 rows"),
        (true, false) => s.push_str(
            ", MOA_WGPU_SG_XFIRST=1 not applied (it changes only K loops at 4 rows a workgroup row, none built here: MOA_WGPU_SG_ROWS=4 builds them)",
        ),
        _ => {}
    }
    s
}

/// The inner sizes K of the decode products that `MOA_WGPU_SG_FIT` fits (the QKV,
/// gate/up and head products' hidden size, the output product's attention width, the
/// down product's ffn size); none where the option is off (unset: on for subgroups of
/// `subgroup` ≥ 32, the H200's measured case; lavapipe's 8 keep the K loop).
fn fit_ks(options: &WgpuEngineOptions, c: &LlamaConfig, subgroup: Option<u32>) -> Vec<usize> {
    if options
        .sg_fit
        .unwrap_or(subgroup.is_some_and(|sg| sg >= 32))
    {
        vec![c.hidden_size, c.q_heads * c.head_dim, c.ffn_size]
    } else {
        Vec::new()
    }
}

/// [`fit_ks`] with each K's (KSPLIT, STEPS) ([`pipelines::fit_shape`] within `limit`
/// invocations a workgroup, the adapter's).
fn fit_shapes(
    options: &WgpuEngineOptions,
    c: &LlamaConfig,
    subgroup: Option<u32>,
    limit: u32,
) -> Vec<(usize, (u32, u32))> {
    let sg = subgroup.unwrap_or(32);
    fit_ks(options, c, subgroup)
        .into_iter()
        .map(|k| {
            let shape = pipelines::fit_shape(k, sg, limit);
            (k, shape)
        })
        .collect()
}

#[cfg(test)]
mod fit_tests {
    use super::pipelines::fit_shape;
    use super::*;

    /// `MOA_WGPU_SG_FIT` unset fits SmolLM2's products on subgroups of 32 or more (the
    /// H200's measured default: K 576 on 5 subgroups × 1 step, K 1536 on 6 × 2) and keeps
    /// the K loop on lavapipe's 8 lanes; `0` / `1` decide alone; within the adapter's
    /// workgroup limit.
    #[test]
    fn the_fitted_products_are_the_default_on_subgroups_of_32_or_more() {
        let c = crate::model::random::like("smollm2-135m").unwrap();
        let d = WgpuEngineOptions::default();
        assert_eq!(fit_ks(&d, &c, Some(32)), vec![576, 576, 1536]);
        assert!(fit_ks(&d, &c, Some(8)).is_empty() && fit_ks(&d, &c, None).is_empty());
        let off = WgpuEngineOptions {
            sg_fit: Some(false),
            ..d
        };
        assert!(fit_ks(&off, &c, Some(32)).is_empty());
        let on = WgpuEngineOptions {
            sg_fit: Some(true),
            ..d
        };
        assert_eq!(fit_ks(&on, &c, Some(8)).len(), 3);
        let f = |k, sg| fit_shape(k, sg, 1024);
        assert_eq!((f(576, 32), f(1536, 32)), ((5, 1), (6, 2)));
        assert_eq!((f(576, 8), f(1536, 8)), ((18, 1), (24, 2)));
        // An adapter of 128 invocations a workgroup: K 1536 on 4 subgroups × 3 steps.
        assert_eq!(fit_shape(1536, 32, 128), (4, 3));
        assert_eq!(
            fit_shapes(&on, &c, Some(32), 1024),
            vec![(576, (5, 1)), (576, (5, 1)), (1536, (6, 2))]
        );
        // Every shape fits 256 invocations (or the adapter's limit, where lower) and
        // `part_sums`' 32 subgroups.
        for sg in [8, 16, 32, 64] {
            for limit in [64, 128, 256, 1024] {
                for k in (4..20_000).step_by(4) {
                    let (ks, steps) = fit_shape(k, sg, limit);
                    assert!(ks * sg <= limit.min(256) && ks <= 32);
                    assert!(ks * sg * steps >= (k / 4) as u32);
                }
            }
        }
    }
}
