//! The wgpu back end's settings, read from the environment in one place.
//!
//! Every `MOA_WGPU_*` / `MOA_WGSL_*` variable the library reads is parsed here into a
//! typed value: [`WgpuContextOptions`] (what `WgpuContext` asks of the adapter, and how
//! `WgpuAttention` builds its decode) and [`WgpuEngineOptions`] (which kernels and
//! schedules the engine runs). `Default` is the measured default of each setting; tests
//! and benches set fields directly (no process-wide environment needed), users set the
//! variables. A value a setting does not take is an [`OptionsError`] naming the variable,
//! the value and the accepted values (never silently ignored); an empty value counts as
//! unset (`MOA_WGPU_COOP= moa …`). An unknown name of either family is a warning that
//! names the closest known one ([`unknown_names`]). docs/DESIGN.md §7 has the table of
//! these settings and their verdicts (benches/RESULTS.md).

#![warn(missing_docs)]

use crate::codegen::wgsl::{decode_sg_fits, FlatQk, SgFlat, WgslTuning};

/// A `MOA_*` variable whose value its setting does not take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not a value it takes (accepted: {accepted})")]
pub struct OptionsError {
    /// The variable, e.g. `MOA_WGPU_SPLIT_K`.
    pub name: &'static str,
    /// Its value as read (lossily decoded where it was not UTF-8).
    pub value: String,
    /// What it takes, e.g. `0 or 1`.
    pub accepted: &'static str,
}

/// Looks a variable up: `Some(value)` where it is set to a non-empty value.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`] (empty values count as unset; a non-UTF-8
/// value is decoded lossily, so it fails its parse naming what was read).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

/// A [`Lookup`] over `(name, value)` pairs, for tests and benches (empty values count as
/// unset, as in the environment).
pub fn lookup_in<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        vars.iter()
            .rev()
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v.to_string())
    }
}

/// One of `choices` (value, meaning), or `default` where unset.
/// The values of `MOA_WGPU_SG_KSPLIT` and `MOA_WGPU_SG_GROUPS`: a power of two up to 8, or
/// `auto` (`None`: the engine's rule per product).
const POW2_OR_AUTO: &[(&str, Option<u32>)] = &[
    ("1", Some(1)),
    ("2", Some(2)),
    ("4", Some(4)),
    ("8", Some(8)),
    ("auto", None),
];

fn choice<T: Copy>(
    env: Lookup,
    name: &'static str,
    accepted: &'static str,
    choices: &[(&str, T)],
    default: T,
) -> Result<T, OptionsError> {
    let Some(v) = env(name) else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(s, _)| *s == v.trim())
        .map(|(_, t)| *t)
        .ok_or(OptionsError {
            name,
            value: v,
            accepted,
        })
}

/// `0` (off) or `1` (on), `default` where unset.
fn flag(env: Lookup, name: &'static str, default: bool) -> Result<bool, OptionsError> {
    choice(env, name, "0 or 1", &[("0", false), ("1", true)], default)
}

/// `0`, `1` or `auto` (`None`: the engine decides by adapter), `None` where unset.
fn tristate(env: Lookup, name: &'static str) -> Result<Option<bool>, OptionsError> {
    choice(
        env,
        name,
        "0, 1 or auto",
        &[("0", Some(false)), ("1", Some(true)), ("auto", None)],
        None,
    )
}

/// A whole number in `range`, `None` where unset.
fn number(
    env: Lookup,
    name: &'static str,
    accepted: &'static str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, OptionsError> {
    let Some(v) = env(name) else {
        return Ok(None);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(OptionsError {
            name,
            value: v,
            accepted,
        }),
    }
}

/// What [`crate::runtime::wgpu::WgpuContext`] asks of the adapter and how
/// [`crate::runtime::wgpu::WgpuAttention`] builds the decode attention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WgpuContextOptions {
    /// `MOA_WGPU_COOP` (default `1`): request the adapter's cooperative matrices (the
    /// prefill products and attention, the decode LM head and gate/up product on matrix
    /// units, each checked at start-up against the CPU); `0` keeps every kernel scalar.
    /// Won on the H200: prefill attention 5.2× (benches/RESULTS.md, "wgpu engine, session
    /// 8"), head and gate/up (sessions 11–13). lavapipe has no matrix units.
    pub cooperative_matrices: bool,
    /// `MOA_WGPU_SUBGROUPS` (default `1`): request subgroup operations (a fixed size from
    /// 8 to 64) for the decode products on subgroups; `0` does not, so `matvec.wgsl` runs.
    /// Won on the H200: plan step 4.99 → 2.51 ms (RESULTS "wgpu engine, session 9").
    pub subgroups: bool,
    /// `MOA_WGSL_DECODE` (default `scalar`): `coop` runs the WGSL decode attention on
    /// cooperative matrices where the adapter has f16 → f32 ones. Slower on the H200
    /// (0.7–0.9× the scalar decode, RESULTS "WGSL decode on cooperative matrices", calls
    /// 10–11); kept opt-in for adapters whose matrix units may win (AMD, Metal).
    pub wgsl_coop_decode: bool,
    /// `MOA_WGSL_RESCALE` (default unset: the kernel's own threshold): the cooperative
    /// decode's rescale threshold in log2 units, 0 to 15 (`0` rescales at every tile;
    /// tests use it to exercise the rescale). Only with `wgsl_coop_decode`.
    pub wgsl_rescale: Option<u32>,
}

impl Default for WgpuContextOptions {
    fn default() -> Self {
        WgpuContextOptions {
            cooperative_matrices: true,
            subgroups: true,
            wgsl_coop_decode: false,
            wgsl_rescale: None,
        }
    }
}

impl WgpuContextOptions {
    /// The settings of the process environment; warns (stderr, once a process) of unknown
    /// `MOA_WGPU_*` / `MOA_WGSL_*` names.
    pub fn from_env() -> Result<Self, OptionsError> {
        warn_unknown_once();
        Self::from_lookup(&process_env)
    }

    /// The settings `env` gives (unset: the defaults).
    pub fn from_lookup(env: Lookup) -> Result<Self, OptionsError> {
        let d = Self::default();
        Ok(WgpuContextOptions {
            cooperative_matrices: flag(env, "MOA_WGPU_COOP", d.cooperative_matrices)?,
            subgroups: flag(env, "MOA_WGPU_SUBGROUPS", d.subgroups)?,
            wgsl_coop_decode: choice(
                env,
                "MOA_WGSL_DECODE",
                "scalar or coop",
                &[("scalar", false), ("coop", true)],
                d.wgsl_coop_decode,
            )?,
            wgsl_rescale: number(
                env,
                "MOA_WGSL_RESCALE",
                "a whole number from 0 to 15",
                0..=15,
            )?,
        })
    }
}

/// Which kernel runs the decode LM head where the adapter has matrix units
/// (`MOA_WGPU_COOP_HEAD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoopHeadChoice {
    /// `coop_head.wgsl` (weights staged through workgroup memory) where it builds, else
    /// `coop_matvec.wgsl` (`auto` or `1`, the default).
    Staged,
    /// `coop_matvec.wgsl` (B fragments straight from storage; `direct`).
    Direct,
    /// Not on matrix units: the head runs as the other products (`0`).
    Off,
}

/// Which decode layer products run on matrix units besides the head
/// (`MOA_WGPU_COOP_DECODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoopDecodeChoice {
    /// Neither the output nor the gate/up product (`0`).
    Off,
    /// The gate/up product (unset or `auto`, the default).
    GateUp,
    /// The output and the gate/up product (`1`).
    OutAndGateUp,
}

