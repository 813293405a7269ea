//! A new user's journey, round 36: moa in scripts (shell scripts, Makefiles, CI jobs, a
//! Python driver through `subprocess`): exit codes and streams of every subcommand, a
//! closed or full standard output, two runs at once on one output, odd paths, and runs
//! stopped by a signal. What it found wrong, each pinned here: `moa`'s results written
//! with `print!` panicked on a write error (`moa model info M > /dev/full`: "failed
//! printing to stdout" and a backtrace, exit 101) and `moa plan export -o -`'s JSON, which
//! ends without a line end, lost its write error in the buffer at exit (exit 0); clap's
//! `--help` and `--version` ignored theirs (exit 0 with nothing written) in both binaries;
//! `moa-compile`, whose lines all go to stderr, panicked on a closed pipe (`2>&1 | head
//! -1`) where `moa` ends by SIGPIPE; and a `moa pipeline --profile-jobs N` killed alone
//! (a CI timeout, Python's `Popen.terminate()`: the signal reaches the pipeline, not its
//! process group as Ctrl-C does) left its `moa profile` children running to the end of
//! their share, writing into the work folder beside the re-run. Seconds each; nothing
//! here needs a GPU, the fetched model or anything outside the repository.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::cli::s;

common::cli::tagged!();

fn bin(name: &str) -> Command {
    let exe = match name {
        "moa" => env!("CARGO_BIN_EXE_moa"),
        _ => env!("CARGO_BIN_EXE_moa-compile"),
    };
    let mut c = Command::new(exe);
    c.env(
        "MOA_CACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_round36-no-cache"),
    );
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c
}

/// A command whose standard output cannot be written (`> /dev/full`: every write fails
/// "No space left on device") exits 2 with `moa failed` (`moa-compile failed`) and the
/// write's error on stderr: no panic, no backtrace, and never exit 0 with the output lost.
#[test]
fn a_full_standard_output_fails_the_command_naming_the_write() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("no /dev/full here: nothing to check");
        return;
    };
    let dir = scratch("full");
    let model = common::cli::tiny_model(&dir.join("m"));
    let plan = dir.join("p.toml");
    std::fs::write(&plan, common::cli::fixture_gqa()).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("moa", &["model", "info", s(&model)]),
        ("moa", &["plan", "show", s(&plan), "--prompt-len", "100"]),
        // JSON with no final line end: it stayed in the buffer, its error lost at exit.
        ("moa", &["plan", "export", s(&plan), "-o", "-"]),
        ("moa", &["--help"]),
        ("moa", &["--version"]),
        ("moa", &["plan", "--help"]),
        ("moa-compile", &["--help"]),
        ("moa-compile", &["--version"]),
    ];
    for (name, args) in cases {
        let out = bin(name)
            .args(*args)
            .env("RUST_BACKTRACE", "1")
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} {args:?} > /dev/full:\n{err}"
        );
        assert!(
            err.contains(&format!("{name} failed"))
                && err.contains("cannot write to standard output: No space left on device"),
            "{name} {args:?} > /dev/full:\n{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("stack backtrace"),
            "{name} {args:?} > /dev/full panicked:\n{err}"
        );
    }
    // And the same commands with a working stdout still exit 0 with their output there.
    let out = bin("moa")
        .args(["plan", "export", s(&plan), "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.get("alphas").is_some(), "{json}");
}

/// `moa-compile` writes every line to stderr; with that pipe's reader gone (`moa-compile
/// ... 2>&1 | head -1` once `head` has its line) it ends by SIGPIPE as `moa` does, where
/// the next `eprintln!` panicked (exit 101). The pipe's read end is closed before the
/// compile starts, so its first line already meets a closed pipe: no timing involved.
#[cfg(unix)]
#[test]
fn moa_compile_ends_quietly_on_a_closed_pipe() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = scratch("pipe");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = bin("moa-compile")
        .args([s(&dir.join("missing.toml")), "-o", s(&dir.join("out"))])
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "moa-compile on a closed stderr pipe: {status:?} (101 is a panic)"
    );
}

