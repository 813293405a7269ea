//! `moa eval`: scores plans against dense and against a uniform window of the same density
//! on a GPU runtime (wgpu, or the CUDA engine with `--backend cuda`): retrieval accuracy over lengths × depths for two task
//! families, perplexity of long held-out text, and the effective context length. Writes a
//! markdown table (stdout and `--markdown`), JSON (`--json`) and one PNG heatmap per plan
//! (`--heatmaps DIR`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use moa::eval::gpu::{greedy_batch, window_len, window_token_nats, window_token_nats_prefill};
use moa::eval::heatmap::heatmap_png;
use moa::eval::retrieval::{
    build_cases, distinct_needle_positions, perplexity, sorted_lengths, text_windows, uniform_plan,
    Case, EvalReport, Family, FamilyGrid, GridSpec, PerplexityCheck, PlanResult, ANSWER_TOKENS,
};
use moa::eval::work::{mean_span, ForwardCost};
use moa::input::counted;
use moa::lower::StorageType;
use moa::model::reference::{CpuReference, Masking};
use moa::model::{self, Model, ModelTokenizer};
use moa::plan::{stats::plan_stats, Plan};
use moa::profile::progress::{fmt_duration, Progress};
use moa::runtime::cuda::engine::CudaLlama;
use moa::runtime::engine::Engine;
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::WgpuEngine;

/// The progress bar's two kinds of items: retrieval batches and perplexity batches.
const RETRIEVAL: usize = 0;
const PERPLEXITY: usize = 1;

/// Copies of one layer's f32 score matrix (`q_heads × N × N`) that `--backend cpu`'s
/// memory check counts: the reference's scores, mask and probabilities and candle's
/// temporaries between them (measured, see [`run`]'s check).
const CPU_SCORE_COPIES: u64 = 5;

/// `moa eval`.
/// The default perplexity texts, docs/DESIGN.md and README.md, as this moa was built.
const DEFAULT_PPL_TEXTS: [&str; 2] = [
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/DESIGN.md")),
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")),
];

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A plan TOML to score; repeat for each. Dense is always scored, and a uniform
    /// window (sink + last β·N tokens) at each plan's target density unless --no-uniform.
    #[arg(long = "plan")]
    pub plans: Vec<PathBuf>,
    /// Prompt lengths in tokens, answer included (each ≤ the model's context) [default:
    /// 1024,2048,4096,7680, those within the model's context].
    #[arg(long, value_delimiter = ',')]
    pub lengths: Vec<u32>,
    /// Needle depths per length, evenly spaced over [0.05, 0.95].
    #[arg(long, default_value_t = 8)]
    pub depths: usize,
    /// Task families: passkey (calibration's), code (not used by calibration).
    #[arg(long, value_delimiter = ',', default_value = "passkey,code")]
    pub tasks: Vec<String>,
    /// Seed of keys and filler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the uniform-window baselines.
    #[arg(long)]
    pub no_uniform: bool,
    /// Held-out text for perplexity (repeatable; default: the repository's docs/DESIGN.md
    /// and README.md as built into moa, text calibration never sees). Read as a text file:
    /// CRLF as LF and the line ends at its end as one, so Windows line ends or a missing
    /// final newline do not change the score. `--ppl-rows
    /// 0` skips perplexity.
    #[arg(long = "ppl-text")]
    pub ppl_text: Vec<PathBuf>,
    /// Tokens per perplexity window (context + scored tokens) [default: 4096, or the
    /// model's context where shorter].
    #[arg(long)]
    pub ppl_length: Option<usize>,
    /// Tokens scored at the end of each window (teacher-forced decode steps) [default:
    /// 256, or half of --ppl-length where that is 256 or shorter].
    #[arg(long)]
    pub ppl_scored: Option<usize>,
    /// Perplexity windows (rows of one batch).
    #[arg(long, default_value_t = 4)]
    pub ppl_rows: usize,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// f32 storage (wgpu: even where the GPU has f16; cuda: instead of bf16).
    #[arg(long)]
    pub f32: bool,
    /// Runtime: wgpu (Vulkan, Metal, DX12), cuda (the CUDA engine, bf16 storage unless
    /// --f32; NVIDIA GPUs) or cpu (the CPU reference, f32, one row at a time: on a machine
    /// without a GPU it is several times faster than wgpu on lavapipe, whose kernels
    /// run emulated; the plan's masks are the same).
    #[arg(long, default_value = "wgpu", value_parser = ["wgpu", "cuda", "cpu"])]
    pub backend: String,
    /// How the perplexity windows' last tokens are teacher-forced on the CUDA engine:
    /// prefill (one prefill of each whole window, the logits of every scored position),
    /// decode (one decode step per scored token, as wgpu does), or both (prefill's scores,
    /// and the largest per-token difference from decode's on stderr and in the JSON).
    #[arg(long, default_value = "prefill", value_parser = ["prefill", "decode", "both"])]
    pub ppl_method: String,
    /// Write the JSON report here (`-`: standard output, which then holds the JSON alone).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the markdown table here (it is printed either way, unless --json or this goes
    /// to standard output: `-`).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write one PNG heatmap per plan into this folder.
    #[arg(long)]
    pub heatmaps: Option<PathBuf>,
    /// A JSON report of an earlier run with the same grid, model, backend and perplexity
    /// settings (else refused): its plans (dense included) are taken as they are, not
    /// scored again, and plans of this run with the same name are skipped, unless the plan
    /// file changed since (its hash differs: scored again).
    #[arg(long)]
    pub merge: Option<PathBuf>,
    // `-q` as in moa-compile: README says `--quiet`/`-q` hides a progress bar, and
    // `moa profile -q` / `moa eval -q` were usage errors (round 41).
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Removes the `<report>.partial-<pid>` files of [`super::write_whole`] that runs killed while
/// writing left beside `--json` and `--markdown` (one per kill, never cleaned before);
/// a running process's are kept (`codegen::emit::remove_dead_temps`).
fn remove_dead_partials(args: &EvalArgs) {
    for p in [&args.json, &args.markdown].into_iter().flatten() {
        let (Some(name), dir) = (p.file_name(), p.parent()) else {
            continue;
        };
        let dir = dir
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let prefix = format!("{}.partial-", name.to_string_lossy());
        let pid_of = |f: &str| -> Option<u32> {
            let digits = f.strip_prefix(&prefix)?;
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse().ok())?
        };
        for gone in moa::codegen::emit::remove_dead_temps(dir, pid_of, "unfinished reports") {
            eprintln!(
                "moa eval: removed {}, left by a run that was stopped",
                gone.display()
            );
        }
    }
}

