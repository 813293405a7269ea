//! Products on matrix units (issue 12 item 2): the engine uses `coop_linear.wgsl` for
//! prefill products where the adapter offers 16 × 16 × 16 f16 cooperative matrices
//! (`WgpuContext::coop_matrix`), after checking it on this device against a CPU product;
//! the tiled `linear.wgsl` stays the fallback (lavapipe, f32 storage, a failed check).

use half::f16;

use super::{EngineError, WgpuEngine};

/// The check's product: tokens, K and output columns, none a multiple of the 64 × 64
/// tile or of K's 32-wide step, so the bounds of every edge are exercised.
const CHECK_T: usize = 70;
const CHECK_K: usize = 100;
const CHECK_N: usize = 84;

/// `x[t, k]` and `w[n, k]` of the check: small deterministic values, exact in f16.
fn check_inputs() -> (Vec<f32>, Vec<f16>) {
    let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
    let x = (0..CHECK_T * CHECK_K).map(|i| val(i, 1)).collect();
    let w = (0..CHECK_N * CHECK_K)
        .map(|i| f16::from_f32(val(i, 2)))
        .collect();
    (x, w)
}

impl WgpuEngine {
    /// Runs `pipeline` (a product with `linear.wgsl`'s parameters and bindings, f32 input,
    /// f16 weights) on a 70 × 100 × 84 product writing columns 3.. of a wider output, with
    /// a residual, and returns the largest |error| against the product on the CPU.
    pub(super) fn check_product(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
    ) -> Result<f32, EngineError> {
        let (x, w) = check_inputs();
        let stride = CHECK_N + 5;
        let col0 = 3;
        let residual: Vec<f32> = (0..CHECK_T * stride).map(|i| (i % 5) as f32).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let xb = self.storage_u32("check x", &words(&x));
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.push(0);
        let wb = self.storage_u32("check w", &w_words);
        let rb = self.storage_u32("check residual", &words(&residual));
        let out = self.buffer("check out", (CHECK_T * stride * 4) as u64)?;
        let params = self.uniform(&[
            CHECK_T as u32,
            CHECK_K as u32,
            CHECK_N as u32,
            1,
            0,
            stride as u32,
            col0 as u32,
            0,
        ]);
        let groups = [
            (CHECK_N as u32).div_ceil(tile[0]),
            (CHECK_T as u32).div_ceil(tile[1]),
            1,
        ];
        let d = self.dispatch(pipeline, &[&params, &xb, &wb, &rb, &out], groups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            d.encode(&mut pass);
        }
        let got = self.read_back(scope, encoder, &out, CHECK_T * stride)?;
        let mut max_err = 0f32;
        for t in 0..CHECK_T {
            for n in 0..CHECK_N {
                let want: f32 = (0..CHECK_K)
                    .map(|k| x[t * CHECK_K + k] * w[n * CHECK_K + k].to_f32())
                    .sum::<f32>()
                    + residual[t * stride + col0 + n];
                let g = f32::from_bits(got[t * stride + col0 + n]);
                max_err = max_err.max((g - want).abs());
            }
        }
        Ok(max_err)
    }

    /// Keeps the matrix-unit products only if they match the CPU on this device (an
    /// experimental feature: a driver may miscompile it); says which products run.
    pub(super) fn settle_coop(&mut self) {
        let Some(coop) = &self.coop else {
            return;
        };
        // Inputs are exact in f16 and sums of ≤ 100 terms of magnitude ≤ 1 stay well
        // inside f16's range; an f16 accumulator rounds each partial sum (≤ 2⁻⁴ at 100).
        let tol = 0.1;
        match self.check_product(&coop.linear, [64, 64]) {
            Ok(e) if e <= tol => {
                self.products = format!(
                    "{} (max |err| {e:.1e} on the start-up check)",
                    self.products
                );
            }
            Ok(e) => {
                self.products = format!(
                    "tiled (the cooperative-matrix product failed its start-up check: max |err| {e})"
                );
                self.coop = None;
            }
            Err(e) => {
                self.products = format!("tiled (the cooperative-matrix product did not run: {e})");
                self.coop = None;
            }
        }
    }

    /// Which prefill products this engine runs: cooperative matrices or tiled.
    pub fn products(&self) -> &str {
        &self.products
    }

    /// Turns the matrix-unit prefill products off (tests and side-by-side benchmarks);
    /// they cannot be turned on where the adapter lacks them.
    pub fn disable_coop_matrix(&mut self) {
        if self.coop.take().is_some() {
            self.products = "tiled (turned off)".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::WgpuEngine;
    use crate::model::random::{like, random_model};
    use crate::model::Model;
    use crate::runtime::wgpu::WgpuContext;

    /// The start-up check itself, on the tiled product every adapter runs (lavapipe has
    /// no cooperative matrices: the matrix path is checked the same way on a GPU).
    #[test]
    fn the_start_up_product_check_accepts_the_tiled_product() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let model = tiny_model();
        let engine = WgpuEngine::new(&ctx, &model, None, false).unwrap();
        let err = engine
            .check_product(&engine.pipes.linear, [256, 4])
            .unwrap();
        assert!(err < 1e-3, "max |err| {err}");
        if ctx.coop_matrix().is_none() {
            assert!(
                engine.products().starts_with("tiled"),
                "{}",
                engine.products()
            );
            assert!(engine.coop.is_none());
        }
    }

    fn tiny_model() -> Model {
        let mut c = like("smollm2-135m").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (1, 64, 96, 50);
        (c.q_heads, c.kv_heads, c.head_dim) = (4, 2, 16);
        c.context_length = 256;
        random_model(&c, 5)
    }
}
