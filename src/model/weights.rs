//! Host-side weights: one row-major `Vec<f32>` per tensor, ready to upload to any device.
//!
//! **RoPE layout convention.** Every loader hands out `attn_q` / `attn_k` rows in the Hugging
//! Face *half-split* ("neox") layout: within a head of `head_dim` rows, row `j` and row
//! `j + head_dim/2` form rotation pair `j`. GGUF Llama files store these rows permuted for
//! llama.cpp's *interleaved* RoPE (pair `j` = rows `2j`, `2j+1`); [`unpermute_rope_rows`]
//! undoes that at load time, so one rotary implementation serves both formats and the
//! attention scores are unchanged (a permutation of the same rows of Q and K).

#![warn(missing_docs)]

use super::config::LlamaConfig;
use super::ModelError;

/// A dense f32 tensor in row-major order; weight matrices are `[out_features, in_features]`
/// (`y = W x`), as in PyTorch and GGUF. The default is empty (what an engine that took a
/// model's weights leaves behind, [`crate::runtime::engine::ModelRef`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first (`[out_features, in_features]` for a matrix).
    pub shape: Vec<usize>,
    /// The values, row-major: `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Wraps `data` as a tensor of `shape`; [`ModelError::Format`] where the element count is
    /// not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<HostTensor, ModelError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(ModelError::Format {
                path: "<memory>".into(),
                message: format!("shape {shape:?} needs {n} values, got {}", data.len()),
            });
        }
        Ok(HostTensor { shape, data })
    }
}

/// One decoder block. Field names are the GGUF tensor names (`blk.{i}.<field>.weight`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerWeights {
    /// `[hidden]`, RMSNorm before attention.
    pub attn_norm: HostTensor,
    /// `[q_heads * head_dim, hidden]`, half-split RoPE layout.
    pub attn_q: HostTensor,
    /// `[kv_heads * head_dim, hidden]`, half-split RoPE layout.
    pub attn_k: HostTensor,
    /// `[kv_heads * head_dim, hidden]`.
    pub attn_v: HostTensor,
    /// `[hidden, q_heads * head_dim]`.
    pub attn_output: HostTensor,
    /// `[hidden]`, RMSNorm before the MLP.
    pub ffn_norm: HostTensor,
    /// `[ffn, hidden]`.
    pub ffn_gate: HostTensor,
    /// `[ffn, hidden]`.
    pub ffn_up: HostTensor,
    /// `[hidden, ffn]`.
    pub ffn_down: HostTensor,
}

/// All weights of a model. The default has no layers and empty tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    /// `[vocab, hidden]`.
    pub token_embd: HostTensor,
    /// The decoder blocks, `n_layers` of them, in order.
    pub layers: Vec<LayerWeights>,
    /// `[hidden]`.
    pub output_norm: HostTensor,
    /// `[vocab, hidden]`; `None` when tied to `token_embd`.
    pub output: Option<HostTensor>,
}

impl LayerWeights {
    /// The GGUF field names of a layer's tensors (`blk.{i}.<field>.weight`), in the order
    /// of [`Self::tensors`].
    pub const FIELDS: [&'static str; 9] = [
        "attn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_norm",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ];

    /// The layer's tensors in the order of [`Self::FIELDS`].
    pub fn tensors(&self) -> [&HostTensor; 9] {
        [
            &self.attn_norm,
            &self.attn_q,
            &self.attn_k,
            &self.attn_v,
            &self.attn_output,
            &self.ffn_norm,
            &self.ffn_gate,
            &self.ffn_up,
            &self.ffn_down,
        ]
    }

    /// [`Self::tensors`], to change or move out of.
    pub fn tensors_mut(&mut self) -> [&mut HostTensor; 9] {
        [
            &mut self.attn_norm,
            &mut self.attn_q,
            &mut self.attn_k,
            &mut self.attn_v,
            &mut self.attn_output,
            &mut self.ffn_norm,
            &mut self.ffn_gate,
            &mut self.ffn_up,
            &mut self.ffn_down,
        ]
    }
}

