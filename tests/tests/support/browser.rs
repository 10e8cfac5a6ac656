//! A headless chromium driven through chromedriver's WebDriver API, for the dashboard tests:
//! pages opened, elements found and clicked, text waited for, screenshots saved under
//! `target/tmp/dashboard-screenshots/`. `scripts/install-browser.sh` installs chromium and
//! chromium-driver when they are missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::mail::smtp::base64_decode;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Installs the browser with `scripts/install-browser.sh` when it is missing; fails the
/// test with the script's reason when it cannot.
pub fn ensure_browser() {
    let present = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present("chromium") && present("chromedriver") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-browser.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("run the browser install script");
    assert!(
        status.success(),
        "{} could not install the browser (its reason is printed above)",
        script.display()
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("address").port()
}

/// One HTTP/1.1 exchange with chromedriver; the answer's JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read the answer");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let payload = if let Some(len) = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    }) {
        while raw.len() < head_end + len {
            let n = s.read(&mut buf).expect("read the body");
            assert!(n > 0, "chromedriver closed the connection early");
            raw.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&raw[head_end..head_end + len]).into_owned()
    } else {
        let mut rest = raw[head_end..].to_vec();
        let _ = s.read_to_end(&mut rest);
        dechunk(&String::from_utf8_lossy(&rest))
    };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || n > after.len() {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A chromedriver with one headless chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/status", None)["value"]["ready"] == true
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver not ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let answer = http(port, "POST", "/session", Some(&caps));
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            driver,
            port,
            session,
            _profile: profile,
            shots,
        }
    }

    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|answer| panic!("{method} {path}: {answer}"))
    }

    /// Like `cmd`, but a WebDriver error comes back as `Err` (the whole answer).
    pub fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let answer = http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        if answer["value"].get("error").is_some() {
            return Err(answer);
        }
        Ok(answer["value"].clone())
    }

    pub fn open(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn title(&self) -> String {
        self.cmd("GET", "/title", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {css:?} on {}", self.url()))
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Clicks the first link whose text contains `text`.
    pub fn click_link(&self, text: &str) {
        let found = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "partial link text", "value": text})),
        );
        let e = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no link {text:?} on {}", self.url()))
            .to_owned();
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn text_of(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits until the page's text contains `needle`; returns the text.
    ///
    /// The page may be replaced while it is read (a form post or a link
    /// still loading): the text is read in one script call, and a
    /// WebDriver error in between (a stale element, a page being
    /// unloaded) is retried until the deadline like a missing needle.
    pub fn wait_for_text(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = match self.try_cmd(
                "POST",
                "/execute/sync",
                Some(json!({
                    "script": "return document.body ? document.body.innerText : '';",
                    "args": []
                })),
            ) {
                Ok(value) => value.as_str().unwrap_or("").to_owned(),
                Err(answer) => format!("(page not readable: {answer})"),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{needle:?} never shown on {}:\n{text}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The browser's Back button.
    pub fn back(&self) {
        self.cmd("POST", "/back", Some(json!({})));
    }

    pub fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().unwrap_or(""));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
