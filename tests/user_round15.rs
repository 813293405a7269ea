//! A new user's journey, round 15 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::Path;

use common::cli::s;
use common::samples::sample;
use common::tiny;

common::cli::tagged!();

/// The names in `dir` that contain `part`.
fn names_with(dir: &Path, part: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(part))
        .collect()
}

/// `moa calib`'s output went through a fixed `<out>.partial`, as the profile files did
/// before round 14: two runs writing one `--out` at once (two `moa calib`, or two
/// pipelines on one work folder) renamed each other's half-written file into place, or
/// failed "No such file" when the other had renamed it away. Each writer has its own
/// temporary now: 4 writers × 20 writes of one file all succeed, the file always reads
/// back as one writer's whole calibration, and no temporary is left. A temporary a killed
/// run left (a pid that no longer runs) is removed by the next write; a running
/// process's is kept.
#[test]
fn concurrent_calib_writes_of_one_file_each_land_whole() {
    let dir = scratch("calib-writers");
    let path = dir.join("calib.jsonl");
    // Each writer's calibration: 40 samples of its own id, about 300 kB in all.
    let set = |w: usize| -> Vec<moa::calib::CalibSample> {
        (0..40)
            .map(|i| {
                sample(
                    &format!("w{w}-{i}"),
                    tiny::tokens(900, w as u64 + 1),
                    4,
                    1024,
                )
            })
            .collect()
    };
    let sets: Vec<_> = (0..4).map(set).collect();
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|scope| {
        for samples in &sets {
            let (path, barrier) = (&path, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for _ in 0..20 {
                    moa::calib::write_jsonl(path, samples).unwrap();
                    // Whatever stands there is one writer's whole set.
                    let back = moa::calib::read_jsonl(path).unwrap();
                    assert_eq!(back.len(), 40);
                    let w = &back[0].id[..2];
                    assert!(back.iter().all(|s| s.id.starts_with(w)));
                }
            });
        }
    });
    assert!(names_with(&dir, ".partial").is_empty());

    // A dead run's temporary goes at the next write; this process's own name is kept.
    let dead = dir.join("calib.jsonl.partial-4194999-0");
    let live = dir.join(format!("calib.jsonl.partial-{}-999", std::process::id()));
    std::fs::write(&dead, "{\"cut").unwrap();
    std::fs::write(&live, "{\"cut").unwrap();
    moa::calib::write_jsonl(&path, &sets[0]).unwrap();
    assert!(!dead.exists() || Path::new("/proc/4194999").exists());
    assert!(live.exists());
    std::fs::remove_file(&live).unwrap();
}

