//! Chat templates (Jinja, as shipped with the model) rendered with minijinja.

use std::path::Path;

use serde::Serialize;

use super::gguf::GgufFile;
use super::{io_err, ModelError, ModelFormat};

/// One chat turn, as Hugging Face templates expect it (`message['role']`, `message['content']`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's chat template plus the token strings templates may refer to.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
}

#[derive(Serialize)]
struct Ctx<'a> {
    messages: &'a [ChatMessage],
    add_generation_prompt: bool,
    bos_token: &'a str,
    eos_token: &'a str,
}

impl ChatTemplate {
    /// The template of a GGUF file (`tokenizer.chat_template`) or a Hugging Face folder
    /// (`tokenizer_config.json` → `chat_template`); `Ok(None)` when the model has none.
    pub fn load(path: &Path) -> Result<Option<ChatTemplate>, ModelError> {
        match ModelFormat::detect(path)? {
            ModelFormat::Gguf => Self::from_gguf(&GgufFile::open(path)?),
            ModelFormat::HfFolder => Self::from_hf_folder(path),
        }
    }

    pub fn from_gguf(g: &GgufFile) -> Result<Option<ChatTemplate>, ModelError> {
        let Some(source) = g.get_str_opt("tokenizer.chat_template")? else {
            return Ok(None);
        };
        let token = |key: &str| -> Result<String, ModelError> {
            let Some(id) = g.get_usize_opt(key)? else {
                return Ok(String::new());
            };
            Ok(match g.get_array("tokenizer.ggml.tokens")?.get(id) {
                Some(candle_core::quantized::gguf_file::Value::String(s)) => s.clone(),
                _ => String::new(),
            })
        };
        Ok(Some(ChatTemplate {
            source: source.to_string(),
            bos_token: token("tokenizer.ggml.bos_token_id")?,
            eos_token: token("tokenizer.ggml.eos_token_id")?,
        }))
    }

    pub fn from_hf_folder(dir: &Path) -> Result<Option<ChatTemplate>, ModelError> {
        let path = dir.join("tokenizer_config.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Format {
                path: path.display().to_string(),
                message: format!("invalid JSON: {e}"),
            })?;
        // `bos_token` is a string or an AddedToken object `{"content": ...}`.
        let token = |key: &str| -> String {
            match json.get(key) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v
                    .get("content")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                None => String::new(),
            }
        };
        let source = match json.get("chat_template") {
            Some(serde_json::Value::String(s)) => s.clone(),
            // A list of named templates: take `default`.
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(serde_json::Value::as_str) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .unwrap_or_default(),
            _ => return Ok(None),
        };
        Ok(Some(ChatTemplate {
            source,
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
        }))
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let mut env = minijinja::Environment::new();
        // Templates call `raise_exception('...')` to reject bad conversations (transformers
        // defines it the same way).
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        let ctx = Ctx {
            messages,
            add_generation_prompt,
            bos_token: &self.bos_token,
            eos_token: &self.eos_token,
        };
        env.render_str(&self.source, minijinja::value::Serde(&ctx))
            .map_err(|e| ModelError::ChatTemplate {
                message: format!("{e:#}"),
            })
    }
}