/// `--json` and `--markdown` are written after the first plan is scored: a missing folder
/// is named now, not after minutes of scoring. The `--heatmaps` folder is made now, for the
/// same reason (`--heatmaps /proc/x` failed only once every plan was scored).
fn check_output_folders(args: &EvalArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.heatmaps {
        super::check_output_folder("--heatmaps", dir)?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--heatmaps: cannot create the folder `{}`", dir.display()))?;
    }
    for (flag, p) in [("--json", &args.json), ("--markdown", &args.markdown)] {
        // A missing folder, or a folder given as the file (refused only at the end).
        if let Some(p) = p.as_deref().filter(|p| *p != std::path::Path::new("-")) {
            super::check_output_file(flag, p)?;
        }
    }
    Ok(())
}

/// Writes the markdown, JSON and heatmaps of `report` where the arguments ask; `last` for
/// the final report. The reports written after each plan (`last` false) go only to regular
/// files, where a stopped run keeps them: into a stream (`--json /dev/stdout`, a pipe,
/// `-` for standard output) each plan's report was appended, the JSON repeated once per
/// plan (round 36), so a stream gets the final one only. `--json -` wrote a file named
/// `-`; it is standard output now, as `-o -` is for `moa plan export`.
fn write_outputs(args: &EvalArgs, report: &mut EvalReport, last: bool) -> anyhow::Result<String> {
    report.finish();
    let md = report.markdown();
    let due = |p: &std::path::Path| {
        last || (p != std::path::Path::new("-")
            && match std::fs::metadata(p) {
                Ok(m) => m.is_file(),
                // Not there yet: a new regular file, unless a device's name.
                Err(_) => !p.starts_with("/dev") && !p.starts_with("/proc"),
            })
    };
    if let Some(p) = args.markdown.as_deref().filter(|p| due(p)) {
        super::write_output(Some(p), &md)?;
    }
    if let Some(p) = args.json.as_deref().filter(|p| due(p)) {
        let text = serde_json::to_string_pretty(&report)?;
        super::write_output(Some(p), &text)?;
    }
    if let Some(dir) = &args.heatmaps {
        super::check_output_folder("--heatmaps", dir)?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let dense = report.plans[0].retrieval.clone();
        for p in &report.plans {
            let file = dir.join(format!("{}.png", p.name));
            // In memory, then written whole: a run stopped mid-write left a cut PNG.
            let png = heatmap_png(&p.name, &report.grid, &p.retrieval, &dense)
                .map_err(|e| anyhow::anyhow!("cannot draw `{}`: {e}", file.display()))?;
            super::write_whole(&file, &png)?;
        }
    }
    Ok(md)
}

/// A perplexity window of `length` tokens, the last `scored` of them scored, needs
/// `1 <= scored < length <= context` (at least one token of context before the first
/// scored one).
fn check_ppl_window(length: usize, scored: usize, context: usize) -> anyhow::Result<()> {
    if !(2..=context).contains(&length) {
        bail!("--ppl-length {length} is out of range: allowed 2..={context} (the model's context)");
    }
    if !(1..length).contains(&scored) {
        bail!(
            "--ppl-scored {scored} is out of range: allowed 1..={} (below --ppl-length {length})",
            length - 1
        );
    }
    Ok(())
}

/// Refuses two `--plan` files of one name (the file stem: `a/p.toml` and `b/p.toml`), or a
/// plan named as a baseline row (`dense`, `uniform-50`): the report held two rows of one
/// name that no reader could tell apart, `--merge` matched rows by that name, and the
/// second plan's heatmap `<name>.png` replaced the first's. `baselines` are the rows made
/// before the plans (dense and the uniform windows).
fn check_distinct_names(
    files: &[PathBuf],
    baselines: &[(String, Option<Plan>)],
) -> anyhow::Result<()> {
    for (i, f) in files.iter().enumerate() {
        let name = short_name(f);
        if let Some(first) = files[..i].iter().find(|g| short_name(g) == name) {
            bail!(
                "--plan `{}` and --plan `{}` have the same name `{name}` (the file name \
                 without .toml), which the report's rows, --merge and the heatmap \
                 `{name}.png` go by: give one of them another file name",
                first.display(),
                f.display()
            );
        }
        if baselines.iter().any(|(b, _)| *b == name) {
            bail!(
                "--plan `{}` has the name `{name}` (the file name without .toml), the name \
                 of a baseline row of the report: give it another file name",
                f.display()
            );
        }
    }
    Ok(())
}

