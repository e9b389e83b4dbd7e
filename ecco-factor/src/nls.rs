//! Lin's projected-gradient solver for the non-negative least-squares half-steps.
//!
//! C.-J. Lin, "Projected Gradient Methods for Non-negative Matrix Factorization",
//! Neural Computation 19 (2007), `nlssubprob` of the paper's MATLAB code: solve
//! `min_{Z >= 0} ½ ⟨Z, Q Z⟩ − ⟨B, Z⟩` (`Q = WᵀW`, `B = WᵀV`; only these small
//! products are needed, never `V`) by projected gradient steps `Z ← P[Z − α ∇f(Z)]`
//! with an Armijo-type search on `α`: the step `d = P[Z − α g] − Z` is taken when
//! `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩ < 0` (`σ = 0.01`, `β = 0.1`); the step size is
//! carried from one iteration to the next, first grown while the condition holds, or
//! shrunk until it does.
//!
//! The problem is separable over the columns of `Z`, so Lin's loop runs on each
//! panel of [`LANES`] columns on its own (own step size, own iteration count; see
//! `panels`), to `tol / sqrt(panels)`, so that the whole meets `tol`. A panel stays
//! in L1 cache for its whole solve, its `Q d` is `k²` SIMD multiply-adds, and panels
//! run in any order on any thread with the same result. What else differs from the
//! MATLAB code, none of it changing the method:
//!
//! * the gradient is updated as `g ← g + Q d` after a step (and recomputed as
//!   `Q Z − B` every [`REFRESH_EVERY`] steps) instead of recomputed per iteration;
//! * Lin's `Hp == Hn` (a longer step lands on the same point) is detected as "no
//!   entry moved without being clipped" in the previous trial;
//! * the stopping test is `‖P∇f‖ <= tol` (Lin: `<`), which also ends the all-zero
//!   case; and when all 20 step enlargements pass the test, the last one is taken
//!   (Lin's code keeps the old point then).

use crate::panels::LANES;

/// Lin's sufficient-decrease constant σ (the paper's 0.01; the test is written
/// `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩ < 0`).
const SIGMA: f64 = 0.01;
/// Lin's step-size factor β.
const BETA: f32 = 0.1;
/// Line-search trials per iteration (Lin's `inner_iter` bound).
const MAX_TRIALS: usize = 20;
/// The gradient is updated incrementally after each step and recomputed from
/// scratch this often, so `f32` rounding cannot drift.
const REFRESH_EVERY: usize = 16;

/// One panel row: the values of one row of `Z` over the panel's columns.
type Row = [f32; LANES];

/// What a solve over some panels did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    /// `‖P∇f‖²` at the starting point.
    pub(crate) init_pg: f64,
    /// `‖P∇f‖²` at the final point.
    pub(crate) pg: f64,
    /// The largest panel iteration count, in Lin's sense (1: stopped at once).
    pub(crate) iters: usize,
}

impl Stats {
    /// The statistics of two disjoint sets of panels together.
    #[inline(always)]
    pub(crate) fn merge(self, other: Self) -> Self {
        Self {
            init_pg: self.init_pg + other.init_pg,
            pg: self.pg + other.pg,
            iters: self.iters.max(other.iters),
        }
    }
}

/// The small matrices and bounds shared by all panels of one half-step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem<'a> {
    /// Rows of `Z`.
    pub(crate) k: usize,
    /// `Q = WᵀW`, `k × k`, symmetric.
    pub(crate) q: &'a [f32],
    /// Stopping tolerance of each panel's `‖P∇f‖`.
    pub(crate) panel_tol: f64,
    /// Lin's iteration bound per panel.
    pub(crate) max_iter: usize,
}

/// Runs Lin's `nlssubprob` on every panel of `z` (whole panels, `k` rows of
/// [`LANES`]), with right-hand side `b` of the same layout; on return `g` holds the
/// gradient `Q Z − B` at the final `z`.
pub(crate) fn solve(prob: &Problem<'_>, b: &[f32], z: &mut [f32], g: &mut [f32]) -> Stats {
    pulp::Arch::new().dispatch(SolveOp { prob, b, z, g })
}

