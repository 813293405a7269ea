//! The CUDA-only commands on a machine without the CUDA driver (CI, a laptop):
//! `generate` and `eval` with `--backend cuda`, and `bench`, each say what is missing, the
//! driver, before any long work, with no panic. `generate` and `eval` used to load every
//! weight first (minutes and tens of GB for an 8B model) and only then say there is no
//! driver (the engine's message, without the flag); the check before the load names
//! `--backend cuda` and the way out. Skipped where the driver is present. Under a second.

mod common;

use std::process::{Command, Output};

use common::tiny::{tiny, tmp};

fn moa(args: &[&str]) -> (Output, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let o = c.args(args).output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o, t)
}

#[test]
fn cuda_commands_without_a_driver_say_so_before_any_load() {
    if moa::runtime::cuda::ops::driver_present().is_ok() {
        eprintln!("the CUDA driver is present: skipped");
        return;
    }
    let dir = tmp("no-cuda");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |_, _| {});
    let m = model.to_str().unwrap();
    let t0 = std::time::Instant::now();
    let (o, t) = moa(&[
        "generate",
        "--dense",
        "--backend",
        "cuda",
        "--model",
        m,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "1",
    ]);
    assert!(!o.status.success(), "{t}");
    for want in ["--backend cuda", "libcuda", "--backend wgpu"] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");
    // eval --backend cuda: the same check before its load (a model long enough for one
    // retrieval length, so the run gets that far).
    let long = dir.join("long.gguf");
    tiny(5, true).write_gguf(&long, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = candle_core::quantized::gguf_file::Value::U32(2048);
            }
        }
    });
    let (o, t) = moa(&[
        "eval",
        "--backend",
        "cuda",
        "--model",
        long.to_str().unwrap(),
        "--lengths",
        "1024",
        "--ppl-rows",
        "0",
        "--quiet",
    ]);
    assert!(!o.status.success(), "{t}");
    for want in ["--backend cuda", "libcuda", "--backend wgpu"] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
    let (o, t) = moa(&["bench", "--model", m, "--prompt", "16", "--new", "4"]);
    assert!(!o.status.success() && t.contains("libcuda"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t0.elapsed().as_secs() < 10, "{:?}", t0.elapsed());
}