/// How [`super::WgpuEngine`] runs a model: which product kernels, which decode schedule.
/// Each field's doc says its variable, default, what it switches and its measurement
/// (benches/RESULTS.md). Settings that only change speed; every path is checked against
/// the CPU reference (tests/model_gpu.rs, or the start-up checks of the matrix-unit ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WgpuEngineOptions {
    /// `MOA_WGPU_SPLIT_K` (default `auto`: on for GPU adapters, off for CPU ones): the
    /// few-row (decode) products split K over a workgroup (`matvec_sg.wgsl` /
    /// `matvec.wgsl`) rather than one dot product per invocation (`linear.wgsl`). On
    /// lavapipe split-K halves decode (1.0 → 0.5 tok/s: its barriers cost a CPU more than
    /// the parallelism gains), on a GPU it is what the decode products are.
    pub split_k: Option<bool>,
    /// `MOA_WGPU_TILED` (default `auto`: on for GPU adapters, off for CPU ones): the
    /// many-row (prefill) products where matrix units do not run them use 64 × 64 output
    /// tiles with K staged in workgroup memory (`linear_tiled.wgsl`), not a 4 × 4 block an
    /// invocation from global memory (`linear.wgsl` / `linear_words.wgsl`), whose reuse
    /// suits lavapipe, where a workgroup barrier costs more than the loads it saves.
    pub tiled: Option<bool>,
    /// `MOA_WGPU_TILED_BLOCK` (`4` or `8`; default `4`): rows and columns an invocation of
    /// `linear_tiled.wgsl` sums, so a workgroup's tile is 64 × 64 or 128 × 128 (a weight
    /// read once per 64 or 128 rows; 16 or 64 sums an invocation). Not yet timed on a GPU
    /// (session 45: benches/lead-h200/s45/call1.sh).
    pub tiled_block: u32,
    /// `MOA_WGPU_MATVEC` (default `sg`): the decode products on subgroups
    /// (`matvec_sg.wgsl`, where the adapter has them) or `tree`, the workgroup-tree
    /// `matvec.wgsl` (the fallback without subgroups). sg won on the H200: plan step
    /// 4.99 → 2.51 ms (RESULTS "wgpu engine, session 9", call 2).
    pub subgroup_matvec: bool,
    /// `MOA_WGPU_SG_KSPLIT` (default unset: per product, about 1024 subgroups): subgroups
    /// per column group of the subgroup products, 1, 2, 4 or 8 (8 only on subgroups of
    /// at most 32; its workgroup then holds fewer column groups, `sg_groups`). A fixed
    /// KSPLIT was slower on the H200 (1: 3.20 ms, 4: 2.67 against 2.45 ms a step;
    /// session 9, call 1); kept to tune other adapters.
    pub sg_ksplit: Option<u32>,
    /// `MOA_WGPU_SG_GROUPS` (default unset: 1 for the products at KSPLIT 4 and 8 on
    /// subgroups of 32 or more, 64 / subgroup size otherwise): column groups (4 output columns × 16 rows) per workgroup of the
    /// subgroup products, 1, 2, 4 or 8, capped where the workgroup would pass 256
    /// invocations. Fewer groups spread a product over more workgroups (a 576-column
    /// product at KSPLIT 4 is 72 workgroups of 2 groups on the H200's 132 SMs, 144 of 1);
    /// at 1 on subgroups of 32 the per-product KSPLIT may be 8. On the H200 (RESULTS "wgpu
    /// engine, session 17"): output 5.55–5.58 → 4.78 µs, down 7.97–8.22 → 6.92, QKV
    /// 6.90–7.08 → 6.61; `2` is the earlier default there.
    pub sg_groups: Option<u32>,
    /// `MOA_WGPU_SG_ROWS` (default unset: 8 on subgroups of 32 or more, 16 otherwise):
    /// rows a workgroup row of the subgroup products, 16, 8 or 4 (`matvec_sg.wgsl`'s
    /// `ROW_GROUPS` 4, 2, 1; the grid's y is ceil(rows / this)). Fewer rows a subgroup:
    /// fewer x loads and sums a lane, so its loads fit its registers in one batch, at the
    /// price of each weight loaded by 16 / this workgroups. On the H200 8 against 16:
    /// device step 1 503.0-1 505.9 against 1 578.0-1 580.1 µs in three pairs (RESULTS "wgpu
    /// engine, session 22"); `16` is the earlier default there. 4 against 8 lost every pair
    /// there (step +59 to +110 µs, qkv +1.4 to +1.9 µs a layer: each weight read by twice
    /// the workgroups; RESULTS "Session 22, lead call 2").
    pub sg_rows: Option<u32>,
    /// `MOA_WGPU_SG_UNROLL` (default unset = `auto`: 4 on subgroups of 32 or more, 1
    /// otherwise): K trips of the subgroup products' K loop whose weight loads a lane
    /// issues before the first multiply-add, 1, 2 or 4 (`matvec_sg.wgsl`'s `UNROLL`; the
    /// fitted form has no loop and ignores it). One trip keeps 32 bytes of f16 weights in
    /// flight a lane: the 1B and 8B shapes' products read their 8-235 MB at 1.0-1.6 TB/s
    /// on the H200, at 4 trips the 8B's gate/up at 2.5 (RESULTS "Session 39, lead call
    /// 2").
    pub sg_unroll: Option<u32>,
    /// `MOA_WGPU_SG_FIT` (default unset = `auto`: on for subgroups of 32 or more, off
    /// elsewhere; `0` off, `1` on): the subgroup products of fewer than 512 column groups
    /// (SmolLM2's QKV, output and down products) take a fixed number of K steps a lane
    /// instead of the K loop (`matvec_sg.wgsl`'s `STEPS`: the fewest that fit K / 4 in 256
    /// invocations) and as many subgroups a column group as cover K / 4 in those steps
    /// (`KSPLIT` = ceil(K / 4 / (STEPS · subgroup)), any count, one column group a
    /// workgroup): no idle subgroup in the reduction, no loop-carried sums. On 32 lanes at
    /// K 576 one step on 5 subgroups (output and QKV; the loop: 8 subgroups of which 3
    /// idle, QKV 4 with a second trip), at K 1536 two on 6 (down; the loop: 8, the last 4
    /// one trip). On the H200 (RESULTS "wgpu engine, session 34 (branch s34-sg)"): tokens/s
    /// above the loop's in 7 of 8 pairs of two calls (call 1: 11 428–11 535 against
    /// 11 360–11 404, +1.0%; the lost pair a slow first process), out and qkv lower in
    /// every pair (out 4.31–4.66 → 3.99–4.32 µs, qkv 5.55–6.03 → 5.21–5.69), down even;
    /// registers 68 / 69 / 74 at one step (80 / 80 / 109–112 the loop), 80 / 86 / 95 at
    /// two; parity 0.0534 against 0.0496 (the partial sums' order), argmax 3/3. Ignores `MOA_WGPU_SG_KSPLIT` / `_GROUPS` (it does not apply
    /// where those are set).
    pub sg_fit: Option<bool>,
    /// `MOA_WGPU_SG_EARLY` (default `1`; `0` the earlier form): the subgroup products'
    /// epilogue loads issued before the K loop (`matvec_sg.wgsl`'s `EARLY`): the residual
    /// of the output and down products, the token info and RoPE cos/sin of the QKV
    /// product, which otherwise follow the barrier as dependent round trips (two in a row
    /// in the QKV epilogue). On the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens,
    /// `MOA_WGPU_COOP_ATTN=0`; RESULTS "wgpu engine, session 35 (branch s35-prod)"):
    /// against `0` tokens/s 11 660 / 11 554 / 11 601 against 11 529 / 11 460 / 11 464
    /// and the device step 1 349.5 / 1 341.6 / 1 344.5 against 1 361.1 / 1 362.9 /
    /// 1 362.0 µs (every pair of three), qkv 5.46 → 5.22 µs on means (2 of 3 pairs), out
    /// 4.16 → 4.07, down 6.07 → 5.95; parity 0.0534, argmax 3/3 (the same sums).
    pub sg_early: bool,
    /// `MOA_WGPU_SG_XFIRST` (default `0`): with 4 rows a workgroup row, the subgroup
    /// products' K loop issues the x loads of all its unrolled trips right after their
    /// weight loads, before the first multiply-add (`matvec_sg.wgsl`'s `XFIRST`). Session
    /// 39: at `UNROLL` 4 the 8B shape's gate/up read its weights at 2.5 TB/s, its
    /// weights-only twin at 3.3.
    pub sg_xfirst: bool,
    /// `MOA_WGPU_SG_DIAG` (default `0`): a timing diagnostic of the subgroup products
    /// (`1`: no K loop, `2`: one row's x for all rows, `3`: the K loop's loads only, `4`:
    /// its weight loads only, `5`: its x loads only).
    /// **Wrong results**: for the profile only (RESULTS "wgpu engine, session 12", "What
    /// bounds the small products"; sessions 17 and 18).
    pub sg_diag: u32,
    /// `MOA_WGPU_ROW_BLOCK` (default `4`): rows per workgroup of `matvec.wgsl`, 4, 8 or
    /// 16. 16 was slower on the H200: plan step 6.92 → 11.29 ms (session 8).
    pub row_block: u32,
    /// `MOA_WGPU_ARGMAX2` (default `1`): greedy decode steps take the two-stage argmax;
    /// `0` one workgroup a row. Two stages won on the H200: 39 → 12 µs (session 8).
    pub two_stage_argmax: bool,
    /// `MOA_WGPU_PREENCODE` (default `1`): encode the next decode step while the device
    /// runs this one; `0` after the wait. Took the 0.44 ms finish off the step's path on
    /// the H200 (session 8).
    pub pre_encode: bool,
    /// `MOA_WGPU_AHEAD` (default `1`): greedy decode steps submit the next step before
    /// waiting for this one; `0` waits for each call (no step that no one reads). +14–18%
    /// tokens/s on the H200 (session 10).
    pub submit_ahead: bool,
    /// `MOA_WGPU_FEED_IN_PLACE` (default `0`): decode steps read their tokens from the
    /// buffer the last step's argmax wrote (`tokens_out`, where the host also writes the
    /// tokens of a step run on demand) instead of a copy of it made at the top of each step
    /// submitted ahead. Session 51 measured a request's steps 63-71 µs slower one command
    /// buffer each (with that copy and the read-back copy) than in one compute pass; session
    /// 54 timed both forms side by side on an H100 (SmolLM2 shape, 16 × 4096, four pairs):
    /// 1.30 ms a step either way, profiled steps 1 279.6 µs (copy) against 1 275.2 µs (in
    /// place), within the pairs' spread, so the copy stays the default.
    pub feed_in_place: bool,
    /// `MOA_WGPU_DECODE_FUSED_MLP` (default `0`): `1` runs the decode's output and
    /// gate/up products on matrix units in ONE dispatch whose workgroups meet at a
    /// device-wide counter between them (an opt-in prototype of issue 12's persistent
    /// decode, session 32, s32-fuse); ignored on CPU adapters and where those products do
    /// not run on matrix units.
    pub decode_fused_mlp: bool,
    /// `MOA_WGPU_DECODE_FUSED_GROUPS` (default `132`, 1–1056): workgroups of the fused
    /// dispatch at most (fewer where a phase has fewer tiles); all must be resident at
    /// once (one a multiprocessor: the H200's 132), else a meeting ends at its spin
    /// bound with the error flag set.
    pub decode_fused_groups: u32,
    /// `MOA_WGPU_DECODE_FUSED_SPLIT` (default `0`; a diagnostic, session 33): `1` runs the
    /// fused pipeline as two dispatches (its output phase, then its gate/up phase; each
    /// still meets once), profiled as "out" and "gate_up" (since session 34), to time or
    /// check each phase of the composed module apart. (Values 2–5, the
    /// composed phases beside the separate products and a module of the gate/up phase
    /// alone, found the misaligned x of lead calls 4–5 and were removed after.)
    pub decode_fused_split: u32,
    /// `MOA_WGPU_DECODE_FUSED_MEET` (default `1`, 0–1): how the fused dispatch's
    /// workgroups meet (`shaders::fused_meet`): `0` lane 0 spins alone (session 32),
    /// `1` every invocation runs the spin loop on a shared load. Both right and equally
    /// fast once aligned (s33-mega: 10 745 / 10 679–10 775 tok/s).
    pub decode_fused_meet: u32,
    /// `MOA_WGPU_SWIGLU_OUT` (default `1`): SwiGLU in the subgroup gate/up product's
    /// epilogue; `0` in the down product's input (the path of split weights). Down
    /// 11.1–11.8 → 8.3 µs on the H200 (session 10).
    pub swiglu_out: bool,
    /// `MOA_WGPU_COOP_ATTN` (default `1`): the prefill attention on matrix units where the
    /// prefill products run there; `0` keeps the scalar kernel (and loads ~13 s faster on
    /// the H200: benches set it when they time decode). 5.2× the scalar kernel (session 8).
    pub coop_attention: bool,
    /// `MOA_WGPU_COOP_ATTN_GROUP` (default `1`): the matrix-unit prefill attention in its
    /// group form (`prefill_coop_group.wgsl.j2`: a workgroup per GQA group, the softmax on
    /// SG / 16 invocations a query row, which keep the output) where the adapter has
    /// subgroups; `0`: a workgroup per query head (`prefill_coop.wgsl.j2`, also the
    /// fallback without subgroups). On the H200 (SmolLM2 shape, 16 × 4096) the group form
    /// took the attention 381 → 194 ms a prefill pass with moa-50 (session 27's lead call,
    /// its value `2`; RESULTS "wgpu engine, session 28 (branch s28-pattn)" for both plans).
    /// Session 27's other values (`1`, `3`: the output in C matrices, which failed the
    /// start-up check on the H200; `4`: unmeasured) were deleted in session 28.
    pub coop_attention_group: bool,
    /// `MOA_WGPU_COOP_ATTN_FORM` (default `2`): the barriers of the group form
    /// ([`crate::codegen::wgsl::PrefillGroupForm`]): `2` subgroup barriers (each subgroup's
    /// workgroup regions are its own; needs the device's `SUBGROUP_BARRIER`, else `1`
    /// runs); `1` workgroup barriers (session 28's kernel). On the H200 (SmolLM2 shape,
    /// 16 × 4096) `2` took the attention 153.3 → 129.5 ms a pass with moa-50 and 235.1 →
    /// 201.0 dense, prefill 112.6k → 123.1k and 87.9k → 97.0k tok/s (two pairs each, A/A
    /// ≤ 0.1%; RESULTS "wgpu engine, session 29 (branch s29-pattn)"). Session 29's `3` and
    /// `4` (two passes over the keys, P·V in C matrices with no rescale: 183 and 208 ms)
    /// were deleted.
    pub coop_attention_form: u32,
    /// `MOA_WGPU_COOP_ATTN_DIAG` (default `0`): a timing diagnostic of the group form
    /// (`1` no softmax, `2` P·V summed in C matrices without the per-tile round trip, `3`
    /// no K/V loads in the loop, `4` no K loads, `5` no V loads: `2`–`5` on the form
    /// without staging; with V in K's tile (session 32): `1` keeps the staging, `7` none
    /// of its 4 workgroup barriers a tile; `6`, no staging in the loop, left V's binding
    /// unused and failed to bind on the H200: deleted, its build refused, so the scalar
    /// attention runs). **Wrong results, no start-up check**: for the profile
    /// only (session 29: with form 1, 113.6, 144.4 and 62.2 ms against 153.3; `3` with
    /// form 2: 56.9 against 129.5; session 32, V in K's tile: `1` 30.3 and `7` 75.1
    /// against 80.0).
    pub coop_attention_diag: u32,
    /// `MOA_WGPU_COOP_ATTN_STAGE_K` (default `1`): the group form stages each key tile's
    /// K in workgroup memory (16-byte loads once per workgroup, two tiles ahead in
    /// registers, stored between two workgroup barriers a tile) where it fits (GQA group
    /// of 3 at head_dim 64: exactly 48 KiB), the scores reading it as B matrices; `0`:
    /// every subgroup reads K from storage. With `_V_EARLY` on the H200 (SmolLM2 shape,
    /// 16 × 4096) the attention went 129.5 → 102.3 ms a pass with moa-50 and 200.9 →
    /// 153.5 dense, prefill 143.1k → 162.4k tok/s (RESULTS "wgpu engine, session 30
    /// (branch s30-pattn)"; K staged alone 104.2 and 156.0 ms).
    pub coop_attention_stage_k: bool,
    /// `MOA_WGPU_COOP_ATTN_V_EARLY` (default `1`): the group form reads each tile's V B
    /// matrices from storage right after the scores, before the softmax (their latency
    /// behind it); `0`: where P·V uses them. Session 30 on the H200: with K staged 104.2
    /// → 102.3 ms a pass (moa-50), 156.0 → 153.5 (dense); alone 134.2 against 129.5
    /// (moa-50, a loss) and 198.4 against 200.9 (dense), so where K cannot be staged (no
    /// f16-in-f32 conversions, no room) the engine drops it too, unless `_STAGE_K=0`.
    pub coop_attention_v_early: bool,
    /// `MOA_WGPU_COOP_ATTN_V_IN_K` (default `1`; built in session 31 as
    /// `MOA_WGPU_COOP_ATTN_LIVE=4`): the group form stages V too, in the staged K tile's
    /// own buffer ([`crate::codegen::wgsl::PrefillGroupForm::v_in_k`]: its 16-byte words
    /// loaded once per workgroup, stored over the tile's K after the scores, the next K
    /// after P·V: four workgroup barriers a tile), where K is staged (else dropped; not
    /// with a diagnostic); `0`: V read from storage as B matrices by every subgroup (early,
    /// with `_V_EARLY`). Session 32 on the H200 (SmolLM2 shape, 16 × 4096, A B C C B A in
    /// one call): the attention 101.7–101.9 → 80.0 ms a pass (moa-50; 221 registers
    /// against 255) and 153.1–153.2 → 120.0–120.3 (dense), prefill 161.2–162.3k →
    /// 180.9–181.2k tok/s (RESULTS "wgpu engine, session 32, lead call 1").
    pub coop_attention_v_in_k: bool,
    /// `MOA_WGPU_COOP_ATTN_MASK_SELECT` (default `1` since session 32; `0` the branch form):
    /// the group form's softmax reads every score of its keys and masks with `select()`
    /// instead of reading the visible keys' scores inside a branch
    /// ([`crate::codegen::wgsl::PrefillGroupForm::mask_select`]; session 32's
    /// `_DIAG=1`, no softmax, took the attention 80.0 → 30.3 ms a pass with moa-50). On the
    /// H200 (SmolLM2 shape, 16 × 4096, A M M A A M in one call, session 32's lead call 2):
    /// the attention 80.5–80.7 → 77.2–77.3 ms a pass (moa-50) and 121.0 → 114.5–114.6
    /// (dense), prefill 182.0–183.1k → 185.6–185.9k tok/s (dense 148.6–149.0k →
    /// 152.8–153.3k), 236 registers against 221, parity unchanged.
    pub coop_attention_mask_select: bool,
    /// `MOA_WGPU_COOP_ATTN_SCORE_REGS` (default `1` since session 32, branch s32-soft; `0`
    /// main's two loops over workgroup memory): the group form's softmax reads each
    /// invocation's scores once, 4 keys a read, into registers serving both the row's
    /// maximum and P, and masks only in key tiles not wholly visible to its query
    /// (supersedes `_MASK_SELECT`; not with `_DIAG=1`)
    /// ([`crate::codegen::wgsl::PrefillGroupForm::score_regs`]). On the H200 (SmolLM2
    /// shape, 16 × 4096, A B B A A B in one call, s32-soft's call 1): the attention
    /// 77.23–77.26 → 37.89–38.45 ms a pass (moa-50) and 114.47–114.52 → 52.76–52.98
    /// (dense), prefill 183.2–184.1k → 234.5–237.0k tok/s (dense 151.4–152.5k →
    /// 209.1–212.2k), 239 registers against 236, start-up check unchanged (4.9e-4);
    /// RESULTS "wgpu engine, session 32 (branch s32-soft)".
    pub coop_attention_score_regs: bool,
    /// `MOA_WGPU_WARM` (default `auto`: on CPU adapters): run every pipeline once at load
    /// (llvmpipe compiles at first dispatch: ~100 s inside a first run's timings).
    pub warm_up: Option<bool>,
    /// `MOA_WGPU_TEXTURE_WEIGHTS` (default `auto`: on for CPU adapters whose every product
    /// runs `linear_words.wgsl`, i.e. split-K and tiled products off (their default there)
    /// and no matrix units; it halves lavapipe's SmolLM2 decode step): the f16 matrices whose
    /// K is a multiple of 8 uploaded as `rgba32uint` textures (8192 texels a row), which
    /// `linear_words.wgsl` and the embedding gather read: on llvmpipe a texture load is
    /// vectorized and a storage load a gather lane by lane (DESIGN.md §7). Where every
    /// product reads them they replace the storage copies (the weights take their own
    /// size); where another path may run (split-K, tiled, matrix units) the storage form
    /// is kept beside them (twice the memory), so `1` there only helps the products that
    /// `linear_words.wgsl` runs.
    pub texture_weights: Option<bool>,
    /// `MOA_WGPU_QUANT_WEIGHTS` (default `auto`: on for a GPU adapter whose decode products
    /// run split-K on subgroups of a fixed size, and where `linear_words.wgsl` runs every
    /// product from textures, a CPU adapter's default; off elsewhere,
    /// [`WgpuEngineOptions::product_paths`]): a GGUF file's
    /// quantized layer matrices (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) kept in
    /// their quantization on the device ([`crate::model::QuantMatrix`]: 0.75 bytes a weight
    /// for the 4-bit types, 1.25 for the 5- and 8-bit ones, against f16's 2), read by
    /// `matvec_q.wgsl` (decode products of up to 4 rows), the quantized forms of `linear_words.wgsl` (from textures on a
    /// texture-weights engine, `quant_weights_texture.wgsl`), `matvec.wgsl` and `matvec_sg.wgsl`, and
    /// a prefill's tiled or matrix-unit products through an f16 copy of each part
    /// (`dequant.wgsl`). Only a streamed model ([`crate::ModelRef::Streamed`], what `moa
    /// generate` loads) has its file's blocks to keep; the embedding and the LM head stay
    /// in the storage type; the matrix-unit decode products skip quantized matrices.
    /// Measured (benches/RESULTS.md "Session 58"):
    /// device memory −34 to −44% (H100 through Vulkan, 3B Q4_K_M: 8.7 → 4.8 GB), the same
    /// tokens, prefill at parity, one-row decode 1.04–1.14× on the H100 (`matvec_q.wgsl`),
    /// 16 rows 0.86–1.03× (`matvec_sg.wgsl`'s quantized form), and 0.7–0.9× on lavapipe
    /// from storage buffers; from textures (session 60) the f16 copy's speed on lavapipe,
    /// the same tokens, peak memory −33% (1B Q4_K_M: 3.23 → 2.17 GB). Only a model with a
    /// layer matrix to keep builds the quantized pipelines.
    pub quant_weights: Option<bool>,
    /// `MOA_WGPU_QUANT_GEMV_ROWS` (default `4`, allowed 0 to 64): the most rows of a
    /// quantized decode product that `matvec_q.wgsl` runs (more run `matvec_sg.wgsl`'s
    /// quantized form; `0` never uses it). SmolLM2's 16-row step on it took 0.45× the f16
    /// step's time on the H100 (K 576 leaves lanes idle), one row of the 1B and 3B shapes
    /// 1.04–1.14× (benches/RESULTS.md "Session 58").
    pub quant_gemv_rows: u32,
    /// `MOA_WGPU_QUANT_GEMV_UNROLL` (default `1`, allowed 1 or 2): words of codes a lane of
    /// `matvec_q.wgsl` loads before it folds any (`UNROLL`); 2 puts twice the bytes in
    /// flight for the products whose few workgroups leave the GPU short of loads.
    pub quant_gemv_unroll: u32,
    /// `MOA_WGPU_MAX_BINDING_KIB` (default: the adapter's `max_storage_buffer_binding_size`;
    /// allowed 16 to 4194304 KiB, taken up to the adapter's): the storage binding limit
    /// the engine plans its buffers for, so that an adapter with large bindings runs the
    /// split forms a small one needs (weights split by rows, prefill passes of row groups
    /// and token chunks, a long row in parts, caches split by rows; DESIGN.md §7) and a
    /// user whose driver fails on large bindings can stay under them. `moa generate`,
    /// `eval` and `validate --gpu` check prompts against the same limit before the load.
    pub max_binding_kib: Option<u32>,
    /// `MOA_WGPU_STATS` (default `0`): `1` prints each request's decode summary
    /// ([`super::DecodeStats::summary`]) to stderr when it ends.
    pub print_stats: bool,
    /// `MOA_WGPU_COOP_HEAD` (default `auto`): the decode LM head on matrix units. The
    /// matrix-unit head took 87–97 → 73–84 µs (session 11), staged 75–77 → 70–71
    /// (session 12).
    pub coop_head: CoopHeadChoice,
    /// `MOA_WGPU_COOP_HEAD_TILES` (default `2`): 16-column tiles per subgroup of the
    /// direct head (`coop_matvec.wgsl`), 1, 2 or 4.
    pub coop_head_tiles: u32,
    /// `MOA_WGPU_COOP_HEAD_BLOCKS` (default `2`): blocks of 64 columns per workgroup of
    /// the staged head, 1 to 4; 2 against 3: noise (session 12, calls 1–2); 3 (one wave
    /// of 256 workgroups at 2 an SM) above 2 in 3 of 4 pairs, +0.18% tokens/s in mean
    /// (session 34, s34-head): not every pair, 2 stays.
    pub coop_head_blocks: u32,
    /// `MOA_WGPU_COOP_HEAD_KS` (default unset: the widest multiple of 16 dividing K, at
    /// most 192, that fits): the staged head's K a stage; ignored where it does not fit.
    pub coop_head_ks: Option<u32>,
    /// `MOA_WGPU_COOP_HEAD_DIAG` (default `0`): the staged head's timing diagnostic, 1
    /// (no weights), 2 (no x staged) or 4 (no multiply-adds). **Wrong results, no start-up
    /// check**: for the profile only (session 12, call 2).
    pub coop_head_diag: u32,
    /// `MOA_WGPU_COOP_HEAD_UNCHECKED` (default `1`): the staged head (`coop_head.wgsl`)
    /// built without naga's runtime checks (index clamps, loop counters), as
    /// `MOA_WGPU_UNCHECKED` builds the engine's other shaders; its indices are bounded by
    /// its constants and `params` (fetches clamped to the last column, x and the stores
    /// guarded). `0` keeps the checks. On the H200 (SmolLM2 shape, 16 × 4096, moa-50;
    /// session 33, s33-head) the head 48.3 → 31.5 µs (`--profile 5`), tokens/s +0.88%
    /// (every one of 4 runs above every one of 4 with the checks), the same logits
    /// (parity 0.0496, argmax 3/3).
    pub coop_head_unchecked: bool,
    /// `MOA_WGPU_COOP_HEAD_WIDE` (default `auto`): the staged head in workgroups of 16
    /// subgroups (`coop_head_wide.wgsl`, session 36): 512 invocations on 32 lanes, so the
    /// driver keeps at most 128 registers (122 on the H200 against `coop_head.wgsl`'s 247)
    /// and a workgroup holds a block's stages of weights in flight (72 KB at K 576,
    /// against 24 KB a workgroup and 2 workgroups an SM), in one wave. `auto` (`None`):
    /// ceil(vocabulary / 64 / 128) blocks of 64 columns a workgroup (128 workgroups: one an
    /// SM on the H200's 132; SmolLM2: 6); N (1 to 64): N blocks; `0`: the 4-subgroup head
    /// (`coop_head.wgsl`, which `_BLOCKS`, `_KS` and `_DIAG` tune; a `_DIAG` run takes it
    /// too). For K a multiple of 64 up to 1024 (a subgroup's A fragments stay in
    /// registers), elsewhere the 4-subgroup head. On the H200 (SmolLM2 16 × 4096, moa-50;
    /// s36-head call 2): head 31.2 → 25.7 µs (`--profile 5`), tokens/s above main's head in
    /// 4 of 4 pairs (+0.75..+0.94% in three, +3.5% in one with a slow A), parity unchanged
    /// (0.0534, 3/3, the same greedy tokens).
    pub coop_head_wide: Option<u32>,
    /// `MOA_WGPU_HEAD_ARGMAX` (default `1`): greedy steps take the argmax's first stage
    /// in the matrix-unit head's epilogue; `0` writes logits (argmax 10.6 → 5–8 µs,
    /// session 11).
    pub head_argmax: bool,
    /// `MOA_WGPU_COOP_DECODE` (default `auto`: gate/up): the decode products on matrix
    /// units. Gate/up won (8.15–8.74 against 9.17–9.31 µs), the output product tied
    /// (5.72–6.13 against 5.89–6.14: a win in one call, a loss in the other), so `1` adds
    /// it on request (session 13, calls 1–2); `0` takes gate/up off too. Without naga's
    /// checks the output product still lost: 5.09–5.12 against 4.40–4.69 µs on
    /// subgroups, tokens/s −2.5..−4% (session 34, s34-prod call 1).
    pub coop_decode: CoopDecodeChoice,
    /// `MOA_WGPU_COOP_QKV` (default `0`): the decode QKV product on matrix units (RoPE +
    /// cache write in its epilogue). Measured once: 8.09 against 7.35 µs (RESULTS "Lead
    /// calls (session 13)"); opt-in. Without naga's checks 7.3–9.6 against 5.6–6.2 µs,
    /// tokens/s −6..−7% (session 34, s34-prod call 1).
    pub coop_qkv: bool,
    /// `MOA_WGPU_COOP_DECODE_UNCHECKED` (default `1`): the decode products on matrix units
    /// (`coop_matvec.wgsl`: the gate/up product, and where asked for the output and QKV
    /// products and the direct head) built without naga's runtime checks (index clamps
    /// around every `coopLoad` and x load, loop counters), as the staged head is since
    /// session 33 (`MOA_WGPU_COOP_HEAD_UNCHECKED`). Their indices are bounded by the host's
    /// grid and `params`: the B fragments' columns clamped to the last tile, x's loads
    /// guarded, every store guarded, the direct walk bound only where the input holds
    /// whole 16-row blocks. The fused dispatch (`MOA_WGPU_DECODE_FUSED_MLP`) is built the
    /// same way (session 34, s34-fuse: +1.6% tokens/s for the separate products in its
    /// calls, 11 321–11 381 against 11 125–11 204). `0` keeps the checks. On the H200 (SmolLM2 shape, 16 × 4096, moa-50; session 34,
    /// s34-prod call 1) tokens/s 11 194–11 248 → 11 344–11 404 (+1.45% in mean, every one
    /// of 3 runs above every one of 3 with the checks), gate/up 7.70 → 7.38 µs
    /// (`--profile 5`), 236 → 219 registers, the same logits (0.0496, 3/3).
    pub coop_decode_unchecked: bool,
    /// The tuning of the WGSL attention kernels the engine compiles from its plan
    /// ([`WgslTuning`]; default: [`engine_wgsl_tuning`], `moa-compile`'s
    /// [`WgslTuning::default`] with the flat decode on subgroups, 0.87–0.93× the scalar
    /// decode's time on the H200, session 19). Only the decode's forms are read from the
    /// environment, with the decode bench's names and values: `MOA_WGSL_FUSED_MERGE`
    /// (unset, the default: the form's choice, [`engine_fused_merge`]: on in the flat
    /// decode on subgroups, off in the scalar decode and the other subgroup forms; `0`: the
    /// separate merge dispatch everywhere; `1`: fused wherever the form has one, the scalar
    /// decode included: [`WgslTuning::decode_fused_merge`]) and `MOA_WGSL_V_FIRST` (`0`/`1`:
    /// [`WgslTuning::decode_v_first`], the scalar decode's opt-in form); `MOA_WGSL_SG_DECODE`
    /// (`0`: the scalar decode; `1`, the default: the decode on subgroups at the adapter's
    /// subgroup size, [`WgslTuning::decode_subgroup`] = `Some(0)`, resolved when the engine
    /// compiles, the scalar decode where the adapter has no fixed size; `read`: its
    /// loads-only timing diagnostic, wrong results, [`WgslTuning::decode_sg_diag`]);
    /// `MOA_WGSL_SG_PIPE` (`0`, `1`, `2`, `4`: with the decode on subgroups, its pipelined
    /// form taking that many work items a workgroup, [`WgslTuning::decode_sg_pipe`];
    /// 1.35–1.41× the scalar decode's time, session 16), and `MOA_WGSL_SG_FLAT` (`late`,
    /// the default: the flat form, [`WgslTuning::decode_sg_flat`]; `1`: its first step's K
    /// issued before the row position, not timed in this form; `0`: `decode_sg.wgsl.j2`,
    /// 23.3–23.6 against 22.25 µs a layer, session 16), and
    /// `MOA_WGSL_SG_FLAT_SUBGROUPS` (`2`, `4` or `8`: the flat form's subgroups a
    /// workgroup; unset: 8 at head_dim ≤ 64 in a GQA group, else 4,
    /// [`WgslTuning::decode_sg_flat_subgroups`]), and `MOA_WGSL_SG_FLAT_QK` (`f32`, the
    /// default, `h16`, `reload`, `h16-reload`: how the flat form forms Q·K,
    /// [`WgslTuning::decode_sg_flat_qk`]; opt-in forms aiming at the f32 form's accuracy
    /// within fewer registers, session 21), and `MOA_WGSL_SG_FLAT_WORDS` (`1`, the default since
    /// session 25: the flat form reads each lane's K and V vectors
    /// as 16-byte words unpacked to f32, f16 storage, [`WgslTuning::decode_sg_flat_words`];
    /// `0`: as `mat2x4<f16>`, as before), and `MOA_WGSL_SG_FLAT_CMAX` (`1`, the default since
    /// session 26: each slot class of the flat form keeps its own softmax maxima,
    /// [`WgslTuning::decode_sg_flat_cmax`]; `0`: a `subgroupMax` a step, as before) and `MOA_WGSL_SG_FLAT_NL` (`1`, `2`, `4`, `8`: the flat form's
    /// loads a lane per step, [`WgslTuning::decode_sg_flat_nl`]; unset: half a row's
    /// vectors; opt-in, session 26), and `MOA_WGSL_SG_FLAT_QPACK` (`1`: the flat form holds
    /// each lane's queries as packed f16 words and widens them in each step,
    /// [`WgslTuning::decode_sg_flat_qpack`]; opt-in, session 28), and `MOA_WGSL_RULES_TABLE`
    /// (`0`: the flat form's rules baked into each layer's shader as `moa-compile` emits
    /// them instead of read from a per-layer table, [`WgslTuning::rules_table`]; on
    /// by default since session 43); tests and benches may
    /// set any field. Speed only: every form matches the CPU reference (tests/model_gpu.rs,
    /// tests/wgsl_decode_forms.rs). The fused merge was slower in the engine's step
    /// in the scalar decode (RESULTS "Lead calls (session 13)"); in the flat form it won
    /// tokens/s in 7 of 7 pairs and the device step in 6 of 7 (RESULTS "WGSL decode,
    /// session 24" and its lead call): the flat form's default since session 25; V first is
    /// not yet timed there. The first
    /// tile's loads with the work item and the next tile's K (session 14) lost in the step
    /// and were deleted ([`REMOVED`]). Precompiled kernels (`moa generate --kernels`,
    /// [`super::WgpuEngine::with_kernels`]) carry their own tuning (`moa-compile`'s: the
    /// scalar decode), so asking another there is refused
    /// ([`WgpuEngineOptions::wgsl_tuning_asked`]).
    pub wgsl_tuning: WgslTuning,
    /// `MOA_WGPU_UNCHECKED` (default `1`): the engine's own shaders (products, norms,
    /// head, argmax, RoPE/cache write, the prefill products on matrix units since session
    /// 27, the prefill attention on matrix units since session 28; not the decode
    /// matrix-unit kernels: the staged head has its own `MOA_WGPU_COOP_HEAD_UNCHECKED`, the
    /// products and the fused dispatch `MOA_WGPU_COOP_DECODE_UNCHECKED`)
    /// built without naga's
    /// runtime checks (index clamps, loop counters), as the attention's decode already is;
    /// `0` keeps the checks. On the H200 (SmolLM2 shape, 16 × 4096, moa-50) the device step
    /// went 1 880–1 883 → 1 808–1 823 µs (qkv 7.5 → 7.0, out 6.0 → 5.5–5.8, down 8.35 →
    /// 7.9–8.1 µs), the same logits as with the checks (RESULTS "wgpu engine, session 16").
    pub unchecked_products: bool,
    /// `MOA_WGPU_COOP_DIRECT` (`0`, `1` or `2`; default `2`): the prefill products on
    /// matrix units (`coop_linear.wgsl`'s DIRECT, f32 accumulator) store a whole 128 × 128
    /// tile's accumulator fragments straight to the output, the residual loaded as their
    /// initial value, and with `2` also an edge tile's 64 × 32 subgroup blocks that lie
    /// inside the output; `0` takes every tile through the 16 × 16 scratch with two
    /// barriers a fragment (session 27's epilogue). Outputs whose stride or first column
    /// is not a multiple of 4 and f16 accumulators always take the scratch. On the H200
    /// (SmolLM2 shape, 16 × 4096, moa-50) the prefill pass went 537.7–538.5 ms (`0`) →
    /// 526.8–527.7 (`1`) → 519.6–520.1 (`2`), its products 150.7 → 140 → 133 ms, parity
    /// unchanged (RESULTS "wgpu engine, session 28 (branch s28-gemm)").
    pub coop_direct: u32,
    /// `MOA_WGPU_COOP_SWIGLU` (default `1`): prefill passes on matrix units run SwiGLU in
    /// the gate/up product's epilogue (`coop_linear.wgsl`'s SWIGLU: each subgroup's
    /// fragment pairs hold the gate and up columns of the same 16 act columns, staged
    /// from the unchanged `[gate; up]` weight), writing the act straight from the
    /// product, with no gate/up activation and no `swiglu.wgsl` pass; `0` keeps the
    /// product and the SwiGLU pass apart (session 28). Where the weight is split over
    /// the binding limit the passes stay apart (session 29).
    pub coop_swiglu: bool,
    /// `MOA_WGPU_ROPE_TOKENS` (`1`, `2`, `4` or `8`; default `8`): tokens a workgroup of
    /// the separate RoPE + cache-write pass (`rope_kv.wgsl`'s RT; prefill passes, and
    /// decode passes that do not fuse it). With one, a SmolLM2 layer's 32 768 tokens take
    /// 491 520 workgroups of 32 invocations, ≈ 80 ns a workgroup an SM on the H200. With 8
    /// the pass took 2.8 ms of a prefill pass against 9.1 ms (+2.4–2.6% prefill tok/s,
    /// A/A 0.3%; RESULTS "wgpu engine, session 29, lead call"): the default since
    /// session 30.
    pub rope_tokens: u32,
    /// `MOA_WGPU_DECODE_CHUNK` (slots, 1 to 65536; default unset: chosen per layer by the
    /// work-list model): the decode work list's chunk length (rounded up to the decode's
    /// key tile), as [`super::WgpuEngine::set_decode_chunk`] sets it. For benchmarks of the
    /// work list's grid: on the H200 (SmolLM2 shape, 16 × 4096) the read-only decode took
    /// 22.4 µs a layer at 128 slots and 43.2 at 1024 against 20.8 with the model's ~256
    /// (RESULTS "wgpu engine, session 16").
    pub decode_chunk: Option<std::num::NonZeroU32>,
    /// `MOA_WGPU_DECODE_RESIDENT` (workgroups, 1 to 65536; default unset: the constant
    /// of the layer's shape, `lower::consts::wgsl_decode_concurrent_workgroups`): the
    /// resident workgroups the work-list model assumes when it picks each layer's chunk
    /// length (`runtime::worklist::choose_chunk`), as the decode bench's `auto@W` sets it.
    /// A decode form with other registers or another workgroup size holds another count
    /// on an SM (the flat form with 8 subgroups: 256 invocations at 119 registers, 2 an SM,
    /// 264 on the H200's 132 SMs). Ignored where `MOA_WGPU_DECODE_CHUNK` is set.
    pub decode_resident: Option<std::num::NonZeroU32>,
}

