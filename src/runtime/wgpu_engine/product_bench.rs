//! The prefill product on matrix units alone (`coop_linear.wgsl`): a product `out[m × n] = x[m × k] · w[n × k]ᵀ` timed over repeated dispatches,
//! and checked against the CPU (`examples/wgpu_products.rs --gemm`, issue 12 item 2).

#![warn(missing_docs)]

use half::f16;

use super::pipelines::coop_linear_pipeline;
use crate::lower::StorageType;
use crate::runtime::shaders::COOP_LINEAR_TILE;
use crate::runtime::wgpu::{bind_buffers, storage_u32_buffer, WgpuContext};

/// The product compiled for f32 x on this adapter, with its tile (columns × tokens).
pub struct CoopProduct {
    pipeline: wgpu::ComputePipeline,
    tile: [u32; 2],
}

impl CoopProduct {
    /// Compiles the product for f32 input as the engine does by default (naga's runtime
    /// checks off, DIRECT 2: every 64 × 32 block inside the output stored straight to
    /// it, no diagnostic). Errors: no cooperative matrices on the adapter, or the
    /// driver's complaint.
    pub fn new(ctx: &WgpuContext) -> Result<CoopProduct, String> {
        Self::with(ctx, false, 2, 0)
    }

    /// [`Self::new`] with the runtime checks on or off (`checked`), `coop_linear.wgsl`'s
    /// DIRECT (`direct`: 1 whole tiles stored straight to the output, 2 also edge tiles'
    /// inner blocks, 0 every tile through the scratch) and its
    /// timing diagnostic `diag` (1 no loads after the first stage, 2 no multiply-adds, 3
    /// no write-out: wrong results).
    pub fn with(
        ctx: &WgpuContext,
        checked: bool,
        direct: u32,
        diag: u32,
    ) -> Result<CoopProduct, String> {
        Self::with_input(ctx, StorageType::F32, checked, direct, diag)
    }

    /// The gate/up product with SwiGLU in its epilogue (f32 x, as the engine builds it:
    /// SWIGLU 1, no runtime checks), to run on a [`ProductIo`] of form `swiglu`.
    pub fn swiglu(ctx: &WgpuContext) -> Result<CoopProduct, String> {
        let coop = ctx
            .coop_matrix()
            .ok_or("no cooperative matrices on this adapter")?;
        let pipeline =
            coop_linear_pipeline(ctx.device(), coop, StorageType::F32, false, 2, 0, true)?;
        let [columns, tokens] = COOP_LINEAR_TILE;
        Ok(CoopProduct {
            pipeline,
            tile: [columns / 2, tokens],
        })
    }

    /// [`Self::with`] for x of type `input` (f32, or f16 as the engine's out product
    /// reads the attention output).
    pub fn with_input(
        ctx: &WgpuContext,
        input: StorageType,
        checked: bool,
        direct: u32,
        diag: u32,
    ) -> Result<CoopProduct, String> {
        let coop = ctx
            .coop_matrix()
            .ok_or("no cooperative matrices on this adapter")?;
        let pipeline =
            coop_linear_pipeline(ctx.device(), coop, input, checked, direct, diag, false)?;
        let tile = COOP_LINEAR_TILE;
        Ok(CoopProduct { pipeline, tile })
    }

    /// Runs the product once on `io` and returns the largest |error| against the CPU
    /// relative to the largest |value| (large shapes take long on the CPU).
    pub fn check(&self, ctx: &WgpuContext, io: &ProductIo) -> Result<f32, String> {
        self.submit(ctx, io, 1)?;
        let [m, n, k] = io.shape;
        let got = read_back(ctx, &io.out, m * io.stride)?;
        let (mut err, mut max_abs) = (0f32, 0f32);
        let dot = |t: usize, row: usize| -> f32 {
            (0..k)
                .map(|i| io.x[t * k + i] * io.w[row * k + i].to_f32())
                .sum()
        };
        for t in 0..m {
            for c in 0..n {
                if io.form.swiglu {
                    let (g, u) = (dot(t, c), dot(t, n + c));
                    let want = g / (1.0 + (-g).exp()) * u;
                    let got = got[t * io.stride + io.col0 + c];
                    err = err.max((got - want).abs());
                    max_abs = max_abs.max(want.abs());
                    continue;
                }
                let r = if io.form.residual {
                    io.residual[t * io.stride + io.col0 + c]
                } else {
                    0.0
                };
                let want: f32 = (0..k)
                    .map(|i| io.x[t * k + i] * io.w[c * k + i].to_f32())
                    .sum::<f32>()
                    + r;
                let g = got[t * io.stride + io.col0 + c];
                err = err.max((g - want).abs());
                max_abs = max_abs.max(want.abs());
            }
        }
        Ok(err / max_abs.max(1e-30))
    }

    /// Seconds of one dispatch on `io`: one untimed dispatch, then `reps` in one
    /// submission, timed on the host around the wait.
    pub fn time(&self, ctx: &WgpuContext, io: &ProductIo, reps: u32) -> Result<f64, String> {
        self.submit(ctx, io, 1)?;
        let start = std::time::Instant::now();
        self.submit(ctx, io, reps)?;
        Ok(start.elapsed().as_secs_f64() / f64::from(reps.max(1)))
    }

