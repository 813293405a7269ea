// matvec_sg.wgsl's weights in the storage type (`wtype`), row-major [n_out, k] read as
// 4-vectors (k a multiple of 4).
@group(0) @binding(2) var<storage, read> w: array<vec4<wtype>>;

// Weights (col, 4j..4j+4).
fn load_w4(col: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(w[col * (params.k / 4u) + j]);
}
