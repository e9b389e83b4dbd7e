//! T5's `config.json` and the checked configuration the model is built from.

use std::path::Path;

use serde::Deserialize;

use crate::activation::Activation;
use crate::error::{Error, Result};

/// `config.json` as Hugging Face writes it for `T5ForConditionalGeneration` (fields we read;
/// others ignored).
#[derive(Clone, Debug, Deserialize)]
pub struct T5ConfigFile {
    /// `model_type`, `"t5"`.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Vocabulary size (rows of `shared.weight`).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Width of one attention head (`inner_dim = num_heads * d_kv`, not necessarily `d_model`).
    pub d_kv: usize,
    /// FFN width.
    pub d_ff: usize,
    /// Encoder blocks (and decoder blocks unless `num_decoder_layers` says otherwise).
    pub num_layers: usize,
    /// Decoder blocks; `null` means `num_layers`.
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads per block.
    pub num_heads: usize,
    /// Number of relative-position buckets.
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Relative distances at or beyond this share the last bucket.
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    /// RMS-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// `relu` (T5), `gated-gelu` (T5 v1.1, flan-t5), or `[gated-]ACT` for another activation.
    #[serde(default = "default_ffn")]
    pub feed_forward_proj: String,
    /// Whether the LM head is `shared.weight` (and the decoder output is rescaled by
    /// `d_model^-0.5` before it).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// transformers 5 writes the rescale switch separately (and `tie_word_embeddings: true`).
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    /// The decoder's first input token (T5: `<pad>`, 0).
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    /// Padding id, the decoder start token when `decoder_start_token_id` is absent.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// End-of-sequence id (T5: `</s>`, 1).
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    /// The sequence length the checkpoint was trained for (t5-small/base/large: 512). T5's
    /// relative positions do not enforce it; we use it as the cap of each stack's length.
    #[serde(default)]
    pub n_positions: Option<usize>,
}

/// Each stack's length cap when `config.json` has no `n_positions`: T5 was pre-trained on
/// 512-token inputs and targets (Raffel et al. 2020, section 3.1.2); the cap keeps the
/// attention's memory (quadratic in the length) and an endless generation bounded.
pub const T5_DEFAULT_MAX_POSITIONS: usize = 512;

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ffn() -> String {
    "relu".to_owned()
}

/// A checked T5 configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct T5Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// FFN width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Decoder blocks.
    pub num_decoder_layers: usize,
    /// Attention heads per block.
    pub num_heads: usize,
    /// Number of relative-position buckets.
    pub num_buckets: usize,
    /// Relative distances at or beyond this share the last bucket.
    pub max_distance: usize,
    /// RMS-norm epsilon.
    pub layer_norm_epsilon: f64,
    /// FFN nonlinearity.
    pub activation: Activation,
    /// Whether the FFN is gated (`wi_0`, `wi_1`) rather than one `wi`.
    pub gated: bool,
    /// Whether the LM head is `shared.weight` rather than `lm_head.weight`.
    pub tied_head: bool,
    /// Whether the decoder output is multiplied by `d_model^-0.5` before the LM head.
    pub rescale_output: bool,
    /// The decoder's first input token.
    pub decoder_start_token_id: u32,
    /// End-of-sequence id generation stops at.
    pub eos_token_id: Option<u32>,
    /// The most tokens each stack reads: the input's length and the number of generated tokens
    /// are capped by it (`n_positions`, else [`T5_DEFAULT_MAX_POSITIONS`]).
    pub max_positions: usize,
}

impl T5Config {
    /// `num_heads * d_kv`, the width of the attention projections.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
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
        let file: T5ConfigFile =
            serde_json::from_str(text).map_err(|e| Error::InvalidConfig { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::try_from(file).map_err(|reason| Error::InvalidConfig { path: path.to_path_buf(), reason })
    }
}

/// `feed_forward_proj` as `transformers`' `T5Config` reads it: `gated-ACT` or `ACT`, with
/// `gated-gelu` meaning `gelu_new`.
fn parse_ffn(proj: &str) -> Result<(Activation, bool), String> {
    let (gated, act) = match proj.split_once('-') {
        Some(("gated", act)) if !act.contains('-') => (true, act),
        None => (false, proj),
        _ => return Err(format!("feed_forward_proj `{proj}` is not `gated-ACT` or `ACT`")),
    };
    let act = if proj == "gated-gelu" { "gelu_new" } else { act };
    let activation = Activation::from_hf_name(act).ok_or_else(|| format!("unsupported feed_forward_proj activation `{act}`"))?;
    Ok((activation, gated))
}

impl TryFrom<T5ConfigFile> for T5Config {
    type Error = String;

