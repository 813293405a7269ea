//! A new user's journey, round 12 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::PathBuf;

common::cli::tagged!();

/// The file with tensor `name`'s ggml type id rewritten to `ty` (its tensor info: the name,
/// the dimension count, one u64 per dimension, then the type).
fn with_ggml_type(mut b: Vec<u8>, name: &str, dims: usize, ty: u32) -> Vec<u8> {
    let key = name.as_bytes();
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8 * dims;
    b[at..at + 4].copy_from_slice(&ty.to_le_bytes());
    b
}

/// Imports a two-layer upstream MoA plan (four heads) for the GGUF `model` into
/// `dir/p.toml` with `moa plan import`: the plan's path, exit code and stderr.
fn import_upstream_plan(dir: &std::path::Path, model: &str) -> (PathBuf, i32, String) {
    let up = dir.join("up.json");
    std::fs::write(
        &up,
        r#"{"alphas": [[0, 64, 0, 32], [64, 0, 0, 0]], "betas": [[0.5, 0.0, 0.25, 0.5], [0.0, 1.0, 1.0, 0.5]]}"#,
    )
    .unwrap();
    let plan = dir.join("p.toml");
    let (code, _, err) = run(
        "moa",
        &[
            "plan",
            "import",
            up.to_str().unwrap(),
            "--model",
            model,
            "--max-new-tokens",
            "32",
            "-o",
            plan.to_str().unwrap(),
        ],
    );
    (plan, code, err)
}

/// A GGUF file with one tensor of a type moa cannot read (IQ4_XS, IQ3_S) was refused
/// whole by `moa model info`, so a user could not see its config or which of its types
/// moa reads. Now info lists it, marking those types and naming the first such tensor;
/// `moa plan import` takes its shape with a note (a plan needs only the shape); and
/// `generate` refuses it before anything loads, naming the tensor, its type, how many
/// others there are and the types moa reads.
#[test]
fn a_gguf_with_an_unreadable_tensor_is_listed_and_refused_by_name() {
    let dir = scratch("iq");
    let good = dir.join("good.gguf");
    common::tiny::tiny(3, true).write_gguf(&good, |_, _| {});
    let bytes = std::fs::read(&good).unwrap();
    let bytes = with_ggml_type(bytes, "blk.1.attn_v.weight", 2, 23);
    let bytes = with_ggml_type(bytes, "blk.0.ffn_up.weight", 2, 21);
    let model = dir.join("iq.gguf");
    std::fs::write(&model, bytes).unwrap();
    let m = model.to_str().unwrap();

    let (code, out, err) = run("moa", &["model", "info", m]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "layers           2",
        "kv_heads         2",
        "IQ4_XS x 1 (moa cannot read)",
        "IQ3_S x 1 (moa cannot read)",
        "Q8_0 x ",
        "unreadable       2 tensors of a type moa cannot read",
        "`blk.0.ffn_up.weight`, IQ3_S",
        "llama-quantize",
    ] {
        assert!(out.contains(want), "`{want}` not in:\n{out}");
    }

    let (plan, code, err) = import_upstream_plan(&dir, m);
    assert_eq!(code, 0, "{err}");
    assert!(plan.is_file());
    for want in ["note", "`blk.0.ffn_up.weight`", "IQ3_S", "allowed F32"] {
        assert!(err.contains(want), "`{want}` not in:\n{err}");
    }

    let gen = [
        "generate", "--model", m, "--dense", "--raw", "--prompt", "hi",
    ];
    refused(
        "moa",
        &gen,
        &[
            m,
            "`blk.0.ffn_up.weight` (#",
            "IQ3_S (type 21)",
            "and 1 more tensor moa cannot read: IQ4_XS x 1",
            "allowed F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K",
        ],
    );
    // The library's load says the same before reading any weight.
    let e = moa::Model::load(&model).unwrap_err().to_string();
    assert!(e.contains("IQ3_S (type 21)"), "{e}");
}

