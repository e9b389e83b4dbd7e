//! # ecco-core
//!
//! The shared vocabulary of ecco-rs: a backend-agnostic [`LanguageModel`] trait with capture
//! hooks (hidden states, FFN activations, attention), the [`Trace`] bundle that every command
//! reads and writes (`trace.json` + `tensors.safetensors`), a small safetensors reader, and the
//! crate's [`Error`] type. It holds no model code: architectures live in `ecco-models`.
//!
//! ## Crate map
//! - [`model`]: [`LanguageModel`], [`CausalLm`], [`ModelInfo`], [`ModelKind`], inputs and outputs.
//! - [`capture`]: [`CaptureSpec`], [`LayerSelection`], [`Logits`], [`StackCaptures`].
//! - [`trace`]: [`Trace`], [`TraceBundle`] and the bundle's file names.
//! - [`tensors`]: [`F32Tensor`], [`SafetensorsReader`], [`write_safetensors`].
//! - [`error`]: [`Error`] and [`Result`].

pub mod cancel;
pub mod capture;
pub mod error;
pub mod model;
pub mod tensors;
pub mod trace;

pub use cancel::Cancel;
pub use capture::{CaptureSpec, LayerSelection, Logits, StackCaptures};
pub use error::{Error, Result};
pub use model::{CausalLm, InputGradients, KvCache, LanguageModel, ModelInfo, ModelInputs, ModelKind, ModelOutput};
pub use tensors::{F32Tensor, SafetensorsReader, write_safetensors};
pub use trace::{
    GenerationSettings, MaskedPrediction, OutputDir, PredictedToken, TRACE_JSON, TRACE_TENSORS, Trace, TraceBundle, TraceModel,
    check_output_dir, read_trace_json,
};
