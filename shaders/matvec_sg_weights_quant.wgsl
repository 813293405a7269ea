// matvec_sg.wgsl's weights quantized (quant_weights.wgsl, prepended before this).
fn load_w4(col: u32, j: u32) -> vec4<f32> {
    return quant_w4(col * params.k + 4u * j);
}
