//! Llama models from GGUF files (llama.cpp's format), through candle's `gguf_file` reader.
//!
//! Tensors of any type candle can dequantize (Q4_0, Q4_1, Q8_0, F16, F32, the K-quants) are
//! dequantized to f32 on the CPU; Q4_K and Q6_K, the most common quantizations of
//! published GGUF files, through moa's own decoders ([`super::quant`]), checked against
//! candle's in the tests. `attn_q` / `attn_k` rows are un-permuted from llama.cpp's
//! interleaved RoPE layout to the half-split layout (see [`super::weights`]).

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::Device;

use super::config::{ConfigKeys, LlamaConfig, RopeScaling};
use super::qmatrix::{QuantMatrix, QuantType};
use super::weights::{assemble, check_layer_count, check_shape, unpermute_rope_rows, HostTensor};
use super::{io_err, Model, ModelError, ModelFormat, SpecialTokens};

pub use super::gguf_header::{readable_types, UnreadableTensor};

/// An open GGUF file: parsed header (metadata and tensor index) and a reader for the data.
pub struct GgufFile {
    /// The file's path, as given (displayed), for error messages.
    pub path: String,
    /// candle's parse of the header. A tensor of [`GgufFile::unreadable`] is in
    /// `content.tensor_infos` with its shape and offset but a placeholder type (F32):
    /// look its type up there, not in `ggml_dtype`.
    pub content: Content,
    /// The tensors whose ggml type moa cannot read, in file order (empty for a file moa
    /// loads). [`GgufFile::check_readable`] refuses a file that has any; `read_f32`
    /// refuses them one by one.
    pub unreadable: Vec<UnreadableTensor>,
    reader: BufReader<File>,
}

/// A reader that reads each u32 at `zeroed` (byte offsets) as 0, ggml's F32: candle's
/// header parser refuses a type id it does not know, and the unreadable tensors' types
/// are kept in [`GgufFile::unreadable`] instead.
struct TypesZeroed<'a, R> {
    inner: &'a mut R,
    zeroed: &'a [u64],
    /// The inner reader's position, kept here: candle reads the header in many small
    /// reads (a vocabulary of 128k strings), one `lseek` each would be asked otherwise.
    pos: u64,
}

impl<R: std::io::Read + std::io::Seek> std::io::Read for TypesZeroed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.pos;
        let n = self.inner.read(buf)?;
        let end = start + n as u64;
        self.pos = end;
        for &at in self.zeroed {
            for p in at..at + 4 {
                if (start..end).contains(&p) {
                    buf[(p - start) as usize] = 0;
                }
            }
        }
        Ok(n)
    }
}

impl<R: std::io::Seek> std::io::Seek for TypesZeroed<'_, R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

/// Checks that every tensor's data lies inside the file (`size` bytes), by candle's own
/// sizes. Why: a download cut short otherwise loads tensor after tensor (minutes for a big
/// model) and fails at the first missing one with candle's "tensor needs N bytes at offset
/// O, only 0 remaining", which does not say the file is truncated.
fn check_extent(content: &Content, size: u64, skip: &[UnreadableTensor]) -> Result<(), String> {
    let last = content
        .tensor_infos
        .iter()
        // An unreadable tensor's size is not known here (its type is a placeholder).
        .filter(|(name, _)| !skip.iter().any(|u| &u.name == *name))
        .map(|(name, t)| {
            let blocks = (t.shape.elem_count() / t.ggml_dtype.block_size()) as u64;
            let bytes = blocks.saturating_mul(t.ggml_dtype.type_size() as u64);
            let end = content
                .tensor_data_offset
                .saturating_add(t.offset)
                .saturating_add(bytes);
            (end, name)
        })
        .max();
    match last {
        Some((end, name)) if end > size => Err(format!(
            "the file is truncated: it has {size} bytes but its tensor data ends at byte {end} (tensor `{name}`)"
        )),
        _ => Ok(()),
    }
}

