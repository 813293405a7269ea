// linear_words.wgsl's weights from an rgba32uint texture (the CPU adapters' form,
// MOA_WGPU_TEXTURE_WEIGHTS): the same 16-byte words as linear_words_buffer.wgsl, word t of
// the part (t = (col * k + i) / 8) at texel (t % TEX_WIDTH, t / TEX_WIDTH); the host
// uploads each part row by row, its last row zero-padded. On llvmpipe a storage-buffer
// load is a gather lane by lane and `textureLoad` is vectorized: 2.1x the product
// (benches/lavapipe/s52/tex_probe.rs).

// Texels a texture row (the host's width, 8192 but in tests).
override TEX_WIDTH: u32 = 8192u;

@group(0) @binding(2) var w: texture_2d<u32>;

// Eight weights of row `col` from k index `i` (a multiple of 8), as two vec4s.
fn load_w8(col: u32, i: u32) -> array<vec4<f32>, 2> {
    let t = (col * params.k + i) / 8u;
    let q = textureLoad(w, vec2<u32>(t % TEX_WIDTH, t / TEX_WIDTH), 0);
    return array<vec4<f32>, 2>(
        vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)),
        vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)),
    );
}

