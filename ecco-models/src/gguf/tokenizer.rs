//! The tokenizer a GGUF file describes in its metadata (`tokenizer.ggml.*`).
//!
//! Built as `transformers` builds it from the same file
//! (`transformers/integrations/gguf/gguf_tokenizer_mapping.py`, 5.23), so both give the same ids:
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE from `tokens` and `merges` (`GPT2Tokenizer`:
//!   byte-level pre-tokenizer and decoder); tokens not spelled in the byte alphabet are respelled
//!   byte by byte. Files whose `tokenizer.ggml.pre` names a split regex (Llama 3, Qwen2, ...) split
//!   with it first.
//! - `tokenizer.ggml.model = "llama"`: SentencePiece-style BPE (`LlamaTokenizer`): `▁` for spaces,
//!   one prepended to the text (unless `tokenizer.ggml.add_space_prefix` is false, as llama.cpp
//!   reads it), byte fallback through the `<0xNN>` tokens, merges from the file or else derived
//!   from the vocabulary and `scores` (`generate_merges` in `tokenization_utils_base.py`). Gemma
//!   files respell runs of spaces as `▁` and rank merges by position in the file, as
//!   `gemma_tokenizer` does.
//!
//! In both, tokens of type control (3) are special added tokens and user-defined ones (4) plain
//! added tokens. BOS (and EOS) are added by the post-processor when `tokenizer.ggml.add_bos_token`
//! (`add_eos_token`) says so; absent, `llama` vocabularies add BOS (llama.cpp's default) and
//! `gpt2` ones do not.

use std::collections::HashMap;

/// The map `tokenizers`' BPE keeps its vocabulary in.
type Vocab = HashMap<String, u32, ahash::RandomState>;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::error::{GgufError, GgufResult};
use super::file::GgufFile;
use super::value::Value;

/// llama.cpp's token types (`llama_token_type`).
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;

/// Llama 3's pre-tokenizer split (`_LLAMA3_SPLIT` in transformers).
const LLAMA3_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's (`PRETOKENIZE_REGEX` in `tokenization_qwen2.py`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex for a `tokenizer.ggml.pre` value (`GGUF_PRE_TOKENIZER_SPLITS`, the families
/// this project runs); `None`: GPT-2's own byte-level regex.
fn pre_split(pre: &str) -> Option<&'static str> {
    match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" => Some(LLAMA3_SPLIT),
        "qwen2" | "deepseek-r1-qwen" => Some(QWEN2_SPLIT),
        _ => None,
    }
}

/// A tokenizer read from GGUF metadata, with the special ids the model needs.
#[derive(Clone, Debug)]
pub struct GgufTokenizer {
    /// The tokenizer; `encode(text, true)` adds BOS / EOS as the file says.
    pub tokenizer: tokenizers::Tokenizer,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// Every end-of-generation id the file names: `eos_token_id`, then `eot_token_id` and
    /// `eom_token_id` (Llama 3 stops on `<|eot_id|>` and `<|eom_id|>` as well), without repeats.
    pub eos_token_ids: Vec<u32>,
    /// Whether BOS is prepended (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// Whether EOS is appended (`tokenizer.ggml.add_eos_token`).
    pub add_eos: bool,
}

/// GPT-2's byte-to-character map (`bytes_to_unicode`): printable bytes stand for themselves, the
/// others for the code points from 256 up.
fn bytes_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
        map[b as usize] = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    map
}

fn bad(key: &str, reason: impl Into<String>) -> GgufError {
    GgufError::BadValue { key: key.to_owned(), reason: reason.into() }
}

fn strings<'a>(file: &'a GgufFile, key: &str) -> GgufResult<Vec<&'a str>> {
    file.get_array(key)?.iter().map(|v| v.as_str().ok_or_else(|| bad(key, format!("holds a {}, not strings", v.type_name())))).collect()
}

fn token_id(file: &GgufFile, key: &str, n_tokens: usize) -> GgufResult<Option<u32>> {
    let Some(v) = file.get(key) else { return Ok(None) };
    match v.as_u64() {
        Some(id) if (id as usize) < n_tokens => Ok(Some(id as u32)),
        // llama.cpp writes -1 (as an int32 or all ones) for "none".
        _ if v.as_i64() == Some(-1) || v.as_u64() == Some(u64::from(u32::MAX)) => Ok(None),
        _ => Err(bad(key, format!("{v} is not a token id (the vocabulary has {n_tokens})"))),
    }
}