/// The process ids whose parent is `pid` (from /proc/*/stat).
#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(k) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if stat_of(k).is_some_and(|(_, ppid)| ppid == pid) {
            kids.push(k);
        }
    }
    kids
}

/// (state, parent pid) of process `pid`, `None` once it is gone.
#[cfg(target_os = "linux")]
fn stat_of(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A `moa pipeline --profile-jobs 2` killed on its own (SIGKILL to its pid alone, as a CI
/// timeout or `subprocess.run(timeout=...)` does) takes its `moa profile --shard`
/// children with it: they kept profiling for the rest of their share (about 10 s here,
/// half an hour for SmolLM2), writing into the work folder a re-run then shares. The
/// children's work takes ~10 s at 2048 tokens on one thread each; they must be gone
/// within 5 s of the kill (the parent-death signal is immediate). While it runs, a second
/// pipeline on its work folder is refused, naming the first's process.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_pipeline_takes_its_profile_processes_with_it() {
    use std::time::{Duration, Instant};
    let dir = scratch("orphans");
    let m = dir.join("m");
    let config = moa::model::LlamaConfig {
        name: None,
        n_layers: 2,
        hidden_size: 64,
        ffn_size: 96,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab_size: 300,
        context_length: 2304,
        rope_scaling: None,
        ..moa::model::random::like("smollm2-135m").unwrap()
    };
    moa::model::random::write_hf_folder(&moa::model::random::random_model(&config, 7), &m).unwrap();
    let work = dir.join("work");
    let mut pipeline = bin("moa")
        .args(["pipeline", "--model", s(&m), "--workdir", s(&work)])
        .args([
            "--plans-dir",
            s(&dir.join("plans")),
            "--source",
            "generated",
        ])
        .args(["--profile-lengths", "2048", "--validate-length", "2304"])
        .args(["--block", "32", "--samples", "2", "--validate-samples", "1"])
        .args(["--densities", "0.75", "--profile-jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let kids = loop {
        let kids = children_of(pipeline.id());
        if kids.len() == 2 {
            break kids;
        }
        if let Some(status) = pipeline.try_wait().unwrap() {
            panic!("the pipeline ended ({status}) before starting its profile processes");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no profile processes after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // A second pipeline on the same work folder is refused while the first runs (it redid
    // the first's steps beside it and appended its scores to `scores.tsv` twice).
    let second = bin("moa")
        .args(["pipeline", "--model", s(&m), "--workdir", s(&work)])
        .args([
            "--plans-dir",
            s(&dir.join("plans2")),
            "--source",
            "generated",
        ])
        .args(["--profile-lengths", "2048", "--validate-length", "2304"])
        .args(["--block", "32", "--samples", "2", "--validate-samples", "1"])
        .args(["--densities", "0.75", "--profile-jobs", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    let want = format!(
        "another `moa pipeline` (process {}) is running in the work folder `{}`",
        pipeline.id(),
        work.display()
    );
    assert!(
        second.status.code() == Some(2) && err.contains(&want),
        "a second pipeline on the folder: no `{want}` in:\n{err}"
    );
    pipeline.kill().unwrap();
    pipeline.wait().unwrap();
    // The killed run's lock went with it: a re-run takes the folder.
    let lock = std::fs::File::open(work.join(".moa-pipeline.lock")).unwrap();
    assert!(
        lock.try_lock().is_ok(),
        "the killed pipeline's lock is still held"
    );
    drop(lock);
    let killed = Instant::now();
    let running = |k: &u32| stat_of(*k).is_some_and(|(state, _)| state != 'Z' && state != 'X');
    while kids.iter().any(running) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<&u32> = kids.iter().filter(|k| running(k)).collect();
    for k in &left {
        // Not left behind by the test either.
        unsafe { libc::kill(**k as libc::pid_t, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "profile processes {left:?} still ran 5 s after their pipeline was killed"
    );
}

/// `moa eval --json -` wrote a file named `-`, and `--json /dev/stdout` got the report
/// after every plan (the JSON repeated once per plan, 65 KB for three plans) and then the
/// markdown table: nothing `json.load` or `jq` could read. Standard output now holds the
/// final JSON alone, and `-` is standard output, as `-o -` is for `moa plan export`.
#[test]
fn eval_json_to_standard_output_is_one_whole_report() {
    let dir = scratch("eval-json");
    let model = common::cli::tiny_model(&dir.join("m"));
    for json in ["-", "/dev/stdout"] {
        if json.starts_with("/dev") && !Path::new(json).exists() {
            continue;
        }
        let out = bin("moa")
            .current_dir(&dir)
            .args(["eval", "--model", s(&model), "--backend", "cpu", "--quiet"])
            .args(["--lengths", "256", "--depths", "1", "--tasks", "passkey"])
            .args(["--ppl-length", "256", "--ppl-scored", "64", "--json", json])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--json {json}:\n{err}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--json {json}: stdout is not one JSON report ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert!(report["plans"].is_array(), "{report}");
        assert!(!dir.join("-").exists(), "--json - wrote a file named `-`");
    }
}

/// `moa validate -o /dev/stdout` (and `moa diagnose -o /dev/stdout`) printed the table
/// twice: once as the command's output and once as the `-o` file, which was standard
/// output too; `-o -` wrote a file named `-`. Both now print it once.
#[test]
fn validate_and_diagnose_to_standard_output_print_once() {
    let dir = scratch("once");
    let model = common::cli::tiny_model(&dir.join("m"));
    let ok = |args: &[&str], out: &str| -> String {
        let o = bin("moa").current_dir(&dir).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "moa {args:?}:\n{err}");
        assert!(
            !dir.join("-").exists(),
            "moa {args:?} -o {out} wrote a file named `-`"
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(
        &[
            "calib",
            "--model",
            s(&model),
            "--out",
            "c.jsonl",
            "--lengths",
            "240",
            "--samples",
            "1",
            "--source",
            "generated",
            "--max-new-tokens",
            "2",
        ],
        "",
    );
    std::fs::write(
        dir.join("p.toml"),
        "format_version = 1\n[model]\nname = \"tiny\"\nlayers = 2\nq_heads = 4\n\
         kv_heads = 2\nhead_dim = 16\nmax_context_tokens = 256\n[span]\nsink_tokens = 16\n\
         min_span_tokens = 32\nblock_tokens = 16\nmode = \"moa\"\nmax_new_tokens = 16\n\
         [[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [0.5, 0.5, 0.5, 0.5]\n\
         [[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [1, 1, 0.5, 0.5]\n",
    )
    .unwrap();
    for out in ["-", "/dev/stdout"] {
        if out.starts_with("/dev") && !Path::new(out).exists() {
            continue;
        }
        let common = [
            "--model",
            s(&model),
            "--calib",
            "c.jsonl",
            "--plan",
            "p.toml",
            "-o",
            out,
        ];
        let table = ok(&[&["validate"][..], &common[..]].concat(), out);
        let header = table.lines().next().unwrap_or_default().to_string();
        assert!(header.contains('\t'), "not a TSV table:\n{table}");
        assert_eq!(
            table.lines().filter(|l| *l == header).count(),
            1,
            "validate -o {out}: the table twice:\n{table}"
        );
        let report = ok(&[&["diagnose"][..], &common[..]].concat(), out);
        let first = report.lines().next().unwrap_or_default().to_string();
        assert!(!first.is_empty(), "diagnose -o {out} printed nothing");
        assert_eq!(
            report.lines().filter(|l| *l == first).count(),
            1,
            "diagnose -o {out}: the report twice:\n{report}"
        );
    }
}
