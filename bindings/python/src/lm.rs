//! `from_pretrained` and `Lm`: loading a model and running it.

use ecco::{AttributionTarget, Control, DeviceKind, ForwardOptions, GenerateOptions, LoadOptions, Sampling};
use pyo3::prelude::*;

use crate::errors::{self, IntoPy};
use crate::interrupt;
use crate::output::Output;

/// Loads a model: a checkpoint directory, a Hugging Face id (cache, then Hub) or `"ecco-demo"`.
#[pyfunction]
#[pyo3(signature = (name, *, device = "flex", progress = true))]
pub(crate) fn from_pretrained(py: Python<'_>, name: &str, device: &str, progress: bool) -> PyResult<Lm> {
    let device: DeviceKind = errors::parse(py, device)?;
    let options = LoadOptions { device, progress, ..LoadOptions::default() };
    let lm = interrupt::run(py, &Control::new(), None, || ecco::from_pretrained(name, &options))?;
    Ok(Lm { inner: lm })
}

/// A loaded model and its tokenizer (`ecco::Lm`).
#[pyclass(frozen, module = "ecco_rs._ecco_rs")]
pub(crate) struct Lm {
    inner: ecco::Lm,
}

/// The parsed attribution settings both runs share.
fn attribution(py: Python<'_>, methods: Vec<String>, target: &str) -> PyResult<(Vec<ecco::Method>, AttributionTarget)> {
    let methods = ecco::parse_methods(&methods.join(",")).py(py)?;
    let target = errors::parse::<AttributionTarget>(py, target)?;
    Ok((methods, target))
}

#[pymethods]
impl Lm {
    /// The name traces record.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The model's shape as JSON (`family`, `kind`, `n_layers`, `hidden_size`, `vocab_size`, …).
    fn info_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(self.inner.info()).py(py)
    }

    /// The raw tokens and ids of `text`, without special tokens.
    fn tokenize(&self, py: Python<'_>, text: &str) -> PyResult<(Vec<String>, Vec<u32>)> {
        self.inner.tokenize(text).py(py)
    }

    /// The id of a token given as an id, a raw token or a one-token text.
    fn token_id(&self, py: Python<'_>, token: &str) -> PyResult<u32> {
        self.inner.token_id(token).py(py)
    }

    /// `ecco::Lm::generate` (the arguments are `GenerateOptions`' fields).
    #[pyo3(signature = (text, *, max_new_tokens, sample, seed, temperature, top_k, top_p, attribution, attribution_target,
        contrast_with, ig_steps, activations, layers, hidden_states, attention, progress, on_progress))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        text: &str,
        max_new_tokens: usize,
        sample: bool,
        seed: u64,
        temperature: f32,
        top_k: Option<usize>,
        top_p: Option<f32>,
        attribution: Vec<String>,
        attribution_target: &str,
        contrast_with: Option<String>,
        ig_steps: usize,
        activations: bool,
        layers: Option<Vec<usize>>,
        hidden_states: bool,
        attention: bool,
        progress: bool,
        on_progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Output> {
        let (attribution, attribution_target) = self::attribution(py, attribution, attribution_target)?;
        let control = Control::new();
        let options = GenerateOptions {
            max_new_tokens,
            sampling: sample.then_some(Sampling { seed, temperature, top_k, top_p }),
            attribution,
            attribution_target,
            contrast_with,
            ig_steps,
            activations,
            layers,
            hidden_states,
            attention,
            progress,
            control: Some(control.clone()),
            ..GenerateOptions::default()
        };
        let output = interrupt::run(py, &control, on_progress.as_ref(), || self.inner.generate(text, &options))?;
        Ok(Output::new(output))
    }

    /// `ecco::Lm::forward` (the arguments are `ForwardOptions`' fields).
    #[pyo3(signature = (text, *, attribution, attribution_target, contrast_with, ig_steps, activations, layers, hidden_states,
        attention, mask_topk, decoder_text, progress, on_progress))]
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        py: Python<'_>,
        text: &str,
        attribution: Vec<String>,
        attribution_target: &str,
        contrast_with: Option<String>,
        ig_steps: usize,
        activations: bool,
        layers: Option<Vec<usize>>,
        hidden_states: bool,
        attention: bool,
        mask_topk: usize,
        decoder_text: Option<String>,
        progress: bool,
        on_progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Output> {
        let (attribution, attribution_target) = self::attribution(py, attribution, attribution_target)?;
        let control = Control::new();
        let options = ForwardOptions {
            attribution,
            attribution_target,
            contrast_with,
            ig_steps,
            activations,
            layers,
            hidden_states,
            attention,
            mask_topk,
            decoder_text,
            progress,
            control: Some(control.clone()),
            ..ForwardOptions::default()
        };
        let output = interrupt::run(py, &control, on_progress.as_ref(), || self.inner.forward(text, &options))?;
        Ok(Output::new(output))
    }

    fn __repr__(&self) -> String {
        let info = self.inner.info();
        format!("<ecco_rs.LM {} ({}, {} layers)>", self.inner.name(), info.family, info.n_layers)
    }
}

impl Lm {
    /// The model.
    pub(crate) fn inner(&self) -> &ecco::Lm {
        &self.inner
    }
}
