//! The typed kernel ABI: for every generated kernel, its parameters in order, the block
//! (workgroup) size, its tile sizes and the rule that gives its launch grid. Codegen
//! emits it beside the source, `manifest.json` stores it as it is (serde), and both
//! executors (`runtime::cuda`, `runtime::wgpu`) bind arguments by [`Arg`] in the order of
//! [`KernelAbi::params`] and size the grid with [`Grid::dims`]; nothing about a
//! kernel's interface is written a second time by hand (docs/DESIGN.md §6).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// What an argument carries. Executors look their buffers and values up by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arg {
    /// WGSL uniform block; its fields are [`Param::fields`], 4-byte words in order.
    Params,
    /// Queries: prefill `[total_tokens, q_heads, head_dim]`, decode `[rows, q_heads, head_dim]`.
    Q,
    /// Packed prefill keys / values `[total_tokens, kv_heads, head_dim]`.
    K,
    /// Packed prefill values, `[total_tokens, kv_heads, head_dim]` like [`Arg::K`].
    V,
    /// The `v` prefill variant (`codegen::cuda::PrefillTuning::v_f16_in`, bf16 storage): V
    /// as f16, `[total_tokens, kv_heads, head_dim]` (2 bytes per element, the size of V),
    /// each value v stored as f16(v · 2^-E) with E the KV head's exponent from
    /// [`Arg::VMax`]. The host allocates it beside V and fills it before every prefill
    /// by the module's pre-pass kernels: zero `VMax`, launch `{prefill}_vmax(v, row_start,
    /// rows, v_max)` then `{prefill}_vf16(v, row_start, rows, v_max, v_f16)`, both on the
    /// grid `[ceil(total_tokens / 64), kv_heads]` of 128 threads, no shared memory. The
    /// `u` form (`PrefillTuning::v_unit`) has `{prefill}_vcvt` and `{prefill}_vfix` in their
    /// place, both taking `(v, row_start, rows, v_max, v_f16)`, launched the same way but
    /// on any grid `[X, kv_heads]` with X >= 1 (block x converts the 64-token groups x,
    /// x + X, …); its E is 0 while the head's largest |v| lies in [2^-10, 2^15) (`runtime::cuda::VPrepass`
    /// launches either form). `_vcvt`'s half may come from whoever writes V instead: the
    /// CUDA engine's cache write (`runtime::cuda::ops::OpKernels::v_write`) writes f16(v)
    /// at scale 1 and raises the zeroed `VMax` as it writes V, and then only `_vfix` runs
    /// (`VPrepass::queue_fix`); the copy and the maxima are the same bits.
    VF16,
    /// The `v` prefill variant: per KV head, the largest |v| over the batch's V as the
    /// bits of a non-negative bf16, `u32[kv_heads]` (zero before `{prefill}_vmax`, which
    /// raises it by atomicMax). E = clamp(biased exponent - 141, -126, 114) so that every
    /// |v| · 2^-E < 2^15 fits f16 (finite), and values below 2^(E-14) keep f16's absolute
    /// precision 2^(E-25).
    VMax,
    /// Prefill row boundaries `u32[rows + 1]`.
    RowStart,
    /// Decode cache `[rows, row_slots, head_dim]` (docs/DESIGN.md §5).
    KCache,
    /// Decode value cache, `[rows, row_slots, head_dim]`, the slots of [`Arg::KCache`].
    VCache,
    /// Position of each row's current token, `u32[rows]`.
    RowPos,
    /// Split-K scratch (f32).
    Partials,
    /// Decode work list `u32[n_items, 8]` (`runtime::worklist::DecodeWork`), CUDA and WGSL.
    Work,
    /// CUDA decode: arrival counters per segment, `u32[rows · kv_heads]`, zero between calls.
    SegDone,
    /// Attention output.
    Out,
    /// N (prompt + max new tokens) the spans are evaluated at.
    NTokens,
    /// Batch rows.
    Rows,
    /// WGSL prefill: the first query (token of a row) the dispatch covers, 0 for the whole
    /// row. The grid's query tiles start there and the Q and output bindings begin at the
    /// row's packed token `row_start + q_start`, so a row's queries can be held in several
    /// buffers of a whole number of query tiles each (a one-row pass whose activations
    /// exceed a storage binding, docs/DESIGN.md §7); K and V stay whole.
    QStart,
    /// Decode: work items in the list.
    NItems,
    /// Padding word of a uniform block.
    Pad,
    /// The layer's rule of each query head, `u32[q_heads, 2]`: α (tokens, an i32's bits)
    /// and β·BETA_DEN (`plan::BETA_DEN`), as `plan::Rule` holds them. Fixed by the plan: the
    /// executor fills it once per layer (`runtime::wgpu::head_rules`). Read by the WGSL scalar
    /// prefill and the scalar and flat decodes built with `WgslTuning::rules_table` (on a
    /// plan whose layers' rules differ), whose sources are then the same for every layer of
    /// one shape.
    Rules,
}

