pub mod bench;
mod calib;
pub mod diagnose;
pub mod eval;
mod generate;
mod model;
mod model_record;
mod optimize;
mod pipeline;
mod plan;
mod profile;
mod validate;

use std::process::ExitCode;

use crate::args::{Args, Command};

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Plan(cmd) => plan::run(cmd),
        Command::Model(cmd) => model::run(cmd),
        Command::Generate(args) => generate::run(args),
        Command::Optimize(args) => optimize::run(args),
        Command::Calib(args) => calib::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Diagnose(args) => diagnose::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// Writes `bytes` to `path` through a temporary file beside it (`<path>.partial-<pid>`),
/// renamed over `path`: a run stopped during a plain write left a truncated file (an eval
/// report, a plan TOML) that later commands refused or, worse, read as fewer plans.
/// A path that exists and is not a regular file (a pipe, a terminal), or that is reached
/// through `/dev` or `/proc` (`/dev/stdout`, `/dev/fd/3`), is written in place; a link to
/// a file is followed, the file it names written whole and the link kept (round 28: the
/// rename replaced the link itself, `-o /dev/stdout` with stdout in a file replaced the
/// system's `/dev/stdout` link and the output was lost). A dangling link is written
/// through, in place.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let in_place = |p: &std::path::Path| {
        std::fs::write(p, bytes).with_context(|| format!("cannot write `{}`", path.display()))
    };
    let special = |p: &std::path::Path| p.starts_with("/dev") || p.starts_with("/proc");
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) || special(path) {
        return in_place(path);
    }
    if path.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
        return match std::fs::canonicalize(path) {
            Ok(target) if special(&target) => in_place(path),
            Ok(target) => write_whole(&target, bytes),
            Err(_) => in_place(path),
        };
    }
    // Said before the temporary is made: `-o FOLDER` failed at the rename, leaving
    // `FOLDER.partial-<pid>` beside it, and a missing folder was reported as the
    // temporary's name, which the user never gave.
    if path.is_dir() {
        anyhow::bail!(
            "cannot write `{}`: it is a folder; give a file name in it",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            anyhow::bail!("cannot write `{}`: {}", path.display(), no_folder(dir));
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".partial-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // A failed write or rename leaves nothing behind (a full disk, a read-only folder).
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write `{}`", path.display()))
}

/// Refuses an output path that is one of the command's inputs: `moa plan export P.toml
/// -o P.toml` replaced the plan with its JSON, and `moa plan import UP.json -o UP.json`
/// the upstream file with TOML, losing the input (compilers refuse the same, e.g. gcc's
/// "input file is the same as output file"). Paths are compared as files: `./p.toml`,
/// `p.toml` and a link to it are the same file. An input that is a folder (a Hugging Face
/// model) covers the files of it that moa reads ([`is_model_file`]): `moa calib --out
/// MODEL/config.json` replaced the model's config with calibration samples, and `moa eval
/// --json` a plan or the config with its report; a file of another name there (a report
/// kept beside the model) may be written.
pub fn check_not_an_input(
    flag: &str,
    output: &std::path::Path,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    let Ok(out) = std::fs::canonicalize(output) else {
        return Ok(()); // not there yet: no input can be it
    };
    for input in inputs {
        let Ok(i) = std::fs::canonicalize(input) else {
            continue;
        };
        if i == out {
            anyhow::bail!(
                "{flag} `{}` is the input `{}`: writing it would replace the input; give another file",
                output.display(),
                input.display()
            );
        }
        let model_file = out
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_model_file);
        if i.is_dir() && model_file && out.parent() == Some(i.as_path()) {
            anyhow::bail!(
                "{flag} `{}` is a file of the model folder `{}`: writing it would replace \
                 that file; give a path outside the folder",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Whether a file of that name in a Hugging Face model folder is read by moa's loader,
/// tokenizer or chat template (`config.json`, `generation_config.json`, `tokenizer.json`,
/// `tokenizer_config.json`, `chat_template.jinja`, the safetensors index, and every
/// `*.safetensors`: a folder
/// without an index loads each as weights). Other files there (a calibration or report
/// a user keeps beside the model) are not the model's.
pub fn is_model_file(name: &str) -> bool {
    matches!(
        name,
        "config.json"
            | "generation_config.json"
            | "tokenizer.json"
            | "tokenizer_config.json"
            | "chat_template.jinja"
            | "model.safetensors.index.json"
    ) || name.ends_with(".safetensors")
}

/// The model a command reads: `--model`, else the fetched default (its error says how to
/// fetch it). A `--model` path that cannot be read is refused naming the flag: it said
/// only "cannot read `PATH`" (round 38's leftover, in every command but `moa bench`).
pub fn model_arg(model: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    match model {
        Some(m) => {
            std::fs::metadata(m).with_context(|| {
                format!(
                    "--model `{}`: cannot read it (give a GGUF file or a Hugging Face model folder)",
                    m.display()
                )
            })?;
            Ok(m.to_path_buf())
        }
        None => Ok(moa::model::default_model_path()?),
    }
}

/// The model a command reads: `--model`, else the fetched default (none when it is not
/// fetched: the command says so itself).
pub fn model_or_default(model: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    match model {
        Some(m) => Some(m.to_path_buf()),
        None => moa::model::default_model_path().ok(),
    }
}

/// Refuses a file given twice to `flag` (`moa optimize --profile A --profile A` averaged
/// A with itself, weighting it twice against the other profiles of its length, without a
/// word; `moa validate` / `moa eval --plan A --plan A` scored A twice). Paths are compared as files: `a`, `./a`, `dir/../a`, a symbolic link to it and,
/// on Unix, a hard link (same device and inode) are the same file. A path that cannot be
/// read is left to the command, which names it.
/// Refuses two output flags that name one file (`moa eval --json r --markdown r`, `moa
/// validate --output t --best t`): the second write replaced the first's report after
/// the whole run. Compares the files themselves where they exist (links, `./r`), else
/// their canonical folder and name. `outputs`: (flag, path) pairs, absent flags skipped.
pub fn check_distinct_outputs(outputs: &[(&str, Option<&std::path::Path>)]) -> anyhow::Result<()> {
    let key = |p: &std::path::Path| -> std::path::PathBuf {
        if let Ok(c) = std::fs::canonicalize(p) {
            return c;
        }
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        match (std::fs::canonicalize(dir), p.file_name()) {
            (Ok(d), Some(name)) => d.join(name),
            _ => p.to_path_buf(),
        }
    };
    let given: Vec<(&str, &std::path::Path)> = outputs
        .iter()
        .filter_map(|(flag, p)| p.map(|p| (*flag, p)))
        .collect();
    for (i, (flag, p)) in given.iter().enumerate() {
        for (other, q) in &given[..i] {
            if key(p) == key(q) {
                anyhow::bail!(
                    "{other} `{}` and {flag} `{}` name one file: the second write would \
                     replace the first's output; give each its own file",
                    q.display(),
                    p.display()
                );
            }
        }
    }
    Ok(())
}

pub fn check_distinct_files(flag: &str, paths: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let identity = |p: &std::path::Path| -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p)
                .ok()
                .map(|m| format!("{}:{}", m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::canonicalize(p)
                .ok()
                .map(|c| c.display().to_string())
        }
    };
    let mut seen: Vec<(String, &std::path::Path)> = Vec::new();
    for p in paths {
        let Some(id) = identity(p) else { continue };
        if let Some((_, first)) = seen.iter().find(|(i, _)| *i == id) {
            let how = if first.as_os_str() == p.as_os_str() {
                "twice".to_string()
            } else {
                format!("twice (as `{}` and `{}`)", first.display(), p.display())
            };
            let why = if flag == "--profile" {
                " (several files of one length are averaged, so a repeated one would weigh \
                 double)"
            } else {
                ""
            };
            anyhow::bail!(
                "{flag} `{}` is given {how}: give each file once{why}",
                p.display()
            );
        }
        seen.push((id, p));
    }
    Ok(())
}

/// Why the folder `dir` of an output file cannot take it: a file stands where the folder
/// (or one above it) goes, or the folder does not exist. Round 23: `-o FILE/x.json` said
/// "the folder `FILE` does not exist" of a file that exists (moa-compile already named it).
fn no_folder(dir: &std::path::Path) -> String {
    match dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        Some(file) => format!(
            "`{}` is a file, not a folder, so nothing can be written under it",
            file.display()
        ),
        None => format!("the folder `{}` does not exist", dir.display()),
    }
}

/// Checks, before any work, that the file `flag` names can be written at the end: it is
/// not a folder, its folder exists, and that folder takes a new file (a probe file is made
/// and removed there; an existing regular file is opened for appending instead, nothing
/// written; an existing pipe or device is left to the final write). `moa validate
/// --output`/`--best` wrote only once every plan was validated (an hour on the CPU
/// reference) and failed then on a missing folder; round 24: `moa eval --json` into a
/// folder the user cannot write failed after the whole evaluation ("Permission denied"),
/// and `moa bench --json /proc/x` after the runs (round 21).
pub fn check_output_file(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{flag} `{}` is a folder: give a file name in it",
            path.display()
        );
    }
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!("{flag} `{}`: {}", path.display(), no_folder(dir));
    }
    let fail = |e: std::io::Error| {
        let why = moa::input::write_refusal(dir, &e);
        anyhow::anyhow!(
            "{flag} `{}`: cannot write in `{}`: {why} (checked before any work; nothing was \
             written): give a file in a folder you can write to",
            path.display(),
            dir.display()
        )
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(fail),
        // `/dev/stdout`, a pipe from `>(cmd)`: written in place at the end; opening a
        // named pipe now would wait for its reader.
        Ok(_) => Ok(()),
        Err(_) => moa::input::probe_new_file(dir, "moa-probe").map_err(fail),
    }
}

