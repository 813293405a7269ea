//! A new user's journey, round 14 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU but lavapipe
//! (the eval heatmap test), the fetched model or anything outside the repository.

mod common;

use std::path::Path;

use common::cli::s;
use common::samples::sample;
use common::tiny;

common::cli::tagged!();

/// `moa profile -o DIR` run for one model and then for another of the same shape, over a
/// calibration with the same tokens, read the first model's stored tiles back as the
/// second's ("reusing its stored tiles": the store keys samples by tokens and shape, not
/// weights) and wrote the first model's profile under the second's run. The folder
/// records its model in `model.txt` (the pipeline's record, the same code); another model
/// is refused before it loads, naming both; the same model copied elsewhere is accepted
/// and the record follows it; a folder an earlier moa made (samples, no record) gets this
/// run's model, with a note.
#[test]
fn a_profile_folder_made_for_one_model_refuses_another() {
    let dir = scratch("profile-model");
    let a = dir.join("a.gguf");
    let b = dir.join("b.gguf");
    tiny::tiny(17, true).write_gguf(&a, |_, _| {});
    tiny::tiny(18, true).write_gguf(&b, |_, _| {});
    let calib = dir.join("calib.jsonl");
    moa::calib::write_jsonl(
        &calib,
        &[sample("passkey-32-0", tiny::tokens(32, 5), 4, 32)],
    )
    .unwrap();
    let out = dir.join("prof");
    let profile = |model: &str| {
        run(
            "moa",
            &[
                "profile",
                "--calib",
                s(&calib),
                "--lengths",
                "32",
                "--block",
                "8",
                "--quiet",
                "--model",
                model,
                "-o",
                s(&out),
            ],
        )
    };
    let (code, _, err) = profile(s(&a));
    assert_eq!(code, 0, "{err}");
    let record = std::fs::read_to_string(out.join("model.txt")).unwrap();
    let a_shown = std::fs::canonicalize(&a).unwrap().display().to_string();
    assert!(record.contains(&format!("path {a_shown}\n")), "{record}");
    assert!(record.contains("fingerprint "), "{record}");
    let profile_file = out.join("influence_32.safetensors");
    let first = std::fs::read(&profile_file).unwrap();

    let b_shown = std::fs::canonicalize(&b).unwrap().display().to_string();
    let (code, _, err) = profile(s(&b));
    assert_eq!(code, 2, "{err}");
    for want in [
        format!(
            "the profile folder `{}` was made for the model `{a_shown}`",
            out.display()
        ),
        format!("this run's model is `{b_shown}`, which differs from it"),
        "give another -o".to_string(),
    ] {
        assert!(err.contains(&want), "`{want}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&profile_file).unwrap(), first);
    // Random weights of a shape are a model too, named as such.
    refused(
        "moa",
        &[
            "profile",
            "--calib",
            s(&calib),
            "--lengths",
            "32",
            "--block",
            "8",
            "--like",
            "smollm2-135m",
            "-o",
            s(&out),
        ],
        &["this run's model is `random --like smollm2-135m (seed 0)`"],
    );

    // The same model under another name: accepted, the record follows it.
    let copy = dir.join("a-copy.gguf");
    std::fs::copy(&a, &copy).unwrap();
    let (code, _, err) = profile(s(&copy));
    assert_eq!(code, 0, "{err}");
    let record = std::fs::read_to_string(out.join("model.txt")).unwrap();
    let copy_shown = std::fs::canonicalize(&copy).unwrap().display().to_string();
    assert!(record.contains(&format!("path {copy_shown}\n")), "{record}");
    assert_eq!(std::fs::read(&profile_file).unwrap(), first);

    // A record of session 24's moa, whose fingerprint hashed the GGUF's file name (so a
    // renamed copy was refused): still accepted for that file, and rewritten.
    let legacy = {
        use sha2::{Digest, Sha256};
        let bytes = std::fs::read(&a).unwrap();
        assert!(bytes.len() <= 1 << 20, "read whole by the fingerprint");
        let mut h = Sha256::new();
        h.update(b"a.gguf");
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        format!("{:x}", h.finalize())
    };
    std::fs::write(
        out.join("model.txt"),
        format!("path {a_shown}\nfingerprint {legacy}\n"),
    )
    .unwrap();
    let (code, _, err) = profile(s(&a));
    assert_eq!(code, 0, "{err}");
    let record = std::fs::read_to_string(out.join("model.txt")).unwrap();
    assert!(
        record.contains("fingerprint ") && !record.contains(&legacy),
        "{record}"
    );

    // A folder an earlier moa made: its samples are there, no record.
    std::fs::remove_file(out.join("model.txt")).unwrap();
    let (code, _, err) = profile(s(&b));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("has no model.txt (made by an earlier moa): recording"),
        "{err}"
    );
    let record = std::fs::read_to_string(out.join("model.txt")).unwrap();
    assert!(record.contains(&format!("path {b_shown}\n")), "{record}");
}

/// `moa bench --prompt P --new M` past the context of the shape (or of a plan) was not
/// checked before the GPU; on a CPU machine it got as far as the driver check. Refused
/// first now, naming the flags, the sum and the context; so is `--new` that leaves no
/// prompt token, `--parity N` past the parity model's context, and a first `--plan` the
/// parity model (a random SmolLM2, whatever `--like` says) cannot take.
#[test]
fn bench_requests_past_the_context_are_refused_before_the_gpu() {
    refused(
        "moa",
        &["bench", "--like", "smollm2-135m", "--prompt", "1024,8190", "--new", "4"],
        &["--prompt 8190 + --new 4 = 8194 tokens is past the context of --like smollm2-135m: 8192 tokens; allowed --prompt 1..=8188 with --new 4"],
    );
    refused(
        "moa",
        &["bench", "--like", "llama-2-7b", "--new", "20000"],
        &["--new 20000 leaves no prompt token in the context of --like llama-2-7b: 16384 tokens; allowed --new 4..=16383"],
    );
    refused(
        "moa",
        &["bench", "--prompt", "18446744073709551615"],
        // The exact sum, u64::MAX + 32 (round 38: it was printed saturated at u64::MAX).
        &["= 18446744073709551647 tokens is past the context"],
    );
    // A plan made for a shorter context than the model's.
    let dir = scratch("bench-plan-context");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smollm2-135m-moa-50.toml"),
    )
    .unwrap();
    let short = text.replace("max_context_tokens = 8192", "max_context_tokens = 2048");
    assert_ne!(short, text);
    let plan = dir.join("short.toml");
    std::fs::write(&plan, short).unwrap();
    refused(
        "moa",
        &["bench", "--plan", s(&plan), "--prompt", "2000", "--new", "64"],
        &[&format!(
            "--prompt 2000 + --new 64 = 2064 tokens is past the context of the plan `{}` (model.max_context_tokens): 2048 tokens",
            plan.display()
        )],
    );
    refused(
        "moa",
        &["bench", "--parity", "8000", "--checks-only"],
        &["--parity 8000: its longest prompt (400 tokens) + 8000 = 8400 tokens is past the model's context of 8192 tokens; allowed --parity 1..=7792"],
    );
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json");
    refused(
        "moa",
        &["bench", "--like", "llama-2-7b", "--plan", s(&upstream), "--parity", "8"],
        &["--parity checks the first --plan on a random SmolLM2-135M (the --like shape is not used)"],
    );
    // In range: past the length check, refused by the next one (before any device work
    // on a machine with a GPU too).
    let err = refused(
        "moa",
        &[
            "bench", "--prompt", "8188", "--new", "4", "--parity", "8000",
        ],
        &["--parity 8000"],
    );
    assert!(!err.contains("--prompt 8188"), "{err}");
}

