//! Lin's `nlssubprob` loop on one panel, written as a state machine that asks for
//! one Armijo trial at a time ([`PanelSolve::wants_trial`]) and is told its result
//! ([`PanelSolve::consume`]), so that `nls` can run the trials of two panels
//! together ([`trial2`](crate::nls_kernels::trial2)). Everything else a panel does
//! (taking a step, the gradient update, the stopping test) happens here, on its own.
//! The sequence of operations on a panel is exactly the loop of `nls`' module notes.

use pulp::Simd;

use crate::nls::{Problem, Stats};
use crate::nls_kernels::{PackedQ, Trial, TrialPoint, refresh, step_gradient};

/// Lin's sufficient-decrease constant σ (the paper's 0.01; the test is written
/// `(1 − σ) ⟨g, d⟩ + ½ ⟨d, Q d⟩ < 0`).
pub(crate) const SIGMA: f32 = 0.01;
/// Lin's step-size factor β.
const BETA: f32 = 0.1;
/// Line-search trials per iteration (Lin's `inner_iter` bound).
const MAX_TRIALS: usize = 20;
/// The gradient is updated incrementally after each step and recomputed from
/// scratch this often, so `f32` rounding cannot drift.
const REFRESH_EVERY: usize = 16;

/// Buffers of one panel solve, chunk-major (see `nls_kernels`): the panel's `b`, `z`,
/// `g`, two trial points with their `Q d`, and `d`.
pub(crate) struct Scratch<V> {
    pub(crate) b: Vec<V>,
    pub(crate) z: Vec<V>,
    pub(crate) g: Vec<V>,
    zn: [Vec<V>; 2],
    qd: [Vec<V>; 2],
    d: Vec<V>,
}

impl<V: Copy> Scratch<V> {
    /// Buffers of `len` vectors, all `zero`.
    pub(crate) fn new(len: usize, zero: V) -> Self {
        let v = || vec![zero; len];
        Self { b: v(), z: v(), g: v(), zn: [v(), v()], qd: [v(), v()], d: v() }
    }
}

/// One panel's solve: its buffers and where Lin's loop stands.
pub(crate) struct PanelSolve<V> {
    pub(crate) s: Scratch<V>,
    /// The step size of the next trial.
    alpha: f32,
    /// Lin's iteration count (1: stopped at once).
    iter: usize,
    since_refresh: usize,
    /// `‖P∇f‖²` now and at the start.
    pg: f64,
    init_pg: f64,
    /// Trials of the current iteration so far.
    t: usize,
    decrease_alpha: bool,
    /// The trial point buffer of the last trial that passed while enlarging `alpha`.
    last_ok: Option<usize>,
    /// Whether that trial moved some entry without clipping it (Lin's `Hp != Hn`).
    prev_moving: bool,
    /// The trial point buffer the next trial writes.
    cur: usize,
    done: bool,
}

impl<V: Copy> PanelSolve<V> {
    /// A finished solve over `scratch`; [`PanelSolve::start`] begins one.
    pub(crate) fn new(scratch: Scratch<V>) -> Self {
        Self {
            s: scratch,
            alpha: 1.0,
            iter: 0,
            since_refresh: 0,
            pg: 0.0,
            init_pg: 0.0,
            t: 0,
            decrease_alpha: false,
            last_ok: None,
            prev_moving: true,
            cur: 0,
            done: true,
        }
    }

    /// Starts Lin's loop on the panel in `s.b`, `s.z`.
    #[inline(always)]
    pub(crate) fn start<S: Simd<f32s = V>>(&mut self, simd: S, prob: &Problem<'_>, q: &PackedQ) {
        self.pg = refresh(simd, q, &self.s.b, &self.s.z, &mut self.s.g);
        self.init_pg = self.pg;
        self.alpha = 1.0;
        self.iter = 0;
        self.since_refresh = 0;
        self.done = false;
        self.begin_iteration(prob);
    }

    /// The statistics of the finished solve; the gradient at the final point is in
    /// `s.g`.
    pub(crate) fn stats(&self) -> Stats {
        Stats { init_pg: self.init_pg, pg: self.pg, iters: self.iter }
    }

