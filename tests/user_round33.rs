//! A new user's journey, round 33: an app that binds moa's generated kernels with its own
//! wgpu executor, from `manifest.json` and docs/EMBEDDING.md alone. The `rules` argument
//! (session 44: `WgslTuning::rules_table` kernels read each query head's rule from a
//! per-layer table) had a row in EMBEDDING.md's argument table that named no manifest
//! field to fill it from (`β·BETA_DEN`, a Rust constant), not which library call writes
//! such a folder, and the cooperative decode's "same bindings as the layer's decode" was
//! wrong beside it (that form bakes its rules: one binding fewer). Pinned here: a folder
//! written through the library with the table holds what the page says, a table built
//! from the manifest as the page says is the engine's, and moa-compile's own output never
//! has the argument. `moa-compile --check` of such a folder listed every WGSL file as
//! differing with no word why, and a compile into it replaced the kernels (and their
//! bindings) as "N files written": both now say what the folder held. Codegen only, no
//! GPU.

mod common;

use std::path::Path;

use common::cli::s;

use moa::codegen::wgsl::WgslTuning;
use moa::{Plan, StorageType, Target};

common::cli::tagged!();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn embedding_page() -> String {
    std::fs::read_to_string(root().join("docs/EMBEDDING.md")).unwrap()
}

/// fixture-gqa's layers have different rules, so the table form reads them from `rules`.
fn gqa() -> Plan {
    Plan::load(&root().join("plans/fixture-gqa.toml")).unwrap()
}

fn table_tuning() -> WgslTuning {
    WgslTuning {
        rules_table: true,
        ..WgslTuning::default()
    }
}

/// The kernels of a manifest: (file path, kernel JSON).
fn kernels(manifest: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        for k in f["kernels"].as_array().unwrap() {
            out.push((f["path"].as_str().unwrap().to_string(), k.clone()));
        }
    }
    out
}

fn rules_param(kernel: &serde_json::Value) -> Option<serde_json::Value> {
    kernel["abi"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["arg"] == "rules")
        .cloned()
}

/// The table an app fills from the manifest alone, as EMBEDDING.md's `rules` row says:
/// per query head of `cache_layout.layers[l].q_heads`, `rule.alpha` as an i32's bits,
/// then `rule.beta_num`.
fn table_from_manifest(manifest: &serde_json::Value, layer: usize) -> Vec<u32> {
    manifest["cache_layout"]["layers"][layer]["q_heads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            let alpha = h["rule"]["alpha"].as_i64().unwrap() as i32;
            let beta_num = h["rule"]["beta_num"].as_u64().unwrap() as u32;
            [alpha as u32, beta_num]
        })
        .collect()
}

#[test]
fn a_library_rules_table_folder_is_bound_as_the_embedding_page_says() {
    let plan = gqa();
    let compiled = moa::Compiled::wgsl_with(&plan, StorageType::F16, table_tuning()).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&compiled.manifest_json()).unwrap();
    let q_heads = manifest["model"]["q_heads"].as_u64().unwrap() as usize;
    let mut with_table = 0;
    for (path, k) in kernels(&manifest) {
        let phase = k["phase"].as_str().unwrap();
        let table = k["constants"]["rules_table"].as_bool();
        match rules_param(&k) {
            Some(p) => {
                with_table += 1;
                assert_eq!(
                    table,
                    Some(true),
                    "{path}: a `rules` argument without rules_table"
                );
                assert!(matches!(phase, "prefill" | "decode"), "{path}: {phase}");
                assert!(
                    !path.contains("coop"),
                    "{path}: the coop decode bakes its rules"
                );
                assert_eq!(p["access"], "read", "{path}");
                assert_eq!(p["elem"], "u32", "{path}");
                assert_eq!(p["shape"], serde_json::json!(["q_heads", "2"]), "{path}");
                // The layer's text names no layer: one pipeline for every layer.
                assert!(
                    !k["entry_point"].as_str().unwrap().contains("_l0"),
                    "{path}"
                );
                let layer = k["layer"].as_u64().unwrap() as usize;
                let from_manifest = table_from_manifest(&manifest, layer);
                assert_eq!(from_manifest.len(), q_heads * 2);
                assert_eq!(
                    from_manifest,
                    moa::runtime::wgpu::head_rules(&compiled.module().layers[layer]),
                    "{path}: the table EMBEDDING.md describes is not the engine's"
                );
                // The kernel's baked-constant record agrees with the table's β scale.
                assert_eq!(k["constants"]["beta_den"], 4096, "{path}");
            }
            None => assert_ne!(table, Some(true), "{path}: rules_table without `rules`"),
        }
    }
    // 3 layers: a prefill and a decode each.
    assert_eq!(with_table, 6);
    // The coop decode's bindings are the layer's decode's less `rules`.
    let by_path: std::collections::BTreeMap<String, serde_json::Value> =
        kernels(&manifest).into_iter().collect();
    let args = |k: &serde_json::Value| -> Vec<String> {
        k["abi"]["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["arg"].as_str().unwrap().to_string())
            .filter(|a| a != "rules")
            .collect()
    };
    assert_eq!(
        args(&by_path["wgsl/l00_decode.wgsl"]),
        args(&by_path["wgsl/l00_decode_coop.wgsl"])
    );
}

