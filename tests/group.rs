//! One test binary for the integration tests that need no process of their own: each file
//! below is a module of this crate (`cargo test --test group cuts::` runs tests/cuts.rs),
//! and Cargo.toml turns its own target off (`[[test]] name = "cuts"`, `test = false`), so
//! `cargo test` links one binary instead of one per file (~3.3 s of CPU each on CI's two
//! cores, session 28) and runs these tests side by side on every thread, where separate
//! binaries ran one after another. A new file in tests/ still builds alone (cargo's
//! autodiscovery) until it is added here and to Cargo.toml; `group_lists::` checks that
//! the two lists agree.
//!
//! Files that stay alone: those that set process-wide state (`model_tiny` sets
//! `MOA_CACHE`), whose insta snapshots are named by their module path (`snapshots`), that
//! benches/ and the docs run by `--test` (`model_gpu`, `cuda_engine`, `wgsl_decode_forms`,
//! `wgpu_kernels`, `cuda_nvrtc`, `model_llama1b_gpu`). Scratch folders of the grouped files
//! carry the file's name (tests/common's helpers take it as a tag), so no two collide in
//! one process. docs/TESTING.md says how to run one test.
//!
//! Each file is a `#[path]` module so that its own `mod common;` resolves to
//! tests/common/ (a `#[path]` file owns its folder like a `mod.rs`), as it does when the
//! file is a crate of its own; that module is then compiled once per file that uses it.

// tests/common/mod.rs is included by every file that declares `mod common;`, as before
// when each was a crate of its own.
#![allow(clippy::duplicate_mod)]

#[path = "cache_layout.rs"]
mod cache_layout;
#[path = "calib.rs"]
mod calib;
#[path = "chat_template.rs"]
mod chat_template;
#[path = "compile_check.rs"]
mod compile_check;
#[path = "copy_head.rs"]
mod copy_head;
#[path = "cuts.rs"]
mod cuts;
#[path = "docs_contract.rs"]
mod docs_contract;
#[path = "embedding_app.rs"]
mod embedding_app;
#[path = "embedding_contract.rs"]
mod embedding_contract;
#[path = "eval.rs"]
mod eval;
#[path = "eval_merge.rs"]
mod eval_merge;
#[path = "eval_retrieval.rs"]
mod eval_retrieval;
#[path = "fetch_offline.rs"]
mod fetch_offline;
#[path = "flag_edges.rs"]
mod flag_edges;
#[path = "generate_cli.rs"]
mod generate_cli;
#[path = "generate_user.rs"]
mod generate_user;
#[path = "gguf_files.rs"]
mod gguf_files;
#[path = "gpu_only_commands.rs"]
mod gpu_only_commands;
#[path = "inputs.rs"]
mod inputs;
#[path = "k_quants.rs"]
mod k_quants;
#[path = "kernels_folder_user.rs"]
mod kernels_folder_user;
#[path = "llama_plan_user.rs"]
mod llama_plan_user;
#[path = "load_memory.rs"]
mod load_memory;
#[path = "main_script.rs"]
mod main_script;
#[path = "model_smollm2.rs"]
mod model_smollm2;
#[path = "model_smollm2_gpu.rs"]
mod model_smollm2_gpu;
#[path = "mutation.rs"]
mod mutation;
#[path = "optimize.rs"]
mod optimize;
#[path = "pipeline.rs"]
mod pipeline;
#[path = "pipeline_user.rs"]
mod pipeline_user;
#[path = "plan.rs"]
mod plan;
#[path = "plan_max_batch.rs"]
mod plan_max_batch;
#[path = "prefill_bf16_rounding.rs"]
mod prefill_bf16_rounding;
#[path = "profile.rs"]
mod profile;
#[path = "prompt_pipe.rs"]
mod prompt_pipe;
#[path = "quant_weights.rs"]
mod quant_weights;
#[path = "quantized_user.rs"]
mod quantized_user;
#[path = "resume.rs"]
mod resume;
#[path = "self_contained.rs"]
mod self_contained;
#[path = "under_plan.rs"]
mod under_plan;
#[path = "user_round10.rs"]
mod user_round10;
#[path = "user_round11.rs"]
mod user_round11;
#[path = "user_round12.rs"]
mod user_round12;
#[path = "user_round13.rs"]
mod user_round13;
#[path = "user_round14.rs"]
mod user_round14;
#[path = "user_round15.rs"]
mod user_round15;
#[path = "user_round16.rs"]
mod user_round16;
#[path = "user_round17.rs"]
mod user_round17;
#[path = "user_round18.rs"]
mod user_round18;
#[path = "user_round19.rs"]
mod user_round19;
#[path = "user_round20.rs"]
mod user_round20;
#[path = "user_round21.rs"]
mod user_round21;
#[path = "user_round22.rs"]
mod user_round22;
#[path = "user_round23.rs"]
mod user_round23;
#[path = "user_round24.rs"]
mod user_round24;
#[path = "user_round25.rs"]
mod user_round25;
#[path = "user_round26.rs"]
mod user_round26;
#[path = "user_round27.rs"]
mod user_round27;
#[path = "user_round28.rs"]
mod user_round28;
#[path = "user_round29.rs"]
mod user_round29;
#[path = "user_round30.rs"]
mod user_round30;
#[path = "user_round31.rs"]
mod user_round31;
#[path = "user_round32.rs"]
mod user_round32;
#[path = "user_round33.rs"]
mod user_round33;
#[path = "user_round34.rs"]
mod user_round34;
#[path = "user_round35.rs"]
mod user_round35;
#[path = "user_round36.rs"]
mod user_round36;
#[path = "user_round37.rs"]
mod user_round37;
#[path = "user_round38.rs"]
mod user_round38;
#[path = "user_round39.rs"]
mod user_round39;
#[path = "user_round40.rs"]
mod user_round40;
#[path = "user_round41.rs"]
mod user_round41;
#[path = "user_s56.rs"]
mod user_s56;
#[path = "user_s57.rs"]
mod user_s57;
#[path = "user_s59.rs"]
mod user_s59;
#[path = "user_s60.rs"]
mod user_s60;
#[path = "user_s61.rs"]
mod user_s61;
#[path = "version_commit.rs"]
mod version_commit;
#[path = "weight_stream.rs"]
mod weight_stream;
#[path = "wgpu_options.rs"]
mod wgpu_options;
#[path = "wgsl_backends.rs"]
mod wgsl_backends;

