//! Parsing a GGUF file: header, metadata, tensor infos (llama.cpp's `gguf.cpp`, gguf-py's
//! `GGUFReader`).
//!
//! Layout (little-endian): magic `GGUF`, version (u32, 2 or 3), tensor count and metadata count
//! (u64), the metadata (key string, value type u32, value), the tensor infos (name string, number
//! of dimensions u32, dimensions u64 each, innermost first, GGML type u32, offset u64 into the data
//! section), padding to `general.alignment` (default 32), the data section. A string is a u64
//! length and that many UTF-8 bytes.
//!
//! Hostile input: every count and length is checked against the bytes that remain before
//! anything is allocated for it, every tensor's extent is computed with checked arithmetic and
//! checked against the file, and nested arrays are limited in depth, so a corrupt or truncated
//! file is a [`GgufError`], never a panic or a huge allocation.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::dequant::{self, GgmlType};
use super::error::{GgufError, GgufResult};
use super::value::Value;

/// The GGUF magic, `GGUF` read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
/// `general.alignment` when the file does not set it (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML's most dimensions (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;
/// Deepest array nesting accepted; real files nest at most once.
const MAX_DEPTH: usize = 4;

/// One tensor's entry in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGML's dimensions, innermost first (`ne[0]` is the row length): the reverse of the
    /// row-major shape [`TensorInfo::shape`] gives.
    pub dims: Vec<u64>,
    /// The stored element type.
    pub ggml_type: GgmlType,
    /// Where its data starts, counted from the start of the file.
    pub start: u64,
    /// Its size in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// The row-major shape, outermost first (as PyTorch and gguf-py's `data.shape` give it).
    pub fn shape(&self) -> Vec<usize> {
        // Each dimension fits in usize: their product was checked against the file's length.
        self.dims.iter().rev().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect()
    }

    /// The number of elements.
    pub fn n_elements(&self) -> usize {
        self.shape().iter().product()
    }
}

/// An open GGUF file: its metadata parsed, its tensors located; tensor data is read (and
/// dequantized) on demand from the memory map.
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    metadata: BTreeMap<String, Value>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    alignment: u64,
    data_start: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_start", &self.data_start)
            .finish_non_exhaustive()
    }
}

/// A cursor over the file's bytes whose reads fail, instead of panicking, past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn take(&mut self, n: usize, what: &'static str) -> GgufResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(GgufError::Truncated { what, offset: self.offset() });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> GgufResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> GgufResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> GgufResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items each at least `min_size` bytes long, checked against what remains.
    fn count(&mut self, min_size: usize, what: &'static str) -> GgufResult<usize> {
        let offset = self.offset();
        let count = self.u64(what)?;
        match usize::try_from(count) {
            Ok(n) if n <= self.remaining() / min_size.max(1) => Ok(n),
            _ => Err(GgufError::CountTooLarge { what, count, offset }),
        }
    }

    fn string(&mut self, what: &'static str) -> GgufResult<String> {
        let offset = self.offset();
        let len = self.count(1, what)?;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what, offset })
    }

    /// One value of GGUF type `type_id`; arrays recurse up to [`MAX_DEPTH`].
    fn value(&mut self, type_id: u32, depth: usize) -> GgufResult<Value> {
        const WHAT: &str = "a metadata value";
        Ok(match type_id {
            0 => Value::U8(self.array::<1>(WHAT)?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array(WHAT)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(WHAT)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(WHAT)?)),
            4 => Value::U32(self.u32(WHAT)?),
            5 => Value::I32(i32::from_le_bytes(self.array(WHAT)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(WHAT)?)),
            // gguf-py reads a bool as NumPy's `bool_` and llama.cpp as a byte: any non-zero is true.
            7 => Value::Bool(self.array::<1>(WHAT)?[0] != 0),
            8 => Value::String(self.string("a metadata string")?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::NestedTooDeep(MAX_DEPTH));
                }
                let offset = self.offset();
                let elem = self.u32("an array's element type")?;
                let n =
                    self.count(min_value_size(elem).ok_or(GgufError::UnknownValueType { type_id: elem, offset })?, "an array's length")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(WHAT)?),
            11 => Value::I64(i64::from_le_bytes(self.array(WHAT)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(WHAT)?)),
            _ => return Err(GgufError::UnknownValueType { type_id, offset: self.offset().saturating_sub(4) }),
        })
    }
}

/// The fewest bytes a value of GGUF type `type_id` takes (a string or array: its length field).
fn min_value_size(type_id: u32) -> Option<usize> {
    Some(match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => return None,
    })
}

