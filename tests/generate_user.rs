//! A new user's journeys through `moa generate` and `moa plan show` (session 16): the
//! streamed text of a run that stops inside a UTF-8 sequence, a prompt from standard
//! input (`--prompt-file -`), and a hand-written plan whose `plan show` figures are
//! checked against docs/DESIGN.md §2 and §5 worked by hand. Runs the real binary on the
//! tiny random Llama (wgpu: lavapipe in CI).

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use candle_core::quantized::gguf_file::Value;
use common::tiny::{tiny, tmp};
use moa::model::ModelTokenizer;

fn moa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn tiny_gguf(dir: &Path) -> String {
    let path = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&path, |_, _| {});
    path.display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("running moa");
    assert!(
        out.status.success(),
        "{cmd:?}\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The ids of `ids[0] generated [..]` from `--print-ids`.
fn generated(stderr: &str) -> Vec<u32> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ids[0] generated "))
        .unwrap_or_else(|| panic!("no generated ids in:\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

/// One streamed row printed what its ids decode to, also when the last token ends inside
/// a UTF-8 sequence (a lone byte of the random model): the stream held that text back and
/// printed nothing of it at the end (before session 16, `--max-new-tokens 1` printed an
/// empty line for a byte token).
#[test]
fn a_streamed_row_prints_its_last_tokens_even_inside_a_utf8_sequence() {
    let dir = tmp("user-stream-tail");
    let model = tiny_gguf(&dir);
    let tokenizer = ModelTokenizer::load(Path::new(&model)).unwrap();
    let mut cut_inside = 0;
    for prompt in ["hello", "ab", "the cat"] {
        for n in 1..=3 {
            let out = ok(moa()
                .args([
                    "generate",
                    "--dense",
                    "--raw",
                    "--ignore-eos",
                    "--print-ids",
                ])
                .args(["--model", &model, "--prompt", prompt])
                .args(["--max-new-tokens", &n.to_string()]));
            let ids = generated(&text(&out.stderr));
            assert_eq!(ids.len(), n);
            let want = tokenizer.decode(&ids, true).unwrap();
            cut_inside += usize::from(want.ends_with('\u{fffd}'));
            assert_eq!(
                text(&out.stdout),
                format!("{want}\n"),
                "prompt {prompt:?}, {n} new tokens {ids:?}"
            );
        }
    }
    assert!(
        cut_inside > 0,
        "no run ended inside a UTF-8 sequence: the test does not cover the case"
    );
}

/// `--prompt-file -` reads the prompt from standard input (the same ids as the file), once.
#[test]
fn a_prompt_comes_from_standard_input_with_prompt_file_dash() {
    let dir = tmp("user-stdin");
    let model = tiny_gguf(&dir);
    let file = dir.join("p.txt");
    std::fs::write(&file, "hello there\n").unwrap();
    let args = |c: &mut Command| {
        c.args([
            "generate",
            "--dense",
            "--print-ids",
            "--max-new-tokens",
            "2",
        ])
        .args(["--model", &model]);
    };
    let mut from_file = moa();
    args(&mut from_file);
    let from_file = ok(from_file.args(["--prompt-file", file.to_str().unwrap()]));
    let mut c = moa();
    args(&mut c);
    let mut child = c
        .args(["--prompt-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello there\n")
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    let ids = |o: &Output| {
        text(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("ids[0]"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&from_stdin), ids(&from_file));
    assert_eq!(from_stdin.stdout, from_file.stdout);
    // A file saved "UTF-8 with BOM" gives the same prompt: the mark is not text.
    let bom = dir.join("bom.txt");
    std::fs::write(&bom, "\u{feff}hello there\n").unwrap();
    let mut c = moa();
    args(&mut c);
    let from_bom = ok(c.args(["--prompt-file", bom.to_str().unwrap()]));
    assert_eq!(ids(&from_bom), ids(&from_file));

    // Twice is refused before the model loads; empty stdin is an empty prompt.
    let mut c = moa();
    args(&mut c);
    let out = c
        .args(["--prompt-file", "-", "--prompt-file", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--prompt-file - is given twice"),
        "{}",
        text(&out.stderr)
    );
    let mut c = moa();
    args(&mut c);
    let out = c
        .args(["--prompt-file", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--prompt-file `-` is empty"),
        "{}",
        text(&out.stderr)
    );
}

/// A plan written by hand for the tiny shape, with rules at the edges (α far below zero,
/// β = 0 and 1, a span rounded up to the block): `moa plan show` prints the spans, slots,
/// densities and bytes that docs/DESIGN.md §2 (span), §4 (a KV segment holds its group's
/// largest span) and §5 (slots) give by hand, and a small model's bytes in KiB, not
/// `0.0 MiB` (before session 16).
#[test]
fn plan_show_of_a_hand_written_plan_gives_the_documented_figures() {
    let dir = tmp("user-hand-plan");
    let plan = dir.join("hand.toml");
    std::fs::write(
        &plan,
        r#"format_version = 1
[model]
name = "tiny"
layers = 2
q_heads = 4
kv_heads = 2
head_dim = 16
max_context_tokens = 128
[span]
sink_tokens = 4
min_span_tokens = 8
block_tokens = 8
mode = "moa"
max_new_tokens = 16
[[layers]]
alpha = [0, -1000, 16, 7]
beta = [1.0, 0.0, 0.0, 0.25]
[[layers]]
alpha = [0, 0, 0, 0]
beta = [0.5, 0.5, 0.0, 1.0]
"#,
    )
    .unwrap();
    let out = ok(moa().args(["plan", "show", plan.to_str().unwrap()]).args([
        "--prompt-len",
        "48",
        "--heads",
    ]));
    let s = text(&out.stdout);
    // N = 48 + 16 = 64. Layer 0: 0 + 64 = 64; -1000 -> min 8; 16; 7 + 16 = 23 -> 24.
    // Layer 1: 32, 32, 0 -> 8, 64. KV segments (heads 0-1, 2-3): 64 + 24, 32 + 64.
    for want in [
        "N = prompt 48 + max_new 16 = 64",
        "    0      4         8       28.0        64        88",
        "       spans: 64 8 16 24",
        "    1      3         8       34.0        64        96",
        "       spans: 32 32 8 64",
        // 248 q-head slots of 8 x 64; 184 KV slots of 4 x 64.
        "query-head spans: mean 31.0, min 8, max 64; 48.4% of N",
        "KV density (GQA-native cache, per KV head): 71.9%",
        // 184 slots x 16 x (K, V) x 2 B = 11 776 B; dense 256 slots = 16 384 B; upstream
        // (one segment per query head) 248 slots = 15 872 B.
        "KV bytes per sequence at 2 B/elem: 11.5 KiB (moa) vs 16.0 KiB dense = 0.719x; upstream's MHA-expanded cache: 15.5 KiB",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
}

/// A GQA-native plan written by hand (one rule per KV head) is refused naming the field,
/// and the message says how to write it: rules are per query head (docs/DESIGN.md §4).
#[test]
fn rules_per_kv_head_are_refused_with_how_to_write_them() {
    let toml = r#"format_version = 1
[model]
name = "tiny"
layers = 1
q_heads = 4
kv_heads = 2
head_dim = 16
max_context_tokens = 128
[[layers]]
alpha = [0, 64]
beta = [0.5, 0.0]
"#;
    let e = moa::plan::Plan::from_toml_str(toml, "kv.toml")
        .unwrap_err()
        .to_string();
    for want in [
        "`layers[0].alpha` has 2 entries: expected one per query head, model.q_heads = 4",
        "not per KV head: repeat each KV head's rule for its 2 query heads",
    ] {
        assert!(e.contains(want), "missing {want:?} in {e}");
    }
}

/// `moa bench --checks-only` with no check asked for is refused naming both flags (it
/// ran nothing and exited 0), and a bench that cannot build its first engine (no CUDA
/// driver on CI; an unknown GPU index where there is one) prints no table header before
/// its error (the header came out with no rows).
#[test]
fn bench_refuses_checks_only_without_checks_and_prints_no_empty_table() {
    let out = moa()
        .args(["bench", "--like", "smollm2-135m", "--checks-only"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("--checks-only runs only the checks, and none is asked for: add --check-ops and/or --parity N"),
        "{e}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = moa()
        .args(["bench", "--like", "smollm2-135m", "--prompt", "16"])
        .args(["--batch", "1", "--new", "4", "--gpu", "4096"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        !text(&out.stdout).contains("| plan |"),
        "a header without rows:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `moa eval` on a model whose context is shorter than any retrieval prompt says so
/// (before session 16: "allowed: 138 ..= 128", an empty range).
#[test]
fn eval_on_a_model_too_short_for_retrieval_says_no_length_fits() {
    let dir = tmp("user-eval-short");
    let model = tiny_gguf(&dir);
    let out = moa()
        .args(["eval", "--model", &model, "--lengths", "64", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("no length fits: a prompt with a needle needs at least 138 tokens and the model's context is 128 tokens"),
        "{e}"
    );
}

/// Ctrl-C in the middle of decoding (SIGINT to a run of 1900 new tokens on a tiny model of
/// 2048 tokens' context) ends the process at once, by the signal, without a panic
/// message: moa installs no handler that could wait for the GPU or unwind.
#[test]
#[cfg(unix)]
fn ctrl_c_mid_generation_ends_the_run_promptly_without_a_panic() {
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
    use std::time::{Duration, Instant};
    let dir = tmp("user-sigint");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let mut cmd = moa();
    cmd.args([
        "generate",
        "--dense",
        "--raw",
        "--ignore-eos",
        "--prompt",
        "hello",
    ])
    .args([
        "--max-new-tokens",
        "1900",
        "--model",
        model.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // A shell starts a background job with SIGINT ignored, and the child inherits that:
    // `CI=true bash .ci/run &` ran the whole 1900 tokens through the signal (session 22).
    // Ctrl-C reaches moa with the default action; give the child that here.
    // SAFETY: signal(2) is async-signal-safe, the only call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut err = Vec::new();
    let mut buf = [0u8; 4096];
    // Decoding starts once the engine is loaded.
    while !text(&err).contains("loaded in") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "moa ended before loading:\n{}", text(&err));
        err.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(5), "{waited:?} after SIGINT");
    let all = format!("{}{rest}", text(&err));
    assert!(!all.contains("panicked"), "{all}");
    // Either the signal ended it or (on a fast machine) the run had already finished.
    assert!(
        out.status.signal() == Some(2) || (out.status.success() && all.contains("decode:")),
        "{:?}\n{all}",
        out.status
    );
}

/// A model without a chat template runs its prompts as they are, and says so (it did so
/// silently: a user of a chat model read the untemplated answer as the model's).
#[test]
fn a_model_without_a_chat_template_says_prompts_go_in_raw() {
    let dir = tmp("user-no-template");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        md.retain(|(k, _)| k != "tokenizer.chat_template");
    });
    let model = model.to_str().unwrap();
    let note = "has no chat template: prompts are fed as they are (as with --raw)";
    let run = |raw: bool| {
        let mut c = moa();
        c.args(["generate", "--dense", "--model", model, "--prompt", "hi"])
            .args(["--max-new-tokens", "1", "--print-ids"]);
        if raw {
            c.arg("--raw");
        }
        text(&ok(&mut c).stderr)
    };
    let (chat, raw) = (run(false), run(true));
    assert!(chat.contains(note), "{chat}");
    assert!(!raw.contains(note), "{raw}");
    let ids = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("ids[0] prompt"))
            .map(str::to_string)
    };
    assert_eq!(ids(&chat), ids(&raw));
}

/// `moa eval` on lavapipe (the tiny model with a 2048-token context): the JSON report has
/// exactly the fields docs/CALIBRATION.md lists, each named there.
#[test]
fn eval_json_has_the_documented_fields() {
    let dir = tmp("user-eval-json");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let json = dir.join("e.json");
    ok(moa()
        .args(["eval", "--model", model.to_str().unwrap(), "--no-uniform"])
        .args(["--lengths", "256", "--depths", "1", "--tasks", "passkey"])
        .args([
            "--ppl-length",
            "128",
            "--ppl-scored",
            "4",
            "--ppl-rows",
            "1",
        ])
        .args(["--quiet", "--json", json.to_str().unwrap()]));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "backend",
            "grid",
            "model",
            "perplexity_setup",
            "plans",
            "seconds"
        ]
    );
    assert_eq!(keys(&v["grid"]), ["depths", "lengths", "seed"]);
    let dense = &v["plans"][0];
    assert_eq!(dense["name"], "dense");
    assert_eq!(
        keys(dense),
        [
            "effective_context",
            "kv_density",
            "masking",
            "name",
            "perplexity",
            "perplexity_nats",
            "retrieval"
        ]
    );
    assert_eq!(
        keys(&dense["retrieval"][0]),
        ["answers", "correct", "family"]
    );
    assert_eq!(v["perplexity_setup"][0], 1);
    assert_eq!(v["perplexity_setup"][1], 128);
    assert_eq!(v["perplexity_setup"][2], 4);
    assert_eq!(dense["perplexity_nats"][0].as_array().unwrap().len(), 4);
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CALIBRATION.md"))
            .unwrap();
    let section = &doc[doc.find("The JSON report (`--json`").unwrap()..];
    let section = &section[..section.find("\n\n").unwrap()];
    for k in keys(&v)
        .into_iter()
        .chain(keys(dense))
        .chain(keys(&v["grid"]))
        .chain(keys(&dense["retrieval"][0]))
    {
        assert!(
            section.contains(&format!("`{k}")),
            "`{k}` not in:\n{section}"
        );
    }
}

/// `moa plan show --max-batch` on a small model: a --memory that holds no row names the
/// least that does in units that show it (MiB, not `0.02 GiB`), rounded up so that the
/// printed value itself fits one row (`{:.2}` GiB could round below the need).
#[test]
fn max_batch_names_a_least_memory_that_fits() {
    let dir = tmp("user-max-batch");
    let model = tiny_gguf(&dir);
    let plan = dir.join("dense.toml");
    std::fs::write(
        &plan,
        "format_version = 1\n[model]\nname = \"tiny\"\nlayers = 2\nq_heads = 4\nkv_heads = 2\nhead_dim = 16\nmax_context_tokens = 128\n[span]\nmax_new_tokens = 16\n[[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [1.0, 1.0, 1.0, 1.0]\n[[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [1.0, 1.0, 1.0, 1.0]\n",
    )
    .unwrap();
    let show = |memory: &str| {
        moa()
            .args(["plan", "show", plan.to_str().unwrap(), "--max-batch"])
            .args(["--model", &model, "--prompt-len", "48", "--memory", memory])
            .output()
            .unwrap()
    };
    let out = show("1MiB");
    assert!(!out.status.success());
    let e = text(&out.stderr);
    let least = e
        .split("allowed at least ")
        .nth(1)
        .and_then(|t| t.trim().strip_suffix(" MiB"))
        .unwrap_or_else(|| panic!("no least memory in MiB in:\n{e}"));
    assert!(e.contains("--memory 1.00 MiB holds no row"), "{e}");
    let least: f64 = least.parse().unwrap();
    let fits = show(&format!("{least:.2}MiB"));
    assert!(fits.status.success(), "{}", text(&fits.stderr));
    let short = show(&format!("{:.2}MiB", least - 0.01));
    assert!(!short.status.success(), "{}", text(&short.stdout));
}

/// `--seed` reproduces a sampled run across processes and another seed changes it; with
/// greedy decoding (the default) --seed and --top-p change nothing, and moa says so.
#[test]
fn seeds_reproduce_sampling_and_greedy_says_it_ignores_them() {
    let dir = tmp("user-seed");
    let model = tiny_gguf(&dir);
    let run = |extra: &[&str]| {
        let out = ok(moa()
            .args([
                "generate",
                "--dense",
                "--raw",
                "--ignore-eos",
                "--print-ids",
            ])
            .args([
                "--model",
                &model,
                "--prompt",
                "hello",
                "--max-new-tokens",
                "12",
            ])
            .args(extra));
        let e = text(&out.stderr);
        (generated(&e), e)
    };
    let (a, _) = run(&["--temperature", "4", "--seed", "1"]);
    let (b, _) = run(&["--temperature", "4", "--seed", "1"]);
    let (c, _) = run(&["--temperature", "4", "--seed", "2"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // The note names the flags given (round 37: all three, whichever was given).
    let note = "decodes greedily: --seed changes nothing";
    let (g1, e1) = run(&["--seed", "7"]);
    let (g0, e0) = run(&[]);
    assert_eq!(g1, g0);
    let (_, e3) = run(&["--seed", "7", "--top-k", "5", "--top-p", "0.9"]);
    let three = "decodes greedily: --seed, --top-k and --top-p change nothing";
    assert!(e3.contains(three), "{e3}");
    // --top-k 1 leaves one candidate: greedy's tokens at any temperature and seed.
    let (k1, _) = run(&["--temperature", "4", "--seed", "1", "--top-k", "1"]);
    assert_eq!(k1, g0);
    assert!(e1.contains(note), "{e1}");
    assert!(!e0.contains(note), "{e0}");
}

/// A prompt's sampled tokens do not depend on the prompts beside it: each row draws from
/// its own stream (`runtime::engine::row_seed`), so "hello" alone and "hello" first
/// beside "world" (as long, so N is the same) sample the same ids at one seed (round 22
/// found them different: one stream over the rows). Row 1 draws another stream than row 0.
#[test]
fn a_rows_sampled_tokens_do_not_depend_on_the_rows_beside_it() {
    let dir = tmp("user-row-streams");
    let model = tiny_gguf(&dir);
    let run = |prompts: &[&str]| {
        let mut cmd = moa();
        cmd.args([
            "generate",
            "--dense",
            "--raw",
            "--ignore-eos",
            "--print-ids",
        ])
        .args(["--model", &model, "--max-new-tokens", "12"])
        .args(["--temperature", "4", "--seed", "5"]);
        for p in prompts {
            cmd.args(["--prompt", p]);
        }
        let e = text(&ok(&mut cmd).stderr);
        (0..prompts.len())
            .map(|r| {
                let line = e
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("ids[{r}] generated ")))
                    .unwrap_or_else(|| panic!("no ids of row {r} in:\n{e}"));
                serde_json::from_str::<Vec<u32>>(line).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let alone = run(&["hello"]);
    let first = run(&["hello", "world"]);
    let second = run(&["world", "hello"]);
    assert_eq!(first[0], alone[0], "row 0 beside another prompt");
    assert_ne!(
        second[1], alone[0],
        "row 1 draws its own stream, not row 0's"
    );
}

/// A reader that closes the pipe early (`moa generate ... | head`) ends moa by SIGPIPE
/// like any Unix tool: several prompts printed with `println!` after the reader had gone
/// panicked ("failed printing to stdout: Broken pipe", exit 101).
#[test]
#[cfg(unix)]
fn a_closed_stdout_pipe_ends_moa_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tmp("user-sigpipe");
    let model = tiny_gguf(&dir);
    let mut child = moa()
        .args(["generate", "--dense", "--raw", "--model", &model])
        .args([
            "--prompt",
            "hello",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let e = text(&out.stderr);
    assert!(!e.contains("panicked") && !e.contains("moa failed"), "{e}");
    // 13: SIGPIPE on Linux and macOS.
    assert_eq!(out.status.signal(), Some(13), "{:?}\n{e}", out.status);
}

/// `--print-ids` names the end-of-sequence token that ended an answer (session 19: it was
/// left out, so a comparison with a runtime whose output ends with it looked one token
/// short), and says when a row stopped at `--max-new-tokens` instead. The tiny model's
/// first greedy token is made its end-of-sequence token (GGUF metadata), so the answer
/// ends at once.
#[test]
fn print_ids_names_the_end_of_sequence_token_that_ended_the_answer() {
    let dir = tmp("user-print-eos");
    let model = tiny_gguf(&dir);
    let run = |model: &str, extra: &[&str]| {
        ok(moa()
            .args(["generate", "--dense", "--raw", "--print-ids"])
            .args(["--model", model, "--prompt", "hello"])
            .args(extra))
    };
    let first = run(&model, &["--max-new-tokens", "2", "--ignore-eos"]);
    let err = text(&first.stderr);
    let ids = generated(&err);
    assert!(
        err.contains("ids[0] stopped at --max-new-tokens 2 (--ignore-eos"),
        "{err}"
    );
    let eos_model = dir.join("eos.gguf");
    tiny(5, true).write_gguf(&eos_model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "tokenizer.ggml.eos_token_id" {
                *v = Value::U32(ids[0]);
            }
        }
    });
    let out = run(eos_model.to_str().unwrap(), &["--max-new-tokens", "4"]);
    let err = text(&out.stderr);
    assert_eq!(generated(&err), Vec::<u32>::new(), "{err}");
    let want = format!(
        "ids[0] eos {} (the end-of-sequence token, which ended the answer after 0 tokens",
        ids[0]
    );
    assert!(err.contains(&want), "no `{want}` in:\n{err}");
}
