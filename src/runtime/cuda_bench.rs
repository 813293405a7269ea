//! Timing generated CUDA kernels the way a runtime runs them: launches captured once in a
//! CUDA graph and replayed, the median replay divided by the launches it holds. Used by
//! `examples/attention_bench.rs` (decode now, prefill next); figures go to
//! benches/RESULTS.md, never into tests.

#![warn(missing_docs)]

use std::sync::Arc;

use cudarc::driver::sys::{
    CUdevice_attribute, CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode,
};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::cuda::{compile_ptx, CudaError, DevBuf, DEFAULT_ARCH};
use crate::lower::StorageType;

fn driver(what: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    move |source| CudaError::Driver {
        what: what.to_string(),
        source,
    }
}

/// Median and spread of one timed kernel sequence, per launch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Median over replays of (replay time / launches per replay), microseconds.
    pub median_us: f64,
    /// Fastest replay per launch, microseconds.
    pub min_us: f64,
    /// Slowest replay per launch, microseconds.
    pub max_us: f64,
    /// Launches captured in the graph (at least 1).
    pub launches: u32,
    /// Timed replays (at least 1; two warm-up replays come before them).
    pub replays: u32,
}

/// Captures `launches` calls of `launch(i)` (i = 0..launches) on `stream` into a CUDA
/// graph, replays it twice to warm up, then `replays` times with events around each.
pub fn time_graph(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    launches: u32,
    replays: u32,
    mut launch: impl FnMut(u32) -> Result<(), CudaError>,
) -> Result<Timing, CudaError> {
    let launches = launches.max(1);
    stream
        .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(driver("starting a graph capture"))?;
    let mut captured = Ok(());
    for i in 0..launches {
        captured = launch(i);
        if captured.is_err() {
            break;
        }
    }
    // End the capture even after an error, so the stream is usable again.
    let graph = stream
        .end_capture(CUgraphInstantiate_flags(0))
        .map_err(driver("ending a graph capture"))?;
    captured?;
    let graph =
        graph.ok_or_else(|| CudaError::InvalidInput("the graph capture was empty".into()))?;
    graph.upload().map_err(driver("uploading a graph"))?;
    for _ in 0..2 {
        graph.launch().map_err(driver("replaying a graph"))?;
    }
    stream.synchronize().map_err(driver("warming up"))?;
    let mut per_launch = Vec::with_capacity(replays.max(1) as usize);
    for _ in 0..replays.max(1) {
        let start = ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("creating an event"))?;
        let end = ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("creating an event"))?;
        start.record(stream).map_err(driver("recording an event"))?;
        graph.launch().map_err(driver("replaying a graph"))?;
        end.record(stream).map_err(driver("recording an event"))?;
        let ms = start.elapsed_ms(&end).map_err(driver("reading an event"))?;
        per_launch.push(f64::from(ms) * 1000.0 / f64::from(launches));
    }
    per_launch.sort_by(f64::total_cmp);
    Ok(Timing {
        median_us: per_launch[per_launch.len() / 2],
        min_us: per_launch[0],
        max_us: per_launch[per_launch.len() - 1],
        launches,
        replays: replays.max(1),
    })
}

/// The GPU's L2 cache size in bytes (benchmarks rotate over enough copies of their
/// inputs that a replay cannot be served from L2).
pub fn l2_bytes(ctx: &Arc<CudaContext>) -> Result<u64, CudaError> {
    let b = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
        .map_err(driver("reading the L2 size"))?;
    Ok(b.max(0) as u64)
}

const FILL_SRC: &str = r#"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
// Uniform values in [-1, 1) from a hash of the index: kind 0 f32, 1 f16, 2 bf16.
extern "C" __global__ void moa_fill(void* p, unsigned long long n, unsigned seed, unsigned kind) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ (unsigned)(i >> 32) * 40503u ^ seed;
        h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
        const float x = (float)(h & 0xffffu) / 32768.0f - 1.0f;
        if (kind == 0) ((float*)p)[i] = x;
        else if (kind == 1) ((__half*)p)[i] = __float2half_rn(x);
        else ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(x);
    }
}
"#;

/// Fills device tensors with pseudo-random values in [-1, 1) on the device (a 4 GB cache
/// is not generated on the host).
pub struct Filler {
    f: CudaFunction,
    stream: Arc<CudaStream>,
}

