//! Chat templates (Jinja, as shipped with the model) rendered with minijinja exactly as
//! transformers' `apply_chat_template` renders them with Jinja2 (same environment options,
//! globals and `tojson`), and tokenized as it does (no special tokens added to the rendered
//! text). tests/chat_template.rs compares ids with transformers' on real template shapes.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind, Value};
use serde::Serialize;

use super::gguf::GgufFile;
use super::{io_err, ModelError, ModelFormat, ModelTokenizer};

/// One chat turn, as Hugging Face templates expect it (`message['role']`, `message['content']`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (what the template's `message['role']` tests).
    pub role: String,
    /// The turn's text, as the template inserts it.
    pub content: String,
}

impl ChatMessage {
    /// A turn of `role` with text `content`.
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's chat template plus the special-token strings templates may refer to.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    /// The Jinja template's text (minijinja renders it).
    pub source: String,
    /// Where the template came from, as `moa model info` names it: `chat_template.jinja`,
    /// `tokenizer_config.json` (its `chat_template` key, or the entry named `default` of a
    /// list), the GGUF key `tokenizer.chat_template`, or `given` for [`Self::new`].
    pub origin: String,
    /// `bos_token`, `eos_token`, `unk_token`, `sep_token`, `pad_token`, `cls_token`,
    /// `mask_token`: those the model defines, as transformers' `special_tokens_map` passes
    /// them to the template (an undefined one stays undefined, as in transformers).
    pub special_tokens: BTreeMap<String, String>,
}

/// What a template sees (transformers' `render_jinja_template`).
#[derive(Serialize)]
struct Ctx<'a> {
    messages: &'a [ChatMessage],
    add_generation_prompt: bool,
    /// `None`: transformers passes `tools=None, documents=None` (so `tools is not none` is
    /// false, where an undefined name would make it true).
    tools: Option<()>,
    documents: Option<()>,
    #[serde(flatten)]
    special_tokens: &'a BTreeMap<String, String>,
}

/// transformers' `SPECIAL_TOKENS_ATTRIBUTES` with the GGUF key of each
/// (llama.cpp `LLM_KV_TOKENIZER_*_ID`; `seperator` is llama.cpp's spelling).
const SPECIAL_TOKENS: &[(&str, &str)] = &[
    ("bos_token", "tokenizer.ggml.bos_token_id"),
    ("eos_token", "tokenizer.ggml.eos_token_id"),
    ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ("sep_token", "tokenizer.ggml.seperator_token_id"),
    ("pad_token", "tokenizer.ggml.padding_token_id"),
    ("cls_token", "tokenizer.ggml.cls_token_id"),
    ("mask_token", "tokenizer.ggml.mask_token_id"),
];

