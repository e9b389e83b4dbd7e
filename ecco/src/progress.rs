//! Progress bars on stderr: drawn on a terminal, silent when piped (indicatif hides its stderr
//! target when stderr is not a terminal) or when the caller turned them off; and [`Control`],
//! through which another thread follows the work and stops it.

use std::sync::{Arc, Mutex, PoisonError};

use ecco_core::Cancel;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A handle to long work ([`Lm::generate`](crate::Lm::generate), [`Lm::forward`](crate::Lm::forward))
/// for another thread: [`snapshot`](Self::snapshot) reads the current step's progress (also
/// when no bar is drawn), [`cancel`](Self::cancel) stops the work at its next step (a generated
/// token, a batch of attribution rows) with [`ecco_core::Error::Cancelled`].
///
/// Clones share their state: put one in the options, keep another.
#[derive(Clone, Debug, Default)]
pub struct Control {
    cancel: Cancel,
    current: Arc<Mutex<Option<ProgressBar>>>,
}

/// Where a piece of work stands, as [`Control::snapshot`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The step's name (`generating`, `grad_x_input`, `integrated_gradients`, …).
    pub message: String,
    /// Units done.
    pub position: u64,
    /// Units in all.
    pub length: u64,
}

impl Control {
    /// A control no work has reported to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the work at its next step.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The flag the lower layers check.
    pub fn cancel_token(&self) -> &Cancel {
        &self.cancel
    }

    /// The progress of the step running now, if any.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|bar| !bar.is_finished()).map(|bar| Snapshot {
            message: bar.message(),
            position: bar.position(),
            length: bar.length().unwrap_or(0),
        })
    }

    fn watch(&self, bar: &ProgressBar) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
    }
}

/// Two controls are equal when they share their state.
impl PartialEq for Control {
    fn eq(&self, other: &Self) -> bool {
        self.cancel == other.cancel
    }
}

/// A bar of `len` steps with `message`; drawn only when `show` is true and stderr is a
/// terminal; `control` (if any) follows it.
pub fn bar(show: bool, control: Option<&Control>, len: u64, message: &str) -> ProgressBar {
    let target = if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    if let Some(control) = control {
        control.watch(&bar);
    }
    bar
}

/// A spinner with `message` for work of unknown length; hidden as [`bar`] is.
pub fn spinner(show: bool, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
