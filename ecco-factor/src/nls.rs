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
//! `panels`), to `tol / sqrt(panels)`, so that the whole meets `tol`. A panel is
//! copied into a chunk-major scratch for its whole solve (in L1 cache), its `Q d` is
//! `k²` SIMD multiply-adds in register tiles (`nls_kernels`), and panels run in any
//! order on any thread, with any instruction set, with the same result. What else
//! differs from the MATLAB code, none of it changing the method:
//!
//! * the gradient is updated as `g ← g + Q d` after a step (and recomputed as
//!   `Q Z − B` every [`REFRESH_EVERY`] steps) instead of recomputed per iteration;
//! * Lin's `Hp == Hn` (a longer step lands on the same point) is detected as "no
//!   entry moved without being clipped" in the previous trial;
//! * the sufficient-decrease test value is summed per column in `f32` and over the
//!   panel's columns in `f64` (Lin: all in `f64`);
//! * the stopping test is `‖P∇f‖ <= tol` (Lin: `<`), which also ends the all-zero
//!   case; and when all 20 step enlargements pass the test, the last one is taken
//!   (Lin's code keeps the old point then).
//!
//! Panels are solved two at a time, each by its own state machine (`nls_panel`):
//! whenever both want a trial, the two trials run together (`trial2`: one pass
//! over `Q` for both, twice the independent work in flight), and a panel that
//! finishes hands its slot to the next one. Each panel sees the same operations in
//! the same order as alone, so the results do not change.

use pulp::Simd;

use crate::nls_kernels::{PackedQ, Row, chunks, gather, max_pair_tile_rows, max_tile_rows, refresh, scatter, trial, trial2};
use crate::nls_panel::{PanelSolve, SIGMA, Scratch};
use crate::panels::LANES;

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
        Self { init_pg: self.init_pg + other.init_pg, pg: self.pg + other.pg, iters: self.iters.max(other.iters) }
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
    merge_in_order(solve_each(prob, b, z, g))
}

/// [`solve`], with the statistics of each panel in panel order (for callers that
/// split the panels among threads and merge the statistics with [`merge_in_order`]).
pub(crate) fn solve_each(prob: &Problem<'_>, b: &[f32], z: &mut [f32], g: &mut [f32]) -> Vec<Stats> {
    pulp::Arch::new().dispatch(SolveOp { prob, b, z, g })
}

/// The statistics of all panels, merged in the order given (panel order), so that
/// the sums do not depend on which thread or slot solved what.
pub(crate) fn merge_in_order(stats: impl IntoIterator<Item = Stats>) -> Stats {
    stats.into_iter().fold(Stats::default(), Stats::merge)
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
    type Output = Vec<Stats>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Vec<Stats> {
        let q = PackedQ::new(self.prob.k, self.prob.q, max_tile_rows::<S>());
        let q2 = PackedQ::new(self.prob.k, self.prob.q, max_pair_tile_rows::<S>());
        solve_panels(simd, self.prob, (&q, &q2), self.b, self.z, self.g)
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
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let k = self.k;
        let q = PackedQ::new(k, self.q, max_tile_rows::<S>());
        let (b, z, g) = (rows(self.b), rows(self.z), rows_mut(self.g));
        let zero = || vec![simd.splat_f32s(0.0); k * chunks::<S>()];
        let (mut bc, mut zc, mut gc) = (zero(), zero(), zero());
        let mut pg = 0.0;
        for ((b, z), g) in b.chunks_exact(k).zip(z.chunks_exact(k)).zip(g.chunks_exact_mut(k)) {
            gather::<S>(b, &mut bc);
            gather::<S>(z, &mut zc);
            pg += refresh(simd, &q, &bc, &zc, &mut gc);
            scatter::<S>(&gc, g);
        }
        pg
    }
}

