// Appended to coop_linear.wgsl for f16 x (the host's `coop_linear_source`; the out
// product reads the attention output): x in 16-byte words of 8 packed halves, as w
// (session 29; before it 8-byte vec4<f16> words, which halved the out product on the
// H200: 32 TFLOP/s against 55 with f32 x, session 28).
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;

const XE: u32 = 8u;
alias xword = vec4<u32>;

// Halves e .. e + 7 of x (e a multiple of 8): one 16-byte load where `vec_ok` (K a
// multiple of 8) and all 8 lie in the row (`valid` ≥ 8), else the first `valid` one by
// one, zero after them.
fn x_load(e: u32, valid: u32, vec_ok: bool) -> vec4<u32> {
    if (vec_ok && valid >= 8u) {
        return x[e >> 3u];
    }
    var v = vec4<u32>(0u);
    for (var c = 0u; c < 8u; c++) {
        if (c < valid) {
            let i = e + c;
            v[c >> 1u] |= half_bits(x[i >> 3u][(i >> 1u) & 3u], i) << (16u * (c & 1u));
        }
    }
    return v;
}

fn x_put(o: u32, v: vec4<u32>) {
    xs_put8(o, v);
}
