//! Loading a Hugging Face GPT-2 checkpoint. The module tree mirrors the checkpoint's names
//! (`wte`, `wpe`, `h.{i}.ln_1`, `h.{i}.attn.c_attn`, `h.{i}.mlp.c_fc`, `ln_f`), optionally
//! under `transformer.` (checkpoints saved from `GPT2LMHeadModel`).

use std::path::Path;

use burn::tensor::Device;
use ecco_core::{ModelInfo, ModelKind};

use crate::error::Result;
use crate::gpt2::attention::Attention;
use crate::gpt2::block::{Block, Mlp};
use crate::gpt2::config::Gpt2Config;
use crate::gpt2::model::Gpt2;
use crate::host::HostMatrix;
use crate::nn::{Attend, LayerNorm, Linear};
use crate::weights::WeightSource;

/// Buffers some GPT-2 checkpoints carry that hold no weights: the causal-mask `attn.bias` and
/// `attn.masked_bias` of older `transformers` versions, and a tied `lm_head.weight` copy.
fn is_allowed_extra(name: &str, tied: bool) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || (tied && name == "lm_head.weight")
}

/// Loads GPT-2 from `dir` (`model.safetensors` or shards) onto `device`.
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load(dir: &Path, config: Gpt2Config, name: &str, device: &Device) -> Result<Gpt2> {
    load_from(WeightSource::open(dir)?, config, name, device)
}

/// Loads GPT-2 from an open checkpoint (a directory's files or bytes in memory) onto `device`.
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load_from(mut src: WeightSource, config: Gpt2Config, name: &str, device: &Device) -> Result<Gpt2> {
    if !src.contains("wte.weight") && src.contains_exact("transformer.wte.weight") {
        src.set_prefix("transformer.");
    }
    let (h, inner, vocab) = (config.n_embd, config.n_inner, config.vocab_size);
    let eps = config.layer_norm_epsilon;
    let ln = |src: &mut WeightSource, p: &str| -> Result<LayerNorm> {
        Ok(LayerNorm { weight: src.take(&format!("{p}.weight"), [h], device)?, bias: src.take(&format!("{p}.bias"), [h], device)?, eps })
    };
    // On the CPU, one-row products read the mapped weights in place (`crate::host`).
    let cpu = crate::device::is_cpu(device);
    let host = |bytes: Option<bytes::Bytes>, rows: usize, cols: usize| bytes.filter(|_| cpu).and_then(|b| HostMatrix::new(b, rows, cols));
    // `Conv1D` stores its weight `[in, out]`, as `Linear` does.
    let conv = |src: &mut WeightSource, p: &str, d_in: usize, d_out: usize| -> Result<Linear> {
        let (weight, shared) = src.take_shared(&format!("{p}.weight"), [d_in, d_out], device)?;
        Ok(Linear { weight, bias: Some(src.take(&format!("{p}.bias"), [d_out], device)?), host: host(shared, d_in, d_out) })
    };
    let (wte, wte_shared) = src.take_shared("wte.weight", [vocab, h], device)?;
    let wpe = src.take("wpe.weight", [config.n_positions, h], device)?;
    // Not reserved from config.json's count: the checkpoint's tensors bound it (a missing block
    // is an error), a number in a config file does not.
    let mut blocks = Vec::new();
    for i in 0..config.n_layer {
        let p = format!("h.{i}");
        let mut scale = if config.scale_attn_weights { 1.0 / (config.head_dim() as f64).sqrt() } else { 1.0 };
        if config.scale_attn_by_inverse_layer_idx {
            scale /= (i + 1) as f64;
        }
        blocks.push(Block {
            ln_1: ln(&mut src, &format!("{p}.ln_1"))?,
            attn: Attention {
                c_attn: conv(&mut src, &format!("{p}.attn.c_attn"), h, 3 * h)?,
                c_proj: conv(&mut src, &format!("{p}.attn.c_proj"), h, h)?,
                core: Attend::multi_head(config.n_head, config.head_dim(), scale),
            },
            ln_2: ln(&mut src, &format!("{p}.ln_2"))?,
            mlp: Mlp {
                c_fc: conv(&mut src, &format!("{p}.mlp.c_fc"), h, inner)?,
                c_proj: conv(&mut src, &format!("{p}.mlp.c_proj"), inner, h)?,
                act: config.activation,
            },
        });
    }
    let ln_f = ln(&mut src, "ln_f")?;
    let tied = config.tie_word_embeddings;
    let (lm_head, head_host) = if tied {
        (None, host(wte_shared, vocab, h))
    } else {
        src.set_prefix("");
        let (head, shared) = src.take_shared("lm_head.weight", [vocab, h], device)?;
        (Some(head), host(shared, vocab, h))
    };
    src.finish(|n| is_allowed_extra(n, tied))?;
    let info = ModelInfo {
        name: name.to_owned(),
        family: "gpt2".to_owned(),
        kind: ModelKind::Causal,
        n_layers: config.n_layer,
        hidden_size: h,
        n_heads: config.n_head,
        intermediate_size: inner,
        vocab_size: vocab,
        max_positions: Some(config.n_positions),
    };
    Ok(Gpt2 { wte, wpe, h: blocks, ln_f, lm_head, head_host, config, info, device: device.clone() })
}
