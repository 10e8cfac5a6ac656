//! A Sentry-compatible sink on 127.0.0.1 that takes every envelope with a 200 and keeps
//! it, its gzip body decoded: the peer of forwarding tests that need no real server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One envelope received: the request path and the decoded body.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub path: String,
    pub body: String,
}

impl Envelope {
    /// The event item's JSON (the third line: envelope header, item header, item).
    pub fn event(&self) -> serde_json::Value {
        let line = self.body.lines().nth(2).unwrap_or_default();
        serde_json::from_str(line).unwrap_or(serde_json::Value::Null)
    }
}

/// The sink, serving until the test program ends.
pub struct Sink {
    port: u16,
    received: Arc<Mutex<Vec<Envelope>>>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let port = listener.local_addr().expect("address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Sink { port, received }
    }

    /// A DSN of this sink (key `sinkkey01`, project 7).
    pub fn dsn(&self) -> String {
        format!("http://sinkkey01@127.0.0.1:{}/7", self.port)
    }

    pub fn envelopes(&self) -> Vec<Envelope> {
        self.received.lock().unwrap().clone()
    }

    /// The envelopes once there are at least `n`, or after 30 s what there is.
    pub fn wait_for(&self, n: usize) -> Vec<Envelope> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.envelopes();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Answers each request of a connection with a 200, keeping its body.
fn serve(stream: TcpStream, kept: &Mutex<Vec<Envelope>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let (mut length, mut chunked, mut gzip) = (0usize, false, false);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let (name, value) = (name.to_ascii_lowercase(), value.trim().to_ascii_lowercase());
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "content-encoding" => gzip = value == "gzip",
                _ => {}
            }
        }
        let mut raw = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&chunk[..n]);
            }
        } else {
            raw.resize(length, 0);
            if reader.read_exact(&mut raw).is_err() {
                return;
            }
        }
        let body = if gzip {
            let mut out = String::new();
            let _ = flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut out);
            out
        } else {
            String::from_utf8_lossy(&raw).into_owned()
        };
        kept.lock().unwrap().push(Envelope { path, body });
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
