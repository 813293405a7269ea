//! How long `moa-compile` takes on the SmolLM2-135M shape (30 layers, 9 query heads,
//! 3 KV heads): parse + validate + lower + generate WGSL (naga-validated) and CUDA, and
//! write the output folder. Run with `cargo bench --bench compile`.
//! A benchmark, not a test: it reports, it never asserts a time.

use std::path::Path;
use std::time::Instant;

use moa::codegen::{self, emit, Target};
use moa::lower::{lower, StorageType};
use moa::plan::Plan;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan_path = root.join("plans/smollm2-135m-moa-50.toml");
    let out = std::env::temp_dir().join("moa-bench-compile");
    for storage in [StorageType::F16, StorageType::F32] {
        let (mut total, mut wgsl, mut cuda) = (Vec::new(), Vec::new(), Vec::new());
        let mut kernels = 0;
        for _ in 0..10 {
            let _ = std::fs::remove_dir_all(&out);
            let t0 = Instant::now();
            let plan = Plan::load(&plan_path).expect("the default plan is valid");
            let module = lower(&plan, storage);
            let t1 = Instant::now();
            let w = codegen::generate(&module, Target::Wgsl).expect("wgsl generation");
            let t2 = Instant::now();
            let c = codegen::generate(&module, Target::Cuda).expect("cuda generation");
            let t3 = Instant::now();
            let all = vec![(Target::Wgsl, w), (Target::Cuda, c)];
            emit::write_output(&out, &module, &all).expect("write output");
            let t4 = Instant::now();
            kernels = all
                .iter()
                .flat_map(|(_, a)| a)
                .map(|a| a.kernels.len())
                .sum();
            total.push((t4 - t0).as_secs_f64() * 1e3);
            wgsl.push((t2 - t1).as_secs_f64() * 1e3);
            cuda.push((t3 - t2).as_secs_f64() * 1e3);
        }
        println!(
            "compile smollm2-135m ({}) : {kernels} kernels, median of 10: total {:.1} ms (wgsl+naga {:.1} ms, cuda {:.1} ms)",
            storage.name(),
            median(total),
            median(wgsl),
            median(cuda)
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
