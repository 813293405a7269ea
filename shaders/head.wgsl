// The LM head of a decode step: out[t, n] = Σ_k f(x)[t, k] · w[n, k] for up to 16 rows a
// workgroup row (the grid's y is ceil(rows / 16)) and a wide output (the vocabulary),
// with the final RMSNorm fused and, for greedy steps, the argmax's first stage in the
// epilogue (ARGMAX 1: no logits are written, only each workgroup's best (value, index)
// per row, which `argmax.wgsl`'s `moa_argmax_finish` reduces).
// The 16 rows of x are staged once per workgroup in workgroup memory, by tiles of
// TILE4 4-vectors of K. An invocation owns 4 columns × 4 rows (row group g) and every
// 4th 4-vector of K (its K part p; the 4 parts are neighbouring lanes, reduced with two
// shuffles at the end): per 4-vector of K it loads 4 weight vectors and 4 x vectors and
// does 64 multiply-adds. Why this shape (benches/RESULTS.md, wgpu session 10): one
// column per invocation over all 16 rows needs 16 workgroup-memory reads per 64
// multiply-adds, and a 49 152-column head then took as long as `matvec_sg.wgsl`'s
// (92 µs for 56.6 MB on the H200), bound by workgroup-memory bandwidth; here it is 4 per
// 64, and the 4 K parts keep 4 times the weight loads of a column in flight.
// The host prepends `alias wtype = ...;`; the K reduction uses subgroup shuffles, so it
// runs where the adapter has a fixed subgroup size of at least 4 (as `matvec_sg.wgsl`).
// x and w are read as 4-vectors: K must be a multiple of 4.
//
// NORM 1: RMSNorm(x) · norm (the sums of squares taken while x is staged, the row scale
// applied to the sums at the end: Σ_k (x_k·s·g_k)·w_nk = s·Σ_k (x_k·g_k)·w_nk);
// NORM 0: x as is.
override NORM: u32 = 1u;
// 1: write (value, index) pairs per row and workgroup instead of the logits.
override ARGMAX: u32 = 0u;
// The adapter's subgroup size (a power of two from 8 to 64): lane quartets are the 4 K
// parts of one (column group, row group).
override SG: u32 = 32u;

// Invocations per workgroup: 16 column groups × 4 row groups × 4 K parts.
const WG: u32 = 256u;
// Output columns per workgroup.
const COLS: u32 = 64u;
// 4-vectors of K staged per tile: 48 × 18 × 16 bytes = 13.5 KiB of workgroup memory
// (with `best`, under the 16 KiB every WebGPU adapter offers).
const TILE4: u32 = 48u;
// xs holds K step j's 16 rows at j * XSTRIDE + 4 i + g for row 4g + i; the 2 spare
// vectors per step put the 4 K parts of a lane quartet on different banks.
const XSTRIDE: u32 = 18u;

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

// After the K loop, xs[lid].x holds each invocation's sum of squares of its staging
// row (lid % 16).
var<workgroup> xs: array<vec4<f32>, 864>;
// Per (row, column group): the best (value bits, index) of its 4 columns.
var<workgroup> best: array<vec2<u32>, 256>;

// A K step's 4 weight vectors (one per column), as stored.
struct WK {
    c0: vec4<wtype>,
    c1: vec4<wtype>,
    c2: vec4<wtype>,
    c3: vec4<wtype>,
}

// Column c's weight vector at K step j of the tile (zero past its `len` steps; the
// index clamped into the row first, so every lane loads).
fn wv(base: u32, kt: u32, len: u32, j: u32) -> vec4<wtype> {
    let v = w[base + kt + min(j, len - 1u)];
    return select(vec4<wtype>(0.0), v, j < len);
}

fn wk(bases: vec4<u32>, kt: u32, len: u32, j: u32) -> WK {
    return WK(wv(bases.x, kt, len, j), wv(bases.y, kt, len, j), wv(bases.z, kt, len, j), wv(bases.w, kt, len, j));
}

// Adds K step j of the tile for rows 4g..4g+4: acc[i][c] += Σ w_c · x_{4g+i}.
fn step(acc: mat4x4<f32>, v: WK, j: u32, g: u32) -> mat4x4<f32> {
    let wt = transpose(mat4x4<f32>(vec4<f32>(v.c0), vec4<f32>(v.c1), vec4<f32>(v.c2), vec4<f32>(v.c3)));
    let b = j * XSTRIDE + g;
    return acc + wt * mat4x4<f32>(xs[b], xs[b + 4u], xs[b + 8u], xs[b + 12u]);
}

