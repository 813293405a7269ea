//! The compute pipelines of the hand-written ops (`shaders/`): built once per engine, for
//! the engine's storage type.

#![warn(missing_docs)]

use super::{EngineError, WgpuEngineOptions};
use crate::lower::StorageType;
use crate::runtime::shaders::{self, Shader, Types};
use crate::runtime::wgpu::{matrix_pipeline_checked, CoopMatrix};

/// The prefill products on matrix units (`coop_linear.wgsl`): f32 input and attention
/// output input.
pub(super) struct CoopPipes {
    pub(super) linear: wgpu::ComputePipeline,
    pub(super) linear_attn: wgpu::ComputePipeline,
    /// The gate/up product with SwiGLU in its epilogue (f32 input, SWIGLU 1): act
    /// columns × tokens a workgroup are [`Self::swiglu_tile`]; `None` where
    /// `MOA_WGPU_COOP_SWIGLU=0`.
    pub(super) gate_up_swiglu: Option<wgpu::ComputePipeline>,
    /// Act columns × tokens a workgroup of [`Self::gate_up_swiglu`] (half the tile's
    /// columns: each is a gate and an up column).
    pub(super) swiglu_tile: [u32; 2],
    /// Columns × tokens of `out` a workgroup (the grid's divisors).
    pub(super) tile: [u32; 2],
    /// K must be a multiple of this (4: `coop_linear.wgsl` reads x and w in 16-byte
    /// words, element by element where K is not a multiple of a word's 4 f32 or 8 halves,
    /// and a buffer's last partial word is out of its reach in naga's checked build);
    /// other products take `linear.wgsl`.
    pub(super) k_multiple: usize,
}

/// How the decode products on subgroups run (`matvec_sg.wgsl`'s overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupProducts {
    /// Subgroups per column group (1, 2, 4 or 8: `KSPLIT`); `None` chooses per product
    /// (`SgPipes::ksplit`).
    pub ksplit: Option<u32>,
    /// Column groups (4 output columns × `rows` rows each) per workgroup (1, 2, 4 or 8:
    /// `GROUPS`); `None`: `default_groups` (1 at KSPLIT 4 and 8 on subgroups of 32 or
    /// more). Bounded per KSPLIT by 256 invocations a workgroup (`groups_for`).
    pub groups: Option<u32>,
    /// Rows a workgroup row (16, 8 or 4: `ROW_GROUPS` 4, 2, 1 groups of 4 rows a
    /// subgroup); `None`: `default_rows` (8 on subgroups of 32 or more, else 16). Fewer
    /// rows a subgroup: fewer x loads and sums a lane, each weight loaded by 16 / rows
    /// workgroups (`MOA_WGPU_SG_ROWS`).
    pub rows: Option<u32>,
    /// K trips of the K loop whose weight loads a lane issues first (1, 2 or 4:
    /// `UNROLL`); `None`: `default_unroll` (4 on subgroups of 32 or more, else 1;
    /// `MOA_WGPU_SG_UNROLL`).
    pub unroll: Option<u32>,
}

impl SubgroupProducts {
    /// The choice of `options` (`sg_ksplit`; default: KSPLIT chosen per product, measured
    /// best on the H200, benches/RESULTS.md, session 9).
    pub(super) fn from_options(options: &WgpuEngineOptions) -> SubgroupProducts {
        SubgroupProducts {
            ksplit: options.sg_ksplit,
            groups: options.sg_groups,
            rows: options.sg_rows,
            unroll: options.sg_unroll,
        }
    }
}

/// `matvec_sg.wgsl`'s overrides that change how a product runs, not its shape: the
/// timing diagnostic and the epilogue's early loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SgKnobs {
    /// `DIAG` (`MOA_WGPU_SG_DIAG`; 1–5 give wrong results).
    pub(super) diag: u32,
    /// `EARLY` (`MOA_WGPU_SG_EARLY`).
    pub(super) early: bool,
    /// `XFIRST` (`MOA_WGPU_SG_XFIRST`).
    pub(super) xfirst: bool,
    /// Most rows of a quantized decode product on `matvec_q.wgsl`
    /// (`WgpuEngineOptions::quant_gemv_rows`).
    pub(super) gemv_rows: usize,
    /// `matvec_q.wgsl`'s UNROLL (`WgpuEngineOptions::quant_gemv_unroll`).
    pub(super) gemv_unroll: u32,
}

impl SgKnobs {
    pub(super) fn from_options(options: &WgpuEngineOptions) -> SgKnobs {
        SgKnobs {
            diag: options.sg_diag,
            early: options.sg_early,
            xfirst: options.sg_xfirst,
            gemv_rows: options.quant_gemv_rows as usize,
            gemv_unroll: options.quant_gemv_unroll,
        }
    }
}

/// `matvec_sg.wgsl` for one KSPLIT, one pipeline per input (the merged attention input
/// stays on `matvec.wgsl`).
pub(super) struct SgSet {
    pub(super) plain: wgpu::ComputePipeline,
    pub(super) attn: wgpu::ComputePipeline,
    pub(super) norm: wgpu::ComputePipeline,
    pub(super) swiglu: wgpu::ComputePipeline,
    /// RMSNorm → QKV product → RoPE + KV-cache write.
    pub(super) rope: wgpu::ComputePipeline,
    /// RMSNorm → gate/up product → SwiGLU (`moa_matvec_sg_swiglu_out`).
    pub(super) swiglu_out: wgpu::ComputePipeline,
    /// Column groups per workgroup (`GROUPS`): a workgroup writes 4 · `groups` output
    /// columns (2 · `groups` rotation or gate/up pairs).
    pub(super) groups: u32,
    /// Rows a workgroup row (`4 · ROW_GROUPS`): the grid's y is ceil(rows / this).
    pub(super) rows: u32,
}

