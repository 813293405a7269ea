// The CUDA engine's small ops around the projections (cuBLAS) and the attention kernels
// (generated from the plan). Each has a CPU reference in `runtime/cuda/ops.rs` and is
// checked against it on the device (`ops::check`). The host prepends the storage type:
// `#define MOA_ELEM 0|1|2` (f32, f16, bf16). Activations between ops are f32 where they
// are summed (the residual stream, projection outputs) and `elem_t` where a GEMM or the
// attention kernels read them.
#if MOA_ELEM == 1
#include <cuda_fp16.h>
typedef __half elem_t;
__device__ __forceinline__ float to_f32(elem_t x) { return __half2float(x); }
__device__ __forceinline__ elem_t from_f32(float x) { return __float2half_rn(x); }
__device__ __forceinline__ unsigned short elem_bits(elem_t x) { return __half_as_ushort(x); }
#elif MOA_ELEM == 2
#include <cuda_bf16.h>
typedef __nv_bfloat16 elem_t;
__device__ __forceinline__ float to_f32(elem_t x) { return __bfloat162float(x); }
__device__ __forceinline__ elem_t from_f32(float x) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ unsigned short elem_bits(elem_t x) { return __bfloat16_as_ushort(x); }
#else
typedef float elem_t;
__device__ __forceinline__ float to_f32(elem_t x) { return x; }
__device__ __forceinline__ elem_t from_f32(float x) { return x; }
#endif

#define THREADS 256

// Block-wide sum of 256 threads (every thread gets the total).
__device__ float block_sum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = 0.f;
    for (int w = 0; w < THREADS / 32; ++w) t += red[w];
    return t;
}

__device__ float block_max(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = red[0];
    for (int w = 1; w < THREADS / 32; ++w) t = fmaxf(t, red[w]);
    return t;
}

// x[t, :] = table[tokens[t], :] (f32). Grid (ceil(hidden / 256), n_tokens).
extern "C" __global__ void moa_embed(const unsigned* __restrict__ tokens, const elem_t* __restrict__ table,
                                     float* __restrict__ x, unsigned n_tokens, unsigned hidden) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (i >= hidden || t >= n_tokens) return;
    x[(size_t)t * hidden + i] = to_f32(table[(size_t)tokens[t] * hidden + i]);
}

// out[r, :] = x[src, :] / sqrt(mean(x[src, :]^2) + eps) * weight, src = rows ? rows[r] : r.
// One block of 256 threads per row; sums in f32.
extern "C" __global__ void moa_rmsnorm(const float* __restrict__ x, const unsigned* __restrict__ rows,
                                       const float* __restrict__ weight, elem_t* __restrict__ out,
                                       unsigned n_rows, unsigned hidden, float eps) {
    __shared__ float red[THREADS / 32];
    const unsigned r = blockIdx.x;
    if (r >= n_rows) return;
    const size_t src = (size_t)(rows ? rows[r] : r) * hidden;
    float ss = 0.f;
    for (unsigned i = threadIdx.x; i < hidden; i += THREADS) {
        const float v = x[src + i];
        ss += v * v;
    }
    const float inv = rsqrtf(block_sum(ss, red) / (float)hidden + eps);
    for (unsigned i = threadIdx.x; i < hidden; i += THREADS)
        out[(size_t)r * hidden + i] = from_f32(x[src + i] * inv * weight[i]);
}

// The cache slot of position p of a row whose last token in this pass is at position
// `last`, for a KV head's segment s = (offset, sink, ring) (docs/DESIGN.md §5), or ~0u
// where the token is not written: no ring (span 0 beyond the sink), or a ring slot that a
// later token of the same pass overwrites (the two writes would race).
__device__ __forceinline__ unsigned kv_slot(uint4 s, unsigned p, unsigned last) {
    if (p < s.y) return s.x + p;
    if (s.z == 0u || p + s.z <= last) return ~0u;
    return s.x + s.y + (p - s.y) % s.z;
}

