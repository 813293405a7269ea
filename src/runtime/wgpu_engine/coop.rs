//! Products on matrix units (issue 12 item 2): the engine uses `coop_linear.wgsl` for
//! prefill products where the adapter offers 16 × 16 × 16 f16 cooperative matrices
//! (`WgpuContext::coop_matrix`), after checking it on this device against a CPU product;
//! the tiled `linear.wgsl` stays the fallback (lavapipe, f32 storage, a failed check).
//! The prefill attention too (`codegen::wgsl::prefill_coop`: QKᵀ and P·V on the matrix
//! units), checked at start-up against the plan's scalar prefill kernel on this device,
//! which stays the fallback.

#![warn(missing_docs)]

use half::f16;

use super::{EngineError, WgpuEngine};
use crate::codegen::wgsl::{prefill_coop, prefill_coop_group_form, PrefillGroupForm};
use crate::lower::KernelModule;
use crate::runtime::wgpu::{matrix_pipeline_checked, CoopMatrix, Dispatch};

/// The prefill attention on matrix units: per layer (in the module's order) its pipeline,
/// the queries a workgroup owns and whether it is the group form (grid y = KV heads).
pub(super) struct CoopAttention {
    pub(super) layers: Vec<wgpu::ComputePipeline>,
    pub(super) q_tile: u32,
    pub(super) group: bool,
    /// The group form's variant (form 1 where `group` is false).
    pub(super) variant: PrefillGroupForm,
    /// Distinct pipelines built (layers with the same rules share one) and the wall time
    /// of building them, in seconds.
    pub(super) built: (usize, f64),
}

/// Compiles every layer's matrix-unit prefill for `coop`'s subgroup size, in the group
/// form (`prefill_coop_group.wgsl.j2`, a workgroup per GQA group; it needs the device's
/// subgroup operations) where `group`, else a workgroup per query head
/// (`prefill_coop.wgsl.j2`); without naga's runtime checks unless `checked` (the engine's
/// `MOA_WGPU_UNCHECKED`). Layers whose rules are equal (every layer of a dense plan) share
/// one pipeline, and the distinct ones are built on every core at once (rayon): the
/// driver's compile is most of an engine's first load on the H200 (session 27: 30 group-form pipelines 32–36 s, built
/// one after another; a second process, whose compiles NVIDIA's driver has cached on
/// disk, loaded in 1.2–1.3 s). Errors (as text, the engine then keeps the scalar
/// kernels): an f16 accumulator only, a shape the kernel does not take, or the driver's
/// complaint.
pub(super) fn coop_attention(
    device: &wgpu::Device,
    module: &KernelModule,
    coop: CoopMatrix,
    group: bool,
    variant: PrefillGroupForm,
    checked: bool,
) -> Result<CoopAttention, String> {
    if coop.accumulator != crate::lower::StorageType::F32 {
        return Err("the adapter offers no f16 x f16 -> f32 matrices".into());
    }
    let t0 = std::time::Instant::now();
    let kernels = if group {
        prefill_coop_group_form(module, variant)
    } else {
        prefill_coop(module)
    }
    .map_err(|e| e.to_string())?;
    let q_tile = kernels.first().map_or(64, |k| k.q_tile);
    // Layer i uses distinct[of[i]]: the first layer with the same rules (the kernel is a
    // function of the module's shape and the layer's rules only).
    let keys: Vec<String> = module
        .layers
        .iter()
        .map(|l| serde_json::to_string(&(&l.groups, &l.q_heads, &l.kv_heads)).unwrap_or_default())
        .collect();
    let mut distinct: Vec<usize> = Vec::new();
    let of: Vec<usize> = (0..kernels.len())
        .map(
            |i| match distinct.iter().position(|&j| keys[j] == keys[i]) {
                Some(d) => d,
                None => {
                    distinct.push(i);
                    distinct.len() - 1
                }
            },
        )
        .collect();
    let constants = [("SG", f64::from(coop.subgroup))];
    // rayon's pool (one thread a core); a build that panics is reported as that layer's
    // error, not lost.
    use rayon::prelude::*;
    let built: Vec<Result<wgpu::ComputePipeline, String>> = distinct
        .par_iter()
        .map(|&i| {
            let k = &kernels[i];
            // Every workgroup array of both forms is written before it is read; error
            // scopes are per thread (wgpu 30).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                matrix_pipeline_checked(
                    device,
                    &k.entry_point,
                    &k.source,
                    &k.entry_point,
                    &constants,
                    checked,
                )
            }))
            .unwrap_or_else(|_| Err("the pipeline build panicked".into()))
            .map_err(|e| format!("layer {}: {e}", k.layer))
        })
        .collect();
    let pipelines = built.into_iter().collect::<Result<Vec<_>, String>>()?;
    Ok(CoopAttention {
        layers: of.iter().map(|&d| pipelines[d].clone()).collect(),
        q_tile,
        group,
        variant: if group {
            variant
        } else {
            PrefillGroupForm::default()
        },
        built: (pipelines.len(), t0.elapsed().as_secs_f64()),
    })
}

