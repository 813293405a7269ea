//! Times one layer's WGSL decode step (decode + merge dispatches) through
//! `runtime::wgpu::WgpuAttention` on whatever adapter wgpu picks, and reads what the
//! driver compiled it into:
//!
//! ```sh
//! # a moa plan on small rows (lavapipe here: a CPU, so the numbers compare kernel
//! # versions, not GPUs): each timed iteration records, submits and waits for one step
//! cargo run --release --example wgpu_decode_bench -- plans/fixture-gqa.toml 2 1024 100,300,600,1000
//! # an upstream plan at the issue's sizes against a copy kernel on the same adapter
//! # (issue 8 item 3: the decode's read rate over the bytes the plan needs, and the copy's
//! # rate over the bytes it reads and writes)
//! wgpu_decode_bench upstream PATH KV_HEADS LAYERS BATCHES PROMPTS
//! wgpu_decode_bench upstream llama-3-8b.json 8 0,29 16 4096,16384
//! # the WGSL decode on this adapter against the CPU reference (standard cases of
//! # runtime/cases.rs, chunks as the host picks them, of 1 and 3 tiles and whole-segment
//! # lists), f32 and f16; `MOA_WGSL_DECODE=coop` runs the decode on cooperative matrices
//! # where the adapter has them (`MOA_WGSL_RESCALE=0` makes the
//! # matrix decode rescale at every new maximum, `MOA_WGSL_COOP_PREFETCH=0` drops its
//! # software pipeline; `MOA_WGSL_DECODE_FORM=lazy|quad` picks the scalar decode's form)
//! wgpu_decode_bench check plans/fixture-mha.toml plans/fixture-gqa.toml
//! # a moa plan (TOML) at its own shape against the copy kernel, rows at N - 1 (the wgpu
//! # engine's SmolLM2 step: 16 rows x 4096)
//! wgpu_decode_bench plan plans/smollm2-135m-moa-50.toml 0,6 16 4096
//! # read kernels of the decode's structure (invocations a workgroup, loads in flight,
//! # bytes a workgroup, rounds in series, a chain of dependent loads first) over one
//! # layer's KV bytes (MB, default 25.9: SmolLM2 moa-50 at 16 x 4096), timed as the
//! # decode is, against the copy kernel and an empty dispatch
//! wgpu_decode_bench stream 25.9
//! # each layer's decode work list as the host builds it (no GPU): written slots, chunk,
//! # items, whole chunks, most chunks a segment (ROWS N [RESIDENT] [TILE])
//! wgpu_decode_bench lists plans/smollm2-135m-moa-50.toml 16 4160
//! # registers, shared memory and code size of each listed layer's decode and of the
//! # merge, from the Vulkan driver (VK_KHR_pipeline_executable_properties; see `regs`)
//! wgpu_decode_bench regs llama-3-8b.json 8 2
//! wgpu_decode_bench regs plans/smollm2-135m-moa-50.toml - 6
//! # the same for the matrix-unit decode products (gate/up, QKV, output; K and the output
//! # product's K = 576 unless given), with naga's index checks and without
//! wgpu_decode_bench regs-coop 576 576
//! # the same for the fused output -> gate/up decode dispatch (MOA_WGPU_DECODE_FUSED_MLP) in
//! # each form, beside the two products alone (K_ATTN HIDDEN; 576 576 unless given)
//! wgpu_decode_bench regs-fused 576 576
//! # the same for the prefill product on matrix units (coop_linear.wgsl), with naga's
//! # runtime checks and without
//! wgpu_decode_bench regs-gemm
//! # the same for the decode LM head (coop_head.wgsl, K = 576 unless given), with the
//! # checks (MOA_WGPU_COOP_HEAD_UNCHECKED=0) and without (the default), per stage width
//! # and blocks a workgroup
//! wgpu_decode_bench regs-head 576
//! # the same for the prefill attention's group form (prefill_coop_group.wgsl.j2) of the
//! # listed layers, per variant (the default changed by `+`-joined f1, nosk, nove, novk
//! # (V not staged in K's tile), ms (select masks), sr (scores in registers), d1..d5 (on session 29's form 2), d7 (on
//! # V in K's tile))
//! wgpu_decode_bench regs-pattn plans/smollm2-135m-moa-50.toml 0,6 default,novk,ms,nosk+nove,d3
//! ```
//!
//! First form's arguments: plan, layer, N, comma-separated row positions; optional
//! iterations (50). Second form: an upstream MoA plan (32 layers, 32 query heads,
//! head_dim 128, `KV_HEADS` KV heads), comma-separated layers, batches and prompts; rows
//! sit at position N − 1 with N = prompt + 1024 (every span full), f16 storage where the
//! adapter has it (else f32). `MOA_WGSL_CHUNKS` (comma-separated, `auto` = the host's
//! choice, `auto@W` = the host's model with W resident workgroups, else slots per chunk)
//! times each layer with each chunk length; default `auto`.
//! `MOA_WGSL_PARTS` (comma-separated `step`, `decode`, `merge`; default `step`) times the
//! whole step (decode + merge) and/or each dispatch alone (its rate still over the step's
//! KV bytes), to tell a small step's fixed time in the decode from that in the merge.
//! `MOA_WGSL_KV_RANDOM=1` fills the caches with random values instead of zeros.
//! `MOA_WGSL_KV_COPIES=N` sets how many copies of the caches (and of `stream`'s bytes) the
//! timed dispatches rotate over (default: enough to pass the L2 3x; 1 = L2-warm reads).
//! `MOA_WGSL_ITEMS` (comma-separated; default `all`), a tail diagnostic (session 29): which
//! of the host's work items each row launches: `all` the list as it is, `all1` every item
//! as its own one-chunk segment, `sorted` every item longest first, `long:N` / `short:N`
//! the N longest / shortest; every selection but `all` rewrites each kept item as its own
//! one-chunk segment (a fused decode's every item then merges itself; results wrong), so
//! a row's time against N says whether the dispatch is one item's chain or the SMs' share.
//! `MOA_WGSL_SEQUENCE=1` (`only`: without the per-layer rows) also times all listed
//! layers' steps back to back in one pass, each layer with its own list, caches and
//! scratch, as the wgpu engine's profile times its attention kind (a layer's step
//! repeated alone keeps its pipeline's code and its partials hot; the engine's does not).
//! `MOA_WGSL_RULES_TABLE=1` builds the flat decode with its rules read from a per-layer
//! table (one source and pipeline for every layer, the engine's default since session 43).
//! Timing: R steps recorded into one compute pass and one submit, waited for; after
//! warm-up submits of 25 steps (at least three and 50 ms: the first use of a buffer
//! zero-fills it and clocks ramp up; without them the first configuration once timed
//! negative, and after only three it often ran 3-4x slow), 7 submits of 5
//! and of 25 steps alternate, and the time per step is (median T(25) − median T(5)) / 20,
//! so the submit and wait overhead cancels; a difference ≤ 0 is reported as unreliable,
//! never as a rate. The copy kernel (`dst[i] =
//! src[i]`, 16 bytes per invocation, 256 MiB each way, `MOA_COPY_MIB` to change) is
//! timed the same way.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use moa::codegen::{self, Target};
use moa::lower::{lower, StorageType};
use moa::plan::Plan;
use moa::runtime::cases::decode_case;
use moa::runtime::wgpu::{tensor_bytes, DecodePipelineOptions, WgpuAttention, WgpuContext};
use wgpu::util::DeviceExt;

/// One chunk length setting of `MOA_WGSL_CHUNKS`.
#[derive(Clone, Copy)]
enum Chunk {
    /// The host's choice (`worklist::choose_chunk`), with this many resident workgroups
    /// instead of `WGSL_DECODE_CONCURRENT_WORKGROUPS` where given.
    Auto(Option<u32>),
    /// Slots per chunk (rounded up to the tile).
    Fixed(u32),
}

