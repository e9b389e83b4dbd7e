//! GPT-2 and its family (distilgpt2, gpt2-medium/large/xl): `GPT2LMHeadModel` in burn.
//!
//! Files are shaped like the checkpoint: [`config`] (`config.json`), [`attention`], [`block`],
//! [`model`] and [`weights`] (the name mapping); [`backward`] is the hand-written backward
//! pass attribution uses.

pub mod attention;
pub mod backward;
pub mod block;
pub mod config;
pub mod model;
pub mod weights;

pub use config::{Gpt2Config, Gpt2ConfigFile};
pub use model::Gpt2;
pub use weights::load;
