//! What every browser must do with the HTML report, written once against [`Page`]: the few
//! things a test asks of a browser, which the DevTools (Chromium) and WebDriver BiDi (Firefox)
//! clients both provide. Screenshots go to `browser-artifacts/` under the target directory,
//! named with the browser's `prefix` (empty for Chromium, `firefox-` for Firefox).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::{pieces, synthetic_report};

/// One page in a browser, driven by a test.
pub trait Page {
    /// Opens `url` and waits until the report says it is drawn; the time from the navigation
    /// to that point.
    fn open(&mut self, url: &str) -> Result<Duration>;
    /// Collects the browser's events for `wait`.
    fn pump(&mut self, wait: Duration) -> Result<()>;
    /// Evaluates `expr` in the page and returns its value as JSON (promises awaited;
    /// `undefined` is `null`).
    fn eval(&mut self, expr: &str) -> Result<Value>;
    /// Moves the mouse onto the centre of the element `selector` matches (scrolled into view).
    fn hover(&mut self, selector: &str) -> Result<()>;
    /// Presses and releases a key (`ArrowLeft`, `ArrowRight`, …) on the focused element.
    fn key(&mut self, key: &str) -> Result<()>;
    /// A PNG of the whole page.
    fn screenshot(&mut self) -> Result<Vec<u8>>;
    /// Console errors, uncaught exceptions and error log entries seen so far.
    fn errors(&self) -> Vec<String>;
    /// The URL of every request the page made so far (the page's own included).
    fn requests(&self) -> Vec<String>;
    /// How many dialogs (`alert`, `confirm`, `prompt`) opened so far.
    fn dialogs(&self) -> usize;

    /// After navigating to `url` at `start`, waits until the report marks itself drawn
    /// (`data-ready` on the root element); the time since `start`. Fails after 30 s.
    fn wait_drawn(&mut self, url: &str, start: Instant) -> Result<Duration> {
        loop {
            if self.eval("!!(document.documentElement && document.documentElement.dataset.ready === 'true')").unwrap_or(Value::Null)
                == json!(true)
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("{url} was not drawn within 30 s");
            }
            self.pump(Duration::from_millis(20))?;
        }
    }
}

/// Windows virtual key code of the keys the tests press (DevTools wants it).
pub fn virtual_key_code(key: &str) -> Option<u32> {
    Some(match key {
        "Tab" => 9,
        "Enter" => 13,
        "ArrowLeft" => 37,
        "ArrowUp" => 38,
        "ArrowRight" => 39,
        "ArrowDown" => 40,
        _ => return None,
    })
}

/// Where screenshots go.
pub fn artefact_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `report`'s page to `dir/name`; its path and `file://` URL.
pub fn write_page(dir: &Path, name: &str, report: &ecco_viz::Report) -> Result<(PathBuf, String)> {
    let path = dir.join(name);
    ecco_viz::write_atomic(&path, ecco_viz::render_html(report)?.as_bytes())?;
    Ok((path.clone(), file_url(&path)?))
}

/// The `file://` URL of an existing file.
pub fn file_url(path: &Path) -> Result<String> {
    Ok(format!("file://{}", path.canonicalize()?.display()))
}

/// Requests for anything but the page itself.
pub fn foreign_requests(b: &dyn Page, page: &str) -> Vec<String> {
    b.requests().into_iter().filter(|u| u != page).collect()
}

/// Saves a screenshot as `{prefix}{name}` in the artefact directory; its path.
fn save_screenshot(b: &mut dyn Page, prefix: &str, name: &str) -> Result<PathBuf> {
    let png = b.screenshot()?;
    ensure!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    let shot = artefact_dir()?.join(format!("{prefix}{name}"));
    std::fs::write(&shot, png)?;
    Ok(shot)
}

/// No console error and no request but the page's own.
fn offline_and_clean(b: &dyn Page, url: &str) -> Result<()> {
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    let foreign = foreign_requests(b, url);
    ensure!(foreign.is_empty(), "network requests: {foreign:?}");
    Ok(())
}

fn highlighted(b: &mut dyn Page, section: &str) -> Result<Vec<String>> {
    let v = b.eval(&format!("[...document.querySelectorAll('#{section} .tok.hl')].map(e => e.dataset.i + ':' + e.dataset.w)"))?;
    Ok(serde_json::from_value(v)?)
}

