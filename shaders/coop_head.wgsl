// The decode LM head on matrix units with its weights staged through workgroup memory:
// out[t, n] = Σ_k RMSNorm(x)[t, k] · w[n, k] for the 16 rows t of a block (the grid's y),
// or (EPI 1) per row and workgroup the (value, index) of the largest output: the first
// stage of `argmax.wgsl`'s two-stage argmax, as `coop_matvec.wgsl`'s EPI 1.
// Why: `coop_matvec.wgsl` reads its B fragments with `coopLoad` straight from the f16
// weights (16 strided 32-byte pieces a fragment) and took 73–76 µs for SmolLM2's
// 49152 × 576 head (56.6 MB: 0.75 TB/s; benches/RESULTS.md, wgpu session 11), where the
// bytes take 13.5 µs at 4.2 TB/s. Here every invocation reads the weights with 16-byte
// loads (w bound as `vec4<u32>`, 8 f16 each; a warp reads whole 16-byte-aligned runs of
// a weight row), one stage ahead of the multiply-adds, and the matrix units read them
// from workgroup memory.
// A workgroup is 4 subgroups of SG and owns BPW blocks of 64 output columns (subgroup s:
// columns 16s..16s+16 of each block); it stages RMSNorm(x) of its 16 rows once (rows past
// n_rows as 0), then walks NST = BPW · KX / KS stages of KS weights × 64 columns: at
// stage s it stores the registers fetched during stage s − 1 into `ws`, issues the
// fetches of stage s + 1, and runs its KS / 16 multiply-adds from `xs` and `ws`. (Two
// stages ahead in two register sets took the head from 54.5 to 68.8–74.4 µs on the H200,
// benches/RESULTS.md, wgpu session 13, call 1: removed; again in session 33 without
// naga's runtime checks, `MOA_WGPU_COOP_HEAD_AHEAD=2`: 36.2 against 31.5 µs at 255
// registers, removed.) The engine builds this module without naga's runtime checks
// (`MOA_WGPU_COOP_HEAD_UNCHECKED`, session 33: 48.3 → 31.5 µs on the H200); at 247
// registers an SM holds 2 of its workgroups, so SmolLM2's 384 run in two waves (the
// multiply-add loop kept a loop, 1-6 fragment pairs a trip, and stage 0 fetched after x
// read 247 too, session 34: not what holds them; removed). The row
// strides of `xs` and `ws` are padded by 8 f16 (16 bytes) so the 16 rows (columns) of a
// fragment start on different banks. Columns past n_out read the last column and write
// nothing.
// The host prepends `enable f16; enable wgpu_cooperative_matrix;`, the constants KX (the
// hidden size, a multiple of 16), KS (a multiple of 16 dividing KX), BPW, SG (the
// adapter's subgroup size) and VPI (16-byte weight vectors per invocation and stage,
// ceil(8 · KS / (4 · SG))), and the functions `fetch_all` / `put_all` that name VPI
// registers (unrolled in the source, so they stay in registers whatever the driver
// unrolls), TPR (SG / 4: invocations per row of x) and `x_all` / `x_sumsq` / `x_put_all`
// (over an invocation's 4-vectors of x), and the element types of the workgroup
// arrays with their stores (`xse`, XSW, `xs_put`; `wse`, WSW, `ws_put`): `vec4<f16>`
// elements stored whole, which the matrix loads read with offsets and strides in those
// vectors (the host's `wg_stores`; scalar f16 stores were slower and were deleted).

override EPI: u32 = 0u;
// A timing diagnostic (`MOA_WGPU_COOP_HEAD_DIAG`; the results are wrong and the engine
// skips its start-up check): 1 fetches, stores and multiplies no weights (what is left is
// the dispatch, the staging of x, the barriers and the epilogue); 2 does not stage x;
// 4 runs no multiply-adds. (3, one f16 store a weight vector, went with the scalar stores.)
override DIAG: u32 = 0u;
// x is staged with every load of the invocation's share issued at once into named
// registers (`x_all`), the sums of squares and the stores from those registers (one
// round trip, one read of x): 56 µs for the head on the H200 against 66-74 with two loops
// over the row whose trips each waited for the last load (XSTAGE 0, deleted in session
// 14; benches/RESULTS.md, wgpu session 12, calls 2-3).

// Params and the bindings 0-6: `shaders::COOP_HEAD_INTERFACE`, which the host prepends
// (the same for both heads, so `record.rs` binds either the same way).

const WG: u32 = 4u * SG;
const LDX: u32 = KX + 8u;
const LDS: u32 = KS + 8u;
// Stages per 64-column block, stages per workgroup.
const SPB: u32 = KX / KS;
const NST: u32 = BPW * SPB;
// 16-byte weight vectors per column and per stage.
const VPC: u32 = KS / 8u;
const VPS: u32 = 64u * VPC;

// RMSNorm(x) of the 16 rows, [16][LDX] row-major, f16.
// (`xse`: vec4<f16>; XSW f16 an element.)
var<workgroup> xs: array<xse, 16u * LDX / XSW>;
// One stage of weights: [64 columns][LDS], f16 (B's columns).
// (`wse`: vec4<f16>; WSW f16 an element.)
var<workgroup> ws: array<wse, 64u * LDS / WSW>;
// Each subgroup's finished tile of the block, [4][16 rows][16 columns].
var<workgroup> cs: array<f32, 1024u>;

