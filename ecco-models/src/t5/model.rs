//! The T5 model: shared embeddings, the encoder and decoder stacks, the LM head; incremental
//! decoding for generation; the core trait.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ecco_core::{CaptureSpec, HookPoint, Hooks, LanguageModel, Logits, ModelInfo, ModelInputs, ModelKind, ModelOutput};

use crate::nn::{RmsNorm, causal_mask};
use crate::t5::attention::position_bias;
use crate::t5::block::{Block, BlockInputs};
use crate::t5::config::T5Config;

/// One stack (`encoder` or `decoder`).
#[derive(Clone, Debug)]
pub struct Stack {
    /// `block.{i}`, in order.
    pub block: Vec<Block>,
    /// `block.0.layer.0.SelfAttention.relative_attention_bias`, `[num_buckets, heads]`, shared by
    /// every block of the stack.
    pub relative_attention_bias: Tensor<2>,
    /// `final_layer_norm`.
    pub final_layer_norm: RmsNorm,
    /// Decoder: causal self-attention with one-directional buckets, and cross-attention.
    pub is_decoder: bool,
    /// `relative_attention_max_distance`.
    pub max_distance: usize,
}

/// What a stack returns.
#[derive(Debug)]
pub struct StackOutput {
    /// The last block's output after `final_layer_norm`, `[batch, seq, d_model]`.
    pub hidden: Tensor<3>,
    /// Self-attention keys and values per block (decoder, when asked for).
    pub kv: Vec<(Tensor<4>, Tensor<4>)>,
}

/// The decoder's state between generation steps: the encoder output's cross-attention keys and
/// values (computed once) and the self-attention keys and values seen so far.
#[derive(Debug)]
pub struct DecoderState {
    /// Per decoder block, the encoder output's keys and values.
    pub cross_kv: Vec<(Tensor<4>, Tensor<4>)>,
    /// Per decoder block, the self-attention keys and values so far (empty before the first step).
    pub self_kv: Vec<(Tensor<4>, Tensor<4>)>,
}

impl DecoderState {
    /// Number of decoder positions already cached.
    pub fn len(&self) -> usize {
        self.self_kv.first().map_or(0, |(k, _)| k.dims()[2])
    }

    /// Whether no decoder position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Stack {
    /// The hook names' stack.
    fn hook_stack(&self) -> ecco_core::Stack {
        if self.is_decoder { ecco_core::Stack::Decoder } else { ecco_core::Stack::Encoder }
    }

    /// Runs the stack on `x` (token embeddings), after `past` cached positions, emitting its hook
    /// points (`encoder.…` or `decoder.…`) into `hooks`.
    ///
    /// `cross_kv` (decoder) holds each block's keys and values of the encoder output.
    fn forward(
        &self,
        x: Tensor<3>,
        past: Option<Vec<(Tensor<4>, Tensor<4>)>>,
        cross_kv: Option<&[(Tensor<4>, Tensor<4>)]>,
        hooks: &mut Hooks,
        keep_kv: bool,
    ) -> StackOutput {
        let [_, seq, _] = x.dims();
        let past_len = past.as_ref().and_then(|p| p.first()).map_or(0, |(k, _)| k.dims()[2]);
        let keys = past_len + seq;
        let max_distance = self.max_distance;
        let mut bias = position_bias(&self.relative_attention_bias, seq, keys, past_len, !self.is_decoder, max_distance);
        if self.is_decoder && seq > 1 {
            bias = bias + causal_mask(seq, past_len, &x.device());
        }
        let stack = self.hook_stack();
        let mut past = past.map(Vec::into_iter);
        let mut kv = Vec::new();
        let mut x = hooks.emit(HookPoint::embed(stack), x);
        for (i, block) in self.block.iter().enumerate() {
            let inputs = BlockInputs {
                past: past.as_mut().and_then(Iterator::next),
                bias: &bias,
                cross_kv: cross_kv.and_then(|c| c.get(i)).cloned(),
            };
            let (y, block_kv) = block.forward(x, inputs, &mut hooks.block(stack, i));
            x = y;
            if keep_kv {
                kv.push(block_kv);
            }
        }
        let hidden = hooks.emit(HookPoint::final_norm(stack), self.final_layer_norm.forward(x));
        StackOutput { hidden, kv }
    }
}

/// T5 (`T5ForConditionalGeneration`), its weights on one device.
#[derive(Clone, Debug)]
pub struct T5 {
    /// `shared.weight`, `[vocab, d_model]`: both stacks' token embeddings (and the tied head).
    pub shared: Tensor<2>,
    /// The encoder stack.
    pub encoder: Stack,
    /// The decoder stack.
    pub decoder: Stack,
    /// An untied LM head `lm_head.weight`, `[vocab, d_model]`; `None` when tied to `shared`.
    pub lm_head: Option<Tensor<2>>,
    /// The configuration.
    pub config: T5Config,
    /// Static facts for the trait (`n_layers` counts the decoder's blocks).
    pub info: ModelInfo,
    /// Where the weights live.
    pub device: Device,
}

