//! docs/EMBEDDING.md against what `moa-compile` writes: an app binding the kernels with
//! its own executor has only the manifest and that page, so every launch rule, argument
//! role, access kind, uniform word, tile size, phase and manifest key the compiler emits
//! (both targets, every storage type, a GQA and an MHA plan) must be explained there,
//! and the pre-pass kernels the page tells CUDA bf16 users to launch (the manifest does
//! not list them) must be in the sources under the names it gives. Codegen only, no GPU;
//! about a second.

use std::collections::BTreeSet;
use std::path::Path;

use moa::codegen::Target;
use moa::{Plan, StorageType};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every (target, storage) moa-compile accepts, for the two fixture plans.
fn compiles() -> Vec<moa::Compiled> {
    let mut out = Vec::new();
    for plan in ["fixture-gqa.toml", "fixture-mha.toml"] {
        let plan = Plan::load(&root().join("plans").join(plan)).unwrap();
        for (target, storage) in [
            (Target::Wgsl, StorageType::F16),
            (Target::Wgsl, StorageType::F32),
            (Target::Cuda, StorageType::F16),
            (Target::Cuda, StorageType::F32),
            (Target::Cuda, StorageType::Bf16),
        ] {
            out.push(moa::compile(&plan, &[target], storage).unwrap());
        }
    }
    out
}

/// The names an embedding app meets in a manifest: keys and the values that select a
/// meaning (rule, arg, access, elem, phase, uniform fields, tile names).
fn names(m: &serde_json::Value, out: &mut BTreeSet<String>) {
    for key in m.as_object().unwrap().keys() {
        out.insert(key.clone());
    }
    for key in m["model"].as_object().unwrap().keys() {
        out.insert(key.clone());
    }
    for key in m["span"].as_object().unwrap().keys() {
        out.insert(key.clone());
    }
    for key in ["description", "at_max_context", "layers"] {
        out.insert(key.to_string());
    }
    let at_max = &m["cache_layout"]["at_max_context"][0];
    out.extend(at_max.as_object().unwrap().keys().cloned());
    for seg in m["cache_layout"]["at_max_context"][0]["segments"]
        .as_array()
        .unwrap()
    {
        out.extend(seg.as_object().unwrap().keys().cloned());
    }
    out.insert(m["storage"].as_str().unwrap().to_string());
    for f in m["files"].as_array().unwrap() {
        out.extend(f.as_object().unwrap().keys().cloned());
        for k in f["kernels"].as_array().unwrap() {
            out.extend(k.as_object().unwrap().keys().cloned());
            out.insert(k["phase"].as_str().unwrap().to_string());
            let abi = &k["abi"];
            out.extend(abi.as_object().unwrap().keys().cloned());
            out.insert(abi["grid"]["rule"].as_str().unwrap().to_string());
            out.extend(abi["tiles"].as_object().unwrap().keys().cloned());
            for p in abi["params"].as_array().unwrap() {
                out.extend(p.as_object().unwrap().keys().cloned());
                for v in ["arg", "access", "elem"] {
                    out.insert(p[v].as_str().unwrap().to_string());
                }
                for w in p["fields"].as_array().into_iter().flatten() {
                    out.insert(w.as_str().unwrap().to_string());
                }
            }
        }
    }
}

#[test]
fn every_name_a_manifest_holds_is_explained_in_the_embedding_page() {
    let doc = std::fs::read_to_string(root().join("docs/EMBEDDING.md")).unwrap();
    let mut seen = BTreeSet::new();
    for c in compiles() {
        let m: serde_json::Value = serde_json::from_str(&c.manifest_json()).unwrap();
        names(&m, &mut seen);
    }
    // Sanity: the walk reached the ABI.
    for n in [
        "work_items",
        "query_tiles",
        "seg_done",
        "v_f16",
        "n_items",
        "k_tile",
    ] {
        assert!(seen.contains(n), "{n} not found in any manifest: {seen:?}");
    }
    let missing: Vec<&String> = seen
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "manifest names docs/EMBEDDING.md does not explain (as `name`): {missing:?}"
    );
}

/// The page's recipe for a prefill taking `v_f16`: the source defines either
/// `{entry}_vcvt` and `{entry}_vfix` or `{entry}_vmax` and `{entry}_vf16`, none of them
/// listed in the manifest, and a prefill without `v_f16` has none.
#[test]
fn the_bf16_prepass_kernels_are_where_the_page_says() {
    let mut with_prepass = 0;
    for c in compiles() {
        for (target, artifacts) in c.all_artifacts() {
            if *target != Target::Cuda {
                continue;
            }
            for a in artifacts {
                for k in a.kernels.iter().filter(|k| k.name.contains("prefill")) {
                    let e = &k.entry_point;
                    let has = |s: &str| a.source.contains(&format!("{e}_{s}("));
                    let takes = k
                        .abi
                        .params
                        .iter()
                        .any(|p| p.arg == moa::codegen::abi::Arg::VF16);
                    let listed = a
                        .kernels
                        .iter()
                        .any(|o| o.entry_point.starts_with(&format!("{e}_")));
                    assert!(
                        !listed,
                        "{e}: a pre-pass kernel is now in the manifest; update docs/EMBEDDING.md"
                    );
                    if takes {
                        with_prepass += 1;
                        let unit = has("vcvt") && has("vfix");
                        let plain = has("vmax") && has("vf16");
                        assert!(
                            unit ^ plain,
                            "{e} in {}: pre-pass kernels not as the page says",
                            a.path
                        );
                        assert!(k
                            .abi
                            .params
                            .iter()
                            .any(|p| p.arg == moa::codegen::abi::Arg::VMax));
                    } else {
                        assert!(!has("vcvt") && !has("vmax"), "{e}: pre-pass without v_f16");
                    }
                }
            }
        }
    }
    assert!(
        with_prepass > 0,
        "no prefill takes v_f16 any more: update docs/EMBEDDING.md"
    );
}