// RoPE (half-split pairs) of the fused QKV projection, fused with the KV write into the
// sink + ring cache (docs/DESIGN.md §5), as shaders/rope_kv.wgsl.
//  qkv: [n_tokens, (q_heads + 2 kv_heads) * D] f32; tok: per token (position, row, position
//  of the row's last token in this pass, 0); rope: (cos, sin) per [position, pair];
//  seg: per KV head (offset, sink, ring, 0). Writes q [n_tokens, q_heads, D], k and v
//  [n_tokens, kv_heads, D] and, when k_cache is not null, the cache slots
//  [row, row_slots, D]. A ring slot that a later token of the same pass overwrites is
//  skipped (the two writes would race). Grid (ceil(D/2 / 64), heads, n_tokens), 64 threads.
//  Decode steps; a prefill pass runs moa_rope_qk and moa_v_write (the same values and
//  slots in blocks of 64 tokens: one token per block left this kernel at 0.8 TB/s).
extern "C" __global__ void moa_rope_kv(const float* __restrict__ qkv, const uint4* __restrict__ tok,
                                       const float2* __restrict__ rope, const uint4* __restrict__ seg,
                                       elem_t* __restrict__ q, elem_t* __restrict__ k, elem_t* __restrict__ v,
                                       elem_t* __restrict__ k_cache, elem_t* __restrict__ v_cache,
                                       unsigned n_tokens, unsigned q_heads, unsigned kv_heads, unsigned d,
                                       unsigned row_slots) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    // Decode attention, launched programmatically after this kernel (CudaLlama::decode_pdl),
    // may start at once: it reads nothing this kernel writes before griddepcontrol.wait.
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x, head = blockIdx.y, t = blockIdx.z;
    const unsigned half_d = d / 2, heads = q_heads + 2 * kv_heads;
    if (i >= half_d || head >= heads || t >= n_tokens) return;
    const uint4 info = tok[t];
    const size_t src = ((size_t)t * heads + head) * d;
    float a = qkv[src + i], b = qkv[src + i + half_d];
    if (head < q_heads + kv_heads) {
        const float2 cs = rope[(size_t)info.x * half_d + i];
        const float a2 = a * cs.x - b * cs.y;
        const float b2 = b * cs.x + a * cs.y;
        a = a2;
        b = b2;
    }
    if (head < q_heads) {
        const size_t o = ((size_t)t * q_heads + head) * d;
        q[o + i] = from_f32(a);
        q[o + i + half_d] = from_f32(b);
        return;
    }
    const bool is_k = head < q_heads + kv_heads;
    const unsigned kv = is_k ? head - q_heads : head - q_heads - kv_heads;
    const size_t o = ((size_t)t * kv_heads + kv) * d;
    elem_t* packed = is_k ? k : v;
    packed[o + i] = from_f32(a);
    packed[o + i + half_d] = from_f32(b);
    if (!k_cache) return;
    const uint4 s = seg[kv];  // offset, sink, ring
    const unsigned slot = kv_slot(s, info.x, info.z);
    if (slot == ~0u) return;
    elem_t* cache = is_k ? k_cache : v_cache;
    const size_t c = ((size_t)info.y * row_slots + slot) * d;
    cache[c + i] = from_f32(a);
    cache[c + i + half_d] = from_f32(b);
}

// Eight values to dst (16-byte aligned for 16-bit types, 32 for f32) in vector stores.
__device__ __forceinline__ void store8(elem_t* dst, const elem_t (&e)[8]) {
#if MOA_ELEM == 0
    reinterpret_cast<float4*>(dst)[0] = make_float4(e[0], e[1], e[2], e[3]);
    reinterpret_cast<float4*>(dst)[1] = make_float4(e[4], e[5], e[6], e[7]);
#else
    unsigned w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = (unsigned)elem_bits(e[2 * j]) | ((unsigned)elem_bits(e[2 * j + 1]) << 16);
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
#endif
}

