//! # ecco
//!
//! Explain what a Transformer language model is doing, from Rust, the way Python's
//! [Ecco](https://github.com/jalammar/ecco) does: load a model with [`from_pretrained`],
//! [`generate`](Lm::generate) with attributions and captures, then ask the [`Output`] which
//! input tokens drove each generated token ([`primary_attributions`](Output::primary_attributions)),
//! what each layer predicts ([`layer_predictions`](Output::layer_predictions),
//! [`rankings`](Output::rankings), [`rankings_watch`](Output::rankings_watch)), which groups of
//! neurons fire together ([`run_nmf`](Output::run_nmf)), or for one self-contained HTML page
//! with all of it ([`to_html`](Output::to_html)).
//!
//! ```
//! use ecco::{GenerateOptions, Lens, Method};
//!
//! // The demo model built into the crate (feature `demo`); or a directory, or a Hugging Face
//! // id such as "distilgpt2" found in the cache or downloaded (feature `hub`).
//! let lm = ecco::from_pretrained("ecco-demo", &ecco::LoadOptions::default())?;
//! let options = GenerateOptions {
//!     max_new_tokens: 1,
//!     attribution: vec![Method::GradXInput],
//!     activations: true,
//!     ..Default::default()
//! };
//! let output = lm.generate("The capital of France is", &options)?;
//! assert_eq!(output.output_text(), "The capital of France is Paris");
//!
//! // Which input token drove " Paris"? " France" (position 3).
//! let row = &output.primary_attributions(Method::GradXInput)?[0];
//! let (best, _) = row.iter().enumerate().fold((0, 0.0), |b, (i, &w)| if w > b.1 { (i, w) } else { b });
//! assert_eq!(output.tokens()[best], "ĠFrance");
//!
//! // The logit lens: what the last layer predicts after "is", and the rank of " Paris".
//! let last = output.layer_predictions(5, 3, None, Lens::Normed)?.pop().unwrap_or_default();
//! assert_eq!(last[0].token, "ĠParis");
//! let paris = lm.token_id(" Paris")?;
//! let ranks = output.rankings_watch(&[paris], 5, Lens::Normed)?;
//! assert_eq!(ranks.last(), Some(&vec![1]));
//!
//! // Ecco's run_nmf, and a report page.
//! let nmf = output.run_nmf(&ecco::NmfOptions { components: 2, progress: false, ..Default::default() })?;
//! assert_eq!(nmf.components.len(), 2);
//! let html = output.to_html(&ecco::ReportOptions::default())?;
//! assert!(html.contains("ecco-demo"));
//! # Ok::<(), ecco::Error>(())
//! ```
//!
//! ## Supported models
//!
//! Any Hugging Face checkpoint whose `config.json` has one of these `model_type`s loads, under
//! any name, size or depth (our answer to Ecco's `model-config.yaml`: nothing to register).
//! "Activations" are the FFN neurons the `activations` capture records (the input of each
//! block's FFN output projection, after the nonlinearity, as in Ecco).
//!
//! | `model_type` | kind | checkpoints (examples) | activations captured at |
//! |---|---|---|---|
//! | `gpt2` | causal (generates) | `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `distilgpt2`, the embedded `ecco-demo` | `transformer.h.N.mlp.c_proj` input |
//! | `bert` | masked LM or bare encoder | `bert-base-uncased`, `bert-base-cased`, `sentence-transformers/all-MiniLM-L6-v2` | `encoder.layer.N.output.dense` input |
//! | `roberta` | masked LM | `roberta-base`, `distilroberta-base` | `encoder.layer.N.output.dense` input |
//! | `distilbert` | masked LM | `distilbert-base-uncased`, `distilbert-base-cased` | `transformer.layer.N.ffn.lin2` input |
//! | `t5` | encoder-decoder (t5, flan-t5) | `t5-small`, `t5-base`, `google/flan-t5-small`, `google/flan-t5-base` | `…block.N.layer.M.DenseReluDense.wo` input |
//!
//! A custom checkpoint of a supported architecture (your fine-tune, a model trained from
//! scratch) is a directory with `config.json` (with its `model_type` and the usual sizes:
//! `n_layer`, `n_embd`, … for GPT-2; `num_hidden_layers`, `hidden_size`, … for BERT), the
//! weights (`model.safetensors`, sharded `model.safetensors.index.json`, or
//! `pytorch_model.bin` with the `pytorch` feature, on by default) and `tokenizer.json`: pass the directory to
//! [`from_pretrained`]. A config without `model_type` falls back on its first `architectures`
//! entry; anything else is refused with the list of supported types
//! ([`ecco_models::SUPPORTED_MODEL_TYPES`]).
//!
//! ## Progress
//!
//! Long work (downloads, generation, integrated gradients and the other attribution methods,
//! NMF) draws a progress bar on stderr when stderr is a terminal and stays quiet when it is
//! piped; the option structs' `progress: false` silences it everywhere.
//!
//! ## Features
//! - `flex` (default): burn's pure-Rust CPU backend.
//! - `demo` (default): the embedded demo model ([`demo`], `from_pretrained("ecco-demo", …)`).
//! - `hub` (default): downloads Hugging Face ids that are not in the cache.
//! - `pytorch` (default): reads `pytorch_model.bin` checkpoints (and shards) that have no
//!   safetensors, with burn's PyTorch reader (`pytorch-reader`, which runs no pickled code).
//! - `wgpu`, `cuda`: GPU backends ([`LoadOptions::device`]).
//!
//! ## Crate map
//! - [`evaluate`](mod@evaluate): [`Output::evaluate`], [`EvaluateOptions`], [`Baseline`], [`Evaluation`]:
//!   faithfulness of the attributions (deletion/insertion AUC, comprehensiveness, sufficiency).
//! - [`load`](mod@load): [`from_pretrained`], [`demo`], [`Lm`].
//! - [`batch`]: one document of a corpus run (`ecco batch`) as table rows.
//! - [`options`]: [`GenerateOptions`], [`ForwardOptions`].
//! - [`run`]: [`Lm::generate`], [`Lm::forward`].
//! - [`interventions`]: [`Ablation`], [`Steering`], [`Interventions`], [`Lm::patch`], [`Lm::steering_vector`].
//! - [`output`]: [`Output`] and its analyses.
//! - [`nmf`](mod@nmf): [`NmfOptions`], [`NmfOutcome`].
//! - [`report`]: [`ReportOptions`], the HTML page's data.
//! - [`views`]: analysis results as `ecco-viz` views (shared with the `ecco` command).
//! - [`progress`]: the progress bars, and [`Control`] to follow and stop long work from
//!   another thread.
//!
//! The lower layers are re-exported for what this facade does not cover: [`ecco_core`]
//! (traces, the model trait), [`ecco_models`] (architectures, loading), [`ecco_attrib`]
//! (attribution, logit lens), [`ecco_factor`] (NMF, CCA, CKA), [`ecco_viz`] (views, HTML, SVG).

