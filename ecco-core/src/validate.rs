//! Checks a trace bundle read from disk before anything uses it: `trace.json` must agree with
//! itself, and every known tensor's shape with `trace.json`, so that a corrupt or hand-edited
//! bundle is refused with one line saying what is wrong, not misread, factorised with swapped
//! dimensions or sized into a huge allocation by a view.

use crate::model::ModelKind;
use crate::trace::Trace;

/// The first inconsistency within `trace.json`, if any.
pub(crate) fn check_trace(t: &Trace) -> Result<(), String> {
    let n = t.tokens.len();
    if n == 0 {
        return Err("it has no tokens".into());
    }
    if t.token_ids.len() != n {
        return Err(format!("it has {n} tokens but {} token ids", t.token_ids.len()));
    }
    if t.model.n_layers == 0 || t.model.hidden_size == 0 || t.model.vocab_size == 0 {
        return Err("the model's n_layers, hidden_size and vocab_size must be positive".into());
    }
    if let Some(&id) = t.token_ids.iter().find(|&&id| id as usize >= t.model.vocab_size) {
        return Err(format!("token id {id} is outside the model's vocabulary of {}", t.model.vocab_size));
    }
    let encoder_decoder = t.model.model_type == ModelKind::EncoderDecoder;
    if t.n_input_tokens > n || (encoder_decoder && (t.n_input_tokens == 0 || t.n_input_tokens >= n)) {
        return Err(format!("n_input_tokens {} does not fit its {n} tokens", t.n_input_tokens));
    }
    for (method, rows) in &t.attributions {
        if rows.len() > n || rows.iter().any(|row| row.len() > n) {
            return Err(format!("attribution `{method}` has more entries than the {n} tokens"));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(format!("attribution `{method}` holds NaN or infinite values"));
        }
    }
    if let Some(layers) = &t.activation_layers {
        if let Some(l) = layers.iter().find(|&&l| l >= t.model.n_layers) {
            return Err(format!("activation layer {l} is out of range: the model has {} layers", t.model.n_layers));
        }
        if layers.windows(2).any(|w| w[0] >= w[1]) {
            return Err("activation_layers must be ascending without repeats".into());
        }
    }
    for m in t.masked_predictions.iter().flatten() {
        if m.position >= n {
            return Err(format!("a masked prediction is at position {} of {n} tokens", m.position));
        }
        if m.predictions.iter().any(|p| p.token_id as usize >= t.model.vocab_size || !p.prob.is_finite()) {
            return Err(format!(
                "the masked predictions at position {} hold an id outside the vocabulary or a non-finite probability",
                m.position
            ));
        }
    }
    Ok(())
}

/// Which stack a capture belongs to, and how many tokens that stack read.
struct Stack {
    /// The stack's tokens; a capture covers all of them (a forward pass) or all but the last
    /// (generation never feeds the last generated token back).
    tokens: usize,
    /// The stack's blocks, when `trace.json` says (an encoder-decoder's encoder may have a
    /// different depth from the decoder, which `n_layers` counts).
    layers: Option<usize>,
}

fn stack(t: &Trace, name: &str) -> Option<Stack> {
    let n = t.tokens.len();
    let layers = Some(t.model.n_layers);
    match (t.model.model_type, name) {
        (ModelKind::Causal, "decoder") => Some(Stack { tokens: n, layers }),
        (ModelKind::Masked, "encoder") => Some(Stack { tokens: n, layers }),
        (ModelKind::EncoderDecoder, "encoder") => Some(Stack { tokens: t.n_input_tokens, layers: None }),
        (ModelKind::EncoderDecoder, "decoder") => Some(Stack { tokens: n - t.n_input_tokens, layers }),
        _ => None,
    }
}

/// The positions a stack's capture of shape dimension `p` may cover.
fn check_positions(name: &str, p: usize, s: &Stack) -> Result<(), String> {
    if p == 0 || p > s.tokens || p + 1 < s.tokens {
        return Err(format!("`{name}` covers {p} positions but the trace has {} tokens there", s.tokens));
    }
    Ok(())
}

fn check_dim(name: &str, what: &str, found: usize, expected: usize) -> Result<(), String> {
    if found != expected {
        return Err(format!("`{name}` has {found} {what} but trace.json says {expected}"));
    }
    Ok(())
}

