//! [`Lm::generate`] and [`Lm::forward`]: run the model, capture, attribute, and return an
//! [`Output`] (the trace bundle the command line writes).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use ecco_attrib::{AttributionOptions, Method, Sequence};
use ecco_core::{F32Tensor, GenerationSettings, ModelKind, Trace, TraceBundle};
use ecco_models::LoadedModel;

use crate::load::{Lm, resolve_token};
use crate::options::{ForwardOptions, GenerateOptions, Request};
use crate::output::Output;
use crate::progress;

impl Lm {
    /// Generates after `prompt` and records what `options` ask for: Ecco's `lm.generate`.
    ///
    /// ```
    /// use ecco::{GenerateOptions, Method};
    /// let lm = ecco::demo()?;
    /// let options = GenerateOptions { max_new_tokens: 1, attribution: vec![Method::GradXInput], ..Default::default() };
    /// let output = lm.generate("The capital of France is", &options)?;
    /// assert_eq!(output.generated_tokens(), ["ĠParis"]);
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// On an encoder-decoder (T5, FLAN-T5) the encoder reads the prompt (with its `</s>`) and
    /// the decoder generates from its start token: the output's tokens are the encoder's then
    /// the decoder's (start token included), [`Output::output_text`] the generated text, and
    /// the captures hold both stacks (`…encoder`, `…decoder`, `attention.cross`).
    ///
    /// # Errors
    /// A masked LM, an empty or too long prompt, invalid options (`max_new_tokens` of 0,
    /// unknown layers, a foil that is not one token), attribution failures (occlusion and
    /// attention rollout are not available for encoder-decoders).
    pub fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<Output> {
        let request = options.request()?;
        let loaded = self.loaded();
        if let Some(model) = loaded.model.as_seq2seq() {
            if !request.interventions.is_empty() {
                bail!("--ablate and --steer on `generate` are for causal LMs; on {} use `ecco forward` with --decoder-text", loaded.name);
            }
            return self.generate_seq2seq(model, prompt, options, &request);
        }
        // The decoders' tokenizers add BOS when their checkpoint asks for it (GPT-2's add nothing).
        let bos = matches!(loaded.model, ecco_models::Model::Decoder(_));
        let prompt_ids = loaded.tokenizer.encode(prompt, bos)?.ids;
        let causal = loaded.model.as_causal().with_context(|| {
            let family = &self.info().family;
            format!(
                "{} is a masked LM ({family}): it cannot generate; use `ecco forward` (`Lm::forward`) with a mask token in the text",
                loaded.name
            )
        })?;
        let gen_options = ecco_models::GenerateOptions {
            max_new_tokens: options.max_new_tokens,
            sampling: options.sampling.clone(),
            eos_token_ids: loaded.model.eos_token_ids(),
            cancel: request.cancel(),
        };
        gen_options.validate(prompt_ids.len(), causal.info().max_positions)?;
        request.capture.layers.resolve(self.info().n_layers)?;
        check_hooks(loaded, &request)?;
        self.check_interventions(&request)?;
        let attribution = attribution_options(loaded, &request)?;

        let bar = progress::bar(options.progress, request.control, options.max_new_tokens as u64, "generating");
        let edits = request.interventions.edits();
        let generated = if edits.is_empty() {
            ecco_models::generate(causal, &prompt_ids, &gen_options, |n| bar.set_position(n as u64))
        } else {
            ecco_models::generate_with_edits(loaded.model.as_lm(), &prompt_ids, &gen_options, &edits, |n| bar.set_position(n as u64))
        };
        bar.finish_and_clear();
        let mut ids = prompt_ids.clone();
        ids.extend(generated?);

        // The captures come from one final pass over every token but the last generated one.
        let (tensors, activation_layers) = run_captures(loaded, &ids[..ids.len() - 1], &request)?;
        let mut trace = new_trace(loaded, &ids, prompt_ids.len())?;
        for &method in request.attribution {
            let values = attribute(loaded, &ids, prompt_ids.len(), method, &attribution, &request)?;
            trace.attributions.insert(method.name().to_owned(), values);
        }
        trace.generation = Some(generation_settings(options));
        finish(self, trace, tensors, activation_layers, &request)
    }

