use super::*;
use crate::crash::layout::Crumb;

fn crash(signal: i32, fault: u64, sp: u64) -> Crash {
    Crash {
        signal,
        fault,
        sp,
        tid: 7,
        thread_name: "worker".into(),
        complete: true,
        ..Crash::default()
    }
}

fn record(crash: Option<Crash>, state: u32, level: Option<Level>) -> Record {
    Record {
        state,
        outcome: 0,
        pid: 9,
        started_us: 5,
        meta: Some(Meta {
            release: "1.0".into(),
            unclean_exit_level: level,
            ..Meta::default()
        }),
        crash,
        crumbs: vec![Crumb {
            seq: 1,
            time_us: 6,
            level: Level::Info,
            category: "cart".into(),
            message: "item added".into(),
        }],
    }
}

/// A database path in a fresh directory, its records' directory (made), and the meta of a
/// process whose unclean end is reported as a warning.
fn records_beside_a_database() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Meta,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let records = records_dir(&db);
    std::fs::create_dir_all(&records).unwrap();
    let meta = Meta {
        unclean_exit_level: Some(Level::Warning),
        ..Meta::default()
    };
    (dir, db, records, meta)
}

// Two processes starting at once must not both report a crash: each record is taken
// by whoever locks it first.
#[test]
fn records_taken_by_readers_at_once_are_each_reported_once() {
    let (_dir, db, records, meta) = records_beside_a_database();
    const N: usize = 40;
    for i in 0..N {
        let bytes = layout::fresh(i as u32 + 1, i as u64, &meta);
        std::fs::write(records.join(format!("{i}.rec")), bytes).unwrap();
    }
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                let taken = take_records(&db);
                let events = taken.events.clone();
                taken.settle();
                events
            })
        })
        .collect();
    let mut pids: Vec<u32> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .map(|e| e.context.pid)
        .collect();
    pids.sort_unstable();
    assert_eq!(pids, (1..=N as u32).collect::<Vec<_>>());
    assert!(!records.exists());
}

// Records taken by an opener that failed to store their events were gone: they must
// stay for the next reader until the events are stored.
#[test]
fn records_not_settled_stay_for_the_next_reader() {
    let (_dir, db, records, meta) = records_beside_a_database();
    std::fs::write(records.join("1.rec"), layout::fresh(7, 1, &meta)).unwrap();
    // A record its process died making is removed, and reported by no one.
    std::fs::write(records.join("2.making"), b"").unwrap();
    let first = take_records(&db);
    assert!(!records.join("2.making").exists());
    assert_eq!(first.events.len(), 1);
    // While the first holds it, a second reader gets nothing.
    assert!(take_records(&db).events.is_empty());
    drop(first);
    let again = take_records(&db);
    assert_eq!(again.events.len(), 1);
    again.settle();
    assert!(take_records(&db).events.is_empty());
    assert!(!records.exists());
}

// Breadcrumbs recovered from a crash record went into the database as they were
// recorded, credentials and all, where the same breadcrumbs on a panic are redacted.
#[test]
fn recovered_breadcrumbs_have_their_credentials_redacted() {
    let mut r = record(Some(crash(11, 0, 0)), state::CRASHING, None);
    r.meta = Some(Meta {
        redact_fields: vec!["password".into()],
        ..Meta::default()
    });
    r.crumbs[0].message = "connect postgres://app:hunter2@db/main password=swordfish".into();
    r.crumbs.push(Crumb {
        seq: 2,
        message: "retrying with hunter2".into(),
        ..r.crumbs[0].clone()
    });
    let e = event_of(&r).unwrap();
    let texts: Vec<&str> = e.breadcrumbs.iter().map(|b| b.message.as_str()).collect();
    let all = texts.join("\n");
    assert!(
        !all.contains("hunter2") && !all.contains("swordfish"),
        "{all}"
    );
    // Control: the rest of the text is kept.
    assert!(
        all.contains("connect postgres://app:") && all.contains("@db/main"),
        "{all}"
    );
    assert!(all.contains("retrying with "), "{all}");
}

#[test]
fn an_abort_from_the_allocation_error_handler_is_named_out_of_memory() {
    let mut e = event_of(&record(Some(crash(6, 0, 0)), state::CRASHING, None)).unwrap();
    let mut frame = crate::model::event::Frame {
        function: "std::process::abort".into(),
        ..Default::default()
    };
    e.frames = vec![frame.clone()];
    name_out_of_memory(&mut e);
    // Control: a plain abort stays one.
    assert_eq!(e.error_type, "SIGABRT");
    frame.function = "alloc::alloc::handle_alloc_error::rt_error".into();
    e.frames.push(frame);
    name_out_of_memory(&mut e);
    assert_eq!(e.error_type, "out of memory");
    assert_eq!(
        e.message,
        "out of memory: an allocation failed and the program aborted in thread 'worker'"
    );
}

#[test]
fn a_null_write_reads_as_the_signal_its_meaning_the_address_and_the_thread() {
    let e = event_of(&record(
        Some(crash(11, 0, 0x7000_0000)),
        state::CRASHING,
        None,
    ))
    .unwrap();
    assert_eq!(
        e.message,
        "SIGSEGV (invalid memory reference) at 0x0 in thread 'worker'"
    );
    assert_eq!((e.level, e.logger.as_str()), (Level::Fatal, "crash"));
    assert_eq!(e.context.program_version, "1.0");
    assert_eq!(e.breadcrumbs[0].message, "item added");
}

#[test]
fn a_fault_just_below_the_stack_pointer_is_a_stack_overflow() {
    let e = event_of(&record(
        Some(crash(11, 0x7000_0000 - 8, 0x7000_0000)),
        3,
        None,
    ))
    .unwrap();
    assert_eq!(e.error_type, "stack overflow");
    assert!(
        e.message.starts_with("stack overflow in thread 'worker'"),
        "{}",
        e.message
    );
    // Control: far from the stack pointer is a plain fault.
    let e = event_of(&record(Some(crash(11, 0x10, 0x7000_0000)), 3, None)).unwrap();
    assert_eq!(e.error_type, "SIGSEGV");
}

#[test]
fn a_torn_record_says_it_is_incomplete() {
    let mut c = crash(6, 0, 0);
    c.complete = false;
    let e = event_of(&record(Some(c), state::CRASHING, None)).unwrap();
    assert!(e
        .message
        .starts_with("SIGABRT (aborted) in thread 'worker'"));
    assert!(e.message.contains("incomplete"), "{}", e.message);
}

#[test]
fn an_open_record_is_an_unclean_end_at_its_level_or_nothing_when_off() {
    let e = event_of(&record(None, state::OPEN, Some(Level::Warning))).unwrap();
    assert_eq!(
        (e.level, e.error_type.as_str()),
        (Level::Warning, "unclean shutdown")
    );
    assert!(e.message.contains("cannot be told apart"));
    assert_eq!(e.breadcrumbs.len(), 1);
    assert!(event_of(&record(None, state::OPEN, None)).is_none());
    assert!(event_of(&record(None, state::CLOSED, Some(Level::Warning))).is_none());
}