impl SgSet {
    /// Output columns per workgroup.
    pub(super) fn columns_per_workgroup(&self) -> u32 {
        4 * self.groups
    }
}

/// The decode products on subgroups, for KSPLIT 1, 2 and 4 (and 8 where it can be
/// chosen: [`builds_eight`]).
pub(super) struct SgPipes {
    /// KSPLIT 1, 2 and 4.
    sets: [SgSet; 3],
    /// KSPLIT 8, where built.
    eight: Option<SgSet>,
    /// `MOA_WGPU_SG_FIT`: per inner size K of the model's products, its (KSPLIT, STEPS)
    /// and the fitted set ([`fit_shape`]: `STEPS` K steps a lane, KSPLIT covering K / 4,
    /// one column group).
    fitted: Vec<(usize, (u32, u32), SgSet)>,
    /// The same sets at 4 rows a workgroup row, for dispatches of at most 4 rows, where
    /// [`few_rows_sets`] builds them.
    few: Option<Box<SgPipes>>,
    /// The subgroup size they were built for: a workgroup holds `SgSet::groups` column
    /// groups of 4 output columns × 16 rows, KSPLIT subgroups each.
    pub(super) subgroup: u32,
    pub(super) choice: SubgroupProducts,
}

/// Column groups per workgroup where the choice sets none: at KSPLIT 4 and 8 on
/// subgroups of 32 or more, 1 (a workgroup is one column group's KSPLIT subgroups);
/// otherwise 64 / subgroup, as before session 17 (lavapipe's 8; the many-column products
/// at KSPLIT 1 and 2, which were not measured with one). On the H200 (subgroups of 32)
/// one group a workgroup spreads SmolLM2's 576-column products over 144 workgroups
/// instead of 72 on its 132 SMs and lets them take KSPLIT 8 (256 invocations): output
/// 5.55–5.58 → 4.78 µs, down 7.97–8.22 → 6.92, QKV (KSPLIT 4) 6.90–7.08 → 6.61 (RESULTS
/// "wgpu engine, session 17").
pub(super) fn default_groups(subgroup: u32, ksplit: u32) -> u32 {
    if subgroup >= 32 && ksplit >= 4 {
        1
    } else {
        64 / subgroup
    }
}

/// Rows a workgroup row of the subgroup products where the choice sets none: 8 on
/// subgroups of 32 or more, 16 otherwise (lavapipe's 8, not measured). With 8 a lane
/// loads 8 rows of x a weight vector and keeps 40 sums instead of 80 (80 registers for the
/// output and down products instead of 120 and 128, 112 for the RMSNorm form instead of
/// 150), so its loads leave in one batch; the grid's y doubles and each weight is loaded
/// by two workgroups. On the H200 (SmolLM2 16 x 4096, three pairs in one process): qkv
/// 6.18-6.40 → 5.77-5.84 µs, out 4.62-4.88 → 4.27-4.53, down 6.68-6.73 → 6.06-6.24,
/// device step 1 578.0-1 580.1 → 1 503.0-1 505.9 µs (RESULTS "wgpu engine, session 22").
pub(super) fn default_rows(subgroup: u32) -> u32 {
    if subgroup >= 32 {
        8
    } else {
        16
    }
}

/// K trips of the K loop whose weight loads a lane issues first where the choice sets
/// none (`matvec_sg.wgsl`'s `UNROLL`): 4 on subgroups of 32 or more, 1 otherwise
/// (lavapipe's 8, not measured). On the H200 (session 39, lead call 2; Llama-3-8B shape, 4
/// rows × 4096, dense): one trip kept 32 bytes of f16 weights in flight a lane and read
/// gate/up's 235 MB in 157 µs (1.5 TB/s); 2 trips 113–115 µs, 4 trips 92.6–92.8 µs (2.5
/// TB/s); the step 11.68 → 8.90 (2) → 8.07–8.10 ms (4); the 1B shape 2.10 → 1.78 (2) →
/// 1.82–1.83 ms (4), and at 4 rows a workgroup row 1.66 (2) → 1.53 ms (4).
pub(super) fn default_unroll(subgroup: u32) -> u32 {
    if subgroup >= 32 {
        4
    } else {
        1
    }
}

/// Whether the subgroup products are also built at 4 rows a workgroup row for dispatches
/// of at most 4 rows ([`SgPipes::pick`]): where the choice fixes no rows and the default
/// is 8 (subgroups of 32 or more). A 4-row pipeline holds a quarter of the 16-row sums
/// and half the 8-row ones, so more workgroups fit an SM; where a dispatch has more rows,
/// each weight would be read by more workgroups (SmolLM2 at 16 rows: 4 rows a workgroup
/// row lost every pair, session 22). On the H200 (session 39, lead call 2): the 1B shape
/// at 4 rows 1.82 → 1.53 ms a step with 4 trips first, at 1 row 1.50 against 1.74 (2
/// trips, 8 rows); the 8B shape at 4 rows 8.07–8.10 → 7.62 ms.
pub(super) fn few_rows_sets(choice: SubgroupProducts, subgroup: u32) -> bool {
    choice.rows.is_none() && default_rows(subgroup) == 8
}

