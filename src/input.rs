//! Bounded reading of input files: the one place every reader of a user-named file goes
//! through (plans, upstream JSON, compile manifests, calibration JSONL, prompt files,
//! influence profiles, GGUF headers). Also the probe both command-line tools run before
//! any work, that an output folder takes a new file ([`probe_new_file`]).
//!
//! Why: `moa plan show /dev/zero` or a FIFO would otherwise read without end, and a huge
//! file would be pulled into memory before any check. Only regular files are read, and at
//! most `max_bytes` of them; both refusals are `std::io::Error`s whose message names the
//! kind of input and the limit, so each caller keeps its own error type (which names the
//! path).

#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Largest plan TOML / upstream JSON / manifest moa reads: 64 MiB (a plan of 1024 layers
/// of 1024 heads in TOML is about 20 MiB).
pub const MAX_TEXT_BYTES: u64 = 64 << 20;
/// Largest calibration JSONL or prompt file: 1 GiB.
pub const MAX_DATA_BYTES: u64 = 1 << 30;
/// Largest influence profile (safetensors): 4 GiB.
pub const MAX_PROFILE_BYTES: u64 = 4 << 30;

/// A name read from a user's file (a plan's `[model].name`, a config's or GGUF's model
/// name) as moa prints it: control characters (a newline, a NUL, an escape sequence that
/// would move the terminal's cursor) written as Rust escapes (`\n`, `\u{0}`, `\u{1b}`),
/// everything else as it is. Round 19: a plan named with a newline split moa-compile's
/// "held another plan" note over two lines.
pub fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A count and its noun as moa prints them: `noun` as given for 1, with an `s` added for
/// any other count ("1 step", "0 steps", "3 rows"). Round 28: "1 steps x 1 rows" and
/// "1 tensors" read as slips. Regular plurals only; a noun whose plural is not `s`
/// added (`family`) is written out by its caller.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Does `dir` take a new file? Creates `{dir}/.{name}-{process id}` (never over an
/// existing file) and removes it; the error is the OS's (see [`write_refusal`]).
pub fn probe_new_file(dir: &Path, name: &str) -> io::Result<()> {
    let probe = dir.join(format!(".{name}-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Why `dir` refused a write (`e`), in words: the OS's, except where a folder that exists
/// answers "No such file or directory" to a new file, a virtual file system (`/proc`)
/// whose words alone read as if the folder were missing.
pub fn write_refusal(dir: &Path, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound && dir.is_dir() {
        format!(
            "the folder exists but takes no new files (a virtual file system such as /proc; \
             the OS says: {e})"
        )
    } else {
        e.to_string()
    }
}

fn refuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// What a non-regular path is, for the error message.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading if it is a regular file (symbolic links are followed) of at
/// most `max_bytes` bytes; returns the file and its size in bytes. `what` names the input
/// in errors, e.g. "plan".
///
/// Errors: the open or metadata error of the OS; `InvalidInput` when the path is a
/// directory, device, FIFO or socket, or larger than `max_bytes`.
pub fn open_regular(path: &Path, what: &str, max_bytes: u64) -> io::Result<(File, u64)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "is {}: moa reads {} only from a regular file",
            kind_of(&meta),
            with_article(what)
        )));
    }
    if meta.len() > max_bytes {
        return Err(refuse(format!(
            "is {} bytes, larger than the {max_bytes} bytes allowed for {}",
            meta.len(),
            with_article(what)
        )));
    }
    Ok((file, meta.len()))
}

/// Reads a whole regular file of at most `max_bytes` bytes (see [`open_regular`]). The
/// read itself stops after `max_bytes + 1` bytes, so a file that grows while it is read
/// (or reports a wrong size, as files in /proc do) is refused too.
pub fn read_bytes(path: &Path, what: &str, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(path, what, max_bytes)?;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max_bytes {
        return Err(refuse(format!(
            "grew past the {max_bytes} bytes allowed for {} while it was read",
            with_article(what)
        )));
    }
    Ok(out)
}

/// [`read_bytes`] as UTF-8 text. Errors: as [`read_bytes`], and `InvalidData` naming the
/// byte offset of the first invalid UTF-8 sequence.
pub fn read_to_string(path: &Path, what: &str, max_bytes: u64) -> io::Result<String> {
    utf8(read_bytes(path, what, max_bytes)?, what)
}

/// [`read_to_string`], and from a FIFO too: a pipe such as bash's process substitution
/// (`--prompt-file <(cat a.txt b.txt)`, which names `/dev/fd/63`) is read to its end as
/// standard input is, within the same `max_bytes`, where a regular-file-only read refused
/// it. For prompt files, whose natural sources in a shell are pipes; devices, sockets
/// and directories stay refused. As with `cat`, a FIFO that no process writes waits for one.
pub fn read_text_or_pipe(path: &Path, what: &str, max_bytes: u64) -> io::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
            return read_bounded(File::open(path)?, what, max_bytes);
        }
    }
    read_to_string(path, what, max_bytes)
}

/// Reads standard input to its end as UTF-8 text, at most `max_bytes` bytes (`-` given
/// for a file, e.g. `moa generate --prompt-file -`). Errors: as [`read_to_string`].
pub fn read_stdin_to_string(what: &str, max_bytes: u64) -> io::Result<String> {
    read_bounded(io::stdin().lock(), what, max_bytes)
}

/// Reads a stream (standard input, a pipe) to its end as UTF-8 text, refusing one longer
/// than `max_bytes` (it reads at most one byte past the bound, so an endless pipe ends).
fn read_bounded(reader: impl Read, what: &str, max_bytes: u64) -> io::Result<String> {
    let mut out = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max_bytes {
        return Err(refuse(format!(
            "is more than the {max_bytes} bytes allowed for {}",
            with_article(what)
        )));
    }
    utf8(out, what)
}

