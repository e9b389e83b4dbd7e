//! Encoder-decoders (T5): which encoder tokens and decoder-prefix tokens drove each generated
//! token, as Ecco 0.1.2 computes it for `is_encoder_decoder` models.
//!
//! For the `k`-th generated token the decoder reads its start token and the `k` tokens generated
//! before it; the target is the softmax probability (or logit) of the generated token at the last
//! decoder position, differentiated with respect to the encoder's input embeddings and the
//! decoder prefix's embeddings together (captum on the pair `(inputs_embeds,
//! decoder_inputs_embeds)`; integrated gradients scale both). The two attributions are
//! concatenated, encoder first, then reduced to the L2 norm per position and divided by the sum.

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{CaptureSpec, LanguageModel, Logits, ModelInputs, ModelKind};

use crate::attribute::{AttributionOptions, l2_per_position, normalise, times};
use crate::error::{Error, Result};
use crate::gauss_legendre::gauss_legendre;
use crate::method::Method;

/// An encoder-decoder's sequence to attribute.
#[derive(Clone, Copy, Debug)]
pub struct Seq2SeqSequence<'a> {
    /// The encoder's input ids.
    pub encoder_ids: &'a [u32],
    /// The decoder's ids: its start token, then the generated ones.
    pub decoder_ids: &'a [u32],
}

impl Seq2SeqSequence<'_> {
    /// Number of generated tokens.
    pub fn n_generated(&self) -> usize {
        self.decoder_ids.len().saturating_sub(1)
    }
}

/// The number of model rows a method needs (for progress bars).
pub fn work_seq2seq(method: Method, seq: Seq2SeqSequence<'_>, options: &AttributionOptions) -> usize {
    match method {
        Method::IntegratedGradients => seq.n_generated() * options.ig_steps,
        _ => seq.n_generated(),
    }
}

fn embeddings(model: &dyn LanguageModel, ids: &[u32]) -> Tensor<3> {
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    model.embed(Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), model.device()))
}

fn check(model: &dyn LanguageModel, seq: Seq2SeqSequence<'_>, method: Method, options: &AttributionOptions) -> Result<()> {
    let info = model.info();
    if info.kind != ModelKind::EncoderDecoder {
        return Err(Error::ModelMismatch(format!(
            "encoder-decoder attribution needs an encoder-decoder, {} is {:?}",
            info.name, info.kind
        )));
    }
    if !matches!(method, Method::Gradient | Method::GradXInput | Method::IntegratedGradients) {
        return Err(Error::ModelMismatch(format!(
            "{} is not available for encoder-decoder models (use grad_x_input, gradient or integrated_gradients)",
            method.name()
        )));
    }
    if seq.encoder_ids.is_empty() {
        return Err(Error::Empty("the encoder input has no tokens"));
    }
    let ids = seq.encoder_ids.iter().chain(seq.decoder_ids).copied();
    crate::attribute::check_targets(seq.n_generated(), ids, info.vocab_size, options)
}

/// One normalised list per generated token: `encoder_ids.len() + k + 1` values for the `k`-th
/// (the encoder's tokens, then the decoder's start token and the `k` tokens before it).
///
/// `progress` is called with the number of rows each batch finished.
///
/// # Errors
/// A model that is not an encoder-decoder, a method other than the gradient family, empty
/// inputs, ids outside the vocabulary, model errors.
pub fn attribute_seq2seq(
    model: &dyn LanguageModel,
    seq: Seq2SeqSequence<'_>,
    method: Method,
    options: &AttributionOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    check(model, seq, method, options)?;
    let enc = embeddings(model, seq.encoder_ids);
    let dec_all = embeddings(model, seq.decoder_ids);
    let [_, n_enc, hidden] = enc.dims();
    let enc_values = crate::attribute::read_embeds(&enc.clone().reshape([n_enc, hidden]))?;
    let (alphas, weights) = match method {
        Method::IntegratedGradients => gauss_legendre(options.ig_steps),
        _ => (vec![1.0], vec![1.0]),
    };
    let mut out = Vec::with_capacity(seq.n_generated());
    for k in 0..seq.n_generated() {
        let dec_len = k + 1;
        let dec = dec_all.clone().slice([0..1, 0..dec_len, 0..hidden]);
        let target = seq.decoder_ids[k + 1];
        // Integrated gradients' points in batches of at most `max_batch_tokens` positions.
        let per_batch = (options.max_batch_tokens / (n_enc + dec_len)).max(1);
        let mut g_enc = vec![0f32; n_enc * hidden];
        let mut g_dec = vec![0f32; dec_len * hidden];
        let points: Vec<(f64, f64)> = alphas.iter().copied().zip(weights.iter().copied()).collect();
        for chunk in points.chunks(per_batch) {
            let (ge, gd) = batch_gradients(model, &enc, &dec, chunk, target, options)?;
            for (s, g) in g_enc.iter_mut().zip(ge) {
                *s += g;
            }
            for (s, g) in g_dec.iter_mut().zip(gd) {
                *s += g;
            }
            progress(chunk.len());
            if let Some(cancel) = &options.cancel {
                cancel.check()?;
            }
        }
        let mut joined = g_enc;
        joined.extend(g_dec);
        let values = if method == Method::Gradient {
            l2_per_position(&joined, hidden)
        } else {
            let mut e = enc_values.clone();
            e.extend(crate::attribute::read_embeds(&dec.clone().reshape([dec_len, hidden]))?);
            l2_per_position(&times(&joined, &e), hidden)
        };
        out.push(normalise(values));
    }
    Ok(out)
}

/// The weighted sum over `points` `(alpha, weight)` of the target's gradient with respect to
/// the encoder and decoder embeddings scaled by alpha: `([n_enc * hidden], [dec_len * hidden])`.
fn batch_gradients(
    model: &dyn LanguageModel,
    enc: &Tensor<3>,
    dec: &Tensor<3>,
    points: &[(f64, f64)],
    target: u32,
    options: &AttributionOptions,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let [_, n_enc, hidden] = enc.dims();
    let dec_len = dec.dims()[1];
    let n = points.len();
    let device = enc.device();
    let alphas: Vec<f32> = points.iter().map(|&(a, _)| a as f32).collect();
    let scale = Tensor::<3>::from_data(TensorData::new(alphas, [n, 1, 1]), &device);
    let x_enc = (enc.clone().repeat_dim(0, n) * scale.clone()).autodiff().require_grad();
    let x_dec = (dec.clone().repeat_dim(0, n) * scale).autodiff().require_grad();
    let inputs = ModelInputs { embeds: x_enc.clone(), decoder_embeds: Some(x_dec.clone()) };
    let out = model.forward(inputs, &CaptureSpec::none().with_logits(Logits::Skip))?;
    let last = out.last_hidden.slice([0..n, dec_len - 1..dec_len, 0..hidden]);
    let targets = points.iter().map(|&(_, w)| (target, options.contrast_with, w as f32));
    let grads = crate::engine::head_scores(model, last, targets, options.target)?.sum().backward();
    let read = |x: &Tensor<3>, len: usize| -> Result<Vec<f32>> {
        let g = x.grad(&grads).ok_or_else(|| Error::Readback("no gradient for the inputs".to_owned()))?;
        let g = g.sum_dim(0).reshape([len * hidden]);
        g.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))
    };
    Ok((read(&x_enc, n_enc)?, read(&x_dec, dec_len)?))
}
