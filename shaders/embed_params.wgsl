// The embedding gathers' parameter words (embed.wgsl, embed_texture.wgsl), appended by the
// host to each that names `EmbedParams`, so the layout the host writes (`[n_tokens, hidden,
// vocab, row0, rows, 0, 0, 0]`: the table's part holds ids row0 .. row0 + rows) is stated
// once.
struct EmbedParams {
    n_tokens: u32,
    hidden: u32,
    vocab: u32,
    row0: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
