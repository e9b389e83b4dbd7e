//! Moving captured burn tensors into the trace bundle's f32 layout.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use ecco_core::{F32Tensor, StackCaptures};

use crate::error::{Error, Result};

/// Reads a tensor back from its device as row-major f32.
///
/// # Errors
/// [`Error::Readback`] when the device cannot give it back.
pub fn to_f32<const D: usize>(tensor: Tensor<D>) -> Result<F32Tensor> {
    let shape = tensor.dims().to_vec();
    let data = tensor.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
    Ok(F32Tensor { shape, data })
}

/// Converts what a stack recorded for batch element 0 into the trace's tensors, named
/// `{kind}.{stack}`: `hidden_states` `[layers + 1, positions, hidden]`, `activations`
/// `[layers, neurons, positions]`, `attention` `[layers, heads, query, key]`.
///
/// Returns the tensors and the layers the activations hold.
///
/// # Errors
/// As [`to_f32`].
pub fn stack_tensors(captures: StackCaptures, stack: &str) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    let mut out = BTreeMap::new();
    if !captures.hidden_states.is_empty() {
        let stacked = Tensor::cat(captures.hidden_states, 0);
        out.insert(format!("hidden_states.{stack}"), to_f32(stacked)?);
    }
    let layers: Vec<usize> = captures.activations.iter().map(|(l, _)| *l).collect();
    if !captures.activations.is_empty() {
        // [1, positions, neurons] per layer -> [layers, neurons, positions].
        let per_layer: Vec<Tensor<3>> = captures.activations.into_iter().map(|(_, a)| a.swap_dims(1, 2)).collect();
        out.insert(format!("activations.{stack}"), to_f32(Tensor::cat(per_layer, 0))?);
    }
    if !captures.attention.is_empty() {
        out.insert(format!("attention.{stack}"), to_f32(Tensor::cat(captures.attention, 0))?);
    }
    Ok((out, layers))
}

/// Runs one forward pass over `ids` recording what `capture` asks for (logits skipped) and
/// returns the trace tensors of every stack (the shorthands under their old names, hook
/// points under their own, batch dropped) and the layers the activations hold.
///
/// # Errors
/// A too-long sequence, or a tensor that cannot be read back.
pub fn capture_pass(
    model: &dyn ecco_core::LanguageModel,
    ids: &[u32],
    capture: &ecco_core::CaptureSpec,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    run_capture(model, ids, None, capture, &[])
}

/// As [`capture_pass`] (or [`capture_pass_seq2seq`] with `decoder_ids`) with `edits` applied at
/// their hook points: the captures are the edited run's.
///
/// # Errors
/// As [`capture_pass`], and a failing intervention.
pub fn capture_pass_with_edits(
    model: &dyn ecco_core::LanguageModel,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    capture: &ecco_core::CaptureSpec,
    edits: &[(ecco_core::HookPattern, std::sync::Arc<dyn ecco_core::Intervention>)],
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    if decoder_ids.is_some_and(<[u32]>::is_empty) {
        return Err(ecco_core::Error::MissingInput("the decoder input is empty").into());
    }
    run_capture(model, ids, decoder_ids, capture, edits)
}

/// As [`capture_pass`] for an encoder-decoder: the encoder reads `encoder_ids`, the decoder
/// `decoder_ids` (its start token first); adds `attention.cross` when attention is asked for.
///
/// # Errors
/// As [`capture_pass`], and an empty decoder input.
pub fn capture_pass_seq2seq(
    model: &dyn ecco_core::LanguageModel,
    encoder_ids: &[u32],
    decoder_ids: &[u32],
    capture: &ecco_core::CaptureSpec,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    if decoder_ids.is_empty() {
        return Err(ecco_core::Error::MissingInput("the decoder input is empty").into());
    }
    run_capture(model, encoder_ids, Some(decoder_ids), capture, &[])
}

fn run_capture(
    model: &dyn ecco_core::LanguageModel,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    capture: &ecco_core::CaptureSpec,
    edits: &[(ecco_core::HookPattern, std::sync::Arc<dyn ecco_core::Intervention>)],
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    use burn::tensor::{Int, TensorData};
    let capture = capture.clone().with_logits(ecco_core::Logits::Skip);
    let embed = |ids: &[u32]| {
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        model.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), model.device()))
    };
    let inputs = ecco_core::ModelInputs { embeds: embed(ids), decoder_embeds: decoder_ids.map(embed) };
    let mut hooks = ecco_core::Hooks::new(capture);
    for (pattern, edit) in edits {
        hooks = hooks.with_intervention(*pattern, std::sync::Arc::clone(edit));
    }
    let output = model.forward_hooked(inputs, &mut hooks)?;
    let mut tensors = BTreeMap::new();
    let mut layers = Vec::new();
    for (stack, captures) in [("encoder", output.encoder), ("decoder", output.decoder)] {
        if let Some(captures) = captures {
            let (t, l) = stack_tensors(captures, stack)?;
            tensors.extend(t);
            if !l.is_empty() {
                layers = l;
            }
        }
    }
    if !output.cross_attention.is_empty() {
        tensors.insert("attention.cross".to_owned(), to_f32(Tensor::cat(output.cross_attention, 0))?);
    }
    for (point, value) in output.hooks {
        // Batch element 0, under the hook's own name.
        let (shape, data) = value.to_vec()?;
        tensors.insert(point.to_string(), F32Tensor { shape: shape[1..].to_vec(), data });
    }
    Ok((tensors, layers))
}
