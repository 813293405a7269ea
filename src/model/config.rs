//! The shapes of a Llama-family decoder, read from GGUF metadata or `config.json`.

#![warn(missing_docs)]

use serde::Serialize;

use super::ModelError;
use crate::plan::{ModelShape, Plan};

/// Everything the forward pass needs to know besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlamaConfig {
    /// `general.name` (GGUF) or the folder name (Hugging Face).
    pub name: Option<String>,
    /// Decoder layers (GGUF `llama.block_count`, HF `num_hidden_layers`).
    pub n_layers: usize,
    /// Width of the residual stream, the embedding length (GGUF `llama.embedding_length`).
    pub hidden_size: usize,
    /// Inner size of the SwiGLU MLP.
    pub ffn_size: usize,
    /// Query heads per layer.
    pub q_heads: usize,
    /// Key/value heads per layer (fewer than `q_heads` under grouped-query attention; `q_heads`
    /// is a multiple of it).
    pub kv_heads: usize,
    /// Size of one head's query/key/value vector (elements).
    pub head_dim: usize,
    /// RoPE base θ of `inv_freq_j = theta^(−2j/head_dim)` (GGUF `llama.rope.freq_base`, HF
    /// `rope_theta`).
    pub rope_theta: f32,
    /// How RoPE's frequencies are rescaled for a longer context (Llama 3.1+ / 3.2's
    /// `llama3`, linear interpolation); `None`: plain RoPE. Read by
    /// [`LlamaConfig::rope_inv_freq`], the one place every back end takes its angles from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// The ε added to the mean square in every RMSNorm.
    pub rms_norm_eps: f32,
    /// Vocabulary size, in tokens: the embedding's and the output projection's row count.
    pub vocab_size: usize,
    /// The output projection is the token embedding (no separate `output` tensor).
    pub tied_embeddings: bool,
    /// Longest context the model was trained for, in tokens.
    pub context_length: usize,
}

/// RoPE frequency scaling, as checkpoints declare it. Pair `j` of a head rotates token `p`
/// by `p · inv_freq_j`, with `inv_freq_j = theta^(−2j/head_dim)` before scaling.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Linear position interpolation: every `inv_freq_j` divided by `factor` (HF
    /// `rope_scaling = {"rope_type": "linear", "factor": f}`; GGUF
    /// `llama.rope.scaling.type = linear`, `llama.rope.scaling.factor`, or the older
    /// `llama.rope.scale_linear`).
    Linear {
        /// The divisor of every `inv_freq_j` (> 0).
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling (HF `rope_type: "llama3"`; transformers'
    /// `modeling_rope_utils._compute_llama3_parameters`): with `wavelen = 2π / inv_freq`,
    /// `inv_freq` is kept where `wavelen < original_context / high_freq_factor`, divided
    /// by `factor` where `wavelen > original_context / low_freq_factor`, and blended
    /// linearly in `original_context / wavelen` between the two.
    Llama3 {
        /// Divisor of the low frequencies (HF `factor`).
        factor: f64,
        /// Wavelengths above `original_context / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original_context / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// `original_max_position_embeddings`, in tokens.
        original_context: f64,
    },
    /// Per-pair divisors `[head_dim / 2]`: `inv_freq_j / factors[j]`. llama.cpp's
    /// `rope_freqs.weight` tensor (its converter writes Llama 3.1's `llama3` scaling so;
    /// llama.cpp's `ggml_rope_ext` `freq_factors`).
    FreqFactors(Vec<f32>),
}

impl RopeScaling {
    /// Checks the parameters (`path` names the file in the error): factors finite and
    /// positive, `high_freq_factor > low_freq_factor` for `llama3`, `head_dim / 2`
    /// divisors for per-pair factors.
    pub(crate) fn validate(&self, path: &str, head_dim: usize) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Unsupported {
            path: path.to_string(),
            message,
        };
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(format!(
                    "RoPE scaling `{name}` = {v}: allowed a finite number above 0"
                )))
            }
        };
        match self {
            RopeScaling::Linear { factor } => positive("factor", *factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                positive("factor", *factor)?;
                positive("low_freq_factor", *low_freq_factor)?;
                positive("high_freq_factor", *high_freq_factor)?;
                positive("original_max_position_embeddings", *original_context)?;
                if high_freq_factor <= low_freq_factor {
                    return Err(bad(format!(
                        "RoPE scaling `high_freq_factor` = {high_freq_factor} is not above \
                         `low_freq_factor` = {low_freq_factor} (llama3 blends between them)"
                    )));
                }
                Ok(())
            }
            RopeScaling::FreqFactors(f) => {
                if f.len() != head_dim / 2 {
                    return Err(bad(format!(
                        "RoPE frequency factors: {} values, expected head_dim / 2 = {}",
                        f.len(),
                        head_dim / 2
                    )));
                }
                for (j, &v) in f.iter().enumerate() {
                    positive(&format!("rope_freqs[{j}]"), f64::from(v))?;
                }
                Ok(())
            }
        }
    }
}

