//! A small Chrome DevTools Protocol client over a websocket: enough to drive headless
//! Chromium from a test (open a page, evaluate, dispatch input, take a screenshot) and to
//! collect every event it reports (console errors, exceptions, network requests, dialogs).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The names Chromium goes by on `PATH`.
const NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Where Chromium is: `ECCO_CHROMIUM`, or `chromium` / `chromium-browser` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    super::find_browser("ECCO_CHROMIUM", &NAMES)
}

/// `Ok(None)` when browser tests are switched off with `ECCO_SKIP_BROWSER_TESTS=1`; an error
/// naming the package to install when Chromium is missing.
pub fn chromium_or_skip() -> Result<Option<PathBuf>> {
    super::browser_or_skip(
        "ECCO_CHROMIUM",
        &NAMES,
        "no Chromium found: install it (`apt-get install chromium`), point ECCO_CHROMIUM at it, or set ECCO_SKIP_BROWSER_TESTS=1",
    )
}

/// A headless Chromium with one page attached; killed when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Every event received so far (`{"method": …, "params": …}`).
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium headless with an empty profile and opens a blank page with the
    /// Runtime, Log, Network and Page domains enabled.
    pub fn launch(exe: &Path) -> Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(exe)
            .args([
                "--headless=new",
                "--remote-debugging-port=0",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_owned());
                    sent = true;
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                bail!("{} did not print its DevTools address within 30 s", exe.display());
            }
        };
        let host = url.trim_start_matches("ws://").split('/').next().context("bad DevTools url")?.to_owned();
        let stream = TcpStream::connect(&host)?;
        // A blocking handshake (a busy machine may take a while to answer), then short read
        // timeouts so that waiting for events can stop at a deadline.
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let (ws, _) = tungstenite::client(url.as_str(), stream).map_err(|e| anyhow::anyhow!("websocket handshake: {e}"))?;
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut b = Self { child, ws, session: String::new(), next_id: 0, events: Vec::new(), _profile: profile };
        let target = b.call_on(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().context("no targetId")?.to_owned();
        let attached = b.call_on(None, "Target.attachToTarget", json!({"targetId": target_id, "flatten": true}))?;
        b.session = attached["sessionId"].as_str().context("no sessionId")?.to_owned();
        for domain in ["Runtime", "Log", "Network", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}))?;
        }
        Ok(b)
    }

    fn read(&mut self, deadline: Instant) -> Result<Option<Value>> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(Some(serde_json::from_str(text.as_str())?)),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if Instant::now() > deadline {
                        return Ok(None);
                    }
                }
                Err(e) => bail!("DevTools connection: {e}"),
            }
        }
    }

    fn call_on(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(v) = self.read(deadline)? {
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    bail!("{method}: {err}");
                }
                return Ok(v["result"].clone());
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
        bail!("{method}: no answer within 60 s")
    }

    /// Calls `method` on the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.call_on(Some(&session), method, params)
    }

    /// Collects events for `wait`.
    pub fn pump(&mut self, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        while let Some(v) = self.read(deadline)? {
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
        Ok(())
    }

    /// Evaluates `expr` in the page and returns its value (promises awaited).
    pub fn eval(&mut self, expr: &str) -> Result<Value> {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}))?;
        if let Some(ex) = r.get("exceptionDetails") {
            bail!("{expr}: {ex}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Opens `url` and waits until the report says it is drawn; returns the time from the
    /// navigation to that point.
    pub fn open(&mut self, url: &str) -> Result<Duration> {
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}))?;
        super::checks::Page::wait_drawn(self, url, start)
    }

    /// Events named `method`.
    pub fn events_named(&self, method: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["method"] == method).collect()
    }

    /// Console errors, uncaught exceptions and error log entries seen so far.
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(format!("exception: {}", p["exceptionDetails"])),
                Some("Runtime.consoleAPICalled") if p["type"] == "error" || p["type"] == "assert" => {
                    out.push(format!("console: {}", p["args"]))
                }
                Some("Log.entryAdded") if p["entry"]["level"] == "error" => out.push(format!("log: {}", p["entry"])),
                _ => {}
            }
        }
        out
    }

    /// Moves the mouse to the centre of the element `selector` matches.
    pub fn hover(&mut self, selector: &str) -> Result<()> {
        let expr = format!(
            "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            sel = json!(selector)
        );
        let at = self.eval(&expr)?;
        let (x, y) = (at[0].as_f64().context("x")?, at[1].as_f64().context("y")?);
        self.call("Input.dispatchMouseEvent", json!({"type": "mouseMoved", "x": x, "y": y}))?;
        Ok(())
    }

    /// Presses and releases a key (e.g. `ArrowRight`, virtual key code 39) on the focused element.
    pub fn key(&mut self, key: &str, code: u32) -> Result<()> {
        for kind in ["keyDown", "keyUp"] {
            self.call("Input.dispatchKeyEvent", json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}))?;
        }
        Ok(())
    }

    /// A PNG screenshot of the whole page.
    pub fn screenshot(&mut self) -> Result<Vec<u8>> {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}))?;
        let b64 = r["data"].as_str().context("no screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }
}

impl super::checks::Page for Browser {
    fn open(&mut self, url: &str) -> Result<Duration> {
        Browser::open(self, url)
    }
    fn pump(&mut self, wait: Duration) -> Result<()> {
        Browser::pump(self, wait)
    }
    fn eval(&mut self, expr: &str) -> Result<Value> {
        Browser::eval(self, expr)
    }
    fn hover(&mut self, selector: &str) -> Result<()> {
        Browser::hover(self, selector)
    }
    fn key(&mut self, key: &str) -> Result<()> {
        let code = super::checks::virtual_key_code(key).with_context(|| format!("no key code for {key}"))?;
        Browser::key(self, key, code)
    }
    fn screenshot(&mut self) -> Result<Vec<u8>> {
        Browser::screenshot(self)
    }
    fn errors(&self) -> Vec<String> {
        Browser::errors(self)
    }
    fn requests(&self) -> Vec<String> {
        self.events_named("Network.requestWillBeSent")
            .into_iter()
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
    fn dialogs(&self) -> usize {
        self.events_named("Page.javascriptDialogOpening").len()
    }
}
