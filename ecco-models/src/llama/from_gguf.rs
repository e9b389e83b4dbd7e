//! The decoder configuration from GGUF metadata (llama.cpp's key names, `{arch}.block_count`,
//! `{arch}.embedding_length`, ...; `llama-arch.cpp` and `llama-model.cpp` for what each
//! architecture implies).

use super::config::{DecoderConfig, Family, LayerAttention, defaults};
use crate::activation::Activation;
use crate::gguf::{GgufError, GgufFile};
use crate::nn::rotary::{RopeConfig, RopeScaling};

impl DecoderConfig {
    /// Reads the configuration from a GGUF file's metadata (`{arch}.block_count`,
    /// `{arch}.embedding_length`, ...), and its tensors where llama.cpp keeps a setting there:
    /// `rope_freqs.weight` (Llama 3.1's rotary scaling), `output.weight` absent (tied head),
    /// `blk.0.attn_q.bias` (qkv bias), `blk.0.attn_q_norm.weight` (q/k norm).
    ///
    /// # Errors
    /// [`GgufError`] for missing or impossible values, or another architecture.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, GgufError> {
        let arch = file.architecture()?;
        let family = Family::from_gguf_architecture(arch).ok_or_else(|| GgufError::BadValue {
            key: "general.architecture".into(),
            reason: format!("`{arch}` is not supported (supported: llama, mistral, qwen2, qwen3, gemma2, gemma3)"),
        })?;
        let key = |k: &str| format!("{arch}.{k}");
        let opt_usize = |k: &str| file.get(&key(k)).map(|_| file.get_usize(&key(k))).transpose();
        let opt_f64 = |k: &str| file.get(&key(k)).map(|_| file.get_f64(&key(k))).transpose();
        let bad = |k: &str, reason: String| GgufError::BadValue { key: key(k), reason };

