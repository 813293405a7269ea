//! The generated WGSL kernels, run through wgpu (lavapipe in CI) against the CPU
//! reference: the fixture plans' standard cases, and randomized plans and batches.
//! A machine without a wgpu adapter fails these tests: a skipped kernel test would hide
//! a missing driver in CI.

#[path = "common/llvmpipe.rs"]
mod llvmpipe;
#[path = "common/mqa.rs"]
mod mqa;
#[path = "common/sweeps.rs"]
mod sweeps;

use std::path::Path;
use std::sync::OnceLock;

use moa::codegen::{self, Artifact, Phase, Target};
use moa::lower::{self, CacheLayout, KernelModule, StorageType};
use moa::plan::{LayerRules, Meta, ModelShape, Plan, Rule, SpanMode, SpanSection, BETA_DEN};
use moa::runtime::cases::{
    check_output, decode_case, prefill_case, standard_cases, standard_decode_cases, tolerance,
    DecodeCase, PrefillCase,
};
use moa::runtime::wgpu::{WgpuAttention, WgpuContext};
use mqa::{mqa_toml, HEAD_DIMS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One device for the whole file: every test opening its own would start one lavapipe
/// thread pool each, all competing for the same cores. A failure to open it fails every
/// test that needs it. llvmpipe compiles its kernels without LLVM's optimisation passes
/// (`common::llvmpipe`: this binary's time on a fresh machine is compiling them).
fn context() -> &'static WgpuContext {
    static CTX: OnceLock<Result<WgpuContext, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        llvmpipe::compile_kernels_fast();
        let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
        eprintln!(
            "wgpu adapter: {} ({:?}), f16: {}",
            ctx.adapter_name(),
            ctx.backend(),
            ctx.has_f16()
        );
        Ok(ctx)
    });
    match ctx {
        Ok(ctx) => ctx,
        Err(e) => panic!("{e}"),
    }
}

fn fixture(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(name);
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn compile(ctx: &WgpuContext, module: &KernelModule) -> WgpuAttention {
    let artifacts = codegen::generate(module, Target::Wgsl).unwrap_or_else(|e| panic!("{e}"));
    WgpuAttention::new(ctx, module, &artifacts).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs cases and collects every failure (not just the first), naming each case.
fn run_cases(
    exec: &WgpuAttention,
    prefill: &[PrefillCase],
    decode: &[DecodeCase],
    label: &str,
) -> Vec<String> {
    let m = exec.module();
    let (hq, d) = (m.shape.q_heads as usize, m.shape.head_dim as usize);
    let tol = tolerance(m.storage);
    let mut failures = Vec::new();
    for case in prefill {
        let got = exec
            .run_prefill_case(case)
            .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
        if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
            failures.push(format!("{label}: {e}"));
        }
    }
    for case in decode {
        let got = exec
            .run_decode_case(case)
            .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
        if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
            failures.push(format!("{label}: {e}"));
        }
    }
    failures
}

