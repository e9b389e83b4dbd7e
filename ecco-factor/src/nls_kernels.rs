//! The kernels of the subproblem solver on one panel, in explicit SIMD: `Q d` with
//! the half-step Hessian `Q` packed for it, one Armijo trial, the gradient update
//! and `‖P∇f‖²`.
//!
//! A panel is `k` rows of [`LANES`] columns; with `N` lanes per SIMD vector each row
//! is `LANES / N` vectors ("chunks"), and every kernel runs chunk by chunk, keeping
//! its accumulators in registers. Each lane (column) sees the same operations in the
//! same order whatever `N` is, and lane sums go through [`lane_sum`], so results do
//! not depend on the instruction set.
//!
//! `Q d` accumulates a tile of up to [`max_tile_rows`] output rows at once (one
//! register per row), reading each vector of `d` once per tile: one output row at a
//! time would be a chain of `k` dependent multiply-adds. `Q` is packed tile by tile,
//! column-major within a tile, so the kernel reads it in order. [`trial2`] runs the
//! trials of two panels together: each broadcast entry of `Q` feeds both panels'
//! accumulators (tiles of up to [`max_pair_tile_rows`]), and the two dependency
//! chains overlap.

use pulp::Simd;

use crate::panels::LANES;

/// One panel row: the values of one row of `Z` over the panel's columns.
pub(crate) type Row = [f32; LANES];

/// Output rows per tile of `Q d` for the SIMD type `S`: the accumulators, a vector
/// of `d` and a broadcast must fit the registers (16 of 256 bits, 32 of 512 bits).
#[inline(always)]
pub(crate) fn max_tile_rows<S: Simd>() -> usize {
    if size_of::<S::f32s>() >= 64 { 16 } else { 12 }
}

/// Output rows per tile of `Q d` for two panels at once ([`apply2`]): twice the
/// accumulators, so about half as many rows.
#[inline(always)]
pub(crate) fn max_pair_tile_rows<S: Simd>() -> usize {
    if size_of::<S::f32s>() >= 64 { 14 } else { 6 }
}

/// `Q` in tiles of output rows (see the module notes).
#[derive(Debug, Clone)]
pub(crate) struct PackedQ {
    k: usize,
    /// `(first row, rows)` of each tile.
    tiles: Vec<(usize, usize)>,
    /// Tile after tile: for each column `j`, the tile's rows of column `j`.
    data: Vec<f32>,
}

impl PackedQ {
    /// Rows (and columns) of `Q`.
    #[inline(always)]
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Packs the row-major `k × k` matrix `q` in tiles of at most `max_rows` (≤ 16)
    /// rows, split evenly (`k = 20`, 16 rows at most: two tiles of 10).
    pub(crate) fn new(k: usize, q: &[f32], max_rows: usize) -> Self {
        let count = k.div_ceil(max_rows.clamp(1, 16)).max(1);
        let mut tiles = Vec::with_capacity(count);
        let mut first = 0;
        for t in 0..count {
            let rows = k / count + usize::from(t < k % count);
            tiles.push((first, rows));
            first += rows;
        }
        let mut data = Vec::with_capacity(k * k);
        for &(first, rows) in &tiles {
            for j in 0..k {
                for r in first..first + rows {
                    data.push(q[r * k + j]);
                }
            }
        }
        Self { k, tiles, data }
    }
}

/// Vectors per panel row.
#[inline(always)]
pub(crate) fn chunks<S: Simd>() -> usize {
    LANES / S::F32_LANES
}

/// Copies the panel `rows` (`k` rows of [`LANES`]) into `out` chunk-major: chunk
/// `c` (lanes `c N .. (c + 1) N`) of every row, then chunk `c + 1`; each kernel
/// then reads one chunk as a contiguous run of `k` vectors.
#[inline(always)]
pub(crate) fn gather<S: Simd>(rows: &[Row], out: &mut [S::f32s]) {
    let k = rows.len();
    for (r, row) in rows.iter().enumerate() {
        for (c, &v) in S::as_simd_f32s(row).0.iter().enumerate() {
            out[c * k + r] = v;
        }
    }
}

