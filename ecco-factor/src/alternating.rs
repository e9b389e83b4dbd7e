//! Lin's outer loop (`nmf.m`): alternating `W` and `H` half-steps, each solved by
//! [`nls::solve`] to a tolerance that is cut tenfold whenever a half-step finds its
//! starting point already solved.
//!
//! `W` is kept transposed (`Wᵀ [k, p]`) so that both half-steps are the same
//! `[k, m]` problem, both in panel layout. The `H` half-step is fused with the
//! products (see `products`): for each block of data columns, `Wᵀ X` for the block,
//! the half-step on its columns of `H`, then the block's share of `H Xᵀ` and `H Hᵀ`
//! for the next `W` half-step, so that one iteration reads the data once. Blocks
//! run in parallel and their partial sums are added in block order.

use rayon::prelude::*;

use crate::exec::Exec;
use crate::nls::{self, Problem, Stats};
use crate::panels::{LANES, Panels};
use crate::products::{BlockedData, add_gram, h_xt_block, wt_x_block};

/// Lin's bound on the iterations of one half-step (`nlssubprob(..., 1000)` in his
/// `nmf.m`).
const MAX_SUBPROBLEM_ITER: usize = 1000;

/// Panels of `Wᵀ` per parallel task of the `W` half-step.
const W_TASK_PANELS: usize = 2;

/// How a run of the outer loop ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Outer iterations run.
    pub(crate) n_iter: usize,
    /// Whether the tolerance was met.
    pub(crate) converged: bool,
    /// Final projected gradient norm relative to the initial gradient norm.
    pub(crate) rel_projected_gradient: f64,
}

/// One block's share of the sweep.
#[derive(Debug, Clone, Default)]
struct BlockPart {
    /// `H_b X_bᵀ`, `[k, p]` row-major.
    hxt: Vec<f32>,
    /// `H_b H_bᵀ`, `k × k`.
    hht: Vec<f64>,
    /// The block's half-step statistics.
    stats: Stats,
}

/// The state of one fit.
pub(crate) struct Solver<'e> {
    data: BlockedData,
    exec: &'e Exec,
    k: usize,
    /// `Wᵀ [k, p]`.
    wt: Panels,
    /// `H [k, n]`, padded to whole blocks.
    h: Panels,
    grad_w: Panels,
    grad_h: Panels,
    /// `Wᵀ X [k, n]` of the last sweep.
    wtx: Panels,
    /// `H Xᵀ [k, p]` and `H Hᵀ` (`k × k`) of the current `H`.
    hxt: Panels,
    hht: Vec<f32>,
    parts: Vec<BlockPart>,
}

impl<'e> Solver<'e> {
    /// A solver for `data` from the starting factors `Wᵀ [k, p]` and `H [k, n]`.
    pub(crate) fn new(data: BlockedData, wt: &nalgebra::DMatrix<f32>, h: &nalgebra::DMatrix<f32>, exec: &'e Exec) -> Self {
        let (k, p, n) = (wt.nrows(), data.p(), data.n());
        let parts = vec![BlockPart { hxt: vec![0.0; k * p], hht: vec![0.0; k * k], stats: Stats::default() }; data.blocks()];
        Self {
            exec,
            k,
            wt: Panels::from_matrix(wt, LANES),
            h: Panels::from_matrix(h, data.cols()),
            grad_w: Panels::zeros(k, p, LANES),
            grad_h: Panels::zeros(k, n, data.cols()),
            wtx: Panels::zeros(k, n, data.cols()),
            hxt: Panels::zeros(k, p, LANES),
            hht: vec![0.0; k * k],
            parts,
            data,
        }
    }

    /// The factors `(Wᵀ [k, p], H [k, n])`.
    pub(crate) fn factors(&self) -> (nalgebra::DMatrix<f32>, nalgebra::DMatrix<f32>) {
        (self.wt.to_matrix(), self.h.to_matrix())
    }

    /// Runs Lin's outer loop, calling `progress(iteration, rel)` before each
    /// iteration.
    pub(crate) fn run<F>(&mut self, tol: f64, max_iter: usize, progress: &mut F) -> Outcome
    where
        F: FnMut(usize, f64),
    {
        // gradW = W (H Hᵀ) − X Hᵀ and gradH = (WᵀW) H − WᵀX at the start.
        let start_h = self.sweep(None);
        let w_q = self.hht.clone();
        let start_w_pg = nls::gradient(self.k, &w_q, self.hxt.as_slice(), self.wt.as_slice(), self.grad_w.as_mut_slice());
        let init_grad = (norm_sq(&self.grad_w) + norm_sq(&self.grad_h)).sqrt();
        if init_grad == 0.0 || !init_grad.is_finite() {
            progress(0, 0.0);
            return Outcome { n_iter: 0, converged: init_grad == 0.0, rel_projected_gradient: 0.0 };
        }
        // Lin: tolW = tolH = max(0.001, tol) * initgrad, cut tenfold whenever a
        // half-step stops at once (its starting point already meets it).
        let mut tol_w = tol.max(1e-3) * init_grad;
        let mut tol_h = tol_w;
        let (mut pg_w, mut pg_h) = (start_w_pg, start_h.pg);
        let mut n_iter = 0;
        loop {
            let projnorm = (pg_w + pg_h).sqrt();
            let rel = projnorm / init_grad;
            progress(n_iter, rel);
            if projnorm < tol * init_grad || n_iter >= max_iter {
                return Outcome { n_iter, converged: projnorm < tol * init_grad, rel_projected_gradient: rel };
            }
            // W half-step: min over Wᵀ >= 0 of ½‖Xᵀ − Hᵀ Wᵀ‖².
            let w = self.w_step(tol_w);
            if w.init_pg.sqrt() <= tol_w {
                tol_w *= 0.1;
            }
            pg_w = w.pg;
            // H half-step: min over H >= 0 of ½‖X − W H‖², with the products.
            let h = self.sweep(Some(tol_h));
            if h.init_pg.sqrt() <= tol_h {
                tol_h *= 0.1;
            }
            pg_h = h.pg;
            n_iter += 1;
        }
    }