/// A prompt file's text as the user message it holds: its line ends as a text file's
/// (`\r\n` and a lone `\r` read as `\n`, as Python's `open(f).read()` reads them) and its
/// trailing line ends dropped (as the shell's `--prompt "$(cat F)"` drops them), so that
/// `echo 'What is 2+2?' > F` (or Notepad's CRLF) gives `--prompt-file F` the tokens of
/// `--prompt 'What is 2+2?'`. Round 23: the file's newline was a token of the prompt (`\n`
/// 198, `\r\n` 2738 on SmolLM2) before the chat template's end of turn, and with `--raw` it
/// changed the answer. Other whitespace is kept; text inside is not touched.
pub fn prompt_text(text: &str) -> String {
    let text = if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    text.trim_end_matches('\n').to_owned()
}

/// A document's text (`moa eval --ppl-text`) as a text file's lines: line ends as in
/// [`prompt_text`] (`\r\n` and a lone `\r` read as `\n`) and the trailing line ends folded
/// to one `\n`, so the same prose saved by Notepad (CRLF), by `printf` (no final newline)
/// or with blank lines at the end gives the tokens of the file an editor writes on Linux
/// (one final `\n`, which such a file keeps unchanged). Round 24: each of those gave its own
/// perplexity (783 against 932 for CRLF on the byte-level test model). Empty when the text
/// is only line ends.
pub fn document_text(text: &str) -> String {
    let mut t = prompt_text(text);
    if !t.is_empty() {
        t.push('\n');
    }
    t
}

/// `bytes` as UTF-8 text. A UTF-8 byte-order mark is dropped (Windows editors write one;
/// serde_json refused the upstream JSON at "line 1 column 1", and a prompt file would
/// have tokenized it); UTF-16 text, which Windows PowerShell's `>` writes, is named as such
/// instead of "invalid byte at offset 0".
fn utf8(mut bytes: Vec<u8>, what: &str) -> io::Result<String> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is UTF-16 text (it starts with a UTF-16 byte-order mark, as Windows PowerShell's `>` writes): {} must be UTF-8; convert it (`iconv -f UTF-16 -t UTF-8`, or PowerShell's `Out-File -Encoding utf8`)",
                with_article(what)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is not UTF-8 text (invalid byte at offset {}): {} must be UTF-8",
                e.utf8_error().valid_up_to(),
                with_article(what)
            ),
        )
    })
}

/// `what` with its indefinite article: "a plan", "an upstream plan".
fn with_article(what: &str) -> String {
    let an = what.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {what}", if an { "an" } else { "a" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn refuses_devices_and_directories() {
        let e = read_to_string(Path::new("/dev/zero"), "plan", MAX_TEXT_BYTES).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_to_string(Path::new("/"), "plan", MAX_TEXT_BYTES).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }

    #[test]
    fn refuses_files_over_the_limit() {
        let dir = std::env::temp_dir().join(format!("moa-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("big.toml");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        let e = read_to_string(&f, "plan", 99).unwrap_err();
        assert!(
            e.to_string().contains("100 bytes, larger than the 99"),
            "{e}"
        );
        assert_eq!(read_to_string(&f, "plan", 100).unwrap().len(), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod shown_name_tests {
    use super::shown_name;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(shown_name("SmolLM2 135M"), "SmolLM2 135M");
        assert_eq!(shown_name("Mistral-Größe"), "Mistral-Größe");
        assert_eq!(
            shown_name("a\nb\0c\u{1b}[2Jd\te"),
            "a\\nb\\u{0}c\\u{1b}[2Jd\\te"
        );
    }
}

#[cfg(test)]
mod prompt_text_tests {
    use super::prompt_text;

    #[test]
    fn line_ends_read_as_a_text_files_and_trailing_ones_dropped() {
        let q = "What is 2+2?";
        for file in [
            "What is 2+2?",
            "What is 2+2?\n",
            "What is 2+2?\r\n",
            "What is 2+2?\n\n\n",
            "What is 2+2?\r",
        ] {
            assert_eq!(prompt_text(file), q, "{file:?}");
        }
        assert_eq!(prompt_text("one\r\n\r\ntwo\r\n"), "one\n\ntwo");
        assert_eq!(prompt_text("one\rtwo\n"), "one\ntwo");
        // Other whitespace is the user's: leading lines, spaces, tabs stay.
        assert_eq!(prompt_text("\n  indented\t \n"), "\n  indented\t ");
        assert_eq!(prompt_text("\n\r\n"), "");
    }

    #[test]
    fn a_documents_line_ends_fold_to_one_final_newline() {
        use super::document_text;
        let lf = "One line.\n\nA paragraph.\n";
        for file in [
            "One line.\n\nA paragraph.",
            "One line.\n\nA paragraph.\n",
            "One line.\r\n\r\nA paragraph.\r\n",
            "One line.\r\rA paragraph.\r",
            "One line.\n\nA paragraph.\n\n\n",
        ] {
            assert_eq!(document_text(file), lf, "{file:?}");
        }
        // A file an editor writes on Linux is kept as it is.
        assert_eq!(document_text(lf), lf);
        assert_eq!(document_text("\n\r\n"), "");
        assert_eq!(document_text("  x \t\n"), "  x \t\n");
    }
}

#[cfg(test)]
mod counted_tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1, "step"), "1 step");
        assert_eq!(counted(0, "step"), "0 steps");
        assert_eq!(counted(12, "KV head"), "12 KV heads");
    }
}