/// Column groups per workgroup of `matvec_sg.wgsl` at subgroup size `subgroup` and
/// `ksplit`: the choice's (`default_groups` unless set), at most what keeps the
/// workgroup within 256 invocations (WebGPU's default limit) and `part_sums`' 32
/// subgroups; 0 where not even one column group fits.
pub(super) fn groups_for(choice: SubgroupProducts, subgroup: u32, ksplit: u32) -> u32 {
    let asked = choice
        .groups
        .unwrap_or(default_groups(subgroup, ksplit))
        .max(1);
    asked.min(256 / (ksplit * subgroup))
}

/// Whether the KSPLIT 8 pipelines are built: where they fit (8 subgroups a column group
/// within 256 invocations) and can be chosen: asked (`ksplit` 8), or chosen per product
/// where the asked column groups fit whole at KSPLIT 8 (the default on subgroups of 32:
/// one group; not on lavapipe's 8, whose default 8 groups would not fit).
fn builds_eight(choice: SubgroupProducts, subgroup: u32) -> bool {
    let fits = groups_for(choice, subgroup, 8) >= 1;
    let asked_groups = choice.groups.unwrap_or(default_groups(subgroup, 8));
    fits && match choice.ksplit {
        Some(k) => k == 8,
        None => asked_groups * 8 * subgroup <= 256,
    }
}

/// `MOA_WGPU_SG_FIT`'s shape for a product of inner size `k` on subgroups of
/// `subgroup` lanes: (KSPLIT, STEPS), the fewest K steps a lane that fit K / 4 4-vectors in
/// 256 invocations (or `limit`, the adapter's `max_compute_invocations_per_workgroup`,
/// where lower) and `part_sums`' 32 subgroups, then the fewest subgroups that cover them in
/// that many steps. On 32 lanes K 576 → (5, 1), K 1536 → (6, 2). (One step on 12
/// subgroups for K 1536, 384 invocations, held 56 registers against 86 and did not win on
/// the H200: `MOA_WGPU_SG_FIT_STEPS` in options::REMOVED.)
pub(super) fn fit_shape(k: usize, subgroup: u32, limit: u32) -> (u32, u32) {
    let k4 = (k / 4).max(1) as u32;
    let most = (limit.min(256) / subgroup).clamp(1, 32);
    let steps = k4.div_ceil(most * subgroup);
    (k4.div_ceil(steps * subgroup), steps)
}

impl SgPipes {
    /// The 4-row sets for the description: empty where none were built, else ", 4 rows a
    /// workgroup row for steps of at most 4 rows".
    pub(super) fn few_description(&self) -> String {
        match self.few {
            Some(_) => ", 4 rows a workgroup row for steps of at most 4 rows".to_string(),
            None => String::new(),
        }
    }

    /// Whether some set runs the K loop at 4 rows a workgroup row (`ROW_GROUPS` 1, not
    /// the fitted form), where `MOA_WGPU_SG_XFIRST` changes the shader: the 4-row sets
    /// ([`few_rows_sets`]) or every set at `MOA_WGPU_SG_ROWS=4`.
    pub(super) fn has_four_row_loops(&self) -> bool {
        self.few.is_some() || self.choice.rows == Some(4)
    }

    /// The K loop's `UNROLL` for the description: empty at 1, else ", N K trips' weight
    /// loads first".
    pub(super) fn unroll_description(&self) -> String {
        match self.choice.unroll.unwrap_or(default_unroll(self.subgroup)) {
            1 => String::new(),
            u => format!(", {u} K trips' weight loads first"),
        }
    }

    /// `MOA_WGPU_SG_FIT`'s sets for the description: empty where none were built, else
    /// ", fitted K (K 576: KSPLIT 5 × 1 step, …)".
    pub(super) fn fitted_description(&self) -> String {
        if self.fitted.is_empty() {
            return String::new();
        }
        let each: Vec<String> = self
            .fitted
            .iter()
            .map(|(k, (ks, steps), _)| {
                format!(
                    "K {k}: KSPLIT {ks} × {steps} step{}",
                    if *steps == 1 { "" } else { "s" }
                )
            })
            .collect();
        format!(", fitted K ({})", each.join(", "))
    }

    /// The pipelines of a product of `n_out` columns and inner size `k` over `rows` token
    /// rows (at most 4: the 4-row sets where built, [`few_rows_sets`]): the fitted set
    /// for `k` where `MOA_WGPU_SG_FIT` built one and the product has fewer than 512
    /// column groups (those [`Self::ksplit`] splits 4 or 8 ways where K allows: SmolLM2's
    /// QKV, output and down products, not its 768-group gate/up or its head), else the
    /// set of [`Self::ksplit`].
    pub(super) fn pick(&self, n_out: usize, k: usize, rows: usize) -> &SgSet {
        if let Some(few) = self.few.as_deref().filter(|_| rows <= 4) {
            return few.pick(n_out, k, rows);
        }
        if n_out.div_ceil(4) < 512 {
            if let Some((_, _, set)) = self.fitted.iter().find(|(fk, _, _)| *fk == k) {
                return set;
            }
        }
        self.set(self.ksplit(n_out, k))
    }

