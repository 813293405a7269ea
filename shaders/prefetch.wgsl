// Decode weight prefetch (`MOA_WGPU_DECODE_PREFETCH`, session 32): reads up to four
// weight buffers in 16-byte words so that the products that follow find them in L2
// rather than DRAM. It computes nothing the pass uses: every word is folded into an xor
// that is stored only when it equals `magic` (a value the host picks; the store is
// harmless either way, into a sink of its own), so the compiler cannot drop the loads.
// The engine dispatches it with no barrier before it (its bindings are read-only weights
// and a sink no earlier dispatch of the pass wrote), so it runs beside the dispatch it
// follows on the SMs that dispatch leaves idle.
//
// Grid: any number of workgroups of 256 (x only); each invocation walks each buffer at a
// stride of the grid's invocations, four words a round (loads issued before their xors).

struct Params {
    // 16-byte words to read from w0..w3 (0: none; the binding is then any buffer).
    words: vec4<u32>,
    // The stored-only-if-equal value (see above) and three unused words.
    magic: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w0: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> w1: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> w2: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> w3: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> sink: array<u32>;

fn fold(v: vec4<u32>) -> u32 {
    return v.x ^ v.y ^ v.z ^ v.w;
}

@compute @workgroup_size(256)
fn moa_prefetch(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let stride = nwg.x * 256u;
    let g = gid.x;
    var acc = 0u;
    // One loop per binding (WGSL cannot index bindings); indices past the end are clamped
    // to the last word (read twice, in bounds).
    let n0 = params.words.x;
    for (var i = g; i < n0; i += 4u * stride) {
        let a = w0[i];
        let b = w0[min(i + stride, n0 - 1u)];
        let c = w0[min(i + 2u * stride, n0 - 1u)];
        let d = w0[min(i + 3u * stride, n0 - 1u)];
        acc ^= fold(a) ^ fold(b) ^ fold(c) ^ fold(d);
    }
    let n1 = params.words.y;
    for (var i = g; i < n1; i += 4u * stride) {
        let a = w1[i];
        let b = w1[min(i + stride, n1 - 1u)];
        let c = w1[min(i + 2u * stride, n1 - 1u)];
        let d = w1[min(i + 3u * stride, n1 - 1u)];
        acc ^= fold(a) ^ fold(b) ^ fold(c) ^ fold(d);
    }
    let n2 = params.words.z;
    for (var i = g; i < n2; i += 4u * stride) {
        let a = w2[i];
        let b = w2[min(i + stride, n2 - 1u)];
        let c = w2[min(i + 2u * stride, n2 - 1u)];
        let d = w2[min(i + 3u * stride, n2 - 1u)];
        acc ^= fold(a) ^ fold(b) ^ fold(c) ^ fold(d);
    }
    let n3 = params.words.w;
    for (var i = g; i < n3; i += 4u * stride) {
        let a = w3[i];
        let b = w3[min(i + stride, n3 - 1u)];
        let c = w3[min(i + 2u * stride, n3 - 1u)];
        let d = w3[min(i + 3u * stride, n3 - 1u)];
        acc ^= fold(a) ^ fold(b) ^ fold(c) ^ fold(d);
    }
    if (acc == params.magic.x) {
        sink[g & 63u] = acc;
    }
}
