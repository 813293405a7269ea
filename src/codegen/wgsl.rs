//! WGSL back end: per layer a fused prefill and a fused split-K decode kernel, plus one
//! decode merge kernel shared by all layers. Every module is validated with naga before
//! it leaves this function, so an invalid kernel is a compiler error, not a driver one.

#![warn(missing_docs)]

use serde::Serialize;
use serde_json::json;

use super::abi::{Access, Arg, Elem, Grid, KernelAbi, Param, Tiles};
use super::ctx::LayerCtx;
use super::{Artifact, CodegenError, KernelInfo, Phase, Target};
use crate::lower::consts::{
    WGSL_DECODE_THREADS, WGSL_PREFILL_K_TILE, WGSL_PREFILL_Q_TILE, WGSL_WORKGROUP_STORAGE_BYTES,
};
use crate::lower::{KernelModule, StorageType};

const PREFILL: &str = "prefill.wgsl.j2";
const PREFILL_COOP: &str = "prefill_coop.wgsl.j2";
const PREFILL_COOP_GROUP: &str = "prefill_coop_group.wgsl.j2";
const DECODE: &str = "decode.wgsl.j2";
const DECODE_COOP: &str = "decode_coop.wgsl.j2";
const DECODE_SG: &str = "decode_sg.wgsl.j2";
const DECODE_SG_PIPE: &str = "decode_sg_pipe.wgsl.j2";
const DECODE_SG_FLAT: &str = "decode_sg_flat.wgsl.j2";
const MERGE: &str = "decode_merge.wgsl.j2";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "span.wgsl.j2",
        include_str!("../../templates/wgsl/span.wgsl.j2"),
    ),
    (
        "decode_fused_merge.wgsl.j2",
        include_str!("../../templates/wgsl/decode_fused_merge.wgsl.j2"),
    ),
    (
        PREFILL,
        include_str!("../../templates/wgsl/prefill.wgsl.j2"),
    ),
    (
        PREFILL_COOP,
        include_str!("../../templates/wgsl/prefill_coop.wgsl.j2"),
    ),
    (
        PREFILL_COOP_GROUP,
        include_str!("../../templates/wgsl/prefill_coop_group.wgsl.j2"),
    ),
    (DECODE, include_str!("../../templates/wgsl/decode.wgsl.j2")),
    (
        DECODE_COOP,
        include_str!("../../templates/wgsl/decode_coop.wgsl.j2"),
    ),
    (
        MERGE,
        include_str!("../../templates/wgsl/decode_merge.wgsl.j2"),
    ),
    (
        DECODE_SG,
        include_str!("../../templates/wgsl/decode_sg.wgsl.j2"),
    ),
    (
        DECODE_SG_PIPE,
        include_str!("../../templates/wgsl/decode_sg_pipe.wgsl.j2"),
    ),
    (
        DECODE_SG_FLAT,
        include_str!("../../templates/wgsl/decode_sg_flat.wgsl.j2"),
    ),
];

/// Keys per prefill tile for a head dim: the K and V tiles (f32) must fit the
/// workgroup memory budget, so large head dims get shorter tiles (a power of two).
pub fn prefill_k_tile(head_dim: u32) -> u32 {
    let fit = WGSL_WORKGROUP_STORAGE_BYTES / (2 * 4 * head_dim.max(1));
    let mut tile = WGSL_PREFILL_K_TILE;
    while tile > 1 && tile > fit {
        tile /= 2;
    }
    tile
}

/// How a layer's decode kernel is laid out for a storage type, head dim and GQA group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeShape {
    /// Invocations per workgroup: `slot_groups × head_dim / kv_vec`.
    pub threads: u32,
    /// Slots per tile (one slot per invocation in QK); work-list chunks are multiples.
    pub tile: u32,
    /// Elements per K/V load: 8 f16 (16 bytes) when head_dim allows, else 4.
    pub kv_vec: u32,
    /// Invocations per value column in P·V (each runs its own online softmax).
    pub slot_groups: u32,
    /// Whether the group's queries are staged in workgroup memory (else re-read from Q).
    pub stage_q: bool,
    /// f32 elements of the probabilities of two alternating tiles (`2 × tile × group`),
    /// at least `slot_groups × head_dim`: reused for the slot groups' accumulators.
    pub p_len: u32,
}

/// Loads one invocation issues before using the first (K vectors of its slot in QK,
/// V vectors of its slots in P·V): 16 × 16 bytes keep 256 bytes in flight per
/// invocation at about 64 registers.
pub const DECODE_LOAD_BATCH: u32 = 16;

/// The largest GQA group whose heads the decode unrolls (per-head state in registers:
/// 8 heads × 8 columns of accumulators at head_dim 128). Larger groups loop over heads,
/// which keeps the source (and a CPU driver's compile time) small.
pub const DECODE_UNROLLED_GROUP: u32 = 8;

impl DecodeShape {
    fn p_len_for(tile: u32, group_size: u32, slot_groups: u32, head_dim: u32) -> u32 {
        (2 * tile * group_size).max(slot_groups * head_dim)
    }

    /// Workgroup bytes: probabilities (two tiles), live flags (two tiles), tile maxima
    /// (two tiles), per-slot-group sums, staged queries.
    pub fn workgroup_bytes(&self, group_size: u32, head_dim: u32) -> u32 {
        4 * (self.p_len
            + 2 * self.tile
            + 2 * group_size
            + self.slot_groups * group_size
            + if self.stage_q {
                group_size * head_dim
            } else {
                0
            })
    }
}

/// The decode kernel's layout: `WGSL_DECODE_THREADS` invocations rounded to whole value
/// rows, a tile of one slot per invocation, the queries staged; for a large GQA group
/// the queries are read from Q instead and the tile halves until the workgroup memory
/// fits `WGSL_WORKGROUP_STORAGE_BYTES`. Errors: a head dim too wide for one workgroup
/// (more than 256 loads per row) or a group whose single-slot tile does not fit.
pub fn decode_shape(
    storage: StorageType,
    group_size: u32,
    head_dim: u32,
) -> Result<DecodeShape, CodegenError> {
    decode_shape_with(storage, group_size, head_dim, true)
}

/// [`decode_shape`], with f16 loads of 8 bytes (4 elements) instead of 16 where
/// `wide_loads` is false ([`WgslTuning::decode_narrow_loads`]).
pub fn decode_shape_with(
    storage: StorageType,
    group_size: u32,
    head_dim: u32,
    wide_loads: bool,
) -> Result<DecodeShape, CodegenError> {
    decode_shape_sized(
        storage,
        group_size,
        head_dim,
        wide_loads,
        WGSL_DECODE_THREADS,
        WGSL_WORKGROUP_STORAGE_BYTES,
    )
}

/// [`decode_shape_with`] for about `threads` invocations per workgroup (rounded down to
/// whole value rows; [`WgslTuning::decode_threads`]) within `budget` bytes of workgroup
/// memory.
pub fn decode_shape_sized(
    storage: StorageType,
    group_size: u32,
    head_dim: u32,
    wide_loads: bool,
    threads: u32,
    budget: u32,
) -> Result<DecodeShape, CodegenError> {
    let kv_vec = if wide_loads && storage == StorageType::F16 && head_dim.is_multiple_of(8) {
        8
    } else {
        4
    };
    let dv = (head_dim / kv_vec).max(1);
    if dv > 256 {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "head_dim {head_dim}: the WGSL decode needs one invocation per {kv_vec} \
                 elements of a row, at most 256 per workgroup (head_dim <= {})",
                256 * kv_vec
            ),
        });
    }
    let slot_groups = (threads / dv).max(1);
    let threads = dv * slot_groups;
    let mut shape = DecodeShape {
        threads,
        tile: threads,
        kv_vec,
        slot_groups,
        stage_q: true,
        p_len: DecodeShape::p_len_for(threads, group_size, slot_groups, head_dim),
    };
    let fits = |s: &DecodeShape| s.workgroup_bytes(group_size, head_dim) <= budget;
    if fits(&shape) {
        return Ok(shape);
    }
    shape.stage_q = false;
    while !fits(&shape) && shape.tile > 1 {
        shape.tile /= 2;
        shape.p_len = DecodeShape::p_len_for(shape.tile, group_size, slot_groups, head_dim);
    }
    if !fits(&shape) {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "a GQA group of {group_size} query heads at head_dim {head_dim}: the \
                 WGSL decode's per-head state does not fit {budget} bytes of workgroup \
                 memory"
            ),
        });
    }
    Ok(shape)
}

/// Slots per tile of the decode on cooperative matrices: one 16-slot block of scores per
/// subgroup ([`DECODE_COOP_SUBGROUPS`] of them); work-list chunks are multiples.
pub const DECODE_COOP_TILE: u32 = 64;

/// Subgroups per workgroup of the decode on cooperative matrices: each owns one block of
/// a tile's scores and `head_dim / 4` value columns of the group's output.
pub const DECODE_COOP_SUBGROUPS: u32 = 4;

/// Workgroup memory the decode on cooperative matrices may use. It runs only on adapters
/// with cooperative matrices (GPUs, whose limit is 32–64 KiB), so it is not held to the
/// WebGPU default the other kernels keep (`WGSL_WORKGROUP_STORAGE_BYTES`); a device that
/// refuses it gets the scalar decode.
pub const DECODE_COOP_WORKGROUP_BYTES: u32 = 32768;

/// Workgroup bytes of the decode on cooperative matrices at `head_dim` (template
/// `decode_coop.wgsl.j2`): the f32 scores / accumulator image, the f16 queries / staged
/// partial block, P, the ones matrix, and 64 per-head words.
pub fn decode_coop_workgroup_bytes(head_dim: u32) -> u32 {
    let f_len = (DECODE_COOP_TILE * 16).max(16 * (head_dim + 16));
    4 * f_len + 2 * 32 * head_dim + 2 * 16 * DECODE_COOP_TILE + 2 * 256 + 4 * 64
}

/// Whether a layer gets a decode on cooperative matrices beside the scalar one: f16
/// storage (the matrix units take f16 operands; f32 keeps its exact scalar path), a GQA
/// group of at most 16 heads (the matrices' rows), a head dim that splits into 16-wide
/// columns across the subgroups, and workgroup memory within
/// [`DECODE_COOP_WORKGROUP_BYTES`].
pub fn decode_coop_fits(storage: StorageType, group_size: u32, head_dim: u32) -> bool {
    storage == StorageType::F16
        && (1..=16).contains(&group_size)
        && head_dim > 0
        && head_dim.is_multiple_of(16 * DECODE_COOP_SUBGROUPS)
        && decode_coop_workgroup_bytes(head_dim) <= DECODE_COOP_WORKGROUP_BYTES
}

/// The decode work list binding, `u32[n_items, 8]` (`runtime::worklist::DecodeWork`,
/// built by the host with chunks of a multiple of the kernel's `tiles.k_tile` slots).
fn work_param(index: u32) -> Param {
    Param::buffer(index, Arg::Work, Access::Read, Elem::U32, &["n_items", "8"])
}

/// Bindings 0–6 of every decode form (scalar, subgroup, cooperative-matrix): sizes, row
/// positions, Q, the K and V caches, the work list and the partials. One list, so the
/// forms the executor swaps for one another cannot drift apart.
fn decode_params(e: Elem) -> Vec<Param> {
    let kv_shape = ["rows", "row_slots", "head_dim"];
    vec![
        Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::NItems, Arg::Pad]),
        Param::buffer(1, Arg::RowPos, Access::Read, Elem::U32, &["rows"]),
        Param::buffer(2, Arg::Q, Access::Read, e, &["rows", "q_heads", "head_dim"]),
        Param::buffer(3, Arg::KCache, Access::Read, e, &kv_shape),
        Param::buffer(4, Arg::VCache, Access::Read, e, &kv_shape),
        work_param(5),
        Param::buffer(
            6,
            Arg::Partials,
            Access::ReadWrite,
            Elem::F32,
            &["n_items", "group_size", "head_dim + 2"],
        ),
    ]
}

/// The bindings a decode that merges itself adds ([`WgslTuning::decode_fused_merge`]):
/// the per-segment arrival counters (`rows × kv_heads` u32) and O.
fn fused_merge_params(e: Elem) -> [Param; 2] {
    [
        Param::buffer(
            7,
            Arg::SegDone,
            Access::ReadWrite,
            Elem::U32,
            &["rows * kv_heads"],
        ),
        Param::buffer(
            8,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["rows", "q_heads", "head_dim"],
        ),
    ]
}

#[derive(Serialize)]
struct PrefillCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    q_tile: u32,
    k_tile: u32,
}

#[derive(Serialize)]
struct PrefillCoopCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// f32 elements of the scores / P·V buffer: 64 queries × max(64, head_dim).
    s_len: u32,
}

#[derive(Serialize)]
struct PrefillCoopGroupCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// 16-query blocks per workgroup (each for every head of the group).
    q_blocks: u32,
    /// Queries per workgroup: 16 · `q_blocks`.
    q_tile: u32,
    /// Subgroups per workgroup: group size · `q_blocks`.
    subgroups: u32,
    /// The variant: `form`, `diag`, `stage_k`, `v_early`, `v_in_k`, `mask_select` and
    /// `score_regs`, each under its own name.
    #[serde(flatten)]
    variant: PrefillGroupForm,
}