/// `moa generate --prompt-file -` with a terminal on standard input waited silently for an
/// end of file: it looked like a hang. It now says on stderr what it reads and how to end
/// it, only when standard input is a terminal (a pipe gets no such line).
#[cfg(target_os = "linux")]
#[test]
fn prompt_from_a_terminal_says_how_to_end_it() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    use std::process::{Command, Stdio};

    let dir = scratch("tty");
    let model = dir.join("tiny.gguf");
    common::tiny::tiny(3, true).write_gguf(&model, |_, _| {});
    let m = model.to_str().unwrap();
    let args = [
        "generate",
        "--model",
        m,
        "--dense",
        "--raw",
        "--prompt-file",
        "-",
    ];
    let said = "reading the prompt from standard input (--prompt-file -)";

    // A pipe: an empty prompt is refused at once, and nothing is said about a terminal.
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        .env("MOA_CACHE", dir.join("cache"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is empty"), "{err}");
    assert!(!err.contains(said), "{err}");

    // A pseudo-terminal: the line comes, then Ctrl-D on an empty line ends the (empty)
    // prompt, which is refused as above.
    // SAFETY: plain POSIX calls on a descriptor this test owns; each result is checked.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 {
            // A container without /dev/ptmx: the pipe half above still ran.
            eprintln!(
                "no pseudo-terminal here (posix_openpt failed): the terminal half is skipped"
            );
            return;
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_moa"))
        .env("MOA_CACHE", dir.join("cache"))
        .args(args)
        .stdin(Stdio::from(slave))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut err = Vec::new();
    let mut buf = [0u8; 256];
    let start = std::time::Instant::now();
    while !String::from_utf8_lossy(&err).contains(said) {
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0 && start.elapsed().as_secs() < 60,
            "no line about the terminal on stderr:\n{}",
            String::from_utf8_lossy(&err)
        );
        err.extend_from_slice(&buf[..n]);
    }
    let mut master = master;
    master.write_all(&[4]).unwrap(); // Ctrl-D: end of file on an empty line
    stderr.read_to_end(&mut err).unwrap();
    let status = child.wait().unwrap();
    let err = String::from_utf8_lossy(&err);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("Ctrl-D") && err.contains("is empty"), "{err}");
}

/// A 2-layer random model (hidden 64, vocab 300 with the byte-level tokenizer) as a
/// Hugging Face folder `dir/m`.
fn tiny_folder(dir: &std::path::Path) -> PathBuf {
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let m = moa::model::random::random_model(&c, 1);
    let path = dir.join("m");
    moa::model::random::write_hf_folder(&m, &path).unwrap();
    path
}

