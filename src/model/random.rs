//! Models of a real shape with random weights: for benchmarks and parity tests of shapes
//! whose real weights cannot be had (7B weights cannot travel to the GPU machine; the
//! CUDA engine can also make them on the device, `CudaLlama::random`).

#![warn(missing_docs)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{LlamaConfig, RopeScaling};
use super::weights::{HostTensor, LayerWeights, Weights};
use super::{Model, ModelError, ModelFormat, SpecialTokens};

/// Names accepted by [`like`].
pub const SHAPES: &[&str] = &[
    "smollm2-135m",
    "llama-2-7b",
    "llama-3-8b",
    "llama-3.2-1b",
    "llama-3.2-3b",
];

/// The shape of a known model:
/// * `smollm2-135m`: HuggingFaceTB/SmolLM2-135M (30 layers, 9 query / 3 KV heads of 64).
/// * `llama-3.2-1b`: Llama-3.2-1B (16 layers, 32 query / 8 KV heads of 64, tied embedding
///   of 128256 x 2048: over a 128 MiB storage binding in f16, and its `llama3` RoPE
///   scaling: factor 32, low 1, high 4, original context 8192), the upstream plan's shape.
/// * `llama-3.2-3b`: Llama-3.2-3B (28 layers, 24 query / 8 KV heads of 128, hidden 3072,
///   ffn 8192, the 1B's tied 128256-token embedding and `llama3` RoPE scaling), the shape of
///   the fixtures' second upstream Llama-3.2 plan.
/// * `llama-2-7b`: Llama-2-7B (32 layers, 32 heads of 128, MHA), with the 16k context of
///   lmsys/vicuna-7b-v1.5-16k, whose upstream MoA plan is in the fixtures.
/// * `llama-3-8b`: Llama-3-8B (32 layers, 32 query / 8 KV heads of 128), with the 262k
///   context of gradientai/Llama-3-8B-Instruct-262k (the fixtures' upstream plan).
///
/// Returns `None` for another name (the allowed names are [`SHAPES`]).
pub fn like(name: &str) -> Option<LlamaConfig> {
    let base = |name: &str| LlamaConfig {
        name: Some(format!("random {name}")),
        n_layers: 32,
        hidden_size: 4096,
        ffn_size: 11008,
        q_heads: 32,
        kv_heads: 32,
        head_dim: 128,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: 32_000,
        tied_embeddings: false,
        context_length: 16_384,
    };
    match name {
        "smollm2-135m" => Some(LlamaConfig {
            n_layers: 30,
            hidden_size: 576,
            ffn_size: 1536,
            q_heads: 9,
            kv_heads: 3,
            head_dim: 64,
            rope_theta: 100_000.0,
            rope_scaling: None,
            vocab_size: 49_152,
            tied_embeddings: true,
            context_length: 8192,
            ..base(name)
        }),
        "llama-3.2-1b" => Some(LlamaConfig {
            n_layers: 16,
            hidden_size: 2048,
            ffn_size: 8192,
            kv_heads: 8,
            head_dim: 64,
            rope_theta: 500_000.0,
            // As the real model's config.json: a random 1B runs the scaled RoPE path.
            rope_scaling: Some(RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_context: 8192.0,
            }),
            vocab_size: 128_256,
            tied_embeddings: true,
            context_length: 131_072,
            ..base(name)
        }),
        "llama-3.2-3b" => Some(LlamaConfig {
            n_layers: 28,
            hidden_size: 3072,
            ffn_size: 8192,
            q_heads: 24,
            kv_heads: 8,
            head_dim: 128,
            name: Some(format!("random {name}")),
            ..like("llama-3.2-1b")?
        }),
        "llama-2-7b" => Some(base(name)),
        "llama-3-8b" => Some(LlamaConfig {
            ffn_size: 14_336,
            kv_heads: 8,
            rope_theta: 500_000.0,
            rope_scaling: None,
            vocab_size: 128_256,
            context_length: 262_144,
            ..base(name)
        }),
        _ => None,
    }
}

/// [`like`], or an error naming the allowed shapes.
pub fn like_or_err(name: &str) -> Result<LlamaConfig, ModelError> {
    like(name).ok_or_else(|| {
        ModelError::Invalid(format!(
            "unknown model shape `{name}`: allowed {}",
            SHAPES.join(", ")
        ))
    })
}

