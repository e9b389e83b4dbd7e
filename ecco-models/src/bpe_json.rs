//! A single-pass reader for BPE `tokenizer.json` files (GPT-2's family).
//!
//! `tokenizers::Tokenizer::from_str` reads the `model` section twice: first into a
//! `serde_json::Value` (to find its `type`), then from that tree into the model, allocating every
//! one of GPT-2's 50K vocabulary entries and 50K merges twice on the way. On GPT-2's file that
//! takes about 0.1 s, the longest part of loading a model (the weights are memory-mapped). This
//! reads the file once into typed fields and builds the same tokenizer the way the crate's own
//! deserializer does (`tokenizer/serialization.rs`: the pipeline parts, then `add_tokens`);
//! any other model type, or anything this reader does not expect, returns `None`, and the
//! caller falls back to `from_str` (which also gives the error messages).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use tokenizers::models::bpe::BPE;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PaddingParams, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder, TokenizerImpl, TruncationParams,
};

/// The parts of a `tokenizer.json` the crate's deserializer reads.
#[derive(Deserialize)]
struct File<'a> {
    #[serde(borrow, default)]
    version: Option<Cow<'a, str>>,
    #[serde(default)]
    truncation: Option<TruncationParams>,
    #[serde(default)]
    padding: Option<PaddingParams>,
    /// Their ids are checked against the vocabulary by the crate and then reassigned by
    /// `add_tokens`, as here.
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    /// The pipeline parts are small: read as JSON first, so that a syntax error inside one is
    /// an error here (`tokenizers`' own deserializers `expect` on some), and checked by
    /// [`crate::tokenizer::check_components`] before they are built.
    #[serde(default)]
    normalizer: Option<serde_json::Value>,
    #[serde(default)]
    pre_tokenizer: Option<serde_json::Value>,
    #[serde(default)]
    post_processor: Option<serde_json::Value>,
    #[serde(default)]
    decoder: Option<serde_json::Value>,
    #[serde(borrow)]
    model: Bpe<'a>,
}

/// A BPE `model` section (`models/bpe/serialization.rs`).
#[derive(Deserialize)]
struct Bpe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    dropout: Option<f32>,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
    end_of_word_suffix: Option<String>,
    fuse_unk: Option<bool>,
    byte_fallback: Option<bool>,
    ignore_merges: Option<bool>,
    vocab: HashMap<String, u32, ahash::RandomState>,
    merges: Vec<Merge>,
}

/// One merge: `["a", "b"]`, or the legacy `"a b"` (`#version` lines are skipped, as the crate
/// does).
enum Merge {
    Pair(String, String),
    Comment,
}

impl<'de> Deserialize<'de> for Merge {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MergeVisitor;
        impl<'de> Visitor<'de> for MergeVisitor {
            type Value = Merge;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a merge: a pair of strings or \"a b\"")
            }

            fn visit_str<E: de::Error>(self, line: &str) -> Result<Merge, E> {
                if line.starts_with("#version") {
                    return Ok(Merge::Comment);
                }
                let mut parts = line.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) => Ok(Merge::Pair(a.to_owned(), b.to_owned())),
                    _ => Err(E::custom(format!("bad merge `{line}`"))),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merge, A::Error> {
                let a: String = seq.next_element()?.ok_or_else(|| de::Error::custom("a merge needs two parts"))?;
                let b: String = seq.next_element()?.ok_or_else(|| de::Error::custom("a merge needs two parts"))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("a merge has two parts"));
                }
                Ok(Merge::Pair(a, b))
            }
        }
        deserializer.deserialize_any(MergeVisitor)
    }
}

