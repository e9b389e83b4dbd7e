//! The products of an NMF iteration with the data, `Wᵀ X` and `H Xᵀ`, and the Gram
//! matrices `WᵀW`, `H Hᵀ`, on panels.
//!
//! The data `X [p, n]` is copied once into [`BlockedData`]: blocks of
//! [`block_cols`] columns, each a run of panels of [`LANES`] columns stored
//! row-major (`[p][LANES]`), so that a block is one sequential read, fits in L2
//! cache, and a panel of `X` lines up with a panel of `H`. An iteration reads
//! each block once: `Wᵀ X` for its columns, the `H` half-step on them, then its
//! share of `H Xᵀ` and `H Hᵀ` with the new `H` while the block is still in cache
//! (see `nmf`). The kernels keep `R × LANES` accumulators in registers and use fused
//! multiply-adds; block partial sums are added in block order, so results do not
//! depend on the thread count.

use nalgebra::DMatrix;

use crate::big_buffer::BigBuffer;
use crate::exec::Exec;
use crate::lane_sums::{GROUP, lane_totals16};
use crate::panels::LANES;

/// The most columns of `X` per block.
const MAX_BLOCK_COLS: usize = 512;
/// The size of a block that [`block_cols`] aims at: well inside a 1–2 MiB L2 cache,
/// with room for the factors.
const BLOCK_BYTES: usize = 384 * 1024;

/// Columns of `X` per block for `p` rows: as many as fit [`BLOCK_BYTES`], a multiple
/// of `2 LANES` (the products take two panels at a time), at most
/// [`MAX_BLOCK_COLS`]. Larger blocks mean fewer per-block costs (the solver's set-up,
/// the lane sums of `H Xᵀ`, the block partial sums): for 157 rows, 512 columns
/// instead of 256 made a fit 3–8 % faster.
pub(crate) fn block_cols(p: usize) -> usize {
    let cols = BLOCK_BYTES / size_of::<f32>() / p.max(1);
    (cols / (2 * LANES) * (2 * LANES)).clamp(2 * LANES, MAX_BLOCK_COLS)
}

/// `X [p, n]` in column blocks (see the module notes), the last one zero-padded.
#[derive(Debug)]
pub(crate) struct BlockedData {
    p: usize,
    n: usize,
    /// Columns per block, [`block_cols`] of `p`.
    cols: usize,
    data: BigBuffer,
}

/// What [`BlockedData::new`] saw of the data while copying it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scan {
    /// Whether every entry is finite and non-negative.
    pub(crate) valid: bool,
    /// The sum of the entries: per block of columns in `f64` over 8 interleaved
    /// lanes, then over the blocks in order (so the same whatever the thread count).
    pub(crate) sum: f64,
}

impl BlockedData {
    /// Copies `x` into blocks, block by block on `exec`, checking and summing the
    /// entries on the way (one read of `x` for all three).
    pub(crate) fn new(x: &DMatrix<f32>, exec: &Exec) -> (Self, Scan) {
        let (p, n) = x.shape();
        let cols = block_cols(p);
        let blocks = n.div_ceil(cols);
        let mut data = BigBuffer::zeros(blocks * p * cols);
        let columns = x.as_slice();
        let scans = exec.map_chunks(data.as_mut_slice(), p * cols, |b, block| {
            let first = b * cols;
            let last = n.min(first + cols);
            for c in first..last {
                let base = ((c - first) / LANES) * p * LANES + c % LANES;
                for (r, &v) in columns[c * p..(c + 1) * p].iter().enumerate() {
                    block[base + r * LANES] = v;
                }
            }
            scan(&columns[first * p..last * p])
        });
        let valid = scans.iter().all(|s| s.valid);
        let sum = scans.iter().map(|s| s.sum).sum();
        (Self { p, n, cols, data }, Scan { valid, sum })
    }

    /// Rows `p` of `X`.
    pub(crate) fn p(&self) -> usize {
        self.p
    }

