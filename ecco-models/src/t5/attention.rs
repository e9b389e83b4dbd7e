//! `T5Attention`: self-attention (encoder, decoder) and cross-attention, no `1/sqrt(d)` scaling,
//! with the relative-position bias of the first block shared by the others.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ecco_core::{BlockHooks, BlockSite};

use crate::nn::{Attend, Linear, Role, split_heads};

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

/// One attention module (`SelfAttention` or `EncDecAttention`): bias-free projections around the
/// shared [`Attend`], unscaled (T5 folds the scaling into its initialisation).
#[derive(Clone, Debug)]
pub struct Attention {
    /// `q`, `[d_model, inner]`.
    pub q: Linear,
    /// `k`, `[d_model, inner]`.
    pub k: Linear,
    /// `v`, `[d_model, inner]`.
    pub v: Linear,
    /// `o`, `[inner, d_model]`.
    pub o: Linear,
    /// Heads of `d_kv`, scale 1.
    pub core: Attend,
}

impl Attention {
    /// Keys and values of `source`, `[batch, heads, seq, d_kv]` each (cross-attention's, computed
    /// once per encoder output, emit nothing).
    pub fn keys_values(&self, source: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        let [batch, seq, _] = source.dims();
        let (heads, d) = (self.core.n_heads, self.core.head_dim);
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, d]).swap_dims(1, 2);
        (split(self.k.forward(source.clone())), split(self.v.forward(source)))
    }

    /// Self-attention's keys and values of `source` as [`Attention::keys_values`], emitted as
    /// `attn.k` and `attn.v`.
    pub fn self_keys_values(&self, source: Tensor<3>, hooks: &mut BlockHooks<'_>) -> (Tensor<4>, Tensor<4>) {
        let heads = self.core.n_heads;
        let k = split_heads(self.k.forward(source.clone()), heads, Some(BlockSite::AttnK), hooks);
        (k, split_heads(self.v.forward(source), heads, Some(BlockSite::AttnV), hooks))
    }

    /// The queries of `x`, `[batch, heads, seq, d_kv]` (emitted as `attn.q` by self-attention).
    pub fn queries(&self, x: Tensor<3>, role: Role, hooks: &mut BlockHooks<'_>) -> Tensor<4> {
        let site = (role == Role::SelfAttention).then_some(BlockSite::AttnQ);
        split_heads(self.q.forward(x), self.core.n_heads, site, hooks)
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
        let (_, z) = self.core.attend(&q, &k, &v, bias, role, hooks);
        self.o.forward(z)
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
