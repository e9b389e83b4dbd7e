//! The HTML report in a real headless Chromium: it loads with no console error and no network
//! request, hovering or focusing a token changes what is highlighted, hostile token text stays
//! text, and a 500-token report is small and quick. Screenshots are saved under the target
//! directory (`browser-artifacts/`). The checks are shared with Firefox (`browser_firefox.rs`)
//! in `common/checks.rs`.
//!
//! Needs Chromium (`apt-get install chromium`, or `ECCO_CHROMIUM=/path`); set
//! `ECCO_SKIP_BROWSER_TESTS=1` to skip these tests where no browser can be installed.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use common::cdp::{Browser, chromium_or_skip};
use common::checks;

/// One browser at a time: the timing test must not share the CPU with another page.
static BROWSER: Mutex<()> = Mutex::new(());

/// Screenshots of Chromium carry no prefix.
const PREFIX: &str = "";

#[test]
fn report_loads_offline_and_hover_and_focus_highlight_the_tokens_read() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::report_loads_offline_and_hover_and_focus_highlight_the_tokens_read(&mut Browser::launch(&exe)?, PREFIX)
}

#[test]
fn hostile_token_text_is_shown_as_text_and_never_run() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::hostile_token_text_is_shown_as_text_and_never_run(&mut Browser::launch(&exe)?, PREFIX)
}

#[test]
fn a_500_token_report_stays_under_5_mb_and_renders_within_2_s() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::a_500_token_report_stays_under_5_mb_and_renders_within(&mut Browser::launch(&exe)?, PREFIX, Duration::from_secs(2))
}

/// Times any report: `ECCO_REPORT=/path/report.html cargo test --release -p ecco-viz --test
/// browser -- --ignored --nocapture time_a_report_file`.
#[test]
#[ignore = "a measurement on a file named by ECCO_REPORT"]
fn time_a_report_file() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    checks::time_a_report_file(&mut Browser::launch(&exe)?, PREFIX)
}

/// The tutorial notebook's views, inline as a notebook shows them: `scripts/test_python.sh`
/// runs this after the notebook test has written them (`ECCO_NOTEBOOK_PAGES`).
#[test]
#[ignore = "run by scripts/test_python.sh on the pages of the Python package's notebook test"]
fn notebook_views_load_offline() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    checks::notebook_views_load_offline(&mut Browser::launch(&exe)?, PREFIX)
}