/// Unscaled RoPE inverse frequencies `[head_dim / 2]`: `theta^(−2j/head_dim)` in f64
/// (RoFormer; Hugging Face `_compute_default_rope_parameters`). Models go through
/// [`LlamaConfig::rope_inv_freq`]; this is for kernels' self-tests and benches that have
/// no model.
pub fn plain_rope_inv_freq(head_dim: usize, theta: f32) -> Vec<f64> {
    let theta = f64::from(theta);
    (0..head_dim / 2)
        .map(|j| theta.powf(-((2 * j) as f64) / head_dim as f64))
        .collect()
}

impl LlamaConfig {
    /// RoPE's inverse frequencies `[head_dim / 2]` (radians per token), f64: pair `j`
    /// rotates token `p` by `p · inv_freq[j]`. `theta^(−2j/head_dim)`, then
    /// [`RopeScaling`]. The CPU reference, the profiler and both engines take their
    /// angles from here, so a scaled model is the same model on every back end.
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        plain_rope_inv_freq(self.head_dim, self.rope_theta)
            .into_iter()
            .enumerate()
            .map(|(j, inv)| match &self.rope_scaling {
                None => inv,
                Some(RopeScaling::Linear { factor }) => inv / factor,
                Some(RopeScaling::FreqFactors(f)) => inv / f64::from(f[j]),
                Some(RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_context,
                }) => {
                    let wavelen = 2.0 * std::f64::consts::PI / inv;
                    if wavelen < original_context / high_freq_factor {
                        inv
                    } else if wavelen > original_context / low_freq_factor {
                        inv / factor
                    } else {
                        let smooth = (original_context / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * inv / factor + smooth * inv
                    }
                }
            })
            .collect()
    }

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
                let shape = |l: usize, q: usize, k: usize, d: usize| {
                    format!("{l} layers, {q} query / {k} KV heads, head_dim {d}")
                };
                return Err(ModelError::PlanMismatch {
                    field,
                    plan: u64::from(p),
                    model: want as u64,
                    plan_shape: shape(
                        m.layers as usize,
                        m.q_heads as usize,
                        m.kv_heads as usize,
                        m.head_dim as usize,
                    ),
                    model_shape: shape(self.n_layers, self.q_heads, self.kv_heads, self.head_dim),
                });
            }
        }
        Ok(())
    }

    /// Rejects shapes the forward pass cannot run, naming the first bad value by the key
    /// it was read from (`keys`: config.json's or the GGUF file's, not this struct's field
    /// names; round 28: "`n_layers` is 0" of a config.json that says `num_hidden_layers`).
    pub(crate) fn validate(&self, path: &str, keys: ConfigKeys) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Unsupported {
            path: path.to_string(),
            message,
        };
        let key = |field: &str| keys.key(field);
        // A plan takes 1..=1024 layers and query heads (`plan::MAX_LAYERS`, `MAX_HEADS`):
        // past them no plan fits the model, and `num_hidden_layers` = 10^8 ran `moa model
        // info` out of memory listing the tensors the headers lack.
        for (field, v, max) in [
            ("n_layers", self.n_layers, crate::plan::MAX_LAYERS),
            ("q_heads", self.q_heads, crate::plan::MAX_HEADS),
        ] {
            if v == 0 || v > max as usize {
                return Err(bad(format!(
                    "{} = {v} is out of range: allowed 1..={max}, the most moa's plans take",
                    key(field)
                )));
            }
        }
        for (field, v) in [
            ("hidden_size", self.hidden_size),
            ("ffn_size", self.ffn_size),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
            // 0 made every request fail later with "no room for a new token" and plan
            // import with a plan range error, neither naming the config.
            ("context_length", self.context_length),
        ] {
            if v == 0 {
                return Err(bad(format!("{} is 0: allowed 1 or more", key(field))));
            }
        }
        // Past it, the shape's u32 context saturated to 4294967295 and every plan made
        // from the model (import, the dense plan of `generate --dense`, `plan show
        // --max-batch --model`) was refused as a plan field the user never wrote.
        let max = crate::plan::MAX_CONTEXT_TOKENS;
        if self.context_length > max as usize {
            return Err(bad(format!(
                "{} = {} is out of range: allowed 1..={max}, the longest context moa's plans \
                 and kernels take",
                key("context_length"),
                self.context_length
            )));
        }
        if !self.q_heads.is_multiple_of(self.kv_heads) {
            return Err(bad(format!(
                "{} = {} does not divide {} = {}",
                key("kv_heads"),
                self.kv_heads,
                key("q_heads"),
                self.q_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(bad(format!(
                "{} = {} is odd: RoPE rotates pairs",
                key("head_dim"),
                self.head_dim
            )));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(bad(format!(
                "{} = {} is not positive",
                key("rope_theta"),
                self.rope_theta
            )));
        }
        if let Some(scaling) = &self.rope_scaling {
            scaling.validate(path, self.head_dim)?;
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(bad(format!(
                "{} = {} is negative",
                key("rms_norm_eps"),
                self.rms_norm_eps
            )));
        }
        Ok(())
    }
}

/// Where a [`LlamaConfig`] was read from, so that [`LlamaConfig::validate`] names the key
/// a user wrote or can look up: `num_hidden_layers` in a config.json, `llama.block_count`
/// in a GGUF file, not the struct's `n_layers`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConfigKeys {
    /// A Hugging Face `config.json`; `head_dim`: it has a `head_dim` key (else the head
    /// dimension is `hidden_size / num_attention_heads`).
    HfConfig {
        /// The file has a `head_dim` key.
        head_dim: bool,
    },
    /// A GGUF file's `llama.*` metadata; `head_dim`: it has `llama.attention.key_length`.
    Gguf {
        /// The file has `llama.attention.key_length`.
        head_dim: bool,
    },
    /// A config made in code: the struct's field names.
    #[cfg_attr(not(test), allow(dead_code))]
    Fields,
}

