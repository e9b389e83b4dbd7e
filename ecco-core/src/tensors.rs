//! Reading and writing f32 tensors in the safetensors format.
//!
//! The reader parses the header itself and hands out one tensor at a time. A file is mapped into
//! memory, not read: a tensor's stored bytes can be shared with a burn tensor without a copy
//! ([`SafetensorsReader::shared_bytes`]), which makes loading a checkpoint nearly free. It also
//! reads bytes already in memory (a checkpoint embedded in the binary).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use serde::Deserialize;

use crate::error::{Error, Result};

/// A dense f32 tensor in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl F32Tensor {
    /// A tensor from its shape and data.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `data.len()` is not the product of `shape`.
    pub fn new(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::ShapeMismatch { name: name.to_owned(), expected: shape, found: vec![data.len()] });
        }
        Ok(Self { shape, data })
    }
}

#[derive(Debug, Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Where a tensor lives in a safetensors file.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    /// The stored element type (`F32`, `F16`, `BF16`, ...).
    pub dtype: String,
    /// The stored shape.
    pub shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// An open safetensors file whose header has been read; tensors are read on demand.
pub struct SafetensorsReader {
    path: PathBuf,
    /// The whole file: a read-only memory map, or bytes in memory.
    bytes: Bytes,
    data_start: u64,
    entries: BTreeMap<String, TensorEntry>,
}

impl std::fmt::Debug for SafetensorsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsReader")
            .field("path", &self.path)
            .field("data_start", &self.data_start)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

const MAX_HEADER: u64 = 100 * 1024 * 1024;

impl SafetensorsReader {
    /// Opens `path` and parses its header.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Safetensors`] when it is corrupt.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if file_len < 8 {
            return Err(Error::Safetensors { path, reason: "file shorter than its header".to_owned() });
        }
        // The header is read and checked against the file's size before the file is mapped: the
        // map is populated (read ahead), and a file padded far beyond what its header names (a
        // sparse hole of gigabytes) must be refused without reading it.
        let mut head = [0u8; 8];
        (&file).read_exact(&mut head).map_err(|e| Error::io(&path, e))?;
        let header_len = header_len(&path, u64::from_le_bytes(head), file_len)?;
        let mut header = vec![0u8; header_len as usize];
        (&file).read_exact(&mut header).map_err(|e| Error::io(&path, e))?;
        parse_header(&path, &header, file_len - 8 - header_len)?;
        let bytes = map_file(&file).map_err(|e| Error::io(&path, e))?;
        Self::from_source(path, bytes)
    }

    /// Reads a safetensors file held in memory (e.g. embedded with `include_bytes!`); `label`
    /// names it in errors.
    ///
    /// # Errors
    /// [`Error::Safetensors`] when the bytes are not a valid safetensors file.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: &'static [u8]) -> Result<Self> {
        Self::from_source(label.into(), Bytes::from_static(bytes))
    }

    /// Reads a safetensors file held in an owned buffer; `label` names it in errors.
    ///
    /// # Errors
    /// [`Error::Safetensors`] when the bytes are not a valid safetensors file.
    pub fn from_vec(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        Self::from_source(label.into(), Bytes::from(bytes))
    }

    /// Parses the header of the file held in `bytes` (see [`parse_header`]).
    fn from_source(path: PathBuf, bytes: Bytes) -> Result<Self> {
        let file_len = bytes.len() as u64;
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Safetensors { path: path.clone(), reason: "file shorter than its header".to_owned() })?;
        let header_len = header_len(&path, u64::from_le_bytes(len_bytes), file_len)?;
        let data_start = 8 + header_len;
        let entries = parse_header(&path, &bytes[8..data_start as usize], file_len - data_start)?;
        Ok(Self { path, bytes, data_start, entries })
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names and locations of every tensor in the file.
    pub fn entries(&self) -> &BTreeMap<String, TensorEntry> {
        &self.entries
    }

    /// Whether the file holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The entry of tensor `name`.
    fn entry(&self, name: &str) -> Result<&TensorEntry> {
        self.entries.get(name).ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: name.to_owned() })
    }

    /// Tensor `name`'s stored bytes as they are, with its entry, sharing the file's memory
    /// (no copy): the bytes stay valid as long as any handle to them lives.
    ///
    /// # Errors
    /// [`Error::MissingTensor`].
    pub fn shared_bytes(&self, name: &str) -> Result<(TensorEntry, Bytes)> {
        let entry = self.entry(name)?.clone();
        let range = (self.data_start + entry.begin) as usize..(self.data_start + entry.end) as usize;
        Ok((entry, self.bytes.slice(range)))
    }

    /// Reads tensor `name`, converting F16 and BF16 to f32 (an F32 tensor on a little-endian
    /// host is one copy, no decoding).
    ///
    /// # Errors
    /// [`Error::MissingTensor`] or [`Error::UnsupportedDtype`].
    pub fn read_f32(&self, name: &str) -> Result<F32Tensor> {
        let (entry, bytes) = self.shared_bytes(name)?;
        if entry.dtype == "F32" && cfg!(target_endian = "little") {
            let mut data = vec![0f32; bytes.len() / 4];
            bytemuck::cast_slice_mut::<f32, u8>(&mut data).copy_from_slice(&bytes);
            return Ok(F32Tensor { shape: entry.shape, data });
        }
        let data = decode_f32(&entry.dtype, &bytes).ok_or_else(|| Error::UnsupportedDtype {
            path: self.path.clone(),
            name: name.to_owned(),
            dtype: entry.dtype.clone(),
        })?;
        Ok(F32Tensor { shape: entry.shape, data })
    }

    /// Reads every tensor of the file as f32.
    ///
    /// # Errors
    /// As [`SafetensorsReader::read_f32`].
    pub fn read_all(&self) -> Result<BTreeMap<String, F32Tensor>> {
        let names: Vec<String> = self.entries.keys().cloned().collect();
        names.into_iter().map(|n| self.read_f32(&n).map(|t| (n, t))).collect()
    }
}

