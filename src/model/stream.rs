//! Host weights handed to an engine one tensor at a time.
//!
//! [`Model::load`] holds every weight in f32 on the host (4 bytes a parameter, about 7× a
//! Q4_K GGUF file: 32 GB for an 8B model), which is what an engine copies to the device
//! from. An engine needs each tensor only while it uploads it, so [`WeightStream::open`]
//! reads a GGUF file's header and checks as [`Model::load`] does and leaves the weights in
//! the file: [`WeightFeed::tensor`] dequantizes each one when the upload asks for it, and
//! the upload drops it once its device copy is made. The host then holds one tensor (the
//! largest: the embedding) and the QKV or gate/up concatenation the upload builds, not
//! the model. A Hugging Face folder is streamed the same way, each tensor read from its
//! shard at the byte range the header gives and converted to f32.
//!
//! Tensor names are GGUF's without `.weight` (`token_embd`, `output_norm`, `output`,
//! `blk.{i}.attn_q`, ...), as [`super::weights`] names them.

use std::borrow::Cow;
use std::path::Path;

use super::config::LlamaConfig;
use super::gguf::{self, GgufFile};
use super::qmatrix::QuantMatrix;
use super::safetensors::HfTensors;
use super::weights::{HostTensor, Weights};
use super::{Model, ModelError, ModelFormat};

/// A model's weights left in its file until an engine's upload reads them
/// ([`WeightStream::open`]).
pub struct WeightStream {
    source: Source,
}

enum Source {
    /// A GGUF file: each tensor read and dequantized when asked for.
    Gguf {
        file: Box<GgufFile>,
        config: LlamaConfig,
    },
    /// A Hugging Face folder: each tensor read from its shard when asked for.
    Hf {
        tensors: Box<HfTensors>,
        config: LlamaConfig,
    },
}

impl WeightStream {
    /// Opens the model at `path` (a GGUF file or a Hugging Face folder,
    /// [`ModelFormat::detect`]) for a streamed upload: the [`Model`] with its config, special
    /// tokens and path, and `Weights::default()` in place of its weights, and the stream
    /// they are read from. A GGUF file gets every check [`Model::load`] makes before its
    /// first tensor and none of its memory check (its f32 weights are never all held); its
    /// tensors' own errors (a non-finite value, a dtype that is not a float, a short read)
    /// come from [`WeightFeed::tensor`], during the upload. The same for a Hugging Face
    /// folder (its config, headers, shards and tensor names are checked here).
    ///
    /// # Errors
    /// [`Model::load`]'s, for the same file.
    pub fn open(path: &Path) -> Result<(Model, WeightStream), ModelError> {
        let format = ModelFormat::detect(path)?;
        let (source, config, special) = match format {
            ModelFormat::Gguf => {
                let (file, config, special) = gguf::open_checked(path)?;
                let file = Box::new(file);
                let source = Source::Gguf {
                    file,
                    config: config.clone(),
                };
                (source, config, special)
            }
            ModelFormat::HfFolder => {
                let (tensors, config, special) = HfTensors::open(path)?;
                let tensors = Box::new(tensors);
                let source = Source::Hf {
                    tensors,
                    config: config.clone(),
                };
                (source, config, special)
            }
        };
        let model = Model {
            path: path.to_path_buf(),
            format,
            config,
            weights: Weights::default(),
            special,
        };
        Ok((model, WeightStream { source }))
    }

    /// Tensor `name` of `shape`, read from the model's file.
    ///
    /// # Errors
    /// The file's: a missing tensor, another shape, a value that is not finite, a short
    /// read ([`ModelError`], naming the file and the tensor as the file names it).
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor, ModelError> {
        match &mut self.source {
            Source::Gguf { file, config } => {
                let path = file.path.clone();
                gguf::read_weight(file, config, name, shape)
                    .and_then(|t| {
                        t.ok_or(ModelError::MissingTensor {
                            path,
                            name: name.to_string(),
                            expected: shape.to_vec(),
                        })
                    })
                    .map_err(gguf::name_with_suffix)
            }
            Source::Hf { tensors, .. } => tensors.read(name, shape),
        }
    }

    /// Whether the wgpu engine's upload would keep any layer product of the file in its
    /// quantization ([`Self::kept_layer_bytes`] finds one): the engine's `auto` for keeping
    /// a quantization on the device asks this before it builds the pipelines that read
    /// one. A Hugging Face folder has none.
    pub fn quantized_layers(&self) -> bool {
        self.kept_layer_bytes().0 > 0
    }