    /// The `W` half-step from the current `H Xᵀ`, `H Hᵀ`.
    fn w_step(&mut self, tol: f64) -> Stats {
        let prob = Problem {
            k: self.k,
            q: &self.hht,
            panel_tol: tol / (self.wt.m().div_ceil(LANES) as f64).sqrt(),
            max_iter: MAX_SUBPROBLEM_ITER,
        };
        let (b, z, g) = (self.hxt.as_slice(), self.wt.as_mut_slice(), self.grad_w.as_mut_slice());
        if !self.exec.parallel() || z.len() <= W_TASK_PANELS * self.k * LANES {
            return nls::solve(&prob, b, z, g);
        }
        // A few panels per task (the solver runs two at a time), merged in panel order.
        let len = W_TASK_PANELS * self.k * LANES;
        let stats: Vec<Vec<Stats>> = self.exec.run(|| {
            b.par_chunks(len)
                .zip(z.par_chunks_mut(len))
                .zip(g.par_chunks_mut(len))
                .with_max_len(1)
                .map(|((b, z), g)| nls::solve_each(&prob, b, z, g))
                .collect()
        });
        nls::merge_in_order(stats.into_iter().flatten())
    }

    /// One pass over the data: `Wᵀ X`, then the `H` half-step to `tol` (or, for
    /// `None`, only the gradient of `H`), then `H Xᵀ` and `H Hᵀ` of the new `H`.
    fn sweep(&mut self, tol: Option<f64>) -> Stats {
        let k = self.k;
        let mut wtw = vec![0.0; k * k];
        add_gram(k, self.wt.as_slice(), &mut wtw);
        let q: Vec<f32> = wtw.iter().map(|&v| v as f32).collect();
        // W [p, k] row-major is Wᵀ [k, p] column-major, i.e. the panels' columns.
        let w_rows = self.wt.to_matrix();
        let w_rows = w_rows.as_slice();
        let prob =
            Problem { k, q: &q, panel_tol: tol.unwrap_or(0.0) / (self.h.m().div_ceil(LANES) as f64).sqrt(), max_iter: MAX_SUBPROBLEM_ITER };
        let data = &self.data;
        let job = |b: usize, h: &mut [f32], g: &mut [f32], wtx: &mut [f32], part: &mut BlockPart| {
            let xb = data.block(b);
            wt_x_block(k, w_rows, xb, wtx);
            part.stats = match tol {
                Some(_) => nls::solve(&prob, wtx, h, g),
                None => {
                    let pg = nls::gradient(k, &q, wtx, h, g);
                    Stats { init_pg: pg, pg, iters: 0 }
                }
            };
            h_xt_block(k, h, xb, &mut part.hxt);
            part.hht.fill(0.0);
            add_gram(k, h, &mut part.hht);
        };
        let len = k * data.cols();
        let (h, g, wtx) = (self.h.as_mut_slice(), self.grad_h.as_mut_slice(), self.wtx.as_mut_slice());
        if self.exec.parallel() && self.parts.len() > 1 {
            let parts = &mut self.parts;
            self.exec.run(|| {
                h.par_chunks_mut(len)
                    .zip(g.par_chunks_mut(len))
                    .zip(wtx.par_chunks_mut(len))
                    .zip(parts.par_iter_mut())
                    .enumerate()
                    // One block per task, so that threads finishing early take the
                    // remaining blocks one by one (blocks differ in solver work).
                    .with_max_len(1)
                    .for_each(|(b, (((h, g), wtx), part))| job(b, h, g, wtx, part));
            });
        } else {
            h.chunks_mut(len)
                .zip(g.chunks_mut(len))
                .zip(wtx.chunks_mut(len))
                .zip(self.parts.iter_mut())
                .enumerate()
                .for_each(|(b, (((h, g), wtx), part))| job(b, h, g, wtx, part));
        }
        self.reduce_parts()
    }

    /// Adds the blocks' partial `H Xᵀ`, `H Hᵀ` in block order; returns the
    /// half-step's statistics.
    fn reduce_parts(&mut self) -> Stats {
        let (k, p) = (self.k, self.data.p());
        let mut hxt = vec![0.0_f64; k * p];
        let mut hht = vec![0.0_f64; k * k];
        let mut stats = Stats::default();
        for part in &self.parts {
            for (a, &v) in hxt.iter_mut().zip(&part.hxt) {
                *a += f64::from(v);
            }
            for (a, &v) in hht.iter_mut().zip(&part.hht) {
                *a += v;
            }
            stats = stats.merge(part.stats);
        }
        let hxt = nalgebra::DMatrix::from_row_slice(k, p, &hxt).map(|v| v as f32);
        self.hxt = Panels::from_matrix(&hxt, LANES);
        for (a, &v) in self.hht.iter_mut().zip(&hht) {
            *a = v as f32;
        }
        stats
    }
}

fn norm_sq(m: &Panels) -> f64 {
    m.as_slice().iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}
