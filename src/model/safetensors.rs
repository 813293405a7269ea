//! Llama models from Hugging Face folders: `config.json` plus `*.safetensors` (one file or
//! shards listed in `model.safetensors.index.json`), any float dtype converted to f32. Q/K
//! rows are already in the half-split RoPE layout moa uses. Each tensor is read from its
//! file at the byte range its checked header gives (`HfTensors`), so no shard is held
//! whole.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::config::{ConfigKeys, LlamaConfig, RopeScaling};
use super::weights::{assemble, check_layer_count, check_shape, HostTensor};
use super::{io_err, Model, ModelError, ModelFormat, SpecialTokens};

/// Hugging Face tensor name of a GGUF-style name (`blk.3.attn_q` → `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_tensor_name(gguf_name: &str) -> String {
    match gguf_name {
        "token_embd" => return "model.embed_tokens.weight".into(),
        "output_norm" => return "model.norm.weight".into(),
        "output" => return "lm_head.weight".into(),
        _ => {}
    }
    let (layer, part) = gguf_name
        .strip_prefix("blk.")
        .and_then(|s| s.split_once('.'))
        .unwrap_or(("?", gguf_name));
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        other => other,
    };
    format!("model.layers.{layer}.{hf}.weight")
}

fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text = crate::input::read_to_string(path, "JSON config", crate::input::MAX_TEXT_BYTES)
        .map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Format {
        path: path.display().to_string(),
        message: super::lfs_pointer_note(path).unwrap_or_else(|| format!("invalid JSON: {e}")),
    })
}

/// A `config.json` with typed accessors whose errors name the key.
struct HfConfig<'a> {
    path: String,
    json: &'a Value,
}

impl HfConfig<'_> {
    fn opt_usize(&self, key: &str) -> Result<Option<usize>, ModelError> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| ModelError::BadKey {
                    path: self.path.clone(),
                    key: key.into(),
                    message: format!("is `{v}`, expected a non-negative integer"),
                }),
        }
    }
    /// `true`/`false`, absent or null: `None`. Anything else (`"true"`, `1`) is refused:
    /// read as absent, `"tie_word_embeddings": "true"` made a tied model untied, and the
    /// load then failed on a missing `lm_head.weight`, naming no key.
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ModelError> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(ModelError::BadKey {
                path: self.path.clone(),
                key: key.into(),
                message: format!("is `{v}`, expected true or false (a JSON boolean)"),
            }),
        }
    }
    fn usize(&self, key: &str) -> Result<usize, ModelError> {
        self.opt_usize(key)?.ok_or_else(|| ModelError::MissingKey {
            path: self.path.clone(),
            key: key.into(),
        })
    }
    fn opt_f32(&self, key: &str) -> Result<Option<f32>, ModelError> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|v| Some(v as f32))
                .ok_or_else(|| ModelError::BadKey {
                    path: self.path.clone(),
                    key: key.into(),
                    message: format!("is `{v}`, expected a number"),
                }),
        }
    }
    /// A special token id or a list of them (`eos_token_id` may be either; absent or
    /// null is none). An id that is not a non-negative integer, or is not below
    /// `vocab_size`, is refused naming the file, the key, the value and the vocabulary
    /// size, as the GGUF loader refuses `tokenizer.ggml.*_token_id` (one read past, then
    /// put in front of a prompt by a chat template, failed in the forward pass naming
    /// neither file nor key).
    fn ids(&self, key: &str, vocab_size: usize) -> Result<Vec<u32>, ModelError> {
        let bad = |v: &Value, why: &str| ModelError::BadKey {
            path: self.path.clone(),
            key: key.into(),
            message: format!("is `{v}`: {why}"),
        };
        let one = |v: &Value| -> Result<u32, ModelError> {
            let id = v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(v, "expected a token id (a non-negative integer)"))?;
            if id as usize >= vocab_size {
                return Err(bad(
                    v,
                    &format!(
                        "out of range: allowed 0..{vocab_size} (`vocab_size`, the model's \
                         vocabulary)"
                    ),
                ));
            }
            Ok(id)
        };
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(one).collect(),
            Some(v) => Ok(vec![one(v)?]),
        }
    }
}

