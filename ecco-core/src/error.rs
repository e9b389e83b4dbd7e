//! The one error type of `ecco-core`.

use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core: reading and writing trace bundles and tensors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be parsed or does not have the expected shape.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file that was being read.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A safetensors file is corrupt or truncated.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors {
        /// The file that was being read.
        path: PathBuf,
        /// What the safetensors parser reported.
        reason: String,
    },
    /// A tensor that must be present is missing.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor {
        /// The file that was searched.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has a shape or element count other than the one expected.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor is stored with an element type we cannot read.
    #[error("{path}: tensor `{name}` has dtype {dtype}, expected one of F32, F16, BF16")]
    UnsupportedDtype {
        /// The file that was read.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// The directory is not an ecco trace bundle, or one of a format version we do not know.
    #[error("{path}: not an ecco trace bundle ({reason})")]
    NotATrace {
        /// The directory or file that was read.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A trace bundle whose parts disagree: `trace.json` with itself, or a tensor with it.
    #[error("{path}: inconsistent trace bundle: {reason}")]
    InvalidTrace {
        /// The bundle directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output path exists and is not something we may write a trace bundle into.
    #[error("{path}: {reason}; refusing to overwrite it (nothing was changed)")]
    RefuseOverwrite {
        /// The output directory.
        path: PathBuf,
        /// What is there.
        reason: String,
    },
    /// A sequence is longer than the model's position embeddings allow.
    #[error("the sequence has {len} tokens but the model takes at most {max}")]
    SequenceTooLong {
        /// The sequence's length.
        len: usize,
        /// The model's limit (`n_positions`).
        max: usize,
    },
    /// A layer number is outside the model.
    #[error("layer {layer} is out of range: the model has {n_layers} layers (0..{n_layers})")]
    LayerOutOfRange {
        /// The layer asked for.
        layer: usize,
        /// The number of layers the model has.
        n_layers: usize,
    },
    /// A forward pass lacks an input the model needs (an encoder-decoder's decoder input).
    #[error("missing model input: {0}")]
    MissingInput(&'static str),
    /// A hook name that is not in the contract or not in the model.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookNameError),
    /// An intervention that does not fit the hook point it was applied to.
    #[error("intervention on `{hook}`: {reason}")]
    Intervention {
        /// The hook point.
        hook: String,
        /// What does not fit.
        reason: String,
    },
    /// A tensor could not be read back from its device.
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
