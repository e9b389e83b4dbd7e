//! The crate's one error type.

/// Everything that can go wrong in `ecco-factor`.
///
/// Every public function validates its input and reports a problem through this enum
/// instead of panicking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No layer was selected for the activation matrix.
    #[error("no layers selected: choose at least one layer to factorise")]
    EmptySelection,

    /// A selected layer index is past the end of the stored layer axis.
    #[error("layer index {index} is out of range: the trace holds {layers} layer(s)")]
    LayerOutOfRange {
        /// The offending index.
        index: usize,
        /// How many layers the trace holds.
        layers: usize,
    },

    /// The same layer was selected twice.
    #[error("layer index {index} is selected more than once")]
    DuplicateLayer {
        /// The repeated index.
        index: usize,
    },

    /// A flat buffer's length does not match the shape it is said to have.
    #[error("activation buffer holds {len} values but shape {shape:?} needs {expected}")]
    ShapeMismatch {
        /// The shape given.
        shape: [usize; 3],
        /// The buffer's length.
        len: usize,
        /// The product of `shape`.
        expected: usize,
    },

    /// A stored activation is NaN or infinite.
    #[error(
        "activation of layer {layer}, neuron {neuron}, position {position} is {value} \
         (NaN or infinite values cannot be factorised)"
    )]
    NonFiniteActivation {
        /// Index into the stored layer axis.
        layer: usize,
        /// Neuron within the layer.
        neuron: usize,
        /// Token position.
        position: usize,
        /// The value found.
        value: f32,
    },

    /// A matrix entry is NaN or infinite.
    #[error("{what} holds a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The value found.
        value: f64,
    },

    /// NMF was given a negative entry.
    #[error("NMF input holds a negative value ({value}) at row {row}, column {col}")]
    Negative {
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The value found.
        value: f32,
    },

    /// A matrix has no rows or no columns.
    #[error("{what} is empty ({rows} x {cols})")]
    Empty {
        /// Which argument.
        what: &'static str,
        /// Its row count.
        rows: usize,
        /// Its column count.
        cols: usize,
    },

    /// Two matrices that must agree in a dimension do not.
    #[error("dimension mismatch: {0}")]
    DimensionMismatch(String),

    /// A parameter is outside its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// The worker thread pool could not be started.
    #[error("could not start the worker threads: {0}")]
    ThreadPool(String),

    /// The input is degenerate for the requested analysis (for example every neuron
    /// is constant, or there are at least as many neurons as tokens for CCA).
    #[error("degenerate input: {0}")]
    Degenerate(String),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
