// Prefill products on matrix units: out[t, n] = Σ_k x[t, k] · w[n, k] (+ residual[t, n]),
// the same contract as linear.wgsl (its ProductParams, bindings and output slice), with the
// multiply-adds in 16 × 16 × 16 cooperative matrices (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX:
// VK_KHR_cooperative_matrix on Vulkan, simdgroup matrices on Metal).
//
// A workgroup owns a 128-token × 128-column tile of `out` and is NSG = 8 subgroups of SG
// invocations; subgroup s owns the 64 × 32 block (s / 4, s % 4) of the tile: 4 × 2
// accumulator fragments, so each 16-wide step of K loads 4 A and 2 B fragments from
// workgroup memory for 8 multiply-adds (the 64 × 64 kernel before it: 4 for 4).
// 48 KiB of workgroup memory. Session 27 on the H200 (benches/RESULTS.md): 38-54
// TFLOP/s at SmolLM2's prefill shapes built without naga's runtime checks, 21-25 with
// them (their loop counters keep the driver from unrolling fetch/stage, so xr / wr live
// in local memory); 128 × 64 tiles with 4 subgroups 10-12; the 64 × 64 kernel 8.5-9.5.
// Session 28, the direct write-out: 55-67 TFLOP/s alone with a residual (qkv 55 with
// DIRECT 1; out 55.6, gate/up 63.5, down 67.2 with DIRECT 2) against the 64-66 of a
// 4096³ matrix-unit GEMM; now the loads bound it (2.5× faster without them at K = 1536).
// K runs in stages of 32, double-buffered: while the matrix units work on stage s, every
// invocation holds stage s + 1's slices of x and w in registers (16-byte words: 4 f32 of
// x, or since session 29 8 halves of w or of an f16 x, where 8-byte vec4<f16> words were
// read before: the out product with f16 x 0.63 → 0.43 ms a layer on the H200), converts
// x to f16 and writes them to the other buffer after the multiply-adds; one barrier a
// stage. Words are loaded whole where K is a multiple of a
// word and the word lies inside the matrices, else element by element, zero outside (any
// K, token count and column count work). Rows in workgroup memory are padded to 40 halves
// (80 bytes), so the fragments' 16-byte row pieces fall on different banks.
// Session 30 (benches/RESULTS.md): the stage written in vec2<f16> / vec4<f16> elements with
// each thread's pieces rotated (to spread a warp's stores over the banks) lost every
// product by 19-44% (the scalar stores rotated alone: 2x), so these in-order scalar stores
// are not the bound; f16 x is 6-13% faster than f32 x in every product fed f32.
// Epilogue (session 28): a subgroup whose 64 × 32 block lies inside `out` (every block
// of a whole tile; DIRECT 2 also edge tiles' inner blocks), with the output's stride and
// first column multiples of 4 (every fragment's rows start on 16 bytes, as
// VK_KHR_cooperative_matrix asks) and an f32 accumulator, stores its fragments straight
// to `out` (`coopStoreT`), the residual loaded as the accumulators' initial value; the
// other blocks (or all, with DIRECT 0 or an f16 accumulator) store one fragment at a time
// to the subgroup's 16 × 16 scratch and its invocations write it out (bounded, strided).
// With an f32 accumulator every block starts from the residual (session 29: blocks
// across the edge load it through the scratch), so a token's sums do not depend on
// which tiles are whole; an f16 accumulator adds it in the write-out. SWIGLU (session
// 29): the gate/up product with SwiGLU in its epilogue, see its override (the pass's
// products and norms, RoPE, SwiGLU 132.7 → 101.7 ms with the 16-byte words).
// The host appends `store_c` / `load_c`, `DIRECT_OK` and `RES_FIRST` (coop_linear_direct
// for f32 accumulators; stubs and false for f16, whose fragments cannot be stored to f32)
// and the x binding with its loads (coop_linear_x32 / coop_linear_x16).
// The accumulator is `ctype` (f32 where the adapter offers f16 × f16 → f32, else f16).
// The host prepends the `enable` lines and `alias wtype = f16; alias xtype = ...;
// alias ctype = ...;` (weights must be f16: the matrix units take f16 operands), and
// appends product_params.wgsl (`ProductParams`).

