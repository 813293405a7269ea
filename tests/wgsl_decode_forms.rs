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
//! partials), and with each tile's V loads at its start.
//! `tests/wgpu_kernels.rs` runs the default (quad, paired sums, early V for GQA, f16 Q·K,
//! f16 P·V for GQA). The forms run with the rules read from a table, as the wgpu engine
//! builds them (`engine_rules`): one pipeline a form, not one a layer.

#[path = "common/llvmpipe.rs"]
mod llvmpipe;
#[path = "common/sweeps.rs"]
mod sweeps;

use std::path::Path;

use moa::codegen::wgsl::{generate_with, DecodeForm, WgslTuning};
use moa::lower::{self, StorageType};
use moa::plan::Plan;
use moa::runtime::cases::{
    check_output, standard_decode_cases, standard_prefill_cases, tolerance, DecodeCase, PrefillCase,
};
use moa::runtime::wgpu::{DecodePipelineOptions, WgpuAttention, WgpuContext};

/// A wgpu context whose llvmpipe compiles without LLVM's optimisation passes
/// (`common::llvmpipe`: this binary's time on a fresh machine is compiling its forms).
fn context() -> WgpuContext {
    llvmpipe::compile_kernels_fast();
    WgpuContext::new().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn decode_forms_match_reference() {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let ctx = context();
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
    // (label, tuning, pipeline options, whether it applies to f16 storage only): the
    // options beyond the table above.
    let mut tunings: Vec<(String, WgslTuning, DecodePipelineOptions, bool)> = base
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
                narrow,
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
        false,
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
        tunings.push((format!("quad margin 0, {label}"), t, default, true));
    }
    let t = WgslTuning {
        decode_qk_sums: true,
        ..quad
    };
    tunings.push((
        "quad margin 0, sums of p by the Q.K invocations".into(),
        t,
        default,
        false,
    ));
    for threads in [64, 256] {
        let t = WgslTuning {
            decode_threads: threads,
            ..quad
        };
        tunings.push((
            format!("quad margin 0, {threads} invocations"),
            t,
            default,
            false,
        ));
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
        tunings.push((format!("quad margin 0, {label}"), t, default, false));
    }
    if ctx.subgroup_size().is_some() {
        let t = WgslTuning {
            decode_quad_shuffle: true,
            ..quad
        };
        tunings.push(("quad margin 0, quad shuffles".into(), t, default, false));
    }
    let mut failures = Vec::new();
    let plans = [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F32),
    ];
    for (pi, (plan_file, storage)) in plans.into_iter().enumerate() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(plan_file);
        let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let module = lower::lower(&plan, storage);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let cases = standard_decode_cases(&module, 0x5eed);
        for (i, (name, tuning, options, f16_only)) in tunings.iter().enumerate() {
            // The first form on both fixtures, each other on one it applies to, taking
            // turns (`common::sweeps`: on both under `MOA_TEST_FULL=1`).
            let fits: Vec<usize> = (0..plans.len())
                .filter(|&p| !f16_only || plans[p].1 == StorageType::F16)
                .collect();
            if !sweeps::runs_on(i, &fits, pi) {
                continue;
            }
            let artifacts =
                generate_with(&module, engine_rules(*tuning)).unwrap_or_else(|e| panic!("{e}"));
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

/// The flat decode on subgroups (`decode_sg_flat.wgsl.j2`, `WgslTuning::decode_sg_flat`:
/// queries in registers, no staging barrier, K read coalesced and the scores summed by a
/// butterfly of shuffles; `Early` issues each subgroup's first block before the row
/// position, bounded by the chunk, and masks what is unwritten afterwards) against the
/// CPU reference on the standard cases (spans past N and below the sink, rows of
/// different lengths, rings wrapped), at the adapter's subgroup size (lavapipe: 8), with
/// chunks as the host picks them, of one and three tiles and over whole segments (the
/// engine's list: unwritten slots inside the chunks, which the early form loads and must
/// mask). Every subgroup size 8–64 and the loads-only twins generate and validate (naga)
/// for both fixtures, also where the adapter has no subgroups, and so do the register
/// pieces (`WgslTuning::decode_sg_piece`). Steps are half a row's vectors a lane (at
/// subgroup 8: 4 of head_dim 64's 8, 2 of head_dim 32's 4), so every score is finished
/// by sums past the butterfly; V is issued after the scores; and with 2,
/// 4 and 8 subgroups a workgroup asked (`WgslTuning::decode_sg_flat_subgroups`: the
/// same chunks walked by more or fewer subgroups, the workgroup's partials summed over
/// all of them; none asked: 8 for fixture-gqa, a GQA group at head_dim 64, 4 for
/// fixture-mha), late and early; and with each Q·K form
/// (`WgslTuning::decode_sg_flat_qk`: f16 products summed in f32, the queries re-read each
/// step, both; Q as stored and the score scaled after its sum); and merging each
/// segment itself (`WgslTuning::decode_fused_merge`: the segment's last item merges, the
/// scratch re-armed over three steps), late and early, with 4 and 8 subgroups.
#[test]
fn flat_subgroup_decode_matches_reference() {
    use moa::codegen::wgsl::{FlatQk, SgFlat};
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let plans = [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-gqa.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F16),
    ];
    let load = |file: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(file);
        Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    for (file, storage) in plans {
        let module = lower::lower(&load(file), storage);
        for size in [8u8, 16, 32, 64] {
            for flat in [SgFlat::Early, SgFlat::Late] {
                for (diag, piece, subgroups, qk, words) in [
                    (false, 0, 0, FlatQk::F32, false),
                    (true, 0, 0, FlatQk::F32, false),
                    (false, 1, 0, FlatQk::F32, false),
                    (false, 2, 0, FlatQk::F32, false),
                    (false, 3, 0, FlatQk::F32, false),
                    (false, 0, 8, FlatQk::F32, false),
                    (true, 0, 8, FlatQk::F32, false),
                    (false, 0, 2, FlatQk::F32, false),
                    (false, 0, 4, FlatQk::F32, false),
                    (false, 0, 0, FlatQk::H16, false),
                    (false, 0, 0, FlatQk::Reload, false),
                    (false, 0, 0, FlatQk::H16Reload, false),
                    (true, 0, 0, FlatQk::H16Reload, false),
                    (false, 1, 0, FlatQk::H16Reload, false),
                    (false, 3, 0, FlatQk::Reload, false),
                    // K and V read as 16-byte words (`decode_sg_flat_words`: f16 storage
                    // with f32 products; ignored otherwise).
                    (false, 0, 0, FlatQk::F32, true),
                    (true, 0, 0, FlatQk::F32, true),
                    (false, 2, 0, FlatQk::F32, true),
                    (false, 0, 0, FlatQk::Reload, true),
                    (false, 0, 0, FlatQk::H16, true),
                ] {
                    let tuning = WgslTuning {
                        decode_subgroup: Some(size),
                        decode_sg_flat: flat,
                        decode_sg_diag: diag,
                        decode_sg_piece: piece,
                        decode_sg_flat_subgroups: subgroups,
                        decode_sg_flat_qk: qk,
                        decode_sg_flat_words: words,
                        ..WgslTuning::default()
                    };
                    let arts = generate_with(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                    let words_apply = words
                        && storage == StorageType::F16
                        && !matches!(qk, FlatQk::H16 | FlatQk::H16Reload);
                    // The asked subgroups a workgroup (none asked: 8 in a GQA group at
                    // head_dim <= 64, as fixture-gqa's, else 4) where the workgroup stays
                    // within 256 invocations (64 x 8 does not: it keeps 4).
                    let gqa64 = module.shape.group_size() > 1 && module.shape.head_dim <= 64;
                    let want_sgs = match (subgroups, gqa64) {
                        (0, false) => 4,
                        (0, true) => 8,
                        (n, _) => u32::from(n),
                    };
                    let want_sgs = if want_sgs * u32::from(size) <= 256 {
                        want_sgs
                    } else {
                        4
                    };
                    let flat_kernels = arts
                        .iter()
                        .flat_map(|a| &a.kernels)
                        .filter(|k| {
                            k.constants.get("decode_sg_flat")
                                == Some(&serde_json::json!(flat.name()))
                                && k.abi.block[0] == want_sgs * u32::from(size)
                                && (k.constants.get("decode_sg_flat_qk")
                                    == Some(&serde_json::json!(qk.name())))
                                    == (qk != FlatQk::F32)
                                && k.constants.get("decode_sg_flat_words").is_some() == words_apply
                        })
                        .count();
                    assert_eq!(
                        flat_kernels,
                        module.layers.len(),
                        "{file} {storage:?} subgroup {size} {flat:?} diag {diag} piece {piece} subgroups {subgroups} qk {qk:?} words {words}"
                    );
                }
            }
        }
    }
    let ctx = context();
    let Some(size) = ctx.subgroup_size() else {
        eprintln!(
            "no fixed subgroup size on this adapter: only the kernels' generation is checked"
        );
        return;
    };
    let mut failures = Vec::new();
    for (pi, (file, storage)) in plans.into_iter().enumerate() {
        if storage == StorageType::F16 && !ctx.has_f16() {
            continue;
        }
        let module = lower::lower(&load(file), storage);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let cases = standard_decode_cases(&module, 0x5eed);
        // Asks that resolve to the same kernels (none asked is 8 subgroups for
        // fixture-gqa, 4 for fixture-mha) run once: lavapipe's runs are most of CI's time.
        let mut seen = std::collections::HashSet::new();
        for (i, (flat, subgroups, qk, fused, words)) in [
            (SgFlat::Early, 0, FlatQk::F32, false, false),
            (SgFlat::Late, 0, FlatQk::F32, false, false),
            (SgFlat::Late, 8, FlatQk::F32, false, false),
            (SgFlat::Early, 8, FlatQk::F32, false, false),
            (SgFlat::Late, 2, FlatQk::F32, false, false),
            (SgFlat::Late, 4, FlatQk::F32, false, false),
            (SgFlat::Late, 0, FlatQk::H16, false, false),
            (SgFlat::Late, 0, FlatQk::Reload, false, false),
            (SgFlat::Late, 0, FlatQk::H16Reload, false, false),
            (SgFlat::Early, 0, FlatQk::H16Reload, false, false),
            (SgFlat::Late, 0, FlatQk::F32, true, false),
            (SgFlat::Early, 0, FlatQk::H16Reload, true, false),
            (SgFlat::Late, 4, FlatQk::F32, true, false),
            // K and V as 16-byte words (f16 storage; the same kernels as above with f32).
            (SgFlat::Late, 0, FlatQk::F32, true, true),
            (SgFlat::Early, 0, FlatQk::Reload, false, true),
        ]
        .into_iter()
        .enumerate()
        {
            // The first form on every fixture, each other on one of those it applies to
            // (the f16 products and the 16-byte words: f16 storage), taking turns
            // (`common::sweeps`: all of them under `MOA_TEST_FULL=1`).
            let f16_only = words || matches!(qk, FlatQk::H16 | FlatQk::H16Reload);
            let fits: Vec<usize> = (0..plans.len())
                .filter(|&p| !f16_only || plans[p].1 == StorageType::F16)
                .collect();
            if !sweeps::runs_on(i, &fits, pi) {
                continue;
            }
            let tuning = WgslTuning {
                decode_subgroup: u8::try_from(size).ok(),
                decode_sg_flat: flat,
                decode_sg_flat_subgroups: subgroups,
                decode_sg_flat_qk: qk,
                decode_fused_merge: Some(fused),
                decode_sg_flat_words: words,
                ..WgslTuning::default()
            };
            // The first form with each layer's rules baked in (what a library user's
            // `Compiled::wgsl_with` writes by default), the others as the engine builds them.
            let tuning = if i == 0 { tuning } else { engine_rules(tuning) };
            let arts = generate_with(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
            // The flat form merges itself where asked (not the scalar form's fused merge).
            for k in arts.iter().flat_map(|a| &a.kernels) {
                // (The matrix-unit decode is generated beside it, for adapters that have them.)
                if k.phase == moa::codegen::Phase::Decode && !k.name.contains("_coop_") {
                    let merges =
                        k.constants.get("decode_fused_merge") == Some(&serde_json::json!(true));
                    assert!(
                        k.constants.get("decode_sg_flat").is_some() && merges == fused,
                        "{file} {flat:?} fused {fused}: {} {:?}",
                        k.name,
                        k.constants
                    );
                }
            }
            let kernels: Vec<(String, String)> = arts
                .iter()
                .map(|a| (a.source.clone(), serde_json::to_string(&a.kernels).unwrap()))
                .collect();
            if !seen.insert(kernels) {
                continue;
            }
            let exec = WgpuAttention::new_with(&ctx, &module, &arts, Default::default())
                .unwrap_or_else(|e| panic!("{file} {flat:?}: {e}"));
            let label = format!(
                "{file} {storage:?} flat {flat:?} subgroup {size}, {subgroups} subgroups a workgroup, qk {qk:?}, fused merge {fused}, words {words}"
            );
            assert_eq!(exec.decode_fused(), fused, "{label}");
            check_flat_cases(
                &exec,
                &cases,
                (hq, d),
                tolerance(storage),
                fused,
                &label,
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The flat form's no-combine timing diagnostic (`WgslTuning::decode_sg_no_combine`, the
/// decode bench's `MOA_WGSL_SG_NO_COMBINE=1`; wrong results, so only generated): it
/// generates and validates (naga) for every subgroup size, with the full body and the
/// loads-only twin, records itself in the kernel's constants, and is refused with the
/// fused merge (whose merger would read partials no single store wrote).
#[test]
fn flat_no_combine_diagnostic_generates_and_refuses_the_fused_merge() {
    use moa::codegen::wgsl::SgFlat;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let module = lower::lower(
        &Plan::load(&path).unwrap_or_else(|e| panic!("{e}")),
        StorageType::F16,
    );
    for size in [8u8, 16, 32, 64] {
        for diag in [false, true] {
            let tuning = WgslTuning {
                decode_subgroup: Some(size),
                decode_sg_flat: SgFlat::Late,
                decode_sg_diag: diag,
                decode_sg_no_combine: true,
                ..WgslTuning::default()
            };
            let arts = generate_with(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
            let marked = arts
                .iter()
                .flat_map(|a| &a.kernels)
                .filter(|k| {
                    k.constants.get("decode_sg_no_combine") == Some(&serde_json::json!(true))
                })
                .count();
            assert_eq!(marked, module.layers.len(), "subgroup {size} diag {diag}");
        }
    }
    let fused = WgslTuning {
        decode_subgroup: Some(32),
        decode_sg_flat: SgFlat::Late,
        decode_sg_no_combine: true,
        decode_fused_merge: Some(true),
        ..WgslTuning::default()
    };
    assert!(generate_with(&module, fused).is_err());
}

/// The flat form's per-class softmax maxima (`WgslTuning::decode_sg_flat_cmax`,
/// `MOA_WGSL_SG_FLAT_CMAX=1`) and its loads a lane per step (`decode_sg_flat_nl`,
/// `MOA_WGSL_SG_FLAT_NL`), session 26: generated and validated (naga) for every subgroup
/// size with each count of loads (their constants recorded), then run where the adapter
/// has a fixed subgroup size against the CPU reference on both fixtures, f16 and f32
/// (the standard cases: decode before the ring fills, at the wrap and long after it),
/// with chunks of one and three tiles, over whole segments, and fused (three steps over
/// one scratch), late and early, with 16-byte words.
#[test]
fn flat_class_maxima_and_loads_a_step_match_reference() {
    use moa::codegen::wgsl::{FlatQk, SgFlat};
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let plans = [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-gqa.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F16),
    ];
    let load = |file: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(file);
        Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    let tuning = |size: u8, flat, cmax, nl, fused, words| WgslTuning {
        decode_subgroup: Some(size),
        decode_sg_flat: flat,
        decode_sg_flat_cmax: cmax,
        decode_sg_flat_nl: nl,
        decode_fused_merge: Some(fused),
        decode_sg_flat_words: words,
        ..WgslTuning::default()
    };
    for (file, storage) in plans {
        let module = lower::lower(&load(file), storage);
        let dv8 = (module.shape.head_dim / 8).max(1);
        for size in [8u8, 16, 32, 64] {
            for flat in [SgFlat::Early, SgFlat::Late] {
                for (cmax, nl) in [
                    (true, 0),
                    (false, 1),
                    (true, 1),
                    (true, 2),
                    (false, 2),
                    (true, 4),
                    (true, 8),
                ] {
                    let t = tuning(size, flat, cmax, nl, true, true);
                    let arts = generate_with(&module, t).unwrap_or_else(|e| panic!("{e}"));
                    let marked = arts
                        .iter()
                        .flat_map(|a| &a.kernels)
                        .filter(|k| {
                            k.constants.get("decode_sg_flat_cmax").is_some() == cmax
                                && k.constants.get("decode_sg_flat_nl")
                                    == (nl > 0)
                                        .then(|| serde_json::json!(u32::from(nl).min(dv8)))
                                        .as_ref()
                                && k.constants.get("decode_sg_flat")
                                    == Some(&serde_json::json!(flat.name()))
                        })
                        .count();
                    assert_eq!(
                        marked,
                        module.layers.len(),
                        "{file} {storage:?} subgroup {size} {flat:?} cmax {cmax} nl {nl}"
                    );
                }
            }
        }
    }
    run_flat_forms(&plans, |size| {
        [
            // The engine's default with per-class maxima.
            (SgFlat::Late, true, 0, true, true),
            (SgFlat::Late, true, 2, true, true),
            (SgFlat::Late, false, 2, false, true),
            (SgFlat::Late, true, 1, false, false),
            (SgFlat::Early, true, 8, false, true),
        ]
        .into_iter()
        .map(|(flat, cmax, nl, fused, words)| {
            let t = WgslTuning {
                decode_sg_flat_qk: FlatQk::F32,
                ..tuning(size, flat, cmax, nl, fused, words)
            };
            let label = format!(
                "flat {flat:?} subgroup {size}, cmax {cmax}, nl {nl}, fused merge {fused}, words {words}"
            );
            (label, t)
        })
        .collect()
    });
}

/// Runs each form `forms(subgroup size)` gives (a label and its tuning) on every plan of
/// `plans` through [`check_flat_cases`], at the adapter's fixed subgroup size (f16 plans
/// only where the adapter has f16); without a fixed size it says so and checks nothing
/// (the callers have checked the forms' generation). Panics listing every mismatch.
fn run_flat_forms(plans: &[(&str, StorageType)], forms: impl Fn(u8) -> Vec<(String, WgslTuning)>) {
    let ctx = context();
    let Some(size) = ctx.subgroup_size() else {
        eprintln!(
            "no fixed subgroup size on this adapter: only the kernels' generation is checked"
        );
        return;
    };
    let size = u8::try_from(size).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for &(file, storage) in plans {
        if storage == StorageType::F16 && !ctx.has_f16() {
            continue;
        }
        let module = lower::lower(&load_plan(file), storage);
        let (hq, d) = (
            module.shape.q_heads as usize,
            module.shape.head_dim as usize,
        );
        let cases = standard_decode_cases(&module, 0x5eed);
        for (form, t) in forms(size) {
            let fused = t.decode_fused_merge == Some(true);
            let label = format!("{file} {storage:?} {form}");
            let arts =
                generate_with(&module, engine_rules(t)).unwrap_or_else(|e| panic!("{label}: {e}"));
            let exec = WgpuAttention::new_with(&ctx, &module, &arts, Default::default())
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(exec.decode_fused(), fused, "{label}");
            check_flat_cases(
                &exec,
                &cases,
                (hq, d),
                tolerance(storage),
                fused,
                &label,
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `tuning` with each query head's rule read from the per-layer table, as the wgpu engine
/// builds its kernels (`WgslTuning::rules_table`, its default since session 43): one
/// decode text serves every layer of a fixture, so lavapipe compiles one pipeline a form
/// instead of one a layer. A form's code does not depend on where the rules come from
/// (`span.wgsl.j2`'s `moa_rule_span` either way); the baked rules, `moa-compile`'s
/// default, run in `tests/wgpu_kernels.rs` (the default form, random plans) and below
/// (`rules_table_shares_one_source_and_matches_reference`). On a cold Mesa shader cache
/// (a fresh CI machine) the baked forms made `decode_forms_match_reference` alone take
/// 428 s on one core.
fn engine_rules(tuning: WgslTuning) -> WgslTuning {
    WgslTuning {
        rules_table: true,
        ..tuning
    }
}

/// A plan of the repository's `plans/` folder.
fn load_plan(file: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(file);
    Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs every decode case through `exec` whole, in chunks of one and three tiles and as
/// whole segments, and (with the fused merge) three steps over one scratch in chunks of
/// one tile (many merges: the fused merge must re-arm its counters and empty its partials
/// every step); each output is checked against the case's CPU reference at `tol`, and a
/// mismatch is pushed to `failures` under `label`.
#[allow(clippy::too_many_arguments)]
fn check_flat_cases(
    exec: &WgpuAttention,
    cases: &[DecodeCase],
    (hq, d): (usize, usize),
    tol: f32,
    fused: bool,
    label: &str,
    failures: &mut Vec<String>,
) {
    let tile = exec.decode_tile();
    for case in cases {
        let n = case.layout.n_tokens;
        for chunk in [None, Some(tile), Some(3 * tile), Some(0)] {
            let got = match chunk {
                None => exec.run_decode_case(case),
                Some(0) => exec.decode_whole_segments(
                    case.layer,
                    n,
                    &case.row_pos,
                    &case.q,
                    &case.k_cache,
                    &case.v_cache,
                ),
                Some(c) => exec.decode_chunked(
                    case.layer,
                    n,
                    &case.row_pos,
                    c,
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
        if fused {
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
}

/// The flat form's packed queries (`WgslTuning::decode_sg_flat_qpack`,
/// `MOA_WGSL_SG_FLAT_QPACK=1`, session 28): generated and validated (naga) for every
/// subgroup size, late and early, and marked
/// in the kernels' constants exactly where they apply (16-byte words: f16 storage); then run
/// where the adapter has a fixed subgroup size against the CPU reference on both fixtures,
/// f16 and f32 (the standard cases: rows of different lengths, decode before the ring
/// fills, at the wrap and long after it), with chunks of one and three tiles, over whole
/// segments, and fused (three steps over one scratch).
#[test]
fn flat_packed_queries_match_reference() {
    use moa::codegen::wgsl::SgFlat;
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let plans = [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-gqa.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F16),
    ];
    let load = |file: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(file);
        Plan::load(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    let tuning = |size: u8, flat, fused| WgslTuning {
        decode_subgroup: Some(size),
        decode_sg_flat: flat,
        decode_sg_flat_cmax: true,
        decode_fused_merge: Some(fused),
        decode_sg_flat_words: true,
        decode_sg_flat_qpack: true,
        ..WgslTuning::default()
    };
    for (file, storage) in plans {
        let module = lower::lower(&load(file), storage);
        for size in [8u8, 16, 32, 64] {
            for flat in [SgFlat::Early, SgFlat::Late] {
                {
                    let t = tuning(size, flat, true);
                    let arts = generate_with(&module, t).unwrap_or_else(|e| panic!("{e}"));
                    let marked = arts
                        .iter()
                        .flat_map(|a| &a.kernels)
                        .filter(|k| k.constants.get("decode_sg_flat_qpack").is_some())
                        .count();
                    let expected = if storage == StorageType::F16 {
                        module.layers.len()
                    } else {
                        0
                    };
                    assert_eq!(
                        marked, expected,
                        "{file} {storage:?} subgroup {size} {flat:?}"
                    );
                }
            }
        }
    }
    run_flat_forms(&plans, |size| {
        [
            (SgFlat::Late, true),
            (SgFlat::Late, false),
            (SgFlat::Early, true),
            (SgFlat::Early, false),
        ]
        .into_iter()
        .map(|(flat, fused)| {
            let label =
                format!("packed queries, flat {flat:?} subgroup {size}, fused merge {fused}");
            (label, tuning(size, flat, fused))
        })
        .collect()
    });
}

/// The flat and scalar decodes with each query head's rule read from a per-layer table
/// (`WgslTuning::rules_table`, the wgpu engine's default since session 43): every
/// layer's decode source is the same text (no layer or rule in it: the executor builds one
/// pipeline for them all), binds `Arg::Rules` after the form's other bindings, and is
/// marked in its constants; the baked form's sources differ where the layers' rules do.
/// Then run against the CPU reference on both fixtures (layers of different rules:
/// per-head spans, negative α, β = 0 heads, uniform and mixed GQA groups), f16 and f32,
/// fused and not, the flat form late and early where the adapter has a fixed subgroup size
/// (the standard cases: rows of different lengths, before the ring fills, at the wrap and
/// long after it), with chunks of one and three tiles, over whole segments and three fused
/// steps.
#[test]
fn rules_table_shares_one_source_and_matches_reference() {
    use moa::codegen::abi::Arg;
    use moa::codegen::wgsl::SgFlat;
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    // `size` None: the scalar decode.
    let tuning = |size: Option<u8>, flat, fused, table| WgslTuning {
        decode_subgroup: size,
        decode_sg_flat: flat,
        decode_sg_flat_cmax: true,
        decode_sg_flat_words: true,
        decode_fused_merge: Some(fused),
        rules_table: table,
        ..WgslTuning::default()
    };
    for (file, storage) in [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F32),
    ] {
        let module = lower::lower(&load_plan(file), storage);
        for size in [None, Some(8u8), Some(32)] {
            for fused in [false, true] {
                let decode_sources = |table| {
                    let arts = generate_with(&module, tuning(size, SgFlat::Late, fused, table))
                        .unwrap_or_else(|e| panic!("{e}"));
                    arts.into_iter()
                        .filter(|a| {
                            a.kernels.iter().any(|k| {
                                k.phase == moa::codegen::Phase::Decode && !k.name.contains("_coop_")
                            })
                        })
                        .collect::<Vec<_>>()
                };
                let label = format!("{file} subgroup {size:?} fused {fused}");
                let table = decode_sources(true);
                assert_eq!(table.len(), module.layers.len(), "{label}");
                for a in &table {
                    assert_eq!(a.source, table[0].source, "{label}: {}", a.path);
                    assert!(a.source.contains("moa_rules"), "{label}");
                    let k = &a.kernels[0];
                    assert_eq!(
                        k.constants.get("decode_sg_flat").is_some(),
                        size.is_some(),
                        "{label}"
                    );
                    let rules = k.abi.params.iter().find(|p| p.arg == Arg::Rules);
                    let want = if fused { 9 } else { 7 };
                    assert_eq!(rules.map(|p| p.index), Some(want), "{label}: {}", k.name);
                    assert_eq!(
                        k.constants.get("rules_table"),
                        Some(&serde_json::json!(true)),
                        "{label}"
                    );
                    // The kernel's name still says its layer.
                    assert!(
                        k.name.ends_with(&format!("_l{:02}", k.layer.unwrap())),
                        "{label}"
                    );
                }
                let baked = decode_sources(false);
                assert!(
                    baked.iter().all(|a| !a.source.contains("moa_rules")),
                    "{label}"
                );
                assert!(
                    baked.windows(2).any(|w| w[0].source != w[1].source),
                    "{label}: the baked layers differ"
                );
            }
        }
    }
    // The scalar prefill (session 44): one text for every layer, its rules from the table,
    // against the CPU reference on the standard prefill cases (ragged rows, spans below and
    // past N, the sink).
    let ctx = context();
    let mut failures = Vec::new();
    for (file, storage) in [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-gqa.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F32),
    ] {
        if storage == StorageType::F16 && !ctx.has_f16() {
            continue;
        }
        let module = lower::lower(&load_plan(file), storage);
        let arts = generate_with(&module, tuning(None, SgFlat::Off, false, true))
            .unwrap_or_else(|e| panic!("{e}"));
        let prefills: Vec<_> = arts
            .iter()
            .filter(|a| a.kernels[0].phase == moa::codegen::Phase::Prefill)
            .collect();
        assert_eq!(prefills.len(), module.layers.len(), "{file}");
        for a in &prefills {
            assert_eq!(a.source, prefills[0].source, "{file}: one prefill text");
            let rules = a.kernels[0].abi.params.iter().find(|p| p.arg == Arg::Rules);
            assert_eq!(rules.map(|p| p.index), Some(6), "{file}");
        }
        let label = format!("{file} {storage:?} prefill");
        let cases = standard_prefill_cases(&module, 0x5eed);
        failures.extend(prefill_failures(&ctx, &module, &arts, &cases, &label));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    run_flat_forms(
        &[
            ("fixture-gqa.toml", StorageType::F16),
            ("fixture-gqa.toml", StorageType::F32),
            ("fixture-mha.toml", StorageType::F16),
            ("fixture-mha.toml", StorageType::F32),
        ],
        |size| {
            let mut forms = Vec::new();
            for fused in [true, false] {
                for flat in [SgFlat::Late, SgFlat::Early] {
                    let label =
                        format!("rules table, flat {flat:?} subgroup {size}, fused {fused}");
                    forms.push((label, tuning(Some(size), flat, fused, true)));
                }
                let label = format!("rules table, scalar decode, fused {fused}");
                forms.push((label, tuning(None, SgFlat::Off, fused, true)));
            }
            forms
        },
    );
}

/// The prefill kernels of `arts` against the CPU reference on `cases` (`module`'s
/// standard prefill cases, built once per module by the caller: the f64 reference in a
/// debug build was most of this file's time when each tuning built its own), each failure
/// named with `label` and the case.
fn prefill_failures(
    ctx: &WgpuContext,
    module: &moa::lower::KernelModule,
    arts: &[moa::codegen::Artifact],
    prefill_cases: &[PrefillCase],
    label: &str,
) -> Vec<String> {
    let exec = WgpuAttention::new_with(ctx, module, arts, Default::default())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (hq, d) = (
        module.shape.q_heads as usize,
        module.shape.head_dim as usize,
    );
    let mut failures = Vec::new();
    for case in prefill_cases {
        let got = exec
            .run_prefill_case(case)
            .unwrap_or_else(|e| panic!("{label} {}: {e}", case.name));
        if let Err(e) = check_output(
            &case.name,
            hq,
            d,
            &got,
            &case.expected,
            tolerance(module.storage),
        ) {
            failures.push(format!("{label}: {e}"));
        }
    }
    failures
}

/// Session 47: the scalar prefill with two keys a step ([`WgslTuning::prefill_key_pairs`])
/// and 64 or 128 queries a workgroup ([`WgslTuning::prefill_q_tile`]), what the wgpu engine
/// runs on GPUs, against the CPU reference on the standard prefill
/// cases (ragged rows, spans below and past N, the sink, N not a multiple of the tile),
/// with the rules baked and from the table; the default keeps one key a step.
#[test]
fn prefill_key_pairs_match_reference() {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let ctx = context();
    let mut failures = Vec::new();
    for (file, storage) in [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-gqa.toml", StorageType::F32),
        ("fixture-mha.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F32),
    ] {
        if storage == StorageType::F16 && !ctx.has_f16() {
            continue;
        }
        let module = lower::lower(&load_plan(file), storage);
        let cases = standard_prefill_cases(&module, 0x9a125);
        for (pairs, table, q_tile) in [
            (Some(true), false, None),
            (Some(true), true, Some(128)),
            (None, false, None),
            (Some(true), false, Some(64)),
            (None, true, Some(128)),
        ] {
            let label =
                format!("{file} {storage:?} pairs {pairs:?} table {table} q_tile {q_tile:?}");
            let tuning = WgslTuning {
                prefill_key_pairs: pairs,
                rules_table: table,
                prefill_q_tile: q_tile,
                ..WgslTuning::default()
            };
            let arts = generate_with(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
            let prefills: Vec<_> = arts
                .iter()
                .filter(|a| a.kernels[0].phase == moa::codegen::Phase::Prefill)
                .collect();
            assert_eq!(prefills.len(), module.layers.len(), "{label}");
            for a in &prefills {
                assert_eq!(
                    a.source.contains("two keys a step"),
                    pairs == Some(true),
                    "{label}: {}",
                    a.path
                );
                // The executor launches from the ABI's tile, not from a constant.
                let q = q_tile.unwrap_or(moa::lower::consts::WGSL_PREFILL_Q_TILE);
                assert_eq!(a.kernels[0].abi.tiles.q_tile, Some(q), "{label}");
                assert_eq!(a.kernels[0].abi.block, [q, 1, 1], "{label}");
            }
            failures.extend(prefill_failures(&ctx, &module, &arts, &cases, &label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A tile past WebGPU's default 256 invocations, or none, is refused by name.
    let module = lower::lower(&load_plan("fixture-gqa.toml"), StorageType::F32);
    for q in [0, 257] {
        let tuning = WgslTuning {
            prefill_q_tile: Some(q),
            ..WgslTuning::default()
        };
        let e = generate_with(&module, tuning)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains(&format!("prefill_q_tile {q}: allowed 1..=256")),
            "{e}"
        );
    }
}

/// Session 44: a module whose layers all have the same rules (a dense plan, a uniform
/// window) keeps them baked though the table is asked for, in one text that names no layer:
/// the table's loads cost ~0.3 µs a layer on the H200 (DESIGN §7.7 "s44-attn"), and one
/// text keeps one pipeline (one compile on a CPU adapter). One layer that differs brings
/// the table back for every layer. Both hold for the scalar prefill and the decodes.
#[test]
fn rules_stay_baked_where_every_layer_has_the_same_rules() {
    use moa::codegen::abi::Arg;
    use moa::codegen::wgsl::SgFlat;
    use moa::codegen::Phase;
    let shape = moa::plan::ModelShape {
        name: None,
        layers: 3,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 32,
        max_context_tokens: 4096,
    };
    let tuning = |size: Option<u8>| WgslTuning {
        decode_subgroup: size,
        decode_sg_flat: SgFlat::Late,
        decode_sg_flat_words: true,
        decode_fused_merge: Some(size.is_some()),
        rules_table: true,
        ..WgslTuning::default()
    };
    // The module's prefill and decode files (not the cooperative decode, which keeps its
    // rules baked in a text a layer).
    let files = |module: &moa::lower::KernelModule, size, phase| {
        generate_with(module, tuning(size))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|a| {
                a.kernels
                    .iter()
                    .any(|k| k.phase == phase && !k.name.contains("_coop_"))
            })
            .collect::<Vec<_>>()
    };
    let dense = lower::lower(&Plan::dense(shape.clone()).unwrap(), StorageType::F16);
    let mut toml = Plan::dense(shape).unwrap().to_toml();
    // The last layer's first head keeps half the context.
    let last = toml.rfind("beta = [1.0").expect("a dense layer's betas");
    toml.replace_range(last..last + "beta = [1.0".len(), "beta = [0.5");
    let mixed = lower::lower(
        &Plan::from_toml_str(&toml, "mixed.toml").unwrap_or_else(|e| panic!("{e}\n{toml}")),
        StorageType::F16,
    );
    for size in [None, Some(8u8), Some(32)] {
        for phase in [Phase::Prefill, Phase::Decode] {
            let label = format!("{size:?} {phase:?}");
            let baked = files(&dense, size, phase);
            assert_eq!(baked.len(), 3, "{label}");
            for (i, a) in baked.iter().enumerate() {
                let k = &a.kernels[0];
                assert!(!a.source.contains("moa_rules"), "{label} {}", a.path);
                assert!(!k.abi.params.iter().any(|p| p.arg == Arg::Rules), "{label}");
                assert_eq!(a.source, baked[0].source, "{label}: one text");
                assert!(!k.entry_point.contains("_l0"), "{label}: {}", k.entry_point);
                assert!(
                    k.name.ends_with(&format!("_l{i:02}")),
                    "{label}: {}",
                    k.name
                );
                assert_eq!(
                    k.constants.get("rules_table"),
                    Some(&serde_json::json!(false)),
                    "{label}"
                );
            }
            let table = files(&mixed, size, phase);
            for a in &table {
                assert!(a.source.contains("moa_rules"), "{label} {}", a.path);
                assert_eq!(a.source, table[0].source, "{label}");
                assert_eq!(
                    a.kernels[0].constants.get("rules_table"),
                    Some(&serde_json::json!(true)),
                    "{label}"
                );
            }
        }
    }
}