impl GgufFile {
    /// Opens `path` and parses its header (metadata and tensor index) only; tensor data is
    /// read later, tensor by tensor. Errors: [`ModelError::Io`] for a file that cannot be
    /// opened, [`ModelError::Format`] for a bad header (not GGUF, a Git LFS pointer, a file of a
    /// Hugging Face folder, tensors past the end of the file).
    pub fn open(path: &Path) -> Result<GgufFile, ModelError> {
        // Only the header is read here (bounded by the checks of `gguf_header`); tensor
        // data is read tensor by tensor, so the file itself may be of any size.
        let (file, size) =
            crate::input::open_regular(path, "GGUF model", u64::MAX).map_err(io_err(path))?;
        let mut reader = BufReader::new(file);
        let header = super::gguf_header::check(&mut reader).map_err(|message| {
            // A file of a Hugging Face folder given instead of the folder (the shard or
            // config a file picker offers) is read as GGUF; say what to give instead.
            let parent = path.parent().filter(|d| d.join("config.json").is_file());
            let hint = match (parent, plan_note(path)) {
                // A plan given where the model goes (`--model plan.toml`) was "not a GGUF
                // file" and no more (round 30).
                (_, Some(what)) if message.contains("`magic`") => format!(
                    "; it is {what}, not a model: a model is a GGUF file or a Hugging Face folder, and a plan goes to --plan"
                ),
                (Some(dir), _) if message.contains("`magic`") => format!(
                    "; it is a file of the Hugging Face folder `{}`: give the folder itself",
                    dir.display()
                ),
                _ => String::new(),
            };
            let message = match super::lfs_pointer_note(path) {
                Some(note) => note,
                None => format!("GGUF header: {message}{hint}"),
            };
            ModelError::Format {
                path: path.display().to_string(),
                message,
            }
        })?;
        let content = if header.type_offsets.is_empty() {
            Content::read(&mut reader)
        } else {
            // `check` left the reader at the start of the file.
            Content::read(&mut TypesZeroed {
                inner: &mut reader,
                zeroed: &header.type_offsets,
                pos: 0,
            })
        }
        .map_err(|e| ModelError::Format {
            path: path.display().to_string(),
            message: format!("not a readable GGUF file: {e}"),
        })?;
        check_extent(&content, size, &header.unreadable).map_err(|message| ModelError::Format {
            path: path.display().to_string(),
            message,
        })?;
        Ok(GgufFile {
            path: path.display().to_string(),
            content,
            unreadable: header.unreadable,
            reader,
        })
    }

    /// Refuses a file with a tensor moa cannot read ([`GgufFile::unreadable`]), naming the
    /// first, the count and types of the rest, and the types moa reads. What every
    /// command that loads the weights (or reads the config for a load) checks first;
    /// `moa model info` lists such a file and `moa plan import` takes its shape.
    pub fn check_readable(&self) -> Result<(), ModelError> {
        match super::gguf_header::refusal(&self.unreadable) {
            None => Ok(()),
            Some(message) => Err(ModelError::Unsupported {
                path: self.path.clone(),
                message,
            }),
        }
    }

    /// The type of tensor `name` by llama.cpp's name (`Q4_K`, `IQ4_XS`), `None` for no such
    /// tensor: candle's `Q4K` is spelled `Q4_K`, an unreadable tensor's type is its own.
    pub fn tensor_type(&self, name: &str) -> Option<String> {
        if let Some(u) = self.unreadable.iter().find(|u| u.name == name) {
            return Some(u.type_name());
        }
        let t = self.content.tensor_infos.get(name)?;
        let shown = format!("{:?}", t.ggml_dtype);
        Some(match shown.strip_suffix('K') {
            Some(q) if !q.ends_with('_') => format!("{q}_K"),
            _ => shown,
        })
    }

