//! Weight upload: the model's tensors in device buffers, in the layout the ops read (Q, K
//! and V stacked into one product, gate and up into another). A matrix above the
//! adapter's storage binding limit is split by output rows into parts that each fit one
//! binding (DESIGN.md §7).

#![warn(missing_docs)]

use wgpu::util::DeviceExt;

use super::EngineError;
use crate::lower::StorageType;
use crate::model::weights::layer_specs;
use crate::model::{LlamaConfig, QuantMatrix, WeightFeed};
use crate::runtime::wgpu::tensor_bytes;

/// Rows `[row0, row0 + rows)` of a matrix in one buffer (row-major, `[rows, cols]`).
pub(super) struct Part {
    /// The rows in a storage buffer; `None` where only the texture form is kept (an
    /// engine whose every product of this matrix reads textures: [`Part::storage`]).
    buffer: Option<wgpu::Buffer>,
    /// The part's name in errors (`blk.3.ffn_down[rows 0..512]`).
    label: String,
    /// The same rows as an `Rgba32Uint` texture of [`TextureShape::width`] texels a row
    /// (16-byte words of eight f16, word t at `(t % width, t / width)`, the last row
    /// zero-padded), where the CPU adapters' `linear_words.wgsl` reads them
    /// (`MOA_WGPU_TEXTURE_WEIGHTS`); `None` elsewhere.
    pub(super) texture: Option<wgpu::TextureView>,
    /// The rows in their GGUF file's quantization, where the engine keeps it
    /// (`MOA_WGPU_QUANT_WEIGHTS`); then neither other form exists.
    pub(super) quant: Option<QuantPart>,
    pub(super) row0: usize,
    pub(super) rows: usize,
}

/// A part's rows as a [`QuantMatrix`] on the device, which `quant_weights.wgsl` reads
/// from storage buffers and `quant_weights_texture.wgsl` from textures.
pub(super) struct QuantPart {
    /// The codes (binding 2) and each group's (scale, offset), f32 pairs (binding 12);
    /// `None` where only the texture form is kept ([`Part::quant_storage`]).
    storage: Option<(wgpu::Buffer, wgpu::Buffer)>,
    /// The same codes and pairs as `Rgba32Uint` textures of [`TextureShape::width`] texels
    /// a row (their u32 words four a texel, the last row zero-padded), where the CPU
    /// adapters' `linear_words.wgsl` reads them (`MOA_WGPU_TEXTURE_WEIGHTS`); `None`
    /// elsewhere.
    pub(super) texture: Option<(wgpu::TextureView, wgpu::TextureView)>,
    /// The shaders' `quant` parameter word: bits | log2(group) << 8.
    pub(super) format: u32,
}

impl Part {
    /// Whether the part keeps its storage copy ([`Part::storage`] answers).
    pub(super) fn has_storage(&self) -> bool {
        self.buffer.is_some()
    }

    /// A quantized part's codes and (scale, offset) pairs in storage buffers, which every
    /// quantized product but the texture form of `linear_words.wgsl` reads. Errors: a part
    /// not quantized, or kept only as textures ([`EngineError::Input`], naming it, as
    /// [`Self::storage`]).
    pub(super) fn quant_storage(&self) -> Result<(&wgpu::Buffer, &wgpu::Buffer), EngineError> {
        let q = self.quant.as_ref().ok_or_else(|| {
            EngineError::Input(format!(
                "the weights `{}` are not quantized on the device, and a quantized product \
                 was asked of them",
                self.label
            ))
        })?;
        q.storage.as_ref().map(|(c, p)| (c, p)).ok_or_else(|| {
            EngineError::Input(format!(
                "the weights `{}` are on the device only as textures (MOA_WGPU_TEXTURE_WEIGHTS \
                 with MOA_WGPU_QUANT_WEIGHTS, the CPU adapters' form), and this product reads \
                 storage buffers: build the engine with MOA_WGPU_TEXTURE_WEIGHTS=0, or with \
                 this product's option set at load (MOA_WGPU_SPLIT_K=1)",
                self.label
            ))
        })
    }

