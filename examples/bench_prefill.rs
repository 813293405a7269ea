//! Times every layer's generated prefill kernel through moa's own path (codegen → NVRTC →
//! cudarc, launched by `runtime::cuda::LoadedKernel` from the kernel's typed ABI) on
//! upstream MoA plans, and writes
//! one JSON line per (plan, prompt, rows, layer) with the median time and the layer's
//! per-head masks, so that `benches/peers/prefill_peers.py` can time PyTorch SDPA (dense
//! causal) and FlexAttention (the identical per-head mask) on the same shapes in the same
//! device call and compute the ideal: kept share of causal query–key pairs × dense time.
//!
//! ```sh
//! cargo build --release --example bench_prefill
//! bench_prefill vicuna.json:32 llama3.json:8 --prompts 4096,16384 --rows 1,4 --out moa.jsonl
//! bench_prefill vicuna.json:32 --variants 2x64x2,2x64x2s,2x128x1os --layers-only 0,17 --out v.jsonl
//! ```
//!
//! `--variants` times several prefill kernel shapes (`codegen::cuda::PrefillTuning`) side
//! by side; `--compare` checks each variant's output against the first one's on the same inputs
//! (max abs difference over every 61st output element in the JSON line; variants with the
//! same key tile do the same arithmetic per row, so 0).
//! Kernels come from the cubins in `MOA_CUBIN_DIR` where present (`cuda_cubins`), else from
//! `--ptx-cache`, else NVRTC (all variants in one parallel batch).
//!
//! `--cache-write` times, per layer, the CUDA engine's cache write of the same pass three
//! ways (`moa_rope_kv` over Q, K and V, one token per block, as before session 16;
//! `moa_rope_qk` + `moa_v_write`, the engine's prefill pass; the same writing the `u`
//! pre-pass's f16 copy and maxima, as `CudaLlama::fuse_v_write` runs it), and times every
//! variant after the layer's write into the prefill's own inputs, as the engine runs it:
//! `moa_ms` is that time less the write's median without the copy. A variant named
//! `NAME@cw` runs the write with the copy, then `_vfix` alone and the prefill, so that
//! `NAME@cw` against `NAME` is the fusion's net saving. `--abba` reverses the variants'
//! order in odd rounds (a drift between the slots of a round then falls on both alike).
//!
//! `--blocked` times each variant over every layer before the next (A…A B…B, `--rounds`
//! passes), as an engine runs one variant, so that a variant that changes the board's
//! clock runs at its own; `--pause` waits on stdin after each block's `#BLOCK` line, for
//! `benches/prefill/s18/blocked.py` to time dense SDPA in the same rhythm.
//!
//! Each plan is `PATH:KV_HEADS` (upstream MoA JSON; 32 layers × 32 query heads × head_dim
//! 128 unless `--layers/--heads/--head-dim` say otherwise). Spans are taken at
//! N = prompt + `--decode-tokens` (the N of a request that will decode that many tokens).
//! Inputs are random, uniform in [-1, 1) (timing does not depend on values).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cudarc::driver::sys::{CUevent_flags, CUfunction_attribute_enum};
use cudarc::driver::{CudaContext, DevicePtr};
use cudarc::nvrtc::Ptx;
use moa::codegen::abi::{Arg, LaunchSize};
use moa::codegen::cuda::{generate_variant, prefill_name, DecodeTuning, PrefillTuning};
use moa::codegen::Artifact;
use moa::codegen::Phase;
use moa::lower::CacheLayout;
use moa::lower::{lower, KernelModule, StorageType};
use moa::plan::{upstream, ModelShape};
use moa::runtime::cuda::ops::{self, DevMem, OpKernels};
use moa::runtime::cuda::{
    compile_all, cubin_dir, cubin_key, zero_v_max, ArgVal, DevBuf, LoadedKernel, VPrepass,
    DEFAULT_ARCH,
};

#[derive(Parser)]
#[command(about = "Time the generated CUDA prefill kernels of upstream MoA plans")]
struct Args {
    /// Upstream plans as PATH:KV_HEADS.
    plans: Vec<String>,
    #[arg(long, default_value_t = 32)]
    layers: u32,
    #[arg(long, default_value_t = 32)]
    heads: u32,
    #[arg(long, default_value_t = 128)]
    head_dim: u32,
    /// Prompt lengths (tokens per row), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4096,16384")]
    prompts: Vec<u32>,
    /// Row counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    rows: Vec<u32>,
    /// Spans are evaluated at N = prompt + this.
    #[arg(long, default_value_t = 1024)]
    decode_tokens: u32,
    /// Timed launches per layer (the median is reported), after `--warmups` launches.
    #[arg(long, default_value_t = 15)]
    reps: usize,
    /// Untimed launches before the timed ones (0 under a profiler such as `ncu`, which
    /// then sees each kernel once with `--reps 1`).
    #[arg(long, default_value_t = 2)]
    warmups: usize,
    /// f16 or bf16.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Prefill kernel shapes, WGxBNxBLOCKS and letters (`codegen::cuda::PrefillTuning`; default: the compiler's for the head_dim),
    /// each optionally `@cw`: the pre-pass's first half done by the cache write (see above).
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Time each layer's cache write three ways (see above; implied by an `@cw` variant).
    #[arg(long)]
    cache_write: bool,
    /// Check every variant's output against the first variant's (downloads each output).
    #[arg(long)]
    compare: bool,
    /// After the first timed layer of each shape, check the `v` pre-pass's f16 copy of V and
    /// its per-KV-head maxima against the host's conversion of every element (at the full
    /// batch, where `cuda_check`'s small cases keep the pre-pass kernels to one pass).
    #[arg(long)]
    check_prepass: bool,
    /// Rounds per layer: the variants are timed in turn `--rounds` times (A B A B ...),
    /// one JSON line per variant and round (`round`), so that drift over the run falls on
    /// every variant alike and two rounds of one variant measure the run-to-run noise.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Odd rounds time the variants in reverse order (A B, B A, A B, ...), so that a cost
    /// of coming second (the GPU's clock after the first variant's launches, session 16)
    /// falls on every variant alike.
    #[arg(long)]
    abba: bool,
    /// Time in blocks: each round times every layer with the first variant, then every
    /// layer with the next (A…A B…B, `--rounds` times), and prints a `#BLOCK` line after
    /// each block. Session 17: `m` took 0.93× in blocks where the interleaved A/B said
    /// 0.994×, because its fewer DRAM reads raise the clock of the launches after it.
    #[arg(long)]
    blocked: bool,
    /// With `--blocked`: after each `#BLOCK` line wait for a line on stdin, so that a
    /// driver can time its own block (dense SDPA, `benches/prefill/s18/blocked.py`) in
    /// the same rhythm before the next one.
    #[arg(long, requires = "blocked")]
    pause: bool,
    /// Time only these layers (default: every layer).
    #[arg(long, value_delimiter = ',')]
    layers_only: Vec<u32>,
    /// Folder for the PTX of kernels NVRTC compiled here (those without a cubin in
    /// `MOA_CUBIN_DIR`), read back by the next run instead of compiling again.
    #[arg(long)]
    ptx_cache: Option<PathBuf>,
    /// Only compile the kernels (into `--ptx-cache`), time nothing.
    #[arg(long)]
    compile_only: bool,
    /// JSON-lines output.
    #[arg(long, required_unless_present = "compile_only")]
    out: Option<PathBuf>,
    /// After the runs, append the trace of every module that carries one (the arrays
    /// `pft_cnt` / `pft_buf` that `benches/prefill/s23/trace_patch.py` adds through
    /// `cuda_cubins --edit`) to this file: one line `plan variant layer block role index
    /// word` per event (`benches/prefill/s23/trace_report.py` reads it). Modules without
    /// the arrays are skipped.
    #[arg(long)]
    trace_out: Option<PathBuf>,
}

