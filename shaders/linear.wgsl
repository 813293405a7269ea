// out[t, n] = Σ_k x[t, k] · w[n, k]  (+ residual[t, n] when params.add_residual = 1).
// Weights are row-major [n_out, k] as stored by the model (PyTorch Linear layout).
// Each invocation computes a 4 × 4 block (4 rows × 4 output columns) from vec4 loads:
// 8 loads feed 16 dot products, where one column per invocation needed 5 loads for 4.
// x and w are bound as arrays of 4-vectors (k is a multiple of 4: hidden and ffn checked by
// the engine, q_heads × head_dim by the plan's head_dim rule; so every row starts on one): on llvmpipe each lane's storage load is its own, and four
// scalar loads cost four times one vector's (session 55, as linear_words.wgsl's x).
// Register blocking is what pays on lavapipe, where workgroup barriers are expensive
// (feasibility.md §1: 0.5 → 3–5 GFLOP/s for a 512³ product).
// The host prepends `alias wtype = ...; alias xtype = ...;` (f16 or f32 each).

@group(0) @binding(0) var<uniform> params: ProductParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<wtype>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Four values of row `row` (column `col`) from k index `i` (a multiple of 4).
fn load_x(row: u32, i: u32) -> vec4<f32> {
    return vec4<f32>(x[(row * params.k + i) / 4u]);
}

fn load_w(col: u32, i: u32) -> vec4<f32> {
    return vec4<f32>(w[(col * params.k + i) / 4u]);
}

@compute @workgroup_size(64)
fn moa_linear(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * 4u;
    let t0 = gid.y * 4u;
    if (n0 >= params.n_out || t0 >= params.n_rows) {
        return;
    }
    // Out-of-range rows and columns load a valid neighbour and are never stored.
    let last_row = params.n_rows - 1u;
    let last_col = params.n_out - 1u;
    let r0 = t0;
    let r1 = min(t0 + 1u, last_row);
    let r2 = min(t0 + 2u, last_row);
    let r3 = min(t0 + 3u, last_row);
    let c0 = n0;
    let c1 = min(n0 + 1u, last_col);
    let c2 = min(n0 + 2u, last_col);
    let c3 = min(n0 + 3u, last_col);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    // k is a multiple of 4 (checked by the host).
    for (var i = 0u; i < params.k; i += 4u) {
        let w0 = load_w(c0, i);
        let w1 = load_w(c1, i);
        let w2 = load_w(c2, i);
        let w3 = load_w(c3, i);
        let x0 = load_x(r0, i);
        let x1 = load_x(r1, i);
        let x2 = load_x(r2, i);
        let x3 = load_x(r3, i);
        a0 += vec4<f32>(dot(x0, w0), dot(x0, w1), dot(x0, w2), dot(x0, w3));
        a1 += vec4<f32>(dot(x1, w0), dot(x1, w1), dot(x1, w2), dot(x1, w3));
        a2 += vec4<f32>(dot(x2, w0), dot(x2, w1), dot(x2, w2), dot(x2, w3));
        a3 += vec4<f32>(dot(x3, w0), dot(x3, w1), dot(x3, w2), dot(x3, w3));
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    for (var r = 0u; r < 4u; r++) {
        let t = t0 + r;
        if (t >= params.n_rows) {
            break;
        }
        for (var c = 0u; c < 4u; c++) {
            let n = n0 + c;
            if (n >= params.n_out) {
                break;
            }
            let o = t * params.out_stride + params.col_offset + n;
            var v = acc[r][c];
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}
