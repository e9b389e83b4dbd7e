//! `ecco nmf`: factorise a trace's FFN activations (Ecco's `run_nmf`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_core::{ModelKind, TraceBundle};
use ecco_factor::{Nmf, activation_matrix};
use serde_json::json;

use crate::progress;

/// Arguments of `ecco nmf`.
#[derive(Debug, Args)]
pub struct NmfArgs {
    /// A trace bundle made with `--activations`.
    #[arg(long, value_name = "DIR")]
    trace: PathBuf,
    /// Number of factors.
    #[arg(long, value_name = "K")]
    components: usize,
    /// First layer to include (a real layer number).
    #[arg(long, value_name = "A", conflicts_with = "layers")]
    from_layer: Option<usize>,
    /// Layer to stop before (exclusive; default: past the last one).
    #[arg(long, value_name = "B", conflicts_with = "layers")]
    to_layer: Option<usize>,
    /// Exactly these layers, comma separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most outer iterations.
    #[arg(long, default_value_t = 500)]
    max_iter: usize,
    /// Stop when the projected gradient falls below this fraction of its initial norm.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// How many top neurons to list per component.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top_neurons: usize,
    /// Print JSON (the documented shape) instead of a summary.
    #[arg(long)]
    json: bool,
}

/// `ecco nmf`.
pub fn nmf(args: &NmfArgs) -> Result<()> {
    let bundle = TraceBundle::read(&args.trace).with_context(|| format!("cannot read trace {}", args.trace.display()))?;
    let trace = &bundle.trace;
    let stack = if trace.model.model_type == ModelKind::Masked { "encoder" } else { "decoder" };
    let name = format!("activations.{stack}");
    let Some(acts) = bundle.tensors.get(&name) else {
        bail!("{}: the trace has no FFN activations: make it with `--activations`", args.trace.display());
    };
    let [n_stored, neurons, positions] = match acts.shape[..] {
        [a, b, c] => [a, b, c],
        _ => bail!("{name} has shape {:?}, expected [layers, neurons, positions]", acts.shape),
    };
    // Real layer numbers of the stored layers: `--layers` at capture time may have chosen some.
    let stored: Vec<usize> = trace.activation_layers.clone().unwrap_or_else(|| (0..n_stored).collect());
    if stored.len() != n_stored {
        bail!("trace.json lists {} activation layers but {name} holds {n_stored}", stored.len());
    }
    let wanted: Vec<usize> = match &args.layers {
        Some(list) => list.clone(),
        None => {
            let from = args.from_layer.unwrap_or(0);
            let to = args.to_layer.unwrap_or(trace.model.n_layers);
            if from >= to {
                bail!("--from-layer {from} must be below --to-layer {to}");
            }
            stored.iter().copied().filter(|l| (from..to).contains(l)).collect()
        }
    };
    if wanted.is_empty() {
        bail!("the layer selection is empty (the trace holds layers {stored:?})");
    }
    let mut indices = Vec::with_capacity(wanted.len());
    for layer in &wanted {
        match stored.iter().position(|l| l == layer) {
            Some(i) => indices.push(i),
            None => bail!("layer {layer} is not in the trace (it holds layers {stored:?})"),
        }
    }
    let mut chosen: Vec<(usize, usize)> = wanted.iter().copied().zip(indices).collect();
    chosen.sort_unstable();
    chosen.dedup();
    let layers: Vec<usize> = chosen.iter().map(|c| c.0).collect();
    let indices: Vec<usize> = chosen.iter().map(|c| c.1).collect();
    let x = activation_matrix(&acts.data, [n_stored, neurons, positions], &indices)?;

    if args.components == 0 {
        bail!("--components must be at least 1");
    }
    let bar = progress::bar(1000, "nmf");
    let log_tol = args.tol.ln();
    let fit = Nmf::new(args.components).seed(args.seed).max_iter(args.max_iter).tol(args.tol).fit_with_progress(&x, |_, rel| {
        if rel > 0.0 && log_tol < 0.0 {
            bar.set_position(((rel.ln() / log_tol).clamp(0.0, 1.0) * 1000.0) as u64);
        }
    });
    bar.finish_and_clear();
    let fit = fit?;
    if let Some(asked) = fit.clamped_from {
        eprintln!("note: --components {asked} is more than the {positions} positions; using {positions} (as Ecco does)");
    }
    let k = fit.w.ncols();
    let components: Vec<Vec<f32>> = (0..k).map(|c| fit.w.column(c).iter().copied().collect()).collect();
    let loadings: Vec<Vec<serde_json::Value>> = (0..k)
        .map(|c| {
            let row: Vec<f32> = fit.h.row(c).iter().copied().collect();
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order
                .into_iter()
                .take(args.top_neurons)
                .map(|f| json!({"layer": layers[f / neurons], "neuron": f % neurons, "weight": row[f]}))
                .collect()
        })
        .collect();
    let tokens = &trace.tokens[..positions.min(trace.tokens.len())];
    if args.json {
        let out = json!({
            "n_components": k,
            "components": components,
            "reconstruction_error": fit.reconstruction_error,
            "n_iter": fit.n_iter,
            "converged": fit.converged,
            "layers": layers,
            "tokens": tokens,
            "loadings": loadings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "NMF of {positions} positions x {} neurons (layers {layers:?}) into {k} factors: error {:.4}, {} iterations",
        x.ncols(),
        fit.reconstruction_error,
        fit.n_iter
    );
    for (c, strengths) in components.iter().enumerate() {
        let best = strengths.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        println!("factor {c:>2}: strongest at position {best} ({:?})", tokens.get(best).map_or("", String::as_str));
    }
    Ok(())
}