fn main() -> ExitCode {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu_decode_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every mode's usage, for `--help` and for too few arguments: `--help` went to the first
/// form, which printed its own usage alone, as an error (round 40).
const USAGE: &str = "\
usage: wgpu_decode_bench PLAN LAYER N POS[,POS...] [ITERS]   one layer's decode step
       wgpu_decode_bench upstream PATH KV_HEADS LAYERS BATCHES PROMPTS
                                                an upstream plan against a copy kernel
       wgpu_decode_bench plan PATH LAYERS BATCHES NS   a moa plan against a copy kernel
       wgpu_decode_bench check PLAN...          the WGSL decode against the CPU reference
       wgpu_decode_bench stream [MB]            read kernels of the decode's structure
       wgpu_decode_bench lists PLAN ROWS N [RESIDENT] [TILE]   the host's decode work lists
       wgpu_decode_bench regs PLAN KV_HEADS|- LAYERS   registers of each layer's decode
       wgpu_decode_bench regs-products KSPLIT:GROUPS[:ROWS[:STEPS[:EARLY]]][,...] [DIAG]
       wgpu_decode_bench regs-coop [K [K_ATTN]]
       wgpu_decode_bench regs-fused [K_ATTN HIDDEN]
       wgpu_decode_bench regs-head [K]
       wgpu_decode_bench regs-gemm
       wgpu_decode_bench regs-pattn PLAN LAYERS VARIANT[,VARIANT...]
The file's header comment (examples/wgpu_decode_bench.rs) says what each mode times and \
the MOA_WGSL_* settings.";

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("upstream") {
        return upstream_vs_copy(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("check") {
        return check(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("plan") {
        return plan_vs_copy(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("lists") {
        return lists(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("stream") {
        return stream_shapes(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs") {
        return regs::run(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs-products") {
        return regs::products(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs-coop") {
        return regs::coop_gate_up(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs-fused") {
        return regs::coop_fused(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs-head") {
        return regs::coop_head(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("regs-gemm") {
        return regs::coop_gemm();
    }
    if args.first().map(String::as_str) == Some("regs-pattn") {
        return regs::prefill_group(&args[1..]);
    }
    let usage = "usage: wgpu_decode_bench PLAN LAYER N POS[,POS...] [ITERS]";
    let [plan, layer, n, pos, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| format!("`{s}`: {usage}"));
    let layer = num(layer)? as usize;
    let n = num(n)?;
    let pos: Vec<u32> = pos.split(',').map(num).collect::<Result<_, _>>()?;
    let iters = rest
        .first()
        .map(|s| num(s))
        .transpose()?
        .unwrap_or(50)
        .max(1);
    let plan = Plan::load(Path::new(plan)).map_err(|e| e.to_string())?;
    let module = lower(&plan, StorageType::F32);
    if layer >= module.layers.len() {
        return Err(format!(
            "layer {layer} is out of range: the plan has {} layers",
            module.layers.len()
        ));
    }
    if pos.iter().any(|&t| t >= n) {
        return Err(format!("row positions {pos:?} must be below N = {n}"));
    }
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    let artifacts = wgsl_artifacts(&module)?;
    let exec = attention(&ctx, &module, &artifacts)?;
    let case = decode_case(&module, layer, &pos, n, 7);
    let dev = ctx.device();
    let tensor = |label: &str, data: &[f32]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &tensor_bytes(data, StorageType::F32),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let words = |label: &str, data: &[u32]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let s = &module.shape;
    let o_len = pos.len() * (s.q_heads * s.head_dim) as usize;
    let work = exec.decode_work(&case.layout, &pos);
    let n_items = work.n_items();
    let bufs = [
        words("row_pos", &pos),
        tensor("q", &case.q),
        tensor("k_cache", &case.k_cache),
        tensor("v_cache", &case.v_cache),
        words("work", &work.flat()),
    ];
    let (partials, seg_done) = exec.decode_scratch(n_items, pos.len() as u32);
    let o = tensor("o", &vec![0.0; o_len]);
    let refs: [&wgpu::Buffer; 8] = [
        &bufs[0], &bufs[1], &bufs[2], &bufs[3], &bufs[4], &partials, &seg_done, &o,
    ];
    let mut times = Vec::with_capacity(iters as usize);
    for i in 0..iters + 3 {
        let start = Instant::now();
        let mut encoder = dev.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            exec.encode_decode(&mut pass, layer, n, pos.len() as u32, n_items, refs)
                .map_err(|e| e.to_string())?;
        }
        ctx.queue().submit([encoder.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        if i >= 3 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "adapter {:?}: layer {layer} N={n} rows at {pos:?}: {n_items} workgroups, median {:.3} ms over {iters} steps (min {:.3})",
        ctx.adapter_name(),
        times[times.len() / 2],
        times[0],
    );
    Ok(())
}

/// The WGSL kernels of `module`, with `MOA_WGSL_COOP_PREFETCH=0` generating the decode
/// on cooperative matrices without its software pipeline and `MOA_WGSL_DECODE_FORM`
/// (`eager`, `lazy`, `quad`; default `quad`) choosing the scalar decode's form, `MOA_WGSL_LAZY_MARGIN`
/// its margin, `MOA_WGSL_EARLY_V=1` / `0` their V loads before the last barrier or
/// not (default: before for a GQA group), `MOA_WGSL_PAIRED_EPILOGUE=0` the quad form's
/// end-of-chunk sums one head at a time, `MOA_WGSL_LOAD_BATCH` loads in flight (16),
/// `MOA_WGSL_NARROW_LOADS=1` f16 loads of 8 bytes, `MOA_WGSL_THREADS` invocations per decode workgroup (128),
/// `MOA_WGSL_QUAD_SHUFFLE=1` the quad form's scores summed by subgroup shuffles,
/// `MOA_WGSL_F16` (`0`, `qk`, `pv`, `both`; default qk, and pv for a GQA group) the
/// quad form's products in f16 arithmetic, `MOA_WGSL_QK_SUMS=1` its sums of p by the
/// Q·K invocations, `MOA_WGSL_FUSED_MERGE=1` / `0` the decode merging each segment itself
/// (no merge dispatch) or not, `MOA_WGSL_V_FIRST=1` the quad form's V loads at the start
/// of each tile (`codegen::wgsl::WgslTuning`; to time them side
/// by side, and to run the lazy forms' rescale path on every tile with margin 0).
fn wgsl_artifacts(module: &moa::lower::KernelModule) -> Result<Vec<codegen::Artifact>, String> {
    let mut tuning = codegen::wgsl::WgslTuning {
        coop_prefetch: std::env::var("MOA_WGSL_COOP_PREFETCH").map_or(true, |v| v != "0"),
        ..Default::default()
    };
    if let Ok(name) = std::env::var("MOA_WGSL_DECODE_FORM") {
        tuning.decode_form = codegen::wgsl::DecodeForm::parse(&name).ok_or_else(|| {
            format!("MOA_WGSL_DECODE_FORM: `{name}` is not `eager`, `lazy` or `quad`")
        })?;
    }
    if let Ok(v) = std::env::var("MOA_WGSL_EARLY_V") {
        tuning.decode_early_v = Some(v == "1");
    }
    if let Ok(m) = std::env::var("MOA_WGSL_LAZY_MARGIN") {
        tuning.decode_lazy_margin = m
            .parse()
            .map_err(|_| format!("MOA_WGSL_LAZY_MARGIN: `{m}` is not a whole number 0..=64"))?;
    }
    if let Ok(v) = std::env::var("MOA_WGSL_PAIRED_EPILOGUE") {
        tuning.decode_paired_epilogue = v != "0";
    }
    if let Ok(v) = std::env::var("MOA_WGSL_NARROW_LOADS") {
        tuning.decode_narrow_loads = v == "1";
    }
    if let Some(b) = env_u32_in("MOA_WGSL_LOAD_BATCH", 1..=64)? {
        tuning.decode_load_batch = b;
    }
    if let Some(t) = env_u32_in("MOA_WGSL_THREADS", 32..=256)? {
        tuning.decode_threads = t;
    }
    if let Ok(v) = std::env::var("MOA_WGSL_QUAD_SHUFFLE") {
        tuning.decode_quad_shuffle = v == "1";
    }
    if let Ok(v) = std::env::var("MOA_WGSL_QK_SUMS") {
        tuning.decode_qk_sums = v == "1";
    }
    if let Ok(v) = std::env::var("MOA_WGSL_FUSED_MERGE") {
        tuning.decode_fused_merge = Some(v == "1");
    }
    if let Ok(v) = std::env::var("MOA_WGSL_V_FIRST") {
        tuning.decode_v_first = v == "1";
    }
    // The decode on subgroups (`decode_sg.wgsl.j2`) and its forms, for `regs`: `1` or
    // `read` (its loads-only twin) at subgroup size `MOA_WGSL_SG_SIZE` (default 32,
    // NVIDIA's), `MOA_WGSL_SG_PIPE` items a workgroup of the pipelined form.
    if let Ok(v) = std::env::var("MOA_WGSL_SG_DECODE") {
        if v != "0" {
            let size = env_u32_in("MOA_WGSL_SG_SIZE", 8..=64)?.unwrap_or(32);
            tuning.decode_subgroup = Some(size as u8);
            tuning.decode_sg_diag = v == "read";
        }
    }
    if let Some(k) = env_u32_in("MOA_WGSL_SG_PIPE", 0..=4)? {
        tuning.decode_sg_pipe = k as u8;
    }
    // `MOA_WGSL_SG_FLAT` (`0`, `1`, `late`): the flat decode on subgroups
    // (`decode_sg_flat.wgsl.j2`), its first block before the row position or not.
    if let Ok(v) = std::env::var("MOA_WGSL_SG_FLAT") {
        tuning.decode_sg_flat = match v.as_str() {
            "0" => codegen::wgsl::SgFlat::Off,
            "1" => codegen::wgsl::SgFlat::Early,
            "late" => codegen::wgsl::SgFlat::Late,
            _ => return Err(format!("MOA_WGSL_SG_FLAT: `{v}` is not 0, 1 or late")),
        };
    }
    // The flat form's body built only up to a piece, for `regs` (`MOA_WGSL_SG_PIECE`
    // 1–3: Q·K, + the butterfly and masks, + the online softmax; wrong results).
    // `MOA_WGSL_SG_FLAT_SUBGROUPS` (2, 4 or 8): the flat form's subgroups a workgroup
    // (unset: the form's choice, 8 at head_dim <= 64 in a GQA group, else 4).
    if let Some(n) = env_u32_in("MOA_WGSL_SG_FLAT_SUBGROUPS", 2..=8)? {
        if !matches!(n, 2 | 4 | 8) {
            return Err(format!(
                "MOA_WGSL_SG_FLAT_SUBGROUPS: `{n}` is not 2, 4 or 8"
            ));
        }
        tuning.decode_sg_flat_subgroups = n as u8;
    }
    // `MOA_WGSL_SG_FLAT_QK` (`f32`, `h16`, `reload`, `h16-reload`): how the flat form
    // forms Q·K (`WgslTuning::decode_sg_flat_qk`).
    if let Ok(v) = std::env::var("MOA_WGSL_SG_FLAT_QK") {
        tuning.decode_sg_flat_qk = codegen::wgsl::FlatQk::parse(&v).ok_or_else(|| {
            format!("MOA_WGSL_SG_FLAT_QK: `{v}` is not f32, h16, reload or h16-reload")
        })?;
    }
    // `MOA_WGSL_SG_FLAT_WORDS=1`: the flat form's K and V read as 16-byte words
    // (`WgslTuning::decode_sg_flat_words`, f16 storage).
    if let Ok(v) = std::env::var("MOA_WGSL_SG_FLAT_WORDS") {
        tuning.decode_sg_flat_words = v == "1";
    }
    // `MOA_WGSL_SG_FLAT_CMAX=1`: each slot class's own softmax maxima
    // (`WgslTuning::decode_sg_flat_cmax`); `MOA_WGSL_SG_FLAT_NL` (1, 2, 4, 8): the flat
    // form's loads a lane per step (`WgslTuning::decode_sg_flat_nl`).
    if let Ok(v) = std::env::var("MOA_WGSL_SG_FLAT_CMAX") {
        tuning.decode_sg_flat_cmax = v == "1";
    }
    if let Some(n) = env_u32_in("MOA_WGSL_SG_FLAT_NL", 1..=8)? {
        if !n.is_power_of_two() {
            return Err(format!("MOA_WGSL_SG_FLAT_NL: `{n}` is not 1, 2, 4 or 8"));
        }
        tuning.decode_sg_flat_nl = n as u8;
    }
    // `MOA_WGSL_SG_FLAT_QPACK=1`: the flat form's queries held as packed f16 words,
    // widened in each step (`WgslTuning::decode_sg_flat_qpack`; with the words).
    if let Ok(v) = std::env::var("MOA_WGSL_SG_FLAT_QPACK") {
        tuning.decode_sg_flat_qpack = v == "1";
    }
    // `MOA_WGSL_RULES_TABLE=1`: the flat form's rules read from a per-layer table, one
    // source (and pipeline) for every layer (`WgslTuning::rules_table`, the engine's
    // default since session 43; off here unless asked, as in `moa-compile`).
    if let Ok(v) = std::env::var("MOA_WGSL_RULES_TABLE") {
        tuning.rules_table = v == "1";
    }
    if let Some(p) = env_u32_in("MOA_WGSL_SG_PIECE", 0..=3)? {
        tuning.decode_sg_piece = p as u8;
    }
    // `MOA_WGSL_SG_NO_COMBINE=1`: the flat form without its subgroups' combine (each
    // subgroup stores its own partial; wrong results, a timing diagnostic).
    if let Ok(v) = std::env::var("MOA_WGSL_SG_NO_COMBINE") {
        tuning.decode_sg_no_combine = v == "1";
    }
    if let Ok(v) = std::env::var("MOA_WGSL_F16") {
        (tuning.decode_f16_qk, tuning.decode_f16_pv) = match v.as_str() {
            "0" => (false, Some(false)),
            "qk" => (true, Some(false)),
            "pv" => (false, Some(true)),
            "1" | "both" => (true, Some(true)),
            _ => return Err(format!("MOA_WGSL_F16: `{v}` is not 0, qk, pv or both")),
        };
    }
    let arts = codegen::wgsl::generate_with(module, tuning).map_err(|e| e.to_string())?;
    codegen::limits::check(Target::Wgsl, &arts).map_err(|e| e.to_string())?;
    Ok(arts)
}

/// How the decode pipelines are built (`runtime::wgpu::DecodePipelineOptions`):
/// `MOA_WGSL_ZERO_INIT=0` without wgpu's zero-fill of workgroup memory,
/// `MOA_WGSL_CHECKS=0` without naga's index clamps and loop counters; `1` forces either
/// on; unset, the executor's default.
fn pipeline_options() -> DecodePipelineOptions {
    let mut o = DecodePipelineOptions::default();
    if let Ok(v) = std::env::var("MOA_WGSL_ZERO_INIT") {
        o.zero_init_workgroup_memory = v != "0";
    }
    if let Ok(v) = std::env::var("MOA_WGSL_CHECKS") {
        o.runtime_checks = v != "0";
    }
    o
}

/// The executor over `artifacts` with [`pipeline_options`].
fn attention(
    ctx: &WgpuContext,
    module: &moa::lower::KernelModule,
    artifacts: &[codegen::Artifact],
) -> Result<WgpuAttention, String> {
    WgpuAttention::new_with(ctx, module, artifacts, pipeline_options()).map_err(|e| e.to_string())
}

/// The scalar decode forms the layers got (`decode_form` in the manifest; `eager` where
/// absent), e.g. "quad" or "lazy x 3, quad x 29".
fn decode_forms(artifacts: &[codegen::Artifact]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for k in artifacts.iter().flat_map(|a| &a.kernels) {
        if k.phase != moa::codegen::Phase::Decode || k.abi.tiles.subgroups.is_some() {
            continue;
        }
        let form = k.constants["decode_form"]
            .as_str()
            .unwrap_or("eager")
            .to_string();
        match counts.iter_mut().find(|(f, _)| *f == form) {
            Some((_, n)) => *n += 1,
            None => counts.push((form, 1)),
        }
    }
    match counts.as_slice() {
        [(f, _)] => f.clone(),
        _ => counts
            .iter()
            .map(|(f, n)| format!("{f} x {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Wall-clock of one submit holding `steps` repetitions of `record`, waited for.
fn time_submit(
    ctx: &WgpuContext,
    steps: u32,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>, u32),
) -> Result<f64, String> {
    let dev = ctx.device();
    let mut encoder = dev.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for i in 0..steps {
            record(&mut pass, i);
        }
    }
    let start = Instant::now();
    ctx.queue().submit([encoder.finish()]);
    dev.poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| e.to_string())?;
    Ok(start.elapsed().as_secs_f64())
}

/// Seconds per step: (median T(25 steps) − median T(5 steps)) / 20, 5 submits each
/// after one warm-up of each, so the submit and wait overhead cancels.
/// Seconds per step: (median T(25) − median T(5)) / 20 over 7 alternating submits of
/// each, after 3 warm-up submits of 25 steps; `None` when the difference is not positive
/// (noise larger than 20 steps: the number would mean nothing).
fn per_step(
    ctx: &WgpuContext,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>, u32),
) -> Result<Option<f64>, String> {
    let (lo, hi) = (5u32, 25u32);
    // At least 3 warm-up submits and 50 ms of them: after 3 submits alone, the first
    // configurations after a process's pipeline builds often ran 3-4x slow (~100 us
    // steps: 7.5 ms of warm-up; clocks ramping up is the guess; RESULTS "WGSL decode,
    // session 11").
    let mut warm = 0.0;
    for i in 0.. {
        if i >= 3 && warm >= 0.05 {
            break;
        }
        warm += time_submit(ctx, hi, record)?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(time_submit(ctx, lo, record)?);
        b.push(time_submit(ctx, hi, record)?);
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let d = median(b) - median(a);
    Ok((d > 0.0).then(|| d / f64::from(hi - lo)))
}

/// The WGSL decode on this adapter against the CPU reference: every standard decode
/// case of each plan, f32 and (where the adapter has it) f16, with the host's chunks and
/// with chunks of 1 and 3 tiles. Prints one line per plan and storage; fails on any
/// case out of tolerance.
fn check(plans: &[String]) -> Result<(), String> {
    use moa::runtime::cases::{check_output, standard_decode_cases, tolerance};
    if plans.is_empty() {
        return Err("usage: wgpu_decode_bench check PLAN...".into());
    }
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    println!("check on adapter {:?}", ctx.adapter_name());
    let mut failures = 0;
    for path in plans {
        let plan = Plan::load(Path::new(path)).map_err(|e| e.to_string())?;
        let mut storages = vec![StorageType::F32];
        if ctx.has_f16() {
            storages.push(StorageType::F16);
        }
        for storage in storages {
            let module = lower(&plan, storage);
            let artifacts = wgsl_artifacts(&module)?;
            let exec = attention(&ctx, &module, &artifacts)?;
            let (hq, d) = (
                module.shape.q_heads as usize,
                module.shape.head_dim as usize,
            );
            let tile = exec.decode_tile();
            let cases = standard_decode_cases(&module, 0x5eed);
            let (mut runs, mut worst) = (0, 0.0f32);
            for case in &cases {
                // Chunks as the host picks them, of 1 and 3 tiles, and (0) a list of whole
                // segments, unwritten slots included, as the wgpu engine launches it.
                // (1) Where the decode merges itself: three steps back to back over one
                // scratch in chunks of one tile (the last step's O, and the scratch left
                // as it started).
                for chunk in [None, Some(tile), Some(3 * tile), Some(0), Some(1)] {
                    if chunk == Some(1) && !exec.decode_fused() {
                        continue;
                    }
                    let n = case.layout.n_tokens;
                    let got = match chunk {
                        None => exec.run_decode_case(case),
                        Some(0) => exec.decode_whole_segments(
                            case.layer,
                            n,
                            &case.row_pos,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                        ),
                        Some(1) => exec
                            .decode_repeated(
                                case.layer,
                                n,
                                &case.row_pos,
                                tile,
                                &case.q,
                                &case.k_cache,
                                &case.v_cache,
                                3,
                            )
                            .map(|(o, clean)| {
                                if !clean {
                                    failures += 1;
                                    println!(
                                        "FAIL {path} {storage:?} {}: the fused merge left its scratch dirty",
                                        case.name
                                    );
                                }
                                o
                            }),
                        Some(c) => exec.decode_chunked(
                            case.layer,
                            n,
                            &case.row_pos,
                            c,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                        ),
                    }
                    .map_err(|e| format!("{path} {storage:?} {}: {e}", case.name))?;
                    let tol = tolerance(storage);
                    let (err, _) = moa::runtime::cases::max_abs_error(&got, &case.expected);
                    worst = worst.max(err);
                    runs += 1;
                    if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                        failures += 1;
                        println!("FAIL {path} {storage:?} chunk {chunk:?}: {e}");
                    }
                }
            }
            println!(
                "{path} {storage:?}: {runs} decode runs, max |error| {worst:.3e} (tolerance {:.0e}), decode {}, form {}",
                tolerance(storage),
                exec.decode_kernels(),
                decode_forms(&artifacts)
            );
        }
    }
    if failures > 0 {
        return Err(format!("{failures} decode runs out of tolerance"));
    }
    println!("check pass");
    Ok(())
}

const COPY_WGSL: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
struct Params { row: u32, per_thread: u32 }
@group(0) @binding(2) var<uniform> params: Params;

// Invocation (x, y) copies elements i, i + stride, ... (per_thread of them), with
// stride = the invocations of the whole grid, so each pass of the grid is coalesced.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * nwg.y * 256u;
    let n = arrayLength(&src);
    var i = gid.x + gid.y * params.row;
    for (var k = 0u; k < params.per_thread; k++) {
        if (i < n) {
            dst[i] = src[i];
        }
        i += stride;
    }
}
"#;

/// Bytes per second of the copy kernel (bytes read + bytes written), best of a few
/// grid shapes (one and four 16-byte elements per invocation).
fn copy_rate(ctx: &WgpuContext, bytes: u64) -> Result<Vec<(u32, f64)>, String> {
    let dev = ctx.device();
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("copy"),
        source: wgpu::ShaderSource::Wgsl(COPY_WGSL.into()),
    });
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("copy"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buf = |label: &str| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (buf("copy src"), buf("copy dst"));
    let elems = (bytes / 16) as u32;
    let mut out = Vec::new();
    for per_thread in [1u32, 4] {
        let groups = elems.div_ceil(256 * per_thread);
        let x = groups.min(32768);
        let y = groups.div_ceil(x);
        let params = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("copy params"),
            contents: bytemuck::cast_slice(&[x * 256, per_thread]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("copy"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: src.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: dst.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: params.as_entire_binding(),
                },
            ],
        });
        let t = per_step(ctx, &|pass, _| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(x, y, 1);
        })?;
        match t {
            Some(t) => out.push((per_thread, 2.0 * bytes as f64 / t)),
            None => {
                println!("copy, {per_thread} x 16 B per invocation: unreliable (T(25) <= T(5))")
            }
        }
    }
    Ok(out)
}

/// One shape of [`stream_shapes`]' read kernel.
struct StreamShape {
    label: &'static str,
    /// Invocations a workgroup.
    threads: u32,
    /// 16-byte loads an invocation issues a round (all before any is used).
    loads: u32,
    /// Bytes a workgroup reads (its own contiguous range, in rounds of
    /// `threads × loads × 16` B); 0: one dispatch of one workgroup that reads nothing.
    wg_bytes: u64,
    /// Dependent loads of the workgroup's index before its range is known (the decode's
    /// work item → row position chain is 2).
    chain: u32,
}

/// The read kernel of `shape`: workgroup `w` reads 16-byte elements `base .. base +
/// per_wg` of `src` (`base` = w × per_wg, reached through `chain` dependent loads of
/// `words`, where `words[i] = i`), `loads` a round an invocation, folded by XOR; nothing
/// is written unless the fold hits a value zero-filled buffers never give, so `dst` is
/// only bound read-write (wgpu then puts a barrier between consecutive dispatches, as
/// between the decode's).
fn stream_source(shape: &StreamShape) -> String {
    let (t, l) = (shape.threads, shape.loads);
    let chain: String = (0..shape.chain).map(|_| "    w = words[w];\n").collect();
    let loads: String = (0..l)
        .map(|i| {
            format!(
                "        var x{i} = vec4<u32>(0u);\n        if (r + {o}u < end) {{ x{i} = src[r + {o}u]; }}\n",
                o = i * t
            )
        })
        .collect();
    let fold: String = (0..l).map(|i| format!(" ^ x{i}")).collect();
    format!(
        r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> words: array<u32>;
struct Params {{ per_wg: u32, n: u32, _p0: u32, _p1: u32 }}
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size({t})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
    let item = wg.y * nwg.x + wg.x;
    var w = item;
{chain}    let base = w * params.per_wg;
    let end = min(base + params.per_wg, params.n);
    var acc = vec4<u32>(0u);
    for (var r = base + lid; r < end; r += {step}u) {{
{loads}        acc = acc{fold};
    }}
    // (arrayLength keeps `words` bound where no chain reads it.)
    if (acc.x == 0x9e3779b9u && acc.y == arrayLength(&words)) {{
        dst[item * {t}u + lid] = acc;
    }}
}}
"#,
        step = t * l
    )
}

/// How many copies of `bytes` the timed dispatches rotate over: by default enough that
/// the rotated bytes pass the H200's 60 MB L2 three times (1 to 4), so every read comes
/// from DRAM as in the engine's step; `MOA_WGSL_KV_COPIES=N` (1 to 16) sets it, and 1
/// reads the same bytes every dispatch, L2-warm where they fit: what the dispatch would
/// take if its K/V were already in L2 (session 35's question: is an L2 prefetch of the
/// next layer's K/V during the products worth building?).
///
/// Errors: `MOA_WGSL_KV_COPIES` not an integer in 1..=16.
fn kv_copies(bytes: u64) -> Result<usize, String> {
    match std::env::var("MOA_WGSL_KV_COPIES") {
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if (1..=16).contains(&n) => Ok(n),
            _ => Err(format!(
                "MOA_WGSL_KV_COPIES: `{v}` is not an integer from 1 to 16"
            )),
        },
        Err(_) => Ok(180_000_000u64.div_ceil(bytes.max(1)).clamp(1, 4) as usize),
    }
}

/// `wgpu_decode_bench stream [MB]`: read kernels of several shapes over MB megabytes
/// (default 25.9: one SmolLM2 moa-50 layer's K and V at 16 × 4096), each timed as the
/// decode is (dependent dispatches, [`per_step`]), against the copy kernel's rate, and
/// an empty dispatch (the floor of a dependent dispatch): what the decode's structure
/// (invocations a workgroup, loads in flight an invocation, bytes a workgroup, rounds in
/// series, the chain before the first load) costs without any of its math. The buffer
/// is zero-filled (the time does not depend on values) and rotated over copies that
/// pass the 60 MB L2 3× as the `plan` form's caches do.
fn stream_shapes(args: &[String]) -> Result<(), String> {
    let mb: f64 = match args.first() {
        Some(a) => a
            .parse()
            .map_err(|_| format!("`{a}`: usage: wgpu_decode_bench stream [MB]"))?,
        None => 25.9,
    };
    // Checked before the adapter and the 256 MiB copy (minutes on lavapipe): `stream -1`,
    // `0` or `nan` ran the copy and then read buffers of 0 bytes (round 38).
    if !(mb.is_finite() && mb * 1e6 >= 16.0) {
        return Err(format!(
            "stream {mb}: allowed MB of 0.000016 or more (one vec4 of u32), finite; usage: wgpu_decode_bench stream [MB]"
        ));
    }
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    let dev = ctx.device();
    let limits = dev.limits();
    println!("stream on adapter {:?}", ctx.adapter_name());
    // A buffer larger than the adapter binds failed in wgpu's validation (a panic), and
    // past u64 (`stream 1e30`) the size wrapped to 0; refused before the copy.
    let most = limits.max_storage_buffer_binding_size / 16 * 16;
    if mb * 1e6 > most as f64 {
        return Err(format!(
            "stream {mb}: allowed MB up to {:.1} (this adapter's largest storage binding); usage: wgpu_decode_bench stream [MB]",
            most as f64 / 1e6
        ));
    }
    let copy_bytes = (256u64 << 20).min(limits.max_storage_buffer_binding_size / 16 * 16);
    let copy = copy_rate(&ctx, copy_bytes)?;
    let best_copy = copy.iter().map(|c| c.1).fold(0.0, f64::max);
    println!(
        "copy 256 MiB: {:.3} TB/s (read + written)",
        best_copy / 1e12
    );
    let k = 1024u64;
    #[rustfmt::skip]
    let shapes = [
        StreamShape { label: "empty dispatch", threads: 32, loads: 1, wg_bytes: 0, chain: 0 },
        StreamShape { label: "grid 256 x 1 (the copy's)", threads: 256, loads: 1, wg_bytes: 4 * k, chain: 0 },
        StreamShape { label: "grid 256 x 4", threads: 256, loads: 4, wg_bytes: 16 * k, chain: 0 },
        StreamShape { label: "item 128 x 4, 64K (flat K or V steps)", threads: 128, loads: 4, wg_bytes: 64 * k, chain: 0 },
        StreamShape { label: "item 128 x 8, 64K (flat twin)", threads: 128, loads: 8, wg_bytes: 64 * k, chain: 0 },
        StreamShape { label: "item 128 x 8, 64K, chain 2", threads: 128, loads: 8, wg_bytes: 64 * k, chain: 2 },
        StreamShape { label: "item 128 x 16, 64K", threads: 128, loads: 16, wg_bytes: 64 * k, chain: 0 },
        StreamShape { label: "item 256 x 4, 64K (8 subgroups)", threads: 256, loads: 4, wg_bytes: 64 * k, chain: 0 },
        StreamShape { label: "item 256 x 8, 64K (8 subgroups twin)", threads: 256, loads: 8, wg_bytes: 64 * k, chain: 0 },
        StreamShape { label: "item 256 x 8, 64K, chain 2", threads: 256, loads: 8, wg_bytes: 64 * k, chain: 2 },
        StreamShape { label: "item 128 x 4, 32K", threads: 128, loads: 4, wg_bytes: 32 * k, chain: 0 },
        StreamShape { label: "item 128 x 8, 32K", threads: 128, loads: 8, wg_bytes: 32 * k, chain: 0 },
        StreamShape { label: "item 128 x 8, 32K, chain 2", threads: 128, loads: 8, wg_bytes: 32 * k, chain: 2 },
        StreamShape { label: "item 128 x 8, 16K", threads: 128, loads: 8, wg_bytes: 16 * k, chain: 0 },
        StreamShape { label: "item 256 x 4, 16K", threads: 256, loads: 4, wg_bytes: 16 * k, chain: 0 },
        StreamShape { label: "item 512 x 4, 64K", threads: 512, loads: 4, wg_bytes: 64 * k, chain: 0 },
    ];
    let bytes = ((mb * 1e6) as u64).div_ceil(16) * 16;
    let copies = kv_copies(bytes)?;
    let storage = |label: &str, size: u64| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let srcs: Vec<wgpu::Buffer> = (0..copies).map(|_| storage("stream src", bytes)).collect();
    // Workgroups × invocations never pass the elements read (at most one element an
    // invocation for the copy's grid).
    let dst = storage("stream dst", bytes + 16 * 1024);
    let max_items = 65536u32;
    let words: Vec<u32> = (0..max_items).collect();
    let words = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("stream words"),
        contents: bytemuck::cast_slice(&words),
        usage: wgpu::BufferUsages::STORAGE,
    });
    println!(
        "{:.1} MB read a dispatch ({copies} copies rotated); us per dispatch, TB/s read, share of the copy's rate",
        bytes as f64 / 1e6
    );
    for shape in &shapes {
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("stream"),
            source: wgpu::ShaderSource::Wgsl(stream_source(shape).into()),
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("stream"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let n = (bytes / 16) as u32;
        let (per_wg, groups) = if shape.wg_bytes == 0 {
            (0, 1)
        } else {
            let per_wg = (shape.wg_bytes / 16) as u32;
            (per_wg, n.div_ceil(per_wg))
        };
        if groups > max_items {
            return Err(format!("{}: {groups} workgroups", shape.label));
        }
        let params = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("stream params"),
            contents: bytemuck::cast_slice(&[per_wg, n, 0, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let binds: Vec<wgpu::BindGroup> = srcs
            .iter()
            .map(|src| {
                dev.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("stream"),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: src.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: dst.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: words.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: params.as_entire_binding(),
                        },
                    ],
                })
            })
            .collect();
        let t = per_step(&ctx, &|pass, i| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &binds[i as usize % binds.len()], &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        })?;
        let Some(t) = t else {
            println!("{}: unreliable (T(25) <= T(5))", shape.label);
            continue;
        };
        let read = if shape.wg_bytes == 0 { 0 } else { bytes };
        let rate = read as f64 / t;
        println!(
            "{:<40} {groups:>6} wgs {:>7.2} us {:>6.3} TB/s {:>5.2} of copy",
            shape.label,
            t * 1e6,
            rate / 1e12,
            rate / best_copy
        );
    }
    Ok(())
}

/// The second form: an upstream plan's layers against the copy kernel (see the top).
fn upstream_vs_copy(args: &[String]) -> Result<(), String> {
    let usage = "usage: wgpu_decode_bench upstream PATH KV_HEADS LAYERS BATCHES PROMPTS";
    let [path, kv, layers, batches, prompts] = args else {
        return Err(usage.into());
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| format!("`{s}`: {usage}"));
    let list = |s: &str| s.split(',').map(num).collect::<Result<Vec<u32>, String>>();
    let (kv_heads, layers, batches, prompts) =
        (num(kv)?, list(layers)?, list(batches)?, list(prompts)?);
    let shape = moa::plan::ModelShape {
        name: None,
        layers: 32,
        q_heads: 32,
        kv_heads,
        head_dim: 128,
        max_context_tokens: 262_144,
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let plan = moa::plan::upstream::import(&text, path, shape).map_err(|e| e.to_string())?;
    let ns: Vec<(u32, u32)> = prompts.iter().map(|&p| (p, p + 1024)).collect();
    layers_vs_copy(&plan, &layers, &batches, &ns)
}

/// The third form: a moa plan (TOML) at its own shape, `wgpu_decode_bench plan PATH
/// LAYERS BATCHES NS`: rows at position N − 1 for each N of NS (comma-separated), the
/// rest as `upstream` (the wgpu engine's SmolLM2 step: `plan
/// plans/smollm2-135m-moa-50.toml 0,... 16 4096`). Its rows carry `"prompt": N`.
fn plan_vs_copy(args: &[String]) -> Result<(), String> {
    let usage = "usage: wgpu_decode_bench plan PATH LAYERS BATCHES NS";
    let [path, layers, batches, ns] = args else {
        return Err(usage.into());
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| format!("`{s}`: {usage}"));
    let list = |s: &str| s.split(',').map(num).collect::<Result<Vec<u32>, String>>();
    let (layers, batches, ns) = (list(layers)?, list(batches)?, list(ns)?);
    let plan = Plan::load(Path::new(path)).map_err(|e| e.to_string())?;
    let ns: Vec<(u32, u32)> = ns.iter().map(|&n| (n, n)).collect();
    layers_vs_copy(&plan, &layers, &batches, &ns)
}

/// The listed layers of `plan` at each (label, N) of `ns` and each batch, against the
/// copy kernel (see the top).
fn layers_vs_copy(
    plan: &Plan,
    layers: &[u32],
    batches: &[u32],
    ns: &[(u32, u32)],
) -> Result<(), String> {
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    let storage = if ctx.has_f16() {
        StorageType::F16
    } else {
        StorageType::F32
    };
    let info = ctx.adapter_info();
    let limits = ctx.device().limits();
    println!(
        "adapter {:?} ({:?}, driver {:?} {:?}), storage {storage:?}, max storage binding {} MiB",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        limits.max_storage_buffer_binding_size >> 20
    );
    let copy_mib: u64 = std::env::var("MOA_COPY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let copy_bytes = (copy_mib << 20).min(limits.max_storage_buffer_binding_size / 16 * 16);
    let copy = copy_rate(&ctx, copy_bytes)?;
    let best_copy = copy.iter().map(|c| c.1).fold(0.0, f64::max);
    for (per_thread, rate) in &copy {
        println!(
            "copy {} MiB, {per_thread} x 16 B per invocation: {:.3} TB/s (read + written)",
            copy_bytes >> 20,
            rate / 1e12
        );
        println!(
            "{{\"impl\":\"wgpu-copy\",\"bytes\":{copy_bytes},\"per_thread\":{per_thread},\"tbps\":{}}}",
            rate / 1e12
        );
    }
    let mut module = lower(plan, storage);
    if let Some(&bad) = layers.iter().find(|&&l| l as usize >= module.layers.len()) {
        return Err(format!(
            "layer {bad} is out of range: the plan has {} layers",
            module.layers.len()
        ));
    }
    // Only the listed layers' kernels are generated and built: a fresh driver compiles
    // each pipeline (prefill and decode) on first use, over 14 s for all 32 layers.
    module.layers.retain(|s| layers.contains(&s.layer));
    let artifacts = wgsl_artifacts(&module)?;
    let built = Instant::now();
    let exec = attention(&ctx, &module, &artifacts)?;
    println!(
        "decode kernels ({:.1} s to build the pipelines): {} (tile {}), scalar decode form {}{}",
        built.elapsed().as_secs_f64(),
        exec.decode_kernels(),
        exec.decode_tile(),
        decode_forms(&artifacts),
        match std::env::var("MOA_WGSL_EARLY_V").as_deref() {
            Ok("1") => ", early V loads",
            Ok(_) => ", no early V loads",
            Err(_) => "",
        }
    );
    let dev = ctx.device();
    let s = &module.shape;
    let (hq, d) = (s.q_heads as usize, s.head_dim as usize);
    let elem = storage.bytes() as u64;
    // `auto` = the host's choice; `auto@W` = the same model with W resident workgroups
    // instead of `WGSL_DECODE_CONCURRENT_WORKGROUPS`; else slots per chunk.
    let chunks: Vec<Chunk> = std::env::var("MOA_WGSL_CHUNKS")
        .unwrap_or_else(|_| "auto".into())
        .split(',')
        .map(|c| {
            let bad = || format!("MOA_WGSL_CHUNKS: `{c}` is not `auto`, `auto@W` or a slot count");
            match c.strip_prefix("auto") {
                Some("") => Ok(Chunk::Auto(None)),
                Some(w) => w
                    .strip_prefix('@')
                    .and_then(|w| w.parse::<u32>().ok())
                    .filter(|&w| w > 0)
                    .map(|w| Chunk::Auto(Some(w)))
                    .ok_or_else(bad),
                None => c.parse::<u32>().map(Chunk::Fixed).map_err(|_| bad()),
            }
        })
        .collect::<Result<_, _>>()?;
    let parts: Vec<(&str, std::ops::Range<usize>)> = std::env::var("MOA_WGSL_PARTS")
        .unwrap_or_else(|_| "step".into())
        .split(',')
        .map(|part| match part {
            "step" => Ok(("step", 0..2)),
            "decode" => Ok(("decode", 0..1)),
            "merge" => Ok(("merge", 1..2)),
            other => Err(format!(
                "MOA_WGSL_PARTS: `{other}` is not `step`, `decode` or `merge`"
            )),
        })
        .collect::<Result<_, _>>()?;
    // `MOA_WGSL_ITEMS`: which of the host's items each row launches ([`select_items`]).
    let selections: Vec<Items> = std::env::var("MOA_WGSL_ITEMS")
        .unwrap_or_else(|_| "all".into())
        .split(',')
        .map(Items::parse)
        .collect::<Result<_, _>>()?;
    // `MOA_WGSL_SEQUENCE=1` also times every listed layer's step back to back in one pass
    // (each layer its own list, caches and scratch, one copy), as the wgpu engine's
    // profile times its attention kind, after the per-layer rows; `only`: that alone.
    let kv_random = std::env::var("MOA_WGSL_KV_RANDOM").is_ok_and(|v| v == "1");
    let sequence = std::env::var("MOA_WGSL_SEQUENCE").unwrap_or_default();
    let (sequence, per_layer) = match sequence.as_str() {
        "" | "0" => (false, true),
        "1" => (true, true),
        "only" => (true, false),
        other => return Err(format!("MOA_WGSL_SEQUENCE: `{other}` is not 0, 1 or only")),
    };
    // Per (rows, prompt, chunk setting): its label, KV bytes and items over the layers so
    // far, and each layer's step.
    type Sequence = (String, u64, u32, Vec<Vec<moa::runtime::wgpu::Dispatch>>);
    let mut sequences: Vec<Sequence> = Vec::new();
    for &(p, n) in ns {
        for &rows in batches {
            for (&layer, &chunk) in layers
                .iter()
                .flat_map(|l| chunks.iter().map(move |c| (l, c)))
            {
                // Index into the retained layers (the executor's layer argument).
                let l = module
                    .layers
                    .iter()
                    .position(|s| s.layer == layer)
                    .expect("every listed layer is retained");
                let layout = moa::lower::CacheLayout::new(&module.layers[l], &module.span, n);
                let pos = vec![n - 1; rows as usize];
                let cache_bytes = u64::from(rows) * u64::from(layout.row_slots) * d as u64 * elem;
                let kv_bytes = 2 * cache_bytes;
                let work = match chunk {
                    Chunk::Auto(None) => exec.decode_work(&layout, &pos),
                    Chunk::Auto(Some(w)) => exec.decode_work_chunked(
                        &layout,
                        &pos,
                        moa::runtime::worklist::choose_chunk(&layout, &pos, exec.decode_tile(), w),
                    ),
                    Chunk::Fixed(c) => exec.decode_work_chunked(&layout, &pos, c),
                };
                let n_items = work.n_items();
                let chunk_label = match chunk {
                    Chunk::Auto(None) => format!("auto {}", work.chunk),
                    Chunk::Auto(Some(w)) => format!("auto@{w} {}", work.chunk),
                    Chunk::Fixed(_) => work.chunk.to_string(),
                };
                let label = format!(
                    "layer {layer} B={rows} prompt {p} (N={n}, {:.0} MB KV, chunk {chunk_label}, {n_items} items)",
                    kv_bytes as f64 / 1e6
                );
                if cache_bytes > limits.max_storage_buffer_binding_size {
                    println!("{label}: skipped (a K/V binding of {cache_bytes} B exceeds the adapter's limit)");
                    continue;
                }
                let copies = kv_copies(kv_bytes)?;
                let mut seed = 0x2545_f491u32;
                let q: Vec<f32> = (0..rows as usize * hq * d)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                    })
                    .collect();
                let init = |label: &str, contents: &[u8]| {
                    dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(label),
                        contents,
                        usage: wgpu::BufferUsages::STORAGE,
                    })
                };
                let zeros = |label: &str, size: u64| {
                    dev.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size,
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    })
                };
                let row_pos = init("row_pos", bytemuck::cast_slice(&pos));
                let qb = init("q", &tensor_bytes(&q, storage));
                let o = zeros("o", (rows as usize * hq * d) as u64 * elem);
                // K/V hold zeros (wgpu zero-fills), or with `MOA_WGSL_KV_RANDOM=1` values
                // uniform in [-2, 2) (one draw a layer, the same in every copy): the real
                // forms ran faster over zeros than the engine's over its caches (session
                // 20), the loads-only twins did not.
                let caches: Vec<(wgpu::Buffer, wgpu::Buffer)> = if kv_random {
                    let elems = (cache_bytes / elem) as usize;
                    let draw = |salt: u32| {
                        let mut x = 0x9e37_79b9u32 ^ salt ^ layer;
                        let v: Vec<f32> = (0..elems)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 17;
                                x ^= x << 5;
                                (x >> 8) as f32 / (1u32 << 22) as f32 - 2.0
                            })
                            .collect();
                        tensor_bytes(&v, storage)
                    };
                    let (kb, vb) = (draw(1), draw(2));
                    (0..copies)
                        .map(|_| (init("k_cache", &kb), init("v_cache", &vb)))
                        .collect()
                } else {
                    (0..copies)
                        .map(|_| (zeros("k_cache", cache_bytes), zeros("v_cache", cache_bytes)))
                        .collect()
                };
                for sel in &selections {
                    let (label, n_items, flat) = match sel {
                        Items::All => (label.clone(), n_items, work.flat()),
                        sel => {
                            let (kept, flat) = select_items(&work, *sel);
                            let slots: u64 = kept
                                .iter()
                                .map(|&i| u64::from(work.items[i][2] - work.items[i][1]))
                                .sum();
                            let longest = kept
                                .iter()
                                .map(|&i| work.items[i][2] - work.items[i][1])
                                .max()
                                .unwrap_or(0);
                            let shortest = kept
                                .iter()
                                .map(|&i| work.items[i][2] - work.items[i][1])
                                .min()
                                .unwrap_or(0);
                            (
                            format!(
                                "{label} items {} ({} of {n_items}, {slots} slots, {shortest}..{longest} a item)",
                                sel.name(),
                                kept.len()
                            ),
                            kept.len() as u32,
                            flat,
                        )
                        }
                    };
                    let work_b = init("work", bytemuck::cast_slice(&flat));
                    let (partials, seg_done) = exec.decode_scratch(n_items, rows);
                    let steps = caches
                        .iter()
                        .map(|(k, v)| {
                            exec.decode_dispatches(
                                l,
                                n,
                                rows,
                                n_items,
                                [&row_pos, &qb, k, v, &work_b, &partials, &seg_done, &o],
                            )
                            .map_err(|e| e.to_string())
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    for (part, range) in parts.iter().filter(|_| per_layer) {
                        let label = if *part == "step" {
                            label.clone()
                        } else {
                            format!("{label} [{part} only]")
                        };
                        // A decode that merges itself is one dispatch: no `merge` part.
                        let range = range.start..range.end.min(steps[0].len());
                        if range.is_empty() {
                            continue;
                        }
                        let t = per_step(&ctx, &|pass, i| {
                            for dsp in &steps[i as usize % steps.len()][range.clone()] {
                                dsp.encode(pass);
                            }
                        })?;
                        let Some(t) = t else {
                            println!("{label}: unreliable (T(25) <= T(5)), no rate");
                            continue;
                        };
                        let rate = kv_bytes as f64 / t;
                        println!(
                            "{label}: {:.1} us per step, {:.3} TB/s = {:.2} of the copy's rate",
                            t * 1e6,
                            rate / 1e12,
                            rate / best_copy
                        );
                        println!(
                    "{{\"impl\":\"wgpu-decode\",\"part\":\"{part}\",\"layer\":{layer},\"batch\":{rows},\"prompt\":{p},\"n_tokens\":{n},\"kv_bytes\":{kv_bytes},\"chunk\":{},\"auto\":{},\"items\":{n_items},\"copies\":{copies},\"us\":{},\"tbps\":{},\"of_copy\":{}}}",
                    work.chunk,
                    matches!(chunk, Chunk::Auto(_)),
                    t * 1e6,
                    rate / 1e12,
                    rate / best_copy
                );
                    }
                    if sequence && matches!(sel, Items::All) {
                        let key = format!(
                            "B={rows} prompt {p} (N={n}, chunk {})",
                            match chunk {
                                Chunk::Auto(None) => "auto".to_string(),
                                Chunk::Auto(Some(w)) => format!("auto@{w}"),
                                Chunk::Fixed(c) => c.to_string(),
                            }
                        );
                        let mut steps = steps;
                        let step = steps.swap_remove(0);
                        match sequences.iter_mut().find(|s| s.0 == key) {
                            Some(s) => {
                                s.1 += kv_bytes;
                                s.2 += n_items;
                                s.3.push(step);
                            }
                            None => sequences.push((key, kv_bytes, n_items, vec![step])),
                        }
                    }
                }
            }
        }
    }
    for (key, kv_bytes, n_items, steps) in &sequences {
        let t = per_step(&ctx, &|pass, _| {
            for step in steps {
                for dsp in step {
                    dsp.encode(pass);
                }
            }
        })?;
        let layers = steps.len();
        let label = format!(
            "sequence of {layers} layers {key} ({:.0} MB KV, {n_items} items)",
            *kv_bytes as f64 / 1e6
        );
        let Some(t) = t else {
            println!("{label}: unreliable (T(25) <= T(5)), no rate");
            continue;
        };
        let rate = *kv_bytes as f64 / t;
        println!(
            "{label}: {:.1} us per step = {:.2} us per layer, {:.3} TB/s = {:.2} of the copy's rate",
            t * 1e6,
            t * 1e6 / layers as f64,
            rate / 1e12,
            rate / best_copy
        );
        println!(
            "{{\"impl\":\"wgpu-decode-sequence\",\"layers\":{layers},\"key\":\"{key}\",\"kv_bytes\":{kv_bytes},\"items\":{n_items},\"us\":{},\"us_per_layer\":{},\"tbps\":{},\"of_copy\":{}}}",
            t * 1e6,
            t * 1e6 / layers as f64,
            rate / 1e12,
            rate / best_copy
        );
    }
    Ok(())
}

