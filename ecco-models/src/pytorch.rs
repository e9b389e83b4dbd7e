//! `pytorch_model.bin` checkpoints, for repositories without safetensors (feature `pytorch`):
//! read with burn's PyTorch reader (`pytorch-reader`, which parses the pickle without running
//! any of it), single files or shards listed in `pytorch_model.bin.index.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ecco_core::F32Tensor;

use crate::error::{Error, Result};

/// One open `pytorch_model.bin`: every tensor's name, dtype and shape; bytes read on demand.
pub struct PytorchFile {
    path: PathBuf,
    tensors: BTreeMap<String, pytorch_reader::Tensor>,
}

impl std::fmt::Debug for PytorchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PytorchFile").field("path", &self.path).field("tensors", &self.tensors.len()).finish()
    }
}

impl PytorchFile {
    /// Opens `path` (any layout `torch.save` writes: ZIP, legacy, TAR) and parses its pickle.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] for an unreadable or corrupt file.
    pub fn open(path: &Path) -> Result<Self> {
        let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| corrupt(path, &e.to_string()))?;
        Ok(Self { path: path.to_path_buf(), tensors: reader.into_tensors().into_iter().collect() })
    }

    /// The tensor names.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(pytorch_reader::Tensor::shape)
    }

    /// Reads `name` as f32 (F32, F16 and BF16 storages; F64 narrowed).
    ///
    /// # Errors
    /// A missing tensor, an unreadable storage, another dtype.
    pub fn read_f32(&self, name: &str) -> Result<F32Tensor> {
        let Some(tensor) = self.tensors.get(name) else {
            return Err(ecco_core::Error::MissingTensor { path: self.path.clone(), name: name.to_owned() }.into());
        };
        let bytes = tensor.read().map_err(|e| corrupt(&self.path, &e.to_string()))?;
        use pytorch_reader::DType;
        let data = match tensor.dtype() {
            DType::F64 => Some(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect()),
            DType::F32 => ecco_core::tensors::decode_f32("F32", &bytes),
            DType::F16 => ecco_core::tensors::decode_f32("F16", &bytes),
            DType::BF16 => ecco_core::tensors::decode_f32("BF16", &bytes),
            _ => None,
        };
        let Some(data) = data else {
            return Err(ecco_core::Error::UnsupportedDtype {
                path: self.path.clone(),
                name: name.to_owned(),
                dtype: format!("{:?}", tensor.dtype()),
            }
            .into());
        };
        Ok(F32Tensor { shape: tensor.shape().to_vec(), data })
    }
}

fn corrupt(path: &Path, reason: &str) -> Error {
    Error::Checkpoint { path: path.to_path_buf(), reason: reason.to_owned() }
}
