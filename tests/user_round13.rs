//! A new user's journey, round 13 (benches/RESULTS.md): what a user of the CLI tried on a
//! CPU machine and found wrong, each pinned here. None of these needs a GPU, the fetched
//! model or anything outside the repository.

mod common;

use std::path::{Path, PathBuf};

common::cli::tagged!();

/// A two-layer random model of SmolLM2's heads (vocabulary 300, byte-level tokenizer) as
/// a Hugging Face folder `dir/name`, its weights drawn from `seed`.
fn tiny_model(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let mut c = moa::model::random::like("smollm2-135m").unwrap();
    (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (2, 64, 96, 300);
    let m = moa::model::random::random_model(&c, seed);
    let path = dir.join(name);
    moa::model::random::write_hf_folder(&m, &path).unwrap();
    path
}

/// Sets `key` of the JSON file `file` to `value`.
fn set_json_key(file: &Path, key: &str, value: serde_json::Value) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    json[key] = value;
    std::fs::write(file, json.to_string()).unwrap();
}

/// A Hugging Face `config.json` whose `bos_token_id` or `eos_token_id` lies past the
/// vocabulary (or is not a token id at all) was read without a word, where a GGUF's
/// `tokenizer.ggml.bos_token_id` is refused: a chat template naming the BOS put it in
/// front of the prompt and the forward pass failed, naming neither file nor key. Each is
/// refused now, naming the file, the key, the value and the vocabulary size; so is a
/// `generation_config.json`'s `eos_token_id`. A null id (transformers' "none") and a list
/// of ids in range still read.
#[test]
fn a_hf_special_token_past_the_vocabulary_is_refused_by_file_key_and_value() {
    let dir = scratch("special");
    let model = tiny_model(&dir, "m", 1);
    let m = model.to_str().unwrap();
    let config = model.join("config.json");
    let original = std::fs::read_to_string(&config).unwrap();
    let shown = config.display().to_string();
    // (key, value, the id named, why)
    for (key, value, id, why) in [
        (
            "bos_token_id",
            serde_json::json!(99999),
            "99999",
            "out of range: allowed 0..300 (`vocab_size`, the model's vocabulary)",
        ),
        (
            "eos_token_id",
            serde_json::json!([2, 300]),
            "300",
            "out of range: allowed 0..300",
        ),
        (
            "eos_token_id",
            serde_json::json!("2"),
            "\"2\"",
            "expected a token id (a non-negative integer)",
        ),
        (
            "bos_token_id",
            serde_json::json!(-1),
            "-1",
            "expected a token id (a non-negative integer)",
        ),
    ] {
        std::fs::write(&config, &original).unwrap();
        set_json_key(&config, key, value.clone());
        for args in [
            vec!["model", "info", m],
            vec!["generate", "--dense", "--model", m, "--prompt", "hi"],
        ] {
            refused("moa", &args, &[&shown, &format!("`{key}` is `{id}`"), why]);
        }
    }
    std::fs::write(&config, &original).unwrap();
    set_json_key(&config, "bos_token_id", serde_json::Value::Null);
    set_json_key(&config, "eos_token_id", serde_json::json!([2, 299]));
    let (code, _, err) = run("moa", &["model", "info", m]);
    assert_eq!(code, 0, "{err}");

    let gen = model.join("generation_config.json");
    std::fs::write(&gen, r#"{"eos_token_id": 512}"#).unwrap();
    refused(
        "moa",
        &["model", "info", m],
        &[
            &gen.display().to_string(),
            "`eos_token_id` is `512`",
            "allowed 0..300",
        ],
    );
}

/// `moa model random -o FILE` said "exists and is not an empty folder … (config.json and
/// model.safetensors would be replaced)" of a file: it says the path is a file and what
/// to give, and leaves the file as it was. A path through a file (`FILE/m`) gives the
/// OS's reason, not "is not an empty folder".
#[test]
fn model_random_into_a_file_says_it_is_a_file() {
    let dir = scratch("random-file");
    let file = dir.join("my.gguf");
    std::fs::write(&file, b"GGUF keep me").unwrap();
    let f = file.to_str().unwrap();
    let err = refused(
        "moa",
        &["model", "random", "--like", "smollm2-135m", "-o", f],
        &[
            &format!("-o `{f}` is a file, not a folder"),
            "give a path that does not exist or an empty folder",
        ],
    );
    assert!(!err.contains("would be replaced"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"GGUF keep me");
    let inside = file.join("m");
    let err = refused(
        "moa",
        &[
            "model",
            "random",
            "--like",
            "smollm2-135m",
            "-o",
            inside.to_str().unwrap(),
        ],
        &[&format!("-o `{}`", inside.display()), "Not a directory"],
    );
    assert!(!err.contains("not an empty folder"), "{err}");
}

/// `moa optimize` given one profile twice averaged it with itself, weighting it double
/// against the other profiles of its length, without a word. The same file is refused
/// under any spelling (`./p`, `sub/../p`, a symbolic or hard link), naming both; a copy
/// under another name (the same influence) is refused too.
#[test]
fn optimize_refuses_a_profile_given_twice_under_any_spelling() {
    use moa::plan::ModelShape;
    use moa::profile::InfluenceProfile;
    let dir = scratch("profile-twice");
    let shape = ModelShape {
        name: Some("tiny".into()),
        layers: 2,
        q_heads: 4,
        kv_heads: 2,
        head_dim: 64,
        max_context_tokens: 4096,
    };
    let p = dir.join("p512.safetensors");
    InfluenceProfile::synthetic(shape.clone(), 512, 64, 3)
        .save(&p)
        .unwrap();
    let other = dir.join("q512.safetensors");
    InfluenceProfile::synthetic(shape, 512, 64, 4)
        .save(&other)
        .unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let ps = p.to_str().unwrap();
    let out = dir.join("o");
    let o = out.to_str().unwrap();
    let optimize = |a: &str, b: &str| {
        vec![
            "optimize",
            "--profile",
            a,
            "--profile",
            other.to_str().unwrap(),
            "--profile",
            b,
            "--density",
            "0.5",
            "-o",
            o,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<String>>()
    };
    let spelled = format!("{}/sub/../p512.safetensors", dir.display());
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    let hard = dir.join("hard.safetensors");
    std::fs::hard_link(&p, &hard).unwrap();
    let args = optimize(ps, ps);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "moa",
        &a,
        &[&format!("--profile `{ps}` is given twice:"), "weigh double"],
    );
    for again in [
        spelled.as_str(),
        link.to_str().unwrap(),
        hard.to_str().unwrap(),
    ] {
        let args = optimize(ps, again);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(
            "moa",
            &a,
            &[&format!(
                "--profile `{again}` is given twice (as `{ps}` and `{again}`)"
            )],
        );
    }
    let copy = dir.join("copy.safetensors");
    std::fs::copy(&p, &copy).unwrap();
    let args = optimize(ps, copy.to_str().unwrap());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "moa",
        &a,
        &[&format!(
            "--profile `{}` holds the same influence as `{ps}` (N = 512; a copy?)",
            copy.display()
        )],
    );
    assert!(!out.exists(), "a refused optimize wrote its folder");
}

/// A pipeline work folder given by hand (`--workdir`) to a second model with the same
/// flags reused the first model's calibration, profiles and scores, saying only
/// "reusing": nothing in them recorded the model. The first run records it
/// (`model.txt`: path and a fingerprint of its config, tokenizer and weight files'
/// ends); a model whose fingerprint differs (here: same shape, other weights) is refused
/// naming both, before any step; the same model under another path (a copy) is not.
#[test]
fn a_work_folder_made_for_one_model_refuses_another() {
    let dir = scratch("workdir-model");
    let a = tiny_model(&dir, "a", 1);
    let b = tiny_model(&dir, "b", 2);
    let w = dir.join("w");
    std::fs::create_dir_all(&w).unwrap();
    // A calibration file the first step refuses at once: the run stops right after the
    // work folder's model check, without answering a prompt.
    std::fs::write(w.join("calib.jsonl"), "not a sample\n").unwrap();
    let pipeline = |model: &Path| {
        run(
            "moa",
            &[
                "pipeline",
                "--model",
                model.to_str().unwrap(),
                "--workdir",
                w.to_str().unwrap(),
                "--profile-lengths",
                "512",
                "--validate-length",
                "1024",
                "--samples",
                "1",
                "--source",
                "generated",
                "--plans-dir",
                dir.join("plans").to_str().unwrap(),
            ],
        )
    };
    let (code, _, err) = pipeline(&a);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("calib.jsonl"), "{err}");
    // The folder predates the record (a calibration, no model.txt): said, and recorded.
    assert!(
        err.contains("has no model.txt (made by an earlier moa): recording"),
        "{err}"
    );
    let record = std::fs::read_to_string(w.join("model.txt")).unwrap();
    let a_shown = std::fs::canonicalize(&a).unwrap().display().to_string();
    assert!(record.contains(&format!("path {a_shown}\n")), "{record}");
    assert!(record.contains("fingerprint "), "{record}");

    let (code, _, err) = pipeline(&b);
    assert_eq!(code, 2, "{err}");
    let b_shown = std::fs::canonicalize(&b).unwrap().display().to_string();
    for want in [
        format!(
            "the work folder `{}` was made for the model `{a_shown}`",
            w.display()
        ),
        format!("this run's model is `{b_shown}`, which differs from it"),
        "give another --workdir".to_string(),
    ] {
        assert!(err.contains(&want), "`{want}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");

    // A copy of the first model is the same model: the run goes on to the calibration
    // file (refused there as before), and the record follows the new path.
    let copy = dir.join("a-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&a).unwrap() {
        let e = e.unwrap().path();
        std::fs::copy(&e, copy.join(e.file_name().unwrap())).unwrap();
    }
    let (code, _, err) = pipeline(&copy);
    assert_ne!(code, 0, "{err}");
    assert!(
        !err.contains("was made for the model") && err.contains("calib.jsonl"),
        "{err}"
    );
    let record = std::fs::read_to_string(w.join("model.txt")).unwrap();
    let copy_shown = std::fs::canonicalize(&copy).unwrap().display().to_string();
    assert!(record.contains(&format!("path {copy_shown}\n")), "{record}");
}

/// `moa diagnose --output` was written only after every sample was diagnosed (forward and
/// backward passes, minutes on a real model), so a missing folder failed then, and the
/// report could replace its own calibration file; `moa validate --output` could replace
/// the held-out file or a plan with its table (after the whole run). Each is refused
/// before any work, naming the flag and the file.
#[test]
fn report_outputs_are_checked_before_the_work() {
    let dir = scratch("report-outputs");
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml");
    let calib = dir.join("c.jsonl");
    std::fs::write(&calib, "kept\n").unwrap();
    let c = calib.to_str().unwrap();
    let missing = dir.join("nodir").join("r.txt");
    refused(
        "moa",
        &[
            "diagnose",
            "--calib",
            c,
            "--plan",
            plan,
            "--output",
            missing.to_str().unwrap(),
        ],
        &[&format!(
            "--output `{}`: the folder `{}` does not exist",
            missing.display(),
            dir.join("nodir").display()
        )],
    );
    let again = format!("{}/./c.jsonl", dir.display());
    for args in [
        vec!["diagnose", "--calib", c, "--plan", plan, "--output", &again],
        vec!["validate", "--calib", c, "--plan", plan, "--output", &again],
    ] {
        refused(
            "moa",
            &args,
            &[&format!(
                "--output `{again}` is the input `{c}`: writing it would replace the input"
            )],
        );
    }
    assert_eq!(std::fs::read_to_string(&calib).unwrap(), "kept\n");
}

/// `MOA_CACHE` naming a file (a model file given as the cache): `moa model info` said
/// "the default model is not in the cache … run `moa model fetch`", and the fetch failed
/// "cannot create the cache folder: File exists … needs about 192 MB free there". Both
/// say the variable names a file, before any download.
#[test]
fn moa_cache_naming_a_file_is_said_so() {
    let dir = scratch("cache-file");
    let file = dir.join("model.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    for args in [&["model", "info"][..], &["model", "fetch"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
            .env("MOA_CACHE", &file)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "MOA_CACHE `{}` is a file, not a folder",
                file.display()
            )),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"GGUF");
}

