// linear_words.wgsl's step load from a source that gives one column at a time (load_w8:
// linear_words_buffer.wgsl, linear_words_texture.wgsl, linear_words_quant.wgsl): the
// eight weights from k index `i` of columns n0, c1, c2 and c3 (the last three clamped to
// the matrix). quant_weights_texture.wgsl defines its own, one texel for all four.
fn load_w8x4(n0: u32, c1: u32, c2: u32, c3: u32, i: u32) -> array<array<vec4<f32>, 2>, 4> {
    return array<array<vec4<f32>, 2>, 4>(load_w8(n0, i), load_w8(c1, i), load_w8(c2, i), load_w8(c3, i));
}
