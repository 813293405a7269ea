//! Decode attention benchmark on a GPU, through moa's own path (codegen → NVRTC → cudarc,
//! launches captured in CUDA graphs, median of replays): every layer of upstream MoA
//! plans against dense attention (the same kernel over a full cache: every span N),
//! measured in the same run. Prints a markdown table and writes JSON lines.
//!
//! ```sh
//! cargo build --release --example attention_bench
//! attention_bench --model vicuna-7b:32:PATH/moa_alpha_beta.json \
//!     --model llama-3-8b:8:PATH/moa_alpha_beta.json --batch 16,4 --prompt 4096,16384 \
//!     --json results.jsonl --spans spans.json
//! ```
//!
//! `--spans` writes every layer's per-head spans and sinks at each N, for the PyTorch
//! peers (`benches/peers/decode_peers.py`) to build the identical masks.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use moa::codegen::cuda::{decode_key_tile, decode_max_cluster, decode_sub_groups, DecodeTuning};
use moa::lower::{lower, CacheLayout, KernelModule, StorageType};
use moa::plan::{upstream, ModelShape, Plan};
use moa::runtime::cuda::{CudaAttention, CudaError, DecodeCall, DevBuf, DEFAULT_ARCH};
use moa::runtime::cuda_bench::{current_slots, l2_bytes, time_graph, Filler, Producer, Timing};
use moa::runtime::worklist::{
    choose_split_in, cuda_chunk_policy, ChunkPolicy, DecodeSlots, DecodeWork, FluidModel,
};

#[derive(Parser)]
#[command(about = "Time the generated decode kernels of upstream MoA plans against dense")]
struct Args {
    /// LABEL:KV_HEADS:PATH of an upstream plan (32 layers, 32 query heads, head_dim 128).
    #[arg(long = "model", required = true)]
    models: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "16,4")]
    batch: Vec<u32>,
    #[arg(long, value_delimiter = ',', default_value = "4096,16384")]
    prompt: Vec<u32>,
    /// New tokens: N = prompt + new (upstream's N').
    #[arg(long, default_value_t = 1024)]
    new_tokens: u32,
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Decode kernels to compare, WARPSxSTAGES and option letters (`w` warp-private
    /// pipelines, `e` early loads, `m` fast merge, `z` the streaming probe;
    /// `codegen::cuda::DecodeTuning`), e.g. 4x3,4x3em. Default: the compiler's.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Work-list chunk policies to compare: `auto` (the runtime's), a size in slots,
    /// `waves:OVERHEAD_TILES`, `balanced:OVERHEAD_TILES:TAIL_PCT`, `cluster:SIZE`,
    /// `cluster:auto:OVERHEAD_TILES`, `waves:OVERHEAD_TILES:packed` or
    /// `waves:OVERHEAD_TILES:packed:last:TILES` (plain lists with each split segment's last
    /// chunk TILES key tiles longer; `runtime::worklist::ChunkPolicy`).
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    chunks: Vec<String>,
    /// Launch modes to compare on every layer, side by side: `plain` (cuLaunchKernel, as
    /// the runtime launches) and `pdl` (programmatic dependent launch: each decode grid
    /// may be scheduled in the previous one's tail; `CudaAttention::launch_decode_with`).
    #[arg(long, value_delimiter = ',', default_value = "plain")]
    launch: Vec<String>,
    /// Time attention where a model runs it: each graph launch is a producer kernel (the
    /// shape of `moa_rope_kv`: it writes the step's Q and the current token's K/V slot,
    /// `cuda_bench::Producer`, letting a programmatic launch start at once) followed by
    /// the decode; the producer alone is timed too, and `µs` is the pair's time minus
    /// the producer's (what attention adds to a decode step). `pdl` then launches the
    /// decode programmatically after the producer.
    #[arg(long)]
    producer: bool,
    /// Layers to time (default: all).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<u32>,
    /// Skip the dense run (sweeps of chunk policies; dense figures are then NaN).
    #[arg(long)]
    no_dense: bool,
    /// Launches per graph.
    #[arg(long, default_value_t = 20)]
    launches: u32,
    /// Timed graph replays (the median is reported).
    #[arg(long, default_value_t = 10)]
    replays: u32,
    /// Write one JSON object per measurement here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the plans' per-head spans here (for the PyTorch peers).
    #[arg(long)]
    spans: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// A placement probe: before each copy's K and V caches, allocate (and keep until the
    /// layer is timed) this many MiB, so the caches land at other device addresses than
    /// without it; 0 = none. Session 21 saw kernels whose executed path is the same differ
    /// by up to ±2.8 µs per layer on cluster lists: this tells addresses from code.
    #[arg(long, default_value_t = 0)]
    pad_mib: u32,
    /// No GPU: print, as JSON lines, the chunk and item count each chunk policy picks for
    /// every layer and configuration, with this many decode blocks resident (the H200
    /// runs 264 of the default 4x3 kernel), then exit. `auto` is the CUDA runtime's policy.
    #[arg(long)]
    dry_run_blocks: Option<u32>,
}

