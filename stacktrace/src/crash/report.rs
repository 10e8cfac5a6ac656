//! Crash records of processes that are gone, turned into events by the next process that
//! opens the database: a crash becomes a fatal event, a record left open an event of the
//! level its process was set to. Each record is taken by one reader only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::crash::layout::{self, records_dir, state, Crash, Meta, Record};
use crate::model::breadcrumb::Breadcrumb;
use crate::model::event::{CrashEvent, EventId, Level, RuntimeContext};
use crate::pipeline::fingerprint::fingerprint_of;
use crate::pipeline::redact::credentials::redact_credentials_in;
use crate::pipeline::redact::fields::{FieldRedactor, Secrets};
use crate::pipeline::resolve::modules::unresolved_in;
use crate::untrusted;

/// Records taken from beside a database: the events they make, and the records
/// themselves, still locked, until [`Taken::settle`] removes them once the events are
/// stored. Dropped unsettled, the records stay for the next reader.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) events: Vec<CrashEvent>,
    /// How each record's process ended: the end of its session.
    pub(crate) ended: Vec<Ended>,
    records: Vec<(File, PathBuf)>,
    dir: PathBuf,
}

impl Taken {
    /// Marks each record consumed (a reader that opened it before it is removed leaves
    /// it alone) and removes it.
    pub(crate) fn settle(self) {
        for (mut file, path) in self.records {
            let consumed = file
                .seek(SeekFrom::Start(layout::STATE as u64))
                .and_then(|_| file.write_all(&state::CONSUMED.to_ne_bytes()))
                .and_then(|_| file.sync_data());
            if consumed.is_ok() {
                let _ = std::fs::remove_file(&path);
            }
        }
        // Leave no empty folder behind; another program may have just made a record.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The records beside the database at `db` whose processes are gone, each with the event
/// it makes (if any): a record is taken by whoever locks it first, and held locked until
/// settled. A record that cannot be read now is left where it is; a file that is no record
/// (not a regular file, larger than a record, not a record's bytes) is moved aside once.
pub(crate) fn take_records(db: &Path) -> Taken {
    let dir = records_dir(db);
    let mut taken = Taken {
        dir: dir.clone(),
        ..Taken::default()
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return taken;
    };
    let (mut paths, making): (Vec<_>, Vec<_>) = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rec" || x == "making"))
        .partition(|p| p.extension().is_some_and(|x| x == "rec"));
    // A record its process died making, before it held anything: nothing to report.
    for path in making {
        match untrusted::open_regular(&path, false) {
            Ok(f) if f.try_lock().is_ok() => {
                let _ = std::fs::remove_file(&path);
            }
            Err(e) if untrusted::is_not_regular(&e) => {
                untrusted::set_aside(&path, "not a regular file");
            }
            _ => {}
        }
    }
    paths.sort();
    for path in paths {
        let mut file = match untrusted::open_regular(&path, true) {
            Ok(f) => f,
            Err(e) if untrusted::is_not_regular(&e) => {
                untrusted::set_aside(&path, "not a crash record: not a regular file");
                continue;
            }
            Err(_) => continue,
        };
        // Locked: its process still runs, or another reader is taking it.
        if file.try_lock().is_err() {
            continue;
        }
        // A record is written whole at its size: a larger file is not one, and is not
        // read past that size.
        let bytes = match untrusted::read_capped(&mut file, layout::SIZE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let why = format!(
                    "not a crash record: larger than a record's {} bytes",
                    layout::SIZE
                );
                untrusted::set_aside(&path, &why);
                continue;
            }
            Err(_) => continue,
        };
        let Some(record) = layout::parse(&bytes) else {
            // Not a record (a process makes its record under another name, and renames
            // it whole): a stray file that is not even the header is removed, any other
            // moved aside (still locked, so that no other reader takes it meanwhile), so
            // that it is not read at every start.
            if bytes.len() < 8 {
                let _ = std::fs::remove_file(&path);
            } else {
                untrusted::set_aside(&path, "not a crash record");
            }
            continue;
        };
        // Taken already by a reader that opened it before this one.
        if record.state == state::CONSUMED {
            continue;
        }
        taken.events.extend(event_of(&record));
        taken.ended.extend(ended_of(&record));
        taken.records.push((file, path));
    }
    taken
}

/// How a process ended, as its record tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndedAs {
    Clean,
    Errored,
    /// A crash, a panic in `main`, or an end without a clean shutdown.
    Crashed,
}

/// The end of a gone process's session, read from its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) release: String,
    /// The session's start (with the pid, its name).
    pub(crate) session_us: u64,
    pub(crate) pid: u32,
    pub(crate) how: EndedAs,
    /// When it was last seen: the crash, its last breadcrumb, or its start.
    pub(crate) at_us: u64,
}