@group(0) @binding(0) var<uniform> params: ProductParams;
// x is bound by the appended input part (coop_linear_x32 / coop_linear_x16.wgsl), in
// 16-byte words of XE elements (4 f32 or 8 f16). w in 16-byte words of 8 halves (session
// 29; before it 8-byte vec4<f16> words): element i is w[i / 8], bits 16 (i % 2) of
// component (i / 2) % 4. Its size need not be a multiple of 16 bytes where K is a
// multiple of 8 (every word read then lies inside a row).
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The subgroup size (set by the host from the adapter; the workgroup is NSG subgroups).
override SG: u32 = 32u;
// Timing diagnostic (wrong results; `product_bench` only): 1 no loads after the first
// stage, 2 no multiply-adds, 3 no write-out. 0: the product.
override DIAG: u32 = 0u;
// 2 (the default): whole tiles and the 64 × 32 blocks of edge tiles that lie inside
// `out` store their fragments straight to it; 1: whole tiles only; 0: every tile through
// the scratch (session 27's epilogue). Session 28 on the H200 (benches/RESULTS.md): the
// prefill pass's products 150.7 → 133 ms (2) and 140 ms (1); 160 registers (0: 164).
override DIRECT: u32 = 2u;
// 1: the gate/up product with SwiGLU in its epilogue (session 29): w is the [gate; up]
// weight (2 · n_out rows), `out` gets act[t, j] = silu(gate[t, j]) · up[t, j] for its
// n_out = ffn columns; a workgroup owns TN / 2 of them, each subgroup's fragment pair
// (c_r0, c_r1) the gate and up columns of the same 16 (the staging maps the tile's rows
// to weight rows, see w_row), so no weight is reordered. No residual, no direct stores.
override SWIGLU: u32 = 0u;

// Tile: TM tokens × TN columns; K stages of KS; workgroup rows padded to KP halves.
const TM: u32 = 128u;
const TN: u32 = 128u;
// Subgroups a workgroup, and of them across the tile's columns.
const NSN: u32 = TN / 32u;
const NSG: u32 = (TM / 64u) * NSN;
const KS: u32 = 32u;
const KP: u32 = 40u;
// Words a stage: x's TM × KS / XE and w's TN × KS / 8, and the most a thread holds
// (subgroups of 16 or more: 64 or more invocations). A thread takes XV / threads and
// WV / threads of them: constants once SG is set, so the driver unrolls the loops and
// keeps xr / wr in registers.
const XV: u32 = TM * KS / XE;
const WV: u32 = TN * KS / 8u;
const XR: u32 = 16u;
const WR: u32 = 8u;

// Two stages of x ([TM tokens][KP]) and w ([TN columns][KP]), row-major.
var<workgroup> xs: array<f16, 2u * TM * KP>;
var<workgroup> ws: array<f16, 2u * TN * KP>;
// One finished 16 × 16 fragment per subgroup, row-major, for the bounded write-out.
var<workgroup> cs: array<ctype, NSG * 256u>;

// Next stage's slices, in registers while the current stage multiplies (x as its input
// part's words: 4 f32 or 8 packed halves; w 8 packed halves).
var<private> xr: array<xword, XR>;
var<private> wr: array<vec4<u32>, WR>;

// Half `i` (bits) of a packed word array's element: one u32 load.
fn half_bits(word: u32, i: u32) -> u32 {
    return (word >> (16u * (i & 1u))) & 0xffffu;
}

// Halves e .. e + 7 of w (e a multiple of 8): one 16-byte load where `vec_ok` (K a
// multiple of 8) and all 8 lie in the row (`valid` ≥ 8), else the first `valid` one by
// one, zero after them.
fn w_load(e: u32, valid: u32, vec_ok: bool) -> vec4<u32> {
    if (vec_ok && valid >= 8u) {
        return w[e >> 3u];
    }
    var v = vec4<u32>(0u);
    for (var c = 0u; c < 8u; c++) {
        if (c < valid) {
            let i = e + c;
            v[c >> 1u] |= half_bits(w[i >> 3u][(i >> 1u) & 3u], i) << (16u * (c & 1u));
        }
    }
    return v;
}

// Writes 8 packed halves to ws[o ..].
fn ws_put(o: u32, v: vec4<u32>) {
    for (var c = 0u; c < 4u; c++) {
        let h = vec2<f16>(unpack2x16float(v[c]));
        ws[o + 2u * c] = h.x;
        ws[o + 2u * c + 1u] = h.y;
    }
}

