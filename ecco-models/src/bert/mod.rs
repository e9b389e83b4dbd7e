//! The BERT family in burn: BERT (`BertModel`, `BertForMaskedLM`; MiniLM), RoBERTa
//! (`RobertaForMaskedLM`) and DistilBERT (`DistilBertForMaskedLM`).
//!
//! Files follow the checkpoint: [`config`] (`config.json`), [`embeddings`], [`attention`],
//! [`layer`], [`model`] (the encoder, the masked-LM head, the core trait) and [`weights`] (the
//! name table of each member).

pub mod attention;
pub mod backward;
pub mod config;
pub mod embeddings;
pub mod layer;
pub mod model;
pub mod weights;

pub use config::{BertConfig, BertConfigFile, Variant};
pub use model::{Bert, MlmHead};
pub use weights::load;
