//! Canonical correlation analysis as Ecco 0.1.2 computes it.
//!
//! A port of the arithmetic of Google's svcca `cca_core.get_cca_similarity`
//! (bundled in Ecco as `ecco/svcca_lib/cca_core.py`) with `epsilon = 1e-10`, the
//! setting of `ecco.analysis`:
//!
//! 1. covariance blocks of the two `[neurons, tokens]` matrices (`np.cov`, `ddof = 1`);
//! 2. each block rescaled by the largest magnitude of its own variance block
//!    (`Σxx / xmax`, `Σyy / ymax`, `Σxy / sqrt(xmax ymax)`);
//! 3. `remove_small`: neurons whose rescaled variance is below `epsilon` are dropped;
//! 4. `epsilon` added to the variance diagonals, then `Σxx^{-1/2} Σxy Σyy^{-1/2}`
//!    through `pinv` and a symmetric square root;
//! 5. its singular values are the canonical correlations.
//!
//! [`cca`] is Ecco's `analysis.cca`: the mean of the leading coefficients that hold 98 %
//! of their sum (`sum_threshold`, including its quirk of keeping them all when the
//! threshold is only reached at the last one).

use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::linalg::{Svd, center_rows, cross_cov, pinv_sqrt, row_means, svd};
use crate::matrix::{check_finite_f64, check_not_empty};

/// The `epsilon` every `ecco.analysis` function passes to `cca_core`.
pub(crate) const EPSILON: f64 = 1e-10;
/// `get_cca_similarity`'s default `threshold` for its summary mean.
const THRESHOLD: f64 = 0.98;

/// What `get_cca_similarity` computes and the callers here need.
pub(crate) struct CcaCore {
    /// Canonical correlations, descending (`cca_coef1`).
    pub coefs: Vec<f64>,
    /// Sign-normalised SVD of `Σxx^{-1/2} Σxy Σyy^{-1/2}` over the kept neurons.
    pub svd: Svd,
    /// Kept neurons of `acts1` and `acts2` (`x_idxs`, `y_idxs` as index lists).
    pub x_idxs: Vec<usize>,
    /// See `x_idxs`.
    pub y_idxs: Vec<usize>,
    /// Per-neuron means of `acts1` and `acts2` (`neuron_means1/2`).
    pub means1: Vec<f64>,
    /// See `means1`.
    pub means2: Vec<f64>,
}

/// Checks two `[neurons, tokens]` inputs: non-empty, finite, same token count.
pub(crate) fn check_pair(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>) -> Result<()> {
    check_not_empty("acts1", acts1)?;
    check_not_empty("acts2", acts2)?;
    check_finite_f64("acts1", acts1)?;
    check_finite_f64("acts2", acts2)?;
    if acts1.ncols() != acts2.ncols() {
        return Err(Error::DimensionMismatch(format!("acts1 has {} tokens (columns) but acts2 has {}", acts1.ncols(), acts2.ncols())));
    }
    Ok(())
}

/// `get_cca_similarity(acts1, acts2, epsilon)` up to the SVD.
///
/// Ecco asserts `acts1` has fewer neurons than tokens; with `acts2` wider than that
/// its covariance is singular, `epsilon` too small to fix it and numpy's square root
/// turns NaN ("SVD did not converge"), so both are checked here.
pub(crate) fn cca_core(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>, epsilon: f64) -> Result<CcaCore> {
    check_pair(acts1, acts2)?;
    let tokens = acts1.ncols();
    for (name, m) in [("acts1", acts1), ("acts2", acts2)] {
        if m.nrows() >= tokens {
            return Err(Error::Degenerate(format!(
                "CCA needs fewer neurons than tokens, but {name} is {} x {tokens}; \
                 use more tokens, SVCCA with fewer dims, or CKA",
                m.nrows()
            )));
        }
    }

    let c1 = center_rows(acts1);
    let c2 = center_rows(acts2);
    let mut sxx = cross_cov(&c1, &c1);
    let mut syy = cross_cov(&c2, &c2);
    let mut sxy = cross_cov(&c1, &c2);
    let xmax = sxx.amax();
    let ymax = syy.amax();
    if xmax == 0.0 || ymax == 0.0 {
        // numpy divides by zero here, every variance becomes NaN, every neuron is
        // removed, and cca_core's early return fails to unpack.
        let which = if xmax == 0.0 { "acts1" } else { "acts2" };
        return Err(Error::Degenerate(format!("every neuron of {which} is constant over the tokens")));
    }
    sxx /= xmax;
    syy /= ymax;
    sxy /= (xmax * ymax).sqrt();

    // remove_small: keep |diag| >= epsilon.
    let x_idxs: Vec<usize> = (0..sxx.nrows()).filter(|&i| sxx[(i, i)].abs() >= epsilon).collect();
    let y_idxs: Vec<usize> = (0..syy.nrows()).filter(|&i| syy[(i, i)].abs() >= epsilon).collect();
    let sxx = sxx.select_rows(&x_idxs).select_columns(&x_idxs);
    let syy = syy.select_rows(&y_idxs).select_columns(&y_idxs);
    let sxy = sxy.select_rows(&x_idxs).select_columns(&y_idxs);

    let sxx = sxx + DMatrix::identity(x_idxs.len(), x_idxs.len()) * epsilon;
    let syy = syy + DMatrix::identity(y_idxs.len(), y_idxs.len()) * epsilon;
    let invsqrt_xx = pinv_sqrt(sxx, "the acts1 covariance")?;
    let invsqrt_yy = pinv_sqrt(syy, "the acts2 covariance")?;
    let arr = &invsqrt_xx * sxy * &invsqrt_yy;
    let svd = svd(arr, "the whitened cross-covariance")?;
    Ok(CcaCore { coefs: svd.s.clone(), svd, x_idxs, y_idxs, means1: row_means(acts1), means2: row_means(acts2) })
}

