// out[t, n] = Σ_k x[t, k] · w[n, k]  (+ residual[t, n] when params.add_residual = 1), as
// linear.wgsl, for the many-row products (prefill) of GPU adapters without matrix units
// (cooperative matrices): WebGPU in a browser, most integrated GPUs. linear.wgsl computes a
// 4 × 4 block an invocation straight from global memory, which suits lavapipe (a workgroup
// barrier costs a CPU more than the reuse gains, feasibility.md §1) but leaves a GPU
// reading each weight once for every 4 rows; here a workgroup of 16 × 16 invocations owns a
// (16 · BLOCK)-row × (16 · BLOCK)-column output tile and stages K in steps of 16 through
// workgroup memory, so a weight is read from global memory once for 16 · BLOCK rows and an x
// value once for 16 · BLOCK columns. Each invocation keeps a BLOCK × BLOCK block of sums and
// reads its rows and columns of a K step as vec4s of workgroup memory.
// Weights are row-major [n_out, k] (PyTorch Linear layout); any K (the last step is
// zero-filled). The host prepends `alias wtype = ...; alias xtype = ...;` (f16 or f32 each).

// BLOCK (an override, 4 or 8): rows and columns an invocation sums, so a workgroup owns a
// (16 · BLOCK)² output tile: 64 × 64 at 4 (16 multiply-adds per 2 vec4 loads of a K step),
// 128 × 128 at 8 (64 per 4, each weight read once per 128 rows; 64 sums an invocation).
override BLOCK: u32 = 4u;
const STEP: u32 = 16u;

@group(0) @binding(0) var<uniform> params: ProductParams;
@group(0) @binding(1) var<storage, read> x: array<xtype>;
@group(0) @binding(2) var<storage, read> w: array<wtype>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// [k step][row / 4] and [k step][column / 4]: element j of entry [s][i] is row (column)
// 4i + j at k0 + s, so 4 of an invocation's rows (columns) of a step are one vec4. Sized
// for BLOCK 8 (16 KiB in all, WebGPU's least workgroup storage); BLOCK 4 uses half.
var<workgroup> xs: array<array<vec4<f32>, 32>, 16>;
var<workgroup> ws: array<array<vec4<f32>, 32>, 16>;

@compute @workgroup_size(16, 16)
fn moa_linear_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = 16u * BLOCK;
    let row0 = wg.y * tile;
    let col0 = wg.x * tile;
    // Staging: invocation li loads BLOCK consecutive k of tile row (and tile column)
    // li / lanes, the lanes of a row covering the step's 16; rows and columns past the
    // edge load a valid neighbour (never stored), k past K loads zero.
    let lanes = STEP / BLOCK;
    let lr = li / lanes;
    let lk = (li % lanes) * BLOCK;
    let xrow = min(row0 + lr, params.n_rows - 1u);
    let wcol = min(col0 + lr, params.n_out - 1u);
    // Sums of row 4a + i (a < BLOCK / 4) and columns 4c..4c + 4 at [(4a + i) · (BLOCK / 4) + c].
    let quads = BLOCK / 4u;
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < params.k; k0 += STEP) {
        for (var j = 0u; j < BLOCK; j++) {
            let k = k0 + lk + j;
            var xv = 0.0;
            var wv = 0.0;
            if (k < params.k) {
                xv = f32(x[xrow * params.k + k]);
                wv = f32(w[wcol * params.k + k]);
            }
            xs[lk + j][lr / 4u][lr % 4u] = xv;
            ws[lk + j][lr / 4u][lr % 4u] = wv;
        }
        workgroupBarrier();
        for (var s = 0u; s < STEP; s++) {
            for (var a = 0u; a < quads; a++) {
                let xa = xs[s][lid.y * quads + a];
                for (var c = 0u; c < quads; c++) {
                    let b = ws[s][lid.x * quads + c];
                    acc[(4u * a) * quads + c] += xa.x * b;
                    acc[(4u * a + 1u) * quads + c] += xa.y * b;
                    acc[(4u * a + 2u) * quads + c] += xa.z * b;
                    acc[(4u * a + 3u) * quads + c] += xa.w * b;
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < BLOCK; i++) {
        let t = row0 + lid.y * BLOCK + i;
        if (t >= params.n_rows) {
            break;
        }
        for (var j = 0u; j < BLOCK; j++) {
            let n = col0 + lid.x * BLOCK + j;
            if (n >= params.n_out) {
                break;
            }
            let o = t * params.out_stride + params.col_offset + n;
            var v = acc[i * quads + j / 4u][j % 4u];
            if (params.add_residual == 1u) {
                v += residual[o];
            }
            out[o] = v;
        }
    }
}
