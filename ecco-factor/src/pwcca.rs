//! Projection-weighted CCA as Ecco 0.1.2's `ecco.analysis.pwcca` computes it.
//!
//! A port of Google's svcca `pwcca.compute_pwcca` (bundled as
//! `ecco/svcca_lib/pwcca.py`), `epsilon = 1e-10`. Two of its details change the
//! number and are kept:
//!
//! * the CCA directions are `coefᵀ (acts − means) + means`: each neuron's mean is added
//!   back to the *direction* of the same index. That makes the result depend on the
//!   signs of the singular vectors, which numpy leaves to LAPACK; we fix them like
//!   scikit-learn's `svd_flip` (largest-magnitude entry of each left singular vector
//!   positive). Ecco run with that convention agrees with this port to 1e-4; with
//!   LAPACK's own signs it typically differs by about 1e-2.
//! * when `acts1` keeps more neurons than `acts2`, the code projects `acts1`'s rows
//!   (picked with `acts2`'s mask) on `acts2`'s directions. With equal neuron counts
//!   numpy runs that and we reproduce it; with different counts numpy raises an
//!   `IndexError`, and we use `acts2`'s rows, which is what the code means.

use nalgebra::DMatrix;

use crate::cca::{EPSILON, cca_core};
use crate::error::{Error, Result};

/// PWCCA similarity of two `[neurons, tokens]` activation matrices (Morcos et al.
/// 2018): the canonical correlations averaged with weights given by how much of the
/// smaller side's activations each CCA direction accounts for, as
/// `ecco.analysis.pwcca(acts1, acts2)` (see the module notes for the two points
/// where the result can differ from Ecco's).
///
/// # Errors
///
/// As [`canonical_correlations`](crate::canonical_correlations), plus
/// [`Error::Degenerate`] if the projection weights are all zero.
///
/// # Example
///
/// ```
/// use nalgebra::DMatrix;
/// let a = DMatrix::from_fn(4, 30, |i, j| (((i + 2) * (j + 3) * 41) % 19) as f64);
/// let b = DMatrix::from_fn(6, 30, |i, j| a[(i % 4, j)] + ((i * j) % 3) as f64);
/// let score = ecco_factor::pwcca(&a, &b)?;
/// assert!(score > 0.0 && score <= 1.0 + 1e-9);
/// # Ok::<(), ecco_factor::Error>(())
/// ```
pub fn pwcca(acts1: &DMatrix<f64>, acts2: &DMatrix<f64>) -> Result<f64> {
    let core = cca_core(acts1, acts2, EPSILON)?;
    let (coef, rows_from, idxs, means, acts) = if core.x_idxs.len() <= core.y_idxs.len() {
        // coef_x = u.T, rows of the kept neurons of acts1.
        (core.svd.u.transpose(), acts1, &core.x_idxs, &core.means1, acts1)
    } else {
        // coef_y = v (numpy's vh). Ecco indexes acts1 with acts2's mask here.
        let rows_from = if acts1.nrows() == acts2.nrows() { acts1 } else { acts2 };
        (core.svd.vt.clone(), rows_from, &core.y_idxs, &core.means2, acts2)
    };
    let tokens = acts1.ncols();
    let n = idxs.len();
    // dirns = coef · (rows − means) + means, [n, tokens].
    let centered = DMatrix::from_fn(n, tokens, |i, t| rows_from[(idxs[i], t)] - means[idxs[i]]);
    let mut dirns = coef * centered;
    for (i, mut row) in dirns.row_iter_mut().enumerate() {
        row.add_scalar_mut(means[idxs[i]]);
    }
    // P, _ = np.linalg.qr(dirns.T); weights = sum(|Pᵀ acts[idxs]ᵀ|, axis=1).
    let p = dirns.transpose().qr().q();
    let kept = acts.select_rows(idxs);
    let proj = p.transpose() * kept.transpose();
    let weights: Vec<f64> = proj.row_iter().map(|r| r.iter().map(|v| v.abs()).sum()).collect();
    let total: f64 = weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(Error::Degenerate("PWCCA projection weights are all zero".into()));
    }
    Ok(weights.iter().zip(core.coefs.iter()).map(|(w, c)| w / total * c).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_inputs_score_one() -> Result<()> {
        let a = DMatrix::from_fn(5, 40, |i, j| (((i + 1) * (j + 2) * 53) % 29) as f64);
        assert!((pwcca(&a, &a)? - 1.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn wider_first_argument_is_accepted() -> Result<()> {
        // Ecco raises IndexError here; we project acts2's rows.
        let a = DMatrix::from_fn(6, 40, |i, j| (((i + 1) * (j + 2) * 53) % 29) as f64);
        let b = a.rows(0, 4).into_owned();
        let s = pwcca(&a, &b)?;
        assert!((s - 1.0).abs() < 1e-6, "{s}");
        Ok(())
    }
}