    /// Every metadata key and value of the header (`general.*`, `llama.*`, `tokenizer.*`).
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// The value of metadata key `key`; [`ModelError::MissingKey`] where it is absent.
    pub fn get(&self, key: &str) -> Result<&Value, ModelError> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| ModelError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            })
    }

    fn bad(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::BadKey {
            path: self.path.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Any integer type (writers disagree on u32 / u64 / i32).
    pub fn get_usize(&self, key: &str) -> Result<usize, ModelError> {
        let v = self.get(key)?;
        value_to_u64(v)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| match v {
                // Per-layer values (DeciLM, OpenELM write head counts so): printing the
                // whole array hid the point.
                Value::Array(a) => self.bad(
                    key,
                    format!(
                        "is an array of {} values (one per layer?): moa runs models whose \
                         layers all have the same shape, so it needs one non-negative integer",
                        a.len()
                    ),
                ),
                v => self.bad(key, format!("is {v:?}, expected a non-negative integer")),
            })
    }

    /// [`GgufFile::get_usize`], `None` where the key is absent.
    pub fn get_usize_opt(&self, key: &str) -> Result<Option<usize>, ModelError> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(_) => self.get_usize(key).map(Some),
        }
    }

    /// A float key (f32 or f64 stored); [`ModelError::MissingKey`] where absent,
    /// [`ModelError::BadKey`] for any other type.
    pub fn get_f32(&self, key: &str) -> Result<f32, ModelError> {
        match self.get(key)? {
            Value::F32(v) => Ok(*v),
            Value::F64(v) => Ok(*v as f32),
            v => Err(self.bad(key, format!("is {v:?}, expected a float"))),
        }
    }

    /// A string key; [`ModelError::MissingKey`] where absent, [`ModelError::BadKey`] for any
    /// other type.
    pub fn get_str(&self, key: &str) -> Result<&str, ModelError> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            v => Err(self.bad(key, format!("is {:?}, expected a string", v.value_type()))),
        }
    }

    /// [`GgufFile::get_str`], `None` where the key is absent.
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, ModelError> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(_) => self.get_str(key).map(Some),
        }
    }

    /// An array key (e.g. `tokenizer.ggml.tokens`); [`ModelError::MissingKey`] where absent,
    /// [`ModelError::BadKey`] for any other type.
    pub fn get_array(&self, key: &str) -> Result<&Vec<Value>, ModelError> {
        match self.get(key)? {
            Value::Array(a) => Ok(a),
            v => Err(self.bad(key, format!("is {:?}, expected an array", v.value_type()))),
        }
    }

    /// A bool key, `None` where absent; [`ModelError::BadKey`] for any other type.
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, ModelError> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.bad(key, format!("is {v:?}, expected a bool"))),
        }
    }

    /// Shape of a tensor as candle reports it (row-major, `[out, in]` for matrices).
    pub fn tensor_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.content
            .tensor_infos
            .get(name)
            .map(|t| t.shape.dims().to_vec())
    }

    /// Reads and dequantizes one tensor to f32, after checking its shape.
    pub fn read_f32(
        &mut self,
        name: &str,
        expected: &[usize],
    ) -> Result<Option<HostTensor>, ModelError> {
        let Some(found) = self.tensor_shape(name) else {
            return Ok(None);
        };
        check_shape(&self.path, name, expected, &found)?;
        if let Some(u) = self.unreadable.iter().find(|u| u.name == name) {
            return Err(ModelError::Unsupported {
                path: self.path.clone(),
                message: super::gguf_header::refusal(std::slice::from_ref(u)).unwrap_or_default(),
            });
        }
        let path = self.path.clone();
        let fail = |e: candle_core::Error| ModelError::Format {
            path: path.clone(),
            message: format!("cannot read tensor `{name}`: {e}"),
        };
        if let Some(data) = self.read_k_quant(name)? {
            return Ok(Some(HostTensor { shape: found, data }));
        }
        let q = self
            .content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(fail)?;
        let t = q.dequantize(&Device::Cpu).map_err(fail)?;
        let data = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(fail)?;
        Ok(Some(HostTensor { shape: found, data }))
    }
}