/// The kernel image of every artifact: its cubin from `MOA_CUBIN_DIR`, else its PTX from
/// `ptx_cache`, else PTX from NVRTC (all missing ones in one parallel batch, then written
/// to `ptx_cache`).
fn images(artifacts: &[Artifact], ptx_cache: Option<&PathBuf>) -> Result<Vec<Ptx>, String> {
    let cubins = cubin_dir().map_err(|e| e.to_string())?;
    let keys: Vec<String> = artifacts
        .iter()
        .map(|a| cubin_key(&a.source, DEFAULT_ARCH))
        .collect();
    let mut out: Vec<Option<Ptx>> = keys
        .iter()
        .map(|key| {
            let cubin = cubins
                .as_ref()
                .and_then(|d| std::fs::read(d.join(format!("{key}.cubin"))).ok())
                .map(Ptx::from_binary);
            cubin.or_else(|| {
                ptx_cache
                    .and_then(|d| std::fs::read_to_string(d.join(format!("{key}.ptx"))).ok())
                    .map(Ptx::from_src)
            })
        })
        .collect();
    let missing: Vec<usize> = (0..artifacts.len()).filter(|&i| out[i].is_none()).collect();
    let todo: Vec<Artifact> = missing.iter().map(|&i| artifacts[i].clone()).collect();
    let ptxs = compile_all(&todo, DEFAULT_ARCH).map_err(|e| e.to_string())?;
    for (&i, ptx) in missing.iter().zip(ptxs) {
        if let Some(d) = ptx_cache {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            let path = d.join(format!("{}.ptx", keys[i]));
            std::fs::write(&path, &ptx).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        out[i] = Some(Ptx::from_src(ptx));
    }
    Ok(out.into_iter().flatten().collect())
}

/// Kept query–key pairs of one head over a row of `len` tokens (`HeadWindow::keeps`
/// summed in closed form per query) and the causal pairs len·(len+1)/2.
fn kept_pairs(sink: u32, window: u32, len: u32) -> u64 {
    let (sink, window) = (u64::from(sink), u64::from(window));
    (0..u64::from(len))
        .map(|t| {
            let band_lo = (t + 1).saturating_sub(window).max(sink);
            (t + 1).min(sink) + (t + 1).saturating_sub(band_lo)
        })
        .sum()
}

fn random_bits(n: usize, seed: u64, storage: StorageType) -> Vec<u16> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            match storage {
                StorageType::Bf16 => half::bf16::from_f32(f).to_bits(),
                _ => half::f16::from_f32(f).to_bits(),
            }
        })
        .collect()
}

/// The `v` pre-pass's results (after the last one queued on `stream`) against the host:
/// v_max[h] the largest |v| of KV head h as bf16 bits, and every f16 value
/// f16(v · 2^-E) rounded to nearest even, E by the `u` rule (0 while the largest |v| lies in
/// [2^-10, 2^15), else clamp(its biased exponent - 141, -126, 114); codegen::abi::Arg::VF16).
/// An error names the first element that differs.
fn check_prepass(
    stream: &std::sync::Arc<cudarc::driver::CudaStream>,
    v: &cudarc::driver::CudaSlice<u16>,
    v16: &cudarc::driver::CudaSlice<u16>,
    vmax: &cudarc::driver::CudaSlice<u32>,
    kv_heads: usize,
    head_dim: usize,
) -> Result<String, String> {
    let down = |e| format!("download: {e:?}");
    let v = stream.clone_dtoh(v).map_err(down)?;
    let v16 = stream.clone_dtoh(v16).map_err(down)?;
    let vmax = stream.clone_dtoh(vmax).map_err(down)?;
    check_prepass_host(&v, &v16, &vmax, kv_heads, head_dim)
}