/// Checks, before any work, that `path` can be the output folder of `flag`: a folder that
/// takes a new file, or a path not there yet whose nearest existing folder takes a new
/// folder (it is made, with its parents, when written; a probe file or folder is made and
/// removed now). `moa optimize -o plan.toml` failed "cannot create" only after the solve;
/// round 24: `moa pipeline --plans-dir` in a folder the user cannot write failed
/// "Permission denied" after the whole run (calibration, profiles, solves, validation).
pub fn check_output_folder(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() && !path.is_dir() {
        anyhow::bail!(
            "{flag} `{}` exists and is not a folder: this command writes a folder of files",
            path.display()
        );
    }
    let fail = |dir: &std::path::Path, what: &str, e: std::io::Error| {
        let why = moa::input::write_refusal(dir, &e);
        anyhow::anyhow!(
            "{flag} `{}`: cannot {what} in `{}`: {why} (checked before any work; nothing was \
             written): give a folder you can write to",
            path.display(),
            dir.display()
        )
    };
    if path.is_dir() {
        return moa::input::probe_new_file(path, "moa-probe").map_err(|e| fail(path, "write", e));
    }
    // The nearest existing folder above: `a/b/c` with only `a` there is made in `a`.
    let dot = std::path::Path::new(".");
    let base = path
        .ancestors()
        .skip(1)
        .map(|a| if a.as_os_str().is_empty() { dot } else { a })
        .find(|a| a.exists())
        .unwrap_or(dot);
    if !base.is_dir() {
        anyhow::bail!("{flag} `{}`: {}", path.display(), no_folder(base));
    }
    let probe = base.join(format!(".moa-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| fail(base, "create a folder", e))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Whether `path` is where standard output goes: `-`, or a path to the same file, pipe or
/// terminal (`/dev/stdout`, `/dev/fd/1`, the file stdout is redirected to). A command that
/// prints a text and also writes it to `-o` writes it once when `-o` is stdout (round 36:
/// `moa validate -o /dev/stdout` printed its table twice).
pub fn is_stdout(path: &std::path::Path) -> bool {
    if path == std::path::Path::new("-") {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let out = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata());
        if let (Ok(a), Ok(b)) = (std::fs::metadata(path), out) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    false
}

/// Writes `text` to `path` whole ([`write_whole`]), or to standard output when no path or
/// `-` is given (round 28: `-o -` wrote a file named `-`, while `-` as an input is stdin).
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path.filter(|p| *p != std::path::Path::new("-")) {
        Some(p) => write_whole(p, text.as_bytes()),
        None => {
            use std::io::Write;
            // Flushed here: a text with no final line end (`moa plan export -o -`'s JSON)
            // stayed in the buffer and its write error was lost at exit, exit 0 (round 36).
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))
        }
    }
}

