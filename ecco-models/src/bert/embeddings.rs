//! The embedding sum and its layer norm (`BertEmbeddings`, `RobertaEmbeddings`, DistilBERT's
//! `Embeddings`).

use burn::tensor::{Int, Tensor};

use crate::nn::LayerNorm;

/// Word, position and token-type embeddings, summed and normalised.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// `[vocab, hidden]`; also the tied MLM decoder.
    pub word_embeddings: Tensor<2>,
    /// `[max_position_embeddings, hidden]`.
    pub position_embeddings: Tensor<2>,
    /// `[type_vocab, hidden]`; `None` for DistilBERT.
    pub token_type_embeddings: Option<Tensor<2>>,
    /// Norm of the sum.
    pub layer_norm: LayerNorm,
    /// First position row used (RoBERTa: `pad_token_id + 1`).
    pub position_offset: usize,
}

impl Embeddings {
    /// Adds positions and token types to the word embeddings `embeds` and normalises.
    ///
    /// Token types default to 0 (as `BertEmbeddings` does without `token_type_ids`). Positions run
    /// from `position_offset` on, as Hugging Face numbers an unpadded sequence (RoBERTa counts
    /// padding positions too, which only changes rows the attention mask hides).
    ///
    /// # Shapes
    /// `embeds`: `[batch, seq, hidden]`; `token_type_ids`: `[batch, seq]`.
    pub fn forward(&self, embeds: Tensor<3>, token_type_ids: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.layer_norm.forward(self.sum(embeds, token_type_ids))
    }

    /// The sum [`Embeddings::forward`] normalises: word embeddings, positions and token types.
    pub fn sum(&self, embeds: Tensor<3>, token_type_ids: Option<Tensor<2, Int>>) -> Tensor<3> {
        let [_, seq, hidden] = embeds.dims();
        let start = self.position_offset;
        let pos = self.position_embeddings.clone().slice([start..start + seq, 0..hidden]);
        let mut x = embeds + pos.unsqueeze::<3>();
        if let Some(table) = &self.token_type_embeddings {
            x = match token_type_ids {
                Some(ids) => x + burn::tensor::module::embedding(table.clone(), ids),
                None => x + table.clone().slice([0..1, 0..hidden]).unsqueeze::<3>(),
            };
        }
        x
    }
}
