// RMSNorm of selected rows: out[r, :] = x[rows[r], :] / rms(x[rows[r], :]) * weight.
// `rows` lets the final norm gather each sequence's last token in the same pass.

struct Params {
    n_rows: u32,
    hidden: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const THREADS: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn moa_rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.x;
    if (r >= params.n_rows) {
        return;
    }
    let src = rows[r] * params.hidden;
    var ss = 0.0;
    for (var i = lid.x; i < params.hidden; i += THREADS) {
        let v = x[src + i];
        ss += v * v;
    }
    partial[lid.x] = ss;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
        if (lid.x < s) {
            partial[lid.x] += partial[lid.x + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(partial[0] / f32(params.hidden) + params.eps);
    for (var i = lid.x; i < params.hidden; i += THREADS) {
        out[r * params.hidden + i] = x[src + i] * inv * weight[i];
    }
}
