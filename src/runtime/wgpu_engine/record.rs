//! Recording a forward pass: every dispatch of one pass over the request's buffers, in
//! order (embedding, per layer RMSNorm → QKV product → RoPE + cache write → attention →
//! output product → RMSNorm → gate/up product → SwiGLU → down product, then the final norm,
//! the LM head and the argmax or sampling). Decode passes fuse the norms and SwiGLU into
//! the products that read them and RoPE + the cache write into the QKV product's
//! epilogue: 4 dispatches per layer + the attention's, where prefill passes run 8 or more.

#![warn(missing_docs)]

use super::cache::CachePart;
use super::forward::OutputKind;
use super::pipelines::SgPipes;
use super::request::{StepIo, WgpuRequest, BACKEND};
use super::weights::Matrix;
use super::{elem_bytes, EngineError, WgpuEngine};
use crate::runtime::engine::Request;
use crate::runtime::wgpu::{bind_buffers, storage_u32_buffer, uniform_buffer, Dispatch};

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

/// Blocks per row of the two-stage argmax (`argmax.wgsl`): 49152 logits give blocks of
/// 768, three per invocation of a 256-wide workgroup.
pub(super) const ARGMAX_BLOCKS: u32 = 64;

/// One recorded pass: its dispatches, per layer the index one past its last dispatch,
/// and each dispatch's kind ("embed", "qkv", "attention" (the decode kernel, or the
/// prefill kernel), "merge" (the decode's merge), "out", "gate_up", "down",
/// "head", "argmax", "sample"; unfused passes (prefill, and decode where the products do
/// not fuse) since session 28 also "norm" (both RMSNorms), "rope" (RoPE + the cache
/// write) and "swiglu" apart from the products, and no "mlp"), which
/// [`WgpuEngine::profile_pass`] times apart.
pub(super) struct Recorded {
    pub(super) dispatches: Vec<Dispatch>,
    pub(super) layer_end: Vec<usize>,
    pub(super) kinds: Vec<&'static str>,
}

/// A storage buffer bound from a byte offset to its end: a chunk of tokens of an
/// activation (offsets are multiples of the adapter's alignment, `chunks::chunk_granule`).
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    buf: &'a wgpu::Buffer,
    offset: u64,
}

impl<'a> From<&'a wgpu::Buffer> for View<'a> {
    fn from(buf: &'a wgpu::Buffer) -> View<'a> {
        View { buf, offset: 0 }
    }
}

/// `buf` from token `token` on, for rows of `row_bytes` bytes per token.
fn at(buf: &wgpu::Buffer, token: usize, row_bytes: u64) -> View<'_> {
    View {
        buf,
        offset: token as u64 * row_bytes,
    }
}

