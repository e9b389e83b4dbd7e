//! One document of a corpus run (`ecco batch`): [`run_document`] turns a text into the rows
//! `ecco batch` writes (`documents`, `attributions`, the captured tensors) or the reason it is
//! skipped. The table layout is `docs/batch.md`'s; anything that runs documents elsewhere (a
//! Ray Data actor, say) produces the same rows by calling this function.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ecco_attrib::Method;
use ecco_core::{F32Tensor, ModelKind};

use crate::load::Lm;
use crate::options::{ForwardOptions, GenerateOptions};

/// What [`run_document`] does with each document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOptions {
    /// `Some(n)`: generate up to `n` tokens after the text ([`Lm::generate`]); `None`: one
    /// forward pass over it ([`Lm::forward`]).
    pub max_new_tokens: Option<usize>,
    /// Attribution methods, for every generated token (or, on a masked LM's forward pass, every
    /// mask token).
    pub attribution: Vec<Method>,
    /// Capture the FFN activations (`activations.decoder`, `activations.encoder`).
    pub activations: bool,
    /// Capture these hook points under their own names (`blocks.3.mlp.post`, …).
    pub capture: Vec<ecco_core::HookPattern>,
}

/// One row of the `attributions` table: how much input position `source_index` drove generated
/// token `generated_index` under `method`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributionRow {
    /// 0-based index among the generated tokens (a masked LM's: among its mask tokens).
    pub generated_index: u32,
    /// 0-based position in the document's tokens.
    pub source_index: u32,
    /// The method's name (`grad_x_input`, …), as in `trace.json`.
    pub method: String,
    /// The score `trace.json` holds for this pair.
    pub score: f32,
}

/// What one document produced: its `documents` row, its `attributions` rows, its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentRows {
    /// Every token id: the input's then the generated ones.
    pub token_ids: Vec<u32>,
    /// The raw tokens (`Ġworld`) of `token_ids`.
    pub tokens: Vec<String>,
    /// How many of `tokens` are input.
    pub n_input_tokens: u32,
    /// The decoded text (an encoder-decoder's: the generated text), as `trace.json`'s.
    pub output_text: String,
    /// The attributions in long format, ordered by method name, generated token, source.
    pub attributions: Vec<AttributionRow>,
    /// The captured tensors by trace name (`activations.decoder`, …).
    pub tensors: BTreeMap<String, F32Tensor>,
}

/// Why a document was not run: the `skipped` table's `reason` (a short code) and `detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The text is empty or whitespace only.
    EmptyText,
    /// The text's tokens (plus the tokens to generate) exceed the model's positions.
    TooLong {
        /// Positions the model would read.
        len: usize,
        /// Positions it has.
        max: usize,
    },
    /// The text field is not valid UTF-8.
    InvalidUtf8,
    /// The row has no text field (or it is null).
    MissingField {
        /// The field's name.
        field: String,
    },
    /// The id repeats an earlier row's in the same shard (their tensors would share keys).
    DuplicateId,
    /// The row is not a JSON object, or the field is not a string.
    InvalidRow {
        /// What is wrong.
        detail: String,
    },
}

impl SkipReason {
    /// The short code the `skipped` table's `reason` column holds.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyText => "empty_text",
            Self::TooLong { .. } => "too_long",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MissingField { .. } => "missing_field",
            Self::DuplicateId => "duplicate_id",
            Self::InvalidRow { .. } => "invalid_row",
        }
    }

    /// A sentence for the `detail` column.
    pub fn detail(&self) -> String {
        match self {
            Self::EmptyText => "the text is empty".to_owned(),
            Self::TooLong { len, max } => format!("{len} positions, the model has {max}"),
            Self::InvalidUtf8 => "the text is not valid UTF-8".to_owned(),
            Self::MissingField { field } => format!("no `{field}` field"),
            Self::DuplicateId => "the id repeats an earlier row of the same shard".to_owned(),
            Self::InvalidRow { detail } => detail.clone(),
        }
    }
}