impl GgufFile {
    /// A Q4_K or Q6_K tensor's weights through [`super::quant`] (`None`: another type).
    /// Errors: rows that are not whole super-blocks of 256, a short file.
    fn read_k_quant(&mut self, name: &str) -> Result<Option<Vec<f32>>, ModelError> {
        use super::quant::{self, QK_K};
        use candle_core::quantized::GgmlDType;
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Ok(None);
        };
        let (block, decode): (usize, quant::Decoder) = match info.ggml_dtype {
            GgmlDType::Q4K => (quant::Q4_K_BLOCK_BYTES, quant::dequantize_q4_k),
            GgmlDType::Q6K => (quant::Q6_K_BLOCK_BYTES, quant::dequantize_q6_k),
            _ => return Ok(None),
        };
        let (path, dtype) = (self.path.clone(), info.ggml_dtype);
        let bad = move |message: String| ModelError::Format {
            path: path.clone(),
            message: format!("tensor `{name}` ({dtype:?}): {message}"),
        };
        let dims = info.shape.dims().to_vec();
        let row = dims.last().copied().unwrap_or(1);
        if !row.is_multiple_of(QK_K) {
            return Err(bad(format!(
                "rows of {row} weights: K-quant rows must be whole super-blocks of {QK_K}"
            )));
        }
        let elements: usize = dims.iter().product();
        let raw = self.read_raw(name, elements / QK_K * block)?;
        decode(&raw).map(Some).map_err(bad)
    }

    /// The first `bytes` bytes of tensor `name`'s data (a tensor of `tensor_infos`), read
    /// where its offset says. Errors: a short file, naming the tensor, its type and where.
    fn read_raw(&mut self, name: &str, bytes: usize) -> Result<Vec<u8>, ModelError> {
        use std::io::{Read, Seek, SeekFrom};
        let info = &self.content.tensor_infos[name];
        let start = self.content.tensor_data_offset + info.offset;
        let mut raw = vec![0u8; bytes];
        self.reader
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.reader.read_exact(&mut raw))
            .map_err(|e| ModelError::Format {
                path: self.path.clone(),
                message: format!(
                    "tensor `{name}` ({:?}): reading {bytes} bytes at offset {start}: {e}",
                    info.ggml_dtype
                ),
            })?;
        Ok(raw)
    }

    /// Tensor `name`'s blocks as a [`QuantMatrix`], for a 2-D tensor of a type that layout
    /// takes ([`QuantType`]); `None` for any other type (F16, Q5_K, ...) or shape.
    /// Errors: a shape other than `expected`, rows that are not whole blocks, a short file.
    pub fn read_quant(
        &mut self,
        name: &str,
        expected: &[usize],
    ) -> Result<Option<QuantMatrix>, ModelError> {
        let Some(found) = self.tensor_shape(name) else {
            return Ok(None);
        };
        check_shape(&self.path, name, expected, &found)?;
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Ok(None);
        };
        let Some(t) = QuantType::from_ggml(info.ggml_dtype) else {
            return Ok(None);
        };
        let [rows, cols] = found[..] else {
            return Ok(None);
        };
        let path = self.path.clone();
        let bad = move |message: String| ModelError::Format {
            path: path.clone(),
            message: format!("tensor `{name}` ({t:?}): {message}"),
        };
        let (block, block_bytes) = t.block();
        if !cols.is_multiple_of(block) {
            return Err(bad(format!(
                "rows of {cols} weights: {t:?} rows must be whole blocks of {block}"
            )));
        }
        let raw = self.read_raw(name, rows * cols / block * block_bytes)?;
        QuantMatrix::from_gguf(t, &raw, rows, cols)
            .map(Some)
            .map_err(bad)
    }
}

/// [`read_weight`] for a quantized upload: the tensor's blocks as a [`QuantMatrix`] with
/// the Q and K rows in Hugging Face's RoPE order, or `None` where the engine must take
/// the f32 tensor instead: a type [`QuantMatrix`] does not take, a missing tensor, or a
/// scale that is not finite (so [`read_weight`] reports it in its own words).
pub(crate) fn read_weight_quant(
    g: &mut GgufFile,
    config: &LlamaConfig,
    name: &str,
    shape: &[usize],
) -> Result<Option<QuantMatrix>, ModelError> {
    let Some(m) = g.read_quant(&format!("{name}.weight"), shape)? else {
        return Ok(None);
    };
    if m.non_finite().is_some() {
        return Ok(None);
    }
    let head_dim = config.head_dim;
    let heads = if name.ends_with(".attn_q") {
        config.q_heads
    } else if name.ends_with(".attn_k") {
        config.kv_heads
    } else {
        return Ok(Some(m));
    };
    if heads * head_dim != m.rows {
        return Ok(None);
    }
    // As `unpermute_rope_rows`: HF row s·half + j of a head comes from GGUF row 2j + s.
    let half = head_dim / 2;
    Ok(Some(m.reorder_rows(|r| {
        let (h, r) = (r / head_dim, r % head_dim);
        h * head_dim + 2 * (r % half) + r / half
    })))
}

pub(crate) fn value_to_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(u64::from(x)),
        Value::U16(x) => Some(u64::from(x)),
        Value::U32(x) => Some(u64::from(x)),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