/// Token `token` of a whole-pass activation held in parts of `part_tokens` tokens
/// (`Activations`; DESIGN.md §7) on: the part holding it, bound from the token's offset
/// in that part, for rows of `row_bytes` bytes a token. One part: [`at`].
fn part_at(parts: &[wgpu::Buffer], part_tokens: usize, token: usize, row_bytes: u64) -> View<'_> {
    let p = token / part_tokens.max(1);
    at(&parts[p], token - p * part_tokens, row_bytes)
}

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

    /// [`Self::dispatch`] over views: each buffer bound from its offset to its end.
    pub(super) fn dispatch_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        views: &[View],
        groups: [u32; 3],
    ) -> Dispatch {
        let bound: Vec<(u32, View)> = (0..).zip(views.iter().copied()).collect();
        self.dispatch_bound(pipeline, &bound, groups)
    }

    /// One `coop_matvec.wgsl` dispatch (a decode product on matrix units): `params` are
    /// the shader's eight `Params` words (n_rows, k, n_out, add_residual, eps bits,
    /// out_stride, col_offset, blocks) and `views` its bindings 1–6 in order (x, w,
    /// residual, out, norm, pairs); the one place that knows that layout on the host.
    pub(super) fn coop_dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: [u32; 8],
        views: [View; 6],
        groups: [u32; 3],
    ) -> Dispatch {
        let params = self.uniform(&params);
        let mut bound = vec![(0, (&params).into())];
        bound.extend((1..).zip(views));
        self.dispatch_bound(pipeline, &bound, groups)
    }

    /// [`Self::dispatch`] with each view bound at its own binding number (for an entry
    /// point that uses only some of its module's bindings).
    pub(super) fn dispatch_bound(
        &self,
        pipeline: &wgpu::ComputePipeline,
        views: &[(u32, View)],
        groups: [u32; 3],
    ) -> Dispatch {
        self.dispatch_views(pipeline, views, &[], groups)
    }

    /// [`Self::dispatch_bound`] with binding 2 a texture (`texture`) instead of `views`'
    /// binding 2: `linear_words.wgsl`'s texture form.
    pub(super) fn dispatch_texture(
        &self,
        pipeline: &wgpu::ComputePipeline,
        views: &[(u32, View)],
        texture: &wgpu::TextureView,
        groups: [u32; 3],
    ) -> Dispatch {
        self.dispatch_views(pipeline, views, &[(2, texture)], groups)
    }

    /// The one bind-group builder of [`Self::dispatch_bound`] and [`Self::dispatch_texture`]:
    /// each view at its binding, and each texture at its own (a view at a texture's
    /// binding is left out): `linear_words.wgsl`'s texture forms, the weights at binding 2
    /// and a quantization's pairs at 12.
    pub(super) fn dispatch_views(
        &self,
        pipeline: &wgpu::ComputePipeline,
        views: &[(u32, View)],
        textures: &[(u32, &wgpu::TextureView)],
        groups: [u32; 3],
    ) -> Dispatch {
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = views
            .iter()
            .filter(|(binding, _)| textures.iter().all(|(t, _)| t != binding))
            .map(|(binding, v)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: v.buf,
                    offset: v.offset,
                    size: None,
                }),
            })
            .collect();
        for (binding, texture) in textures {
            entries.push(wgpu::BindGroupEntry {
                binding: *binding,
                resource: wgpu::BindingResource::TextureView(texture),
            });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Dispatch {
            pipeline: pipeline.clone(),
            bind,
            groups,
        }
    }

    /// Can a fused pass also fuse RoPE and the cache write into the QKV product
    /// (`moa_matvec_rope`)? Its workgroups own whole rotation pairs, so head_dim must be a
    /// multiple of 4 and every part of the split QKV weight must start on a head.
    fn rope_fuses(&self, wqkv: &Matrix) -> bool {
        let hd = self.config.head_dim;
        // Quantized weights have the RoPE epilogue on subgroups only (`QuantPipes::sg`).
        hd.is_multiple_of(4)
            && (!wqkv.quantized() || self.sg_pipes_for(wqkv, self.config.hidden_size).is_some())
            && wqkv
                .parts
                .iter()
                .all(|p| p.row0.is_multiple_of(hd) && p.rows.is_multiple_of(hd))
    }

    /// Can this pass fuse RMSNorm and SwiGLU into its products (`matvec.wgsl` only)?
    pub(super) fn fuses(&self, rows: usize) -> bool {
        self.split_k_matvec && rows <= MATVEC_MAX_ROWS
    }

    /// The subgroup products (`matvec_sg.wgsl`) for a fused product of inner size `k`,
    /// where they are built and chosen: they read x and w as 4-vectors, so k must be a
    /// multiple of 4.
    fn sg_pipes(&self, k: usize) -> Option<&SgPipes> {
        match &self.pipes.matvec_sg {
            Ok(p) if self.subgroup_matvec && k.is_multiple_of(4) => Some(p),
            _ => None,
        }
    }

    /// Whether a quantized decode product of `rows` rows runs on `matvec_q.wgsl` (built,
    /// the subgroup products chosen, at most `QuantPipes::gemv_rows` rows).
    fn quant_gemv(&self, rows: usize) -> bool {
        self.subgroup_matvec
            && self
                .pipes
                .quant
                .as_ref()
                .is_some_and(|q| q.gemv(rows, 4).is_some())
    }

    /// The quantized subgroup sets for inner size `k`, where built and chosen.
    fn sg_pipes_for_quant(&self, k: usize) -> Option<&SgPipes> {
        match self.pipes.quant.as_ref().map(|q| &q.sg) {
            Some(Ok(p)) if self.subgroup_matvec && k.is_multiple_of(4) => Some(p),
            _ => None,
        }
    }

    /// [`Self::sg_pipes`] for the products of `w`: over quantized weights, the quantized
    /// sets (`QuantPipes::sg`) where they were built.
    fn sg_pipes_for(&self, w: &Matrix, k: usize) -> Option<&SgPipes> {
        if w.quantized() {
            self.sg_pipes_for_quant(k)
        } else {
            self.sg_pipes(k)
        }
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
        x: View,
        w: &Matrix,
        residual: Option<View>,
        out: View,
        rows: usize,
    ) -> Result<(), EngineError> {
        let (k, n_total) = (w.cols, w.rows);
        let eps = self.config.rms_norm_eps.to_bits();
        let norm = match input {
            Input::Norm(weight) => weight,
            _ => &self.dummy,
        };
        for part in &w.parts {
            let n_out = part.rows;
            // A quantized part: written out in f16 for the products on matrix units or
            // tiles, else read as it is by the quantized forms.
            let mut scratch = None;
            if let Some(q) = &part.quant {
                scratch = self.dequantized(d, (part, q), k, rows);
                if scratch.is_none() {
                    self.quant_linear(d, input, x, (part, q), residual, out, rows, (k, n_total))?;
                    continue;
                }
            }
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
            // Every form's bindings (params, x, w, residual, out, norm): the fused forms
            // bind all six (dummies where unused), the tiled forms the first five. `w` is
            // the part's storage copy, which every form but the texture one reads; a part
            // kept only as a texture binds the dummy there (the texture form puts its
            // texture in that place), and each storage form checks first (`storage()?`).
            let w_view: View = match scratch {
                Some(s) => s.into(),
                None => part.storage().map_or((&self.dummy).into(), View::from),
            };
            let buffers: [(u32, View); 6] = [
                (0, (&params).into()),
                (1, x),
                (2, w_view),
                (3, residual.unwrap_or((&self.dummy).into())),
                (4, out),
                (5, norm.into()),
            ];
            // Few rows: split K across a workgroup (a decode step would otherwise run a
            // handful of workgroups, each walking K serially).
            // Subgroups where the adapter has them: 4 columns × `set.rows` rows per KSPLIT
            // subgroups.
            if self.fuses(rows) {
                part.storage()?;
                let (pipe, groups) = match self.sg_pipes(k) {
                    Some(sg) => {
                        let set = sg.pick(n_out, k, rows);
                        let pipe = match input {
                            Input::Plain => &set.plain,
                            Input::Attention => &set.attn,
                            Input::Norm(_) => &set.norm,
                            Input::SwiGlu => &set.swiglu,
                        };
                        let groups = [
                            (n_out as u32).div_ceil(set.columns_per_workgroup()),
                            (rows as u32).div_ceil(set.rows),
                            1,
                        ];
                        (pipe, groups)
                    }
                    None => {
                        let pipe = match input {
                            Input::Plain => &self.pipes.matvec,
                            Input::Attention => &self.pipes.matvec_attn,
                            Input::Norm(_) => &self.pipes.matvec_norm,
                            Input::SwiGlu => &self.pipes.matvec_swiglu,
                        };
                        let groups = [
                            (n_out as u32).div_ceil(4),
                            (rows as u32).div_ceil(self.pipes.row_block),
                            1,
                        ];
                        (pipe, groups)
                    }
                };
                d.push(self.dispatch_bound(pipe, &buffers, groups));
                continue;
            }
            // Matrix units where the engine has them: one tile (`CoopPipes::tile`) per
            // workgroup. Else one 4 × 4 block per invocation, 64 invocations per workgroup.
            let coop = self
                .coop
                .as_ref()
                .filter(|c| k.is_multiple_of(c.k_multiple));
            // Without them, f16 weights with K a multiple of 8 are read eight at a time
            // (`linear_words.wgsl`), as many rows an invocation as `LinearWords::form` picks.
            let words = self
                .pipes
                .linear_words
                .as_ref()
                .filter(|_| coop.is_none() && k.is_multiple_of(8));
            // On a GPU adapter (`MOA_WGPU_TILED`), workgroup tiles: a step of a few rows
            // would fill a 64-row tile with repeats, so those keep the per-invocation block.
            let tiled = coop.is_none() && self.tiled_products && rows > 4;
            let (pipe, tile) = match (input, coop, words) {
                (Input::Plain, Some(c), _) => (&c.linear, c.tile),
                (Input::Attention, Some(c), _) => (&c.linear_attn, c.tile),
                (Input::Plain | Input::Attention, None, _) if tiled => {
                    let side = 16 * self.options.tiled_block;
                    (
                        &self.pipes.linear_tiled[usize::from(matches!(input, Input::Attention))],
                        [side, side],
                    )
                }
                (Input::Plain | Input::Attention, None, Some(w)) => {
                    let form = w.form(rows);
                    let rows_per = form.rows;
                    let attn = usize::from(matches!(input, Input::Attention));
                    // The texture form where this part has one (CPU adapters,
                    // `MOA_WGPU_TEXTURE_WEIGHTS`): the same product, weights from texels.
                    if let (Some(tex), Some(view)) = (&form.texture, &part.texture) {
                        let groups = [
                            (n_out as u32).div_ceil(256),
                            (rows as u32).div_ceil(rows_per),
                            1,
                        ];
                        d.push(self.dispatch_texture(&tex[attn], &buffers[..5], view, groups));
                        continue;
                    }
                    (&form.storage[attn], [256, rows_per])
                }
                (Input::Plain, None, None) => (&self.pipes.linear, [256, 4]),
                (Input::Attention, None, None) => (&self.pipes.linear_attn, [256, 4]),
                (Input::Norm(_) | Input::SwiGlu, _, _) => {
                    unreachable!("fused inputs are only asked for when the pass fuses")
                }
            };
            if scratch.is_none() {
                part.storage()?;
            }
            d.push(self.dispatch_bound(
                pipe,
                &buffers[..5],
                [
                    (n_out as u32).div_ceil(tile[0]),
                    (rows as u32).div_ceil(tile[1]),
                    1,
                ],
            ));
        }
        Ok(())
    }

    /// Where a many-row product of a quantized part runs on matrix units or tiles
    /// (`linear`'s choice for its K and rows), the `dequant.wgsl` dispatch that writes the
    /// part out in f16 into the engine's scratch, and the scratch; `None` where the part is
    /// read as it is ([`Self::quant_linear`]) or the engine has no scratch.
    fn dequantized(
        &self,
        d: &mut Vec<Dispatch>,
        (part, q): (&super::weights::Part, &super::weights::QuantPart),
        k: usize,
        rows: usize,
    ) -> Option<&wgpu::Buffer> {
        let (scratch, pipes) = (self.quant_scratch.as_ref()?, self.pipes.quant.as_ref()?);
        let coop = self
            .coop
            .as_ref()
            .is_some_and(|c| k.is_multiple_of(c.k_multiple));
        if self.fuses(rows) || !(coop || (self.tiled_products && rows > 4)) {
            return None;
        }
        // A part kept only as textures has no products on matrix units or tiles (the
        // engine keeps textures alone only where `linear_words.wgsl` runs every product).
        let (codes, pairs) = part.quant_storage().ok()?;
        let words = (part.rows * k / 8) as u32;
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            part.rows as u32,
            0,
            0,
            0,
            0,
            q.format,
        ]);
        let total = words.div_ceil(256);
        let x = total.clamp(1, 32768);
        d.push(self.dispatch_bound(
            &pipes.dequant,
            &[
                (0, (&params).into()),
                (2, codes.into()),
                (4, scratch.into()),
                (12, pairs.into()),
            ],
            [x, total.div_ceil(x), 1],
        ));
        Some(scratch)
    }

    /// [`Self::linear`]'s dispatch for one quantized part ([`super::weights::QuantPart`]):
    /// where the pass fuses (few rows, split-K products on; RMSNorm and SwiGLU fused into
    /// the input as the storage form does), `matvec_q.wgsl` up to `QuantPipes::gemv_rows` rows, else
    /// `matvec_sg.wgsl`'s quantized form on subgroups, else `matvec.wgsl`'s; where it does
    /// not, `linear_words.wgsl`'s. Bindings as theirs, plus the groups' (scale, offset) at
    /// 12 and the format in the parameters' last word. Errors: an engine built without the
    /// quantized pipelines (a part cannot be quantized then).
    #[allow(clippy::too_many_arguments)]
    fn quant_linear(
        &self,
        d: &mut Vec<Dispatch>,
        input: Input,
        x: View,
        (part, q): (&super::weights::Part, &super::weights::QuantPart),
        residual: Option<View>,
        out: View,
        rows: usize,
        (k, n_total): (usize, usize),
    ) -> Result<(), EngineError> {
        let pipes = self.pipes.quant.as_ref().ok_or_else(|| {
            EngineError::Input("quantized weights without their products' pipelines".into())
        })?;
        let n_out = part.rows as u32;
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            n_out,
            u32::from(residual.is_some()),
            self.config.rms_norm_eps.to_bits(),
            n_total as u32,
            part.row0 as u32,
            q.format,
        ]);
        let residual = residual.unwrap_or((&self.dummy).into());
        // The texture form (CPU adapters, `MOA_WGPU_TEXTURE_WEIGHTS`): `linear_words.wgsl`
        // with the codes and pairs from textures, where the pass does not fuse (it fuses
        // only with split-K products, which a texture-only engine has not).
        if let (false, Some((codes, pairs)), Some(forms)) =
            (self.fuses(rows), &q.texture, &pipes.words_texture)
        {
            let (per, pipe) = super::pipelines::QuantPipes::words_form(forms, rows);
            let pipe = match input {
                Input::Plain => &pipe[0],
                Input::Attention => &pipe[1],
                Input::Norm(_) | Input::SwiGlu => {
                    unreachable!("fused inputs are only asked for when the pass fuses")
                }
            };
            let bound: [(u32, View); 4] = [(0, (&params).into()), (1, x), (3, residual), (4, out)];
            let groups = [n_out.div_ceil(256), (rows as u32).div_ceil(*per), 1];
            d.push(self.dispatch_views(pipe, &bound, &[(2, codes), (12, pairs)], groups));
            return Ok(());
        }
        let (codes, pairs) = part.quant_storage()?;
        let mut bound: Vec<(u32, View)> = vec![
            (0, (&params).into()),
            (1, x),
            (2, codes.into()),
            (3, residual),
            (4, out),
            (12, pairs.into()),
        ];
        if self.fuses(rows) {
            let norm = match input {
                Input::Norm(weight) => weight,
                _ => &self.dummy,
            };
            // `matvec_q.wgsl` where the adapter has subgroups and the matrix is on them
            // (a lane's 16-byte word within one group), as `subgroup_matvec` chooses.
            let per_word = 128 / (q.format & 255) as usize;
            let gemv = pipes
                .gemv(rows, q.format & 255)
                .filter(|_| self.subgroup_matvec && per_word <= 1 << (q.format >> 8));
            if let Some((per, forms)) = gemv {
                let pipe = match input {
                    Input::Plain => &forms[0],
                    Input::Attention => &forms[1],
                    Input::Norm(_) => &forms[2],
                    Input::SwiGlu => &forms[3],
                };
                bound.push((5, norm.into()));
                let groups = [n_out.div_ceil(4), (rows as u32).div_ceil(*per), 1];
                d.push(self.dispatch_bound(pipe, &bound, groups));
                return Ok(());
            }
            // Else `matvec_sg.wgsl` where the adapter has subgroups.
            if let Some(sg) = self.sg_pipes_for_quant(k) {
                let set = sg.pick(part.rows, k, rows);
                let pipe = match input {
                    Input::Plain => &set.plain,
                    Input::Attention => &set.attn,
                    Input::Norm(_) => &set.norm,
                    Input::SwiGlu => &set.swiglu,
                };
                bound.push((5, norm.into()));
                let groups = [
                    n_out.div_ceil(set.columns_per_workgroup()),
                    (rows as u32).div_ceil(set.rows),
                    1,
                ];
                d.push(self.dispatch_bound(pipe, &bound, groups));
                return Ok(());
            }
            let (pipe, norm) = match input {
                Input::Plain => (&pipes.matvec[0], &self.dummy),
                Input::Attention => (&pipes.matvec[1], &self.dummy),
                Input::Norm(weight) => (&pipes.matvec[2], weight),
                Input::SwiGlu => (&pipes.matvec[3], &self.dummy),
            };
            bound.push((5, norm.into()));
            let groups = [
                n_out.div_ceil(4),
                (rows as u32).div_ceil(self.pipes.row_block),
                1,
            ];
            d.push(self.dispatch_bound(pipe, &bound, groups));
            return Ok(());
        }
        let (per, pipe) = pipes.words(rows);
        let pipe = match input {
            Input::Plain => &pipe[0],
            Input::Attention => &pipe[1],
            Input::Norm(_) | Input::SwiGlu => {
                unreachable!("fused inputs are only asked for when the pass fuses")
            }
        };
        let groups = [n_out.div_ceil(256), (rows as u32).div_ceil(*per), 1];
        d.push(self.dispatch_bound(pipe, &bound, groups));
        Ok(())
    }

    /// Every dispatch of one forward pass over `io`, in order. Prefill passes record
    /// once; decode passes record once per request and are replayed every step.
    pub(super) fn record(
        &self,
        req: &Request,
        io: &StepIo,
        output: OutputKind,
    ) -> Result<Vec<Dispatch>, EngineError> {
        Ok(self.record_marked(req, io, output)?.dispatches)
    }

    /// [`Self::record`] plus, per layer, the index one past its last dispatch (the points
    /// where a prefill can be split into one submission per layer to report progress)
    /// and each dispatch's kind (for [`Self::profile_pass`]).
    pub(super) fn record_marked(
        &self,
        req: &Request,
        io: &StepIo,
        output: OutputKind,
    ) -> Result<Recorded, EngineError> {
        let mut layer_end = Vec::with_capacity(self.layers.len());
        // kinds[i] names dispatch i: `tag` names every dispatch pushed since the last tag.
        let mut kinds: Vec<&'static str> = Vec::new();
        let tag = |kinds: &mut Vec<&'static str>, d: &Vec<Dispatch>, kind: &'static str| {
            kinds.resize(d.len(), kind)
        };
        let c = &self.config;
        let t = io.t;
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let a = &st.act;
        let (hidden, hd) = (c.hidden_size, c.head_dim);
        // The pass's tokens in spans of the activations' parts (DESIGN.md §7): one span of
        // `t` tokens unless a row longer than one binding holds runs in parts, alone in
        // its pass. Every per-token dispatch runs per span; decode steps use part 0.
        let pt = a.part_tokens.max(1);
        let spans: Vec<(usize, usize)> = (0..t).step_by(pt).map(|s| (s, pt.min(t - s))).collect();
        if spans.len() > 1 && (io.rows != 1 || io.prefill.is_none()) {
            return Err(EngineError::Input(format!(
                "a pass of {t} tokens in {} rows past the activations' parts of {pt} tokens: only a one-row prefill runs in parts",
                io.rows
            )));
        }
        let (x0, x_alt0, q0, attn_out0) = (&a.x[0], &a.x_alt[0], &a.q[0], &a.attn_out[0]);
        let x_row = hidden as u64 * 4;
        let mut d = Vec::new();
        // One gather per part of the embedding (each writes the tokens in its rows) and
        // span of the pass.
        for (part, &(s, n)) in self
            .embed
            .parts
            .iter()
            .flat_map(|p| spans.iter().map(move |sp| (p, sp)))
        {
            let tokens = at(&io.tokens, s, 4);
            let x = part_at(&a.x, pt, s, x_row);
            let p = self.uniform(&[
                n as u32,
                hidden as u32,
                c.vocab_size as u32,
                part.row0 as u32,
                part.rows as u32,
                0,
                0,
                0,
            ]);
            // A table kept only as a texture (CPU adapters) is read as one.
            match (&part.texture, &self.pipes.embed_texture) {
                (Some(view), Some(pipe)) if !part.has_storage() => {
                    d.push(self.dispatch_texture(
                        pipe,
                        &[(0, (&p).into()), (1, tokens), (3, x)],
                        view,
                        [(hidden as u32 / 8).div_ceil(64), n as u32, 1],
                    ));
                }
                _ => d.push(self.dispatch_bound(
                    &self.pipes.embed,
                    &[
                        (0, (&p).into()),
                        (1, tokens),
                        (2, part.storage()?.into()),
                        (3, x),
                    ],
                    [(hidden as u32).div_ceil(64), n as u32, 1],
                )),
            }
        }
        tag(&mut kinds, &d, "embed");
        // Decode-sized passes fuse both RMSNorms and SwiGLU into the products that read
        // them, and decode passes RoPE + the cache write into the QKV product: 4 + the
        // attention's dispatches per layer instead of 8 + the attention's. Other passes run the per-token
        // products whose outputs are widest (Q/K/V, gate/up) over chunks of `a.chunk`
        // tokens, so those activations stay within the binding limit (DESIGN.md §7).
        let fuse = self.fuses(t) && t <= a.chunk;
        // Chunks never straddle two spans (a span's first token starts a chunk).
        let chunk = a.chunk.max(1);
        let chunks: Vec<(usize, usize)> = spans
            .iter()
            .flat_map(|&(s0, n0)| {
                (s0..s0 + n0)
                    .step_by(chunk)
                    .map(move |s| (s, chunk.min(s0 + n0 - s)))
            })
            .collect();
        let sb = elem_bytes(self.storage);
        let q_row = (c.q_heads * hd) as u64 * sb;
        let kv_row = (c.kv_heads * hd) as u64 * sb;
        let norm_params: Vec<wgpu::Buffer> = spans
            .iter()
            .map(|&(_, n)| self.uniform(&[n as u32, hidden as u32, c.rms_norm_eps.to_bits(), 0]))
            .collect();
        // The RMSNorm of `x` (an activation's parts) into `h`, a dispatch per span.
        let rmsnorm = |d: &mut Vec<Dispatch>, x: &[wgpu::Buffer], weight: &wgpu::Buffer| {
            for (&(s, n), params) in spans.iter().zip(&norm_params) {
                d.push(self.dispatch_bound(
                    &self.pipes.rmsnorm,
                    &[
                        (0, params.into()),
                        (1, part_at(x, pt, s, x_row)),
                        (2, (&io.identity).into()),
                        (3, weight.into()),
                        (4, part_at(&a.h, pt, s, x_row)),
                    ],
                    [n as u32, 1, 1],
                ));
            }
        };
        for (l, lw) in self.layers.iter().enumerate() {
            let layout = &st.layouts[l];
            let parts = &st.caches[l];
            // The cache part's rows: the shaders write only their tokens, at row - row0.
            let rope_params = |n: usize, part: &CachePart| {
                let mut words = vec![
                    n as u32,
                    c.q_heads as u32,
                    c.kv_heads as u32,
                    hd as u32,
                    layout.row_slots,
                    1,
                    part.rows.start as u32,
                    part.rows.len() as u32,
                ];
                for i in 0..64 {
                    match layout.segments.get(i) {
                        Some(s) => words.extend([s.offset, s.sink, s.ring, 0]),
                        None => words.extend([0, 0, 0, 0]),
                    }
                }
                self.uniform(&words)
            };
            // One dispatch per cache part (each writes its rows' tokens; Q and the packed
            // K and V are written alike by every one).
            let rope_kv = |d: &mut Vec<Dispatch>, s: usize, n: usize| {
                for part in parts {
                    let rp = rope_params(n, part);
                    // Bindings of rope_kv.wgsl (1–3) and matvec_rope.wgsl (6–11).
                    d.push(self.dispatch_bound(
                        &self.pipes.rope_kv,
                        &[
                            (6, (&rp).into()),
                            (1, (&a.qkv).into()),
                            (7, at(&io.info, s, 16)),
                            (8, (&st.rope).into()),
                            (9, part_at(&a.q, pt, s, q_row)),
                            (2, at(&a.k, s, kv_row)),
                            (3, at(&a.v, s, kv_row)),
                            (10, (&part.k).into()),
                            (11, (&part.v).into()),
                        ],
                        [
                            (hd as u32 / 2).div_ceil(32),
                            (c.q_heads + 2 * c.kv_heads) as u32,
                            (n as u32).div_ceil(self.pipes.rope_tokens),
                        ],
                    ));
                }
            };
            // Decode passes only: a prefill's attention also reads the packed K and V,
            // which the fused epilogue does not write. A cache in several parts takes the
            // separate RoPE shader (one dispatch per part) rather than repeating the product.
            if fuse && io.prefill.is_none() && self.rope_fuses(&lw.wqkv) && parts.len() == 1 {
                // RMSNorm → QKV product → RoPE + cache write: one dispatch per weight part.
                let cache = &parts[0];
                let rp = rope_params(t, cache);
                for part in &lw.wqkv.parts {
                    let params = self.uniform(&[
                        t as u32,
                        hidden as u32,
                        part.rows as u32,
                        0,
                        c.rms_norm_eps.to_bits(),
                        lw.wqkv.rows as u32,
                        part.row0 as u32,
                        part.quant.as_ref().map_or(0, |q| q.format),
                    ]);
                    let mut bound: Vec<(u32, View)> = vec![
                        (0, (&params).into()),
                        (1, x0.into()),
                        weight_view(part)?,
                        (5, (&lw.attn_norm).into()),
                        (6, (&rp).into()),
                        (7, (&io.info).into()),
                        (8, (&st.rope).into()),
                        (9, q0.into()),
                        (10, (&cache.k).into()),
                        (11, (&cache.v).into()),
                    ];
                    bound.extend(quant_params(part)?);
                    // On matrix units (`MOA_WGPU_COOP_QKV=1`): 16 rotation pairs (32
                    // columns) a workgroup, K over its 4 subgroups; `pairs` at binding 12
                    // and `out` / `residual` unused, as its layout has them.
                    let coop_qkv = self
                        .coop_decode
                        .qkv
                        .as_ref()
                        .filter(|p| coop_fits(&lw.wqkv, p.k, 32, t));
                    if let Some(p) = coop_qkv {
                        let n_out = part.rows as u32;
                        let coop_params = self.uniform(&[
                            t as u32,
                            p.k as u32,
                            n_out,
                            0,
                            c.rms_norm_eps.to_bits(),
                            n_out,
                            0,
                            0,
                        ]);
                        let bound: [(u32, View); 13] = [
                            (0, (&coop_params).into()),
                            (1, x0.into()),
                            (2, part.storage()?.into()),
                            (3, (&self.dummy).into()),
                            (4, (&a.qkv).into()),
                            (5, (&lw.attn_norm).into()),
                            (6, (&rp).into()),
                            (7, (&io.info).into()),
                            (8, (&st.rope).into()),
                            (9, q0.into()),
                            (10, (&cache.k).into()),
                            (11, (&cache.v).into()),
                            (12, (&a.argmax_pairs).into()),
                        ];
                        let groups = [n_out / 32, (t as u32).div_ceil(16), 1];
                        d.push(self.dispatch_bound(&p.pipeline, &bound, groups));
                        continue;
                    }
                    if let Some(sg) = self.sg_pipes_for(&lw.wqkv, hidden) {
                        // One subgroup per 4 columns (two rotation pairs) × `set.rows` rows.
                        let set = sg.pick(part.rows, hidden, t);
                        let groups = [
                            (part.rows as u32).div_ceil(set.columns_per_workgroup()),
                            (t as u32).div_ceil(set.rows),
                            1,
                        ];
                        d.push(self.dispatch_bound(&set.rope, &bound, groups));
                        continue;
                    }
                    // One workgroup per 4 columns (two rotation pairs) × ROW_BLOCK rows.
                    let groups = [
                        (part.rows as u32).div_ceil(4),
                        (t as u32).div_ceil(self.pipes.row_block),
                        1,
                    ];
                    d.push(self.dispatch_bound(&self.pipes.matvec_rope, &bound, groups));
                }
            } else if fuse {
                let x = x0.into();
                let norm = Input::Norm(&lw.attn_norm);
                self.linear(&mut d, norm, x, &lw.wqkv, None, (&a.qkv).into(), t)?;
                rope_kv(&mut d, 0, t);
            } else {
                // Unfused passes (prefill) tag the norm and RoPE + cache write apart from
                // the product, so the profile times them apart (session 28).
                rmsnorm(&mut d, &a.x, &lw.attn_norm);
                tag(&mut kinds, &d, "norm");
                for &(s, n) in &chunks {
                    let h = part_at(&a.h, pt, s, x_row);
                    self.linear(&mut d, Input::Plain, h, &lw.wqkv, None, (&a.qkv).into(), n)?;
                    tag(&mut kinds, &d, "qkv");
                    rope_kv(&mut d, s, n);
                    tag(&mut kinds, &d, "rope");
                }
            }
            tag(&mut kinds, &d, "qkv");
            match &io.prefill {
                // One dispatch per span: a span's queries (Q and the output in its part,
                // `Arg::QStart` at its first token) against the row's whole K and V.
                Some((row_start, max_len)) => {
                    let (n, rows) = (req.n_tokens(), io.rows as u32);
                    for (p, &(s, len)) in spans.iter().enumerate() {
                        let buffers = [row_start, &a.q[p], &a.k, &a.v, &a.attn_out[p]];
                        let (q_start, q_len) = if spans.len() == 1 {
                            (0, *max_len)
                        } else {
                            (s as u32, len as u32)
                        };
                        d.push(match &self.coop_attention {
                            Some(ca) => self.coop_prefill_dispatch(
                                ca,
                                l,
                                n,
                                rows,
                                (q_start, q_len),
                                buffers,
                            ),
                            None => self
                                .attention
                                .prefill_dispatch_from(l, n, rows, q_start, q_len, buffers)?,
                        });
                    }
                }
                // One decode + merge per cache part, the last part first: a part's merge
                // runs over rows 0..its end (its grid starts at row 0) and writes rows
                // before its own from a list without them, which the lower parts'
                // merges, later in the pass, overwrite.
                // The decode kernel and the merge are kinds of their own (the profile
                // times them apart).
                None => {
                    for part in parts.iter().rev() {
                        let mut steps = self
                            .attention
                            .decode_dispatches(
                                l,
                                req.n_tokens(),
                                part.rows.end as u32,
                                part.n_items,
                                [
                                    &io.row_pos,
                                    q0,
                                    &part.k,
                                    &part.v,
                                    &part.work,
                                    &st.partials,
                                    &st.seg_done,
                                    attn_out0,
                                ],
                            )?
                            .into_iter();
                        // The decode, then the merge unless the decode merged itself.
                        d.extend(steps.next());
                        tag(&mut kinds, &d, "attention");
                        if let Some(merge) = steps.next() {
                            d.push(merge);
                            tag(&mut kinds, &d, "merge");
                        }
                    }
                }
            }
            tag(&mut kinds, &d, "attention");
            let attn_input = Input::Attention;
            let decode = fuse && io.prefill.is_none();
            let coop_out = self
                .coop_decode
                .out
                .as_ref()
                .filter(|p| decode && coop_fits(&lw.wo, p.k, 16, t));
            // The output and gate/up products in one dispatch (opt-in, session 32): the
            // direct output product's phase, a meeting, the gate/up phase; the down
            // product stays a dispatch of its own.
            let fused_mlp = self.coop_decode.fused_mlp.as_ref().filter(|f| {
                attn_out0.size() >= (t.div_ceil(16) * 16 * f.k_attn * 2) as u64
                    && coop_fits(&lw.wo, f.k_attn, 16, t)
                    && decode
                    && c.ffn_size.is_multiple_of(16)
                    && self
                        .coop_decode
                        .gate_up
                        .as_ref()
                        .is_some_and(|g| coop_fits(&lw.w_gate_up, g.k, 32, t))
            });
            if let Some(f) = fused_mlp {
                let n_out = lw.wo.rows as u32;
                let ffn = c.ffn_size as u32;
                let rows = (t as u32).div_ceil(16);
                let k_attn = f.k_attn as u32;
                let eps = c.rms_norm_eps.to_bits();
                let p0 = self.uniform(&[t as u32, k_attn, n_out, 1, eps, n_out, 0, 0]);
                let p1 = self.uniform(&[t as u32, hidden as u32, 2 * ffn, 0, eps, ffn, 0, 0]);
                let groups = (n_out / 16).max(ffn / 16) * rows;
                let nw = groups.min(f.max_groups).max(1);
                // The grids of the phases that run (`MOA_WGPU_DECODE_FUSED_SPLIT`: a
                // diagnostic runs one phase a dispatch; 0 = both in one).
                let fp = |out: bool, gate_up: bool| {
                    let mut fp = [0u32; 20];
                    if out {
                        fp[0] = n_out / 16;
                        fp[1] = rows;
                    }
                    if gate_up {
                        fp[4] = ffn / 16;
                        fp[5] = rows;
                    }
                    fp[16] = nw;
                    fp[17] = super::coop_matvec::FUSED_SPIN;
                    self.uniform(&fp)
                };
                let (wo, w_gate_up) = (lw.wo.parts[0].storage()?, lw.w_gate_up.parts[0].storage()?);
                let fused = |fp: wgpu::Buffer| {
                    self.dispatch_bound(
                        &f.pipeline,
                        &[
                            (0, (&p0).into()),
                            (1, attn_out0.into()),
                            (2, wo.into()),
                            (3, x0.into()),
                            (4, x_alt0.into()),
                            (5, (&self.dummy).into()),
                            (6, (&a.argmax_pairs).into()),
                            (8, (&p1).into()),
                            // (Phase 1's x is phase 0's output, binding 4: one binding
                            // a buffer the dispatch writes, coop_fused_mlp_source says
                            // why.)
                            (10, w_gate_up.into()),
                            (11, (&a.argmax_pairs).into()),
                            (12, (&a.ffn_act).into()),
                            (13, (&lw.ffn_norm).into()),
                            (14, (&a.argmax_pairs).into()),
                            (30, (&fp).into()),
                            (31, (&f.ctl).into()),
                        ],
                        [nw, 1, 1],
                    )
                };
                if f.split == 1 {
                    // Each phase's dispatch under its own kind in the profile.
                    d.push(fused(fp(true, false)));
                    tag(&mut kinds, &d, "out");
                    d.push(fused(fp(false, true)));
                    tag(&mut kinds, &d, "gate_up");
                } else {
                    d.push(fused(fp(true, true)));
                    tag(&mut kinds, &d, "out");
                }
                self.linear(
                    &mut d,
                    Input::Plain,
                    (&a.ffn_act).into(),
                    &lw.w_down,
                    Some(x_alt0.into()),
                    x0.into(),
                    t,
                )?;
                tag(&mut kinds, &d, "down");
                layer_end.push(d.len());
                continue;
            }
            if let Some(p) = coop_out {
                // On matrix units: 16 columns a workgroup, K over its 4 subgroups; the A
                // fragments straight from the attention output where it holds whole
                // 16-row blocks (the direct walk reads every row of a block).
                let blocks_bytes = (t.div_ceil(16) * 16 * p.k * 2) as u64;
                let pipeline = p
                    .direct
                    .as_ref()
                    .filter(|_| attn_out0.size() >= blocks_bytes)
                    .unwrap_or(&p.pipeline);
                let n_out = lw.wo.rows as u32;
                let params = [
                    t as u32,
                    p.k as u32,
                    n_out,
                    1,
                    c.rms_norm_eps.to_bits(),
                    n_out,
                    0,
                    0,
                ];
                d.push(self.coop_dispatch(
                    pipeline,
                    params,
                    [
                        attn_out0.into(),
                        lw.wo.parts[0].storage()?.into(),
                        x0.into(),
                        x_alt0.into(),
                        (&self.dummy).into(),
                        // Unused here; a buffer of its own (the read-only dummy cannot
                        // also be bound writable in one dispatch).
                        (&a.argmax_pairs).into(),
                    ],
                    [n_out / 16, (t as u32).div_ceil(16), 1],
                ));
            } else {
                for &(s, n) in &spans {
                    self.linear(
                        &mut d,
                        attn_input,
                        part_at(&a.attn_out, pt, s, q_row),
                        &lw.wo,
                        Some(part_at(&a.x, pt, s, x_row)),
                        part_at(&a.x_alt, pt, s, x_row),
                        n,
                    )?;
                }
            }
            tag(&mut kinds, &d, "out");
            // The gate/up product on matrix units, SwiGLU in its epilogue: 16 gate + 16
            // up columns a workgroup (a one-part weight whose halves are ffn columns, a
            // multiple of 16).
            let coop_gate_up = self.coop_decode.gate_up.as_ref().filter(|p| {
                decode && c.ffn_size.is_multiple_of(16) && coop_fits(&lw.w_gate_up, p.k, 32, t)
            });
            // SwiGLU in the gate/up product's epilogue: subgroup products, a one-part
            // [gate | up] weight (its column groups take rows of both halves).
            // Quantized gate/up goes to `matvec_q.wgsl` (`quant_linear`), SwiGLU into the
            // down product's input, where that kernel runs (up to `QuantPipes::gemv_rows` rows).
            let swiglu_sg = self
                .sg_pipes_for(&lw.w_gate_up, hidden)
                .filter(|_| !lw.w_gate_up.quantized() || !self.quant_gemv(t))
                .filter(|_| {
                    self.swiglu_out
                        && fuse
                        && lw.w_gate_up.parts.len() == 1
                        && c.ffn_size.is_multiple_of(2)
                })
                .map(|sg| (sg, &lw.w_gate_up.parts[0]));
            // What the down product reads where it runs once over all rows (the fused
            // forms): the SwiGLU output (of the product's epilogue) or the [gate | up]
            // buffer it applies SwiGLU to; `None` where the unfused form ran it per chunk.
            let down_input = if let Some(p) = coop_gate_up {
                let params = [
                    t as u32,
                    hidden as u32,
                    2 * c.ffn_size as u32,
                    0,
                    c.rms_norm_eps.to_bits(),
                    c.ffn_size as u32,
                    0,
                    0,
                ];
                d.push(self.coop_dispatch(
                    &p.pipeline,
                    params,
                    [
                        x_alt0.into(),
                        lw.w_gate_up.parts[0].storage()?.into(),
                        (&self.dummy).into(),
                        (&a.ffn_act).into(),
                        (&lw.ffn_norm).into(),
                        (&a.argmax_pairs).into(),
                    ],
                    [(c.ffn_size / 16) as u32, (t as u32).div_ceil(16), 1],
                ));
                tag(&mut kinds, &d, "gate_up");
                Some((Input::Plain, &a.ffn_act))
            } else if let Some((sg, part)) = swiglu_sg {
                let n_out = 2 * c.ffn_size;
                let params = self.uniform(&[
                    t as u32,
                    hidden as u32,
                    n_out as u32,
                    0,
                    c.rms_norm_eps.to_bits(),
                    c.ffn_size as u32,
                    0,
                    part.quant.as_ref().map_or(0, |q| q.format),
                ]);
                // Column groups of 2 gate + 2 up columns: ffn / 2 of them.
                let pairs = (c.ffn_size / 2) as u32;
                let set = sg.pick(n_out, hidden, t);
                let mut bound: Vec<(u32, View)> = vec![
                    (0, (&params).into()),
                    (1, x_alt0.into()),
                    weight_view(part)?,
                    // No residual (binding 3): the entry point does not use it.
                    (4, (&a.ffn_act).into()),
                    (5, (&lw.ffn_norm).into()),
                ];
                bound.extend(quant_params(part)?);
                d.push(self.dispatch_bound(
                    &set.swiglu_out,
                    &bound,
                    [pairs.div_ceil(set.groups), (t as u32).div_ceil(set.rows), 1],
                ));
                tag(&mut kinds, &d, "gate_up");
                Some((Input::Plain, &a.ffn_act))
            } else if fuse {
                let norm = Input::Norm(&lw.ffn_norm);
                let (x_alt, gate_up) = (x_alt0.into(), (&a.gate_up).into());
                self.linear(&mut d, norm, x_alt, &lw.w_gate_up, None, gate_up, t)?;
                tag(&mut kinds, &d, "gate_up");
                Some((Input::SwiGlu, &a.gate_up))
            } else {
                rmsnorm(&mut d, &a.x_alt, &lw.ffn_norm);
                tag(&mut kinds, &d, "norm");
                // SwiGLU in the matrix-unit gate/up product's epilogue (session 29): a
                // one-part [gate; up] weight, K as the product takes it.
                let coop_swiglu = self.coop.as_ref().and_then(|cp| {
                    cp.gate_up_swiglu
                        .as_ref()
                        .filter(|_| {
                            lw.w_gate_up.parts.len() == 1
                                && !lw.w_gate_up.quantized()
                                && hidden.is_multiple_of(cp.k_multiple)
                        })
                        .map(|p| (p, cp.swiglu_tile))
                });
                for &(s, n) in &chunks {
                    let h = part_at(&a.h, pt, s, x_row);
                    if let Some((pipe, tile)) = coop_swiglu {
                        let ffn = c.ffn_size as u32;
                        let params = self.uniform(&[n as u32, hidden as u32, ffn, 0, 0, ffn, 0, 0]);
                        let buffers = [
                            (&params).into(),
                            h,
                            lw.w_gate_up.parts[0].storage()?.into(),
                            (&self.dummy).into(),
                            (&a.ffn_act).into(),
                        ];
                        let groups = [ffn.div_ceil(tile[0]), (n as u32).div_ceil(tile[1]), 1];
                        d.push(self.dispatch_at(pipe, &buffers, groups));
                        tag(&mut kinds, &d, "gate_up");
                    } else {
                        let gate_up = (&a.gate_up).into();
                        self.linear(&mut d, Input::Plain, h, &lw.w_gate_up, None, gate_up, n)?;
                        tag(&mut kinds, &d, "gate_up");
                        let sp = self.uniform(&[n as u32, c.ffn_size as u32, 0, 0]);
                        d.push(self.dispatch(
                            &self.pipes.swiglu,
                            &[&sp, &a.gate_up, &a.ffn_act],
                            [(c.ffn_size as u32).div_ceil(64), n as u32, 1],
                        ));
                        tag(&mut kinds, &d, "swiglu");
                    }
                    self.linear(
                        &mut d,
                        Input::Plain,
                        (&a.ffn_act).into(),
                        &lw.w_down,
                        Some(part_at(&a.x_alt, pt, s, x_row)),
                        part_at(&a.x, pt, s, x_row),
                        n,
                    )?;
                    tag(&mut kinds, &d, "down");
                }
                None
            };
            if let Some((input, act)) = down_input {
                let (residual, out) = (Some(x_alt0.into()), x0.into());
                self.linear(&mut d, input, act.into(), &lw.w_down, residual, out, t)?;
            }
            // (Unfused passes tagged their MLP dispatches one by one above.)
            tag(&mut kinds, &d, "down");
            layer_end.push(d.len());
        }
        let rows = io.rows;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        // The tied head is the embedding: its parts run one product each.
        let logits = (&a.logits).into();
        // Pairs per row that the head's epilogue wrote (the argmax's first stage).
        let mut head_pairs = None;
        let coop_head = match &self.coop_decode.head {
            Ok(h) if head.parts.len() == 1 && head.rows.is_multiple_of(16) && head.cols == h.k => {
                Some(h)
            }
            _ => None,
        };
        if let (true, true, Some(h)) = (fuse, io.prefill.is_none(), coop_head) {
            // The head on matrix units, the final RMSNorm fused; for greedy steps the
            // argmax's first stage in its epilogue instead of the logits.
            let blocks = (head.rows as u32).div_ceil(h.columns());
            let argmax = h.fold_argmax
                && self.two_stage_argmax
                && matches!(output, OutputKind::Argmax)
                && rows <= MATVEC_MAX_ROWS;
            let params = [
                rows as u32,
                hidden as u32,
                head.rows as u32,
                0,
                c.rms_norm_eps.to_bits(),
                head.rows as u32,
                0,
                blocks,
            ];
            d.push(self.coop_dispatch(
                if argmax { &h.argmax } else { &h.logits },
                params,
                [
                    x0.into(),
                    head.parts[0].storage()?.into(),
                    (&self.dummy).into(),
                    logits,
                    (&self.output_norm).into(),
                    (&a.argmax_pairs).into(),
                ],
                [blocks, (rows as u32).div_ceil(16), 1],
            ));
            head_pairs = argmax.then_some(blocks);
        } else if fuse && io.prefill.is_none() {
            // A decode pass's tokens are its rows' last tokens (in order): the final
            // RMSNorm goes into the head's product, no gather needed.
            let norm = Input::Norm(&self.output_norm);
            self.linear(&mut d, norm, x0.into(), head, None, logits, rows)?;
        } else {
            let fp = self.uniform(&[rows as u32, hidden as u32, c.rms_norm_eps.to_bits(), 0]);
            // A pass in parts holds one row: its last token, in the last part.
            let (x, last_index) = match spans.last() {
                Some(&(s, _)) if spans.len() > 1 => {
                    let index = self.storage_u32("last index in part", &[(t - 1 - s) as u32]);
                    (&a.x[spans.len() - 1], std::borrow::Cow::Owned(index))
                }
                _ => (x0, std::borrow::Cow::Borrowed(&io.last)),
            };
            d.push(self.dispatch(
                &self.pipes.rmsnorm,
                &[&fp, x, &last_index, &self.output_norm, &a.last],
                [rows as u32, 1, 1],
            ));
            self.linear(
                &mut d,
                Input::Plain,
                (&a.last).into(),
                head,
                None,
                logits,
                rows,
            )?;
        }
        tag(&mut kinds, &d, "head");
        match output {
            OutputKind::Logits => {}
            // The head wrote the first stage's pairs: the finish only.
            OutputKind::Argmax if head_pairs.is_some() => {
                let blocks = head_pairs.unwrap_or(1);
                let p = self.uniform(&[rows as u32, c.vocab_size as u32, blocks, 0]);
                d.push(self.dispatch_bound(
                    &self.pipes.argmax_finish,
                    &[
                        (2, (&a.tokens_out).into()),
                        (3, (&p).into()),
                        (4, (&a.argmax_pairs).into()),
                    ],
                    [rows as u32, 1, 1],
                ));
            }
            // Two stages where the rows are few (decode): one workgroup per row would
            // leave most of the device idle walking the whole vocabulary.
            OutputKind::Argmax if self.two_stage_argmax && rows <= MATVEC_MAX_ROWS => {
                let blocks = ARGMAX_BLOCKS.min(c.vocab_size as u32);
                let block_len = (c.vocab_size as u32).div_ceil(blocks);
                let p = self.uniform(&[rows as u32, c.vocab_size as u32, blocks, block_len]);
                let (logits, pairs) = ((&a.logits).into(), (&a.argmax_pairs).into());
                d.push(self.dispatch_bound(
                    &self.pipes.argmax_blocks,
                    &[(1, logits), (3, (&p).into()), (4, pairs)],
                    [blocks, rows as u32, 1],
                ));
                d.push(self.dispatch_bound(
                    &self.pipes.argmax_finish,
                    &[(2, (&a.tokens_out).into()), (3, (&p).into()), (4, pairs)],
                    [rows as u32, 1, 1],
                ));
            }
            OutputKind::Argmax => {
                let p = self.uniform(&[rows as u32, c.vocab_size as u32, 0, 0]);
                d.push(self.dispatch(
                    &self.pipes.argmax,
                    &[&p, &a.logits, &a.tokens_out],
                    [rows as u32, 1, 1],
                ));
            }
            OutputKind::Sample {
                temperature,
                top_p,
                top_k,
            } => {
                // shaders/sample.wgsl's Params, padded to 32 bytes.
                let p = self.uniform(&[
                    rows as u32,
                    c.vocab_size as u32,
                    temperature,
                    top_p,
                    top_k,
                    0,
                    0,
                    0,
                ]);
                d.push(self.dispatch(
                    &self.pipes.sample,
                    &[&p, &a.logits, &io.uniforms, &a.tokens_out],
                    [rows as u32, 1, 1],
                ));
            }
        }
        let last = match output {
            OutputKind::Logits => "head",
            OutputKind::Argmax => "argmax",
            OutputKind::Sample { .. } => "sample",
        };
        tag(&mut kinds, &d, last);
        Ok(Recorded {
            dispatches: d,
            layer_end,
            kinds,
        })
    }
}