/// Which variant of the group form (`prefill_coop_group.wgsl.j2`) to generate.
/// `form` 2 (the default): the workgroup regions (each one subgroup's own) ordered by
/// subgroup barriers, which need the device's `SUBGROUP_BARRIER`; 1: by workgroup barriers.
/// On the H200 (SmolLM2 shape, 16 × 4096) form 2 took the attention 153.3 → 129.5 ms a
/// pass with moa-50 and 235.1 → 201.0 dense (benches/RESULTS.md, "wgpu engine, session
/// 29 (branch s29-pattn)"); session 29's two-pass forms (3, 4: the rows' maxima first,
/// then P·V in C matrices with no rescale) lost (183 and 208 ms) and were deleted.
/// `diag` (**wrong results**, timing only): 1 no softmax, 2 P·V summed in C matrices
/// without the per-tile round trip, 3 no K/V loads in the loop (one block of each
/// stands for all), 4 no K loads (one K block stands for all), 5 no V loads (one V
/// block). `stage_k` (default; session 30): each key tile's K loaded once per workgroup
/// in 16-byte words (two tiles ahead, into registers) and staged in workgroup memory (two
/// workgroup barriers a tile), the scores reading it from there as B matrices; it needs
/// the f16-in-f32 conversions (`unpack2x16float`; wgpu's `SHADER_F16_IN_F32`), no
/// diagnostic, and room beside the subgroups' regions ([`prefill_group_stage_fits`]).
/// `v_early` (default; session 30; no diagnostic): the tile's V B matrices read from
/// storage right after the scores, so that their latency hides behind the softmax. On
/// the H200 (SmolLM2 shape, 16 × 4096) both took the attention 129.5 → 102.3 ms a pass
/// with moa-50 and 200.9 → 153.5 dense (two runs each, A/A 0.1%; K staged alone 104.2
/// and 156.0, V early alone 134.2 and 198.4: benches/RESULTS.md, "wgpu engine, session
/// 30 (branch s30-pattn)"). Session 30's V staged as well (one 16-query block a head for
/// the room: 156.3 ms) and next tile's K read ahead into registers (134.9) lost and were
/// deleted; session 29's V staged alone had tied.
/// `v_in_k` (default; needs `stage_k`; built in session 31 as `MOA_WGPU_COOP_ATTN_LIVE`'s
/// bit 4): V staged too, in the staged K tile's own buffer (no more workgroup memory):
/// each tile's V words (16-byte loads once per workgroup, issued at the tile's top) are
/// stored over its K once every subgroup's scores are done and read by P·V as B matrices
/// from there (`v_early` then has nothing to read early); the next tile's K words, issued
/// then, are stored once every P·V is done (four workgroup barriers a tile instead of
/// two; one word array a lane serving both). On the H200 (SmolLM2 shape, 16 × 4096) it
/// took the attention 101.8 → 80.0 ms a pass with moa-50 and 153.2 → 120.2 dense (221
/// registers against 255: still one workgroup an SM; benches/RESULTS.md, "wgpu engine,
/// session 32, lead call 1"). Session 31's other cuts (V in 32-column chunks, 245
/// registers; Q re-read each tile, 255; both 255 and 106.5 ms) were deleted in session 32,
/// and so was session 32's words a whole tile ahead (234 registers: a tie with moa-50,
/// +2.3% dense), and its staged stores rotated by row against 2-byte bank conflicts
/// (+30%: the driver merges the 8 stores of a word). Diagnostics of `v_in_k` (session 32,
/// **wrong results**): `diag` 1 (no softmax) keeps K staged (30.3 against 80.0 ms a pass
/// with moa-50: the softmax is ~50 of the 80), 7 leaves out the 4 workgroup barriers a
/// tile (75.1). `mask_select` (session 32, opt-in, not yet timed; not with diagnostic 1):
/// the softmax reads every score of its keys and masks with `select()` instead of
/// reading the visible keys' scores inside a branch.
/// `score_regs` (session 32, s32-soft; the engine's default; not with diagnostic 1;
/// supersedes `mask_select`): the
/// softmax reads each invocation's scores once, in 16-byte-aligned 4-key groups, scaled
/// into registers (64 / lanes-a-row f32) that serve both the row's maximum and P, and
/// masks them (select to −3e38) only in key tiles not wholly visible to its query. On the
/// H200 (SmolLM2 shape, 16 × 4096) it took the attention 77.2 → 38.2 ms a pass with moa-50
/// and 114.5 → 52.9 dense (239 registers against 236; benches/RESULTS.md, "wgpu engine,
/// session 32 (branch s32-soft)").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PrefillGroupForm {
    /// 2: regions ordered by subgroup barriers (needs `SUBGROUP_BARRIER`); 1: by
    /// workgroup barriers.
    pub form: u32,
    /// 0 for a correct kernel; 1 to 5 and 7 are timing diagnostics with wrong results
    /// (6 does not exist).
    pub diag: u32,
    /// Each key tile's K staged in workgroup memory once per workgroup.
    pub stage_k: bool,
    /// The tile's V read from storage right after the scores (no diagnostic).
    pub v_early: bool,
    /// V staged in the staged K tile's buffer (needs `stage_k`).
    pub v_in_k: bool,
    /// The softmax masks every score with `select()` (not with diagnostic 1).
    pub mask_select: bool,
    /// The softmax keeps its scores in registers, masked only in tiles not wholly visible
    /// (not with diagnostic 1).
    pub score_regs: bool,
}

impl PrefillGroupForm {
    /// The default variant: form 2 (subgroup barriers), K staged, V early, V staged in
    /// K's tile.
    pub const DEFAULT: PrefillGroupForm = PrefillGroupForm {
        form: 2,
        diag: 0,
        stage_k: true,
        v_early: true,
        v_in_k: true,
        mask_select: false,
        score_regs: false,
    };

    /// Session 28's kernel: form 1 (workgroup barriers), K and V read where they are used.
    pub const PLAIN: PrefillGroupForm = PrefillGroupForm {
        form: 1,
        diag: 0,
        stage_k: false,
        v_early: false,
        v_in_k: false,
        mask_select: false,
        score_regs: false,
    };

    /// Tiles staged in workgroup memory (0 or 1), each 64 keys × (head_dim + 8) f16.
    pub fn staged_tiles(&self) -> u32 {
        u32::from(self.stage_k)
    }
}

/// Bytes of one staged K tile of the group form: 64 keys × (`head_dim` + 8) f16.
pub fn prefill_group_staged_tile_bytes(head_dim: u32) -> u32 {
    64 * (head_dim + 8) * 2
}

/// 16-query blocks per workgroup of the group form with `tiles` staged tiles
/// ([`prefill_group_staged_tile_bytes`]) beside the subgroups' regions: the largest of
/// 4, 2, 1 that fits [`WGSL_PREFILL_GROUP_MAX_BYTES`] and
/// [`WGSL_PREFILL_GROUP_MAX_SUBGROUPS`] (SmolLM2's group of 3 at head_dim 64: 2 with one
/// tile, 6 × 6656 + 9216 = 49152 bytes exactly; session 30's two tiles, K and V, took
/// it to 1 block: 3 × 6656 + 18432 = 38400 bytes, and lost).
pub fn prefill_group_q_blocks_staged(group: u32, head_dim: u32, tiles: u32) -> Option<u32> {
    let extra = tiles * prefill_group_staged_tile_bytes(head_dim);
    [4u32, 2, 1].into_iter().find(|b| {
        let sg = group * b;
        sg <= WGSL_PREFILL_GROUP_MAX_SUBGROUPS
            && sg * WGSL_PREFILL_GROUP_SUBGROUP_BYTES + extra <= WGSL_PREFILL_GROUP_MAX_BYTES
    })
}

/// Whether the group form with `tiles` staged tiles fits a GQA group of `group`
/// heads at `head_dim` in one workgroup with as many 16-query blocks as without them
/// ([`prefill_group_q_blocks_staged`] against [`prefill_group_q_blocks`]: fewer blocks
/// halve the queries each staged tile serves, which lost in session 30). SmolLM2's group
/// of 3 at head_dim 64 fits one tile; at head_dim 128 it does not.
pub fn prefill_group_stage_fits(group: u32, head_dim: u32, tiles: u32) -> bool {
    let staged = prefill_group_q_blocks_staged(group, head_dim, tiles);
    staged.is_some() && staged == prefill_group_q_blocks(group)
}

impl Default for PrefillGroupForm {
    fn default() -> Self {
        PrefillGroupForm::DEFAULT
    }
}

/// Queries (and keys) per tile of the matrix-unit prefill (`prefill_coop.wgsl.j2`).
pub const WGSL_PREFILL_COOP_TILE: u32 = 64;

/// Workgroup memory of one subgroup of the group form (`prefill_coop_group.wgsl.j2`):
/// its scores, 16 × 68 f32, and probabilities, 16 × 72 f16, in bytes.
pub const WGSL_PREFILL_GROUP_SUBGROUP_BYTES: u32 = 16 * 68 * 4 + 16 * 72 * 2;

/// Workgroup memory the group form may use: 48 KiB, what NVIDIA's Vulkan driver offers a
/// workgroup (the engine's pipeline creation refuses more where the adapter has less).
pub const WGSL_PREFILL_GROUP_MAX_BYTES: u32 = 48 * 1024;

/// Subgroups per workgroup of the group form at most (256 invocations at 32 lanes).
pub const WGSL_PREFILL_GROUP_MAX_SUBGROUPS: u32 = 8;

/// One layer's prefill on matrix units: its layer, entry point and WGSL source, and the
/// queries a workgroup owns (the grid's x is ceil(longest row / `q_tile`)); `group`
/// tells the grid's y: KV heads for the group form, query heads otherwise.
#[derive(Clone, Debug)]
pub struct CoopPrefill {
    /// The layer's index in the model.
    pub layer: u32,
    /// The kernel's entry point, `{moa_prefill_coop | moa_prefill_coop_group}_hd{head_dim}_lLL`.
    pub entry_point: String,
    /// The validated WGSL module.
    pub source: String,
    /// Queries (tokens of a row) per workgroup: 64 for the one-head form, 16 · q_blocks
    /// for the group form.
    pub q_tile: u32,
    /// Whether it is the group form: the grid's y is then KV heads, else query heads.
    pub group: bool,
}

/// 16-query blocks per workgroup of the group form for a GQA group of `group` heads: the
/// largest of 4, 2, 1 whose subgroups (`group` · blocks) stay within
/// [`WGSL_PREFILL_GROUP_MAX_SUBGROUPS`] and [`WGSL_PREFILL_GROUP_MAX_BYTES`]; `None` when
/// even one block does not fit (groups of 8 and more).
pub fn prefill_group_q_blocks(group: u32) -> Option<u32> {
    [4u32, 2, 1].into_iter().find(|b| {
        let sg = group * b;
        sg <= WGSL_PREFILL_GROUP_MAX_SUBGROUPS
            && sg * WGSL_PREFILL_GROUP_SUBGROUP_BYTES <= WGSL_PREFILL_GROUP_MAX_BYTES
    })
}

/// Per layer of `module`, the prefill attention on cooperative matrices in its group form
/// (`templates/wgsl/prefill_coop_group.wgsl.j2`): one workgroup per (row, KV head, 16 ·
/// [`prefill_group_q_blocks`] queries) for all heads of the GQA group, so a K/V tile is
/// read once per group; the softmax over SG / 16 invocations per query row, each taking
/// pairs of keys (subgroup shuffles: the adapter's `SUBGROUP` feature); the output kept by
/// those invocations in f32 registers, each tile's P·V passing through workgroup memory
/// (the online maximum exact); only the sink tiles and the band are visited, long bands
/// first. Parameters and bindings as the scalar kernel; grid (ceil(longest row /
/// `q_tile`), KV heads, rows). Session 27's forms with the output in C matrices (a lazy
/// maximum, rescaled through workgroup memory) failed the start-up check on the H200 and
/// were deleted in session 28 (commit 264d81c has them).
/// Errors: as [`prefill_coop`], and a group too large for one workgroup.
pub fn prefill_coop_group(module: &KernelModule) -> Result<Vec<CoopPrefill>, CodegenError> {
    let fits = prefill_group_stage_fits(module.shape.group_size(), module.shape.head_dim, 1);
    prefill_coop_group_form(
        module,
        PrefillGroupForm {
            stage_k: fits,
            v_in_k: fits,
            ..PrefillGroupForm::DEFAULT
        },
    )
}

/// [`prefill_coop_group`] in the variant `variant` ([`PrefillGroupForm`]). Errors: as
/// [`prefill_coop_group`], and a form other than 1 or 2, a diagnostic outside 0..=5,
/// staging where it does not fit, a diagnostic 2 to 5 with K staged, a diagnostic with V
/// early, diagnostic 6, diagnostic 7 without `v_in_k`, `v_in_k` without K staged, or
/// `mask_select` or `score_regs` with diagnostic 1.
pub fn prefill_coop_group_form(
    module: &KernelModule,
    variant: PrefillGroupForm,
) -> Result<Vec<CoopPrefill>, CodegenError> {
    let d = module.shape.head_dim;
    let group = module.shape.group_size();
    let tiles = variant.staged_tiles();
    let staged_fits = prefill_group_stage_fits(group, d, tiles);
    if !(1..=2).contains(&variant.form)
        || variant.diag > 7
        || (tiles > 0 && ((2..=5).contains(&variant.diag) || !staged_fits))
        || (variant.v_early && variant.diag > 0)
        || (variant.diag == 7 && !variant.v_in_k)
        || variant.diag == 6
        || (variant.v_in_k && !variant.stage_k)
        || ((variant.mask_select || variant.score_regs) && variant.diag == 1)
    {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "no group prefill form {variant:?} (forms 1 and 2, diagnostics 0 to 5 without K \
                 staged or V early, K staged where it fits in 48 KiB, V in K's tile with K staged, diagnostic 7 with it, select masks and scores in registers without diagnostic 1)"
            ),
        });
    }
    let blocks = prefill_group_q_blocks_staged(group, d, tiles);
    let Some(q_blocks) =
        blocks.filter(|_| module.storage == StorageType::F16 && d.is_multiple_of(16) && d <= 128)
    else {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "the matrix-unit group prefill needs f16 storage, head_dim a multiple of 16 up \
                 to 128 and a GQA group of at most 7 heads (got {} storage, head_dim {d}, \
                 group {group})",
                module.storage.name()
            ),
        });
    };
    coop_prefills(
        module,
        "moa_prefill_coop_group",
        16 * q_blocks,
        true,
        |env, ctx, entry| {
            let source = super::render(
                env,
                PREFILL_COOP_GROUP,
                Some(ctx.layer),
                &PrefillCoopGroupCtx {
                    layer: ctx,
                    entry_point: entry,
                    q_blocks,
                    q_tile: 16 * q_blocks,
                    subgroups: group * q_blocks,
                    variant,
                },
            )?;
            validate_with(
                &source,
                PREFILL_COOP_GROUP,
                Some(ctx.layer),
                naga::valid::Capabilities::SHADER_FLOAT16
                    | naga::valid::Capabilities::COOPERATIVE_MATRIX
                    | naga::valid::Capabilities::SUBGROUP
                    | if variant.form == 2 {
                        naga::valid::Capabilities::SUBGROUP_BARRIER
                    } else {
                        naga::valid::Capabilities::empty()
                    }
                    | if tiles > 0 {
                        // unpack2x16float for the staged K words.
                        naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
                    } else {
                        naga::valid::Capabilities::empty()
                    },
            )?;
            Ok(source)
        },
    )
}