/// [`check_prepass`] on downloaded values: V's bits, the f16 copy's and the maxima.
fn check_prepass_host(
    v: &[u16],
    v16: &[u16],
    vmax: &[u32],
    kv_heads: usize,
    head_dim: usize,
) -> Result<String, String> {
    let mut want_max = vec![0u32; kv_heads];
    for (i, &b) in v.iter().enumerate() {
        let h = i / head_dim % kv_heads;
        want_max[h] = want_max[h].max(u32::from(b & 0x7fff));
    }
    if want_max != vmax {
        return Err(format!("pre-pass maxima {vmax:?}, expected {want_max:?}"));
    }
    let exps: Vec<i32> = vmax
        .iter()
        .map(|&m| {
            let b = (m >> 7) as i32;
            if (117..=141).contains(&b) {
                0
            } else {
                (b - 141).clamp(-126, 114)
            }
        })
        .collect();
    for (i, (&b, &h)) in v.iter().zip(v16).enumerate() {
        let e = exps[i / head_dim % kv_heads];
        let want = half::f16::from_f32(half::bf16::from_bits(b).to_f32() * (-e as f32).exp2());
        if want.to_bits() != h && !(want.is_nan() && half::f16::from_bits(h).is_nan()) {
            return Err(format!(
                "pre-pass value {i} (KV head {}): f16 bits {h:#06x}, expected {:#06x}",
                i / head_dim % kv_heads,
                want.to_bits()
            ));
        }
    }
    Ok(format!(
        "pre-pass check: {} values and {kv_heads} maxima equal the host's (E {exps:?})",
        v.len()
    ))
}

/// The buffers of one prefill pass's cache write (the CUDA engine's, `CudaLlama`): the f32
/// QKV projection `[total, (q_heads + 2 kv_heads) · head_dim]` (random in [-2, 2)), token
/// info, RoPE table and caches of the largest layer's `row_slots`, writing into the
/// prefill's own q, k, v, f16 copy of V and maxima (device addresses), as the engine does:
/// with `--cache-write` the prefill reads what the write left, in L2 as far as it stays.
struct WriteBufs {
    qkv: DevMem,
    tok: DevMem,
    rope: DevMem,
    k_cache: DevMem,
    v_cache: DevMem,
    /// The prefill's q, k, v, f16 copy of V and V maxima.
    out: [u64; 5],
    heads: [u32; 3],
    total: u32,
}

/// Medians (ms) of one layer's cache write, the three forms timed in turn.
struct WriteTimes {
    /// `moa_rope_kv` over Q, K and V (one token per block; the engine before session 16).
    base: f64,
    /// `moa_rope_qk` + `moa_v_write` (blocks of 64 tokens), without the f16 copy.
    split: f64,
    /// The same with the f16 copy and the maxima (zeroed first): `CudaLlama::fuse_v_write`.
    fused: f64,
}

impl WriteBufs {
    #[allow(clippy::too_many_arguments)]
    fn new(
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        ops: &OpKernels,
        module: &KernelModule,
        shape: [u32; 3],
        kv_heads: u32,
        out: [u64; 5],
        storage: StorageType,
    ) -> Result<WriteBufs, String> {
        let [prompt, rows, n_tokens] = shape;
        let e = |x: moa::runtime::cuda::CudaError| x.to_string();
        let (hq, d) = (module.shape.q_heads, module.shape.head_dim);
        let total = prompt * rows;
        let width = ((hq + 2 * kv_heads) * d) as usize;
        let t = total as usize;
        let qkv = DevMem::alloc(stream, t * width * 4, "qkv").map_err(e)?;
        // SAFETY: qkv holds t × width f32 values.
        unsafe { ops.fill_random(stream, qkv.ptr, (t * width) as u64, 17, 2.0, 0.0, true) }
            .map_err(e)?;
        let info: Vec<u32> = (0..rows)
            .flat_map(|r| (0..prompt).flat_map(move |p| [p, r, prompt - 1, 0]))
            .collect();
        let mut tok = DevMem::alloc(stream, info.len() * 4, "tok").map_err(e)?;
        tok.write(stream, &info).map_err(e)?;
        let table = ops::rope_table(
            n_tokens,
            &moa::model::config::plain_rope_inv_freq(d as usize, 10_000.0),
        );
        let rope =
            DevMem::upload(stream, table.as_flattened(), StorageType::F32, "rope").map_err(e)?;
        let slots = module
            .layers
            .iter()
            .map(|l| CacheLayout::new(l, &module.span, n_tokens).row_slots)
            .max()
            .unwrap_or(0) as usize;
        let cache = rows as usize * slots * d as usize * storage.bytes();
        Ok(WriteBufs {
            qkv,
            tok,
            rope,
            k_cache: DevMem::zeros(stream, cache, "k cache").map_err(e)?,
            v_cache: DevMem::zeros(stream, cache, "v cache").map_err(e)?,
            out,
            heads: [hq, kv_heads, d],
            total,
        })
    }

    /// Queues one cache write of the layer whose segments are `seg`: form 0 base, 1 split,
    /// 2 fused (`WriteTimes`).
    fn queue(
        &self,
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        ops: &OpKernels,
        seg: &DevMem,
        row_slots: u32,
        form: usize,
    ) -> Result<(), String> {
        let e = |x: moa::runtime::cuda::CudaError| x.to_string();
        let b = self;
        let [q, k, v, v16, vmax] = b.out;
        // SAFETY: q, k, v, v16 and vmax hold `total` tokens of these heads (the prefill's
        // buffers), the caches the largest layer's row_slots; seg holds the layer's
        // kv_heads segments.
        unsafe {
            if form == 0 {
                return ops
                    .rope_kv(
                        stream,
                        b.qkv.ptr,
                        b.tok.ptr,
                        b.rope.ptr,
                        seg.ptr,
                        [q, k, v],
                        [b.k_cache.ptr, b.v_cache.ptr],
                        b.total,
                        b.heads,
                        row_slots,
                    )
                    .map_err(e);
            }
            ops.rope_qk(
                stream,
                b.qkv.ptr,
                b.tok.ptr,
                b.rope.ptr,
                seg.ptr,
                [q, k],
                b.k_cache.ptr,
                b.total,
                b.heads,
                row_slots,
            )
            .map_err(e)?;
            let copy = if form == 2 {
                zero_v_max(stream, vmax, b.heads[1]).map_err(e)?;
                [v16, vmax]
            } else {
                [0, 0]
            };
            ops.v_write(
                stream,
                b.qkv.ptr,
                b.tok.ptr,
                seg.ptr,
                v,
                b.v_cache.ptr,
                copy,
                b.total,
                b.heads,
                row_slots,
            )
            .map_err(e)
        }
    }

