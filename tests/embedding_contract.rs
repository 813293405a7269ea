//! docs/EMBEDDING.md against what `moa-compile` writes: an app binding the kernels with
//! its own executor has only the manifest and that page, so every launch rule, argument
//! role, access kind, uniform word, tile size, phase and manifest key the compiler emits
//! (both targets, every storage type, a GQA and an MHA plan) must be explained there,
//! and the pre-pass kernels the manifest lists before a CUDA bf16 prefill must be defined
//! in its source with the arguments listed, launched on the grid moa's engine uses. Codegen only, no GPU;
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
            abi_names(abi, out);
            let pre = &abi["prepass"];
            if pre.is_object() {
                out.extend(pre.as_object().unwrap().keys().cloned());
                for a in pre["zero"].as_array().unwrap() {
                    out.insert(a.as_str().unwrap().to_string());
                }
                for l in pre["launches"].as_array().unwrap() {
                    out.extend(l.as_object().unwrap().keys().cloned());
                    abi_names(&l["abi"], out);
                }
            }
        }
    }
}

fn abi_names(abi: &serde_json::Value, out: &mut BTreeSet<String>) {
    out.extend(abi.as_object().unwrap().keys().cloned());
    out.extend(abi["grid"].as_object().unwrap().keys().cloned());
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
        "prepass",
        "strided_token_groups",
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

/// The bf16 prefill's pre-pass, as the manifest lists it (`abi.prepass`), against the
/// source and moa's own launch: every prefill taking `v_f16` lists the buffers to zero
/// and two kernels (`{entry}_vcvt`, `{entry}_vfix` or `{entry}_vmax`, `{entry}_vf16`)
/// that the same file defines with exactly the listed arguments (name, order, `const`
/// for `read`, by value for `value`); their grid rule gives the grid moa's engine
/// launches (`runtime::cuda::v_prepass_grid`); a prefill without `v_f16` lists none.
#[test]
fn the_bf16_prepass_kernels_are_listed_as_the_source_defines_them() {
    use moa::codegen::abi::{Access, Arg, Grid, LaunchSize};
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
                    let takes = k.abi.param(Arg::VF16).is_some();
                    let Some(pre) = &k.abi.prepass else {
                        assert!(!takes, "{e} takes v_f16 but lists no pre-pass");
                        assert!(!has("vcvt") && !has("vmax"), "{e}: pre-pass without v_f16");
                        continue;
                    };
                    assert!(takes, "{e}: a pre-pass without v_f16");
                    with_prepass += 1;
                    assert_eq!(pre.zero, [Arg::VMax], "{e}");
                    assert!(k.abi.param(Arg::VMax).is_some(), "{e}");
                    let names: Vec<&str> = pre
                        .launches
                        .iter()
                        .map(|l| l.entry_point.as_str())
                        .collect();
                    let unit = [format!("{e}_vcvt"), format!("{e}_vfix")];
                    let plain = [format!("{e}_vmax"), format!("{e}_vf16")];
                    assert!(names == unit || names == plain, "{e}: {names:?}");
                    for l in &pre.launches {
                        let sig = signature(&a.source, &l.entry_point).unwrap_or_else(|| {
                            panic!("{} not defined in {}", l.entry_point, a.path)
                        });
                        assert_eq!(sig.len(), l.abi.params.len(), "{}: {sig:?}", l.entry_point);
                        for (i, (decl, p)) in sig.iter().zip(&l.abi.params).enumerate() {
                            assert_eq!(p.index as usize, i);
                            let arg = serde_json::to_value(p.arg).unwrap();
                            let name = decl.rsplit([' ', '*']).next().unwrap();
                            assert_eq!(name, arg.as_str().unwrap(), "{}: {decl}", l.entry_point);
                            let is_ptr = decl.contains('*');
                            let is_const = decl.starts_with("const ");
                            match p.access {
                                Access::Value => assert!(!is_ptr, "{decl}"),
                                Access::Read => assert!(is_ptr && is_const, "{decl}"),
                                Access::ReadWrite => assert!(is_ptr && !is_const, "{decl}"),
                                Access::Uniform => panic!("{decl}: uniform in CUDA"),
                            }
                        }
                        assert_eq!(l.abi.block, [128, 1, 1]);
                        assert_eq!(l.abi.dynamic_shared_bytes, 0);
                        let strided = matches!(l.abi.grid, Grid::StridedTokenGroups { .. });
                        assert_eq!(strided, names == unit, "{}", l.entry_point);
                        for total in [1, 63, 64, 65, 4096, 16384 * 4, 1 << 20] {
                            for kv_heads in [1, 2, 8, 32] {
                                let s = LaunchSize {
                                    kv_heads,
                                    ..LaunchSize::default()
                                };
                                let (x, y, z) =
                                    moa::runtime::cuda::v_prepass_grid(total, kv_heads, strided);
                                assert_eq!(
                                    l.abi.grid.dims_tokens(&s, total),
                                    [x, y, z],
                                    "{} at {total} tokens, {kv_heads} KV heads",
                                    l.entry_point
                                );
                            }
                        }
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

/// The parameter declarations of the `extern "C"` kernel `name` in a CUDA source
/// (`["const elem_t* __restrict__ v", "unsigned rows", …]`), or `None` if it is not defined.
fn signature(source: &str, name: &str) -> Option<Vec<String>> {
    let at = source.find(&format!("\n{name}("))?;
    let before = &source[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    assert!(
        before[line_start..].contains("extern \"C\" __global__"),
        "{name}: not an extern \"C\" kernel"
    );
    let args = &source[at + name.len() + 2..];
    let args = &args[..args.find(')')?];
    Some(
        args.split(',')
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect(),
    )
}
