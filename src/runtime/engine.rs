//! The backend-neutral model API: what `moa generate`, `moa eval`, the GPU scorer and the
//! benchmarks drive, implemented by each back end (wgpu: [`super::wgpu_engine::WgpuEngine`]; CUDA
//! beside it), the way candle's CPU/CUDA/Metal back ends share one storage trait.
//!
//! One engine holds one model's weights and one plan's compiled attention kernels. Work
//! comes as requests: [`Engine::start`] fixes N (longest prompt + new tokens, docs/DESIGN.md
//! §1) and allocates every layer's sink + ring cache once from the plan's spans at N; one
//! prefill of all rows follows, then decode steps of one token per row, each row at its own
//! position.
//!
//! **Why a trait object.** [`Engine`] is object-safe (every method takes `&self`, no
//! generic methods, the request's back-end state is type-erased inside [`Request`]), so a
//! back end is picked at run time as a `Box<dyn Engine>` (`moa generate --backend cuda`)
//! and every caller is compiled once, not once per back end. The price is one dynamic call
//! per pass (a pass is one or more device round trips, microseconds at least) and a
//! request started by one engine being refused by another at run time
//! ([`EngineError::WrongRequest`]) instead of at compile time. A generic trait with an
//! associated request type would give that check statically but would make each caller
//! (generate, eval, the scorer, the benches) generic and the back-end choice a `match`
//! around every one of them.
//!
//! Methods take `&self`: everything a pass changes (caches, positions, recorded decode
//! steps, the sampling RNG) lives in the [`Request`], so one engine serves any number of
//! requests, one after another or side by side.

#![warn(missing_docs)]

use std::any::Any;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cuda::CudaError;
use super::memory;
use super::wgpu::WgpuError;
use crate::codegen::CodegenError;
use crate::lower::{KernelModule, StorageType};
use crate::model::{LlamaConfig, ModelError};
use crate::plan::{Plan, PlanError};

/// Why a model engine could not be built or could not run a pass.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The wgpu back end: no adapter, a missing feature or limit, a kernel that fails to
    /// build or run.
    #[error(transparent)]
    Wgpu(#[from] WgpuError),
    /// The CUDA back end: no driver or device, NVRTC, cuBLAS or a launch.
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// The model: a load, a tokenizer, a plan of another shape
    /// ([`ModelError::PlanMismatch`]), a token id past the vocabulary.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The kernels: compiling them, or embedded / written kernels that are not the plan's.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// The plan: a file that does not read, parse or validate.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Bad input to a pass (wrong row count, token id out of the vocabulary, a row at N…);
    /// the message names the value and the allowed range.
    #[error("{0}")]
    Input(String),
    /// A request's N (its longest prompt plus `max_new`) past the model's (or the plan's)
    /// context: shorten the prompt or ask fewer new tokens.
    #[error("the prompt ({prompt} tokens) plus {max_new} new tokens exceeds the context of {context} tokens (the model's context length, or the plan's model.max_context_tokens where that is shorter)")]
    TooLong {
        /// The longest prompt, in tokens.
        prompt: usize,
        /// New tokens asked for.
        max_new: usize,
        /// The context the request must fit, in tokens: the model's, or the plan's
        /// `model.max_context_tokens` where that is shorter (a plan made for shorter
        /// requests: its spans were checked up to it).
        context: usize,
    },
    /// A buffer past the device's limit (a storage binding, or its memory). The limit is the
    /// adapter's, or the lower one an engine was asked to plan for
    /// (`WgpuEngine::new_with_binding_limit`; round 42: a caller's limit was called the
    /// adapter's). Named as a buffer, not a tensor: most are activations or a cache row
    /// (round 45: "tensor `prefill activations of row 0 …`").
    #[error("buffer `{name}` needs {bytes} bytes, above the storage binding limit of {limit} bytes the engine plans for (the adapter's, or a lower one it was given)")]
    TooLarge {
        /// The buffer, e.g. `prefill activations of row 3 (70000 tokens; ...)`.
        name: String,
        /// Bytes it needs.
        bytes: u64,
        /// The limit it exceeds (the adapter's largest storage binding), bytes.
        limit: u64,
    },
    /// The device reported an error while running `what` (validation, out of memory, a
    /// lost device).
    #[error("GPU error while running {what}: {message}")]
    Gpu {
        /// The pass or operation, e.g. `the copy benchmark`.
        what: String,
        /// The device's or driver's error text.
        message: String,
    },
    /// A request handed to an engine other than the one that started it.
    #[error("this request was started by another engine ({started_by}); start it on `{engine}`")]
    WrongRequest {
        /// The back end that started the request (`wgpu` or `cuda`).
        started_by: &'static str,
        /// The back end it was handed to.
        engine: &'static str,
    },
}

