//! The memory planner of the CUDA engine as a pure function: the device bytes a model and
//! a request of `rows` rows need, from the model's shape, the storage type and the plan's
//! cache layout (docs/DESIGN.md §5), with no GPU. `CudaLlama` checks every request and
//! answers `max_rows` through [`MemoryPlan`]; `moa plan show --max-batch` prints the same
//! figures for a memory budget given on the command line. One formula serves both, so
//! the command's answer is the engine's.
//!
//! What is counted (all in bytes):
//! * **weights**: the embedding, the output head (unless tied), and per layer the fused
//!   QKV, output, fused gate/up and down projections in the storage type; the norms in f32
//!   (what `CudaLlama` uploads);
//! * **KV cache**, per row: Σ over layers of the layout's `row_slots` × 2 (K and V) ×
//!   `head_dim` × the storage type's bytes;
//! * **activations**: one prefill pass of `max(prefill_chunk_tokens, longest prompt)`
//!   tokens and one decode step of `rows + 1` tokens (the spare row takes the padding
//!   items), plus per row the f32 logits and the last hidden state. The small buffers
//!   (work lists, segment tables, the RoPE table) are left out: the caller keeps a reserve.

#![warn(missing_docs)]

use crate::lower::{lower, CacheLayout, StorageType};
use crate::model::LlamaConfig;
use crate::plan::Plan;

/// Most prompt tokens of one prefill pass unless set otherwise
/// (`CudaLlama::prefill_chunk_tokens`, `moa bench --prefill-chunk`).
pub const DEFAULT_PREFILL_CHUNK_TOKENS: usize = 8192;

/// Bytes of the weights `CudaLlama` uploads for `config` in `storage` (norms in f32).
/// `lm_head`: the output head is a matrix of its own (false: tied to the embedding).
pub fn weight_bytes(config: &LlamaConfig, storage: StorageType, lm_head: bool) -> u64 {
    let c = config;
    let (e, f32b) = (storage.bytes() as u64, 4u64);
    let (h, ffn, vocab) = (c.hidden_size as u64, c.ffn_size as u64, c.vocab_size as u64);
    let qkv_rows = ((c.q_heads + 2 * c.kv_heads) * c.head_dim) as u64;
    let q_dim = c.q_dim() as u64;
    let per_layer = 2 * h * f32b // attn_norm, ffn_norm
        + qkv_rows * h * e
        + h * q_dim * e
        + 2 * ffn * h * e
        + h * ffn * e;
    let heads = if lm_head { 2 } else { 1 };
    heads * vocab * h * e + h * f32b + c.n_layers as u64 * per_layer
}

/// Checks, before anything is uploaded, that the weights fit in `free` device bytes with
/// `reserve` bytes to spare (the first request's caches and activations come on top and
/// are checked by the request). Returns the weight bytes.
///
/// # Errors
/// A message naming the model, the storage type, the bytes needed and free, and what
/// would fit instead (a 2-byte storage type when `storage` is f32).
pub fn check_weights_fit(
    config: &LlamaConfig,
    storage: StorageType,
    lm_head: bool,
    free: u64,
    reserve: u64,
) -> Result<u64, String> {
    let need = weight_bytes(config, storage, lm_head);
    if need.saturating_add(reserve) <= free {
        return Ok(need);
    }
    let gib = |b: u64| b as f64 / 1073741824.0;
    let hint = if storage.bytes() > 2
        && weight_bytes(config, StorageType::Bf16, lm_head).saturating_add(reserve) <= free
    {
        "; in bf16 or f16 they would fit"
    } else {
        "; a smaller model, or a GPU with more free memory"
    };
    Err(format!(
        "the weights of `{}` need {:.2} GiB in {:?} storage, plus a {:.2} GiB reserve; the GPU \
         has {:.2} GiB free{hint}",
        config
            .name
            .as_deref()
            .map_or("the model".into(), crate::input::shown_name),
        gib(need),
        storage,
        gib(reserve),
        gib(free),
    ))
}

