// Decode-sized products on subgroups: out[t, n] = Σ_k f(x)[t, k] · w[n, k] (+ residual)
// for up to 16 rows a workgroup row (the grid's y is ceil(rows / 16)).
// `matvec.wgsl` splits K over a whole 64-wide workgroup and reduces through a 6-level
// barrier tree in workgroup memory, with its partial sums in function-scope arrays that
// are indexed in loops (a driver may keep those in local memory). Here one subgroup owns
// 4 output columns × all 16 rows: its lanes split K, each weight vector is loaded once
// for the 16 rows, the partial sums live in five named 4 × 4 matrices (no array, no
// dynamic index), and they are reduced with `subgroupAdd`: no workgroup memory, no
// barrier. A 64-wide workgroup holds 64 / SG subgroups, each with its own 4 columns.
// The host prepends `alias wtype = ...; alias xtype = ...;` (naga 30 takes the subgroup
// built-ins without `enable subgroups;`, which it does not parse yet) and builds it only where the adapter has one fixed subgroup size SG (DESIGN.md §7).
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

// The subgroup's sums over K for rows t0..t0+16 (clamped) × the 4 columns `cols`, in
// every lane. Called by whole subgroups (every lane of a subgroup has the same cols).
fn product(cols: vec4<u32>, t0: u32, lane: u32) -> Sums {
    let k4 = params.k / 4u;
    let n_groups = min(4u, (params.n_rows - t0 + 3u) / 4u);
    let zero = mat4x4<f32>();
    var acc = Sums(zero, zero, zero, zero, zero);
    var j = lane;
    if (TWO_STEPS == 1u) {
        // Both steps' weights in flight before the first is used.
        for (; j + SG < k4; j += 2u * SG) {
            let wa = load_wt(cols, j);
            let wb = load_wt(cols, j + SG);
            acc = step(acc, wa, t0, n_groups, j);
            acc = step(acc, wb, t0, n_groups, j + SG);
        }
    }
    for (; j < k4; j += SG) {
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

// m[i][j] for a lane-dependent i, j without indexing a matrix dynamically.
fn pick(m: mat4x4<f32>, i: u32, j: u32) -> f32 {
    let v = select(select(m[0], m[1], i == 1u), select(m[2], m[3], i == 3u), i >= 2u);
    return select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u);
}

// The sum of block row r (0..16), column c.
fn sum_at(s: Sums, r: u32, c: u32) -> f32 {
    let g = r / 4u;
    let i = r % 4u;
    let v = select(select(pick(s.a0, i, c), pick(s.a1, i, c), g == 1u), select(pick(s.a2, i, c), pick(s.a3, i, c), g == 3u), g >= 2u);
    var scale = 1.0;
    if (INPUT_MODE == 1u) {
        scale = inverseSqrt(pick(s.s, g, i) / f32(params.k) + params.eps);
    }
    return v * scale;
}

@compute @workgroup_size(64)
fn moa_matvec_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * 16u;
    if (t0 >= params.n_rows) {
        return;
    }
    // Column groups past the end compute clamped columns and write nothing, so every
    // lane of a subgroup reaches the subgroup operations.
    let n0 = (wid.x * (64u / SG) + lid / SG) * 4u;
    let last_col = params.n_out - 1u;
    let cols = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last_col));
    let s = product(cols, t0, lane);
    // The subgroup's 64 outputs, SG lanes at a time.
    for (var e = lane; e < 64u; e += SG) {
        let r = e / 4u;
        let c = e % 4u;
        let t = t0 + r;
        let n = n0 + c;
        if (t < params.n_rows && n < params.n_out) {
            let o = t * params.out_stride + params.col_offset + n;
            var v = sum_at(s, r, c);
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}

// The QKV product with RoPE and the KV-cache write in its epilogue (decode), as
// `matvec.wgsl`'s `moa_matvec_rope`: each subgroup owns the columns (j, j + 1, j + d/2,
// j + d/2 + 1) of one head, the two rotation pairs of the half-split layout, and
// `rope_store` (matvec_rope.wgsl) rotates and stores them.
@compute @workgroup_size(64)
fn moa_matvec_sg_rope(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t0 = wid.y * 16u;
    if (t0 >= params.n_rows) {
        return;
    }
    let d = rp.head_dim;
    let half_d = d / 2u;
    let quads = half_d / 2u;
    let q = wid.x * (64u / SG) + lid / SG;
    let heads = params.n_out / d;
    // Groups past the last head compute the last one and store nothing.
    let qc = min(q, heads * quads - 1u);
    let head_local = qc / quads;
    let j = (qc % quads) * 2u;
    let base = head_local * d + j;
    let s = product(vec4<u32>(base, base + 1u, base + half_d, base + half_d + 1u), t0, lane);
    // One lane per (row, rotation pair) of the block: 32 of them.
    for (var e = lane; e < 32u; e += SG) {
        let r = e / 2u;
        let c = e % 2u;
        let t = t0 + r;
        if (q == qc && t < params.n_rows) {
            rope_store(t, params.col_offset / d + head_local, j + c, sum_at(s, r, c), sum_at(s, r, c + 2u));
        }
    }
}
