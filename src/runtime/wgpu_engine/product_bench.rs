//! The prefill product on matrix units alone (each [`CoopGemm`] kernel): a product `out[m × n] = x[m × k] · w[n × k]ᵀ` timed over repeated dispatches,
//! and checked against the CPU (`examples/wgpu_products.rs --gemm`, issue 12 item 2).

use half::f16;

use super::pipelines::{coop_gemm_tile, coop_linear_pipeline};
use super::CoopGemm;
use crate::lower::StorageType;
use crate::runtime::wgpu::{bind_buffers, storage_u32_buffer, WgpuContext};

/// One kernel compiled for f32 x on this adapter, with its tile (columns × tokens).
pub struct CoopProduct {
    pipeline: wgpu::ComputePipeline,
    tile: [u32; 2],
}

impl CoopProduct {
    /// Compiles `kernel` for f32 input. Errors: no cooperative matrices on the adapter,
    /// or the driver's complaint.
    pub fn new(ctx: &WgpuContext, kernel: CoopGemm) -> Result<CoopProduct, String> {
        let coop = ctx
            .coop_matrix()
            .ok_or("no cooperative matrices on this adapter")?;
        let pipeline = coop_linear_pipeline(ctx.device(), coop, kernel, StorageType::F32)?;
        let tile = coop_gemm_tile(kernel);
        Ok(CoopProduct { pipeline, tile })
    }

    /// Runs the product on deterministic inputs (x exact in f16, w f16) with a residual,
    /// writing columns 3.. of an output of stride n + 5, then `reps` more dispatches in one
    /// submission, timed on the host (the device idle before). Returns the seconds of one
    /// dispatch and the largest |error| against the CPU relative to the largest |value|
    /// (0 where `check` is false: large shapes take long on the CPU).
    pub fn run(
        &self,
        ctx: &WgpuContext,
        [m, n, k]: [usize; 3],
        reps: u32,
        check: bool,
    ) -> Result<(f64, f32), String> {
        let device = ctx.device();
        let val = |i: usize, salt: usize| ((i * 37 + salt * 11) % 17) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..m * k).map(|i| val(i, 1)).collect();
        let w: Vec<f16> = (0..n * k).map(|i| f16::from_f32(val(i, 2) / 4.0)).collect();
        let stride = n + 5;
        let col0 = 3;
        let residual: Vec<f32> = (0..m * stride).map(|i| (i % 5) as f32).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let xb = storage_u32_buffer(device, "gemm x", &words(&x));
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.push(0);
        let wb = storage_u32_buffer(device, "gemm w", &w_words);
        let rb = storage_u32_buffer(device, "gemm residual", &words(&residual));
        let out_bytes = (m * stride * 4) as u64;
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gemm out"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let params = storage_uniform(
            device,
            &[
                m as u32,
                k as u32,
                n as u32,
                1,
                0,
                stride as u32,
                col0 as u32,
                0,
            ],
        );
        let bind = bind_buffers(
            device,
            &self.pipeline,
            None,
            &[&params, &xb, &wb, &rb, &out],
        );
        let groups = [
            (n as u32).div_ceil(self.tile[0]),
            (m as u32).div_ceil(self.tile[1]),
        ];
        let submit = |count: u32| {
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
                .map_err(|e| e.to_string())
        };
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        submit(1)?;
        let mut err = 0f32;
        if check {
            let got = read_back(ctx, &out, m * stride)?;
            let mut max_abs = 0f32;
            for t in 0..m {
                for c in 0..n {
                    let want: f32 = (0..k)
                        .map(|i| x[t * k + i] * w[c * k + i].to_f32())
                        .sum::<f32>()
                        + residual[t * stride + col0 + c];
                    let g = got[t * stride + col0 + c];
                    err = err.max((g - want).abs());
                    max_abs = max_abs.max(want.abs());
                }
            }
            err /= max_abs.max(1e-30);
        }
        let start = std::time::Instant::now();
        submit(reps)?;
        let secs = start.elapsed().as_secs_f64() / f64::from(reps.max(1));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(e.to_string());
        }
        Ok((secs, err))
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
