// Prefill products on matrix units: out[t, n] = Σ_k x[t, k] · w[n, k] (+ residual[t, n]),
// the same contract as linear.wgsl (its Params, bindings and output slice), with the
// multiply-adds in 16 × 16 × 16 cooperative matrices (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX:
// VK_KHR_cooperative_matrix on Vulkan, simdgroup matrices on Metal).
//
// A workgroup owns a 128-token × 128-column tile of `out` and is NSG = 8 subgroups of SG
// invocations; subgroup s owns the 64 × 32 block (s / 4, s % 4) of the tile: 4 × 2
// accumulator fragments, so each 16-wide step of K loads 4 A and 2 B fragments from
// workgroup memory for 8 multiply-adds (the 64 × 64 kernel before it: 4 for 4).
// 48 KiB of workgroup memory. Session 27 on the H200 (benches/RESULTS.md): 38-54
// TFLOP/s at SmolLM2's prefill shapes built without naga's runtime checks, 21-25 with
// them (their loop counters keep the driver from unrolling fetch/stage, so xr / wr live
// in local memory); 128 × 64 tiles with 4 subgroups 10-12; the 64 × 64 kernel 8.5-9.5.
// Session 28, the direct write-out: 55-67 TFLOP/s alone with a residual (qkv 55 with
// DIRECT 1; out 55.6, gate/up 63.5, down 67.2 with DIRECT 2) against the 64-66 of a
// 4096³ matrix-unit GEMM; now the loads bound it (2.5× faster without them at K = 1536).
// K runs in stages of 32, double-buffered: while the matrix units work on stage s, every
// invocation holds stage s + 1's slices of x and w in registers (16-byte loads: 4 f32 of
// x or 4 f16 of w each), converts x to f16 and writes them to the other buffer after the
// multiply-adds; one barrier a stage. Loads are 4-vectors where K is a multiple of 4 and
// the 4 elements lie inside the matrices, else element by element, zero outside (any K,
// token count and column count work). Rows in workgroup memory are padded to 40 halves
// (80 bytes), so the fragments' 16-byte row pieces fall on different banks.
// Epilogue (session 28): a subgroup whose 64 × 32 block lies inside `out` (every block
// of a whole tile; DIRECT 2 also edge tiles' inner blocks), with the output's stride and
// first column multiples of 4 (every fragment's rows start on 16 bytes, as
// VK_KHR_cooperative_matrix asks) and an f32 accumulator, stores its fragments straight
// to `out` (`coopStoreT`), the residual loaded as the accumulators' initial value; the
// other blocks (or all, with DIRECT 0 or an f16 accumulator) store one fragment at a time
// to the subgroup's 16 × 16 scratch and its invocations write it out (bounded, strided,
// + residual). The host appends `store_c` / `load_c` and `DIRECT_OK` (coop_linear_direct
// for f32 accumulators; stubs and false for f16, whose fragments cannot be stored to f32).
// The accumulator is `ctype` (f32 where the adapter offers f16 × f16 → f32, else f16).
// The host prepends the `enable` lines and `alias wtype = f16; alias xtype = ...;
// alias ctype = ...;` (weights must be f16: the matrix units take f16 operands).

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    _eps: u32,
    out_stride: u32,
    col_offset: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// x and w as 4-vectors (16 and 8 bytes): element i is x[i / 4][i % 4].
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<wtype>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The subgroup size (set by the host from the adapter; the workgroup is NSG subgroups).
override SG: u32 = 32u;
// Timing diagnostic (wrong results; `product_bench` only): 1 no loads after the first
// stage, 2 no multiply-adds, 3 no write-out. 0: the product.
override DIAG: u32 = 0u;
// 2 (the default): whole tiles and the 64 × 32 blocks of edge tiles that lie inside
// `out` store their fragments straight to it; 1: whole tiles only; 0: every tile through
// the scratch (session 27's epilogue). Session 28 on the H200 (benches/RESULTS.md): the
// prefill pass's products 150.7 → 133 ms (2) and 140 ms (1); 160 registers (0: 164).
override DIRECT: u32 = 2u;