    /// The storage-buffer form, which every product but the texture form of
    /// `linear_words.wgsl` and the embedding gather read. Errors: a part kept only as a
    /// texture ([`EngineError::Input`], naming it and how to keep both forms): the engine
    /// drops the storage copies only where none of its paths reads them, so this is a
    /// path switched on after load (`WgpuEngine::set_split_k_matvec`).
    pub(super) fn storage(&self) -> Result<&wgpu::Buffer, EngineError> {
        if self.quant.is_some() {
            // The engine keeps every path that reads a storage copy off quantized parts
            // (`Matrix::quantized`); reaching here is a path that forgot to ask.
            return Err(EngineError::Input(format!(
                "the weights `{}` are on the device in their GGUF quantization \
                 (MOA_WGPU_QUANT_WEIGHTS), which this product cannot read: build the engine \
                 with MOA_WGPU_QUANT_WEIGHTS=0",
                self.label
            )));
        }
        self.buffer.as_ref().ok_or_else(|| {
            EngineError::Input(format!(
                "the weights `{}` are on the device only as a texture (MOA_WGPU_TEXTURE_WEIGHTS, \
                 the CPU adapters' default), and this product reads a storage buffer: build \
                 the engine with MOA_WGPU_TEXTURE_WEIGHTS=0, or with this product's option \
                 set at load (MOA_WGPU_SPLIT_K=1)",
                self.label
            ))
        })
    }
}

/// The texture form of the product weights: `width` texels (16 bytes each) a texture row,
/// at most `max_height` rows a texture (the device's `max_texture_dimension_2d`).
#[derive(Clone, Copy, Debug)]
pub(super) struct TextureShape {
    pub(super) width: u32,
    pub(super) max_height: u32,
}

/// Texels a texture row of the product weights (the shader's `TEX_WIDTH` default): the
/// probe's layout (benches/lavapipe/s52/tex_probe.rs), within every adapter's 2D limit.
pub(super) const TEXTURE_WIDTH: u32 = 8192;

/// A row-major `[rows, cols]` matrix on the device, as one or more row ranges (parts), each
/// within the storage binding limit. A product reads one part per dispatch and writes the
/// part's columns of the output; the embedding gather reads the part holding the token.
pub(super) struct Matrix {
    pub(super) parts: Vec<Part>,
    pub(super) rows: usize,
    pub(super) cols: usize,
}

impl Matrix {
    /// Bytes of the largest quantized part written out in f16 (0: none is quantized):
    /// the size of the engine's dequantization scratch.
    pub(super) fn quant_scratch_bytes(&self) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.quant.is_some())
            .map(|p| (p.rows * self.cols * 2) as u64)
            .max()
            .unwrap_or(0)
    }

    /// Whether the matrix is kept in its file's quantization ([`Part::quant`]; all parts
    /// alike), which only `linear_words.wgsl` and `matvec.wgsl`'s quantized forms read.
    pub(super) fn quantized(&self) -> bool {
        self.parts.iter().any(|p| p.quant.is_some())
    }
}

/// A quantized part's codes or pairs (`data`, `rows` rows of `units` of `unit` u32 each:
/// a code word, or a pair's two f32 bits) in the texture form's order
/// (`quant_weights_texture.wgsl`): in blocks of four rows, unit j of the block's four rows
/// side by side at `(block · units + j) · 4 + row % 4`, so one 16-byte texel holds a code
/// word of four output columns, or the pairs of two; `rows` padded to a multiple of 4
/// with zeros.
pub(super) fn column_blocks(data: &[u32], rows: usize, unit: usize) -> Vec<u32> {
    let units = data.len() / rows.max(1) / unit;
    let mut out = vec![0u32; rows.div_ceil(4) * 4 * units * unit];
    for r in 0..rows {
        for j in 0..units {
            let from = (r * units + j) * unit;
            let to = (((r / 4) * units + j) * 4 + r % 4) * unit;
            out[to..to + unit].copy_from_slice(&data[from..from + unit]);
        }
    }
    out
}