impl Filler {
    /// Compiles (NVRTC, for [`DEFAULT_ARCH`]) and loads the fill kernel; later fills are
    /// queued on `stream`. Errors: NVRTC's ([`compile_ptx`]) or the driver's.
    pub fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Result<Filler, CudaError> {
        let ptx = compile_ptx(FILL_SRC, DEFAULT_ARCH)?;
        let m = ctx
            .load_module(Ptx::from_src(ptx))
            .map_err(driver("loading the fill kernel"))?;
        let f = m
            .load_function("moa_fill")
            .map_err(driver("looking up the fill kernel"))?;
        Ok(Filler {
            f,
            stream: stream.clone(),
        })
    }

    /// Queues a fill of all of `buf` (stored as `storage`) with values in [-1, 1) hashed
    /// from the element index and `seed`, no synchronisation. Errors: the launch's.
    pub fn fill(&self, buf: &mut DevBuf, storage: StorageType, seed: u32) -> Result<(), CudaError> {
        let kind: u32 = match storage {
            StorageType::F32 => 0,
            StorageType::F16 => 1,
            StorageType::Bf16 => 2,
        };
        let cfg = LaunchConfig {
            grid_dim: (4096, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut lb = self.stream.launch_builder(&self.f);
        let n: u64;
        match buf {
            DevBuf::F32(s) => {
                n = s.len() as u64;
                lb.arg(s);
            }
            DevBuf::Half(s) => {
                n = s.len() as u64;
                lb.arg(s);
            }
        }
        lb.arg(&n);
        lb.arg(&seed);
        lb.arg(&kind);
        // SAFETY: `n` is the buffer's own length and `kind` its element type.
        unsafe { lb.launch(cfg) }.map_err(driver("launching the fill kernel"))?;
        Ok(())
    }
}

const PRODUCER_SRC: &str = r#"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
// A stand-in for the kernel a model runs just before decode attention (moa_rope_kv of
// runtime/cuda/ops.cu: grid (1, heads, rows) of 64 threads). Reads qkv [rows, q_heads +
// 2 kv_heads, d] f32; writes q [rows, q_heads, d] and each (row, KV head)'s K and V row at
// element offset slot[row * kv_heads + h] of the caches (the current token's slot; all ones:
// the segment keeps no slot for it, nothing written, as moa_rope_kv skips it).
// kind: 0 f32, 1 f16, 2 bf16. With `trigger`, a programmatic launch after this kernel may
// start at once (griddepcontrol.launch_dependents; it still waits for this grid's
// completion before reading what this kernel writes).
__device__ __forceinline__ void put(void* p, size_t i, float x, unsigned kind) {
    if (kind == 0) ((float*)p)[i] = x;
    else if (kind == 1) ((__half*)p)[i] = __float2half_rn(x);
    else ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(x);
}
extern "C" __global__ void moa_producer(const float* __restrict__ qkv, void* q, void* k_cache, void* v_cache,
                                        const unsigned long long* __restrict__ slot, unsigned q_heads,
                                        unsigned kv_heads, unsigned d, unsigned kind, unsigned trigger) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (trigger) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
    const unsigned head = blockIdx.y, row = blockIdx.z, heads = q_heads + 2 * kv_heads;
    for (unsigned i = threadIdx.x; i < d; i += blockDim.x) {
        const float x = qkv[((size_t)row * heads + head) * d + i];
        if (head < q_heads) {
            put(q, ((size_t)row * q_heads + head) * d + i, x, kind);
        } else {
            const unsigned kv = (head - q_heads) % kv_heads;
            const unsigned long long s = slot[row * kv_heads + kv];
            if (s != ~0ull) put(head < q_heads + kv_heads ? k_cache : v_cache, s + i, x, kind);
        }
    }
}
"#;

/// A [`Producer`] slot offset that writes nothing: the segment keeps no slot for the
/// current token (all sink, and the token past it), as `moa_rope_kv` skips it.
pub const NO_SLOT: u64 = u64::MAX;

/// Element offsets, per (row, KV head) of `layout`, of the cache slot the current token at
/// `row_pos[row]` occupies (the slot `moa_rope_kv` writes: the sink, then the ring,
/// docs/DESIGN.md §5), or [`NO_SLOT`]; for [`Producer::launch`].
pub fn current_slots(
    layout: &crate::lower::CacheLayout,
    row_pos: &[u32],
    head_dim: u32,
) -> Vec<u64> {
    let d = u64::from(head_dim);
    let mut slots = Vec::with_capacity(row_pos.len() * layout.segments.len());
    for (r, &t) in row_pos.iter().enumerate() {
        let row0 = r as u64 * u64::from(layout.row_slots);
        for g in &layout.segments {
            let j = if t < g.sink {
                Some(t)
            } else if g.ring > 0 {
                Some(g.sink + (t - g.sink) % g.ring)
            } else {
                None
            };
            slots.push(j.map_or(NO_SLOT, |j| (row0 + u64::from(g.offset + j)) * d));
        }
    }
    slots
}

/// The kernel a decode step runs just before attention, for timing attention where a
/// model runs it (`examples/attention_bench.rs --producer`): the shape of `moa_rope_kv`
/// (runtime/cuda/ops.cu), which writes the step's queries and the current token's K/V slot.
pub struct Producer {
    f: CudaFunction,
    stream: Arc<CudaStream>,
}

impl Producer {
    /// Compiles (NVRTC, for [`DEFAULT_ARCH`]) and loads the producer kernel; its launches
    /// are queued on `stream`. Errors: NVRTC's ([`compile_ptx`]) or the driver's.
    pub fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Result<Producer, CudaError> {
        let ptx = compile_ptx(PRODUCER_SRC, DEFAULT_ARCH)?;
        let m = ctx
            .load_module(Ptx::from_src(ptx))
            .map_err(driver("loading the producer kernel"))?;
        let f = m
            .load_function("moa_producer")
            .map_err(driver("looking up the producer kernel"))?;
        Ok(Producer {
            f,
            stream: stream.clone(),
        })
    }