impl Weights {
    /// The tensor of GGUF name `name` without `.weight` (`token_embd`, `output_norm`,
    /// `output`, `blk.{i}.{field}` with a field of [`LayerWeights::FIELDS`]); `None` for a
    /// name the model does not have (`output` when tied, a layer past the last).
    pub fn tensor(&self, name: &str) -> Option<&HostTensor> {
        match name {
            "token_embd" => Some(&self.token_embd),
            "output_norm" => Some(&self.output_norm),
            "output" => self.output.as_ref(),
            _ => {
                let (i, f) = layer_field_name(name)?;
                Some(self.layers.get(i)?.tensors()[f])
            }
        }
    }

    /// [`Self::tensor`], to change or move out of.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut HostTensor> {
        match name {
            "token_embd" => Some(&mut self.token_embd),
            "output_norm" => Some(&mut self.output_norm),
            "output" => self.output.as_mut(),
            _ => {
                let (i, f) = layer_field_name(name)?;
                self.layers.get_mut(i)?.tensors_mut().into_iter().nth(f)
            }
        }
    }

    /// The output projection `[vocab, hidden]` (the embedding when tied).
    pub fn lm_head(&self) -> &HostTensor {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Total number of f32 values (the size of an upload, in elements).
    pub fn n_values(&self) -> usize {
        let layer = |l: &LayerWeights| l.tensors().iter().map(|t| t.data.len()).sum::<usize>();
        self.token_embd.data.len()
            + self.output_norm.data.len()
            + self.output.as_ref().map_or(0, |t| t.data.len())
            + self.layers.iter().map(layer).sum::<usize>()
    }
}

/// `blk.{i}.{field}` as (i, the field's index in [`LayerWeights::FIELDS`]).
fn layer_field_name(name: &str) -> Option<(usize, usize)> {
    let (i, field) = name.strip_prefix("blk.")?.split_once('.')?;
    let f = LayerWeights::FIELDS.iter().position(|&n| n == field)?;
    Some((i.parse().ok()?, f))
}

/// The tensors of a layer, by GGUF name, with the shape each must have.
pub(crate) fn layer_specs(c: &LlamaConfig) -> [(&'static str, Vec<usize>); 9] {
    let (h, q, kv, f) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.ffn_size);
    [
        ("attn_norm", vec![h]),
        ("attn_q", vec![q, h]),
        ("attn_k", vec![kv, h]),
        ("attn_v", vec![kv, h]),
        ("attn_output", vec![h, q]),
        ("ffn_norm", vec![h]),
        ("ffn_gate", vec![f, h]),
        ("ffn_up", vec![f, h]),
        ("ffn_down", vec![h, f]),
    ]
}

/// Every tensor the forward pass reads, by GGUF base name (no `.weight`), with its shape:
/// `token_embd`, `output_norm`, `output` (absent when tied) and each layer's
/// [`layer_specs`].
pub(crate) fn all_specs(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let mut v = vec![
        ("token_embd".to_string(), vec![c.vocab_size, c.hidden_size]),
        ("output_norm".to_string(), vec![c.hidden_size]),
        ("output".to_string(), vec![c.vocab_size, c.hidden_size]),
    ];
    for i in 0..c.n_layers {
        v.extend(
            layer_specs(c)
                .into_iter()
                .map(|(name, shape)| (format!("blk.{i}.{name}"), shape)),
        );
    }
    v
}

