//! Per-column kernels of the projected-gradient half-step.
//!
//! The half-step variable `z` is a `[k, m]` column-major matrix: `m` independent
//! columns of `k` values sharing one `k × k` Hessian `Q = WᵀW`. Each kernel walks the
//! columns once with everything for a column in registers.
//!
//! Lin's line search needs `⟨d, Q d⟩` for every trial step `d(α) = P[z − α g] − z`.
//! Entries with `z = 0, g >= 0` never move; call `g'` the gradient with those zeroed.
//! Every other entry moves by `−α g` unless the projection clips it to `−z`, so
//! `d = −α g' + c` with `c` non-zero only on clipped entries, and
//! `Q d = −α (Q g') + Q c`. [`PrepFn`] computes `Q g'` once per iteration; each trial
//! ([`TrialFn`]) then costs one read of `z, g, Q g'` plus `Q c` on the few clipped
//! entries, instead of a dense `Q d` product per trial. [`AcceptFn`] applies the step
//! and updates `Q z` and the gradient the same way.
//!
//! The bodies are written once over a runtime `k` and instantiated for each
//! `k <= 32` (where the compiler unrolls them); larger `k` uses the generic loop.

/// `qg = Q g'` (see the module notes).
pub(crate) type PrepFn = fn(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &mut [f32]);

/// One trial at step `alpha`: returns `[⟨g, d⟩, ⟨d, Q d⟩, number of entries that
/// move without being clipped]`.
pub(crate) type TrialFn =
    fn(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &[f32], alpha: f32) -> [f64; 3];

/// Takes the step `alpha`: updates `z`, `zq = Q z` and `g = Q z − b` in place and
/// returns `‖P∇f‖²` at the new point.
pub(crate) type AcceptFn = fn(
    k: usize,
    q: &[f32],
    z: &mut [f32],
    g: &mut [f32],
    zq: &mut [f32],
    qg: &[f32],
    b: &[f32],
    alpha: f32,
) -> f64;

/// `dst = Q src` column by column.
pub(crate) type ApplyFn = fn(k: usize, q: &[f32], src: &[f32], dst: &mut [f32]);

/// Whether entry `(z, g)` is held at 0 by the bound for every step (`g' = 0`).
#[inline(always)]
fn pinned(z: f32, g: f32) -> bool {
    z <= 0.0 && g >= 0.0
}

#[inline(always)]
fn prep_body(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &mut [f32], gp: &mut [f32]) {
    for ((zj, gj), oj) in z
        .chunks_exact(k)
        .zip(g.chunks_exact(k))
        .zip(qg.chunks_exact_mut(k))
    {
        for r in 0..k {
            gp[r] = if pinned(zj[r], gj[r]) { 0.0 } else { gj[r] };
        }
        oj.fill(0.0);
        for (c, qc) in q.chunks_exact(k).enumerate() {
            let s = gp[c];
            for r in 0..k {
                oj[r] += qc[r] * s;
            }
        }
    }
}

/// Lanes of the flat elementwise loops (independent accumulators the compiler keeps
/// in SIMD registers).
const LANES: usize = 16;

/// Step of one entry: `(d, clipped, free)` with `d = −z` when the projection clips it,
/// `−α g` when it moves freely, 0 when pinned.
#[inline(always)]
fn entry_step(zv: f32, gv: f32, alpha: f32) -> (f32, bool, bool) {
    let free = !pinned(zv, gv);
    let clip = free & (zv - alpha * gv < 0.0);
    let dv = if clip {
        -zv
    } else if free {
        -alpha * gv
    } else {
        0.0
    };
    (dv, clip, free)
}

/// Columns per cache block of the trial and accept kernels: each block is swept by
/// the vectorised flat loops, then, only if something in it was clipped, column by
/// column while still in L1.
const CACHE_COLS: usize = 64;

/// `c = α g − z` on a clipped entry, 0 elsewhere (branch-free).
#[inline(always)]
fn clip_amount(zv: f32, gv: f32, alpha: f32) -> f32 {
    if entry_step(zv, gv, alpha).1 {
        alpha * gv - zv
    } else {
        0.0
    }
}

/// `c_j` of one column into `c`; whether any entry is clipped.
#[inline(always)]
fn column_clips(k: usize, zj: &[f32], gj: &[f32], alpha: f32, c: &mut [f32]) -> bool {
    let mut any = false;
    for r in 0..k {
        let cv = clip_amount(zj[r], gj[r], alpha);
        c[r] = cv;
        any |= cv != 0.0;
    }
    any
}

