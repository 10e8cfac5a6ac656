//! The calling thread's cost of capture with mail on, against mail off, in wall time and in
//! the calling thread's CPU time, and the mails per second the sender keeps up against an
//! SMTP server on 127.0.0.1.
//!
//! The tracker installs once per process, so each half runs in a child process of this same
//! benchmark, set up alike, "mail off" first; their output is shown in line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use stacktrace::mail::MailConfig;
use stacktrace::{Config, Guard, Level};

#[path = "support/clocks.rs"]
mod clocks;
#[path = "../../tests/tests/support/mail/smtp.rs"]
mod smtp;

use clocks::{captures_and_panics, Clock, ThreadCpu};

const MODE_VAR: &str = "STACKTRACE_BENCH_MAIL";
/// Set in the last round, which also measures the sender's throughput.
const LAST_VAR: &str = "STACKTRACE_BENCH_MAIL_LAST";
/// Rounds of "mail off" then "mail on".
const ROUNDS: u32 = 2;

#[derive(Debug)]
struct BenchError;

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench failure")
    }
}

impl std::error::Error for BenchError {}

#[inline(never)]
fn fail() {
    panic!("bench panic");
}

fn bench_captures<C: Clock>(c: &mut Criterion<C>, guard: &Guard, label: &str) {
    // The writer's work (storing, and the mail decision) is left out of the timing: each
    // batch is flushed untimed, so every capture is a real enqueue.
    let flush = || {
        guard.flush();
    };
    // A panic is journaled on the panicking thread and queued; the writer stores it and
    // hands it to the mailer.
    captures_and_panics(
        c,
        label,
        || {
            black_box(stacktrace::capture_error(&BenchError));
        },
        || {
            black_box(std::panic::catch_unwind(fail).is_err());
        },
        flush,
    );
}

/// Runs one half: both clocks, wall time first.
fn run_half(guard: &Guard, label: &str) {
    let mut wall = criterion().configure_from_args();
    let mut cpu = criterion()
        .with_measurement(ThreadCpu)
        .configure_from_args();
    bench_captures(&mut wall, guard, label);
    bench_captures(&mut cpu, guard, label);
    wall.final_summary();
    cpu.final_summary();
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn install(dir: &std::path::Path, mail: Option<MailConfig>) -> Guard {
    let mut config = Config::default()
        .db_path(dir.join("bench.db"))
        .queue_capacity(1 << 20)
        .capture_env(false);
    if let Some(m) = mail {
        config = config.mail(m);
    }
    let guard = stacktrace::install_with(config);
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    guard
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let dir = tempfile::tempdir().expect("temp dir");

    match std::env::var(MODE_VAR).as_deref() {
        Ok("off") => {
            let guard = install(dir.path(), None);
            run_half(&guard, "mail off");
            return;
        }
        Ok("on") => {}
        _ => {
            // Both halves in fresh child processes set up alike, alternating for `ROUNDS`
            // rounds: a drift of the machine (other programs starting or ending) shows as a
            // change between the rounds of one half, next to the difference between halves.
            for round in 1..=ROUNDS {
                for mode in ["off", "on"] {
                    println!("round {round} of {ROUNDS}, mail {mode}");
                    let status = std::process::Command::new(
                        std::env::current_exe().expect("this benchmark"),
                    )
                    .args(std::env::args_os().skip(1))
                    .env(MODE_VAR, mode)
                    .env(LAST_VAR, if round == ROUNDS { "1" } else { "" })
                    .status()
                    .expect("a half of the benchmark");
                    assert!(status.success(), "the mail-{mode} half failed");
                }
            }
            return;
        }
    }
    let server = smtp::SmtpServer::start();
    let guard = install(
        dir.path(),
        Some(
            MailConfig::default()
                .admin("ops@example.com")
                .smtp_url(server.url())
                .queue_capacity(10_000),
        ),
    );
    run_half(&guard, "mail on");
    if std::env::var(LAST_VAR).as_deref() != Ok("1") {
        return;
    }

    // Sender throughput: distinct groups, each one report mail.
    server.wait_for(Duration::from_secs(30), |m| m.len() >= 2);
    let before = server.mails().len();
    let n = 300;
    let start = Instant::now();
    for i in 0..n {
        stacktrace::capture_message(&format!("throughput {i}"), Level::Error);
    }
    let mails = server.wait_for(Duration::from_secs(60), |m| m.len() >= before + n);
    let took = start.elapsed();
    let sent = mails.len() - before;
    println!(
        "mail sender: {sent} mails in {:.2} s = {:.0} mails/s (one SMTP connection each)",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
}
