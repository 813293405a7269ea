// RoPE (half-split "neox" layout, after the loader un-permutes GGUF's interleaved Q/K)
// fused with the KV write: reads the fused QKV projection, writes rotated Q, K and V
// in the attention kernels' storage type (packed, for prefill attention) and scatters
// K and V of every token the plan keeps into the layer's sink + ring cache arena
// (layout: docs/DESIGN.md §5). The host prepends `alias stype = f16|f32;` and appends
// `matvec_rope.wgsl` (the parameters, the Q / cache bindings 6–11 and `rope_store`, the
// rotation and stores that the decode QKV products' epilogues share) and
// `cache_slot.wgsl`.

// [n_tokens, (q_heads + 2 kv_heads) * head_dim]: q heads, then k heads, then v heads
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// Packed K and V of the pass, [n_tokens, kv_heads, head_dim] each.
@group(0) @binding(2) var<storage, read_write> k_out: array<stype>;
@group(0) @binding(3) var<storage, read_write> v_out: array<stype>;

// Tokens a workgroup (`MOA_WGPU_ROPE_TOKENS`; the engine overrides RT, 8 by default since
// session 30). In session 29, 1 (then the default) made a workgroup of 32 invocations per
// (head, token), 491 520 a SmolLM2 layer at 32 768 tokens; the H200 ran that pass at
// 0.30 ms a layer, ≈ 80 ns a workgroup an SM, like the SwiGLU pass's 64-invocation
// workgroups, far from the bandwidth's ≈ 0.05 ms.
override RT: u32 = 1u;

@compute @workgroup_size(32, 1, RT)
fn moa_rope_kv(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let head = gid.y;
    let t = gid.z;
    let d = rp.head_dim;
    let half_d = d / 2u;
    let heads = rp.q_heads + 2u * rp.kv_heads;
    if (i >= half_d || head >= heads || t >= rp.n_tokens) {
        return;
    }
    let src = t * heads * d + head * d;
    let ab = rope_store(t, head, i, qkv[src + i], qkv[src + i + half_d]);
    if (head < rp.q_heads) {
        return;
    }
    var kv = head - rp.q_heads;
    let is_k = kv < rp.kv_heads;
    if (!is_k) {
        kv = kv - rp.kv_heads;
    }
    let o = (t * rp.kv_heads + kv) * d;
    if (is_k) {
        k_out[o + i] = stype(ab.x);
        k_out[o + i + half_d] = stype(ab.y);
    } else {
        v_out[o + i] = stype(ab.x);
        v_out[o + i + half_d] = stype(ab.y);
    }
}