/// `cca_core.sum_threshold`: the first `i` with `sum(s[..i]) / sum(s) >= threshold`,
/// or `s.len()` when there is none (Python's `None`, which slices to the whole array).
fn sum_threshold(s: &[f64], threshold: f64) -> usize {
    let total: f64 = s.iter().sum();
    let mut partial = 0.0;
    for (i, &v) in s.iter().enumerate() {
        if partial / total >= threshold {
            return i;
        }
        partial += v;
    }
    s.len()
}

/// The canonical correlations of two `[neurons, tokens]` activation matrices,
/// descending, one per kept neuron of the smaller side (`cca_coef1` of Ecco's
/// `get_cca_similarity(acts1, acts2, epsilon=1e-10)`).
///
/// # Errors
///
/// [`Error::DimensionMismatch`] if the token counts differ; [`Error::Degenerate`] if
/// either matrix has at least as many neurons as tokens or is constant;
/// [`Error::Empty`] / [`Error::NonFinite`] for bad input.
pub fn canonical_correlations(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>) -> Result<Vec<f64>> {
    Ok(cca_core(acts1, acts2, EPSILON)?.coefs)
}

/// CCA similarity of two `[neurons, tokens]` activation matrices, as Ecco 0.1.2's
/// `ecco.analysis.cca`: the mean of the leading canonical correlations that make up
/// 98 % of their sum. 1 means one matrix is a linear transform of the other.
///
/// # Errors
///
/// As [`canonical_correlations`].
///
/// # Example
///
/// ```
/// use nalgebra::DMatrix;
/// let a = DMatrix::from_fn(3, 12, |i, j| ((i + 1) * (j * j + 1) % 7) as f64);
/// let b = DMatrix::from_fn(2, 12, |i, j| a[(i, j)] * 2.0 + a[(2, j)]);
/// let score = ecco_factor::cca(&a, &b)?;
/// assert!((score - 1.0).abs() < 1e-6);
/// # Ok::<(), ecco_factor::Error>(())
/// ```
pub fn cca(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>) -> Result<f64> {
    let coefs = canonical_correlations(acts1, acts2)?;
    let idx = sum_threshold(&coefs, THRESHOLD);
    Ok(coefs[..idx].iter().sum::<f64>() / idx as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_threshold_matches_the_python_loop() {
        // i = 0 is never enough; i = 2 reaches 0.98 of the mass.
        assert_eq!(sum_threshold(&[0.9, 0.09, 0.01], 0.98), 2);
        // Only the full sum reaches it: Python returns None -> all.
        assert_eq!(sum_threshold(&[0.5, 0.3, 0.2], 0.98), 3);
        assert_eq!(sum_threshold(&[1.0, 0.0], 0.98), 1);
    }

    #[test]
    fn shape_and_degenerate_errors() {
        let a = DMatrix::from_fn(3, 10, |i, j| (i * j % 4) as f64);
        let wide = DMatrix::from_fn(10, 10, |i, j| ((i + 3 * j) % 5) as f64);
        let short = DMatrix::from_fn(3, 9, |i, j| (i + j) as f64);
        let flat = DMatrix::from_element(2, 10, 1.5);
        assert!(matches!(cca(&a, &short), Err(Error::DimensionMismatch(_))));
        assert!(matches!(cca(&wide, &a), Err(Error::Degenerate(_))));
        assert!(matches!(cca(&a, &wide), Err(Error::Degenerate(_))));
        assert!(matches!(cca(&a, &flat), Err(Error::Degenerate(_))));
        let mut nan = a.clone();
        nan[(1, 1)] = f64::NAN;
        assert!(matches!(cca(&nan, &a), Err(Error::NonFinite { .. })));
    }

    #[test]
    fn self_similarity_is_one_and_constant_neurons_are_dropped() -> Result<()> {
        let mut a = DMatrix::from_fn(4, 30, |i, j| (((i + 2) * (j + 1) * 7919) % 101) as f64);
        a.row_mut(2).fill(3.0);
        let c = canonical_correlations(&a, &a)?;
        assert_eq!(c.len(), 3, "the constant neuron is removed");
        assert!(c.iter().all(|&v| (v - 1.0).abs() < 1e-6), "{c:?}");
        Ok(())
    }
}
