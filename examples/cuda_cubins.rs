//! Precompiles the CUDA kernels of plans to sm_90 cubins (NVRTC → PTX → ptxas) into a
//! folder that `MOA_CUBIN_DIR` points the CUDA executor at, so a GPU machine with a short
//! lease loads them instead of spending minutes in NVRTC. Needs `MOA_PTXAS`
//! (`eval "$(scripts/cuda-deps.sh)"`).
//!
//! ```sh
//! cuda_cubins --out cubins --dtypes f16,bf16 --variants 4x3em plans/fixture-gqa.toml \
//!     --upstream llama-3-8b:8:PATH/moa_alpha_beta.json --dense
//! ```

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use moa::codegen::cuda::{generate_variant, DecodeTuning, PrefillTuning};
use moa::lower::{lower, StorageType};
use moa::plan::{upstream, ModelShape, Plan};
use moa::runtime::cuda::{compile_all, cubin_key, fp16_include_dir, DEFAULT_ARCH};

#[derive(Parser)]
#[command(about = "Precompile generated CUDA kernels to cubins for MOA_CUBIN_DIR")]
struct Args {
    /// moa plan files (TOML).
    plans: Vec<PathBuf>,
    /// LABEL:KV_HEADS:PATH of an upstream plan (32 layers, 32 query heads, head_dim 128).
    #[arg(long)]
    upstream: Vec<String>,
    /// Also the one-layer dense plan of each upstream shape (the benchmark's baseline).
    #[arg(long)]
    dense: bool,
    /// Also the dense plan of each upstream shape with all its layers: the dense run of
    /// `moa bench --like llama-3-8b [--kv-heads N]` (`wgpu_engine::dense_plan`), whose
    /// kernels differ per layer only by name.
    #[arg(long)]
    dense_full: bool,
    /// Also the CUDA engine's small ops (`runtime::cuda::ops::artifact`) of each --dtypes,
    /// which every engine `moa bench` builds loads (NVRTC otherwise, each time).
    #[arg(long)]
    ops: bool,
    #[arg(long, value_delimiter = ',', default_value = "f16,bf16")]
    dtypes: Vec<String>,
    /// Decode kernels, WARPSxSTAGES and option letters from w, e, m, z
    /// (`codegen::cuda::DecodeTuning`). Default: the compiler's.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Prefill kernel shapes, WGxBNxBLOCKS[o][s][p][w][g][h][v][u][r][q][e] (`codegen::cuda::PrefillTuning`); each is
    /// compiled with every decode shape. Default: the compiler's for each plan's head_dim.
    #[arg(long, value_delimiter = ',')]
    prefill_variants: Vec<String>,
    /// Only these layers (default: all), e.g. the layers a benchmark sweep times
    /// (`--layers-only` is the same option, the name the prefill scripts use).
    #[arg(long, alias = "layers-only", value_delimiter = ',')]
    layers: Vec<u32>,
    #[arg(long)]
    out: PathBuf,
    /// Folders of earlier cubins (e.g. an earlier carry folder's): a kernel whose cubin is
    /// there (same source, same key) is copied instead of compiled.
    #[arg(long)]
    from: Vec<PathBuf>,
    /// Line tables in the cubins (NVRTC `--generate-line-info`, ptxas `-lineinfo`: the
    /// machine code is the same, only a table mapping each instruction to a line of the
    /// generated source is added), and each kernel's source beside its cubin as
    /// `<key>.cu`, so that Nsight Compute's source page (or `nvdisasm --print-line-info`)
    /// names the template's line of every SASS instruction. Turns `--from` off (a plain
    /// cubin has the same key).
    #[arg(long)]
    lineinfo: bool,
    /// A command that edits each kernel's source (source on stdin, the edited source on
    /// stdout), e.g. `python3 benches/prefill/s23/trace_patch.py`, which adds a trace. The
    /// edited source's cubin is written under the ORIGINAL source's key, so a benchmark
    /// that generates the plain source loads the edited kernel: an instrument for one
    /// measurement, never a folder to time or check defaults with. Turns `--from` off.
    #[arg(long)]
    edit: Option<String>,
}

