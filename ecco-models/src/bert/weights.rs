//! Loading a BERT-family checkpoint. The three members name the same parts differently, so the
//! mapping is one table per member ([`NAMES`]) rather than a module tree that mirrors the names.
//!
//! | part | BERT (`bert.`) | RoBERTa (`roberta.`) | DistilBERT (`distilbert.`) |
//! |---|---|---|---|
//! | word / position / type embeddings | `embeddings.{word,position,token_type}_embeddings` | same | no token types |
//! | embedding norm | `embeddings.LayerNorm` | same | same |
//! | layer `i` | `encoder.layer.{i}.` | same | `transformer.layer.{i}.` |
//! | query, key, value | `attention.self.{query,key,value}` | same | `attention.{q,k,v}_lin` |
//! | attention output, its norm | `attention.output.dense`, `attention.output.LayerNorm` | same | `attention.out_lin`, `sa_layer_norm` |
//! | FFN in, FFN out (activations = its input), norm | `intermediate.dense`, `output.dense`, `output.LayerNorm` | same | `ffn.lin1`, `ffn.lin2`, `output_layer_norm` |
//! | MLM head: dense, norm, bias, decoder | `cls.predictions.transform.{dense,LayerNorm}`, `cls.predictions.bias`, `cls.predictions.decoder` | `lm_head.{dense,layer_norm,bias,decoder}` | `vocab_transform`, `vocab_layer_norm`, `vocab_projector.{bias,weight}` |
//!
//! Body names carry the prefix when the checkpoint was saved from a `*ForMaskedLM` model and
//! none when saved from the bare model (MiniLM); head names never do. The decoder is tied to the
//! word embeddings unless the checkpoint stores its own.

use std::path::Path;

use burn::tensor::Device;
use ecco_core::{ModelInfo, ModelKind};

use crate::activation::Activation;
use crate::bert::attention::Attention;
use crate::bert::config::{BertConfig, Variant};
use crate::bert::embeddings::Embeddings;
use crate::bert::layer::Layer;
use crate::bert::model::{Bert, MlmHead};
use crate::error::Result;
use crate::nn::{Attend, Ffn, LayerNorm, Linear};
use crate::weights::WeightSource;

