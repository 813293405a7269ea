// Decode products on matrix units: out[t, n] = Σ_k f(x)[t, k] · w[n, k] (+ residual) for
// rows t of 16-row blocks (the grid's y), each one 16-row A fragment of a 16 × 16 × 16
// cooperative matrix (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX; f16 operands, f32
// accumulator).
// Why: on SIMT lanes (`matvec_sg.wgsl`) 16 rows cost 16 f32 multiply-adds per weight (plus
// the sums of squares each column group redoes): SmolLM2's 49152 × 576 LM head (56.6 MB)
// took 90–118 µs on the H200, about 28 M warp instructions, where its bytes take 13.5 µs
// at 4.2 TB/s. On the matrix units the multiply-adds are a few instructions per 16 × 16
// tile and a product is left with its loads.
// A workgroup is 4 subgroups of SG. It stages f(x) of its 16 rows (rows past n_rows as
// 0) in workgroup memory as f16 once; then either (KPARTS 1) each subgroup owns TILES
// tiles of 16 output columns and walks all of K, or (KPARTS 4) the 4 subgroups share the
// workgroup's TILES tiles and each walks a quarter of K (few-column products: more
// workgroups, and each subgroup's quarter of the weights in flight at once), their
// partial tiles summed in the epilogue. K is walked 64 at a time (4 A and 4 · TILES B
// fragments loaded before the multiply-adds), B = wᵀ read straight from storage (w's
// rows are the columns of B). Every loop runs to a constant (KX): the driver unrolls
// it and issues its loads together (bound by params.k, each trip was one more dependent
// round trip: the head took 75–84 µs, benches/RESULTS.md, wgpu session 11).
// INPUT_MODE 0: x as is (f32, or the attention output in the storage type: `xtype`);
// 1: RMSNorm(x) · norm (the row's scale is found first, so the staged values are O(1)
// and fit f16 whatever the residual stream's magnitude).
// EPI 0: out (+ residual where add_residual = 1) at out_stride and col_offset.
// EPI 1: instead of out, per row and workgroup the (value, index) of the largest output
// (lowest index on ties) to pairs[(t · params.blocks + wid.x) · 2] (f32 bits, index): the
// first stage of `argmax.wgsl`'s two-stage argmax, whose `moa_argmax_finish` reduces a
// row's `blocks` pairs (one dispatch fewer; no logits written and read back).
// EPI 3 (the decode QKV product, KPARTS 4, TILES 2, built with `rope`): workgroup q owns
// columns 16 · sub.. of both halves of head q / (ROPE_HD / 32) (sub = q % (ROPE_HD / 32)),
// 16 rotation pairs of the half-split layout, and `rope_epi` (`matvec_rope.wgsl`'s
// `rope_store`) rotates and stores them as `matvec_sg.wgsl`'s `moa_matvec_sg_rope` does;
// n_out = heads · ROPE_HD from column 0, ROPE_HD a multiple of 32.
// EPI 2 (the gate/up product, KPARTS 4, TILES 2): with n_out = 2 · ffn rows of [gate | up],
// workgroup q owns gate columns 16q.. and up columns ffn + 16q.. and writes
// silu(gate) · up to out[t · out_stride + 16q + c] (as `matvec_sg.wgsl`'s
// `moa_matvec_sg_swiglu_out`).
// The host prepends `enable f16; enable wgpu_cooperative_matrix;`, `alias xtype = ...;`,
// `alias otype = ...;` (out's element: f32, or f16 for a fused gate/up phase whose output
// a down phase loads as A fragments),
// the constants KX (the product's K: a multiple of 16, of 64 where KPARTS is 4), TILES
// (1, 2 or 4), KPARTS (1 or 4) and TPR (SG / 4), and `x_all` / `x_sumsq` / `x_put_all`
// (x staged in one round trip); n_out must be a multiple of 16 (the host checks). It also writes how xs is
// laid out and stored (`wg_stores`): XPAD (8 f16, so that the 16 rows of an A fragment
// start on different banks; unpadded rows were slower and were deleted: RESULTS.md, wgpu
// session 13, call 1), its element type `xse`
// (vec4<f16>), XSW (f16 an element) and `xs_put`.
// It also declares x (binding 1) and `xv` (`x_binding`):
// `x: array<vec4<xtype>>`, or with DIRECT 1 `xh: array<f16>` (f16 input, INPUT_MODE 0),
// which the A fragments are loaded from straight (no staging, no barrier before the
// multiply-adds; the host binds it only where the buffer holds whole 16-row blocks; xs
// is then one element, XS_LEN).
// The host also writes `pairs` (binding 6, or 12 where `rope` puts `matvec_rope.wgsl`'s
// bindings 6–11 in), ROPE_HD and `rope_epi` (a stub without `rope`).
// EARLY 1 (every product with KPARTS 4; the loops below serve KPARTS 1): the host writes
// the K walk out in the source (`@early_loads`, `@early_mma` below): every B fragment of
// the subgroup is loaded before x is staged, so the weights' round trip overlaps x's
// instead of following it (gate/up 9.96 -> 8.53-8.74 µs on the H200, benches/RESULTS.md,
// wgpu session 13, call 1).