fn dense(mut shape: ModelShape) -> Result<Plan, String> {
    shape.layers = 1;
    Plan::dense(shape).map_err(|e| e.to_string())
}

fn run(args: &Args) -> Result<usize, String> {
    let ptxas = std::env::var_os("MOA_PTXAS")
        .ok_or("MOA_PTXAS is not set (eval \"$(scripts/cuda-deps.sh)\")")?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut plans = Vec::new();
    for p in &args.plans {
        plans.push(Plan::load(p).map_err(|e| e.to_string())?);
    }
    for spec in &args.upstream {
        let mut parts = spec.splitn(3, ':');
        let (Some(_), Some(kv), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("--upstream `{spec}`: expected LABEL:KV_HEADS:PATH"));
        };
        let shape = ModelShape {
            name: None,
            layers: 32,
            q_heads: 32,
            kv_heads: kv
                .parse()
                .map_err(|_| format!("--upstream `{spec}`: bad KV_HEADS"))?,
            head_dim: 128,
            max_context_tokens: 262_144,
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        plans.push(upstream::import(&text, path, shape.clone()).map_err(|e| e.to_string())?);
        if args.dense_full {
            plans.push(Plan::dense(shape.clone()).map_err(|e| e.to_string())?);
        }
        if args.dense {
            plans.push(dense(shape)?);
        }
    }
    let mut variants = Vec::new();
    for v in &args.variants {
        variants.push(v.parse::<DecodeTuning>()?);
    }
    // Empty: the compiler's default for each module's GQA group (`DecodeTuning::default_for`).
    let mut prefills = Vec::new();
    for p in &args.prefill_variants {
        prefills.push(p.parse::<PrefillTuning>()?);
    }
    // Empty: the compiler's default for each module's shape (`PrefillTuning::default_for`).
    let mut written = 0;
    for plan in &plans {
        for d in &args.dtypes {
            let storage = match d.as_str() {
                "f32" => StorageType::F32,
                "f16" => StorageType::F16,
                "bf16" => StorageType::Bf16,
                other => return Err(format!("--dtypes `{other}`")),
            };
            let module = lower(plan, storage);
            let shape_default = [PrefillTuning::default_for(storage, module.shape.head_dim)];
            let prefills = if prefills.is_empty() {
                &shape_default[..]
            } else {
                &prefills[..]
            };
            let group_default = [DecodeTuning::default_for(module.shape.group_size())];
            let variants = if variants.is_empty() {
                &group_default[..]
            } else {
                &variants[..]
            };
            for (&tuning, &prefill) in variants
                .iter()
                .flat_map(|v| prefills.iter().map(move |p| (v, p)))
            {
                let arts = generate_variant(&module, tuning, prefill).map_err(|e| e.to_string())?;
                let todo: Vec<_> = arts
                    .into_iter()
                    .filter(|a| {
                        args.layers.is_empty()
                            || a.kernels
                                .first()
                                .and_then(|k| k.layer)
                                .is_some_and(|l| args.layers.contains(&l))
                    })
                    .filter(|a| {
                        let name = format!("{}.cubin", cubin_key(&a.source, DEFAULT_ARCH));
                        let dst = args.out.join(&name);
                        if dst.exists() {
                            return false;
                        }
                        // An earlier folder's copy, if any (copied: not counted as written).
                        args.lineinfo
                            || args.edit.is_some()
                            || !args
                                .from
                                .iter()
                                .any(|d| std::fs::copy(d.join(&name), &dst).is_ok())
                    })
                    .collect();
                // Each artifact with its source as compiled (edited, if asked), keyed by the
                // generated source.
                let edited: Vec<_> = match &args.edit {
                    None => todo.clone(),
                    Some(cmd) => todo
                        .iter()
                        .map(|a| edit_source(cmd, a))
                        .collect::<Result<_, _>>()?,
                };
                let ptxs = if args.lineinfo {
                    edited
                        .iter()
                        .map(compile_with_lines)
                        .collect::<Result<Vec<_>, _>>()?
                } else {
                    compile_all(&edited, DEFAULT_ARCH).map_err(|e| e.to_string())?
                };
                for ((a, e), ptx) in todo.iter().zip(&edited).zip(ptxs) {
                    let key = cubin_key(&a.source, DEFAULT_ARCH);
                    if args.lineinfo {
                        let cu = args.out.join(format!("{key}.cu"));
                        std::fs::write(&cu, &e.source)
                            .map_err(|e| format!("{}: {e}", cu.display()))?;
                    }
                    ptx_to_cubin(&ptxas, &args.out, &key, &ptx, &a.path, args.lineinfo)?;
                    written += 1;
                }
            }
        }
    }
    if args.ops {
        for d in &args.dtypes {
            let storage = match d.as_str() {
                "f32" => StorageType::F32,
                "f16" => StorageType::F16,
                "bf16" => StorageType::Bf16,
                other => return Err(format!("--dtypes `{other}`")),
            };
            let a = moa::runtime::cuda::ops::artifact(storage);
            let key = cubin_key(&a.source, DEFAULT_ARCH);
            if args.out.join(format!("{key}.cubin")).exists() {
                continue;
            }
            let ptx = compile_all(std::slice::from_ref(&a), DEFAULT_ARCH)
                .map_err(|e| e.to_string())?
                .remove(0);
            ptx_to_cubin(&ptxas, &args.out, &key, &ptx, &a.path, false)?;
            written += 1;
        }
    }
    Ok(written)
}

