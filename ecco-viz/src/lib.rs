//! # ecco-viz
//!
//! JSON and self-contained interactive HTML views of ecco-rs traces. A [`Report`] holds one
//! serde struct per view; [`render_html`] turns it into a single HTML file with our own inline
//! CSS and JavaScript, the views embedded as JSON, and a Content-Security-Policy that allows no
//! network access at all (`default-src 'none'`, our script and style pinned by hash). The page
//! opens from a file, an e-mail attachment or a CI artefact, with no Jupyter and no CDN. The
//! same JSON is what `ecco report --json` prints: one source of truth.
//!
//! The crate holds no model code: the logit-lens and NMF views are filled by the caller (the
//! `ecco` command) from `ecco-attrib` and `ecco-factor` results.
//!
//! ## Quick start
//!
//! ```
//! use ecco_core::{ModelInfo, ModelKind, Trace};
//! use ecco_viz::{Report, render_html};
//!
//! let info = ModelInfo {
//!     name: "tiny".into(), family: "gpt2".into(), kind: ModelKind::Causal, n_layers: 2,
//!     hidden_size: 4, n_heads: 2, intermediate_size: 16, vocab_size: 10, max_positions: Some(8),
//! };
//! let mut trace = Trace::new(&info, "flex", vec!["Hello".into(), "Ġworld".into()], vec![1, 2], 1);
//! trace.attributions.insert("grad_x_input".into(), vec![vec![1.0]]);
//! let report = Report::from_trace(&trace)?;
//! assert_eq!(report.tokens.tokens[1].text, " world");
//! let page = render_html(&report)?;
//! assert!(page.contains("default-src 'none'"));
//! # Ok::<(), ecco_viz::Error>(())
//! ```
//!
//! ## The views' JSON
//!
//! A report is one object; a view the trace cannot support is `null` (or an empty list).
//! Token indices always index `tokens.tokens`.
//!
//! ```text
//! {
//!   "title": "ecco report: …",
//!   "model": {"name": "…", "family": "gpt2", "n_layers": 6},
//!   "tokens": {                                   // the output sequence
//!     "n_input": 5, "convention": "byte_level",   // byte_level | word_piece | sentence_piece | plain
//!     "tokens": [{"id": 15496, "raw": "ĠHello", "text": " Hello", "word_start": true, "generated": false}, …]
//!   },
//!   "attributions": [                             // primary attributions, one per method
//!     {"method": "grad_x_input", "first_target": 5,
//!      "rows": [[0.12, 0.3, …], …]}               // row k explains token first_target + k; value j is token j's share (sums to 1)
//!   ],
//!   "layer_predictions": {"position": 5, "lens": "normed", "layers": [0, 1, …],
//!     "predictions": [[{"token_id": 11, "token": "Ġthe", "text": " the", "prob": 0.41, "ranking": 1}, …], …]},   // [layer][k]
//!   "rankings": {"lens": "normed", "layers": [0, …], "positions": [5, 6, …], "tokens": [" world", …],
//!     "rankings": [[1, 12, …], …], "vocab_size": 50257},                                                       // [layer][generated token]
//!   "rankings_watch": {"lens": "normed", "position": 5, "watch": [11, 257], "tokens": [" the", " a"],
//!     "layers": [0, …], "rankings": [[3, 40], …], "vocab_size": 50257},                                         // [layer][watched]
//!   "nmf": {"layers": [0, …], "components": [[0.0, 1.3, …], …],                                                // [factor][position]
//!     "loadings": [[{"layer": 3, "neuron": 17, "weight": 0.8}, …], …], "reconstruction_error": 12.5},
//!   "attention": {"layers": [0, …], "n_heads": 12, "n_positions": 9, "top_k": 8,
//!     "heads": [[[[key, w255, key, w255, …], …], …], …],   // [layer][head][query]: strongest keys first, weight as round(255·w)
//!     "mean": [[[key, w255, …], …], …]},                    // [layer][query]: the same for the mean over heads
//!   "neurons": {"neurons": [{"layer": 3, "neuron": 17}, …], "values": [[0.1, -0.02, …], …]},                   // [neuron][position]
//!   "evaluation": {"baseline": "eos", "n_predictions": 4, "grid": [0.0, 0.05, …, 1.0],      // fraction of tokens removed
//!     "rows": [{"method": "grad_x_input", "random": false, "deletion_auc": 0.09, "insertion_auc": 0.6,
//!               "comprehensiveness": 0.5, "sufficiency": 0.2, "deletion": [0.9, …], "insertion": [0.01, …]}, …]}  // random ranking last
//! }
//! ```
//!
//! Floating-point values are rounded to four significant digits.
//!
//! ## Crate map
//! - [`views`]: [`Report`] and the view structs.
//! - [`build`]: views built from a trace and its tensors ([`Report::from_trace`], [`attention_view`], [`neurons_view`]).
//! - [`tokens`]: sub-word pieces as display text ([`display_tokens`], [`PieceConvention`]).
//! - [`html`]: [`render_html`], the page's CSP, JSON embedding.
//! - [`svg`]: static SVG heatmaps ([`rankings_svg`], [`rankings_watch_svg`], [`neurons_svg`], [`nmf_svg`]).
//! - [`colour`]: the viridis scale. [`write`]: [`write_atomic`]. [`error`]: [`Error`], [`Result`].

pub mod build;
pub mod colour;
pub mod error;
pub mod html;
pub mod svg;
pub mod tokens;
pub mod views;
pub mod write;

pub use build::{attention_view, neurons_view, round_sig};
pub use error::{Error, Result};
pub use html::{content_security_policy, embedded_json, render_html};
pub use svg::{Scale, heatmap, neurons_svg, nmf_svg, rankings_svg, rankings_watch_svg};
pub use tokens::{DisplayPiece, PieceConvention, display_tokens};
pub use views::{
    AttentionView, AttributionView, EvaluationRow, EvaluationView, LayerPredictionsView, ModelSummary, NeuronLoading, NeuronRef,
    NeuronsView, NmfView, Prediction, RankingsView, RankingsWatchView, Report, TokenEntry, TokensView,
};
pub use write::{check_replaceable, stage, write_atomic};