/// Two `moa validate` runs (or two pipelines) sharing a score cache that neither found
/// each wrote its header: the second header, a line in the middle, was then refused as a
/// malformed row ("line 3: expected `masking…`"), and the cache had to be deleted. The
/// header is placed once (a hard link of a whole file that fails when the file exists),
/// and a repeated header, as the old race left, is skipped when read.
#[test]
fn concurrent_score_cache_writers_write_one_header() {
    use moa::eval::{SampleScore, ScoreCache};
    const HEADER: &str = "masking\tsample\tloss\tagree\tn_response";
    let dir = scratch("score-cache");
    let score = |id: String| SampleScore {
        sample_id: id,
        loss: 1.25,
        agree: 3,
        n_response: 4,
    };
    for round in 0..20 {
        let path = dir.join(format!("scores-{round}.tsv"));
        // An empty file (a cut header dropped by `open`) in some rounds, none in others.
        if round % 4 == 3 {
            std::fs::write(&path, "").unwrap();
        }
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|scope| {
            for w in 0..6 {
                let (path, barrier) = (&path, &barrier);
                scope.spawn(move || {
                    let mut c = ScoreCache::open(path).unwrap();
                    barrier.wait();
                    for i in 0..5 {
                        c.put("dense", score(format!("w{w}-{i}"))).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "round {round}:\n{text}");
        assert_eq!(text.matches("masking").count(), 1, "round {round}:\n{text}");
        assert_eq!(text.lines().count(), 31, "round {round}:\n{text}");
        let c = ScoreCache::open(&path).unwrap();
        for w in 0..6 {
            for i in 0..5 {
                assert!(c.get("dense", &format!("w{w}-{i}")).is_some());
            }
        }
    }
    assert!(names_with(&dir, ".header-").is_empty());

    // What two runs of the old code left: a header each, rows between. Read whole.
    let old = dir.join("old.tsv");
    std::fs::write(
        &old,
        format!("{HEADER}\ndense\ta\t1.5\t2\t3\n{HEADER}\ndense\tb\t2.5\t2\t3\n"),
    )
    .unwrap();
    let c = ScoreCache::open(&old).unwrap();
    assert_eq!(c.get("dense", "a").map(|s| s.loss), Some(1.5));
    assert_eq!(c.get("dense", "b").map(|s| s.loss), Some(2.5));
}

/// `moa model info` said only "chat_template yes": a Hugging Face folder may hold the
/// template in `chat_template.jinja` and in `tokenizer_config.json` (the file wins, as in
/// transformers), so a user who edited the config's saw no change and no reason. It names
/// where the template came from: the file (and that the config's is not used), the
/// config's key or its `default` entry, or the GGUF key.
#[test]
fn model_info_names_where_the_chat_template_came_from() {
    let dir = scratch("template-origin");
    let model = dir.join("m");
    std::fs::create_dir_all(&model).unwrap();
    tiny::tiny(31, true).write_hf(&model, candle_core::DType::F32, true);
    let info = |path: &Path| {
        let (code, out, err) = run("moa", &["model", "info", s(path)]);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .find(|l| l.trim_start().starts_with("chat_template"))
            .unwrap_or_else(|| panic!("no chat_template line:\n{out}"))
            .to_string()
    };
    let tpl = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}";
    let config = |json: serde_json::Value| {
        std::fs::write(model.join("tokenizer_config.json"), json.to_string()).unwrap();
    };
    let _ = std::fs::remove_file(model.join("tokenizer_config.json"));
    let _ = std::fs::remove_file(model.join("chat_template.jinja"));
    assert!(info(&model).ends_with(" no"), "{}", info(&model));

    config(serde_json::json!({ "chat_template": tpl }));
    let l = info(&model);
    assert!(
        l.contains("yes, from tokenizer_config.json (`chat_template`)"),
        "{l}"
    );

    let entry = |name: &str| serde_json::json!({"name": name, "template": tpl});
    config(serde_json::json!({ "chat_template": [entry("tool_use"), entry("default")] }));
    let l = info(&model);
    assert!(
        l.contains("tokenizer_config.json (`chat_template`: the template named `default`, of 2)"),
        "{l}"
    );

    std::fs::write(model.join("chat_template.jinja"), tpl).unwrap();
    let l = info(&model);
    assert!(
        l.contains(
            "yes, from chat_template.jinja (tokenizer_config.json's `chat_template` is not used)"
        ),
        "{l}"
    );
    config(serde_json::json!({ "eos_token": "</s>" }));
    let l = info(&model);
    assert!(l.ends_with("yes, from chat_template.jinja"), "{l}");

    let gguf = dir.join("m.gguf");
    tiny::tiny(31, true).write_gguf(&gguf, |_, _| {});
    let l = info(&gguf);
    assert!(
        l.contains("yes, from GGUF metadata `tokenizer.chat_template`"),
        "{l}"
    );
}

/// `moa bench` flags that a GPU run would take wrongly or run for nothing, refused on any
/// machine before the driver loads (each names the flag and what to give):
/// `--no-dense` with no `--plan` (benched nothing, exit 0), `--wgpu` without `--parity`
/// (ignored), a `--batch`, `--prompt` or `--plan` given twice (ran twice), and a `--json`
/// that is an input (`--json PLAN.toml` appended JSON lines to the plan, which every later
/// load then refused), a folder, or in a missing folder (found only once the driver was up);
/// a `--kv-heads` that does not divide the shape's query heads, or beside `--model`.
#[test]
fn bench_refuses_runs_for_nothing_and_outputs_over_inputs_before_the_driver() {
    let dir = scratch("bench-flags");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smollm2-135m-moa-50.toml");
    let copy = dir.join("p.toml");
    std::fs::copy(&plan, &copy).unwrap();
    let dotted = format!("{}/./p.toml", dir.display());
    let missing = dir.join("nowhere/r.jsonl");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--no-dense"],
            "--no-dense with no --plan leaves nothing to bench",
        ),
        (vec!["--wgpu"], "--wgpu adds the wgpu engine to --parity"),
        (vec!["--batch", "4,max,4"], "--batch gives `4` twice"),
        (vec!["--prompt", "64,128,64"], "--prompt gives 64 twice"),
        (
            vec!["--plan", s(&copy), "--plan", &dotted],
            "is given twice (as `",
        ),
        (vec!["--plan", s(&copy), "--json", &dotted], "is the input"),
        (vec!["--json", s(&dir)], "is a folder"),
        (vec!["--json", s(&missing)], "does not exist"),
        // Session 36: --kv-heads must divide the shape's query heads (SmolLM2's 9).
        (
            vec!["--kv-heads", "2"],
            "--kv-heads 2 does not divide the 9 query heads of --like smollm2-135m: allowed 1, 3, 9",
        ),
        (vec!["--kv-heads", "0"], "--kv-heads 0 does not divide"),
        (
            vec!["--kv-heads", "3", "--model", s(&copy)],
            "--kv-heads changes the --like shape's KV heads, and --model",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["bench", "--like", "smollm2-135m"];
        args.extend(extra.iter().copied());
        let err = refused("moa", &args, &[want]);
        assert!(
            !err.contains("libcuda"),
            "{args:?} reached the driver check:\n{err}"
        );
    }
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&plan).unwrap(),
        "the plan was written to"
    );
}

