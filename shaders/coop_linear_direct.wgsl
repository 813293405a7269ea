// Appended to coop_linear.wgsl for an f32 accumulator (the host's `coop_linear_source`):
// its whole tiles store the accumulator fragments straight to `out` and take the residual
// as their initial value. Element `o` of `out` / `residual` is a fragment's first; rows
// are `ld` apart (o and ld multiples of 4: 16-byte rows). The stride is an argument:
// naga 30's SPIR-V writer does not emit an expression that only coopStore's stride uses.
const DIRECT_OK: bool = true;
// The accumulators start from the residual in every tile (session 29).
const RES_FIRST: bool = true;

fn store_c(c: coop_mat16x16<ctype, C>, o: u32, ld: u32) {
    coopStoreT(c, &out[o], ld);
}

fn load_c(o: u32, ld: u32) -> coop_mat16x16<ctype, C> {
    return coopLoadT<coop_mat16x16<ctype, C>>(&residual[o], ld);
}
