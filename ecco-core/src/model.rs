//! The backend-agnostic model trait every architecture implements.

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::capture::{CaptureSpec, StackCaptures};
use crate::error::Result;
use crate::hooks::{HookPoint, Stack};
use crate::recorder::{HookTensor, Hooks};

/// How a model reads and produces tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// A causal (left-to-right) language model such as GPT-2.
    #[serde(rename = "causal")]
    Causal,
    /// A masked language model or bare encoder such as BERT.
    #[serde(rename = "mlm")]
    Masked,
    /// An encoder-decoder model such as T5.
    #[serde(rename = "enc-dec")]
    EncoderDecoder,
}

/// Static facts about a loaded model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// A human-readable name (the checkpoint's directory or Hub id).
    pub name: String,
    /// The architecture family: `gpt2`, `bert`, `t5`, ...
    pub family: String,
    /// How the model reads and produces tokens.
    pub kind: ModelKind,
    /// Number of transformer blocks (per stack).
    pub n_layers: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of attention heads per block.
    pub n_heads: usize,
    /// Number of FFN neurons per block (width of the activations).
    pub intermediate_size: usize,
    /// Number of vocabulary entries the LM head scores.
    pub vocab_size: usize,
    /// The longest sequence the position embeddings allow, if bounded.
    pub max_positions: Option<usize>,
}

/// The inputs of one forward pass, as embeddings so that attribution can differentiate them.
///
/// # Shapes
/// - `embeds`: `[batch, seq, hidden]`, token embeddings only (the model adds positions).
/// - `decoder_embeds`: `[batch, dec_seq, hidden]` for encoder-decoder models.
#[derive(Debug)]
pub struct ModelInputs {
    /// Token embeddings of the (encoder or only) stack's input.
    pub embeds: Tensor<3>,
    /// Token embeddings of the decoder's input, for encoder-decoder models.
    pub decoder_embeds: Option<Tensor<3>>,
}

impl ModelInputs {
    /// Inputs for a single-stack model.
    pub fn new(embeds: Tensor<3>) -> Self {
        Self { embeds, decoder_embeds: None }
    }
}

/// The outputs of one forward pass.
#[derive(Debug)]
pub struct ModelOutput {
    /// `[batch, seq, vocab]` LM-head logits (or only the last position's, or none, as
    /// [`CaptureSpec::logits`] asks); `None` for a bare encoder.
    pub logits: Option<Tensor<3>>,
    /// `[batch, seq, hidden]`: the (decoder) stack's output after the final norm, the input of
    /// the LM head. Attribution projects chosen positions of it itself.
    pub last_hidden: Tensor<3>,
    /// What the encoder stack recorded (masked LMs, encoder-decoders).
    pub encoder: Option<StackCaptures>,
    /// What the decoder stack recorded (causal LMs, encoder-decoders).
    pub decoder: Option<StackCaptures>,
    /// Cross-attention weights per decoder block, `[batch, heads, dec_seq, enc_seq]`.
    pub cross_attention: Vec<Tensor<4>>,
    /// The hook points [`CaptureSpec::hooks`] selects, batch first.
    pub hooks: BTreeMap<HookPoint, HookTensor>,
}

/// A transformer language model with capture hooks, on whichever device its weights live.
/// Models are shared between threads (attribution runs batches side by side).
///
/// Weights are plain (non-autodiff) tensors; inputs may live on an autodiff device, in which case
/// gradients flow to the inputs only and the weights are treated as constants.
pub trait LanguageModel: Sync {
    /// Static facts about the model.
    fn info(&self) -> &ModelInfo;

    /// The device the weights live on.
    fn device(&self) -> &Device;

    /// Token embeddings of `ids` (no positions), `[batch, seq]` to `[batch, seq, hidden]`.
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3>;

    /// One forward pass over whole sequences, recording what `capture` asks for.
    ///
    /// # Errors
    /// When the inputs do not fit the model (too long a sequence, a missing decoder input).
    fn forward(&self, inputs: ModelInputs, capture: &CaptureSpec) -> Result<ModelOutput> {
        self.forward_hooked(inputs, &mut Hooks::new(capture.clone()))
    }

    /// One forward pass emitting every hook point into `hooks` once, in order; `hooks` decides
    /// what is recorded and what is changed ([`Hooks::with_intervention`]). The output's
    /// captures are the recorder's ([`Hooks::finish`]).
    ///
    /// # Errors
    /// As [`LanguageModel::forward`], and a failing intervention.
    fn forward_hooked(&self, inputs: ModelInputs, hooks: &mut Hooks) -> Result<ModelOutput>;

    /// The model's stacks and their numbers of blocks, which decide its hook points
    /// ([`crate::hook_points`]): one [`Stack::Main`] unless the model says otherwise.
    fn hook_stacks(&self) -> Vec<(Stack, usize)> {
        vec![(Stack::Main, self.info().n_layers)]
    }

    /// The final layer norm (GPT-2 `ln_f`), for the logit lens. `[batch, seq, hidden]`.
    fn final_norm(&self, hidden: Tensor<3>) -> Tensor<3>;

