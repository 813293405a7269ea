//! Seeded synthetic influence profiles on disk and `moa optimize` command lines: what the
//! optimizer's user-round tests (rounds 39 and 40) run the CLI on, no model needed.

#![allow(dead_code)]

use moa::plan::ModelShape;
use moa::profile::InfluenceProfile;

/// A model shape of `layers` × `q_heads` query heads, `kv_heads` KV heads of `head_dim`,
/// named `synthetic-<layers>x<q_heads>`.
pub fn shape(layers: u32, q_heads: u32, kv_heads: u32, head_dim: u32, context: u32) -> ModelShape {
    ModelShape {
        name: Some(format!("synthetic-{layers}x{q_heads}")),
        layers,
        q_heads,
        kv_heads,
        head_dim,
        max_context_tokens: context,
    }
}

/// Seeded synthetic profiles of `model` at `lengths` (64-token blocks), saved as
/// `p<N>.safetensors` in `dir`; returns their paths.
pub fn save_profiles(dir: &std::path::Path, model: &ModelShape, lengths: &[u32]) -> Vec<String> {
    lengths
        .iter()
        .map(|&n| {
            let path = dir.join(format!("p{n}.safetensors"));
            InfluenceProfile::synthetic(model.clone(), n, 64, 2024)
                .save(&path)
                .unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect()
}

/// `moa optimize` arguments: `--profile F` for each file, then `extra`.
pub fn optimize_args<'a>(files: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["optimize"];
    for f in files {
        args.extend(["--profile", f.as_str()]);
    }
    args.extend(extra);
    args
}
