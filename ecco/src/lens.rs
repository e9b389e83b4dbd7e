//! The logit lens on a trace: which hidden states it reads and how a position maps onto them,
//! for a causal LM, a masked LM and an encoder-decoder alike. [`Output`](crate::Output)'s lens
//! methods and the report's lens views both go through [`LensInput`].

use anyhow::{Result, bail};
use ecco_attrib::{LayerPrediction, Lens, check_compatible};
use ecco_core::{F32Tensor, ModelKind, Trace, TraceBundle};
use ecco_models::LoadedModel;

/// A trace's hidden states with the model that made them.
pub(crate) struct LensInput<'a> {
    trace: &'a Trace,
    model: &'a LoadedModel,
    hidden: &'a F32Tensor,
}

impl<'a> LensInput<'a> {
    /// The hidden states the lens reads: the encoder's for a masked LM, else the decoder's.
    ///
    /// # Errors
    /// A model that did not make the trace, a trace without hidden states.
    pub(crate) fn new(bundle: &'a TraceBundle, model: &'a LoadedModel) -> Result<Self> {
        let trace = &bundle.trace;
        check_compatible(model.model.as_lm(), &trace.model)?;
        let stack = if trace.model.model_type == ModelKind::Masked { "encoder" } else { "decoder" };
        match bundle.tensors.get(&format!("hidden_states.{stack}")) {
            Some(hidden) => Ok(Self { trace, model, hidden }),
            None => bail!("the trace has no hidden states: capture them with `hidden_states: true` (`--hidden-states`)"),
        }
    }

    fn is_masked(&self) -> bool {
        self.trace.model.model_type == ModelKind::Masked
    }

    /// An encoder-decoder's position among the decoder's tokens ([`Trace::decoder_position`]).
    fn decoder_position(&self, position: usize) -> Result<usize> {
        let t = self.trace;
        match t.decoder_position(position) {
            Some(p) => Ok(p),
            None => bail!(
                "position {position} is out of range: in an encoder-decoder trace the decoder predicts positions {}..={} (the encoder's tokens are 0..{n}, the decoder's start token {n})",
                t.n_input_tokens + 1,
                t.tokens.len().saturating_sub(1),
                n = t.n_input_tokens
            ),
        }
    }

    /// See [`Output::layer_predictions`](crate::Output::layer_predictions) (which checks `topk`).
    pub(crate) fn layer_predictions(
        &self,
        position: usize,
        topk: usize,
        layer: Option<usize>,
        lens: Lens,
    ) -> Result<Vec<Vec<LayerPrediction>>> {
        let (lm, tok) = (self.model.model.as_lm(), &self.model.tokenizer);
        let token = &|id| tok.token(id);
        Ok(if self.is_masked() {
            ecco_attrib::layer_predictions_at(lm, self.hidden, position, topk, layer, lens, token)?
        } else {
            ecco_attrib::layer_predictions(lm, self.hidden, self.decoder_position(position)?, topk, layer, lens, token)?
        })
    }

    /// See [`Output::rankings`](crate::Output::rankings) (which refuses masked LMs).
    pub(crate) fn rankings(&self, lens: Lens) -> Result<Vec<Vec<usize>>> {
        let (ids, n_input) = self.trace.lens_sequence();
        Ok(ecco_attrib::rankings(self.model.model.as_lm(), self.hidden, ids, n_input, lens)?)
    }

    /// See [`Output::rankings_watch`](crate::Output::rankings_watch).
    pub(crate) fn rankings_watch(&self, watch: &[u32], position: usize, lens: Lens) -> Result<Vec<Vec<usize>>> {
        let lm = self.model.model.as_lm();
        Ok(if self.is_masked() {
            ecco_attrib::rankings_watch_at(lm, self.hidden, position, watch, lens)?
        } else {
            ecco_attrib::rankings_watch(lm, self.hidden, self.decoder_position(position)?, watch, lens)?
        })
    }
}