/// Activation bytes of a request: a pass of `cap` prefill tokens, a decode step of
/// `rows + 1` tokens and the per-row buffers (logits f32 `[rows, vocab]`, last hidden
/// state `[rows, hidden]`, a few u32s). Per token: the f32 residual and fused QKV, q/k/v,
/// the norm and attention outputs in the storage type, the f32 gate/up and the SwiGLU
/// output, token ids and token info (`CudaLlama`'s `Act`), and where the default prefill
/// takes V in f16 (bf16 at head_dim a multiple of 64) the `v` pre-pass's copy of V.
pub fn activation_bytes(
    config: &LlamaConfig,
    storage: StorageType,
    cap: usize,
    rows: usize,
) -> u64 {
    activation_bytes_sub(config, storage, cap, cap, rows)
}

/// [`activation_bytes`] when the prefill pass runs its norms, QKV and FFN products over
/// token groups of at most `sub` tokens (`CudaLlama::prefill_sub_tokens`): only the
/// residual, q/k/v and the attention output (what attention needs at once) stay
/// `[cap, ·]`; the norm output, the f32 QKV and gate/up and the SwiGLU output are
/// `[min(sub, cap), ·]`. For the Llama-2-7B shape that is 48 of the 214 KiB a token needs.
pub fn activation_bytes_sub(
    config: &LlamaConfig,
    storage: StorageType,
    cap: usize,
    sub: usize,
    rows: usize,
) -> u64 {
    let c = config;
    let e = storage.bytes() as u64;
    let qkv = ((c.q_heads + 2 * c.kv_heads) * c.head_dim) as u64;
    // x (f32), q/k/v and the attention output, token ids and info; where the default
    // prefill takes V in f16 (bf16, the `v` variant), the pre-pass's f16 copy of the
    // prefill pass's V (prefill tokens only).
    let v_f16 = {
        use crate::codegen::cuda::{prefill_v_f16_in, PrefillTuning};
        let d = c.head_dim as u32;
        if prefill_v_f16_in(storage, d, PrefillTuning::default_for(storage, d)) {
            (c.kv_heads * c.head_dim) as u64 * 2
        } else {
            0
        }
    };
    let whole = c.hidden_size as u64 * 4 + qkv * e + c.q_dim() as u64 * e + 20;
    // h, the f32 QKV, the f32 gate/up and the SwiGLU output.
    let grouped = c.hidden_size as u64 * e + qkv * 4 + c.ffn_size as u64 * (8 + e);
    let decode = rows as u64 + 1;
    let per_row = c.vocab_size as u64 * 4 + c.hidden_size as u64 * e + 64;
    (cap as u64 + decode)
        .saturating_mul(whole)
        .saturating_add((cap as u64).saturating_mul(v_f16))
        .saturating_add((sub.min(cap) as u64 + decode).saturating_mul(grouped))
        .saturating_add((rows as u64).saturating_mul(per_row))
}

/// KV-cache bytes of one row: Σ `row_slots` over the layers × 2 × `head_dim` × the
/// storage type's bytes (`layouts`: every layer's [`CacheLayout`] at the request's N).
pub fn kv_bytes_per_row(layouts: &[CacheLayout], head_dim: usize, storage: StorageType) -> u64 {
    let slots: u64 = layouts.iter().map(|l| u64::from(l.row_slots)).sum();
    slots * 2 * head_dim as u64 * storage.bytes() as u64
}

/// The device bytes of a model and of its requests at one N (longest prompt + new
/// tokens): a request of `rows` rows takes [`Self::request_bytes`]`(rows)` =
/// `fixed_bytes + rows × row_bytes()` on top of the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The weights ([`weight_bytes`]).
    pub weight_bytes: u64,
    /// KV cache of one row ([`kv_bytes_per_row`]).
    pub kv_bytes_per_row: u64,
    /// Activations that grow with the rows (one decode token, logits, last hidden state).
    pub act_bytes_per_row: u64,
    /// Activations of any request: the prefill pass and the decode step's spare row.
    pub fixed_bytes: u64,
}