/// Reads the file's RoPE scaling (llama.cpp's keys): `llama.rope.scaling.type` `none` or
/// `linear` with `llama.rope.scaling.factor` (a factor without a type is linear, as
/// llama.cpp reads it; the older `llama.rope.scale_linear` likewise), and the
/// `rope_freqs.weight` tensor of per-pair divisors (llama.cpp's converter writes Llama
/// 3.1's `llama3` scaling so; f32, `[head_dim / 2]`). Errors: YaRN or another type, an
/// `attn_factor` other than 1, an unknown `llama.rope.scal*` key, linear scaling and
/// `rope_freqs` together, a `rope_freqs` tensor that is not f32 or cannot be read.
fn read_rope_scaling(g: &GgufFile) -> Result<Option<RopeScaling>, ModelError> {
    let unsupported = |message: String| ModelError::Unsupported {
        path: g.path.clone(),
        message: format!(
            "{message}: moa applies plain RoPE, linear scaling or per-pair factors (allowed: \
             `llama.rope.scaling.type` = `none` or `linear` with `llama.rope.scaling.factor`, \
             the tensor `rope_freqs.weight`)"
        ),
    };
    let number = |v: &Value| match v {
        Value::F32(f) => Some(f64::from(*f)),
        Value::F64(f) => Some(*f),
        v => value_to_u64(v).map(|n| n as f64),
    };
    let mut keys: Vec<&String> = g
        .metadata()
        .keys()
        .filter(|k| k.starts_with("llama.rope.scal"))
        .collect();
    keys.sort();
    let mut factor = None;
    for key in keys {
        let value = &g.metadata()[key];
        let shown = || match value {
            Value::String(s) => format!("`{s}`"),
            v => number(v).map_or_else(|| format!("{v:?}"), |n| n.to_string()),
        };
        match (key.as_str(), value) {
            ("llama.rope.scaling.type", Value::String(s)) if s == "none" || s == "linear" => {}
            ("llama.rope.scaling.factor" | "llama.rope.scale_linear", v) if number(v).is_some() => {
                factor = number(v).filter(|&f| f != 1.0 && f != 0.0).or(factor);
            }
            ("llama.rope.scaling.attn_factor", v) if number(v) == Some(1.0) => {}
            // Informational for linear scaling (YaRN reads them; YaRN is refused above).
            ("llama.rope.scaling.original_context_length", v) if number(v).is_some() => {}
            ("llama.rope.scaling.finetuned", Value::Bool(_)) => {}
            _ => return Err(unsupported(format!("`{key}` = {}", shown()))),
        }
    }
    if g.get_str_opt("llama.rope.scaling.type")? == Some("none") {
        factor = None;
    }
    let Some(info) = g.content.tensor_infos.get("rope_freqs.weight") else {
        return Ok(factor.map(|factor| RopeScaling::Linear { factor }));
    };
    // Its type in `info` is a placeholder (F32) when moa cannot read it.
    if let Some(ty) = g
        .unreadable
        .iter()
        .find(|u| u.name == "rope_freqs.weight")
        .map(UnreadableTensor::type_name)
    {
        return Err(unsupported(format!(
            "tensor `rope_freqs.weight` is {ty}, expected F32"
        )));
    }
    if let Some(f) = factor {
        return Err(unsupported(format!(
            "linear scaling (factor {f}) and the tensor `rope_freqs.weight` together"
        )));
    }
    if info.ggml_dtype != candle_core::quantized::GgmlDType::F32 {
        return Err(unsupported(format!(
            "tensor `rope_freqs.weight` is {:?}, expected F32",
            info.ggml_dtype
        )));
    }
    // Read here, not with the weights: every command that reads the config (not only
    // `load`) must see the scaling. Its own file handle: the config is read through `&`.
    use std::io::{Read, Seek, SeekFrom};
    let n: usize = info.shape.dims().iter().product();
    let start = g.content.tensor_data_offset + info.offset;
    let mut raw = vec![0u8; 4 * n];
    File::open(&g.path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut raw)
        })
        .map_err(|e| ModelError::Format {
            path: g.path.clone(),
            message: format!("cannot read tensor `rope_freqs.weight` ({n} f32 at {start}): {e}"),
        })?;
    let factors = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Some(RopeScaling::FreqFactors(factors)))
}

