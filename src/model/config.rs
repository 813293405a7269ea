//! The shapes of a Llama-family decoder, read from GGUF metadata or `config.json`.

use serde::Serialize;

use super::ModelError;
use crate::plan::{ModelShape, Plan};

/// Everything the forward pass needs to know besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlamaConfig {
    /// `general.name` (GGUF) or the folder name (Hugging Face).
    pub name: Option<String>,
    pub n_layers: usize,
    pub hidden_size: usize,
    /// Inner size of the SwiGLU MLP.
    pub ffn_size: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rms_norm_eps: f32,
    pub vocab_size: usize,
    /// The output projection is the token embedding (no separate `output` tensor).
    pub tied_embeddings: bool,
    /// Longest context the model was trained for, in tokens.
    pub context_length: usize,
}

impl LlamaConfig {
    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.q_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Query heads per KV head.
    pub fn group_size(&self) -> usize {
        self.q_heads / self.kv_heads
    }

    /// The KV head a query head reads: contiguous groups, as `ModelShape::kv_head_of`
    /// (docs/DESIGN.md §4).
    pub fn kv_head_of(&self, q_head: usize) -> usize {
        q_head / self.group_size()
    }

    /// The plan-side shape of this model.
    pub fn model_shape(&self) -> ModelShape {
        let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        ModelShape {
            name: self.name.clone(),
            layers: u(self.n_layers),
            q_heads: u(self.q_heads),
            kv_heads: u(self.kv_heads),
            head_dim: u(self.head_dim),
            max_context_tokens: u(self.context_length),
        }
    }

    /// Checks that a plan was made for this model's layers and heads (its context length
    /// may differ: a plan can be made for a shorter context).
    pub fn check_plan(&self, plan: &Plan) -> Result<(), ModelError> {
        let m = plan.model();
        for (field, p, want) in [
            ("model.layers", m.layers, self.n_layers),
            ("model.q_heads", m.q_heads, self.q_heads),
            ("model.kv_heads", m.kv_heads, self.kv_heads),
            ("model.head_dim", m.head_dim, self.head_dim),
        ] {
            if p as usize != want {
                return Err(ModelError::PlanMismatch {
                    field,
                    plan: u64::from(p),
                    model: want as u64,
                });
            }
        }
        Ok(())
    }

    /// Rejects shapes the forward pass cannot run, naming the first bad field.
    pub(crate) fn validate(&self, path: &str) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Unsupported {
            path: path.to_string(),
            message,
        };
        // Field names as in `LlamaConfig` (GGUF and config.json keys differ; `moa model
        // info` prints these names).
        for (field, v) in [
            ("n_layers", self.n_layers),
            ("hidden_size", self.hidden_size),
            ("ffn_size", self.ffn_size),
            ("q_heads", self.q_heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
            // 0 made every request fail later with "no room for a new token" and plan
            // import with a plan range error, neither naming the config.
            ("context_length", self.context_length),
        ] {
            if v == 0 {
                return Err(bad(format!("`{field}` is 0: allowed 1 or more")));
            }
        }
        if !self.q_heads.is_multiple_of(self.kv_heads) {
            return Err(bad(format!(
                "`kv_heads` = {} does not divide `q_heads` = {}",
                self.kv_heads, self.q_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(bad(format!(
                "`head_dim` = {} is odd: RoPE rotates pairs",
                self.head_dim
            )));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(bad(format!(
                "`rope_theta` = {} is not positive",
                self.rope_theta
            )));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(bad(format!(
                "`rms_norm_eps` = {} is negative",
                self.rms_norm_eps
            )));
        }
        Ok(())
    }
}
