//! The start-up check of the prefill products' whole-tile write-out (session 28): the
//! check in `coop.rs` (70 tokens × 84 columns, an output of stride 89) runs only
//! `coop_linear.wgsl`'s edge tiles, whose fragments go through the scratch. This one runs
//! a product with two whole 128 × 128 tiles (fragments stored straight to the output, the
//! residual loaded as their initial value) beside edge tiles (with `MOA_WGPU_COOP_DIRECT=2`
//! their 64 × 32 blocks inside the output stored straight too, the others through the
//! scratch), on an output of stride 208 written from column 4 (16-byte rows, as the
//! direct stores need).

use half::f16;

use super::{EngineError, WgpuEngine};

/// Tokens, K and output columns: two whole row tiles of 128 and 44 tokens after them,
/// one whole column tile of 128 and 72 columns after it (two 32-column blocks inside,
/// one across the edge, one outside); K a multiple of 4 but not of the 32-wide stage.
const WHOLE_T: usize = 300;
const WHOLE_K: usize = 100;
const WHOLE_N: usize = 200;

impl WgpuEngine {
    /// Runs `pipeline` (a product with `linear.wgsl`'s parameters and bindings, f32 input,
    /// f16 weights, grid of `tile` = columns × tokens a workgroup) on a 300 × 100 × 200
    /// product writing columns 4.. of an output of stride 208, with a residual, and
    /// returns the largest |error| against the product on the CPU. Inputs are exact in
    /// f16 (multiples of 1/8 in [-1, 1]).
    pub(super) fn check_whole_tiles(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
    ) -> Result<f32, EngineError> {
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..WHOLE_T * WHOLE_K).map(|i| val(i, 3)).collect();
        let w: Vec<f16> = (0..WHOLE_N * WHOLE_K)
            .map(|i| f16::from_f32(val(i, 4)))
            .collect();
        let (stride, col0) = (WHOLE_N + 8, 4);
        let residual: Vec<f32> = (0..WHOLE_T * stride).map(|i| (i % 7) as f32).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let xb = self.storage_u32("whole check x", &words(&x));
        let w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        let wb = self.storage_u32("whole check w", &w_words);
        let rb = self.storage_u32("whole check residual", &words(&residual));
        let out = self.check_buffer("whole check out", (WHOLE_T * stride * 4) as u64)?;
        let params = self.uniform(&[
            WHOLE_T as u32,
            WHOLE_K as u32,
            WHOLE_N as u32,
            1,
            0,
            stride as u32,
            col0 as u32,
            0,
        ]);
        let groups = [
            (WHOLE_N as u32).div_ceil(tile[0]),
            (WHOLE_T as u32).div_ceil(tile[1]),
            1,
        ];
        let d = self.dispatch(pipeline, &[&params, &xb, &wb, &rb, &out], groups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            d.encode(&mut pass);
        }
        let got = self.read_back(scope, encoder, &out, WHOLE_T * stride)?;
        let mut max_err = 0f32;
        for t in 0..WHOLE_T {
            for n in 0..WHOLE_N {
                let want: f32 = (0..WHOLE_K)
                    .map(|k| x[t * WHOLE_K + k] * w[n * WHOLE_K + k].to_f32())
                    .sum::<f32>()
                    + residual[t * stride + col0 + n];
                let g = f32::from_bits(got[t * stride + col0 + n]);
                max_err = max_err.max((g - want).abs());
            }
        }
        Ok(max_err)
    }

    /// After `settle_coop`: keeps the matrix-unit products only if their whole tiles
    /// also match the CPU (sums of ≤ 100 terms of magnitude ≤ 1, exact in f32; an f16
    /// accumulator, which never takes the direct stores, rounds them by ≤ 2⁻⁴ each).
    pub(super) fn settle_coop_whole(&mut self) {
        let Some(coop) = &self.coop else {
            return;
        };
        let tol = 0.1;
        match self.check_whole_tiles(&coop.linear, coop.tile) {
            Ok(e) if e <= tol => {
                self.products = format!("{} (whole tiles: max |err| {e:.1e})", self.products);
            }
            Ok(e) => {
                self.products = format!(
                    "tiled (the cooperative-matrix product failed its whole-tile start-up check: max |err| {e})"
                );
                self.coop = None;
            }
            Err(e) => {
                self.products = format!(
                    "tiled (the cooperative-matrix product's whole-tile check did not run: {e})"
                );
                self.coop = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::WgpuEngine;
    use crate::model::random::{like, random_model};
    use crate::runtime::wgpu::WgpuContext;

    /// The whole-tile check itself (its inputs, aligned output and CPU product), on the
    /// tiled product every adapter runs: lavapipe has no cooperative matrices, so the
    /// direct stores are checked this way on a GPU at start-up (the H200: max |err| 0).
    #[test]
    fn the_whole_tile_check_accepts_the_tiled_product() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let mut c = like("smollm2-135m").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (1, 64, 96, 50);
        (c.q_heads, c.kv_heads, c.head_dim) = (4, 2, 16);
        c.context_length = 256;
        let model = random_model(&c, 5);
        let engine = WgpuEngine::new(&ctx, &model, None, false).unwrap();
        let err = engine
            .check_whole_tiles(&engine.pipes.linear, [256, 4])
            .unwrap();
        assert!(err < 1e-3, "max |err| {err}");
    }
}