/// The inverse of [`gather`].
#[inline(always)]
pub(crate) fn scatter<S: Simd>(chunked: &[S::f32s], rows: &mut [Row]) {
    let k = rows.len();
    for (r, row) in rows.iter_mut().enumerate() {
        for (c, v) in S::as_mut_simd_f32s(row).0.iter_mut().enumerate() {
            *v = chunked[c * k + r];
        }
    }
}

/// Stores the lanes of `v` as chunk `c` of `row`.
#[inline(always)]
fn put<S: Simd>(row: &mut Row, c: usize, v: S::f32s) {
    S::as_mut_simd_f32s(row).0[c] = v;
}

/// `dst = Q src` for one chunk-major panel.
#[inline(always)]
pub(crate) fn apply<S: Simd>(simd: S, q: &PackedQ, src: &[S::f32s], dst: &mut [S::f32s]) {
    let k = q.k;
    for c in 0..chunks::<S>() {
        let rows = c * k..(c + 1) * k;
        let (src, dst) = (&src[rows.clone()], &mut dst[rows]);
        let mut offset = 0;
        for &(first, rows) in &q.tiles {
            let qt = &q.data[offset..offset + rows * k];
            let out = &mut dst[first..first + rows];
            macro_rules! tile {
                ($r:literal) => {
                    tile::<S, $r>(simd, qt, src, out)
                };
            }
            match_rows!(rows, tile);
            offset += rows * k;
        }
    }
}

/// `dst_a = Q src_a` and `dst_b = Q src_b` for two chunk-major panels at once: the
/// same operations per panel as [`apply`], in twice the independent accumulators,
/// each broadcast entry of `Q` feeding both.
#[inline(always)]
pub(crate) fn apply2<S: Simd>(
    simd: S,
    q: &PackedQ,
    (src_a, dst_a): (&[S::f32s], &mut [S::f32s]),
    (src_b, dst_b): (&[S::f32s], &mut [S::f32s]),
) {
    let k = q.k;
    for c in 0..chunks::<S>() {
        let rows = c * k..(c + 1) * k;
        let (src_a, dst_a) = (&src_a[rows.clone()], &mut dst_a[rows.clone()]);
        let (src_b, dst_b) = (&src_b[rows.clone()], &mut dst_b[rows]);
        let mut offset = 0;
        for &(first, rows) in &q.tiles {
            let qt = &q.data[offset..offset + rows * k];
            let out_a = &mut dst_a[first..first + rows];
            let out_b = &mut dst_b[first..first + rows];
            macro_rules! tile2 {
                ($r:literal) => {
                    tile2::<S, $r>(simd, qt, (src_a, out_a), (src_b, out_b))
                };
            }
            match_rows!(rows, tile2);
            offset += rows * k;
        }
    }
}

/// Calls `$tile!(R)` with the literal `R` equal to `$rows` (1 to 16).
macro_rules! match_rows {
    ($rows:expr, $tile:ident) => {
        match $rows {
            1 => $tile!(1),
            2 => $tile!(2),
            3 => $tile!(3),
            4 => $tile!(4),
            5 => $tile!(5),
            6 => $tile!(6),
            7 => $tile!(7),
            8 => $tile!(8),
            9 => $tile!(9),
            10 => $tile!(10),
            11 => $tile!(11),
            12 => $tile!(12),
            13 => $tile!(13),
            14 => $tile!(14),
            15 => $tile!(15),
            _ => $tile!(16),
        }
    };
}
use match_rows;

