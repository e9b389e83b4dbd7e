//! The demo model built into the binary (cargo feature `demo`): a 4-layer GPT-2 trained by
//! `scripts/demo/train_demo.py` on facts such as "The capital of France is Paris.", numbered
//! lists and counting, with its own byte-level BPE tokenizer. It is what `ecco` runs when no
//! `--model` is given: offline, in well under a second, and with a known answer to check.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::loader::{LoadedModel, Parts, build};
use crate::tokenizer::Tokenizer;
use crate::weights::WeightSource;

/// The name traces record for the demo model.
pub const DEMO_NAME: &str = "ecco-demo";

/// The demo checkpoint's three files, embedded at build time from `fixtures/demo/`.
#[cfg(feature = "demo")]
mod files {
    pub const CONFIG: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/demo/config.json"));
    pub const WEIGHTS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/demo/model.safetensors"));
    pub const TOKENIZER: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/demo/tokenizer.json"));
}

/// Whether this build embeds the demo model.
pub const fn demo_available() -> bool {
    cfg!(feature = "demo")
}

/// Loads the embedded demo model onto a device of `kind`.
///
/// # Errors
/// [`Error::DemoUnavailable`] when built without the `demo` feature; the device's errors.
pub fn load_demo(kind: DeviceKind) -> Result<LoadedModel> {
    let device = kind.device()?;
    load_demo_on(kind, &device)
}

/// As [`load_demo`], onto an existing `device`.
///
/// # Errors
/// As [`load_demo`].
pub fn load_demo_on(kind: DeviceKind, device: &Device) -> Result<LoadedModel> {
    let Some((config, weights, tokenizer_bytes)) = embedded() else {
        return Err(Error::DemoUnavailable);
    };
    let label = |file: &str| -> PathBuf { Path::new(DEMO_NAME).join(file) };
    let parts = Parts { name: DEMO_NAME.to_owned(), dir: PathBuf::from(DEMO_NAME), config_path: label("config.json"), config_text: config };
    let tokenizer_label = label("tokenizer.json");
    let tokenizer = || Tokenizer::from_bytes(&tokenizer_label, tokenizer_bytes);
    build(parts, tokenizer, || WeightSource::from_bytes(&label("model.safetensors"), weights), kind, device)
}

/// The embedded files: config text, weights, tokenizer.
#[cfg(feature = "demo")]
fn embedded() -> Option<(&'static str, &'static [u8], &'static [u8])> {
    Some((files::CONFIG, files::WEIGHTS, files::TOKENIZER))
}

/// No files without the `demo` feature.
#[cfg(not(feature = "demo"))]
fn embedded() -> Option<(&'static str, &'static [u8], &'static [u8])> {
    None
}
