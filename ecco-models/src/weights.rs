//! Reading a Hugging Face checkpoint's tensors (single or sharded safetensors, or with the
//! `pytorch` feature `pytorch_model.bin`) into burn tensors, and checking that every stored
//! tensor was used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::{AllocationProperty, Bytes, DType, Device, Tensor, TensorData};
use ecco_core::{F32Tensor, SafetensorsReader};
use serde::Deserialize;

use crate::error::{Error, Result};

/// File name of a single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// File name of a sharded checkpoint's index.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";
/// File name of a single-file PyTorch checkpoint (read when no safetensors exist).
pub const PYTORCH_FILE: &str = "pytorch_model.bin";
/// File name of a sharded PyTorch checkpoint's index.
pub const PYTORCH_INDEX: &str = "pytorch_model.bin.index.json";

/// One file of a checkpoint.
#[derive(Debug)]
enum Reader {
    /// A safetensors file.
    Safetensors(SafetensorsReader),
    /// A `pytorch_model.bin` (or shard).
    #[cfg(feature = "pytorch")]
    Pytorch(crate::pytorch::PytorchFile),
}

impl Reader {
    /// The tensor names.
    fn names(&self) -> Vec<String> {
        match self {
            Self::Safetensors(r) => r.entries().keys().cloned().collect(),
            #[cfg(feature = "pytorch")]
            Self::Pytorch(r) => r.names().cloned().collect(),
        }
    }

    /// The stored shape of `name`.
    fn shape(&self, name: &str) -> Option<&[usize]> {
        match self {
            Self::Safetensors(r) => r.entries().get(name).map(|e| e.shape.as_slice()),
            #[cfg(feature = "pytorch")]
            Self::Pytorch(r) => r.shape(name),
        }
    }

    /// `name`'s bytes shared with the mapped file (no copy), when they can be used as f32 as
    /// they are: an F32 safetensors tensor, 4-byte aligned, on a little-endian host. `None`
    /// otherwise (other dtypes, `pytorch_model.bin` tensors): read them with `read_f32`.
    fn shared_f32(&self, name: &str) -> Result<Option<bytes::Bytes>> {
        match self {
            Self::Safetensors(r) => {
                let (entry, bytes) = r.shared_bytes(name)?;
                let usable = entry.dtype == "F32" && cfg!(target_endian = "little") && bytes.as_ptr().align_offset(4) == 0;
                Ok(usable.then_some(bytes))
            }
            #[cfg(feature = "pytorch")]
            Self::Pytorch(_) => Ok(None),
        }
    }

    /// Reads `name` as f32.
    fn read_f32(&self, name: &str) -> Result<F32Tensor> {
        match self {
            Self::Safetensors(r) => Ok(r.read_f32(name)?),
            #[cfg(feature = "pytorch")]
            Self::Pytorch(r) => r.read_f32(name),
        }
    }
}

/// Opens a `pytorch_model.bin` (or shard).
#[cfg(feature = "pytorch")]
fn open_pytorch(path: &Path) -> Result<Reader> {
    Ok(Reader::Pytorch(crate::pytorch::PytorchFile::open(path)?))
}