/// Opens and memory-maps the file at `path`, read-only (as [`SafetensorsReader::open`] does; the
/// GGUF reader uses it too).
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or mapped.
pub fn map_path(path: &Path) -> Result<Bytes> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    map_file(&file).map_err(|e| Error::io(path, e))
}

/// The header's length from its 8-byte prefix, checked against the file's length.
fn header_len(path: &Path, header_len: u64, file_len: u64) -> Result<u64> {
    if header_len > MAX_HEADER || header_len > file_len - 8 {
        return Err(Error::Safetensors { path: path.to_path_buf(), reason: "header length out of bounds".to_owned() });
    }
    Ok(header_len)
}

/// The entries of a safetensors header whose data section holds `data_len` bytes.
///
/// Every tensor must lie inside the data section with exactly as many bytes as its dtype and
/// shape say (the shape's product checked for overflow), and the tensors must cover the data
/// section to its end, as the safetensors format requires: a file padded beyond what its header
/// names (or cut short) is refused before any tensor is read.
fn parse_header(path: &Path, header: &[u8], data_len: u64) -> Result<BTreeMap<String, TensorEntry>> {
    let corrupt = |reason: &str| Error::Safetensors { path: path.to_path_buf(), reason: reason.to_owned() };
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).map_err(|e| corrupt(&format!("bad header: {e}")))?;
    let mut entries = BTreeMap::new();
    let mut covered = 0;
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        let entry: HeaderEntry = serde_json::from_value(value).map_err(|e| corrupt(&format!("bad entry `{name}`: {e}")))?;
        let [begin, end] = entry.data_offsets;
        let bytes_needed =
            dtype_width(&entry.dtype).and_then(|width| entry.shape.iter().try_fold(width as u64, |n, &d| n.checked_mul(d as u64)));
        let Some(bytes_needed) = bytes_needed else {
            return Err(corrupt(&format!("tensor `{name}`: dtype {} with shape {:?} has no valid size", entry.dtype, entry.shape)));
        };
        if begin > end || end > data_len || end - begin != bytes_needed {
            return Err(corrupt(&format!("tensor `{name}` lies outside the file or has a wrong size")));
        }
        covered = covered.max(end);
        entries.insert(name, TensorEntry { dtype: entry.dtype, shape: entry.shape, begin, end });
    }
    if covered != data_len {
        return Err(corrupt(&format!("its header names {covered} bytes of tensor data but the file holds {data_len}")));
    }
    Ok(entries)
}

/// Maps `file` read-only into memory.
///
/// Checkpoints are hundreds of megabytes: reading them copies every byte into freshly zeroed
/// pages, while a map shares the page cache and costs a page-table entry per page.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Bytes> {
    // SAFETY: the map is read-only and private. It is undefined behaviour only if another
    // process truncates or rewrites the file while it is mapped; checkpoints and trace bundles
    // are written once and then only read (Hugging Face's cache never rewrites a blob in place),
    // which is the same contract `safetensors`' own loaders rely on.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(file)? };
    Ok(Bytes::from_owner(map))
}

