//! Files read at start-up are not trusted: a crash record or a spool line of any size, a
//! FIFO where a journal names a module, a file that is no record. `install()` reads a
//! capped amount of each, never blocks, and moves a file that is no record aside once.
//! Linux only: crash records are kept there.
#![cfg(target_os = "linux")]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stacktrace::Store;

/// What a scenario left: its exit code, stderr and peak resident memory.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stderr: String,
    max_rss_kib: i64,
}

/// Runs `crash_scenario <name> <db>`, killed past `limit` (a test failure), and measures
/// its peak resident memory with `wait4`.
// The child is reaped by `wait4`, which gives its resource usage; `Child::wait` would not.
#[allow(unsafe_code, clippy::zombie_processes)]
fn crash_scenario(name: &str, db: &Path, limit: Duration) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_scenario"))
        .arg(name)
        .arg(db)
        .env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_CRASH_HANDLER")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the scenario");
    let mut pipe = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut status = 0;
    // SAFETY: a zeroed `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes through the call.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            break;
        }
        assert!(got == 0, "wait4 failed");
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{name}` hung past {limit:?}: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ran {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr: reader.join().unwrap_or_default(),
        max_rss_kib: usage.ru_maxrss,
    }
}

fn install_and_exit(db: &Path) -> Ran {
    let ran = crash_scenario("clean", db, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    ran
}

fn crash_dir(db: &Path) -> PathBuf {
    db.with_file_name("events.db.crash")
}

fn spool_dir(db: &Path) -> PathBuf {
    db.with_file_name("events.db.spool")
}

/// A database holding the SIGABRT event of a crash, as the crash's JSON: the shape of a
/// stored event, for spool lines.
fn an_event_as_json() -> serde_json::Value {
    let (_dir, db) = support::scenario::db_dir();
    let _ = crash_scenario("abort", &db, Duration::from_secs(60));
    install_and_exit(&db);
    let store = Store::open(&db).expect("open");
    let events = store.query().run().expect("query").events;
    serde_json::to_value(&events[0]).expect("an event is JSON")
}

/// A spooled line of `event` with its id (taken now, told apart by `n`) and message
/// replaced.
fn spool_line(event: &serde_json::Value, n: u128, message: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let id = (now << 64) | n;
    let mut e = event.clone();
    e["id"] = format!("{id:032x}").into();
    e["message"] = message.into();
    e["fingerprint"] = format!("{id:064x}").into();
    format!("{e}\n")
}

fn messages_in(db: &Path) -> Vec<String> {
    let store = Store::open(db).expect("open");
    let events = store.query().run().expect("query").events;
    events.into_iter().map(|e| e.message).collect()
}

// Regression: a `.rec` file in the crash folder was read whole at every open (a 4 GiB file
// took 4 GiB of memory, or the program), and a file that was no record was read again at
// every start. A file larger than a record is not read past a record's size; both are
// moved aside once, said once; a real record beside them is still reported.
#[test]
fn a_huge_or_bogus_record_is_moved_aside_once_and_a_real_one_still_reported() {
    let (_dir, db) = support::scenario::db_dir();
    // Control: a real record, left by a process that aborted.
    let crashed = crash_scenario("abort", &db, Duration::from_secs(60));
    assert_ne!(crashed.code, Some(0), "{crashed:?}");
    let dir = crash_dir(&db);
    let huge = dir.join("1-1.rec");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let bogus = dir.join("2-2.rec");
    std::fs::write(&bogus, "not a crash record, but longer than its magic").unwrap();

    let started = Instant::now();
    let first = install_and_exit(&db);
    assert!(started.elapsed() < Duration::from_secs(30), "{first:?}");
    assert!(first.max_rss_kib < 512 * 1024, "{first:?}");
    for path in [&huge, &bogus] {
        assert!(!path.exists(), "{}", path.display());
        let aside = PathBuf::from(format!("{}.invalid", path.display()));
        assert!(aside.exists(), "{}", aside.display());
        let said = first.stderr.matches(&path.display().to_string()).count();
        assert_eq!(said, 2, "named in its one line, twice: {}", first.stderr);
    }
    assert!(first.stderr.contains("larger than a record"), "{first:?}");
    let messages = messages_in(&db);
    assert!(
        messages.iter().any(|m| m.starts_with("SIGABRT (aborted)")),
        "{messages:?}"
    );

    // The next start reads neither again, and says nothing of them.
    let second = install_and_exit(&db);
    assert!(!second.stderr.contains("moved aside"), "{second:?}");
    assert!(first.stderr.contains("moved aside"), "{first:?}");
}

// Regression: a spool (journal) line was read whole into memory at every open, whatever its
// length: a file of 100 MiB without a line end took 100 MiB. It is read past in pieces and
// skipped, said once; the line before it is still merged.
#[test]
fn a_spool_line_of_100_mib_is_skipped_without_being_held() {
    let event = an_event_as_json();
    let spooled = |db: &Path, huge: bool| {
        let dir = spool_dir(db);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1-00000000000000ab.jsonl");
        let line = spool_line(&event, 1, "a spooled event before the long line");
        std::fs::write(&path, &line).unwrap();
        if huge {
            // 100 MiB of zeros and no line end, without taking the disk.
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(line.len() as u64 + (100 << 20)).unwrap();
        }
    };
    let (_base_dir, base_db) = support::scenario::db_dir();
    spooled(&base_db, false);
    let baseline = install_and_exit(&base_db);

    let (_dir, db) = support::scenario::db_dir();
    spooled(&db, true);
    let ran = install_and_exit(&db);
    assert!(
        ran.max_rss_kib < baseline.max_rss_kib + 50 * 1024,
        "{ran:?} against {baseline:?}"
    );
    assert_eq!(
        ran.stderr.matches("skipped a spooled line").count(),
        1,
        "{ran:?}"
    );
    // Control: the line before it was merged, in both.
    for db in [&db, &base_db] {
        let messages = messages_in(db);
        assert!(
            messages.contains(&"a spooled event before the long line".to_owned()),
            "{messages:?}"
        );
    }
    assert!(!baseline.stderr.contains("skipped a spooled line"));
}

// Regression: a module path named in a journaled event was opened as it was, and a FIFO
// there blocked `install()` for good. Only a regular file is opened, without blocking; the
// event is stored with its addresses and why they were not resolved.
#[test]
fn a_fifo_where_a_journal_names_a_module_does_not_block_install() {
    let event = an_event_as_json();
    let (dir, db) = support::scenario::db_dir();
    let fifo = dir.path().join("module.so");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo takes no other pointer.
    #[allow(unsafe_code)]
    let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(made, 0);
    let mut journaled = event.clone();
    journaled["frames"] = serde_json::json!([]);
    journaled["unresolved"] = serde_json::json!({
        "modules": [{"path": fifo.to_str().unwrap(), "build_id": "00ff"}],
        "addresses": [[0, 4096]],
    });
    let spool = spool_dir(&db);
    std::fs::create_dir_all(&spool).unwrap();
    let lines = spool_line(&journaled, 1, "a panic journaled as addresses")
        + &spool_line(&event, 2, "a spooled event after it");
    std::fs::write(spool.join("1-00000000000000ab.jsonl"), lines).unwrap();

    // The scenario's time limit fails the test if the open blocks.
    install_and_exit(&db);
    let store = Store::open(&db).expect("open");
    let events = store.query().run().expect("query").events;
    let journaled = events
        .iter()
        .find(|e| e.message == "a panic journaled as addresses")
        .expect("the journaled event is stored");
    let reason = journaled
        .unresolved
        .as_ref()
        .and_then(|u| u.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("not a regular file"), "{reason}");
    // Control: the event after it is there too.
    assert!(events
        .iter()
        .any(|e| e.message == "a spooled event after it"));
}