/// Per layer of `module`, the matrix-unit prefill `build(env, layer, entry point)`
/// renders and validates, its entry point `{name}_hd{head_dim}_{layer label}`, `q_tile`
/// queries a workgroup, `group` telling its grid (the group form's or the one-head form's).
fn coop_prefills(
    module: &KernelModule,
    name: &str,
    q_tile: u32,
    group: bool,
    mut build: impl FnMut(&minijinja::Environment<'_>, &LayerCtx, &str) -> Result<String, CodegenError>,
) -> Result<Vec<CoopPrefill>, CodegenError> {
    let env = super::environment(TEMPLATES)?;
    let d = module.shape.head_dim;
    let mut out = Vec::with_capacity(module.layers.len());
    for layer in &module.layers {
        let ctx = LayerCtx::new(module, layer);
        let entry = format!("{name}_hd{d}_{}", ctx.layer_label);
        let source = build(&env, &ctx, &entry)?;
        out.push(CoopPrefill {
            layer: layer.layer,
            entry_point: entry,
            source,
            q_tile,
            group,
        });
    }
    Ok(out)
}

/// Per layer of `module`, the prefill attention on cooperative matrices
/// (`templates/wgsl/prefill_coop.wgsl.j2`: 16 × 16 × 16 f16 fragments, f32 accumulators,
/// 64 queries × 64 keys per tile, 4 subgroups of the `SG` override per workgroup), with
/// the scalar kernel's parameters, bindings and query-tile grid (`q_tile` 64). Built by
/// the wgpu engine at start-up where the adapter offers the matrices (it needs the
/// device feature, so it is not among a plan's portable artifacts). Errors: storage other
/// than f16, or a head_dim that is not a multiple of 16 up to 128.
pub fn prefill_coop(module: &KernelModule) -> Result<Vec<CoopPrefill>, CodegenError> {
    let d = module.shape.head_dim;
    if module.storage != StorageType::F16 || !d.is_multiple_of(16) || d > 128 {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: format!(
                "the matrix-unit prefill needs f16 storage and head_dim a multiple of 16 up to \
                 128 (got {} storage, head_dim {d})",
                module.storage.name()
            ),
        });
    }
    coop_prefills(
        module,
        "moa_prefill_coop",
        WGSL_PREFILL_COOP_TILE,
        false,
        |env, ctx, entry| {
            let source = super::render(
                env,
                PREFILL_COOP,
                Some(ctx.layer),
                &PrefillCoopCtx {
                    layer: ctx,
                    entry_point: entry,
                    s_len: WGSL_PREFILL_COOP_TILE * d.max(WGSL_PREFILL_COOP_TILE),
                },
            )?;
            validate_with(
                &source,
                PREFILL_COOP,
                Some(ctx.layer),
                naga::valid::Capabilities::SHADER_FLOAT16
                    | naga::valid::Capabilities::COOPERATIVE_MATRIX,
            )?;
            Ok(source)
        },
    )
}

#[derive(Serialize)]
struct DecodeCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    tile: u32,
    threads: u32,
    kv_vec: u32,
    kv_type: &'a str,
    slot_groups: u32,
    p_len: u32,
    stage_q: bool,
    batch: u32,
    /// [`WgslTuning::decode_quad_shuffle`], where the form is `Quad`.
    quad_shuffle: bool,
    /// [`WgslTuning::decode_f16_qk`], where it applies (`Quad`, f16 storage).
    f16_qk: bool,
    /// [`WgslTuning::decode_f16_pv`], where it applies (`Quad`, f16 storage).
    f16_pv: bool,
    /// [`WgslTuning::decode_qk_sums`] (applies with the paired end-of-chunk sums).
    qk_sums: bool,
    /// Whether the group's heads are unrolled (`head_ids` = "0u", "1u", ...) or looped
    /// over (`head_ids` = ["g"]).
    unroll_heads: bool,
    head_ids: Vec<String>,
    /// The lazy maximum ([`DecodeForm::Lazy`]).
    lazy: bool,
    /// Q.K by four invocations per slot ([`DecodeForm::Quad`]).
    quad: bool,
    /// [`WgslTuning::decode_lazy_margin`].
    lazy_margin: u32,
    /// [`WgslTuning::decode_early_v`].
    early_v: bool,
    /// [`WgslTuning::decode_paired_epilogue`], where it applies.
    paired_epilogue: bool,
    /// Heads whose slot-group accumulators fit the Q·K partials' buffer at once
    /// (`group × tile / (threads × kv_vec / 4)`), for the paired end-of-chunk sum.
    epi_heads: u32,
    /// [`WgslTuning::decode_fused_merge`]: the segment's last item merges into O.
    fused: bool,
    /// Chunks whose partials a fused merger loads at once ([`DECODE_MERGE_BATCH`]).
    merge_batch: u32,
    /// [`WgslTuning::decode_v_first`], where it applies (`Quad`, one load batch each).
    v_first: bool,
}

#[derive(Serialize)]
struct DecodeSgCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    /// Invocations per subgroup (the adapter's fixed size).
    sg: u32,
    /// Subgroups per workgroup ([`DECODE_SG_SUBGROUPS`]; the flat form's
    /// [`WgslTuning::decode_sg_flat_subgroups`]).
    subgroups: u32,
    /// The lane masks that sum a value column's slot lanes (head_dim / 8, doubling, < sg).
    xor_masks: Vec<u32>,
    /// [`WgslTuning::decode_sg_diag`].
    diag: bool,
    /// [`WgslTuning::decode_sg_pipe`] (the pipelined template only).
    items: u32,
    /// [`SgFlat::Early`] (the flat template only): each subgroup's first block issued
    /// before the row position.
    early: bool,
    /// log2(head_dim / 8): the flat template's butterfly steps.
    log_dv8: u32,
    /// The flat template's loads a lane issues per step (half of head_dim / 8, at least
    /// 1): a subgroup step covers `nl × sg / (head_dim / 8)` slots.
    nl: u32,
    /// log2(`nl`): the flat template's transposing butterfly steps.
    log_nl: u32,
    /// The lane masks that finish a score after the butterfly where `nl` < head_dim / 8
    /// (`nl`, doubling, < head_dim / 8).
    sum_masks: Vec<u32>,
    /// [`WgslTuning::decode_sg_piece`].
    piece: u8,
    /// [`WgslTuning::decode_sg_no_combine`].
    no_combine: bool,
    /// [`WgslTuning::decode_sg_flat_qk`]'s name (`f32`, `h16`, `reload`, `h16-reload`).
    qk: &'static str,
    /// [`WgslTuning::decode_sg_flat_words`] (the flat template only; it applies them to
    /// f16 storage with f32 products).
    words: bool,
    /// [`WgslTuning::decode_fused_merge`] (the flat template only): the segment's last
    /// item merges into O (`decode_fused_merge.wgsl.j2`).
    fused: bool,
    /// Chunks whose partials a fused merger loads at once ([`DECODE_MERGE_BATCH`]).
    merge_batch: u32,
    /// [`WgslTuning::decode_sg_flat_cmax`] (the flat template only).
    cmax: bool,
    /// [`WgslTuning::decode_sg_flat_qpack`] where it applies (the flat template with
    /// [`Self::words`] and [`FlatQk::F32`]).
    qpack: bool,
    /// The lane masks of a slot class's step maxima with [`Self::cmax`]: the column bits
    /// below `nl` (1, doubling, < `nl`), over which a class's lanes hold distinct slots.
    cmax_masks: Vec<u32>,
}

#[derive(Serialize)]
struct DecodeCoopCtx<'a> {
    #[serde(flatten)]
    layer: &'a LayerCtx,
    entry_point: &'a str,
    tile: u32,
    subgroups: u32,
    f_len: u32,
    prefetch: bool,
}