        let hidden_size = file.get_usize(&key("embedding_length"))?;
        let num_layers = file.get_usize(&key("block_count"))?;
        let num_heads = file.get_usize(&key("attention.head_count"))?;
        let intermediate_size = file.get_usize(&key("feed_forward_length"))?;
        let num_kv_heads = opt_usize("attention.head_count_kv")?.unwrap_or(num_heads);
        if num_heads == 0 || hidden_size == 0 {
            return Err(bad("attention.head_count", "heads and width must be positive".into()));
        }
        let head_dim = match opt_usize("attention.key_length")? {
            Some(h) => h,
            None => hidden_size / num_heads,
        };
        let vocab_size = match opt_usize("vocab_size")? {
            Some(v) => v,
            None => match file.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()) {
                Some(tokens) => tokens.len(),
                None => file
                    .tensor("token_embd.weight")
                    .and_then(|t| t.dims.get(1).copied())
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| GgufError::MissingKey(key("vocab_size")))?,
            },
        };
        let max_position_embeddings = opt_usize("context_length")?.unwrap_or(defaults(family).max_position_embeddings);
        let rotary_dim = opt_usize("rope.dimension_count")?.unwrap_or(head_dim);
        let theta = opt_f64("rope.freq_base")?.unwrap_or(defaults(family).rope_theta);
        let rms_norm_eps = opt_f64("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6);

        let scaling = match file.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
            None | Some("none") => None,
            Some("linear") => Some(RopeScaling::Linear { factor: opt_f64("rope.scaling.factor")?.unwrap_or(1.0) }),
            Some("yarn") => {
                let factor = opt_f64("rope.scaling.factor")?.ok_or_else(|| GgufError::MissingKey(key("rope.scaling.factor")))?;
                let original = opt_f64("rope.scaling.original_context_length")?.unwrap_or(max_position_embeddings as f64);
                Some(RopeScaling::Yarn {
                    factor,
                    original_max_position_embeddings: original,
                    beta_fast: opt_f64("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
                    beta_slow: opt_f64("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
                    attention_factor: opt_f64("rope.scaling.attn_factor")?,
                    mscale: None,
                    mscale_all_dim: None,
                    truncate: true,
                })
            }
            Some(other) => return Err(bad("rope.scaling.type", format!("`{other}` is not supported (supported: none, linear, yarn)"))),
        };
        let scaling = match (scaling, file.tensor("rope_freqs.weight")) {
            (Some(s), _) => s,
            (None, Some(info)) => RopeScaling::Factors(file.dequantize_info(info)?),
            (None, None) => RopeScaling::None,
        };
        let rope = RopeConfig { theta, rotary_dim, scaling };
        rope.validate().map_err(|e| bad("rope.freq_base", e.to_string()))?;
        let gemma = family.is_gemma();
        // GGUF does not record Gemma's `query_pre_attn_scalar`: llama.cpp takes `head_dim`, except
        // for the 27B models (46 layers in Gemma 2, 62 in Gemma 3), whose scalar is hidden / heads.
        let is_27b = matches!((family, num_layers), (Family::Gemma2, 46) | (Family::Gemma3, 62));
        let attention_scale = if is_27b { (hidden_size as f64 / num_heads as f64).powf(-0.5) } else { (head_dim as f64).powf(-0.5) };
        // llama.cpp's Gemma 3: sliding layers turn with base 10 000, unscaled; every 6th layer is
        // global (`set_swa_pattern(6)`); Gemma 2 alternates, starting with a sliding layer.
        let rope_local = (family == Family::Gemma3).then_some(RopeConfig { theta: 10_000.0, rotary_dim, scaling: RopeScaling::None });
        let sliding_window = opt_usize("attention.sliding_window")?.filter(|&w| w > 0);
        let layer_types = (0..num_layers)
            .map(|i| {
                let sliding = sliding_window.is_some()
                    && match family {
                        Family::Gemma2 => (i + 1) % 2 != 0,
                        Family::Gemma3 => (i + 1) % 6 != 0,
                        Family::Mistral => true,
                        _ => false,
                    };
                if sliding { LayerAttention::Sliding } else { LayerAttention::Full }
            })
            .collect::<Vec<_>>();
        let sliding_window = if layer_types.contains(&LayerAttention::Sliding) { sliding_window } else { None };
        let softcap = |k: &str| -> Result<Option<f64>, GgufError> { Ok(opt_f64(k)?.filter(|&c| c > 0.0)) };
        let tokens = file.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map_or(vocab_size, <[_]>::len);
        let token = |k: &str| file.get(k).and_then(|v| v.as_u64()).filter(|&id| (id as usize) < tokens).map(|id| id as u32);
        let mut eos_token_ids = Vec::new();
        for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(id) = token(k).filter(|id| !eos_token_ids.contains(id)) {
                eos_token_ids.push(id);
            }
        }
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
            rms_norm_eps,
            activation: if gemma { Activation::GeluTanh } else { Activation::Silu },
            rope,
            rope_local,
            qkv_bias: file.tensor("blk.0.attn_q.bias").is_some(),
            o_bias: file.tensor("blk.0.attn_output.bias").is_some(),
            mlp_bias: file.tensor("blk.0.ffn_up.bias").is_some(),
            qk_norm: file.tensor("blk.0.attn_q_norm.weight").is_some(),
            norm_plus_one: false,
            sandwich_norms: gemma,
            scale_embeddings: gemma,
            attention_scale,
            attn_logit_softcapping: if family == Family::Gemma2 { softcap("attn_logit_softcapping")? } else { None },
            final_logit_softcapping: if family == Family::Gemma2 { softcap("final_logit_softcapping")? } else { None },
            sliding_window,
            layer_types,
            tie_word_embeddings: file.tensor("output.weight").is_none(),
            bos_token_id: token("tokenizer.ggml.bos_token_id"),
            eos_token_ids,
        };
        config.check().map_err(|reason| GgufError::BadValue { key: format!("{arch}.*"), reason })?;
        Ok(config)
    }
}

/// The GGUF name of a Hugging Face tensor of `family` (`model.layers.3.self_attn.q_proj.weight`
/// → `blk.3.attn_q.weight`), as llama.cpp's converter names them (`gguf-py`'s
/// `tensor_mapping.py`); `None` for a name these families do not have. Llama files store
/// `attn_q` / `attn_k` rows permuted ([`crate::gguf::unpermute_rows`]); Gemma files store norm
/// weights with the 1 of `(1 + w)` added.
pub fn gguf_tensor_name(family: Family, hf_name: &str) -> Option<String> {
    match hf_name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = rest.rsplit_once('.')?;
    if kind != "weight" && kind != "bias" {
        return None;
    }
    let gemma = family.is_gemma();
    let name = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" if gemma => "ffn_norm",
        "post_feedforward_layernorm" if gemma => "post_ffw_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{name}.{kind}"))
}
