//! The reader and the dequantizers against files gguf-py wrote (`scripts/fixtures/gguf_quants.py`,
//! `fixtures/gguf/`), and hostile input: truncated and corrupt files are errors, never panics.

use std::path::PathBuf;

use bytes::Bytes;
use serde::Deserialize;

use super::*;

fn fixture(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "fixtures", "gguf", name].iter().collect()
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Table {
    alignment: u64,
    data_offset: u64,
    tensors: Vec<TableEntry>,
}

#[derive(Deserialize)]
struct TableEntry {
    name: String,
    #[serde(rename = "type")]
    ggml_type: String,
    dims: Vec<u64>,
    start: u64,
    n_bytes: u64,
}

#[test]
fn reads_every_metadata_type_and_the_tensor_table_as_gguf_py_does() {
    let file = open(&fixture("quants.gguf")).expect("quants.gguf");
    assert_eq!(file.version(), 3);
    assert_eq!(file.architecture().ok(), Some("llama"));
    let expect = [
        ("test.u8", Value::U8(200)),
        ("test.i8", Value::I8(-100)),
        ("test.u16", Value::U16(60000)),
        ("test.i16", Value::I16(-30000)),
        ("test.u32", Value::U32(4_000_000_000)),
        ("test.i32", Value::I32(-2_000_000_000)),
        ("test.f32", Value::F32(0.1)),
        ("test.u64", Value::U64((1 << 63) + 5)),
        ("test.i64", Value::I64(-(1 << 62))),
        ("test.f64", Value::F64(1e-300)),
        ("test.bool", Value::Bool(true)),
        ("test.string", Value::String("héllo ✓".into())),
        ("test.array_i32", Value::Array(vec![Value::I32(1), Value::I32(-2), Value::I32(3)])),
        ("test.array_str", Value::Array(vec![Value::String("a".into()), Value::String(String::new()), Value::String("ü".into())])),
        ("test.array_f32", Value::Array(vec![Value::F32(0.5), Value::F32(-1.5)])),
        ("general.alignment", Value::U32(64)),
    ];
    for (key, value) in &expect {
        assert_eq!(file.get(key), Some(value), "{key}");
    }
    assert_eq!(file.get_usize("test.u32").ok(), Some(4_000_000_000));
    assert!(matches!(file.get_usize("test.i8"), Err(GgufError::WrongType { .. })));
    assert!(matches!(file.get_str("test.u8"), Err(GgufError::WrongType { .. })));
    assert!(matches!(file.get_f64("absent"), Err(GgufError::MissingKey(_))));

    let table: Table = serde_json::from_slice(&read("quants.json")).expect("quants.json");
    assert_eq!(file.alignment(), table.alignment);
    assert_eq!(file.data_start(), table.data_offset);
    assert_eq!(file.tensors().len(), table.tensors.len());
    for (ours, theirs) in file.tensors().iter().zip(&table.tensors) {
        assert_eq!(
            (&ours.name, ours.ggml_type.name(), &ours.dims, ours.start, ours.n_bytes),
            (&theirs.name, theirs.ggml_type.as_str(), &theirs.dims, theirs.start, theirs.n_bytes)
        );
        assert_eq!(ours.shape(), vec![4, 512]);
    }
}

#[test]
fn dequantizes_every_supported_type_bit_for_bit_like_gguf_py() {
    let file = open(&fixture("quants.gguf")).expect("quants.gguf");
    let reference = ecco_core::SafetensorsReader::open(fixture("quants.safetensors")).expect("reference");
    let mut seen = Vec::new();
    for info in file.tensors() {
        let ours = file.dequantize_info(info).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let theirs = reference.read_f32(&info.name).expect("reference tensor");
        assert_eq!(theirs.shape, info.shape());
        let differ = ours.iter().zip(&theirs.data).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{}: {differ} of {} values differ", info.name, ours.len());
        // Not all zeros: the fixture exercises the arithmetic.
        assert!(ours.iter().filter(|v| **v != 0.0).count() > ours.len() / 2, "{}", info.name);
        seen.push(info.ggml_type);
    }
    let mut names: Vec<&str> = seen.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    let mut supported: Vec<&str> = dequant::DEQUANTIZABLE.split(", ").collect();
    supported.sort_unstable();
    assert_eq!(names, supported);
}

/// A writer for small GGUF files with chosen contents and defects.
#[derive(Default)]
pub(crate) struct Builder {
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

impl Builder {
    pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    pub(crate) fn kv(mut self, key: &str, type_id: u32, value: &[u8]) -> Self {
        Self::string(&mut self.kv, key);
        self.kv.extend(type_id.to_le_bytes());
        self.kv.extend(value);
        self.n_kv += 1;
        self
    }