/// Outputs that are files of the model or the command's own inputs. `moa calib --out
/// MODEL/config.json` answered every prompt and replaced the model's config with its
/// samples; `moa eval --json` a plan it scored (or `--markdown` the model's tokenizer)
/// with its report; `moa validate --best` and `moa plan import -o` a model file with a
/// plan; `moa profile -o MODEL` wrote `influence_<N>.safetensors` into the model's folder,
/// which every later load read as a weight file ("tensor `cut_influence` … is not a tensor
/// of the Llama architecture"). Each is refused before any work, naming the flag, the file
/// and the folder, and the model still loads.
#[test]
fn an_output_inside_the_model_folder_or_on_an_input_is_refused() {
    let dir = scratch("model-outputs");
    let model = tiny_model(&dir, "m", 1);
    let m = model.to_str().unwrap();
    let config = model.join("config.json");
    let cfg = config.to_str().unwrap();
    let before = std::fs::read(&config).unwrap();
    let plan = dir.join("p.toml");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plans/smollm2-135m-moa-50.toml"
        ),
        &plan,
    )
    .unwrap();
    let p = plan.to_str().unwrap();
    let calib = dir.join("c.jsonl");
    std::fs::write(&calib, "\n").unwrap();
    let c = calib.to_str().unwrap();
    let in_folder =
        format!("is a file of the model folder `{m}`: writing it would replace that file");
    for (args, want) in [
        (
            vec![
                "calib",
                "--model",
                m,
                "--out",
                cfg,
                "--lengths",
                "512",
                "--samples",
                "1",
                "--source",
                "generated",
            ],
            format!("--out `{cfg}` {in_folder}"),
        ),
        (
            vec!["eval", "--model", m, "--plan", p, "--json", p],
            format!("--json `{p}` is the input `{p}`"),
        ),
        (
            vec!["eval", "--model", m, "--plan", p, "--markdown", cfg],
            format!("--markdown `{cfg}` {in_folder}"),
        ),
        (
            vec![
                "validate", "--model", m, "--calib", c, "--plan", p, "--best", cfg,
            ],
            format!("--best `{cfg}` {in_folder}"),
        ),
        (
            vec![
                "profile",
                "--model",
                m,
                "--calib",
                c,
                "--lengths",
                "512",
                "-o",
                m,
            ],
            format!("-o `{m}` is the model folder `{m}`"),
        ),
    ] {
        refused("moa", &args, &[&want]);
    }
    assert_eq!(std::fs::read(&config).unwrap(), before);
    let (code, _, err) = run("moa", &["model", "info", m]);
    assert_eq!(code, 0, "{err}");
    // A file of another name kept beside the model is not the model's: a report there is
    // written (here the plan's, refused only for its missing samples).
    let kept = model.join("calib.jsonl");
    std::fs::write(&kept, "old\n").unwrap();
    let err = refused(
        "moa",
        &[
            "validate",
            "--model",
            m,
            "--calib",
            c,
            "--plan",
            p,
            "--output",
            kept.to_str().unwrap(),
        ],
        &["has no samples"],
    );
    assert!(!err.contains("model folder"), "{err}");
}