impl GgufTokenizer {
    /// Builds the tokenizer `file`'s metadata describes.
    ///
    /// # Errors
    /// [`GgufError`] when the metadata is missing, of the wrong types, or names an unsupported
    /// `tokenizer.ggml.model`.
    pub fn from_gguf(file: &GgufFile) -> GgufResult<Self> {
        let model = file.get_str("tokenizer.ggml.model")?;
        let tokens = strings(file, "tokenizer.ggml.tokens")?;
        if tokens.is_empty() || u32::try_from(tokens.len()).is_err() {
            return Err(bad("tokenizer.ggml.tokens", format!("{} tokens", tokens.len())));
        }
        let types: Vec<i64> = match file.get("tokenizer.ggml.token_type") {
            Some(v) => {
                let key = "tokenizer.ggml.token_type";
                let items = v.as_array().ok_or_else(|| bad(key, "is not an array"))?;
                if items.len() != tokens.len() {
                    return Err(bad(key, format!("has {} entries for {} tokens", items.len(), tokens.len())));
                }
                items.iter().map(|t| t.as_i64().ok_or_else(|| bad(key, "holds a non-integer"))).collect::<GgufResult<_>>()?
            }
            None => Vec::new(),
        };
        let architecture = file.architecture().unwrap_or("");
        let mut tokenizer = match model {
            "gpt2" => byte_level(file, &tokens, &types)?,
            "llama" => sentencepiece(file, &tokens, &types, architecture.starts_with("gemma"))?,
            other => {
                return Err(bad("tokenizer.ggml.model", format!("`{other}` is not supported (supported: gpt2, llama)")));
            }
        };

        let n = tokens.len();
        let bos_token_id = token_id(file, "tokenizer.ggml.bos_token_id", n)?;
        let mut eos_token_ids = Vec::new();
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(id) = token_id(file, key, n)?
                && !eos_token_ids.contains(&id)
            {
                eos_token_ids.push(id);
            }
        }
        let add_bos = file.get_bool_opt("tokenizer.ggml.add_bos_token")?.unwrap_or(model == "llama");
        let add_eos = file.get_bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let mut single = Vec::new();
        let mut specials = Vec::new();
        let mut push = |id: Option<u32>, key: &str, single: &mut Vec<String>| -> GgufResult<()> {
            let id = id.ok_or_else(|| bad(key, "the file asks for the token but names none"))?;
            let token = tokens[id as usize].to_owned();
            single.push(token.clone());
            if !specials.iter().any(|(t, _)| *t == token) {
                specials.push((token, id));
            }
            Ok(())
        };
        if add_bos {
            push(bos_token_id, "tokenizer.ggml.bos_token_id", &mut single)?;
        }
        single.push("$A".to_owned());
        if add_eos {
            push(eos_token_ids.first().copied(), "tokenizer.ggml.eos_token_id", &mut single)?;
        }
        let template = TemplateProcessing::builder()
            .try_single(single.join(" "))
            .map_err(|e| bad("tokenizer.ggml.bos_token_id", e))?
            .special_tokens(specials)
            .build()
            .map_err(|e| bad("tokenizer.ggml.bos_token_id", e.to_string()))?;
        tokenizer.with_post_processor(Some(template));
        Ok(Self { tokenizer, bos_token_id, eos_token_ids, add_bos, add_eos })
    }
}

/// Control tokens (type 3) as special added tokens, user-defined ones (4) as plain added tokens
/// (`add_gguf_special_tokens`); `keep` filters the control tokens.
fn add_typed_tokens(tokenizer: &mut tokenizers::Tokenizer, tokens: &[&str], types: &[i64], keep: impl Fn(&str) -> bool) {
    let control: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|&(t, &ty)| ty == TYPE_CONTROL && keep(t))
        .map(|(t, _)| AddedToken::from(t.to_string(), true).normalized(false))
        .collect();
    tokenizer.add_special_tokens(&control);
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|&(_, &ty)| ty == TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.to_string(), false).normalized(false))
        .collect();
    tokenizer.add_tokens(&user);
}

/// Merges from `tokenizer.ggml.merges` ("a b" strings), if the file has them.
fn file_merges(file: &GgufFile) -> GgufResult<Option<Vec<(String, String)>>> {
    const KEY: &str = "tokenizer.ggml.merges";
    if file.get(KEY).is_none() {
        return Ok(None);
    }
    strings(file, KEY)?
        .into_iter()
        .map(|m| {
            m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| bad(KEY, format!("merge `{m}` is not two parts")))
        })
        .collect::<GgufResult<_>>()
        .map(Some)
}

fn build_bpe(builder: tokenizers::models::bpe::BpeBuilder) -> GgufResult<BPE> {
    builder.build().map_err(|e| bad("tokenizer.ggml.merges", e.to_string()))
}