/// `wgpu_decode_bench regs PLAN KV_HEADS LAYERS`: what the Vulkan driver compiled each
/// listed layer's decode (and the merge) into, through `VK_KHR_pipeline_executable_properties`
/// (registers per invocation, shared memory, binary size, as the driver names them),
/// since wgpu shows none of it. PLAN is an upstream JSON plan (32 layers, head_dim 128,
/// `KV_HEADS` KV heads) or a moa TOML plan (`-` for KV_HEADS). The kernels are generated
/// with the bench's tuning knobs (`wgsl_artifacts`), the decode in the engine's form (the
/// flat form on subgroups) unless `MOA_WGSL_SG_DECODE` says otherwise (`0`: the scalar
/// decode; the first line names the form), f16 storage, and translated to
/// SPIR-V by naga with the options wgpu 30 uses on Vulkan 1.3 (index clamps and loop
/// counters unless `MOA_WGSL_CHECKS=0`, workgroup memory zero-filled by the driver
/// unless `MOA_WGSL_ZERO_INIT=0`), then built on the first GPU through raw Vulkan with
/// statistics captured. One line per kernel: `regs layer L: NAME=VALUE, ...`.
mod regs {
    use std::ffi::{CStr, CString};

    use ash::vk;
    use moa::lower::{lower, StorageType};
    use moa::plan::Plan;