impl ChatTemplate {
    /// A template from its Jinja source and the special tokens it may name
    /// (`[("bos_token", "<s>"), ...]`).
    pub fn new<'a>(
        source: &str,
        special_tokens: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> ChatTemplate {
        ChatTemplate {
            source: source.to_string(),
            origin: "given".into(),
            special_tokens: special_tokens
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The BOS string, `""` when the model has none.
    pub fn bos_token(&self) -> &str {
        self.special_tokens
            .get("bos_token")
            .map_or("", String::as_str)
    }

    /// The EOS string, `""` when the model has none.
    pub fn eos_token(&self) -> &str {
        self.special_tokens
            .get("eos_token")
            .map_or("", String::as_str)
    }

    /// The template of a GGUF file (`tokenizer.chat_template`) or a Hugging Face folder
    /// ([`Self::from_hf_folder`]); `Ok(None)` when the model has none.
    pub fn load(path: &Path) -> Result<Option<ChatTemplate>, ModelError> {
        match ModelFormat::detect(path)? {
            ModelFormat::Gguf => Self::from_gguf(&GgufFile::open(path)?),
            ModelFormat::HfFolder => Self::from_hf_folder(path),
        }
    }

    /// The template of an open GGUF file (`tokenizer.chat_template`), with the special-token
    /// strings its `tokenizer.ggml.*_token_id` keys name; `Ok(None)` when the file has none.
    /// Errors: [`ModelError::MissingKey`] without `tokenizer.ggml.tokens`,
    /// [`ModelError::BadKey`] for a key of the wrong type.
    pub fn from_gguf(g: &GgufFile) -> Result<Option<ChatTemplate>, ModelError> {
        let Some(source) = g.get_str_opt("tokenizer.chat_template")? else {
            return Ok(None);
        };
        let tokens = g.get_array("tokenizer.ggml.tokens")?;
        let mut special_tokens = BTreeMap::new();
        for &(name, key) in SPECIAL_TOKENS {
            let Some(id) = g.get_usize_opt(key)? else {
                continue;
            };
            if let Some(candle_core::quantized::gguf_file::Value::String(s)) = tokens.get(id) {
                special_tokens.insert(name.to_string(), s.clone());
            }
        }
        Ok(Some(ChatTemplate {
            source: source.to_string(),
            origin: "GGUF metadata `tokenizer.chat_template`".into(),
            special_tokens,
        }))
    }

    /// A Hugging Face folder's template, as transformers' tokenizer loads it: the file
    /// `chat_template.jinja` when there is one (transformers ≥ 4.47 saves templates there,
    /// and the file wins over the config's), else `tokenizer_config.json` → `chat_template`:
    /// a string, or a list of named templates of which the one named `default` is used.
    /// The special tokens come from `tokenizer_config.json`. Errors: a list with no
    /// `default` (transformers refuses it too; rendering nothing fed the model an empty
    /// prompt), an entry or value of another type, a file that is not UTF-8.
    pub fn from_hf_folder(dir: &Path) -> Result<Option<ChatTemplate>, ModelError> {
        let path = dir.join("tokenizer_config.json");
        let jinja = dir.join("chat_template.jinja");
        let file_source = if jinja.is_file() {
            Some(std::fs::read_to_string(&jinja).map_err(io_err(&jinja))?)
        } else {
            None
        };
        let json: serde_json::Value = if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            serde_json::from_str(&text).map_err(|e| ModelError::Format {
                path: path.display().to_string(),
                message: format!("invalid JSON: {e}"),
            })?
        } else if file_source.is_some() {
            serde_json::Value::Null
        } else {
            return Ok(None);
        };
        // A token is a string or an AddedToken object `{"content": ...}`; null means unset.
        let token = |key: &str| -> Option<String> {
            match json.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                v => v
                    .get("content")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
            }
        };
        let bad = |message: String| ModelError::Format {
            path: path.display().to_string(),
            message,
        };
        let in_config = |what: &str| format!("tokenizer_config.json ({what})");
        let (source, origin) = match (file_source, json.get("chat_template")) {
            (Some(s), None | Some(serde_json::Value::Null)) => (s, "chat_template.jinja".into()),
            // Both: the file wins, as in transformers; said, since an edit of the config's
            // template then changes nothing.
            (Some(s), Some(_)) => (
                s,
                "chat_template.jinja (tokenizer_config.json's `chat_template` is not used)".into(),
            ),
            (None, None | Some(serde_json::Value::Null)) => return Ok(None),
            (None, Some(serde_json::Value::String(s))) => (s.clone(), in_config("`chat_template`")),
            // A list of named templates: take `default`.
            (None, Some(serde_json::Value::Array(list))) => {
                let mut names = Vec::new();
                let mut default = None;
                for (i, t) in list.iter().enumerate() {
                    let (Some(name), Some(template)) = (
                        t.get("name").and_then(serde_json::Value::as_str),
                        t.get("template").and_then(serde_json::Value::as_str),
                    ) else {
                        return Err(bad(format!(
                            "`chat_template` entry {i} is {t}: expected {{\"name\": ..., \"template\": ...}} (strings)"
                        )));
                    };
                    if name == "default" {
                        default = Some(template.to_string());
                    }
                    names.push(name);
                }
                let n = names.len();
                let template = default.ok_or_else(|| {
                    bad(format!(
                        "`chat_template` is a list of named templates ({}) and none is named \
                         `default`, the one a chat uses (transformers refuses it too): name \
                         one `default`, or feed prompts as they are (`moa generate --raw`)",
                        names.join(", ")
                    ))
                })?;
                let what = format!("`chat_template`: the template named `default`, of {n}");
                (template, in_config(&what))
            }
            (None, Some(other)) => {
                return Err(bad(format!(
                    "`chat_template` is {other}: expected a Jinja template (a string) or a \
                     list of named templates"
                )))
            }
        };
        let special_tokens = SPECIAL_TOKENS
            .iter()
            .filter_map(|&(name, _)| Some((name.to_string(), token(name)?)))
            .collect();
        Ok(Some(ChatTemplate {
            source,
            origin,
            special_tokens,
        }))
    }

