//! Singular-vector CCA as Ecco 0.1.2's `ecco.analysis.svcca` computes it.

use nalgebra::DMatrix;

use crate::cca::{EPSILON, cca_core, check_pair};
use crate::error::{Error, Result};
use crate::linalg::{center_rows, svd};

/// Ecco's default number of SVD directions kept by [`svcca`].
pub const SVCCA_DEFAULT_DIMS: usize = 20;

/// SVCCA similarity of two `[neurons, tokens]` activation matrices
/// (Raghu et al. 2017), as `ecco.analysis.svcca(acts1, acts2, dims)`:
/// subtract each neuron's mean, keep the top `dims` singular directions of each
/// matrix (`diag(s[:dims]) · Vᵀ[:dims]`, `[dims, tokens]`), run CCA on those, and
/// return the mean of **all** the canonical correlations (unlike [`cca`](crate::cca),
/// no 98 % cut).
///
/// # Errors
///
/// [`Error::InvalidParameter`] if `dims` is 0 or more than `min(neurons, tokens)` of
/// either matrix (numpy fails to broadcast there), [`Error::Degenerate`] if
/// `dims >= tokens` or a matrix is constant, and the input errors of
/// [`canonical_correlations`](crate::canonical_correlations).
///
/// # Example
///
/// ```
/// use nalgebra::DMatrix;
/// let a = DMatrix::from_fn(6, 40, |i, j| (((i + 3) * (j + 1) * 37) % 23) as f64);
/// let b = DMatrix::from_fn(5, 40, |i, j| a[(i, j)] - 0.5 * a[(i + 1, j)]);
/// let score = ecco_factor::svcca(&a, &b, 4)?;
/// assert!(score > 0.5 && score <= 1.0 + 1e-9);
/// # Ok::<(), ecco_factor::Error>(())
/// ```
pub fn svcca(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>, dims: usize) -> Result<f64> {
    check_pair(acts1, acts2)?;
    let sv1 = top_directions(acts1, dims, "acts1")?;
    let sv2 = top_directions(acts2, dims, "acts2")?;
    let coefs = cca_core(&sv1, &sv2, EPSILON)?.coefs;
    Ok(coefs.iter().sum::<f64>() / coefs.len() as f64)
}

/// `diag(s[:dims]) · Vᵀ[:dims]` of the row-centred matrix. Singular vector signs do
/// not matter: CCA is invariant to them.
fn top_directions(acts: &DMatrix<f64>, dims: usize, name: &str) -> Result<DMatrix<f64>> {
    let rank_bound = acts.nrows().min(acts.ncols());
    if dims == 0 || dims > rank_bound {
        return Err(Error::InvalidParameter(format!(
            "SVCCA dims must be in 1..={rank_bound} for {name} ({} x {}), got {dims}",
            acts.nrows(),
            acts.ncols()
        )));
    }
    let dec = svd(center_rows(acts), name)?;
    let mut out = dec.vt.rows(0, dims).into_owned();
    for (i, mut row) in out.row_iter_mut().enumerate() {
        row *= dec.s[i];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_are_checked() {
        let a = DMatrix::from_fn(5, 30, |i, j| ((i * 13 + j * 7) % 11) as f64);
        assert!(matches!(svcca(&a, &a, 0), Err(Error::InvalidParameter(_))));
        assert!(matches!(svcca(&a, &a, 6), Err(Error::InvalidParameter(_))));
        assert!(svcca(&a, &a, 5).is_ok());
    }

    #[test]
    fn identical_inputs_score_one() -> Result<()> {
        let a = DMatrix::from_fn(8, 50, |i, j| (((i + 1) * (j + 5) * 131) % 97) as f64);
        assert!((svcca(&a, &a, 5)? - 1.0).abs() < 1e-6);
        Ok(())
    }
}
