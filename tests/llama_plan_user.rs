//! A user with the upstream Llama-3.2-1B-Instruct plan (the repository's copy under
//! `tests/fixtures/upstream-plans/`): `moa plan import` with the model's shape, then
//! `moa-compile` of every kernel for both targets; and the same plan against a model of
//! another shape, which must be refused naming the plan file, the model file and the
//! field that differs (import with `--model`, and `generate`). CPU only, ~2 s.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tiny::{tiny, tmp};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn upstream() -> PathBuf {
    root()
        .join("tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json")
}

fn run(bin: &str, args: &[&str]) -> Output {
    let mut c = Command::new(bin);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c.args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn the_upstream_llama_3_2_1b_plan_imports_and_compiles() {
    let dir = tmp("llama-1b-plan");
    let plan = dir.join("llama-3.2-1b-moa.toml");
    let (up, p) = (upstream(), plan.to_str().unwrap().to_string());
    let moa = env!("CARGO_BIN_EXE_moa");
    // Llama-3.2-1B: 16 layers, 32 query heads, 8 KV heads of 64, context 131072.
    let o = run(
        moa,
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--layers",
            "16",
            "--heads",
            "32",
            "--kv-heads",
            "8",
            "--head-dim",
            "64",
            "--max-context",
            "131072",
            "-o",
            &p,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.join("kernels");
    let o = run(
        env!("CARGO_BIN_EXE_moa-compile"),
        &[&p, "-o", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("16 layers"), "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["model"]["layers"], 16);
    assert_eq!(m["model"]["q_heads"], 32);
    assert_eq!(m["model"]["kv_heads"], 8);
    assert_eq!(m["span"]["mode"], "upstream");
    // --check agrees with what was written.
    let o = run(
        env!("CARGO_BIN_EXE_moa-compile"),
        &[&p, "-o", out.to_str().unwrap(), "--check"],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_plan_of_another_shape_is_refused_naming_both_files_and_the_field() {
    let dir = tmp("llama-1b-mismatch");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |_, _| {});
    let (up, m) = (upstream(), model.to_str().unwrap().to_string());
    let moa = env!("CARGO_BIN_EXE_moa");
    let plan = dir.join("p.toml");
    let p = plan.to_str().unwrap().to_string();

    // Import against the tiny model (2 layers): both files, the field and both numbers.
    let o = run(
        moa,
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--model",
            &m,
            "-o",
            &p,
        ],
    );
    let t = text(&o);
    assert!(!o.status.success() && !plan.exists(), "{t}");
    for want in [
        up.to_str().unwrap(),
        m.as_str(),
        "alphas",
        "16 layers",
        "model.layers",
        "has 2",
    ] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");

    // The imported plan run on the tiny model: generate refuses before any GPU work.
    let o = run(
        moa,
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--layers",
            "16",
            "--heads",
            "32",
            "--kv-heads",
            "8",
            "--head-dim",
            "64",
            "--max-context",
            "4096",
            "-o",
            &p,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        moa,
        &[
            "generate",
            "--plan",
            &p,
            "--model",
            &m,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for want in [p.as_str(), m.as_str(), "model.layers", "16"] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");
}

/// A model whose RoPE scaling moa's engine does not implement (YaRN) still has a shape:
/// `plan import --model` needs only the shape, and the kernels take Q and K after RoPE,
/// so it writes the plan with a note, while `generate` refuses the model, naming why.
/// (Llama 3.1+ and 3.2's `llama3` scaling, GGUF's `rope_freqs` tensor, is implemented
/// since session 18: tests/gguf_files.rs.)
#[test]
fn a_plan_imports_for_a_model_whose_rope_scaling_is_not_implemented_with_a_note() {
    use common::tiny::{LAYERS, Q_HEADS};
    let dir = tmp("yarn-rope");
    let model = dir.join("yarn-rope.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        md.push((
            "llama.rope.scaling.type".into(),
            candle_core::quantized::gguf_file::Value::String("yarn".into()),
        ));
    });
    let json = dir.join("moa_alpha_beta.json");
    let row = |v: f64| vec![vec![v; Q_HEADS]; LAYERS];
    std::fs::write(
        &json,
        serde_json::json!({"alphas": row(64.0), "betas": row(0.25)}).to_string(),
    )
    .unwrap();
    let plan = dir.join("p.toml");
    let (j, m, p) = (
        json.to_str().unwrap(),
        model.to_str().unwrap(),
        plan.to_str().unwrap(),
    );
    let moa = env!("CARGO_BIN_EXE_moa");
    let o = run(moa, &["plan", "import", j, "--model", m, "-o", p]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("note") && t.contains("`yarn`"), "{t}");
    let written = moa::Plan::load(&plan).unwrap();
    assert_eq!(written.model().layers as usize, LAYERS);
    assert_eq!(written.model().q_heads as usize, Q_HEADS);
    assert_eq!(written.model().max_context_tokens, 128);
    // moa's own engine still refuses it.
    let o = run(
        moa,
        &[
            "generate",
            "--plan",
            p,
            "--model",
            m,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success() && t.contains("`yarn`"), "{t}");

    // A Hugging Face folder whose `rope_scaling` moa does not implement (YaRN).
    let folder = dir.join("hf");
    std::fs::create_dir_all(&folder).unwrap();
    tiny(5, true).write_hf(&folder, candle_core::DType::F32, true);
    let config = folder.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": 8192});
    std::fs::write(&config, c.to_string()).unwrap();
    let f = folder.to_str().unwrap();
    std::fs::remove_file(&plan).unwrap();
    let o = run(moa, &["plan", "import", j, "--model", f, "-o", p]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("rope_scaling"), "{t}");
    assert_eq!(
        moa::Plan::load(&plan).unwrap().model().layers as usize,
        LAYERS
    );
}