    /// What keeping the file's quantization on the device changes in its weight bytes, by
    /// the wgpu engine's rule (a layer's product, QKV, output, gate/up or down, is kept
    /// where every tensor of it is of a kept type, stacked tensors widened to the widest
    /// codes and smallest group, [`QuantMatrix::stack`]): `(weights, bytes)`, the weights
    /// (parameters) of the kept products and the bytes their codes and (scale, offset)
    /// pairs take ([`QuantMatrix::bytes`]). `(0, 0)` for a Hugging Face folder or a file
    /// with nothing to keep. An estimate for memory checks: a tensor whose scales are not
    /// finite is stored in the storage type instead (read only at upload).
    pub fn kept_layer_bytes(&self) -> (u64, u64) {
        use super::QuantType;
        let Source::Gguf { file, .. } = &self.source else {
            return (0, 0);
        };
        let infos = &file.content.tensor_infos;
        let (mut weights, mut bytes) = (0u64, 0u64);
        for layer in 0.. {
            if !infos.contains_key(&format!("blk.{layer}.attn_q.weight")) {
                break;
            }
            for product in [
                &["attn_q", "attn_k", "attn_v"][..],
                &["attn_output"],
                &["ffn_gate", "ffn_up"],
                &["ffn_down"],
            ] {
                // (weights, widest bits, smallest group) of the product, None where a
                // tensor is missing or of a type not kept.
                let kept = product.iter().try_fold((0u64, 0u32, usize::MAX), |acc, m| {
                    let info = infos.get(&format!("blk.{layer}.{m}.weight"))?;
                    let (bits, group) = QuantType::from_ggml(info.ggml_dtype)?.layout();
                    let n = info.shape.elem_count() as u64;
                    Some((acc.0 + n, acc.1.max(bits), acc.2.min(group)))
                });
                if let Some((n, bits, group)) = kept {
                    weights += n;
                    bytes += n * u64::from(bits) / 8 + n / group as u64 * 8;
                }
            }
        }
        (weights, bytes)
    }

    /// Tensor `name` of `shape` in its file's quantization ([`QuantMatrix`]), Q and K rows
    /// in Hugging Face's RoPE order; `None` where [`Self::take`] must give it instead: a
    /// Hugging Face folder, a GGUF type [`QuantMatrix`] does not take, or a scale that is
    /// not finite (which [`Self::take`] reports).
    ///
    /// # Errors
    /// [`Self::take`]'s, for the same file.
    pub fn take_quant(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<QuantMatrix>, ModelError> {
        match &mut self.source {
            Source::Gguf { file, config } => {
                gguf::read_weight_quant(file, config, name, shape).map_err(gguf::name_with_suffix)
            }
            Source::Hf { .. } => Ok(None),
        }
    }
}

/// Where an engine's upload takes each host tensor from: weights the caller keeps
/// (borrowed), weights it gave up (each moved out when asked for, so it is freed once
/// uploaded), or a [`WeightStream`] (each read when asked for).
pub enum WeightFeed<'a> {
    /// The caller's weights, left in place.
    Borrowed(&'a Weights),
    /// Weights given up: each tensor moved out as it is asked for.
    Owned(Weights),
    /// Weights read from the model's file as they are asked for.
    Stream(&'a mut WeightStream),
}

impl<'a> WeightFeed<'a> {
    /// Tensor `name` (GGUF's name without `.weight`) of `shape`: borrowed from kept
    /// weights, or owned (moved out of given-up weights, or read from the stream). Kept and
    /// given-up weights are returned at their own shape (the engine's caller built them);
    /// a stream's is checked against `shape`.
    ///
    /// # Errors
    /// [`WeightStream::take`]'s; for weights in memory, a name they do not hold.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Cow<'a, HostTensor>, ModelError> {
        let missing =
            || ModelError::Invalid(format!("no host tensor `{name}` in the model's weights"));
        match self {
            WeightFeed::Borrowed(w) => {
                let w: &'a Weights = w;
                w.tensor(name).map(Cow::Borrowed).ok_or_else(missing)
            }
            WeightFeed::Owned(w) => w
                .tensor_mut(name)
                .map(|t| Cow::Owned(std::mem::take(t)))
                .ok_or_else(missing),
            WeightFeed::Stream(s) => s.take(name, shape).map(Cow::Owned),
        }
    }

    /// Tensor `name` of `shape` in its file's quantization, where the feed is a GGUF
    /// stream and the type is one [`QuantMatrix`] takes ([`WeightStream::take_quant`]);
    /// `None` otherwise (weights in memory are f32).
    ///
    /// # Errors
    /// [`WeightStream::take_quant`]'s.
    pub fn quantized(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<QuantMatrix>, ModelError> {
        match self {
            WeightFeed::Stream(s) => s.take_quant(name, shape),
            _ => Ok(None),
        }
    }

    /// Whether the model has an output projection of its own (`output`), or shares the
    /// embedding (tied).
    pub fn has_output(&self) -> bool {
        match self {
            WeightFeed::Borrowed(w) => w.output.is_some(),
            WeightFeed::Owned(w) => w.output.is_some(),
            WeightFeed::Stream(s) => match &s.source {
                Source::Gguf { config, .. } | Source::Hf { config, .. } => !config.tied_embeddings,
            },
        }
    }
}
