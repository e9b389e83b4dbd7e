//! Additive attention masks, `[.., query, key]` of 0 (visible) and [`MASKED`] (hidden): causal,
//! sliding-window and padding. Bidirectional attention needs none.

use burn::tensor::{Device, Tensor, TensorData};

/// Hidden keys get this added to their scores instead of `-inf`, so that gradients stay finite
/// (`transformers` adds `finfo.min`; either way their softmax weight is exactly 0).
pub const MASKED: f32 = -1e9;

/// Additive causal mask `[1, 1, seq, past + seq]`: query `i` sees keys `0..=past + i`.
pub fn causal_mask(seq: usize, past: usize, device: &Device) -> Tensor<4> {
    window_mask(seq, past, None, device)
}

/// [`causal_mask`] that also hides keys more than `window - 1` positions before the query
/// (sliding-window attention: query `i` sees keys `past + i + 1 - window ..= past + i`), or
/// none when `window` is `None`.
pub fn window_mask(seq: usize, past: usize, window: Option<usize>, device: &Device) -> Tensor<4> {
    let keys = past + seq;
    let visible = |i: usize, j: usize| j <= past + i && window.is_none_or(|w| past + i < j + w);
    let data: Vec<f32> = (0..seq).flat_map(|i| (0..keys).map(move |j| if visible(i, j) { 0.0 } else { MASKED })).collect();
    Tensor::from_data(TensorData::new(data, [1, 1, seq, keys]), device)
}

/// The additive mask `[batch, 1, 1, seq]` of an attention mask `[batch, seq]` (`1` attend, `0`
/// padding): `(1 - mask) * MASKED`, as `get_extended_attention_mask` builds it.
pub fn padding_mask(attention_mask: Tensor<2>) -> Tensor<4> {
    let [batch, seq] = attention_mask.dims();
    ((attention_mask.neg() + 1.0) * MASKED).reshape([batch, 1, 1, seq])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::Device;

    use super::{MASKED, window_mask};

    #[test]
    fn causal_and_sliding_windows() {
        let device = Device::flex();
        let read = |w: Option<usize>| window_mask(3, 1, w, &device).into_data().try_into_vec::<f32>().unwrap_or_default();
        let m = MASKED;
        // One cached key, three new queries at positions 1, 2, 3.
        assert_eq!(read(None), [0.0, 0.0, m, m, 0.0, 0.0, 0.0, m, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(read(Some(2)), [0.0, 0.0, m, m, m, 0.0, 0.0, m, m, m, 0.0, 0.0]);
    }
}
