//! Helpers shared by the integration tests: running scenario programs with a time limit,
//! and reading what they stored.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a finished scenario left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A fresh directory with a database path inside.
pub fn db_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("events.db");
    (dir, db)
}

/// Runs a program to its end; a hang past `limit` is a test failure, not a stuck suite.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.env_remove("RUST_BACKTRACE");
    let mut child = cmd.spawn().expect("start the scenario");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("poll the scenario") {
            Some(_) => break,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "scenario hung for {limit:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("collect output");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn scenario_command(name: &str, db: &Path, arg: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scenario"));
    cmd.arg(name).arg(db).arg(arg);
    cmd.env_remove("STACKTRACE_DB");
    cmd
}

/// Runs the scenario program with a 60-second limit.
pub fn scenario(name: &str, db: &Path, arg: &str) -> Run {
    run_with_limit(scenario_command(name, db, arg), Duration::from_secs(60))
}

/// Every byte of every file under `dir`.
pub fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).expect("read dir") {
                stack.push(e.expect("dir entry").path());
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.extend(bytes);
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
