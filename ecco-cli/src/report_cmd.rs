//! `ecco report`: one self-contained HTML page (or its JSON) with every view a trace supports.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_attrib::Lens;
use ecco_core::{ModelKind, TraceBundle};
use ecco_viz::{NeuronRef, Report};

use crate::nmf_cmd::{NmfOptions, factorise};
use crate::views::{self, check_writable};

/// Arguments of `ecco report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The trace bundle to show.
    #[arg(long, value_name = "DIR")]
    trace: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, value_name = "FILE.html", required_unless_present = "json")]
    out: Option<PathBuf>,
    /// Print the views' JSON (the documented shape the page reads) on stdout.
    #[arg(long)]
    json: bool,
    /// The model that made the trace (a directory or a Hub id): adds the logit-lens views
    /// (layer predictions, rankings, rankings-watch) when the trace has hidden states. A trace
    /// of the embedded demo model gets them without it.
    #[arg(long, value_name = "DIR|ID")]
    model: Option<String>,
    /// Where to run the model: flex (CPU), wgpu or cuda.
    #[arg(long, default_value = "flex", value_name = "DEVICE")]
    device: ecco_models::DeviceKind,
    /// Logit lens: `normed` (final layer norm first) or `raw` (Ecco).
    #[arg(long, default_value = "normed", value_name = "raw|normed")]
    lens: Lens,
    /// Position of the layer-predictions and rankings-watch views (default: the first
    /// generated token).
    #[arg(long, value_name = "P")]
    position: Option<usize>,
    /// Tokens per layer in the layer-predictions view.
    #[arg(long, default_value_t = 10, value_name = "K")]
    topk: usize,
    /// Token ids for the rankings-watch view, comma separated (needs `--model`).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    watch: Option<Vec<u32>>,
    /// NMF factors of the FFN activations (0: no NMF view).
    #[arg(long, default_value_t = 5, value_name = "K")]
    components: usize,
    /// Neurons of the activation heatmap, as LAYER:NEURON pairs, comma separated (default:
    /// the 8 with the largest activation).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    neurons: Option<Vec<String>>,
    /// Keys kept per query in the attention view.
    #[arg(long, default_value_t = 8, value_name = "K")]
    attention_topk: usize,
    /// Also write every heatmap of the report as a static SVG into this directory
    /// (`rankings.svg`, `rankings-watch.svg`, `neurons.svg`, `nmf.svg`).
    #[arg(long, value_name = "DIR")]
    svg_dir: Option<PathBuf>,
    /// Page title.
    #[arg(long)]
    title: Option<String>,
}

fn parse_neuron(text: &str) -> Result<NeuronRef> {
    let parsed = text.split_once(':').and_then(|(l, n)| Some(NeuronRef { layer: l.trim().parse().ok()?, neuron: n.trim().parse().ok()? }));
    parsed.with_context(|| format!("--neurons: `{text}` is not LAYER:NEURON (e.g. 3:1024)"))
}

