//! Headless Chromium driven over the W3C WebDriver protocol (Debian's
//! `chromium` and `chromium-driver`, which `scripts/prereqs` installs): a page
//! opened, elements found by CSS selector, clicked and typed into, text read,
//! screenshots taken. Only what the console's tests need.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::wait::until;

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    profile: PathBuf,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height` pixels.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let port = crate::cluster::free_port()?;
        // A process group of its own, so the browsers it starts end with it.
        let driver = Command::new(which("chromedriver")?)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (scripts/prereqs installs chromium-driver)")?;
        let profile = std::env::temp_dir().join(format!("console-browser-{port}"));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut browser = Self {
            driver,
            http,
            session: String::new(),
            base,
            profile,
        };
        until(Duration::from_secs(30), async || {
            browser.call("GET", "/status", None).await
        })
        .await
        .with_context(|| format!("chromedriver did not answer on port {port}"))?;
        // The flags a closed network needs: no background connections.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", browser.profile.display()),
            &format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": which("chromium")?, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(capabilities)).await?;
        browser.session = created["sessionId"]
            .as_str()
            .context("a session id")?
            .to_owned();
        Ok(browser)
    }

    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.session_call("POST", "/url", json!({ "url": url }))
            .await
            .map(drop)
    }

    /// Resizes the window (the page reflows).
    pub async fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let rect = json!({ "width": width, "height": height });
        self.session_call("POST", "/window/rect", rect)
            .await
            .map(drop)
    }

    /// The elements `selector` matches now.
    pub async fn find_all(&self, selector: &str) -> anyhow::Result<Vec<Element>> {
        let found = self
            .session_call(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": selector}),
            )
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect())
    }

    /// Waits until `selector` matches an element whose text passes `check`,
    /// and returns it; the error names what was waited for.
    pub async fn wait_for(
        &self,
        selector: &str,
        bound: Duration,
        check: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Element> {
        until(bound, async || {
            let mut seen = Vec::new();
            for element in self.find_all(selector).await.map_err(|e| e.to_string())? {
                // The page may replace it between the two calls.
                let Ok(text) = self.text(&element).await else {
                    continue;
                };
                if check(&text) {
                    return Ok(element);
                }
                seen.push(text);
            }
            Err(format!("saw {seen:?}"))
        })
        .await
        .map_err(|seen| anyhow::anyhow!("no `{selector}` as expected within {bound:?}; {seen}"))
    }

    /// Waits until `selector` matches at least `count` elements.
    pub async fn wait_count(
        &self,
        selector: &str,
        count: usize,
        bound: Duration,
    ) -> anyhow::Result<Vec<Element>> {
        until(bound, async || {
            let found = self.find_all(selector).await.map_err(|e| e.to_string())?;
            if found.len() >= count {
                Ok(found)
            } else {
                Err(format!("{} of them", found.len()))
            }
        })
        .await
        .map_err(|seen| anyhow::anyhow!("`{selector}` within {bound:?}: {seen}, not {count}"))
    }

    /// Clicks the element.
    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.element_call("POST", element, "/click", json!({}))
            .await
            .map(drop)
    }

    /// Replaces the text of an input.
    pub async fn fill(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.element_call("POST", element, "/clear", json!({}))
            .await?;
        self.element_call("POST", element, "/value", json!({ "text": text }))
            .await
            .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let text = self
            .call(
                "GET",
                &format!("/session/{}/element/{}/text", self.session, element.0),
                None,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute of the element.
    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .call(
                "GET",
                &format!(
                    "/session/{}/element/{}/attribute/{name}",
                    self.session, element.0
                ),
                None,
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let encoded = self
            .call(
                "GET",
                &format!("/session/{}/screenshot", self.session),
                None,
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .context("the screenshot's base64")?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    async fn session_call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, Some(body)).await
    }

    async fn element_call(
        &self,
        method: &str,
        element: &Element,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let path = format!("/element/{}{path}", element.0);
        self.session_call(method, &path, body).await
    }

    /// One WebDriver command; its `value`, or its error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await?;
        let status = answer.status();
        let mut body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("WebDriver {path}: {status} {}", body["value"]);
        }
        Ok(body["value"].take())
    }
}

impl Browser {
    /// Ends the session, which closes the browser. Blocking (it runs in
    /// `drop`), over a plain socket: one small request.
    fn quit(&self) -> std::io::Result<()> {
        let address = self.base.trim_start_matches("http://");
        let mut socket = TcpStream::connect(address)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            socket,
            "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        )?;
        // The answer comes once the browser has closed.
        socket.read(&mut [0; 512]).map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.quit();
        }
        // Whatever is left of the group: chromedriver and any browser.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn which(program: &str) -> anyhow::Result<String> {
    for folder in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(folder).join(program);
        if candidate.is_file() {
            return Ok(candidate.display().to_string());
        }
    }
    bail!("`{program}` is not installed (scripts/prereqs installs chromium and chromium-driver)")
}
