//! Reading a Hugging Face checkpoint's tensors (single or sharded safetensors) into burn tensors,
//! and checking that every stored tensor was used.

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

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The tensors of a checkpoint, read one at a time; remembers which were taken.
#[derive(Debug)]
pub struct WeightSource {
    path: PathBuf,
    readers: Vec<SafetensorsReader>,
    location: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
    prefix: String,
}

impl WeightSource {
    /// Opens `dir/model.safetensors`, or the shards listed in `dir/model.safetensors.index.json`.
    ///
    /// # Errors
    /// [`Error::MissingFile`] when neither exists; the reader's errors for corrupt files.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join(SINGLE_FILE);
        let index = dir.join(SHARD_INDEX);
        let (path, files) = if single.is_file() {
            (single.clone(), vec![single])
        } else if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|e| ecco_core::Error::io(&index, e))?;
            let parsed: ShardIndex = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidConfig { path: index.clone(), reason: e.to_string() })?;
            let files: BTreeSet<String> = parsed.weight_map.values().cloned().collect();
            (index.clone(), files.into_iter().map(|f| dir.join(f)).collect())
        } else {
            return Err(Error::MissingFile { path: single, what: "model.safetensors (or its sharded index)" });
        };
        let mut readers = Vec::with_capacity(files.len());
        for file in &files {
            if !file.is_file() {
                return Err(Error::MissingFile { path: file.clone(), what: "checkpoint shard" });
            }
            readers.push(SafetensorsReader::open(file)?);
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
        Ok(Self::from_readers(label.to_path_buf(), vec![reader]))
    }

    /// Indexes the tensors of `readers`; `path` names the checkpoint in errors.
    fn from_readers(path: PathBuf, readers: Vec<SafetensorsReader>) -> Self {
        let mut location = BTreeMap::new();
        for (i, reader) in readers.iter().enumerate() {
            for name in reader.entries().keys() {
                location.insert(name.clone(), i);
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
        let found = &self.readers[i].entries()[&full].shape;
        if found != shape {
            return Err(ecco_core::Error::ShapeMismatch { name: full, expected: shape.to_vec(), found: found.clone() }.into());
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
        Ok(self.readers[i].read_f32(&full)?)
    }

    /// Reads `name` into a burn tensor of rank `D` on `device` (F16 and BF16 widened to f32).
    ///
    /// An F32 tensor stored 4-byte aligned on a little-endian host is not copied: the tensor
    /// shares the mapped file's pages (burn copies them only if they are ever written to).
    ///
    /// # Errors
    /// As [`WeightSource::take_f32`].
    pub fn take<const D: usize>(&mut self, name: &str, shape: [usize; D], device: &Device) -> Result<Tensor<D>> {
        let (i, full) = self.locate(name, &shape)?;
        let (entry, bytes) = self.readers[i].shared_bytes(&full)?;
        if entry.dtype == "F32" && cfg!(target_endian = "little") && bytes.as_ptr().align_offset(4) == 0 {
            let shared = Bytes::from_shared(bytes, AllocationProperty::File);
            return Ok(Tensor::from_data(TensorData::from_bytes(shared, shape, DType::F32), device));
        }
        let t = self.readers[i].read_f32(&full)?;
        Ok(Tensor::from_data(TensorData::new(t.data, shape), device))
    }

    /// Fails when the checkpoint holds tensors that were not taken, except those for which
    /// `allowed(name)` is true (buffers such as GPT-2's causal-mask `attn.bias`).
    ///
    /// # Errors
    /// [`Error::UnusedTensors`] naming up to five of them.
    pub fn finish(self, allowed: impl Fn(&str) -> bool) -> Result<()> {
        let unused: Vec<&String> =
            self.location.keys().filter(|n| !self.taken.contains(*n) && !allowed(n)).collect();
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