    /// `Some(alpha)` while the solve needs a trial at step `alpha`, written by
    /// [`PanelSolve::trial_args`]; `None` once it is done.
    #[inline(always)]
    pub(crate) fn wants_trial(&self) -> Option<f32> {
        (!self.done).then_some(self.alpha)
    }

    /// What a trial reads (`z`, `g`) and writes (the trial point).
    #[inline(always)]
    pub(crate) fn trial_args(&mut self) -> (&[V], &[V], TrialPoint<'_, V>) {
        let s = &mut self.s;
        (&s.z, &s.g, TrialPoint { zn: &mut s.zn[self.cur], d: &mut s.d, qd: &mut s.qd[self.cur] })
    }

    /// Lin's line search after the trial at the current `alpha` found `tr`.
    #[inline(always)]
    pub(crate) fn consume<S: Simd<f32s = V>>(&mut self, simd: S, prob: &Problem<'_>, q: &PackedQ, tr: Trial) {
        let suff_decr = tr.decrease < 0.0;
        // The first trial sets the direction of the search: shrink `alpha` after a
        // failure, grow it after a success.
        let decrease = if self.t == 0 { !suff_decr } else { self.decrease_alpha };
        self.decrease_alpha = decrease;
        self.t += 1;
        if decrease == suff_decr {
            // A shrinking search found its step, or a growing one went too far: take
            // this trial point, or the last one that passed. After the first trial
            // this is the usual case, so the branch follows `t`, not the test, and
            // the choice of point is data, not control flow.
            let step = if decrease { Some(self.cur) } else { self.last_ok };
            return self.end_iteration(simd, prob, q, step);
        }
        // `decrease`: shrink and try again. Else the trial passed while growing:
        // keep it and try a longer step.
        let (shrunk, grown) = (self.alpha * BETA, self.alpha / BETA);
        self.alpha = if decrease { shrunk } else { grown };
        let kept = !decrease;
        self.prev_moving = if kept { tr.moving } else { self.prev_moving };
        self.last_ok = if kept { Some(self.cur) } else { self.last_ok };
        self.cur ^= usize::from(kept);
        if self.t == MAX_TRIALS {
            // Out of trials: a shrinking search found nothing; when all 20
            // enlargements pass, Lin's code keeps the old point, but the last one
            // satisfies the decrease condition, so take it.
            let step = if decrease { None } else { self.last_ok };
            self.end_iteration(simd, prob, q, step);
        } else if kept && !self.prev_moving {
            // Lin's `Hp == Hn`: the last accepted trial clipped every moving entry,
            // so a longer step lands on the same point.
            self.end_iteration(simd, prob, q, self.last_ok);
        }
    }

    /// Takes the trial point `step` (if any) and begins the next iteration.
    #[inline(always)]
    fn end_iteration<S: Simd<f32s = V>>(&mut self, simd: S, prob: &Problem<'_>, q: &PackedQ, step: Option<usize>) {
        if let Some(i) = step {
            // The trial point becomes the iterate; its old buffer is scratch now.
            let s = &mut self.s;
            std::mem::swap(&mut s.z, &mut s.zn[i]);
            self.since_refresh += 1;
            if self.since_refresh >= REFRESH_EVERY {
                self.since_refresh = 0;
                self.pg = refresh(simd, q, &s.b, &s.z, &mut s.g);
            } else {
                self.pg = step_gradient(simd, q.k(), &s.z, &s.qd[i], &mut s.g);
            }
        }
        if self.alpha == 0.0 || !self.alpha.is_finite() {
            self.done = true;
            return;
        }
        self.begin_iteration(prob);
    }

    /// Lin's loop head: stop at the iteration bound or once `‖P∇f‖` meets the
    /// tolerance, else a fresh line search.
    #[inline(always)]
    fn begin_iteration(&mut self, prob: &Problem<'_>) {
        if self.iter >= prob.max_iter {
            self.done = true;
            return;
        }
        self.iter += 1;
        // Lin stops on `projgrad < tol`; `<=` also ends the all-zero case (tol = 0).
        if self.pg.sqrt() <= prob.panel_tol {
            self.done = true;
            return;
        }
        self.t = 0;
        self.decrease_alpha = false;
        self.last_ok = None;
        self.prev_moving = true;
        self.cur = 0;
    }
}
