// out[t, n] = Σ_k x[t, k] · w[n, k]  (+ residual[t, n] when params.add_residual = 1).
// Weights are row-major [n_out, k] as stored by the model (PyTorch Linear layout).
// Each invocation computes one output column for ROWS rows: register blocking pays
// on lavapipe, where workgroup barriers are expensive (feasibility.md §1).
// The host prepends `alias wtype = ...; alias xtype = ...;` (f16 or f32 each).

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<xtype>;
@group(0) @binding(2) var<storage, read> w: array<wtype>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const ROWS: u32 = 4u;

@compute @workgroup_size(64)
fn moa_linear(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let t0 = gid.y * ROWS;
    if (n >= params.n_out || t0 >= params.n_rows) {
        return;
    }
    let k = params.k;
    let rows = min(ROWS, params.n_rows - t0);
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    let wrow = n * k;
    // k is a multiple of 4 (checked by the host): vectorise the inner product.
    for (var i = 0u; i < k; i += 4u) {
        let wv = vec4<f32>(f32(w[wrow + i]), f32(w[wrow + i + 1u]), f32(w[wrow + i + 2u]), f32(w[wrow + i + 3u]));
        for (var r = 0u; r < ROWS; r++) {
            if (r < rows) {
                let xo = (t0 + r) * k + i;
                let xv = vec4<f32>(f32(x[xo]), f32(x[xo + 1u]), f32(x[xo + 2u]), f32(x[xo + 3u]));
                acc[r] += dot(xv, wv);
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        let o = (t0 + r) * params.n_out + n;
        var v = acc[r];
        if (params.add_residual == 1u) {
            v += residual[o];
        }
        out[o] = v;
    }
}
