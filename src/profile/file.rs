//! Influence profiles: the `[layers, q_heads, NB, NB]` block sums of |ΔL| at one length.
//!
//! File format (one file per profiled length): safetensors with a single F32 tensor
//! `influence` of shape `[layers, q_heads, NB, NB]` (row-major, little endian; entry
//! `[l, h, qb, kb]` is the summed influence of the `block_tokens × block_tokens` tile of
//! query block `qb` and key block `kb`) and these `__metadata__` strings:
//!
//! | key | value |
//! |---|---|
//! | `format` | `moa-influence` |
//! | `format_version` | `1` |
//! | `n_tokens` | profiled length N (`= NB · block_tokens`) |
//! | `block_tokens` | tile size in tokens |
//! | `layers`, `q_heads`, `kv_heads`, `head_dim`, `max_context_tokens` | model shape |
//! | `model_name` | optional |
//!
//!
//! Optionally a second F32 tensor `cut_influence` of the same shape (entry `[l, h, qb, d]`:
//! the summed signed first-order loss change, over the rows of query block qb, of removing every
//! key at least d blocks back past the sink, `profile::influence::add_head_cuts`) with the
//! metadata `cut_sink_tokens` (the sink those cuts keep). The optimizer prefers it when
//! present and its sink is the plan's (docs/CALIBRATION.md, "Diagnosis").
//!
//! Optionally the metadata `under_plan`: the plan whose windows every head was restricted to
//! while profiling (`moa profile --under-plan`; `eval::masking_key` of the plan, or
//! several such keys joined by `+` for a mean of profiles taken under several plans). Absent:
//! profiled dense.
//!
//! Optionally the metadata `sample` (per-sample files of `moa profile`'s store only): the
//! fingerprint of the calibration sample the tiles were computed from
//! (`profile::sample_fingerprint`), so a store is never read back for another sample
//! that has the same id.
//!
//! The writer and reader are hand-written (a header length, a JSON header, raw bytes) so
//! that the metadata round-trips; any safetensors reader (candle, Python) loads the tensor.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use crate::plan::ModelShape;

/// Reading or writing a profile file failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileFileError {
    /// `action`: read or write, so a profile that does not exist is not reported as
    /// "cannot read or write".
    #[error("cannot {action} `{path}`")]
    Io {
        /// The profile file.
        path: String,
        /// `read` or `write`.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a valid influence profile; the message names what is wrong.
    #[error("influence profile `{path}`: {message}")]
    Format {
        /// The profile file.
        path: String,
        /// What is wrong (header, tensor, size or shape).
        message: String,
    },
}

/// The `format` metadata value of every profile file.
pub const PROFILE_FORMAT: &str = "moa-influence";
/// The `format_version` metadata value this version writes and reads.
pub const PROFILE_FORMAT_VERSION: u32 = 1;
/// The tensor name inside the safetensors file.
pub const INFLUENCE_TENSOR: &str = "influence";
/// The optional cut-influence tensor.
pub const CUT_TENSOR: &str = "cut_influence";

/// Signed cut influence `[layers, q_heads, NB, NB]` (query block, distance in blocks) and
/// the sink it was computed for.
#[derive(Clone, Debug, PartialEq)]
pub struct CutInfluence {
    /// The sink (tokens) the cuts were computed for: `moa optimize` uses them only for plans
    /// with that sink.
    pub sink_tokens: u32,
    /// `[layers, q_heads, NB, NB]`, row-major: entry `[l, h, qb, d]` is the signed
    /// first-order loss change, summed over the rows of query block `qb`, of removing every
    /// key at least `d` blocks back past the sink ([`super::influence::add_head_cuts`]).
    pub values: Vec<f32>,
}

