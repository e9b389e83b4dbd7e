//! Matrix-vector products on weights read in place from the memory-mapped checkpoint, for the
//! one-token steps of CPU decoding.
//!
//! A decoding step multiplies one row by every weight matrix: it streams all the weights
//! (324 MB on distilgpt2) from memory once per token and is bound by memory bandwidth. On the
//! CPU backend these kernels read the mapped checkpoint's f32 pages directly, split between
//! threads, with no tensor bookkeeping; they run at the speed of a streaming read.

use bytes::Bytes;
use rayon::prelude::*;

/// An f32 matrix `[rows, cols]`, row-major, sharing the mapped checkpoint's pages (no copy).
#[derive(Clone, Debug)]
pub struct HostMatrix {
    bytes: Bytes,
    rows: usize,
    cols: usize,
}

/// Smallest piece of work (in matrix elements) a thread is given.
const MIN_CHUNK: usize = 1 << 16;

impl HostMatrix {
    /// A view of `bytes` as `[rows, cols]` f32 values; `None` unless they are exactly that many
    /// bytes, 4-byte aligned, on a little-endian host.
    pub fn new(bytes: Bytes, rows: usize, cols: usize) -> Option<Self> {
        let ok = cfg!(target_endian = "little") && bytes.len() == rows * cols * 4 && bytemuck::try_cast_slice::<u8, f32>(&bytes).is_ok();
        ok.then_some(Self { bytes, rows, cols })
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    fn values(&self) -> &[f32] {
        // Checked in `new`.
        bytemuck::try_cast_slice(&self.bytes).unwrap_or_default()
    }

    /// `x · M` for `x` of length `rows`: a vector of length `cols` (`Conv1D`, `[in, out]`).
    ///
    /// Each thread owns a range of output columns and adds `x[i] · M[i, cols]`, four rows at a
    /// time.
    pub fn left_mul(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.rows, "left_mul: x has {} values for {} rows", x.len(), self.rows);
        // A column costs `rows` elements; at least 16 columns per thread.
        self.split(x, self.cols, self.rows, 16, |part| pulp::Arch::new().dispatch(Axpy(part)))
    }

    /// `M · x` for `x` of length `cols`: a vector of length `rows` (an LM head `[vocab, hidden]`).
    ///
    /// Each thread owns a range of rows and takes their dot products with `x`.
    pub fn mul(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.cols, "mul: x has {} values for {} columns", x.len(), self.cols);
        // A row costs `cols` elements.
        self.split(x, self.rows, self.cols, 1, |part| pulp::Arch::new().dispatch(Dots(part)))
    }

    /// An output of length `len` cut into one slice per thread (at least `least` items and
    /// [`MIN_CHUNK`] matrix elements each, an item costing `cost` elements), each slice filled
    /// by `fill` on its thread.
    fn split(&self, x: &[f32], len: usize, cost: usize, least: usize, fill: impl Fn(Part<'_>) + Sync) -> Vec<f32> {
        let (m, cols) = (self.values(), self.cols);
        let mut y = vec![0f32; len];
        let per_thread = len.div_ceil(rayon::current_num_threads()).max(MIN_CHUNK / cost.max(1)).max(least);
        y.par_chunks_mut(per_thread).enumerate().for_each(|(c, out)| fill(Part { x, m, cols, start: c * per_thread, out }));
        y
    }
}

/// One thread's share of a product: `x`, the matrix's values `m` (`cols` wide), and the
/// thread's slice of the output, starting at column (or row) `start`.
struct Part<'a> {
    x: &'a [f32],
    m: &'a [f32],
    cols: usize,
    start: usize,
    out: &'a mut [f32],
}

/// [`HostMatrix::left_mul`]'s part: `out += x · M[.., start..start + out.len()]`, compiled for
/// each instruction set (`pulp`).
struct Axpy<'a>(Part<'a>);

impl pulp::WithSimd for Axpy<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Part { x, m, cols, start, out } = self.0;
        let len = out.len();
        let row = |i: usize| &m[i * cols + start..i * cols + start + len];
        let mut i = 0;
        while i + 4 <= x.len() {
            let (x0, x1, x2, x3) = (x[i], x[i + 1], x[i + 2], x[i + 3]);
            let (r0, r1, r2, r3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
            for j in 0..len {
                out[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j];
            }
            i += 4;
        }
        for (k, &xi) in x.iter().enumerate().skip(i) {
            for (o, w) in out.iter_mut().zip(row(k)) {
                *o += xi * w;
            }
        }
    }
}

/// [`HostMatrix::mul`]'s part: `out[r] = M[start + r] · x`.
struct Dots<'a>(Part<'a>);

impl pulp::WithSimd for Dots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Part { x, m, cols, start, out } = self.0;
        for (r, o) in out.iter_mut().enumerate() {
            *o = dot(&m[(start + r) * cols..(start + r + 1) * cols], x);
        }
    }
}

/// `a · b` with 16 running sums (lanes the compiler keeps in vector registers).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> (Vec<f32>, HostMatrix) {
        let v: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 506.5) - 1.0).collect();
        let bytes = Bytes::from(bytemuck::cast_slice::<f32, u8>(&v).to_vec());
        (v, HostMatrix::new(bytes, rows, cols).expect("aligned"))
    }

    #[test]
    fn products_match_the_naive_ones() {
        for (rows, cols) in [(3, 5), (768, 2304), (1000, 77), (33, 70000)] {
            let (v, m) = matrix(rows, cols);
            let x: Vec<f32> = (0..rows).map(|i| (i as f32 * 0.37).sin()).collect();
            let y = m.left_mul(&x);
            for j in (0..cols).step_by(cols / 7 + 1) {
                let want: f64 = (0..rows).map(|i| f64::from(x[i]) * f64::from(v[i * cols + j])).sum();
                assert!((f64::from(y[j]) - want).abs() < 1e-4 * (1.0 + want.abs()), "left_mul {rows}x{cols} [{j}]");
            }
            let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.11).cos()).collect();
            let y = m.mul(&x);
            for r in (0..rows).step_by(rows / 7 + 1) {
                let want: f64 = (0..cols).map(|j| f64::from(x[j]) * f64::from(v[r * cols + j])).sum();
                assert!((f64::from(y[r]) - want).abs() < 1e-4 * (1.0 + want.abs()), "mul {rows}x{cols} [{r}]");
            }
        }
        assert!(HostMatrix::new(Bytes::from(vec![0u8; 12]), 2, 2).is_none(), "wrong length");
    }
}
