//! `moa generate` and the main job as a user meets them: no Mesa `XDG_RUNTIME_DIR`
//! warning outside the scripts, one BOS in a chat prompt when both the template and the
//! tokenizer would add it, prefill progress that is real (per layer, same tokens), and
//! `scripts/main.sh` closing on what the plan saves. Runs the real binary and the GPU
//! runtime on the tiny random Llama (wgpu: lavapipe in CI).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{self, tiny};
use moa::model::Model;
use moa::runtime::engine::{Engine, PrefillProgress, Sampling};
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::WgpuEngine;

fn moa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moa"))
}

/// The tiny model; `llama3_bos` makes it Llama-3-like: `add_bos_token = true` and a
/// template that writes `{{ bos_token }}` itself.
fn tiny_gguf(dir: &Path, llama3_bos: bool) -> String {
    let path = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&path, |md, _| {
        if llama3_bos {
            md.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)));
            for (k, v) in md.iter_mut() {
                if k == "tokenizer.chat_template" {
                    *v = Value::String(format!("{{{{ bos_token }}}}{}", tiny::CHATML));
                }
            }
        }
    });
    path.display().to_string()
}

fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().expect("running moa");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?}\nstdout:\n{so}\nstderr:\n{se}"
    );
    (so, se)
}

/// `ids[0] prompt [1, 2, 3]` from `--print-ids`.
fn prompt_ids(stderr: &str) -> Vec<u32> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ids[0] prompt "))
        .unwrap_or_else(|| panic!("no prompt ids in:\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn no_xdg_runtime_dir_warning_outside_the_scripts() {
    let dir = tiny::tmp("cli-xdg");
    let model = tiny_gguf(&dir, false);
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let (_, stderr) = run(moa()
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmpdir)
        .args(["generate", "--model", &model, "--dense", "--prompt", "hi"])
        .args(["--max-new-tokens", "2"]));
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    assert!(stderr.contains("prefill:"), "{stderr}");
    // The folder it gave the drivers: private to this user, as the XDG spec asks.
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let uid = std::fs::metadata(&model).unwrap().uid();
        let runtime = std::fs::metadata(tmpdir.join(format!("moa-runtime-{uid}"))).unwrap();
        assert!(runtime.is_dir());
        assert_eq!(runtime.uid(), uid);
        assert_eq!(runtime.permissions().mode() & 0o777, 0o700);
    }
}

#[test]
fn a_chat_prompt_has_one_bos_when_template_and_tokenizer_both_add_it() {
    let dir = tiny::tmp("cli-bos");
    let model = tiny_gguf(&dir, true);
    let args = ["generate", "--model", &model, "--dense", "--print-ids"];
    let (_, chat) = run(moa()
        .args(args)
        .args(["--prompt", "hi", "--max-new-tokens", "1"]));
    let ids = prompt_ids(&chat);
    // The tiny vocabulary: 1 = <|im_start|> is BOS; the template writes it, then a turn
    // opens with <|im_start|> again.
    assert_eq!(
        &ids[..2],
        &[1, 1],
        "BOS then the turn's <|im_start|>: {ids:?}"
    );
    assert_ne!(ids[2], 1, "a third <|im_start|> is a double BOS: {ids:?}");
    // Raw text is tokenized as `tokenizer(text)` is: the tokenizer's BOS is added.
    let (_, raw) = run(moa()
        .args(args)
        .args(["--raw", "--prompt", "hi", "--max-new-tokens", "1"]));
    let ids = prompt_ids(&raw);
    assert_eq!(ids[0], 1, "{ids:?}");
    assert_ne!(ids[1], 1, "{ids:?}");
}

#[test]
fn main_sh_closes_with_what_the_plan_saves() {
    // The main job's chat is short, so its KV line says 100% of dense (every span covers
    // N); its closing lines must show the saving at a realistic length instead.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/main.sh")).unwrap();
    let commands: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("\"$bin/moa\" "))
        .collect();
    let last = *commands.last().unwrap();
    assert!(last.contains(" plan show "), "main.sh ends with `{last}`");
    let args: Vec<&str> = last
        .split('|')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let len_at = args.iter().position(|a| *a == "--prompt-len").unwrap();
    let prompt_len: u32 = args[len_at + 1].parse().unwrap();
    assert!(prompt_len >= 2048, "{last}");
    let (stdout, _) = run(moa().current_dir(root).args(&args));
    let density: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("KV density (GQA-native cache, per KV head): "))
        .and_then(|v| v.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no KV density in:\n{stdout}"));
    assert!(
        density < 75.0,
        "{density}% at prompt {prompt_len}:\n{stdout}"
    );
}

