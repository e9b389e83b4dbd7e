//! The one error type of `ecco-attrib`.

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong computing attributions or the logit lens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the core crate or the model.
    #[error(transparent)]
    Core(#[from] ecco_core::Error),
    /// An attribution method name we do not know.
    #[error("unknown attribution method `{name}` (known: {known})")]
    UnknownMethod {
        /// The name given.
        name: String,
        /// The known names and aliases, comma separated.
        known: String,
    },
    /// A request that does not fit the model or itself (patching).
    #[error("{0}")]
    Invalid(String),
    /// The model has no LM head, so there is nothing to attribute or project.
    #[error("the model has no LM head")]
    NoLmHead,
    /// A position is outside the sequence.
    #[error("position {position} is out of range: {reason}")]
    PositionOutOfRange {
        /// The position asked for.
        position: usize,
        /// The valid range.
        reason: String,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange {
        /// The id given.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// The trace lacks what the analysis needs.
    #[error("{0}")]
    MissingCapture(String),
    /// The trace was made by a different model than the one given.
    #[error("the trace was made by a different model: {0}")]
    ModelMismatch(String),
    /// Integrated gradients asked for more steps than [`crate::MAX_IG_STEPS`] (or none).
    #[error("integrated gradients takes 1 to {max} steps (--ig-steps), not {steps}")]
    IgSteps {
        /// The steps asked for.
        steps: usize,
        /// The cap.
        max: usize,
    },
    /// There is nothing to attribute.
    #[error("nothing to attribute: {0}")]
    Empty(&'static str),
    /// A tensor could not be read back from the device.
    #[error("could not read a tensor back from the device: {0}")]
    Readback(String),
}