struct Model {
    label: String,
    plan: Plan,
    dense: Plan,
}

fn parse_model(spec: &str) -> Result<Model, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(label), Some(kv), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("--model `{spec}`: expected LABEL:KV_HEADS:PATH"));
    };
    let kv_heads: u32 = kv
        .parse()
        .map_err(|_| format!("--model `{spec}`: KV_HEADS `{kv}` is not a number"))?;
    let shape = ModelShape {
        name: Some(label.to_string()),
        layers: 32,
        q_heads: 32,
        kv_heads,
        head_dim: 128,
        max_context_tokens: 262_144,
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let plan = upstream::import(&text, path, shape.clone()).map_err(|e| e.to_string())?;
    Ok(Model {
        label: label.to_string(),
        plan,
        dense: dense_plan(shape).map_err(|e| e.to_string())?,
    })
}

/// One layer in which every head keeps every token (span N): dense attention through
/// the same kernel, over a full-length cache.
fn dense_plan(mut shape: ModelShape) -> Result<Plan, moa::plan::PlanError> {
    shape.layers = 1;
    Plan::dense(shape)
}

/// Rows at position N − 1 (every span full), `copies` independent caches so that the
/// graph's launches rotate over more bytes than L2 holds; `pad_mib` MiB allocated before
/// each copy's caches (`--pad-mib`), returned beside the calls to keep them allocated.
#[allow(clippy::too_many_arguments)]
fn prepare(
    gpu: &CudaAttention,
    filler: &Filler,
    layer: usize,
    layout: &CacheLayout,
    rows: u32,
    copies: u32,
    (policy, key_tile): (Option<ChunkPolicy>, u32),
    pad_mib: u32,
) -> Result<(Vec<DecodeCall>, Vec<DevBuf>), CudaError> {
    let m = gpu.module();
    let (hq, d) = (m.shape.q_heads as usize, m.shape.head_dim as usize);
    let row_pos = vec![layout.n_tokens - 1; rows as usize];
    let group = m.shape.group_size();
    // The list's own layout: each KV head's segment once per sub-group of the decode.
    let list_layout = gpu.decode_layout(layer, layout)?;
    let split = policy.map(|p| {
        choose_split_in(
            p,
            &list_layout,
            &row_pos,
            key_tile,
            gpu.decode_resident(),
            group,
        )
    });
    let cache_len = rows as usize * layout.row_slots as usize * d;
    let mut calls = Vec::new();
    let mut pads = Vec::new();
    // 2-byte elements (bf16 / f16; f32 takes twice the bytes).
    let pad_len = pad_mib as usize * (1 << 19);
    for c in 0..copies {
        let mut q = gpu.zeros(rows as usize * hq * d)?;
        if pad_len > 0 {
            pads.push(gpu.zeros(pad_len)?);
        }
        let mut k = gpu.zeros(cache_len)?;
        let mut v = gpu.zeros(cache_len)?;
        filler.fill(&mut q, m.storage, 3 * c + 1)?;
        filler.fill(&mut k, m.storage, 3 * c + 2)?;
        filler.fill(&mut v, m.storage, 3 * c + 3)?;
        calls.push(gpu.prepare_decode_split(layer, layout, &row_pos, q, k, v, split)?);
    }
    Ok((calls, pads))
}

fn time_calls(
    gpu: &CudaAttention,
    calls: &[DecodeCall],
    args: &Args,
    pdl: bool,
) -> Result<Timing, CudaError> {
    time_graph(
        gpu.context(),
        gpu.stream(),
        args.launches,
        args.replays,
        |i| gpu.launch_decode_with(&calls[i as usize % calls.len()], pdl),
    )
}

/// The producer's inputs for one layer's calls: qkv f32 `[rows, q_heads + 2 kv_heads, D]`
/// and each (row, KV head)'s current-token slot (rows at N - 1) as an element offset.
struct ProducerInputs {
    qkv: cudarc::driver::CudaSlice<f32>,
    slot: cudarc::driver::CudaSlice<u64>,
    dims: [u32; 4],
}

