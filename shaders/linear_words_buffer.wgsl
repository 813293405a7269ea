// linear_words.wgsl's weights from a storage buffer: `array<vec4<u32>>`, eight f16 a word,
// row-major [n_out, k] (k a multiple of 8).
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;

// Eight weights of row `col` from k index `i` (a multiple of 8), as two vec4s.
fn load_w8(col: u32, i: u32) -> array<vec4<f32>, 2> {
    let q = w[(col * params.k + i) / 8u];
    return array<vec4<f32>, 2>(
        vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)),
        vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)),
    );
}

