//! A small SMTP server on 127.0.0.1 for the mail tests: EHLO, HELO, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT; it keeps what it accepts and answers temporary or
//! permanent failures on demand, or stops listening altogether. With TLS it speaks SMTPS
//! (TLS from the first byte) or offers STARTTLS, with the test certificates of `tls/`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accepts every mail.
    Accept,
    /// `421` at the greeting: the service is not available now.
    Busy,
    /// `451` after the data: a temporary failure.
    TempFail,
    /// `554` after the data: a permanent failure.
    PermFail,
}

/// How the server secures connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP; `STARTTLS` is neither offered nor understood.
    Plain,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// Plain at first; `EHLO` offers `STARTTLS`, which turns the connection into TLS.
    StartTls,
}

/// The test CA, which signed the server's certificate (a file of the tests crate).
pub fn test_ca() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/mail/tls/ca.pem")
}

/// The server's TLS settings: the test certificate for `localhost` and `127.0.0.1`, with
/// ring.
fn server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(include_bytes!("tls/server.pem"))
        .collect::<Result<Vec<_>, _>>()
        .expect("server.pem certificates");
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("tls/server-key.pem"))
        .expect("server-key.pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the test certificate and key");
    Arc::new(config)
}

/// A connection, plain or TLS.
trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// A mail the server accepted.
#[derive(Clone, Debug)]
pub struct Received {
    /// Whether the mail came over TLS.
    pub tls: bool,
    pub from: String,
    pub rcpt: Vec<String>,
    /// The message as stored, dot-unstuffed, lines ending in CRLF (the last one too).
    pub data: String,
}

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    mails: Mutex<Vec<Received>>,
    stop: AtomicBool,
    /// Mails refused (temporary or permanent), and connections turned away.
    refused: Mutex<u64>,
    security: Security,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Connections accepted.
    connections: Mutex<u64>,
    /// TLS handshakes that failed (the client did not trust the certificate, say).
    handshake_failures: Mutex<u64>,
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpServer {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> SmtpServer {
        Self::start_on(0).expect("bind 127.0.0.1")
    }

    /// Listens on `port` of 127.0.0.1 (0: a free one).
    pub fn start_on(port: u16) -> std::io::Result<SmtpServer> {
        Self::start_with(port, Security::Plain)
    }

    /// Listens on a free port of 127.0.0.1, with TLS as `security` says.
    pub fn start_secured(security: Security) -> SmtpServer {
        Self::start_with(0, security).expect("bind 127.0.0.1")
    }

    fn start_with(port: u16, security: Security) -> std::io::Result<SmtpServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Accept),
            mails: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            refused: Mutex::new(0),
            security,
            tls: (security != Security::Plain).then(server_config),
            connections: Mutex::new(0),
            handshake_failures: Mutex::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            // Blocking accepts; dropping the server wakes this loop with a connection.
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    *s.connections.lock().unwrap() += 1;
                    let s = s.clone();
                    std::thread::spawn(move || {
                        let _ = session(stream, &s);
                    });
                }
            }
        });
        Ok(SmtpServer { addr, shared })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.addr.port())
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn mails(&self) -> Vec<Received> {
        self.shared.mails.lock().unwrap().clone()
    }

    pub fn refused(&self) -> u64 {
        *self.shared.refused.lock().unwrap()
    }

    pub fn connections(&self) -> u64 {
        *self.shared.connections.lock().unwrap()
    }

    pub fn handshake_failures(&self) -> u64 {
        *self.shared.handshake_failures.lock().unwrap()
    }

    /// Waits (at most `timeout`) until `ready` holds for the mails received so far.
    pub fn wait_for(
        &self,
        timeout: Duration,
        ready: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if ready(&mails) || Instant::now() >= deadline {
                return mails;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Turns `stream` into TLS: the handshake done, or counted as failed.
fn handshake(stream: Box<dyn Conn>, s: &Shared) -> std::io::Result<Box<dyn Conn>> {
    let config = s.tls.clone().expect("a TLS server");
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            *s.handshake_failures.lock().unwrap() += 1;
            return Err(e);
        }
    }
    Ok(Box::new(tls))
}

