//! What can be wrong with a GGUF file.

/// A GGUF file that cannot be read or used: each variant is one line, naming where in the file
/// the problem is when that helps.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file does not start with the magic `GGUF`.
    #[error("not a GGUF file (no `GGUF` magic)")]
    BadMagic,
    /// A GGUF version other than 2 and 3.
    #[error("GGUF version {0} is not supported (2 and 3 are)")]
    UnsupportedVersion(u32),
    /// The file ends inside a structure.
    #[error("truncated: the file ends inside {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it started.
        offset: u64,
    },
    /// A count or length in the header asks for more than the file can hold.
    #[error("corrupt: {what} of {count} at byte {offset} exceeds what the file holds")]
    CountTooLarge {
        /// What is counted (metadata entries, tensors, string bytes, array elements).
        what: &'static str,
        /// The count the file gives.
        count: u64,
        /// Where it was read.
        offset: u64,
    },
    /// Arrays nested deeper than any real file needs.
    #[error("corrupt: metadata arrays nested deeper than {0} levels")]
    NestedTooDeep(usize),
    /// A string that is not UTF-8.
    #[error("corrupt: {what} at byte {offset} is not UTF-8")]
    InvalidUtf8 {
        /// What the string is.
        what: &'static str,
        /// Where it was read.
        offset: u64,
    },
    /// A metadata value type id that GGUF does not define.
    #[error("corrupt: unknown metadata value type {type_id} at byte {offset}")]
    UnknownValueType {
        /// The type id.
        type_id: u32,
        /// Where it was read.
        offset: u64,
    },
    /// Two metadata entries share a key.
    #[error("corrupt: metadata key `{0}` appears twice")]
    DuplicateKey(String),
    /// Two tensors share a name.
    #[error("corrupt: tensor `{0}` appears twice")]
    DuplicateTensor(String),
    /// `general.alignment` is not a positive power of two (or not a `u32`).
    #[error("corrupt: general.alignment must be a u32 power of two, found {0}")]
    BadAlignment(String),
    /// A tensor type id that GGML does not define.
    #[error("tensor `{name}`: unknown GGML type {type_id}")]
    UnknownTensorType {
        /// The tensor.
        name: String,
        /// The type id.
        type_id: u32,
    },
    /// A tensor whose dimensions make no sense.
    #[error("tensor `{name}`: {reason}")]
    BadTensor {
        /// The tensor.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data lies (partly) outside the file.
    #[error("tensor `{name}`: its data (bytes {start}..{end}) lies outside the file ({file_len} bytes)")]
    TensorOutOfBounds {
        /// The tensor.
        name: String,
        /// First byte, counted from the start of the file (saturated on overflow).
        start: u64,
        /// One past the last byte.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A tensor the model needs is not in the file.
    #[error("tensor `{0}` not found")]
    MissingTensor(String),
    /// A metadata key the model needs is not in the file.
    #[error("metadata key `{0}` not found")]
    MissingKey(String),
    /// A metadata value of another type than expected.
    #[error("metadata key `{key}`: expected {expected}, found {found}")]
    WrongType {
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },
    /// A metadata value out of the range the model accepts.
    #[error("metadata key `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor stored in a GGML type this crate cannot dequantize.
    #[error("tensor `{name}` is stored as {ggml_type}, which cannot be dequantized (supported: {supported})")]
    UnsupportedTensorType {
        /// The tensor.
        name: String,
        /// Its GGML type.
        ggml_type: &'static str,
        /// The supported types, comma separated.
        supported: &'static str,
    },
}

/// Result with [`GgufError`] as the default error.
pub type GgufResult<T, E = GgufError> = std::result::Result<T, E>;
