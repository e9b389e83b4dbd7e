//! `ecco generate` and `ecco forward`: run the model and write a trace bundle.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_core::{CaptureSpec, F32Tensor, GenerationSettings, Trace, TraceBundle, check_output_dir};
use ecco_attrib::{AttributionOptions, AttributionTarget, Method, Sequence, parse_methods};
use ecco_models::{GenerateOptions, LoadedModel, Sampling, Tokenizer, capture_pass, capture_pass_seq2seq};

use crate::args::{CaptureArgs, ModelArgs};
use crate::progress;

/// Arguments of `ecco generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to continue (an encoder-decoder such as T5: the encoder's input, `</s>` added).
    #[arg(long)]
    prompt: String,
    /// How many tokens to generate.
    #[arg(long, value_name = "N")]
    max_new_tokens: usize,
    /// Sample instead of greedy decoding.
    #[arg(long)]
    sample: bool,
    /// Sampling seed.
    #[arg(long, default_value_t = 0, requires = "sample")]
    seed: u64,
    /// Sampling temperature.
    #[arg(long, requires = "sample")]
    temperature: Option<f32>,
    /// Sample among the K most likely tokens.
    #[arg(long, value_name = "K", requires = "sample")]
    top_k: Option<usize>,
    /// Sample among the most likely tokens holding probability P.
    #[arg(long, value_name = "P", requires = "sample")]
    top_p: Option<f32>,
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    attribution: AttributionArgs,
    /// Directory to write the trace bundle to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Attribution flags of `ecco generate`.
