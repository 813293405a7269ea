//! The CPU reference forward pass (candle, f32): RMSNorm, half-split RoPE, GQA attention
//! (dense causal, or masked per (layer, q_head) by a plan), SwiGLU MLP; plus greedy
//! generation with a KV cache. Written for clarity: full scores, then the mask, then softmax.
//!
//! The plan mask is `Plan::window(layer, q_head, N).keeps(q_pos, k_pos)` and nothing else
//! (docs/DESIGN.md §3); positions are absolute, so prefill and decode see the same keys.

#![warn(missing_docs)]

use candle_core::{Device, Tensor, D};

use super::config::LlamaConfig;
use super::weights::{HostTensor, Weights};
use super::{Model, ModelError};
use crate::plan::Plan;

/// Which keys each query sees.
#[derive(Clone, Copy, Debug)]
pub enum Masking<'a> {
    /// Causal: every earlier key and the current one.
    Dense,
    /// The plan's per-head windows at sequence length `n_tokens` (the request's N, fixed for
    /// the whole request; see `Plan::n_for_prompt`).
    Plan {
        /// The plan whose per-head sink + window rules mask the attention.
        plan: &'a Plan,
        /// The request's sequence length N (tokens) that the plan's windows are evaluated at.
        n_tokens: u32,
    },
}

impl<'a> Masking<'a> {
    /// Dense where `plan` is `None`, else the plan's windows at N = `n_tokens`.
    pub fn of(plan: Option<&'a Plan>, n_tokens: u32) -> Self {
        match plan {
            Some(plan) => Masking::Plan { plan, n_tokens },
            None => Masking::Dense,
        }
    }

    /// Does query head `q_head` of `layer` at `q_pos` see the key at `k_pos`?
    pub fn keeps(&self, layer: usize, q_head: usize, q_pos: u64, k_pos: u64) -> bool {
        match *self {
            Masking::Dense => k_pos <= q_pos,
            Masking::Plan { plan, n_tokens } => {
                plan.window(layer, q_head, n_tokens).keeps(q_pos, k_pos)
            }
        }
    }
}

/// Keys and values of every layer for the positions seen so far (made by
/// [`CpuReference::new_cache`], so it always has one entry per layer).
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Per layer: keys `[kv_heads, len, head_dim]` (after RoPE) and values, same shape.
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    fn new(n_layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; n_layers],
            len: 0,
        }
    }

    /// Number of positions cached (the absolute position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// No position cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops every cached position (keeps the layer count), for a new sequence from position 0.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }
}

/// One decoder block's tensors ([`LayerWeights`](super::LayerWeights)'s, by the same
/// names) as candle tensors: the CPU reference's and the profiler's `GradModel`'s.
pub(crate) struct LayerTensors {
    pub(crate) attn_norm: Tensor,
    pub(crate) attn_q: Tensor,
    pub(crate) attn_k: Tensor,
    pub(crate) attn_v: Tensor,
    pub(crate) attn_output: Tensor,
    pub(crate) ffn_norm: Tensor,
    pub(crate) ffn_gate: Tensor,
    pub(crate) ffn_up: Tensor,
    pub(crate) ffn_down: Tensor,
}

/// A model ready to run on the CPU.
pub struct CpuReference {
    /// The model's shapes (layers, heads, `head_dim`, vocabulary, RoPE).
    pub config: LlamaConfig,
    token_embd: Tensor,
    layers: Vec<LayerTensors>,
    output_norm: Tensor,
    lm_head: Tensor,
}

fn tensor(t: HostTensor) -> Result<Tensor, ModelError> {
    Ok(Tensor::from_vec(t.data, t.shape, &Device::Cpu)?)
}