    /// Columns `n` of `X`.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Columns per block.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Number of blocks.
    pub(crate) fn blocks(&self) -> usize {
        self.n.div_ceil(self.cols)
    }

    /// Block `b`: its panels of [`LANES`] columns one after the other, each
    /// `[p][LANES]` row-major.
    pub(crate) fn block(&self, b: usize) -> &[f32] {
        let len = self.p * self.cols;
        &self.data.as_slice()[b * len..(b + 1) * len]
    }
}

/// [`Scan`] of one run of entries.
fn scan(values: &[f32]) -> Scan {
    let mut lanes = [0.0_f64; 8];
    let mut valid = true;
    let (chunks, rest) = values.as_chunks::<8>();
    for c in chunks {
        for (s, &v) in lanes.iter_mut().zip(c) {
            valid &= (0.0..=f32::MAX).contains(&v);
            *s += f64::from(v);
        }
    }
    for &v in rest {
        valid &= (0.0..=f32::MAX).contains(&v);
    }
    let sum = lanes.iter().sum::<f64>() + rest.iter().map(|&v| f64::from(v)).sum::<f64>();
    Scan { valid, sum }
}

/// `out = Wᵀ X_b` for one block: `w_rows` is `W [p, k]` row-major, `out` the block's
/// panels (one per [`LANES`] columns of the block, `k` rows each).
pub(crate) fn wt_x_block(k: usize, w_rows: &[f32], xb: &[f32], out: &mut [f32]) {
    pulp::Arch::new().dispatch(WtXOp { k, w_rows, xb, out });
}

/// [`wt_x_block`] as a `pulp` operation.
struct WtXOp<'a> {
    k: usize,
    w_rows: &'a [f32],
    xb: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for WtXOp<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (k, w_rows, xb, out) = (self.k, self.w_rows, self.xb, self.out);
        each_row_tile!(wt_x_rows::<S>(simd, k, w_rows, xb, out));
    }
}

/// Rows of the factor per register tile for the SIMD type `S`: two columns of `R`
/// accumulators (one SIMD vector each), 10 rows in 32 registers of 512 bits, 5 in 16
/// of 256 bits.
#[inline(always)]
fn tile_rows<S: pulp::Simd>() -> usize {
    if size_of::<S::f32s>() >= 64 { 10 } else { 5 }
}

/// `k` rows split evenly into tiles of at most `max` rows (`k = 12`, 10 at most:
/// two tiles of 6).
fn row_tiles(k: usize, max: usize) -> impl Iterator<Item = usize> {
    let count = k.div_ceil(max).max(1);
    (0..count).map(move |t| k / count + usize::from(t < k % count))
}

/// Calls `$kernel::<S, R>(simd, k, r0, args…)` for each tile of [`row_tiles`] of the
/// `k` rows (at most [`tile_rows`] for `S`), with `R` the tile's row count as a
/// literal (1 to 10) and `r0` its first row.
macro_rules! each_row_tile {
    ($kernel:ident::<$s:ty>($simd:expr, $k:expr, $($arg:expr),*)) => {{
        let mut r0 = 0;
        for rows in row_tiles($k, tile_rows::<$s>()) {
            match rows {
                1 => $kernel::<$s, 1>($simd, $k, r0, $($arg),*),
                2 => $kernel::<$s, 2>($simd, $k, r0, $($arg),*),
                3 => $kernel::<$s, 3>($simd, $k, r0, $($arg),*),
                4 => $kernel::<$s, 4>($simd, $k, r0, $($arg),*),
                5 => $kernel::<$s, 5>($simd, $k, r0, $($arg),*),
                6 => $kernel::<$s, 6>($simd, $k, r0, $($arg),*),
                7 => $kernel::<$s, 7>($simd, $k, r0, $($arg),*),
                8 => $kernel::<$s, 8>($simd, $k, r0, $($arg),*),
                9 => $kernel::<$s, 9>($simd, $k, r0, $($arg),*),
                _ => $kernel::<$s, 10>($simd, $k, r0, $($arg),*),
            }
            r0 += rows;
        }
    }};
}
use each_row_tile;

