//! A new user's journey, round 18 (benches/RESULTS.md): every documented command as
//! written, bad input to every subcommand, interrupted runs; what was found wrong, each
//! pinned here. None of these needs a GPU, the fetched model or anything outside the
//! repository.

mod common;

use common::cli::{fixture_gqa, s};
use std::path::{Path, PathBuf};

common::cli::tagged!();

/// `DIR/calib.jsonl` with one 64-token sample `s0` (for 256-token profiles).
fn one_sample_calibration(dir: &std::path::Path) -> PathBuf {
    let calib = dir.join("calib.jsonl");
    let tokens: Vec<u32> = (0..64).map(|i| 100 + i % 50).collect();
    moa::calib::write_jsonl(&calib, &[common::samples::sample("s0", tokens, 4, 256)]).unwrap();
    calib
}

/// `fixture_gqa()` with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    let text = fixture_gqa();
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` once in the fixture"
    );
    text.replacen(from, to, 1)
}

/// Plans that serde refused in its own words (no field, or no range, or a line of the file
/// instead of the value) now name the file, the field and what is allowed, in every
/// command that reads a plan: moa-compile, `moa plan show` and `moa plan export` here
/// (one loader, `Plan::from_toml_str`, serves the others).
#[test]
fn plan_errors_name_the_field_and_the_allowed_range() {
    let dir = scratch("plan-errors");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        // 2^64: "invalid type: integer `18446744073709551616` as i128, expected a number".
        (
            "big-sink",
            edited("sink_tokens = 16", "sink_tokens = 18446744073709551616"),
            vec![
                "`span.sink_tokens` = 18446744073709551616 is out of range: allowed 0..=1024",
            ],
        ),
        (
            "big-layers",
            edited("layers = 3", "layers = 18446744073709551616"),
            vec!["`model.layers` = 18446744073709551616 is out of range: allowed 1..=1024"],
        ),
        (
            "big-alpha",
            edited(
                "alpha = [0, 0, 0, 0, 0, 0, 0, 0]",
                "alpha = [0, 0, 0, 0, 0, 0, 0, -18446744073709551616]",
            ),
            vec!["`layers[1].alpha[7]` = -18446744073709551616 is not allowed: alpha must be a whole number of tokens with |alpha| < 16777216"],
        ),
        // 0 bytes: "missing field `format_version`" at line 1, column 1.
        ("empty", String::new(), vec!["is empty (0 bytes)", "format_version = 1", "[model]"]),
        ("blank", "\n\n  \n".into(), vec!["is empty (5 bytes, blank)"]),
        // "missing field `head_dim`" at the `[model]` line, no range.
        (
            "no-head-dim",
            edited("head_dim = 64\n", ""),
            vec!["`model.head_dim` is missing: allowed 4..=256"],
        ),
        (
            "no-context",
            edited("max_context_tokens = 1024\n", ""),
            vec!["`model.max_context_tokens` is missing: allowed 1..=1073741824"],
        ),
        (
            "no-version",
            edited("format_version = 1\n", ""),
            vec!["`format_version` is missing: this moa reads format_version = 1"],
        ),
        (
            "no-model",
            fixture_gqa()
                .lines()
                .filter(|l| {
                    !(l.starts_with("[model]")
                        || ["name", "layers ", "q_heads", "kv_heads", "head_dim", "max_context"]
                            .iter()
                            .any(|k| l.starts_with(k)))
                })
                .collect::<Vec<_>>()
                .join("\n"),
            vec!["`model` is missing: the plan needs a [model] table with layers, q_heads"],
        ),
        // "missing field `beta`" at the first `[[layers]]` line, whichever layer lacked it.
        (
            "no-beta",
            edited("beta = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n", ""),
            vec!["`layers[1].beta` is missing", "fractions of N in [0, 1]", "model.q_heads = 8"],
        ),
        // "wanted string or table".
        (
            "mode-int",
            edited("mode = \"moa\"", "mode = 3"),
            vec!["`span.mode` = 3 is not a span mode: allowed \"moa\"", "or \"upstream\""],
        ),
        (
            "mode-word",
            edited("mode = \"moa\"", "mode = \"sparse\""),
            vec!["`span.mode` = \"sparse\" is not a span mode"],
        ),
    ];
    for (name, text, needles) in cases {
        let plan = dir.join(format!("{name}.toml"));
        std::fs::write(&plan, text).unwrap();
        let out = dir.join(format!("out-{name}"));
        let mut all = needles.clone();
        all.push(s(&plan));
        let err = refused("moa-compile", &[s(&plan), "-o", s(&out)], &all);
        assert!(!out.exists(), "{name}: nothing written:\n{err}");
        refused(
            "moa",
            &["plan", "show", s(&plan), "--prompt-len", "100"],
            &all,
        );
        refused("moa", &["plan", "export", s(&plan)], &all);
    }
    // What still reads as before: a mode given as a word it knows, and no [span] at all.
    let upstream = dir.join("upstream.toml");
    std::fs::write(&upstream, edited("mode = \"moa\"", "mode = \"upstream\"")).unwrap();
    let (code, out, err) = run(
        "moa",
        &["plan", "show", s(&upstream), "--prompt-len", "100"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("span mode upstream"), "{out}");
}

/// A plan or upstream JSON saved by a Windows tool: with a UTF-8 byte-order mark the JSON
/// was refused "expected value at line 1 column 1" (the TOML read); as UTF-16 (Windows
/// PowerShell's `>`) both said "is not UTF-8 text (invalid byte at offset 0)".
#[test]
fn byte_order_marks_are_read_or_named() {
    let dir = scratch("bom");
    let up = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json");
    let json = std::fs::read(&up).unwrap();
    let with_bom = dir.join("bom.json");
    std::fs::write(&with_bom, [&[0xEF, 0xBB, 0xBF][..], &json].concat()).unwrap();
    let plan = dir.join("plan.toml");
    let args = |input: &Path| {
        vec![
            "plan".to_string(),
            "import".into(),
            s(input).into(),
            "--layers".into(),
            "32".into(),
            "--heads".into(),
            "32".into(),
            "--kv-heads".into(),
            "32".into(),
            "--head-dim".into(),
            "128".into(),
            "-o".into(),
            s(&plan).into(),
        ]
    };
    let a = args(&with_bom);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, _, err) = run("moa", &a);
    assert_eq!(code, 0, "{err}");
    assert!(plan.is_file());
    // The same plan as from the file without the mark.
    let plain = dir.join("plain.toml");
    let b = args(&up);
    let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
    *b.last_mut().unwrap() = s(&plain);
    let (code, _, err) = run("moa", &b);
    assert_eq!(code, 0, "{err}");
    // The same plan but for the file name in meta.provenance.
    let body = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("provenance"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(body(&plan) == body(&plain), "the mark changed the plan");

    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(fixture_gqa().encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let p16 = dir.join("utf16.toml");
    std::fs::write(&p16, &utf16).unwrap();
    refused(
        "moa-compile",
        &[s(&p16), "-o", s(&dir.join("out"))],
        &[
            s(&p16),
            "is UTF-16 text",
            "a plan must be UTF-8",
            "iconv -f UTF-16 -t UTF-8",
        ],
    );
}

/// `moa profile --under-plan` read the plan only after the model had loaded: a typo in it,
/// or a plan of another shape, was reported 2 s later for SmolLM2, and after building a
/// whole random Llama-2-7B (25 GB of f32) for `--like llama-2-7b`. Both are refused before
/// any weight: the shape from the config (here the `--like` table), so this test needs
/// neither the memory nor the time.
#[test]
fn profile_under_plan_is_checked_before_the_model_loads() {
    let dir = scratch("under-plan");
    let calib = dir.join("calib.jsonl");
    let tokens: Vec<u32> = (0..200).map(|i| 100 + i % 50).collect();
    moa::calib::write_jsonl(&calib, &[common::samples::sample("s0", tokens, 5, 256)]).unwrap();
    let plan = dir.join("gqa.toml");
    std::fs::write(&plan, fixture_gqa()).unwrap();
    let out = dir.join("prof");
    let start = std::time::Instant::now();
    refused(
        "moa",
        &[
            "profile",
            "--calib",
            s(&calib),
            "--lengths",
            "256",
            "--like",
            "llama-2-7b",
            "--under-plan",
            s(&plan),
            "-o",
            s(&out),
        ],
        &["--under-plan", s(&plan), "does not fit the model", "layers"],
    );
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
    assert!(!out.exists(), "nothing written");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, edited("block_tokens = 16", "block_tokens = 0")).unwrap();
    refused(
        "moa",
        &[
            "profile",
            "--calib",
            s(&calib),
            "--lengths",
            "256",
            "--like",
            "llama-2-7b",
            "--under-plan",
            s(&bad),
            "-o",
            s(&out),
        ],
        &["`span.block_tokens` = 0 is out of range: allowed 1..="],
    );
}

/// A `moa-compile` killed during its write leaves one `<file>.moa-tmp-<pid>-<n>` (and no
/// manifest, so no loader takes the folder). The next compile removes it, but counted it
/// as "1 kernel files this compile does not produce removed": said as what it is now, and
/// the folder is the clean compile's.
#[test]
fn a_killed_compiles_temporary_is_not_counted_as_a_kernel_file() {
    let dir = scratch("killed-compile");
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, fixture_gqa()).unwrap();
    let out = dir.join("out");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    // What a killed run leaves: a temporary of a process that has ended, no manifest.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let tmp = out.join(format!("wgsl/l01_decode.wgsl.moa-tmp-{dead}-3"));
    std::fs::write(&tmp, "half a kern").unwrap();
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    std::fs::write(out.join(".moa-compile-unfinished"), "").unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("; 1 temporary file of a stopped moa-compile removed"),
        "{err}"
    );
    assert!(
        !err.contains("kernel files this compile does not produce"),
        "{err}"
    );
    assert!(!tmp.exists());
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "--check"]);
    assert_eq!(code, 0, "the folder is the clean compile's: {err}");
    assert!(
        !out.join(".moa-compile-unfinished").exists(),
        "a finished compile leaves no marker"
    );
    // `--check` of what the killed run left listed every file and said nothing of why.
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    std::fs::write(out.join(".moa-compile-unfinished"), "").unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("holds kernel files but no manifest.json: a moa-compile into it was stopped before it finished"),
        "{err}"
    );
}

/// The progress of `moa profile`, `calib`, `validate` and `eval` drew each item's line
/// with `\r` and the erase-line code on stderr wherever it went, so a log file (`2> log`,
/// `| tee`, CI) held `^M^[[2K[1/4] length 256, … | elapsed 0.0s^M^[[2Klength 256 sample
/// …: loss 0.068` with each item's start and result on one line (the pipeline's log in
/// round 18). Off a terminal each is now a plain line of its own.
#[test]
fn progress_in_a_log_file_is_plain_lines() {
    let dir = scratch("progress-log");
    let calib = one_sample_calibration(&dir);
    let out = dir.join("prof");
    let (code, _, err) = run(
        "moa",
        &[
            "profile",
            "--calib",
            s(&calib),
            "--lengths",
            "256",
            "--like",
            "smollm2-135m",
            "-o",
            s(&out),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "terminal codes in a log:\n{err:?}"
    );
    let lines: Vec<&str> = err.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("[1/1] length 256, sample s0"))
        .unwrap_or_else(|| panic!("no start line:\n{err}"));
    assert!(
        lines[start + 1].starts_with("length 256 sample s0"),
        "the result on the next line:\n{err}"
    );
}

/// Inputs read outside `moa::input` said less than the others: a calibration JSONL that
/// is not UTF-8 "stream did not contain valid UTF-8" (no line, in `moa profile`,
/// `validate` and `diagnose`), `moa eval --merge FOLDER` "Is a directory (os error 21)",
/// and an empty upstream JSON "EOF while parsing a value at line 1 column 0".
#[test]
fn calibration_merge_and_upstream_inputs_say_what_is_wrong() {
    let dir = scratch("other-inputs");
    let calib = one_sample_calibration(&dir);
    let good = std::fs::read(&calib).unwrap();
    // A second line with a Latin-1 byte; a UTF-16 file; a UTF-8 byte-order mark (read).
    let latin1 = dir.join("latin1.jsonl");
    std::fs::write(&latin1, [&good[..], b"{\"id\": \"caf\xe9\"}\n"].concat()).unwrap();
    let utf16 = dir.join("utf16.jsonl");
    std::fs::write(&utf16, [0xFF, 0xFE, b'{', 0]).unwrap();
    for (file, needles) in [
        (
            &latin1,
            vec!["line 2: is not UTF-8 text (invalid byte at column 12)"],
        ),
        (&utf16, vec!["line 1: is UTF-16 text"]),
    ] {
        let mut all = needles.clone();
        all.push("a calibration JSONL must be UTF-8");
        all.push(s(file));
        refused(
            "moa",
            &[
                "profile",
                "--calib",
                s(file),
                "--lengths",
                "256",
                "--like",
                "smollm2-135m",
                "-o",
                s(&dir.join("prof")),
            ],
            &all,
        );
    }
    let bom = dir.join("bom.jsonl");
    std::fs::write(&bom, [&[0xEF, 0xBB, 0xBF][..], &good].concat()).unwrap();
    assert_eq!(moa::calib::read_jsonl(&bom).unwrap().len(), 1);

    // A model and plan of one shape, so that eval reaches --merge (it reads the model's
    // config and the plans first).
    let model = dir.join("tiny");
    std::fs::create_dir_all(&model).unwrap();
    common::tiny::tiny(3, true).write_hf(&model, candle_core::DType::F32, true);
    let plan = dir.join("tiny.toml");
    // Both at a context that holds a pass-key prompt (the tiny model's is 128 tokens).
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["max_position_embeddings"] = 2048.into();
    std::fs::write(&config, json.to_string()).unwrap();
    let toml = common::tiny::sparse_plan().to_toml();
    assert!(toml.contains("max_context_tokens = 128"));
    std::fs::write(
        &plan,
        toml.replace("max_context_tokens = 128", "max_context_tokens = 2048"),
    )
    .unwrap();
    refused(
        "moa",
        &[
            "eval",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--lengths",
            "512",
            "--depths",
            "1",
            "--merge",
            s(&dir),
        ],
        &[
            "--merge: cannot read",
            "is a directory: moa reads a moa eval report only from a regular file",
        ],
    );

    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    refused(
        "moa",
        &[
            "plan",
            "import",
            s(&empty),
            "--layers",
            "1",
            "--heads",
            "1",
            "--kv-heads",
            "1",
            "--head-dim",
            "64",
        ],
        &["is empty (0 bytes): an upstream MoA plan is JSON"],
    );
}

/// `usize` and `u64` flags went through Rust's `FromStr`: `--max-new-tokens -1` said
/// "invalid digit found in string" and `--depths 18446744073709551616` "number too large
/// to fit in target type". Each now says what is wrong and the range, in every subcommand.
#[test]
fn whole_number_flags_say_what_is_wrong_and_the_range() {
    for (args, needle) in [
        (
            vec!["generate", "--dense", "--prompt", "hi", "--max-new-tokens", "-1"],
            "invalid value '-1' for '--max-new-tokens <MAX_NEW_TOKENS>': is negative: allowed 1..=(the model's context minus the longest prompt's tokens)",
        ),
        (
            vec!["calib", "--out", "c.jsonl", "--max-new-tokens", "-2"],
            "for '--max-new-tokens <MAX_NEW_TOKENS>': is negative: allowed 1 or more (the dense answer needs at least 1 token)",
        ),
        (
            vec!["pipeline", "--max-new-tokens", "x"],
            "for '--max-new-tokens <MAX_NEW_TOKENS>': is not a whole number: allowed 1 or more",
        ),
        (
            vec!["eval", "--depths", "18446744073709551616"],
            "invalid value '18446744073709551616' for '--depths <DEPTHS>': is too large: allowed 0..=18446744073709551615",
        ),
        (
            vec!["calib", "--out", "c.jsonl", "--samples", "nine"],
            "for '--samples <SAMPLES>': is not a whole number: allowed 0..=",
        ),
        (
            vec!["model", "random", "--like", "smollm2-135m", "-o", "x", "--seed", "-5"],
            "for '--seed <SEED>': is negative: allowed 0..=18446744073709551615",
        ),
    ] {
        refused("moa", &args, &[needle]);
    }
}