impl CpuReference {
    /// Takes the weights by value: tensors wrap the `Vec`s without copying.
    pub fn new(config: LlamaConfig, weights: Weights) -> Result<CpuReference, ModelError> {
        let token_embd = tensor(weights.token_embd)?;
        let lm_head = match weights.output {
            Some(o) => tensor(o)?,
            // Tied: the same storage (candle tensors are reference counted).
            None => token_embd.clone(),
        };
        let layers = weights
            .layers
            .into_iter()
            .map(|l| {
                Ok(LayerTensors {
                    attn_norm: tensor(l.attn_norm)?,
                    attn_q: tensor(l.attn_q)?,
                    attn_k: tensor(l.attn_k)?,
                    attn_v: tensor(l.attn_v)?,
                    attn_output: tensor(l.attn_output)?,
                    ffn_norm: tensor(l.ffn_norm)?,
                    ffn_gate: tensor(l.ffn_gate)?,
                    ffn_up: tensor(l.ffn_up)?,
                    ffn_down: tensor(l.ffn_down)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(CpuReference {
            config,
            token_embd,
            layers,
            output_norm: tensor(weights.output_norm)?,
            lm_head,
        })
    }

    /// [`CpuReference::new`] on a loaded [`Model`]'s config and weights.
    pub fn from_model(model: Model) -> Result<CpuReference, ModelError> {
        Self::new(model.config, model.weights)
    }

    /// An empty KV cache with one entry per layer of this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layers)
    }

    /// Logits `[tokens.len(), vocab]` of a whole sequence from position 0.
    pub fn forward(&self, tokens: &[u32], masking: Masking) -> Result<HostTensor, ModelError> {
        let mut cache = self.new_cache();
        self.forward_with_cache(&mut cache, tokens, masking)
    }

    /// Logits of a batch of sequences, each from position 0 (one after the other: this is a
    /// reference, not a server).
    pub fn forward_batch(
        &self,
        batch: &[Vec<u32>],
        masking: Masking,
    ) -> Result<Vec<HostTensor>, ModelError> {
        batch.iter().map(|t| self.forward(t, masking)).collect()
    }

    /// Appends `tokens` at positions `cache.len()..` and returns their logits
    /// `[tokens.len(), vocab]`.
    pub fn forward_with_cache(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        masking: Masking,
    ) -> Result<HostTensor, ModelError> {
        let hidden = self.hidden_states(cache, tokens, masking)?;
        self.logits(&hidden)
    }

    /// Like [`Self::forward_with_cache`], but only the last token's logits (what decoding
    /// needs; skips the output projection of the other tokens).
    pub fn next_token_logits(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        masking: Masking,
    ) -> Result<Vec<f32>, ModelError> {
        let hidden = self.hidden_states(cache, tokens, masking)?;
        let last = hidden.narrow(0, hidden.dim(0)? - 1, 1)?;
        Ok(self.logits(&last)?.data)
    }

    /// Logits of rows `rows` only (`[rows.len(), vocab]`) of a whole sequence from position 0:
    /// what a response loss needs, without the output projection of the whole prompt
    /// (49k-wide logits of a 4k prompt would be 800 MB).
    pub fn forward_rows(
        &self,
        tokens: &[u32],
        masking: Masking,
        rows: std::ops::Range<usize>,
    ) -> Result<HostTensor, ModelError> {
        if rows.is_empty() || rows.end > tokens.len() {
            return Err(ModelError::Invalid(format!(
                "logit rows {rows:?} are empty or outside a {}-token input",
                tokens.len()
            )));
        }
        let mut cache = self.new_cache();
        let hidden = self.hidden_states(&mut cache, tokens, masking)?;
        self.logits(&hidden.narrow(0, rows.start, rows.len())?)
    }

    /// Greedy decoding: up to `max_new_tokens` tokens after `prompt`, stopping after (and
    /// without returning) any token of `stop`.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        masking: Masking,
        stop: &[u32],
    ) -> Result<Vec<u32>, ModelError> {
        let mut cache = self.new_cache();
        let mut out = Vec::with_capacity(max_new_tokens);
        let mut logits = self.next_token_logits(&mut cache, prompt, masking)?;
        while out.len() < max_new_tokens {
            let next = argmax(&logits);
            if stop.contains(&next) {
                break;
            }
            out.push(next);
            if out.len() == max_new_tokens {
                break;
            }
            logits = self.next_token_logits(&mut cache, &[next], masking)?;
        }
        Ok(out)
    }

    fn logits(&self, hidden: &Tensor) -> Result<HostTensor, ModelError> {
        let x = rms_norm(hidden, &self.output_norm, self.config.rms_norm_eps)?;
        let logits = x.matmul(&self.lm_head.t()?)?;
        Ok(HostTensor {
            shape: logits.dims().to_vec(),
            data: logits.flatten_all()?.to_vec1::<f32>()?,
        })
    }

    fn check_input(&self, tokens: &[u32], masking: Masking) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let Some(&id) = tokens
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(ModelError::TokenOutOfRange {
                id,
                vocab_size: self.config.vocab_size,
            });
        }
        if let Masking::Plan { plan, .. } = masking {
            self.config.check_plan(plan)?;
        }
        Ok(())
    }

