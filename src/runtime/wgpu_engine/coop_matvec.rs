//! Decode products on matrix units (`coop_matvec.wgsl`, issue 12 item 3): where the
//! adapter offers 16 × 16 × 16 f16 → f32 cooperative matrices, a decode pass's LM head
//! (final RMSNorm fused; for greedy steps also the argmax's first stage: one (value,
//! index) pair per row and workgroup, which `argmax.wgsl`'s finish reduces) runs on
//! them, up to 16 rows a fragment (`coop_head.wgsl`, its weights staged through
//! workgroup memory by 16-byte loads; `coop_matvec.wgsl` where that does not build or
//! `MOA_WGPU_COOP_HEAD=direct`); also its gate/up products (RMSNorm fused, SwiGLU in
//! the epilogue) and, on request (`MOA_WGPU_COOP_DECODE=1`, no faster on the H200), its
//! output products (+ residual). The head is checked at start-up on the device
//! against a CPU product (the feature is experimental; a failed check turns all of them
//! off); `matvec_sg.wgsl` / `matvec.wgsl` stay the fallback and the path of every other
//! adapter (lavapipe has no cooperative matrices).

#![warn(missing_docs)]

use half::f16;

use super::{CoopDecodeChoice, CoopHeadChoice, EngineError, WgpuEngine, WgpuEngineOptions};
use crate::lower::StorageType;
use crate::runtime::shaders::{
    coop_fused_mlp_source, coop_head_source, coop_head_wide_source, coop_head_wide_stage,
    coop_matvec_source, coop_matvec_xs_len, CoopWalk, FusedForm, COOP_HEAD, COOP_HEAD_WIDE,
    COOP_MATVEC,
};
use crate::runtime::wgpu::{matrix_pipeline_checked, CoopMatrix};

/// The head's two pipelines (logits out, or the argmax's first stage) for one K.
pub(super) struct CoopHead {
    pub(super) logits: wgpu::ComputePipeline,
    pub(super) argmax: wgpu::ComputePipeline,
    /// 16-column tiles per subgroup (`TILES` of `coop_matvec.wgsl`; blocks of 64 columns
    /// a workgroup, `BPW`, of `coop_head.wgsl`): a workgroup owns 64 · tiles columns.
    pub(super) tiles: u32,
    /// `coop_head.wgsl`'s stage width (weights of K a stage), or `None` for
    /// `coop_matvec.wgsl` (B fragments read straight from storage).
    pub(super) staged: Option<usize>,
    /// The product's K (the model's hidden size), compiled into the kernel.
    pub(super) k: usize,
    /// Whether greedy decode passes take the argmax's first stage in the head's
    /// epilogue (`MOA_WGPU_HEAD_ARGMAX=0`: the head writes logits, `argmax.wgsl` runs
    /// both stages).
    pub(super) fold_argmax: bool,
    /// `coop_head_wide.wgsl` (16 subgroups a workgroup, `MOA_WGPU_COOP_HEAD_WIDE`).
    pub(super) wide: bool,
}

impl CoopHead {
    /// Output columns per workgroup.
    pub(super) fn columns(&self) -> u32 {
        64 * self.tiles
    }
}

/// A decode product on matrix units with K split over the workgroup's 4 subgroups
/// (`KPARTS` 4): the output product (+ residual, 16 columns a workgroup) or the gate/up
/// product (SwiGLU epilogue, 16 gate + 16 up columns a workgroup).
pub(super) struct CoopProduct {
    pub(super) pipeline: wgpu::ComputePipeline,
    /// The output product with its A fragments loaded straight from the f16 attention
    /// output (`coop_matvec.wgsl`'s DIRECT 1, with the early walk): for inputs that
    /// hold whole 16-row blocks (it reads every row of a block).
    pub(super) direct: Option<wgpu::ComputePipeline>,
    /// The product's K, compiled into the kernel.
    pub(super) k: usize,
}

/// The decode products on matrix units an engine holds.
pub(super) struct CoopDecode {
    /// The LM head, where the adapter has matrix units and it passed its start-up check;
    /// `Err` says why not.
    pub(super) head: Result<CoopHead, String>,
    /// The output, gate/up and QKV products, where asked for, built and checked.
    pub(super) out: Option<CoopProduct>,
    pub(super) gate_up: Option<CoopProduct>,
    pub(super) qkv: Option<CoopProduct>,
    /// The output and gate/up products in one dispatch (`MOA_WGPU_DECODE_FUSED_MLP=1`),
    /// where asked for and built; `None` keeps them separate.
    pub(super) fused_mlp: Option<FusedMlp>,
    /// Why the output and gate/up products were turned off at start-up (empty where they
    /// were not), for `decode_products`.
    pub(super) note: String,
    /// Which LM head decode passes run, for `describe`.
    pub(super) head_kind: String,
}

/// The decode's output product (direct walk, + residual) and gate/up product (RMSNorm,
/// SwiGLU) in ONE dispatch whose workgroups meet between them (`coop_fused_mlp_source`;
/// `MOA_WGPU_DECODE_FUSED_MLP=1`, an opt-in prototype, session 32).
pub(super) struct FusedMlp {
    pub(super) pipeline: wgpu::ComputePipeline,
    /// The meeting's arrival counter and error flag (two u32; the counter is never
    /// reset, the flag is set by a spin past its bound and stays set).
    pub(super) ctl: wgpu::Buffer,
    /// Workgroups at most (`MOA_WGPU_DECODE_FUSED_GROUPS`): all must be resident at once.
    pub(super) max_groups: u32,
    /// The output product's K (its phase's direct walk reads whole 16-row blocks of
    /// the attention output of this width).
    pub(super) k_attn: usize,
    /// `MOA_WGPU_DECODE_FUSED_SPLIT=1`: the phases as two dispatches (a diagnostic).
    pub(super) split: u32,
    /// The module's form for `describe` (`MOA_WGPU_DECODE_FUSED_MEET`,
    /// `MOA_WGPU_COOP_DECODE_UNCHECKED`).
    pub(super) form: String,
}

