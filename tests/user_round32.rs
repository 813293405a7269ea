//! A new user's journey, round 32: `moa model random` wrote only its five known shapes, so
//! a user who wanted their own odd one (round 31: head_dim ≠ hidden / heads, f16, untied,
//! a vocabulary past the tokenizer's) hand-wrote safetensors. `--like` is the base now and
//! `--layers --hidden --heads --kv-heads --head-dim --intermediate --vocab --context
//! --dtype --untied` change it; pinned here: what is written loads back as written and
//! generates on the CPU adapter, each bad value is refused by its flag before any file is
//! made, and a seed writes the same bytes. None needs the fetched model or a GPU.

mod common;

use std::path::Path;

use common::cli::s;

common::cli::tagged!();

/// The odd shape's flags: 2 layers, hidden 96, 6 query / 2 KV heads of 32 (not 96 / 6),
/// ffn 160, vocabulary 300, a 512-token context, f16, an output layer of its own.
const ODD: &[&str] = &[
    "--like",
    "smollm2-135m",
    "--layers",
    "2",
    "--hidden",
    "96",
    "--heads",
    "6",
    "--kv-heads",
    "2",
    "--head-dim",
    "32",
    "--intermediate",
    "160",
    "--vocab",
    "300",
    "--context",
    "512",
    "--dtype",
    "f16",
    "--untied",
];

/// `moa model random -o out` with `flags` and `--seed seed`, which must succeed.
fn random(out: &Path, flags: &[&str], seed: &str) {
    let args = [
        &["model", "random", "-o", s(out), "--seed", seed][..],
        flags,
    ]
    .concat();
    let (code, stdout, err) = run("moa", &args);
    assert_eq!(code, 0, "moa {args:?}:\n{err}");
    assert_eq!(stdout.trim(), s(out));
}

/// `moa model info`'s value of `key` (its lines are `key   value`).
fn info_value<'a>(info: &'a str, key: &str) -> &'a str {
    info.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no `{key}` in:\n{info}"))
}

