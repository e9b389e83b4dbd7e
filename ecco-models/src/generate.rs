//! Token generation with a KV cache: greedy decoding (as `transformers`' `do_sample=False`) and
//! seeded sampling with temperature, top-k and top-p (applied in that order, as `transformers`'
//! logits warpers are).

use ecco_core::{CausalLm, KvCache};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// Seeded sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// RNG seed: the same seed gives the same tokens.
    pub seed: u64,
    /// Logits are divided by this (> 0).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (0 < p <= 1).
    pub top_p: Option<f32>,
}

/// How to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Number of tokens to generate (> 0).
    pub max_new_tokens: usize,
    /// `None` for greedy decoding.
    pub sampling: Option<Sampling>,
    /// Stop after generating any of these ids (the model's end-of-sequence tokens; Llama 3
    /// names several).
    pub eos_token_ids: Vec<u32>,
    /// Checked before each step: once set, generation stops with `Cancelled`.
    pub cancel: Option<ecco_core::Cancel>,
}

impl GenerateOptions {
    /// Checks the settings against each other and against a model of `max_positions`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`], or a too-long sequence.
    pub fn validate(&self, prompt_len: usize, max_positions: Option<usize>) -> Result<()> {
        if prompt_len == 0 {
            return Err(Error::EmptyPrompt);
        }
        if self.max_new_tokens == 0 {
            return Err(Error::InvalidSetting("--max-new-tokens must be at least 1"));
        }
        if let Some(s) = &self.sampling {
            if !(s.temperature.is_finite() && s.temperature > 0.0) {
                return Err(Error::InvalidSetting("--temperature must be a positive number"));
            }
            if s.top_k == Some(0) {
                return Err(Error::InvalidSetting("--top-k must be at least 1"));
            }
            if let Some(p) = s.top_p
                && !(p > 0.0 && p <= 1.0)
            {
                return Err(Error::InvalidSetting("--top-p must be in (0, 1]"));
            }
        }
        if let Some(max) = max_positions {
            if prompt_len > max {
                return Err(ecco_core::Error::SequenceTooLong { len: prompt_len, max }.into());
            }
            // The last generated token is never fed back, so the model reads prompt + new - 1.
            let room = max - prompt_len + 1;
            if self.max_new_tokens > room {
                return Err(Error::TooManyNewTokens { asked: self.max_new_tokens, prompt: prompt_len, max, room });
            }
        }
        Ok(())
    }

    /// As [`GenerateOptions::validate`] for an encoder-decoder whose stacks each read at most
    /// `max_positions` tokens: the encoder reads the input, the decoder its start token and every
    /// generated token but the last (so at most `max_positions` new tokens).
    ///
    /// # Errors
    /// As [`GenerateOptions::validate`].
    pub fn validate_seq2seq(&self, input_len: usize, max_positions: usize) -> Result<()> {
        self.validate(input_len, None)?;
        if input_len > max_positions {
            return Err(ecco_core::Error::SequenceTooLong { len: input_len, max: max_positions }.into());
        }
        if self.max_new_tokens > max_positions {
            return Err(Error::TooManyDecoderTokens { asked: self.max_new_tokens, max: max_positions });
        }
        Ok(())
    }
}

/// Generates up to `options.max_new_tokens` ids after `prompt`; `on_token` is called after each.
///
/// # Errors
/// Invalid settings, or a tensor that cannot be read back.
pub fn generate(model: &dyn CausalLm, prompt: &[u32], options: &GenerateOptions, on_token: impl FnMut(usize)) -> Result<Vec<u32>> {
    options.validate(prompt.len(), model.info().max_positions)?;
    let mut cache = Some(KvCache::default());
    decode_loop(prompt.to_vec(), options, on_token, |feed| {
        let (logits, next) = model.decode_step(feed, cache.take().unwrap_or_default())?;
        cache = Some(next);
        Ok(logits)
    })
}

/// As [`generate`] with `edits` applied at their hook points in every forward pass. Each step
/// runs the whole sequence (no key/value cache), so every position, prompt and generated alike,
/// is edited in every pass, and an edit that reads the pass's other positions (mean ablation)
/// sees all of them.
///
/// # Errors
/// As [`generate`], and a failing intervention.
pub fn generate_with_edits(
    model: &dyn ecco_core::LanguageModel,
    prompt: &[u32],
    options: &GenerateOptions,
    edits: &[(ecco_core::HookPattern, std::sync::Arc<dyn ecco_core::Intervention>)],
    on_token: impl FnMut(usize),
) -> Result<Vec<u32>> {
    use burn::tensor::{Int, Tensor, TensorData};
    options.validate(prompt.len(), model.info().max_positions)?;
    let mut seq: Vec<u32> = Vec::with_capacity(prompt.len() + options.max_new_tokens);
    decode_loop(prompt.to_vec(), options, on_token, |feed| {
        seq.extend_from_slice(feed);
        let ids: Vec<i64> = seq.iter().map(|&i| i64::from(i)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq.len()]), model.device());
        let spec = ecco_core::CaptureSpec::none().with_logits(ecco_core::Logits::Last);
        let mut hooks = ecco_core::Hooks::new(spec);
        for (pattern, edit) in edits {
            hooks = hooks.with_intervention(*pattern, std::sync::Arc::clone(edit));
        }
        let out = model.forward_hooked(ecco_core::ModelInputs::new(model.embed(ids)), &mut hooks)?;
        let vocab = model.info().vocab_size;
        out.logits.map(|l| l.reshape([vocab])).ok_or(Error::InvalidSetting("the model has no LM head: it cannot generate"))
    })
}