// RoPE of a prefill pass's Q and K, with K's cache write: moa_rope_kv's values and slots
// (the same expressions), in blocks of 64 tokens of one head. Grid (ceil(n_tokens / 64),
// q_heads + kv_heads), 128 threads; an item is one token's pair of 8-value chunks i .. i + 7
// and i + D/2 .. i + D/2 + 7 (d % 16 == 0), each thread's loads of RQ_STEPS items issued
// before its stores. qkv, tok, rope, seg, q, k and k_cache as moa_rope_kv.
constexpr int RQ_STEPS = 4;
extern "C" __global__ void __launch_bounds__(128)
moa_rope_qk(const float* __restrict__ qkv, const uint4* __restrict__ tok, const float2* __restrict__ rope,
            const uint4* __restrict__ seg, elem_t* __restrict__ q, elem_t* __restrict__ k,
            elem_t* __restrict__ k_cache, unsigned n_tokens, unsigned q_heads, unsigned kv_heads, unsigned d,
            unsigned row_slots) {
    const unsigned head = blockIdx.y, heads = q_heads + 2 * kv_heads, half = d / 2, pc = half / 8;
    const unsigned t0 = blockIdx.x * 64, items = 64 * pc;
    const bool is_k = head >= q_heads;
    const unsigned kv = is_k ? head - q_heads : 0;
    const uint4 s = is_k ? seg[kv] : make_uint4(0u, 0u, 0u, 0u);
    for (unsigned base = threadIdx.x; base < items; base += 128 * RQ_STEPS) {
        float4 x[RQ_STEPS][4], cs[RQ_STEPS][4];
        uint4 info[RQ_STEPS];
#pragma unroll
        for (int n = 0; n < RQ_STEPS; ++n) {
            const unsigned i = base + n * 128, t = t0 + i / pc, c = i % pc;
            if (i < items && t < n_tokens) {
                info[n] = tok[t];
                const float4* lo = reinterpret_cast<const float4*>(qkv + ((size_t)t * heads + head) * d + c * 8);
                const float4* hi = reinterpret_cast<const float4*>(qkv + ((size_t)t * heads + head) * d + half + c * 8);
                x[n][0] = lo[0];
                x[n][1] = lo[1];
                x[n][2] = hi[0];
                x[n][3] = hi[1];
                const float4* r = reinterpret_cast<const float4*>(rope + (size_t)info[n].x * half + c * 8);
#pragma unroll
                for (int j = 0; j < 4; ++j) cs[n][j] = r[j];
            }
        }
#pragma unroll
        for (int n = 0; n < RQ_STEPS; ++n) {
            const unsigned i = base + n * 128, t = t0 + i / pc, c = i % pc;
            if (i >= items || t >= n_tokens) continue;
            const float a[8] = {x[n][0].x, x[n][0].y, x[n][0].z, x[n][0].w, x[n][1].x, x[n][1].y, x[n][1].z, x[n][1].w};
            const float b[8] = {x[n][2].x, x[n][2].y, x[n][2].z, x[n][2].w, x[n][3].x, x[n][3].y, x[n][3].z, x[n][3].w};
            // (cos, sin) of pair j: float4 j / 2 holds pairs 2 (j / 2) and 2 (j / 2) + 1.
            const float co[8] = {cs[n][0].x, cs[n][0].z, cs[n][1].x, cs[n][1].z, cs[n][2].x, cs[n][2].z, cs[n][3].x, cs[n][3].z};
            const float si[8] = {cs[n][0].y, cs[n][0].w, cs[n][1].y, cs[n][1].w, cs[n][2].y, cs[n][2].w, cs[n][3].y, cs[n][3].w};
            elem_t ea[8], eb[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const float a2 = a[j] * co[j] - b[j] * si[j];
                const float b2 = b[j] * co[j] + a[j] * si[j];
                ea[j] = from_f32(a2);
                eb[j] = from_f32(b2);
            }
            if (!is_k) {
                const size_t o = ((size_t)t * q_heads + head) * d + c * 8;
                store8(q + o, ea);
                store8(q + o + half, eb);
                continue;
            }
            const size_t o = ((size_t)t * kv_heads + kv) * d + c * 8;
            store8(k + o, ea);
            store8(k + o + half, eb);
            const unsigned slot = k_cache ? kv_slot(s, info[n].x, info[n].z) : ~0u;
            if (slot == ~0u) continue;
            const size_t co2 = ((size_t)info[n].y * row_slots + slot) * d + c * 8;
            store8(k_cache + co2, ea);
            store8(k_cache + co2 + half, eb);
        }
    }
}

