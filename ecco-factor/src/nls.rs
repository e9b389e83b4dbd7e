//! Lin's projected-gradient solver for the non-negative least-squares half-steps.
//!
//! C.-J. Lin, "Projected Gradient Methods for Non-negative Matrix Factorization",
//! Neural Computation 19 (2007), `nlssubprob` of the paper's MATLAB code: solve
//! `min_{H >= 0} ½‖V − W H‖²_F` given only `WᵀW` and `WᵀV`, by projected gradient
//! steps `H ← P[H − α ∇f(H)]` with an Armijo-type search on `α`
//! (`f(H⁺) − f(H) ≤ σ ⟨∇f(H), H⁺ − H⟩`, `σ = 0.01`, `β = 0.1`), where the step size
//! is carried from one iteration to the next and first grown while the condition
//! holds, or shrunk until it does.
//!
//! What differs from the MATLAB code, none of it changing the method:
//!
//! * the problem is separable over the columns of `H`, and is solved in blocks of
//!   [`BLOCK_COLS`] columns, each with Lin's loop and its own step size (see
//!   [`solve`]);
//! * `⟨d, Q d⟩` and the gradient are formed from `Q g'` and the clipped entries
//!   (`column_kernels`), and `Q H` is updated rather than recomputed;
//! * the stopping test is `‖P∇f‖ <= tol` (Lin: `<`), which also ends the all-zero
//!   case; and when all 20 step enlargements pass the test, the last one is taken
//!   (Lin's code keeps the old point then).

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::column_kernels::{accept_kernel, apply_kernel, prep_kernel, trial_kernel};
use crate::exec::Exec;

/// Lin's sufficient-decrease constant σ (the paper's 0.01; the test is written
/// `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩ < 0`).
const SIGMA: f64 = 0.01;
/// Lin's step-size factor β.
const BETA: f32 = 0.1;
/// Line-search trials per iteration (Lin's `inner_iter` bound).
const MAX_TRIALS: usize = 20;
/// `Q z` is updated incrementally after each step and recomputed from scratch this
/// often, so `f32` rounding cannot drift.
const REFRESH_EVERY: usize = 16;
/// Columns per independently solved block (see [`solve`]): small enough that a
/// block's five `[k, cols]` arrays stay in the core's L2 cache for all its iterations.
const BLOCK_COLS: usize = 512;
/// Below this many entries a half-step runs on the calling thread.
const PARALLEL_MIN_LEN: usize = 64 * 1024;

/// One block's `(((z, grad), Q z), Q g'), b)`, as the zipped chunk iterators give it.
type BlockSlices<'a> = (
    (
        ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]),
        &'a mut [f32],
    ),
    &'a [f32],
);

/// Scratch buffers of the shape of the variable, reused across calls.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    /// `Q z` for the current `z`.
    zq: DMatrix<f32>,
    /// `Q g'` for the current iteration (see `column_kernels`).
    qg: DMatrix<f32>,
}

impl Workspace {
    fn fit(&mut self, k: usize, m: usize) {
        for buf in [&mut self.zq, &mut self.qg] {
            if buf.shape() != (k, m) {
                *buf = DMatrix::zeros(k, m);
            }
        }
    }
}

/// `‖P∇f‖²` over the entries that are free to move: `g < 0` or `z > 0` (Lin's
/// `norm(grad(grad < 0 | H > 0))`, squared).
pub(crate) fn projected_grad_sq(grad: &DMatrix<f32>, z: &DMatrix<f32>) -> f64 {
    grad.as_slice()
        .iter()
        .zip(z.as_slice())
        .map(|(&g, &x)| {
            if g < 0.0 || x > 0.0 {
                f64::from(g) * f64::from(g)
            } else {
                0.0
            }
        })
        .sum()
}

/// `zq = Q z` and `grad = Q z − b` from scratch over whole columns; returns `‖P∇f‖²`.
fn refresh(k: usize, q: &[f32], b: &[f32], z: &[f32], zq: &mut [f32], grad: &mut [f32]) -> f64 {
    apply_kernel(k)(k, q, z, zq);
    let mut pg = 0.0_f64;
    for ((g, (&qv, &bv)), &x) in grad.iter_mut().zip(zq.iter().zip(b)).zip(z) {
        *g = qv - bv;
        if *g < 0.0 || x > 0.0 {
            pg += f64::from(*g) * f64::from(*g);
        }
    }
    pg
}

