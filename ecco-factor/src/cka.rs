//! Linear centred kernel alignment as Ecco 0.1.2's `ecco.analysis.cka` computes it.

use nalgebra::DMatrix;

use crate::cca::check_pair;
use crate::error::{Error, Result};
use crate::linalg::center_rows;

/// Linear CKA of two `[neurons, tokens]` activation matrices (Kornblith et al. 2019),
/// as `ecco.analysis.cka(acts1, acts2)`, i.e. Google's
/// `cka_lib.feature_space_linear_cka(acts1.T, acts2.T)` (biased estimator):
/// with `A`, `B` the neuron-centred matrices,
/// `‖A Bᵀ‖²_F / (‖A Aᵀ‖_F ‖B Bᵀ‖_F)`. Unlike CCA it needs no more tokens than neurons.
///
/// # Errors
///
/// [`Error::DimensionMismatch`] if the token counts differ, [`Error::Degenerate`] if
/// either matrix is constant over the tokens, and the input errors of
/// [`canonical_correlations`](crate::canonical_correlations).
///
/// # Example
///
/// ```
/// use nalgebra::DMatrix;
/// let a = DMatrix::from_fn(50, 10, |i, j| ((i * 7 + j * j) % 13) as f64);
/// let rotated = DMatrix::from_fn(50, 10, |i, j| 3.0 * a[(i, j)] + 1.0); // scaled, shifted
/// assert!((ecco_factor::cka(&a, &rotated)? - 1.0).abs() < 1e-12);
/// # Ok::<(), ecco_factor::Error>(())
/// ```
pub fn cka(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>) -> Result<f64> {
    check_pair(acts1, acts2)?;
    let a = center_rows(acts1);
    let b = center_rows(acts2);
    let cross = (&a * b.transpose()).norm_squared();
    let norm_a = (&a * a.transpose()).norm();
    let norm_b = (&b * b.transpose()).norm();
    if norm_a == 0.0 || norm_b == 0.0 {
        let which = if norm_a == 0.0 { "acts1" } else { "acts2" };
        return Err(Error::Degenerate(format!("every neuron of {which} is constant over the tokens")));
    }
    Ok(cross / (norm_a * norm_b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_is_degenerate() {
        let a = DMatrix::from_fn(3, 8, |i, j| (i + j) as f64);
        let c = DMatrix::from_element(3, 8, 2.0);
        assert!(matches!(cka(&a, &c), Err(Error::Degenerate(_))));
    }

    #[test]
    fn bounded_and_symmetric() -> Result<()> {
        let a = DMatrix::from_fn(4, 20, |i, j| (((i + 1) * (j + 3) * 17) % 11) as f64);
        let b = DMatrix::from_fn(6, 20, |i, j| (((i + 5) * (j + 1) * 23) % 13) as f64);
        let ab = cka(&a, &b)?;
        assert!((ab - cka(&b, &a)?).abs() < 1e-12);
        assert!(ab > 0.0 && ab < 1.0);
        Ok(())
    }
}