// V of a prefill pass, written as moa_rope_kv writes it (V has no RoPE: packed v and its
// cache slots), and, where v_f16 is not null, the first half of the `u` prefill's V
// pre-pass (codegen::abi::Arg::VF16), so that only `{prefill}_vfix` is left to run before
// the prefill: v_f16 = f16(v) at scale 1 (the bits `{prefill}_vcvt` writes) and
// v_max[h] raised (atomicMax, zeroed by the host before the pass's first group) to the
// largest |v| of KV head h as bf16 bits. The maxima are exact for bf16 storage only,
// where that variant exists. qkv, tok, seg, v and v_cache as moa_rope_kv; v_f16 as v
// (16-bit values). Grid (ceil(n_tokens / 64), kv_heads), 128 threads: block (x, h) writes
// tokens 64 x .. 64 x + 63 of KV head h in chunks of 8 values (d % 8 == 0), each
// thread's loads of a step issued before its stores. One atomic per block: moa_rope_kv's
// one-token blocks would make one per token and head (0.5 M on 32 words at 16k tokens
// of 32 KV heads).
constexpr int VW_STEPS = 8;
extern "C" __global__ void __launch_bounds__(128)
moa_v_write(const float* __restrict__ qkv, const uint4* __restrict__ tok, const uint4* __restrict__ seg,
            elem_t* __restrict__ v, elem_t* __restrict__ v_cache, unsigned* __restrict__ v_f16,
            unsigned* __restrict__ v_max, unsigned n_tokens, unsigned q_heads, unsigned kv_heads, unsigned d,
            unsigned row_slots) {
    __shared__ unsigned red[4];
    const unsigned h = blockIdx.y, heads = q_heads + 2 * kv_heads, cpt = d / 8;
    const unsigned t0 = blockIdx.x * 64, chunks = 64 * cpt;
    const uint4 s = seg[h];
    unsigned mx = 0;
    for (unsigned base = threadIdx.x; base < chunks; base += 128 * VW_STEPS) {
        float4 a[VW_STEPS], b[VW_STEPS];
#pragma unroll
        for (int n = 0; n < VW_STEPS; ++n) {
            const unsigned i = base + n * 128, t = t0 + i / cpt;
            if (i < chunks && t < n_tokens) {
                const float4* src = reinterpret_cast<const float4*>(
                    qkv + ((size_t)t * heads + q_heads + kv_heads + h) * d + (i % cpt) * 8);
                a[n] = src[0];
                b[n] = src[1];
            }
        }
#pragma unroll
        for (int n = 0; n < VW_STEPS; ++n) {
            const unsigned i = base + n * 128, t = t0 + i / cpt, c = i % cpt;
            if (i >= chunks || t >= n_tokens) continue;
            const float x[8] = {a[n].x, a[n].y, a[n].z, a[n].w, b[n].x, b[n].y, b[n].z, b[n].w};
            elem_t e[8];
            float r[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                e[j] = from_f32(x[j]);
                r[j] = to_f32(e[j]);
            }
            const size_t o = ((size_t)t * kv_heads + h) * d + c * 8;
            const uint4 info = tok[t];
            const unsigned slot = v_cache ? kv_slot(s, info.x, info.z) : ~0u;
            const size_t co = ((size_t)info.y * row_slots + slot) * d + c * 8;
            store8(v + o, e);
            if (slot != ~0u) store8(v_cache + co, e);
            if (v_f16) {
                unsigned w[4];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    // f16x2: the first operand goes to the upper half (value 2j + 1).
                    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(w[j]) : "f"(r[2 * j + 1]), "f"(r[2 * j]));
                    // |v| as bf16 bits (the bf16 value's own bits in bf16 storage).
                    mx = max(mx, max((__float_as_uint(r[2 * j]) >> 16) & 0x7fffu,
                                     (__float_as_uint(r[2 * j + 1]) >> 16) & 0x7fffu));
                }
                reinterpret_cast<uint4*>(v_f16)[o / 8] = make_uint4(w[0], w[1], w[2], w[3]);
            }
        }
    }
    if (!v_f16) return;
    mx = __reduce_max_sync(0xffffffffu, mx);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        mx = max(max(red[0], red[1]), max(red[2], red[3]));
        if (mx != 0) atomicMax(v_max + h, mx);
    }
}

