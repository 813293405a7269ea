//! The decode LM head on matrix units (`coop_head.wgsl`, issue 12 item 3): where the
//! adapter offers 16 × 16 × 16 f16 → f32 cooperative matrices, a decode pass's head
//! (final RMSNorm fused, up to 16 rows a fragment) runs on them, and for greedy steps
//! also the argmax's first stage (one (value, index) pair per row and workgroup, which
//! `argmax.wgsl`'s finish reduces). Checked at start-up on the device against a CPU
//! product (the feature is experimental); `matvec_sg.wgsl` / `matvec.wgsl` stay the
//! fallback and the path of every other adapter (lavapipe has no cooperative matrices).

use half::f16;

use super::{EngineError, WgpuEngine};
use crate::lower::StorageType;
use crate::runtime::shaders::{coop_head_source, COOP_HEAD};
use crate::runtime::wgpu::{matrix_pipeline, CoopMatrix};

/// The head's two pipelines (logits out, or the argmax's first stage) for one K.
pub(super) struct CoopHead {
    pub(super) logits: wgpu::ComputePipeline,
    pub(super) argmax: wgpu::ComputePipeline,
    /// 16-column tiles per subgroup (`TILES`): a workgroup owns 64 · tiles columns.
    pub(super) tiles: u32,
    /// The product's K (the model's hidden size), compiled into the staging array.
    pub(super) k: usize,
    /// Whether greedy decode passes take the argmax's first stage in the head's
    /// epilogue (`MOA_WGPU_HEAD_ARGMAX=0`: the head writes logits, `argmax.wgsl` runs
    /// both stages).
    pub(super) fold_argmax: bool,
}

impl CoopHead {
    /// Output columns per workgroup.
    pub(super) fn columns(&self) -> u32 {
        64 * self.tiles
    }
}

/// Tiles per subgroup: `MOA_WGPU_COOP_HEAD_TILES=1|2|4`, default 2 (SmolLM2's head:
/// 384 workgroups of 128 columns; 4 KB of weight fragments in flight per subgroup).
fn tiles_from_env() -> u32 {
    match std::env::var("MOA_WGPU_COOP_HEAD_TILES").as_deref() {
        Ok("1") => 1,
        Ok("4") => 4,
        _ => 2,
    }
}

/// Builds the head for K = `k` where it can run: an f32 accumulator, f16 weights, K a
/// multiple of 16, the staging arrays within the device's workgroup memory, and not
/// turned off (`MOA_WGPU_COOP_HEAD=0`). `Err` says why not (for `describe`).
pub(super) fn coop_head(
    device: &wgpu::Device,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    k: usize,
) -> Result<CoopHead, String> {
    if std::env::var("MOA_WGPU_COOP_HEAD").is_ok_and(|v| v == "0") {
        return Err("turned off (MOA_WGPU_COOP_HEAD=0)".into());
    }
    let coop = coop.ok_or("no cooperative matrices on this adapter")?;
    if coop.accumulator != StorageType::F32 || storage != StorageType::F16 {
        return Err("needs f16 weights and an f16 x f16 -> f32 configuration".into());
    }
    if !k.is_multiple_of(16) {
        return Err(format!("hidden size {k} is not a multiple of 16"));
    }
    let tiles = tiles_from_env();
    let bytes = 16 * k as u64 * 2 + 4 * u64::from(tiles) * 256 * 4;
    let limit = u64::from(device.limits().max_compute_workgroup_storage_size);
    if bytes > limit {
        return Err(format!(
            "its workgroup arrays need {bytes} bytes, above this adapter's {limit}"
        ));
    }
    let source = coop_head_source(k, tiles);
    let build = |argmax: f64| {
        // Every workgroup array of coop_head.wgsl is written before it is read.
        matrix_pipeline(
            device,
            COOP_HEAD.name,
            &source,
            COOP_HEAD.entry_point,
            &[
                ("SG", f64::from(coop.subgroup)),
                ("INPUT_MODE", 1.0),
                ("ARGMAX", argmax),
            ],
        )
    };
    Ok(CoopHead {
        logits: build(0.0)?,
        argmax: build(1.0)?,
        tiles,
        k,
        fold_argmax: std::env::var("MOA_WGPU_HEAD_ARGMAX").map_or(true, |v| v != "0"),
    })
}

/// The start-up check's product: 21 rows (a full 16-row block and a partial one), 400
/// columns (25 tiles: the last workgroup partly past the end at every tile count), written
/// at column 3 of rows 405 wide.
const CHECK_ROWS: usize = 21;
const CHECK_N: usize = 400;
const CHECK_STRIDE: usize = 405;
const CHECK_COL0: usize = 3;