/// One tile of `R` output rows on one chunk.
#[inline(always)]
fn tile<S: Simd, const R: usize>(simd: S, qt: &[f32], src: &[S::f32s], out: &mut [S::f32s]) {
    let mut acc = [simd.splat_f32s(0.0); R];
    for (&s, qc) in src.iter().zip(qt.as_chunks::<R>().0) {
        for r in 0..R {
            acc[r] = simd.mul_add_f32s(simd.splat_f32s(qc[r]), s, acc[r]);
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a;
    }
}

/// One tile of `R` output rows on one chunk of two panels.
#[inline(always)]
fn tile2<S: Simd, const R: usize>(
    simd: S,
    qt: &[f32],
    (src_a, out_a): (&[S::f32s], &mut [S::f32s]),
    (src_b, out_b): (&[S::f32s], &mut [S::f32s]),
) {
    let (mut acc_a, mut acc_b) = ([simd.splat_f32s(0.0); R], [simd.splat_f32s(0.0); R]);
    for ((&sa, &sb), qc) in src_a.iter().zip(src_b).zip(qt.as_chunks::<R>().0) {
        for r in 0..R {
            let qv = simd.splat_f32s(qc[r]);
            acc_a[r] = simd.mul_add_f32s(qv, sa, acc_a[r]);
            acc_b[r] = simd.mul_add_f32s(qv, sb, acc_b[r]);
        }
    }
    for (o, a) in out_a.iter_mut().zip(acc_a) {
        *o = a;
    }
    for (o, a) in out_b.iter_mut().zip(acc_b) {
        *o = a;
    }
}

/// Sum of the lanes as a fixed pairwise tree in `f64` (lane `l` plus lane `l + 8`,
/// and so on), written out so that it compiles to a few vector adds.
#[inline(always)]
pub(crate) fn lane_sum(v: &Row) -> f64 {
    const { assert!(LANES == 16) };
    let mut w8 = [0.0_f64; 8];
    for l in 0..8 {
        w8[l] = f64::from(v[l]) + f64::from(v[l + 8]);
    }
    let mut w4 = [0.0_f64; 4];
    for l in 0..4 {
        w4[l] = w8[l] + w8[l + 4];
    }
    (w4[0] + w4[2]) + (w4[1] + w4[3])
}

/// `Σ_r f(a_r, b_r)` over the rows of one chunk, in four interleaved accumulators
/// (rows `r ≡ i mod 4` into accumulator `i`) added as `(0 + 1) + (2 + 3)`: a short
/// dependency chain in a fixed order.
#[inline(always)]
fn sum_rows<S: Simd>(simd: S, a: &[S::f32s], b: &[S::f32s], f: impl Fn(S::f32s, S::f32s, S::f32s) -> S::f32s) -> S::f32s {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [zero; 4];
    let (a4, a_rest) = a.as_chunks::<4>();
    let (b4, b_rest) = b.as_chunks::<4>();
    for (a, b) in a4.iter().zip(b4) {
        for i in 0..4 {
            acc[i] = f(a[i], b[i], acc[i]);
        }
    }
    for (i, (&a, &b)) in a_rest.iter().zip(b_rest).enumerate() {
        acc[i] = f(a, b, acc[i]);
    }
    add_accumulators(simd, acc)
}

/// The four interleaved row accumulators of [`sum_rows`] (and of the kernels that sum
/// rows the same way while doing other work) added as `(0 + 1) + (2 + 3)`.
#[inline(always)]
fn add_accumulators<S: Simd>(simd: S, acc: [S::f32s; 4]) -> S::f32s {
    simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]))
}

/// `g²` where the entry is free to move (`g < 0` or `z > 0`), else 0.
#[inline(always)]
fn free_sq<S: Simd>(simd: S, z: S::f32s, g: S::f32s) -> S::f32s {
    let zero = simd.splat_f32s(0.0);
    let free = simd.or_m32s(simd.less_than_f32s(g, zero), simd.greater_than_f32s(z, zero));
    simd.select_f32s(free, simd.mul_f32s(g, g), zero)
}