    /// [`Lm::generate`] on an encoder-decoder (T5): the encoder reads the prompt with its
    /// `</s>` (as `tokenizer(prompt)` gives it) once, the decoder generates from its start
    /// token. The trace's tokens are the encoder's followed by the decoder's (start token
    /// included), `n_input_tokens` the encoder's; its `output_text` is the generated text
    /// (special tokens skipped); the captures come from one pass with the decoder reading every
    /// token but the last generated one.
    fn generate_seq2seq(
        &self,
        model: &ecco_models::t5::T5,
        prompt: &str,
        options: &GenerateOptions,
        request: &Request<'_>,
    ) -> Result<Output> {
        let loaded = self.loaded();
        if let Some(m) = request.attribution.iter().find(|m| matches!(m, Method::Occlusion | Method::AttentionRollout)) {
            bail!(
                "{} is not available for encoder-decoder models such as {} (use grad_x_input, gradient or integrated_gradients)",
                m.name(),
                loaded.name
            );
        }
        check_not_empty(loaded, prompt)?;
        let input_ids = loaded.tokenizer.encode(prompt, true)?.ids;
        let gen_options = ecco_models::GenerateOptions {
            max_new_tokens: options.max_new_tokens,
            sampling: options.sampling.clone(),
            eos_token_ids: loaded.model.eos_token_ids(),
            cancel: request.cancel(),
        };
        gen_options.validate_seq2seq(input_ids.len(), model.config.max_positions)?;
        request.capture.layers.resolve(seq2seq_layers(model))?;
        check_hooks(loaded, request)?;
        let attribution = attribution_options(loaded, request)?;

        let bar = progress::bar(options.progress, request.control, options.max_new_tokens as u64, "generating");
        let generated = ecco_models::generate_seq2seq(model, &input_ids, &gen_options, |n| bar.set_position(n as u64));
        bar.finish_and_clear();
        let generated = generated?;
        let mut decoder_ids = vec![model.config.decoder_start_token_id];
        decoder_ids.extend(&generated);

        let (tensors, activation_layers) = run_captures_seq2seq(loaded, &input_ids, &decoder_ids[..decoder_ids.len() - 1], request)?;
        let mut ids = input_ids.clone();
        ids.extend(&decoder_ids);
        let mut trace = new_trace(loaded, &ids, input_ids.len())?;
        trace.output_text = loaded.tokenizer.decode_skip_special(&generated)?;
        let seq = ecco_attrib::Seq2SeqSequence { encoder_ids: &input_ids, decoder_ids: &decoder_ids };
        for &method in request.attribution {
            let bar = progress::bar(
                request.progress,
                request.control,
                ecco_attrib::work_seq2seq(method, seq, &attribution) as u64,
                method.name(),
            );
            let values = ecco_attrib::attribute_seq2seq(loaded.model.as_lm(), seq, method, &attribution, &mut |n| bar.inc(n as u64));
            bar.finish_and_clear();
            let values = values.with_context(|| format!("{} attribution failed", method.name()))?;
            trace.attributions.insert(method.name().to_owned(), values);
        }
        trace.generation = Some(generation_settings(options));
        finish(self, trace, tensors, activation_layers, request)
    }

