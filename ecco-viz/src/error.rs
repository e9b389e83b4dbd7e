//! The one error type of `ecco-viz`.

use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while building or writing a view.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor does not have the shape its view needs.
    #[error("{name} has shape {found:?}, expected {expected}")]
    Shape {
        /// The tensor's name in the bundle.
        name: String,
        /// The shape it has.
        found: Vec<usize>,
        /// The shape it should have, in words.
        expected: String,
    },
    /// A chosen item (a neuron, a layer) is not in the data.
    #[error("{0}")]
    OutOfRange(String),
    /// The data of a view does not fit the trace it describes.
    #[error("inconsistent view data: {0}")]
    Inconsistent(String),
    /// Serialising a view to JSON failed.
    #[error("cannot serialise the views: {0}")]
    Json(#[from] serde_json::Error),
    /// An output file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
