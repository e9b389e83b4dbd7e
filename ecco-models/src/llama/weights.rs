//! Loading a decoder from a Hugging Face checkpoint (`model.embed_tokens`, `model.layers.{i}.…`,
//! `model.norm`, `lm_head`; safetensors in F32, F16 or BF16, sharded or not) or from a GGUF file
//! (llama.cpp's names, dequantized to f32, the q/k row permutation of Llama files undone).
//!
//! Each `nn.Linear` weight is read, widened to f32 and transposed one tensor at a time into the
//! buffer the model keeps, so loading never holds a second full copy of the model in f32. That
//! buffer is shared between burn and the decoding kernels ([`HostMatrix`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{AllocationProperty, Bytes, DType, Device, Tensor, TensorData};
use ecco_core::{ModelInfo, ModelKind};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::host::HostMatrix;
use crate::llama::attention::Attention;
use crate::llama::block::Block;
use crate::llama::config::{DecoderConfig, Family};
use crate::llama::from_gguf::gguf_tensor_name;
use crate::llama::model::Decoder;
use crate::nn::rotary::{RopeConfig, RopeLayout, Rotary};
use crate::nn::{Attend, Ffn, Linear, RmsNorm};
use crate::weights::WeightSource;

/// Longest sequence the rotary tables cover: the context length, up to this many positions
/// (the tables take `2 * positions * head_dim` floats; Gemma 3 declares 131 072 positions).
const MAX_TABLE_POSITIONS: usize = 8192;

/// Where the tensors come from, asked for by their Hugging Face names.
enum Source<'a> {
    /// A safetensors (or `pytorch_model.bin`) checkpoint.
    Hf(WeightSource),
    /// A GGUF file.
    Gguf {
        /// The parsed file.
        file: &'a GgufFile,
        /// Its path, for errors.
        path: PathBuf,
        /// The family, for llama.cpp's tensor names.
        family: Family,
        /// Whether `attn_q` / `attn_k` rows are stored permuted (`general.architecture = llama`).
        permuted: bool,
        /// Query and key/value heads, for the permutation.
        heads: (usize, usize),
        /// The GGUF names read so far.
        taken: BTreeSet<String>,
    },
}

/// f32 values kept alive by the [`Bytes`] that burn and [`HostMatrix`] share.
struct F32Owner(Vec<f32>);

impl AsRef<[u8]> for F32Owner {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// `values` `[rows, cols]` as a tensor on `device` and, on the CPU, the same buffer for the
/// decoding kernels (one allocation for both).
fn shared_matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> (Tensor<2>, Option<bytes::Bytes>) {
    let shared = bytes::Bytes::from_owner(F32Owner(values));
    let data = TensorData::from_bytes(Bytes::from_shared(shared.clone(), AllocationProperty::Native), [rows, cols], DType::F32);
    (Tensor::from_data(data, device), Some(shared))
}

/// `[rows, cols]` row-major, transposed to `[cols, rows]`, in cache-sized tiles.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; data.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

impl Source<'_> {
    fn contains(&self, name: &str) -> bool {
        match self {
            Self::Hf(src) => src.contains(name),
            Self::Gguf { file, family, .. } => gguf_tensor_name(*family, name).is_some_and(|n| file.tensor(&n).is_some()),
        }
    }

    /// `name` as f32, row-major, checked to be `shape`.
    fn read(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self {
            Self::Hf(src) => Ok(src.take_f32(name, shape)?.data),
            Self::Gguf { file, path, family, permuted, heads, taken } => {
                let missing = || Error::from(ecco_core::Error::MissingTensor { path: path.clone(), name: name.to_owned() });
                let gguf_name = gguf_tensor_name(*family, name).ok_or_else(missing)?;
                let info = file.tensor(&gguf_name).ok_or_else(missing)?;
                if info.shape() != shape {
                    return Err(ecco_core::Error::ShapeMismatch { name: gguf_name, expected: shape.to_vec(), found: info.shape() }.into());
                }
                let values = file.dequantize_info(info).map_err(|source| Error::Gguf { path: path.clone(), source })?;
                taken.insert(gguf_name.clone());
                let n_head = match gguf_name.rsplit('.').nth(1) {
                    Some("attn_q") => heads.0,
                    Some("attn_k") => heads.1,
                    _ => 0,
                };
                if *permuted && n_head > 0 && gguf_name.ends_with(".weight") {
                    return crate::gguf::unpermute_rows(&values, shape[0], shape[1], n_head).ok_or_else(|| {
                        ecco_core::Error::ShapeMismatch { name: gguf_name, expected: shape.to_vec(), found: info.shape() }.into()
                    });
                }
                Ok(values)
            }
        }
    }

