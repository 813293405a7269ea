//! The attention influence of one head (upstream `MoA/models/llama/modify_llama_profile.py`; docs/CALIBRATION.md) and its block×block tile sums.
//!
//! Masking entry (i, j) of a softmax row and renormalising the rest changes the loss, to
//! first order, by
//!
//! ```text
//! ΔL_ij = A_ij / (1 − A_ij) · (Σ_n G_in·A_in − G_ij)
//! ```
//!
//! with G = ∂L/∂A. Where the row has a single key carrying all the mass (row 0, or
//! `1 − A_ij` below [`ONE_EPS`]) nothing is left to renormalise and upstream's special case
//! `−G_ij·A_ij` (dropping the entry alone) is used instead of dividing by ~0.

#![warn(missing_docs)]

/// Below this `1 − A_ij` an entry is treated as the row's only mass. Upstream adds bf16's
/// eps (7.8e-3) to the denominator; in f32 a much smaller guard suffices.
pub const ONE_EPS: f64 = 1e-6;

/// Signed ΔL of masking every causal entry of row `i`: `out[j]` for `j ≤ i`.
/// `a` and `g` are the row's probabilities and gradients (length ≥ i + 1).
pub fn influence_row(i: usize, a: &[f32], g: &[f32], out: &mut [f64]) {
    // Σ_n G_in·A_in over the causal keys, accumulated in f64.
    let s: f64 = (0..=i).map(|n| f64::from(g[n]) * f64::from(a[n])).sum();
    for j in 0..=i {
        let (aij, gij) = (f64::from(a[j]), f64::from(g[j]));
        let rest = 1.0 - aij;
        out[j] = if i == 0 || rest < ONE_EPS {
            -gij * aij
        } else {
            aij / rest * (s - gij)
        };
    }
}

/// Adds |ΔL| of one head (`a`, `g`: `[t, t]` row-major, causal) into `tiles` `[nb, nb]`
/// (tile (qb, kb) covers queries `qb·block..` and keys `kb·block..`). `t ≤ nb·block`: a
/// shorter sequence fills the top-left tiles only (as upstream's padded positions, whose
/// G is 0, would).
pub fn add_head_tiles(a: &[f32], g: &[f32], t: usize, block: usize, nb: usize, tiles: &mut [f64]) {
    let mut row = vec![0.0f64; t];
    for i in 0..t {
        let (ra, rg) = (&a[i * t..(i + 1) * t], &g[i * t..(i + 1) * t]);
        influence_row(i, ra, rg, &mut row);
        let qb = i / block;
        let base = qb * nb;
        for (j, v) in row.iter().take(i + 1).enumerate() {
            tiles[base + j / block] += v.abs();
        }
    }
}