/// How many rows of `cols` elements of `elem` bytes go into one part under a binding limit
/// of `max_binding` bytes: all `rows` when they fit, else the most that fit, rounded down to
/// a multiple of 4 (the products' column block) when at least 8 fit. Errors: a single row
/// above the limit, naming the tensor.
pub fn rows_per_part(
    name: &str,
    rows: usize,
    cols: usize,
    elem: u64,
    max_binding: u64,
) -> Result<usize, EngineError> {
    let row_bytes = cols as u64 * elem;
    let total = (rows as u64 * row_bytes).next_multiple_of(4);
    if total <= max_binding {
        return Ok(rows.max(1));
    }
    // Part sizes are padded to 4 bytes: keep the padded size within the limit.
    let fit = (max_binding.saturating_sub(3) / row_bytes.max(1)) as usize;
    if fit == 0 {
        return Err(EngineError::TooLarge {
            name: format!("{name} (one row of {cols} elements)"),
            bytes: row_bytes,
            limit: max_binding,
        });
    }
    Ok(if fit >= 8 { fit / 4 * 4 } else { fit })
}

/// One decoder block's weights on the device.
pub(super) struct LayerBuffers {
    pub(super) attn_norm: wgpu::Buffer,
    /// `[(q_heads + 2 kv_heads) * head_dim, hidden]`: q, k, v projections stacked.
    pub(super) wqkv: Matrix,
    pub(super) wo: Matrix,
    pub(super) ffn_norm: wgpu::Buffer,
    /// `[2 ffn, hidden]`: gate then up, so one linear feeds SwiGLU.
    pub(super) w_gate_up: Matrix,
    pub(super) w_down: Matrix,
}

/// Every weight of a model on the device.
pub(super) struct DeviceWeights {
    /// `[vocab, hidden]`, in the storage type.
    pub(super) embed: Matrix,
    /// `[vocab, hidden]`; `None`: tied to `embed`.
    pub(super) lm_head: Option<Matrix>,
    /// `[hidden]`, f32.
    pub(super) output_norm: wgpu::Buffer,
    pub(super) layers: Vec<LayerBuffers>,
    /// Bytes of all of them.
    pub(super) bytes: u64,
}

/// Creates the weight buffers and counts their bytes.
struct Uploader<'d> {
    device: &'d wgpu::Device,
    queue: &'d wgpu::Queue,
    max_binding: u64,
    bytes: u64,
    /// Bytes uploaded since the last flush.
    pending: u64,
    /// Where f16 matrices with `cols` a multiple of 8 also get the texture form.
    texture: Option<TextureShape>,
    /// Whether a matrix with the texture form also keeps its storage copy (`false`: only
    /// the texture).
    storage_copies: bool,
}

/// Flush uploads every this many bytes. A buffer created with contents goes through a
/// staging copy that wgpu frees only after the next submission completes; without
/// flushing, a model's weights would briefly need twice their size (measured: 10 GB
/// resident for the Llama-3.2-1B shape's 2.5 GB of f16 weights plus 5 GB of f32 host copy
/// on lavapipe, where device memory is host memory).
const FLUSH_BYTES: u64 = 256 << 20;

impl<'d> Uploader<'d> {
    /// An uploader with nothing sent yet.
    fn new(
        device: &'d wgpu::Device,
        queue: &'d wgpu::Queue,
        max_binding: u64,
        texture: Option<TextureShape>,
        storage_copies: bool,
    ) -> Self {
        Uploader {
            device,
            queue,
            max_binding,
            bytes: 0,
            pending: 0,
            texture,
            storage_copies,
        }
    }