pub mod batch;
pub mod evaluate;
pub mod interventions;
mod lens;
pub mod load;
mod masked;
pub mod nmf;
pub mod options;
pub mod output;
pub mod progress;
pub mod report;
pub mod run;
pub mod views;

pub use {ecco_attrib, ecco_core, ecco_factor, ecco_models, ecco_viz};

pub use ecco_attrib::PatchMethod;
pub use ecco_attrib::{AttributionTarget, LayerPrediction, Lens, Method, parse_methods};
pub use ecco_core::Cancel;
pub use ecco_core::{HookPattern, HookPoint, parse_hook_patterns};
pub use ecco_models::{DEMO_NAME, DeviceKind, HubSettings, Sampling};
pub use evaluate::{Baseline, EvaluateOptions, Evaluation};
pub use interventions::{Ablation, AblationMode, AblationUnits, Interventions, PatchOptions, Patching, Steering, write_steering_vector};
pub use load::{Lm, LoadOptions, demo, demo_on, from_pretrained, resolve_token};
pub use nmf::{MAX_NMF_ITER, NmfOptions, NmfOutcome};
pub use options::{ForwardOptions, GenerateOptions};
pub use output::Output;
pub use progress::Control;
pub use report::{ReportOptions, build_report};

/// The error every fallible call returns: a message with its causes (`{:#}` prints them on
/// one line).
pub type Error = anyhow::Error;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `err` is work stopping because its [`Control`] (or [`Cancel`] flag) was cancelled.
pub fn is_cancelled(err: &Error) -> bool {
    use ecco_core::Error::Cancelled;
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<ecco_core::Error>(), Some(Cancelled))
            || matches!(cause.downcast_ref::<ecco_models::Error>(), Some(ecco_models::Error::Core(Cancelled)))
            || matches!(cause.downcast_ref::<ecco_attrib::Error>(), Some(ecco_attrib::Error::Core(Cancelled)))
    })
}

/// `err` and its causes on one line, without repeating a cause its parent already quotes: the
/// message the `ecco` command prints after `error: ` (and the Python package raises).
///
/// ```
/// let err = anyhow::anyhow!("no such file").context("cannot load model x");
/// assert_eq!(ecco::one_line(&err), "cannot load model x: no such file");
/// ```
pub fn one_line(err: &Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}
