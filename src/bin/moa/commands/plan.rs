//! `moa plan import | export | show`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use moa::plan::stats::plan_stats;
use moa::plan::{upstream, ModelShape, Plan};

use super::write_output;
use crate::args::PlanCommand;

pub fn run(cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Import {
            upstream: path,
            layers,
            heads,
            kv_heads,
            head_dim,
            max_context,
            name,
            output,
        } => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let shape = ModelShape {
                name,
                layers,
                q_heads: heads,
                kv_heads,
                head_dim,
                max_context_tokens: max_context,
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
            write_output(None, &show(&plan, prompt_len, bytes_per_elem, heads))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The report of `moa plan show`.
pub fn show(plan: &Plan, prompt_len: u32, bytes_per_elem: u64, heads: bool) -> String {
    let n = plan.n_for_prompt(prompt_len);
    let st = plan_stats(plan, n, bytes_per_elem);
    let m = &plan.model;
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
        plan.span.mode.as_str(),
        plan.span.sink_tokens,
        plan.span.min_span_tokens,
        plan.span.block_tokens,
        prompt_len,
        plan.span.max_new_tokens,
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
    s
}
