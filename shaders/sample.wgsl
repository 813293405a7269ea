// Temperature + top-k + top-p (nucleus) sampling, one workgroup per row. The host draws
// one uniform number per row from its seeded generator, so a seed fixes the output.
//  0. with top_k in 1..vocab-1, the candidates are the logits whose order key (key())
//     reaches the k-th largest's, found bit by bit from the top as the largest key that
//     at least top_k logits reach (ties with the k-th stay in); else every logit
//  1. p_i = exp((logit_i - max) / temperature) for a candidate, -1 for the others (below
//     every threshold, left out of every sum)              (unnormalised, max p = 1)
//  2. the nucleus is {i : p_i >= tau}, tau the largest threshold whose kept mass is
//     >= top_p * Σp, found by bisection (the top-p set of the sorted definition, up
//     to ties at the threshold, without sorting 50k logits on the GPU)
//  3. walk the kept tokens in index order to the one where the running mass crosses
//     u * (kept mass).

struct Params {
    n_rows: u32,
    vocab: u32,
    temperature: f32,
    top_p: f32,
    // 0: every token is a candidate.
    top_k: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> uniforms: array<f32>;
@group(0) @binding(3) var<storage, read_write> tokens: array<u32>;

const THREADS: u32 = 256u;
const BISECT_STEPS: u32 = 30u;
var<workgroup> red: array<f32, 256>;
var<workgroup> prefix: array<f32, 256>;
var<workgroup> shared_max: f32;
var<workgroup> shared_tau: f32;

// The order of a float as a u32 (larger float, larger key): the sign bit set for
// positives, every bit flipped for negatives (runtime::cuda::ops::order_key).
fn key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The unnormalised probability of logit `l`, -1 outside the top-k candidates (`cut`).
fn prob(l: f32, mx: f32, inv_t: f32, cut: u32) -> f32 {
    return select(-1.0, exp((l - mx) * inv_t), key(l) >= cut);
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn moa_sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let r = wid.x;
    let lid = lid3.x;
    if (r >= params.n_rows) {
        return;
    }
    let base = r * params.vocab;
    let inv_t = 1.0 / params.temperature;
    var m = -3.4e38;
    for (var i = lid; i < params.vocab; i += THREADS) {
        m = max(m, logits[base + i]);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        shared_max = red[0];
    }
    workgroupBarrier();
    let mx = shared_max;
    var cut = 0u;
    if (params.top_k > 0u && params.top_k < params.vocab) {
        for (var bit = 0u; bit < 32u; bit++) {
            let cand = cut | (0x80000000u >> bit);
            var count = 0.0;
            for (var i = lid; i < params.vocab; i += THREADS) {
                count += select(0.0, 1.0, key(logits[base + i]) >= cand);
            }
            if (reduce_sum(lid, count) >= f32(params.top_k)) {
                cut = cand;
            }
        }
    }
    var z = 0.0;
    for (var i = lid; i < params.vocab; i += THREADS) {
        z += max(prob(logits[base + i], mx, inv_t, cut), 0.0);
    }
    let total = reduce_sum(lid, z);
    let want = params.top_p * total;
    // Bisection on tau in [0, 1]: kept mass is non-increasing in tau.
    var lo = 0.0;
    var hi = 1.0;
    if (params.top_p < 1.0) {
        for (var step = 0u; step < BISECT_STEPS; step++) {
            let mid = 0.5 * (lo + hi);
            var kept = 0.0;
            for (var i = lid; i < params.vocab; i += THREADS) {
                let p = prob(logits[base + i], mx, inv_t, cut);
                kept += select(0.0, p, p >= mid);
            }
            let mass = reduce_sum(lid, kept);
            if (mass >= want) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    if (lid == 0u) {
        shared_tau = lo;
    }
    workgroupBarrier();
    let tau = shared_tau;
    // Contiguous chunks per invocation, so a prefix over invocations is index order.
    let chunk = (params.vocab + THREADS - 1u) / THREADS;
    let start = lid * chunk;
    let end = min(start + chunk, params.vocab);
    var mine = 0.0;
    for (var i = start; i < end; i++) {
        let p = prob(logits[base + i], mx, inv_t, cut);
        mine += select(0.0, p, p >= tau);
    }
    prefix[lid] = mine;
    workgroupBarrier();
    if (lid == 0u) {
        var acc = 0.0;
        for (var j = 0u; j < THREADS; j++) {
            let v = prefix[j];
            prefix[j] = acc;
            acc += v;
        }
        red[0] = acc;
    }
    workgroupBarrier();
    let kept_total = red[0];
    let goal = uniforms[r] * kept_total;
    let before = prefix[lid];
    if (goal >= before && goal < before + mine) {
        var acc = before;
        var pick = end - 1u;
        for (var i = start; i < end; i++) {
            let p = prob(logits[base + i], mx, inv_t, cut);
            if (p >= tau) {
                acc += p;
                if (acc > goal) {
                    pick = i;
                    break;
                }
            }
        }
        tokens[r] = pick;
    }
    // Rounding can leave goal at the very end of the mass: the last kept token wins.
    if (lid == THREADS - 1u && goal >= before + mine) {
        var last = 0u;
        for (var i = 0u; i < params.vocab; i++) {
            if (prob(logits[base + i], mx, inv_t, cut) >= tau) {
                last = i;
            }
        }
        tokens[r] = last;
    }
}