/// Adds the **cut influence** of one head (`a`, `g`: `[t, t]` row-major, causal) into
/// `cuts` `[nb, nb]`: entry `(qb, d)` sums, over the query rows i of block qb, the signed
/// first-order loss change `ΔL_i(S)` (its absolute value with `abs`) for the set `S = { j : sink ≤ j ≤ i − d·block }` (every key at least d
/// blocks back, past the sink), all removed at once and the row renormalised once:
///
/// ```text
/// ΔL_i(S) = (A_S · s − s_S) / (1 − A_S),   A_S = Σ_{j∈S} A_ij,  s_S = Σ_{j∈S} G_ij A_ij,
///                                          s = Σ_n G_in A_in
/// ```
///
/// (first order in the change of A; with `1 − A_S` below [`ONE_EPS`], dropping S without
/// renormalising, `−s_S`). A window of `d·block` tokens past the sink removes exactly S
/// from row i (`HeadWindow::keeps`), so a rule's loss is `Σ_qb cuts[qb, window/block]`.
///
/// Why not the per-entry sum ([`add_head_tiles`]): (1) when several keys carry the same
/// information (the pass key is stated twice in its needle; the answer head spreads over
/// the key's digits), removing any single one of them moves its mass onto the others and
/// costs almost nothing to first order, so the per-entry sums of those tiles are small,
/// while a window that cuts the whole needle removes all of them; (2) a first-order
/// estimate is additive, so the loss change of a mask is the *signed* sum of its
/// entries' changes: summing absolute values instead makes a head whose many small
/// effects cancel (diffuse attention in early layers) look far more costly than it is
/// (docs/CALIBRATION.md, "Diagnosis").
#[allow(clippy::too_many_arguments)]
pub fn add_head_cuts(
    a: &[f32],
    g: &[f32],
    t: usize,
    block: usize,
    nb: usize,
    sink: usize,
    abs: bool,
    cuts: &mut [f64],
) {
    // cum[k] = (Σ A, Σ G·A) over keys sink..sink+k of the current row.
    let mut cum: Vec<(f64, f64)> = Vec::with_capacity(t + 1);
    for i in 0..t {
        let (ra, rg) = (&a[i * t..(i + 1) * t], &g[i * t..(i + 1) * t]);
        let s: f64 = (0..=i).map(|n| f64::from(rg[n]) * f64::from(ra[n])).sum();
        cum.clear();
        cum.push((0.0, 0.0));
        let (mut ca, mut cg) = (0.0f64, 0.0f64);
        for j in sink..=i {
            ca += f64::from(ra[j]);
            cg += f64::from(rg[j]) * f64::from(ra[j]);
            cum.push((ca, cg));
        }
        let base = (i / block) * nb;
        for d in 0..nb {
            // Keys sink..=last are removed; none when last < sink.
            let Some(last) = i.checked_sub(d * block).filter(|&l| l >= sink) else {
                break;
            };
            let (a_s, s_s) = cum[last - sink + 1];
            let rest = 1.0 - a_s;
            let dl = if rest < ONE_EPS {
                -s_s
            } else {
                (a_s * s - s_s) / rest
            };
            cuts[base + d] += if abs { dl.abs() } else { dl };
        }
    }
}

/// The cut-influence loss of a window of `window` tokens past the sink for one head, from
/// the column sums `Σ_qb cuts[qb, d]`: the value at `d = window / block`, linear between
/// the two nearest block multiples when `window` is not one (never with moa's 64-token
/// spans and blocks); 0 once the window covers every distance.
pub fn cut_loss(col_sums: &[f64], window: u32, block: u32) -> f64 {
    let nb = col_sums.len();
    let b = block.max(1);
    let d0 = (window / b) as usize;
    let f = f64::from(window % b) / f64::from(b);
    let at = |d: usize| if d < nb { col_sums[d] } else { 0.0 };
    (1.0 - f) * at(d0) + f * at(d0 + 1)
}

