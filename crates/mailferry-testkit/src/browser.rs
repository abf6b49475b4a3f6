//! A real headless Chromium, driven over W3C WebDriver through Debian's `chromedriver`,
//! one browser per instance with a fresh profile, stopped on drop.
//!
//! The recipe is the verified one in `/work/shared/test-servers/README.md` ("Headless
//! Chromium + chromedriver"): `chromedriver` listens on a free loopback port, and the session
//! starts `/usr/bin/chromium` headless with its own user-data-dir. Everything Chromium would
//! fetch by itself (updates, safe browsing, sync, DNS prefetch) is switched off, and host
//! names other than `localhost` do not resolve, so the only traffic is to the pages a test
//! opens on loopback.
//!
//! ```no_run
//! use mailferry_testkit::Browser;
//!
//! let browser = Browser::start()?;
//! browser.goto("http://127.0.0.1:8080/")?;
//! browser.find("input[name=password]")?.type_text("secret")?;
//! browser.find("button[type=submit]")?.click()?;
//! browser.wait_for("h1", std::time::Duration::from_secs(5))?;
//! browser.screenshot(std::path::Path::new("shot.png"))?;
//! # Ok::<(), mailferry_testkit::TestkitError>(())
//! ```

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::error::TestkitError;
use crate::sandbox::{free_port, io_error, tail_lines};

/// The browser and its driver, as Debian installs them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver gets to listen, and a session to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The W3C key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver's codes for special keys (W3C WebDriver §17.4.2), for [`Element::type_text`]
/// and [`Browser::press`].
pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const SPACE: &str = "\u{E00D}";
    pub const ARROW_DOWN: &str = "\u{E015}";
}

/// A running headless Chromium with one WebDriver session. Dropping it ends the session
/// (which closes Chromium), stops `chromedriver` and removes the profile directory.
#[derive(Debug)]
pub struct Browser {
    driver: Option<Child>,
    base: String,
    http: reqwest::blocking::Client,
    profile: tempfile::TempDir,
    log: PathBuf,
}