impl Default for WgpuEngineOptions {
    fn default() -> Self {
        WgpuEngineOptions {
            split_k: None,
            tiled: None,
            tiled_block: 4,
            subgroup_matvec: true,
            sg_ksplit: None,
            sg_groups: None,
            sg_rows: None,
            sg_unroll: None,
            sg_fit: None,
            sg_early: true,
            sg_xfirst: false,
            sg_diag: 0,
            row_block: 4,
            two_stage_argmax: true,
            pre_encode: true,
            submit_ahead: true,
            feed_in_place: false,
            swiglu_out: true,
            decode_fused_mlp: false,
            decode_fused_groups: 132,
            decode_fused_split: 0,
            decode_fused_meet: 1,
            coop_attention: true,
            coop_attention_group: true,
            coop_attention_form: 2,
            coop_attention_diag: 0,
            coop_attention_stage_k: true,
            coop_attention_v_early: true,
            coop_attention_v_in_k: true,
            coop_attention_mask_select: true,
            coop_attention_score_regs: true,
            warm_up: None,
            texture_weights: None,
            quant_weights: None,
            quant_gemv_rows: 4,
            quant_gemv_unroll: 1,
            max_binding_kib: None,
            print_stats: false,
            coop_head: CoopHeadChoice::Staged,
            coop_head_tiles: 2,
            coop_head_blocks: 2,
            coop_head_ks: None,
            coop_head_diag: 0,
            coop_head_unchecked: true,
            coop_head_wide: None,
            head_argmax: true,
            coop_decode: CoopDecodeChoice::GateUp,
            coop_qkv: false,
            coop_decode_unchecked: true,
            wgsl_tuning: engine_wgsl_tuning(),
            unchecked_products: true,
            coop_direct: 2,
            coop_swiglu: true,
            rope_tokens: 8,
            decode_chunk: None,
            decode_resident: None,
        }
    }
}

impl WgpuEngineOptions {
    /// The storage binding limit (bytes) an engine with these options plans for on an
    /// adapter whose `max_storage_buffer_binding_size` is `adapter`:
    /// `MOA_WGPU_MAX_BINDING_KIB` where given, never above `adapter`.
    pub fn binding_limit(&self, adapter: u64) -> u64 {
        self.max_binding_kib
            .map_or(adapter, |k| (u64::from(k) << 10).min(adapter))
    }

    /// The settings of the process environment; warns (stderr, once a process) of unknown
    /// `MOA_WGPU_*` / `MOA_WGSL_*` names.
    pub fn from_env() -> Result<Self, OptionsError> {
        warn_unknown_once();
        Self::from_lookup(&process_env)
    }

