//! `ecco evaluate`: which attribution can you trust? Deletion and insertion AUC,
//! comprehensiveness and sufficiency of every method in a trace, beside a random ranking.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use ecco::{Baseline, EvaluateOptions, Output};

use crate::args::ModelArgs;
use crate::write::{Outputs, check_writable};

/// Arguments of `ecco evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A trace bundle made with `--attribution` (a causal LM's `generate`, or a masked LM's
    /// `forward` with a mask token).
    #[arg(long, value_name = "DIR")]
    trace: PathBuf,
    /// Methods to score, comma separated (default: every method in the trace).
    #[arg(long, value_name = "LIST")]
    method: Option<String>,
    /// How removed tokens are replaced: auto (eos for causal LMs, mask for masked LMs), pad,
    /// unk, eos, mask, drop (the token is taken out of the sequence), or a token id.
    #[arg(long, default_value = "auto", value_name = "BASELINE")]
    baseline: String,
    /// Seed of the random rankings.
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,
    /// How many random rankings the random baseline averages.
    #[arg(long, default_value_t = 10, value_name = "N")]
    random_draws: usize,
    /// Most points per deletion or insertion curve (interpreto's `n_perturbations`).
    #[arg(long, default_value_t = 100, value_name = "N")]
    steps: usize,
    /// Print JSON (`{"methods": {name: {"deletion_auc", …, "random_baseline": {…}}}}`, with
    /// the curves) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the curves and scores as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// `ecco evaluate`.
pub fn evaluate(args: &EvaluateArgs) -> Result<()> {
    check_writable(args.html.as_deref(), "--html")?;
    // Parsed here rather than by clap, whose errors span several lines.
    let baseline: Baseline = args.baseline.parse().map_err(|e| anyhow::anyhow!("--baseline: {e}"))?;
    if args.random_draws == 0 {
        bail!("--random-draws must be at least 1");
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let methods = match &args.method {
        Some(list) => {
            let methods = ecco::parse_methods(list)?;
            if methods.is_empty() {
                bail!("--method is empty");
            }
            methods
        }
        None => Vec::new(),
    };
    let output = Output::load(&args.trace)?;
    if output.trace().attributions.is_empty() {
        bail!(
            "the trace {} has no attributions to evaluate: make it with `--attribution` (e.g. `--attribution grad_x_input,ig`)",
            args.trace.display()
        );
    }
    let output = output.with_model(&args.model.load()?);
    let options = EvaluateOptions { methods, baseline, seed: args.seed, random_draws: args.random_draws, steps: args.steps };
    let evaluation = output.evaluate(&options)?;
    if let Some(path) = &args.html {
        let view = ecco::views::evaluation_view(&evaluation);
        let report = ecco::views::single_view_report(output.trace(), "Faithfulness of the attributions", |r| r.evaluation = Some(view))?;
        let mut outputs = Outputs::default();
        outputs.html(path, &report)?;
        outputs.commit()?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&evaluation)?)?;
        return Ok(());
    }
    outln!(
        "Faithfulness over {} prediction(s); removed tokens: {}; random baseline: {} draw(s), seed {}",
        evaluation.predictions.len(),
        match &evaluation.replacement {
            Some(t) => format!("replaced by {:?} ({})", t.token, evaluation.baseline),
            None => "dropped".to_owned(),
        },
        evaluation.random_draws,
        evaluation.seed
    )?;
    outln!("{:<22} {:>13} {:>14} {:>18} {:>12}", "method", "deletion AUC↓", "insertion AUC↑", "comprehensiveness↑", "sufficiency↓")?;
    let mut random = None;
    for (name, m) in &evaluation.methods {
        let s = &m.scores;
        outln!("{name:<22} {:>13.4} {:>14.4} {:>18.4} {:>12.4}", s.deletion_auc, s.insertion_auc, s.comprehensiveness, s.sufficiency)?;
        random = Some(&m.random_baseline.scores);
    }
    if let Some(s) = random {
        outln!(
            "{:<22} {:>13.4} {:>14.4} {:>18.4} {:>12.4}",
            "random",
            s.deletion_auc,
            s.insertion_auc,
            s.comprehensiveness,
            s.sufficiency
        )?;
    }
    Ok(())
}
