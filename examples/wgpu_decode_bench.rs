//! Times one layer's WGSL decode step (decode + merge dispatches, one submit, waited for)
//! through `runtime::wgpu::WgpuAttention` on whatever adapter wgpu picks (lavapipe here:
//! a CPU, so the numbers compare kernel versions, not GPUs). Inputs are uploaded once;
//! each timed iteration records, submits and waits for one step. Prints the median.
//!
//! ```sh
//! cargo run --release --example wgpu_decode_bench -- plans/fixture-gqa.toml 2 1024 100,300,600,1000
//! ```
//!
//! Arguments: plan, layer, N, comma-separated row positions; optional iterations (50).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use moa::codegen::{self, Target};
use moa::lower::{lower, StorageType};
use moa::plan::Plan;
use moa::runtime::cases::decode_case;
use moa::runtime::wgpu::{tensor_bytes, WgpuAttention, WgpuContext};
use wgpu::util::DeviceExt;

fn main() -> ExitCode {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu_decode_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: wgpu_decode_bench PLAN LAYER N POS[,POS...] [ITERS]";
    let [plan, layer, n, pos, rest @ ..] = args.as_slice() else {
        return Err(usage.into());
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| format!("`{s}`: {usage}"));
    let layer = num(layer)? as usize;
    let n = num(n)?;
    let pos: Vec<u32> = pos.split(',').map(num).collect::<Result<_, _>>()?;
    let iters = rest
        .first()
        .map(|s| num(s))
        .transpose()?
        .unwrap_or(50)
        .max(1);
    let plan = Plan::load(Path::new(plan)).map_err(|e| e.to_string())?;
    let module = lower(&plan, StorageType::F32);
    if layer >= module.layers.len() {
        return Err(format!(
            "layer {layer} is out of range: the plan has {} layers",
            module.layers.len()
        ));
    }
    if pos.iter().any(|&t| t >= n) {
        return Err(format!("row positions {pos:?} must be below N = {n}"));
    }
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    let artifacts = codegen::generate(&module, Target::Wgsl).map_err(|e| e.to_string())?;
    let exec = WgpuAttention::new(&ctx, &module, &artifacts).map_err(|e| e.to_string())?;
    let case = decode_case(&module, layer, &pos, n, 7);
    let dev = ctx.device();
    let tensor = |label: &str, data: &[f32]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &tensor_bytes(data, StorageType::F32),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let words = |label: &str, data: &[u32]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let s = &module.shape;
    let o_len = pos.len() * (s.q_heads * s.head_dim) as usize;
    let work = exec.decode_work(&case.layout, &pos);
    let n_items = work.n_items();
    let bufs = [
        words("row_pos", &pos),
        tensor("q", &case.q),
        tensor("k_cache", &case.k_cache),
        tensor("v_cache", &case.v_cache),
        words("work", &work.flat()),
        tensor("partials", &vec![0.0; exec.partials_len(n_items)]),
        tensor("o", &vec![0.0; o_len]),
    ];
    let refs: [&wgpu::Buffer; 7] = std::array::from_fn(|i| &bufs[i]);
    let mut times = Vec::with_capacity(iters as usize);
    for i in 0..iters + 3 {
        let start = Instant::now();
        let mut encoder = dev.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            exec.encode_decode(&mut pass, layer, n, pos.len() as u32, n_items, refs)
                .map_err(|e| e.to_string())?;
        }
        ctx.queue().submit([encoder.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        if i >= 3 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "adapter {:?}: layer {layer} N={n} rows at {pos:?}: {n_items} workgroups, median {:.3} ms over {iters} steps (min {:.3})",
        ctx.adapter_name(),
        times[times.len() / 2],
        times[0],
    );
    Ok(())
}
