//! Sums of the [`LANES`] lanes of panel rows, in one fixed pairwise order whatever
//! the instruction set: lane `l` plus lane `l + 8`, then `l + 4`, `l + 2`, `l + 1`.
//!
//! [`lane_totals16`] sums 16 rows at once. With AVX-512 it runs as a transposed
//! reduction (16 vectors to one in 15 shuffle-pairs and adds, each step adding the
//! same pairs as [`lane_total`]), instead of 16 separate reductions of a vector to a
//! scalar; elsewhere it calls [`lane_total`] per row. Both give the same bits.

use crate::panels::LANES;

/// Rows summed together by [`lane_totals16`].
pub(crate) const GROUP: usize = 16;

/// Sum of the lanes of `v` as the fixed pairwise tree of the module notes.
#[inline(always)]
pub(crate) fn lane_total(v: &[f32; LANES]) -> f32 {
    let mut w = *v;
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            w[l] += w[l + half];
        }
        half /= 2;
    }
    w[0]
}

/// `[lane_total(rows[0]), …, lane_total(rows[15])]`, bit for bit.
#[inline(always)]
pub(crate) fn lane_totals16<S: pulp::Simd>(simd: S, rows: &[[f32; LANES]; GROUP]) -> [f32; GROUP] {
    #[cfg(target_arch = "x86_64")]
    if let Some(&v4) = (&simd as &dyn core::any::Any).downcast_ref::<pulp::x86::V4>() {
        return transposed_v4(v4, rows);
    }
    let _ = simd;
    // A loop rather than `array::from_fn`, whose closure is not always inlined into
    // the caller's instruction set.
    let mut out = [0.0; GROUP];
    for (o, row) in out.iter_mut().zip(rows) {
        *o = lane_total(row);
    }
    out
}

/// [`lane_totals16`] with AVX-512: four levels of pairing two vectors, moving the
/// halves (then quarters, pairs, single lanes) that are added into one vector with
/// two shuffles and adding them, so that each level adds lane `l` to lane
/// `l + 8` (`+ 4`, `+ 2`, `+ 1`) of every row. Lane `4c + j` of the result comes
/// from input vector `c + 4j`, so the rows go in in that order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transposed_v4(simd: pulp::x86::V4, rows: &[[f32; LANES]; GROUP]) -> [f32; GROUP] {
    const { assert!(LANES == 16 && GROUP == 16) };
    use core::arch::x86_64::__m512;
    let f = simd.avx512f;
    let v: [__m512; 16] = std::array::from_fn(|i| pulp::cast(rows[4 * (i % 4) + i / 4]));
    // 256-bit halves: [a.lo, b.lo] + [a.hi, b.hi].
    let l1: [__m512; 8] = std::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        f._mm512_add_ps(f._mm512_shuffle_f32x4::<0x44>(a, b), f._mm512_shuffle_f32x4::<0xEE>(a, b))
    });
    // 128-bit quarters of each half.
    let l2: [__m512; 4] = std::array::from_fn(|i| {
        let (a, b) = (l1[2 * i], l1[2 * i + 1]);
        f._mm512_add_ps(f._mm512_shuffle_f32x4::<0x88>(a, b), f._mm512_shuffle_f32x4::<0xDD>(a, b))
    });
    // Pairs of lanes within each 128-bit quarter.
    let l3: [__m512; 2] = std::array::from_fn(|i| {
        let (a, b) = (l2[2 * i], l2[2 * i + 1]);
        f._mm512_add_ps(f._mm512_shuffle_ps::<0x44>(a, b), f._mm512_shuffle_ps::<0xEE>(a, b))
    });
    // Single lanes.
    let (a, b) = (l3[0], l3[1]);
    pulp::cast(f._mm512_add_ps(f._mm512_shuffle_ps::<0x88>(a, b), f._mm512_shuffle_ps::<0xDD>(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_total_adds_every_lane() {
        let v: [f32; LANES] = std::array::from_fn(|l| l as f32 + 0.5);
        assert_eq!(lane_total(&v), (0..LANES).map(|l| l as f32 + 0.5).sum::<f32>());
    }

    #[test]
    fn every_instruction_set_sums_16_rows_with_the_same_bits() {
        // Values of very different sizes, so that any other order of additions rounds
        // differently.
        let rows: [[f32; LANES]; GROUP] = std::array::from_fn(|r| {
            std::array::from_fn(|l| ((r * 37 + l * 11) % 23) as f32 * 10f32.powi((l as i32 * 3 + r as i32) % 9 - 4))
        });
        let want: [f32; GROUP] = std::array::from_fn(|r| lane_total(&rows[r]));
        assert_eq!(lane_totals16(pulp::Scalar, &rows), want);
        struct Op<'a>(&'a [[f32; LANES]; GROUP]);
        impl pulp::WithSimd for Op<'_> {
            type Output = [f32; GROUP];
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, simd: S) -> [f32; GROUP] {
                lane_totals16(simd, self.0)
            }
        }
        assert_eq!(pulp::Arch::new().dispatch(Op(&rows)), want);
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = pulp::x86::V4::try_new() {
            assert_eq!(transposed_v4(v4, &rows), want);
        }
        // A different tree would give other bits on these rows.
        let sequential: [f32; GROUP] = std::array::from_fn(|r| rows[r].iter().sum());
        assert_ne!(sequential, want);
    }
}
