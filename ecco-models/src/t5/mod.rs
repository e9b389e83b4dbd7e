//! T5 (`T5ForConditionalGeneration`): original T5 (ReLU FFN, tied LM head with the
//! `d_model^-0.5` rescale) and T5 v1.1 / flan-t5 (gated-GELU FFN, untied LM head).
//!
//! Files follow the checkpoint: [`config`] (`config.json`), [`attention`] (`T5Attention` and
//! its relative-position buckets), [`block`] (`T5Block`, encoder and decoder), [`model`] (both
//! stacks, the LM head, incremental decoding, the core trait) and [`weights`] (the name
//! mapping). Norms (`T5LayerNorm` is [`crate::nn::RmsNorm`]), the FFN (`DenseReluDense` is
//! [`crate::nn::Ffn`]), linear maps and attention come from [`crate::nn`].

pub mod attention;
pub mod block;
pub mod config;
pub mod model;
pub mod weights;

pub use config::{T5Config, T5ConfigFile};
pub use model::{DecoderState, T5};
pub use weights::load;
