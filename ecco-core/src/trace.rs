//! The trace bundle: `trace.json` plus `tensors.safetensors` in one directory.
//!
//! The layout is the project's public contract (`shared/spec/cli-and-trace.md`). Bundles are
//! written to a temporary sibling directory and renamed into place, so a failed run never leaves
//! a half-written bundle behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ModelInfo, ModelKind};
use crate::tensors::{F32Tensor, SafetensorsReader, write_safetensors};

/// The value of `format` in every `trace.json`.
pub const TRACE_FORMAT: &str = "ecco-trace";
/// The bundle format version this crate writes and reads.
pub const TRACE_VERSION: u32 = 1;
/// File name of the JSON part of a bundle.
pub const TRACE_JSON: &str = "trace.json";
/// File name of the tensor part of a bundle.
pub const TRACE_TENSORS: &str = "tensors.safetensors";

/// The model that produced a trace, as recorded in `trace.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceModel {
    /// Checkpoint directory or Hub id.
    pub name: String,
    /// Architecture family (`gpt2`, `bert`, `t5`).
    pub family: String,
    /// `causal`, `mlm` or `enc-dec`.
    pub model_type: ModelKind,
    /// Number of blocks per stack.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Vocabulary size of the LM head.
    pub vocab_size: usize,
    /// Attention heads per block.
    #[serde(default)]
    pub n_heads: usize,
    /// FFN neurons per block.
    #[serde(default)]
    pub intermediate_size: usize,
}

impl From<&ModelInfo> for TraceModel {
    fn from(info: &ModelInfo) -> Self {
        Self {
            name: info.name.clone(),
            family: info.family.clone(),
            model_type: info.kind,
            n_layers: info.n_layers,
            hidden_size: info.hidden_size,
            vocab_size: info.vocab_size,
            n_heads: info.n_heads,
            intermediate_size: info.intermediate_size,
        }
    }
}

/// How the generated tokens were chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationSettings {
    /// Number of tokens generated.
    pub max_new_tokens: usize,
    /// `false` for greedy decoding.
    pub sample: bool,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Top-k filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Top-p (nucleus) filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
}

/// The JSON part of a trace bundle (`trace.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// Always [`TRACE_VERSION`].
    pub version: u32,
    /// The model that produced the trace.
    pub model: TraceModel,
    /// The device kind the trace was computed on (`flex`, `wgpu`, `cuda`).
    pub backend: String,
    /// The tokenizer's raw tokens (e.g. `Ġworld`): prompt then generated (or encoder then decoder).
    pub tokens: Vec<String>,
    /// The ids of `tokens`.
    pub token_ids: Vec<u32>,
    /// Prompt length (causal) or encoder length (encoder-decoder).
    pub n_input_tokens: usize,
    /// Causal LM and masked LM: the decoded text of the whole sequence (special tokens kept).
    /// Encoder-decoder: the decoded text of the decoder's tokens after its start token (the
    /// generated text), special tokens skipped, as `tokenizer.decode(generated,
    /// skip_special_tokens=True)` gives it.
    pub output_text: String,
    /// Per method, one normalised list per generated token.
    #[serde(default)]
    pub attributions: BTreeMap<String, Vec<Vec<f32>>>,
    /// The layers `activations.*` hold, when `--layers` chose some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_layers: Option<Vec<usize>>,
    /// How the tokens were generated (absent for `forward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationSettings>,
    /// Masked LMs: per mask token of the input, what the model predicts there (absent otherwise).
    /// For a masked LM, `attributions[method][k]` scores every input token for the top
    /// prediction of `masked_predictions[k]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_predictions: Option<Vec<MaskedPrediction>>,
    /// Names of the tensors in `tensors.safetensors`.
    #[serde(default)]
    pub tensors: Vec<String>,
}

/// One token and its probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictedToken {
    /// The token's id.
    pub token_id: u32,
    /// The tokenizer's raw token.
    pub token: String,
    /// Softmax probability.
    pub prob: f32,
}

/// What a masked LM predicts at one mask position of the input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskedPrediction {
    /// Index of the mask token in `tokens`.
    pub position: usize,
    /// The most likely tokens, most likely first.
    pub predictions: Vec<PredictedToken>,
}

impl Trace {
    /// A trace with no attributions and no tensors.
    pub fn new(info: &ModelInfo, backend: &str, tokens: Vec<String>, token_ids: Vec<u32>, n_input_tokens: usize) -> Self {
        Self {
            format: TRACE_FORMAT.to_owned(),
            version: TRACE_VERSION,
            model: TraceModel::from(info),
            backend: backend.to_owned(),
            tokens,
            token_ids,
            n_input_tokens,
            output_text: String::new(),
            attributions: BTreeMap::new(),
            activation_layers: None,
            generation: None,
            masked_predictions: None,
            tensors: Vec::new(),
        }
    }

    /// Number of generated tokens (0 for a plain forward pass of a causal or masked LM).
    pub fn n_generated(&self) -> usize {
        match self.model.model_type {
            ModelKind::EncoderDecoder => self.tokens.len().saturating_sub(self.n_input_tokens + 1),
            _ => self.tokens.len().saturating_sub(self.n_input_tokens),
        }
    }
}

/// A trace with its tensors, in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceBundle {
    /// The JSON part.
    pub trace: Trace,
    /// The tensor part, by name (`activations.decoder`, `hidden_states.decoder`, ...).
    pub tensors: BTreeMap<String, F32Tensor>,
}

