//! Prefill passes and token chunks sized from the adapter's storage binding limit
//! (DESIGN.md §7): rows are grouped into passes whose whole-pass activations fit one
//! binding, and inside a pass the per-token products whose activations are widest (the
//! stacked Q/K/V output and the MLP's gate/up and SwiGLU) run over chunks of tokens. A
//! row longer than one pass runs alone, its per-token activations in parts of whole
//! query tiles and its K and V whole.

#![warn(missing_docs)]

use std::ops::Range;

use super::EngineError;
use crate::lower::StorageType;
use crate::model::LlamaConfig;

/// Bytes per token of the activations that a prefill pass keeps for all its tokens: the
/// residual stream and norm output (`x`, `x_alt`, `h`: `hidden` f32), the attention's Q
/// and output (`q_heads · head_dim`) and K, V (`kv_heads · head_dim`) in the storage type.
pub fn pass_bytes_per_token(config: &LlamaConfig, storage: StorageType) -> u64 {
    let s = storage.bytes() as u64;
    let hd = config.head_dim as u64;
    (config.hidden_size as u64 * 4)
        .max(config.q_heads as u64 * hd * s)
        .max(config.kv_heads as u64 * hd * s)
}

/// Bytes per token of the prefill's K (or V): `kv_heads · head_dim` in the storage type.
pub fn kv_bytes_per_token(config: &LlamaConfig, storage: StorageType) -> u64 {
    (config.kv_heads * config.head_dim * storage.bytes()) as u64
}

/// Bytes per token of the activations that only live inside one chunk of tokens: the
/// stacked Q/K/V product output (`(q_heads + 2 kv_heads) · head_dim` f32), the gate/up
/// output (`2 ffn` f32) and the SwiGLU output (`ffn` f32).
pub fn chunk_bytes_per_token(config: &LlamaConfig) -> u64 {
    let qkv = ((config.q_heads + 2 * config.kv_heads) * config.head_dim) as u64;
    (qkv * 4).max(2 * config.ffn_size as u64 * 4)
}

/// Zeroed tokens after the last one a pass can hold in the prefill's K and V buffers. The
/// matrix-unit prefill attention (`prefill_coop.wgsl.j2`) loads K and V in 16-key blocks,
/// and a row's last block reaches up to 15 tokens past the row: the next rows' values,
/// or for the pass's last row tokens past the buffer. Those keys are masked, so their
/// probabilities are 0, but their V rows still enter the fragment product and 0 × NaN is
/// NaN: what lay past the buffer on the H200 was not finite (session 19: one row's
/// decode logits off by 10.8, NaN prefill logits, in most f16 runs of
/// `model_gpu::swiglu_in_the_gate_up_epilogue_...`; lavapipe has no matrix units and the
/// scalar kernel skips masked keys). The pad is never written, so it keeps the zeros
/// wgpu initialises buffers with.
pub const KV_PAD_TOKENS: usize = 16;

/// The smallest number of tokens such that a chunk starting at any multiple of it starts
/// at a byte offset that is a multiple of `offset_align` in every buffer bound at an
/// offset (`x`, `x_alt`, `h`, Q, K, V and the per-token info of 16 bytes).
pub fn chunk_granule(config: &LlamaConfig, storage: StorageType, offset_align: u64) -> usize {
    let s = storage.bytes() as u64;
    let hd = config.head_dim as u64;
    let rows = [
        config.hidden_size as u64 * 4,
        config.q_heads as u64 * hd * s,
        config.kv_heads as u64 * hd * s,
        16,
    ];
    let align = offset_align.max(1);
    rows.iter()
        .map(|&r| align / gcd(align, r.max(1)))
        .fold(1, lcm) as usize
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// How a prefill runs under a binding limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefillPlan {
    /// Consecutive row ranges, one prefill pass each, in row order.
    pub groups: Vec<Range<usize>>,
    /// The most tokens of a pass (all its rows): what whole-pass activations are sized for.
    pub pass_tokens: usize,
    /// Tokens per chunk of the per-token products: what chunk activations are sized for.
    pub chunk_tokens: usize,
    /// Tokens per part of `x`, `x_alt`, `h`, Q and the attention output: `pass_tokens`
    /// when every pass fits one binding, else [`TokenLimits::part`] (a row longer than
    /// [`TokenLimits::pass`] runs alone, in parts).
    pub part_tokens: usize,
}

