//! A new user's journey, round 34: the two leftovers of rounds 33 and 32. (1) A plan of
//! 64 query heads over one KV head at head_dim 4, 8 or 16 (a multi-query model shrunk for
//! a test) was refused by `moa-compile --target wgsl`: the decode's sizing halved its tile
//! to one slot but kept its 128 (head_dim 4) slot groups, whose per-head sums alone
//! (`slot_groups × group` f32) passed the 16 KiB of workgroup memory. The slot groups now
//! halve too (`codegen::wgsl::decode_shape`); pinned here: such plans compile from the
//! command line, and their prefill and decode match the CPU reference on lavapipe (N not
//! a multiple of the block, spans shorter than the sink, the ring wrapped: that check is
//! `a_64_head_group_at_small_head_dims_matches_the_reference` in tests/wgpu_kernels.rs,
//! whose llvmpipe compiles without LLVM's passes, 76 → 11 s of CI). (2) `moa model
//! random` had `--untied` but no `--tied` for the bases whose output layer is separate
//! (llama-2-7b, llama-3-8b); `--tied` writes `tie_word_embeddings: true` and no
//! `lm_head.weight`, `moa model info` reads it back, both flags at once are refused, and
//! `--heads` alone over a base whose KV heads do not divide it says to give `--kv-heads`.

mod common;

use std::path::Path;

use common::cli::s;
use common::mqa::{mqa_toml, HEAD_DIMS};

use moa::codegen::wgsl::decode_shape;
use moa::lower::consts::WGSL_WORKGROUP_STORAGE_BYTES;
use moa::StorageType;

common::cli::tagged!();

/// One layer of 64 query heads over 1 KV head at `head_dim` ([`mqa_toml`]).
fn mqa64_toml(head_dim: u32) -> String {
    mqa_toml(64, head_dim)
}

/// Round 34: the sizing finds a shape for every storage type at the small head dims, within
/// the WebGPU default workgroup memory, with no slot group idle in P·V.
#[test]
fn a_64_head_group_at_small_head_dims_has_a_decode_shape() {
    for storage in [StorageType::F16, StorageType::F32] {
        for d in HEAD_DIMS {
            let shape = decode_shape(storage, 64, d)
                .unwrap_or_else(|e| panic!("{storage:?} head_dim {d}: {e}"));
            assert!(
                shape.workgroup_bytes(64, d) <= WGSL_WORKGROUP_STORAGE_BYTES,
                "{storage:?} {d}: {shape:?}"
            );
            assert!(shape.tile >= 1 && shape.tile <= shape.threads, "{shape:?}");
            assert_eq!(shape.threads, d / shape.kv_vec * shape.slot_groups);
        }
    }
    // 256 heads at head_dim 4 go further down the search: 4 slot groups, a 4-slot tile.
    let shape = decode_shape(StorageType::F32, 256, 4).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((shape.slot_groups, shape.tile, shape.threads), (4, 4, 4));
}

/// Round 34: `moa-compile --target wgsl` of each such plan file writes its kernels (it
/// refused them: "allowed 1..=27 query heads per KV head at head_dim 4").
#[test]
fn moa_compile_writes_64_over_1_heads_at_head_dims_4_8_16() {
    let dir = scratch("compile");
    for d in HEAD_DIMS {
        let plan = dir.join(format!("mqa64-d{d}.toml"));
        std::fs::write(&plan, mqa64_toml(d)).unwrap();
        for dtype in ["f16", "f32"] {
            let out = dir.join(format!("out-d{d}-{dtype}"));
            let args = [
                s(&plan),
                "-o",
                s(&out),
                "--target",
                "wgsl",
                "--dtype",
                dtype,
                "-q",
            ];
            let (code, _, err) = run("moa-compile", &args);
            assert_eq!(code, 0, "head_dim {d} {dtype}: {err}");
            assert!(out.join("wgsl/l00_decode.wgsl").is_file(), "{d} {dtype}");
            assert!(out.join("wgsl/l00_prefill.wgsl").is_file(), "{d} {dtype}");
        }
    }
}