/// `ecco report`.
pub fn report(args: &ReportArgs) -> Result<()> {
    check_writable(args.out.as_deref(), "--out")?;
    if let Some(dir) = &args.svg_dir
        && !dir.is_dir()
    {
        bail!("--svg-dir {}: not a directory", dir.display());
    }
    if args.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let chosen: Option<Vec<NeuronRef>> = args.neurons.as_ref().map(|l| l.iter().map(|t| parse_neuron(t)).collect()).transpose()?;
    let bundle = TraceBundle::read(&args.trace).with_context(|| format!("cannot read trace {}", args.trace.display()))?;
    let trace = &bundle.trace;
    // A trace of the embedded demo model gets the lens views without `--model`.
    let use_demo = args.model.is_none() && trace.model.name == ecco_models::DEMO_NAME && ecco_models::demo_available();
    if args.watch.is_some() && args.model.is_none() && !use_demo {
        bail!("--watch needs --model (the logit lens runs the model's head)");
    }
    let mut report = Report::from_trace(trace)?;
    if let Some(title) = &args.title {
        report.title.clone_from(title);
    }
    // An encoder-decoder's encoder attention: its positions are the first of the trace's tokens.
    let stack = if trace.model.model_type == ModelKind::Causal { "decoder" } else { "encoder" };

    if let Some(att) = bundle.tensors.get(&format!("attention.{stack}")) {
        report.attention = Some(ecco_viz::attention_view(&format!("attention.{stack}"), att, args.attention_topk)?);
    }
    match crate::nmf_cmd::stack_activations(&bundle) {
        Some((acts_name, acts)) => {
            let acts = &acts;
            let stored = trace.activation_layers.clone().unwrap_or_else(|| (0..acts.shape.first().copied().unwrap_or(0)).collect());
            report.neurons = Some(ecco_viz::neurons_view(&acts_name, acts, &stored, chosen.as_deref(), 8)?);
            if args.components > 0 {
                let opts = NmfOptions {
                    components: args.components,
                    from_layer: None,
                    to_layer: None,
                    layers: None,
                    seed: 0,
                    max_iter: 500,
                    tol: 1e-4,
                    top_neurons: 10,
                };
                let out = factorise(&bundle, &args.trace, &opts)?;
                report.nmf = Some(views::nmf_view(out.layers, &out.components, out.loadings, out.reconstruction_error));
            }
        }
        None if chosen.is_some() => bail!("--neurons: the trace has no FFN activations: make it with `--activations`"),
        None => {}
    }

    if args.model.is_some() || use_demo {
        let model_args = crate::args::ModelArgs { model: args.model.clone(), device: args.device };
        let model = model_args.load()?;
        let hidden = crate::lens_cmd::lens_hidden(&model, &bundle, &args.trace)?;
        let lm = model.model.as_lm();
        // A masked LM predicts a mask token from that token's own hidden state (default: the
        // first mask); a causal LM predicts position P from the hidden state at P-1.
        let masked = trace.model.model_type == ModelKind::Masked;
        let first_mask = trace.masked_predictions.as_ref().and_then(|m| m.first()).map(|m| m.position);
        let position = match (args.position, first_mask) {
            (Some(p), _) => p,
            (None, Some(mask)) if masked => mask,
            (None, _) if trace.model.model_type == ModelKind::EncoderDecoder => trace.n_input_tokens + 1,
            (None, _) => trace.n_input_tokens.clamp(1, trace.tokens.len().saturating_sub(1).max(1)),
        };
        // An encoder-decoder's lens reads the decoder: positions among the decoder's tokens.
        let lens_position = crate::lens_cmd::decoder_position(trace, position)?;
        let tok = &model.tokenizer;
        let token = &|id| tok.token(id);
        let preds = if masked {
            ecco_attrib::layer_predictions_at(lm, &hidden, position, args.topk, None, args.lens, token)
        } else {
            ecco_attrib::layer_predictions(lm, &hidden, lens_position, args.topk, None, args.lens, token)
        }
        .with_context(|| format!("--position {position}"))?;
        report.layer_predictions = Some(views::predictions_view(trace, &preds, position, args.lens, None));
        let generates = matches!(trace.model.model_type, ModelKind::Causal | ModelKind::EncoderDecoder);
        let (ids, n_input) = crate::lens_cmd::lens_sequence(trace);
        if generates && ids.len() > n_input {
            let ranks = ecco_attrib::rankings(lm, &hidden, ids, n_input, args.lens)?;
            report.rankings = Some(views::rankings_view(trace, ranks, args.lens));
        }
        if let Some(watch) = &args.watch {
            let ranks = if masked {
                ecco_attrib::rankings_watch_at(lm, &hidden, position, watch, args.lens)?
            } else {
                ecco_attrib::rankings_watch(lm, &hidden, lens_position, watch, args.lens)?
            };
            let raw: Vec<String> = watch.iter().map(|&id| tok.token(id)).collect();
            report.rankings_watch = Some(views::watch_view(trace, ranks, args.lens, position, watch, &raw));
        }
    } else if args.position.is_some() {
        bail!("--position needs --model (the logit lens runs the model's head)");
    }

    if let Some(dir) = &args.svg_dir {
        write_svgs(dir, &report)?;
    }
    if let Some(out) = &args.out {
        views::write_html(out, &report)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn write_svgs(dir: &std::path::Path, report: &Report) -> Result<()> {
    let texts: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
    if let Some(v) = &report.rankings {
        views::write_svg(&dir.join("rankings.svg"), &ecco_viz::rankings_svg(v))?;
    }
    if let Some(v) = &report.rankings_watch {
        views::write_svg(&dir.join("rankings-watch.svg"), &ecco_viz::rankings_watch_svg(v))?;
    }
    if let Some(v) = &report.neurons {
        views::write_svg(&dir.join("neurons.svg"), &ecco_viz::neurons_svg(v, &texts))?;
    }
    if let Some(v) = &report.nmf {
        views::write_svg(&dir.join("nmf.svg"), &ecco_viz::nmf_svg(v, &report.tokens))?;
    }
    Ok(())
}