/// How a kernel uses an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read-only buffer (`const T*` in CUDA, `var<storage, read>` in WGSL).
    Read,
    /// Written buffer.
    ReadWrite,
    /// WGSL uniform block.
    Uniform,
    /// A scalar passed by value (CUDA).
    Value,
}

/// Element type of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Elem {
    /// IEEE binary32, 4 bytes.
    F32,
    /// IEEE binary16, 2 bytes.
    F16,
    /// bfloat16, 2 bytes (the CUDA target only; WGSL refuses bf16 storage).
    Bf16,
    /// 32-bit unsigned integer, 4 bytes (indices, counters, scalars, uniform words).
    U32,
}

impl Elem {
    /// The element type of K, V, Q and the output for a module stored as `storage`.
    pub fn of(storage: crate::lower::StorageType) -> Elem {
        match storage {
            crate::lower::StorageType::F32 => Elem::F32,
            crate::lower::StorageType::F16 => Elem::F16,
            crate::lower::StorageType::Bf16 => Elem::Bf16,
        }
    }
}

/// One kernel parameter (CUDA) or binding (WGSL group 0), at position `index`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The CUDA parameter position or the WGSL `@binding` of group 0; equal to the
    /// parameter's place in [`KernelAbi::params`].
    pub index: u32,
    /// What it carries: the key an executor looks its buffer or value up by.
    pub arg: Arg,
    /// How the kernel uses it.
    pub access: Access,
    /// Element type ([`Elem::U32`] for a scalar and for a uniform block's words).
    pub elem: Elem,
    /// Symbolic shape, outermost first (`["rows", "q_heads", "head_dim"]`); empty for a scalar.
    pub shape: Vec<String>,
    /// The words of a uniform block, in order (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Arg>,
}

impl Param {
    /// A buffer of `elem` with the symbolic `shape` (outermost first).
    pub fn buffer(index: u32, arg: Arg, access: Access, elem: Elem, shape: &[&str]) -> Param {
        Param {
            index,
            arg,
            access,
            elem,
            shape: shape.iter().map(|s| s.to_string()).collect(),
            fields: Vec::new(),
        }
    }
    /// A `u32` scalar passed by value (CUDA), e.g. [`Arg::Rows`].
    pub fn value(index: u32, arg: Arg) -> Param {
        Param {
            index,
            arg,
            access: Access::Value,
            elem: Elem::U32,
            shape: Vec::new(),
            fields: Vec::new(),
        }
    }
    /// A WGSL uniform block of one 4-byte `u32` word per entry of `fields`, in order; its
    /// shape is the word count.
    pub fn uniform(index: u32, fields: &[Arg]) -> Param {
        Param {
            index,
            arg: Arg::Params,
            access: Access::Uniform,
            elem: Elem::U32,
            shape: vec![fields.len().to_string()],
            fields: fields.to_vec(),
        }
    }
}

