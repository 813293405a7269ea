//! `moa bench`: the CUDA engine end to end (prefill and decode), dense and plans side by
//! side, with the decode roofline; `--check-ops` and `--parity` check the engine first.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use moa::lower::StorageType;
use moa::model::random::{like_or_err, random_model};
use moa::model::Model;
use moa::plan::Plan;
use moa::runtime::cuda::bench::{self, BenchSpec};
use moa::runtime::cuda::engine::CudaLlama;
use moa::runtime::cuda::ops;

use super::{load_plan, storage};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Random weights (made on the GPU) of a known shape: smollm2-135m, llama-2-7b,
    /// llama-3-8b, llama-3.2-1b, llama-3.2-3b (default smollm2-135m). Not with --model.
    #[arg(long)]
    pub like: Option<String>,
    /// KV heads of the --like shape (GQA groups of q_heads / N query heads; 1 is MQA), in
    /// place of its own: e.g. `--like llama-3-8b --kv-heads 2` for groups of 16. Must
    /// divide the shape's query heads. Not with --model (a checkpoint's heads are its own);
    /// --parity's model keeps its heads.
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// GGUF file or Hugging Face folder to load instead of random weights.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Plan TOML, or an upstream MoA `moa_alpha_beta.json` (imported for the model's
    /// shape); repeat for several. Each runs beside dense.
    #[arg(long)]
    pub plan: Vec<PathBuf>,
    /// Leave out the dense runs.
    #[arg(long)]
    pub no_dense: bool,
    /// Prompt lengths in tokens (random ids); each + --new must fit the model's and every
    /// plan's context (checked before the GPU). Default 1024.
    #[arg(long, value_delimiter = ',')]
    pub prompt: Vec<usize>,
    /// Batch sizes; `max` = the largest that fits (the memory planner), per plan. Default 1.
    #[arg(long, value_delimiter = ',')]
    pub batch: Vec<String>,
    /// Decode steps per run (two warm-up steps, the rest timed). Default 32.
    #[arg(long)]
    pub new: Option<usize>,
    /// Storage type of weights, activations fed to GEMMs and the KV cache: bf16, f16, f32
    /// (default bf16).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Also time decode with one launch per kernel (no CUDA graph).
    #[arg(long)]
    pub launches: bool,
    /// Most prompt tokens per prefill pass. Default 8192.
    #[arg(long)]
    pub prefill_chunk: Option<usize>,
    /// Prefill computes only this many rows; the others copy their caches from them
    /// (decode reads the same slots either way; saves device time at large batches).
    /// Every row then holds the real K/V of a prompt of the same length. Allowed: 1 or more.
    #[arg(long)]
    pub prefill_rows: Option<usize>,
    /// Run prefill's norms, QKV and FFN over groups of at most this many tokens of a pass
    /// (bounds those activations; `CudaLlama::prefill_sub_tokens`). With --parity, also
    /// checks such a prefill (groups of 37 tokens) against the CPU reference.
    #[arg(long)]
    pub prefill_sub: Option<usize>,
    /// Decode with each layer's norms fused into the QKV and gate/up products
    /// (`CudaLlama::fuse_small_decode`; up to 32 rows of a small model). With --parity,
    /// the token-group check decodes this way too.
    #[arg(long)]
    pub fuse: bool,
    /// Largest batch `max` may choose. Default 256.
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Run every op kernel against its CPU reference first (bf16, f16, f32).
    #[arg(long)]
    pub check_ops: bool,
    /// Greedy-token parity over this many tokens on a SmolLM2-shaped random model (or
    /// --model): CPU reference vs the CUDA engine (f32, bf16) and, with --wgpu, the wgpu
    /// engine; dense and the first --plan. Then the benchmark.
    #[arg(long)]
    pub parity: Option<usize>,
    /// Include the wgpu engine in --parity.
    #[arg(long)]
    pub wgpu: bool,
    /// Only the checks (--check-ops, --parity), no benchmark: the flags that shape only the
    /// benchmark rows (--like, --kv-heads, --no-dense, --prompt, --batch, --new, --dtype,
    /// --launches, --prefill-chunk, --prefill-rows, --prefill-sub, --max-batch) are refused
    /// with it, and so are --plan and --fuse without --parity.
    #[arg(long)]
    pub checks_only: bool,
    /// JSON lines of every result row (appended).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed of the random weights (--like), the random prompt ids and --check-ops' inputs:
    /// the same seed gives the same inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CUDA device index (as nvidia-smi numbers them; CUDA_VISIBLE_DEVICES applies).
    #[arg(long, default_value_t = 0)]
    pub gpu: usize,
}

