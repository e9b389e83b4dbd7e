//! The BERT family's `config.json` (BERT, RoBERTa, DistilBERT) and the checked configuration the
//! model is built from.

use std::path::Path;

use serde::Deserialize;

use crate::activation::Activation;
use crate::error::{Error, Result};

/// Which member of the family a checkpoint is: decides the weight names and the embeddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `bert` (`BertModel`, `BertForMaskedLM`; MiniLM and other BERT-shaped checkpoints).
    Bert,
    /// `roberta` (`RobertaModel`, `RobertaForMaskedLM`): positions start at `pad_token_id + 1`.
    Roberta,
    /// `distilbert` (`DistilBertModel`, `DistilBertForMaskedLM`): no token types.
    DistilBert,
}

impl Variant {
    /// The variant of a `model_type`, if it is one of the family.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            "bert" => Self::Bert,
            "roberta" => Self::Roberta,
            "distilbert" => Self::DistilBert,
            _ => return None,
        })
    }

    /// The `model_type` (and trace `family`) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta => "roberta",
            Self::DistilBert => "distilbert",
        }
    }
}

/// `config.json` as Hugging Face writes it for the family (fields we read; others ignored).
/// DistilBERT's own names (`dim`, `n_layers`, `n_heads`, `hidden_dim`, `activation`) are aliases.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfigFile {
    /// `bert`, `roberta` or `distilbert`.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(alias = "dim")]
    pub hidden_size: usize,
    /// Number of layers.
    #[serde(alias = "n_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(alias = "n_heads")]
    pub num_attention_heads: usize,
    /// FFN width.
    #[serde(alias = "hidden_dim")]
    pub intermediate_size: usize,
    /// FFN (and MLM-head transform) nonlinearity.
    #[serde(alias = "activation", default = "default_act")]
    pub hidden_act: String,
    /// Layer-norm epsilon (DistilBERT hard-codes 1e-12).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Rows of the position-embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (absent for DistilBERT).
    #[serde(default)]
    pub type_vocab_size: Option<usize>,
    /// Padding id; RoBERTa's positions start after it.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Only `absolute` is supported.
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
    /// DistilBERT's fixed sinusoidal positions (not supported).
    #[serde(default)]
    pub sinusoidal_pos_embds: bool,
}

fn default_act() -> String {
    "gelu".to_owned()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_pos_type() -> String {
    "absolute".to_owned()
}

/// A checked BERT-family configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Which member of the family.
    pub variant: Variant,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of layers.
    pub n_layers: usize,
    /// Attention heads per layer.
    pub n_heads: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// FFN nonlinearity.
    pub activation: Activation,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
    /// Rows of the position-embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (0: none).
    pub type_vocab_size: usize,
    /// Index of the first position row used: `pad_token_id + 1` for RoBERTa
    /// (`create_position_ids_from_input_ids`), 0 otherwise.
    pub position_offset: usize,
}

impl BertConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.n_heads
    }

    /// The longest input: the position rows after the offset.
    pub fn max_positions(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset)
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
        let file: BertConfigFile =
            serde_json::from_str(text).map_err(|e| Error::InvalidConfig { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::try_from(file).map_err(|reason| Error::InvalidConfig { path: path.to_path_buf(), reason })
    }
}

impl TryFrom<BertConfigFile> for BertConfig {
    type Error = String;

    fn try_from(f: BertConfigFile) -> Result<Self, String> {
        let model_type = f.model_type.as_deref().unwrap_or("bert");
        let variant = Variant::from_model_type(model_type).ok_or_else(|| format!("model_type `{model_type}` is not BERT-like"))?;
        if f.hidden_size == 0 || f.num_attention_heads == 0 || f.num_hidden_layers == 0 || f.vocab_size == 0 {
            return Err("hidden_size, num_attention_heads, num_hidden_layers and vocab_size must be positive".into());
        }
        if !f.hidden_size.is_multiple_of(f.num_attention_heads) {
            return Err(format!("hidden_size ({}) is not a multiple of num_attention_heads ({})", f.hidden_size, f.num_attention_heads));
        }
        if f.position_embedding_type != "absolute" {
            return Err(format!("unsupported position_embedding_type `{}` (only `absolute`)", f.position_embedding_type));
        }
        if f.sinusoidal_pos_embds {
            return Err("sinusoidal_pos_embds is not supported".into());
        }
        let activation = Activation::from_hf_name(&f.hidden_act).ok_or_else(|| format!("unsupported hidden_act `{}`", f.hidden_act))?;
        let position_offset = match variant {
            Variant::Roberta => f.pad_token_id.unwrap_or(1) as usize + 1,
            _ => 0,
        };
        let type_vocab_size = match variant {
            Variant::DistilBert => 0,
            _ => f.type_vocab_size.unwrap_or(2),
        };
        if f.max_position_embeddings <= position_offset {
            return Err(format!("max_position_embeddings ({}) leaves no positions", f.max_position_embeddings));
        }
        Ok(Self {
            variant,
            vocab_size: f.vocab_size,
            hidden_size: f.hidden_size,
            n_layers: f.num_hidden_layers,
            n_heads: f.num_attention_heads,
            intermediate_size: f.intermediate_size,
            activation,
            layer_norm_eps: f.layer_norm_eps,
            max_position_embeddings: f.max_position_embeddings,
            type_vocab_size,
            position_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BertConfig, String> {
        BertConfig::try_from(serde_json::from_str::<BertConfigFile>(json).map_err(|e| e.to_string())?)
    }

    #[test]
    fn family_members_and_bad_configs() {
        let base = r#""vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 12"#;
        let bert = parse(&format!(r#"{{"model_type": "bert", {base}}}"#)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((bert.variant, bert.position_offset, bert.type_vocab_size, bert.max_positions()), (Variant::Bert, 0, 2, 12));
        let roberta = parse(&format!(r#"{{"model_type": "roberta", "pad_token_id": 1, "type_vocab_size": 1, {base}}}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((roberta.position_offset, roberta.max_positions()), (2, 10));
        let distil = parse(r#"{"model_type": "distilbert", "vocab_size": 10, "dim": 8, "n_layers": 2, "n_heads": 2, "hidden_dim": 16, "max_position_embeddings": 12, "activation": "gelu"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((distil.hidden_size, distil.n_layers, distil.type_vocab_size), (8, 2, 0));
        assert!(parse(&format!(r#"{{"model_type": "bert", "position_embedding_type": "relative_key", {base}}}"#)).is_err());
        assert!(parse(&format!(r#"{{"model_type": "bert", "hidden_act": "mish", {base}}}"#)).is_err());
        assert!(parse(r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 9, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 12}"#).is_err());
    }
}