/// The launch-geometry rule of a kernel: how many blocks (workgroups) per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum Grid {
    /// `[ceil(max_row_len / q_tile), q_heads, rows]`: one block per query tile of a head.
    QueryTiles {
        /// Queries (tokens of a row) per block.
        q_tile: u32,
    },
    /// `[q_heads, rows, ceil(max_row_len / q_tile)]`: one block per query tile of a head,
    /// the query heads fastest (CUDA prefill: the kernel counts z from the last tile, so
    /// the blocks with the longest bands start first; docs/DESIGN.md §6.1).
    HeadsThenQueryTiles {
        /// Queries (tokens of a row) per block.
        q_tile: u32,
    },
    /// `[n_items, 1, 1]`: one block per item of the decode work list (chunks over every
    /// (row, KV head) segment, built by the host, `runtime::worklist`: a chunk is a
    /// multiple of `tiles.k_tile` slots on both back ends, its length the host's policy,
    /// not a manifest field).
    WorkItems,
    /// `[q_heads, rows, 1]`: one block per (row, query head).
    QueryHeads,
    /// `[min(tiles, resident), 1, 1]` with `tiles = q_heads · rows · ceil(max_row_len /
    /// q_tile)`: persistent blocks that take the query tiles of
    /// [`Grid::HeadsThenQueryTiles`] (in its order) from a counter of the kernel's module
    /// (the CUDA prefill's `t` letter). `resident` is the number of blocks the device holds
    /// at once (its SM count at one block per SM, [`Grid::dims_on`]); [`Grid::dims`] gives
    /// one block per tile, also correct. The counter makes each launch depend on the
    /// previous one of the same module having ended: no two launches of one module's
    /// kernel may run at once.
    PersistentQueryTiles {
        /// Queries (tokens of a row) per tile.
        q_tile: u32,
    },
    /// `[ceil(total_tokens / tokens), kv_heads, 1]`, `total_tokens` the batch's tokens
    /// (`row_start[rows]`): one block per group of `tokens` consecutive tokens of the packed
    /// batch and KV head (the bf16 prefill's pre-pass `_vmax` / `_vf16`, [`Prepass`]). Blocks
    /// past the last group return at once, so a larger x is also correct.
    TokenGroups {
        /// Tokens per group ([`V_PREPASS_TOKENS`]).
        tokens: u32,
    },
    /// `[min(ceil(total_tokens / tokens), max(1, blocks / kv_heads)), kv_heads, 1]`: blocks
    /// that loop over the groups of `tokens` tokens of one KV head (block x takes groups x,
    /// x + X, … of a grid of X blocks), so any x ≥ 1 is correct; `blocks` is the total moa
    /// launches, about one wave on an H200 (the pre-pass `_vcvt` / `_vfix`, [`Prepass`]).
    StridedTokenGroups {
        /// Tokens per group ([`V_PREPASS_TOKENS`]).
        tokens: u32,
        /// Blocks launched over all KV heads together (an upper bound: x is at most the
        /// groups there are).
        blocks: u32,
    },
}

/// The run-time sizes a grid rule reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaunchSize {
    /// Batch rows (sequences) of the call.
    pub rows: u32,
    /// Query heads of the layer.
    pub q_heads: u32,
    /// KV heads of the layer.
    pub kv_heads: u32,
    /// Longest prefill row.
    pub max_row_len: u32,
    /// Decode work items.
    pub n_items: u32,
}

impl Grid {
    /// Blocks per dimension for a call of these sizes.
    pub fn dims(&self, s: &LaunchSize) -> [u32; 3] {
        match *self {
            Grid::QueryTiles { q_tile } => {
                [s.max_row_len.div_ceil(q_tile.max(1)), s.q_heads, s.rows]
            }
            Grid::HeadsThenQueryTiles { q_tile } => {
                [s.q_heads, s.rows, s.max_row_len.div_ceil(q_tile.max(1))]
            }
            Grid::WorkItems => [s.n_items, 1, 1],
            Grid::QueryHeads => [s.q_heads, s.rows, 1],
            Grid::PersistentQueryTiles { .. } => self.dims_on(s, 0),
            // `rows · max_row_len` bounds the batch's tokens: blocks past them return.
            Grid::TokenGroups { .. } | Grid::StridedTokenGroups { .. } => {
                self.dims_tokens(s, s.rows.saturating_mul(s.max_row_len))
            }
        }
    }