/// `moa model random -o out` with `flags`, which must succeed.
fn random(out: &Path, flags: &[&str]) {
    let args = [&["model", "random", "-o", s(out), "--seed", "3"][..], flags].concat();
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

/// A small llama-3-8b-like shape (the base is untied): 1 layer, hidden 64, 4 query / 2 KV
/// heads, FFN 32, vocabulary 300, f32.
const SMALL_LLAMA3: &[&str] = &[
    "--like",
    "llama-3-8b",
    "--layers",
    "1",
    "--hidden",
    "64",
    "--heads",
    "4",
    "--kv-heads",
    "2",
    "--intermediate",
    "32",
    "--vocab",
    "300",
    "--dtype",
    "f32",
];

/// Round 34: `--tied` over an untied base writes no `lm_head.weight` and
/// `tie_word_embeddings: true`, `moa model info` reads it back, and it generates; the same
/// shape without the flag keeps the base's separate output layer.
#[test]
fn tied_over_an_untied_base_loads_back_tied() {
    let dir = scratch("tied");
    for (name, extra, tied) in [("tied", Some("--tied"), true), ("base", None, false)] {
        let model = dir.join(name);
        let flags = [SMALL_LLAMA3, extra.as_slice()].concat();
        random(&model, &flags);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["tie_word_embeddings"], tied, "{name}");
        let header = {
            let bytes = std::fs::read(model.join("model.safetensors")).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            String::from_utf8(bytes[8..8 + n].to_vec()).unwrap()
        };
        assert_eq!(
            header.contains("\"lm_head.weight\""),
            !tied,
            "{name}: {header}"
        );
        let (code, info, err) = run("moa", &["model", "info", s(&model)]);
        assert_eq!(code, 0, "{err}");
        // 1 layer of 9, the embedding, the final norm, and lm_head where untied.
        let tensors = if tied { "F32 x 11" } else { "F32 x 12" };
        for (key, want) in [
            ("tied_embedding", if tied { "true" } else { "false" }),
            ("q_heads", "4"),
            ("kv_heads", "2"),
            ("head_dim", "16"),
            ("tensor_types", tensors),
        ] {
            assert_eq!(info_value(&info, key), want, "{name} {key} in:\n{info}");
        }
    }
    let (code, _, err) = run(
        "moa",
        &[
            "generate",
            "--model",
            s(&dir.join("tied")),
            "--dense",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "2",
            "--ignore-eos",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Round 34: `--tied` with `--untied` is refused by name before any file is made, and
/// `--heads` alone keeps the base's KV heads, refused with the divisors and "give
/// --kv-heads" where they do not divide it.
#[test]
fn tied_with_untied_and_heads_alone_are_refused_by_flag() {
    let dir = scratch("refused");
    let out = dir.join("m");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--like", "llama-2-7b", "--tied", "--untied"],
            &["--tied", "--untied", "cannot be used with"],
        ),
        (
            &["--like", "llama-3-8b", "--heads", "12"],
            &[
                "--kv-heads 8 (--like llama-3-8b's) does not divide --heads 12 \
                 (divisors: 1, 2, 3, 4, 6, 12)",
                "give --kv-heads",
            ],
        ),
    ];
    for (flags, needles) in cases {
        let args = [&["model", "random", "-o", s(&out)][..], flags].concat();
        let err = refused("moa", &args, needles);
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    // `--heads` alone where the base's KV heads divide it: kept (llama-3-8b's 8 of 16).
    let kept = dir.join("kept");
    random(
        &kept,
        &[
            "--like",
            "llama-3-8b",
            "--layers",
            "1",
            "--hidden",
            "256",
            "--heads",
            "16",
            "--intermediate",
            "32",
            "--vocab",
            "300",
            "--dtype",
            "f32",
        ],
    );
    let (code, info, err) = run("moa", &["model", "info", s(&kept)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(info_value(&info, "kv_heads"), "8", "{info}");
    assert_eq!(info_value(&info, "q_heads"), "16", "{info}");
}