/// `moa eval --heatmaps DIR` wrote each PNG in place, so a run stopped mid-write left a cut
/// PNG over the last good one. The PNG is encoded in memory and written whole (through a
/// temporary renamed over it, as the JSON and markdown): a file hard-linked to the old heatmap keeps the
/// old bytes, the heatmap is a whole PNG, and no temporary is left. Runs on lavapipe.
#[test]
fn eval_heatmaps_are_written_whole() {
    let dir = scratch("heatmaps");
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let m = moa::model::random::random_model(&c, 3);
    let model = dir.join("m");
    moa::model::random::write_hf_folder(&m, &model).unwrap();
    let plan = dir.join("p.toml");
    std::fs::write(
        &plan,
        moa::plan::Plan::dense(c.model_shape()).unwrap().to_toml(),
    )
    .unwrap();
    let maps = dir.join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    let old = dir.join("old.png");
    std::fs::write(&old, b"the heatmap of an earlier run").unwrap();
    std::fs::hard_link(&old, maps.join("p.png")).unwrap();
    let (code, _, err) = run(
        "moa",
        &[
            "eval",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--lengths",
            "256",
            "--depths",
            "1",
            "--tasks",
            "passkey",
            "--no-uniform",
            "--ppl-rows",
            "1",
            "--ppl-length",
            "64",
            "--ppl-scored",
            "8",
            "--quiet",
            "--heatmaps",
            s(&maps),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&old).unwrap(),
        b"the heatmap of an earlier run",
        "the PNG was written in place, through the old file"
    );
    let png = std::fs::read(maps.join("p.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let names: Vec<String> = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".partial-")), "{names:?}");
}

/// A Hugging Face folder saved by transformers ≥ 4.47 keeps its chat template in
/// `chat_template.jinja`, not in `tokenizer_config.json`: moa said "has no chat template"
/// and fed prompts raw. The file is read, and wins over the config's, as transformers
/// loads it. A list of named templates with none named `default` rendered an empty
/// template (generate then said only "every prompt needs at least one token"): refused
/// naming the file and the names, as transformers refuses it; so is a `chat_template`
/// that is neither a string nor a list.
#[test]
fn hf_chat_templates_load_as_transformers_loads_them() {
    use moa::model::chat::ChatTemplate;
    let dir = scratch("chat-template");
    let tpl = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}";
    let config = |json: serde_json::Value| {
        std::fs::write(dir.join("tokenizer_config.json"), json.to_string()).unwrap();
    };
    // The file alone (no tokenizer_config.json), then beside the config's: the file wins.
    std::fs::write(dir.join("chat_template.jinja"), tpl).unwrap();
    let t = ChatTemplate::from_hf_folder(&dir).unwrap().unwrap();
    assert_eq!(t.source, tpl);
    config(serde_json::json!({"chat_template": "other", "eos_token": "</s>"}));
    let t = ChatTemplate::from_hf_folder(&dir).unwrap().unwrap();
    assert_eq!(t.source, tpl);
    assert_eq!(t.eos_token(), "</s>");
    std::fs::remove_file(dir.join("chat_template.jinja")).unwrap();

    let entry = |name: &str| serde_json::json!({"name": name, "template": tpl});
    config(serde_json::json!({"chat_template": [entry("tool_use"), entry("default")]}));
    let t = ChatTemplate::from_hf_folder(&dir).unwrap().unwrap();
    assert_eq!(t.source, tpl);
    let shown = dir.join("tokenizer_config.json").display().to_string();
    for (value, want) in [
        (
            serde_json::json!([entry("tool_use"), entry("rag")]),
            "`chat_template` is a list of named templates (tool_use, rag) and none is named `default`",
        ),
        (
            serde_json::json!([entry("default"), 5]),
            "`chat_template` entry 1 is 5: expected {\"name\": ..., \"template\": ...}",
        ),
        (
            serde_json::json!(7),
            "`chat_template` is 7: expected a Jinja template (a string) or a list",
        ),
    ] {
        config(serde_json::json!({ "chat_template": value }));
        let e = ChatTemplate::from_hf_folder(&dir).unwrap_err().to_string();
        assert!(e.contains(&shown) && e.contains(want), "{e}");
    }
    config(serde_json::json!({"chat_template": null}));
    assert!(ChatTemplate::from_hf_folder(&dir).unwrap().is_none());

    // Through `moa generate` (lavapipe): refused naming the way out, and `--raw`, which
    // uses no template, runs.
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let model = dir.join("m");
    moa::model::random::write_hf_folder(&moa::model::random::random_model(&c, 3), &model).unwrap();
    std::fs::write(
        model.join("tokenizer_config.json"),
        serde_json::json!({"chat_template": [entry("tool_use")]}).to_string(),
    )
    .unwrap();
    let generate = |raw: bool| {
        let mut a = vec![
            "generate",
            "--model",
            s(&model),
            "--dense",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ];
        if raw {
            a.push("--raw");
        }
        run("moa", &a)
    };
    let (code, _, err) = generate(false);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("none is named `default`") && err.contains("--raw"),
        "{err}"
    );
    let (code, _, err) = generate(true);
    assert_eq!(code, 0, "{err}");
}