/// How far a prefill is ([`Engine::prefill_tokens_with_progress`]): reported after each
/// layer has finished on the device. Every layer processes every prompt token, so the
/// fraction done is `layers_done / layers`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrefillProgress {
    /// Layers finished on the device.
    pub layers_done: usize,
    /// Layers of the model.
    pub layers: usize,
    /// Prompt tokens of the pass, all rows together.
    pub tokens: usize,
    /// Wall time since the first layer was submitted.
    pub elapsed: Duration,
}

impl PrefillProgress {
    /// Fraction of the prefill done, in [0, 1].
    pub fn fraction(&self) -> f64 {
        self.layers_done as f64 / self.layers.max(1) as f64
    }

    /// Prompt tokens per second so far (tokens × fraction done / elapsed seconds).
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 * self.fraction() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Time left at the rate so far; `None` before the first layer is done.
    pub fn eta(&self) -> Option<Duration> {
        if self.layers_done == 0 {
            return None;
        }
        let left = (self.layers - self.layers_done.min(self.layers)) as f64;
        Some(self.elapsed.mul_f64(left / self.layers_done as f64))
    }

    /// One status line: `prefill 2048 tokens: 12/30 layers (40%), 812 tok/s, ETA 4 s`
    /// (`ETA 3 min 5 s` from two minutes on).
    pub fn line(&self) -> String {
        let eta = match self.eta().map(|t| t.as_secs_f64().ceil() as u64) {
            Some(s) if s >= 120 => format!("ETA {} min {} s", s / 60, s % 60),
            Some(s) => format!("ETA {s} s"),
            None => "ETA ?".into(),
        };
        format!(
            "prefill {} tokens: {}/{} layers ({:.0}%), {:.0} tok/s, {eta}",
            self.tokens,
            self.layers_done,
            self.layers,
            100.0 * self.fraction(),
            self.tokens_per_s()
        )
    }
}

/// How the next token is chosen from the logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus: the most likely tokens up to this share of the probability mass, (0, 1].
    pub top_p: f32,
    /// Top-k: only the `top_k` most likely tokens (by logit; tokens tied with the k-th are
    /// kept too) are drawn from, before `top_p` cuts their mass. 0 keeps every token;
    /// 1 is greedy ([`Sampling::is_greedy`]).
    pub top_k: u32,
    /// Seed of the rows' sampling streams. The streams live in the [`Request`], seeded at
    /// [`Engine::start`] (which callers give this value, [`row_seed`]); passes do not read
    /// it.
    pub seed: u64,
}

