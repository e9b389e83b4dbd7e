//! `Output` (a generation or forward pass and its analyses), `Tensor` (a capture numpy reads
//! in place), `View` (one report page) and `Nmf` (a factorisation).

use std::path::PathBuf;
use std::sync::Arc;

use ecco::ecco_viz::{self, Report};
use ecco::{Control, GenerateOptions, Lens, Method, NmfOptions, NmfOutcome, ReportOptions, views};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{self, IntoPy};
use crate::interrupt;
use crate::lm::Lm;

/// A generation or forward pass with its captures (`ecco::Output`). Immutable: the captured
/// tensors' memory stays where numpy arrays made from [`Tensor`]s point.
#[pyclass(frozen, module = "ecco_rs._ecco_rs")]
pub(crate) struct Output {
    inner: Arc<ecco::Output>,
}

impl Output {
    pub(crate) fn new(output: ecco::Output) -> Self {
        Self { inner: Arc::new(output) }
    }
}

/// Reads a trace bundle written by `Output.save` or `ecco generate --out DIR`; `lm` is the
/// model the logit lens runs (a demo-model trace finds it by itself).
#[pyfunction]
#[pyo3(signature = (path, lm = None))]
pub(crate) fn load(py: Python<'_>, path: PathBuf, lm: Option<PyRef<'_, Lm>>) -> PyResult<Output> {
    let output = py.detach(|| ecco::Output::load(&path)).py(py)?;
    Ok(Output::new(match lm {
        Some(lm) => output.with_model(lm.inner()),
        None => output,
    }))
}

/// The single-view page of `fill`'s view, titled `title`.
fn single(py: Python<'_>, output: &ecco::Output, title: &str, fill: impl FnOnce(&mut Report)) -> PyResult<View> {
    Ok(View { report: views::single_view_report(output.trace(), title, fill).py(py)? })
}