    /// One forward pass over `text` (Ecco's `lm(inputs)`); on a masked LM (text with mask
    /// tokens such as `[MASK]`), the predictions at each mask and, with `attribution`, which
    /// input tokens drove the top prediction. On an encoder-decoder (T5) the encoder reads
    /// `text` (with its `</s>`) and the decoder its start token and
    /// [`ForwardOptions::decoder_text`].
    ///
    /// ```
    /// let lm = ecco::demo()?;
    /// let output = lm.forward("The capital of France is", &ecco::ForwardOptions::default())?;
    /// assert_eq!(output.tokens().len(), 5);
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// # Errors
    /// An empty or too long text, attribution on a causal LM, an encoder-decoder or without a
    /// mask token, `decoder_text` on a model that is not an encoder-decoder, invalid options.
    pub fn forward(&self, text: &str, options: &ForwardOptions) -> Result<Output> {
        let request = options.request()?;
        let loaded = self.loaded();
        let masked = self.info().kind == ModelKind::Masked;
        let seq2seq = loaded.model.as_seq2seq();
        if !masked && !request.attribution.is_empty() {
            bail!(
                "attribution on `forward` is for masked LMs; for a causal LM or an encoder-decoder use `ecco generate --attribution` (`Lm::generate`)"
            );
        }
        check_not_empty(loaded, text)?;
        // Masked LMs read their special tokens (`[CLS] … [SEP]`), and T5 its `</s>`, as
        // `tokenizer(text)` gives them.
        let ids = loaded.tokenizer.encode(text, masked || seq2seq.is_some())?.ids;
        if ids.is_empty() {
            return Err(ecco_models::Error::EmptyPrompt.into());
        }
        if let Some(max) = self.info().max_positions
            && ids.len() > max
        {
            return Err(ecco_core::Error::SequenceTooLong { len: ids.len(), max }.into());
        }
        if seq2seq.is_none() && options.decoder_text.is_some() {
            bail!("--decoder-text (`decoder_text`) is for encoder-decoder models (T5); {} is not one", loaded.name);
        }
        if let Some(model) = seq2seq {
            // The encoder reads the text, the decoder its start token (the first step of
            // generation) and `decoder_text`; the trace's tokens are both, `n_input_tokens` the
            // encoder's, `output_text` the decoder's text after its start token (as for
            // `generate`: special tokens skipped; empty without `decoder_text`).
            request.capture.layers.resolve(seq2seq_layers(model))?;
            check_hooks(loaded, &request)?;
            self.check_interventions(&request)?;
            let mut decoder_ids = vec![model.config.decoder_start_token_id];
            if let Some(decoder_text) = &options.decoder_text {
                decoder_ids.extend(loaded.tokenizer.encode(decoder_text, false)?.ids);
            }
            if decoder_ids.len() > model.config.max_positions {
                let (len, max) = (decoder_ids.len(), model.config.max_positions);
                bail!("the decoder's input (its start token and --decoder-text) has {len} tokens but the model takes at most {max}");
            }
            let (tensors, activation_layers) = run_captures_seq2seq(loaded, &ids, &decoder_ids, &request)?;
            let mut all = ids.clone();
            all.extend(&decoder_ids);
            let mut trace = new_trace(loaded, &all, ids.len())?;
            trace.output_text = loaded.tokenizer.decode_skip_special(&decoder_ids[1..])?;
            return finish(self, trace, tensors, activation_layers, &request);
        }
        request.capture.layers.resolve(self.info().n_layers)?;
        check_hooks(loaded, &request)?;
        self.check_interventions(&request)?;
        if masked && !request.interventions.is_empty() && loaded.tokenizer.mask_token_id().is_some_and(|m| ids.contains(&m)) {
            bail!(
                "--ablate and --steer on a masked LM's `forward` change the captures only: take the mask token out of the text, or use `ecco patch`"
            );
        }
        let attribution = attribution_options(loaded, &request)?;
        let (tensors, activation_layers) = run_captures(loaded, &ids, &request)?;
        let mut trace = new_trace(loaded, &ids, ids.len())?;
        if masked {
            let masked_request = crate::masked::MaskedRequest {
                methods: request.attribution,
                options: attribution,
                top_k: options.mask_topk,
                progress: request.progress,
                control: request.control,
            };
            crate::masked::fill(loaded, &ids, &masked_request, &mut trace)?;
        }
        finish(self, trace, tensors, activation_layers, &request)
    }
}

