//! Loading a checkpoint directory: `config.json` decides the architecture.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use ecco_core::{CausalLm, LanguageModel};
use serde::Deserialize;

use crate::bert::{self, Bert, BertConfig};
use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::gpt2::{self, Gpt2, Gpt2Config};
use crate::t5::{self, T5, T5Config};
use crate::tokenizer::Tokenizer;
use crate::weights::WeightSource;

/// The `model_type`s this build can load.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["gpt2", "bert", "roberta", "distilbert", "t5"];

/// A loaded model of any supported architecture.
#[derive(Clone, Debug)]
pub enum Model {
    /// GPT-2 family (boxed, as every variant: models are large).
    Gpt2(Box<Gpt2>),
    /// BERT family (BERT, RoBERTa, DistilBERT): masked LMs and bare encoders (boxed).
    Bert(Box<Bert>),
    /// T5 (`T5ForConditionalGeneration`; T5 v1.1, flan-t5): an encoder-decoder (boxed).
    T5(Box<T5>),
}

impl Model {
    /// The model through the architecture-independent trait.
    pub fn as_lm(&self) -> &dyn LanguageModel {
        match self {
            Self::Gpt2(m) => m.as_ref(),
            Self::Bert(m) => m.as_ref(),
            Self::T5(m) => m.as_ref(),
        }
    }

    /// The model as a causal LM, if it is one.
    pub fn as_causal(&self) -> Option<&dyn CausalLm> {
        match self {
            Self::Gpt2(m) => Some(m.as_ref()),
            Self::Bert(_) | Self::T5(_) => None,
        }
    }

    /// The model as an encoder-decoder, if it is one.
    pub fn as_seq2seq(&self) -> Option<&T5> {
        match self {
            Self::T5(m) => Some(m.as_ref()),
            Self::Gpt2(_) | Self::Bert(_) => None,
        }
    }

    /// Whether the model has an LM head (a bare encoder such as MiniLM's `BertModel` has none).
    pub fn has_lm_head(&self) -> bool {
        match self {
            Self::Gpt2(_) | Self::T5(_) => true,
            Self::Bert(m) => m.mlm_head.is_some(),
        }
    }

    /// The end-of-sequence id generation stops at, if the config names one.
    pub fn eos_token_id(&self) -> Option<u32> {
        match self {
            Self::Gpt2(m) => m.config.eos_token_id,
            Self::Bert(_) => None,
            Self::T5(m) => m.config.eos_token_id,
        }
    }
}

/// A model with its tokenizer and where it came from.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    /// The model.
    pub model: Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The name traces record: the directory as given, a Hub id, or `ecco-demo`.
    pub name: String,
    /// The checkpoint directory (for the embedded demo model, its name).
    pub dir: PathBuf,
    /// The device kind the weights live on.
    pub device_kind: DeviceKind,
}

#[derive(Deserialize)]
struct ModelTypeOnly {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

/// Loads the checkpoint in `dir` (`config.json`, `model.safetensors` or shards,
/// `tokenizer.json`) onto a device of `kind`.
///
/// # Errors
/// Missing or corrupt files, an unsupported architecture, a tokenizer that does not fit.
pub fn load(dir: &Path, kind: DeviceKind) -> Result<LoadedModel> {
    let device = kind.device()?;
    load_on(dir, kind, &device)
}

/// Loads `--model NAME`: a directory, or a Hub id found in the Hugging Face cache or downloaded
/// (see [`crate::hub`]); traces record `name`.
///
/// # Errors
/// As [`crate::hub::resolve`] and [`load`].
pub fn load_named(name: &str, settings: &crate::hub::HubSettings, kind: DeviceKind) -> Result<LoadedModel> {
    let resolved = crate::hub::resolve(name, settings)?;
    let mut loaded = load(&resolved.dir, kind)?;
    loaded.name = resolved.name;
    Ok(loaded)
}

/// As [`load`], onto an existing `device`.
///
/// # Errors
/// As [`load`].
pub fn load_on(dir: &Path, kind: DeviceKind, device: &Device) -> Result<LoadedModel> {
    if !dir.is_dir() {
        return Err(Error::MissingFile { path: dir.to_path_buf(), what: "model directory" });
    }
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::MissingFile { path: config_path, what: "config.json" });
    }
    let text = std::fs::read_to_string(&config_path).map_err(|e| ecco_core::Error::io(&config_path, e))?;
    let tokenizer_path = dir.join("tokenizer.json");
    let name = dir.display().to_string();
    let parts = Parts { name, dir: dir.to_path_buf(), config_path, config_text: &text };
    build(parts, || Tokenizer::from_file(&tokenizer_path), || WeightSource::open(dir), kind, device)
}