/// Choices of the WGSL kernels that change speed, not results (benchmarks compare them;
/// [`generate`] uses the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WgslTuning {
    /// The decode on cooperative matrices loads each tile's K while the previous tile's
    /// softmax and P·V run, and its V while its own scores run (a software pipeline in
    /// the same registers), instead of both at the start of the tile.
    pub coop_prefetch: bool,
    /// The form of the scalar decode (`decode.wgsl.j2`; DESIGN §6).
    pub decode_form: DecodeForm,
    /// How far (log2 units) a score may pass the running reference of the lazy forms
    /// before the reference moves: p stays <= 2^margin. 8 by default; 0 moves it at every
    /// new maximum (tests use it to run the rescale path on every tile).
    pub decode_lazy_margin: u32,
    /// The lazy forms issue a tile's V loads before its last barrier instead of after
    /// it (where all of a tile's V loads fit one batch). `None` (the default): on for a
    /// GQA group (measured faster on Llama-3-8B, RESULTS call 13), off for MHA (not
    /// measured there).
    pub decode_early_v: Option<bool>,
    /// The `Quad` form sums the slot groups' accumulators at the end of a chunk several
    /// heads at a time through its Q·K partials' buffer (a group of 4 at head_dim 128 in
    /// f16: 3 barriers instead of 9), where at least one head's fits. On by default:
    /// 0.97× the per-head sums' time on Llama-3-8B (RESULTS, WGSL decode session 10); it
    /// does not apply to Vicuna-7B's MHA layers in f16 (one head's sums fill the buffer
    /// twice over).
    pub decode_paired_epilogue: bool,
    /// Loads an invocation issues before using the first ([`DECODE_LOAD_BATCH`] by
    /// default): fewer hold fewer registers, which may let more workgroups share an SM;
    /// early V loads need all of a tile's V loads of an invocation in one batch. Not
    /// measured below 16 yet.
    pub decode_load_batch: u32,
    /// f16 K/V loads of 8 bytes (`vec4<f16>`) instead of 16 (`mat2x4<f16>`): twice the
    /// value-column invocations per row, so half the accumulators and load registers per
    /// invocation (a GQA group of 4 at head_dim 128: 16 accumulators, not 32) and the
    /// paired end-of-chunk sums in one round, for twice the load instructions and P·V
    /// probability reads. Off by default; not measured yet.
    pub decode_narrow_loads: bool,
    /// Invocations per decode workgroup (about: rounded down to whole value rows), so
    /// slots per tile. [`WGSL_DECODE_THREADS`] (128) by default; more (256: the same work
    /// per invocation over a tile twice as long, half the barriers per byte) need
    /// [`DECODE_WIDE_WORKGROUP_BYTES`] of workgroup memory for the `Quad` form, above
    /// WebGPU's default limit, so only GPUs run them. Not measured yet.
    pub decode_threads: u32,
    /// The `Quad` form sums a slot's four partial dot products by subgroup shuffles within
    /// the quad of invocations that computed them, not through workgroup memory: one
    /// barrier less per tile. Needs the adapter's `SUBGROUP` feature (naga validates the
    /// module with subgroup operations), so off by default. Not measured yet.
    pub decode_quad_shuffle: bool,
    /// The `Quad` form's Q·K in f16 arithmetic (f16 storage only): keys times queries
    /// rounded to f16, head_dim / 16 products per vector lane summed in f16, the lanes
    /// then in f32. No f16 → f32 conversion of K. On by default: 0.955× the f32 form's
    /// time on Llama-3-8B, 0.966× on Vicuna-7B, the same on SmolLM2-135M (H200, RESULTS
    /// "WGSL decode, session 12"); max |error| 4.6e-4 against 2.4e-4 (tolerance 2e-3).
    pub decode_f16_qk: bool,
    /// The `Quad` form's P·V in f16 arithmetic (f16 storage only): values times p rounded
    /// to f16, an invocation's 16 slots of a tile summed in f16, then added to the f32
    /// accumulators; l stays f32. The lazy margin is held to ≤ [`DECODE_F16_PV_MARGIN`]
    /// so a tile's f16 sums stay far from f16's 65504. `None` (the default): on for a GQA
    /// group (with f16 Q·K 0.97× Q·K alone's time on Llama-3-8B), off for MHA (1.30× on
    /// Vicuna-7B).
    pub decode_f16_pv: Option<bool>,
    /// The `Quad` form with paired end-of-chunk sums takes the sums l += p in the Q·K
    /// invocation of each slot (once per slot and head), not in each of the value-column
    /// invocations of its slot group (16× at head_dim 128 in f16); the 128 invocations'
    /// sums meet at the end of the chunk (one more barrier). Off by default.
    pub decode_qk_sums: bool,
    /// The decode merges each segment's partials itself: every work item counts itself in
    /// on a per-segment counter ([`Arg::SegDone`]) after writing its partial, and the last
    /// to arrive combines the segment's partials into O ([`Arg::Out`]), so a decode step is
    /// one dispatch, not two (the separate merge and the barrier before it cost ~5 µs a
    /// layer on the H200). Partials are exchanged only through atomic loads and stores,
    /// each word empty (`MOA_EMPTY`) between steps; the host fills the partials buffer
    /// with [`DECODE_PARTIAL_EMPTY`] and the counters with 0 once (DESIGN §6). `None` (the
    /// default) is off: in the wgpu engine's decode step on the H200 (SmolLM2-135M, 16 × 4096)
    /// the fused decode took 28.7–29.0 µs a layer against 22.1–22.7 + 4.0–4.5 for the
    /// decode and its separate merge, the step 2.005 against 1.891–1.912 ms, although the
    /// kernel alone (`wgpu_decode_bench`) took 0.89× (RESULTS, "WGSL decode, session 13"
    /// and "Lead calls (session 13)"). `Some(true)` turns it on: in the scalar decode, and
    /// in the flat decode on subgroups where that is the form ([`Self::decode_sg_flat`];
    /// both include `decode_fused_merge.wgsl.j2`); the other subgroup forms leave it to the
    /// scalar decode. The flat form's on the H200 (SmolLM2 shape, 16 × 4096, the engine's
    /// step): attention + merge 21.6–22.8 against 21.9–22.8 µs a layer, tokens/s
    /// +0.6..+4.4% in 7 of 7 pairs, the device step −10.7..−26.7 µs in 6 of 7 and +3.9 in
    /// one (RESULTS "WGSL decode, session 24" and its lead call). So the wgpu engine, which
    /// leaves this unset, turns it on where the flat form runs and off elsewhere
    /// (`runtime::wgpu_engine::options::engine_fused_merge`); `moa-compile` (the scalar
    /// decode) keeps it off.
    pub decode_fused_merge: Option<bool>,
    /// The `Quad` form issues each tile's V loads right behind its K loads, at the start
    /// of the tile, instead of before its last barrier: one memory round trip per tile
    /// for both products, for the V registers held through Q·K. Needs all of a tile's K
    /// loads and all of its V loads of an invocation in one batch each.
    pub decode_v_first: bool,
    /// The decode on subgroups (`decode_sg.wgsl.j2`) for this subgroup size: each of a
    /// workgroup's [`DECODE_SG_SUBGROUPS`] subgroups walks its own blocks of `size` slots
    /// with the online softmax in registers (subgroupMax, subgroupShuffle), no barrier
    /// between blocks; the same work list, partials and merge. `None` (the default) or a
    /// size the layer's head_dim does not fit ([`decode_sg_fits`]) keeps the scalar forms.
    /// The engine sets it from the adapter (`MOA_WGSL_SG_DECODE`; `Some(0)` there means
    /// "the adapter's size", resolved before generating); an adapter without the
    /// `SUBGROUP` feature cannot build it. Off by default: on the H200 through Vulkan
    /// (SmolLM2 shape, 16 × 4096, moa-50) 23.3–23.6 µs a layer against the scalar
    /// `Quad` form's 22.25 (RESULTS, "wgpu engine, session 16").
    pub decode_subgroup: Option<u8>,
    /// With [`Self::decode_subgroup`]: a timing diagnostic that only loads K and V as the
    /// subgroup decode does (wrong results; `MOA_WGSL_SG_DECODE=read`): with the work
    /// list's grid it took 16.5 µs a layer on the H200, 0.74 of the scalar decode's time.
    pub decode_sg_diag: bool,
    /// With [`Self::decode_subgroup`]: the pipelined decode on subgroups
    /// (`decode_sg_pipe.wgsl.j2`, `MOA_WGSL_SG_PIPE`) taking this many consecutive work
    /// items per workgroup; 0 (the default) keeps `decode_sg.wgsl.j2`. Its chain of
    /// dependent round trips is off the stream: a block's K/V address comes from the work
    /// item alone, so the first block is issued before the row position, the queries and
    /// the barrier; the next block's K/V go into the same registers as soon as this
    /// block's are used; the next item's words are read while this item streams and its
    /// first block issued at the end of this item's last (DESIGN §7.4). Slower on the
    /// H200 (1 item: 31.1 µs a layer against the default's 22.0, RESULTS "Session 16,
    /// call 3"): the driver keeps the early loads live, 236 registers against 96 for the
    /// unpipelined form (DESIGN §7.5). With [`Self::decode_sg_diag`] its loads-only twin.
    pub decode_sg_pipe: u8,
    /// With [`Self::decode_subgroup`] and no [`Self::decode_sg_pipe`]: the flat decode on
    /// subgroups (`decode_sg_flat.wgsl.j2`, `MOA_WGSL_SG_FLAT`; DESIGN §7.7): the
    /// queries loaded per lane into registers (no staging, no barrier before the
    /// steps), K read coalesced as V is (a lane holds 8 columns of several slots; a
    /// butterfly of shuffles sums the scores), steps of half a row's vectors a lane with
    /// V issued after the step's scores (80 registers on the H200 at head_dim 64, against
    /// 168 with a whole 32-slot block's K and V at once), and with [`SgFlat::Early`]
    /// each subgroup's first step's K issued from the work item before the row position.
    /// [`SgFlat::Off`] here (what `moa-compile` writes: it does not know the adapter's
    /// subgroup size); the wgpu engine's default is [`SgFlat::Late`] at the adapter's
    /// size (`runtime::wgpu_engine::options::engine_wgsl_tuning`): on the H200 through
    /// Vulkan (SmolLM2 shape, 16 × 4096, moa-50, the engine's step) 19.6–19.9 µs a layer
    /// against the scalar decode's 21.4–22.5, side by side (RESULTS "WGSL decode, session
    /// 19"). With [`Self::decode_sg_diag`] its loads-only twin.
    pub decode_sg_flat: SgFlat,
    /// With [`Self::decode_sg_flat`]: subgroups a workgroup (2, 4 or 8; 0, the default:
    /// [`DECODE_SG_FLAT_SUBGROUPS_GQA_HD64`] = 8 at head_dim ≤ 64 in a GQA group, else
    /// [`DECODE_SG_SUBGROUPS`] = 4; [`flat_subgroups`]). The template walks each chunk
    /// with all of them, so 8 halves the steps each subgroup takes in series (one K and
    /// one V round trip a step) and the workgroup has 256 invocations: 3 an SM at the
    /// form's 80 registers, which the work list's chunk model is told
    /// (`lower::consts::wgsl_decode_concurrent_workgroups_of`), so every layer's items
    /// fit one wave (`MOA_WGSL_SG_FLAT_SUBGROUPS`). Where a layer's workgroup would pass
    /// [`DECODE_WIDE_WORKGROUP_BYTES`] of partials or 256 invocations, the form keeps
    /// [`DECODE_SG_SUBGROUPS`]. On the H200 (SmolLM2 shape, 16 × 4096, the engine's
    /// step): 17.9–18.5 µs a layer against 19.5–19.6 with 4 in three pairs; with 8 but the
    /// chunk model's 4-workgroup residency 20.5–21.2 (a second wave; RESULTS "WGSL
    /// decode, session 20").
    pub decode_sg_flat_subgroups: u8,
    /// With [`Self::decode_sg_flat`], a register diagnostic (wrong results; the decode
    /// bench's `MOA_WGSL_SG_PIECE`): the body built only up to a piece, the rest of V
    /// folded into the accumulators as the loads-only twin does: 1 = Q·K partial scores,
    /// 2 = + the butterfly and masks, 3 = + the online softmax (every accumulator
    /// rescaled); 0 (the default) = the whole body.
    pub decode_sg_piece: u8,
    /// With [`Self::decode_sg_flat`], a timing diagnostic (wrong results; the decode
    /// bench's `MOA_WGSL_SG_NO_COMBINE=1`): each subgroup stores its own partial over the
    /// item's (the last store wins) instead of the subgroups' combine through workgroup
    /// memory behind the kernel's only barrier, so the time without the combine is read
    /// with every subgroup's work still live. Not with the fused merge (refused).
    pub decode_sg_no_combine: bool,
    /// With [`Self::decode_sg_flat`]: how Q·K is formed ([`FlatQk`]; `MOA_WGSL_SG_FLAT_QK`).
    /// [`FlatQk::F32`], the default, widens K and the pre-scaled f16 Q to f32 before the
    /// products: f32-accurate scores, but on the H200 119 registers at 8 subgroups (2
    /// workgroups of 256 an SM) against 80 for the f16 `dot` it replaced, which failed a
    /// parity test (RESULTS "Session 20, lead calls"). The other forms keep the scores
    /// within the parity test's bar at fewer registers, opt-in: on the H200 (SmolLM2
    /// moa-50, 8 subgroups) `h16` 108, `reload` 98, `h16-reload` **80**; `h16-reload` with
    /// the work list told 396 resident workgroups (3 an SM) took 18.72–19.32 µs a layer
    /// against the default's 18.26–18.67 in three pairs (RESULTS "WGSL decode, session
    /// 21"): the registers were not what held the form.
    pub decode_sg_flat_qk: FlatQk,
    /// With [`Self::decode_sg_flat`] and f16 storage: each lane's 8-element K and V vectors
    /// read as one 16-byte word (`vec4<u32>`) and unpacked to f32 by `unpack2x16float`
    /// (naga's `SHADER_FLOAT16_IN_FLOAT32`, which wgpu offers on Vulkan, Metal and DX12),
    /// instead of as `mat2x4<f16>` (a matrix of two 8-byte columns, which the driver may
    /// load as two 8-byte loads); the same bytes, the same f32 products
    /// (`MOA_WGSL_SG_FLAT_WORDS`; off in `moa-compile`'s default, on in the wgpu engine's
    /// since session 25: `engine_wgsl_tuning`). Ignored with f32 storage and with
    /// the f16 products of [`FlatQk::H16`] / [`FlatQk::H16Reload`] (they need K in f16).
    pub decode_sg_flat_words: bool,
    /// With [`Self::decode_sg_flat`]: each slot class's own running maxima
    /// (`MOA_WGSL_SG_FLAT_CMAX`). A lane's P·V sums only slots of its own class (the
    /// `sg / (head_dim / 8)` lanes of a class hold one slot's 8-column vectors), so the
    /// softmax's maximum need be shared only within the class: a step's maxima take
    /// log2(loads a lane) shuffles a head (2 at head_dim 64) instead of a `subgroupMax` over
    /// the subgroup (5 at subgroup 32), and the classes' maxima meet once an item, before the
    /// subgroup's sums (one `subgroupMax` and a rescale a head). The same softmax, other
    /// rounding. Off in `moa-compile`'s default; on in the wgpu engine's since session 26
    /// (`runtime::wgpu_engine::options::engine_wgsl_tuning`): on the H200 (SmolLM2 shape,
    /// 16 × 4096, moa-50, the engine's step) the attention 20.11–20.32 µs a layer against
    /// 20.80–21.26 and the device step −26..−35 µs in three pairs, 126 registers against
    /// 124, parity 0.0496 against 0.0517 (RESULTS "WGSL decode, session 26").
    pub decode_sg_flat_cmax: bool,
    /// With [`Self::decode_sg_flat`]: the loads a lane issues per step (1, 2, 4 or 8, at
    /// most head_dim / 8; 0, the default: half of head_dim / 8, at least 1;
    /// `MOA_WGSL_SG_FLAT_NL`). Fewer loads a step hold fewer K/V registers and partial
    /// scores, for more steps (each with its maxima, rescale and transposing butterfly
    /// levels) over the same slots (session 26; opt-in). On the H200 (SmolLM2 moa-50, 8
    /// subgroups, words, fused) 2 loads take 122 registers (115 with
    /// [`Self::decode_sg_flat_cmax`]) and 1 takes 106, against 124: still 2 workgroups of
    /// 256 an SM, so not timed in the step (RESULTS "WGSL decode, session 26"). With
    /// [`Self::decode_sg_flat_qpack`] 1 load takes 93, and 80 with the fused merger's batch at
    /// ≤ 4 chunks (session 29, deleted): told 396 resident (3 workgroups of 256 an SM) that
    /// form lost 4.8–5.1 µs a layer in four pairs, its item's chain of steps three times as
    /// long (RESULTS "WGSL decode, session 29").
    pub decode_sg_flat_nl: u8,
    /// With [`Self::decode_sg_flat`] and [`Self::decode_sg_flat_words`] (f16 storage,
    /// [`FlatQk::F32`]): each lane's pre-scaled queries held through the loop as packed f16
    /// words (`vec4<u32>` a head: 4 registers instead of 8 f32) and widened to f32 inside
    /// each step by `unpack2x16float`, the words' index tied to the step so the driver
    /// cannot hoist the widening out of the loop (`MOA_WGSL_SG_FLAT_QPACK=1`, session 28;
    /// opt-in). The same f16 values of Q and the same f32 products as the default: fewer
    /// registers held across the loop for 3 × 8 conversions and 12 `xor` a lane a step. On
    /// the H200 (SmolLM2 moa-50, 8 subgroups, fused merge, words, class maxima) 101
    /// registers against 126: still 2 workgroups of 256 an SM (3 need ≤ 80), so not timed
    /// in the step (RESULTS "WGSL decode, session 28"); the road to 80 registers it opened
    /// (with 1 load a step) lost in session 29. Ignored where the words do not apply and
    /// with [`FlatQk`]'s other forms.
    pub decode_sg_flat_qpack: bool,
}

/// How the flat decode forms its Q·K scores ([`WgslTuning::decode_sg_flat_qk`]). Every
/// form sums in f32; they differ in what is held in registers and where f16 rounds. The
/// forms other than [`FlatQk::F32`] keep Q as stored (not pre-scaled by scale · log2 e,
/// which rounds Q a second time in f16) and scale each finished score in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlatQk {
    /// K and the pre-scaled Q widened to f32 before the products (the default).
    #[default]
    F32,
    /// f16 products `k * q` (each rounded once to f16, relative error ≤ 2⁻¹¹, as Q's own
    /// f16 rounding), widened and summed in f32; Q held in f16 registers (f16 storage;
    /// with f32 storage the same as [`FlatQk::F32`] but for the scaling). A product past
    /// f16's 65504 (|k|·|q| that large) would be infinite.
    H16,
    /// Products and sums in f32 as [`FlatQk::F32`], Q re-read every step (one 16-byte
    /// load a head a lane, from L1) instead of held through the loop in registers.
    Reload,
    /// [`FlatQk::H16`]'s products with [`FlatQk::Reload`]'s queries.
    H16Reload,
}

impl FlatQk {
    /// The manifest's and `MOA_WGSL_SG_FLAT_QK`'s word for it.
    pub fn name(self) -> &'static str {
        match self {
            FlatQk::F32 => "f32",
            FlatQk::H16 => "h16",
            FlatQk::Reload => "reload",
            FlatQk::H16Reload => "h16-reload",
        }
    }

    /// The form named `name` ([`Self::name`]).
    pub fn parse(name: &str) -> Option<FlatQk> {
        [FlatQk::F32, FlatQk::H16, FlatQk::Reload, FlatQk::H16Reload]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// The flat decode on subgroups ([`WgslTuning::decode_sg_flat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SgFlat {
    /// `decode_sg.wgsl.j2` (or the pipelined form).
    #[default]
    Off,
    /// Flat, every step after the row position (bounded by the written slots); the wgpu
    /// engine's default.
    Late,
    /// Flat, each subgroup's first step's K issued before the row position (bounded by
    /// the chunk; the position then masks what is unwritten).
    Early,
}

impl SgFlat {
    /// The manifest's and the variable's word for it (`0`, `late`, `1`).
    pub fn name(self) -> &'static str {
        match self {
            SgFlat::Off => "0",
            SgFlat::Late => "late",
            SgFlat::Early => "1",
        }
    }
}

/// Subgroups per workgroup of the decode on subgroups ([`WgslTuning::decode_subgroup`]).
pub const DECODE_SG_SUBGROUPS: u32 = 4;

/// The flat decode's subgroups a workgroup where none is asked
/// ([`WgslTuning::decode_sg_flat_subgroups`] = 0) at head_dim ≤ 64 in a GQA group: with
/// the work list's chunk model told the residency it allows (2 workgroups of 256 an SM at
/// 119 registers with Q·K in f32, `lower::consts::WGSL_DECODE_CONCURRENT_WORKGROUPS_FLAT8_GQA_HD64`),
/// the H200's attention took 18.4–18.6 µs a layer against 18.9–19.2 with 4 (SmolLM2-135M's
/// shape, 16 × 4096, two pairs; RESULTS "Session 20, lead calls"; with Q·K in f16 at 80
/// registers and 396, 17.9–18.5 against 19.5–19.6, "WGSL decode, session 20"). Other shapes keep
/// [`DECODE_SG_SUBGROUPS`] (not measured).
pub const DECODE_SG_FLAT_SUBGROUPS_GQA_HD64: u32 = 8;

/// Subgroups a workgroup of the flat decode gets for the asked count `asked`
/// ([`WgslTuning::decode_sg_flat_subgroups`]; 0 = [`DECODE_SG_FLAT_SUBGROUPS_GQA_HD64`] at
/// head_dim ≤ 64 in a GQA group, else [`DECODE_SG_SUBGROUPS`]) at subgroup size `sg`,
/// GQA group `group_size` and `head_dim`: that count where the workgroup stays within 256
/// invocations and its partials (`subgroups × group × (head_dim + 2)` f32) within
/// [`DECODE_WIDE_WORKGROUP_BYTES`], else [`DECODE_SG_SUBGROUPS`].
pub fn flat_subgroups(asked: u8, sg: u32, group_size: u32, head_dim: u32) -> u32 {
    let want = match asked {
        0 if group_size > 1 && head_dim <= 64 => DECODE_SG_FLAT_SUBGROUPS_GQA_HD64,
        0 => DECODE_SG_SUBGROUPS,
        n => u32::from(n),
    };
    let bytes = want * group_size * (head_dim + 2) * 4;
    if want * sg <= 256 && bytes <= DECODE_WIDE_WORKGROUP_BYTES {
        want
    } else {
        DECODE_SG_SUBGROUPS
    }
}

