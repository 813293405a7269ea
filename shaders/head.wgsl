// The LM head of a decode step: out[t, n] = Σ_k f(x)[t, k] · w[n, k] for up to 16 rows a
// workgroup row (the grid's y is ceil(rows / 16)) and a wide output (the vocabulary),
// with the final RMSNorm fused and, for greedy steps, the argmax's first stage in the
// epilogue (ARGMAX 1: no logits are written, only each workgroup's best (value, index)
// per row, which `argmax.wgsl`'s `moa_argmax_finish` reduces).
// `matvec_sg.wgsl` gives a subgroup 4 columns and splits K over its lanes: each of the
// 12 288 subgroups of a 49 152-column head re-reads the 16 rows of x, then reduces 80
// sums across its lanes. Here each invocation owns one column and walks all of K, so no
// cross-lane reduction is needed, and the 16 rows of x are staged once per workgroup in
// workgroup memory, where every invocation reads the same address at the same time (a
// broadcast): per 4-vector of K, one weight load feeds 16 rows.
// The host prepends `alias wtype = ...;` (and the subgroup built-ins need an adapter
// with a fixed subgroup size, as for `matvec_sg.wgsl`). x and w are read as 4-vectors: K
// must be a multiple of 4.
//
// NORM 1: RMSNorm(x) · norm (the sums of squares taken while x is staged, the row scale
// applied to the sums at the end: Σ_k (x_k·s·g_k)·w_nk = s·Σ_k (x_k·g_k)·w_nk);
// NORM 0: x as is.
override NORM: u32 = 1u;
// 1: write (value, index) pairs per row and workgroup instead of the logits.
override ARGMAX: u32 = 0u;
// The adapter's subgroup size (a power of two from 8 to 64).
override SG: u32 = 32u;

// Invocations (= output columns) per workgroup.
const WG: u32 = 128u;
// 4-vectors of K staged per tile: 16 rows × 48 × 16 bytes = 12 KiB of workgroup memory
// (with the rest, under the 16 KiB every WebGPU adapter offers).
const TILE4: u32 = 48u;

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    // Pairs per row in `pairs` (every part's workgroups together).
    blocks: u32,
    eps: f32,
    out_stride: u32,
    // This part's first column in the whole output, and its first pair of a row.
    col_offset: u32,
    block0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<wtype>>;
@group(0) @binding(3) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// [rows, blocks] × (f32 bits of the value, index), as `argmax.wgsl`'s stage 1 writes.
@group(0) @binding(5) var<storage, read_write> pairs: array<u32>;

// xs[k4 * 16 + r] = x[t0 + r, 4 (kt + k4) ..][× norm]: a K step's 16 rows are 16
// consecutive 4-vectors.
var<workgroup> xs: array<vec4<f32>, 768>;
// Per invocation, the sum of squares of its staging row (lid % 16).
var<workgroup> ss_part: array<f32, WG>;
// Per (subgroup, row): the subgroup's best (value bits, index).
var<workgroup> best: array<vec2<u32>, 256>;

// Sums of the 16 rows (a0: rows 0..4, …).
struct Acc {
    a0: vec4<f32>,
    a1: vec4<f32>,
    a2: vec4<f32>,
    a3: vec4<f32>,
}

// The weights of four K steps from j (zero past the tile's `len`).
struct W4 {
    w0: vec4<f32>,
    w1: vec4<f32>,
    w2: vec4<f32>,
    w3: vec4<f32>,
}

fn wv(base: u32, kt: u32, len: u32, j: u32) -> vec4<f32> {
    // Clamped into the row, then zeroed: lanes of one subgroup stay on one path.
    let v = vec4<f32>(w[base + kt + min(j, len - 1u)]);
    return select(vec4<f32>(0.0), v, j < len);
}

fn w4(base: u32, kt: u32, len: u32, j: u32) -> W4 {
    return W4(wv(base, kt, len, j), wv(base, kt, len, j + 1u), wv(base, kt, len, j + 2u), wv(base, kt, len, j + 3u));
}

