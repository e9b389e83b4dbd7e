//! The HTML report in a real headless Chromium: it loads with no console error and no network
//! request, hovering or focusing a token changes what is highlighted, hostile token text stays
//! text, and a 500-token report is small and quick. Screenshots are saved under the target
//! directory (`browser-artifacts/`).
//!
//! Needs Chromium (`apt-get install chromium`, or `ECCO_CHROMIUM=/path`); set
//! `ECCO_SKIP_BROWSER_TESTS=1` to skip these tests where no browser can be installed.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::cdp::{Browser, chromium_or_skip};
use common::{pieces, synthetic_report};
use serde_json::Value;

/// One browser at a time: the timing test must not share the CPU with another page.
static BROWSER: Mutex<()> = Mutex::new(());

fn artefact_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_page(dir: &Path, name: &str, report: &ecco_viz::Report) -> Result<(PathBuf, String)> {
    let path = dir.join(name);
    ecco_viz::write_atomic(&path, ecco_viz::render_html(report)?.as_bytes())?;
    let url = format!("file://{}", path.canonicalize()?.display());
    Ok((path, url))
}

/// Requests for anything but the page itself.
fn foreign_requests(b: &Browser, page: &str) -> Vec<String> {
    b.events_named("Network.requestWillBeSent")
        .into_iter()
        .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
        .filter(|u| u != page)
        .collect()
}

fn highlighted(b: &mut Browser, section: &str) -> Result<Vec<String>> {
    let v = b.eval(&format!("[...document.querySelectorAll('#{section} .tok.hl')].map(e => e.dataset.i + ':' + e.dataset.w)"))?;
    Ok(serde_json::from_value(v)?)
}

fn selected(b: &mut Browser, section: &str) -> Result<Value> {
    b.eval(&format!("[...document.querySelectorAll('#{section} .tok.sel')].map(e => +e.dataset.i)"))
}

#[test]
fn report_loads_offline_and_hover_and_focus_highlight_the_tokens_read() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir()?;
    let (n_input, n) = (20, 30);
    let report = synthetic_report(&pieces(n), n_input, 6, 2)?;
    let (_path, url) = write_page(tmp.path(), "report.html", &report)?;
    let mut b = Browser::launch(&exe)?;
    b.open(&url)?;
    b.pump(Duration::from_millis(300))?;

    // Every view is drawn.
    for id in ["v-output", "v-attr-0", "v-attr-1", "v-preds", "v-rankings", "v-watch", "v-nmf", "v-attention", "v-neurons"] {
        ensure!(b.eval(&format!("!!document.getElementById('{id}')"))? == Value::Bool(true), "view {id} missing");
    }
    ensure!(b.eval("document.querySelectorAll('#v-rankings td').length")? == serde_json::json!(6 * (n - n_input)));

    // Hover: the first generated token is selected at load; hovering the last one changes
    // which input tokens are highlighted (it read more of them).
    let before = highlighted(&mut b, "v-attr-0")?;
    ensure!(before.len() == n_input, "first generated token reads {n_input} tokens, {} highlighted", before.len());
    b.hover(&format!("#v-attr-0 .tok[data-i=\"{}\"]", n - 1))?;
    let after = highlighted(&mut b, "v-attr-0")?;
    ensure!(after != before && after.len() == n - 1, "hover did not change the highlight: {} -> {}", before.len(), after.len());
    ensure!(selected(&mut b, "v-attr-0")? == serde_json::json!([n - 1]));

    // Keyboard: focus works as hover does, and the arrow keys move between generated tokens.
    b.eval(&format!("document.querySelector('#v-attr-1 .tok[data-i=\"{}\"]').focus()", n_input + 3))?;
    ensure!(selected(&mut b, "v-attr-1")? == serde_json::json!([n_input + 3]), "focus did not select");
    ensure!(highlighted(&mut b, "v-attr-1")?.len() == n_input + 3);
    b.key("ArrowLeft", 37)?;
    ensure!(selected(&mut b, "v-attr-1")? == serde_json::json!([n_input + 2]), "ArrowLeft did not move the selection");
    ensure!(b.eval("document.activeElement.dataset.i")? == serde_json::json!((n_input + 2).to_string()));
    // Input tokens are not focusable in the attribution view (they are not explained).
    ensure!(b.eval("document.querySelector('#v-attr-1 .tok[data-i=\"0\"]').tabIndex")? == serde_json::json!(-1));

    // Attention: hovering another token, or picking another head, changes the highlight.
    let a0 = highlighted(&mut b, "v-attention")?;
    b.hover("#v-attention .tok[data-i=\"5\"]")?;
    let a1 = highlighted(&mut b, "v-attention")?;
    ensure!(!a1.is_empty() && a1 != a0, "attention hover did not change the highlight");
    b.eval("(() => { const s = document.querySelectorAll('#v-attention select')[1]; s.value = '3'; s.dispatchEvent(new Event('change')); })()")?;
    ensure!(highlighted(&mut b, "v-attention")? != a1, "changing the head did not change the highlight");

    // NMF: switching a factor off recolours the tokens it dominated.
    let dominated = "[...document.querySelectorAll('#v-nmf .tok')].filter(e => e.dataset.factor === '0').length";
    ensure!(b.eval(dominated)?.as_u64().context("count")? > 0, "factor 0 dominates no token");
    b.eval("document.querySelector('#v-nmf input[type=checkbox]').click()")?;
    ensure!(b.eval(dominated)? == serde_json::json!(0), "factor 0 still colours tokens after switching it off");

    b.pump(Duration::from_millis(200))?;
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    let foreign = foreign_requests(&b, &url);
    ensure!(foreign.is_empty(), "network requests: {foreign:?}");
    let png = b.screenshot()?;
    ensure!(png.starts_with(b"\x89PNG"), "not a PNG");
    let shot = artefact_dir()?.join("report.png");
    std::fs::write(&shot, png)?;
    eprintln!("screenshot: {}", shot.display());
    Ok(())
}