/// Checks the tensor index against `config` before any tensor data is read: no layer past
/// the config's (`check_layer_count`), no tensor the forward pass would not use
/// (`weights::check_known_tensors`: biases, experts, QK norms), and every tensor's
/// shape. Why here: a 7B file whose last layer has a wrong shape was refused only after
/// every tensor before it was dequantized (minutes), and `moa model info` called it fine.
pub fn check_tensors(g: &GgufFile, config: &LlamaConfig) -> Result<(), ModelError> {
    let names = || g.content.tensor_infos.keys().map(String::as_str);
    check_layer_count(config, &g.path, "llama.block_count", "blk.", names())?;
    super::weights::check_known_tensors(config, &g.path, |n| format!("{n}.weight"), names())?;
    for (name, expected) in super::weights::all_specs(config) {
        let name = format!("{name}.weight");
        if let Some(found) = g.tensor_shape(&name) {
            check_shape(&g.path, &name, &expected, &found).map_err(|e| {
                kv_heads_hint(g, config, &name, &found).map_or(e, |hint| ModelError::Format {
                    path: g.path.clone(),
                    message: hint,
                })
            })?;
        }
    }
    Ok(())
}

/// Why a K or V projection's shape differs when `llama.attention.head_count_kv` is
/// missing: llama.cpp (and moa) then take the query head count, so a GQA file without
/// the key was refused as "tensor `blk.0.attn_k.weight` has shape [64, 256], expected
/// [256, 256]", naming no key.
fn kv_heads_hint(
    g: &GgufFile,
    config: &LlamaConfig,
    name: &str,
    found: &[usize],
) -> Option<String> {
    let kv = name.ends_with("attn_k.weight") || name.ends_with("attn_v.weight");
    if !kv || g.metadata().contains_key("llama.attention.head_count_kv") {
        return None;
    }
    let rows = found
        .iter()
        .copied()
        .find(|&d| d != config.hidden_size)
        .unwrap_or(0);
    let heads = rows.checked_div(config.head_dim).unwrap_or(0);
    Some(format!(
        "tensor `{name}` has shape {found:?}, {heads} KV heads of head_dim {}, but \
         `llama.attention.head_count_kv` is missing, so the KV heads are taken as \
         `llama.attention.head_count` = {} (llama.cpp's default): add the key \
         (llama.attention.head_count_kv = {heads})",
        config.head_dim, config.q_heads
    ))
}