/// `g = Q z − b` for one chunk-major panel; returns its `‖P∇f‖²`.
#[inline(always)]
pub(crate) fn refresh<S: Simd>(simd: S, q: &PackedQ, b: &[S::f32s], z: &[S::f32s], g: &mut [S::f32s]) -> f64 {
    apply(simd, q, z, g);
    update_pg(simd, q.k, z, b, g, |g, b| simd.sub_f32s(g, b))
}

/// `g += qd` (the gradient at the new point `z` after a step `d`, `qd = Q d`) for
/// one chunk-major panel; returns the new `‖P∇f‖²`.
#[inline(always)]
pub(crate) fn step_gradient<S: Simd>(simd: S, k: usize, z: &[S::f32s], qd: &[S::f32s], g: &mut [S::f32s]) -> f64 {
    update_pg(simd, k, z, qd, g, |g, qd| simd.add_f32s(g, qd))
}

/// `g = f(g, v)` entry by entry and, in the same pass, the panel's `‖P∇f‖²` at `z`:
/// per lane, `g²` where the entry is free to move, summed over the rows as
/// [`sum_rows`] does, then over the lanes by [`lane_sum`].
#[inline(always)]
fn update_pg<S: Simd>(simd: S, k: usize, z: &[S::f32s], v: &[S::f32s], g: &mut [S::f32s], f: impl Fn(S::f32s, S::f32s) -> S::f32s) -> f64 {
    let zero = simd.splat_f32s(0.0);
    let mut lanes = [0.0; LANES];
    for c in 0..chunks::<S>() {
        let rows = c * k..(c + 1) * k;
        let (z, v, g) = (&z[rows.clone()], &v[rows.clone()], &mut g[rows]);
        let mut acc = [zero; 4];
        let ((z4, z_rest), (v4, v_rest)) = (z.as_chunks::<4>(), v.as_chunks::<4>());
        let (g4, g_rest) = g.as_chunks_mut::<4>();
        for ((z, v), g) in z4.iter().zip(v4).zip(g4) {
            for i in 0..4 {
                g[i] = f(g[i], v[i]);
                acc[i] = simd.add_f32s(acc[i], free_sq(simd, z[i], g[i]));
            }
        }
        for (i, ((&z, &v), g)) in z_rest.iter().zip(v_rest).zip(g_rest).enumerate() {
            *g = f(*g, v);
            acc[i] = simd.add_f32s(acc[i], free_sq(simd, z, *g));
        }
        put::<S>(&mut lanes, c, add_accumulators(simd, acc));
    }
    lane_sum(&lanes)
}

/// What one Armijo trial found.
pub(crate) struct Trial {
    /// Lin's sufficient-decrease test value `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩`, summed
    /// per lane in `f32`, then over the lanes in `f64`.
    pub(crate) decrease: f64,
    /// Whether some entry moved without being clipped (`z − α g > 0`, `g ≠ 0`).
    pub(crate) moving: bool,
}

/// The trial point of one Armijo trial: `zn = P[z − α g]`, `d = zn − z`, `qd = Q d`
/// (chunk-major panels).
pub(crate) struct TrialPoint<'a, V> {
    pub(crate) zn: &'a mut [V],
    pub(crate) d: &'a mut [V],
    pub(crate) qd: &'a mut [V],
}

/// One trial at step `alpha` from `z` with gradient `g` (chunk-major panels), with
/// Lin's constant `sigma`.
#[inline(always)]
pub(crate) fn trial<S: Simd>(
    simd: S,
    q: &PackedQ,
    z: &[S::f32s],
    g: &[S::f32s],
    (alpha, sigma): (f32, f32),
    out: TrialPoint<'_, S::f32s>,
) -> Trial {
    let mut gd = [0.0; LANES];
    let moving = trial_point(simd, q.k, z, g, alpha, out.zn, out.d, &mut gd);
    apply(simd, q, out.d, out.qd);
    Trial { decrease: decrease(simd, q.k, &gd, out.d, out.qd, sigma), moving }
}

