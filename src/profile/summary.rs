//! A short text summary of an influence profile: per layer, the total mass and the shares
//! in the sink column (key block 0), on the diagonal tiles (local attention) and in the
//! rest (long range). Small enough to commit where the profiles themselves are not.

#![warn(missing_docs)]

use std::fmt::Write as _;

use crate::profile::InfluenceProfile;

/// Per-layer shares, one TSV row per layer (mean over query heads of each head's shares,
/// so that a head with little mass counts as much as one with a lot).
pub fn summary_tsv(p: &InfluenceProfile) -> String {
    let nb = p.n_blocks();
    let mut out = String::from("layer\ttotal\tsink\tdiagonal\tlong_range\n");
    for l in 0..p.model.layers as usize {
        let (mut total, mut sink, mut diag) = (0.0f64, 0.0f64, 0.0f64);
        let heads = p.model.q_heads as usize;
        for h in 0..heads {
            let t = p.head(l, h);
            let sum: f64 = t.iter().map(|&v| f64::from(v)).sum();
            total += sum;
            if sum <= 0.0 {
                continue;
            }
            let s: f64 = (0..nb).map(|q| f64::from(t[q * nb])).sum();
            // Tile (0, 0) is both sink and diagonal: count it as sink only.
            let d: f64 = (1..nb).map(|q| f64::from(t[q * nb + q])).sum();
            sink += s / sum;
            diag += d / sum;
        }
        let (s, d) = (sink / heads as f64, diag / heads as f64);
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{l}\t{total:.4e}\t{s:.3}\t{d:.3}\t{:.3}",
            (1.0 - s - d).max(0.0)
        );
    }
    out
}
