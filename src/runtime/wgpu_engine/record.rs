//! Recording a forward pass: every dispatch of one pass over the request's buffers, in
//! order (embedding, per layer RMSNorm → QKV product → RoPE + cache write → attention →
//! output product → RMSNorm → gate/up product → SwiGLU → down product, then the final norm,
//! the LM head and the argmax or sampling). Decode passes fuse the norms and SwiGLU into
//! the products that read them.

use super::forward::OutputKind;
use super::request::{StepIo, WgpuRequest, BACKEND};
use super::weights::Matrix;
use super::{EngineError, WgpuEngine};
use crate::runtime::engine::Request;
use crate::runtime::wgpu::{bind_buffers, storage_u32_buffer, uniform_buffer, Dispatch};

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

/// Up to this many rows, products use `matvec.wgsl` (K split across a workgroup);
/// above, `linear.wgsl` (one 4 × 4 block per invocation) has enough parallelism.
pub(super) const MATVEC_MAX_ROWS: usize = 32;

impl WgpuEngine {
    pub(super) fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        uniform_buffer(&self.device, words)
    }

    pub(super) fn storage_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        storage_u32_buffer(&self.device, label, data)
    }

    pub(super) fn dispatch(
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
    pub(super) fn fuses(&self, rows: usize) -> bool {
        self.split_k_matvec && rows <= MATVEC_MAX_ROWS
    }

    /// `out = f(x) · wᵀ (+ residual)`; `f` is given by `input`. `Input::Norm` and
    /// `Input::SwiGlu` need [`Self::fuses`]; the caller dispatches the op itself otherwise.
    /// One dispatch per part of `w` (split by output rows over the binding limit), each
    /// writing its columns `[row0, row0 + rows)` of `out` (`[rows, w.rows]`).
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &self,
        d: &mut Vec<Dispatch>,
        input: Input,
        x: &wgpu::Buffer,
        w: &Matrix,
        residual: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
        rows: usize,
    ) {
        let (k, n_total) = (w.cols, w.rows);
        let eps = self.config.rms_norm_eps.to_bits();
        let norm = match input {
            Input::Norm(weight) => weight,
            _ => &self.dummy,
        };
        for part in &w.parts {
            let n_out = part.rows;
            let params = self.uniform(&[
                rows as u32,
                k as u32,
                n_out as u32,
                u32::from(residual.is_some()),
                eps,
                n_total as u32,
                part.row0 as u32,
                0,
            ]);
            let wb = &part.buffer;
            // Few rows: split K across a workgroup (a decode step would otherwise run a
            // handful of workgroups, each walking K serially).
            if self.fuses(rows) {
                let pipe = match input {
                    Input::Plain => &self.pipes.matvec,
                    Input::Attention => &self.pipes.matvec_attn,
                    Input::Norm(_) => &self.pipes.matvec_norm,
                    Input::SwiGlu => &self.pipes.matvec_swiglu,
                };
                let buffers = [&params, x, wb, residual.unwrap_or(&self.dummy), out, norm];
                d.push(self.dispatch(
                    pipe,
                    &buffers,
                    [(n_out as u32).div_ceil(4), (rows as u32).div_ceil(4), 1],
                ));
                continue;
            }
            let pipe = match input {
                Input::Plain => &self.pipes.linear,
                Input::Attention => &self.pipes.linear_attn,
                Input::Norm(_) | Input::SwiGlu => {
                    unreachable!("fused inputs are only asked for when the pass fuses")
                }
            };
            let buffers = [&params, x, wb, residual.unwrap_or(&self.dummy), out];
            d.push(self.dispatch(
                pipe,
                &buffers,
                [(n_out as u32).div_ceil(256), (rows as u32).div_ceil(4), 1],
            ));
        }
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
        w: &Matrix,
        out: &wgpu::Buffer,
        rows: usize,
    ) {
        if fuse {
            self.linear(d, Input::Norm(weight), x, w, None, out, rows);
        } else {
            d.push(self.dispatch(
                &self.pipes.rmsnorm,
                &[norm.params, x, norm.rows, weight, norm.scratch],
                [rows as u32, 1, 1],
            ));
            self.linear(d, Input::Plain, norm.scratch, w, None, out, rows);
        }
    }

    /// Every dispatch of one forward pass over `io`, in order. Prefill passes record
    /// once; decode passes record once per request and are replayed every step.
    pub(super) fn record(
        &self,
        req: &Request,
        io: &StepIo,
        output: OutputKind,
    ) -> Result<Vec<Dispatch>, EngineError> {
        Ok(self.record_marked(req, io, output)?.0)
    }

    /// [`Self::record`] plus, per layer, the index one past its last dispatch (the points
    /// where a prefill can be split into one submission per layer to report progress).
    pub(super) fn record_marked(
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
        let norm_params = self.uniform(&[t as u32, hidden as u32, c.rms_norm_eps.to_bits(), 0]);
        let mut d = Vec::new();
        // One gather per part of the embedding: each writes the tokens in its rows.
        for part in &self.embed.parts {
            let p = self.uniform(&[
                t as u32,
                hidden as u32,
                c.vocab_size as u32,
                part.row0 as u32,
                part.rows as u32,
                0,
                0,
                0,
            ]);
            d.push(self.dispatch(
                &self.pipes.embed,
                &[&p, &io.tokens, &part.buffer, &a.x],
                [(hidden as u32).div_ceil(64), t as u32, 1],
            ));
        }
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
            self.linear(
                &mut d,
                Input::Attention,
                &a.attn_out,
                &lw.wo,
                Some(&a.x),
                &a.x_alt,
                t,
            );
            self.norm_linear(
                &mut d,
                fuse,
                &norm,
                &a.x_alt,
                &lw.ffn_norm,
                &lw.w_gate_up,
                &a.gate_up,
                t,
            );
            if fuse {
                self.linear(
                    &mut d,
                    Input::SwiGlu,
                    &a.gate_up,
                    &lw.w_down,
                    Some(&a.x_alt),
                    &a.x,
                    t,
                );
            } else {
                let sp = self.uniform(&[t as u32, c.ffn_size as u32, 0, 0]);
                d.push(self.dispatch(
                    &self.pipes.swiglu,
                    &[&sp, &a.gate_up, &a.ffn_act],
                    [(c.ffn_size as u32).div_ceil(64), t as u32, 1],
                ));
                self.linear(
                    &mut d,
                    Input::Plain,
                    &a.ffn_act,
                    &lw.w_down,
                    Some(&a.x_alt),
                    &a.x,
                    t,
                );
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
        // The tied head is the embedding: its parts run one product each.
        self.linear(&mut d, Input::Plain, &a.last, head, None, &a.logits, rows);
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
}