/// Rows `r0 .. r0 + R` of `Wᵀ X_b`. The block's panels are `nc = LANES / N` SIMD
/// vectors wide, so a block of `c` columns is `c / N` vector-columns (panel `v / nc`,
/// chunk `v % nc`); two at a time, `2 R` accumulators run over the rows of `X`, each
/// broadcast entry of `W` feeding both. Every lane sees the same multiply-adds in the
/// same order whatever `N` is.
#[inline(always)]
fn wt_x_rows<S: pulp::Simd, const R: usize>(simd: S, k: usize, r0: usize, w_rows: &[f32], xb: &[f32], out: &mut [f32]) {
    let p = w_rows.len() / k;
    let nc = LANES / S::F32_LANES;
    let zero = simd.splat_f32s(0.0);
    let xs = S::as_simd_f32s(xb).0;
    let outs = S::as_mut_simd_f32s(out).0;
    // Vector-column `v` of `X` is the `p` vectors `xs[base(v) + i nc]`, of the output
    // the `k` vectors `outs[out_base(v) + r nc]`.
    let base = |v: usize| (v / nc) * p * nc + v % nc;
    let out_base = |v: usize| (v / nc) * k * nc + v % nc;
    for v in (0..xb.len() / p / S::F32_LANES).step_by(2) {
        let (x0, x1) = (&xs[base(v)..], &xs[base(v + 1)..]);
        let (mut a0, mut a1) = ([zero; R], [zero; R]);
        let (p0, p1) = (x0.as_ptr(), x1.as_ptr());
        for (i, w) in w_rows.chunks_exact(k).enumerate() {
            prefetch(simd, p0.wrapping_add((i + AHEAD) * nc));
            prefetch(simd, p1.wrapping_add((i + AHEAD) * nc));
            let (xv0, xv1) = (x0[i * nc], x1[i * nc]);
            let w = &w[r0..r0 + R];
            for r in 0..R {
                let wr = simd.splat_f32s(w[r]);
                a0[r] = simd.mul_add_f32s(wr, xv0, a0[r]);
                a1[r] = simd.mul_add_f32s(wr, xv1, a1[r]);
            }
        }
        let (o0, o1) = (out_base(v) + r0 * nc, out_base(v + 1) + r0 * nc);
        for r in 0..R {
            outs[o0 + r * nc] = a0[r];
            outs[o1 + r * nc] = a1[r];
        }
    }
}

/// Rows of `X` ahead of the current one that [`wt_x_rows`] asks the CPU to prefetch:
/// after the `H` half-step of the previous block, the hardware prefetcher needs a
/// while to ramp up on a block that is not in cache (measured 2–3 % of a fit).
const AHEAD: usize = 16;

/// Asks the CPU to bring the cache line at `ptr` into L1 (x86-64 with AVX2 or
/// AVX-512; a no-op elsewhere). A hint only: `ptr` is never dereferenced, so it may
/// point past the end of the data.
#[inline(always)]
fn prefetch<S: pulp::Simd, T>(simd: S, ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        let any = &simd as &dyn Any;
        if let Some(v4) = any.downcast_ref::<pulp::x86::V4>() {
            v4.sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
        } else if let Some(v3) = any.downcast_ref::<pulp::x86::V3>() {
            v3.sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
        }
    }
    let _ = (simd, ptr);
}

/// `out [k, p]` (row-major) `= H_b X_bᵀ` for one block, from the block's panels `h`.
pub(crate) fn h_xt_block(k: usize, h: &[f32], xb: &[f32], out: &mut [f32]) {
    pulp::Arch::new().dispatch(HXtOp { k, h, xb, out });
}

