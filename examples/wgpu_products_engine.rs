//! The wgpu engine end to end on a random-weight model of a real shape (issue 12 targets):
//! for each plan, load (upload + kernels), a parity check of one short row against the CPU
//! reference (prefill and two decode steps, last-token logits), then `rows × prompt`
//! tokens of prefill and `new` greedy tokens, with tokens/s, the decode step's dispatches
//! and times, the KV bytes and how each layer's cache is split over the binding limit.
//!
//! ```sh
//! cargo run --release --example wgpu_products_engine -- --like llama-3.2-1b \
//!     --rows 4 --prompt 4096 --new 32 --plan dense \
//!     --plan tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
//! ```
//!
//! Options: `--like` smollm2-135m, llama-2-7b, llama-3-8b, llama-3.2-3b or llama-3.2-1b (16 layers,
//! 32 query / 8 KV heads of 64, the shape of `tests/model_llama1b_gpu.rs`); `--plan` a
//! plan TOML, an upstream `moa_alpha_beta.json` (imported for the shape) or `dense`,
//! repeatable; `--parity T` prompt tokens of the check (0: none; default 24);
//! `--max-binding B` plans buffers for a binding limit of B bytes (the split paths);
//! `--f32` runs the engine in f32 storage (what an adapter without shader f16 runs);
//! `--profile R` times the decode step per dispatch kind after the run
//! (`WgpuEngine::profile_decode`, R steps' worth per submission); `--profile-prefill`
//! times the first prefill pass per dispatch kind (`WgpuEngine::profile_prefill`);
//! `--prefill-reps R` times R more whole prefills of the same prompts (a new request each,
//! the first pass's allocations and pipelines warm) and prints their median tokens/s.
//! The engine's paths are chosen by the `MOA_WGPU_*` / `MOA_WGSL_*` settings of the
//! environment (`WgpuEngineOptions`, `WgpuContextOptions`): docs/DESIGN.md §7 has the
//! table of them, their defaults and their measured verdicts; a malformed value stops the
//! run naming it, an unknown name is a warning. The bench scripts use e.g.
//! `MOA_WGPU_COOP_ATTN=0` (the scalar prefill attention: loads in 2 s instead of 15 when
//! only decode is timed), `MOA_WGPU_MATVEC=tree`, `MOA_WGPU_COOP_DECODE=1`, and the WGSL
//! decode forms the engine compiles its attention with (`MOA_WGSL_FUSED_MERGE=1`,
//! `MOA_WGSL_V_FIRST=1`: benches/wgpu-h200/s14/step-ab.sh, s15/call1.sh).
//! Two of the decode bench's timing diagnostics of the flat decode reach the engine here
//! (wrong results, so `--parity 0`; the profile's attention row is what they are for):
//! `MOA_WGSL_SG_PIECE` 1–3 (the body built only up to the Q·K partial scores, + the
//! butterfly and masks, + the online softmax: `WgslTuning::decode_sg_piece`) and
//! `MOA_WGSL_SG_NO_COMBINE=1` (no combine of the subgroups' partials:
//! `WgslTuning::decode_sg_no_combine`); with `MOA_WGSL_SG_DECODE=read` they time what
//! each part of a step's item costs (benches/decode-h200/s24/call1.sh).

use std::process::ExitCode;
use std::time::Instant;

use moa::model::random::{like, random_model};
use moa::model::{CpuReference, LlamaConfig, Masking};
use moa::plan::{upstream, Plan};
use moa::runtime::engine::{Engine, Sampling};
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::{SubgroupProducts, WgpuEngine, WgpuEngineOptions};

