//! Chat prompts render and tokenize exactly as transformers' `apply_chat_template`:
//! the ids (and text) of tests/fixtures/chat-templates/cases.json were produced by
//! transformers itself (`gen.py` beside it, tiny tokenizers trained there, nothing from a
//! model hub) for real template shapes: ChatML with block tags on their own lines and a
//! default system prompt, indented tags with `namespace` / `continue` / `.strip()`,
//! Llama-3 (template *and* tokenizer add BOS), Mistral with `raise_exception`, Llama-2 with
//! a default system prompt, and `tojson` with its options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use moa::model::tokenizer::ModelTokenizer;
use moa::model::{ChatMessage, ChatTemplate, SpecialTokens};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat-templates")
}

fn cases() -> Value {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tokenizer(file: &str, add_bos: bool) -> ModelTokenizer {
    let inner: tokenizers::Tokenizer = std::fs::read_to_string(dir().join(file))
        .unwrap()
        .parse()
        .unwrap();
    let bos = ["<s>", "<|begin_of_text|>"]
        .iter()
        .find_map(|t| inner.token_to_id(t));
    ModelTokenizer {
        inner,
        special: SpecialTokens {
            bos,
            ..Default::default()
        },
        add_bos,
    }
}

fn template(t: &Value) -> ChatTemplate {
    let special: BTreeMap<String, String> =
        serde_json::from_value(t["special_tokens"].clone()).unwrap();
    ChatTemplate::new(
        t["template"].as_str().unwrap(),
        special.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

fn messages(c: &Value) -> Vec<ChatMessage> {
    c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn ids_match_transformers_on_every_template_shape() {
    let all = cases();
    let list = all["cases"].as_array().unwrap();
    assert!(list.len() >= 30, "{}", list.len());
    let mut failures = Vec::new();
    for c in list {
        let name = c["name"].as_str().unwrap();
        let t = &all["templates"][c["template"].as_str().unwrap()];
        let tmpl = template(t);
        let agp = c["add_generation_prompt"].as_bool().unwrap();
        let msgs = messages(c);
        // GGUF's add_bos_token must not add a second BOS either.
        for add_bos in [false, true] {
            let tok = tokenizer(t["tokenizer"].as_str().unwrap(), add_bos);
            match (tmpl.apply(&tok, &msgs, agp), c.get("error")) {
                (Ok(got), None) => {
                    let text = tmpl.render(&msgs, agp).unwrap();
                    if text != c["text"].as_str().unwrap() {
                        failures.push(format!(
                            "{name}: text\n got  {text:?}\n want {:?}",
                            c["text"].as_str().unwrap()
                        ));
                    } else if got != ids(&c["ids"]) {
                        failures.push(format!(
                            "{name} (add_bos {add_bos}): ids\n got  {got:?}\n want {:?}",
                            ids(&c["ids"])
                        ));
                    }
                }
                (Err(e), Some(want)) => {
                    let e = e.to_string();
                    if !e.contains(want.as_str().unwrap()) {
                        failures.push(format!("{name}: error `{e}` lacks `{want}`"));
                    }
                }
                (Ok(got), Some(want)) => failures.push(format!(
                    "{name}: rendered {got:?}, transformers raised {want}"
                )),
                (Err(e), None) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_fixture_tells_a_double_bos_apart() {
    // Encoding the rendered Llama-3 chat with special tokens (what moa did before) gives two
    // BOS; transformers' ids have one. The test above would catch the old behaviour.
    let all = cases();
    let c = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "llama3/0/gen")
        .unwrap();
    let want = ids(&c["ids"]);
    let double = ids(&c["ids_with_special"]);
    assert_eq!(double.len(), want.len() + 1);
    assert_eq!(double[0], double[1], "{double:?}");
    assert_ne!(want[0], want[1], "{want:?}");
    let tok = tokenizer("tokenizer-llama3.json", false);
    assert_eq!(tok.encode(c["text"].as_str().unwrap()).unwrap(), double);
    assert_eq!(
        tok.encode_rendered_chat(c["text"].as_str().unwrap())
            .unwrap(),
        want
    );
}

#[test]
fn block_tags_leave_no_stray_whitespace() {
    // trim_blocks + lstrip_blocks, the shape: tags on their own, indented lines.
    let t = ChatTemplate::new(
        "{% for m in messages %}\n  {% if m.role == 'user' %}\n<u>{{ m.content }}\n  {% endif %}\n{% endfor %}\n",
        [],
    );
    let text = t.render(&[ChatMessage::new("user", "hi")], false).unwrap();
    assert_eq!(text, "<u>hi\n");
}

#[test]
fn raise_exception_message_reaches_the_user() {
    let t = ChatTemplate::new(
        "{% if messages|length > 1 %}{{ raise_exception('only one message, got ' ~ messages|length) }}{% endif %}ok",
        [],
    );
    let m = ChatMessage::new("user", "a");
    assert_eq!(t.render(std::slice::from_ref(&m), true).unwrap(), "ok");
    let e = t.render(&[m.clone(), m], true).unwrap_err().to_string();
    assert!(e.contains("only one message, got 2"), "{e}");
}

#[test]
fn strftime_now_is_the_c_librarys_local_date() {
    let t = ChatTemplate::new(
        "{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%d %b %Y') }}",
        [],
    );
    let text = t.render(&[], false).unwrap();
    let (iso, human) = text.split_once('|').unwrap();
    assert_eq!(iso.len(), 10, "{text}");
    assert!(iso[..4].parse::<u32>().unwrap() >= 2024, "{text}");
    let year = &iso[..4];
    assert!(human.ends_with(year), "{text}");
    // Same clock as `date` (skip when a day boundary falls between the two calls).
    if let Ok(out) = std::process::Command::new("date").arg("+%Y-%m-%d").output() {
        let date = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let again = t.render(&[], false).unwrap();
        assert!(date == iso || !again.starts_with(iso), "{date} vs {iso}");
    }
}

#[test]
fn tojson_is_pythons_json_dumps() {
    let t = ChatTemplate::new(
        "{{ messages | tojson }}|{{ messages[0] | tojson(false, none, none, true) }}|{{ 1.5e300 | tojson }}|{{ -0.0 | tojson }}|{{ 123456789012345678.0 | tojson }}|{{ 0.0001 | tojson }}",
        [],
    );
    let text = t
        .render(&[ChatMessage::new("user", "<b>\u{7f}\u{1}</b>")], false)
        .unwrap();
    assert_eq!(
        text,
        "[{\"role\": \"user\", \"content\": \"<b>\u{7f}\\u0001</b>\"}]|{\"content\": \"<b>\u{7f}\\u0001</b>\", \"role\": \"user\"}|1.5e+300|-0.0|1.2345678901234568e+17|0.0001"
    );
    let bad = ChatTemplate::new("{{ messages | tojson(indent='x', nope=1) }}", []);
    let e = bad.render(&[], false).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn py_float_repr_matches_python() {
    use moa::model::chat::py_float_repr;
    // Values and their Python `repr`.
    for (x, want) in [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (-2.5e-7, "-2.5e-07"),
        (123.456, "123.456"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        assert_eq!(py_float_repr(x), want, "{x}");
    }
}
