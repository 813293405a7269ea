//! `moa generate`: chat with a model on the GPU through the plan's compiled kernels.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use moa::model::{self, ChatMessage, ChatTemplate, ModelTokenizer};
use moa::plan::{upstream, Plan, SpanMode};
use moa::runtime::engine::{Engine, PrefillProgress, Request, Sampling};
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::{WgpuEngine, WgpuEngineOptions};

use crate::args::{GenerateArgs, PromptSource};

/// The default plan, embedded so the binary runs without a source tree.
const DEFAULT_PLAN: &str = include_str!("../../../../plans/smollm2-135m-moa-50.toml");
const DEFAULT_PLAN_NAME: &str = "plans/smollm2-135m-moa-50.toml (built in)";

/// Prompts at least this long (all rows) show prefill progress on a terminal.
const PROGRESS_MIN_TOKENS: usize = 256;

/// The prefill; on a terminal and for a long prompt it is submitted layer by layer and a
/// status line (layers done, tokens/s, ETA) is redrawn on stderr, at most 4 times a second
/// and only once a second has passed, then erased. Elsewhere (pipes, CI, benchmarks) it is
/// one submission, as before.
fn prefill(
    gpu: &dyn Engine,
    req: &mut Request,
    prompts: &[Vec<u32>],
    sampling: Sampling,
) -> anyhow::Result<Vec<u32>> {
    let tokens: usize = prompts.iter().map(Vec::len).sum();
    if tokens < PROGRESS_MIN_TOKENS || !std::io::stderr().is_terminal() {
        return Ok(gpu.prefill_tokens(req, prompts, sampling)?);
    }
    let mut last_line: Option<Instant> = None;
    let mut report = |p: &PrefillProgress| {
        let due = last_line.is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
        if p.elapsed >= Duration::from_secs(1) && p.layers_done < p.layers && due {
            eprint!("\r\x1b[K{}", p.line());
            let _ = std::io::stderr().flush();
            last_line = Some(Instant::now());
        }
    };
    let next = gpu.prefill_tokens_with_progress(req, prompts, sampling, &mut report);
    if last_line.is_some() {
        eprint!("\r\x1b[K");
    }
    Ok(next?)
}

/// `--max-new-tokens` must leave room for at least one new token and stay inside the
/// model's context: allowed `1..=context − longest prompt`.
fn check_max_new(max_new: usize, longest: usize, context: usize) -> anyhow::Result<()> {
    let Some(room) = context.checked_sub(longest).filter(|&r| r >= 1) else {
        bail!(
            "the longest prompt has {longest} tokens, which leaves no room for a new token in the model's context of {context} tokens"
        );
    };
    if max_new == 0 || max_new > room {
        let default = if max_new == crate::args::GENERATE_MAX_NEW_TOKENS {
            " (the default when the flag is not given)"
        } else {
            ""
        };
        bail!(
            "--max-new-tokens {max_new}{default} is out of range: allowed 1..={room} (the model's context of {context} tokens minus the longest prompt's {longest})"
        );
    }
    Ok(())
}

/// How a row's answer ended, for `--print-ids` (after `ids[b] `): the end-of-sequence
/// token `eos` (not in the generated list: it has no text), or `--max-new-tokens`
/// (`ignore_eos`: end-of-sequence tokens went on into the list).
fn end_of_row(eos: Option<u32>, generated: usize, max_new: usize, ignore_eos: bool) -> String {
    match eos {
        Some(id) => format!(
            "eos {id} (the end-of-sequence token, which ended the answer after {generated} tokens; not in the list above, as it is not text)"
        ),
        None if ignore_eos => format!(
            "stopped at --max-new-tokens {max_new} (--ignore-eos: end-of-sequence tokens stay in the list)"
        ),
        None => format!("stopped at --max-new-tokens {max_new} (no end-of-sequence token)"),
    }
}

/// The storage type of the run's engine: the wgpu engine's for its adapter, or on CUDA
/// (no wgpu adapter) bf16, f32 with `--f32`.
fn run_storage(f32: bool, wgpu_ctx: Option<&WgpuContext>) -> moa::lower::StorageType {
    match wgpu_ctx {
        Some(c) => moa::runtime::wgpu_engine::storage_for(c, f32),
        None if f32 => moa::lower::StorageType::F32,
        None => moa::lower::StorageType::Bf16,
    }
}

