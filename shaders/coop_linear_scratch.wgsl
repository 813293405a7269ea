// Appended to coop_linear.wgsl for an f16 accumulator (the host's `coop_linear_source`):
// f16 fragments cannot be stored to the f32 `out`, so every tile takes the scratch
// write-out and these are never called.
const DIRECT_OK: bool = false;
// The residual is added after the sum (an f16 accumulator would round it).
const RES_FIRST: bool = false;

fn store_c(c: coop_mat16x16<ctype, C>, o: u32, ld: u32) {}

fn load_c(o: u32, ld: u32) -> coop_mat16x16<ctype, C> {
    return coop_mat16x16<ctype, C>();
}
