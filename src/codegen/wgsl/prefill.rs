//! Which prefill form each layer's WGSL kernel takes and what it needs: the key tile, the
//! cooperative-matrix forms (one query head a workgroup, or a GQA group a workgroup:
//! [`PrefillGroupForm`]) and their workgroup-memory fits, and the lists of generated
//! cooperative-matrix prefill kernels ([`CoopPrefill`]).

use serde::Serialize;

use super::{
    validate_with, PrefillCoopCtx, PrefillCoopGroupCtx, PREFILL_COOP, PREFILL_COOP_GROUP, TEMPLATES,
};
use crate::codegen::ctx::LayerCtx;
use crate::codegen::CodegenError;
use crate::lower::consts::{WGSL_PREFILL_K_TILE, WGSL_WORKGROUP_STORAGE_BYTES};
use crate::lower::{KernelModule, StorageType};

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
            let source = crate::codegen::render(
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
    let env = crate::codegen::environment(TEMPLATES)?;
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
            let source = crate::codegen::render(
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
