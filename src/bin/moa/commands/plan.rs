//! `moa plan import | export | show`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use moa::input::counted;
use moa::plan::stats::{plan_stats, BYTES_PER_ELEM};
use moa::plan::SpanMode;
use moa::plan::{upstream, ModelShape, Plan};

use moa::model::random::{like_or_err, SHAPES};
use moa::runtime::memory::{self, MemoryPlan};

use super::{storage, write_output};
use crate::args::PlanCommand;

/// `model.max_context_tokens` of an import given neither `--max-context` nor `--model`.
const ASSUMED_CONTEXT: u32 = 32768;

pub fn run(cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Import {
            upstream: path,
            model,
            layers,
            heads,
            kv_heads,
            head_dim,
            max_context,
            max_new_tokens,
            name,
            output,
        } => {
            if let Some(out) = &output {
                let mut inputs = vec![path.as_path()];
                inputs.extend(model.as_deref());
                super::check_not_an_input("-o", out, &inputs)?;
            }
            // `-` and pipes too, as for `moa plan show` (`moa plan export P.toml | moa
            // plan import - --model M`).
            let text = if path == std::path::Path::new("-") {
                moa::input::read_stdin_to_string("upstream plan", moa::input::MAX_TEXT_BYTES)
                    .context("cannot read the upstream plan from standard input (-)")?
            } else {
                moa::input::read_text_or_pipe(&path, "upstream plan", moa::input::MAX_TEXT_BYTES)
                    .with_context(|| format!("cannot read `{}`", path.display()))?
            };
            let from_model = match &model {
                Some(m) => {
                    let (config, refused) = moa::model::read_shape(m)
                        .with_context(|| format!("reading the shape of `{}`", m.display()))?;
                    if let Some(why) = refused {
                        // Llama 3.1+ / 3.2 scale RoPE, which moa's engine does not: their
                        // plan is still what an app embedding the kernels needs.
                        eprintln!(
                            "moa plan import: note: moa's engine refuses this model ({why}); its shape is all a plan needs (the kernels take Q and K after RoPE), so the plan is written, but moa generate, eval, calib and profile will not run this model"
                        );
                    }
                    Some(config.model_shape())
                }
                None => None,
            };
            let shown = model.as_ref().map(|m| m.display().to_string());
            let pick =
                |flag: &str, given: Option<u32>, of_model: Option<u32>| match (given, of_model) {
                    (Some(g), Some(m)) if g != m => bail!(
                        "--{flag} {g} disagrees with the model `{}`, whose config says {m}",
                        shown.as_deref().unwrap_or_default()
                    ),
                    (Some(g), _) => Ok(g),
                    (None, Some(m)) => Ok(m),
                    (None, None) => bail!(
                        "--{flag} is required (or give --model to read it from a model config)"
                    ),
                };
            let shape = ModelShape {
                name: name.or_else(|| from_model.as_ref().and_then(|m| m.name.clone())),
                layers: pick("layers", layers, from_model.as_ref().map(|m| m.layers))?,
                q_heads: pick("heads", heads, from_model.as_ref().map(|m| m.q_heads))?,
                kv_heads: pick(
                    "kv-heads",
                    kv_heads,
                    from_model.as_ref().map(|m| m.kv_heads),
                )?,
                head_dim: pick(
                    "head-dim",
                    head_dim,
                    from_model.as_ref().map(|m| m.head_dim),
                )?,
                max_context_tokens: max_context
                    .or(from_model.as_ref().map(|m| m.max_context_tokens))
                    .unwrap_or(ASSUMED_CONTEXT),
            };
            // Shorter than the model's is a choice (a plan for short requests); longer
            // would claim a context the model does not have. 0 was refused as the JSON
            // file's `model.max_context_tokens`, a field the user never wrote.
            if let Some(given) = max_context {
                let (limit, why) = match from_model.as_ref() {
                    Some(m) => (
                        m.max_context_tokens,
                        format!(
                            "the context of the model `{}`",
                            shown.as_deref().unwrap_or_default()
                        ),
                    ),
                    None => (1 << 30, "the longest context a plan takes".to_string()),
                };
                // Upstream's span constants (min span 128) need that much context: below
                // it the error named `span.min_span_tokens`, which import has no flag for
                // (round 20).
                let least = upstream::upstream_span_section().min_span_tokens;
                if given < least || given > limit {
                    bail!(
                        "--max-context {given} is out of range: allowed {least}..={limit} (at least upstream's span.min_span_tokens = {least}, which an imported plan keeps; at most {why})"
                    );
                }
            }
            let least = upstream::upstream_span_section().min_span_tokens;
            if let (None, Some(m)) = (max_context, from_model.as_ref()) {
                if m.max_context_tokens < least {
                    bail!(
                        "the model `{}` has a context of {} tokens, shorter than upstream's span.min_span_tokens = {least}, which an imported plan keeps: upstream MoA plans do not fit a model this short; write a moa plan for it (docs/DESIGN.md) or make one with `moa pipeline`",
                        shown.as_deref().unwrap_or_default(),
                        m.max_context_tokens
                    );
                }
            }
            // A shape flag out of range is named as the flag, not as the JSON file's
            // `model.*` field (round 25: `--kv-heads 64` read as the file's fault).
            if let Err((field, message)) = shape.validate() {
                let flag = [
                    ("model.layers", "layers", layers),
                    ("model.q_heads", "heads", heads),
                    ("model.kv_heads", "kv-heads", kv_heads),
                    ("model.head_dim", "head-dim", head_dim),
                    ("model.max_context_tokens", "max-context", max_context),
                ]
                .into_iter()
                .find(|(f, _, given)| *f == field && given.is_some());
                if let Some((_, flag, _)) = flag {
                    let message = message.strip_prefix("= ").unwrap_or(&message);
                    bail!("--{flag} {message} (the plan's `{field}`)");
                }
            }
            let assumed = max_context.is_none() && from_model.is_none();
            let plan_shown = path.display().to_string();
            // A plan that does not fit names the model file too: the numbers came from it.
            let mut plan = match (upstream::import(&text, &plan_shown, shape), &shown) {
                (Ok(p), _) => p,
                (Err(e), Some(m)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("importing `{plan_shown}` for the model `{m}`")))
                }
                (Err(e), None) => return Err(e.into()),
            };
            let ctx = plan.model().max_context_tokens;
            if let Some(new) = max_new_tokens {
                // A value that leaves no prompt token is refused here, not written into a
                // plan that moa-compile then refuses.
                if new >= ctx {
                    bail!(
                        "--max-new-tokens {new} is out of range: allowed 0..={} (N = prompt + new tokens must fit the plan's context of {ctx} tokens with at least one prompt token)",
                        ctx - 1
                    );
                }
                let (model, mut span, meta, layers) = plan.into_parts();
                span.max_new_tokens = new;
                plan = moa::Plan::new(model, span, meta, layers)?;
            }
            if plan.prompt_range().is_none() {
                // Written all the same (the TOML is the place to change it), but said:
                // moa-compile refuses such a plan. A small model's context (256 tokens)
                // met upstream's 1024 with only a hand edit of the TOML as the way out.
                eprintln!(
                    "moa plan import: warning: model.max_context_tokens = {ctx} leaves no prompt token with upstream's span.max_new_tokens = {} (N = prompt + new tokens must fit the context): moa-compile refuses this plan; import again with --max-new-tokens N (0..={}), or lower span.max_new_tokens in the written TOML",
                    plan.span().max_new_tokens,
                    ctx - 1
                );
            }
            if assumed {
                // Written into the plan, not only printed: the context caps the span
                // constants and the prompt length, and a reader of the plan must see that
                // it was a guess.
                let note = format!(
                    "model.max_context_tokens = {ASSUMED_CONTEXT} is assumed, not the model's: neither --max-context nor --model was given"
                );
                eprintln!("moa plan import: {note}");
                let meta = moa::plan::Meta {
                    notes: Some(note),
                    ..plan.meta().clone()
                };
                plan = plan.with_meta(meta)?;
            }
            write_output(output.as_deref(), &plan.to_toml())?;
        }
        PlanCommand::Export { plan, output } => {
            let path = plan;
            if let Some(out) = &output {
                super::check_not_an_input("-o", out, &[path.as_path()])?;
            }
            let plan = Plan::load_piped(&path)?;
            // The JSON holds only α and β: upstream's runtime applies its own constants.
            let ours = plan.span();
            let theirs = upstream::upstream_span_section();
            if *ours != theirs {
                eprintln!(
                    "moa plan export: warning: `{}` has [span] sink {}, min span {}, block {}, mode {}, max_new {}; upstream JSON cannot carry them, and upstream's runtime uses sink {}, min span {}, block {}, mode {}, max_new {}, so its spans will differ from this plan's",
                    path.display(),
                    ours.sink_tokens,
                    ours.min_span_tokens,
                    ours.block_tokens,
                    ours.mode.as_str(),
                    ours.max_new_tokens,
                    theirs.sink_tokens,
                    theirs.min_span_tokens,
                    theirs.block_tokens,
                    theirs.mode.as_str(),
                    theirs.max_new_tokens
                );
            }
            let mut json = upstream::export(&plan);
            json.push('\n');
            write_output(output.as_deref(), &json)?;
        }
        PlanCommand::Show {
            plan: path,
            prompt_len,
            max_batch: true,
            like,
            model,
            new,
            memory,
            dtype,
            prefill_chunk,
            ..
        } => {
            let config = match (&like, &model) {
                (Some(name), _) => like_or_err(name).with_context(|| format!("--like {name}"))?,
                (None, Some(m)) => {
                    // The shape is all the planner needs: a model moa's engine refuses
                    // (RoPE scaling, a GGUF tensor type moa cannot read) is planned too.
                    moa::model::read_shape(m)
                        .with_context(|| {
                            format!("--model: reading the shape of `{}`", m.display())
                        })?
                        .0
                }
                (None, None) => bail!(
                    "--max-batch needs the model's shape: --like (allowed {}) or --model FILE",
                    SHAPES.join(", ")
                ),
            };
            let shape_name = like
                .clone()
                .or_else(|| model.as_ref().map(|m| m.display().to_string()))
                .unwrap_or_default();
            let (label, plan) = super::load_plan_once(&path, &config)?;
            let report = max_batch(&MaxBatch {
                config: &config,
                shape_name: &shape_name,
                label: &label,
                plan: &plan,
                prompt: prompt_len as usize,
                new,
                memory: memory.as_deref().unwrap_or_default(),
                dtype: dtype.as_deref().unwrap_or("bf16"),
                prefill_chunk: prefill_chunk.unwrap_or(memory::DEFAULT_PREFILL_CHUNK_TOKENS),
            })?;
            write_output(None, &report)?;
        }
        PlanCommand::Show {
            plan: path,
            prompt_len,
            bytes_per_elem,
            heads,
            ..
        } => {
            let plan = Plan::load_piped(&path)?;
            // A plan whose max_new_tokens fills the context is the file's fault, said as
            // moa-compile says it (field, allowed range); it was blamed on --prompt-len.
            plan.check_prompt_room(&path.display().to_string())?;
            write_output(None, &show(&plan, prompt_len, bytes_per_elem, heads)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `bytes` as `12.3 MiB` from 1 MiB up (as before), else in KiB or bytes: a small
/// model's cache printed `0.0 MiB (moa) vs 0.0 MiB dense`; from 1 GiB up as `7.82 GiB`
/// (a 7B model's cache at 100k tokens printed `361219.0 MiB`).
pub(crate) fn size_shown(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", gib(bytes))
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", mib(bytes))
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// The report of `moa plan show`; errors name the flag and its allowed range.
pub fn show(
    plan: &Plan,
    prompt_len: u32,
    bytes_per_elem: u64,
    heads: bool,
) -> anyhow::Result<String> {
    let n = plan
        .checked_n_for_prompt(prompt_len)
        .map_err(|e| anyhow::anyhow!("--prompt-len {prompt_len}: {e}"))?;
    if !BYTES_PER_ELEM.contains(&bytes_per_elem) {
        bail!(
            "--bytes-per-elem {bytes_per_elem} is out of range: allowed {}..={} (2 for f16/bf16, 4 for f32)",
            BYTES_PER_ELEM.start(),
            BYTES_PER_ELEM.end()
        );
    }
    let st = plan_stats(plan, n, bytes_per_elem);
    let m = plan.model();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} : {}, {}, {}, head_dim {}",
        m.name
            .as_deref()
            .map_or("(unnamed)".into(), moa::input::shown_name),
        counted(m.layers as usize, "layer"),
        counted(m.q_heads as usize, "query head"),
        counted(m.kv_heads as usize, "KV head"),
        m.head_dim
    );
    let _ = writeln!(
        s,
        "span mode {}, sink {}, min span {}, block {}; N = prompt {} + max_new {} = {}",
        plan.span().mode.as_str(),
        plan.span().sink_tokens,
        plan.span().min_span_tokens,
        plan.span().block_tokens,
        prompt_len,
        plan.span().max_new_tokens,
        n
    );
    let _ = writeln!(s, "layer  rules  min_span  mean_span  max_span  kv_slots");
    for (l, ls) in st.layers.iter().enumerate() {
        let _ = writeln!(
            s,
            "{l:>5}  {:>5}  {:>8}  {:>9.1}  {:>8}  {:>8}",
            ls.distinct_rules, ls.min_q_span, ls.mean_q_span, ls.max_q_span, ls.kv_slots
        );
        if heads {
            let spans: Vec<String> = (0..m.q_heads as usize)
                .map(|h| plan.q_span(l, h, n).to_string())
                .collect();
            let _ = writeln!(s, "       spans: {}", spans.join(" "));
        }
    }
    let all: Vec<u32> = (0..m.layers as usize)
        .flat_map(|l| (0..m.q_heads as usize).map(move |h| (l, h)))
        .map(|(l, h)| plan.q_span(l, h, n))
        .collect();
    let mean = all.iter().map(|&x| f64::from(x)).sum::<f64>() / all.len() as f64;
    let _ = writeln!(
        s,
        "query-head spans: mean {:.1}, min {}, max {}; {:.1}% of N (upstream's density)",
        mean,
        all.iter().min().copied().unwrap_or(0),
        all.iter().max().copied().unwrap_or(0),
        st.q_density * 100.0
    );
    let _ = writeln!(
        s,
        "KV density (GQA-native cache, per KV head): {:.1}%",
        st.kv_density * 100.0
    );
    let _ = writeln!(
        s,
        "KV bytes per sequence at {} B/elem: {} (moa) vs {} dense = {:.3}x; upstream's MHA-expanded cache: {}",
        bytes_per_elem,
        size_shown(st.kv_bytes),
        size_shown(st.dense_kv_bytes),
        st.kv_bytes as f64 / st.dense_kv_bytes as f64,
        size_shown(st.upstream_kv_bytes)
    );
    // A span at most the sink leaves no window (docs/DESIGN.md §3): the head keeps its
    // first S tokens and never a recent one, the current token included. Valid (and
    // what the kernels do), but rarely what a plan means: said, with the fix.
    let sink = plan.span().sink_tokens;
    let sink_only = all.iter().filter(|&&x| x <= sink && x < n).count();
    if sink_only > 0 {
        let _ = writeln!(
            s,
            "note: {sink_only} of {} query-head spans at N = {n} are at most the sink ({sink} tokens) and below N{}: such a head keeps only its first S tokens and never a recent one, not even the current token (docs/DESIGN.md §3); a span.sink_tokens below span.min_span_tokens ({}) avoids it",
            all.len(),
            // A span of N keeps every token, whatever the sink: not counted, and said so
            // (round 27: "3 of 24 ... at most the sink" where all 24 were).
            match all.iter().filter(|&&x| x >= n).count() {
                0 => String::new(),
                full => format!(" ({full} span N or more: those keep every token)"),
            },
            plan.span().min_span_tokens
        );
    }
    // The "never more than dense" guarantee holds exactly when no KV head's span exceeds
    // N: always in moa span mode, not always in upstream mode (docs/DESIGN.md §2, §4).
    match plan.span().mode {
        SpanMode::Moa => {
            let _ = writeln!(
                s,
                "moa span mode: every span <= N, so the cache never exceeds the dense GQA cache"
            );
        }
        SpanMode::Upstream if st.kv_spans_over_n > 0 => {
            let pct = 100.0 * st.kv_bytes as f64 / st.dense_kv_bytes as f64;
            let _ = writeln!(
                s,
                "upstream span mode: {} of {} KV-head spans exceed N = {n} (upstream rounds spans up to min span {} and block {} even past N); the cache is {pct:.1}% of dense{}; only moa span mode guarantees at most dense",
                st.kv_spans_over_n,
                u64::from(m.layers) * u64::from(m.kv_heads),
                plan.span().min_span_tokens,
                plan.span().block_tokens,
                if st.kv_bytes > st.dense_kv_bytes {
                    ", MORE than dense"
                } else {
                    " here"
                }
            );
        }
        SpanMode::Upstream => {
            let _ = writeln!(
                s,
                "upstream span mode: no KV-head span exceeds N = {n} here, so the cache is within dense (at shorter N, spans rounded past N can exceed it)"
            );
        }
    }
    Ok(s)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// `bytes` in GiB with 2 decimals, or in MiB below 0.1 GiB (a small model's weights
/// and rows printed as `0.00 GiB`).
fn gib_shown(bytes: u64) -> String {
    if gib(bytes) >= 0.1 {
        format!("{:.2} GiB", gib(bytes))
    } else {
        format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// A least `--memory` as [`gib_shown`] prints it, rounded up: the printed value must be
/// enough (`{:.2}` rounded 0.0149 GiB to 0.01, which was then refused).
fn at_least(bytes: u64) -> String {
    let (v, unit) = if gib(bytes) >= 0.1 {
        (gib(bytes), "GiB")
    } else {
        (bytes as f64 / (1u64 << 20) as f64, "MiB")
    };
    format!("{:.2} {unit}", (v * 100.0).ceil() / 100.0)
}

/// `--memory` in bytes: a positive number of GiB, or with a unit (GiB, GB, MiB, MB).
fn parse_memory(text: &str) -> anyhow::Result<u64> {
    const GIB: f64 = (1u64 << 30) as f64;
    let lower = text.trim().to_ascii_lowercase();
    let (num, scale) = [("gib", GIB), ("gb", 1e9), ("mib", 1048576.0), ("mb", 1e6)]
        .iter()
        .find_map(|&(unit, scale)| lower.strip_suffix(unit).map(|n| (n, scale)))
        .unwrap_or((lower.as_str(), GIB));
    let value: f64 = num.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--memory `{text}` is not a size: allowed a number of GiB, or one with a unit GiB, GB, MiB, MB (e.g. 135, 135GiB, 145GB)"
        )
    })?;
    let bytes = value * scale;
    // 2^60 bytes is far past any device and keeps the sums of the planner within u64.
    if !(1.0..=(1u64 << 60) as f64).contains(&bytes) {
        bail!("--memory `{text}` is out of range: allowed 1 byte ..= 2^30 GiB");
    }
    Ok(bytes as u64)
}

/// Inputs of [`max_batch`]: the model's shape (named `shape_name` in errors), the plan
/// (`label`) and the command-line values, unchecked.
struct MaxBatch<'a> {
    config: &'a moa::model::LlamaConfig,
    shape_name: &'a str,
    label: &'a str,
    plan: &'a Plan,
    prompt: usize,
    new: Option<usize>,
    memory: &'a str,
    dtype: &'a str,
    prefill_chunk: usize,
}