/// `g = Q Z − B` on every panel, without solving; returns `‖P∇f‖²`.
pub(crate) fn gradient(k: usize, q: &[f32], b: &[f32], z: &[f32], g: &mut [f32]) -> f64 {
    pulp::Arch::new().dispatch(GradientOp { k, q, b, z, g })
}

/// [`solve`] as a `pulp` operation (compiled for each instruction set).
struct SolveOp<'a, 'p> {
    prob: &'a Problem<'p>,
    b: &'a [f32],
    z: &'a mut [f32],
    g: &'a mut [f32],
}

impl pulp::WithSimd for SolveOp<'_, '_> {
    type Output = Stats;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Stats {
        solve_panels(self.prob, self.b, self.z, self.g)
    }
}

/// [`gradient`] as a `pulp` operation.
struct GradientOp<'a> {
    k: usize,
    q: &'a [f32],
    b: &'a [f32],
    z: &'a [f32],
    g: &'a mut [f32],
}

impl pulp::WithSimd for GradientOp<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> f64 {
        let k = self.k;
        let (b, z, g) = (rows(self.b), rows(self.z), rows_mut(self.g));
        let mut pg = 0.0;
        for ((b, z), g) in b
            .chunks_exact(k)
            .zip(z.chunks_exact(k))
            .zip(g.chunks_exact_mut(k))
        {
            pg += refresh(k, self.q, b, z, g);
        }
        pg
    }
}

/// `‖P∇f‖²` over the entries that are free to move: `g < 0` or `z > 0` (Lin's
/// `norm(grad(grad < 0 | H > 0))`, squared), computed directly (for checks).
#[cfg(test)]
pub(crate) fn projected_grad_sq(g: &[f32], z: &[f32]) -> f64 {
    g.iter()
        .zip(z)
        .map(|(&g, &x)| {
            if g < 0.0 || x > 0.0 {
                f64::from(g) * f64::from(g)
            } else {
                0.0
            }
        })
        .sum()
}

fn rows(s: &[f32]) -> &[Row] {
    s.as_chunks::<LANES>().0
}

fn rows_mut(s: &mut [f32]) -> &mut [Row] {
    s.as_chunks_mut::<LANES>().0
}

/// Scratch rows of one panel solve: two trial points with their `Q d`, and `d`.
struct Scratch {
    zn: [Vec<Row>; 2],
    qd: [Vec<Row>; 2],
    d: Vec<Row>,
}

#[inline(always)]
fn solve_panels(prob: &Problem<'_>, b: &[f32], z: &mut [f32], g: &mut [f32]) -> Stats {
    let k = prob.k;
    let zero = || vec![[0.0; LANES]; k];
    let mut scratch = Scratch {
        zn: [zero(), zero()],
        qd: [zero(), zero()],
        d: zero(),
    };
    let (b, z, g) = (rows(b), rows_mut(z), rows_mut(g));
    let mut stats = Stats::default();
    for ((b, z), g) in b
        .chunks_exact(k)
        .zip(z.chunks_exact_mut(k))
        .zip(g.chunks_exact_mut(k))
    {
        stats = stats.merge(solve_panel(prob, b, z, g, &mut scratch));
    }
    stats
}

/// Sum of the lanes, in a fixed order.
#[inline(always)]
fn lane_sum(v: &Row) -> f64 {
    let mut s = 0.0;
    for &x in v {
        s += f64::from(x);
    }
    s
}

/// `dst = Q src` for one panel.
#[inline(always)]
fn apply(k: usize, q: &[f32], src: &[Row], dst: &mut [Row]) {
    for (out, qr) in dst.iter_mut().zip(q.chunks_exact(k)) {
        let mut acc = [0.0_f32; LANES];
        for (s, &qv) in src.iter().zip(qr) {
            for l in 0..LANES {
                acc[l] = qv.mul_add(s[l], acc[l]);
            }
        }
        *out = acc;
    }
}

/// `‖P∇f‖²` of one panel.
#[inline(always)]
fn panel_pg(z: &[Row], g: &[Row]) -> f64 {
    let mut acc = [0.0_f32; LANES];
    for (zr, gr) in z.iter().zip(g) {
        for l in 0..LANES {
            // `|`, not `||`: a branch-free select the compiler vectorises.
            let free = (gr[l] < 0.0) | (zr[l] > 0.0);
            acc[l] += if free { gr[l] * gr[l] } else { 0.0 };
        }
    }
    lane_sum(&acc)
}

