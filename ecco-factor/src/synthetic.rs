//! A seeded, activation-like test matrix that `scripts/fixtures/factor.py` reproduces
//! bit for bit, so benchmarks and parity tests need no stored data.

use nalgebra::DMatrix;

/// splitmix64's increment (Steele, Lea & Flood 2014, "Fast splittable pseudorandom
/// number generators").
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const SQRT3: f64 = 1.732_050_807_568_877_2;

/// Draw `index` (0-based) of the splitmix64 stream `seed`, as a counter-based
/// generator: `mix(seed + (index + 1) * GOLDEN)`.
fn splitmix(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(GOLDEN.wrapping_mul(index.wrapping_add(1)));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in `[0, 1)` with 53 random bits (exact in `f64`).
fn uniform(seed: u64, index: u64) -> f64 {
    (splitmix(seed, index) >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// Irwin–Hall approximation of a standard normal: `(u1 + u2 + u3 + u4 - 2) * sqrt(3)`,
/// summed left to right so that numpy gets the same bits.
fn normal(seed: u64, element: u64) -> f64 {
    let base = 4 * element;
    let s = ((uniform(seed, base) + uniform(seed, base + 1)) + uniform(seed, base + 2)) + uniform(seed, base + 3);
    (s - 2.0) * SQRT3
}

/// A `[positions, neurons]` matrix shaped like clipped FFN activations:
/// `max(0, 0.5 * U V + 0.3 * noise - 0.2)` with a sparse non-negative `U`
/// `[positions, rank]` (half its entries zero), Gaussian-like `V` `[rank, neurons]` and
/// noise, all from seeded splitmix64 streams.
///
/// About 40 % of the entries are non-zero. The same call in
/// `scripts/fixtures/factor.py` (`synthetic_activations`) gives identical `f32`
/// values: every step is integer or plain IEEE `f64` arithmetic in the same order, with
/// no fused multiply-add. The benchmark matrix is `synthetic_activations(157, 18432,
/// 12, 1234)`.
///
/// ```
/// let x = ecco_factor::synthetic_activations(5, 7, 2, 0);
/// assert_eq!(x.shape(), (5, 7));
/// assert!(x.iter().all(|&v| v >= 0.0));
/// assert_eq!(x, ecco_factor::synthetic_activations(5, 7, 2, 0));
/// ```
pub fn synthetic_activations(positions: usize, neurons: usize, rank: usize, seed: u64) -> DMatrix<f32> {
    let base = seed.wrapping_mul(4);
    let [s_u, s_keep, s_v, s_noise] = [0, 1, 2, 3].map(|i| base.wrapping_add(i));
    // Row-major element counters, as numpy's reshape uses.
    let u: Vec<f64> =
        (0..positions * rank).map(|e| if uniform(s_keep, e as u64) < 0.5 { normal(s_u, e as u64).abs() } else { 0.0 }).collect();
    let v: Vec<f64> = (0..rank * neurons).map(|e| normal(s_v, e as u64)).collect();
    DMatrix::from_fn(positions, neurons, |p, n| {
        let mut acc = 0.0_f64;
        for k in 0..rank {
            acc += u[p * rank + k] * v[k * neurons + n];
        }
        let noise = normal(s_noise, (p * neurons + n) as u64);
        let t = (0.5 * acc + 0.3 * noise) - 0.2;
        t.max(0.0) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_in_range_and_normals_are_standardised() {
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|i| normal(42, i)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        assert!((0..1000).map(|i| uniform(7, i)).all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn first_splitmix_output_matches_the_reference_generator() {
        // splitmix64 seeded with 0: first output per Vigna's reference implementation.
        assert_eq!(splitmix(0, 0), 0xE220_A839_7B1D_CDAF);
    }
}