/// Refuses a checkpoint holding tensors the forward pass does not read (`names`, as in
/// the file; `file_name` maps a GGUF base name to the file's name). Why: the loaders
/// picked the tensors they know and ignored the rest, so a Llama-architecture file with
/// attention biases (`blk.0.attn_q.bias`), QK norms or experts ran as another model
/// without a word. Rotary-embedding buffers (`rotary_emb.inv_freq`, `attn_rot_embd`),
/// which RoPE recomputes, and GGUF's `rope_freqs.weight` (read into the config's RoPE
/// scaling), are the only tensors allowed besides [`all_specs`].
pub(crate) fn check_known_tensors<'a>(
    c: &LlamaConfig,
    path: &str,
    file_name: impl Fn(&str) -> String,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ModelError> {
    let known: std::collections::HashSet<String> =
        all_specs(c).iter().map(|(n, _)| file_name(n)).collect();
    let mut extra: Vec<&str> = names
        .filter(|n| {
            !known.contains(*n)
                && !n.contains("rotary_emb")
                && !n.contains("rot_embd")
                && *n != "rope_freqs.weight"
        })
        .collect();
    extra.sort_unstable();
    let Some(first) = extra.first() else {
        return Ok(());
    };
    let what = if first.ends_with(".bias") {
        "a bias (moa's Llama has none: attention_bias / mlp_bias)"
    } else if first.contains("_exps") || first.contains("gate_inp") || first.contains("expert") {
        "a mixture-of-experts tensor (moa runs dense MLPs only)"
    } else if first.contains("q_norm") || first.contains("k_norm") {
        "a query/key norm (moa's attention has none)"
    } else {
        "not a tensor of the Llama architecture moa runs"
    };
    let more = match extra.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    let reads: Vec<String> = ["token_embd", "output_norm", "output", "blk.N.attn_q"]
        .iter()
        .map(|n| format!("`{}`", file_name(n)))
        .collect();
    Err(ModelError::Unsupported {
        path: path.to_string(),
        message: format!(
            "tensor `{first}`{more} is {what}: moa reads only a Llama's own tensors ({}, …, \
             the nine of each layer), and running without this one would be another model",
            reads.join(", ")
        ),
    })
}

