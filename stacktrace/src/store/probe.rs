//! A trial open in a child process, for builds where a panic aborts (`panic = "abort"`).
//!
//! An unwinding build catches the panics of opening a database (sled panics on some damaged
//! files) and of merging its journals (the symbol readers parse module files found on
//! disk), and goes on: the database is called damaged, the journaled event is kept with
//! its addresses. Where a panic aborts, nothing catches them, and the program would end at
//! every start until someone removed the file. So before the real open, a forked child
//! opens the database the same way and ends; from how it ended, the parent knows whether
//! the open would abort, and whether it still does with no module file read.
//!
//! The child does what the open does (it merges the journals and crash records, and
//! flushes before it ends), so the open that follows finds that work done. It runs while
//! the program starts, before the tracker's threads do; in a process with other threads,
//! a lock one of them held at the fork stays held in the child, which then waits until the
//! time limit kills it, and the open goes ahead as it would have. On targets other than
//! Unix there is no trial: an abort build opens as the unwinding one does, uncaught.

use std::path::Path;
use std::time::Duration;

use crate::store::outbox::OutboxMarks;

/// How long a trial open may take: past it, the child is killed and the open goes ahead
/// as if there were no trial. Opening a large database after an upgrade (an index rebuilt)
/// is the slowest honest case.
const TRIAL_LIMIT: Duration = Duration::from_secs(30);

/// How a trial open ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Without `fork`, no trial runs and only `Unknown` is made.
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) enum Trial {
    /// It opened and flushed the database.
    Opened,
    /// It returned an error, which the real open will return too.
    Failed,
    /// A fault of its own ended it: the signal (`SIGABRT` for a panic).
    Aborted(i32),
    /// No telling: it could not start, ran past the limit, was killed from outside, or was
    /// reaped by someone else.
    Unknown,
}

/// What the real open does, from the trials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Opens as the unwinding build does.
    AsToday,
    /// Opens with no module file read: the journaled events keep their addresses.
    WithoutModuleFiles,
    /// Opening ends the program even with no module file read: the database is damaged;
    /// the signal that ended the trial.
    Damaged(i32),
}

/// The plan from a first trial (module files read) and, when that one aborted, a second
/// with none read: an abort that a module file caused goes with the file, one that the
/// database caused stays.
pub(super) fn plan_of(first: Trial, without_files: impl FnOnce() -> Trial) -> Plan {
    match first {
        Trial::Aborted(_) => match without_files() {
            Trial::Aborted(signal) => Plan::Damaged(signal),
            _ => Plan::WithoutModuleFiles,
        },
        Trial::Opened | Trial::Failed | Trial::Unknown => Plan::AsToday,
    }
}

/// The plan for opening the database at `path` in a build where a panic aborts: trial
/// opens in child processes, skipped when another process holds the database (the open
/// says so at once) and on targets with no `fork`.
pub(super) fn plan_for(path: &Path, cache_bytes: u64, marks: Option<OutboxMarks>) -> Plan {
    if !cfg!(unix) || held(path) {
        return Plan::AsToday;
    }
    let trial = |files: bool| {
        in_child(TRIAL_LIMIT, || {
            let open = || super::db::Store::open_unguarded(path, cache_bytes, marks);
            let opened = if files {
                open()
            } else {
                crate::pipeline::resolve::modules::without_module_files(open)
            };
            // Flushed, so that what it merged is durable before it ends without a word.
            match opened.and_then(|store| store.flush()) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        })
    };
    plan_of(trial(true), || trial(false))
}

/// Whether another process holds the database at `path`: sled locks its data file for as
/// long as a process has it open.
fn held(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("db"))
        .is_ok_and(|data| data.try_lock().is_err())
}

/// The name of a fault signal, for the words of the damage.
pub(super) fn signal_name(signal: i32) -> String {
    #[cfg(unix)]
    {
        let name = match signal {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGBUS => "SIGBUS",
            libc::SIGILL => "SIGILL",
            libc::SIGFPE => "SIGFPE",
            libc::SIGTRAP => "SIGTRAP",
            _ => return format!("signal {signal}"),
        };
        name.to_owned()
    }
    #[cfg(not(unix))]
    format!("signal {signal}")
}

