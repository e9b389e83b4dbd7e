//! The Llama family of decoders (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, Gemma 2/3, SmolLM2,
//! TinyLlama): their configuration, from `config.json` or GGUF metadata.

pub mod config;
mod from_gguf;
#[cfg(test)]
mod tests;

pub use config::{DecoderConfig, DecoderConfigFile, Family, LayerAttention};
pub use from_gguf::gguf_tensor_name;