    /// The settings `env` gives (unset: the defaults).
    pub fn from_lookup(env: Lookup) -> Result<Self, OptionsError> {
        let d = Self::default();
        Ok(WgpuEngineOptions {
            split_k: tristate(env, "MOA_WGPU_SPLIT_K")?,
            tiled: tristate(env, "MOA_WGPU_TILED")?,
            tiled_block: choice(
                env,
                "MOA_WGPU_TILED_BLOCK",
                "4 or 8",
                &[("4", 4), ("8", 8)],
                d.tiled_block,
            )?,
            subgroup_matvec: choice(
                env,
                "MOA_WGPU_MATVEC",
                "sg or tree",
                &[("sg", true), ("tree", false)],
                d.subgroup_matvec,
            )?,
            sg_ksplit: choice(
                env,
                "MOA_WGPU_SG_KSPLIT",
                "1, 2, 4, 8 or auto",
                POW2_OR_AUTO,
                d.sg_ksplit,
            )?,
            sg_groups: choice(
                env,
                "MOA_WGPU_SG_GROUPS",
                "1, 2, 4, 8 or auto",
                POW2_OR_AUTO,
                d.sg_groups,
            )?,
            sg_rows: choice(
                env,
                "MOA_WGPU_SG_ROWS",
                "4, 8, 16 or auto",
                &[
                    ("4", Some(4)),
                    ("8", Some(8)),
                    ("16", Some(16)),
                    ("auto", None),
                ],
                d.sg_rows,
            )?,
            sg_unroll: choice(
                env,
                "MOA_WGPU_SG_UNROLL",
                "1, 2, 4 or auto",
                &[
                    ("1", Some(1)),
                    ("2", Some(2)),
                    ("4", Some(4)),
                    ("auto", None),
                ],
                d.sg_unroll,
            )?,
            sg_fit: tristate(env, "MOA_WGPU_SG_FIT")?,
            sg_early: flag(env, "MOA_WGPU_SG_EARLY", d.sg_early)?,
            sg_xfirst: flag(env, "MOA_WGPU_SG_XFIRST", d.sg_xfirst)?,
            sg_diag: number(env, "MOA_WGPU_SG_DIAG", "0 to 5", 0..=5)?.unwrap_or(d.sg_diag),
            row_block: choice(
                env,
                "MOA_WGPU_ROW_BLOCK",
                "4, 8 or 16",
                &[("4", 4), ("8", 8), ("16", 16)],
                d.row_block,
            )?,
            two_stage_argmax: flag(env, "MOA_WGPU_ARGMAX2", d.two_stage_argmax)?,
            pre_encode: flag(env, "MOA_WGPU_PREENCODE", d.pre_encode)?,
            submit_ahead: flag(env, "MOA_WGPU_AHEAD", d.submit_ahead)?,
            feed_in_place: flag(env, "MOA_WGPU_FEED_IN_PLACE", d.feed_in_place)?,
            swiglu_out: flag(env, "MOA_WGPU_SWIGLU_OUT", d.swiglu_out)?,
            decode_fused_mlp: flag(env, "MOA_WGPU_DECODE_FUSED_MLP", d.decode_fused_mlp)?,
            decode_fused_groups: number(
                env,
                "MOA_WGPU_DECODE_FUSED_GROUPS",
                "a whole number from 1 to 1056",
                1..=1056,
            )?
            .unwrap_or(d.decode_fused_groups),
            decode_fused_split: number(env, "MOA_WGPU_DECODE_FUSED_SPLIT", "0 or 1", 0..=1)?
                .unwrap_or(d.decode_fused_split),
            decode_fused_meet: number(env, "MOA_WGPU_DECODE_FUSED_MEET", "0 or 1", 0..=1)?
                .unwrap_or(d.decode_fused_meet),
            coop_attention: flag(env, "MOA_WGPU_COOP_ATTN", d.coop_attention)?,
            coop_attention_group: choice(
                env,
                "MOA_WGPU_COOP_ATTN_GROUP",
                "0 or 1 (session 27's forms 2 to 4 were deleted in session 28: its 2 is now 1)",
                &[("0", false), ("1", true)],
                d.coop_attention_group,
            )?,
            coop_attention_form: choice(
                env,
                "MOA_WGPU_COOP_ATTN_FORM",
                "1 or 2 (session 29's two-pass forms 3 and 4 lost on the H200 and were deleted)",
                &[("1", 1), ("2", 2)],
                d.coop_attention_form,
            )?,
            coop_attention_diag: number(env, "MOA_WGPU_COOP_ATTN_DIAG", "0 to 7", 0..=7)?
                .unwrap_or(d.coop_attention_diag),
            coop_attention_stage_k: flag(
                env,
                "MOA_WGPU_COOP_ATTN_STAGE_K",
                d.coop_attention_stage_k,
            )?,
            coop_attention_v_early: flag(
                env,
                "MOA_WGPU_COOP_ATTN_V_EARLY",
                d.coop_attention_v_early,
            )?,
            coop_attention_v_in_k: flag(env, "MOA_WGPU_COOP_ATTN_V_IN_K", d.coop_attention_v_in_k)?,
            coop_attention_mask_select: flag(
                env,
                "MOA_WGPU_COOP_ATTN_MASK_SELECT",
                d.coop_attention_mask_select,
            )?,
            coop_attention_score_regs: flag(
                env,
                "MOA_WGPU_COOP_ATTN_SCORE_REGS",
                d.coop_attention_score_regs,
            )?,
            warm_up: tristate(env, "MOA_WGPU_WARM")?,
            texture_weights: tristate(env, "MOA_WGPU_TEXTURE_WEIGHTS")?,
            quant_weights: tristate(env, "MOA_WGPU_QUANT_WEIGHTS")?,
            quant_gemv_rows: number(env, "MOA_WGPU_QUANT_GEMV_ROWS", "0 to 64", 0..=64)?
                .unwrap_or(d.quant_gemv_rows),
            quant_gemv_unroll: number(env, "MOA_WGPU_QUANT_GEMV_UNROLL", "1 or 2", 1..=2)?
                .unwrap_or(d.quant_gemv_unroll),
            max_binding_kib: number(
                env,
                "MOA_WGPU_MAX_BINDING_KIB",
                "16 to 4194304 (KiB)",
                16..=4_194_304,
            )?,
            print_stats: flag(env, "MOA_WGPU_STATS", d.print_stats)?,
            coop_head: choice(
                env,
                "MOA_WGPU_COOP_HEAD",
                "auto, 1, direct or 0",
                &[
                    ("auto", CoopHeadChoice::Staged),
                    ("1", CoopHeadChoice::Staged),
                    ("direct", CoopHeadChoice::Direct),
                    ("0", CoopHeadChoice::Off),
                ],
                d.coop_head,
            )?,
            coop_head_tiles: choice(
                env,
                "MOA_WGPU_COOP_HEAD_TILES",
                "1, 2 or 4",
                &[("1", 1), ("2", 2), ("4", 4)],
                d.coop_head_tiles,
            )?,
            coop_head_blocks: number(env, "MOA_WGPU_COOP_HEAD_BLOCKS", "1, 2, 3 or 4", 1..=4)?
                .unwrap_or(d.coop_head_blocks),
            coop_head_ks: number(
                env,
                "MOA_WGPU_COOP_HEAD_KS",
                "a multiple of 16 from 16 to 4096",
                16..=4096,
            )?
            .map(|ks| {
                ks.is_multiple_of(16).then_some(ks).ok_or(OptionsError {
                    name: "MOA_WGPU_COOP_HEAD_KS",
                    value: ks.to_string(),
                    accepted: "a multiple of 16 from 16 to 4096",
                })
            })
            .transpose()?,
            coop_head_diag: choice(
                env,
                "MOA_WGPU_COOP_HEAD_DIAG",
                "0, 1, 2 or 4",
                &[("0", 0), ("1", 1), ("2", 2), ("4", 4)],
                d.coop_head_diag,
            )?,
            coop_head_unchecked: flag(env, "MOA_WGPU_COOP_HEAD_UNCHECKED", d.coop_head_unchecked)?,
            coop_head_wide: if env("MOA_WGPU_COOP_HEAD_WIDE").is_some_and(|v| v.trim() == "auto") {
                None
            } else {
                number(env, "MOA_WGPU_COOP_HEAD_WIDE", "auto or 0 to 64", 0..=64)?
                    .or(d.coop_head_wide)
            },
            head_argmax: flag(env, "MOA_WGPU_HEAD_ARGMAX", d.head_argmax)?,
            coop_decode: choice(
                env,
                "MOA_WGPU_COOP_DECODE",
                "0, 1 or auto",
                &[
                    ("0", CoopDecodeChoice::Off),
                    ("auto", CoopDecodeChoice::GateUp),
                    ("1", CoopDecodeChoice::OutAndGateUp),
                ],
                d.coop_decode,
            )?,
            coop_qkv: flag(env, "MOA_WGPU_COOP_QKV", d.coop_qkv)?,
            coop_decode_unchecked: flag(
                env,
                "MOA_WGPU_COOP_DECODE_UNCHECKED",
                d.coop_decode_unchecked,
            )?,
            unchecked_products: flag(env, "MOA_WGPU_UNCHECKED", d.unchecked_products)?,
            coop_direct: number(env, "MOA_WGPU_COOP_DIRECT", "0, 1 or 2", 0..=2)?
                .unwrap_or(d.coop_direct),
            coop_swiglu: flag(env, "MOA_WGPU_COOP_SWIGLU", d.coop_swiglu)?,
            rope_tokens: choice(
                env,
                "MOA_WGPU_ROPE_TOKENS",
                "1, 2, 4 or 8",
                &[("1", 1), ("2", 2), ("4", 4), ("8", 8)],
                d.rope_tokens,
            )?,
            decode_chunk: number(env, "MOA_WGPU_DECODE_CHUNK", "1 to 65536 slots", 1..=65536)?
                .and_then(std::num::NonZeroU32::new)
                .or(d.decode_chunk),
            decode_resident: number(
                env,
                "MOA_WGPU_DECODE_RESIDENT",
                "1 to 65536 workgroups",
                1..=65536,
            )?
            .and_then(std::num::NonZeroU32::new)
            .or(d.decode_resident),
            wgsl_tuning: WgslTuning {
                // Unset: the form's choice (`engine_fused_merge`, resolved when the engine
                // compiles the plan).
                decode_fused_merge: choice(
                    env,
                    "MOA_WGSL_FUSED_MERGE",
                    "0 or 1",
                    &[("0", Some(false)), ("1", Some(true))],
                    d.wgsl_tuning.decode_fused_merge,
                )?,
                decode_v_first: flag(env, "MOA_WGSL_V_FIRST", d.wgsl_tuning.decode_v_first)?,
                // `Some(0)`: the adapter's subgroup size, resolved when the engine
                // compiles the plan (`compile_plan`).
                decode_subgroup: choice(
                    env,
                    "MOA_WGSL_SG_DECODE",
                    "0, 1 or read",
                    &[("0", None), ("1", Some(0)), ("read", Some(0))],
                    d.wgsl_tuning.decode_subgroup,
                )?,
                decode_sg_diag: choice(
                    env,
                    "MOA_WGSL_SG_DECODE",
                    "0, 1 or read",
                    &[("0", false), ("1", false), ("read", true)],
                    d.wgsl_tuning.decode_sg_diag,
                )?,
                decode_sg_pipe: choice(
                    env,
                    "MOA_WGSL_SG_PIPE",
                    "0, 1, 2 or 4",
                    &[("0", 0), ("1", 1), ("2", 2), ("4", 4)],
                    d.wgsl_tuning.decode_sg_pipe,
                )?,
                // The flat decode on subgroups (with `MOA_WGSL_SG_DECODE=1` or `read`).
                decode_sg_flat: choice(
                    env,
                    "MOA_WGSL_SG_FLAT",
                    "0, 1 or late",
                    &[
                        ("0", SgFlat::Off),
                        ("1", SgFlat::Early),
                        ("late", SgFlat::Late),
                    ],
                    d.wgsl_tuning.decode_sg_flat,
                )?,
                decode_sg_flat_subgroups: choice(
                    env,
                    "MOA_WGSL_SG_FLAT_SUBGROUPS",
                    "2, 4 or 8",
                    &[("2", 2), ("4", 4), ("8", 8)],
                    d.wgsl_tuning.decode_sg_flat_subgroups,
                )?,
                decode_sg_flat_qk: choice(
                    env,
                    "MOA_WGSL_SG_FLAT_QK",
                    "f32, h16, reload or h16-reload",
                    &[
                        ("f32", FlatQk::F32),
                        ("h16", FlatQk::H16),
                        ("reload", FlatQk::Reload),
                        ("h16-reload", FlatQk::H16Reload),
                    ],
                    d.wgsl_tuning.decode_sg_flat_qk,
                )?,
                decode_sg_flat_words: flag(
                    env,
                    "MOA_WGSL_SG_FLAT_WORDS",
                    d.wgsl_tuning.decode_sg_flat_words,
                )?,
                decode_sg_flat_cmax: flag(
                    env,
                    "MOA_WGSL_SG_FLAT_CMAX",
                    d.wgsl_tuning.decode_sg_flat_cmax,
                )?,
                decode_sg_flat_nl: choice(
                    env,
                    "MOA_WGSL_SG_FLAT_NL",
                    "1, 2, 4 or 8",
                    &[("1", 1), ("2", 2), ("4", 4), ("8", 8)],
                    d.wgsl_tuning.decode_sg_flat_nl,
                )?,
                decode_sg_flat_qpack: flag(
                    env,
                    "MOA_WGSL_SG_FLAT_QPACK",
                    d.wgsl_tuning.decode_sg_flat_qpack,
                )?,
                rules_table: flag(env, "MOA_WGSL_RULES_TABLE", d.wgsl_tuning.rules_table)?,
                ..d.wgsl_tuning
            },
        })
    }

    /// What of [`Self::wgsl_tuning_asked`] kernels compiled ahead of time (`moa generate
    /// --kernels`, [`crate::runtime::wgpu_engine::WgpuEngine::with_kernels`]) cannot honour,
    /// since they keep the tuning they were written with. `MOA_WGSL_RULES_TABLE=0` is left
    /// out: it asks the rules baked into each layer's shader, which is what `moa-compile`
    /// writes ([`WgslTuning::default`]), and the engine binds a rules table only to a kernel
    /// that reads one (round 31: a user comparing the two forms was refused over a folder
    /// that held exactly the form asked, told "moa-compile writes the default tuning").
    pub fn wgsl_tuning_asked_over_precompiled(&self) -> Vec<String> {
        let baked = format!(
            "MOA_WGSL_RULES_TABLE={}",
            u8::from(WgslTuning::default().rules_table)
        );
        let mut asked = self.wgsl_tuning_asked();
        asked.retain(|a| *a != baked);
        asked
    }

    /// How [`Self::wgsl_tuning`] differs from the engine's default ([`engine_wgsl_tuning`]),
    /// each difference named as its variable would set it (`MOA_WGSL_V_FIRST=1`,
    /// `MOA_WGSL_SG_DECODE=0`); fields the environment does not reach are named as fields.
    /// Empty: nothing asked. The fused merge is named wherever it is set, on
    /// (`MOA_WGSL_FUSED_MERGE=1`) or off (`=0`): unset, the engine derives it from the
    /// decode's form ([`engine_fused_merge`]), so either value may ask other kernels than
    /// the default's (and kernels compiled ahead of time, which keep their own, refuse both).
    pub fn wgsl_tuning_asked(&self) -> Vec<String> {
        let t = &self.wgsl_tuning;
        let d = engine_wgsl_tuning();
        let mut asked = Vec::new();
        // (The default leaves it unset: any value set is asked.)
        if let Some(on) = t.decode_fused_merge {
            asked.push(format!("MOA_WGSL_FUSED_MERGE={}", u8::from(on)));
        }
        if t.decode_v_first != d.decode_v_first {
            asked.push(format!("MOA_WGSL_V_FIRST={}", u8::from(t.decode_v_first)));
        }
        if (t.decode_subgroup.is_some(), t.decode_sg_diag)
            != (d.decode_subgroup.is_some(), d.decode_sg_diag)
        {
            asked.push(
                match (t.decode_subgroup.is_some(), t.decode_sg_diag) {
                    (false, _) => "MOA_WGSL_SG_DECODE=0",
                    (true, true) => "MOA_WGSL_SG_DECODE=read",
                    (true, false) => "MOA_WGSL_SG_DECODE=1",
                }
                .into(),
            );
        }
        if t.decode_sg_pipe != d.decode_sg_pipe {
            asked.push(format!("MOA_WGSL_SG_PIPE={}", t.decode_sg_pipe));
        }
        if t.decode_sg_flat != d.decode_sg_flat {
            asked.push(format!("MOA_WGSL_SG_FLAT={}", t.decode_sg_flat.name()));
        }

        if t.decode_sg_flat_subgroups != d.decode_sg_flat_subgroups {
            asked.push(format!(
                "MOA_WGSL_SG_FLAT_SUBGROUPS={}",
                t.decode_sg_flat_subgroups
            ));
        }
        if t.decode_sg_flat_qk != d.decode_sg_flat_qk {
            asked.push(format!(
                "MOA_WGSL_SG_FLAT_QK={}",
                t.decode_sg_flat_qk.name()
            ));
        }
        if t.decode_sg_flat_words != d.decode_sg_flat_words {
            asked.push(format!(
                "MOA_WGSL_SG_FLAT_WORDS={}",
                u8::from(t.decode_sg_flat_words)
            ));
        }
        if t.decode_sg_flat_cmax != d.decode_sg_flat_cmax {
            asked.push(format!(
                "MOA_WGSL_SG_FLAT_CMAX={}",
                u8::from(t.decode_sg_flat_cmax)
            ));
        }
        if t.decode_sg_flat_nl != d.decode_sg_flat_nl {
            asked.push(format!("MOA_WGSL_SG_FLAT_NL={}", t.decode_sg_flat_nl));
        }
        if t.decode_sg_flat_qpack != d.decode_sg_flat_qpack {
            asked.push(format!(
                "MOA_WGSL_SG_FLAT_QPACK={}",
                u8::from(t.decode_sg_flat_qpack)
            ));
        }
        if t.rules_table != d.rules_table {
            asked.push(format!("MOA_WGSL_RULES_TABLE={}", u8::from(t.rules_table)));
        }

        let rest = WgslTuning {
            decode_fused_merge: d.decode_fused_merge,
            decode_v_first: d.decode_v_first,
            decode_subgroup: d.decode_subgroup,
            decode_sg_diag: d.decode_sg_diag,
            decode_sg_pipe: d.decode_sg_pipe,
            decode_sg_flat: d.decode_sg_flat,
            decode_sg_flat_subgroups: d.decode_sg_flat_subgroups,
            decode_sg_flat_qk: d.decode_sg_flat_qk,
            decode_sg_flat_words: d.decode_sg_flat_words,
            decode_sg_flat_cmax: d.decode_sg_flat_cmax,
            decode_sg_flat_nl: d.decode_sg_flat_nl,
            decode_sg_flat_qpack: d.decode_sg_flat_qpack,
            rules_table: d.rules_table,
            ..*t
        };
        if rest != d {
            asked.push(format!("WgslTuning fields set in code ({rest:?})"));
        }
        asked
    }
}

impl WgpuEngineOptions {
    /// The subgroup products' settings away from their defaults, as `NAME=value` in the
    /// order of DESIGN §7.3's table: `MOA_WGPU_SG_KSPLIT`, `_GROUPS`, `_ROWS`, `_UNROLL`,
    /// `_FIT`, `_EARLY`, `_XFIRST`, `_DIAG`. The engine names them as not applied where
    /// the subgroup products do not run (round 25: `MOA_WGPU_SG_UNROLL=4` on lavapipe,
    /// whose split-K products are off, ran without a word).
    pub fn subgroup_products_asked(&self) -> Vec<String> {
        let d = Self::default();
        let mut asked = Vec::new();
        let mut opt = |name: &str, v: Option<u32>, dv: Option<u32>| {
            if v != dv {
                asked.push(format!(
                    "{name}={}",
                    v.map_or("auto".to_string(), |v| v.to_string())
                ));
            }
        };
        opt("MOA_WGPU_SG_KSPLIT", self.sg_ksplit, d.sg_ksplit);
        opt("MOA_WGPU_SG_GROUPS", self.sg_groups, d.sg_groups);
        opt("MOA_WGPU_SG_ROWS", self.sg_rows, d.sg_rows);
        opt("MOA_WGPU_SG_UNROLL", self.sg_unroll, d.sg_unroll);
        if let Some(on) = self.sg_fit {
            asked.push(format!("MOA_WGPU_SG_FIT={}", u8::from(on)));
        }
        if self.sg_early != d.sg_early {
            asked.push(format!("MOA_WGPU_SG_EARLY={}", u8::from(self.sg_early)));
        }
        if self.sg_xfirst != d.sg_xfirst {
            asked.push(format!("MOA_WGPU_SG_XFIRST={}", u8::from(self.sg_xfirst)));
        }
        if self.sg_diag != d.sg_diag {
            asked.push(format!("MOA_WGPU_SG_DIAG={}", self.sg_diag));
        }
        asked
    }
    /// The load line's words on [`Self::wgsl_tuning`]: empty for the default kernels, else
    /// `"; WGSL attention tuning: …"` naming what was asked ([`Self::wgsl_tuning_asked`]).
    /// `coop_decode_runs`: the decode attention runs on cooperative matrices
    /// (`MOA_WGSL_DECODE=coop` on an adapter that has them). The `MOA_WGSL_*` decode forms
    /// are the scalar decode's, so there they are said not to apply rather than named as
    /// if they ran. Not refused: where `coop` falls back to the scalar decode (no matrix
    /// units, lavapipe) the same settings do apply, and a bench script setting both runs
    /// on either adapter.
    pub fn wgsl_tuning_note(&self, coop_decode_runs: bool) -> String {
        let asked = self.wgsl_tuning_asked();
        if asked.is_empty() {
            return String::new();
        }
        let (forms, rest): (Vec<String>, Vec<String>) =
            asked.into_iter().partition(|a| a.starts_with("MOA_WGSL_"));
        if !coop_decode_runs || forms.is_empty() {
            let all: Vec<String> = forms.into_iter().chain(rest).collect();
            return format!("; WGSL attention tuning: {}", all.join(", "));
        }
        let applied = if rest.is_empty() {
            String::new()
        } else {
            format!("{}; ", rest.join(", "))
        };
        format!(
            "; WGSL attention tuning: {applied}{} not applied (the scalar decode's forms; \
             MOA_WGSL_DECODE=coop runs the decode on cooperative matrices)",
            forms.join(", ")
        )
    }
}

