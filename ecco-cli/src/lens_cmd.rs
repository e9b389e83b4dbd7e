//! `ecco layer-predictions`, `ecco rankings` and `ecco rankings-watch`: the logit lens over a
//! trace's hidden states.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_attrib::{Lens, check_compatible};
use ecco_core::{F32Tensor, ModelKind, TraceBundle};
use ecco_models::LoadedModel;
use serde_json::json;

use crate::args::ModelArgs;
use crate::views::{self, check_writable};

/// The model and trace every lens command reads.
#[derive(Debug, Args)]
pub struct LensInput {
    #[command(flatten)]
    model: ModelArgs,
    /// A trace bundle made with `--hidden-states`.
    #[arg(long, value_name = "DIR")]
    trace: PathBuf,
    /// `normed` applies the final layer norm to every layer first; `raw` projects as is (Ecco).
    #[arg(long, default_value = "normed", value_name = "raw|normed")]
    lens: Lens,
    /// Print JSON (the documented shape) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the view as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// Arguments of `ecco layer-predictions`.
#[derive(Debug, Args)]
pub struct LayerPredictionsArgs {
    #[command(flatten)]
    input: LensInput,
    /// Position P: predictions come from the hidden state at index P-1 (masked LMs: at P, the
    /// mask token itself).
    #[arg(long, value_name = "P")]
    position: usize,
    /// How many tokens per layer.
    #[arg(long, default_value_t = 10, value_name = "K")]
    topk: usize,
    /// Only this layer (0-based).
    #[arg(long, value_name = "L")]
    layer: Option<usize>,
}

/// Arguments of `ecco rankings`.
#[derive(Debug, Args)]
pub struct RankingsArgs {
    #[command(flatten)]
    input: LensInput,
    /// Also write the heatmap as a static SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// Arguments of `ecco rankings-watch`.
#[derive(Debug, Args)]
pub struct RankingsWatchArgs {
    #[command(flatten)]
    input: LensInput,
    /// Token ids to watch, comma separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
    watch: Vec<u32>,
    /// Position P: rankings come from the hidden state at index P-1 (masked LMs: at P).
    #[arg(long, value_name = "P")]
    position: usize,
    /// Also write the heatmap as a static SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

struct Loaded {
    model: LoadedModel,
    bundle: TraceBundle,
    hidden: F32Tensor,
}

impl LensInput {
    fn load(&self) -> Result<Loaded> {
        check_writable(self.html.as_deref(), "--html")?;
        let bundle = TraceBundle::read(&self.trace).with_context(|| format!("cannot read trace {}", self.trace.display()))?;
        let model = self.model.load()?;
        let hidden = lens_hidden(&model, &bundle, &self.trace)?;
        Ok(Loaded { model, bundle, hidden })
    }
}

/// The hidden states the logit lens reads, after checking that `model` made the trace.
pub fn lens_hidden(model: &LoadedModel, bundle: &TraceBundle, trace_dir: &Path) -> Result<F32Tensor> {
    check_compatible(model.model.as_lm(), &bundle.trace.model)?;
    let stack = match bundle.trace.model.model_type {
        ModelKind::Masked => "encoder",
        _ => "decoder",
    };
    let name = format!("hidden_states.{stack}");
    let Some(hidden) = bundle.tensors.get(&name).cloned() else {
        bail!("{}: the trace has no hidden states: make it with `--hidden-states`", trace_dir.display());
    };
    Ok(hidden)
}

/// An encoder-decoder trace's position (an index into encoder + decoder tokens) as a position
/// among the decoder's tokens, whose hidden states the lens reads; other traces' as is.
pub(crate) fn decoder_position(trace: &ecco_core::Trace, position: usize) -> Result<usize> {
    if trace.model.model_type != ModelKind::EncoderDecoder {
        return Ok(position);
    }
    let n = trace.n_input_tokens;
    if position <= n || position >= trace.tokens.len() {
        bail!(
            "position {position} is out of range: in an encoder-decoder trace the decoder predicts positions {}..={} (the encoder's tokens are 0..{n}, the decoder's start token {n})",
            n + 1,
            trace.tokens.len().saturating_sub(1)
        );
    }
    Ok(position - n)
}

/// The ids the lens's hidden states cover and how many of them were input: an
/// encoder-decoder's decoder reads its start token and generates the rest.
pub(crate) fn lens_sequence(t: &ecco_core::Trace) -> (&[u32], usize) {
    match t.model.model_type {
        ModelKind::EncoderDecoder => (t.token_ids.get(t.n_input_tokens..).unwrap_or_default(), 1),
        _ => (&t.token_ids[..], t.n_input_tokens),
    }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// `ecco layer-predictions`.
pub fn layer_predictions(args: &LayerPredictionsArgs) -> Result<()> {
    let l = args.input.load()?;
    if args.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let tok = &l.model.tokenizer;
    let lm = l.model.model.as_lm();
    let (lens, token) = (args.input.lens, &|id| tok.token(id));
    // A masked LM predicts a mask token from that token's own hidden state.
    let preds = if l.bundle.trace.model.model_type == ModelKind::Masked {
        ecco_attrib::layer_predictions_at(lm, &l.hidden, args.position, args.topk, args.layer, lens, token)?
    } else {
        let position = decoder_position(&l.bundle.trace, args.position)?;
        ecco_attrib::layer_predictions(lm, &l.hidden, position, args.topk, args.layer, lens, token)?
    };
    if let Some(path) = &args.input.html {
        let t = &l.bundle.trace;
        let report = views::single_view_report(t, "Layer predictions", |r| {
            r.layer_predictions = Some(views::predictions_view(t, &preds, args.position, args.input.lens, args.layer));
        })?;
        views::write_html(path, &report)?;
    }
    if args.input.json {
        return print_json(&serde_json::to_value(&preds)?);
    }
    let target = l.bundle.trace.tokens.get(args.position).map_or("", String::as_str);
    outln!("Predictions for position {} (token {target:?}), {:?} lens", args.position, args.input.lens)?;
    for (i, layer) in preds.iter().enumerate() {
        let n = args.layer.unwrap_or(i);
        let cells: Vec<String> = layer.iter().map(|p| format!("{:?} {:.3}", p.token, p.prob)).collect();
        outln!("layer {n:>3}: {}", cells.join("  "))?;
    }
    Ok(())
}

/// `ecco rankings`.
pub fn rankings(args: &RankingsArgs) -> Result<()> {
    check_writable(args.svg.as_deref(), "--svg")?;
    let l = args.input.load()?;
    let t = &l.bundle.trace;
    if t.model.model_type == ModelKind::Masked {
        bail!("rankings ranks generated tokens; a masked LM generates none: use `rankings-watch` or `layer-predictions` at the mask position");
    }
    let (ids, n_input) = lens_sequence(t);
    let ranks = ecco_attrib::rankings(l.model.model.as_lm(), &l.hidden, ids, n_input, args.input.lens)?;
    let first_generated = t.n_input_tokens + usize::from(t.model.model_type == ModelKind::EncoderDecoder);
    let generated: Vec<&String> = t.tokens.get(first_generated..).unwrap_or_default().iter().collect();
    if args.input.html.is_some() || args.svg.is_some() {
        let view = views::rankings_view(t, ranks.clone(), args.input.lens);
        if let Some(path) = &args.svg {
            views::write_svg(path, &ecco_viz::rankings_svg(&view))?;
        }
        if let Some(path) = &args.input.html {
            let report = views::single_view_report(t, "Rankings", |r| r.rankings = Some(view))?;
            views::write_html(path, &report)?;
        }
    }
    if args.input.json {
        return print_json(&json!({
            "rankings": ranks,
            "tokens": generated,
            "token_ids": t.token_ids.get(first_generated..).unwrap_or_default(),
            "lens": args.input.lens,
        }));
    }
    outln!("Rank of each generated token per layer ({:?} lens)", args.input.lens)?;
    outln!("{:>9} {}", "", generated.iter().map(|t| format!("{:>10.10}", format!("{t:?}"))).collect::<String>())?;
    for (i, row) in ranks.iter().enumerate() {
        outln!("layer {i:>3} {}", row.iter().map(|r| format!("{r:>10}")).collect::<String>())?;
    }
    Ok(())
}

/// `ecco rankings-watch`.
pub fn rankings_watch(args: &RankingsWatchArgs) -> Result<()> {
    check_writable(args.svg.as_deref(), "--svg")?;
    let l = args.input.load()?;
    let lm = l.model.model.as_lm();
    let ranks = if l.bundle.trace.model.model_type == ModelKind::Masked {
        ecco_attrib::rankings_watch_at(lm, &l.hidden, args.position, &args.watch, args.input.lens)?
    } else {
        let position = decoder_position(&l.bundle.trace, args.position)?;
        ecco_attrib::rankings_watch(lm, &l.hidden, position, &args.watch, args.input.lens)?
    };
    let tokens: Vec<String> = args.watch.iter().map(|&id| l.model.tokenizer.token(id)).collect();
    if args.input.html.is_some() || args.svg.is_some() {
        let t = &l.bundle.trace;
        let view = views::watch_view(t, ranks.clone(), args.input.lens, args.position, &args.watch, &tokens);
        if let Some(path) = &args.svg {
            views::write_svg(path, &ecco_viz::rankings_watch_svg(&view))?;
        }
        if let Some(path) = &args.input.html {
            let report = views::single_view_report(t, "Rankings of watched tokens", |r| r.rankings_watch = Some(view))?;
            views::write_html(path, &report)?;
        }
    }
    if args.input.json {
        return print_json(&json!({
            "watch": args.watch,
            "position": args.position,
            "rankings": ranks,
            "tokens": tokens,
            "lens": args.input.lens,
        }));
    }
    outln!("Rank of the watched tokens at position {} ({:?} lens)", args.position, args.input.lens)?;
    outln!("{:>9} {}", "", tokens.iter().map(|t| format!("{:>10.10}", format!("{t:?}"))).collect::<String>())?;
    for (i, row) in ranks.iter().enumerate() {
        outln!("layer {i:>3} {}", row.iter().map(|r| format!("{r:>10}")).collect::<String>())?;
    }
    Ok(())
}
