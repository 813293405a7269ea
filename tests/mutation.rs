//! Seeded mutation test (issue 10): 1,000 mutated plans and 1,000 mutated GGUF headers per
//! run, through the library. None may panic, and every error must name what is wrong: a
//! plan field (`layers[2].beta[5]`, a TOML line and column, or a backticked key) or a GGUF
//! header field, metadata key or tensor. Plans that survive are round-tripped, measured
//! and lowered; every 16th is compiled for both targets. 500 mutated upstream JSON plans
//! go through `plan::upstream::import`.
//!
//! Seeds are fixed so a failure reproduces; `MOA_MUTATION_SEED` runs another sequence.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use moa::codegen::{self, CodegenError, Target};
use moa::lower::{lower, StorageType};
use moa::model::{Model, ModelError, ModelTokenizer};
use moa::plan::stats::plan_stats;
use moa::plan::{Plan, PlanError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PLANS: usize = 1000;
const HEADERS: usize = 1000;
const UPSTREAM: usize = 500;

fn seed() -> u64 {
    std::env::var("MOA_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Values that sit on or past a boundary somewhere in the plan format.
const PLAN_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "4",
    "7",
    "64",
    "256",
    "260",
    "1023",
    "1024",
    "1025",
    "4096",
    "16777216",
    "-16777216",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "-9223372036854775809",
    "1e-300",
    "1e300",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "0.3",
    "1.0000001",
    "0.000244140625",
    "\"moa\"",
    "\"upstream\"",
    "\"x\"",
    "[]",
    "[1]",
    "true",
    "{}",
];

const PLAN_KEYS: &[&str] = &[
    "format_version",
    "layers",
    "q_heads",
    "kv_heads",
    "head_dim",
    "max_context_tokens",
    "sink_tokens",
    "min_span_tokens",
    "block_tokens",
    "mode",
    "max_new_tokens",
    "alpha",
    "beta",
    "name",
    "target_densities",
    "provenance",
    "bogus",
];

/// Byte ranges of the numbers (and quoted strings) in a text.
fn value_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            let s = i;
            i += 1;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                i += 1;
            }
            out.push((s, (i + 1).min(b.len())));
            i += 1;
        } else if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let s = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b".+-_".contains(&b[i])) {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

fn mutate_plan(base: &str, rng: &mut StdRng) -> String {
    let mut text = base.to_string();
    for _ in 0..rng.random_range(1..=3) {
        let lines: Vec<&str> = text.lines().collect();
        let spans = value_spans(&text);
        if lines.is_empty() || spans.is_empty() {
            break;
        }
        text = match rng.random_range(0..8) {
            0..=2 => {
                let (s, e) = spans[rng.random_range(0..spans.len())];
                let v = PLAN_VALUES[rng.random_range(0..PLAN_VALUES.len())];
                format!("{}{v}{}", &text[..s], &text[e..])
            }
            3 => {
                let i = rng.random_range(0..lines.len());
                let mut l = lines.clone();
                l.remove(i);
                l.join("\n")
            }
            4 => {
                let i = rng.random_range(0..lines.len());
                let mut l = lines.clone();
                l.insert(i, lines[i]);
                l.join("\n")
            }
            5 => {
                let a = PLAN_KEYS[rng.random_range(0..PLAN_KEYS.len())];
                let b = PLAN_KEYS[rng.random_range(0..PLAN_KEYS.len())];
                text.replacen(&format!("{a} ="), &format!("{b} ="), 1)
            }
            6 => {
                // One entry more or fewer in an alpha / beta array.
                let key = if rng.random_bool(0.5) {
                    "alpha = ["
                } else {
                    "beta = ["
                };
                let starts: Vec<usize> = text.match_indices(key).map(|(i, _)| i).collect();
                if starts.is_empty() {
                    text
                } else {
                    let at = starts[rng.random_range(0..starts.len())] + key.len();
                    if rng.random_bool(0.5) {
                        format!("{}0, {}", &text[..at], &text[at..])
                    } else {
                        let end = text[at..].find([',', ']']).map_or(at, |e| at + e + 1);
                        format!("{}{}", &text[..at], &text[end..])
                    }
                }
            }
            _ => {
                let mut cut = rng.random_range(0..text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text[..cut].to_string()
            }
        };
        if text.is_empty() {
            break;
        }
    }
    text
}

/// Does a plan error name the place? `Invalid` names its field (and the message shows
/// it); a parse error points at a line, or names a key in backticks.
fn plan_error_names_its_field(e: &PlanError) -> bool {
    match e {
        PlanError::Invalid { field, .. } => {
            !field.is_empty() && e.to_string().contains(&format!("`{field}`"))
        }
        // An empty file has no field to name: it says so (round 18), not toml's or
        // serde's "EOF ... at line 1 column 0".
        PlanError::Parse { message, .. } => {
            message.contains("line ")
                || message.contains('`')
                || message.contains("is empty (0 bytes)")
        }
        PlanError::Io { .. } => false,
    }
}

#[test]
fn mutated_plans_never_panic_and_errors_name_their_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let bases: Vec<String> = [
        "fixture-mha.toml",
        "fixture-gqa.toml",
        "smollm2-135m-moa-50.toml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
    .collect();
    let mut rng = StdRng::seed_from_u64(seed());
    let (mut ok, mut compiled, mut unnamed) = (0, 0, Vec::new());
    for i in 0..PLANS {
        let text = mutate_plan(&bases[i % bases.len()], &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Option<bool>, String> {
            let plan = match Plan::from_toml_str(&text, "mutated.toml") {
                Ok(p) => p,
                Err(e) if plan_error_names_its_field(&e) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let back =
                Plan::from_toml_str(&plan.to_toml(), "round-trip").map_err(|e| e.to_string())?;
            assert_eq!(back, plan, "to_toml round trip");
            if let Some(r) = plan.prompt_range() {
                let n = plan.checked_n_for_prompt(*r.end()).unwrap();
                let st = plan_stats(&plan, n, 2);
                assert!(st.kv_density.is_finite());
                let _ = plan.checked_n_for_prompt(0).unwrap_err();
            }
            let module = lower(&plan, StorageType::F16);
            let mut built = false;
            if ok % 16 == 0 {
                for t in [Target::Wgsl, Target::Cuda] {
                    match codegen::generate(&module, t) {
                        Ok(_) => built = true,
                        // A plan the target cannot run is refused by name; anything else
                        // from a valid plan is a compiler bug.
                        Err(e @ CodegenError::Resources { .. }) => {
                            assert!(e.to_string().starts_with("layer "), "{e}")
                        }
                        Err(e) => panic!("valid plan failed to compile: {e}"),
                    }
                }
            }
            Ok(Some(built))
        }));
        match outcome {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(built))) => {
                ok += 1;
                compiled += usize::from(built);
            }
            Ok(Err(msg)) => unnamed.push(format!("{msg}\n--- input:\n{text}")),
            Err(_) => panic!("plan #{i} (seed {}) panicked; input:\n{text}", seed()),
        }
    }
    assert!(
        unnamed.is_empty(),
        "{} errors do not name their field, e.g.:\n{}",
        unnamed.len(),
        unnamed[0]
    );
    eprintln!("{PLANS} mutated plans: {ok} valid, {compiled} compiled for both targets");
    // The mutations must leave some plans valid, or the checks after parsing test nothing.
    assert!(
        ok >= 50 && compiled >= 3,
        "only {ok} valid plans, {compiled} compiled"
    );
}

