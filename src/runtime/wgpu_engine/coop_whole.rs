//! The start-up check of the prefill products' whole-tile write-out (session 28): the
//! check in `coop.rs` (70 tokens × 84 columns, an output of stride 89) runs only
//! `coop_linear.wgsl`'s edge tiles, whose fragments go through the scratch. This one runs
//! a product with two whole 128 × 128 tiles (fragments stored straight to the output, the
//! residual loaded as their initial value) beside edge tiles (with `MOA_WGPU_COOP_DIRECT=2`
//! their 64 × 32 blocks inside the output stored straight too, the others through the
//! scratch), on an output of stride 208 written from column 4 (16-byte rows, as the
//! direct stores need).

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
