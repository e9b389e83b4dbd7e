//! The two large matrix products of an NMF iteration, `Wᵀ X` and `H Xᵀ`, split over
//! threads.
//!
//! Both go through nalgebra's `gemm`, which hands dynamic matrices to
//! `matrixmultiply` (packed SIMD kernels, chosen at run time) — but only when every
//! dimension exceeds 5, so factors with `k <= 5` are zero-padded to 6 here. Both
//! products read the data through its transpose `Xᵀ [n, p]` (kept alongside `X`):
//! measured on the 157 × 18432 benchmark matrix, `Xᵀ W` with an owned `Xᵀ` takes half
//! the time of `Wᵀ X`. The `n` axis is cut into fixed blocks of [`BLOCK`] rows; blocks
//! are shared among rayon's workers, and the partial sums of `H Xᵀ` are added in block
//! order, so results are bit-identical whatever the thread count.

use nalgebra::{DMatrix, Dyn, MatrixView};
use rayon::prelude::*;

use crate::exec::Exec;

/// Rows of `Xᵀ` per task.
pub(crate) const BLOCK: usize = 2048;

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 2_000_000;

/// nalgebra uses `matrixmultiply` only above this size in every dimension.
const GEMM_MIN_DIM: usize = 6;

/// Runs `task(block)` for `blocks` blocks, on `exec`'s pool when `parallel`,
/// and returns the results in block order.
fn run_blocks<T, F>(blocks: usize, exec: &Exec, parallel: bool, task: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync + Send,
{
    if parallel && exec.parallel() {
        exec.run(|| (0..blocks).into_par_iter().map(task).collect())
    } else {
        (0..blocks).map(task).collect()
    }
}

/// Row range `(start, len)` of block `b` of a matrix with `n` rows.
fn block_range(b: usize, n: usize) -> (usize, usize) {
    let start = b * BLOCK;
    (start, BLOCK.min(n - start))
}

/// The transpose of `x`, which the products read.
pub(crate) fn transpose_data(x: &DMatrix<f32>) -> DMatrix<f32> {
    x.transpose()
}

/// `out [k, n] = wt [k, p] · X [p, n]`, computed as `(Xᵀ W)ᵀ` from `xt = Xᵀ [n, p]`.
pub(crate) fn wt_x(wt: &DMatrix<f32>, xt: &DMatrix<f32>, out: &mut DMatrix<f32>, exec: &Exec) {
    let k = wt.nrows();
    let (n, p) = xt.shape();
    debug_assert_eq!(wt.ncols(), p);
    debug_assert_eq!(out.shape(), (k, n));
    // W [p, k'] with k' >= 6 columns (zero padding).
    let w = wt.transpose().resize_horizontally(k.max(GEMM_MIN_DIM), 0.0);
    let parallel = k * p * n >= PARALLEL_MIN_FLOPS;
    let blocks = run_blocks(n.div_ceil(BLOCK), exec, parallel, |b| {
        let (start, len) = block_range(b, n);
        let mut part = DMatrix::zeros(len, w.ncols());
        part.gemm(1.0, &xt.rows(start, len), &w, 0.0);
        part
    });
    for (b, part) in blocks.iter().enumerate() {
        let (start, len) = block_range(b, n);
        out.columns_mut(start, len)
            .tr_copy_from(&part.columns(0, k));
    }
}

/// `out [k, p] = h [k, n] · X ᵀ`, computed from `xt = Xᵀ [n, p]`.
pub(crate) fn h_xt(h: &DMatrix<f32>, xt: &DMatrix<f32>, out: &mut DMatrix<f32>, exec: &Exec) {
    let k = h.nrows();
    let (n, p) = xt.shape();
    debug_assert_eq!(h.ncols(), n);
    debug_assert_eq!(out.shape(), (k, p));
    let pad = (k < GEMM_MIN_DIM).then(|| h.clone().resize_vertically(GEMM_MIN_DIM, 0.0));
    let h_used = pad.as_ref().unwrap_or(h);
    let parallel = k * p * n >= PARALLEL_MIN_FLOPS;
    let partials = run_blocks(n.div_ceil(BLOCK), exec, parallel, |b| {
        let (start, len) = block_range(b, n);
        let mut part = DMatrix::zeros(h_used.nrows(), p);
        part.gemm(1.0, &h_used.columns(start, len), &xt.rows(start, len), 0.0);
        part
    });
    out.fill(0.0);
    for part in partials {
        *out += part.rows(0, k);
    }
}

/// `a aᵀ` for a short wide `a [k, m]` (the `k × k` Gram matrix of its rows).
pub(crate) fn gram(a: &DMatrix<f32>) -> DMatrix<f32> {
    let (k, m) = a.shape();
    let at =
        MatrixView::from_slice_with_strides_generic(a.as_slice(), Dyn(m), Dyn(k), Dyn(k), Dyn(1));
    let mut out = DMatrix::zeros(k, k);
    out.gemm(1.0, a, &at, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &DMatrix<f32>, b: &DMatrix<f32>) -> DMatrix<f64> {
        a.map(f64::from) * b.map(f64::from)
    }

    fn close(a: &DMatrix<f32>, b: &DMatrix<f64>) -> bool {
        a.shape() == b.shape()
            && a.iter()
                .zip(b.iter())
                .all(|(&x, &y)| (f64::from(x) - y).abs() <= 1e-4 * (1.0 + y.abs()))
    }

    #[test]
    fn products_match_naive_and_do_not_depend_on_threads() -> crate::Result<()> {
        let pool = Exec::new(Some(3))?;
        for k in [3, 7] {
            let x = DMatrix::from_fn(9, 5000, |i, j| ((i * 31 + j * 17) % 13) as f32 / 13.0);
            let xt = transpose_data(&x);
            let wt = DMatrix::from_fn(k, 9, |i, j| (i + 2 * j) as f32 / 10.0);
            let h = DMatrix::from_fn(k, 5000, |i, j| ((i + j) % 7) as f32 / 7.0);
            let mut out1 = DMatrix::zeros(k, 5000);
            let mut out2 = DMatrix::zeros(k, 5000);
            wt_x(&wt, &xt, &mut out1, &Exec::Sequential);
            wt_x(&wt, &xt, &mut out2, &pool);
            assert!(close(&out1, &naive(&wt, &x)));
            assert_eq!(out1, out2);
            let mut p1 = DMatrix::zeros(k, 9);
            let mut p2 = DMatrix::zeros(k, 9);
            h_xt(&h, &xt, &mut p1, &Exec::Sequential);
            h_xt(&h, &xt, &mut p2, &pool);
            assert!(close(&p1, &naive(&h, &x.transpose())));
            assert_eq!(p1, p2);
            assert!(close(&gram(&h), &naive(&h, &h.transpose())));
        }
        Ok(())
    }
}
