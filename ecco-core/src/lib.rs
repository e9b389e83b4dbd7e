//! # ecco-core
//!
//! The shared vocabulary of ecco-rs: a backend-agnostic [`LanguageModel`] trait whose models
//! emit named hook points into one recorder ([`Hooks`]: captures by name, the hidden-state /
//! activation / attention shorthands, interventions), the [`Trace`] bundle that every command
//! reads and writes (`trace.json` + `tensors.safetensors`), a small safetensors reader, and the
//! crate's [`Error`] type. It holds no model code: architectures live in `ecco-models`.
//!
//! ## Crate map
//! - [`model`]: [`LanguageModel`], [`CausalLm`], [`ModelInfo`], [`ModelKind`], inputs and outputs.
//! - [`hooks`]: hook point names as typed data: [`HookPoint`], [`HookPattern`], [`Stack`],
//!   [`BlockSite`]; `Display` / `FromStr` as `docs/hooks.md` writes them.
//! - [`recorder`]: [`Hooks`], the one recorder every model emits its hook points into.
//! - [`intervention`]: writable hooks ([`Intervention`], [`Edit`]) and [`GradientProbe`].
//! - [`capture`]: [`CaptureSpec`], [`LayerSelection`], [`Logits`], [`StackCaptures`].
//! - [`trace`]: [`Trace`], [`TraceBundle`] and the bundle's file names.
//! - [`tensors`]: [`F32Tensor`], [`SafetensorsReader`], [`write_safetensors`].
//! - [`error`]: [`Error`] and [`Result`].

pub mod cancel;
pub mod capture;
pub mod error;
pub mod hooks;
pub mod intervention;
pub mod model;
pub mod recorder;
pub mod tensors;
pub mod trace;
mod validate;

pub use cancel::Cancel;
pub use capture::{CaptureSpec, LayerSelection, Logits, StackCaptures};
pub use error::{Error, Result};
pub use hooks::{BlockSite, Blocks, HookNameError, HookPattern, HookPoint, Site, SitePattern, Stack, hook_points, parse_hook_patterns};
pub use intervention::{Edit, FnIntervention, GradientProbe, Intervention, position_axis};
pub use model::{CausalLm, InputGradients, KvCache, LanguageModel, ModelInfo, ModelInputs, ModelKind, ModelOutput};
pub use recorder::{BlockHooks, HookTensor, HookValue, Hooks};
pub use tensors::{F32Tensor, SafetensorsReader, write_safetensors};
pub use trace::{
    AppliedIntervention, GenerationSettings, MaskedPrediction, OutputDir, PredictedToken, TRACE_JSON, TRACE_TENSORS, Trace, TraceBundle,
    TraceModel, check_output_dir, read_trace_json,
};