fn standard(plan_file: &str, storage: StorageType) {
    let ctx = context();
    let module = lower::lower(&fixture(plan_file), storage);
    let exec = compile(ctx, &module);
    let (prefill, decode) = standard_cases(&module, 0x5eed);
    let failures = run_cases(&exec, &prefill, &decode, plan_file);
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The wgpu engine launches decode over a work list of whole segments (unwritten slots
/// included, masked by the kernel); the standard cases (rows early in their ring among
/// them) must give the same result that way.
#[test]
fn decode_over_whole_segments_matches_reference() {
    let ctx = context();
    for plan_file in ["fixture-gqa.toml", "fixture-mha.toml"] {
        let module = lower::lower(&fixture(plan_file), StorageType::F32);
        let exec = compile(ctx, &module);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let decode = standard_decode_cases(&module, 0x5eed);
        let mut failures = Vec::new();
        for case in &decode {
            let got = exec
                .decode_whole_segments(
                    case.layer,
                    case.layout.n_tokens,
                    &case.row_pos,
                    &case.q,
                    &case.k_cache,
                    &case.v_cache,
                )
                .unwrap_or_else(|e| panic!("{plan_file} {}: {e}", case.name));
            let tol = tolerance(module.storage);
            if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                failures.push(format!("{plan_file}: {e}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The decode with chunks of one tile (many items, the merge over many partials) and of
/// several tiles (the kernel's online softmax carried across tiles), against the
/// reference on the standard cases: the GQA fixture in f32 and the MHA one in f16, both
/// storage types of both under `MOA_TEST_FULL=1` (`common::sweeps`: each a cold compile
/// of its pipelines in CI; session 54).
#[test]
fn decode_chunks_of_one_and_several_tiles_match_reference() {
    let ctx = context();
    for (f, plan_file) in ["fixture-gqa.toml", "fixture-mha.toml"]
        .into_iter()
        .enumerate()
    {
        for (s, storage) in [StorageType::F32, StorageType::F16].into_iter().enumerate() {
            if !sweeps::runs(f, false, s, 2) {
                continue;
            }
            let module = lower::lower(&fixture(plan_file), storage);
            let exec = compile(ctx, &module);
            let (hq, d) = (
                module.shape.q_heads as usize,
                module.shape.head_dim as usize,
            );
            let tile = exec.decode_tile();
            let decode = standard_decode_cases(&module, 0x5eed);
            let longest = decode
                .iter()
                .flat_map(|c| c.layout.segments.iter().map(|s| s.span))
                .max()
                .unwrap_or(0);
            assert!(
                longest > tile,
                "{plan_file}: no segment spans several tiles"
            );
            let mut failures = Vec::new();
            for tiles in [1, 2, 3] {
                for case in &decode {
                    let got = exec
                        .decode_chunked(
                            case.layer,
                            case.layout.n_tokens,
                            &case.row_pos,
                            tiles * tile,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                        )
                        .unwrap_or_else(|e| panic!("{plan_file} {}: {e}", case.name));
                    let tol = tolerance(module.storage);
                    if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                        failures.push(format!("{plan_file} {storage:?} {tiles} tiles: {e}"));
                    }
                }
            }
            assert!(failures.is_empty(), "{}", failures.join("\n"));
        }
    }
}

/// The shape the WGSL decode runs in production (GQA group of 4, head_dim 128: f16
/// loads 16 bytes wide, 8 slot groups), with chunks as the host picks them and of 1 and
/// 3 tiles: f16, the storage it runs in; f32 too under `MOA_TEST_FULL=1`
/// (`common::sweeps`: ~20 s of llvmpipe compiling in CI; session 54).
#[test]
fn head_dim_128_gqa_decode_matches_reference() {
    let ctx = context();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/decode-h200/wgsl-gqa-hd128.toml");
    let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
    for (s, storage) in [StorageType::F16, StorageType::F32].into_iter().enumerate() {
        if !sweeps::runs(0, false, s, 2) {
            continue;
        }
        let module = lower::lower(&plan, storage);
        let exec = compile(ctx, &module);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let tile = exec.decode_tile();
        let decode = standard_decode_cases(&module, 0x5eed);
        let mut failures = run_cases(&exec, &[], &decode, "hd128");
        for case in &decode {
            for chunk in [tile, 3 * tile] {
                let got = exec
                    .decode_chunked(
                        case.layer,
                        case.layout.n_tokens,
                        &case.row_pos,
                        chunk,
                        &case.q,
                        &case.k_cache,
                        &case.v_cache,
                    )
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                let tol = tolerance(storage);
                if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                    failures.push(format!("hd128 {storage:?} chunk {chunk}: {e}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// Work lists longer than the adapter's workgroups per dimension fold into a 2-D grid
/// that still covers every item; only past X² items is it an error.
#[test]
fn decode_grid_folds_long_work_lists() {
    use moa::runtime::wgpu::fold_items;
    assert_eq!(fold_items(17, 65535), Some([17, 1, 1]));
    assert_eq!(fold_items(0, 65535), Some([1, 1, 1]));
    assert_eq!(fold_items(65536, 65535), Some([65535, 2, 1]));
    assert_eq!(fold_items(70000, 100), None);
    let [x, y, _] = fold_items(131_071, 65535).unwrap_or_default();
    assert!(x * y >= 131_071);
    // The kernel side: grids folded at 7 and 3 workgroups per dimension (items not a
    // multiple of either, so padding workgroups must end without writing) give the
    // reference's results on the standard cases.
    let ctx = context();
    let module = lower::lower(&fixture("fixture-gqa.toml"), StorageType::F32);
    let decode = standard_decode_cases(&module, 0x5eed);
    for x in [7, 3] {
        let mut exec = compile(ctx, &module);
        exec.fold_decode_grid_at(x);
        let failures = run_cases(&exec, &[], &decode, &format!("grid folded at {x}"));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn adapter_is_present() {
    let ctx = context();
    eprintln!("wgpu adapter: {} ({:?})", ctx.adapter_name(), ctx.backend());
    assert!(!ctx.adapter_name().is_empty());
}

#[test]
fn fixture_mha_f32_matches_reference() {
    standard("fixture-mha.toml", StorageType::F32);
}

#[test]
fn fixture_mha_f16_matches_reference() {
    standard("fixture-mha.toml", StorageType::F16);
}

#[test]
fn fixture_gqa_f32_matches_reference() {
    standard("fixture-gqa.toml", StorageType::F32);
}

#[test]
fn fixture_gqa_f16_matches_reference() {
    standard("fixture-gqa.toml", StorageType::F16);
}

fn check_artifacts(module: &KernelModule, artifacts: &[Artifact]) {
    let dtype = module.storage.name();
    let d = module.shape.head_dim;
    // Per layer prefill and decode, the decode on cooperative matrices where it fits,
    // and the shared merge.
    let coop = codegen::wgsl::decode_coop_fits(
        module.storage,
        module.shape.group_size(),
        module.shape.head_dim,
    );
    let per_layer = if coop { 3 } else { 2 };
    assert_eq!(artifacts.len(), per_layer * module.layers.len() + 1);
    for a in artifacts {
        let matrix = a.kernels.iter().any(|k| k.abi.tiles.subgroups.is_some());
        assert!(coop || !matrix, "{}", a.path);
        // generate() validated already; validate again so this test pins that promise
        // (the matrix decode with the one capability it adds).
        let caps = if matrix {
            naga::valid::Capabilities::SHADER_FLOAT16
                | naga::valid::Capabilities::COOPERATIVE_MATRIX
        } else {
            naga::valid::Capabilities::SHADER_FLOAT16
        };
        codegen::wgsl::validate_with(&a.source, &a.path, None, caps)
            .unwrap_or_else(|e| panic!("{e}"));
        for k in &a.kernels {
            assert!(k.entry_point.starts_with("moa_"), "{}", k.entry_point);
            assert!(
                a.source.contains(&format!("fn {}(", k.entry_point)),
                "{}",
                a.path
            );
            assert_eq!(
                k.abi.params.iter().map(|b| b.index).collect::<Vec<_>>(),
                (0..k.abi.params.len() as u32).collect::<Vec<_>>()
            );
            let want = match (k.phase, k.layer) {
                (Phase::Prefill, Some(l)) => (
                    format!("wgsl/l{l:02}_prefill.wgsl"),
                    format!("moa_prefill_{dtype}_hd{d}_l{l:02}"),
                ),
                (Phase::Decode, Some(l)) if matrix => (
                    format!("wgsl/l{l:02}_decode_coop.wgsl"),
                    format!("moa_decode_coop_{dtype}_hd{d}_l{l:02}"),
                ),
                (Phase::Decode, Some(l)) => (
                    format!("wgsl/l{l:02}_decode.wgsl"),
                    format!("moa_decode_{dtype}_hd{d}_l{l:02}"),
                ),
                (Phase::DecodeMerge, None) => (
                    "wgsl/decode_merge.wgsl".into(),
                    format!("moa_decode_merge_{dtype}_hd{d}"),
                ),
                other => panic!("unexpected kernel {other:?}"),
            };
            assert_eq!((a.path.clone(), k.entry_point.clone()), want);
        }
    }
}

/// Where the adapter has no cooperative matrices (lavapipe), the executor skips the
/// matrix decode modules (they would not compile there) and runs the scalar decode.
#[test]
fn without_cooperative_matrices_the_scalar_decode_runs() {
    let ctx = context();
    if !ctx.has_f16() || ctx.coop_matrix().is_some() {
        return;
    }
    let module = lower::lower(&fixture("fixture-gqa.toml"), StorageType::F16);
    let exec = compile(ctx, &module);
    assert!(
        exec.decode_kernels().starts_with("scalar"),
        "{}",
        exec.decode_kernels()
    );
}

#[test]
fn generated_wgsl_validates_with_naga() {
    for plan_file in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F32, StorageType::F16] {
            let module = lower::lower(&fixture(plan_file), storage);
            let artifacts =
                codegen::generate(&module, Target::Wgsl).unwrap_or_else(|e| panic!("{e}"));
            check_artifacts(&module, &artifacts);
            if storage == StorageType::F16 {
                assert!(artifacts
                    .iter()
                    .all(|a| a.source.starts_with("enable f16;")));
            }
        }
    }
}

/// A random plan covering what the kernels must get right: GQA groups whose heads have
/// different spans, heads sharing a rule, spans at or above N, spans below the sink,
/// negative α, both span modes and odd rounding.
fn random_plan(rng: &mut StdRng) -> Plan {
    let kv_heads = [1u32, 1, 2, 4][rng.random_range(0..4)];
    let q_heads = kv_heads * rng.random_range(1..=8 / kv_heads);
    let head_dim = [16u32, 32, 64, 128][rng.random_range(0..4)];
    // One layer: a module's layers are independent kernels (the fixtures and the hd128
    // plan run modules of 2-3 layers), and on a cold Mesa cache each layer's decode kernel
    // is lavapipe compiling a fresh pipeline (up to 45 s for a group of 8 at head_dim 128).
    let layers = 1;
    let span = SpanSection {
        sink_tokens: rng.random_range(0..=40),
        min_span_tokens: rng.random_range(1..=64),
        block_tokens: rng.random_range(1..=32),
        mode: if rng.random_bool(0.5) {
            SpanMode::Moa
        } else {
            SpanMode::Upstream
        },
        max_new_tokens: 16,
    };
    let layer_rules = (0..layers)
        .map(|_| {
            let mut rules: Vec<Rule> = Vec::new();
            for _ in 0..q_heads {
                let rule = if !rules.is_empty() && rng.random_bool(0.3) {
                    rules[rng.random_range(0..rules.len())]
                } else {
                    Rule {
                        alpha: rng.random_range(-48..=160),
                        beta_num: match rng.random_range(0..4) {
                            0 => 0,
                            1 => BETA_DEN,
                            2 => BETA_DEN / 8 * rng.random_range(1..8),
                            _ => rng.random_range(0..=BETA_DEN),
                        },
                    }
                };
                rules.push(rule);
            }
            LayerRules { rules }
        })
        .collect();
    let model = ModelShape {
        name: Some("random".into()),
        layers,
        q_heads,
        kv_heads,
        head_dim,
        max_context_tokens: 4096,
    };
    Plan::new(model, span, Meta::default(), layer_rules).unwrap_or_else(|e| panic!("{e}"))
}

fn random_plans(storage: StorageType, seed: u64, plans: usize) {
    let ctx = context();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut failures = Vec::new();
    for p in 0..plans {
        let plan = random_plan(&mut rng);
        let module = lower::lower(&plan, storage);
        let started = std::time::Instant::now();
        let exec = compile(ctx, &module);
        let compiled = started.elapsed();
        let mut prefill = Vec::new();
        let mut decode = Vec::new();
        for layer in 0..module.layers.len() {
            let rows = rng.random_range(1..=3);
            let lens: Vec<u32> = (0..rows).map(|_| rng.random_range(1..=90)).collect();
            let max = lens.iter().copied().max().unwrap_or(1);
            // N from exactly the prompt to well above it.
            let n = max + [0, 1, rng.random_range(0..64)][rng.random_range(0..3)];
            prefill.push(prefill_case(&module, layer, &lens, n, rng.random()));

            let n = rng.random_range(1..=160);
            let rows = rng.random_range(1..=3);
            // Positions before the ring fills, at N, and long past it (many wraps).
            let pos: Vec<u32> = (0..rows)
                .map(|_| match rng.random_range(0..3) {
                    0 => rng.random_range(0..n),
                    1 => n - 1 + rng.random_range(0..3),
                    _ => rng.random_range(n..4 * n + 50),
                })
                .collect();
            decode.push(decode_case(&module, layer, &pos, n, rng.random()));
        }
        let s = &module.shape;
        let label = format!(
            "plan {p} (seed {seed}: q_heads {} kv_heads {} head_dim {} span {:?}, rules {:?}, spans at decode N {:?})",
            s.q_heads,
            s.kv_heads,
            s.head_dim,
            module.span,
            plan.layers().iter().map(|l| &l.rules).collect::<Vec<_>>(),
            decode
                .iter()
                .map(|c| CacheLayout::new(&module.layers[c.layer], &module.span, c.layout.n_tokens).segments)
                .collect::<Vec<_>>(),
        );
        let started = std::time::Instant::now();
        failures.extend(run_cases(&exec, &prefill, &decode, &label));
        eprintln!(
            "plan {p}: head_dim {} q_heads {} layers {}: compile {compiled:.2?}, run {:.2?}",
            s.head_dim,
            s.q_heads,
            s.layers,
            started.elapsed()
        );
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The first plans of each seed (the same plans as before, fewer of them: each is a cold
/// compile of its pipelines in CI); all of them under `MOA_TEST_FULL=1` (`common::sweeps`).
#[test]
fn random_plans_f32_match_reference() {
    random_plans(
        StorageType::F32,
        0xa11ce,
        if sweeps::full() { 10 } else { 5 },
    );
}

#[test]
fn random_plans_f16_match_reference() {
    random_plans(StorageType::F16, 0xb0b, if sweeps::full() { 8 } else { 4 });
}

/// A GQA group too large for the default tiles (64 query heads on one KV head): the
/// decode chunk shrinks and queries are read from Q instead of workgroup memory. The
/// shapes of both storage types are checked; the kernels run in f16 (f32 too under
/// `MOA_TEST_FULL=1`, `common::sweeps`; session 54).
#[test]
fn large_gqa_group_matches_reference() {
    use moa::codegen::wgsl::decode_shape;
    for storage in [StorageType::F32, StorageType::F16] {
        let shape = decode_shape(storage, 64, 128).unwrap_or_else(|e| panic!("{e}"));
        assert!(shape.tile < shape.threads && !shape.stage_q, "{shape:?}");
    }
    let ctx = context();
    let mut rng = StdRng::seed_from_u64(64);
    let rules = (0..64)
        .map(|h| Rule {
            alpha: 8 * (h % 5) as i32,
            beta_num: BETA_DEN / 8 * (h % 3),
        })
        .collect();
    let model = ModelShape {
        name: Some("mqa-64".into()),
        layers: 1,
        q_heads: 64,
        kv_heads: 1,
        head_dim: 128,
        max_context_tokens: 1024,
    };
    let span = SpanSection {
        sink_tokens: 4,
        min_span_tokens: 8,
        block_tokens: 8,
        mode: SpanMode::Moa,
        max_new_tokens: 8,
    };
    let plan = Plan::new(model, span, Meta::default(), vec![LayerRules { rules }])
        .unwrap_or_else(|e| panic!("{e}"));
    for (s, storage) in [StorageType::F16, StorageType::F32].into_iter().enumerate() {
        let prefill_seed: u64 = rng.random();
        let decode_seed: u64 = rng.random();
        if !sweeps::runs(0, false, s, 2) {
            continue;
        }
        let module = lower::lower(&plan, storage);
        let exec = compile(ctx, &module);
        let prefill = [prefill_case(&module, 0, &[45, 3], 50, prefill_seed)];
        let decode = [decode_case(&module, 0, &[20, 130, 47], 60, decode_seed)];
        let failures = run_cases(&exec, &prefill, &decode, "mqa-64");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn executor_reports_bad_inputs_as_errors() {
    let ctx = context();
    let module = lower::lower(&fixture("fixture-mha.toml"), StorageType::F32);
    let exec = compile(ctx, &module);
    let case = prefill_case(&module, 0, &[5], 8, 1);
    let short_q = &case.q[1..];
    let err = exec.prefill(0, 8, &case.row_start, short_q, &case.k, &case.v);
    assert!(
        matches!(
            err,
            Err(moa::runtime::wgpu::WgpuError::Shape { name: "q", .. })
        ),
        "{err:?}"
    );
    let err = exec.prefill(7, 8, &case.row_start, &case.q, &case.k, &case.v);
    assert!(
        matches!(err, Err(moa::runtime::wgpu::WgpuError::Layer { .. })),
        "{err:?}"
    );
    let dcase = decode_case(&module, 1, &[3], 20, 2);
    let err = exec.decode(
        1,
        200,
        &dcase.row_pos,
        &dcase.q,
        &dcase.k_cache,
        &dcase.v_cache,
    );
    assert!(
        err.is_err(),
        "a cache laid out for another N must be rejected"
    );
}

/// Round 34 (tests/user_round34.rs: plans of 64 query heads over one KV head at head_dim
/// 4, 8 and 16, `common::mqa`): their kernels match the CPU reference, f16 and f32
/// (and 256 heads at head_dim 4, f32):
/// a ragged prefill of 45 and 3 tokens at N = 50 (not a multiple of the block of 8) and
/// one of 13 at N = 13, and decode steps before the ring fills, past it and long after
/// it wrapped (N = 60 and 37), each also over whole segments as the engine launches it
/// and in chunks of three tiles (the softmax carried across tiles).
#[test]
fn a_64_head_group_at_small_head_dims_matches_the_reference() {
    let ctx = context();
    let mut failures = Vec::new();
    // The three head dims at 64 heads, and 256 heads at head_dim 4 in f32, whose shape
    // (4 slot groups, a 4-slot tile) lies further down the same search.
    let runs = HEAD_DIMS
        .iter()
        .flat_map(|&d| [(64, d, StorageType::F16), (64, d, StorageType::F32)])
        .chain([(256, 4, StorageType::F32)]);
    for (q_heads, d, storage) in runs {
        let plan = Plan::from_toml_str(&mqa_toml(q_heads, d), &format!("mqa{q_heads}-d{d}.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let label = format!("{q_heads} heads, head_dim {d} {storage:?}");
        let module = lower::lower(&plan, storage);
        let artifacts =
            codegen::generate(&module, Target::Wgsl).unwrap_or_else(|e| panic!("{label}: {e}"));
        let exec =
            WgpuAttention::new(ctx, &module, &artifacts).unwrap_or_else(|e| panic!("{label}: {e}"));
        let (hq, hd) = (q_heads as usize, d as usize);
        let tol = tolerance(storage);
        let seed = 34 * u64::from(d) + u64::from(q_heads) + (storage == StorageType::F16) as u64;
        for case in [
            prefill_case(&module, 0, &[45, 3], 50, seed),
            prefill_case(&module, 0, &[13], 13, seed + 1),
        ] {
            let got = exec
                .run_prefill_case(&case)
                .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
            if let Err(e) = check_output(&case.name, hq, hd, &got, &case.expected, tol) {
                failures.push(format!("{label}: {e}"));
            }
        }
        let tile = exec.decode_tile();
        for case in [
            decode_case(&module, 0, &[20, 130, 47], 60, seed + 2),
            decode_case(&module, 0, &[5, 300], 37, seed + 3),
        ] {
            let n = case.layout.n_tokens;
            let runs = [
                ("host chunks", exec.run_decode_case(&case)),
                (
                    "whole segments",
                    exec.decode_whole_segments(
                        case.layer,
                        n,
                        &case.row_pos,
                        &case.q,
                        &case.k_cache,
                        &case.v_cache,
                    ),
                ),
                (
                    "chunks of three tiles",
                    exec.decode_chunked(
                        case.layer,
                        n,
                        &case.row_pos,
                        3 * tile,
                        &case.q,
                        &case.k_cache,
                        &case.v_cache,
                    ),
                ),
            ];
            for (how, got) in runs {
                let got = got.unwrap_or_else(|e| panic!("{label} {} {how}: {e}", case.name));
                if let Err(e) = check_output(&case.name, hq, hd, &got, &case.expected, tol) {
                    failures.push(format!("{label} {how}: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A one-row prefill whose queries and output are held in parts of whole query tiles
/// (`WgpuAttention::prefill_in_parts`, `Arg::QStart`: how the engine runs a row whose
/// activations exceed a storage binding, DESIGN.md §7) gives the CPU reference's output:
/// every layer of both fixtures (sinks, windows shorter and longer than a part, spans at
/// least N), a row not a multiple of the part or the key tile, parts of one tile and of
/// several, in f32 and f16; a part size that is not whole tiles is an error naming it.
#[test]
fn a_row_held_in_query_parts_matches_the_reference() {
    let ctx = context();
    let mut failures = Vec::new();
    for (plan_file, storage) in [
        ("fixture-mha.toml", StorageType::F32),
        ("fixture-gqa.toml", StorageType::F16),
    ] {
        let module = lower::lower(&fixture(plan_file), storage);
        let exec = compile(ctx, &module);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let q_tile = moa::lower::consts::WGSL_PREFILL_Q_TILE;
        for layer in 0..module.layers.len() {
            for (len, part) in [(3 * q_tile + 5, q_tile), (5 * q_tile - 3, 2 * q_tile)] {
                for n in [len, len + 40] {
                    let case = prefill_case(&module, layer, &[len], n, 0x9a27 + u64::from(len));
                    let got = exec
                        .prefill_in_parts(layer, n, &case.q, &case.k, &case.v, part)
                        .unwrap_or_else(|e| panic!("{plan_file} {}: {e}", case.name));
                    let name = format!("{} in parts of {part}", case.name);
                    if let Err(e) =
                        check_output(&name, hq, d, &got, &case.expected, tolerance(storage))
                    {
                        failures.push(format!("{plan_file}: {e}"));
                    }
                }
            }
        }
        let case = prefill_case(&module, 0, &[40], 40, 1);
        let err = exec
            .prefill_in_parts(0, 40, &case.q, &case.k, &case.v, q_tile + 1)
            .expect_err("a part of a tile and one query");
        assert!(err.to_string().contains("multiple of"), "{err}");
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
