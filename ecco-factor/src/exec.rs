//! Where the parallel parts of a fit run: nowhere (the calling thread), rayon's global
//! pool, or a pool of a requested size.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// The executor of one fit.
pub(crate) enum Exec {
    /// Everything on the calling thread.
    Sequential,
    /// rayon's global pool.
    Global,
    /// A pool built for this fit.
    Pool(rayon::ThreadPool),
}

impl Exec {
    /// `None`: the global pool (sequential if it has one thread); `Some(1)`:
    /// sequential; `Some(n)`: a new pool of `n` threads.
    pub(crate) fn new(threads: Option<usize>) -> Result<Self> {
        Ok(match threads {
            None if rayon::current_num_threads() > 1 => Self::Global,
            None | Some(1) => Self::Sequential,
            Some(n) => Self::Pool(rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| Error::ThreadPool(e.to_string()))?),
        })
    }

    /// Whether work should be split at all.
    pub(crate) fn parallel(&self) -> bool {
        !matches!(self, Self::Sequential)
    }

    /// Runs `f` where this executor's rayon calls go to its pool.
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            Self::Pool(pool) => pool.install(f),
            Self::Sequential | Self::Global => f(),
        }
    }

    /// `[f(0), …, f(n − 1)]`, computed in parallel unless sequential.
    pub(crate) fn map_indexed<T, F>(&self, n: usize, f: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync + Send,
    {
        if self.parallel() && n > 1 { self.run(|| (0..n).into_par_iter().map(&f).collect()) } else { (0..n).map(f).collect() }
    }

    /// `(a(), b())`, side by side unless sequential.
    pub(crate) fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        if self.parallel() { self.run(|| rayon::join(a, b)) } else { (a(), b()) }
    }

    /// `f(i, chunk)` for each chunk of `len` items of `data`, in parallel unless
    /// sequential; the results in chunk order.
    pub(crate) fn map_chunks<T, R, F>(&self, data: &mut [T], len: usize, f: F) -> Vec<R>
    where
        T: Send,
        R: Send,
        F: Fn(usize, &mut [T]) -> R + Sync + Send,
    {
        if self.parallel() && data.len() > len {
            self.run(|| data.par_chunks_mut(len).enumerate().map(|(i, c)| f(i, c)).collect())
        } else {
            data.chunks_mut(len).enumerate().map(|(i, c)| f(i, c)).collect()
        }
    }
}