#[test]
fn the_embedding_page_names_the_manifest_fields_that_fill_the_rules_table() {
    let doc = embedding_page();
    let row = doc
        .lines()
        .find(|l| l.starts_with("| `rules` |"))
        .expect("EMBEDDING.md has no `rules` argument row");
    for needle in [
        "`constants.rules_table`",
        "`cache_layout.layers[l].q_heads[i].rule`",
        "`alpha`",
        "`beta_num`",
        "Compiled::wgsl_with",
        "never by `moa-compile`",
        "`lNN_decode_coop`",
    ] {
        assert!(
            row.contains(needle),
            "the `rules` row lacks {needle}: {row}"
        );
    }
    // The cooperative decode is not said to take the decode's bindings unqualified.
    let coop = doc
        .split("`OUT/wgsl/lNN_decode_coop.wgsl`")
        .nth(1)
        .unwrap()
        .split("\n- ")
        .next()
        .unwrap()
        .to_string();
    assert!(coop.contains("less the layer's decode's `rules`"), "{coop}");
}

#[test]
fn moa_compile_output_never_has_a_rules_argument() {
    for name in [
        "fixture-gqa.toml",
        "fixture-mha.toml",
        "smollm2-135m-moa-50.toml",
    ] {
        let plan = Plan::load(&root().join("plans").join(name)).unwrap();
        for storage in [StorageType::F16, StorageType::F32] {
            let c = moa::compile(&plan, &[Target::Wgsl, Target::Cuda], storage).unwrap();
            let m: serde_json::Value = serde_json::from_str(&c.manifest_json()).unwrap();
            for (path, k) in kernels(&m) {
                assert!(rules_param(&k).is_none(), "{name} {path}: `rules` argument");
                assert!(k["constants"].get("rules_table").is_none(), "{name} {path}");
            }
        }
    }
}

#[test]
fn a_library_rules_table_folder_reads_back_and_is_refused_for_another_plan() {
    let plan = gqa();
    let compiled = moa::Compiled::wgsl_with(&plan, StorageType::F16, table_tuning()).unwrap();
    let dir = scratch("read-back");
    compiled.write(&dir).unwrap();
    moa::Compiled::read(&dir, &plan, StorageType::F16, Target::Wgsl).unwrap();
    // Another plan of the same shape: the texts are the same (the rules are not baked),
    // so only the manifest's rules can tell; loading must still refuse it.
    let text = std::fs::read_to_string(root().join("plans/fixture-gqa.toml"))
        .unwrap()
        .replace(
            "alpha = [32, 32, 32, 32, 0, 0, 0, 0]",
            "alpha = [48, 32, 32, 32, 0, 0, 0, 0]",
        );
    let other = Plan::from_toml_str(&text, "edited fixture-gqa").unwrap();
    let Err(err) = moa::Compiled::read(&dir, &other, StorageType::F16, Target::Wgsl) else {
        panic!("a folder of another plan's rules loaded");
    };
    let msg = err.to_string();
    assert!(msg.contains("alpha"), "{msg}");
}

#[test]
fn moa_compile_says_when_the_folder_holds_library_rules_table_kernels() {
    let plan_path = root().join("plans/fixture-gqa.toml");
    let compiled = moa::Compiled::wgsl_with(&gqa(), StorageType::F16, table_tuning()).unwrap();
    let dir = scratch("library-folder");
    compiled.write(&dir).unwrap();
    let args = [s(&plan_path), "-o", s(&dir), "--target", "wgsl", "-q"];
    let (code, _, err) = run("moa-compile", &[&args[..], &["--check"]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("WgslTuning::rules_table"), "{err}");
    assert!(err.contains("not with moa-compile"), "{err}");
    let (code, _, err) = run("moa-compile", &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("now replaced by moa-compile's"), "{err}");
    assert!(err.contains("no `rules` argument"), "{err}");
    // moa-compile's own folder: no such note, and --check matches.
    let (code, _, err) = run("moa-compile", &args);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("rules_table"), "{err}");
    let (code, _, err) = run("moa-compile", &[&args[..], &["--check"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("rules_table"), "{err}");
}
