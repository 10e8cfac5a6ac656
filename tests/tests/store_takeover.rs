//! A database held by another process when the program installs: the program spools,
//! takes the database over once it is free, and keeps its spool within its cap; and
//! `stacktrace serve` lets a program have the database between requests.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::cli::{get, Holder, Server};
use support::scenario::{db_dir, run_with_limit, Run};

fn takeover(name: &str, db: &std::path::Path, arg: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_takeover_scenario"));
    cmd.arg(name).arg(db).arg(arg).env_remove("STACKTRACE_DB");
    cmd
}

/// Starts `cmd` and waits for the line `line` on its output; the rest is read by the caller.
fn start_until(
    mut cmd: Command,
    line: &str,
) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the scenario");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        if out.read_line(&mut l).expect("read the scenario") == 0 {
            break;
        }
        seen.push_str(&l);
        if l.trim() == line {
            return (child, out, seen);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the scenario ended before {line:?}: {seen}");
}

/// The value after `key` on the line of `run`'s output that starts with it.
fn after<'a>(run: &'a Run, key: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in {run:?}"))
        .trim()
}

// Pins: a program that found its database held at start (another program, `stacktrace
// serve`, a deploy overlap) spooled for its whole life: `store()` stayed None, forwarding
// and request tracking stayed off and the spool grew until the process ended.
#[test]
fn a_program_that_found_its_database_held_takes_it_over_once_it_is_free() {
    let (_dir, db) = db_dir();
    let (mut holder, mut held, _) = start_until(takeover("hold-for", &db, "1500"), "holding");
    let run = run_with_limit(
        takeover("spool-then-store", &db, ""),
        Duration::from_secs(60),
    );
    let mut rest = String::new();
    let _ = held.read_to_string(&mut rest);
    let _ = holder.wait();
    assert_eq!(run.code, Some(0), "{run:?}");
    // The control: it did spool, into its file, with no store to read.
    assert_eq!(after(&run, "spooling:"), "true", "{run:?}");
    assert_eq!(after(&run, "spool holds the spooled events:"), "true");
    assert_eq!(after(&run, "store before:"), "false");
    let took: u64 = after(&run, "store after")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    // Held 1.5 s from before the install; tried every 2 s.
    assert!(took < 8_000, "took {took} ms: {run:?}");
    assert_eq!(
        after(&run, "in store:"),
        "after the takeover|spooled 0|spooled 1|spooled 2|spooled panic",
        "{run:?}"
    );
    // The new event went to the database, not the spool, which the takeover emptied.
    assert_eq!(after(&run, "spool path now:"), "None");
    assert_eq!(after(&run, "spool holds the new event:"), "false");
    assert_eq!(
        run.stderr
            .matches("is open: events are stored in it again")
            .count(),
        1,
        "{run:?}"
    );
    // Merged once: the spool directory holds nothing for the next open to add again.
    let store = stacktrace::Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 5);
}

// Pins: the spool of a program kept from its database grew without bound.
#[test]
fn a_full_spool_drops_its_oldest_events_and_counts_them() {
    let (_dir, db) = db_dir();
    let holder = Holder::start(&db);
    let cap = 256 << 10;
    let count = 3000;
    let mut child = takeover("flood", &db, &format!("{cap},{count}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut flooded = String::new();
    out.read_line(&mut flooded).unwrap();
    assert!(flooded.starts_with("flooded"), "{flooded}");
    drop(holder);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{flooded}{rest}");
    let run = Run {
        code: Some(0),
        stdout: format!("{flooded}{rest}"),
        stderr: String::new(),
    };
    let largest: u64 = flooded
        .split("spool at most ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(largest <= cap, "{run:?}");
    let stored: u64 = after(&run, "stored").parse().unwrap();
    let dropped: u64 = after(&run, "spool_full").parse().unwrap();
    assert!(dropped > 0 && stored > 0, "{run:?}");
    assert_eq!(stored + dropped, count, "{run:?}");
    assert_eq!(after(&run, "other drops"), "0", "{run:?}");
    // The newest are kept, the oldest dropped.
    assert_eq!(
        after(&run, "newest kept"),
        format!("flood {:06}", count - 1)
    );
    assert_eq!(after(&run, "oldest kept"), format!("flood {:06}", dropped));
}

// Pins: `stacktrace serve` held the database for as long as it ran: a program started
// meanwhile spooled for its whole life.
#[test]
fn serve_lets_a_program_take_the_database_between_requests() {
    let (_dir, db) = db_dir();
    drop(stacktrace::Store::open(&db).unwrap());
    let server = Server::start(&db, &[]);
    // The control: the page is served while no program uses the database.
    assert_eq!(get(&server.url, "/").0, 200);
    // Pages asked for while the program starts keep the database open, so it spools...
    let url = server.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asking = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                get(&url, "/");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (mut app, mut out, _) =
        start_until(takeover("spool-then-store", &db, "wait"), "spooling: true");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    asking.join().unwrap();
    let mut seen = String::new();
    while !seen.contains("done") {
        assert!(out.read_line(&mut seen).unwrap() > 0, "{seen}");
    }
    // ... and has it within seconds of the last request, its spooled events merged.
    assert!(seen.contains("store after"), "{seen}");
    assert!(
        seen.contains("in store: after the takeover|spooled 0|spooled 1|spooled 2|spooled panic"),
        "{seen}"
    );
    // While the program has it, the pages say so.
    let (status, page) = get(&server.url, "/");
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("held by a running program"), "{page}");
    // Once it ends, they show its events again.
    drop(app.stdin.take());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(app.wait().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, page) = loop {
        let (status, page) = get(&server.url, "/events");
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, page);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("after the takeover"), "{page}");
}
