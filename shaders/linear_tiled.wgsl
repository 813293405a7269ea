// out[t, n] = Σ_k x[t, k] · w[n, k]  (+ residual[t, n] when params.add_residual = 1), as
// linear.wgsl, for the many-row products (prefill) of GPU adapters without matrix units
// (cooperative matrices): WebGPU in a browser, most integrated GPUs. linear.wgsl computes a
// 4 × 4 block an invocation straight from global memory, which suits lavapipe (a workgroup
// barrier costs a CPU more than the reuse gains, feasibility.md §1) but leaves a GPU
// reading each weight once for every 4 rows; here a workgroup of 16 × 16 invocations owns a
// 64-row × 64-column output tile and stages K in steps of 16 through workgroup memory, so a
// weight is read from global memory once for 64 rows and an x value once for 64 columns.
// Each invocation keeps a 4 × 4 block of sums and reads its 4 rows and 4 columns of a K
// step as two vec4s of workgroup memory: 16 multiply-adds per 2 loads.
// Weights are row-major [n_out, k] (PyTorch Linear layout); any K (the last step is
// zero-filled). The host prepends `alias wtype = ...; alias xtype = ...;` (f16 or f32 each).

const TILE: u32 = 64u;
const STEP: u32 = 16u;

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    // Unused here: matvec.wgsl's RMSNorm epsilon (all read the same parameter words).
    _eps: u32,
    // Output row stride and first output column: a weight split by output rows across
    // bindings (DESIGN.md §7) writes its slice of each output row.
    out_stride: u32,
    col_offset: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<xtype>;
@group(0) @binding(2) var<storage, read> w: array<wtype>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// [k step][row / 4] and [k step][column / 4]: element j of entry [s][i] is row (column)
// 4i + j at k0 + s, so an invocation's 4 rows (columns) of a step are one vec4.
var<workgroup> xs: array<array<vec4<f32>, 16>, 16>;
var<workgroup> ws: array<array<vec4<f32>, 16>, 16>;

@compute @workgroup_size(16, 16)
fn moa_linear_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    // Staging: invocation li loads 4 consecutive k (from (li % 4) · 4) of tile row (and
    // tile column) li / 4; rows and columns past the edge load a valid neighbour (never
    // stored), k past K loads zero.
    let lr = li / 4u;
    let lk = (li % 4u) * 4u;
    let xrow = min(row0 + lr, params.n_rows - 1u);
    let wcol = min(col0 + lr, params.n_out - 1u);
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < params.k; k0 += STEP) {
        for (var j = 0u; j < 4u; j++) {
            let k = k0 + lk + j;
            var xv = 0.0;
            var wv = 0.0;
            if (k < params.k) {
                xv = f32(x[xrow * params.k + k]);
                wv = f32(w[wcol * params.k + k]);
            }
            xs[lk + j][lr / 4u][lr % 4u] = xv;
            ws[lk + j][lr / 4u][lr % 4u] = wv;
        }
        workgroupBarrier();
        for (var s = 0u; s < STEP; s++) {
            let a = xs[s][lid.y];
            let b = ws[s][lid.x];
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = row0 + lid.y * 4u + i;
        if (t >= params.n_rows) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let n = col0 + lid.x * 4u + j;
            if (n >= params.n_out) {
                break;
            }
            let o = t * params.out_stride + params.col_offset + n;
            var v = acc[i][j];
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}
