// out[t, n] = Σ_k x[t, k] · w[n, k]  (+ residual[t, n] when params.add_residual = 1), as
// linear.wgsl, for f16 weights read as 16-byte words: the decode products of adapters
// without subgroups of a fixed size (CPU adapters such as lavapipe, where a decode product
// is this one dispatch). There each invocation is a SIMD lane and every load whose address
// differs across lanes is a gather; linear.wgsl loads a weight row one f16 at a time (a
// gather a weight), this one eight at a time (`unpack2x16float` on a vec4<u32>), and
// computes ROWS rows × 4 output columns, each weight word loaded once for its ROWS rows (an
// override, 1, 2, 4 or 8: the host takes the most that does not exceed the product's rows,
// `LinearWords::form`, so a 2-row decode step loads each weight once instead of twice and
// a 1-row step does not compute linear.wgsl's 4 × 4 block's repeated rows).
// x is read four values a load too (`array<vec4<xtype>>`: k, a multiple of 8, keeps every
// row's start on a vector): on llvmpipe each lane's load is its own, so four scalar loads
// cost four times one vector's (SmolLM2's decode step on lavapipe 127-132 -> 109-110 ms,
// benches/RESULTS.md "Session 55").
// Weights are row-major [n_out, k] (PyTorch Linear layout); the host takes this shader
// only where k is a multiple of 8 (a row starts on a word). The host prepends
// `alias wtype = ...; alias xtype = ...;` (wtype is f16 here, unused) and one of the four
// weight sources, which bind `w` and define `load_w8x4(n0, c1, c2, c3, i)`, a step's eight
// weights of each of its four columns: linear_words_buffer.wgsl (a storage buffer),
// linear_words_texture.wgsl (an rgba32uint texture: on llvmpipe a storage load is a
// gather lane by lane and a texture load is vectorized, DESIGN.md §7) or quant_weights.wgsl
// + linear_words_quant.wgsl (a GGUF quantization kept as it is, model::QuantMatrix), each
// with linear_words_columns.wgsl (a column a load), or quant_weights_texture.wgsl (a kept
// quantization from textures, the four columns a load).

override ROWS: u32 = 1u;

@group(0) @binding(0) var<uniform> params: ProductParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Four values of row `row` from k index `i` (a multiple of 4).
fn load_x4(row: u32, i: u32) -> vec4<f32> {
    return vec4<f32>(x[(row * params.k + i) / 4u]);
}

@compute @workgroup_size(64)
fn moa_linear_words(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * 4u;
    let t0 = gid.y * ROWS;
    if (n0 >= params.n_out || t0 >= params.n_rows) {
        return;
    }
    // Out-of-range rows and columns load a valid neighbour and are never stored.
    let last_row = params.n_rows - 1u;
    let last_col = params.n_out - 1u;
    let c1 = min(n0 + 1u, last_col);
    let c2 = min(n0 + 2u, last_col);
    let c3 = min(n0 + 3u, last_col);
    // Sized for the largest ROWS (a function-scope array needs a constant size); indexed
    // by the unrolled row loop's constants, so the rows past ROWS cost nothing.
    var acc: array<vec4<f32>, 8>;
    for (var i = 0u; i < params.k; i += 8u) {
        let w = load_w8x4(n0, c1, c2, c3, i);
        let w0 = w[0];
        let w1 = w[1];
        let w2 = w[2];
        let w3 = w[3];
        for (var r = 0u; r < ROWS; r++) {
            let row = min(t0 + r, last_row);
            let xa = load_x4(row, i);
            let xb = load_x4(row, i + 4u);
            acc[r] += vec4<f32>(
                dot(xa, w0[0]) + dot(xb, w0[1]),
                dot(xa, w1[0]) + dot(xb, w1[1]),
                dot(xa, w2[0]) + dot(xb, w2[1]),
                dot(xa, w3[0]) + dot(xb, w3[1]),
            );
        }
    }
    for (var r = 0u; r < ROWS; r++) {
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