/// Generates up to `options.max_new_tokens` ids from an encoder-decoder: the encoder reads
/// `input` once, the decoder starts from the config's `decoder_start_token_id` (not returned)
/// and reuses its keys and values; `on_token` is called after each generated id.
///
/// # Errors
/// Invalid settings, ids outside the vocabulary, or a tensor that cannot be read back.
pub fn generate_seq2seq(model: &crate::t5::T5, input: &[u32], options: &GenerateOptions, on_token: impl FnMut(usize)) -> Result<Vec<u32>> {
    options.validate_seq2seq(input.len(), model.config.max_positions)?;
    let vocab = model.config.vocab_size;
    if input.iter().any(|&id| id as usize >= vocab) {
        return Err(Error::InvalidSetting("a token id is outside the model's vocabulary"));
    }
    let encoder = model.encode(model.embed_ids(input), &mut ecco_core::Hooks::new(ecco_core::CaptureSpec::none())).hidden;
    let mut state = model.start_decoding(&encoder);
    decode_loop(vec![model.config.decoder_start_token_id], options, on_token, |feed| Ok(model.decode_step(feed, &mut state)))
}

/// The generation loop: `step(feed)` runs the tokens not yet seen and gives the last logits.
fn decode_loop(
    mut feed: Vec<u32>,
    options: &GenerateOptions,
    mut on_token: impl FnMut(usize),
    mut step: impl FnMut(&[u32]) -> Result<burn::tensor::Tensor<1>>,
) -> Result<Vec<u32>> {
    let mut rng = options.sampling.as_ref().map(|s| StdRng::seed_from_u64(s.seed));
    // `max_new_tokens` is checked against the model's positions, but a caller may pass any
    // number: reserve for what generation usually reaches, not for the request.
    let mut generated = Vec::with_capacity(options.max_new_tokens.min(1024));
    for n in 0..options.max_new_tokens {
        if let Some(cancel) = &options.cancel {
            cancel.check()?;
        }
        let logits = step(&feed)?;
        let logits: Vec<f32> = logits.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
        let id = match (&options.sampling, rng.as_mut()) {
            (Some(s), Some(rng)) => sample(&logits, s, rng),
            _ => argmax(&logits),
        };
        generated.push(id);
        on_token(n + 1);
        if options.eos_token_ids.contains(&id) {
            break;
        }
        feed = vec![id];
    }
    Ok(generated)
}

/// Index of the largest value; the first one on ties (as `torch.argmax`).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws one id from `softmax(logits / temperature)` after top-k and top-p filtering.
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut impl Rng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if let Some(k) = s.top_k {
        order.truncate(k.max(1));
    }
    let max = logits[order[0]] / s.temperature;
    let weights: Vec<f64> = order.iter().map(|&i| f64::from(logits[i] / s.temperature - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut keep = weights.len();
    if let Some(p) = s.top_p {
        // `TopPLogitsWarper`: keep the most likely tokens until their mass reaches p (at least one).
        let mut mass = 0.0;
        for (n, w) in weights.iter().enumerate() {
            mass += w / total;
            if mass >= f64::from(p) {
                keep = n + 1;
                break;
            }
        }
    }
    let kept_total: f64 = weights[..keep].iter().sum();
    let mut r = rng.random::<f64>() * kept_total;
    for (n, w) in weights[..keep].iter().enumerate() {
        r -= w;
        if r <= 0.0 {
            return order[n] as u32;
        }
    }
    order[keep - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_sampling_is_seeded() {
        let logits = [0.1, 2.0, 1.9, -5.0];
        let greedy = Sampling { seed: 1, temperature: 1.0, top_k: Some(1), top_p: None };
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..50).all(|_| sample(&logits, &greedy, &mut rng) == 1));
        // Probabilities are about 0.49, 0.44, 0.07, 0: top-p 0.4 keeps only the most likely token.
        let s = Sampling { seed: 1, temperature: 1.0, top_k: None, top_p: Some(0.4) };
        assert!((0..50).all(|_| sample(&logits, &s, &mut rng) == 1));
        let wide = Sampling { seed: 1, temperature: 1.0, top_k: Some(2), top_p: None };
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| sample(&logits, &wide, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert!(draw(3).iter().all(|&id| id == 1 || id == 2));
        assert!(draw(3).contains(&2) || draw(4).contains(&2));
    }

    #[test]
    fn settings_are_checked() {
        let mut o = GenerateOptions { max_new_tokens: 0, sampling: None, eos_token_ids: Vec::new(), cancel: None };
        assert!(matches!(o.validate(3, Some(10)), Err(Error::InvalidSetting(_))));
        o.max_new_tokens = 8;
        assert!(o.validate(3, Some(10)).is_ok());
        assert!(o.validate(4, Some(10)).is_err());
        assert!(matches!(o.validate(0, Some(10)), Err(Error::EmptyPrompt)));
        // Numbers near usize::MAX must not wrap around the check.
        o.max_new_tokens = usize::MAX;
        assert!(matches!(o.validate(3, Some(10)), Err(Error::TooManyNewTokens { room: 8, .. })));
        assert!(matches!(o.validate_seq2seq(3, 512), Err(Error::TooManyDecoderTokens { max: 512, .. })));
        assert!(matches!(o.validate(usize::MAX, Some(10)), Err(Error::Core(ecco_core::Error::SequenceTooLong { .. }))));
        o.max_new_tokens = 512;
        assert!(o.validate_seq2seq(512, 512).is_ok());
        assert!(o.validate_seq2seq(513, 512).is_err());
    }
}