    /// The layer's segments on the device.
    fn segments(
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        layout: &CacheLayout,
    ) -> Result<DevMem, String> {
        let e = |x: moa::runtime::cuda::CudaError| x.to_string();
        let words: Vec<u32> = layout
            .segments
            .iter()
            .flat_map(|g| [g.offset, g.sink, g.ring, 0])
            .collect();
        let mut seg = DevMem::alloc(stream, words.len() * 4, "segments").map_err(e)?;
        seg.write(stream, &words).map_err(e)?;
        Ok(seg)
    }

    /// Times the three forms on the layer's segments `seg`, in turn, `reps` times after
    /// `warmups`. With `check` (the layer's `u` pre-pass), first checks that the split form
    /// writes q, k, v and both caches as the base form does (V bit for bit, Q and K counted)
    /// and that the fused form + `_vfix` leave the f16 copy and maxima the host computes
    /// from that V.
    #[allow(clippy::too_many_arguments)]
    fn time(
        &self,
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        ops: &OpKernels,
        seg: &DevMem,
        row_slots: u32,
        reps: usize,
        warmups: usize,
        check: Option<&VPrepass>,
        starts: u64,
        rows: u32,
    ) -> Result<(WriteTimes, Option<String>), String> {
        let e = |x: moa::runtime::cuda::CudaError| x.to_string();
        let rs = row_slots;
        let [hq, hkv, d] = self.heads;
        let t = self.total as usize;
        let (kvn, qn) = (t * (hkv * d) as usize, t * (hq * d) as usize);
        let cache = (self.v_cache.bytes / 2).min(rows as usize * rs as usize * d as usize);
        let mut note = None;
        if let Some(pre) = check {
            let [q, k, v, v16, vmax] = self.out;
            let read = |ptr: u64, n: usize| -> Result<Vec<u16>, String> {
                let mut h = vec![0u16; n];
                // SAFETY: ptr holds at least n 16-bit values (the buffers above).
                unsafe { cudarc::driver::result::memcpy_dtoh_sync(&mut h, ptr) }
                    .map_err(|x| format!("download: {x:?}"))?;
                Ok(h)
            };
            let snap = |b: &Self| -> Result<Vec<Vec<u16>>, String> {
                stream.synchronize().map_err(|x| format!("sync: {x:?}"))?;
                Ok(vec![
                    read(q, qn)?,
                    read(k, kvn)?,
                    read(v, kvn)?,
                    read(b.k_cache.ptr, cache)?,
                    read(b.v_cache.ptr, cache)?,
                ])
            };
            self.queue(stream, ops, seg, rs, 0)?;
            let s0 = snap(self)?;
            self.queue(stream, ops, seg, rs, 2)?;
            // SAFETY: v holds total tokens, starts rows + 1 words ending at total.
            unsafe { pre.queue_fix(stream, v, starts, rows, vmax, v16, self.total, hkv) }
                .map_err(e)?;
            let s1 = snap(self)?;
            let names = ["q", "k", "v", "k cache", "v cache"];
            let differ: Vec<String> = s0
                .iter()
                .zip(&s1)
                .zip(names)
                .map(|((a, b), n)| {
                    format!("{n} {}", a.iter().zip(b).filter(|(x, y)| x != y).count())
                })
                .collect();
            if s0[2] != s1[2] || s0[4] != s1[4] {
                return Err(format!(
                    "moa_v_write's V or V cache differs from moa_rope_kv's ({differ:?})"
                ));
            }
            let v16h = read(v16, kvn)?;
            let mut vmaxh = vec![0u32; hkv as usize];
            // SAFETY: vmax holds kv_heads words.
            unsafe { cudarc::driver::result::memcpy_dtoh_sync(&mut vmaxh, vmax) }
                .map_err(|x| format!("download: {x:?}"))?;
            note = Some(format!(
                "cache write: values differing from moa_rope_kv's: {}; fused + _vfix {}",
                differ.join(", "),
                check_prepass_host(&s1[2], &v16h, &vmaxh, hkv as usize, d as usize)?
            ));
        }
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        for i in 0..reps + warmups {
            for (form, t) in times.iter_mut().enumerate() {
                let ev = || {
                    stream
                        .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                        .map_err(|e| format!("event: {e:?}"))
                };
                let e0 = ev()?;
                self.queue(stream, ops, seg, rs, form)?;
                let e1 = ev()?;
                let ms = e0.elapsed_ms(&e1).map_err(|e| format!("timing: {e:?}"))?;
                if i >= warmups {
                    t.push(f64::from(ms));
                }
            }
        }
        let med = |t: &mut Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let [a, b, c] = &mut times;
        Ok((
            WriteTimes {
                base: med(a),
                split: med(b),
                fused: med(c),
            },
            note,
        ))
    }
}

/// One layer of one (prompt, rows) shape as every variant times it.
struct LayerCase {
    layer: u32,
    /// (sink, window) of every query head at the shape's N.
    heads: Vec<[u32; 2]>,
    /// Kept query–key pairs over causal pairs, all heads.
    share: f64,
    row_slots: u32,
    /// The layer's cache segments and write times (`--cache-write`).
    seg: Option<DevMem>,
    write: Option<WriteTimes>,
}