/// The checkpoint names of one member of the family.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// Prefix of the body's names in `*ForMaskedLM` checkpoints.
    pub prefix: &'static str,
    /// Word embeddings.
    pub word: &'static str,
    /// Position embeddings.
    pub position: &'static str,
    /// Token-type embeddings, if the member has them.
    pub token_type: Option<&'static str>,
    /// Norm of the embedding sum.
    pub embeddings_norm: &'static str,
    /// Layer `i` is `{layers}.{i}`.
    pub layers: &'static str,
    /// Query, key and value projections, inside a layer.
    pub qkv: [&'static str; 3],
    /// Attention output projection, inside a layer.
    pub attention_output: &'static str,
    /// Norm after attention, inside a layer.
    pub attention_norm: &'static str,
    /// FFN input projection, inside a layer.
    pub intermediate: &'static str,
    /// FFN output projection, inside a layer.
    pub output: &'static str,
    /// Norm after the FFN, inside a layer.
    pub output_norm: &'static str,
    /// MLM head: transform dense, transform norm, output bias, decoder weight (absolute names).
    pub head: [&'static str; 4],
    /// Whether the head's nonlinearity is always exact GELU (RoBERTa) rather than the config's.
    pub head_always_gelu: bool,
}

/// The name table: BERT, RoBERTa, DistilBERT.
pub const NAMES: [(Variant, Names); 3] = [
    (
        Variant::Bert,
        Names {
            prefix: "bert.",
            word: "embeddings.word_embeddings",
            position: "embeddings.position_embeddings",
            token_type: Some("embeddings.token_type_embeddings"),
            embeddings_norm: "embeddings.LayerNorm",
            layers: "encoder.layer",
            qkv: ["attention.self.query", "attention.self.key", "attention.self.value"],
            attention_output: "attention.output.dense",
            attention_norm: "attention.output.LayerNorm",
            intermediate: "intermediate.dense",
            output: "output.dense",
            output_norm: "output.LayerNorm",
            head: [
                "cls.predictions.transform.dense",
                "cls.predictions.transform.LayerNorm",
                "cls.predictions.bias",
                "cls.predictions.decoder.weight",
            ],
            head_always_gelu: false,
        },
    ),
    (
        Variant::Roberta,
        Names {
            prefix: "roberta.",
            word: "embeddings.word_embeddings",
            position: "embeddings.position_embeddings",
            token_type: Some("embeddings.token_type_embeddings"),
            embeddings_norm: "embeddings.LayerNorm",
            layers: "encoder.layer",
            qkv: ["attention.self.query", "attention.self.key", "attention.self.value"],
            attention_output: "attention.output.dense",
            attention_norm: "attention.output.LayerNorm",
            intermediate: "intermediate.dense",
            output: "output.dense",
            output_norm: "output.LayerNorm",
            head: ["lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder.weight"],
            head_always_gelu: true,
        },
    ),
    (
        Variant::DistilBert,
        Names {
            prefix: "distilbert.",
            word: "embeddings.word_embeddings",
            position: "embeddings.position_embeddings",
            token_type: None,
            embeddings_norm: "embeddings.LayerNorm",
            layers: "transformer.layer",
            qkv: ["attention.q_lin", "attention.k_lin", "attention.v_lin"],
            attention_output: "attention.out_lin",
            attention_norm: "sa_layer_norm",
            intermediate: "ffn.lin1",
            output: "ffn.lin2",
            output_norm: "output_layer_norm",
            head: ["vocab_transform", "vocab_layer_norm", "vocab_projector.bias", "vocab_projector.weight"],
            head_always_gelu: false,
        },
    ),
];

/// Names a checkpoint may hold that the model does not use: buffers (`position_ids`,
/// `token_type_ids`), the pooler and pre-training heads of `BertModel` / `BertForPreTraining`
/// checkpoints, and the decoder's bias copy.
fn is_allowed_extra(name: &str) -> bool {
    name.ends_with("embeddings.position_ids")
        || name.ends_with("embeddings.token_type_ids")
        || name.starts_with("pooler.")
        || name.contains(".pooler.")
        || name.starts_with("cls.seq_relationship.")
        || name.ends_with("decoder.bias")
}

/// The name table of `variant`.
pub fn names(variant: Variant) -> Names {
    NAMES.iter().find(|(v, _)| *v == variant).map_or(NAMES[0].1, |(_, n)| *n)
}

fn linear(src: &mut WeightSource, p: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
    Linear::load_torch(src, p, d_in, d_out, true, device)
}

fn norm(src: &mut WeightSource, p: &str, h: usize, eps: f64, device: &Device) -> Result<LayerNorm> {
    Ok(LayerNorm { weight: src.take(&format!("{p}.weight"), [h], device)?, bias: src.take(&format!("{p}.bias"), [h], device)?, eps })
}

/// Loads a BERT-family model from `dir` (`model.safetensors` or shards) onto `device`, with its
/// masked-LM head when the checkpoint has one.
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load(dir: &Path, config: BertConfig, name: &str, device: &Device) -> Result<Bert> {
    load_from(WeightSource::open(dir)?, config, name, device)
}

/// Loads a BERT-family model from an open checkpoint (a directory's files or bytes in memory).
///
/// # Errors
/// Missing, misshapen or unexpected tensors.
pub fn load_from(mut src: WeightSource, config: BertConfig, name: &str, device: &Device) -> Result<Bert> {
    let n = names(config.variant);
    if !src.contains(&format!("{}.weight", n.word)) && src.contains_exact(&format!("{}{}.weight", n.prefix, n.word)) {
        src.set_prefix(n.prefix);
    }
    let (h, inner, vocab, eps) = (config.hidden_size, config.intermediate_size, config.vocab_size, config.layer_norm_eps);
    let embeddings = Embeddings {
        word_embeddings: src.take(&format!("{}.weight", n.word), [vocab, h], device)?,
        position_embeddings: src.take(&format!("{}.weight", n.position), [config.max_position_embeddings, h], device)?,
        token_type_embeddings: match n.token_type {
            Some(t) if config.type_vocab_size > 0 => Some(src.take(&format!("{t}.weight"), [config.type_vocab_size, h], device)?),
            _ => None,
        },
        layer_norm: norm(&mut src, n.embeddings_norm, h, eps, device)?,
        position_offset: config.position_offset,
    };
    // Not reserved from config.json's count: the checkpoint's tensors bound it (a missing block
    // is an error), a number in a config file does not.
    let mut layers = Vec::new();
    for i in 0..config.n_layers {
        let p = |part: &str| format!("{}.{i}.{part}", n.layers);
        layers.push(Layer {
            attention: Attention {
                query: linear(&mut src, &p(n.qkv[0]), h, h, device)?,
                key: linear(&mut src, &p(n.qkv[1]), h, h, device)?,
                value: linear(&mut src, &p(n.qkv[2]), h, h, device)?,
                output: linear(&mut src, &p(n.attention_output), h, h, device)?,
                layer_norm: norm(&mut src, &p(n.attention_norm), h, eps, device)?,
                core: Attend::multi_head(config.n_heads, config.head_dim(), 1.0 / (config.head_dim() as f64).sqrt()),
            },
            ffn: Ffn {
                up: linear(&mut src, &p(n.intermediate), h, inner, device)?,
                gate: None,
                down: linear(&mut src, &p(n.output), inner, h, device)?,
                act: config.activation,
            },
            output_layer_norm: norm(&mut src, &p(n.output_norm), h, eps, device)?,
        });
    }
    src.set_prefix("");
    let [dense, head_norm, bias, decoder] = n.head;
    let mlm_head = if src.contains_exact(bias) {
        Some(MlmHead {
            dense: linear(&mut src, dense, h, h, device)?,
            act: if n.head_always_gelu { Activation::Gelu } else { config.activation },
            layer_norm: norm(&mut src, head_norm, h, eps, device)?,
            decoder: if src.contains_exact(decoder) { Some(src.take(decoder, [vocab, h], device)?) } else { None },
            bias: src.take(bias, [vocab], device)?,
        })
    } else {
        None
    };
    src.finish(is_allowed_extra)?;
    let info = ModelInfo {
        name: name.to_owned(),
        family: config.variant.name().to_owned(),
        kind: ModelKind::Masked,
        n_layers: config.n_layers,
        hidden_size: h,
        n_heads: config.n_heads,
        intermediate_size: inner,
        vocab_size: vocab,
        max_positions: Some(config.max_positions()),
    };
    Ok(Bert { embeddings, layer: layers, mlm_head, config, info, device: device.clone() })
}
