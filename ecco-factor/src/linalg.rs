//! Small dense `f64` helpers for the CCA family: centring, covariance blocks, the
//! regularised inverse square root and a sign-normalised SVD.

use nalgebra::DMatrix;

use crate::error::{Error, Result};

/// Convergence thresholds handed to nalgebra's iterative decompositions (the values
/// its panicking `symmetric_eigen` / `svd` use).
const EIGEN_EPS: f64 = f64::EPSILON;
const SVD_EPS: f64 = 5.0 * f64::EPSILON;
/// Iteration cap for them (0 would mean "until convergence", which can spin forever).
const MAX_SWEEPS: usize = 10_000;

/// numpy's default `rcond` for `np.linalg.pinv`: singular values at or below
/// `1e-15 * largest` count as zero.
const PINV_RCOND: f64 = 1e-15;

/// Per-row means of `m` (one per neuron, over the tokens).
pub(crate) fn row_means(m: &DMatrix<f64>) -> Vec<f64> {
    let n = m.ncols() as f64;
    (0..m.nrows()).map(|i| m.row(i).sum() / n).collect()
}

/// `m` with each row's mean subtracted.
pub(crate) fn center_rows(m: &DMatrix<f64>) -> DMatrix<f64> {
    let means = row_means(m);
    DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] - means[i])
}

/// `a bᵀ / (n − 1)` for row-centred `a`, `b` with `n` columns: one block of
/// `np.cov(acts1, acts2)` (numpy's default `ddof = 1`).
pub(crate) fn cross_cov(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let denom = (a.ncols() as f64 - 1.0).max(1.0);
    (a * b.transpose()) / denom
}

/// Inverse square root of a symmetric matrix, computed as Google's svcca
/// `cca_core.compute_ccas` does it: `positivedef_matrix_sqrt(np.linalg.pinv(sigma))`.
///
/// With `sigma = V diag(w) Vᵀ`, `pinv` drops eigenvalues with `|w| <= 1e-15 max|w|`
/// and inverts the rest; the matrix square root then takes `sqrt(1 / w)`. One
/// symmetric eigendecomposition gives the same matrix. A negative eigenvalue above the
/// cut-off makes numpy's square root NaN (and Ecco fail later with "SVD did not
/// converge"); here it is an [`Error::Degenerate`].
pub(crate) fn pinv_sqrt(sigma: DMatrix<f64>, what: &str) -> Result<DMatrix<f64>> {
    let eig = sigma
        .try_symmetric_eigen(EIGEN_EPS, MAX_SWEEPS)
        .ok_or_else(|| Error::Degenerate(format!("eigendecomposition of {what} did not converge")))?;
    let wmax = eig.eigenvalues.iter().fold(0.0_f64, |acc, w| acc.max(w.abs()));
    let cutoff = PINV_RCOND * wmax;
    let mut scale = Vec::with_capacity(eig.eigenvalues.len());
    for &w in eig.eigenvalues.iter() {
        if w.abs() <= cutoff {
            scale.push(0.0);
        } else if w < 0.0 {
            return Err(Error::Degenerate(format!(
                "{what} is not positive semi-definite (eigenvalue {w:e}); \
                 the CCA regularisation cannot make it invertible"
            )));
        } else {
            scale.push(1.0 / w.sqrt());
        }
    }
    let v = &eig.eigenvectors;
    let vs = DMatrix::from_fn(v.nrows(), v.ncols(), |i, j| v[(i, j)] * scale[j]);
    Ok(vs * v.transpose())
}

/// Thin SVD with descending singular values and a fixed sign convention.
pub(crate) struct Svd {
    /// Left singular vectors as columns, `[m, r]`.
    pub u: DMatrix<f64>,
    /// Singular values, descending, length `r = min(m, n)`.
    pub s: Vec<f64>,
    /// Right singular vectors as rows, `[r, n]`.
    pub vt: DMatrix<f64>,
}

/// Thin SVD of `m`, signs fixed like scikit-learn's `svd_flip(u, v,
/// u_based_decision=True)`: the largest-magnitude entry of each column of `u` is
/// positive (first one on ties), and the matching row of `vt` flips with it.
pub(crate) fn svd(m: DMatrix<f64>, what: &str) -> Result<Svd> {
    let svd = m.try_svd(true, true, SVD_EPS, MAX_SWEEPS).ok_or_else(|| Error::Degenerate(format!("SVD of {what} did not converge")))?;
    let (Some(mut u), Some(mut vt)) = (svd.u, svd.v_t) else {
        return Err(Error::Degenerate(format!("SVD of {what} gave no singular vectors")));
    };
    for c in 0..u.ncols() {
        let mut best = 0.0_f64;
        let mut sign = 1.0;
        for &x in u.column(c).iter() {
            if x.abs() > best {
                best = x.abs();
                sign = x.signum();
            }
        }
        if sign < 0.0 {
            u.column_mut(c).neg_mut();
            vt.row_mut(c).neg_mut();
        }
    }
    Ok(Svd { u, s: svd.singular_values.iter().map(|s| s.abs()).collect(), vt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinv_sqrt_inverts_the_square() -> Result<()> {
        let a = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, 0.1, 0.5, 1.0, 0.2, 0.1, 0.2, 0.7]);
        let r = pinv_sqrt(a.clone(), "a")?;
        let id = &r * &a * &r;
        assert!((id - DMatrix::identity(3, 3)).abs().max() < 1e-12);
        let neg = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -1.0]);
        assert!(matches!(pinv_sqrt(neg, "n"), Err(Error::Degenerate(_))));
        // Singular directions are dropped, as pinv does.
        let sing = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]);
        let r = pinv_sqrt(sing, "s")?;
        assert!((r.sum() - 2.0 / 2.0_f64.sqrt()).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn svd_is_sorted_sign_fixed_and_reconstructs() -> Result<()> {
        let m = DMatrix::from_fn(4, 6, |i, j| ((i * 5 + j * 3) % 7) as f64 - 2.5);
        let Svd { u, s, vt } = svd(m.clone(), "m")?;
        assert!(s.windows(2).all(|w| w[0] >= w[1]));
        let rebuilt = &u * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(s)) * &vt;
        assert!((rebuilt - m).abs().max() < 1e-10);
        for c in 0..u.ncols() {
            let col = u.column(c);
            let imax = col.iamax();
            assert!(col[imax] > 0.0);
        }
        Ok(())
    }
}
