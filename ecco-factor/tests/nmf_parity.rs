//! NMF quality against scikit-learn (what Ecco's `run_nmf` uses) on the fixtures.

mod common;

use common::{TestResult, json, matrices, num};
use ecco_factor::{Nmf, synthetic_activations};

/// User + system CPU time of this process (Linux `/proc/self/stat`, 100 Hz ticks), 0
/// elsewhere: a timing that a busy machine disturbs less than wall time.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(after) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Our error may exceed scikit-learn's by at most 1 %.
const MAX_RATIO: f64 = 1.01;

#[test]
fn small_matrices_match_sklearn_quality() -> TestResult {
    let reference = json("nmf_reference.json")?;
    let mats = matrices("nmf_inputs.safetensors")?;
    let cases = reference["cases"].as_array().ok_or("no cases")?;
    assert!(cases.len() >= 6, "fixture lost its cases");
    let mut worst: f64 = 0.0;
    for case in cases {
        let name = case["matrix"].as_str().ok_or("no matrix name")?;
        let k = case["k"].as_u64().ok_or("no k")? as usize;
        let x = &mats.iter().find(|(n, _)| n == name).ok_or("missing matrix")?.1;
        assert!((x.map(f64::from).norm() - num(case, "x_norm")?).abs() < 1e-6 * num(case, "x_norm")?);
        let fit = Nmf::new(k).seed(0).fit(x)?;
        let sk = num(case, "reconstruction_error")?;
        let ratio = fit.reconstruction_error / sk;
        println!(
            "{name} k={k}: ours {:.6} ({} iters) sklearn {sk:.6} ({} iters) ratio {ratio:.5}",
            fit.reconstruction_error, fit.n_iter, case["n_iter"]
        );
        worst = worst.max(ratio);
        assert!(fit.converged, "{name} k={k} did not converge");
    }
    assert!(worst <= MAX_RATIO, "worst error ratio {worst}");
    Ok(())
}

#[test]
fn benchmark_matrix_is_reproduced_and_matches_sklearn_quality() -> TestResult {
    let reference = json("big_reference.json")?;
    let (p, n) = (num(&reference, "positions")? as usize, num(&reference, "neurons")? as usize);
    let rank = num(&reference, "rank")? as usize;
    let seed = num(&reference, "seed")? as u64;
    let k = num(&reference, "components")? as usize;
    let x = synthetic_activations(p, n, rank, seed);

    // Same bits as the script's matrix.
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    let sum_sq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    assert!((sum - num(&reference, "checksum_f64_sum")?).abs() < 1e-9 * sum);
    assert!((sum_sq - num(&reference, "checksum_f64_sum_sq")?).abs() < 1e-9 * sum_sq);
    let corner = reference["corner"].as_array().ok_or("no corner")?;
    for (i, v) in corner.iter().enumerate() {
        // serde_json's default float parsing may be 1 ulp off in f64; f32 is exact.
        assert_eq!(x[(i / 4, i % 4)], v.as_f64().ok_or("corner value")? as f32);
    }

    let cpu0 = process_cpu_seconds();
    let start = std::time::Instant::now();
    let fit = Nmf::new(k).seed(0).fit(&x)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    let sk = &reference["sklearn_f32"];
    let ratio = fit.reconstruction_error / num(sk, "reconstruction_error")?;
    println!(
        "{p}x{n} k={k}: ours {:.4} in {secs:.3}s wall, {cpu:.2}s CPU ({} iters), sklearn {:.4} in {:.3}s ({} iters), ratio {ratio:.5}",
        fit.reconstruction_error,
        fit.n_iter,
        num(sk, "reconstruction_error")?,
        num(sk, "seconds_min")?,
        sk["n_iter"]
    );
    assert!(ratio <= MAX_RATIO, "error ratio {ratio}");
    Ok(())
}
