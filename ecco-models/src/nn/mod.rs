//! The layer library every architecture is composed of; a model's own module holds only what is
//! particular to it (its weight names and its block wiring).
//!
//! - [`linear`]: [`Linear`], the one linear convention (`x W + b`, `W` stored `[in, out]`).
//! - [`norm`]: [`LayerNorm`] and [`RmsNorm`] (with the `(1 + w)` variant).
//! - [`attention`]: [`Attend`], scaled dot-product attention (multi-head, grouped-query,
//!   multi-query; any additive mask or bias; soft-capping), hooked, with its backward pass.
//! - [`mask`]: causal, sliding-window and padding masks.
//! - [`ffn`]: [`Ffn`], plain or gated, any activation, hooked.
//! - [`product`]: matrix products for decoding steps (host views, thread-split columns).
//! - [`rotary`]: rotary position embeddings (half-split and interleaved; linear, llama3, yarn scaling).
//! - `tape`: which forward-pass copy each row of a hand-written backward pass reads.
//!
//! Every layer emits its hook points through the recorder it is handed
//! ([`ecco_core::BlockHooks`]); see `docs/hooks.md`.

pub mod attention;
pub mod ffn;
pub mod linear;
pub mod mask;
pub mod norm;
pub mod product;
pub mod rotary;
pub(crate) mod tape;

pub use attention::{Attend, Role, merge_heads, split_heads};
pub use ffn::Ffn;
pub use linear::Linear;
pub use mask::{MASKED, causal_mask, padding_mask, window_mask};
pub use norm::{LayerNorm, RmsNorm};
pub use product::{host_product, matmul_few_rows};