/// Reads the config from a folder's `config.json` (transformers' `LlamaConfig` keys and
/// defaults).
pub fn read_config(dir: &Path) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    read_config_checked(dir, true)
}

/// [`read_config`] without the `rope_scaling` refusal: the shape of a Llama 3.1+ folder
/// for the commands that need only its shape (`model::read_shape`).
pub fn read_shape_config(dir: &Path) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    read_config_checked(dir, false)
}

fn read_config_checked(
    dir: &Path,
    rope_scaling: bool,
) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    let path = dir.join("config.json");
    if !path.exists() {
        // A folder given as --model is read as a Hugging Face folder; one that holds a
        // GGUF file (the model cache, a download folder) is a common slip.
        let ggufs: Vec<String> = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .map(|p| format!("`{}`", p.display()))
            .collect();
        let hint = if !ggufs.is_empty() {
            format!("; it holds {}: pass a GGUF file itself", ggufs.join(", "))
        } else if dir.join("adapter_config.json").is_file() {
            // A PEFT (LoRA) adapter folder: weights of a difference, not of a model.
            "; it holds `adapter_config.json`: a PEFT/LoRA adapter, not a model (merge it \
             into its base model first, e.g. peft's `merge_and_unload`, and save that)"
                .to_string()
        } else {
            String::new()
        };
        return Err(ModelError::Format {
            path: dir.display().to_string(),
            message: format!(
                "a folder is read as a Hugging Face model, and this one has no `config.json`{hint}"
            ),
        });
    }
    let json = read_json(&path)?;
    if !json.is_object() {
        // A list or a bare value would otherwise be refused as missing `hidden_size`.
        let kind = match json {
            Value::Array(_) => "a list",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ModelError::Format {
            path: path.display().to_string(),
            message: format!(
                "holds {kind}, not an object of the model's settings (`hidden_size`, \
                 `num_hidden_layers`, …) as transformers writes it"
            ),
        });
    }
    let c = HfConfig {
        path: path.display().to_string(),
        json: &json,
    };
    let archs: Vec<&str> = json
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let model_type = json.get("model_type").and_then(Value::as_str);
    let mistral = model_type == Some("mistral") || archs.contains(&"MistralForCausalLM");
    if mistral {
        check_mistral_window(&c)?;
    } else if model_type.is_some_and(|t| t != "llama") && !archs.contains(&"LlamaForCausalLM") {
        return Err(ModelError::Unsupported {
            path: c.path.clone(),
            message: format!(
                "`model_type` is `{}`, only `llama` (and `mistral` without a sliding window) \
                 is supported",
                model_type.unwrap_or("?")
            ),
        });
    }
    // RoPE scaling moa applies (linear, llama3) is read into the config; any other kind
    // is refused, except by the commands that need only the shape (`rope_scaling` false).
    let rope_scaling = match json.get("rope_scaling") {
        None => None,
        Some(v) => match read_rope_scaling(&c.path, v) {
            Ok(scaling) => scaling,
            Err(e) if rope_scaling => return Err(e),
            Err(_) => None,
        },
    };
    for key in ["attention_bias", "mlp_bias"] {
        if json.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(ModelError::Unsupported {
                path: c.path.clone(),
                message: format!("`{key}` = true is not supported"),
            });
        }
    }
    // Keys whose other values change the computation (the GGUF loader refuses partial
    // rotary by `llama.rope.dimension_count` too): read past, they ran a gelu model with
    // SiLU, or rotated every dimension of a partial-rotary one, without a word.
    if let Some(act) = json.get("hidden_act").filter(|v| !v.is_null()) {
        if act.as_str() != Some("silu") {
            return Err(ModelError::Unsupported {
                path: c.path.clone(),
                message: format!(
                    "`hidden_act` is {act}, only \"silu\" (Llama's SwiGLU) is supported"
                ),
            });
        }
    }
    if let Some(f) = json.get("partial_rotary_factor").filter(|v| !v.is_null()) {
        if f.as_f64() != Some(1.0) {
            return Err(ModelError::Unsupported {
                path: c.path.clone(),
                message: format!(
                    "`partial_rotary_factor` is {f}: partial rotary is not supported (allowed 1.0)"
                ),
            });
        }
    }
    let hidden_size = c.usize("hidden_size")?;
    let q_heads = c.usize("num_attention_heads")?;
    let head_dim_key = c.opt_usize("head_dim")?;
    let head_dim = match head_dim_key {
        Some(d) => d,
        None => hidden_size.checked_div(q_heads).unwrap_or(0),
    };
    let config = LlamaConfig {
        name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        n_layers: c.usize("num_hidden_layers")?,
        hidden_size,
        ffn_size: c.usize("intermediate_size")?,
        q_heads,
        kv_heads: c.opt_usize("num_key_value_heads")?.unwrap_or(q_heads),
        head_dim,
        rope_theta: c.opt_f32("rope_theta")?.unwrap_or(10_000.0),
        rope_scaling,
        rms_norm_eps: c.opt_f32("rms_norm_eps")?.unwrap_or(1e-6),
        vocab_size: c.usize("vocab_size")?,
        // Absent: false, as transformers' LlamaConfig defaults it.
        tied_embeddings: c.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        context_length: c.opt_usize("max_position_embeddings")?.unwrap_or(2048),
    };
    config.validate(
        &c.path,
        ConfigKeys::HfConfig {
            head_dim: head_dim_key.is_some(),
        },
    )?;
    let mut special = SpecialTokens {
        bos: c.ids("bos_token_id", config.vocab_size)?.first().copied(),
        eos: c.ids("eos_token_id", config.vocab_size)?,
    };
    // generation_config.json, when present, is what transformers' generate() stops on.
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let gen = read_json(&gen_path)?;
        let g = HfConfig {
            path: gen_path.display().to_string(),
            json: &gen,
        };
        let eos = g.ids("eos_token_id", config.vocab_size)?;
        if !eos.is_empty() {
            special.eos = eos;
        }
    }
    Ok((config, special))
}

