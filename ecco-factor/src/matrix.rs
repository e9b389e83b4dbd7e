//! Building the NMF input from a trace's FFN activations, and input checks shared by
//! the other modules.

use nalgebra::DMatrix;

use crate::error::{Error, Result};

/// Builds the `[positions, selected layers × neurons]` matrix that Ecco's `run_nmf`
/// factorises, with negative activations clipped to 0.
///
/// `data` is the trace's activation tensor in row-major order with
/// `shape = [layers, neurons, positions]`; `layers` are indices into that stored layer
/// axis, in the order their columns should appear. Columns are layer-major: all
/// neurons of `layers[0]`, then all neurons of `layers[1]`, and so on — the layout of
/// Ecco's `NMF.reshape_activations` (`np.concatenate(..., axis=1)` over layers) after
/// its final transpose. The clipping mirrors Ecco's `np.maximum(activations, 0)`
/// (GELU lets small negative values through).
///
/// # Errors
///
/// [`Error::EmptySelection`] for an empty `layers`, [`Error::LayerOutOfRange`] or
/// [`Error::DuplicateLayer`] for a bad index, [`Error::ShapeMismatch`] when
/// `data.len()` is not the product of `shape`, [`Error::Empty`] when a dimension is
/// zero, and [`Error::NonFiniteActivation`] for the first NaN or infinity met in a
/// selected layer.
///
/// # Example
///
/// ```
/// // 2 layers x 2 neurons x 3 positions, row-major.
/// let data = [
///     1.0, 2.0, 3.0, /* layer 0 neuron 0 */ -1.0, 0.5, 0.0, /* layer 0 neuron 1 */
///     4.0, 5.0, 6.0, /* layer 1 neuron 0 */ 7.0, -8.0, 9.0, /* layer 1 neuron 1 */
/// ];
/// let m = ecco_factor::activation_matrix(&data, [2, 2, 3], &[1, 0])?;
/// assert_eq!(m.shape(), (3, 4));
/// assert_eq!(m[(1, 1)], 0.0); // layer 1, neuron 1, position 1 was -8: clipped
/// assert_eq!(m[(0, 2)], 1.0); // then layer 0's neurons
/// # Ok::<(), ecco_factor::Error>(())
/// ```
pub fn activation_matrix(data: &[f32], shape: [usize; 3], layers: &[usize]) -> Result<DMatrix<f32>> {
    let [n_layers, neurons, positions] = shape;
    let expected = n_layers.checked_mul(neurons).and_then(|v| v.checked_mul(positions)).ok_or(Error::ShapeMismatch {
        shape,
        len: data.len(),
        expected: usize::MAX,
    })?;
    if expected != data.len() {
        return Err(Error::ShapeMismatch { shape, len: data.len(), expected });
    }
    if layers.is_empty() {
        return Err(Error::EmptySelection);
    }
    for (i, &layer) in layers.iter().enumerate() {
        if layer >= n_layers {
            return Err(Error::LayerOutOfRange { index: layer, layers: n_layers });
        }
        if layers[..i].contains(&layer) {
            return Err(Error::DuplicateLayer { index: layer });
        }
    }
    if neurons == 0 || positions == 0 {
        return Err(Error::Empty { what: "activation tensor", rows: positions, cols: neurons });
    }

    // Column-major output: column `sel * neurons + n` is one neuron's activations over
    // the positions, which is exactly a contiguous run of the row-major input.
    let mut out = Vec::with_capacity(positions * neurons * layers.len());
    for &layer in layers {
        for neuron in 0..neurons {
            let start = (layer * neurons + neuron) * positions;
            let run = &data[start..start + positions];
            for (position, &value) in run.iter().enumerate() {
                if !value.is_finite() {
                    return Err(Error::NonFiniteActivation { layer, neuron, position, value });
                }
                out.push(value.max(0.0));
            }
        }
    }
    Ok(DMatrix::from_vec(positions, neurons * layers.len(), out))
}

/// Fails with [`Error::Empty`] if `m` has no rows or no columns.
pub(crate) fn check_not_empty<T>(what: &'static str, m: &DMatrix<T>) -> Result<()>
where
    T: nalgebra::Scalar,
{
    if m.nrows() == 0 || m.ncols() == 0 {
        return Err(Error::Empty { what, rows: m.nrows(), cols: m.ncols() });
    }
    Ok(())
}

/// Fails with [`Error::NonFinite`] at the first NaN or infinity of `m`.
pub(crate) fn check_finite_f64(what: &'static str, m: &DMatrix<f64>) -> Result<()> {
    for (j, col) in m.column_iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFinite { what, row: i, col: j, value: v });
            }
        }
    }
    Ok(())
}

/// The error for the first entry of `x` (column by column) that is not finite, or
/// negative; `Ok` if there is none.
pub(crate) fn first_bad_nmf_entry(x: &DMatrix<f32>) -> Result<()> {
    for (j, col) in x.column_iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFinite { what: "NMF input", row: i, col: j, value: f64::from(v) });
            }
            if v < 0.0 {
                return Err(Error::Negative { row: i, col: j, value: v });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<f32> {
        // 3 layers x 2 neurons x 4 positions, value = 100 l + 10 n + p, one negative.
        let mut v = Vec::new();
        for l in 0..3 {
            for n in 0..2 {
                for p in 0..4 {
                    v.push((100 * l + 10 * n + p) as f32);
                }
            }
        }
        v[1] = -0.5;
        v
    }

    #[test]
    fn layer_major_columns_and_clipping() -> Result<()> {
        let m = activation_matrix(&sample(), [3, 2, 4], &[2, 0])?;
        assert_eq!(m.shape(), (4, 4));
        for p in 0..4 {
            assert_eq!(m[(p, 0)], (200 + p) as f32);
            assert_eq!(m[(p, 1)], (210 + p) as f32);
            assert_eq!(m[(p, 3)], (10 + p) as f32);
        }
        assert_eq!(m[(1, 2)], 0.0, "negative activation clipped");
        assert_eq!(m[(2, 2)], 2.0);
        Ok(())
    }

    #[test]
    fn selection_errors() {
        let d = sample();
        assert_eq!(activation_matrix(&d, [3, 2, 4], &[]), Err(Error::EmptySelection));
        assert_eq!(activation_matrix(&d, [3, 2, 4], &[0, 3]), Err(Error::LayerOutOfRange { index: 3, layers: 3 }));
        assert_eq!(activation_matrix(&d, [3, 2, 4], &[1, 1]), Err(Error::DuplicateLayer { index: 1 }));
        assert!(matches!(activation_matrix(&d, [3, 2, 5], &[0]), Err(Error::ShapeMismatch { expected: 30, .. })));
        assert!(matches!(activation_matrix(&[], [3, 0, 4], &[0]), Err(Error::Empty { .. })));
    }

    #[test]
    fn non_finite_is_reported_with_its_coordinates() {
        let mut d = sample();
        d[(2 * 2 + 1) * 4 + 3] = f32::NAN; // layer 2, neuron 1, position 3
        let err = activation_matrix(&d, [3, 2, 4], &[0, 2]);
        assert!(matches!(err, Err(Error::NonFiniteActivation { layer: 2, neuron: 1, position: 3, .. })));
        // Unselected layers are not read.
        assert!(activation_matrix(&d, [3, 2, 4], &[0, 1]).is_ok());
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("layer 2, neuron 1, position 3"), "{msg}");
    }
}