    /// The LM head on hidden states, `[batch, seq, hidden]` to `[batch, seq, vocab]`;
    /// `None` for a bare encoder.
    fn lm_head(&self, hidden: Tensor<3>) -> Option<Tensor<3>>;

    /// A forward pass over plain (non-autodiff) input embeddings `[copies, seq, hidden]` that
    /// keeps what a hand-written backward pass needs, so that many gradients share one forward
    /// pass (see [`InputGradients`]); `None` when the model has no such pass, and callers fall
    /// back to autodiff.
    ///
    /// # Errors
    /// As [`LanguageModel::forward`].
    fn input_gradients(&self, embeds: Tensor<3>) -> Option<Result<Box<dyn InputGradients + '_>>> {
        let _ = embeds;
        None
    }
}

/// A model's forward pass kept for vector-Jacobian products with respect to its input
/// embeddings (a hand-written backward pass; see [`LanguageModel::input_gradients`]).
///
/// Attributing `n` generated (or masked) tokens takes `n` gradients of one sequence. With
/// autodiff each needs its own forward pass over its own input copy; here one forward pass
/// serves them all. In a causal model the causal mask lets each gradient stop at its own scored
/// position; a bidirectional one's backward passes cover the whole sequence. Backward passes
/// may run on several threads at once.
pub trait InputGradients: Send + Sync {
    /// The final hidden states (after the final norm), `[copies, seq, hidden]`.
    fn last_hidden(&self) -> Tensor<3>;

    /// Per row `i`, the gradient of `sum(cotangents[i] * last_hidden[copies[i], ..len])` with
    /// respect to the input embeddings of copy `copies[i]`: `[rows, len, hidden]` for
    /// `cotangents` `[rows, len, hidden]`, where `len <= seq`. Positions past `len` are not
    /// read: `len < seq` for causal models only (a bidirectional model's tape takes `len == seq`).
    ///
    /// # Errors
    /// A copy out of range, `copies` and the rows of different lengths, `len` past the sequence.
    fn backward(&self, copies: &[usize], cotangents: Tensor<3>) -> Result<Tensor<3>>;

    /// The gradient at hook points: for `cotangent` `[1, seq, hidden]` on the final hidden
    /// states of copy `copy`, the gradient of `sum(cotangent * last_hidden[copy])` with respect
    /// to each of `points` the pass reaches, `[1, …]` as the hook's value. `None` when the
    /// model's hand-written pass does not give them (callers fall back to autodiff).
    fn hook_backward(&self, copy: usize, cotangent: Tensor<3>, points: &[HookPoint]) -> Option<Result<Vec<(HookPoint, HookTensor)>>> {
        let _ = (copy, cotangent, points);
        None
    }

    /// The LM head's backward pass: the gradient with respect to the hidden states `h`
    /// `[rows, 1, hidden]` of `sum(dlogits * lm_head(h))`, for `dlogits` `[rows, 1, vocab]`.
    ///
    /// # Errors
    /// `dlogits` not as wide as the vocabulary.
    fn head_backward(&self, dlogits: Tensor<3>) -> Result<Tensor<3>>;

    /// [`InputGradients::head_backward`] at the hidden states `h` `[rows, 1, hidden]`, for heads
    /// that are not linear (BERT's MLM head: dense, nonlinearity, norm, decoder). A linear head
    /// does not read `h`.
    ///
    /// # Errors
    /// As [`InputGradients::head_backward`].
    fn head_backward_at(&self, h: Tensor<3>, dlogits: Tensor<3>) -> Result<Tensor<3>> {
        let _ = h;
        self.head_backward(dlogits)
    }
}

/// Keys and values of every block, kept between generation steps.
///
/// # Shapes
/// `layers[i] = (keys, values)`, each `[batch, heads, seq, head_dim]`.
#[derive(Debug, Default)]
pub struct KvCache {
    /// Per block, the keys and values seen so far.
    pub layers: Vec<(Tensor<4>, Tensor<4>)>,
}

impl KvCache {
    /// Number of positions already cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[2])
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A causal LM that can decode incrementally with a KV cache.
pub trait CausalLm: LanguageModel {
    /// Runs `ids` (the tokens not yet cached) through the model after the cached ones.
    ///
    /// Returns the logits of the last position, `[vocab]`, and the extended cache.
    ///
    /// # Errors
    /// When the sequence would exceed the model's positions.
    fn decode_step(&self, ids: &[u32], cache: KvCache) -> Result<(Tensor<1>, KvCache)> {
        self.decode_step_hooked(ids, cache, &mut Hooks::new(CaptureSpec::none()))
    }

    /// [`CausalLm::decode_step`] emitting every hook point of the step into `hooks` (the new
    /// positions only: position-wise interventions count from the first uncached token), so
    /// that interventions such as steering apply to generated tokens too. The step computes the
    /// last position's logits whatever `hooks`' capture asks.
    ///
    /// # Errors
    /// As [`CausalLm::decode_step`], and a failing intervention.
    fn decode_step_hooked(&self, ids: &[u32], cache: KvCache, hooks: &mut Hooks) -> Result<(Tensor<1>, KvCache)>;
}
