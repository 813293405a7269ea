// Decode-sized products: out[t, n] = Σ_k x[t, k] · w[n, k] (+ residual) for few rows.
// `linear.wgsl` gives each invocation a whole dot product, which leaves most of a big
// GPU idle when there are only a few rows (576 outputs = 3 workgroups) and serialises
// the K loop on memory latency. Here a workgroup owns 4 output columns × up to 4 rows
// and its 64 invocations split K, then reduce in workgroup memory.
// ROW_BLOCK rows share a workgroup (4, 8 or 16): each weight element loaded is used for
// all of them, so a decode step of up to ROW_BLOCK rows reads each weight once (with 4,
// a 16-row step reads every weight 4 times, once per block of 4 rows). 4 is the default:
// on the H200 16 was slower (fewer workgroups for latency-bound products; RESULTS.md).
// The host prepends `alias wtype = ...; alias xtype = ...;`.
//
// INPUT_MODE fuses the op before the product into its input load, because a decode
// step is bound by its number of dispatches, not by bytes (benches/RESULTS.md):
// 0: x as is;
// 1: RMSNorm(x) · norm: the sum of squares of each row is accumulated in the same K
//    loop, and since Σ_k (x_k·s·g_k)·w_nk = s·Σ_k (x_k·g_k)·w_nk the scale s is applied
//    once after the reduction (the row's whole K passes through this workgroup);
// 2: SwiGLU of a fused [gate | up] row of width 2K: x_k = silu(gate_k) · up_k.
// (A mode 3 that merged the decode attention's partials in the output product's input
// load was slower than the separate merge kernel and was deleted: RESULTS.md, wgpu
// session 8, call 2.)
override INPUT_MODE: u32 = 0u;
// Rows per workgroup: 4, 8 or 16 (the grid's y is ceil(rows / ROW_BLOCK)).
override ROW_BLOCK: u32 = 4u;

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    // INPUT_MODE 1 only.
    eps: f32,
    // Output row stride and first output column: a weight split by output rows across
    // bindings (DESIGN.md §7) writes its slice of each output row.
    out_stride: u32,
    col_offset: u32,
    // Quantized weights' format (quant_weights.wgsl); 0 for weights in the storage type.
    quant: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<xtype>;
// Binding 2 (w) and load_w(col, i) come from the weight source prepended by the host:
// matvec_weights.wgsl (the storage type) or quant_weights.wgsl + matvec_weights_quant.wgsl.
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// INPUT_MODE 1 only (bound to a dummy otherwise).
@group(0) @binding(5) var<storage, read> norm: array<f32>;

const THREADS: u32 = 64u;
const MAX_ROW_BLOCK: u32 = 16u;
// Per invocation: 4 rows × 4 columns of partial sums, then the 4 rows' sums of squares
// (one group of 4 rows of the block at a time).
var<workgroup> red: array<array<vec4<f32>, 5>, 64>;
// The block's reduced sums: res[r] = the 4 columns of row r; res[16 + g] = the sums of
// squares of rows 4g..4g+4.
var<workgroup> res: array<vec4<f32>, 20>;
fn load4(o: u32) -> vec4<f32> {
    return vec4<f32>(f32(x[o]), f32(x[o + 1u]), f32(x[o + 2u]), f32(x[o + 3u]));
}

// The product's input at (row, i..i+4), before any RMSNorm scale.
fn load_x(row: u32, i: u32) -> vec4<f32> {
    if (INPUT_MODE == 2u) {
        let o = row * 2u * params.k + i;
        let g = load4(o);
        return g / (1.0 + exp(-g)) * load4(o + params.k);
    }
    return load4(row * params.k + i);
}

