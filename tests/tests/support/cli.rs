//! Helpers of the command-line and dashboard tests: databases made once per test binary and
//! copied for each test (sled lets one process open a database, so tests never share one),
//! the tool run as a program with a time limit, and a program that holds a database.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::scenario::{run_with_limit, scenario_command, Run};

pub mod tracked;

/// Events in the large database.
pub const LARGE: usize = 10_000;

/// A database left by a scenario, kept for the life of the test binary.
struct Template {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

fn template(cell: &'static OnceLock<Template>, name: &str, arg: &str) -> &'static Path {
    &cell
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = dir.path().join("template.db");
            // Without the test's environment the events are small and quick to write.
            let mut cmd = scenario_command(name, &db, arg);
            cmd.env_clear();
            let run = run_with_limit(cmd, Duration::from_secs(120));
            assert_eq!(run.code, Some(0), "scenario {name}: {run:?}");
            Template { _dir: dir, db }
        })
        .db
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A private copy of a template database.
fn copy_of(template: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("events.db");
    copy_dir(template, &db);
    (dir, db)
}

/// A copy of a database of [`LARGE`] events (made once per test binary by `scenario fill`).
pub fn large_db() -> (tempfile::TempDir, PathBuf) {
    static CELL: OnceLock<Template> = OnceLock::new();
    copy_of(template(&CELL, "fill", &LARGE.to_string()))
}

/// A copy of a database of a few groups with sources, frames, tags, users, paths and a
/// message holding `<script>` (`scenario showcase`).
pub fn showcase_db() -> (tempfile::TempDir, PathBuf) {
    static CELL: OnceLock<Template> = OnceLock::new();
    copy_of(template(&CELL, "showcase", ""))
}

/// A copy of a database of one event whose message is one line of 25,000 `é` (50 KB),
/// between `huge-title-start` and `huge-title-end` (`scenario long-message`).
pub fn long_message_db() -> (tempfile::TempDir, PathBuf) {
    static CELL: OnceLock<Template> = OnceLock::new();
    copy_of(template(&CELL, "long-message", "25000"))
}

/// An empty database (opened once, so it exists).
pub fn empty_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("events.db");
    drop(stacktrace::Store::open(&db).expect("create the database"));
    (dir, db)
}

/// The tool as a command on a database.
pub fn cli_command(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stacktrace-cli"));
    cmd.arg("--db").arg(db).args(args);
    cmd.env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_DASHBOARD_TOKEN")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs the tool to its end, with a 60-second limit, reading its output as it comes (an
/// export fills a pipe long before the program ends).
pub fn cli(db: &Path, args: &[&str]) -> Run {
    let mut child = cli_command(db, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tool");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the tool") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stacktrace {args:?} hung for 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs the tool and parses its standard output as JSON; the run must succeed.
pub fn cli_json(db: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = cli(db, &all);
    assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", run.stdout))
}

/// A program that has the database open (as a running app has), until dropped.
pub struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Holder {
    pub fn start(db: &Path) -> Holder {
        let mut cmd = super::scenario::scenario_command("hold", db, "");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the holder");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the holder");
        assert_eq!(line.trim(), "holding", "the holder did not start");
        Holder { child, stdin }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Closing its standard input ends it; kill it if it lingers.
        self.stdin.take();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stacktrace serve` on a free loopback port, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
}

impl Server {
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cli_command(db, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the server's address");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .split("/?")
            .next()
            .unwrap_or_default()
            .to_owned();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` of a server at `url` (`http://HOST:PORT`) over a plain connection that the
/// server closes: the status (0 when none is read) and the whole answer.
pub fn get(url: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}