/// An element of the current page. Its reference goes stale when the page changes.
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and a headless Chromium session with
    /// a 1280×900 window.
    pub fn start() -> Result<Browser, TestkitError> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).exists() {
                return Err(TestkitError::ChromiumNotInstalled {
                    missing: program.into(),
                });
            }
        }
        let profile = tempfile::Builder::new()
            .prefix("mailferry-chromium-")
            .tempdir()
            .map_err(|source| io_error("create", &std::env::temp_dir(), source))?;
        let log = profile.path().join("chromedriver.log");
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that drop can stop chromedriver and any Chromium
            // it left behind together.
            .process_group(0)
            .spawn()
            .map_err(|source| io_error("run", Path::new(CHROMEDRIVER), source))?;
        let http = reqwest::blocking::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| TestkitError::WebDriver {
                command: "start an HTTP client".into(),
                message: e.to_string(),
            })?;
        let mut browser = Browser {
            driver: Some(driver),
            base: format!("http://127.0.0.1:{port}"),
            http,
            profile,
            log,
        };
        browser.wait_for_driver(port)?;
        let session = browser.new_session()?;
        browser.base = format!("{}/session/{session}", browser.base);
        browser.set_window_size(1280, 900)?;
        Ok(browser)
    }

    fn wait_for_driver(&mut self, port: u16) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Some(driver) = self.driver.as_mut() {
                if let Ok(Some(status)) = driver.try_wait() {
                    return Err(self.start_failure(format!("chromedriver exited ({status})")));
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_failure(format!(
                    "chromedriver did not listen on port {port} within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_failure(&self, reason: String) -> TestkitError {
        TestkitError::BrowserStart {
            reason,
            log_tail: tail_lines(&self.log, 30),
        }
    }

    fn new_session(&self) -> Result<String, TestkitError> {
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-domain-reliability".into(),
            "--disable-client-side-phishing-detection".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-default-apps".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication".into(),
            "--no-pings".into(),
            "--dns-prefetch-disable".into(),
            "--no-proxy-server".into(),
            "--password-store=basic".into(),
            "--metrics-recording-only".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1".into(),
            "--force-device-scale-factor=1".into(),
            "--hide-scrollbars".into(),
            "--lang=en-US".into(),
            format!("--user-data-dir={}", self.profile.path().join("profile").display()),
        ];
        // Chromium's sandbox cannot start as root (the recipe's pitfall 11).
        if running_as_root() {
            args.push("--no-sandbox".into());
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let answer = self
            .send(
                reqwest::Method::POST,
                &format!("{}/session", self.base),
                Some(&capabilities),
                "start a session",
            )
            .map_err(|e| self.start_failure(e.to_string()))?;
        answer["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.start_failure(format!("no session id in {answer}")))
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        command: &str,
    ) -> Result<Value, TestkitError> {
        let failed = |message: String| TestkitError::WebDriver {
            command: command.to_string(),
            message,
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let answer: Value = response.json().map_err(|e| failed(e.to_string()))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(failed(format!(
            "{} {}: {}",
            status.as_u16(),
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        )))
    }

    /// A command of this session (`path` after `/session/{id}`).
    fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value, TestkitError> {
        // WebDriver wants a JSON body on every POST, `{}` when there is nothing to say.
        let body = match (&method, body) {
            (_, Some(body)) => Some(body),
            (&reqwest::Method::POST, None) => Some(json!({})),
            _ => None,
        };
        self.send(method, &format!("{}{path}", self.base), body.as_ref(), what)
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<(), TestkitError> {
        self.command(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": url })),
            &format!("open {url}"),
        )?;
        Ok(())
    }

    /// The address of the current page.
    pub fn url(&self) -> Result<String, TestkitError> {
        let value = self.command(reqwest::Method::GET, "/url", None, "read the URL")?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// The title of the current page.
    pub fn title(&self) -> Result<String, TestkitError> {
        let value = self.command(reqwest::Method::GET, "/title", None, "read the title")?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// The current page's HTML as the browser has it now.
    pub fn source(&self) -> Result<String, TestkitError> {
        let value = self.command(reqwest::Method::GET, "/source", None, "read the page")?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching the CSS selector, now (no waiting).
    pub fn find(&self, css: &str) -> Result<Element<'_>, TestkitError> {
        let value = self.command(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
            &format!("find `{css}`"),
        )?;
        self.element(&value, css)
    }

    /// Every element matching the CSS selector, now (possibly none).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, TestkitError> {
        let value = self.command(
            reqwest::Method::POST,
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
            &format!("find all `{css}`"),
        )?;
        value
            .as_array()
            .map(|items| items.iter().map(|v| self.element(v, css)).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    fn element(&self, value: &Value, css: &str) -> Result<Element<'_>, TestkitError> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| TestkitError::WebDriver {
                command: format!("find `{css}`"),
                message: format!("no element reference in {value}"),
            })?;
        Ok(Element {
            browser: self,
            id: id.to_string(),
        })
    }

    /// Waits up to `limit` for an element matching `css` to be there and displayed.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Result<Element<'_>, TestkitError> {
        let mut found = None;
        self.wait_until(&format!("`{css}` to appear"), limit, |browser| {
            for element in browser.find_all(css)? {
                if element.is_displayed()? {
                    found = Some(element.id);
                    return Ok(true);
                }
            }
            Ok(false)
        })?;
        Ok(Element {
            browser: self,
            id: found.unwrap_or_default(),
        })
    }

    /// Polls `check` every 100 ms until it holds; an error names `what` and shows the page
    /// text if it does not within `limit`. Stale elements (the page changed under the
    /// check) count as "not yet".
    pub fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Browser) -> Result<bool, TestkitError>,
    ) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            match check(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(TestkitError::WebDriver { message, .. })
                    if message.contains("stale element") || message.contains("no such element") => {
                }
                Err(e) => return Err(e),
            }
            if started.elapsed() > limit {
                let text = self
                    .find("body")
                    .and_then(|body| body.text())
                    .unwrap_or_default();
                return Err(TestkitError::WebDriver {
                    command: format!("wait for {what}"),
                    message: format!(
                        "not within {} s; the page ({}) shows:\n{text}",
                        limit.as_secs(),
                        self.url().unwrap_or_default()
                    ),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and returns
    /// what it returns.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, TestkitError> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
            "run a script",
        )
    }

    /// The element that has the keyboard focus.
    pub fn focused(&self) -> Result<Element<'_>, TestkitError> {
        let value = self.command(
            reqwest::Method::GET,
            "/element/active",
            None,
            "find the focused element",
        )?;
        self.element(&value, ":focus")
    }

    /// The `id` of the element that has the keyboard focus (`None`: it has none).
    pub fn focused_id(&self) -> Result<Option<String>, TestkitError> {
        self.focused()?.attribute("id")
    }

    /// Types `keys` (text or [`keys`] codes) into whatever has the focus.
    pub fn press(&self, keys: &str) -> Result<(), TestkitError> {
        self.focused()?.type_text(keys)
    }

    /// The page's cookies as WebDriver shows them (`name`, `value`, `httpOnly`, `secure`,
    /// `sameSite`, ...).
    pub fn cookies(&self) -> Result<Vec<Value>, TestkitError> {
        let value = self.command(reqwest::Method::GET, "/cookie", None, "read the cookies")?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// Removes every cookie (a fresh visitor).
    pub fn delete_cookies(&self) -> Result<(), TestkitError> {
        self.command(
            reqwest::Method::DELETE,
            "/cookie",
            None,
            "delete the cookies",
        )?;
        Ok(())
    }

    /// Resizes the window (CSS pixels; the screenshot is the viewport).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), TestkitError> {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
            "resize the window",
        )?;
        Ok(())
    }

    /// A PNG of the viewport, written to `path` (its directory is created).
    pub fn screenshot(&self, path: &Path) -> Result<(), TestkitError> {
        let value = self.command(
            reqwest::Method::GET,
            "/screenshot",
            None,
            "take a screenshot",
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .map_err(|e| TestkitError::WebDriver {
                command: "take a screenshot".into(),
                message: format!("the screenshot is not base64: {e}"),
            })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;
        }
        std::fs::write(path, png).map_err(|source| io_error("write", path, source))
    }

    /// chromedriver's log (for failure messages).
    pub fn driver_log(&self) -> String {
        tail_lines(&self.log, 50)
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// Clicks it (scrolled into view first).
    pub fn click(&self) -> Result<(), TestkitError> {
        self.browser
            .command(reqwest::Method::POST, &self.path("/click"), None, "click")?;
        Ok(())
    }

    /// Empties an input or textarea.
    pub fn clear(&self) -> Result<(), TestkitError> {
        self.browser
            .command(reqwest::Method::POST, &self.path("/clear"), None, "clear")?;
        Ok(())
    }

    /// Types `text` into it (focusing it first), as keystrokes.
    pub fn type_text(&self, text: &str) -> Result<(), TestkitError> {
        self.browser.command(
            reqwest::Method::POST,
            &self.path("/value"),
            Some(json!({ "text": text })),
            "type",
        )?;
        Ok(())
    }

    /// Its visible text.
    pub fn text(&self) -> Result<String, TestkitError> {
        let value =
            self.browser
                .command(reqwest::Method::GET, &self.path("/text"), None, "read text")?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// An HTML attribute, `None` where it is absent.
    pub fn attribute(&self, name: &str) -> Result<Option<String>, TestkitError> {
        let value = self.browser.command(
            reqwest::Method::GET,
            &self.path(&format!("/attribute/{name}")),
            None,
            &format!("read attribute {name}"),
        )?;
        Ok(value.as_str().map(str::to_string))
    }

    /// A DOM property (`value`, `checked`, ...).
    pub fn property(&self, name: &str) -> Result<Value, TestkitError> {
        self.browser.command(
            reqwest::Method::GET,
            &self.path(&format!("/property/{name}")),
            None,
            &format!("read property {name}"),
        )
    }

    /// The computed value of a CSS property (`color`, `background-color`, ...).
    pub fn css(&self, name: &str) -> Result<String, TestkitError> {
        let value = self.browser.command(
            reqwest::Method::GET,
            &self.path(&format!("/css/{name}")),
            None,
            &format!("read CSS {name}"),
        )?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Whether it is rendered visibly.
    pub fn is_displayed(&self) -> Result<bool, TestkitError> {
        let value = self.browser.command(
            reqwest::Method::GET,
            &self.path("/displayed"),
            None,
            "check visibility",
        )?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// The first element inside this one matching `css`.
    pub fn find(&self, css: &str) -> Result<Element<'_>, TestkitError> {
        let value = self.browser.command(
            reqwest::Method::POST,
            &self.path("/element"),
            Some(json!({ "using": "css selector", "value": css })),
            &format!("find `{css}`"),
        )?;
        self.browser.element(&value, css)
    }

    /// Every element inside this one matching `css`.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, TestkitError> {
        let value = self.browser.command(
            reqwest::Method::POST,
            &self.path("/elements"),
            Some(json!({ "using": "css selector", "value": css })),
            &format!("find all `{css}`"),
        )?;
        value
            .as_array()
            .map(|items| items.iter().map(|v| self.browser.element(v, css)).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Gives it the keyboard focus, as Tab would.
    pub fn focus(&self) -> Result<(), TestkitError> {
        self.browser.execute(
            "arguments[0].focus();",
            vec![json!({ ELEMENT_KEY: self.id })],
        )?;
        Ok(())
    }

    /// Whether it is the element that has the keyboard focus.
    pub fn has_focus(&self) -> Result<bool, TestkitError> {
        Ok(self.browser.focused()?.id == self.id)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then chromedriver's whole process group goes.
        let _ = self
            .http
            .delete(&self.base)
            .timeout(Duration::from_secs(10))
            .send();
        if let Some(mut driver) = self.driver.take() {
            let group = format!("-{}", driver.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = driver.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = driver.wait();
        }
    }
}

/// Serves `html` to every request, on a free loopback port, until the process ends; returns
/// its address (`http://127.0.0.1:PORT/`). For pages a test needs besides the service
/// under test: a fixture, or a page of another origin.
pub fn serve_page(html: String) -> Result<String, TestkitError> {
    use std::io::{Read, Write};
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::NoFreePort)?;
    let address = format!(
        "http://{}/",
        listener.local_addr().map_err(TestkitError::NoFreePort)?
    );
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    Ok(address)
}

/// Whether this process runs as root (uid 0), from `/proc/self/status`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
