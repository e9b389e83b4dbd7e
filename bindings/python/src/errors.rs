//! Errors as Python exceptions: the class follows the error's typed cause, the message is the
//! one line the `ecco` command prints ([`ecco::one_line`]).
//!
//! The classes live in `ecco_rs._errors` (pure Python, so that each can derive from both
//! `EccoError` and the built-in it stands for): `FileNotFoundError` for missing files and
//! models, `ValueError` for invalid input, `EccoError` itself for the rest (a failed
//! download, a device that cannot start, a tensor that cannot be read back).

use ecco::ecco_models::Error as ModelError;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;

/// The exception classes of `ecco_rs._errors`, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `ecco_rs.EccoError`.
    Base,
    /// `ecco_rs.EccoValueError` (a `ValueError`).
    Value,
    /// `ecco_rs.EccoFileNotFoundError` (a `FileNotFoundError`).
    NotFound,
}

/// The class for `err`: the first cause in its chain that decides; errors with no typed
/// cause are the `ecco` crate's checks of its arguments, so `ValueError`.
fn kind(err: &anyhow::Error) -> Kind {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::NotFound { Kind::NotFound } else { Kind::Base };
        }
        if let Some(e) = cause.downcast_ref::<ecco::ecco_core::Error>() {
            match e {
                // The I/O error is the next cause: let it decide.
                ecco::ecco_core::Error::Io { .. } => continue,
                // A directory without `trace.json` names the directory; a `trace.json` of
                // another format or version names the file.
                ecco::ecco_core::Error::NotATrace { path, .. } if !path.is_file() => return Kind::NotFound,
                _ => return Kind::Value,
            }
        }
        if let Some(e) = cause.downcast_ref::<ModelError>() {
            match e {
                ModelError::Core(_) => continue,
                ModelError::MissingFile { .. } | ModelError::NotCached { .. } => return Kind::NotFound,
                ModelError::DeviceUnavailable { .. }
                | ModelError::DeviceInit { .. }
                | ModelError::HubUnavailable { .. }
                | ModelError::Download { .. }
                | ModelError::DemoUnavailable
                | ModelError::Readback(_) => return Kind::Base,
                _ => return Kind::Value,
            }
        }
        if let Some(e) = cause.downcast_ref::<ecco::ecco_attrib::Error>() {
            match e {
                ecco::ecco_attrib::Error::Core(_) => continue,
                ecco::ecco_attrib::Error::Readback(_) => return Kind::Base,
                _ => return Kind::Value,
            }
        }
    }
    Kind::Value
}

/// `err` as a Python exception of `ecco_rs`.
pub(crate) fn to_py(py: Python<'_>, err: &anyhow::Error) -> PyErr {
    let message = ecco::one_line(err);
    if ecco::is_cancelled(err) {
        return PyKeyboardInterrupt::new_err(message);
    }
    let class = match kind(err) {
        Kind::Base => "EccoError",
        Kind::Value => "EccoValueError",
        Kind::NotFound => "EccoFileNotFoundError",
    };
    match py.import("ecco_rs._errors").and_then(|m| m.getattr(class)) {
        Ok(class) => PyErr::from_type(class.cast_into().unwrap_or_else(|_| py.get_type::<PyRuntimeError>()), message),
        Err(import) => import,
    }
}

/// A Rust result as a `PyResult`.
pub(crate) trait IntoPy<T> {
    /// The value, or the error as an `ecco_rs` exception.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T, E: Into<anyhow::Error>> IntoPy<T> for Result<T, E> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e.into()))
    }
}

/// Parses `text` as a `T` whose parser reports a message (a lens, a device, …), raising
/// `EccoValueError` with it.
pub(crate) fn parse<T: std::str::FromStr<Err = String>>(py: Python<'_>, text: &str) -> PyResult<T> {
    text.parse::<T>().map_err(|message| to_py(py, &anyhow::Error::msg(message)))
}