impl T5 {
    /// Token embeddings of `ids`, `[1, len, d_model]`.
    pub fn embed_ids(&self, ids: &[u32]) -> Tensor<3> {
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), &self.device);
        burn::tensor::module::embedding(self.shared.clone(), ids)
    }

    /// The encoder over token embeddings `[batch, seq, d_model]`, emitting its hook points into
    /// `hooks`.
    pub fn encode(&self, embeds: Tensor<3>, hooks: &mut Hooks) -> StackOutput {
        self.encoder.forward(embeds, None, None, hooks, false)
    }

    /// Per decoder block, the keys and values of the encoder output `[batch, seq, d_model]`.
    pub fn cross_keys_values(&self, encoder_hidden: &Tensor<3>) -> Vec<(Tensor<4>, Tensor<4>)> {
        self.decoder.block.iter().filter_map(|b| b.cross.as_ref().map(|c| c.attention.keys_values(encoder_hidden.clone()))).collect()
    }

    /// The decoder's state before the first generation step, from the encoder output.
    pub fn start_decoding(&self, encoder_hidden: &Tensor<3>) -> DecoderState {
        DecoderState { cross_kv: self.cross_keys_values(encoder_hidden), self_kv: Vec::new() }
    }

    /// Feeds `ids` (decoder tokens not yet cached) to the decoder; returns the last position's
    /// logits, `[vocab]`, and extends the cache in `state`.
    pub fn decode_step(&self, ids: &[u32], state: &mut DecoderState) -> Tensor<1> {
        self.decode_step_hooked(ids, state, &mut Hooks::new(CaptureSpec::none()))
    }

    /// [`T5::decode_step`] emitting the decoder's hook points of the step into `hooks` (the new
    /// positions only), so that interventions apply to generated tokens too; an intervention's
    /// error is left in `hooks` ([`Hooks::check`]).
    pub fn decode_step_hooked(&self, ids: &[u32], state: &mut DecoderState, hooks: &mut Hooks) -> Tensor<1> {
        let embeds = self.embed_ids(ids);
        let past = (!state.self_kv.is_empty()).then(|| std::mem::take(&mut state.self_kv));
        let out = self.decoder.forward(embeds, past, Some(&state.cross_kv), hooks, true);
        state.self_kv = out.kv;
        let [batch, seq, d] = out.hidden.dims();
        let last = out.hidden.slice([0..batch, seq - 1..seq, 0..d]);
        let vocab = self.info.vocab_size;
        self.project(last).reshape([vocab])
    }

    /// The LM head on the decoder's normed output: rescaled by `d_model^-0.5` first when the
    /// config says so (tied original T5), then `shared.weight` or `lm_head.weight`.
    pub fn project(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d] = x.dims();
        let x = if self.config.rescale_output { x * (self.config.d_model as f64).powf(-0.5) } else { x };
        let head = self.lm_head.as_ref().unwrap_or(&self.shared);
        let vocab = head.dims()[0];
        crate::nn::matmul_few_rows(x.reshape([batch * seq, d]), head, true).reshape([batch, seq, vocab])
    }
}

impl LanguageModel for T5 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        burn::tensor::module::embedding(self.shared.clone(), ids)
    }

    /// Encoder over `inputs.embeds`, decoder over `inputs.decoder_embeds` (required).
    fn forward_hooked(&self, inputs: ModelInputs, hooks: &mut Hooks) -> ecco_core::Result<ModelOutput> {
        let Some(decoder_embeds) = inputs.decoder_embeds else {
            return Err(ecco_core::Error::MissingInput("an encoder-decoder model needs decoder inputs"));
        };
        let enc = self.encode(inputs.embeds, hooks);
        let cross_kv = self.cross_keys_values(&enc.hidden);
        let dec = self.decoder.forward(decoder_embeds, None, Some(&cross_kv), hooks, false);
        let [batch, seq, d] = dec.hidden.dims();
        let logits = match hooks.logits() {
            Logits::All => Some(self.project(dec.hidden.clone())),
            Logits::Last => Some(self.project(dec.hidden.clone().slice([0..batch, seq - 1..seq, 0..d]))),
            Logits::Skip => None,
        };
        hooks.finish(ModelKind::EncoderDecoder, logits, dec.hidden)
    }

    fn hook_stacks(&self) -> Vec<(ecco_core::Stack, usize)> {
        vec![(ecco_core::Stack::Encoder, self.encoder.block.len()), (ecco_core::Stack::Decoder, self.decoder.block.len())]
    }

    fn final_norm(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.decoder.final_layer_norm.forward(hidden)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        Some(self.project(hidden))
    }
}
