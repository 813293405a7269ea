// Decode-sized products on subgroups: out[t, n] = Σ_k f(x)[t, k] · w[n, k] (+ residual)
// for up to 16 rows a workgroup row (4 · ROW_GROUPS; the grid's y is
// ceil(rows / (4 · ROW_GROUPS))).
// `matvec.wgsl` splits K over a whole 64-wide workgroup and reduces through a 6-level
// barrier tree in workgroup memory, with its partial sums in function-scope arrays that
// are indexed in loops (a driver may keep those in local memory). Here one subgroup owns
// 4 output columns × all 16 rows: its lanes split K, each weight vector is loaded once
// for the 16 rows, the partial sums live in five named 4 × 4 matrices (no array, no
// dynamic index), and they are reduced with subgroup shuffles: no workgroup memory and no
// barrier until the K loop is done. Then one lane per subgroup publishes its 64 sums
// (and 16 sums of squares) to workgroup memory, and after one barrier the workgroup
// writes its outputs. Where a product has few columns (a 576-column product is 144
// groups of 4), KSPLIT subgroups share a column group, each taking every KSPLIT-th
// stretch of K: a workgroup is GROUPS · KSPLIT · SG invocations for GROUPS column groups
// (GROUPS = 64 / SG unless `MOA_WGPU_SG_GROUPS` says otherwise).
// The host prepends `alias wtype = ...; alias xtype = ...;` (naga 30 takes the subgroup
// built-ins without `enable subgroups;`, which it does not parse yet) and builds it only
// where the adapter has one fixed subgroup size SG from 8 to 64 (DESIGN.md §7).
// x and w are read as 4-vectors: K must be a multiple of 4 (the host checks).
//
// INPUT_MODE (as in matvec.wgsl):
// 0: x as is;
// 1: RMSNorm(x) · norm, the sums of squares accumulated in the same K loop and the row
//    scale applied after the reduction (Σ_k (x_k·s·g_k)·w_nk = s·Σ_k x_k·(g_k·w_nk));
// 2: SwiGLU of a fused [gate | up] row of width 2K: x_k = silu(gate_k) · up_k.
override INPUT_MODE: u32 = 0u;
// The adapter's subgroup size (a power of two dividing 64).
override SG: u32 = 32u;
// Subgroups per column group (1, 2, 4 or 8; with STEPS > 0 any count up to 32), each summing
// its part of K.
override KSPLIT: u32 = 1u;
// Column groups (of 4 output columns) per workgroup: 64 / SG by default; fewer spreads a
// product over more workgroups (`MOA_WGPU_SG_GROUPS`: SmolLM2's 576-column products at
// KSPLIT 4 and 2 groups were 72 workgroups on the H200's 132 SMs). GROUPS · KSPLIT
// subgroups must fit `part_sums` (32) and the workgroup 256 invocations (the host checks).
override GROUPS: u32 = 2u;
// Invocations per workgroup: GROUPS · KSPLIT · SG (the host passes it; WGSL wants one
// name).
override WG: u32 = 64u;
// A timing diagnostic (`MOA_WGPU_SG_DIAG`; the results are wrong): 1 skips the K loop
// (lane-dependent sums, so the reduction still runs: what is left is the dispatch, the
// reduction, the barrier and the epilogue); 2 reads row 0's x for all 16 rows (one x load
// a step instead of 16: the cost of x's loads); 3 is the K loop's loads-only twin (every
// weight and x load of the real loop, summed with ~80 adds a trip instead of ~330
// multiply-adds: what is left is the grid, the loads and their round trips); 4 is its
// weights-only twin (every weight load of 3, no x load: 3 against 4 is what x's 16 rows
// of loads a weight vector cost); 5 its x-only twin (every x load of 3, no weight load).
override DIAG: u32 = 0u;
// Groups of 4 rows a subgroup (1, 2 or 4: 4, 8 or 16 rows a workgroup row;
// `MOA_WGPU_SG_ROWS`). Fewer rows a subgroup mean fewer x loads and sums a lane (a lane's
// 16 x 4-vectors a weight vector plus 80 sums do not fit its ~120 registers at once, so
// the driver issues x in dependent batches) at the price of each weight being loaded by
// 16 / (4 · ROW_GROUPS) workgroups and that many more workgroups; the reduction skips
// the halving steps of the row groups that are not there. The host takes 2 on subgroups
// of 32 or more (on the H200 80 registers instead of 120-128, 112 instead of 150 with the
// RMSNorm; every product 0.3-0.6 us faster, RESULTS "wgpu engine, session 22"), 4
// elsewhere.
override ROW_GROUPS: u32 = 4u;
// K steps a lane, fixed (`MOA_WGPU_SG_FIT`; 0: the K loop below, as many trips as
// ceil(K / 4 / (KSPLIT · SG)) at run time). With STEPS > 0 the host sizes KSPLIT so that
// KSPLIT · SG · STEPS lanes cover K / 4 (no subgroup without a K step, where the loop
// leaves up to KSPLIT - 1 subgroups idle that still run the reduction) and the steps are a
// constant loop (SmolLM2 on 32 lanes: K 576 one step on 5 subgroups, K 1536 two on 6).
// The H200's driver keeps a 2-step loop rolled (its binary is the K loop's size), so step
// 2's loads wait for step 1's multiply-adds; the steps written out with both steps' loads
// first (`MOA_WGPU_SG_HOIST`, session 35) took down 0.2 µs lower and not the step: deleted.
override STEPS: u32 = 0u;
// The epilogue's global loads before the K loop (`MOA_WGPU_SG_EARLY`): the residual of
// the first output an invocation writes (plain entry point), the token's (position, row)
// and the RoPE cos/sin of its rotation pair (RoPE entry point), so that after the barrier
// the chain is workgroup memory, arithmetic and the stores (0: loaded after the barrier,
// each a dependent round trip, the RoPE pair's two in a row; the default, 1, won every
// pair on the H200, session 35).
override EARLY: u32 = 1u;
// K trips of the loop form (STEPS = 0) whose weight loads a lane issues before the first
// of them is used (`MOA_WGPU_SG_UNROLL`, 1, 2 or 4). One trip keeps one 4-vector of each
// of the 4 columns in flight a lane (32 bytes of f16): enough for SmolLM2's small products
// (two trips were slower there: RESULTS.md, wgpu sessions 9 and 11), not for a 1B-8B
// model's, whose products read 8-235 MB at ~1.4 TB/s with one trip (session 39).
override UNROLL: u32 = 1u;
// With 4 rows a workgroup row (ROW_GROUPS 1), the K loop's x loads of all UNROLL trips
// issued right after its weight loads, before the first multiply-add
// (`MOA_WGPU_SG_XFIRST`, session 39): at UNROLL 4 the 8B shape's gate/up read its weights
// at 2.5 TB/s, its weights-only twin (DIAG 4) at 3.3.
override XFIRST: u32 = 0u;

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    eps: f32,
    out_stride: u32,
    col_offset: u32,
    // Quantized weights' format (quant_weights.wgsl); 0 for weights in the storage type.
    quant: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
