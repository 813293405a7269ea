//! A new user's journey, round 16 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use common::cli::s;
use std::path::{Path, PathBuf};

common::cli::tagged!();

/// A plan of `layers` layers, 64 query / 8 KV heads of 128 (round 15's largest plan's
/// shape): its WGSL takes ≈ 0.2 s per layer to generate and check on one core.
fn wide_plan(layers: usize) -> String {
    let mut t = format!(
        "format_version = 1\n[model]\nname = \"wide\"\nlayers = {layers}\nq_heads = 64\n\
         kv_heads = 8\nhead_dim = 128\nmax_context_tokens = 131072\n[span]\nsink_tokens = 64\n\
         min_span_tokens = 128\nblock_tokens = 64\nmode = \"moa\"\nmax_new_tokens = 1024\n"
    );
    for l in 0..layers {
        let alpha: Vec<String> = (0..64)
            .map(|h| ((l * 7 + h * 3) % 6 * 128).to_string())
            .collect();
        let beta: Vec<String> = (0..64)
            .map(|h| format!("{}", ((l * 131 + h * 17) % 4097) as f64 / 4096.0))
            .collect();
        t += &format!(
            "[[layers]]\nalpha = [{}]\nbeta = [{}]\n",
            alpha.join(", "),
            beta.join(", ")
        );
    }
    t
}

/// Runs `moa-compile args` with stderr on a pseudo-terminal (stdout discarded) and
/// returns (exit code, everything written to stderr); `None` where no pseudo-terminal
/// can be opened (a container without /dev/ptmx).
#[cfg(target_os = "linux")]
fn compile_on_a_terminal(args: &[&str]) -> Option<(i32, String)> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::process::{Command, Stdio};

    // SAFETY: plain POSIX calls on descriptors this test owns; each result is checked.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 {
            return None;
        }
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = libc::ptsname(master);
        assert!(!name.is_null());
        let name = std::ffi::CStr::from_ptr(name).to_owned();
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(slave >= 0, "cannot open the terminal's slave side");
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The child holds the only slave descriptor: once it exits, reading the master side
    // ends (Linux answers EIO).
    let mut master = master;
    let mut err = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => err.extend_from_slice(&buf[..n]),
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    Some((code, String::from_utf8_lossy(&err).into_owned()))
}

/// The files under `dir` with their bytes, by path relative to it, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `moa-compile` printed nothing while it compiled: round 15's 1024-layer plan ran 229 s
/// silently. On a terminal it now redraws one status line on stderr (the target, files
/// generated or checked of all, elapsed time, ETA) once a second has passed, and erases
/// it before its summary; into a pipe, or with `--quiet` / `-q`, it prints only the
/// summary, as before. The output folder is the same either way.
#[test]
fn compile_progress_only_on_a_terminal_and_never_with_quiet() {
    let dir = scratch("progress");
    let plan = dir.join("wide.toml");
    // 24 layers: ≈ 5 s here, so the line (drawn from 1 s on) shows on faster machines too.
    std::fs::write(&plan, wide_plan(24)).unwrap();

    // stderr into a pipe: the summary line alone.
    let piped = dir.join("piped");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&piped)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("moa-compile: 24 layers -> "), "{err}");
    assert!(!err.contains('\r') && !err.contains("elapsed"), "{err}");

    #[cfg(target_os = "linux")]
    {
        let shown = dir.join("shown");
        let Some((code, err)) = compile_on_a_terminal(&[s(&plan), "-o", s(&shown)]) else {
            eprintln!(
                "no pseudo-terminal here (posix_openpt failed): the terminal half is skipped"
            );
            return;
        };
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("\r\x1b[Kmoa-compile: wgsl ")
                && err.contains(" files generated (")
                && err.contains("/73 files")
                && err.contains(" elapsed"),
            "no progress line on the terminal:\n{err:?}"
        );
        // Erased before the summary, which is the last thing written.
        let last = err.rsplit("\r\x1b[K").next().unwrap();
        assert!(last.starts_with("moa-compile: 24 layers -> "), "{err:?}");
        assert_eq!(last.trim_end().lines().count(), 1, "{err:?}");
        assert_eq!(
            tree(&piped),
            tree(&shown),
            "the progress line changed the output"
        );

        for quiet in ["--quiet", "-q"] {
            let out = dir.join(format!("quiet{quiet}"));
            let (code, err) = compile_on_a_terminal(&[s(&plan), "-o", s(&out), quiet]).unwrap();
            assert_eq!(code, 0, "{err}");
            assert!(
                !err.contains('\x1b') && !err.contains("elapsed"),
                "{quiet}: {err:?}"
            );
            assert!(err.starts_with("moa-compile: 24 layers -> "), "{err:?}");
        }
    }
}

