//! `T5Attention`: self-attention (encoder, decoder) and cross-attention, no `1/sqrt(d)` scaling,
//! with the relative-position bias of the first block shared by the others.

use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::matmul_few_rows;

/// `x @ wᵀ` for a bias-free `nn.Linear` stored as in the checkpoint, `[out, in]`.
///
/// # Shapes
/// `x`: `[batch, seq, in]` to `[batch, seq, out]`.
pub fn linear(x: Tensor<3>, w: &Tensor<2>) -> Tensor<3> {
    let [batch, seq, d_in] = x.dims();
    let d_out = w.dims()[0];
    matmul_few_rows(x.reshape([batch * seq, d_in]), w, true).reshape([batch, seq, d_out])
}

/// `T5Attention._relative_position_bucket`: the bucket of `relative_position` (key position
/// minus query position).
///
/// Bidirectional (encoder): half the buckets for keys after the query. Causal (decoder): keys
/// after the query all fall in bucket 0. Half the remaining buckets hold exact distances, the
/// others logarithmically larger ranges up to `max_distance`; the arithmetic is `f32` as
/// `transformers`' is, so that boundaries fall where they fall there.
pub fn relative_position_bucket(relative_position: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> usize {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative_position > 0 {
            bucket += num_buckets;
        }
        relative_position.abs()
    } else {
        -relative_position.min(0)
    };
    let max_exact = num_buckets / 2;
    let offset = if distance < max_exact {
        distance
    } else {
        let log_ratio = (distance as f32 / max_exact as f32).ln();
        let log_max = (max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact + (log_ratio / log_max * (num_buckets - max_exact) as f32) as i64;
        large.min(num_buckets - 1)
    };
    (bucket + offset) as usize
}

/// The relative-position bias of `query_len` queries at positions `past..past + query_len`
/// against `key_len` keys at `0..key_len`: `[1, heads, query_len, key_len]` from the
/// `relative_attention_bias` table `[num_buckets, heads]`.
pub fn position_bias(
    table: &Tensor<2>,
    query_len: usize,
    key_len: usize,
    past: usize,
    bidirectional: bool,
    max_distance: usize,
) -> Tensor<4> {
    let [num_buckets, heads] = table.dims();
    let buckets: Vec<i64> = (0..query_len)
        .flat_map(|q| {
            (0..key_len)
                .map(move |k| relative_position_bucket(k as i64 - (q + past) as i64, bidirectional, num_buckets, max_distance) as i64)
        })
        .collect();
    let device: Device = table.device();
    let index = Tensor::<1, Int>::from_data(TensorData::new(buckets, [query_len * key_len]), &device);
    table.clone().select(0, index).reshape([query_len, key_len, heads]).permute([2, 0, 1]).unsqueeze::<4>()
}

/// One attention module (`SelfAttention` or `EncDecAttention`).
#[derive(Clone, Debug)]
pub struct Attention {
    /// `q`, `[inner, d_model]`.
    pub q: Tensor<2>,
    /// `k`, `[inner, d_model]`.
    pub k: Tensor<2>,
    /// `v`, `[inner, d_model]`.
    pub v: Tensor<2>,
    /// `o`, `[d_model, inner]`.
    pub o: Tensor<2>,
    /// Number of heads.
    pub n_heads: usize,
    /// Width of one head.
    pub d_kv: usize,
}

/// Which attention of a block an [`Attention`] call is: what it emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Self-attention: `attn.q`, `attn.k`, `attn.v`, `attn.pattern`, `attn.z`.
    SelfAttention,
    /// A decoder block's cross-attention: `cross_attn.pattern`.
    Cross,
}

impl Attention {
    /// `x @ wᵀ` split into heads, `[batch, seq, heads, d_kv]`.
    fn project(&self, x: Tensor<3>, w: &Tensor<2>) -> Tensor<4> {
        let [batch, seq, _] = x.dims();
        linear(x, w).reshape([batch, seq, self.n_heads, self.d_kv])
    }

    /// Keys and values of `source`, `[batch, heads, seq, d_kv]` each (cross-attention's, computed
    /// once per encoder output, emit nothing).
    pub fn keys_values(&self, source: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (self.project(source.clone(), &self.k).swap_dims(1, 2), self.project(source, &self.v).swap_dims(1, 2))
    }

    /// Self-attention's keys and values of `source` as [`Attention::keys_values`], emitted as
    /// `attn.k` and `attn.v`.
    pub fn self_keys_values(&self, source: Tensor<3>, hooks: &mut BlockHooks<'_>) -> (Tensor<4>, Tensor<4>) {
        let k = hooks.emit(BlockSite::AttnK, self.project(source.clone(), &self.k));
        let v = hooks.emit(BlockSite::AttnV, self.project(source, &self.v));
        (k.swap_dims(1, 2), v.swap_dims(1, 2))
    }

    /// The queries of `x`, `[batch, heads, seq, d_kv]` (emitted as `attn.q` by self-attention).
    pub fn queries(&self, x: Tensor<3>, role: Role, hooks: &mut BlockHooks<'_>) -> Tensor<4> {
        let q = self.project(x, &self.q);
        let q = if role == Role::SelfAttention { hooks.emit(BlockSite::AttnQ, q) } else { q };
        q.swap_dims(1, 2)
    }

    /// `o(softmax(q kᵀ + bias) v)`, emitting what `role` says.
    ///
    /// # Shapes
    /// `q`: `[batch, heads, seq, d_kv]`; `k`, `v`: `[batch, heads, keys, d_kv]`; `bias`
    /// (position bias plus mask): `[1, heads, seq, keys]`; output `[batch, seq, d_model]`.
    pub fn attend(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        bias: Option<&Tensor<4>>,
        role: Role,
        hooks: &mut BlockHooks<'_>,
    ) -> Tensor<3> {
        let [batch, _, seq, _] = q.dims();
        let own = role == Role::SelfAttention;
        let mut scores = q.matmul(k.swap_dims(2, 3));
        if let Some(bias) = bias {
            scores = scores + bias.clone();
        }
        let pattern = if own { BlockSite::AttnPattern } else { BlockSite::CrossAttnPattern };
        let weights = hooks.emit(pattern, activation::softmax(scores, 3));
        let mut z = weights.matmul(v).swap_dims(1, 2);
        if own {
            z = hooks.emit(BlockSite::AttnZ, z);
        }
        linear(z.reshape([batch, seq, self.n_heads * self.d_kv]), &self.o)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    #[test]
    fn buckets_of_small_and_large_distances() {
        // Encoder, 32 buckets: 0..8 exact for keys before, 16 + 0..8 for keys after.
        assert_eq!(relative_position_bucket(0, true, 32, 128), 0);
        assert_eq!(relative_position_bucket(-3, true, 32, 128), 3);
        assert_eq!(relative_position_bucket(3, true, 32, 128), 19);
        assert_eq!(relative_position_bucket(-1000, true, 32, 128), 15);
        assert_eq!(relative_position_bucket(1000, true, 32, 128), 31);
        // Decoder: keys after the query are bucket 0; 0..16 exact before.
        assert_eq!(relative_position_bucket(5, false, 32, 128), 0);
        assert_eq!(relative_position_bucket(-15, false, 32, 128), 15);
        assert_eq!(relative_position_bucket(-1000, false, 32, 128), 31);
    }
}