// Binding 2 (w) and load_w4(col, j) come from the weight source prepended by the host:
// matvec_sg_weights.wgsl (the storage type) or quant_weights.wgsl +
// matvec_sg_weights_quant.wgsl.
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> norm: array<vec4<f32>>;

// The 16 rows' sums: a[g][r][c] = row 4g + r, column c; s[g][r] = Σ x² of row 4g + r.
struct Sums {
    a0: mat4x4<f32>,
    a1: mat4x4<f32>,
    a2: mat4x4<f32>,
    a3: mat4x4<f32>,
    s: mat4x4<f32>,
}

// Per subgroup of the workgroup (at most 256 / 8), its reduced sums: [r] = the 4 columns
// of block row r (0..16), [16 + g] = the sums of squares of rows 4g..4g+4.
var<workgroup> part_sums: array<array<vec4<f32>, 20>, 32>;

// x[row, 4j..4j+4] after the input op (before any RMSNorm scale).
fn load_x(row: u32, j: u32) -> vec4<f32> {
    let k4 = params.k / 4u;
    if (INPUT_MODE == 2u) {
        let g = vec4<f32>(x[row * 2u * k4 + j]);
        return g / (1.0 + exp(-g)) * vec4<f32>(x[row * 2u * k4 + k4 + j]);
    }
    return vec4<f32>(x[row * k4 + j]);
}