impl TraceBundle {
    /// Writes the bundle to `dir` atomically: into a temporary sibling, then renamed.
    ///
    /// An existing `dir` is replaced only if it is empty or an earlier trace bundle.
    ///
    /// # Errors
    /// [`Error::RefuseOverwrite`] for a foreign directory, [`Error::Io`] when writing fails.
    pub fn write(&self, dir: &Path) -> Result<()> {
        check_output_dir(dir)?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        }
        let file_name = dir.file_name().map_or_else(|| "trace".into(), |n| n.to_string_lossy().into_owned());
        let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = self.write_into(&tmp).and_then(|()| {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn write_into(&self, tmp: &Path) -> Result<()> {
        if tmp.exists() {
            std::fs::remove_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
        }
        std::fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut trace = self.trace.clone();
        trace.tensors = self.tensors.keys().cloned().collect();
        let json_path = tmp.join(TRACE_JSON);
        let json = serde_json::to_vec_pretty(&trace).map_err(|e| Error::Json { path: json_path.clone(), source: e })?;
        std::fs::write(&json_path, json).map_err(|e| Error::io(&json_path, e))?;
        write_safetensors(&tmp.join(TRACE_TENSORS), &self.tensors)
    }

    /// Reads a bundle from `dir`.
    ///
    /// # Errors
    /// [`Error::NotATrace`] when `dir` holds no trace of a known version, or the reader's errors.
    pub fn read(dir: &Path) -> Result<Self> {
        let trace = read_trace_json(dir)?;
        let tensors_path = dir.join(TRACE_TENSORS);
        let tensors = if tensors_path.exists() { SafetensorsReader::open(&tensors_path)?.read_all()? } else { BTreeMap::new() };
        Ok(Self { trace, tensors })
    }

    /// The tensor `name`, or an error naming the flag that records it.
    ///
    /// # Errors
    /// [`Error::MissingTensor`].
    pub fn tensor(&self, name: &str) -> Result<&F32Tensor> {
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor { path: PathBuf::from(TRACE_TENSORS), name: name.to_owned() })
    }
}

/// Reads and checks `DIR/trace.json`.
///
/// # Errors
/// [`Error::NotATrace`], [`Error::Json`] or [`Error::Io`].
pub fn read_trace_json(dir: &Path) -> Result<Trace> {
    let path = dir.join(TRACE_JSON);
    if !path.is_file() {
        return Err(Error::NotATrace { path: dir.to_path_buf(), reason: format!("no {TRACE_JSON}") });
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Json { path: path.clone(), source: e })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(TRACE_FORMAT) {
        return Err(Error::NotATrace { path, reason: format!("`format` is not \"{TRACE_FORMAT}\"") });
    }
    if value.get("version").and_then(serde_json::Value::as_u64) != Some(u64::from(TRACE_VERSION)) {
        return Err(Error::NotATrace { path, reason: format!("unsupported version (this build reads version {TRACE_VERSION})") });
    }
    serde_json::from_value(value).map_err(|e| Error::Json { path, source: e })
}

/// Checks that a bundle may be written to `dir`: it does not exist, is empty, or holds an
/// earlier trace bundle. Call it before long work so a bad `--out` fails at once.
///
/// # Errors
/// [`Error::RefuseOverwrite`] or [`Error::Io`].
pub fn check_output_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::RefuseOverwrite { path: dir.to_path_buf() });
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let empty = entries.next().is_none();
    if empty || dir.join(TRACE_JSON).is_file() { Ok(()) } else { Err(Error::RefuseOverwrite { path: dir.to_path_buf() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        ModelInfo {
            name: "tiny".into(),
            family: "gpt2".into(),
            kind: ModelKind::Causal,
            n_layers: 2,
            hidden_size: 4,
            n_heads: 2,
            intermediate_size: 16,
            vocab_size: 10,
            max_positions: Some(8),
        }
    }

    #[test]
    fn bundle_round_trips_and_refuses_foreign_dirs() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let mut trace = Trace::new(&info(), "flex", vec!["a".into(), "Ġb".into()], vec![1, 2], 1);
        trace.attributions.insert("grad_x_input".into(), vec![vec![1.0]]);
        let mut tensors = BTreeMap::new();
        tensors.insert("hidden_states.decoder".into(), F32Tensor::new("h", vec![3, 1, 4], vec![0.5; 12])?);
        let bundle = TraceBundle { trace, tensors };
        let out = tmp.path().join("out");
        bundle.write(&out)?;
        bundle.write(&out)?; // replacing an earlier bundle is fine
        let back = TraceBundle::read(&out)?;
        assert_eq!(back.tensors, bundle.tensors);
        assert_eq!(back.trace.tensors, vec!["hidden_states.decoder".to_owned()]);
        assert_eq!(back.trace.tokens, bundle.trace.tokens);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(TRACE_JSON)).map_err(|e| Error::io("j", e))?)
            .map_err(|e| Error::Json { path: "j".into(), source: e })?;
        assert_eq!(json["model"]["model_type"], "causal");
        assert_eq!(json["format"], "ecco-trace");

        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).map_err(|e| Error::io(&foreign, e))?;
        std::fs::write(foreign.join("keep.txt"), "x").map_err(|e| Error::io(&foreign, e))?;
        assert!(matches!(bundle.write(&foreign), Err(Error::RefuseOverwrite { .. })));
        assert!(foreign.join("keep.txt").exists());
        assert!(matches!(TraceBundle::read(&foreign), Err(Error::NotATrace { .. })));
        Ok(())
    }
}