/// The report of `moa plan show --max-batch`: the CUDA engine's memory planner
/// (`runtime::memory`) for the plan and for dense at one budget. Errors name the flag and
/// its allowed range.
fn max_batch(a: &MaxBatch) -> anyhow::Result<String> {
    let c = a.config;
    let dtype = storage(a.dtype)?;
    let budget = parse_memory(a.memory)?;
    if a.prefill_chunk == 0 {
        bail!("--prefill-chunk 0: allowed 1 or more tokens per prefill pass");
    }
    // A request must fit the model's context and the plan's (DESIGN §8; the engine refuses
    // a prompt past either): an imported 8B plan of 32k tokens was planned at 100k.
    let plan_ctx = a.plan.model().max_context_tokens as usize;
    let (ctx, whose) = if plan_ctx < c.context_length {
        (
            plan_ctx,
            format!(
                "the context of plan `{}` (its model.max_context_tokens)",
                a.label
            ),
        )
    } else {
        (
            c.context_length,
            format!("the context of `{}`", a.shape_name),
        )
    };
    let new = a.new.unwrap_or(a.plan.span().max_new_tokens as usize);
    // A default the user never typed is said as one: an upstream JSON's 1024 met a
    // 256-token model as "--new 1024" with no --new given.
    let defaulted = if a.new.is_none() {
        format!(
            " (the plan's span.max_new_tokens, taken when --new is not given: give --new 0..={})",
            ctx.saturating_sub(1)
        )
    } else {
        String::new()
    };
    if new >= ctx {
        bail!(
            "--new {new}{defaulted}: {whose} is {ctx} tokens and a prompt needs at least one: allowed 0..={}",
            ctx.saturating_sub(1)
        );
    }
    // The flag is --prompt-len (--prompt is its hidden alias).
    if a.prompt == 0 || a.prompt > ctx - new {
        bail!(
            "--prompt-len {} + --new {new} = {} tokens: {whose} is {ctx}: allowed --prompt-len 1..={} with --new {new}{defaulted}",
            a.prompt,
            a.prompt + new,
            ctx - new
        );
    }
    let lm_head = !c.tied_embeddings;
    let dense_plan = Plan::dense(c.model_shape())?;
    let of = |p: &Plan| MemoryPlan::for_plan(c, dtype, lm_head, p, a.prompt, new, a.prefill_chunk);
    let (moa, dense) = (of(a.plan), of(&dense_plan));
    if budget < moa.weight_bytes {
        bail!(
            "--memory {} is less than the weights of `{}` in {} ({}): allowed at least {} (the weights, the activations and one row with plan `{}`)",
            gib_shown(budget),
            a.shape_name,
            a.dtype,
            gib_shown(moa.weight_bytes),
            at_least(moa.budget_for(1)),
            a.label
        );
    }
    let Some(plan_rows) = moa.max_rows_in(budget).filter(|&r| r > 0) else {
        bail!(
            "--memory {} holds no row with plan `{}` (weights {} in {} + one request of 1 row {}): allowed at least {}",
            gib_shown(budget),
            a.label,
            gib_shown(moa.weight_bytes),
            a.dtype,
            gib_shown(moa.request_bytes(1)),
            at_least(moa.budget_for(1))
        );
    };
    let dense_rows = dense.max_rows_in(budget).unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} : {}, {} query / {} of {}, hidden {}, ffn {}, vocab {}; {}",
        a.shape_name,
        counted(c.n_layers, "layer"),
        c.q_heads,
        counted(c.kv_heads, "KV head"),
        c.head_dim,
        c.hidden_size,
        c.ffn_size,
        c.vocab_size,
        a.dtype
    );
    // A pass holds at least one whole prompt (the engine never splits a row): a
    // --prefill-chunk below the prompt was raised to it without a word.
    let raised = if a.prefill_chunk < a.prompt {
        format!(
            " (--prefill-chunk {} is below one prompt; a pass holds at least one whole row)",
            a.prefill_chunk
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "N = prompt {} + new {new} = {}; prefill passes of up to {} tokens{raised}",
        a.prompt,
        a.prompt + new,
        a.prefill_chunk.max(a.prompt)
    );
    let _ = writeln!(
        s,
        "memory {:.2} GiB ({budget} bytes) = weights {:.2} GiB + prefill/decode activations {:.2} GiB + rows",
        gib(budget),
        gib(moa.weight_bytes),
        gib(moa.fixed_bytes)
    );
    let w = a.label.len().max("attention".len());
    let _ = writeln!(
        s,
        "{:<w$}  bytes/row    KV/row GiB  act/row MiB  largest batch  uses GiB",
        "attention"
    );
    for (name, m, rows) in [("dense", &dense, dense_rows), (a.label, &moa, plan_rows)] {
        let _ = writeln!(
            s,
            "{name:<w$}  {:>11}  {:>10.3}  {:>11.2}  {rows:>13}  {:>8.2}",
            m.row_bytes(),
            gib(m.kv_bytes_per_row),
            mib(m.act_bytes_per_row),
            gib(m.budget_for(rows))
        );
    }
    let _ = writeln!(
        s,
        "largest batch: {} with the plan, {dense_rows} dense = {}",
        counted(plan_rows, "row"),
        if dense_rows == 0 {
            "dense fits no row".to_string()
        } else {
            format!("{:.2}x dense", plan_rows as f64 / dense_rows as f64)
        }
    );
    Ok(s)
}