/// A checkpoint's name and config, from a directory or from memory.
pub(crate) struct Parts<'a> {
    /// The name traces record.
    pub name: String,
    /// The directory (or a label for a checkpoint in memory).
    pub dir: PathBuf,
    /// `config.json`'s path, for errors.
    pub config_path: PathBuf,
    /// `config.json`'s text.
    pub config_text: &'a str,
}

/// Builds the model `parts.config_text` describes, with weights from `weights()` and the
/// tokenizer from `tokenizer()`.
pub(crate) fn build(
    parts: Parts<'_>,
    tokenizer: impl FnOnce() -> Result<Tokenizer> + Send,
    weights: impl FnOnce() -> Result<WeightSource>,
    kind: DeviceKind,
    device: &Device,
) -> Result<LoadedModel> {
    let Parts { name, dir, config_path, config_text } = parts;
    let head: ModelTypeOnly =
        serde_json::from_str(config_text).map_err(|e| Error::InvalidConfig { path: config_path.clone(), reason: e.to_string() })?;
    let model_type = head.model_type.or_else(|| head.architectures.first().cloned()).unwrap_or_default();
    let short_name = Path::new(&name).file_name().map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
    // Parsing a 50K-entry `tokenizer.json` (about 50 ms, `bpe_json`) takes longer than mapping
    // the weights: do both at once.
    let (tokenizer, model) = std::thread::scope(|s| {
        let tokenizer = s.spawn(tokenizer);
        let model = match model_type.as_str() {
            "gpt2" => Gpt2Config::from_json(config_text, &config_path)
                .and_then(|config| gpt2::weights::load_from(weights()?, config, &short_name, device))
                .map(|m| Model::Gpt2(Box::new(m))),
            "bert" | "roberta" | "distilbert" => BertConfig::from_json(config_text, &config_path)
                .and_then(|config| bert::weights::load_from(weights()?, config, &short_name, device))
                .map(|m| Model::Bert(Box::new(m))),
            "t5" => T5Config::from_json(config_text, &config_path)
                .and_then(|config| t5::weights::load_from(weights()?, config, &short_name, device))
                .map(|m| Model::T5(Box::new(m))),
            other => Err(Error::UnsupportedArchitecture {
                found: if other.is_empty() { "(none)".to_owned() } else { other.to_owned() },
                supported: SUPPORTED_MODEL_TYPES.join(", "),
            }),
        };
        let tokenizer = tokenizer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (tokenizer, model)
    });
    let (tokenizer, model) = (tokenizer?, model?);
    let vocab = model.as_lm().info().vocab_size;
    if tokenizer.vocab_size() > vocab {
        return Err(Error::VocabularyMismatch { tokenizer: tokenizer.vocab_size(), model: vocab });
    }
    // The count can fit while an id does not (ids need not be contiguous): every id the
    // tokenizer can produce must index the model's embedding.
    if let Some(id) = tokenizer.max_id().filter(|&id| id as usize >= vocab) {
        return Err(Error::TokenIdOutsideVocabulary { id, model: vocab });
    }
    Ok(LoadedModel { model, tokenizer, name, dir, device_kind: kind })
}
