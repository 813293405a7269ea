//! `moa-compile plan.toml -o out/`: lowers a MoA plan into per-layer fused attention
//! kernels (WGSL and/or CUDA C++), a manifest and a Rust file that embeds them.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use moa::codegen::emit::crlf_to_lf;
use moa::codegen::{self, Target};
use moa::input::counted;
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
#[command(name = "moa-compile", version = moa::codegen::emit::MOA_VERSION)]
struct Args {
    /// The plan (TOML; see docs/DESIGN.md); `-` reads it from standard input, and a pipe
    /// such as /dev/stdin or `<(cmd)` is read too (`moa plan import UP.json --model M |
    /// moa-compile - -o out`).
    plan: PathBuf,
    /// Output folder (created if missing; unchanged files are not rewritten). Its `wgsl/`
    /// and `cuda/` folders belong to moa-compile: kernel files there that this plan does
    /// not produce (e.g. from a deeper model's plan) are removed. A `manifest.json` or
    /// `kernels.rs` there that moa-compile did not write is refused, never overwritten, and
    /// so is a folder whose wgsl/ or cuda/ holds .wgsl/.cu files moa-compile never writes.
    /// Two compiles into one folder at once take turns: the second waits, saying so.
    #[arg(short, long, default_value = "out")]
    output: PathBuf,
    /// Which back ends to generate.
    #[arg(long, value_enum, default_value = "all")]
    target: TargetArg,
    /// Element type of Q, K, V and the cache in device memory (arithmetic is f32).
    #[arg(long, value_enum, default_value = "f16")]
    dtype: DtypeArg,
    /// Write nothing: compare the output folder with what this plan compiles to (for CI
    /// that commits generated kernels). Names every file that differs, is missing, or
    /// would be removed, and exits with 1 if any; 0 when the folder is exactly this
    /// compile's output. Give the --target and --dtype the folder was compiled with.
    #[arg(long)]
    check: bool,
    /// No progress line. Without it, a compile that takes over a second redraws one line
    /// on stderr (files generated and checked per target, elapsed time, ETA) while it
    /// runs, then erases it; only when stderr is a terminal, never into a pipe or file.
    #[arg(short, long)]
    quiet: bool,
    /// Queries a workgroup of the WGSL scalar prefill (the prefill of adapters without
    /// matrix units), each K/V tile staged once for all of them: 1..=256, 32 by default.
    /// The wgpu engine takes 128 on a GPU (H100 through Vulkan, SmolLM2 shape, 16 × 4096
    /// tokens: the attention of a prefill pass 182 ms against 370 at 32) and 32 on a CPU
    /// adapter. The manifest's workgroup size and launch grid follow it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    wgsl_prefill_q_tile: Option<u32>,
    /// The WGSL scalar prefill takes two keys a step (one maximum and one rescale a pair),
    /// as the wgpu engine does on a GPU (0.92× the attention time of one key a step on an
    /// H100); one key a step by default (on lavapipe the longer loop compiled slower).
    #[arg(long)]
    wgsl_prefill_key_pairs: bool,
}