/// Checks the vocabulary against the model, as llama.cpp does when it loads: as many
/// `tokenizer.ggml.tokens` as the embedding has rows, and a `tokenizer.ggml.token_type`
/// (if any) of one integer per token. Why: fewer tokens than rows left ids the model
/// can emit without text (dropped from the answer without a word), more gave ids the
/// model has no row for; a token type that is not an integer, or missing for the last
/// tokens, was taken as a normal token, so a control token was split as text.
pub fn check_vocabulary(g: &GgufFile, config: &LlamaConfig) -> Result<(), ModelError> {
    let Some(Value::Array(tokens)) = g.metadata().get("tokenizer.ggml.tokens") else {
        return Ok(());
    };
    if tokens.len() != config.vocab_size {
        return Err(g.bad(
            "tokenizer.ggml.tokens",
            format!(
                "holds {} tokens but the model has {} (`token_embd.weight` rows / \
                 `llama.vocab_size`): allowed exactly one token per row",
                tokens.len(),
                config.vocab_size
            ),
        ));
    }
    if let Some(types) = g.metadata().get("tokenizer.ggml.token_type") {
        let key = "tokenizer.ggml.token_type";
        let Value::Array(types) = types else {
            return Err(g.bad(key, "is not an array: allowed one integer per token"));
        };
        if types.len() != tokens.len() {
            return Err(g.bad(
                key,
                format!(
                    "holds {} entries for {} tokens: allowed one per token",
                    types.len(),
                    tokens.len()
                ),
            ));
        }
        if let Some(i) = types.iter().position(|t| value_to_u64(t).is_none()) {
            return Err(g.bad(
                key,
                format!(
                    "entry {i} is {:?}: allowed a non-negative integer (llama.cpp's token types)",
                    types[i]
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses special token ids outside the vocabulary (`tokenizer.ggml.bos_token_id` =
/// 99999 over 300 tokens): the BOS was put in front of every prompt and the forward pass
/// failed with "token id 99999 is out of range", naming neither file nor key.
pub fn check_special_tokens(
    g: &GgufFile,
    config: &LlamaConfig,
    special: &SpecialTokens,
) -> Result<(), ModelError> {
    let ids = special
        .bos
        .map(|id| ("tokenizer.ggml.bos_token_id", id))
        .into_iter()
        .chain(
            special
                .eos
                .iter()
                .map(|&id| ("tokenizer.ggml.eos_token_id", id)),
        );
    for (key, id) in ids {
        if id as usize >= config.vocab_size {
            return Err(g.bad(
                key,
                format!(
                    "= {id} is out of range: allowed 0..{} (the model's vocabulary)",
                    config.vocab_size
                ),
            ));
        }
    }
    Ok(())
}

/// Reads the config from `{arch}.*` metadata keys (llama.cpp names) and the tensor index.
pub fn read_config(g: &GgufFile) -> Result<LlamaConfig, ModelError> {
    read_config_checked(g, true)
}

/// [`read_config`] without the RoPE-scaling refusal (`read_rope_scaling`): the shape of
/// a Llama 3.1+ file for the commands that need only its shape (`model::read_shape`).
pub fn read_shape_config(g: &GgufFile) -> Result<LlamaConfig, ModelError> {
    read_config_checked(g, false)
}

fn read_config_checked(g: &GgufFile, rope_scaling: bool) -> Result<LlamaConfig, ModelError> {
    // llama.cpp's LoRA adapters are GGUF files of the base model's architecture (`llama`)
    // without its shape keys: they failed as "missing metadata key `llama.block_count`".
    if let Some(kind) = g.get_str_opt("general.type")? {
        if kind != "model" {
            return Err(ModelError::Unsupported {
                path: g.path.clone(),
                message: format!(
                    "`general.type` is `{kind}`, not `model`: {}; moa runs whole models",
                    if kind == "adapter" {
                        "a LoRA adapter (merge it into its base model first, e.g. with llama.cpp's `llama-export-lora`)"
                    } else {
                        "not a model file"
                    }
                ),
            });
        }
    }
    let arch = g.get_str("general.architecture")?;
    if arch != "llama" {
        return Err(ModelError::Unsupported {
            path: g.path.clone(),
            message: format!("`general.architecture` is `{arch}`, only `llama` is supported"),
        });
    }
    let k = |s: &str| format!("llama.{s}");
    let hidden_size = g.get_usize(&k("embedding_length"))?;
    let q_heads = g.get_usize(&k("attention.head_count"))?;
    let kv_heads = g
        .get_usize_opt(&k("attention.head_count_kv"))?
        .unwrap_or(q_heads);
    let key_length = g.get_usize_opt(&k("attention.key_length"))?;
    let head_dim = match key_length {
        Some(d) => d,
        None if q_heads > 0 => hidden_size / q_heads,
        None => 0,
    };
    if let Some(rot) = g.get_usize_opt(&k("rope.dimension_count"))? {
        if rot != head_dim {
            return Err(ModelError::Unsupported {
                path: g.path.clone(),
                message: format!(
                    "`llama.rope.dimension_count` = {rot} differs from head dim {head_dim}: partial rotary is not supported"
                ),
            });
        }
    }
    let rope_scaling = match read_rope_scaling(g) {
        Ok(scaling) => scaling,
        Err(e) if rope_scaling => return Err(e),
        // The shape-only reader (`read_shape_config`) takes the rest of the config.
        Err(_) => None,
    };
    // Mixtral's GGUF files say `llama` too; without this they failed at the first
    // missing `ffn_gate`, which did not say why.
    if let Some(n) = g.get_usize_opt(&k("expert_count"))? {
        if n > 0 {
            return Err(ModelError::Unsupported {
                path: g.path.clone(),
                message: format!(
                    "`llama.expert_count` = {n}: a mixture-of-experts model (Mixtral-style); moa runs dense Llama MLPs only"
                ),
            });
        }
    }
    let vocab_size = match g.get_usize_opt(&k("vocab_size"))? {
        Some(v) => v,
        None => match g.tensor_shape("token_embd.weight") {
            Some(s) if s.len() == 2 => s[0],
            _ => g.get_array("tokenizer.ggml.tokens")?.len(),
        },
    };
    let rope_theta = if g.metadata().contains_key(&k("rope.freq_base")) {
        g.get_f32(&k("rope.freq_base"))?
    } else {
        10_000.0
    };
    let config = LlamaConfig {
        name: g.get_str_opt("general.name")?.map(str::to_string),
        n_layers: g.get_usize(&k("block_count"))?,
        hidden_size,
        ffn_size: g.get_usize(&k("feed_forward_length"))?,
        q_heads,
        kv_heads,
        head_dim,
        rope_theta,
        rope_scaling,
        rms_norm_eps: g.get_f32(&k("attention.layer_norm_rms_epsilon"))?,
        vocab_size,
        tied_embeddings: g.tensor_shape("output.weight").is_none(),
        // Required, as llama.cpp requires it: a default (2048 here before) let a file
        // without it run past the context its RoPE was trained for, or refused lengths
        // it was trained on, naming a number the file never said.
        context_length: g.get_usize(&k("context_length"))?,
    };
    config.validate(
        &g.path,
        ConfigKeys::Gguf {
            head_dim: key_length.is_some(),
        },
    )?;
    Ok(config)
}

/// bos / eos ids from `tokenizer.ggml.*`.
pub fn read_special_tokens(g: &GgufFile) -> Result<SpecialTokens, ModelError> {
    let id = |key: &str| -> Result<Option<u32>, ModelError> {
        Ok(g.get_usize_opt(key)?.and_then(|v| u32::try_from(v).ok()))
    };
    Ok(SpecialTokens {
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
    })
}

/// Loads config and weights from a GGUF file.
pub fn load(path: &Path) -> Result<Model, ModelError> {
    let (mut g, config, special) = open_checked(path)?;
    let file = g.path.clone();
    let weights = assemble(&config, &file, |name, shape| {
        read_weight(&mut g, &config, name, shape)
    })
    .map_err(name_with_suffix)?;
    Ok(Model {
        path: path.to_path_buf(),
        format: ModelFormat::Gguf,
        config,
        weights,
        special,
    })
}

/// Opens `path` with every check [`load`] makes before its first tensor (readable types,
/// config, special tokens, vocabulary, the tensor index): the file, its config and its
/// special tokens. [`load`] and the streamed load ([`super::stream::WeightStream`]) start
/// here.
pub(crate) fn open_checked(
    path: &Path,
) -> Result<(GgufFile, LlamaConfig, SpecialTokens), ModelError> {
    let g = GgufFile::open(path)?;
    g.check_readable()?;
    let config = read_config(&g)?;
    let special = read_special_tokens(&g)?;
    check_special_tokens(&g, &config, &special)?;
    check_vocabulary(&g, &config)?;
    check_tensors(&g, &config)?;
    Ok((g, config, special))
}

/// One weight of `g` by its name without `.weight` (`token_embd`, `blk.3.attn_q`) at
/// `shape`, as every load takes it: dequantized to f32, `attn_q` / `attn_k` rows
/// un-permuted to the half-split RoPE layout, refused if not finite; `None` where the file
/// has no such tensor ([`name_with_suffix`] names it as the file does in that error).
pub(crate) fn read_weight(
    g: &mut GgufFile,
    config: &LlamaConfig,
    name: &str,
    shape: &[usize],
) -> Result<Option<HostTensor>, ModelError> {
    let Some(mut t) = g.read_f32(&format!("{name}.weight"), shape)? else {
        return Ok(None);
    };
    let (hidden, head_dim) = (config.hidden_size, config.head_dim);
    if name.ends_with(".attn_q") {
        t.data = unpermute_rope_rows(&t.data, config.q_heads, head_dim, hidden);
    } else if name.ends_with(".attn_k") {
        t.data = unpermute_rope_rows(&t.data, config.kv_heads, head_dim, hidden);
    }
    super::weights::check_finite(&g.path, &format!("{name}.weight"), &t)?;
    Ok(Some(t))
}

/// A missing tensor named as the file names it: the getters take names without
/// `.weight` (the convention of [`assemble`]).
pub(crate) fn name_with_suffix(e: ModelError) -> ModelError {
    match e {
        ModelError::MissingTensor {
            path,
            name,
            expected,
        } => ModelError::MissingTensor {
            path,
            name: format!("{name}.weight"),
            expected,
        },
        e => e,
    }
}

/// What kind of plan `path` holds, where its first 4 KiB read as a moa plan's TOML
/// (`format_version` and a `[model]` table) or an upstream MoA plan's JSON (`"alphas"`);
/// `None` for anything else.
fn plan_note(path: &Path) -> Option<&'static str> {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    if text.contains("format_version") && text.contains("[model]") {
        Some("a moa plan (TOML)")
    } else if text.trim_start().starts_with('{') && text.contains("\"alphas\"") {
        Some("an upstream MoA plan (JSON)")
    } else {
        None
    }
}