    /// [`Grid::dims`] for a batch of `total_tokens` tokens (`row_start[rows]`): the token
    /// grids ([`Grid::TokenGroups`], [`Grid::StridedTokenGroups`]) take exactly the groups
    /// there are; the other rules do not read it.
    pub fn dims_tokens(&self, s: &LaunchSize, total_tokens: u32) -> [u32; 3] {
        match *self {
            Grid::TokenGroups { tokens } => [total_tokens.div_ceil(tokens.max(1)), s.kv_heads, 1],
            Grid::StridedTokenGroups { tokens, blocks } => {
                let groups = total_tokens.div_ceil(tokens.max(1));
                let per_head = (blocks / s.kv_heads.max(1)).max(1);
                [groups.min(per_head), s.kv_heads, 1]
            }
            _ => self.dims(s),
        }
    }

    /// [`Grid::dims`] on a device that holds `resident` blocks of the kernel at once
    /// (0: unknown): persistent grids take at most that many blocks, the others ignore it.
    pub fn dims_on(&self, s: &LaunchSize, resident: u32) -> [u32; 3] {
        match *self {
            Grid::PersistentQueryTiles { q_tile } => {
                let tiles = s.max_row_len.div_ceil(q_tile.max(1)) as u64
                    * u64::from(s.q_heads)
                    * u64::from(s.rows);
                let cap = if resident == 0 {
                    u64::MAX
                } else {
                    u64::from(resident)
                };
                [tiles.min(cap).min(u64::from(i32::MAX as u32)) as u32, 1, 1]
            }
            _ => self.dims(s),
        }
    }
}

/// Tile sizes a kernel was generated with (only those it has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tiles {
    /// Queries per block (prefill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_tile: Option<u32>,
    /// Keys a step of the WGSL scalar prefill's online softmax: 2 where it scores key pairs
    /// (`moa-compile --wgsl-prefill-key-pairs`, `WgslTuning::prefill_key_pairs`); absent: 1.
    /// The launch does not depend on it; it is recorded so that a loader or a check that
    /// suggests rewriting a folder names the flag the folder was compiled with (round 42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_per_step: Option<u32>,
    /// Keys per tile (prefill) or per pipeline stage (CUDA decode; work-list chunks are
    /// multiples of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_tile: Option<u32>,
    /// Slots per work-list chunk, where the kernel fixes it (WGSL decode: its workgroup
    /// score tile has this many slots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    /// Asynchronous copy stages (CUDA decode; the warp-specialized CUDA prefill's K/V ring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<u32>,
    /// Query columns per block: the GQA group padded to the MMA width (CUDA decode; the
    /// WGSL decode on cooperative matrices, whose matrix rows are the group's heads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_cols: Option<u32>,
    /// Subgroups per workgroup of a WGSL kernel on cooperative matrices (16 × 16 × 16,
    /// f16 × f16 → f32): its workgroup is this many of the adapter's subgroups, whose size
    /// the host passes as the override `MOA_SG` (so `block` holds the size for subgroups of
    /// 32). An executor whose adapter lacks those matrices runs the layer's kernel of the
    /// same phase without this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroups: Option<u32>,
    /// The largest thread-block cluster (blocks along x) the kernel merges a work-list
    /// segment in (CUDA decode: 8, CUDA's portable cluster size, or 16 for the `h` variant,
    /// `codegen::cuda::DecodeTuning::wide_clusters`). An executor may launch the kernel as
    /// clusters of up to this many blocks over a work list that keeps each segment's items
    /// inside one cluster (`runtime::worklist::DecodeWork::build_packed`); above 8 it must
    /// first allow non-portable cluster sizes on the function
    /// (`CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED` = 1). A plain launch is always
    /// correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u32>,
    /// CUDA decode on tensor cores, a GQA group past 8 query heads: the group is cut into
    /// this many sub-groups of `group_size / sub_groups` heads, each a work-list segment of
    /// its own over its KV head's cache (`codegen::cuda::decode_sub_groups`). The work list
    /// is then built over every KV head's segment repeated `sub_groups` times
    /// (`lower::CacheLayout::sub_grouped`): segment = (row · kv_heads + kv_head) ·
    /// sub_groups + sub-group, with the KV head's offset and span, and `seg_done` holds a
    /// counter per such segment. Absent: 1 (a block computes the whole group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_groups: Option<u32>,
}

