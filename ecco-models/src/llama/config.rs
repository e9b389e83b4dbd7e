//! The configuration of the Llama-family decoders (Llama, Mistral, Qwen2, Qwen3, Gemma 2,
//! Gemma 3): one struct of switches, read from a Hugging Face `config.json` or from GGUF
//! metadata.
//!
//! `config.json` is read into [`DecoderConfigFile`] (every field optional, as `transformers`
//! fills the absent ones with its config class's defaults), then checked into [`DecoderConfig`]
//! by `TryFrom`. Defaults per family are those of `transformers` 5.23's `LlamaConfig`,
//! `MistralConfig`, `Qwen2Config`, `Qwen3Config`, `Gemma2Config` and `Gemma3TextConfig`. Both
//! spellings of the rotary settings are read: `rope_theta` + `rope_scaling` (checkpoints saved
//! before transformers 5) and `rope_parameters` (flat, or keyed by layer type as Gemma 3 saves
//! it).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::nn::rotary::{RopeConfig, RopeScaling};

/// The `model_type`s this configuration covers.
pub const SUPPORTED: &[&str] = &["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3"];

/// A decoder family: decides the defaults and the wiring switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `llama` (Llama 2/3, TinyLlama, SmolLM).
    Llama,
    /// `mistral`.
    Mistral,
    /// `qwen2` (Qwen2, Qwen2.5).
    Qwen2,
    /// `qwen3`.
    Qwen3,
    /// `gemma2`.
    Gemma2,
    /// `gemma3_text` (and the text part of `gemma3`).
    Gemma3,
}

impl Family {
    /// The family of a `config.json` `model_type` (`gemma3` is read through its `text_config`).
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            "llama" => Self::Llama,
            "mistral" => Self::Mistral,
            "qwen2" => Self::Qwen2,
            "qwen3" => Self::Qwen3,
            "gemma2" => Self::Gemma2,
            "gemma3_text" | "gemma3" => Self::Gemma3,
            _ => return None,
        })
    }

    /// The family of a GGUF `general.architecture` (llama.cpp's names; Mistral 7B files say
    /// `llama`).
    pub fn from_gguf_architecture(arch: &str) -> Option<Self> {
        Some(match arch {
            "llama" => Self::Llama,
            "mistral" => Self::Mistral,
            "qwen2" => Self::Qwen2,
            "qwen3" => Self::Qwen3,
            "gemma2" => Self::Gemma2,
            "gemma3" => Self::Gemma3,
            _ => return None,
        })
    }

    pub(super) fn is_gemma(self) -> bool {
        matches!(self, Self::Gemma2 | Self::Gemma3)
    }
}

/// Whether a layer attends to every earlier position or to a sliding window of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerAttention {
    /// Causal attention over the whole prefix (`full_attention`).
    Full,
    /// Causal attention over the last `sliding_window` positions, itself included
    /// (`sliding_attention`: a query at `i` sees keys `j` with `i - window < j <= i`).
    Sliding,
}

/// `eos_token_id`: one id or a list (Llama 3.1 lists three).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

