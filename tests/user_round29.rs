//! A new user's journey, round 29: round 28's leftovers (benches/RESULTS.md), each pinned
//! here. The models are tiny random ones (`moa::model::random`, what `moa model random`
//! writes, of a shape small enough to run in a second on lavapipe); none needs the fetched
//! model or a GPU.

mod common;

use std::path::{Path, PathBuf};

use common::cli::s;

common::cli::tagged!();

/// A tiny random Llama folder (`moa model random`'s generator and files: bf16 weights,
/// config.json and a byte-level tokenizer) at `dir`.
fn tiny_model(dir: &Path) -> PathBuf {
    use moa::model::random;
    let config = moa::model::LlamaConfig {
        name: None,
        n_layers: 2,
        hidden_size: 64,
        ffn_size: 96,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab_size: 300,
        context_length: 256,
        rope_scaling: None,
        ..random::like("smollm2-135m").unwrap()
    };
    random::write_hf_folder(&random::random_model(&config, 7), dir).unwrap();
    dir.to_path_buf()
}

/// Round 28: with both `--prompt` and `--prompt-file`, every `--prompt` row came before
/// every `--prompt-file` row, whatever the order given. Rows follow the command line now,
/// interleavings included: `--print-ids` shows each row's prompt ids, and with `--raw`
/// and the byte-level tokenizer they are the text's bytes.
#[test]
fn generate_rows_follow_the_command_line_order_of_prompts_and_files() {
    let dir = scratch("order");
    let model = tiny_model(&dir.join("m"));
    let (a, c) = (dir.join("a.txt"), dir.join("c.txt"));
    std::fs::write(&a, "aa\n").unwrap();
    std::fs::write(&c, "ccc").unwrap();
    let (code, out, err) = run(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--raw",
            "--print-ids",
            "--max-new-tokens",
            "1",
            "--prompt-file",
            s(&a),
            "--prompt",
            "b",
            "--prompt-file",
            s(&c),
            "--prompt=dddd",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let tokenizer = moa::model::ModelTokenizer::load(&model).unwrap();
    for (row, text) in ["aa", "b", "ccc", "dddd"].iter().enumerate() {
        let ids = tokenizer.encode(text).unwrap();
        let want = format!("ids[{row}] prompt {ids:?}");
        assert!(err.lines().any(|l| l == want), "`{want}` not in:\n{err}");
    }
    assert_eq!(out.lines().filter(|l| l.starts_with("--- [")).count(), 4);
    // The checks before the load go in the same order: the first empty prompt given is
    // the one named.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let args = [
        "generate",
        "--model",
        s(&model),
        "--dense",
        "--prompt-file",
        s(&empty),
    ];
    let err = refused(
        "moa",
        &[&args[..], &["--prompt", ""]].concat(),
        &[&format!("--prompt-file `{}` is empty", s(&empty))],
    );
    assert!(!err.contains("--prompt #1"), "{err}");
    let help = run("moa", &["generate", "--help"]).1;
    assert!(help.contains("rows follow the order given"), "{help}");
}

/// Round 28: `moa model info` of a folder whose model.safetensors is cut short printed
/// "unreadable" on the `tensor_types` line and exited 0, where a broken GGUF exits 2. It
/// exits 2 now, naming the file and what is wrong (the folder's config lines are still
/// printed); a whole folder exits 0.
#[test]
fn model_info_of_a_broken_safetensors_exits_2_as_a_broken_gguf_does() {
    let dir = scratch("info-broken");
    let model = tiny_model(&dir.join("m"));
    let (code, out, err) = run("moa", &["model", "info", s(&model)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tensor_types     BF16 x "), "{out}");

    let weights = model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let (code, out, err) = run("moa", &["model", "info", s(&model)]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("`{}`", weights.display())) && err.contains("truncated"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.contains("layers           2"), "{out}");

    std::fs::write(&weights, b"not safetensors").unwrap();
    refused(
        "moa",
        &["model", "info", s(&model)],
        &[&format!("`{}`", weights.display())],
    );

    let gguf = dir.join("broken.gguf");
    std::fs::write(&gguf, b"GGUF").unwrap();
    refused("moa", &["model", "info", s(&gguf)], &[s(&gguf)]);
}