/// Runs one document: [`Lm::generate`] (with `max_new_tokens`) or [`Lm::forward`] on `text`,
/// with progress bars off and no hidden states (a corpus run keeps only what it asks for).
/// A document that cannot be run (empty, too long) comes back as `Ok(Err(reason))`.
///
/// ```
/// use ecco::batch::{BatchOptions, run_document};
/// let lm = ecco::demo()?;
/// let options = BatchOptions { max_new_tokens: Some(1), attribution: vec![ecco::Method::GradXInput], ..Default::default() };
/// let rows = run_document(&lm, "The capital of France is", &options)?.expect("a runnable document");
/// assert_eq!(rows.tokens.last().map(String::as_str), Some("ĠParis"));
/// assert_eq!(rows.attributions.len(), 5); // one generated token, five input positions
/// assert!(run_document(&lm, "  ", &options)?.is_err());
/// # Ok::<(), ecco::Error>(())
/// ```
///
/// # Errors
/// Settings the model cannot run (attribution on a causal LM's forward pass, generation on a
/// masked LM), model failures: these would fail every document, so they stop a run.
pub fn run_document(lm: &Lm, text: &str, options: &BatchOptions) -> Result<Result<DocumentRows, SkipReason>> {
    if text.trim().is_empty() {
        return Ok(Err(SkipReason::EmptyText));
    }
    if let Some(reason) = too_long(lm, text, options.max_new_tokens)? {
        return Ok(Err(reason));
    }
    let output = match options.max_new_tokens {
        Some(max_new_tokens) => lm.generate(
            text,
            &GenerateOptions {
                max_new_tokens,
                attribution: options.attribution.clone(),
                activations: options.activations,
                capture: options.capture.clone(),
                hidden_states: false,
                progress: false,
                ..Default::default()
            },
        )?,
        None => lm.forward(
            text,
            &ForwardOptions {
                attribution: options.attribution.clone(),
                activations: options.activations,
                capture: options.capture.clone(),
                hidden_states: false,
                progress: false,
                ..Default::default()
            },
        )?,
    };
    let trace = output.trace();
    let mut attributions = Vec::new();
    for (method, rows) in &trace.attributions {
        for (g, row) in rows.iter().enumerate() {
            for (s, &score) in row.iter().enumerate() {
                attributions.push(AttributionRow {
                    generated_index: u32::try_from(g).context("too many generated tokens")?,
                    source_index: u32::try_from(s).context("too many tokens")?,
                    method: method.clone(),
                    score,
                });
            }
        }
    }
    Ok(Ok(DocumentRows {
        token_ids: trace.token_ids.clone(),
        tokens: trace.tokens.clone(),
        n_input_tokens: u32::try_from(trace.n_input_tokens).context("too many tokens")?,
        output_text: trace.output_text.clone(),
        attributions,
        tensors: output.bundle().tensors.clone(),
    }))
}

/// The too-long check [`Lm::generate`] and [`Lm::forward`] make, done first so that a long
/// document is skipped rather than stopping the run: the model reads the input and every
/// generated token but the last.
fn too_long(lm: &Lm, text: &str, max_new_tokens: Option<usize>) -> Result<Option<SkipReason>> {
    let Some(max) = lm.info().max_positions else { return Ok(None) };
    let kind = lm.info().kind;
    let special = kind == ModelKind::Masked || kind == ModelKind::EncoderDecoder;
    let n = lm.tokenizer().encode(text, special)?.ids.len();
    // An encoder-decoder's generated tokens go to the decoder, not the encoder's positions.
    let extra = if kind == ModelKind::EncoderDecoder { 0 } else { max_new_tokens.map_or(0, |m| m.saturating_sub(1)) };
    let len = n.saturating_add(extra);
    Ok((len > max).then_some(SkipReason::TooLong { len, max }))
}
