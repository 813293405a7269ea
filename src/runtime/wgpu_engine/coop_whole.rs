//! The start-up check of the prefill products' whole-tile write-out (session 28): the
//! check in `coop.rs` (70 tokens × 84 columns, an output of stride 89) runs only
//! `coop_linear.wgsl`'s edge tiles, whose fragments go through the scratch. This one runs
//! a product with two whole 128 × 128 tiles (fragments stored straight to the output, the
//! residual loaded as their initial value) beside edge tiles (with `MOA_WGPU_COOP_DIRECT=2`
//! their 64 × 32 blocks inside the output stored straight too, the others through the
//! scratch), on an output of stride 208 written from column 4 (16-byte rows, as the
//! direct stores need).

#![warn(missing_docs)]

use super::coop::ProductCheck;
use super::{EngineError, WgpuEngine};

/// Tokens, K and output columns: two whole row tiles of 128 and 44 tokens after them,
/// one whole column tile of 128 and 72 columns after it (two 32-column blocks inside,
/// one across the edge, one outside); K a multiple of 4 but not of the 32-wide stage.
/// Columns 4.. of an output of stride 208 (16-byte rows, as the direct stores need).
const WHOLE_CHECK: ProductCheck = ProductCheck {
    label: "whole check",
    t: 300,
    k: 100,
    n: 200,
    stride: 208,
    col0: 4,
    residual_mod: 7,
    salts: (3, 4),
};

impl WgpuEngine {
    /// `coop.rs`'s product check (`WgpuEngine::run_product_check`: `linear.wgsl`'s
    /// parameters and bindings, grid of `tile` = columns × tokens a workgroup) on the
    /// 300 × 100 × 200 product above, with a residual; returns the largest |error|
    /// against the product on the CPU.
    pub(super) fn check_whole_tiles(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
    ) -> Result<f32, EngineError> {
        self.run_product_check(pipeline, tile, &WHOLE_CHECK)
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

/// The SwiGLU product's check (session 29): tokens, K and act columns (ffn) none a
/// multiple of the 128-token tile, the 32-wide stage or the 64-column act tile (72: a
/// fragment pair across the edge), K not a multiple of 8 (w's words read element by
/// element).
const SWIGLU_CHECK: [usize; 3] = [150, 100, 72];

impl WgpuEngine {
    /// Runs the gate/up product with SwiGLU in its epilogue (`pipeline`, grid of `tile`
    /// = act columns × tokens a workgroup) on [`SWIGLU_CHECK`]'s product (x and the
    /// `[gate; up]` weight multiples of 1/8 in [-1, 1], exact in f16; act of stride
    /// ffn plus 3, from column 1) and returns the largest |error| against
    /// silu(gate) · up on the CPU relative to the largest |value|.
    pub(super) fn check_swiglu(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
    ) -> Result<f32, EngineError> {
        use half::f16;
        let [t, k, ffn] = SWIGLU_CHECK;
        let (stride, col0) = (ffn + 3, 1);
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..t * k).map(|i| val(i, 5)).collect();
        let w: Vec<f16> = (0..2 * ffn * k)
            .map(|i| f16::from_f32(val(i, 6) / 4.0))
            .collect();
        let x_words: Vec<u32> = x.iter().map(|f| f.to_bits()).collect();
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.resize(w_words.len().next_multiple_of(4), 0);
        let xb = self.storage_u32("swiglu check x", &x_words);
        let wb = self.storage_u32("swiglu check w", &w_words);
        let out = self.check_buffer("swiglu check out", (t * stride * 4) as u64)?;
        let params = self.uniform(&[
            t as u32,
            k as u32,
            ffn as u32,
            0,
            0,
            stride as u32,
            col0 as u32,
            0,
        ]);
        let groups = [
            (ffn as u32).div_ceil(tile[0]),
            (t as u32).div_ceil(tile[1]),
            1,
        ];
        let d = self.dispatch(pipeline, &[&params, &xb, &wb, &self.dummy, &out], groups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            d.encode(&mut pass);
        }
        let got = self.read_back(scope, encoder, &out, t * stride)?;
        let dot = |r: usize, row: usize| -> f32 {
            (0..k).map(|i| x[r * k + i] * w[row * k + i].to_f32()).sum()
        };
        let (mut err, mut max_abs) = (0f32, 0f32);
        for r in 0..t {
            for j in 0..ffn {
                let (g, u) = (dot(r, j), dot(r, ffn + j));
                let want = g / (1.0 + (-g).exp()) * u;
                let have = f32::from_bits(got[r * stride + col0 + j]);
                err = err.max((have - want).abs());
                max_abs = max_abs.max(want.abs());
            }
        }
        Ok(err / max_abs.max(1e-30))
    }

    /// After `settle_coop_whole`: keeps SwiGLU in the gate/up product's epilogue only if
    /// it matches the CPU on this device (relative 1e-3: sums exact in f32, the device's
    /// exp within a few ulp; an f16 accumulator rounds by ≤ 2⁻⁴ a sum, so it fails and
    /// keeps the SwiGLU pass), else keeps the product and the SwiGLU pass apart.
    pub(super) fn settle_coop_swiglu(&mut self) {
        let Some((pipe, tile)) = self
            .coop
            .as_ref()
            .and_then(|c| c.gate_up_swiglu.clone().map(|p| (p, c.swiglu_tile)))
        else {
            return;
        };
        let note = match self.check_swiglu(&pipe, tile) {
            Ok(e) if e <= 1e-3 => format!("SwiGLU in the gate/up product (max rel err {e:.1e})"),
            Ok(e) => format!("SwiGLU apart (its product failed the start-up check: {e})"),
            Err(e) => format!("SwiGLU apart (its product's check did not run: {e})"),
        };
        if !note.starts_with("SwiGLU in") {
            if let Some(c) = self.coop.as_mut() {
                c.gate_up_swiglu = None;
            }
        }
        self.products = format!("{} ({note})", self.products);
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
