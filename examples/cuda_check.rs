//! Runs the generated CUDA kernels against the CPU reference on a GPU machine, in f32,
//! f16 and bf16, and prints one table row per case. Exits non-zero if any case fails.
//!
//! ```sh
//! cargo build --release --example cuda_check
//! cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml \
//!     --upstream moa_alpha_beta.json --layers 32 --heads 32 --kv-heads 8 --head-dim 128
//! ```
//!
//! NVRTC and the driver are loaded at run time (LD_LIBRARY_PATH); `cuda_fp16.h` is looked
//! up in `$MOA_CUDA_INCLUDE`, `$CUDA_PATH/include` and `/usr/local/cuda/include`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use moa::codegen::cuda::{DecodeTuning, PrefillTuning};
use moa::lower::{lower, StorageType};
use moa::plan::{upstream, ModelShape, Plan};
use moa::runtime::cases::{check_output, standard_prefill_layer_cases};
use moa::runtime::cuda::{check_variant, CudaAttention, DEFAULT_ARCH};
use moa::runtime::worklist::{cuda_chunk_policy, ChunkPolicy};

#[derive(Parser)]
#[command(about = "Check the generated CUDA kernels against the CPU reference on a GPU")]
struct Args {
    /// moa plan files (TOML).
    plans: Vec<PathBuf>,
    /// An upstream MoA plan (JSON); needs the shape flags below.
    #[arg(long)]
    upstream: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    layers: u32,
    #[arg(long, default_value_t = 32)]
    heads: u32,
    #[arg(long, default_value_t = 8)]
    kv_heads: u32,
    #[arg(long, default_value_t = 128)]
    head_dim: u32,
    /// Random-case seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// GPU ordinal.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Print every case, not only the per-plan summary and failures.
    #[arg(long)]
    verbose: bool,
    /// Decode kernel, WARPSxSTAGES and option letters from w, e, m, s, t
    /// (`codegen::cuda::DecodeTuning`; default: the compiler's for each plan's GQA group,
    /// `DecodeTuning::default_for`).
    #[arg(long)]
    variant: Option<String>,
    /// Prefill kernel shape, WGxBNxBLOCKS[o][s][p][w][g][h][v][u][r][q][e] (default: the compiler's; see
    /// `codegen::cuda::PrefillTuning`).
    #[arg(long)]
    prefill_variant: Option<String>,
    /// Decode work-list chunk policy of the runtime-chunk cases
    /// (`runtime::worklist::ChunkPolicy`; default: the CUDA runtime's for the plan's GQA group).
    #[arg(long)]
    chunk_policy: Option<String>,
    /// Storage types to check.
    #[arg(long, value_delimiter = ',', default_value = "f32,f16,bf16")]
    dtypes: Vec<String>,
    /// Also run every layer's standard prefill cases in bf16 with V of KV head h scaled
    /// by 2^e, e = this list's entry h mod its length (e.g. `16,0,-13,0`): powers of two
    /// are exact in bf16, so the expected output scales alike and the error is compared
    /// in the unscaled units. Heads whose largest |v| leaves [2^-10, 2^15) take the `u`
    /// pre-pass's second conversion (`{prefill}_vfix`), which inputs in [-1, 1) never do.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    v_exponents: Vec<i32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut plans: Vec<(String, Plan)> = Vec::new();
    for p in &args.plans {
        match Plan::load(p) {
            Ok(plan) => plans.push((p.display().to_string(), plan)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(path) = &args.upstream {
        let shape = ModelShape {
            name: None,
            layers: args.layers,
            q_heads: args.heads,
            kv_heads: args.kv_heads,
            head_dim: args.head_dim,
            max_context_tokens: 262_144,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        match upstream::import(&text, &path.display().to_string(), shape) {
            Ok(plan) => plans.push((path.display().to_string(), plan)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if plans.is_empty() {
        eprintln!("error: no plan given");
        return ExitCode::from(2);
    }

    let mut storages = Vec::new();
    for d in &args.dtypes {
        storages.push(match d.as_str() {
            "f32" => StorageType::F32,
            "f16" => StorageType::F16,
            "bf16" => StorageType::Bf16,
            other => {
                eprintln!("error: --dtypes `{other}`: expected f32, f16 or bf16");
                return ExitCode::from(2);
            }
        });
    }
    // None: the compiler's default for each module's GQA group (`DecodeTuning::default_for`).
    let tuning = match args.variant.as_deref().map(str::parse::<DecodeTuning>) {
        None => None,
        Some(Ok(t)) if t.is_probe() => {
            eprintln!(
                "error: --variant {t}: `z`, `y` and `x` are benchmark probes, whose output is undefined"
            );
            return ExitCode::from(2);
        }
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --variant: {e}");
            return ExitCode::from(2);
        }
    };
    let prefill = match args
        .prefill_variant
        .as_deref()
        .map(str::parse::<PrefillTuning>)
    {
        // The compiler's default for each module's shape (below).
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --prefill-variant: {e}");
            return ExitCode::from(2);
        }
    };
    let chunk_policy = match args.chunk_policy.as_deref().map(str::parse::<ChunkPolicy>) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("error: --chunk-policy: {e}");
            return ExitCode::from(2);
        }
    };
    let mut summary = Vec::new();
    let mut all_passed = true;
    for (name, plan) in &plans {
        for &storage in &storages {
            let module = lower(plan, storage);
            let started = Instant::now();
            let report = match check_variant(
                &module,
                args.seed,
                args.device,
                DEFAULT_ARCH,
                tuning.unwrap_or(DecodeTuning::default_for(module.shape.group_size())),
                prefill.unwrap_or(PrefillTuning::default_for(
                    module.storage,
                    module.shape.head_dim,
                )),
                chunk_policy.unwrap_or(cuda_chunk_policy(module.shape.group_size())),
            ) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {name} {}: {e}", storage.name());
                    all_passed = false;
                    summary.push(format!(
                        "| {name} | {} | error: {e} | | | |",
                        storage.name()
                    ));
                    continue;
                }
            };
            let secs = started.elapsed().as_secs_f64();
            for c in &report.cases {
                if args.verbose || !c.passed {
                    println!(
                        "{:<70} {:>10.3e} {:>8.0e} {}",
                        c.name,
                        c.max_error,
                        c.tolerance,
                        if c.passed { "pass" } else { "FAIL" }
                    );
                }
                if let Some(d) = &c.detail {
                    println!("    {d}");
                }
            }
            let failed = report.failures().count();
            all_passed &= report.passed();
            summary.push(format!(
                "| {name} | {} | {} | {:.3e} | {:.0e} | {} ({secs:.1} s) |",
                storage.name(),
                report.cases.len(),
                report.max_error(),
                tolerance_of(storage),
                if failed == 0 {
                    "pass".to_string()
                } else {
                    format!("FAIL {failed}")
                },
            ));
        }
    }
    if !args.v_exponents.is_empty() {
        for (name, plan) in &plans {
            let module = lower(plan, StorageType::Bf16);
            let prefill = prefill.unwrap_or(PrefillTuning::default_for(
                module.storage,
                module.shape.head_dim,
            ));
            let label = format!("bf16, V x 2^{:?}", args.v_exponents);
            let decode = tuning.unwrap_or(DecodeTuning::default_for(module.shape.group_size()));
            match check_v_scaled(&module, &args, decode, prefill) {
                Ok((cases, worst, failed)) => {
                    all_passed &= failed == 0;
                    summary.push(format!(
                        "| {name} | {label} | {cases} | {worst:.3e} | {:.0e} | {} |",
                        tolerance_of(StorageType::Bf16),
                        if failed == 0 {
                            "pass".to_string()
                        } else {
                            format!("FAIL {failed}")
                        }
                    ));
                }
                Err(e) => {
                    eprintln!("error: {name} {label}: {e}");
                    all_passed = false;
                    summary.push(format!("| {name} | {label} | error: {e} | | | |"));
                }
            }
        }
    }
    println!();
    println!("| plan | storage | cases | max abs error | tolerance | result |");
    println!("|---|---|---|---|---|---|");
    for row in &summary {
        println!("{row}");
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The standard prefill cases of every layer with V of KV head h scaled by
/// 2^`v_exponents[h % len]` (`--v-exponents`); the GPU output of each query head is scaled
/// back by its KV head's factor before the comparison with the unscaled reference.
/// Returns the number of cases, the largest error and the number of failed cases.
fn check_v_scaled(
    module: &moa::lower::KernelModule,
    args: &Args,
    tuning: DecodeTuning,
    prefill: PrefillTuning,
) -> Result<(usize, f32, usize), String> {
    let gpu = CudaAttention::new_variant(module, args.device, DEFAULT_ARCH, tuning, prefill)
        .map_err(|e| e.to_string())?;
    let (hq, hkv, d) = (
        module.shape.q_heads as usize,
        module.shape.kv_heads as usize,
        module.shape.head_dim as usize,
    );
    let group = hq / hkv;
    let factor = |kv: usize| 2f32.powi(args.v_exponents[kv % args.v_exponents.len()]);
    let tol = tolerance_of(module.storage);
    let (mut cases, mut worst, mut failed) = (0, 0f32, 0);
    for layer in 0..module.layers.len() {
        for mut c in standard_prefill_layer_cases(module, layer, args.seed) {
            for (i, x) in c.v.iter_mut().enumerate() {
                *x *= factor((i / d) % hkv);
            }
            let mut out = gpu.run_prefill_case(&c).map_err(|e| e.to_string())?;
            for (i, x) in out.iter_mut().enumerate() {
                *x /= factor(((i / d) % hq) / group);
            }
            let name = format!("{} (V scaled)", c.name);
            let verdict = check_output(&name, hq, d, &out, &c.expected, tol);
            let (err, _) = moa::runtime::cases::max_abs_error(&out, &c.expected);
            worst = worst.max(err);
            cases += 1;
            if let Err(detail) = verdict {
                failed += 1;
                println!("{detail}");
            }
        }
    }
    Ok((cases, worst, failed))
}

fn tolerance_of(storage: StorageType) -> f32 {
    moa::runtime::cases::tolerance(storage)
}