/// Upstream JSON plans (`moa plan import`), mutated the same way: numbers replaced,
/// entries dropped or added, the text cut short.
#[test]
fn mutated_upstream_plans_never_panic_and_errors_name_their_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let bases: Vec<(String, moa::plan::ModelShape)> = ["fixture-mha.toml", "fixture-gqa.toml"]
        .iter()
        .map(|f| {
            let plan = Plan::load(&root.join(f)).unwrap();
            (moa::plan::upstream::export(&plan), plan.model().clone())
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed() ^ 0x5eed);
    let mut valid = 0;
    for i in 0..UPSTREAM {
        let (base, shape) = &bases[i % bases.len()];
        let mut text = base.clone();
        for _ in 0..rng.random_range(1..=2) {
            let spans = value_spans(&text);
            if spans.is_empty() || text.is_empty() {
                break;
            }
            text = match rng.random_range(0..4) {
                0 | 1 => {
                    let (s, e) = spans[rng.random_range(0..spans.len())];
                    let v = PLAN_VALUES[rng.random_range(0..PLAN_VALUES.len())];
                    format!("{}{v}{}", &text[..s], &text[e..])
                }
                2 => {
                    // Drop one number and the comma after it, or one bracket.
                    let (s, e) = spans[rng.random_range(0..spans.len())];
                    let e = if text[e..].starts_with(',') { e + 1 } else { e };
                    format!("{}{}", &text[..s], &text[e..])
                }
                _ => text[..rng.random_range(0..text.len())].to_string(),
            };
        }
        let shape = shape.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            moa::plan::upstream::import(&text, "mutated.json", shape)
        }));
        match outcome {
            Err(_) => panic!(
                "upstream plan #{i} (seed {}) panicked; input:\n{text}",
                seed()
            ),
            Ok(Ok(_)) => valid += 1,
            Ok(Err(e)) => assert!(
                plan_error_names_its_field(&e),
                "does not name its field: {e}\n--- input:\n{text}"
            ),
        }
    }
    eprintln!("{UPSTREAM} mutated upstream plans: {valid} valid");
}

/// A tiny Llama as GGUF bytes, with `general.alignment` set so that it can be mutated too.
fn base_gguf(dir: &Path) -> (Vec<u8>, usize) {
    let path = dir.join("base.gguf");
    common::tiny::tiny(5, true).write_gguf(&path, |md, _| {
        md.insert(0, ("general.alignment".into(), Value::U32(32)));
    });
    let bytes = std::fs::read(&path).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    (bytes, content.tensor_data_offset as usize)
}

