//! `moa plan import | export | show`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use moa::plan::stats::{plan_stats, BYTES_PER_ELEM};
use moa::plan::SpanMode;
use moa::plan::{upstream, ModelShape, Plan};

use super::write_output;
use crate::args::PlanCommand;

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
            name,
            output,
        } => {
            let text =
                moa::input::read_to_string(&path, "upstream plan", moa::input::MAX_TEXT_BYTES)
                    .with_context(|| format!("cannot read `{}`", path.display()))?;
            let from_model = match &model {
                Some(m) => Some(
                    moa::model::read_config(m)
                        .with_context(|| format!("reading the shape of `{}`", m.display()))?
                        .0
                        .model_shape(),
                ),
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
                    .unwrap_or(32768),
            };
            let plan = upstream::import(&text, &path.display().to_string(), shape)?;
            write_output(output.as_deref(), &plan.to_toml())?;
        }
        PlanCommand::Export { plan, output } => {
            let plan = Plan::load(&plan)?;
            let mut json = upstream::export(&plan);
            json.push('\n');
            write_output(output.as_deref(), &json)?;
        }
        PlanCommand::Show {
            plan: path,
            prompt_len,
            bytes_per_elem,
            heads,
        } => {
            let plan = Plan::load(&path)?;
            write_output(None, &show(&plan, prompt_len, bytes_per_elem, heads)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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
        "model {} : {} layers, {} query heads, {} KV heads, head_dim {}",
        m.name.as_deref().unwrap_or("(unnamed)"),
        m.layers,
        m.q_heads,
        m.kv_heads,
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
        "KV bytes per sequence at {} B/elem: {:.1} MiB (moa) vs {:.1} MiB dense = {:.3}x; upstream's MHA-expanded cache: {:.1} MiB",
        bytes_per_elem,
        mib(st.kv_bytes),
        mib(st.dense_kv_bytes),
        st.kv_bytes as f64 / st.dense_kv_bytes as f64,
        mib(st.upstream_kv_bytes)
    );
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
