// RoPE (half-split "neox" layout, after the loader un-permutes GGUF's interleaved Q/K)
// fused with the KV write: reads the fused QKV projection, writes rotated Q, K and V
// in the attention kernels' storage type (packed, for prefill attention) and scatters
// K and V of every token the plan keeps into the layer's sink + ring cache arena
// (layout: docs/DESIGN.md §5). The host prepends `alias stype = f16|f32;`.

const MAX_KV_HEADS: u32 = 64u;

struct Params {
    n_tokens: u32,
    q_heads: u32,
    kv_heads: u32,
    head_dim: u32,
    row_slots: u32,
    write_cache: u32,
    // The cache part bound here holds rows [cache_row0, cache_row0 + cache_rows) of the
    // request (a layer's cache split by rows over the binding limit, DESIGN.md §7):
    // tokens of other rows are not written, and row r is at r - cache_row0.
    cache_row0: u32,
    cache_rows: u32,
    // per KV head: (offset, sink, ring, unused), from lower::CacheLayout
    segments: array<vec4<u32>, MAX_KV_HEADS>,
}

@group(0) @binding(0) var<uniform> params: Params;
// [n_tokens, (q_heads + 2 kv_heads) * head_dim]: q heads, then k heads, then v heads
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// per token: (position, batch row, position of the row's last token in this pass, unused)
@group(0) @binding(2) var<storage, read> tok: array<vec4<u32>>;
// (cos, sin) per [position, pair]: precomputed on the host in f64, because f32 sin/cos
// of angles in the thousands of radians is not accurate on every GPU
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> q_out: array<stype>;
@group(0) @binding(5) var<storage, read_write> k_out: array<stype>;
@group(0) @binding(6) var<storage, read_write> v_out: array<stype>;
@group(0) @binding(7) var<storage, read_write> k_cache: array<stype>;
@group(0) @binding(8) var<storage, read_write> v_cache: array<stype>;

@compute @workgroup_size(32)
fn moa_rope_kv(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let head = gid.y;
    let t = gid.z;
    let d = params.head_dim;
    let half_d = d / 2u;
    let heads = params.q_heads + 2u * params.kv_heads;
    if (i >= half_d || head >= heads || t >= params.n_tokens) {
        return;
    }
    let info = tok[t];
    let src = t * heads * d + head * d;
    var a = qkv[src + i];
    var b = qkv[src + i + half_d];
    if (head < params.q_heads + params.kv_heads) {
        let cs = rope[info.x * half_d + i];
        let a2 = a * cs.x - b * cs.y;
        let b2 = b * cs.x + a * cs.y;
        a = a2;
        b = b2;
    }
    if (head < params.q_heads) {
        let o = (t * params.q_heads + head) * d;
        q_out[o + i] = stype(a);
        q_out[o + i + half_d] = stype(b);
        return;
    }
    let is_k = head < params.q_heads + params.kv_heads;
    var kv = head - params.q_heads;
    if (!is_k) {
        kv = kv - params.kv_heads;
    }
    let o = (t * params.kv_heads + kv) * d;
    if (is_k) {
        k_out[o + i] = stype(a);
        k_out[o + i + half_d] = stype(b);
    } else {
        v_out[o + i] = stype(a);
        v_out[o + i + half_d] = stype(b);
    }
    // u32 wrap: rows below cache_row0 fail the test too.
    let part_row = info.y - params.cache_row0;
    if (params.write_cache == 1u && part_row < params.cache_rows) {
        let slot = cache_slot(params.segments[kv], info.x, info.z);
        if (slot >= 0) {
            let c = (part_row * params.row_slots + u32(slot)) * d;
            if (is_k) {
                k_cache[c + i] = stype(a);
                k_cache[c + i + half_d] = stype(b);
            } else {
                v_cache[c + i] = stype(a);
                v_cache[c + i + half_d] = stype(b);
            }
        }
    }
}