/// `config.json` as `transformers` writes it for these families (fields we read; others
/// ignored). Absent fields take the family's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DecoderConfigFile {
    /// `model_type`.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Vocabulary size.
    pub vocab_size: Option<usize>,
    /// Width of the residual stream.
    pub hidden_size: Option<usize>,
    /// FFN width.
    pub intermediate_size: Option<usize>,
    /// Number of blocks.
    pub num_hidden_layers: Option<usize>,
    /// Query heads.
    pub num_attention_heads: Option<usize>,
    /// Key/value heads (grouped-query attention).
    pub num_key_value_heads: Option<usize>,
    /// Width of a head, when not `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// FFN nonlinearity (Llama, Mistral, Qwen).
    pub hidden_act: Option<String>,
    /// FFN nonlinearity (Gemma).
    pub hidden_activation: Option<String>,
    /// Longest sequence.
    pub max_position_embeddings: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// Rotary base (before transformers 5).
    pub rope_theta: Option<f64>,
    /// Rotary scaling (before transformers 5).
    pub rope_scaling: Option<Json>,
    /// Rotary settings (transformers 5): flat, or keyed by layer type.
    pub rope_parameters: Option<Json>,
    /// Gemma 3's rotary base of the sliding layers (before transformers 5).
    pub rope_local_base_freq: Option<f64>,
    /// Fraction of a head that turns.
    pub partial_rotary_factor: Option<f64>,
    /// Biases on the attention projections.
    pub attention_bias: Option<bool>,
    /// Biases on the FFN projections (Llama).
    pub mlp_bias: Option<bool>,
    /// Whether the LM head shares the embedding.
    pub tie_word_embeddings: Option<bool>,
    /// Sliding-window width.
    pub sliding_window: Option<usize>,
    /// Qwen's switch for the sliding window.
    pub use_sliding_window: Option<bool>,
    /// Qwen: layers from this one on slide.
    pub max_window_layers: Option<usize>,
    /// Per layer: `full_attention` or `sliding_attention`.
    pub layer_types: Option<Vec<String>>,
    /// Gemma 3: every n-th layer is global.
    pub sliding_window_pattern: Option<usize>,
    /// Gemma: attention scores are scaled by `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: `tanh` soft-capping of attention scores.
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2: `tanh` soft-capping of the final logits.
    pub final_logit_softcapping: Option<f64>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id(s).
    pub eos_token_id: Option<OneOrMany>,
}

/// A checked decoder configuration: the switches the shared layers need.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderConfig {
    /// The family.
    pub family: Family,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// FFN width (the neurons of `blocks.{i}.mlp.post`).
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads; divides `num_heads`.
    pub num_kv_heads: usize,
    /// Width of a head (explicit in Qwen3 and Gemma; else `hidden_size / num_heads`).
    pub head_dim: usize,
    /// Longest sequence.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// The gated FFN's nonlinearity: `act(gate) * up` (SiLU, or GELU-tanh for Gemma).
    pub activation: Activation,
    /// Rotary embeddings of full-attention layers (all layers but Gemma 3's sliding ones).
    pub rope: RopeConfig,
    /// Rotary embeddings of sliding layers, when they differ (Gemma 3: base 10 000, unscaled).
    pub rope_local: Option<RopeConfig>,
    /// Biases on q, k and v (Qwen2; Llama/Qwen3/Gemma with `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (`attention_bias`, but not Qwen2).
    pub o_bias: bool,
    /// Biases on the FFN projections (`mlp_bias`).
    pub mlp_bias: bool,
    /// RMSNorm of each head's q and k before rotary (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Norms scale by `1 + w` (Gemma) instead of `w`. False for Gemma read from GGUF:
    /// llama.cpp's converter stores those weights with the 1 already added.
    pub norm_plus_one: bool,
    /// Norms after each sublayer as well as before (Gemma 2/3: `post_attention_layernorm`,
    /// `pre_feedforward_layernorm`, `post_feedforward_layernorm`).
    pub sandwich_norms: bool,
    /// Embeddings are multiplied by `sqrt(hidden_size)` (Gemma).
    pub scale_embeddings: bool,
    /// Attention scores are multiplied by this (`head_dim^-0.5`, or Gemma's
    /// `query_pre_attn_scalar^-0.5`).
    pub attention_scale: f64,
    /// `cap * tanh(scores / cap)` on attention scores (Gemma 2).
    pub attn_logit_softcapping: Option<f64>,
    /// `cap * tanh(logits / cap)` on the final logits (Gemma 2).
    pub final_logit_softcapping: Option<f64>,
    /// Sliding-window width, when some layer slides.
    pub sliding_window: Option<usize>,
    /// Per layer, full or sliding attention.
    pub layer_types: Vec<LayerAttention>,
    /// Whether the LM head shares the token embedding.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// Every end-of-sequence id (all stop generation).
    pub eos_token_ids: Vec<u32>,
}

