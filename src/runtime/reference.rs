//! The CPU reference: sink + span attention for prefill and decode, with GQA, over the
//! same tensor and cache layouts as the generated kernels. Written for clarity, not
//! speed: full scores in f64, then the mask from `HeadWindow::keeps`. It is the
//! oracle every kernel is tested against.

#![warn(missing_docs)]

use crate::lower::{CacheLayout, LayerSpec};
use crate::plan::SpanParams;

/// Ragged prefill batch: row `b` holds tokens `row_start[b]..row_start[b+1]` of the
/// packed tensors, at positions `0..len_b`.
///
/// * `q`: `[total_tokens, q_heads, head_dim]`
/// * `k`, `v`: `[total_tokens, kv_heads, head_dim]`
///
/// Returns `[total_tokens, q_heads, head_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn prefill_ref(
    layer: &LayerSpec,
    span: &SpanParams,
    n_tokens: u32,
    head_dim: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    row_start: &[u32],
) -> Vec<f32> {
    let hq = layer.q_heads.len();
    let hkv = layer.kv_heads.len();
    let d = head_dim;
    let total = *row_start.last().unwrap_or(&0) as usize;
    let mut out = vec![0f32; total * hq * d];
    let scale = 1.0 / (d as f64).sqrt();
    for b in 0..row_start.len().saturating_sub(1) {
        let start = row_start[b] as usize;
        let len = row_start[b + 1] as usize - start;
        for h in 0..hq {
            let win = layer.window(h, n_tokens, span);
            let kvh = layer.q_heads[h].kv_head as usize;
            for t in 0..len {
                let qv = &q[((start + t) * hq + h) * d..][..d];
                let keys: Vec<usize> = (0..len)
                    .filter(|&j| win.keeps(t as u64, j as u64))
                    .collect();
                let kv_row = |j: usize| ((start + j) * hkv + kvh) * d;
                let o = attend(qv, keys.iter().map(|&j| kv_row(j)), k, v, d, scale);
                out[((start + t) * hq + h) * d..][..d].copy_from_slice(&o);
            }
        }
    }
    out
}

/// Decode: one new query per row over the sink + ring cache.
///
/// * `q`: `[rows, q_heads, head_dim]`
/// * `k_cache`, `v_cache`: `[rows, layout.row_slots, head_dim]`
/// * `row_pos[b]`: position of row b's current token, already written to the cache.
///
/// Returns `[rows, q_heads, head_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn decode_ref(
    layer: &LayerSpec,
    span: &SpanParams,
    layout: &CacheLayout,
    head_dim: usize,
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    row_pos: &[u32],
) -> Vec<f32> {
    let hq = layer.q_heads.len();
    let d = head_dim;
    let slots = layout.row_slots as usize;
    let mut out = vec![0f32; row_pos.len() * hq * d];
    let scale = 1.0 / (d as f64).sqrt();
    for (b, &t) in row_pos.iter().enumerate() {
        let t = u64::from(t);
        for h in 0..hq {
            let win = layer.window(h, layout.n_tokens, span);
            let kvh = layer.q_heads[h].kv_head as usize;
            let seg = layout.segments[kvh];
            let positions = layout.positions(kvh, t);
            let keys = positions.iter().enumerate().filter_map(|(j, p)| {
                p.filter(|&p| win.keeps(t, p))
                    .map(|_| (b * slots + seg.offset as usize + j) * d)
            });
            let qv = &q[(b * hq + h) * d..][..d];
            let o = attend(qv, keys, k_cache, v_cache, d, scale);
            out[(b * hq + h) * d..][..d].copy_from_slice(&o);
        }
    }
    out
}

/// softmax(q·Kᵀ·scale)·V over the given key rows (element offsets into k and v).
/// An empty key set gives zeros (it cannot happen for a valid plan: the current
/// token is always kept).
fn attend(
    q: &[f32],
    rows: impl Iterator<Item = usize>,
    k: &[f32],
    v: &[f32],
    d: usize,
    scale: f64,
) -> Vec<f32> {
    let rows: Vec<usize> = rows.collect();
    let scores: Vec<f64> = rows
        .iter()
        .map(|&r| {
            (0..d)
                .map(|i| f64::from(q[i]) * f64::from(k[r + i]))
                .sum::<f64>()
                * scale
        })
        .collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    let mut o = vec![0f64; d];
    for (w, &r) in weights.iter().zip(&rows) {
        for i in 0..d {
            o[i] += w * f64::from(v[r + i]);
        }
    }
    o.iter().map(|x| (x / sum) as f32).collect()
}

/// Writes the keys (or values) of tokens `0..=t` of one row, given as
/// `[t + 1, kv_heads, head_dim]`, into that row of a cache arena
/// `[rows, row_slots, head_dim]`, in token order as a decode loop would (later tokens
/// overwrite older ones in the ring).
pub fn fill_cache_row(
    layout: &CacheLayout,
    head_dim: usize,
    row: usize,
    tokens: &[f32],
    cache: &mut [f32],
) {
    let hkv = layout.segments.len();
    let d = head_dim;
    let n = tokens.len() / (hkv * d);
    for p in 0..n {
        for kvh in 0..hkv {
            if let Some(slot) = layout.slot_of(kvh, p as u64) {
                let dst = (row * layout.row_slots as usize + slot as usize) * d;
                cache[dst..dst + d].copy_from_slice(&tokens[(p * hkv + kvh) * d..][..d]);
            }
        }
    }
}