// The four columns' weights at 4j..4j+4, as the transpose of [w_c0 | w_c1 | w_c2 | w_c3]
// (times the RMSNorm weight): (wt · X)[r][c] = Σ_k w_c[k] · x_r[k] for X = [x_r0 | …].
fn load_wt(cols: vec4<u32>, j: u32) -> mat4x4<f32> {
    var g = vec4<f32>(1.0);
    if (INPUT_MODE == 1u) {
        g = norm[j];
    }
    if (DIAG == 5u) {
        // The x-only twin: no weight load.
        return mat4x4<f32>(g, g + 1.0, g + 2.0, g + f32(j));
    }
    return transpose(mat4x4<f32>(
        load_w4(cols.x, j) * g,
        load_w4(cols.y, j) * g,
        load_w4(cols.z, j) * g,
        load_w4(cols.w, j) * g,
    ));
}

// One K step of one group of 4 rows (first row r0, clamped to the last row).
fn rows4(r0: u32, j: u32) -> mat4x4<f32> {
    let last = select(params.n_rows - 1u, 0u, DIAG == 2u);
    return mat4x4<f32>(
        load_x(min(r0, last), j),
        load_x(min(r0 + 1u, last), j),
        load_x(min(r0 + 2u, last), j),
        load_x(min(r0 + 3u, last), j),
    );
}

fn squares(m: mat4x4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(m[0], m[0]), dot(m[1], m[1]), dot(m[2], m[2]), dot(m[3], m[3]));
}

// Adds K step j of the active row groups (n_groups of 4, uniform) to `acc`; `live` is 0
// for a lane past K (its wt is 0 and its x must not count in the sums of squares).
fn step(acc: Sums, wt: mat4x4<f32>, t0: u32, n_groups: u32, j: u32, live: f32) -> Sums {
    var r = acc;
    if (DIAG == 4u) {
        // The weights-only twin: every weight load of DIAG 3, x never read.
        r.a0[0] += wt[0] + wt[1] + wt[2] + wt[3] + vec4<f32>(f32(j));
        return r;
    }
    if (DIAG == 3u || DIAG == 5u) {
        // Every load of the real step, folded with adds only (wrong sums, timing only).
        let x0 = rows4(t0, j);
        var v = wt[0] + wt[1] + wt[2] + wt[3] + x0[0] + x0[1] + x0[2] + x0[3];
        if (ROW_GROUPS > 1u && n_groups > 1u) {
            let x1 = rows4(t0 + 4u, j);
            v += x1[0] + x1[1] + x1[2] + x1[3];
        }
        if (ROW_GROUPS > 2u && n_groups > 2u) {
            let x2 = rows4(t0 + 8u, j);
            v += x2[0] + x2[1] + x2[2] + x2[3];
        }
        if (ROW_GROUPS > 3u && n_groups > 3u) {
            let x3 = rows4(t0 + 12u, j);
            v += x3[0] + x3[1] + x3[2] + x3[3];
        }
        r.a0[0] += v;
        return r;
    }
    let x0 = rows4(t0, j);
    r.a0 += wt * x0;
    if (INPUT_MODE == 1u) {
        r.s[0] += squares(x0) * live;
    }
    if (ROW_GROUPS > 1u && n_groups > 1u) {
        let x1 = rows4(t0 + 4u, j);
        r.a1 += wt * x1;
        if (INPUT_MODE == 1u) {
            r.s[1] += squares(x1) * live;
        }
    }
    if (ROW_GROUPS > 2u && n_groups > 2u) {
        let x2 = rows4(t0 + 8u, j);
        r.a2 += wt * x2;
        if (INPUT_MODE == 1u) {
            r.s[2] += squares(x2) * live;
        }
    }
    if (ROW_GROUPS > 3u && n_groups > 3u) {
        let x3 = rows4(t0 + 12u, j);
        r.a3 += wt * x3;
        if (INPUT_MODE == 1u) {
            r.s[3] += squares(x3) * live;
        }
    }
    return r;
}

