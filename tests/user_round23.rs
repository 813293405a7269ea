//! A new user's journey, round 23 (benches/RESULTS.md): the library as a Rust app uses it
//! from its own crate (`cargo doc`, the crate-root API, the error types a caller matches
//! on), `moa-compile` in CI (determinism, plan TOML edge cases), prompt files, and two
//! processes over one output folder; what it found wrong, each pinned here. None of these
//! needs the fetched model or a GPU.

mod common;

#[allow(unused_imports)]
use common::cli::s;
use std::path::Path;

common::cli::tagged!();

/// The variants of `pub enum name` in `file` (relative to the crate) that have no `///`
/// doc comment: read at the enum's first indent, where a doc line marks the next variant
/// documented (attributes between them do not count) and a variant's end clears it.
fn undocumented_variants(file: &str, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with(&format!("pub enum {name} {{")));
    assert!(lines.next().is_some(), "{file}: no `pub enum {name}`");
    let (mut missing, mut documented) = (Vec::new(), false);
    for line in lines.take_while(|l| *l != "}") {
        let Some(rest) = line.strip_prefix("    ") else {
            continue;
        };
        if rest.starts_with("///") {
            documented = true;
        } else if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
            if !documented {
                missing.push(rest.split([' ', '(', '{', ',']).next().unwrap().to_string());
            }
            documented = false;
        } else if rest.starts_with('}') {
            documented = false;
        }
    }
    missing
}

/// Round 23: the crate root documents the API an app uses (it was a `//` comment, which
/// `cargo doc` does not show), and every variant of the errors a caller matches on says
/// when it happens (`EngineError`'s `TooLong`, `Model`, … had no word). `cargo doc` runs
/// with `-D warnings` in CI (scripts/test.sh), where it had 25 broken, private or ambiguous links.
#[test]
fn the_api_an_app_matches_on_is_documented() {
    for (file, name) in [
        ("src/runtime/engine.rs", "EngineError"),
        ("src/model/mod.rs", "ModelError"),
        ("src/plan/mod.rs", "PlanError"),
        ("src/codegen/mod.rs", "CodegenError"),
        ("src/codegen/mod.rs", "Target"),
        ("src/codegen/mod.rs", "Phase"),
    ] {
        let missing = undocumented_variants(file, name);
        assert!(
            missing.is_empty(),
            "{file}: `{name}` variants without a doc comment: {missing:?}"
        );
    }
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for item in [
        "[`compile`]",
        "[`WgpuEngine::with_kernels`]",
        "[`EngineError::TooLong`]",
        "```no_run",
    ] {
        assert!(
            lib.lines()
                .any(|l| l.starts_with("//!") && l.contains(item)),
            "src/lib.rs's crate documentation does not name {item}"
        );
    }
    let ci = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test.sh"))
        .unwrap();
    assert!(
        ci.lines()
            .any(|l| l.contains("RUSTDOCFLAGS=\"-D warnings\"") && l.contains("cargo doc")),
        "scripts/test.sh does not run `cargo doc` with -D warnings"
    );
}