/// A Mistral folder (`model_type` `mistral`, `MistralForCausalLM`) has Llama's tensors and
/// computation except for `sliding_window`: Mistral-7B-v0.1 limits every layer's attention
/// to the last 4096 tokens, v0.2 and later set it to `null`. moa runs the model as Llama, so
/// it accepts a window that is `null`, absent, or at least `max_position_embeddings` (no
/// position the model accepts sees it), and refuses a smaller one, which would change the
/// dense model's attention past the window without a word (transformers'
/// `MistralAttention`, `sliding_window` in `MistralConfig`).
///
/// Errors: [`ModelError::Unsupported`] naming `config.json`, the window and the context.
fn check_mistral_window(c: &HfConfig) -> Result<(), ModelError> {
    let window = match c.json.get("sliding_window") {
        None | Some(Value::Null) => return Ok(()),
        Some(v) => v,
    };
    let context = c.opt_usize("max_position_embeddings")?.unwrap_or(2048);
    match window.as_u64() {
        Some(w) if w >= context as u64 => Ok(()),
        _ => Err(ModelError::Unsupported {
            path: c.path.clone(),
            message: format!(
                "`model_type` `mistral` with `sliding_window` = {window} below \
                 `max_position_embeddings` = {context}: moa runs Mistral as Llama (full \
                 attention), so only a window that is `null` or at least the context is \
                 supported (Mistral-7B-v0.2 and later)"
            ),
        }),
    }
}

/// The weight files of a folder: the shards named by `model.safetensors.index.json`, else
/// every `*.safetensors`, sorted.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.exists() {
        let json = read_json(&index)?;
        let shown = index.display().to_string();
        let bad = |message: String| ModelError::Format {
            path: shown.clone(),
            message,
        };
        let map = match json.get("weight_map") {
            None => {
                return Err(ModelError::MissingKey {
                    path: shown.clone(),
                    key: "weight_map".into(),
                })
            }
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(bad(format!(
                    "`weight_map` is {other}: expected an object from tensor names to the \
                     shard files that hold them"
                )))
            }
        };
        // Each shard must be a file of the folder: a name that is not a string was
        // skipped without a word, and `../x` or an absolute path read a file outside it.
        let mut files = Vec::new();
        for (tensor, file) in map {
            let Some(name) = file.as_str() else {
                return Err(bad(format!(
                    "`weight_map` gives tensor `{tensor}` the shard {file}: expected a file \
                     name (a string)"
                )));
            };
            let inside = Path::new(name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(bad(format!(
                    "`weight_map` gives tensor `{tensor}` the shard `{name}`, which is not a \
                     file inside the folder: shards are named relative to it, without `..`"
                )));
            }
            let shard = dir.join(name);
            if !files.contains(&shard) && !shard.is_file() {
                let holds = map.values().filter(|f| f.as_str() == Some(name)).count();
                return Err(bad(format!(
                    "`weight_map` names the shard `{name}` ({}), which is not a file in the \
                     folder: a download cut short? fetch that file again",
                    match holds {
                        1 => format!("for its 1 tensor, `{tensor}`"),
                        n => format!("{n} tensors, `{tensor}` among them"),
                    }
                )));
            }
            files.push(shard);
        }
        files
    } else {
        std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect()
    };
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(ModelError::Format {
            path: dir.display().to_string(),
            message: "no `*.safetensors` file in the folder".into(),
        });
    }
    Ok(files)
}