/// Round 32: an odd shape is written as asked (f16 tensors, `lm_head.weight`, `head_dim`
/// 32 with hidden 96 and 6 heads), `moa model info` reads those numbers back, and `moa
/// generate` runs it on the CPU adapter.
#[test]
fn an_odd_shape_loads_back_as_written_and_generates() {
    let dir = scratch("odd");
    let model = dir.join("m");
    random(&model, ODD, "5");
    let (code, info, err) = run("moa", &["model", "info", s(&model)]);
    assert_eq!(code, 0, "{err}");
    for (key, want) in [
        ("layers", "2"),
        ("hidden", "96"),
        ("ffn", "160"),
        ("q_heads", "6"),
        ("kv_heads", "2"),
        ("head_dim", "32"),
        ("vocab", "300"),
        ("tied_embedding", "false"),
        ("context_length", "512"),
        ("tokenizer", "259 tokens"),
        // 2 layers of 9, the embedding, the final norm and lm_head.
        ("tensor_types", "F16 x 21"),
    ] {
        assert_eq!(info_value(&info, key), want, "{key} in:\n{info}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["torch_dtype"], "float16");
    assert_eq!(config["tie_word_embeddings"], false);
    let header = {
        let bytes = std::fs::read(model.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        String::from_utf8(bytes[8..8 + n].to_vec()).unwrap()
    };
    assert!(header.contains("\"lm_head.weight\""), "{header}");
    let (code, out, err) = run(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--prompt",
            "hello",
            "--max-new-tokens",
            "4",
            "--ignore-eos",
            "--print-ids",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let generated = err
        .lines()
        .find_map(|l| l.strip_prefix("ids[0] generated "))
        .unwrap_or_else(|| panic!("no generated ids in:\n{err}"));
    assert_eq!(generated.split(", ").count(), 4, "{generated}");
    assert!(!out.contains("panicked"), "{out}");
}

/// Round 32: the base's own values stay where no flag changes them: smollm2-135m's tied
/// embedding and head_dim 64, llama-2-7b's separate output layer; hidden and heads
/// without `--head-dim` give hidden / heads, as transformers reads a config without one.
#[test]
fn unchanged_values_are_the_base_shapes() {
    let dir = scratch("base");
    let small = dir.join("small");
    random(
        &small,
        &["--like", "smollm2-135m", "--layers", "1", "--vocab", "259"],
        "0",
    );
    let (code, info, err) = run("moa", &["model", "info", s(&small)]);
    assert_eq!(code, 0, "{err}");
    for (key, want) in [
        ("layers", "1"),
        ("hidden", "576"),
        ("q_heads", "9"),
        ("kv_heads", "3"),
        ("head_dim", "64"),
        ("tied_embedding", "true"),
        ("context_length", "8192"),
        ("tensor_types", "BF16 x 11"),
    ] {
        assert_eq!(info_value(&info, key), want, "{key} in:\n{info}");
    }
    let mha = dir.join("mha");
    random(
        &mha,
        &[
            "--like",
            "llama-2-7b",
            "--layers",
            "1",
            "--hidden",
            "64",
            "--heads",
            "4",
            "--kv-heads",
            "4",
            "--intermediate",
            "32",
            "--vocab",
            "300",
            "--dtype",
            "f32",
        ],
        "0",
    );
    let (code, info, err) = run("moa", &["model", "info", s(&mha)]);
    assert_eq!(code, 0, "{err}");
    for (key, want) in [
        ("head_dim", "16"),
        ("tied_embedding", "false"),
        ("context_length", "16384"),
        ("tensor_types", "F32 x 12"),
    ] {
        assert_eq!(info_value(&info, key), want, "{key} in:\n{info}");
    }
}

/// Round 32: each bad value is refused with its flag, the value and what is allowed,
/// before any file is made (no `-o` folder, no partial or probe folder beside it).
#[test]
fn bad_shapes_are_refused_by_flag_before_any_file() {
    let dir = scratch("refused");
    let out = dir.join("m");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--heads", "9", "--kv-heads", "4"],
            &["--kv-heads 4 does not divide --heads 9 (divisors: 1, 3, 9)"],
        ),
        (
            &["--heads", "8"],
            &[
                "--kv-heads 3 (--like smollm2-135m's) does not divide --heads 8 (divisors: 1, 2, 4, 8)",
                "give --kv-heads",
            ],
        ),
        (
            &["--head-dim", "30"],
            &["--head-dim 30 is not a multiple of 4", "4..=256"],
        ),
        (
            &["--head-dim", "31"],
            &["--head-dim 31 is odd: RoPE rotates pairs"],
        ),
        (
            &["--head-dim", "512"],
            &["--head-dim 512 is out of range", "4..=256"],
        ),
        (
            &["--hidden", "100", "--heads", "6", "--kv-heads", "2"],
            &["--hidden 100 is not a multiple of --heads 6", "give --head-dim"],
        ),
        (
            &["--hidden", "4096", "--heads", "8", "--kv-heads", "1"],
            &["the head size 512", "give --head-dim", "4..=256"],
        ),
        (&["--layers", "0"], &["--layers 0 is out of range: allowed 1..=1024"]),
        (
            &["--layers", "1025"],
            &["--layers 1025 is out of range: allowed 1..=1024"],
        ),
        (&["--heads", "0"], &["--heads 0 is out of range: allowed 1..=1024"]),
        (
            &["--kv-heads", "0"],
            &["--kv-heads 0 is out of range: allowed 1..=1024"],
        ),
        (&["--hidden", "0"], &["--hidden 0 is out of range: allowed 1 or more"]),
        (
            &["--intermediate", "0"],
            &["--intermediate 0 is out of range: allowed 1 or more"],
        ),
        (
            &["--context", "0"],
            &["--context 0 is out of range: allowed 1..=1073741824"],
        ),
        (
            &["--vocab", "258"],
            &["--vocab 258 is below 259", "allowed 259 or more"],
        ),
        (
            &[
                "--hidden",
                "4294967296",
                "--head-dim",
                "64",
                "--vocab",
                "4294967296",
            ],
            &["--hidden 4294967296", "overflows a 64-bit number"],
        ),
        (
            &[
                "--hidden",
                "18446744073709551615",
                "--intermediate",
                "18446744073709551615",
                "--head-dim",
                "64",
            ],
            &["overflows a 64-bit number"],
        ),
        (
            &["--hidden", "1048576", "--intermediate", "1048576", "--head-dim", "64"],
            &["parameters, over moa model random's limit of 1099511627776"],
        ),
        (
            &["--dtype", "q4"],
            &["'q4'", "--dtype", "bf16", "f16", "f32"],
        ),
        (&["--like", "gpt-2"], &["unknown model shape `gpt-2`"]),
    ];
    for (flags, needles) in cases {
        let like: &[&str] = if flags.contains(&"--like") {
            &[]
        } else {
            &["--like", "smollm2-135m"]
        };
        let args = [&["model", "random", "-o", s(&out)][..], like, flags].concat();
        let err = refused("moa", &args, needles);
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

/// Round 32: the same seed and flags write the same bytes; another seed other weights.
#[test]
fn a_seed_writes_the_same_bytes() {
    let dir = scratch("seed");
    let files = |m: &Path| {
        ["config.json", "model.safetensors", "tokenizer.json"]
            .map(|f| std::fs::read(m.join(f)).unwrap())
    };
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    random(&a, ODD, "11");
    random(&b, ODD, "11");
    random(&c, ODD, "12");
    assert!(
        files(&a) == files(&b),
        "seed 11 wrote two different folders"
    );
    let (fa, fc) = (files(&a), files(&c));
    assert_eq!(fa[0], fc[0]);
    assert_ne!(fa[1], fc[1], "seeds 11 and 12 wrote the same weights");
}