impl Sampling {
    /// Checks the ranges: `temperature` 0 (greedy) or finite and ≥ `f32::MIN_POSITIVE`,
    /// `top_p` in (0, 1]. NaN or a negative temperature would otherwise fall back to greedy
    /// silently, a temperature below f32's smallest normal number makes the sampling
    /// kernels' 1/T infinite (tokens other than greedy's from NaN probabilities), and a
    /// `top_p` outside (0, 1] would be clamped.
    ///
    /// # Errors
    /// [`EngineError::Input`] naming the field, its value and the allowed range.
    pub fn validate(&self) -> Result<(), EngineError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(EngineError::Input(format!(
                "`temperature` = {} is out of range: allowed a finite number >= 0 (0 = greedy)",
                self.temperature
            )));
        }
        if self.temperature > 0.0 && self.temperature < f32::MIN_POSITIVE {
            return Err(EngineError::Input(format!(
                "`temperature` = {:e} is out of range: allowed 0 (greedy) or a finite number >= {:e} (below it 1/T overflows in the sampling kernels)",
                self.temperature,
                f32::MIN_POSITIVE
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::Input(format!(
                "`top_p` = {} is out of range: allowed (0, 1]",
                self.top_p
            )));
        }
        Ok(())
    }

    /// Greedy decoding: temperature 0, top-p 1, top-k 0 (every token), seed 0.
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }

    /// Greedy (argmax) rather than sampled: temperature 0, or top-k 1 (one candidate
    /// left; the argmax kernel also breaks ties as greedy does, by the lowest id).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