/// Spin loads of the meeting's counter before a workgroup sets the error flag and goes
/// on (≈ 0.18 µs a load on the H200, s32-gbar: ≈ 0.19 s).
pub(super) const FUSED_SPIN: u32 = 1 << 20;

/// Builds [`FusedMlp`] where asked for (`o.decode_fused_mlp`) and it can run: a GPU
/// adapter (lavapipe does not run its workgroups side by side reliably: a meeting hits
/// its bound, s32-gbar), f16 storage (the output product's direct walk), an f32
/// accumulator, both K (`k_attn`, `hidden`) multiples of 64, the two phases' workgroup
/// arrays within the device's limit. `Err` says why not (`None`: not asked for).
pub(super) fn fused_mlp(
    device: &wgpu::Device,
    o: &WgpuEngineOptions,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    cpu: bool,
    (k_attn, hidden): (usize, usize),
) -> Option<Result<FusedMlp, String>> {
    if !o.decode_fused_mlp {
        return None;
    }
    let built = (|| {
        if cpu {
            return Err("a CPU adapter keeps separate dispatches".to_string());
        }
        let coop = coop.ok_or("no cooperative matrices on this adapter")?;
        if coop.accumulator != StorageType::F32 || storage != StorageType::F16 {
            return Err("needs f16 weights and an f16 x f16 -> f32 configuration".into());
        }
        if !k_attn.is_multiple_of(64) || !hidden.is_multiple_of(64) {
            return Err(format!("K = {k_attn} / {hidden} is not a multiple of 64"));
        }
        // xs and cs of each phase, the meeting's two words (16 bytes each).
        let bytes =
            16 + 4 * 256 * 4 + coop_matvec_xs_len(hidden, false) as u64 * 8 + 8 * 256 * 4 + 32;
        let limit = u64::from(device.limits().max_compute_workgroup_storage_size);
        if bytes > limit {
            return Err(format!(
                "its workgroup arrays need {bytes} bytes, above {limit}"
            ));
        }
        let early = CoopWalk {
            early: true,
            ..CoopWalk::default()
        };
        let direct = CoopWalk {
            direct: true,
            ..early
        };
        let sg = coop.subgroup;
        let gate_up = (
            coop_matvec_source(hidden, 2, 4, StorageType::F32, sg, early),
            1,
            2,
            None,
        );
        let out = (
            coop_matvec_source(k_attn, 1, 4, storage, sg, direct),
            0,
            0,
            None,
        );
        let phases = [out, gate_up];
        // x as 4-vectors (s34-fuse: 12.78 against 13.34 us the fused kind).
        let form = FusedForm {
            meet: o.decode_fused_meet,
            x4: true,
        };
        let source = coop_fused_mlp_source(&phases, sg, form)?;
        // Unchecked as the separate matrix-unit products (`MOA_WGPU_COOP_DECODE_UNCHECKED`):
        // every index is bounded by `params` and the host's grid, every loop by `fuse`
        // (tiles, the spin bound) or constants.
        let pipeline = matrix_pipeline_checked(
            device,
            "fused_mlp",
            &source,
            "moa_fused_mlp",
            &[],
            !o.coop_decode_unchecked,
        )?;
        let ctl = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fused_mlp_ctl"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(FusedMlp {
            pipeline,
            ctl,
            max_groups: o.decode_fused_groups,
            split: o.decode_fused_split,
            k_attn,
            form: format!(
                "meeting form {}, x as 4-vectors{}",
                form.meet,
                if o.coop_decode_unchecked {
                    ", unchecked"
                } else {
                    ""
                },
            ),
        })
    })();
    Some(built)
}

/// Compiles `coop_matvec.wgsl` for K = `k`, x of type `input`, `tiles`, `kparts`, input
/// mode and epilogue, and K walk, where it can run: an f32 accumulator, f16 weights, K a
/// multiple of 16 (64 where `kparts` is 4), the workgroup arrays within the device's
/// limit (a direct walk only with input mode 0: it applies no RMSNorm). `checked`: with
/// naga's runtime checks (`MOA_WGPU_COOP_DECODE_UNCHECKED=0`; without them, the default
/// since session 34, tokens/s +1.45% on the H200, gate/up 7.70 → 7.38 µs).
#[allow(clippy::too_many_arguments)]
fn build(
    device: &wgpu::Device,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    k: usize,
    (tiles, kparts): (u32, u32),
    input: StorageType,
    (mode, epi): (u32, u32),
    walk: CoopWalk,
    checked: bool,
) -> Result<wgpu::ComputePipeline, String> {
    if walk.direct && (!walk.early || mode != 0 || input != StorageType::F16 || kparts != 4) {
        return Err(
            "a direct walk needs the early walk, an f16 input without RMSNorm and K in 4 parts"
                .into(),
        );
    }
    let coop = coop.ok_or("no cooperative matrices on this adapter")?;
    if coop.accumulator != StorageType::F32 || storage != StorageType::F16 {
        return Err("needs f16 weights and an f16 x f16 -> f32 configuration".into());
    }
    if !k.is_multiple_of(16 * kparts as usize) {
        return Err(format!("K = {k} is not a multiple of {}", 16 * kparts));
    }
    // xs (f16, or 8-byte elements of 4 with vector stores) and cs (f32 tiles).
    let xs_len = coop_matvec_xs_len(k, walk.direct);
    let xs_bytes = xs_len as u64 * 8;
    let bytes = xs_bytes + 4 * u64::from(tiles) * 256 * 4;
    let limit = u64::from(device.limits().max_compute_workgroup_storage_size);
    if bytes > limit {
        return Err(format!(
            "its workgroup arrays need {bytes} bytes, above this adapter's {limit}"
        ));
    }
    // Every workgroup array of coop_matvec.wgsl is written before it is read. Unchecked,
    // its indices stay inside its buffers: B's columns are clamped to the last tile, x's
    // loads (`xv`) and every store are guarded, its loops bound by constants, and the
    // direct walk is bound only to inputs of whole 16-row blocks (`record.rs`).
    matrix_pipeline_checked(
        device,
        COOP_MATVEC.name,
        &coop_matvec_source(k, tiles, kparts, input, coop.subgroup, walk),
        COOP_MATVEC.entry_point,
        &[
            ("SG", f64::from(coop.subgroup)),
            ("INPUT_MODE", f64::from(mode)),
            ("EPI", f64::from(epi)),
        ],
        checked,
    )
}