/// `transformers`' defaults for a family.
pub(super) struct Defaults {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_layers: usize,
    num_heads: usize,
    /// `None`: as many as query heads.
    num_kv_heads: Option<usize>,
    head_dim: Option<usize>,
    pub(super) max_position_embeddings: usize,
    activation: &'static str,
    tie_word_embeddings: bool,
    pub(super) rope_theta: f64,
    sliding_window: Option<usize>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
}

pub(super) fn defaults(family: Family) -> Defaults {
    let llama = Defaults {
        vocab_size: 32000,
        hidden_size: 4096,
        intermediate_size: 11008,
        num_layers: 32,
        num_heads: 32,
        num_kv_heads: None,
        head_dim: None,
        max_position_embeddings: 2048,
        activation: "silu",
        tie_word_embeddings: false,
        rope_theta: 10_000.0,
        sliding_window: None,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    };
    let qwen = Defaults {
        vocab_size: 151_936,
        intermediate_size: 22016,
        num_kv_heads: Some(32),
        max_position_embeddings: 32768,
        sliding_window: Some(4096),
        bos_token_id: None,
        eos_token_id: None,
        ..llama
    };
    let gemma = Defaults {
        vocab_size: 256_000,
        hidden_size: 2304,
        intermediate_size: 9216,
        num_layers: 26,
        num_heads: 8,
        num_kv_heads: Some(4),
        head_dim: Some(256),
        max_position_embeddings: 8192,
        activation: "gelu_pytorch_tanh",
        tie_word_embeddings: true,
        rope_theta: 10_000.0,
        sliding_window: Some(4096),
        bos_token_id: Some(2),
        eos_token_id: Some(1),
    };
    match family {
        Family::Llama => llama,
        Family::Mistral => Defaults {
            intermediate_size: 14336,
            num_kv_heads: Some(8),
            max_position_embeddings: 4096 * 32,
            sliding_window: Some(4096),
            ..llama
        },
        Family::Qwen2 => qwen,
        Family::Qwen3 => Defaults { head_dim: Some(128), ..qwen },
        Family::Gemma2 => gemma,
        Family::Gemma3 => Defaults { vocab_size: 262_208, max_position_embeddings: 131_072, rope_theta: 1_000_000.0, ..gemma },
    }
}

/// A `rope_parameters` / `rope_scaling` object as a [`RopeConfig`] (`theta` and the rotary
/// dimension given; the object's own `rope_theta` wins).
pub(crate) fn rope_from_json(params: Option<&Json>, theta: f64, rotary_dim: usize, max_positions: usize) -> Result<RopeConfig, String> {
    let empty = serde_json::Map::new();
    let p = match params {
        None | Some(Json::Null) => &empty,
        Some(Json::Object(map)) => map,
        Some(other) => return Err(format!("rope settings must be an object, found {other}")),
    };
    let num = |key: &str| -> Result<Option<f64>, String> {
        match p.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("rope parameter `{key}` must be a number, found {v}")),
        }
    };
    let need = |key: &str| -> Result<f64, String> { num(key)?.ok_or_else(|| format!("rope scaling needs `{key}`")) };
    let theta = num("rope_theta")?.unwrap_or(theta);
    let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(Json::as_str).unwrap_or("default");
    let original = || -> Result<f64, String> { Ok(num("original_max_position_embeddings")?.unwrap_or(max_positions as f64)) };
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: need("factor")? },
        "llama3" => RopeScaling::Llama3 {
            factor: need("factor")?,
            low_freq_factor: need("low_freq_factor")?,
            high_freq_factor: need("high_freq_factor")?,
            original_max_position_embeddings: original()?,
        },
        "yarn" => {
            let original_max = original()?;
            RopeScaling::Yarn {
                // `factor: null` means max_position_embeddings / original_max_position_embeddings.
                factor: num("factor")?.unwrap_or(max_positions as f64 / original_max),
                original_max_position_embeddings: original_max,
                beta_fast: num("beta_fast")?.filter(|b| *b != 0.0).unwrap_or(32.0),
                beta_slow: num("beta_slow")?.filter(|b| *b != 0.0).unwrap_or(1.0),
                attention_factor: num("attention_factor")?,
                mscale: num("mscale")?,
                mscale_all_dim: num("mscale_all_dim")?,
                truncate: p.get("truncate").and_then(Json::as_bool).unwrap_or(true),
            }
        }
        other => return Err(format!("unsupported rope type `{other}` (supported: default, linear, llama3, yarn)")),
    };
    let config = RopeConfig { theta, rotary_dim, scaling };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