    /// KSPLIT for a product of `n_out` columns and inner size `k` (unless the choice
    /// fixes it): enough subgroups to fill a large GPU (about 1024: 8 per SM of an H200)
    /// where the product has few column groups, yet at least one full trip of the K loop
    /// per subgroup (k / 4 ≥ KSPLIT · subgroup) up to KSPLIT 4. Where the KSPLIT 8
    /// pipelines are built, a product of at most 160 column groups (1280 subgroups at 8,
    /// ~10 an SM of an H200) takes 8 wherever that saves its slowest subgroup a trip of
    /// the K loop (at K = 576 and 32 lanes KSPLIT 4 leaves one subgroup of four with a
    /// second trip; at 8 every subgroup has at most one, three of eight none): on the
    /// H200 the output product 5.39 → 4.78 µs at one group a workgroup, while the QKV
    /// product's 240 groups at 8 took 7.45 against 6.61 (its 151 registers × 256
    /// invocations leave one workgroup an SM: two waves).
    pub(super) fn ksplit(&self, n_out: usize, k: usize) -> u32 {
        let groups = n_out.div_ceil(4);
        let eight = self.eight.is_some();
        let mut ks = self.choice.ksplit.unwrap_or(match groups {
            g if g >= 1024 => 1,
            g if g >= 512 => 2,
            g if g > 160 || !eight => 4,
            _ => 8,
        });
        if self.choice.ksplit.is_none() {
            let trips = |ks: u32| (k / 4).div_ceil((ks * self.subgroup) as usize);
            if ks == 8 && trips(4) == trips(8) {
                ks = 4;
            }
            while (2..=4).contains(&ks) && k / 4 < (ks * self.subgroup) as usize {
                ks /= 2;
            }
        }
        ks
    }

    /// The pipelines of one KSPLIT (1, 2, 4, or 8 where built: [`Self::ksplit`] only
    /// chooses built ones; a fixed 8 where it does not fit, subgroups of 64, runs 4).
    pub(super) fn set(&self, ksplit: u32) -> &SgSet {
        match (ksplit, &self.eight) {
            (8, Some(set)) => set,
            (1, _) => &self.sets[0],
            (2, _) => &self.sets[1],
            _ => &self.sets[2],
        }
    }
}

/// Compiles `coop_linear.wgsl` for f16 weights and both inputs (`storage` is the
/// attention output's type), its DIRECT = `direct` (`MOA_WGPU_COOP_DIRECT`: 1 whole
/// tiles stored straight to the output, 2 also edge tiles' inner blocks, 0 none). Errors name the driver's complaint; the engine then keeps
/// the tiled products.
pub(super) fn coop_pipes(
    device: &wgpu::Device,
    storage: StorageType,
    coop: CoopMatrix,
    checked: bool,
    direct: u32,
    swiglu: bool,
) -> Result<CoopPipes, String> {
    let build = |input: StorageType, sw: bool| {
        coop_linear_pipeline(device, coop, input, checked, direct, 0, sw)
    };
    let [columns, tokens] = shaders::COOP_LINEAR_TILE;
    Ok(CoopPipes {
        linear: build(StorageType::F32, false)?,
        linear_attn: build(storage, false)?,
        gate_up_swiglu: if swiglu {
            Some(build(StorageType::F32, true)?)
        } else {
            None
        },
        swiglu_tile: [columns / 2, tokens],
        tile: shaders::COOP_LINEAR_TILE,
        k_multiple: 4,
    })
}

/// `coop_linear.wgsl`'s pipeline for `input` (f16 weights, `coop`'s accumulator and
/// subgroup size), with naga's runtime checks (index clamps, loop counters) or without
/// (`checked`; the engine's default follows `MOA_WGPU_UNCHECKED`: without, 2× faster on
/// the H200, session 27), its DIRECT = `direct` (1: whole tiles stored straight to
/// `out`; 2: also the blocks of edge tiles inside it; 0: every tile through the scratch,
/// session 27's epilogue), its timing diagnostic `diag` (0: the product) and SWIGLU
/// (`swiglu`: the gate/up product with SwiGLU in its epilogue, `n_out` = ffn act
/// columns, no residual). Errors: the driver's complaint.
pub(crate) fn coop_linear_pipeline(
    device: &wgpu::Device,
    coop: CoopMatrix,
    input: StorageType,
    checked: bool,
    direct: u32,
    diag: u32,
    swiglu: bool,
) -> Result<wgpu::ComputePipeline, String> {
    let constants = [
        ("SG", f64::from(coop.subgroup)),
        ("DIAG", f64::from(diag)),
        ("DIRECT", f64::from(direct)),
        ("SWIGLU", f64::from(u8::from(swiglu))),
    ];
    // Every workgroup array of coop_linear.wgsl is written before it is read; its indices
    // stay inside the buffers for any Params that fit them (rows, K and columns bound
    // every load and store; the direct stores and residual loads run only for tiles
    // wholly inside the output).
    matrix_pipeline_checked(
        device,
        shaders::COOP_LINEAR.name,
        &shaders::coop_linear_source(input, coop.accumulator),
        shaders::COOP_LINEAR.entry_point,
        &constants,
        checked,
    )
}

/// One row count of `linear_words.wgsl` (its `ROWS` override): the pipelines `[plain input,
/// attention input]`, and the same with the weights from textures
/// (`linear_words_texture.wgsl`, [`super::weights::Part::texture`]) where the engine uploads
/// them (`MOA_WGPU_TEXTURE_WEIGHTS`).
pub(super) struct WordsForm {
    /// Rows an invocation computes (each weight word loaded once for them).
    pub(super) rows: u32,
    pub(super) storage: [wgpu::ComputePipeline; 2],
    pub(super) texture: Option<[wgpu::ComputePipeline; 2]>,
}

/// `linear_words.wgsl`'s forms at 1, 2, 4 and 8 rows an invocation ([`LINEAR_WORDS_ROWS`]).
pub(super) struct LinearWords {
    pub(super) forms: [WordsForm; 4],
}

