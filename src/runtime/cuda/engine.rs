//! CUDA executor for Llama-family models: weights on the GPU in the storage type (bf16,
//! f16 or f32), projections as cuBLAS GEMMs (fused QKV and gate/up), the small ops of
//! `ops.cu`, and attention through the plan's compiled kernels (`runtime::cuda`).
//!
//! The public API mirrors the wgpu engine (`runtime::llama::GpuLlama`): a request
//! ([`Request`]) fixes N = longest prompt + max new tokens and allocates every layer's
//! sink + ring cache once, sized from the plan's spans at N (docs/DESIGN.md §5), plus the
//! activations of the largest prefill pass and of a decode step. Prefill runs the rows
//! packed (ragged) in groups of up to [`CudaLlama::prefill_chunk_tokens`] tokens (a row
//! is never split: the prefill kernel attends within the pass). Decode runs one token per
//! row, each row at its own position; the whole step (embedding, every layer, the output
//! head and the sampling) is captured once as a CUDA graph and replayed; only the tokens,
//! positions, sampling draws and the decode work lists (docs/DESIGN.md §6) are written
//! before each replay. The work lists are padded to a fixed length per request with
//! empty items of a spare row, so the graph's grid never changes.
//!
//! Dense mode is the same code path with a plan whose every span is N.

#![warn(missing_docs)]

use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaGraph, CudaStream};

use super::blas::Gemm;
use super::ops::{self, DevMem, KArg, OpKernels};
use super::{launch_raw_ex, CudaAttention, CudaError, LoadedKernel, DEFAULT_ARCH};
use crate::codegen::abi::{Arg, Grid, LaunchSize};
use crate::lower::{lower, CacheLayout, KernelModule, StorageType};
use crate::model::{LlamaConfig, WeightFeed};
use crate::plan::Plan;
use crate::runtime::engine::{
    check_pass_tokens, request_n, split_logits, Engine, EngineError, ModelRef, Request, Sampling,
};
use crate::runtime::memory::{self, MemoryPlan};
use crate::runtime::wgpu_engine::dense_plan;

/// The name requests of this engine carry (`EngineError::WrongRequest`).
const BACKEND: &str = "cuda";
use crate::runtime::worklist::{choose_split, written_slots, ChunkPolicy, DecodeSplit, DecodeWork};

/// The arguments the engine gives a layer's prefill kernel (looked up by [`Arg`] in its
/// ABI's order): `bufs` = q, k, v and, with `v_f16`, the pre-pass's f16 copy of V and its
/// maxima (`codegen::abi::Arg::VF16`, `Arg::VMax`); device pointers.
fn prefill_args(
    bufs: [u64; 5],
    row_start: u64,
    out: u64,
    n_tokens: u32,
    rows: u32,
    v_f16: bool,
) -> Vec<(Arg, KArg)> {
    let [q, k, v, v16, vmax] = bufs;
    let mut args = vec![
        (Arg::Q, KArg::Ptr(q)),
        (Arg::K, KArg::Ptr(k)),
        (Arg::V, KArg::Ptr(v)),
        (Arg::RowStart, KArg::Ptr(row_start)),
        (Arg::Out, KArg::Ptr(out)),
        (Arg::NTokens, KArg::U32(n_tokens)),
        (Arg::Rows, KArg::U32(rows)),
    ];
    if v_f16 {
        args.extend([(Arg::VF16, KArg::Ptr(v16)), (Arg::VMax, KArg::Ptr(vmax))]);
    }
    args
}

fn cu(e: CudaError) -> EngineError {
    EngineError::Cuda(e)
}

/// One decoder block's weights on the device.
struct LayerMem {
    /// f32 `[hidden]`.
    attn_norm: DevMem,
    /// `[(q_heads + 2 kv_heads) * head_dim, hidden]`: q, k, v stacked (one GEMM).
    wqkv: DevMem,
    /// `[hidden, q_heads * head_dim]`.
    wo: DevMem,
    ffn_norm: DevMem,
    /// `[2 ffn, hidden]`: gate then up (one GEMM feeds SwiGLU).
    w_gate_up: DevMem,
    /// `[hidden, ffn]`.
    w_down: DevMem,
}

/// A model on one GPU with the compiled attention kernels of one plan.
pub struct CudaLlama {
    attention: CudaAttention,
    stream: Arc<CudaStream>,
    gemm: Gemm,
    ops: OpKernels,
    config: LlamaConfig,
    plan: Plan,
    module: KernelModule,
    storage: StorageType,
    embed: DevMem,
    lm_head: Option<DevMem>,
    output_norm: DevMem,
    layers: Vec<LayerMem>,
    weight_bytes: u64,
    /// Most prompt tokens of one prefill pass (rows are grouped up to it; a longer row
    /// runs alone). Sets the prefill activations' size.
    pub prefill_chunk_tokens: usize,
    /// Replay decode steps as a CUDA graph (on by default; off launches every kernel).
    pub use_graph: bool,
    /// Prefill runs each layer's norms, QKV product, RoPE and FFN over groups of at most
    /// this many tokens of the pass (attention and the output projection still see the
    /// whole pass): the f32 QKV and gate/up, the norm and SwiGLU outputs are then sized
    /// for the group instead of the pass (`memory::activation_bytes_sub`; 48 of 214 KiB
    /// per pass token stay for the Llama-2-7B shape). `None` (default): whole passes.
    pub prefill_sub_tokens: Option<usize>,
    /// Decode steps of few rows run each layer's input norm fused with the QKV product,
    /// and the FFN norm fused with the gate/up product and SwiGLU (`moa_norm_gemv`): 6
    /// launches a layer instead of 9, for small models whose step is bound by launches.
    /// Used when the rows fit the kernel (`OpKernels::norm_gemv_fits`). Off by default
    /// until checked on a GPU (`moa bench --fuse`; `--check-ops` checks the kernel).
    pub fuse_small_decode: bool,
    /// Decode attention is a programmatic dependent launch after the cache write
    /// (`moa_rope_kv`, which lets it start at once): its blocks become resident and load
    /// their work items while the cache write runs, then wait for it
    /// (`griddepcontrol.wait`) before reading Q, `row_pos` or the cache (docs/DESIGN.md §6;
    /// benches/RESULTS.md, decode calls 12–13).
    pub decode_pdl: bool,
    /// Where a layer's prefill takes V in f16 in the `u` form (`codegen::abi::Arg::VF16`),
    /// the prefill pass's cache write (`ops::OpKernels::v_write`) also writes the f16 copy
    /// at scale 1 and the per-KV-head maxima, so that only `_vfix` runs before the prefill
    /// instead of the whole pre-pass (`runtime::cuda::VPrepass`); the same bits either way.
    /// On by default; off queues the pre-pass as before (for A/B and checks).
    pub fuse_v_write: bool,
    /// Benchmarks only (`moa bench --prefill-rows`): prefill computes only the first `k`
    /// rows; every later row b gets row `b mod k`'s caches and logits by device copies.
    /// Prompts must then all have one length. Decode is unchanged: a step reads the same
    /// K/V slots (the work lists depend on positions, not on values), so its time is that
    /// of a full prefill's, while the call's prefill time drops from `rows` to `k` rows
    /// (at the largest 8B batch, ~40 s of device time).
    pub prefill_sample_rows: Option<usize>,
    /// `cuda <GPU name>`.
    device: String,
}

/// Positions that [`CudaLlama::prefill_positions_logits`] puts through the output head at
/// once (SmolLM2: 96 MiB of f32 logits).
pub const SCORED_GROUP: usize = 512;

/// What [`CudaLlama::prefill_positions_logits`] hands each group of scored positions to:
/// their (row, position) pairs and their logits, `[pairs, vocab]` f32.
pub type PositionLogits<'a> = dyn FnMut(&[(usize, usize)], &[f32]) -> Result<(), EngineError> + 'a;

/// What [`CudaLlama::forward_prefill_with`] calls after each pass: (the pass's
/// activations, its rows, each row's first token in the pass).
type PassHook<'h> = dyn FnMut(&Act, std::ops::Range<usize>, &[u32]) -> Result<(), EngineError> + 'h;

/// Where the weights come from.
enum Source<'a> {
    /// The host weights: kept, given up or streamed from the file ([`ModelRef`]).
    Host(WeightFeed<'a>),
    /// Uniform random values made on the device from this seed (`ops::random_value`).
    Random(u64),
}

