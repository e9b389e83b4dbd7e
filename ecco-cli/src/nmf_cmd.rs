//! `ecco nmf`: factorise a trace's FFN activations (Ecco's `run_nmf`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ecco::{NmfOptions, NmfOutcome, Output, views};
use serde_json::json;

use crate::write::{Outputs, check_writable};

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
    /// Also write the NMF explorer as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write the factors x positions heatmap as a static SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// `ecco nmf`.
pub fn nmf(args: &NmfArgs) -> Result<()> {
    check_writable(args.html.as_deref(), "--html")?;
    check_writable(args.svg.as_deref(), "--svg")?;
    let output = Output::load(&args.trace)?;
    let opts = NmfOptions {
        components: args.components,
        from_layer: args.from_layer,
        to_layer: args.to_layer,
        layers: args.layers.clone(),
        seed: args.seed,
        max_iter: args.max_iter,
        tol: args.tol,
        top_neurons: args.top_neurons,
        progress: true,
    };
    let out = output.run_nmf(&opts).with_context(|| args.trace.display().to_string())?;
    if let Some(asked) = out.clamped_from {
        eprintln!("note: --components {asked} is more than the {} positions; using {} (as Ecco does)", out.positions, out.positions);
    }
    let trace = output.trace();
    let NmfOutcome { layers, components, loadings, positions, .. } = out.clone();
    let k = components.len();
    if args.html.is_some() || args.svg.is_some() {
        let view = views::nmf_view(layers.clone(), &components, loadings.clone(), out.reconstruction_error);
        let mut outputs = Outputs::default();
        if let Some(path) = &args.svg {
            outputs.stage(path, ecco_viz::nmf_svg(&view, &ecco_viz::TokensView::from_trace(trace)).as_bytes())?;
        }
        if let Some(path) = &args.html {
            let report = views::single_view_report(trace, "NMF factors", |r| r.nmf = Some(view))?;
            outputs.html(path, &report)?;
        }
        outputs.commit()?;
    }
    let tokens = &trace.tokens[..positions.min(trace.tokens.len())];
    if args.json {
        let out = json!({
            "n_components": k,
            "components": components,
            "reconstruction_error": out.reconstruction_error,
            "n_iter": out.n_iter,
            "converged": out.converged,
            "layers": layers,
            "tokens": tokens,
            "loadings": loadings,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    outln!(
        "NMF of {positions} positions x {} neurons (layers {layers:?}) into {k} factors: error {:.4}, {} iterations",
        out.features,
        out.reconstruction_error,
        out.n_iter
    )?;
    for (c, strengths) in components.iter().enumerate() {
        let best = strengths.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        outln!("factor {c:>2}: strongest at position {best} ({:?})", tokens.get(best).map_or("", String::as_str))?;
    }
    Ok(())
}