// One K step of ROW_GROUPS 1 with its x already loaded (XFIRST).
fn step_x(acc: Sums, wt: mat4x4<f32>, x0: mat4x4<f32>, live: f32) -> Sums {
    var r = acc;
    r.a0 += wt * x0;
    if (INPUT_MODE == 1u) {
        r.s[0] += squares(x0) * live;
    }
    return r;
}

// Groups of 4 rows of the block from row t0 that hold rows (1 to 4, uniform).
fn n_groups(t0: u32) -> u32 {
    return min(ROW_GROUPS, (params.n_rows - t0 + 3u) / 4u);
}

// Rows a workgroup row.
fn block_rows() -> u32 {
    return 4u * ROW_GROUPS;
}

// This lane's partial sums over its part of K (4-vectors part · SG + lane, every
// KSPLIT · SG) for rows t0..t0+16 (clamped) × the 4 columns `cols`.
fn product(cols: vec4<u32>, t0: u32, lane: u32, part: u32) -> Sums {
    let k4 = params.k / 4u;
    let n_groups = n_groups(t0);
    let zero = mat4x4<f32>();
    var acc = Sums(zero, zero, zero, zero, zero);
    let stride = KSPLIT * SG;
    // Every lane of a subgroup runs the same trips (lanes past K add zeros), so the
    // subgroup operations after the loop see all lanes together even where a driver does
    // not reconverge after a loop whose trip count differs between lanes (lavapipe with
    // subgroups of 32 does not: wrong sums where K / 4 is not a multiple of SG).
    var jb = part * SG;
    if (DIAG == 1u) {
        let v = vec4<f32>(f32(lane));
        let m = mat4x4<f32>(v, v + 1.0, v + 2.0, v + 3.0);
        acc = Sums(m, m, m, m, m);
        jb = k4;
    }
    if (STEPS > 0u) {
        // The fitted form: step s of this lane is 4-vector (s · KSPLIT + part) · SG + lane.
        let n_steps = select(STEPS, 0u, DIAG == 1u);
        for (var s = 0u; s < n_steps; s++) {
            let jj = (s * KSPLIT + part) * SG + lane;
            let j = min(jj, k4 - 1u);
            let live = select(0.0, 1.0, jj < k4);
            acc = step(acc, load_wt(cols, j) * live, t0, n_groups, j, live);
        }
        return acc;
    }
    // UNROLL K steps a trip, every weight load of the trip issued before the first
    // multiply-add (the steps past K load the last 4-vector and count zero).
    for (; jb < k4; jb += stride * UNROLL) {
        let j0 = min(jb + lane, k4 - 1u);
        let live0 = select(0.0, 1.0, jb + lane < k4);
        let w0 = load_wt(cols, j0);
        var w1 = mat4x4<f32>();
        var w2 = mat4x4<f32>();
        var w3 = mat4x4<f32>();
        let j1 = min(jb + stride + lane, k4 - 1u);
        let j2 = min(jb + 2u * stride + lane, k4 - 1u);
        let j3 = min(jb + 3u * stride + lane, k4 - 1u);
        if (UNROLL > 1u) {
            w1 = load_wt(cols, j1);
        }
        if (UNROLL > 2u) {
            w2 = load_wt(cols, j2);
            w3 = load_wt(cols, j3);
        }
        if (XFIRST == 1u && ROW_GROUPS == 1u && DIAG == 0u) {
            let x0 = rows4(t0, j0);
            var x1 = mat4x4<f32>();
            var x2 = mat4x4<f32>();
            var x3 = mat4x4<f32>();
            if (UNROLL > 1u) {
                x1 = rows4(t0, j1);
            }
            if (UNROLL > 2u) {
                x2 = rows4(t0, j2);
                x3 = rows4(t0, j3);
            }
            acc = step_x(acc, w0 * live0, x0, live0);
            if (UNROLL > 1u) {
                let live1 = select(0.0, 1.0, jb + stride + lane < k4);
                acc = step_x(acc, w1 * live1, x1, live1);
            }
            if (UNROLL > 2u) {
                let live2 = select(0.0, 1.0, jb + 2u * stride + lane < k4);
                acc = step_x(acc, w2 * live2, x2, live2);
                let live3 = select(0.0, 1.0, jb + 3u * stride + lane < k4);
                acc = step_x(acc, w3 * live3, x3, live3);
            }
            continue;
        }
        acc = step(acc, w0 * live0, t0, n_groups, j0, live0);
        if (UNROLL > 1u) {
            let live1 = select(0.0, 1.0, jb + stride + lane < k4);
            acc = step(acc, w1 * live1, t0, n_groups, j1, live1);
        }
        if (UNROLL > 2u) {
            let live2 = select(0.0, 1.0, jb + 2u * stride + lane < k4);
            acc = step(acc, w2 * live2, t0, n_groups, j2, live2);
            let live3 = select(0.0, 1.0, jb + 3u * stride + lane < k4);
            acc = step(acc, w3 * live3, t0, n_groups, j3, live3);
        }
    }
    return acc;
}