impl MemoryPlan {
    /// The plan for a request whose longest prompt has `longest_prompt` tokens, with the
    /// caches of `layouts` (every layer's layout at the request's N) and prefill passes of
    /// up to `prefill_chunk_tokens` tokens (a longer prompt runs alone, so the pass is
    /// `max(prefill_chunk_tokens, longest_prompt)`). `lm_head` as in [`weight_bytes`].
    pub fn new(
        config: &LlamaConfig,
        storage: StorageType,
        lm_head: bool,
        layouts: &[CacheLayout],
        longest_prompt: usize,
        prefill_chunk_tokens: usize,
    ) -> MemoryPlan {
        let cap = prefill_chunk_tokens.max(longest_prompt);
        let fixed_bytes = activation_bytes(config, storage, cap, 0);
        MemoryPlan {
            weight_bytes: weight_bytes(config, storage, lm_head),
            kv_bytes_per_row: kv_bytes_per_row(layouts, config.head_dim, storage),
            act_bytes_per_row: activation_bytes(config, storage, cap, 1) - fixed_bytes,
            fixed_bytes,
        }
    }

    /// The same plan with the prefill pass's norms, QKV and FFN run over groups of at
    /// most `sub` tokens ([`activation_bytes_sub`]); `None` keeps whole passes.
    pub fn with_prefill_sub(
        self,
        config: &LlamaConfig,
        storage: StorageType,
        longest_prompt: usize,
        prefill_chunk_tokens: usize,
        sub: Option<usize>,
    ) -> MemoryPlan {
        let cap = prefill_chunk_tokens.max(longest_prompt);
        let sub = sub.unwrap_or(cap).max(1);
        let fixed_bytes = activation_bytes_sub(config, storage, cap, sub, 0);
        MemoryPlan {
            act_bytes_per_row: activation_bytes_sub(config, storage, cap, sub, 1) - fixed_bytes,
            fixed_bytes,
            ..self
        }
    }

    /// [`Self::new`] for `plan` lowered to `storage`, with its layouts at N =
    /// `longest_prompt + new_tokens` (the caller checks N against the model's context).
    pub fn for_plan(
        config: &LlamaConfig,
        storage: StorageType,
        lm_head: bool,
        plan: &Plan,
        longest_prompt: usize,
        new_tokens: usize,
        prefill_chunk_tokens: usize,
    ) -> MemoryPlan {
        let n = u32::try_from(longest_prompt.saturating_add(new_tokens)).unwrap_or(u32::MAX);
        let module = lower(plan, storage);
        let layouts = module.cache_layouts(n);
        Self::new(
            config,
            storage,
            lm_head,
            &layouts,
            longest_prompt,
            prefill_chunk_tokens,
        )
    }

    /// Bytes each row adds: its KV cache and its activations.
    pub fn row_bytes(&self) -> u64 {
        self.kv_bytes_per_row + self.act_bytes_per_row
    }

    /// KV-cache bytes of `rows` rows.
    pub fn kv_bytes(&self, rows: usize) -> u64 {
        self.kv_bytes_per_row.saturating_mul(rows as u64)
    }

    /// Device bytes a request of `rows` rows allocates besides the weights.
    pub fn request_bytes(&self, rows: usize) -> u64 {
        self.fixed_bytes
            .saturating_add(self.row_bytes().saturating_mul(rows as u64))
    }

    /// The most rows whose request fits in `free` bytes (the weights already resident):
    /// `⌊(free − fixed_bytes) / row_bytes⌋`, 0 when not even the fixed part fits.
    pub fn max_rows(&self, free: u64) -> usize {
        let rows = free.saturating_sub(self.fixed_bytes) / self.row_bytes().max(1);
        usize::try_from(rows).unwrap_or(usize::MAX)
    }