/// `grad = Q z − b` (for the outer loop's starting gradients).
pub(crate) fn gradient(
    q: &DMatrix<f32>,
    b: &DMatrix<f32>,
    z: &DMatrix<f32>,
    grad: &mut DMatrix<f32>,
) {
    let mut zq = vec![0.0; z.len()];
    refresh(
        z.nrows(),
        q.as_slice(),
        b.as_slice(),
        z.as_slice(),
        &mut zq,
        grad.as_mut_slice(),
    );
}

/// Runs Lin's `nlssubprob` from the current `z`, updating it in place.
///
/// Solves `min_{z >= 0} ½ zᵀQz − bᵀz` for `z [k, m]`, with `Q = WᵀW [k, k]` and
/// `b = WᵀV [k, m]`, to a projected gradient norm of at most `tol`, or for
/// `max_iter` iterations. The problem is separable over columns, so it is cut into
/// blocks of [`BLOCK_COLS`] columns and Lin's method runs on each block on its own
/// (own step size, own iteration count), each to `tol · sqrt(cols / m)` so that the
/// whole meets `tol`. Blocks stay in cache, run in parallel without synchronisation,
/// and give the same result whatever the thread count.
///
/// On return `grad` holds the gradient at the final `z`. Returns the largest block
/// iteration count, in Lin's sense: 1 means every block already met its tolerance
/// and `z` was not changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve(
    q: &DMatrix<f32>,
    b: &DMatrix<f32>,
    z: &mut DMatrix<f32>,
    grad: &mut DMatrix<f32>,
    tol: f64,
    max_iter: usize,
    exec: &Exec,
    ws: &mut Workspace,
) -> usize {
    let (k, m) = z.shape();
    ws.fit(k, m);
    let qs = q.as_slice();
    let chunk = BLOCK_COLS * k;
    let block_tol = |len: usize| tol * ((len / k) as f64 / m as f64).sqrt();
    let job = |((((zb, gb), zqb), qgb), bb): BlockSlices<'_>| {
        let tol = block_tol(zb.len());
        solve_block(k, qs, bb, zb, gb, zqb, qgb, tol, max_iter)
    };
    if exec.parallel() && k * m >= PARALLEL_MIN_LEN {
        exec.run(|| {
            z.as_mut_slice()
                .par_chunks_mut(chunk)
                .zip(grad.as_mut_slice().par_chunks_mut(chunk))
                .zip(ws.zq.as_mut_slice().par_chunks_mut(chunk))
                .zip(ws.qg.as_mut_slice().par_chunks_mut(chunk))
                .zip(b.as_slice().par_chunks(chunk))
                .map(job)
                .max()
                .unwrap_or(1)
        })
    } else {
        z.as_mut_slice()
            .chunks_mut(chunk)
            .zip(grad.as_mut_slice().chunks_mut(chunk))
            .zip(ws.zq.as_mut_slice().chunks_mut(chunk))
            .zip(ws.qg.as_mut_slice().chunks_mut(chunk))
            .zip(b.as_slice().chunks(chunk))
            .map(job)
            .max()
            .unwrap_or(1)
    }
}

