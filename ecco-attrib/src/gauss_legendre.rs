//! Gauss-Legendre quadrature on `[0, 1]`, as captum's integrated gradients uses by default
//! (`captum/attr/_utils/approximation_methods.py`, `gauss_legendre_builders`: numpy's
//! `leggauss(n)` nodes `x` and weights `w` mapped to `alpha = (x + 1) / 2`, `step = w / 2`).

/// `(alphas, weights)` of the `n`-point rule on `[0, 1]`, alphas ascending.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut alphas = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for i in 0..n {
        // Newton's method on P_n from the Chebyshev-like initial guess, roots descending.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            let (p, dp) = legendre(n, x);
            derivative = dp;
            let dx = p / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        let (_, dp) = legendre(n, x);
        if dp.is_finite() {
            derivative = dp;
        }
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        alphas.push(0.5 * (x + 1.0));
        weights.push(0.5 * w);
    }
    alphas.reverse();
    weights.reverse();
    (alphas, weights)
}

/// `P_n(x)` and `P_n'(x)` by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    let dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, dp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_polynomials_exactly() {
        let (a, w) = gauss_legendre(50);
        assert_eq!(a.len(), 50);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // An n-point rule is exact up to degree 2n - 1: integral of x^9 on [0, 1] is 0.1.
        let integral: f64 = a.iter().zip(&w).map(|(x, w)| w * x.powi(9)).sum();
        assert!((integral - 0.1).abs() < 1e-12);
        assert!(a.windows(2).all(|p| p[0] < p[1]) && a[0] > 0.0 && a[49] < 1.0);
        // numpy.polynomial.legendre.leggauss(2): nodes -+1/sqrt(3), weights 1.
        let (a2, w2) = gauss_legendre(2);
        assert!((a2[0] - 0.5 * (1.0 - 1.0 / 3f64.sqrt())).abs() < 1e-14 && (w2[0] - 0.5).abs() < 1e-14);
    }
}