/// The tokenizer a BPE `tokenizer.json` describes, or `None` when `text` is not one this reader
/// handles (the caller then uses `tokenizers::Tokenizer::from_str`).
pub(crate) fn read(text: &str) -> Option<tokenizers::Tokenizer> {
    let file: File<'_> = serde_json::from_str(text).ok()?;
    if file.model.kind != "BPE" || file.version.as_deref().is_some_and(|v| v != "1.0") {
        return None;
    }
    crate::tokenizer::check_components(file.normalizer.as_ref(), file.decoder.as_ref()).ok()?;
    let normalizer: Option<NormalizerWrapper> = part(file.normalizer)?;
    let pre_tokenizer: Option<PreTokenizerWrapper> = part(file.pre_tokenizer)?;
    let post_processor: Option<PostProcessorWrapper> = part(file.post_processor)?;
    let decoder: Option<DecoderWrapper> = part(file.decoder)?;
    let m = file.model;
    let merges = m
        .merges
        .into_iter()
        .filter_map(|merge| match merge {
            Merge::Pair(a, b) => Some((a, b)),
            Merge::Comment => None,
        })
        .collect();
    let mut builder = BPE::builder().vocab_and_merges(m.vocab, merges);
    if let Some(d) = m.dropout {
        builder = builder.dropout(d);
    }
    if let Some(u) = m.unk_token {
        builder = builder.unk_token(u);
    }
    if let Some(p) = m.continuing_subword_prefix {
        builder = builder.continuing_subword_prefix(p);
    }
    if let Some(s) = m.end_of_word_suffix {
        builder = builder.end_of_word_suffix(s);
    }
    if let Some(f) = m.fuse_unk {
        builder = builder.fuse_unk(f);
    }
    if let Some(b) = m.byte_fallback {
        builder = builder.byte_fallback(b);
    }
    if let Some(i) = m.ignore_merges {
        builder = builder.ignore_merges(i);
    }
    let bpe = builder.build().ok()?;
    let mut tokenizer: TokenizerImpl<ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper> =
        TokenizerBuilder::new()
            .with_model(ModelWrapper::from(bpe))
            .with_normalizer(normalizer)
            .with_pre_tokenizer(pre_tokenizer)
            .with_post_processor(post_processor)
            .with_decoder(decoder)
            .with_truncation(file.truncation)
            .with_padding(file.padding)
            .build()
            .ok()?;
    tokenizer.add_tokens(&file.added_tokens);
    Some(tokenizer.into())
}

/// A pipeline part built from its JSON: `Some(None)` when absent, `None` when it does not parse.
fn part<T: serde::de::DeserializeOwned>(value: Option<serde_json::Value>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(v) => serde_json::from_value(v).ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::read;

    fn fixture(name: &str) -> String {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fixtures", name, "tokenizer.json"].iter().collect();
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The same tokenizer as the crate's own reader: ids, tokens and offsets of texts with
    /// special tokens and odd whitespace, the vocabulary with added tokens, and decoding.
    fn assert_same(text: &str) {
        let ours = read(text).expect("a BPE tokenizer.json");
        let theirs: tokenizers::Tokenizer = text.parse().expect("tokenizers reads it");
        assert_eq!(ours.get_vocab(true), theirs.get_vocab(true));
        assert_eq!(ours.get_added_tokens_decoder(), theirs.get_added_tokens_decoder());
        for s in ["Hello world", " The  capital of France is<|endoftext|> Paris\n\tcafé 日本語 1234", "", "<|endoftext|>", "a <mask> b</s>"]
        {
            let (a, b) = (ours.encode(s, true).expect("encode"), theirs.encode(s, true).expect("encode"));
            assert_eq!((a.get_ids(), a.get_tokens(), a.get_offsets()), (b.get_ids(), b.get_tokens(), b.get_offsets()), "{s:?}");
            let ids = a.get_ids().to_vec();
            assert_eq!(ours.decode(&ids, false).ok(), theirs.decode(&ids, false).ok());
        }
    }

    #[test]
    fn bpe_files_read_like_tokenizers() {
        // GPT-2's real BPE files; RoBERTa's adds special tokens and a post-processor.
        assert_same(&fixture("roberta-bpe"));
        let text = fixture("gpt2-bpe");
        assert_same(&text);
        // The legacy merges format ("a b" strings, with a `#version` line).
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let merges = json["model"]["merges"].as_array().expect("merges").clone();
        let mut legacy = vec![serde_json::Value::from("#version: 0.2")];
        legacy.extend(
            merges.iter().map(|m| serde_json::Value::from(format!("{} {}", m[0].as_str().unwrap_or(""), m[1].as_str().unwrap_or("")))),
        );
        json["model"]["merges"] = serde_json::Value::from(legacy);
        assert_same(&json.to_string());
    }

    #[test]
    fn other_models_are_left_to_tokenizers() {
        // WordPiece and Unigram.
        for name in ["bert-wordpiece", "t5-relu"] {
            assert!(read(&fixture(name)).is_none(), "{name}");
        }
        assert!(read("{\"model\": {\"type\": \"BPE\"}}").is_none());
        assert!(read("not json").is_none());
    }
}
