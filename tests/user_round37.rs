//! A new user's journey, round 37: the real default model, SmolLM2-135M-Instruct, on a
//! CPU-only machine (wgpu on lavapipe, `--backend cpu` where a command has it), trying
//! what README.md promises for it with the release binaries: `moa model info` and
//! `fetch`, `moa generate` (chat prompts, several prompts and prompt files, the shipped
//! plans, sampling flags, --max-new-tokens at 0, 1 and past the context, `--kernels`
//! from `moa-compile`), `moa plan show` (also `--max-batch`), `export` and `import` of the
//! shipped plans, `moa eval --backend cpu` with a small grid, `moa bench`'s checks that
//! come before the GPU, and `moa-compile` (and `--check`) of the default plan. The
//! numbers checked (KV bytes at N, kernel and file counts, prefill token sums, the memory
//! planner's rows) added up. What it found wrong, each pinned here: `moa eval` spread its
//! --ppl-rows windows over a short --ppl-text overlapping, so their scored tails counted
//! the same tokens again, silently (8 windows of 32 scored tokens over a 194-token text
//! scored 98 distinct tokens, and the report said 8 windows): it now says so, with the
//! count; `moa generate` with several prompts counted the tokens of rows that had
//! already ended (at their end-of-sequence token, still run in the batch) in its decode
//! rate ("5 steps x 2 rows = … tok/s" where one row's answer had ended at once): it now
//! says how many were kept and their rate; `moa plan show --max-batch` took
//! `--bytes-per-elem 4` (and `--heads`) and ignored it, planning bf16's rows (its element
//! size is --dtype's): both are refused with it now; and `moa generate --prompt-file DIR` (or a
//! missing file) said "cannot read `DIR`", without the flag. Seconds each; nothing here needs a GPU, the fetched model or
//! anything outside the repository.

mod common;

use common::cli::s;

common::cli::tagged!();