/// The element type of the weights [`write_hf_folder_as`] writes (`--dtype`); the
/// loader reads each back into f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightDtype {
    /// bfloat16, what the real Llama checkpoints ship in (2 bytes an element).
    #[default]
    Bf16,
    /// IEEE half (2 bytes an element).
    F16,
    /// IEEE single (4 bytes an element): the random weights as drawn.
    F32,
}

impl WeightDtype {
    /// The `--dtype` names, in [`WeightDtype::parse`]'s spelling.
    pub const NAMES: &'static [&'static str] = &["bf16", "f16", "f32"];

    /// `bf16`, `f16` or `f32`; `None` for another name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "bf16" => Some(Self::Bf16),
            "f16" => Some(Self::F16),
            "f32" => Some(Self::F32),
            _ => None,
        }
    }

    /// Bytes of one element.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Bf16 | Self::F16 => 2,
            Self::F32 => 4,
        }
    }

    /// config.json's `torch_dtype` (`bfloat16`, `float16`, `float32`).
    pub fn torch_dtype(self) -> &'static str {
        match self {
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
            Self::F32 => "float32",
        }
    }

    fn candle(self) -> candle_core::DType {
        match self {
            Self::Bf16 => candle_core::DType::BF16,
            Self::F16 => candle_core::DType::F16,
            Self::F32 => candle_core::DType::F32,
        }
    }
}

/// Changes to a [`like`] shape (`moa model random --layers … --untied | --tied`); `None` keeps the
/// base's value. Sizes are counts of elements (or tokens, for `vocab` and `context`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeOverrides {
    /// Decoder layers (`--layers`): 1..=[`crate::plan::MAX_LAYERS`].
    pub layers: Option<u64>,
    /// Residual width (`--hidden`): 1 or more.
    pub hidden: Option<u64>,
    /// Query heads (`--heads`): 1..=[`crate::plan::MAX_HEADS`].
    pub heads: Option<u64>,
    /// KV heads (`--kv-heads`): a divisor of the query heads.
    pub kv_heads: Option<u64>,
    /// Elements of a head (`--head-dim`): a multiple of 4 in 4..=[`crate::plan::MAX_HEAD_DIM`].
    /// Unset while `hidden` or `heads` is set: `hidden / heads`, transformers' default.
    pub head_dim: Option<u64>,
    /// Inner size of the SwiGLU MLP (`--intermediate`): 1 or more.
    pub intermediate: Option<u64>,
    /// Vocabulary in tokens (`--vocab`): [`BYTE_VOCAB`] or more, the byte-level tokenizer's.
    pub vocab: Option<u64>,
    /// Context length in tokens (`--context`): 1..=[`crate::plan::MAX_CONTEXT_TOKENS`].
    pub context: Option<u64>,
    /// Tied (`true`, `--tied`: no `lm_head.weight`) or separate (`false`, `--untied`: an
    /// `lm_head.weight`) output layer.
    pub tied: Option<bool>,
}

