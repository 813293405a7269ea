//! A new user's journey, round 29: round 28's leftovers (benches/RESULTS.md), each pinned
//! here. The models are tiny random ones (`moa::model::random`, what `moa model random`
//! writes, of a shape small enough to run in a second on lavapipe); none needs the fetched
//! model or a GPU.

mod common;

use common::cli::{s, tiny_model};

common::cli::tagged!();

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

/// Round 28: a config.json refused for a value named moa's own field (`n_layers` is 0),
/// not the key the user wrote (`num_hidden_layers`); a GGUF file's refusals named the same
/// fields. Each names its file's key now, with the allowed range; layers and query heads
/// past what a plan takes (1..=1024) are refused at the config too (`num_hidden_layers` =
/// 10^8 ran `moa model info` out of memory).
#[test]
fn config_errors_name_the_key_of_the_file_they_come_from() {
    use candle_core::quantized::gguf_file::Value;
    let dir = scratch("config-keys");
    let model = tiny_model(&dir.join("m"));
    let config = model.join("config.json");
    let original = std::fs::read_to_string(&config).unwrap();
    let cases: [(&str, serde_json::Value, &[&str]); 5] = [
        (
            "num_hidden_layers",
            0.into(),
            &["`num_hidden_layers` = 0 is out of range: allowed 1..=1024"],
        ),
        (
            "num_hidden_layers",
            100_000_000.into(),
            &["`num_hidden_layers` = 100000000 is out of range: allowed 1..=1024"],
        ),
        (
            "num_key_value_heads",
            3.into(),
            &["`num_key_value_heads` = 3 does not divide `num_attention_heads` = 4"],
        ),
        (
            "max_position_embeddings",
            0.into(),
            &["`max_position_embeddings` is 0: allowed 1 or more"],
        ),
        (
            "intermediate_size",
            0.into(),
            &["`intermediate_size` is 0: allowed 1 or more"],
        ),
    ];
    for (key, value, needles) in cases {
        let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
        json[key] = value;
        std::fs::write(&config, json.to_string()).unwrap();
        let err = refused(
            "moa",
            &["model", "info", s(&model)],
            &[&[&format!("`{}`", config.display())[..]], needles].concat(),
        );
        for field in [
            "n_layers",
            "kv_heads",
            "q_heads",
            "context_length",
            "ffn_size",
        ] {
            assert!(!err.contains(&format!("`{field}`")), "{err}");
        }
    }

    let cases: [(&str, u32, &str); 3] = [
        (
            "llama.block_count",
            0,
            "`llama.block_count` = 0 is out of range: allowed 1..=1024",
        ),
        (
            "llama.attention.head_count_kv",
            3,
            "`llama.attention.head_count_kv` = 3 does not divide `llama.attention.head_count` = 4",
        ),
        (
            "llama.context_length",
            0,
            "`llama.context_length` is 0: allowed 1 or more",
        ),
    ];
    for (key, value, needle) in cases {
        let gguf = dir.join("m.gguf");
        common::tiny::tiny(5, true).write_gguf(&gguf, |md, _| {
            for (k, v) in md.iter_mut() {
                if k == key {
                    *v = Value::U32(value);
                }
            }
        });
        refused("moa", &["model", "info", s(&gguf)], &[s(&gguf), needle]);
    }
}

/// Round 28: counts of one with a plural noun ("decode: 1 steps x 1 rows", "1 tensors").
/// `moa generate`'s summary and `moa plan show`'s model line say "1 step x 1 row",
/// "1 layer, 1 query head, 1 KV head" now; other counts keep their plurals.
#[test]
fn a_count_of_one_takes_a_singular_noun() {
    let dir = scratch("plural");
    let model = tiny_model(&dir.join("m"));
    // `moa generate`'s summary (standard error) for `new` tokens of each prompt.
    let summary = |new: &str, prompts: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--raw",
            "--ignore-eos",
            "--max-new-tokens",
            new,
        ];
        for p in prompts {
            args.extend(["--prompt", p]);
        }
        let (code, _, err) = run("moa", &args);
        assert_eq!(code, 0, "{err}");
        err
    };
    let err = summary("2", &["a"]);
    assert!(
        err.contains("prefill: 1 token in ") && err.contains("decode: 1 step x 1 row in "),
        "{err}"
    );
    let err = summary("3", &["ab", "c"]);
    assert!(
        err.contains("prefill: 3 tokens in ") && err.contains("decode: 2 steps x 2 rows in "),
        "{err}"
    );

    let plan = dir.join("one.toml");
    std::fs::write(
        &plan,
        common::cli::fixture_gqa()
            .replace("layers = 3", "layers = 1")
            .replace("q_heads = 8", "q_heads = 1")
            .replace("kv_heads = 2", "kv_heads = 1")
            .split("[[layers]]")
            .next()
            .unwrap()
            .to_string()
            + "[[layers]]\nalpha = [64]\nbeta = [0.5]\n",
    )
    .unwrap();
    let (code, out, err) = run("moa", &["plan", "show", s(&plan), "--prompt-len", "100"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(": 1 layer, 1 query head, 1 KV head, head_dim 64"),
        "{out}"
    );
}