/// `a` with its source replaced by what `cmd` (run by `sh -c`, the source on its stdin)
/// prints. Errors: the command failing or printing no source.
fn edit_source(cmd: &str, a: &moa::codegen::Artifact) -> Result<moa::codegen::Artifact, String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("--edit `{cmd}`: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("--edit: no stdin")?;
    let source = a.source.clone();
    let writer = std::thread::spawn(move || stdin.write_all(source.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("--edit `{cmd}`: {e}"))?;
    writer
        .join()
        .map_err(|_| "--edit: writer panicked".to_string())?
        .map_err(|e| format!("--edit `{cmd}`: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!("--edit `{cmd}` failed on {}", a.path));
    }
    let mut edited = a.clone();
    edited.source = String::from_utf8(out.stdout).map_err(|e| format!("--edit: {e}"))?;
    Ok(edited)
}

/// PTX of one artifact with line directives (`.loc`) for the generated source: the options
/// of `runtime::cuda`'s compile plus `--generate-line-info`, which does not change the code.
fn compile_with_lines(a: &moa::codegen::Artifact) -> Result<String, String> {
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(DEFAULT_ARCH),
        include_paths: vec![fp16_include_dir()
            .map_err(|e| e.to_string())?
            .display()
            .to_string()],
        name: Some(a.path.rsplit('/').next().unwrap_or(&a.path).to_string()),
        options: vec!["--std=c++17".into(), "--generate-line-info".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(&a.source, opts)
        .map(|p| p.to_src())
        .map_err(|e| format!("{}: {e:?}", a.path))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(n) => {
            println!("{n} cubins written to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `ptx` to `<out>/<key>.ptx`, assembles it with `ptxas` for [`DEFAULT_ARCH`] into
/// `<out>/<key>.cubin` (with line info if asked) and removes the PTX; the error names the
/// artifact's `path` and carries ptxas's own message.
fn ptx_to_cubin(
    ptxas: &std::ffi::OsStr,
    out_dir: &std::path::Path,
    key: &str,
    ptx: &str,
    path: &str,
    lineinfo: bool,
) -> Result<(), String> {
    let src = out_dir.join(format!("{key}.ptx"));
    std::fs::write(&src, ptx).map_err(|e| format!("{}: {e}", src.display()))?;
    let out = Command::new(ptxas)
        .arg(format!("-arch={DEFAULT_ARCH}"))
        .args(lineinfo.then_some("-lineinfo"))
        .arg(&src)
        .arg("-o")
        .arg(out_dir.join(format!("{key}.cubin")))
        .output()
        .map_err(|e| format!("cannot run ptxas: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ptxas rejected {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let _ = std::fs::remove_file(&src);
    Ok(())
}