/// The seed of row `row`'s sampling stream in a request seeded with `seed`: row 0 uses
/// `seed` itself (so a prompt run alone draws what earlier versions drew for it), row
/// r > 0 `seed` mixed with r by SplitMix64's finaliser (Steele, Lea & Flood, "Fast
/// splittable pseudorandom number generators", OOPSLA 2014), so neighbouring seeds do not
/// share rows' streams (`seed + r` would give seed 4's row 0 the draws of seed 3's row 1).
///
/// Why per row: with one stream over the rows, a prompt sampled differently beside
/// another prompt than alone (round 22 of the new-user tests). With a stream a row, row
/// r's draws depend only on `seed` and r; its tokens still depend on the batch through N
/// (the longest prompt + max new tokens sets every elastic span, docs/DESIGN.md §2) and
/// on the products' rounding.
pub fn row_seed(seed: u64, row: usize) -> u64 {
    if row == 0 {
        return seed;
    }
    let mut z = seed ^ (row as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One batch of rows being generated: N, each row's position, the caches' size, and the
/// back end's own state (caches, activations, recorded decode steps) behind a type-erased
/// box. Made by [`Engine::start`]; every pass of the request goes to the same engine.
pub struct Request {
    rows: usize,
    n_tokens: u32,
    row_len: Vec<u32>,
    kv_bytes: u64,
    /// One sampling stream a row ([`row_seed`]): a row's draws do not depend on the
    /// other rows of its batch.
    rngs: Vec<StdRng>,
    started_by: &'static str,
    state: Box<dyn Any>,
}

impl Request {
    /// For back ends: a request of `rows` rows at N = `n_tokens` whose K and V caches take
    /// `kv_bytes` bytes together; `seed` seeds the rows' sampling streams ([`row_seed`]);
    /// `state` is the back end's
    /// per-request data, found again with [`Self::state`] / [`Self::state_mut`].
    /// `backend` names the engine type (for [`EngineError::WrongRequest`]).
    pub fn new<T: Any>(
        backend: &'static str,
        rows: usize,
        n_tokens: u32,
        kv_bytes: u64,
        seed: u64,
        state: T,
    ) -> Request {
        Request {
            rows,
            n_tokens,
            row_len: vec![0; rows],
            kv_bytes,
            rngs: (0..rows)
                .map(|r| StdRng::seed_from_u64(row_seed(seed, r)))
                .collect(),
            started_by: backend,
            state: Box::new(state),
        }
    }

    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// N: spans are evaluated at this length for the whole request.
    pub fn n_tokens(&self) -> u32 {
        self.n_tokens
    }

    /// Tokens each row has seen so far (its next position), `[rows]`.
    pub fn row_len(&self) -> &[u32] {
        &self.row_len
    }

    /// Bytes of all K and V caches of this request (all layers, all rows).
    pub fn kv_bytes(&self) -> u64 {
        self.kv_bytes
    }

    /// The back end's state, if this request was started by back end `backend` with a
    /// state of type `T`.
    pub fn state<T: Any>(&self, backend: &'static str) -> Result<&T, EngineError> {
        let started_by = self.started_by;
        self.state.downcast_ref().ok_or(EngineError::WrongRequest {
            started_by,
            engine: backend,
        })
    }

    /// [`Self::state`], mutable.
    pub fn state_mut<T: Any>(&mut self, backend: &'static str) -> Result<&mut T, EngineError> {
        let started_by = self.started_by;
        self.state.downcast_mut().ok_or(EngineError::WrongRequest {
            started_by,
            engine: backend,
        })
    }

    /// One uniform number in [0, 1) per row for this pass's sampling, `[rows]`, each from
    /// its row's own seeded stream ([`row_seed`]): every back end draws the same numbers,
    /// so a seed picks the same tokens wherever the logits agree, and row r's k-th draw is
    /// the same whatever the other rows of the batch are.
    pub fn draw_uniforms(&mut self) -> Vec<f32> {
        self.rngs.iter_mut().map(|g| g.random::<f32>()).collect()
    }

    /// Checks a prefill's prompts against the request (one per row, each `1..=N` tokens,
    /// every id below `vocab`) and sets each row's position to its prompt length.
    pub fn begin_prefill(&mut self, prompts: &[Vec<u32>], vocab: usize) -> Result<(), EngineError> {
        if prompts.len() != self.rows {
            return Err(EngineError::Input(format!(
                "{} prompts for a request of {} rows",
                prompts.len(),
                self.rows
            )));
        }
        let mut lens = Vec::with_capacity(self.rows);
        for (b, p) in prompts.iter().enumerate() {
            check_ids(p, vocab, &format!("prompt {b}"))?;
            let n = u32::try_from(p.len())
                .ok()
                .filter(|&n| n >= 1 && n <= self.n_tokens)
                .ok_or_else(|| {
                    EngineError::Input(format!(
                        "prompt {b} has {} tokens: allowed 1..={} (N of this request)",
                        p.len(),
                        self.n_tokens
                    ))
                })?;
            lens.push(n);
        }
        self.row_len = lens;
        Ok(())
    }

    /// Checks a decode step's input: one token per row, ids below `vocab`, and no row
    /// already at N (the request's caches were sized for N tokens).
    pub fn check_decode(&self, tokens: &[u32], vocab: usize) -> Result<(), EngineError> {
        if tokens.len() != self.rows {
            return Err(EngineError::Input(format!(
                "{} tokens for a request of {} rows",
                tokens.len(),
                self.rows
            )));
        }
        check_ids(tokens, vocab, "decode input")?;
        if let Some(b) = self.row_len.iter().position(|&p| p >= self.n_tokens) {
            return Err(EngineError::Input(format!(
                "row {b} is at position {}: the request was started for N = {} tokens (longest prompt + max_new); start a longer request",
                self.row_len[b], self.n_tokens
            )));
        }
        Ok(())
    }

    /// After a decode step: every row moved one position on.
    pub fn advance(&mut self) {
        for len in &mut self.row_len {
            *len += 1;
        }
    }
}

/// N of a request (longest prompt + `max_new`), checked: at least one row, no empty
/// prompt, N within the model's context, the plan's `model.max_context_tokens` and `u32`.
/// Back ends call it first in [`Engine::start`], so every back end refuses the same
/// requests with the same errors (round 43: N past the plan's context, which `moa
/// generate` refuses, was started).
pub fn request_n(
    prompt_lens: &[usize],
    max_new: usize,
    config: &LlamaConfig,
    plan: &Plan,
) -> Result<u32, EngineError> {
    let longest = prompt_lens.iter().copied().max().unwrap_or(0);
    // An empty list was said to hold an empty prompt (round 23).
    if prompt_lens.is_empty() {
        return Err(EngineError::Input(
            "a request needs at least one row: `prompt_lens` is empty (allowed: one length of \
             1 or more tokens per row)"
                .into(),
        ));
    }
    if let Some(b) = prompt_lens.iter().position(|&n| n == 0) {
        return Err(EngineError::Input(format!(
            "`prompt_lens[{b}]` is 0: every prompt needs at least one token (allowed 1 or more)"
        )));
    }
    // Checked: `max_new` comes from the command line (usize::MAX must not wrap).
    let context = config
        .context_length
        .min(plan.model().max_context_tokens as usize);
    longest
        .checked_add(max_new)
        .filter(|&n| n <= context)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(EngineError::TooLong {
            prompt: longest,
            max_new,
            context,
        })
}

/// Checks a prefill's prompts against the tokens one pass of the request holds
/// (`capacity`: its prefill buffers, sized by [`Engine::start`] from its `prompt_lens`) and
/// the request's N (`n_tokens`): a longer prompt is an error naming it and the allowed
/// range, the smaller of the two. Back ends call it before [`Request::begin_prefill`], so
/// the range said is the one that holds (round 43: an 11-token prompt in a request of
/// `prompt_lens` `[3]` and N = 8 was told "allowed 1..=8", and 8 tokens then "allowed
/// 1..=3").
pub fn check_pass_tokens(
    prompts: &[Vec<u32>],
    capacity: usize,
    n_tokens: u32,
) -> Result<(), EngineError> {
    let n = n_tokens as usize;
    let allowed = capacity.min(n);
    match prompts.iter().enumerate().find(|(_, p)| p.len() > allowed) {
        None => Ok(()),
        Some((b, p)) if capacity < n => Err(EngineError::Input(format!(
            "prompt {b} has {} tokens, more than the {capacity} this request's prefill \
             buffers hold (sized by `Engine::start` from its `prompt_lens`): allowed \
             1..={capacity}; start the request with each row's prompt length",
            p.len()
        ))),
        Some((b, p)) => Err(EngineError::Input(format!(
            "prompt {b} has {} tokens: allowed 1..={n} (N of this request)",
            p.len()
        ))),
    }
}

/// Every id must index the embedding table: an id ≥ `vocab` (a tokenizer of another model)
/// is an error naming it, never a clamped or out-of-bounds lookup.
pub fn check_ids(ids: &[u32], vocab: usize, what: &str) -> Result<(), EngineError> {
    match ids.iter().position(|&id| id as usize >= vocab) {
        None => Ok(()),
        Some(i) => Err(EngineError::Input(format!(
            "{what}: token id {} at position {i} is out of range: the model's vocab_size is {vocab} (ids 0..={}); is the tokenizer from another model?",
            ids[i],
            vocab.saturating_sub(1)
        ))),
    }
}

/// A pass's logits as the device wrote them (f32 bits, `[rows × vocab]` words), one
/// `Vec<f32>` of `vocab` a row: what [`Engine::prefill_logits`] and
/// [`Engine::decode_logits`] return.
pub(crate) fn split_logits(raw: &[u32], vocab: usize) -> Vec<Vec<f32>> {
    raw.chunks(vocab)
        .map(|r| r.iter().map(|&b| f32::from_bits(b)).collect())
        .collect()
}

/// The model an engine is built from. `&Model` ([`ModelRef::Kept`]) leaves the host weights
/// with the caller; `&mut Model` ([`ModelRef::Taken`]) lets the engine move `model.weights`
/// out (leaving [`crate::model::Weights::default`]: no layers, empty tensors; `config`,
/// `special` and the rest stay) and free each host tensor once its device copy is made;
/// `(&Model, &mut WeightStream)` ([`ModelRef::Streamed`], from
/// [`WeightStream::open`](crate::model::WeightStream::open)) reads each tensor from the
/// model's file when the upload needs it, so the f32 weights are never all on the host.
/// The host weights are f32 (4 bytes a parameter) and the device copy f16 or f32; on a CPU
/// adapter device memory is host memory, so a load that keeps both holds 6 bytes a
/// parameter at its end (8.05 GB of peak resident memory for the Llama-3.2-1B shape's 1.24 B
/// parameters, measured on lavapipe, session 56), a taken one about 4 at most, the f32
/// weights' own size, which is what `Model::load` checks against the memory available, and
/// a streamed one the device copy and one tensor.
pub enum ModelRef<'a> {
    /// Borrowed: the weights stay, for the CPU reference, another engine or a profile.
    Kept(&'a crate::model::Model),
    /// Taken: an app that only generates (`moa generate`) gives the weights up. The engine
    /// takes them only after its checks of the plan, kernels and shape pass; an error
    /// during the upload itself (a tensor row over the binding limit, a device error)
    /// leaves the model without weights, so a caller that retries loads the model again.
    Taken(&'a mut crate::model::Model),
    /// Streamed: the model without its weights (`model.weights` is not read) and the
    /// stream its tensors are read from, one at a time, during the upload. A tensor that
    /// fails to read (a damaged file) is the upload's error; a caller that retries opens
    /// the stream again.
    Streamed(&'a crate::model::Model, &'a mut crate::model::WeightStream),
}

impl<'a> From<&'a crate::model::Model> for ModelRef<'a> {
    fn from(m: &'a crate::model::Model) -> Self {
        ModelRef::Kept(m)
    }
}

impl<'a> From<&'a mut crate::model::Model> for ModelRef<'a> {
    fn from(m: &'a mut crate::model::Model) -> Self {
        ModelRef::Taken(m)
    }
}

impl<'a> From<(&'a crate::model::Model, &'a mut crate::model::WeightStream)> for ModelRef<'a> {
    fn from((m, s): (&'a crate::model::Model, &'a mut crate::model::WeightStream)) -> Self {
        ModelRef::Streamed(m, s)
    }
}

impl<'a> ModelRef<'a> {
    /// The model's shape and hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        match self {
            ModelRef::Kept(m) => &m.config,
            ModelRef::Taken(m) => &m.config,
            ModelRef::Streamed(m, _) => &m.config,
        }
    }

    /// Whether the upload can keep any layer matrix in its file's quantization: a streamed
    /// GGUF file with such matrices ([`crate::model::WeightStream::quantized_layers`]);
    /// weights in memory are f32 and have none.
    pub fn quantized_layers(&self) -> bool {
        match self {
            ModelRef::Streamed(_, s) => s.quantized_layers(),
            _ => false,
        }
    }

    /// Where the upload takes each tensor from: borrowed when kept; moved out one by one
    /// when taken (`model.weights` left empty); read from the file when streamed.
    pub fn into_feed(self) -> crate::model::WeightFeed<'a> {
        use crate::model::WeightFeed;
        match self {
            ModelRef::Kept(m) => WeightFeed::Borrowed(&m.weights),
            ModelRef::Taken(m) => WeightFeed::Owned(std::mem::take(&mut m.weights)),
            ModelRef::Streamed(_, s) => WeightFeed::Stream(s),
        }
    }
}