/// Refuses a run whose host memory ([`HostMemory`]: the f32 weights, and on a CPU adapter
/// the GPU's weights, KV cache and activations of this request) exceeds what the machine
/// has available, before the weights load (a GGUF file on wgpu counts only what its
/// streamed upload holds at once: `HostMemory::streamed`). `Model::load` checks the weights alone: a
/// 1B-shape model on lavapipe peaked at 8.15 GB against its 4.9 GB of f32 weights
/// (benches/RESULTS.md, session 18), and a long --max-new-tokens adds a KV cache the
/// weights check never saw; past the memory the kernel's OOM killer ended the run with
/// no message. A GGUF file's layer matrices kept quantized on a CPU adapter
/// (`MOA_WGPU_QUANT_WEIGHTS`, on by default there since session 60) count at their kept size
/// ([`moa::model::WeightStream::kept_layer_bytes`], from the file's header), not the
/// storage type's (round 44: an 8B Q4_K_M file would have been refused for its 16 GB f16
/// copy where ~6 GB is kept).
fn check_host_memory(
    args: &GenerateArgs,
    config: &moa::model::LlamaConfig,
    plan: Option<&Plan>,
    prompts: &[Vec<u32>],
    wgpu_ctx: Option<&WgpuContext>,
    model_path: &std::path::Path,
) -> anyhow::Result<()> {
    let storage = run_storage(args.f32, wgpu_ctx);
    let cpu = wgpu_ctx.is_some_and(|c| c.adapter_info().device_type == wgpu::DeviceType::Cpu);
    let dense;
    let plan = match plan {
        Some(p) => p,
        None => {
            dense = Plan::dense(config.model_shape())?;
            &dense
        }
    };
    let mut need = moa::runtime::memory::HostMemory::of_run(
        config,
        plan,
        storage,
        prompts.len(),
        prompts.iter().map(Vec::len).max().unwrap_or(0),
        prompts.iter().map(Vec::len).sum(),
        args.max_new_tokens,
        cpu,
    );
    // Both engines read the weights one tensor at a time (`moa::model::WeightStream`).
    need = need.streamed(config);
    // On a CPU adapter the file's quantization is kept as the engine will choose (`auto`:
    // on where the texture form runs every product, `WgpuEngineOptions::product_paths`).
    // Only a GGUF file (a file, not a folder) has blocks to keep; its header is read here
    // and again by the upload's stream (a folder's check must not need its weights: a
    // folder without them is refused by this check first, tests/load_memory.rs).
    let keeps = |ctx: &WgpuContext| -> anyhow::Result<bool> {
        Ok(WgpuEngineOptions::from_env()?
            .product_paths(ctx, storage)
            .keep_quantization)
    };
    let quant = match wgpu_ctx {
        Some(ctx) => keeps(ctx)? && model_path.is_file(),
        None => false,
    };
    if let (Some(device), true) = (need.on_cpu_adapter.as_mut(), quant) {
        let (weights, bytes) = moa::model::WeightStream::open(model_path)?
            .1
            .kept_layer_bytes();
        let storage_bytes = weights.saturating_mul(storage.bytes() as u64);
        device.weights = device.weights.saturating_sub(storage_bytes) + bytes;
    }
    let adapter = wgpu_ctx
        .map(|c| c.adapter_name().to_string())
        .unwrap_or_default();
    need.check(
        &model_path.display().to_string(),
        &adapter,
        moa::model::random::available_memory(),
    )
    .map_err(anyhow::Error::msg)
}

/// Refuses, before the weights load, a prompt longer than the wgpu engine's prefill holds
/// a row under the adapter's storage binding limit ([`super::prefill_row_limit`]: its K
/// and V whole, since session 61; before, its activations whole): an 11000-token prompt
/// of the Llama-3.2-3B shape on lavapipe was refused after the load (minutes for the
/// whole model) as "tensor `prefill activations of row 0 (11000 tokens; at most 10922
/// fit)` needs 135168000 bytes", with no way out (round 45). That prompt now runs.
fn check_prefill_fits(
    ctx: &WgpuContext,
    config: &moa::model::LlamaConfig,
    storage: moa::lower::StorageType,
    prompts: &[Vec<u32>],
) -> anyhow::Result<()> {
    let limit = super::prefill_row_limit(ctx, config, storage)?;
    if let Some((row, p)) = prompts
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() > limit.tokens)
    {
        bail!(
            "the prompt of row {row} (--prompt/--prompt-file in the order given) is {} tokens, and {}; give a prompt of at most {} tokens, or run on an adapter with larger bindings",
            p.len(),
            limit.why(ctx, config, storage),
            limit.tokens
        );
    }
    Ok(())
}

