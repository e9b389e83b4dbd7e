//! GPT-2's `config.json` and the checked configuration the model is built from.

use std::path::Path;

use serde::Deserialize;

use crate::activation::Activation;
use crate::error::{Error, Result};

/// `config.json` as Hugging Face writes it for `GPT2LMHeadModel` (fields we read; others ignored).
#[derive(Clone, Debug, Deserialize)]
pub struct Gpt2ConfigFile {
    /// `model_type`, `"gpt2"`.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the position embeddings cover.
    #[serde(alias = "max_position_embeddings")]
    pub n_positions: usize,
    /// Width of the residual stream.
    #[serde(alias = "hidden_size")]
    pub n_embd: usize,
    /// Number of blocks.
    #[serde(alias = "num_hidden_layers")]
    pub n_layer: usize,
    /// Attention heads per block.
    #[serde(alias = "num_attention_heads")]
    pub n_head: usize,
    /// FFN width; `null` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// The FFN nonlinearity (`gelu_new` by default).
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Whether attention scores are divided by `sqrt(head_dim)`.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Whether scores are further divided by `layer_idx + 1` (some GPT-2 variants).
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the LM head shares `wte`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// End-of-sequence id.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

fn default_activation() -> String {
    "gelu_new".to_owned()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}

/// A checked GPT-2 configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence.
    pub n_positions: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// FFN width.
    pub n_inner: usize,
    /// FFN nonlinearity.
    pub activation: Activation,
    /// Layer-norm epsilon.
    pub layer_norm_epsilon: f64,
    /// Divide scores by `sqrt(head_dim)`.
    pub scale_attn_weights: bool,
    /// Divide scores by `layer_idx + 1` as well.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the LM head shares `wte`.
    pub tie_word_embeddings: bool,
    /// End-of-sequence id.
    pub eos_token_id: Option<u32>,
}

impl Gpt2Config {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Reads and checks `config.json`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unparsable or impossible configs.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ecco_core::Error::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses and checks the text of a `config.json`; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unparsable or impossible configs.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let file: Gpt2ConfigFile =
            serde_json::from_str(text).map_err(|e| Error::InvalidConfig { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::try_from(file).map_err(|reason| Error::InvalidConfig { path: path.to_path_buf(), reason })
    }
}

impl TryFrom<Gpt2ConfigFile> for Gpt2Config {
    type Error = String;

    fn try_from(f: Gpt2ConfigFile) -> Result<Self, String> {
        if f.n_embd == 0 || f.n_head == 0 || f.n_layer == 0 || f.vocab_size == 0 || f.n_positions == 0 {
            return Err("n_embd, n_head, n_layer, vocab_size and n_positions must be positive".into());
        }
        if !f.n_embd.is_multiple_of(f.n_head) {
            return Err(format!("n_embd ({}) is not a multiple of n_head ({})", f.n_embd, f.n_head));
        }
        let activation = Activation::from_hf_name(&f.activation_function)
            .ok_or_else(|| format!("unsupported activation_function `{}`", f.activation_function))?;
        Ok(Self {
            vocab_size: f.vocab_size,
            n_positions: f.n_positions,
            n_embd: f.n_embd,
            n_layer: f.n_layer,
            n_head: f.n_head,
            n_inner: match f.n_inner {
                Some(n) => n,
                None => f.n_embd.checked_mul(4).ok_or("n_embd is too large")?,
            },
            activation,
            layer_norm_epsilon: f.layer_norm_epsilon,
            scale_attn_weights: f.scale_attn_weights,
            scale_attn_by_inverse_layer_idx: f.scale_attn_by_inverse_layer_idx,
            tie_word_embeddings: f.tie_word_embeddings,
            eos_token_id: f.eos_token_id,
        })
    }
}