// Per-column selects and shuffles of 4 × 4 matrices (WGSL has neither for matrices).
fn selm(f: mat4x4<f32>, t: mat4x4<f32>, c: bool) -> mat4x4<f32> {
    return mat4x4<f32>(select(f[0], t[0], c), select(f[1], t[1], c), select(f[2], t[2], c), select(f[3], t[3], c));
}

fn shufm(m: mat4x4<f32>, mask: u32) -> mat4x4<f32> {
    return mat4x4<f32>(
        subgroupShuffleXor(m[0], mask),
        subgroupShuffleXor(m[1], mask),
        subgroupShuffleXor(m[2], mask),
        subgroupShuffleXor(m[3], mask),
    );
}

// The half of pair p (0: .xy, 1: .zw) of a 4-vector, and the other half.
fn half(v: vec4<f32>, p: bool) -> vec2<f32> {
    return select(v.xy, v.zw, p);
}

// Reduces the subgroup's partial sums and publishes them in part_sums[sg], then waits
// for every subgroup of the workgroup. Called by whole subgroups, in workgroup-uniform
// control flow.
// The reduction: a butterfly that halves what a lane holds at each step, so each shuffle
// moves a value that still needs adding: with mask SG/2 a lane keeps row groups {0, 1} or
// {2, 3} (and their sums of squares) and adds its partner's copy of them; with SG/4 one
// row group g; with SG/8 columns (0, 1) or (2, 3) of its 4 rows (and 2 of the 4 sums of
// squares); with SG/16 one column; the masks below add the rest. On 32 lanes that is 80
// scalar shuffles instead of 400 for `subgroupAdd` of every sum (that reduction was
// slower on the H200, 3.56 against 2.45 ms a step, and was deleted: RESULTS.md, wgpu
// session 9, call 1). `n_groups` is unused (every row group is reduced). Each lane then
// holds the sums of rows 4g..4g+4 at column 2d + e and the sum of squares of row
// 4g + 2d + e (b, c, d, e its bits SG/2, SG/4, SG/8, SG/16; g = 2b + c); on 8 lanes,
// both columns 2d and 2d + 1. With ROW_GROUPS 2 the row step is one (g = b at SG/2, then
// d at SG/4, e at SG/8), with 1 none (d at SG/2, e at SG/4).
fn publish(acc: Sums, sg: u32, lane: u32, n_groups: u32) {
    // The row steps: a lane keeps row group g of its 4 columns (rg) and the 4 sums of
    // squares of its rows (t). With fewer row groups (ROW_GROUPS 2 or 1) the steps of the
    // absent ones are skipped and the column steps start at a higher mask.
    var rg = acc.a0;
    var t = acc.s[0];
    var g = 0u;
    if (ROW_GROUPS == 4u) {
        let m1 = SG / 2u;
        let b = (lane & m1) != 0u;
        // Row groups 2b and 2b + 1.
        let p = selm(acc.a0, acc.a2, b) + shufm(selm(acc.a2, acc.a0, b), m1);
        let q = selm(acc.a1, acc.a3, b) + shufm(selm(acc.a3, acc.a1, b), m1);
        let s0 = select(acc.s[0], acc.s[2], b) + subgroupShuffleXor(select(acc.s[2], acc.s[0], b), m1);
        let s1 = select(acc.s[1], acc.s[3], b) + subgroupShuffleXor(select(acc.s[3], acc.s[1], b), m1);
        // Row group g = 2b + c.
        let m2 = SG / 4u;
        let c = (lane & m2) != 0u;
        rg = selm(p, q, c) + shufm(selm(q, p, c), m2);
        t = select(s0, s1, c) + subgroupShuffleXor(select(s1, s0, c), m2);
        g = 2u * u32(b) + u32(c);
    } else if (ROW_GROUPS == 2u) {
        // Row group g = b.
        let m1 = SG / 2u;
        let b = (lane & m1) != 0u;
        rg = selm(acc.a0, acc.a1, b) + shufm(selm(acc.a1, acc.a0, b), m1);
        t = select(acc.s[0], acc.s[1], b) + subgroupShuffleXor(select(acc.s[1], acc.s[0], b), m1);
        g = u32(b);
    }
    // Columns 2d, 2d + 1 (rows 2d, 2d + 1 of the sums of squares): the first mask below
    // the row steps'.
    let m3 = select(select(SG / 2u, SG / 4u, ROW_GROUPS == 2u), SG / 8u, ROW_GROUPS == 4u);
    let d = (lane & m3) != 0u;
    let u0 = half(rg[0], d) + subgroupShuffleXor(half(rg[0], !d), m3);
    let u1 = half(rg[1], d) + subgroupShuffleXor(half(rg[1], !d), m3);
    let u2 = half(rg[2], d) + subgroupShuffleXor(half(rg[2], !d), m3);
    let u3 = half(rg[3], d) + subgroupShuffleXor(half(rg[3], !d), m3);
    let v = half(t, d) + subgroupShuffleXor(half(t, !d), m3);
    let col = 2u * u32(d);
    if (m3 == 1u) {
        // Subgroups of 8 with 4 row groups: every lane stores its two columns.
        for (var k = 0u; k < 2u; k++) {
            part_sums[sg][4u * g][col + k] = u0[k];
            part_sums[sg][4u * g + 1u][col + k] = u1[k];
            part_sums[sg][4u * g + 2u][col + k] = u2[k];
            part_sums[sg][4u * g + 3u][col + k] = u3[k];
            part_sums[sg][16u + g][col + k] = v[k];
        }
    } else {
        // Column 2d + e.
        let m4 = m3 / 2u;
        let e = (lane & m4) != 0u;
        let ke = u32(e);
        var x0 = u0[ke] + subgroupShuffleXor(u0[1u - ke], m4);
        var x1 = u1[ke] + subgroupShuffleXor(u1[1u - ke], m4);
        var x2 = u2[ke] + subgroupShuffleXor(u2[1u - ke], m4);
        var x3 = u3[ke] + subgroupShuffleXor(u3[1u - ke], m4);
        var y = v[ke] + subgroupShuffleXor(v[1u - ke], m4);
        for (var m = m4 / 2u; m > 0u; m = m / 2u) {
            x0 += subgroupShuffleXor(x0, m);
            x1 += subgroupShuffleXor(x1, m);
            x2 += subgroupShuffleXor(x2, m);
            x3 += subgroupShuffleXor(x3, m);
            y += subgroupShuffleXor(y, m);
        }
        // The lanes whose bits below m4 are 0 hold the sums.
        if ((lane & (m4 - 1u)) == 0u) {
            let cc = col + ke;
            part_sums[sg][4u * g][cc] = x0;
            part_sums[sg][4u * g + 1u][cc] = x1;
            part_sums[sg][4u * g + 2u][cc] = x2;
            part_sums[sg][4u * g + 3u][cc] = x3;
            part_sums[sg][16u + g][cc] = y;
        }
    }
    workgroupBarrier();
}

