//! `moa-compile plan.toml -o out/`: lowers a MoA plan into per-layer fused attention
//! kernels (WGSL and/or CUDA C++), a manifest and a Rust file that embeds them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use moa::codegen::{self, Target};
use moa::lower::StorageType;
use moa::plan::Plan;

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Wgsl,
    Cuda,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F32,
    F16,
    /// CUDA only (WGSL has no bf16).
    Bf16,
}

/// Compile a MoA plan into specialised attention kernels.
#[derive(Parser)]
#[command(name = "moa-compile", version)]
struct Args {
    /// The plan (TOML; see docs/DESIGN.md).
    plan: PathBuf,
    /// Output folder (created if missing; unchanged files are not rewritten). Its `wgsl/`
    /// and `cuda/` folders belong to moa-compile: kernel files there that this plan does
    /// not produce (e.g. from a deeper model's plan) are removed.
    #[arg(short, long, default_value = "out")]
    output: PathBuf,
    /// Which back ends to generate.
    #[arg(long, value_enum, default_value = "all")]
    target: TargetArg,
    /// Element type of Q, K, V and the cache in device memory (arithmetic is f32).
    #[arg(long, value_enum, default_value = "f16")]
    dtype: DtypeArg,
}

fn run(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let plan = Plan::load(&args.plan)?;
    plan.check_prompt_room(&args.plan.display().to_string())?;
    let storage = match args.dtype {
        DtypeArg::F32 => StorageType::F32,
        DtypeArg::F16 => StorageType::F16,
        DtypeArg::Bf16 => StorageType::Bf16,
    };
    let targets: &[Target] = match args.target {
        TargetArg::Wgsl => &[Target::Wgsl],
        TargetArg::Cuda => &[Target::Cuda],
        TargetArg::All => &[Target::Wgsl, Target::Cuda],
    };
    let names = targets
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(" + ");
    let compiled = codegen::compile(&plan, targets, storage)
        .with_context(|| format!("generating {names} kernels for `{}`", args.plan.display()))?;
    let before = kernel_files(&args.output);
    let changed = compiled.write(&args.output)?;
    // `write` counts removals as changes; say them apart, so that emptying `wgsl/` for a
    // `--target cuda` compile into the same folder is not reported as files written.
    let removed = before.iter().filter(|p| !p.exists()).count();
    let written = changed.saturating_sub(removed);
    let kernels = compiled.kernels().count();
    let removed_note = if removed > 0 {
        format!(
            "; {removed} kernel files this compile does not produce removed from {}",
            args.output.display()
        )
    } else {
        String::new()
    };
    eprintln!(
        "moa-compile: {} layers -> {kernels} kernels ({}) in {:.1} ms; {written} files written to {}{removed_note}",
        plan.model().layers,
        names,
        start.elapsed().as_secs_f64() * 1e3,
        args.output.display()
    );
    Ok(())
}

/// The files in `dir/wgsl` and `dir/cuda` (the folders moa-compile owns), if any.
fn kernel_files(dir: &Path) -> Vec<PathBuf> {
    ["wgsl", "cuda"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("moa-compile failed");
            for cause in err.chain() {
                eprintln!("  Cause: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