    /// The most rows that fit in a budget of `budget` bytes for the weights and the
    /// request together; `None` when the weights alone exceed it.
    pub fn max_rows_in(&self, budget: u64) -> Option<usize> {
        budget
            .checked_sub(self.weight_bytes)
            .map(|free| self.max_rows(free))
    }

    /// The smallest budget (weights included) that holds a request of `rows` rows.
    pub fn budget_for(&self, rows: usize) -> u64 {
        self.weight_bytes.saturating_add(self.request_bytes(rows))
    }
}

/// What the GPU of a run holds, counted in host memory where that GPU is the CPU
/// (lavapipe, llvmpipe: its buffers are this machine's memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCopy {
    /// The storage type of the weights, Q/K/V and cache on the device.
    pub storage: StorageType,
    /// The uploaded weights ([`weight_bytes`] in `storage`).
    pub weights: u64,
    /// The KV cache of `rows` rows at N = `n_tokens` (the plan's layouts).
    pub kv_cache: u64,
    /// One prefill pass of every prompt token and the decode step ([`activation_bytes`]).
    pub activations: u64,
    /// Rows (prompts) of the request.
    pub rows: usize,
    /// The request's N in tokens (longest prompt + new tokens).
    pub n_tokens: usize,
}

/// The host memory a `moa generate` run needs at its peak, in bytes: the loaded model's
/// f32 weights (every weight is held in f32 after loading, whatever the file stores),
/// plus, on a CPU adapter, the GPU's copy of the weights, the KV cache and the
/// activations ([`DeviceCopy`]). A GPU with memory of its own holds those there, so they
/// are not counted (its allocation errors name them). Driver and compiler memory is not
/// counted either: leave some spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostMemory {
    /// Parameters of the model.
    pub params: u64,
    /// The host weights at their peak: the loaded f32 weights (4 bytes a parameter), or
    /// with [`Self::streamed`] the largest tensor the upload holds at once
    /// ([`streamed_host_bytes`]).
    pub host_weights: u64,
    /// Whether the weights are read from the file one tensor at a time during the upload
    /// (`moa generate`, `crate::model::WeightStream`), not loaded whole first.
    pub streamed: bool,
    /// `None` on a GPU with memory of its own.
    pub on_cpu_adapter: Option<DeviceCopy>,
}

impl HostMemory {
    /// The host memory of a run of `rows` prompts (the longest `longest_prompt` tokens,
    /// `prompt_tokens` in all) with `new_tokens` new tokens each, through `plan` lowered
    /// to `storage`; `cpu_adapter`: the GPU is the CPU.
    #[allow(clippy::too_many_arguments)]
    pub fn of_run(
        config: &LlamaConfig,
        plan: &Plan,
        storage: StorageType,
        rows: usize,
        longest_prompt: usize,
        prompt_tokens: usize,
        new_tokens: usize,
        cpu_adapter: bool,
    ) -> HostMemory {
        let params = crate::model::random::parameter_count(config);
        let on_cpu_adapter = cpu_adapter.then(|| {
            let m = MemoryPlan::for_plan(
                config,
                storage,
                !config.tied_embeddings,
                plan,
                longest_prompt,
                new_tokens,
                prompt_tokens,
            );
            DeviceCopy {
                storage,
                weights: m.weight_bytes,
                kv_cache: m.kv_bytes(rows),
                activations: m.request_bytes(rows).saturating_sub(m.kv_bytes(rows)),
                rows,
                n_tokens: longest_prompt.saturating_add(new_tokens),
            }
        });
        HostMemory {
            params,
            host_weights: params.saturating_mul(4),
            streamed: false,
            on_cpu_adapter,
        }
    }

