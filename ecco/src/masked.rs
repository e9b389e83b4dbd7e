//! [`Lm::forward`](crate::Lm::forward) on a masked LM (`ecco forward`): predictions at each
//! mask token and their attributions.

use anyhow::{Context, Result, bail};
use ecco_attrib::{AttributionOptions, MaskedTarget, Method};
use ecco_core::{MaskedPrediction, PredictedToken, Trace};
use ecco_models::LoadedModel;

use crate::progress;

/// What `forward` asks of a masked LM.
pub(crate) struct MaskedRequest<'a> {
    /// Attribution methods (may be empty).
    pub methods: &'a [Method],
    /// Their settings.
    pub options: AttributionOptions,
    /// Predictions per mask token.
    pub top_k: usize,
    /// Progress bars on stderr.
    pub progress: bool,
    /// Who follows and may stop the work.
    pub control: Option<&'a crate::progress::Control>,
}

/// Fills `masked_predictions` (and `attributions`, one list per mask token) of `trace`.
pub(crate) fn fill(loaded: &LoadedModel, ids: &[u32], request: &MaskedRequest<'_>, trace: &mut Trace) -> Result<()> {
    let lm = loaded.model.as_lm();
    let mask_id = loaded.tokenizer.mask_token_id();
    let positions: Vec<usize> = ids.iter().enumerate().filter(|(_, id)| Some(**id) == mask_id).map(|(i, _)| i).collect();
    let needs_mask = || match mask_id {
        Some(id) => format!("put a mask token ({}) in the text (--text)", loaded.tokenizer.token(id)),
        None => "the tokenizer has no mask token".to_owned(),
    };
    if positions.is_empty() {
        if !request.methods.is_empty() {
            bail!("attribution on a masked LM attributes the prediction at a mask token: {}", needs_mask());
        }
        return Ok(());
    }
    if !loaded.model.has_lm_head() {
        if !request.methods.is_empty() {
            bail!("{} has no masked-LM head (a bare encoder): it predicts nothing to attribute", loaded.dir.display());
        }
        return Ok(());
    }
    if request.top_k == 0 {
        bail!("the number of predictions per mask token (--mask-topk) must be at least 1");
    }
    let tok = &loaded.tokenizer;
    let preds = ecco_attrib::masked_predictions(lm, ids, &positions, request.top_k, &|id| tok.token(id))?;
    let targets: Vec<MaskedTarget> =
        positions.iter().zip(&preds).map(|(&position, p)| MaskedTarget { position, target: p[0].token_id }).collect();
    trace.masked_predictions = Some(
        positions
            .iter()
            .zip(preds)
            .map(|(&position, p)| MaskedPrediction {
                position,
                predictions: p.into_iter().map(|p| PredictedToken { token_id: p.token_id, token: p.token, prob: p.prob }).collect(),
            })
            .collect(),
    );
    for &method in request.methods {
        let rows = match method {
            Method::IntegratedGradients => targets.len() * request.options.ig_steps,
            Method::Occlusion => targets.len() * (ids.len() + 1),
            _ => targets.len(),
        };
        let bar = progress::bar(request.progress, request.control, rows as u64, method.name());
        let values = ecco_attrib::attribute_masked(lm, ids, &targets, method, &request.options, &mut |n| bar.inc(n as u64));
        bar.finish_and_clear();
        let values = values.with_context(|| format!("{} attribution failed", method.name()))?;
        trace.attributions.insert(method.name().to_owned(), values);
    }
    Ok(())
}