fn producer_inputs(
    gpu: &CudaAttention,
    layout: &CacheLayout,
    rows: u32,
) -> Result<ProducerInputs, CudaError> {
    let s = &gpu.module().shape;
    // The slot moa_rope_kv writes (sink, then the ring), none where the segment keeps no
    // slot for t: the only cache slot the decode may read before its wait.
    let slot = current_slots(
        layout,
        &vec![layout.n_tokens - 1; rows as usize],
        s.head_dim,
    );
    let heads = (s.q_heads + 2 * s.kv_heads) as usize;
    let qkv: Vec<f32> = (0..rows as usize * heads * s.head_dim as usize)
        .map(|i| ((i * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let up = |e| CudaError::Driver {
        what: "uploading the producer's inputs".into(),
        source: e,
    };
    Ok(ProducerInputs {
        qkv: gpu.stream().clone_htod(&qkv).map_err(up)?,
        slot: gpu.stream().clone_htod(&slot).map_err(up)?,
        dims: [rows, s.q_heads, s.kv_heads, s.head_dim],
    })
}

/// The producer alone (`decode: None`) or the producer then the decode, per graph launch.
fn time_with_producer(
    gpu: &CudaAttention,
    producer: &Producer,
    inputs: &ProducerInputs,
    calls: &[DecodeCall],
    args: &Args,
    decode: Option<bool>,
) -> Result<Timing, CudaError> {
    let storage = gpu.module().storage;
    time_graph(
        gpu.context(),
        gpu.stream(),
        args.launches,
        args.replays,
        |i| {
            let call = &calls[i as usize % calls.len()];
            // SAFETY: producer_inputs computed every slot offset from the calls' layout.
            unsafe {
                producer.launch(
                    &inputs.qkv,
                    call.written_inputs(),
                    &inputs.slot,
                    inputs.dims,
                    storage,
                    true,
                )?;
            }
            match decode {
                Some(pdl) => gpu.launch_decode_with(call, pdl),
                None => Ok(()),
            }
        },
    )
}

fn kv_bytes(module: &KernelModule, layout: &CacheLayout, rows: u32) -> u64 {
    u64::from(rows)
        * u64::from(layout.row_slots)
        * u64::from(module.shape.head_dim)
        * 2
        * module.storage.bytes() as u64
}

fn spans_json(models: &[Model], prompts: &[u32], new_tokens: u32) -> serde_json::Value {
    let mut out = Vec::new();
    for m in models {
        let module = lower(&m.plan, StorageType::F16);
        for &p in prompts {
            let n = p + new_tokens;
            let layers: Vec<serde_json::Value> = module
                .layers
                .iter()
                .map(|l| {
                    let windows: Vec<_> = (0..l.q_heads.len())
                        .map(|h| l.window(h, n, &module.span))
                        .collect();
                    let spans: Vec<u32> = windows.iter().map(|w| w.span).collect();
                    let sinks: Vec<u32> = windows.iter().map(|w| w.sink).collect();
                    let layout = CacheLayout::new(l, &module.span, n);
                    serde_json::json!({
                        "layer": l.layer,
                        "span": spans,
                        "sink": sinks,
                        "segment_span": layout.segments.iter().map(|s| s.span).collect::<Vec<_>>(),
                    })
                })
                .collect();
            out.push(serde_json::json!({
                "model": m.label,
                "q_heads": module.shape.q_heads,
                "kv_heads": module.shape.kv_heads,
                "head_dim": module.shape.head_dim,
                "prompt": p,
                "n_tokens": n,
                "layers": layers,
            }));
        }
    }
    serde_json::Value::Array(out)
}

fn run(args: &Args) -> Result<(), String> {
    let storage = match args.dtype.as_str() {
        "bf16" => StorageType::Bf16,
        "f16" => StorageType::F16,
        "f32" => StorageType::F32,
        other => return Err(format!("--dtype `{other}`: expected bf16, f16 or f32")),
    };
    let models = args
        .models
        .iter()
        .map(|s| parse_model(s))
        .collect::<Result<Vec<_>, _>>()?;
    let variants = args
        .variants
        .iter()
        .map(|v| v.parse::<DecodeTuning>())
        .collect::<Result<Vec<_>, _>>()?;
    // Empty: the compiler's default for each model's GQA group (`DecodeTuning::default_for`).
    let chunks: Vec<Option<ChunkPolicy>> = args
        .chunks
        .iter()
        .map(|c| {
            if c == "auto" {
                Ok(None)
            } else {
                c.parse().map(Some).map_err(|e| format!("--chunks: {e}"))
            }
        })
        .collect::<Result<_, _>>()?;
    if let Some(path) = &args.spans {
        let text = serde_json::to_string(&spans_json(&models, &args.prompt, args.new_tokens))
            .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(blocks) = args.dry_run_blocks {
        return dry_run(args, &models, &variants, &chunks, storage, blocks);
    }
    for l in &args.launch {
        if l != "plain" && l != "pdl" {
            return Err(format!("--launch `{l}`: expected plain or pdl"));
        }
    }
    let mut pdl_ok = true;
    let mut json = match &args.json {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    println!("| model | B | prompt | N | layer | variant | chunk | items | KV MB | µs | TB/s | dense µs | dense TB/s | rate / dense | speedup |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let err = |e: CudaError| e.to_string();
    for m in &models {
        let mut module = lower(&m.plan, storage);
        // Compile only the layers to time.
        if !args.layers.is_empty() {
            module.layers.retain(|l| args.layers.contains(&l.layer));
        }
        let dense_module = lower(&m.dense, storage);
        let group_default = [DecodeTuning::default_for(module.shape.group_size())];
        let variants = if variants.is_empty() {
            &group_default[..]
        } else {
            &variants[..]
        };
        for tuning in variants {
            let vname = tuning.to_string();
            let key_tile = decode_key_tile(storage, module.shape.head_dim, *tuning);
            let mut timed: std::collections::HashMap<TimedKey, (Timing, u32)> =
                std::collections::HashMap::new();
            // --producer: the producer alone per (rows, prompt, layer index), µs.
            let mut producer_times: std::collections::HashMap<(u32, u32, usize), f64> =
                std::collections::HashMap::new();
            let t0 = std::time::Instant::now();
            let gpu = CudaAttention::new_tuned(&module, args.device, DEFAULT_ARCH, *tuning)
                .map_err(err)?;
            let dense = CudaAttention::new_tuned(&dense_module, args.device, DEFAULT_ARCH, *tuning)
                .map_err(err)?;
            eprintln!(
                "{} {vname}: compiled {} layers in {:.1} s; {} decode blocks resident",
                m.label,
                module.layers.len(),
                t0.elapsed().as_secs_f64(),
                gpu.decode_slots()
            );
            // Clusters resident at once (benches/RESULTS.md, call 10: clusters of 4 and 8
            // were slower than their blocks' count suggests), and of 16 for the `h` kernels.
            let sizes: &[u32] = if decode_max_cluster(*tuning) >= 16 {
                &[2, 4, 8, 16]
            } else {
                &[2, 4, 8]
            };
            let resident: Vec<String> = sizes
                .iter()
                .map(|&c| match gpu.decode_max_active_clusters(0, c) {
                    Ok(n) => format!("{c}: {n} ({} blocks)", n * c),
                    Err(e) => format!("{c}: {e}"),
                })
                .collect();
            eprintln!(
                "{} {vname}: clusters resident at once {}",
                m.label,
                resident.join(", ")
            );
            let filler = Filler::new(gpu.context(), gpu.stream()).map_err(err)?;
            let producer = if args.producer {
                Some(Producer::new(gpu.context(), gpu.stream()).map_err(err)?)
            } else {
                None
            };
            let dense_filler = Filler::new(dense.context(), dense.stream()).map_err(err)?;
            let l2 = l2_bytes(gpu.context()).map_err(err)?;
            for &rows in &args.batch {
                for &prompt in &args.prompt {
                    let n = prompt + args.new_tokens;
                    for &chunk in &chunks {
                        let cname = chunk.map_or("auto".to_string(), |c| c.to_string());
                        let copies_for =
                            |bytes: u64| (3 * l2).div_ceil(bytes.max(1)).clamp(1, 8) as u32;
                        // Dense: every layer of a dense plan is the same kernel; time it once.
                        let dlayout =
                            CacheLayout::new(&dense_module.layers[0], &dense_module.span, n);
                        let dbytes = kv_bytes(&dense_module, &dlayout, rows);
                        let (dt, dchunk) = if args.no_dense {
                            let nan = f64::NAN;
                            (
                                Timing {
                                    median_us: nan,
                                    min_us: nan,
                                    max_us: nan,
                                    launches: 0,
                                    replays: 0,
                                },
                                0,
                            )
                        } else {
                            let (dcalls, _dpads) = prepare(
                                &dense,
                                &dense_filler,
                                0,
                                &dlayout,
                                rows,
                                copies_for(dbytes),
                                (chunk, key_tile),
                                args.pad_mib,
                            )
                            .map_err(err)?;
                            let dt = time_calls(&dense, &dcalls, args, false).map_err(err)?;
                            (dt, dcalls[0].chunk)
                        };
                        let drate = dbytes as f64 / (dt.median_us * 1e-6) / 1e12;
                        for (li, l) in module.layers.iter().enumerate() {
                            let layout = CacheLayout::new(l, &module.span, n);
                            let bytes = kv_bytes(&module, &layout, rows);
                            // Two policies that cut this layer alike build the same work
                            // list: time it once (the JSON line says `reused`).
                            let row_pos = vec![n - 1; rows as usize];
                            let split = choose_split_in(
                                chunk.unwrap_or(gpu.chunk_policy()),
                                &gpu.decode_layout(li, &layout).map_err(err)?,
                                &row_pos,
                                key_tile,
                                gpu.decode_resident(),
                                module.shape.group_size(),
                            );
                            let (chosen, cluster) = (split.chunk, split.cluster);
                            let mut calls = Vec::new();
                            let mut _pads = Vec::new();
                            // With --producer: the producer alone on this layer's calls.
                            let mut alone: Option<ProducerInputs> = None;
                            for launch in &args.launch {
                                let pdl = launch == "pdl";
                                if pdl && !pdl_ok {
                                    continue;
                                }
                                let key = (
                                    rows,
                                    prompt,
                                    li,
                                    chosen,
                                    cluster,
                                    split.packed,
                                    split.last_extra,
                                    pdl,
                                );
                                let reused = timed.get(&key).copied();
                                if reused.is_none() && calls.is_empty() {
                                    (calls, _pads) = prepare(
                                        &gpu,
                                        &filler,
                                        li,
                                        &layout,
                                        rows,
                                        copies_for(bytes),
                                        (chunk, key_tile),
                                        args.pad_mib,
                                    )
                                    .map_err(err)?;
                                }
                                if let (Some(p), None, false) =
                                    (&producer, &alone, calls.is_empty())
                                {
                                    let inputs =
                                        producer_inputs(&gpu, &layout, rows).map_err(err)?;
                                    let t =
                                        time_with_producer(&gpu, p, &inputs, &calls, args, None)
                                            .map_err(err)?;
                                    producer_times.insert((rows, prompt, li), t.median_us);
                                    alone = Some(inputs);
                                }
                                // A driver that refuses the attribute (or its capture)
                                // costs the PDL column, not the run.
                                let time_now = || match (&producer, &alone) {
                                    (Some(p), Some(inputs)) => {
                                        time_with_producer(&gpu, p, inputs, &calls, args, Some(pdl))
                                    }
                                    _ => time_calls(&gpu, &calls, args, pdl),
                                };
                                let (t, items) = match reused {
                                    Some(r) => r,
                                    None => match time_now() {
                                        Ok(t) => (t, calls[0].n_items()),
                                        Err(e) if pdl => {
                                            eprintln!("PDL launches failed, timing plain launches only from here: {e}");
                                            pdl_ok = false;
                                            continue;
                                        }
                                        Err(e) => return Err(err(e)),
                                    },
                                };
                                timed.insert(key, (t, items));
                                // With the producer: what attention adds to the pair.
                                let producer_us = producer_times
                                    .get(&(rows, prompt, li))
                                    .copied()
                                    .unwrap_or(0.0);
                                let pair_us = t.median_us;
                                let us = pair_us - producer_us;
                                let rate = bytes as f64 / (us * 1e-6) / 1e12;
                                println!(
                                "| {} | {rows} | {prompt} | {n} | {} | {vname}{} | {}{} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} |",
                                m.label,
                                l.layer,
                                if launch == "pdl" { " pdl" } else { "" },
                                chosen,
                                if cluster > 1 { format!(" c{cluster}{}", if split.packed { "p" } else { "" }) } else if let Some(x) = split.last_extra { format!(" last+{x}") } else { String::new() },
                                items,
                                bytes as f64 / 1e6,
                                us,
                                rate,
                                dt.median_us,
                                drate,
                                rate / drate,
                                dt.median_us / us,
                            );
                                if let Some(f) = json.as_mut() {
                                    let line = serde_json::json!({
                                        "impl": "moa", "model": m.label, "batch": rows, "prompt": prompt,
                                        "n_tokens": n, "layer": l.layer, "variant": vname, "chunk_arg": cname,
                                        "chunk": chosen, "cluster": cluster, "packed": split.packed, "last_extra": split.last_extra, "items": items, "reused": reused.is_some(),
                                        "kv_bytes": bytes, "us": us, "us_min": t.min_us - producer_us,
                                        "us_max": t.max_us - producer_us, "tbps": rate, "dense_us": dt.median_us,
                                        "dense_kv_bytes": dbytes, "dense_tbps": drate,
                                        "dense_chunk": dchunk, "launch": launch,
                                        "producer": producer.is_some(), "pair_us": pair_us,
                                        "producer_us": producer_us, "pad_mib": args.pad_mib,
                                    });
                                    writeln!(f, "{line}").map_err(|e| e.to_string())?;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A timed work list: (rows, prompt, layer index, chunk, cluster, packed, the last
/// chunk's extra key tiles, programmatic
/// launch); the value is its timing and item count.
type TimedKey = (u32, u32, usize, u32, u32, bool, Option<u32>, bool);

/// `--dry-run-blocks`: the work lists the timed run would build, without a GPU.
fn dry_run(
    args: &Args,
    models: &[Model],
    variants: &[DecodeTuning],
    chunks: &[Option<ChunkPolicy>],
    storage: StorageType,
    blocks: u32,
) -> Result<(), String> {
    for m in models {
        let module = lower(&m.plan, storage);
        let group_default = [DecodeTuning::default_for(module.shape.group_size())];
        let variants = if variants.is_empty() {
            &group_default[..]
        } else {
            variants
        };
        for tuning in variants {
            let key_tile = decode_key_tile(storage, module.shape.head_dim, *tuning);
            for &rows in &args.batch {
                for &prompt in &args.prompt {
                    let n = prompt + args.new_tokens;
                    let row_pos = vec![n - 1; rows as usize];
                    for l in &module.layers {
                        if !args.layers.is_empty() && !args.layers.contains(&l.layer) {
                            continue;
                        }
                        // The work list's layout: each KV head's segment once per
                        // sub-group of the decode (a GQA group past 8).
                        let layout =
                            CacheLayout::new(l, &module.span, n).sub_grouped(decode_sub_groups(
                                storage,
                                module.shape.head_dim,
                                module.shape.group_size(),
                                *tuning,
                            ));
                        for &chunk in chunks {
                            let policy =
                                chunk.unwrap_or(cuda_chunk_policy(module.shape.group_size()));
                            let split = choose_split_in(
                                policy,
                                &layout,
                                &row_pos,
                                key_tile,
                                DecodeSlots::estimate_for(blocks, decode_max_cluster(*tuning)),
                                module.shape.group_size(),
                            );
                            let work = DecodeWork::build_split(&layout, &row_pos, split, key_tile);
                            let (c, items) = (split.chunk, work.n_items());
                            let model = FluidModel::h200(module.shape.group_size()).time_us(
                                &work,
                                split.cluster,
                                blocks,
                            );
                            // The list's shape: item lengths in slots (non-empty items),
                            // and how many chunks the split segments have.
                            let mut lens: Vec<u32> = work
                                .items
                                .iter()
                                .map(|it| it[2] - it[1])
                                .filter(|&s| s > 0)
                                .collect();
                            lens.sort_unstable();
                            let split_chunks: Vec<u32> =
                                work.seg_chunks.iter().copied().filter(|&k| k > 1).collect();
                            let line = serde_json::json!({
                                "model": m.label, "batch": rows, "prompt": prompt, "n_tokens": n,
                                "layer": l.layer, "variant": tuning.to_string(),
                                "chunk_arg": chunk.map_or("auto".to_string(), |c| c.to_string()),
                                "chunk": c, "cluster": split.cluster, "packed": split.packed, "last_extra": split.last_extra, "longest": work.chunk, "items": items, "blocks": blocks,
                                "model_us": model,
                                "slots": lens.iter().map(|&s| s as u64).sum::<u64>(),
                                "busy_items": lens.len(),
                                "item_min": lens.first().copied().unwrap_or(0),
                                "item_median": lens.get(lens.len() / 2).copied().unwrap_or(0),
                                "item_max": lens.last().copied().unwrap_or(0),
                                "split_segments": split_chunks.len(),
                                "seg_chunks_max": split_chunks.iter().copied().max().unwrap_or(1),
                            });
                            println!("{line}");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
