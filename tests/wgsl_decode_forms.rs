//! The scalar WGSL decode's forms (`codegen::wgsl::DecodeForm`) other than the default,
//! run through wgpu (lavapipe in CI) against the CPU reference on the standard cases of
//! `runtime/cases.rs`: `eager` (the fallback for groups too large to unroll, and for
//! layers where `quad` does not fit), `lazy`, and `quad` with margin 0 (the lazy forms'
//! rescale path, which margin 8 rarely takes on random inputs, runs on every tile), each
//! with chunks of three tiles (the softmax carried across tiles) and over whole segments
//! (unwritten slots masked, as the wgpu engine launches it); `quad` with and without
//! early V loads and its paired end-of-chunk sums, with loads in batches of 8, with
//! 8-byte f16 loads, with 64 and 256 invocations per workgroup, with its scores summed
//! by subgroup shuffles (where the adapter has subgroups), with its f16-storage products
//! in f32 arithmetic and with f16 Q·K alone, with its sums of p by the Q·K invocations,
//! and built with wgpu's workgroup zero-fill
//! and naga's runtime checks (the executor's default leaves both out); with the fused
//! merge on and off (and three steps over one scratch where on: re-armed counters, emptied
//! partials), and with each tile's V loads at its start. `item_loads_match_reference`:
//! the chunk's first tile's K (and V, in registers or parked in workgroup memory) loads
//! issued with the work item and each later
//! tile's K loaded by the tile before (`WgslTuning::decode_item_loads`, `decode_next_k`),
//! alone and together, on the fixtures, two layers of SmolLM2-135M's plan and the
//! head_dim-128 GQA plan, f32 and f16.
//! `tests/wgpu_kernels.rs` runs the default (quad, paired sums, early V for GQA, f16 Q·K,
//! f16 P·V for GQA).

use std::path::Path;

use moa::codegen::wgsl::{generate_with, DecodeForm, ItemLoads, WgslTuning};
use moa::codegen::Phase;
use moa::lower::{self, StorageType};
use moa::plan::Plan;
use moa::runtime::cases::{check_output, standard_cases, tolerance};
use moa::runtime::wgpu::{DecodePipelineOptions, WgpuAttention, WgpuContext};