/// One influence profile at one sequence length.
#[derive(Clone, Debug, PartialEq)]
pub struct InfluenceProfile {
    /// The shape of the model profiled (layers, heads, `head_dim`).
    pub model: ModelShape,
    /// The profiled sequence length N.
    pub n_tokens: u32,
    /// Tile size of the block sums, in tokens.
    pub block_tokens: u32,
    /// `[layers, q_heads, NB, NB]`, row-major.
    pub influence: Vec<f32>,
    /// Optional cut influence (same shape).
    pub cuts: Option<CutInfluence>,
    /// The plan the profile was taken under (see the module docs); `None`: dense.
    pub under_plan: Option<String>,
    /// The fingerprint of the one calibration sample the tiles are of (a stored sample's
    /// file; see the module docs); `None` for profiles of several samples.
    pub sample: Option<String>,
}

impl InfluenceProfile {
    /// Checks that the sizes agree: `n_tokens = NB · block_tokens` and
    /// `influence.len() = layers · q_heads · NB²`.
    pub fn new(
        model: ModelShape,
        n_tokens: u32,
        block_tokens: u32,
        influence: Vec<f32>,
    ) -> Result<Self, String> {
        if block_tokens == 0 || n_tokens == 0 || !n_tokens.is_multiple_of(block_tokens) {
            return Err(format!(
                "n_tokens = {n_tokens} is not a positive multiple of block_tokens = {block_tokens}"
            ));
        }
        if model.layers == 0 || model.q_heads == 0 || model.kv_heads == 0 {
            return Err("model shape has zero layers or heads".into());
        }
        let nb = (n_tokens / block_tokens) as usize;
        let want = model.layers as usize * model.q_heads as usize * nb * nb;
        if influence.len() != want {
            return Err(format!(
                "influence has {} values: expected layers·q_heads·NB² = {}·{}·{nb}² = {want}",
                influence.len(),
                model.layers,
                model.q_heads
            ));
        }
        if let Some(i) = influence.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(format!(
                "influence value #{i} = {} is not a finite, non-negative mass",
                influence[i]
            ));
        }
        Ok(InfluenceProfile {
            model,
            n_tokens,
            block_tokens,
            influence,
            cuts: None,
            under_plan: None,
            sample: None,
        })
    }

    /// Attaches cut influence (same shape as `influence`, finite, non-negative).
    pub fn with_cuts(mut self, sink_tokens: u32, values: Vec<f32>) -> Result<Self, String> {
        if values.len() != self.influence.len() {
            return Err(format!(
                "cut influence has {} values: expected {} (the shape of `influence`)",
                values.len(),
                self.influence.len()
            ));
        }
        // Signed: a first-order loss change can be negative.
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "cut influence value #{i} = {} is not finite",
                values[i]
            ));
        }
        self.cuts = Some(CutInfluence {
            sink_tokens,
            values,
        });
        Ok(self)
    }

    /// The `[NB, NB]` cut influence of one query head (query block, distance), if any.
    pub fn head_cuts(&self, layer: usize, q_head: usize) -> Option<&[f32]> {
        let nb2 = self.n_blocks() * self.n_blocks();
        let i = (layer * self.model.q_heads as usize + q_head) * nb2;
        self.cuts.as_ref().map(|c| &c.values[i..i + nb2])
    }

    /// The mean of profiles of one length (same model shape, block size and cut sink;
    /// every one with cut influence or none): what `moa optimize` uses when it is given
    /// several profiles of one N, e.g. the cut influence taken under successive plans,
    /// whose mean prices a head by every plan it was measured under (docs/CALIBRATION.md,
    /// "Cost under the plan"). `under_plan` lists the plans (`dense` for a profile taken
    /// without one), joined by `+`.
    pub fn mean(profiles: &[InfluenceProfile]) -> Result<InfluenceProfile, String> {
        let first = profiles.first().ok_or("no profile to average")?;
        let same = |p: &InfluenceProfile| {
            let (a, b) = (&p.model, &first.model);
            (
                a.layers,
                a.q_heads,
                a.kv_heads,
                a.head_dim,
                p.n_tokens,
                p.block_tokens,
            ) == (
                b.layers,
                b.q_heads,
                b.kv_heads,
                b.head_dim,
                first.n_tokens,
                first.block_tokens,
            ) && p.cuts.as_ref().map(|c| c.sink_tokens)
                == first.cuts.as_ref().map(|c| c.sink_tokens)
        };
        if let Some(i) = profiles.iter().position(|p| !same(p)) {
            return Err(format!(
                "profile #{i} differs from profile #0 in model shape, length, block size or cut sink: only profiles of one kind can be averaged"
            ));
        }
        let k = profiles.len() as f64;
        let avg = |get: &dyn Fn(&InfluenceProfile) -> &[f32]| -> Vec<f32> {
            let mut acc = vec![0.0f64; get(first).len()];
            for p in profiles {
                acc.iter_mut()
                    .zip(get(p))
                    .for_each(|(a, &v)| *a += f64::from(v));
            }
            acc.into_iter().map(|v| (v / k) as f32).collect()
        };
        let mut out = InfluenceProfile::new(
            first.model.clone(),
            first.n_tokens,
            first.block_tokens,
            avg(&|p| &p.influence),
        )?;
        if let Some(c) = &first.cuts {
            let cuts = avg(&|p| p.cuts.as_ref().map_or(&[][..], |c| &c.values));
            out = out.with_cuts(c.sink_tokens, cuts)?;
        }
        let plans: Vec<&str> = profiles
            .iter()
            .map(|p| p.under_plan.as_deref().unwrap_or("dense"))
            .collect();
        out.under_plan = plans.iter().any(|&u| u != "dense").then(|| plans.join("+"));
        Ok(out)
    }

    /// Blocks per side, NB.
    pub fn n_blocks(&self) -> usize {
        (self.n_tokens / self.block_tokens) as usize
    }

    /// The `[NB, NB]` tile sums of one query head.
    pub fn head(&self, layer: usize, q_head: usize) -> &[f32] {
        let nb2 = self.n_blocks() * self.n_blocks();
        let i = (layer * self.model.q_heads as usize + q_head) * nb2;
        &self.influence[i..i + nb2]
    }

    /// Writes the profile as safetensors (see the module docs for the layout).
    pub fn save(&self, path: &Path) -> Result<(), ProfileFileError> {
        let nb = self.n_blocks();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), PROFILE_FORMAT.to_string());
        meta.insert(
            "format_version".to_string(),
            PROFILE_FORMAT_VERSION.to_string(),
        );
        meta.insert("n_tokens".to_string(), self.n_tokens.to_string());
        meta.insert("block_tokens".to_string(), self.block_tokens.to_string());
        let m = &self.model;
        meta.insert("layers".to_string(), m.layers.to_string());
        meta.insert("q_heads".to_string(), m.q_heads.to_string());
        meta.insert("kv_heads".to_string(), m.kv_heads.to_string());
        meta.insert("head_dim".to_string(), m.head_dim.to_string());
        meta.insert(
            "max_context_tokens".to_string(),
            m.max_context_tokens.to_string(),
        );
        if let Some(name) = &m.name {
            meta.insert("model_name".to_string(), name.clone());
        }
        let bytes = self.influence.len() * 4;
        let mut header = serde_json::json!({
            "__metadata__": meta,
            INFLUENCE_TENSOR: {
                "dtype": "F32",
                "shape": [m.layers, m.q_heads, nb, nb],
                "data_offsets": [0, bytes],
            }
        });
        if let Some(u) = &self.under_plan {
            header["__metadata__"]["under_plan"] = u.clone().into();
        }
        if let Some(f) = &self.sample {
            header["__metadata__"]["sample"] = f.clone().into();
        }
        if let Some(c) = &self.cuts {
            header["__metadata__"]["cut_sink_tokens"] = c.sink_tokens.to_string().into();
            header[CUT_TENSOR] = serde_json::json!({
                "dtype": "F32",
                "shape": [m.layers, m.q_heads, nb, nb],
                "data_offsets": [bytes, 2 * bytes],
            });
        }
        let mut header = header.to_string().into_bytes();
        // Pad to 8 bytes so the data is aligned for readers that map the file.
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + bytes);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.influence {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.cuts.iter().flat_map(|c| &c.values) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        // Written beside `path`, then renamed over it: `moa pipeline` takes an existing
        // profile file for a finished step, so a process killed half-way through the
        // write (hundreds of MB at long lengths) must not leave a cut file at `path`.
        // The temporary is the writer's own (process id and a count): two processes
        // writing one file at once shared `<path>.partial`, and one renamed the other's
        // half-written bytes into place.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".partial-{}-{n}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let io = |source| ProfileFileError::Io {
            path: path.display().to_string(),
            action: "write",
            source,
        };
        std::fs::write(&tmp, out).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Reads a profile written by [`InfluenceProfile::save`] (or any safetensors file with
    /// the same tensor and metadata).
    pub fn load(path: &Path) -> Result<Self, ProfileFileError> {
        let shown = path.display().to_string();
        let bytes =
            crate::input::read_bytes(path, "influence profile", crate::input::MAX_PROFILE_BYTES)
                .map_err(|source| ProfileFileError::Io {
                    path: shown.clone(),
                    action: "read",
                    source,
                })?;
        Self::from_bytes(&bytes).map_err(|message| ProfileFileError::Format {
            path: shown,
            message,
        })
    }

    /// Parses safetensors bytes; errors are plain messages (the caller adds the path).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let not_st = "is not a safetensors file";
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{not_st}: shorter than its 8-byte header length"))?;
        let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| format!("{not_st}: header length does not fit in memory"))?;
        let header = bytes
            .get(8..8usize.saturating_add(header_len))
            .ok_or_else(|| format!("{not_st}: header length {header_len} exceeds the file"))?;
        let header: serde_json::Value = serde_json::from_slice(header)
            .map_err(|e| format!("{not_st}: header is not JSON ({e})"))?;
        let data = &bytes[8 + header_len..];
        // Bytes past the last tensor's end: a file appended to (or two concatenated) is not
        // what `save` wrote, and a reader cannot know which part is the profile.
        let tensors_end = header
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "__metadata__")
            .filter_map(|(_, t)| t.get("data_offsets")?.as_array()?.get(1)?.as_u64())
            .max()
            .unwrap_or(0);
        if data.len() as u64 > tensors_end {
            let expected = 8 + header_len as u64 + tensors_end;
            return Err(format!(
                "is {} bytes but its tensors end at byte {expected}: {} bytes were appended \
                 after the last tensor (profile again, or restore the file `moa profile` wrote)",
                bytes.len(),
                bytes.len() as u64 - expected
            ));
        }

        let meta = header
            .get("__metadata__")
            .and_then(|m| m.as_object())
            .ok_or("has no `__metadata__`: not a moa influence profile")?;
        let get = |key: &str| -> Result<&str, String> {
            meta.get(key)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("metadata lacks `{key}`"))
        };
        let num = |key: &str| -> Result<u32, String> {
            get(key)?
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("metadata `{key}` = {:?} is not a whole number", get(key)))
        };
        if get("format")? != PROFILE_FORMAT {
            return Err(format!(
                "metadata `format` = {:?}: expected {PROFILE_FORMAT:?}",
                get("format")?
            ));
        }
        let version = num("format_version")?;
        if version != PROFILE_FORMAT_VERSION {
            return Err(format!(
                "format_version = {version} is not supported: this moa reads {PROFILE_FORMAT_VERSION}"
            ));
        }
        let model = ModelShape {
            name: meta
                .get("model_name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            layers: num("layers")?,
            q_heads: num("q_heads")?,
            kv_heads: num("kv_heads")?,
            head_dim: num("head_dim")?,
            max_context_tokens: num("max_context_tokens")?,
        };
        let n_tokens = num("n_tokens")?;
        let block_tokens = num("block_tokens")?;

        let nb = u64::from(n_tokens / block_tokens.max(1));
        let want = [u64::from(model.layers), u64::from(model.q_heads), nb, nb];
        let tensor = |name: &str| -> Result<Vec<f32>, String> {
            let t = header
                .get(name)
                .ok_or_else(|| format!("has no tensor `{name}`"))?;
            let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
            if dtype != "F32" {
                return Err(format!("tensor `{name}` has dtype {dtype}: expected F32"));
            }
            let shape: Vec<u64> = t
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default();
            if shape != want {
                return Err(format!(
                    "tensor `{name}` has shape {shape:?}: the metadata says [layers, q_heads, NB, NB] = {want:?}"
                ));
            }
            let offs: Vec<usize> = t
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .unwrap_or_default();
            let raw = match offs.as_slice() {
                [b, e] if b <= e => data.get(*b..*e),
                _ => None,
            }
            .ok_or(format!(
                "tensor `{name}`: data offsets are missing or outside the file"
            ))?;
            if raw.len() % 4 != 0 {
                return Err(format!(
                    "tensor `{name}`: data is not a whole number of f32 values"
                ));
            }
            Ok(raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let mut p =
            InfluenceProfile::new(model, n_tokens, block_tokens, tensor(INFLUENCE_TENSOR)?)?;
        p.under_plan = meta
            .get("under_plan")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        p.sample = meta
            .get("sample")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if header.get(CUT_TENSOR).is_none() {
            return Ok(p);
        }
        let sink = num("cut_sink_tokens")?;
        p.with_cuts(sink, tensor(CUT_TENSOR)?)
            .map_err(|e| format!("tensor `{CUT_TENSOR}`: {e}"))
    }
}

/// splitmix64: a tiny seeded generator so synthetic profiles are reproducible without
/// depending on a random crate's stream stability.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl InfluenceProfile {
    /// A seeded synthetic profile for tests and benchmarks (never for real plans):
    /// every head has mass concentrated near the diagonal with its own decay length
    /// (log-uniform between 1/2 block and ~NB blocks, so some heads are local and some
    /// nearly global), a per-head sink weight on the first key block, and 5% noise. The
    /// same seed gives the same heads at every length, as a real model would.
    pub fn synthetic(model: ModelShape, n_tokens: u32, block_tokens: u32, seed: u64) -> Self {
        let nb = (n_tokens / block_tokens.max(1)).max(1) as usize;
        let heads = model.layers as usize * model.q_heads as usize;
        let mut influence = Vec::with_capacity(heads * nb * nb);
        for head in 0..heads {
            // Head traits depend on (seed, head) only, not on N.
            let mut traits = SplitMix(seed ^ (head as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let decay_tokens = 32.0 * (256.0f64).powf(traits.next_f64());
            let sink = 0.6 * traits.next_f64().powi(2);
            let mut noise = SplitMix(seed.wrapping_add(u64::from(n_tokens)) ^ head as u64);
            for qb in 0..nb {
                for kb in 0..nb {
                    let v = if kb > qb {
                        0.0
                    } else {
                        let dist = ((qb - kb) * block_tokens as usize) as f64;
                        let local = (-dist / decay_tokens).exp();
                        let s = if kb == 0 { sink } else { 0.0 };
                        (local + s) * (0.95 + 0.1 * noise.next_f64()) / nb as f64
                    };
                    influence.push(v as f32);
                }
            }
        }
        InfluenceProfile {
            model,
            n_tokens: nb as u32 * block_tokens.max(1),
            block_tokens: block_tokens.max(1),
            influence,
            cuts: None,
            under_plan: None,
            sample: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes appended after the last tensor are refused, naming the file, its length and
    /// where the tensors end; the file as `save` wrote it loads.
    #[test]
    fn bytes_after_the_last_tensor_are_refused() {
        let model = ModelShape {
            name: None,
            layers: 2,
            q_heads: 2,
            kv_heads: 1,
            head_dim: 64,
            max_context_tokens: 4096,
        };
        let p = InfluenceProfile::synthetic(model, 512, 64, 3);
        let dir = std::env::temp_dir().join(format!("moa-profile-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.safetensors");
        p.save(&path).unwrap();
        InfluenceProfile::load(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes.extend_from_slice(&[0u8; 12]);
        std::fs::write(&path, &bytes).unwrap();
        let e = InfluenceProfile::load(&path).err().unwrap().to_string();
        assert!(
            e.contains("p.safetensors")
                && e.contains(&format!("is {} bytes", n + 12))
                && e.contains(&format!("end at byte {n}")),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
