//! The README and docs/ as a contract a new user reads: every flag of the README's CLI
//! section is one its command's `--help` lists, every `MOA_*` variable the docs name is
//! one the code reads (or lists as a bench knob or a removed setting) and the other way
//! round, and every repository path the docs give exists. Reads only the repository and
//! runs `moa --help` (no GPU, under a second).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use moa::runtime::wgpu_engine::options::{BENCH_ONLY, KNOWN, REMOVED};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as (name, text).
fn docs() -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    let mut d: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    d.sort();
    files.extend(d);
    files
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap().display().to_string();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect()
}

/// Words of `text` that start with `prefix` and go on with ASCII letters, digits and
/// `extra`, each once (trailing `-_./` cut: the end of a sentence or a folder's slash).
fn words_from(text: &str, prefix: &str, extra: &[char]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let end = tail
            .char_indices()
            .skip(prefix.len())
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || extra.contains(&c)))
            .map_or(tail.len(), |(j, _)| j);
        let word = tail[..end].trim_end_matches(['-', '_', '.', '/']);
        // A flag starts a word: not the middle of `a--b` or a path.
        let starts = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || "-_./".contains(c)));
        // `MOA_BENCH_*`, `diagnose-passkey-1024-0-*.txt`, `blk.{i}`: patterns, not names.
        let pattern = tail[end..].starts_with(['*', '<', '{']);
        if starts && !pattern && word.len() > prefix.len() {
            out.insert(word.to_string());
        }
        rest = &tail[end.max(prefix.len())..];
    }
    out
}