    fn buffer(&mut self, name: &str, bytes: &[u8]) -> Result<wgpu::Buffer, EngineError> {
        self.bytes += bytes.len() as u64;
        if bytes.len() as u64 > self.max_binding {
            return Err(EngineError::TooLarge {
                name: name.to_string(),
                bytes: bytes.len() as u64,
                limit: self.max_binding,
            });
        }
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(name),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE,
            });
        self.pending += bytes.len() as u64;
        if self.pending >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(buffer)
    }

    /// Submits the pending uploads and waits, so their staging copies are freed.
    fn flush(&mut self) -> Result<(), EngineError> {
        self.pending = 0;
        self.queue.submit([]);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| EngineError::Gpu {
                what: "uploading weights".into(),
                message: e.to_string(),
            })
    }

    /// `data` as a `[rows, data.len() / rows]` matrix in `t`, split by rows over the limit.
    fn matrix(
        &mut self,
        name: &str,
        data: &[f32],
        rows: usize,
        t: StorageType,
    ) -> Result<Matrix, EngineError> {
        let cols = data.len() / rows;
        let texture = self
            .texture
            .filter(|_| t == StorageType::F16 && cols.is_multiple_of(8) && cols > 0);
        let keep_buffer = texture.is_none() || self.storage_copies;
        // Parts stay within the binding limit even without a storage copy: the same
        // parts (and dispatches) whichever forms are kept.
        let mut per = rows_per_part(name, rows, cols, t.bytes() as u64, self.max_binding)?;
        if let Some(shape) = texture {
            // A part's words must also fit one texture: width × max_height 16-byte texels,
            // with the same rounding as a binding's parts.
            let capacity = u64::from(shape.width) * u64::from(shape.max_height) * 16;
            let name = format!("{name} as a texture");
            per = per.min(rows_per_part(
                &name,
                rows,
                cols,
                t.bytes() as u64,
                capacity,
            )?);
        }
        let mut parts = Vec::new();
        let mut row0 = 0;
        while row0 < rows {
            let n = per.min(rows - row0);
            let slice = &data[row0 * cols..(row0 + n) * cols];
            let label = if per >= rows {
                name.to_string()
            } else {
                format!("{name}[rows {row0}..{}]", row0 + n)
            };
            let bytes = tensor_bytes(slice, t);
            let texture = match texture {
                Some(shape) => Some(self.texture(&label, &bytes, shape)?),
                None => None,
            };
            let buffer = if keep_buffer {
                Some(self.buffer(&label, &bytes)?)
            } else {
                None
            };
            parts.push(Part {
                buffer,
                label,
                texture,
                quant: None,
                row0,
                rows: n,
            });
            row0 += n;
        }
        Ok(Matrix { parts, rows, cols })
    }

    /// `m` in its quantization, split by rows as its f16 copy would be: a prefill's
    /// products on matrix units or tiles read each part written out in f16 (`dequant.wgsl`
    /// into one scratch binding), and the codes and params (at most 1.5 bytes a weight)
    /// then fit too. With the texture form (`self.texture`), the codes and pairs go into
    /// textures too, and the storage buffers are kept only with `storage_copies`, as an
    /// f16 matrix's are ([`Self::matrix`]).
    fn quant_matrix(&mut self, name: &str, m: &QuantMatrix) -> Result<Matrix, EngineError> {
        let mut per = rows_per_part(name, m.rows, m.cols, 2, self.max_binding)?;
        if let Some(shape) = self.texture {
            // The codes (at most a byte a weight) must fit one texture, as an f16 part's
            // words do; the pairs take less.
            let capacity = u64::from(shape.width) * u64::from(shape.max_height) * 16;
            let name = format!("{name} as a texture");
            per = per.min(rows_per_part(&name, m.rows, m.cols, 1, capacity)?);
        }
        let keep_buffer = self.texture.is_none() || self.storage_copies;
        let format = m.bits | (m.group.trailing_zeros() << 8);
        let mut parts = Vec::new();
        let mut row0 = 0;
        while row0 < m.rows {
            let n = per.min(m.rows - row0);
            let label = if per >= m.rows {
                name.to_string()
            } else {
                format!("{name}[rows {row0}..{}]", row0 + n)
            };
            let rows = m.rows_range(row0, n);
            let (codes, pairs): (&[u8], &[u8]) = (
                bytemuck::cast_slice(&rows.codes),
                bytemuck::cast_slice(&rows.params),
            );
            let pairs_name = format!("{label} scales");
            let texture = match self.texture {
                Some(shape) => {
                    let codes = column_blocks(&rows.codes, n, 1);
                    let pairs: &[u32] = bytemuck::cast_slice(&rows.params);
                    let pairs = column_blocks(pairs, n, 2);
                    Some((
                        self.texture(&label, bytemuck::cast_slice(&codes), shape)?,
                        self.texture(&pairs_name, bytemuck::cast_slice(&pairs), shape)?,
                    ))
                }
                None => None,
            };
            let storage = if keep_buffer {
                Some((
                    self.buffer(&label, codes)?,
                    self.buffer(&pairs_name, pairs)?,
                ))
            } else {
                None
            };
            parts.push(Part {
                buffer: None,
                label,
                texture: None,
                quant: Some(QuantPart {
                    storage,
                    texture,
                    format,
                }),
                row0,
                rows: n,
            });
            row0 += n;
        }
        Ok(Matrix {
            parts,
            rows: m.rows,
            cols: m.cols,
        })
    }

    /// `bytes` as an `Rgba32Uint` texture of `shape.width` texels a row, the last texel and
    /// row zero-padded; the caller keeps the texels within `shape.width × shape.max_height`.
    /// Bytes of less than one row get a texture only as wide as they need: a shader's
    /// texel t < width sits at `(t % TEX_WIDTH, 0)` whichever the width, and a row of 8192
    /// texels (128 KiB) a quantized part's pairs would be mostly padding.
    fn texture(
        &mut self,
        name: &str,
        bytes: &[u8],
        shape: TextureShape,
    ) -> Result<wgpu::TextureView, EngineError> {
        let texels = (bytes.len().div_ceil(16) as u64).max(1);
        let width = u64::from(shape.width).min(texels);
        let height = texels.div_ceil(width);
        let mut padded = bytes.to_vec();
        padded.resize((width * height * 16) as usize, 0);
        self.bytes += padded.len() as u64;
        let texture = self.device.create_texture_with_data(
            self.queue,
            &wgpu::TextureDescriptor {
                label: Some(name),
                size: wgpu::Extent3d {
                    width: width as u32,
                    height: height as u32,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Uint,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            &padded,
        );
        self.pending += padded.len() as u64;
        if self.pending >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(texture.create_view(&Default::default()))
    }

    /// A norm vector in f32, in one binding.
    fn vector(&mut self, name: &str, data: &[f32]) -> Result<wgpu::Buffer, EngineError> {
        self.buffer(name, &tensor_bytes(data, StorageType::F32))
    }
}

impl DeviceWeights {
    /// Uploads the weights `feed` gives (`config`'s tensors, asked for one at a time and
    /// dropped once on the device: [`WeightFeed`]): matrices in `storage`, split by rows where above the adapter's storage
    /// binding limit (`max_binding` bytes) or, with `texture`, above a texture's words;
    /// norms in f32. With `texture`, f16 matrices whose columns are a multiple of 8 get
    /// the texture form too ([`Part::texture`]), and keep their storage copy only with
    /// `storage_copies`. With `quantized`, a layer's product whose every tensor the feed
    /// gives quantized ([`WeightFeed::quantized`]: a GGUF stream of a type in
    /// [`crate::model::KEPT_TYPES`]) is kept that way ([`Part::quant`], types stacked into one widened as
    /// [`QuantMatrix::stack`] says); the embedding and the LM head stay in `storage` (the
    /// gather and the head's products read it). `bytes` counts every form kept. A norm vector or a single matrix row above
    /// the limit is [`EngineError::TooLarge`], naming it; a tensor the feed cannot give is
    /// [`EngineError::Model`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn upload(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: &LlamaConfig,
        mut feed: WeightFeed<'_>,
        storage: StorageType,
        max_binding: u64,
        texture: Option<TextureShape>,
        storage_copies: bool,
        quantized: bool,
    ) -> Result<DeviceWeights, EngineError> {
        let mut up = Uploader::new(device, queue, max_binding, texture, storage_copies);
        // Each host tensor is asked for when its matrix is made and dropped right after:
        // given-up weights are moved out one by one and a stream reads each from the file
        // then, so the host copy shrinks as the device copy grows (`ModelRef::Taken`) or
        // never exists whole (`ModelRef::Streamed`).
        let (vocab, hidden) = (config.vocab_size, config.hidden_size);
        let embed = {
            let t = feed.tensor("token_embd", &[vocab, hidden])?;
            up.matrix("token_embd", &t.data, t.shape[0], storage)?
        };
        let lm_head = match feed.has_output() {
            true => {
                let t = feed.tensor("output", &[vocab, hidden])?;
                Some(up.matrix("output", &t.data, t.shape[0], storage)?)
            }
            false => None,
        };
        let output_norm = up.vector("output_norm", &feed.tensor("output_norm", &[hidden])?.data)?;
        let mut buffers = Vec::new();
        for i in 0..config.n_layers {
            let [attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down] =
                layer_specs(config);
            let blk = |name: &str| format!("blk.{i}.{name}");
            let attn_norm = {
                let (name, shape) = attn_norm;
                up.vector(&blk(name), &feed.tensor(&blk(name), &shape)?.data)?
            };
            // The products: stacked from their tensors, each kept in its quantization
            // where asked and every tensor of the product has one, else in `storage`.
            let product = |up: &mut Uploader,
                           feed: &mut WeightFeed<'_>,
                           name: &str,
                           specs: &[(&str, Vec<usize>)]|
             -> Result<Matrix, EngineError> {
                if quantized {
                    let mut parts = Vec::new();
                    for (n, shape) in specs {
                        match feed.quantized(&blk(n), shape)? {
                            Some(m) => parts.push(m),
                            None => break,
                        }
                    }
                    if parts.len() == specs.len() {
                        if let Some(m) = QuantMatrix::stack(&parts) {
                            drop(parts);
                            return up.quant_matrix(&blk(name), &m);
                        }
                    }
                }
                let mut rows = 0;
                let mut cat = Vec::new();
                for (n, shape) in specs {
                    let t = feed.tensor(&blk(n), shape)?;
                    rows += t.shape[0];
                    cat.extend_from_slice(&t.data);
                }
                up.matrix(&blk(name), &cat, rows, storage)
            };
            let wqkv = product(&mut up, &mut feed, "attn_qkv", &[attn_q, attn_k, attn_v])?;
            let wo = product(&mut up, &mut feed, "attn_output", &[attn_output])?;
            let ffn_norm = {
                let (name, shape) = ffn_norm;
                up.vector(&blk(name), &feed.tensor(&blk(name), &shape)?.data)?
            };
            let w_gate_up = product(&mut up, &mut feed, "ffn_gate_up", &[ffn_gate, ffn_up])?;
            let w_down = product(&mut up, &mut feed, "ffn_down", &[ffn_down])?;
            buffers.push(LayerBuffers {
                attn_norm,
                wqkv,
                wo,
                ffn_norm,
                w_gate_up,
                w_down,
            });
        }
        up.flush()?;
        Ok(DeviceWeights {
            embed,
            lm_head,
            output_norm,
            layers: buffers,
            bytes: up.bytes,
        })
    }
}

