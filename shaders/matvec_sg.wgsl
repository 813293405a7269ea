// Decode-sized products on subgroups: out[t, n] = Σ_k f(x)[t, k] · w[n, k] (+ residual)
// for up to 16 rows a workgroup row (the grid's y is ceil(rows / 16)).
// `matvec.wgsl` splits K over a whole 64-wide workgroup and reduces through a 6-level
// barrier tree in workgroup memory, with its partial sums in function-scope arrays that
// are indexed in loops (a driver may keep those in local memory). Here one subgroup owns
// 4 output columns × all 16 rows: its lanes split K, each weight vector is loaded once
// for the 16 rows, the partial sums live in five named 4 × 4 matrices (no array, no
// dynamic index), and they are reduced with `subgroupAdd`: no workgroup memory and no
// barrier until the K loop is done. Then one lane per subgroup publishes its 64 sums
// (and 16 sums of squares) to workgroup memory, and after one barrier the workgroup
// writes its outputs. Where a product has few columns (a 576-column product is 144
// groups of 4), KSPLIT subgroups share a column group, each taking every KSPLIT-th
// stretch of K: a workgroup is 64 · KSPLIT invocations for 64 / SG column groups.
// The host prepends `alias wtype = ...; alias xtype = ...;` (naga 30 takes the subgroup
// built-ins without `enable subgroups;`, which it does not parse yet) and builds it only
// where the adapter has one fixed subgroup size SG from 8 to 64 (DESIGN.md §7).
// x and w are read as 4-vectors: K must be a multiple of 4 (the host checks).
//
// INPUT_MODE (as in matvec.wgsl; no merged input here):
// 0: x as is;
// 1: RMSNorm(x) · norm, the sums of squares accumulated in the same K loop and the row
//    scale applied after the reduction (Σ_k (x_k·s·g_k)·w_nk = s·Σ_k x_k·(g_k·w_nk));
// 2: SwiGLU of a fused [gate | up] row of width 2K: x_k = silu(gate_k) · up_k.
override INPUT_MODE: u32 = 0u;
// The adapter's subgroup size (a power of two dividing 64).
override SG: u32 = 32u;
// Weight vectors of two K steps loaded before either is used (1) or one step a trip (0).
override TWO_STEPS: u32 = 0u;
// Subgroups per column group (1, 2 or 4), each summing its part of K.
override KSPLIT: u32 = 1u;
// Invocations per workgroup: 64 · KSPLIT (the host passes it; WGSL wants one name).
override WG: u32 = 64u;

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    eps: f32,
    out_stride: u32,
    col_offset: u32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<wtype>>;
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
    let k4 = params.k / 4u;
    var g = vec4<f32>(1.0);
    if (INPUT_MODE == 1u) {
        g = norm[j];
    }
    return transpose(mat4x4<f32>(
        vec4<f32>(w[cols.x * k4 + j]) * g,
        vec4<f32>(w[cols.y * k4 + j]) * g,
        vec4<f32>(w[cols.z * k4 + j]) * g,
        vec4<f32>(w[cols.w * k4 + j]) * g,
    ));
}