/// A part's weights at binding 2: its storage copy, or its codes where quantized
/// ([`super::weights::QuantPart`]). Errors: [`super::weights::Part::storage`]'s.
fn weight_view(part: &super::weights::Part) -> Result<(u32, View<'_>), EngineError> {
    Ok(match &part.quant {
        Some(_) => (2, part.quant_storage()?.0.into()),
        None => (2, part.storage()?.into()),
    })
}

/// A quantized part's (scale, offset) pairs at binding 12 (`quant_weights.wgsl`); nothing
/// for a part in the storage type, whose pipelines have no binding 12. Errors:
/// [`super::weights::Part::quant_storage`]'s.
fn quant_params(part: &super::weights::Part) -> Result<Option<(u32, View<'_>)>, EngineError> {
    match &part.quant {
        Some(_) => Ok(Some((12, part.quant_storage()?.1.into()))),
        None => Ok(None),
    }
}

/// Can a decode product of `rows` rows run on matrix units compiled for K = `k`: a
/// one-part weight in the storage type (not quantized) of that K whose output rows are a multiple of `multiple`, at most 32
/// rows (two 16-row blocks)?
fn coop_fits(w: &Matrix, k: usize, multiple: usize, rows: usize) -> bool {
    w.parts.len() == 1
        && !w.quantized()
        && w.cols == k
        && w.rows.is_multiple_of(multiple)
        && rows <= MATVEC_MAX_ROWS
}