fn dtype_width(dtype: &str) -> Option<usize> {
    match dtype {
        "F64" | "I64" | "U64" => Some(8),
        "F32" | "I32" | "U32" => Some(4),
        "F16" | "BF16" | "I16" | "U16" => Some(2),
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => Some(1),
        _ => None,
    }
}

/// Little-endian bytes of a tensor stored as `dtype` (safetensors' names: `F32`, `F16`, `BF16`)
/// widened to f32; `None` for other dtypes.
pub fn decode_f32(dtype: &str, bytes: &[u8]) -> Option<Vec<f32>> {
    let two = || bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    match dtype {
        "F32" => Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        "F16" => Some(two().map(f16_to_f32).collect()),
        "BF16" => Some(two().map(|b| f32::from_bits(u32::from(b) << 16)).collect()),
        _ => None,
    }
}

/// IEEE 754 half to single precision, subnormals included.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Writes `tensors` as one f32 safetensors file at `path`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, F32Tensor>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(name, t)| (name.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone())).collect();
    let views = bytes
        .iter()
        .map(|(name, data, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| Error::Safetensors { path: path.to_path_buf(), reason: e.to_string() })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| Error::Safetensors { path: path.to_path_buf(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn round_trip_and_corruption() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("t.safetensors");
        let mut map = BTreeMap::new();
        map.insert("a".to_owned(), F32Tensor::new("a", vec![2, 3], vec![1., 2., 3., 4., 5., 6.])?);
        write_safetensors(&path, &map)?;
        let reader = SafetensorsReader::open(&path)?;
        assert_eq!(reader.read_all()?, map);
        assert!(matches!(reader.read_f32("b"), Err(Error::MissingTensor { .. })));
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        std::fs::write(&path, &bytes[..bytes.len() - 4]).map_err(|e| Error::io(&path, e))?;
        assert!(matches!(SafetensorsReader::open(&path), Err(Error::Safetensors { .. })));
        std::fs::write(&path, b"garbage").map_err(|e| Error::io(&path, e))?;
        assert!(matches!(SafetensorsReader::open(&path), Err(Error::Safetensors { .. })));
        Ok(())
    }

    /// A safetensors file with `header` and `data` bytes after it.
    fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn sizes_must_agree_with_the_header() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("t.safetensors");
        let mut map = BTreeMap::new();
        map.insert("w".to_owned(), F32Tensor::new("w", vec![2], vec![1., 2.])?);
        write_safetensors(&path, &map)?;
        // Padded beyond what the header names (a sparse hole): refused before it is mapped.
        let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        file.set_len(len + (1 << 34)).map_err(|e| Error::io(&path, e))?;
        let err = SafetensorsReader::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("names 8 bytes of tensor data but the file holds 17179869192"), "{err}");
        // A shape whose element count overflows, and an unknown dtype.
        let huge = raw_file(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#, &[]);
        assert!(matches!(SafetensorsReader::from_vec("m", huge), Err(Error::Safetensors { .. })));
        let odd = raw_file(r#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, &[0]);
        assert!(matches!(SafetensorsReader::from_vec("m", odd), Err(Error::Safetensors { .. })));
        // Zero elements with huge dimensions is a valid (empty) tensor: readers of traces check
        // shapes against `trace.json` (see `validate`).
        let empty = raw_file(r#"{"a":{"dtype":"F32","shape":[4,1000000000000,0],"data_offsets":[0,0]}}"#, &[]);
        assert_eq!(SafetensorsReader::from_vec("m", empty)?.read_f32("a")?.data.len(), 0);
        Ok(())
    }

    #[test]
    fn reads_from_memory_like_a_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("t.safetensors");
        let mut map = BTreeMap::new();
        map.insert("w".to_owned(), F32Tensor::new("w", vec![3], vec![0.5, -1., 2.])?);
        write_safetensors(&path, &map)?;
        let bytes: &'static [u8] = std::fs::read(&path).map_err(|e| Error::io(&path, e))?.leak();
        assert_eq!(SafetensorsReader::from_bytes("mem", bytes)?.read_all()?, map);
        assert!(matches!(SafetensorsReader::from_bytes("mem", &bytes[..20]), Err(Error::Safetensors { .. })));
        Ok(())
    }
}