/// The library's `compile_with_progress` gives exactly `compile`'s kernels, and reports
/// each target's files in order: generation rising to the file count, then the limits
/// check likewise.
#[test]
fn compile_with_progress_reports_every_file_and_changes_nothing() {
    use moa::codegen::{self, CompileProgress, CompileStage, Target};
    let plan_path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let plan = moa::plan::Plan::load(Path::new(plan_path)).unwrap();
    let targets = [Target::Wgsl, Target::Cuda];
    let storage = moa::lower::StorageType::F16;
    let plain = codegen::compile(&plan, &targets, storage).unwrap();
    let mut seen: Vec<CompileProgress> = Vec::new();
    let reported =
        codegen::compile_with_progress(&plan, &targets, storage, &mut |p| seen.push(*p)).unwrap();
    assert_eq!(plain.manifest_json(), reported.manifest_json());
    assert_eq!(plain.embed_rs(), reported.embed_rs());
    for t in targets {
        let files = plain.artifacts(t).len();
        for stage in [CompileStage::Generate, CompileStage::Limits] {
            let done: Vec<usize> = seen
                .iter()
                .filter(|p| p.target == t && p.stage == stage)
                .inspect(|p| assert_eq!(p.files, files, "{p:?}"))
                .map(|p| p.files_done)
                .collect();
            assert!(
                done.windows(2).all(|w| w[0] <= w[1]),
                "{t:?} {stage:?}: {done:?}"
            );
            assert_eq!(done.last(), Some(&files), "{t:?} {stage:?}: {done:?}");
        }
    }
    // Targets in the order asked, each generated before it is checked.
    let order: Vec<(Target, CompileStage)> = seen.iter().fold(Vec::new(), |mut v, p| {
        if v.last() != Some(&(p.target, p.stage)) {
            v.push((p.target, p.stage));
        }
        v
    });
    assert_eq!(
        order,
        [
            (Target::Wgsl, CompileStage::Generate),
            (Target::Wgsl, CompileStage::Limits),
            (Target::Cuda, CompileStage::Generate),
            (Target::Cuda, CompileStage::Limits),
        ]
    );
}

/// A 2-layer random model (hidden 64, vocab 300 with the byte-level tokenizer) as a
/// Hugging Face folder `dir/<name>`, tied as `moa model random` writes it.
fn tiny_folder(dir: &Path, name: &str) -> PathBuf {
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let m = moa::model::random::random_model(&c, 1);
    let path = dir.join(name);
    moa::model::random::write_hf_folder(&m, &path).unwrap();
    path
}

