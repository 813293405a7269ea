//! Llama models from Hugging Face folders: `config.json` plus `*.safetensors` (one file or
//! shards listed in `model.safetensors.index.json`), any float dtype converted to f32. Q/K
//! rows are already in the half-split RoPE layout moa uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::config::LlamaConfig;
use super::weights::{assemble, check_shape, HostTensor};
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
        message: format!("invalid JSON: {e}"),
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
    /// An id or a list of ids (`eos_token_id` may be either).
    fn ids(&self, key: &str) -> Vec<u32> {
        let one = |v: &Value| v.as_u64().and_then(|v| u32::try_from(v).ok());
        match self.json.get(key) {
            Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
            Some(v) => one(v).into_iter().collect(),
            None => Vec::new(),
        }
    }
}

/// Reads the config from a folder's `config.json` (transformers' `LlamaConfig` keys and
/// defaults).
pub fn read_config(dir: &Path) -> Result<(LlamaConfig, SpecialTokens), ModelError> {
    let path = dir.join("config.json");
    let json = read_json(&path)?;
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
    if model_type.is_some_and(|t| t != "llama") && !archs.contains(&"LlamaForCausalLM") {
        return Err(ModelError::Unsupported {
            path: c.path.clone(),
            message: format!(
                "`model_type` is `{}`, only `llama` is supported",
                model_type.unwrap_or("?")
            ),
        });
    }
    if json.get("rope_scaling").is_some_and(|v| !v.is_null()) {
        return Err(ModelError::Unsupported {
            path: c.path.clone(),
            message: "`rope_scaling` is not supported yet".into(),
        });
    }
    for key in ["attention_bias", "mlp_bias"] {
        if json.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(ModelError::Unsupported {
                path: c.path.clone(),
                message: format!("`{key}` = true is not supported"),
            });
        }
    }
    let hidden_size = c.usize("hidden_size")?;
    let q_heads = c.usize("num_attention_heads")?;
    let head_dim = match c.opt_usize("head_dim")? {
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
        rms_norm_eps: c.opt_f32("rms_norm_eps")?.unwrap_or(1e-6),
        vocab_size: c.usize("vocab_size")?,
        tied_embeddings: json
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        context_length: c.opt_usize("max_position_embeddings")?.unwrap_or(2048),
    };
    config.validate(&c.path)?;
    let mut special = SpecialTokens {
        bos: c.ids("bos_token_id").first().copied(),
        eos: c.ids("eos_token_id"),
    };
    // generation_config.json, when present, is what transformers' generate() stops on.
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let gen = read_json(&gen_path)?;
        let g = HfConfig {
            path: gen_path.display().to_string(),
            json: &gen,
        };
        let eos = g.ids("eos_token_id");
        if !eos.is_empty() {
            special.eos = eos;
        }
    }
    Ok((config, special))
}

/// The weight files of a folder: the shards named by `model.safetensors.index.json`, else
/// every `*.safetensors`, sorted.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.exists() {
        let json = read_json(&index)?;
        let map = json
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError::MissingKey {
                path: index.display().to_string(),
                key: "weight_map".into(),
            })?;
        map.values()
            .filter_map(Value::as_str)
            .map(|f| dir.join(f))
            .collect()
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

/// Loads config and weights from a Hugging Face folder.
pub fn load(dir: &Path) -> Result<Model, ModelError> {
    let (config, special) = read_config(dir)?;
    // Every tensor, with the file it came from (for error messages).
    let mut tensors: HashMap<String, (Tensor, String)> = HashMap::new();
    for file in weight_files(dir)? {
        let name = file.display().to_string();
        let loaded = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| {
            ModelError::Format {
                path: name.clone(),
                message: format!("not a readable safetensors file: {e}"),
            }
        })?;
        for (k, t) in loaded {
            tensors.insert(k, (t, name.clone()));
        }
    }
    let dir_name = dir.display().to_string();
    let weights = assemble(&config, &dir_name, |gguf_name, shape| {
        let hf = hf_tensor_name(gguf_name);
        let Some((t, file)) = tensors.remove(&hf) else {
            return Err(ModelError::MissingTensor {
                path: dir_name.clone(),
                name: hf,
                expected: shape.to_vec(),
            });
        };
        check_shape(&file, &hf, shape, t.dims())?;
        let data = t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| ModelError::Format {
                path: file.clone(),
                message: format!(
                    "tensor `{hf}` ({:?}) cannot be converted to f32: {e}",
                    t.dtype()
                ),
            })?;
        Ok(Some(HostTensor {
            shape: shape.to_vec(),
            data,
        }))
    })?;
    Ok(Model {
        path: dir.to_path_buf(),
        format: ModelFormat::HfFolder,
        config,
        weights,
        special,
    })
}