/// `‖P∇f‖²` over the entries that are free to move: `g < 0` or `z > 0` (Lin's
/// `norm(grad(grad < 0 | H > 0))`, squared), computed directly (for checks).
#[cfg(test)]
pub(crate) fn projected_grad_sq(g: &[f32], z: &[f32]) -> f64 {
    g.iter().zip(z).map(|(&g, &x)| if g < 0.0 || x > 0.0 { f64::from(g) * f64::from(g) } else { 0.0 }).sum()
}

fn rows(s: &[f32]) -> &[Row] {
    s.as_chunks::<LANES>().0
}

fn rows_mut(s: &mut [f32]) -> &mut [Row] {
    s.as_chunks_mut::<LANES>().0
}

/// Runs Lin's loop on every panel of `z`, two panels at a time (see the module
/// notes); `q2` is `Q` packed for [`trial2`].
#[inline(always)]
fn solve_panels<S: Simd>(
    simd: S,
    prob: &Problem<'_>,
    (q, q2): (&PackedQ, &PackedQ),
    b: &[f32],
    z: &mut [f32],
    g: &mut [f32],
) -> Vec<Stats> {
    let k = prob.k;
    let (b, z, g) = (rows(b), rows_mut(z), rows_mut(g));
    let panels = z.len() / k.max(1);
    let zero = simd.splat_f32s(0.0);
    let mut slots: [Slot<S::f32s>; 2] =
        std::array::from_fn(|_| Slot { panel: None, solve: PanelSolve::new(Scratch::new(k * chunks::<S>(), zero)) });
    let mut stats = vec![Stats::default(); panels];
    let mut next = 0;
    loop {
        // A slot whose panel is solved writes it back and takes the next one.
        for slot in &mut slots {
            while slot.solve.wants_trial().is_none() {
                if let Some(panel) = slot.panel.take() {
                    let rows = panel * k..(panel + 1) * k;
                    scatter::<S>(&slot.solve.s.z, &mut z[rows.clone()]);
                    scatter::<S>(&slot.solve.s.g, &mut g[rows]);
                    stats[panel] = slot.solve.stats();
                }
                if next == panels {
                    break;
                }
                let rows = next * k..(next + 1) * k;
                gather::<S>(&b[rows.clone()], &mut slot.solve.s.b);
                gather::<S>(&z[rows], &mut slot.solve.s.z);
                slot.solve.start(simd, prob, q);
                slot.panel = Some(next);
                next += 1;
            }
        }
        let [x, y] = &mut slots;
        let (x, y) = (&mut x.solve, &mut y.solve);
        match (x.wants_trial(), y.wants_trial()) {
            (Some(alpha_x), Some(alpha_y)) => {
                let (zx, gx, out_x) = x.trial_args();
                let (zy, gy, out_y) = y.trial_args();
                let (tx, ty) = trial2(simd, q2, SIGMA, (zx, gx, alpha_x, out_x), (zy, gy, alpha_y, out_y));
                x.consume(simd, prob, q, tx);
                y.consume(simd, prob, q, ty);
            }
            (Some(alpha), None) => one_trial(simd, prob, q, x, alpha),
            (None, Some(alpha)) => one_trial(simd, prob, q, y, alpha),
            (None, None) => break,
        }
    }
    stats
}

/// A panel being solved (`panel: None` once written back).
struct Slot<V> {
    panel: Option<usize>,
    solve: PanelSolve<V>,
}