// Writes 8 packed halves to xs[o ..] (the f16 input part's x_put).
fn xs_put8(o: u32, v: vec4<u32>) {
    for (var c = 0u; c < 4u; c++) {
        let h = vec2<f16>(unpack2x16float(v[c]));
        xs[o + 2u * c] = h.x;
        xs[o + 2u * c + 1u] = h.y;
    }
}

// The weight row of row r of column tile `tile` and whether it exists: row tile · TN + r,
// or with SWIGLU gate row j (r % 32 < 16) or up row n_out + j of act column
// j = tile · TN / 2 + (r / 32) · 16 + r % 16.
fn w_row(tile: u32, r: u32) -> vec2<u32> {
    if (SWIGLU == 1u) {
        let j = tile * (TN / 2u) + (r / 32u) * 16u + (r % 16u);
        let row = select(j, params.n_out + j, (r % 32u) >= 16u);
        return vec2<u32>(row, u32(j < params.n_out));
    }
    let n = tile * TN + r;
    return vec2<u32>(n, u32(n < params.n_out));
}

// Loads stage k0's slices into xr / wr: thread lid takes words lid + j · threads
// (threads = SG · NSG).
fn fetch(k0: u32, t0: u32, tile: u32, lid: u32) {
    let threads = SG * NSG;
    let kk = params.k;
    let x_ok = (kk % XE) == 0u;
    for (var j = 0u; j < min(XV / threads, XR); j++) {
        let i = lid + j * threads;
        let t = t0 + i / (KS / XE);
        let k = k0 + (i % (KS / XE)) * XE;
        var v = xword();
        if (t < params.n_rows && k < kk) {
            v = x_load(t * kk + k, kk - k, x_ok);
        }
        xr[j] = v;
    }
    let w_ok = (kk & 7u) == 0u;
    for (var j = 0u; j < min(WV / threads, WR); j++) {
        let i = lid + j * threads;
        let n = w_row(tile, i / (KS / 8u));
        let k = k0 + (i % (KS / 8u)) * 8u;
        var v = vec4<u32>(0u);
        if (n.y == 1u && k < kk) {
            v = w_load(n.x * kk + k, kk - k, w_ok);
        }
        wr[j] = v;
    }
}

// Writes the registers' stage into buffer `b` (x converted to f16).
fn stage(b: u32, lid: u32) {
    let threads = SG * NSG;
    for (var j = 0u; j < min(XV / threads, XR); j++) {
        let i = lid + j * threads;
        x_put(b * TM * KP + (i / (KS / XE)) * KP + (i % (KS / XE)) * XE, xr[j]);
    }
    for (var j = 0u; j < min(WV / threads, WR); j++) {
        let i = lid + j * threads;
        ws_put(b * TN * KP + (i / (KS / 8u)) * KP + (i % (KS / 8u)) * 8u, wr[j]);
    }
}

