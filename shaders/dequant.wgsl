// A quantized part's weights written out in f16 (quant_weights.wgsl prepended): the
// scratch matrix a many-row product on matrix units or tiles reads, where the engine keeps
// the layer matrices quantized (MOA_WGPU_QUANT_WEIGHTS). A prefill's products are bound
// by their multiply-adds, not by the weights' bytes, so writing each part out once per
// pass costs a small share of its product and lets the fast products serve quantized
// weights unchanged. Each invocation writes 8 weights as one 16-byte word; the grid is 2-D
// (x at most 32768 workgroups of 256), row-major over the part's rows · k / 8 words.

@group(0) @binding(0) var<uniform> params: ProductParams;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(256)
fn moa_dequant(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let word = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (word >= params.n_out * params.k / 8u) {
        return;
    }
    let v = quant_w8(word * 8u);
    out[word] = vec4<u32>(
        pack2x16float(v[0].xy),
        pack2x16float(v[0].zw),
        pack2x16float(v[1].xy),
        pack2x16float(v[1].zw),
    );
}