/// Workgroup memory of `coop_head.wgsl` for K = `k` and stages of `ks`: x of 16 rows and
/// one stage of 64 weight rows in f16 (rows padded by 8), 4 f32 tiles of 16 × 16.
fn coop_head_bytes(k: usize, ks: usize) -> u64 {
    (2 * 16 * (k + 8) + 2 * 64 * (ks + 8) + 4 * 1024) as u64
}

/// The stage width of `coop_head.wgsl` for K = `k`: `asked`
/// (`WgpuEngineOptions::coop_head_ks`) where it divides K and fits, else the widest
/// multiple of 16 dividing K, at most 192 (12 registers of 16 bytes an invocation on 32
/// lanes), whose workgroup memory fits `limit`.
fn stage_width(k: usize, limit: u64, asked: Option<u32>) -> Option<usize> {
    let fits = |ks: usize| {
        ks > 0 && ks.is_multiple_of(16) && k.is_multiple_of(ks) && coop_head_bytes(k, ks) <= limit
    };
    if let Some(ks) = asked.map(|ks| ks as usize).filter(|&ks| fits(ks)) {
        return Some(ks);
    }
    (1..=12).rev().map(|m| 16 * m).find(|&ks| fits(ks))
}

/// The staged head for K = `k` and `vocab` output columns, where it can run: an f32
/// accumulator, f16 weights, K a multiple of 16, a stage width whose workgroup memory
/// fits; `coop_head_wide.wgsl` (16 subgroups a workgroup) where that fits, else
/// `coop_head.wgsl`.
fn build_staged(
    device: &wgpu::Device,
    o: &WgpuEngineOptions,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    (k, vocab): (usize, usize),
) -> Result<CoopHead, String> {
    let bpw = o.coop_head_blocks;
    let coop = coop.ok_or("no cooperative matrices on this adapter")?;
    if coop.accumulator != StorageType::F32 || storage != StorageType::F16 {
        return Err("needs f16 weights and an f16 x f16 -> f32 configuration".into());
    }
    if !k.is_multiple_of(16) {
        return Err(format!("K = {k} is not a multiple of 16"));
    }
    let limit = u64::from(device.limits().max_compute_workgroup_storage_size);
    // Workgroups of 16 subgroups where they fit (the default since session 36; else, with
    // `MOA_WGPU_COOP_HEAD_WIDE=0` or a timing diagnostic, the 4-subgroup head): auto sizes
    // the grid to 128 workgroups (one an SM on the H200).
    let wide_fits = 16 * coop.subgroup <= device.limits().max_compute_invocations_per_workgroup;
    let wide_bpw = match o.coop_head_wide {
        _ if o.coop_head_diag != 0 => 0,
        Some(n) => n,
        None => (vocab as u32).div_ceil(64 * 128).max(1),
    };
    if let (true, true, Some(ks)) = (
        wide_bpw > 0,
        wide_fits,
        coop_head_wide_stage(k, coop.subgroup, limit),
    ) {
        let bpw = wide_bpw;
        let source = coop_head_wide_source(k, ks, bpw, coop.subgroup);
        let pipe = |epi: u32| {
            matrix_pipeline_checked(
                device,
                COOP_HEAD_WIDE.name,
                &source,
                COOP_HEAD_WIDE.entry_point,
                &[("EPI", f64::from(epi))],
                !o.coop_head_unchecked,
            )
        };
        return Ok(CoopHead {
            logits: pipe(0)?,
            argmax: pipe(1)?,
            tiles: bpw,
            staged: Some(ks),
            k,
            fold_argmax: o.head_argmax,
            wide: true,
        });
    }
    let ks = stage_width(k, limit, o.coop_head_ks).ok_or_else(|| {
        format!(
            "its workgroup arrays need at least {} bytes, above this adapter's {limit}",
            coop_head_bytes(k, 16)
        )
    })?;
    let source = coop_head_source(k, ks, bpw, coop.subgroup);
    // Every workgroup array of coop_head.wgsl is written before it is read. Without
    // naga's runtime checks (`MOA_WGPU_COOP_HEAD_UNCHECKED`, the default since session
    // 33: head 48.3 -> 31.5 us on the H200): its weight fetches are clamped to the last
    // column, its x loads and every store guarded, its loops bound by constants.
    let pipe = |epi: u32| {
        matrix_pipeline_checked(
            device,
            COOP_HEAD.name,
            &source,
            COOP_HEAD.entry_point,
            &[
                ("EPI", f64::from(epi)),
                ("DIAG", f64::from(o.coop_head_diag)),
            ],
            !o.coop_head_unchecked,
        )
    };
    Ok(CoopHead {
        logits: pipe(0)?,
        argmax: pipe(1)?,
        tiles: bpw,
        staged: Some(ks),
        k,
        fold_argmax: o.head_argmax,
        wide: false,
    })
}

