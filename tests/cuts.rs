//! Cut influence (`profile::influence::add_head_cuts`): the closed form equals the
//! first-order change computed entry by entry from its definition, its sets are exactly
//! what a window of d blocks drops (`HeadWindow::keeps`), and with a duplicated key the
//! per-entry influence misses what the cut sees. The tensor form that runs on a GPU
//! (`group_tiles_and_cuts`) gives the loops' sums.

use moa::plan::HeadWindow;
use moa::profile::influence::{add_head_cuts, add_head_tiles, cut_loss, group_tiles_and_cuts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random causal softmax rows and gradients `[t, t]`.
fn random_head(t: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut a = vec![0.0f32; t * t];
    let mut g = vec![0.0f32; t * t];
    for i in 0..t {
        let w: Vec<f32> = (0..=i)
            .map(|_| rng.random_range(0.0f32..3.0).exp())
            .collect();
        let sum: f32 = w.iter().sum();
        for j in 0..=i {
            a[i * t + j] = w[j] / sum;
            g[i * t + j] = rng.random_range(-1.0..1.0);
        }
    }
    (a, g)
}

#[test]
fn cuts_match_the_definition_and_the_window() {
    let (t, block, sink) = (50usize, 8usize, 8usize);
    let nb = t.div_ceil(block);
    let (a, g) = random_head(t, 3);
    let mut cuts = vec![0.0f64; nb * nb];
    add_head_cuts(&a, &g, t, block, nb, sink, true, &mut cuts);
    let mut want = vec![0.0f64; nb * nb];
    for i in 0..t {
        for d in 0..nb {
            // The keys a window of d·block tokens past the sink drops from row i.
            let w = HeadWindow::new((sink + d * block) as u32, sink as u32);
            let dropped: Vec<bool> = (0..=i).map(|j| !w.keeps(i as u64, j as u64)).collect();
            let a_s: f64 = (0..=i)
                .filter(|&j| dropped[j])
                .map(|j| f64::from(a[i * t + j]))
                .sum();
            if a_s == 0.0 && !dropped.iter().any(|&x| x) {
                continue;
            }
            // Σ_n G_n (A'_n − A_n) with A' = A·[kept] / (1 − A_S).
            let dl: f64 = (0..=i)
                .map(|n| {
                    let an = f64::from(a[i * t + n]);
                    let new = if dropped[n] { 0.0 } else { an / (1.0 - a_s) };
                    f64::from(g[i * t + n]) * (new - an)
                })
                .sum();
            want[(i / block) * nb + d] += dl.abs();
        }
    }
    for (k, (x, y)) in cuts.iter().zip(&want).enumerate() {
        assert!(
            (x - y).abs() < 1e-6 * (1.0 + y.abs()),
            "entry {k}: {x} vs {y}"
        );
    }
    // The loss of a window is the column sum at its distance; 0 once it covers all.
    let col: Vec<f64> = (0..nb)
        .map(|d| (0..nb).map(|q| cuts[q * nb + d]).sum())
        .collect();
    assert_eq!(cut_loss(&col, (2 * block) as u32, block as u32), col[2]);
    assert_eq!(cut_loss(&col, (nb * block) as u32, block as u32), 0.0);
    let half = cut_loss(&col, (2 * block + block / 2) as u32, block as u32);
    assert!((half - 0.5 * (col[2] + col[3])).abs() < 1e-12);
}

/// One query row that reads a key stated twice: either copy alone can be removed at no
/// cost (its mass moves to the other copy), so the per-entry sums of the needle tiles are
/// ~0, while removing both (any window that drops the needle) costs the answer.
#[test]
fn a_duplicated_key_is_invisible_per_entry_but_not_to_the_cut() {
    let (t, block, sink) = (64, 8, 8);
    let nb = t / block;
    let mut a = vec![0.0f32; t * t];
    let mut g = vec![0.0f32; t * t];
    for i in 0..t {
        a[i * t] = 1.0; // every other row: all mass on the sink
    }
    let i = t - 1;
    a[i * t] = 0.0;
    // The key twice, at 12 and 14: 0.49 each, a little elsewhere.
    for j in 0..=i {
        a[i * t + j] = 0.02 / 62.0;
    }
    a[i * t + 12] = 0.49;
    a[i * t + 14] = 0.49;
    // Both copies carry the answer: the same gradient; the rest is neutral.
    g[i * t + 12] = -4.0;
    g[i * t + 14] = -4.0;
    let mut tiles = vec![0.0f64; nb * nb];
    add_head_tiles(&a, &g, t, block, nb, &mut tiles);
    let mut cuts = vec![0.0f64; nb * nb];
    add_head_cuts(&a, &g, t, block, nb, sink, true, &mut cuts);
    let needle_tile = tiles[7 * nb + 1];
    // A window of 6 blocks past the sink drops keys ≤ 63 − 48 = 15: both copies.
    let cut = cuts[7 * nb + 6];
    assert!(
        needle_tile < 0.2,
        "per-entry sum of the needle tile: {needle_tile}"
    );
    assert!(cut > 3.0, "cut influence of dropping both copies: {cut}");
}

/// The tensor form (what `moa profile --device cuda` runs on the GPU) against the row
/// loops, for a group of heads: a sequence shorter than the profile length (padded tiles),
/// a sink that is and one that is not a block multiple, and a row whose whole mass sits on
/// one key (the `1 − A < ONE_EPS` branch).
#[test]
fn tensor_form_matches_the_loops() {
    let (t, block, nb) = (37usize, 8usize, 6usize);
    let heads: Vec<(Vec<f32>, Vec<f32>)> = (0..3)
        .map(|h| {
            let (mut a, g) = random_head(t, 10 + h);
            if h == 1 {
                // Row 20 puts everything on key 5.
                for j in 0..t {
                    a[20 * t + j] = if j == 5 { 1.0 } else { 0.0 };
                }
            }
            (a, g)
        })
        .collect();
    let flat = |k: usize| -> Vec<f32> {
        heads
            .iter()
            .flat_map(|x| if k == 0 { x.0.clone() } else { x.1.clone() })
            .collect()
    };
    let dev = candle_core::Device::Cpu;
    let a = candle_core::Tensor::from_vec(flat(0), (3, t, t), &dev).unwrap();
    let g = candle_core::Tensor::from_vec(flat(1), (3, t, t), &dev).unwrap();
    for sink in [8usize, 12] {
        let (tiles, cuts) = group_tiles_and_cuts(&a, &g, block, nb, sink).unwrap();
        for (h, (ha, hg)) in heads.iter().enumerate() {
            let mut want_t = vec![0.0f64; nb * nb];
            let mut want_c = vec![0.0f64; nb * nb];
            add_head_tiles(ha, hg, t, block, nb, &mut want_t);
            add_head_cuts(ha, hg, t, block, nb, sink, false, &mut want_c);
            let got_t = &tiles[h * nb * nb..(h + 1) * nb * nb];
            let got_c = &cuts[h * nb * nb..(h + 1) * nb * nb];
            for k in 0..nb * nb {
                let (x, y) = (got_t[k], want_t[k]);
                assert!(
                    (x - y).abs() < 1e-9 * (1.0 + y.abs()),
                    "tile {h}/{k}: {x} vs {y}"
                );
                let (x, y) = (got_c[k], want_c[k]);
                assert!(
                    (x - y).abs() < 1e-9 * (1.0 + y.abs()),
                    "cut {h}/{k} sink {sink}: {x} vs {y}"
                );
            }
        }
    }
}