/// What one storage binding of `max_binding` bytes allows a prefill (DESIGN.md §7), in
/// tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLimits {
    /// Most tokens of a pass whose activations are one buffer each (a pass of several
    /// rows, or one row that fits): `max_binding / `[`pass_bytes_per_token`], K and V
    /// with their [`KV_PAD_TOKENS`], and at most the adapter's workgroups per grid
    /// dimension (the embedding gather, the RMSNorms and RoPE run a workgroup row a token).
    pub pass: usize,
    /// Tokens of one part of a row held in parts: `pass` rounded down to
    /// [`part_granule`] (0 when not one granule fits: rows then end at `pass`).
    pub part: usize,
    /// Most tokens of one row. A row past `pass` runs in a pass of its own whose `x`,
    /// `x_alt`, `h`, Q and attention output are held in parts of `part` tokens, every
    /// per-token dispatch run per part and the attention per part of its queries
    /// (`Arg::QStart`), K and V whole: so `max_binding /` (K or V bytes a token) −
    /// [`KV_PAD_TOKENS`] (the Llama-3.2-1B shape in f16 on 128 MiB: 131 056 tokens, where
    /// one part holds 16 384).
    pub row: usize,
    /// Tokens per chunk of the per-token products (a multiple of [`chunk_granule`]).
    pub chunk: usize,
}

/// [`TokenLimits`] of `config` in `storage` under `max_binding` bytes a binding, offsets
/// aligned to `offset_align` bytes and `max_workgroups` workgroups a grid dimension.
/// Errors: a granule of tokens whose chunk activations exceed the limit, or a token
/// whose whole-pass activations do.
pub fn token_limits(
    config: &LlamaConfig,
    storage: StorageType,
    max_binding: u64,
    offset_align: u64,
    max_workgroups: u32,
) -> Result<TokenLimits, EngineError> {
    // K and V hold KV_PAD_TOKENS more than the pass; the other whole-pass buffers do not.
    let kv_row = kv_bytes_per_token(config, storage);
    let kv_max = ((max_binding / kv_row.max(1)) as usize).saturating_sub(KV_PAD_TOKENS);
    let pass = ((max_binding / pass_bytes_per_token(config, storage)) as usize)
        .min(kv_max)
        .min(max_workgroups.max(1) as usize);
    let per_chunk = chunk_bytes_per_token(config);
    let granule = chunk_granule(config, storage, offset_align);
    let chunk = (max_binding / per_chunk) as usize / granule * granule;
    if chunk == 0 || pass == 0 {
        return Err(EngineError::TooLarge {
            name: format!("a chunk of {granule} tokens of the gate/up activations"),
            bytes: granule as u64 * per_chunk,
            limit: max_binding,
        });
    }
    let part_granule = part_granule(config, storage, offset_align);
    let part = pass / part_granule * part_granule;
    Ok(TokenLimits {
        pass,
        part,
        row: if part == 0 { pass } else { kv_max.max(pass) },
        chunk,
    })
}

/// The tokens a part of a row held in parts is a multiple of: [`chunk_granule`] (its
/// chunks and the K, V and per-token info bound at its first token stay aligned), the
/// token ids' 4-byte rows bound at an offset, and 64, the largest prefill attention query
/// tile (`prefill_coop.wgsl.j2`; the scalar kernel's is 32), so that no query tile
/// straddles two parts.
pub fn part_granule(config: &LlamaConfig, storage: StorageType, offset_align: u64) -> usize {
    let align = offset_align.max(1);
    let ids = (align / gcd(align, 4)) as usize;
    [chunk_granule(config, storage, offset_align), ids, 64]
        .into_iter()
        .fold(1, |a, b| lcm(a as u64, b as u64) as usize)
}