    /// Hidden states after the last block, `[tokens.len(), hidden]`.
    fn hidden_states(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        masking: Masking,
    ) -> Result<Tensor, ModelError> {
        self.check_input(tokens, masking)?;
        let c = &self.config;
        if cache.layers.len() != c.n_layers {
            return Err(ModelError::CacheMismatch {
                expected: c.n_layers,
                found: cache.layers.len(),
            });
        }
        let pos0 = cache.len;
        let n_new = tokens.len();
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.token_embd.index_select(&ids, 0)?;
        let (cos, sin) = rope_tables(c, pos0, n_new)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let n_keys = pos0 + n_new;
            let mask = attention_mask(c, masking, l, pos0, n_new, n_keys)?;
            let h = rms_norm(&x, &layer.attn_norm, c.rms_norm_eps)?;
            // [n_new, heads * head_dim] → [heads, n_new, head_dim]
            let split = |t: Tensor, heads: usize| -> Result<Tensor, ModelError> {
                Ok(t.reshape((n_new, heads, c.head_dim))?
                    .transpose(0, 1)?
                    .contiguous()?)
            };
            let q = split(h.matmul(&layer.attn_q.t()?)?, c.q_heads)?;
            let k = split(h.matmul(&layer.attn_k.t()?)?, c.kv_heads)?;
            let v = split(h.matmul(&layer.attn_v.t()?)?, c.kv_heads)?;
            let q = rope(&q, &cos, &sin)?;
            let k = rope(&k, &cos, &sin)?;
            let (k, v) = match cache.layers[l].take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?),
                None => (k, v),
            };
            cache.layers[l] = Some((k.clone(), v.clone()));
            // GQA: q_head h reads kv_head h / group (contiguous groups, DESIGN.md §4).
            let g = c.group_size();
            let expand = |t: &Tensor| -> Result<Tensor, ModelError> {
                Ok(t.unsqueeze(1)?
                    .expand((c.kv_heads, g, n_keys, c.head_dim))?
                    .reshape((c.q_heads, n_keys, c.head_dim))?)
            };
            let (k, v) = (expand(&k)?, expand(&v)?);
            let scale = 1.0 / (c.head_dim as f64).sqrt();
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?;
            let probs = softmax_last_dim(&scores)?;
            let attn = probs
                .matmul(&v)?
                .transpose(0, 1)?
                .contiguous()?
                .reshape((n_new, c.q_dim()))?;
            x = (x + attn.matmul(&layer.attn_output.t()?)?)?;
            let h = rms_norm(&x, &layer.ffn_norm, c.rms_norm_eps)?;
            let gate = h.matmul(&layer.ffn_gate.t()?)?.silu()?;
            let up = h.matmul(&layer.ffn_up.t()?)?;
            x = (x + (gate * up)?.matmul(&layer.ffn_down.t()?)?)?;
        }
        cache.len = pos0 + n_new;
        Ok(x)
    }
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    u32::try_from(best).unwrap_or(u32::MAX)
}

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) · weight`, `x` of shape
/// `[rows, hidden]` (any leading dims), `weight` `[hidden]` (Llama's RMSNorm, transformers'
/// `LlamaRMSNorm`). Errors: [`ModelError::Candle`] on a shape mismatch.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor, ModelError> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + f64::from(eps))?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv)?.broadcast_mul(weight)?)
}

/// cos / sin `[n, head_dim/2]` for positions `pos0..pos0+n`: pair `j` rotates by
/// `pos · inv_freq_j` ([`LlamaConfig::rope_inv_freq`]: `theta^(−2j/head_dim)`, then the
/// model's RoPE scaling). Angles are computed in f64, then rounded once.
pub fn rope_tables(c: &LlamaConfig, pos0: usize, n: usize) -> Result<(Tensor, Tensor), ModelError> {
    let half = c.head_dim / 2;
    let inv_freq = c.rope_inv_freq();
    let mut cos = Vec::with_capacity(n * half);
    let mut sin = Vec::with_capacity(n * half);
    for p in pos0..pos0 + n {
        for &inv in &inv_freq {
            let angle = p as f64 * inv;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, half), &Device::Cpu)?,
        Tensor::from_vec(sin, (n, half), &Device::Cpu)?,
    ))
}

/// Half-split RoPE on `[heads, n, head_dim]`: `(x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin)`
/// with `x1 = x[.., :half]`, `x2 = x[.., half:]` (Hugging Face `rotate_half`).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, ModelError> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let a = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let b = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Ok(Tensor::cat(&[&a, &b], D::Minus1)?)
}

/// Additive mask `[q_heads, n_new, n_keys]`: 0 where the key is kept, −∞ elsewhere.
fn attention_mask(
    c: &LlamaConfig,
    masking: Masking,
    layer: usize,
    pos0: usize,
    n_new: usize,
    n_keys: usize,
) -> Result<Tensor, ModelError> {
    let mut m = Vec::with_capacity(c.q_heads * n_new * n_keys);
    for h in 0..c.q_heads {
        // The head's window once, not per entry (a 4k prompt has 16M entries per head).
        let window = match masking {
            Masking::Dense => None,
            Masking::Plan { plan, n_tokens } => Some(plan.window(layer, h, n_tokens)),
        };
        for i in 0..n_new {
            let q_pos = (pos0 + i) as u64;
            for k in 0..n_keys {
                let keep = match &window {
                    None => k as u64 <= q_pos,
                    Some(w) => w.keeps(q_pos, k as u64),
                };
                m.push(if keep { 0.0 } else { f32::NEG_INFINITY });
            }
        }
    }
    Ok(Tensor::from_vec(
        m,
        (c.q_heads, n_new, n_keys),
        &Device::Cpu,
    )?)
}

/// Softmax over the last dimension (max-subtracted). Every row keeps at least one key: a
/// plan span is ≥ 1 (plan validation: `min_span_tokens` ≥ 1), so no row is all −∞.
fn softmax_last_dim(x: &Tensor) -> Result<Tensor, ModelError> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}
