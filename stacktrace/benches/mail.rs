//! The calling thread's cost of capture with mail on, against mail off, and the mails per
//! second the sender keeps up against an SMTP server on 127.0.0.1.
//!
//! The tracker installs once per process, so each half runs in a child process of this same
//! benchmark, set up alike, "mail off" first; their output is shown in line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use stacktrace::mail::MailConfig;
use stacktrace::{Config, Guard, Level};

#[path = "../../tests/tests/mail_support/smtp.rs"]
mod smtp;

const MODE_VAR: &str = "STACKTRACE_BENCH_MAIL";

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

fn bench_captures(c: &mut Criterion, guard: &Guard, label: &str) {
    let mut group = c.benchmark_group("capture_error");
    // The writer's work (and so the mail decision for errors) is left out of the timing:
    // each batch is flushed untimed, so every capture is a real enqueue.
    group.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(2_000);
                let start = Instant::now();
                for _ in 0..batch {
                    black_box(stacktrace::capture_error(&BenchError));
                }
                total += start.elapsed();
                guard.flush();
                left -= batch;
            }
            total
        })
    });
    group.finish();
    // A panic is stored, flushed and handed to the mailer on the panicking thread.
    let mut group = c.benchmark_group("panic");
    group.sample_size(20);
    group.bench_function(label, |b| {
        b.iter(|| std::panic::catch_unwind(fail).is_err())
    });
    group.finish();
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
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    std::panic::set_hook(Box::new(|_| {}));
    let dir = tempfile::tempdir().expect("temp dir");

    match std::env::var(MODE_VAR).as_deref() {
        Ok("off") => {
            let guard = install(dir.path(), None);
            bench_captures(&mut c, &guard, "mail off");
            c.final_summary();
            return;
        }
        Ok("on") => {}
        _ => {
            // Both halves in fresh child processes set up alike, one after the other.
            for mode in ["off", "on"] {
                let status =
                    std::process::Command::new(std::env::current_exe().expect("this benchmark"))
                        .args(std::env::args_os().skip(1))
                        .env(MODE_VAR, mode)
                        .status()
                        .expect("a half of the benchmark");
                assert!(status.success(), "the mail-{mode} half failed");
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
    bench_captures(&mut c, &guard, "mail on");
    c.final_summary();

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