impl ShapeOverrides {
    /// Whether any value is set.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// The most parameters [`shape_with`] takes: 2^40 (1.1 trillion, 4.4 TB in f32), far past
/// what a machine can draw in memory, so that a typo's size is named as such.
pub const MAX_PARAMETERS: u64 = 1 << 40;

/// The shape `like` (one of [`SHAPES`]) with `o` applied, checked so that the folder
/// [`write_hf_folder_as`] writes loads and runs: each bad value is refused by its flag, the
/// value and the allowed range (`--kv-heads 4 does not divide --heads 9 (divisors: 1, 3,
/// 9)`), and a shape whose bytes overflow a u64 or whose parameters pass
/// [`MAX_PARAMETERS`] is refused. Errors are [`ModelError::Invalid`].
pub fn shape_with(like: &str, o: &ShapeOverrides) -> Result<LlamaConfig, ModelError> {
    use crate::plan::{MAX_CONTEXT_TOKENS, MAX_HEADS, MAX_HEAD_DIM, MAX_LAYERS};
    let base = like_or_err(like)?;
    fn bad<T>(message: String) -> Result<T, ModelError> {
        Err(ModelError::Invalid(message))
    }
    // `--heads 9`, or `--heads 9 (--like smollm2-135m's)` where the flag was not given.
    let shown = |flag: &str, given: Option<u64>, v: u64| match given {
        Some(_) => format!("{flag} {v}"),
        None => format!("{flag} {v} (--like {like}'s)"),
    };
    let ranged = |flag: &str, v: Option<u64>, lo: u64, hi: u64| -> Result<(), ModelError> {
        match v {
            Some(v) if v < lo || v > hi => {
                let hi = if hi == u64::MAX {
                    format!("{lo} or more")
                } else {
                    format!("{lo}..={hi}")
                };
                bad(format!("{flag} {v} is out of range: allowed {hi}"))
            }
            _ => Ok(()),
        }
    };
    ranged("--layers", o.layers, 1, u64::from(MAX_LAYERS))?;
    ranged("--heads", o.heads, 1, u64::from(MAX_HEADS))?;
    ranged("--kv-heads", o.kv_heads, 1, u64::from(MAX_HEADS))?;
    ranged("--hidden", o.hidden, 1, u64::MAX)?;
    ranged("--intermediate", o.intermediate, 1, u64::MAX)?;
    ranged("--context", o.context, 1, u64::from(MAX_CONTEXT_TOKENS))?;
    if let Some(v) = o.vocab.filter(|&v| v < BYTE_VOCAB as u64) {
        return bad(format!(
            "--vocab {v} is below {BYTE_VOCAB}: the byte-level tokenizer's 3 special tokens and \
             256 bytes need ids (allowed {BYTE_VOCAB} or more)"
        ));
    }
    let u = |v: usize| v as u64;
    let hidden = o.hidden.unwrap_or(u(base.hidden_size));
    let heads = o.heads.unwrap_or(u(base.q_heads));
    let kv_heads = o.kv_heads.unwrap_or(u(base.kv_heads));
    if !heads.is_multiple_of(kv_heads) {
        let divisors: Vec<String> = (1..=heads)
            .filter(|d| heads.is_multiple_of(*d))
            .map(|d| d.to_string())
            .collect();
        return bad(format!(
            "{} does not divide {} (divisors: {}): every KV head serves the same number of \
             query heads{}",
            shown("--kv-heads", o.kv_heads, kv_heads),
            shown("--heads", o.heads, heads),
            divisors.join(", "),
            if o.kv_heads.is_none() {
                "; give --kv-heads"
            } else {
                ""
            }
        ));
    }
    // As transformers reads a config.json without `head_dim`: hidden / heads, where the
    // user changed either and gave no head size.
    let head_dim = match o.head_dim {
        Some(d) => d,
        None if o.hidden.is_some() || o.heads.is_some() => {
            if !hidden.is_multiple_of(heads) {
                return bad(format!(
                    "{} is not a multiple of {}, so the head size hidden / heads is not whole: \
                     give --head-dim (a multiple of 4 in 4..={MAX_HEAD_DIM})",
                    shown("--hidden", o.hidden, hidden),
                    shown("--heads", o.heads, heads)
                ));
            }
            hidden / heads
        }
        None => u(base.head_dim),
    };
    let head_flag = match o.head_dim {
        Some(_) => format!("--head-dim {head_dim}"),
        None => format!("the head size {head_dim} (--hidden / --heads; give --head-dim)"),
    };
    if !head_dim.is_multiple_of(2) {
        return bad(format!(
            "{head_flag} is odd: RoPE rotates pairs of elements (allowed a multiple of 4 in \
             4..={MAX_HEAD_DIM})"
        ));
    }
    if !head_dim.is_multiple_of(4) {
        return bad(format!(
            "{head_flag} is not a multiple of 4: moa's kernels load keys as 4-wide vectors \
             (allowed a multiple of 4 in 4..={MAX_HEAD_DIM})"
        ));
    }
    if !(4..=u64::from(MAX_HEAD_DIM)).contains(&head_dim) {
        return bad(format!(
            "{head_flag} is out of range: allowed a multiple of 4 in 4..={MAX_HEAD_DIM}, the \
             head sizes moa's plans and kernels take"
        ));
    }
    let layers = o.layers.unwrap_or(u(base.n_layers));
    let ffn = o.intermediate.unwrap_or(u(base.ffn_size));
    let vocab = o.vocab.unwrap_or(u(base.vocab_size));
    let tied = o.tied.unwrap_or(base.tied_embeddings);
    // Checked: each size may be up to u64::MAX. The f32 weights in memory (4 bytes a
    // parameter) and their copy being written (at most 4 more) must count in a u64.
    let w = u128::from;
    let params = (|| {
        let (q, kv) = (w(heads) * w(head_dim), w(kv_heads) * w(head_dim));
        let h = w(hidden);
        let layer = (2 * h)
            .checked_add(2 * q.checked_mul(h)?)?
            .checked_add(2 * kv.checked_mul(h)?)?
            .checked_add(w(ffn).checked_mul(h)?.checked_mul(3)?)?;
        let embeddings = w(vocab)
            .checked_mul(h)?
            .checked_mul(if tied { 1 } else { 2 })?;
        embeddings
            .checked_add(h)?
            .checked_add(w(layers).checked_mul(layer)?)?
            .checked_mul(8)
            .filter(|&b| b <= w(u64::MAX))
            .map(|b| b / 8)
    })();
    let sizes = format!(
        "--layers {layers}, --hidden {hidden}, --heads {heads}, --head-dim {head_dim}, \
         --intermediate {ffn}, --vocab {vocab}"
    );
    let Some(params) = params else {
        return bad(format!(
            "{sizes}: the weights' byte count overflows a 64-bit number; give smaller sizes"
        ));
    };
    if params > w(MAX_PARAMETERS) {
        return bad(format!(
            "{sizes}: {params} parameters, over moa model random's limit of {MAX_PARAMETERS} \
             (2^40); give smaller sizes"
        ));
    }
    let n = |v: u64| v as usize;
    Ok(LlamaConfig {
        n_layers: n(layers),
        hidden_size: n(hidden),
        ffn_size: n(ffn),
        q_heads: n(heads),
        kv_heads: n(kv_heads),
        head_dim: n(head_dim),
        vocab_size: n(vocab),
        tied_embeddings: tied,
        context_length: o.context.map_or(base.context_length, n),
        ..base
    })
}

/// Random weights of `config`'s shape from `seed`: matrices uniform in ±1/√fan-in (so
/// activations keep their scale through the layers), norms 1, the embedding uniform in ±1.
pub fn random_weights(config: &LlamaConfig, seed: u64) -> Weights {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = config;
    let mut mat = |rows: usize, cols: usize, scale: f32| HostTensor {
        shape: vec![rows, cols],
        data: (0..rows * cols)
            .map(|_| rng.random_range(-1.0f32..1.0) * scale)
            .collect(),
    };
    let ones = |n: usize| HostTensor {
        shape: vec![n],
        data: vec![1.0; n],
    };
    let h = c.hidden_size;
    let fan = |n: usize| 1.0 / (n as f32).sqrt();
    let token_embd = mat(c.vocab_size, h, 1.0);
    let layers = (0..c.n_layers)
        .map(|_| LayerWeights {
            attn_norm: ones(h),
            attn_q: mat(c.q_dim(), h, fan(h)),
            attn_k: mat(c.kv_dim(), h, fan(h)),
            attn_v: mat(c.kv_dim(), h, fan(h)),
            attn_output: mat(h, c.q_dim(), fan(c.q_dim())),
            ffn_norm: ones(h),
            ffn_gate: mat(c.ffn_size, h, fan(h)),
            ffn_up: mat(c.ffn_size, h, fan(h)),
            ffn_down: mat(h, c.ffn_size, fan(c.ffn_size)),
        })
        .collect();
    let output = (!c.tied_embeddings).then(|| mat(c.vocab_size, h, fan(h)));
    Weights {
        token_embd,
        layers,
        output_norm: ones(h),
        output,
    }
}

/// Parameters of `config`'s weights, as [`random_weights`] makes them.
pub fn parameter_count(config: &LlamaConfig) -> u64 {
    let c = config;
    let (h, q, kv, f) = (
        c.hidden_size as u64,
        c.q_dim() as u64,
        c.kv_dim() as u64,
        c.ffn_size as u64,
    );
    let layer = 2 * h + 2 * q * h + 2 * kv * h + 3 * f * h;
    let heads = if c.tied_embeddings { 1 } else { 2 };
    heads * c.vocab_size as u64 * h + h + c.n_layers as u64 * layer
}

/// Bytes of memory and of disk that writing a random model of `config` in `dtype` needs:
/// the f32 weights and their `dtype` copies while saving (6 bytes a parameter in bf16),
/// and the file (2 bytes a parameter in bf16).
pub fn room_needed(config: &LlamaConfig, dtype: WeightDtype) -> (u64, u64) {
    let p = parameter_count(config);
    let b = dtype.bytes();
    (p.saturating_mul(4 + b), p.saturating_mul(b))
}

/// Memory available to a new process in bytes (Linux `MemAvailable`), where the system
/// says; `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a random model that would not fit: the weights are made in memory in f32 (a
/// Llama-2-7B shape needs about 40 GB; past the memory available the kernel's OOM killer
/// ends the run part way, with no message), then written in `dtype` beside `dir`. `like`
/// names the base shape; `changed`: flags changed it (then `moa bench --like` is not
/// offered, which makes only the base shape).
pub fn check_room(
    config: &LlamaConfig,
    like: &str,
    changed: bool,
    dtype: WeightDtype,
    dir: &std::path::Path,
) -> Result<(), ModelError> {
    let (mem, disk) = room_needed(config, dtype);
    let gb = |b: u64| format!("{:.1} GB", b as f64 / 1e9);
    let shape = if changed {
        format!("this change of --like {like}")
    } else {
        format!("--like {like}")
    };
    let needs = format!(
        "{shape} ({:.2} billion parameters) needs about {} of memory (f32 weights and \
         their {} copies) and {} of disk",
        parameter_count(config) as f64 / 1e9,
        gb(mem),
        WeightDtype::NAMES[dtype as usize],
        gb(disk)
    );
    if let Some(avail) = available_memory().filter(|&a| a < mem) {
        let bench = if changed {
            String::new()
        } else {
            format!(", or `moa bench --like {like}` (which makes the weights on the GPU)")
        };
        return Err(ModelError::Invalid(format!(
            "{needs}; this machine has {} of memory available: use a smaller shape{bench}",
            gb(avail)
        )));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if let Some(free) = super::fetch::free_bytes(parent).filter(|&f| f < disk) {
        return Err(ModelError::Invalid(format!(
            "{needs}; `{}` has {} free",
            parent.display(),
            gb(free)
        )));
    }
    Ok(())
}

/// A random-weight model of `config`'s shape (held in memory; `path` names it in errors).
pub fn random_model(config: &LlamaConfig, seed: u64) -> Model {
    Model {
        path: format!("<random {}>", config.name.as_deref().unwrap_or("model")).into(),
        format: ModelFormat::HfFolder,
        config: config.clone(),
        weights: random_weights(config, seed),
        special: SpecialTokens::default(),
    }
}

/// The sibling folder [`write_hf_folder`] writes into before renaming it to `dir`:
/// `<dir>.partial-<pid>`, or `None` when `dir` has no last component to add to (`/`, `..`).
pub fn partial_dir(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    Some(dir.with_file_name(format!("{name}.partial-{}", std::process::id())))
}

/// Removes the `<dir>.partial-<pid>` folders that killed runs with the same `-o` left,
/// whose process has ended (never a running one's; where that cannot be told, a note
/// names them); returns the paths removed.
pub fn remove_dead_partials(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let prefix = format!("{name}.partial-");
    let pid_of = |entry: &str| {
        let pid = entry.strip_prefix(&prefix)?;
        let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| pid.parse().ok()).flatten()
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    crate::codegen::emit::remove_dead_temps(parent, pid_of, "unfinished model folders")
}

/// Writes `model` as a Hugging Face folder (`config.json`, one `model.safetensors` in bf16)
/// that `Model::load` (and transformers) read back; `dir` is created, or may be an empty
/// folder. Q/K rows are in the half-split RoPE layout, which is Hugging Face's own
/// (docs/MODEL.md).
///
/// Atomic: the files are written into [`partial_dir`] and that folder is renamed to `dir`
/// at the end, so a run killed half-way leaves no `dir` (only the `.partial-<pid>` folder,
/// without `config.json` until the weights are whole), never a cut model that a later load
/// would take, and a rerun with the same `-o` works.
pub fn write_hf_folder(model: &Model, dir: &std::path::Path) -> Result<(), ModelError> {
    write_hf_folder_as(model, dir, WeightDtype::Bf16)
}

/// [`write_hf_folder`] with the weights stored as `dtype` (config.json's `torch_dtype`
/// says which).
pub fn write_hf_folder_as(
    model: &Model,
    dir: &std::path::Path,
    dtype: WeightDtype,
) -> Result<(), ModelError> {
    let tmp = partial_dir(dir).ok_or_else(|| {
        ModelError::Invalid(format!(
            "-o `{}` names no folder to create: give a path that ends in a folder name",
            dir.display()
        ))
    })?;
    // A leftover of an earlier run of this pid (pids are reused), never someone's files.
    let _ = std::fs::remove_dir_all(&tmp);
    remove_dead_partials(dir);
    // The last step moves the finished folder to `dir`. Round 23: two runs with one new
    // `-o` at once: the second found `dir` made by the first and said "cannot read `dir`:
    // Directory not empty", of a folder it had never read.
    let not_moved = |e: std::io::Error| {
        let filled = dir.read_dir().is_ok_and(|mut d| d.next().is_some());
        ModelError::Invalid(if filled {
            format!(
                "-o `{}` was filled by another process while this run wrote its model (two \
                 runs with one -o at once?): that folder is kept as it is and nothing of this \
                 run is left; give another -o, or remove it and run again",
                dir.display()
            )
        } else {
            format!(
                "cannot move the finished model from `{}` to -o `{}`: {e} (nothing of this \
                 run is left)",
                tmp.display(),
                dir.display()
            )
        })
    };
    let written = write_hf_files(model, &tmp, dtype).and_then(|()| {
        // An empty `dir` is allowed (and `rename` cannot replace it everywhere):
        // `remove_dir` fails on a folder that holds anything, which is then not replaced.
        if dir.is_dir() {
            std::fs::remove_dir(dir).map_err(not_moved)?;
        }
        std::fs::rename(&tmp, dir).map_err(not_moved)
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

/// GPT-2's `bytes_to_unicode`: the character that stands for each byte in a byte-level
/// BPE vocabulary. Printable Latin-1 bytes stand for themselves, the others for U+0100
/// onwards in byte order.
pub fn byte_level_chars() -> [char; 256] {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 0x100;
    std::array::from_fn(|b| {
        let b = b as u32;
        let ch = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        char::from_u32(ch).expect("a Latin-1 or U+01xx code point")
    })
}

/// Tokens of [`byte_level_tokenizer_json`]: `<unk>`, `<s>` (1, the config's BOS), `</s>`
/// (2, its EOS), then the 256 bytes.
pub const BYTE_VOCAB: usize = 259;

/// A byte-level BPE `tokenizer.json` without merges: ids 0..=2 the special tokens, id
/// 3 + b byte b (GPT-2's byte-to-character map, so every UTF-8 text round-trips). One
/// token per byte: a random model's text means nothing, but lengths in tokens, prompts
/// and answers work as with a real tokenizer. Ids past 258 decode to nothing.
pub fn byte_level_tokenizer_json() -> serde_json::Value {
    let mut vocab = serde_json::Map::new();
    let special = ["<unk>", "<s>", "</s>"];
    for (id, t) in special.iter().enumerate() {
        vocab.insert((*t).into(), id.into());
    }
    for (b, ch) in (0u32..).zip(byte_level_chars()) {
        vocab.insert(ch.to_string(), (special.len() as u32 + b).into());
    }
    let added: Vec<serde_json::Value> = special
        .iter()
        .enumerate()
        .map(|(id, t)| {
            serde_json::json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []},
    })
}

/// An f32 as the f64 of its shortest decimal form: `1e-5f32` went into `config.json` as
/// `9.999999747378752e-6` (its exact f64 value), not the `1e-05` a real config holds. Both
/// read back as the same f32.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The files of [`write_hf_folder`] in `dir` (created): the weights first, then
/// [`byte_level_tokenizer_json`] (where the vocabulary holds its 259 ids), `config.json`
/// last, so a folder without `config.json` is never a whole model.
fn write_hf_files(
    model: &Model,
    dir: &std::path::Path,
    dtype: WeightDtype,
) -> Result<(), ModelError> {
    use candle_core::{Device, Tensor};
    let c = &model.config;
    std::fs::create_dir_all(dir).map_err(write_err(dir, "create"))?;
    let mut config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": c.hidden_size, "intermediate_size": c.ffn_size,
        "num_hidden_layers": c.n_layers, "num_attention_heads": c.q_heads,
        "num_key_value_heads": c.kv_heads, "head_dim": c.head_dim,
        "rope_theta": decimal(c.rope_theta), "rms_norm_eps": decimal(c.rms_norm_eps),
        "vocab_size": c.vocab_size, "tie_word_embeddings": c.tied_embeddings,
        "max_position_embeddings": c.context_length, "torch_dtype": dtype.torch_dtype(),
        "bos_token_id": 1, "eos_token_id": 2,
    });
    // transformers' spelling, which `safetensors::read_config` reads back.
    match &c.rope_scaling {
        None => {}
        Some(RopeScaling::Linear { factor }) => {
            config["rope_scaling"] = serde_json::json!({"rope_type": "linear", "factor": factor});
        }
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context,
        }) => {
            config["rope_scaling"] = serde_json::json!({"rope_type": "llama3",
                "factor": factor, "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": *original_context as u64});
        }
        Some(RopeScaling::FreqFactors(_)) => {
            return Err(ModelError::Invalid(
                "per-pair RoPE factors (GGUF `rope_freqs`) have no config.json form: \
                 a Hugging Face folder cannot hold this model"
                    .into(),
            ))
        }
    }
    let w = &model.weights;
    let mut named: Vec<(String, &HostTensor)> = vec![
        ("token_embd".into(), &w.token_embd),
        ("output_norm".into(), &w.output_norm),
    ];
    if let Some(o) = &w.output {
        named.push(("output".into(), o));
    }
    for (i, l) in w.layers.iter().enumerate() {
        for (part, t) in [
            ("attn_norm", &l.attn_norm),
            ("attn_q", &l.attn_q),
            ("attn_k", &l.attn_k),
            ("attn_v", &l.attn_v),
            ("attn_output", &l.attn_output),
            ("ffn_norm", &l.ffn_norm),
            ("ffn_gate", &l.ffn_gate),
            ("ffn_up", &l.ffn_up),
            ("ffn_down", &l.ffn_down),
        ] {
            named.push((format!("blk.{i}.{part}"), t));
        }
    }
    let mut tensors = std::collections::HashMap::new();
    for (name, t) in named {
        let x = Tensor::from_slice(&t.data, t.shape.as_slice(), &Device::Cpu)?
            .to_dtype(dtype.candle())?;
        tensors.insert(super::safetensors::hf_tensor_name(&name), x);
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights)
        .map_err(|e| ModelError::Invalid(format!("cannot write `{}`: {e}", weights.display())))?;
    // Without a tokenizer, calib, generate, eval and diagnose stopped on "cannot read
    // tokenizer.json": a random model could not go through the plan pipeline on the CPU.
    if c.vocab_size >= BYTE_VOCAB {
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, byte_level_tokenizer_json().to_string())
            .map_err(write_err(&path, "write"))?;
    }
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).map_err(write_err(&path, "write"))?;
    // The safetensors crate creates its file readable by its owner only (0600), so a
    // folder written for others to load (a shared models folder) could not be read by
    // them; it gets the permissions the umask gave config.json.
    let perms = std::fs::metadata(&path)
        .map_err(super::io_err(&path))?
        .permissions();
    std::fs::set_permissions(&weights, perms)
        .map_err(write_err(&weights, "set the permissions of"))?;
    Ok(())
}