/// Largest safetensors header moa reads (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Bytes per element of the safetensors dtypes of a whole number of bytes (the sub-byte
/// `F4`, `F6_*` are not checked here; candle checks them).
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" => 1,
        d if d.starts_with("F8_") => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Checks a safetensors file's header against the file before candle reads it: the header
/// fits, and every tensor's byte range matches its dtype and shape and lies inside the
/// file. Why: candle's own errors name neither the tensor nor the cause ("invalid shape,
/// data type, or offset for tensor", "file not fully covered" for a truncated download).
/// Returns each tensor's dtype as the header spells it (`BF16`, `F16`, ...).
/// A header's tensors, in its order.
type HeaderTensors = Vec<HeaderTensor>;

/// One tensor of a safetensors header.
#[derive(Clone, Debug)]
struct HeaderTensor {
    name: String,
    /// As the header spells it (`BF16`, `F16`, `I32`, ...).
    dtype: String,
    /// Empty for the FP4/FP6 dtypes, whose sizes are not checked.
    shape: Vec<u64>,
    /// The data's byte range in the file (absolute offsets); empty for FP4/FP6.
    bytes: std::ops::Range<u64>,
}

fn check_header(path: &Path) -> Result<HeaderTensors, ModelError> {
    use std::io::Read as _;
    let bad = |message: String| ModelError::Format {
        path: path.display().to_string(),
        message,
    };
    let (file, size) =
        crate::input::open_regular(path, "safetensors file", u64::MAX).map_err(io_err(path))?;
    if let Some(note) = super::lfs_pointer_note(path) {
        return Err(bad(note));
    }
    let mut file = file.take(8 + MAX_HEADER_BYTES);
    let mut len = [0u8; 8];
    if size < 8 {
        return Err(bad(format!(
            "the file has {size} bytes, less than the 8 of a safetensors header length (truncated or not safetensors)"
        )));
    }
    file.read_exact(&mut len).map_err(io_err(path))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || 8 + n > size {
        return Err(bad(format!(
            "the header length says {n} bytes but the file has {} after it (truncated or not safetensors)",
            size - 8
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(io_err(path))?;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("the header is not a JSON object: {e}")))?;
    let data = size - 8 - n;
    let mut dtypes = Vec::new();
    for (name, t) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = t.get("dtype").and_then(Value::as_str).unwrap_or("?");
        let Some(width) = dtype_bytes(dtype) else {
            if dtype.starts_with("F4") || dtype.starts_with("F6") {
                dtypes.push(HeaderTensor {
                    name: name.clone(),
                    dtype: dtype.to_string(),
                    shape: Vec::new(),
                    bytes: 0..0,
                });
                continue;
            }
            return Err(bad(format!(
                "tensor `{name}` has an unknown dtype `{dtype}`"
            )));
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(shape), Some(&[start, end])) = (shape, offsets.as_deref()) else {
            return Err(bad(format!(
                "tensor `{name}`: `shape` or `data_offsets` is missing or not a list of whole numbers"
            )));
        };
        let bytes = shape.iter().try_fold(width, |acc, &d| acc.checked_mul(d));
        if start > end || bytes != Some(end - start) {
            return Err(bad(format!(
                "tensor `{name}` ({dtype} {shape:?}) needs {} bytes but its data_offsets [{start}, {end}] hold {}",
                bytes.map_or("more than 2^64".into(), |b| b.to_string()),
                end.saturating_sub(start)
            )));
        }
        if end > data {
            return Err(bad(format!(
                "tensor `{name}` lies at data bytes {start}..{end} but the file holds only {data} bytes of data after its header: the file is truncated ({size} bytes)"
            )));
        }
        let base = 8 + n;
        dtypes.push(HeaderTensor {
            name: name.clone(),
            dtype: dtype.to_string(),
            shape,
            bytes: base + start..base + end,
        });
    }
    Ok(dtypes)
}

/// Refuses a folder whose `config.json` has a `quantization_config` (AWQ, GPTQ,
/// bitsandbytes, FP8 checkpoints), naming the method: moa reads float weights. Such a
/// folder was refused only after every weight file was read, as "tensor
/// `model.layers.0.mlp.down_proj.qweight` and 27 more is not a tensor of the Llama
/// architecture", which did not say the checkpoint was quantized or what to use instead.
/// The shape (`moa model info`, `moa plan import --model`) is still read from it.
fn check_not_quantized(dir: &Path) -> Result<(), ModelError> {
    let path = dir.join("config.json");
    let json = read_json(&path)?;
    let Some(q) = json.get("quantization_config").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let method = q
        .get("quant_method")
        .and_then(Value::as_str)
        .unwrap_or("an unnamed method");
    let bits = q
        .get("bits")
        .and_then(Value::as_u64)
        .map_or(String::new(), |b| format!(", {b} bits"));
    Err(ModelError::Unsupported {
        path: path.display().to_string(),
        message: format!(
            "`quantization_config` says the weights are quantized ({method}{bits}), and moa \
             reads a folder's weights only as floats (F32, F16, BF16, F64): use the model's \
             unquantized folder, or a GGUF of it (moa reads {} tensors, e.g. llama.cpp's \
             Q4_K_M)",
            super::gguf_header::readable_types()
        ),
    })
}

/// How many tensors of each dtype a folder's weight files hold (`BF16` → 272), from the
/// headers alone (checked as a load checks them). `moa model info` lists these for a
/// folder as it lists a GGUF's tensor types: a user with a bf16 and an f16 copy of a
/// model could not tell them apart there.
pub fn tensor_types(dir: &Path) -> Result<std::collections::BTreeMap<String, usize>, ModelError> {
    Ok(tensor_dtypes(dir)?.0)
}

/// The dtypes a load refuses (integers, FP8, FP4: not one of F32, F16, BF16, F64), by
/// their safetensors names.
pub fn readable_dtype(dtype: &str) -> bool {
    ["F32", "F16", "BF16", "F64"].contains(&dtype)
}

/// [`tensor_types`], and each tensor of a dtype a load refuses ([`readable_dtype`]) with
/// its file, in the files' order: `moa model info` marks them as it marks a GGUF's
/// unreadable types (round 19: an I16 embedding was listed as `I16 x 1`, unmarked, and
/// found only by a load).
#[allow(clippy::type_complexity)]
pub fn tensor_dtypes(
    dir: &Path,
) -> Result<
    (
        std::collections::BTreeMap<String, usize>,
        Vec<(String, String, String)>,
    ),
    ModelError,
> {
    let mut types = std::collections::BTreeMap::new();
    let mut unreadable = Vec::new();
    for file in weight_files(dir)? {
        for t in check_header(&file)? {
            if !readable_dtype(&t.dtype) {
                unreadable.push((file.display().to_string(), t.name, t.dtype.clone()));
            }
            *types.entry(t.dtype).or_default() += 1;
        }
    }
    Ok((types, unreadable))
}

/// What the weights' headers lack for the model `c` describes, from the headers alone
/// (no weight is read): each tensor the forward pass needs that no file holds, with the
/// shape it must have, then each that has another shape, with both. `moa model info`
/// says so (round 19: a folder whose header lacked a q_proj was listed as fine, and only
/// a load named the tensor). Empty for a folder a load's name and shape checks pass.
pub fn header_gaps(dir: &Path, c: &LlamaConfig) -> Result<Vec<String>, ModelError> {
    let mut held = HashMap::new();
    for file in weight_files(dir)? {
        for t in check_header(&file)? {
            held.insert(t.name, (t.shape, file.display().to_string()));
        }
    }
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (gguf_name, shape) in super::weights::all_specs(c) {
        if gguf_name == "output" && c.tied_embeddings {
            continue;
        }
        let hf = hf_tensor_name(&gguf_name);
        match held.get(&hf) {
            None => missing.push(format!("`{hf}` (shape {shape:?}) is missing")),
            Some((found, file)) => {
                let found: Vec<usize> = found.iter().map(|&d| d as usize).collect();
                // FP4/FP6 tensors have no checked shape (their dtype is refused anyway).
                if !found.is_empty() && found != shape {
                    misshaped.push(format!(
                        "`{hf}` in `{file}` has shape {found:?}, expected {shape:?}"
                    ));
                }
            }
        }
    }
    missing.extend(misshaped);
    Ok(missing)
}

/// Loads config and weights from a Hugging Face folder.
pub fn load(dir: &Path) -> Result<Model, ModelError> {
    let (mut tensors, config, special) = HfTensors::open(dir)?;
    let weights = assemble(&config, &tensors.dir_name.clone(), |gguf_name, shape| {
        tensors.read(gguf_name, shape).map(Some)
    })?;
    Ok(Model {
        path: dir.to_path_buf(),
        format: ModelFormat::HfFolder,
        config,
        weights,
        special,
    })
}

/// A Hugging Face folder's tensors by name, read one at a time from their files at the
/// byte ranges the headers give: what [`load`] and the streamed load
/// ([`super::stream::WeightStream`]) read, so neither holds a whole shard in memory.
pub(crate) struct HfTensors {
    /// The folder, as given (displayed), for error messages.
    dir_name: String,
    /// `config.json`, for the tied-embedding hint.
    config_json: PathBuf,
    /// Every tensor, with its file.
    index: HashMap<String, (HeaderTensor, PathBuf)>,
}

impl HfTensors {
    /// Opens `dir` with every check a load makes before its first tensor: the config, no
    /// quantization config, every weight file's header, no tensor in two files, the layer
    /// count and no tensor foreign to the architecture.
    pub(crate) fn open(dir: &Path) -> Result<(HfTensors, LlamaConfig, SpecialTokens), ModelError> {
        let (config, special) = read_config(dir)?;
        check_not_quantized(dir)?;
        let mut index: HashMap<String, (HeaderTensor, PathBuf)> = HashMap::new();
        for file in weight_files(dir)? {
            for t in check_header(&file)? {
                // Without an index every `*.safetensors` is read: a consolidated file beside
                // its shards would otherwise let the later file win silently.
                let name = t.name.clone();
                if let Some((_, first)) = index.insert(name.clone(), (t, file.clone())) {
                    return Err(ModelError::Format {
                        path: file.display().to_string(),
                        message: format!(
                            "tensor `{name}` is also in `{}`: the folder holds two copies of the weights (keep one, or add the model.safetensors.index.json that lists the shards)",
                            first.display()
                        ),
                    });
                }
            }
        }
        let dir_name = dir.display().to_string();
        check_layer_count(
            &config,
            &dir.join("config.json").display().to_string(),
            "num_hidden_layers",
            "model.layers.",
            index.keys().map(String::as_str),
        )?;
        super::weights::check_known_tensors(
            &config,
            &dir_name,
            hf_tensor_name,
            index.keys().map(String::as_str),
        )?;
        let tensors = HfTensors {
            dir_name,
            config_json: dir.join("config.json"),
            index,
        };
        Ok((tensors, config, special))
    }

    /// The tensor of GGUF-style name `gguf_name` (`blk.3.attn_q`) at `shape`, in f32,
    /// refused if not finite. A tensor can be read again: a second upload from the same
    /// stream reads the folder as a GGUF stream reads its file (round 44: a tensor read
    /// once had left the index, and the second upload said the folder was "missing" it).
    ///
    /// # Errors
    /// A tensor the folder lacks (a missing `lm_head.weight` with the tied-embedding
    /// hint), another shape, a dtype that is not a float (F32, F16, BF16, F64), a short
    /// read, a value that is not finite: each naming the file and the tensor.
    pub(crate) fn read(
        &mut self,
        gguf_name: &str,
        shape: &[usize],
    ) -> Result<HostTensor, ModelError> {
        let hf = hf_tensor_name(gguf_name);
        let Some((t, file)) = self.index.get(&hf) else {
            // An output layer that shares the embedding is asked for by the config alone.
            if hf == "lm_head.weight" {
                return Err(ModelError::Format {
                    path: self.dir_name.clone(),
                    message: format!(
                        "missing tensor `lm_head.weight` (expected shape {shape:?}), and \
                         `{}` does not set `tie_word_embeddings` to true (absent means \
                         false, as in transformers' LlamaConfig): if the model's output \
                         layer shares the embedding, add `\"tie_word_embeddings\": true`; \
                         else the weights are incomplete (a download cut short?)",
                        self.config_json.display()
                    ),
                });
            }
            return Err(ModelError::MissingTensor {
                path: self.dir_name.clone(),
                name: hf,
                expected: shape.to_vec(),
            });
        };
        let file_name = file.display().to_string();
        let found: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        check_shape(&file_name, &hf, shape, &found)?;
        // An integer tensor of a float's width (I16 where BF16 belongs) would convert to
        // numbers and run as garbage.
        if !readable_dtype(&t.dtype) {
            return Err(ModelError::Format {
                path: file_name,
                message: format!(
                    "tensor `{hf}` has dtype {}: moa reads float weights (F32, F16, BF16, F64); quantized or integer checkpoints are not supported",
                    t.dtype
                ),
            });
        }
        let bytes = read_range(file, t.bytes.clone()).map_err(io_err(file))?;
        let t = HostTensor {
            shape: shape.to_vec(),
            data: to_f32(&t.dtype, &bytes),
        };
        super::weights::check_finite(&file_name, &hf, &t)?;
        Ok(t)
    }
}

/// Bytes `range` of `path` (a header-checked range inside the file).
fn read_range(path: &Path, range: std::ops::Range<u64>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut f = std::fs::File::open(path)?;
    f.seek(std::io::SeekFrom::Start(range.start))?;
    let mut bytes = vec![0u8; (range.end - range.start) as usize];
    f.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Little-endian values of a float `dtype` ([`readable_dtype`]) as f32: F16 and BF16
/// exactly, F64 rounded to nearest (what candle's conversion did).
fn to_f32(dtype: &str, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        "F32" => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        "F16" => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        "BF16" => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
    }
}

/// Reads an HF `rope_scaling` value (`path` names config.json in errors): `null` or
/// `{"rope_type": "default"}` (`type` is the older spelling; an optional `factor` of 1)
/// is plain RoPE; `linear` needs `factor`; `llama3` needs `factor`, `low_freq_factor`,
/// `high_freq_factor` and `original_max_position_embeddings` (transformers'
/// `modeling_rope_utils`). Errors: another kind (dynamic, yarn, longrope: each changes
/// attention past the original context in ways moa does not implement), a missing or
/// non-numeric parameter.
fn read_rope_scaling(path: &str, v: &Value) -> Result<Option<RopeScaling>, ModelError> {
    let unsupported = |message: String| ModelError::Unsupported {
        path: path.to_string(),
        message: format!(
            "`rope_scaling` is {v}: {message} (allowed: no `rope_scaling`, `null`, or \
             `rope_type`/`type` = \"default\", \"linear\" with `factor`, \"llama3\" with \
             `factor`, `low_freq_factor`, `high_freq_factor` and \
             `original_max_position_embeddings`)"
        ),
    };
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(unsupported("not an object".into()))
        };
    };
    let kind = map
        .get("rope_type")
        .or_else(|| map.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported("no `rope_type`".into()))?;
    let num = |key: &str| {
        map.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| unsupported(format!("`{key}` is missing or not a number")))
    };
    match kind {
        "default" => match map.get("factor").map(Value::as_f64) {
            None | Some(Some(1.0)) => Ok(None),
            Some(_) => Err(unsupported(
                "a `default` rope with a `factor` other than 1".into(),
            )),
        },
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: num("factor")?,
        })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_context: num("original_max_position_embeddings")?,
        })),
        other => Err(unsupported(format!(
            "the kind `{other}` is not implemented"
        ))),
    }
}