/// The row counts of [`LinearWords::forms`]. An invocation loads its 4 columns' weight
/// words once for its rows, so a step of 2 or 3 rows at 2 an invocation loads each weight
/// once or twice where 1 an invocation loads it 2-3 times and 4 computes 4 rows (on
/// lavapipe the weight work is about twice one row's x loads and multiply-adds: the 4-row
/// form tied the 1-row form at 2 rows, benches/RESULTS.md "Session 55"); a prefill's
/// products take 8 (half the weight loads of 4 a row; benches/RESULTS.md "Session 56").
pub(super) const LINEAR_WORDS_ROWS: [u32; 4] = [1, 2, 4, 8];

impl LinearWords {
    /// The form for a product of `rows` rows: the most rows an invocation that does not
    /// exceed `rows` (so no invocation computes a repeated row but the last).
    pub(super) fn form(&self, rows: usize) -> &WordsForm {
        self.forms
            .iter()
            .rev()
            .find(|f| f.rows as usize <= rows)
            .unwrap_or(&self.forms[0])
    }
}

pub(super) struct Pipelines {
    pub(super) embed: wgpu::ComputePipeline,
    /// `embed_texture.wgsl` where the engine uploads texture weights (f16): the gather of
    /// an embedding kept only as a texture.
    pub(super) embed_texture: Option<wgpu::ComputePipeline>,
    pub(super) rmsnorm: wgpu::ComputePipeline,
    /// Linear with f32 input.
    pub(super) linear: wgpu::ComputePipeline,
    /// Linear whose input is the attention output (attention storage type).
    pub(super) linear_attn: wgpu::ComputePipeline,
    /// `linear_words.wgsl` where the weights are f16 (`None` for f32): the products
    /// [`Self::linear`] and [`Self::linear_attn`] serve, with weights read eight at a time.
    pub(super) linear_words: Option<LinearWords>,
    /// `linear_tiled.wgsl`, `[plain input, attention input]`: the many-row products of GPU
    /// adapters without matrix units (64 × 64 output tiles, K staged in workgroup memory).
    pub(super) linear_tiled: [wgpu::ComputePipeline; 2],
    /// Few-row (decode) variants: K split across a workgroup.
    pub(super) matvec: wgpu::ComputePipeline,
    pub(super) matvec_attn: wgpu::ComputePipeline,
    /// `matvec.wgsl` with RMSNorm (INPUT_MODE 1) or SwiGLU (2) fused into its input.
    pub(super) matvec_norm: wgpu::ComputePipeline,
    pub(super) matvec_swiglu: wgpu::ComputePipeline,
    /// `matvec.wgsl`'s RMSNorm → QKV product → RoPE + KV-cache write (decode).
    pub(super) matvec_rope: wgpu::ComputePipeline,
    /// Rows per workgroup of the `matvec.wgsl` pipelines (`ROW_BLOCK`: each weight is
    /// read once per block of this many rows).
    pub(super) row_block: u32,
    /// The same products on subgroups (`matvec_sg.wgsl`), where the adapter has them:
    /// `Err` says why not (no fixed subgroup size, or the driver refused the shader).
    pub(super) matvec_sg: Result<SgPipes, String>,
    pub(super) swiglu: wgpu::ComputePipeline,
    pub(super) rope_kv: wgpu::ComputePipeline,
    /// Tokens a workgroup of [`Self::rope_kv`] (its RT; the grid's z divisor).
    pub(super) rope_tokens: u32,
    pub(super) argmax: wgpu::ComputePipeline,
    /// The two-stage argmax of decode steps (`argmax.wgsl`): per-block pairs, then rows.
    pub(super) argmax_blocks: wgpu::ComputePipeline,
    pub(super) argmax_finish: wgpu::ComputePipeline,
    pub(super) sample: wgpu::ComputePipeline,
    /// The products of quantized weights, where the engine keeps them
    /// (`MOA_WGPU_QUANT_WEIGHTS`).
    pub(super) quant: Option<QuantPipes>,
}

/// One `matvec_q.wgsl` form: its ROWS and its pipelines by input (f32, attention, RMSNorm,
/// SwiGLU).
pub(super) type GemvForm = (u32, [wgpu::ComputePipeline; 4]);

/// The products over quantized weights ([`super::weights::QuantPart`]): `linear_words.wgsl`
/// and `matvec.wgsl` with `quant_weights.wgsl` as their weight source. Every pipeline is
/// `[plain input, attention input]` or by `matvec.wgsl`'s INPUT_MODE.
pub(super) struct QuantPipes {
    /// `linear_words.wgsl` at [`LINEAR_WORDS_ROWS`] rows an invocation: the many-row
    /// products (and the few-row ones where split-K products are off).
    pub(super) words: [(u32, [wgpu::ComputePipeline; 2]); 4],
    /// [`Self::words`] with the codes and pairs from textures
    /// (`quant_weights_texture.wgsl`, [`super::weights::QuantPart::texture`]), where the
    /// engine uploads them (`MOA_WGPU_TEXTURE_WEIGHTS`).
    pub(super) words_texture: Option<[(u32, [wgpu::ComputePipeline; 2]); 4]>,
    /// `matvec.wgsl` at INPUT_MODE 0 (f32 input), 0 (attention input), 1 (RMSNorm) and 2
    /// (SwiGLU), [`Pipelines::row_block`] rows a workgroup.
    pub(super) matvec: [wgpu::ComputePipeline; 4],
    /// `matvec_sg.wgsl`'s sets over quantized weights (the split-K decode products where
    /// the adapter has subgroups, as [`Pipelines::matvec_sg`] for the storage type).
    pub(super) sg: Result<SgPipes, String>,
    /// `dequant.wgsl`: a part written out in f16 for the many-row products on matrix
    /// units or tiles.
    pub(super) dequant: wgpu::ComputePipeline,
    /// `matvec_q.wgsl` where the adapter has a fixed subgroup size: for 4- and 8-bit codes,
    /// per ROWS (1, 2, 4, 8), the pipelines at INPUT_MODE 0 (f32 input), 0 (attention input),
    /// 1 and 2. Only for products of at most [`Self::gemv_rows`] rows.
    pub(super) gemv: Option<[[GemvForm; 4]; 2]>,
    /// Most rows of a product on [`Self::gemv`] ([`SgKnobs::gemv_rows`]).
    pub(super) gemv_rows: usize,
}