/// Groups rows of `prompt_lens` tokens into prefill passes of at most `limits.pass`
/// tokens (consecutive rows, at least one row per pass), chunked by `limits.chunk`
/// tokens; a row longer than that (up to `limits.row`) makes a pass of its own, held in
/// parts of `limits.part` tokens. As few passes as greedy filling needs, of near-equal
/// size: a pass also ends once it holds `total / passes` tokens (16 rows of 4096 at 65535
/// tokens per pass: 8 + 8 rows, not 15 + 1, whose one-row pass would leave most of a GPU
/// idle), unless that would take more passes than greedy filling. Errors: a single row
/// longer than `limits.row`, naming the row, its K (or V) bytes and `max_binding`.
pub fn group_rows(
    prompt_lens: &[usize],
    limits: &TokenLimits,
    kv_bytes_per_token: u64,
    max_binding: u64,
) -> Result<PrefillPlan, EngineError> {
    let max_pass_tokens = limits.pass;
    for (b, &len) in prompt_lens.iter().enumerate() {
        if len > limits.row {
            return Err(EngineError::TooLarge {
                name: format!(
                    "prefill K (and V) of row {b} ({len} tokens; at most {} fit)",
                    limits.row
                ),
                bytes: (len + KV_PAD_TOKENS) as u64 * kv_bytes_per_token,
                limit: max_binding,
            });
        }
    }
    let greedy = fill(prompt_lens, max_pass_tokens, usize::MAX);
    let total: usize = prompt_lens.iter().sum();
    let balanced = fill(
        prompt_lens,
        max_pass_tokens,
        total.div_ceil(greedy.len().max(1)),
    );
    let groups = if balanced.len() <= greedy.len() {
        balanced
    } else {
        greedy
    };
    let pass_tokens = groups
        .iter()
        .map(|g| prompt_lens[g.clone()].iter().sum::<usize>())
        .max()
        .unwrap_or(0);
    let part_tokens = if pass_tokens > max_pass_tokens {
        limits.part
    } else {
        pass_tokens
    };
    Ok(PrefillPlan {
        groups,
        pass_tokens,
        chunk_tokens: limits.chunk.min(part_tokens.max(1)),
        part_tokens,
    })
}

/// Consecutive row ranges of at most `max` tokens, each ended once it holds `target`.
fn fill(lens: &[usize], max: usize, target: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (b, &len) in lens.iter().enumerate() {
        if b > start && (tokens + len > max || tokens >= target) {
            groups.push(start..b);
            (start, tokens) = (b, 0);
        }
        tokens += len;
    }
    groups.push(start..lens.len());
    groups
}

/// The prefill plan of rows of `prompt_lens` tokens for a model of `config` under a
/// storage binding limit of `max_binding` bytes with storage buffer offsets aligned to
/// `offset_align` bytes: [`token_limits`], then [`group_rows`], with at most
/// `max_workgroups` tokens per pass or part (the adapter's workgroups per grid
/// dimension: the embedding gather, the RMSNorms and the RoPE shader run one workgroup
/// row per token in one dimension; measured on the H200: 16 rows × 4096 tokens in one
/// pass failed with "dispatch group size dimension ([9, 65536, 1]) must be less or equal
/// to 65535").
pub fn plan_prefill(
    config: &LlamaConfig,
    storage: StorageType,
    prompt_lens: &[usize],
    max_binding: u64,
    offset_align: u64,
    max_workgroups: u32,
) -> Result<PrefillPlan, EngineError> {
    let limits = token_limits(config, storage, max_binding, offset_align, max_workgroups)?;
    group_rows(
        prompt_lens,
        &limits,
        kv_bytes_per_token(config, storage),
        max_binding,
    )
}