/// Refuses, before the weights load, a request whose one row's KV cache of a layer is past
/// the adapter's storage binding limit: the wgpu engine splits a layer's cache by rows,
/// never a row (`runtime::wgpu_engine::cache`), and refused such a row at `start`, after
/// the load: `--max-new-tokens 70000` of the Llama-3.2-3B shape on lavapipe (dense: 8 KV
/// heads of 128 in f16, 2 KB a token of one layer's K) took 12 s and 2.8 GB for two layers
/// and said "tensor `k_cache.0 (560016 slots × 128 per row) (one row's cache; a shorter
/// context fits)`" (round 45). Names the largest N that fits (spans grow with N).
fn check_cache_row_fits(
    ctx: &WgpuContext,
    config: &moa::model::LlamaConfig,
    storage: moa::lower::StorageType,
    plan: Option<&Plan>,
    prompts: &[Vec<u32>],
    max_new: usize,
) -> anyhow::Result<()> {
    let what = if plan.is_some() {
        "this plan"
    } else {
        "dense attention"
    };
    let dense;
    let plan = match plan {
        Some(p) => p,
        None => {
            dense = Plan::dense(config.model_shape())?;
            &dense
        }
    };
    let binding = moa::runtime::wgpu_engine::WgpuEngineOptions::from_env()?
        .binding_limit(ctx.device().limits().max_storage_buffer_binding_size);
    let module = moa::lower::lower(plan, storage);
    let row_bytes = |n: u32| -> (u64, usize, u32) {
        module
            .cache_layouts(n)
            .iter()
            .enumerate()
            .map(|(l, c)| {
                let bytes = u64::from(c.row_slots) * (config.head_dim * storage.bytes()) as u64;
                (bytes, l, c.row_slots)
            })
            // The largest row, the first layer of that size (as the engine names it).
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .unwrap_or((0, 0, 0))
    };
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let Ok(n) = u32::try_from(longest + max_new) else {
        return Ok(());
    };
    let (bytes, layer, slots) = row_bytes(n);
    if bytes <= binding {
        return Ok(());
    }
    // The largest N whose rows fit (a row's slots never shrink as N grows).
    let (mut lo, mut hi) = (0u32, n);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if row_bytes(mid).0 <= binding {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let fix = match lo.checked_sub(longest as u32) {
        Some(new) if new >= 1 => format!("give --max-new-tokens {new} or less"),
        _ => format!("give a prompt and --max-new-tokens of at most {lo} tokens together"),
    };
    bail!(
        "N = {n} tokens (the longest prompt's {longest} + --max-new-tokens {max_new}) needs {bytes} bytes for one row's K cache of layer {layer} ({slots} slots × {} × {} bytes), past the {binding}-byte storage bindings of `{}` (max_storage_buffer_binding_size; the engine splits a layer's cache by rows, not a row): at most N = {lo} fits with {}; {fix}",
        config.head_dim,
        storage.bytes(),
        ctx.adapter_name(),
        what
    );
}

/// A `--kernels` folder's refusal with `PLAN` in its `moa-compile` command replaced by the
/// run's plan (`plan_arg`), and, for a folder of another plan, the other way out: the
/// library reads folders for apps too, so it names no plan file (round 30: `moa generate
/// --plan tiny.toml --kernels k` said "re-run `moa-compile PLAN -o k`").
fn naming_the_plan(e: moa::codegen::CodegenError, plan_arg: &str) -> anyhow::Error {
    let text = e.to_string();
    if !text.contains("`moa-compile PLAN ") {
        return e.into();
    }
    anyhow::anyhow!(text
        .replace("`moa-compile PLAN ", &format!("`moa-compile {plan_arg} "))
        .replace(
            "; compile this plan with `",
            "; give the plan it was compiled from with --plan, or compile this plan with `"
        ))
}

/// Whether `text` is one of `moa generate`'s flags (`--raw`, `-h`, `--max-new-tokens`,
/// `--max-new-tokens=8`), which `--prompt` would otherwise take as the message.
fn is_generate_flag(text: &str) -> bool {
    use clap::Args as _;
    let name = text.split('=').next().unwrap_or(text);
    let command = GenerateArgs::augment_args(clap::Command::new("generate"));
    let flags: Vec<String> = command
        .get_arguments()
        .flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|c| format!("-{c}"));
            long.into_iter().chain(short)
        })
        .chain(["--help".to_string(), "-h".to_string()])
        .collect();
    flags.iter().any(|f| f == name)
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let sampling = Sampling {
        temperature: args.temperature,
        top_p: args.top_p.unwrap_or(1.0),
        top_k: args.top_k.unwrap_or(0),
        seed: args.seed.unwrap_or(0),
    };
    // Greedy decoding ignores the sampling flags: a user trying seeds saw the same text
    // each time. The note names the flags given (round 37: it named all three whichever
    // was given).
    let given = |flags: &[(&'static str, bool)]| -> Vec<&'static str> {
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    };
    let greedy_ignores = if args.temperature == 0.0 {
        given(&[
            ("--seed", args.seed.is_some()),
            ("--top-k", args.top_k.is_some()),
            ("--top-p", args.top_p.is_some()),
        ])
    } else {
        Vec::new()
    };
    let top1_ignores = if args.top_k == Some(1) {
        given(&[
            ("--seed", args.seed.is_some()),
            ("--top-p", args.top_p.is_some()),
        ])
    } else {
        Vec::new()
    };
    let listed = |flags: &[&str]| match flags {
        [one] => format!("{one} changes"),
        [a, b] => format!("{a} and {b} change"),
        [rest @ .., last] => format!("{} and {last} change", rest.join(", ")),
        [] => String::new(),
    };
    if !greedy_ignores.is_empty() {
        eprintln!(
            "moa: --temperature 0 (the default) decodes greedily: {} nothing; give --temperature T > 0 to sample",
            listed(&greedy_ignores)
        );
    } else if !top1_ignores.is_empty() {
        eprintln!(
            "moa: --top-k 1 leaves one candidate, so it decodes greedily: {} nothing",
            listed(&top1_ignores)
        );
    }
    // The sampling kernels scale by 1/T: below f32's smallest normal number that is inf,
    // and `--temperature 1e-40` sampled from NaN (other tokens than greedy's, no error).
    // `Sampling::validate` refuses it too; this names the flag.
    if args.temperature > 0.0 && args.temperature < f32::MIN_POSITIVE {
        bail!(
            "--temperature {:e} is out of range: allowed 0 (greedy) or a finite number >= {:e} (below it 1/T overflows in the sampling kernels; the choice is greedy's anyway)",
            args.temperature,
            f32::MIN_POSITIVE
        );
    }
    // A value past f32's largest (`--temperature 1e39`) parses as inf, and was refused
    // as "`temperature` = inf", a value the user never typed.
    for (flag, v) in [
        ("--temperature", Some(args.temperature)),
        ("--top-p", args.top_p),
    ] {
        if v == Some(f32::INFINITY) {
            return Err(anyhow::anyhow!(
                "{flag} is inf, or a number past the largest 32-bit float ({:e}) that reads as inf: out of range, allowed a finite number ({})",
                f32::MAX,
                if flag == "--top-p" {
                    "0 < P <= 1"
                } else {
                    "0 = greedy, or T > 0"
                }
            ))
            .context("invalid --temperature or --top-p");
        }
    }
    sampling
        .validate()
        .context("invalid --temperature or --top-p")?;
    // Before anything is read (the model may be missing); round 30: it said no range,
    // where 252 of a 256-token context said "allowed 1..=251" ([`check_max_new`]).
    if args.max_new_tokens == 0 {
        bail!(
            "--max-new-tokens 0 is out of range: allowed {}",
            crate::GENERATE_NEW_TOKENS_RANGE
        );
    }
    if args.kernels.is_some() && args.backend == "cuda" {
        // Said after the weights loaded before (minutes for a 7B model).
        bail!("--kernels is for the wgpu back end; --backend cuda compiles the plan's CUDA kernels at start");
    }
    // The plan as a `moa-compile` command names it: the --plan path, else the built-in
    // plan's file in the source tree.
    let plan_arg = args.plan.as_ref().map_or_else(
        || "plans/smollm2-135m-moa-50.toml".to_string(),
        |p| p.display().to_string(),
    );
    if let Some(dir) = &args.kernels {
        // Before the model loads: a wrong folder is a typo, not a reason to wait.
        if dir.is_file() {
            // The manifest itself, or the plan, given for the folder: the refusal below
            // advised `moa-compile ... -o k/manifest.json` (round 30), a compile into the
            // user's file.
            let folder = match (dir.file_name(), dir.parent()) {
                (Some(n), Some(parent)) if n == "manifest.json" => format!(
                    "it is a folder's manifest: give the folder, --kernels {}",
                    if parent.as_os_str().is_empty() {
                        ".".to_string()
                    } else {
                        parent.display().to_string()
                    }
                ),
                _ => format!(
                    "give the folder moa-compile wrote (`moa-compile {plan_arg} -o DIR --target wgsl`, then --kernels DIR)"
                ),
            };
            bail!(
                "--kernels `{}` is a file; --kernels takes a folder: {folder}",
                dir.display()
            );
        }
        if !dir.join("manifest.json").is_file() {
            // A compile stopped half-way leaves its marker and no manifest (round 30: the
            // refusal read as if the folder were not moa-compile's at all).
            let stopped = if dir.join(moa::codegen::emit::UNFINISHED_MARKER).is_file() {
                format!(
                    ", and its `{}` says a moa-compile into it was stopped before it finished; compile it again",
                    moa::codegen::emit::UNFINISHED_MARKER
                )
            } else {
                "; it is the folder moa-compile writes".to_string()
            };
            bail!(
                "--kernels `{}`: no manifest.json there{stopped} (`moa-compile {plan_arg} -o {} --target wgsl`)",
                dir.display(),
                dir.display()
            );
        }
        // Every kernel file against the manifest's length and sha256, before the model
        // loads and before anything compiles: an edited or truncated file is named here,
        // not reported later as a missing entry point or a driver's compile error.
        moa::codegen::emit::verify_output(dir).map_err(|e| naming_the_plan(e, &plan_arg))?;
        // A WGSL decode form asked over a precompiled folder is refused by the engine
        // too, but only once the weights are read (seconds to minutes): the folder's
        // kernels keep the tuning they were written with, so say so now.
        let asked = WgpuEngineOptions::from_env()?.wgsl_tuning_asked_over_precompiled();
        if !asked.is_empty() {
            bail!(
                "{} asks the WGSL attention kernels in a tuning other than the default, but \
                 --kernels `{}` holds precompiled kernels ({}): unset it, or let the engine \
                 compile the plan itself (no --kernels)",
                asked.join(", "),
                dir.display(),
                moa::runtime::wgpu_engine::PRECOMPILED_TUNING
            );
        }
    }
    let model_path = super::model_arg(args.model.as_deref())?;
    let t0 = Instant::now();
    // The plan is checked against the model's config before the weights are read, so a
    // plan for another model fails at once, naming both files.
    let config = model::read_config(&model_path)?.0;
    let (plan, plan_name) = match (&args.plan, args.dense) {
        (_, true) => {
            // The engine builds a dense plan of the model's shape; one the kernels cannot
            // take (head_dim 18) was refused, after the weights loaded, as "<plan>:
            // `model.head_dim` = 18 ...", naming a plan the user never gave.
            Plan::dense(config.model_shape()).with_context(|| {
                format!(
                    "--dense: the model `{}` has a shape moa's attention kernels do not take",
                    model_path.display()
                )
            })?;
            (None, "dense".to_string())
        }
        (Some(p), false) => {
            let plan = match Plan::load(p) {
                Err(moa::plan::PlanError::Parse { message, .. })
                    if message.starts_with("is JSON") =>
                {
                    // The library's refusal names no file or model ("moa plan import FILE
                    // --model MODEL"); both are known here (round 30). The import is tried
                    // first: upstream's 16-layer Llama-3.2-1B plan beside a 2-layer model
                    // got the command, which then failed ("`alphas` has 16 layers but the
                    // model has 2"; round 45): such a file is refused for what it is.
                    if let Ok(text) = std::fs::read_to_string(p) {
                        let shown = p.display().to_string();
                        if let Err(e) = upstream::import(&text, &shown, config.model_shape()) {
                            let shape = config.model_shape();
                            let why = match e {
                                moa::plan::PlanError::Invalid { field, message, .. } => {
                                    format!("`{field}` {message}")
                                }
                                moa::plan::PlanError::Parse { message, .. } => message,
                                e => e.to_string(),
                            };
                            bail!(
                                "`{}` is JSON (an upstream MoA plan), not a moa plan (TOML), and `moa plan import` refuses it for the model `{}` ({} layers, {} query heads): {why}; --plan takes a moa plan of the model's shape",
                                p.display(),
                                model_path.display(),
                                shape.layers,
                                shape.q_heads
                            );
                        }
                    }
                    bail!(
                        "`{}` is JSON, not a moa plan (TOML): --plan takes a moa plan; convert an upstream MoA plan ({{\"alphas\": ..., \"betas\": ...}}) for this model with `moa plan import {} --model {} -o {}`, then give --plan {}",
                        p.display(),
                        p.display(),
                        model_path.display(),
                        p.with_extension("toml").display(),
                        p.with_extension("toml").display()
                    );
                }
                plan => plan?,
            };
            config.check_plan(&plan).with_context(|| {
                format!(
                    "plan `{}` was made for another model than `{}`",
                    p.display(),
                    model_path.display()
                )
            })?;
            (Some(plan), p.display().to_string())
        }
        (None, false) => {
            let plan = Plan::from_toml_str(DEFAULT_PLAN, DEFAULT_PLAN_NAME)?;
            if config.check_plan(&plan).is_err() {
                // --dense conflicts with --kernels (clap refuses the pair), so it is not
                // offered there: the folder's own plan is what the user needs to give.
                let fix = match &args.kernels {
                    Some(dir) => format!(
                        "pass --plan with the plan that `{}` was compiled from",
                        dir.display()
                    ),
                    None => "pass --plan PLAN.toml or --dense".to_string(),
                };
                bail!(
                    "the built-in plan is for SmolLM2-135M; `{}` has another shape: {fix}",
                    model_path.display()
                );
            }
            (Some(plan), DEFAULT_PLAN_NAME.to_string())
        }
    };
    if let (Some(dir), Some(p)) = (&args.kernels, &plan) {
        // The folder's plan shape against this run's, before the weights load (the engine
        // checks every rule later): without --plan the run takes the built-in plan, and the
        // engine's "compile this plan" named a plan the user never gave.
        let text = moa::input::read_to_string(
            &dir.join("manifest.json"),
            "manifest",
            moa::input::MAX_TEXT_BYTES,
        )?;
        let m: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--kernels `{}`: manifest.json", dir.display()))?;
        let shape = serde_json::to_value(p.model()).unwrap_or_default();
        if let Some(diff) = moa::codegen::emit::first_difference("model", &m["model"], &shape) {
            let which = if args.plan.is_some() {
                format!("the plan `{plan_name}`")
            } else {
                format!("`{plan_name}`, the plan taken when no --plan is given")
            };
            // The plan's own path in the command (round 27: `PLAN` where the path was known).
            bail!(
                "--kernels `{}` was compiled for another plan than {which}: {diff}; give the plan it was compiled from with --plan, or compile this one (`moa-compile {plan_arg} -o {} --target wgsl{}{}`)",
                dir.display(),
                dir.display(),
                // The run's storage and the folder's WGSL tuning (session 56: a rewrite
                // without them was refused by the next run with --f32).
                if args.f32 { " --dtype f32" } else { "" },
                moa::codegen::emit::wgsl_tuning_flags(&m)
            );
        }
    }
    // The prompts are read, checked and tokenized before the weights load (seconds to
    // minutes), so that a missing file or an empty prompt fails at once.
    // One row per --prompt and --prompt-file, in the order given on the command line.
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut stdin_read = false;
    for source in args.sources() {
        let f = match source {
            PromptSource::Text(i) => {
                let text = &args.prompt[i];
                // --prompt takes a value starting with `-` ("-5 plus 3?"), so a prompt left
                // out (`--prompt --raw`) would read the next flag as the message.
                if is_generate_flag(text) {
                    bail!(
                        "--prompt #{} is `{text}`, a flag of moa generate: give the message's text after --prompt",
                        i + 1
                    );
                }
                texts.push((format!("--prompt #{}", i + 1), text.clone()));
                continue;
            }
            PromptSource::File(i) => &args.prompt_file[i],
        };
        // `-` is standard input (`echo hi | moa generate --prompt-file -`), read once.
        let text = if f.as_os_str() == "-" {
            if std::mem::replace(&mut stdin_read, true) {
                bail!("--prompt-file - is given twice: standard input holds one prompt");
            }
            // Typed at a terminal, the read waits for an end of file that a user who
            // meant a pipe (or forgot one) is not told to give: it looked like a hang.
            if std::io::stdin().is_terminal() {
                eprintln!(
                    "moa generate: reading the prompt from standard input (--prompt-file -); \
                     type it, then end it with Ctrl-D on a line of its own (Ctrl-C stops)"
                );
            }
            moa::input::read_stdin_to_string("prompt", moa::input::MAX_DATA_BYTES)
                .context("cannot read the prompt from standard input (--prompt-file -)")?
        } else {
            moa::input::read_text_or_pipe(f, "prompt file", moa::input::MAX_DATA_BYTES)
                // The flag named (round 37): "cannot read `/tmp`" did not say which
                // option gave the path, beside --plan's and --model's.
                .with_context(|| format!("--prompt-file: cannot read `{}`", f.display()))?
        };
        // A leading UTF-8 byte-order mark (Notepad's "UTF-8 with BOM") is not text: the
        // tokenizer made it a prompt token of its own.
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        };
        // Its line ends as a text file's, the trailing ones dropped (an editor's or
        // `echo`'s final newline was a prompt token).
        let text = moa::input::prompt_text(&text);
        texts.push((format!("--prompt-file `{}`", f.display()), text));
    }
    if let Some((what, _)) = texts.iter().find(|(_, t)| t.trim().is_empty()) {
        // An unset shell variable (`--prompt "$Q"`) gave an answer to nothing with the
        // chat template, and "every prompt needs at least one token" after the load with
        // --raw.
        bail!("{what} is empty: give the text of the user message");
    }
    let tokenizer = ModelTokenizer::load(&model_path)?;
    // --raw uses no template, so one moa refuses (a list of named templates without
    // `default`) does not stop it: that refusal itself points at --raw.
    let template = if args.raw {
        None
    } else {
        ChatTemplate::load(&model_path)?
    };
    if template.is_none() && !args.raw {
        // Without a template the text goes in as it is; a chat model's answer to an
        // untemplated prompt reads as noise, so say why.
        eprintln!(
            "moa: `{}` has no chat template: prompts are fed as they are (as with --raw)",
            model_path.display()
        );
    }
    // A text surely past the context is refused before it is encoded: an 80 MB prompt file
    // took 56.6 s and 12.8 GB of memory to encode before its length was refused.
    for (what, text) in &texts {
        if let Some(fewest) = tokenizer
            .fewest_tokens(text)
            .filter(|&n| n >= config.context_length)
        {
            bail!(
                "{what} has {} bytes, at least {fewest} tokens, which leaves no room for a new token in the context of `{}` ({} tokens): allowed 1..={} prompt tokens; shorten it",
                text.len(),
                model_path.display(),
                config.context_length,
                config.context_length.saturating_sub(1)
            );
        }
    }
    let mut prompts = Vec::new();
    for (_, text) in &texts {
        // A chat is tokenized as transformers does (no BOS added on top of the template's).
        prompts.push(match (&template, args.raw) {
            (Some(t), false) => t.apply(&tokenizer, &[ChatMessage::new("user", text)], true)?,
            _ => tokenizer.encode(text)?,
        });
    }
    // A template that renders nothing (an empty chat_template.jinja) reached the engine
    // as "`prompt_lens[0]` is 0" (round 24).
    if let (Some(t), false) = (&template, args.raw) {
        if let Some(((what, _), _)) = texts.iter().zip(&prompts).find(|(_, p)| p.is_empty()) {
            bail!(
                "`{}`: the chat template (from {}) turns {what} into no tokens at all: the \
                 template is empty or writes nothing for a user message; fix it, or feed the \
                 prompt as it is with --raw",
                model_path.display(),
                t.origin
            );
        }
    }
    let vocab = config.vocab_size;
    // Past the vocabulary, top-k keeps every token: the user asked for a cut that does
    // nothing, silently (round 30's leftover); 0 is the way to say "every token".
    if let Some(k) = args.top_k.filter(|&k| k as usize > vocab) {
        bail!(
            "--top-k {k} is above `{}`'s vocabulary of {vocab} tokens: allowed 0 (every token) or 1..={vocab}",
            model_path.display()
        );
    }
    for (i, p) in prompts.iter().enumerate() {
        if let Some(&id) = p.iter().find(|&&id| id as usize >= vocab) {
            bail!(
                "`{}`: the tokenizer gives token id {id} in prompt {i}, but the model's vocab_size is {vocab} (ids 0..={}): tokenizer and weights do not belong together",
                model_path.display(),
                vocab - 1
            );
        }
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    // Which prompt is too long, by its flag (several may be given).
    if let Some(((what, _), p)) = texts
        .iter()
        .zip(&prompts)
        .find(|(_, p)| p.len() >= config.context_length)
    {
        // The allowed length is said: the count includes the chat template's tokens, so
        // a user cutting the text needs the bound, not only the context.
        let template = if template.is_some() && !args.raw {
            ", the chat template's tokens included"
        } else {
            ""
        };
        bail!(
            "{what} has {} tokens, which leaves no room for a new token in the context of `{}` ({} tokens): allowed 1..={} prompt tokens{template}; shorten it",
            p.len(),
            model_path.display(),
            config.context_length,
            config.context_length.saturating_sub(1)
        );
    }
    check_max_new(args.max_new_tokens, longest, config.context_length)?;
    if let Some(p) = &plan {
        // A plan's context may be shorter than the model's (a plan for short requests),
        // and its span constants were checked against it: past it, the plan says nothing.
        let ctx = p.model().max_context_tokens as usize;
        let n = longest + args.max_new_tokens;
        if n > ctx {
            bail!(
                "N = longest prompt {longest} + --max-new-tokens {} = {n} tokens is past the plan's model.max_context_tokens = {ctx} (`{plan_name}`): allowed N 1..={ctx}; shorten the request, or make the plan for a longer context",
                args.max_new_tokens
            );
        }
    }
    if args.backend == "cuda" && super::eval::quant_weights_asked(false)? {
        // The CUDA engine stores every matrix in bf16 (or f32) from the same stream; the
        // setting went unmentioned (round 44).
        eprintln!(
            "moa: note: MOA_WGPU_QUANT_WEIGHTS=1 not applied: it is the wgpu engine's setting \
             (--backend wgpu, the default); --backend cuda stores the weights in {}",
            if args.f32 { "f32" } else { "bf16" }
        );
    }
    if args.backend == "cuda" {
        // Before the weights load (minutes and tens of GB for an 8B model): a machine
        // without the CUDA driver was told so only after the whole load.
        moa::runtime::cuda::ops::driver_present()
            .context("--backend cuda needs an NVIDIA GPU and its driver; --backend wgpu (the default) runs on any GPU, or on the CPU through lavapipe")?;
    }
    // The wgpu adapter before the weights load: whether the GPU is the CPU decides what
    // the memory check counts, and a refused adapter is said at once.
    let wgpu_ctx = if args.backend == "cuda" {
        None
    } else {
        Some(WgpuContext::new()?)
    };
    if wgpu_ctx.is_some() {
        // The engine's settings (MOA_WGSL_*, MOA_WGPU_*) before the weights load: a bad
        // value was refused only once the engine was built, after the whole load (minutes
        // for an 8B model) and after "building the engine … 1-5 min" (round 31).
        WgpuEngineOptions::from_env()?;
    }
    if let Some(ctx) = &wgpu_ctx {
        // One workgroup row per batch row: past the adapter's dispatch limit the first
        // forward pass failed with wgpu's "dispatch group size dimension ([1, 70000, 1])
        // must be less or equal to 65535", after the weights loaded.
        let max_rows = ctx.device().limits().max_compute_workgroups_per_dimension as usize;
        if prompts.len() > max_rows {
            bail!(
                "{} prompts (--prompt, --prompt-file) decode as one batch of as many rows, and `{}` dispatches at most {max_rows} rows (max_compute_workgroups_per_dimension): allowed 1..={max_rows} prompts",
                prompts.len(),
                ctx.adapter_name()
            );
        }
    }
    if let (Some(dir), Some(p), Some(ctx)) = (&args.kernels, &plan, &wgpu_ctx) {
        // The folder against the plan's every rule, this run's storage type and the WGSL
        // target, before the weights load: a folder compiled with --target cuda or
        // --dtype f32 (without --f32 here) was refused only once the weights were read
        // (the engine reads it again; reading is cheap, the load is not).
        let storage = run_storage(args.f32, Some(ctx));
        moa::Compiled::read(dir, p, storage, moa::Target::Wgsl)
            .map_err(|e| naming_the_plan(e, &plan_arg))
            .with_context(|| format!("--kernels `{}`", dir.display()))?;
    }
    check_host_memory(
        &args,
        &config,
        plan.as_ref(),
        &prompts,
        wgpu_ctx.as_ref(),
        &model_path,
    )?;
    if let Some(ctx) = &wgpu_ctx {
        let storage = run_storage(args.f32, Some(ctx));
        check_prefill_fits(ctx, &config, storage, &prompts)?;
        check_cache_row_fits(
            ctx,
            &config,
            storage,
            plan.as_ref(),
            &prompts,
            args.max_new_tokens,
        )?;
    }
    // Both engines upload from a stream: a GGUF file's weights are read one tensor at a
    // time and never all held in f32 (32 GB for an 8B model against the 16 GB of its
    // device copy); a Hugging Face folder's are read from their shards the same way.
    let (model, mut stream) = moa::model::WeightStream::open(&model_path)?;
    // The back end is chosen here, at run time; everything below drives `dyn Engine`.
    let gpu: Box<dyn Engine> = if args.backend == "cuda" {
        Box::new(moa::runtime::cuda::engine::CudaLlama::new(
            (&model, &mut stream),
            plan.as_ref(),
            run_storage(args.f32, None),
            0,
        )?)
    } else {
        let Some(ctx) = wgpu_ctx.as_ref() else {
            bail!("internal: the wgpu adapter was not made before the load");
        };
        // Said before the engine is built: on a CPU adapter that takes minutes the first
        // time, and main.sh's terminal showed nothing at all meanwhile (252 s measured on
        // 2 busy cores), which reads as a hang.
        // The figures are SmolLM2's cold loads (an empty Mesa cache) on 2 cores, round 41:
        // 5.3 s with the built-in plan (one attention pipeline for every layer), 170 s
        // with a --kernels folder (one per layer: moa-compile bakes each layer's rules),
        // where this said "10-20 s" for both.
        let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
        eprintln!(
            "moa: building the engine on {}{}",
            ctx.adapter_name(),
            match (cpu, args.kernels.is_some()) {
                (false, _) => "",
                (true, false) => " (a CPU adapter: the first run compiles every kernel, about 6 s for SmolLM2 and minutes for larger models on 2 cores; Mesa keeps them for later runs)",
                (true, true) => " (a CPU adapter: the first run compiles every kernel, and a --kernels folder has an attention kernel per layer: 100-250 s for SmolLM2 on 2 cores, minutes more for larger models; Mesa keeps them for later runs)",
            }
        );
        // The stream: each tensor is read (GGUF) or taken (a Hugging Face folder, loaded
        // whole) when its device copy is made and freed after it (nothing below reads
        // them), so on a CPU adapter, whose device memory is host memory, the load peaks
        // near the device copy's size, not that plus the f32 weights (the Llama-3.2-1B
        // shape: DESIGN.md §7).
        match (&args.kernels, &plan) {
            (Some(dir), Some(p)) => Box::new(WgpuEngine::from_compiled(
                ctx,
                (&model, &mut stream),
                p,
                args.f32,
                dir,
            )?),
            _ => Box::new(WgpuEngine::new(
                ctx,
                (&model, &mut stream),
                plan.as_ref(),
                args.f32,
            )?),
        }
    };
    drop(stream);
    // Say where the attention kernels came from: with --kernels they are moa-compile's
    // files, which the plan name alone does not tell.
    let kernels_from = match &args.kernels {
        Some(dir) => format!(", kernels from `{}`", dir.display()),
        None => String::new(),
    };
    eprintln!(
        "moa: {} on {}, {} storage, plan {plan_name}{kernels_from}; loaded in {:.1} s \
         ({:.2} GB of weights on the device)",
        model
            .config
            .name
            .as_deref()
            .map_or("model".into(), moa::input::shown_name),
        gpu.describe(),
        gpu.storage().name(),
        t0.elapsed().as_secs_f64(),
        gpu.weight_bytes() as f64 / 1e9
    );
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut req = gpu.start(&lens, args.max_new_tokens, sampling.seed)?;
    let rows = prompts.len();
    let t_prefill = Instant::now();
    let mut next = prefill(gpu.as_ref(), &mut req, &prompts, sampling)?;
    let prefill_s = t_prefill.elapsed().as_secs_f64();
    let eos = &model.special.eos;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); rows];
    let mut done = vec![false; rows];
    // The end-of-sequence token that ended each row, if one did: it is not text, so it
    // is not in `out`, but `--print-ids` names it (comparisons with other runtimes, whose
    // outputs end with it, looked one token short).
    let mut ended_by: Vec<Option<u32>> = vec![None; rows];
    let mut printed = 0usize;
    let stream = rows == 1;
    let t_decode = Instant::now();
    let mut steps = 0usize;
    loop {
        for b in 0..rows {
            if done[b] {
                continue;
            }
            if !args.ignore_eos && eos.contains(&next[b]) {
                done[b] = true;
                ended_by[b] = Some(next[b]);
            } else {
                out[b].push(next[b]);
            }
            if out[b].len() >= args.max_new_tokens {
                done[b] = true;
            }
        }
        if stream {
            let text = tokenizer.decode(&out[0], true)?;
            // Print whole characters only: a token may end inside a UTF-8 sequence.
            if text.len() > printed && !text.ends_with('\u{fffd}') {
                out!("{}", &text[printed..]);
                std::io::stdout().flush()?;
                printed = text.len();
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
        next = gpu.decode_tokens(&mut req, &next, sampling)?;
        steps += 1;
    }
    let decode_s = t_decode.elapsed().as_secs_f64();
    if stream {
        // The loop holds back text that ends inside a UTF-8 sequence; a run that stops
        // there (the last token a lone byte of a random model, or --max-new-tokens)
        // printed nothing of it: print the rest as it decodes (U+FFFD for what is not
        // UTF-8; --print-ids gives the exact ids).
        let text = tokenizer.decode(&out[0], true)?;
        outln!("{}", text.get(printed..).unwrap_or_default());
    } else {
        for (b, o) in out.iter().enumerate() {
            outln!("--- [{b}] {}", tokenizer.decode(o, true)?);
        }
    }
    // A model whose vocabulary runs past its tokenizer (a padded embedding, a random
    // model) can sample an id with no token: the text drops it silently (round 31: a row
    // of 40 ids printed 10 characters), so say which rows and ids.
    for (b, o) in out.iter().enumerate() {
        let lost: Vec<u32> = o
            .iter()
            .copied()
            .filter(|&id| tokenizer.inner.id_to_token(id).is_none())
            .collect();
        if !lost.is_empty() {
            let mut distinct: Vec<u32> = Vec::new();
            for id in &lost {
                if !distinct.contains(id) {
                    distinct.push(*id);
                }
            }
            let shown = &distinct[..distinct.len().min(8)];
            eprintln!(
                "moa: row {b}: {} of its {} generated ids have no token in `{}`'s tokenizer \
                 ({} tokens; the model's vocabulary is {}) and print as nothing: {shown:?}{}; \
                 --print-ids lists every id",
                lost.len(),
                o.len(),
                model_path.display(),
                tokenizer.inner.get_vocab_size(true),
                vocab,
                if distinct.len() > shown.len() {
                    " …"
                } else {
                    ""
                }
            );
        }
    }
    if args.print_ids {
        for (b, o) in out.iter().enumerate() {
            eprintln!("ids[{b}] prompt {:?}", prompts[b]);
            eprintln!("ids[{b}] generated {o:?}");
            eprintln!(
                "ids[{b}] {}",
                end_of_row(ended_by[b], o.len(), args.max_new_tokens, args.ignore_eos)
            );
        }
    }
    let prompt_tokens: usize = lens.iter().sum();
    let dense_bytes = {
        let c = gpu.config();
        (rows * c.n_layers * c.kv_heads * 2 * c.head_dim) as u64
            * u64::from(req.n_tokens())
            * gpu.storage().bytes() as u64
    };
    // "1 step x 1 row", not "1 steps x 1 rows" (round 28). With no decode step (one new
    // token, which the prefill gives) there is no speed to say: "0 steps ... = 0.0 tok/s"
    // read as a decode that ran and was slow (round 30).
    let decode = if steps == 0 {
        "decode: no step (the prefill gave each row's only new token)".to_string()
    } else {
        // Round 37: a row that ended at its end-of-sequence token still runs in the batch
        // until the last row ends, and the rate counted its dropped tokens as decoded
        // ("7 steps x 3 rows" where one row's answer was 2 tokens): said, with the rate
        // of the tokens kept. A row takes one token a step until it ends (the prefill
        // gave its first; the end-of-sequence token counts, as the step made it).
        let kept: usize = out
            .iter()
            .zip(&ended_by)
            .map(|(o, e)| {
                (o.len() + usize::from(e.is_some()))
                    .saturating_sub(1)
                    .min(steps)
            })
            .sum();
        let dropped = if kept < steps * rows {
            format!(
                " (rows that had ended still ran in the batch: {kept} of these {} tokens were kept, {:.1} tok/s)",
                steps * rows,
                kept as f64 / decode_s.max(1e-9)
            )
        } else {
            String::new()
        };
        format!(
            "decode: {} x {} in {decode_s:.2} s = {:.1} tok/s{dropped}",
            moa::input::counted(steps, "step"),
            moa::input::counted(rows, "row"),
            (steps * rows) as f64 / decode_s.max(1e-9)
        )
    };
    eprintln!(
        "prefill: {} in {prefill_s:.2} s = {:.1} tok/s; {decode}",
        moa::input::counted(prompt_tokens, "token"),
        prompt_tokens as f64 / prefill_s,
    );
    // In KiB or bytes below 1 MiB, as `moa plan show` says it: a tiny model's cache was
    // "0.00 MiB with this plan vs 0.00 MiB dense" (round 30).
    if plan.is_none() {
        // --dense: no plan to compare with (round 31: "… with this plan vs … dense (100.0%)").
        eprintln!(
            "KV cache at N = {}: {} (dense attention)",
            req.n_tokens(),
            super::plan::size_shown(req.kv_bytes()),
        );
    } else {
        eprintln!(
            "KV cache at N = {}: {} with this plan vs {} dense ({:.1}%)",
            req.n_tokens(),
            super::plan::size_shown(req.kv_bytes()),
            super::plan::size_shown(dense_bytes),
            100.0 * req.kv_bytes() as f64 / dense_bytes as f64
        );
    }
    if req.kv_bytes() > dense_bytes
        && plan
            .as_ref()
            .is_some_and(|p| p.span().mode == SpanMode::Upstream)
    {
        // An imported plan at a short N: say why, or a fresh user reads it as a bug.
        eprintln!(
            "(upstream span mode rounds every span up to span.min_span_tokens and span.block_tokens, even past N: at short N the cache exceeds dense; `moa plan show` counts the spans, and mode = \"moa\" in the plan's [span] keeps it at most dense; docs/DESIGN.md §2)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
