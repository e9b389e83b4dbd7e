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
/// The draws come first ([`draw`], while the data is being read) and the scale is
/// applied once the mean is known ([`Draws::scale`]), which returns
/// `(Wᵀ [k, n_samples], H [k, n_features])`: the solver keeps `W` transposed so that
/// both half-steps solve the same `[k, m]` problem.
pub(crate) fn draw(k: usize, n_samples: usize, n_features: usize, seed: u64) -> Draws {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draws = |count: usize| -> Vec<f64> {
        (0..count)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                z.abs()
            })
            .collect()
    };
    // Row-major draws, as numpy fills `standard_normal(size=(rows, cols))`.
    let h = draws(k * n_features);
    let w = draws(n_samples * k);
    Draws { k, n_samples, n_features, h, w }
}

/// The `|N(0, 1)|` draws of [`draw`], in draw order, before the scale (which needs
/// the data's mean) is known.
pub(crate) struct Draws {
    k: usize,
    n_samples: usize,
    n_features: usize,
    /// `H` `[k, n_features]`, row-major.
    h: Vec<f64>,
    /// `W` `[n_samples, k]`, row-major.
    w: Vec<f64>,
}

impl Draws {
    /// `(Wᵀ [k, n_samples], H [k, n_features])` on the scale of data of mean `mean`.
    pub(crate) fn scale(self, mean: f64) -> (DMatrix<f32>, DMatrix<f32>) {
        let avg = (mean / self.k as f64).sqrt();
        let scaled = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|z| (avg * z) as f32).collect() };
        let h = DMatrix::from_row_slice(self.k, self.n_features, &scaled(self.h));
        // W is [n_samples, k] row-major, i.e. Wᵀ [k, n_samples] column-major.
        let wt = DMatrix::from_vec(self.k, self.n_samples, scaled(self.w));
        (wt, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_determinism() {
        let (wt, h) = draw(4, 50, 400, 9).scale(2.0);
        assert_eq!(wt.shape(), (4, 50));
        assert_eq!(h.shape(), (4, 400));
        assert!(wt.iter().chain(h.iter()).all(|&v| v >= 0.0));
        // E|N(0,1)| = sqrt(2/pi); avg = sqrt(2/4).
        let expected = (0.5_f64).sqrt() * (2.0 / std::f64::consts::PI).sqrt();
        let mean = h.iter().map(|&v| f64::from(v)).sum::<f64>() / h.len() as f64;
        assert!((mean - expected).abs() < 0.05 * expected, "{mean} vs {expected}");
        let (wt2, h2) = draw(4, 50, 400, 9).scale(2.0);
        assert_eq!((&wt, &h), (&wt2, &h2));
        let (_, h3) = draw(4, 50, 400, 10).scale(2.0);
        assert_ne!(h2, h3);
    }
}
