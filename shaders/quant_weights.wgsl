// Quantized product weights (model::QuantMatrix, docs/DESIGN.md §7): weight e of the
// part's row-major [n_out, k] matrix is scale · code + offset, with 4- or 8-bit codes
// packed low bits first into the words of `w` and (scale, offset) of group e / GROUP in
// `qparams`. The format is the parameter word `quant` (bits | log2(group) << 8; the host
// writes it per part from the matrix, so one pipeline serves Q4_0, Q4_1, Q4_K (4 bits,
// groups of 32), Q8_0 (8, 32) and Q6_K (8, 16)). A group holds 16 or 32 weights, so the
// 4 or 8 weights a load returns (e a multiple of 4 or 8) share one group.
// Prepended to a product that reads `params.quant` and calls quant_w4 / quant_w8.

@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(12) var<storage, read> qparams: array<vec2<f32>>;

// Weights e..e+4 (e a multiple of 4).
fn quant_w4(e: u32) -> vec4<f32> {
    let p = qparams[e >> (params.quant >> 8u)];
    var c: vec4<u32>;
    if ((params.quant & 255u) == 4u) {
        // Weights 8j..8j+8 are word j's nibbles; e % 8 is 0 or 4.
        let word = w[e >> 3u] >> ((e & 4u) * 4u);
        c = (vec4<u32>(word) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
    } else {
        c = (vec4<u32>(w[e >> 2u]) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u);
    }
    return fma(vec4<f32>(c), vec4<f32>(p.x), vec4<f32>(p.y));
}

// Weights e..e+8 (e a multiple of 8) as two vec4s: one word of 4-bit codes or two of
// 8-bit ones, and one (scale, offset) pair.
fn quant_w8(e: u32) -> array<vec4<f32>, 2> {
    let p = qparams[e >> (params.quant >> 8u)];
    var lo: vec4<u32>;
    var hi: vec4<u32>;
    if ((params.quant & 255u) == 4u) {
        let word = vec4<u32>(w[e >> 3u]);
        lo = (word >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
        hi = (word >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u);
    } else {
        let shifts = vec4<u32>(0u, 8u, 16u, 24u);
        lo = (vec4<u32>(w[e >> 2u]) >> shifts) & vec4<u32>(255u);
        hi = (vec4<u32>(w[(e >> 2u) + 1u]) >> shifts) & vec4<u32>(255u);
    }
    let s = vec4<f32>(p.x);
    let o = vec4<f32>(p.y);
    return array<vec4<f32>, 2>(fma(vec4<f32>(lo), s, o), fma(vec4<f32>(hi), s, o));
}