/// Work items a workgroup of the pipelined decode on subgroups takes at most
/// ([`WgslTuning::decode_sg_pipe`]; more leave most of the work list's workgroups empty).
pub const DECODE_SG_MAX_ITEMS: u32 = 8;

/// Whether the decode on subgroups fits a layer: 8-element rows (head_dim a multiple of
/// 8) spread over whole lanes of a subgroup of `sg` (a power of two from 8 to 64, as the
/// engine's subgroup products take), head_dim / 8 dividing it, and a GQA group of at most
/// 8 (every head's state is unrolled into registers).
pub fn decode_sg_fits(sg: u32, group_size: u32, head_dim: u32) -> bool {
    let dv8 = head_dim / 8;
    sg.is_power_of_two()
        && (8..=64).contains(&sg)
        && head_dim.is_multiple_of(8)
        && dv8 >= 1
        && sg.is_multiple_of(dv8)
        && (1..=8).contains(&group_size)
}

/// The bits of an empty partial word of the fused merge ([`WgslTuning::decode_fused_merge`];
/// the template's `MOA_EMPTY`): a NaN that no arithmetic produces.
pub const DECODE_PARTIAL_EMPTY: u32 = 0xffba_dbad;

/// Workgroup bytes the fused merge adds to the decode (`moa_last`, which item merges).
pub const DECODE_FUSED_WORKGROUP_BYTES: u32 = 4;

/// Chunks whose partials a fused merger ([`WgslTuning::decode_fused_merge`]) loads at
/// once before combining them.
pub const DECODE_MERGE_BATCH: u32 = 8;

/// The lazy margin (log2 units) with f16 P·V ([`WgslTuning::decode_f16_pv`]): p ≤ 2⁴, so
/// a tile's f16 sum of 16 slots stays below f16's largest finite value while |v| < 256.
pub const DECODE_F16_PV_MARGIN: u32 = 4;

/// Workgroup memory a decode with more than [`WGSL_DECODE_THREADS`] invocations may use
/// ([`WgslTuning::decode_threads`]): GPUs offer 32 KiB or more (the H200 through Vulkan
/// 48 KiB); the check against WebGPU's default 16 KiB does not apply to it.
pub const DECODE_WIDE_WORKGROUP_BYTES: u32 = 32 * 1024;

impl Default for WgslTuning {
    fn default() -> Self {
        WgslTuning {
            coop_prefetch: true,
            decode_form: DecodeForm::Quad,
            decode_lazy_margin: 8,
            decode_early_v: None,
            decode_paired_epilogue: true,
            decode_load_batch: DECODE_LOAD_BATCH,
            decode_narrow_loads: false,
            decode_threads: WGSL_DECODE_THREADS,
            decode_quad_shuffle: false,
            decode_f16_qk: true,
            decode_f16_pv: None,
            decode_qk_sums: false,
            decode_fused_merge: None,
            decode_v_first: false,
            decode_subgroup: None,
            decode_sg_diag: false,
            decode_sg_pipe: 0,
            decode_sg_flat: SgFlat::Off,
            decode_sg_piece: 0,
            decode_sg_no_combine: false,
            decode_sg_flat_subgroups: 0,
            decode_sg_flat_qk: FlatQk::F32,
            decode_sg_flat_words: false,
            decode_sg_flat_cmax: false,
            decode_sg_flat_nl: 0,
            decode_sg_flat_qpack: false,
        }
    }
}

/// How the scalar decode takes each tile's softmax maximum and its Q·K (DESIGN §6).
/// Every form computes the same softmax; they differ in barriers, workgroup atomics and
/// how K is read. A layer where a form does not apply (a looped GQA group for `Lazy`; no
/// staged queries, a tile other than the workgroup or no room for the partials for
/// `Quad`) gets the next simpler one; the manifest records the form each layer got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeForm {
    /// Exact tile maxima every tile: a workgroup `atomicMax` per (slot, head) and two
    /// barriers per tile.
    Eager,
    /// Exact maxima on a chunk's first tile only; later tiles keep the running reference
    /// unless a score passes it by more than 2^8, so one barrier per tile and rare atomics.
    Lazy,
    /// `Lazy`, with Q·K read by four invocations per slot (64 contiguous bytes of a row
    /// per load instead of 16) and summed through workgroup memory (one more barrier).
    /// The default: 1.26× (Llama-3-8B) and 1.45× (Vicuna-7B) the eager form's speed on
    /// the H200 (RESULTS, WGSL decode session 9).
    Quad,
}

impl DecodeForm {
    /// The form's name in the manifest and in `MOA_WGSL_DECODE_FORM`.
    pub fn name(self) -> &'static str {
        match self {
            DecodeForm::Eager => "eager",
            DecodeForm::Lazy => "lazy",
            DecodeForm::Quad => "quad",
        }
    }

    /// Parses [`DecodeForm::name`]; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [DecodeForm::Eager, DecodeForm::Lazy, DecodeForm::Quad]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// The form a layer's scalar decode gets for `wanted` (see [`DecodeForm`]): `Lazy` needs
/// the group's heads unrolled; `Quad` also needs staged queries, a tile of one slot per
/// invocation, whole rows of four-vector parts and room for the partial dot products.
pub fn decode_form_for(
    wanted: DecodeForm,
    shape: &DecodeShape,
    group_size: u32,
    head_dim: u32,
) -> DecodeForm {
    decode_form_within(
        wanted,
        shape,
        group_size,
        head_dim,
        WGSL_WORKGROUP_STORAGE_BYTES,
    )
}

/// [`decode_form_for`] within `budget` bytes of workgroup memory.
pub fn decode_form_within(
    wanted: DecodeForm,
    shape: &DecodeShape,
    group_size: u32,
    head_dim: u32,
    budget: u32,
) -> DecodeForm {
    if wanted == DecodeForm::Eager || group_size > DECODE_UNROLLED_GROUP {
        return DecodeForm::Eager;
    }
    let dv = head_dim / shape.kv_vec;
    let quad_fits = shape.stage_q
        && shape.tile == shape.threads
        && dv.is_multiple_of(4)
        && shape.threads.is_multiple_of(4)
        && decode_workgroup_bytes(shape, DecodeForm::Quad, group_size, head_dim) <= budget;
    if wanted == DecodeForm::Quad && quad_fits {
        DecodeForm::Quad
    } else {
        DecodeForm::Lazy
    }
}

/// Workgroup bytes of the scalar decode in `form`: the shape's, plus a third buffer of
/// tile maxima (`Lazy`, `Quad`) and the partial dot products, `group × tile` vec4 of f32
/// (`Quad`).
pub fn decode_workgroup_bytes(
    shape: &DecodeShape,
    form: DecodeForm,
    group_size: u32,
    head_dim: u32,
) -> u32 {
    shape.workgroup_bytes(group_size, head_dim)
        + match form {
            DecodeForm::Eager => 0,
            DecodeForm::Lazy => 4 * group_size,
            DecodeForm::Quad => 4 * group_size + 16 * group_size * shape.tile,
        }
}

/// [`decode_workgroup_bytes`] with the `Quad` form's options that change it: queries
/// staged as f16 ([`WgslTuning::decode_f16_qk`]: half the staging bytes) and the sums of
/// p by the Q·K invocations ([`WgslTuning::decode_qk_sums`]: one sum per 8 slots and head,
/// not one per slot group and head). Without them, the same.
pub fn decode_workgroup_bytes_with(
    shape: &DecodeShape,
    form: DecodeForm,
    group_size: u32,
    head_dim: u32,
    f16_qk: bool,
    qk_sums: bool,
) -> u32 {
    let quad = form == DecodeForm::Quad;
    let mut bytes = decode_workgroup_bytes(shape, form, group_size, head_dim);
    if quad && f16_qk && shape.stage_q {
        bytes -= 2 * group_size * head_dim;
    }
    if quad && qk_sums {
        bytes = bytes - 4 * shape.slot_groups * group_size + 4 * (shape.threads / 8) * group_size;
    }
    bytes
}

#[derive(Serialize)]
struct MergeCtx<'a> {
    storage: &'a str,
    head_dim: u32,
    q_heads: u32,
    kv_heads: u32,
    threads: u32,
    entry_point: &'a str,
}

/// The constants every per-layer kernel bakes in, as recorded in the manifest.
fn layer_constants(ctx: &LayerCtx) -> serde_json::Value {
    json!({
        "head_dim": ctx.head_dim,
        "q_heads": ctx.q_heads,
        "kv_heads": ctx.kv_heads,
        "group_size": ctx.group_size,
        "scale": ctx.scale,
        "sink_tokens": ctx.sink_tokens,
        "min_span_tokens": ctx.min_span_tokens,
        "span_round_tokens": ctx.span_round_tokens,
        "span_mode": ctx.span_mode,
        "beta_den": ctx.beta_den,
        "heads": ctx.heads.iter().map(|h| json!({
            "q_head": h.q_head,
            "kv_head": h.kv_head,
            "alpha": h.alpha,
            "beta_num": h.beta_num,
        })).collect::<Vec<_>>(),
    })
}

/// `constants` with the f16-product and Q·K-sum choices of a decode added where one is
/// on (so manifests without them do not change).
fn with_f16_products(
    constants: serde_json::Value,
    f16_qk: bool,
    f16_pv: bool,
    lazy_margin: u32,
    qk_sums: bool,
) -> serde_json::Value {
    let c = if f16_qk || f16_pv {
        merge_json(
            constants,
            json!({
                "decode_f16_qk": f16_qk,
                "decode_f16_pv": f16_pv,
                "decode_lazy_margin": lazy_margin,
            }),
        )
    } else {
        constants
    };
    if qk_sums {
        merge_json(c, json!({ "decode_qk_sums": true }))
    } else {
        c
    }
}

/// `constants` with the fused merge and early-V-at-tile-start choices added where on (so
/// manifests without them do not change).
fn with_decode_flags(
    constants: serde_json::Value,
    fused: bool,
    v_first: bool,
) -> serde_json::Value {
    let mut extra = serde_json::Map::new();
    if fused {
        extra.insert("decode_fused_merge".into(), true.into());
    }
    if v_first {
        extra.insert("decode_v_first".into(), true.into());
    }
    merge_json(constants, serde_json::Value::Object(extra))
}

fn merge_json(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// Parses and validates one generated module; a failure is a compiler bug and names
/// the layer and template. Returns the bytes of workgroup memory the module declares (every
/// `var<workgroup>`, sized by naga's layouter), which the generator records in
/// [`Artifact::workgroup_bytes`] so that the limits check does not parse the file again.
pub fn validate(source: &str, template: &str, layer: Option<u32>) -> Result<u64, CodegenError> {
    // Only f16 beyond WebGPU core: the kernels must run wherever wgpu offers SHADER_F16.
    validate_with(
        source,
        template,
        layer,
        naga::valid::Capabilities::SHADER_FLOAT16,
    )
}

/// [`validate`] with the capabilities the kernel may use (the decode on cooperative
/// matrices adds `COOPERATIVE_MATRIX`).
pub fn validate_with(
    source: &str,
    template: &str,
    layer: Option<u32>,
    capabilities: naga::valid::Capabilities,
) -> Result<u64, CodegenError> {
    let invalid = |message: String| CodegenError::InvalidWgsl {
        template: template.to_string(),
        layer,
        message,
    };
    let module =
        naga::front::wgsl::parse_str(source).map_err(|e| invalid(e.emit_to_string(source)))?;
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities);
    if capabilities.contains(naga::valid::Capabilities::SUBGROUP) {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    validator
        .validate(&module)
        .map_err(|e| invalid(e.emit_to_string(source)))?;
    super::limits::workgroup_bytes(&module).map_err(invalid)
}

/// Every WGSL file of `module` in the default [`WgslTuning`]: per layer a prefill and a
/// decode file, then a decode on cooperative matrices per layer where the storage, GQA
/// group and head_dim fit it, then one merge file; each validated with naga. Not checked against resource limits here
/// ([`super::generate`] does). Errors: [`CodegenError::Unsupported`] for bf16 storage
/// or a head_dim / GQA group the decode cannot hold in workgroup memory,
/// [`CodegenError::Render`] and [`CodegenError::InvalidWgsl`] (compiler bugs).
pub fn generate(module: &KernelModule) -> Result<Vec<Artifact>, CodegenError> {
    generate_with(module, WgslTuning::default())
}

/// [`generate`] with the speed choices of `tuning`.
pub fn generate_with(
    module: &KernelModule,
    tuning: WgslTuning,
) -> Result<Vec<Artifact>, CodegenError> {
    generate_with_progress(module, tuning, &mut |_, _| {})
}

/// [`generate_with`], calling `progress(files_done, files)` as the source files are
/// generated (each rendered and validated with naga, ≈ 0.2 s per layer for 64 query heads
/// of head_dim 128 on one CPU core), `files_done` rising to `files` (the last call).
///
/// The layers are generated on every core: the module is cut into runs of consecutive
/// layers, each run is generated alone ([`generate_part`]: its layers' prefill and decode
/// files, its cooperative decode files, then the merge file, which depends on the shape
/// only), and the runs' files are put back in [`generate_part`]'s order for the whole
/// module: every layer's prefill and decode files, every cooperative decode file, one
/// merge file. A layer's files depend on nothing but the shape, the span parameters and
/// that layer, so the output is byte for byte the one-thread output
/// (`tests/snapshots.rs`). On an error the first failing run's first error is returned.
pub(crate) fn generate_with_progress(
    module: &KernelModule,
    tuning: WgslTuning,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Artifact>, CodegenError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 || module.layers.len() < 2 {
        return generate_part(module, tuning, progress);
    }
    // Four runs a core, so a core whose runs hold larger layers does not form a tail.
    let per = module.layers.len().div_ceil(threads * 4).max(1);
    let parts: Vec<KernelModule> = module
        .layers
        .chunks(per)
        .map(|layers| KernelModule {
            shape: module.shape.clone(),
            span: module.span,
            storage: module.storage,
            layers: layers.to_vec(),
        })
        .collect();
    let coop = decode_coop_fits(
        module.storage,
        module.shape.group_size(),
        module.shape.head_dim,
    );
    let per_layer = 2 + usize::from(coop);
    let files = module.layers.len() * per_layer + 1;
    // Workers send (run, files of the run done) on a channel; this thread adds them up and
    // reports the sum, which only rises.
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let runs = parts.len();
    let results: Vec<Result<Vec<Artifact>, CodegenError>> = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            use rayon::prelude::*;
            parts
                .par_iter()
                .enumerate()
                .map_with(tx, |tx, (run, part)| {
                    // The run's own merge file is dropped below: not counted.
                    let own = part.layers.len() * per_layer;
                    generate_part(part, tuning, &mut |done, _| {
                        let _ = tx.send((run, done.min(own)));
                    })
                })
                .collect()
        });
        let mut done = vec![0; runs];
        progress(0, files);
        for (run, d) in rx.iter() {
            done[run] = d;
            progress(done.iter().sum::<usize>().min(files - 1), files);
        }
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let mut pairs = Vec::with_capacity(files);
    let mut coops = Vec::new();
    let mut merge = None;
    for r in results {
        let mut part = r?;
        merge = part.pop();
        let pd = part.len() - part.len() / per_layer * usize::from(coop);
        coops.extend(part.drain(pd..));
        pairs.append(&mut part);
    }
    pairs.append(&mut coops);
    pairs.extend(merge);
    debug_assert_eq!(
        pairs.len(),
        files,
        "the WGSL file count of the whole module"
    );
    progress(pairs.len(), pairs.len());
    Ok(pairs)
}