/// The first tensor whose shape disagrees with `trace.json`, if any. Names this crate does not
/// know are left alone.
pub(crate) fn check_shape(t: &Trace, name: &str, shape: &[usize]) -> Result<(), String> {
    let Some((kind, stack_name)) = name.split_once('.') else { return Ok(()) };
    let rank = |r: usize| {
        if shape.len() == r { Ok(()) } else { Err(format!("`{name}` has shape {shape:?}, expected {r} dimensions")) }
    };
    let m = &t.model;
    match kind {
        "attention" if stack_name == "cross" => {
            let (Some(dec), Some(enc)) = (stack(t, "decoder"), stack(t, "encoder")) else {
                return Err(format!("`{name}` belongs to an encoder-decoder, and the trace is of a {:?} model", m.model_type));
            };
            rank(4)?;
            check_dim(name, "layers", shape[0], m.n_layers)?;
            if m.n_heads > 0 {
                check_dim(name, "heads", shape[1], m.n_heads)?;
            }
            check_positions(name, shape[2], &dec)?;
            check_dim(name, "keys", shape[3], enc.tokens)
        }
        "hidden_states" | "activations" | "attention" => {
            let Some(s) = stack(t, stack_name) else {
                return Err(format!("`{name}`: a {:?} model has no such stack", m.model_type));
            };
            rank(if kind == "attention" { 4 } else { 3 })?;
            match kind {
                "hidden_states" => {
                    if let Some(layers) = s.layers {
                        check_dim(name, "hidden states", shape[0], layers + 1)?;
                    }
                    check_positions(name, shape[1], &s)?;
                    check_dim(name, "hidden units", shape[2], m.hidden_size)
                }
                "activations" => {
                    match (&t.activation_layers, s.layers) {
                        (Some(list), _) => check_dim(name, "layers", shape[0], list.len())?,
                        (None, Some(layers)) => check_dim(name, "layers", shape[0], layers)?,
                        (None, None) => {}
                    }
                    if m.intermediate_size > 0 {
                        check_dim(name, "neurons", shape[1], m.intermediate_size)?;
                    }
                    check_positions(name, shape[2], &s)
                }
                _ => {
                    if let Some(layers) = s.layers {
                        check_dim(name, "layers", shape[0], layers)?;
                    }
                    if m.n_heads > 0 {
                        check_dim(name, "heads", shape[1], m.n_heads)?;
                    }
                    check_positions(name, shape[2], &s)?;
                    check_dim(name, "keys", shape[3], shape[2])
                }
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::error::{Error, Result};
    use crate::model::{ModelInfo, ModelKind};
    use crate::tensors::{F32Tensor, write_safetensors};
    use crate::trace::{TRACE_JSON, TRACE_TENSORS, Trace, TraceBundle};

    fn info(kind: ModelKind) -> ModelInfo {
        ModelInfo {
            name: "tiny".into(),
            family: "gpt2".into(),
            kind,
            n_layers: 2,
            hidden_size: 4,
            n_heads: 2,
            intermediate_size: 8,
            vocab_size: 10,
            max_positions: Some(8),
        }
    }

    /// A causal trace of 3 tokens with hidden states, activations and attention over the first 2.
    fn bundle() -> Result<TraceBundle> {
        let trace = Trace::new(&info(ModelKind::Causal), "flex", vec!["a".into(), "b".into(), "c".into()], vec![1, 2, 3], 2);
        let mut tensors = BTreeMap::new();
        tensors.insert("hidden_states.decoder".into(), F32Tensor::new("h", vec![3, 2, 4], vec![0.5; 24])?);
        tensors.insert("activations.decoder".into(), F32Tensor::new("a", vec![2, 8, 2], vec![0.25; 32])?);
        tensors.insert("attention.decoder".into(), F32Tensor::new("t", vec![2, 2, 2, 2], vec![0.5; 16])?);
        Ok(TraceBundle { trace, tensors })
    }

    /// Writes `bundle` as files without any check, as a hand edit would, and reads it back.
    fn read_back(bundle: &TraceBundle) -> Result<String> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let mut trace = bundle.trace.clone();
        trace.tensors = bundle.tensors.keys().cloned().collect();
        let json = serde_json::to_vec(&trace).map_err(|e| Error::Json { path: "t".into(), source: e })?;
        std::fs::write(dir.path().join(TRACE_JSON), json).map_err(|e| Error::io("t", e))?;
        write_safetensors(&dir.path().join(TRACE_TENSORS), &bundle.tensors)?;
        Ok(TraceBundle::read(dir.path()).err().map(|e| e.to_string()).unwrap_or_default())
    }

    #[test]
    fn consistent_bundles_pass_and_each_inconsistency_is_named() -> Result<()> {
        let good = bundle()?;
        good.validate()?;
        assert_eq!(read_back(&good)?, "");

        let mut b = bundle()?;
        b.trace.token_ids.pop();
        assert!(read_back(&b)?.contains("3 tokens but 2 token ids"));

        let mut b = bundle()?;
        b.trace.token_ids[0] = 10;
        assert!(read_back(&b)?.contains("token id 10 is outside the model's vocabulary of 10"));

        let mut b = bundle()?;
        b.tensors.insert("hidden_states.decoder".into(), F32Tensor::new("h", vec![3, 2, 4], vec![f32::NAN; 24])?);
        assert!(read_back(&b)?.contains("`hidden_states.decoder` holds NaN"));

        // Activations with neurons and positions swapped.
        let mut b = bundle()?;
        b.tensors.insert("activations.decoder".into(), F32Tensor::new("a", vec![2, 2, 8], vec![0.25; 32])?);
        assert!(read_back(&b)?.contains("`activations.decoder` has 2 neurons but trace.json says 8"));

        // Zero elements, huge dimensions: refused from the header's shape, before any view.
        let mut b = bundle()?;
        b.tensors.insert("attention.decoder".into(), F32Tensor::new("t", vec![4, 1_000_000_000_000, 0, 0], Vec::new())?);
        assert!(read_back(&b)?.contains("`attention.decoder` has 4 layers but trace.json says 2"));

        let mut b = bundle()?;
        b.tensors.insert("hidden_states.decoder".into(), F32Tensor::new("h", vec![3, 7, 4], vec![0.5; 84])?);
        assert!(read_back(&b)?.contains("covers 7 positions but the trace has 3 tokens"));

        let mut b = bundle()?;
        b.trace.attributions.insert("gradient".into(), vec![vec![0.5; 4]]);
        assert!(read_back(&b)?.contains("attribution `gradient` has more entries than the 3 tokens"));

        let mut b = bundle()?;
        b.tensors.insert("attention.encoder".into(), F32Tensor::new("t", vec![2, 2, 2, 2], vec![0.5; 16])?);
        assert!(read_back(&b)?.contains("a Causal model has no such stack"));

        // Tensors of names this crate does not know (other hook points) are left alone.
        let mut b = bundle()?;
        b.tensors.insert("blocks.0.hook_resid_pre".into(), F32Tensor::new("x", vec![5], vec![1.0; 5])?);
        assert_eq!(read_back(&b)?, "");
        Ok(())
    }

    #[test]
    fn encoder_decoder_stacks_are_checked_against_their_own_tokens() -> Result<()> {
        // 3 encoder tokens, then the decoder's start token and 2 generated tokens.
        let tokens: Vec<String> = ["x", "y", "</s>", "<pad>", "p", "q"].iter().map(|t| (*t).to_owned()).collect();
        let trace = Trace::new(&info(ModelKind::EncoderDecoder), "flex", tokens, vec![1, 2, 3, 0, 4, 5], 3);
        let mut tensors = BTreeMap::new();
        tensors.insert("hidden_states.encoder".into(), F32Tensor::new("h", vec![4, 3, 4], vec![0.5; 48])?);
        tensors.insert("hidden_states.decoder".into(), F32Tensor::new("h", vec![3, 2, 4], vec![0.5; 24])?);
        tensors.insert("attention.cross".into(), F32Tensor::new("c", vec![2, 2, 2, 3], vec![0.5; 24])?);
        let mut b = TraceBundle { trace, tensors };
        assert_eq!(read_back(&b)?, "");
        b.tensors.insert("attention.cross".into(), F32Tensor::new("c", vec![2, 2, 3, 2], vec![0.5; 24])?);
        assert!(read_back(&b)?.contains("`attention.cross` has 2 keys but trace.json says 3"));
        Ok(())
    }
}