#[test]
fn decode_forms_match_reference() {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let ctx = WgpuContext::new().unwrap_or_else(|e| panic!("{e}"));
    // (form, margin, early V, paired end-of-chunk sums, loads per batch, narrow loads).
    let base = [
        (DecodeForm::Eager, 8, None, false, 16, false),
        (DecodeForm::Lazy, 0, Some(true), false, 16, false),
        (DecodeForm::Quad, 0, Some(false), false, 16, false),
        (DecodeForm::Quad, 0, Some(true), true, 16, false),
        (DecodeForm::Quad, 0, Some(false), true, 8, false),
        (DecodeForm::Quad, 0, Some(true), true, 16, true),
    ];
    let quad = WgslTuning {
        decode_lazy_margin: 0,
        ..WgslTuning::default()
    };
    // (label, tuning, pipeline options): the options beyond the table above.
    let mut tunings: Vec<(String, WgslTuning, DecodePipelineOptions)> = base
        .iter()
        .map(|&(form, margin, early_v, paired, batch, narrow)| {
            (
                format!(
                    "{form:?} margin {margin} early {early_v:?} paired {paired} batch {batch} \
                     narrow {narrow}"
                ),
                WgslTuning {
                    decode_form: form,
                    decode_lazy_margin: margin,
                    decode_early_v: early_v,
                    decode_paired_epilogue: paired,
                    decode_load_batch: batch,
                    decode_narrow_loads: narrow,
                    ..WgslTuning::default()
                },
                DecodePipelineOptions::default(),
            )
        })
        .collect();
    let default = DecodePipelineOptions::default();
    let checked = DecodePipelineOptions {
        zero_init_workgroup_memory: true,
        runtime_checks: true,
    };
    tunings.push((
        "quad margin 0, wgpu's checks and zero-fill".into(),
        quad,
        checked,
    ));
    // The f16-storage products in f32 arithmetic (the default is f16 Q.K, and f16 P.V
    // for a GQA group), and f16 Q.K alone.
    for (label, qk, pv) in [
        ("f32 products", false, false),
        ("f16 Q.K only", true, false),
    ] {
        let t = WgslTuning {
            decode_f16_qk: qk,
            decode_f16_pv: Some(pv),
            ..quad
        };
        tunings.push((format!("quad margin 0, {label}"), t, default));
    }
    let t = WgslTuning {
        decode_qk_sums: true,
        ..quad
    };
    tunings.push((
        "quad margin 0, sums of p by the Q.K invocations".into(),
        t,
        default,
    ));
    for threads in [64, 256] {
        let t = WgslTuning {
            decode_threads: threads,
            ..quad
        };
        tunings.push((format!("quad margin 0, {threads} invocations"), t, default));
    }
    // The fused merge forced on (the default for both fixtures, whose group × head_dim
    // fits) and off (the separate merge dispatch), and with each tile's V loads at its
    // start.
    for (label, fused, v_first) in [
        ("fused merge", Some(true), false),
        ("separate merge", Some(false), false),
        ("fused merge, V loads at the tile's start", Some(true), true),
    ] {
        let t = WgslTuning {
            decode_fused_merge: fused,
            decode_v_first: v_first,
            ..quad
        };
        tunings.push((format!("quad margin 0, {label}"), t, default));
    }
    if ctx.subgroup_size().is_some() {
        let t = WgslTuning {
            decode_quad_shuffle: true,
            ..quad
        };
        tunings.push(("quad margin 0, quad shuffles".into(), t, default));
    }
    let mut failures = Vec::new();
    for (plan_file, storage) in [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F32),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(plan_file);
        let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let module = lower::lower(&plan, storage);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let (_, cases) = standard_cases(&module, 0x5eed);
        for (name, tuning, options) in &tunings {
            let artifacts = generate_with(&module, *tuning).unwrap_or_else(|e| panic!("{e}"));
            let exec = WgpuAttention::new_with(&ctx, &module, &artifacts, *options)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let label = format!("{plan_file} {storage:?} {name}");
            let tile = exec.decode_tile();
            for case in &cases {
                let n = case.layout.n_tokens;
                for whole in [false, true] {
                    let got = if whole {
                        exec.decode_whole_segments(
                            case.layer,
                            n,
                            &case.row_pos,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                        )
                    } else {
                        exec.decode_chunked(
                            case.layer,
                            n,
                            &case.row_pos,
                            3 * tile,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                        )
                    }
                    .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
                    let tol = tolerance(storage);
                    if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                        failures.push(format!("{label} whole segments {whole}: {e}"));
                    }
                }
                // Three steps over one scratch, chunks of one tile (many merges): a fused
                // merge must re-arm its counters and empty its partials every step.
                if exec.decode_fused() {
                    let (got, clean) = exec
                        .decode_repeated(
                            case.layer,
                            n,
                            &case.row_pos,
                            tile,
                            &case.q,
                            &case.k_cache,
                            &case.v_cache,
                            3,
                        )
                        .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
                    let tol = tolerance(storage);
                    if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                        failures.push(format!("{label} three steps: {e}"));
                    }
                    if !clean {
                        failures.push(format!("{label} {}: scratch left dirty", case.name));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Named decode tunings.
type Forms = Vec<(&'static str, WgslTuning)>;

/// The forms of `item_loads_match_reference*`: (name, tuning), every combination and
/// the two that cover the others' template paths elsewhere.
fn item_load_forms() -> (Forms, Forms) {
    let quad = WgslTuning {
        decode_lazy_margin: 0,
        ..WgslTuning::default()
    };
    let form = |item_loads, next_k| WgslTuning {
        decode_item_loads: item_loads,
        decode_next_k: next_k,
        ..quad
    };
    // Every combination on fixture-gqa in f16 and fixture-mha; the two that cover the
    // others' template paths (K alone: early V in the first tile; K and V with the next
    // K) elsewhere (lavapipe builds each form's pipelines in 20-60 s).
    let all: Vec<(&str, WgslTuning)> = vec![
        ("K with the item", form(ItemLoads::K, false)),
        ("K and V with the item", form(ItemLoads::KV, false)),
        ("next K", form(ItemLoads::InTile, true)),
        ("K with the item, next K", form(ItemLoads::K, true)),
        ("K and V with the item, next K", form(ItemLoads::KV, true)),
        (
            "K and V with the item, V in workgroup memory, next K",
            form(ItemLoads::KVShared, true),
        ),
        (
            "K and V with the item, next K, V at the tile's start, fused merge",
            WgslTuning {
                decode_v_first: true,
                decode_fused_merge: Some(true),
                ..form(ItemLoads::KV, true)
            },
        ),
        (
            "K and V with the item, next K, f32 products, no early V",
            WgslTuning {
                decode_f16_qk: false,
                decode_f16_pv: Some(false),
                decode_early_v: Some(false),
                ..form(ItemLoads::KV, true)
            },
        ),
    ];
    let two = vec![
        ("K with the item", form(ItemLoads::K, false)),
        ("K and V with the item, next K", form(ItemLoads::KV, true)),
    ];
    (all, two)
}

/// (plan, storage types, layers kept (None: all), loads per batch, forms). head_dim 128
/// in f32 has 32 K loads per invocation and tile: the forms need them in one batch.
type Run<'a> = (
    &'a str,
    &'a [StorageType],
    Option<&'a [u32]>,
    u32,
    &'a [(&'a str, WgslTuning)],
);

/// The new forms on the fixtures, in CI: every combination on fixture-gqa in f16 (V
/// parked in workgroup memory included) and K and V with the next K on fixture-mha in
/// f32. Lavapipe builds each form's pipelines in 20-60 s with a cold shader cache (a CI
/// machine's), so SmolLM2's layers and the head_dim-128 plan are in
/// `item_loads_match_reference_on_every_plan` (ignored; run it with `--ignored`).
#[test]
fn item_loads_match_reference() {
    let (all, two) = item_load_forms();
    let runs: [Run; 2] = [
        (
            "plans/fixture-gqa.toml",
            &[StorageType::F16],
            None,
            16,
            &all,
        ),
        (
            "plans/fixture-mha.toml",
            &[StorageType::F32],
            None,
            16,
            &two[1..],
        ),
    ];
    check_item_loads(&runs);
}

/// Every run of the new forms (about 14 minutes on lavapipe with a cold shader cache):
/// every combination on fixture-gqa in f16 and fixture-mha, the two covering forms on
/// fixture-gqa in f32, two layers of SmolLM2-135M's plan (f16 and f32, V in workgroup
/// memory in f16) and the head_dim-128 GQA plan.
#[test]
#[ignore = "about 14 minutes on lavapipe with a cold shader cache; the CI subset is item_loads_match_reference"]
fn item_loads_match_reference_on_every_plan() {
    let (all, two) = item_load_forms();
    let shared: Vec<_> = all
        .iter()
        .filter(|(_, t)| t.decode_item_loads == ItemLoads::KVShared)
        .copied()
        .collect();
    let runs: [Run; 6] = [
        (
            "plans/fixture-gqa.toml",
            &[StorageType::F16],
            None,
            16,
            &all,
        ),
        (
            "plans/fixture-gqa.toml",
            &[StorageType::F32],
            None,
            16,
            &two,
        ),
        (
            "plans/fixture-mha.toml",
            &[StorageType::F32],
            None,
            16,
            &all,
        ),
        (
            "plans/smollm2-135m-moa-50.toml",
            &[StorageType::F16, StorageType::F32],
            Some(&[0, 9]),
            16,
            &two,
        ),
        (
            "plans/smollm2-135m-moa-50.toml",
            &[StorageType::F16],
            Some(&[0, 9]),
            16,
            &shared,
        ),
        (
            "benches/decode-h200/wgsl-gqa-hd128.toml",
            &[StorageType::F16, StorageType::F32],
            None,
            32,
            &two,
        ),
    ];
    check_item_loads(&runs);
}

/// The first tile's loads with the work item and the next tile's K loaded by the tile
/// before (opt-in forms of the default `quad` decode, margin 0 so the rescale path runs
/// every tile), against the CPU reference on the standard cases (spans past N and below
/// the sink, N not a multiple of the tile, rows of different lengths, decode after the
/// ring wraps), in chunks of one and three tiles (one tile: only the peeled first tile
/// runs; three: the loop after it) and over whole segments.
/// For each run: builds its forms, checks that each decode kernel is the form asked for
/// and, with the fused merge, three steps over one scratch.
fn check_item_loads(runs: &[Run]) {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let ctx = WgpuContext::new().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shared_built = 0;
    for &(plan_file, storages, keep, batch, forms) in runs {
        let plan = Plan::load(&root.join(plan_file)).unwrap_or_else(|e| panic!("{e}"));
        for &storage in storages {
            let mut module = lower::lower(&plan, storage);
            if let Some(keep) = keep {
                module.layers.retain(|l| keep.contains(&l.layer));
            }
            let (hq, d) = (
                module.shape.q_heads as usize,
                module.shape.head_dim as usize,
            );
            let (_, cases) = standard_cases(&module, 0x5eed);
            for (name, tuning) in forms {
                let tuning = WgslTuning {
                    decode_load_batch: batch,
                    ..*tuning
                };
                let artifacts =
                    generate_with(&module, tuning).unwrap_or_else(|e| panic!("{name}: {e}"));
                // The form must be what was built (a shape it does not fit would silently
                // test the default).
                for k in artifacts.iter().flat_map(|a| &a.kernels) {
                    // The scalar decode (not the cooperative-matrix one, which lavapipe
                    // does not run).
                    if k.phase == Phase::Decode && k.abi.tiles.subgroups.is_none() {
                        let c = &k.constants;
                        let want = tuning.decode_item_loads.name();
                        let got = c["decode_item_loads"].as_str().unwrap_or("tile");
                        // V in workgroup memory falls back to registers where it does not
                        // fit the wide workgroup budget (f32 at head_dim 64).
                        let fallback = tuning.decode_item_loads == ItemLoads::KVShared
                            && got == ItemLoads::KV.name();
                        assert!(
                            got == want || fallback,
                            "{plan_file} {name}: {} got {got}",
                            k.name
                        );
                        shared_built += usize::from(got == ItemLoads::KVShared.name());
                        assert_eq!(
                            c.get("decode_next_k").is_some(),
                            tuning.decode_next_k,
                            "{plan_file} {name}: {}",
                            k.name
                        );
                    }
                }
                let exec = WgpuAttention::new_with(
                    &ctx,
                    &module,
                    &artifacts,
                    DecodePipelineOptions::default(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
                let label = format!("{plan_file} {storage:?} {name}");
                let tile = exec.decode_tile();
                let tol = tolerance(storage);
                for case in &cases {
                    let n = case.layout.n_tokens;
                    for chunk in [Some(tile), Some(3 * tile), None] {
                        let got = match chunk {
                            Some(c) => exec.decode_chunked(
                                case.layer,
                                n,
                                &case.row_pos,
                                c,
                                &case.q,
                                &case.k_cache,
                                &case.v_cache,
                            ),
                            None => exec.decode_whole_segments(
                                case.layer,
                                n,
                                &case.row_pos,
                                &case.q,
                                &case.k_cache,
                                &case.v_cache,
                            ),
                        }
                        .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
                        if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                            failures.push(format!("{label} chunk {chunk:?}: {e}"));
                        }
                    }
                    if exec.decode_fused() {
                        let (got, clean) = exec
                            .decode_repeated(
                                case.layer,
                                n,
                                &case.row_pos,
                                tile,
                                &case.q,
                                &case.k_cache,
                                &case.v_cache,
                                3,
                            )
                            .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
                        if let Err(e) = check_output(&case.name, hq, d, &got, &case.expected, tol) {
                            failures.push(format!("{label} three steps: {e}"));
                        }
                        if !clean {
                            failures.push(format!("{label} {}: scratch left dirty", case.name));
                        }
                    }
                }
                eprintln!("{label}: checked");
            }
        }
    }
    assert!(shared_built > 0, "no decode parked V in workgroup memory");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
