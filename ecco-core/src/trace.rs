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
    /// Every intervention applied to the run (ablations, steering), in the order applied
    /// (absent when the model ran unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interventions: Vec<AppliedIntervention>,
}

/// One intervention a run applied, as `trace.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedIntervention {
    /// `ablate` or `steer`.
    pub kind: String,
    /// The hook pattern it applied at.
    pub hook: String,
    /// Ablation: `zero` or `mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Ablation of chosen neurons (indices of the hook's last axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neurons: Option<Vec<usize>>,
    /// Ablation of chosen heads (`attn.z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<Vec<usize>>,
    /// Steering: where the vector came from (a file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// Steering: the vector's scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f32>,
    /// Steering: the vector's Euclidean norm (before scaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<f32>,
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
            interventions: Vec::new(),
        }
    }

    /// Number of generated tokens (0 for a plain forward pass of a causal or masked LM).
    pub fn n_generated(&self) -> usize {
        match self.model.model_type {
            ModelKind::EncoderDecoder => self.tokens.len().saturating_sub(self.n_input_tokens + 1),
            _ => self.tokens.len().saturating_sub(self.n_input_tokens),
        }
    }

    /// Index of the first generated token: an encoder-decoder's follows the decoder's start
    /// token.
    pub fn first_generated(&self) -> usize {
        self.n_input_tokens + usize::from(self.model.model_type == ModelKind::EncoderDecoder)
    }

    /// The ids the logit lens's hidden states cover and how many of them were input: an
    /// encoder-decoder's decoder reads its start token and generates the rest.
    pub fn lens_sequence(&self) -> (&[u32], usize) {
        match self.model.model_type {
            ModelKind::EncoderDecoder => (self.token_ids.get(self.n_input_tokens..).unwrap_or_default(), 1),
            _ => (&self.token_ids[..], self.n_input_tokens),
        }
    }

    /// An encoder-decoder trace's position (an index into encoder + decoder tokens) as a
    /// position among the decoder's tokens, whose hidden states the lens reads; other traces'
    /// as is. `None` for a position the decoder does not predict.
    pub fn decoder_position(&self, position: usize) -> Option<usize> {
        if self.model.model_type != ModelKind::EncoderDecoder {
            return Some(position);
        }
        let n = self.n_input_tokens;
        (position > n && position < self.tokens.len()).then(|| position - n)
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
    /// Writes the bundle to `dir`.
    ///
    /// The two files are written into a fresh temporary sibling directory (created exclusively,
    /// with an unpredictable name) and then moved into place. A `dir` that does not exist or is
    /// empty receives the whole directory in one rename. A `dir` that already holds an ecco trace
    /// keeps everything else it holds: only `trace.json` and `tensors.safetensors` are replaced,
    /// each by one rename. Any other existing `dir` is refused before anything is written.
    ///
    /// # Errors
    /// [`Error::RefuseOverwrite`] for a foreign directory or a path that is not a directory,
    /// [`Error::Io`] when writing fails (nothing is then left behind).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let existing = check_output_dir(dir)?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        }
        let file_name = dir.file_name().map_or_else(|| "trace".into(), |n| n.to_string_lossy().into_owned());
        let tmp = tempfile::Builder::new().prefix(&format!(".{file_name}.tmp-")).tempdir_in(&parent).map_err(|e| Error::io(&parent, e))?;
        self.write_into(tmp.path())?;
        match existing {
            OutputDir::Absent => {
                let tmp = tmp.keep();
                set_dir_permissions(&tmp);
                std::fs::rename(&tmp, dir).map_err(|e| {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Error::io(dir, e)
                })
            }
            // Our own files only; the tensors first, so a reader never sees a new `trace.json`
            // beside the old tensors. `tmp` (then empty) is removed when dropped.
            OutputDir::Empty | OutputDir::Bundle => [TRACE_TENSORS, TRACE_JSON]
                .into_iter()
                .try_for_each(|name| std::fs::rename(tmp.path().join(name), dir.join(name)).map_err(|e| Error::io(dir.join(name), e))),
        }
    }

    fn write_into(&self, tmp: &Path) -> Result<()> {
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
    ///
    /// The bundle is checked before any tensor is read (see [`TraceBundle::validate`]): the
    /// tensors' shapes come from the safetensors header, which is itself checked against the
    /// file's size, so a bundle cannot make the reader allocate more than the file holds.
    pub fn read(dir: &Path) -> Result<Self> {
        let trace = read_trace_json(dir)?;
        let invalid = |reason: String| Error::InvalidTrace { path: dir.to_path_buf(), reason };
        crate::validate::check_trace(&trace).map_err(invalid)?;
        let tensors_path = dir.join(TRACE_TENSORS);
        let tensors = if tensors_path.exists() {
            let reader = SafetensorsReader::open(&tensors_path)?;
            for (name, entry) in reader.entries() {
                crate::validate::check_shape(&trace, name, &entry.shape).map_err(invalid)?;
            }
            reader.read_all()?
        } else {
            BTreeMap::new()
        };
        let bundle = Self { trace, tensors };
        bundle.check_values().map_err(invalid)?;
        Ok(bundle)
    }

    /// Checks that the bundle agrees with itself: `tokens` and `token_ids` of one length, ids
    /// inside the vocabulary, attributions no longer than the tokens, and every known tensor
    /// (`hidden_states.*`, `activations.*`, `attention.*`) shaped as `trace.json` says (layers,
    /// positions, hidden size, heads, neurons) and holding finite values only. [`TraceBundle::read`]
    /// calls it.
    ///
    /// # Errors
    /// [`Error::InvalidTrace`] naming the first inconsistency (`path` is empty).
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::InvalidTrace { path: PathBuf::new(), reason };
        crate::validate::check_trace(&self.trace).map_err(invalid)?;
        for (name, tensor) in &self.tensors {
            crate::validate::check_shape(&self.trace, name, &tensor.shape).map_err(invalid)?;
        }
        self.check_values().map_err(invalid)
    }

    /// The first tensor holding a NaN or an infinity (captures are refused when they are made;
    /// a view reading one would show nonsense, such as rank 1 everywhere).
    fn check_values(&self) -> std::result::Result<(), String> {
        match self.tensors.iter().find(|(_, t)| t.data.iter().any(|v| !v.is_finite())) {
            Some((name, _)) => Err(format!("`{name}` holds NaN or infinite values")),
            None => Ok(()),
        }
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

/// What [`check_output_dir`] found at an output path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputDir {
    /// Nothing exists there yet.
    Absent,
    /// An empty directory.
    Empty,
    /// A directory holding an ecco trace (`trace.json` with `"format": "ecco-trace"`), perhaps
    /// beside files of the user's, which are left alone.
    Bundle,
}