fn shufm(m: mat4x4<f32>, mask: u32) -> mat4x4<f32> {
    return mat4x4<f32>(
        subgroupShuffleXor(m[0], mask),
        subgroupShuffleXor(m[1], mask),
        subgroupShuffleXor(m[2], mask),
        subgroupShuffleXor(m[3], mask),
    );
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
    // Lane quartets of a subgroup are the 4 K parts of one (column group, row group).
    let part = lane % 4u;
    let quartet = sg * (SG / 4u) + lane / 4u;
    let g = quartet % 4u;
    let cg = quartet / 4u;
    let n0 = wid.x * COLS + cg * 4u;
    // Columns past the end compute the last one and write nothing (every invocation
    // reaches the barriers and the shuffles).
    let last = params.n_out - 1u;
    let bases = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last)) * k4;
    // This invocation stages row lid % 16 of every tile (WG is a multiple of 16).
    let r_st = lid % 16u;
    let t_st = min(t0 + r_st, params.n_rows - 1u);
    let live_row = t0 + r_st < params.n_rows;
    let xo = (r_st % 4u) * 4u + r_st / 4u;
    var ss = 0.0;
    var acc = mat4x4<f32>();
    for (var kt = 0u; kt < k4; kt += TILE4) {
        let len = min(TILE4, k4 - kt);
        // The first two steps' weights are in flight across the staging barriers.
        var cur0 = wk(bases, kt, len, part);
        var cur1 = wk(bases, kt, len, part + 4u);
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
            xs[j * XSTRIDE + xo] = v;
        }
        workgroupBarrier();
        // Two of this lane's steps a trip (every 4th step of the tile, from its part),
        // the next two's weights loaded before these are used.
        for (var j = part; j < len; j += 8u) {
            let next0 = wk(bases, kt, len, j + 8u);
            let next1 = wk(bases, kt, len, j + 12u);
            acc = step(acc, cur0, j, g);
            if (j + 4u < len) {
                acc = step(acc, cur1, j + 4u, g);
            }
            cur0 = next0;
            cur1 = next1;
        }
    }
    // The 4 K parts of the quartet: every lane ends with the whole sums.
    acc += shufm(acc, 1u);
    acc += shufm(acc, 2u);
    // The last tile's readers are done with xs.
    workgroupBarrier();
    xs[lid] = vec4<f32>(ss, 0.0, 0.0, 0.0);
    workgroupBarrier();
    // Row 4g + i's scale.
    var scale = vec4<f32>(1.0);
    if (NORM == 1u) {
        for (var i = 0u; i < 4u; i++) {
            var s = 0.0;
            for (var l = 4u * g + i; l < WG; l += 16u) {
                s += xs[l].x;
            }
            scale[i] = inverseSqrt(s / f32(params.k) + params.eps);
        }
    }
    let col = params.col_offset + n0;
    for (var i = 0u; i < 4u; i++) {
        let r = 4u * g + i;
        let t = t0 + r;
        let v = acc[i] * scale[i];
        if (ARGMAX == 0u) {
            if (part == 0u && t < params.n_rows) {
                for (var c = 0u; c < 4u; c++) {
                    if (n0 + c < params.n_out) {
                        out[t * params.out_stride + col + c] = v[c];
                    }
                }
            }
        } else if (part == 0u) {
            // The best of the 4 columns, lowest index on ties (as torch.argmax).
            var bv = -3.4e38;
            var bi = 0xffffffffu;
            for (var c = 0u; c < 4u; c++) {
                if (n0 + c < params.n_out && v[c] > bv) {
                    bv = v[c];
                    bi = col + c;
                }
            }
            best[r * 16u + cg] = vec2<u32>(bitcast<u32>(bv), bi);
        }
    }
    if (ARGMAX == 1u) {
        workgroupBarrier();
        let t = t0 + lid;
        if (lid < 16u && t < params.n_rows) {
            var bv = -3.4e38;
            var bi = 0xffffffffu;
            for (var c = 0u; c < 16u; c++) {
                let p = best[lid * 16u + c];
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