fn short_name(p: &std::path::Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// `--lengths` when the flag is not given: those within the model's context.
const DEFAULT_LENGTHS: [u32; 4] = [1024, 2048, 4096, 7680];
/// `--ppl-length` when the flag is not given, or the model's context where shorter.
const DEFAULT_PPL_LENGTH: usize = 4096;
/// `--ppl-scored` where the window allows it ([`apply_context_defaults`]).
const DEFAULT_PPL_SCORED: usize = 256;

/// The flags' defaults for a model of `context` tokens: the default lengths within the
/// context, and a perplexity window of at most the context. Why: a model of a 2048-token
/// context was refused "--lengths: 4096 tokens is beyond the model's context", then
/// "--ppl-length 4096 is out of range", for values the user never gave. A note on stderr
/// says what was left out. Lengths the user gives are checked as given.
fn apply_context_defaults(args: &mut EvalArgs, context: usize) {
    if args.lengths.is_empty() {
        args.lengths = DEFAULT_LENGTHS
            .into_iter()
            .filter(|&l| l as usize <= context)
            .collect();
        if args.lengths.is_empty() {
            // Every default is longer: the context itself (checked like a given length).
            args.lengths = vec![u32::try_from(context).unwrap_or(u32::MAX)];
        }
        if args.lengths.len() < DEFAULT_LENGTHS.len() {
            let shown = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            eprintln!(
                "moa eval: --lengths {} (the default is {}; the model's context is {context} tokens)",
                shown(&args.lengths),
                shown(&DEFAULT_LENGTHS),
            );
        }
    }
    if args.ppl_length.is_none() {
        if args.ppl_rows > 0 && context < DEFAULT_PPL_LENGTH {
            eprintln!(
                "moa eval: --ppl-length {context} (the model's context; the default is {DEFAULT_PPL_LENGTH})"
            );
        }
        args.ppl_length = Some(DEFAULT_PPL_LENGTH.min(context));
    }
    // A window of 256 tokens or fewer (a short --ppl-length, or a model of that context
    // with the default) left the default 256 scored tokens no context: "--ppl-scored 256
    // is out of range" named a flag the user never gave, and a model of a 256-token
    // context could not run `moa eval` at its defaults (session 56).
    if args.ppl_scored.is_none() {
        let length = args.ppl_length.unwrap_or(DEFAULT_PPL_LENGTH);
        if (2..=DEFAULT_PPL_SCORED).contains(&length) {
            if args.ppl_rows > 0 {
                eprintln!(
                    "moa eval: --ppl-scored {} (half of --ppl-length {length}; the default is {DEFAULT_PPL_SCORED})",
                    length / 2
                );
            }
            args.ppl_scored = Some(length / 2);
        }
    }
}

pub fn run(mut args: EvalArgs) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    check_output_folders(&args)?;
    // One plan twice was scored twice, its rows repeated and its heatmap written twice.
    super::check_distinct_files("--plan", &args.plans)?;
    remove_dead_partials(&args);
    let path = super::model_arg(args.model.as_deref())?;
    super::check_distinct_outputs(&[
        ("--json", args.json.as_deref()),
        ("--markdown", args.markdown.as_deref()),
    ])?;
    // Written after the scoring: a --json or --markdown naming a plan or a file of the
    // model replaced it with the report (--merge's file may be the --json it updates).
    for (flag, out) in [("--json", &args.json), ("--markdown", &args.markdown)] {
        if let Some(o) = out {
            let mut inputs: Vec<&std::path::Path> = vec![&path];
            inputs.extend(args.plans.iter().map(PathBuf::as_path));
            inputs.extend(args.ppl_text.iter().map(PathBuf::as_path));
            super::check_not_an_input(flag, o, &inputs)?;
        }
    }
    let mut families = Vec::new();
    for t in &args.tasks {
        let f = Family::parse(t).map_err(|e| anyhow::anyhow!("--tasks: {e}"))?;
        // `--tasks passkey,passkey` scored the family twice (its rows repeated in every
        // table); a repeated family is taken once, as a repeated length is.
        if !families.contains(&f) {
            families.push(f);
        }
    }
    let config = model::read_config(&path)?.0;
    apply_context_defaults(&mut args, config.context_length);
    let ppl_length = args.ppl_length.unwrap_or(DEFAULT_PPL_LENGTH);
    let ppl_scored = args.ppl_scored.unwrap_or(DEFAULT_PPL_SCORED);
    let grid = GridSpec::new(sorted_lengths(args.lengths.clone()), args.depths, args.seed);
    // The tokenizer before the grid's check: the least length depends on it (a
    // byte-level tokenizer's needle prompt takes 240 tokens, a subword one's 138). One
    // that does not load is reported where it was before (after the plans and --merge).
    let early_tokenizer = ModelTokenizer::load(&path).ok();
    let mut least = Vec::new();
    if let Some(t) = &early_tokenizer {
        for &f in &families {
            least.push((f, f.shortest_length(t)?));
        }
    }
    grid.check_for(config.context_length, &least)
        .map_err(|e| anyhow::anyhow!("{e} (model `{}`)", path.display()))?;
    // Plans first: a plan of another shape fails before the model is loaded.
    let mut plans: Vec<(String, Option<Plan>)> = vec![("dense".into(), None)];
    let mut loaded = Vec::new();
    for p in &args.plans {
        let plan = Plan::load(p)?;
        config
            .check_plan(&plan)
            .with_context(|| format!("plan `{}` does not fit `{}`", p.display(), path.display()))?;
        loaded.push((short_name(p), plan));
    }
    if !args.no_uniform {
        let mut seen: Vec<u32> = Vec::new();
        for (name, plan) in &loaded {
            let d = match plan.meta().target_densities.first() {
                Some(&d) => d,
                None => plan_stats(plan, *grid.lengths.last().unwrap_or(&1024), 2).kv_density,
            };
            let key = (d * 1000.0).round() as u32;
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let u =
                uniform_plan(plan, d).with_context(|| format!("uniform baseline for `{name}`"))?;
            plans.push((format!("uniform-{}", (d * 100.0).round()), Some(u)));
        }
    }
    check_distinct_names(&args.plans, &plans)?;
    plans.extend(loaded.into_iter().map(|(n, p)| (n, Some(p))));
    let mut earlier: Vec<PlanResult> = Vec::new();
    // The merged report's backend and perplexity setup, checked once this run's are known.
    let mut merged_setup = None;
    if let Some(m) = &args.merge {
        // Through `input`: a folder or a non-UTF-8 file said "Is a directory (os error
        // 21)" / "stream did not contain valid UTF-8", unlike every other input (round 18).
        let text = moa::input::read_to_string(m, "moa eval report", moa::input::MAX_DATA_BYTES)
            .with_context(|| format!("--merge: cannot read `{}`", m.display()))?;
        let prev: EvalReport = serde_json::from_str(&text)
            .with_context(|| format!("--merge: `{}` is not a moa eval report", m.display()))?;
        if prev.grid != grid {
            bail!(
                "--merge: `{}` was run on another grid (lengths {:?}, {}, seed {}); this run: lengths {:?}, {}, seed {}",
                m.display(),
                prev.grid.lengths,
                counted(prev.grid.depths.len(), "depth"),
                prev.grid.seed,
                grid.lengths,
                counted(grid.depths.len(), "depth"),
                grid.seed
            );
        }
        if prev.plans.first().map(|p| p.name.as_str()) != Some("dense") {
            bail!("--merge: `{}` has no dense results first", m.display());
        }
        // Results of another model, backend or perplexity setup, or of a plan edited
        // under the same file name, were merged as this run's (only the grid was checked).
        let file_name = |p: &str| Path::new(p).file_name().map(|f| f.to_owned());
        if file_name(&prev.model) != file_name(&path.display().to_string()) {
            bail!(
                "--merge: `{}` was run on the model `{}`; this run's is `{}`: one report holds one model's results",
                m.display(),
                prev.model,
                path.display()
            );
        }
        let mut kept = Vec::new();
        for r in prev.plans {
            let now = plans.iter().find(|(n, _)| *n == r.name);
            match (now, &r.masking) {
                (Some((_, plan)), Some(key)) if *key != moa::eval::masking_key(plan.as_ref()) => {
                    eprintln!(
                        "moa eval: --merge: `{}` in `{}` was scored for another plan of that name (the file changed since): scored again",
                        r.name,
                        m.display()
                    );
                }
                (_, None) => {
                    eprintln!(
                        "moa eval: --merge: `{}` in `{}` records no plan hash (an older moa's report): taken as it is, unchecked",
                        r.name,
                        m.display()
                    );
                    kept.push(r);
                }
                _ => kept.push(r),
            }
        }
        earlier = kept;
        merged_setup = Some((prev.backend, prev.perplexity_setup));
        plans.retain(|(n, _)| !earlier.iter().any(|p| &p.name == n));
    }

    // Perplexity is scored last: a bad window found there came after the whole retrieval
    // grid (`--ppl-length 0`, `--ppl-scored 0` or a --ppl-scored past the window).
    if args.ppl_rows > 0 {
        check_ppl_window(ppl_length, ppl_scored, config.context_length)?;
    }
    // A flag that does not apply, and a machine without the CUDA driver, are said before
    // the weights load (minutes for a 7B model); both came after it.
    let cuda = args.backend == "cuda";
    let on_cpu = args.backend == "cpu";
    if !cuda && args.ppl_method != "prefill" {
        // Named by the backend given: `--backend cpu` was told of wgpu (round 41).
        bail!(
            "--ppl-method {} is for --backend cuda: --backend {} {}",
            args.ppl_method,
            args.backend,
            if on_cpu {
                "scores each perplexity window by one forward pass of the CPU reference"
            } else {
                "always teacher-forces by decode steps"
            }
        );
    }
    if cuda {
        moa::runtime::cuda::ops::driver_present()
            .context("--backend cuda needs an NVIDIA GPU and its driver; --backend wgpu (the default) runs on any GPU, or on the CPU through lavapipe")?;
    }
    let ctx = if cuda || on_cpu {
        None
    } else {
        Some(WgpuContext::new()?)
    };
    // Round 19: 14 min on lavapipe for a run `--backend cpu` does in 15 s (emulated
    // kernels); said at the start, where a user can stop and rerun.
    if let Some(c) = &ctx {
        if c.adapter_info().device_type == wgpu::DeviceType::Cpu {
            eprintln!(
                "moa eval: note: `{}` is a CPU adapter, which emulates the GPU kernels (about a \
                 minute per 512 prompt tokens of SmolLM2 on 2 cores); --backend cpu scores on \
                 the CPU reference instead, tens of times faster, with the same masks",
                c.adapter_name()
            );
        }
    }
    // `MOA_WGPU_QUANT_WEIGHTS=1` keeps a streamed GGUF file's blocks on the device, and
    // this command loads the model into memory in f32, which has none: it said nothing of
    // the setting, so a user comparing scores took the f16 copy's for the quantized
    // engine's (round 44). DESIGN.md's settings table says the setting is not applied here.
    if quant_weights_asked(ctx.is_some())? {
        eprintln!(
            "moa eval: note: MOA_WGPU_QUANT_WEIGHTS=1 not applied: {}",
            if ctx.is_some() {
                "moa eval loads the model into memory in f32, which keeps no GGUF blocks, so \
                 the wgpu engine stores its matrices in the storage type; only `moa generate` \
                 streams a GGUF file's quantization to the device"
            } else {
                "it is the wgpu engine's setting (--backend wgpu, the default)"
            }
        );
    }
    // A length's depths and the perplexity windows each run as one batch, one workgroup
    // row per batch row: past the adapter's dispatch limit wgpu failed ("dispatch group
    // size dimension ([1, 99568, 1]) must be less or equal to 65535") after the load.
    if let Some(ctx) = &ctx {
        let max_rows = ctx.device().limits().max_compute_workgroups_per_dimension as usize;
        for (flag, rows) in [("--depths", args.depths), ("--ppl-rows", args.ppl_rows)] {
            if rows > max_rows {
                bail!(
                    "{flag} {rows}: each runs as one batch of as many rows, and `{}` dispatches at most {max_rows} rows (max_compute_workgroups_per_dimension): allowed up to {max_rows}",
                    ctx.adapter_name()
                );
            }
        }
    }
    // Before the model loads. Each length's depths run as one batch, and the perplexity
    // windows as another: on a CPU adapter their KV cache and activations are this
    // machine's memory, which eval never counted (`moa generate` checks its request so), so `--depths 64` at 7680
    // tokens on SmolLM2 (≈ 11 GB of KV cache) could end in the kernel's OOM killer with
    // no message. Dense holds the largest cache of the plans scored.
    if let Some(c) = &ctx {
        let cpu = c.adapter_info().device_type == wgpu::DeviceType::Cpu;
        let storage = moa::runtime::wgpu_engine::storage_for(c, args.f32);
        let dense = Plan::dense(config.model_shape())?;
        let mut batches: Vec<(String, usize, usize)> = grid
            .lengths
            .iter()
            .map(|&l| {
                let what = format!("--depths {} at --lengths {l}", grid.depths.len());
                (what, grid.depths.len(), l as usize)
            })
            .collect();
        if args.ppl_rows > 0 {
            let what = format!("--ppl-rows {} of --ppl-length {ppl_length}", args.ppl_rows);
            batches.push((what, args.ppl_rows, ppl_length));
        }
        for (what, rows, len) in batches {
            let need = moa::runtime::memory::HostMemory::of_run(
                &config,
                &dense,
                storage,
                rows,
                len,
                rows.saturating_mul(len),
                0,
                cpu,
            );
            need.check(
                &path.display().to_string(),
                c.adapter_name(),
                moa::model::random::available_memory(),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "{what} runs as one batch of {rows} rows of {len} tokens: {e} (here: fewer --depths, shorter --lengths or fewer --ppl-rows)"
                )
            })?;
        }
    }
    // `--backend cpu` runs one row at a time, but the reference's attention holds each
    // layer's whole score matrix (scores, mask and probabilities, f32, every query head):
    // 2 GB a copy at 7680 tokens on SmolLM2. Candle's temporaries (the scaled and masked
    // copies, softmax's) hold more: round 21 measured SmolLM2's peak resident memory at
    // 0.80, 1.33 and 3.28 GB for prompts of 1034, 2058 and 4106 tokens, the weights' 0.54
    // GB plus about 4.5 copies of the matrix (3 were counted, and a run the check passed
    // could still run out); 5 are counted.
    if on_cpu {
        let longest = grid
            .lengths
            .iter()
            .map(|&l| l as usize + ANSWER_TOKENS)
            .chain((args.ppl_rows > 0).then_some(ppl_length))
            .max()
            .unwrap_or(0) as u64;
        let scores = CPU_SCORE_COPIES * 4 * config.q_heads as u64 * longest * longest;
        let weights = 4 * model::random::parameter_count(&config);
        if let Some(free) = model::random::available_memory() {
            if scores + weights > free {
                bail!(
                    "--backend cpu at {longest} tokens needs about {:.1} GB ({:.1} GB of f32 weights and {:.1} GB of attention scores, which grow with the square of the length) but {:.1} GB of memory is available: shorter --lengths or --ppl-length",
                    (scores + weights) as f64 / 1e9,
                    weights as f64 / 1e9,
                    scores as f64 / 1e9,
                    free as f64 / 1e9
                );
            }
        }
    }
    // The tokenizer, the cases and the perplexity text before the weights: an empty or
    // unreadable --ppl-text was reported after the model had loaded (5 s for SmolLM2,
    // minutes for a 7B model; round 18's leftover).
    let tokenizer = match early_tokenizer {
        Some(t) => t,
        None => ModelTokenizer::load(&path)?,
    };
    let mut cases: Vec<Vec<Case>> = Vec::new();
    for &f in &families {
        let built = build_cases(f, &grid, &tokenizer)?;
        // Round 37: past the places a short prompt has for the needle, depths landed on
        // the same token positions and the grid counted them as other depths, silently.
        let distinct = distinct_needle_positions(&built, grid.lengths.len());
        for (&length, &d) in grid.lengths.iter().zip(&distinct) {
            if d < grid.depths.len() {
                eprintln!(
                    "moa eval: note: at --lengths {length} the {} needle lands at {d} distinct token positions for the {} --depths (a prompt this short has fewer places for it), so {} of its cases repeat a position with another key; fewer --depths or longer --lengths give distinct depths",
                    f.name(),
                    grid.depths.len(),
                    grid.depths.len() - d
                );
            }
        }
        cases.push(built);
    }
    let ppl_windows = if args.ppl_rows == 0 {
        None
    } else {
        // The default texts are built in: read from the working directory, they made
        // `moa eval` fail ("cannot read `docs/DESIGN.md`") anywhere but the repository root.
        let builtin = [
            ("docs/DESIGN.md", DEFAULT_PPL_TEXTS[0]),
            ("README.md", DEFAULT_PPL_TEXTS[1]),
        ];
        let mut files = Vec::new();
        let mut text = String::new();
        if args.ppl_text.is_empty() {
            for (name, t) in builtin {
                files.push(PathBuf::from(name));
                text.push_str(&moa::input::document_text(t));
                text.push_str("\n\n");
            }
        }
        for f in &args.ppl_text {
            files.push(f.clone());
            let body = moa::input::read_to_string(f, "perplexity text", moa::input::MAX_DATA_BYTES)
                .with_context(|| format!("--ppl-text: cannot read `{}`", f.display()))?;
            // An empty file was reported as "the perplexity text has 1 tokens", naming no
            // file (round 18).
            if body.trim().is_empty() {
                anyhow::bail!(
                    "--ppl-text `{}` is empty: give held-out prose (documentation, a book), or --ppl-rows 0 to skip perplexity",
                    f.display()
                );
            }
            // Line ends as a text file's: CRLF (Notepad), a missing final newline or
            // blank lines at the end gave other tokens, so another perplexity, than the
            // same prose saved on Linux (round 24). The separator is as before, so a file
            // with one final LF (and the built-in texts) gives the tokens it gave.
            text.push_str(&moa::input::document_text(&body));
            text.push_str("\n\n");
        }
        let tokens = tokenizer.encode(&text)?;
        let windows = text_windows(&tokens, ppl_length, args.ppl_rows).map_err(|e| {
            let shown: Vec<String> = files.iter().map(|f| format!("`{}`", f.display())).collect();
            anyhow::anyhow!("{e} (the text of {})", shown.join(", "))
        })?;
        // Round 37: a short text spreads the windows over it overlapping, and where their
        // starts are fewer than --ppl-scored tokens apart the same tokens were scored in
        // several windows, silently: `--ppl-rows 8` over a text one window long scored one
        // window's tokens eight times, and the report said 8 windows. Said, with the count.
        let distinct = distinct_scored(tokens.len(), ppl_length, windows.len(), ppl_scored);
        let scored = windows.len() * ppl_scored;
        if distinct < scored {
            eprintln!(
                "moa eval: note: the perplexity text has {} tokens, so the {} windows of --ppl-length {ppl_length} overlap and their last --ppl-scored {} tokens score {distinct} distinct tokens, not {scored} (some are counted in several windows); give more text (--ppl-text), fewer --ppl-rows or a smaller --ppl-scored",
                tokens.len(),
                windows.len(),
                ppl_scored
            );
        }
        Some((windows, files))
    };
    // A prompt past what the adapter's prefill holds a row (its K and V are bound whole)
    // was refused by the engine only after the load (round 45: --lengths 12000 of the
    // Llama-3.2-3B shape on lavapipe, 21 s and 4.4 GB for two of its layers).
    if let Some(c) = &ctx {
        let storage = moa::runtime::wgpu_engine::storage_for(c, args.f32);
        let limit = super::prefill_row_limit(c, &config, storage)?;
        for (fi, f) in families.iter().enumerate() {
            for (li, &length) in grid.lengths.iter().enumerate() {
                let longest = cases[fi]
                    .iter()
                    .filter(|c| c.length_index == li)
                    .map(|c| c.prompt.len())
                    .max()
                    .unwrap_or(0);
                if longest > limit.tokens {
                    anyhow::bail!(
                        "--lengths {length}: its {} prompts take up to {longest} tokens before the answer, and {}; give shorter --lengths, whose prompts take at most {} tokens (about --lengths {} or less: a length's prompts are built anew, and their tokens vary by a few), or --backend cpu",
                        f.name(),
                        limit.why(c, &config, storage),
                        limit.tokens,
                        (length as usize).saturating_sub(longest - limit.tokens + 32)
                    );
                }
            }
        }
        // The wgpu engine scores a window's last --ppl-scored tokens by decode steps after
        // a prefill of the rest.
        let prefilled = ppl_length.saturating_sub(ppl_scored);
        if ppl_windows.is_some() && prefilled > limit.tokens {
            anyhow::bail!(
                "--ppl-length {ppl_length} prefills {prefilled} tokens a window (the last --ppl-scored {ppl_scored} are decoded), and {}; give --ppl-length of at most {} (or --backend cpu)",
                limit.why(c, &config, storage),
                limit.tokens + ppl_scored
            );
        }
    }
    let model = Model::load(&path)?;
    let config = model.config.clone();
    // `--backend cpu`: one reference for every plan (the masks are per call), which takes
    // the weights (a copy would double a 7B model's 28 GB).
    let (model, reference) = if on_cpu {
        (None, Some(CpuReference::from_model(model)?))
    } else {
        (Some(model), None)
    };

    let device = match &ctx {
        Some(ctx) => format!("{} ({:?})", ctx.adapter_name(), ctx.backend()),
        None if on_cpu => "the CPU reference (f32)".into(),
        None => "the CUDA engine".into(),
    };
    eprintln!(
        "moa eval: {} × {} × {} × {} on {device}",
        counted(plans.len(), "plan"),
        match families.len() {
            1 => "1 family".to_string(),
            n => format!("{n} families"),
        },
        counted(grid.lengths.len(), "length"),
        counted(grid.depths.len(), "depth"),
    );
    // Work in multiply-adds (moa::eval::work): a perplexity batch at --ppl-length is many
    // times a short retrieval batch (round 17: 8 min against 2–18 s on lavapipe), and the
    // ETA's two rates, retrieval and perplexity, are each measured from their own items.
    let cost = ForwardCost::of(&config);
    let retrieval_work = |plan: Option<&Plan>, batch: &[&Case]| -> f64 {
        let n = batch.iter().map(|c| c.prompt.len()).max().unwrap_or(0) + ANSWER_TOKENS;
        let span = mean_span(plan, n as u32);
        batch
            .iter()
            .map(|c| {
                let len = c.prompt.len();
                cost.prefill(1, len, span, 1) + cost.decode(1, len, ANSWER_TOKENS - 1, span)
            })
            .sum()
    };
    let ppl_work = |plan: Option<&Plan>, rows: usize| -> f64 {
        let (len, scored) = (ppl_length, ppl_scored);
        let span = mean_span(plan, len as u32);
        let by_decode = cost.prefill(rows, len - scored, span, 1)
            + cost.decode(rows, len - scored, scored - 1, span);
        let by_prefill = cost.prefill(rows, len - 1, span, scored);
        match (ctx.is_some(), args.ppl_method.as_str()) {
            (false, "prefill") => by_prefill,
            (false, "both") => by_prefill + by_decode,
            _ => by_decode,
        }
    };
    let batch_of = |fi: usize, li: usize| -> Vec<&Case> {
        cases[fi].iter().filter(|c| c.length_index == li).collect()
    };
    let (mut retrieval_total, mut ppl_total) = (0.0, 0.0);
    for (_, plan) in &plans {
        for fi in 0..families.len() {
            for li in 0..grid.lengths.len() {
                retrieval_total += retrieval_work(plan.as_ref(), &batch_of(fi, li));
            }
        }
        if let Some((windows, _)) = &ppl_windows {
            ppl_total += ppl_work(plan.as_ref(), windows.len());
        }
    }
    let items_per_plan = grid.lengths.len() * families.len() + usize::from(ppl_windows.is_some());
    let mut progress = Progress::with_kinds(
        plans.len() * items_per_plan,
        &[retrieval_total, ppl_total],
        !args.quiet,
    );
    progress.redraw_every(std::time::Duration::from_secs(1));
    let mut results = earlier;
    let mut report = EvalReport {
        model: path.display().to_string(),
        backend: String::new(),
        grid: grid.clone(),
        perplexity_setup: ppl_windows.as_ref().map(|(w, files)| {
            (
                w.len(),
                ppl_length,
                ppl_scored,
                files.iter().map(|f| f.display().to_string()).collect(),
            )
        }),
        plans: Vec::new(),
        seconds: 0.0,
        perplexity_check: Vec::new(),
    };
    let merge_name = || args.merge.as_ref().map(|m| m.display().to_string());
    if let (Some((_, setup)), Some(m)) = (&merged_setup, merge_name()) {
        if *setup != report.perplexity_setup {
            // As the flags that set it (round 43: Rust's `Some((2, 1024, 256, [...]))`).
            let shown = |s: &Option<(usize, usize, usize, Vec<String>)>| {
                match s {
                None => "no perplexity (--ppl-rows 0)".to_string(),
                Some((rows, length, scored, texts)) => format!(
                    "--ppl-rows {rows}, --ppl-length {length}, --ppl-scored {scored} over the text of {}",
                    texts.join(", ")
                ),
            }
            };
            bail!(
                "--merge: `{m}` measured perplexity with {}; this run: {}: give the same --ppl-rows, --ppl-length, --ppl-scored and --ppl-text",
                shown(setup),
                shown(&report.perplexity_setup)
            );
        }
    }
    for (name, plan) in &plans {
        let gpu = match (&ctx, &reference, &model) {
            (_, Some(r), _) => Gpu::Cpu(r),
            (Some(ctx), None, Some(model)) => {
                Gpu::Wgpu(WgpuEngine::new(ctx, model, plan.as_ref(), args.f32)?)
            }
            (None, None, Some(model)) => {
                let storage = if args.f32 {
                    StorageType::F32
                } else {
                    StorageType::Bf16
                };
                Gpu::Cuda(CudaLlama::new(model, plan.as_ref(), storage, 0)?)
            }
            (_, None, None) => unreachable!("the model is kept where no reference took it"),
        };
        report.backend = match (&ctx, gpu.engine()) {
            (_, None) => "cpu reference (candle), f32".into(),
            (Some(ctx), Some(engine)) => format!(
                "wgpu {} ({:?}), {}",
                ctx.adapter_name(),
                ctx.backend(),
                engine.storage().name()
            ),
            (None, Some(engine)) => format!(
                "{}, {}, perplexity by {}",
                engine.describe(),
                engine.storage().name(),
                if args.ppl_method == "decode" {
                    "decode steps"
                } else {
                    "prefill"
                }
            ),
        };
        if let (Some((backend, _)), Some(m)) = (&merged_setup, merge_name()) {
            if *backend != report.backend {
                bail!(
                    "--merge: `{m}` was scored on `{backend}`; this run on `{}`: one report holds one backend's results",
                    report.backend
                );
            }
        }
        let kv_density = grid
            .lengths
            .iter()
            .map(|&l| {
                plan.as_ref()
                    .map_or(1.0, |p| plan_stats(p, l, 2).kv_density)
            })
            .collect();
        let mut retrieval = Vec::new();
        for (fi, &family) in families.iter().enumerate() {
            let mut correct = vec![vec![false; grid.depths.len()]; grid.lengths.len()];
            let mut answers = vec![vec![String::new(); grid.depths.len()]; grid.lengths.len()];
            for (li, &length) in grid.lengths.iter().enumerate() {
                let batch = batch_of(fi, li);
                let work = retrieval_work(plan.as_ref(), &batch);
                progress.start_item_of(
                    RETRIEVAL,
                    work,
                    &format!("{name}: {} at {length} tokens", family.name()),
                );
                let prompts: Vec<Vec<u32>> = batch.iter().map(|c| c.prompt.clone()).collect();
                let outs = gpu
                    .greedy_batch(plan.as_ref(), &prompts)
                    .with_context(|| format!("{name}: {} at {length} tokens", family.name()))?;
                for (c, o) in batch.iter().zip(&outs) {
                    let text = tokenizer.decode(o, true)?;
                    correct[li][c.depth_index] = moa::eval::retrieval::is_correct(&text, &c.key);
                    answers[li][c.depth_index] = text;
                }
                let n = correct[li].iter().filter(|&&c| c).count();
                progress.finish_item(
                    work,
                    &format!(
                        "{name}: {} at {length} tokens: {n}/{}",
                        family.name(),
                        grid.depths.len()
                    ),
                );
            }
            retrieval.push(FamilyGrid {
                family,
                correct,
                answers,
            });
        }
        let mut ppl_nats = Vec::new();
        let ppl = match &ppl_windows {
            Some((windows, _)) => {
                let work = ppl_work(plan.as_ref(), windows.len());
                progress.start_item_of(PERPLEXITY, work, &format!("{name}: perplexity"));
                let vocab = config.vocab_size;
                let per = match (&gpu, args.ppl_method.as_str()) {
                    (Gpu::Cuda(c), "prefill" | "both") => {
                        let fast = window_token_nats_prefill(c, windows, ppl_scored, vocab)?;
                        if args.ppl_method == "both" {
                            let slow = window_token_nats(c, windows, ppl_scored, vocab)?;
                            let check = PerplexityCheck::new(name, &fast, &slow);
                            eprintln!(
                                "moa eval: perplexity by prefill vs by decode steps: {check}"
                            );
                            report.perplexity_check.push(check);
                        }
                        fast
                    }
                    (Gpu::Cpu(r), _) => {
                        cpu_window_token_nats(r, plan.as_ref(), windows, ppl_scored, vocab)?
                    }
                    (Gpu::Wgpu(e), _) => window_token_nats(e, windows, ppl_scored, vocab)?,
                    (Gpu::Cuda(e), _) => window_token_nats(e, windows, ppl_scored, vocab)?,
                };
                let nats: f64 = per.iter().flatten().map(|&x| f64::from(x)).sum();
                let scored: usize = per.iter().map(Vec::len).sum();
                let p = perplexity(nats, scored);
                ppl_nats = per;
                // As the table shows it: e^<mean nats> where the perplexity overflows f64
                // (a random-weight model's; the progress line read `inf`, round 46).
                let shown = if p.is_finite() || scored == 0 {
                    moa::eval::retrieval::fmt_perplexity(p)
                } else {
                    format!("e^{:.1}", nats / scored as f64)
                };
                progress.finish_item(work, &format!("{name}: perplexity {shown}"));
                Some(p)
            }
            None => None,
        };
        results.push(PlanResult {
            name: name.clone(),
            kv_density,
            retrieval,
            perplexity: ppl,
            perplexity_nats: ppl_nats,
            effective_context: Vec::new(),
            masking: Some(moa::eval::masking_key(plan.as_ref())),
        });
        // Written after every plan: a run stopped early keeps what it measured.
        report.plans = results.clone();
        report.seconds = t0.elapsed().as_secs_f64();
        write_outputs(&args, &mut report, false)?;
    }
    report.plans = results;
    report.seconds = t0.elapsed().as_secs_f64();
    let md = write_outputs(&args, &mut report, true)?;
    // A report sent to standard output (`--json -`, `--json /dev/stdout`) is all that goes
    // there: the markdown after it made the JSON unparseable (round 36).
    let report_on_stdout = [&args.json, &args.markdown]
        .into_iter()
        .flatten()
        .any(|p| super::is_stdout(p));
    if !report_on_stdout {
        out!("{md}");
    }
    eprintln!("moa eval: done in {}", fmt_duration(progress.elapsed()));
    Ok(ExitCode::SUCCESS)
}