/// The benchmark rows' settings where their flags are not given (the flags are options, so
/// that `--checks-only`, which runs no row, can tell a given flag from a default).
const DEFAULT_LIKE: &str = "smollm2-135m";
const DEFAULT_PROMPT: usize = 1024;
const DEFAULT_NEW: usize = 32;
const DEFAULT_DTYPE: &str = "bf16";
const DEFAULT_PREFILL_CHUNK: usize = 8192;
const DEFAULT_MAX_BATCH: usize = 256;

impl BenchArgs {
    /// `--like`, or its default.
    fn like(&self) -> &str {
        self.like.as_deref().unwrap_or(DEFAULT_LIKE)
    }

    /// `--prompt`, or its default.
    fn prompts(&self) -> Vec<usize> {
        if self.prompt.is_empty() {
            vec![DEFAULT_PROMPT]
        } else {
            self.prompt.clone()
        }
    }

    /// `--batch`, or its default.
    fn batches(&self) -> Vec<String> {
        if self.batch.is_empty() {
            vec!["1".into()]
        } else {
            self.batch.clone()
        }
    }

    /// `--new`, or its default.
    fn new_tokens(&self) -> usize {
        self.new.unwrap_or(DEFAULT_NEW)
    }
}

/// The `--like` shape, with `--kv-heads` in place of its own KV heads (named in its name,
/// so the JSON rows say which); refused with `--model` and where it does not divide the
/// query heads.
fn like_shape(args: &BenchArgs) -> anyhow::Result<moa::model::LlamaConfig> {
    let mut c = like_or_err(args.like())?;
    if let Some(kv) = args.kv_heads {
        if kv == 0 || !c.q_heads.is_multiple_of(kv) {
            let allowed: Vec<String> = (1..=c.q_heads)
                .filter(|n| c.q_heads.is_multiple_of(*n))
                .map(|n| n.to_string())
                .collect();
            anyhow::bail!(
                "--kv-heads {kv} does not divide the {} query heads of --like {}: allowed {}",
                c.q_heads,
                args.like(),
                allowed.join(", ")
            );
        }
        if kv != c.kv_heads {
            c.kv_heads = kv;
            c.name = Some(format!(
                "{} ({kv} KV heads)",
                c.name.as_deref().unwrap_or(args.like())
            ));
        }
    }
    Ok(c)
}

/// `--batch`: each a count of 1 or more (`Some`) or `max` (`None`, the memory planner's).
fn parse_batches(batch: &[String]) -> anyhow::Result<Vec<Option<usize>>> {
    batch
        .iter()
        .map(|b| match b.as_str() {
            "max" => Ok(None),
            _ => match b.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => anyhow::bail!("--batch `{b}`: allowed a count of 1 or more, or `max`"),
            },
        })
        .collect()
}

/// Every `--prompt P` with `--new M` must fit each context of `contexts` (the model's,
/// then each plan's): N = P + M tokens, `1..=context`. Past it, the engine's caches and
/// the plan's spans are sized for fewer tokens; this was not checked before the GPU.
fn check_request_lengths(
    prompts: &[usize],
    new: usize,
    contexts: &[(String, usize)],
) -> anyhow::Result<()> {
    if let Some((what, ctx)) = contexts.iter().find(|(_, c)| new >= *c) {
        anyhow::bail!(
            "--new {new} leaves no prompt token in the context of {what}: {ctx} tokens; \
             allowed --new 4..={}",
            ctx.saturating_sub(1)
        );
    }
    for &p in prompts {
        // Summed in u128: a saturated usize printed `--prompt 18446744073709551615 + --new
        // 32 = 18446744073709551615 tokens`, a sum that does not add up (round 38).
        let n = p as u128 + new as u128;
        if let Some((what, ctx)) = contexts.iter().find(|(_, c)| n > *c as u128) {
            anyhow::bail!(
                "--prompt {p} + --new {new} = {n} tokens is past the context of {what}: {ctx} \
                 tokens; allowed --prompt 1..={} with --new {new}",
                ctx.saturating_sub(new)
            );
        }
    }
    Ok(())
}