/// The attention check's batch: two rows (lengths not multiples of the 64-token tile),
/// spans at N = `CHECK_N_TOKENS`.
const CHECK_ROWS: [u32; 2] = [150, 77];
const CHECK_N_TOKENS: u32 = 300;

/// One start-up check of a prefill product (`linear.wgsl`'s parameters and bindings, f32
/// input, f16 weights): `t` tokens × `k` × `n` output columns, written from column `col0`
/// of an output `stride` columns wide, onto a residual of values `i % residual_mod`;
/// inputs are multiples of 1/8 in [-1, 1] (exact in f16) drawn with `salts` (x, w).
pub(super) struct ProductCheck {
    pub(super) label: &'static str,
    pub(super) t: usize,
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) stride: usize,
    pub(super) col0: usize,
    pub(super) residual_mod: usize,
    pub(super) salts: (usize, usize),
}

/// The check's product: tokens, K and output columns, none a multiple of the 64 × 64
/// tile or of K's 32-wide step, so the bounds of every edge are exercised; columns 3.. of
/// an output of stride 89.
const EDGE_CHECK: ProductCheck = ProductCheck {
    label: "check",
    t: 70,
    k: 100,
    n: 84,
    stride: 89,
    col0: 3,
    residual_mod: 5,
    salts: (1, 2),
};