/// The engine a plan is scored on. One value a run, on the stack of `run`: the variants'
/// sizes (~1.3 KiB each, differing by ~200 bytes as the engines' option structs grow) do
/// not matter.
#[allow(clippy::large_enum_variant)]
enum Gpu<'a> {
    Wgpu(WgpuEngine),
    Cuda(CudaLlama),
    /// `--backend cpu`: the CPU reference, shared by every plan.
    Cpu(&'a CpuReference),
}

impl Gpu<'_> {
    /// The GPU engine; `None` for the CPU reference.
    fn engine(&self) -> Option<&dyn Engine> {
        match self {
            Gpu::Wgpu(e) => Some(e),
            Gpu::Cuda(e) => Some(e),
            Gpu::Cpu(_) => None,
        }
    }

    /// [`greedy_batch`]: `ANSWER_TOKENS` greedy tokens after each prompt, no stop token.
    /// The CPU reference runs the rows one after another at the N a GPU request of the
    /// whole batch gets (longest prompt + `ANSWER_TOKENS`, `Engine::start`), so a plan's
    /// masks are the ones the GPU engines apply.
    fn greedy_batch(
        &self,
        plan: Option<&Plan>,
        prompts: &[Vec<u32>],
    ) -> anyhow::Result<Vec<Vec<u32>>> {
        let Gpu::Cpu(r) = self else {
            let engine = self.engine().expect("a GPU engine");
            return Ok(greedy_batch(engine, prompts, ANSWER_TOKENS)?);
        };
        let n = prompts.iter().map(Vec::len).max().unwrap_or(0) + ANSWER_TOKENS;
        let masking = masking_at(plan, n)?;
        prompts
            .iter()
            .map(|p| Ok(r.generate(p, ANSWER_TOKENS, masking, &[])?))
            .collect()
    }
}