    /// The same run with its weights streamed from the file ([`Self::streamed`]): the host
    /// holds [`streamed_host_bytes`] of them at most instead of all of them in f32.
    pub fn streamed(self, config: &LlamaConfig) -> HostMemory {
        HostMemory {
            host_weights: streamed_host_bytes(config),
            streamed: true,
            ..self
        }
    }

    /// Every byte counted.
    pub fn total(&self) -> u64 {
        let device = self.on_cpu_adapter.map_or(0, |d| {
            d.weights
                .saturating_add(d.kv_cache)
                .saturating_add(d.activations)
        });
        self.host_weights.saturating_add(device)
    }

    /// Refuses the run where [`Self::total`] exceeds `available` bytes (`None`: the
    /// system does not say, no check), naming `model` and every number counted.
    ///
    /// # Errors
    /// A message: the model, the total and the memory available, then each part (the
    /// f32 weights and the parameters; on a CPU adapter, named `adapter`, the GPU's
    /// weights in its storage type, the KV cache with its rows and N, the activations),
    /// then what would make it fit.
    pub fn check(&self, model: &str, adapter: &str, available: Option<u64>) -> Result<(), String> {
        let total = self.total();
        let Some(avail) = available.filter(|&a| a < total) else {
            return Ok(());
        };
        let gb = |b: u64| format!("{:.2} GB", b as f64 / 1e9);
        // The parts in MB below a GB: "0.00 GB" said nothing of a small one.
        let size = |b: u64| {
            if b >= 1_000_000_000 {
                gb(b)
            } else {
                format!("{:.1} MB", b as f64 / 1e6)
            }
        };
        let params = if self.params >= 100_000_000 {
            format!("{:.2} billion", self.params as f64 / 1e9)
        } else {
            format!("{:.2} million", self.params as f64 / 1e6)
        };
        let mut parts = if self.streamed {
            format!(
                "the weights read one tensor at a time {} (the largest tensor in f32 with its \
                 device bytes; {params} parameters)",
                size(self.host_weights),
            )
        } else {
            format!(
                "the weights {} ({params} parameters, held as f32 whatever the file stores)",
                size(self.host_weights),
            )
        };
        let mut hint = "use a smaller model, or free memory";
        if let Some(d) = self.on_cpu_adapter {
            parts += &format!(
                ", and on the CPU adapter `{adapter}`, whose GPU memory is this machine's: the GPU's copy of the weights in {} {}, the KV cache of {} row{} at N = {} tokens {} and the activations {}",
                d.storage.name(),
                size(d.weights),
                d.rows,
                if d.rows == 1 { "" } else { "s" },
                d.n_tokens,
                size(d.kv_cache),
                size(d.activations)
            );
            hint = "use a smaller model, fewer or shorter prompts, a smaller --max-new-tokens, or free memory";
        }
        Err(format!(
            "`{model}`: loading it and running this request needs about {} of memory and this machine has {} available: {parts}; {hint}",
            gb(total),
            gb(avail)
        ))
    }
}