impl WgpuEngine {
    /// Runs the head's logits and argmax pipelines on the check product and returns the
    /// largest |error| of the logits against the CPU, and whether every (value, index)
    /// pair is the largest of its workgroup's columns of those logits (lowest index on
    /// ties), exactly.
    fn check_coop_head(&self, h: &CoopHead) -> Result<(f32, bool), EngineError> {
        let k = h.k;
        let eps = 1e-5f32;
        let val = |i: usize, salt: usize| {
            let x = (i.wrapping_mul(2_654_435_761).wrapping_add(salt * 97_531)) % 2001;
            x as f32 / 1000.0 - 1.0
        };
        let x: Vec<f32> = (0..CHECK_ROWS * k).map(|i| 3.0 * val(i, 1)).collect();
        let g: Vec<f32> = (0..k).map(|i| 1.0 + 0.5 * val(i, 2)).collect();
        let w: Vec<f16> = (0..CHECK_N * k).map(|i| f16::from_f32(val(i, 3))).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let xb = self.storage_u32("head check x", &words(&x));
        let gb = self.storage_u32("head check norm", &words(&g));
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.push(0);
        let wb = self.storage_u32("head check w", &w_words);
        let out = self.buffer("head check out", (CHECK_ROWS * CHECK_STRIDE * 4) as u64)?;
        let blocks = (CHECK_N as u32).div_ceil(h.columns());
        let pairs = self.buffer(
            "head check pairs",
            CHECK_ROWS as u64 * u64::from(blocks) * 8,
        )?;
        let params = self.uniform(&[
            CHECK_ROWS as u32,
            k as u32,
            CHECK_N as u32,
            0,
            eps.to_bits(),
            CHECK_STRIDE as u32,
            CHECK_COL0 as u32,
            blocks,
        ]);
        let groups = [blocks, (CHECK_ROWS as u32).div_ceil(16), 1];
        let run = |pipeline: &wgpu::ComputePipeline, dst: &wgpu::Buffer, words: usize| {
            let d = self.dispatch_bound(
                pipeline,
                &[
                    (0, (&params).into()),
                    (1, (&xb).into()),
                    (2, (&wb).into()),
                    (4, (&out).into()),
                    (5, (&gb).into()),
                    (6, (&pairs).into()),
                ],
                groups,
            );
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                d.encode(&mut pass);
            }
            self.read_back(scope, encoder, dst, words)
        };
        let got = run(&h.logits, &out, CHECK_ROWS * CHECK_STRIDE)?;
        let got_pairs = run(&h.argmax, &pairs, CHECK_ROWS * blocks as usize * 2)?;
        let logit = |t: usize, n: usize| f32::from_bits(got[t * CHECK_STRIDE + CHECK_COL0 + n]);
        let mut max_err = 0f32;
        let mut pairs_ok = true;
        for t in 0..CHECK_ROWS {
            let row = &x[t * k..(t + 1) * k];
            let ms = row.iter().map(|v| v * v).sum::<f32>() / k as f32;
            let s = 1.0 / (ms + eps).sqrt();
            // The staged operand is rounded to f16, as on the device.
            let a: Vec<f32> = (0..k)
                .map(|i| f16::from_f32(row[i] * s * g[i]).to_f32())
                .collect();
            for n in 0..CHECK_N {
                let want: f32 = (0..k).map(|i| a[i] * w[n * k + i].to_f32()).sum();
                max_err = max_err.max((logit(t, n) - want).abs());
            }
            for b in 0..blocks as usize {
                let cols = b * h.columns() as usize..((b + 1) * h.columns() as usize).min(CHECK_N);
                // The first index of the largest value (no NaN here).
                let best =
                    cols.clone().fold(
                        cols.start,
                        |bi, n| if logit(t, n) > logit(t, bi) { n } else { bi },
                    );
                let o = (t * blocks as usize + b) * 2;
                pairs_ok &=
                    got_pairs[o] == logit(t, best).to_bits() && got_pairs[o + 1] == best as u32;
            }
        }
        Ok((max_err, pairs_ok))
    }

    /// Pairs per row the argmax's first stage may write: `argmax.wgsl`'s blocks, or one
    /// per workgroup of the matrix-unit head.
    pub(super) fn argmax_blocks_max(&self) -> u32 {
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let coop = self
            .coop_head
            .as_ref()
            .map_or(0, |h| (head.rows as u32).div_ceil(h.columns()));
        super::record::ARGMAX_BLOCKS.max(coop)
    }

    /// Keeps the matrix-unit head only if it matches the CPU on this device, and says
    /// which head runs (for `describe`).
    pub(super) fn settle_coop_head(&mut self) {
        let Ok(h) = &self.coop_head else {
            return;
        };
        // f16 operands (the CPU rounds them the same way), f32 sums of k terms ≤ 3 in
        // magnitude: only the order of the additions differs.
        let tol = 1e-2;
        let verdict = match self.check_coop_head(h) {
            Ok((e, true)) if e <= tol => Ok(format!(
                "matrix units (coop_head.wgsl, {} tiles a subgroup{}; max |err| {e:.1e} on the start-up check)",
                h.tiles,
                if h.fold_argmax {
                    ", argmax stage 1 in its epilogue"
                } else {
                    ""
                }
            )),
            Ok((e, pairs)) => Err(format!(
                "failed its start-up check: max |err| {e}, argmax pairs {}",
                if pairs { "right" } else { "wrong" }
            )),
            Err(e) => Err(format!("did not run: {e}")),
        };
        match verdict {
            Ok(s) => self.head_kind = s,
            Err(why) => {
                self.head_kind = format!("as the other products (the matrix-unit head {why})");
                self.coop_head = Err(why);
            }
        }
    }
}