impl QuantPipes {
    /// The `matvec_q.wgsl` form for `rows` rows (at most [`Self::gemv_rows`], else `None`):
    /// the most rows a workgroup that does not exceed `rows`.
    /// `bits`: the part's codes (4 or 8).
    pub(super) fn gemv(&self, rows: usize, bits: u32) -> Option<&GemvForm> {
        if rows > self.gemv_rows {
            return None;
        }
        let forms = &self.gemv.as_ref()?[usize::from(bits == 8)];
        forms
            .iter()
            .rev()
            .find(|(r, _)| *r as usize <= rows)
            .or(forms.first())
    }

    /// The `linear_words.wgsl` form for `rows` rows ([`LinearWords::form`]'s rule): rows an
    /// invocation and the pipelines.
    pub(super) fn words(&self, rows: usize) -> &(u32, [wgpu::ComputePipeline; 2]) {
        Self::words_form(&self.words, rows)
    }

    /// The form of `forms` ([`Self::words`] or [`Self::words_texture`]) for `rows` rows:
    /// the most rows an invocation that does not exceed `rows`.
    pub(super) fn words_form(
        forms: &[(u32, [wgpu::ComputePipeline; 2]); 4],
        rows: usize,
    ) -> &(u32, [wgpu::ComputePipeline; 2]) {
        forms
            .iter()
            .rev()
            .find(|(r, _)| *r as usize <= rows)
            .unwrap_or(&forms[0])
    }
}

