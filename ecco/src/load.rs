//! [`from_pretrained`]: a checkpoint directory, a Hugging Face id (cache, then Hub) or the
//! embedded demo model, loaded into an [`Lm`].

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ecco_core::{ModelInfo, ModelKind};
use ecco_models::{DEMO_NAME, DeviceKind, HubSettings, LoadedModel, Tokenizer};

use crate::progress;

/// How [`from_pretrained`] finds and places a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where to run: [`DeviceKind::Flex`] (CPU, the default), `Wgpu` or `Cuda`.
    pub device: DeviceKind,
    /// The Hugging Face cache, offline mode and download progress bar; by default as the
    /// environment says (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`).
    pub hub: HubSettings,
    /// A spinner on stderr while loading, and the download's progress bar (shown only on a
    /// terminal); `false` silences both.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { device: DeviceKind::Flex, hub: HubSettings::from_env(), progress: true }
    }
}

/// A loaded language model with its tokenizer: what Ecco's `from_pretrained` returns.
///
/// Cloning is cheap (the model is shared).
#[derive(Clone, Debug)]
pub struct Lm {
    loaded: Arc<LoadedModel>,
}

/// Loads a model as Ecco's `ecco.from_pretrained(name)` does.
///
/// `name` is a checkpoint directory (`config.json`, `model.safetensors` or shards or
/// `pytorch_model.bin`, `tokenizer.json`); else a Hugging Face id (`distilgpt2`, `org/name`)
/// found in the Hugging Face cache or, with the `hub` feature, downloaded; or
/// [`ecco_models::DEMO_NAME`] (`ecco-demo`) for the demo model embedded with the `demo` feature.
///
/// ```
/// let lm = ecco::from_pretrained("ecco-demo", &ecco::LoadOptions::default())?;
/// assert_eq!(lm.info().n_layers, 4);
/// # Ok::<(), ecco::Error>(())
/// ```
///
/// # Errors
/// A name that is neither a directory nor a cached (or downloadable) id, missing or corrupt
/// files, an unsupported `model_type`.
pub fn from_pretrained(name: &str, options: &LoadOptions) -> Result<Lm> {
    if name == DEMO_NAME && !std::path::Path::new(name).is_dir() {
        return demo_on(options.device);
    }
    if name.trim().is_empty() {
        bail!("the model name is empty");
    }
    // Resolve first: a download draws its own progress bar.
    let hub = HubSettings { progress: options.hub.progress && options.progress, ..options.hub.clone() };
    let resolved = ecco_models::resolve(name, &hub).with_context(|| format!("cannot load model {name}"))?;
    let spinner = progress::spinner(options.progress, "loading");
    let loaded = ecco_models::load(&resolved.dir, options.device);
    spinner.finish_and_clear();
    let mut loaded = loaded.with_context(|| format!("cannot load model {name}"))?;
    loaded.name = resolved.name;
    Ok(Lm::from(loaded))
}

/// The demo model embedded in the binary (feature `demo`) on the CPU: a 4-layer GPT-2 that
/// knows the capitals of countries.
///
/// ```
/// let lm = ecco::demo()?;
/// assert_eq!(lm.name(), "ecco-demo");
/// # Ok::<(), ecco::Error>(())
/// ```
///
/// # Errors
/// When built without the `demo` feature.
pub fn demo() -> Result<Lm> {
    demo_on(DeviceKind::Flex)
}

/// The demo model on a device of `kind`.
///
/// # Errors
/// As [`demo`], and the device's errors.
pub fn demo_on(kind: DeviceKind) -> Result<Lm> {
    Ok(Lm::from(ecco_models::load_demo(kind).context("cannot load the demo model")?))
}

impl From<LoadedModel> for Lm {
    fn from(loaded: LoadedModel) -> Self {
        Self { loaded: Arc::new(loaded) }
    }
}

impl Lm {
    /// The model, tokenizer and origin.
    pub fn loaded(&self) -> &LoadedModel {
        &self.loaded
    }

    /// The shared handle [`crate::Output`]s keep.
    pub(crate) fn shared(&self) -> Arc<LoadedModel> {
        Arc::clone(&self.loaded)
    }

    /// The name traces record: the directory as given, the Hub id, or `ecco-demo`.
    pub fn name(&self) -> &str {
        &self.loaded.name
    }

    /// The model's shape (layers, hidden size, vocabulary, …).
    pub fn info(&self) -> &ModelInfo {
        self.loaded.model.as_lm().info()
    }

    /// Whether the model generates text (GPT-2) rather than filling masks (BERT).
    pub fn is_causal(&self) -> bool {
        self.info().kind == ModelKind::Causal
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.loaded.tokenizer
    }

    /// The raw tokens (`Ġworld`) and ids `text` tokenises to, without special tokens.
    ///
    /// # Errors
    /// The tokenizer's errors.
    pub fn tokenize(&self, text: &str) -> Result<(Vec<String>, Vec<u32>)> {
        let enc = self.loaded.tokenizer.encode(text, false)?;
        Ok((enc.tokens, enc.ids))
    }

    /// The id of a token given as an id (`"770"`), a raw token (`"ĠParis"`) or a text that
    /// tokenises to one token (`" Paris"`).
    ///
    /// ```
    /// let lm = ecco::demo()?;
    /// assert_eq!(lm.token_id(" Paris")?, lm.token_id("ĠParis")?);
    /// assert!(lm.token_id(" Paris is").is_err());
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// # Errors
    /// An id outside the vocabulary, a text of several tokens.
    pub fn token_id(&self, token: &str) -> Result<u32> {
        resolve_token(&self.loaded.tokenizer, token, self.info().vocab_size)
    }
}

/// A token given as an id, a raw token (`Ġdog`) or a text that tokenises to one token (` dog`).
///
/// # Errors
/// As [`Lm::token_id`].
pub fn resolve_token(tokenizer: &Tokenizer, token: &str, vocab: usize) -> Result<u32> {
    if let Ok(id) = token.parse::<u32>() {
        if (id as usize) < vocab {
            return Ok(id);
        }
        bail!("token id {id} is outside the vocabulary (size {vocab})");
    }
    if let Some(id) = tokenizer.token_to_id(token) {
        return Ok(id);
    }
    let enc = tokenizer.encode(token, false)?;
    match enc.ids.as_slice() {
        [id] => Ok(*id),
        _ => bail!("`{token}` is not a single token (it tokenises to {:?})", enc.tokens),
    }
}