/// `byte_level_tokenizer` + `set_split_regex`.
fn byte_level(file: &GgufFile, tokens: &[&str], types: &[i64]) -> GgufResult<tokenizers::Tokenizer> {
    let spelling = bytes_to_unicode();
    let in_alphabet = |t: &str| t.chars().all(|c| spelling.contains(&c));
    let mut vocab = Vocab::with_capacity_and_hasher(tokens.len(), ahash::RandomState::new());
    for (id, &t) in tokens.iter().enumerate() {
        let key = if in_alphabet(t) { t.to_owned() } else { t.bytes().map(|b| spelling[b as usize]).collect() };
        vocab.insert(key, id as u32);
    }
    let merges = file_merges(file)?.ok_or_else(|| GgufError::MissingKey("tokenizer.ggml.merges".to_owned()))?;
    let bpe = build_bpe(
        BPE::builder().vocab_and_merges(vocab, merges).continuing_subword_prefix(String::new()).end_of_word_suffix(String::new()),
    )?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = match file.get("tokenizer.ggml.pre").and_then(Value::as_str).and_then(pre_split) {
        Some(split) => {
            let split = Split::new(SplitPattern::Regex(split.to_owned()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| bad("tokenizer.ggml.pre", e.to_string()))?;
            PreTokenizerWrapper::Sequence(PreSequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]))
        }
        None => byte_level.into(),
    };
    tokenizer.with_pre_tokenizer(Some(pre));
    tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)));
    // A control token spelled outside the byte alphabet is a llama.cpp mislabel; transformers
    // skips it, so as not to add an entry the model has no row for.
    add_typed_tokens(&mut tokenizer, tokens, types, in_alphabet);
    Ok(tokenizer)
}

/// `sentencepiece_tokenizer` (and `gemma_tokenizer` when `gemma`) into `LlamaTokenizer`.
fn sentencepiece(file: &GgufFile, tokens: &[&str], types: &[i64], gemma: bool) -> GgufResult<tokenizers::Tokenizer> {
    // Gemma stores a token of two or more spaces as spaces; the pre-tokenizer produces `▁`s.
    let tokens: Vec<String> = tokens
        .iter()
        .map(|t| if gemma && t.contains(' ') && t.trim().is_empty() { "▁".repeat(t.chars().count()) } else { (*t).to_owned() })
        .collect();
    let mut vocab = Vocab::with_capacity_and_hasher(tokens.len(), ahash::RandomState::new());
    for (id, t) in tokens.iter().enumerate() {
        vocab.insert(t.clone(), id as u32);
    }
    let merges = match file_merges(file)? {
        Some(m) => m,
        None => {
            let scores: Vec<f64> = if gemma {
                // Gemma's scores do not follow its merge order; the order in the file does.
                (0..tokens.len()).map(|i| -(i as f64)).collect()
            } else {
                const KEY: &str = "tokenizer.ggml.scores";
                let s = file.get_array(KEY)?;
                if s.len() != tokens.len() {
                    return Err(bad(KEY, format!("has {} entries for {} tokens", s.len(), tokens.len())));
                }
                s.iter().map(|v| v.as_f64().ok_or_else(|| bad(KEY, "holds a non-number"))).collect::<GgufResult<_>>()?
            };
            generate_merges(&tokens, &vocab, &scores)
        }
    };
    let bpe = build_bpe(BPE::builder().vocab_and_merges(vocab, merges).fuse_unk(true).byte_fallback(true))?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    let prefix = file.get_bool_opt("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let scheme = if prefix { PrependScheme::First } else { PrependScheme::Never };
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
    let mut steps: Vec<DecoderWrapper> = vec![
        Replace::new("▁", " ").map_err(|e| bad("tokenizer.ggml.model", e.to_string()))?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix {
        steps.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(steps)));
    add_typed_tokens(&mut tokenizer, &tokens.iter().map(String::as_str).collect::<Vec<_>>(), types, |_| true);
    Ok(tokenizer)
}

/// The merges a SentencePiece vocabulary implies (`generate_merges` with scores): every split of
/// every token into two tokens of the vocabulary, ranked by the merged token's score (best first),
/// then by the lengths of the parts (longer first); ties keep the vocabulary's order, and the
/// splits of one token are ordered by the ids of their parts.
fn generate_merges(tokens: &[String], vocab: &Vocab, scores: &[f64]) -> Vec<(String, String)> {
    // transformers walks `dict(zip(tokens, scores))`: a repeated token keeps its first position
    // and its last score.
    let mut order: Vec<usize> = Vec::with_capacity(tokens.len());
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if last.insert(t.as_str(), i).is_none() {
            order.push(i);
        }
    }
    let mut merges: Vec<(usize, usize, f64)> = Vec::new(); // (left end in bytes, token index, score)
    for &i in &order {
        let token = &tokens[i];
        let score = scores[last[token.as_str()]];
        let mut local: Vec<(u32, u32, usize)> = token
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = token.split_at(at);
                Some((*vocab.get(l)?, *vocab.get(r)?, at))
            })
            .collect();
        local.sort_by_key(|&(l, r, _)| (l, r));
        merges.extend(local.into_iter().map(|(_, _, at)| (at, i, score)));
    }
    let chars = |s: &str| s.chars().count();
    // A stable sort on the reversed key, as Python's `sorted(..., reverse=True)`.
    merges.sort_by(|a, b| {
        let (ta, tb) = (&tokens[a.1], &tokens[b.1]);
        let ka = (chars(&ta[..a.0]), chars(&ta[a.0..]));
        let kb = (chars(&tb[..b.0]), chars(&tb[b.0..]));
        b.2.total_cmp(&a.2).then(kb.cmp(&ka))
    });
    merges.into_iter().map(|(at, i, _)| (tokens[i][..at].to_owned(), tokens[i][at..].to_owned())).collect()
}