/// The end of the session a record tells of; `None` when its meta is unreadable.
pub(crate) fn ended_of(record: &Record) -> Option<Ended> {
    let meta = record.meta.as_ref()?;
    let last_crumb = record.crumbs.last().map(|c| c.time_us);
    let (how, at_us) = match &record.crash {
        Some(c) => (EndedAs::Crashed, c.time_us),
        None if record.state == state::CLOSED => {
            let how = match record.outcome {
                layout::outcome::ERRORED => EndedAs::Errored,
                layout::outcome::CRASHED => EndedAs::Crashed,
                _ => EndedAs::Clean,
            };
            (how, 0)
        }
        None => (EndedAs::Crashed, 0),
    };
    let at_us = [at_us, last_crumb.unwrap_or(0), record.started_us]
        .into_iter()
        .max()
        .unwrap_or(0);
    Some(Ended {
        release: meta.release.clone(),
        session_us: if meta.session_us == 0 {
            record.started_us
        } else {
            meta.session_us
        },
        pid: record.pid as u32,
        how,
        at_us,
    })
}

/// The event a record makes: `None` for a process that ended cleanly, or ended without a
/// word when its settings ask for no event then.
pub(crate) fn event_of(record: &Record) -> Option<CrashEvent> {
    let meta = record.meta.clone().unwrap_or_default();
    let breadcrumbs = breadcrumbs_redacted(record, &meta);
    let mut context = RuntimeContext {
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        program: meta.program.clone().into(),
        program_version: meta.release.clone().into(),
        pid: record.pid as u32,
        ..RuntimeContext::default()
    };
    let mut extra = BTreeMap::new();
    extra.insert(
        "process_started_us".to_owned(),
        serde_json::Value::from(record.started_us),
    );
    let (level, error_type, message, time_us, unresolved) = match &record.crash {
        Some(c) => {
            context.thread_id = c.tid.to_string();
            context.thread_name = (!c.thread_name.is_empty()).then(|| c.thread_name.clone());
            extra.insert("signal".into(), serde_json::Value::from(c.signal));
            extra.insert("signal_code".into(), serde_json::Value::from(c.code));
            if c.panicking {
                extra.insert("panicking".into(), serde_json::Value::from(true));
            }
            extra.insert(
                "fault_address".into(),
                serde_json::Value::from(format!("{:#x}", c.fault)),
            );
            let (error_type, mut message) = describe(c);
            if !c.complete {
                message.push_str(" (the crash record is incomplete: the process died writing it)");
                extra.insert("record".into(), serde_json::Value::from("incomplete"));
            }
            let ips = crashed_frames(c);
            let unresolved = (!ips.is_empty()).then(|| unresolved_in(&meta.modules, &ips));
            let time = if c.time_us == 0 {
                record.started_us
            } else {
                c.time_us
            };
            (Level::Fatal, error_type, message, time, unresolved)
        }
        None if record.state == state::CLOSED => return None,
        None => {
            let level = meta.unclean_exit_level?;
            let message = "the process ended without a clean shutdown: killed by a signal \
                           (SIGKILL) or by the kernel's out-of-memory killer, which cannot \
                           be told apart; it left no stack"
                .to_owned();
            let last = breadcrumbs
                .last()
                .map_or(record.started_us, |b| b.timestamp_us);
            (level, "unclean shutdown".to_owned(), message, last, None)
        }
    };
    let mut event = CrashEvent {
        id: EventId::new(time_us),
        timestamp_us: time_us,
        level,
        logger: "crash".into(),
        fingerprint: fingerprint_of(&error_type, &[], &message),
        error_type,
        message,
        sources: Vec::new(),
        location: None,
        request_path: String::new(),
        user: String::new(),
        frames: Vec::new(),
        unresolved,
        calls: Vec::new(),
        tags: BTreeMap::new(),
        extra,
        breadcrumbs,
        context,
        payload: serde_json::Value::Null,
    };
    if let Some(c) = &record.crash {
        event
            .tags
            .insert("signal".into(), signal_name(c.signal).into());
    }
    Some(event)
}

/// Names an abort that followed an allocation failure as out of memory, once its frames
/// are resolved and show the allocation error handler; other events are left as they are.
pub(crate) fn name_out_of_memory(event: &mut CrashEvent) {
    const HANDLERS: [&str; 4] = [
        "handle_alloc_error",
        "rust_oom",
        "__rdl_oom",
        "default_alloc_error_hook",
    ];
    let oom = event.logger == "crash"
        && event.error_type == "SIGABRT"
        && event
            .frames
            .iter()
            .any(|f| HANDLERS.iter().any(|h| f.function.contains(h)));
    if oom {
        let rest = event
            .message
            .strip_prefix("SIGABRT (aborted) ")
            .unwrap_or("")
            .to_owned();
        event.error_type = "out of memory".into();
        event.message =
            format!("out of memory: an allocation failed and the program aborted {rest}")
                .trim_end()
                .to_owned();
        event.fingerprint = fingerprint_of(&event.error_type, &event.frames, &event.message);
    }
}