impl DecoderConfig {
    /// Reads and checks a `config.json`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unparsable or impossible config,
    /// [`Error::UnsupportedArchitecture`] for another `model_type`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ecco_core::Error::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses and checks the text of a `config.json`; `path` names it in errors. A `gemma3`
    /// config is read through its `text_config`.
    ///
    /// # Errors
    /// As [`DecoderConfig::from_file`].
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidConfig { path: path.to_path_buf(), reason };
        let mut json: Json = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let model_type = json.get("model_type").and_then(Json::as_str).unwrap_or("").to_owned();
        if Family::from_model_type(&model_type).is_none() {
            return Err(Error::UnsupportedArchitecture { found: model_type, supported: SUPPORTED.join(", ") });
        }
        if model_type == "gemma3" {
            let mut text_config = json.get_mut("text_config").map(Json::take).unwrap_or(Json::Object(serde_json::Map::new()));
            let Some(obj) = text_config.as_object_mut() else { return Err(invalid("`text_config` must be an object".into())) };
            obj.insert("model_type".into(), "gemma3_text".into());
            // The ids live at the top level of a multimodal config.
            for key in ["bos_token_id", "eos_token_id"] {
                if let Some(v) = json.get(key).filter(|_| !obj.contains_key(key)) {
                    obj.insert(key.into(), v.clone());
                }
            }
            json = text_config;
        }
        let file: DecoderConfigFile = serde_json::from_value(json).map_err(|e| invalid(e.to_string()))?;
        Self::try_from(file).map_err(invalid)
    }

    /// Whether layer `layer` uses a sliding window.
    pub fn is_sliding(&self, layer: usize) -> bool {
        self.layer_types.get(layer) == Some(&LayerAttention::Sliding)
    }

    /// The rotary settings of layer `layer`.
    pub fn rope_for_layer(&self, layer: usize) -> &RopeConfig {
        match (&self.rope_local, self.is_sliding(layer)) {
            (Some(local), true) => local,
            _ => &self.rope,
        }
    }

    /// Embeddings are multiplied by this before block 0 (Gemma: `sqrt(hidden_size)` rounded to
    /// f32, as `Gemma2Model` builds its `normalizer`; else 1).
    pub fn embedding_scale(&self) -> f32 {
        if self.scale_embeddings { (self.hidden_size as f32).sqrt() } else { 1.0 }
    }
}

impl TryFrom<DecoderConfigFile> for DecoderConfig {
    type Error = String;