/// How a forward pass ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Output {
    Logits,
    /// Temperature 0: argmax (also top-k 1, [`Sampling::is_greedy`]).
    Tokens {
        temperature: f32,
        top_p: f32,
        top_k: u32,
    },
}

impl Output {
    fn of(s: Sampling) -> Output {
        Output::Tokens {
            temperature: if s.is_greedy() { 0.0 } else { s.temperature },
            top_p: s.top_p.clamp(0.0, 1.0),
            top_k: s.top_k,
        }
    }
}

/// Activations of one pass of up to `cap` tokens, whose norms, QKV and FFN run over
/// groups of up to `sub` tokens.
struct Act {
    cap: usize,
    sub: usize,
    /// f32 `[cap, hidden]`: the residual stream.
    x: DevMem,
    /// `[sub, hidden]` storage type: a norm's output (GEMM input).
    h: DevMem,
    /// f32 `[sub, (hq + 2 hkv) d]`.
    qkv: DevMem,
    /// `[cap, hq, d]`, `[cap, hkv, d]` x2, storage type.
    q: DevMem,
    k: DevMem,
    v: DevMem,
    /// `[cap, hq, d]` storage type.
    attn: DevMem,
    /// f32 `[sub, 2 ffn]`.
    gu: DevMem,
    /// `[sub, ffn]` storage type.
    ffn: DevMem,
    /// u32 `[cap]` and (position, row, last position, 0) `[cap]`.
    tokens: DevMem,
    tok_info: DevMem,
}

/// One distinct cache layout's decode work list (layers with equal layouts share one).
struct Work {
    /// The list's layout: the cache's, each KV head's segment repeated per sub-group of
    /// the decode where it has them (`CacheLayout::sub_grouped`).
    layout: CacheLayout,
    /// Equal chunks (cluster 1) or every segment as one thread-block cluster, chosen
    /// for the request's final positions.
    split: DecodeSplit,
    key_tile: u32,
    /// Items every step launches: the most the request can need, padded with empty items.
    capacity: u32,
    buf: DevMem,
    uploaded: Vec<u32>,
    /// Every segment's ring is full at the uploaded positions: the list no longer
    /// changes (positions only grow), so steps skip rebuilding it.
    full: bool,
}

/// Per-request state (inside the trait's `Request`): caches sized from the plan at N,
/// activations, the decode graph.
struct CudaRequest {
    rows: usize,
    /// N: spans are evaluated at this length for the whole request.
    n_tokens: u32,
    layouts: Vec<CacheLayout>,
    k_cache: Vec<DevMem>,
    v_cache: Vec<DevMem>,
    /// Per layer, u32x4 `[kv_heads]`: (offset, sink, ring, 0) of each segment.
    segs: Vec<DevMem>,
    /// f32 (cos, sin) `[N, head_dim / 2]`.
    rope: DevMem,
    prefill: Act,
    /// Decode activations for `rows + 1` rows (the spare row takes the padding items).
    decode: Act,
    /// u32 `[rows + 1]`: each row's position in the step.
    row_pos: DevMem,
    /// Index of each layer's work list in `works`.
    work_of: Vec<usize>,
    works: Vec<Work>,
    partials: DevMem,
    seg_done: DevMem,
    /// u32 `[rows + 1]`: prefill row boundaries of a group.
    row_start: DevMem,
    /// u32 `[rows]`: index of each row's last token in a pass.
    last: DevMem,
    /// `[rows, hidden]` storage type: the final norm of each row's last token.
    h_last: DevMem,
    /// f32 `[rows, vocab]`.
    logits: DevMem,
    /// f32 `[rows]`: sampling draws.
    uniforms: DevMem,
    /// u32 `[rows]`.
    tokens_out: DevMem,
    graph: Option<(Output, CudaGraph)>,
    /// Where a layer's prefill takes V in f16 (the `v` variant, `codegen::abi::Arg::VF16`):
    /// the pre-pass's f16 copy of the pass's V `[cap, kv_heads, head_dim]` and its maxima
    /// `u32[kv_heads]`, rewritten by each layer's pre-pass before its prefill.
    v_f16: Option<(DevMem, DevMem)>,
}

/// Device memory kept free beside the weights when a model is loaded (CUDA's own
/// workspaces, cuBLAS's, the first request's small buffers).
const WEIGHT_RESERVE_BYTES: u64 = 512 << 20;

/// Free memory of `stream`'s device, in bytes, after trimming the stream-ordered pool
/// (memory of dropped buffers stays reserved in it, invisible to `cuMemGetInfo`).
fn device_free_bytes(stream: &Arc<CudaStream>) -> Result<u64, EngineError> {
    let ctx = stream.context();
    let _ = ctx.bind_to_thread();
    stream
        .synchronize()
        .map_err(|e| cu(super::driver("waiting for the GPU")(e)))?;
    let mut pool: cudarc::driver::sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: plain driver calls on this context's device; a failure leaves the pool
    // as it was (the estimate is then only conservative).
    unsafe {
        use cudarc::driver::sys;
        if sys::cuDeviceGetMemPool(&mut pool, ctx.cu_device()) == sys::CUresult::CUDA_SUCCESS {
            let _ = sys::cuMemPoolTrimTo(pool, 0);
        }
    }
    cudarc::driver::result::mem_get_info()
        .map(|(free, _)| free as u64)
        .map_err(|e| cu(super::driver("reading the free memory")(e)))
}