#[pymethods]
impl Output {
    /// `trace.json`: tokens, ids, attributions, the model's shape, settings.
    fn trace_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(self.inner.trace()).py(py)
    }

    /// The names of the captured tensors (`hidden_states.decoder`, `activations.decoder`, …).
    fn tensor_names(&self) -> Vec<String> {
        self.inner.bundle().tensors.keys().cloned().collect()
    }

    /// The captured tensor `name`, for `numpy.asarray`.
    fn tensor(&self, py: Python<'_>, name: &str) -> PyResult<Tensor> {
        if !self.inner.bundle().tensors.contains_key(name) {
            let known: Vec<&String> = self.inner.bundle().tensors.keys().collect();
            return Err(errors::to_py(py, &anyhow::anyhow!("the output has no tensor `{name}` (it has {known:?})")));
        }
        Ok(Tensor { output: Arc::clone(&self.inner), name: name.to_owned() })
    }

    /// Writes the trace bundle into `path` (which must not exist or be empty).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).py(py)
    }

    /// The id of a token given as an id, a raw token or a one-token text, by the tokenizer of
    /// the output's model.
    fn token_id(&self, py: Python<'_>, token: &str) -> PyResult<u32> {
        let Some(model) = self.inner.model() else {
            return Err(errors::to_py(
                py,
                &anyhow::anyhow!("the output has no model to tokenise `{token}` with: pass token ids, or load the trace with its model"),
            ));
        };
        ecco::resolve_token(&model.tokenizer, token, self.inner.trace().model.vocab_size).py(py)
    }

    /// This output with the attributions of `methods` it lacks, computed now as `generate`
    /// would have (`None` when it has them all).
    #[pyo3(signature = (methods, *, attribution_target, contrast_with, ig_steps, progress, on_progress))]
    #[allow(clippy::too_many_arguments)]
    fn with_attributions(
        &self,
        py: Python<'_>,
        methods: Vec<String>,
        attribution_target: &str,
        contrast_with: Option<String>,
        ig_steps: usize,
        progress: bool,
        on_progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<Output>> {
        let methods = ecco::parse_methods(&methods.join(",")).py(py)?;
        if methods.iter().all(|m| self.inner.trace().attributions.contains_key(m.name())) {
            return Ok(None);
        }
        let control = Control::new();
        let options = GenerateOptions {
            attribution_target: errors::parse(py, attribution_target)?,
            contrast_with,
            ig_steps,
            progress,
            control: Some(control.clone()),
            ..GenerateOptions::default()
        };
        let out = &self.inner;
        let output = interrupt::run(py, &control, on_progress.as_ref(), || out.with_attributions(&methods, &options))?;
        Ok(Some(Output::new(output)))
    }

    /// This output with `lm` as the model the logit lens runs.
    fn with_model(&self, lm: PyRef<'_, Lm>) -> Output {
        Output::new(ecco::Output::clone(&self.inner).with_model(lm.inner()))
    }

    /// The primary-attribution page of `method`, with its rows.
    fn primary_attributions(&self, py: Python<'_>, method: &str) -> PyResult<(View, Vec<Vec<f32>>)> {
        let method: Method = method.parse().py(py)?;
        let rows = self.inner.primary_attributions(method).py(py)?.to_vec();
        let mut report = Report::from_trace(self.inner.trace()).py(py)?;
        report.attributions.retain(|a| a.method == method.name());
        report.title = format!("Primary attributions: {}", self.inner.trace().model.name);
        Ok((View { report }, rows))
    }

    /// The layer-predictions page and the predictions as JSON (`[layer][k]` of `token_id`,
    /// `token`, `prob`, `ranking`).
    fn layer_predictions(
        &self,
        py: Python<'_>,
        position: usize,
        topk: usize,
        layer: Option<usize>,
        lens: &str,
    ) -> PyResult<(View, String)> {
        let lens: Lens = errors::parse(py, lens)?;
        let out = &self.inner;
        let preds = py.detach(|| out.layer_predictions(position, topk, layer, lens)).py(py)?;
        let t = out.trace();
        let view = single(py, out, "Layer predictions", |r| {
            r.layer_predictions = Some(views::predictions_view(t, &preds, position, lens, layer));
        })?;
        Ok((view, serde_json::to_string(&preds).py(py)?))
    }

    /// The rankings page and `[layer][generated token]` ranks.
    fn rankings(&self, py: Python<'_>, lens: &str) -> PyResult<(View, Vec<Vec<usize>>)> {
        let lens: Lens = errors::parse(py, lens)?;
        let out = &self.inner;
        let ranks = py.detach(|| out.rankings(lens)).py(py)?;
        let view = single(py, out, "Rankings", |r| r.rankings = Some(views::rankings_view(out.trace(), ranks.clone(), lens)))?;
        Ok((view, ranks))
    }

    /// The rankings-watch page and `[layer][watched token]` ranks at `position`.
    fn rankings_watch(&self, py: Python<'_>, watch: Vec<u32>, position: usize, lens: &str) -> PyResult<(View, Vec<Vec<usize>>)> {
        let lens: Lens = errors::parse(py, lens)?;
        let out = &self.inner;
        let ranks = py.detach(|| out.rankings_watch(&watch, position, lens)).py(py)?;
        let raw: Vec<String> = match out.model() {
            Some(model) => watch.iter().map(|&id| model.tokenizer.token(id)).collect(),
            None => watch.iter().map(u32::to_string).collect(),
        };
        let view = single(py, out, "Rankings of watched tokens", |r| {
            r.rankings_watch = Some(views::watch_view(out.trace(), ranks.clone(), lens, position, &watch, &raw));
        })?;
        Ok((view, ranks))
    }

    /// Ecco's `run_nmf` (the arguments are `NmfOptions`' fields).
    #[pyo3(signature = (*, components, from_layer, to_layer, layers, seed, max_iter, tol, top_neurons, progress))]
    #[allow(clippy::too_many_arguments)]
    fn run_nmf(
        &self,
        py: Python<'_>,
        components: usize,
        from_layer: Option<usize>,
        to_layer: Option<usize>,
        layers: Option<Vec<usize>>,
        seed: u64,
        max_iter: usize,
        tol: f64,
        top_neurons: usize,
        progress: bool,
    ) -> PyResult<Nmf> {
        let options = NmfOptions { components, from_layer, to_layer, layers, seed, max_iter, tol, top_neurons, progress };
        let out = &self.inner;
        let outcome = py.detach(|| out.run_nmf(&options)).py(py)?;
        Ok(Nmf { output: Arc::clone(out), outcome })
    }

    /// The page with every view the output supports (`ecco report`).
    #[pyo3(signature = (*, title, lens, position, topk, watch, components, attention_topk, progress))]
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        py: Python<'_>,
        title: Option<String>,
        lens: &str,
        position: Option<usize>,
        topk: usize,
        watch: Option<Vec<u32>>,
        components: usize,
        attention_topk: usize,
        progress: bool,
    ) -> PyResult<View> {
        let lens: Lens = errors::parse(py, lens)?;
        let options =
            ReportOptions { title, lens, position, topk, watch, components, neurons: None, attention_topk, progress, evaluate: None };
        let out = &self.inner;
        Ok(View { report: py.detach(|| out.report(&options)).py(py)? })
    }
}