#[test]
fn main_sh_chats_through_the_kernels_it_compiled() {
    // main.sh compiled the plan's kernels and then let `moa generate` generate its own, so
    // the compile step's output went unused; the chat must run them (`--kernels`), and the
    // compiled plan must be the built-in one that `generate` checks the manifest against.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/main.sh")).unwrap();
    let args_of = |prefix: &str| -> Vec<String> {
        let line = script
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in main.sh"));
        line.split_whitespace().map(String::from).collect()
    };
    let after = |args: &[String], flag: &str| -> Option<String> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).cloned()
    };
    let compile = args_of("\"$bin/moa-compile\" ");
    let generate = args_of("\"$bin/moa\" generate ");
    assert_eq!(compile[1], "plans/smollm2-135m-moa-50.toml", "{compile:?}");
    assert!(!generate
        .iter()
        .any(|a| a == "--plan" || a == "--dense" || a == "--f32"));
    let out = after(&compile, "-o").expect("moa-compile -o");
    assert_eq!(after(&generate, "--kernels"), Some(out), "{generate:?}");
    // Both sides at the default storage (f16) and the compile covers WGSL.
    assert!(!compile.iter().any(|a| a == "--dtype" || a == "--target"));
}

#[test]
fn generate_says_why_an_upstream_mode_cache_exceeds_dense() {
    // An imported (upstream-mode) plan at a short N printed a cache of 853% of dense with
    // no reason; the reason was only in DESIGN.md §2 and `moa plan show`.
    let dir = tiny::tmp("cli-upstream-mode");
    let model = tiny_gguf(&dir, false);
    let toml = tiny::sparse_plan().to_toml();
    let gen = |name: &str, toml: String| {
        let plan = dir.join(name);
        std::fs::write(&plan, toml).unwrap();
        let mut cmd = moa();
        cmd.args(["generate", "--model", &model, "--plan"])
            .arg(&plan)
            .args(["--prompt", "hi", "--max-new-tokens", "2"]);
        run(&mut cmd).1
    };
    // Every span at least 64 slots, N = 23 (a chat prompt of 21 tokens + 2).
    let upstream = toml
        .replace("mode = \"moa\"", "mode = \"upstream\"")
        .replace("min_span_tokens = 3", "min_span_tokens = 64");
    assert_ne!(upstream, toml);
    let note = "upstream span mode rounds every span up to span.min_span_tokens";
    let stderr = gen("upstream.toml", upstream);
    assert!(stderr.contains(note), "{stderr}");
    assert!(!gen("moa.toml", toml).contains(note));
}

