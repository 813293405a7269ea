// matvec.wgsl's weights quantized (quant_weights.wgsl, prepended before this).
fn load_w(col: u32, i: u32) -> vec4<f32> {
    return quant_w4(col * params.k + i);
}