impl GgufFile {
    /// Parses the GGUF file held in `bytes` (a memory map or bytes in memory).
    ///
    /// # Errors
    /// [`GgufError`] when the file is not GGUF, is corrupt or truncated.
    pub fn parse(bytes: Bytes) -> GgufResult<Self> {
        let mut c = Cursor { bytes: &bytes, pos: 0 };
        if c.u32("the magic").map_err(|_| GgufError::BadMagic)? != MAGIC {
            return Err(GgufError::BadMagic);
        }
        let version = c.u32("the version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // A tensor info takes at least 24 bytes (empty name, no dimensions); a metadata entry 13
        // (empty key, type, one-byte value).
        let n_tensors = c.count(24, "the tensor count")?;
        let n_kv = c.count(13, "the metadata count")?;

        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("a metadata key")?;
            let type_id = c.u32("a metadata value type")?;
            let value = c.value(type_id, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(GgufError::DuplicateKey(key));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => u64::from(*a),
            Some(other) => return Err(GgufError::BadAlignment(format!("{other} ({})", other.type_name()))),
        };

        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string("a tensor name")?;
            let offset = c.offset();
            let n_dims = c.u32("a tensor's dimension count")?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::BadTensor {
                    name,
                    reason: format!("{n_dims} dimensions at byte {offset} (GGML has at most {MAX_DIMS})"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64("a tensor's dimensions")?);
            }
            let type_id = c.u32("a tensor's type")?;
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), type_id })?;
            let rel = c.u64("a tensor's offset")?;
            infos.push((name, dims, ggml_type, rel));
        }
        let data_start = c.offset().next_multiple_of(alignment);
        let file_len = bytes.len() as u64;

        let mut tensors = Vec::with_capacity(infos.len());
        let mut by_name = HashMap::with_capacity(infos.len());
        for (name, dims, ggml_type, rel) in infos {
            let n_bytes = tensor_bytes(&name, &dims, ggml_type)?;
            if !rel.is_multiple_of(alignment) {
                return Err(GgufError::BadTensor { name, reason: format!("offset {rel} is not a multiple of the alignment {alignment}") });
            }
            let start = data_start.checked_add(rel);
            let end = start.and_then(|s| s.checked_add(n_bytes));
            let (Some(start), Some(end)) = (start, end) else {
                return Err(GgufError::TensorOutOfBounds { name, start: u64::MAX, end: u64::MAX, file_len });
            };
            if end > file_len {
                return Err(GgufError::TensorOutOfBounds { name, start, end, file_len });
            }
            if by_name.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor(name));
            }
            tensors.push(TensorInfo { name, dims, ggml_type, start, n_bytes });
        }
        Ok(Self { bytes, version, metadata, tensors, by_name, alignment, data_start })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data section's alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts, counted from the start of the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Every metadata entry, by key.
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    fn require(&self, key: &str) -> GgufResult<&Value> {
        self.get(key).ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }

    fn wrong(key: &str, expected: &'static str, found: &Value) -> GgufError {
        GgufError::WrongType { key: key.to_owned(), expected, found: found.type_name().to_owned() }
    }

    /// The string at `key`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] when it is not a string.
    pub fn get_str(&self, key: &str) -> GgufResult<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong(key, "a string", v))
    }

    /// The non-negative integer at `key`, of any integer type, as `usize`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] when it is not a non-negative
    /// integer.
    pub fn get_usize(&self, key: &str) -> GgufResult<usize> {
        let v = self.require(key)?;
        v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| Self::wrong(key, "a non-negative integer", v))
    }

    /// The number (float or integer) at `key`, as `f64`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] when it is not a number.
    pub fn get_f64(&self, key: &str) -> GgufResult<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| Self::wrong(key, "a number", v))
    }

    /// The boolean at `key`, or `None` when absent.
    ///
    /// # Errors
    /// [`GgufError::WrongType`] when present but not a boolean.
    pub fn get_bool_opt(&self, key: &str) -> GgufResult<Option<bool>> {
        self.get(key).map(|v| v.as_bool().ok_or_else(|| Self::wrong(key, "a bool", v))).transpose()
    }

    /// The array at `key`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] when it is not an array.
    pub fn get_array(&self, key: &str) -> GgufResult<&[Value]> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| Self::wrong(key, "an array", v))
    }

    /// `general.architecture` (`llama`, `qwen2`, `gemma3`, ...).
    ///
    /// # Errors
    /// When absent or not a string.
    pub fn architecture(&self) -> GgufResult<&str> {
        self.get_str("general.architecture")
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's stored bytes, in place in the map (the extent was checked when parsing).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        // `start..start + n_bytes` was checked against the file's length in `parse`.
        &self.bytes[info.start as usize..(info.start + info.n_bytes) as usize]
    }

    /// The tensor `name` dequantized to f32, row-major in [`TensorInfo::shape`].
    ///
    /// # Errors
    /// [`GgufError::MissingTensor`], or [`GgufError::UnsupportedTensorType`] for a type this
    /// crate cannot dequantize.
    pub fn dequantize(&self, name: &str) -> GgufResult<Vec<f32>> {
        let info = self.tensor(name).ok_or_else(|| GgufError::MissingTensor(name.to_owned()))?;
        self.dequantize_info(info)
    }

    /// As [`GgufFile::dequantize`], for a tensor already looked up.
    ///
    /// # Errors
    /// [`GgufError::UnsupportedTensorType`].
    pub fn dequantize_info(&self, info: &TensorInfo) -> GgufResult<Vec<f32>> {
        dequant::dequantize(info.ggml_type, self.tensor_bytes(info)).ok_or_else(|| GgufError::UnsupportedTensorType {
            name: info.name.clone(),
            ggml_type: info.ggml_type.name(),
            supported: dequant::DEQUANTIZABLE,
        })
    }
}

/// The size in bytes of a tensor of `dims` (innermost first) stored as `t`, checked: the row
/// length must be a whole number of blocks, and no product may overflow.
fn tensor_bytes(name: &str, dims: &[u64], t: GgmlType) -> GgufResult<u64> {
    let bad = |reason: String| GgufError::BadTensor { name: name.to_owned(), reason };
    let (block, block_bytes) = t.block_size_and_bytes();
    let row = dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block as u64) {
        return Err(bad(format!("its rows of {row} elements are not whole {t} blocks of {block}")));
    }
    let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    (elements / block as u64).checked_mul(block_bytes as u64).ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))
}