const GGUF_VALUES: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    12,
    13,
    31,
    33,
    255,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 32,
    1 << 40,
    1 << 62,
    u64::MAX,
];

fn mutate_gguf(base: &[u8], header_len: usize, alignment_at: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..rng.random_range(1..=2) {
        let header_len = header_len.min(b.len());
        if header_len < 16 {
            break;
        }
        match rng.random_range(0..6) {
            // A 4- or 8-byte little-endian field (lengths, counts, types, dims) set to a
            // boundary value; 4-aligned positions hit most of the header's fields.
            0..=2 => {
                let at = rng.random_range(0..header_len.saturating_sub(8)) & !3;
                let v = GGUF_VALUES[rng.random_range(0..GGUF_VALUES.len())];
                if rng.random_bool(0.5) {
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                } else {
                    b[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
                }
            }
            // The value of `general.alignment` (first entry, u32 after its type).
            3 => {
                let at = alignment_at;
                if at + 4 <= b.len() {
                    let v = [0u32, 1, 3, 48, 1 << 31, u32::MAX][rng.random_range(0..6)];
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            4 => {
                for _ in 0..rng.random_range(1..=8) {
                    let at = rng.random_range(0..header_len);
                    b[at] = rng.random();
                }
            }
            _ => {
                let cut = rng.random_range(0..b.len());
                b.truncate(cut);
            }
        }
    }
    b
}

/// The mutated file on disk, rewritten in place: mutations only touch the header or cut
/// the file short, so only the header (and a tail cut off before) is written again.
/// Writing the whole 160 KB file 1,000 times took seconds on a busy disk.
struct InPlace<'a> {
    file: std::fs::File,
    /// Length of the file now.
    len: usize,
    base: &'a [u8],
    header_len: usize,
}

impl InPlace<'_> {
    fn write(&mut self, bytes: &[u8]) {
        use std::io::{Seek, SeekFrom, Write};
        if self.len < self.base.len() {
            // Restore the tail that an earlier mutation cut off.
            self.file.seek(SeekFrom::Start(self.len as u64)).unwrap();
            self.file.write_all(&self.base[self.len..]).unwrap();
        }
        let head = self.header_len.min(bytes.len());
        self.file.seek(SeekFrom::Start(0)).unwrap();
        self.file.write_all(&bytes[..head]).unwrap();
        self.file.set_len(bytes.len() as u64).unwrap();
        self.len = bytes.len();
    }
}

/// Does a model error name the place (a header field, metadata key, tensor or config
/// field, in backticks, besides the path)? Tokenizer errors come from the `tokenizers`
/// crate building the vocabulary out of the `tokenizer.ggml.*` keys ("Merges text file
/// invalid at line 9"): they name the tokenizer and the part of it, not the GGUF key.
fn model_error_names_its_field(e: &ModelError, path: &str) -> bool {
    let text = e.to_string().replace(&format!("`{path}`"), "");
    match e {
        ModelError::Tokenizer { .. } => text.starts_with(": tokenizer: "),
        _ => text.contains('`'),
    }
}

#[test]
fn mutated_gguf_headers_never_panic_and_errors_name_their_field() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-gguf");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (base, header_len) = base_gguf(&dir);
    // The value of `general.alignment`: after its key and its u32 value type.
    let key = b"general.alignment";
    let alignment_at = base.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    // The unmutated file loads.
    let file = dir.join("mutated.gguf");
    std::fs::write(&file, &base).unwrap();
    Model::load(&file).unwrap();
    let shown = file.display().to_string();

    let mut written = InPlace {
        file: std::fs::OpenOptions::new().write(true).open(&file).unwrap(),
        len: base.len(),
        base: &base,
        header_len,
    };
    let mut rng = StdRng::seed_from_u64(seed());
    let (mut loaded, mut unnamed) = (0, Vec::new());
    for i in 0..HEADERS {
        let bytes = mutate_gguf(&base, header_len, alignment_at, &mut rng);
        written.write(&bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let model = Model::load(&file);
            let tokenizer = model.as_ref().ok().map(|_| ModelTokenizer::load(&file));
            (model.err(), tokenizer.and_then(Result::err))
        }));
        let Ok((model_err, tok_err)) = outcome else {
            let diff: Vec<usize> = (0..bytes.len().min(base.len()))
                .filter(|&j| bytes[j] != base[j])
                .collect();
            panic!(
                "GGUF #{i} (seed {}) panicked: {} bytes (base {}), changed at {diff:?}",
                seed(),
                bytes.len(),
                base.len()
            );
        };
        for e in model_err.iter().chain(&tok_err) {
            if !model_error_names_its_field(e, &shown) {
                unnamed.push(e.to_string());
            }
        }
        loaded += usize::from(model_err.is_none());
    }
    assert!(
        unnamed.is_empty(),
        "{} errors do not name their field, e.g.:\n{}",
        unnamed.len(),
        unnamed[..unnamed.len().min(5)].join("\n")
    );
    eprintln!("{HEADERS} mutated GGUF files: {loaded} still load");
    assert!(loaded < HEADERS, "no mutation was caught");
}