#[derive(Debug, Args)]
pub struct AttributionArgs {
    /// Attribution methods, comma separated: grad_x_input, gradient (saliency),
    /// integrated_gradients (ig), occlusion, attention_rollout (rollout; reads attention only,
    /// so the target and contrast flags do not apply to it).
    #[arg(long, value_name = "LIST")]
    attribution: Option<String>,
    /// What to differentiate: the target token's `prob` (Ecco) or its `logit`.
    #[arg(long, default_value = "prob", value_name = "prob|logit")]
    attribution_target: AttributionTarget,
    /// Contrastive attribution: score the target minus this foil token (a single-token text
    /// such as " dog", a raw token such as "Ġdog", or an id).
    #[arg(long, value_name = "TOKEN")]
    contrast_with: Option<String>,
    /// Integrated gradients' number of steps (captum's default: 50).
    #[arg(long, default_value_t = 50, value_name = "N")]
    ig_steps: usize,
}
/// Arguments of `ecco forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to run through the model (masked LMs: with mask tokens such as `[MASK]` or
    /// `<mask>`; special tokens such as `[CLS]` are added; T5: the encoder's input, `</s>`
    /// added, the decoder reading its start token and `--decoder-text`).
    #[arg(long)]
    text: String,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Masked LMs: attribute the top prediction at each mask token (same methods and flags as
    /// `generate`, but not attention_rollout).
    #[command(flatten)]
    attribution: AttributionArgs,
    /// Encoder-decoders (T5): the decoder's input after its start token (default: the start
    /// token alone, the first step of generation). Tokenised without special tokens.
    #[arg(long, value_name = "TEXT")]
    decoder_text: Option<String>,
    /// Masked LMs: how many predictions per mask token go into `masked_predictions`.
    #[arg(long, default_value_t = 10, value_name = "K")]
    mask_topk: usize,
    /// Directory to write the trace bundle to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `ecco generate`.
pub fn generate(args: &GenerateArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    let layers = args.capture.layer_selection()?;
    let methods = match &args.attribution.attribution {
        Some(list) => parse_methods(list)?,
        None => Vec::new(),
    };
    if args.attribution.ig_steps == 0 {
        bail!("--ig-steps must be at least 1");
    }
    let sampling = args.sample.then(|| Sampling {
        seed: args.seed,
        temperature: args.temperature.unwrap_or(1.0),
        top_k: args.top_k,
        top_p: args.top_p,
    });
    let loaded = args.model.load()?;
    if let Some(model) = loaded.model.as_seq2seq() {
        return generate_seq2seq(args, &loaded, model, &layers, &methods, sampling);
    }
    let prompt = loaded.tokenizer.encode(&args.prompt, false)?;
    let causal = loaded.model.as_causal().with_context(|| {
        let family = &loaded.model.as_lm().info().family;
        format!("{} is a masked LM ({family}): it cannot generate; use `ecco forward` (with a mask token in --text)", loaded.name)
    })?;
    let options = GenerateOptions { max_new_tokens: args.max_new_tokens, sampling, eos_token_id: loaded.model.eos_token_id() };
    options.validate(prompt.ids.len(), causal.info().max_positions)?;
    let n_layers = causal.info().n_layers;
    layers.resolve(n_layers)?;
    let contrast_with = match &args.attribution.contrast_with {
        Some(token) => Some(resolve_token(&loaded.tokenizer, token, causal.info().vocab_size)?),
        None => None,
    };

    let bar = progress::bar(args.max_new_tokens as u64, "generating");
    let generated = ecco_models::generate(causal, &prompt.ids, &options, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();

    let mut ids = prompt.ids.clone();
    ids.extend(&generated);
    let capture = args.capture.spec(layers);
    // The captures come from one final pass over every token but the last generated one.
    let (tensors, activation_layers) = run_captures(&loaded, &ids[..ids.len() - 1], &capture)?;
    let mut trace = new_trace(&loaded, &ids, prompt.ids.len())?;
    let attribution = AttributionOptions {
        target: args.attribution.attribution_target,
        contrast_with,
        ig_steps: args.attribution.ig_steps,
        ..AttributionOptions::default()
    };
    for method in methods {
        let values = attribute(&loaded, &ids, prompt.ids.len(), method, &attribution)?;
        trace.attributions.insert(method.name().to_owned(), values);
    }
    trace.generation = Some(GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        sample: args.sample,
        seed: args.sample.then_some(args.seed),
        temperature: options.sampling.as_ref().map(|s| s.temperature),
        top_k: args.top_k,
        top_p: args.top_p,
    });
    write(trace, tensors, activation_layers, &args.capture, &args.out)
}

/// `ecco generate` on an encoder-decoder (T5): the encoder reads the prompt with its `</s>` (as
/// `tokenizer(prompt)` gives it) once, the decoder generates from its start token. The trace's
/// tokens are the encoder's followed by the decoder's (start token included); its `output_text` is
/// the generated text (special tokens skipped); captures come from one pass with the decoder
/// reading every token but the last generated one.
fn generate_seq2seq(
    args: &GenerateArgs,
    loaded: &LoadedModel,
    model: &ecco_models::t5::T5,
    layers: &ecco_core::LayerSelection,
    methods: &[Method],
    sampling: Option<Sampling>,
) -> Result<()> {
    if let Some(m) = methods.iter().find(|m| matches!(m, Method::Occlusion | Method::AttentionRollout)) {
        bail!("{} is not available for encoder-decoder models such as {} (use grad_x_input, gradient or integrated_gradients)", m.name(), loaded.name);
    }
    let input = loaded.tokenizer.encode(&args.prompt, true)?;
    let options = GenerateOptions { max_new_tokens: args.max_new_tokens, sampling, eos_token_id: loaded.model.eos_token_id() };
    options.validate(input.ids.len(), None)?;
    layers.resolve(model.config.num_layers.min(model.config.num_decoder_layers))?;
    let lm = loaded.model.as_lm();
    let contrast_with = match &args.attribution.contrast_with {
        Some(token) => Some(resolve_token(&loaded.tokenizer, token, lm.info().vocab_size)?),
        None => None,
    };
    let bar = progress::bar(args.max_new_tokens as u64, "generating");
    let generated = ecco_models::generate_seq2seq(model, &input.ids, &options, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();

    let mut decoder_ids = vec![model.config.decoder_start_token_id];
    decoder_ids.extend(&generated);
    let capture = args.capture.spec(layers.clone());
    let (tensors, activation_layers) =
        run_captures_with(loaded, &input.ids, Some(&decoder_ids[..decoder_ids.len() - 1]), &capture)?;
    let mut ids = input.ids.clone();
    ids.extend(&decoder_ids);
    let mut trace = new_trace(loaded, &ids, input.ids.len())?;
    trace.output_text = loaded.tokenizer.decode_skip_special(&generated)?;
    let attribution = AttributionOptions {
        target: args.attribution.attribution_target,
        contrast_with,
        ig_steps: args.attribution.ig_steps,
        ..AttributionOptions::default()
    };
    let seq = ecco_attrib::Seq2SeqSequence { encoder_ids: &input.ids, decoder_ids: &decoder_ids };
    for &method in methods {
        let bar = progress::bar(ecco_attrib::work_seq2seq(method, seq, &attribution) as u64, method.name());
        let values = ecco_attrib::attribute_seq2seq(lm, seq, method, &attribution, &mut |n| bar.inc(n as u64));
        bar.finish_and_clear();
        let values = values.with_context(|| format!("{} attribution failed", method.name()))?;
        trace.attributions.insert(method.name().to_owned(), values);
    }
    trace.generation = Some(GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        sample: args.sample,
        seed: args.sample.then_some(args.seed),
        temperature: options.sampling.as_ref().map(|s| s.temperature),
        top_k: args.top_k,
        top_p: args.top_p,
    });
    write(trace, tensors, activation_layers, &args.capture, &args.out)
}

/// `ecco forward`.
pub fn forward(args: &ForwardArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    let layers = args.capture.layer_selection()?;
    let methods = match &args.attribution.attribution {
        Some(list) => parse_methods(list)?,
        None => Vec::new(),
    };
    if args.attribution.ig_steps == 0 {
        bail!("--ig-steps must be at least 1");
    }
    let loaded = args.model.load()?;
    let masked = loaded.model.as_lm().info().kind == ecco_core::ModelKind::Masked;
    let seq2seq = loaded.model.as_seq2seq();
    if !masked && !methods.is_empty() {
        bail!("--attribution on `forward` is for masked LMs; for a causal LM or an encoder-decoder use `ecco generate --attribution`");
    }
    // Masked LMs read their special tokens (`[CLS] … [SEP]`), and T5 its `</s>`, as
    // `tokenizer(text)` gives them.
    let encoding = loaded.tokenizer.encode(&args.text, masked || seq2seq.is_some())?;
    if encoding.ids.is_empty() {
        return Err(ecco_models::Error::EmptyPrompt.into());
    }
    let info = loaded.model.as_lm().info();
    if let Some(max) = info.max_positions
        && encoding.ids.len() > max
    {
        return Err(ecco_core::Error::SequenceTooLong { len: encoding.ids.len(), max }.into());
    }
    if seq2seq.is_none() && args.decoder_text.is_some() {
        bail!("--decoder-text is for encoder-decoder models (T5); {} is not one", loaded.name);
    }
    if let Some(model) = seq2seq {
        // An encoder-decoder: the encoder reads the text, the decoder its start token (the first
        // step of generation) and `--decoder-text`; the trace's tokens are both, `n_input_tokens`
        // the encoder's, `output_text` the decoder's text after its start token (as for
        // `generate`: special tokens skipped; empty without `--decoder-text`).
        layers.resolve(model.config.num_layers.min(model.config.num_decoder_layers))?;
        let capture = args.capture.spec(layers);
        let mut decoder_ids = vec![model.config.decoder_start_token_id];
        if let Some(text) = &args.decoder_text {
            decoder_ids.extend(loaded.tokenizer.encode(text, false)?.ids);
        }
        let (tensors, activation_layers) = run_captures_with(&loaded, &encoding.ids, Some(&decoder_ids), &capture)?;
        let mut ids = encoding.ids.clone();
        ids.extend(&decoder_ids);
        let mut trace = new_trace(&loaded, &ids, encoding.ids.len())?;
        trace.output_text = loaded.tokenizer.decode_skip_special(&decoder_ids[1..])?;
        return write(trace, tensors, activation_layers, &args.capture, &args.out);
    }
    layers.resolve(info.n_layers)?;
    let capture = args.capture.spec(layers);
    let (tensors, activation_layers) = run_captures(&loaded, &encoding.ids, &capture)?;
    let mut trace = new_trace(&loaded, &encoding.ids, encoding.ids.len())?;
    if masked {
        let request = crate::masked_cmd::MaskedRequest {
            methods: &methods,
            options: attribution_options(&loaded, &args.attribution)?,
            top_k: args.mask_topk,
        };
        crate::masked_cmd::fill(&loaded, &encoding.ids, &request, &mut trace)?;
    }
    write(trace, tensors, activation_layers, &args.capture, &args.out)
}

fn attribution_options(loaded: &LoadedModel, args: &AttributionArgs) -> Result<AttributionOptions> {
    let vocab = loaded.model.as_lm().info().vocab_size;
    let contrast_with = match &args.contrast_with {
        Some(token) => Some(resolve_token(&loaded.tokenizer, token, vocab)?),
        None => None,
    };
    Ok(AttributionOptions { target: args.attribution_target, contrast_with, ig_steps: args.ig_steps, ..AttributionOptions::default() })
}

fn run_captures(
    loaded: &LoadedModel,
    ids: &[u32],
    capture: &CaptureSpec,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    run_captures_with(loaded, ids, None, capture)
}

/// The capture pass; `decoder_ids` for an encoder-decoder.
fn run_captures_with(
    loaded: &LoadedModel,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    capture: &CaptureSpec,
) -> Result<(BTreeMap<String, F32Tensor>, Vec<usize>)> {
    if !(capture.hidden_states || capture.activations || capture.attention) || ids.is_empty() {
        return Ok((BTreeMap::new(), Vec::new()));
    }
    let spinner = progress::spinner("capturing");
    let result = match decoder_ids {
        Some(dec) => capture_pass_seq2seq(loaded.model.as_lm(), ids, dec, capture),
        None => capture_pass(loaded.model.as_lm(), ids, capture),
    };
    spinner.finish_and_clear();
    Ok(result?)
}

fn attribute(
    loaded: &LoadedModel,
    ids: &[u32],
    n_input: usize,
    method: Method,
    options: &AttributionOptions,
) -> Result<Vec<Vec<f32>>> {
    let seq = Sequence { ids, n_input };
    let bar = progress::bar(ecco_attrib::work(method, seq, options) as u64, method.name());
    let values = ecco_attrib::attribute(loaded.model.as_lm(), seq, method, options, &mut |n| bar.inc(n as u64));
    bar.finish_and_clear();
    values.with_context(|| format!("{} attribution failed", method.name()))
}

/// A token given as an id, a raw token (`Ġdog`) or a text that tokenises to one token (` dog`).
pub fn resolve_token(tokenizer: &Tokenizer, token: &str, vocab: usize) -> Result<u32> {
    if let Ok(id) = token.parse::<u32>() {
        if (id as usize) < vocab {
            return Ok(id);
        }
        bail!("token id {id} is outside the vocabulary (size {vocab})");
    }
    if let Some(id) = tokenizer.token_to_id(token) {
        return Ok(id);
    }
    let enc = tokenizer.encode(token, false)?;
    match enc.ids.as_slice() {
        [id] => Ok(*id),
        _ => bail!("`{token}` is not a single token (it tokenises to {:?})", enc.tokens),
    }
}

fn new_trace(loaded: &LoadedModel, ids: &[u32], n_input: usize) -> Result<Trace> {
    let tokens = ids.iter().map(|&id| loaded.tokenizer.token(id)).collect();
    let mut trace = Trace::new(loaded.model.as_lm().info(), loaded.device_kind.name(), tokens, ids.to_vec(), n_input);
    trace.model.name.clone_from(&loaded.name);
    trace.output_text = loaded.tokenizer.decode(ids)?;
    Ok(trace)
}

fn write(
    mut trace: Trace,
    tensors: BTreeMap<String, F32Tensor>,
    activation_layers: Vec<usize>,
    capture: &CaptureArgs,
    out: &std::path::Path,
) -> Result<()> {
    if capture.layers.is_some() {
        trace.activation_layers = Some(activation_layers);
    }
    if tensors.values().any(|t| t.data.iter().any(|v| !v.is_finite())) {
        bail!("the model produced NaN or infinite values; the checkpoint's weights may be corrupt");
    }
    TraceBundle { trace, tensors }.write(out).with_context(|| format!("cannot write {}", out.display()))
}