fn main() -> ExitCode {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu_products_engine: {e}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

/// The Llama-3.2-1B shape (meta-llama/Llama-3.2-1B-Instruct's config).
fn shape(name: &str) -> Result<LlamaConfig, Error> {
    like(name).ok_or_else(|| format!("--like {name}: unknown shape").into())
}

fn ids(n: usize, seed: u64, vocab: usize) -> Vec<u32> {
    (0..n as u64)
        .map(|i| ((i * 7919 + seed * 104_729 + i * i) % vocab as u64) as u32)
        .collect()
}

/// One `--sg-variants` entry: KSPLIT, column groups, DIAG, rows a workgroup row, K trips'
/// weight loads first (`UNROLL`).
type SgVariant = (Option<u32>, Option<u32>, u32, Option<u32>, Option<u32>);

struct Args {
    like: String,
    rows: usize,
    prompt: usize,
    new: usize,
    plans: Vec<String>,
    parity: usize,
    max_binding: Option<u64>,
    /// Steps' worth of dispatches per timed submission in the per-kind decode profile (0:
    /// no profile); the prefill profile runs each kind once.
    profile: usize,
    /// Also time the first prefill pass per dispatch kind (each kind once).
    profile_prefill: bool,
    /// `--sg-variants "KSPLIT:GROUPS:DIAG[:ROWS[:UNROLL]];..."` (`-` for auto; ROWS 4, 8 or
    /// 16 rows a workgroup row, UNROLL 1, 2 or 4, default auto): after the run, the decode
    /// products on subgroups rebuilt with each (`set_subgroup_matvec`, `set_sg_diag`) and
    /// the step profiled again over the same request's caches (no reload, no prefill),
    /// with a parity check for DIAG 0: A/B/A/B in one process.
    sg_variants: Vec<SgVariant>,
    /// `--chunks "C,..."`: after the run, a new request per chunk length C in slots (0:
    /// the work-list model's per-layer choice; `set_decode_chunk`), prefilled, three
    /// greedy steps, and its step profiled (before any `--sg-variants`).
    chunks: Vec<u32>,
    /// `--prefill-reps R`: after the run, R more prefills of the same prompts (a new
    /// request each), timed end to end; their median tokens/s is printed.
    prefill_reps: usize,
    /// `--f32`: f32 storage (the engine's `force_f32`) instead of f16 where the adapter
    /// has it.
    f32: bool,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        like: "smollm2-135m".into(),
        rows: 16,
        prompt: 4096,
        new: 32,
        plans: Vec::new(),
        parity: 24,
        max_binding: None,
        profile: 0,
        profile_prefill: false,
        sg_variants: Vec::new(),
        chunks: Vec::new(),
        prefill_reps: 0,
        f32: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--like" => a.like = value()?,
            "--rows" => a.rows = value()?.parse()?,
            "--prompt" => a.prompt = value()?.parse()?,
            "--new" => a.new = value()?.parse()?,
            "--plan" => a.plans.push(value()?),
            "--parity" => a.parity = value()?.parse()?,
            "--max-binding" => a.max_binding = Some(value()?.parse()?),
            "--profile" => a.profile = value()?.parse()?,
            "--profile-prefill" => a.profile_prefill = true,
            "--f32" => a.f32 = true,
            "--prefill-reps" => a.prefill_reps = value()?.parse()?,
            "--chunks" => {
                for c in value()?.split(',') {
                    a.chunks.push(c.parse()?);
                }
            }
            "--sg-variants" => {
                let bad = |v: &str| {
                    format!("--sg-variants: `{v}` is not KSPLIT:GROUPS:DIAG[:ROWS[:UNROLL]]")
                };
                let opt = |x: &str| -> Result<Option<u32>, String> {
                    if x == "-" {
                        Ok(None)
                    } else {
                        x.parse().map(Some).map_err(|_| bad(x))
                    }
                };
                for v in value()?.split(';').filter(|v| !v.is_empty()) {
                    let f: Vec<&str> = v.split(':').collect();
                    let (ks, g, d, rows, unroll) = match f[..] {
                        [ks, g, d] => (ks, g, d, "-", "-"),
                        [ks, g, d, rows] => (ks, g, d, rows, "-"),
                        [ks, g, d, rows, unroll] => (ks, g, d, rows, unroll),
                        _ => return Err(bad(v).into()),
                    };
                    a.sg_variants.push((
                        opt(ks)?,
                        opt(g)?,
                        d.parse().map_err(|_| bad(v))?,
                        opt(rows)?,
                        opt(unroll)?,
                    ));
                }
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if a.plans.is_empty() {
        a.plans.push("dense".into());
    }
    if a.rows == 0 || a.prompt == 0 || a.new < 2 {
        return Err("--rows and --prompt must be at least 1, --new at least 2".into());
    }
    Ok(a)
}

fn load_plan(path: &str, config: &LlamaConfig) -> Result<Option<Plan>, Error> {
    if path == "dense" {
        return Ok(None);
    }
    let plan = if path.ends_with(".json") {
        let text = std::fs::read_to_string(path)?;
        upstream::import(&text, path, config.model_shape())?
    } else {
        Plan::load(std::path::Path::new(path))?
    };
    Ok(Some(plan))
}

/// One row of `tokens` tokens and two decode steps, last-token logits against the CPU
/// reference; the greedy path (the device's argmax) fed the same tokens must pick the
/// argmax of the device's own logits.
fn parity(
    gpu: &WgpuEngine,
    cpu: &CpuReference,
    plan: Option<&Plan>,
    tokens: usize,
    vocab: usize,
) -> Result<String, Error> {
    let prompt = ids(tokens, 1, vocab);
    let mut req = gpu.start(&[prompt.len()], 2, 0)?;
    let n = req.n_tokens();
    let masking = match plan {
        Some(p) => Masking::Plan {
            plan: p,
            n_tokens: n,
        },
        None => Masking::Dense,
    };
    let mut seq = prompt.clone();
    let mut got = gpu.prefill_logits(&mut req, std::slice::from_ref(&prompt))?;
    let (mut err, mut same, mut steps) = (0f32, 0, 0);
    let mut greedy_req = gpu.start(&[prompt.len()], 2, 0)?;
    let mut greedy = gpu.prefill_tokens(
        &mut greedy_req,
        std::slice::from_ref(&prompt),
        Sampling::greedy(),
    )?;
    let mut greedy_same = 0;
    for step in 0..3 {
        let want = cpu.forward(&seq, masking)?;
        let last = &want.data[(seq.len() - 1) * vocab..seq.len() * vocab];
        err = err.max(max_err(&got[0], last));
        same += usize::from(argmax(&got[0]) == argmax(last));
        greedy_same += usize::from(greedy[0] as usize == argmax(&got[0]));
        steps += 1;
        if step == 2 {
            break;
        }
        let next = (step * 101 + 7) as u32;
        seq.push(next);
        got = gpu.decode_logits(&mut req, &[next])?;
        greedy = gpu.decode_tokens(&mut greedy_req, &[next], Sampling::greedy())?;
    }
    Ok(format!(
        "1 row x {tokens} tokens + 2 decode steps: max |logit err| {err:.4} against the CPU reference, argmax equal {same}/{steps}; \
         greedy tokens = argmax of the device's logits {greedy_same}/{steps}"
    ))
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    // NaN-aware: a fold with f32::max alone skips NaN (NaN logits passed such a check).
    moa::runtime::cases::max_abs_error(a, b).0
}

/// The environment's engine options with the flat decode's timing diagnostics
/// (`MOA_WGSL_SG_PIECE` 1–3, `MOA_WGSL_SG_NO_COMBINE=1`; the decode bench's names, which
/// the engine itself does not read), or `None` where neither is set.
fn diagnostic_options() -> Result<Option<WgpuEngineOptions>, Error> {
    let piece = match std::env::var("MOA_WGSL_SG_PIECE").ok().as_deref() {
        None | Some("") | Some("0") => 0,
        Some(p @ ("1" | "2" | "3")) => p.parse::<u8>()?,
        Some(p) => return Err(format!("MOA_WGSL_SG_PIECE={p:?}: 0, 1, 2 or 3").into()),
    };
    let no_combine = match std::env::var("MOA_WGSL_SG_NO_COMBINE").ok().as_deref() {
        None | Some("") | Some("0") => false,
        Some("1") => true,
        Some(v) => return Err(format!("MOA_WGSL_SG_NO_COMBINE={v:?}: 0 or 1").into()),
    };
    if piece == 0 && !no_combine {
        return Ok(None);
    }
    let mut o = WgpuEngineOptions::from_env()?;
    o.wgsl_tuning.decode_sg_piece = piece;
    o.wgsl_tuning.decode_sg_no_combine = no_combine;
    println!("timing diagnostic (wrong results): decode_sg_piece {piece}, decode_sg_no_combine {no_combine}");
    Ok(Some(o))
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&i, &j| v[i].total_cmp(&v[j]))
        .unwrap_or(0)
}

fn run() -> Result<(), Error> {
    let a = args()?;
    let config = shape(&a.like)?;
    let vocab = config.vocab_size;
    let t = Instant::now();
    let model = random_model(&config, 7);
    println!(
        "{}: random weights in {:.1} s",
        a.like,
        t.elapsed().as_secs_f64()
    );
    let ctx = WgpuContext::new()?;
    let cpu = if a.parity > 0 {
        Some(CpuReference::from_model(model.clone())?)
    } else {
        None
    };
    for path in &a.plans {
        let plan = load_plan(path, &config)?;
        let t = Instant::now();
        let gpu = match (a.max_binding, diagnostic_options()?) {
            (Some(b), _) => {
                WgpuEngine::new_with_binding_limit(&ctx, &model, plan.as_ref(), a.f32, b)?
            }
            (None, Some(o)) => WgpuEngine::new_with_options(&ctx, &model, plan.as_ref(), a.f32, o)?,
            (None, None) => WgpuEngine::new(&ctx, &model, plan.as_ref(), a.f32)?,
        };
        let load = t.elapsed().as_secs_f64();
        let name = if path == "dense" {
            "dense"
        } else {
            path.rsplit('/')
                .nth(usize::from(path.ends_with(".json")))
                .unwrap_or(path)
        };
        println!(
            "== {} {name}: {} ({} storage, binding limit {} B, weights {:.2} GB): loaded in {load:.1} s",
            a.like,
            gpu.describe(),
            gpu.storage().name(),
            gpu.max_binding(),
            gpu.weight_bytes() as f64 / 1e9
        );
        if let Some((n, secs)) = gpu.prefill_attention_build() {
            println!("prefill attention on matrix units: {n} distinct pipelines built in {secs:.1} s (part of the load)");
        }
        if let Some(cpu) = &cpu {
            println!(
                "parity: {}",
                parity(&gpu, cpu, plan.as_ref(), a.parity, vocab)?
            );
        }
        let prompts: Vec<Vec<u32>> = (0..a.rows)
            .map(|r| ids(a.prompt, 100 + r as u64, vocab))
            .collect();
        let lens = vec![a.prompt; a.rows];
        let mut req = gpu.start(&lens, a.new, 0)?;
        let parts = gpu.cache_parts(&req)?;
        let most = parts.iter().map(Vec::len).max().unwrap_or(1);
        let t0 = Instant::now();
        let mut next = gpu.prefill_tokens(&mut req, &prompts, Sampling::greedy())?;
        let prefill = t0.elapsed().as_secs_f64();
        let mut out = vec![next.clone()];
        let t1 = Instant::now();
        for _ in 1..a.new {
            next = gpu.decode_tokens(&mut req, &next, Sampling::greedy())?;
            out.push(next.clone());
        }
        let decode = t1.elapsed().as_secs_f64();
        let stats = gpu.decode_stats(&req)?;
        let steps = a.new - 1;
        println!(
            "prefill: {}x{} tokens in {prefill:.3} s = {:.0} tok/s; decode: {steps} steps x {} rows in {decode:.3} s = {:.0} tok/s; \
             KV cache at N = {}: {:.1} MiB (at most {most} part(s) per layer)",
            a.rows,
            a.prompt,
            (a.rows * a.prompt) as f64 / prefill,
            a.rows,
            (a.rows * steps) as f64 / decode,
            req.n_tokens(),
            req.kv_bytes() as f64 / (1 << 20) as f64
        );
        println!("{}", stats.summary());
        if let Some(state) = gpu.fused_mlp_state() {
            let (arrivals, flag) = state?;
            println!("fused mlp meetings: {arrivals} arrivals, error flag {flag}");
        }
        let row0: Vec<u32> = out.iter().map(|s| s[0]).take(12).collect();
        println!("row 0 tokens: {row0:?}");
        if a.profile > 0 {
            println!(
                "decode step per dispatch kind ({} steps' worth per submission):",
                a.profile
            );
            for k in gpu.profile_decode(&req, a.profile)? {
                println!("  {}", k.line());
            }
        }
        if out.iter().flatten().any(|&t| t as usize >= vocab) {
            return Err("a token id outside the vocabulary".into());
        }
        let mut gpu = gpu;
        for &c in &a.chunks {
            gpu.set_decode_chunk((c > 0).then_some(c));
            let mut r = gpu.start(&lens, 4, 0)?;
            let mut t = gpu.prefill_tokens(&mut r, &prompts, Sampling::greedy())?;
            for _ in 0..3 {
                t = gpu.decode_tokens(&mut r, &t, Sampling::greedy())?;
            }
            let reps = a.profile.max(1);
            println!(
                "chunk {c} decode step per dispatch kind ({reps} steps' worth per submission):"
            );
            for k in gpu.profile_decode(&r, reps)? {
                println!("  {}", k.line());
            }
        }
        if !a.sg_variants.is_empty() {
            let name = |&(ksplit, groups, diag, rows, unroll): &SgVariant| {
                format!(
                    "ksplit {} groups {} diag {diag} rows {} unroll {}",
                    ksplit.map_or("auto".into(), |k: u32| k.to_string()),
                    groups.map_or("auto".into(), |g: u32| g.to_string()),
                    rows.map_or("auto".into(), |r: u32| r.to_string()),
                    unroll.map_or("auto".into(), |u: u32| u.to_string())
                )
            };
            // Parity of each distinct real variant first: the CPU reference's seconds
            // would leave the GPU idle (and its clocks down) right before a profile
            // (session 17, call 1: rows after a parity check ran up to 3x slow as a whole).
            let mut checked = Vec::new();
            for v in &a.sg_variants {
                let &(ksplit, groups, diag, rows, unroll) = v;
                if diag != 0 || checked.contains(v) {
                    continue;
                }
                checked.push(*v);
                gpu.set_sg_diag(0)?;
                gpu.set_subgroup_matvec(Some(SubgroupProducts {
                    ksplit,
                    groups,
                    rows,
                    unroll,
                }))?;
                println!("variant {}: {}", name(v), gpu.decode_products());
                if let Some(cpu) = &cpu {
                    println!(
                        "variant {} parity: {}",
                        name(v),
                        parity(&gpu, cpu, plan.as_ref(), a.parity, vocab)?
                    );
                }
            }
            let reps = a.profile.max(1);
            for v in &a.sg_variants {
                let &(ksplit, groups, diag, rows, unroll) = v;
                gpu.set_sg_diag(diag)?;
                gpu.set_subgroup_matvec(Some(SubgroupProducts {
                    ksplit,
                    groups,
                    rows,
                    unroll,
                }))?;
                // One untimed profile first: the pipelines' first use and the GPU's clocks
                // after the host's rebuild.
                gpu.profile_decode(&req, reps)?;
                println!(
                    "variant {} decode step per dispatch kind ({reps} steps' worth per submission):",
                    name(v)
                );
                for k in gpu.profile_decode(&req, reps)? {
                    println!("  {}", k.line());
                }
            }
            continue;
        }
        if a.profile_prefill {
            println!("prefill pass 1 per dispatch kind (each once):");
            for k in gpu.profile_prefill(&req, &prompts)? {
                println!("  {}", k.line());
            }
        }
        if a.prefill_reps > 0 {
            drop(req);
            let mut times = Vec::with_capacity(a.prefill_reps);
            for _ in 0..a.prefill_reps {
                let mut r = gpu.start(&lens, 2, 0)?;
                let t = Instant::now();
                gpu.prefill_tokens(&mut r, &prompts, Sampling::greedy())?;
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let tok = (a.rows * a.prompt) as f64;
            println!(
                "warm prefill: {} reps of {}x{} tokens, median {:.1} ms = {:.0} tok/s (fastest {:.1} ms, slowest {:.1} ms)",
                times.len(),
                a.rows,
                a.prompt,
                times[times.len() / 2] * 1e3,
                tok / times[times.len() / 2],
                times[0] * 1e3,
                times[times.len() - 1] * 1e3
            );
        }
    }
    Ok(())
}