/// `Σ_j ⟨d_j, Q c_j⟩` over the columns of a block (`c = α g − z` where clipped), with
/// a dense `Q c_j` on each column that has a clip.
#[inline(always)]
fn clip_correction(
    k: usize,
    q: &[f32],
    z: &[f32],
    g: &[f32],
    alpha: f32,
    scratch: &mut [f32],
) -> f64 {
    let (c, qc) = scratch.split_at_mut(k);
    let mut total = 0.0_f64;
    for (zj, gj) in z.chunks_exact(k).zip(g.chunks_exact(k)) {
        if !column_clips(k, zj, gj, alpha, c) {
            continue;
        }
        apply_body(k, q, c, qc);
        let mut s = 0.0_f32;
        for r in 0..k {
            s += entry_step(zj[r], gj[r], alpha).0 * qc[r];
        }
        total += f64::from(s);
    }
    total
}

#[inline(always)]
fn trial_impl(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &[f32], alpha: f32) -> [f64; 3] {
    let block = CACHE_COLS * k;
    let mut scratch = vec![0.0_f32; 2 * k];
    let mut acc = [0.0_f64; 3];
    let mut moving = 0_u64;
    for ((zb, gb), qb) in z.chunks(block).zip(g.chunks(block)).zip(qg.chunks(block)) {
        // Flat pass: ⟨g, d⟩, ⟨d, Q g'⟩ and the entry counts, vectorised over LANES.
        let mut gd = [0.0_f32; LANES];
        let mut dqg = [0.0_f32; LANES];
        let mut nclip = [0_u32; LANES];
        let mut nfree = [0_u32; LANES];
        let (zc, zr) = zb.as_chunks::<LANES>();
        let (gc, gr) = gb.as_chunks::<LANES>();
        let (qc, qr) = qb.as_chunks::<LANES>();
        for ((zl, gl), ql) in zc.iter().zip(gc).zip(qc) {
            for l in 0..LANES {
                let (dv, clip, free) = entry_step(zl[l], gl[l], alpha);
                gd[l] += gl[l] * dv;
                dqg[l] += dv * ql[l];
                nclip[l] += u32::from(clip);
                nfree[l] += u32::from(free);
            }
        }
        for ((&zv, &gv), &qv) in zr.iter().zip(gr).zip(qr) {
            let (dv, clip, free) = entry_step(zv, gv, alpha);
            gd[0] += gv * dv;
            dqg[0] += dv * qv;
            nclip[0] += u32::from(clip);
            nfree[0] += u32::from(free);
        }
        let clipped: u32 = nclip.iter().sum();
        moving += u64::from(nfree.iter().sum::<u32>() - clipped);
        acc[0] += gd.iter().map(|&v| f64::from(v)).sum::<f64>();
        acc[1] += dqg.iter().map(|&v| f64::from(v)).sum::<f64>();
        if clipped > 0 {
            acc[2] += clip_correction(k, q, zb, gb, alpha, &mut scratch);
        }
    }
    [acc[0], -f64::from(alpha) * acc[1] + acc[2], moving as f64]
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn accept_impl(
    k: usize,
    q: &[f32],
    z: &mut [f32],
    g: &mut [f32],
    zq: &mut [f32],
    qg: &[f32],
    b: &[f32],
    alpha: f32,
) -> f64 {
    let block = CACHE_COLS * k;
    let mut scratch = vec![0.0_f32; 2 * k];
    let mut pg = 0.0_f64;
    for ((((zb, gb), zqb), qgb), bb) in z
        .chunks_mut(block)
        .zip(g.chunks_mut(block))
        .zip(zq.chunks_mut(block))
        .zip(qg.chunks(block))
        .zip(b.chunks(block))
    {
        // Q z ← Q z − α Q g' (+ Q c on clipped entries), counting the clips.
        let mut nclip = [0_u32; LANES];
        {
            let (zqc, zqr) = zqb.as_chunks_mut::<LANES>();
            let (qgc, qgr) = qgb.as_chunks::<LANES>();
            let (zc, zr) = zb.as_chunks::<LANES>();
            let (gc, gr) = gb.as_chunks::<LANES>();
            for (((a, qv), zl), gl) in zqc.iter_mut().zip(qgc).zip(zc).zip(gc) {
                for l in 0..LANES {
                    a[l] -= alpha * qv[l];
                    nclip[l] += u32::from(entry_step(zl[l], gl[l], alpha).1);
                }
            }
            for (((a, &qv), &zv), &gv) in zqr.iter_mut().zip(qgr).zip(zr).zip(gr) {
                *a -= alpha * qv;
                nclip[0] += u32::from(entry_step(zv, gv, alpha).1);
            }
        }
        if nclip.iter().any(|&n| n > 0) {
            let (c, qc) = scratch.split_at_mut(k);
            for ((zj, gj), zqj) in zb
                .chunks_exact(k)
                .zip(gb.chunks_exact(k))
                .zip(zqb.chunks_exact_mut(k))
            {
                if column_clips(k, zj, gj, alpha, c) {
                    apply_body(k, q, c, qc);
                    for (a, &v) in zqj.iter_mut().zip(qc.iter()) {
                        *a += v;
                    }
                }
            }
        }
        // z ← z + d, g ← Q z − b, and ‖P∇f‖² at the new point.
        let mut lanes = [0.0_f32; LANES];
        let (zc, zr) = zb.as_chunks_mut::<LANES>();
        let (gc, gr) = gb.as_chunks_mut::<LANES>();
        let (qc, qr) = zqb.as_chunks::<LANES>();
        let (bc, br) = bb.as_chunks::<LANES>();
        for (((zl, gl), ql), bl) in zc.iter_mut().zip(gc.iter_mut()).zip(qc).zip(bc) {
            for l in 0..LANES {
                let (dv, _, _) = entry_step(zl[l], gl[l], alpha);
                let znew = (zl[l] + dv).max(0.0);
                zl[l] = znew;
                let gnew = ql[l] - bl[l];
                gl[l] = gnew;
                lanes[l] += if gnew < 0.0 || znew > 0.0 {
                    gnew * gnew
                } else {
                    0.0
                };
            }
        }
        for (((zv, gv), &qv), &bv) in zr.iter_mut().zip(gr.iter_mut()).zip(qr).zip(br) {
            let (dv, _, _) = entry_step(*zv, *gv, alpha);
            let znew = (*zv + dv).max(0.0);
            *zv = znew;
            let gnew = qv - bv;
            *gv = gnew;
            lanes[0] += if gnew < 0.0 || znew > 0.0 {
                gnew * gnew
            } else {
                0.0
            };
        }
        pg += lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    pg
}

#[inline(always)]
fn apply_body(k: usize, q: &[f32], src: &[f32], dst: &mut [f32]) {
    for (s, o) in src.chunks_exact(k).zip(dst.chunks_exact_mut(k)) {
        o.fill(0.0);
        for (c, qc) in q.chunks_exact(k).enumerate() {
            let sv = s[c];
            for r in 0..k {
                o[r] += qc[r] * sv;
            }
        }
    }
}

fn prep_fixed<const K: usize>(_k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &mut [f32]) {
    prep_body(K, q, z, g, qg, &mut [0.0; K]);
}

fn prep_dyn(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &mut [f32]) {
    prep_body(k, q, z, g, qg, &mut vec![0.0; k]);
}

fn trial_fixed<const K: usize>(
    _k: usize,
    q: &[f32],
    z: &[f32],
    g: &[f32],
    qg: &[f32],
    alpha: f32,
) -> [f64; 3] {
    trial_impl(K, q, z, g, qg, alpha)
}

fn trial_dyn(k: usize, q: &[f32], z: &[f32], g: &[f32], qg: &[f32], alpha: f32) -> [f64; 3] {
    trial_impl(k, q, z, g, qg, alpha)
}

#[allow(clippy::too_many_arguments)]
fn accept_fixed<const K: usize>(
    _k: usize,
    q: &[f32],
    z: &mut [f32],
    g: &mut [f32],
    zq: &mut [f32],
    qg: &[f32],
    b: &[f32],
    alpha: f32,
) -> f64 {
    accept_impl(K, q, z, g, zq, qg, b, alpha)
}

#[allow(clippy::too_many_arguments)]
fn accept_dyn(
    k: usize,
    q: &[f32],
    z: &mut [f32],
    g: &mut [f32],
    zq: &mut [f32],
    qg: &[f32],
    b: &[f32],
    alpha: f32,
) -> f64 {
    accept_impl(k, q, z, g, zq, qg, b, alpha)
}

fn apply_fixed<const K: usize>(_k: usize, q: &[f32], src: &[f32], dst: &mut [f32]) {
    apply_body(K, q, src, dst);
}

fn apply_dyn(k: usize, q: &[f32], src: &[f32], dst: &mut [f32]) {
    apply_body(k, q, src, dst);
}

macro_rules! dispatch {
    ($k:expr, $fixed:ident, $dyn:ident) => {
        dispatch!(@ $k, $fixed, $dyn,
            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
    };
    (@ $k:expr, $fixed:ident, $dyn:ident, $($n:literal)*) => {
        match $k {
            $($n => $fixed::<$n> as _,)*
            _ => $dyn as _,
        }
    };
}

/// The [`PrepFn`] for `k`.
pub(crate) fn prep_kernel(k: usize) -> PrepFn {
    dispatch!(k, prep_fixed, prep_dyn)
}

/// The [`TrialFn`] for `k`.
pub(crate) fn trial_kernel(k: usize) -> TrialFn {
    dispatch!(k, trial_fixed, trial_dyn)
}

/// The [`AcceptFn`] for `k`.
pub(crate) fn accept_kernel(k: usize) -> AcceptFn {
    dispatch!(k, accept_fixed, accept_dyn)
}

/// The [`ApplyFn`] for `k`.
pub(crate) fn apply_kernel(k: usize) -> ApplyFn {
    dispatch!(k, apply_fixed, apply_dyn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn data(k: usize, m: usize) -> (DMatrix<f32>, DMatrix<f32>, DMatrix<f32>) {
        let q = DMatrix::from_fn(k, k, |r, c| {
            if r == c {
                2.0
            } else {
                1.0 / (1 + r + c) as f32
            }
        });
        // Some zeros with positive gradient (pinned), some clipping candidates.
        let z = DMatrix::from_fn(k, m, |r, c| ((r * 7 + c * 3) % 5) as f32 / 5.0);
        let g = DMatrix::from_fn(k, m, |r, c| ((r * 3 + c * 5) % 7) as f32 / 7.0 - 0.4);
        (q, z, g)
    }

    /// Lin's trial computed densely: d = P[z − α g] − z, Q d.
    fn dense_trial(
        q: &DMatrix<f32>,
        z: &DMatrix<f32>,
        g: &DMatrix<f32>,
        alpha: f32,
    ) -> (DMatrix<f64>, f64, f64) {
        let zn = z.zip_map(g, |zv, gv| (zv - alpha * gv).max(0.0));
        let d = (zn.clone() - z).map(f64::from);
        let qd = q.map(f64::from) * &d;
        (zn.map(f64::from), g.map(f64::from).dot(&d), d.dot(&qd))
    }

    #[test]
    fn kernels_match_the_dense_formulas() {
        for k in [1, 3, 10, 32, 33] {
            let m = 41;
            let (q, z, g) = data(k, m);
            let (qs, zs, gs) = (q.as_slice(), z.as_slice(), g.as_slice());
            let mut qg = vec![0.0; k * m];
            let mut qg_dyn = vec![0.0; k * m];
            prep_kernel(k)(k, qs, zs, gs, &mut qg);
            prep_dyn(k, qs, zs, gs, &mut qg_dyn);
            assert_eq!(qg, qg_dyn);
            for alpha in [0.05_f32, 0.5, 3.0] {
                let (zn, gradd, dqd) = dense_trial(&q, &z, &g, alpha);
                let [a, b, _] = trial_kernel(k)(k, qs, zs, gs, &qg, alpha);
                let [a2, b2, _] = trial_dyn(k, qs, zs, gs, &qg, alpha);
                assert!(
                    (a - gradd).abs() < 1e-4 * (1.0 + gradd.abs()),
                    "k={k} α={alpha}: {a} vs {gradd}"
                );
                assert!(
                    (b - dqd).abs() < 1e-4 * (1.0 + dqd.abs()),
                    "k={k} α={alpha}: {b} vs {dqd}"
                );
                assert!(
                    (a - a2).abs() < 1e-6 * (1.0 + a.abs())
                        && (b - b2).abs() < 1e-6 * (1.0 + b.abs())
                );

                // Accepting the step: new z, Q z and gradient against dense recomputation.
                let b_rhs = DMatrix::from_fn(k, m, |r, c| ((r + c) % 3) as f32);
                let mut z1 = z.clone();
                let mut g1 = g.clone();
                let mut zq = vec![0.0; k * m];
                apply_kernel(k)(k, qs, zs, &mut zq);
                let pg = accept_kernel(k)(
                    k,
                    qs,
                    z1.as_mut_slice(),
                    g1.as_mut_slice(),
                    &mut zq,
                    &qg,
                    b_rhs.as_slice(),
                    alpha,
                );
                assert!((z1.map(f64::from) - &zn).abs().max() < 1e-6);
                let g_dense = q.map(f64::from) * z1.map(f64::from) - b_rhs.map(f64::from);
                assert!((g1.map(f64::from) - &g_dense).abs().max() < 1e-4, "k={k}");
                let pg_dense: f64 = g_dense
                    .iter()
                    .zip(z1.iter())
                    .filter(|&(&gv, &zv)| gv < 0.0 || zv > 0.0)
                    .map(|(gv, _)| gv * gv)
                    .sum();
                assert!((pg - pg_dense).abs() < 1e-3 * (1.0 + pg_dense));
            }
            let mut o1 = vec![0.0; k * m];
            let mut o2 = vec![0.0; k * m];
            apply_kernel(k)(k, qs, zs, &mut o1);
            apply_dyn(k, qs, zs, &mut o2);
            let prod = &q * &z;
            for ((x, y), p) in o1.iter().zip(&o2).zip(prod.iter()) {
                assert!(
                    (x - p).abs() < 1e-5 * (1.0 + p.abs())
                        && (y - p).abs() < 1e-5 * (1.0 + p.abs())
                );
            }
        }
    }
}