/// A failed write, in the words of the action: [`ModelError::Io`] says "cannot read",
/// which round 24 found on `moa model random -o` in a folder the user cannot write
/// ("cannot read `…/rand.partial-24131`: Permission denied", a folder it was making).
fn write_err<'a>(
    path: &'a std::path::Path,
    action: &'a str,
) -> impl FnOnce(std::io::Error) -> ModelError + 'a {
    move |e| ModelError::Invalid(format!("cannot {action} `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_valid_and_weights_have_them() {
        for name in SHAPES {
            let c = like(name).unwrap();
            c.validate(name, crate::model::config::ConfigKeys::Fields)
                .unwrap();
        }
        let mut c = like("smollm2-135m").unwrap();
        c.n_layers = 2;
        c.vocab_size = 100;
        let w = random_weights(&c, 1);
        assert_eq!(w.layers.len(), 2);
        assert_eq!(w.layers[0].attn_k.data.len(), 3 * 64 * 576);
        assert!(w.output.is_none());
        assert_eq!(random_weights(&c, 1), w);
        let c = like("llama-3.2-3b").unwrap();
        assert_eq!(c.name.as_deref(), Some("random llama-3.2-3b"));
        assert_eq!(
            (c.n_layers, c.q_heads, c.kv_heads, c.head_dim),
            (28, 24, 8, 128)
        );
        // Llama-3.2-3B's 3.21 billion parameters (its tied embedding counted once).
        assert_eq!(parameter_count(&c), 3_212_749_824);
        assert!(like("gpt-2").is_none());
        assert!(like_or_err("gpt-2")
            .unwrap_err()
            .to_string()
            .contains("llama-3-8b"));
    }

    /// No override is the base shape itself; set ones change only their fields.
    #[test]
    fn overrides_change_only_their_fields() {
        for name in SHAPES {
            let none = ShapeOverrides::default();
            assert!(!none.any());
            assert_eq!(shape_with(name, &none).unwrap(), like(name).unwrap());
        }
        let o = ShapeOverrides {
            heads: Some(6),
            kv_heads: Some(2),
            tied: Some(false),
            ..Default::default()
        };
        let c = shape_with("smollm2-135m", &o).unwrap();
        // 576 / 6: hidden / heads where --heads is given without --head-dim.
        assert_eq!((c.q_heads, c.kv_heads, c.head_dim), (6, 2, 96));
        assert!(!c.tied_embeddings);
        assert_eq!(c.rope_theta, 100_000.0);
        c.validate("t", crate::model::config::ConfigKeys::Fields)
            .unwrap();
    }

    #[test]
    fn a_written_folder_loads_back_as_the_same_shape_in_bf16() {
        let mut c = like("llama-3-8b").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 50);
        (c.q_heads, c.kv_heads, c.head_dim) = (4, 2, 16);
        let m = random_model(&c, 3);
        let dir = std::env::temp_dir().join(format!("moa-random-{}", std::process::id()));
        write_hf_folder(&m, &dir).unwrap();
        let back = Model::load(&dir).unwrap();
        assert_eq!(back.config.kv_heads, 2);
        assert_eq!(back.config.n_layers, 2);
        let (a, b) = (
            &m.weights.layers[1].attn_k.data,
            &back.weights.layers[1].attn_k.data,
        );
        assert!(a
            .iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= x.abs() / 128.0));
        std::fs::remove_dir_all(&dir).ok();
    }

    /// What a killed run leaves (the `.partial-<pid>` folder with a cut weights file, and
    /// the empty `-o` folder the command may have been given) is not a model a load takes,
    /// and a rerun writes the whole folder over it, leaving no partial folder behind.
    #[test]
    fn a_killed_write_leaves_nothing_loadable_and_a_rerun_works() {
        let mut c = like("llama-3-8b").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (1, 32, 48, 40);
        (c.q_heads, c.kv_heads, c.head_dim) = (2, 1, 16);
        let m = random_model(&c, 5);
        let root = std::env::temp_dir().join(format!("moa-random-kill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("model");
        let partial = partial_dir(&dir).unwrap();
        // The killed run: weights cut half-way, no config.json yet.
        std::fs::create_dir_all(&partial).unwrap();
        write_hf_files(&m, &partial, WeightDtype::Bf16).unwrap();
        let w = std::fs::read(partial.join("model.safetensors")).unwrap();
        std::fs::write(partial.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
        std::fs::remove_file(partial.join("config.json")).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Model::load(&dir).is_err());
        assert!(Model::load(&partial).is_err());
        // The rerun.
        write_hf_folder(&m, &dir).unwrap();
        assert_eq!(Model::load(&dir).unwrap().config.n_layers, 1);
        assert!(!partial.exists());
        // A folder that holds a file is never replaced.
        let busy = root.join("busy");
        std::fs::create_dir_all(&busy).unwrap();
        std::fs::write(busy.join("mine.txt"), "mine").unwrap();
        assert!(write_hf_folder(&m, &busy).is_err());
        assert_eq!(
            std::fs::read_to_string(busy.join("mine.txt")).unwrap(),
            "mine"
        );
        assert!(!partial_dir(&busy).unwrap().exists());
        std::fs::remove_dir_all(&root).ok();
    }
}
