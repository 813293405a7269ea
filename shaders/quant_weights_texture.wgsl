// quant_weights.wgsl's weights from two rgba32uint textures, the CPU adapters' form of a
// kept quantization (MOA_WGPU_TEXTURE_WEIGHTS with MOA_WGPU_QUANT_WEIGHTS): on llvmpipe a
// storage load is a gather lane by lane and `textureLoad` is vectorized (DESIGN.md §7), and
// quant_weights.wgsl makes eight storage loads (a code word and a pair for each of four
// columns) per step of linear_words.wgsl. Here the host lays the part out in blocks of four
// output columns (rows of [n_out, k], n_out padded to a multiple of 4 with zeros), so one
// texel holds what a step needs of all four: code texel cb · WPR + j holds word j of
// columns 4cb..4cb+4 (WPR = k · bits / 32 words a column), and pair texels
// (cb · G + g) · 2 and + 1 hold group g's (scale, offset) of columns 4cb, 4cb+1 and
// 4cb+2, 4cb+3 as f32 bits (G = k / group groups a column). A 4-bit step takes one code
// texel, an 8-bit one two, each two pair texels. Texel t is at (t % TEX_WIDTH,
// t / TEX_WIDTH), the last texture row zero-padded. The format is the parameter word
// `quant` as in quant_weights.wgsl. Defines load_w8x4, linear_words.wgsl's step load.

// Texels a texture row (the host's width, 8192 but in tests).
override TEX_WIDTH: u32 = 8192u;

@group(0) @binding(2) var w: texture_2d<u32>;
@group(0) @binding(12) var qparams: texture_2d<u32>;

fn code_texel(t: u32) -> vec4<u32> {
    return textureLoad(w, vec2<u32>(t % TEX_WIDTH, t / TEX_WIDTH), 0);
}

fn pair_texel(t: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(textureLoad(qparams, vec2<u32>(t % TEX_WIDTH, t / TEX_WIDTH), 0));
}

// Eight weights from the codes in `lo_word` (4 bits: all eight; 8 bits: the first four)
// and `hi_word` (8 bits: the last four), at scale s and offset o.
fn unpack8(lo_word: u32, hi_word: u32, s: f32, o: f32) -> array<vec4<f32>, 2> {
    var lo: vec4<u32>;
    var hi: vec4<u32>;
    if ((params.quant & 255u) == 4u) {
        lo = (vec4<u32>(lo_word) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
        hi = (vec4<u32>(lo_word) >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u);
    } else {
        let shifts = vec4<u32>(0u, 8u, 16u, 24u);
        lo = (vec4<u32>(lo_word) >> shifts) & vec4<u32>(255u);
        hi = (vec4<u32>(hi_word) >> shifts) & vec4<u32>(255u);
    }
    let sv = vec4<f32>(s);
    let ov = vec4<f32>(o);
    return array<vec4<f32>, 2>(fma(vec4<f32>(lo), sv, ov), fma(vec4<f32>(hi), sv, ov));
}

// Eight weights from k index `i` (a multiple of 8) of columns n0..n0+4 (n0 a multiple of
// 4; the clamped columns c1..c3 of linear_words.wgsl are not needed: the padding holds
// zeros, and columns past n_out are never stored).
fn load_w8x4(n0: u32, c1: u32, c2: u32, c3: u32, i: u32) -> array<array<vec4<f32>, 2>, 4> {
    let cb = n0 / 4u;
    let shift = params.quant >> 8u;
    let pt = (cb * (params.k >> shift) + (i >> shift)) * 2u;
    let pa = pair_texel(pt);
    let pb = pair_texel(pt + 1u);
    var lo: vec4<u32>;
    var hi: vec4<u32>;
    if ((params.quant & 255u) == 4u) {
        lo = code_texel(cb * (params.k / 8u) + i / 8u);
        hi = lo;
    } else {
        let t = cb * (params.k / 4u) + i / 4u;
        lo = code_texel(t);
        hi = code_texel(t + 1u);
    }
    return array<array<vec4<f32>, 2>, 4>(
        unpack8(lo.x, hi.x, pa.x, pa.y),
        unpack8(lo.y, hi.y, pa.z, pa.w),
        unpack8(lo.z, hi.z, pb.x, pb.y),
        unpack8(lo.w, hi.w, pb.z, pb.w),
    );
}