// Accumulates the block of rows t0..t0+ROW_BLOCK (clamped) × the 4 output columns
// `cols` of this part of `w` into res: res[r][c] = Σ_k f(x)[t0 + r, k] · w[cols[c], k],
// and res[16 + g][j] = Σ_k x[t0 + 4g + j, k]² (INPUT_MODE 1). Called in uniform control
// flow (it ends on a barrier).
fn block_product(cols: vec4<u32>, t0: u32, lid: u32) {
    let last_row = params.n_rows - 1u;
    var acc: array<vec4<f32>, MAX_ROW_BLOCK>;
    var ss: array<vec4<f32>, 4>;
    for (var r = 0u; r < ROW_BLOCK; r++) {
        acc[r] = vec4<f32>(0.0);
    }
    for (var g = 0u; g < 4u; g++) {
        ss[g] = vec4<f32>(0.0);
    }
    for (var i = lid * 4u; i < params.k; i += THREADS * 4u) {
        // Each weight element is loaded once for the whole block of rows.
        let w0 = load_w(cols.x, i);
        let w1 = load_w(cols.y, i);
        let w2 = load_w(cols.z, i);
        let w3 = load_w(cols.w, i);
        var g = vec4<f32>(1.0);
        if (INPUT_MODE == 1u) {
            g = vec4<f32>(norm[i], norm[i + 1u], norm[i + 2u], norm[i + 3u]);
        }
        for (var r = 0u; r < ROW_BLOCK; r++) {
            var xr = load_x(min(t0 + r, last_row), i);
            if (INPUT_MODE == 1u) {
                ss[r / 4u][r % 4u] += dot(xr, xr);
                xr *= g;
            }
            acc[r] += vec4<f32>(dot(xr, w0), dot(xr, w1), dot(xr, w2), dot(xr, w3));
        }
    }
    // One tree reduction per group of 4 rows through `red`, the result kept in `res`.
    for (var g = 0u; g < ROW_BLOCK / 4u; g++) {
        red[lid] = array<vec4<f32>, 5>(acc[4u * g], acc[4u * g + 1u], acc[4u * g + 2u], acc[4u * g + 3u], ss[g]);
        workgroupBarrier();
        for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
            if (lid < s) {
                for (var r = 0u; r < 5u; r++) {
                    red[lid][r] += red[lid + s][r];
                }
            }
            workgroupBarrier();
        }
        if (lid < 5u) {
            if (lid < 4u) {
                res[4u * g + lid] = red[0][lid];
            } else {
                res[16u + g] = red[0][4];
            }
        }
        // `red` is rewritten by the next group only after every invocation read it.
        workgroupBarrier();
    }
}

// The RMSNorm scale of row r of the block (1 unless INPUT_MODE 1).
fn row_scale(r: u32) -> f32 {
    if (INPUT_MODE == 1u) {
        return inverseSqrt(res[16u + r / 4u][r % 4u] / f32(params.k) + params.eps);
    }
    return 1.0;
}

@compute @workgroup_size(64)
fn moa_matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let n0 = wid.x * 4u;
    let t0 = wid.y * ROW_BLOCK;
    // Uniform per workgroup, so the barriers below are reached by all or none.
    if (n0 >= params.n_out || t0 >= params.n_rows) {
        return;
    }
    let last_col = params.n_out - 1u;
    let cols = vec4<u32>(n0, min(n0 + 1u, last_col), min(n0 + 2u, last_col), min(n0 + 3u, last_col));
    block_product(cols, t0, lid);
    // One invocation per (row, column) of the block writes.
    let r = lid / 4u;
    let c = lid % 4u;
    let t = t0 + r;
    let n = n0 + c;
    if (lid < 4u * ROW_BLOCK && t < params.n_rows && n < params.n_out) {
        let o = t * params.out_stride + params.col_offset + n;
        var v = res[r][c] * row_scale(r);
        if (params.add_residual == 1u) {
            v += residual[o];
        }
        out[o] = v;
    }
}

// ---- The QKV product with RoPE and the KV-cache write in its epilogue (decode) ----
// What `rope_kv.wgsl` does after the product, done by the product itself, so a decode
// layer needs one dispatch less and the f32 QKV activation is never written: each
// workgroup owns the columns (j, j + 1, j + d/2, j + d/2 + 1) of one head, the two
// rotation pairs of the half-split ("neox") layout, so it can rotate what it reduced
// (`rope_store`, matvec_rope.wgsl, appended by the host).
// Needs head_dim a multiple of 4 and this part of `w` to start and end on a head.
@compute @workgroup_size(64)
fn moa_matvec_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let d = rp.head_dim;
    let half_d = d / 2u;
    let quads = half_d / 2u;
    let head_local = wid.x / quads;
    let j = (wid.x % quads) * 2u;
    let t0 = wid.y * ROW_BLOCK;
    if (head_local * d >= params.n_out || t0 >= params.n_rows) {
        return;
    }
    let base = head_local * d + j;
    block_product(vec4<u32>(base, base + 1u, base + half_d, base + half_d + 1u), t0, lid);
    // One invocation per (row, rotation pair) of the block.
    let r = lid / 2u;
    let c = lid % 2u;
    let t = t0 + r;
    if (lid >= 2u * ROW_BLOCK || t >= params.n_rows) {
        return;
    }
    let s = row_scale(r);
    rope_store(t, params.col_offset / d + head_local, j + c, res[r][c] * s, res[r][c + 2u] * s);
}
