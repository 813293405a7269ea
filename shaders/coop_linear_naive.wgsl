// Prefill products on matrix units: out[t, n] = Σ_k x[t, k] · w[n, k] (+ residual[t, n]),
// the same contract as linear.wgsl (its Params, bindings and output slice), with the
// multiply-adds in 16 × 16 × 16 cooperative matrices (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX:
// VK_KHR_cooperative_matrix on Vulkan, simdgroup matrices on Metal).
// A workgroup owns a 64-token × 64-column tile of `out` and is 4 subgroups of SG
// invocations; subgroup s owns the 32 × 32 quarter (s / 2, s % 2) of the tile, i.e. 2 × 2
// accumulator fragments. Every 32-wide step of K, the workgroup stages x's 64 × 32 slice
// (converted to f16) and w's 64 × 32 slice in workgroup memory, zero outside the
// matrices, so any K, token count and column count work. The accumulator is `ctype`
// (f32 where the adapter offers f16 × f16 → f32, else f16).
// The host prepends the `enable` lines and `alias wtype = f16; alias xtype = ...;
// alias ctype = ...;` (weights must be f16: the matrix units take f16 operands).

struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    _eps: u32,
    out_stride: u32,
    col_offset: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<xtype>;
@group(0) @binding(2) var<storage, read> w: array<wtype>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The subgroup size (set by the host from the adapter; the workgroup is 4 subgroups).
override SG: u32 = 32u;

const TILE: u32 = 64u;
const KS: u32 = 32u;

// x's [64 tokens][32 k] and w's [64 columns][32 k], row-major.
var<workgroup> xs: array<f16, 2048>;
var<workgroup> ws: array<f16, 2048>;
// The finished tile, [64 tokens][64 columns], for the bounded, strided write-out.
var<workgroup> cs: array<ctype, 4096>;

@compute @workgroup_size(SG * 4u)
fn moa_coop_linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * TILE;
    let t0 = wid.y * TILE;
    // No early return (naga requires the matrix ops in uniform control flow without
    // one): a workgroup outside the output, which the host never launches, stages zeros
    // and writes nothing.
    let threads = SG * 4u;
    let s = lid / SG;
    let tr = (s / 2u) * 32u;
    let tc = (s % 2u) * 32u;
    var c00 = coop_mat16x16<ctype, C>();
    var c01 = coop_mat16x16<ctype, C>();
    var c10 = coop_mat16x16<ctype, C>();
    var c11 = coop_mat16x16<ctype, C>();
    for (var k0 = 0u; k0 < params.k; k0 += KS) {
        for (var e = lid; e < TILE * KS; e += threads) {
            let r = e / KS;
            let k = k0 + e % KS;
            let t = t0 + r;
            var xv = f16(0.0);
            if (t < params.n_rows && k < params.k) {
                xv = f16(x[t * params.k + k]);
            }
            xs[e] = xv;
            let n = n0 + r;
            var wv = f16(0.0);
            if (n < params.n_out && k < params.k) {
                wv = f16(w[n * params.k + k]);
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KS; kk += 16u) {
            // A = x (row-major, tokens × k); B = wᵀ, i.e. w's rows read column-major.
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[tr * KS + kk], KS);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[(tr + 16u) * KS + kk], KS);
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[tc * KS + kk], KS);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[(tc + 16u) * KS + kk], KS);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }
    coopStoreT(c00, &cs[tr * TILE + tc], TILE);
    coopStoreT(c01, &cs[tr * TILE + tc + 16u], TILE);
    coopStoreT(c10, &cs[(tr + 16u) * TILE + tc], TILE);
    coopStoreT(c11, &cs[(tr + 16u) * TILE + tc + 16u], TILE);
    workgroupBarrier();
    for (var e = lid; e < TILE * TILE; e += threads) {
        let t = t0 + e / TILE;
        let n = n0 + e % TILE;
        if (t < params.n_rows && n < params.n_out) {
            let o = t * params.out_stride + params.col_offset + n;
            var v = f32(cs[e]);
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}