/// The storage type named by `--dtype`.
pub fn storage(name: &str) -> anyhow::Result<moa::lower::StorageType> {
    use moa::lower::StorageType;
    Ok(match name {
        "bf16" => StorageType::Bf16,
        "f16" => StorageType::F16,
        "f32" => StorageType::F32,
        other => anyhow::bail!("--dtype `{other}`: allowed bf16, f16, f32"),
    })
}

/// A plan for a model of `config`'s shape: plan TOML, or an upstream MoA
/// `moa_alpha_beta.json` imported for that shape; checked against the shape. Returns a
/// label (the JSON's folder, or the TOML's file stem) and the plan.
pub fn load_plan(
    path: &std::path::Path,
    config: &moa::model::LlamaConfig,
) -> anyhow::Result<(String, moa::plan::Plan)> {
    load_plan_from(path, config, false)
}

/// [`load_plan`] for a command that reads the plan once (`moa plan show --max-batch`): a
/// plan TOML may also come from `-` (standard input, labelled `stdin`) or a pipe
/// ([`moa::plan::Plan::load_piped`]); round 27 found "cannot read plan `-`" there while
/// the README said `plan show` reads `-` and pipes.
pub fn load_plan_once(
    path: &std::path::Path,
    config: &moa::model::LlamaConfig,
) -> anyhow::Result<(String, moa::plan::Plan)> {
    load_plan_from(path, config, true)
}