/// Checks that a bundle may be written to `dir`: it does not exist, is an empty directory, or is
/// a directory whose `trace.json` is an ecco trace. Call it before long work so a bad `--out`
/// fails at once; nothing is written.
///
/// # Errors
/// [`Error::RefuseOverwrite`] (a file, a directory of someone else's files, a `trace.json` that
/// is not ours) or [`Error::Io`].
pub fn check_output_dir(dir: &Path) -> Result<OutputDir> {
    let refuse = |reason: &str| Err(Error::RefuseOverwrite { path: dir.to_path_buf(), reason: reason.to_owned() });
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutputDir::Absent),
        Err(e) => return Err(Error::io(dir, e)),
        Ok(_) if !dir.is_dir() => return refuse("it is not a directory"),
        Ok(_) => {}
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_none() {
        return Ok(OutputDir::Empty);
    }
    let json = dir.join(TRACE_JSON);
    let regular = std::fs::symlink_metadata(&json).is_ok_and(|m| m.file_type().is_file());
    for name in [TRACE_JSON, TRACE_TENSORS] {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
            return refuse(&format!("its {name} is not a regular file"));
        }
    }
    // The format marker is read with a small, bounded parse: a foreign `trace.json` may be huge.
    let ours = regular && std::fs::File::open(&json).ok().is_some_and(is_ecco_trace_json);
    if ours { Ok(OutputDir::Bundle) } else { refuse("it is not empty and holds no ecco trace") }
}

/// Whether the start of a `trace.json` declares `"format": "ecco-trace"` (the key our writer
/// puts first). Reads at most 4 KiB.
fn is_ecco_trace_json(file: std::fs::File) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    if file.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with(&format!("{{\"format\":\"{TRACE_FORMAT}\""))
}

/// A new bundle directory gets the permissions `mkdir` would give (`tempfile` makes it 0700).
fn set_dir_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    #[cfg(not(unix))]
    let _ = dir;
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

    /// The data-loss case of the hostile-input issue: a directory holding someone's files and a
    /// `trace.json` that is not ours is refused untouched; a real bundle directory keeps the
    /// user's other files when the bundle is replaced.
    #[test]
    fn never_deletes_what_it_did_not_write() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let bundle = TraceBundle { trace: Trace::new(&info(), "flex", vec!["a".into()], vec![1], 1), tensors: BTreeMap::new() };
        let io = |e| Error::io("test", e);

        let mine = tmp.path().join("m");
        std::fs::create_dir_all(mine.join("sub")).map_err(io)?;
        std::fs::write(mine.join(TRACE_JSON), "x\n").map_err(io)?;
        std::fs::write(mine.join("thesis.tex"), "w\n").map_err(io)?;
        assert!(matches!(bundle.write(&mine), Err(Error::RefuseOverwrite { .. })));
        assert_eq!(std::fs::read_to_string(mine.join(TRACE_JSON)).map_err(io)?, "x\n");
        assert_eq!(std::fs::read_to_string(mine.join("thesis.tex")).map_err(io)?, "w\n");
        assert!(mine.join("sub").is_dir());

        let out = tmp.path().join("out");
        bundle.write(&out)?;
        std::fs::write(out.join("report.html"), "r").map_err(io)?;
        bundle.write(&out)?;
        assert_eq!(std::fs::read_to_string(out.join("report.html")).map_err(io)?, "r");
        assert!(TraceBundle::read(&out).is_ok());

        let file = tmp.path().join("file");
        std::fs::write(&file, "f").map_err(io)?;
        assert!(matches!(bundle.write(&file), Err(Error::RefuseOverwrite { .. })));
        assert_eq!(std::fs::read_to_string(&file).map_err(io)?, "f");

        // Nothing but the three entries made above: no temporary directory left behind.
        let mut left: Vec<_> = std::fs::read_dir(tmp.path())
            .map_err(io)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["file", "m", "out"]);
        Ok(())
    }
}