/// The group's list (this file's `#[path]` modules) and Cargo.toml's `[[test]]` targets
/// with `test = false` name the same files of tests/, so no file is run twice or skipped.
mod group_lists {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The module names of `#[path = "X.rs"] mod X;` lines in tests/group.rs; panics on a
    /// `#[path]` whose module name is not its file's.
    fn grouped() -> BTreeSet<String> {
        let text = std::fs::read_to_string(root().join("tests/group.rs")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = BTreeSet::new();
        for pair in lines.windows(2) {
            let Some(file) = pair[0]
                .strip_prefix("#[path = \"")
                .and_then(|s| s.strip_suffix(".rs\"]"))
            else {
                continue;
            };
            assert_eq!(pair[1], format!("mod {file};"), "tests/group.rs");
            out.insert(file.to_string());
        }
        out
    }

    /// Cargo.toml's `[[test]]` targets with `test = false`, each checked to be the file
    /// tests/<name>.rs (no `path` of its own).
    fn turned_off() -> BTreeSet<String> {
        let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let mut out = BTreeSet::new();
        let tests = manifest.get("test").and_then(|t| t.as_array());
        for t in tests.into_iter().flatten() {
            let name = t["name"].as_str().unwrap();
            if t.get("test").and_then(|v| v.as_bool()) == Some(false) {
                assert!(
                    t.get("path").is_none(),
                    "[[test]] {name}: a path of its own"
                );
                out.insert(name.to_string());
            }
        }
        out
    }

    #[test]
    fn cargo_toml_turns_off_exactly_the_grouped_files() {
        let grouped = grouped();
        assert!(grouped.len() > 40, "{grouped:?}");
        assert_eq!(grouped, turned_off());
        for name in &grouped {
            let file = root().join(format!("tests/{name}.rs"));
            assert!(file.is_file(), "{} is missing", file.display());
        }
    }

    /// The files that stay alone are still their own targets: no `test = false`.
    #[test]
    fn the_files_left_alone_are_still_run() {
        let grouped = grouped();
        let mut alone = BTreeSet::new();
        for e in std::fs::read_dir(root().join("tests")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
                if stem != "group" && !grouped.contains(&stem) {
                    alone.insert(stem);
                }
            }
        }
        let off = turned_off();
        for name in &alone {
            assert!(
                !off.contains(name),
                "{name}: test = false but not in tests/group.rs"
            );
        }
        for name in ["model_tiny", "snapshots", "model_gpu", "cuda_nvrtc"] {
            assert!(alone.contains(name), "{name} must stay a binary of its own");
        }
    }
}