    /// A `[rows, cols]` matrix as stored (embeddings, the LM head), with the buffer the
    /// decoding kernels read: mapped in place for F32 safetensors.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize, device: &Device) -> Result<(Tensor<2>, Option<bytes::Bytes>)> {
        if let Self::Hf(src) = self {
            return src.take_shared(name, [rows, cols], device);
        }
        Ok(shared_matrix(self.read(name, &[rows, cols])?, rows, cols, device))
    }

    fn vector(&mut self, name: &str, len: usize, device: &Device) -> Result<Tensor<1>> {
        Ok(Tensor::from_data(TensorData::new(self.read(name, &[len])?, [len]), device))
    }

    /// An `nn.Linear` `{prefix}.weight` `[d_out, d_in]` (and `{prefix}.bias` when `bias`) as a
    /// [`Linear`] `[d_in, d_out]`.
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool, cpu: bool, device: &Device) -> Result<Linear> {
        let stored = self.read(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let (weight, shared) = shared_matrix(transpose(&stored, d_out, d_in), d_in, d_out, device);
        drop(stored);
        let bias = if bias { Some(self.vector(&format!("{prefix}.bias"), d_out, device)?) } else { None };
        let host = shared.filter(|_| cpu).and_then(|b| HostMatrix::new(b, d_in, d_out));
        Ok(Linear { weight, bias, host })
    }

    /// Fails when tensors were left unread.
    fn finish(self) -> Result<()> {
        match self {
            Self::Hf(src) => src.finish(|_| false),
            Self::Gguf { file, path, taken, .. } => {
                // `rope_freqs.weight` is read by the configuration (Llama 3.1's rotary scaling).
                let unused: Vec<&str> =
                    file.tensors().iter().map(|t| t.name.as_str()).filter(|n| !taken.contains(*n) && *n != "rope_freqs.weight").collect();
                if unused.is_empty() {
                    return Ok(());
                }
                let mut names: Vec<String> = unused.iter().take(5).map(|s| (*s).to_owned()).collect();
                if unused.len() > 5 {
                    names.push(format!("and {} more", unused.len() - 5));
                }
                Err(Error::UnusedTensors { path, names: names.join(", ") })
            }
        }
    }
}

/// Loads a decoder from an open Hugging Face checkpoint onto `device`.
///
/// # Errors
/// Missing, misshapen or unexpected tensors, or rotary settings that cannot be built.
pub fn load_from(mut src: WeightSource, config: DecoderConfig, name: &str, device: &Device) -> Result<Decoder> {
    // The text model of a multimodal Gemma 3 checkpoint lives under `language_model.`.
    if !src.contains("model.embed_tokens.weight") && src.contains_exact("language_model.model.embed_tokens.weight") {
        src.set_prefix("language_model.");
    }
    build(Source::Hf(src), config, name, device)
}

/// Loads a decoder from a GGUF file (its configuration from [`DecoderConfig::from_gguf`]).
///
/// # Errors
/// Missing, misshapen or unexpected tensors, a tensor type that cannot be dequantized.
pub fn load_gguf(file: &GgufFile, path: &Path, config: DecoderConfig, name: &str, device: &Device) -> Result<Decoder> {
    let permuted = file.architecture().is_ok_and(|a| a == "llama");
    let source = Source::Gguf {
        file,
        path: path.to_path_buf(),
        family: config.family,
        permuted,
        heads: (config.num_heads, config.num_kv_heads),
        taken: BTreeSet::new(),
    };
    build(source, config, name, device)
}

