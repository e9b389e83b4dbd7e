//! The GPT-2 model: embeddings, blocks, final norm, tied LM head; the core traits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ecco_core::{
    CausalLm, HookPoint, Hooks, InputGradients, KvCache, LanguageModel, Logits, ModelInfo, ModelInputs, ModelKind, ModelOutput, Stack,
};

use crate::gpt2::block::Block;
use crate::gpt2::config::Gpt2Config;
use crate::host::HostMatrix;
use crate::nn::{LayerNorm, causal_mask};

/// GPT-2 (`GPT2LMHeadModel`), its weights on one device.
#[derive(Clone, Debug)]
pub struct Gpt2 {
    /// Token embeddings, `[vocab, hidden]`.
    pub wte: Tensor<2>,
    /// Position embeddings, `[positions, hidden]`.
    pub wpe: Tensor<2>,
    /// The blocks, in order.
    pub h: Vec<Block>,
    /// Final layer norm.
    pub ln_f: LayerNorm,
    /// An untied LM head `[vocab, hidden]`; `None` when tied to `wte`.
    pub lm_head: Option<Tensor<2>>,
    /// The LM head read in place from the mapped checkpoint, on the CPU backend (one-row
    /// products of decoding steps, [`crate::host`]).
    pub head_host: Option<HostMatrix>,
    /// The configuration.
    pub config: Gpt2Config,
    /// Static facts for the traits.
    pub info: ModelInfo,
    /// Where the weights live.
    pub device: Device,
}

impl Gpt2 {
    /// Embeddings plus positions from `past_len` on, every block, the final norm, emitting
    /// every hook point into `hooks`; the output after `ln_f` and the `logits` asked for.
    ///
    /// Returns the keys/values of every block too when `keep_kv`.
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
        if past_len + seq > self.config.n_positions {
            return Err(ecco_core::Error::SequenceTooLong { len: past_len + seq, max: self.config.n_positions });
        }
        let pos = self.wpe.clone().slice([past_len..past_len + seq, 0..hidden]);
        let mut x = hooks.emit(HookPoint::embed(Stack::Main), embeds + pos.unsqueeze::<3>());
        let mask = (seq > 1).then(|| causal_mask(seq, past_len, &x.device()));
        let mut past_layers = past.map(|c| c.layers.into_iter());
        let mut new_cache = Vec::new();
        for (i, block) in self.h.iter().enumerate() {
            let layer_past = past_layers.as_mut().and_then(Iterator::next);
            let (y, kv) = block.forward(x, layer_past, mask.as_ref(), &mut hooks.block(Stack::Main, i));
            x = y;
            if keep_kv {
                new_cache.push(kv);
            }
        }
        let x = hooks.emit(HookPoint::final_norm(Stack::Main), self.ln_f.forward(x));
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

    /// The LM head on already-normed hidden states.
    fn project(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head = self.lm_head.as_ref().unwrap_or(&self.wte);
        let vocab = head.dims()[0];
        let x = x.reshape([batch * seq, hidden]);
        crate::nn::host_product(&x, self.head_host.as_ref(), HostMatrix::mul)
            .unwrap_or_else(|| crate::nn::matmul_few_rows(x, head, true))
            .reshape([batch, seq, vocab])
    }
}

impl LanguageModel for Gpt2 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        burn::tensor::module::embedding(self.wte.clone(), ids)
    }

    fn forward_hooked(&self, inputs: ModelInputs, hooks: &mut Hooks) -> ecco_core::Result<ModelOutput> {
        let logits = hooks.logits();
        let (last_hidden, logits, _) = self.run(inputs.embeds, None, hooks, logits, false)?;
        hooks.finish(ModelKind::Causal, logits, last_hidden)
    }

    fn final_norm(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.ln_f.forward(hidden)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        Some(self.project(hidden))
    }

    fn input_gradients(&self, embeds: Tensor<3>) -> Option<ecco_core::Result<Box<dyn InputGradients + '_>>> {
        if embeds.is_autodiff() {
            return None;
        }
        Some(self.tape(embeds).map(|t| Box::new(t) as Box<dyn InputGradients + '_>))
    }
}

impl CausalLm for Gpt2 {
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