    pub fn run(args: &[String]) -> Result<(), String> {
        let usage = "usage: wgpu_decode_bench regs PLAN KV_HEADS|- LAYERS";
        let [path, kv, layers] = args else {
            return Err(usage.into());
        };
        let layers: Vec<u32> = layers
            .split(',')
            .map(|l| l.parse().map_err(|_| format!("`{l}`: {usage}")))
            .collect::<Result<_, _>>()?;
        let plan = if path.ends_with(".toml") {
            Plan::load(std::path::Path::new(path)).map_err(|e| e.to_string())?
        } else {
            let kv_heads = kv.parse().map_err(|_| format!("`{kv}`: {usage}"))?;
            let shape = moa::plan::ModelShape {
                name: None,
                layers: 32,
                q_heads: 32,
                kv_heads,
                head_dim: 128,
                max_context_tokens: 262_144,
            };
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            moa::plan::upstream::import(&text, path, shape).map_err(|e| e.to_string())?
        };
        let mut module = lower(&plan, StorageType::F16);
        module.layers.retain(|s| layers.contains(&s.layer));
        // The engine's decode unless told otherwise: the flat form on subgroups
        // (`runtime::wgpu_engine::engine_wgsl_tuning`); `MOA_WGSL_SG_DECODE=0` reads the
        // scalar decode. Sessions 20 and 21 read the scalar decode's 102 registers as the
        // flat form's through the bench's own default (benches/RESULTS.md, "WGSL decode,
        // session 21").
        if std::env::var_os("MOA_WGSL_SG_DECODE").is_none() {
            std::env::set_var("MOA_WGSL_SG_DECODE", "1");
            if std::env::var_os("MOA_WGSL_SG_FLAT").is_none() {
                std::env::set_var("MOA_WGSL_SG_FLAT", "late");
            }
        }
        let form = match std::env::var("MOA_WGSL_SG_DECODE").as_deref() {
            Ok("0") => "scalar decode",
            _ => match std::env::var("MOA_WGSL_SG_FLAT").as_deref() {
                Ok("1") | Ok("late") => "flat decode on subgroups",
                _ => "decode on subgroups",
            },
        };
        let artifacts = super::wgsl_artifacts(&module)?;
        let opts = super::pipeline_options();
        let vk = Vulkan::new()?;
        println!("regs on {} ({}), the {form}", vk.name, vk.driver);
        for a in &artifacts {
            for k in &a.kernels {
                // The scalar decode, or the decode on subgroups where it was asked
                // (`MOA_WGSL_SG_DECODE`), and the merge.
                let wanted = match k.phase {
                    moa::codegen::Phase::Decode => {
                        k.abi.tiles.subgroups.is_none()
                            || std::env::var("MOA_WGSL_SG_DECODE").is_ok_and(|v| v != "0")
                    }
                    moa::codegen::Phase::DecodeMerge => true,
                    _ => false,
                };
                if !wanted {
                    continue;
                }
                let spv = spirv(&a.source, &k.entry_point, opts, &[])?;
                let stats = vk
                    .statistics(&spv, &k.entry_point)
                    .map_err(|e| format!("{}: {e}", k.name))?;
                let layer = k.layer.map_or("merge".to_string(), |l| l.to_string());
                println!(
                    "regs layer {layer}: threads {}, {}",
                    k.abi.block[0],
                    stats.join(", ")
                );
            }
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-products KSPLIT:GROUPS[:ROWS[:STEPS[:EARLY]]][,...] [DIAG]`:
    /// the driver's statistics of the engine's decode products on subgroups
    /// (`matvec_sg.wgsl`, f16 weights, subgroups of 32) for each (KSPLIT, column groups a
    /// workgroup, rows a workgroup row: 16 unless given, STEPS: 0, the K loop, unless
    /// given: the fitted form of `MOA_WGPU_SG_FIT`, e.g. `5:1:8:1` and `6:1:8:2` for
    /// SmolLM2; EARLY: `MOA_WGPU_SG_EARLY`, the engine's default 1 unless given), four
    /// kernels: the f16 attention output (the output product), f32 (the down product),
    /// f32 with the RMSNorm in the K loop (the QKV and gate/up products' loop) and the QKV
    /// product's RoPE entry point. Without naga's runtime checks, as the engine builds
    /// them (`MOA_WGPU_UNCHECKED`).
    pub fn products(args: &[String]) -> Result<(), String> {
        use moa::runtime::shaders::{Types, MATVEC_SG, MATVEC_SG_ROPE};
        let usage = "usage: wgpu_decode_bench regs-products KSPLIT:GROUPS[:ROWS[:STEPS[:EARLY]]][,...] [DIAG]";
        let [list, rest @ ..] = args else {
            return Err(usage.into());
        };
        let diag: f64 = match rest.first() {
            Some(d) => d.parse().map_err(|_| format!("`{d}`: {usage}"))?,
            None => 0.0,
        };
        let opts = moa::runtime::wgpu::DecodePipelineOptions {
            runtime_checks: false,
            zero_init_workgroup_memory: false,
        };
        // Every SPIR-V first (a naga error shows without a driver), then the driver.
        let mut built = Vec::new();
        for pair in list.split(',') {
            let f: Option<Vec<u32>> = pair.split(':').map(|v| v.parse().ok()).collect();
            let (ks, groups, rows, steps, early) = match f.as_deref() {
                Some(&[ks, groups]) => (ks, groups, 16, 0, 1),
                Some(&[ks, groups, rows, ref more @ ..])
                    if [4, 8, 16].contains(&rows) && more.len() <= 2 =>
                {
                    let at = |i: usize, d: u32| more.get(i).copied().unwrap_or(d);
                    (ks, groups, rows, at(0, 0), at(1, 1))
                }
                _ => return Err(format!("`{pair}`: {usage}")),
            };
            for (what, input, mode, shader) in [
                ("out (f16 x)", StorageType::F16, 0.0, MATVEC_SG),
                ("down (f32 x)", StorageType::F32, 0.0, MATVEC_SG),
                ("norm (f32 x, RMSNorm)", StorageType::F32, 1.0, MATVEC_SG),
                ("qkv (RMSNorm, RoPE)", StorageType::F32, 1.0, MATVEC_SG_ROPE),
            ] {
                let types = Types {
                    weights: StorageType::F16,
                    input,
                    attention: StorageType::F16,
                };
                let constants = [
                    ("INPUT_MODE", mode),
                    ("SG", 32.0),
                    ("KSPLIT", f64::from(ks)),
                    ("GROUPS", f64::from(groups)),
                    ("WG", f64::from(ks * groups * 32)),
                    ("DIAG", diag),
                    ("ROW_GROUPS", f64::from(rows / 4)),
                    ("STEPS", f64::from(steps)),
                    ("EARLY", f64::from(early)),
                ];
                let spv = spirv(&shader.source(types), shader.entry_point, opts, &constants)?;
                let name = format!(
                    "matvec_sg KSPLIT {ks} groups {groups} rows {rows} steps {steps} early {early} DIAG {diag} {what}: threads {}",
                    ks * groups * 32
                );
                built.push((name, shader.entry_point, spv));
            }
        }
        println!("regs-products: {} kernels translated", built.len());
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        for (name, entry, spv) in &built {
            let stats = vk
                .statistics(spv, entry)
                .map_err(|e| format!("{name}: {e}"))?;
            println!("regs {name}, {}", stats.join(", "));
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-coop [K [K_ATTN]]`: the driver's statistics of the engine's
    /// decode products on matrix units (`coop_matvec.wgsl`, K over 4 subgroups, the early
    /// walk, subgroups of 32) for K (default 576, SmolLM2's hidden size) and the output
    /// product's K_ATTN (default K): gate/up (RMSNorm, SwiGLU epilogue, 2 tiles, f32 x),
    /// QKV (RMSNorm, RoPE epilogue, 2 tiles, head_dim 64), the output product (1 tile, f16
    /// x, staged or direct), each with naga's index checks (the engine's build until
    /// `MOA_WGPU_COOP_DECODE_UNCHECKED`) and without. Needs a device offering
    /// VK_KHR_cooperative_matrix. Session 23 read 209 registers, no stack, 26 880 bytes of
    /// workgroup memory for gate/up unchecked on the H200.
    pub fn coop_gate_up(args: &[String]) -> Result<(), String> {
        use moa::runtime::shaders::{coop_matvec_source, CoopWalk, COOP_MATVEC};
        let usage = "usage: wgpu_decode_bench regs-coop [K [K_ATTN]]";
        let arg = |i: usize| -> Result<Option<usize>, String> {
            args.get(i)
                .map(|v| v.parse().map_err(|_| format!("`{v}`: {usage}")))
                .transpose()
        };
        let k = arg(0)?.unwrap_or(576);
        let ka = arg(1)?.unwrap_or(k);
        let early = CoopWalk {
            early: true,
            ..CoopWalk::default()
        };
        let direct = CoopWalk {
            direct: true,
            ..early
        };
        let rope = CoopWalk {
            rope: Some(64),
            ..early
        };
        let f32_x = StorageType::F32;
        let f16_x = StorageType::F16;
        // (name, K, tiles, x, walk, INPUT_MODE, EPI)
        let forms = [
            ("gate/up", k, 2, f32_x, early, 1.0, 2.0),
            ("qkv (rope)", k, 2, f32_x, rope, 1.0, 3.0),
            ("out (staged x)", ka, 1, f16_x, early, 0.0, 0.0),
            ("out (direct)", ka, 1, f16_x, direct, 0.0, 0.0),
        ];
        let mut built = Vec::new();
        for (name, kk, tiles, x, walk, mode, epi) in forms {
            let source = coop_matvec_source(kk, tiles, 4, x, 32, walk);
            let constants = [("SG", 32.0), ("INPUT_MODE", mode), ("EPI", epi)];
            for checked in [true, false] {
                let opts = moa::runtime::wgpu::DecodePipelineOptions {
                    runtime_checks: checked,
                    zero_init_workgroup_memory: false,
                };
                let spv = spirv(&source, COOP_MATVEC.entry_point, opts, &constants)?;
                built.push((format!("{name} K {kk} checked={checked}"), spv));
            }
        }
        println!("regs-coop: {} kernels translated", built.len());
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        for (what, spv) in &built {
            match vk.statistics(spv, COOP_MATVEC.entry_point) {
                Ok(stats) => println!(
                    "regs coop_matvec {what} KPARTS 4: threads 128, {}",
                    stats.join(", ")
                ),
                Err(e) => println!("regs coop_matvec {what}: {e}"),
            }
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-fused [K_ATTN HIDDEN]`: the driver's statistics of the
    /// fused output -> gate/up decode dispatch (`coop_fused_mlp_source`) in each form
    /// (x as scalars or 4-vectors (the engine's), with naga's runtime checks and without
    /// (`MOA_WGPU_COOP_DECODE_UNCHECKED`, the default)), bound as the engine binds it (uniforms at 0, 8 and 30), beside the two products alone as the
    /// engine builds them (checked): the direct output product (1 tile, K over 4
    /// subgroups) and the gate/up product (RMSNorm, SwiGLU). Subgroups of 32. Session 34
    /// (s34-fuse): which registers, workgroup memory and code the fused module holds
    /// against each phase alone.
    pub fn coop_fused(args: &[String]) -> Result<(), String> {
        use moa::runtime::shaders::{
            coop_fused_mlp_source, coop_matvec_source, CoopWalk, FusedForm, COOP_MATVEC,
        };
        let usage = "usage: wgpu_decode_bench regs-fused [K_ATTN HIDDEN]";
        let (ka, kh): (usize, usize) = match args {
            [] => (576, 576),
            [a, h] => (
                a.parse().map_err(|_| format!("`{a}`: {usage}"))?,
                h.parse().map_err(|_| format!("`{h}`: {usage}"))?,
            ),
            _ => return Err(usage.into()),
        };
        let early = CoopWalk {
            early: true,
            ..CoopWalk::default()
        };
        let direct = CoopWalk {
            direct: true,
            ..early
        };
        let out = coop_matvec_source(ka, 1, 4, StorageType::F16, 32, direct);
        let gate_up = coop_matvec_source(kh, 2, 4, StorageType::F32, 32, early);
        let opts = |checked: bool| moa::runtime::wgpu::DecodePipelineOptions {
            runtime_checks: checked,
            zero_init_workgroup_memory: false,
        };
        // Every SPIR-V first (a naga error shows without a driver), then the driver.
        let mut built = Vec::new();
        for (what, src, mode, epi) in [
            ("out alone", &out, 0.0, 0.0),
            ("gate/up alone", &gate_up, 1.0, 2.0),
        ] {
            let constants = [("SG", 32.0), ("INPUT_MODE", mode), ("EPI", epi)];
            let spv = spirv(src, COOP_MATVEC.entry_point, opts(true), &constants)?;
            built.push((format!("{what} checked"), spv, COOP_MATVEC.entry_point));
        }
        let phases = [(out.clone(), 0, 0, None), (gate_up.clone(), 1, 2, None)];
        for x4 in [false, true] {
            let form = FusedForm { meet: 1, x4 };
            let source = coop_fused_mlp_source(&phases, 32, form)?;
            for checked in [true, false] {
                let spv = spirv(&source, "moa_fused_mlp", opts(checked), &[])?;
                built.push((
                    format!("fused x4 {x4} checked {checked}"),
                    spv,
                    "moa_fused_mlp",
                ));
            }
        }
        println!(
            "regs-fused: {} kernels translated (K {ka} / {kh})",
            built.len()
        );
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        // The engine's bindings of the fused module (record.rs): each phase's 0-6 moved up
        // by 8, the phases' uniforms at 0 and 8, the dispatch's at 30, its counter at 31.
        let fused: Vec<u32> = (0..7).chain(8..15).chain([30, 31]).collect();
        for (what, spv, entry) in &built {
            let stats = if *entry == "moa_fused_mlp" {
                vk.statistics_bound(spv, entry, &fused, &[0, 8, 30])
            } else {
                vk.statistics(spv, entry)
            };
            match stats {
                Ok(stats) => println!("regs {what}: threads 128, {}", stats.join(", ")),
                Err(e) => println!("regs {what}: {e}"),
            }
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-head [K]`: the driver's statistics of the decode LM head
    /// (`coop_head.wgsl`, EPI 1: the argmax's first stage, subgroups of 32) with naga's
    /// runtime checks (`MOA_WGPU_COOP_HEAD_UNCHECKED=0`) and without (the engine's default
    /// since session 33), at the engine's stage width (192 of K for SmolLM2) and 2 blocks a
    /// workgroup, and unchecked at other widths and blocks (`MOA_WGPU_COOP_HEAD_KS`,
    /// `_BLOCKS`): registers and workgroup memory bound the workgroups an SM holds.
    /// Session 33 (s33-head) read 244 registers checked, 247 unchecked (207 at KS 96, 232
    /// at 144), 48 384 bytes of workgroup memory: 2 workgroups of 128 an SM, so SmolLM2's
    /// 384 workgroups (49 152 columns at 2 blocks) run in two waves of 264. Session 34
    /// (s34-head) read 247 for the multiply-add loop kept a loop (1–6 fragment pairs a
    /// trip) and for stage 0 fetched after x, apart and together (both deleted, the forms
    /// in commit 61ad8032).
    pub fn coop_head(args: &[String]) -> Result<(), String> {
        use moa::runtime::shaders::{coop_head_source, COOP_HEAD};
        let usage = "usage: wgpu_decode_bench regs-head [K]";
        let k: usize = match args.first() {
            Some(v) => v.parse().map_err(|_| format!("`{v}`: {usage}"))?,
            None => 576,
        };
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        for (checked, ks, bpw) in [
            (true, 192, 2),
            (false, 192, 2),
            (false, 192, 3),
            (false, 192, 1),
            (false, 96, 2),
            (false, 144, 2),
        ] {
            if !k.is_multiple_of(ks) {
                continue;
            }
            let opts = moa::runtime::wgpu::DecodePipelineOptions {
                runtime_checks: checked,
                zero_init_workgroup_memory: false,
            };
            let source = coop_head_source(k, ks, bpw, 32);
            let constants = [("EPI", 1.0), ("DIAG", 0.0)];
            let spv = spirv(&source, COOP_HEAD.entry_point, opts, &constants)?;
            let what = format!("K {k} KS {ks} BPW {bpw} checked={checked}");
            match vk.statistics(&spv, COOP_HEAD.entry_point) {
                Ok(stats) => println!("regs head {what}: threads 128, {}", stats.join(", ")),
                Err(e) => println!("regs head {what}: {e}"),
            }
        }
        // The head in workgroups of 16 subgroups (coop_head_wide.wgsl, session 36): at most
        // 128 registers if the driver holds the workgroup on one SM.
        {
            use moa::runtime::shaders::{
                coop_head_wide_source, coop_head_wide_stage, COOP_HEAD_WIDE,
            };
            if let Some(ks) = coop_head_wide_stage(k, 32, 49152) {
                for bpw in [6, 3] {
                    let opts = moa::runtime::wgpu::DecodePipelineOptions {
                        runtime_checks: false,
                        zero_init_workgroup_memory: false,
                    };
                    let source = coop_head_wide_source(k, ks, bpw, 32);
                    let spv = spirv(&source, COOP_HEAD_WIDE.entry_point, opts, &[("EPI", 1.0)])?;
                    let what = format!("wide K {k} KS {ks} BPW {bpw}");
                    match vk.statistics(&spv, COOP_HEAD_WIDE.entry_point) {
                        Ok(stats) => {
                            println!("regs head {what}: threads 512, {}", stats.join(", "))
                        }
                        Err(e) => println!("regs head {what}: {e}"),
                    }
                }
            }
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-gemm`: the driver's statistics of the prefill product on
    /// matrix units (`coop_linear.wgsl`, f32 x, f32 accumulator, subgroups of 32) with
    /// naga's runtime checks and without (the engine's default), whole tiles stored
    /// straight to the output (DIRECT 1, the default since session 28), through the
    /// scratch (DIRECT 0, session 27's epilogue) and with edge tiles' inner blocks
    /// straight too (DIRECT 2). Session 27 read 110 registers and 352
    /// bytes of local memory with the checks (fetch/stage's arrays), 163 and none without,
    /// 48 KiB of workgroup memory, on the H200.
    pub fn coop_gemm() -> Result<(), String> {
        use moa::runtime::shaders::{coop_linear_source, COOP_LINEAR};
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        let f32_ = StorageType::F32;
        let kernels = [(
            "coop_linear",
            coop_linear_source(f32_, f32_),
            COOP_LINEAR.entry_point,
        )];
        for (name, source, entry) in &kernels {
            for (checked, direct) in [(true, 1.0), (false, 1.0), (false, 0.0), (false, 2.0)] {
                let opts = moa::runtime::wgpu::DecodePipelineOptions {
                    runtime_checks: checked,
                    zero_init_workgroup_memory: false,
                };
                let spv = spirv(source, entry, opts, &[("SG", 32.0), ("DIRECT", direct)])?;
                let what = format!("{name} checked={checked} DIRECT={direct}");
                match vk.statistics(&spv, entry) {
                    Ok(stats) => println!("regs gemm {what}: {}", stats.join(", ")),
                    Err(e) => println!("regs gemm {what}: {e}"),
                }
            }
        }
        Ok(())
    }

    /// `wgpu_decode_bench regs-pattn PLAN LAYERS VARIANTS`: the driver's statistics of the
    /// prefill attention's group form (`codegen::wgsl::prefill_coop_group_form`, f16,
    /// subgroups of 32, without naga's runtime checks as the engine builds it) for each
    /// listed layer of the moa plan PLAN and each comma-separated variant, the engine's
    /// default changed by a `+`-joined list of `f1` (workgroup barriers), `nosk` (K not
    /// staged, so V not in K's tile either), `nove` (V not early), `novk` (V not staged in
    /// K's tile), `ms` (the softmax's select masks, `MOA_WGPU_COOP_ATTN_MASK_SELECT`),
    /// `d1`..`d5` (the timing diagnostics, on session 29's form 2), `d7` (no workgroup
    /// barriers, on the default), or `default`.
    /// Registers per invocation and workgroup memory bound the workgroups an SM holds
    /// (session 30 read 255 registers for session 29's form 2 and for K staged + V early,
    /// session 32 221 for V in K's tile: one workgroup of 192 an SM).
    pub fn prefill_group(args: &[String]) -> Result<(), String> {
        use moa::codegen::wgsl::{prefill_coop_group_form, PrefillGroupForm};
        let usage = "usage: wgpu_decode_bench regs-pattn PLAN LAYERS VARIANT[,VARIANT...]";
        let [path, layers, variants] = args else {
            return Err(usage.into());
        };
        let layers: Vec<u32> = layers
            .split(',')
            .map(|l| l.parse().map_err(|_| format!("`{l}`: {usage}")))
            .collect::<Result<_, _>>()?;
        let plan = Plan::load(std::path::Path::new(path)).map_err(|e| e.to_string())?;
        let mut module = lower(&plan, StorageType::F16);
        module.layers.retain(|s| layers.contains(&s.layer));
        let opts = moa::runtime::wgpu::DecodePipelineOptions {
            runtime_checks: false,
            zero_init_workgroup_memory: false,
        };
        // Every SPIR-V first (a naga error shows without a driver), then the driver.
        let mut built = Vec::new();
        for name in variants.split(',') {
            let mut v = PrefillGroupForm::DEFAULT;
            for part in name.split('+') {
                match part {
                    "default" => {}
                    "f1" => v.form = 1,
                    "nosk" => (v.stage_k, v.v_in_k) = (false, false),
                    "nove" => v.v_early = false,
                    "novk" => v.v_in_k = false,
                    "ms" => v.mask_select = true,
                    "sr" => v.score_regs = true,
                    // Diagnostic 7 of V in K's tile (no V early).
                    "d7" => (v.diag, v.v_early) = (7, false),
                    // Diagnostics 1 to 5 on session 29's form 2 (nothing staged).
                    d if d.len() == 2 && d.starts_with('d') => {
                        v.diag = d[1..].parse().map_err(|_| format!("`{d}`: {usage}"))?;
                        (v.stage_k, v.v_early, v.v_in_k) = (false, false, false);
                    }
                    _ => return Err(format!("`{part}`: {usage}")),
                }
            }
            let kernels = prefill_coop_group_form(&module, v).map_err(|e| e.to_string())?;
            for k in kernels {
                let spv = spirv(&k.source, &k.entry_point, opts, &[("SG", 32.0)])?;
                built.push((
                    format!("{name} layer {} q_tile {}", k.layer, k.q_tile),
                    k.entry_point,
                    spv,
                ));
            }
        }
        println!("regs-pattn: {} kernels translated", built.len());
        let vk = Vulkan::new()?;
        println!("regs on {} ({})", vk.name, vk.driver);
        for (what, entry, spv) in &built {
            match vk.statistics(spv, entry) {
                Ok(stats) => println!("regs pattn {what}: {}", stats.join(", ")),
                Err(e) => println!("regs pattn {what}: {e}"),
            }
        }
        Ok(())
    }

    /// SPIR-V of one entry point as wgpu-hal 30 writes it for a Vulkan 1.3 device
    /// (`vulkan/adapter.rs`'s `naga_options`, with `robustBufferAccess2`: buffer
    /// accesses unchecked, indices restricted), or with the runtime checks off.
    fn spirv(
        source: &str,
        entry: &str,
        opts: moa::runtime::wgpu::DecodePipelineOptions,
        constants: &[(&str, f64)],
    ) -> Result<Vec<u32>, String> {
        use naga::back::spv;
        use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
        let module = naga::front::wgsl::parse_str(source).map_err(|e| e.to_string())?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| e.to_string())?;
        // WGSL overrides as wgpu passes them (the module reduced to the entry point).
        let pc: naga::back::PipelineConstants =
            constants.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((naga::ShaderStage::Compute, entry)),
            &pc,
        )
        .map_err(|e| e.to_string())?;
        let (module, info) = (module.as_ref(), info.as_ref());
        let index = if opts.runtime_checks {
            BoundsCheckPolicy::Restrict
        } else {
            BoundsCheckPolicy::Unchecked
        };
        let options = spv::Options {
            lang_version: (1, 6),
            bounds_check_policies: BoundsCheckPolicies {
                index,
                buffer: BoundsCheckPolicy::Unchecked,
                image_load: BoundsCheckPolicy::Unchecked,
                binding_array: BoundsCheckPolicy::Unchecked,
            },
            zero_initialize_workgroup_memory: if opts.zero_init_workgroup_memory {
                spv::ZeroInitializeWorkgroupMemoryMode::Native
            } else {
                spv::ZeroInitializeWorkgroupMemoryMode::None
            },
            force_loop_bounding: opts.runtime_checks,
            ..Default::default()
        };
        let pipeline = spv::PipelineOptions {
            entry_point: entry.to_string(),
            shader_stage: naga::ShaderStage::Compute,
        };
        spv::write_vec(module, info, &options, Some(&pipeline)).map_err(|e| e.to_string())
    }

    struct Vulkan {
        _entry: ash::Entry,
        instance: ash::Instance,
        device: ash::Device,
        exec: ash::khr::pipeline_executable_properties::Device,
        name: String,
        driver: String,
    }

    impl Drop for Vulkan {
        fn drop(&mut self) {
            // SAFETY: every object made from them was destroyed in `statistics`.
            unsafe {
                self.device.destroy_device(None);
                self.instance.destroy_instance(None);
            }
        }
    }

    impl Vulkan {
        fn new() -> Result<Vulkan, String> {
            let err = |what: &str, e: vk::Result| format!("{what}: {e}");
            // SAFETY: plain Vulkan set-up; every handle is used only while `Vulkan` lives.
            unsafe {
                let entry = ash::Entry::load().map_err(|e| format!("Vulkan loader: {e}"))?;
                let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
                let instance = entry
                    .create_instance(
                        &vk::InstanceCreateInfo::default().application_info(&app),
                        None,
                    )
                    .map_err(|e| err("vkCreateInstance", e))?;
                let phys = instance
                    .enumerate_physical_devices()
                    .map_err(|e| err("vkEnumeratePhysicalDevices", e))?;
                let ext = ash::khr::pipeline_executable_properties::NAME;
                let pick = phys.iter().copied().find(|&p| {
                    instance
                        .enumerate_device_extension_properties(p)
                        .unwrap_or_default()
                        .iter()
                        .any(|e| e.extension_name_as_c_str() == Ok(ext))
                });
                let Some(pd) = pick else {
                    instance.destroy_instance(None);
                    return Err(
                        "no Vulkan device offers VK_KHR_pipeline_executable_properties".into(),
                    );
                };
                let props = instance.get_physical_device_properties(pd);
                let mut driver_props = vk::PhysicalDeviceDriverProperties::default();
                let mut props2 =
                    vk::PhysicalDeviceProperties2::default().push_next(&mut driver_props);
                instance.get_physical_device_properties2(pd, &mut props2);
                let name = props
                    .device_name_as_c_str()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let driver = driver_props
                    .driver_info_as_c_str()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let family = instance
                    .get_physical_device_queue_family_properties(pd)
                    .iter()
                    .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
                    .ok_or("no compute queue")? as u32;
                let prio = [1.0f32];
                let queues = [vk::DeviceQueueCreateInfo::default()
                    .queue_family_index(family)
                    .queue_priorities(&prio)];
                let mut exec_features =
                    vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default()
                        .pipeline_executable_info(true);
                let mut v11 = vk::PhysicalDeviceVulkan11Features::default()
                    .storage_buffer16_bit_access(true)
                    .uniform_and_storage_buffer16_bit_access(true);
                let mut v12 = vk::PhysicalDeviceVulkan12Features::default()
                    .shader_float16(true)
                    .vulkan_memory_model(true);
                let mut v13 = vk::PhysicalDeviceVulkan13Features::default()
                    .shader_zero_initialize_workgroup_memory(true);
                // Cooperative matrices where offered (`regs-coop`'s kernels need them).
                let coop_ext = ash::khr::cooperative_matrix::NAME;
                let has_coop = instance
                    .enumerate_device_extension_properties(pd)
                    .unwrap_or_default()
                    .iter()
                    .any(|e| e.extension_name_as_c_str() == Ok(coop_ext));
                let mut coop_features = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default()
                    .cooperative_matrix(true);
                let mut exts = vec![ext.as_ptr()];
                if has_coop {
                    exts.push(coop_ext.as_ptr());
                }
                let mut info = vk::DeviceCreateInfo::default()
                    .queue_create_infos(&queues)
                    .enabled_extension_names(&exts)
                    .push_next(&mut exec_features)
                    .push_next(&mut v11)
                    .push_next(&mut v12)
                    .push_next(&mut v13);
                if has_coop {
                    info = info.push_next(&mut coop_features);
                }
                let device = match instance.create_device(pd, &info, None) {
                    Ok(d) => d,
                    Err(e) => {
                        instance.destroy_instance(None);
                        return Err(err("vkCreateDevice", e));
                    }
                };
                let exec =
                    ash::khr::pipeline_executable_properties::Device::new(&instance, &device);
                Ok(Vulkan {
                    _entry: entry,
                    instance,
                    device,
                    exec,
                    name,
                    driver,
                })
            }
        }

        /// Builds `spv`'s compute entry `entry` (bindings as the module declares them:
        /// set 0, binding i = uniform for 0, storage otherwise) with statistics captured,
        /// and returns them as `NAME=VALUE` per executable.
        fn statistics(&self, spv: &[u32], entry: &str) -> Result<Vec<String>, String> {
            // The decode binds a uniform at 0 and six storage buffers, the merge a
            // uniform at 0 and storage after it: bindings past the module's are unused.
            self.statistics_bound(spv, entry, &(0..8).collect::<Vec<u32>>(), &[0])
        }

        /// [`Self::statistics`] with the layout's bindings `bindings`, of which `uniforms`
        /// are uniform buffers and the rest storage buffers (a module's accesses to a
        /// binding its layout lacks are undefined: the driver may drop them).
        fn statistics_bound(
            &self,
            spv: &[u32],
            entry: &str,
            bindings: &[u32],
            uniforms: &[u32],
        ) -> Result<Vec<String>, String> {
            let err = |what: &str, e: vk::Result| format!("{what}: {e}");
            let d = &self.device;
            // SAFETY: objects created here are destroyed before returning.
            unsafe {
                let shader = d
                    .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(spv), None)
                    .map_err(|e| err("vkCreateShaderModule", e))?;
                let bindings: Vec<vk::DescriptorSetLayoutBinding> = bindings
                    .iter()
                    .map(|&i| {
                        vk::DescriptorSetLayoutBinding::default()
                            .binding(i)
                            .descriptor_type(if uniforms.contains(&i) {
                                vk::DescriptorType::UNIFORM_BUFFER
                            } else {
                                vk::DescriptorType::STORAGE_BUFFER
                            })
                            .descriptor_count(1)
                            .stage_flags(vk::ShaderStageFlags::COMPUTE)
                    })
                    .collect();
                let set_layout = d
                    .create_descriptor_set_layout(
                        &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                        None,
                    )
                    .map_err(|e| err("vkCreateDescriptorSetLayout", e))?;
                let sets = [set_layout];
                let layout = d
                    .create_pipeline_layout(
                        &vk::PipelineLayoutCreateInfo::default().set_layouts(&sets),
                        None,
                    )
                    .map_err(|e| err("vkCreatePipelineLayout", e))?;
                let name = CString::new(entry).map_err(|e| e.to_string())?;
                let stage = vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::COMPUTE)
                    .module(shader)
                    .name(&name);
                let info = vk::ComputePipelineCreateInfo::default()
                    .flags(vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR)
                    .stage(stage)
                    .layout(layout);
                let built = d.create_compute_pipelines(vk::PipelineCache::null(), &[info], None);
                let result = match built {
                    Ok(p) => {
                        let out = self.read(p[0]);
                        d.destroy_pipeline(p[0], None);
                        out
                    }
                    Err((_, e)) => Err(err("vkCreateComputePipelines", e)),
                };
                d.destroy_pipeline_layout(layout, None);
                d.destroy_descriptor_set_layout(set_layout, None);
                d.destroy_shader_module(shader, None);
                result
            }
        }

        fn read(&self, pipeline: vk::Pipeline) -> Result<Vec<String>, String> {
            let err = |what: &str, e: vk::Result| format!("{what}: {e}");
            let text = |c: Result<&CStr, _>| {
                c.map(|c: &CStr| c.to_string_lossy().replace(' ', "_"))
                    .unwrap_or_default()
            };
            let mut out = Vec::new();
            // SAFETY: `pipeline` was created with CAPTURE_STATISTICS on a device with the
            // extension's feature enabled.
            unsafe {
                let execs = self
                    .exec
                    .get_pipeline_executable_properties(
                        &vk::PipelineInfoKHR::default().pipeline(pipeline),
                    )
                    .map_err(|e| err("vkGetPipelineExecutablePropertiesKHR", e))?;
                for (i, ex) in execs.iter().enumerate() {
                    out.push(format!(
                        "exec{i}={}/subgroup{}",
                        text(ex.name_as_c_str()),
                        ex.subgroup_size
                    ));
                    let stats = self
                        .exec
                        .get_pipeline_executable_statistics(
                            &vk::PipelineExecutableInfoKHR::default()
                                .pipeline(pipeline)
                                .executable_index(i as u32),
                        )
                        .map_err(|e| err("vkGetPipelineExecutableStatisticsKHR", e))?;
                    for st in &stats {
                        let v = match st.format {
                            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => {
                                st.value.b32.to_string()
                            }
                            vk::PipelineExecutableStatisticFormatKHR::INT64 => {
                                st.value.i64.to_string()
                            }
                            vk::PipelineExecutableStatisticFormatKHR::UINT64 => {
                                st.value.u64.to_string()
                            }
                            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => {
                                st.value.f64.to_string()
                            }
                            _ => "?".into(),
                        };
                        out.push(format!("{}={v}", text(st.name_as_c_str())));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The knob `name` as a whole number in `range`: `None` where it is not set, an error
/// naming the variable, its value and the range where it is not such a number.
fn env_u32_in(name: &str, range: std::ops::RangeInclusive<u32>) -> Result<Option<u32>, String> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    v.parse()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{name}: `{v}` is not a whole number {}..={}",
                range.start(),
                range.end()
            )
        })
}

/// `wgpu_decode_bench lists PLAN ROWS N [RESIDENT] [TILE]`: each layer's decode work list as
/// the host builds it for ROWS rows at position N − 1 (no GPU): the segments' written slots,
/// the chunk the model picks for RESIDENT workgroups (default 264, the engine's for the flat
/// form at head_dim 64 in a GQA group) in TILE-slot tiles (default 128), the items, how many
/// are a whole chunk long, and the most a segment has (the fused merger's chunks).
fn lists(args: &[String]) -> Result<(), String> {
    let usage = "usage: wgpu_decode_bench lists PLAN ROWS N [RESIDENT] [TILE]";
    let num = |s: &String| s.parse::<u32>().map_err(|_| format!("`{s}`: {usage}"));
    let (path, rows, n, resident, tile) = match args {
        [p, r, n] => (p, num(r)?, num(n)?, 264, 128),
        [p, r, n, w] => (p, num(r)?, num(n)?, num(w)?, 128),
        [p, r, n, w, t] => (p, num(r)?, num(n)?, num(w)?, num(t)?),
        _ => return Err(usage.into()),
    };
    if rows == 0 || n == 0 || resident == 0 || tile == 0 {
        return Err(format!(
            "ROWS, N, RESIDENT and TILE must be 1 or more: {usage}"
        ));
    }
    let plan = Plan::load(Path::new(path)).map_err(|e| e.to_string())?;
    // Past the plan's context the caches and spans are sized for fewer tokens; the lists
    // were printed anyway, for positions no run can reach (round 38).
    let ctx = plan.model().max_context_tokens;
    if n > ctx {
        return Err(format!(
            "N {n} is past the context of `{path}` (model.max_context_tokens = {ctx}): allowed N 1..={ctx}"
        ));
    }
    let module = lower(&plan, StorageType::F16);
    let pos = vec![n - 1; rows as usize];
    println!(
        "lists: {rows} rows at position {}, {resident} resident workgroups, tile {tile}",
        n - 1
    );
    for layer in &module.layers {
        let layout = moa::lower::CacheLayout::new(layer, &module.span, n);
        let chunk = moa::runtime::worklist::choose_chunk(&layout, &pos, tile, resident);
        let work = moa::runtime::worklist::DecodeWork::build(&layout, &pos, chunk);
        let mut spans: Vec<u32> = layout
            .segments
            .iter()
            .map(|s| moa::runtime::worklist::written_slots(s.span, n - 1))
            .collect();
        spans.sort_unstable();
        spans.dedup();
        let full = work.items.iter().filter(|w| w[2] - w[1] == chunk).count();
        let slots: u64 = work.items.iter().map(|w| u64::from(w[2] - w[1])).sum();
        let most = work.seg_chunks.iter().max().copied().unwrap_or(0);
        println!(
            "layer {}: written {spans:?} a segment, chunk {chunk}, {} items ({full} whole chunks), {slots} slots, at most {most} a segment",
            layer.layer,
            work.n_items()
        );
    }
    Ok(())
}

/// One selection of `MOA_WGSL_ITEMS` (the decode bench's tail diagnostic, session 29):
/// which of the host's work items a timed row launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Items {
    /// The host's list as it is (the default).
    All,
    /// Every item in the host's order, each rewritten as its own one-chunk segment.
    AllAlone,
    /// Every item, longest first (ties in the host's order).
    Sorted,
    /// The N longest items.
    Long(u32),
    /// The N shortest items.
    Short(u32),
}

impl Items {
    /// `all`, `all1`, `sorted`, `long:N` or `short:N`.
    fn parse(v: &str) -> Result<Items, String> {
        let bad =
            || format!("MOA_WGSL_ITEMS: `{v}` is not all, all1, sorted, long:N or short:N (N > 0)");
        let n = |x: &str| x.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(bad);
        match v.split_once(':') {
            None if v == "all" => Ok(Items::All),
            None if v == "all1" => Ok(Items::AllAlone),
            None if v == "sorted" => Ok(Items::Sorted),
            Some(("long", x)) => Ok(Items::Long(n(x)?)),
            Some(("short", x)) => Ok(Items::Short(n(x)?)),
            _ => Err(bad()),
        }
    }

    fn name(self) -> String {
        match self {
            Items::All => "all".into(),
            Items::AllAlone => "all1".into(),
            Items::Sorted => "sorted".into(),
            Items::Long(n) => format!("long:{n}"),
            Items::Short(n) => format!("short:{n}"),
        }
    }
}

/// The items `sel` keeps of `work` (indices into `work.items`, in launch order) and the
/// kernel's flat words for them. Each kept item is rewritten as a one-chunk segment of its
/// own (its first item its new index, its item count 1), so a fused decode's every kept
/// item merges its own partial at once (no counter, no wait on an item left out) and the
/// separate merge's decode dispatch runs exactly the kept items. A timing diagnostic: the
/// outputs are wrong (a segment's chunks each write O alone, or are never merged).
fn select_items(work: &moa::runtime::worklist::DecodeWork, sel: Items) -> (Vec<usize>, Vec<u32>) {
    let len = |i: &usize| work.items[*i][2] - work.items[*i][1];
    let mut order: Vec<usize> = (0..work.items.len()).collect();
    let kept: Vec<usize> = match sel {
        Items::All | Items::AllAlone => order,
        Items::Sorted => {
            order.sort_by_key(|i| std::cmp::Reverse(len(i)));
            order
        }
        Items::Long(n) => {
            order.sort_by_key(|i| std::cmp::Reverse(len(i)));
            order.truncate(n as usize);
            order
        }
        Items::Short(n) => {
            order.sort_by_key(len);
            order.truncate(n as usize);
            order
        }
    };
    let mut flat = Vec::with_capacity(kept.len() * 8);
    for (new, &i) in kept.iter().enumerate() {
        let mut w = work.items[i];
        w[3] = new as u32;
        w[7] = 1;
        flat.extend_from_slice(&w);
    }
    (kept, flat)
}