/// `g = Q z − b` for one panel; returns its `‖P∇f‖²`.
#[inline(always)]
fn refresh(k: usize, q: &[f32], b: &[Row], z: &[Row], g: &mut [Row]) -> f64 {
    apply(k, q, z, g);
    for (gr, br) in g.iter_mut().zip(b) {
        for l in 0..LANES {
            gr[l] -= br[l];
        }
    }
    panel_pg(z, g)
}

/// One trial at step `alpha`: fills `zn = P[z − α g]`, `d = zn − z`, `qd = Q d`
/// (`zn`, `qd` in slot `slot` of the scratch) and returns
/// `(⟨g, d⟩, ⟨d, Q d⟩, entries that move without being clipped)`.
#[inline(always)]
fn trial(
    q: &[f32],
    z: &[Row],
    g: &[Row],
    alpha: f32,
    s: &mut Scratch,
    slot: usize,
) -> (f64, f64, u32) {
    let k = z.len();
    let (zn, d, qd) = (&mut s.zn[slot], &mut s.d, &mut s.qd[slot]);
    let mut gd = [0.0_f32; LANES];
    let mut moving = [0_u32; LANES];
    for (((zr, gr), znr), dr) in z.iter().zip(g).zip(zn.iter_mut()).zip(d.iter_mut()) {
        for l in 0..LANES {
            let t = zr[l] - alpha * gr[l];
            let v = t.max(0.0);
            znr[l] = v;
            dr[l] = v - zr[l];
            gd[l] += gr[l] * dr[l];
            moving[l] += u32::from((t > 0.0) & (gr[l] != 0.0));
        }
    }
    apply(k, q, d, qd);
    let mut dqd = [0.0_f32; LANES];
    for (dr, qr) in d.iter().zip(qd.iter()) {
        for l in 0..LANES {
            dqd[l] += dr[l] * qr[l];
        }
    }
    let mut n = 0;
    for m in moving {
        n += m;
    }
    (lane_sum(&gd), lane_sum(&dqd), n)
}