fn selected(b: &mut dyn Page, section: &str) -> Result<Value> {
    b.eval(&format!("[...document.querySelectorAll('#{section} .tok.sel')].map(e => +e.dataset.i)"))
}

/// Every view is drawn; hover, focus and the arrow keys move the highlight; the attention head
/// and NMF factor controls work; no console error, no request; a screenshot `{prefix}report.png`.
pub fn report_loads_offline_and_hover_and_focus_highlight_the_tokens_read(b: &mut dyn Page, prefix: &str) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (n_input, n) = (20, 30);
    let report = synthetic_report(&pieces(n), n_input, 6, 2)?;
    let (_path, url) = write_page(tmp.path(), "report.html", &report)?;
    b.open(&url)?;
    b.pump(Duration::from_millis(300))?;

    // Every view is drawn.
    for id in ["v-output", "v-attr-0", "v-attr-1", "v-preds", "v-rankings", "v-watch", "v-nmf", "v-attention", "v-neurons", "v-evaluation"]
    {
        ensure!(b.eval(&format!("!!document.getElementById('{id}')"))? == Value::Bool(true), "view {id} missing");
    }
    ensure!(b.eval("document.querySelectorAll('#v-rankings td').length")? == json!(6 * (n - n_input)));
    // Faithfulness: a deletion and an insertion chart, one line per method and the random
    // ranking (dashed), and a row of scores for each.
    ensure!(b.eval("document.querySelectorAll('#v-evaluation svg.chart').length")? == json!(2));
    ensure!(b.eval("document.querySelectorAll('#v-evaluation svg.chart polyline').length")? == json!(6));
    ensure!(b.eval("document.querySelectorAll('#v-evaluation polyline[stroke-dasharray]').length")? == json!(2));
    ensure!(b.eval("document.querySelectorAll('#v-evaluation table.scores tr').length")? == json!(4));

    // Hover: the first generated token is selected at load; hovering the last one changes
    // which input tokens are highlighted (it read more of them).
    let before = highlighted(b, "v-attr-0")?;
    ensure!(before.len() == n_input, "first generated token reads {n_input} tokens, {} highlighted", before.len());
    b.hover(&format!("#v-attr-0 .tok[data-i=\"{}\"]", n - 1))?;
    let after = highlighted(b, "v-attr-0")?;
    ensure!(after != before && after.len() == n - 1, "hover did not change the highlight: {} -> {}", before.len(), after.len());
    ensure!(selected(b, "v-attr-0")? == json!([n - 1]));

    // Keyboard: focus works as hover does, and the arrow keys move between generated tokens.
    b.eval(&format!("document.querySelector('#v-attr-1 .tok[data-i=\"{}\"]').focus()", n_input + 3))?;
    ensure!(selected(b, "v-attr-1")? == json!([n_input + 3]), "focus did not select");
    ensure!(highlighted(b, "v-attr-1")?.len() == n_input + 3);
    b.key("ArrowLeft")?;
    ensure!(selected(b, "v-attr-1")? == json!([n_input + 2]), "ArrowLeft did not move the selection");
    ensure!(b.eval("document.activeElement.dataset.i")? == json!((n_input + 2).to_string()));
    b.key("ArrowRight")?;
    b.key("ArrowRight")?;
    ensure!(selected(b, "v-attr-1")? == json!([n_input + 4]), "ArrowRight did not move the selection");
    // Input tokens are not focusable in the attribution view (they are not explained).
    ensure!(b.eval("document.querySelector('#v-attr-1 .tok[data-i=\"0\"]').tabIndex")? == json!(-1));

    // Attention: hovering another token, or picking another head, changes the highlight.
    let a0 = highlighted(b, "v-attention")?;
    b.hover("#v-attention .tok[data-i=\"5\"]")?;
    let a1 = highlighted(b, "v-attention")?;
    ensure!(!a1.is_empty() && a1 != a0, "attention hover did not change the highlight");
    b.eval(
        "(() => { const s = document.querySelectorAll('#v-attention select')[1]; s.value = '3'; s.dispatchEvent(new Event('change')); })()",
    )?;
    ensure!(highlighted(b, "v-attention")? != a1, "changing the head did not change the highlight");

    // NMF: switching a factor off recolours the tokens it dominated.
    let dominated = "[...document.querySelectorAll('#v-nmf .tok')].filter(e => e.dataset.factor === '0').length";
    ensure!(b.eval(dominated)?.as_u64().context("count")? > 0, "factor 0 dominates no token");
    b.eval("document.querySelector('#v-nmf input[type=checkbox]').click()")?;
    ensure!(b.eval(dominated)? == json!(0), "factor 0 still colours tokens after switching it off");

    b.pump(Duration::from_millis(200))?;
    offline_and_clean(b, &url)?;
    let shot = save_screenshot(b, prefix, "report.png")?;
    eprintln!("screenshot: {}", shot.display());
    Ok(())
}