fn load_plan_from(
    path: &std::path::Path,
    config: &moa::model::LlamaConfig,
    piped: bool,
) -> anyhow::Result<(String, moa::plan::Plan)> {
    use anyhow::Context;
    let label = path
        .parent()
        .and_then(|p| p.file_name())
        .filter(|_| path.extension().is_some_and(|e| e == "json"))
        .or_else(|| path.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|l| l != "-")
        .unwrap_or_else(|| if piped { "stdin" } else { "plan" }.into());
    let plan = if path.extension().is_some_and(|e| e == "json") {
        let text = moa::input::read_to_string(path, "upstream plan", moa::input::MAX_TEXT_BYTES)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        moa::plan::upstream::import(&text, &path.display().to_string(), config.model_shape())?
    } else if piped {
        moa::plan::Plan::load_piped(path)?
    } else {
        moa::plan::Plan::load(path)?
    };
    config
        .check_plan(&plan)
        .with_context(|| format!("plan `{}`", path.display()))?;
    Ok((label, plan))
}

/// Every token id of the calibration samples read from `path` must be below the model's
/// `vocab_size`: a calibration made with another model's tokenizer otherwise fails deep in
/// the forward pass with "token id … is out of range", naming neither the file nor the
/// sample. Every sample must also fit the model's context.
pub fn check_calib_vocab<'a>(
    path: &std::path::Path,
    samples: impl IntoIterator<Item = &'a moa::calib::CalibSample>,
    config: &moa::model::LlamaConfig,
) -> anyhow::Result<()> {
    let vocab = config.vocab_size;
    for s in samples {
        let ids = s.prompt_tokens.iter().chain(&s.response_tokens);
        if let Some(id) = ids.copied().find(|&id| id as usize >= vocab) {
            anyhow::bail!(
                "`{}`: sample `{}` has token id {id}, but the model `{}` has vocab_size {vocab} (ids 0..={}): the calibration was made with another model's tokenizer",
                path.display(),
                s.id,
                config.name.as_deref().map_or("?".into(), moa::input::shown_name),
                vocab.saturating_sub(1)
            );
        }
        // A sample past the context ran on positions the model never saw (RoPE beyond
        // its trained length) with no word: `moa profile`, `validate` and `diagnose` on
        // the CPU reference took a 763-token held-out set for a 256-token model and
        // printed losses (round 35), where `calib`, `eval` and `generate` refuse such a
        // length.
        let n = s.prompt_tokens.len() + s.response_tokens.len();
        if n > config.context_length {
            anyhow::bail!(
                "`{}`: sample `{}` has {n} tokens (prompt {} + response {}), past the context of the model `{}` ({} tokens): allowed samples of at most {} tokens; make the calibration for this model (`moa calib --lengths` up to {})",
                path.display(),
                s.id,
                s.prompt_tokens.len(),
                s.response_tokens.len(),
                config.name.as_deref().map_or("?".into(), moa::input::shown_name),
                config.context_length,
                config.context_length,
                config.context_length
            );
        }
    }
    Ok(())
}