/// Everything an executor needs to bind and launch one kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelAbi {
    /// Parameters (CUDA) or group-0 bindings (WGSL), `params[i].index == i`.
    pub params: Vec<Param>,
    /// Threads per block / invocations per workgroup.
    pub block: [u32; 3],
    /// The rule that gives the blocks (workgroups) of a launch from its sizes.
    pub grid: Grid,
    /// The tile sizes the kernel was generated with.
    pub tiles: Tiles,
    /// Dynamic shared memory per block (CUDA; 0 for WGSL).
    pub dynamic_shared_bytes: u32,
    /// Kernels of the same source file to launch before this one (the bf16 CUDA prefill
    /// that reads V as f16, [`Arg::VF16`]); `None` where there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepass: Option<Prepass>,
}

/// What a kernel needs run before each of its launches, in order: fill the `zero`
/// buffers with zero bytes, then launch `launches` one after the other on the same
/// stream. The buffers are the kernel's own arguments of the same roles ([`Arg`]), so
/// the kernel's `params` give their shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prepass {
    /// Arguments whose buffers are zeroed first (byte value 0).
    pub zero: Vec<Arg>,
    /// The kernels, in launch order.
    pub launches: Vec<PrepassKernel>,
}

/// One pre-pass kernel: its symbol in the same source file and its ABI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepassKernel {
    /// The kernel's symbol: the prefill's entry point with a suffix, e.g. `_vmax`.
    pub entry_point: String,
    /// Its parameters and launch rule (no pre-pass of its own).
    pub abi: KernelAbi,
}

/// Tokens per group of the V pre-pass kernels ([`Grid::TokenGroups`]).
pub const V_PREPASS_TOKENS: u32 = 64;
/// Threads per block of the V pre-pass kernels.
pub const V_PREPASS_THREADS: u32 = 128;

/// The pre-pass of a prefill `entry_point` that takes [`Arg::VF16`] (the host contract
/// written there), V stored as `storage`: zero [`Arg::VMax`], then `{entry_point}_vmax(v,
/// row_start, rows, v_max)` and `{entry_point}_vf16(v, row_start, rows, v_max, v_f16)` on
/// [`Grid::TokenGroups`]; in the `u` form (`unit`) `{entry_point}_vcvt` and
/// `{entry_point}_vfix`, both `(v, row_start, rows, v_max, v_f16)`, on
/// [`Grid::StridedTokenGroups`] of `blocks` blocks in all. 128 threads, no shared memory.
pub fn v_prepass(entry_point: &str, storage: Elem, unit: bool, blocks: u32) -> Prepass {
    let kv = ["total_tokens", "kv_heads", "head_dim"];
    let v_max = |access| Param::buffer(3, Arg::VMax, access, Elem::U32, &["kv_heads"]);
    let v_f16 = Param::buffer(4, Arg::VF16, Access::ReadWrite, Elem::F16, &kv);
    let launch = |suffix: &str, mut params: Vec<Param>| {
        let mut all = vec![
            Param::buffer(0, Arg::V, Access::Read, storage, &kv),
            Param::buffer(1, Arg::RowStart, Access::Read, Elem::U32, &["rows + 1"]),
            Param::value(2, Arg::Rows),
        ];
        all.append(&mut params);
        PrepassKernel {
            entry_point: format!("{entry_point}_{suffix}"),
            abi: KernelAbi::new(
                all,
                [V_PREPASS_THREADS, 1, 1],
                if unit {
                    Grid::StridedTokenGroups {
                        tokens: V_PREPASS_TOKENS,
                        blocks,
                    }
                } else {
                    Grid::TokenGroups {
                        tokens: V_PREPASS_TOKENS,
                    }
                },
                Tiles::default(),
            ),
        }
    };
    let launches = if unit {
        vec![
            launch("vcvt", vec![v_max(Access::ReadWrite), v_f16.clone()]),
            launch("vfix", vec![v_max(Access::Read), v_f16]),
        ]
    } else {
        vec![
            launch("vmax", vec![v_max(Access::ReadWrite)]),
            launch("vf16", vec![v_max(Access::Read), v_f16]),
        ]
    };
    Prepass {
        zero: vec![Arg::VMax],
        launches,
    }
}