impl CudaLlama {
    /// Uploads `model` (weights converted to `storage`) and compiles the plan's attention
    /// kernels (`plan = None`: dense) for GPU `ordinal`. `model` is `&Model` (the weights
    /// stay), `&mut Model` (taken, each host tensor freed once uploaded) or `(&Model, &mut
    /// WeightStream)` (each read from the file when uploaded): [`ModelRef`].
    pub fn new<'m>(
        model: impl Into<ModelRef<'m>>,
        plan: Option<&Plan>,
        storage: StorageType,
        ordinal: usize,
    ) -> Result<CudaLlama, EngineError> {
        let model = model.into();
        let config = model.config().clone();
        Self::build(
            &config,
            plan,
            storage,
            ordinal,
            Source::Host(model.into_feed()),
        )
    }

    /// A model of `config`'s shape with uniform random weights made on the GPU (matrices
    /// ±1/√fan-in, norms 1, embedding ±1): for benchmarks of shapes whose weights cannot
    /// travel (7B), with the same kernels and bytes as real weights.
    pub fn random(
        config: &LlamaConfig,
        plan: Option<&Plan>,
        storage: StorageType,
        ordinal: usize,
        seed: u64,
    ) -> Result<CudaLlama, EngineError> {
        Self::build(config, plan, storage, ordinal, Source::Random(seed))
    }

    fn build(
        config: &LlamaConfig,
        plan: Option<&Plan>,
        storage: StorageType,
        ordinal: usize,
        source: Source,
    ) -> Result<CudaLlama, EngineError> {
        let config = config.clone();
        let plan = match plan {
            Some(p) => {
                config.check_plan(p)?;
                p.clone()
            }
            None => dense_plan(&config)?,
        };
        if config.kv_heads > 1024 || !config.head_dim.is_multiple_of(16) {
            return Err(EngineError::Input(format!(
                "unsupported shape: head_dim {} must be a multiple of 16 (the attention kernels' \
                 16-byte loads), kv_heads {} at most 1024",
                config.head_dim, config.kv_heads
            )));
        }
        let module = lower(&plan, storage);
        ops::driver_present().map_err(cu)?;
        let attention = CudaAttention::new(&module, ordinal, DEFAULT_ARCH).map_err(cu)?;
        let stream = attention.stream().clone();
        let ops = OpKernels::load(&stream, storage, DEFAULT_ARCH).map_err(cu)?;
        let gemm = Gemm::new(&stream, storage).map_err(cu)?;
        // A model that does not fit is refused here, before any weight is allocated (the
        // context, kernels and cuBLAS handle drop with the error).
        let (mut feed, seed) = match source {
            Source::Host(feed) => (Some(feed), 0),
            Source::Random(seed) => (None, seed),
        };
        let has_head = match &feed {
            Some(f) => f.has_output(),
            None => !config.tied_embeddings,
        };
        memory::check_weights_fit(
            &config,
            storage,
            has_head,
            device_free_bytes(&stream)?,
            WEIGHT_RESERVE_BYTES,
        )
        .map_err(|m| EngineError::Input(format!("GPU {ordinal}: {m}")))?;
        let c = &config;
        let (hidden, ffn, vocab) = (c.hidden_size, c.ffn_size, c.vocab_size);
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        // Bytes uploaded, checked against the planner's formula below.
        let mut uploaded = 0u64;
        let mut tensor_index = 0u64;
        // The device tensor `name` of `n` values: the host tensors `parts` (GGUF names and
        // shapes) stacked by rows, each asked of the feed when this tensor is made and
        // dropped once uploaded (given-up and streamed weights are then never all on the
        // host), or random on the device.
        let mut make = |name: &str,
                        parts: &[(String, Vec<usize>)],
                        n: usize,
                        fan_in: usize,
                        norm: bool|
         -> Result<DevMem, EngineError> {
            let t = if norm { StorageType::F32 } else { storage };
            uploaded += (n * t.bytes()) as u64;
            tensor_index += 1;
            match feed.as_mut() {
                Some(feed) => {
                    let mut host = Vec::with_capacity(parts.len());
                    for (part, shape) in parts {
                        host.push(feed.tensor(part, shape)?);
                    }
                    let data: Vec<f32> = match host.len() {
                        1 => host.pop().map(|t| t.into_owned().data).unwrap_or_default(),
                        _ => host.iter().flat_map(|t| t.data.iter().copied()).collect(),
                    };
                    drop(host);
                    if data.len() != n {
                        return Err(EngineError::Input(format!(
                            "tensor `{name}` has {} values, the config needs {n}",
                            data.len()
                        )));
                    }
                    DevMem::upload(&stream, &data, t, name).map_err(cu)
                }
                None => {
                    let m = DevMem::alloc(&stream, n * t.bytes(), name).map_err(cu)?;
                    let (scale, offset) = if norm {
                        (0.0, 1.0)
                    } else {
                        (1.0 / (fan_in as f32).sqrt(), 0.0)
                    };
                    let s = seed ^ tensor_index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    // SAFETY: `m` holds n values of the chosen type.
                    unsafe { ops.fill_random(&stream, m.ptr, n as u64, s, scale, offset, norm) }
                        .map_err(cu)?;
                    Ok(m)
                }
            }
        };
        let one = |name: &str, shape: Vec<usize>| vec![(name.to_string(), shape)];
        let embed = make(
            "token_embd",
            &one("token_embd", vec![vocab, hidden]),
            vocab * hidden,
            1,
            false,
        )?;
        let lm_head = match has_head {
            true => Some(make(
                "output",
                &one("output", vec![vocab, hidden]),
                vocab * hidden,
                hidden,
                false,
            )?),
            false => None,
        };
        let output_norm = make(
            "output_norm",
            &one("output_norm", vec![hidden]),
            hidden,
            1,
            true,
        )?;
        let mut layers = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let part = |f: &str, shape: Vec<usize>| (format!("blk.{i}.{f}"), shape);
            let name = |f: &str| format!("blk.{i}.{f}");
            layers.push(LayerMem {
                attn_norm: make(
                    &name("attn_norm"),
                    &[part("attn_norm", vec![hidden])],
                    hidden,
                    1,
                    true,
                )?,
                wqkv: make(
                    &name("attn_qkv"),
                    &[
                        part("attn_q", vec![q_dim, hidden]),
                        part("attn_k", vec![kv_dim, hidden]),
                        part("attn_v", vec![kv_dim, hidden]),
                    ],
                    (q_dim + 2 * kv_dim) * hidden,
                    hidden,
                    false,
                )?,
                wo: make(
                    &name("attn_output"),
                    &[part("attn_output", vec![hidden, q_dim])],
                    hidden * q_dim,
                    q_dim,
                    false,
                )?,
                ffn_norm: make(
                    &name("ffn_norm"),
                    &[part("ffn_norm", vec![hidden])],
                    hidden,
                    1,
                    true,
                )?,
                w_gate_up: make(
                    &name("ffn_gate_up"),
                    &[
                        part("ffn_gate", vec![ffn, hidden]),
                        part("ffn_up", vec![ffn, hidden]),
                    ],
                    2 * ffn * hidden,
                    hidden,
                    false,
                )?,
                w_down: make(
                    &name("ffn_down"),
                    &[part("ffn_down", vec![hidden, ffn])],
                    hidden * ffn,
                    ffn,
                    false,
                )?,
            });
        }
        stream
            .synchronize()
            .map_err(|e| cu(super::driver("uploading the weights")(e)))?;
        let weight_bytes = memory::weight_bytes(&config, storage, lm_head.is_some());
        debug_assert_eq!(uploaded, weight_bytes, "runtime::memory::weight_bytes");
        let device = format!(
            "cuda {} (GPU {ordinal})",
            stream.context().name().unwrap_or_else(|_| "?".into())
        );
        Ok(CudaLlama {
            attention,
            stream,
            gemm,
            ops,
            config,
            plan,
            module,
            storage,
            embed,
            lm_head,
            output_norm,
            layers,
            weight_bytes,
            prefill_chunk_tokens: memory::DEFAULT_PREFILL_CHUNK_TOKENS,
            use_graph: true,
            prefill_sample_rows: None,
            prefill_sub_tokens: None,
            fuse_small_decode: false,
            decode_pdl: true,
            fuse_v_write: true,
            device,
        })
    }

    /// The one stream every launch and copy of the engine is queued on, in order.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// How decode work lists are cut (default `worklist::cuda_chunk_policy` of the GQA
    /// group): for requests started after the call. A policy that picks thread-block
    /// clusters (`waves:N:pairs` where every segment is cut in two, `cluster:C`) makes
    /// the request's lists clusters and launches them so (`LoadedKernel::launch_clustered`).
    pub fn set_decode_chunk_policy(&mut self, policy: ChunkPolicy) {
        self.attention.set_chunk_policy(policy);
    }

    /// The engine's small ops (embedding, norms, RoPE + cache write, sampling) for its
    /// storage type.
    pub fn ops(&self) -> &OpKernels {
        &self.ops
    }

    /// The cache layout of every layer at N ([`KernelModule::cache_layouts`]).
    pub fn layouts(&self, n_tokens: u32) -> Vec<CacheLayout> {
        self.module.cache_layouts(n_tokens)
    }

    /// The device bytes of a request whose longest prompt has `longest_prompt` tokens,
    /// with the caches of `layouts` ([`Self::layouts`] at its N): the same pure formula
    /// `moa plan show --max-batch` uses without a GPU (`runtime::memory`).
    pub fn memory_plan(&self, layouts: &[CacheLayout], longest_prompt: usize) -> MemoryPlan {
        MemoryPlan::new(
            &self.config,
            self.storage,
            self.lm_head.is_some(),
            layouts,
            longest_prompt,
            self.prefill_chunk_tokens,
        )
        .with_prefill_sub(
            &self.config,
            self.storage,
            longest_prompt,
            self.prefill_chunk_tokens,
            self.prefill_sub_tokens,
        )
    }

    /// Free device memory, in bytes. Memory of dropped requests goes back to the
    /// stream-ordered allocator's pool, which keeps it reserved (invisible to
    /// `cuMemGetInfo`): the pool is trimmed first, so the planner sees it as free (a
    /// 7B-shape run measured 19 rows "max" after two requests instead of ~55 before).
    pub fn free_bytes(&self) -> Result<u64, EngineError> {
        device_free_bytes(&self.stream)
    }

    /// The memory planner: the most rows whose caches (at N = `prompt + max_new`) and
    /// activations fit in the free device memory, keeping `reserve` bytes spare.
    pub fn max_rows(
        &self,
        prompt: usize,
        max_new: usize,
        reserve: u64,
    ) -> Result<usize, EngineError> {
        let n = u32::try_from(prompt.saturating_add(max_new)).unwrap_or(u32::MAX);
        let free = self.free_bytes()?.saturating_sub(reserve);
        Ok(self.memory_plan(&self.layouts(n), prompt).max_rows(free))
    }

    fn alloc(&self, bytes: usize, what: &str) -> Result<DevMem, EngineError> {
        DevMem::alloc(&self.stream, bytes, what).map_err(cu)
    }

    /// The request's f16 copy of V and its maxima where layer `l`'s pass over activations
    /// `a` writes them in its cache write ([`Self::fuse_v_write`]): a prefill pass (not the
    /// decode step's activations) whose prefill kernel takes V in f16 in the `u` form.
    fn fused_v_write<'r>(
        &self,
        req: &'r CudaRequest,
        a: &Act,
        l: usize,
    ) -> Result<Option<&'r (DevMem, DevMem)>, EngineError> {
        if !self.fuse_v_write || !std::ptr::eq(a, &req.prefill) {
            return Ok(None);
        }
        let unit = self
            .attention
            .prefill_prepass(l)
            .map_err(cu)?
            .is_some_and(|p| p.unit());
        Ok(req
            .v_f16
            .as_ref()
            .filter(|_| unit && self.config.head_dim.is_multiple_of(16)))
    }

    /// Whether any layer's prefill takes V in f16 (the `v` variant: its pre-pass needs
    /// the request's f16 copy of V).
    fn takes_v_f16(&self) -> Result<bool, EngineError> {
        for l in 0..self.layers.len() {
            if self.attention.prefill_prepass(l).map_err(cu)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn act(&self, cap: usize, sub: usize) -> Result<Act, EngineError> {
        let c = &self.config;
        let e = self.storage.bytes();
        let (d, hq, hkv) = (c.head_dim, c.q_heads, c.kv_heads);
        let sub = sub.clamp(1, cap.max(1));
        Ok(Act {
            cap,
            sub,
            x: self.alloc(cap * c.hidden_size * 4, "x")?,
            h: self.alloc(sub * c.hidden_size * e, "h")?,
            qkv: self.alloc(sub * (hq + 2 * hkv) * d * 4, "qkv")?,
            // Zeroed: the decode pass's spare row is read (never written) by padding items.
            q: DevMem::zeros(&self.stream, cap * hq * d * e, "q").map_err(cu)?,
            k: self.alloc(cap * hkv * d * e, "k")?,
            v: self.alloc(cap * hkv * d * e, "v")?,
            attn: self.alloc(cap * hq * d * e, "attention output")?,
            gu: self.alloc(sub * 2 * c.ffn_size * 4, "gate_up")?,
            ffn: self.alloc(sub * c.ffn_size * e, "ffn")?,
            tokens: self.alloc(cap * 4, "tokens")?,
            tok_info: self.alloc(cap * 16, "token info")?,
        })
    }

    /// Starts a request: N = longest prompt + `max_new`; caches allocated from the plan
    /// (checked against the free device memory first: a batch that does not fit is an
    /// error naming the largest that does, with nothing allocated).
    fn start_request(
        &self,
        prompt_lens: &[usize],
        max_new: usize,
        seed: u64,
    ) -> Result<Request, EngineError> {
        let n_tokens = request_n(prompt_lens, max_new, &self.config, &self.plan)?;
        let rows = prompt_lens.len();
        let longest = prompt_lens.iter().copied().max().unwrap_or(0);
        let c = &self.config;
        let (d, e) = (c.head_dim, self.storage.bytes());
        let cap = self.prefill_chunk_tokens.max(longest);
        let layouts = self.layouts(n_tokens);
        let memory = self.memory_plan(&layouts, longest);
        let kv_bytes = memory.kv_bytes(rows);
        let need = memory.request_bytes(rows);
        let free = self.free_bytes()?;
        if need > free {
            let fit = memory.max_rows(free);
            return Err(EngineError::Input(format!(
                "a request of {rows} rows at N = {n_tokens} needs {:.2} GiB on the GPU \
                 ({:.2} GiB of KV cache), {:.2} GiB are free: at most {fit} rows fit with this plan",
                need as f64 / 1073741824.0,
                kv_bytes as f64 / 1073741824.0,
                free as f64 / 1073741824.0
            )));
        }
        let mut k_cache = Vec::with_capacity(layouts.len());
        let mut v_cache = Vec::with_capacity(layouts.len());
        let mut segs = Vec::with_capacity(layouts.len());
        for (i, l) in layouts.iter().enumerate() {
            let bytes = rows * l.row_slots as usize * d * e;
            k_cache.push(self.alloc(bytes, &format!("k_cache.{i}"))?);
            v_cache.push(self.alloc(bytes, &format!("v_cache.{i}"))?);
            let words: Vec<u32> = l
                .segments
                .iter()
                .flat_map(|s| [s.offset, s.sink, s.ring, 0])
                .collect();
            let mut m = self.alloc(words.len() * 4, "segments")?;
            m.write(&self.stream, &words).map_err(cu)?;
            segs.push(m);
        }
        let table = ops::rope_table(n_tokens, &c.rope_inv_freq());
        let rope = DevMem::upload(
            &self.stream,
            table.as_flattened(),
            StorageType::F32,
            "rope table",
        )
        .map_err(cu)?;
        // Decode work lists: one per distinct layout, each with a chunk chosen for the
        // request's final positions and room for the most items any step needs (items
        // only grow with the positions).
        let final_pos = vec![n_tokens - 1; rows];
        let mut works: Vec<Work> = Vec::new();
        let mut work_of = Vec::with_capacity(layouts.len());
        // The most work-list segments a row has (KV heads × the decode's sub-groups).
        let mut row_segments = c.kv_heads;
        for (i, l) in layouts.iter().enumerate() {
            let (_, dec) = self.attention.layer_kernels(i).map_err(cu)?;
            // A decode with sub-groups (a GQA group past 8) takes its list over each KV
            // head's segment repeated per sub-group (CacheLayout::sub_grouped).
            let l = &l.sub_grouped(dec.sub_groups());
            row_segments = row_segments.max(l.segments.len());
            if let Some(j) = works.iter().position(|w| &w.layout == l) {
                work_of.push(j);
                continue;
            }
            let tile = dec.abi.tiles.k_tile.unwrap_or(1).max(1);
            // Packed cluster lists re-pack their segments as positions grow, so their
            // item count is not fixed for a captured graph: the engine takes the pairs
            // rule of the same waves chunk there (docs/DESIGN.md §6, packed clusters).
            let policy = match self.attention.chunk_policy() {
                ChunkPolicy::WavesPacked { overhead_tiles } => {
                    ChunkPolicy::WavesPairs { overhead_tiles }
                }
                ChunkPolicy::Packed { .. } => {
                    crate::runtime::worklist::cuda_chunk_policy(c.group_size() as u32)
                }
                p => p,
            };
            let split = choose_split(
                policy,
                l,
                &final_pos,
                tile,
                self.attention.decode_slots(),
                c.group_size() as u32,
            );
            // `cluster:16` only on kernels that merge in clusters of 16 (the `h` decode,
            // tiles.cluster): a clear error here, not the driver's at the first launch.
            if split.cluster > dec.max_cluster() {
                return Err(EngineError::Input(format!(
                    "decode policy `{policy}` makes clusters of {} blocks; `{}` merges in at most {}",
                    split.cluster,
                    dec.name,
                    dec.max_cluster()
                )));
            }
            // A cluster list holds every segment's C items at every position (C rows x
            // KV heads items, some empty early on): its capacity never changes.
            let capacity = DecodeWork::build_split(l, &final_pos, split, tile).n_items();
            work_of.push(works.len());
            works.push(Work {
                layout: l.clone(),
                split,
                key_tile: tile,
                capacity,
                buf: self.alloc(capacity as usize * 32, "decode work list")?,
                uploaded: Vec::new(),
                full: false,
            });
        }
        let max_items = works.iter().map(|w| w.capacity).max().unwrap_or(1) as usize;
        let group = c.group_size();
        let partials = self.alloc(max_items * group * (d + 2) * 4, "decode partials")?;
        let seg_done =
            DevMem::zeros(&self.stream, (rows + 1) * row_segments * 4, "seg_done").map_err(cu)?;
        let row_pos = DevMem::zeros(&self.stream, (rows + 1) * 4, "row_pos").map_err(cu)?;
        let state = CudaRequest {
            rows,
            n_tokens,
            prefill: self.act(cap, self.prefill_sub_tokens.unwrap_or(cap))?,
            decode: self.act(rows + 1, rows + 1)?,
            layouts,
            k_cache,
            v_cache,
            segs,
            rope,
            row_pos,
            work_of,
            works,
            partials,
            seg_done,
            row_start: self.alloc((rows + 1) * 4, "row_start")?,
            last: self.alloc(rows * 4, "last")?,
            h_last: self.alloc(rows * c.hidden_size * e, "h_last")?,
            logits: self.alloc(rows * c.vocab_size * 4, "logits")?,
            uniforms: self.alloc(rows * 4, "uniforms")?,
            tokens_out: self.alloc(rows * 4, "tokens_out")?,
            graph: None,
            v_f16: if self.takes_v_f16()? {
                let (copy, maxima) = super::v_prepass_bytes(cap, c.kv_heads, d);
                Some((
                    self.alloc(copy, "f16 copy of V")?,
                    self.alloc(maxima, "V maxima")?,
                ))
            } else {
                None
            },
        };
        Ok(Request::new(BACKEND, rows, n_tokens, kv_bytes, seed, state))
    }

    /// Launches a generated attention kernel with its ABI's parameters taken from `args`.
    ///
    /// # Safety
    /// Every buffer in `args` has the shape the ABI gives it for `size`.
    unsafe fn launch_attention(
        &self,
        k: &LoadedKernel,
        args: &[(Arg, KArg)],
        size: &LaunchSize,
        (cluster, programmatic): (u32, bool),
    ) -> Result<(), EngineError> {
        let mut vals = Vec::with_capacity(k.abi.params.len());
        for p in &k.abi.params {
            let v = args
                .iter()
                .find(|(a, _)| *a == p.arg)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    EngineError::Input(format!(
                        "kernel `{}` takes {:?}, which the engine does not provide",
                        k.name, p.arg
                    ))
                })?;
            vals.push(v);
        }
        // A persistent prefill (`Grid::PersistentQueryTiles`) takes one block per SM.
        let sms = match k.abi.grid {
            Grid::PersistentQueryTiles { .. } => self
                .stream
                .context()
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_or(0, |n| n.max(0) as u32),
            _ => 0,
        };
        let grid = k.abi.grid.dims_on(size, sms);
        if grid[1..].iter().any(|&g| g > 65_535) {
            return Err(EngineError::Input(format!(
                "`{}`: launch grid {grid:?} exceeds CUDA's 65535 in y or z (fewer rows per prefill pass)",
                k.name
            )));
        }
        if cluster > 1 || programmatic {
            if !grid[0].is_multiple_of(cluster.max(1)) {
                return Err(EngineError::Input(format!(
                    "`{}`: clusters of {cluster} blocks do not divide the grid's {} blocks",
                    k.name, grid[0]
                )));
            }
            let mut slots: Vec<u64> = vals
                .iter()
                .map(|v| match *v {
                    KArg::Ptr(p) | KArg::U64(p) => p,
                    KArg::U32(x) => u64::from(x),
                    KArg::F32(x) => u64::from(x.to_bits()),
                })
                .collect();
            let cfg = cudarc::driver::LaunchConfig {
                grid_dim: (grid[0], grid[1], grid[2]),
                block_dim: (k.abi.block[0], k.abi.block[1], k.abi.block[2]),
                shared_mem_bytes: k.abi.dynamic_shared_bytes,
            };
            // SAFETY: the caller's contract; the decode kernels read nothing but their
            // work item before griddepcontrol.wait.
            return unsafe {
                launch_raw_ex(
                    &self.stream,
                    &k.function,
                    &k.name,
                    &mut slots,
                    cfg,
                    programmatic,
                    cluster,
                )
            }
            .map_err(cu);
        }
        // SAFETY: the caller's contract.
        unsafe {
            ops::launch(
                &self.stream,
                &k.function,
                &k.name,
                grid,
                k.abi.block,
                k.abi.dynamic_shared_bytes,
                &vals,
            )
        }
        .map_err(cu)
    }

    /// Queues the layers of one pass over `t` tokens held in `a` (tokens and token info
    /// already written). `attend` queues the attention of a layer.
    fn queue_layers(
        &self,
        req: &CudaRequest,
        a: &Act,
        t: usize,
        attend: &dyn Fn(usize) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let c = &self.config;
        let s = &self.stream;
        let (hidden, d) = (c.hidden_size, c.head_dim);
        let (hq, hkv) = (c.q_heads, c.kv_heads);
        let qkv_dim = (hq + 2 * hkv) * d;
        let tn = t as u32;
        let eps = c.rms_norm_eps;
        // SAFETY (every launch below): buffers were sized for `a.cap` >= t tokens (h, qkv,
        // gu and ffn for `a.sub` >= every group's tokens) and the request's rows; weights
        // for the config.
        unsafe {
            self.ops
                .embed(s, a.tokens.ptr, self.embed.ptr, a.x.ptr, tn, hidden as u32)
                .map_err(cu)?;
            // Token groups of the pass for the norms, QKV, RoPE and FFN (one group unless
            // `prefill_sub_tokens` bounds them): (first token, tokens).
            let groups: Vec<(usize, usize)> = (0..t)
                .step_by(a.sub.max(1))
                .map(|t0| (t0, a.sub.min(t - t0)))
                .collect();
            let (e, f32b) = (self.storage.bytes() as u64, 4u64);
            // A prefill pass writes Q, K and V in blocks of 64 tokens (moa_rope_qk,
            // moa_v_write: one token per block, moa_rope_kv, moved 0.8 TB/s there); decode
            // steps keep moa_rope_kv (a few tokens; the decode attention's programmatic
            // launch follows it).
            let prefill_blocks = std::ptr::eq(a, &req.prefill) && d.is_multiple_of(16);
            // The fused norm + projection kernels: decode steps only (one group).
            let fused = self.fuse_small_decode
                && std::ptr::eq(a, &req.decode)
                && OpKernels::norm_gemv_fits(t, hidden);
            for (l, w) in self.layers.iter().enumerate() {
                // The prefill pass's V by moa_v_write with the `u` pre-pass's first half
                // (the f16 copy, the maxima zeroed here and raised by every group).
                let v16 = match self.fused_v_write(req, a, l)? {
                    Some((v16, vmax)) => {
                        super::zero_v_max(s, vmax.ptr, hkv as u32).map_err(cu)?;
                        Some((v16.ptr, vmax.ptr))
                    }
                    None => None,
                };
                for &(t0, n) in &groups {
                    let g = t0 as u64;
                    let x = a.x.ptr + g * (hidden as u64) * f32b;
                    if fused {
                        self.ops
                            .norm_gemv(
                                s,
                                x,
                                w.attn_norm.ptr,
                                w.wqkv.ptr,
                                a.qkv.ptr,
                                n as u32,
                                hidden as u32,
                                qkv_dim as u32,
                                eps,
                                false,
                            )
                            .map_err(cu)?;
                    } else {
                        self.ops
                            .rmsnorm(
                                s,
                                x,
                                0,
                                w.attn_norm.ptr,
                                a.h.ptr,
                                n as u32,
                                hidden as u32,
                                eps,
                            )
                            .map_err(cu)?;
                        self.gemm
                            .linear(a.h.ptr, w.wqkv.ptr, a.qkv.ptr, n, hidden, qkv_dim, false)
                            .map_err(cu)?;
                    }
                    // Each token's cache write depends only on its own token info
                    // (position, row, the row's last position in the pass), so groups
                    // write the same slots as one launch over the pass.
                    let v = a.v.ptr + g * (hkv * d) as u64 * e;
                    let (q, k) = (
                        a.q.ptr + g * (hq * d) as u64 * e,
                        a.k.ptr + g * (hkv * d) as u64 * e,
                    );
                    let (heads, slots) =
                        ([hq as u32, hkv as u32, d as u32], req.layouts[l].row_slots);
                    if prefill_blocks {
                        // A prefill pass: Q, K and V in blocks of 64 tokens (the same
                        // values and slots as moa_rope_kv), V with the pre-pass's half.
                        let (tok, seg) = (a.tok_info.ptr + g * 16, req.segs[l].ptr);
                        self.ops
                            .rope_qk(
                                s,
                                a.qkv.ptr,
                                tok,
                                req.rope.ptr,
                                seg,
                                [q, k],
                                req.k_cache[l].ptr,
                                n as u32,
                                heads,
                                slots,
                            )
                            .map_err(cu)?;
                        let copy = v16
                            .map_or([0, 0], |(v16, vmax)| [v16 + g * (hkv * d) as u64 * 2, vmax]);
                        self.ops
                            .v_write(
                                s,
                                a.qkv.ptr,
                                tok,
                                seg,
                                v,
                                req.v_cache[l].ptr,
                                copy,
                                n as u32,
                                heads,
                                slots,
                            )
                            .map_err(cu)?;
                    } else {
                        self.ops
                            .rope_kv(
                                s,
                                a.qkv.ptr,
                                a.tok_info.ptr + g * 16,
                                req.rope.ptr,
                                req.segs[l].ptr,
                                [q, k, v],
                                [req.k_cache[l].ptr, req.v_cache[l].ptr],
                                n as u32,
                                heads,
                                slots,
                            )
                            .map_err(cu)?;
                    }
                }
                attend(l)?;
                self.gemm
                    .linear(a.attn.ptr, w.wo.ptr, a.x.ptr, t, hq * d, hidden, true)
                    .map_err(cu)?;
                for &(t0, n) in &groups {
                    let x = a.x.ptr + t0 as u64 * (hidden as u64) * f32b;
                    if fused {
                        self.ops
                            .norm_gemv(
                                s,
                                x,
                                w.ffn_norm.ptr,
                                w.w_gate_up.ptr,
                                a.ffn.ptr,
                                n as u32,
                                hidden as u32,
                                c.ffn_size as u32,
                                eps,
                                true,
                            )
                            .map_err(cu)?;
                    } else {
                        self.ops
                            .rmsnorm(
                                s,
                                x,
                                0,
                                w.ffn_norm.ptr,
                                a.h.ptr,
                                n as u32,
                                hidden as u32,
                                eps,
                            )
                            .map_err(cu)?;
                        self.gemm
                            .linear(
                                a.h.ptr,
                                w.w_gate_up.ptr,
                                a.gu.ptr,
                                n,
                                hidden,
                                2 * c.ffn_size,
                                false,
                            )
                            .map_err(cu)?;
                        self.ops
                            .swiglu(s, a.gu.ptr, a.ffn.ptr, n as u32, c.ffn_size as u32)
                            .map_err(cu)?;
                    }
                    self.gemm
                        .linear(a.ffn.ptr, w.w_down.ptr, x, n, c.ffn_size, hidden, true)
                        .map_err(cu)?;
                }
            }
        }
        Ok(())
    }

    /// Final norm of the rows' last tokens (`last` indexes `a.x`), the output head into
    /// `logits` rows `row0..row0 + rows`.
    fn queue_head(
        &self,
        req: &CudaRequest,
        a: &Act,
        last: u64,
        row0: usize,
        rows: usize,
    ) -> Result<(), EngineError> {
        let c = &self.config;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        // SAFETY: `last` holds `rows` indices < a.cap; h_last and logits hold every row.
        unsafe {
            self.ops
                .rmsnorm(
                    &self.stream,
                    a.x.ptr,
                    last,
                    self.output_norm.ptr,
                    req.h_last.ptr,
                    rows as u32,
                    c.hidden_size as u32,
                    c.rms_norm_eps,
                )
                .map_err(cu)?;
            self.gemm
                .linear(
                    req.h_last.ptr,
                    head.ptr,
                    req.logits.ptr + (row0 * c.vocab_size * 4) as u64,
                    rows,
                    c.hidden_size,
                    c.vocab_size,
                    false,
                )
                .map_err(cu)
        }
    }

    fn queue_choice(&self, req: &CudaRequest, output: Output) -> Result<(), EngineError> {
        if let Output::Tokens {
            temperature,
            top_p,
            top_k,
        } = output
        {
            // SAFETY: logits [rows, vocab], uniforms and tokens_out [rows].
            unsafe {
                self.ops.choose(
                    &self.stream,
                    req.logits.ptr,
                    req.uniforms.ptr,
                    req.tokens_out.ptr,
                    req.rows as u32,
                    self.config.vocab_size as u32,
                    temperature,
                    top_p,
                    top_k,
                )
            }
            .map_err(cu)?;
        }
        Ok(())
    }

    fn read_output(&self, req: &CudaRequest, output: Output) -> Result<Vec<u32>, EngineError> {
        match output {
            Output::Logits => req
                .logits
                .read::<u32>(&self.stream, req.rows * self.config.vocab_size)
                .map_err(cu),
            Output::Tokens { .. } => req
                .tokens_out
                .read::<u32>(&self.stream, req.rows)
                .map_err(cu),
        }
    }

    fn forward_prefill(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        output: Output,
    ) -> Result<Vec<u32>, EngineError> {
        self.forward_prefill_with(req, prompts, output, None)
    }

    /// The prefill; `after` is called after each pass's layers and output head (while the
    /// pass's residual stream `x` holds its tokens' final hidden states) with the pass's
    /// rows and each row's first token index in the pass (`rows + 1` entries).
    fn forward_prefill_with(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        output: Output,
        mut after: Option<&mut PassHook>,
    ) -> Result<Vec<u32>, EngineError> {
        let cap = req.state::<CudaRequest>(BACKEND)?.prefill.cap;
        check_pass_tokens(prompts, cap, req.n_tokens())?;
        req.begin_prefill(prompts, self.config.vocab_size)?;
        let uniforms = matches!(output, Output::Tokens { .. }).then(|| req.draw_uniforms());
        let st = req.state_mut::<CudaRequest>(BACKEND)?;
        let computed = match self.prefill_sample_rows {
            Some(k) if k < prompts.len() => {
                if prompts.iter().any(|p| p.len() != prompts[0].len()) {
                    return Err(EngineError::Input(
                        "prefill_sample_rows needs prompts of one length (rows are copied)".into(),
                    ));
                }
                k.max(1)
            }
            _ => prompts.len(),
        };
        // Groups of consecutive rows up to the pass capacity.
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        let mut tokens = 0;
        for (b, p) in prompts[..computed].iter().enumerate() {
            if b > start && tokens + p.len() > st.prefill.cap {
                groups.push(start..b);
                start = b;
                tokens = 0;
            }
            tokens += p.len();
        }
        groups.push(start..computed);
        let n_tokens = st.n_tokens;
        let c = &self.config;
        let s = &self.stream;
        for g in groups {
            let mut toks = Vec::new();
            let mut info: Vec<[u32; 4]> = Vec::new();
            let mut row_start = vec![0u32];
            let mut last = Vec::new();
            for b in g.clone() {
                let p = &prompts[b];
                let n = p.len() as u32;
                toks.extend_from_slice(p);
                info.extend((0..n).map(|i| [i, b as u32, n - 1, 0]));
                row_start.push(toks.len() as u32);
                last.push(toks.len() as u32 - 1);
            }
            let t = toks.len();
            st.prefill.tokens.write(s, &toks).map_err(cu)?;
            st.prefill
                .tok_info
                .write(s, info.as_flattened())
                .map_err(cu)?;
            st.row_start.write(s, &row_start).map_err(cu)?;
            st.last.write(s, &last).map_err(cu)?;
            let rows = g.len() as u32;
            let max_len = row_start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            let r: &CudaRequest = st;
            let a = &r.prefill;
            let attend = |l: usize| -> Result<(), EngineError> {
                let (pre, _) = self.attention.layer_kernels(l).map_err(cu)?;
                let size = LaunchSize {
                    rows,
                    q_heads: c.q_heads as u32,
                    kv_heads: c.kv_heads as u32,
                    max_row_len: max_len,
                    ..LaunchSize::default()
                };
                // The `v` variant: V in f16 by the layer's pre-pass, queued after the
                // pass's cache writes (V is complete) and before its prefill; where the
                // cache write did the `u` form's first half (fused_v_write), only `_vfix`.
                let fused = self.fused_v_write(r, a, l)?.is_some();
                let (v16, vmax) = match (self.attention.prefill_prepass(l).map_err(cu)?, &r.v_f16) {
                    (Some(pp), Some((v16, vmax))) => {
                        // SAFETY: a.v holds the pass's t tokens of kv_heads × head_dim
                        // values, row_start rows + 1 words ending at t, v16 and vmax were
                        // sized for `cap` >= t tokens (start_request); fused, moa_v_write
                        // wrote the copy and the maxima of those t tokens.
                        unsafe {
                            if fused {
                                pp.queue_fix(
                                    s,
                                    a.v.ptr,
                                    r.row_start.ptr,
                                    rows,
                                    vmax.ptr,
                                    v16.ptr,
                                    t as u32,
                                    c.kv_heads as u32,
                                )
                            } else {
                                pp.queue(
                                    s,
                                    a.v.ptr,
                                    r.row_start.ptr,
                                    rows,
                                    vmax.ptr,
                                    v16.ptr,
                                    t as u32,
                                    c.kv_heads as u32,
                                )
                            }
                        }
                        .map_err(cu)?;
                        (v16.ptr, vmax.ptr)
                    }
                    // No pre-pass: the prefill takes V as stored.
                    _ => (0, 0),
                };
                let args = prefill_args(
                    [a.q.ptr, a.k.ptr, a.v.ptr, v16, vmax],
                    r.row_start.ptr,
                    a.attn.ptr,
                    n_tokens,
                    rows,
                    v16 != 0,
                );
                // SAFETY: q/k/v/out hold the group's t tokens; row_start rows + 1 entries;
                // the f16 copy of V and its maxima were written by the pre-pass above.
                unsafe { self.launch_attention(pre, &args, &size, (1, false)) }
            };
            self.queue_layers(r, a, t, &attend)?;
            self.queue_head(r, a, r.last.ptr, g.start, g.len())?;
            if let Some(f) = after.as_mut() {
                f(a, g.clone(), &row_start)?;
            }
        }
        if computed < st.rows {
            self.replicate_rows(st, computed)?;
        }
        if let Some(u) = &uniforms {
            st.uniforms.write(s, u).map_err(cu)?;
        }
        self.queue_choice(st, output)?;
        self.read_output(st, output)
    }

    /// Gives every row `b >= k` the caches and logits of row `b mod k` (see
    /// [`Self::prefill_sample_rows`]): rows are contiguous in every cache and in the
    /// logits, so rows `[0, m)` copy onto `[m, 2m)`, doubling m: O(log rows) copies.
    fn replicate_rows(&self, st: &CudaRequest, k: usize) -> Result<(), EngineError> {
        let c = &self.config;
        let row_elems = c.head_dim * self.storage.bytes();
        let mut bufs: Vec<(u64, usize)> = Vec::new();
        for (l, layout) in st.layouts.iter().enumerate() {
            let row = layout.row_slots as usize * row_elems;
            bufs.push((st.k_cache[l].ptr, row));
            bufs.push((st.v_cache[l].ptr, row));
        }
        bufs.push((st.logits.ptr, c.vocab_size * 4));
        let cs = self.stream.cu_stream();
        let mut m = k;
        while m < st.rows {
            let n = m.min(st.rows - m);
            for &(ptr, row) in &bufs {
                // SAFETY: rows [0, n) and [m, m + n) lie inside the buffer of `rows` rows
                // and do not overlap (n <= m).
                unsafe {
                    cudarc::driver::result::memcpy_dtod_async(
                        ptr + (m * row) as u64,
                        ptr,
                        n * row,
                        cs,
                    )
                }
                .map_err(|e| cu(super::driver("copying prefilled rows")(e)))?;
            }
            m += n;
        }
        Ok(())
    }

    /// Writes this step's work lists (only those that changed since the last step) for
    /// rows at `positions`.
    fn update_work(&self, st: &mut CudaRequest, positions: &[u32]) -> Result<(), EngineError> {
        let rows = st.rows as u32;
        for w in &mut st.works {
            if w.full {
                continue;
            }
            // Segments of a row in this list (KV heads × the decode's sub-groups).
            let kv = w.layout.segments.len() as u32;
            let list = DecodeWork::build_split(&w.layout, positions, w.split, w.key_tile);
            let mut flat = list.flat();
            // Padding (equal chunks only; a cluster list is always full): empty items of
            // the spare row's first segment (one chunk each, so they write its zero output
            // themselves and touch no counter).
            if w.split.cluster <= 1 {
                for i in list.n_items()..w.capacity {
                    flat.extend([rows * kv, 0, 0, i, 0, 0, w.layout.row_slots, 1]);
                }
            }
            if flat.len() != w.capacity as usize * 8 {
                return Err(EngineError::Input(format!(
                    "decode work list of {} items exceeds the request's {} (positions beyond N?)",
                    flat.len() / 8,
                    w.capacity
                )));
            }
            if flat != w.uploaded {
                w.buf.write(&self.stream, &flat).map_err(cu)?;
                w.uploaded = flat;
            }
            let max_span = w.layout.segments.iter().map(|s| s.span).max().unwrap_or(0);
            w.full = positions.iter().all(|&t| t.saturating_add(1) >= max_span);
        }
        Ok(())
    }

    /// Queues one decode step (everything the graph holds).
    fn queue_decode(&self, req: &CudaRequest, output: Output) -> Result<(), EngineError> {
        let c = &self.config;
        let rows = req.rows;
        let a = &req.decode;
        let attend = |l: usize| -> Result<(), EngineError> {
            let (_, dec) = self.attention.layer_kernels(l).map_err(cu)?;
            let w = &req.works[req.work_of[l]];
            let size = LaunchSize {
                rows: rows as u32,
                q_heads: c.q_heads as u32,
                kv_heads: c.kv_heads as u32,
                n_items: w.capacity,
                ..LaunchSize::default()
            };
            let args = [
                (Arg::Q, KArg::Ptr(a.q.ptr)),
                (Arg::KCache, KArg::Ptr(req.k_cache[l].ptr)),
                (Arg::VCache, KArg::Ptr(req.v_cache[l].ptr)),
                (Arg::RowPos, KArg::Ptr(req.row_pos.ptr)),
                (Arg::Work, KArg::Ptr(w.buf.ptr)),
                (Arg::Partials, KArg::Ptr(req.partials.ptr)),
                (Arg::SegDone, KArg::Ptr(req.seg_done.ptr)),
                (Arg::Out, KArg::Ptr(a.attn.ptr)),
                (Arg::NTokens, KArg::U32(req.n_tokens)),
                (Arg::NItems, KArg::U32(w.capacity)),
            ];
            // SAFETY: q and out hold rows + 1 rows (the spare row of the padding items),
            // row_pos rows + 1 entries, seg_done (rows + 1) × the lists' most segments a row
            // (KV heads × sub-groups) counters, the work
            // list and partials `capacity` items; the kernel just before is moa_rope_kv,
            // which writes neither the work list nor row_pos (host copies).
            unsafe { self.launch_attention(dec, &args, &size, (w.split.cluster, self.decode_pdl)) }
        };
        self.queue_layers(req, a, rows, &attend)?;
        // Decode rows are their own last tokens: no gather.
        self.queue_head(req, a, 0, 0, rows)?;
        self.queue_choice(req, output)
    }

    fn forward_decode(
        &self,
        req: &mut Request,
        tokens: &[u32],
        output: Output,
    ) -> Result<Vec<u32>, EngineError> {
        req.check_decode(tokens, self.config.vocab_size)?;
        if req.row_len().contains(&0) {
            return Err(EngineError::Input(
                "decode before prefill: run prefill_tokens or prefill_logits first".into(),
            ));
        }
        let positions = req.row_len().to_vec();
        let uniforms = matches!(output, Output::Tokens { .. }).then(|| req.draw_uniforms());
        let st = req.state_mut::<CudaRequest>(BACKEND)?;
        let s = self.stream.clone();
        let info: Vec<[u32; 4]> = positions
            .iter()
            .enumerate()
            .map(|(b, &p)| [p, b as u32, p, 0])
            .collect();
        let mut pos = positions.clone();
        pos.push(0);
        st.decode.tokens.write(&s, tokens).map_err(cu)?;
        st.decode
            .tok_info
            .write(&s, info.as_flattened())
            .map_err(cu)?;
        st.row_pos.write(&s, &pos).map_err(cu)?;
        if let Some(u) = &uniforms {
            st.uniforms.write(&s, u).map_err(cu)?;
        }
        self.update_work(st, &positions)?;
        if self.use_graph {
            let stale = !matches!(&st.graph, Some((o, _)) if *o == output);
            if stale {
                st.graph = None;
                s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                    .map_err(|e| cu(super::driver("starting a CUDA-graph capture")(e)))?;
                let queued = self.queue_decode(st, output);
                let graph = s.end_capture(CUgraphInstantiate_flags(0));
                queued?;
                let graph = graph
                    .map_err(|e| cu(super::driver("capturing the decode step")(e)))?
                    .ok_or_else(|| EngineError::Input("the decode capture was empty".into()))?;
                st.graph = Some((output, graph));
            }
            if let Some((_, g)) = &st.graph {
                g.launch()
                    .map_err(|e| cu(super::driver("replaying the decode step")(e)))?;
            }
        } else {
            self.queue_decode(st, output)?;
        }
        let out = self.read_output(st, output)?;
        req.advance();
        Ok(out)
    }

    /// Teacher-forced logits of every position of a prefill, without decode steps: for
    /// each row b, the logits at positions `from[b]..prompts[b].len()` (position t
    /// predicts token t + 1), handed to `each(pairs, logits)` in groups of up to
    /// [`SCORED_GROUP`] (row, position) pairs, rows in order, `[pairs, vocab]` f32 (each
    /// group goes through the final norm and the output head on the GPU, then is read
    /// back). The attention is the prefill kernel's, whose masks at N are the decode
    /// kernel's (token-exact in both, docs/DESIGN.md §3), so scoring a window's last k
    /// tokens this way equals feeding them as k decode steps up to the kernels' rounding
    /// (`moa eval`'s perplexity; `tests/cuda_engine.rs` compares the two) at the cost of
    /// one pass. `req` is left prefilled, as by `prefill_logits`.
    ///
    /// Errors: `from[b]` beyond row b's prompt, `from` not one entry per row, or
    /// `prefill_sample_rows` set (copied rows have no hidden states of their own).
    pub fn prefill_positions_logits(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        from: &[usize],
        each: &mut PositionLogits,
    ) -> Result<(), EngineError> {
        if from.len() != prompts.len() {
            return Err(EngineError::Input(format!(
                "prefill_positions_logits: {} start positions for {} rows",
                from.len(),
                prompts.len()
            )));
        }
        if let Some((b, _)) = prompts
            .iter()
            .zip(from)
            .enumerate()
            .find(|(_, (p, &f))| f >= p.len())
        {
            return Err(EngineError::Input(format!(
                "prefill_positions_logits: row {b} starts scoring at position {}, allowed 0..{}",
                from[b],
                prompts[b].len()
            )));
        }
        if self.prefill_sample_rows.is_some_and(|k| k < prompts.len()) {
            return Err(EngineError::Input(
                "prefill_positions_logits needs every row prefilled (prefill_sample_rows is set)"
                    .into(),
            ));
        }
        let c = &self.config;
        let (hidden, vocab) = (c.hidden_size, c.vocab_size);
        let e = self.storage.bytes();
        let mut idx = self.alloc(SCORED_GROUP * 4, "scored positions")?;
        let h = self.alloc(SCORED_GROUP * hidden * e, "scored h")?;
        let logits = self.alloc(SCORED_GROUP * vocab * 4, "scored logits")?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let s = self.stream.clone();
        let mut hook = |a: &Act, rows: std::ops::Range<usize>, row_start: &[u32]| {
            // (row, position, token index in the pass) of every scored position.
            let wanted: Vec<(usize, usize, u32)> = rows
                .clone()
                .flat_map(|b| {
                    let base = row_start[b - rows.start];
                    (from[b]..prompts[b].len()).map(move |t| (b, t, base + t as u32))
                })
                .collect();
            for part in wanted.chunks(SCORED_GROUP) {
                let ix: Vec<u32> = part.iter().map(|w| w.2).collect();
                idx.write(&s, &ix).map_err(cu)?;
                let n = part.len();
                // SAFETY: idx holds n < a.cap token indices of this pass; h and logits
                // hold SCORED_GROUP >= n rows.
                unsafe {
                    self.ops
                        .rmsnorm(
                            &s,
                            a.x.ptr,
                            idx.ptr,
                            self.output_norm.ptr,
                            h.ptr,
                            n as u32,
                            hidden as u32,
                            c.rms_norm_eps,
                        )
                        .map_err(cu)?;
                    self.gemm
                        .linear(h.ptr, head.ptr, logits.ptr, n, hidden, vocab, false)
                        .map_err(cu)?;
                }
                let raw: Vec<f32> = logits.read::<f32>(&s, n * vocab).map_err(cu)?;
                let pairs: Vec<(usize, usize)> = part.iter().map(|w| (w.0, w.1)).collect();
                each(&pairs, &raw)?;
            }
            Ok(())
        };
        self.forward_prefill_with(req, prompts, Output::Logits, Some(&mut hook))?;
        Ok(())
    }

    /// Bytes of K and V a decode step reads with rows at `positions`: every written slot
    /// of every segment (the work list's items), K and V.
    pub fn kv_read_bytes(&self, layouts: &[CacheLayout], positions: &[u32]) -> u64 {
        let per_slot = 2 * self.config.head_dim as u64 * self.storage.bytes() as u64;
        layouts
            .iter()
            .map(|l| {
                positions
                    .iter()
                    .map(|&t| {
                        l.segments
                            .iter()
                            .map(|s| u64::from(written_slots(s.span, t)))
                            .sum::<u64>()
                    })
                    .sum::<u64>()
            })
            .sum::<u64>()
            * per_slot
    }
}

