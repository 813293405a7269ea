//! Tokenizers through the `tokenizers` crate: from a folder's `tokenizer.json`, or rebuilt
//! from GGUF metadata (`tokenizer.ggml.*`, GPT-2 style byte-level BPE) as an equivalent
//! `tokenizer.json` document.

#![warn(missing_docs)]

use std::path::Path;

use serde_json::{json, Map, Value as Json};

use super::gguf::{value_to_u64, GgufFile};
use super::{io_err, ModelError, ModelFormat, SpecialTokens};
use candle_core::quantized::gguf_file::Value;

/// llama.cpp's token types (`llama_token_type`): 3 = control, 4 = user defined.
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// Llama 3's pre-tokenizer regex (llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the special ids generation needs.
pub struct ModelTokenizer {
    /// The Hugging Face `tokenizers` tokenizer (built from GGUF metadata or `tokenizer.json`).
    pub inner: tokenizers::Tokenizer,
    /// BOS and the end-of-sequence ids.
    pub special: SpecialTokens,
    /// Prepend `special.bos` in [`ModelTokenizer::encode`] (GGUF `tokenizer.ggml.add_bos_token`;
    /// `tokenizer.json` files carry this in their post-processor instead).
    pub add_bos: bool,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("special", &self.special)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

fn tok_err(path: &str) -> impl Fn(tokenizers::Error) -> ModelError + '_ {
    move |e| ModelError::Tokenizer {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// Where a Hugging Face folder holds `tokenizer.model` (a SentencePiece model, all that
/// older Llama repositories ship) but no `tokenizer.json`: how to make the latter from it.
/// Empty otherwise.
pub fn sentencepiece_note(dir: &Path) -> String {
    if !dir.join("tokenizer.model").is_file() {
        return String::new();
    }
    format!(
        "; it holds tokenizer.model (SentencePiece), which moa does not read: transformers \
         writes tokenizer.json from it (python3 -c \"from transformers import AutoTokenizer; \
         AutoTokenizer.from_pretrained('{0}').save_pretrained('{0}')\", with sentencepiece \
         installed)",
        dir.display()
    )
}

impl ModelTokenizer {
    /// Loads the tokenizer of a GGUF file or Hugging Face folder.
    pub fn load(path: &Path) -> Result<ModelTokenizer, ModelError> {
        match ModelFormat::detect(path)? {
            ModelFormat::Gguf => Self::from_gguf(&GgufFile::open(path)?),
            ModelFormat::HfFolder => {
                let file = path.join("tokenizer.json");
                let name = file.display().to_string();
                if !file.exists() {
                    return Err(ModelError::Tokenizer {
                        path: path.display().to_string(),
                        message: format!(
                            "the folder has no tokenizer.json, which generate, calib, eval \
                             and diagnose need (bench, profile and validate do not): copy in \
                             the tokenizer.json of the model the weights come from{}",
                            sentencepiece_note(path)
                        ),
                    });
                }
                let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
                let inner: tokenizers::Tokenizer = match text.parse() {
                    Ok(t) => t,
                    Err(e) => match super::lfs_pointer_note(&file) {
                        Some(note) => {
                            return Err(ModelError::Format {
                                path: name,
                                message: note,
                            })
                        }
                        None => return Err(tok_err(&name)(e)),
                    },
                };
                let (_, special) = super::safetensors::read_config(path)?;
                Ok(ModelTokenizer {
                    inner,
                    special,
                    add_bos: false,
                })
            }
        }
    }

    /// Rebuilds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &GgufFile) -> Result<ModelTokenizer, ModelError> {
        let doc = gguf_tokenizer_json(g)?;
        let inner: tokenizers::Tokenizer = doc.to_string().parse().map_err(tok_err(&g.path))?;
        Ok(ModelTokenizer {
            inner,
            special: super::gguf::read_special_tokens(g)?,
            add_bos: g
                .get_bool_opt("tokenizer.ggml.add_bos_token")?
                .unwrap_or(false),
        })
    }

    /// A lower bound on the number of tokens `text` encodes to, found without encoding it:
    /// `text.len() / (4 · L)` with `L` the longest token's UTF-8 bytes (a token stands for
    /// at most its own bytes: byte-level BPE maps each byte to a character of one or two
    /// bytes, SentencePiece writes a space as the three-byte `▁` and a fallback byte as
    /// `<0xNN>`; the 4 allows for a normalizer that shortens text, NFKC mapping a
    /// four-byte character to one ASCII byte at most). `None` where one token may stand for
    /// any length of text: models other than BPE (a WordLevel or WordPiece unknown word, a
    /// Unigram unknown run) and BPE that fuses unknown characters without byte fallback.
    /// Why: encoding an 80 MB prompt file for a 256-token context took 56.6 s and 12.8 GB
    /// of memory before the length was refused (benches/RESULTS.md, round 11).
    pub fn fewest_tokens(&self, text: &str) -> Option<usize> {
        match self.inner.get_model() {
            tokenizers::ModelWrapper::BPE(bpe) if !bpe.fuse_unk || bpe.byte_fallback => {}
            _ => return None,
        }
        let longest = self
            .inner
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(1);
        Some(text.len() / (4 * longest))
    }

    /// Token ids of plain `text`, as transformers' `tokenizer(text)` gives them: special
    /// tokens written in the text (`<|im_start|>`) become their ids, and the tokenizer's own
    /// BOS is added (post-processor, or GGUF `add_bos_token`). For a rendered chat use
    /// [`ModelTokenizer::encode_rendered_chat`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(tok_err("<tokenizer>"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if let (true, Some(bos)) = (self.add_bos, self.special.bos) {
            ids.push(bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Token ids of a rendered chat template, as transformers tokenizes one
    /// (`apply_chat_template(tokenize=True)` calls the tokenizer with
    /// `add_special_tokens=False`): special tokens written in the text become their ids, but
    /// neither the post-processor's tokens nor GGUF's `add_bos_token` BOS are added: the
    /// template writes `{{ bos_token }}` itself when the model wants one. Prefer
    /// [`ChatTemplate::apply`](super::ChatTemplate::apply), which renders and calls this.
    pub fn encode_rendered_chat(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(tok_err("<tokenizer>"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included when `skip_special` is false.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, ModelError> {
        self.inner
            .decode(ids, skip_special)
            .map_err(tok_err("<tokenizer>"))
    }
}

/// The `tokenizer.json` document equivalent to a GGUF file's `gpt2` tokenizer.
pub fn gguf_tokenizer_json(g: &GgufFile) -> Result<Json, ModelError> {
    let kind = g.get_str("tokenizer.ggml.model")?;
    if kind != "gpt2" {
        return Err(ModelError::Tokenizer {
            path: g.path.clone(),
            message: format!(
                "`tokenizer.ggml.model` is `{kind}`: only `gpt2` (byte-level BPE) is rebuilt \
                 from GGUF; use a Hugging Face folder with `tokenizer.json`"
            ),
        });
    }
    let pre = g.get_str_opt("tokenizer.ggml.pre")?.unwrap_or("default");
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let pre_tokenizer = match pre {
        // SmolLM2 (llama.cpp `LLAMA_VOCAB_PRE_TYPE_SMOLLM`): digits one by one, then GPT-2.
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(true),
        ]}),
        "gpt2" | "default" => byte_level(true),
        "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
            byte_level(false),
        ]}),
        other => {
            return Err(ModelError::Tokenizer {
                path: g.path.clone(),
                message: format!(
                    "`tokenizer.ggml.pre` = `{other}` is not supported (known: smollm, gpt2, \
                     default, llama-bpe); use a Hugging Face folder with `tokenizer.json`"
                ),
            })
        }
    };
    let bad = |key: &str, message: String| ModelError::BadKey {
        path: g.path.clone(),
        key: key.into(),
        message,
    };
    let tokens = g.get_array("tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match g.metadata().get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a.iter().map(|v| value_to_u64(v).unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    let mut vocab = Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, t) in tokens.iter().enumerate() {
        let Value::String(s) = t else {
            return Err(bad(
                "tokenizer.ggml.tokens",
                format!("entry {id} is not a string"),
            ));
        };
        vocab.insert(s.clone(), json!(id));
        let ty = types.get(id).copied().unwrap_or(1);
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            added.push(json!({
                "id": id, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == TOKEN_TYPE_CONTROL,
            }));
        }
    }
    let merges: Vec<&str> = g
        .get_array("tokenizer.ggml.merges")?
        .iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.as_str()),
            _ => Err(bad(
                "tokenizer.ggml.merges",
                "has a non-string entry".into(),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false,
            // Llama 3 looks whole pre-tokens up in the vocabulary first (llama.cpp
            // `ignore_merges`); SmolLM2's tokenizer.json does not.
            "ignore_merges": matches!(pre, "llama-bpe" | "llama3"),
            "vocab": vocab, "merges": merges,
        },
    }))
}
