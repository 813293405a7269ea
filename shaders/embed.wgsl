// Embedding lookup: out[t, :] = table[tokens[t], :].
// The table may be split by rows across bindings (DESIGN.md §7): one dispatch per part,
// each writing only the tokens whose id falls in its rows [row0, row0 + rows).
// The host prepends `alias wtype = f16;` (with `enable f16;`) or `alias wtype = f32;`.

@group(0) @binding(0) var<uniform> params: EmbedParams;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<wtype>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn moa_embed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= params.hidden || t >= params.n_tokens) {
        return;
    }
    // An out-of-range id is clamped by the host before upload; clamp again so a bad
    // id can never read outside the table.
    let tok = min(tokens[t], params.vocab - 1u);
    if (tok < params.row0 || tok >= params.row0 + params.rows) {
        return;
    }
    out[t * params.hidden + i] = f32(table[(tok - params.row0) * params.hidden + i]);
}
