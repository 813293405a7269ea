// Decode products over quantized weights (model::QuantMatrix, quant_weights.wgsl's layout):
// out[t, n] = Σ_k f(x)[t, k] · w[n, k] (+ residual) for few rows, one subgroup (the
// workgroup: LANES = the adapter's subgroup size) per 4 output columns × ROWS rows.
// matvec_sg.wgsl gives a lane 4 weights of K a step, which for codes is 2 bytes and an
// 8-byte (scale, offset) pair: twice f16's loads for a quarter of its bytes (0.82 TB/s on
// the H100 where the f16 step read 1.6, benches/RESULTS.md "Session 58"). Here a lane takes
// a whole 16-byte word of each of its 4 columns' codes a step (32 weights at 4 bits, 16 at
// 8), whose one group's pair it loads once, and folds the pair in after the word's dot
// product: Σ x·(s·c + o) = s·Σ x·c + o·Σ x, so a weight costs one multiply-add. The lanes'
// sums meet in one subgroupAdd: no workgroup memory, no barrier.
// Requires 128 / bits ≤ group (a word never spans two groups: every type's layout, and
// every stack of them, keeps this; the host checks).
// INPUT_MODE as matvec.wgsl's: 0 x as is, 1 RMSNorm(x) · norm (the row's scale applied
// after the reduction), 2 SwiGLU of a [gate | up] row of width 2K.
override LANES: u32 = 32u;
override ROWS: u32 = 1u;
override INPUT_MODE: u32 = 0u;
// Bits a code (4 or 8; the host builds both and picks by the part's format): a constant,
// so the loop over a word's 4-weight steps has a constant trip count and each step's
// component of the word a constant index once unrolled (a runtime index into a vector
// may be kept in local memory).
override BITS: u32 = 4u;
override PER_WORD: u32 = 128u / BITS;
// Words of K a lane loads before it folds any (1 or 2): 2 puts twice the bytes in flight,
// for the products whose few workgroups (4 columns each) leave the SMs short of loads.
override UNROLL: u32 = 1u;

// ProductParams' words (product_params.wgsl, appended by the host): `_eps` holds the
// RMSNorm epsilon's bits, `quant` the format (bits | log2(group) << 8).
@group(0) @binding(0) var<uniform> params: ProductParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> qparams: array<vec2<f32>>;

// The product's input at (row, kk..kk+4), kk a multiple of 4, before any RMSNorm scale.
fn load_x4(row: u32, kk: u32) -> vec4<f32> {
    let k4 = params.k / 4u;
    if (INPUT_MODE == 2u) {
        let g = vec4<f32>(x[row * 2u * k4 + kk / 4u]);
        return g / (1.0 + exp(-g)) * vec4<f32>(x[row * 2u * k4 + k4 + kk / 4u]);
    }
    return vec4<f32>(x[row * k4 + kk / 4u]);
}

// Codes q·4 .. q·4 + 4 of a 16-byte word as f32.
fn codes4(word: vec4<u32>, q: u32) -> vec4<f32> {
    if (BITS == 4u) {
        let v = word[q / 2u] >> ((q % 2u) * 16u);
        return vec4<f32>((vec4<u32>(v) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u));
    }
    return vec4<f32>((vec4<u32>(word[q]) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u));
}

// Word i (16 bytes) of each of the 4 columns' codes, `words` words a column.
fn load_words(cols: vec4<u32>, words: u32, i: u32) -> array<vec4<u32>, 4> {
    return array<vec4<u32>, 4>(
        w[cols.x * words + i],
        w[cols.y * words + i],
        w[cols.z * words + i],
        w[cols.w * words + i],
    );
}

// The (scale, offset) pair of each of the 4 columns' group at K offset kk.
fn load_pairs(cols: vec4<u32>, kk: u32) -> array<vec2<f32>, 4> {
    let gshift = params.quant >> 8u;
    return array<vec2<f32>, 4>(
        qparams[(cols.x * params.k + kk) >> gshift],
        qparams[(cols.y * params.k + kk) >> gshift],
        qparams[(cols.z * params.k + kk) >> gshift],
        qparams[(cols.w * params.k + kk) >> gshift],
    );
}

// Folds one word of codes of the 4 columns (`w`, their groups' pairs `p`) at K offset `kk0`
// into every row's sums: Σ x·(s·c + o) = s·Σ x·c + o·Σ x.
fn fold(
    acc: ptr<function, array<vec4<f32>, 8>>,
    ss: ptr<function, array<f32, 8>>,
    t0: u32,
    kk0: u32,
    w: array<vec4<u32>, 4>,
    p: array<vec2<f32>, 4>,
) {
    let last_row = params.n_rows - 1u;
    for (var r = 0u; r < ROWS; r++) {
        let row = min(t0 + r, last_row);
        var dx = vec4<f32>(0.0);
        var sx = 0.0;
        for (var q = 0u; q < PER_WORD / 4u; q++) {
            let kk = kk0 + 4u * q;
            var xv = load_x4(row, kk);
            if (INPUT_MODE == 1u) {
                (*ss)[r] += dot(xv, xv);
                xv *= norm[kk / 4u];
            }
            sx += xv.x + xv.y + xv.z + xv.w;
            dx += vec4<f32>(
                dot(xv, codes4(w[0], q)),
                dot(xv, codes4(w[1], q)),
                dot(xv, codes4(w[2], q)),
                dot(xv, codes4(w[3], q)),
            );
        }
        (*acc)[r] += vec4<f32>(p[0].x, p[1].x, p[2].x, p[3].x) * dx
            + vec4<f32>(p[0].y, p[1].y, p[2].y, p[3].y) * sx;
    }
}

@compute @workgroup_size(LANES)
fn moa_matvec_q(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let words = params.k / PER_WORD;
    let n0 = wid.x * 4u;
    let t0 = wid.y * ROWS;
    // Out-of-range columns and rows read a valid neighbour and are never stored.
    let last_col = params.n_out - 1u;
    let cols = vec4<u32>(n0, min(n0 + 1u, last_col), min(n0 + 2u, last_col), min(n0 + 3u, last_col));
    // Sized for the largest ROWS (8), indexed by the unrolled row loop's constants.
    var acc: array<vec4<f32>, 8>;
    var ss: array<f32, 8>;
    for (var i = lane; i < words; i += LANES * UNROLL) {
        let wa = load_words(cols, words, i);
        let kk0 = i * PER_WORD;
        let p = load_pairs(cols, kk0);
        if (UNROLL == 1u) {
            fold(&acc, &ss, t0, kk0, wa, p);
            continue;
        }
        // The second word's loads go out before the first word is folded; past the end
        // it reads the last word again and is not folded.
        let j = i + LANES;
        let jl = min(j, words - 1u);
        let wb = load_words(cols, words, jl);
        let kk1 = jl * PER_WORD;
        let o = load_pairs(cols, kk1);
        fold(&acc, &ss, t0, kk0, wa, p);
        if (j < words) {
            fold(&acc, &ss, t0, kk1, wb, o);
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let sums = subgroupAdd(acc[r]);
        let squares = subgroupAdd(ss[r]);
        let t = t0 + r;
        if (lane != 0u || t >= params.n_rows) {
            continue;
        }
        var scale = 1.0;
        if (INPUT_MODE == 1u) {
            scale = inverseSqrt(squares / f32(params.k) + bitcast<f32>(params._eps));
        }
        for (var c = 0u; c < 4u; c++) {
            let n = n0 + c;
            if (n >= params.n_out) {
                break;
            }
            let o = t * params.out_stride + params.col_offset + n;
            var v = sums[c] * scale;
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}