/// Runs `run` in a forked child that ends with the code it returns, and tells how it ended
/// within `limit`.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(super) fn in_child(limit: Duration, run: impl FnOnce() -> i32) -> Trial {
    // SAFETY: the child is a copy of this thread alone. It resets the fault signals'
    // actions (plain calls on its own process), replaces the panic hook so that the
    // tracker's hook, if installed, journals nothing of the child's into the parent's
    // files, runs `run` and ends with `_exit`, which runs no destructor and no exit
    // handler of the parent's. The allocator is fork-safe (glibc's, musl's and the
    // platforms' take their locks around `fork`); a lock another thread held at the fork
    // stays held, and the child waits on it until the limit below kills it.
    match unsafe { libc::fork() } {
        -1 => Trial::Unknown,
        0 => {
            for signal in FAULTS {
                // SAFETY: resetting an action to the default has no precondition. The
                // parent's fatal-signal handler would write the child's fault into the
                // parent's crash record.
                unsafe {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            std::panic::set_hook(Box::new(|_| {}));
            // A panic that unwinds (a test build) must not return into the parent's code.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or(101);
            // SAFETY: ends the child at once, as intended.
            unsafe { libc::_exit(code) }
        }
        child => wait_for(child, limit),
    }
}

#[cfg(not(unix))]
pub(super) fn in_child(_limit: Duration, _run: impl FnOnce() -> i32) -> Trial {
    Trial::Unknown
}

/// The signals that a fault of the child's own ends it with; any other (a `SIGKILL` from
/// the out-of-memory killer, a `SIGTERM`) says nothing about the database.
#[cfg(unix)]
const FAULTS: [i32; 6] = [
    libc::SIGABRT,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
];

/// Waits for the child `pid` up to `limit`, polling; kills and reaps it past the limit.
#[cfg(unix)]
#[allow(unsafe_code)]
fn wait_for(pid: libc::pid_t, limit: Duration) -> Trial {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waits for this process's own child, writing its status to a local.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid {
            return if libc::WIFSIGNALED(status) {
                let signal = libc::WTERMSIG(status);
                if FAULTS.contains(&signal) {
                    Trial::Aborted(signal)
                } else {
                    Trial::Unknown
                }
            } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Trial::Opened
            } else {
                Trial::Failed
            };
        }
        if reaped == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            // Reaped by someone else (a program that ignores SIGCHLD).
            return Trial::Unknown;
        }
        if start.elapsed() >= limit {
            // SAFETY: `pid` is this process's child, not yet reaped, so the id is still
            // its own; the wait reaps it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Trial::Unknown;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_that_aborts_with_module_files_and_not_without_them_opens_without_them() {
        let aborted = Trial::Aborted(6);
        assert_eq!(plan_of(aborted, || Trial::Opened), Plan::WithoutModuleFiles);
        assert_eq!(plan_of(aborted, || Trial::Failed), Plan::WithoutModuleFiles);
        assert_eq!(
            plan_of(aborted, || Trial::Unknown),
            Plan::WithoutModuleFiles
        );
        assert_eq!(plan_of(aborted, || Trial::Aborted(11)), Plan::Damaged(11));
        // A first trial that did not abort needs no second one.
        for first in [Trial::Opened, Trial::Failed, Trial::Unknown] {
            assert_eq!(
                plan_of(first, || panic!("no second trial after {first:?}")),
                Plan::AsToday
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_child_tells_how_it_ended() {
        let limit = Duration::from_secs(20);
        assert_eq!(in_child(limit, || 0), Trial::Opened);
        assert_eq!(in_child(limit, || 1), Trial::Failed);
        assert_eq!(
            in_child(limit, || std::process::abort()),
            Trial::Aborted(libc::SIGABRT)
        );
        // Killed from outside: nothing said about the database.
        #[allow(unsafe_code)]
        let killed = in_child(limit, || {
            // SAFETY: sends a signal to this (child) process.
            unsafe { libc::raise(libc::SIGTERM) };
            0
        });
        assert_eq!(killed, Trial::Unknown);
        let start = std::time::Instant::now();
        let hung = in_child(Duration::from_millis(200), || {
            std::thread::sleep(Duration::from_secs(30));
            0
        });
        assert_eq!(hung, Trial::Unknown);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