/// The WGSL speed choices of `--wgsl-prefill-q-tile` and `--wgsl-prefill-key-pairs`; refused
/// with `--target cuda`, which writes no WGSL (the flags did nothing there).
fn wgsl_tuning(args: &Args) -> anyhow::Result<codegen::wgsl::WgslTuning> {
    let given: Vec<&str> = [
        (args.wgsl_prefill_q_tile.is_some(), "--wgsl-prefill-q-tile"),
        (args.wgsl_prefill_key_pairs, "--wgsl-prefill-key-pairs"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    if matches!(args.target, TargetArg::Cuda) && !given.is_empty() {
        anyhow::bail!(
            "{} shape{} the WGSL kernels, and --target cuda writes none: drop {}, or use --target wgsl or all",
            given.join(" and "),
            if given.len() == 1 { "s" } else { "" },
            if given.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(codegen::wgsl::WgslTuning {
        prefill_q_tile: args.wgsl_prefill_q_tile,
        prefill_key_pairs: args.wgsl_prefill_key_pairs.then_some(true),
        ..Default::default()
    })
}

/// The status line of a long compile: redrawn on stderr at most 4 times a second, only
/// once a second has passed and only where `on` (stderr is a terminal and no --quiet),
/// then erased by [`StatusLine::clear`], as `moa generate` draws its prefill's.
struct StatusLine {
    on: bool,
    start: Instant,
    last: Option<Instant>,
    /// The stage being reported and when its first report came (for its ETA).
    stage: Option<(codegen::Target, codegen::CompileStage, Instant)>,
}

/// `12 s`, or `3 min 5 s` from two minutes on.
fn duration_words(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

impl StatusLine {
    fn new(start: Instant, on: bool) -> StatusLine {
        StatusLine {
            on,
            start,
            last: None,
            stage: None,
        }
    }

    /// Draws `moa-compile: {text}, {elapsed} elapsed{tail}` from `text()`'s two parts, if
    /// a line is due (`now`: also within 250 ms of the last, for a line that stays up
    /// while a new step runs).
    fn draw(&mut self, now: bool, text: impl FnOnce() -> (String, String)) {
        let due = now
            || self
                .last
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
        if !self.on || !due || self.start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let (text, tail) = text();
        eprint!(
            "\r\x1b[Kmoa-compile: {text}, {} elapsed{tail}",
            duration_words(self.start.elapsed())
        );
        let _ = std::io::stderr().flush();
        self.last = Some(Instant::now());
    }

    /// One report of the library's compile: `wgsl 1210/3073 files generated (39%), 1 min
    /// 25 s elapsed, ETA 2 min 13 s` (the ETA from this stage's pace so far).
    fn compile(&mut self, p: &codegen::CompileProgress) {
        let now = Instant::now();
        let since = match self.stage {
            Some((t, s, at)) if t == p.target && s == p.stage => at,
            _ => {
                self.stage = Some((p.target, p.stage, now));
                now
            }
        };
        let what = match p.stage {
            codegen::CompileStage::Generate => "files generated",
            codegen::CompileStage::Limits => "files checked against the target's limits",
        };
        self.draw(false, || {
            let eta = match (p.files_done, now.duration_since(since)) {
                (0, _) => String::new(),
                (done, spent) => {
                    let left = spent.mul_f64((p.files - done.min(p.files)) as f64 / done as f64);
                    format!(", ETA {}", duration_words(left))
                }
            };
            let text = format!(
                "{} {}/{} {what} ({:.0}%)",
                p.target.name(),
                p.files_done,
                p.files,
                100.0 * p.files_done as f64 / p.files.max(1) as f64
            );
            (text, eta)
        });
    }

    /// Erases the line, if one was drawn.
    fn clear(&mut self) {
        if self.last.take().is_some() {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Compiles (or with --check compares); `Ok(false)`: --check found differences.
fn run(args: Args) -> anyhow::Result<bool> {
    let start = Instant::now();
    let wgsl = wgsl_tuning(&args)?;
    // A file where the folder goes failed only at the first kernel file, as "cannot write
    // `OUT/wgsl/l00_prefill.wgsl`: Not a directory".
    if args.output.exists() && !args.output.is_dir() {
        anyhow::bail!(
            "-o `{}` is not a folder: moa-compile writes a folder (wgsl/, cuda/, manifest.json, kernels.rs)",
            args.output.display()
        );
    }
    // A symbolic link whose target is missing (or that loops) failed as "cannot create the
    // folder `OUT`: File exists", about a folder that is not there.
    if let (Ok(link), false) = (std::fs::read_link(&args.output), args.output.exists()) {
        anyhow::bail!(
            "-o `{}` is a symbolic link to `{}`, which does not exist (or is a loop of links): \
             make that folder, or give another -o",
            args.output.display(),
            link.display()
        );
    }
    // A file named `wgsl` or `cuda` where moa-compile keeps a kernel folder was found only
    // at the first write, after the whole generation, with a marker left beside it and a
    // message about a manifest the folder never had (round 27).
    for sub in ["wgsl", "cuda"] {
        let at = args.output.join(sub);
        if at.symlink_metadata().is_ok() && !at.is_dir() {
            anyhow::bail!(
                "-o `{}`: `{}` is a file, not a folder: moa-compile writes its kernels in the \
                 folders wgsl/ and cuda/ of -o; move the file or give another -o (nothing was \
                 written)",
                args.output.display(),
                at.display(),
            );
        }
    }
    // `wgsl/` and `cuda/` belong to moa-compile, which removes every kernel file there that
    // the plan does not produce: `-o` at a project folder deleted the user's own shaders
    // (`assets/wgsl/blur.wgsl`). Files moa never wrote are refused, never removed: found
    // here (cheap), judged after the compile (a file holding exactly what this compile
    // writes at its path is not lost by the rewrite).
    // A manifest.json or kernels.rs that is not moa-compile's is refused by `write` (and
    // named by `--check`) instead: the files beside it are judged by what moa's list.
    let maybe_foreign = if codegen::emit::check_owned(&args.output).is_ok() {
        foreign_kernel_files(&args.output)
    } else {
        Vec::new()
    };
    let plan = Plan::load_piped(&args.plan)?;
    plan.check_prompt_room(&args.plan.display().to_string())?;
    // Round 19: a read-only or unreachable -o was found only when the first file was
    // written, after the whole generation (1.3 s for a 30-layer plan, minutes for 1024
    // layers). --check writes nothing.
    if !args.check {
        check_writable(&args.output)?;
    }
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
    // A 1024-layer plan compiles for minutes (229 s on this project's 2-core machine,
    // benches/RESULTS.md round 15), silently before this line.
    let mut status = StatusLine::new(start, !args.quiet && std::io::stderr().is_terminal());
    let compiled = codegen::compile_tuned_with_progress(&plan, targets, storage, wgsl, &mut |p| {
        status.compile(p)
    });
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            status.clear();
            return Err(e).with_context(|| {
                format!("generating {names} kernels for `{}`", args.plan.display())
            });
        }
    };
    let foreign = identical_removed(&args.output, maybe_foreign, &compiled);
    if args.check {
        status.clear();
        return check(&args, &compiled, &foreign);
    }
    if !foreign.is_empty() {
        status.clear();
        anyhow::bail!(foreign_refusal(&args.output, &foreign));
    }
    let files: usize = compiled
        .all_artifacts()
        .iter()
        .map(|(_, a)| a.len())
        .sum::<usize>()
        + 2;
    status.draw(true, || {
        let text = format!("writing {files} files to {}", args.output.display());
        (text, String::new())
    });
    // The topmost folder this run makes (None where -o exists): a failed write (a full
    // disk) left it half-written, kernel files without a manifest (round 22).
    let made = (!args.output.exists()).then(|| {
        let mut top = args.output.as_path();
        while let Some(p) = top.parent() {
            if p.as_os_str().is_empty() || p.exists() {
                break;
            }
            top = p;
        }
        top.to_path_buf()
    });
    // One compile at a time writes a folder (`emit::lock_output`, which `write` takes
    // too): held from here, so that the notes below count what the folder holds when this
    // compile writes, not what it held before another compile's turn (round 23). A folder
    // another compile wrote while this one waited is not this run's to remove on failure.
    // Where the folder cannot be made, `write` below says why, as before.
    let lock = codegen::emit::lock_output(&args.output).ok();
    let made = made.filter(|_| !lock.as_ref().is_some_and(|l| l.waited));
    // A killed compile's temporaries (`<file>.moa-tmp-<pid>-<n>`) are removed before the
    // kernel files are counted: `write` removed them too, after the count, so the summary
    // called each "a kernel file this compile does not produce" (round 18).
    let dead_tmp = codegen::emit::remove_dead_tmp_files(&args.output).len();
    let before = kernel_files(&args.output);
    let replaced = folder_plan(&args.output, &compiled.manifest_json());
    let library_rules = library_rules_table(&args.output);
    let written = compiled.write(&args.output);
    drop(lock);
    status.clear();
    let changed = match (written, made) {
        (Ok(n), _) => n,
        (Err(e), Some(top)) => {
            let gone = std::fs::remove_dir_all(&top).is_ok();
            return Err(anyhow::Error::new(e).context(if gone {
                format!(
                    "writing the kernels failed; `{}`, which this run made, is removed (nothing \
                     half-written is left)",
                    top.display()
                )
            } else {
                format!(
                    "writing the kernels failed, and `{}`, which this run made, could not be \
                     removed: it holds no manifest.json, so no loader reads it; remove it",
                    top.display()
                )
            }));
        }
        // A manifest.json or kernels.rs that is not moa-compile's is refused before any
        // file is written (`emit::check_owned`): the refusal alone is the message (round
        // 26: it came under "writing the kernels failed; `OUT` now holds no manifest.json",
        // with that manifest still there, untouched).
        (Err(e @ codegen::CodegenError::Manifest { .. }), None) => return Err(e.into()),
        (Err(e), None) => {
            return Err(anyhow::Error::new(e).context(format!(
                "writing the kernels failed; `{}` now holds no manifest.json, so no loader \
                 reads its half-written kernels: re-run once the cause is fixed",
                args.output.display()
            )))
        }
    };
    // `write` counts removals as changes; say them apart, so that emptying `wgsl/` for a
    // `--target cuda` compile into the same folder is not reported as files written.
    let removed = before.iter().filter(|p| !p.exists()).count();
    let written = changed.saturating_sub(removed);
    let kernels = compiled.kernels().count();
    let mut removed_note = if removed > 0 {
        format!(
            "; {removed} kernel file{} this compile does not produce removed from {}",
            if removed == 1 { "" } else { "s" },
            args.output.display()
        )
    } else {
        String::new()
    };
    if dead_tmp > 0 {
        removed_note.push_str(&format!(
            "; {dead_tmp} temporary file{} of a stopped moa-compile removed",
            if dead_tmp == 1 { "" } else { "s" }
        ));
    }
    eprintln!(
        "moa-compile: {} layer{} -> {kernels} kernels ({}) in {:.1} ms; {written} file{} written to {}{removed_note}",
        plan.model().layers,
        if plan.model().layers == 1 { "" } else { "s" },
        names,
        start.elapsed().as_secs_f64() * 1e3,
        if written == 1 { "" } else { "s" },
        args.output.display()
    );
    // Two plans compiled into one folder: the second replaced the first's kernels and
    // manifest, said only as "N kernel files ... removed" (or not at all when the files
    // had the same names), which read as if both plans were there.
    match replaced {
        Some(FolderPlan::Other(old)) => eprintln!(
            "moa-compile: note: {} held the kernels of another plan ({old}), now replaced: a folder holds one plan's kernels; give each plan its own -o",
            args.output.display()
        ),
        Some(FolderPlan::Edited(what)) => eprintln!(
            "moa-compile: note: {} held the kernels of another version of this model's plan (an earlier edit of this plan, or another plan of the same model), {what}; now updated",
            args.output.display()
        ),
        None => {}
    }
    // A folder the library wrote with `WgslTuning::rules_table` (round 33) was rewritten
    // as "N files written" alone, though its kernels' bindings changed under the app.
    if library_rules {
        eprintln!(
            "moa-compile: note: {} held WGSL kernels written through the library with `WgslTuning::rules_table` \
             (their `constants.rules_table`), now replaced by moa-compile's, which bake each layer's rules: \
             their prefill and decode take no `rules` argument (docs/EMBEDDING.md)",
            args.output.display()
        );
    }
    Ok(true)
}

/// Whether `dir/manifest.json` lists a kernel whose constants say where its rules come
/// from (`rules_table`): such kernels are written only through the library with
/// `WgslTuning::rules_table` (`Compiled::wgsl_with`), never by moa-compile, so `--check`
/// can never match them and a compile changes their bindings. `false` when the manifest
/// is missing or unreadable.
fn library_rules_table(dir: &Path) -> bool {
    let Ok(text) = std::fs::read(dir.join("manifest.json")) else {
        return false;
    };
    let Ok(m) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    m["files"].as_array().into_iter().flatten().any(|f| {
        f["kernels"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["constants"].get("rules_table").is_some())
    })
}

/// Refuses an output folder moa-compile could not write into, before any kernel is
/// generated: a file is created (and removed) in each folder a compile writes to that
/// exists (`OUT`, `OUT/wgsl`, `OUT/cuda`), or where `OUT` does not exist yet, in the
/// nearest folder above it that does (where `write` would create it). Nothing is left
/// behind, and no folder is created.
fn check_writable(out: &Path) -> anyhow::Result<()> {
    let mut places: Vec<PathBuf> = Vec::new();
    if out.is_dir() {
        places.push(out.to_path_buf());
        places.extend(
            ["wgsl", "cuda"]
                .iter()
                .map(|d| out.join(d))
                .filter(|d| d.is_dir()),
        );
    } else {
        // The nearest existing folder above `out` (a relative `out` with no parent:
        // the current folder).
        let mut above = out.parent();
        while let Some(p) = above {
            if p.as_os_str().is_empty() {
                above = Some(Path::new("."));
                break;
            }
            if p.exists() {
                break;
            }
            above = p.parent();
        }
        let Some(above) = above else {
            return Ok(());
        };
        if !above.is_dir() {
            anyhow::bail!(
                "-o `{}`: `{}` is a file, not a folder, so the output folder cannot be created \
                 under it; give another -o",
                out.display(),
                above.display()
            );
        }
        places.push(above.to_path_buf());
    }
    for dir in places {
        if let Err(e) = moa::input::probe_new_file(&dir, "moa-compile-probe") {
            anyhow::bail!(
                "-o `{}`: cannot write in `{}`: {} (checked before generating any kernel; \
                 nothing was written): give a folder you can write to",
                out.display(),
                dir.display(),
                moa::input::write_refusal(&dir, &e)
            )
        }
    }
    Ok(())
}

/// What an output folder's `manifest.json` holds against the plan being compiled, where
/// it holds something else: [`folder_plan`].
enum FolderPlan {
    /// Another model (name or shape): its name and shape, to name what a compile replaces.
    Other(String),
    /// The same model (name and shape) with other span constants or rules: an earlier
    /// version of the plan, as in an edit-and-recompile loop or a CI check after the plan
    /// changed, or another plan of the same model (the manifest names the model, not the
    /// plan file, so the two read alike; round 37: "an earlier version of this plan" for
    /// uniform-50 over moa-50). What changed: the span fields, or the layers whose rules
    /// differ.
    Edited(String),
}

/// The fields of the manifest object `new` whose values differ from `old`'s, as
/// "`field` old -> new" joined by ", " (a changed `[model]` or `[span]`).
fn changed_fields(old: &serde_json::Value, new: &serde_json::Value) -> String {
    new.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| old[k.as_str()] != **v)
                .map(|(k, v)| format!("`{k}` {} -> {v}", old[k.as_str()]))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .join(", ")
}

/// Where `dir/manifest.json` was written for another plan than `manifest` (the new
/// manifest's text): another model ([`FolderPlan::Other`]) or the same model with other
/// rules ([`FolderPlan::Edited`], naming the layers). `None` when there is no readable
/// manifest or it is the same plan (model and every rule).
fn folder_plan(dir: &Path, manifest: &str) -> Option<FolderPlan> {
    let old: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).ok()?).ok()?;
    let new: serde_json::Value = serde_json::from_str(manifest).ok()?;
    let same = old["model"] == new["model"]
        && old["span"] == new["span"]
        && old["cache_layout"]["layers"] == new["cache_layout"]["layers"];
    if same || old["model"].is_null() {
        return None;
    }
    let m = &old["model"];
    // A plan without `[model].name` (legal) showed as `?`.
    let name = match m["name"].as_str() {
        Some(n) => format!("`{}`", moa::input::shown_name(n)),
        None => "unnamed".into(),
    };
    // The name and shape make another plan; the same plan with another context is this
    // plan edited, said by field (round 26: `max_context_tokens` 1024 -> 2048 read as
    // "another plan's" with the same name and shape printed).
    let shape = ["name", "layers", "q_heads", "kv_heads", "head_dim"];
    if old["model"] != new["model"] && shape.iter().all(|k| old["model"][k] == new["model"][k]) {
        return Some(FolderPlan::Edited(format!(
            "{name} with other model fields ({})",
            changed_fields(&old["model"], &new["model"])
        )));
    }
    if old["model"] != new["model"] {
        // Of the same shape, what differs by field: a renamed plan printed the same shape
        // as the new one and nothing showed what changed (round 27).
        let same_shape = shape[1..]
            .iter()
            .all(|k| old["model"][k] == new["model"][k]);
        let differs = if same_shape {
            format!(
                "; it differs in {}",
                changed_fields(&old["model"], &new["model"])
            )
        } else {
            String::new()
        };
        // A manifest's counts as "1 layer", "2 KV heads" (round 28's plural slips).
        let count = |v: &serde_json::Value, noun: &str| match v.as_u64() {
            Some(n) => counted(n as usize, noun),
            None => format!("{v} {noun}s"),
        };
        return Some(FolderPlan::Other(format!(
            "{name}: {}, {}, {}, head_dim {}{differs}",
            count(&m["layers"], "layer"),
            count(&m["q_heads"], "query head"),
            count(&m["kv_heads"], "KV head"),
            m["head_dim"]
        )));
    }
    // Same model: say what moved, so an edited plan is not reported as "another plan"
    // (session 30: one head's rule edited in layer 2 read "held the kernels of another
    // plan … give each plan its own -o").
    if old["span"] != new["span"] {
        return Some(FolderPlan::Edited(format!(
            "{name} with other span constants ({}): every layer's kernels differ",
            changed_fields(&old["span"], &new["span"])
        )));
    }
    let empty = Vec::new();
    let old_layers = old["cache_layout"]["layers"].as_array().unwrap_or(&empty);
    let new_layers = new["cache_layout"]["layers"].as_array().unwrap_or(&empty);
    let changed: Vec<usize> = (0..old_layers.len().max(new_layers.len()))
        .filter(|&l| old_layers.get(l) != new_layers.get(l))
        .collect();
    const SHOWN: usize = 8;
    let mut list = changed
        .iter()
        .take(SHOWN)
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if changed.len() > SHOWN {
        list.push_str(", …");
    }
    Some(FolderPlan::Edited(format!(
        "{name} with other rules in layer{} {list} ({} of {} layers)",
        if changed.len() == 1 { "" } else { "s" },
        changed.len(),
        new_layers.len()
    )))
}

/// Whether two manifest texts are the same JSON but for `moa_version`.
fn only_moa_version_differs(have: &[u8], want: &str) -> bool {
    let parse = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b)
            .ok()
            .map(|mut m| {
                if let Some(o) = m.as_object_mut() {
                    o.remove("moa_version");
                }
                m
            })
    };
    matches!((parse(have), parse(want.as_bytes())), (Some(a), Some(b)) if a == b)
}

/// `--check`: compares `args.output` with `compiled`'s files as `write` would leave them
/// (every source, `manifest.json`, `kernels.rs`, no other kernel file in `wgsl/` or
/// `cuda/`), naming each difference on stderr. `Ok(false)` when anything differs.
fn check(args: &Args, compiled: &codegen::Compiled, foreign: &[PathBuf]) -> anyhow::Result<bool> {
    let dir = &args.output;
    // A compile writing the folder is waited for, as the loaders do: a check mid-write
    // compared half of it and called it a stopped compile (round 27).
    let _reading = dir.is_dir().then(|| codegen::emit::lock_for_reading(dir));
    let flag = |v: Option<clap::builder::PossibleValue>, default: &str| {
        v.map_or(default.to_string(), |v| v.get_name().to_string())
    };
    let (target, dtype) = (
        flag(args.target.to_possible_value(), "all"),
        flag(args.dtype.to_possible_value(), "f16"),
    );
    // The WGSL tuning flags too: a check given `--wgsl-prefill-q-tile 128` suggested a
    // rewrite without it, after which the same check failed again (round 41).
    let rerun = format!(
        "moa-compile {} -o {} --target {target} --dtype {dtype}{}{}",
        args.plan.display(),
        dir.display(),
        args.wgsl_prefill_q_tile
            .map_or(String::new(), |n| format!(" --wgsl-prefill-q-tile {n}")),
        if args.wgsl_prefill_key_pairs {
            " --wgsl-prefill-key-pairs"
        } else {
            ""
        },
    );
    let mut want: Vec<(String, String)> = compiled
        .all_artifacts()
        .iter()
        .flat_map(|(_, a)| a.iter())
        .map(|a| (a.path.clone(), a.source.clone()))
        .collect();
    want.push(("manifest.json".into(), compiled.manifest_json()));
    want.push(("kernels.rs".into(), compiled.embed_rs()));
    // No folder: one line, not every file of the compile listed as missing.
    if !dir.exists() {
        eprintln!(
            "moa-compile --check: `{}` does not exist, so all {} files of what `{}` compiles to are missing; `{rerun}` writes it",
            dir.display(),
            want.len(),
            args.plan.display()
        );
        return Ok(false);
    }
    let mut problems = Vec::new();
    let (mut differ, mut missing, mut removed) = (0usize, 0usize, 0usize);
    for (rel, source) in &want {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(have) if have == source.as_bytes() => continue,
            // A Windows checkout with git's core.autocrlf (or an editor) turns every LF
            // into CRLF: the folder then differs everywhere, and every loader refuses the
            // files by their sha256, for a reason "differs at line 1" did not tell.
            Ok(have) if crlf_to_lf(&have) == source.as_bytes() => problems.push(format!(
                "differs only in line endings (CRLF where moa-compile writes LF): {}; git's \
                 core.autocrlf or an editor converted it, and loaders refuse it by its sha256 \
                 (`* -text` in a .gitattributes of the folder keeps git from converting)",
                path.display()
            )),
            // A manifest written by another moa commit differs in `moa_version` alone when
            // no kernel changed: say which moa wrote it and that nothing else moved.
            Ok(have) if rel == "manifest.json" && only_moa_version_differs(&have, source) => {
                let written_by = serde_json::from_slice::<serde_json::Value>(&have)
                    .ok()
                    .and_then(|m| m["moa_version"].as_str().map(str::to_string))
                    .unwrap_or_default();
                problems.push(format!(
                    "differs only in moa_version: {} was written by moa {written_by}, this is moa {}; no kernel, ABI or plan field changed",
                    path.display(),
                    codegen::emit::MOA_VERSION
                ))
            }
            Ok(have) => problems.push(format!(
                "differs: {} ({} bytes, expected {}; first difference at line {})",
                path.display(),
                have.len(),
                source.len(),
                first_differing_line(&have, source.as_bytes())
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("missing: {}", path.display()))
            }
            Err(e) => problems.push(format!("unreadable: {} ({e})", path.display())),
        }
        if problems.last().is_some_and(|p| p.starts_with("missing: ")) {
            missing += 1;
        } else {
            differ += 1;
        }
    }
    let mut extra: Vec<PathBuf> = kernel_files(dir)
        .into_iter()
        .filter(|p| {
            let ours = p.extension().is_some_and(|e| e == "wgsl" || e == "cu");
            ours && !want.iter().any(|(rel, _)| dir.join(rel) == *p) && !foreign.contains(p)
        })
        .collect();
    extra.sort();
    for p in extra {
        removed += 1;
        problems.push(format!(
            "not produced by this plan (a compile would remove it): {}",
            p.display()
        ));
    }
    for p in foreign {
        problems.push(format!(
            "not moa-compile's (a compile refuses the folder and keeps it): {}",
            p.display()
        ));
    }
    if problems.is_empty() {
        eprintln!(
            "moa-compile --check: {} matches `{}` ({} files)",
            dir.display(),
            args.plan.display(),
            want.len()
        );
        return Ok(true);
    }
    // At most `SHOWN` lines of each kind (the text before `: `), then a count: a folder of a
    // 1024-layer plan checked against a 3-layer one printed 4 084 "would be removed" lines
    // (round 27); the totals below still count every file.
    const SHOWN: usize = 40;
    let mut shown: Vec<(&str, usize)> = Vec::new();
    for p in &problems {
        let kind = p.split(": ").next().unwrap_or(p);
        let i = match shown.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                shown.push((kind, 0));
                shown.len() - 1
            }
        };
        shown[i].1 += 1;
        if shown[i].1 <= SHOWN {
            eprintln!("  {p}");
        }
    }
    for (kind, n) in shown.iter().filter(|(_, n)| *n > SHOWN) {
        eprintln!("  … and {} more of the kind `{kind}`", n - SHOWN);
    }
    let listed = if shown.iter().any(|(_, n)| *n > SHOWN) {
        format!("at most {SHOWN} of a kind listed above")
    } else {
        "listed above".to_string()
    };
    // A CI step that checks with other flags than the folder was compiled with saw every
    // file differ and a rewrite command for its own flags: say what the folder holds.
    if let Some(note) = folder_flags_note(dir, &target, &dtype) {
        eprintln!("  {note}");
    }
    if let Some(note) = folder_tuning_note(dir, &compiled.manifest_json()) {
        eprintln!("  {note}");
    }
    // What a stopped compile leaves (its marker; the manifest is removed first and
    // written last):
    // 1000+ lines of "differs" for a 400-layer plan said nothing of the cause (round 18).
    if dir.join(codegen::emit::UNFINISHED_MARKER).is_file()
        && !dir.join("manifest.json").exists()
        && !kernel_files(dir).is_empty()
    {
        eprintln!(
            "  note: {} holds kernel files but no manifest.json: a moa-compile into it was stopped before it finished (the manifest is written last, so no loader takes the folder); `{rerun}` completes it",
            dir.display()
        );
    }
    // Same plan and flags, yet every WGSL file differed with no word why (round 33): the
    // folder was written through the library with the rules table.
    if library_rules_table(dir) {
        eprintln!(
            "  note: {}/manifest.json's WGSL kernels were written through the library with `WgslTuning::rules_table` \
             (their `constants.rules_table`: rules read from a `rules` argument, one text for every layer), \
             which moa-compile never writes (its kernels bake each layer's rules): check such a folder against \
             what the code that wrote it writes (`Compiled::wgsl_with`), not with moa-compile",
            dir.display()
        );
    }
    // Which plan the folder holds: a CI check after one head's rule was edited listed the
    // changed files with line numbers only; name the layers whose rules moved.
    match folder_plan(dir, &compiled.manifest_json()) {
        Some(FolderPlan::Other(old)) => eprintln!(
            "  note: {}/manifest.json is another plan's ({old})",
            dir.display()
        ),
        Some(FolderPlan::Edited(what)) => eprintln!(
            "  note: {}/manifest.json is of another version of this model's plan (an earlier edit, or another plan of the same model): {what}",
            dir.display()
        ),
        None => {}
    }
    let counts = [
        (differ, "differ"),
        (missing, "missing"),
        (removed, "would be removed"),
        (foreign.len(), "not moa-compile's"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ");
    // A manifest.json or kernels.rs that moa-compile did not write (or cannot read) makes
    // the compile refuse the folder: suggesting `{rerun}` sent the user to that refusal.
    let fix = match codegen::emit::check_owned(dir) {
        Ok(()) if foreign.is_empty() => format!("`{rerun}` rewrites it"),
        Ok(()) => format!(
            "`{rerun}` would refuse the folder: {}",
            foreign_refusal(dir, foreign)
        ),
        Err(e) => format!("`{rerun}` would refuse the folder: {e}"),
    };
    eprintln!(
        "moa-compile --check: {} differs from what `{}` compiles to ({counts}, {listed}; the compile writes {} files); {fix}",
        dir.display(),
        args.plan.display(),
        want.len()
    );
    Ok(false)
}

/// Where `dir/manifest.json` is moa-compile's and names other targets or another storage
/// type than `--target target --dtype dtype`: a line saying which flags the folder was
/// compiled with. `None` when they agree or the manifest cannot be read.
fn folder_flags_note(dir: &Path, target: &str, dtype: &str) -> Option<String> {
    let text = std::fs::read(dir.join("manifest.json")).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let storage = m["storage"].as_str()?;
    let mut targets: Vec<&str> = m["targets"]
        .as_array()?
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    targets.sort_unstable();
    let folder_target = match targets.as_slice() {
        ["cuda", "wgsl"] => "all",
        [one] => one,
        _ => return None,
    };
    (folder_target != target || storage != dtype).then(|| {
        format!(
            "note: {}/manifest.json says the folder was compiled with --target {folder_target} --dtype {storage} \
             (its `targets` and `storage`), and this check compiled --target {target} --dtype {dtype}: \
             give --check the folder's flags, or rewrite the folder with these",
            dir.display()
        )
    })
}

/// Where `dir/manifest.json`'s WGSL prefill has another query tile or another count of
/// keys a step than this check's compile (`want`, the manifest it would write): a line
/// naming the folder's WGSL tuning flags. Every prefill file and the manifest differed,
/// with no word of the flags (round 41); the key pairs were not in the manifest until
/// round 42 (`tiles.keys_per_step`), so a folder written before counts as one key a step.
fn folder_tuning_note(dir: &Path, want: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    let folder: serde_json::Value = serde_json::from_str(&text).ok()?;
    let this: serde_json::Value = serde_json::from_str(want).ok()?;
    let q = |m: &serde_json::Value| codegen::emit::wgsl_prefill_q_tile(m);
    let keys = |m: &serde_json::Value| {
        if codegen::emit::wgsl_prefill_keys_per_step(m) == Some(2) {
            "two keys a step"
        } else {
            "one key a step"
        }
    };
    let (fq, tq) = (q(&folder)?, q(&this)?);
    let (fk, tk) = (keys(&folder), keys(&this));
    if (fq, fk) == (tq, tk) {
        return None;
    }
    let flags = codegen::emit::wgsl_tuning_flags(&folder);
    Some(format!(
        "note: {}/manifest.json's WGSL prefill has {fq} queries a workgroup and {fk} \
         (`tiles.q_tile`, `tiles.keys_per_step`), and this check compiled {tq} and {tk}: give \
         --check the folder's flags ({}), or rewrite the folder with these",
        dir.display(),
        if flags.is_empty() {
            "none: the defaults"
        } else {
            flags.trim()
        }
    ))
}

/// The 1-based line of the first byte where `a` and `b` differ (one past the shorter's
/// last line when one is a prefix of the other).
fn first_differing_line(a: &[u8], b: &[u8]) -> usize {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    1 + a[..at].iter().filter(|&&c| c == b'\n').count()
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

/// Whether `name`, a file in `sub` (`wgsl` or `cuda`), is named exactly as a kernel file
/// moa-compile writes: `cuda/l<layer>.cu`, `wgsl/l<layer>_{prefill,decode,decode_coop}.wgsl`
/// (the layer as `{:02}` prints it: `l07`, `l123`) or `wgsl/decode_merge.wgsl`. Round 26: a
/// looser form (`l<digits>_<any lowercase>`) let `-o` remove a user's `cuda/l07.cu`-like
/// or `wgsl/l00_blur.wgsl` files, which moa never writes.
fn moa_kernel_name(sub: &str, name: &str) -> bool {
    let (stem, forms): (Option<&str>, &[&str]) = match sub {
        "wgsl" if name == "decode_merge.wgsl" => return true,
        "wgsl" => (
            name.strip_suffix(".wgsl"),
            &["_prefill", "_decode", "_decode_coop"],
        ),
        "cuda" => (name.strip_suffix(".cu"), &[""]),
        _ => return false,
    };
    let Some(rest) = stem.and_then(|s| s.strip_prefix('l')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, form) = rest.split_at(digits);
    number
        .parse::<u32>()
        .is_ok_and(|layer| format!("{layer:02}") == number)
        && forms.contains(&form)
}

/// The files `dir/kernels.rs` embeds (`include_str!("wgsl/l00_decode.wgsl")`) where that
/// file is moa-compile's (it starts with the header moa writes): a folder whose manifest
/// was removed by hand still says through it which kernel files are moa's.
fn embedded_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dir.join("kernels.rs")) else {
        return Vec::new();
    };
    if !text.starts_with("// Generated by moa-compile:") {
        return Vec::new();
    }
    text.split("include_str!(\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .filter(|rel| *rel != "manifest.json" && !rel.contains(".."))
        .map(|rel| dir.join(rel))
        .collect()
}

/// `candidates` ([`foreign_kernel_files`]) less the files that hold exactly what this
/// compile writes at their path: rewriting them loses nothing (a folder whose manifest
/// was removed by hand, recompiled from the same plan).
fn identical_removed(
    dir: &Path,
    candidates: Vec<PathBuf>,
    compiled: &codegen::Compiled,
) -> Vec<PathBuf> {
    if candidates.is_empty() {
        return candidates;
    }
    // By path, once: a folder of a 1024-layer plan has thousands of candidates.
    let sources: std::collections::HashMap<PathBuf, &str> = compiled
        .all_artifacts()
        .iter()
        .flat_map(|(_, a)| a.iter())
        .map(|a| (dir.join(&a.path), a.source.as_str()))
        .collect();
    candidates
        .into_iter()
        .filter(|p| {
            let same = sources
                .get(p)
                .is_some_and(|src| std::fs::read(p).is_ok_and(|have| have == src.as_bytes()));
            !same
        })
        .collect()
}

/// Why a compile refuses `dir` for its `foreign` kernel files (at most 8 named), and how
/// to get out; where the folder holds no manifest, also how to recover a folder whose
/// manifest was removed by hand.
fn foreign_refusal(dir: &Path, foreign: &[PathBuf]) -> String {
    const NAMED: usize = 8;
    let mut names = foreign
        .iter()
        .take(NAMED)
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ");
    if foreign.len() > NAMED {
        names.push_str(&format!(" and {} more", foreign.len() - NAMED));
    }
    let no_manifest = if dir.join("manifest.json").exists() {
        String::new()
    } else {
        format!(
            ". `{}` holds no manifest.json: if these files are an earlier compile's whose \
             manifest was removed, remove `{}` and `{}` (keeping any file of yours) and \
             compile again",
            dir.display(),
            dir.join("wgsl").display(),
            dir.join("cuda").display()
        )
    };
    format!(
        "-o `{}` holds kernel files moa-compile did not write: {names}. Its wgsl/ and cuda/ \
         folders belong to moa-compile, which removes every .wgsl/.cu file there that the \
         plan does not produce; give another output folder (-o), or move these files (a file \
         counts as moa-compile's when the folder's manifest.json or kernels.rs lists it, when \
         it holds exactly what this compile writes at its path, or beside the `{}` a stopped \
         compile leaves){no_manifest}",
        dir.display(),
        codegen::emit::UNFINISHED_MARKER,
    )
}

/// The `.wgsl` files in `dir/wgsl` and `.cu` files in `dir/cuda` that moa-compile did not
/// write: not listed by the folder's manifest or its `kernels.rs` ([`embedded_files`]),
/// and not a stopped compile's leftover (one of moa's names, [`moa_kernel_name`], beside
/// the [`codegen::emit::UNFINISHED_MARKER`] that compile left, in a folder that is not a
/// link). Sorted. A file holding exactly this compile's output is kept out later
/// ([`identical_removed`]).
fn foreign_kernel_files(dir: &Path) -> Vec<PathBuf> {
    let mut listed: Vec<PathBuf> = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| {
            m["files"].as_array().map(|f| {
                f.iter()
                    .filter_map(|e| e["path"].as_str().map(|p| dir.join(p)))
                    .collect()
            })
        })
        .unwrap_or_default();
    listed.extend(embedded_files(dir));
    let unfinished = dir.join(codegen::emit::UNFINISHED_MARKER).is_file();
    let mut foreign: Vec<PathBuf> = kernel_files(dir)
        .into_iter()
        .filter(|p| {
            let in_own_folder = |sub: &str, ext: &str| {
                p.parent().and_then(Path::file_name) == Some(sub.as_ref())
                    && p.extension().is_some_and(|e| e == ext)
            };
            let kernel = in_own_folder("wgsl", "wgsl") || in_own_folder("cuda", "cu");
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let sub = p
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            // Through a linked folder (`cuda -> ../elsewhere`) the files are someone
            // else's unless the manifest lists them: a name alone is no evidence there.
            // Nor is it without a stopped compile's marker: a user's `cuda/l07.cu` in a
            // folder no compile wrote was removed as a leftover (round 26).
            let linked = p.parent().is_some_and(|d| d.is_symlink());
            let leftover = unfinished && !linked && moa_kernel_name(&sub, &name);
            kernel && !leftover && !listed.contains(p)
        })
        .collect();
    foreign.sort();
    foreign
}

fn main() -> ExitCode {
    // A reader that closes the pipe (`moa-compile --check ... 2>&1 | head -1`) ends the
    // compile quietly, as it ends `moa` (src/bin/moa/main.rs): Rust ignores SIGPIPE, so
    // the next line on the closed pipe panicked, exit 101 (round 36).
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread starts; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // `--help` / `--version` that cannot be written (`> /dev/full`) exit 2 naming the
    // error: clap's `parse` ignored it and exited 0 (round 36).
    let args = Args::try_parse().unwrap_or_else(|e| {
        if e.use_stderr() {
            e.exit()
        }
        if let Err(why) = e.print().and_then(|()| std::io::stdout().flush()) {
            eprintln!("moa-compile failed\n  Cause: cannot write to standard output: {why}");
            std::process::exit(2);
        }
        std::process::exit(0)
    });
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("moa-compile failed");
            for cause in err.chain() {
                eprintln!("  Cause: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
