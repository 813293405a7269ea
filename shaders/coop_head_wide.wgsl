// The decode LM head on matrix units in workgroups of 16 subgroups (`MOA_WGPU_COOP_HEAD_WIDE`,
// session 36): out[t, n] = Σ_k RMSNorm(x)[t, k] · w[n, k] for the 16 rows t of a block (the
// grid's y), or (EPI 1) per row and workgroup the (value, index) of the largest output, as
// `coop_head.wgsl`, whose header and helpers (`fetch`, `put`, `xv`, `xput`) it shares.
// Why: `coop_head.wgsl`'s 4-subgroup workgroup took 247 registers on the H200 whatever its
// form (sessions 33-34), so an SM held 2 workgroups, 48 KB of weights in flight at most,
// and SmolLM2's head took ≈ 31 µs against ≈ 16 for a stream of its 56.6 MB (session 36,
// call 1). A workgroup of 16 · SG invocations (512 on 32 lanes) must fit one SM's 64 K
// registers, so the driver keeps ≤ 128 registers an invocation; the workgroup then holds
// SPB stages of weights in flight (one register set a stage of a block, each refilled with
// the next block's stage as soon as it is stored: 72 KB at K 576), and the grid is sized
// by the host to one workgroup an SM (BPW blocks each, one wave).
// Subgroup s takes column tile s % 4 of the block's 64 columns and K quarter s / 4 of
// every stage; its A fragments (RMSNorm(x) over its quarters of K: KX / 64 of them) are
// loaded once into registers from x staged in `ws` (whose space the weights take after),
// so the workgroup memory is one stage of weights and 16 f32 tiles. At the end of a
// block the 16 tiles go through `cs` and the 4 quarters are summed in the epilogue.
// The host prepends the constants KX, KS (a multiple of 64 dividing KX), SPB (KX / KS),
// BPW, SG, TPR (= SG: a row of x a subgroup), WSN (vec4<f16> elements of `ws`), `Regs`
// with `fetch_all` / `put_all` over VPI registers, `x_all` / `x_sumsq` / `x_put_all`,
// and `moa_coop_head_wide`'s body pieces: `a_all` (the A fragments, named a0..), and
// `blocks` (the block loop with its SPB stages written out, each on its own register set).

override EPI: u32 = 0u;

// Params and the bindings 0-6: `shaders::COOP_HEAD_INTERFACE`, which the host prepends
// (the same for both heads, so `record.rs` binds either the same way).

const WG: u32 = 16u * SG;
const LDX: u32 = KX + 8u;
const LDS: u32 = KS + 8u;
// K of a stage each subgroup takes (a quarter).
const KQ: u32 = KS / 4u;
const NST: u32 = BPW * SPB;
const VPC: u32 = KS / 8u;
const VPS: u32 = 64u * VPC;

// First x of the 16 rows, RMSNorm'd, [16][LDX] f16; then one stage of weights, [64
// columns][LDS] f16 (B's columns). vec4<f16> elements.
var<workgroup> ws: array<vec4<f16>, WSN>;
// Each subgroup's finished tile of the block, [16 subgroups][16 rows][16 columns].
var<workgroup> cs: array<f32, 4096u>;

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

fn xv(row: u32, j: u32) -> vec4<f32> {
    if (j < KX / 4u && row < params.n_rows) {
        return x[row * (KX / 4u) + j];
    }
    return vec4<f32>(0.0);
}

fn xput(r: u32, j: u32, v: vec4<f32>, scale: f32) {
    if (j < KX / 4u) {
        ws[(r * LDX + 4u * j) / 4u] = vec4<f16>(v * scale * norm[j]);
    }
}

fn fetch(wx: u32, s: u32, e: u32) -> vec4<u32> {
    let ee = min(e, VPS - 1u);
    let n = min((wx * BPW + s / SPB) * 64u + ee / VPC, params.n_out - 1u);
    return w[n * (KX / 8u) + (s % SPB) * VPC + ee % VPC];
}

fn put(e: u32, v: vec4<u32>) {
    if (e < VPS) {
        let o = ((e / VPC) * LDS + (e % VPC) * 8u) / 4u;
        ws[o] = vec4<f16>(vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)));
        ws[o + 1u] = vec4<f16>(vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)));
    }
}

// Row r's value at block column cl: the 4 quarters' sums.
fn col_sum(r: u32, cl: u32) -> f32 {
    let o = (cl / 16u) * 256u + r * 16u + cl % 16u;
    return cs[o] + cs[1024u + o] + cs[2048u + o] + cs[3072u + o];
}

@compute @workgroup_size(WG)
fn moa_coop_head_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // No early return: the matrix operations need uniform control flow.
    let i = sg * SG + lane;
    let t0 = wid.y * 16u;
    let ct = sg % 4u;
    let q = sg / 4u;
    // Block 0's stages first: their round trips overlap the staging of x.
    FIRST_FETCHES
    // Row r = sg of x, its TPR = SG lanes each taking every TPR-th 4-vector.
    let r = sg;
    let p = lane;
    {
        let xr = x_all(t0 + r, p);
        var sq = x_sumsq(xr);
        for (var m = TPR / 2u; m > 0u; m = m / 2u) {
            sq += subgroupShuffleXor(sq, m);
        }
        x_put_all(r, p, xr, inverseSqrt(sq / f32(KX) + params.eps));
    }
    workgroupBarrier();
    A_LOADS
    var c = coop_mat16x16<f32, C>();
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var b = 0u; b < BPW; b++) {
        STAGES
        // The block is done: its 16 tiles go through cs (the next write of cs is a block
        // later, after the next block's barriers).
        coopStoreT(c, &cs[sg * 256u], 16u);
        c = coop_mat16x16<f32, C>();
        workgroupBarrier();
        let col0 = (wid.x * BPW + b) * 64u;
        if (EPI == 1u) {
            // Lane p of row r takes columns p, p + TPR, … in increasing order.
            for (var cc = 0u; cc < 64u; cc += TPR) {
                let cl = cc + p;
                let v = col_sum(r, cl);
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
                    var v = col_sum(e / 64u, cl);
                    if (params.add_residual == 1u) {
                        v += residual[o];
                    }
                    out[o] = v;
                }
            }
        }
    }
    if (EPI == 1u) {
        for (var m = TPR / 2u; m > 0u; m = m / 2u) {
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