/// The recovered breadcrumbs, redacted as the panic path redacts them: credentials in
/// their text by value (with the dying process's `redact_fields`), and what those hid
/// wherever else it is quoted. The texts were redacted so as they were copied in, the
/// settings' own secrets with them (which the record does not hold); this pass is for a
/// record written by a build that did not.
fn breadcrumbs_redacted(record: &Record, meta: &Meta) -> Vec<Breadcrumb> {
    let fields = FieldRedactor::new(&meta.redact_fields);
    let mut found = Vec::new();
    let mut crumbs: Vec<Breadcrumb> = record
        .crumbs
        .iter()
        .map(|c| {
            let mut message = c.message.clone();
            redact_credentials_in(&mut message, &fields, &mut found);
            Breadcrumb {
                timestamp_us: c.time_us,
                level: c.level,
                category: c.category.clone(),
                message,
                data: BTreeMap::new(),
            }
        })
        .collect();
    if !found.is_empty() {
        let secrets = Secrets::new(found);
        for c in &mut crumbs {
            secrets.scrub(&mut c.message);
        }
    }
    crumbs
}

/// The addresses from the interrupted instruction outwards: the handler's own frames,
/// taken first, are left out when the instruction is found among them.
fn crashed_frames(c: &Crash) -> Vec<usize> {
    match c.ips.iter().position(|ip| *ip as u64 == c.pc) {
        Some(at) if c.pc != 0 => c.ips[at..].to_vec(),
        _ => c.ips.clone(),
    }
}

/// The error type and message of a crash: the signal and what it means, the fault
/// address, the thread; a stack overflow named as such.
fn describe(c: &Crash) -> (String, String) {
    let thread = if c.thread_name.is_empty() {
        format!("thread {}", c.tid)
    } else {
        format!("thread '{}'", c.thread_name)
    };
    let name = signal_name(c.signal);
    if is_stack_overflow(c) {
        return (
            "stack overflow".into(),
            format!(
                "stack overflow in {thread} ({name} at {:#x}, beside the stack pointer {:#x})",
                c.fault, c.sp
            ),
        );
    }
    let what = signal_meaning(c.signal);
    let message = match c.signal {
        libc_signals::SEGV | libc_signals::BUS | libc_signals::ILL | libc_signals::FPE => {
            format!("{name} ({what}) at {:#x} in {thread}", c.fault)
        }
        _ => format!("{name} ({what}) in {thread}"),
    };
    // An abort during a panic: a second panic, or a panic in a `panic = "abort"` build,
    // whose panic the hook reported on its own.
    let message = if c.panicking {
        format!("{message} while panicking")
    } else {
        message
    };
    (name.to_owned(), message)
}

/// A fault in the pages just below the stack pointer: the stack ran into its guard page.
fn is_stack_overflow(c: &Crash) -> bool {
    looks_like_stack_overflow(c.signal, c.sp, c.fault)
}

/// Whether a fault of `signal` at `fault`, with the stack pointer at `sp`, is a stack
/// overflow: the fault in the pages just below the stack pointer. The handler asks too.
pub(crate) fn looks_like_stack_overflow(signal: i32, sp: u64, fault: u64) -> bool {
    const NEAR: u64 = 64 * 1024;
    matches!(signal, libc_signals::SEGV | libc_signals::BUS)
        && sp != 0
        && fault != 0
        && fault <= sp.saturating_add(4096)
        && sp.saturating_sub(fault) < NEAR
}

/// Signal numbers as Linux has them, known on every platform so that a record reads the
/// same anywhere.
mod libc_signals {
    pub(super) const ILL: i32 = 4;
    pub(super) const TRAP: i32 = 5;
    pub(super) const ABRT: i32 = 6;
    pub(super) const BUS: i32 = 7;
    pub(super) const FPE: i32 = 8;
    pub(super) const SEGV: i32 = 11;
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc_signals::ILL => "SIGILL",
        libc_signals::TRAP => "SIGTRAP",
        libc_signals::ABRT => "SIGABRT",
        libc_signals::BUS => "SIGBUS",
        libc_signals::FPE => "SIGFPE",
        libc_signals::SEGV => "SIGSEGV",
        0 => "none",
        _ => "signal",
    }
}

fn signal_meaning(signal: i32) -> &'static str {
    match signal {
        libc_signals::ILL => "illegal instruction",
        libc_signals::TRAP => "trace or breakpoint trap",
        libc_signals::ABRT => "aborted",
        libc_signals::BUS => "bus error",
        libc_signals::FPE => "arithmetic error",
        libc_signals::SEGV => "invalid memory reference",
        _ => "unknown signal",
    }
}

#[cfg(test)]
mod tests;
