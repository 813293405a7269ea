//! A new user's journeys through `moa generate` and `moa plan show` (session 16): the
//! streamed text of a run that stops inside a UTF-8 sequence, a prompt from standard
//! input (`--prompt-file -`), and a hand-written plan whose `plan show` figures are
//! checked against docs/DESIGN.md §2 and §5 worked by hand. Runs the real binary on the
//! tiny random Llama (wgpu: lavapipe in CI).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
                .args(["generate", "--dense", "--raw", "--ignore-eos", "--print-ids"])
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
        c.args(["generate", "--dense", "--print-ids", "--max-new-tokens", "2"])
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
