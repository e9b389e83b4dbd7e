//! The Llama family of decoders (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, Gemma 2/3, SmolLM2,
//! TinyLlama): one implementation with switches, from `config.json` or GGUF metadata.
//!
//! [`config`] holds the switches; [`attention`] and [`block`] the wiring particular to these
//! architectures (everything else is [`crate::nn`]); [`model`] the embeddings, head and core
//! traits; [`weights`] the tensor names of Hugging Face and GGUF checkpoints.

pub mod attention;
pub mod backward;
pub mod block;
pub mod config;
mod from_gguf;
pub mod model;
#[cfg(test)]
mod tests;
pub mod weights;

pub use config::{DecoderConfig, DecoderConfigFile, Family, LayerAttention};
pub use from_gguf::gguf_tensor_name;
pub use model::Decoder;
pub use weights::{load_from, load_gguf};