/// Host bytes a streamed upload (`crate::model::WeightFeed::Stream`) holds at its peak: the
/// largest matrix it makes at once, as f32 source tensors (4 bytes a value), their
/// concatenation where the engine stacks them (Q/K/V, gate/up: 4 more) and its device
/// bytes (2 or 4), so 10 bytes a value for the stacked matrices and 8 for the embedding
/// and output projection; plus the 256 MiB of staging the upload flushes at
/// (`runtime::wgpu_engine::weights`). Llama-3-8B: the embedding's 525 M values, 4.2 GB,
/// against 32 GB for the whole f32 model.
pub fn streamed_host_bytes(config: &LlamaConfig) -> u64 {
    let h = config.hidden_size as u64;
    let qkv = (config.q_dim() + 2 * config.kv_dim()) as u64 * h;
    let gate_up = 2 * config.ffn_size as u64 * h;
    let embed = config.vocab_size as u64 * h;
    let stacked = qkv.max(gate_up).saturating_mul(10);
    stacked
        .max(embed.saturating_mul(8))
        .saturating_add(256 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ModelShape;

    /// 2 layers, hidden 8, ffn 16, 2 query heads / 1 KV head of 4, vocab 10, untied.
    fn tiny() -> LlamaConfig {
        LlamaConfig {
            name: Some("tiny".into()),
            n_layers: 2,
            hidden_size: 8,
            ffn_size: 16,
            q_heads: 2,
            kv_heads: 1,
            head_dim: 4,
            rope_theta: 10_000.0,
            rope_scaling: None,
            rms_norm_eps: 1e-5,
            vocab_size: 10,
            tied_embeddings: false,
            context_length: 64,
        }
    }

    /// A run's host memory: the f32 weights alone on a GPU with memory of its own; on a
    /// CPU adapter also the GPU's weights, the KV cache of every row at N (dense: N slots
    /// per layer, K and V) and the activations; the refusal names every part.
    #[test]
    fn host_memory_of_a_run_counts_the_cache_on_a_cpu_adapter() {
        let c = LlamaConfig {
            hidden_size: 128,
            ffn_size: 256,
            head_dim: 64,
            context_length: 4096,
            ..tiny()
        };
        let plan = Plan::dense(c.model_shape()).unwrap();
        let gpu = HostMemory::of_run(&c, &plan, StorageType::F16, 3, 100, 250, 900, false);
        let params = crate::model::random::parameter_count(&c);
        assert_eq!(gpu.host_weights, 4 * params);
        assert_eq!(gpu.total(), 4 * params);
        let cpu = HostMemory::of_run(&c, &plan, StorageType::F16, 3, 100, 250, 900, true);
        let d = cpu.on_cpu_adapter.unwrap();
        assert_eq!((d.rows, d.n_tokens), (3, 1000));
        // 2 layers x 1000 slots x (K + V) x 64 x 2 bytes x 3 rows.
        assert_eq!(d.kv_cache, 2 * 1000 * 2 * 64 * 2 * 3);
        assert_eq!(d.weights, weight_bytes(&c, StorageType::F16, true));
        assert!(d.activations >= activation_bytes(&c, StorageType::F16, 250, 3));
        assert_eq!(
            cpu.total(),
            4 * params + d.weights + d.kv_cache + d.activations
        );
        assert!(cpu.check("m.gguf", "llvmpipe", None).is_ok());
        assert!(cpu.check("m.gguf", "llvmpipe", Some(cpu.total())).is_ok());
        let e = cpu
            .check("m.gguf", "llvmpipe", Some(cpu.total() - 1))
            .unwrap_err();
        for want in [
            "`m.gguf`: loading it and running this request needs about",
            "held as f32",
            "on the CPU adapter `llvmpipe`",
            "the KV cache of 3 rows at N = 1000 tokens 1.5 MB",
            "a smaller --max-new-tokens",
        ] {
            assert!(e.contains(want), "no `{want}` in: {e}");
        }
        let e = gpu.check("m.gguf", "", Some(1)).unwrap_err();
        assert!(
            !e.contains("KV cache") && e.contains("0.00 GB available"),
            "{e}"
        );
    }

    #[test]
    fn grouped_prefill_bounds_the_ffn_and_qkv_activations() {
        let c = tiny();
        // Whole per token: x 8·4 + q/k/v (2+1+1)·4·2 + attention output 8·2 + 20 = 100;
        // grouped: h 8·2 + QKV 16·4 + gate/up 16·8 + SwiGLU 16·2 = 240; per row: logits
        // 10·4 + last hidden 8·2 + 64 = 120.
        let (whole, grouped, per_row) = (100u64, 240u64, 120u64);
        assert_eq!(
            activation_bytes(&c, StorageType::Bf16, 100, 3),
            104 * (whole + grouped) + 3 * per_row
        );
        assert_eq!(
            activation_bytes_sub(&c, StorageType::Bf16, 100, 10, 3),
            104 * whole + 14 * grouped + 3 * per_row
        );
        // A group larger than the pass changes nothing.
        assert_eq!(
            activation_bytes_sub(&c, StorageType::Bf16, 100, 1000, 3),
            activation_bytes(&c, StorageType::Bf16, 100, 3)
        );
        let plan = MemoryPlan::new(&c, StorageType::Bf16, true, &[], 100, 50);
        let grouped_plan = plan.with_prefill_sub(&c, StorageType::Bf16, 100, 50, Some(10));
        assert_eq!(grouped_plan.fixed_bytes, 101 * whole + 11 * grouped);
        assert_eq!(grouped_plan.act_bytes_per_row, plan.act_bytes_per_row);
        assert_eq!(
            plan.with_prefill_sub(&c, StorageType::Bf16, 100, 50, None),
            plan
        );
    }

    /// bf16 at head_dim 128 (the `v` default prefill) counts the pre-pass's f16 copy of V
    /// per pass token, f16 (V read as stored) does not: both store 2 bytes per value.
    #[test]
    fn the_v_prefill_copy_of_v_is_counted() {
        let c = LlamaConfig {
            head_dim: 128,
            q_heads: 4,
            kv_heads: 2,
            hidden_size: 512,
            ..tiny()
        };
        let (cap, rows) = (100u64, 3usize);
        let copy = cap * 2 * 128 * 2;
        assert_eq!(
            activation_bytes(&c, StorageType::Bf16, cap as usize, rows),
            activation_bytes(&c, StorageType::F16, cap as usize, rows) + copy
        );
    }

    #[test]
    fn weights_that_do_not_fit_are_refused_before_any_upload() {
        let c = tiny();
        let bf16 = weight_bytes(&c, StorageType::Bf16, true);
        let f32b = weight_bytes(&c, StorageType::F32, true);
        assert_eq!(
            check_weights_fit(&c, StorageType::Bf16, true, bf16 + 10, 10),
            Ok(bf16)
        );
        let e = check_weights_fit(&c, StorageType::F32, true, bf16 + 10, 10).unwrap_err();
        assert!(
            e.contains("`tiny`")
                && e.contains("F32")
                && e.contains("in bf16 or f16 they would fit"),
            "{e}"
        );
        let e = check_weights_fit(&c, StorageType::Bf16, true, bf16 + 9, 10).unwrap_err();
        assert!(e.contains("a smaller model"), "{e}");
        assert!(f32b > bf16);
    }

    #[test]
    fn weights_by_hand() {
        let c = tiny();
        // Per layer, bf16: norms 2·8·4 = 64; QKV (2+2)·4 = 16 rows × 8 × 2 = 256;
        // output 8 × 8 × 2 = 128; gate/up 2·16·8·2 = 512; down 8·16·2 = 256 → 1216.
        // Embedding and head 10·8·2 = 160 each; output norm 32.
        assert_eq!(
            weight_bytes(&c, StorageType::Bf16, true),
            2 * 160 + 32 + 2 * 1216
        );
        assert_eq!(
            weight_bytes(&c, StorageType::Bf16, false),
            160 + 32 + 2 * 1216
        );
        // f32: the matrices double, the norms stay.
        assert_eq!(
            weight_bytes(&c, StorageType::F32, true),
            2 * 320 + 32 + 2 * (64 + 512 + 256 + 1024 + 512)
        );
    }

    #[test]
    fn activations_by_hand() {
        let c = tiny();
        // bf16 per token: 8·6 + 16·6 + 8·2 + 16·10 + 20 = 48 + 96 + 16 + 160 + 20 = 340;
        // per row: 10·4 + 8·2 + 64 = 120.
        assert_eq!(activation_bytes(&c, StorageType::Bf16, 0, 0), 340);
        assert_eq!(
            activation_bytes(&c, StorageType::Bf16, 5, 3),
            9 * 340 + 3 * 120
        );
    }

    #[test]
    fn dense_and_plan_by_hand() {
        let c = tiny();
        let s = StorageType::Bf16;
        let shape = ModelShape {
            name: None,
            layers: 2,
            q_heads: 2,
            kv_heads: 1,
            head_dim: 4,
            max_context_tokens: 64,
        };
        let dense = lower(&Plan::dense(shape).unwrap(), s);
        // Prompt 20 + 12 new: N = 32; dense holds 32 slots per layer.
        let layouts = dense.cache_layouts(32);
        let m = MemoryPlan::new(&c, s, true, &layouts, 20, 16);
        // KV: 2 layers × 32 slots × 2 × 4 × 2 B = 1024.
        assert_eq!(m.kv_bytes_per_row, 1024);
        // The prefill pass is the prompt (20 > 16 tokens): (20 + 0 + 1) × 340.
        assert_eq!(m.fixed_bytes, 21 * 340);
        assert_eq!(m.act_bytes_per_row, 340 + 120);
        assert_eq!(m.row_bytes(), 1484);
        assert_eq!(m.request_bytes(3), 21 * 340 + 3 * 1484);
        assert_eq!(m.weight_bytes, 2784);
        // A budget of weights + fixed + 3 rows fits 3, one byte less fits 2.
        let b = m.budget_for(3);
        assert_eq!(b, 2784 + 7140 + 4452);
        assert_eq!(m.max_rows_in(b), Some(3));
        assert_eq!(m.max_rows_in(b - 1), Some(2));
        assert_eq!(m.max_rows_in(m.weight_bytes + 7139), Some(0));
        assert_eq!(m.max_rows_in(m.weight_bytes - 1), None);
        // The engine's check: exactly what `request_bytes` says fits.
        assert_eq!(m.max_rows(m.request_bytes(5)), 5);
        assert_eq!(m.max_rows(m.request_bytes(5) - 1), 4);
    }

    #[test]
    fn a_plan_counts_the_slots_of_its_layout() {
        let c = tiny();
        let plan = Plan::from_toml_str(
            r#"format_version = 1
[model]
layers = 2
q_heads = 2
kv_heads = 1
head_dim = 4
max_context_tokens = 64
[span]
sink_tokens = 2
min_span_tokens = 4
block_tokens = 4
mode = "moa"
max_new_tokens = 12
[[layers]]
alpha = [4, 0]
beta = [0.0, 0.5]
[[layers]]
alpha = [0, 0]
beta = [1.0, 1.0]
"#,
            "tiny.toml",
        )
        .unwrap();
        let module = lower(&plan, StorageType::Bf16);
        let layouts = module.cache_layouts(32);
        // At N = 32 the KV head of layer 0 keeps max(4, 0.5·32) = 16 slots, layer 1 all 32:
        // 48 slots × 2 × 4 × 2 B = 768 bytes a row (dense: 1024).
        let m = MemoryPlan::new(&c, StorageType::Bf16, true, &layouts, 20, 16);
        assert_eq!(m.kv_bytes_per_row, 768);
        assert_eq!(
            MemoryPlan::for_plan(&c, StorageType::Bf16, true, &plan, 20, 12, 16),
            m
        );
        assert_eq!(m.row_bytes(), 768 + 460);
        // A budget that holds 3 dense rows holds ⌊(3·1484) / 1228⌋ = 3 plan rows; 10 dense
        // rows' budget holds ⌊14840 / 1228⌋ = 12.
        let fixed_and_weights = 2784 + 7140;
        assert_eq!(m.max_rows_in(fixed_and_weights + 3 * 1484), Some(3));
        assert_eq!(m.max_rows_in(fixed_and_weights + 10 * 1484), Some(12));
    }
}
