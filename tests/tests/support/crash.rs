//! The crash scenario program run to its end, or until it says it is ready and is killed,
//! with a time limit; with the tracker and without, to compare how they end. Linux only.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a scenario ended: its status and what it said on stderr.
pub struct Ended {
    pub status: ExitStatus,
    pub stderr: String,
}

pub fn command(name: &str, db: &Path, plain: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash_scenario"));
    cmd.arg(name).arg(db);
    if plain {
        cmd.arg("plain");
    }
    cmd.env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_CRASH_HANDLER")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

pub fn wait_with_limit(mut child: std::process::Child) -> Ended {
    let mut stderr = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll the scenario") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("scenario hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ended {
        status,
        stderr: reader.join().unwrap_or_default(),
    }
}

pub fn run(name: &str, db: &Path, plain: bool) -> Ended {
    wait_with_limit(
        command(name, db, plain)
            .spawn()
            .expect("start the scenario"),
    )
}

/// Runs `name` with the tracker and without, checks that both end alike, and returns the
/// tracked run.
pub fn run_both(name: &str, db: &Path) -> Ended {
    let tracked = run(name, db, false);
    let (_other, other_db) = super::scenario::db_dir();
    let plain = run(name, &other_db, true);
    assert_eq!(
        (tracked.status.code(), tracked.status.signal()),
        (plain.status.code(), plain.status.signal()),
        "{name}: the exit status changed with the tracker\ntracked stderr: {}\nplain stderr: {}",
        tracked.stderr,
        plain.stderr
    );
    tracked
}

/// Runs `name` until it says it is ready, then kills it with SIGKILL.
pub fn run_and_kill(name: &str, db: &Path) -> Ended {
    let mut cmd = command(name, db, false);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start the scenario");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line.trim(), "ready");
    child.kill().expect("SIGKILL the scenario");
    let ended = wait_with_limit(child);
    assert_eq!(
        ended.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        ended.stderr
    );
    ended
}