/// `moa generate --dense --raw --max-new-tokens 1 --print-ids` on `model` with one
/// `--prompt-file`: the `ids[0] prompt` line.
fn prompt_ids_of_file(model: &Path, file: &Path) -> String {
    let (code, out, err) = run(
        "moa",
        &[
            "generate",
            "--dense",
            "--raw",
            "--max-new-tokens",
            "1",
            "--print-ids",
            "--model",
            s(model),
            "--prompt-file",
            s(file),
        ],
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .chain(err.lines())
        .find(|l| l.starts_with("ids[0] prompt"))
        .unwrap_or_else(|| panic!("no prompt ids in:\n{out}\n{err}"))
        .to_string()
}

/// Round 23: a prompt file's final newline (`echo TEXT > F`, every editor) was a token of
/// the prompt, and Windows line ends another (`\r\n`: 2738 on SmolLM2, where `--raw`
/// answered differently). They read as a text file's now: CRLF as LF, the trailing line
/// ends dropped, so the file gives the ids of the same text without them; inner lines stay.
#[test]
fn a_prompt_files_line_ends_are_not_prompt_tokens() {
    let dir = scratch("prompt-line-ends");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(5, true).write_gguf(&model, |_, _| {});
    let write = |name: &str, text: &[u8]| {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    let plain = prompt_ids_of_file(&model, &write("plain.txt", b"hello world\nhello"));
    for (name, text) in [
        ("lf.txt", &b"hello world\nhello\n"[..]),
        ("crlf.txt", b"hello world\r\nhello\r\n"),
        (
            "bom-crlf-twice.txt",
            b"\xef\xbb\xbfhello world\r\nhello\r\n\r\n",
        ),
    ] {
        let ids = prompt_ids_of_file(&model, &write(name, text));
        assert_eq!(
            ids, plain,
            "{name}: its line ends changed the prompt's tokens"
        );
    }
    // The inner line end is text: without it the prompt differs.
    let one_line = prompt_ids_of_file(&model, &write("one-line.txt", b"hello worldhello"));
    assert_ne!(one_line, plain);
}

/// Round 23: an output file under a path that is a file (`-o notes.txt/plan.json`) was
/// said to be under a folder that "does not exist", though the path was there; it is named
/// as the file it is, for every writer (the checks before work and the final write), as
/// `moa-compile -o FILE/x` already did.
#[test]
fn an_output_under_a_file_names_the_file() {
    let dir = scratch("output-under-file");
    let file = dir.join("notes.txt");
    std::fs::write(&file, "keep").unwrap();
    let plan = dir.join("p.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let json = dir.join("p.json");
    let (code, _, err) = run("moa", &["plan", "export", s(&plan), "-o", s(&json)]);
    assert_eq!(code, 0, "{err}");
    let is_file = format!("`{}` is a file, not a folder", s(&file));
    // PLAN, JSON and FILE/… stand for the paths (which may hold spaces).
    for line in [
        "plan export PLAN -o FILE/x.json",
        "plan import JSON --layers 3 --heads 8 --kv-heads 2 --head-dim 64 --max-context 1024 \
         --max-new-tokens 32 -o FILE/y.toml",
        "validate --calib JSON --plan PLAN -o FILE/deep/v.tsv",
        "eval --backend cpu --markdown FILE/m.md",
    ] {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|w| match w {
                "PLAN" => s(&plan).to_string(),
                "JSON" => s(&json).to_string(),
                _ => match w.strip_prefix("FILE/") {
                    Some(rest) => s(&file.join(rest)).to_string(),
                    None => w.to_string(),
                },
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = refused("moa", &args, &[&is_file]);
        assert!(!err.contains("does not exist"), "{line}:\n{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

/// Round 23: two `moa-compile`s of different plans into one folder at once both exited 0,
/// and in 3 of 15 tries left a mixture of the two plans' kernels that neither's `--check`
/// matched (loaders refuse it by the sha256s, but nothing said so). A compile now holds
/// an exclusive lock (`flock`) on the folder while it writes; another waits, saying so, then
/// writes its own whole output, and its notes count what the folder held when its turn
/// came (the other plan's kernels), not what it held before. Here the test holds the lock
/// as the other compile would, and puts that compile's output in the folder meanwhile.
#[test]
#[cfg(unix)]
fn a_compile_waits_for_another_writing_its_folder() {
    let dir = scratch("compile-lock");
    let (out, prior) = (dir.join("out"), dir.join("prior"));
    std::fs::create_dir_all(&out).unwrap();
    let (plan_a, plan_b) = (dir.join("a.toml"), dir.join("b.toml"));
    let a = common::cli::fixture_gqa();
    let b = a.replace("alpha = [32, 32, 32, 32", "alpha = [16, 32, 32, 32");
    assert_ne!(a, b);
    std::fs::write(&plan_a, &a).unwrap();
    std::fs::write(&plan_b, &b).unwrap();
    let wgsl = ["--target", "wgsl"];
    let (code, _, err) = run(
        "moa-compile",
        &[&[s(&plan_a), "-o", s(&prior)], &wgsl[..]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let held = std::fs::File::open(&out).unwrap();
    held.lock().unwrap();
    let err_path = dir.join("stderr.txt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .args([s(&plan_b), "-o", s(&out), "--target", "wgsl"])
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let waiting = "is being written by another process";
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&err_path)
        .unwrap()
        .contains(waiting)
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "moa-compile ended while another held its folder:\n{}",
            std::fs::read_to_string(&err_path).unwrap()
        );
        assert!(
            t0.elapsed().as_secs() < 120,
            "moa-compile never said it waits"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "it wrote into the folder another process held"
    );
    // The other compile's turn: plan A's whole output lands in the folder.
    std::fs::create_dir_all(out.join("wgsl")).unwrap();
    for e in std::fs::read_dir(prior.join("wgsl")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), out.join("wgsl").join(e.file_name())).unwrap();
    }
    for f in ["manifest.json", "kernels.rs"] {
        std::fs::copy(prior.join(f), out.join(f)).unwrap();
    }
    drop(held);
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("held the kernels of another version of this model's plan"),
        "the notes did not count what the folder held when its turn came:\n{err}"
    );
    let (code, _, err) = run(
        "moa-compile",
        &[&[s(&plan_b), "-o", s(&out), "--check"], &wgsl[..]].concat(),
    );
    assert_eq!(code, 0, "{err}");
}

/// Round 23: two `moa model random` with one new `-o` at once: the second found the
/// folder made by the first when it moved its own in, and said "cannot read `m`:
/// Directory not empty (os error 39)". It says another process filled the folder, which
/// is kept, and leaves nothing of its own. (The race's end is made here by a folder that
/// holds a file when the write ends; the command refuses such a folder at its start.)
#[test]
fn a_random_model_whose_folder_another_run_filled_says_so() {
    let dir = scratch("random-filled");
    let out = dir.join("m");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("config.json"), "theirs").unwrap();
    let config = common::tiny::tiny(5, true).config(true);
    let model = moa::model::random::random_model(&config, 1);
    let err = moa::model::random::write_hf_folder(&model, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("was filled by another process") && err.contains(s(&out)),
        "{err}"
    );
    assert!(!err.contains("cannot read"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("config.json")).unwrap(),
        "theirs"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("m")],
        "a partial folder is left"
    );
}

/// Round 23, the engine API misused as an app might (`misuse/` in benches/new-user/s37):
/// `Engine::start(&[], …)` said "every prompt needs at least one token", of no prompt at
/// all; and a prefill prompt longer than the length given to `start` (within N) was
/// refused as a tensor of 9216 bytes "above this adapter's storage binding limit of
/// 134217728 bytes". Each says what it is now; a prompt of the started length still runs.
#[test]
fn engine_misuse_is_named_as_such() {
    use moa::{Engine, Sampling, WgpuContext, WgpuEngine};
    let dir = scratch("engine-misuse");
    let path = dir.join("tiny.gguf");
    common::tiny::tiny(5, true).write_gguf(&path, |_, _| {});
    let model = moa::Model::load(&path).unwrap();
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required");
    let engine = WgpuEngine::new(&ctx, &model, None, true).unwrap();
    let err = |r: Result<moa::Request, moa::EngineError>| r.err().unwrap().to_string();
    let e = err(engine.start(&[], 2, 0));
    assert!(
        e.contains("at least one row") && e.contains("`prompt_lens` is empty"),
        "{e}"
    );
    let e = err(engine.start(&[3, 0], 2, 0));
    assert!(e.contains("`prompt_lens[1]` is 0"), "{e}");
    let mut req = engine.start(&[3], 2, 0).unwrap();
    let e = engine
        .prefill_tokens(&mut req, &[vec![1, 2, 3, 4]], Sampling::greedy())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("prompt 0 has 4 tokens, more than the 3") && !e.contains("binding limit"),
        "{e}"
    );
    let first = engine
        .prefill_tokens(&mut req, &[vec![1, 2, 3]], Sampling::greedy())
        .unwrap();
    assert_eq!(first.len(), 1);
}