/// The WGSL attention tuning the engine compiles a plan with unless told otherwise
/// ([`WgpuEngineOptions::wgsl_tuning`]): [`WgslTuning::default`] (what `moa-compile`
/// writes) with the decode on subgroups at the adapter's subgroup size in its flat form
/// (`decode_sg_flat.wgsl.j2`, late: steps of half a row's vectors a lane, V issued after
/// the scores; DESIGN §7.7), which an adapter without a fixed subgroup size, or a layer
/// that does not fit it ([`crate::codegen::wgsl::decode_sg_fits`]), replaces by the
/// scalar decode. On the H200 through Vulkan (SmolLM2 shape, 16 × 4096, moa-50, the
/// engine's step) 19.6–19.9 µs a layer against the scalar decode's 21.4–22.5, side by
/// side, at 80 registers (benches/RESULTS.md, "WGSL decode, session 19"). The flat
/// form's subgroups a workgroup are its own choice
/// ([`WgslTuning::decode_sg_flat_subgroups`] = 0): 8 at head_dim ≤ 64 in a GQA group,
/// whose work list the chunk model then picks for the residency of its registers (with
/// Q·K in f32, 119 registers: 2 workgroups of 256 an SM, 264 on the H200;
/// `lower::consts::WGSL_DECODE_CONCURRENT_WORKGROUPS_FLAT8_GQA_HD64`): 18.3–18.6 µs a
/// layer against 18.8–19.1 with 4 (RESULTS, "Session 21, lead calls (H200)"). The fused
/// merge ([`WgslTuning::decode_fused_merge`]) is left unset here: the engine derives it from
/// the form that runs ([`engine_fused_merge`]: on in the flat form, off elsewhere). The
/// flat form reads K and V as 16-byte words ([`WgslTuning::decode_sg_flat_words`]; the
/// engine turns it off on an adapter without wgpu's SHADER_F16_IN_F32): on the H200 the
/// device step −31..−83 µs in 5 of 5 pairs, tokens/s +1.3..+2.6%, the attention (merge
/// included) −1.0..−1.3 µs a layer in 4 of 5 pairs and +0.8 in one, parity 0.0517 and
/// argmax 3/3 (RESULTS "WGSL decode, session 25" and "…, session 25, lead call"). Each
/// slot class of the flat form keeps its own softmax maxima
/// ([`WgslTuning::decode_sg_flat_cmax`]; 2 shuffles a head a step instead of a
/// `subgroupMax`): on the H200 the device step −35.4, −30.0, −25.9 µs and the attention −0.97,
/// −1.10, −0.48 µs a layer in three pairs (20.11–20.32 against 20.80–21.26), tokens/s
/// +2.5..+4.0%, parity 0.0496 against 0.0517, argmax 3/3 (RESULTS "WGSL decode, session 26").
pub fn engine_wgsl_tuning() -> WgslTuning {
    WgslTuning {
        decode_subgroup: Some(0),
        decode_sg_flat: SgFlat::Late,
        decode_sg_flat_words: true,
        decode_sg_flat_cmax: true,
        rules_table: true,
        decode_fused_merge: None,
        ..WgslTuning::default()
    }
}

/// Whether the engine's decode merges its own segments ([`WgslTuning::decode_fused_merge`])
/// where the tuning `t` leaves it unset (`MOA_WGSL_FUSED_MERGE` unset), for a plan of GQA
/// group `group_size` and `head_dim`, `t.decode_subgroup` already resolved to the adapter's
/// subgroup size (`None`: the adapter has no fixed one): on where the flat decode on
/// subgroups is the form that runs (subgroups, [`WgslTuning::decode_sg_flat`] not off, not
/// pipelined, the layer fitting it: [`crate::codegen::wgsl::decode_sg_fits`]) in its full
/// body; off for the scalar decode, the other subgroup forms and the flat form's timing
/// diagnostics (the loads-only twin, the pieces, no combine), which keep the separate merge
/// dispatch they were measured with. Set, `t.decode_fused_merge` is returned as asked.
///
/// On the H200 through Vulkan (SmolLM2 shape, 16 × 4096, moa-50, the engine's step) the
/// flat form's fused merge won 7 of 7 tokens/s pairs (+0.6..+4.4%) and 6 of 7 device-step
/// pairs (−10.7..−26.7 µs; +3.9 in one), attention + merge 21.6–22.8 against 21.9–22.8 µs a
/// layer, parity 0.0517 and argmax 3/3 as the separate merge (RESULTS "WGSL decode, session
/// 24" and "…, session 24, lead call on merged main"). The scalar decode's fused merge lost
/// (28.7–29.0 µs a layer against 22.1–22.7 + 4.0–4.5, RESULTS "Lead calls (session 13)").
pub fn engine_fused_merge(t: &WgslTuning, group_size: u32, head_dim: u32) -> bool {
    if let Some(asked) = t.decode_fused_merge {
        return asked;
    }
    let flat_runs = t
        .decode_subgroup
        .is_some_and(|sg| sg > 0 && decode_sg_fits(u32::from(sg), group_size, head_dim))
        && t.decode_sg_flat != SgFlat::Off
        && t.decode_sg_pipe == 0;
    let diagnostic = t.decode_sg_diag || t.decode_sg_piece != 0 || t.decode_sg_no_combine;
    flat_runs && !diagnostic
}

/// Every `MOA_WGPU_*` / `MOA_WGSL_*` variable the library reads (the fields above).
pub const KNOWN: &[&str] = &[
    "MOA_WGPU_COOP",
    "MOA_WGPU_SUBGROUPS",
    "MOA_WGSL_DECODE",
    "MOA_WGSL_RESCALE",
    "MOA_WGPU_SPLIT_K",
    "MOA_WGPU_TILED",
    "MOA_WGPU_TILED_BLOCK",
    "MOA_WGPU_MATVEC",
    "MOA_WGPU_SG_KSPLIT",
    "MOA_WGPU_SG_GROUPS",
    "MOA_WGPU_SG_ROWS",
    "MOA_WGPU_SG_UNROLL",
    "MOA_WGPU_SG_XFIRST",
    "MOA_WGPU_SG_FIT",
    "MOA_WGPU_SG_EARLY",
    "MOA_WGPU_SG_DIAG",
    "MOA_WGPU_ROW_BLOCK",
    "MOA_WGPU_ARGMAX2",
    "MOA_WGPU_PREENCODE",
    "MOA_WGPU_AHEAD",
    "MOA_WGPU_FEED_IN_PLACE",
    "MOA_WGPU_SWIGLU_OUT",
    "MOA_WGPU_DECODE_FUSED_MLP",
    "MOA_WGPU_DECODE_FUSED_GROUPS",
    "MOA_WGPU_DECODE_FUSED_SPLIT",
    "MOA_WGPU_DECODE_FUSED_MEET",
    "MOA_WGPU_COOP_ATTN",
    "MOA_WGPU_COOP_ATTN_GROUP",
    "MOA_WGPU_COOP_ATTN_FORM",
    "MOA_WGPU_COOP_ATTN_DIAG",
    "MOA_WGPU_COOP_ATTN_STAGE_K",
    "MOA_WGPU_COOP_ATTN_V_EARLY",
    "MOA_WGPU_COOP_ATTN_V_IN_K",
    "MOA_WGPU_COOP_ATTN_MASK_SELECT",
    "MOA_WGPU_COOP_ATTN_SCORE_REGS",
    "MOA_WGPU_WARM",
    "MOA_WGPU_TEXTURE_WEIGHTS",
    "MOA_WGPU_QUANT_WEIGHTS",
    "MOA_WGPU_QUANT_GEMV_ROWS",
    "MOA_WGPU_QUANT_GEMV_UNROLL",
    "MOA_WGPU_STATS",
    "MOA_WGPU_MAX_BINDING_KIB",
    "MOA_WGPU_COOP_HEAD",
    "MOA_WGPU_COOP_HEAD_TILES",
    "MOA_WGPU_COOP_HEAD_BLOCKS",
    "MOA_WGPU_COOP_HEAD_KS",
    "MOA_WGPU_COOP_HEAD_DIAG",
    "MOA_WGPU_COOP_HEAD_UNCHECKED",
    "MOA_WGPU_COOP_HEAD_WIDE",
    "MOA_WGPU_HEAD_ARGMAX",
    "MOA_WGPU_COOP_DECODE",
    "MOA_WGPU_COOP_QKV",
    "MOA_WGPU_COOP_DECODE_UNCHECKED",
    "MOA_WGPU_UNCHECKED",
    "MOA_WGPU_COOP_DIRECT",
    "MOA_WGPU_COOP_SWIGLU",
    "MOA_WGPU_ROPE_TOKENS",
    "MOA_WGPU_DECODE_CHUNK",
    "MOA_WGPU_DECODE_RESIDENT",
    "MOA_WGSL_FUSED_MERGE",
    "MOA_WGSL_V_FIRST",
    "MOA_WGSL_SG_DECODE",
    "MOA_WGSL_SG_PIPE",
    "MOA_WGSL_SG_FLAT",
    "MOA_WGSL_SG_FLAT_SUBGROUPS",
    "MOA_WGSL_SG_FLAT_QK",
    "MOA_WGSL_SG_FLAT_WORDS",
    "MOA_WGSL_SG_FLAT_CMAX",
    "MOA_WGSL_SG_FLAT_NL",
    "MOA_WGSL_SG_FLAT_QPACK",
    "MOA_WGSL_RULES_TABLE",
];

/// The WGSL decode kernel bench's own knobs (examples/wgpu_decode_bench.rs reads them;
/// the library does not), known so that they draw no warning. The two the engine reads
/// too (`MOA_WGSL_FUSED_MERGE`, `_V_FIRST`) are in [`KNOWN`].
pub const BENCH_ONLY: &[&str] = &[
    "MOA_WGSL_CHECKS",
    "MOA_WGSL_CHUNKS",
    "MOA_WGSL_COOP_PREFETCH",
    "MOA_WGSL_DECODE_FORM",
    "MOA_WGSL_EARLY_V",
    "MOA_WGSL_F16",
    "MOA_WGSL_ITEMS",
    "MOA_WGSL_KV_COPIES",
    "MOA_WGSL_KV_RANDOM",
    "MOA_WGSL_LAZY_MARGIN",
    "MOA_WGSL_LOAD_BATCH",
    "MOA_WGSL_NARROW_LOADS",
    "MOA_WGSL_PAIRED_EPILOGUE",
    "MOA_WGSL_PARTS",
    "MOA_WGSL_QK_SUMS",
    "MOA_WGSL_QUAD_SHUFFLE",
    "MOA_WGSL_SEQUENCE",
    "MOA_WGSL_SG_NO_COMBINE",
    "MOA_WGSL_SG_PIECE",
    "MOA_WGSL_SG_SIZE",
    "MOA_WGSL_THREADS",
    "MOA_WGSL_ZERO_INIT",
];