#[test]
fn hostile_token_text_is_shown_as_text_and_never_run() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir()?;
    let hostile: Vec<String> = [
        "<script>alert(1)</script>",
        "Ġ\"quoted\"",
        "Ġa&amp;b",
        "Ġ&",
        "<img src=x onerror=alert(2)>",
        "</script><script>alert(3)</script>",
        "Ġ<!--",
        "'single'",
        "Ġplain",
        "Ġend",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut report = synthetic_report(&hostile, 4, 2, 1)?;
    report.title = "<script>alert(4)</script> & \"title\"".into();
    let (_path, url) = write_page(tmp.path(), "hostile.html", &report)?;
    let mut b = Browser::launch(&exe)?;
    b.open(&url)?;
    b.hover("#v-attr-0 .tok[data-i=\"9\"]")?;
    b.pump(Duration::from_millis(500))?;
    let dialogs = b.events_named("Page.javascriptDialogOpening").len();
    ensure!(dialogs == 0, "{dialogs} dialogs opened: token text was run");
    let shown: Vec<String> = serde_json::from_value(b.eval("[...document.querySelectorAll('#v-output .tok')].map(e => e.textContent)")?)?;
    let expected: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
    ensure!(shown == expected, "token text changed on the way: {shown:?}");
    ensure!(shown[0] == "<script>alert(1)</script>" && shown[2] == " a&amp;b");
    ensure!(b.eval("document.title")? == serde_json::json!(report.title));
    ensure!(b.eval("document.scripts.length")? == serde_json::json!(2), "extra script elements");
    ensure!(b.eval("document.querySelectorAll('img').length")? == serde_json::json!(0), "markup from token text");
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    let foreign = foreign_requests(&b, &url);
    ensure!(foreign.is_empty(), "network requests: {foreign:?}");
    std::fs::write(artefact_dir()?.join("hostile.png"), b.screenshot()?)?;
    Ok(())
}

#[test]
fn a_500_token_report_stays_under_5_mb_and_renders_within_2_s() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir()?;
    let report = synthetic_report(&pieces(500), 20, 6, 1)?;
    let (path, url) = write_page(tmp.path(), "big.html", &report)?;
    let bytes = std::fs::metadata(&path)?.len();
    let mut b = Browser::launch(&exe)?;
    let wall = b.open(&url)?;
    let script_ms = b.eval("window.eccoRenderMs")?.as_f64().context("render time")?;
    eprintln!("500 tokens, 6 layers, 12 heads: {:.2} MB, drawn {:.0} ms after navigation ({script_ms:.0} ms in our script)", bytes as f64 / 1e6, wall.as_secs_f64() * 1e3);
    ensure!(bytes < 5_000_000, "report is {bytes} bytes");
    ensure!(wall < Duration::from_secs(2), "drawn after {wall:?}");
    b.hover("#v-attr-0 .tok[data-i=\"499\"]")?;
    ensure!(highlighted(&mut b, "v-attr-0")?.len() == 499);
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    std::fs::write(artefact_dir()?.join("report-500.png"), b.screenshot()?)?;
    Ok(())
}

/// Times any report: `ECCO_REPORT=/path/report.html cargo test --release -p ecco-viz --test
/// browser -- --ignored --nocapture time_a_report_file`.
#[test]
#[ignore = "a measurement on a file named by ECCO_REPORT"]
fn time_a_report_file() -> Result<()> {
    let Some(exe) = chromium_or_skip()? else { return Ok(()) };
    let path = PathBuf::from(std::env::var("ECCO_REPORT").context("set ECCO_REPORT to a report's path")?);
    let url = format!("file://{}", path.canonicalize()?.display());
    let bytes = std::fs::metadata(&path)?.len();
    let mut b = Browser::launch(&exe)?;
    let wall = b.open(&url)?;
    let script_ms = b.eval("window.eccoRenderMs")?.as_f64().context("render time")?;
    b.pump(Duration::from_millis(200))?;
    eprintln!("{}: {:.2} MB, drawn {:.0} ms after navigation ({script_ms:.0} ms in our script)", path.display(), bytes as f64 / 1e6, wall.as_secs_f64() * 1e3);
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    let foreign = foreign_requests(&b, &url);
    ensure!(foreign.is_empty(), "network requests: {foreign:?}");
    std::fs::write(artefact_dir()?.join("timed.png"), b.screenshot()?)?;
    Ok(())
}
