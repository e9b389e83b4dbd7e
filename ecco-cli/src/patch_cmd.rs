//! `ecco patch` (activation and attribution patching, [`Lm::patch`](ecco::Lm::patch)) and
//! `ecco steering-vector` ([`Lm::steering_vector`](ecco::Lm::steering_vector)).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use ecco::{PatchMethod, PatchOptions};

use crate::args::{AblationArgs, ModelArgs};

/// Arguments of `ecco patch`.
#[derive(Debug, Args)]
pub struct PatchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The clean text.
    #[arg(long)]
    clean: String,
    /// The corrupted text (as many tokens as the clean one).
    #[arg(long)]
    corrupted: String,
    /// The token the metric scores at the last position (a masked LM: at the mask): a
    /// single-token text (" Paris"), a raw token ("ĠParis") or an id.
    #[arg(long, value_name = "TOKEN")]
    target: String,
    /// The metric becomes logit(target) − logit(foil).
    #[arg(long, value_name = "TOKEN")]
    foil: Option<String>,
    /// The patched hook points: blocks.*.resid_pre, attn_out, mlp_out, resid_post, mlp.post
    /// (per position) or attn.z (per head), in every block (`*`) or one.
    #[arg(long, value_name = "PATTERN")]
    hook: String,
    /// `activation` (real patching) or `attribution` (its gradient estimate).
    #[arg(long, default_value = "activation", value_name = "activation|attribution", value_parser = ["activation", "attribution"])]
    method: String,
    /// Patched copies per forward pass.
    #[arg(long, default_value_t = 64, value_name = "N")]
    batch: usize,
    #[command(flatten)]
    ablation: AblationArgs,
    /// Print the grid as JSON.
    #[arg(long)]
    json: bool,
}

/// `ecco patch`.
pub fn patch(args: &PatchArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (ablate, ablation) = args.ablation.parse()?;
    let options = PatchOptions {
        foil: args.foil.clone(),
        method: if args.method == "attribution" { PatchMethod::Attribution } else { PatchMethod::Activation },
        ablate,
        ablation,
        batch: args.batch,
        ..PatchOptions::new(&args.clean, &args.corrupted, &args.target, args.hook.parse()?)
    };
    let lm = args.model.load()?;
    let grid = lm.patch(&options)?;
    if args.json {
        outln!("{}", serde_json::to_string(&grid)?)?;
        return Ok(());
    }
    outln!("{} ({} patching), metric {}: clean {:.4}, corrupted {:.4}", grid.hook, grid.method, grid.metric, grid.clean, grid.corrupted)?;
    let columns: Vec<String> = match &grid.heads {
        Some(heads) => heads.iter().map(|h| format!("h{h}")).collect(),
        None => grid.positions.clone(),
    };
    outln!("layer\t{}", columns.join("\t"))?;
    for (layer, row) in grid.layers.iter().zip(&grid.effects) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
        outln!("{layer}\t{}", cells.join("\t"))?;
    }
    Ok(())
}

/// Arguments of `ecco steering-vector`.
#[derive(Debug, Args)]
pub struct SteeringVectorArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A positive text (repeatable; paired in order with --negative).
    #[arg(long, value_name = "TEXT", required = true)]
    positive: Vec<String>,
    /// A negative text (repeatable; as many as --positive).
    #[arg(long, value_name = "TEXT", required = true)]
    negative: Vec<String>,
    /// The hook point the vector is taken at (one `[pos, d]` hook, e.g. blocks.3.resid_post).
    #[arg(long, value_name = "HOOK")]
    hook: String,
    /// The safetensors file to write (one tensor `[d]`, named after the hook).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// `ecco steering-vector`.
pub fn steering_vector(args: &SteeringVectorArgs) -> Result<()> {
    if args.positive.len() != args.negative.len() {
        bail!("{} --positive and {} --negative texts: give them in pairs", args.positive.len(), args.negative.len());
    }
    crate::write::check_writable(Some(&args.out), "--out")?;
    let hook: ecco::HookPattern = args.hook.parse()?;
    let lm = args.model.load()?;
    let pairs: Vec<(String, String)> = args.positive.iter().cloned().zip(args.negative.iter().cloned()).collect();
    let vector = lm.steering_vector(&pairs, hook)?;
    ecco::write_steering_vector(&args.out, &hook, &vector)
}