/// Variables of deleted paths (older bench scripts still set them), with why they went.
pub const REMOVED: &[(&str, &str)] = &[
    (
        "MOA_WGPU_ACT_F16",
        "the decode's SwiGLU activations stored as f16 on f16 models (the matrix-unit gate/up epilogue writing f16, the subgroup one an f16 binding; down reading them as f16 4-vectors, f32 sums): half of down's x bytes (14 -> 7 MB a dispatch through L2 on SmolLM2): on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0; s35-down2 call 1, 4 rounds) tokens/s 11 661 / 11 602 / 11 498 / 11 601 against 11 651 / 11 572 / 11 573 / 11 584 (above in 3 of 4; means 11 591 against 11 595), the device step 1 373.7 / 1 345.4 / 1 341.6 / 1 352.2 against 1 340.1 / 1 351.8 / 1 362.2 / 1 350.0 us (lower in 2 of 4), down 6.92 / 5.89 / 5.86 / 5.83 against 5.94 / 5.98 / 5.98 / 5.97 us (-0.11 on the last three) but gate_up 7.29 / 7.42 / 7.23 / 7.46 against 7.09 / 7.30 / 7.21 / 7.17 (its f16 stores: higher in 4 of 4); parity 0.0516 against 0.0534, argmax 3/3: down's x traffic is ~0.1 us of its 6, not its cost; deleted (benches/RESULTS.md, wgpu engine, session 35 (branch s35-down2); the form is in commit 5cafba1d)",
    ),
    (
        "MOA_WGPU_SG_COLS",
        "8: the down product on subgroups at 8 output columns a subgroup sharing each x 4-vector a lane loads (matvec_sg.wgsl's WIDE: 144 workgroups instead of 288, twice the sums a lane), with MOA_WGPU_ACT_F16=1 a quarter of down's x bytes: on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0; s35-down2 call 1, 4 rounds) tokens/s 11 532 / 11 449 / 11 299 / 11 497 against the default's 11 651 / 11 572 / 11 573 / 11 584 and MOA_WGPU_ACT_F16=1's 11 661 / 11 602 / 11 498 / 11 601 (below both in 4 of 4), the device step 1 345.4 / 1 368.0 / 1 362.1 / 1 368.2 us, down 6.05 / 6.06 / 6.02 / 6.19 against 5.94 / 5.98 / 5.98 / 5.97 us (higher in 4 of 4); parity 0.0516, argmax 3/3: fewer workgroups cost more than the shared x saves; deleted (benches/RESULTS.md, wgpu engine, session 35 (branch s35-down2); the form is in commit 5cafba1d)",
    ),
    (
        "MOA_WGPU_SG_ROWS_FIRST",
        "the subgroup products' grid in one dimension with a column workgroup's row blocks next to each other (id = column workgroup x row blocks + row block), so that the workgroups an SM holds at once (i, i + 132, i + 264 where the scheduler deals them out in turn) share a block of rows and its x (every workgroup reads its 8 rows' whole x: SmolLM2's down 49 KB of f32 x against 12 KB of weights, 14 MB a dispatch): on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0, MOA_WGPU_SG_EARLY=1; s35-prod call 2, 4 pairs) the device step 1 385.3 / 1 378.7 / 1 379.4 / 1 377.6 against 1 376.3 / 1 373.5 / 1 379.9 / 1 374.9 us (lower in 1 of 4), tokens/s 11 111 / 11 023 / 11 233 / 10 799 against 11 233 / 11 259 / 10 816 / 11 296 (above in 1 of 4), down 6.24 / 6.22 / 6.03 / 6.02 against 6.10 / 6.10 / 6.23 / 6.06 us; parity 0.0534, argmax 3/3: no x shared that the default did not; deleted (benches/RESULTS.md, wgpu engine, session 35 (branch s35-prod); the form is in commit 3698cd93)",
    ),
    (
        "MOA_WGPU_SG_HOIST",
        "the fitted subgroup products' K steps written out two at a time with their loads first (1: both steps' weights first; 2: every weight and x load of both steps before the first multiply-add; the default's constant 2-step loop stays rolled on the H200, binary 9 088 bytes as the K loop's): the H200's driver unrolled both forms to the same code (SmolLM2's down, 6 subgroups x 2 steps: 90 registers against 86, binary 12 544 bytes), down 5.88 / 5.84 (1) and 6.15 / 5.67 / 5.71 us (2) against 6.16 / 5.98 / 6.06 (-0.2 on means) yet the device step 1 363.4 / 1 363.3 and 1 373.7 / 1 349.1 / 1 340.9 against 1 361.1 / 1 362.9 / 1 362.0 us, tokens/s (2) above in 2 of 3, and on top of MOA_WGPU_SG_EARLY=1 tokens/s 11 617 / 11 536 / 11 577 against 11 660 / 11 554 / 11 601 (below in 3 of 3; SmolLM2 16 x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0; parity 0.0534, argmax 3/3): down's second round of loads is not what its time is; deleted (benches/RESULTS.md, wgpu engine, session 35 (branch s35-prod); the form is in commit 5e221233)",
    ),
    (
        "MOA_WGPU_KV_PREFETCH",
        "the decode step reading the next layer's K/V caches into L2 during this layer's products (kv_prefetch.wgsl: 16-byte words folded into a value stored only if equal to a host word, in a dispatch recorded right after the attention / out / gate_up / down with no barrier before it: read-only caches first used in the step, a sink of its own; places and weights, k = K only, groups:N, touch:N, far = a timing twin reading the layer 15 ahead): on the H200 (SmolLM2 16 x 4096, moa-50, 64 greedy tokens, --profile 5, four calls of s35-l2, 32 runs) the attention does read from L2 (the far twin's step 83-88 us above the real prefetch's with 26 MB a layer in three shares, 45-64 with groups:64), but the prefetch dispatches cost more than that in every run: the step (5 repeats, each its own command buffer) against the same pass without them +72..+99 us (all: out 4 / gate_up 7 / down 6), +72..+80 (gate_up,down), +37..+48 (K only), +67..+72 (beside the attention), +56..+80 (down only), +66..+71 (groups:128), +133..+140 (groups:64), +80..+113 (touch:32), +40..+43 (touch:128); tokens/s below the off run of its round in all 9 runs of call 1 (off 10 530-11 266; all 9 326-10 473); parity unchanged (0.0534, 3/3): reading DRAM at full rate beside the latency-bound products lengthens them by most of the prefetch's own DRAM time (the far twin's cost 160-165 us a step against ~215 for 26 MB a layer at 3.5 TB/s serialized), whether it loads every word or one in two (touch:32: 103-167); deleted (benches/RESULTS.md, wgpu engine, session 35 (branch s35-l2); the form is in commit 4f57c8f)",
    ),
    (
        "MOA_WGPU_SG_FIT_STEPS",
        "MOA_WGPU_SG_FIT's K steps a lane (1-8, within the adapter's max_compute_invocations_per_workgroup): 1 put SmolLM2's down product (K 1536) on 12 subgroups x 1 step (384 invocations) instead of the default's 6 x 2: registers 56 (f16 and f32 x; 70 with the RMSNorm) against 80 / 86 / 95, yet on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0; s34-down's call, 4 pairs) down 5.84 / 6.17 / 6.07 / 5.99 us against 5.91 / 6.01 / 6.12 / 6.45 (lower in 3 of 4, means 6.02 against 6.12), the device step lower in 1 of 4 (1 379.9 / 1 384.1 / 1 397.9 / 1 382.8 against 1 379.2 / 1 376.7 / 1 395.2 / 1 402.1 us), tokens/s above in 2 of 4 (11 378 / 11 364 / 10 927 / 11 243 against 10 973 / 11 286 / 11 259 / 11 324; the two won pairs one a slow first process); parity 0.0489 against 0.0534, argmax 3/3: down's time is not its second step's dependent loads nor its registers; deleted (benches/RESULTS.md, wgpu engine, session 34 (branch s34-down); the form is in commit 2b50f8c; the fit's bound by the adapter's workgroup limit stays)",
    ),
    (
        "MOA_WGPU_COOP_OUT_HOIST",
        "the decode output product on matrix units (MOA_WGPU_COOP_DECODE=1, direct walk) with its 9 A fragments loaded with its 9 B fragments before a workgroup barrier, so that the driver could not sink each load to its multiply-add (the direct walk held 41 registers; hoisted 80): on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, s34-prod call 2) out 5.21 us against 5.37 without the hoist and 4.37-4.46 on subgroups (--profile 5), tokens/s 10 859-11 046 (4 runs) against 11 217-11 270 for the default (subgroup output product; 4 runs, every one above every hoisted one) and 10 745 unhoisted (1 run), parity 0.0506, 3/3 (as unhoisted); deleted (benches/RESULTS.md, wgpu engine, session 34 (branch s34-prod); the form is in commit 4528bb7)",
    ),
    (
        "MOA_WGPU_DECODE_FUSED_WEIGHTS_RW",
        "the fused decode dispatch's gate/up phase declaring its weights read_write, so the driver could not move their loads above the meeting's storageBarrier (the module, unchecked with 4-vectors, at the 255-register cap and 37 680 B of shared memory against the gate/up product's 236 and 26 880 alone): the same registers and shared memory (the driver's statistics), right on the H200 (parity 0.0506, 3/3) and a tie with read-only weights: 11081-11140 against 11073-11082 tok/s, both below separate dispatches' 11327-11420 (s34-fuse call 3); deleted (benches/RESULTS.md, WGSL decode, session 34 (branch s34-fuse))",
    ),
    (
        "MOA_WGPU_DECODE_FUSED_X4",
        "the fused decode dispatch's output phase result passed to the gate/up phase as 4-vectors (one 16-byte load a 4-vector of x instead of four scalar loads; the output phase stores one component): right on the H200 (parity 0.0506, 3/3) and the fused kind 12.78 against 13.34 us, 10970 against 10736-10854 tok/s (s34-fuse call 1, one run); folded into the fused module (always 4-vectors), the knob deleted (benches/RESULTS.md, WGSL decode, session 34 (branch s34-fuse))",
    ),
    (
        "MOA_WGPU_DECODE_FUSED_UNCHECKED",
        "the fused decode dispatch without naga's runtime checks: the fused kind 11.99 against 13.34 us, 11078 against 10736-10854 tok/s (s34-fuse call 1), but the separate products unchecked too (MOA_WGPU_COOP_DECODE_UNCHECKED, the default since) stay ahead of it: 11321-11381 against 11072-11119 tok/s for the fused dispatch unchecked with 4-vectors (s34-fuse call 2, 4 runs each); folded into MOA_WGPU_COOP_DECODE_UNCHECKED, which now builds the fused module too (benches/RESULTS.md, WGSL decode, session 34 (branch s34-fuse))",
    ),
    (
        "MOA_WGPU_DECODE_FUSED_AHEAD",
        "the fused decode dispatch's gate/up phase issuing its weight fragments (its first tile's early loads, a copy of its tile function calling the meeting, or the output phase and the meeting, between those loads and its x) before the meeting (1) or before the output phase (2), so the weights would stream while the workgroups wait or the output phase runs: right on the H200 (parity 0.0506, 3/3 at 16 rows) and no faster: SmolLM2 16 x 4096, moa-50, 256 greedy tokens, in one call (s34-fuse call 1) the fused kind 13.62 / 14.09 us (1) and 13.37 / 13.72 us (2) against 13.34 / 14.07 with the loads after the meeting, tokens/s 10745 / 10715 (1) and 10750 / 10744 / 10752 (2) against 10854 / 10736; with x as 4-vectors and unchecked (2) 12.11-13.26 us, 11088-11112 tok/s against 11.99 us unchecked alone: the weights' round trip is not what the phase waits for (s32-dec: the products are not bound by where their weights come from), and the driver may sink loads of read-only memory past the barrier anyway; deleted (benches/RESULTS.md, WGSL decode, session 34 (branch s34-fuse); the form is in commit 2d687b5)",
    ),
    (
        "MOA_WGPU_DECODE_FUSED_DOWN",
        "the decode's down product as the fused dispatch's third phase (MOA_WGPU_DECODE_FUSED_MLP=1; after a second meeting; matrix units, the gate/up phase's SwiGLU output written in f16 and loaded straight as the down phase's A fragments, K 1536 over a workgroup's 4 subgroups, 36 workgroups; the residuals through the phases' variables): right on the H200 (parity 0.0505, 3/3; 93 dispatches a step) but slower: SmolLM2 16 x 4096, moa-50, 256 greedy tokens, in one call (s33-mega call 1) 10163-10234 tok/s (4 runs) against 10679-10775 for the two-phase fused dispatch (3 runs) and 10974-11003 for separate dispatches (4 runs): the step +74 us against the two-phase form, +110 against separate; the fused kind 21.4-23.3 us against 13.3 + down 6.1 (the down phase costs ~8 us inside the dispatch against ~3.9 of kernel in its own subgroup dispatch: 36 workgroups stream its 1.8 MB); with the lane-0 meeting (MEET=0) 10262; deleted (benches/RESULTS.md, WGSL decode, session 33 (branch s33-mega); the form is in commit 37b21dd; the composition's pieces it used, an f16 `out` and residuals from other phases, stay in coop_fused_mlp_source)",
    ),
    (
        "MOA_WGPU_NORM_F16",
        "the prefill RMSNorms writing f16 normed activations, read by the QKV and gate/up products as f16 x, and the SwiGLU product's act written in f16 for the down product: the products alone were 6-13% faster with f16 x (s30-gemm's product bench), but in the engine on the H200 (SmolLM2 16 x 4096, A B B A in one call, session 30's lead call) qkv 14.4 -> 18.4 ms a pass, gate_up 39.6 -> 48.6, down 22.4 -> 28.6 (norm 3.05 -> 2.7); the moa-50 pass 196.2 -> 215.0 ms, warm prefill 162.2k -> 148.6k tok/s (dense 128.6-129.4k -> 120.1k); parity unchanged (0.0474, 3/3); deleted (benches/RESULTS.md, wgpu engine, session 30, lead call; the form is in commits 507d41f and bb695c0)",
    ),
    (
        "MOA_WGPU_COOP_ATTN_STAGE_V",
        "the group prefill attention's V staged in workgroup memory (16-byte loads once per workgroup, a tile ahead) tied on the H200 alone (session 29's lead call: 129.55 against 129.53 ms a pass, moa-50; 193.2 against 200.9 dense) and, beside session 30's staged K (the default), needed one 16-query block a head for the room and lost: 156.3 against 129.5 ms (moa-50), 237.8 against 200.9 (dense); the default stages K and reads V early instead (102.3 and 153.5; benches/RESULTS.md, wgpu engine session 30, s30-pattn; the form is in commit f35011d)",
    ),
    (
        "MOA_WGPU_COOP_ATTN_LIVE",
        "session 31's forms of the group prefill attention with fewer live registers, bits: 4 (V staged in the staged K tile's buffer) is now MOA_WGPU_COOP_ATTN_V_IN_K (default 1: on the H200, SmolLM2 16 x 4096, session 32's lead call 1, the attention 101.8 -> 80.0 ms a pass with moa-50, 153.2 -> 120.2 dense, 221 registers against 255); 1 (V read early for the first 32 columns only, P.V in 32-column chunks) cut 255 -> 245 registers, still one workgroup an SM, not timed alone; 2 (the Q A matrices re-read from storage each tile) cut none (255; 242 beside 4, against 221 without it); 3 (both) lost, 106.3-106.7 against 101.7-101.9 ms a pass (moa-50), 159.95-160.05 against 153.1-153.2 (dense); 1 and 2 deleted in session 32 (benches/RESULTS.md, wgpu engine, session 32, lead call 1; the forms are in commit 820ecf5)",
    ),
    (
        "MOA_WGPU_COOP_ATTN_PREFETCH",
        "the group prefill attention's staged K/V words loaded a whole tile ahead (a second word array a lane: V(i+1)'s loads issued right after V(i) is stored, K(i+2)'s right after K(i+1) is, instead of V(i)'s at tile i's top and K(i+1)'s behind P.V only): 234 registers against 221, still one workgroup an SM; on the H200 (SmolLM2 16 x 4096, A B B A A B in one call, session 32's s32-pattn call 1) a tie with moa-50 (80.36-80.64 against 79.95-80.66 ms a pass) and a loss dense (122.9-123.1 against 120.0-121.0); the words' latency is not what the tile waits for; deleted (benches/RESULTS.md, wgpu engine, session 32, s32-pattn; the form is in commit 650344c)",
    ),
    (
        "MOA_WGPU_COOP_ATTN_STORE_ROT",
        "the group prefill attention's staged K/V words stored with each lane's eight 2-byte stores in an order rotated by the word's row (against 4-way bank conflicts, were the stores kept 2-byte) lost on the H200 (SmolLM2 16 x 4096, A R R A A R in one call, session 32's s32-pattn call 2): 104.0-104.2 against 79.7-80.5 ms a pass with moa-50, 155.9-156.2 against 120.5-120.7 dense, prefill 160.7k against 181.5-182.5k tok/s; the driver likely merges the default's 8 stores of a word into one 16-byte store, which the rotation's dynamic order stops; deleted (benches/RESULTS.md, wgpu engine, session 32, s32-pattn; the form is in commit b59b292)",
    ),
    (
        "MOA_WGPU_COOP_ATTN_K_NEXT",
        "the group prefill attention's next key tile's K read into registers as B matrices right after this tile's scores (software pipelining) lost on the H200 with moa-50 (134.9 against 129.5 ms a pass, two runs) and gained dense (192.4 against 200.9); K staged in workgroup memory (the default since session 30) took 104.2 and 156.0 alone (benches/RESULTS.md, wgpu engine session 30, s30-pattn; the form is in commit f35011d)",
    ),
    (
        "MOA_WGPU_DECODE_PREFETCH",
        "the decode step reading its products' weights into L2 ahead of them (prefetch.wgsl: 16-byte words folded into a value stored only if equal to a host word, in a dispatch with no barrier before it, its sink a buffer of its own): attn (one dispatch after each attention, the layer's out, gate/up and down weights and the next layer's QKV, 7.08 MB, 216 workgroups) and chain (one after each of attention, out, gate/up and down for the next product's weight, 119 more dispatches a step) tied on the H200 (SmolLM2 16 x 4096, moa-50, 256 greedy tokens, six A B C pairs in one call: step from tokens/s 1452.3-1462.1 us (attn) and 1454.7-1463.6 (chain) against 1454.4-1462.5, pairs -8.2..+2.8 and -4.6..+9.2 us, A/A spread 8.1; parity 0.0496, 3/3 for all): the prefetch ran beside the attention (serialized it costs 5.03 us a dispatch, 151 us a step, which the step did not gain), and in the profile's repeated step, where a barrier serializes it right before the products, the step grew by exactly that cost (+123.9 against 120.7 us): the decode products read their weights from L2 no faster than from DRAM; deleted (benches/RESULTS.md, WGSL decode session 32, s32-dec; the form is in commit eb90813)",
    ),
    (
        "MOA_WGSL_SG_FLAT_LAG",
        "the flat decode's V a step behind (each step issuing its own K and the previous step's V in one batch: one dependent DRAM round trip a step instead of two, at 116 registers against 126) lost every pair on the H200 (SmolLM2 16 x 4096, moa-50, the engine's form: fused merge, words, class maxima; four A B B A pairs: attention 22.94, 22.76, 22.59, 22.80 us a layer against 20.07, 19.89, 20.28, 19.90; device step +80.9, +84.0, +65.9, +84.8 us; tokens/s -2.5..-6.5%; parity 0.0496, 3/3 as the default); in the decode bench the whole list +3.6..+5.2 us a layer and one item alone no faster (512 slots 10.5 / 11.8 against 11.0 / 10.5 us), so the count of dependent round trips does not set the item's time, as with the prefetch (session 28) and the passes (session 23); deleted (benches/RESULTS.md, WGSL decode session 30, s30-attn; the form is in commit 370f9fd)",
    ),
    (
        "MOA_WGSL_SG_FLAT_MERGE_BATCH",
        "the flat decode's fused merger in batches of 1, 2 or 4 chunks instead of 8 (fewer words polled a lane in the fused tail) was the last piece of the road to 80 registers (3 workgroups of 256 an SM): with packed queries and 1 load a step it took 80 (93 at batch 8; 98 against 101 with packed queries alone, so the tail sets the floor only once the loop is small), but that form told 396 resident lost every pair on the H200 (SmolLM2 16 x 4096, moa-50, four A B B A pairs: attention 24.78-25.11 us a layer against 19.72-20.09, device step +134..+158 us, tokens/s -7.9..-10.4%; parity 0.0498, 3/3): 1 load a step triples an item's chain of dependent steps (its 384-slot item alone 14.5 us against the default's 512-slot item's 9.7), which sets two thirds of the dispatch (benches/RESULTS.md, WGSL decode session 29, s29-attn; the form is in commit be0b27b)",
    ),
    (
        "MOA_WGSL_SG_FLAT_PREFETCH",
        "the flat decode's next step's K issued with this step's V (one dependent DRAM round trip a step instead of two) did not win a pair on the H200 (SmolLM2 16 x 4096, moa-50, the engine's form: fused merge, words, class maxima; 127 registers against 126, 2 workgroups of 256 an SM either way; four A B B A pairs: attention 20.11, 20.33, 22.09, 21.19 us a layer against 20.02, 20.21, 20.16, 20.04; device step -22.8, +9.8, +6.6, +25.3 us; parity 0.0496, 3/3 as the default; the decode bench's layer 6 alone 17.17 against 18.09 us, one run each) nor in session 20 (96 registers against 80, 19.8-19.9 against 19.4-19.5) and was deleted (benches/RESULTS.md, WGSL decode session 28, s28-attn; the form is in commit 65dd14b)",
    ),
    (
        "MOA_WGPU_OUT_IN_ATTN",
        "the output product and residual add in the flat decode's fused merge (each segment's merger multiplied its GQA group's O by its 192 columns of W_o, 221 KB from L2 a merger at SmolLM2's shape, the row's last segment summed the row's products into x_alt; no out dispatch: 123 dispatches a step against 153) lost every pair on the H200 (SmolLM2 16 x 4096, moa-50, four pairs: attention 28.71-29.44 us a layer against 19.65-20.26, the out product's 4.2-4.6 saved; device step +133..+161 us, tokens/s -6.8..-8.5%; 128 registers against 126; parity 0.0459, 3/3); without its W_o loads (a diagnostic, wrong results) the attention took 23.50-23.68 and the step 1373-1382 against 1411.7 us, so the W_o stream of one workgroup a segment cost ~5.1 us a layer on the critical path, the rest ~3.8 (benches/RESULTS.md, WGSL decode session 27, s27-attn; the form is in commit 5436e70)",
    ),
    (
        "MOA_WGPU_COOP_STAGING",
        "the prefill products on matrix units' stage stores in vec2<f16> / vec4<f16> elements, each thread's pieces rotated by word or row to spread a warp's stores over the banks (SV,ROT 2,1 / 2,2 / 4,1, and 1,1: scalar stores rotated), lost every product on the H200 (M 32768, SmolLM2 shapes, A B B A: qkv 0.52-0.54 against 0.64-0.67 ms (4,1 .. 2,2), 1.05 (1,1); out 0.34 against 0.41-0.50, 0.67; SwiGLU gate/up 1.33-1.63 against 1.67-2.14, 3.68; down 0.74-0.77 against 0.92-0.98, 1.60; the engine with 4,1: a moa-50 prefill pass 219.5 -> 240.2 ms, 146.3-146.4k -> 133.9-134.3k tok/s; checks exact, parity 0.0474 3/3): the dynamic piece index costs more than the bank conflicts of the in-order scalar stores, which the driver evidently merges (1,1 is the default's stores reordered and took twice its time). Deleted (benches/RESULTS.md, wgpu engine session 30, s30-gemm; the form is in commit e810369)",
    ),
    (
        "MOA_WGPU_COOP_GEMM",
        "the prefill products on matrix units' kernel choice of session 27: the 64 x 64 kernel before it (scalar staging; naive) and 128 x 64 tiles of 4 subgroups (wide) lost to 128 x 128 tiles of 8 subgroups built without naga's runtime checks on the H200 (M 32768, SmolLM2 shapes: 38-54 TFLOP/s against naive 8.5-9.5 and wide 10.5-12.3 unchecked, 8.6-10.0 checked; benches/RESULTS.md, wgpu engine session 27, s27-gemm) and were deleted",
    ),
    (
        "MOA_WGSL_SG_FLAT_RING",
        "the flat decode's ring position with (t - sink) mod ring taken once an item (`hoist`: a step's position one conditional subtraction instead of an integer division) did not change the attention on the H200 (SmolLM2 16 x 4096, moa-50: 18.51 and 18.66 us a layer against 18.53 beside them and 18.40-18.99 in the call before; device step 1492.1 / 1483.9 against 1493.5; 119 registers either way; parity 0.0517, 3/3) and was deleted (benches/RESULTS.md, WGSL decode session 24, s24-attn; the form is in commit 8f7085a)",
    ),
    (
        "MOA_WGPU_COOP_GATE_UP_KPARTS",
        "the matrix-unit gate/up product's K over 6, 9 or 12 subgroups a workgroup (shorter B-load and multiply-add chains a warp, 9 x loads a staging lane instead of 18 at 9 and 12) was slower than the 4 subgroups on the H200 in every pair (SmolLM2 16 x 4096: gate/up 12.83-12.89 us at 6, 9.31-9.52 at 9, 9.44-9.84 at 12 against 7.52-7.94; device step +44..+67 us at 9 and 12, +150..+167 at 6; registers 188 / 120 / 101 against 209, no spills; parity unchanged) and was deleted (benches/RESULTS.md, wgpu engine session 23, s23-gateup)",
    ),
    (
        "MOA_WGPU_SG_ROW_SPLIT",
        "the subgroup products' row blocks of 8 rows in one workgroup (two subgroups a K part and column group, the grid of 16 rows a workgroup) lost to the same 8 rows a subgroup over twice the workgroups on the H200 (SmolLM2 16 x 4096, KSPLIT 4, two pairs: out 4.59 against 4.25-4.58 us, down 6.82-6.93 against 5.86-6.20, device step 1561.6-1572.2 against 1514.5-1539.1; the default 8 rows at KSPLIT 8/4 1503.0-1505.9) and was deleted (benches/RESULTS.md, wgpu engine session 22)",
    ),
    (
        "MOA_WGPU_SG_XSTAGE",
        "the decode products' x staged in workgroup memory (16 rows, K in chunks, one barrier, then the K loop reading workgroup memory) made every subgroup product slower on the H200 (SmolLM2 16 x 4096, three pairs, f16 staging: qkv 10.43-10.78 against 6.42-7.26 us, out 7.41-7.67 against 4.59-4.80, down 11.61-11.91 against 6.71-6.84; device step 2060-2067 against 1582-1592 us; parity unchanged) and was deleted (benches/RESULTS.md, wgpu engine session 21, s21-products)",
    ),
    (
        "MOA_WGPU_SG_RES_EARLY",
        "the output and down products' residual loaded before the K loop (its round trip off the chain after the barrier) changed neither product on the H200 (SmolLM2 16 x 4096, three pairs: out 4.58-4.70 against 4.56-4.81 us, down 6.53-6.77 against 6.54-6.68; device step 1555.6-1564.6 against 1564.1-1577.4, within the runs' spread) and was deleted (benches/RESULTS.md, wgpu engine session 21)",
    ),
    (
        "MOA_WGSL_SG_FLAT_PASS",
        "the flat decode in passes (the K of 2-4 steps issued before their math, one maximum and rescale a pass, then their V: two round trips a pass instead of two a step) lost every pair on the H200 (SmolLM2 16 x 4096, moa-50, 8 subgroups: f32 Q.K at passes of 3 and 2, both 128 registers, 24.33-24.55 and 24.01-24.41 us a layer, reload at a pass of 2, 106 registers, 24.33-24.54, against the default's 18.44-18.92; device step 1641-1685 against 1493-1506 us; parity unchanged) and was deleted (commit 21a9b8b; benches/RESULTS.md, WGSL decode session 23)",
    ),
    (
        "MOA_WGSL_SG_FLAT_HALF",
        "the flat decode's steps of half a row's vectors a lane are no longer a choice: with V issued after the scores they are the flat form (80 registers against 168 for whole 32-slot blocks of K and V at once), 19.6-19.9 us a layer against the scalar decode's 21.4-22.5 on the H200, and the engine's default (benches/RESULTS.md, WGSL decode session 19)",
    ),
    (
        "MOA_WGSL_SG_FLAT_VAFTER",
        "the flat decode's V issued after the scores is no longer a choice: it is the flat form (with 32-slot steps alone 96 registers and 19.9-20.3 us a layer, with half steps 80 and 19.6-19.9; whole blocks of K and V at once 168 and 28.8-30.3), and the engine's default (benches/RESULTS.md, WGSL decode session 19)",
    ),
    (
        "MOA_WGPU_X16",
        "the down and QKV products' 16 rows of x in f16 (the gate/up product writing SwiGLU in f16, the down product an f16 copy of the residual stream) did not make the step faster on the H200 (SmolLM2 16 x 4096: 1765.6-1780.7 against 1752.7-1753.0 us; qkv 6.36-6.66 against 6.30-6.59, down 6.60-6.75 against 6.71-7.47 us) and was deleted: x's bytes through the caches do not bound the products (benches/RESULTS.md, wgpu session 18)",
    ),
    (
        "MOA_WGSL_SG_FLAT_LEAN",
        "the flat decode's register-lean choices (P.V summed per block in f16, queries in workgroup memory, serialized blocks) left it at 159-168 registers and 28.9-30.7 us a layer against the default's 22.65 on the H200 and were deleted (benches/RESULTS.md, WGSL decode session 18)",
    ),
    (
        "MOA_WGSL_ITEM_LOADS",
        "the decode's first tile loaded with the work item was slower in the engine's step on the H200 (SmolLM2 16 x 4096: attention 23.3-23.6 us a layer with k, 24.2 with kv, 39.1 with kv-shared, against 22.5-22.7; step 1.02-1.27x) and was deleted (benches/RESULTS.md, wgpu session 15)",
    ),
    (
        "MOA_WGSL_NEXT_K",
        "the decode's next tile's K loaded during the tile before took 162 registers (3 workgroups an SM) and was slower in the engine's step on the H200 (attention 28.5 against 22.5 us a layer, step 1.106x) and was deleted (benches/RESULTS.md, wgpu session 15)",
    ),
    (
        "MOA_WGPU_COOP_EARLY",
        "loading the matrix-unit products' B fragments after x is staged was slower, gate/up 9.96 against 8.53-8.74 us, output 6.94 against 5.72-5.80, and the switch was deleted (benches/RESULTS.md, wgpu session 13, call 1)",
    ),
    (
        "MOA_WGPU_COOP_VSTORE",
        "scalar f16 stores of the matrix-unit kernels' workgroup operands were slower, head 53-56 against 34-47 us, and were deleted (benches/RESULTS.md, wgpu session 13, call 2)",
    ),
    (
        "MOA_WGPU_COOP_XSTAGE",
        "staging x in loops of dependent loads in the matrix-unit decode kernels was slower, head 66-74 against 52-61 us, and was deleted (benches/RESULTS.md, wgpu session 12, call 3)",
    ),
    (
        "MOA_WGPU_COOP_XPAD",
        "unpadded staged rows in the matrix-unit products were slower, gate/up 8.45-8.83 against 8.08 us, and were deleted (benches/RESULTS.md, wgpu session 13, call 1)",
    ),
    (
        "MOA_WGPU_SG_BUTTERFLY",
        "the subgroupAdd reduction of the subgroup products was slower than the butterfly, 3.56 against 2.45 ms a step, and was deleted (benches/RESULTS.md, wgpu session 9, call 1)",
    ),
    (
        "MOA_WGPU_SG_TWO_STEPS",
        "two K steps a trip in the subgroup products were slower, 3.14 against 2.45 ms a step, gate/up 13.1 against 9.2 µs, and were deleted (benches/RESULTS.md, wgpu sessions 9 and 11)",
    ),
    (
        "MOA_WGPU_MERGE",
        "the merge folded into the output product was slower, 6.32 against 5.08 ms a step, and was deleted (benches/RESULTS.md, wgpu session 8, call 2)",
    ),
    (
        "MOA_WGPU_MATVEC2_REMAP",
        "matvec_v2.wgsl lost on every change and was deleted (benches/RESULTS.md, session 8 call 4)",
    ),
    (
        "MOA_WGPU_MATVEC2_TWO_STEPS",
        "matvec_v2.wgsl lost on every change and was deleted (benches/RESULTS.md, session 8 call 4)",
    ),
    (
        "MOA_WGPU_HEAD",
        "head.wgsl lost in both forms and was deleted (benches/RESULTS.md, wgpu session 10)",
    ),
    (
        "MOA_WGPU_SG_PREFETCH",
        "loading the epilogue's inputs early changed nothing and was reverted (wgpu session 11)",
    ),
    (
        "MOA_WGPU_COOP_HEAD_DEEP",
        "two stages of head weights in flight lost and were deleted (wgpu session 13, call 1)",
    ),
    (
        "MOA_WGPU_COOP_HEAD_AHEAD",
        "the staged head's weights two stages ahead in two register sets (session 13's DEEP again, without naga's runtime checks): 255 registers against 247, head 36.2 us against 31.5 one stage ahead (--profile 5), tokens/s 11 047-11 072 against 11 070-11 127 (4 runs each, one call; main's checked head 10 964-11 023), parity unchanged (0.0496, 3/3); deleted (benches/RESULTS.md, WGSL decode, session 33 (branch s33-head); the form is in commit 69ad2b0)",
    ),
    (
        "MOA_WGPU_COOP_HEAD_ROLL",
        "the staged head's multiply-add loop kept a loop through the uniforms (1-6 fragment pairs a trip, not unrolled by the driver), for fewer than its 247 registers: 247 registers in every form (with _LATE0 too), so still 2 workgroups an SM; 6 pairs a trip lost every pair of tokens/s, 11 152-11 263 against the default's 11 193-11 297 (4 runs each, one call, -0.3% in mean), head 34.0 against 31.8 us (--profile 5), parity unchanged (0.0496, 3/3); deleted (benches/RESULTS.md, WGSL decode, session 34 (branch s34-head); the form is in commit 61ad8032)",
    ),
    (
        "MOA_WGPU_COOP_HEAD_LATE0",
        "the staged head's first stage of weights fetched after x is staged, for fewer registers live at once: 247 registers as the default (alone and with _ROLL 1-4), so no third workgroup an SM; not run for tokens/s, deleted (benches/RESULTS.md, WGSL decode, session 34 (branch s34-head); the form is in commit 61ad8032)",
    ),
    (
        "MOA_WGPU_COOP_DOWN",
        "the down product on matrix units lost and was deleted (wgpu session 13, call 1)",
    ),
    (
        "MOA_WGSL_COOP_STAGED",
        "a WGSL decode bench knob of an earlier session, since removed (benches/RESULTS.md, WGSL decode)",
    ),
    (
        "MOA_WGSL_K_PREFETCH",
        "a WGSL decode bench knob of an earlier session, since removed (benches/RESULTS.md, WGSL decode)",
    ),
    (
        "MOA_WGSL_QK_BATCH",
        "a WGSL decode bench knob of an earlier session, since removed (benches/RESULTS.md, WGSL decode)",
    ),
];