// The sum over K of block row r (0..block_rows()), column c of the workgroup's column group g:
// its KSPLIT parts added, times the row's RMSNorm scale (INPUT_MODE 1).
fn sum_at(g: u32, r: u32, c: u32) -> f32 {
    var v = 0.0;
    var ss = 0.0;
    for (var p = 0u; p < KSPLIT; p++) {
        v += part_sums[g * KSPLIT + p][r][c];
        ss += part_sums[g * KSPLIT + p][16u + r / 4u][r % 4u];
    }
    if (INPUT_MODE == 1u) {
        v *= inverseSqrt(ss / f32(params.k) + params.eps);
    }
    return v;
}

@compute @workgroup_size(WG)
fn moa_matvec_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * block_rows();
    if (t0 >= params.n_rows) {
        return;
    }
    // Column groups past the end compute clamped columns and write nothing, so every
    // lane of a subgroup reaches the subgroup operations.
    let groups = GROUPS;
    let n0 = (wid.x * groups + sg / KSPLIT) * 4u;
    let last_col = params.n_out - 1u;
    let cols = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last_col));
    // The workgroup's groups × block_rows() rows × 4 columns of outputs.
    let per_group = 4u * block_rows();
    // EARLY: the residual of this invocation's first output (e = lid), before the K loop.
    var res0 = 0.0;
    if (EARLY == 1u && params.add_residual == 1u && lid < per_group * groups) {
        let t = t0 + (lid % per_group) / 4u;
        let n = (wid.x * groups + lid / per_group) * 4u + lid % 4u;
        if (t < params.n_rows && n < params.n_out) {
            res0 = residual[t * params.out_stride + params.col_offset + n];
        }
    }
    publish(product(cols, t0, lane, sg % KSPLIT), sg, lane, n_groups(t0));
    for (var e = lid; e < per_group * groups; e += WG) {
        let g = e / per_group;
        let r = (e % per_group) / 4u;
        let c = e % 4u;
        let t = t0 + r;
        let n = (wid.x * groups + g) * 4u + c;
        if (t < params.n_rows && n < params.n_out) {
            let o = t * params.out_stride + params.col_offset + n;
            var v = sum_at(g, r, c);
            if (params.add_residual == 1u) {
                if (EARLY == 1u && e == lid) {
                    v += res0;
                } else {
                    v += residual[o];
                }
            }
            out[o] = v;
        }
    }
}

