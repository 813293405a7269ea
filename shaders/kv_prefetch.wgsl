// Decode K/V prefetch (`MOA_WGPU_KV_PREFETCH`, session 35): reads a share of the next
// layer's K and V caches in 16-byte words, so that layer's decode attention finds them in
// L2 rather than DRAM. It computes nothing the pass uses: every word is folded into an xor
// that is stored only when it equals `magic.x` (a value the host picks; the store is
// harmless either way, into a sink of its own), so the compiler cannot drop the loads.
// The engine dispatches it right after a decode product with no barrier before it (its
// bindings are read-only caches first used in the step's command buffer and a sink no
// earlier dispatch of the pass wrote), so it runs beside that product on the SMs the
// product leaves idle; the next dispatch's barrier waits for both.
//
// Grid: any number of workgroups of 256 (x only). Each invocation takes `magic.y` rounds;
// a round issues four words of K and four of V (at a stride of the grid's invocations,
// consecutive invocations on consecutive words) before their xors. Indices past a range's
// end are clamped to its last word (read again, in bounds); the host never gives an empty
// range (a K-only share reads V's first word).

struct Params {
    // 16-byte words: K's [x, y), V's [z, w).
    range: vec4<u32>,
    // x: the stored-only-if-equal value (see above); y: rounds an invocation; z: words
    // between two loads (1: every word).
    magic: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> sink: array<u32>;

fn fold(w: vec4<u32>) -> u32 {
    return w.x ^ w.y ^ w.z ^ w.w;
}

@compute @workgroup_size(256)
fn moa_kv_prefetch(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let stride = nwg.x * 256u;
    let k_last = params.range.y - 1u;
    let v_last = params.range.w - 1u;
    // Words between two loads (`magic.z`: 1 reads every word; 2, 4, 8 one word of every
    // 32, 64, 128 bytes, `touch:N`, leaving L2 to fill the rest of its line, if it does).
    let st = params.magic.z;
    var acc = 0u;
    for (var r = 0u; r < params.magic.y; r++) {
        let i = gid.x + r * 4u * stride;
        let k0 = k[min(params.range.x + i * st, k_last)];
        let k1 = k[min(params.range.x + (i + stride) * st, k_last)];
        let k2 = k[min(params.range.x + (i + 2u * stride) * st, k_last)];
        let k3 = k[min(params.range.x + (i + 3u * stride) * st, k_last)];
        let v0 = v[min(params.range.z + i * st, v_last)];
        let v1 = v[min(params.range.z + (i + stride) * st, v_last)];
        let v2 = v[min(params.range.z + (i + 2u * stride) * st, v_last)];
        let v3 = v[min(params.range.z + (i + 3u * stride) * st, v_last)];
        acc ^= fold(k0) ^ fold(k1) ^ fold(k2) ^ fold(k3);
        acc ^= fold(v0) ^ fold(v1) ^ fold(v2) ^ fold(v3);
    }
    if (acc == params.magic.x) {
        sink[gid.x & 63u] = acc;
    }
}