/// The files of `module`'s layers, one thread: each layer's prefill and decode files,
/// then each layer's cooperative decode file where it fits, then the merge file; calling
/// `progress(files_done, files)` before each layer's prefill and decode files, after each
/// cooperative decode file and after the merge file (`files_done == files`).
fn generate_part(
    module: &KernelModule,
    tuning: WgslTuning,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Artifact>, CodegenError> {
    if module.storage == StorageType::Bf16 {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: "bf16 storage: WGSL has no bf16 type (use f16 or f32, or --target cuda)"
                .into(),
        });
    }
    if tuning.decode_sg_no_combine && tuning.decode_fused_merge.unwrap_or(false) {
        return Err(CodegenError::Unsupported {
            target: "wgsl",
            message: "decode_sg_no_combine (a timing diagnostic) with the fused merge: the \
                      merger would read partials no single store wrote"
                .into(),
        });
    }
    let env = super::environment(TEMPLATES)?;
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    let hq = module.shape.q_heads;
    let hkv = module.shape.kv_heads;
    let group = module.shape.group_size();
    let coop = decode_coop_fits(module.storage, group, d);
    // Per layer a prefill and a decode file (and a cooperative decode where it fits), then
    // the merge shared by all layers.
    let files = module.layers.len() * (2 + usize::from(coop)) + 1;
    let mut artifacts = Vec::with_capacity(files);

    let e = Elem::of(module.storage);
    let qkv = |first: u32, q_rows: &str, k: Arg, v: Arg, kv_shape: [&str; 3]| {
        vec![
            Param::buffer(
                first,
                Arg::Q,
                Access::Read,
                e,
                &[q_rows, "q_heads", "head_dim"],
            ),
            Param::buffer(first + 1, k, Access::Read, e, &kv_shape),
            Param::buffer(first + 2, v, Access::Read, e, &kv_shape),
        ]
    };

    for layer in &module.layers {
        // Here, not at the loop's end: the subgroup decode's branch `continue`s.
        progress(artifacts.len(), files);
        let ctx = LayerCtx::new(module, layer);
        let label = &ctx.layer_label;
        let base_constants = layer_constants(&ctx);

        let entry = format!("moa_prefill_{dtype}_hd{d}_{label}");
        let k_tile = prefill_k_tile(d);
        let source = super::render(
            &env,
            PREFILL,
            Some(layer.layer),
            &PrefillCtx {
                layer: &ctx,
                entry_point: &entry,
                q_tile: WGSL_PREFILL_Q_TILE,
                k_tile,
            },
        )?;
        let workgroup_bytes = validate(&source, PREFILL, Some(layer.layer))?;
        let mut params = vec![
            Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::Pad, Arg::Pad]),
            Param::buffer(1, Arg::RowStart, Access::Read, Elem::U32, &["rows + 1"]),
        ];
        params.extend(qkv(
            2,
            "total_tokens",
            Arg::K,
            Arg::V,
            ["total_tokens", "kv_heads", "head_dim"],
        ));
        params.push(Param::buffer(
            5,
            Arg::Out,
            Access::ReadWrite,
            e,
            &["total_tokens", "q_heads", "head_dim"],
        ));
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_prefill.wgsl"),
            source,
            workgroup_bytes: Some(workgroup_bytes),
            kernels: vec![KernelInfo::new(
                Target::Wgsl,
                Phase::Prefill,
                Some(layer.layer),
                entry,
                KernelAbi::new(
                    params,
                    [WGSL_PREFILL_Q_TILE, 1, 1],
                    Grid::QueryTiles {
                        q_tile: WGSL_PREFILL_Q_TILE,
                    },
                    Tiles {
                        q_tile: Some(WGSL_PREFILL_Q_TILE),
                        k_tile: Some(k_tile),
                        ..Tiles::default()
                    },
                ),
                base_constants.clone(),
            )],
        });

        let entry = format!("moa_decode_{dtype}_hd{d}_{label}");
        let threads = tuning.decode_threads.clamp(32, 256);
        let budget = if threads > WGSL_DECODE_THREADS {
            DECODE_WIDE_WORKGROUP_BYTES
        } else {
            WGSL_WORKGROUP_STORAGE_BYTES
        };
        let shape = decode_shape_sized(
            module.storage,
            group,
            d,
            !tuning.decode_narrow_loads,
            threads,
            budget,
        )?;
        // Off unless asked for: it lost in the engine's step (`decode_fused_merge`).
        let fused = tuning.decode_fused_merge.unwrap_or(false);
        // The decode on subgroups where asked and the layer fits it (with the fused merge
        // only in the flat form, which has one; the other subgroup forms leave it to the
        // scalar form): same work list (the scalar tile), partials and merge.
        let sg_fuses = tuning.decode_sg_flat != SgFlat::Off && tuning.decode_sg_pipe == 0;
        if let Some(sg) = tuning
            .decode_subgroup
            .map(u32::from)
            .filter(|&sg| (!fused || sg_fuses) && decode_sg_fits(sg, group, d))
        {
            artifacts.push(decode_sg_artifact(
                module,
                &ctx,
                &env,
                sg,
                &tuning,
                shape.tile,
                base_constants,
            )?);
            continue;
        }
        // The fused merge's one workgroup word (which item merges) comes off the budget.
        let budget = budget
            - if fused {
                DECODE_FUSED_WORKGROUP_BYTES
            } else {
                0
            };
        let form = decode_form_within(tuning.decode_form, &shape, group, d, budget);
        let batch = tuning.decode_load_batch.clamp(1, 64);
        // Early V loads need a lazy form and all of a tile's V loads in one batch.
        let early_v = form != DecodeForm::Eager
            && tuning.decode_early_v.unwrap_or(group > 1)
            && shape.tile.div_ceil(shape.slot_groups) <= batch;
        let quad = form == DecodeForm::Quad;
        // Heads whose accumulators (threads × kv_vec / 4 vec4 each) fit the partials'
        // buffer (group × tile vec4) at once.
        let epi_heads = if quad {
            group * shape.tile / (shape.threads * shape.kv_vec / 4)
        } else {
            0
        };
        let paired_epilogue = quad && tuning.decode_paired_epilogue && epi_heads >= 1;
        let half = quad && module.storage == StorageType::F16;
        let (f16_qk, f16_pv) = (
            half && tuning.decode_f16_qk,
            half && tuning.decode_f16_pv.unwrap_or(group > 1),
        );
        // The Q·K invocations' sums of p where the paired end-of-chunk sums run and their
        // per-8-slot sums fit the budget (with f32 queries they may not).
        let qk_sums = paired_epilogue
            && tuning.decode_qk_sums
            && decode_workgroup_bytes_with(&shape, form, group, d, f16_qk, true) <= budget;
        let lazy_margin = if f16_pv {
            tuning.decode_lazy_margin.min(DECODE_F16_PV_MARGIN)
        } else {
            tuning.decode_lazy_margin.min(64)
        };
        // V loads at the tile's start need its K loads and its V loads each in one batch.
        let v_first = quad
            && tuning.decode_v_first
            && shape.tile.div_ceil(shape.slot_groups) <= batch
            && (shape.tile / (shape.threads / 4)) * (d / shape.kv_vec / 4) <= batch;
        let kv_type = match (module.storage, shape.kv_vec) {
            (StorageType::F16, 8) => "mat2x4<f16>",
            (StorageType::F16, _) => "vec4<f16>",
            _ => "vec4<f32>",
        };
        let source = super::render(
            &env,
            DECODE,
            Some(layer.layer),
            &DecodeCtx {
                layer: &ctx,
                entry_point: &entry,
                tile: shape.tile,
                threads: shape.threads,
                kv_vec: shape.kv_vec,
                kv_type,
                slot_groups: shape.slot_groups,
                p_len: shape.p_len,
                stage_q: shape.stage_q,
                batch,
                quad_shuffle: quad && tuning.decode_quad_shuffle,
                f16_qk,
                f16_pv,
                qk_sums,
                unroll_heads: group <= DECODE_UNROLLED_GROUP,
                head_ids: if group <= DECODE_UNROLLED_GROUP {
                    (0..group).map(|g| format!("{g}u")).collect()
                } else {
                    vec!["g".into()]
                },
                lazy: form != DecodeForm::Eager,
                quad: form == DecodeForm::Quad,
                lazy_margin,
                early_v,
                paired_epilogue,
                epi_heads: epi_heads.max(1),
                fused,
                merge_batch: DECODE_MERGE_BATCH,
                v_first,
            },
        )?;
        let workgroup_bytes = if quad && tuning.decode_quad_shuffle {
            validate_with(
                &source,
                DECODE,
                Some(layer.layer),
                naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::SUBGROUP,
            )?
        } else {
            validate(&source, DECODE, Some(layer.layer))?
        };
        let mut params = decode_params(e);
        if fused {
            params.extend(fused_merge_params(e));
        }
        artifacts.push(Artifact {
            path: format!("wgsl/{label}_decode.wgsl"),
            source,
            workgroup_bytes: Some(workgroup_bytes),
            kernels: vec![KernelInfo::new(
                Target::Wgsl,
                Phase::Decode,
                Some(layer.layer),
                entry,
                KernelAbi::new(
                    params,
                    [shape.threads, 1, 1],
                    Grid::WorkItems,
                    Tiles {
                        k_tile: Some(shape.tile),
                        ..Tiles::default()
                    },
                ),
                with_decode_flags(
                    with_f16_products(
                        merge_json(
                            base_constants,
                            if quad && tuning.decode_quad_shuffle {
                                // Recorded only where on, so default manifests do not change.
                                json!({
                                    "stage_q": shape.stage_q,
                                    "kv_vec": shape.kv_vec,
                                    "decode_form": form.name(),
                                    "decode_early_v": early_v,
                                    "decode_paired_epilogue": paired_epilogue,
                                    "decode_quad_shuffle": true,
                                })
                            } else if form == DecodeForm::Eager {
                                json!({ "stage_q": shape.stage_q, "kv_vec": shape.kv_vec })
                            } else {
                                json!({
                                    "stage_q": shape.stage_q,
                                    "kv_vec": shape.kv_vec,
                                    "decode_form": form.name(),
                                    "decode_early_v": early_v,
                                    "decode_paired_epilogue": paired_epilogue,
                                })
                            },
                        ),
                        f16_qk,
                        f16_pv,
                        lazy_margin,
                        qk_sums,
                    ),
                    fused,
                    v_first,
                ),
            )],
        });
    }

    if coop {
        for layer in &module.layers {
            artifacts.push(decode_coop_artifact(module, layer, &env, tuning)?);
            progress(artifacts.len(), files);
        }
    }

    let entry = format!("moa_decode_merge_{dtype}_hd{d}");
    let source = super::render(
        &env,
        MERGE,
        None,
        &MergeCtx {
            storage: dtype,
            head_dim: d,
            q_heads: hq,
            kv_heads: hkv,
            threads: WGSL_DECODE_THREADS,
            entry_point: &entry,
        },
    )?;
    let workgroup_bytes = validate(&source, MERGE, None)?;
    artifacts.push(Artifact {
        path: "wgsl/decode_merge.wgsl".into(),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![KernelInfo::new(
            Target::Wgsl,
            Phase::DecodeMerge,
            None,
            entry,
            KernelAbi::new(
                vec![
                    Param::uniform(0, &[Arg::Rows, Arg::NItems, Arg::Pad, Arg::Pad]),
                    work_param(1),
                    Param::buffer(
                        2,
                        Arg::Partials,
                        Access::Read,
                        Elem::F32,
                        &["n_items", "group_size", "head_dim + 2"],
                    ),
                    Param::buffer(
                        3,
                        Arg::Out,
                        Access::ReadWrite,
                        e,
                        &["rows", "q_heads", "head_dim"],
                    ),
                ],
                [WGSL_DECODE_THREADS, 1, 1],
                Grid::QueryHeads,
                Tiles::default(),
            ),
            json!({
                "head_dim": d,
                "q_heads": hq,
                "kv_heads": hkv,
            }),
        )],
    });
    debug_assert_eq!(
        artifacts.len(),
        files,
        "the WGSL file count announced to progress"
    );
    progress(artifacts.len(), artifacts.len());
    Ok(artifacts)
}