// The QKV product with RoPE and the KV-cache write in its epilogue (decode), as
// `matvec.wgsl`'s `moa_matvec_rope`: each column group is the columns (j, j + 1,
// j + d/2, j + d/2 + 1) of one head, the two rotation pairs of the half-split layout,
// and `rope_store` (matvec_rope.wgsl) rotates and stores them.
@compute @workgroup_size(WG)
fn moa_matvec_sg_rope(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * block_rows();
    if (t0 >= params.n_rows) {
        return;
    }
    let d = rp.head_dim;
    let half_d = d / 2u;
    let quads = half_d / 2u;
    let groups = GROUPS;
    let n_quads = (params.n_out / d) * quads;
    // Groups past the last head compute the last one and store nothing.
    let q = min(wid.x * groups + sg / KSPLIT, n_quads - 1u);
    let base = (q / quads) * d + (q % quads) * 2u;
    let cols = vec4<u32>(base, base + 1u, base + half_d, base + half_d + 1u);
    // One invocation per (column group, row, rotation pair).
    let per_group = 2u * block_rows();
    // EARLY: the token info and (q and k heads) the cos/sin of this invocation's first
    // pair (e = lid), before the K loop.
    var info0 = vec4<u32>();
    var cs0 = vec2<f32>(1.0, 0.0);
    if (EARLY == 1u && lid < per_group * groups) {
        let t = t0 + (lid % per_group) / 2u;
        let qg = wid.x * groups + lid / per_group;
        if (qg < n_quads && t < params.n_rows) {
            info0 = tok[t];
            if (params.col_offset / d + qg / quads < rp.q_heads + rp.kv_heads) {
                cs0 = rope_cs(info0, (qg % quads) * 2u + lid % 2u);
            }
        }
    }
    publish(product(cols, t0, lane, sg % KSPLIT), sg, lane, n_groups(t0));
    for (var e = lid; e < per_group * groups; e += WG) {
        let g = e / per_group;
        let r = (e % per_group) / 2u;
        let c = e % 2u;
        let t = t0 + r;
        let qg = wid.x * groups + g;
        if (qg < n_quads && t < params.n_rows) {
            let head = params.col_offset / d + qg / quads;
            let i = (qg % quads) * 2u + c;
            if (EARLY == 1u && e == lid) {
                rope_store_at(t, head, i, sum_at(g, r, c), sum_at(g, r, c + 2u), info0, cs0);
            } else {
                rope_store(t, head, i, sum_at(g, r, c), sum_at(g, r, c + 2u));
            }
        }
    }
}