fn build(mut src: Source<'_>, config: DecoderConfig, name: &str, device: &Device) -> Result<Decoder> {
    let c = &config;
    let (h, inner, vocab, d) = (c.hidden_size, c.intermediate_size, c.vocab_size, c.head_dim);
    let (q_width, kv_width) = (c.num_heads * d, c.num_kv_heads * d);
    let cpu = crate::device::is_cpu(device);
    let positions = c.max_position_embeddings.min(MAX_TABLE_POSITIONS);
    let rotary_error = |reason: String| Error::InvalidConfig { path: PathBuf::from(name), reason };
    let tables = |rope: &RopeConfig| -> Result<Arc<Rotary>> {
        Rotary::new(rope, RopeLayout::HalfSplit, positions, device).map(Arc::new).map_err(|e| rotary_error(e.to_string()))
    };
    let global = tables(&c.rope)?;
    let local = c.rope_local.as_ref().map(tables).transpose()?;
    let norm = |src: &mut Source<'_>, name: &str, len: usize| -> Result<RmsNorm> {
        Ok(RmsNorm { weight: src.vector(name, len, device)?, eps: c.rms_norm_eps, plus_one: c.norm_plus_one })
    };
    let (embed_tokens, embed_shared) = src.matrix("model.embed_tokens.weight", vocab, h, device)?;
    let mut layers = Vec::with_capacity(c.num_layers);
    for i in 0..c.num_layers {
        let p = format!("model.layers.{i}");
        let sliding = c.is_sliding(i);
        let rotary = match (&local, sliding) {
            (Some(local), true) => local.clone(),
            _ => global.clone(),
        };
        let attn = Attention {
            q_proj: src.linear(&format!("{p}.self_attn.q_proj"), h, q_width, c.qkv_bias, cpu, device)?,
            k_proj: src.linear(&format!("{p}.self_attn.k_proj"), h, kv_width, c.qkv_bias, cpu, device)?,
            v_proj: src.linear(&format!("{p}.self_attn.v_proj"), h, kv_width, c.qkv_bias, cpu, device)?,
            o_proj: src.linear(&format!("{p}.self_attn.o_proj"), q_width, h, c.o_bias, cpu, device)?,
            q_norm: if c.qk_norm { Some(norm(&mut src, &format!("{p}.self_attn.q_norm.weight"), d)?) } else { None },
            k_norm: if c.qk_norm { Some(norm(&mut src, &format!("{p}.self_attn.k_norm.weight"), d)?) } else { None },
            core: Attend {
                n_heads: c.num_heads,
                n_kv_heads: c.num_kv_heads,
                head_dim: d,
                scale: c.attention_scale,
                softcap: c.attn_logit_softcapping,
            },
            rotary,
            window: if sliding { c.sliding_window } else { None },
        };
        let sandwich = c.sandwich_norms;
        let input_norm = norm(&mut src, &format!("{p}.input_layernorm.weight"), h)?;
        let (post_attn_norm, pre_ffn_norm) = if sandwich {
            (
                Some(norm(&mut src, &format!("{p}.post_attention_layernorm.weight"), h)?),
                norm(&mut src, &format!("{p}.pre_feedforward_layernorm.weight"), h)?,
            )
        } else {
            (None, norm(&mut src, &format!("{p}.post_attention_layernorm.weight"), h)?)
        };
        let ffn = Ffn {
            gate: Some(src.linear(&format!("{p}.mlp.gate_proj"), h, inner, c.mlp_bias, cpu, device)?),
            up: src.linear(&format!("{p}.mlp.up_proj"), h, inner, c.mlp_bias, cpu, device)?,
            down: src.linear(&format!("{p}.mlp.down_proj"), inner, h, c.mlp_bias, cpu, device)?,
            act: c.activation,
        };
        let post_ffn_norm = if sandwich { Some(norm(&mut src, &format!("{p}.post_feedforward_layernorm.weight"), h)?) } else { None };
        layers.push(Block { input_norm, attn, post_attn_norm, pre_ffn_norm, ffn, post_ffn_norm });
    }
    let final_norm = norm(&mut src, "model.norm.weight", h)?;
    let host = |bytes: Option<bytes::Bytes>| bytes.filter(|_| cpu).and_then(|b| HostMatrix::new(b, vocab, h));
    // A tied checkpoint may still store a copy of the head.
    let (lm_head, head_host) = if c.tie_word_embeddings && !src.contains("lm_head.weight") {
        (None, host(embed_shared))
    } else if c.tie_word_embeddings {
        let _ = src.read("lm_head.weight", &[vocab, h])?;
        (None, host(embed_shared))
    } else {
        let (head, shared) = src.matrix("lm_head.weight", vocab, h, device)?;
        (Some(head), host(shared))
    };
    src.finish()?;
    let family = match c.family {
        Family::Llama => "llama",
        Family::Mistral => "mistral",
        Family::Qwen2 => "qwen2",
        Family::Qwen3 => "qwen3",
        Family::Gemma2 => "gemma2",
        Family::Gemma3 => "gemma3",
    };
    let info = ModelInfo {
        name: name.to_owned(),
        family: family.to_owned(),
        kind: ModelKind::Causal,
        n_layers: c.num_layers,
        hidden_size: h,
        n_heads: c.num_heads,
        intermediate_size: inner,
        vocab_size: vocab,
        max_positions: Some(positions),
    };
    Ok(Decoder { embed_tokens, layers, norm: final_norm, lm_head, head_host, config, info, device: device.clone() })
}