// out[t, j] = silu(gu[t, j]) * gu[t, ffn + j]; gu: [n_tokens, 2 ffn] f32 (gate, then up).
// Grid (ceil(ffn / 256), n_tokens).
extern "C" __global__ void moa_swiglu(const float* __restrict__ gu, elem_t* __restrict__ out,
                                      unsigned n_tokens, unsigned ffn) {
    const unsigned j = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (j >= ffn || t >= n_tokens) return;
    const float g = gu[(size_t)t * 2 * ffn + j];
    const float u = gu[(size_t)t * 2 * ffn + ffn + j];
    out[(size_t)t * ffn + j] = from_f32(g / (1.f + expf(-g)) * u);
}

// A decode projection of a few rows fused with its input RMSNorm (small models, whose
// decode step is bound by its launches, not its bytes). Per row r < n_rows:
// h = x[r] / sqrt(mean(x[r]^2) + eps) * norm_w, rounded to elem_t as moa_rmsnorm stores
// it; then for each output j < n_out
//   mode 0: out_f32[r, j] = sum_k W[j, k] h[k]                         (QKV projection)
//   mode 1: out_elem[r, j] = silu(g) * u, g = sum_k W[j, k] h[k],
//           u = sum_k W[n_out + j, k] h[k]                             (gate/up + SwiGLU)
// W: [n_out (2 n_out in mode 1), hidden] elem_t. One warp per output, 8 per block of 256
// threads; every block normalizes the rows into dynamic shared memory (n_rows * hidden
// floats, n_rows <= NORM_GEMV_ROWS). Grid (ceil(n_out / 8)).
#define NORM_GEMV_ROWS 32
extern "C" __global__ void moa_norm_gemv(const float* __restrict__ x, const float* __restrict__ norm_w,
                                         const elem_t* __restrict__ w, void* __restrict__ out,
                                         unsigned n_rows, unsigned hidden, unsigned n_out, float eps,
                                         unsigned mode) {
    extern __shared__ float hs[];
    __shared__ float red[THREADS / 32];
    for (unsigned r = 0; r < n_rows; ++r) {
        const float* xr = x + (size_t)r * hidden;
        float ss = 0.f;
        for (unsigned i = threadIdx.x; i < hidden; i += THREADS) {
            const float v = xr[i];
            ss += v * v;
        }
        const float inv = rsqrtf(block_sum(ss, red) / (float)hidden + eps);
        for (unsigned i = threadIdx.x; i < hidden; i += THREADS)
            hs[r * hidden + i] = to_f32(from_f32(xr[i] * inv * norm_w[i]));
    }
    __syncthreads();
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const unsigned j = blockIdx.x * (THREADS / 32) + warp;
    if (j >= n_out) return;  // no barrier follows
    float a[NORM_GEMV_ROWS], b[NORM_GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < NORM_GEMV_ROWS; ++r) {
        a[r] = 0.f;
        b[r] = 0.f;
    }
    const elem_t* wa = w + (size_t)j * hidden;
    const elem_t* wb = w + (size_t)(n_out + j) * hidden;
    for (unsigned k = lane; k < hidden; k += 32) {
        const float va = to_f32(wa[k]);
        const float vb = mode ? to_f32(wb[k]) : 0.f;
#pragma unroll
        for (int r = 0; r < NORM_GEMV_ROWS; ++r) {
            if (r < (int)n_rows) {
                const float h = hs[r * hidden + k];
                a[r] += va * h;
                b[r] += vb * h;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < NORM_GEMV_ROWS; ++r) {
        if (r < (int)n_rows) {
            float g = a[r], u = b[r];
            for (int o = 16; o > 0; o >>= 1) {
                g += __shfl_xor_sync(0xffffffffu, g, o);
                u += __shfl_xor_sync(0xffffffffu, u, o);
            }
            if (lane == 0) {
                if (mode)
                    ((elem_t*)out)[(size_t)r * n_out + j] = from_f32(g / (1.f + expf(-g)) * u);
                else
                    ((float*)out)[(size_t)r * n_out + j] = g;
            }
        }
    }
}

// tokens[r] = index of the largest logit of row r (the first on ties, NaN never wins), as
// model::reference::argmax. One block of 256 threads per row.
extern "C" __global__ void moa_argmax(const float* __restrict__ logits, unsigned* __restrict__ tokens,
                                      unsigned n_rows, unsigned vocab) {
    __shared__ float sv[THREADS];
    __shared__ unsigned si[THREADS];
    const unsigned r = blockIdx.x;
    if (r >= n_rows) return;
    const float* row = logits + (size_t)r * vocab;
    float best = __int_as_float(0xff800000u);  // -inf (no math.h under NVRTC)
    unsigned idx = 0xffffffffu;
    for (unsigned i = threadIdx.x; i < vocab; i += THREADS) {
        const float x = row[i];
        if (idx == 0xffffffffu ? !(x != x) : x > best) {
            best = x;
            idx = i;
        }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = idx;
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const float ov = sv[threadIdx.x + s];
            const unsigned oi = si[threadIdx.x + s];
            const float mv = sv[threadIdx.x];
            const unsigned mi = si[threadIdx.x];
            if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > mv || (ov == mv && oi < mi))) {
                sv[threadIdx.x] = ov;
                si[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) tokens[r] = si[0] == 0xffffffffu ? 0u : si[0];
}

// The order of a float as an unsigned key (larger float, larger key): the sign bit set for
// positives, every bit flipped for negatives (ops::order_key).
__device__ __forceinline__ unsigned order_key(float x) {
    const unsigned b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Temperature + top-k + top-p sampling, one block per row, as shaders/sample.wgsl: with
// top_k in 1..vocab-1, the candidates are the logits whose key reaches the k-th largest's
// (found bit by bit from the top: the largest key at least top_k logits reach; ties with
// the k-th stay in), else every logit; p_i = exp((l_i - max) / temperature) for a
// candidate, -1 for the others (below every threshold, left out of every sum); the nucleus
// {p_i >= tau}, tau the largest threshold (bisection, 30 steps) whose kept mass is >=
// top_p * sum p; then the kept token where the running mass (index order) crosses
// uniforms[r] * kept mass (ops::sample_ref).
extern "C" __global__ void moa_sample(const float* __restrict__ logits, const float* __restrict__ uniforms,
                                      unsigned* __restrict__ tokens, unsigned n_rows, unsigned vocab,
                                      float temperature, float top_p, unsigned top_k) {
    __shared__ float red[THREADS / 32];
    __shared__ float prefix[THREADS];
    const unsigned r = blockIdx.x;
    if (r >= n_rows) return;
    const float* row = logits + (size_t)r * vocab;
    const float inv_t = 1.f / temperature;
    float m = -3.4e38f;
    for (unsigned i = threadIdx.x; i < vocab; i += THREADS) m = fmaxf(m, row[i]);
    const float mx = block_max(m, red);
    unsigned cut = 0u;
    if (top_k > 0u && top_k < vocab) {
        for (int bit = 31; bit >= 0; --bit) {
            const unsigned cand = cut | (1u << bit);
            float count = 0.f;
            for (unsigned i = threadIdx.x; i < vocab; i += THREADS) count += order_key(row[i]) >= cand ? 1.f : 0.f;
            if (block_sum(count, red) >= (float)top_k) cut = cand;
        }
    }
#define MOA_P(i) (order_key(row[i]) >= cut ? expf((row[i] - mx) * inv_t) : -1.f)
    float z = 0.f;
    for (unsigned i = threadIdx.x; i < vocab; i += THREADS) z += fmaxf(MOA_P(i), 0.f);
    const float want = top_p * block_sum(z, red);
    float lo = 0.f, hi = 1.f;
    if (top_p < 1.f) {
        for (int step = 0; step < 30; ++step) {
            const float mid = 0.5f * (lo + hi);
            float kept = 0.f;
            for (unsigned i = threadIdx.x; i < vocab; i += THREADS) {
                const float p = MOA_P(i);
                kept += p >= mid ? p : 0.f;
            }
            if (block_sum(kept, red) >= want) lo = mid; else hi = mid;
        }
    }
    const float tau = lo;
    const unsigned chunk = (vocab + THREADS - 1) / THREADS;
    const unsigned start = min(threadIdx.x * chunk, vocab), end = min(start + chunk, vocab);
    float mine = 0.f;
    for (unsigned i = start; i < end; ++i) {
        const float p = MOA_P(i);
        mine += p >= tau ? p : 0.f;
    }
    prefix[threadIdx.x] = mine;
    __syncthreads();
    if (threadIdx.x == 0) {
        float acc = 0.f;
        for (int j = 0; j < THREADS; ++j) {
            const float x = prefix[j];
            prefix[j] = acc;
            acc += x;
        }
        red[0] = acc;
    }
    __syncthreads();
    const float goal = uniforms[r] * red[0];
    const float before = prefix[threadIdx.x];
    if (goal >= before && goal < before + mine) {
        float acc = before;
        unsigned pick = end - 1;
        for (unsigned i = start; i < end; ++i) {
            const float p = MOA_P(i);
            if (p >= tau) {
                acc += p;
                if (acc > goal) {
                    pick = i;
                    break;
                }
            }
        }
        tokens[r] = pick;
    }
    // Rounding can leave the goal at the very end of the mass: the last kept token wins.
    if (threadIdx.x == THREADS - 1 && goal >= before + mine) {
        unsigned last = 0;
        for (unsigned i = 0; i < vocab; ++i)
            if (MOA_P(i) >= tau) last = i;
        tokens[r] = last;
    }
#undef MOA_P
}

// SplitMix64: the counter-based generator of `ops::random_value` (same numbers on the host).
__device__ __forceinline__ unsigned long long splitmix(unsigned long long z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// w[i] = offset + scale * u_i, u_i uniform in [-1, 1) from (seed, i): random weights made
// on the device (a 7B model's weights cannot travel to the GPU machine). Grid-stride.
extern "C" __global__ void moa_fill_random(elem_t* __restrict__ w, unsigned long long n,
                                           unsigned long long seed, float scale, float offset) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long h = splitmix(seed ^ splitmix(i));
        const float u = (float)(h >> 40) * (1.f / 8388608.f) - 1.f;
        w[i] = from_f32(offset + scale * u);
    }
}

extern "C" __global__ void moa_fill_random_f32(float* __restrict__ w, unsigned long long n,
                                               unsigned long long seed, float scale, float offset) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long h = splitmix(seed ^ splitmix(i));
        const float u = (float)(h >> 40) * (1.f / 8388608.f) - 1.f;
        w[i] = offset + scale * u;
    }
}

// dst = src, 16 bytes per thread per step, grid-stride: the copy bandwidth the roofline
// of `moa bench` divides by (bytes read + written per second).
extern "C" __global__ void moa_copy(const uint4* __restrict__ src, uint4* __restrict__ dst,
                                    unsigned long long n16) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n16;
         i += (unsigned long long)gridDim.x * blockDim.x)
        dst[i] = src[i];
}
