//! `moa generate --prompt-file <(cmd)`: bash's process substitution names a FIFO
//! (`/dev/fd/63`), the natural way to give a second prompt beside `--prompt-file -` or to
//! join files; it was refused ("is a FIFO (named pipe): moa reads a prompt file only from
//! a regular file"). It is read to its end now and gives the ids the same text gives from
//! a file. Devices stay refused. The tiny random Llama on wgpu (lavapipe in CI); a few
//! seconds.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tiny::{tiny, tmp};

fn moa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

fn prompt_ids(o: &Output) -> String {
    let t = text(o);
    assert!(o.status.success(), "{t}");
    t.lines()
        .find(|l| l.starts_with("ids[0] prompt"))
        .unwrap_or_else(|| panic!("no prompt ids in:\n{t}"))
        .to_string()
}

fn generate(model: &Path, prompt_file: &Path) -> Output {
    moa()
        .args([
            "generate",
            "--dense",
            "--raw",
            "--max-new-tokens",
            "1",
            "--print-ids",
        ])
        .arg("--model")
        .arg(model)
        .arg("--prompt-file")
        .arg(prompt_file)
        .output()
        .unwrap()
}

#[test]
#[cfg(unix)]
fn a_prompt_file_may_be_a_pipe() {
    let dir = tmp("prompt-pipe");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |_, _| {});
    let prompt = "hello world hello";
    let file = dir.join("prompt.txt");
    std::fs::write(&file, prompt).unwrap();
    let from_file = prompt_ids(&generate(&model, &file));

    let fifo = dir.join("prompt.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let writer = {
        let fifo = fifo.clone();
        // Opening a FIFO for writing waits for its reader (moa), as a shell's does.
        std::thread::spawn(move || std::fs::write(&fifo, prompt).unwrap())
    };
    let from_pipe = prompt_ids(&generate(&model, &fifo));
    writer.join().unwrap();
    assert_eq!(from_pipe, from_file);

    // A device is still refused (it could read without end), naming the flag's file.
    let o = generate(&model, Path::new("/dev/zero"));
    assert!(!o.status.success());
    assert!(text(&o).contains("a character device"), "{}", text(&o));
}