/// The head for K = `k` (the hidden size) and `vocab` output columns, unless turned off
/// (`MOA_WGPU_COOP_HEAD=0`): `coop_head_wide.wgsl` or `coop_head.wgsl` (weights staged
/// through workgroup memory) where it builds, else or with `MOA_WGPU_COOP_HEAD=direct`
/// `coop_matvec.wgsl`. `Err` says why neither (for `describe`).
pub(super) fn coop_head(
    device: &wgpu::Device,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    (k, vocab): (usize, usize),
    o: &WgpuEngineOptions,
) -> Result<CoopHead, String> {
    match o.coop_head {
        CoopHeadChoice::Off => return Err("turned off (MOA_WGPU_COOP_HEAD=0)".into()),
        CoopHeadChoice::Staged => {
            if let Ok(head) = build_staged(device, o, storage, coop, (k, vocab)) {
                return Ok(head);
            }
        }
        CoopHeadChoice::Direct => {}
    }
    let tiles = o.coop_head_tiles;
    let f32_x = StorageType::F32;
    let walk0 = CoopWalk::default();
    let ck = !o.coop_decode_unchecked;
    Ok(CoopHead {
        logits: build(
            device,
            storage,
            coop,
            k,
            (tiles, 1),
            f32_x,
            (1, 0),
            walk0,
            ck,
        )?,
        argmax: build(
            device,
            storage,
            coop,
            k,
            (tiles, 1),
            f32_x,
            (1, 1),
            walk0,
            ck,
        )?,
        tiles,
        staged: None,
        k,
        fold_argmax: o.head_argmax,
        wide: false,
    })
}

/// The output product (K = `k_attn`, the attention output in `storage`, + residual) and
/// the gate/up product (K = `hidden`, RMSNorm, SwiGLU epilogue) on matrix units, each
/// where it builds. `MOA_WGPU_COOP_DECODE`: unset, the gate/up product only; `1` both; `0`
/// neither. Session 11 measured both slower than `matvec_sg.wgsl` (9.8 and 19.2 µs against
/// 5.7–6.0 and 8.8–9.2 on the H200; session 12 with x staged in one round trip 6.3–7.0 and
/// 9.3–10.7 against 5.8–6.3 and 9.1–9.4); with every B fragment loaded before x is staged
/// (the early walk) and the output product's A straight from storage, gate/up took
/// 8.15–8.74 µs against 9.17–9.31 in both A/B pairs of two calls, the output product
/// 5.72–6.13 against 5.89–6.14 (a win in one call, a loss in the other: noise), so only
/// gate/up runs there by default (benches/RESULTS.md, wgpu session 13, calls 1–2).
/// `MOA_WGPU_COOP_QKV=1` also puts the decode QKV product (K = `hidden`) there, RoPE +
/// the cache write in its epilogue, built like the gate/up product that won; checked at
/// start-up against the CPU (`check_coop_qkv`). Opt-in: measured once, 8.09 against 7.35
/// µs a layer on the subgroups (benches/RESULTS.md, "Lead calls (session 13)").
pub(super) fn coop_products(
    device: &wgpu::Device,
    o: &WgpuEngineOptions,
    storage: StorageType,
    coop: Option<CoopMatrix>,
    k_attn: usize,
    hidden: usize,
    head_dim: usize,
) -> (
    Option<CoopProduct>,
    Option<CoopProduct>,
    Option<CoopProduct>,
) {
    if o.coop_decode == CoopDecodeChoice::Off {
        return (None, None, None);
    }
    let with_out = o.coop_decode == CoopDecodeChoice::OutAndGateUp;
    let ck = !o.coop_decode_unchecked;
    let early = CoopWalk {
        early: true,
        ..CoopWalk::default()
    };
    let out = with_out
        .then(|| {
            build(
                device,
                storage,
                coop,
                k_attn,
                (1, 4),
                storage,
                (0, 0),
                early,
                ck,
            )
            .ok()
        })
        .flatten()
        .map(|pipeline| CoopProduct {
            pipeline,
            direct: build(
                device,
                storage,
                coop,
                k_attn,
                (1, 4),
                storage,
                (0, 0),
                CoopWalk {
                    direct: true,
                    ..early
                },
                ck,
            )
            .ok(),
            k: k_attn,
        });
    let f32_x = StorageType::F32;
    let gate_up = build(
        device,
        storage,
        coop,
        hidden,
        (2, 4),
        f32_x,
        (1, 2),
        early,
        ck,
    )
    .ok()
    .map(|pipeline| CoopProduct {
        pipeline,
        direct: None,
        k: hidden,
    });
    // The QKV product with RoPE + the cache write in its epilogue (EPI 3): 16 rotation
    // pairs a workgroup, so head_dim a multiple of 32; f16 storage (`rope_store`'s type).
    let rope = CoopWalk {
        rope: Some(head_dim),
        ..early
    };
    let qkv = (o.coop_qkv && head_dim.is_multiple_of(32) && storage == StorageType::F16)
        .then(|| {
            build(
                device,
                storage,
                coop,
                hidden,
                (2, 4),
                f32_x,
                (1, 3),
                rope,
                ck,
            )
            .ok()
        })
        .flatten()
        .map(|pipeline| CoopProduct {
            pipeline,
            direct: None,
            k: hidden,
        });
    (out, gate_up, qkv)
}