/// Lin's `nlssubprob` on one block of whole columns (all slices `[k, cols]`).
#[allow(clippy::too_many_arguments)]
fn solve_block(
    k: usize,
    q: &[f32],
    b: &[f32],
    z: &mut [f32],
    grad: &mut [f32],
    zq: &mut [f32],
    qg: &mut [f32],
    tol: f64,
    max_iter: usize,
) -> usize {
    let (prep, trial, accept) = (prep_kernel(k), trial_kernel(k), accept_kernel(k));
    let mut pg = refresh(k, q, b, z, zq, grad);
    let mut alpha: f32 = 1.0;
    let mut iter = 0;
    let mut since_refresh = 0;
    while iter < max_iter {
        iter += 1;
        // Lin stops on `projgrad < tol`; `<=` also ends the all-zero case (tol = 0).
        if pg.sqrt() <= tol {
            break;
        }
        prep(k, q, z, grad, qg);
        let mut decrease_alpha = false;
        let mut step = None;
        let mut prev_moving = f64::INFINITY;
        let mut last_ok = alpha;
        for t in 0..MAX_TRIALS {
            let [gradd, dqd, moving] = trial(k, q, z, grad, qg, alpha);
            let suff_decr = (1.0 - SIGMA) * gradd + 0.5 * dqd < 0.0;
            if t == 0 {
                decrease_alpha = !suff_decr;
            }
            if decrease_alpha {
                if suff_decr {
                    step = Some(alpha);
                    break;
                }
                alpha *= BETA;
            } else {
                // Lin's `Hp == Hn`: the last accepted step already clipped every
                // moving entry, so a longer one lands on the same point.
                if !suff_decr || prev_moving == 0.0 {
                    step = Some(last_ok);
                    break;
                }
                prev_moving = moving;
                last_ok = alpha;
                alpha /= BETA;
            }
        }
        if step.is_none() && !decrease_alpha {
            // Lin's code keeps the old point when all 20 enlargements succeed; the
            // last one satisfies the decrease condition, so take it.
            step = Some(last_ok);
        }
        if let Some(step) = step {
            pg = accept(k, q, z, grad, zq, qg, b, step);
            since_refresh += 1;
            if since_refresh >= REFRESH_EVERY {
                since_refresh = 0;
                pg = refresh(k, q, b, z, zq, grad);
            }
        }
        if alpha == 0.0 || !alpha.is_finite() {
            break;
        }
    }
    iter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_nnls_to_its_kkt_point() {
        // V = W H* with H* having zeros; the NNLS optimum is H*.
        let w = DMatrix::from_row_slice(4, 2, &[1.0, 0.2, 0.3, 1.0, 0.5, 0.5, 0.1, 0.9]);
        let h_star = DMatrix::from_row_slice(2, 3, &[1.0, 0.0, 2.0, 0.5, 1.5, 0.0]);
        let v = &w * &h_star;
        let wtw = w.transpose() * &w;
        let wtv = w.transpose() * &v;
        let mut h = DMatrix::from_element(2, 3, 1.0_f32);
        let mut grad = DMatrix::zeros(2, 3);
        let mut ws = Workspace::default();
        let iters = solve(
            &wtw,
            &wtv,
            &mut h,
            &mut grad,
            1e-6,
            1000,
            &Exec::Sequential,
            &mut ws,
        );
        assert!(iters > 1 && iters < 1000, "{iters}");
        assert!(h.iter().all(|&x| x >= 0.0));
        assert!((h - h_star).abs().max() < 1e-4);
    }

    #[test]
    fn blocks_reach_the_global_tolerance_and_ignore_the_thread_count() -> crate::Result<()> {
        // 3 blocks of columns; random-ish NNLS with an active set.
        let (k, m) = (4, 2 * BLOCK_COLS + 37);
        let w = DMatrix::from_fn(30, k, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0 + 0.05);
        let v = DMatrix::from_fn(30, m, |i, j| {
            (((i * 13 + j * 29) % 17) as f32 / 17.0 - 0.3).max(0.0)
        });
        let (wtw, wtv) = (w.transpose() * &w, w.transpose() * &v);
        let tol = 1e-3;
        let run = |exec: &Exec| {
            let mut h = DMatrix::from_element(k, m, 0.5_f32);
            let mut grad = DMatrix::zeros(k, m);
            let iters = solve(
                &wtw,
                &wtv,
                &mut h,
                &mut grad,
                tol,
                1000,
                exec,
                &mut Workspace::default(),
            );
            (h, grad, iters)
        };
        let (h1, g1, i1) = run(&Exec::Sequential);
        let (h2, g2, i2) = run(&Exec::new(Some(3))?);
        assert_eq!((&h1, &g1, i1), (&h2, &g2, i2));
        assert!(i1 > 1 && i1 < 1000);
        assert!(projected_grad_sq(&g1, &h1).sqrt() <= tol * 1.0001);
        // The returned gradient is the one of the returned point.
        let exact = &wtw * &h1 - &wtv;
        assert!((exact - &g1).abs().max() < 1e-3);
        Ok(())
    }

    #[test]
    fn stops_at_once_when_already_optimal() {
        let wtw = DMatrix::identity(2, 2);
        let wtv = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 2.0, 3.0]);
        let mut h = wtv.clone();
        let mut grad = DMatrix::zeros(2, 2);
        let iters = solve(
            &wtw,
            &wtv,
            &mut h,
            &mut grad,
            1e-9,
            100,
            &Exec::Sequential,
            &mut Workspace::default(),
        );
        assert_eq!(iters, 1);
    }
}