    fn submit(&self, ctx: &WgpuContext, io: &ProductIo, count: u32) -> Result<(), String> {
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind = bind_buffers(
            device,
            &self.pipeline,
            None,
            &[&io.params, &io.xb, &io.wb, &io.rb, &io.out],
        );
        let [m, n, _] = io.shape;
        let groups = [
            (n as u32).div_ceil(self.tile[0]),
            (m as u32).div_ceil(self.tile[1]),
        ];
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            for _ in 0..count {
                pass.dispatch_workgroups(groups[0], groups[1], 1);
            }
        }
        ctx.queue().submit([encoder.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(e.to_string()),
            None => Ok(()),
        }
    }
}

/// How a [`ProductIo`] is laid out: the output's rows and first column 16-byte aligned
/// (`aligned`: stride n + 8 from column 4, so whole tiles take the direct write-out, as
/// the engine's outputs do; else n + 5 from column 3, every tile through the scratch), a
/// residual added or not (the engine adds one to out and down only), x in f16 or f32 (the
/// engine's out product reads the f16 attention output; the others f32), and for
/// [`CoopProduct::swiglu`] (`swiglu`: w has 2 n rows, gate then up, and the output n
/// act columns silu(gate) · up, no residual).
#[derive(Clone, Copy, Debug)]
pub struct IoForm {
    /// Output rows and first column 16-byte aligned (stride n + 8 from column 4), so whole
    /// tiles take the direct write-out; else stride n + 5 from column 3.
    pub aligned: bool,
    /// A residual is added to the output (the engine's out and down products).
    pub residual: bool,
    /// x is f16 (the out product's attention input), else f32.
    pub x_f16: bool,
    /// The gate/up product with SwiGLU: w has 2 n rows, the output silu(gate) · up.
    pub swiglu: bool,
}

/// One product's inputs and output on the device, and on the host for the check:
/// deterministic x (exact in f16) and w (f16), a residual, a strided output written from
/// column `col0` ([`IoForm`]).
pub struct ProductIo {
    shape: [usize; 3],
    form: IoForm,
    stride: usize,
    col0: usize,
    x: Vec<f32>,
    w: Vec<f16>,
    residual: Vec<f32>,
    params: wgpu::Buffer,
    xb: wgpu::Buffer,
    wb: wgpu::Buffer,
    rb: wgpu::Buffer,
    out: wgpu::Buffer,
}

impl ProductIo {
    /// Buffers for `[m, n, k]` (tokens, columns, K) laid out as `form` says.
    pub fn new(ctx: &WgpuContext, [m, n, k]: [usize; 3], form: IoForm) -> ProductIo {
        let (stride, col0) = if form.aligned { (n + 8, 4) } else { (n + 5, 3) };
        let device = ctx.device();
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..m * k).map(|i| val(i, 1)).collect();
        let w_rows = if form.swiglu { 2 * n } else { n };
        let w: Vec<f16> = (0..w_rows * k)
            .map(|i| f16::from_f32(val(i, 2) / 4.0))
            .collect();
        let residual: Vec<f32> = (0..m * stride).map(|i| (i % 5) as f32).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        // f16 values two to a word (and one word more: the shader reads 4-vectors).
        let halves = |v: &[f16]| {
            let mut w: Vec<u32> = bytemuck::cast_slice::<f16, u16>(v)
                .chunks(2)
                .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
                .collect();
            w.push(0);
            w
        };
        let x_words = if form.x_f16 {
            halves(&x.iter().map(|&v| f16::from_f32(v)).collect::<Vec<f16>>())
        } else {
            words(&x)
        };
        let xb = storage_u32_buffer(device, "gemm x", &x_words);
        let wb = storage_u32_buffer(device, "gemm w", &halves(&w));
        let rb = storage_u32_buffer(device, "gemm residual", &words(&residual));
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gemm out"),
            size: (m * stride * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let add = usize::from(form.residual && !form.swiglu);
        let p = [m, k, n, add, 0, stride, col0, 0].map(|v| v as u32);
        let params = storage_uniform(device, &p);
        ProductIo {
            shape: [m, n, k],
            form,
            stride,
            col0,
            x,
            w,
            residual,
            params,
            xb,
            wb,
            rb,
            out,
        }
    }
}

fn storage_uniform(device: &wgpu::Device, words: &[u32]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("gemm params"),
        contents: bytemuck::cast_slice(words),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

fn read_back(ctx: &WgpuContext, src: &wgpu::Buffer, words: usize) -> Result<Vec<f32>, String> {
    let device = ctx.device();
    let bytes = (words * 4) as u64;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gemm readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    ctx.queue().submit([encoder.finish()]);
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| e.to_string())?;
    let data = slice.get_mapped_range().map_err(|e| e.to_string())?;
    let v = bytemuck::cast_slice::<u8, f32>(&data).to_vec();
    drop(data);
    staging.unmap();
    Ok(v)
}