/// A Llama-family model on a device with the compiled attention kernels of one plan.
///
/// Shapes: `rows` = prompts of a request; logits are `[rows][vocab_size]` f32 (the last
/// token's of each row); token ids are `u32` below `config().vocab_size`. Every pass
/// returns [`EngineError::Input`] for input that does not fit the request (row count,
/// prompt length outside `1..=N`, an id out of the vocabulary, a decode past N) and
/// [`EngineError::WrongRequest`] for a request of another engine; device failures come as
/// the back end's variant or [`EngineError::Gpu`].
pub trait Engine {
    /// The back end and device, for logs and reports (e.g. `wgpu llvmpipe (Vulkan)`).
    fn describe(&self) -> String;

    /// The model's shape and hyper-parameters.
    fn config(&self) -> &LlamaConfig;

    /// The plan whose kernels run the attention (a dense plan, every span N, when built
    /// without one).
    fn plan(&self) -> &Plan;

    /// Storage type of the weights, Q/K/V and the KV cache on the device.
    fn storage(&self) -> StorageType;

    /// Bytes of weights on the device.
    fn weight_bytes(&self) -> u64;

    /// The plan lowered for the engine's storage type: the layers' rules its kernels
    /// bake in and its caches are laid out from.
    fn module(&self) -> &KernelModule;

