// Greedy decoding: the index of the largest logit of each row (lowest index on ties,
// as torch.argmax).

struct Params {
    n_rows: u32,
    vocab: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;

const THREADS: u32 = 256u;
var<workgroup> best_val: array<f32, 256>;
var<workgroup> best_idx: array<u32, 256>;

@compute @workgroup_size(256)
fn moa_argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.x;
    if (r >= params.n_rows) {
        return;
    }
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid.x; i < params.vocab; i += THREADS) {
        let v = logits[r * params.vocab + i];
        if (v > bv) {
            bv = v;
            bi = i;
        }
    }
    best_val[lid.x] = bv;
    best_idx[lid.x] = bi;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
        if (lid.x < s) {
            let ov = best_val[lid.x + s];
            let oi = best_idx[lid.x + s];
            if (ov > best_val[lid.x] || (ov == best_val[lid.x] && oi < best_idx[lid.x])) {
                best_val[lid.x] = ov;
                best_idx[lid.x] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        tokens[r] = min(best_idx[0], params.vocab - 1u);
    }
}
