//! A small WebDriver BiDi client over a websocket: enough to drive headless Firefox from a test
//! (open a page, evaluate, perform pointer and key actions, take a screenshot) and to collect
//! every event it reports (log entries, network requests, user prompts). Firefox speaks BiDi,
//! not the DevTools protocol; the shape mirrors [`super::cdp::Browser`].
//!
//! Every wait has a deadline, so a browser that hangs fails the test instead of stalling it.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use tungstenite::{Message, WebSocket};

/// The names Firefox goes by on `PATH`.
const NAMES: [&str; 2] = ["firefox-esr", "firefox"];

/// Where Firefox is: `ECCO_FIREFOX`, or `firefox-esr` / `firefox` on `PATH`.
pub fn find_firefox() -> Option<PathBuf> {
    super::find_browser("ECCO_FIREFOX", &NAMES)
}

/// `Ok(None)` when browser tests are switched off with `ECCO_SKIP_BROWSER_TESTS=1`; an error
/// naming the package to install when Firefox is missing.
pub fn firefox_or_skip() -> Result<Option<PathBuf>> {
    super::browser_or_skip(
        "ECCO_FIREFOX",
        &NAMES,
        "no Firefox found: install it (`apt-get install firefox-esr`), point ECCO_FIREFOX at it, or set ECCO_SKIP_BROWSER_TESTS=1",
    )
}

