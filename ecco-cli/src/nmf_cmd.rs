//! `ecco nmf`: factorise a trace's FFN activations (Ecco's `run_nmf`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_core::{ModelKind, TraceBundle};
use ecco_factor::{Nmf, activation_matrix};
use serde_json::json;

use crate::progress;
use crate::views::{self, check_writable};
use ecco_viz::NeuronLoading;

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

/// What to factorise and how: the options `ecco nmf` and `ecco report` share.
#[derive(Clone, Debug)]
pub struct NmfOptions {
    /// Number of factors.
    pub components: usize,
    /// `[from, to)` layer range, when no list is given.
    pub from_layer: Option<usize>,
    /// Exclusive end of the range.
    pub to_layer: Option<usize>,
    /// Exactly these layers.
    pub layers: Option<Vec<usize>>,
    /// Seed of the random initialisation.
    pub seed: u64,
    /// Most outer iterations.
    pub max_iter: usize,
    /// Relative projected-gradient tolerance.
    pub tol: f64,
    /// Top neurons listed per factor.
    pub top_neurons: usize,
}

/// A factorisation's results, ready to print or show.
#[derive(Clone, Debug)]
pub struct NmfOutcome {
    /// The layers factorised.
    pub layers: Vec<usize>,
    /// `[factor][position]` strengths.
    pub components: Vec<Vec<f32>>,
    /// Per factor, its top neurons.
    pub loadings: Vec<Vec<NeuronLoading>>,
    /// Frobenius norm of `X - W·H`.
    pub reconstruction_error: f64,
    /// Outer iterations run.
    pub n_iter: usize,
    /// Whether the tolerance was reached.
    pub converged: bool,
    /// Positions (rows of `X`).
    pub positions: usize,
    /// Neurons of the selected layers (columns of `X`).
    pub features: usize,
}

/// `ecco nmf`.
pub fn nmf(args: &NmfArgs) -> Result<()> {
    check_writable(args.html.as_deref(), "--html")?;
    check_writable(args.svg.as_deref(), "--svg")?;
    let bundle = TraceBundle::read(&args.trace).with_context(|| format!("cannot read trace {}", args.trace.display()))?;
    let opts = NmfOptions {
        components: args.components,
        from_layer: args.from_layer,
        to_layer: args.to_layer,
        layers: args.layers.clone(),
        seed: args.seed,
        max_iter: args.max_iter,
        tol: args.tol,
        top_neurons: args.top_neurons,
    };
    let out = factorise(&bundle, &args.trace, &opts)?;
    let trace = &bundle.trace;
    let NmfOutcome { layers, components, loadings, positions, .. } = out.clone();
    let k = components.len();
    if args.html.is_some() || args.svg.is_some() {
        let view = views::nmf_view(layers.clone(), &components, loadings.clone(), out.reconstruction_error);
        if let Some(path) = &args.svg {
            views::write_svg(path, &ecco_viz::nmf_svg(&view, &ecco_viz::TokensView::from_trace(trace)))?;
        }
        if let Some(path) = &args.html {
            let report = views::single_view_report(trace, "NMF factors", |r| r.nmf = Some(view))?;
            views::write_html(path, &report)?;
        }
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

/// The FFN activations the NMF and neuron views read, and their name: the encoder's (masked
/// LMs), the decoder's (causal LMs), or for an encoder-decoder both joined along the positions,
/// encoder first, as Ecco 0.1.2 merges them (so that positions follow `tokens`; the layers both
/// stacks hold).
pub fn stack_activations(bundle: &TraceBundle) -> Option<(String, ecco_core::F32Tensor)> {
    let get = |stack: &str| bundle.tensors.get(&format!("activations.{stack}")).map(|t| (format!("activations.{stack}"), t.clone()));
    match bundle.trace.model.model_type {
        ModelKind::Masked => get("encoder"),
        ModelKind::Causal => get("decoder"),
        ModelKind::EncoderDecoder => {
            let (Some((_, enc)), Some((_, dec))) = (get("encoder"), get("decoder")) else {
                return get("decoder").or_else(|| get("encoder"));
            };
            let ([le, ne, pe], [ld, nd, pd]) = match (&enc.shape[..], &dec.shape[..]) {
                (&[a, b, c], &[d, e, f]) => ([a, b, c], [d, e, f]),
                _ => return None,
            };
            if ne != nd {
                return None;
            }
            let layers = le.min(ld);
            let mut data = Vec::with_capacity(layers * ne * (pe + pd));
            for l in 0..layers {
                for n in 0..ne {
                    data.extend_from_slice(&enc.data[(l * ne + n) * pe..(l * ne + n + 1) * pe]);
                    data.extend_from_slice(&dec.data[(l * nd + n) * pd..(l * nd + n + 1) * pd]);
                }
            }
            Some(("activations.encoder+decoder".to_owned(), ecco_core::F32Tensor { shape: vec![layers, ne, pe + pd], data }))
        }
    }
}

/// Factorises the FFN activations of `bundle` (read from `trace_dir`) as `opts` say.
///
/// # Errors
/// A trace without activations, an empty or unknown layer selection, no components, NMF errors.
pub fn factorise(bundle: &TraceBundle, trace_dir: &Path, opts: &NmfOptions) -> Result<NmfOutcome> {
    let args = opts;
    let trace = &bundle.trace;
    let Some((name, acts)) = stack_activations(bundle) else {
        bail!("{}: the trace has no FFN activations: make it with `--activations`", trace_dir.display());
    };
    let acts = &acts;
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
    let loadings: Vec<Vec<NeuronLoading>> = (0..k)
        .map(|c| {
            let row: Vec<f32> = fit.h.row(c).iter().copied().collect();
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order
                .into_iter()
                .take(args.top_neurons)
                .map(|f| NeuronLoading { layer: layers[f / neurons], neuron: f % neurons, weight: row[f] })
                .collect()
        })
        .collect();
    Ok(NmfOutcome {
        layers,
        components,
        loadings,
        reconstruction_error: fit.reconstruction_error,
        n_iter: fit.n_iter,
        converged: fit.converged,
        positions,
        features: x.ncols(),
    })
}
