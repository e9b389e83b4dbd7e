//! Long work on a worker thread, with the GIL released, while the calling thread waits for it:
//! every [`POLL`] it runs Python's signal handlers (so Ctrl-C raises `KeyboardInterrupt`, which
//! cancels the work through its [`ecco::progress::Control`] and waits for it to stop at its
//! next step) and hands the progress to a Python callback (the package's tqdm bar).

use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ecco::Control;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// How often the waiting thread looks for signals and progress: Ctrl-C stops the work within
/// this plus one step of it.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` (which reports to `control`) off the GIL; `on_progress(message, position,
/// length)` is called with the running step's progress while it lasts.
pub(crate) fn run<T, F>(py: Python<'_>, control: &Control, on_progress: Option<&Bound<'_, PyAny>>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> anyhow::Result<T> + Send,
{
    std::thread::scope(|scope| {
        let (done, finished) = sync_channel(1);
        // A receiver is not `Sync`; the waits below borrow it while the GIL is released.
        let finished = Mutex::new(finished);
        let worker = scope.spawn(move || {
            // The receiver is gone only when the waiting side has stopped listening.
            let _ = done.send(work());
        });
        let outcome: PyResult<anyhow::Result<T>> = loop {
            match py.detach(|| finished.lock().unwrap_or_else(PoisonError::into_inner).recv_timeout(POLL)) {
                Ok(result) => break Ok(result),
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(PyRuntimeError::new_err("ecco_rs: the computation panicked (a bug: please report it)"));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        break Err(interrupt);
                    }
                    if let (Some(callback), Some(s)) = (on_progress, control.snapshot())
                        && let Err(err) = callback.call1((s.message, s.position, s.length))
                    {
                        break Err(err);
                    }
                }
            }
        };
        if outcome.is_err() {
            // The work stops at its next step; its result (an error saying so) is dropped.
            control.cancel();
        }
        // Joining here (not at the end of the scope) keeps a panic of the worker from
        // unwinding through Python.
        let _ = py.detach(|| worker.join());
        outcome?.map_err(|e| to_py(py, &e))
    })
}
