// RoPE + the KV-cache write of one rotation pair: the epilogue of the decode QKV
// products (`matvec.wgsl`'s `moa_matvec_rope`, `matvec_sg.wgsl`'s `moa_matvec_sg_rope`)
// and the body of `rope_kv.wgsl` (prefill, and decode over a split cache), appended by
// the host to the sources that call `rope_store`.

const MAX_KV_HEADS: u32 = 64u;

struct RopeParams {
    n_tokens: u32,
    q_heads: u32,
    kv_heads: u32,
    head_dim: u32,
    row_slots: u32,
    // 0: no cache write (Q and the packed K/V only).
    write_cache: u32,
    // The cache part bound here holds rows [cache_row0, cache_row0 + cache_rows) of the
    // request (a layer's cache split by rows over the binding limit, DESIGN.md §7):
    // tokens of other rows are not written, and row r is at r - cache_row0.
    cache_row0: u32,
    cache_rows: u32,
    // per KV head: (offset, sink, ring, unused), from lower::CacheLayout
    segments: array<vec4<u32>, MAX_KV_HEADS>,
}

@group(0) @binding(6) var<uniform> rp: RopeParams;
// per row: (position, batch row, position of the row's last token in this pass, unused)
@group(0) @binding(7) var<storage, read> tok: array<vec4<u32>>;
// (cos, sin) per [position, pair], as in rope_kv.wgsl
@group(0) @binding(8) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> q_out: array<stype>;
@group(0) @binding(10) var<storage, read_write> k_cache: array<stype>;
@group(0) @binding(11) var<storage, read_write> v_cache: array<stype>;

// Stores rotation pair i (columns i and i + head_dim/2, sums a and b) of QKV head
// `head` (0-based over q, k, v heads) of token row t: q heads to q_out, k and v heads to
// the cache slot of the token's position (q and k heads rotated, v heads as they are).
// Returns the pair as stored (rotated where it is rotated).
fn rope_store(t: u32, head: u32, i: u32, a_in: f32, b_in: f32) -> vec2<f32> {
    let info = tok[t];
    var cs = vec2<f32>(1.0, 0.0);
    if (head < rp.q_heads + rp.kv_heads) {
        cs = rope_cs(info, i);
    }
    return rope_store_at(t, head, i, a_in, b_in, info, cs);
}

// The (cos, sin) of rotation pair i at the position of token info `info` (tok[t]).
fn rope_cs(info: vec4<u32>, i: u32) -> vec2<f32> {
    return rope[info.x * (rp.head_dim / 2u) + i];
}

// `rope_store` with the token's info (tok[t]) and, for q and k heads, its (cos, sin)
// (`rope_cs`) already loaded (`matvec_sg.wgsl`'s EARLY: loaded before the K loop).
fn rope_store_at(t: u32, head: u32, i: u32, a_in: f32, b_in: f32, info: vec4<u32>, cs: vec2<f32>) -> vec2<f32> {
    let d = rp.head_dim;
    let half_d = d / 2u;
    var a = a_in;
    var b = b_in;
    if (head < rp.q_heads + rp.kv_heads) {
        let a2 = a * cs.x - b * cs.y;
        let b2 = b * cs.x + a * cs.y;
        a = a2;
        b = b2;
    }
    if (head < rp.q_heads) {
        let o = (t * rp.q_heads + head) * d;
        q_out[o + i] = stype(a);
        q_out[o + i + half_d] = stype(b);
        return vec2<f32>(a, b);
    }
    let is_k = head < rp.q_heads + rp.kv_heads;
    var kv = head - rp.q_heads;
    if (!is_k) {
        kv = kv - rp.kv_heads;
    }
    let slot = cache_slot(rp.segments[kv], info.x, info.z);
    // u32 wrap: rows below cache_row0 fail the test too.
    let part_row = info.y - rp.cache_row0;
    if (rp.write_cache == 1u && slot >= 0 && part_row < rp.cache_rows) {
        let o = (part_row * rp.row_slots + u32(slot)) * d;
        if (is_k) {
            k_cache[o + i] = stype(a);
            k_cache[o + i + half_d] = stype(b);
        } else {
            v_cache[o + i] = stype(a);
            v_cache[o + i + half_d] = stype(b);
        }
    }
    return vec2<f32>(a, b);
}
