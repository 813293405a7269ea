// Appended to coop_linear.wgsl for f32 x (the host's `coop_linear_source`): x in 16-byte
// words of 4 f32, converted to f16 as they are staged.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;

const XE: u32 = 4u;
alias xword = vec4<f32>;

// Elements e .. e + 3 of x (e a multiple of 4): one load where `vec_ok` (K a multiple of
// 4) and all 4 lie in the row (`valid` ≥ 4), else the first `valid` one by one.
fn x_load(e: u32, valid: u32, vec_ok: bool) -> vec4<f32> {
    if (vec_ok && valid >= 4u) {
        return x[e >> 2u];
    }
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        if (c < valid) {
            v[c] = x[(e + c) >> 2u][(e + c) & 3u];
        }
    }
    return v;
}

fn x_put(o: u32, v: vec4<f32>) {
    let h = vec4<f16>(v);
    xs[o] = h.x;
    xs[o + 1u] = h.y;
    xs[o + 2u] = h.z;
    xs[o + 3u] = h.w;
}