impl Pipelines {
    /// Compiles every op's pipeline on `device`: weights and the attention's Q/K/V in
    /// `storage`, activations between kernels in f32. A shader the driver rejects is an
    /// [`EngineError::Gpu`] naming it.
    /// `row_block` (4, 8 or 16) rows per workgroup of the few-row products; `sg_knobs` the
    /// subgroup products' diagnostic and early epilogue loads
    /// (`WgpuEngineOptions::sg_diag`, `sg_early`); `rope_tokens` tokens a workgroup of `rope_kv.wgsl`
    /// (`WgpuEngineOptions::rope_tokens`); `tiled_block` rows and columns an invocation of
    /// `linear_tiled.wgsl` (`WgpuEngineOptions::tiled_block`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        device: &wgpu::Device,
        storage: StorageType,
        row_block: u32,
        subgroup: Option<u32>,
        sg_choice: SubgroupProducts,
        sg_knobs: SgKnobs,
        unchecked: bool,
        rope_tokens: u32,
        tiled_block: u32,
        textures: bool,
        quant: bool,
        fit: &[(usize, (u32, u32))],
    ) -> Result<Pipelines, EngineError> {
        let types = Types {
            weights: storage,
            input: StorageType::F32,
            attention: storage,
        };
        // `constants`: WGSL overrides. Shaders given constants write their workgroup
        // memory before reading it, so its zero-initialisation (wgpu's default, a cost on
        // every dispatch) is skipped for them.
        let pipe_with = |s: Shader,
                         t: Types,
                         constants: &[(&str, f64)]|
         -> Result<wgpu::ComputePipeline, EngineError> {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(s.name),
                source: wgpu::ShaderSource::Wgsl(s.source(t).into()),
            };
            let module = if unchecked {
                // SAFETY: naga's index clamps and loop counters off (`MOA_WGPU_UNCHECKED`,
                // default on: 0.96–0.97× the step on the H200). Storage-buffer accesses
                // stay bounded by Vulkan's robust buffer access, which wgpu enables where
                // the device has it (wgpu-hal 30 then skips naga's buffer clamps anyway);
                // what goes is the clamps on workgroup and function arrays, whose indices
                // these shaders derive from their fixed workgroup shape, and the counter
                // on every loop, each loop being bounded by the sizes in the shader's
                // parameters, which the host sets from the shapes it allocates with. CI
                // runs every shader in this mode against the CPU reference
                // (tests/model_gpu.rs).
                unsafe {
                    device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                device.create_shader_module(desc)
            };
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(s.name),
                layout: None,
                module: &module,
                entry_point: Some(s.entry_point),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: constants.is_empty(),
                },
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(EngineError::Gpu {
                    what: format!("compiling {}", s.name),
                    message: e.to_string(),
                });
            }
            Ok(p)
        };
        let pipe = |s: Shader, t: Types| pipe_with(s, t, &[]);
        let rb = f64::from(row_block);
        let (mv, mv_rope) = (shaders::MATVEC, shaders::MATVEC_ROPE);
        // The subgroup products, and with `quant` the same over quantized weights.
        let (matvec_sg, matvec_sg_quant) = match subgroup {
            None => {
                let why = "no fixed subgroup size from 8 to 64 on this adapter".to_string();
                (Err(why.clone()), Err(why))
            }
            Some(sg) => {
                // A timing diagnostic only (`MOA_WGPU_SG_DIAG`, wrong results: see
                // matvec_sg.wgsl's DIAG).
                let diag = f64::from(sg_knobs.diag);
                let early = f64::from(u8::from(sg_knobs.early));
                let xfirst = f64::from(u8::from(sg_knobs.xfirst));
                let attn = Types {
                    input: storage,
                    ..types
                };
                // `steps` > 0: the fitted form (`MOA_WGPU_SG_FIT`), one column group.
                // `quant`: the quantized weight source (`quant_weights.wgsl`).
                let build_steps = |choice: SubgroupProducts,
                                   ks: u32,
                                   steps: u32,
                                   quant: bool|
                 -> Result<Option<SgSet>, EngineError> {
                    if ks == 8 && steps == 0 && !builds_eight(choice, sg) {
                        return Ok(None);
                    }
                    let groups = if steps > 0 {
                        1
                    } else {
                        groups_for(choice, sg, ks)
                    };
                    if groups == 0 {
                        return Err(EngineError::Input(format!(
                            "KSPLIT {ks} on subgroups of {sg}: over 256 invocations a workgroup"
                        )));
                    }
                    let rows = choice.rows.unwrap_or(default_rows(sg));
                    if ![4, 8, 16].contains(&rows) {
                        return Err(EngineError::Input(format!(
                            "{rows} rows a workgroup row of the subgroup products (4, 8 or 16)"
                        )));
                    }
                    let c = |mode: f64| {
                        [
                            ("INPUT_MODE", mode),
                            ("SG", f64::from(sg)),
                            ("KSPLIT", f64::from(ks)),
                            ("GROUPS", f64::from(groups)),
                            ("WG", f64::from(groups * ks * sg)),
                            ("DIAG", diag),
                            ("ROW_GROUPS", f64::from(rows / 4)),
                            ("STEPS", f64::from(steps)),
                            ("EARLY", early),
                            (
                                "UNROLL",
                                f64::from(choice.unroll.unwrap_or(default_unroll(sg))),
                            ),
                            ("XFIRST", xfirst),
                        ]
                    };
                    let (mv, rope, swiglu_out) = if quant {
                        (
                            shaders::MATVEC_SG_QUANT,
                            shaders::MATVEC_SG_ROPE_QUANT,
                            shaders::MATVEC_SG_SWIGLU_OUT_QUANT,
                        )
                    } else {
                        (
                            shaders::MATVEC_SG,
                            shaders::MATVEC_SG_ROPE,
                            shaders::MATVEC_SG_SWIGLU_OUT,
                        )
                    };
                    Ok(Some(SgSet {
                        groups,
                        rows,
                        plain: pipe_with(mv, types, &c(0.0))?,
                        attn: pipe_with(mv, attn, &c(0.0))?,
                        norm: pipe_with(mv, types, &c(1.0))?,
                        swiglu: pipe_with(mv, types, &c(2.0))?,
                        rope: pipe_with(rope, types, &c(1.0))?,
                        swiglu_out: pipe_with(swiglu_out, types, &c(1.0))?,
                    }))
                };
                let build_pipes = |choice: SubgroupProducts,
                                   quant: bool|
                 -> Result<SgPipes, EngineError> {
                    let build = |ks: u32| build_steps(choice, ks, 0, quant);
                    // KSPLIT 1, 2 and 4 are always built (`build` gives `None` only for 8).
                    let always = |ks: u32| {
                        build(ks)?.ok_or_else(|| {
                            EngineError::Input(format!("KSPLIT {ks}: the pipelines were not built"))
                        })
                    };
                    // The fitted sets, where asked and the choice fixes no KSPLIT or groups.
                    let mut fitted: Vec<(usize, (u32, u32), SgSet)> = Vec::new();
                    if choice.ksplit.is_none() && choice.groups.is_none() {
                        for &(k, (ks, steps)) in fit {
                            if fitted.iter().any(|(fk, _, _)| *fk == k) {
                                continue;
                            }
                            if let Some(set) = build_steps(choice, ks, steps, quant)? {
                                fitted.push((k, (ks, steps), set));
                            }
                        }
                    }
                    Ok(SgPipes {
                        sets: [always(1)?, always(2)?, always(4)?],
                        eight: build(8)?,
                        fitted,
                        few: None,
                        subgroup: sg,
                        choice,
                    })
                };
                let make = |quant: bool| {
                    (|| -> Result<SgPipes, EngineError> {
                        let mut pipes = build_pipes(sg_choice, quant)?;
                        if few_rows_sets(sg_choice, sg) {
                            pipes.few = Some(Box::new(build_pipes(
                                SubgroupProducts {
                                    rows: Some(4),
                                    ..sg_choice
                                },
                                quant,
                            )?));
                        }
                        Ok(pipes)
                    })()
                    .map_err(|e| e.to_string())
                };
                let plain = make(false);
                let quantized = if quant {
                    make(true)
                } else {
                    Err("no quantized weights asked".to_string())
                };
                (plain, quantized)
            }
        };
        Ok(Pipelines {
            row_block,
            matvec_sg,
            embed: pipe(shaders::EMBED, types)?,
            embed_texture: if textures && storage == StorageType::F16 {
                Some(pipe(shaders::EMBED_TEXTURE, types)?)
            } else {
                None
            },
            rmsnorm: pipe(shaders::RMSNORM, types)?,
            linear: pipe(shaders::LINEAR, types)?,
            linear_attn: pipe(
                shaders::LINEAR,
                Types {
                    input: storage,
                    ..types
                },
            )?,
            linear_tiled: {
                let c = [("BLOCK", f64::from(tiled_block))];
                [
                    pipe_with(shaders::LINEAR_TILED, types, &c)?,
                    pipe_with(
                        shaders::LINEAR_TILED,
                        Types {
                            input: storage,
                            ..types
                        },
                        &c,
                    )?,
                ]
            },
            linear_words: if storage == StorageType::F16 {
                let attn = Types {
                    input: storage,
                    ..types
                };
                let words =
                    |s: Shader, rows: u32| -> Result<[wgpu::ComputePipeline; 2], EngineError> {
                        let c = [("ROWS", f64::from(rows))];
                        Ok([pipe_with(s, types, &c)?, pipe_with(s, attn, &c)?])
                    };
                let form = |rows: u32| -> Result<WordsForm, EngineError> {
                    Ok(WordsForm {
                        rows,
                        storage: words(shaders::LINEAR_WORDS, rows)?,
                        texture: if textures {
                            Some(words(shaders::LINEAR_WORDS_TEXTURE, rows)?)
                        } else {
                            None
                        },
                    })
                };
                let [a, b, c, e] = LINEAR_WORDS_ROWS;
                Some(LinearWords {
                    forms: [form(a)?, form(b)?, form(c)?, form(e)?],
                })
            } else {
                None
            },
            matvec: pipe_with(mv, types, &[("INPUT_MODE", 0.0), ("ROW_BLOCK", rb)])?,
            matvec_attn: pipe_with(
                mv,
                Types {
                    input: storage,
                    ..types
                },
                &[("INPUT_MODE", 0.0), ("ROW_BLOCK", rb)],
            )?,
            matvec_norm: pipe_with(mv, types, &[("INPUT_MODE", 1.0), ("ROW_BLOCK", rb)])?,
            matvec_swiglu: pipe_with(mv, types, &[("INPUT_MODE", 2.0), ("ROW_BLOCK", rb)])?,
            matvec_rope: pipe_with(mv_rope, types, &[("INPUT_MODE", 1.0), ("ROW_BLOCK", rb)])?,
            swiglu: pipe(shaders::SWIGLU, types)?,
            rope_kv: pipe_with(shaders::ROPE_KV, types, &[("RT", f64::from(rope_tokens))])?,
            rope_tokens,
            argmax: pipe(shaders::ARGMAX, types)?,
            argmax_blocks: pipe(shaders::ARGMAX_BLOCKS, types)?,
            argmax_finish: pipe(shaders::ARGMAX_FINISH, types)?,
            sample: pipe(shaders::SAMPLE, types)?,
            quant: if quant {
                let attn = Types {
                    input: storage,
                    ..types
                };
                let words =
                    |s: Shader,
                     rows: u32|
                     -> Result<(u32, [wgpu::ComputePipeline; 2]), EngineError> {
                        let c = [("ROWS", f64::from(rows))];
                        Ok((rows, [pipe_with(s, types, &c)?, pipe_with(s, attn, &c)?]))
                    };
                let mq = shaders::MATVEC_QUANT;
                let mode =
                    |t: Types, m: f64| pipe_with(mq, t, &[("INPUT_MODE", m), ("ROW_BLOCK", rb)]);
                let [a, b, c, e] = LINEAR_WORDS_ROWS;
                let gemv = match subgroup {
                    Some(sg) => {
                        let form = |bits: u32, rows: u32| -> Result<GemvForm, EngineError> {
                            let c = |m: f64| {
                                [
                                    ("LANES", f64::from(sg)),
                                    ("ROWS", f64::from(rows)),
                                    ("INPUT_MODE", m),
                                    ("BITS", f64::from(bits)),
                                    ("UNROLL", f64::from(sg_knobs.gemv_unroll)),
                                ]
                            };
                            let q = shaders::MATVEC_Q;
                            Ok((
                                rows,
                                [
                                    pipe_with(q, types, &c(0.0))?,
                                    pipe_with(q, attn, &c(0.0))?,
                                    pipe_with(q, types, &c(1.0))?,
                                    pipe_with(q, types, &c(2.0))?,
                                ],
                            ))
                        };
                        let forms = |b: u32| -> Result<_, EngineError> {
                            Ok([form(b, 1)?, form(b, 2)?, form(b, 4)?, form(b, 8)?])
                        };
                        Some([forms(4)?, forms(8)?])
                    }
                    None => None,
                };
                Some(QuantPipes {
                    sg: matvec_sg_quant,
                    gemv,
                    gemv_rows: sg_knobs.gemv_rows,
                    dequant: pipe(shaders::DEQUANT, types)?,
                    words: {
                        let s = shaders::LINEAR_WORDS_QUANT;
                        [words(s, a)?, words(s, b)?, words(s, c)?, words(s, e)?]
                    },
                    // Only where the weights are uploaded as textures (f16 storage).
                    words_texture: if textures && storage == StorageType::F16 {
                        let s = shaders::LINEAR_WORDS_QUANT_TEXTURE;
                        Some([words(s, a)?, words(s, b)?, words(s, c)?, words(s, e)?])
                    } else {
                        None
                    },
                    matvec: [
                        mode(types, 0.0)?,
                        mode(attn, 0.0)?,
                        mode(types, 1.0)?,
                        mode(types, 2.0)?,
                    ],
                })
            } else {
                None
            },
        })
    }
}