// One K step of one group of 4 rows (first row r0, clamped to the last row).
fn rows4(r0: u32, j: u32) -> mat4x4<f32> {
    let last = params.n_rows - 1u;
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

// Adds K step j of the active row groups (n_groups of 4, uniform) to `acc`.
fn step(acc: Sums, wt: mat4x4<f32>, t0: u32, n_groups: u32, j: u32) -> Sums {
    var r = acc;
    let x0 = rows4(t0, j);
    r.a0 += wt * x0;
    if (INPUT_MODE == 1u) {
        r.s[0] += squares(x0);
    }
    if (n_groups > 1u) {
        let x1 = rows4(t0 + 4u, j);
        r.a1 += wt * x1;
        if (INPUT_MODE == 1u) {
            r.s[1] += squares(x1);
        }
    }
    if (n_groups > 2u) {
        let x2 = rows4(t0 + 8u, j);
        r.a2 += wt * x2;
        if (INPUT_MODE == 1u) {
            r.s[2] += squares(x2);
        }
    }
    if (n_groups > 3u) {
        let x3 = rows4(t0 + 12u, j);
        r.a3 += wt * x3;
        if (INPUT_MODE == 1u) {
            r.s[3] += squares(x3);
        }
    }
    return r;
}

fn reduce4(m: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(subgroupAdd(m[0]), subgroupAdd(m[1]), subgroupAdd(m[2]), subgroupAdd(m[3]));
}

// The subgroup's sums over its part of K (4-vectors part · SG + lane, every KSPLIT · SG)
// for rows t0..t0+16 (clamped) × the 4 columns `cols`, in every lane. Called by whole
// subgroups (every lane of a subgroup has the same cols).
fn product(cols: vec4<u32>, t0: u32, lane: u32, part: u32) -> Sums {
    let k4 = params.k / 4u;
    let n_groups = min(4u, (params.n_rows - t0 + 3u) / 4u);
    let zero = mat4x4<f32>();
    var acc = Sums(zero, zero, zero, zero, zero);
    let stride = KSPLIT * SG;
    var j = part * SG + lane;
    if (TWO_STEPS == 1u) {
        // Both steps' weights in flight before the first is used.
        for (; j + stride < k4; j += 2u * stride) {
            let wa = load_wt(cols, j);
            let wb = load_wt(cols, j + stride);
            acc = step(acc, wa, t0, n_groups, j);
            acc = step(acc, wb, t0, n_groups, j + stride);
        }
    }
    for (; j < k4; j += stride) {
        acc = step(acc, load_wt(cols, j), t0, n_groups, j);
    }
    var r = Sums(reduce4(acc.a0), zero, zero, zero, zero);
    if (n_groups > 1u) {
        r.a1 = reduce4(acc.a1);
    }
    if (n_groups > 2u) {
        r.a2 = reduce4(acc.a2);
    }
    if (n_groups > 3u) {
        r.a3 = reduce4(acc.a3);
    }
    if (INPUT_MODE == 1u) {
        r.s = reduce4(acc.s);
    }
    return r;
}

// Publishes a subgroup's sums in part_sums[sg] (one lane writes), then waits for every
// subgroup of the workgroup. Called in workgroup-uniform control flow.
fn publish(s: Sums, sg: u32, lane: u32) {
    if (lane == 0u) {
        part_sums[sg][0] = s.a0[0];
        part_sums[sg][1] = s.a0[1];
        part_sums[sg][2] = s.a0[2];
        part_sums[sg][3] = s.a0[3];
        part_sums[sg][4] = s.a1[0];
        part_sums[sg][5] = s.a1[1];
        part_sums[sg][6] = s.a1[2];
        part_sums[sg][7] = s.a1[3];
        part_sums[sg][8] = s.a2[0];
        part_sums[sg][9] = s.a2[1];
        part_sums[sg][10] = s.a2[2];
        part_sums[sg][11] = s.a2[3];
        part_sums[sg][12] = s.a3[0];
        part_sums[sg][13] = s.a3[1];
        part_sums[sg][14] = s.a3[2];
        part_sums[sg][15] = s.a3[3];
        part_sums[sg][16] = s.s[0];
        part_sums[sg][17] = s.s[1];
        part_sums[sg][18] = s.s[2];
        part_sums[sg][19] = s.s[3];
    }
    workgroupBarrier();
}

// The sum over K of block row r (0..16), column c of the workgroup's column group g:
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
    let t0 = wid.y * 16u;
    if (t0 >= params.n_rows) {
        return;
    }
    // Column groups past the end compute clamped columns and write nothing, so every
    // lane of a subgroup reaches the subgroup operations.
    let groups = 64u / SG;
    let n0 = (wid.x * groups + sg / KSPLIT) * 4u;
    let last_col = params.n_out - 1u;
    let cols = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last_col));
    publish(product(cols, t0, lane, sg % KSPLIT), sg, lane);
    // The workgroup's groups × 16 rows × 4 columns of outputs.
    for (var e = lid; e < 64u * groups; e += WG) {
        let g = e / 64u;
        let r = (e % 64u) / 4u;
        let c = e % 4u;
        let t = t0 + r;
        let n = (wid.x * groups + g) * 4u + c;
        if (t < params.n_rows && n < params.n_out) {
            let o = t * params.out_stride + params.col_offset + n;
            var v = sum_at(g, r, c);
            if (params.add_residual == 1u) {
                v += residual[o];
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
    let t0 = wid.y * 16u;
    if (t0 >= params.n_rows) {
        return;
    }
    let d = rp.head_dim;
    let half_d = d / 2u;
    let quads = half_d / 2u;
    let groups = 64u / SG;
    let n_quads = (params.n_out / d) * quads;
    // Groups past the last head compute the last one and store nothing.
    let q = min(wid.x * groups + sg / KSPLIT, n_quads - 1u);
    let base = (q / quads) * d + (q % quads) * 2u;
    let cols = vec4<u32>(base, base + 1u, base + half_d, base + half_d + 1u);
    publish(product(cols, t0, lane, sg % KSPLIT), sg, lane);
    // One invocation per (column group, row, rotation pair).
    for (var e = lid; e < 32u * groups; e += WG) {
        let g = e / 32u;
        let r = (e % 32u) / 2u;
        let c = e % 2u;
        let t = t0 + r;
        let qg = wid.x * groups + g;
        if (qg < n_quads && t < params.n_rows) {
            let head = params.col_offset / d + qg / quads;
            rope_store(t, head, (qg % quads) * 2u + c, sum_at(g, r, c), sum_at(g, r, c + 2u));
        }
    }
}