/// The most prompt tokens one row's prefill may have on the wgpu engine under `ctx`'s
/// storage binding limit (`chunks::token_limits`, which the engine's `start` applies
/// through `chunks::plan_prefill`): a longer row's other activations are held in parts,
/// but its K and V are bound whole. On lavapipe's 128 MiB: 65 520 tokens of the
/// Llama-3.2-3B and 8B shapes (8 KV heads × 128 in f16), 131 056 of the 1B (× 64).
/// Asked before the weights load (round 45: the engine refused such a row only after it).
pub struct PrefillRowLimit {
    /// The most tokens a row.
    pub tokens: usize,
    /// The adapter's `max_storage_buffer_binding_size`, or `MOA_WGPU_MAX_BINDING_KIB` below it.
    pub binding: u64,
}

impl PrefillRowLimit {
    /// Why, for a refusal: the adapter, the tokens, the binding and the bytes a token.
    pub fn why(
        &self,
        ctx: &moa::runtime::wgpu::WgpuContext,
        config: &moa::model::LlamaConfig,
        storage: moa::lower::StorageType,
    ) -> String {
        format!(
            "a prefill on `{}` holds at most {} tokens a row of this model: its storage bindings hold {} bytes (max_storage_buffer_binding_size), and a row's K and V, which its attention reads whole, take {} bytes a token each ({} KV heads × {} in {})",
            ctx.adapter_name(),
            self.tokens,
            self.binding,
            moa::runtime::wgpu_engine::chunks::kv_bytes_per_token(config, storage),
            config.kv_heads,
            config.head_dim,
            storage.name()
        )
    }
}

/// Refuses `--max-changes k` outside 1..=the units of the `--near` plan at `near` of
/// shape `shape` (KV groups where `grouped`, else query heads; `units` names them in
/// the message): 0 returned the plan unchanged and more than its units bound nothing,
/// both without a word (rounds 40 and 46). `moa optimize` and `moa pipeline` both ask.
pub fn check_max_changes(
    k: usize,
    near: &std::path::Path,
    shape: &moa::plan::ModelShape,
    grouped: bool,
    units: &str,
) -> anyhow::Result<()> {
    let per_layer = if grouped {
        shape.kv_heads
    } else {
        shape.q_heads
    };
    let total = shape.layers as usize * per_layer as usize;
    if !(1..=total).contains(&k) {
        anyhow::bail!(
            "--max-changes {k} is out of range: allowed 1 to {total} (the units of --near `{}`: {} layers × {per_layer} {units}){}",
            near.display(),
            shape.layers,
            if k == 0 { "; 0 would return the plan unchanged" } else { "" }
        );
    }
    Ok(())
}

/// [`PrefillRowLimit`] of `config` in `storage` on `ctx`.
pub fn prefill_row_limit(
    ctx: &moa::runtime::wgpu::WgpuContext,
    config: &moa::model::LlamaConfig,
    storage: moa::lower::StorageType,
) -> anyhow::Result<PrefillRowLimit> {
    let limits = ctx.device().limits();
    let binding = moa::runtime::wgpu_engine::WgpuEngineOptions::from_env()?
        .binding_limit(limits.max_storage_buffer_binding_size);
    let token_limits = moa::runtime::wgpu_engine::chunks::token_limits(
        config,
        storage,
        binding,
        u64::from(limits.min_storage_buffer_offset_alignment),
        limits.max_compute_workgroups_per_dimension,
    )?;
    Ok(PrefillRowLimit {
        tokens: token_limits.row,
        binding,
    })
}