/// One panel's part of [`trial2`]: `z`, `g`, the step `alpha` and where the trial
/// point goes.
pub(crate) type TrialInput<'a, V> = (&'a [V], &'a [V], f32, TrialPoint<'a, V>);

/// One trial on each of two panels (as [`trial`] on each, with one [`apply2`]).
#[inline(always)]
pub(crate) fn trial2<S: Simd>(
    simd: S,
    q: &PackedQ,
    sigma: f32,
    (z_a, g_a, alpha_a, out_a): TrialInput<'_, S::f32s>,
    (z_b, g_b, alpha_b, out_b): TrialInput<'_, S::f32s>,
) -> (Trial, Trial) {
    let (mut gd_a, mut gd_b) = ([0.0; LANES], [0.0; LANES]);
    let moving_a = trial_point(simd, q.k, z_a, g_a, alpha_a, out_a.zn, out_a.d, &mut gd_a);
    let moving_b = trial_point(simd, q.k, z_b, g_b, alpha_b, out_b.zn, out_b.d, &mut gd_b);
    apply2(simd, q, (out_a.d, out_a.qd), (out_b.d, out_b.qd));
    (
        Trial { decrease: decrease(simd, q.k, &gd_a, out_a.d, out_a.qd, sigma), moving: moving_a },
        Trial { decrease: decrease(simd, q.k, &gd_b, out_b.d, out_b.qd, sigma), moving: moving_b },
    )
}

/// `zn = P[z − α g]`, `d = zn − z` and, per lane, `⟨g, d⟩` into `gd` (summed as
/// [`sum_rows`] does); returns whether some entry moved without being clipped.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn trial_point<S: Simd>(
    simd: S,
    k: usize,
    z: &[S::f32s],
    g: &[S::f32s],
    alpha: f32,
    zn: &mut [S::f32s],
    d: &mut [S::f32s],
    gd: &mut Row,
) -> bool {
    let zero = simd.splat_f32s(0.0);
    let neg_alpha = simd.splat_f32s(-alpha);
    let mut moving = zero;
    for c in 0..chunks::<S>() {
        let rows = c * k..(c + 1) * k;
        let (z, g, zn, d) = (&z[rows.clone()], &g[rows.clone()], &mut zn[rows.clone()], &mut d[rows]);
        let mut acc = [zero; 4];
        let ((z4, z_rest), (g4, g_rest)) = (z.as_chunks::<4>(), g.as_chunks::<4>());
        let ((zn4, zn_rest), (d4, d_rest)) = (zn.as_chunks_mut::<4>(), d.as_chunks_mut::<4>());
        for (((z, g), zn), d) in z4.iter().zip(g4).zip(zn4).zip(d4) {
            for i in 0..4 {
                (zn[i], d[i]) = trial_entry(simd, neg_alpha, z[i], g[i], &mut acc[i], &mut moving);
            }
        }
        for (i, (((&z, &g), zn), d)) in z_rest.iter().zip(g_rest).zip(zn_rest).zip(d_rest).enumerate() {
            (*zn, *d) = trial_entry(simd, neg_alpha, z, g, &mut acc[i], &mut moving);
        }
        put::<S>(gd, c, add_accumulators(simd, acc));
    }
    simd.reduce_max_f32s(moving) > 0.0
}