impl ConfigKeys {
    /// The key (in backticks) that `field` of [`LlamaConfig`] was read from, or how it was
    /// worked out where no key holds it.
    fn key(self, field: &str) -> String {
        fn hf(f: &str) -> &str {
            match f {
                "n_layers" => "num_hidden_layers",
                "ffn_size" => "intermediate_size",
                "q_heads" => "num_attention_heads",
                "kv_heads" => "num_key_value_heads",
                "context_length" => "max_position_embeddings",
                other => other,
            }
        }
        fn gguf(f: &str) -> &str {
            match f {
                "n_layers" => "llama.block_count",
                "hidden_size" => "llama.embedding_length",
                "ffn_size" => "llama.feed_forward_length",
                "q_heads" => "llama.attention.head_count",
                "kv_heads" => "llama.attention.head_count_kv",
                "head_dim" => "llama.attention.key_length",
                "vocab_size" => "llama.vocab_size",
                "context_length" => "llama.context_length",
                "rope_theta" => "llama.rope.freq_base",
                "rms_norm_eps" => "llama.attention.layer_norm_rms_epsilon",
                other => other,
            }
        }
        match (self, field) {
            (ConfigKeys::HfConfig { head_dim: false }, "head_dim") => {
                "the head dimension (`hidden_size` / `num_attention_heads`: there is no \
                 `head_dim` key)"
                    .into()
            }
            (ConfigKeys::Gguf { head_dim: false }, "head_dim") => {
                "the head dimension (`llama.embedding_length` / `llama.attention.head_count`: \
                 there is no `llama.attention.key_length`)"
                    .into()
            }
            // Without `llama.vocab_size` it is the rows of `token_embd.weight`, else the
            // length of `tokenizer.ggml.tokens`.
            (ConfigKeys::Gguf { .. }, "vocab_size") => {
                "the vocabulary size (`llama.vocab_size`, else the rows of \
                 `token_embd.weight`, else the length of `tokenizer.ggml.tokens`)"
                    .into()
            }
            (ConfigKeys::HfConfig { .. }, f) => format!("`{}`", hf(f)),
            (ConfigKeys::Gguf { .. }, f) => format!("`{}`", gguf(f)),
            (ConfigKeys::Fields, f) => format!("`{f}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama-3.2-1B's RoPE: theta 500 000, head_dim 64, `llama3` with factor 32, low 1,
    /// high 4, original context 8192.
    fn llama32_1b(scaling: Option<RopeScaling>) -> LlamaConfig {
        LlamaConfig {
            name: None,
            n_layers: 16,
            hidden_size: 2048,
            ffn_size: 8192,
            q_heads: 32,
            kv_heads: 8,
            head_dim: 64,
            rope_theta: 500_000.0,
            rope_scaling: scaling,
            rms_norm_eps: 1e-5,
            vocab_size: 128_256,
            tied_embeddings: true,
            context_length: 131_072,
        }
    }

    /// Values worked by hand from transformers' `_compute_llama3_parameters`: pairs whose
    /// wavelength is under 8192 / 4 = 2048 tokens keep their frequency (j ≤ 14), those
    /// over 8192 are divided by 32 (j ≥ 18), and j = 15..17 blend.
    #[test]
    fn llama3_scaling_keeps_high_divides_low_and_blends_between() {
        let plain = llama32_1b(None).rope_inv_freq();
        let scaled = llama32_1b(Some(RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }))
        .rope_inv_freq();
        assert_eq!(scaled.len(), 32);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        for j in 0..=14 {
            assert_eq!(scaled[j], plain[j], "pair {j}");
        }
        for (j, want) in [
            (15, 0.001290547928209264),
            (16, 0.00042955679655936815),
            (17, 9.70828780262767e-05),
        ] {
            assert!(close(scaled[j], want), "pair {j}: {} vs {want}", scaled[j]);
        }
        for j in 18..32 {
            assert!(close(scaled[j], plain[j] / 32.0), "pair {j}");
        }
        // GGUF's per-pair divisors that llama.cpp's converter writes for it give the same
        // frequencies.
        let factors: Vec<f32> = plain
            .iter()
            .zip(&scaled)
            .map(|(p, s)| (p / s) as f32)
            .collect();
        let from_gguf = llama32_1b(Some(RopeScaling::FreqFactors(factors))).rope_inv_freq();
        for j in 0..32 {
            assert!(
                (from_gguf[j] - scaled[j]).abs() <= 1e-6 * scaled[j],
                "pair {j}"
            );
        }
        let linear = llama32_1b(Some(RopeScaling::Linear { factor: 4.0 })).rope_inv_freq();
        assert!((0..32).all(|j| close(linear[j], plain[j] / 4.0)));
    }

    #[test]
    fn bad_scaling_parameters_are_refused_naming_the_field() {
        let cases = [
            (RopeScaling::Linear { factor: 0.0 }, "`factor` = 0"),
            (
                RopeScaling::Llama3 {
                    factor: 8.0,
                    low_freq_factor: 4.0,
                    high_freq_factor: 1.0,
                    original_context: 8192.0,
                },
                "`high_freq_factor` = 1 is not above `low_freq_factor` = 4",
            ),
            (
                RopeScaling::FreqFactors(vec![1.0; 31]),
                "31 values, expected head_dim / 2 = 32",
            ),
            (
                RopeScaling::FreqFactors([vec![1.0; 31], vec![f32::NAN]].concat()),
                "`rope_freqs[31]` = NaN",
            ),
        ];
        for (scaling, want) in cases {
            let e = llama32_1b(Some(scaling))
                .validate("m.gguf", ConfigKeys::Fields)
                .unwrap_err()
                .to_string();
            assert!(e.contains("m.gguf") && e.contains(want), "{want}: {e}");
        }
    }
}