/// Without the `pytorch` feature, a clear error.
#[cfg(not(feature = "pytorch"))]
fn open_pytorch(path: &Path) -> Result<Reader> {
    Err(Error::Checkpoint {
        path: path.to_path_buf(),
        reason: "reading pytorch_model.bin needs the `pytorch` feature (or convert the checkpoint to model.safetensors)".to_owned(),
    })
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The tensors of a checkpoint, read one at a time; remembers which were taken.
#[derive(Debug)]
pub struct WeightSource {
    path: PathBuf,
    readers: Vec<Reader>,
    location: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
    prefix: String,
}

impl WeightSource {
    /// Opens `dir/model.safetensors`, or the shards listed in `dir/model.safetensors.index.json`;
    /// without safetensors, `dir/pytorch_model.bin` or the shards of
    /// `dir/pytorch_model.bin.index.json` (feature `pytorch`).
    ///
    /// # Errors
    /// [`Error::MissingFile`] when none exists; the readers' errors for corrupt files.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join(SINGLE_FILE);
        let index = dir.join(SHARD_INDEX);
        let (pt_single, pt_index) = (dir.join(PYTORCH_FILE), dir.join(PYTORCH_INDEX));
        let (path, files, pytorch) = if single.is_file() {
            (single.clone(), vec![single], false)
        } else if index.is_file() {
            (index.clone(), shard_files(dir, &index)?, false)
        } else if pt_single.is_file() {
            (pt_single.clone(), vec![pt_single], true)
        } else if pt_index.is_file() {
            (pt_index.clone(), shard_files(dir, &pt_index)?, true)
        } else {
            return Err(Error::MissingFile { path: single, what: "model.safetensors (or its sharded index, or pytorch_model.bin)" });
        };
        let mut readers = Vec::with_capacity(files.len());
        for file in &files {
            if !file.is_file() {
                return Err(Error::MissingFile { path: file.clone(), what: "checkpoint shard" });
            }
            readers.push(if pytorch { open_pytorch(file)? } else { Reader::Safetensors(SafetensorsReader::open(file)?) });
        }
        Ok(Self::from_readers(path, readers))
    }

    /// A single-file checkpoint held in memory (e.g. embedded in the binary); `label` names it
    /// in errors.
    ///
    /// # Errors
    /// The reader's errors when the bytes are not a valid safetensors file.
    pub fn from_bytes(label: &Path, bytes: &'static [u8]) -> Result<Self> {
        let reader = SafetensorsReader::from_bytes(label, bytes)?;
        Ok(Self::from_readers(label.to_path_buf(), vec![Reader::Safetensors(reader)]))
    }

    /// Indexes the tensors of `readers`; `path` names the checkpoint in errors.
    fn from_readers(path: PathBuf, readers: Vec<Reader>) -> Self {
        let mut location = BTreeMap::new();
        for (i, reader) in readers.iter().enumerate() {
            for name in reader.names() {
                location.insert(name, i);
            }
        }
        Self { path, readers, location, taken: BTreeSet::new(), prefix: String::new() }
    }

    /// Whether the checkpoint holds `name` (after the prefix).
    pub fn contains(&self, name: &str) -> bool {
        self.location.contains_key(&format!("{}{name}", self.prefix))
    }

    /// Whether the checkpoint holds `name` exactly, ignoring the prefix.
    pub fn contains_exact(&self, name: &str) -> bool {
        self.location.contains_key(name)
    }

    /// Every name below this prefix is read as `prefix + name` (e.g. `transformer.`).
    pub fn set_prefix(&mut self, prefix: &str) {
        prefix.clone_into(&mut self.prefix);
    }

    /// Finds `name` (after the prefix), checks its shape and marks it taken.
    fn locate(&mut self, name: &str, shape: &[usize]) -> Result<(usize, String)> {
        let full = format!("{}{name}", self.prefix);
        let Some(&i) = self.location.get(&full) else {
            return Err(ecco_core::Error::MissingTensor { path: self.path.clone(), name: full }.into());
        };
        let found = self.readers[i].shape(&full).unwrap_or_default();
        if found != shape {
            return Err(ecco_core::Error::ShapeMismatch { name: full, expected: shape.to_vec(), found: found.to_vec() }.into());
        }
        self.taken.insert(full.clone());
        Ok((i, full))
    }

    /// Reads `name` as f32, checking its shape.
    ///
    /// # Errors
    /// [`ecco_core::Error::MissingTensor`] or [`ecco_core::Error::ShapeMismatch`].
    pub fn take_f32(&mut self, name: &str, shape: &[usize]) -> Result<F32Tensor> {
        let (i, full) = self.locate(name, shape)?;
        self.readers[i].read_f32(&full)
    }

    /// Reads `name` into a burn tensor of rank `D` on `device` (F16 and BF16 widened to f32).
    ///
    /// An F32 safetensors tensor stored 4-byte aligned on a little-endian host is not copied:
    /// the tensor shares the mapped file's pages (burn copies them only if they are ever
    /// written to). Other dtypes and `pytorch_model.bin` tensors are read into a fresh buffer.
    ///
    /// # Errors
    /// As [`WeightSource::take_f32`].
    pub fn take<const D: usize>(&mut self, name: &str, shape: [usize; D], device: &Device) -> Result<Tensor<D>> {
        self.take_shared(name, shape, device).map(|(t, _)| t)
    }

    /// [`WeightSource::take`], with the mapped file's bytes of the tensor when it shares them
    /// (an F32 safetensors tensor, aligned, little-endian): what [`crate::host::HostMatrix`]
    /// reads in place.
    ///
    /// # Errors
    /// As [`WeightSource::take`].
    pub fn take_shared<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<(Tensor<D>, Option<bytes::Bytes>)> {
        let (i, full) = self.locate(name, &shape)?;
        if let Some(shared) = self.readers[i].shared_f32(&full)? {
            let data = TensorData::from_bytes(Bytes::from_shared(shared.clone(), AllocationProperty::File), shape, DType::F32);
            return Ok((Tensor::from_data(data, device), Some(shared)));
        }
        let t = self.readers[i].read_f32(&full)?;
        Ok((Tensor::from_data(TensorData::new(t.data, shape), device), None))
    }

    /// Fails when the checkpoint holds tensors that were not taken, except those for which
    /// `allowed(name)` is true (buffers such as GPT-2's causal-mask `attn.bias`).
    ///
    /// # Errors
    /// [`Error::UnusedTensors`] naming up to five of them.
    pub fn finish(self, allowed: impl Fn(&str) -> bool) -> Result<()> {
        let unused: Vec<&String> = self.location.keys().filter(|n| !self.taken.contains(*n) && !allowed(n)).collect();
        if unused.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = unused.iter().take(5).map(|s| s.to_string()).collect();
        if unused.len() > 5 {
            names.push(format!("and {} more", unused.len() - 5));
        }
        Err(Error::UnusedTensors { path: self.path, names: names.join(", ") })
    }
}

/// The files a shard index (`*.index.json`, with a `weight_map`) lists, under `dir`.
fn shard_files(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| ecco_core::Error::io(index, e))?;
    let parsed: ShardIndex =
        serde_json::from_str(&text).map_err(|e| Error::InvalidConfig { path: index.to_path_buf(), reason: e.to_string() })?;
    let files: BTreeSet<String> = parsed.weight_map.values().cloned().collect();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}
