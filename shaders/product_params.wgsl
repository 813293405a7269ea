
// The many-row products' parameter words (linear.wgsl, linear_words.wgsl,
// linear_tiled.wgsl, coop_linear.wgsl), appended by the host to each that names
// `ProductParams` (coop_linear.wgsl: by `coop_linear_source`), so the
// layout the host writes (`[n_rows, k, n_out, add_residual, eps, out_stride, col_offset,
// 0]`) is stated once.
struct ProductParams {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    // Unused here: matvec.wgsl's RMSNorm epsilon (all read the same parameter words).
    _eps: u32,
    // Output row stride and first output column: a weight split by output rows across
    // bindings (DESIGN.md §7) writes its slice of each output row.
    out_stride: u32,
    col_offset: u32,
    // Quantized weights' format (quant_weights.wgsl: linear_words_quant.wgsl only); 0
    // elsewhere.
    quant: u32,
}
