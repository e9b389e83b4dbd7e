//! [`Cancel`]: stopping long work (generation, attribution) from another thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// A flag that long loops check between steps (a generated token, a batch of attribution
/// rows): once [`cancel`](Self::cancel)led, they stop with [`Error::Cancelled`].
///
/// Clones share the flag, so one clone goes into the options of the work and another stays
/// with whoever may stop it (the Python package's Ctrl-C handler).
///
/// ```
/// let cancel = ecco_core::Cancel::new();
/// let handle = cancel.clone();
/// assert!(cancel.check().is_ok());
/// handle.cancel();
/// assert!(matches!(cancel.check(), Err(ecco_core::Error::Cancelled)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag: the work sharing it stops at its next step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` once the flag is set: what a loop calls between steps.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the flag is set.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }
}

/// Two handles are equal when they share one flag.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
