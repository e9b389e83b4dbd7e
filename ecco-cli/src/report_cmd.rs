//! `ecco report`: one self-contained HTML page (or its JSON) with every view a trace supports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco::{Output, ReportOptions};
use ecco_attrib::Lens;
use ecco_viz::{NeuronRef, Report};

use crate::write::{Outputs, check_writable};

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
    /// Add the faithfulness view: deletion and insertion curves and scores of every
    /// attribution method beside a random ranking (as `ecco evaluate`; runs the model many times).
    #[arg(long)]
    evaluate: bool,
    /// With `--evaluate`: how removed tokens are replaced (auto, pad, unk, eos, mask, drop, or a token id).
    #[arg(long, default_value = "auto", value_name = "BASELINE", requires = "evaluate")]
    baseline: String,
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
    // Parsed here rather than by clap, whose errors span several lines.
    let baseline: ecco::Baseline = args.baseline.parse().map_err(|e| anyhow::anyhow!("--baseline: {e}"))?;
    let neurons: Option<Vec<NeuronRef>> = args.neurons.as_ref().map(|l| l.iter().map(|t| parse_neuron(t)).collect()).transpose()?;
    let mut output = Output::load(&args.trace)?;
    if args.model.is_some() {
        let model_args = crate::args::ModelArgs { model: args.model.clone(), device: args.device };
        output = output.with_model(&model_args.load()?);
    }
    let options = ReportOptions {
        title: args.title.clone(),
        lens: args.lens,
        position: args.position,
        topk: args.topk,
        watch: args.watch.clone(),
        components: args.components,
        neurons,
        attention_topk: args.attention_topk,
        progress: true,
        evaluate: args.evaluate.then(|| ecco::EvaluateOptions { baseline, ..Default::default() }),
    };
    let report = output.report(&options)?;
    // All of the command's files or none.
    let mut outputs = Outputs::default();
    if let Some(dir) = &args.svg_dir {
        stage_svgs(&mut outputs, dir, &report)?;
    }
    if let Some(out) = &args.out {
        outputs.html(out, &report)?;
    }
    outputs.commit()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// Stages the heatmaps as SVG files in `dir`.
fn stage_svgs(outputs: &mut Outputs, dir: &Path, report: &Report) -> Result<()> {
    let texts: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
    if let Some(v) = &report.rankings {
        outputs.stage(&dir.join("rankings.svg"), ecco_viz::rankings_svg(v).as_bytes())?;
    }
    if let Some(v) = &report.rankings_watch {
        outputs.stage(&dir.join("rankings-watch.svg"), ecco_viz::rankings_watch_svg(v).as_bytes())?;
    }
    if let Some(v) = &report.neurons {
        outputs.stage(&dir.join("neurons.svg"), ecco_viz::neurons_svg(v, &texts).as_bytes())?;
    }
    if let Some(v) = &report.nmf {
        outputs.stage(&dir.join("nmf.svg"), ecco_viz::nmf_svg(v, &report.tokens).as_bytes())?;
    }
    Ok(())
}
