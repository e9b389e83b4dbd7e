//! The HTML report in a real headless Firefox, driven over WebDriver BiDi: the same checks as
//! Chromium's (`browser.rs`, shared in `common/checks.rs`), plus two checks that the harness
//! can fail at all: it sees a console error, a request and a dialog on a page that makes them,
//! and Firefox enforces (and reports) the report's Content-Security-Policy. Screenshots are
//! saved under the target directory (`browser-artifacts/firefox-*.png`).
//!
//! Needs Firefox (`apt-get install firefox-esr`, or `ECCO_FIREFOX=/path`); set
//! `ECCO_SKIP_BROWSER_TESTS=1` to skip these tests where no browser can be installed.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, ensure};
use common::bidi::{Browser, firefox_or_skip};
use common::checks::{self, Page};
use common::{pieces, synthetic_report};
use serde_json::json;

/// One browser at a time: the timing test must not share the CPU with another page.
static BROWSER: Mutex<()> = Mutex::new(());

const PREFIX: &str = "firefox-";

#[test]
fn report_loads_offline_and_hover_and_focus_highlight_the_tokens_read() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::report_loads_offline_and_hover_and_focus_highlight_the_tokens_read(&mut Browser::launch(&exe)?, PREFIX)
}

#[test]
fn hostile_token_text_is_shown_as_text_and_never_run() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::hostile_token_text_is_shown_as_text_and_never_run(&mut Browser::launch(&exe)?, PREFIX)
}

#[test]
fn a_500_token_report_stays_under_5_mb_and_renders_within_2_s() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks::a_500_token_report_stays_under_5_mb_and_renders_within(&mut Browser::launch(&exe)?, PREFIX, Duration::from_secs(2))
}

/// The checks above pass because the page is clean, not because the client misses what it
/// should see: a page that logs an error, fetches an image and opens an alert is caught on all
/// three counts.
#[test]
fn the_harness_sees_console_errors_requests_and_dialogs() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir()?;
    // A free port, closed again: the request is refused at once and the page finishes loading
    // (browsers refuse to even try well-known ports such as 9).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let probe = format!("http://127.0.0.1:{port}/ecco-probe.png");
    let path = tmp.path().join("noisy.html");
    std::fs::write(
        &path,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>noisy</title></head><body>\
             <img src=\"{probe}\" alt=\"\">\
             <script>console.error('ecco probe error'); document.documentElement.dataset.ready = 'true'; \
             setTimeout(() => alert('ecco probe dialog'), 0);</script></body></html>"
        ),
    )?;
    let url = checks::file_url(&path)?;
    let mut b = Browser::launch(&exe)?;
    b.open(&url)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (b.dialogs() == 0 || b.errors().is_empty() || checks::foreign_requests(&b, &url).is_empty())
        && std::time::Instant::now() < deadline
    {
        b.pump(Duration::from_millis(100))?;
    }
    let errors = b.errors();
    ensure!(errors.iter().any(|e| e.contains("ecco probe error")), "console.error not seen: {errors:?}");
    let foreign = checks::foreign_requests(&b, &url);
    ensure!(foreign == [probe.clone()], "image request not seen: {foreign:?}");
    ensure!(b.dialogs() == 1, "{} dialogs seen, 1 opened", b.dialogs());
    // The dialog was dismissed, so the page still answers.
    ensure!(b.eval("document.title")? == json!("noisy"));
    Ok(())
}

/// Firefox enforces the report's Content-Security-Policy: a script and an image smuggled into
/// the page (as a broken escape would let token text do) are blocked, nothing is fetched, the
/// report still draws, and the violations show up as errors.
#[test]
fn the_reports_policy_blocks_injected_markup_and_the_violation_is_an_error() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir()?;
    let report = synthetic_report(&pieces(12), 8, 2, 1)?;
    let page = ecco_viz::render_html(&report)?.replacen(
        "<main id=\"ecco-root\"></main>",
        "<main id=\"ecco-root\"></main><script>window.eccoInjected = true;</script><img id=\"probe\" src=\"http://127.0.0.1:9/ecco-probe.png\" alt=\"\">",
        1,
    );
    ensure!(page.contains("eccoInjected"), "the page changed shape: nothing injected");
    let path = tmp.path().join("injected.html");
    std::fs::write(&path, page)?;
    let url = checks::file_url(&path)?;
    let mut b = Browser::launch(&exe)?;
    b.open(&url)?;
    b.pump(Duration::from_millis(500))?;
    ensure!(b.eval("window.eccoInjected === undefined")? == json!(true), "the injected script ran");
    ensure!(b.eval("document.querySelectorAll('.tok').length > 0")? == json!(true), "the report was not drawn");
    let foreign = checks::foreign_requests(&b, &url);
    ensure!(foreign.is_empty(), "the injected image was fetched: {foreign:?}");
    let errors = b.errors();
    eprintln!("policy violations reported: {errors:?}");
    ensure!(!errors.is_empty(), "Firefox blocked the injected markup without reporting an error");
    Ok(())
}

/// Times any report in Firefox: `ECCO_REPORT=/path/report.html cargo test --release -p ecco-viz
/// --test browser_firefox -- --ignored --nocapture time_a_report_file`.
#[test]
#[ignore = "a measurement on a file named by ECCO_REPORT"]
fn time_a_report_file() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    checks::time_a_report_file(&mut Browser::launch(&exe)?, PREFIX)
}

/// The tutorial notebook's views, inline as a notebook shows them: `scripts/test_python.sh`
/// runs this after the notebook test has written them (`ECCO_NOTEBOOK_PAGES`).
#[test]
#[ignore = "run by scripts/test_python.sh on the pages of the Python package's notebook test"]
fn notebook_views_load_offline() -> Result<()> {
    let Some(exe) = firefox_or_skip()? else { return Ok(()) };
    checks::notebook_views_load_offline(&mut Browser::launch(&exe)?, PREFIX)
}