/// Refuses a text that gives no tokens of its own: the special tokens a masked LM or T5 adds
/// (`[CLS] [SEP]`, `</s>`) are not a prompt.
fn check_not_empty(loaded: &LoadedModel, text: &str) -> Result<()> {
    if loaded.tokenizer.encode(text, false)?.ids.is_empty() {
        return Err(ecco_models::Error::EmptyPrompt.into());
    }
    Ok(())
}

impl Output {
    /// This output with the attributions of `methods` it lacks, computed as [`Lm::generate`]
    /// with `attribution: methods` would have: what Ecco's `output.saliency()` after a
    /// `generate` without attribution needs. `options` gives the attribution settings,
    /// progress and control; its other fields are not read.
    ///
    /// ```
    /// use ecco::{GenerateOptions, Method};
    /// let lm = ecco::demo()?;
    /// let plain = lm.generate("The capital of France is", &GenerateOptions { max_new_tokens: 1, ..Default::default() })?;
    /// let options = GenerateOptions { attribution: vec![Method::GradXInput], ..Default::default() };
    /// let later = plain.with_attributions(&[Method::GradXInput], &options)?;
    /// assert_eq!(later.primary_attributions(Method::GradXInput)?, lm.generate("The capital of France is", &GenerateOptions { max_new_tokens: 1, ..options })?.primary_attributions(Method::GradXInput)?);
    /// # Ok::<(), ecco::Error>(())
    /// ```
    ///
    /// # Errors
    /// No model attached, an output that is not a causal LM's, attribution errors.
    pub fn with_attributions(&self, methods: &[Method], options: &GenerateOptions) -> Result<Output> {
        let Some(model) = self.model() else {
            bail!("attribution needs the model that made the trace: attach it with `Output::with_model`");
        };
        let trace = self.trace();
        if trace.model.model_type != ModelKind::Causal {
            bail!("attributing an existing output is for causal LMs: ask `generate` or `forward` for the attribution");
        }
        ecco_attrib::check_compatible(model.model.as_lm(), &trace.model)?;
        let request = options.request()?;
        let attribution = attribution_options(&model, &request)?;
        let mut bundle = self.bundle().clone();
        for &method in methods {
            if !bundle.trace.attributions.contains_key(method.name()) {
                let values = attribute(&model, &trace.token_ids, trace.n_input_tokens, method, &attribution, &request)?;
                bundle.trace.attributions.insert(method.name().to_owned(), values);
            }
        }
        Ok(Output::new(bundle, Some(model)))
    }
}

impl Lm {
    /// Refuses interventions that do not fit the model, and attribution of an intervened run
    /// (attribution differentiates the unchanged model).
    fn check_interventions(&self, request: &Request<'_>) -> Result<()> {
        if request.interventions.is_empty() {
            return Ok(());
        }
        if !request.attribution.is_empty() {
            bail!("attribution runs on the unchanged model: drop --attribution or the --ablate/--steer interventions");
        }
        request.interventions.check(self)
    }
}

/// The attribution settings, with the foil token resolved.
fn attribution_options(loaded: &LoadedModel, request: &Request<'_>) -> Result<AttributionOptions> {
    ecco_attrib::check_ig_steps(request.ig_steps)?;
    let vocab = loaded.model.as_lm().info().vocab_size;
    let contrast_with = match request.contrast_with {
        Some(token) => Some(resolve_token(&loaded.tokenizer, token, vocab)?),
        None => None,
    };
    Ok(AttributionOptions {
        target: request.target,
        contrast_with,
        ig_steps: request.ig_steps,
        cancel: request.cancel(),
        ..AttributionOptions::default()
    })
}

/// Refuses hook patterns that select nothing in the model, before any work.
fn check_hooks(loaded: &LoadedModel, request: &Request<'_>) -> Result<()> {
    let stacks = loaded.model.as_lm().hook_stacks();
    for pattern in &request.capture.hooks {
        pattern.resolve(&stacks)?;
    }
    Ok(())
}