override SG: u32 = 32u;
override INPUT_MODE: u32 = 1u;
override EPI: u32 = 0u;
// x is staged with every load of the invocation's share at once into named registers
// (`x_all`, written by the host with TPR = SG / 4), the sums and the stores from them.
// Loops over the row whose trips each waited for their load (XSTAGE 0) took the output
// product 9.9 µs against 6.9 and gate/up 19.0 against 9.6-9.8 on the H200 and were
// deleted (RESULTS.md, wgpu session 12, call 3).

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    eps: f32,
    out_stride: u32,
    col_offset: u32,
    // Workgroups of the dispatch (pairs per row, EPI 1).
    blocks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> w: array<f16>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<otype>;
@group(0) @binding(5) var<storage, read> norm: array<vec4<f32>>;

// Tiles per workgroup, and K per subgroup.
const TPW: u32 = select(TILES, 4u * TILES, KPARTS == 1u);
const KQ: u32 = KX / KPARTS;
// f(x) of the 16 rows, [16][LDX] row-major, f16 (XSW of them an element).
const LDX: u32 = KX + XPAD;
var<workgroup> xs: array<xse, XS_LEN>;
// Each subgroup's finished tiles, [4 subgroups][TILES][16 rows][16 columns].
var<workgroup> cs: array<f32, 4u * TILES * 256u>;

// Stores f(x) of 4-vector j of block row r as f16 (times the row's scale and, INPUT_MODE 1,
// the norm weights; nothing past the row).
fn xput(r: u32, j: u32, v: vec4<f32>, scale: f32) {
    if (j < KX / 4u) {
        var u = v * scale;
        if (INPUT_MODE == 1u) {
            u *= norm[j];
        }
        xs_put(r * LDX + 4u * j, u);
    }
}

// A ≥ B in argmax order: larger value, or equal value and lower index.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

// The first column of the workgroup's tile jw.
fn tile_col(wx: u32, jw: u32) -> u32 {
    if (EPI == 2u) {
        return select(16u * wx, params.n_out / 2u + 16u * wx, jw == 1u);
    }
    if (EPI == 3u) {
        // ROPE_HD / 32 workgroups a head: workgroup wx takes columns 16 · sub.. of both
        // halves of head wx / (ROPE_HD / 32).
        let hq = ROPE_HD / 32u;
        return (wx / hq) * ROPE_HD + (wx % hq) * 16u + select(0u, ROPE_HD / 2u, jw == 1u);
    }
    return (wx * TPW + jw) * 16u;
}

// Output (row r, column c) of the workgroup's tile jw, its K parts added.
fn tile_at(jw: u32, r: u32, c: u32) -> f32 {
    if (KPARTS == 1u) {
        return cs[jw * 256u + r * 16u + c];
    }
    var v = 0.0;
    for (var p = 0u; p < 4u; p++) {
        v += cs[(p * TILES + jw) * 256u + r * 16u + c];
    }
    return v;
}