/// One captured tensor, shared with numpy without a copy: `numpy.asarray(tensor)` reads
/// [`__array_interface__`](Tensor::__array_interface__) and keeps this object (and so the
/// output's memory) alive as the array's base. Read-only.
#[pyclass(frozen, module = "ecco_rs._ecco_rs")]
pub(crate) struct Tensor {
    output: Arc<ecco::Output>,
    name: String,
}

impl Tensor {
    fn tensor(&self) -> Option<&ecco::ecco_core::F32Tensor> {
        self.output.bundle().tensors.get(&self.name)
    }
}

#[pymethods]
impl Tensor {
    /// numpy's array interface (version 3): shape, little-endian float32, the data's address
    /// (read-only).
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let (shape, address) = match self.tensor() {
            Some(t) => (t.shape.clone(), t.data.as_ptr() as usize),
            None => (vec![0], 0),
        };
        dict.set_item("shape", PyTuple::new(py, shape)?)?;
        dict.set_item("typestr", if cfg!(target_endian = "little") { "<f4" } else { ">f4" })?;
        dict.set_item("data", (address, true))?;
        dict.set_item("version", 3)?;
        Ok(dict)
    }

    /// The tensor's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("<ecco_rs Tensor {} {:?}>", self.name, self.tensor().map(|t| t.shape.clone()).unwrap_or_default())
    }
}

/// One self-contained report page (`ecco_viz::Report`): the same HTML `ecco report` writes.
#[pyclass(frozen, module = "ecco_rs._ecco_rs")]
pub(crate) struct View {
    report: Report,
}

#[pymethods]
impl View {
    /// The page: one HTML file, no network, CSP-locked.
    fn to_html(&self, py: Python<'_>) -> PyResult<String> {
        ecco_viz::render_html(&self.report).py(py)
    }

    /// The JSON the page embeds (its shape is documented in `ecco-viz`).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(&self.report).py(py)
    }

    /// The page's title.
    #[getter]
    fn title(&self) -> &str {
        &self.report.title
    }
}

/// An NMF of an output's FFN activations (`ecco::NmfOutcome`).
#[pyclass(frozen, module = "ecco_rs._ecco_rs")]
pub(crate) struct Nmf {
    output: Arc<ecco::Output>,
    outcome: NmfOutcome,
}

#[pymethods]
impl Nmf {
    /// The explorer page (Ecco's `nmf.explore()`).
    fn explore(&self, py: Python<'_>) -> PyResult<View> {
        let o = &self.outcome;
        single(py, &self.output, "NMF factors", |r| {
            r.nmf = Some(views::nmf_view(o.layers.clone(), &o.components, o.loadings.clone(), o.reconstruction_error));
        })
    }

    /// `[factor][position]` strengths.
    #[getter]
    fn components(&self) -> Vec<Vec<f32>> {
        self.outcome.components.clone()
    }

    /// Per factor, its top neurons as JSON (`layer`, `neuron`, `weight`).
    fn loadings_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(&self.outcome.loadings).py(py)
    }

    /// The layers factorised.
    #[getter]
    fn layers(&self) -> Vec<usize> {
        self.outcome.layers.clone()
    }

    /// Frobenius norm of `X - W·H`.
    #[getter]
    fn reconstruction_error(&self) -> f64 {
        self.outcome.reconstruction_error
    }

    /// Outer iterations run.
    #[getter]
    fn n_iter(&self) -> usize {
        self.outcome.n_iter
    }

    /// Whether the tolerance was reached.
    #[getter]
    fn converged(&self) -> bool {
        self.outcome.converged
    }

    /// The components asked for, when more than the positions (and clamped, as Ecco does).
    #[getter]
    fn clamped_from(&self) -> Option<usize> {
        self.outcome.clamped_from
    }
}
