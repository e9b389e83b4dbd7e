//! Arguments shared by several subcommands.

use anyhow::{Result, bail};
use clap::Args;
use ecco::Lm;
use ecco_core::LayerSelection;
use ecco_models::DeviceKind;

/// Which model to load and where.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A checkpoint directory (config.json, model.safetensors or pytorch_model.bin,
    /// tokenizer.json) or a Hugging Face Hub id (`distilgpt2`, `org/name`), found in the Hugging
    /// Face cache or downloaded. Without it, the demo model built into `ecco` is used.
    #[arg(long, value_name = "DIR|ID")]
    pub model: Option<String>,
    /// Where to run: flex (CPU), wgpu or cuda.
    #[arg(long, default_value = "flex", value_name = "DEVICE")]
    pub device: DeviceKind,
}

impl ModelArgs {
    /// Loads the model (the embedded demo model when `--model` is absent) with a spinner.
    pub fn load(&self) -> Result<Lm> {
        match &self.model {
            None => ecco::demo_on(self.device),
            Some(name) => ecco::from_pretrained(name, &ecco::LoadOptions { device: self.device, ..Default::default() }),
        }
    }
}

/// What the final forward pass records.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Record FFN activations (input of each block's FFN output projection).
    #[arg(long)]
    pub activations: bool,
    /// Only these layers' activations (comma separated, 0-based), e.g. `0,3,5`.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Record the embedding output and every block's output.
    #[arg(long)]
    pub hidden_states: bool,
    /// Record softmaxed attention weights.
    #[arg(long)]
    pub attention: bool,
    /// Record these hook points under their own names (comma separated; `*` for any block),
    /// e.g. `blocks.*.mlp.post,blocks.3.attn.pattern`; see docs/hooks.md.
    #[arg(long, value_name = "PATTERNS")]
    pub capture: Option<String>,
}

impl CaptureArgs {
    /// The `--capture` hook patterns, checked before any work.
    pub fn hook_patterns(&self) -> Result<Vec<ecco_core::HookPattern>> {
        match &self.capture {
            Some(list) => Ok(ecco_core::parse_hook_patterns(list)?),
            None => Ok(Vec::new()),
        }
    }

    /// The layer selection, refusing `--layers` without `--activations`.
    pub fn layer_selection(&self) -> Result<LayerSelection> {
        match &self.layers {
            None => Ok(LayerSelection::All),
            Some(_) if !self.activations => bail!("--layers selects activation layers: pass --activations too"),
            Some(list) if list.is_empty() => bail!("--layers is empty"),
            Some(list) => Ok(LayerSelection::Only(list.clone())),
        }
    }
}

/// Ablations (`generate`, `forward`, `patch`).
#[derive(Debug, Args)]
pub struct AblationArgs {
    /// Ablate a hook point in every forward pass (repeatable): `HOOK` the whole hook,
    /// `blocks.1.mlp.post:17,300` those neurons, `blocks.2.attn.z:h3` head 3.
    #[arg(long, value_name = "SPEC")]
    pub ablate: Vec<String>,
    /// What ablated values become: `zero`, or `mean` (their mean over the input's positions).
    #[arg(long, default_value = "zero", value_name = "zero|mean", value_parser = ["zero", "mean"])]
    pub ablation: String,
}

impl AblationArgs {
    /// The typed ablations and their mode, parsed before any work.
    pub fn parse(&self) -> Result<(Vec<ecco::Ablation>, ecco::AblationMode)> {
        let ablate = self.ablate.iter().map(|s| s.parse()).collect::<Result<Vec<ecco::Ablation>>>()?;
        let mode = if self.ablation == "mean" { ecco::AblationMode::Mean } else { ecco::AblationMode::Zero };
        Ok((ablate, mode))
    }
}

/// Ablations and steering (`generate`, `forward`).
#[derive(Debug, Args)]
pub struct InterventionArgs {
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Add SCALE (default 1) times the vector in FILE (safetensors, one tensor `[d]`) to HOOK
    /// at every position of every forward pass (repeatable): `HOOK:FILE[:SCALE]`.
    #[arg(long, value_name = "HOOK:FILE[:SCALE]")]
    pub steer: Vec<String>,
}

impl InterventionArgs {
    /// The interventions, parsed (steering files read) before the model loads.
    pub fn interventions(&self) -> Result<ecco::Interventions> {
        let (ablate, ablation) = self.ablation.parse()?;
        let steer = self.steer.iter().map(|s| ecco::Steering::from_spec(s)).collect::<Result<Vec<_>>>()?;
        Ok(ecco::Interventions { ablate, ablation, steer })
    }
}
