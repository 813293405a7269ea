// Embedding lookup from the table's texture form: out[t, :] = table[tokens[t], :], as
// embed.wgsl, where the engine keeps the f16 table only as an rgba32uint texture (the CPU
// adapters' weights, MOA_WGPU_TEXTURE_WEIGHTS): 16-byte words of eight f16, word w of the
// part at texel (w % TEX_WIDTH, w / TEX_WIDTH), row-major [rows, hidden] with hidden a
// multiple of 8 (the host gives this form only such tables). One invocation a word; one
// dispatch per part, each writing only the tokens whose id falls in its rows.

// Texels a texture row (the host's width, 8192).
override TEX_WIDTH: u32 = 8192u;

@group(0) @binding(0) var<uniform> params: EmbedParams;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var table: texture_2d<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn moa_embed_texture(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x;
    let t = gid.y;
    if (word >= params.hidden / 8u || t >= params.n_tokens) {
        return;
    }
    // An out-of-range id is clamped by the host before upload; clamp again so a bad
    // id can never read outside the table.
    let tok = min(tokens[t], params.vocab - 1u);
    if (tok < params.row0 || tok >= params.row0 + params.rows) {
        return;
    }
    let w = (tok - params.row0) * (params.hidden / 8u) + word;
    let q = textureLoad(table, vec2<u32>(w % TEX_WIDTH, w / TEX_WIDTH), 0);
    let o = t * params.hidden + word * 8u;
    let a = unpack2x16float(q.x);
    let b = unpack2x16float(q.y);
    let c = unpack2x16float(q.z);
    let d = unpack2x16float(q.w);
    out[o] = a.x;
    out[o + 1u] = a.y;
    out[o + 2u] = b.x;
    out[o + 3u] = b.y;
    out[o + 4u] = c.x;
    out[o + 5u] = c.y;
    out[o + 6u] = d.x;
    out[o + 7u] = d.y;
}