/// The order in which (layer index, round, variant index) are timed for `n_layers`
/// layers, `n_var` variants and `rounds` rounds. By layer (default): each layer's variants
/// in turn, `rounds` times (A B A B on layer 0, then layer 1, ...). `blocked`: each round
/// times every layer with variant 0, then every layer with variant 1, ... (A…A B…B A…A
/// B…B), as an engine runs one variant on every layer: a variant that changes the board's
/// clock (session 17's `m`: fewer DRAM reads) then runs at its own clock, where
/// interleaving made both share one. `abba` reverses the variants in odd rounds.
fn timing_order(
    n_layers: usize,
    n_var: usize,
    rounds: usize,
    abba: bool,
    blocked: bool,
) -> Vec<(usize, usize, usize)> {
    let vi = |r: usize, i: usize| match abba && r % 2 == 1 {
        true => n_var - 1 - i,
        false => i,
    };
    match blocked {
        true => (0..rounds)
            .flat_map(|r| {
                (0..n_var).flat_map(move |i| (0..n_layers).map(move |li| (li, r, vi(r, i))))
            })
            .collect(),
        false => (0..n_layers)
            .flat_map(|li| {
                (0..rounds).flat_map(move |r| (0..n_var).map(move |i| (li, r, vi(r, i))))
            })
            .collect(),
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.reps == 0 {
        return Err("--reps 0: at least one timed launch per layer".into());
    }
    let storage = match args.dtype.as_str() {
        "bf16" => StorageType::Bf16,
        "f16" => StorageType::F16,
        other => return Err(format!("--dtype {other}: expected f16 or bf16")),
    };
    let gpu = match args.compile_only {
        true => None,
        false => Some(CudaContext::new(0).map_err(|e| format!("opening GPU 0: {e:?}"))?),
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::sink()),
    };
    println!(
        "| plan | prompt | rows | layer | kept share | moa ms | variant | max diff vs first |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for spec in &args.plans {
        let (path, kv) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("plan `{spec}`: expected PATH:KV_HEADS"))?;
        let kv_heads: u32 = kv
            .parse()
            .map_err(|_| format!("plan `{spec}`: KV_HEADS `{kv}` is not a number"))?;
        // Upstream's layout names the model by the folder (`<model>/moa_alpha_beta.json`);
        // a renamed copy by its file stem.
        let p = PathBuf::from(path);
        let label = if p.file_name().is_some_and(|f| f == "moa_alpha_beta.json") {
            p.parent().and_then(|d| d.file_name())
        } else {
            p.file_stem()
        }
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
        let shape = ModelShape {
            name: None,
            layers: args.layers,
            q_heads: args.heads,
            kv_heads,
            head_dim: args.head_dim,
            max_context_tokens: 262_144,
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let plan = upstream::import(&text, path, shape).map_err(|e| e.to_string())?;
        let module: KernelModule = lower(&plan, storage);
        let d = module.shape.head_dim;
        // (tuning, `@cw`: the pre-pass's first half by the cache write)
        let mut tunings = Vec::new();
        for v in &args.variants {
            let (name, cw) = match v.strip_suffix("@cw") {
                Some(n) => (n, true),
                None => (v.as_str(), false),
            };
            tunings.push((name.parse::<PrefillTuning>()?, cw));
        }
        if tunings.is_empty() {
            tunings.push((PrefillTuning::default_for(storage, d), false));
        }
        let cache_write = args.cache_write || tunings.iter().any(|t| t.1);
        // Every variant's prefill artifacts, compiled together where no image exists.
        let mut per_variant: Vec<Vec<Artifact>> = Vec::new();
        for &(tuning, _) in &tunings {
            per_variant.push(
                // The compiler's decode tuning for the module's GQA group, as `cuda_cubins`
                // and the engine generate it: the decode kernels share the prefill's module,
                // so with another tuning no source matched a cubin, and every run compiled
                // its modules with NVRTC and the driver's JIT (about 60 s a plan on the H200,
                // the silent runs of sessions 17 and 18).
                generate_variant(
                    &module,
                    DecodeTuning::default_for(module.shape.group_size()),
                    tuning,
                )
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|a| {
                    a.kernels.iter().any(|k| {
                        k.phase == Phase::Prefill
                            && (args.layers_only.is_empty()
                                || args.layers_only.contains(&k.layer.unwrap_or(0)))
                    })
                })
                .collect(),
            );
        }
        let all: Vec<Artifact> = per_variant.iter().flatten().cloned().collect();
        let all_images = images(&all, args.ptx_cache.as_ref())?;
        let Some(ctx) = gpu.as_ref() else {
            println!("{label}: {} kernel images ready", all_images.len());
            continue;
        };
        let stream = ctx.default_stream();
        // The engine's ops (the cache write), where it is timed.
        let ops = match cache_write {
            true => {
                Some(OpKernels::load(&stream, storage, DEFAULT_ARCH).map_err(|e| e.to_string())?)
            }
            false => None,
        };
        let mut all_images = all_images.into_iter();
        // kernels[variant] = [(layer, kernel, the `v` variant's pre-pass kernels)]
        type Prepass = Option<VPrepass>;
        let mut kernels: Vec<Vec<(u32, LoadedKernel, Prepass)>> = Vec::new();
        // (variant index, layer, module) of every prefill, for `--trace-out`.
        let mut traced = Vec::new();
        for artifacts in &per_variant {
            let mut loaded = Vec::new();
            for a in artifacts {
                let image = all_images.next().ok_or("fewer images than kernels")?;
                let Some(k) = a.kernels.iter().find(|k| k.phase == Phase::Prefill) else {
                    continue;
                };
                let m = ctx
                    .load_module(image)
                    .map_err(|e| format!("loading {}: {e:?}", a.path))?;
                let f = m
                    .load_function(&k.entry_point)
                    .map_err(|e| format!("{}: {e:?}", k.entry_point))?;
                f.set_attribute(
                    CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    k.abi.dynamic_shared_bytes as i32,
                )
                .map_err(|e| format!("{}: {e:?}", k.entry_point))?;
                assert_eq!(
                    k.entry_point,
                    prefill_name(storage, d, k.layer.unwrap_or(0))
                );
                let kernel = LoadedKernel {
                    function: f,
                    abi: k.abi.clone(),
                    name: k.entry_point.clone(),
                };
                // The `v` variant takes V in f16: its module's pre-pass kernels make it.
                let prepass = VPrepass::load(&m, a, &k.entry_point).map_err(|e| e.to_string())?;
                traced.push((kernels.len(), k.layer.unwrap_or(0), m.clone()));
                loaded.push((k.layer.unwrap_or(0), kernel, prepass));
            }
            kernels.push(loaded);
        }
        for &prompt in &args.prompts {
            for &rows in &args.rows {
                let total = (rows * prompt) as usize;
                let (hq, hkv, du) = (module.shape.q_heads as usize, kv_heads as usize, d as usize);
                let up = |n: usize, seed: u64| -> Result<DevBuf, String> {
                    stream
                        .clone_htod(&random_bits(n, seed, storage))
                        .map(DevBuf::Half)
                        .map_err(|e| format!("upload: {e:?}"))
                };
                let q = up(total * hq * du, 1)?;
                let k = up(total * hkv * du, 2)?;
                let v = up(total * hkv * du, 3)?;
                // The `v` variant's f16 copy of V and per-KV-head maxima (codegen::abi::Arg::VF16).
                let v16 = DevBuf::Half(
                    stream
                        .alloc_zeros(total * hkv * du)
                        .map_err(|e| format!("alloc: {e:?}"))?,
                );
                let vmax = stream
                    .alloc_zeros::<u32>(hkv)
                    .map_err(|e| format!("alloc: {e:?}"))?;
                let o = DevBuf::Half(
                    stream
                        .alloc_zeros(total * hq * du)
                        .map_err(|e| format!("alloc: {e:?}"))?,
                );
                let starts: Vec<u32> = (0..=rows).map(|r| r * prompt).collect();
                let starts = stream
                    .clone_htod(&starts)
                    .map_err(|e| format!("upload: {e:?}"))?;
                let n_tokens = prompt + args.decode_tokens;
                let size = LaunchSize {
                    rows,
                    q_heads: hq as u32,
                    kv_heads,
                    max_row_len: prompt,
                    ..LaunchSize::default()
                };
                let (DevBuf::Half(vb), DevBuf::Half(v16b)) = (&v, &v16) else {
                    return Err("16-bit V expected".into());
                };
                let writes = match &ops {
                    Some(o) => {
                        let (DevBuf::Half(qb), DevBuf::Half(kb)) = (&q, &k) else {
                            return Err("16-bit Q and K expected".into());
                        };
                        let out = [
                            qb.device_ptr(&stream).0,
                            kb.device_ptr(&stream).0,
                            vb.device_ptr(&stream).0,
                            v16b.device_ptr(&stream).0,
                            vmax.device_ptr(&stream).0,
                        ];
                        let shape = [prompt, rows, n_tokens];
                        Some(WriteBufs::new(
                            &stream, o, &module, shape, kv_heads, out, storage,
                        )?)
                    }
                    None => None,
                };
                let layers: Vec<u32> = kernels[0].iter().map(|(l, ..)| *l).collect();
                // One layer's case: its heads' (sink, window), kept share and cache write
                // (three forms timed, the same for every variant).
                let layer_case = |li: usize| -> Result<LayerCase, String> {
                    let layer = layers[li];
                    let spec = &module.layers[layer as usize];
                    let heads: Vec<[u32; 2]> = (0..hq)
                        .map(|h| {
                            let w = spec.window(h, n_tokens, &module.span);
                            [w.sink, w.window]
                        })
                        .collect();
                    let kept: u64 = heads.iter().map(|w| kept_pairs(w[0], w[1], prompt)).sum();
                    let causal = hq as u64 * u64::from(prompt) * (u64::from(prompt) + 1) / 2;
                    let share = kept as f64 / causal as f64;
                    let layout = CacheLayout::new(spec, &module.span, n_tokens);
                    let seg = match &writes {
                        Some(_) => Some(WriteBufs::segments(&stream, &layout)?),
                        None => None,
                    };
                    let write = match (&writes, &ops, &seg) {
                        (Some(w), Some(o), Some(seg)) => {
                            let check = match args.check_prepass && li == 0 {
                                true => kernels[0][li].2.as_ref().filter(|p| p.unit()),
                                false => None,
                            };
                            let (t, note) = w.time(
                                &stream,
                                o,
                                seg,
                                layout.row_slots,
                                args.reps,
                                args.warmups,
                                check,
                                starts.device_ptr(&stream).0,
                                rows,
                            )?;
                            if let Some(n) = note {
                                println!("{label} {prompt} x {rows} l{layer}: {n}");
                            }
                            println!(
                                "| {label} | {prompt} | {rows} | {layer} | cache write ms: rope_kv {:.4}, rope_qk + v_write {:.4}, with the f16 copy {:.4} |",
                                t.base, t.split, t.fused
                            );
                            Some(t)
                        }
                        _ => None,
                    };
                    Ok(LayerCase {
                        layer,
                        heads,
                        share,
                        row_slots: layout.row_slots,
                        seg,
                        write,
                    })
                };
                let n_var = tunings.len();
                let order = timing_order(
                    layers.len(),
                    n_var,
                    args.rounds.max(1),
                    args.abba,
                    args.blocked,
                );
                // A case is made when its layer is first timed; in blocks, every case before
                // the first block, so that no cache-write timing falls inside one.
                let mut cases: Vec<Option<LayerCase>> = (0..layers.len()).map(|_| None).collect();
                if args.blocked {
                    for (li, case) in cases.iter_mut().enumerate() {
                        *case = Some(layer_case(li)?);
                    }
                }
                let mut first_out: Vec<Option<Vec<u16>>> = vec![None; layers.len()];
                let launches = layers.len() * (args.reps + args.warmups);
                for (step, &(li, round, vi)) in order.iter().enumerate() {
                    if cases[li].is_none() {
                        cases[li] = Some(layer_case(li)?);
                    }
                    let Some(case) = cases[li].as_ref() else {
                        return Err(format!("layer {}: no case", layers[li]));
                    };
                    let (layer, share, heads) = (case.layer, case.share, &case.heads);
                    let (seg, write, row_slots) = (&case.seg, &case.write, case.row_slots);
                    let block = step / layers.len();
                    let (tuning, cw) = tunings[vi];
                    let (_, kernel, prepass) = &kernels[vi][li];
                    let name = format!("{tuning}{}", if cw { "@cw" } else { "" });
                    if cw && !prepass.as_ref().is_some_and(|p| p.unit()) {
                        return Err(format!(
                                "variant {name}: its prefill has no `u` pre-pass for the cache write to share"
                            ));
                    }
                    if cw && writes.is_none() {
                        return Err(format!("variant {name}: needs --cache-write"));
                    }
                    let mut prepass_times = Vec::new();
                    let mut times = Vec::with_capacity(args.reps);
                    for i in 0..args.reps + args.warmups {
                        let e0 = stream
                            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                            .map_err(|e| format!("event: {e:?}"))?;
                        // With --cache-write the layer's cache write comes first, as in
                        // the engine (its split-form median is taken off below); `@cw`
                        // with the f16 copy and the maxima, then only `_vfix`.
                        if let (Some(w), Some(o), Some(seg)) = (&writes, &ops, &seg) {
                            w.queue(&stream, o, seg, row_slots, if cw { 2 } else { 1 })?;
                        }
                        // Events only: reading a time synchronizes, which would put a
                        // host round trip between the pre-pass and the prefill (the
                        // bench did until session 16; the times are read after e1).
                        let ew = stream
                            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                            .map_err(|e| format!("event: {e:?}"))?;
                        let mut em = None;
                        if let Some(pre) = prepass {
                            // The host contract of codegen::abi::Arg::VF16, timed with
                            // the prefill it serves (`@cw`: its `_vfix` half).
                            // SAFETY: V holds row_start[rows] tokens of KV_HEADS × D
                            // values, vmax KV_HEADS words, v16 V's element count.
                            unsafe {
                                let (vp, sp, mp, cp) = (
                                    vb.device_ptr(&stream).0,
                                    starts.device_ptr(&stream).0,
                                    vmax.device_ptr(&stream).0,
                                    v16b.device_ptr(&stream).0,
                                );
                                if cw {
                                    pre.queue_fix(
                                        &stream,
                                        vp,
                                        sp,
                                        rows,
                                        mp,
                                        cp,
                                        total as u32,
                                        kv_heads,
                                    )
                                } else {
                                    pre.queue(&stream, vp, sp, rows, mp, cp, total as u32, kv_heads)
                                }
                            }
                            .map_err(|e| format!("pre-pass: {e}"))?;
                            em = Some(
                                stream
                                    .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                                    .map_err(|e| format!("event: {e:?}"))?,
                            );
                        }
                        let launch_args = [
                            (Arg::Q, ArgVal::Tensor(&q)),
                            (Arg::K, ArgVal::Tensor(&k)),
                            (Arg::V, ArgVal::Tensor(&v)),
                            (Arg::VF16, ArgVal::Tensor(&v16)),
                            (Arg::VMax, ArgVal::U32s(&vmax)),
                            (Arg::RowStart, ArgVal::U32s(&starts)),
                            (Arg::Out, ArgVal::Tensor(&o)),
                            (Arg::NTokens, ArgVal::Value(n_tokens)),
                            (Arg::Rows, ArgVal::Value(rows)),
                        ];
                        // SAFETY: the buffers hold rows × prompt tokens as row_start
                        // says, in the shapes of the prefill ABI.
                        unsafe { kernel.launch(&stream, &launch_args, &size) }
                            .map_err(|e| format!("launch: {e}"))?;
                        let e1 = stream
                            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                            .map_err(|e| format!("event: {e:?}"))?;
                        let ms = e0.elapsed_ms(&e1).map_err(|e| format!("timing: {e:?}"))?;
                        if i >= args.warmups {
                            times.push(ms as f64);
                            if let Some(em) = &em {
                                let pm = ew.elapsed_ms(em).map_err(|e| format!("timing: {e:?}"))?;
                                prepass_times.push(f64::from(pm));
                            }
                        }
                    }
                    if args.check_prepass && li == 0 && round == 0 && prepass.is_some() {
                        println!(
                            "{label} {prompt} x {rows}: {}",
                            check_prepass(&stream, vb, v16b, &vmax, hkv, du)?
                        );
                    }
                    times.sort_by(f64::total_cmp);
                    let kernel_ms = times[times.len() / 2];
                    // With the cache write timed in: less its split form's median, so
                    // that moa_ms is the attention's time (and `@cw`'s the net one:
                    // what the copy adds to the write, `_vfix` and the prefill).
                    let write_ms = write.as_ref().map_or(0.0, |w| w.split);
                    let median = kernel_ms - write_ms;
                    prepass_times.sort_by(f64::total_cmp);
                    let prepass_ms = prepass_times.get(prepass_times.len() / 2).copied();
                    // Every variant against the first on the same inputs.
                    let mut max_diff = None;
                    if args.compare && tunings.len() > 1 && round == 0 {
                        let DevBuf::Half(ob) = &o else {
                            return Err("16-bit output expected".into());
                        };
                        let host = stream
                            .clone_dtoh(ob)
                            .map_err(|e| format!("download: {e:?}"))?;
                        match &first_out[li] {
                            None => first_out[li] = Some(host),
                            Some(base) => {
                                let f = |b: u16| match storage {
                                    StorageType::Bf16 => half::bf16::from_bits(b).to_f32(),
                                    _ => half::f16::from_bits(b).to_f32(),
                                };
                                // Every 61st element (61 is prime to head_dim and the
                                // head count): all rows, heads and dims, and a cheap check.
                                let diff = base
                                    .iter()
                                    .zip(&host)
                                    .step_by(61)
                                    .map(|(&a, &b)| (f(a) - f(b)).abs())
                                    .fold(0.0f32, |m, x| {
                                        if x.is_nan() {
                                            f32::INFINITY
                                        } else {
                                            m.max(x)
                                        }
                                    });
                                max_diff = Some(diff);
                            }
                        }
                    }
                    println!(
                            "| {label} | {prompt} | {rows} | {layer} | {share:.3} | {median:.3} | {name} | {} |",
                            max_diff.map_or("–".to_string(), |x| format!("{x:.2e}"))
                        );
                    let line = serde_json::json!({
                        "plan": label, "prompt": prompt, "rows": rows, "layer": layer,
                        "n_tokens": n_tokens, "q_heads": hq, "kv_heads": hkv, "head_dim": du,
                        "dtype": args.dtype, "kept_share": share, "moa_ms": median,
                        "moa_ms_min": times[0], "heads_sink_window": heads,
                        "variant": name, "max_diff_vs_first": max_diff,
                        "round": round, "prepass_ms": prepass_ms, "kernel_ms": kernel_ms,
                        "write_ms_taken_off": write_ms,
                        "write_base_ms": write.as_ref().map(|w| w.base),
                        "write_split_ms": write.as_ref().map(|w| w.split),
                        "write_fused_ms": write.as_ref().map(|w| w.fused),
                        "blocked": args.blocked, "block": block,
                    });
                    writeln!(out, "{line}").map_err(|e| format!("writing: {e}"))?;
                    // The end of a block (a variant's pass over every layer): a line for the
                    // peer driver (benches/prefill/s18/blocked.py), which times its own block
                    // of dense SDPA before answering on stdin under --pause.
                    let block_ends = order
                        .get(step + 1)
                        .is_none_or(|&(_, r, v)| (r, v) != (round, vi));
                    if args.blocked && block_ends {
                        println!(
                            "#BLOCK {label} {prompt} {rows} pass {round} block {block} variant {name} q_heads {hq} head_dim {du} layers {} launches {launches} reps {} warmups {}",
                            layers.len(),
                            args.reps,
                            args.warmups
                        );
                        if args.pause {
                            std::io::stdout()
                                .flush()
                                .map_err(|e| format!("stdout: {e}"))?;
                            let mut go = String::new();
                            std::io::stdin()
                                .read_line(&mut go)
                                .map_err(|e| format!("--pause: reading stdin: {e}"))?;
                        }
                    }
                }
            }
        }
        if let Some(path) = &args.trace_out {
            for (vi, layer, m) in &traced {
                write_trace(
                    path,
                    &format!("{label} {} {layer}", tunings[*vi].0),
                    m,
                    &stream,
                )?;
            }
        }
    }
    Ok(())
}