/// Token text and a title full of markup and script stay text: no dialog, no extra element,
/// the same characters on screen; a screenshot `{prefix}hostile.png`.
pub fn hostile_token_text_is_shown_as_text_and_never_run(b: &mut dyn Page, prefix: &str) -> Result<()> {
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
    b.open(&url)?;
    b.hover("#v-attr-0 .tok[data-i=\"9\"]")?;
    b.pump(Duration::from_millis(500))?;
    let dialogs = b.dialogs();
    ensure!(dialogs == 0, "{dialogs} dialogs opened: token text was run");
    let shown: Vec<String> = serde_json::from_value(b.eval("[...document.querySelectorAll('#v-output .tok')].map(e => e.textContent)")?)?;
    let expected: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
    ensure!(shown == expected, "token text changed on the way: {shown:?}");
    ensure!(shown[0] == "<script>alert(1)</script>" && shown[2] == " a&amp;b");
    ensure!(b.eval("document.title")? == json!(report.title));
    ensure!(b.eval("document.scripts.length")? == json!(2), "extra script elements");
    ensure!(b.eval("document.querySelectorAll('img').length")? == json!(0), "markup from token text");
    offline_and_clean(b, &url)?;
    save_screenshot(b, prefix, "hostile.png")?;
    Ok(())
}

/// A 500-token, 6-layer report is under 5 MB and drawn within `budget` of the navigation;
/// hovering still works; a screenshot `{prefix}report-500.png`.
pub fn a_500_token_report_stays_under_5_mb_and_renders_within(b: &mut dyn Page, prefix: &str, budget: Duration) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let report = synthetic_report(&pieces(500), 20, 6, 1)?;
    let (path, url) = write_page(tmp.path(), "big.html", &report)?;
    let bytes = std::fs::metadata(&path)?.len();
    let wall = b.open(&url)?;
    let script_ms = b.eval("window.eccoRenderMs")?.as_f64().context("render time")?;
    eprintln!(
        "{prefix}500 tokens, 6 layers, 12 heads: {:.2} MB, drawn {:.0} ms after navigation ({script_ms:.0} ms in our script)",
        bytes as f64 / 1e6,
        wall.as_secs_f64() * 1e3
    );
    ensure!(bytes < 5_000_000, "report is {bytes} bytes");
    ensure!(wall < budget, "drawn after {wall:?}, budget {budget:?}");
    b.hover("#v-attr-0 .tok[data-i=\"499\"]")?;
    ensure!(highlighted(b, "v-attr-0")?.len() == 499);
    let errors = b.errors();
    ensure!(errors.is_empty(), "console errors: {errors:?}");
    save_screenshot(b, prefix, "report-500.png")?;
    Ok(())
}

/// Times the report at `ECCO_REPORT`; a screenshot `{prefix}timed.png`.
pub fn time_a_report_file(b: &mut dyn Page, prefix: &str) -> Result<()> {
    let path = PathBuf::from(std::env::var("ECCO_REPORT").context("set ECCO_REPORT to a report's path")?);
    let url = file_url(&path)?;
    let bytes = std::fs::metadata(&path)?.len();
    let wall = b.open(&url)?;
    let script_ms = b.eval("window.eccoRenderMs")?.as_f64().context("render time")?;
    b.pump(Duration::from_millis(200))?;
    eprintln!(
        "{}: {:.2} MB, drawn {:.0} ms after navigation ({script_ms:.0} ms in our script)",
        path.display(),
        bytes as f64 / 1e6,
        wall.as_secs_f64() * 1e3
    );
    offline_and_clean(b, &url)?;
    save_screenshot(b, prefix, "timed.png")?;
    Ok(())
}
