//! The model's tokenizer (`tokenizer.json`, through the `tokenizers` crate).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A Hugging Face fast tokenizer, reporting raw tokens as Ecco does (e.g. `Ġworld`).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

/// A tokenised text: ids and the tokenizer's raw token strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Raw tokens, one per id.
    pub tokens: Vec<String>,
}

impl Tokenizer {
    /// Loads `path` (a `tokenizer.json`).
    ///
    /// # Errors
    /// [`Error::MissingFile`] or [`Error::Tokenizer`] when it cannot be parsed.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::MissingFile { path: path.to_path_buf(), what: "tokenizer.json" });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut inner = parse(path, &bytes)?;
        // Some checkpoints (sentence-transformers' MiniLM) pad every text to a fixed length and
        // truncate it; a trace reads the text as is, and length limits are checked against the
        // model's positions instead.
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| Error::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(Self { inner, path: path.to_path_buf() })
    }

    /// Parses the bytes of a `tokenizer.json` held in memory; `label` names it in errors.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when it cannot be parsed.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(Self { inner: parse(label, bytes)?, path: label.to_path_buf() })
    }

    /// A tokenizer built in memory (e.g. from a GGUF file's metadata); `label` names it in
    /// errors.
    pub fn from_tokenizers(label: &Path, inner: tokenizers::Tokenizer) -> Self {
        Self { inner, path: label.to_path_buf() }
    }

    /// Number of entries, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The largest id the tokenizer can produce (added tokens included), `None` when it has
    /// no entries.
    pub fn max_id(&self) -> Option<u32> {
        self.inner.get_vocab(true).into_values().max()
    }

    /// Tokenises `text` without adding special tokens (as GPT-2 does).
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Encoding> {
        let enc = self
            .guard(|t| t.encode(text, add_special_tokens))?
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), reason: e.to_string() })?;
        Ok(Encoding { ids: enc.get_ids().to_vec(), tokens: enc.get_tokens().to_vec() })
    }

    /// Runs `f` on the inner tokenizer, turning a panic inside `tokenizers` (which some
    /// malformed files cause at encoding time, e.g. a `TemplateProcessing` naming a special token
    /// it does not define) into an error.
    fn guard<T>(&self, f: impl FnOnce(&tokenizers::Tokenizer) -> T) -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&self.inner))).map_err(|_| Error::Tokenizer {
            path: self.path.clone(),
            reason: "the tokenizers library failed on this text (the file is malformed)".to_owned(),
        })
    }

    /// The raw token of `id` (`<unk:ID>` when the vocabulary has no such id).
    pub fn token(&self, id: u32) -> String {
        self.inner.id_to_token(id).unwrap_or_else(|| format!("<unk:{id}>"))
    }

    /// The id of a raw token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The id of the mask token (`[MASK]` for BERT, `<mask>` for RoBERTa), if the vocabulary has one.
    pub fn mask_token_id(&self) -> Option<u32> {
        ["[MASK]", "<mask>"].iter().find_map(|t| self.inner.token_to_id(t))
    }

    /// Decodes `ids` to text, special tokens kept.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.guard(|t| t.decode(ids, false))?.map_err(|e| Error::Tokenizer { path: self.path.clone(), reason: e.to_string() })
    }

    /// Decodes `ids` to text, special tokens (`<pad>`, `</s>`, ...) skipped, as
    /// `tokenizer.decode(ids, skip_special_tokens=True)` does.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        self.guard(|t| t.decode(ids, true))?.map_err(|e| Error::Tokenizer { path: self.path.clone(), reason: e.to_string() })
    }
}

/// A `tokenizer.json`'s bytes as a tokenizer: BPE files through [`crate::bpe_json`] (one typed
/// pass), anything else through `tokenizers`; `label` names it in errors.
///
/// The `tokenizers` crate panics on some malformed files instead of returning an error (a
/// syntax error inside the `decoder` section, a `Precompiled` normalizer whose map does not
/// decode): the file is parsed into JSON first and [`check_components`] refuses those parts,
/// and a panic that still escapes is turned into an error.
fn parse(label: &Path, bytes: &[u8]) -> Result<tokenizers::Tokenizer> {
    let error = |reason: String| Error::Tokenizer { path: label.to_path_buf(), reason };
    let parsed = std::panic::catch_unwind(|| match std::str::from_utf8(bytes).ok().and_then(crate::bpe_json::read) {
        Some(fast) => Ok(fast),
        None => {
            let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))?;
            check_components(value.get("normalizer"), value.get("decoder")).map_err(error)?;
            serde_json::from_value(value).map_err(|e| error(e.to_string()))
        }
    });
    parsed.unwrap_or_else(|_| Err(error("the tokenizers library failed on this file (it is malformed)".to_owned())))
}

/// Refuses the pipeline parts the `tokenizers` crate panics on rather than rejecting: a
/// `Precompiled` normalizer whose `precompiled_charsmap` does not decode (its deserializer
/// `expect`s), and a `Strip` decoder with `stop > 0` (it indexes before the start of a token
/// made only of the stripped character).
pub(crate) fn check_components(normalizer: Option<&serde_json::Value>, decoder: Option<&serde_json::Value>) -> Result<(), String> {
    let mut parts = Vec::new();
    collect_objects(normalizer, &mut parts);
    for part in parts.drain(..) {
        if part.get("type").and_then(serde_json::Value::as_str) == Some("Precompiled") {
            serde_json::from_value::<tokenizers::normalizers::precompiled::Precompiled>(part.clone())
                .map_err(|e| format!("the Precompiled normalizer is invalid: {e}"))?;
        }
    }
    collect_objects(decoder, &mut parts);
    for part in parts {
        if part.get("type").and_then(serde_json::Value::as_str) == Some("Strip")
            && part.get("stop").and_then(serde_json::Value::as_u64) != Some(0)
        {
            return Err("a Strip decoder with `stop` other than 0 is not supported".to_owned());
        }
    }
    Ok(())
}

/// Every JSON object in `value`, nested ones (a `Sequence`'s parts) included.
fn collect_objects<'a>(value: Option<&'a serde_json::Value>, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        Some(v @ serde_json::Value::Object(map)) => {
            out.push(v);
            map.values().for_each(|v| collect_objects(Some(v), out));
        }
        Some(serde_json::Value::Array(items)) => items.iter().for_each(|v| collect_objects(Some(v), out)),
        _ => {}
    }
}
