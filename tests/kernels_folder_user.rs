//! `moa generate --kernels DIR` with a folder `moa-compile` wrote for another plan (here
//! the upstream Llama-3.2-1B plan's folder, given with a tiny model's own plan): refused
//! before the weights load, naming the folder, the plan and the first field that differs,
//! and saying to give the folder's plan with --plan. Without --plan the run takes the
//! built-in plan, and the engine's "compile this plan" named a plan the user never gave,
//! after the load. CPU only, a second.

mod common;

use std::process::Command;

use common::tiny::{sparse_plan, tiny, tmp};

#[test]
fn a_kernels_folder_of_another_plan_is_refused_before_the_load() {
    let dir = tmp("kernels-other-plan");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |_, _| {});
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, sparse_plan().to_toml()).unwrap();
    // A folder for the fixture GQA plan (8 query heads, not the tiny model's 4).
    let other = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let out = dir.join("kernels");
    let o = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .arg(&other)
        .arg("-o")
        .arg(&out)
        .args(["--target", "wgsl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let o = c
        .args(["generate", "--max-new-tokens", "1", "--prompt", "hi"])
        .arg("--model")
        .arg(&model)
        .arg("--plan")
        .arg(&plan)
        .arg("--kernels")
        .arg(&out)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{t}");
    for want in [
        &format!(
            "--kernels `{}` was compiled for another plan",
            out.display()
        ),
        &format!("`{}`", plan.display()),
        "in the manifest but the plan needs",
        "--plan",
    ] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
    // Before the engine: nothing was built.
    assert!(!t.contains("building the engine"), "{t}");
}