// K step j of the staged tile for the 16 rows, weight vector v.
fn step(acc: Acc, v: vec4<f32>, j: u32) -> Acc {
    let b = j * 16u;
    var r = acc;
    r.a0 += v * mat4x4<f32>(xs[b], xs[b + 1u], xs[b + 2u], xs[b + 3u]);
    r.a1 += v * mat4x4<f32>(xs[b + 4u], xs[b + 5u], xs[b + 6u], xs[b + 7u]);
    r.a2 += v * mat4x4<f32>(xs[b + 8u], xs[b + 9u], xs[b + 10u], xs[b + 11u]);
    r.a3 += v * mat4x4<f32>(xs[b + 12u], xs[b + 13u], xs[b + 14u], xs[b + 15u]);
    return r;
}

// Row r's sum (0..16).
fn row_sum(acc: Acc, r: u32) -> f32 {
    let g = r / 4u;
    var v = acc.a0;
    if (g == 1u) {
        v = acc.a1;
    } else if (g == 2u) {
        v = acc.a2;
    } else if (g == 3u) {
        v = acc.a3;
    }
    return v[r % 4u];
}

@compute @workgroup_size(WG)
fn moa_head(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * 16u;
    if (t0 >= params.n_rows) {
        return;
    }
    let k4 = params.k / 4u;
    let n = wid.x * WG + lid;
    // Columns past the end compute the last one and write nothing (every invocation
    // reaches the barriers and the subgroup operations).
    let base = min(n, params.n_out - 1u) * k4;
    // This invocation stages row lid % 16 of every tile (WG is a multiple of 16).
    let r_st = lid % 16u;
    let t_st = min(t0 + r_st, params.n_rows - 1u);
    let live_row = t0 + r_st < params.n_rows;
    var ss = 0.0;
    var acc = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var kt = 0u; kt < k4; kt += TILE4) {
        let len = min(TILE4, k4 - kt);
        // The first four K steps' weights are in flight across the staging barriers.
        var cur = w4(base, kt, len, 0u);
        // The last tile's readers are done.
        workgroupBarrier();
        for (var e = lid; e < TILE4 * 16u; e += WG) {
            let j = e / 16u;
            var v = vec4<f32>(0.0);
            if (j < len && live_row) {
                v = x[t_st * k4 + kt + j];
                ss += dot(v, v);
                if (NORM == 1u) {
                    v *= norm[kt + j];
                }
            }
            xs[e] = v;
        }
        workgroupBarrier();
        // Four K steps a trip, the next four's weights loaded before these are used.
        for (var j = 0u; j < len; j += 4u) {
            let next = w4(base, kt, len, j + 4u);
            acc = step(acc, cur.w0, j);
            acc = step(acc, cur.w1, j + 1u);
            acc = step(acc, cur.w2, j + 2u);
            acc = step(acc, cur.w3, j + 3u);
            cur = next;
        }
    }
    ss_part[lid] = ss;
    workgroupBarrier();
    let col = params.col_offset + n;
    for (var r = 0u; r < 16u; r++) {
        var scale = 1.0;
        if (NORM == 1u) {
            var s = 0.0;
            for (var i = r; i < WG; i += 16u) {
                s += ss_part[i];
            }
            scale = inverseSqrt(s / f32(params.k) + params.eps);
        }
        let v = row_sum(acc, r) * scale;
        let t = t0 + r;
        if (ARGMAX == 0u) {
            if (t < params.n_rows && n < params.n_out) {
                out[t * params.out_stride + col] = v;
            }
        } else {
            // The subgroup's best of row r, lowest index on ties (as torch.argmax).
            let vv = select(-3.4e38, v, n < params.n_out);
            let m = subgroupMax(vv);
            let i = subgroupMin(select(0xffffffffu, col, vv == m));
            if (lane == 0u) {
                best[sg * 16u + r] = vec2<u32>(bitcast<u32>(m), i);
            }
        }
    }
    if (ARGMAX == 1u) {
        workgroupBarrier();
        let t = t0 + lid;
        if (lid < 16u && t < params.n_rows) {
            var bv = -3.4e38;
            var bi = 0xffffffffu;
            for (var s = 0u; s < WG / SG; s++) {
                let p = best[s * 16u + lid];
                let v = bitcast<f32>(p.x);
                if (v > bv || (v == bv && p.y < bi)) {
                    bv = v;
                    bi = p.y;
                }
            }
            let o = (t * params.blocks + params.block0 + wid.x) * 2u;
            pairs[o] = bitcast<u32>(bv);
            pairs[o + 1u] = bi;
        }
    }
}