/// [`add_head_tiles`] and [`add_head_cuts`] (signed) for a group of heads at once, as
/// tensor operations on the device that holds `a` and `g` (`[c, t, t]`, causal, any float
/// dtype; computed in f64): only the `[c, nb, nb]` results leave the device, which is what
/// makes profiling on a GPU fast (at T = 8192 one head's A and G are 512 MB in f32).
/// Returns `(tiles, cuts)`, each `[c, nb, nb]` row-major on the host, cuts indexed by
/// (query block, distance in blocks) as [`add_head_cuts`] writes them; `t ≤ nb·block`.
///
/// The same sums as the row loops, regrouped: per entry `|A/(1−A)·(s − G)|` (or `|G·A|`
/// where `1 − A < ONE_EPS`), tile sums by reshaping to `[c, nb, block, nb, block]`; for the
/// cuts, the prefix sums `A_S`, `s_S` of row i up to key `last = kb·block + i mod block`
/// are the sums over the whole key blocks before kb (a matmul with a strictly upper
/// triangular matrix) plus the prefix inside block kb (a matmul with an upper triangular
/// `block × block` matrix, then the column `i mod block` gathered), keys before the sink
/// zeroed first; row i's change at distance `d = qb − kb` counts where `last ≥ sink`.
/// `tests/profile.rs` checks it against the loops.
pub fn group_tiles_and_cuts(
    a: &candle_core::Tensor,
    g: &candle_core::Tensor,
    block: usize,
    nb: usize,
    sink: usize,
) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
    use candle_core::{DType, Tensor};
    let (c, t, t2) = a.dims3()?;
    let n = nb * block;
    if t != t2 || t > n || g.dims() != a.dims() {
        candle_core::bail!(
            "influence: A {:?} and G {:?} must be [c, t, t] with t ≤ {n}",
            a.dims(),
            g.dims()
        );
    }
    let dev = a.device();
    let pad = |x: &Tensor| -> candle_core::Result<Tensor> {
        let x = x.to_dtype(DType::F64)?;
        if t == n {
            return Ok(x);
        }
        x.pad_with_zeros(1, 0, n - t)?.pad_with_zeros(2, 0, n - t)
    };
    let a = pad(a)?;
    let g = pad(g)?;
    let ga = (&g * &a)?;
    // s = Σ_n G_in·A_in per row, [c, n, 1].
    let s = ga.sum_keepdim(2)?;
    let ones = a.ones_like()?;

    // Per-entry tiles.
    let tiles = {
        let rest = a.affine(-1.0, 1.0)?;
        let single = rest.lt(ONE_EPS)?;
        let safe = single.where_cond(&ones, &rest)?;
        let main = (a.div(&safe)? * s.broadcast_sub(&g)?)?;
        drop((rest, safe));
        let e = single.where_cond(&ga.neg()?, &main)?.abs()?;
        drop(main);
        e.reshape((c, nb, block, nb, block))?.sum(4)?.sum(2)?
    };
    drop((g, ones));

    // Cut influence by (row, key block of `last`).
    let key_kept: Vec<f64> = (0..n).map(|j| f64::from(u8::from(j >= sink))).collect();
    let key_kept = Tensor::from_vec(key_kept, (1, 1, n), dev)?;
    let tri: Vec<f64> = (0..block * block)
        .map(|k| f64::from(u8::from(k / block <= k % block)))
        .collect();
    let tri = Tensor::from_vec(tri, (block, block), dev)?;
    let strict: Vec<f64> = (0..nb * nb)
        .map(|k| f64::from(u8::from(k / nb < k % nb)))
        .collect();
    let strict = Tensor::from_vec(strict, (nb, nb), dev)?;
    let r_idx: Vec<u32> = (0..n).map(|i| (i % block) as u32).collect();
    let r_idx = Tensor::from_vec(r_idx, (1, n, 1, 1), dev)?
        .broadcast_as((c, n, nb, 1))?
        .contiguous()?;
    // Σ over keys sink ≤ j ≤ kb·block + (i mod block), per row i and key block kb.
    let prefix = |x: &Tensor| -> candle_core::Result<Tensor> {
        let x = x.broadcast_mul(&key_kept)?;
        let inside = x
            .reshape((c * n * nb, block))?
            .matmul(&tri)?
            .reshape((c, n, nb, block))?
            .gather(&r_idx, 3)?
            .squeeze(3)?;
        let before = x
            .reshape((c, n, nb, block))?
            .sum(3)?
            .reshape((c * n, nb))?
            .matmul(&strict)?
            .reshape((c, n, nb))?;
        before + inside
    };
    let a_s = prefix(&a)?;
    drop(a);
    let s_s = prefix(&ga)?;
    drop(ga);
    let rest = a_s.affine(-1.0, 1.0)?;
    let single = rest.lt(ONE_EPS)?;
    let safe = single.where_cond(&rest.ones_like()?, &rest)?;
    let main = (a_s.broadcast_mul(&s)? - &s_s)?.div(&safe)?;
    let dl = single.where_cond(&s_s.neg()?, &main)?;
    // Row i = qb·block + r counts at key block kb when kb ≤ qb and kb·block + r ≥ sink.
    let valid: Vec<f64> = (0..n * nb)
        .map(|k| {
            let (i, kb) = (k / nb, k % nb);
            f64::from(u8::from(kb <= i / block && kb * block + i % block >= sink))
        })
        .collect();
    let valid = Tensor::from_vec(valid, (1, n, nb), dev)?;
    let by_kb = dl
        .broadcast_mul(&valid)?
        .reshape((c, nb, block, nb))?
        .sum(2)?;

    let tiles = tiles.flatten_all()?.to_vec1::<f64>()?;
    let by_kb = by_kb.flatten_all()?.to_vec1::<f64>()?;
    let mut cuts = vec![0.0f64; c * nb * nb];
    for h in 0..c {
        for qb in 0..nb {
            for kb in 0..=qb {
                cuts[(h * nb + qb) * nb + (qb - kb)] = by_kb[(h * nb + qb) * nb + kb];
            }
        }
    }
    Ok((tiles, cuts))
}