/// `moa pipeline` skips a step whose output is in the work folder, so a second run with
/// `--samples 5` where the first had 3 (or another `--seed`, `--source`, `--text-samples`)
/// profiled, optimized and validated the first run's samples, saying only "reusing
/// `calib.jsonl`". It now refuses, naming the file, what differs and how to redo.
#[test]
fn pipeline_refuses_to_reuse_a_calibration_made_with_other_settings() {
    let dir = scratch("pipeline-reuse");
    let model = tiny_folder(&dir);
    let m = model.to_str().unwrap();
    let w = dir.join("w");
    std::fs::create_dir_all(&w).unwrap();
    let calib = w.join("calib.jsonl");
    let (code, _, err) = run(
        "moa",
        &[
            "calib",
            "--model",
            m,
            "--out",
            calib.to_str().unwrap(),
            "--lengths",
            "256",
            "--samples",
            "1",
            "--max-new-tokens",
            "2",
            "--source",
            "generated",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let pipeline = |extra: &[&str], needles: &[&str]| {
        let mut args = vec![
            "pipeline",
            "--model",
            m,
            "--workdir",
            w.to_str().unwrap(),
            "--plans-dir",
            dir.to_str().unwrap(),
            "--profile-lengths",
            "256",
            "--validate-length",
            "512",
            "--densities",
            "0.5",
            "--source",
            "generated",
        ];
        args.extend_from_slice(extra);
        let err = refused("moa", &args, needles);
        assert!(!err.contains("reusing"), "{err}");
    };
    let file = format!("`{}` was made with other settings", calib.display());
    pipeline(
        &["--samples", "2"],
        &[
            &file,
            "it holds 1 retrieval samples of length 256 and this run asks for 2",
            "delete it",
        ],
    );
    pipeline(
        &["--samples", "1", "--seed", "7"],
        &["sample `passkey-256-0` was drawn with another --seed than 7"],
    );
    pipeline(
        &["--samples", "1", "--passkey-source", "generated"],
        &["--passkey-source gives `generated (seeded sentence generator)`"],
    );
    pipeline(
        &["--samples", "1", "--text-samples", "1"],
        &["it holds 0 text samples of length 256 and --text-samples is 1"],
    );
}

/// A random-weight model's perplexity (≈ 2.7e58 in round 12) printed as a 59-digit number
/// in `moa eval`'s table and progress lines; from 10^6 on it has an exponent.
#[test]
fn a_huge_perplexity_is_shown_with_an_exponent() {
    use moa::eval::retrieval::fmt_perplexity;
    assert_eq!(fmt_perplexity(12.3456), "12.346");
    assert_eq!(fmt_perplexity(999_999.0), "999999.000");
    assert_eq!(fmt_perplexity(2.6527690117e58), "2.653e58");
    assert_eq!(fmt_perplexity(f64::INFINITY), "inf");
}

/// A sharded Hugging Face folder whose `model.safetensors.index.json` names a shard that
/// is not there (a download cut short) said only "cannot read `…-00002-of-00002…`: No such
/// file"; a `weight_map` that is not an object said "missing metadata key `weight_map`";
/// a shard named `../../x` read a file outside the folder, and a shard that is not a
/// string was skipped without a word. Each is now refused naming the index, the shard
/// and a tensor it holds.
#[test]
fn a_shard_index_names_its_missing_or_outside_shards() {
    let dir = scratch("shards");
    let tiny = common::tiny::tiny(3, true);
    let load = |name: &str, edit: &dyn Fn(&std::path::Path)| -> String {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        tiny.write_hf(&d, candle_core::DType::F16, true);
        edit(&d);
        let e = moa::Model::load(&d).unwrap_err().to_string();
        assert!(e.contains("model.safetensors.index.json"), "{e}");
        e
    };
    let index = |d: &std::path::Path, f: &dyn Fn(&mut serde_json::Value)| {
        let p = d.join("model.safetensors.index.json");
        let mut j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut j);
        std::fs::write(&p, j.to_string()).unwrap();
    };
    let e = load("missing", &|d| {
        std::fs::remove_file(d.join("model-00002-of-00002.safetensors")).unwrap();
    });
    assert!(
        e.contains("names the shard `model-00002-of-00002.safetensors`")
            && e.contains("a download cut short"),
        "{e}"
    );
    // Built, not a literal: tests/self_contained.rs refuses a path literal that climbs.
    let outside = ["..", "..", "x.safetensors"].join("/");
    let e = load("outside", &|d| {
        index(d, &|j| {
            j["weight_map"]["model.norm.weight"] = outside.clone().into();
        })
    });
    assert!(
        e.contains(&format!("tensor `model.norm.weight` the shard `{outside}`, which is not a file inside the folder")),
        "{e}"
    );
    let e = load("number", &|d| {
        index(d, &|j| j["weight_map"]["model.norm.weight"] = 3.into())
    });
    assert!(e.contains("the shard 3: expected a file name"), "{e}");
    let e = load("not-object", &|d| index(d, &|j| j["weight_map"] = 5.into()));
    assert!(e.contains("`weight_map` is 5: expected an object"), "{e}");
}

/// `moa profile -o DIR` again with another `--block` said "`DIR/samples/256/passkey-256-0
/// .safetensors` was profiled for another model, length or block size: delete it" (one
/// file of the store, and which of the three?); it now names the block sizes and the
/// store folder. `--max-samples 0` was refused as "has no calibration sample of length
/// 256 … it has lengths {256}"; it is refused as itself.
#[test]
fn profile_names_what_differs_in_its_store_and_refuses_max_samples_0() {
    let dir = scratch("profile-store");
    let model = tiny_folder(&dir);
    let m = model.to_str().unwrap();
    let calib = dir.join("c.jsonl");
    let c = calib.to_str().unwrap();
    let (code, _, err) = run(
        "moa",
        &[
            "calib",
            "--model",
            m,
            "--out",
            c,
            "--lengths",
            "256",
            "--samples",
            "1",
            "--max-new-tokens",
            "2",
            "--source",
            "generated",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = dir.join("p");
    let o = out.to_str().unwrap();
    let profile = |extra: &[&str]| {
        let mut args = vec![
            "profile",
            "--model",
            m,
            "--calib",
            c,
            "--lengths",
            "256",
            "-o",
            o,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = profile(&["--block", "32"]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run("moa", &argv);
    assert_eq!(code, 0, "{err}");
    let store = out.join("samples").display().to_string();
    let args = profile(&["--block", "64"]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "moa",
        &argv,
        &[
            "was profiled with --block 32 and this run gives --block 64",
            &format!("its samples folder `{store}`"),
        ],
    );
    let args = profile(&["--max-samples", "0"]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "moa",
        &argv,
        &["--max-samples 0 leaves no sample to profile: allowed 1 or more"],
    );
}

/// `moa-compile -o` into a folder that cannot be made (a name past the file system's 255
/// bytes, a read-only parent) said "cannot write `OUT/wgsl/l00_prefill.wgsl`", blaming
/// a kernel file; it names the folder that could not be made.
#[test]
fn compile_names_the_output_folder_it_cannot_make() {
    let dir = scratch("compile-folder");
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let long = dir.join("x".repeat(300));
    let out = long.join("out");
    let err = refused(
        "moa-compile",
        &[plan, "-o", out.to_str().unwrap(), "--target", "wgsl"],
        &[&format!("cannot create the folder `{}`", long.display())],
    );
    assert!(!err.contains("cannot write"), "{err}");
}

/// `moa calib --out DIR` (a folder) answered every prompt (minutes on a real model) before
/// "cannot write `DIR`: Is a directory"; `moa eval --json DIR` scored every plan first.
/// Both are refused before any work.
#[test]
fn calib_and_eval_refuse_a_folder_as_output_file_before_any_work() {
    let dir = scratch("calib-out");
    let model = tiny_folder(&dir);
    let m = model.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let args = [
        "calib",
        "--model",
        m,
        "--out",
        d,
        "--lengths",
        "256",
        "--samples",
        "1",
        "--source",
        "generated",
    ];
    let err = refused("moa", &args, &[&format!("--out `{d}` is a folder")]);
    assert!(!err.contains("sample 1/"), "answered first:\n{err}");
    refused(
        "moa",
        &["eval", "--model", m, "--json", d],
        &[&format!("--json `{d}` is a folder")],
    );
}

/// `moa calib --lengths 100` on a byte-level tokenizer passed the length check (at least
/// 64 prompt tokens) and failed with "the prompt template alone needs more than 84
/// tokens", naming no length; it names the length and what to give (round 22: the least
/// length, from the tokenizer's pass-key prompt, before any work).
#[test]
fn a_calibration_length_too_short_for_the_tokenizer_names_itself() {
    let dir = scratch("calib-short");
    let model = tiny_folder(&dir);
    let out = dir.join("c.jsonl");
    let args = [
        "calib",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--lengths",
        "100",
        "--samples",
        "1",
        "--source",
        "generated",
    ];
    refused(
        "moa",
        &args,
        // Since round 22 the length check itself counts this tokenizer's pass-key prompt.
        &[
            "--lengths 100 is too short: allowed ",
            "the pass-key prompt's fixed text with this model's tokenizer",
            "the --max-new-tokens 16 answer tokens",
        ],
    );
}

/// `moa pipeline --plans-dir FILE` ran the whole pipeline (1.5 h on SmolLM2; 48 s on the
/// round's 4-layer model) and failed "creating FILE: File exists" when it wrote the first
/// plan; `--workdir FILE` said the same without naming the flag. Both are refused first.
#[test]
fn pipeline_refuses_a_file_as_plans_dir_or_workdir_before_any_work() {
    let dir = scratch("pipeline-dirs");
    let model = tiny_folder(&dir);
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let w = dir.join("w");
    for (flag, extra) in [
        (
            "--plans-dir",
            ["--plans-dir", f, "--workdir", w.to_str().unwrap()],
        ),
        (
            "--workdir",
            ["--workdir", f, "--plans-dir", dir.to_str().unwrap()],
        ),
    ] {
        let mut args = vec![
            "pipeline",
            "--model",
            model.to_str().unwrap(),
            "--profile-lengths",
            "256",
            "--validate-length",
            "512",
            "--densities",
            "0.5",
            "--source",
            "generated",
        ];
        args.extend(extra);
        let err = refused(
            "moa",
            &args,
            &[&format!("{flag} `{f}` exists and is not a folder")],
        );
        assert!(!err.contains("== 1/5"), "{err}");
    }
    assert!(!w.exists(), "the refused run made its work folder");
}

/// `moa plan show` of a plan whose `span.max_new_tokens` fills the context said
/// "--prompt-len 512: span.max_new_tokens = 2048 leaves no room …", blaming the flag for
/// the file; it names the file, the field and the allowed range, as moa-compile does.
#[test]
fn plan_show_blames_the_plan_file_for_max_new_tokens_that_fill_the_context() {
    let dir = scratch("show-room");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/fixture-gqa.toml"
    ))
    .unwrap();
    let ctx: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("max_context_tokens = "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut edited: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("max_new_tokens"))
        .map(str::to_string)
        .collect();
    let at = edited.iter().position(|l| l == "[span]").unwrap();
    edited.insert(at + 1, format!("max_new_tokens = {ctx}"));
    let plan = dir.join("full.toml");
    std::fs::write(&plan, edited.join("\n")).unwrap();
    let p = plan.to_str().unwrap();
    let err = refused(
        "moa",
        &["plan", "show", p, "--prompt-len", "16"],
        &[
            p,
            &format!(
                "`span.max_new_tokens` = {ctx} is out of range: allowed 0..={}",
                ctx - 1
            ),
        ],
    );
    assert!(!err.contains("--prompt-len 16"), "{err}");
}

/// `moa plan show --max-batch --model FILE` needs only the model's shape, but a GGUF with
/// a tensor of a type moa cannot read was refused whole; the planner runs on its shape
/// (as `moa plan import` does).
#[test]
fn max_batch_plans_a_gguf_with_an_unreadable_tensor() {
    let dir = scratch("max-batch-iq");
    let good = dir.join("good.gguf");
    common::tiny::tiny(3, true).write_gguf(&good, |_, _| {});
    let bytes = with_ggml_type(std::fs::read(&good).unwrap(), "blk.1.attn_v.weight", 2, 23);
    let model = dir.join("iq.gguf");
    std::fs::write(&model, bytes).unwrap();
    let m = model.to_str().unwrap();
    let (plan, code, err) = import_upstream_plan(&dir, m);
    let p = plan.to_str().unwrap();
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        "moa",
        &[
            "plan",
            "show",
            p,
            "--max-batch",
            "--model",
            m,
            "--prompt-len",
            "64",
            "--memory",
            "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("largest batch"), "{out}");
}

/// `./scripts/pipeline.sh --model mine.gguf` ran `moa pipeline --workdir runs/smollm2-135m
/// --plans-dir plans --model mine.gguf`: the user's model resumed from SmolLM2's work
/// folder (calibration token ids of another tokenizer), a `--workdir` of the user's was
/// refused by clap as given twice, and the default model was fetched though unused. The
/// script now leaves both to moa pipeline's defaults (runs/<model>, plans/) and fetches
/// only without --model. Run here with stand-ins for cargo, `ls` (python3-doc present)
/// and the moa binary, which records its arguments.
#[cfg(unix)]
#[test]
fn pipeline_script_leaves_the_work_folder_to_the_model() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("pipeline-script");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pipeline.sh");
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::copy(script, dir.join("scripts/pipeline.sh")).unwrap();
    // The script finds the binaries' folder through this file (round 15).
    let bin_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bin-dir.sh");
    std::fs::copy(bin_dir, dir.join("scripts/bin-dir.sh")).unwrap();
    let log = dir.join("moa.log");
    let stand_in = |path: PathBuf, body: String| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    stand_in(
        dir.join("target/release/moa"),
        format!("echo \"$*\" >> '{}'", log.display()),
    );
    stand_in(dir.join("bin/cargo"), "exit 0".into());
    stand_in(dir.join("bin/ls"), "exit 0".into());
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_script = |args: &[&str]| -> String {
        let _ = std::fs::remove_file(&log);
        let out = std::process::Command::new("bash")
            .arg(dir.join("scripts/pipeline.sh"))
            .args(args)
            .env("PATH", &path)
            // The stand-in cargo prints no metadata, so the script falls back to
            // CARGO_TARGET_DIR, then `target`: the stand-in moa is under `target`.
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&log).unwrap()
    };
    assert_eq!(run_script(&[]), "model fetch\npipeline\n");
    assert_eq!(
        run_script(&["--model", "mine.gguf", "--workdir", "w"]),
        "pipeline --model mine.gguf --workdir w\n"
    );
    assert_eq!(
        run_script(&["--model=mine.gguf"]),
        "pipeline --model=mine.gguf\n"
    );
}