impl KernelAbi {
    /// A kernel with no dynamic shared memory and no pre-pass (every WGSL kernel, the
    /// CUDA pre-pass kernels).
    pub(crate) fn new(params: Vec<Param>, block: [u32; 3], grid: Grid, tiles: Tiles) -> Self {
        KernelAbi {
            params,
            block,
            grid,
            tiles,
            dynamic_shared_bytes: 0,
            prepass: None,
        }
    }

    /// The parameter carrying `arg`, if the kernel has one.
    pub fn param(&self, arg: Arg) -> Option<&Param> {
        self.params.iter().find(|p| p.arg == arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_rules() {
        let s = LaunchSize {
            rows: 3,
            q_heads: 8,
            kv_heads: 2,
            max_row_len: 65,
            n_items: 17,
        };
        assert_eq!(Grid::QueryTiles { q_tile: 32 }.dims(&s), [3, 8, 3]);
        assert_eq!(Grid::HeadsThenQueryTiles { q_tile: 32 }.dims(&s), [8, 3, 3]);
        assert_eq!(Grid::WorkItems.dims(&s), [17, 1, 1]);
        assert_eq!(Grid::QueryHeads.dims(&s), [8, 3, 1]);
        let p = Grid::PersistentQueryTiles { q_tile: 32 };
        assert_eq!(p.dims(&s), [72, 1, 1]);
        assert_eq!(p.dims_on(&s, 0), [72, 1, 1]);
        assert_eq!(p.dims_on(&s, 50), [50, 1, 1]);
        assert_eq!(p.dims_on(&s, 132), [72, 1, 1]);
        assert_eq!(Grid::WorkItems.dims_on(&s, 5), [17, 1, 1]);
        let t = Grid::TokenGroups { tokens: 64 };
        assert_eq!(t.dims_tokens(&s, 129), [3, 2, 1]);
        assert_eq!(t.dims(&s), [4, 2, 1]); // 3 rows of at most 65 tokens: 195
        let u = Grid::StridedTokenGroups {
            tokens: 64,
            blocks: 4,
        };
        assert_eq!(u.dims_tokens(&s, 129), [2, 2, 1]);
        assert_eq!(u.dims_tokens(&s, 64), [1, 2, 1]);
        assert_eq!(Grid::WorkItems.dims_tokens(&s, 1000), [17, 1, 1]);
    }

    #[test]
    fn abi_round_trips_through_json() {
        let abi = KernelAbi {
            params: vec![
                Param::uniform(0, &[Arg::NTokens, Arg::Rows, Arg::Pad, Arg::Pad]),
                Param::buffer(
                    1,
                    Arg::Q,
                    Access::Read,
                    Elem::Bf16,
                    &["rows", "q_heads", "head_dim"],
                ),
                Param::value(2, Arg::NItems),
            ],
            block: [128, 1, 1],
            grid: Grid::WorkItems,
            tiles: Tiles {
                chunk: Some(64),
                ..Tiles::default()
            },
            dynamic_shared_bytes: 0,
            prepass: Some(v_prepass("p", Elem::Bf16, true, 1024)),
        };
        let text = serde_json::to_string(&abi).unwrap();
        let back: KernelAbi = serde_json::from_str(&text).unwrap();
        assert_eq!(back, abi);
    }
}