fn session(stream: TcpStream, s: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nonblocking(false)?;
    let mut secure = s.security == Security::Implicit;
    let stream: Box<dyn Conn> = if secure {
        handshake(Box::new(stream), s)?
    } else {
        Box::new(stream)
    };
    let mut input = BufReader::new(stream);
    let mode = *s.mode.lock().unwrap();
    if mode == Mode::Busy {
        *s.refused.lock().unwrap() += 1;
        input
            .get_mut()
            .write_all(b"421 127.0.0.1 busy, try again later\r\n")?;
        return Ok(());
    }
    input
        .get_mut()
        .write_all(b"220 127.0.0.1 ESMTP test server\r\n")?;
    let (mut from, mut rcpt) = (String::new(), Vec::new());
    let mut line = String::new();
    for _ in 0..10_000 {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if s.security == Security::StartTls && !secure => input
                .get_mut()
                .write_all(b"250-127.0.0.1\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n")?,
            // AUTH is offered so that a client with credentials can log in; any is taken.
            "EHLO" => input.get_mut().write_all(
                b"250-127.0.0.1\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n",
            )?,
            "AUTH" => input
                .get_mut()
                .write_all(b"235 authentication succeeded\r\n")?,
            "STARTTLS" if s.security == Security::StartTls && !secure => {
                // Nothing may follow the command before the handshake (RFC 3207).
                if !input.buffer().is_empty() {
                    input
                        .get_mut()
                        .write_all(b"501 nothing may follow STARTTLS\r\n")?;
                    return Ok(());
                }
                input.get_mut().write_all(b"220 ready to start TLS\r\n")?;
                input = BufReader::new(handshake(input.into_inner(), s)?);
                secure = true;
                // The dialogue starts again: the client says EHLO anew.
                from.clear();
                rcpt.clear();
            }
            "HELO" | "NOOP" => input.get_mut().write_all(b"250 ok\r\n")?,
            "RSET" => {
                from.clear();
                rcpt.clear();
                input.get_mut().write_all(b"250 ok\r\n")?;
            }
            "MAIL" => {
                from = address_in(cmd);
                input.get_mut().write_all(b"250 ok\r\n")?;
            }
            "RCPT" => {
                rcpt.push(address_in(cmd));
                input.get_mut().write_all(b"250 ok\r\n")?;
            }
            "DATA" => {
                input.get_mut().write_all(b"354 end with .\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if input.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                // The CRLF before the final dot ends the message's last line and is kept,
                // as a real server keeps it (RFC 5321, 4.1.1.4).
                match *s.mode.lock().unwrap() {
                    Mode::TempFail => {
                        *s.refused.lock().unwrap() += 1;
                        input
                            .get_mut()
                            .write_all(b"451 local error, try again later\r\n")?;
                    }
                    Mode::PermFail => {
                        *s.refused.lock().unwrap() += 1;
                        input.get_mut().write_all(b"554 rejected for good\r\n")?;
                    }
                    _ => {
                        s.mails.lock().unwrap().push(Received {
                            tls: secure,
                            from: std::mem::take(&mut from),
                            rcpt: std::mem::take(&mut rcpt),
                            data,
                        });
                        input.get_mut().write_all(b"250 queued\r\n")?;
                    }
                }
                from.clear();
                rcpt.clear();
            }
            "QUIT" => {
                input.get_mut().write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => input.get_mut().write_all(b"500 unknown command\r\n")?,
        }
    }
    Ok(())
}

fn address_in(cmd: &str) -> String {
    match (cmd.find('<'), cmd.find('>')) {
        (Some(a), Some(b)) if a < b => cmd[a + 1..b].to_owned(),
        _ => String::new(),
    }
}

impl Received {
    /// The header lines, unfolded, before the first empty line.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Vec<(String, String)> = Vec::new();
        for l in head.split("\r\n") {
            if l.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(l);
                }
            } else if let Some((k, v)) = l.split_once(':') {
                out.push((k.to_owned(), v.trim_start().to_owned()));
            } else {
                out.push((l.to_owned(), String::new()));
            }
        }
        out
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn subject(&self) -> String {
        decoded_words(&self.header("Subject").unwrap_or_default())
    }

    /// The text/plain body, decoded, with LF line ends.
    pub fn text(&self) -> String {
        let ct = self.header("Content-Type").unwrap_or_default();
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if let Some(boundary) = ct.split("boundary=").nth(1) {
            let boundary = boundary
                .trim_matches('"')
                .split([';', '"'])
                .next()
                .unwrap_or("");
            let marker = format!("--{boundary}");
            for part in body.split(marker.as_str()) {
                let part = part.trim_start_matches("\r\n");
                let Some((head, content)) = part.split_once("\r\n\r\n") else {
                    continue;
                };
                if head.to_ascii_lowercase().contains("text/plain") {
                    let content = content.strip_suffix("\r\n").unwrap_or(content);
                    return decoded_body(head, content);
                }
            }
            return String::new();
        }
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        // All of it, as a mail reader shows it: nothing is taken off the end.
        decoded_body(head, body)
    }

    /// The HTML part, decoded, if any.
    pub fn html(&self) -> Option<String> {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        for part in body.split("\r\n--") {
            if let Some((head, content)) = part.split_once("\r\n\r\n") {
                if head.to_ascii_lowercase().contains("text/html") {
                    return Some(decoded_body(head, content));
                }
            }
        }
        None
    }
}

fn decoded_body(head: &str, content: &str) -> String {
    let head = head.to_ascii_lowercase();
    let text = if head.contains("quoted-printable") {
        quoted_printable(content)
    } else if head.contains("base64") {
        String::from_utf8_lossy(&base64_decode(content)).into_owned()
    } else {
        content.to_owned()
    };
    text.replace("\r\n", "\n")
}

fn quoted_printable(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let Some(h) = s.get(i + 1..i + 3) {
                if let Ok(v) = u8::from_str_radix(h, 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 decoded, skipping what is not a digit of it (line breaks, padding).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) decoded.
fn decoded_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        if !before.trim().is_empty() || out.is_empty() {
            out.push_str(before);
        }
        let word = &rest[start + 2..];
        let mut it = word.splitn(3, '?');
        let (_, enc, tail) = (it.next(), it.next(), it.next());
        let (Some(enc), Some(tail)) = (enc, tail) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let Some(end) = tail.find("?=") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &tail[..end];
        if enc.eq_ignore_ascii_case("b") {
            out.push_str(&String::from_utf8_lossy(&base64_decode(text)));
        } else {
            out.push_str(&quoted_printable(&text.replace('_', " ")));
        }
        rest = &tail[end + 2..];
    }
    out.push_str(rest);
    out
}