/// `--ppl-rows 8` windows of 64 tokens with 16 scored, over a text of about 100 tokens
/// (byte-level tokenizer): their starts are a few tokens apart, so most scored tokens are
/// scored in several windows. The run says how many distinct tokens it scored; a text
/// long enough for separate tails (2 windows) says nothing.
#[test]
fn overlapping_perplexity_windows_are_said() {
    let dir = scratch("ppl-overlap");
    let model = common::cli::tiny_model(&dir.join("m"));
    let text = dir.join("short.txt");
    std::fs::write(
        &text,
        "A short held-out text: one paragraph of prose, about a hundred bytes long, no more.\n",
    )
    .unwrap();
    let eval = |rows: &str| {
        let (code, _, err) = run(
            "moa",
            &[
                "eval",
                "--backend",
                "cpu",
                "--model",
                s(&model),
                "--lengths",
                "240",
                "--depths",
                "1",
                "--tasks",
                "passkey",
                "--no-uniform",
                "--ppl-text",
                s(&text),
                "--ppl-length",
                "64",
                "--ppl-scored",
                "16",
                "--ppl-rows",
                rows,
                "--quiet",
            ],
        );
        assert_eq!(code, 0, "--ppl-rows {rows}: {err}");
        err
    };
    let err = eval("8");
    let note = err
        .lines()
        .find(|l| l.contains("overlap"))
        .unwrap_or_else(|| panic!("no overlap note:\n{err}"));
    assert!(
        note.contains("8 windows of --ppl-length 64")
            && note.contains("--ppl-scored 16")
            && note.contains("not 128"),
        "{note}"
    );
    // The count is the union of the tails: the text's last tokens from the first tail's
    // start (the windows spread from the text's start to its end).
    let tokens: usize = note
        .split("the perplexity text has ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    let distinct = tokens - (64 - 16);
    assert!(
        note.contains(&format!("score {distinct} distinct tokens")),
        "{note}"
    );
    let err = eval("2");
    assert!(!err.contains("overlap"), "{err}");
}

/// `moa generate --prompt-file` of a folder or a missing file named the path but not the
/// flag that gave it; it is refused before the weights load, naming both.
#[test]
fn an_unreadable_prompt_file_names_its_flag() {
    let dir = scratch("prompt-file");
    let model = common::cli::tiny_model(&dir.join("m"));
    let missing = dir.join("no-such-prompt.txt");
    for f in [&dir, &missing] {
        let err = refused(
            "moa",
            &[
                "generate",
                "--model",
                s(&model),
                "--dense",
                "--prompt-file",
                s(f),
                "--max-new-tokens",
                "2",
            ],
            &[&format!("--prompt-file: cannot read `{}`", f.display())],
        );
        assert!(!err.contains("building the engine"), "{err}");
    }
}

/// Two rows, one of which ends at once: the tiny model answers `abc` with `c` (id 102)
/// and `hello world` with `d` (103), greedily, every step; with 102 made an end-of-sequence
/// id too (config.json's `eos_token_id` may be a list), row 0 ends at the prefill's token
/// while row 1 runs its 5 decode steps. The decode line counts 10 row-steps, and now
/// says that 5 tokens were kept; a run where every row runs to --max-new-tokens says
/// nothing more.
#[test]
fn decode_rate_says_the_tokens_of_ended_rows_were_dropped() {
    let dir = scratch("ended-rows");
    let model = common::cli::tiny_model(&dir.join("m"));
    let generate = || {
        let (code, out, err) = run(
            "moa",
            &[
                "generate",
                "--model",
                s(&model),
                "--dense",
                "--raw",
                "--prompt",
                "abc",
                "--prompt",
                "hello world",
                "--max-new-tokens",
                "6",
                "--print-ids",
            ],
        );
        assert_eq!(code, 0, "{err}");
        (out, err)
    };
    let (_, err) = generate();
    assert!(err.contains("ids[0] generated [102, 102, 102"), "{err}");
    assert!(err.contains("ids[1] generated [103, 103, 103"), "{err}");
    let line = |err: &str| {
        err.lines()
            .find(|l| l.starts_with("prefill: "))
            .unwrap_or_else(|| panic!("no rate line:\n{err}"))
            .to_string()
    };
    assert!(!line(&err).contains("kept"), "{err}");

    let config = model.join("config.json");
    let json = std::fs::read_to_string(&config).unwrap();
    assert!(json.contains("\"eos_token_id\":2"), "{json}");
    std::fs::write(
        &config,
        json.replace("\"eos_token_id\":2", "\"eos_token_id\":[2,102]"),
    )
    .unwrap();
    let (out, err) = generate();
    assert!(
        out.contains("--- [0] \n") && out.contains("--- [1] dddddd"),
        "{out}"
    );
    assert!(err.contains("ids[0] eos 102"), "{err}");
    let rate = line(&err);
    assert!(
        rate.contains("decode: 5 steps x 2 rows in ")
            && rate.contains("still ran in the batch: 5 of these 10 tokens were kept"),
        "{rate}"
    );
}

/// `moa plan show --max-batch` sizes its caches by --dtype (bf16 by default): a
/// `--bytes-per-elem 4` beside it gave the same rows as without, and `--heads` printed no
/// spans. Each is refused with --max-batch, naming both flags; without it they still work.
#[test]
fn plan_show_max_batch_refuses_the_span_tables_flags() {
    let plan = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/smollm2-135m-moa-50.toml"
    );
    let base = [
        "plan",
        "show",
        plan,
        "--max-batch",
        "--like",
        "smollm2-135m",
        "--prompt-len",
        "100",
        "--memory",
        "8",
    ];
    for extra in [&["--bytes-per-elem", "4"][..], &["--heads"][..]] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        refused(
            "moa",
            &args,
            &[extra[0], "cannot be used with", "--max-batch"],
        );
    }
    let (code, out, err) = run("moa", &base);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("largest batch: "), "{out}");
    let (code, out, err) = run(
        "moa",
        &[
            "plan",
            "show",
            plan,
            "--prompt-len",
            "100",
            "--heads",
            "--bytes-per-elem",
            "4",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("spans: ") && out.contains("at 4 B/elem"),
        "{out}"
    );
}