/// `data` (`[rows, data.len() / rows]`) as a [`Matrix`] in f16 with the texture form of
/// `shape` and a binding limit of `max_binding` bytes: the texture products' unit test,
/// which forces small textures so a matrix splits into several parts.
#[cfg(test)]
pub(super) fn texture_matrix(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    data: &[f32],
    rows: usize,
    shape: TextureShape,
    max_binding: u64,
) -> Result<Matrix, EngineError> {
    let mut up = Uploader::new(device, queue, max_binding, Some(shape), true);
    let m = up.matrix("texture test", data, rows, StorageType::F16)?;
    up.flush()?;
    Ok(m)
}

/// `m` as a quantized [`Matrix`] with the texture form of `shape` (and its storage copies):
/// the quantized texture products' unit test, which forces small textures so a matrix
/// splits into several parts of several texture rows.
#[cfg(test)]
pub(super) fn texture_quant_matrix(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    m: &QuantMatrix,
    shape: TextureShape,
) -> Result<Matrix, EngineError> {
    let mut up = Uploader::new(device, queue, u64::MAX, Some(shape), true);
    let out = up.quant_matrix("texture test", m)?;
    up.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::column_blocks;

    /// Rows 0..6 of three units of one u32 (codes) and of two (pairs): four rows a block,
    /// unit j of the block's rows side by side, the sixth row's block padded with zeros.
    #[test]
    fn column_blocks_put_four_rows_side_by_side() {
        let data: Vec<u32> = (1..=18).collect();
        let codes = column_blocks(&data, 6, 1);
        assert_eq!(
            codes,
            [1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12, 13, 16, 0, 0, 14, 17, 0, 0, 15, 18, 0, 0]
        );
        let pairs = column_blocks(&data[..12], 3, 2);
        assert_eq!(pairs, [1, 2, 5, 6, 9, 10, 0, 0, 3, 4, 7, 8, 11, 12, 0, 0]);
    }
}
