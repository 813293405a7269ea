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

// ---- Two-stage argmax (decode) ----
// `moa_argmax` gives each row one workgroup that walks the whole vocabulary (49152
// logits: 192 dependent loads per invocation, with 16 rows only 16 workgroups busy).
// Here stage 1 splits each row into `blocks` workgroups, each reducing its block to a
// (value, index) pair in `pairs` ([rows, blocks] × 2 words: f32 bits, index), and
// stage 2 reduces each row's pairs. Ties keep the lowest index in both stages, so the
// result equals `moa_argmax`'s. No 64-bit atomics needed.

struct BlockParams {
    n_rows: u32,
    vocab: u32,
    // Workgroups per row in stage 1 (and pairs per row for stage 2).
    blocks: u32,
    // Logits per block (the last block may hold fewer).
    block_len: u32,
}

@group(0) @binding(3) var<uniform> bp: BlockParams;
@group(0) @binding(4) var<storage, read_write> pairs: array<u32>;

// Reduces best_val/best_idx over the workgroup; the winner is at [0]. Uniform control
// flow.
fn reduce_best(lid: u32) {
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            let ov = best_val[lid + s];
            let oi = best_idx[lid + s];
            if (ov > best_val[lid] || (ov == best_val[lid] && oi < best_idx[lid])) {
                best_val[lid] = ov;
                best_idx[lid] = oi;
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn moa_argmax_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wid.x;
    let r = wid.y;
    if (r >= bp.n_rows || b >= bp.blocks) {
        return;
    }
    let start = b * bp.block_len;
    let end = min(start + bp.block_len, bp.vocab);
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = start + lid.x; i < end; i += THREADS) {
        let v = logits[r * bp.vocab + i];
        if (v > bv) {
            bv = v;
            bi = i;
        }
    }
    best_val[lid.x] = bv;
    best_idx[lid.x] = bi;
    reduce_best(lid.x);
    if (lid.x == 0u) {
        let o = (r * bp.blocks + b) * 2u;
        pairs[o] = bitcast<u32>(best_val[0]);
        pairs[o + 1u] = best_idx[0];
    }
}

@compute @workgroup_size(256)
fn moa_argmax_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.x;
    if (r >= bp.n_rows) {
        return;
    }
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var b = lid.x; b < bp.blocks; b += THREADS) {
        let o = (r * bp.blocks + b) * 2u;
        let v = bitcast<f32>(pairs[o]);
        let i = pairs[o + 1u];
        if (v > bv || (v == bv && i < bi)) {
            bv = v;
            bi = i;
        }
    }
    best_val[lid.x] = bv;
    best_idx[lid.x] = bi;
    reduce_best(lid.x);
    if (lid.x == 0u) {
        tokens[r] = min(best_idx[0], bp.vocab - 1u);
    }
}
