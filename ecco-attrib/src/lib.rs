//! # ecco-attrib
//!
//! Which input tokens drove each generated token (gradient attribution, Ecco's "primary
//! attributions"), generic over any `ecco_core::LanguageModel`, and the logit lens.
//!
//! Methods: `gradient` (alias `saliency`), `grad_x_input`, `integrated_gradients` (alias `ig`),
//! and, beyond Ecco, `occlusion` and `attention_rollout` (alias `rollout`, Abnar & Zuidema 2020,
//! which reads attention only); any gradient or occlusion method contrastive (`contrast_with`) and on the target's
//! probability or logit. Gradients are taken with respect to the input embeddings only: the
//! model's weights are plain tensors, never tracked. One forward and one backward pass serve a
//! whole batch of targets.
//!
//! ## Crate map
//! - [`attribute`](mod@attribute): [`attribute()`], [`occlusion()`], [`AttributionOptions`], [`Sequence`].
//! - [`method`]: [`Method`] and the accepted names.
//! - [`lens`]: the logit lens — layer predictions, rankings, rankings-watch.
//! - [`masked`]: masked LMs — predictions at a mask position and their attributions.
//! - [`seq2seq`]: encoder-decoders (T5) — attributions over the encoder input and the decoder prefix.
//! - [`evaluate`](mod@evaluate): faithfulness of attributions — deletion and insertion AUC,
//!   comprehensiveness and sufficiency, beside a seeded random ranking.
//! - [`gauss_legendre`](mod@gauss_legendre): captum's quadrature for integrated gradients.
//! - [`hook_gradients`](mod@hook_gradients): the gradient of a target token's score at any hook
//!   point (neuron attribution, attribution patching).
//! - [`patching`]: ablation, activation patching and attribution patching.

pub mod attribute;
mod engine;
pub mod error;
pub mod evaluate;
pub mod gauss_legendre;
pub mod hook_gradients;
pub mod lens;
pub mod masked;
pub mod method;
pub mod patching;
mod rollout;
pub mod seq2seq;

pub use attribute::{AttributionOptions, MAX_IG_STEPS, Sequence, attribute, check_ig_steps, occlusion, work};
pub use engine::AttributionTarget;
pub use error::{Error, Result};
pub use evaluate::{
    Curves, EvaluateOptions, Evaluation, Example, Removal, Scores, causal_examples, evaluate, evaluate_many, masked_examples,
};
pub use hook_gradients::{GradientPath, HookTarget, hook_gradients, resolve_points};
pub use lens::{
    LayerPrediction, Lens, check_compatible, layer_predictions, layer_predictions_at, rank, rankings, rankings_watch, rankings_watch_at,
    top_k,
};
pub use masked::{MaskedTarget, attribute_masked, masked_predictions, occlusion_masked_drops};
pub use method::{KNOWN_METHODS, Method, parse_methods};
pub use patching::{Ablate, AblationMode, AblationUnits, HookEdit, PatchGrid, PatchMethod, PatchRequest, patch};
pub use seq2seq::{Seq2SeqSequence, attribute_seq2seq, work_seq2seq};
