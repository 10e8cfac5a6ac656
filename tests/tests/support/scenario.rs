//! Scenario programs run with a time limit, and fresh directories for their databases.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
/// Its output is read while it runs, so a talkative program never blocks on a full pipe.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.env_remove("RUST_BACKTRACE");
    let mut child = cmd.spawn().expect("start the scenario");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut out);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("poll the scenario") {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "scenario hung for {limit:?}\nstdout: {}\nstderr: {}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
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

/// Whether the opt-in stress tests run (`STACKTRACE_STRESS` set); when they do not, says
/// what was skipped and how to run it.
pub fn stress_enabled(skipped: &str) -> bool {
    if std::env::var_os("STACKTRACE_STRESS").is_none() {
        println!("skipped: set STACKTRACE_STRESS=1 to {skipped}");
        return false;
    }
    true
}

/// The number in the environment variable `name`, or `default` when it is unset or not a
/// number.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Copies the database directory `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The databases moved aside next to `db`.
pub fn moved_aside(db: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.corrupt-", db.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}
