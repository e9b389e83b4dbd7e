//! # ecco-models
//!
//! Transformer language models written in [burn](https://burn.dev) with capture hooks, loading
//! Hugging Face checkpoints (`config.json`, `model.safetensors` or shards, `tokenizer.json`).
//! Every model implements `ecco_core`'s [`LanguageModel`](ecco_core::LanguageModel); causal
//! models also [`CausalLm`](ecco_core::CausalLm) for generation with a KV cache; the
//! encoder-decoder T5 generates with [`generate_seq2seq`].
//!
//! ## Quick start
//! ```
//! use ecco_models::{load, DeviceKind, GenerateOptions, generate};
//! # fn main() -> Result<(), ecco_models::Error> {
//! // The demo checkpoint's directory (also embedded with the `demo` feature: `load_demo`).
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/demo"));
//! let loaded = load(dir, DeviceKind::Flex)?;
//! let prompt = loaded.tokenizer.encode("The capital of France is", false)?;
//! let Some(causal) = loaded.model.as_causal() else { panic!("GPT-2 is causal") };
//! let opts = GenerateOptions { max_new_tokens: 1, sampling: None, eos_token_ids: loaded.model.eos_token_ids(), cancel: None };
//! let ids = generate(causal, &prompt.ids, &opts, |_| {})?;
//! assert_eq!(loaded.tokenizer.decode(&ids)?, " Paris");
//! # Ok(()) }
//! ```
//!
//! For explaining models (attributions, logit lens, NMF, reports) use the `ecco` crate, which
//! builds on this one as Python's Ecco builds on `transformers`.
//!
//! ## Architectures
//! `config.json`'s `model_type` picks the architecture ([`SUPPORTED_MODEL_TYPES`]); any
//! checkpoint of these families loads, whatever its size. "Activations" are what the
//! `activations` capture records: the input of each block's FFN output projection.
//!
//! | `model_type` | model | activations at |
//! |---|---|---|
//! | `gpt2` | [`gpt2::Gpt2`] (causal) | `transformer.h.N.mlp.c_proj` input |
//! | `bert`, `roberta` | [`bert::Bert`] (masked LM or encoder) | `encoder.layer.N.output.dense` input |
//! | `distilbert` | [`bert::Bert`] (masked LM or encoder) | `transformer.layer.N.ffn.lin2` input |
//! | `t5` (t5, flan-t5) | encoder-decoder | `…DenseReluDense.wo` input |
//!
//! ## Features
//! - `flex` (default): burn's pure-Rust CPU backend.
//! - `wgpu`: GPUs through wgpu (Vulkan, Metal, DirectX).
//! - `cuda`: NVIDIA GPUs.
//! - `hub`: downloads checkpoints from the Hugging Face Hub (`hf-hub`); without it, `--model`
//!   takes directories and checkpoints already in the Hugging Face cache.
//! - `pytorch`: reads `pytorch_model.bin` checkpoints (and their shards) when a directory has
//!   no safetensors, with burn's PyTorch reader (`pytorch-reader`; no Python, no code run).
//! - `demo`: embeds the demo model (`fixtures/demo/`, about 2 MB) in the binary; see [`demo`].
//!
//! ## Crate map
//! - [`gpt2`]: GPT-2 (`GPT2LMHeadModel`), one file per part of the checkpoint.
//! - [`bert`]: BERT, RoBERTa, DistilBERT (masked LMs and bare encoders such as MiniLM).
//! - [`t5`]: T5 (`T5ForConditionalGeneration`: T5, T5 v1.1, flan-t5), an encoder-decoder.
//! - [`gguf`]: GGUF files (llama.cpp): the reader, dequantization, the tokenizer in their metadata.
//! - [`llama`]: the Llama-family decoders' configuration (Llama, Mistral, Qwen2/3, Gemma 2/3).
//! - [`loader`]: [`load`] a checkpoint directory into a [`Model`] with its [`Tokenizer`].
//! - [`generate`](mod@generate): greedy and seeded sampling with a KV cache.
//! - [`hub`]: [`resolve`] a `--model` name: a directory, the Hugging Face cache, or the Hub.
//! - [`demo`]: the embedded demo model, [`load_demo`].
//! - [`device`]: [`DeviceKind`], the `--device` choice.
//! - `pytorch` (feature `pytorch`): `pytorch_model.bin` checkpoints, read by [`weights`].
//! - [`nn`]: the shared layer library every model is composed of (linear, norms, attention,
//!   masks, FFN), each layer emitting its hook points (`docs/hooks.md`).
//! - [`weights`], [`tokenizer`], [`readback`], [`activation`]: shared parts.

pub mod activation;
pub mod bert;
mod bpe_json;
pub mod demo;
pub mod device;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod gpt2;
pub mod host;
pub mod hub;
pub mod llama;
pub mod loader;
pub mod nn;
#[cfg(feature = "pytorch")]
pub mod pytorch;
pub mod readback;
pub mod t5;
pub mod tokenizer;
pub mod weights;

pub use demo::{DEMO_NAME, demo_available, load_demo, load_demo_on};
pub use device::DeviceKind;
pub use error::{Error, Result};
pub use generate::{GenerateOptions, Sampling, generate, generate_seq2seq, generate_with_edits};
pub use hub::{HubSettings, Resolved, resolve};
pub use loader::{LoadedModel, Model, SUPPORTED_MODEL_TYPES, load, load_named, load_on};
pub use readback::{capture_pass, capture_pass_seq2seq, capture_pass_with_edits, stack_tensors, to_f32};
pub use tokenizer::{Encoding, Tokenizer};
