//! GGUF checkpoints (llama.cpp's format): the reader, dequantization to f32, the tokenizer the
//! metadata describes, and the q/k row order llama.cpp's converter gives Llama files.
//!
//! ```no_run
//! # fn main() -> Result<(), ecco_models::Error> {
//! let file = ecco_models::gguf::open("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?;
//! println!("{} with {} tensors", file.architecture().unwrap_or("?"), file.tensors().len());
//! let embedding = file.dequantize("token_embd.weight").map_err(|e| file.error(e))?; // f32, row-major
//! # Ok(()) }
//! ```

pub mod dequant;
mod error;
mod file;
pub mod tokenizer;
mod value;

use std::path::{Path, PathBuf};

pub use dequant::{GgmlType, dequantize, dequantize_into};
pub use error::{GgufError, GgufResult};
pub use file::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo};
pub use tokenizer::GgufTokenizer;
pub use value::Value;

/// A parsed GGUF file and the path it was read from.
#[derive(Debug)]
pub struct OpenGguf {
    path: PathBuf,
    file: GgufFile,
}

impl OpenGguf {
    /// The path the file was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A [`GgufError`] about this file as the crate's error (naming the path).
    pub fn error(&self, source: GgufError) -> crate::Error {
        crate::Error::Gguf { path: self.path.clone(), source }
    }
}

impl std::ops::Deref for OpenGguf {
    type Target = GgufFile;

    fn deref(&self) -> &GgufFile {
        &self.file
    }
}

/// Memory-maps and parses the GGUF file at `path`.
///
/// # Errors
/// [`crate::Error::Core`] when the file cannot be read, [`crate::Error::Gguf`] when it is not a
/// valid GGUF file.
pub fn open(path: &Path) -> crate::Result<OpenGguf> {
    let bytes = ecco_core::tensors::map_path(path)?;
    let file = GgufFile::parse(bytes).map_err(|source| crate::Error::Gguf { path: path.to_path_buf(), source })?;
    Ok(OpenGguf { path: path.to_path_buf(), file })
}

/// Undoes llama.cpp's q/k row permutation (`permute` in `convert_hf_to_gguf.py`, which
/// `transformers`' GGUF loader reverses the same way) on a `[rows, cols]` weight, row-major, of
/// `n_head` heads: the converter stores each head's rows as interleaved pairs (row `2i + j` of a
/// head is Hugging Face's row `j * head_dim / 2 + i`), for GGML's interleaved rotary. Returns the
/// rows in Hugging Face's half-split order; `None` when `rows` is not `n_head` heads of even
/// width or `data` is not `rows * cols` long.
///
/// Llama-architecture files (`general.architecture = llama`, which Mistral files use too) need it
/// on `attn_q` (with the query heads) and `attn_k` (with the key/value heads); other
/// architectures are converted without it.
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Option<Vec<f32>> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) || rows.checked_mul(cols)? != data.len() {
        return None;
    }
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let from = (h * head_dim + 2 * i + j) * cols;
                let to = (h * head_dim + j * half + i) * cols;
                out[to..to + cols].copy_from_slice(&data[from..from + cols]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests;