    /// Renders `messages` as transformers' `apply_chat_template(tokenize=False)` does; with
    /// `add_generation_prompt` the text ends where the assistant's reply begins.
    ///
    /// The variables are transformers' (`render_jinja_template`): `messages`,
    /// `add_generation_prompt`, `tools = none`, `documents = none` and the special tokens.
    /// Errors: a syntax error, or the template's own `raise_exception('...')`, as
    /// [`ModelError::ChatTemplate`] with the message.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let env = environment()?;
        let ctx = Ctx {
            messages,
            add_generation_prompt,
            tools: None,
            documents: None,
            special_tokens: &self.special_tokens,
        };
        env.render_str(&self.source, minijinja::value::Serde(ctx))
            .map_err(|e| ModelError::ChatTemplate {
                message: self.with_origin(template_error(&e)),
            })
    }

    /// Whether the template parses (a syntax error is otherwise found only at the first
    /// render): `moa model info` says "yes" of a template only when it does. Round 24:
    /// a `chat_template.jinja` with `{% if %}` was listed as "yes" and refused by
    /// `moa generate` without naming the file.
    pub fn check(&self) -> Result<(), ModelError> {
        let env = environment()?;
        env.template_from_str(&self.source)
            .map(drop)
            .map_err(|e| ModelError::ChatTemplate {
                message: self.with_origin(template_error(&e)),
            })
    }

    /// `message` with where the template came from, for a template a model file holds.
    fn with_origin(&self, message: String) -> String {
        if self.origin == "given" {
            message
        } else {
            format!("from {}: {message}", self.origin)
        }
    }

    /// Token ids of a chat, as transformers' `apply_chat_template(tokenize=True)`: the
    /// rendered text is tokenized *without* adding special tokens (the template writes BOS
    /// itself when the model wants one, so a tokenizer that also adds it would give two).
    pub fn apply(
        &self,
        tokenizer: &ModelTokenizer,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, ModelError> {
        tokenizer.encode_rendered_chat(&self.render(messages, add_generation_prompt)?)
    }
}

/// The message of a render error: the template's own text for `raise_exception`, minijinja's
/// description with the template line otherwise.
fn template_error(e: &minijinja::Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(msg)) if e.name() == Some("<string>") => {
            format!("{msg} (line {})", e.line().unwrap_or(0))
        }
        _ => format!("{e:#}"),
    }
}

/// The Jinja environment of transformers' `_compile_jinja_template`: `trim_blocks` and
/// `lstrip_blocks` on (a block tag on its own line leaves no newline or indentation),
/// loop controls, Python string/dict methods (`.strip()`, `.items()`; Jinja2 runs on
/// Python objects), `raise_exception`, `strftime_now` and transformers' `tojson`.
fn environment() -> Result<minijinja::Environment<'static>, ModelError> {
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build()
        .map_err(|e| ModelError::ChatTemplate {
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", strftime_now);
    env.add_filter("tojson", tojson);
    Ok(env)
}

/// `strftime_now(format)`: the local time formatted by the C library's `strftime`, which is
/// what Python's `datetime.now().strftime(format)` calls.
#[cfg(unix)]
fn strftime_now(format: String) -> Result<Value, Error> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: {why}"));
    let c_format = std::ffi::CString::new(format).map_err(|_| bad("NUL in the format"))?;
    // SAFETY: `localtime_r` fills `tm` from a valid `time_t`; `strftime` writes at most
    // `buf.len()` bytes and returns how many (0 when it does not fit).
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return Err(bad("no local time"));
        }
        let mut buf = vec![0u8; 256 + 8 * c_format.as_bytes().len()];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c_format.as_ptr(), &tm);
        if n == 0 && !c_format.as_bytes().is_empty() {
            return Err(bad("the formatted date does not fit"));
        }
        buf.truncate(n);
        Ok(Value::from(String::from_utf8_lossy(&buf).into_owned()))
    }
}

