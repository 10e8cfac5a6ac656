//! A burst of errors past the writer's pace (`-- errors`), in fresh processes: 10,000
//! `capture_error` calls with stacks, from ten distinct failures, in a tight loop. Timed per
//! capture in wall time and the calling thread's CPU time against a bare unresolved
//! backtrace per call (the baseline, in processes of its own), and followed by what the
//! database kept: stored events, groups, the sum of their counts, repeats counted and not
//! stored, events dropped.

use std::hint::black_box;

use super::clocks::thread_cpu_now;

/// Set in a child run of the bench: `baseline` or `tracker`.
pub const CHILD: &str = "STACKTRACE_BENCH_BURST";
/// Fresh processes per kind (default 3).
const RUNS: &str = "STACKTRACE_BENCH_BURST_RUNS";
const CAPTURES: usize = 10_000;

/// One of ten distinct failures: its own error type, captured at its own site.
#[derive(Debug)]
struct Failure<const N: usize>;

impl<const N: usize> std::fmt::Display for Failure<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failure {N} of the burst")
    }
}

impl<const N: usize> std::error::Error for Failure<N> {}

#[inline(never)]
fn capture<const N: usize>() -> Option<stacktrace::EventId> {
    stacktrace::capture_error(&Failure::<N>)
}

fn capture_one_of_ten(which: usize) -> Option<stacktrace::EventId> {
    match which {
        0 => capture::<0>(),
        1 => capture::<1>(),
        2 => capture::<2>(),
        3 => capture::<3>(),
        4 => capture::<4>(),
        5 => capture::<5>(),
        6 => capture::<6>(),
        7 => capture::<7>(),
        8 => capture::<8>(),
        _ => capture::<9>(),
    }
}

/// In a child: the burst through `kind`; prints wall and thread CPU nanoseconds per
/// capture, then (with the tracker) stored events, groups, the sum of the group counts,
/// repeats counted and events dropped.
pub fn child(kind: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = (kind == "tracker").then(|| {
        stacktrace::install_with(
            stacktrace::Config::default()
                .db_path(dir.path().join("burst.db"))
                .capture_env(false),
        )
    });
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu_now());
    for i in 0..CAPTURES {
        if guard.is_some() {
            black_box(capture_one_of_ten(i % 10));
        } else {
            black_box(backtrace::Backtrace::new_unresolved());
        }
    }
    let (wall, cpu) = (wall.elapsed(), thread_cpu_now() - cpu);
    let n = CAPTURES as u128;
    print!("{} {}", wall.as_nanos() / n, cpu.as_nanos() / n);
    if let Some(guard) = guard {
        guard.flush();
        let store = stacktrace::store().expect("the tracker's store");
        let stats = store.stats().expect("stats");
        let groups = store.groups(stacktrace::GroupOrder::Count).expect("groups");
        let counted: u64 = groups.iter().map(|g| g.count).sum();
        let dropped: u64 = stats.dropped.values().sum();
        print!(
            " {} {} {counted} {} {dropped}",
            stats.events,
            groups.len(),
            stats.repeats_counted
        );
    }
    println!();
}

/// Runs the burst in fresh processes of each kind; prints the medians per capture with
/// their ratio to the baseline, and what the tracker's database kept in each process.
pub fn in_fresh_processes() {
    let runs: usize = std::env::var(RUNS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("the bench's own path");
    println!(
        "burst of {CAPTURES} capture_error calls from 10 failures in a tight loop, \
         {runs} fresh processes each; per capture:"
    );
    let mut base = None;
    for kind in ["baseline", "tracker"] {
        let mut rounds: Vec<Vec<u128>> = (0..runs)
            .map(|_| {
                let n = numbers_of_child(&exe, CHILD, kind);
                assert!(n.len() >= 2, "child said {n:?}");
                n
            })
            .collect();
        let us = |ns: u128| ns as f64 / 1e3;
        let mut median = |i: usize| {
            rounds.sort_by_key(|r| r[i]);
            us(rounds[rounds.len() / 2][i])
        };
        let (wall, cpu) = (median(0), median(1));
        let (b_wall, b_cpu) = *base.get_or_insert((wall, cpu));
        let name = match kind {
            "baseline" => "unresolved backtrace (baseline)",
            _ => "tracker",
        };
        println!(
            "  {name:<32} wall {wall:>7.2} µs ({:>5.1}x)  thread CPU {cpu:>7.2} µs ({:>5.1}x)",
            wall / b_wall,
            cpu / b_cpu
        );
        for r in rounds.iter().filter(|r| r.len() == 7) {
            println!(
                "    stored {:>5}  groups {:>2}  sum of counts {:>5}  repeats counted {:>5}  \
                 dropped {:>5}",
                r[2], r[3], r[4], r[5], r[6]
            );
        }
    }
}

/// Runs this bench's program again with `var` set to `kind` (a child that times one run in
/// a fresh process) and gives the numbers it printed, in order; panics with what it said
/// when it fails.
pub fn numbers_of_child(exe: &std::path::Path, var: &str, kind: &str) -> Vec<u128> {
    let out = std::process::Command::new(exe)
        .env(var, kind)
        .output()
        .expect("run a child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {kind} failed: {text:?}, {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}