// The gate/up product with SwiGLU in its epilogue (decode): with n_out = 2 · ffn rows of
// [gate | up] weights, column group q takes gate columns 2q, 2q + 1 and up columns
// ffn + 2q, ffn + 2q + 1 (as the RoPE variant takes both halves of its rotation pairs),
// and writes silu(gate) · up of its two columns to out [rows, ffn] (out_stride = ffn).
// The down product then reads ffn values per row, not 2 · ffn, and no exp.
@compute @workgroup_size(WG)
fn moa_matvec_sg_swiglu_out(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * block_rows();
    if (t0 >= params.n_rows) {
        return;
    }
    let ffn = params.n_out / 2u;
    let n_pairs = ffn / 2u;
    let groups = GROUPS;
    // Groups past the last pair compute the last one and store nothing.
    let q = min(wid.x * groups + sg / KSPLIT, n_pairs - 1u);
    let cols = vec4<u32>(2u * q, 2u * q + 1u, ffn + 2u * q, ffn + 2u * q + 1u);
    publish(product(cols, t0, lane, sg % KSPLIT), sg, lane, n_groups(t0));
    // One invocation per (column group, row, output column).
    let per_group = 2u * block_rows();
    for (var e = lid; e < per_group * groups; e += WG) {
        let g = e / per_group;
        let r = (e % per_group) / 2u;
        let c = e % 2u;
        let t = t0 + r;
        let qg = wid.x * groups + g;
        if (qg < n_pairs && t < params.n_rows) {
            let gate = sum_at(g, r, c);
            let up = sum_at(g, r, c + 2u);
            out[t * params.out_stride + 2u * qg + c] = gate / (1.0 + exp(-gate)) * up;
        }
    }
}
