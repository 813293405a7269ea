//! The attention influence of one head (docs: moa.md §3.2) and its block×block tile sums.
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