/// How long one command may take to be answered (a loaded machine is slow, a hung one never
/// answers).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Preferences of the throwaway profile: no first-run pages, no updates, no telemetry, no
/// background fetches (Remote Settings, Normandy, captive portal, safe browsing). None is
/// needed for BiDi itself: Firefox 153 ESR answers on a bare profile (BiDi is its only remote
/// protocol; `remote.active-protocols` went with CDP). The remote agent applies these and more
/// (its "recommended preferences", `focusmanager.testmode` among them) once it starts; setting
/// them here keeps the seconds before that quiet too.
const USER_JS: &str = r#"user_pref("app.normandy.enabled", false);
user_pref("app.update.checkInstallTime", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("browser.search.update", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.startup.page", 0);
user_pref("browser.tabs.warnOnClose", false);
user_pref("browser.warnOnQuit", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("network.prefetch-next", false);
user_pref("services.settings.server", "data:,#remote-settings-dummy/v1");
user_pref("toolkit.startup.max_resumed_crashes", -1);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
"#;

/// WebDriver's code point for a named key.
fn key_value(key: &str) -> Option<char> {
    Some(match key {
        "Tab" => '\u{E004}',
        "Enter" => '\u{E007}',
        "ArrowLeft" => '\u{E012}',
        "ArrowUp" => '\u{E013}',
        "ArrowRight" => '\u{E014}',
        "ArrowDown" => '\u{E015}',
        _ => return None,
    })
}

/// A BiDi `RemoteValue` as plain JSON, as DevTools' `returnByValue` gives it: `undefined` and
/// `null` become `null`, non-finite numbers `null` (as `JSON.stringify` has them), maps and
/// objects JSON objects, arrays and sets arrays; anything else (nodes, functions, …) stays as
/// the remote value.
pub fn remote_to_json(v: &Value) -> Value {
    let value = &v["value"];
    match v["type"].as_str() {
        Some("undefined" | "null") => Value::Null,
        Some("string" | "boolean" | "bigint" | "date" | "regexp") => value.clone(),
        Some("number") => {
            if value.is_number() {
                value.clone()
            } else {
                Value::Null
            }
        }
        Some("array" | "set") => Value::Array(value.as_array().map(|a| a.iter().map(remote_to_json).collect()).unwrap_or_default()),
        Some("object" | "map") => {
            let mut out = Map::new();
            for pair in value.as_array().into_iter().flatten() {
                let key = match &pair[0] {
                    Value::String(s) => s.clone(),
                    other => remote_to_json(other).to_string(),
                };
                out.insert(key, remote_to_json(&pair[1]));
            }
            Value::Object(out)
        }
        _ => v.clone(),
    }
}

/// A headless Firefox with one browsing context; closed (then killed) when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    context: String,
    next_id: u64,
    /// Every event received so far (`{"type": "event", "method": …, "params": …}`).
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask Firefox to quit (it takes its content processes with it), then make sure.
        self.next_id += 1;
        let _ = self.ws.send(Message::text(json!({"id": self.next_id, "method": "browser.close", "params": {}}).to_string()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Firefox headless with a fresh profile, opens a BiDi session subscribed to log
    /// entries, network requests and user prompts, and opens a tab (1200×900) with the focus.
    pub fn launch(exe: &Path) -> Result<Self> {
        let profile = tempfile::tempdir()?;
        std::fs::write(profile.path().join("user.js"), USER_JS)?;
        let mut child = Command::new(exe)
            .args(["--headless", "--no-remote", "--new-instance", "--remote-debugging-port=0", "--profile"])
            .arg(profile.path())
            .arg("about:blank")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .env("MOZ_DISABLE_AUTO_SAFE_MODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading to the end so that Firefox never blocks on a full pipe.
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("WebDriver BiDi listening on ws://") {
                    let _ = tx.send(line[at + "WebDriver BiDi listening on ".len()..].trim().to_owned());
                    sent = true;
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                match e {
                    std::sync::mpsc::RecvTimeoutError::Timeout => {
                        bail!("{} did not print its WebDriver BiDi address within 60 s", exe.display())
                    }
                    std::sync::mpsc::RecvTimeoutError::Disconnected => {
                        bail!("{} closed its stderr without printing a WebDriver BiDi address", exe.display())
                    }
                }
            }
        };
        let host = base.trim_start_matches("ws://").split('/').next().context("bad BiDi url")?.to_owned();
        let url = format!("ws://{host}/session");
        let stream = TcpStream::connect(&host)?;
        // A blocking handshake with a generous timeout, then short read timeouts so that
        // waiting for an answer or for events can stop at a deadline.
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let ws = match tungstenite::client(url.as_str(), stream) {
            Ok((ws, _)) => ws,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("websocket handshake with {url}: {e}");
            }
        };
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut b = Self { child, ws, context: String::new(), next_id: 0, events: Vec::new(), _profile: profile };
        // Dialogs are dismissed (and reported as events) rather than left to block the page.
        b.call("session.new", json!({"capabilities": {"alwaysMatch": {"unhandledPromptBehavior": {"default": "dismiss"}}}}))?;
        b.call(
            "session.subscribe",
            json!({"events": ["log.entryAdded", "network.beforeRequestSent", "browsingContext.userPromptOpened"]}),
        )?;
        // A tab of our own: the one Firefox starts with never gets the focus in headless mode
        // (`document.hasFocus()` stays false even after `browsingContext.activate`), and
        // without the focus `element.focus()` moves `document.activeElement` but fires no
        // `focus` event. A created tab is focused, as a reader's window is.
        let created = b.call("browsingContext.create", json!({"type": "tab"}))?;
        b.context = created["context"].as_str().context("browsingContext.create gave no context")?.to_owned();
        b.call("browsingContext.setViewport", json!({"context": b.context, "viewport": {"width": 1200, "height": 900}}))?;
        b.activate()?;
        Ok(b)
    }

    /// Brings the tab to the front.
    pub fn activate(&mut self) -> Result<()> {
        self.call("browsingContext.activate", json!({"context": self.context}))?;
        Ok(())
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
                Err(e) => bail!("WebDriver BiDi connection: {e}"),
            }
        }
    }

    /// Sends a command and waits (at most [`COMMAND_TIMEOUT`]) for its result, keeping every
    /// event that arrives meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.ws.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string()))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while let Some(v) = self.read(deadline)? {
            if v["type"] == "event" {
                self.events.push(v);
            } else if v.get("id").and_then(Value::as_u64) == Some(id) {
                if v["type"] == "error" {
                    bail!("{method}: {} ({})", v["error"], v["message"]);
                }
                return Ok(v["result"].clone());
            } else if v["type"] == "error" {
                bail!("{method}: unexpected error {v}");
            }
        }
        bail!("{method}: no answer within {} s", COMMAND_TIMEOUT.as_secs())
    }

    /// Collects events for `wait`.
    pub fn pump(&mut self, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        while let Some(v) = self.read(deadline)? {
            if v["type"] == "event" {
                self.events.push(v);
            }
        }
        Ok(())
    }

    /// Evaluates `expr` in the page; its `RemoteValue` (promises awaited).
    pub fn eval_remote(&mut self, expr: &str) -> Result<Value> {
        let r = self.call(
            "script.evaluate",
            json!({"expression": expr, "target": {"context": self.context}, "awaitPromise": true, "resultOwnership": "none"}),
        )?;
        if r["type"] == "exception" {
            bail!("{expr}: {}", r["exceptionDetails"]);
        }
        Ok(r["result"].clone())
    }

    /// Evaluates `expr` in the page and returns its value as plain JSON (promises awaited).
    pub fn eval(&mut self, expr: &str) -> Result<Value> {
        Ok(remote_to_json(&self.eval_remote(expr)?))
    }

    /// Opens `url` (waiting for its load to complete) and waits until the report says it is
    /// drawn; returns the time from the navigation to that point.
    pub fn open(&mut self, url: &str) -> Result<Duration> {
        let start = Instant::now();
        self.call("browsingContext.navigate", json!({"context": self.context, "url": url, "wait": "complete"}))?;
        super::checks::Page::wait_drawn(self, url, start)
    }

    /// Events named `method`.
    pub fn events_named(&self, method: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["method"] == method).collect()
    }

    /// Error log entries seen so far: `console.error`, uncaught exceptions, and what the
    /// browser logs as an error for the page (a Content-Security-Policy violation, say).
    pub fn errors(&self) -> Vec<String> {
        self.events_named("log.entryAdded")
            .into_iter()
            .map(|e| &e["params"])
            .filter(|p| p["level"] == "error" || (p["type"] == "console" && p["method"] == "assert"))
            .map(|p| format!("{} {}: {}", p["type"].as_str().unwrap_or("log"), p["level"].as_str().unwrap_or(""), p["text"]))
            .collect()
    }

    /// Waits for the page to run its pending tasks (event handlers of dispatched input).
    fn settle(&mut self) -> Result<()> {
        self.eval("new Promise(r => setTimeout(r, 0))")?;
        Ok(())
    }

    /// Moves the mouse to the centre of the element `selector` matches.
    pub fn hover(&mut self, selector: &str) -> Result<()> {
        let expr = format!(
            "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}}); return e; }})()",
            sel = json!(selector)
        );
        let node = self.eval_remote(&expr)?;
        let shared = node["sharedId"].as_str().with_context(|| format!("{selector}: not an element: {node}"))?.to_owned();
        self.call(
            "input.performActions",
            json!({"context": self.context, "actions": [{
                "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "x": 0, "y": 0, "origin": {"type": "element", "element": {"sharedId": shared}}}]
            }]}),
        )?;
        self.settle()
    }

    /// Presses and releases a key (`ArrowLeft`, `ArrowRight`, …) on the focused element.
    pub fn key(&mut self, key: &str) -> Result<()> {
        let value = key_value(key).with_context(|| format!("no WebDriver key value for {key}"))?.to_string();
        self.call(
            "input.performActions",
            json!({"context": self.context, "actions": [{
                "type": "key", "id": "keyboard",
                "actions": [{"type": "keyDown", "value": value}, {"type": "keyUp", "value": value}]
            }]}),
        )?;
        self.settle()
    }

    /// A PNG screenshot of the whole page.
    pub fn screenshot(&mut self) -> Result<Vec<u8>> {
        use base64::Engine;
        let r = self.call("browsingContext.captureScreenshot", json!({"context": self.context, "origin": "document"}))?;
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
        Browser::key(self, key)
    }
    fn screenshot(&mut self) -> Result<Vec<u8>> {
        Browser::screenshot(self)
    }
    fn errors(&self) -> Vec<String> {
        Browser::errors(self)
    }
    fn requests(&self) -> Vec<String> {
        self.events_named("network.beforeRequestSent")
            .into_iter()
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
    fn dialogs(&self) -> usize {
        self.events_named("browsingContext.userPromptOpened").len()
    }
}