/// Builds [`Weights`] from a format-specific getter. `get(gguf_name, expected_shape)` returns
/// `Ok(None)` when the tensor is absent and checks the shape itself (so its error names the
/// file's own tensor name). Only `output` may be absent (tied embeddings).
/// Refuses weights that hold a layer the config does not have: a tensor named
/// `{prefix}{i}.…` with `i ≥ n_layers`. Why: the loader reads only the config's layers,
/// so a config that says 15 layers over a 16-layer checkpoint ran a truncated model with
/// exit 0. `key` names the config's layer count as written (`num_hidden_layers`).
pub(crate) fn check_layer_count<'a>(
    c: &LlamaConfig,
    path: &str,
    key: &str,
    prefix: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ModelError> {
    let layer = |name: &'a str| {
        let rest = name.strip_prefix(prefix)?;
        let i: usize = rest.split('.').next()?.parse().ok()?;
        Some((i, name))
    };
    match names.filter_map(layer).max() {
        Some((i, name)) if i >= c.n_layers => Err(ModelError::Format {
            path: path.to_string(),
            message: format!(
                "the weights hold {} layers (tensor `{name}`) but {key} = {}: config and weights disagree (running the first {} layers would be a truncated model)",
                i + 1,
                c.n_layers,
                c.n_layers
            ),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn assemble(
    c: &LlamaConfig,
    path: &str,
    mut get: impl FnMut(&str, &[usize]) -> Result<Option<HostTensor>, ModelError>,
) -> Result<Weights, ModelError> {
    let mut need = |name: String, shape: Vec<usize>| -> Result<HostTensor, ModelError> {
        get(&name, &shape)?.ok_or(ModelError::MissingTensor {
            path: path.to_string(),
            name,
            expected: shape,
        })
    };
    let token_embd = need("token_embd".into(), vec![c.vocab_size, c.hidden_size])?;
    let output_norm = need("output_norm".into(), vec![c.hidden_size])?;
    let mut layers = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        let [attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down] =
            layer_specs(c).map(|(name, shape)| need(format!("blk.{i}.{name}"), shape));
        layers.push(LayerWeights {
            attn_norm: attn_norm?,
            attn_q: attn_q?,
            attn_k: attn_k?,
            attn_v: attn_v?,
            attn_output: attn_output?,
            ffn_norm: ffn_norm?,
            ffn_gate: ffn_gate?,
            ffn_up: ffn_up?,
            ffn_down: ffn_down?,
        });
    }
    let output = if c.tied_embeddings {
        None
    } else {
        Some(need("output".into(), vec![c.vocab_size, c.hidden_size])?)
    };
    Ok(Weights {
        token_embd,
        layers,
        output_norm,
        output,
    })
}

/// Shape check shared by the loaders.
pub(crate) fn check_shape(
    path: &str,
    name: &str,
    expected: &[usize],
    found: &[usize],
) -> Result<(), ModelError> {
    if expected == found {
        Ok(())
    } else {
        Err(ModelError::BadShape {
            path: path.to_string(),
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

/// Refuses a tensor holding a NaN or an infinity (`path` the file, `name` the tensor as the
/// file names it), naming the first one's index. Why: such a weight makes every logit NaN,
/// and generation then printed the vocabulary's last id at every step with exit 0 (round
/// 22 of the new user's journey: one NaN in a down projection); transformers runs it the
/// same way without a word. A file with one is damaged, or saved after training diverged.
pub(crate) fn check_finite(path: &str, name: &str, t: &HostTensor) -> Result<(), ModelError> {
    let Some(first) = t.data.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let bad = t.data.iter().filter(|v| !v.is_finite()).count();
    // Row-major index in the tensor's own shape.
    let mut index = Vec::with_capacity(t.shape.len());
    let mut rest = first;
    for &d in t.shape.iter().rev() {
        index.push(rest % d.max(1));
        rest /= d.max(1);
    }
    index.reverse();
    let more = match bad {
        1 => "the only one".to_string(),
        n => format!("{n} non-finite values in all"),
    };
    Err(ModelError::Format {
        path: path.to_string(),
        message: format!(
            "tensor `{name}` {shape:?} holds {value} at index {index:?} ({more}): every logit \
             would be NaN; the file is damaged or was saved from a diverged run (allowed: \
             finite weights)",
            shape = t.shape,
            value = t.data[first],
        ),
    })
}

/// Moves row `from(r)` of each head to row `r`, for `rows = n_heads * head_dim` rows of
/// `cols` values.
fn reorder_rows(
    data: &[f32],
    n_heads: usize,
    head_dim: usize,
    cols: usize,
    from: impl Fn(usize) -> usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len());
    for h in 0..n_heads {
        for r in 0..head_dim {
            let src = (h * head_dim + from(r)) * cols;
            out.extend_from_slice(&data[src..src + cols]);
        }
    }
    out
}

/// llama.cpp's `permute` (convert_hf_to_gguf.py): half-split rows → interleaved rows. Per
/// head, HF row `s * head_dim/2 + j` becomes GGUF row `2j + s`. Used to write GGUF test files.
pub fn permute_rope_rows(data: &[f32], n_heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    // GGUF row r = 2j + s comes from HF row s*half + j.
    reorder_rows(data, n_heads, head_dim, cols, |r| (r % 2) * half + r / 2)
}

/// The inverse of [`permute_rope_rows`]: interleaved (GGUF) rows → half-split (HF) rows.
pub fn unpermute_rope_rows(data: &[f32], n_heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    // HF row r = s*half + j comes from GGUF row 2j + s.
    reorder_rows(data, n_heads, head_dim, cols, |r| 2 * (r % half) + r / half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_permute() {
        // 2 heads of head_dim 4, 1 column: values are the HF row index.
        let hf: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let gguf = permute_rope_rows(&hf, 2, 4, 1);
        // Pair j of head 0 is HF rows (j, j+2) → GGUF rows (2j, 2j+1).
        assert_eq!(gguf, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(unpermute_rope_rows(&gguf, 2, 4, 1), hf);
    }

    #[test]
    fn non_finite_weights_are_refused_naming_tensor_and_index() {
        let mut t = HostTensor::new(vec![2, 3], vec![0.5; 6]).unwrap();
        check_finite("m.gguf", "blk.0.ffn_down.weight", &t).unwrap();
        t.data[4] = f32::NAN;
        t.data[5] = f32::INFINITY;
        let e = check_finite("m.gguf", "blk.0.ffn_down.weight", &t)
            .unwrap_err()
            .to_string();
        for want in [
            "`m.gguf`",
            "`blk.0.ffn_down.weight` [2, 3]",
            "NaN at index [1, 1]",
            "2 non-finite values",
            "allowed: finite weights",
        ] {
            assert!(e.contains(want), "`{want}` not in: {e}");
        }
    }
}