/// The decode of one layer on subgroups (`decode_sg.wgsl.j2`; [`WgslTuning::decode_subgroup`]):
/// the scalar decode's bindings, partials and work list (chunks of `tile` slots, the
/// scalar form's, so both run the same grid), `DECODE_SG_SUBGROUPS × sg` invocations.
fn decode_sg_artifact(
    module: &KernelModule,
    ctx: &LayerCtx,
    env: &minijinja::Environment<'_>,
    sg: u32,
    tuning: &WgslTuning,
    tile: u32,
    base_constants: serde_json::Value,
) -> Result<Artifact, CodegenError> {
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    let label = &ctx.layer_label;
    let layer = ctx.layer;
    let entry = format!("moa_decode_sg_{dtype}_hd{d}_{label}");
    let xor_masks: Vec<u32> = std::iter::successors(Some(d / 8), |m| Some(m * 2))
        .take_while(|&m| m < sg)
        .collect();
    // The pipelined form where asked ([`WgslTuning::decode_sg_pipe`]), at most
    // [`DECODE_SG_MAX_ITEMS`] items a workgroup.
    let diag = tuning.decode_sg_diag;
    let items = u32::from(tuning.decode_sg_pipe).min(DECODE_SG_MAX_ITEMS);
    // The pipelined form where asked, else the flat form where asked
    // ([`WgslTuning::decode_sg_flat`]), else the plain one.
    let flat = if items > 0 {
        SgFlat::Off
    } else {
        tuning.decode_sg_flat
    };
    // The flat form merges its segments itself where asked (the caller keeps the scalar
    // form for the other subgroup forms when the merge is fused).
    let fused = flat != SgFlat::Off && tuning.decode_fused_merge.unwrap_or(false);
    let template = match (items > 0, flat) {
        (true, _) => DECODE_SG_PIPE,
        (false, SgFlat::Off) => DECODE_SG,
        (false, _) => DECODE_SG_FLAT,
    };
    // The flat form's loads a lane per step: half a row's vectors, so a step's K (and
    // then its V, issued after the scores into the same registers) stays within the
    // registers that keep 4 workgroups an SM (DESIGN §7.7).
    let dv8 = (d / 8).max(1);
    let nl = match tuning.decode_sg_flat_nl {
        0 => (dv8 / 2).max(1),
        // (A power of two: the butterfly halves it.)
        n => (1u32 << u32::from(n).ilog2()).min(dv8),
    };
    let cmax = flat != SgFlat::Off && tuning.decode_sg_flat_cmax;
    let cmax_masks: Vec<u32> = std::iter::successors(Some(1), |m| Some(m * 2))
        .take_while(|&m| m < nl)
        .collect();
    let sum_masks: Vec<u32> = std::iter::successors(Some(nl), |m| Some(m * 2))
        .take_while(|&m| m < dv8)
        .collect();
    // K and V read as 16-byte words where asked and it applies (f16 storage, f32 products).
    let words = flat != SgFlat::Off
        && tuning.decode_sg_flat_words
        && module.storage == StorageType::F16
        && !matches!(tuning.decode_sg_flat_qk, FlatQk::H16 | FlatQk::H16Reload);
    // Q held as packed f16 words where asked and it applies (the words' f32 products).
    let qpack = words
        && tuning.decode_sg_flat_qpack
        && tuning.decode_sg_flat_qk == FlatQk::F32
        && !tuning.decode_sg_diag
        && tuning.decode_sg_piece == 0;
    let subgroups = if flat == SgFlat::Off {
        DECODE_SG_SUBGROUPS
    } else {
        flat_subgroups(tuning.decode_sg_flat_subgroups, sg, ctx.group_size, d)
    };
    let source = super::render(
        env,
        template,
        Some(layer),
        &DecodeSgCtx {
            layer: ctx,
            entry_point: &entry,
            sg,
            subgroups,
            xor_masks,
            diag,
            items,
            early: flat == SgFlat::Early,
            log_dv8: dv8.ilog2(),
            nl,
            log_nl: nl.ilog2(),
            sum_masks,
            piece: tuning.decode_sg_piece,
            no_combine: tuning.decode_sg_no_combine,
            qk: tuning.decode_sg_flat_qk.name(),
            words,
            fused,
            merge_batch: DECODE_MERGE_BATCH,
            cmax,
            cmax_masks,
            qpack,
        },
    )?;
    let workgroup_bytes = validate_with(
        &source,
        template,
        Some(layer),
        naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SUBGROUP
            | if words {
                // unpack2x16float.
                naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
            } else {
                naga::valid::Capabilities::empty()
            },
    )?;
    let e = Elem::of(module.storage);
    let mut params = decode_params(e);
    if fused {
        params.extend(fused_merge_params(e));
    }
    let mut extra = json!({ "decode_form": "subgroup", "decode_subgroup": sg });
    if fused {
        extra["decode_fused_merge"] = true.into();
    }
    if diag {
        extra["decode_sg_diag"] = true.into();
    }
    if items > 0 {
        extra["decode_sg_items"] = items.into();
    }
    if flat != SgFlat::Off {
        extra["decode_sg_flat"] = flat.name().into();
        if tuning.decode_sg_piece > 0 {
            extra["decode_sg_piece"] = tuning.decode_sg_piece.into();
        }
        if tuning.decode_sg_no_combine {
            extra["decode_sg_no_combine"] = true.into();
        }
        if subgroups != DECODE_SG_SUBGROUPS {
            extra["decode_sg_flat_subgroups"] = subgroups.into();
        }
        if tuning.decode_sg_flat_qk != FlatQk::F32 {
            extra["decode_sg_flat_qk"] = tuning.decode_sg_flat_qk.name().into();
        }
        if words {
            extra["decode_sg_flat_words"] = true.into();
        }
        if cmax {
            extra["decode_sg_flat_cmax"] = true.into();
        }
        if qpack {
            extra["decode_sg_flat_qpack"] = true.into();
        }
        if tuning.decode_sg_flat_nl != 0 {
            extra["decode_sg_flat_nl"] = nl.into();
        }
    }
    Ok(Artifact {
        path: format!("wgsl/{label}_decode.wgsl"),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![KernelInfo::new(
            Target::Wgsl,
            Phase::Decode,
            Some(layer),
            entry,
            KernelAbi::new(
                params,
                [subgroups * sg, 1, 1],
                Grid::WorkItems,
                Tiles {
                    k_tile: Some(tile),
                    ..Tiles::default()
                },
            ),
            merge_json(base_constants, extra),
        )],
    })
}

