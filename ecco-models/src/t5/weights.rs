//! Loading a Hugging Face T5 checkpoint. The names:
//!
//! | part | name |
//! |---|---|
//! | token embeddings (both stacks, tied head) | `shared.weight` (copies `{encoder,decoder}.embed_tokens.weight` ignored) |
//! | block `i` of stack `S` | `S.block.{i}.` |
//! | self-attention, its norm | `layer.0.SelfAttention.{q,k,v,o}.weight`, `layer.0.layer_norm.weight` |
//! | relative-position bias (block 0 only) | `layer.0.SelfAttention.relative_attention_bias.weight` |
//! | cross-attention (decoder), its norm | `layer.1.EncDecAttention.{q,k,v,o}.weight`, `layer.1.layer_norm.weight` |
//! | FFN (activations = input of `wo`), its norm | `layer.{1,2}.DenseReluDense.{wi \| wi_0, wi_1}.weight`, `…wo.weight`, `layer.{1,2}.layer_norm.weight` |
//! | final norm | `S.final_layer_norm.weight` |
//! | untied LM head (flan-t5) | `lm_head.weight` |

use std::path::Path;

use burn::tensor::Device;
use ecco_core::{ModelInfo, ModelKind};

use crate::error::Result;
use crate::nn::{Attend, Ffn, Linear, RmsNorm};
use crate::t5::attention::Attention;
use crate::t5::block::{Block, CrossAttention};
use crate::t5::config::T5Config;
use crate::t5::model::{Stack, T5};
use crate::weights::WeightSource;

/// Names a checkpoint may hold that the model does not use: the stacks' copies of the shared
/// embeddings, a tied head's copy, and the unused cross-attention bias of old checkpoints.
fn is_allowed_extra(name: &str, tied: bool) -> bool {
    name.ends_with("embed_tokens.weight")
        || (tied && name == "lm_head.weight")
        || name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"
}

/// Loads T5 from `dir` (`model.safetensors` or shards) onto `device`.
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load(dir: &Path, config: T5Config, name: &str, device: &Device) -> Result<T5> {
    load_from(WeightSource::open(dir)?, config, name, device)
}

fn attention(src: &mut WeightSource, p: &str, c: &T5Config, device: &Device) -> Result<Attention> {
    let (d, inner) = (c.d_model, c.inner_dim());
    let mut linear = |name: &str, d_in: usize, d_out: usize| Linear::load_torch(src, &format!("{p}.{name}"), d_in, d_out, false, device);
    Ok(Attention {
        q: linear("q", d, inner)?,
        k: linear("k", d, inner)?,
        v: linear("v", d, inner)?,
        o: linear("o", inner, d)?,
        core: Attend::multi_head(c.num_heads, c.d_kv, 1.0),
    })
}

fn norm(src: &mut WeightSource, p: &str, c: &T5Config, device: &Device) -> Result<RmsNorm> {
    Ok(RmsNorm { weight: src.take(&format!("{p}.weight"), [c.d_model], device)?, eps: c.layer_norm_epsilon, plus_one: false })
}

fn ffn(src: &mut WeightSource, p: &str, c: &T5Config, device: &Device) -> Result<Ffn> {
    let (d, ff) = (c.d_model, c.d_ff);
    let mut linear = |name: &str, d_in: usize, d_out: usize| Linear::load_torch(src, &format!("{p}.{name}"), d_in, d_out, false, device);
    let (up, gate) = if c.gated { (linear("wi_1", d, ff)?, Some(linear("wi_0", d, ff)?)) } else { (linear("wi", d, ff)?, None) };
    Ok(Ffn { up, gate, down: linear("wo", ff, d)?, act: c.activation })
}

fn stack(src: &mut WeightSource, s: &str, n_layers: usize, is_decoder: bool, c: &T5Config, device: &Device) -> Result<Stack> {
    let relative_attention_bias =
        src.take(&format!("{s}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"), [c.num_buckets, c.num_heads], device)?;
    // Not reserved from config.json's count: the checkpoint's tensors bound it (a missing block
    // is an error), a number in a config file does not.
    let mut blocks = Vec::new();
    for i in 0..n_layers {
        let p = format!("{s}.block.{i}.layer");
        let cross = if is_decoder {
            Some(CrossAttention {
                layer_norm: norm(src, &format!("{p}.1.layer_norm"), c, device)?,
                attention: attention(src, &format!("{p}.1.EncDecAttention"), c, device)?,
            })
        } else {
            None
        };
        let ff = if is_decoder { 2 } else { 1 };
        blocks.push(Block {
            self_norm: norm(src, &format!("{p}.0.layer_norm"), c, device)?,
            self_attention: attention(src, &format!("{p}.0.SelfAttention"), c, device)?,
            cross,
            ff_norm: norm(src, &format!("{p}.{ff}.layer_norm"), c, device)?,
            ffn: ffn(src, &format!("{p}.{ff}.DenseReluDense"), c, device)?,
        });
    }
    Ok(Stack {
        block: blocks,
        relative_attention_bias,
        final_layer_norm: norm(src, &format!("{s}.final_layer_norm"), c, device)?,
        is_decoder,
        max_distance: c.max_distance,
    })
}

/// Loads T5 from an open checkpoint (a directory's files or bytes in memory) onto `device`.
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load_from(mut src: WeightSource, config: T5Config, name: &str, device: &Device) -> Result<T5> {
    let (vocab, d) = (config.vocab_size, config.d_model);
    let shared_name = if !src.contains("shared.weight") && src.contains("encoder.embed_tokens.weight") {
        "encoder.embed_tokens.weight"
    } else {
        "shared.weight"
    };
    let shared = src.take(shared_name, [vocab, d], device)?;
    let encoder = stack(&mut src, "encoder", config.num_layers, false, &config, device)?;
    let decoder = stack(&mut src, "decoder", config.num_decoder_layers, true, &config, device)?;
    let tied = config.tied_head;
    let lm_head = if tied { None } else { Some(src.take("lm_head.weight", [vocab, d], device)?) };
    src.finish(|n| is_allowed_extra(n, tied))?;
    let info = ModelInfo {
        name: name.to_owned(),
        family: "t5".to_owned(),
        kind: ModelKind::EncoderDecoder,
        n_layers: config.num_decoder_layers,
        hidden_size: d,
        n_heads: config.num_heads,
        intermediate_size: config.d_ff,
        vocab_size: vocab,
        max_positions: Some(config.max_positions),
    };
    Ok(T5 { shared, encoder, decoder, lm_head, config, info, device: device.clone() })
}