    fn try_from(f: DecoderConfigFile) -> Result<Self, String> {
        let model_type = f.model_type.as_deref().unwrap_or("");
        let family = Family::from_model_type(model_type).ok_or_else(|| format!("unsupported model_type `{model_type}`"))?;
        let d = defaults(family);
        let hidden_size = f.hidden_size.unwrap_or(d.hidden_size);
        let num_heads = f.num_attention_heads.unwrap_or(d.num_heads);
        let num_layers = f.num_hidden_layers.unwrap_or(d.num_layers);
        let vocab_size = f.vocab_size.unwrap_or(d.vocab_size);
        let intermediate_size = f.intermediate_size.unwrap_or(d.intermediate_size);
        if hidden_size == 0 || num_heads == 0 || num_layers == 0 || vocab_size == 0 || intermediate_size == 0 {
            return Err("hidden_size, num_attention_heads, num_hidden_layers, vocab_size and intermediate_size must be positive".into());
        }
        let num_kv_heads = f.num_key_value_heads.or(d.num_kv_heads).unwrap_or(num_heads);
        let head_dim = match f.head_dim.or(d.head_dim) {
            Some(h) => h,
            None if hidden_size.is_multiple_of(num_heads) => hidden_size / num_heads,
            None => {
                return Err(format!(
                    "hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_heads}) and no head_dim is given"
                ));
            }
        };
        let max_position_embeddings = f.max_position_embeddings.unwrap_or(d.max_position_embeddings);
        let act_name =
            if family.is_gemma() { f.hidden_activation.or(f.hidden_act) } else { f.hidden_act }.unwrap_or_else(|| d.activation.to_owned());
        let activation = Activation::from_hf_name(&act_name).ok_or_else(|| format!("unsupported activation `{act_name}`"))?;
        let partial = f.partial_rotary_factor.unwrap_or(1.0);
        if !(partial > 0.0 && partial <= 1.0) {
            return Err(format!("partial_rotary_factor must be in (0, 1], found {partial}"));
        }
        let rotary_dim = (head_dim as f64 * partial) as usize;
        let theta = f.rope_theta.unwrap_or(d.rope_theta);

        // `rope_parameters` keyed by layer type (Gemma 3 in transformers 5), or one object.
        let nested = f
            .rope_parameters
            .as_ref()
            .and_then(Json::as_object)
            .filter(|m| m.contains_key("full_attention") || m.contains_key("sliding_attention"));
        let (rope, rope_local) = match (family, nested) {
            (_, Some(by_type)) => {
                let full =
                    rope_from_json(by_type.get("full_attention").or(f.rope_scaling.as_ref()), theta, rotary_dim, max_position_embeddings)?;
                let local = match by_type.get("sliding_attention") {
                    Some(p) => {
                        Some(rope_from_json(Some(p), f.rope_local_base_freq.unwrap_or(10_000.0), rotary_dim, max_position_embeddings)?)
                    }
                    None => None,
                };
                (full, local)
            }
            (Family::Gemma3, None) => {
                let params = f.rope_parameters.as_ref().or(f.rope_scaling.as_ref());
                let full = rope_from_json(params, theta, rotary_dim, max_position_embeddings)?;
                let local = rope_from_json(None, f.rope_local_base_freq.unwrap_or(10_000.0), rotary_dim, max_position_embeddings)?;
                (full, Some(local))
            }
            (_, None) => {
                (rope_from_json(f.rope_parameters.as_ref().or(f.rope_scaling.as_ref()), theta, rotary_dim, max_position_embeddings)?, None)
            }
        };

        // Sliding windows: Mistral slides on every layer when `sliding_window` is set; Qwen only
        // with `use_sliding_window`, from `max_window_layers` on; Gemma 2 on even layers; Gemma 3
        // on all but every `sliding_window_pattern`-th. An explicit `layer_types` wins.
        let sliding_window = match family {
            Family::Qwen2 | Family::Qwen3 if !f.use_sliding_window.unwrap_or(false) => None,
            Family::Llama => None,
            // An explicit `null` in config.json reads as absent and means "no window" for Mistral.
            Family::Mistral => f.sliding_window,
            _ => f.sliding_window.or(d.sliding_window),
        };
        let layer_types = match &f.layer_types {
            Some(types) => {
                if types.len() != num_layers {
                    return Err(format!("layer_types has {} entries for {num_layers} layers", types.len()));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(LayerAttention::Full),
                        "sliding_attention" => Ok(LayerAttention::Sliding),
                        other => Err(format!("unsupported layer type `{other}` (supported: full_attention, sliding_attention)")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => (0..num_layers)
                .map(|i| {
                    let sliding = match family {
                        Family::Llama => false,
                        Family::Mistral => sliding_window.is_some(),
                        Family::Qwen2 | Family::Qwen3 => sliding_window.is_some() && i >= f.max_window_layers.unwrap_or(28),
                        Family::Gemma2 => (i + 1) % 2 != 0,
                        Family::Gemma3 => (i + 1) % f.sliding_window_pattern.unwrap_or(6).max(1) != 0,
                    };
                    if sliding { LayerAttention::Sliding } else { LayerAttention::Full }
                })
                .collect(),
        };
        let sliding_window = if layer_types.contains(&LayerAttention::Sliding) { sliding_window } else { None };
        if layer_types.contains(&LayerAttention::Sliding) && sliding_window.is_none_or(|w| w == 0) {
            return Err("sliding layers need a positive sliding_window".into());
        }

        let attention_bias = f.attention_bias.unwrap_or(false);
        let gemma = family.is_gemma();
        let query_pre_attn_scalar = if gemma { Some(f.query_pre_attn_scalar.unwrap_or(256.0)) } else { None };
        let attention_scale = match query_pre_attn_scalar {
            Some(s) if s > 0.0 && s.is_finite() => s.powf(-0.5),
            Some(s) => return Err(format!("query_pre_attn_scalar must be positive, found {s}")),
            None => (head_dim as f64).powf(-0.5),
        };
        let (attn_cap, final_cap) = match family {
            Family::Gemma2 => (f.attn_logit_softcapping.or(Some(50.0)), f.final_logit_softcapping.or(Some(30.0))),
            Family::Gemma3 => (f.attn_logit_softcapping, f.final_logit_softcapping),
            _ => (None, None),
        };
        for (name, cap) in [("attn_logit_softcapping", attn_cap), ("final_logit_softcapping", final_cap)] {
            if cap.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
                return Err(format!("{name} must be positive"));
            }
        }
        let eos_token_ids = match f.eos_token_id {
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
            None => d.eos_token_id.into_iter().collect(),
        };
        let config = Self {
            family,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            max_position_embeddings,
            rms_norm_eps: f.rms_norm_eps.unwrap_or(1e-6),
            activation,
            rope,
            rope_local,
            qkv_bias: family == Family::Qwen2 || attention_bias,
            o_bias: family != Family::Qwen2 && attention_bias,
            mlp_bias: family == Family::Llama && f.mlp_bias.unwrap_or(false),
            qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
            norm_plus_one: gemma,
            sandwich_norms: gemma,
            scale_embeddings: gemma,
            attention_scale,
            attn_logit_softcapping: attn_cap,
            final_logit_softcapping: final_cap,
            sliding_window,
            layer_types,
            tie_word_embeddings: f.tie_word_embeddings.unwrap_or(d.tie_word_embeddings),
            bos_token_id: f.bos_token_id.or(d.bos_token_id),
            eos_token_ids,
        };
        config.check()?;
        Ok(config)
    }
}

impl DecoderConfig {
    /// The checks every source shares.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.head_dim == 0 || self.num_kv_heads == 0 || self.max_position_embeddings == 0 {
            return Err("head_dim, num_key_value_heads and max_position_embeddings must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.rope.rotary_dim > self.head_dim {
            return Err(format!("the rotary dimension ({}) exceeds head_dim ({})", self.rope.rotary_dim, self.head_dim));
        }
        if !(self.rms_norm_eps >= 0.0 && self.rms_norm_eps.is_finite()) {
            return Err(format!("rms_norm_eps must be a non-negative number, found {}", self.rms_norm_eps));
        }
        if let Some(id) = self.eos_token_ids.iter().chain(&self.bos_token_id).find(|&&id| id as usize >= self.vocab_size) {
            return Err(format!("special token id {id} is outside the vocabulary ({})", self.vocab_size));
        }
        Ok(())
    }
}
