//! The panel layout of the `[k, m]` half-step variables.
//!
//! Both half-steps solve for a short wide matrix (`Wᵀ [k, p]`, `H [k, n]`) whose
//! columns are independent problems sharing one `k × k` Hessian. Stored as *panels*
//! of [`LANES`] consecutive columns, each panel row-major (`k` rows of [`LANES`]
//! values), a panel is one cache-resident unit and every operation on it runs
//! across its [`LANES`] columns as SIMD lanes: `Q z` for a panel is `k²` vector
//! multiply-adds with broadcast `Q` entries. Columns past `m` (padding up to whole
//! panels) hold zeros and stay zero (their right-hand side is zero).

use nalgebra::DMatrix;

/// Columns per panel (SIMD lanes of the panel kernels).
pub(crate) const LANES: usize = 16;

/// A `[k, m]` matrix in panels of [`LANES`] columns (see the module notes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panels {
    k: usize,
    m: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Zeros, `m` columns padded to a multiple of `pad` (itself a multiple of
    /// [`LANES`]).
    pub(crate) fn zeros(k: usize, m: usize, pad: usize) -> Self {
        debug_assert!(pad > 0 && pad.is_multiple_of(LANES));
        let padded = m.div_ceil(pad) * pad;
        Self { k, m, data: vec![0.0; k * padded] }
    }

    /// `a` in panel layout, padded as [`Panels::zeros`].
    pub(crate) fn from_matrix(a: &DMatrix<f32>, pad: usize) -> Self {
        let (k, m) = a.shape();
        let mut out = Self::zeros(k, m, pad);
        for (c, col) in a.column_iter().enumerate() {
            for (r, &v) in col.iter().enumerate() {
                let i = out.index(r, c);
                out.data[i] = v;
            }
        }
        out
    }

    /// Back to a `[k, m]` matrix (padding dropped).
    pub(crate) fn to_matrix(&self) -> DMatrix<f32> {
        DMatrix::from_fn(self.k, self.m, |r, c| self.data[self.index(r, c)])
    }

    /// Rows `k`.
    #[cfg(test)]
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Columns without the padding.
    pub(crate) fn m(&self) -> usize {
        self.m
    }

    /// Number of panels, padding included.
    #[cfg(test)]
    pub(crate) fn panels(&self) -> usize {
        self.data.len() / (self.k * LANES).max(1)
    }

    /// All panels, one after the other.
    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All panels, mutable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Offset of entry `(r, c)`.
    fn index(&self, r: usize, c: usize) -> usize {
        (c / LANES) * self.k * LANES + r * LANES + c % LANES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_zero_padding() {
        let a = DMatrix::from_fn(3, 21, |r, c| (r * 100 + c) as f32);
        let p = Panels::from_matrix(&a, 2 * LANES);
        assert_eq!((p.k(), p.m(), p.panels()), (3, 21, 2));
        assert_eq!(p.as_slice().len(), 3 * 2 * LANES);
        // Panel 1, row 2, lane 4 is column 20.
        assert_eq!(p.as_slice()[3 * LANES + 2 * LANES + 4], 220.0);
        assert_eq!(p.as_slice()[3 * LANES + 2 * LANES + 5], 0.0);
        assert_eq!(p.to_matrix(), a);
    }
}