/// `moa generate --plan` with a plan of another model's shape named only the first field
/// that differs ("plan `model.layers` = 30, model has 2"); it names both whole shapes.
#[test]
fn a_plan_of_another_shape_names_both_shapes() {
    let dir = scratch("other-shape");
    let model = dir.join("m.gguf");
    tiny::tiny(17, true).write_gguf(&model, |_, _| {});
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smollm2-135m-moa-50.toml");
    refused(
        "moa",
        &[
            "generate",
            "--model",
            s(&model),
            "--plan",
            s(&plan),
            "--prompt",
            "hi",
        ],
        &[
            "smollm2-135m-moa-50.toml` was made for another model than `",
            "plan `model.layers` = 30, model has 2 (the plan's shape: 30 layers, 9 query / 3 KV heads, head_dim 64; the model's: 2 layers, 4 query / 2 KV heads, head_dim 16)",
        ],
    );
}

/// Two processes writing one profile file at once (two `moa profile -o DIR` runs over the
/// same calibration, or two `--shard` runs given the same k/n) shared the temporary
/// `<file>.partial`: one's rename moved the other's half-written bytes into place, and the
/// other's rename then failed ("No such file"). Each writer has a temporary of its own
/// (`.partial-<pid>-<n>`), so concurrent saves all succeed and the file reads back whole.
#[test]
fn concurrent_saves_of_one_profile_file_all_succeed() {
    use moa::profile::InfluenceProfile;
    let dir = scratch("concurrent-save");
    let shape = moa::plan::ModelShape {
        name: None,
        layers: 8,
        q_heads: 8,
        kv_heads: 2,
        head_dim: 64,
        max_context_tokens: 4096,
    };
    // 8 x 8 x 64 x 64 tiles: 1 MiB, so writes overlap.
    let nb = 64usize;
    let values: Vec<f32> = (0..8 * 8 * nb * nb).map(|i| i as f32).collect();
    let prof = InfluenceProfile::new(shape, 4096, 64, values).unwrap();
    let path = dir.join("influence_4096.safetensors");
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..20 {
                        prof.save(&path).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a concurrent save failed");
        }
    });
    assert_eq!(InfluenceProfile::load(&path).unwrap(), prof);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A GQA GGUF without `llama.attention.head_count_kv` (an optional key: llama.cpp then
/// takes the query head count) was refused as "tensor `blk.0.attn_k.weight` has shape
/// [..], expected [..]", naming no key. The refusal names the missing key, the KV heads
/// the tensor holds and the value to add.
#[test]
fn a_gguf_without_head_count_kv_names_the_key() {
    let dir = scratch("no-kv-key");
    let model = dir.join("m.gguf");
    tiny::tiny(17, true).write_gguf(&model, |md, _| {
        md.retain(|(k, _)| k != "llama.attention.head_count_kv");
    });
    refused(
        "moa",
        &["model", "info", s(&model)],
        &[
            "tensor `blk.0.attn_k.weight` has shape",
            "2 KV heads of head_dim 16, but `llama.attention.head_count_kv` is missing, so the KV heads are taken as `llama.attention.head_count` = 4 (llama.cpp's default): add the key (llama.attention.head_count_kv = 2)",
        ],
    );
}

/// `moa eval --plan a/p.toml --plan b/p.toml` scored both as `p`: two report rows no
/// reader could tell apart, and the second heatmap `p.png` replaced the first. So did a
/// plan file named `dense.toml` (the baseline's row and heatmap). Refused before the
/// model loads, naming both files.
#[test]
fn eval_refuses_two_plans_of_one_name() {
    let dir = scratch("eval-names");
    let t = tiny::tiny(17, true);
    let model = dir.join("m.gguf");
    // A 1k context: a retrieval prompt needs more than the tiny model's own 128.
    t.write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = candle_core::quantized::gguf_file::Value::U32(1024);
            }
        }
    });
    let toml = moa::plan::Plan::dense(t.config(true).model_shape())
        .unwrap()
        .to_toml();
    for f in ["a/p.toml", "b/p.toml", "dense.toml"] {
        let f = dir.join(f);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, &toml).unwrap();
    }
    let eval = |plans: &[&str], needles: &[&str]| {
        let mut a = vec!["eval", "--model", s(&model), "--lengths", "256"];
        let plans: Vec<String> = plans.iter().map(|p| s(&dir.join(p)).to_string()).collect();
        for p in &plans {
            a.extend(["--plan", p.as_str()]);
        }
        refused("moa", &a, needles);
    };
    eval(
        &["a/p.toml", "b/p.toml"],
        &[
            "a/p.toml` and --plan `",
            "b/p.toml` have the same name `p`",
            "give one of them another file name",
        ],
    );
    eval(
        &["dense.toml"],
        &["dense.toml` has the name `dense` (the file name without .toml), the name of a baseline row"],
    );
}