/// A plan with no `[[layers]]` table (a user who wrote the header and `model.layers = 2`
/// and meant to add the rules later) was refused as toml's "missing field `layers`" at
/// line 1, column 1, which reads as `model.layers`, the field the user had written. It
/// names the tables, how many, and what each holds.
#[test]
fn a_plan_without_layer_tables_names_them() {
    let dir = scratch("no-layers");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml"),
    )
    .unwrap();
    let head = &text[..text.find("[[layers]]").unwrap()];
    let plan = dir.join("p.toml");
    std::fs::write(&plan, head).unwrap();
    for args in [
        vec!["moa-compile", s(&plan), "-o", s(&dir)],
        vec!["moa", "plan", "show", s(&plan), "--prompt-len", "10"],
    ] {
        refused(
            args[0],
            &args[1..],
            &[
                "p.toml",
                "`layers` is missing: the plan has no `[[layers]]` table",
                "one per layer (model.layers = 3)",
                "(model.q_heads = 8)",
            ],
        );
    }
}

/// `moa plan show` printed a long context's KV bytes in MiB whatever their size (`361219.0
/// MiB (moa) vs 404096.0 MiB dense` for a 1024-layer plan at 100k tokens): from 1 GiB up
/// they are in GiB. A dense 32-layer, 32-head plan of head_dim 128 at N = 16 000 holds
/// 2 · 32 · 32 · 128 · 16 000 · 2 bytes = 7.81 GiB.
#[test]
fn plan_show_prints_large_caches_in_gib() {
    let dir = scratch("gib");
    let mut text = "format_version = 1\n[model]\nlayers = 32\nq_heads = 32\nkv_heads = 32\n\
                    head_dim = 128\nmax_context_tokens = 16384\n[span]\nmax_new_tokens = 1000\n"
        .to_string();
    for _ in 0..32 {
        text.push_str(&format!(
            "[[layers]]\nalpha = [{}]\nbeta = [{}]\n",
            ["0"; 32].join(", "),
            ["1.0"; 32].join(", ")
        ));
    }
    let plan = dir.join("dense.toml");
    std::fs::write(&plan, text).unwrap();
    let (code, out, err) = run("moa", &["plan", "show", s(&plan), "--prompt-len", "15000"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("7.81 GiB (moa) vs 7.81 GiB dense = 1.000x"),
        "{out}"
    );
}

/// `moa-compile --check` of a folder whose `manifest.json` is cut (`{`) or whose
/// `kernels.rs` is the user's ended "`moa-compile P -o OUT …` rewrites it", and that
/// command then refused the folder ("will not overwrite it"). The check names the
/// refusal instead; a folder of moa-compile's own still gets the rewrite command.
#[test]
fn compile_check_does_not_suggest_a_rewrite_the_compile_refuses() {
    let dir = scratch("check-owned");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let out = dir.join("k");
    let compile = |check: bool| {
        let mut a = vec![s(&plan), "-o", s(&out), "--target", "wgsl"];
        if check {
            a.push("--check");
        }
        run("moa-compile", &a)
    };
    assert_eq!(compile(false).0, 0);
    std::fs::remove_file(out.join("wgsl/l01_decode.wgsl")).unwrap();
    let (code, _, err) = compile(true);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--dtype f16` rewrites it"), "{err}");
    for (file, text, why) in [
        ("manifest.json", "{", "is not moa-compile's manifest"),
        (
            "kernels.rs",
            "fn main() {}\n",
            "was not written by moa-compile",
        ),
    ] {
        assert_eq!(compile(false).0, 0);
        let own = std::fs::read(out.join(file)).unwrap();
        std::fs::write(out.join(file), text).unwrap();
        let (code, _, err) = compile(true);
        assert_eq!(code, 1, "{err}");
        assert!(!err.contains("rewrites it"), "{err}");
        assert!(
            err.contains("would refuse the folder") && err.contains(why),
            "{err}"
        );
        let (code, _, refusal) = compile(false);
        assert_eq!(code, 2, "{refusal}");
        assert!(refusal.contains(why), "{refusal}");
        // Put moa's file back: without its manifest the folder's kernel files would be
        // no compile's (no manifest lists them, no stopped compile's marker is there).
        std::fs::write(out.join(file), own).unwrap();
    }
}

/// A plan without `[model].name` (legal; `moa plan import` writes none without a model)
/// compiled into a folder and replaced by another showed as "another plan (`?`: …)".
#[test]
fn a_replaced_unnamed_plan_is_called_unnamed() {
    let dir = scratch("unnamed");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml"),
    )
    .unwrap();
    let unnamed = dir.join("unnamed.toml");
    std::fs::write(&unnamed, text.replace("name = \"fixture-gqa\"\n", "")).unwrap();
    let other = dir.join("other.toml");
    std::fs::write(&other, text.replace("sink_tokens = 16", "sink_tokens = 32")).unwrap();
    let out = dir.join("k");
    for plan in [&unnamed, &other] {
        let (code, _, err) = run("moa-compile", &[s(plan), "-o", s(&out), "--target", "wgsl"]);
        assert_eq!(code, 0, "{err}");
        if plan == &other {
            assert!(
                err.contains("another plan (unnamed: 3 layers, 8 query heads"),
                "{err}"
            );
        }
    }
}

/// `moa-compile -o LINK` where LINK is a symbolic link to a missing folder (or a loop of
/// links) failed "cannot create the folder `LINK`: File exists", about a folder that is
/// not there: it names the link and its target.
#[cfg(unix)]
#[test]
fn compile_into_a_dangling_link_names_the_link() {
    let dir = scratch("dangling");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let link = dir.join("out");
    std::os::unix::fs::symlink(dir.join("gone/x"), &link).unwrap();
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&link)],
        &["is a symbolic link to", "gone/x", "which does not exist"],
    );
    let looped = dir.join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&looped)],
        &["is a symbolic link to", "loop of links"],
    );
}

/// `moa plan show --max-batch --prefill-chunk 3` with 4096-token prompts said "prefill
/// passes of up to 4096 tokens" and nothing of the 3: the engine never splits a row, so a
/// chunk below one prompt is raised to it, which is now said.
#[test]
fn plan_show_says_when_the_prefill_chunk_is_raised_to_a_prompt() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smollm2-135m-moa-50.toml");
    let show = |chunk: &str| {
        let (code, out, err) = run(
            "moa",
            &[
                "plan",
                "show",
                s(&plan),
                "--max-batch",
                "--like",
                "smollm2-135m",
                "--prompt-len",
                "4096",
                "--new",
                "12",
                "--memory",
                "10",
                "--prefill-chunk",
                chunk,
            ],
        );
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = show("3");
    assert!(
        out.contains("passes of up to 4096 tokens (--prefill-chunk 3 is below one prompt"),
        "{out}"
    );
    assert!(!show("8192").contains("is below one prompt"));
}

/// A file named `wgsl` (or `cuda`) in the output folder, where moa-compile makes its
/// kernel folders, failed "cannot create the folder `OUT/wgsl`: File exists", about a
/// folder that is not there: it names the file and says it is one.
#[test]
fn a_file_where_a_kernel_folder_goes_is_named() {
    let dir = scratch("file-as-folder");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let out = dir.join("k");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("wgsl"), "my notes").unwrap();
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&out)],
        &["wgsl` is a file, not a folder", "folders wgsl/ and cuda/"],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("wgsl")).unwrap(),
        "my notes"
    );
}