#[test]
fn generate_says_when_it_runs_kernels_from_a_compile_folder() {
    // With --kernels the load line named only the plan, so a user could not tell whether
    // moa-compile's files or kernels generated at start were running.
    let dir = tiny::tmp("cli-kernels");
    let model = tiny_gguf(&dir, false);
    let plan = dir.join("tiny.toml");
    std::fs::write(&plan, tiny::sparse_plan().to_toml()).unwrap();
    let out = dir.join("kernels");
    let status = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .args([plan.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--target", "wgsl"])
        .status()
        .unwrap();
    assert!(status.success());
    let gen = |kernels: bool| {
        let mut cmd = moa();
        cmd.args([
            "generate",
            "--model",
            &model,
            "--plan",
            plan.to_str().unwrap(),
        ])
        .args(["--prompt", "hi", "--max-new-tokens", "2"]);
        if kernels {
            cmd.args(["--kernels", out.to_str().unwrap()]);
        }
        run(&mut cmd).1
    };
    let stderr = gen(true);
    let want = format!(", kernels from `{}`; loaded in ", out.display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(!gen(false).contains("kernels from"));
}

#[test]
fn prefill_progress_comes_per_layer_and_changes_no_token() {
    let dir = tiny::tmp("cli-progress");
    let model = Model::load(Path::new(&tiny_gguf(&dir, false))).unwrap();
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
    let gpu = WgpuEngine::new(&ctx, &model, None, false).unwrap();
    let prompts = vec![tiny::tokens(40, 1), tiny::tokens(17, 2)];
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let sampled = Sampling {
        temperature: 0.8,
        top_p: 0.9,
        top_k: 0,
        seed: 3,
    };
    for sampling in [Sampling::greedy(), sampled] {
        let mut a = gpu.start(&lens, 4, 7).unwrap();
        let mut b = gpu.start(&lens, 4, 7).unwrap();
        let plain = gpu.prefill_tokens(&mut a, &prompts, sampling).unwrap();
        let mut seen: Vec<PrefillProgress> = Vec::new();
        let staged = gpu
            .prefill_tokens_with_progress(&mut b, &prompts, sampling, &mut |p| seen.push(*p))
            .unwrap();
        assert_eq!(plain, staged, "{sampling:?}");
        let layers = model.config.n_layers;
        let done: Vec<usize> = seen.iter().map(|p| p.layers_done).collect();
        assert_eq!(done, (1..=layers).collect::<Vec<_>>());
        assert!(seen.iter().all(|p| p.layers == layers && p.tokens == 57));
        assert!(seen.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
        // The request continues the same way after either prefill.
        let next_a = gpu.decode_tokens(&mut a, &plain, sampling).unwrap();
        let next_b = gpu.decode_tokens(&mut b, &staged, sampling).unwrap();
        assert_eq!(next_a, next_b, "{sampling:?}");
    }
}

#[test]
fn progress_line_gives_rate_and_eta() {
    let p = PrefillProgress {
        layers_done: 10,
        layers: 30,
        tokens: 3000,
        elapsed: Duration::from_secs(5),
    };
    // A third of every token's layers in 5 s: 200 tok/s, 10 s left.
    assert_eq!(p.tokens_per_s(), 200.0);
    assert_eq!(p.eta(), Some(Duration::from_secs(10)));
    assert_eq!(
        p.line(),
        "prefill 3000 tokens: 10/30 layers (33%), 200 tok/s, ETA 10 s"
    );
    let start = PrefillProgress {
        layers_done: 0,
        ..p
    };
    assert_eq!(start.eta(), None);
    assert!(start.line().ends_with("ETA ?"), "{}", start.line());
    let slow = PrefillProgress {
        layers_done: 1,
        elapsed: Duration::from_secs(11),
        ..p
    };
    assert!(slow.line().ends_with("ETA 5 min 19 s"), "{}", slow.line());
}

/// Before the engine is built (minutes on lavapipe the first time) generate says so, naming
/// the adapter; main.sh's terminal was silent for 252 s after the compile line, which a new
/// user takes for a hang.
#[test]
fn generate_says_it_builds_the_engine_before_the_wait() {
    let dir = tiny::tmp("cli-building");
    let model = tiny_gguf(&dir, false);
    let (_, stderr) = run(moa()
        .args(["generate", "--model", &model, "--dense", "--prompt", "hi"])
        .args(["--max-new-tokens", "2"]));
    let building = stderr
        .find("moa: building the engine on ")
        .unwrap_or_else(|| panic!("no building line in:\n{stderr}"));
    let loaded = stderr.find("loaded in").expect("load line");
    assert!(building < loaded, "{stderr}");
    // lavapipe in CI: the line says what the wait is.
    if stderr.contains("llvmpipe") {
        assert!(
            stderr.contains("a CPU adapter: the first run compiles every kernel"),
            "{stderr}"
        );
    }
}

/// More prompts than the adapter dispatches rows (65535 on lavapipe) failed in the first
/// forward pass with wgpu's "dispatch group size dimension ([1, 70000, 1]) must be less
/// or equal to 65535", after the weights loaded; `moa eval --ppl-rows` likewise. Both are
/// refused when the adapter is known, naming the flag and the limit.
#[test]
fn more_rows_than_the_adapter_dispatches_are_refused_naming_the_limit() {
    let max = WgpuContext::new()
        .expect("a wgpu adapter (lavapipe in CI)")
        .device()
        .limits()
        .max_compute_workgroups_per_dimension as usize;
    if max > 100_000 {
        eprintln!("skipped: this adapter dispatches {max} rows");
        return;
    }
    let dir = tiny::tmp("generate-rows");
    let model = tiny_gguf(&dir, false);
    let mut cmd = moa();
    cmd.args(["generate", "--dense", "--model", &model, "--raw"])
        .args(["--max-new-tokens", "1"]);
    for _ in 0..=max {
        cmd.args(["--prompt", "a"]);
    }
    let out = cmd.output().expect("running moa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{} prompts (--prompt, --prompt-file) decode as one batch",
            max + 1
        )) && err.contains(&format!("allowed 1..={max} prompts")),
        "{err}"
    );
    // Needle prompts need more than the tiny model's 128 tokens.
    let long = dir.join("tiny-2k.gguf");
    tiny(5, true).write_gguf(&long, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let rows = (max + 1).to_string();
    let out = moa()
        .args([
            "eval",
            "--model",
            long.to_str().unwrap(),
            "--ppl-rows",
            &rows,
        ])
        .args([
            "--ppl-length",
            "64",
            "--ppl-scored",
            "8",
            "--lengths",
            "1024",
        ])
        .output()
        .expect("running moa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--ppl-rows {rows}: each runs as one batch"))
            && err.contains(&format!("allowed up to {max}")),
        "{err}"
    );
}

/// With no Vulkan driver (the ICD variables naming a missing file) wgpu fell back to
/// llvmpipe through OpenGL, and a tiny model's generate had not finished after 120 s
/// (20 s on Vulkan lavapipe). Now it is refused at once, naming the variables, the fix and
/// `WGPU_BACKEND=gl` (or, without a GL driver either, "no wgpu adapter"). Without the
/// variables the same command runs on Vulkan.
#[test]
fn no_vulkan_driver_is_refused_not_run_on_opengl() {
    let dir = tiny::tmp("cli-no-vulkan");
    let model = tiny_gguf(&dir, false);
    let missing = dir.join("missing_icd.json");
    let mut child = moa()
        .env("VK_ICD_FILENAMES", &missing)
        .env("VK_DRIVER_FILES", &missing)
        .env_remove("WGPU_BACKEND")
        .args(["generate", "--model", &model, "--dense", "--prompt", "hi"])
        .args(["--max-new-tokens", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running moa");
    // A hang (the GL path) fails the test instead of stalling CI.
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("moa generate without a Vulkan driver still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        (stderr.contains("on OpenGL")
            && stderr.contains("VK_ICD_FILENAMES=")
            && stderr.contains("missing_icd.json")
            && stderr.contains("WGPU_BACKEND=gl"))
            || stderr.contains("no wgpu adapter found"),
        "{stderr}"
    );
    assert!(stderr.contains("mesa-vulkan-drivers"), "{stderr}");
    // The same command with the environment's driver: Vulkan, as before.
    let (_, stderr) = run(moa()
        .env_remove("WGPU_BACKEND")
        .args(["generate", "--model", &model, "--dense", "--prompt", "hi"])
        .args(["--max-new-tokens", "1"]));
    assert!(stderr.contains("moa: building the engine on "), "{stderr}");
}

/// Top-k sampling (`Sampling::top_k`, `--top-k`) on the GPU runtime: at a temperature
/// that spreads the tiny model's mass over its whole vocabulary, every token drawn with
/// top-k 5 is one of the 5 largest logits of its row (the logits of the same prefill),
/// also with top-p on top, while without top-k some draws fall outside them (so the check
/// has teeth); top-k 1 gives greedy's tokens. Ties: the tiny model's logits are distinct.
#[test]
fn top_k_never_draws_outside_the_k_largest_logits_and_k1_is_greedy() {
    let dir = tiny::tmp("cli-top-k");
    let model = Model::load(Path::new(&tiny_gguf(&dir, false))).unwrap();
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
    let gpu = WgpuEngine::new(&ctx, &model, None, true).unwrap();
    let prompts = vec![tiny::tokens(9, 1), tiny::tokens(5, 2)];
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut req = gpu.start(&lens, 2, 0).unwrap();
    let logits = gpu.prefill_logits(&mut req, &prompts).unwrap();
    let k = 5;
    let best: Vec<Vec<u32>> = logits
        .iter()
        .map(|row| {
            let mut ids: Vec<u32> = (0..row.len() as u32).collect();
            ids.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            ids
        })
        .collect();
    let draw = |top_k: u32, top_p: f32, seed: u64| {
        let s = Sampling {
            temperature: 50.0,
            top_p,
            top_k,
            seed,
        };
        let mut req = gpu.start(&lens, 2, seed).unwrap();
        gpu.prefill_tokens(&mut req, &prompts, s).unwrap()
    };
    let mut outside_without = 0;
    for seed in 0..12 {
        for (top_k, top_p) in [(k, 1.0), (k, 0.9)] {
            for (row, &t) in draw(top_k, top_p, seed).iter().enumerate() {
                assert!(
                    best[row][..k as usize].contains(&t),
                    "top-k {top_k} top-p {top_p} seed {seed}: row {row} drew {t}, not among {:?}",
                    &best[row][..k as usize]
                );
            }
        }
        outside_without += draw(0, 1.0, seed)
            .iter()
            .enumerate()
            .filter(|(row, t)| !best[*row][..k as usize].contains(t))
            .count();
    }
    assert!(
        outside_without > 0,
        "without top-k every draw was among the 5 largest: the check has no teeth"
    );
    let greedy = {
        let mut req = gpu.start(&lens, 2, 0).unwrap();
        gpu.prefill_tokens(&mut req, &prompts, Sampling::greedy())
            .unwrap()
    };
    assert_eq!(greedy, vec![best[0][0], best[1][0]]);
    for seed in 0..3 {
        assert_eq!(draw(1, 1.0, seed), greedy, "seed {seed}");
    }
}
