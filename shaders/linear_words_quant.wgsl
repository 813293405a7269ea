// linear_words.wgsl's weights quantized (quant_weights.wgsl, prepended before this):
// eight weights of row `col` from k index `i` (a multiple of 8).
fn load_w8(col: u32, i: u32) -> array<vec4<f32>, 2> {
    return quant_w8(col * params.k + i);
}