/// The decode of one layer on cooperative matrices (`decode_coop.wgsl.j2`; DESIGN §6):
/// the scalar decode's bindings, partials and work list, in its own module (the
/// `enable wgpu_cooperative_matrix` would stop the layer's other kernels from compiling
/// on adapters without it). The executor picks it where the adapter has the matrices.
fn decode_coop_artifact(
    module: &KernelModule,
    layer: &crate::lower::LayerSpec,
    env: &minijinja::Environment<'_>,
    tuning: WgslTuning,
) -> Result<Artifact, CodegenError> {
    let ctx = LayerCtx::new(module, layer);
    let label = &ctx.layer_label;
    let d = module.shape.head_dim;
    let dtype = module.storage.name();
    let entry = format!("moa_decode_coop_{dtype}_hd{d}_{label}");
    let template = DECODE_COOP;
    let source = super::render(
        env,
        template,
        Some(layer.layer),
        &DecodeCoopCtx {
            layer: &ctx,
            entry_point: &entry,
            tile: DECODE_COOP_TILE,
            subgroups: DECODE_COOP_SUBGROUPS,
            f_len: (DECODE_COOP_TILE * 16).max(16 * (d + 16)),
            prefetch: tuning.coop_prefetch,
        },
    )?;
    let workgroup_bytes = validate_with(
        &source,
        template,
        Some(layer.layer),
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::COOPERATIVE_MATRIX,
    )?;
    let e = Elem::of(module.storage);
    let params = decode_params(e);
    Ok(Artifact {
        path: format!("wgsl/{label}_decode_coop.wgsl"),
        source,
        workgroup_bytes: Some(workgroup_bytes),
        kernels: vec![KernelInfo::new(
            Target::Wgsl,
            Phase::Decode,
            Some(layer.layer),
            entry,
            KernelAbi::new(
                params,
                [32 * DECODE_COOP_SUBGROUPS, 1, 1],
                Grid::WorkItems,
                Tiles {
                    k_tile: Some(DECODE_COOP_TILE),
                    q_cols: Some(16),
                    subgroups: Some(DECODE_COOP_SUBGROUPS),
                    ..Tiles::default()
                },
            ),
            merge_json(
                layer_constants(&ctx),
                json!({ "workgroup_bytes": decode_coop_workgroup_bytes(d) }),
            ),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower;
    use crate::plan::Plan;

    fn plan(name: &str) -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        Plan::load(&path).unwrap()
    }

    /// The decode merges its segments itself only when asked (`decode_fused_merge:
    /// Some(true)`), and binds the counters and O then; by default every shape keeps the
    /// separate merge dispatch.
    #[test]
    fn the_fused_merge_is_opt_in() {
        let binds_counters = |name: &str, fused: Option<bool>| {
            let tuning = WgslTuning {
                decode_fused_merge: fused,
                ..Default::default()
            };
            let arts = generate_with(&lower(&plan(name), StorageType::F16), tuning).unwrap();
            let decodes: Vec<bool> = arts
                .iter()
                .flat_map(|a| &a.kernels)
                .filter(|k| k.phase == Phase::Decode && k.abi.tiles.subgroups.is_none())
                .map(|k| {
                    let args: Vec<Arg> = k.abi.params.iter().map(|p| p.arg).collect();
                    args.contains(&Arg::SegDone) && args.contains(&Arg::Out)
                })
                .collect();
            assert!(!decodes.is_empty(), "{name}: no decode");
            assert!(decodes.iter().all(|&d| d == decodes[0]), "{name}: mixed");
            decodes[0]
        };
        for name in [
            "plans/fixture-gqa.toml",
            "plans/fixture-mha.toml",
            "plans/smollm2-135m-moa-50.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            assert!(!binds_counters(name, None), "{name}");
            assert!(binds_counters(name, Some(true)), "{name}");
        }
    }

    /// The layers that get the matrix decode: f16 GQA at head_dim 64 and 128 do, f32 and
    /// head_dim 32 (columns per subgroup below one 16-wide matrix) do not.
    #[test]
    fn the_matrix_decode_is_generated_where_it_fits() {
        assert!(decode_coop_fits(StorageType::F16, 4, 128));
        assert!(decode_coop_fits(StorageType::F16, 1, 64));
        assert!(decode_coop_fits(StorageType::F16, 16, 128));
        assert!(!decode_coop_fits(StorageType::F32, 4, 128));
        assert!(!decode_coop_fits(StorageType::F16, 4, 32));
        assert!(!decode_coop_fits(StorageType::F16, 32, 128));
        assert!(!decode_coop_fits(StorageType::F16, 4, 96));
        assert!(decode_coop_workgroup_bytes(128) <= DECODE_COOP_WORKGROUP_BYTES);
        // The figure is what the module declares (naga's sizes, as `limits` counts).
        let arts = generate(&lower(
            &plan("benches/decode-h200/wgsl-gqa-hd128.toml"),
            StorageType::F16,
        ))
        .unwrap();
        let a = arts
            .iter()
            .find(|a| a.kernels[0].abi.tiles.subgroups.is_some())
            .unwrap();
        let r = super::super::limits::resources(&a.kernels[0], a).unwrap();
        assert_eq!(r.shared_bytes, u64::from(decode_coop_workgroup_bytes(128)));
        let count = |name: &str, storage| {
            let arts = generate(&lower(&plan(name), storage)).unwrap();
            arts.iter()
                .flat_map(|a| &a.kernels)
                .filter(|k| k.abi.tiles.subgroups.is_some())
                .count()
        };
        assert_eq!(count("plans/fixture-gqa.toml", StorageType::F16), 3);
        assert_eq!(count("plans/fixture-gqa.toml", StorageType::F32), 0);
        assert_eq!(count("plans/fixture-mha.toml", StorageType::F16), 0);
        assert_eq!(
            count("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
            lower(
                &plan("benches/decode-h200/wgsl-gqa-hd128.toml"),
                StorageType::F16
            )
            .layers
            .len()
        );
    }

    /// No adapter here has cooperative matrices (lavapipe), so the matrix decode is checked
    /// as far as the Vulkan back end goes without one: naga validates it (inside
    /// `generate`), the subgroup size and rescale overrides resolve, and SPIR-V is written.
    /// Validates a WGSL module with naga (every capability, as the matrix kernels need),
    /// resolves the entry point's pipeline overrides and writes SPIR-V 1.3, as the Vulkan
    /// back end does: the words, or the first error as text.
    fn spirv(source: &str, entry: &str, overrides: &[(&str, f64)]) -> Result<Vec<u32>, String> {
        let module = naga::front::wgsl::parse_str(source).map_err(|e| e.to_string())?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| e.to_string())?;
        let mut constants = naga::back::PipelineConstants::default();
        for (name, value) in overrides {
            constants.insert(name.to_string(), *value);
        }
        let entry = Some((naga::ShaderStage::Compute, entry));
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, entry, &constants)
                .map_err(|e| e.to_string())?;
        let options = naga::back::spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &options, None).map_err(|e| e.to_string())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_matrix_decode_translates_to_spirv() {
        for name in [
            "plans/fixture-gqa.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            for coop_prefetch in [false, true] {
                let arts = generate_with(
                    &lower(&plan(name), StorageType::F16),
                    WgslTuning {
                        coop_prefetch,
                        ..WgslTuning::default()
                    },
                )
                .unwrap();
                let coop: Vec<&Artifact> = arts
                    .iter()
                    .filter(|a| a.kernels[0].abi.tiles.subgroups.is_some())
                    .collect();
                assert!(!coop.is_empty(), "{name}");
                for a in coop {
                    let entry = a.kernels[0].entry_point.as_str();
                    let spv = spirv(&a.source, entry, &[("MOA_SG", 32.0), ("MOA_RESCALE", 0.0)])
                        .unwrap_or_else(|e| panic!("{name} {}: {e}", a.path));
                    assert!(spv.len() > 100);
                }
            }
        }
    }

    /// The matrix-unit prefill of every layer of the shipped SmolLM2 plan (head_dim 64) and
    /// of a dense head_dim-128 shape validates with naga and translates to SPIR-V with the
    /// subgroup size resolved, as the Vulkan back end does (no adapter here offers
    /// cooperative matrices: the device runs it); f32 storage and head_dim 72 are refused.
    #[test]
    fn the_matrix_unit_prefill_validates_and_translates_to_spirv() {
        let root = env!("CARGO_MANIFEST_DIR");
        let plan = Plan::load(std::path::Path::new(&format!(
            "{root}/plans/smollm2-135m-moa-50.toml"
        )))
        .unwrap();
        let mut shape = plan.model().clone();
        shape.head_dim = 128;
        let dense = Plan::dense(shape).unwrap();
        for plan in [&plan, &dense] {
            let kernels = prefill_coop(&lower(plan, StorageType::F16)).unwrap();
            assert_eq!(kernels.len(), plan.layers().len());
            for k in kernels.iter().take(2) {
                let words = spirv(&k.source, &k.entry_point, &[("SG", 32.0)])
                    .unwrap_or_else(|e| panic!("layer {}: {e}", k.layer));
                assert!(words.len() > 100);
            }
        }
        let err = prefill_coop(&lower(&plan, StorageType::F32)).unwrap_err();
        assert!(err.to_string().contains("f16 storage"), "{err}");
        // The group form too, at every subgroup size it takes, and with a group of one
        // (4 query blocks), two (2) and four (1 block) heads.
        let mut shapes = vec![plan.clone(), dense.clone()];
        for (q, kv) in [(4, 4), (4, 2), (8, 2)] {
            let mut s = plan.model().clone();
            (s.q_heads, s.kv_heads, s.head_dim) = (q, kv, 16);
            shapes.push(Plan::dense(s).unwrap());
        }
        for p in &shapes {
            let kernels = prefill_coop_group(&lower(p, StorageType::F16)).unwrap();
            assert_eq!(kernels.len(), p.layers().len());
            let g = p.model().q_heads / p.model().kv_heads;
            // Every layer (naga validated each inside prefill_coop_group) translates at
            // the NVIDIA subgroup size; the first two at the others too.
            for (i, k) in kernels.iter().enumerate() {
                assert!(k.group);
                assert_eq!(k.q_tile, 16 * prefill_group_q_blocks(g).unwrap());
                let sizes: &[f64] = if i < 2 { &[16.0, 32.0, 64.0] } else { &[32.0] };
                for &sg in sizes {
                    let words = spirv(&k.source, &k.entry_point, &[("SG", sg)])
                        .unwrap_or_else(|e| panic!("group form, layer {}: {e}", k.layer));
                    assert!(words.len() > 100);
                }
            }
        }
        // The variants (form 1, the diagnostics, K staged or not, V early or not, V in
        // K's tile or not, its diagnostics)
        // validate (naga, inside) and translate, on the plan's shape and a group of one.
        // (form, diag, stage_k, v_early, v_in_k, mask_select), then score_regs.
        fn form_of(
            (form, diag, stage_k, v_early, v_in_k, mask_select): (u32, u32, bool, bool, bool, bool),
            score_regs: bool,
        ) -> PrefillGroupForm {
            PrefillGroupForm {
                form,
                diag,
                stage_k,
                v_early,
                v_in_k,
                mask_select,
                score_regs,
            }
        }
        for p in [&shapes[0], &shapes[2]] {
            let module = lower(p, StorageType::F16);
            for t in [
                (1, 0, false, false, false, false),
                (1, 1, false, false, false, false),
                (1, 2, false, false, false, false),
                (1, 3, false, false, false, false),
                (2, 1, false, false, false, false),
                (2, 2, false, false, false, false),
                (2, 3, false, false, false, false),
                (2, 4, false, false, false, false),
                (2, 5, false, false, false, false),
                (2, 0, false, false, false, false),
                (2, 0, true, false, false, false),
                (1, 0, true, false, false, false),
                (2, 0, false, true, false, false),
                (2, 0, true, true, false, false),
                (1, 0, true, true, false, false),
                (2, 0, true, true, true, false),
                (1, 0, true, false, true, false),
                (2, 1, true, false, true, false),
                (2, 7, true, false, true, false),
                (2, 0, true, true, true, true),
                (2, 0, true, true, false, true),
                (1, 0, true, false, true, true),
                (2, 0, false, false, false, true),
                (2, 3, false, false, false, true),
            ] {
                let variant = form_of(t, false);
                let kernels = prefill_coop_group_form(&module, variant).unwrap();
                for k in kernels.iter().take(2) {
                    spirv(&k.source, &k.entry_point, &[("SG", 32.0)])
                        .unwrap_or_else(|e| panic!("{variant:?}, layer {}: {e}", k.layer));
                }
            }
            for t in [
                (0, 0, false, false, false, false),
                (3, 0, false, false, false, false),
                (4, 0, false, false, false, false),
                (1, 8, false, false, false, false),
                (2, 2, true, false, false, false),
                (2, 4, false, true, false, false),
                (2, 0, false, true, true, false),
                (2, 6, true, false, true, false),
                (2, 7, false, false, false, false),
                (2, 1, true, true, true, false),
                (2, 1, true, false, true, true),
            ] {
                let variant = form_of(t, false);
                assert!(prefill_coop_group_form(&module, variant).is_err());
            }
            // Scores in registers (with and without select masks and staging; SG 16, 32,
            // 64: the register array is sized for 16), and not with diagnostic 1.
            for t in [
                (2, 0, true, true, true, true),
                (2, 0, true, true, true, false),
                (1, 0, true, false, true, false),
                (2, 0, false, false, false, false),
                (2, 7, true, false, true, true),
            ] {
                let variant = form_of(t, true);
                let kernels = prefill_coop_group_form(&module, variant).unwrap();
                for k in kernels.iter().take(2) {
                    // 128: the 4-key groups' other mapping (moa_sr_key: kpl = 8).
                    for sg in [16.0, 32.0, 64.0, 128.0] {
                        spirv(&k.source, &k.entry_point, &[("SG", sg)])
                            .unwrap_or_else(|e| panic!("{variant:?}, layer {}: {e}", k.layer));
                    }
                }
                let wrong = PrefillGroupForm { diag: 1, ..variant };
                assert!(prefill_coop_group_form(&module, wrong).is_err());
            }
        }
        assert_eq!(prefill_group_q_blocks(3), Some(2));
        // K staged: 6 × 6656 + 9216 = 49152 bytes at head_dim 64; at 128 one block a head.
        assert_eq!(prefill_group_q_blocks_staged(3, 64, 0), Some(2));
        assert_eq!(prefill_group_q_blocks_staged(3, 64, 1), Some(2));
        assert_eq!(prefill_group_q_blocks_staged(3, 128, 1), Some(1));
        assert!(prefill_group_stage_fits(3, 64, 1) && !prefill_group_stage_fits(8, 64, 1));
        assert!(!prefill_group_stage_fits(3, 128, 1) && !prefill_group_stage_fits(3, 64, 2));
        assert_eq!(prefill_group_q_blocks(8), None);
        assert!(prefill_coop_group(&lower(&plan, StorageType::F32)).is_err());
        let mut shape = plan.model().clone();
        shape.head_dim = 72;
        let odd = Plan::dense(shape).unwrap();
        assert!(prefill_coop(&lower(&odd, StorageType::F16)).is_err());
    }

    /// Every form of the scalar decode validates with naga (inside `generate_with`),
    /// translates to SPIR-V, declares the workgroup bytes its form adds, and falls back
    /// where it does not apply: f32 and f16, head_dim 32 to 128, MHA, GQA and a group too
    /// large to unroll.
    #[test]
    fn wider_narrower_and_shuffled_decodes_fit_their_limits() {
        // The opt-in workgroup sizes and quad shuffles keep the quad form where it fits
        // (256 invocations: within the wide budget, past WebGPU's 16 KiB), record what
        // they are, and pass the limits check the executors run.
        for name in [
            "plans/fixture-gqa.toml",
            "benches/decode-h200/wgsl-gqa-hd128.toml",
        ] {
            let module = lower(&plan(name), StorageType::F16);
            for (threads, shuffle) in [(64, false), (256, false), (128, true), (256, true)] {
                let tuning = WgslTuning {
                    decode_threads: threads,
                    decode_quad_shuffle: shuffle,
                    ..WgslTuning::default()
                };
                let arts = generate_with(&module, tuning).unwrap();
                super::super::limits::check(Target::Wgsl, &arts)
                    .unwrap_or_else(|e| panic!("{name} {threads} {shuffle}: {e}"));
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    assert_eq!(k.abi.block[0], threads, "{name}");
                    assert_eq!(k.abi.tiles.k_tile, Some(threads), "{name}");
                    assert_eq!(k.constants["decode_form"], "quad", "{name} {threads}");
                    assert_eq!(
                        k.constants.get("decode_quad_shuffle") == Some(&json!(true)),
                        shuffle,
                        "{name}"
                    );
                    assert_eq!(a.source.contains("subgroupShuffleXor"), shuffle, "{name}");
                }
            }
        }
    }

    /// The f16 products and the Q·K invocations' sums of p validate (inside
    /// `generate_with`), pass the limits check, translate to SPIR-V, apply only where
    /// they fit (the quad form with f16 storage; the sums with paired end-of-chunk sums)
    /// and are recorded in the manifest only where on.
    #[cfg(target_os = "linux")]
    #[test]
    fn f16_products_and_qk_sums_apply_where_they_fit() {
        let cases = [
            ("plans/fixture-mha.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F32),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
        ];
        for (name, storage) in cases {
            let module = lower(&plan(name), storage);
            let group = module.shape.group_size();
            for (qk, pv, sums) in [
                (false, Some(false), false),
                (true, Some(false), false),
                (false, Some(true), true),
                (true, None, true),
            ] {
                let tuning = WgslTuning {
                    decode_f16_qk: qk,
                    decode_f16_pv: pv,
                    decode_qk_sums: sums,
                    decode_lazy_margin: 8,
                    ..WgslTuning::default()
                };
                let arts = generate_with(&module, tuning).unwrap();
                super::super::limits::check(Target::Wgsl, &arts)
                    .unwrap_or_else(|e| panic!("{name} {storage:?}: {e}"));
                let half = storage == StorageType::F16;
                let want_pv = half && pv.unwrap_or(group > 1);
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    let label = format!("{name} {storage:?} qk {qk} pv {pv:?} sums {sums}");
                    assert_eq!(k.constants["decode_form"], "quad", "{label}");
                    let on = |key: &str| k.constants.get(key) == Some(&json!(true));
                    assert_eq!(on("decode_f16_qk"), half && qk, "{label}");
                    assert_eq!(on("decode_f16_pv"), want_pv, "{label}");
                    if want_pv {
                        assert_eq!(
                            k.constants["decode_lazy_margin"], DECODE_F16_PV_MARGIN,
                            "{label}"
                        );
                    }
                    let paired = on("decode_paired_epilogue");
                    assert_eq!(on("decode_qk_sums"), sums && paired, "{label}");
                    assert_eq!(
                        a.source.contains("fn moa_part16"),
                        half && (qk || want_pv),
                        "{label}"
                    );
                    assert_eq!(
                        a.source.contains("Sums of p (this variant)"),
                        sums && paired,
                        "{label}"
                    );
                    let shape = decode_shape(storage, group, module.shape.head_dim).unwrap();
                    let r = super::super::limits::resources(k, a).unwrap();
                    let fused = u64::from(
                        DECODE_FUSED_WORKGROUP_BYTES
                            * u32::from(
                                k.constants.get("decode_fused_merge") == Some(&json!(true)),
                            ),
                    );
                    assert_eq!(
                        r.shared_bytes - fused,
                        u64::from(decode_workgroup_bytes_with(
                            &shape,
                            DecodeForm::Quad,
                            group,
                            module.shape.head_dim,
                            on("decode_f16_qk"),
                            on("decode_qk_sums"),
                        )),
                        "{label}"
                    );
                    let spv = spirv(&a.source, &k.entry_point, &[])
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert!(spv.len() > 100, "{label}");
                }
            }
        }
    }

    #[test]
    fn every_scalar_decode_form_validates_and_falls_back() {
        let cases = [
            ("plans/fixture-mha.toml", StorageType::F32),
            ("plans/fixture-mha.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F16),
            ("plans/fixture-gqa.toml", StorageType::F32),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F16),
            ("benches/decode-h200/wgsl-gqa-hd128.toml", StorageType::F32),
        ];
        for (name, storage) in cases {
            let module = lower(&plan(name), storage);
            let group = module.shape.group_size();
            let d = module.shape.head_dim;
            for (wanted, early_v, paired, batch, narrow) in [
                (DecodeForm::Eager, false, true, 16, false),
                (DecodeForm::Lazy, false, false, 16, false),
                (DecodeForm::Lazy, true, true, 8, true),
                (DecodeForm::Quad, false, false, 16, false),
                (DecodeForm::Quad, true, false, 16, false),
                (DecodeForm::Quad, false, true, 8, false),
                (DecodeForm::Quad, true, true, 16, false),
                (DecodeForm::Quad, true, true, 16, true),
            ] {
                let tuning = WgslTuning {
                    decode_form: wanted,
                    decode_early_v: Some(early_v),
                    decode_paired_epilogue: paired,
                    decode_load_batch: batch,
                    decode_narrow_loads: narrow,
                    ..WgslTuning::default()
                };
                let shape = decode_shape_with(storage, group, d, !narrow).unwrap();
                let arts = generate_with(&module, tuning).unwrap();
                let got = decode_form_for(wanted, &shape, group, d);
                for a in arts.iter().filter(|a| {
                    a.kernels[0].phase == Phase::Decode
                        && a.kernels[0].abi.tiles.subgroups.is_none()
                }) {
                    let k = &a.kernels[0];
                    let form = k.constants["decode_form"].as_str().unwrap_or("eager");
                    assert_eq!(form, got.name(), "{name} {storage:?} {wanted:?}");
                    // Paired sums only in the quad form, and only where a head's
                    // accumulators fit its partials' buffer; early V only where a
                    // tile's V loads fit one batch.
                    let epi = group * shape.tile / (shape.threads * shape.kv_vec / 4);
                    assert_eq!(
                        k.constants["decode_paired_epilogue"] == true,
                        paired && got == DecodeForm::Quad && epi >= 1,
                        "{name} {storage:?} {wanted:?}"
                    );
                    if k.constants["decode_early_v"] == true {
                        assert!(shape.tile.div_ceil(shape.slot_groups) <= batch);
                    }
                    assert_eq!(k.constants["kv_vec"], shape.kv_vec, "{name} {storage:?}");
                    let r = super::super::limits::resources(k, a).unwrap();
                    let f16_qk = k.constants.get("decode_f16_qk") == Some(&json!(true));
                    let fused = u64::from(
                        DECODE_FUSED_WORKGROUP_BYTES
                            * u32::from(
                                k.constants.get("decode_fused_merge") == Some(&json!(true)),
                            ),
                    );
                    assert_eq!(
                        r.shared_bytes - fused,
                        u64::from(decode_workgroup_bytes_with(
                            &shape, got, group, d, f16_qk, false
                        )),
                        "{name} {storage:?} {wanted:?}"
                    );
                    spirv(&a.source, &k.entry_point, &[])
                        .unwrap_or_else(|e| panic!("{name} {storage:?} {wanted:?}: {e}"));
                }
            }
        }
        // A group past the unrolled limit keeps the eager form.
        let shape = decode_shape(StorageType::F16, 16, 64).unwrap();
        assert_eq!(
            decode_form_for(DecodeForm::Quad, &shape, 16, 64),
            DecodeForm::Eager
        );
        // Llama-3-8B's layer shape (group 4, head_dim 128, f16) gets the quad form.
        let shape = decode_shape(StorageType::F16, 4, 128).unwrap();
        assert_eq!(
            decode_form_for(DecodeForm::Quad, &shape, 4, 128),
            DecodeForm::Quad
        );
        for f in [DecodeForm::Eager, DecodeForm::Lazy, DecodeForm::Quad] {
            assert_eq!(DecodeForm::parse(f.name()), Some(f));
        }
        assert_eq!(DecodeForm::parse("fast"), None);
    }
}