/// Edit distance between `a` and `b` (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev + usize::from(ca != *cb);
            prev = row[j + 1];
            row[j + 1] = sub.min(prev + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// One warning per `MOA_WGPU_*` / `MOA_WGSL_*` name in `names` that the library does not
/// read: a removed setting says why it went, any other names the closest known one.
pub fn unknown_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        if !(name.starts_with("MOA_WGPU_") || name.starts_with("MOA_WGSL_"))
            || KNOWN.contains(&name)
            || BENCH_ONLY.contains(&name)
        {
            continue;
        }
        if let Some((_, why)) = REMOVED.iter().find(|(n, _)| *n == name) {
            out.push(format!(
                "{name} is ignored: that setting was removed ({why})"
            ));
            continue;
        }
        let closest = KNOWN
            .iter()
            .chain(BENCH_ONLY)
            .min_by_key(|k| distance(name, k))
            .copied()
            .unwrap_or("MOA_WGPU_COOP");
        out.push(format!(
            "{name} is not a setting moa reads (did you mean {closest}?); ignored"
        ));
    }
    out
}

/// Prints [`unknown_names`] of the process environment to stderr, once per process.
fn warn_unknown_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        for w in unknown_names(names.iter().map(String::as_str)) {
            eprintln!("warning: {w}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine options' error for `name` = `value` alone: it must name the variable,
    /// the value and `accepted`.
    fn engine_refusal(name: &'static str, value: &str, accepted: &'static str) -> OptionsError {
        let err = WgpuEngineOptions::from_lookup(&lookup_in(&[(name, value)])).unwrap_err();
        assert_eq!(
            err,
            OptionsError {
                name,
                value: value.into(),
                accepted
            }
        );
        err
    }

    #[test]
    fn unset_is_the_defaults() {
        let none = lookup_in(&[]);
        assert_eq!(
            WgpuEngineOptions::from_lookup(&none).unwrap(),
            WgpuEngineOptions::default()
        );
        assert_eq!(
            WgpuContextOptions::from_lookup(&none).unwrap(),
            WgpuContextOptions::default()
        );
        // Empty values count as unset.
        let empty = lookup_in(&[("MOA_WGPU_SPLIT_K", ""), ("MOA_WGSL_DECODE", "")]);
        assert_eq!(
            WgpuEngineOptions::from_lookup(&empty).unwrap(),
            WgpuEngineOptions::default()
        );
    }

    /// `MOA_WGPU_MAX_BINDING_KIB` plans below the adapter's limit, never above it, and
    /// takes KiB within its range only.
    #[test]
    fn the_binding_limit_is_the_adapters_or_the_setting_below_it() {
        let d = WgpuEngineOptions::default();
        assert_eq!(d.binding_limit(128 << 20), 128 << 20);
        let set =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGPU_MAX_BINDING_KIB", "16384")]))
                .unwrap();
        assert_eq!(set.max_binding_kib, Some(16384));
        assert_eq!(set.binding_limit(2 << 30), 16 << 20);
        assert_eq!(set.binding_limit(8 << 20), 8 << 20);
        for bad in ["15", "4194305", "16M", "-1"] {
            engine_refusal("MOA_WGPU_MAX_BINDING_KIB", bad, "16 to 4194304 (KiB)");
        }
    }

    #[test]
    fn values_set_their_fields() {
        let env = lookup_in(&[
            ("MOA_WGPU_SPLIT_K", "1"),
            ("MOA_WGPU_MATVEC", "tree"),
            ("MOA_WGPU_SG_KSPLIT", "2"),
            ("MOA_WGPU_SG_GROUPS", "1"),
            ("MOA_WGPU_SG_ROWS", "8"),
            ("MOA_WGPU_SG_UNROLL", "2"),
            ("MOA_WGPU_SG_FIT", "1"),
            ("MOA_WGPU_SG_EARLY", "0"),
            ("MOA_WGPU_AHEAD", "0"),
            ("MOA_WGPU_FEED_IN_PLACE", "1"),
            ("MOA_WGPU_WARM", "auto"),
            ("MOA_WGPU_TEXTURE_WEIGHTS", "0"),
            ("MOA_WGPU_COOP_HEAD", "direct"),
            ("MOA_WGPU_COOP_HEAD_KS", "96"),
            ("MOA_WGPU_COOP_HEAD_UNCHECKED", "0"),
            ("MOA_WGPU_COOP_HEAD_WIDE", "6"),
            ("MOA_WGPU_COOP_DECODE", "1"),
            ("MOA_WGPU_COOP_DECODE_UNCHECKED", "0"),
            ("MOA_WGPU_COOP_ATTN_FORM", "1"),
            ("MOA_WGPU_COOP_ATTN_DIAG", "3"),
        ]);
        let o = WgpuEngineOptions::from_lookup(&env).unwrap();
        assert_eq!((o.coop_attention_form, o.coop_attention_diag), (1, 3));
        assert_eq!(o.split_k, Some(true));
        assert!(!o.subgroup_matvec);
        assert_eq!(o.sg_ksplit, Some(2));
        assert_eq!(o.sg_groups, Some(1));
        assert_eq!(o.sg_rows, Some(8));
        assert_eq!(o.sg_unroll, Some(2));
        assert_eq!(
            (o.sg_fit, WgpuEngineOptions::default().sg_fit),
            (Some(true), None)
        );
        assert!(!o.sg_early && WgpuEngineOptions::default().sg_early);
        assert!(!o.submit_ahead);
        assert!(o.feed_in_place && !WgpuEngineOptions::default().feed_in_place);
        assert_eq!(o.warm_up, None);
        assert_eq!(
            (
                o.texture_weights,
                WgpuEngineOptions::default().texture_weights
            ),
            (Some(false), None)
        );
        assert_eq!(o.coop_head, CoopHeadChoice::Direct);
        assert_eq!(o.coop_head_ks, Some(96));
        assert!(!o.coop_head_unchecked);
        assert_eq!(
            (
                o.coop_head_wide,
                WgpuEngineOptions::default().coop_head_wide
            ),
            (Some(6), None)
        );
        let auto = lookup_in(&[("MOA_WGPU_COOP_HEAD_WIDE", "auto")]);
        assert_eq!(
            WgpuEngineOptions::from_lookup(&auto)
                .unwrap()
                .coop_head_wide,
            None
        );
        assert_eq!(o.coop_decode, CoopDecodeChoice::OutAndGateUp);
        assert!(!o.coop_decode_unchecked && WgpuEngineOptions::default().coop_decode_unchecked);
        let c = WgpuContextOptions::from_lookup(&lookup_in(&[
            ("MOA_WGPU_COOP", "0"),
            ("MOA_WGSL_DECODE", "coop"),
            ("MOA_WGSL_RESCALE", "0"),
        ]))
        .unwrap();
        assert!(!c.cooperative_matrices && c.subgroups && c.wgsl_coop_decode);
        assert_eq!(c.wgsl_rescale, Some(0));
    }

    #[test]
    fn a_malformed_value_is_an_error_naming_the_variable_value_and_choices() {
        for (name, value, accepted) in [
            ("MOA_WGPU_SPLIT_K", "abc", "0, 1 or auto"),
            ("MOA_WGPU_TEXTURE_WEIGHTS", "on", "0, 1 or auto"),
            ("MOA_WGPU_ARGMAX2", "yes", "0 or 1"),
            ("MOA_WGPU_MATVEC", "subgroup", "sg or tree"),
            ("MOA_WGPU_SG_KSPLIT", "3", "1, 2, 4, 8 or auto"),
            ("MOA_WGPU_ROW_BLOCK", "5", "4, 8 or 16"),
            ("MOA_WGPU_COOP_HEAD_BLOCKS", "9", "1, 2, 3 or 4"),
            ("MOA_WGPU_COOP_HEAD_WIDE", "65", "auto or 0 to 64"),
            (
                "MOA_WGPU_COOP_HEAD_KS",
                "100",
                "a multiple of 16 from 16 to 4096",
            ),
            ("MOA_WGPU_COOP_HEAD", "1x", "auto, 1, direct or 0"),
            ("MOA_WGPU_COOP_ATTN_V_IN_K", "4", "0 or 1"),
            (
                "MOA_WGPU_COOP_ATTN_FORM",
                "3",
                "1 or 2 (session 29's two-pass forms 3 and 4 lost on the H200 and were deleted)",
            ),
        ] {
            let text = engine_refusal(name, value, accepted).to_string();
            assert!(
                text.contains(name) && text.contains(value) && text.contains(accepted),
                "{text}"
            );
        }
        for (name, value) in [
            ("MOA_WGPU_COOP", "off"),
            ("MOA_WGSL_DECODE", "matrix"),
            ("MOA_WGSL_RESCALE", "16"),
            ("MOA_WGSL_RESCALE", "-1"),
        ] {
            let vars = [(name, value)];
            let err = WgpuContextOptions::from_lookup(&lookup_in(&vars)).unwrap_err();
            assert_eq!((err.name, err.value.as_str()), (name, value));
        }
    }

    /// Session 16's settings: the decode on subgroups (and its loads-only diagnostic)
    /// asked at the adapter's size and named as asked, the engine's shaders unchecked by
    /// default, the work list's chunk length; bad values are errors naming them.
    #[test]
    fn subgroup_decode_unchecked_shaders_and_chunk_settings() {
        let d = WgpuEngineOptions::from_lookup(&lookup_in(&[])).unwrap();
        assert!(d.unchecked_products && d.decode_chunk.is_none());
        // The default since session 19: the flat decode at the adapter's subgroup size.
        assert_eq!(d.wgsl_tuning.decode_subgroup, Some(0));
        assert_eq!(d.wgsl_tuning.decode_sg_flat, SgFlat::Late);
        assert!(d.wgsl_tuning_asked().is_empty());
        for (v, sg, diag) in [
            ("0", None, false),
            ("1", Some(0), false),
            ("read", Some(0), true),
        ] {
            let o =
                WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_DECODE", v)])).unwrap();
            assert_eq!(o.wgsl_tuning.decode_subgroup, sg);
            assert_eq!(o.wgsl_tuning.decode_sg_diag, diag);
            let asked: Vec<String> = if v == "1" {
                vec![]
            } else {
                vec![format!("MOA_WGSL_SG_DECODE={v}")]
            };
            assert_eq!(o.wgsl_tuning_asked(), asked);
        }
        let o = WgpuEngineOptions::from_lookup(&lookup_in(&[
            ("MOA_WGSL_SG_DECODE", "read"),
            ("MOA_WGSL_SG_PIPE", "2"),
        ]))
        .unwrap();
        assert_eq!(o.wgsl_tuning.decode_sg_pipe, 2);
        assert_eq!(
            o.wgsl_tuning_asked(),
            ["MOA_WGSL_SG_DECODE=read", "MOA_WGSL_SG_PIPE=2"]
        );
        let o = WgpuEngineOptions::from_lookup(&lookup_in(&[
            ("MOA_WGSL_SG_DECODE", "1"),
            ("MOA_WGPU_UNCHECKED", "0"),
            ("MOA_WGPU_DECODE_CHUNK", "384"),
        ]))
        .unwrap();
        assert!(o.wgsl_tuning_asked().is_empty());
        assert!(!o.unchecked_products);
        assert_eq!(o.decode_chunk.map(|c| c.get()), Some(384));
        let o = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGPU_DECODE_RESIDENT", "396")]))
            .unwrap();
        assert_eq!(o.decode_resident.map(|c| c.get()), Some(396));
        // Session 28: the prefill products' direct write-out, 2 by default.
        assert_eq!(d.coop_direct, 2);
        for (value, v) in [("0", 0), ("1", 1), ("2", 2)] {
            let vars = [("MOA_WGPU_COOP_DIRECT", value)];
            let o = WgpuEngineOptions::from_lookup(&lookup_in(&vars)).unwrap();
            assert_eq!(o.coop_direct, v);
        }
        // Session 30: RoPE's tokens a workgroup, 8 by default; powers of two to 8.
        assert_eq!(d.rope_tokens, 8);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGPU_ROPE_TOKENS", "1")])).unwrap();
        assert_eq!(o.rope_tokens, 1);
        for bad in ["3", "16", "0"] {
            let vars = [("MOA_WGPU_ROPE_TOKENS", bad)];
            assert!(WgpuEngineOptions::from_lookup(&lookup_in(&vars)).is_err());
        }
        // Session 29: SwiGLU in the matrix-unit gate/up product, on by default.
        assert!(d.coop_swiglu);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGPU_COOP_SWIGLU", "0")])).unwrap();
        assert!(!o.coop_swiglu);
        let o = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGPU_DECODE_RESIDENT", "396")]))
            .unwrap();
        assert_eq!(o.decode_resident.map(|c| c.get()), Some(396));
        for (name, value) in [
            ("MOA_WGSL_SG_DECODE", "2"),
            ("MOA_WGSL_SG_PIPE", "3"),
            ("MOA_WGPU_UNCHECKED", "yes"),
            ("MOA_WGPU_DECODE_CHUNK", "0"),
            ("MOA_WGPU_COOP_DIRECT", "3"),
        ] {
            let err = WgpuEngineOptions::from_lookup(&lookup_in(&[(name, value)])).unwrap_err();
            assert_eq!((err.name, err.value.as_str()), (name, value));
        }
    }

    /// The WGSL decode forms the engine compiles with: the bench's names and values, a
    /// bad value an error naming them, and what a precompiled folder would refuse.
    #[test]
    fn wgsl_decode_forms_set_the_engine_tuning() {
        let none = WgpuEngineOptions::from_lookup(&lookup_in(&[])).unwrap();
        assert!(none.wgsl_tuning_asked().is_empty());
        let o = WgpuEngineOptions::from_lookup(&lookup_in(&[
            ("MOA_WGSL_FUSED_MERGE", "1"),
            ("MOA_WGSL_V_FIRST", "1"),
        ]))
        .unwrap();
        let t = o.wgsl_tuning;
        assert!(t.decode_v_first);
        assert_eq!(t.decode_fused_merge, Some(true));
        // The rest stays the default.
        assert_eq!(
            WgslTuning {
                decode_fused_merge: None,
                decode_v_first: false,
                ..t
            },
            engine_wgsl_tuning()
        );
        assert_eq!(
            o.wgsl_tuning_asked(),
            ["MOA_WGSL_FUSED_MERGE=1", "MOA_WGSL_V_FIRST=1"]
        );
        // V first off asks the default kernels: nothing asked. The fused merge is the
        // form's choice when unset (on in the flat form), so turning it off is asked.
        let off = WgpuEngineOptions::from_lookup(&lookup_in(&[
            ("MOA_WGSL_FUSED_MERGE", "0"),
            ("MOA_WGSL_V_FIRST", "0"),
        ]))
        .unwrap();
        assert_eq!(off.wgsl_tuning.decode_fused_merge, Some(false));
        assert_eq!(
            off.wgsl_tuning_asked(),
            ["MOA_WGSL_FUSED_MERGE=0"],
            "{off:?}"
        );
        let v_off =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_V_FIRST", "0")])).unwrap();
        assert!(v_off.wgsl_tuning_asked().is_empty(), "{v_off:?}");
        // A field only code reaches is named too.
        let code = WgpuEngineOptions {
            wgsl_tuning: WgslTuning {
                decode_qk_sums: true,
                ..engine_wgsl_tuning()
            },
            ..WgpuEngineOptions::default()
        };
        assert_eq!(code.wgsl_tuning_asked().len(), 1);
        for (name, value, accepted) in [
            ("MOA_WGSL_FUSED_MERGE", "auto", "0 or 1"),
            ("MOA_WGSL_V_FIRST", "2", "0 or 1"),
        ] {
            engine_refusal(name, value, accepted);
        }
        // Read by the library: no warning.
        assert!(unknown_names(["MOA_WGSL_FUSED_MERGE", "MOA_WGSL_V_FIRST"]).is_empty());
        // The deleted forms (session 15) are ignored with why, not read.
        let w = unknown_names(["MOA_WGSL_ITEM_LOADS", "MOA_WGSL_NEXT_K"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w
            .iter()
            .all(|m| m.contains("is ignored") && m.contains("session 15")));
        let kv =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_ITEM_LOADS", "kv")])).unwrap();
        assert!(kv.wgsl_tuning_asked().is_empty());
    }

    /// The fused merge where `MOA_WGSL_FUSED_MERGE` is unset: on where the flat decode on
    /// subgroups runs its full body (session 25's default), off for the scalar decode (no
    /// subgroup size, a layer the subgroup decode does not fit), the plain and pipelined
    /// subgroup forms and the flat form's timing diagnostics; a value set is kept.
    #[test]
    fn the_fused_merge_follows_the_form_where_unset() {
        let d = engine_wgsl_tuning();
        assert_eq!(d.decode_fused_merge, None);
        // SmolLM2's attention shape (GQA 3, head_dim 64) at the H200's and lavapipe's size.
        let at = |sg: Option<u8>, t: WgslTuning| {
            engine_fused_merge(
                &WgslTuning {
                    decode_subgroup: sg,
                    ..t
                },
                3,
                64,
            )
        };
        assert!(at(Some(32), d));
        assert!(at(Some(8), d));
        // The scalar decode: no subgroup size, or `MOA_WGSL_SG_DECODE=0`.
        assert!(!at(None, d));
        // A shape the subgroup decode does not fit (GQA 9) runs the scalar decode.
        assert!(!engine_fused_merge(
            &WgslTuning {
                decode_subgroup: Some(32),
                ..d
            },
            9,
            64
        ));
        let forms = [
            WgslTuning {
                decode_sg_flat: SgFlat::Off,
                ..d
            },
            WgslTuning {
                decode_sg_pipe: 2,
                ..d
            },
            WgslTuning {
                decode_sg_diag: true,
                ..d
            },
            WgslTuning {
                decode_sg_piece: 2,
                ..d
            },
            WgslTuning {
                decode_sg_no_combine: true,
                ..d
            },
        ];
        for t in forms {
            assert!(!at(Some(32), t), "{t:?}");
        }
        // The early flat form merges itself too.
        assert!(at(
            Some(32),
            WgslTuning {
                decode_sg_flat: SgFlat::Early,
                ..d
            }
        ));
        // Set: as asked, whatever the form.
        for asked in [false, true] {
            let t = WgslTuning {
                decode_fused_merge: Some(asked),
                ..d
            };
            assert_eq!(at(Some(32), t), asked);
            assert_eq!(at(None, t), asked);
        }
        // The environment: unset leaves it to the form, 0 and 1 set it.
        for (v, want) in [("0", Some(false)), ("1", Some(true))] {
            let o =
                WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_FUSED_MERGE", v)])).unwrap();
            assert_eq!(o.wgsl_tuning.decode_fused_merge, want);
            assert_eq!(o.wgsl_tuning_asked(), [format!("MOA_WGSL_FUSED_MERGE={v}")]);
        }
    }

    #[test]
    fn unknown_names_warn_with_the_closest_known_one() {
        let w = unknown_names([
            "MOA_WGPU_SPLITK",
            "MOA_WGSL_DECOD",
            "MOA_WGPU_STATS",
            "MOA_WGSL_DECODE_FORM",
            "MOA_CACHE",
            "MOA_WGPU_HEAD",
        ]);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[0].contains("MOA_WGPU_SPLITK") && w[0].contains("did you mean MOA_WGPU_SPLIT_K?")
        );
        assert!(w[1].contains("did you mean MOA_WGSL_DECODE?"), "{}", w[1]);
        assert!(w[2].contains("MOA_WGPU_HEAD is ignored") && w[2].contains("removed"));
    }

    /// The decode bench's own variables are listed, so setting one does not warn (a
    /// knob added to the bench without its name here would).
    #[test]
    fn every_bench_variable_is_listed() {
        let bench = include_str!("../../../examples/wgpu_decode_bench.rs");
        for piece in bench.split("\"MOA_").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let name = format!("MOA_{name}");
            if name.starts_with("MOA_WGSL_") || name.starts_with("MOA_WGPU_") {
                assert!(
                    BENCH_ONLY.contains(&name.as_str()) || KNOWN.contains(&name.as_str()),
                    "{name} (read by examples/wgpu_decode_bench.rs) is not in BENCH_ONLY"
                );
            }
        }
    }

    #[test]
    fn every_setting_is_known_once() {
        let mut all: Vec<&str> = KNOWN.iter().chain(BENCH_ONLY).copied().collect();
        all.extend(REMOVED.iter().map(|(n, _)| *n));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    /// `MOA_WGSL_SG_FLAT` (the flat decode on subgroups, `late` by default): its three
    /// values, what the load line names, and a bad value an error naming the variable;
    /// its two session-19 choices, now always on, are ignored with why.
    #[test]
    fn flat_subgroup_decode_is_read_from_the_environment() {
        for (v, flat) in [
            ("0", SgFlat::Off),
            ("1", SgFlat::Early),
            ("late", SgFlat::Late),
        ] {
            let o = WgpuEngineOptions::from_lookup(&lookup_in(&[
                ("MOA_WGSL_SG_DECODE", "1"),
                ("MOA_WGSL_SG_FLAT", v),
            ]))
            .unwrap();
            assert_eq!(o.wgsl_tuning.decode_sg_flat, flat);
            let named = o
                .wgsl_tuning_asked()
                .contains(&format!("MOA_WGSL_SG_FLAT={v}"));
            // `late` is the default (session 19): it asks nothing.
            assert_eq!(named, flat != SgFlat::Late, "{v}");
        }
        let err =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT", "2")])).unwrap_err();
        assert_eq!((err.name, err.value.as_str()), ("MOA_WGSL_SG_FLAT", "2"));
        // Unset: the form's choice (0: 8 at head_dim <= 64 in a GQA group, else 4), so
        // every count set is named.
        assert_eq!(
            WgpuEngineOptions::default()
                .wgsl_tuning
                .decode_sg_flat_subgroups,
            0
        );
        for (v, n) in [("2", 2), ("4", 4), ("8", 8)] {
            let o =
                WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_SUBGROUPS", v)]))
                    .unwrap();
            assert_eq!(o.wgsl_tuning.decode_sg_flat_subgroups, n);
            assert_eq!(
                o.wgsl_tuning_asked(),
                [format!("MOA_WGSL_SG_FLAT_SUBGROUPS={v}")]
            );
        }
        assert!(WgpuEngineOptions::from_lookup(&lookup_in(&[(
            "MOA_WGSL_SG_FLAT_SUBGROUPS",
            "16"
        )]))
        .is_err());
        let w = unknown_names(["MOA_WGSL_SG_FLAT_HALF", "MOA_WGSL_SG_FLAT_VAFTER"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w
            .iter()
            .all(|m| m.contains("is ignored") && m.contains("session 19")));
    }

    /// `MOA_WGSL_SG_FLAT_CMAX` (the engine's default since session 26: `1` asks nothing,
    /// `0` is named) and `MOA_WGSL_SG_FLAT_NL` (opt-in, 0 by default): each value read and
    /// named on the load line, a bad value an error; `moa-compile`'s tuning keeps
    /// `subgroupMax` maxima.
    #[test]
    fn flat_class_maxima_and_loads_a_step_are_read_from_the_environment() {
        let d = WgpuEngineOptions::default().wgsl_tuning;
        assert!(d.decode_sg_flat_cmax);
        assert!(!WgslTuning::default().decode_sg_flat_cmax);
        assert_eq!(d.decode_sg_flat_nl, 0);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_CMAX", "1")])).unwrap();
        assert!(o.wgsl_tuning.decode_sg_flat_cmax);
        assert!(o.wgsl_tuning_asked().is_empty());
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_CMAX", "0")])).unwrap();
        assert!(!o.wgsl_tuning.decode_sg_flat_cmax);
        assert_eq!(o.wgsl_tuning_asked(), ["MOA_WGSL_SG_FLAT_CMAX=0"]);
        for n in [1u8, 2, 4, 8] {
            let v = n.to_string();
            let o =
                WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_NL", v.as_str())]))
                    .unwrap();
            assert_eq!(o.wgsl_tuning.decode_sg_flat_nl, n);
            assert_eq!(o.wgsl_tuning_asked(), [format!("MOA_WGSL_SG_FLAT_NL={v}")]);
        }
        let err = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_NL", "3")]))
            .unwrap_err();
        assert_eq!((err.name, err.value.as_str()), ("MOA_WGSL_SG_FLAT_NL", "3"));
    }

    /// `MOA_WGSL_SG_FLAT_QPACK` (opt-in, session 28): off by default, `1` read and named on
    /// the load line, `0` asks nothing, another value an error naming the variable.
    #[test]
    fn flat_packed_queries_are_read_from_the_environment() {
        assert!(
            !WgpuEngineOptions::default()
                .wgsl_tuning
                .decode_sg_flat_qpack
        );
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_QPACK", "1")])).unwrap();
        assert!(o.wgsl_tuning.decode_sg_flat_qpack);
        assert_eq!(o.wgsl_tuning_asked(), ["MOA_WGSL_SG_FLAT_QPACK=1"]);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_QPACK", "0")])).unwrap();
        assert!(o.wgsl_tuning_asked().is_empty());
        let err = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_QPACK", "2")]))
            .unwrap_err();
        assert_eq!(err.name, "MOA_WGSL_SG_FLAT_QPACK");
    }

    /// `MOA_WGSL_RULES_TABLE` (on in the engine since session 43, off in `moa-compile`'s
    /// default): `0` read and named on the load line, `1` asks nothing, another value an
    /// error naming the variable.
    #[test]
    fn rules_table_is_read_from_the_environment() {
        assert!(WgpuEngineOptions::default().wgsl_tuning.rules_table);
        assert!(!WgslTuning::default().rules_table);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_RULES_TABLE", "0")])).unwrap();
        assert!(!o.wgsl_tuning.rules_table);
        assert_eq!(o.wgsl_tuning_asked(), ["MOA_WGSL_RULES_TABLE=0"]);
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_RULES_TABLE", "1")])).unwrap();
        assert!(o.wgsl_tuning_asked().is_empty());
        let err = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_RULES_TABLE", "2")]))
            .unwrap_err();
        assert_eq!(err.name, "MOA_WGSL_RULES_TABLE");
    }

    /// `MOA_WGSL_SG_FLAT_QK` (how the flat decode forms Q·K, `f32` by default): each value,
    /// what the load line names, and a bad value an error naming the variable.
    #[test]
    fn flat_qk_form_is_read_from_the_environment() {
        assert_eq!(
            WgpuEngineOptions::default().wgsl_tuning.decode_sg_flat_qk,
            FlatQk::F32
        );
        for (v, qk) in [
            ("f32", FlatQk::F32),
            ("h16", FlatQk::H16),
            ("reload", FlatQk::Reload),
            ("h16-reload", FlatQk::H16Reload),
        ] {
            let o =
                WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_QK", v)])).unwrap();
            assert_eq!(o.wgsl_tuning.decode_sg_flat_qk, qk);
            assert_eq!(FlatQk::parse(v), Some(qk));
            let asked = o.wgsl_tuning_asked();
            if qk == FlatQk::F32 {
                assert!(asked.is_empty(), "{asked:?}");
            } else {
                assert_eq!(asked, [format!("MOA_WGSL_SG_FLAT_QK={v}")]);
            }
        }
        // The 16-byte-word loads are the engine's default since session 25: `1` asks
        // nothing, `0` is named.
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_WORDS", "1")])).unwrap();
        assert!(o.wgsl_tuning.decode_sg_flat_words);
        assert!(o.wgsl_tuning_asked().is_empty());
        let o =
            WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_WORDS", "0")])).unwrap();
        assert!(!o.wgsl_tuning.decode_sg_flat_words);
        assert_eq!(o.wgsl_tuning_asked(), ["MOA_WGSL_SG_FLAT_WORDS=0"]);
        assert!(
            WgpuEngineOptions::default()
                .wgsl_tuning
                .decode_sg_flat_words
        );
        let err = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_SG_FLAT_QK", "f16")]))
            .unwrap_err();
        assert_eq!(
            (err.name, err.value.as_str()),
            ("MOA_WGSL_SG_FLAT_QK", "f16")
        );
    }
}