// Writes fragment (tr, tc) of the tile, already in this subgroup's scratch at `base`
// (nothing where `skip`: a block stored directly). The residual is added here only where
// the accumulators did not start from it (an f16 accumulator: RES_FIRST false).
fn write_out(base: u32, t: u32, n: u32, lane: u32, skip: bool) {
    for (var e = lane; e < 256u && DIAG != 3u && !skip; e += SG) {
        let tt = t + e / 16u;
        let nn = n + e % 16u;
        if (tt < params.n_rows && nn < params.n_out) {
            let o = tt * params.out_stride + params.col_offset + nn;
            var v = f32(cs[base + e]);
            if (!RES_FIRST && params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}

// The residual of fragment (t.., n..) (zero outside `out`) as an accumulator's initial
// value, through this subgroup's scratch at `base`; the caller's control flow is uniform
// across the workgroup (two barriers). `use_it` false: the barriers only.
fn residual_c(base: u32, t: u32, n: u32, lane: u32, use_it: bool) -> coop_mat16x16<ctype, C> {
    if (use_it) {
        for (var e = lane; e < 256u; e += SG) {
            let tt = t + e / 16u;
            let nn = n + e % 16u;
            var v = 0.0;
            if (tt < params.n_rows && nn < params.n_out) {
                v = residual[tt * params.out_stride + params.col_offset + nn];
            }
            cs[base + e] = ctype(v);
        }
    }
    workgroupBarrier();
    let c = coopLoadT<coop_mat16x16<ctype, C>>(&cs[base], 16u);
    workgroupBarrier();
    return c;
}

// act = silu(g) · u for the fragment pair (g, u) of act rows t.., columns n.., through
// this subgroup's scratch at `base` (8 · SG elements a round: one round for SG ≥ 32);
// uniform control flow across the workgroup (its barriers).
fn swiglu_out(g: coop_mat16x16<ctype, C>, u: coop_mat16x16<ctype, C>, base: u32, t: u32, n: u32, lane: u32) {
    for (var p0 = 0u; p0 < 256u; p0 += 8u * SG) {
        coopStoreT(g, &cs[base], 16u);
        workgroupBarrier();
        var gv: array<f32, 8>;
        for (var m = 0u; m < 8u; m++) {
            let e = p0 + lane + m * SG;
            if (e < 256u) {
                gv[m] = f32(cs[base + e]);
            }
        }
        workgroupBarrier();
        coopStoreT(u, &cs[base], 16u);
        workgroupBarrier();
        for (var m = 0u; m < 8u; m++) {
            let e = p0 + lane + m * SG;
            let tt = t + e / 16u;
            let nn = n + e % 16u;
            if (e < 256u && tt < params.n_rows && nn < params.n_out && DIAG != 3u) {
                let gg = gv[m];
                out[tt * params.out_stride + params.col_offset + nn] =
                    gg / (1.0 + exp(-gg)) * f32(cs[base + e]);
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(SG * NSG)
fn moa_coop_linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * TN;
    let t0 = wid.y * TM;
    // No early return (naga requires the matrix ops in uniform control flow without
    // one): a workgroup outside the output, which the host never launches, stages zeros
    // and writes nothing.
    let s = lid / SG;
    let lane = lid % SG;
    // This subgroup's 64 × 32 block: rows tr.., columns tc.. of the tile.
    let tr = (s / NSN) * 64u;
    let tc = (s % NSN) * 32u;
    var c00 = coop_mat16x16<ctype, C>();
    var c01 = coop_mat16x16<ctype, C>();
    var c10 = coop_mat16x16<ctype, C>();
    var c11 = coop_mat16x16<ctype, C>();
    var c20 = coop_mat16x16<ctype, C>();
    var c21 = coop_mat16x16<ctype, C>();
    var c30 = coop_mat16x16<ctype, C>();
    var c31 = coop_mat16x16<ctype, C>();
    // Fragment rows on 16 bytes (the direct loads' and stores' alignment).
    let aligned = SWIGLU == 0u && DIRECT_OK && DIRECT != 0u && (params.out_stride & 3u) == 0u
        && (params.col_offset & 3u) == 0u;
    // The whole tile inside `out`: uniform across the workgroup (its id and the uniform
    // ProductParams only), as the barriers of the scratch write-out it skips require.
    let whole = aligned && t0 + TM <= params.n_rows && n0 + TN <= params.n_out;
    // This subgroup's 64 × 32 block stores directly: the whole tile's, or with DIRECT 2
    // an edge tile's blocks that lie inside `out` (uniform across the subgroup only: its
    // matrix operations are the subgroup's, and naga checks uniformity a workgroup).
    let mine = whole || (aligned && DIRECT == 2u && t0 + tr + 64u <= params.n_rows
        && n0 + tc + 32u <= params.n_out);
    let ld = params.out_stride;
    // This subgroup's first element of `out` (and of `residual`, laid out alike).
    let o = (t0 + tr) * ld + params.col_offset + n0 + tc;
    if (mine && params.add_residual == 1u) {
        c00 = load_c(o, ld);
        c01 = load_c(o + 16u, ld);
        c10 = load_c(o + 16u * ld, ld);
        c11 = load_c(o + 16u * ld + 16u, ld);
        c20 = load_c(o + 32u * ld, ld);
        c21 = load_c(o + 32u * ld + 16u, ld);
        c30 = load_c(o + 48u * ld, ld);
        c31 = load_c(o + 48u * ld + 16u, ld);
    }
    let base = s * 256u;
    let t = t0 + tr;
    let n = n0 + tc;
    // Session 29: every other block's accumulators start from the residual too (through
    // the scratch), so a token's sums are the same whether its tile is whole or not
    // (chunked and one-pass prefill bitwise equal again; session 28 added it after the
    // sum in edge tiles: one f16 step apart in f16 activations). Only tiles with a block
    // across the output's edge (or every edge tile where the direct stores are off) take
    // this; uniform across the workgroup (tile geometry and ProductParams only).
    let rows_cut = t0 + TM > params.n_rows && (params.n_rows - t0) % 64u != 0u;
    let cols_cut = n0 + TN > params.n_out && (params.n_out - n0) % 32u != 0u;
    let stage_res = RES_FIRST && SWIGLU == 0u && params.add_residual == 1u && !whole
        && (!aligned || DIRECT != 2u || rows_cut || cols_cut);
    if (stage_res) {
        let use_it = !mine;
        var r = residual_c(base, t, n, lane, use_it);
        if (use_it) { c00 = r; }
        r = residual_c(base, t, n + 16u, lane, use_it);
        if (use_it) { c01 = r; }
        r = residual_c(base, t + 16u, n, lane, use_it);
        if (use_it) { c10 = r; }
        r = residual_c(base, t + 16u, n + 16u, lane, use_it);
        if (use_it) { c11 = r; }
        r = residual_c(base, t + 32u, n, lane, use_it);
        if (use_it) { c20 = r; }
        r = residual_c(base, t + 32u, n + 16u, lane, use_it);
        if (use_it) { c21 = r; }
        r = residual_c(base, t + 48u, n, lane, use_it);
        if (use_it) { c30 = r; }
        r = residual_c(base, t + 48u, n + 16u, lane, use_it);
        if (use_it) { c31 = r; }
    }
    let steps = (params.k + KS - 1u) / KS;
    fetch(0u, t0, wid.x, lid);
    stage(0u, lid);
    workgroupBarrier();
    for (var st = 0u; st < steps; st++) {
        let b = st & 1u;
        let more = st + 1u < steps;
        if (more && DIAG != 1u) {
            fetch((st + 1u) * KS, t0, wid.x, lid);
        }
        let xb = b * TM * KP + tr * KP;
        let wb = b * TN * KP + tc * KP;
        for (var kk = 0u; kk < KS && DIAG != 2u; kk += 16u) {
            // A = x (row-major, tokens × k); B = wᵀ, i.e. w's rows read column-major.
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[wb + kk], KP);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[wb + 16u * KP + kk], KP);
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + kk], KP);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 16u * KP + kk], KP);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            let a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 32u * KP + kk], KP);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            let a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs[xb + 48u * KP + kk], KP);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
        }
        if (more && DIAG != 1u) {
            stage(1u - b, lid);
        }
        workgroupBarrier();
    }
    if (mine && DIAG != 3u) {
        store_c(c00, o, ld);
        store_c(c01, o + 16u, ld);
        store_c(c10, o + 16u * ld, ld);
        store_c(c11, o + 16u * ld + 16u, ld);
        store_c(c20, o + 32u * ld, ld);
        store_c(c21, o + 32u * ld + 16u, ld);
        store_c(c30, o + 48u * ld, ld);
        store_c(c31, o + 48u * ld + 16u, ld);
    }
    if (whole) {
        return;
    }
    if (SWIGLU == 1u) {
        // Act columns of this subgroup's 16 gate / up pairs: TN / 2 a workgroup.
        let j = wid.x * (TN / 2u) + tc / 2u;
        swiglu_out(c00, c01, base, t, j, lane);
        swiglu_out(c10, c11, base, t + 16u, j, lane);
        swiglu_out(c20, c21, base, t + 32u, j, lane);
        swiglu_out(c30, c31, base, t + 48u, j, lane);
        return;
    }
    coopStoreT(c00, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c01, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c10, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 16u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c11, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 16u, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c20, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 32u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c21, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 32u, n + 16u, lane, mine);
    workgroupBarrier();
    coopStoreT(c30, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 48u, n, lane, mine);
    workgroupBarrier();
    coopStoreT(c31, &cs[base], 16u);
    workgroupBarrier();
    write_out(base, t + 48u, n + 16u, lane, mine);
}