/// The README's `## CLI` block: each command's words (`moa plan import`, ...) and its
/// lines (usage and description), as the README writes them.
fn readme_commands() -> Vec<(Vec<String>, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cli = readme
        .split("\n## CLI")
        .nth(1)
        .expect("README has a `## CLI` section");
    let block = cli
        .split("```")
        .nth(1)
        .expect("the CLI section's code block");
    let mut cmds: Vec<(Vec<String>, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with("moa ") || line.starts_with("moa-compile ") {
            let words: Vec<String> = line
                .split_whitespace()
                .take_while(|w| {
                    !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                })
                .map(str::to_string)
                .collect();
            cmds.push((words, String::new()));
        }
        if let Some((_, text)) = cmds.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    cmds
}

fn help(words: &[String]) -> String {
    let exe = match words[0].as_str() {
        "moa" => env!("CARGO_BIN_EXE_moa"),
        _ => env!("CARGO_BIN_EXE_moa-compile"),
    };
    let out = Command::new(exe)
        .args(&words[1..])
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{words:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_readme_cli_flag_is_in_its_commands_help() {
    let cmds = readme_commands();
    assert!(cmds.len() >= 15, "found only {} commands", cmds.len());
    let mut missing = Vec::new();
    for (words, text) in &cmds {
        let listed = words_from(&help(words), "--", &['-']);
        for flag in words_from(text, "--", &['-']) {
            if !listed.contains(&flag) {
                missing.push(format!("{}: {flag}", words.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README's CLI section gives flags that --help does not list:\n{}",
        missing.join("\n")
    );
}

/// Every `moa ...` / `moa-compile ...` the docs write, inline (in backticks) or as a
/// line of a code block (continuation lines joined): its command words and its text.
fn doc_commands() -> Vec<(String, Vec<String>, String)> {
    let mut out = Vec::new();
    let mut push = |doc: &str, text: &str| {
        let text = text.split(" #").next().unwrap_or(text);
        let start = ["moa ", "moa-compile "]
            .iter()
            .filter_map(|p| {
                text.match_indices(p)
                    .find(|&(i, _)| i == 0 || text[..i].ends_with([' ', '/', '(']))
                    .map(|(i, _)| i)
            })
            .min();
        let Some(i) = start else { return };
        let text = &text[i..];
        let words: Vec<String> = text
            .split_whitespace()
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()) || w.starts_with("moa"))
            .map(str::to_string)
            .collect();
        out.push((doc.to_string(), words, text.to_string()));
    };
    for (name, text) in docs() {
        let mut fenced = false;
        let mut joined = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                joined.push_str(line.trim_end_matches('\\'));
                if line.ends_with('\\') {
                    continue;
                }
                push(&name, &joined);
                joined.clear();
            } else {
                for (k, span) in line.split('`').enumerate() {
                    if k % 2 == 1 {
                        push(&name, span);
                    }
                }
            }
        }
    }
    out
}

/// The flags --help lists for the longest prefix of `words` that is a command.
fn listed_flags(
    cache: &mut std::collections::HashMap<Vec<String>, Option<BTreeSet<String>>>,
    words: &[String],
) -> Option<(Vec<String>, BTreeSet<String>)> {
    for n in (1..=words.len()).rev() {
        let path = words[..n].to_vec();
        let flags = cache
            .entry(path.clone())
            .or_insert_with(|| {
                let exe = match path[0].as_str() {
                    "moa" => env!("CARGO_BIN_EXE_moa"),
                    _ => env!("CARGO_BIN_EXE_moa-compile"),
                };
                let out = Command::new(exe)
                    .args(&path[1..])
                    .arg("--help")
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| words_from(&String::from_utf8_lossy(&out.stdout), "--", &['-']))
            })
            .clone();
        if let Some(f) = flags {
            return Some((path, f));
        }
    }
    None
}

/// Beyond the README's CLI section: every `moa` command line in README.md and docs/*.md
/// gives only flags its command's --help lists.
#[test]
fn every_command_line_in_the_docs_uses_flags_its_command_has() {
    let mut cache = std::collections::HashMap::new();
    let cmds = doc_commands();
    assert!(cmds.len() >= 50, "found only {} command lines", cmds.len());
    let mut wrong = Vec::new();
    for (doc, words, text) in &cmds {
        let Some((path, listed)) = listed_flags(&mut cache, words) else {
            continue;
        };
        for flag in words_from(text, "--", &['-']) {
            if !listed.contains(&flag) {
                wrong.push(format!("{doc}: `{}` has no {flag}: {text}", path.join(" ")));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The files the code reads settings from, with the names the docs call test and bench
/// knobs (not library settings, so they are not in the wgpu option lists).
fn sources() -> String {
    let mut text = String::new();
    let mut stack: Vec<PathBuf> = ["src", "tests", "examples", "benches", "scripts", "build.rs"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p
            .extension()
            .is_some_and(|e| e == "rs" || e == "sh" || e == "py")
            && p.file_name().is_some_and(|n| n != "docs_contract.rs")
        {
            text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    text
}

#[test]
fn every_moa_variable_in_the_docs_is_read_and_every_setting_is_documented() {
    let docs = docs();
    let all_docs: String = docs.iter().map(|(_, t)| t.as_str()).collect();
    let named = words_from(&all_docs, "MOA_", &['_']);
    let removed: Vec<&str> = REMOVED.iter().map(|(n, _)| *n).collect();
    let sources = sources();
    let mut wrong = Vec::new();
    for v in &named {
        if v.starts_with("MOA_WGPU_") || v.starts_with("MOA_WGSL_") {
            let v = v.as_str();
            if !(KNOWN.contains(&v) || BENCH_ONLY.contains(&v) || removed.contains(&v)) {
                wrong.push(format!(
                    "{v}: named in the docs, not in options::KNOWN, BENCH_ONLY or REMOVED"
                ));
            }
        } else if !sources.contains(v.as_str()) {
            wrong.push(format!("{v}: named in the docs, read nowhere in the code"));
        }
    }
    let design = std::fs::read_to_string(root().join("docs/DESIGN.md")).unwrap();
    for v in KNOWN.iter().chain(&[
        moa::runtime::cuda::CUBIN_ENV,
        moa::runtime::cuda::INCLUDE_ENV,
    ]) {
        if !design.contains(&format!("`{v}`")) {
            wrong.push(format!("{v}: read by moa, not in docs/DESIGN.md §7.3"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_repository_path_in_the_docs_exists() {
    // Outputs the docs' example commands write, not files of the repository.
    let outputs = ["plans/x-50.toml"];
    let tops = [
        "src/",
        "docs/",
        "tests/",
        "benches/",
        "scripts/",
        "examples/",
        "plans/",
        "templates/",
        "shaders/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for (name, text) in docs() {
        // `./scripts/main.sh` is the path `scripts/main.sh`.
        let text = text.replace("`./", "`").replace(" ./", " ");
        for top in tops {
            for p in words_from(&text, top, &['_', '-', '.', '/']) {
                if !outputs.contains(&p.as_str()) && !root().join(&p).exists() {
                    missing.push(format!("{name}: {p}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths the docs give that the repository lacks:\n{}",
        missing.join("\n")
    );
}

/// Every `.rs` file under `src/` and `tests/`, as (path relative to the root, text).
fn rust_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join("src"), &mut paths);
    walk(&root().join("tests"), &mut paths);
    paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap().display().to_string();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect()
}

/// Whether `text` declares `kind name` (`fn` or `mod`) as a whole word.
fn declares(text: &str, kind: &str, name: &str) -> bool {
    let pat = format!("{kind} {name}");
    text.match_indices(&pat).any(|(i, _)| {
        let after = text[i + pat.len()..].chars().next();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The module path of a source file: `src/codegen/cuda/mod.rs` is `codegen::cuda`,
/// `tests/model_tiny.rs` is `model_tiny`.
fn module_path(file: &str) -> String {
    let f = file
        .strip_prefix("src/")
        .or_else(|| file.strip_prefix("tests/"))
        .unwrap_or(file);
    let f = f.strip_suffix(".rs").unwrap_or(f);
    let f = f.strip_suffix("/mod").unwrap_or(f);
    f.replace('/', "::")
}

#[test]
fn every_test_the_docs_name_in_brackets_exists() {
    // DESIGN.md's rule: "Each choice is written once here and pinned by a test (named in
    // brackets)". A bracket's test reference is `tests/file.rs::test`, a module path
    // `a::b::tests::test` (or `a::b::tests`), or a test file's module `file::test`;
    // each must name a function (or the `tests` module) that exists in that file or
    // module (a split module's folder counts: `codegen::cuda::tests` may be in any of
    // src/codegen/cuda/'s files). Other backticked words in brackets (`ops::check`,
    // `examples/embed`) are left to the path and name checks above.
    let files = rust_files();
    let mut wrong = Vec::new();
    for (name, text) in docs() {
        let mut rest = text.as_str();
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            let group = &after[..close];
            rest = &after[close..];
            if group.contains('[') {
                continue;
            }
            for (i, tok) in group.split('`').enumerate() {
                // Odd pieces are inside backticks; a reference may wrap after `::`.
                let tok: String = tok.split_whitespace().collect();
                if i % 2 == 0 || !tok.contains("::") {
                    continue;
                }
                if !tok
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_:/.".contains(c))
                {
                    continue;
                }
                let (module, item) = if let Some((file, test)) = tok.split_once(".rs::") {
                    (module_path(&format!("{file}.rs")), test.to_string())
                } else {
                    let (m, t) = tok.rsplit_once("::").unwrap();
                    (m.to_string(), t.to_string())
                };
                // `a::b::tests` names the module; `a::b::tests::t` a test of it.
                let (module, kind) = if item == "tests" {
                    (module, "mod")
                } else {
                    (
                        module
                            .strip_suffix("::tests")
                            .unwrap_or(&module)
                            .to_string(),
                        "fn",
                    )
                };
                // Only references whose module is one of ours (`ops::check` is a
                // function, `plan::BETA_DEN` a constant: both skipped unless a file
                // of that module path exists).
                let candidates: Vec<&(String, String)> = files
                    .iter()
                    .filter(|(f, _)| {
                        let m = module_path(f);
                        let parent = m.rsplit_once("::").map(|(p, _)| p);
                        m == module
                            || m.ends_with(&format!("::{module}"))
                            || parent.is_some_and(|p| {
                                f.starts_with("src/")
                                    && (p == module || p.ends_with(&format!("::{module}")))
                            })
                    })
                    .collect();
                let test_like = kind == "mod" || item.matches('_').count() >= 2;
                if candidates.is_empty() || !test_like || item.starts_with(char::is_uppercase) {
                    if tok.starts_with("tests/") || tok.split("::").any(|s| s == "tests") {
                        wrong.push(format!("{name}: [{tok}]: no such file or module"));
                    }
                    continue;
                }
                // A test module named in its own right (`input::prompt_text_tests`).
                let found = |t: &str| declares(t, kind, &item) || declares(t, "mod", &item);
                if !candidates.iter().any(|(_, t)| found(t)) {
                    wrong.push(format!("{name}: [{tok}]: no `{kind} {item}` in {module}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "tests the docs name in brackets that the repository lacks:\n{}",
        wrong.join("\n")
    );
}

/// docs/CALIBRATION.md's JSONL example is a pass-key sample as `moa calib` writes one: each
/// key it shows is a field of the sample or of its `expected`, and its `source` is the
/// name the default `--passkey-source` (repeat) records. It showed the quote source's
/// python3-doc name on a pass key (round 41).
#[test]
fn the_calibration_jsonl_example_has_the_written_fields_and_source() {
    let doc = std::fs::read_to_string(root().join("docs/CALIBRATION.md")).unwrap();
    let start = doc.find("## JSONL").expect("a JSONL section");
    let block = &doc[start..];
    let block = &block[block.find("```json").expect("a json block") + 7..];
    let block = &block[..block.find("```").expect("the block's end")];
    assert!(block.contains("\"id\": \"passkey-"), "{block}");
    let repeat = moa::calib::TextSource::parse("repeat").unwrap().name();
    let sample = moa::calib::CalibSample {
        id: "passkey-1024-0".into(),
        task: "passkey".into(),
        length_level: 1024,
        prompt_tokens: vec![1, 2],
        response_tokens: vec![3],
        n_tokens: 3,
        response_span: [2, 3],
        source: repeat.into(),
        seed: 0,
        dense_answer_text: String::new(),
        expected: moa::calib::Expected {
            answer: String::new(),
            correct: true,
            depth: Some(0.5),
            needle_token: Some(1),
        },
    };
    let v = serde_json::to_value(&sample).unwrap();
    let fields: BTreeSet<String> = v
        .as_object()
        .unwrap()
        .keys()
        .chain(v["expected"].as_object().unwrap().keys())
        .cloned()
        .collect();
    let mut rest = block;
    while let Some(i) = rest.find("\":") {
        let key = &rest[..i];
        let key = &key[key.rfind('"').unwrap() + 1..];
        assert!(
            fields.contains(key),
            "`{key}` of the example is no field: {fields:?}"
        );
        rest = &rest[i + 2..];
    }
    assert!(
        block.contains(&format!("\"source\": \"{repeat}\"")),
        "the example's source is not `{repeat}`:\n{block}"
    );
}
