//! The Llama forward pass again, written for gradients: the same building blocks as the CPU
//! reference (`model::reference`: RMSNorm, half-split RoPE, GQA, SwiGLU), but split so that
//! one layer can be recomputed from its input, and with the attention probabilities of a
//! chunk of query heads exposed as a tensor whose gradient G = ∂L/∂A candle returns.
//!
//! Memory stays bounded by one layer: the forward pass keeps only the hidden state entering
//! each layer (`[T, hidden]` per layer, no graph); the backward walk recomputes one layer
//! at a time, and within a layer one KV group of query heads at a time, so at most
//! `group · T²` attention values (plus candle's intermediates for them) are alive at once.
//!
//! Every tensor lives on the model's [`Device`]: the CPU, or with the `cuda` feature an
//! NVIDIA GPU ([`GradModel::new_on`]); the walk is the same on both.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::ops::Range;

use candle_core::{DType, Device, Tensor, Var, D};

use crate::model::reference::{argmax, rms_norm, rope, rope_tables, LayerTensors};
use crate::model::{HostTensor, LlamaConfig, ModelError, Weights};
use crate::plan::{HeadWindow, Plan};

/// A model whose weights are constants (no weight gradients are ever built) in `dtype`
/// (f32 for profiling; f64 lets tests compare against finite differences tightly).
pub struct GradModel {
    /// The model's shapes.
    pub config: LlamaConfig,
    /// The dtype of every weight and activation (f32 or f64).
    pub dtype: DType,
    /// Where every tensor lives.
    pub device: Device,
    /// Byte budget of one forward step's attention values ([`GradModel::head_chunks`];
    /// default [`ATTN_CHUNK_BYTES`]).
    pub attn_chunk_bytes: usize,
    token_embd: Tensor,
    layers: Vec<LayerTensors>,
    output_norm: Tensor,
    lm_head: Tensor,
}

/// One supervised sequence: `tokens` = prompt + response; the loss is the mean
/// cross-entropy of predicting `tokens[response.start..response.end]`.
#[derive(Clone, Debug)]
pub struct LossSpan<'a> {
    /// The whole sequence (prompt then response), T tokens.
    pub tokens: &'a [u32],
    /// The response's token positions in `tokens`: the loss is taken on these.
    pub response: Range<usize>,
}

/// Per-head attention probabilities and their gradients for one layer, host side:
/// `[q_heads][T·T]` row-major (query row, key column), in f32.
pub struct LayerAttention {
    /// `[q_heads][T·T]`: the attention probabilities A (causal, so the upper triangle is 0).
    pub probs: Vec<Vec<f32>>,
    /// `[q_heads][T·T]`: G = ∂L/∂A, the loss gradient with respect to each probability.
    pub grads: Vec<Vec<f32>>,
}

/// Most bytes of attention values (`[heads, T, T]`) one forward step computes at once
/// ([`GradModel::head_chunks`]).
pub const ATTN_CHUNK_BYTES: usize = 1 << 30;

/// A deliberate change of one attention row, for the finite-difference tests: in `layer`,
/// `q_head`, row `query`, entry `key` is scaled by `(1 − t)` and the row renormalised.
#[derive(Clone, Copy, Debug)]
pub struct AttnEdit {
    /// Layer index (0-based).
    pub layer: usize,
    /// Query head index within the layer (0-based).
    pub q_head: usize,
    /// The query row (token position).
    pub query: usize,
    /// The key column (token position, ≤ `query`).
    pub key: usize,
    /// The fraction of the entry removed: `A_ij` becomes `A_ij · (1 − t)` before the row is
    /// renormalised.
    pub t: f64,
}

/// A block of one head's attention removed on purpose (diagnosis ablations): in `layer`,
/// `q_head`, the entries of query rows `rows` on keys `keys` are zeroed and each row is
/// renormalised, as a sparse mask that drops those keys would do.
#[derive(Clone, Debug)]
pub struct HeadMask {
    /// Layer index (0-based).
    pub layer: usize,
    /// Query head index within the layer (0-based).
    pub q_head: usize,
    /// The query rows (token positions) whose entries are zeroed.
    pub rows: Range<usize>,
    /// The key columns (token positions) zeroed in those rows.
    pub keys: Range<usize>,
}

fn host(t: &HostTensor, dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
    Ok(
        Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)?,
    )
}

/// Softmax over the last dimension; the max is detached because a constant shift changes
/// neither the value nor the gradient (and it keeps a reduction out of the graph).
fn softmax(x: &Tensor) -> Result<Tensor, ModelError> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}

