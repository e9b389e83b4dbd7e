//! The decoder: token embeddings (scaled by `sqrt(hidden)` in Gemma), the blocks, the final
//! RMSNorm, the tied or untied LM head (soft-capped in Gemma 2); the core traits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ecco_core::{
    CausalLm, HookPoint, Hooks, InputGradients, KvCache, LanguageModel, Logits, ModelInfo, ModelInputs, ModelKind, ModelOutput, Stack,
};

use crate::host::HostMatrix;
use crate::llama::block::Block;
use crate::llama::config::DecoderConfig;
use crate::nn::RmsNorm;

/// A Llama-family decoder (`LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`,
/// `Qwen3ForCausalLM`, `Gemma2ForCausalLM`, `Gemma3ForCausalLM`), its weights on one device.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Token embeddings, `[vocab, hidden]`.
    pub embed_tokens: Tensor<2>,
    /// The blocks, in order.
    pub layers: Vec<Block>,
    /// Final norm.
    pub norm: RmsNorm,
    /// An untied LM head `[vocab, hidden]`; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Tensor<2>>,
    /// The LM head read in place on the CPU backend (one-row products of decoding steps).
    pub head_host: Option<HostMatrix>,
    /// The configuration.
    pub config: DecoderConfig,
    /// Static facts for the traits.
    pub info: ModelInfo,
    /// Where the weights live.
    pub device: Device,
}

impl Decoder {
    /// The blocks over `embeds` (unscaled token embeddings) at positions `past_len..`, the final
    /// norm, emitting every hook point into `hooks`; the normed output, the logits `hooks` asks
    /// for and, when `keep_kv`, every block's keys and values.
    fn run(
        &self,
        embeds: Tensor<3>,
        past: Option<KvCache>,
        hooks: &mut Hooks,
        logits: Logits,
        keep_kv: bool,
    ) -> ecco_core::Result<(Tensor<3>, Option<Tensor<3>>, Option<KvCache>)> {
        let [_, seq, hidden] = embeds.dims();
        let past_len = past.as_ref().map_or(0, KvCache::len);
        let max = self.info.max_positions.unwrap_or(usize::MAX);
        if past_len + seq > max {
            return Err(ecco_core::Error::SequenceTooLong { len: past_len + seq, max });
        }
        let scale = self.config.embedding_scale();
        let embeds = if scale == 1.0 { embeds } else { embeds * scale };
        let mut x = hooks.emit(HookPoint::embed(Stack::Main), embeds);
        let mut past_layers = past.map(|c| c.layers.into_iter());
        let mut new_cache = Vec::new();
        for (i, block) in self.layers.iter().enumerate() {
            let layer_past = past_layers.as_mut().and_then(Iterator::next);
            let (y, kv) = block.forward(x, layer_past, &mut hooks.block(Stack::Main, i));
            x = y;
            if keep_kv {
                new_cache.push(kv);
            }
        }
        let x = hooks.emit(HookPoint::final_norm(Stack::Main), self.norm.forward(x));
        let logits = match logits {
            Logits::All => Some(self.project(x.clone())),
            Logits::Last => {
                let batch = x.dims()[0];
                Some(self.project(x.clone().slice([0..batch, seq - 1..seq, 0..hidden])))
            }
            Logits::Skip => None,
        };
        Ok((x, logits, keep_kv.then_some(KvCache { layers: new_cache })))
    }

    /// The LM head on already-normed hidden states, with Gemma 2's final soft-capping.
    fn project(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        let vocab = head.dims()[0];
        let x = x.reshape([batch * seq, hidden]);
        let logits = crate::nn::host_product(&x, self.head_host.as_ref(), HostMatrix::mul)
            .unwrap_or_else(|| crate::nn::matmul_few_rows(x, head, true))
            .reshape([batch, seq, vocab]);
        match self.config.final_logit_softcapping {
            Some(cap) => (logits / cap).tanh() * cap,
            None => logits,
        }
    }
}

impl LanguageModel for Decoder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// The token embeddings before Gemma's `sqrt(hidden)` scaling (attributions are taken over
    /// these, as Ecco takes them over `embed_tokens`' output).
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        burn::tensor::module::embedding(self.embed_tokens.clone(), ids)
    }

    fn forward_hooked(&self, inputs: ModelInputs, hooks: &mut Hooks) -> ecco_core::Result<ModelOutput> {
        let logits = hooks.logits();
        let (last_hidden, logits, _) = self.run(inputs.embeds, None, hooks, logits, false)?;
        hooks.finish(ModelKind::Causal, logits, last_hidden)
    }

    fn final_norm(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.norm.forward(hidden)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        Some(self.project(hidden))
    }

    /// The hand-written backward pass ([`crate::llama::backward`]) where it covers the
    /// configuration; autodiff otherwise.
    fn input_gradients(&self, embeds: Tensor<3>) -> Option<ecco_core::Result<Box<dyn InputGradients + '_>>> {
        if embeds.is_autodiff() || !self.has_hand_backward() {
            return None;
        }
        Some(self.tape(embeds).map(|t| Box::new(t) as Box<dyn InputGradients + '_>))
    }
}

impl CausalLm for Decoder {
    fn decode_step_hooked(&self, ids: &[u32], cache: KvCache, hooks: &mut Hooks) -> ecco_core::Result<(Tensor<1>, KvCache)> {
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &self.device);
        let (_, logits, cache) = self.run(self.embed(ids), Some(cache), hooks, Logits::Last, true)?;
        hooks.check()?;
        let vocab = self.info.vocab_size;
        let logits = logits.map(|l| l.reshape([vocab]));
        match (logits, cache) {
            (Some(l), Some(c)) => Ok((l, c)),
            _ => unreachable!("run() returns logits and a cache when asked for both"),
        }
    }
}
