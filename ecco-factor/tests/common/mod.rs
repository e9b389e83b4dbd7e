//! Fixture loading shared by the parity tests (`fixtures/factor/`, written by
//! `scripts/fixtures/factor.py`).

#![allow(dead_code)]

use std::path::PathBuf;

use nalgebra::DMatrix;
use safetensors::{Dtype, SafeTensors};

/// Boxed error for test plumbing.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// `fixtures/factor/<name>` from the workspace root.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures").join("factor").join(name)
}

/// Parses a JSON fixture.
pub fn json(name: &str) -> TestResult<serde_json::Value> {
    let text = std::fs::read_to_string(fixture_path(name))?;
    Ok(serde_json::from_str(&text)?)
}

/// Every tensor of a safetensors fixture as a matrix (stored row-major, 2-D, f32).
pub fn matrices(name: &str) -> TestResult<Vec<(String, DMatrix<f32>)>> {
    let bytes = std::fs::read(fixture_path(name))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let mut out = Vec::new();
    for (key, view) in st.tensors() {
        if view.dtype() != Dtype::F32 || view.shape().len() != 2 {
            return Err(format!("{key}: expected a 2-D f32 tensor").into());
        }
        let (rows, cols) = (view.shape()[0], view.shape()[1]);
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        out.push((key, DMatrix::from_row_slice(rows, cols, &values)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A named tensor of a safetensors fixture.
pub fn matrix(name: &str, key: &str) -> TestResult<DMatrix<f32>> {
    matrices(name)?.into_iter().find(|(k, _)| k == key).map(|(_, m)| m).ok_or_else(|| format!("{name} has no tensor {key}").into())
}

/// `v[key]` as f64, or an error naming the key.
pub fn num(v: &serde_json::Value, key: &str) -> TestResult<f64> {
    v.get(key).and_then(serde_json::Value::as_f64).ok_or_else(|| format!("missing number {key} in {v}").into())
}
