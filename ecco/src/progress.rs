//! Progress bars on stderr: drawn on a terminal, silent when piped (indicatif hides its stderr
//! target when stderr is not a terminal) or when the caller turned them off.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps with `message`; hidden when `show` is false or stderr is not a terminal.
pub fn bar(show: bool, len: u64, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
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