/// [`h_xt_block`] as a `pulp` operation.
struct HXtOp<'a> {
    k: usize,
    h: &'a [f32],
    xb: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for HXtOp<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (k, h, xb, out) = (self.k, self.h, self.xb, self.out);
        each_row_tile!(h_xt_rows::<S>(simd, k, h, xb, out));
    }
}

/// Rows `r0 .. r0 + R` of `H_b X_bᵀ`, in groups of [`GROUP`] rows of `X`: for two rows
/// of `X` at a time and each SIMD vector of a panel row, `2 R` accumulators over the
/// block's panels (each loaded vector of `H` shared by the two rows of `X`, each
/// vector of `X` by the `R` rows of `H`), kept per lane; then the lanes of each
/// group are added by [`lane_totals16`] (the order of [`lane_total`](crate::lane_sums::lane_total)).
#[inline(always)]
fn h_xt_rows<S: pulp::Simd, const R: usize>(simd: S, k: usize, r0: usize, h: &[f32], xb: &[f32], out: &mut [f32]) {
    let p = xb.len() / (h.len() / k);
    let nc = LANES / S::F32_LANES;
    let zero = simd.splat_f32s(0.0);
    // Panel `i` of `H` is `k` rows of `nc` vectors, panel `i` of `X` is `p` rows.
    let h_panels = S::as_simd_f32s(h).0.chunks_exact(k * nc);
    let x_panels = S::as_simd_f32s(xb).0.chunks_exact(p * nc);
    let mut stage = [[[0.0_f32; LANES]; GROUP]; R];
    for g0 in (0..p).step_by(GROUP) {
        let rows = GROUP.min(p - g0);
        for i in (0..rows).step_by(2) {
            // The second row of an odd group's last pair repeats the first (and is
            // not kept).
            let i1 = if i + 1 < rows { i + 1 } else { i };
            for c in 0..nc {
                let (mut a0, mut a1) = ([zero; R], [zero; R]);
                for (xp, hp) in x_panels.clone().zip(h_panels.clone()) {
                    let (x0, x1) = (xp[(g0 + i) * nc + c], xp[(g0 + i1) * nc + c]);
                    let hp = &hp[r0 * nc + c..];
                    for r in 0..R {
                        let hr = hp[r * nc];
                        a0[r] = simd.mul_add_f32s(hr, x0, a0[r]);
                        a1[r] = simd.mul_add_f32s(hr, x1, a1[r]);
                    }
                }
                for r in 0..R {
                    S::as_mut_simd_f32s(&mut stage[r][i]).0[c] = a0[r];
                    S::as_mut_simd_f32s(&mut stage[r][i1]).0[c] = a1[r];
                }
            }
        }
        for (r, rows_r) in stage.iter().enumerate() {
            let sums = lane_totals16(simd, rows_r);
            out[(r0 + r) * p + g0..][..rows].copy_from_slice(&sums[..rows]);
        }
    }
}

/// Adds `Z Zᵀ` of the panels `z` (`k` rows each) to `out` (`k × k`).
pub(crate) fn add_gram(k: usize, z: &[f32], out: &mut [f64]) {
    pulp::Arch::new().dispatch(GramOp { k, z, out });
}

/// [`add_gram`] as a `pulp` operation.
struct GramOp<'a> {
    k: usize,
    z: &'a [f32],
    out: &'a mut [f64],
}