/// Appends the trace arrays of module `m` (`pft_cnt[B][4]`, `pft_buf[B][4][N]`, written by
/// a kernel that `benches/prefill/s23/trace_patch.py` instrumented) to `path`, one line
/// `TAG block role index word` per recorded event. A module without them writes nothing.
fn write_trace(
    path: &PathBuf,
    tag: &str,
    m: &std::sync::Arc<cudarc::driver::CudaModule>,
    stream: &std::sync::Arc<cudarc::driver::CudaStream>,
) -> Result<(), String> {
    let Ok(cnt) = m.get_global("pft_cnt", stream) else {
        return Ok(());
    };
    let cnt: Vec<u32> = stream
        .clone_dtoh(&unsafe { cnt.transmute::<u32>(cnt.len() / 4) }.ok_or("pft_cnt size")?)
        .map_err(|e| format!("pft_cnt: {e:?}"))?;
    let buf = m
        .get_global("pft_buf", stream)
        .map_err(|e| format!("pft_buf: {e:?}"))?;
    let buf: Vec<u64> = stream
        .clone_dtoh(&unsafe { buf.transmute::<u64>(buf.len() / 8) }.ok_or("pft_buf size")?)
        .map_err(|e| format!("pft_buf: {e:?}"))?;
    let per = buf.len() / cnt.len().max(1);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    for (list, &n) in cnt.iter().enumerate() {
        for (i, w) in buf[list * per..][..(n as usize).min(per)]
            .iter()
            .enumerate()
        {
            text.push_str(&format!("{tag} {} {} {i} {w}\n", list / 4, list % 4));
        }
    }
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::timing_order;

    /// By layer: each layer's variants in turn per round; in blocks: every layer with one
    /// variant, then the next; `abba` reverses the variants of odd rounds in both.
    #[test]
    fn blocked_order_times_every_layer_with_one_variant_at_a_time() {
        let vars = |o: &[(usize, usize, usize)]| o.iter().map(|x| x.2).collect::<Vec<_>>();
        let by_layer = timing_order(2, 2, 2, false, false);
        assert_eq!(
            by_layer,
            [
                (0, 0, 0),
                (0, 0, 1),
                (0, 1, 0),
                (0, 1, 1),
                (1, 0, 0),
                (1, 0, 1),
                (1, 1, 0),
                (1, 1, 1)
            ]
        );
        let blocked = timing_order(3, 2, 2, false, true);
        assert_eq!(vars(&blocked), [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
        assert_eq!(
            blocked.iter().map(|x| x.0).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
        );
        let abba = timing_order(2, 2, 2, true, true);
        assert_eq!(vars(&abba), [0, 0, 1, 1, 1, 1, 0, 0]);
        assert_eq!(
            vars(&timing_order(1, 3, 2, true, false)),
            [0, 1, 2, 2, 1, 0]
        );
    }
}
