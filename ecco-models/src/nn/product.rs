//! Matrix products for the few-row case of a decoding step: on the host, reading a mapped
//! checkpoint in place, or split between threads.

use burn::tensor::{Tensor, TensorData};

use crate::host::HostMatrix;

/// `product(host, x)` for a one-row `x` `[1, in]` when the weight has a host view and `x` is
/// a plain tensor: `[1, out]`. `None` otherwise (more rows, autodiff, no view).
pub fn host_product(x: &Tensor<2>, host: Option<&HostMatrix>, product: fn(&HostMatrix, &[f32]) -> Vec<f32>) -> Option<Tensor<2>> {
    let host = host?;
    if x.dims()[0] != 1 || x.is_autodiff() {
        return None;
    }
    let values = x.clone().into_data().try_into_vec::<f32>().ok()?;
    let y = product(host, &values);
    let n = y.len();
    Some(Tensor::from_data(TensorData::new(y, [1, n]), &x.device()))
}

/// Most rows of `x` for which [`matmul_few_rows`] splits the weight between threads.
const FEW_ROWS: usize = 8;
/// Fewest output columns worth a split: 512 also splits GPT-2's output projections (768
/// columns; a fifth of a decoding step's weights), 0.1 s of 20 greedy tokens on distilgpt2.
const WIDE: usize = 512;

/// `x @ w` (or `x @ wᵀ` when `transposed`), for `x` `[rows, in]` and `w` `[in, out]`
/// (`[out, in]` when `transposed`).
///
/// A decoding step multiplies one row by every weight matrix: a matrix-vector product that
/// the CPU backend runs on one thread, bound by memory bandwidth. With few rows and a wide
/// output, the output columns are split into one slice of `w` per thread, multiplied in
/// parallel and joined; otherwise (and on autodiff tensors) this is a plain `matmul`.
pub fn matmul_few_rows(x: Tensor<2>, w: &Tensor<2>, transposed: bool) -> Tensor<2> {
    let [rows, _] = x.dims();
    let [a, b] = w.dims();
    let (d_in, d_out) = if transposed { (b, a) } else { (a, b) };
    let threads = rayon::current_num_threads();
    let oriented = |w: Tensor<2>| if transposed { w.transpose() } else { w };
    // Autodiff graphs are recorded on the calling thread only.
    if rows > FEW_ROWS || d_out < WIDE || threads < 2 || x.is_autodiff() {
        return x.matmul(oriented(w.clone()));
    }
    let chunk = d_out.div_ceil(threads);
    let ranges: Vec<_> = (0..d_out).step_by(chunk).map(|s| s..(s + chunk).min(d_out)).collect();
    let mut parts: Vec<Option<Tensor<2>>> = vec![None; ranges.len()];
    rayon::scope(|scope| {
        for (part, cols) in parts.iter_mut().zip(ranges) {
            let x = x.clone();
            let w = if transposed { w.clone().slice([cols, 0..d_in]) } else { w.clone().slice([0..d_in, cols]) };
            scope.spawn(move |_| *part = Some(x.matmul(oriented(w))));
        }
    });
    Tensor::cat(parts.into_iter().flatten().collect(), 1)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::matmul_few_rows;

    #[test]
    fn split_product_equals_the_plain_one() {
        let device = Device::flex();
        let x = Tensor::<2>::random([2, 24], Distribution::Default, &device);
        for transposed in [false, true] {
            let shape = if transposed { [2051, 24] } else { [24, 2051] };
            let w = Tensor::<2>::random(shape, Distribution::Default, &device);
            let plain = x.clone().matmul(if transposed { w.clone().transpose() } else { w.clone() });
            let split = matmul_few_rows(x.clone(), &w, transposed);
            assert_eq!(split.dims(), [2, 2051]);
            let diff: f32 = (split - plain).abs().max().into_scalar();
            assert!(diff < 1e-5, "max difference {diff}");
        }
    }
}