#[cfg(not(unix))]
fn strftime_now(_format: String) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "strftime_now: only available on Unix (it calls the C library's strftime)",
    ))
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, which is Python's `json.dumps` (no HTML escaping, unlike Jinja's own
/// filter). Arguments may be positional in that order or named.
fn tojson(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let mut args = args.into_values();
    let kwargs = match args.last() {
        Some(v) if v.is_kwargs() => Some(Kwargs::try_from(args.pop().unwrap())?),
        _ => None,
    };
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > NAMES.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most ensure_ascii, indent, separators, sort_keys",
        ));
    }
    let mut opt: [Value; 4] = Default::default();
    for (i, v) in args.into_iter().enumerate() {
        opt[i] = v;
    }
    if let Some(kw) = &kwargs {
        for (i, name) in NAMES.iter().enumerate() {
            if kw.has(name) {
                opt[i] = kw.get::<Value>(name)?;
            }
        }
        kw.assert_all_used()?;
    }
    let [ensure_ascii, indent, separators, sort_keys] = opt;
    let indent = if indent.is_undefined() || indent.is_none() {
        None
    } else if let Some(s) = indent.as_str() {
        Some(s.to_string())
    } else {
        let n = i64::try_from(indent.clone()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: indent must be an integer or a string, not {indent}"),
            )
        })?;
        Some(" ".repeat(n.max(0) as usize))
    };
    // json.dumps: (', ', ': ') without indent, (',', ': ') with one.
    let (item_sep, key_sep) = if separators.is_undefined() || separators.is_none() {
        (
            if indent.is_some() { "," } else { ", " }.to_string(),
            ": ".to_string(),
        )
    } else {
        let parts: Vec<Value> = separators.try_iter()?.collect();
        match parts.as_slice() {
            [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                a.as_str().unwrap().to_string(),
                b.as_str().unwrap().to_string(),
            ),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be two strings (item, key)",
                ))
            }
        }
    };
    let mut w = PyJson {
        ensure_ascii: ensure_ascii.is_true(),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.is_true(),
        out: String::new(),
    };
    w.value(value, 0)?;
    Ok(Value::from(w.out))
}

/// Python's `json.dumps` output format (`json.encoder`), over minijinja values.
struct PyJson {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    out: String,
}

impl PyJson {
    fn newline(&mut self, level: usize) {
        if let Some(ind) = &self.indent {
            self.out.push('\n');
            for _ in 0..level {
                self.out.push_str(ind);
            }
        }
    }

    /// Separator between items: with an indent, `json.dumps` ends the line after it.
    fn item_break(&mut self, level: usize) {
        if self.indent.is_some() {
            let sep = self.item_sep.clone();
            self.out.push_str(&sep);
            self.newline(level);
        } else {
            let sep = self.item_sep.clone();
            self.out.push_str(&sep);
        }
    }

    fn value(&mut self, v: &Value, level: usize) -> Result<(), Error> {
        match v.kind() {
            ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self
                .out
                .push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    self.out.push_str(&v.to_string());
                } else {
                    self.out.push_str(&py_float_repr(f64::try_from(v.clone())?));
                }
            }
            ValueKind::String => self.string(v.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    self.out.push_str("[]");
                    return Ok(());
                }
                self.out.push('[');
                self.newline(level + 1);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.item_break(level + 1);
                    }
                    self.value(item, level + 1)?;
                }
                self.newline(level);
                self.out.push(']');
            }
            ValueKind::Map => {
                let mut entries: Vec<(String, Value)> = Vec::new();
                for key in v.try_iter()? {
                    let item = v.get_item(&key)?;
                    entries.push((json_key(&key)?, item));
                }
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                if entries.is_empty() {
                    self.out.push_str("{}");
                    return Ok(());
                }
                self.out.push('{');
                self.newline(level + 1);
                for (i, (key, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.item_break(level + 1);
                    }
                    self.string(key);
                    let sep = self.key_sep.clone();
                    self.out.push_str(&sep);
                    self.value(item, level + 1)?;
                }
                self.newline(level);
                self.out.push('}');
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "tojson: a value of kind {} is not JSON serializable",
                        v.kind()
                    ),
                ))
            }
        }
        Ok(())
    }

    /// `json.encoder.py_encode_basestring(_ascii)`.
    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !(' '..='~').contains(&c)) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        self.out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

/// A map key as `json.dumps` writes it: strings as they are, numbers, booleans and None
/// converted (`True` → `"true"`); anything else is a `TypeError` in Python.
fn json_key(key: &Value) -> Result<String, Error> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_string(),
        ValueKind::None => "null".into(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number if key.is_integer() => key.to_string(),
        ValueKind::Number => py_float_repr(f64::try_from(key.clone())?),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: keys must be str, int, float, bool or None, not {key}"),
            ))
        }
    })
}

/// Python's `repr(float)` (also `json.dumps`' float format): the shortest digits that read
/// back exactly, in fixed notation when the decimal exponent is in [-4, 16), otherwise
/// `d.ddde±XX`; `NaN`, `Infinity`, `-Infinity` as `json.dumps` writes them.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            ("0".to_string(), "0".repeat((-point) as usize) + &digits)
        } else if point as usize >= digits.len() {
            (
                digits.clone() + &"0".repeat(point as usize - digits.len()),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}