    /// Queues one launch: `qkv` f32 `[rows, q_heads + 2 kv_heads, d]` into `q`
    /// `[rows, q_heads, d]` and each (row, KV head)'s K and V row at element offset
    /// `slot[row * kv_heads + h]` of `k_cache` / `v_cache` (all of element type
    /// `storage`; [`NO_SLOT`]: none written). With `trigger`, a programmatic launch queued
    /// after it may start at once.
    ///
    /// # Errors
    /// [`CudaError::InvalidInput`] when a buffer is smaller than the shapes say (or of
    /// the wrong element type); a driver error from the launch.
    ///
    /// # Safety
    /// Every offset in `slot` plus `d` must lie inside the caches.
    pub unsafe fn launch(
        &self,
        qkv: &CudaSlice<f32>,
        [q, k_cache, v_cache]: [&DevBuf; 3],
        slot: &CudaSlice<u64>,
        [rows, q_heads, kv_heads, d]: [u32; 4],
        storage: StorageType,
        trigger: bool,
    ) -> Result<(), CudaError> {
        let kind: u32 = match storage {
            StorageType::F32 => 0,
            StorageType::F16 => 1,
            StorageType::Bf16 => 2,
        };
        let (r, hq, hkv, dd) = (
            rows as usize,
            q_heads as usize,
            kv_heads as usize,
            d as usize,
        );
        let len = |b: &DevBuf| match b {
            DevBuf::F32(x) if kind == 0 => x.len(),
            DevBuf::Half(x) if kind != 0 => x.len(),
            _ => 0,
        };
        if qkv.len() < r * (hq + 2 * hkv) * dd
            || len(q) < r * hq * dd
            || slot.len() < r * hkv
            || len(k_cache) == 0
            || len(v_cache) != len(k_cache)
        {
            return Err(CudaError::InvalidInput(format!(
                "producer: qkv {} (want {rows} x {} x {d}), q {} (want {rows} x {q_heads} x {d}), \
                 slots {} (want {rows} x {kv_heads}), caches {} / {} of {}",
                qkv.len(),
                hq + 2 * hkv,
                len(q),
                slot.len(),
                len(k_cache),
                len(v_cache),
                storage.name()
            )));
        }
        let cfg = LaunchConfig {
            grid_dim: (1, q_heads + 2 * kv_heads, rows),
            block_dim: (64, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut lb = self.stream.launch_builder(&self.f);
        lb.arg(qkv);
        for b in [q, k_cache, v_cache] {
            match b {
                DevBuf::F32(s) => lb.arg(s),
                DevBuf::Half(s) => lb.arg(s),
            };
        }
        let trig = u32::from(trigger);
        lb.arg(slot);
        lb.arg(&q_heads);
        lb.arg(&kv_heads);
        lb.arg(&d);
        lb.arg(&kind);
        lb.arg(&trig);
        // SAFETY: every buffer holds what the shapes index (checked above); the slot
        // offsets are the caller's contract.
        unsafe { lb.launch(cfg) }.map_err(driver("launching the producer kernel"))?;
        Ok(())
    }
}