// Tile: TM tokens × TN columns; K stages of KS; workgroup rows padded to KP halves.
const TM: u32 = 128u;
const TN: u32 = 128u;
// Subgroups a workgroup, and of them across the tile's columns.
const NSN: u32 = TN / 32u;
const NSG: u32 = (TM / 64u) * NSN;
const KS: u32 = 32u;
const KP: u32 = 40u;
// 4-vectors a stage: x's TM × KS / 4 and w's TN × KS / 4, and the most a thread holds
// (subgroups of 16 or more: 64 or more invocations). A thread takes XV / threads and
// WV / threads of them: constants once SG is set, so the driver unrolls the loops and
// keeps xr / wr in registers.
const XV: u32 = TM * KS / 4u;
const WV: u32 = TN * KS / 4u;
const XR: u32 = 16u;
const WR: u32 = 8u;

// Two stages of x ([TM tokens][KP]) and w ([TN columns][KP]), row-major.
var<workgroup> xs: array<f16, 2u * TM * KP>;
var<workgroup> ws: array<f16, 2u * TN * KP>;
// One finished 16 × 16 fragment per subgroup, row-major, for the bounded write-out.
var<workgroup> cs: array<ctype, NSG * 256u>;

// Next stage's slices, in registers while the current stage multiplies.
var<private> xr: array<vec4<f32>, XR>;
var<private> wr: array<vec4<f16>, WR>;

fn x_at(i: u32) -> f32 {
    return f32(x[i >> 2u][i & 3u]);
}

fn w_at(i: u32) -> f16 {
    return f16(w[i >> 2u][i & 3u]);
}

// Loads stage k0's slices into xr / wr: thread lid takes 4-vectors lid + j · threads
// (threads = SG · NSG).
fn fetch(k0: u32, t0: u32, n0: u32, lid: u32) {
    let threads = SG * NSG;
    let kk = params.k;
    let vec_ok = (kk & 3u) == 0u;
    for (var j = 0u; j < min(XV / threads, XR); j++) {
        let i = lid + j * threads;
        {
            let r = i / (KS / 4u);
            let k = k0 + (i % (KS / 4u)) * 4u;
            let t = t0 + r;
            var v = vec4<f32>(0.0);
            if (t < params.n_rows) {
                if (vec_ok && k + 4u <= kk) {
                    v = vec4<f32>(x[(t * kk + k) >> 2u]);
                } else {
                    for (var c = 0u; c < 4u; c++) {
                        if (k + c < kk) {
                            v[c] = x_at(t * kk + k + c);
                        }
                    }
                }
            }
            xr[j] = v;
        }
    }
    for (var j = 0u; j < min(WV / threads, WR); j++) {
        let i = lid + j * threads;
        {
            let r = i / (KS / 4u);
            let k = k0 + (i % (KS / 4u)) * 4u;
            let n = n0 + r;
            var v = vec4<f16>(0.0);
            if (n < params.n_out) {
                if (vec_ok && k + 4u <= kk) {
                    v = w[(n * kk + k) >> 2u];
                } else {
                    for (var c = 0u; c < 4u; c++) {
                        if (k + c < kk) {
                            v[c] = w_at(n * kk + k + c);
                        }
                    }
                }
            }
            wr[j] = v;
        }
    }
}

// Writes the registers' stage into buffer `b` (x converted to f16).
fn stage(b: u32, lid: u32) {
    let threads = SG * NSG;
    for (var j = 0u; j < min(XV / threads, XR); j++) {
        let i = lid + j * threads;
        {
            let o = b * TM * KP + (i / (KS / 4u)) * KP + (i % (KS / 4u)) * 4u;
            let v = vec4<f16>(xr[j]);
            xs[o] = v.x;
            xs[o + 1u] = v.y;
            xs[o + 2u] = v.z;
            xs[o + 3u] = v.w;
        }
    }
    for (var j = 0u; j < min(WV / threads, WR); j++) {
        let i = lid + j * threads;
        {
            let o = b * TN * KP + (i / (KS / 4u)) * KP + (i % (KS / 4u)) * 4u;
            let v = wr[j];
            ws[o] = v.x;
            ws[o + 1u] = v.y;
            ws[o + 2u] = v.z;
            ws[o + 3u] = v.w;
        }
    }
}

