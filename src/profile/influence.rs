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
