//! Ecco's `run_nmf`: non-negative matrix factorisation of a trace's FFN activations, with
//! each factor's top neurons.

use anyhow::{Result, bail};
use ecco_core::{F32Tensor, ModelKind, TraceBundle};
use ecco_factor::{Nmf, activation_matrix};
use ecco_viz::NeuronLoading;

use crate::progress;

/// The most outer iterations an NMF may run ([`NmfOptions::max_iter`]): Ecco's default is 500,
/// and a fit that has not converged after 10,000 will not; the cap bounds the time a typo (or a
/// tolerance such as `1e-300`, which is never reached) can take.
pub const MAX_NMF_ITER: usize = 10_000;

/// What to factorise and how (Ecco's `run_nmf` arguments); `ecco nmf` and `ecco report` use
/// them too.
///
/// ```
/// let options = ecco::NmfOptions { components: 3, ..Default::default() };
/// assert_eq!(options.max_iter, 500);
/// ```
#[derive(Clone, Debug, PartialEq)]
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
    /// Most outer iterations (at most [`MAX_NMF_ITER`]).
    pub max_iter: usize,
    /// Relative projected-gradient tolerance.
    pub tol: f64,
    /// Top neurons listed per factor.
    pub top_neurons: usize,
    /// A progress bar on stderr (shown only on a terminal).
    pub progress: bool,
}

impl Default for NmfOptions {
    /// Ecco's `run_nmf` defaults: 10 components over every captured layer.
    fn default() -> Self {
        Self {
            components: 10,
            from_layer: None,
            to_layer: None,
            layers: None,
            seed: 0,
            max_iter: 500,
            tol: 1e-4,
            top_neurons: 10,
            progress: true,
        }
    }
}

/// A factorisation's results, ready to print or show.
#[derive(Clone, Debug, PartialEq)]
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
    /// The components asked for when they were more than the positions (and clamped to
    /// them, as Ecco does).
    pub clamped_from: Option<usize>,
}

/// The FFN activations the NMF and neuron views read, and their name: the encoder's (masked
/// LMs), the decoder's (causal LMs), or for an encoder-decoder both joined along the positions,
/// encoder first, as Ecco 0.1.2 merges them (so that positions follow the trace's tokens; the
/// layers both stacks hold), named `activations.encoder+decoder`.
pub fn stack_activations(bundle: &TraceBundle) -> Option<(String, F32Tensor)> {
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
            Some(("activations.encoder+decoder".to_owned(), F32Tensor { shape: vec![layers, ne, pe + pd], data }))
        }
    }
}

/// Factorises the FFN activations of `bundle` as `opts` say.
///
/// # Errors
/// A trace without activations, an empty or unknown layer selection, no components, NMF errors.
pub fn factorise(bundle: &TraceBundle, opts: &NmfOptions) -> Result<NmfOutcome> {
    let args = opts;
    if args.max_iter == 0 || args.max_iter > MAX_NMF_ITER {
        bail!("the NMF runs 1 to {MAX_NMF_ITER} iterations (--max-iter), not {}", args.max_iter);
    }
    let trace = &bundle.trace;
    let Some((name, acts)) = stack_activations(bundle) else {
        bail!("the trace has no FFN activations: capture them with `activations: true` (`--activations`)");
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
                bail!("the first layer {from} (--from-layer) must be below the end layer {to} (--to-layer)");
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
        bail!("the number of components (--components) must be at least 1");
    }
    let bar = progress::bar(opts.progress, 1000, "nmf");
    let log_tol = args.tol.ln();
    let fit = Nmf::new(args.components).seed(args.seed).max_iter(args.max_iter).tol(args.tol).fit_with_progress(&x, |_, rel| {
        if rel > 0.0 && log_tol < 0.0 {
            bar.set_position(((rel.ln() / log_tol).clamp(0.0, 1.0) * 1000.0) as u64);
        }
    });
    bar.finish_and_clear();
    let fit = fit?;
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
        clamped_from: fit.clamped_from,
    })
}
