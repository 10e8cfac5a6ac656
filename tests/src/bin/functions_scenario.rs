//! Scenarios of the call counters and source lines.
//!
//! - `functions_scenario counts DB RELEASE` calls captured functions that succeed, return
//!   `Err` and panic, on the main thread, on a thread that has ended and on one still
//!   running when the guard is dropped; then exits.
//! - `functions_scenario group DB RELEASE` stores four reports of one error by three users,
//!   each after breadcrumbs, with a tag, and calls a captured function that fails once.
//! - `functions_scenario source DB` stores one error captured in `main`, configured from
//!   the environment (`STACKTRACE_SOURCE_CONTEXT`).

use std::sync::mpsc;

use stacktrace::{add_breadcrumb, capture, Breadcrumb, Config, Level, Report};

/// 1 call in 4 fails (`n % 4 == 0`).
#[capture]
fn checkout(n: u32) -> Result<u32, String> {
    if n.is_multiple_of(4) {
        return Err(format!("checkout {n} declined"));
    }
    Ok(n * 2)
}

/// Panics on anything but a digit.
#[capture(name = "parse.digit")]
fn parse_digit(c: char) -> u32 {
    c.to_digit(10).expect("a digit")
}

/// Not counted; never fails.
#[capture(uncounted)]
fn hot(n: u64) -> Result<u64, String> {
    Ok(n + 1)
}

/// Reports a failed settlement for `user` on `shard`.
fn settle(user: &str, shard: &str) {
    let err = std::io::Error::other("settlement failed");
    Report::error(&err).user(user).tag("shard", shard).capture();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let release = args.next().unwrap_or_default();
    // The panics below print nothing: the tracker's hook chains to this one.
    std::panic::set_hook(Box::new(|_| {}));
    let config = if name == "source" {
        Config::from_env().expect("configuration from the environment")
    } else {
        Config::default().release(release)
    };
    let guard = stacktrace::install_with(config.db_path(&db).capture_env(false));
    match name.as_str() {
        "group" => {
            for (i, (user, shard)) in [("ann", "eu"), ("bob", "eu"), ("ann", "us"), ("cy", "eu")]
                .into_iter()
                .enumerate()
            {
                add_breadcrumb(Breadcrumb::new(
                    Level::Info,
                    "http",
                    format!("GET /cart/{i}"),
                ));
                add_breadcrumb(Breadcrumb::new(Level::Warning, "db", "slow query"));
                settle(user, shard);
            }
            for n in 1..5 {
                let _ = checkout(n);
            }
            drop(guard);
        }
        "source" => {
            let err = std::io::Error::other("source lines wanted");
            stacktrace::capture_error(&err);
            drop(guard);
        }
        "counts" => {
            // 20 calls, 5 failures.
            for n in 0..20 {
                let _ = checkout(n);
            }
            // 3 calls, 1 failure (a panic).
            for c in ['1', '2', 'x'] {
                let _ = std::panic::catch_unwind(|| parse_digit(c));
            }
            for n in 0..10 {
                let _ = hot(n);
            }
            // An ended thread: 3 calls, 1 failure (8).
            std::thread::spawn(|| {
                for n in 8..11 {
                    let _ = checkout(n);
                }
            })
            .join()
            .expect("thread");
            // A thread still running when the guard is dropped: 7 calls, 1 failure (4).
            let (done_tx, done_rx) = mpsc::channel();
            let (_hold_tx, hold_rx) = mpsc::channel::<()>();
            std::thread::spawn(move || {
                for n in 1..8 {
                    let _ = checkout(n);
                }
                let _ = done_tx.send(());
                let _ = hold_rx.recv();
            });
            done_rx.recv().expect("the running thread counted");
            drop(guard);
            std::process::exit(0);
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}
