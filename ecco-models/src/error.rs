//! The one error type of `ecco-models`.

use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the core crate (I/O, safetensors, shapes, trace bundles).
    #[error(transparent)]
    Core(#[from] ecco_core::Error),
    /// The model directory does not exist or lacks a required file.
    #[error("{path}: {what} not found")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What the file is (e.g. "model directory", "config.json").
        what: &'static str,
    },
    /// `config.json` cannot be parsed or describes an impossible model.
    #[error("{path}: invalid config: {reason}")]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The checkpoint's architecture is not one we implement.
    #[error("unsupported architecture `{found}` (supported: {supported})")]
    UnsupportedArchitecture {
        /// The `model_type` found in `config.json`.
        found: String,
        /// The supported model types, comma separated.
        supported: String,
    },
    /// The checkpoint holds tensors the architecture does not use.
    #[error("{path}: unexpected tensors in the checkpoint: {names}")]
    UnusedTensors {
        /// The checkpoint file.
        path: PathBuf,
        /// The first few unexpected names.
        names: String,
    },
    /// `tokenizer.json` cannot be loaded or used.
    #[error("{path}: tokenizer error: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers crate reported.
        reason: String,
    },
    /// The tokenizer produces ids the model's vocabulary does not have.
    #[error("the tokenizer has {tokenizer} entries but the model's vocabulary has {model}")]
    VocabularyMismatch {
        /// The tokenizer's vocabulary size (with added tokens).
        tokenizer: usize,
        /// The model's `vocab_size`.
        model: usize,
    },
    /// The tokenizer maps a token to an id the model's embedding does not have.
    #[error("tokenizer.json maps a token to id {id}, outside the model's vocabulary of {model}")]
    TokenIdOutsideVocabulary {
        /// The largest id the tokenizer produces.
        id: u32,
        /// The model's `vocab_size`.
        model: usize,
    },
    /// The input text gives no tokens.
    #[error("the prompt is empty: it gives no tokens")]
    EmptyPrompt,
    /// `max_new_tokens` does not fit in the model's positions after the prompt.
    #[error(
        "--max-new-tokens {asked} is too many: after the prompt's {prompt} tokens the model's {max} positions leave room for at most {room} new tokens"
    )]
    TooManyNewTokens {
        /// The number asked for.
        asked: usize,
        /// The prompt's tokens.
        prompt: usize,
        /// The model's positions (`n_positions`).
        max: usize,
        /// The most new tokens that fit.
        room: usize,
    },
    /// An encoder-decoder's `max_new_tokens` is more than its decoder reads.
    #[error(
        "--max-new-tokens {asked} is too many: the decoder reads at most {max} tokens (`n_positions` in config.json; T5's default cap is 512)"
    )]
    TooManyDecoderTokens {
        /// The number asked for.
        asked: usize,
        /// The cap (`T5Config::max_positions`).
        max: usize,
    },
    /// A generation setting is out of range.
    #[error("invalid generation setting: {0}")]
    InvalidSetting(&'static str),
    /// The requested device's backend is not compiled in.
    #[error("device `{device}` is not available in this build (rebuild with `--features {feature}`)")]
    DeviceUnavailable {
        /// The device asked for.
        device: String,
        /// The cargo feature that enables it.
        feature: &'static str,
    },
    /// The backend is compiled in but this machine gives it no device (no GPU adapter, no
    /// NVIDIA driver).
    #[error("device `{device}` cannot be opened: {reason}")]
    DeviceInit {
        /// The device asked for.
        device: &'static str,
        /// Why, with what to install.
        reason: String,
    },
    /// `HF_HUB_OFFLINE` is set and the cache lacks part of the checkpoint.
    #[error("{id} is not in the Hugging Face cache {cache} ({missing}) and HF_HUB_OFFLINE is set")]
    NotCached {
        /// The Hub id.
        id: String,
        /// The cache root looked in.
        cache: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// The checkpoint is not cached and this build cannot download.
    #[error(
        "{id} is not a directory nor in the Hugging Face cache {cache}, and this build cannot download (rebuild with `--features hub`)"
    )]
    HubUnavailable {
        /// The Hub id.
        id: String,
        /// The cache root looked in.
        cache: PathBuf,
    },
    /// Downloading from the Hub failed.
    #[error("cannot download {file} of {id} from the Hugging Face Hub: {reason}")]
    Download {
        /// The Hub id.
        id: String,
        /// The file being fetched.
        file: String,
        /// What the client reported.
        reason: String,
    },
    /// No `--model` was given and this build has no embedded demo model.
    #[error("this build has no embedded demo model (rebuild with `--features demo`): pass --model")]
    DemoUnavailable,
    /// A tensor could not be read back from the device.
    #[error("could not read a tensor back from the device: {0}")]
    Readback(String),
    /// A GGUF file is corrupt, truncated or describes something we cannot run.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: crate::gguf::GgufError,
    },
    /// A weights file other than safetensors (`pytorch_model.bin`) is corrupt or cannot be read.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