    /// KV-cache bytes (K and V, all layers) a request of `rows` rows at N = `n_tokens`
    /// would allocate with this plan: every layer's [`KernelModule::cache_layouts`] slots
    /// ([`memory::kv_bytes_per_row`]) × `rows`.
    fn kv_bytes(&self, rows: usize, n_tokens: u32) -> u64 {
        let layouts = self.module().cache_layouts(n_tokens);
        memory::kv_bytes_per_row(&layouts, self.config().head_dim, self.storage())
            .saturating_mul(rows as u64)
    }

    /// Starts a request of `prompt_lens.len()` rows: N = longest prompt + `max_new`, caches
    /// allocated from the plan at N, sampling RNG seeded with `seed`. Errors: no rows, an
    /// empty prompt, N over the model's context or the plan's `model.max_context_tokens`
    /// ([`EngineError::TooLong`]), or device
    /// memory ([`EngineError::TooLarge`], the back end's allocation error).
    fn start(
        &self,
        prompt_lens: &[usize],
        max_new: usize,
        seed: u64,
    ) -> Result<Request, EngineError>;

    /// Prefill of every row (`prompts[b]` has `prompt_lens[b]` tokens or fewer, at least
    /// one); returns the logits of each row's last token, `[rows][vocab_size]`.
    fn prefill_logits(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>, EngineError>;

    /// Prefill of every row; returns each row's first generated token, `[rows]`, chosen by
    /// `sampling` (checked with [`Sampling::validate`]).
    fn prefill_tokens(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError>;

    /// [`Self::prefill_tokens`] with `progress` called as layers finish on the device (the
    /// same tokens come out; a back end may pay a device round trip per layer for it, so
    /// use it for long prompts). The default reports once, when the pass is done.
    fn prefill_tokens_with_progress(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        sampling: Sampling,
        progress: &mut dyn FnMut(&PrefillProgress),
    ) -> Result<Vec<u32>, EngineError> {
        let t0 = std::time::Instant::now();
        let out = self.prefill_tokens(req, prompts, sampling)?;
        let layers = self.config().n_layers;
        progress(&PrefillProgress {
            layers_done: layers,
            layers,
            tokens: prompts.iter().map(Vec::len).sum(),
            elapsed: t0.elapsed(),
        });
        Ok(out)
    }

    /// One decode step: `tokens[b]` is row b's newest token, at position `row_len()[b]`;
    /// returns the logits of the step, `[rows][vocab_size]`.
    fn decode_logits(
        &self,
        req: &mut Request,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, EngineError>;

    /// One decode step returning each row's next token, `[rows]`.
    fn decode_tokens(
        &self,
        req: &mut Request,
        tokens: &[u32],
        sampling: Sampling,
    ) -> Result<Vec<u32>, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::{check_pass_tokens, row_seed, split_logits, Request, Sampling};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A row's draws depend on the seed and its row only: row r of a batch of 1, 2 or 5
    /// draws the same numbers, row 0 the request seed's own stream (what a one-row
    /// request drew before streams were per row), and rows and neighbouring seeds differ.
    #[test]
    fn each_row_draws_from_its_own_stream() {
        let draws = |rows: usize, seed: u64, passes: usize| {
            let mut req = Request::new("test", rows, 16, 0, seed, ());
            (0..passes).map(|_| req.draw_uniforms()).collect::<Vec<_>>()
        };
        let one = draws(1, 3, 4);
        let two = draws(2, 3, 4);
        let five = draws(5, 3, 4);
        let mut old = StdRng::seed_from_u64(3);
        for pass in 0..4 {
            assert_eq!(
                one[pass][0],
                old.random::<f32>(),
                "row 0 is the seed's stream"
            );
            assert_eq!(two[pass][0], one[pass][0]);
            assert_eq!(five[pass][..2], two[pass][..]);
            assert!(five[pass].iter().all(|u| (0.0..1.0).contains(u)));
        }
        let row = |rows: &[Vec<f32>], r: usize| rows.iter().map(|p| p[r]).collect::<Vec<_>>();
        for r in 1..5 {
            assert_ne!(row(&five, r), row(&five, 0), "row {r} repeats row 0");
        }
        // seed + 1's row 0 is not seed's row 1 (as `seed + row` would make it).
        assert_ne!(row(&draws(1, 4, 4), 0), row(&five, 1));
        assert_ne!(row_seed(3, 1), 4);
        assert_eq!(row_seed(7, 0), 7);
    }

    /// Library callers get the CLI's ranges: a temperature whose 1/T overflows f32 is
    /// refused (it sampled from NaN probabilities), the smallest normal one is taken.
    #[test]
    fn sampling_ranges_are_checked_for_library_callers() {
        let at = |temperature: f32, top_p: f32| Sampling {
            temperature,
            top_p,
            top_k: 0,
            seed: 0,
        };
        assert!(at(0.0, 1.0).validate().is_ok());
        assert!(at(f32::MIN_POSITIVE, 1.0).validate().is_ok());
        assert!(at(0.7, 0.9).validate().is_ok());
        let e = at(1e-40, 1.0).validate().unwrap_err().to_string();
        assert!(e.contains("`temperature` = 1e-40 is out of range"), "{e}");
        for bad in [f32::NAN, -1.0, f32::INFINITY] {
            assert!(at(bad, 1.0).validate().is_err(), "{bad}");
        }
        for bad in [0.0, 1.5, f32::NAN] {
            assert!(at(1.0, bad).validate().is_err(), "{bad}");
        }
    }

    /// Both back ends refuse a prompt longer than the request's pass with one message
    /// naming the prompt, its length and the capacity; up to the capacity is taken.
    #[test]
    fn a_prompt_longer_than_the_pass_is_refused_by_name() {
        let prompts = vec![vec![1u32; 3], vec![2u32; 5]];
        assert!(check_pass_tokens(&prompts, 5, 8).is_ok());
        let e = check_pass_tokens(&prompts, 4, 8).unwrap_err().to_string();
        assert!(
            e.contains("prompt 1 has 5 tokens, more than the 4 this request's prefill buffers")
                && e.contains("allowed 1..=4"),
            "{e}"
        );
        // N below the capacity: N is the range said.
        let e = check_pass_tokens(&prompts, 10, 4).unwrap_err().to_string();
        assert!(
            e.contains("prompt 1 has 5 tokens: allowed 1..=4 (N of this request)"),
            "{e}"
        );
    }

    /// A pass's logit words split into rows of `vocab` f32s, bits as written.
    #[test]
    fn logits_are_split_by_row() {
        let raw: Vec<u32> = [1.0f32, -2.5, 0.0, 3.0, f32::MIN_POSITIVE, 7.0]
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(
            split_logits(&raw, 3),
            [vec![1.0, -2.5, 0.0], vec![3.0, f32::MIN_POSITIVE, 7.0]]
        );
        assert!(split_logits(&[], 3).is_empty());
    }
}