/// One trial for one panel on its own.
#[inline(always)]
fn one_trial<S: Simd>(simd: S, prob: &Problem<'_>, q: &PackedQ, solve: &mut PanelSolve<S::f32s>, alpha: f32) {
    let (z, g, out) = solve.trial_args();
    let tr = trial(simd, q, z, g, (alpha, SIGMA), out);
    solve.consume(simd, prob, q, tr);
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
        let prob = Problem { k, q: wtw.as_slice(), panel_tol: tol / (h.panels() as f64).sqrt(), max_iter: 1000 };
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
        let v = DMatrix::from_fn(30, m, |i, j| (((i * 13 + j * 29) % 17) as f32 / 17.0 - 0.3).max(0.0));
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
        assert!(h.as_slice()[3 * k * LANES..].iter().enumerate().all(|(i, &x)| { i % LANES < 5 || x == 0.0 }));
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

    #[test]
    fn panels_solved_in_pairs_match_panels_solved_alone() {
        // Five panels whose columns differ, so that the paired panels stop after
        // different numbers of iterations and trials.
        let (k, m) = (6, 5 * LANES);
        let w = DMatrix::from_fn(50, k, |i, j| ((i * 3 + j * 11) % 17) as f32 / 17.0 + 0.01);
        let v = DMatrix::from_fn(50, m, |i, j| (((i * 7 + j * j * 5) % 23) as f32 / 23.0 - 0.4).max(0.0) * (1.0 + (j / LANES) as f32));
        let (wtw, wtv) = (w.transpose() * &w, w.transpose() * &v);
        let b = Panels::from_matrix(&wtv, LANES);
        let z0 = Panels::from_matrix(&DMatrix::from_fn(k, m, |i, j| ((i + 2 * j) % 5) as f32 * 0.2), LANES);
        let prob = Problem { k, q: wtw.as_slice(), panel_tol: 1e-5, max_iter: 1000 };
        let (mut z, mut g) = (z0.as_slice().to_vec(), vec![0.0; z0.as_slice().len()]);
        let together = solve(&prob, b.as_slice(), &mut z, &mut g);
        // One panel per call never pairs.
        let len = k * LANES;
        let (mut z1, mut g1) = (z0.as_slice().to_vec(), vec![0.0; z.len()]);
        let mut alone = Stats::default();
        let mut iters = Vec::new();
        for ((b, z), g) in b.as_slice().chunks(len).zip(z1.chunks_mut(len)).zip(g1.chunks_mut(len)) {
            let stats = solve(&prob, b, z, g);
            iters.push(stats.iters);
            alone = alone.merge(stats);
        }
        iters.dedup();
        assert!(iters.len() > 2, "the panels should need different iteration counts: {iters:?}");
        assert_eq!((z, g, together), (z1, g1, alone));
    }

    /// Solves with the instruction set of `simd`; returns `(z, g, stats)`.
    fn solve_with<S: Simd>(simd: S, prob: &Problem<'_>, b: &[f32], z0: &[f32]) -> (Vec<f32>, Vec<f32>, Stats) {
        let (mut z, mut g) = (z0.to_vec(), vec![0.0; z0.len()]);
        let stats = simd.vectorize(SolveOp { prob, b, z: &mut z, g: &mut g });
        (z, g, merge_in_order(stats))
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // Scalar: 16 vectors per panel row; AVX2: 2; AVX-512: 1 (what `solve` picks).
        let (k, m) = (7, 4 * LANES);
        let w = DMatrix::from_fn(40, k, |i, j| ((i * 5 + j * 7) % 13) as f32 / 13.0 + 0.02);
        let v = DMatrix::from_fn(40, m, |i, j| (((i * 11 + j * 23) % 19) as f32 / 19.0 - 0.25).max(0.0));
        let (wtw, wtv) = (w.transpose() * &w, w.transpose() * &v);
        let b = Panels::from_matrix(&wtv, LANES);
        let z0 = Panels::from_matrix(&DMatrix::from_element(k, m, 0.3_f32), LANES);
        let prob = Problem { k, q: wtw.as_slice(), panel_tol: 1e-4, max_iter: 1000 };
        let scalar = solve_with(pulp::Scalar, &prob, b.as_slice(), z0.as_slice());
        assert!(scalar.2.iters > 2, "{:?}", scalar.2);
        let (mut z, mut g) = (z0.as_slice().to_vec(), vec![0.0; z0.as_slice().len()]);
        let stats = solve(&prob, b.as_slice(), &mut z, &mut g);
        assert_eq!((&z, &g, stats), (&scalar.0, &scalar.1, scalar.2));
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            assert_eq!(solve_with(v3, &prob, b.as_slice(), z0.as_slice()), scalar);
        }
    }
}