/// What a run on the GPU would do wrong or for nothing, found on any machine before the
/// driver is loaded (round 15 of the new user's journey; each ran on a GPU before):
/// `--no-dense` with no `--plan` benched nothing and exited 0; `--wgpu` without
/// `--parity` was ignored; a `--batch`, `--prompt` or `--plan` given twice ran twice (the
/// same plan twice: two rows no reader could tell apart); `--json` appends its lines, so
/// `--json PLAN.toml` (or a file of the `--model` folder) appended JSON to that input and
/// every later load refused it, and `--json FOLDER` or a missing folder failed only once
/// the driver was up.
fn check_runs_and_outputs(args: &BenchArgs) -> anyhow::Result<()> {
    if args.kv_heads.is_some() && args.model.is_some() {
        anyhow::bail!(
            "--kv-heads changes the --like shape's KV heads, and --model `{}` has its own: drop --kv-heads, or --model",
            args.model.as_ref().map(|m| m.display().to_string()).unwrap_or_default()
        );
    }
    if args.no_dense && args.plan.is_empty() && !args.checks_only {
        anyhow::bail!(
            "--no-dense with no --plan leaves nothing to bench: give a --plan, or drop --no-dense"
        );
    }
    // Flags of the benchmark rows only, which --checks-only does not run: they were
    // ignored in silence (`--checks-only --parity 8 --launches` timed nothing; the parity
    // check's grouped prefill takes 37-token groups whatever --prefill-sub says) (round 38).
    // So were the others of the rows (round 38: --batch, --prompt, --new, --max-batch and
    // --prefill-chunk had defaults, so a given one could not be told apart; now options).
    if args.checks_only {
        let given: Vec<&str> = [
            (args.like.is_some(), "--like"),
            (args.kv_heads.is_some(), "--kv-heads"),
            (args.no_dense, "--no-dense"),
            (!args.prompt.is_empty(), "--prompt"),
            (!args.batch.is_empty(), "--batch"),
            (args.new.is_some(), "--new"),
            (args.dtype.is_some(), "--dtype"),
            (args.launches, "--launches"),
            (args.prefill_chunk.is_some(), "--prefill-chunk"),
            (args.prefill_rows.is_some(), "--prefill-rows"),
            (args.prefill_sub.is_some(), "--prefill-sub"),
            (args.max_batch.is_some(), "--max-batch"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
        if !given.is_empty() {
            anyhow::bail!(
                "{} set how the benchmark rows run, and --checks-only runs none: drop {}, or --checks-only",
                given.join(", "),
                if given.len() == 1 { "it" } else { "them" }
            );
        }
        // --check-ops alone uses no plan and no fused decode: only --parity runs them.
        if args.parity.is_none() {
            for (on, flag) in [(!args.plan.is_empty(), "--plan"), (args.fuse, "--fuse")] {
                if on {
                    anyhow::bail!(
                        "{flag} is used by the benchmark rows and --parity, and --checks-only \
                         --check-ops runs neither: drop {flag}, or add --parity N"
                    );
                }
            }
        }
    }
    if args.wgpu && args.parity.is_none() {
        anyhow::bail!(
            "--wgpu adds the wgpu engine to --parity, and no --parity N is given: add --parity N, or drop --wgpu"
        );
    }
    if let Some((_, b)) = args
        .batch
        .iter()
        .enumerate()
        .find(|(i, b)| args.batch[..*i].contains(b))
    {
        anyhow::bail!("--batch gives `{b}` twice: allowed each batch size once");
    }
    if let Some((_, p)) = args
        .prompt
        .iter()
        .enumerate()
        .find(|(i, p)| args.prompt[..*i].contains(p))
    {
        anyhow::bail!("--prompt gives {p} twice: allowed each prompt length once");
    }
    super::check_distinct_files("--plan", &args.plan)?;
    if let Some(json) = &args.json {
        super::check_output_file("--json", json)?;
        let mut inputs: Vec<&std::path::Path> = args.plan.iter().map(PathBuf::as_path).collect();
        if let Some(m) = &args.model {
            inputs.push(m);
        }
        super::check_not_an_input("--json", json, &inputs)?;
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let dtype = storage(args.dtype.as_deref().unwrap_or(DEFAULT_DTYPE))?;
    if args.checks_only && !args.check_ops && args.parity.is_none() {
        // It ran nothing and exited 0: a CI step `moa bench --checks-only` passed
        // without a single check.
        anyhow::bail!(
            "--checks-only runs only the checks, and none is asked for: add --check-ops and/or --parity N"
        );
    }
    if args.prefill_sub == Some(0) {
        anyhow::bail!("--prefill-sub 0: allowed 1 or more (tokens per group)");
    }
    if args.prefill_rows == Some(0) {
        anyhow::bail!("--prefill-rows 0: allowed 1 or more (rows the prefill computes)");
    }
    // Checked before the driver loads and any run: a bad --batch was found only once the
    // first engine was built (after the checks and the copy-bandwidth run), `--batch 0`
    // was reported as "no row fits", and `--new 0` failed each row on the GPU.
    let batches = parse_batches(&args.batches())?;
    let new = args.new_tokens();
    if new < 4 {
        anyhow::bail!(
            "--new {new} is too few: allowed 4 or more (two warm-up steps, then timed steps)"
        );
    }
    if let Some(p) = args.prompt.iter().find(|&&p| p == 0) {
        anyhow::bail!("--prompt {p}: allowed 1 or more tokens");
    }
    if args.prefill_chunk == Some(0) {
        anyhow::bail!("--prefill-chunk 0: allowed 1 or more (prompt tokens per prefill pass)");
    }
    if args.max_batch == Some(0) {
        anyhow::bail!("--max-batch 0: allowed 1 or more (the largest batch `max` may choose)");
    }
    if args.parity == Some(0) {
        // Compared no token and passed: a CI step `--parity 0 --checks-only` checked nothing.
        anyhow::bail!("--parity 0: allowed 1 or more (greedy tokens compared per row)");
    }
    check_runs_and_outputs(&args)?;
    // A typo in --like, a plan of another shape or a request past the context, found
    // before --check-ops spends device time (they were found after the op checks; a
    // --prompt + --new past the context was not checked at all). --model's config is read
    // without its weights.
    let shape = match &args.model {
        None => like_shape(&args)?,
        // Named with its flag: a missing one said only "cannot read `PATH`" (round 38).
        Some(m) => {
            moa::model::read_config(m)
                .with_context(|| format!("--model `{}`", m.display()))?
                .0
        }
    };
    let shape_name = match &args.model {
        None => format!("--like {}", args.like()),
        Some(m) => format!("--model `{}`", m.display()),
    };
    let mut contexts = vec![(shape_name, shape.context_length)];
    for p in &args.plan {
        let (_, plan) = load_plan(p, &shape)?;
        contexts.push((
            format!("the plan `{}` (model.max_context_tokens)", p.display()),
            plan.model().max_context_tokens as usize,
        ));
    }
    if !args.checks_only {
        // --checks-only runs no --prompt/--new request.
        check_request_lengths(&args.prompts(), new, &contexts)?;
    }
    // --parity runs its own model (--model, else a random SmolLM2-135M) with the first
    // --plan, prompts of up to 400 tokens and N new ones.
    if let Some(n) = args.parity {
        let pm = match &args.model {
            Some(_) => shape.clone(),
            None => like_or_err("smollm2-135m")?,
        };
        if let Some(p) = args.plan.first() {
            load_plan(p, &pm).with_context(|| {
                format!(
                    "--parity checks the first --plan on {}",
                    match &args.model {
                        Some(m) => format!("--model `{}`", m.display()),
                        None => "a random SmolLM2-135M (the --like shape is not used)".into(),
                    }
                )
            })?;
        }
        const PARITY_PROMPT: usize = 400;
        if pm.context_length <= PARITY_PROMPT {
            // No N fits: the range below came out as "allowed --parity 1..=0" (round 30,
            // a tiny --model of 256 tokens).
            anyhow::bail!(
                "--parity runs prompts of up to {PARITY_PROMPT} tokens, and the model's context is {} tokens{}: --parity needs a model whose context is more than {PARITY_PROMPT} tokens; drop --parity, or give such a --model",
                pm.context_length,
                match &args.model {
                    Some(m) => format!(" (--model `{}`)", m.display()),
                    None => String::new(),
                }
            );
        }
        // In u128, as the --prompt sum above: a saturated sum printed 400 + N = N.
        let total = PARITY_PROMPT as u128 + n as u128;
        if total > pm.context_length as u128 {
            anyhow::bail!(
                "--parity {n}: its longest prompt ({PARITY_PROMPT} tokens) + {n} = {total} tokens \
                 is past the model's context of {} tokens; allowed --parity 1..={}",
                pm.context_length,
                pm.context_length.saturating_sub(PARITY_PROMPT)
            );
        }
    }
    // Every part of the command runs on the CUDA engine: without the driver, `--parity`
    // first made a random SmolLM2-shaped model on the CPU (silent, a minute on 2 cores)
    // and `--model` loaded the weights, before failing at the first CUDA call.
    moa::runtime::cuda::ops::driver_present()
        .context("moa bench runs the CUDA engine, which needs an NVIDIA GPU and its driver")?;
    let mut json = match &args.json {
        // Appended: several runs of one device call collect into one file.
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot write `{}`", p.display()))?,
        ),
        None => None,
    };
    let mut emit = |v: serde_json::Value| -> anyhow::Result<()> {
        if let Some(f) = json.as_mut() {
            // One write of the whole line: `writeln!` on the unbuffered file made a write
            // per JSON token, so two runs appending to one file at once could mix their
            // lines, and a killed run left half a line (round 36).
            f.write_all(format!("{v}\n").as_bytes())?;
        }
        Ok(())
    };
    let mut failed = false;
    if args.check_ops {
        for s in [StorageType::Bf16, StorageType::F16, StorageType::F32] {
            let results = ops::check(args.gpu, s, args.seed)?;
            for r in &results {
                outln!(
                    "ops {:4} {:>4}  {:<60} max err {:.2e} (tol {:.1e})",
                    ops::storage_name(s),
                    if r.passed { "ok" } else { "FAIL" },
                    r.name,
                    r.max_error,
                    r.tolerance
                );
                failed |= !r.passed;
                emit(
                    serde_json::json!({"kind": "ops", "dtype": ops::storage_name(s), "name": r.name,
                    "max_error": r.max_error, "tolerance": r.tolerance, "passed": r.passed}),
                )?;
            }
        }
    }
    let model: Option<Model> = match &args.model {
        Some(p) => Some(Model::load(p)?),
        None => None,
    };
    let config = match &model {
        Some(m) => m.config.clone(),
        None => like_shape(&args)?,
    };
    let plans: Vec<(String, Plan)> = args
        .plan
        .iter()
        .map(|p| load_plan(p, &config))
        .collect::<anyhow::Result<_>>()?;
    if let Some(new) = args.parity {
        let pm = match &model {
            Some(m) => m.clone(),
            None => {
                let c = like_or_err("smollm2-135m")?;
                random_model(&c, args.seed)
            }
        };
        let plan = match args.plan.first() {
            Some(p) => Some(load_plan(p, &pm.config)?.1),
            None => None,
        };
        let vocab = pm.config.vocab_size as u32;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed + 1);
        let prompts = bench::random_prompts(&[400, 250, 130], vocab, &mut rng);
        let ctx = if args.wgpu {
            Some(moa::runtime::wgpu::WgpuContext::new()?)
        } else {
            None
        };
        let rows = bench::parity(
            &pm,
            plan.as_ref(),
            &prompts,
            new,
            &[StorageType::F32, StorageType::Bf16],
            ctx.as_ref(),
            args.gpu,
        )?;
        for r in &rows {
            outln!(
                "parity {:5} {:9} {}/{} greedy tokens equal to the CPU reference{}",
                r.label,
                r.engine,
                r.equal,
                r.total,
                r.first_difference
                    .map(|(row, step)| format!(" (first difference: row {row}, token {step})"))
                    .unwrap_or_default()
            );
            // bf16 rounds every weight: its tokens may drift from f32's; f32 must agree.
            if r.engine.contains("f32") && r.equal != r.total {
                failed = true;
            }
            emit(
                serde_json::json!({"kind": "parity", "plan": r.label, "engine": r.engine,
                "equal": r.equal, "total": r.total, "first_difference": r.first_difference}),
            )?;
        }
    }
    if args.parity.is_some() {
        // The benchmark's --prefill-rows shortcut: copied rows must equal prefilled ones.
        let pm = match &model {
            Some(m) => m.clone(),
            None => random_model(&like_or_err("smollm2-135m")?, args.seed),
        };
        let plan = match args.plan.first() {
            Some(p) => Some(load_plan(p, &pm.config)?.1),
            None => None,
        };
        let vocab = pm.config.vocab_size as u32;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed + 2);
        let prompts = bench::random_prompts(&[300, 170, 90], vocab, &mut rng);
        let r = bench::grouped_prefill_check(
            &pm,
            plan.as_ref(),
            &prompts,
            16,
            37,
            args.fuse,
            args.gpu,
        )?;
        outln!(
            "parity {:5} {} {}/{} greedy tokens equal to the CPU reference",
            r.label,
            r.engine,
            r.equal,
            r.total
        );
        failed |= r.equal != r.total;
        emit(
            serde_json::json!({"kind": "grouped_prefill", "engine": r.engine,
            "equal": r.equal, "total": r.total, "first_difference": r.first_difference}),
        )?;
        let r = bench::sampled_prefill_check(&pm, None, 300, 12, args.gpu)?;
        outln!(
            "parity {:5} {} {}/{} greedy tokens equal to a full prefill's",
            r.label,
            r.engine,
            r.equal,
            r.total
        );
        failed |= r.equal != r.total;
        emit(
            serde_json::json!({"kind": "sampled_prefill", "engine": r.engine,
            "equal": r.equal, "total": r.total, "first_difference": r.first_difference}),
        )?;
    }
    if args.checks_only {
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let mut runs: Vec<(String, Option<Plan>)> = Vec::new();
    if !args.no_dense {
        runs.push(("dense".into(), None));
    }
    for (l, p) in plans {
        runs.push((l, Some(p)));
    }
    // Printed once the first engine is built: without a CUDA driver (or with a plan
    // that fails to build) the table came out as a header with no rows before the error.
    let mut header = false;
    let mut bw = None;
    for (label, plan) in &runs {
        let mut engine = match &model {
            Some(m) => CudaLlama::new(m, plan.as_ref(), dtype, args.gpu)?,
            None => CudaLlama::random(&config, plan.as_ref(), dtype, args.gpu, args.seed)?,
        };
        engine.prefill_chunk_tokens = args.prefill_chunk.unwrap_or(DEFAULT_PREFILL_CHUNK);
        engine.prefill_sample_rows = args.prefill_rows;
        engine.prefill_sub_tokens = args.prefill_sub;
        engine.fuse_small_decode = args.fuse;
        let copy = match bw {
            Some(b) => b,
            None => {
                let b = bench::copy_bandwidth(&engine, 2 << 30, 20)?;
                eprintln!("copy bandwidth: {:.0} GB/s (read + written)", b / 1e9);
                emit(serde_json::json!({"kind": "copy", "bytes_per_s": b}))?;
                bw = Some(b);
                b
            }
        };
        if !std::mem::replace(&mut header, true) {
            outln!("{}", bench::table_header());
        }
        for prompt in args.prompts() {
            for b in &batches {
                let batch = match *b {
                    None => engine
                        .max_rows(prompt, new, 4 << 30)?
                        .min(args.max_batch.unwrap_or(DEFAULT_MAX_BATCH)),
                    Some(n) => n,
                };
                if batch == 0 {
                    eprintln!("{label}: no row of {prompt} tokens fits");
                    continue;
                }
                let spec = BenchSpec {
                    prompt,
                    batch,
                    new_tokens: new,
                    seed: args.seed,
                };
                let graphs: &[bool] = if args.launches {
                    &[true, false]
                } else {
                    &[true]
                };
                for &g in graphs {
                    engine.use_graph = g;
                    match bench::run(&engine, label, &spec, copy) {
                        Ok(row) => {
                            outln!("{}", row.markdown());
                            let mut v = serde_json::to_value(&row)?;
                            v["kind"] = "bench".into();
                            v["model"] = config.name.clone().unwrap_or_default().into();
                            emit(v)?;
                        }
                        Err(e) => {
                            failed = true;
                            outln!("| {label} | {prompt} x {batch} failed: {e} |");
                        }
                    }
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
