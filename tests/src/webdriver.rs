//! A minimal W3C WebDriver client over reqwest, for driving the real app through tauri-driver
//! (which forwards to WebKitWebDriver). Only what the end-to-end tests use.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running tauri-driver; killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Where `cargo install tauri-driver` put the bridge.
pub fn tauri_driver_bin() -> std::path::PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let p = home.join("bin/tauri-driver");
    assert!(
        p.exists(),
        "{} is missing: run `cargo install tauri-driver --locked` (scripts/setup.sh does)",
        p.display()
    );
    p
}

impl Driver {
    /// Start tauri-driver on free ports with `env` added to the app's environment.
    pub fn start(env: &[(&str, &str)]) -> Driver {
        let port = free_port();
        let native = free_port();
        let mut cmd = Command::new(tauri_driver_bin());
        cmd.args(["--port", &port.to_string(), "--native-port", &native.to_string()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Its own process group, so dropping the driver also ends WebKitWebDriver and the app even
        // when a test fails before closing its session.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("spawn tauri-driver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, url }
    }
}

impl Driver {
    /// The driver's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A WebDriver session on the app.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    /// Launch `application` with `args` through the driver.
    pub async fn new(driver: &Driver, application: &Path, args: &[&str]) -> Session {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": application, "args": args }}}});
        let r: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let id = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Session { http, base: format!("{}/session/{id}", driver.url) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.expect("webdriver call").json().await.expect("webdriver json");
        r["value"].clone()
    }

    /// Elements matching a CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .call(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css})))
            .await;
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.into()))).collect())
            .unwrap_or_default()
    }

    /// Wait up to `secs` for at least `n` elements matching `css`.
    pub async fn wait_for(&self, css: &str, n: usize, secs: u64) -> Vec<Element> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self.find_all(css).await;
            if found.len() >= n {
                return found;
            }
            if Instant::now() > deadline {
                let text =
                    self.script("return document.body ? document.body.innerText : ''", json!([])).await;
                panic!("waited {secs}s for {n} × {css}, found {}; page text: {text}", found.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Click an element.
    pub async fn click(&self, e: &Element) {
        let v = self.call(reqwest::Method::POST, &format!("/element/{}/click", e.0), Some(json!({}))).await;
        assert!(v.get("error").is_none(), "the click did not land: {v}");
    }

    /// Type into an element.
    pub async fn type_text(&self, e: &Element, text: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({"text": text})))
            .await;
    }

    /// An element's visible text.
    pub async fn text(&self, e: &Element) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .into()
    }

    /// An element's attribute.
    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.call(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", e.0), None)
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// Run a script in the page; its return value.
    pub async fn script(&self, js: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": js, "args": args}))).await
    }

    /// Send keys to the focused element (the document when none is).
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Save a PNG screenshot of the window to `path` (an artifact, not an assertion). WebKit takes
    /// its snapshot at the next rendering update, and a screen where nothing changes (no countdown
    /// ticking) may have none for many seconds under Xvfb: after 5 s the X display itself is
    /// captured instead (ImageMagick's `import`), which is what a user would see.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifacts dir");
        }
        let snapshot = async {
            let v: Value = self
                .http
                .get(format!("{}/screenshot", self.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            base64::engine::general_purpose::STANDARD.decode(v["value"].as_str()?).ok()
        };
        if let Some(png) = snapshot.await {
            std::fs::write(path, png).expect("write screenshot");
            return;
        }
        let captured = std::process::Command::new("import")
            .args(["-window", "root"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(captured, "screenshot {}: neither the web view nor the X display answered", path.display());
    }

    /// End the session (closes the app).
    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
