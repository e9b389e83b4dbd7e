//! The BERT-family encoder with its optional masked-LM head; the core trait.

use burn::tensor::{Device, Int, Tensor};
use ecco_core::{
    CaptureSpec, HookPoint, Hooks, InputGradients, LanguageModel, Logits, ModelInfo, ModelInputs, ModelKind, ModelOutput, Stack,
};

use crate::activation::Activation;
use crate::bert::config::BertConfig;
use crate::bert::embeddings::Embeddings;
use crate::bert::layer::Layer;
use crate::nn::{LayerNorm, Linear, padding_mask};

/// The masked-LM head (`BertOnlyMLMHead`, `RobertaLMHead`, DistilBERT's `vocab_*`):
/// dense, nonlinearity, layer norm, then the decoder tied to the word embeddings.
#[derive(Clone, Debug)]
pub struct MlmHead {
    /// `transform.dense`, `[hidden, hidden]`.
    pub dense: Linear,
    /// The nonlinearity after `dense`.
    pub act: Activation,
    /// `transform.LayerNorm`.
    pub layer_norm: LayerNorm,
    /// An untied decoder `[vocab, hidden]`; `None` when tied to the word embeddings.
    pub decoder: Option<Tensor<2>>,
    /// Output bias, `[vocab]`.
    pub bias: Tensor<1>,
}

/// A BERT-family encoder (`BertModel`, or `BertForMaskedLM` when the checkpoint has the head).
#[derive(Clone, Debug)]
pub struct Bert {
    /// Embedding sum and norm.
    pub embeddings: Embeddings,
    /// The layers, in order.
    pub layer: Vec<Layer>,
    /// The masked-LM head, when the checkpoint has one.
    pub mlm_head: Option<MlmHead>,
    /// The configuration.
    pub config: BertConfig,
    /// Static facts for the trait.
    pub info: ModelInfo,
    /// Where the weights live.
    pub device: Device,
}

impl Bert {
    /// One forward pass with token types and an attention mask (`1` = attend, `0` = padding).
    ///
    /// Hidden states are recorded as `transformers` returns them: the embedding output, then
    /// every layer's output (BERT has no final norm). `last_hidden` is the last layer's output.
    ///
    /// # Shapes
    /// `embeds`: `[batch, seq, hidden]` word embeddings; `token_type_ids`: `[batch, seq]`;
    /// `attention_mask`: `[batch, seq]`.
    ///
    /// # Errors
    /// [`ecco_core::Error::SequenceTooLong`] past the position table.
    pub fn forward_with(
        &self,
        embeds: Tensor<3>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Option<Tensor<2>>,
        capture: &CaptureSpec,
    ) -> ecco_core::Result<ModelOutput> {
        self.forward_with_hooks(embeds, token_type_ids, attention_mask, &mut Hooks::new(capture.clone()))
    }

    /// [`Bert::forward_with`], emitting every hook point into `hooks` (which records and edits).
    /// BERT has no final norm: `final_norm` is the last layer's output, the MLM head's input.
    ///
    /// # Errors
    /// As [`Bert::forward_with`], and a failing intervention.
    pub fn forward_with_hooks(
        &self,
        embeds: Tensor<3>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Option<Tensor<2>>,
        hooks: &mut Hooks,
    ) -> ecco_core::Result<ModelOutput> {
        let [batch, seq, hidden] = embeds.dims();
        let max = self.config.max_positions();
        if seq > max {
            return Err(ecco_core::Error::SequenceTooLong { len: seq, max });
        }
        let mask = attention_mask.map(padding_mask);
        let mut x = hooks.emit(HookPoint::embed(Stack::Main), self.embeddings.forward(embeds, token_type_ids));
        for (i, layer) in self.layer.iter().enumerate() {
            x = layer.forward(x, mask.as_ref(), &mut hooks.block(Stack::Main, i));
        }
        let x = hooks.emit(HookPoint::final_norm(Stack::Main), x);
        let logits = match (hooks.logits(), &self.mlm_head) {
            (Logits::Skip, _) | (_, None) => None,
            (Logits::All, Some(_)) => self.project(x.clone()),
            (Logits::Last, Some(_)) => self.project(x.clone().slice([0..batch, seq - 1..seq, 0..hidden])),
        };
        hooks.finish(ModelKind::Masked, logits, x)
    }

    /// The masked-LM head on hidden states; `None` without a head.
    fn project(&self, x: Tensor<3>) -> Option<Tensor<3>> {
        let head = self.mlm_head.as_ref()?;
        let h = head.layer_norm.forward(head.act.forward(head.dense.forward(x)));
        let [batch, seq, hidden] = h.dims();
        let decoder = head.decoder.as_ref().unwrap_or(&self.embeddings.word_embeddings);
        let vocab = decoder.dims()[0];
        let logits = h.reshape([batch * seq, hidden]).matmul(decoder.clone().transpose()) + head.bias.clone().unsqueeze::<2>();
        Some(logits.reshape([batch, seq, vocab]))
    }
}

impl LanguageModel for Bert {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        burn::tensor::module::embedding(self.embeddings.word_embeddings.clone(), ids)
    }

    fn forward_hooked(&self, inputs: ModelInputs, hooks: &mut Hooks) -> ecco_core::Result<ModelOutput> {
        self.forward_with_hooks(inputs.embeds, None, None, hooks)
    }

    /// BERT is post-norm: every layer's output is already normalised, so the lens has no norm to add.
    fn final_norm(&self, hidden: Tensor<3>) -> Tensor<3> {
        hidden
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        self.project(hidden)
    }

    fn input_gradients(&self, embeds: Tensor<3>) -> Option<ecco_core::Result<Box<dyn InputGradients + '_>>> {
        if embeds.is_autodiff() || self.mlm_head.is_none() {
            return None;
        }
        Some(self.tape(embeds).map(|t| Box::new(t) as Box<dyn InputGradients + '_>))
    }
}