    pub(crate) fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> Self {
        Self::string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(type_id.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    pub(crate) fn data(mut self, bytes: &[u8]) -> Self {
        self.data.extend(bytes);
        self
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.infos);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

pub(crate) fn parse(bytes: Vec<u8>) -> GgufResult<GgufFile> {
    GgufFile::parse(Bytes::from(bytes))
}

pub(crate) fn string_value(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    Builder::string(&mut v, s);
    v
}

#[test]
fn a_minimal_file_parses() {
    let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let file =
        parse(Builder::default().kv("general.architecture", 8, &string_value("llama")).tensor("t", &[2, 2], 0, 0).data(&f32s).build())
            .expect("valid");
    assert_eq!(file.dequantize("t").ok(), Some(vec![1.0, 2.0, 3.0, 4.0]));
    assert!(matches!(file.dequantize("u"), Err(GgufError::MissingTensor(_))));
    // Version 2 files read the same.
    let mut v2 = Builder::default().build();
    v2[4] = 2;
    assert!(parse(v2).is_ok());
}

#[test]
fn corrupt_headers_are_one_line_errors() {
    let ok = || Builder::default().kv("a", 4, &7u32.to_le_bytes());
    let check = |bytes: Vec<u8>, want: &str| {
        let err = parse(bytes).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
        assert!(!err.contains('\n'), "{err:?}");
    };
    check(b"GGUG\x03\0\0\0".to_vec(), "not a GGUF file");
    check(b"GG".to_vec(), "not a GGUF file");
    let mut v = ok().build();
    v[4] = 4;
    check(v, "version 4");
    // Counts far beyond the file.
    let mut v = ok().build();
    v[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    check(v, "tensor count");
    let mut v = ok().build();
    v[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    check(v, "metadata count");
    check(Builder::default().kv("s", 8, &u64::MAX.to_le_bytes()).build(), "metadata string");
    let mut huge_array = 4u32.to_le_bytes().to_vec();
    huge_array.extend((1u64 << 61).to_le_bytes());
    check(Builder::default().kv("a", 9, &huge_array).build(), "array's length");
    check(Builder::default().kv("a", 13, &[0; 8]).build(), "unknown metadata value type 13");
    let mut bad_elem = 99u32.to_le_bytes().to_vec();
    bad_elem.extend(1u64.to_le_bytes());
    check(Builder::default().kv("a", 9, &bad_elem).build(), "unknown metadata value type 99");
    check(Builder::default().kv("k", 8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]).build(), "not UTF-8");
    check(ok().kv("a", 4, &1u32.to_le_bytes()).build(), "appears twice");
    // Arrays of arrays of ... : bounded depth, not a stack overflow.
    let mut nested = Vec::new();
    for _ in 0..100 {
        nested.extend(9u32.to_le_bytes());
        nested.extend(1u64.to_le_bytes());
    }
    nested.extend(4u32.to_le_bytes());
    nested.extend(0u64.to_le_bytes());
    check(Builder::default().kv("a", 9, &nested).build(), "nested deeper");
    for (value, type_id) in [(0u32.to_le_bytes().to_vec(), 4), (48u32.to_le_bytes().to_vec(), 4), (64u64.to_le_bytes().to_vec(), 10)] {
        check(Builder::default().kv("general.alignment", type_id, &value).build(), "general.alignment");
    }
    // Tensors.
    check(Builder::default().tensor("t", &[4], 77, 0).data(&[0; 16]).build(), "unknown GGML type 77");
    check(Builder::default().tensor("t", &[1, 1, 1, 1, 1], 0, 0).build(), "dimensions");
    check(Builder::default().tensor("t", &[31], 8, 0).data(&[0; 34]).build(), "not whole Q8_0 blocks");
    check(Builder::default().tensor("t", &[u64::MAX / 2, 4], 0, 0).build(), "overflow");
    check(Builder::default().tensor("t", &[2], 0, 4).data(&[0; 12]).build(), "alignment");
    check(Builder::default().tensor("t", &[8], 0, 0).data(&[0; 16]).build(), "outside the file");
    check(Builder::default().tensor("t", &[4], 0, u64::MAX - 31).data(&[0; 16]).build(), "outside the file");
    check(Builder::default().tensor("t", &[4], 0, 0).tensor("t", &[4], 0, 0).data(&[0; 16]).build(), "appears twice");
    // A type the reader knows but cannot dequantize: found when asked.
    let iq = parse(Builder::default().tensor("t", &[256], 16, 0).data(&[0; 66]).build()).expect("IQ2_XXS sizes are known");
    let err = iq.dequantize("t").expect_err("not dequantizable").to_string();
    assert!(err.contains("IQ2_XXS") && err.contains("Q4_K"), "{err}");
}

#[test]
fn every_truncation_of_a_real_file_is_an_error() {
    let bytes = read("quants.gguf");
    let file = parse(bytes.clone()).expect("whole file");
    let last = file.tensors().iter().map(|t| t.start + t.n_bytes).max().unwrap_or(0) as usize;
    // Every cut inside the header and the tensor table, then a spread of cuts in the data.
    let header = file.data_start() as usize;
    let cuts = (0..header).chain((header..last).step_by(97));
    for cut in cuts {
        match parse(bytes[..cut].to_vec()) {
            Err(e) => assert!(!e.to_string().contains('\n')),
            Ok(_) => panic!("a file cut at byte {cut} of {last} parsed"),
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    // Deterministic xorshift: flip bytes of the header and tensor table, parse, and when that
    // succeeds, dequantize every tensor.
    let bytes = read("quants.gguf");
    let header = parse(bytes.clone()).expect("whole file").data_start() as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut v = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % header as u64) as usize;
            v[at] = next() as u8;
        }
        if let Ok(file) = parse(v) {
            parsed += 1;
            for info in file.tensors() {
                let _ = file.dequantize_info(info);
            }
        }
    }
    assert!(parsed > 0, "some corruptions (in string bytes, values) still parse");
}

#[test]
fn spm_vocabulary_tokenizes_as_transformers() {
    #[derive(Deserialize)]
    struct Case {
        text: String,
        ids: Vec<u32>,
        ids_no_special: Vec<u32>,
        tokens: Vec<String>,
        decoded: String,
    }
    #[derive(Deserialize)]
    struct Reference {
        vocab_size: usize,
        cases: Vec<Case>,
    }
    let reference: Reference = serde_json::from_slice(&read("spm.json")).expect("spm.json");
    let file = open(&fixture("spm.gguf")).expect("spm.gguf");
    let tok = GgufTokenizer::from_gguf(&file).expect("tokenizer");
    assert!(tok.add_bos && !tok.add_eos);
    assert_eq!((tok.bos_token_id, tok.eos_token_ids.as_slice()), (Some(1), &[2][..]));
    assert_eq!(tok.tokenizer.get_vocab_size(true), reference.vocab_size);
    for case in &reference.cases {
        let with = tok.tokenizer.encode(case.text.as_str(), true).expect("encode");
        assert_eq!(with.get_ids(), case.ids, "{:?}", case.text);
        let plain = tok.tokenizer.encode(case.text.as_str(), false).expect("encode");
        assert_eq!(plain.get_ids(), case.ids_no_special, "{:?}", case.text);
        assert_eq!(plain.get_tokens(), case.tokens, "{:?}", case.text);
        assert_eq!(tok.tokenizer.decode(&case.ids_no_special, false).ok().as_deref(), Some(case.decoded.as_str()));
    }
}

#[test]
fn tokenizer_metadata_errors_name_the_key() {
    let tokens = |list: &[&str]| {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((list.len() as u64).to_le_bytes());
        for t in list {
            Builder::string(&mut v, t);
        }
        v
    };
    let base = || Builder::default().kv("tokenizer.ggml.tokens", 9, &tokens(&["a", "b", "ab"]));
    let err = |b: Builder| GgufTokenizer::from_gguf(&parse(b.build()).expect("parses")).expect_err("invalid").to_string();
    assert!(err(base()).contains("tokenizer.ggml.model"));
    assert!(err(base().kv("tokenizer.ggml.model", 8, &string_value("bert"))).contains("`bert` is not supported"));
    let gpt2 = || base().kv("tokenizer.ggml.model", 8, &string_value("gpt2"));
    assert!(err(gpt2()).contains("tokenizer.ggml.merges"));
    let merges = || gpt2().kv("tokenizer.ggml.merges", 9, &tokens(&["a b"]));
    assert!(err(merges().kv("tokenizer.ggml.bos_token_id", 4, &5u32.to_le_bytes())).contains("not a token id"));
    assert!(err(merges().kv("tokenizer.ggml.add_bos_token", 7, &[1])).contains("bos_token_id"));
    let ok =
        GgufTokenizer::from_gguf(&parse(merges().kv("tokenizer.ggml.eos_token_id", 5, &(-1i32).to_le_bytes()).build()).expect("parses"))
            .expect("valid");
    assert!(ok.eos_token_ids.is_empty() && !ok.add_bos);
    assert_eq!(ok.tokenizer.encode("ab", false).expect("encode").get_ids(), &[2]);
}

/// The inverse of `permute` in `convert_hf_to_gguf.py`:
/// `w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
fn permute(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let half = rows / n_head / 2;
    let mut out = Vec::with_capacity(w.len());
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let r = h * 2 * half + j * half + i;
                out.extend_from_slice(&w[r * cols..(r + 1) * cols]);
            }
        }
    }
    out
}

#[test]
fn unpermute_inverts_the_converters_permute() {
    let (rows, cols, heads) = (12, 3, 2);
    let w: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
    let stored = permute(&w, rows, cols, heads);
    assert_ne!(stored, w);
    // Head 0's stored rows are HF rows 0, 3, 1, 4, 2, 5.
    assert_eq!(stored[3..6], w[9..12]);
    assert_eq!(unpermute_rows(&stored, rows, cols, heads), Some(w));
    assert_eq!(unpermute_rows(&stored, rows, cols, 5), None);
    assert_eq!(unpermute_rows(&stored[1..], rows, cols, heads), None);
    assert_eq!(unpermute_rows(&stored, rows, cols, 0), None);
}