/// Lin's `nlssubprob` on one panel.
#[inline(always)]
fn solve_panel(
    prob: &Problem<'_>,
    b: &[Row],
    z: &mut [Row],
    g: &mut [Row],
    s: &mut Scratch,
) -> Stats {
    let (k, q) = (prob.k, prob.q);
    let mut pg = refresh(k, q, b, z, g);
    let init_pg = pg;
    let mut alpha: f32 = 1.0;
    let mut iter = 0;
    let mut since_refresh = 0;
    while iter < prob.max_iter {
        iter += 1;
        // Lin stops on `projgrad < tol`; `<=` also ends the all-zero case (tol = 0).
        if pg.sqrt() <= prob.panel_tol {
            break;
        }
        let mut decrease_alpha = false;
        let mut step = None;
        let mut last_ok = None;
        let mut prev_moving = u32::MAX;
        let mut cur = 0;
        for t in 0..MAX_TRIALS {
            if t > 0 && !decrease_alpha && prev_moving == 0 {
                // Lin's `Hp == Hn`: the last accepted trial clipped every moving
                // entry, so a longer step lands on the same point.
                step = last_ok;
                break;
            }
            let (gradd, dqd, moving) = trial(q, z, g, alpha, s, cur);
            let suff_decr = (1.0 - SIGMA) * gradd + 0.5 * dqd < 0.0;
            if t == 0 {
                decrease_alpha = !suff_decr;
            }
            if decrease_alpha {
                if suff_decr {
                    step = Some(cur);
                    break;
                }
                alpha *= BETA;
            } else {
                if !suff_decr {
                    step = last_ok;
                    break;
                }
                prev_moving = moving;
                last_ok = Some(cur);
                cur = 1 - cur;
                alpha /= BETA;
            }
        }
        if step.is_none() && !decrease_alpha {
            // Lin's code keeps the old point when all 20 enlargements succeed; the
            // last one satisfies the decrease condition, so take it.
            step = last_ok;
        }
        if let Some(i) = step {
            z.copy_from_slice(&s.zn[i]);
            since_refresh += 1;
            if since_refresh >= REFRESH_EVERY {
                since_refresh = 0;
                pg = refresh(k, q, b, z, g);
            } else {
                for (gr, qr) in g.iter_mut().zip(s.qd[i].iter()) {
                    for l in 0..LANES {
                        gr[l] += qr[l];
                    }
                }
                pg = panel_pg(z, g);
            }
        }
        if alpha == 0.0 || !alpha.is_finite() {
            break;
        }
    }
    Stats {
        init_pg,
        pg,
        iters: iter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panels::Panels;
    use nalgebra::DMatrix;

    fn run(wtw: &DMatrix<f32>, wtv: &DMatrix<f32>, h: &mut Panels, tol: f64) -> (Panels, Stats) {
        let k = h.k();
        let b = Panels::from_matrix(wtv, LANES);
        let mut g = Panels::zeros(k, h.m(), LANES);
        let prob = Problem {
            k,
            q: wtw.as_slice(),
            panel_tol: tol / (h.panels() as f64).sqrt(),
            max_iter: 1000,
        };
        let stats = solve(&prob, b.as_slice(), h.as_mut_slice(), g.as_mut_slice());
        (g, stats)
    }

    #[test]
    fn solves_a_small_nnls_to_its_kkt_point() {
        // V = W H* with H* having zeros; the NNLS optimum is H*.
        let w = DMatrix::from_row_slice(4, 2, &[1.0, 0.2, 0.3, 1.0, 0.5, 0.5, 0.1, 0.9]);
        let h_star = DMatrix::from_row_slice(2, 3, &[1.0, 0.0, 2.0, 0.5, 1.5, 0.0]);
        let v = &w * &h_star;
        let mut h = Panels::from_matrix(&DMatrix::from_element(2, 3, 1.0_f32), LANES);
        let (_, stats) = run(&(w.transpose() * &w), &(w.transpose() * &v), &mut h, 1e-6);
        assert!(stats.iters > 1 && stats.iters < 1000, "{stats:?}");
        let h = h.to_matrix();
        assert!(h.iter().all(|&x| x >= 0.0));
        assert!((h - h_star).abs().max() < 1e-4);
    }

    #[test]
    fn panels_reach_the_global_tolerance_with_the_true_gradient() {
        let (k, m) = (4, 3 * LANES + 5);
        let w = DMatrix::from_fn(30, k, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0 + 0.05);
        let v = DMatrix::from_fn(30, m, |i, j| {
            (((i * 13 + j * 29) % 17) as f32 / 17.0 - 0.3).max(0.0)
        });
        let (wtw, wtv) = (w.transpose() * &w, w.transpose() * &v);
        let tol = 1e-3;
        let mut h = Panels::from_matrix(&DMatrix::from_element(k, m, 0.5_f32), LANES);
        let (g, stats) = run(&wtw, &wtv, &mut h, tol);
        assert!(stats.iters > 1 && stats.iters < 1000);
        assert!(stats.init_pg > stats.pg);
        let (hm, gm) = (h.to_matrix(), g.to_matrix());
        let pg = projected_grad_sq(gm.as_slice(), hm.as_slice());
        assert!(pg.sqrt() <= tol * 1.0001 && (pg - stats.pg).abs() < 1e-9);
        // The returned gradient is the one of the returned point.
        let exact = &wtw * &hm - &wtv;
        assert!((exact - &gm).abs().max() < 1e-4);
        // Padding columns stay zero.
        assert!(
            h.as_slice()[3 * k * LANES..]
                .iter()
                .enumerate()
                .all(|(i, &x)| { i % LANES < 5 || x == 0.0 })
        );
    }

    #[test]
    fn stops_at_once_when_already_optimal() {
        let wtw = DMatrix::identity(2, 2);
        let wtv = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 2.0, 3.0]);
        let mut h = Panels::from_matrix(&wtv, LANES);
        let (_, stats) = run(&wtw, &wtv, &mut h, 1e-9);
        assert_eq!(stats.iters, 1);
        assert_eq!(stats.init_pg, 0.0);
    }
}
