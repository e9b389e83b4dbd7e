//! Seeded random initialisation of the NMF factors.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Random non-negative starting factors on scikit-learn's `init='random'` scale.
///
/// scikit-learn's `_initialize_nmf` draws `H = avg * |N(0, 1)|` `[k, n_features]`
/// first, then `W = avg * |N(0, 1)|` `[n_samples, k]`, with
/// `avg = sqrt(X.mean() / k)`, so that `W H` starts at the data's mean level. We keep
/// that scale and draw order but not numpy's random stream, which cannot be
/// reproduced; the draws come from `StdRng::seed_from_u64(seed)` and are deterministic
/// for a seed (and a `rand` version).
///
/// Returns `(Wᵀ [k, n_samples], H [k, n_features])`: the solver keeps `W` transposed
/// so that both half-steps solve the same `[k, m]` problem.
pub(crate) fn random_init(mean: f64, k: usize, n_samples: usize, n_features: usize, seed: u64) -> (DMatrix<f32>, DMatrix<f32>) {
    let avg = (mean / k as f64).sqrt();
    let mut rng = StdRng::seed_from_u64(seed);
    let draw = |rng: &mut StdRng| {
        let z: f64 = StandardNormal.sample(rng);
        (avg * z.abs()) as f32
    };
    // Row-major draws, as numpy fills `standard_normal(size=(rows, cols))`.
    let h_rows: Vec<f32> = (0..k * n_features).map(|_| draw(&mut rng)).collect();
    let w_rows: Vec<f32> = (0..n_samples * k).map(|_| draw(&mut rng)).collect();
    let h = DMatrix::from_row_slice(k, n_features, &h_rows);
    // W is [n_samples, k] row-major, i.e. Wᵀ [k, n_samples] column-major.
    let wt = DMatrix::from_vec(k, n_samples, w_rows);
    (wt, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_determinism() {
        let (wt, h) = random_init(2.0, 4, 50, 400, 9);
        assert_eq!(wt.shape(), (4, 50));
        assert_eq!(h.shape(), (4, 400));
        assert!(wt.iter().chain(h.iter()).all(|&v| v >= 0.0));
        // E|N(0,1)| = sqrt(2/pi); avg = sqrt(2/4).
        let expected = (0.5_f64).sqrt() * (2.0 / std::f64::consts::PI).sqrt();
        let mean = h.iter().map(|&v| f64::from(v)).sum::<f64>() / h.len() as f64;
        assert!((mean - expected).abs() < 0.05 * expected, "{mean} vs {expected}");
        let (wt2, h2) = random_init(2.0, 4, 50, 400, 9);
        assert_eq!((&wt, &h), (&wt2, &h2));
        let (_, h3) = random_init(2.0, 4, 50, 400, 10);
        assert_ne!(h2, h3);
    }
}
