//! NMF on a distilgpt2-sized FFN activation matrix: 157 positions × 18432 neurons
//! (6 layers × 3072), 10 components, as `ecco nmf` runs it.
//!
//! The matrix is `ecco_factor::synthetic_activations(157, 18432, 12, 1234)`, which
//! `scripts/fixtures/factor.py --big` reproduces bit for bit to time scikit-learn on
//! it; its figures are in `fixtures/factor/big_reference.json` and printed here for
//! comparison.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ecco_factor::{Nmf, synthetic_activations};

fn sklearn_reference() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/factor/big_reference.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let line = |key: &str| -> Option<String> {
        let r = &json[key];
        Some(format!(
            "{key}: {:.3} s (best of {}), error {:.4}, {} iterations",
            r["seconds_min"].as_f64()?,
            r["seconds"].as_array()?.len(),
            r["reconstruction_error"].as_f64()?,
            r["n_iter"].as_u64()?
        ))
    };
    Some(format!("{}; {}", line("sklearn_f32")?, line("sklearn_f64")?))
}

fn benches(c: &mut Criterion) {
    let x = synthetic_activations(157, 18432, 12, 1234);
    let nmf = Nmf::new(10).seed(0);
    if let Some(reference) = sklearn_reference() {
        eprintln!("scikit-learn on the same matrix: {reference}");
    }
    let fit = match nmf.fit(&x) {
        Ok(fit) => fit,
        Err(e) => panic!("benchmark set-up failed (fitting the NMF once): {e}"),
    };
    eprintln!("ecco-factor: error {:.4}, {} iterations", fit.reconstruction_error, fit.n_iter);
    let mut group = c.benchmark_group("nmf/157x18432_k10");
    group.sample_size(10);
    group.bench_function("lin_pg", |b| b.iter(|| nmf.fit(black_box(&x))));
    group.finish();
}

criterion_group!(nmf, benches);
criterion_main!(nmf);