/// One entry of [`trial_point`]: returns its trial value and step, adds `g d` to
/// `acc` and sets `moving` to 1 in the lanes that moved without being clipped. (A
/// function, not a closure: closures are not always inlined into the caller's
/// instruction set.)
#[inline(always)]
fn trial_entry<S: Simd>(
    simd: S,
    neg_alpha: S::f32s,
    z: S::f32s,
    g: S::f32s,
    acc: &mut S::f32s,
    moving: &mut S::f32s,
) -> (S::f32s, S::f32s) {
    let zero = simd.splat_f32s(0.0);
    let t = simd.mul_add_f32s(neg_alpha, g, z);
    let v = simd.max_f32s(t, zero);
    let step = simd.sub_f32s(v, z);
    *acc = simd.mul_add_f32s(g, step, *acc);
    let free = simd.and_m32s(simd.greater_than_f32s(t, zero), simd.not_m32s(simd.equal_f32s(g, zero)));
    *moving = simd.select_f32s(free, simd.splat_f32s(1.0), *moving);
    (v, step)
}

/// Lin's sufficient-decrease test value `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩`, with `⟨g, d⟩`
/// per lane from [`trial_point`].
#[inline(always)]
fn decrease<S: Simd>(simd: S, k: usize, gd: &Row, d: &[S::f32s], qd: &[S::f32s], sigma: f32) -> f64 {
    let (gd_weight, dqd_weight) = (simd.splat_f32s(1.0 - sigma), simd.splat_f32s(0.5));
    let mut lanes = [0.0; LANES];
    // One vector of `gd` per chunk.
    for (c, &gd) in S::as_simd_f32s(gd).0.iter().enumerate() {
        let rows = c * k..(c + 1) * k;
        let (d, qd) = (&d[rows.clone()], &qd[rows]);
        let dqd = sum_rows(simd, d, qd, |a, b, acc| simd.mul_add_f32s(a, b, acc));
        let test = simd.mul_add_f32s(gd_weight, gd, simd.mul_f32s(dqd_weight, dqd));
        put::<S>(&mut lanes, c, test);
    }
    lane_sum(&lanes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_apply_matches_naive_for_all_tilings() {
        for k in [1, 3, 5, 10, 13, 17] {
            let q: Vec<f32> = (0..k * k).map(|i| ((i * 7) % 11) as f32 - 4.0).collect();
            let src: Vec<Row> = (0..k).map(|r| std::array::from_fn(|l| ((r * 5 + l * 3) % 7) as f32 * 0.5)).collect();
            for max_rows in [1, 4, 6, 16] {
                let packed = PackedQ::new(k, &q, max_rows);
                let mut dst = vec![[0.0; LANES]; k];
                let (mut a, mut b) = (vec![0.0; k * LANES], vec![0.0; k * LANES]);
                gather::<pulp::Scalar>(&src, &mut a);
                apply(pulp::Scalar, &packed, &a, &mut b);
                scatter::<pulp::Scalar>(&b, &mut dst);
                let mut simd_dst = vec![[0.0; LANES]; k];
                struct Op<'a>(&'a PackedQ, &'a [Row], &'a mut [Row]);
                impl pulp::WithSimd for Op<'_> {
                    type Output = ();
                    fn with_simd<S: Simd>(self, simd: S) {
                        let k = self.1.len();
                        let zero = simd.splat_f32s(0.0);
                        let (mut a, mut b) = (vec![zero; k * chunks::<S>()], vec![zero; k * chunks::<S>()]);
                        gather::<S>(self.1, &mut a);
                        apply(simd, self.0, &a, &mut b);
                        scatter::<S>(&b, self.2);
                    }
                }
                pulp::Arch::new().dispatch(Op(&packed, &src, &mut simd_dst));
                assert_eq!(dst, simd_dst);
                for i in 0..k {
                    for l in 0..LANES {
                        let want: f32 = (0..k).map(|j| q[i * k + j] * src[j][l]).sum();
                        assert_eq!(dst[i][l], want, "k={k} rows={max_rows} ({i}, {l})");
                    }
                }
            }
        }
    }

    #[test]
    fn lane_sum_adds_every_lane() {
        let v: Row = std::array::from_fn(|l| l as f32 + 0.5);
        assert_eq!(lane_sum(&v), (0..LANES).map(|l| l as f64 + 0.5).sum::<f64>());
    }
}
