//! The hand-written WGSL of the non-attention ops (`shaders/`), embedded at build time.
//! Each shader names its element types through aliases (`wtype` for weights, `xtype` for
//! a linear layer's input, `stype` for the attention kernels' storage type) and gets a
//! header that defines them, so one source serves f16 and f32 devices.

#![warn(missing_docs)]

use crate::lower::StorageType;

/// A hand-written shader: file name, entry point, source, and which aliases it uses.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    /// The file's name under `shaders/`, e.g. `matvec.wgsl`.
    pub name: &'static str,
    /// The `@compute` function the pipeline runs (several constants share one file).
    pub entry_point: &'static str,
    source: &'static str,
}

/// `embed.wgsl`: `out[t, :] = table[tokens[t], :]` as f32, one dispatch per part of a
/// table split by rows across bindings (docs/DESIGN.md §7).
pub const EMBED: Shader = Shader {
    name: "embed.wgsl",
    entry_point: "moa_embed",
    source: include_str!("../../shaders/embed.wgsl"),
};
/// `embed_texture.wgsl`: [`EMBED`] from the table's texture form (f16, `hidden` a multiple
/// of 8, word w of a part at texel `(w % TEX_WIDTH, w / TEX_WIDTH)`), where the engine keeps
/// only that form (`MOA_WGPU_TEXTURE_WEIGHTS` on a CPU adapter).
pub const EMBED_TEXTURE: Shader = Shader {
    name: "embed_texture.wgsl",
    entry_point: "moa_embed_texture",
    source: include_str!("../../shaders/embed_texture.wgsl"),
};
/// `rmsnorm.wgsl`: RMSNorm of selected f32 rows, one workgroup per row:
/// `out[r, :] = x[rows[r], :] / rms(x[rows[r], :]) · weight` (`rows` lets the final norm
/// gather each row's last token).
pub const RMSNORM: Shader = Shader {
    name: "rmsnorm.wgsl",
    entry_point: "moa_rmsnorm",
    source: include_str!("../../shaders/rmsnorm.wgsl"),
};
/// `linear.wgsl`: the products of many rows (prefill, where matrix units are not used),
/// `out[t, n] = Σ_k x[t, k] · w[n, k]` (+ residual), weights row-major `[n_out, k]`, a
/// 4 × 4 output block per invocation.
pub const LINEAR: Shader = Shader {
    name: "linear.wgsl",
    entry_point: "moa_linear",
    source: include_str!("../../shaders/linear.wgsl"),
};
/// `linear_words.wgsl`: [`LINEAR`]'s product for f16 weights read eight at a time
/// (16-byte words; K a multiple of 8), `ROWS` (an override, 1 or 4) rows × 4 output columns
/// per invocation: the products of adapters without subgroups of a fixed size (CPU
/// adapters), where every per-lane load is a gather. Weights from a storage buffer
/// (`linear_words_buffer.wgsl`).
pub const LINEAR_WORDS: Shader = Shader {
    name: "linear_words.wgsl",
    entry_point: "moa_linear_words",
    source: concat!(
        include_str!("../../shaders/linear_words_buffer.wgsl"),
        include_str!("../../shaders/linear_words_columns.wgsl"),
        include_str!("../../shaders/linear_words.wgsl")
    ),
};
/// [`LINEAR_WORDS`] with its weights from an `rgba32uint` texture
/// (`linear_words_texture.wgsl`: word t of a part at texel `(t % TEX_WIDTH, t / TEX_WIDTH)`,
/// `TEX_WIDTH` an override, default 8192): the CPU adapters' products, where a texture
/// load is vectorized and a storage load is not (`MOA_WGPU_TEXTURE_WEIGHTS`).
pub const LINEAR_WORDS_TEXTURE: Shader = Shader {
    name: "linear_words.wgsl",
    entry_point: "moa_linear_words",
    source: concat!(
        include_str!("../../shaders/linear_words_texture.wgsl"),
        include_str!("../../shaders/linear_words_columns.wgsl"),
        include_str!("../../shaders/linear_words.wgsl")
    ),
};
/// [`LINEAR_WORDS`] with quantized weights (`quant_weights.wgsl` +
/// `linear_words_quant.wgsl`: codes at binding 2, each group's (scale, offset) at binding
/// 12, the format in the parameters' `quant` word; [`crate::model::QuantMatrix`]): every
/// product of an engine that keeps a GGUF file's quantization where split-K products are
/// off (CPU adapters), and the many-row products elsewhere.
pub const LINEAR_WORDS_QUANT: Shader = Shader {
    name: "linear_words.wgsl",
    entry_point: "moa_linear_words",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/linear_words_quant.wgsl"),
        include_str!("../../shaders/linear_words_columns.wgsl"),
        include_str!("../../shaders/linear_words.wgsl")
    ),
};
/// [`LINEAR_WORDS_QUANT`] with the codes and pairs from `rgba32uint` textures
/// (`quant_weights_texture.wgsl`: the part in blocks of four output columns, a texel
/// holding a code word or two pairs of all four, `TEX_WIDTH` texels a row as
/// [`LINEAR_WORDS_TEXTURE`]'s; the host's layout is `weights::column_blocks`): the CPU
/// adapters' products over a kept quantization, where a texture load is vectorized and a
/// storage load is not.
pub const LINEAR_WORDS_QUANT_TEXTURE: Shader = Shader {
    name: "linear_words.wgsl",
    entry_point: "moa_linear_words",
    source: concat!(
        include_str!("../../shaders/quant_weights_texture.wgsl"),
        include_str!("../../shaders/linear_words.wgsl")
    ),
};
/// `matvec_q.wgsl`: the decode products over quantized weights on subgroups (a subgroup
/// per 4 columns × `ROWS` rows, a lane taking a 16-byte word of codes a step, the pair
/// folded in after the word's dot product), `INPUT_MODE` as [`MATVEC`]'s; codes at binding
/// 2, pairs at 12, the format in the parameters' last word.
pub const MATVEC_Q: Shader = Shader {
    name: "matvec_q.wgsl",
    entry_point: "moa_matvec_q",
    source: include_str!("../../shaders/matvec_q.wgsl"),
};
/// `dequant.wgsl`: a quantized part's weights written out as f16 (`quant_weights.wgsl`
/// prepended; the part's rows in the parameters' `n_out`, K in `k`, the format in
/// `quant`), into the scratch matrix that the many-row products on matrix units or tiles
/// read where the engine keeps quantized weights.
pub const DEQUANT: Shader = Shader {
    name: "dequant.wgsl",
    entry_point: "moa_dequant",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/dequant.wgsl")
    ),
};
/// `linear_tiled.wgsl`: [`LINEAR`]'s product for GPU adapters without matrix units, a
/// 64 × 64 output tile per workgroup of 16 × 16 invocations with K staged through
/// workgroup memory 16 at a time (any K), so each weight is read once per 64 rows.
pub const LINEAR_TILED: Shader = Shader {
    name: "linear_tiled.wgsl",
    entry_point: "moa_linear_tiled",
    source: include_str!("../../shaders/linear_tiled.wgsl"),
};
/// `matvec.wgsl`: the decode products for few rows (`ROW_BLOCK` rows per workgroup), a
/// workgroup per 4 output columns splitting K over 64 invocations; the op before the
/// product fused into its input load (`INPUT_MODE`).
pub const MATVEC: Shader = Shader {
    name: "matvec.wgsl",
    entry_point: "moa_matvec",
    source: concat!(
        include_str!("../../shaders/matvec_weights.wgsl"),
        include_str!("../../shaders/matvec.wgsl")
    ),
};
/// [`MATVEC`] with quantized weights (`quant_weights.wgsl` + `matvec_weights_quant.wgsl`,
/// bindings as [`LINEAR_WORDS_QUANT`]'s): the decode products of an engine that keeps a
/// GGUF file's quantization, where split-K products are on.
pub const MATVEC_QUANT: Shader = Shader {
    name: "matvec.wgsl",
    entry_point: "moa_matvec",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/matvec_weights_quant.wgsl"),
        include_str!("../../shaders/matvec.wgsl")
    ),
};
/// `matvec.wgsl`'s QKV product with RoPE and the KV-cache write in its epilogue.
pub const MATVEC_ROPE: Shader = Shader {
    name: "matvec.wgsl",
    entry_point: "moa_matvec_rope",
    source: concat!(
        include_str!("../../shaders/matvec_weights.wgsl"),
        include_str!("../../shaders/matvec.wgsl")
    ),
};
/// The decode products on subgroups (`matvec_sg.wgsl`: one subgroup per 4 columns × 16
/// rows, reduced by a butterfly of `subgroupShuffleXor`), for adapters with the `SUBGROUP` feature and one
/// fixed subgroup size.
pub const MATVEC_SG: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg",
    source: concat!(
        include_str!("../../shaders/matvec_sg_weights.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// [`MATVEC_SG`] with quantized weights (`quant_weights.wgsl` + `matvec_sg_weights_quant.wgsl`,
/// bindings as [`LINEAR_WORDS_QUANT`]'s).
pub const MATVEC_SG_QUANT: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/matvec_sg_weights_quant.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// `matvec_sg.wgsl`'s QKV product with RoPE and the KV-cache write in its epilogue.
pub const MATVEC_SG_ROPE: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg_rope",
    source: concat!(
        include_str!("../../shaders/matvec_sg_weights.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// [`MATVEC_SG_ROPE`] with quantized weights (`quant_weights.wgsl` + `matvec_sg_weights_quant.wgsl`,
/// bindings as [`LINEAR_WORDS_QUANT`]'s).
pub const MATVEC_SG_ROPE_QUANT: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg_rope",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/matvec_sg_weights_quant.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// `matvec_sg.wgsl`'s gate/up product with SwiGLU in its epilogue (decode).
pub const MATVEC_SG_SWIGLU_OUT: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg_swiglu_out",
    source: concat!(
        include_str!("../../shaders/matvec_sg_weights.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// [`MATVEC_SG_SWIGLU_OUT`] with quantized weights (`quant_weights.wgsl` + `matvec_sg_weights_quant.wgsl`,
/// bindings as [`LINEAR_WORDS_QUANT`]'s).
pub const MATVEC_SG_SWIGLU_OUT_QUANT: Shader = Shader {
    name: "matvec_sg.wgsl",
    entry_point: "moa_matvec_sg_swiglu_out",
    source: concat!(
        include_str!("../../shaders/quant_weights.wgsl"),
        include_str!("../../shaders/matvec_sg_weights_quant.wgsl"),
        include_str!("../../shaders/matvec_sg.wgsl")
    ),
};
/// `swiglu.wgsl`: `act[t, i] = silu(gu[t, i]) · gu[t, ffn + i]` on the fused gate/up
/// projection `[n_tokens, 2 ffn]`.
pub const SWIGLU: Shader = Shader {
    name: "swiglu.wgsl",
    entry_point: "moa_swiglu",
    source: include_str!("../../shaders/swiglu.wgsl"),
};
/// `rope_kv.wgsl`: RoPE (half-split pairs) of the fused QKV projection
/// `[n_tokens, (q_heads + 2 kv_heads) · head_dim]`, writing packed Q, K, V and every kept
/// token's K and V into the layer's sink + ring cache (docs/DESIGN.md §5).
pub const ROPE_KV: Shader = Shader {
    name: "rope_kv.wgsl",
    entry_point: "moa_rope_kv",
    source: include_str!("../../shaders/rope_kv.wgsl"),
};
/// `argmax.wgsl`: greedy decoding, the index of each row's largest logit (lowest on ties,
/// as `torch.argmax`), one workgroup per row.
pub const ARGMAX: Shader = Shader {
    name: "argmax.wgsl",
    entry_point: "moa_argmax",
    source: include_str!("../../shaders/argmax.wgsl"),
};
/// `argmax.wgsl`'s two stages (decode): per-block (value, index) pairs, then per row.
pub const ARGMAX_BLOCKS: Shader = Shader {
    name: "argmax.wgsl",
    entry_point: "moa_argmax_blocks",
    source: include_str!("../../shaders/argmax.wgsl"),
};
/// `argmax.wgsl`'s second stage: each row's (value, index) pairs of [`ARGMAX_BLOCKS`]
/// reduced to its token.
pub const ARGMAX_FINISH: Shader = Shader {
    name: "argmax.wgsl",
    entry_point: "moa_argmax_finish",
    source: include_str!("../../shaders/argmax.wgsl"),
};
/// `sample.wgsl`: temperature, top-k and top-p sampling, one workgroup per row, with one
/// host-drawn uniform number per row (so a seed fixes the output).
pub const SAMPLE: Shader = Shader {
    name: "sample.wgsl",
    entry_point: "moa_sample",
    source: include_str!("../../shaders/sample.wgsl"),
};

/// Every shader built through [`Shader::source`] (the cooperative-matrix ones have their
/// own source functions), for tests that validate each.
pub const ALL: &[Shader] = &[
    EMBED,
    EMBED_TEXTURE,
    RMSNORM,
    LINEAR,
    LINEAR_WORDS,
    LINEAR_WORDS_TEXTURE,
    LINEAR_WORDS_QUANT,
    LINEAR_WORDS_QUANT_TEXTURE,
    MATVEC_Q,
    DEQUANT,
    LINEAR_TILED,
    MATVEC,
    MATVEC_QUANT,
    MATVEC_ROPE,
    MATVEC_SG,
    MATVEC_SG_QUANT,
    MATVEC_SG_ROPE,
    MATVEC_SG_ROPE_QUANT,
    MATVEC_SG_SWIGLU_OUT,
    MATVEC_SG_SWIGLU_OUT_QUANT,
    SWIGLU,
    ROPE_KV,
    ARGMAX,
    ARGMAX_BLOCKS,
    ARGMAX_FINISH,
    SAMPLE,
];

/// Element types a shader instance is specialised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Types {
    /// Weights in device memory.
    pub weights: StorageType,
    /// Input of a linear layer (f32 activations, or the attention output's storage type).
    pub input: StorageType,
    /// Storage type of the attention kernels' Q/K/V and cache.
    pub attention: StorageType,
}

impl Shader {
    /// The shader's source with its type header.
    pub fn source(&self, types: Types) -> String {
        let any_f16 = [types.weights, types.input, types.attention].contains(&StorageType::F16);
        let mut s = String::new();
        if any_f16 {
            s.push_str("enable f16;\n");
        }
        s.push_str(&format!(
            "alias wtype = {};\nalias xtype = {};\nalias stype = {};\n",
            types.weights.name(),
            types.input.name(),
            types.attention.name()
        ));
        s.push_str(self.source);
        // The decode QKV products' RoPE + cache-write epilogue, shared the same way.
        if self.source.contains("rope_store(") {
            s.push_str(MATVEC_ROPE_EPILOGUE);
        }
        // The many-row products' parameter struct, stated once (WGSL declarations may
        // follow their use).
        if self.source.contains("ProductParams") {
            s.push_str(PRODUCT_PARAMS);
        }
        // The embedding gathers' parameter struct, the same way.
        if self.source.contains("EmbedParams") {
            s.push_str(EMBED_PARAMS);
        }
        // The cache-write rule is one WGSL function shared by the shaders that write the
        // KV cache, appended here rather than copied into each file.
        if s.contains("cache_slot(") {
            s.push_str(CACHE_SLOT);
        }
        s
    }
}

/// `matvec_rope.wgsl`: RoPE + the KV-cache write of one rotation pair (`rope_store`),
/// the epilogue of `matvec.wgsl`'s and `matvec_sg.wgsl`'s decode QKV products and the
/// body of `rope_kv.wgsl` (one copy of the rotation and the stores).
const MATVEC_ROPE_EPILOGUE: &str = include_str!("../../shaders/matvec_rope.wgsl");

/// `cache_slot.wgsl`: the sink + ring slot of a position (docs/DESIGN.md §5), used by
/// `matvec_rope.wgsl`'s `rope_store`.
const CACHE_SLOT: &str = include_str!("../../shaders/cache_slot.wgsl");
/// `product_params.wgsl`: `ProductParams`, the parameter words of `linear.wgsl`,
/// `linear_words.wgsl`, `linear_tiled.wgsl` and `coop_linear.wgsl`.
const PRODUCT_PARAMS: &str = include_str!("../../shaders/product_params.wgsl");

/// `embed_params.wgsl`: `EmbedParams`, the parameter words of `embed.wgsl` and
/// `embed_texture.wgsl`.
const EMBED_PARAMS: &str = include_str!("../../shaders/embed_params.wgsl");

/// `coop_linear.wgsl`: prefill products on matrix units (cooperative matrices), for
/// adapters that offer 16 × 16 × 16 f16 configurations: 128 × 128 tiles, 8 subgroups of
/// 4 × 2 fragments, K double-buffered in stages of 32 with 4-vector loads (session 27);
/// its source comes from [`coop_linear_source`], not [`Shader::source`].
pub const COOP_LINEAR: Shader = Shader {
    name: "coop_linear.wgsl",
    entry_point: "moa_coop_linear",
    source: include_str!("../../shaders/coop_linear.wgsl"),
};

/// Columns × tokens of `out` per workgroup of [`COOP_LINEAR`]: the grid is
/// ceil(columns / `[0]`) × ceil(tokens / `[1]`).
pub const COOP_LINEAR_TILE: [u32; 2] = [128, 128];

/// `coop_linear_direct.wgsl`: [`COOP_LINEAR`]'s whole-tile epilogue for an f32
/// accumulator (fragments stored straight to `out`, the residual as their initial value;
/// session 28).
const COOP_LINEAR_DIRECT: &str = include_str!("../../shaders/coop_linear_direct.wgsl");

/// `coop_linear_scratch.wgsl`: its stubs for an f16 accumulator (every tile through the
/// scratch: f16 fragments cannot be stored to the f32 output).
const COOP_LINEAR_SCRATCH: &str = include_str!("../../shaders/coop_linear_scratch.wgsl");

/// `coop_linear_x32.wgsl`: [`COOP_LINEAR`]'s x binding and loads for f32 input (16-byte
/// words of 4 f32).
const COOP_LINEAR_X32: &str = include_str!("../../shaders/coop_linear_x32.wgsl");

/// `coop_linear_x16.wgsl`: [`COOP_LINEAR`]'s x binding and loads for f16 input (16-byte
/// words of 8 packed halves; session 29).
const COOP_LINEAR_X16: &str = include_str!("../../shaders/coop_linear_x16.wgsl");

/// `coop_linear.wgsl` with its header: f16 weights, `input` as the product's input type
/// and `accumulator` (f32 or f16) as the cooperative accumulator's element type, the
/// whole-tile epilogue that accumulator allows, the input's x binding and loads and
/// `product_params.wgsl` appended.
pub fn coop_linear_source(input: StorageType, accumulator: StorageType) -> String {
    let epilogue = match accumulator {
        StorageType::F32 => COOP_LINEAR_DIRECT,
        _ => COOP_LINEAR_SCRATCH,
    };
    let x_part = match input {
        StorageType::F32 => COOP_LINEAR_X32,
        _ => COOP_LINEAR_X16,
    };
    format!(
        "enable f16;\nenable wgpu_cooperative_matrix;\nalias wtype = f16;\nalias xtype = {};\nalias ctype = {};\n{}\n{}\n{}\n{}",
        input.name(),
        accumulator.name(),
        COOP_LINEAR.source,
        epilogue,
        x_part,
        PRODUCT_PARAMS
    )
}

/// `coop_matvec.wgsl`: decode products on matrix units (up to 16 rows a fragment, f16
/// weights, f32 accumulator), for adapters that offer 16 × 16 × 16 f16 → f32
/// configurations; its source comes from [`coop_matvec_source`].
pub const COOP_MATVEC: Shader = Shader {
    name: "coop_matvec.wgsl",
    entry_point: "moa_coop_matvec",
    source: include_str!("../../shaders/coop_matvec.wgsl"),
};

/// How `coop_matvec.wgsl` walks K: `early` (its EARLY 1, the default; K split over 4
/// subgroups only) writes the walk out in the source with every B fragment loaded before
/// x is staged; `direct` (DIRECT 1, with `early`, an f16 x without RMSNorm) loads the A
/// fragments straight from x instead of staging them. `rope` = Some(head_dim) builds the
/// QKV product's epilogue (EPI 3: `matvec_rope.wgsl`'s RoPE + cache write, f16 storage,
/// head_dim a multiple of 32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoopWalk {
    /// EARLY 1: the K walk written out, every B fragment loaded before x is staged.
    pub early: bool,
    /// DIRECT 1 (with `early`, f16 x, no RMSNorm): A fragments loaded from x, not staged.
    pub direct: bool,
    /// `Some(head_dim)`: the QKV product's RoPE + cache-write epilogue (EPI 3).
    pub rope: Option<usize>,
    /// `out` holds f16 (`otype`), not f32: a fused gate/up phase's SwiGLU output, which a
    /// down phase's direct walk loads as its A fragments (s33-mega; that form lost on the
    /// H200 and its option was removed: `options::REMOVED`, MOA_WGPU_DECODE_FUSED_DOWN).
    pub out_f16: bool,
}

/// Elements of `coop_matvec.wgsl`'s `xs` (16 rows of `k` + [`COOP_MATVEC_XPAD`], in
/// elements of 4 f16), or 2 where the walk is `direct` (nothing staged).
///
/// Every size is a multiple of 16 bytes: in a fused module
/// ([`coop_fused_mlp_source`]) the H200's driver lays the next phase's workgroup arrays
/// right after this one, and the matrix loads of its staged x need 16-byte-aligned rows.
/// With a direct `xs` of one 8-byte element the gate/up phase's x began 8 bytes off and
/// its products were wrong (session 33, lead calls 2–5: logits inf; the same module
/// alone right).
pub fn coop_matvec_xs_len(k: usize, direct: bool) -> usize {
    if direct {
        return 2;
    }
    let ldx = k + COOP_MATVEC_XPAD;
    16 * ldx / 4
}

/// `coop_matvec.wgsl` with its header for a product of inner size `k` (a multiple of 16,
/// of 64 where `kparts` is 4: the workgroup stages 16 rows of it), `input` as x's type,
/// `tiles` (1, 2 or 4) 16-column tiles per subgroup (or per workgroup where `kparts`
/// = 4 subgroups split K) and `walk` (ignored where `kparts` is not 4;
/// `direct` also needs `input` f16, and then nothing is staged).
#[allow(clippy::too_many_arguments)]
pub fn coop_matvec_source(
    k: usize,
    tiles: u32,
    kparts: u32,
    input: StorageType,
    sg: u32,
    walk: CoopWalk,
) -> String {
    let early = walk.early && kparts == 4;
    let direct = early && walk.direct && input == StorageType::F16;
    let xs_len = coop_matvec_xs_len(k, direct);
    let body = if early {
        let (loads, mma) = coop_matvec_walk(k / kparts as usize, tiles, direct);
        COOP_MATVEC
            .source
            .replacen("    // @early_loads\n", &loads, 1)
            .replacen("    // @early_mma\n", &mma, 1)
    } else {
        COOP_MATVEC.source.to_string()
    };
    format!(
        "enable f16;\nenable wgpu_cooperative_matrix;\nalias xtype = {};\nalias otype = {};\nconst KX: u32 = {k}u;\nconst TILES: u32 = {tiles}u;\nconst KPARTS: u32 = {kparts}u;\nconst TPR: u32 = {}u;\nconst XPAD: u32 = {}u;\nconst XS_LEN: u32 = {xs_len}u;\nconst EARLY: u32 = {}u;\nconst DIRECT: u32 = {}u;\n{}{}{}{}{}",
        input.name(),
        if walk.out_f16 { "f16" } else { "f32" },
        (sg / 4).max(1),
        COOP_MATVEC_XPAD,
        u32::from(early),
        u32::from(direct),
        x_binding(direct),
        coop_rope(walk.rope),
        x_registers(k, sg),
        wg_stores(false),
        if walk.rope.is_some() {
            format!("{body}{MATVEC_ROPE_EPILOGUE}{CACHE_SLOT}")
        } else {
            body
        }
    )
}

/// `coop_matvec.wgsl`'s `pairs` binding, ROPE_HD and `rope_epi`: with `rope` (the head
/// dimension) the stored type of `matvec_rope.wgsl` (f16), whose bindings 6–11 move
/// `pairs` to 12, and `rope_epi` calling its `rope_store`; else `pairs` at 6 and a stub.
fn coop_rope(rope: Option<usize>) -> String {
    match rope {
        Some(hd) => format!(
            "alias stype = f16;\nconst ROPE_HD: u32 = {hd}u;\n\
             @group(0) @binding(12) var<storage, read_write> pairs: array<u32>;\n\
             fn rope_epi(t: u32, head: u32, i: u32, a: f32, b: f32) {{\n    \
             _ = rope_store(t, head, i, a, b);\n}}\n"
        ),
        None => "const ROPE_HD: u32 = 32u;\n\
                 @group(0) @binding(6) var<storage, read_write> pairs: array<u32>;\n\
                 fn rope_epi(t: u32, head: u32, i: u32, a: f32, b: f32) {}\n"
            .to_string(),
    }
}

/// `coop_matvec.wgsl`'s x (binding 1) and `xv(row, j)` (its 4-vector j of row `row` as
/// f32, 0 past the row or the rows): 4-vectors of `xtype`, or with `direct` f16 scalars
/// (the A fragments' loads take f16 pointers).
fn x_binding(direct: bool) -> &'static str {
    if direct {
        "@group(0) @binding(1) var<storage, read> xh: array<f16>;\n\
         fn xv(row: u32, j: u32) -> vec4<f32> {\n    \
         if (j < KX / 4u && row < params.n_rows) {\n        \
         let o = row * KX + 4u * j;\n        \
         return vec4<f32>(f32(xh[o]), f32(xh[o + 1u]), f32(xh[o + 2u]), f32(xh[o + 3u]));\n    }\n    \
         return vec4<f32>(0.0);\n}\n"
    } else {
        "@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;\n\
         fn xv(row: u32, j: u32) -> vec4<f32> {\n    \
         if (j < KX / 4u && row < params.n_rows) {\n        \
         return vec4<f32>(x[row * (KX / 4u) + j]);\n    }\n    \
         return vec4<f32>(0.0);\n}\n"
    }
}

/// `coop_matvec.wgsl`'s K walk written out for EARLY 1 over `kq` (a subgroup's share of
/// K, a multiple of 16) and `tiles`: the loads of every B fragment (`wf{tile}_{step}`,
/// spliced before x is staged, so they are in flight during the staging) and the
/// multiply-adds (spliced after the accumulators), whose A fragments come from the staged
/// `xs` or, `direct`, straight from `xh`.
fn coop_matvec_walk(kq: usize, tiles: u32, direct: bool) -> (String, String) {
    let steps = kq / 16;
    let mut loads = String::from("    // Every B fragment first (EARLY 1).\n");
    for j in 0..tiles {
        for st in 0..steps {
            loads.push_str(&format!(
                "    let wf{j}_{st} = coopLoad<coop_mat16x16<f16, B>>(&w[b{j} + {}u], KX);\n",
                16 * st
            ));
        }
    }
    let mut mma = String::new();
    for st in 0..steps {
        let a = if direct {
            format!("&xh[t0 * KX + kb + {}u], KX", 16 * st)
        } else {
            format!("&xs[(kb + {}u) / XSW], LDX / XSW", 16 * st)
        };
        mma.push_str(&format!(
            "    let xa{st} = coopLoadT<coop_mat16x16<f16, A>>({a});\n"
        ));
        for j in 0..tiles {
            mma.push_str(&format!(
                "    c{j} = coopMultiplyAdd(xa{st}, wf{j}_{st}, c{j});\n"
            ));
        }
    }
    (loads, mma)
}

/// f16 of padding at the end of each staged row of x in `coop_matvec.wgsl`: 16 bytes, so
/// that the 16 rows of an A fragment (unpadded, rows K · 2 bytes apart, a multiple of 128
/// for every K here, all on the same banks) start on different banks. Unpadded rows
/// (`MOA_WGPU_COOP_XPAD=0`, deleted in session 14) were slower on the H200: gate/up 8.45–8.83
/// against 8.08 µs (benches/RESULTS.md, wgpu session 13, call 1).
pub const COOP_MATVEC_XPAD: usize = 8;

/// How the matrix-unit decode kernels store their workgroup operands: the element type
/// and width in f16 of `xs` (`xse`, XSW) and of the head's `ws` (`wse`, WSW, with
/// `head`), and their stores `xs_put(o, v)` (4 values at f16 offset `o`, a multiple of 4)
/// and `ws_put(o, v)` (8 f16 packed in a `vec4<u32>`, at `o`, a multiple of 8). Both
/// arrays hold `vec4<f16>`: one 8-byte store for x's 4 values, two for a weight vector,
/// and the matrix loads take offsets and strides in those elements (a cooperative load's
/// stride counts elements of its pointer's type); the head went from 53–56 to 34–47 µs
/// (benches/RESULTS.md, wgpu session 13, call 2) against f16 arrays stored one value at
/// a time (the head's 8 stores a weight vector, 16 bytes apart across a warp, conflict 4
/// ways: ~9 µs of its 66, session 12, call 2), which were deleted in session 14 with
/// `MOA_WGPU_COOP_VSTORE` and the head's one-store diagnostic (DIAG 3). A first form with
/// `u32` vectors (`ws` as the fetched `vec4<u32>`, no conversion) failed NVIDIA's compiler
/// on the H200 ("NVVM compilation failed", the device lost: session 12, call 4): its
/// element type differed from the matrices'; this one keeps f16.
fn wg_stores(head: bool) -> String {
    let mut s = "alias xse = vec4<f16>;\nconst XSW: u32 = 4u;\n\
                 fn xs_put(o: u32, v: vec4<f32>) {\n    xs[o / 4u] = vec4<f16>(v);\n}\n"
        .to_string();
    if head {
        // Unpacked through f32, exact: naga 30 does not take `bitcast<vec2<f16>>` of a u32.
        s.push_str(
            "alias wse = vec4<f16>;\nconst WSW: u32 = 4u;\n\
             fn ws_put(o: u32, v: vec4<u32>) {\n    \
             ws[o / 4u] = vec4<f16>(vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)));\n    \
             ws[o / 4u + 1u] = vec4<f16>(vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)));\n}\n",
        );
    }
    s
}

/// The x staging of the matrix-unit decode kernels in one round trip:
/// `x_all` loads an invocation's ceil(k / 4 / (sg / 4)) 4-vectors of x (through the
/// kernel's `xv`) into named registers, `x_sumsq` sums their squares, `x_put_all` stores
/// them (through the kernel's `xput`), TPR = sg / 4 invocations sharing a row.
fn x_registers(k: usize, sg: u32) -> String {
    let nx = (k / 4).div_ceil((sg as usize / 4).max(1));
    let fields: Vec<String> = (0..nx).map(|m| format!("x{m}: vec4<f32>")).collect();
    let loads: Vec<String> = (0..nx)
        .map(|m| format!("xv(row, p + {m}u * TPR)"))
        .collect();
    let sums: Vec<String> = (0..nx).map(|m| format!("dot(v.x{m}, v.x{m})")).collect();
    let puts: String = (0..nx)
        .map(|m| format!("    xput(r, p + {m}u * TPR, v.x{m}, scale);\n"))
        .collect();
    format!(
        "struct XRegs {{ {} }}\n\
         fn x_all(row: u32, p: u32) -> XRegs {{\n    return XRegs({});\n}}\n\
         fn x_sumsq(v: XRegs) -> f32 {{\n    return {};\n}}\n\
         fn x_put_all(r: u32, p: u32, v: XRegs, scale: f32) {{\n{puts}}}\n",
        fields.join(", "),
        loads.join(", "),
        sums.join(" + "),
    )
}

/// `coop_head.wgsl`: the decode LM head on matrix units with its weights staged through
/// workgroup memory by 16-byte loads (f16 weights, f32 accumulator); its source comes from
/// [`coop_head_source`].
pub const COOP_HEAD: Shader = Shader {
    name: "coop_head.wgsl",
    entry_point: "moa_coop_head",
    source: include_str!("../../shaders/coop_head.wgsl"),
};

/// 16-byte weight vectors each invocation of `coop_head.wgsl` fetches per stage of `ks`
/// weights × 64 columns, with workgroups of 4 subgroups of `sg`.
pub fn coop_head_vectors(ks: usize, sg: u32) -> usize {
    (8 * ks).div_ceil(4 * (sg as usize).max(1))
}

/// The uniforms and bindings 0-6 of both decode LM heads on matrix units
/// (`coop_head.wgsl`, `coop_head_wide.wgsl`), prepended to each by
/// [`coop_head_source`] / [`coop_head_wide_source`]: written once, since
/// `wgpu_engine::record` binds either head the same way. `x` is [rows, K] f32 as 4-vectors,
/// `w` the head's [vocab, K] f16 weights as 16-byte words, `out` [rows, out_stride] f32
/// logits, `norm` the final RMSNorm's \[K\] weights, `pairs` the argmax's first stage
/// ((value, index) per row and workgroup, EPI 1).
pub const COOP_HEAD_INTERFACE: &str = r#"struct Params {
    n_rows: u32,
    k: u32,
    n_out: u32,
    add_residual: u32,
    eps: f32,
    out_stride: u32,
    col_offset: u32,
    // Workgroups of the dispatch (pairs per row, EPI 1).
    blocks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> pairs: array<u32>;
"#;

/// `coop_head.wgsl` with its header for the hidden size `k` (a multiple of 16), stages of
/// `ks` weights (a multiple of 16 dividing `k`), `bpw` blocks of 64 columns a workgroup
/// and subgroups of `sg`: the constants, `fetch_all` / `put_all` over
/// [`coop_head_vectors`] named registers (a struct, unrolled here so that no driver puts
/// them in an indexed array), `x_registers` (x staged in one round trip) and
/// `wg_stores`.
pub fn coop_head_source(k: usize, ks: usize, bpw: u32, sg: u32) -> String {
    let n = coop_head_vectors(ks, sg);
    let fields: Vec<String> = (0..n).map(|m| format!("r{m}: vec4<u32>")).collect();
    let fetches: Vec<String> = (0..n)
        .map(|m| format!("fetch(wx, s, i + {m}u * WG)"))
        .collect();
    let puts: String = (0..n)
        .map(|m| format!("    put(i + {m}u * WG, r.r{m});\n"))
        .collect();
    format!(
        "enable f16;\nenable wgpu_cooperative_matrix;\nconst KX: u32 = {k}u;\nconst KS: u32 = {ks}u;\n\
         const BPW: u32 = {bpw}u;\nconst SG: u32 = {sg}u;\nconst TPR: u32 = {}u;\n\
         struct Regs {{ {} }}\n\
         fn fetch_all(wx: u32, s: u32, i: u32) -> Regs {{\n    return Regs({});\n}}\n\
         fn put_all(i: u32, r: Regs) {{\n{puts}}}\n{}{}{COOP_HEAD_INTERFACE}{}",
        (sg / 4).max(1),
        fields.join(", "),
        fetches.join(", "),
        x_registers(k, sg),
        wg_stores(true),
        COOP_HEAD.source
    )
}

/// `coop_head_wide.wgsl`: the decode LM head in workgroups of 16 subgroups
/// (`MOA_WGPU_COOP_HEAD_WIDE`, session 36); its source comes from [`coop_head_wide_source`].
pub const COOP_HEAD_WIDE: Shader = Shader {
    name: "coop_head_wide.wgsl",
    entry_point: "moa_coop_head_wide",
    source: include_str!("../../shaders/coop_head_wide.wgsl"),
};

/// The stage width of `coop_head_wide.wgsl` for K = `k` on subgroups of `sg`: the widest
/// multiple of 64 dividing K, at most 192 (a quarter of a stage is whole 16-wide fragments;
/// 24 KB of weights a stage), where its workgroup memory ([`coop_head_wide_bytes`]) fits
/// `limit` and a subgroup's A fragments (K / 64 of them, 4 registers each on 32 lanes)
/// stay at most 16; `None` where none fits.
pub fn coop_head_wide_stage(k: usize, sg: u32, limit: u64) -> Option<usize> {
    if k / 64 > 16 || !(8..=64).contains(&sg) {
        return None;
    }
    [192usize, 128, 64]
        .into_iter()
        .find(|&ks| k.is_multiple_of(ks) && coop_head_wide_bytes(k, ks) <= limit)
}

/// `vec4<f16>` elements of `coop_head_wide.wgsl`'s `ws` (x of 16 rows first, then one
/// stage of 64 weight rows, rows padded by 8 f16), even so that it is a multiple of 16 bytes.
fn coop_head_wide_ws(k: usize, ks: usize) -> usize {
    (16 * (k + 8)).max(64 * (ks + 8)).div_ceil(8) * 2
}

/// Workgroup memory of `coop_head_wide.wgsl` for K = `k` and stages of `ks`: `ws` and the
/// 16 f32 tiles of 16 × 16.
pub fn coop_head_wide_bytes(k: usize, ks: usize) -> u64 {
    (8 * coop_head_wide_ws(k, ks) + 16 * 1024) as u64
}

/// `coop_head_wide.wgsl` with its header for the hidden size `k`, stages of `ks` (from
/// [`coop_head_wide_stage`]), `bpw` blocks of 64 columns a workgroup and subgroups of
/// `sg` (workgroups of 16 · sg): the constants, `fetch_all` / `put_all` over a stage's
/// ceil(64 · ks / 8 / (16 · sg)) registers, `x_registers` with a row of x a subgroup,
/// and the entry point's pieces written out: each of the SPB = k / ks stages of a block
/// on its own register set (refilled with the next block's stage right after it is
/// stored), the A fragments of the subgroup's K quarters as named values.
pub fn coop_head_wide_source(k: usize, ks: usize, bpw: u32, sg: u32) -> String {
    let wg = 16 * sg as usize;
    let n = (64 * ks / 8).div_ceil(wg);
    let spb = k / ks;
    let nf = ks / 64;
    let fields: Vec<String> = (0..n).map(|m| format!("r{m}: vec4<u32>")).collect();
    let fetches: Vec<String> = (0..n)
        .map(|m| format!("fetch(wx, s, i + {m}u * WG)"))
        .collect();
    let puts: String = (0..n)
        .map(|m| format!("    put(i + {m}u * WG, r.r{m});\n"))
        .collect();
    let first: String = (0..spb)
        .map(|st| format!("var ra{st} = fetch_all(wid.x, {st}u, i);\n    "))
        .collect();
    let mut a_loads = String::new();
    let mut stages = String::new();
    for st in 0..spb {
        stages.push_str(&format!(
            "workgroupBarrier();\n        put_all(i, ra{st});\n        workgroupBarrier();\n        \
             if (b + 1u < BPW) {{\n            ra{st} = fetch_all(wid.x, (b + 1u) * SPB + {st}u, i);\n        }}\n        "
        ));
        for j in 0..nf {
            let a = st * nf + j;
            a_loads.push_str(&format!(
                "let a{a} = coopLoadT<coop_mat16x16<f16, A>>(&ws[({st}u * KS + q * KQ + {o}u) / 4u], LDX / 4u);\n    ",
                o = 16 * j
            ));
            stages.push_str(&format!(
                "c = coopMultiplyAdd(a{a}, coopLoad<coop_mat16x16<f16, B>>(&ws[(ct * 16u * LDS + q * KQ + {o}u) / 4u], LDS / 4u), c);\n        ",
                o = 16 * j
            ));
        }
    }
    let body = COOP_HEAD_WIDE
        .source
        .replacen("FIRST_FETCHES", first.trim_end(), 1)
        .replacen("A_LOADS", a_loads.trim_end(), 1)
        .replacen("STAGES", stages.trim_end(), 1);
    format!(
        "enable f16;\nenable wgpu_cooperative_matrix;\nconst KX: u32 = {k}u;\nconst KS: u32 = {ks}u;\n\
         const SPB: u32 = {spb}u;\nconst BPW: u32 = {bpw}u;\nconst SG: u32 = {sg}u;\nconst TPR: u32 = {sg}u;\n\
         const WSN: u32 = {}u;\n\
         struct Regs {{ {} }}\n\
         fn fetch_all(wx: u32, s: u32, i: u32) -> Regs {{\n    return Regs({});\n}}\n\
         fn put_all(i: u32, r: Regs) {{\n{puts}}}\n{}{COOP_HEAD_INTERFACE}{body}",
        coop_head_wide_ws(k, ks),
        fields.join(", "),
        fetches.join(", "),
        x_registers(k, 4 * sg),
    )
}

/// Parses and validates a WGSL source with naga; the error is rendered with spans.
pub fn validate_wgsl(name: &str, source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{name}: {}", e.emit_to_string(source)))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| format!("{name}: {}", e.emit_to_string(source)))?;
    Ok(())
}

/// The decode's output and gate/up products in ONE dispatch (`MOA_WGPU_DECODE_FUSED_MLP`,
/// an opt-in prototype of issue 12's persistent decode, session 32): `phases` are
/// [`coop_matvec_source`] modules with their `INPUT_MODE` and `EPI`; phase `i`'s module
/// is copied with every module-scope name prefixed `p{i}_`, its overrides made constants
/// (`SG` = `sg`), its bindings moved up by `8 · i` and its x / residual bindings made
/// writable (a buffer one phase writes is another's input: wgpu refuses one buffer bound
/// read-only and writable in one dispatch), and its entry point made a function of the
/// tile (`wid`). The entry point `moa_fused_mlp` runs each phase's tiles
/// (`fuse.grid[i]` = x, y of the separate dispatch's grid) on `fuse.nw` workgroups (all
/// resident: the host keeps it at most one a multiprocessor), the workgroups meeting
/// between phases at `ctl.arrive` (a device-wide barrier: `examples/wgpu_gbar.rs`,
/// benches/RESULTS.md "WGSL decode, session 32 (branch s32-gbar)"): lane 0 adds 1 and
/// spins with `atomicLoad` until the count reaches the next multiple of `nw` (the counter
/// is never reset: each meeting of `nw` arrivals is one generation; it wraps after 2^32
/// arrivals, ≈ 10^6 decode steps at 96 workgroups and 30 layers), at most `fuse.spin`
/// loads; past it `ctl.flag` is set and the workgroup goes on (wrong values, no hang).
/// Inputs read after a meeting are plain loads of lines no multiprocessor read earlier
/// in the dispatch (lead call 3: such loads are right; re-read lines were stale).
///
/// Phase `i ≥ 1` reads its x (f32) through phase `i − 1`'s `out` variable, not through a
/// binding of its own on the same buffer: SPIR-V lets a driver assume two storage
/// bindings never alias, and with x bound separately the H200's driver read values the
/// phase before had not written (session 33, lead call 2: logits inf even with one
/// workgroup, whose meeting is trivial; the same modules as separate dispatches right).
/// A phase `i ≥ 1` with a direct walk (f16 `xh`) reads phase `i − 1`'s `out`, which must
/// hold f16 (`CoopWalk::out_f16`); a phase's residual can be another phase's f32 `out`
/// (`Some(j)`, the 4th field), read through that phase's variable likewise (s33-mega).
/// The meeting's workgroup words are `vec4<u32>`: every workgroup variable is a multiple
/// of 16 bytes, so each phase's staged x stays 16-byte aligned whatever order the driver
/// lays them out in (u32 words put the gate/up phase's x 8 bytes off on the H200: the
/// inf of session 33's lead call 1).
///
/// `form` (session 34, s34-fuse): `meet` is the meeting's form (`fused_meet`); `x4`
/// declares a phase's `out` as 4-vectors where the next phase reads it as x (one 16-byte
/// load a 4-vector, as the separate product reads its binding, instead of four scalar
/// loads; its stores write one component).
/// `Err` names a phase whose module lacks the expected x declaration.
pub fn coop_fused_mlp_source(
    phases: &[(String, u32, u32, Option<usize>)],
    sg: u32,
    form: FusedForm,
) -> Result<String, String> {
    let mut out = String::from("enable f16;\nenable wgpu_cooperative_matrix;\n");
    let last = phases.len().saturating_sub(1);
    // Phases whose `out` is the next phase's f32 x as 4-vectors (`form.x4`): not where a
    // phase takes its residual from it (read as scalars).
    let x4: Vec<bool> = (0..phases.len())
        .map(|i| {
            form.x4
                && i + 1 < phases.len()
                && phases[i].0.contains("alias otype = f32;")
                && !phases[i + 1]
                    .0
                    .contains("var<storage, read> xh: array<f16>;")
                && !phases.iter().any(|p| p.3 == Some(i))
        })
        .collect();
    for (i, (src, mode, epi, residual_from)) in phases.iter().enumerate() {
        let mut src = if i == 0 {
            src.clone()
        } else if src.contains("var<storage, read> xh: array<f16>;") {
            // A direct walk (session 33, the down phase): its A fragments and `xv` read
            // phase i - 1's `out`, which must hold f16 (`CoopWalk::out_f16`).
            let decl = "@group(0) @binding(1) var<storage, read> xh: array<f16>;\n";
            if !src.contains(decl) || !phases[i - 1].0.contains("alias otype = f16;") {
                return Err(format!(
                    "fused phase {i}: a direct walk needs phase {} to write f16",
                    i - 1
                ));
            }
            rename_word(&src.replacen(decl, "", 1), "xh", &format!("p{}_out", i - 1))
        } else {
            let (decl, read) = (
                "@group(0) @binding(1) var<storage, read> x: array<vec4<xtype>>;\n",
                "return vec4<f32>(x[row * (KX / 4u) + j]);",
            );
            if !src.contains(decl) || !src.contains(read) || !src.contains("alias xtype = f32;") {
                return Err(format!(
                    "fused phase {i}: its module does not read an f32 x through binding 1"
                ));
            }
            let prev = format!("p{}_out", i - 1);
            let with = if x4[i - 1] {
                format!("return vec4<f32>({prev}[row * (KX / 4u) + j]);")
            } else {
                format!(
                    "let o = 4u * (row * (KX / 4u) + j);\n        \
                     return vec4<f32>(f32({prev}[o]), f32({prev}[o + 1u]), f32({prev}[o + 2u]), f32({prev}[o + 3u]));"
                )
            };
            src.replacen(decl, "", 1).replacen(read, &with, 1)
        };
        if x4[i] {
            // `out` as 4-vectors: each store writes one component.
            let stores = [
                (
                    "var<storage, read_write> out: array<otype>;",
                    "var<storage, read_write> out: array<vec4<otype>>;",
                ),
                ("out[o] = otype(v);", "out[o / 4u][o % 4u] = otype(v);"),
                (
                    "out[t * params.out_stride + n] = otype(",
                    "out[(t * params.out_stride + n) / 4u][(t * params.out_stride + n) % 4u] = otype(",
                ),
            ];
            for (from, _) in &stores {
                if !src.contains(from) {
                    return Err(format!("fused phase {i}: its module lacks `{from}`"));
                }
            }
            for (from, to) in &stores {
                src = src.replace(from, to);
            }
        }
        // The residual from another phase's `out` (f32; an earlier phase's result, or the
        // buffer a later phase rewrites), through that phase's variable (one binding a
        // buffer the dispatch writes, as x above).
        if let Some(j) = *residual_from {
            let decl = "@group(0) @binding(3) var<storage, read> residual: array<f32>;\n";
            if j == i
                || j >= phases.len()
                || !src.contains(decl)
                || !phases[j].0.contains("alias otype = f32;")
            {
                return Err(format!(
                    "fused phase {i}: its residual cannot come from phase {j}'s f32 output"
                ));
            }
            src = rename_word(&src.replacen(decl, "", 1), "residual", &format!("p{j}_out"));
        }
        let body = src
            .replacen("enable f16;\nenable wgpu_cooperative_matrix;\n", "", 1)
            .replacen("override SG: u32 = 32u;", &format!("const SG: u32 = {sg}u;"), 1)
            .replacen(
                "override INPUT_MODE: u32 = 1u;",
                &format!("const INPUT_MODE: u32 = {mode}u;"),
                1,
            )
            .replacen("override EPI: u32 = 0u;", &format!("const EPI: u32 = {epi}u;"), 1)
            .replacen(
                "@compute @workgroup_size(4u * SG)\nfn moa_coop_matvec(\n    @builtin(workgroup_id) wid: vec3<u32>,\n    @builtin(subgroup_id) sg: u32,\n    @builtin(subgroup_invocation_id) lane: u32,\n)",
                "fn moa_coop_matvec(wid: vec3<u32>, sg: u32, lane: u32)",
                1,
            )
            .replace(
                "@binding(1) var<storage, read>",
                "@binding(1) var<storage, read_write>",
            )
            .replace(
                "@binding(3) var<storage, read>",
                "@binding(3) var<storage, read_write>",
            );
        let body = rebind(&body, 8 * i as u32);
        out.push_str(&prefix_names(&body, &format!("p{i}_")));
    }
    let calls: String = (0..phases.len())
        .map(|i| {
            let meet = if i < last { "    meet(lid);\n" } else { "" };
            format!(
                "    for (var q = wid.x; q < fuse.grid[{i}].x * fuse.grid[{i}].y; q += fuse.nw) {{\n        \
                 p{i}_moa_coop_matvec(vec3<u32>(q % fuse.grid[{i}].x, q / fuse.grid[{i}].x, 0u), sg, lane);\n        \
                 workgroupBarrier();\n    }}\n{meet}"
            )
        })
        .collect();
    out.push_str(&format!(
        "struct FuseParams {{ grid: array<vec4<u32>, 4>, nw: u32, spin: u32, pad0: u32, pad1: u32 }}\n\
         struct FuseCtl {{ arrive: atomic<u32>, flag: atomic<u32> }}\n\
         @group(0) @binding(30) var<uniform> fuse: FuseParams;\n\
         @group(0) @binding(31) var<storage, read_write> ctl: FuseCtl;\n\
         var<workgroup> fuse_abort: vec4<u32>;\n\
         var<workgroup> fuse_goal: vec4<u32>;\n\
         {meet_fn}\
         @compute @workgroup_size({wg})\n\
         fn moa_fused_mlp(\n    @builtin(workgroup_id) wid: vec3<u32>,\n    \
         @builtin(subgroup_id) sg: u32,\n    @builtin(subgroup_invocation_id) lane: u32,\n    \
         @builtin(local_invocation_index) lid: u32,\n) {{\n{calls}}}\n",
        wg = 4 * sg,
        meet_fn = fused_meet(form.meet),
    ));
    Ok(out)
}

/// How [`coop_fused_mlp_source`] builds its dispatch (session 34, s34-fuse): the meeting's
/// form and whether x passes as 4-vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedForm {
    /// `fused_meet`'s form (`MOA_WGPU_DECODE_FUSED_MEET`).
    pub meet: u32,
    /// A phase's output read by the next as 4-vectors (the engine's form since session 34;
    /// `false`: four scalar loads, the form of the down phase's test).
    pub x4: bool,
}

impl Default for FusedForm {
    fn default() -> Self {
        FusedForm { meet: 1, x4: false }
    }
}

/// The fused dispatch's `meet(lid)` ([`coop_fused_mlp_source`]). `0` (session 32): lane 0
/// adds and spins alone while the workgroup waits at a barrier. `1` (session 33, the
/// default): lane 0 adds and each spin's load is shared through workgroup memory, so every
/// invocation runs the same loop and leaves it together (no invocation diverged past the
/// meeting). Both are right and equally fast on the H200 (s33-mega); form 1 was written
/// while the wrong products were still unexplained (lead call 7) and kept as the form
/// that asks least of the driver's reconvergence.
fn fused_meet(meet: u32) -> &'static str {
    match meet {
        0 => {
            "fn meet(lid: u32) {\n    \
              storageBarrier();\n    workgroupBarrier();\n    \
              if (lid == 0u) {\n        \
              let old = atomicAdd(&ctl.arrive, 1u);\n        \
              let goal = (old / fuse.nw + 1u) * fuse.nw;\n        \
              var n = 0u;\n        \
              loop {\n            \
              if (atomicLoad(&ctl.arrive) - goal < 0x80000000u) { break; }\n            \
              n += 1u;\n            \
              if (n >= fuse.spin) { atomicStore(&ctl.flag, 1u); break; }\n            \
              if ((n & 63u) == 0u && atomicLoad(&ctl.flag) != 0u) { break; }\n        \
              }\n    }\n    \
              _ = workgroupUniformLoad(&fuse_abort);\n}\n"
        }
        _ => {
            "fn meet(lid: u32) {\n    \
              storageBarrier();\n    workgroupBarrier();\n    \
              if (lid == 0u) {\n        \
              let old = atomicAdd(&ctl.arrive, 1u);\n        \
              fuse_goal.x = (old / fuse.nw + 1u) * fuse.nw;\n    }\n    \
              let goal = workgroupUniformLoad(&fuse_goal).x;\n    \
              var n = 0u;\n    \
              loop {\n        \
              if (lid == 0u) {\n            \
              let met = atomicLoad(&ctl.arrive) - goal < 0x80000000u;\n            \
              let failed = (n & 63u) == 63u && atomicLoad(&ctl.flag) != 0u;\n            \
              fuse_abort.x = select(0u, 1u, met || failed);\n        }\n        \
              let done = workgroupUniformLoad(&fuse_abort).x;\n        \
              workgroupBarrier();\n        \
              if (done != 0u) { break; }\n        \
              n += 1u;\n        \
              if (n >= fuse.spin) {\n            \
              if (lid == 0u) { atomicStore(&ctl.flag, 1u); }\n            \
              break;\n        }\n    }\n}\n"
        }
    }
}

/// `src` with every whole word `word` (not after `.`: a member keeps its name) replaced
/// by `with`.
fn rename_word(src: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(src.len() + 256);
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let w = &src[start..i];
            let after_dot = start > 0 && b[start - 1] == b'.';
            out.push_str(if w == word && !after_dot { with } else { w });
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `src` with every `@binding(n)` moved to `@binding(n + by)`.
fn rebind(src: &str, by: u32) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("@binding(") {
        let (head, tail) = rest.split_at(at + "@binding(".len());
        out.push_str(head);
        let end = tail.find(')').unwrap_or(0);
        match tail[..end].trim().parse::<u32>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `src` (a WGSL module) with every name it declares at module scope (`fn`, `const`,
/// `var`, `struct`, `alias`, `override` at the start of a line, bindings included)
/// prefixed by `prefix` wherever it appears as a name (not after `.`: members keep
/// theirs).
fn prefix_names(src: &str, prefix: &str) -> String {
    let mut names = std::collections::HashSet::new();
    for line in src.lines() {
        let l = if line.starts_with('@') {
            match line.find("var") {
                Some(at) => &line[at..],
                None => continue,
            }
        } else {
            line
        };
        let decl = ["fn ", "const ", "struct ", "alias ", "override ", "var "]
            .iter()
            .find_map(|k| l.strip_prefix(k))
            .or_else(|| {
                l.strip_prefix("var<")
                    .and_then(|r| r.split_once("> ").map(|x| x.1))
            });
        if let Some(d) = decl {
            let name: String = d
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    let mut out = String::with_capacity(src.len() + 1024);
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &src[start..i];
            let after_dot = start > 0 && b[start - 1] == b'.';
            if !c.is_ascii_digit() && !after_dot && names.contains(word) {
                out.push_str(prefix);
            }
            out.push_str(word);
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shader_validates_for_every_type_combination() {
        let types = [StorageType::F32, StorageType::F16];
        for shader in ALL {
            for w in types {
                for x in types {
                    for a in types {
                        let t = Types {
                            weights: w,
                            input: x,
                            attention: a,
                        };
                        if let Err(e) = validate_wgsl(shader.name, &shader.source(t)) {
                            panic!("{e}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_cooperative_matrix_product_validates_for_every_input_and_accumulator() {
        let types = [StorageType::F32, StorageType::F16];
        for input in types {
            for acc in types {
                let source = coop_linear_source(input, acc);
                if let Err(e) = validate_wgsl(COOP_LINEAR.name, &source) {
                    panic!("input {input:?}, accumulator {acc:?}: {e}");
                }
            }
        }
    }

    /// SPIR-V of `source`'s compute entry point `entry` with the `constants` overrides
    /// resolved, as wgpu's Vulkan back end writes it (validated with every capability:
    /// no adapter here offers cooperative matrices). Errors: naga's SPIR-V writer's.
    #[cfg(target_os = "linux")]
    fn spirv_words(
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Vec<u32>, naga::back::spv::Error> {
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap();
        let constants: naga::back::PipelineConstants = constants
            .iter()
            .map(|&(name, value)| (name.to_string(), value))
            .collect();
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((naga::ShaderStage::Compute, entry)),
            &constants,
        )
        .unwrap();
        let options = naga::back::spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &options, None)
    }

    /// The matrix-unit decode products: validated, their overrides resolved and SPIR-V
    /// written for every tile count, K split, input type and epilogue (no adapter here
    /// offers the feature; the device checks them at start-up and against the CPU
    /// reference in its runs).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_matrix_unit_products_validate_and_translate_to_spirv() {
        for (tiles, kparts, input) in [
            (1, 1, StorageType::F32),
            (2, 1, StorageType::F32),
            (4, 1, StorageType::F32),
            (1, 4, StorageType::F16),
            (2, 4, StorageType::F32),
        ] {
            let early = CoopWalk {
                early: true,
                ..CoopWalk::default()
            };
            let direct = CoopWalk {
                direct: true,
                ..early
            };
            for walk in [CoopWalk::default(), early, direct] {
                let source = coop_matvec_source(576, tiles, kparts, input, 32, walk);
                validate_wgsl(COOP_MATVEC.name, &source).unwrap_or_else(|e| panic!("{e}"));
                for (mode, epi) in [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (1.0, 2.0)] {
                    let constants = [("SG", 32.0), ("INPUT_MODE", mode), ("EPI", epi)];
                    let words = spirv_words(&source, COOP_MATVEC.entry_point, &constants)
                        .unwrap_or_else(|e| panic!("tiles {tiles} kparts {kparts} {walk:?}: {e}"));
                    assert!(words.len() > 100);
                }
            }
        }
        // Direct: nothing staged, xs of two elements (16 bytes: see coop_matvec_xs_len).
        assert_eq!(coop_matvec_xs_len(576, true), 2);
        // Every xs a multiple of 16 bytes, so a fused module's next phase stays aligned.
        for k in [64, 576, 1536, 2048, 4096, 8192] {
            for direct in [false, true] {
                assert_eq!(coop_matvec_xs_len(k, direct) * 8 % 16, 0, "k {k}");
            }
        }
        // The QKV product with RoPE + the cache write (EPI 3): `matvec_rope.wgsl`'s
        // bindings 6–11, `pairs` at 12, head_dim 64 and 128.
        for hd in [64, 128] {
            let rope = CoopWalk {
                early: true,
                rope: Some(hd),
                ..CoopWalk::default()
            };
            let source = coop_matvec_source(576, 2, 4, StorageType::F32, 32, rope);
            validate_wgsl(COOP_MATVEC.name, &source).unwrap_or_else(|e| panic!("{e}"));
            let constants = [("SG", 32.0), ("INPUT_MODE", 1.0), ("EPI", 3.0)];
            let words = spirv_words(&source, COOP_MATVEC.entry_point, &constants)
                .unwrap_or_else(|e| panic!("rope {hd}: {e}"));
            assert!(words.len() > 100);
        }
    }

    /// The subgroup products' timing diagnostics (`DIAG` 1 to 5, `MOA_WGPU_SG_DIAG`) resolve
    /// and translate to SPIR-V for every entry point, as the device builds them.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_subgroup_product_diagnostics_translate_to_spirv() {
        let t = Types {
            weights: StorageType::F16,
            input: StorageType::F32,
            attention: StorageType::F16,
        };
        for shader in [MATVEC_SG, MATVEC_SG_ROPE, MATVEC_SG_SWIGLU_OUT] {
            for diag in [1.0, 2.0, 3.0, 4.0, 5.0] {
                let constants = [
                    ("INPUT_MODE", 1.0),
                    ("SG", 32.0),
                    ("KSPLIT", 4.0),
                    ("WG", 256.0),
                    ("DIAG", diag),
                ];
                let words = spirv_words(&shader.source(t), shader.entry_point, &constants)
                    .unwrap_or_else(|e| panic!("{} DIAG {diag}: {e}", shader.entry_point));
                assert!(words.len() > 100);
            }
        }
    }

    /// The epilogue's loads before the K loop (`EARLY` 1, `MOA_WGPU_SG_EARLY`'s default)
    /// and after it (0) validate and translate to SPIR-V for every entry point, both
    /// inputs, the K loop and 1 to 3 fitted steps, every rows a workgroup row.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_early_and_late_epilogue_loads_translate_to_spirv() {
        for input in [StorageType::F32, StorageType::F16] {
            let t = Types {
                weights: StorageType::F16,
                input,
                attention: StorageType::F16,
            };
            for shader in [MATVEC_SG, MATVEC_SG_ROPE, MATVEC_SG_SWIGLU_OUT] {
                let source = shader.source(t);
                validate_wgsl(shader.name, &source).unwrap_or_else(|e| panic!("{e}"));
                for (early, steps, rg) in [
                    (0.0, 2.0, 2.0),
                    (1.0, 2.0, 2.0),
                    (1.0, 3.0, 4.0),
                    (1.0, 1.0, 1.0),
                    (1.0, 0.0, 4.0),
                ] {
                    let constants = [
                        ("INPUT_MODE", 1.0),
                        ("SG", 32.0),
                        ("KSPLIT", 6.0),
                        ("GROUPS", 1.0),
                        ("WG", 192.0),
                        ("ROW_GROUPS", rg),
                        ("STEPS", steps),
                        ("EARLY", early),
                    ];
                    let words = spirv_words(&source, shader.entry_point, &constants)
                        .unwrap_or_else(|e| {
                            panic!("{} STEPS {steps} EARLY {early}: {e}", shader.entry_point)
                        });
                    assert!(words.len() > 100);
                }
            }
        }
    }

    /// The staged matrix-unit LM head: validated and SPIR-V written for both epilogues at
    /// the stage widths and blocks a workgroup the engine picks (SmolLM2's K = 576 and a
    /// 2048 one), subgroups of 32 and 64.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_staged_matrix_unit_head_validates_and_translates_to_spirv() {
        for (k, ks, bpw, sg) in [
            (576, 192, 2, 32),
            (576, 144, 1, 32),
            (576, 96, 3, 64),
            (2048, 128, 2, 32),
        ] {
            let source = coop_head_source(k, ks, bpw, sg);
            validate_wgsl(COOP_HEAD.name, &source).unwrap_or_else(|e| panic!("{e}"));
            for (epi, diag) in [
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 1.0),
                (1.0, 2.0),
                (0.0, 3.0),
                (1.0, 4.0),
            ] {
                let constants = [("EPI", epi), ("DIAG", diag)];
                let words = spirv_words(&source, COOP_HEAD.entry_point, &constants)
                    .unwrap_or_else(|e| panic!("k {k} ks {ks} bpw {bpw} sg {sg} DIAG {diag}: {e}"));
                assert!(words.len() > 100);
            }
        }
    }

    /// The head in workgroups of 16 subgroups (`coop_head_wide.wgsl`, session 36) validates
    /// and translates to SPIR-V at SmolLM2's K (576: stages of 192, 3 a block), at K 960
    /// (SmolLM2-360M: stages of 192, 5 a block) and K 256 (stages of 128), subgroups of 32
    /// and 16, both epilogues; its workgroup memory fits the H200's 48 KB at K 576, and
    /// no stage is chosen where a subgroup's A fragments would pass 16.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_wide_matrix_unit_head_validates_and_translates_to_spirv() {
        assert_eq!(coop_head_wide_stage(576, 32, 49152), Some(192));
        assert!(coop_head_wide_bytes(576, 192) <= 49152);
        assert_eq!(coop_head_wide_stage(2048, 32, 49152), None);
        for (k, bpw, sg) in [(576, 6, 32), (576, 1, 16), (960, 3, 32), (256, 2, 32)] {
            let ks = coop_head_wide_stage(k, sg, 49152).expect("a stage fits");
            let source = coop_head_wide_source(k, ks, bpw, sg);
            validate_wgsl(COOP_HEAD_WIDE.name, &source).unwrap_or_else(|e| panic!("{e}"));
            for epi in [0.0, 1.0] {
                let words = spirv_words(&source, COOP_HEAD_WIDE.entry_point, &[("EPI", epi)])
                    .unwrap_or_else(|e| panic!("k {k} ks {ks} bpw {bpw} sg {sg} EPI {epi}: {e}"));
                assert!(words.len() > 100);
            }
        }
    }

    /// What the Vulkan back end will do with it (no adapter here offers the feature):
    /// the subgroup size override resolved, then SPIR-V written.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_cooperative_matrix_product_translates_to_spirv() {
        for acc in [StorageType::F32, StorageType::F16] {
            for input in [StorageType::F32, StorageType::F16] {
                for (sg, direct) in [
                    (16.0, 1.0),
                    (32.0, 0.0),
                    (32.0, 1.0),
                    (32.0, 2.0),
                    (64.0, 1.0),
                ] {
                    // SWIGLU 1: the gate/up product with SwiGLU in its epilogue (s29).
                    for (diag, swiglu) in
                        [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (0.0, 1.0)]
                    {
                        let source = coop_linear_source(input, acc);
                        let constants = [
                            ("SG", sg),
                            ("DIAG", diag),
                            ("DIRECT", direct),
                            ("SWIGLU", swiglu),
                        ];
                        let words = spirv_words(&source, COOP_LINEAR.entry_point, &constants)
                            .unwrap_or_else(|e| {
                                panic!(
                                    "accumulator {acc:?} sg {sg} DIAG {diag} SWIGLU {swiglu}: {e}"
                                )
                            });
                        assert!(words.len() > 100);
                    }
                }
            }
        }
    }

    /// The fused output → gate/up dispatch (`coop_fused_mlp_source`) of the phases the
    /// engine builds (the direct output product, then the gate/up product with RMSNorm
    /// and SwiGLU) validates and lowers to SPIR-V, at subgroups of 32 and 64.
    #[test]
    fn the_fused_mlp_dispatch_validates() {
        let early = CoopWalk {
            early: true,
            ..CoopWalk::default()
        };
        let direct = CoopWalk {
            direct: true,
            ..early
        };
        for sg in [32, 64] {
            let phases = [
                (
                    coop_matvec_source(576, 1, 4, StorageType::F16, sg, direct),
                    0,
                    0,
                    None,
                ),
                (
                    coop_matvec_source(576, 2, 4, StorageType::F32, sg, early),
                    1,
                    2,
                    None,
                ),
            ];
            // Meeting form 0 (lane 0 spins alone) validates too.
            let m0 = FusedForm {
                meet: 0,
                ..FusedForm::default()
            };
            let source = coop_fused_mlp_source(&phases, sg, m0).unwrap();
            validate_wgsl("fused mlp", &source).unwrap_or_else(|e| panic!("{e}"));
            let source = coop_fused_mlp_source(&phases, sg, FusedForm::default()).unwrap();
            workgroup_vars_are_16_byte_multiples(&source);
            assert!(source.contains("p1_moa_coop_matvec") && source.contains("@binding(12)"));
            // Phase 1 reads phase 0's output through phase 0's variable, not a binding.
            assert!(!source.contains("@binding(9)") && source.contains("p0_out[o + 3u]"));
            validate_wgsl("fused mlp", &source).unwrap_or_else(|e| panic!("{e}"));
            let words = spirv_words(&source, "moa_fused_mlp", &[])
                .unwrap_or_else(|e| panic!("sg {sg}: {e}"));
            assert!(words.len() > 100);
            // Session 34 (s34-fuse): x passed as 4-vectors (x4), with both meeting forms.
            for meet in [0, 1] {
                let form = FusedForm { meet, x4: true };
                let source = coop_fused_mlp_source(&phases, sg, form).unwrap();
                let what = format!("sg {sg} {form:?}");
                validate_wgsl("fused mlp", &source).unwrap_or_else(|e| panic!("{what}: {e}"));
                workgroup_vars_are_16_byte_multiples(&source);
                assert_eq!(source.matches("    meet(lid);").count(), 1, "{what}");
                assert!(
                    source.contains("p0_out: array<vec4<p0_otype>>")
                        && source.contains("return vec4<f32>(p0_out[row * (p1_KX / 4u) + j]);")
                        && source.contains("p0_out[o / 4u][o % 4u] = p0_otype(v);")
                        && !source.contains("p0_out[o + 3u]"),
                    "{what}"
                );
                let words = spirv_words(&source, "moa_fused_mlp", &[])
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(words.len() > 100);
            }
        }
    }

    /// Every workgroup variable of a fused module is a multiple of 16 bytes, so the
    /// staged x of every phase starts 16-byte aligned whatever order the driver lays the
    /// variables out in (the matrix loads of a staged A need it). Session 33: a direct
    /// `xs` of 8 bytes, then the meeting's two u32 words, put the gate/up phase's x 8
    /// bytes off on the H200 (logits inf; that phase right in a module of its own).
    fn workgroup_vars_are_16_byte_multiples(source: &str) {
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let mut n = 0;
        for (_, v) in module.global_variables.iter() {
            if v.space == naga::AddressSpace::WorkGroup {
                let size = module.types[v.ty].inner.size(module.to_ctx());
                assert_eq!(size % 16, 0, "{:?}: {size} bytes", v.name);
                n += 1;
            }
        }
        assert!(n >= 4, "{n} workgroup variables");
    }

    /// The fused dispatch with the down product as a third phase (the module of s33-mega's
    /// `MOA_WGPU_DECODE_FUSED_DOWN=1`, right on the H200 and slower, removed: the
    /// composition's pieces stay for another down phase): the gate/up phase writes f16, the down
    /// phase's direct walk loads its A fragments from that output and its residual from
    /// the output phase's, both through the earlier phases' variables (no bindings 17,
    /// 19); it validates and lowers to SPIR-V at subgroups of 32 and 64 (SmolLM2's K:
    /// 576 and ffn 1 536). A direct phase after an f32 output, or a residual from a later
    /// phase, is refused.
    #[test]
    fn the_fused_mlp_dispatch_with_down_validates() {
        let early = CoopWalk {
            early: true,
            ..CoopWalk::default()
        };
        let direct = CoopWalk {
            direct: true,
            ..early
        };
        let f16_out = CoopWalk {
            out_f16: true,
            ..early
        };
        for sg in [32, 64] {
            let out = coop_matvec_source(576, 1, 4, StorageType::F16, sg, direct);
            let gate_up = coop_matvec_source(576, 2, 4, StorageType::F32, sg, f16_out);
            let down = coop_matvec_source(1536, 1, 4, StorageType::F16, sg, direct);
            assert!(gate_up.contains("alias otype = f16;") && out.contains("alias otype = f32;"));
            let phases = [
                (out.clone(), 0, 0, Some(2)),
                (gate_up.clone(), 1, 2, None),
                (down.clone(), 0, 0, Some(0)),
            ];
            let source = coop_fused_mlp_source(&phases, sg, FusedForm::default()).unwrap();
            assert!(source.contains("p2_moa_coop_matvec") && source.contains("@binding(20)"));
            for b in [3, 9, 17, 19] {
                assert!(!source.contains(&format!("@binding({b})")), "binding {b}");
            }
            assert!(source.contains("&p1_out[t0 * p2_KX") && source.contains("v += p0_out[o];"));
            assert!(source.contains("v += p2_out[o];"));
            validate_wgsl("fused mlp down", &source).unwrap_or_else(|e| panic!("{e}"));
            let words = spirv_words(&source, "moa_fused_mlp", &[])
                .unwrap_or_else(|e| panic!("sg {sg}: {e}"));
            assert!(words.len() > 100);
            workgroup_vars_are_16_byte_multiples(&source);
            // The bindings `record.rs` binds for this module (wgpu derives the layout from
            // the module: a binding bound and not declared fails validation).
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            let mut bound: Vec<u32> = module
                .global_variables
                .iter()
                .filter_map(|(_, v)| v.binding.as_ref().map(|b| b.binding))
                .collect();
            bound.sort();
            let want = [
                0, 1, 2, 4, 5, 6, 8, 10, 11, 12, 13, 14, 16, 18, 20, 21, 22, 30, 31,
            ];
            assert_eq!(bound, want);
            // The down phase needs an f16 output before it; a residual from an earlier phase.
            let f32_before = [(out.clone(), 0, 0, None), (down.clone(), 0, 0, None)];
            assert!(coop_fused_mlp_source(&f32_before, sg, FusedForm::default()).is_err());
            let own = [(out.clone(), 0, 0, Some(0)), (gate_up.clone(), 1, 2, None)];
            assert!(coop_fused_mlp_source(&own, sg, FusedForm::default()).is_err());
            // gate/up's output is f16: no residual from it.
            let f16_residual = [(out.clone(), 0, 0, Some(1)), (gate_up.clone(), 1, 2, None)];
            assert!(coop_fused_mlp_source(&f16_residual, sg, FusedForm::default()).is_err());
        }
    }
}