@compute @workgroup_size(4u * SG)
fn moa_coop_matvec(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // No early return: the matrix operations need uniform control flow.
    let wg = 4u * SG;
    let i = sg * SG + lane;
    // The block's rows: t0 + 0..16.
    let t0 = wid.y * 16u;
    // This subgroup's tiles (wg-tile jw = j, or sg · TILES + j where each subgroup owns
    // its own) and K range; tiles past n_out read the last tile and write nothing.
    let jw0 = select(0u, sg * TILES, KPARTS == 1u);
    let kb = select(0u, sg * KQ, KPARTS == 4u);
    let last = params.n_out - 16u;
    let b0 = min(tile_col(wid.x, jw0), last) * KX + kb;
    let b1 = min(tile_col(wid.x, jw0 + 1u), last) * KX + kb;
    let b2 = min(tile_col(wid.x, jw0 + 2u), last) * KX + kb;
    let b3 = min(tile_col(wid.x, jw0 + 3u), last) * KX + kb;
    // @early_loads
    // Stage f(x) (not with DIRECT): TPR consecutive lanes per row, each taking every
    // TPR-th 4-vector. Loops followed by subgroup operations run the same trips on every
    // lane.
    let tpr = wg / 16u;
    let r = i / tpr;
    let p = i % tpr;
    if (DIRECT == 0u) {
        let xr = x_all(t0 + r, p);
        var s1 = 1.0;
        if (INPUT_MODE == 1u) {
            var sq = x_sumsq(xr);
            for (var m = tpr / 2u; m > 0u; m = m / 2u) {
                sq += subgroupShuffleXor(sq, m);
            }
            s1 = inverseSqrt(sq / f32(KX) + params.eps);
        }
        x_put_all(r, p, xr, s1);
    }
    if (DIRECT == 0u) {
        workgroupBarrier();
    }
    var c0 = coop_mat16x16<f32, C>();
    var c1 = coop_mat16x16<f32, C>();
    var c2 = coop_mat16x16<f32, C>();
    var c3 = coop_mat16x16<f32, C>();
    // @early_mma
    var k0 = select(0u, KQ, EARLY == 1u);
    for (; k0 + 64u <= KQ; k0 += 64u) {
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + k0) / XSW], LDX / XSW);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + k0 + 16u) / XSW], LDX / XSW);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + k0 + 32u) / XSW], LDX / XSW);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + k0 + 48u) / XSW], LDX / XSW);
        let w00 = coopLoad<coop_mat16x16<f16, B>>(&w[b0 + k0], KX);
        let w01 = coopLoad<coop_mat16x16<f16, B>>(&w[b0 + k0 + 16u], KX);
        let w02 = coopLoad<coop_mat16x16<f16, B>>(&w[b0 + k0 + 32u], KX);
        let w03 = coopLoad<coop_mat16x16<f16, B>>(&w[b0 + k0 + 48u], KX);
        if (TILES > 1u) {
            let w10 = coopLoad<coop_mat16x16<f16, B>>(&w[b1 + k0], KX);
            let w11 = coopLoad<coop_mat16x16<f16, B>>(&w[b1 + k0 + 16u], KX);
            let w12 = coopLoad<coop_mat16x16<f16, B>>(&w[b1 + k0 + 32u], KX);
            let w13 = coopLoad<coop_mat16x16<f16, B>>(&w[b1 + k0 + 48u], KX);
            c1 = coopMultiplyAdd(a0, w10, c1);
            c1 = coopMultiplyAdd(a1, w11, c1);
            c1 = coopMultiplyAdd(a2, w12, c1);
            c1 = coopMultiplyAdd(a3, w13, c1);
        }
        if (TILES > 2u) {
            let w20 = coopLoad<coop_mat16x16<f16, B>>(&w[b2 + k0], KX);
            let w21 = coopLoad<coop_mat16x16<f16, B>>(&w[b2 + k0 + 16u], KX);
            let w22 = coopLoad<coop_mat16x16<f16, B>>(&w[b2 + k0 + 32u], KX);
            let w23 = coopLoad<coop_mat16x16<f16, B>>(&w[b2 + k0 + 48u], KX);
            let w30 = coopLoad<coop_mat16x16<f16, B>>(&w[b3 + k0], KX);
            let w31 = coopLoad<coop_mat16x16<f16, B>>(&w[b3 + k0 + 16u], KX);
            let w32 = coopLoad<coop_mat16x16<f16, B>>(&w[b3 + k0 + 32u], KX);
            let w33 = coopLoad<coop_mat16x16<f16, B>>(&w[b3 + k0 + 48u], KX);
            c2 = coopMultiplyAdd(a0, w20, c2);
            c2 = coopMultiplyAdd(a1, w21, c2);
            c2 = coopMultiplyAdd(a2, w22, c2);
            c2 = coopMultiplyAdd(a3, w23, c2);
            c3 = coopMultiplyAdd(a0, w30, c3);
            c3 = coopMultiplyAdd(a1, w31, c3);
            c3 = coopMultiplyAdd(a2, w32, c3);
            c3 = coopMultiplyAdd(a3, w33, c3);
        }
        c0 = coopMultiplyAdd(a0, w00, c0);
        c0 = coopMultiplyAdd(a1, w01, c0);
        c0 = coopMultiplyAdd(a2, w02, c0);
        c0 = coopMultiplyAdd(a3, w03, c0);
    }
    for (; k0 < KQ; k0 += 16u) {
        let a = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + k0) / XSW], LDX / XSW);
        c0 = coopMultiplyAdd(a, coopLoad<coop_mat16x16<f16, B>>(&w[b0 + k0], KX), c0);
        if (TILES > 1u) {
            c1 = coopMultiplyAdd(a, coopLoad<coop_mat16x16<f16, B>>(&w[b1 + k0], KX), c1);
        }
        if (TILES > 2u) {
            c2 = coopMultiplyAdd(a, coopLoad<coop_mat16x16<f16, B>>(&w[b2 + k0], KX), c2);
            c3 = coopMultiplyAdd(a, coopLoad<coop_mat16x16<f16, B>>(&w[b3 + k0], KX), c3);
        }
    }
    let s0 = sg * TILES * 256u;
    coopStoreT(c0, &cs[s0], 16u);
    if (TILES > 1u) {
        coopStoreT(c1, &cs[s0 + 256u], 16u);
    }
    if (TILES > 2u) {
        coopStoreT(c2, &cs[s0 + 512u], 16u);
        coopStoreT(c3, &cs[s0 + 768u], 16u);
    }
    workgroupBarrier();
    if (EPI == 1u) {
        // Row r's TPR lanes scan its columns in increasing order, then meet.
        var bv = -3.4e38;
        var bi = 0xffffffffu;
        for (var cc = 0u; cc < TPW * 16u; cc += tpr) {
            let c = cc + p;
            let n = tile_col(wid.x, c / 16u) + c % 16u;
            let v = tile_at(c / 16u, r, c % 16u);
            if (n < params.n_out && v > bv) {
                bv = v;
                bi = n;
            }
        }
        for (var m = tpr / 2u; m > 0u; m = m / 2u) {
            let ov = subgroupShuffleXor(bv, m);
            let oi = subgroupShuffleXor(bi, m);
            if (better(ov, oi, bv, bi)) {
                bv = ov;
                bi = oi;
            }
        }
        if (p == 0u && t0 + r < params.n_rows) {
            let o = ((t0 + r) * params.blocks + wid.x) * 2u;
            pairs[o] = bitcast<u32>(bv);
            pairs[o + 1u] = bi;
        }
    } else if (EPI == 3u) {
        // Tile 0 holds the first columns of 16 rotation pairs, tile 1 their partners
        // (ROPE_HD / 2 further): `rope_epi` rotates them and stores Q or the cache slot.
        let hq = ROPE_HD / 32u;
        for (var e = i; e < 256u; e += wg) {
            let t = t0 + e / 16u;
            if (t < params.n_rows && tile_col(wid.x, 1u) < params.n_out) {
                let a = tile_at(0u, e / 16u, e % 16u);
                let b = tile_at(1u, e / 16u, e % 16u);
                rope_epi(t, wid.x / hq, (wid.x % hq) * 16u + e % 16u, a, b);
            }
        }
    } else if (EPI == 2u) {
        for (var e = i; e < 256u; e += wg) {
            let t = t0 + e / 16u;
            let n = 16u * wid.x + e % 16u;
            if (t < params.n_rows && n < params.n_out / 2u) {
                let gate = tile_at(0u, e / 16u, e % 16u);
                let up = tile_at(1u, e / 16u, e % 16u);
                out[t * params.out_stride + n] = otype(gate / (1.0 + exp(-gate)) * up);
            }
        }
    } else {
        for (var e = i; e < TPW * 256u; e += wg) {
            let t = t0 + (e % 256u) / 16u;
            let n = tile_col(wid.x, e / 256u) + e % 16u;
            if (t < params.n_rows && n < params.n_out) {
                let o = t * params.out_stride + params.col_offset + n;
                var v = tile_at(e / 256u, (e % 256u) / 16u, e % 16u);
                if (params.add_residual == 1u) {
                    v += residual[o];
                }
                out[o] = otype(v);
            }
        }
    }
}