/// [`host`] taking the tensor: on the CPU in f32 its buffer becomes the tensor's, so the
/// weights are held once, not twice.
fn owned(t: HostTensor, dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
    Ok(Tensor::from_vec(t.data, t.shape.as_slice(), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// One layer's [`LayerTensors`] from a loaded layer `$l`, each tensor through `$conv`;
/// `&` after the comma borrows the fields (the copying constructor), none moves them
/// (the consuming one): both constructors name the nine tensors once.
macro_rules! layer_tensors {
    ($conv:expr, $l:ident, $($amp:tt)?) => {
        LayerTensors {
            attn_norm: $conv($($amp)? $l.attn_norm)?,
            attn_q: $conv($($amp)? $l.attn_q)?,
            attn_k: $conv($($amp)? $l.attn_k)?,
            attn_v: $conv($($amp)? $l.attn_v)?,
            attn_output: $conv($($amp)? $l.attn_output)?,
            ffn_norm: $conv($($amp)? $l.ffn_norm)?,
            ffn_gate: $conv($($amp)? $l.ffn_gate)?,
            ffn_up: $conv($($amp)? $l.ffn_up)?,
            ffn_down: $conv($($amp)? $l.ffn_down)?,
        }
    };
}

impl GradModel {
    /// [`GradModel::new_on`] consuming the weights, each tensor released once it is on
    /// `device`: on the CPU in f32 the loader's buffers are the profiler's (no copy), so
    /// `moa profile` of a GGUF holds its f32 weights once. Why: with [`GradModel::new_on`]
    /// and the loaded copy dropped only afterwards, a profile's peak was about twice
    /// the f32 weights (349 MB for 121 MB of a Q4_K_M file, round 35), past what the
    /// load's memory check (`model::check_load_memory`, one f32 copy) had let through.
    pub fn from_weights(
        config: LlamaConfig,
        weights: Weights,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let host = |t: HostTensor| owned(t, dtype, device);
        let Weights {
            token_embd,
            layers,
            output_norm,
            output,
        } = weights;
        let token_embd = host(token_embd)?;
        let lm_head = match output {
            Some(o) => host(o)?,
            None => token_embd.clone(),
        };
        let layers = layers
            .into_iter()
            .map(|l| Ok(layer_tensors!(host, l,)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        let output_norm = host(output_norm)?;
        Ok(Self::assemble(
            config,
            dtype,
            device,
            token_embd,
            layers,
            output_norm,
            lm_head,
        ))
    }

    /// Copies the weights (the caller may still need them for generation), on the CPU.
    pub fn new(config: LlamaConfig, weights: &Weights, dtype: DType) -> Result<Self, ModelError> {
        Self::new_on(config, weights, dtype, &Device::Cpu)
    }

    /// Copies the weights to `device` (a CUDA device needs the `cuda` feature:
    /// [`crate::profile::device`]).
    pub fn new_on(
        config: LlamaConfig,
        weights: &Weights,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let host = |t: &HostTensor, dtype: DType| host(t, dtype, device);
        let token_embd = host(&weights.token_embd, dtype)?;
        let lm_head = match &weights.output {
            Some(o) => host(o, dtype)?,
            None => token_embd.clone(),
        };
        let conv = |t: &HostTensor| host(t, dtype);
        let layers = weights
            .layers
            .iter()
            .map(|l| Ok(layer_tensors!(conv, l, &)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        let output_norm = host(&weights.output_norm, dtype)?;
        Ok(Self::assemble(
            config,
            dtype,
            device,
            token_embd,
            layers,
            output_norm,
            lm_head,
        ))
    }

    /// The model from its converted tensors (both constructors' last step).
    fn assemble(
        config: LlamaConfig,
        dtype: DType,
        device: &Device,
        token_embd: Tensor,
        layers: Vec<LayerTensors>,
        output_norm: Tensor,
        lm_head: Tensor,
    ) -> Self {
        GradModel {
            output_norm,
            config,
            dtype,
            device: device.clone(),
            attn_chunk_bytes: ATTN_CHUNK_BYTES,
            token_embd,
            layers,
            lm_head,
        }
    }

    /// Shared per-sequence constants: RoPE tables and the causal additive mask `[T, T]`
    /// (built on the device: 256 MB at T = 8192 in f32).
    pub fn context(&self, n: usize) -> Result<SeqContext, ModelError> {
        self.context_under(n, None)
    }

    /// [`GradModel::context`] with every head restricted to a plan's window
    /// ([`PlanMasks`]): the forward pass, the loss and the gradients are then those of the
    /// model under that plan. Each distinct window's additive mask `[T, T]` is built once,
    /// on the device (a handful per plan: 64 MB each at T = 4096 in f32).
    pub fn context_under(
        &self,
        n: usize,
        masks: Option<&PlanMasks>,
    ) -> Result<SeqContext, ModelError> {
        let dev = &self.device;
        let (cos, sin) = rope_tables(&self.config, 0, n)?;
        let pos = Tensor::arange(0u32, n as u32, dev)?;
        let causal = pos.unsqueeze(1)?.broadcast_ge(&pos.unsqueeze(0)?)?;
        let zeros = Tensor::zeros((n, n), self.dtype, dev)?;
        let minus_inf = Tensor::full(f32::NEG_INFINITY, (n, n), dev)?.to_dtype(self.dtype)?;
        let plan = match masks {
            None => None,
            Some(m) => {
                let c = &self.config;
                if m.windows.len() != c.n_layers || m.windows.iter().any(|l| l.len() != c.q_heads) {
                    return Err(ModelError::Format {
                        path: "<plan masks>".into(),
                        message: format!(
                            "plan masks for {} layers × {:?} heads, but the model has {} layers × {} query heads",
                            m.windows.len(),
                            m.windows.first().map(Vec::len),
                            c.n_layers,
                            c.q_heads
                        ),
                    });
                }
                // Keys and queries as exact small integers in f32 (T < 2^24).
                let p = pos.to_dtype(DType::F32)?;
                let diff = p.unsqueeze(1)?.broadcast_sub(&p.unsqueeze(0)?)?;
                let key = p.unsqueeze(0)?.broadcast_as((n, n))?.contiguous()?;
                let mut by_window = HashMap::new();
                for w in m.windows.iter().flatten() {
                    if by_window.contains_key(&(w.sink, w.window)) {
                        continue;
                    }
                    if w.sink == 0 && w.window == 0 {
                        return Err(ModelError::Format {
                            path: "<plan masks>".into(),
                            message: "a head keeps no key (span 0): every row would be empty"
                                .into(),
                        });
                    }
                    // HeadWindow::keeps: k ≤ q and (k < sink or q − k < window).
                    let near = diff.lt(f64::from(w.window))?.to_dtype(DType::F32)?;
                    let sink = key.lt(f64::from(w.sink))?.to_dtype(DType::F32)?;
                    let causal = diff.ge(0.0)?.to_dtype(DType::F32)?;
                    let keep = ((near + sink)?.minimum(1.0)? * causal)?.ge(0.5)?;
                    by_window.insert((w.sink, w.window), keep.where_cond(&zeros, &minus_inf)?);
                }
                Some(PlanContext {
                    windows: m.windows.clone(),
                    by_window,
                })
            }
        };
        Ok(SeqContext {
            cos: cos.to_dtype(self.dtype)?.to_device(dev)?,
            sin: sin.to_dtype(self.dtype)?.to_device(dev)?,
            mask: causal.where_cond(&zeros, &minus_inf)?,
            n,
            plan,
        })
    }

    /// The additive mask `[c, T, T]` (0 kept, −∞ removed) of query heads `heads` of layer
    /// `l` under the context's plan, or `None` without a plan.
    fn plan_mask(
        &self,
        l: usize,
        heads: Range<usize>,
        ctx: &SeqContext,
    ) -> Result<Option<Tensor>, ModelError> {
        let Some(p) = &ctx.plan else {
            return Ok(None);
        };
        let per_head = heads
            .map(|h| {
                let w = p.windows[l][h];
                p.by_window
                    .get(&(w.sink, w.window))
                    .ok_or_else(|| missing("a plan window's mask"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Tensor::stack(&per_head, 0)?))
    }

    /// Scaled scores `q·kᵀ/√d` `[c, T, T]`, no mask.
    fn scores(&self, q: &Tensor, k: &Tensor) -> Result<Tensor, ModelError> {
        let scale = 1.0 / (self.config.head_dim as f64).sqrt();
        Ok((q.matmul(&k.t()?)? * scale)?)
    }

    /// The attention the model uses for query heads `heads` of layer `l`: the causal
    /// softmax, or under a plan the softmax over each head's kept keys (which equals the
    /// causal row with the removed entries zeroed and renormalised).
    fn probs_used(
        &self,
        l: usize,
        heads: Range<usize>,
        q: &Tensor,
        k: &Tensor,
        ctx: &SeqContext,
    ) -> Result<Tensor, ModelError> {
        match self.plan_mask(l, heads, ctx)? {
            None => self.probs(q, k, ctx),
            Some(m) => softmax(&self.scores(q, k)?.broadcast_add(&m)?),
        }
    }

    /// The token embeddings `[T, hidden]`.
    pub fn embed(&self, tokens: &[u32]) -> Result<Tensor, ModelError> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(ModelError::TokenOutOfRange {
                id,
                vocab_size: c.vocab_size,
            });
        }
        let ids = Tensor::new(tokens, &self.device)?;
        Ok(self.token_embd.index_select(&ids, 0)?)
    }

    /// Q (query heads `heads`), and K, V expanded to those heads, each `[c, T, head_dim]`,
    /// from the normed input `h` `[T, hidden]`.
    fn qkv(
        &self,
        l: usize,
        h: &Tensor,
        heads: Range<usize>,
        ctx: &SeqContext,
    ) -> Result<(Tensor, Tensor, Tensor), ModelError> {
        let c = &self.config;
        let layer = &self.layers[l];
        let (n, d) = (ctx.n, c.head_dim);
        let nh = heads.len();
        let g = c.group_size();
        let split = |t: Tensor, heads: usize| -> Result<Tensor, ModelError> {
            Ok(t.reshape((n, heads, d))?.transpose(0, 1)?.contiguous()?)
        };
        let wq = layer.attn_q.narrow(0, heads.start * d, nh * d)?;
        let q = rope(&split(h.matmul(&wq.t()?)?, nh)?, &ctx.cos, &ctx.sin)?;
        // The KV heads these query heads read (contiguous groups, docs/DESIGN.md §4).
        let kv0 = heads.start / g;
        let kv1 = (heads.end - 1) / g + 1;
        let wk = layer.attn_k.narrow(0, kv0 * d, (kv1 - kv0) * d)?;
        let wv = layer.attn_v.narrow(0, kv0 * d, (kv1 - kv0) * d)?;
        let k = rope(&split(h.matmul(&wk.t()?)?, kv1 - kv0)?, &ctx.cos, &ctx.sin)?;
        let v = split(h.matmul(&wv.t()?)?, kv1 - kv0)?;
        let pick = |t: &Tensor| -> Result<Tensor, ModelError> {
            let idx: Vec<u32> = heads.clone().map(|qh| (qh / g - kv0) as u32).collect();
            let idx = Tensor::new(idx.as_slice(), &self.device)?;
            Ok(t.index_select(&idx, 0)?)
        };
        Ok((q, pick(&k)?, pick(&v)?))
    }

    /// Attention probabilities `[c, T, T]` of query heads `heads`.
    fn probs(&self, q: &Tensor, k: &Tensor, ctx: &SeqContext) -> Result<Tensor, ModelError> {
        let scale = 1.0 / (self.config.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&ctx.mask)?;
        softmax(&scores)
    }

    /// `[c, T, d]` per-head outputs → `[T, c·d]`.
    fn merge(o: &Tensor, n: usize) -> Result<Tensor, ModelError> {
        let (c, _, d) = o.dims3()?;
        Ok(o.transpose(0, 1)?.contiguous()?.reshape((n, c * d))?)
    }

    /// Everything after the attention output `o` `[T, q_dim]`: output projection, residual,
    /// MLP block.
    fn layer_tail(&self, l: usize, x: &Tensor, o: &Tensor) -> Result<Tensor, ModelError> {
        let c = &self.config;
        let layer = &self.layers[l];
        let y = (x + o.matmul(&layer.attn_output.t()?)?)?;
        let h = rms_norm(&y, &layer.ffn_norm, c.rms_norm_eps)?;
        let gate = h.matmul(&layer.ffn_gate.t()?)?.silu()?;
        let up = h.matmul(&layer.ffn_up.t()?)?;
        Ok((&y + (gate * up)?.matmul(&layer.ffn_down.t()?)?)?)
    }

    /// One decoder layer, optionally with one attention row edited (see [`AttnEdit`]).
    pub fn layer_forward(
        &self,
        l: usize,
        x: &Tensor,
        ctx: &SeqContext,
        edit: Option<AttnEdit>,
    ) -> Result<Tensor, ModelError> {
        let c = &self.config;
        let h = rms_norm(x, &self.layers[l].attn_norm, c.rms_norm_eps)?;
        let o = self.attention_output(l, &h, ctx, edit)?;
        self.layer_tail(l, x, &o)
    }

    /// The attention output `[T, q_dim]` of layer `l` from its normed input `h`, computed
    /// in the head chunks of [`GradModel::head_chunks`] (the forward pass and the first
    /// step of [`GradModel::layer_backward_groups`] both use it, so neither holds every
    /// head's `[T, T]` values at once), optionally with one row edited.
    fn attention_output(
        &self,
        l: usize,
        h: &Tensor,
        ctx: &SeqContext,
        edit: Option<AttnEdit>,
    ) -> Result<Tensor, ModelError> {
        let mut outs = Vec::new();
        for heads in self.head_chunks(ctx.n) {
            let (q, k, v) = self.qkv(l, h, heads.clone(), ctx)?;
            let mut a = self.probs_used(l, heads.clone(), &q, &k, ctx)?;
            if let Some(e) = edit.filter(|e| e.layer == l && heads.contains(&e.q_head)) {
                let local = AttnEdit {
                    q_head: e.q_head - heads.start,
                    ..e
                };
                a = edit_row(&a, local, ctx.n)?;
            }
            outs.push(Self::merge(&a.matmul(&v)?, ctx.n)?);
        }
        Ok(Tensor::cat(&outs, 1)?)
    }

    /// Query-head ranges of whole KV groups, in order, whose `[heads, T, T]` attention
    /// values take at most `attn_chunk_bytes` (one group when a group alone is larger):
    /// the forward pass holds a few such tensors at a time, not every head's. All heads at
    /// once ran the H200 out of memory for a Llama-2-7B shape at T = 8192 (32 heads ×
    /// 8192² × 4 B = 8.6 GB per copy; benches/RESULTS.md, "Perplexity").
    pub fn head_chunks(&self, n: usize) -> Vec<Range<usize>> {
        let bytes = self.attn_chunk_bytes;
        let c = &self.config;
        let g = c.group_size().max(1);
        let group_bytes = (g * n * n * self.dtype.size_in_bytes()).max(1);
        let groups = (bytes / group_bytes).clamp(1, c.kv_heads.max(1));
        (0..c.q_heads)
            .step_by(groups * g)
            .map(|h0| h0..(h0 + groups * g).min(c.q_heads))
            .collect()
    }

    /// The loss with some attention entries removed ([`HeadMask`]), no gradients.
    pub fn loss_masked(&self, span: &LossSpan, masks: &[HeadMask]) -> Result<f64, ModelError> {
        self.loss_windows(span, &|_, _| None, masks)
    }

    /// The loss with head (l, h) restricted to `window(l, h)` (`None`: dense) and the
    /// entries of `masks` removed; removed entries are zeroed and each row renormalised,
    /// which equals a softmax over the kept keys. No gradients.
    pub fn loss_windows(
        &self,
        span: &LossSpan,
        window: &dyn Fn(usize, usize) -> Option<HeadWindow>,
        masks: &[HeadMask],
    ) -> Result<f64, ModelError> {
        let c = &self.config;
        let n = span.tokens.len();
        let ctx = self.context(n)?;
        let mut x = self.embed(span.tokens)?;
        for l in 0..self.layers.len() {
            let h = rms_norm(&x, &self.layers[l].attn_norm, c.rms_norm_eps)?;
            let (q, k, v) = self.qkv(l, &h, 0..c.q_heads, &ctx)?;
            let mut a = self.probs(&q, &k, &ctx)?;
            let here: Vec<&HeadMask> = masks.iter().filter(|m| m.layer == l).collect();
            let windows: Vec<Option<HeadWindow>> = (0..c.q_heads).map(|hd| window(l, hd)).collect();
            if !here.is_empty() || windows.iter().any(Option::is_some) {
                let mut keep = vec![1.0f32; c.q_heads * n * n];
                for (hd, w) in windows.iter().enumerate() {
                    let Some(w) = w else { continue };
                    for r in 0..n {
                        let row = &mut keep[(hd * n + r) * n..(hd * n + r + 1) * n];
                        for (kk, v) in row.iter_mut().enumerate().take(r + 1) {
                            if !w.keeps(r as u64, kk as u64) {
                                *v = 0.0;
                            }
                        }
                    }
                }
                for m in here {
                    for r in m.rows.clone().filter(|&r| r < n) {
                        for kk in m.keys.clone().filter(|&kk| kk <= r) {
                            keep[(m.q_head * n + r) * n + kk] = 0.0;
                        }
                    }
                }
                let keep = Tensor::from_vec(keep, (c.q_heads, n, n), &Device::Cpu)?
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?;
                let kept = (a * keep)?;
                // A row whose every entry was removed keeps nothing: guard the division.
                let sum = (kept.sum_keepdim(D::Minus1)? + 1e-30)?;
                a = kept.broadcast_div(&sum)?;
            }
            let o = Self::merge(&a.matmul(&v)?, n)?;
            x = self.layer_tail(l, &x, &o)?;
        }
        Ok(self
            .response_loss(&x, span)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    }

    /// The hidden state entering every layer, plus the final one: `L + 1` tensors `[T, hidden]`
    /// with no graph attached.
    pub fn forward_inputs(
        &self,
        tokens: &[u32],
        ctx: &SeqContext,
        edit: Option<AttnEdit>,
    ) -> Result<Vec<Tensor>, ModelError> {
        let mut xs = Vec::with_capacity(self.layers.len() + 1);
        let mut x = self.embed(tokens)?;
        for l in 0..self.layers.len() {
            let next = self.layer_forward(l, &x, ctx, edit)?;
            xs.push(x);
            x = next;
        }
        xs.push(x);
        Ok(xs)
    }

    /// Mean cross-entropy over the response tokens, from the last hidden state.
    pub fn response_loss(&self, x_last: &Tensor, span: &LossSpan) -> Result<Tensor, ModelError> {
        let r = &span.response;
        if r.start == 0 || r.end <= r.start || r.end > span.tokens.len() {
            return Err(ModelError::Format {
                path: "<calibration sample>".into(),
                message: format!(
                    "response span {}..{} does not fit a sequence of {} tokens after a \
                     non-empty prompt",
                    r.start,
                    r.end,
                    span.tokens.len()
                ),
            });
        }
        // Position p predicts token p + 1: the response tokens are predicted by the rows
        // start−1 .. end−1 (only those rows go through the vocabulary projection).
        let rows = x_last.narrow(0, r.start - 1, r.len())?;
        let h = rms_norm(&rows, &self.output_norm, self.config.rms_norm_eps)?;
        let logits = h.matmul(&self.lm_head.t()?)?;
        let max = logits.max_keepdim(D::Minus1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let logp = shifted.broadcast_sub(&lse)?;
        let targets: Vec<u32> = span.tokens[r.clone()].to_vec();
        let idx = Tensor::new(targets.as_slice(), &self.device)?.unsqueeze(1)?;
        let picked = logp.gather(&idx, 1)?;
        Ok((picked.sum_all()? * (-1.0 / r.len() as f64))?)
    }

    /// The loss of a whole sequence, no gradients (with an optional attention edit).
    pub fn loss(&self, span: &LossSpan, edit: Option<AttnEdit>) -> Result<f64, ModelError> {
        let ctx = self.context(span.tokens.len())?;
        let xs = self.forward_inputs(span.tokens, &ctx, edit)?;
        let last = xs.last().ok_or(ModelError::EmptyInput)?;
        Ok(self
            .response_loss(last, span)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    }

    /// dL/dx of the last hidden state, and the loss.
    pub fn top_grad(&self, x_last: &Tensor, span: &LossSpan) -> Result<(Tensor, f64), ModelError> {
        let x = Var::from_tensor(x_last)?;
        let loss = self.response_loss(x.as_tensor(), span)?;
        let grads = loss.backward()?;
        let g = grad_of(&grads, &x, "last hidden")?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        Ok((g, value))
    }

    /// The backward step through layer `l`: given its input `x` and the gradient arriving
    /// at its output, returns the gradient at its input and every head's A and G (on the
    /// host; [`GradModel::layer_backward_groups`] leaves them on the device).
    pub fn layer_backward(
        &self,
        l: usize,
        x_in: &Tensor,
        grad_out: &Tensor,
        ctx: &SeqContext,
    ) -> Result<(Tensor, LayerAttention), ModelError> {
        let mut probs = Vec::with_capacity(self.config.q_heads);
        let mut gs = Vec::with_capacity(self.config.q_heads);
        let gx = self.layer_backward_groups(l, x_in, grad_out, ctx, &mut |heads, a, g| {
            let a = a.to_dtype(DType::F32)?;
            let g = g.to_dtype(DType::F32)?;
            for i in 0..heads.len() {
                probs.push(a.get(i)?.flatten_all()?.to_vec1::<f32>()?);
                gs.push(g.get(i)?.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok(())
        })?;
        Ok((gx, LayerAttention { probs, grads: gs }))
    }

    /// [`GradModel::layer_backward`] with each KV group's A and G `[group, T, T]` (model
    /// dtype, on the model's device) given to `visit(query heads, A, G)` as soon as they
    /// exist, so that nothing of size T² has to leave the device.
    ///
    /// Two recomputations. (1) The attention output O is a leaf: back-propagating
    /// `sum(out · grad_out)` gives ∂L/∂O and the residual/MLP part of ∂L/∂x. (2) Per KV group
    /// of query heads, A is recomputed from x (a `Var`) and a zero `Var` Z is added to it, so
    /// `O_c = (A + Z)·V` has the same value while ∂L/∂Z = ∂L/∂A = G; back-propagating
    /// `sum(O_c · ∂L/∂O_c)` also gives this group's part of ∂L/∂x through Q, K and V.
    pub fn layer_backward_groups(
        &self,
        l: usize,
        x_in: &Tensor,
        grad_out: &Tensor,
        ctx: &SeqContext,
        visit: &mut GroupVisit,
    ) -> Result<Tensor, ModelError> {
        let c = &self.config;
        let n = ctx.n;
        // (1) Tail with O as a leaf. O in head chunks, as in the forward pass: all heads at
        // once held every head's [T, T] scores, softmax and its temporaries together, which
        // ran the H200 out of memory for a Llama-2-7B shape at T = 8192 after the forward
        // pass itself was chunked (benches/RESULTS.md, issue 9 session 7).
        let h = rms_norm(x_in, &self.layers[l].attn_norm, c.rms_norm_eps)?;
        let o = self.attention_output(l, &h, ctx, None)?;
        let x = Var::from_tensor(x_in)?;
        let o = Var::from_tensor(&o)?;
        let out = self.layer_tail(l, x.as_tensor(), o.as_tensor())?;
        let grads = (out * grad_out)?.sum_all()?.backward()?;
        let mut gx = grad_of(&grads, &x, "x")?;
        let go = grad_of(&grads, &o, "O")?;
        drop(grads);

        // (2) One KV group at a time.
        let g = c.group_size();
        let d = c.head_dim;
        for kv in 0..c.kv_heads {
            let heads = kv * g..(kv + 1) * g;
            let x = Var::from_tensor(x_in)?;
            let h = rms_norm(x.as_tensor(), &self.layers[l].attn_norm, c.rms_norm_eps)?;
            let (q, k, v) = self.qkv(l, &h, heads.clone(), ctx)?;
            // Under a plan the masked rows enter the output (and so the gradients), while
            // the influence is given the causal rows P of the same scores: with G taken at
            // the plan, the cut formula on P is the first-order change of moving a head's
            // window from the plan's to any other (docs/CALIBRATION.md, "Cost under the plan").
            let (a, p) = match self.plan_mask(l, heads.clone(), ctx)? {
                None => (self.probs(&q, &k, ctx)?, None),
                Some(m) => {
                    let s = self.scores(&q, &k)?;
                    let p = softmax(&s.broadcast_add(&ctx.mask)?)?.detach();
                    (softmax(&s.broadcast_add(&m)?)?, Some(p))
                }
            };
            let z = Var::zeros((g, n, n), self.dtype, &self.device)?;
            let oc = Self::merge(&(&a + z.as_tensor())?.matmul(&v)?, n)?;
            let goc = go.narrow(1, heads.start * d, g * d)?;
            let grads = (oc * goc)?.sum_all()?.backward()?;
            gx = (gx + grad_of(&grads, &x, "x")?)?;
            let gz = grad_of(&grads, &z, "A")?;
            drop(grads);
            let p = match p {
                Some(p) => p,
                None => a.detach(),
            };
            drop(a);
            visit(heads, &p, &gz)?;
        }
        Ok(gx)
    }

    /// Greedy continuation of `prompt` by the dense model: at most `max_new` tokens,
    /// stopping before a token of `stop` (which is not returned), as
    /// `CpuReference::generate` does. The prompt is prefilled once keeping every layer's
    /// K and V (expanded to the query heads, `[q_heads, T, head_dim]`), then one token at a
    /// time attends to them: meant for calibration answers on a GPU
    /// (`moa calib --device cuda`), where the CPU reference's KV cache is not available.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: &[u32],
    ) -> Result<Vec<u32>, ModelError> {
        let c = &self.config;
        let mut out = Vec::with_capacity(max_new);
        if max_new == 0 {
            return Ok(out);
        }
        let ctx = self.context(prompt.len())?;
        let mut x = self.embed(prompt)?;
        let mut cache = Vec::with_capacity(self.layers.len());
        for l in 0..self.layers.len() {
            let h = rms_norm(&x, &self.layers[l].attn_norm, c.rms_norm_eps)?;
            let (q, k, v) = self.qkv(l, &h, 0..c.q_heads, &ctx)?;
            let o = Self::merge(&self.probs(&q, &k, &ctx)?.matmul(&v)?, ctx.n)?;
            x = self.layer_tail(l, &x, &o)?;
            cache.push((k, v));
        }
        drop(ctx);
        let mut last = x.narrow(0, prompt.len() - 1, 1)?;
        let mut pos = prompt.len();
        loop {
            let h = rms_norm(&last, &self.output_norm, c.rms_norm_eps)?;
            let logits = h
                .matmul(&self.lm_head.t()?)?
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            let next = argmax(&logits);
            if stop.contains(&next) {
                break;
            }
            out.push(next);
            if out.len() == max_new {
                break;
            }
            // One new position: RoPE at `pos`, every cached key visible.
            let (cos, sin) = rope_tables(c, pos, 1)?;
            let step = SeqContext {
                cos: cos.to_dtype(self.dtype)?.to_device(&self.device)?,
                sin: sin.to_dtype(self.dtype)?.to_device(&self.device)?,
                mask: Tensor::zeros((1, pos + 1), self.dtype, &self.device)?,
                n: 1,
                plan: None,
            };
            let mut x = self.embed(&[next])?;
            for (l, kv) in cache.iter_mut().enumerate() {
                let h = rms_norm(&x, &self.layers[l].attn_norm, c.rms_norm_eps)?;
                let (q, k, v) = self.qkv(l, &h, 0..c.q_heads, &step)?;
                kv.0 = Tensor::cat(&[&kv.0, &k], 1)?;
                kv.1 = Tensor::cat(&[&kv.1, &v], 1)?;
                let o = Self::merge(&self.probs(&q, &kv.0, &step)?.matmul(&kv.1)?, 1)?;
                x = self.layer_tail(l, &x, &o)?;
            }
            last = x;
            pos += 1;
        }
        Ok(out)
    }

    /// The reference for the walk: one autograd pass over the whole model with a zero `Var`
    /// added to every layer's A. Memory grows with `L · H · T²`: for tests on small models.
    pub fn full_autograd(&self, span: &LossSpan) -> Result<Vec<LayerAttention>, ModelError> {
        let c = &self.config;
        let n = span.tokens.len();
        let ctx = self.context(n)?;
        let mut x = self.embed(span.tokens)?;
        let mut alls = Vec::new();
        for l in 0..self.layers.len() {
            let h = rms_norm(&x, &self.layers[l].attn_norm, c.rms_norm_eps)?;
            let (q, k, v) = self.qkv(l, &h, 0..c.q_heads, &ctx)?;
            let a = self.probs(&q, &k, &ctx)?;
            let z = Var::zeros((c.q_heads, n, n), self.dtype, &self.device)?;
            let o = Self::merge(&(&a + z.as_tensor())?.matmul(&v)?, n)?;
            x = self.layer_tail(l, &x, &o)?;
            alls.push((a.detach(), z));
        }
        let loss = self.response_loss(&x, span)?;
        let grads = loss.backward()?;
        alls.into_iter()
            .map(|(a, z)| {
                let gz = grads.get(z.as_tensor()).ok_or(missing("A"))?;
                let a = a.to_dtype(DType::F32)?;
                let gz = gz.to_dtype(DType::F32)?;
                let mut probs = Vec::new();
                let mut gs = Vec::new();
                for i in 0..c.q_heads {
                    probs.push(a.get(i)?.flatten_all()?.to_vec1::<f32>()?);
                    gs.push(gz.get(i)?.flatten_all()?.to_vec1::<f32>()?);
                }
                Ok(LayerAttention { probs, grads: gs })
            })
            .collect()
    }
}

/// What [`GradModel::layer_backward_groups`] gives each KV group to: (its query heads,
/// A, G), both `[group, T, T]` on the model's device.
pub type GroupVisit<'a> = dyn FnMut(Range<usize>, &Tensor, &Tensor) -> Result<(), ModelError> + 'a;

/// Per-sequence constants of [`GradModel`].
pub struct SeqContext {
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
    /// The sequence length T, in tokens (1 for a decode step).
    pub n: usize,
    /// The plan every head is restricted to ([`GradModel::context_under`]), if any.
    plan: Option<PlanContext>,
}

/// A plan's windows at one sequence length, `[layer][q_head]` (`Plan::window` at N): what
/// [`GradModel::context_under`] masks with, so that the profile is taken under that plan.
#[derive(Clone, Debug)]
pub struct PlanMasks {
    /// `[layer][q_head]`: each head's sink + window at the profiled length.
    pub windows: Vec<Vec<HeadWindow>>,
}

impl PlanMasks {
    /// Every head's window of `plan` at `n_tokens` (the profiled length: the optimizer
    /// prices a rule by its span at that N, so the plan is applied at the same N).
    pub fn from_plan(plan: &Plan, n_tokens: u32) -> Self {
        let m = plan.model();
        PlanMasks {
            windows: (0..m.layers as usize)
                .map(|l| {
                    (0..m.q_heads as usize)
                        .map(|h| plan.window(l, h, n_tokens))
                        .collect()
                })
                .collect(),
        }
    }
}

/// [`PlanMasks`] with each distinct window's additive mask on the device.
struct PlanContext {
    windows: Vec<Vec<HeadWindow>>,
    by_window: HashMap<(u32, u32), Tensor>,
}

/// The gradient of `var`, detached. candle detaches the gradients it passes between nodes
/// but not the sums it leaves for variables: the sum for x through RMSNorm (x·inv, x²) is
/// built from tensors that depend on x, so it carries the graph of this step and, through
/// it, copies of `[T, hidden]` intermediates. Kept as the gradient entering the next
/// layer, that graph grew by every KV group (about 11 `[T, hidden]` tensors each), and the
/// next layer's backward walked it again: out of memory for a Llama-2-7B shape at
/// T = 8192 (32 groups × 11 × 128 MB per layer; benches/RESULTS.md, issue 9 session 8).
fn grad_of(
    grads: &candle_core::backprop::GradStore,
    var: &Var,
    what: &str,
) -> Result<Tensor, ModelError> {
    Ok(grads.get(var.as_tensor()).ok_or(missing(what))?.detach())
}

fn missing(what: &str) -> ModelError {
    ModelError::Format {
        path: "<autograd>".into(),
        message: format!("backward pass produced no gradient for {what}"),
    }
}

/// `a` `[H, T, T]` with row `e.query` of head `e.q_head` replaced by the renormalised row
/// in which entry `e.key` is scaled by `1 − t`.
fn edit_row(a: &Tensor, e: AttnEdit, n: usize) -> Result<Tensor, ModelError> {
    let dtype = a.dtype();
    let mut v = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let row = (e.q_head * n + e.query) * n;
    let aij = v[row + e.key];
    let norm = 1.0 - e.t * aij;
    for j in 0..n {
        v[row + j] /= norm;
    }
    v[row + e.key] = aij * (1.0 - e.t) / norm;
    Ok(Tensor::from_vec(v, a.dims(), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(a.device())?)
}