impl pulp::WithSimd for GramOp<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let (k, out) = (self.k, self.out);
        let z = self.z.as_chunks::<LANES>().0;
        let panels = z.len() / k.max(1);
        for r in 0..k {
            for s in r..k {
                let mut acc = [0.0_f32; LANES];
                for panel in 0..panels {
                    let (a, b) = (&z[panel * k + r], &z[panel * k + s]);
                    for l in 0..LANES {
                        acc[l] = a[l].mul_add(b[l], acc[l]);
                    }
                }
                let mut v = 0.0;
                for x in acc {
                    v += f64::from(x);
                }
                out[r * k + s] += v;
                if s != r {
                    out[s * k + r] += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panels::Panels;

    fn close(a: &DMatrix<f32>, b: &DMatrix<f64>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(&x, &y)| (f64::from(x) - y).abs() <= 1e-4 * (1.0 + y.abs()))
    }

    #[test]
    fn blocks_fit_the_budget() {
        assert_eq!(block_cols(157), 512);
        assert_eq!(block_cols(1000), 96);
        assert_eq!(block_cols(1_000_000), 2 * LANES);
        for p in [1, 157, 300, 1000, 5000] {
            assert!(block_cols(p).is_multiple_of(2 * LANES));
            assert!(block_cols(p) == 2 * LANES || p * block_cols(p) * 4 <= BLOCK_BYTES);
        }
    }

    #[test]
    fn block_products_match_naive() {
        // p: fewer rows than one group of lane sums, an odd number over two groups.
        for (k, p) in [(3, 9), (7, 9), (10, 9), (10, 33), (4, 16)] {
            let n = block_cols(p) + 40;
            let x = DMatrix::from_fn(p, n, |i, j| ((i * 31 + j * 17) % 13) as f32 / 13.0);
            let (data, scan) = BlockedData::new(&x, &Exec::Sequential);
            assert!(scan.valid);
            assert!((scan.sum - x.iter().map(|&v| f64::from(v)).sum::<f64>()).abs() < 1e-9 * scan.sum);
            assert_eq!((data.p(), data.n(), data.blocks()), (p, n, 2));
            let cols = data.cols();
            let wt = DMatrix::from_fn(k, p, |i, j| (i + 2 * j) as f32 / 10.0);
            let h = DMatrix::from_fn(k, n, |i, j| ((i + j) % 7) as f32 / 7.0);
            let hp = Panels::from_matrix(&h, cols);
            // W [p, k] row-major is Wᵀ [k, p] column-major.
            let w_rows = wt.as_slice();
            let mut wtx = Panels::zeros(k, n, cols);
            let mut hxt = DMatrix::<f32>::zeros(k, p);
            let block_len = k * cols;
            for b in 0..data.blocks() {
                let out = &mut wtx.as_mut_slice()[b * block_len..(b + 1) * block_len];
                wt_x_block(k, w_rows, data.block(b), out);
                let xb = data.block(b);
                let mut scalar = vec![0.0; block_len];
                pulp::Simd::vectorize(pulp::Scalar, WtXOp { k, w_rows, xb, out: &mut scalar });
                assert_eq!(out, &scalar[..], "k={k} p={p}");
                let mut part = vec![0.0; k * p];
                let hb = &hp.as_slice()[b * block_len..(b + 1) * block_len];
                h_xt_block(k, hb, data.block(b), &mut part);
                // Every instruction set gives the same bits.
                let xb = data.block(b);
                let mut scalar = vec![0.0; k * p];
                pulp::Simd::vectorize(pulp::Scalar, HXtOp { k, h: hb, xb, out: &mut scalar });
                assert_eq!(part, scalar, "k={k}");
                #[cfg(target_arch = "x86_64")]
                if let Some(v3) = pulp::x86::V3::try_new() {
                    let mut avx2 = vec![0.0; k * p];
                    pulp::Simd::vectorize(v3, HXtOp { k, h: hb, xb, out: &mut avx2 });
                    assert_eq!(part, avx2, "k={k}");
                }
                hxt += DMatrix::from_row_slice(k, p, &part);
            }
            let (x64, wt64, h64) = (x.map(f64::from), wt.map(f64::from), h.map(f64::from));
            assert!(close(&wtx.to_matrix(), &(&wt64 * &x64)), "k={k}");
            assert!(close(&hxt, &(&h64 * x64.transpose())), "k={k}");
            let mut g = vec![0.0; k * k];
            add_gram(k, hp.as_slice(), &mut g);
            let g = DMatrix::from_row_slice(k, k, &g).map(|v| v as f32);
            assert!(close(&g, &(&h64 * h64.transpose())));
        }
    }
}