/// One capture pass over `ids`: the tensors and the activation layers they hold.
fn run_captures(loaded: &LoadedModel, ids: &[u32], request: &Request<'_>) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    capture_with(loaded, ids, None, request)
}

/// An encoder-decoder's capture pass: the encoder reads `encoder_ids`, the decoder
/// `decoder_ids`; both stacks' tensors and cross attention.
fn run_captures_seq2seq(
    loaded: &LoadedModel,
    encoder_ids: &[u32],
    decoder_ids: &[u32],
    request: &Request<'_>,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    capture_with(loaded, encoder_ids, Some(decoder_ids), request)
}

/// The capture pass (`decoder_ids` for an encoder-decoder), behind a spinner.
fn capture_with(
    loaded: &LoadedModel,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    request: &Request<'_>,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    let capture = &request.capture;
    if !capture.records_anything() || ids.is_empty() {
        return Ok((BTreeMap::new(), Vec::new()));
    }
    let spinner = progress::spinner(request.progress, "capturing");
    let result = ecco_models::capture_pass_with_edits(loaded.model.as_lm(), ids, decoder_ids, capture, &request.interventions.edits());
    spinner.finish_and_clear();
    Ok(result?)
}

/// The layers an encoder-decoder's `layers` selection may name: those both stacks hold.
fn seq2seq_layers(model: &ecco_models::t5::T5) -> usize {
    model.config.num_layers.min(model.config.num_decoder_layers)
}

/// The generation settings recorded in the trace.
fn generation_settings(options: &GenerateOptions) -> GenerationSettings {
    GenerationSettings {
        max_new_tokens: options.max_new_tokens,
        sample: options.sampling.is_some(),
        seed: options.sampling.as_ref().map(|s| s.seed),
        temperature: options.sampling.as_ref().map(|s| s.temperature),
        top_k: options.sampling.as_ref().and_then(|s| s.top_k),
        top_p: options.sampling.as_ref().and_then(|s| s.top_p),
    }
}

/// One attribution method over every generated token, with a progress bar.
fn attribute(
    loaded: &LoadedModel,
    ids: &[u32],
    n_input: usize,
    method: Method,
    options: &AttributionOptions,
    request: &Request<'_>,
) -> Result<Vec<Vec<f32>>> {
    let seq = Sequence { ids, n_input };
    let bar = progress::bar(request.progress, request.control, ecco_attrib::work(method, seq, options) as u64, method.name());
    let values = ecco_attrib::attribute(loaded.model.as_lm(), seq, method, options, &mut |n| bar.inc(n as u64));
    bar.finish_and_clear();
    values.with_context(|| format!("{} attribution failed", method.name()))
}

/// The trace of `ids` (the first `n_input` are the prompt).
fn new_trace(loaded: &LoadedModel, ids: &[u32], n_input: usize) -> Result<Trace> {
    let tokens = ids.iter().map(|&id| loaded.tokenizer.token(id)).collect();
    let mut trace = Trace::new(loaded.model.as_lm().info(), loaded.device_kind.name(), tokens, ids.to_vec(), n_input);
    trace.model.name.clone_from(&loaded.name);
    trace.output_text = loaded.tokenizer.decode(ids)?;
    Ok(trace)
}

/// The output, refusing non-finite captures.
fn finish(
    lm: &Lm,
    mut trace: Trace,
    tensors: BTreeMap<String, F32Tensor>,
    activation_layers: Vec<usize>,
    request: &Request<'_>,
) -> Result<Output> {
    if request.layers_chosen {
        trace.activation_layers = Some(activation_layers);
    }
    trace.interventions = request.interventions.records();
    if tensors.values().any(|t| t.data.iter().any(|v| !v.is_finite())) {
        bail!("the model produced NaN or infinite values; the checkpoint's weights may be corrupt");
    }
    Ok(Output::new(TraceBundle { trace, tensors }, Some(lm.shared())))
}