/// A `moa model random` stopped part-way (a kill during a 13 GB write) leaves
/// model.safetensors without config.json (written last); the retry said only "exists and
/// is not an empty folder". It names what it found and what to do.
#[test]
fn model_random_over_a_stopped_run_says_so() {
    let dir = scratch("random-stopped");
    let out = dir.join("rnd");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("model.safetensors"), b"cut").unwrap();
    refused(
        "moa",
        &[
            "model",
            "random",
            "--like",
            "smollm2-135m",
            "-o",
            out.to_str().unwrap(),
        ],
        &[
            "exists and is not an empty folder",
            "it holds model.safetensors but no config.json, as a `moa model random` stopped \
             part-way leaves it: delete the folder and run again",
        ],
    );
}

/// `moa validate` / `moa eval` given one plan twice (`p.toml` and `./p.toml`) scored it
/// twice, repeating its row (and writing its heatmap twice): refused before any work,
/// naming both spellings.
#[test]
fn validate_and_eval_refuse_a_plan_given_twice() {
    let dir = scratch("plan-twice");
    let plan = dir.join("p.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/plans/fixture-gqa.toml"),
        &plan,
    )
    .unwrap();
    let p = plan.to_str().unwrap();
    let again = format!("{}/./p.toml", dir.display());
    let calib = dir.join("c.jsonl");
    std::fs::write(&calib, "\n").unwrap();
    let c = calib.to_str().unwrap();
    for args in [
        vec!["validate", "--calib", c, "--plan", p, "--plan", &again],
        vec!["eval", "--plan", p, "--plan", &again],
    ] {
        refused(
            "moa",
            &args,
            &[&format!(
                "--plan `{again}` is given twice (as `{p}` and `{again}`): give each file once"
            )],
        );
    }
}