/// The start-up check's product: 21 rows (a full 16-row block and a partial one), 400
/// columns (25 tiles: the last workgroup partly past the end at every tile count), written
/// at column 3 of rows 405 wide.
const CHECK_ROWS: usize = 21;
const CHECK_N: usize = 400;
const CHECK_STRIDE: usize = 405;
const CHECK_COL0: usize = 3;

/// The start-up checks' data: a value in [-1, 1] for index `i` and salt `salt`.
fn check_val(i: usize, salt: usize) -> f32 {
    let x = (i.wrapping_mul(2_654_435_761).wrapping_add(salt * 97_531)) % 2001;
    x as f32 / 1000.0 - 1.0
}

/// f16 values as the u32 words of a storage buffer (one word of padding at the end).
fn f16_words(v: &[f16]) -> Vec<u32> {
    let mut w: Vec<u32> = bytemuck::cast_slice::<f16, u16>(v)
        .chunks(2)
        .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
        .collect();
    w.push(0);
    w
}

/// f32 values as u32 words.
fn f32_words(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// |got − want| relative to 1 + |want|.
fn check_rel(got: f32, want: f32) -> f32 {
    (got - want).abs() / (1.0 + want.abs())
}

impl WgpuEngine {
    /// Runs the head's logits and argmax pipelines on the check product and returns the
    /// largest |error| of the logits against the CPU, and whether every (value, index)
    /// pair is the largest of its workgroup's columns of those logits (lowest index on
    /// ties), exactly.
    fn check_coop_head(&self, h: &CoopHead) -> Result<(f32, bool), EngineError> {
        let k = h.k;
        let eps = 1e-5f32;
        let val = |i: usize, salt: usize| {
            let x = (i.wrapping_mul(2_654_435_761).wrapping_add(salt * 97_531)) % 2001;
            x as f32 / 1000.0 - 1.0
        };
        let x: Vec<f32> = (0..CHECK_ROWS * k).map(|i| 3.0 * val(i, 1)).collect();
        let g: Vec<f32> = (0..k).map(|i| 1.0 + 0.5 * val(i, 2)).collect();
        let w: Vec<f16> = (0..CHECK_N * k).map(|i| f16::from_f32(val(i, 3))).collect();
        let words = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let xb = self.storage_u32("head check x", &words(&x));
        let gb = self.storage_u32("head check norm", &words(&g));
        let mut w_words: Vec<u32> = bytemuck::cast_slice::<f16, u16>(&w)
            .chunks(2)
            .map(|p| u32::from(p[0]) | u32::from(*p.get(1).unwrap_or(&0)) << 16)
            .collect();
        w_words.push(0);
        let wb = self.storage_u32("head check w", &w_words);
        let out = self.check_buffer("head check out", (CHECK_ROWS * CHECK_STRIDE * 4) as u64)?;
        let blocks = (CHECK_N as u32).div_ceil(h.columns());
        let pairs = self.check_buffer(
            "head check pairs",
            CHECK_ROWS as u64 * u64::from(blocks) * 8,
        )?;
        let params = self.uniform(&[
            CHECK_ROWS as u32,
            k as u32,
            CHECK_N as u32,
            0,
            eps.to_bits(),
            CHECK_STRIDE as u32,
            CHECK_COL0 as u32,
            blocks,
        ]);
        let groups = [blocks, (CHECK_ROWS as u32).div_ceil(16), 1];
        let run = |pipeline: &wgpu::ComputePipeline, dst: &wgpu::Buffer, words: usize| {
            let d = self.dispatch_bound(
                pipeline,
                &[
                    (0, (&params).into()),
                    (1, (&xb).into()),
                    (2, (&wb).into()),
                    (3, (&self.dummy).into()),
                    (4, (&out).into()),
                    (5, (&gb).into()),
                    (6, (&pairs).into()),
                ],
                groups,
            );
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                d.encode(&mut pass);
            }
            self.read_back(scope, encoder, dst, words)
        };
        let got = run(&h.logits, &out, CHECK_ROWS * CHECK_STRIDE)?;
        let got_pairs = run(&h.argmax, &pairs, CHECK_ROWS * blocks as usize * 2)?;
        let logit = |t: usize, n: usize| f32::from_bits(got[t * CHECK_STRIDE + CHECK_COL0 + n]);
        let mut max_err = 0f32;
        let mut pairs_ok = true;
        for t in 0..CHECK_ROWS {
            let row = &x[t * k..(t + 1) * k];
            let ms = row.iter().map(|v| v * v).sum::<f32>() / k as f32;
            let s = 1.0 / (ms + eps).sqrt();
            // The staged operand is rounded to f16, as on the device.
            let a: Vec<f32> = (0..k)
                .map(|i| f16::from_f32(row[i] * s * g[i]).to_f32())
                .collect();
            for n in 0..CHECK_N {
                let want: f32 = (0..k).map(|i| a[i] * w[n * k + i].to_f32()).sum();
                max_err = max_err.max((logit(t, n) - want).abs());
            }
            for b in 0..blocks as usize {
                let cols = b * h.columns() as usize..((b + 1) * h.columns() as usize).min(CHECK_N);
                // The first index of the largest value (no NaN here).
                let best =
                    cols.clone().fold(
                        cols.start,
                        |bi, n| if logit(t, n) > logit(t, bi) { n } else { bi },
                    );
                let o = (t * blocks as usize + b) * 2;
                pairs_ok &=
                    got_pairs[o] == logit(t, best).to_bits() && got_pairs[o + 1] == best as u32;
            }
        }
        Ok((max_err, pairs_ok))
    }

    /// Runs `pipeline` (`coop_matvec.wgsl` with the buffers `bound`) once and reads
    /// `words` words of `dst` back.
    fn run_coop_check(
        &self,
        pipeline: &wgpu::ComputePipeline,
        bound: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
        dst: &wgpu::Buffer,
        words: usize,
    ) -> Result<Vec<u32>, EngineError> {
        let views: Vec<(u32, super::record::View)> =
            bound.iter().map(|(i, b)| (*i, (*b).into())).collect();
        let d = self.dispatch_bound(pipeline, &views, groups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            d.encode(&mut pass);
        }
        self.read_back(scope, encoder, dst, words)
    }

    /// Runs the output product (f16 input, + residual, at column 3 of rows 53 wide; staged
    /// and direct) and the gate/up product (RMSNorm, SwiGLU epilogue, ffn = 48) on matrix
    /// units on 21 rows of check data and returns their largest error against the CPU,
    /// relative to 1 + |the CPU's value| (the f16 operands rounded as on the device).
    fn check_coop_products(&self) -> Result<f32, EngineError> {
        let mut worst = 0f32;
        if let Some(p) = &self.coop_decode.out {
            for pipeline in std::iter::once(&p.pipeline).chain(&p.direct) {
                worst = worst.max(self.check_coop_plain(pipeline, p.k)?);
            }
        }
        if let Some(p) = &self.coop_decode.gate_up {
            worst = worst.max(self.check_coop_gate_up(&p.pipeline, p.k)?);
        }
        if let Some(p) = &self.coop_decode.qkv {
            worst = worst.max(self.check_coop_qkv(&p.pipeline, p.k)?);
        }
        Ok(worst)
    }

    /// The QKV product with RoPE + the cache write (f32 x, K = `k`, RMSNorm; 3 query heads
    /// and 1 KV head of the model's head_dim; 21 rows at positions 5.., each with a cache
    /// row of 32 slots, all sink, so position p is slot p): its largest error against the
    /// CPU over Q, the K cache and the V cache, relative to 1 + |the CPU's value| (the
    /// staged x rounded to f16 as on the device; the outputs are f16).
    fn check_coop_qkv(
        &self,
        pipeline: &wgpu::ComputePipeline,
        k: usize,
    ) -> Result<f32, EngineError> {
        let rows = CHECK_ROWS;
        let (hd, qh, slots, eps) = (self.config.head_dim, 3usize, 32usize, 1e-5f32);
        let half = hd / 2;
        let n = (qh + 2) * hd;
        let pos = |t: usize| 5 + t;
        let x: Vec<f32> = (0..rows * k).map(|i| 3.0 * check_val(i, 9)).collect();
        let g: Vec<f32> = (0..k).map(|i| 1.0 + 0.5 * check_val(i, 10)).collect();
        let w: Vec<f16> = (0..n * k)
            .map(|i| f16::from_f32(check_val(i, 11)))
            .collect();
        // (cos, sin) per [position, pair].
        let angle = |p: usize, i: usize| p as f32 * (0.9f32).powi(i as i32);
        let table: Vec<f32> = (0..slots * half)
            .flat_map(|e| {
                let a = angle(e / half, e % half);
                [a.cos(), a.sin()]
            })
            .collect();
        let info: Vec<u32> = (0..rows)
            .flat_map(|t| [pos(t) as u32, t as u32, pos(t) as u32, 0])
            .collect();
        let mut rp = vec![
            rows as u32,
            qh as u32,
            1,
            hd as u32,
            slots as u32,
            1,
            0,
            rows as u32,
        ];
        rp.extend([0, slots as u32, 0, 0]);
        rp.resize(8 + 4 * 64, 0);
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            n as u32,
            0,
            eps.to_bits(),
            n as u32,
            0,
            0,
        ]);
        let rpb = self.uniform(&rp);
        let xb = self.storage_u32("qkv check x", &f32_words(&x));
        let gb = self.storage_u32("qkv check norm", &f32_words(&g));
        let wb = self.storage_u32("qkv check w", &f16_words(&w));
        let ib = self.storage_u32("qkv check info", &info);
        let tb = self.storage_u32("qkv check rope", &f32_words(&table));
        let q_words = (rows * qh * hd).div_ceil(2);
        let c_words = (rows * slots * hd).div_ceil(2);
        let qb = self.check_buffer("qkv check q", 4 * q_words as u64)?;
        let kb = self.check_buffer("qkv check k cache", 4 * c_words as u64)?;
        let vb = self.check_buffer("qkv check v cache", 4 * c_words as u64)?;
        // Written by no EPI 3 dispatch; bound writable as its layout has them.
        let scratch = self.check_buffer("qkv check out", 16)?;
        let no_pairs = self.check_buffer("check pairs", 16)?;
        let bound = [
            (0, &params),
            (1, &xb),
            (2, &wb),
            (3, &self.dummy),
            (4, &scratch),
            (5, &gb),
            (6, &rpb),
            (7, &ib),
            (8, &tb),
            (9, &qb),
            (10, &kb),
            (11, &vb),
            (12, &no_pairs),
        ];
        let groups = [(n / 32) as u32, rows.div_ceil(16) as u32, 1];
        let halves = |words: Vec<u32>| -> Vec<f32> {
            words
                .iter()
                .flat_map(|w| [*w as u16, (*w >> 16) as u16])
                .map(|h| f16::from_bits(h).to_f32())
                .collect()
        };
        let got_q = halves(self.run_coop_check(pipeline, &bound, groups, &qb, q_words)?);
        let got_k = halves(self.run_coop_check(pipeline, &bound, groups, &kb, c_words)?);
        let got_v = halves(self.run_coop_check(pipeline, &bound, groups, &vb, c_words)?);
        let mut worst = 0f32;
        for t in 0..rows {
            let row = &x[t * k..(t + 1) * k];
            let s = 1.0 / (row.iter().map(|v| v * v).sum::<f32>() / k as f32 + eps).sqrt();
            let a: Vec<f32> = (0..k)
                .map(|i| f16::from_f32(row[i] * s * g[i]).to_f32())
                .collect();
            let dot = |c: usize| -> f32 { (0..k).map(|i| a[i] * w[c * k + i].to_f32()).sum() };
            let p = pos(t);
            for h in 0..qh + 2 {
                for i in 0..half {
                    let (mut va, mut vb) = (dot(h * hd + i), dot(h * hd + half + i));
                    if h <= qh {
                        let (c, sn) = (table[2 * (p * half + i)], table[2 * (p * half + i) + 1]);
                        (va, vb) = (va * c - vb * sn, vb * c + va * sn);
                    }
                    let (got, o) = match h {
                        h if h < qh => (&got_q, (t * qh + h) * hd),
                        h if h == qh => (&got_k, (t * slots + p) * hd),
                        _ => (&got_v, (t * slots + p) * hd),
                    };
                    worst = worst.max(check_rel(got[o + i], va));
                    worst = worst.max(check_rel(got[o + half + i], vb));
                }
            }
        }
        Ok(worst)
    }

    /// A product of f16 x (K = `k`) + residual, at column 3 of rows 53 wide (the output
    /// product): its largest relative error against the CPU.
    fn check_coop_plain(
        &self,
        pipeline: &wgpu::ComputePipeline,
        k: usize,
    ) -> Result<f32, EngineError> {
        let rows = CHECK_ROWS;
        let (n, stride, col0) = (48, 53, 3);
        // Whole 16-row blocks of x (the direct walk reads every row of a block; rows past
        // `rows` are finite and write nothing).
        let x_rows = rows.div_ceil(16) * 16;
        let x: Vec<f16> = (0..x_rows * k)
            .map(|i| f16::from_f32(check_val(i, 4)))
            .collect();
        let w: Vec<f16> = (0..n * k).map(|i| f16::from_f32(check_val(i, 5))).collect();
        let res: Vec<f32> = (0..rows * stride).map(|i| (i % 7) as f32).collect();
        let xb = self.storage_u32("out check x", &f16_words(&x));
        let wb = self.storage_u32("out check w", &f16_words(&w));
        let rb = self.storage_u32("out check residual", &f32_words(&res));
        let out = self.check_buffer("out check out", (rows * stride * 4) as u64)?;
        // Bound writable where a product writes no pairs (the read-only dummy cannot be).
        let no_pairs = self.check_buffer("check pairs", 16)?;
        let eps = 1e-5f32.to_bits();
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            n as u32,
            1,
            eps,
            stride as u32,
            col0 as u32,
            0,
        ]);
        let bound = [
            (0, &params),
            (1, &xb),
            (2, &wb),
            (3, &rb),
            (4, &out),
            (5, &self.dummy),
            (6, &no_pairs),
        ];
        let groups = [(n / 16) as u32, rows.div_ceil(16) as u32, 1];
        let got = self.run_coop_check(pipeline, &bound, groups, &out, rows * stride)?;
        let mut worst = 0f32;
        for t in 0..rows {
            for c in 0..n {
                let dot: f32 = (0..k)
                    .map(|i| x[t * k + i].to_f32() * w[c * k + i].to_f32())
                    .sum();
                let o = t * stride + col0 + c;
                worst = worst.max(check_rel(f32::from_bits(got[o]), dot + res[o]));
            }
        }
        Ok(worst)
    }

    /// The gate/up product (f32 x, K = `k`, RMSNorm, SwiGLU epilogue, ffn = 48): its
    /// largest relative error against the CPU.
    fn check_coop_gate_up(
        &self,
        pipeline: &wgpu::ComputePipeline,
        k: usize,
    ) -> Result<f32, EngineError> {
        let rows = CHECK_ROWS;
        let (ffn, eps) = (48, 1e-5f32);
        let x: Vec<f32> = (0..rows * k).map(|i| 3.0 * check_val(i, 6)).collect();
        let g: Vec<f32> = (0..k).map(|i| 1.0 + 0.5 * check_val(i, 7)).collect();
        let w: Vec<f16> = (0..2 * ffn * k)
            .map(|i| f16::from_f32(check_val(i, 8)))
            .collect();
        let xb = self.storage_u32("gate/up check x", &f32_words(&x));
        let gb = self.storage_u32("gate/up check norm", &f32_words(&g));
        let wb = self.storage_u32("gate/up check w", &f16_words(&w));
        let out = self.check_buffer("gate/up check out", (rows * ffn * 4) as u64)?;
        let no_pairs = self.check_buffer("check pairs", 16)?;
        let params = self.uniform(&[
            rows as u32,
            k as u32,
            2 * ffn as u32,
            0,
            eps.to_bits(),
            ffn as u32,
            0,
            0,
        ]);
        let bound = [
            (0, &params),
            (1, &xb),
            (2, &wb),
            (3, &self.dummy),
            (4, &out),
            (5, &gb),
            (6, &no_pairs),
        ];
        let groups = [(ffn / 16) as u32, rows.div_ceil(16) as u32, 1];
        let got = self.run_coop_check(pipeline, &bound, groups, &out, rows * ffn)?;
        let mut worst = 0f32;
        for t in 0..rows {
            let row = &x[t * k..(t + 1) * k];
            let s = 1.0 / (row.iter().map(|v| v * v).sum::<f32>() / k as f32 + eps).sqrt();
            let a: Vec<f32> = (0..k)
                .map(|i| f16::from_f32(row[i] * s * g[i]).to_f32())
                .collect();
            let dot = |n: usize| -> f32 { (0..k).map(|i| a[i] * w[n * k + i].to_f32()).sum() };
            for c in 0..ffn {
                let (gate, up) = (dot(c), dot(ffn + c));
                let want = gate / (1.0 + (-gate).exp()) * up;
                worst = worst.max(check_rel(f32::from_bits(got[t * ffn + c]), want));
            }
        }
        Ok(worst)
    }

    /// Pairs per row the argmax's first stage may write: `argmax.wgsl`'s blocks, or one
    /// per workgroup of the matrix-unit head.
    pub(super) fn argmax_blocks_max(&self) -> u32 {
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let coop = self
            .coop_decode
            .head
            .as_ref()
            .map_or(0, |h| (head.rows as u32).div_ceil(h.columns()));
        super::record::ARGMAX_BLOCKS.max(coop)
    }

    /// Keeps the matrix-unit head only if it matches the CPU on this device, and says
    /// which head runs (for `describe`).
    pub(super) fn settle_coop_head(&mut self) {
        let Ok(h) = &self.coop_decode.head else {
            return;
        };
        let o = self.options;
        if h.staged.is_some() && o.coop_head_diag != 0 {
            self.coop_decode.head_kind = format!(
                "matrix units (coop_head.wgsl, timing diagnostic DIAG {}: wrong results, unchecked)",
                o.coop_head_diag
            );
            return;
        }
        // f16 operands (the CPU rounds them the same way), f32 sums of k terms ≤ 3 in
        // magnitude: only the order of the additions differs.
        let tol = 1e-2;
        let verdict = match self.check_coop_head(h) {
            Ok((e, true)) if e <= tol => Ok(format!(
                "matrix units ({}{}; max |err| {e:.1e} on the start-up check)",
                match h.staged {
                    Some(ks) => format!(
                        "{}, weights staged {ks} of K at a time, {} blocks of 64 columns a workgroup, x staged in one round trip, vector stores{}",
                        if h.wide {
                            "coop_head_wide.wgsl (16 subgroups a workgroup, a block's stages in flight)"
                        } else {
                            "coop_head.wgsl"
                        },
                        h.tiles,
                        if o.coop_head_unchecked {
                            ", without naga's runtime checks"
                        } else {
                            ", with naga's runtime checks"
                        }
                    ),
                    None => format!(
                        "coop_matvec.wgsl, {} tiles a subgroup, x staged in one round trip",
                        h.tiles
                    ),
                },
                if h.fold_argmax {
                    ", argmax stage 1 in its epilogue"
                } else {
                    ""
                }
            )),
            Ok((e, pairs)) => Err(format!(
                "failed its start-up check: max |err| {e}, argmax pairs {}",
                if pairs { "right" } else { "wrong" }
            )),
            Err(e) => Err(format!("did not run: {e}")),
        };
        match verdict {
            Ok(s) => {
                self.coop_decode.head_kind = s;
                // The output and gate/up products: f32 sums of the same f16 operands as
                // the CPU's.
                match self.check_coop_products() {
                    Ok(e) if e <= 1e-3 => {}
                    Ok(e) => self.drop_coop_products(format!(
                        "failed its start-up check: max relative error {e}"
                    )),
                    Err(e) => self.drop_coop_products(format!("did not run: {e}")),
                }
            }
            Err(why) => {
                self.coop_decode.head_kind =
                    format!("as the other products (the matrix-unit head {why})");
                self.coop_decode.head = Err(why);
                // The same feature and kernel: the other matrix-unit products go too.
                self.coop_decode.out = None;
                self.coop_decode.gate_up = None;
                self.coop_decode.qkv = None;
            }
        }
    }

    /// The fused output → gate/up dispatch's meeting state (`MOA_WGPU_DECODE_FUSED_MLP=1`):
    /// (arrivals counted so far, error flag: 1 where a meeting ended at its spin bound, so
    /// some step computed wrong values), read after the queue's work so far; `None` where
    /// the engine does not run that dispatch.
    pub fn fused_mlp_state(&self) -> Option<Result<(u32, u32), EngineError>> {
        let f = self.coop_decode.fused_mlp.as_ref()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        Some(
            self.read_back(scope, encoder, &f.ctl, 2)
                .map(|w| (w[0], w[1])),
        )
    }

    /// Turns the matrix-unit output and gate/up products off, saying why in
    /// `decode_products`.
    fn drop_coop_products(&mut self, why: String) {
        let qkv = self.coop_decode.qkv.take().is_some();
        if self.coop_decode.out.take().is_some() | self.coop_decode.gate_up.take().is_some() | qkv {
            self.coop_decode.note =
                format!("; the matrix-unit output, gate/up and QKV products {why}");
        }
    }
}
