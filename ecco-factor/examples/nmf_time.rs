//! Times NMF on the benchmark matrix of `benches/benches/nmf.rs` (157 × 18432, 10
//! components, seed 0, default options) without criterion, so that it builds with
//! `ecco-factor` alone:
//!
//! ```text
//! cargo run --release -p ecco-factor --example nmf_time [runs] [threads]
//! ```
//!
//! Prints each run's wall time, CPU time (all threads, from Linux `/proc/self/stat`,
//! to 10 ms; 0 elsewhere), iterations and reconstruction error,
//! then the medians (default 5 runs; `threads` as [`Nmf::threads`], default rayon's
//! pool). On a busy machine the CPU time is the steadier figure.

use std::time::Instant;

use ecco_factor::{Nmf, synthetic_activations};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let threads: Option<usize> = args.next().map(|a| a.parse()).transpose()?;
    let x = synthetic_activations(157, 18432, 12, 1234);
    let mut nmf = Nmf::new(10).seed(0);
    if let Some(t) = threads {
        nmf = nmf.threads(t);
    }
    let (mut times, mut cpu_times) = (Vec::new(), Vec::new());
    for run in 0..runs.max(1) {
        let cpu0 = cpu_seconds();
        let start = Instant::now();
        let fit = nmf.fit(&x)?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        println!(
            "run {run}: {secs:.4} s wall, {cpu:.4} s CPU, {} iterations, error {:.4}, rel. gradient {:.2e}",
            fit.n_iter, fit.reconstruction_error, fit.rel_projected_gradient
        );
        times.push(secs);
        cpu_times.push(cpu);
    }
    times.sort_by(f64::total_cmp);
    cpu_times.sort_by(f64::total_cmp);
    println!(
        "median {:.4} s wall (min {:.4}), {:.4} s CPU over {} runs (scikit-learn f32: 0.774 s, error 626.3012, 107 iterations)",
        times[times.len() / 2],
        times[0],
        cpu_times[cpu_times.len() / 2],
        times.len()
    );
    Ok(())
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in
/// 100 Hz ticks), 0 where that is not available.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
