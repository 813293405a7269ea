//! The WGSL decode kernels' shapes and forms: the split-K kernel's [`DecodeShape`], the
//! subgroup and cooperative-matrix forms and when each fits ([`DecodeForm`]), the
//! [`WgslTuning`] choices that change speed but not results, and the workgroup memory
//! each form takes.

use crate::codegen::CodegenError;
use crate::lower::consts::{WGSL_DECODE_THREADS, WGSL_WORKGROUP_STORAGE_BYTES};
use crate::lower::StorageType;

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
/// fits `WGSL_WORKGROUP_STORAGE_BYTES`, and where one slot still does not fit (64 heads
/// at head_dim 4–16: the per-slot-group sums outgrow the budget) the slot groups halve
/// with it (fewer invocations). Errors: a head dim too wide for one workgroup (more than
/// 256 loads per row) or a group that no shape fits, naming the largest group that fits.
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
    if let Some(shape) = fit_shape(kv_vec, dv, slot_groups, group_size, head_dim, budget) {
        return Ok(shape);
    }
    // The allowed range: the largest group that some shape fits at this head dim (the
    // state grows with the group, so every smaller group fits too).
    let largest = (1..group_size)
        .rev()
        .find(|&g| fit_shape(kv_vec, dv, slot_groups, g, head_dim, budget).is_some());
    let allowed = match largest {
        Some(g) => format!("allowed 1..={g} query heads per KV head at head_dim {head_dim}"),
        None => format!("no group fits at head_dim {head_dim}"),
    };
    Err(CodegenError::Unsupported {
        target: "wgsl",
        message: format!(
            "a GQA group of {group_size} query heads at head_dim {head_dim}: the \
             WGSL decode's per-head state does not fit {budget} bytes of workgroup \
             memory ({allowed}; model.q_heads / model.kv_heads is the group)"
        ),
    })
}

/// The first decode shape that fits `budget` bytes, or `None`: `slot_groups` slot groups
/// of `dv` invocations with a tile of one slot per invocation and the queries staged;
/// else queries read from Q and the tile halved (to one slot); else, where even one slot
/// does not fit (the per-slot-group sums, `slot_groups × group` words, outgrow the budget
/// for a large group at a small head dim: 128 × 64 × 4 bytes at head_dim 4), the slot
/// groups halved too, each count with the largest tile from `dv × slot_groups` down to
/// `slot_groups` (a smaller tile would leave slot groups idle in P·V) that fits.
fn fit_shape(
    kv_vec: u32,
    dv: u32,
    slot_groups: u32,
    group_size: u32,
    head_dim: u32,
    budget: u32,
) -> Option<DecodeShape> {
    let fits = |s: &DecodeShape| s.workgroup_bytes(group_size, head_dim) <= budget;
    let threads = dv * slot_groups;
    let mut shape = DecodeShape {
        threads,
        tile: threads,
        kv_vec,
        slot_groups,
        stage_q: true,
        p_len: DecodeShape::p_len_for(threads, group_size, slot_groups, head_dim),
    };
    if fits(&shape) {
        return Some(shape);
    }
    shape.stage_q = false;
    while !fits(&shape) && shape.tile > 1 {
        shape.tile /= 2;
        shape.p_len = DecodeShape::p_len_for(shape.tile, group_size, slot_groups, head_dim);
    }
    if fits(&shape) {
        return Some(shape);
    }
    let mut sg = slot_groups;
    while sg > 1 {
        sg /= 2;
        let threads = dv * sg;
        let mut tile = threads;
        while tile >= sg {
            let s = DecodeShape {
                threads,
                tile,
                kv_vec,
                slot_groups: sg,
                stage_q: false,
                p_len: DecodeShape::p_len_for(tile, group_size, sg, head_dim),
            };
            if fits(&s) {
                return Some(s);
            }
            tile /= 2;
        }
    }
    None
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

/// Choices of the WGSL kernels that change speed, not results (benchmarks compare them;
/// [`generate`](super::generate) uses the default).
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
    /// on a per-segment counter ([`Arg::SegDone`](crate::codegen::abi::Arg::SegDone)) after writing its partial, and the last
    /// to arrive combines the segment's partials into O ([`Arg::Out`](crate::codegen::abi::Arg::Out)), so a decode step is
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
    /// The scalar prefill, the flat and the scalar decode: each query head's rule (α,
    /// β·BETA_DEN) is read from a per-layer table ([`crate::codegen::abi::Arg::Rules`],
    /// `u32[q_heads, 2]`, filled by the executor from the plan) instead of baked into the
    /// shader as immediates, so every layer of one shape gets the same source and the
    /// executor builds one pipeline for them all (`MOA_WGSL_RULES_TABLE`). A module whose
    /// layers all have the same rules (dense, uniform) keeps them baked in one text that
    /// names no layer (session 44). The spans are the same integers
    /// (`span.wgsl.j2`'s `moa_rule_span`); only where α and β come from differs. Named
    /// `decode_rules_table` until session 44, which added the scalar prefill. Off in
    /// `moa-compile`'s default (per-layer kernels with the rules baked in); on in the wgpu
    /// engine's since session 43: on an H100 through Vulkan (Llama-3.2-1B shape, 4 rows ×
    /// 4096) 16 layers of identical work but 16 different shader texts took 22.3–23.2 µs a
    /// layer back to back against 17.7 for one or two texts, and the engine's decode
    /// attention 21.6 against 15.4 µs a layer: a dispatch whose code differs from the last
    /// one's starts cold (RESULTS "Session 43").
    pub rules_table: bool,
    /// The scalar prefill (`prefill.wgsl.j2`) takes two keys a step: both scores (each as
    /// four partial sums of the head dim's dot products) before one maximum, one rescale
    /// and one update of the accumulator, instead of one key a step. The same softmax up
    /// to rounding order. `None` (the default, what `moa-compile` writes): one key a step;
    /// the wgpu engine, where unset, takes pairs on every adapter but a CPU one (there the
    /// longer loop body compiled slower on lavapipe, and a CPU adapter runs the prefill no
    /// faster for it). On an H100 through Vulkan (SmolLM2 shape, 16 × 4096,
    /// `MOA_WGPU_COOP=0`) the attention of a pass took 369–370 ms against 403 with moa-50
    /// and 559 against 599 dense, parity 0.052 / argmax 3/3 as before (RESULTS "Session
    /// 47, lead call 2"). A layer whose key tile is one key (head dims past the workgroup
    /// memory's two-key fit) keeps one key a step.
    pub prefill_key_pairs: Option<bool>,
    /// Queries (invocations) a workgroup of the scalar prefill, each K/V tile staged once
    /// for all of them. `None` (the default, what `moa-compile` writes):
    /// [`WGSL_PREFILL_Q_TILE`](crate::lower::consts::WGSL_PREFILL_Q_TILE) = 32; the wgpu
    /// engine, where unset, takes 128 on every adapter but a CPU one. On an H100 through
    /// Vulkan (SmolLM2 shape, 16 × 4096, two keys a step) the attention of a moa-50 pass
    /// took 370 ms at 32, 212–214 at 64 and 182 at 128 (dense 310 at 64, 259 at 128;
    /// RESULTS "Session 47, lead calls 4 and 5"). Allowed 1..=256 (WebGPU's default
    /// invocations a workgroup); others are refused by [`generate_with`](super::generate_with).
    pub prefill_q_tile: Option<u32>,
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
            rules_table: false,
            prefill_key_pairs: None,
            prefill_q_tile: None,
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