impl WgpuEngine {
    /// Runs `pipeline` with a grid of `tile` (columns × tokens a workgroup) on `c`'s
    /// product and returns the largest |error| against the product on the CPU.
    pub(super) fn run_product_check(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
        c: &ProductCheck,
    ) -> Result<f32, EngineError> {
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..c.t * c.k).map(|i| val(i, c.salts.0)).collect();
        let w: Vec<f16> = (0..c.n * c.k)
            .map(|i| f16::from_f32(val(i, c.salts.1)))
            .collect();
        let residual: Vec<f32> = (0..c.t * c.stride)
            .map(|i| (i % c.residual_mod) as f32)
            .collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let named = |what: &str| format!("{} {what}", c.label);
        let xb = self.storage_u32(&named("x"), &words(&x));
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.push(0);
        let wb = self.storage_u32(&named("w"), &w_words);
        let rb = self.storage_u32(&named("residual"), &words(&residual));
        let out = self.check_buffer(&named("out"), (c.t * c.stride * 4) as u64)?;
        let params = self.uniform(&[
            c.t as u32,
            c.k as u32,
            c.n as u32,
            1,
            0,
            c.stride as u32,
            c.col0 as u32,
            0,
        ]);
        let groups = [
            (c.n as u32).div_ceil(tile[0]),
            (c.t as u32).div_ceil(tile[1]),
            1,
        ];
        let d = self.dispatch(pipeline, &[&params, &xb, &wb, &rb, &out], groups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            d.encode(&mut pass);
        }
        let got = self.read_back(scope, encoder, &out, c.t * c.stride)?;
        let mut max_err = 0f32;
        for t in 0..c.t {
            for n in 0..c.n {
                let want: f32 = (0..c.k)
                    .map(|k| x[t * c.k + k] * w[n * c.k + k].to_f32())
                    .sum::<f32>()
                    + residual[t * c.stride + c.col0 + n];
                let g = f32::from_bits(got[t * c.stride + c.col0 + n]);
                max_err = max_err.max((g - want).abs());
            }
        }
        Ok(max_err)
    }

    /// [`Self::run_product_check`] on the 70 × 100 × 84 edge-tile product.
    pub(super) fn check_product(
        &self,
        pipeline: &wgpu::ComputePipeline,
        tile: [u32; 2],
    ) -> Result<f32, EngineError> {
        self.run_product_check(pipeline, tile, &EDGE_CHECK)
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
        match self.check_product(&coop.linear, coop.tile) {
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

    /// The matrix-unit prefill attention's dispatch for `layer` (index into the module's
    /// layers), with the scalar kernel's buffers: `[row_start, q, k, v, out]`, over the
    /// queries `q_start .. q_start + q_len` of each row (Q and `out` begin at the row's
    /// token `q_start`, as `WgpuAttention::prefill_dispatch_from` takes them); grid
    /// (ceil(`q_len` / q_tile), query heads or, in the group form, KV heads, rows).
    pub(super) fn coop_prefill_dispatch(
        &self,
        attn: &CoopAttention,
        layer: usize,
        n_tokens: u32,
        rows: u32,
        (q_start, q_len): (u32, u32),
        buffers: [&wgpu::Buffer; 5],
    ) -> Dispatch {
        let params = self.uniform(&[n_tokens, rows, q_start, 0]);
        let [row_start, q, k, v, o] = buffers;
        let heads = if attn.group {
            self.config.kv_heads
        } else {
            self.config.q_heads
        };
        self.dispatch(
            &attn.layers[layer],
            &[&params, row_start, q, k, v, o],
            [q_len.div_ceil(attn.q_tile), heads as u32, rows],
        )
    }

    /// Runs the plan's scalar prefill kernel and `pipeline` for `layer` on the same
    /// two-row batch (random Q, K, V in f16) and returns the largest |difference| of
    /// their outputs.
    fn check_attention(&self, layer: usize, attn: &CoopAttention) -> Result<f32, EngineError> {
        let c = &self.config;
        let total: u32 = CHECK_ROWS.iter().sum();
        let val = |i: usize, salt: usize| {
            let x = (i.wrapping_mul(2_654_435_761).wrapping_add(salt * 97_531)) % 2001;
            x as f32 / 1000.0 - 1.0
        };
        let pack = |n: usize, salt: usize| -> Vec<u32> {
            let h: Vec<u16> = (0..n + 1)
                .map(|i| f16::from_f32(val(i, salt)).to_bits())
                .collect();
            h.chunks(2)
                .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
                .collect()
        };
        let q_len = total as usize * c.q_heads * c.head_dim;
        let kv_len = total as usize * c.kv_heads * c.head_dim;
        let q = self.storage_u32("check q", &pack(q_len, 1));
        // K and V keep the engine's zeroed pad after the last row, as the pass buffers do
        // (`chunks::KV_PAD_TOKENS`: the 16-key blocks of the last row read there).
        let padded = |mut words: Vec<u32>| {
            words.resize(
                words.len() + super::chunks::KV_PAD_TOKENS * c.kv_heads * c.head_dim / 2,
                0,
            );
            words
        };
        let k = self.storage_u32("check k", &padded(pack(kv_len, 2)));
        let v = self.storage_u32("check v", &padded(pack(kv_len, 3)));
        let row_start = self.storage_u32("check row_start", &[0, CHECK_ROWS[0], total]);
        let max_len = CHECK_ROWS[0].max(CHECK_ROWS[1]);
        let mut outs = Vec::new();
        for coop in [false, true] {
            let o = self.check_buffer("check out", (q_len * 2) as u64)?;
            let buffers = [&row_start, &q, &k, &v, &o];
            let d = if coop {
                self.coop_prefill_dispatch(attn, layer, CHECK_N_TOKENS, 2, (0, max_len), buffers)
            } else {
                self.attention
                    .prefill_dispatch(layer, CHECK_N_TOKENS, 2, max_len, buffers)?
            };
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                d.encode(&mut pass);
            }
            outs.push(self.read_back(scope, encoder, &o, q_len / 2)?);
        }
        let half = |w: &[u32]| -> Vec<f32> {
            w.iter()
                .flat_map(|&x| [x as u16, (x >> 16) as u16])
                .map(|b| f16::from_bits(b).to_f32())
                .collect()
        };
        let (a, b) = (half(&outs[0]), half(&outs[1]));
        Ok(a.iter()
            .zip(&b)
            .map(|(x, y)| {
                if x.is_finite() && y.is_finite() {
                    (x - y).abs()
                } else {
                    f32::INFINITY
                }
            })
            .fold(0.0, f32::max))
    }

    /// Keeps the matrix-unit prefill attention only if it matches the scalar kernel on
    /// this device on the first and last layers (an experimental feature: a driver may
    /// miscompile it); appends which attention runs to [`Self::products`].
    pub(super) fn settle_coop_attention(&mut self) {
        let Some(attn) = self.coop_attention.take() else {
            return;
        };
        if attn.variant.diag > 0 {
            // A timing diagnostic computes wrong results on purpose: no check.
            self.products = format!(
                "{}; prefill attention: cooperative matrix, a workgroup per GQA group, DIAGNOSTIC {} (form {}; wrong results, not checked)",
                self.products, attn.variant.diag, attn.variant.form
            );
            self.coop_attention = Some(attn);
            return;
        }
        // P is rounded to f16 for the matrix units (relative 2⁻¹¹); outputs are convex
        // combinations of values in [-1, 1], so the difference stays far below this.
        let tol = 1e-2;
        let last = attn.layers.len() - 1;
        let mut worst = 0f32;
        for layer in [0, last] {
            match self.check_attention(layer, &attn) {
                Ok(e) => worst = worst.max(e),
                Err(e) => {
                    self.products = format!(
                        "{}; prefill attention: scalar (the matrix-unit kernel did not run: {e})",
                        self.products
                    );
                    return;
                }
            }
        }
        if worst <= tol {
            self.products = format!(
                "{}; prefill attention: cooperative matrix{} (max |diff| {worst:.1e} against the scalar kernel on the start-up check)",
                self.products,
                if attn.group {
                    format!(
                        ", a workgroup per GQA group{}{}{}{}{}{}",
                        if attn.variant.form == 1 { " (workgroup barriers)" } else { "" },
                        if attn.variant.stage_k { " (K staged)" } else { "" },
                        if attn.variant.v_early { " (V early)" } else { "" },
                        if attn.variant.v_in_k { " (V staged in K's tile)" } else { "" },
                        if attn.variant.mask_select { " (select masks)" } else { "" },
                        if attn.variant.score_regs { " (scores in registers)" } else { "" },
                    )
                } else {
                    String::new()
                },
            );
            self.coop_attention = Some(attn);
        } else {
            self.products = format!(
                "{}; prefill attention: scalar (the matrix-unit kernel failed its start-up check: max |diff| {worst})",
                self.products
            );
        }
    }

    /// The matrix-unit prefill attention's build at load, where it runs: the distinct
    /// pipelines built (layers with equal rules share one) and the wall time of building
    /// them in seconds (not part of [`Engine::describe`](crate::runtime::engine::Engine::describe), which two engines of the same
    /// kernels must give alike). `None` where the scalar attention runs.
    pub fn prefill_attention_build(&self) -> Option<(usize, f64)> {
        self.coop_attention.as_ref().map(|a| a.built)
    }

    /// Which prefill products this engine runs: cooperative matrices or tiled.
    pub fn products(&self) -> &str {
        &self.products
    }

    /// Turns the matrix-unit prefill products and attention off (tests and side-by-side
    /// benchmarks); they cannot be turned on where the adapter lacks them.
    pub fn disable_coop_matrix(&mut self) {
        let attention = self.coop_attention.take().is_some();
        if self.coop.take().is_some() || attention {
            self.products = "tiled (turned off); prefill attention: scalar".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{WgpuEngine, WgpuEngineOptions};
    use super::{ProductCheck, EDGE_CHECK};
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

    /// `linear_words.wgsl` (f16 weights eight a load, session 44) against the CPU product,
    /// in the form the engine picks for 1, 2, 3, 5 and 70 rows (1, 2, 2, 4 and 8 rows an
    /// invocation: a last invocation with fewer rows than its form); 84 output columns (not a
    /// multiple of a workgroup's 256), a residual and a column offset; K 104 (a multiple of
    /// 8, not of 16 or 32).
    #[test]
    fn the_f16_word_products_match_the_cpu_product() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let engine = WgpuEngine::new(&ctx, &tiny_model(), None, false).unwrap();
        let words = engine.pipes.linear_words.as_ref().expect("f16 weights");
        for t in [1, 2, 3, 5, 70] {
            let form = words.form(t);
            let (pipeline, rows) = (&form.storage[0], form.rows);
            let check = ProductCheck {
                label: "words",
                t,
                k: 104,
                ..EDGE_CHECK
            };
            let err = engine
                .run_product_check(pipeline, [256, rows], &check)
                .unwrap();
            assert!(err < 1e-3, "{t} rows: max |err| {err}");
        }
    }

    /// One `linear_words.wgsl` texture form (`shader`, with `TEX_WIDTH` 16) run over every
    /// part of `m` (K = `k`, `format` the parameters' last word) for each (rows, ROWS) of
    /// `runs`, the part's textures at the bindings `textures` gives, writing at column
    /// offset `col0 + row0` of outputs of stride `stride` with a residual; the largest
    /// |error| against the CPU product of `w` (`[m.rows, k]`), asserted below 1e-3.
    #[allow(clippy::too_many_arguments)]
    fn check_texture_words<'m>(
        shader: crate::runtime::shaders::Shader,
        m: &'m super::super::weights::Matrix,
        w: &[f32],
        (k, stride, col0, format): (usize, usize, usize, u32),
        runs: &[(usize, u32)],
        textures: impl Fn(&'m super::super::weights::Part) -> Vec<(u32, &'m wgpu::TextureView)>,
        ctx: &WgpuContext,
        engine: &WgpuEngine,
        what: &str,
    ) {
        use crate::runtime::shaders::Types;
        let device = ctx.device();
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let source = shader.source(Types {
            weights: crate::lower::StorageType::F16,
            input: crate::lower::StorageType::F32,
            attention: crate::lower::StorageType::F16,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("words texture test"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        for &(t, rows_per) in runs {
            let constants = [("ROWS", f64::from(rows_per)), ("TEX_WIDTH", 16.0)];
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("words texture test"),
                layout: None,
                module: &module,
                entry_point: Some(shader.entry_point),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            });
            let x: Vec<f32> = (0..t * k).map(|i| val(i, 1)).collect();
            let residual: Vec<f32> = (0..t * stride).map(|i| (i % 5) as f32).collect();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
            let xb = engine.storage_u32("x", &bits(&x));
            let rb = engine.storage_u32("residual", &bits(&residual));
            let out = engine.check_buffer("out", (t * stride * 4) as u64).unwrap();
            let params: Vec<wgpu::Buffer> = m
                .parts
                .iter()
                .map(|p| {
                    engine.uniform(&[
                        t as u32,
                        k as u32,
                        p.rows as u32,
                        1,
                        0,
                        stride as u32,
                        (col0 + p.row0) as u32,
                        format,
                    ])
                })
                .collect();
            let dispatches: Vec<_> = m
                .parts
                .iter()
                .zip(&params)
                .map(|(p, params)| {
                    engine.dispatch_views(
                        &pipeline,
                        &[
                            (0, params.into()),
                            (1, (&xb).into()),
                            (3, (&rb).into()),
                            (4, (&out).into()),
                        ],
                        &textures(p),
                        [
                            (p.rows as u32).div_ceil(256),
                            (t as u32).div_ceil(rows_per),
                            1,
                        ],
                    )
                })
                .collect();
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for d in &dispatches {
                    d.encode(&mut pass);
                }
            }
            let got = engine.read_back(scope, encoder, &out, t * stride).unwrap();
            let mut max_err = 0f32;
            for r in 0..t {
                for c in 0..m.rows {
                    let want: f32 = (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>()
                        + residual[r * stride + col0 + c];
                    let g = f32::from_bits(got[r * stride + col0 + c]);
                    max_err = max_err.max((g - want).abs());
                }
            }
            assert!(max_err < 1e-3, "{what}, {t} rows: max |err| {max_err}");
        }
    }

    /// `linear_words.wgsl` with its weights from textures (`MOA_WGPU_TEXTURE_WEIGHTS`, the
    /// CPU adapters' default) against the CPU product, through the engine's upload
    /// (`weights::texture_matrix`) and dispatch (`dispatch_views`): textures of 16 texels
    /// a row and at most 7 rows (the shader's `TEX_WIDTH` 16 instead of 8192) split the 84
    /// output columns of K 104 (13 words a row, not a multiple of 64) into parts of 8 rows
    /// (104 words, the last texture row short) and a last of 4 (52 words, zero-padded);
    /// each part writes its columns at its row offset, with a residual and a column
    /// offset; 1 and 3 rows at one row an invocation, 3 at two, 70 at four and eight. K 100 (not a multiple
    /// of 8) keeps the storage form only.
    #[test]
    fn the_f16_word_products_from_textures_match_the_cpu_product() {
        use super::super::weights::{texture_matrix, TextureShape};
        use crate::runtime::shaders;
        use half::f16;
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let engine = WgpuEngine::new(&ctx, &tiny_model(), None, false).unwrap();
        let device = ctx.device();
        let shape = TextureShape {
            width: 16,
            max_height: 7,
        };
        let (n, k, stride, col0) = (84, 104, 89, 3);
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let w: Vec<f32> = (0..n * k)
            .map(|i| f16::from_f32(val(i, 2)).to_f32())
            .collect();
        let m = texture_matrix(device, ctx.queue(), &w, n, shape, u64::MAX).unwrap();
        let parts: Vec<(usize, usize)> = m.parts.iter().map(|p| (p.row0, p.rows)).collect();
        assert_eq!(parts.len(), 11, "{parts:?}");
        assert!(parts[..10].iter().all(|&(_, r)| r == 8) && parts[10] == (80, 4));
        assert!(m.parts.iter().all(|p| p.texture.is_some()));
        let plain = texture_matrix(device, ctx.queue(), &w[..n * 100], n, shape, u64::MAX);
        assert!(plain.unwrap().parts.iter().all(|p| p.texture.is_none()));
        check_texture_words(
            shaders::LINEAR_WORDS_TEXTURE,
            &m,
            &w,
            (k, stride, col0, 0),
            &[(1, 1), (3, 1), (3, 2), (70, 4), (70, 8)],
            |p| vec![(2, p.texture.as_ref().unwrap())],
            &ctx,
            &engine,
            "f16",
        );
    }

    /// `linear_words.wgsl` over a kept quantization from textures
    /// (`quant_weights_texture.wgsl`, the CPU adapters' form) against the CPU product of
    /// the dequantized weights, through the engine's upload (`weights::texture_quant_matrix`,
    /// the four-column blocks of `weights::column_blocks`) and dispatch: 4-bit codes in
    /// groups of 32 and 8-bit codes in groups of 16, 42 output columns (not a multiple of
    /// the 4-column block) of K 96, textures of 16 texels a row and at most 7 rows (the
    /// shader's `TEX_WIDTH` 16) splitting them into parts of 16, 16 and 10 rows of several
    /// texture rows each, the last short; a residual and a column offset; 1 and 3 rows at
    /// one row an invocation, 3 at two, 70 at eight.
    #[test]
    fn the_quantized_word_products_from_textures_match_the_cpu_product() {
        use super::super::weights::{texture_quant_matrix, TextureShape};
        use crate::model::QuantMatrix;
        use crate::runtime::shaders;
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let engine = WgpuEngine::new(&ctx, &tiny_model(), None, false).unwrap();
        let shape = TextureShape {
            width: 16,
            max_height: 7,
        };
        let (n, k, stride, col0) = (42usize, 96usize, 47usize, 3usize);
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        for (bits, group) in [(4u32, 32usize), (8, 16)] {
            let words = n * k * bits as usize / 32;
            let m = QuantMatrix {
                rows: n,
                cols: k,
                bits,
                group,
                codes: (0..words as u32)
                    .map(|i| i.wrapping_mul(2654435761) ^ (i << 7))
                    .collect(),
                params: (0..2 * n * k / group).map(|i| val(i, 5) / 4.0).collect(),
            };
            let q = texture_quant_matrix(ctx.device(), ctx.queue(), &m, shape).unwrap();
            let parts: Vec<(usize, usize)> = q.parts.iter().map(|p| (p.row0, p.rows)).collect();
            assert_eq!(parts, [(0, 16), (16, 16), (32, 10)], "{bits} bits");
            check_texture_words(
                shaders::LINEAR_WORDS_QUANT_TEXTURE,
                &q,
                &m.dequantize(),
                (k, stride, col0, bits | (group.trailing_zeros() << 8)),
                &[(1, 1), (3, 1), (3, 2), (70, 8)],
                |p| {
                    let (codes, pairs) = p.quant.as_ref().unwrap().texture.as_ref().unwrap();
                    vec![(2, codes), (12, pairs)]
                },
                &ctx,
                &engine,
                &format!("{bits} bits"),
            );
        }
    }

    /// `linear_tiled.wgsl` (the many-row products of GPU adapters without matrix units,
    /// session 45) at both tile sizes (`BLOCK` 4 and 8) against the CPU product (f16
    /// weights, f32 input: the check's x is f32;
    /// the f16-input twin runs in tests/model_gpu.rs under `MOA_WGPU_TILED=1`): 70 rows
    /// and 84 columns (neither a multiple of the 64 × 64 tile), a residual and a column
    /// offset; K 100 (not a multiple of the 16-wide step) and 16; 200 rows (four tile
    /// rows, the last partial) and 5 (one partial tile).
    #[test]
    fn the_tiled_products_match_the_cpu_product() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        for block in [4, 8] {
            let options = WgpuEngineOptions {
                tiled_block: block,
                ..WgpuEngineOptions::default()
            };
            let engine =
                WgpuEngine::new_with_options(&ctx, &tiny_model(), None, false, options).unwrap();
            let side = 16 * block;
            for (t, k) in [(70, 100), (70, 16), (200, 100), (5, 36)] {
                let check = ProductCheck {
                    label: "tiled",
                    t,
                    k,
                    ..EDGE_CHECK
                };
                let err = engine
                    .run_product_check(&engine.pipes.linear_tiled[0], [side, side], &check)
                    .unwrap();
                assert!(
                    err < 1e-3,
                    "BLOCK {block}, {t} rows, K {k}: max |err| {err}"
                );
            }
        }
    }

    /// The engine with its product weights in textures (`MOA_WGPU_TEXTURE_WEIGHTS=1`) against
    /// the same engine on storage buffers: the prefill logits and two greedy decode steps
    /// equal bit for bit (the same products in the same order, only where the weights are
    /// read from differs). With split-K and tiled products off and no matrix units (a CPU
    /// adapter, lavapipe in CI) every product runs `linear_words.wgsl`, so the engine keeps
    /// the weights only as textures: the embedding is gathered from its texture, the weight
    /// bytes are the storage engine's (the norms apart), and switching split-K on after
    /// load is refused, naming the options that keep both forms.
    #[test]
    fn texture_weights_give_the_storage_engines_logits_and_tokens() {
        use crate::runtime::engine::Engine;
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        if !ctx.has_f16() {
            return;
        }
        let model = tiny_model();
        let run = |texture: bool| {
            let options = WgpuEngineOptions {
                texture_weights: Some(texture),
                split_k: Some(false),
                tiled: Some(false),
                ..WgpuEngineOptions::default()
            };
            let engine = WgpuEngine::new_with_options(&ctx, &model, None, false, options).unwrap();
            let (logits, tokens) = logit_bits_and_tokens(&engine);
            (engine, logits, tokens)
        };
        let (mut on, on_logits, on_tokens) = run(true);
        let (off, off_logits, off_tokens) = run(false);
        assert!(!off.texture_only_weights());
        if ctx.coop_matrix().is_none() {
            assert!(on.texture_only_weights());
            let on_desc = on.describe();
            assert!(on_desc.contains("from textures"), "{on_desc}");
            // Tiled products off: the load line names the per-invocation blocks that run,
            // not "tiled" (round 42).
            assert!(
                on_desc.contains("prefill products: per-invocation blocks (no cooperative"),
                "{on_desc}"
            );
            // Every part of every matrix in one form: textures only, or storage only.
            let parts = |e: &WgpuEngine| -> Vec<(bool, bool)> {
                let mut m = vec![&e.embed];
                m.extend(&e.lm_head);
                for l in &e.layers {
                    m.extend([&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down]);
                }
                m.iter()
                    .flat_map(|m| &m.parts)
                    .map(|p| (p.has_storage(), p.texture.is_some()))
                    .collect()
            };
            assert!(parts(&on).iter().all(|&p| p == (false, true)));
            assert!(parts(&off).iter().all(|&p| p == (true, false)));
            let e = on.set_split_k_matvec(true).unwrap_err().to_string();
            assert!(
                e.contains("MOA_WGPU_SPLIT_K=1") && e.contains("MOA_WGPU_TEXTURE_WEIGHTS=0"),
                "{e}"
            );
            on.set_split_k_matvec(false).unwrap();
        }
        assert_eq!(on_tokens, off_tokens);
        assert_eq!(on_logits, off_logits);
    }

    /// A binding limit the caller gives (here 16 bytes, below any tensor row) is refused as
    /// the limit the engine plans for, not called the adapter's (round 42).
    #[test]
    fn a_callers_binding_limit_is_not_called_the_adapters() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        let e = WgpuEngine::new_with_binding_limit(&ctx, &tiny_model(), None, false, 16)
            .err()
            .expect("no tensor row fits 16 bytes")
            .to_string();
        assert!(
            e.contains("above the storage binding limit of 16 bytes the engine plans for")
                && !e.contains("this adapter's"),
            "{e}"
        );
    }

    /// `engine`'s prefill logits (f32 bits) of two ragged rows, and the greedy tokens of
    /// the same prefill and two decode steps.
    fn logit_bits_and_tokens(engine: &WgpuEngine) -> (Vec<Vec<u32>>, Vec<u32>) {
        use crate::runtime::engine::{Engine, Sampling};
        let prompts = vec![vec![1u32, 7, 3, 9, 4], vec![2u32, 8, 5]];
        let mut req = engine.start(&[5, 3], 3, 0).unwrap();
        let logits = engine.prefill_logits(&mut req, &prompts).unwrap();
        let mut req = engine.start(&[5, 3], 3, 0).unwrap();
        let mut tokens = engine
            .prefill_tokens(&mut req, &prompts, Sampling::greedy())
            .unwrap();
        for _ in 0..2 {
            let next = engine
                .decode_tokens(&mut req, &tokens[tokens.len() - 2..], Sampling::greedy())
                .unwrap();
            tokens.extend(next);
        }
        let bits = logits
            .iter()
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        (bits, tokens)
    }

    /// An engine built from `&mut Model` (`ModelRef::Taken`) takes the host weights,
    /// leaving `Weights::default()` and the config as it was, and its logits and greedy
    /// tokens are those of an engine built from `&Model`, bit for bit; the kept model's
    /// weights are untouched.
    #[test]
    fn an_engine_given_the_model_mutably_takes_its_weights_and_computes_the_same() {
        use crate::model::Weights;
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        let kept = tiny_model();
        let mut taken = kept.clone();
        let a = logit_bits_and_tokens(&WgpuEngine::new(&ctx, &kept, None, false).unwrap());
        let b = logit_bits_and_tokens(&WgpuEngine::new(&ctx, &mut taken, None, false).unwrap());
        assert_eq!(a, b);
        assert_eq!(taken.weights, Weights::default());
        assert_eq!(taken.config, kept.config);
        assert_ne!(kept.weights, Weights::default());
    }

    fn tiny_model() -> Model {
        let mut c = like("smollm2-135m").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (1, 64, 96, 50);
        (c.q_heads, c.kv_heads, c.head_dim) = (4, 2, 16);
        c.context_length = 256;
        random_model(&c, 5)
    }
}