// A ≥ B in argmax order: larger value, or equal value and lower index.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

// x's 4-vector j of row `row` (0 past the row or the rows).
fn xv(row: u32, j: u32) -> vec4<f32> {
    if (j < KX / 4u && row < params.n_rows) {
        return x[row * (KX / 4u) + j];
    }
    return vec4<f32>(0.0);
}

// Stores RMSNorm'd 4-vector j of block row r as f16 (nothing past the row).
fn xput(r: u32, j: u32, v: vec4<f32>, scale: f32) {
    if (j < KX / 4u) {
        xs_put(r * LDX + 4u * j, v * scale * norm[j]);
    }
}

// Vector e (0..VPS, clamped) of stage s of workgroup wx's weights.
fn fetch(wx: u32, s: u32, e: u32) -> vec4<u32> {
    let ee = min(e, VPS - 1u);
    let n = min((wx * BPW + s / SPB) * 64u + ee / VPC, params.n_out - 1u);
    return w[n * (KX / 8u) + (s % SPB) * VPC + ee % VPC];
}

// Stores vector e of a stage (if e < VPS) into ws at its f16 offset (`ws_put`, written
// by the host: two 8-byte stores).
fn put(e: u32, v: vec4<u32>) {
    if (e < VPS) {
        ws_put((e / VPC) * LDS + (e % VPC) * 8u, v);
    }
}

@compute @workgroup_size(WG)
fn moa_coop_head(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // No early return: the matrix operations need uniform control flow.
    let i = sg * SG + lane;
    let t0 = wid.y * 16u;
    // Stage 0's weights first: their round trip overlaps the staging of x.
    var ra = Regs();
    if (DIAG != 1u) {
        ra = fetch_all(wid.x, 0u, i);
    }
    // Stage RMSNorm(x): TPR consecutive lanes per row, each taking every TPR-th 4-vector;
    // the row's scale is found first, so the staged values are O(1) and fit f16. Loops
    // followed by subgroup operations run the same trips on every lane.
    let tpr = TPR;
    let r = i / tpr;
    let p = i % tpr;
    if (DIAG != 2u) {
        let xr = x_all(t0 + r, p);
        var sq = x_sumsq(xr);
        for (var m = tpr / 2u; m > 0u; m = m / 2u) {
            sq += subgroupShuffleXor(sq, m);
        }
        x_put_all(r, p, xr, inverseSqrt(sq / f32(KX) + params.eps));
    }
    var c = coop_mat16x16<f32, C>();
    // EPI 1: row r's running best over the workgroup's columns (this lane's share).
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var s = 0u; s < NST; s++) {
        // Every subgroup is done with ws (stage s − 1) and xs is staged.
        workgroupBarrier();
        if (DIAG != 1u) {
            put_all(i, ra);
        }
        workgroupBarrier();
        // The registers just stored take stage s + 1.
        if (s + 1u < NST && DIAG != 1u) {
            ra = fetch_all(wid.x, s + 1u, i);
        }
        let kb = (s % SPB) * KS;
        for (var kk = 0u; kk < select(KS, 0u, DIAG == 1u || DIAG == 4u); kk += 16u) {
            // Offsets and strides in elements of xs and ws (XSW, WSW f16 each).
            let a = coopLoadT<coop_mat16x16<f16, A>>(&xs[(kb + kk) / XSW], LDX / XSW);
            let b = coopLoad<coop_mat16x16<f16, B>>(&ws[(sg * 16u * LDS + kk) / WSW], LDS / WSW);
            c = coopMultiplyAdd(a, b, c);
        }
        if (s % SPB == SPB - 1u) {
            // The block is done: its 16 rows × 64 columns go through cs (the next write
            // of cs is a block later, after this stage's and the next stages' barriers).
            coopStoreT(c, &cs[sg * 256u], 16u);
            c = coop_mat16x16<f32, C>();
            workgroupBarrier();
            let col0 = (wid.x * BPW + s / SPB) * 64u;
            if (EPI == 1u) {
                // Lane p of row r scans columns p, p + tpr, … in increasing order, so
                // its first largest value keeps the lowest index.
                for (var cc = 0u; cc < 64u; cc += tpr) {
                    let cl = cc + p;
                    let v = cs[(cl / 16u) * 256u + r * 16u + cl % 16u];
                    if (col0 + cl < params.n_out && v > bv) {
                        bv = v;
                        bi = col0 + cl;
                    }
                }
            } else {
                for (var e = i; e < 1024u; e += WG) {
                    let t = t0 + e / 64u;
                    let cl = e % 64u;
                    let n = col0 + cl;
                    if (t < params.n_rows && n < params.n_out) {
                        let o = t * params.out_stride + params.col_offset + n;
                        var v = cs[(cl / 16u) * 256u + (e / 64u) * 16u + cl % 16u];
                        if (params.add_residual == 1u) {
                            v += residual[o];
                        }
                        out[o] = v;
                    }
                }
            }
        }
    }
    if (EPI == 1u) {
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
    }
}