// Writes fragment (tr, tc) of the tile, already in this subgroup's scratch at `base`
// (nothing where `skip`: a block stored directly).
fn write_out(base: u32, t: u32, n: u32, lane: u32, skip: bool) {
    for (var e = lane; e < 256u && DIAG != 3u && !skip; e += SG) {
        let tt = t + e / 16u;
        let nn = n + e % 16u;
        if (tt < params.n_rows && nn < params.n_out) {
            let o = tt * params.out_stride + params.col_offset + nn;
            var v = f32(cs[base + e]);
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}

@compute @workgroup_size(SG * NSG)
fn moa_coop_linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * TN;
    let t0 = wid.y * TM;
    // No early return (naga requires the matrix ops in uniform control flow without
    // one): a workgroup outside the output, which the host never launches, stages zeros
    // and writes nothing.
    let s = lid / SG;
    let lane = lid % SG;
    // This subgroup's 64 × 32 block: rows tr.., columns tc.. of the tile.
    let tr = (s / NSN) * 64u;
    let tc = (s % NSN) * 32u;
    var c00 = coop_mat16x16<ctype, C>();
    var c01 = coop_mat16x16<ctype, C>();
    var c10 = coop_mat16x16<ctype, C>();
    var c11 = coop_mat16x16<ctype, C>();
    var c20 = coop_mat16x16<ctype, C>();
    var c21 = coop_mat16x16<ctype, C>();
    var c30 = coop_mat16x16<ctype, C>();
    var c31 = coop_mat16x16<ctype, C>();
    // Fragment rows on 16 bytes (the direct loads' and stores' alignment).
    let aligned = DIRECT_OK && DIRECT != 0u && (params.out_stride & 3u) == 0u
        && (params.col_offset & 3u) == 0u;
    // The whole tile inside `out`: uniform across the workgroup (its id and the uniform
    // Params only), as the barriers of the scratch write-out it skips require.
    let whole = aligned && t0 + TM <= params.n_rows && n0 + TN <= params.n_out;
    // This subgroup's 64 × 32 block stores directly: the whole tile's, or with DIRECT 2
    // an edge tile's blocks that lie inside `out` (uniform across the subgroup only: its
    // matrix operations are the subgroup's, and naga checks uniformity a workgroup).
    let mine = whole || (aligned && DIRECT == 2u && t0 + tr + 64u <= params.n_rows
        && n0 + tc + 32u <= params.n_out);
    let ld = params.out_stride;
    // This subgroup's first element of `out` (and of `residual`, laid out alike).
    let o = (t0 + tr) * ld + params.col_offset + n0 + tc;
    if (mine && params.add_residual == 1u) {
        c00 = load_c(o, ld);
        c01 = load_c(o + 16u, ld);
        c10 = load_c(o + 16u * ld, ld);
        c11 = load_c(o + 16u * ld + 16u, ld);
        c20 = load_c(o + 32u * ld, ld);
        c21 = load_c(o + 32u * ld + 16u, ld);
        c30 = load_c(o + 48u * ld, ld);
        c31 = load_c(o + 48u * ld + 16u, ld);
    }
    let steps = (params.k + KS - 1u) / KS;
    fetch(0u, t0, n0, lid);
    stage(0u, lid);
    workgroupBarrier();
    for (var st = 0u; st < steps; st++) {
        let b = st & 1u;
        let more = st + 1u < steps;
        if (more && DIAG != 1u) {
            fetch((st + 1u) * KS, t0, n0, lid);
        }
        let xb = b * TM * KP + tr * KP;
        let wb = b * TN * KP + tc * KP;
        for (var kk = 0u; kk < KS && DIAG != 2u; kk += 16u) {
            // A = x (row-major, tokens × k); B = wᵀ, i.e. w's rows read column-major.
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[wb + kk], KP);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[wb + 16u * KP + kk], KP);
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + kk], KP);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 16u * KP + kk], KP);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            let a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 32u * KP + kk], KP);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            let a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 48u * KP + kk], KP);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
        }
        if (more && DIAG != 1u) {
            stage(1u - b, lid);
        }
        workgroupBarrier();
    }
    if (mine && DIAG != 3u) {
        store_c(c00, o, ld);
        store_c(c01, o + 16u, ld);
        store_c(c10, o + 16u * ld, ld);
        store_c(c11, o + 16u * ld + 16u, ld);
        store_c(c20, o + 32u * ld, ld);
        store_c(c21, o + 32u * ld + 16u, ld);
        store_c(c30, o + 48u * ld, ld);
        store_c(c31, o + 48u * ld + 16u, ld);
    }
    if (whole) {
        return;
    }
    let base = s * 256u;
    let t = t0 + tr;
    let n = n0 + tc;
    coopStoreT(c00, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c01, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c10, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 16u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c11, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 16u, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c20, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 32u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c21, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 32u, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c30, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 48u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c31, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 48u, n + 16u, lane, mine);
}