/// The CPU reference's masks for a plan (dense without one) at a request's N.
fn masking_at(plan: Option<&Plan>, n: usize) -> anyhow::Result<Masking<'_>> {
    let n_tokens = u32::try_from(n).context("the request's N does not fit 32 bits")?;
    Ok(Masking::of(plan, n_tokens))
}

/// [`window_token_nats`] on the CPU reference: each window's first `len − 1` tokens in
/// one forward pass at N = `len` (what a GPU request of `len − scored` prompt tokens and
/// `scored` new ones gets), the logits of the last `scored` positions scoring the
/// window's last `scored` tokens.
fn cpu_window_token_nats(
    r: &CpuReference,
    plan: Option<&Plan>,
    windows: &[Vec<u32>],
    scored: usize,
    vocab: usize,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let len = window_len(windows, scored)?;
    let masking = masking_at(plan, len)?;
    windows
        .iter()
        .map(|w| {
            let logits = r.forward_rows(&w[..len - 1], masking, len - 1 - scored..len - 1)?;
            Ok(logits
                .data
                .chunks_exact(vocab)
                .zip(&w[len - scored..])
                .map(|(row, &t)| moa::eval::cross_entropy(row, t as usize) as f32)
                .collect())
        })
        .collect()
}

/// How many distinct text positions the scored tails (the last `scored` tokens) of
/// [`text_windows`]' `rows` windows of `window` tokens over `len` tokens cover: each window
/// starts at `(len - window) * r / (rows - 1)`, as there.
fn distinct_scored(len: usize, window: usize, rows: usize, scored: usize) -> usize {
    let span = len.saturating_sub(window);
    let mut covered = 0;
    let mut end_prev = 0;
    for r in 0..rows.max(1) {
        let start = if rows <= 1 { 0 } else { span * r / (rows - 1) };
        let (lo, hi) = (start + window - scored.min(window), start + window);
        covered += hi - lo.max(end_prev).min(hi);
        end_prev = end_prev.max(hi);
    }
    covered
}

/// Whether `MOA_WGPU_QUANT_WEIGHTS=1` is set: through the wgpu engine's own parse where that
/// engine runs (`wgpu`: a bad value of any of its settings is refused here, before the
/// load), else by the value alone (the other back ends read none of those settings).
pub(crate) fn quant_weights_asked(wgpu: bool) -> anyhow::Result<bool> {
    if wgpu {
        let options = moa::runtime::wgpu_engine::WgpuEngineOptions::from_env()?;
        return Ok(options.quant_weights == Some(true));
    }
    Ok(std::env::var("MOA_WGPU_QUANT_WEIGHTS").is_ok_and(|v| v.trim() == "1"))
}
