//! `moa model fetch | info | random`.

use std::fmt::Write as _;
use std::process::ExitCode;

use moa::model::{self, ChatTemplate, ModelTokenizer};

use crate::args::ModelCommand;

pub fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Fetch => {
            let outcome = model::fetch_default_model(|line| eprintln!("{line}"))?;
            outln!("{}", outcome.path.display());
        }
        ModelCommand::Random {
            like,
            output,
            seed,
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            intermediate,
            vocab,
            context,
            dtype,
            untied,
            tied,
        } => {
            let overrides = model::random::ShapeOverrides {
                layers,
                hidden,
                heads,
                kv_heads,
                head_dim,
                intermediate,
                vocab,
                context,
                // clap refuses --tied with --untied, so at most one is set.
                tied: if tied {
                    Some(true)
                } else {
                    untied.then_some(false)
                },
            };
            // clap allows only these names.
            let dtype = model::random::WeightDtype::parse(&dtype).unwrap_or_default();
            // `-o` names the folder to write. A file there (a GGUF given by habit, a plan)
            // was described as a folder whose config.json and model.safetensors "would be
            // replaced": say what it is.
            if output.exists() && !output.is_dir() {
                anyhow::bail!(
                    "-o `{}` is a file, not a folder: moa model random writes a new folder \
                     (config.json, model.safetensors, tokenizer.json); give a path that does \
                     not exist or an empty folder",
                    output.display()
                );
            }
            // Never over a model that is there: `-o` pointed at a real model's folder would
            // replace its config.json and model.safetensors with random weights.
            // What is there, named in the refusal (round 25: a folder holding
            // tokenizer.json and a README was said to have a config.json and weights that
            // "would be replaced").
            let found: Vec<String> = match std::fs::read_dir(&output) {
                Ok(entries) => {
                    let mut names: Vec<String> = entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().escape_debug().to_string())
                        .collect();
                    names.sort();
                    names
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                // A folder that cannot be listed, or a path through a file (`model.gguf/x`):
                // the OS's reason, not "is not an empty folder".
                Err(e) => anyhow::bail!("-o `{}`: {e}", output.display()),
            };
            if !found.is_empty() {
                // config.json is written last: weights without it are a run stopped
                // part-way (a kill during a 13 GB write), which a user retries.
                let stopped = output.join("model.safetensors").exists()
                    && !output.join("config.json").exists();
                let shown = found.len().min(4);
                let more = if found.len() > shown {
                    format!(" and {} more", found.len() - shown)
                } else {
                    String::new()
                };
                anyhow::bail!(
                    "-o `{}` exists and is not an empty folder: moa model random writes a new one (config.json, model.safetensors, tokenizer.json) and never into a folder that holds files (this one holds {}{more}){}",
                    output.display(),
                    found[..shown].join(", "),
                    if stopped {
                        "; it holds model.safetensors but no config.json, as a `moa model \
                         random` stopped part-way leaves it: delete the folder and run again"
                    } else {
                        ""
                    }
                );
            }
            // Every flag checked before any file (even the probe below) is made.
            let config = model::random::shape_with(&like, &overrides)?;
            // The folder is written beside -o (`<-o>.partial-<pid>`) and renamed: where
            // that cannot be made, say so before the weights are drawn (minutes for a 7B
            // shape). Round 24: a folder the user cannot write was found only then.
            let parent = output
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            match parent {
                parent if output.is_dir() && parent.is_dir() => {
                    let probe = parent.join(format!(".moa-probe-{}", std::process::id()));
                    std::fs::create_dir(&probe).map_err(|e| {
                        anyhow::anyhow!(
                            "-o `{}`: cannot create a folder in `{}`, where the model is \
                             written before it is moved into -o: {} (checked before any work; \
                             nothing was written): give a folder you can write to",
                            output.display(),
                            parent.display(),
                            moa::input::write_refusal(parent, &e)
                        )
                    })?;
                    let _ = std::fs::remove_dir(&probe);
                }
                _ => super::check_output_folder("-o", &output)?,
            }
            model::random::check_room(&config, &like, overrides.any(), dtype, &output)?;
            let m = model::random::random_model(&config, seed);
            model::random::write_hf_folder_as(&m, &output, dtype)?;
            outln!("{}", output.display());
        }
        ModelCommand::Info { path } => {
            let path = match path {
                Some(p) => p,
                None => model::default_model_path()?,
            };
            // A GGUF file with tensors moa cannot read is listed (they are marked below):
            // the config and types are what a user asks info for before re-quantizing.
            let (config, special) = model::read_config_listed(&path)?;
            // A folder without tokenizer.json (what `moa model random` wrote before session
            // 17, and still writes for a vocabulary under 259 ids) still has a
            // config to show; `info` used to fail on it with "cannot read tokenizer.json".
            let no_tokenizer = path.is_dir() && !path.join("tokenizer.json").exists();
            let tokenizer = if no_tokenizer {
                None
            } else {
                Some(ModelTokenizer::load(&path)?)
            };
            let template = ChatTemplate::load(&path)?;
            let c = &config;
            let mut out = String::new();
            let mut line = |k: &str, v: String| {
                // Writing to a String cannot fail.
                let _ = writeln!(out, "{k:<16} {v}");
            };
            line("path", path.display().to_string());
            line(
                "name",
                c.name
                    .as_deref()
                    .map_or("-".into(), |n| moa::input::shown_name(n).into_owned()),
            );
            line("layers", c.n_layers.to_string());
            line("hidden", c.hidden_size.to_string());
            line("ffn", c.ffn_size.to_string());
            line("q_heads", c.q_heads.to_string());
            line("kv_heads", c.kv_heads.to_string());
            line("head_dim", c.head_dim.to_string());
            line("rope_theta", c.rope_theta.to_string());
            // Only for a scaled model: the unscaled output is unchanged (docs show it).
            if let Some(scaling) = &c.rope_scaling {
                use moa::model::RopeScaling;
                line(
                    "rope_scaling",
                    match scaling {
                        RopeScaling::Linear { factor } => format!("linear, factor {factor}"),
                        RopeScaling::Llama3 {
                            factor,
                            low_freq_factor,
                            high_freq_factor,
                            original_context,
                        } => format!(
                            "llama3, factor {factor}, low_freq_factor {low_freq_factor}, \
                             high_freq_factor {high_freq_factor}, original context \
                             {original_context} tokens"
                        ),
                        RopeScaling::FreqFactors(f) => format!(
                            "rope_freqs: {} per-pair divisors, {} to {}",
                            f.len(),
                            f.iter().copied().fold(f32::INFINITY, f32::min),
                            f.iter().copied().fold(0f32, f32::max)
                        ),
                    },
                );
            }
            line("rms_norm_eps", c.rms_norm_eps.to_string());
            line("vocab", c.vocab_size.to_string());
            line("tied_embedding", c.tied_embeddings.to_string());
            line("context_length", c.context_length.to_string());
            // Plain ids (`-` for none), not Rust's `Some(1)` / `[2]`.
            let ids = |ids: &[u32]| match ids {
                [] => "-".to_string(),
                _ => ids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            line("bos", ids(special.bos.as_slice()));
            line("eos", ids(&special.eos));
            line(
                "tokenizer",
                match &tokenizer {
                    Some(t) => format!("{} tokens", t.inner.get_vocab_size(true)),
                    None => format!(
                        "none: no tokenizer.json (generate, calib, eval and diagnose need \
                         one; bench, profile and validate do not){}",
                        moa::model::tokenizer::sentencepiece_note(&path)
                    ),
                },
            );
            line(
                "chat_template",
                // Which file (or GGUF key) it came from: a folder may hold two, and the
                // one that wins is not the one a user may have edited.
                match &template {
                    Some(t) => match t.check() {
                        Ok(()) => format!("yes, from {}", t.origin),
                        Err(e) => format!(
                            "from {}, but it does not parse (generate refuses it; --raw feeds \
                             prompts without it): {}",
                            t.origin,
                            {
                                let e = e.to_string();
                                let first = e.lines().next().unwrap_or_default();
                                let said = format!("chat template: from {}: ", t.origin);
                                first.strip_prefix(&said).unwrap_or(first).to_owned()
                            }
                        ),
                    },
                    None => "no".into(),
                },
            );
            // What a load costs: every weight is held in f32 whatever the file stores, so
            // a Q4_K file takes about 7x its size (model::check_load_memory refuses past
            // the memory available; `moa generate` counts the run, runtime::memory::HostMemory),
            // and which types the file stores.
            let params = model::random::parameter_count(c);
            line(
                "parameters",
                format!(
                    "{} (loading needs about {} of memory: f32, for eval, calib, profile, validate, diagnose and bench, which load it whole; generate streams it: next line)",
                    count_shown(params),
                    bytes_shown(params.saturating_mul(4))
                ),
            );
            line("generate", generate_memory(c, &path));
            // Why the model's weights are broken (a safetensors file that cannot be read,
            // a tensor the config asks for missing or misshapen): every line is printed,
            // the config above being what info is mostly asked for, and then the command
            // fails with exit 2 as a broken GGUF does (round 28: a broken folder exited 0).
            let mut broken: Option<String> = None;
            if path.is_dir() {
                match model::safetensors::tensor_dtypes(&path) {
                    Ok((types, unreadable)) => {
                        let listed = types
                            .iter()
                            .map(|(t, n)| {
                                let mark = if model::safetensors::readable_dtype(t) {
                                    ""
                                } else {
                                    " (moa cannot read)"
                                };
                                format!("{t} x {n}{mark}")
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        line("tensor_types", listed);
                        // As a GGUF's unreadable types are named (round 19: an I16
                        // tensor was listed unmarked, and only a load refused it).
                        if let Some((file, name, dtype)) = unreadable.first() {
                            line(
                                "unreadable",
                                format!(
                                    "{} tensor{} of a dtype moa cannot read (the first: `{name}`, {dtype}, in `{file}`): moa \
                                     generate, eval, calib and profile refuse this folder, moa plan \
                                     import takes its shape; moa reads float weights (F32, F16, BF16, F64)",
                                    unreadable.len(),
                                    if unreadable.len() == 1 { "" } else { "s" },
                                ),
                            );
                        }
                    }
                    // With the OS's reason: "cannot read `…/model.safetensors`" alone
                    // did not say it was the file's permissions (round 24).
                    Err(e) => {
                        let why = format!("{:#}", anyhow::Error::new(e));
                        line("tensor_types", format!("unreadable: {why}"));
                        broken = Some(format!(
                            "`{}`: the weights cannot be read: {why}",
                            path.display()
                        ));
                    }
                }
                // A tensor the model needs that no header holds, or of another shape
                // (round 19: a folder without a q_proj was listed as fine; only a load
                // named it). An unreadable header was said just above.
                if let Ok(gaps) = model::safetensors::header_gaps(&path, c) {
                    if let Some(first) = gaps.first() {
                        let what = format!(
                            "{} of the tensors config.json asks for {} missing from the safetensors \
                             headers or of another shape (the first: {first})",
                            gaps.len(),
                            if gaps.len() == 1 { "is" } else { "are" },
                        );
                        line(
                            "weights",
                            format!(
                                "{what}: moa generate, eval, calib and profile refuse this folder, \
                                 moa plan import takes its shape; a download cut short, or a \
                                 config.json of another model?"
                            ),
                        );
                        broken = Some(format!("`{}`: {what}", path.display()));
                    }
                }
            } else {
                let g = model::gguf::GgufFile::open(&path)?;
                let mut types = std::collections::BTreeMap::<String, usize>::new();
                for name in g.content.tensor_infos.keys() {
                    // llama.cpp's names (`Q4_K`, `IQ4_XS`).
                    if let Some(t) = g.tensor_type(name) {
                        *types.entry(t).or_default() += 1;
                    }
                }
                let unreadable: std::collections::BTreeSet<String> =
                    g.unreadable.iter().map(|u| u.type_name()).collect();
                let listed: Vec<String> = types
                    .iter()
                    .map(|(t, n)| {
                        let mark = if unreadable.contains(t) {
                            " (moa cannot read)"
                        } else {
                            ""
                        };
                        format!("{t} x {n}{mark}")
                    })
                    .collect();
                line("tensor_types", listed.join(", "));
                if let Some(first) = g.unreadable.first() {
                    line(
                        "unreadable",
                        format!(
                            "{} tensor{} of a type moa cannot read (the first: `{}`, {}): moa \
                             generate, eval, calib and profile refuse this file, moa plan \
                             import takes its shape; moa reads {}: re-quantize it (e.g. \
                             llama.cpp's `llama-quantize IN.gguf OUT.gguf Q4_K_M`)",
                            g.unreadable.len(),
                            if g.unreadable.len() == 1 { "" } else { "s" },
                            first.name,
                            first.type_name(),
                            model::gguf::readable_types()
                        ),
                    );
                }
            }
            out!("{out}");
            if let Some(why) = broken {
                anyhow::bail!(
                    "{why}; moa generate, eval, calib and profile refuse this folder (its \
                     config is printed above)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `moa generate` holds of the weights (round 44: info described only
/// `Model::load`'s f32 copy, 7× a Q4_K file, which generate never makes): the host's peak
/// while the upload streams them (`runtime::memory::streamed_host_bytes`), the wgpu
/// engine's f16 copy (`runtime::memory::weight_bytes`) and, for a GGUF file with blocks
/// the engine keeps, the copy with them kept (`WeightStream::kept_layer_bytes`, the
/// upload's rule). Estimates from the header; a file whose header does not open gets the
/// f16 figure only (its own line says why).
fn generate_memory(c: &model::LlamaConfig, path: &std::path::Path) -> String {
    use moa::lower::StorageType;
    use moa::runtime::memory::{streamed_host_bytes, weight_bytes};
    let f16 = weight_bytes(c, StorageType::F16, !c.tied_embeddings);
    let (kept_weights, kept_bytes) = if path.is_file() {
        model::WeightStream::open(path).map_or((0, 0), |(_, s)| s.kept_layer_bytes())
    } else {
        (0, 0)
    };
    let kept = if kept_weights > 0 {
        let with = f16.saturating_sub(kept_weights.saturating_mul(2)) + kept_bytes;
        format!(
            " ({} with the file's quantization kept on the device, MOA_WGPU_QUANT_WEIGHTS: the \
             default on CPU adapters and on GPU adapters whose subgroups are of one size)",
            bytes_shown(with)
        )
    } else {
        String::new()
    };
    format!(
        "streams the weights (host peak about {}); the wgpu engine holds {} of them in \
         f16{kept}, plus each request's KV cache and activations (on a CPU adapter all of it \
         is host memory)",
        bytes_shown(streamed_host_bytes(c)),
        bytes_shown(f16),
    )
}

/// A parameter count in billions, or in millions below 0.1 billion: a small model's
/// "0.003 billion" hid its size.
fn count_shown(n: u64) -> String {
    if n >= 100_000_000 {
        format!("{:.3} billion", n as f64 / 1e9)
    } else {
        format!("{:.2} million", n as f64 / 1e6)
    }
}

/// Bytes in GB, or in MB below a GB: "about 0.0 GB" said nothing of a small model.
fn bytes_shown(b: u64) -> String {
    if b >= 1_000_000_000 {
        format!("{:.1} GB", b as f64 / 1e9)
    } else {
        format!("{:.1} MB", b as f64 / 1e6)
    }
}
