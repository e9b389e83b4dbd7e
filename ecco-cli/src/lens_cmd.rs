//! `ecco layer-predictions`, `ecco rankings` and `ecco rankings-watch`: the logit lens over a
//! trace's hidden states.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ecco::Output;
use ecco::views;
use ecco_attrib::Lens;
use serde_json::json;

use crate::args::ModelArgs;
use crate::write::{Outputs, check_writable};

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

impl LensInput {
    /// The trace with the model attached.
    fn load(&self) -> Result<(Output, ecco::Lm)> {
        check_writable(self.html.as_deref(), "--html")?;
        let output = Output::load(&self.trace)?;
        let lm = self.model.load()?;
        Ok((output.with_model(&lm), lm))
    }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// `ecco layer-predictions`.
pub fn layer_predictions(args: &LayerPredictionsArgs) -> Result<()> {
    if args.topk == 0 {
        anyhow::bail!("--topk must be at least 1");
    }
    let (output, _) = args.input.load()?;
    let preds = output.layer_predictions(args.position, args.topk, args.layer, args.input.lens)?;
    if let Some(path) = &args.input.html {
        let t = output.trace();
        let report = views::single_view_report(t, "Layer predictions", |r| {
            r.layer_predictions = Some(views::predictions_view(t, &preds, args.position, args.input.lens, args.layer));
        })?;
        let mut outputs = Outputs::default();
        outputs.html(path, &report)?;
        outputs.commit()?;
    }
    if args.input.json {
        return print_json(&serde_json::to_value(&preds)?);
    }
    let target = output.tokens().get(args.position).map_or("", String::as_str);
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
    let (output, _) = args.input.load()?;
    let t = output.trace();
    let ranks = output.rankings(args.input.lens)?;
    let generated: Vec<&String> = output.generated_tokens().iter().collect();
    if args.input.html.is_some() || args.svg.is_some() {
        let view = views::rankings_view(t, ranks.clone(), args.input.lens);
        let mut outputs = Outputs::default();
        if let Some(path) = &args.svg {
            outputs.stage(path, ecco_viz::rankings_svg(&view).as_bytes())?;
        }
        if let Some(path) = &args.input.html {
            let report = views::single_view_report(t, "Rankings", |r| r.rankings = Some(view))?;
            outputs.html(path, &report)?;
        }
        outputs.commit()?;
    }
    if args.input.json {
        return print_json(&json!({
            "rankings": ranks,
            "tokens": generated,
            "token_ids": output.generated_ids(),
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
    let (output, lm) = args.input.load()?;
    let ranks = output.rankings_watch(&args.watch, args.position, args.input.lens)?;
    let tokens: Vec<String> = args.watch.iter().map(|&id| lm.tokenizer().token(id)).collect();
    if args.input.html.is_some() || args.svg.is_some() {
        let t = output.trace();
        let view = views::watch_view(t, ranks.clone(), args.input.lens, args.position, &args.watch, &tokens);
        let mut outputs = Outputs::default();
        if let Some(path) = &args.svg {
            outputs.stage(path, ecco_viz::rankings_watch_svg(&view).as_bytes())?;
        }
        if let Some(path) = &args.input.html {
            let report = views::single_view_report(t, "Rankings of watched tokens", |r| r.rankings_watch = Some(view))?;
            outputs.html(path, &report)?;
        }
        outputs.commit()?;
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