    fn try_from(f: T5ConfigFile) -> Result<Self, String> {
        let num_decoder_layers = f.num_decoder_layers.unwrap_or(f.num_layers);
        if f.d_model == 0 || f.d_kv == 0 || f.d_ff == 0 || f.num_heads == 0 || f.vocab_size == 0 {
            return Err("d_model, d_kv, d_ff, num_heads and vocab_size must be positive".into());
        }
        if f.num_layers == 0 || num_decoder_layers == 0 {
            return Err("num_layers and num_decoder_layers must be positive".into());
        }
        if f.num_heads.checked_mul(f.d_kv).is_none() {
            return Err("num_heads * d_kv is too large".into());
        }
        if f.relative_attention_num_buckets < 4 || f.relative_attention_max_distance == 0 {
            return Err("relative_attention_num_buckets must be at least 4 and relative_attention_max_distance positive".into());
        }
        let (activation, gated) = parse_ffn(&f.feed_forward_proj)?;
        let tied_head = f.tie_word_embeddings.unwrap_or(true);
        // transformers < 5 rescales exactly when the head is tied; transformers 5 writes the
        // switch as `scale_decoder_outputs` (and `tie_word_embeddings: true` always).
        let rescale_output = f.scale_decoder_outputs.unwrap_or(tied_head);
        let decoder_start_token_id = f.decoder_start_token_id.or(f.pad_token_id).unwrap_or(0);
        // `eos_token_id` may be a list; generation stops at the first.
        let eos_token_id = match f.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Some(serde_json::Value::Array(v)) => v.first().and_then(serde_json::Value::as_u64).and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        if decoder_start_token_id as usize >= f.vocab_size {
            return Err(format!("decoder_start_token_id {decoder_start_token_id} is outside the vocabulary ({})", f.vocab_size));
        }
        Ok(Self {
            vocab_size: f.vocab_size,
            d_model: f.d_model,
            d_kv: f.d_kv,
            d_ff: f.d_ff,
            num_layers: f.num_layers,
            num_decoder_layers,
            num_heads: f.num_heads,
            num_buckets: f.relative_attention_num_buckets,
            max_distance: f.relative_attention_max_distance,
            layer_norm_epsilon: f.layer_norm_epsilon,
            activation,
            gated,
            tied_head,
            rescale_output,
            decoder_start_token_id,
            eos_token_id,
            max_positions: match f.n_positions {
                Some(0) => return Err("n_positions must be positive".into()),
                Some(n) => n,
                None => T5_DEFAULT_MAX_POSITIONS,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<T5Config, String> {
        T5Config::try_from(serde_json::from_str::<T5ConfigFile>(json).map_err(|e| e.to_string())?)
    }

    #[test]
    fn variants_and_bad_configs() {
        let base = r#""vocab_size": 10, "d_model": 8, "d_kv": 4, "d_ff": 16, "num_layers": 2, "num_heads": 2"#;
        let t5 = parse(&format!("{{{base}}}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t5.activation, t5.gated, t5.tied_head, t5.rescale_output, t5.num_decoder_layers),
            (Activation::Relu, false, true, true, 2)
        );
        let flan =
            parse(&format!(r#"{{{base}, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false, "num_decoder_layers": 3}}"#))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (flan.activation, flan.gated, flan.tied_head, flan.rescale_output, flan.num_decoder_layers),
            (Activation::GeluTanh, true, false, false, 3)
        );
        let v5 = parse(&format!(r#"{{{base}, "tie_word_embeddings": true, "scale_decoder_outputs": false, "eos_token_id": [1, 5]}}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((v5.tied_head, v5.rescale_output, v5.eos_token_id), (true, false, Some(1)));
        assert!(parse(&format!(r#"{{{base}, "feed_forward_proj": "gated-mish"}}"#)).is_err());
        assert!(parse(&format!(r#"{{{base}, "feed_forward_proj": "fancy-gelu"}}"#)).is_err());
        assert!(parse(r#"{"vocab_size": 10, "d_model": 0, "d_kv": 4, "d_ff": 16, "num_layers": 2, "num_heads": 2}"#).is_err());
    }
}
