// matvec.wgsl's weights in the storage type (`wtype`), row-major [n_out, k].
@group(0) @binding(2) var<storage, read> w: array<wtype>;

// Weights (col, i..i+4).
fn load_w(col: u32, i: u32) -> vec4<f32> {
    let o = col * params.k + i;
    return vec4<f32>(f32(w[o]), f32(w[o + 1u]), f32(w[o + 2u]), f32(w[o + 3u]));
}