/// Edits `folder/config.json` with `edit`.
fn edit_config(folder: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = folder.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(json.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// The text `git clone` leaves in place of a large file when git-lfs is not installed.
const LFS_POINTER: &str = "version https://git-lfs.github.com/spec/v1\n\
    oid sha256:4d7c3f2b6f1d2e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a\n\
    size 5683968\n";

/// A model repository cloned without git-lfs holds pointer files where the weights,
/// tokenizer or GGUF should be. moa read them as data: "the header length says
/// 2336927755350992246 bytes but the file has 124 after it", "tokenizer: expected value
/// at line 1 column 1", "header field `magic` is 0x73726576 … not a GGUF file". Each now
/// says it is a Git LFS pointer and how to fetch the file.
#[test]
fn git_lfs_pointers_are_named_as_such() {
    let dir = scratch("lfs");
    let said = "is a Git LFS pointer";
    let fix = "git lfs pull";

    let weights = tiny_folder(&dir, "weights");
    std::fs::write(weights.join("model.safetensors"), LFS_POINTER).unwrap();
    // The config is printed, then the command exits 2 as for the GGUF below (round 28).
    let (code, out, err) = run("moa", &["model", "info", s(&weights)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        out.contains(said) && out.contains("5.7 MB") && out.contains(fix),
        "{out}"
    );
    assert!(
        err.contains("model.safetensors") && err.contains(said),
        "{err}"
    );
    let e = moa::model::Model::load(&weights).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains(said), "{e}");

    let tokenizer = tiny_folder(&dir, "tokenizer");
    std::fs::write(tokenizer.join("tokenizer.json"), LFS_POINTER).unwrap();
    let err = refused(
        "moa",
        &["model", "info", s(&tokenizer)],
        &["tokenizer.json", said, fix],
    );
    assert!(!err.contains("line 1 column 1"), "{err}");

    let gguf = dir.join("model.gguf");
    std::fs::write(&gguf, LFS_POINTER).unwrap();
    let err = refused(
        "moa",
        &["model", "info", s(&gguf)],
        &["model.gguf", said, fix],
    );
    assert!(!err.contains("magic"), "{err}");
}

/// `config.json` values a user (or an old exporter) writes that moa read wrongly:
/// - `"tie_word_embeddings": "true"` (a string) was read as absent, so false: the tied
///   model then failed on a missing `lm_head.weight`, naming no key. Refused naming the
///   key and the values allowed; and a missing `lm_head.weight` with no true
///   `tie_word_embeddings` names the key to set.
/// - `max_position_embeddings` past 2^30 (10^12) loaded, then every plan made from the
///   model was refused as "up.json: `model.max_context_tokens` = 4294967295", a plan field
///   the user never wrote (the u32 shape saturated). Refused at the config, with the range.
/// - A folder with only `tokenizer.model` (SentencePiece) was told to "copy in the
///   tokenizer.json"; it is told how to write one from that file.
/// - A `quantization_config` (AWQ) folder failed after every weight file was read, on an
///   unknown `.qweight` tensor; refused first, naming the method, with what moa reads.
#[test]
fn config_fields_read_as_transformers_means_them() {
    let dir = scratch("config");

    let string_tie = tiny_folder(&dir, "string-tie");
    edit_config(&string_tie, |c| {
        c.insert("tie_word_embeddings".into(), "true".into());
    });
    refused(
        "moa",
        &["model", "info", s(&string_tie)],
        &[
            "config.json",
            "`tie_word_embeddings`",
            "\"true\"",
            "expected true or false",
        ],
    );

    let untied = tiny_folder(&dir, "untied");
    edit_config(&untied, |c| {
        c.remove("tie_word_embeddings");
    });
    let e = moa::model::Model::load(&untied).err().unwrap().to_string();
    assert!(
        e.contains("lm_head.weight") && e.contains("\"tie_word_embeddings\": true"),
        "{e}"
    );

    let long = tiny_folder(&dir, "long");
    edit_config(&long, |c| {
        c.insert(
            "max_position_embeddings".into(),
            1_000_000_000_000u64.into(),
        );
    });
    refused(
        "moa",
        &["model", "info", s(&long)],
        &[
            "config.json",
            "max_position_embeddings",
            "1000000000000",
            "allowed 1..=1073741824",
        ],
    );
    let up = dir.join("up.json");
    std::fs::write(
        &up,
        r#"{"alphas": [[64, 64, 64], [64, 64, 64]], "betas": [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]}"#,
    )
    .unwrap();
    let err = refused(
        "moa",
        &["plan", "import", s(&up), "--model", s(&long)],
        &["max_position_embeddings", "allowed 1..=1073741824"],
    );
    assert!(!err.contains("4294967295"), "{err}");

    let sp = tiny_folder(&dir, "sentencepiece");
    std::fs::remove_file(sp.join("tokenizer.json")).unwrap();
    std::fs::write(sp.join("tokenizer.model"), [0u8, 1, 2, 3]).unwrap();
    let (code, out, err) = run("moa", &["model", "info", s(&sp)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tokenizer.model") && out.contains("save_pretrained"),
        "{out}"
    );
    let e = moa::model::ModelTokenizer::load(&sp)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tokenizer.model") && e.contains("save_pretrained"),
        "{e}"
    );

    let awq = tiny_folder(&dir, "awq");
    edit_config(&awq, |c| {
        c.insert(
            "quantization_config".into(),
            serde_json::json!({"quant_method": "awq", "bits": 4, "group_size": 128}),
        );
    });
    let (code, out, err) = run("moa", &["model", "info", s(&awq)]);
    assert_eq!(code, 0, "the shape is still read: {err}");
    assert!(out.contains("layers           2"), "{out}");
    let e = moa::model::Model::load(&awq).err().unwrap().to_string();
    assert!(
        e.contains("quantization_config") && e.contains("awq, 4 bits") && e.contains("Q4_K"),
        "{e}"
    );
}

/// Runs `bin args` with `stdin` as standard input; returns (exit code, stdout, stderr).
fn run_with_stdin(bin: &str, args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let exe = match bin {
        "moa" => env!("CARGO_BIN_EXE_moa"),
        _ => env!("CARGO_BIN_EXE_moa-compile"),
    };
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `moa plan import` without `-o` prints the plan, but nothing could take it from a pipe:
/// `moa-compile -` said "cannot read plan `-`: No such file", and `/dev/stdin` at the end
/// of a pipe "is a FIFO (named pipe): moa reads a plan only from a regular file". The
/// plan commands that read their input once take `-` (standard input) and pipes:
/// import → show → compile chain, and compile the same bytes as from the file.
#[test]
fn plan_commands_chain_through_pipes() {
    let dir = scratch("pipes");
    let plan_path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let toml = std::fs::read(plan_path).unwrap();

    let from_file = dir.join("from-file");
    let (code, _, err) = run("moa-compile", &[plan_path, "-o", s(&from_file)]);
    assert_eq!(code, 0, "{err}");
    let from_pipe = dir.join("from-pipe");
    let (code, _, err) = run_with_stdin("moa-compile", &["-", "-o", s(&from_pipe)], &toml);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tree(&from_file), tree(&from_pipe));

    let (code, out, err) =
        run_with_stdin("moa", &["plan", "show", "-", "--prompt-len", "100"], &toml);
    assert_eq!(code, 0, "{err}");
    let (_, want, _) = run("moa", &["plan", "show", plan_path, "--prompt-len", "100"]);
    assert_eq!(String::from_utf8_lossy(&out), want);

    // export | import: the upstream JSON from standard input.
    let (code, json, err) = run("moa", &["plan", "export", plan_path]);
    assert_eq!(code, 0, "{err}");
    let (code, imported, err) = run_with_stdin(
        "moa",
        &[
            "plan",
            "import",
            "-",
            "--layers",
            "3",
            "--heads",
            "8",
            "--kv-heads",
            "2",
            "--head-dim",
            "64",
            "--max-context",
            "1024",
        ],
        json.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&imported).contains("[[layers]]"));

    // Bad text from a pipe is named as standard input.
    let (code, _, err) = run_with_stdin(
        "moa-compile",
        &["-", "-o", s(&dir.join("bad"))],
        b"[model\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("standard input (-)"), "{err}");
}

/// Two report flags naming one file: `moa eval --json r --markdown r` (and `moa validate
/// --output t --best t`) wrote the second over the first after the whole run. Refused
/// before any work, also through another spelling of the path.
#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = scratch("outputs");
    let model = tiny_folder(&dir, "m");
    let plan = dir.join("p.toml");
    std::fs::write(
        &plan,
        "format_version = 1\n[model]\nlayers = 2\nq_heads = 9\nkv_heads = 3\nhead_dim = 64\n\
         max_context_tokens = 8192\n[span]\nsink_tokens = 4\nmin_span_tokens = 16\n\
         block_tokens = 16\nmode = \"moa\"\nmax_new_tokens = 16\n\
         [[layers]]\nalpha = [0, 0, 0, 0, 0, 0, 0, 0, 0]\nbeta = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]\n\
         [[layers]]\nalpha = [0, 0, 0, 0, 0, 0, 0, 0, 0]\nbeta = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]\n",
    )
    .unwrap();
    let r = dir.join("r.txt");
    let also = format!("{}/./r.txt", dir.display());
    refused(
        "moa",
        &[
            "eval",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--json",
            s(&r),
            "--markdown",
            &also,
        ],
        &["--json", "--markdown", "name one file"],
    );
    let calib = dir.join("c.jsonl");
    std::fs::write(&calib, "").unwrap();
    refused(
        "moa",
        &[
            "validate",
            "--model",
            s(&model),
            "--calib",
            s(&calib),
            "--plan",
            s(&plan),
            "--output",
            s(&r),
            "--best",
            s(&r),
        ],
        &["--output", "--best", "name one file"],
    );
}

/// `moa eval --tasks passkey,passkey` scored the pass-key family twice ("3 plans × 2
/// families"), every row repeated; a repeated family is taken once, as a repeated length
/// is. The run's first line says so; the test stops it there.
#[test]
fn a_repeated_task_family_is_scored_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = scratch("families");
    let model = tiny_folder(&dir, "m");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moa"))
        .env("MOA_CACHE", dir.join("cache"))
        .args([
            "eval",
            "--model",
            s(&model),
            "--tasks",
            "passkey,passkey",
            "--lengths",
            "256",
            "--depths",
            "1",
            "--ppl-rows",
            "0",
            "--no-uniform",
            "--quiet",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.starts_with("moa eval: ") && line.contains(" × ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // "1 family", not "1 families" (round 28's plural slips).
    assert!(seen.contains("× 1 family ×"), "{seen}");
}

/// `moa generate --temperature 1e39` (past f32's largest) was refused as "`temperature` =
/// inf is out of range", a value the user never typed; it names the flag and why.
#[test]
fn a_temperature_past_f32_is_named_as_typed() {
    let dir = scratch("temperature");
    let model = tiny_folder(&dir, "m");
    for (flag, v) in [("--temperature", "1e39"), ("--top-p", "1e39")] {
        let mut args = vec![
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--raw",
            "--prompt",
            "hi",
            flag,
            v,
        ];
        if flag == "--top-p" {
            args.extend(["--temperature", "1"]);
        }
        let err = refused("moa", &args, &[flag, "largest 32-bit float"]);
        assert!(!err.contains("building the engine"), "{err}");
    }
}

/// `moa eval` runs each length's depths as one batch, but counted no memory: on a CPU
/// adapter (whose GPU memory is the machine's) a large `--depths` could end in the
/// kernel's OOM killer with no message, as `moa generate` did before its check. The same
/// count now refuses it before the model loads, naming the flags and the parts.
#[test]
fn eval_counts_the_memory_of_its_batches() {
    // On a GPU with memory of its own the batches are the GPU's, counted by its
    // allocations, not here: the run would start.
    let Ok(ctx) = moa::runtime::wgpu::WgpuContext::new() else {
        eprintln!("no wgpu adapter: skipped");
        return;
    };
    if ctx.adapter_info().device_type != wgpu::DeviceType::Cpu {
        eprintln!("`{}` is not a CPU adapter: skipped", ctx.adapter_name());
        return;
    }
    drop(ctx);
    let dir = scratch("eval-memory");
    let model = tiny_folder(&dir, "m");
    let (config, _) = moa::model::read_config(&model).unwrap();
    let len = config.context_length.to_string();
    // 3000 rows of the whole context: about 100 GB of KV cache and activations for this
    // shape, more than the machines running this test have.
    let err = refused(
        "moa",
        &[
            "eval",
            "--model",
            s(&model),
            "--tasks",
            "passkey",
            "--lengths",
            &len,
            "--depths",
            "3000",
            "--ppl-rows",
            "0",
            "--no-uniform",
            "--quiet",
        ],
        &[
            "--depths 3000 at --lengths",
            "runs as one batch",
            "needs about",
            "KV cache",
        ],
    );
    assert!(!err.contains("plans ×"), "started scoring:\n{err}");
}