impl Engine for CudaLlama {
    fn describe(&self) -> String {
        self.device.clone()
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

    /// Caches and activations are checked against the GPU's free memory first: a batch
    /// that does not fit is [`EngineError::Input`] naming the largest that does, with
    /// nothing allocated.
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
        let raw = self.forward_prefill(req, prompts, Output::Logits)?;
        Ok(split_logits(&raw, self.config.vocab_size))
    }

    fn prefill_tokens(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        self.forward_prefill(req, prompts, Output::of(sampling))
    }

    fn decode_logits(
        &self,
        req: &mut Request,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let raw = self.forward_decode(req, tokens, Output::Logits)?;
        Ok(split_logits(&raw, self.config.vocab_size))
    }

    fn decode_tokens(
        &self,
        req: &mut Request,
        tokens: &[u32],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError> {
        sampling.validate()?;
        self.forward_decode(req, tokens, Output::of(sampling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::{cuda as cg, Phase};
    use crate::plan::ModelShape;

    /// The engine gives every default prefill kernel each argument its ABI takes, the
    /// `v` variant's f16 copy of V and maxima included (bf16 at head_dim 128: the default
    /// is `2x64x1owghvu`, whose module carries the pre-pass kernels the engine queues), and
    /// nothing the others do not take: checked on the generated ABI, no GPU needed.
    #[test]
    fn prefill_arguments_cover_every_default_kernel() {
        for (storage, head_dim, kv_heads, v_f16) in [
            (StorageType::Bf16, 128, 8, true),
            (StorageType::Bf16, 128, 32, true),
            (StorageType::F16, 128, 8, false),
            (StorageType::Bf16, 64, 2, true),
            (StorageType::Bf16, 96, 2, false),
            (StorageType::F32, 128, 8, false),
        ] {
            let shape = ModelShape {
                name: None,
                layers: 1,
                q_heads: 32,
                kv_heads,
                head_dim,
                max_context_tokens: 4096,
            };
            let module = lower(&Plan::dense(shape).unwrap(), storage);
            let arts = cg::generate(&module).unwrap();
            let prefill = arts[0]
                .kernels
                .iter()
                .find(|k| k.phase == Phase::Prefill)
                .unwrap();
            let takes = prefill.abi.params.iter().any(|p| p.arg == Arg::VF16);
            let what = format!("{} hd {head_dim}", storage.name());
            assert_eq!(takes, v_f16, "{what}");
            // The pre-pass kernels come with the module exactly where the ABI takes VF16
            // (CudaAttention loads them by these names).
            for suffix in ["_vcvt(", "_vfix("] {
                let name = format!("{}{suffix}", prefill.entry_point);
                assert_eq!(arts[0].source.contains(&name), v_f16, "{what}: {name}");
            }
            let args = prefill_args([1, 2, 3, 4, 5], 6, 7, 8, 9, takes);
            for p in &prefill.abi.params {
                assert!(
                    args.iter().any(|(a, _)| *a == p.arg),
                    "{what}: {:?} not provided",
                    p.arg
                );
            }
            // Only V or its f16 copy is read: the ABI takes one of them.
            let reads_v = prefill.abi.params.iter().any(|p| p.arg == Arg::V);
            assert_eq!(reads_v, !v_f16, "{what}");
        }
        assert_eq!(
            super::super::v_prepass_bytes(4096, 8, 128),
            (4096 * 8 * 128 * 2, 32)
        );
    }
}
