// The KV-cache write rule shared by rope_kv.wgsl and matvec.wgsl's moa_matvec_rope
// (appended to their source by runtime::shaders, so the layout of docs/DESIGN.md §5 is
// written once in WGSL). `seg` = (first slot, sink, ring length, unused) of one KV head's
// segment. Returns the slot of position p, or -1 when the plan does not keep it (or a
// later token of the same pass, whose last position is `last`, overwrites that ring slot:
// writing it would race).
fn cache_slot(seg: vec4<u32>, p: u32, last: u32) -> i32 {
    if (p < seg.y) {
        return i32(seg.x + p);
    }
    if (seg.z == 0u || p + seg.z <= last) {
        return -1;
    }
    return i32(seg.x + seg.y + (p - seg.y) % seg.z);
}
