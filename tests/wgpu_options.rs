//! The wgpu back end's `MOA_WGPU_*` / `MOA_WGSL_*` settings as a user meets them through
//! `moa generate` (lavapipe in CI): a malformed value stops the run naming the variable,
//! the value and what it takes; an unknown name is a warning naming the closest known
//! one; a removed one says why it went. Each run is a process of its own, so the
//! environment of one never reaches another test.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tiny::{self, tiny};

/// `moa generate --dense` on the tiny random Llama with `vars` set, 1 new token.
fn generate(dir: &Path, vars: &[(&str, &str)]) -> Output {
    let model = dir.join("tiny.gguf");
    if !model.exists() {
        tiny(5, true).write_gguf(&model, |_, _| {});
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moa"));
    cmd.args([
        "generate",
        "--dense",
        "--prompt",
        "hi",
        "--max-new-tokens",
        "1",
    ])
    .arg("--model")
    .arg(&model);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("running moa")
}

#[test]
fn malformed_values_stop_the_run_naming_variable_value_and_choices() {
    let dir = tiny::tmp("options-malformed");
    for (name, value, accepted) in [
        ("MOA_WGPU_SPLIT_K", "abc", "0, 1 or auto"),
        ("MOA_WGPU_AHEAD", "yes", "0 or 1"),
        ("MOA_WGPU_COOP", "off", "0 or 1"),
        ("MOA_WGSL_DECODE", "matrix", "scalar or coop"),
    ] {
        let out = generate(&dir, &[(name, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value} ran:\n{stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(value) && stderr.contains(accepted),
            "{name}={value}:\n{stderr}"
        );
    }
}

#[test]
fn unknown_names_warn_and_known_values_run() {
    let dir = tiny::tmp("options-unknown");
    let out = generate(
        &dir,
        &[
            ("MOA_WGPU_SPLITK", "1"),
            ("MOA_WGPU_SG_PREFETCH", "0"),
            ("MOA_WGPU_SPLIT_K", "1"),
            ("MOA_WGPU_WARM", "0"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MOA_WGPU_SPLITK") && stderr.contains("did you mean MOA_WGPU_SPLIT_K?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("MOA_WGPU_SG_PREFETCH is ignored: that setting was removed"),
        "{stderr}"
    );
    // One warning per name, not one per engine or context built.
    assert_eq!(stderr.matches("MOA_WGPU_SPLITK").count(), 1, "{stderr}");
}

/// The WGSL decode forms are engine settings (`WgpuEngineOptions::wgsl_tuning`): a bad
/// value stops the run naming it; good ones run, the engine compiling the plan's kernels
/// with them; over kernels compiled ahead of time (`--kernels`, which keep the tuning
/// they were generated with) asking one is refused, naming it, instead of running the
/// folder's kernels under the form's name. A deleted form's variable (session 15:
/// `MOA_WGSL_ITEM_LOADS`, `_NEXT_K`) is a warning saying why it went, and the run goes on.
#[test]
fn decode_forms_compile_in_process_and_are_refused_over_precompiled_kernels() {
    let dir = tiny::tmp("options-forms");
    let out = generate(&dir, &[("MOA_WGSL_V_FIRST", "yes")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MOA_WGSL_V_FIRST") && stderr.contains("yes") && stderr.contains("0 or 1"),
        "{stderr}"
    );
    let out = generate(&dir, &[("MOA_WGSL_ITEM_LOADS", "kv")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MOA_WGSL_ITEM_LOADS is ignored: that setting was removed"),
        "{stderr}"
    );
    let forms = [("MOA_WGSL_V_FIRST", "1")];
    let out = generate(&dir, &forms);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not a setting"), "{stderr}");
    // A moa-compile folder of the tiny plan (f32, as `--f32` runs it).
    let plan = tiny::sparse_plan();
    let plan_path = dir.join("plan.toml");
    std::fs::write(&plan_path, plan.to_toml()).unwrap();
    let kernels = dir.join("kernels");
    moa::codegen::compile(
        &plan,
        &[moa::codegen::Target::Wgsl],
        moa::lower::StorageType::F32,
    )
    .unwrap()
    .write(&kernels)
    .unwrap();
    let model = dir.join("tiny.gguf");
    // `moa generate` of the tiny model at `model` with the compiled folder and `forms` set.
    let with_kernels = |model: &std::path::Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moa"));
        cmd.args([
            "generate",
            "--f32",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ])
        .arg("--model")
        .arg(model)
        .arg("--plan")
        .arg(&plan_path)
        .arg("--kernels")
        .arg(&kernels);
        for (k, v) in forms {
            cmd.env(k, v);
        }
        cmd
    };
    let mut cmd = with_kernels(&model);
    let out = cmd.output().expect("running moa");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MOA_WGSL_V_FIRST=1") && stderr.contains("precompiled"),
        "{stderr}"
    );
    // The refusal comes before the model is read: with a model path that does not exist
    // it is still the forms that are named, not the missing file.
    let absent = dir.join("absent.gguf");
    let mut early = with_kernels(&absent);
    let out = early.output().expect("running moa");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MOA_WGSL_V_FIRST=1")
            && stderr.contains("precompiled")
            && !stderr.contains("absent.gguf"),
        "{stderr}"
    );
    // Without a form asked, the same folder runs.
    cmd.env_remove("MOA_WGSL_V_FIRST");
    let out = cmd.output().expect("running moa");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With `MOA_WGSL_DECODE=coop` running the decode on cooperative matrices the scalar
/// decode's forms have no effect: the load line says they are not applied instead of
/// naming them as the tuning that ran; where the decode stays scalar (coop unavailable,
/// as on lavapipe) they apply and are named as before. The decision is tested directly:
/// lavapipe has no matrix units to run the coop decode.
#[test]
fn decode_forms_are_said_not_to_apply_under_the_coop_decode() {
    use moa::runtime::wgpu_engine::options::lookup_in;
    use moa::runtime::wgpu_engine::WgpuEngineOptions;
    let vars = [
        ("MOA_WGSL_DECODE", "coop"),
        ("MOA_WGSL_FUSED_MERGE", "1"),
        ("MOA_WGSL_V_FIRST", "1"),
    ];
    let o = WgpuEngineOptions::from_lookup(&lookup_in(&vars)).unwrap();
    let coop = o.wgsl_tuning_note(true);
    assert!(
        coop.contains("MOA_WGSL_FUSED_MERGE=1, MOA_WGSL_V_FIRST=1 not applied")
            && coop.contains("MOA_WGSL_DECODE=coop"),
        "{coop}"
    );
    let scalar = o.wgsl_tuning_note(false);
    assert_eq!(
        scalar,
        "; WGSL attention tuning: MOA_WGSL_FUSED_MERGE=1, MOA_WGSL_V_FIRST=1"
    );
    let plain = WgpuEngineOptions::from_lookup(&lookup_in(&[("MOA_WGSL_DECODE", "coop")])).unwrap();
    assert_eq!(plain.wgsl_tuning_note(true), "");
}

/// Subgroup-product settings where those products do not run are named as not applied
/// (round 25: `MOA_WGPU_SG_UNROLL=4` on lavapipe, whose split-K products are off by
/// default, ran without a word; `MOA_WGPU_SG_XFIRST=1` was listed as in use where no K
/// loop at 4 rows a workgroup row was built).
#[test]
fn subgroup_settings_that_do_not_run_are_said_not_applied() {
    use moa::runtime::wgpu_engine::options::lookup_in;
    use moa::runtime::wgpu_engine::WgpuEngineOptions;
    let o = WgpuEngineOptions::from_lookup(&lookup_in(&[
        ("MOA_WGPU_SG_UNROLL", "4"),
        ("MOA_WGPU_SG_ROWS", "auto"),
        ("MOA_WGPU_SG_XFIRST", "1"),
    ]))
    .unwrap();
    assert_eq!(
        o.subgroup_products_asked(),
        ["MOA_WGPU_SG_UNROLL=4", "MOA_WGPU_SG_XFIRST=1"]
    );
    let dir = tiny::tmp("options-sg-not-applied");
    let out = generate(
        &dir,
        &[("MOA_WGPU_SPLIT_K", "0"), ("MOA_WGPU_SG_UNROLL", "4")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "MOA_WGPU_SG_UNROLL=4 not applied (the subgroup products are split-K products, off"
        ),
        "{stderr}"
    );
    // Split-K on at lavapipe's default 16 rows: no K loop at 4 rows, so XFIRST does nothing.
    let out = generate(
        &dir,
        &[
            ("MOA_WGPU_SPLIT_K", "1"),
            ("MOA_WGPU_SG_XFIRST", "1"),
            ("MOA_WGPU_SG_ROWS", "16"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if stderr.contains("matvec_sg.wgsl") {
        assert!(
            stderr.contains("MOA_WGPU_SG_XFIRST=1 not applied")
                && !stderr.contains("x loads with the weights' at 4 rows"),
            "{stderr}"
        );
    }
}
