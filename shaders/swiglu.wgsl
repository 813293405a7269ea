// SwiGLU on the fused gate/up projection: act[t, i] = silu(gu[t, i]) · gu[t, ffn + i].

struct Params {
    n_rows: u32,
    ffn: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> act: array<f32>;

@compute @workgroup_size(64)
fn moa_swiglu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= params.ffn || t >= params.n_rows) {
        return;
    }
    let g = gu[t * 2u * params.ffn + i];
    let u = gu[t * 2u * params.ffn + params.ffn + i];
    act[t * params.ffn + i] = g / (1.0 + exp(-g)) * u;
}
