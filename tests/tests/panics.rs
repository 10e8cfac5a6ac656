//! Panic scenarios, each in a process of its own: the event is stored durably by the hook,
//! the previous hook still prints, the exit code is unchanged.

mod support;

use stacktrace::{GroupOrder, GroupStatus, Level, Store};
use support::scenario::{db_dir, scenario};

fn only_event(db: &std::path::Path) -> stacktrace::CrashEvent {
    let store = Store::open(db).expect("open after the program ended");
    let mut events = store.query().run().expect("query").events;
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0)
}

#[test]
fn panic_in_main_is_stored_and_the_process_ends_as_usual() {
    let (_dir, db) = db_dir();
    let run = scenario("panic-main", &db, "");
    assert_eq!(run.code, Some(101), "{run:?}");
    // The previous (default) hook still prints its message.
    assert!(run.stderr.contains("panicked at"), "{}", run.stderr);
    assert!(run.stderr.contains("failure at site a"), "{}", run.stderr);

    let e = only_event(&db);
    assert_eq!(e.level, Level::Fatal);
    assert_eq!(e.logger, "panic");
    assert_eq!(e.error_type, "panic");
    assert_eq!(e.message, "failure at site a");
    let loc = e.location.expect("location");
    assert!(loc.file.ends_with("scenario.rs"), "{loc:?}");
    assert!(loc.line > 0 && loc.column > 0);
    assert_eq!(e.context.thread_name.as_deref(), Some("main"));
    assert!(e.context.thread_id.starts_with("ThreadId("));
    // Machinery trimmed: the first frame is the function that panicked, demangled, no hash.
    let first = e.frames.first().expect("frames");
    assert_eq!(first.function, "scenario::site_a", "{:#?}", e.frames);
    assert!(first.in_app);
    assert!(e.frames.iter().any(|f| f.function == "scenario::main"));
    assert!(e
        .frames
        .iter()
        .all(|f| !f.function.starts_with("std::panicking")));
    assert_eq!(e.fingerprint.len(), 64);
}

#[test]
fn panic_in_a_thread_is_stored_and_main_goes_on() {
    let (_dir, db) = db_dir();
    let run = scenario("panic-thread", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("main goes on"));
    assert!(run.stderr.contains("failure at site b"));
    let e = only_event(&db);
    assert_eq!(e.message, "failure at site b");
    assert_eq!(e.context.thread_name.as_deref(), Some("worker-1"));
    assert_eq!(e.frames[0].function, "scenario::site_b");
}

#[test]
fn same_site_groups_other_site_splits_and_resolved_group_regresses() {
    let (_dir, db) = db_dir();
    for _ in 0..2 {
        assert_eq!(scenario("site", &db, "a").code, Some(0));
    }
    assert_eq!(scenario("site", &db, "b").code, Some(0));
    let fp_a = {
        let store = Store::open(&db).unwrap();
        let groups = store.groups(GroupOrder::Count).unwrap();
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].count, 2);
        assert!(groups[0].title.contains("site a"));
        assert_eq!(groups[1].count, 1);
        assert!(groups[1].title.contains("site b"));
        assert!(groups[0].first_seen_us < groups[0].last_seen_us);
        let resolved = store.resolve(&groups[0].fingerprint).unwrap().unwrap();
        assert_eq!(resolved.status, GroupStatus::Resolved);
        groups[0].fingerprint.clone()
    };
    assert_eq!(scenario("site", &db, "a").code, Some(0));
    let store = Store::open(&db).unwrap();
    let g = store.group(&fp_a).unwrap().unwrap();
    assert_eq!(g.count, 3);
    assert_eq!(g.status, GroupStatus::Unresolved);
    assert!(g.regressed);
    let by_fp = store.query().fingerprint(&fp_a).run().unwrap().events;
    assert_eq!(by_fp.len(), 3);
    assert_eq!(by_fp[0].id, g.last_event);
}

#[test]
fn sixteen_threads_panicking_at_once_are_each_stored_once() {
    let (_dir, db) = db_dir();
    let run = scenario("storm", &db, "16");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("16 threads panicked"));
    let store = Store::open(&db).unwrap();
    let events = store.query().limit(100).run().unwrap().events;
    assert_eq!(events.len(), 16);
    let mut messages: Vec<_> = events.iter().map(|e| e.message.clone()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 16, "each panic once: {messages:?}");
    // One call site: one group of 16.
    let groups = store.groups(GroupOrder::Count).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count, 16);
}

#[test]
fn a_panic_survives_kill_9_right_after_the_hook() {
    use std::io::BufRead;
    let (_dir, db) = db_dir();
    let mut child = support::scenario::scenario_command("panic-then-hang", &db, "")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child.kill().unwrap(); // SIGKILL: no flush, no exit handlers
    child.wait().unwrap();
    let store = Store::open(&db).expect("open after the program ended");
    let (panics, others): (Vec<_>, Vec<_>) = store
        .query()
        .run()
        .expect("query")
        .events
        .into_iter()
        .partition(|e| e.logger == "panic");
    assert_eq!(panics.len(), 1, "{panics:#?}");
    assert_eq!(panics[0].message, "failure at site b");
    assert_eq!(panics[0].frames[0].function, "scenario::site_b");
    // The kill itself is reported too (Linux), as an end without a clean shutdown.
    if cfg!(target_os = "linux") {
        assert_eq!(others.len(), 1, "{others:#?}");
        assert_eq!(others[0].error_type, "unclean shutdown");
    } else {
        assert!(others.is_empty(), "{others:#?}");
    }
}

#[test]
fn a_clean_exit_leaves_no_panic_journal_behind() {
    let (_dir, db) = db_dir();
    assert_eq!(scenario("panic-thread", &db, "").code, Some(0));
    let journal_dir = db.with_file_name("events.db.spool");
    // The guard's flush emptied the journal; opening removes what is left of it.
    let sizes: Vec<u64> = std::fs::read_dir(&journal_dir)
        .map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).collect())
        .unwrap_or_default();
    assert!(sizes.iter().all(|n| *n == 0), "{sizes:?}");
    only_event(&db);
    assert!(!journal_dir.exists());
}

#[test]
fn a_panic_with_the_writer_queue_full_is_stored_by_the_hook_once() {
    let (_dir, db) = db_dir();
    let run = scenario("writer-held", &db, "full");
    assert_eq!(run.code, Some(0), "{run:?}");
    // The writer could take nothing: the hook stored the panic itself, at once.
    assert!(
        run.stdout
            .contains("panics stored while the writer is held: 1"),
        "{run:?}"
    );
    assert!(run.stdout.contains("flushed"), "{run:?}");
    let store = Store::open(&db).unwrap();
    let panics = store.query().error_type("panic").run().unwrap().events;
    assert_eq!(panics.len(), 1, "{panics:#?}");
    assert_eq!(panics[0].message, "failure at site b");
    assert_eq!(panics[0].frames[0].function, "scenario::site_b");
    // Both messages were stored too, and nothing was dropped.
    assert_eq!(store.query().count().unwrap(), 3);
    assert!(store.dropped().unwrap().values().all(|n| *n == 0));
    let groups = store.groups(GroupOrder::Count).unwrap();
    let g = groups.iter().find(|g| g.title.contains("site b")).unwrap();
    assert_eq!(g.count, 1);
}

#[test]
fn a_flush_before_the_writer_stored_a_panic_keeps_it_in_the_journal() {
    let (_dir, db) = db_dir();
    let run = scenario("writer-held", &db, "journal");
    assert_eq!(run.code, Some(0), "{run:?}");
    // Queued behind the held writer, so not in the database yet...
    assert!(
        run.stdout
            .contains("panics stored while the writer is held: 0"),
        "{run:?}"
    );
    assert!(run.stdout.contains("ending before"), "{run:?}");
    // ...and the flush left it in the journal, which the next open merges.
    let store = Store::open(&db).unwrap();
    let panics = store.query().error_type("panic").run().unwrap().events;
    assert_eq!(panics.len(), 1, "{panics:#?}");
    assert_eq!(panics[0].message, "failure at site b");
    assert_eq!(panics[0].frames[0].function, "scenario::site_b");
}

/// Pins: an index-out-of-bounds panic named `<usize as core::slice::index::SliceIndex<[T]>>::index`
/// as its culprit, marked as application code: qualified paths were judged by their first
/// characters, and a frame with no source file counted as the app's.
#[test]
fn the_culprit_of_an_index_panic_is_the_programs_function_not_the_slice_index() {
    let (_dir, db) = db_dir();
    let run = scenario("index", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let e = only_event(&db);
    assert!(e.message.starts_with("index out of bounds"), "{e:#?}");
    // The library frames are in the trace (the check below could not fail without them)...
    let slice_index = e
        .frames
        .iter()
        .find(|f| f.function.contains("as core::slice::index::SliceIndex<"))
        .unwrap_or_else(|| panic!("no slice index frame: {:#?}", e.frames));
    assert!(!slice_index.in_app, "{slice_index:#?}");
    // ...and the innermost in-app frame is the program's own.
    let culprit = e.frames.iter().find(|f| f.in_app).expect("an in-app frame");
    assert_eq!(
        culprit.function, "scenario::ledger::rate_at",
        "{:#?}",
        e.frames
    );
}

/// `install!()` reads the environment like `install()`: an excluded module of the app's own
/// crate is not in-app, and the culprit is the next in-app frame out.
#[test]
fn an_excluded_module_is_never_the_culprit() {
    let (_dir, db) = db_dir();
    let mut cmd = support::scenario::scenario_command("index-app", &db, "");
    cmd.env("STACKTRACE_DB", &db)
        .env("STACKTRACE_IN_APP_EXCLUDE", "scenario::ledger");
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    let e = only_event(&db);
    let rate_at = e
        .frames
        .iter()
        .find(|f| f.function == "scenario::ledger::rate_at")
        .unwrap_or_else(|| panic!("no rate_at frame: {:#?}", e.frames));
    assert!(!rate_at.in_app);
    let culprit = e.frames.iter().find(|f| f.in_app).expect("an in-app frame");
    assert_eq!(
        culprit.function, "scenario::main::{{closure}}",
        "{:#?}",
        e.frames
    );
}

// Pins: a panic resolved by the next open (the program aborted before its writer ran) was
// judged by the default in-app rules, not the program's: `install!()`'s crate and
// `in_app_exclude` were ignored, so the same failure got another culprit and another group
// than when the program lived on.
#[test]
fn a_panic_resolved_at_the_next_open_keeps_the_programs_in_app_rules() {
    let mut events = Vec::new();
    for name in ["index-app", "index-app-then-abort"] {
        let (dir, db) = db_dir();
        let mut cmd = support::scenario::scenario_command(name, &db, "");
        cmd.env("STACKTRACE_DB", &db)
            .env("STACKTRACE_IN_APP_EXCLUDE", "scenario::ledger");
        let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
        if name == "index-app" {
            assert_eq!(run.code, Some(0), "{run:?}");
        } else {
            // Aborted: the panic is only in the journal, as addresses.
            assert_eq!(run.code, None, "{run:?}");
            let journaled = journal_lines(&db);
            assert!(
                journaled.iter().any(|l| l.get("unresolved").is_some()),
                "{journaled:#?}"
            );
        }
        if name == "index-app" {
            events.push((only_event(&db), dir));
        } else {
            // The abort is reported too, by the crash handler, beside the journaled panic.
            let store = Store::open(&db).expect("open after the program ended");
            let mut all = store.query().run().expect("query").events;
            assert_eq!(all.len(), 2, "{all:#?}");
            assert!(all.iter().any(|e| e.logger == "crash"), "{all:#?}");
            let at = all.iter().position(|e| e.logger == "panic");
            let panic = all.remove(at.unwrap_or_else(|| panic!("no panic event: {all:#?}")));
            drop(store);
            events.push((panic, dir));
        }
    }
    let (live, resolved) = (&events[0].0, &events[1].0);
    let culprit = |e: &stacktrace::CrashEvent| {
        e.frames
            .iter()
            .find(|f| f.in_app)
            .map(|f| f.function.clone())
    };
    assert_eq!(
        culprit(live).as_deref(),
        Some("scenario::main::{{closure}}"),
        "{:#?}",
        live.frames
    );
    assert_eq!(culprit(resolved), culprit(live), "{:#?}", resolved.frames);
    let rate_at = resolved
        .frames
        .iter()
        .find(|f| f.function == "scenario::ledger::rate_at")
        .unwrap_or_else(|| panic!("no rate_at frame: {:#?}", resolved.frames));
    assert!(!rate_at.in_app, "{rate_at:#?}");
    assert_eq!(resolved.fingerprint, live.fingerprint);
}

/// `install_with!` knows the calling crate as the app's: the `log` crate's frames, built
/// without debug info, are then a dependency's; `install_with` cannot tell them from the
/// app's own and keeps counting them in.
#[test]
fn the_macro_form_knows_which_crates_without_files_are_dependencies() {
    for (arg, log_in_app) in [("app", false), ("plain", true)] {
        let (_dir, db) = db_dir();
        let run = scenario("logger", &db, arg);
        assert_eq!(run.code, Some(0), "{run:?}");
        let e = only_event(&db);
        let log_frames: Vec<_> = e
            .frames
            .iter()
            .filter(|f| f.function.starts_with("log::") || f.function.starts_with("<log::"))
            .collect();
        assert!(!log_frames.is_empty(), "{:#?}", e.frames);
        assert!(
            log_frames
                .iter()
                .all(|f| f.file.is_none() && f.in_app == log_in_app),
            "{arg}: {log_frames:#?}"
        );
        let culprit = e.frames.iter().find(|f| f.in_app).expect("an in-app frame");
        assert_eq!(
            culprit.function, "<scenario::FailingLogger as log::Log>::log",
            "{arg}: {:#?}",
            e.frames
        );
    }
}

// Pins: an error captured just before `std::process::exit` was lost, since `exit` runs no
// destructor and the guard never flushed the writer's queue.
#[test]
fn an_error_captured_right_before_process_exit_is_stored() {
    let (_dir, db) = db_dir();
    let run = scenario("error-then-exit", &db, "");
    assert_eq!(run.code, Some(3), "{run:?}");
    let e = only_event(&db);
    assert_eq!(e.level, Level::Error);
    assert!(e.message.contains("cannot load config"), "{e:#?}");
}

/// The lines of `stderr` saying that panics are no longer captured.
fn replaced_hook_warnings(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("panics are no longer captured"))
        .count()
}

// Pins: a panic hook set after `install()` that replaced the tracker's stopped panic
// capture without a word.
#[test]
fn a_hook_that_replaces_ours_after_install_is_said_once() {
    let (_dir, db) = db_dir();
    let run = scenario("hook-after-install", &db, "replaced");
    assert_eq!(run.code, Some(0), "{run:?}");
    // The program's own hook ran: its stderr is what was read.
    assert!(run.stderr.contains("own hook ran"), "{run:?}");
    assert_eq!(replaced_hook_warnings(&run.stderr), 1, "{}", run.stderr);
    assert!(run.stderr.contains("take_hook"), "{}", run.stderr);
    assert!(run.stdout.contains("capturing panics: false"), "{run:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 0);
}

// The control: a hook that chains to ours keeps panics captured, and nothing is said.
#[test]
fn a_hook_that_chains_to_ours_after_install_keeps_capturing_silently() {
    let (_dir, db) = db_dir();
    let run = scenario("hook-after-install", &db, "chained");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("own hook ran"), "{run:?}");
    assert!(run.stderr.contains("failure at site b"), "{run:?}");
    assert_eq!(replaced_hook_warnings(&run.stderr), 0, "{}", run.stderr);
    assert!(run.stdout.contains("capturing panics: true"), "{run:?}");
    let e = only_event(&db);
    assert_eq!(e.message, "failure at site b");
}

/// The journal's lines (the panics a program made durable and had not stored), as JSON.
fn journal_lines(db: &std::path::Path) -> Vec<serde_json::Value> {
    let dir = db.with_file_name("events.db.spool");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("a journal").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        lines.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    lines
}

// Pins: the panic hook resolved symbols (loading debug info made the first panic of a
// process take 100+ ms); it journals return addresses relative to their modules, and the
// next open resolves them from the program's file.
#[test]
fn the_hook_journals_addresses_which_the_next_open_resolves() {
    let (_dir, db) = db_dir();
    let run = scenario("panic-then-abort", &db, "");
    assert_eq!(run.code, None, "{run:?}");
    let lines = journal_lines(&db);
    let panic = lines
        .iter()
        .find(|l| l["message"] == "failure at site b")
        .expect("the panic is journaled");
    assert!(panic.get("frames").is_none(), "{panic:#}");
    let unresolved = &panic["unresolved"];
    let modules = unresolved["modules"].as_array().expect("modules");
    assert!(!modules.is_empty(), "{panic:#}");
    let exe = modules[0]["path"].as_str().unwrap();
    assert!(exe.ends_with("scenario"), "{exe}");
    assert!(modules[0]["build_id"].as_str().unwrap().len() >= 16);
    assert!(!unresolved["addresses"].as_array().unwrap().is_empty());

    let e = only_panic(&db);
    assert_eq!(e.frames[0].function, "scenario::site_b", "{:#?}", e.frames);
    assert!(e.unresolved.is_none());
}

fn only_panic(db: &std::path::Path) -> stacktrace::CrashEvent {
    let store = Store::open(db).unwrap();
    let mut panics = store.query().error_type("panic").run().unwrap().events;
    assert_eq!(panics.len(), 1, "{panics:#?}");
    panics.remove(0)
}

// A panic journaled by a program whose file is another build by the next open keeps its
// addresses and its build id, and says why it has no frames.
#[test]
fn a_panic_of_a_program_since_rebuilt_keeps_its_addresses() {
    let (dir, db) = db_dir();
    let exe = dir.path().join("app");
    std::fs::copy(env!("CARGO_BIN_EXE_scenario"), &exe).unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("panic-then-abort").arg(&db);
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, None, "{run:?}");
    // The program is rebuilt (another build id) before the database is opened again.
    std::fs::copy(env!("CARGO_BIN_EXE_macro_scenario"), &exe).unwrap();

    let e = only_panic(&db);
    assert_eq!(e.message, "failure at site b");
    assert!(e.frames.is_empty(), "{:#?}", e.frames);
    let unresolved = e.unresolved.expect("the addresses are kept");
    assert!(!unresolved.addresses.is_empty());
    assert!(!unresolved.modules[0].build_id.is_empty());
    let reason = unresolved.reason.expect("says why");
    assert!(reason.contains("another build"), "{reason}");
}

/// Rewrites each journaled panic of `db` with `edit` applied to its unresolved addresses.
fn edit_journal(db: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let dir = db.with_file_name("events.db.spool");
    for entry in std::fs::read_dir(&dir).expect("a journal").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(u) = v.get_mut("unresolved") {
                edit(u);
            }
            out.push_str(&serde_json::to_string(&v).unwrap());
            out.push('\n');
        }
        std::fs::write(entry.path(), out).unwrap();
    }
}

// Pins: one module of a journaled panic without a build id, or since upgraded (a shared
// library such as libc), made the next open refuse every frame of the event, the
// unchanged program's included.
#[test]
fn a_changed_shared_library_keeps_only_its_own_addresses() {
    for (build_id, why) in [("", "no build id"), ("00ff00ff00ff00ff", "another build")] {
        let (_dir, db) = db_dir();
        let run = scenario("panic-then-abort", &db, "");
        assert_eq!(run.code, None, "{run:?}");
        let lines = journal_lines(&db);
        let panic = lines
            .iter()
            .find(|l| l["message"] == "failure at site b")
            .expect("the panic is journaled");
        let modules = panic["unresolved"]["modules"].as_array().unwrap().clone();
        // The thread's start is in a shared library: the program is not the only module.
        let library = modules
            .iter()
            .map(|m| m["path"].as_str().unwrap().to_owned())
            .find(|p| !p.ends_with("scenario"))
            .unwrap_or_else(|| panic!("no shared library in {modules:#?}"));
        edit_journal(&db, |u| {
            for m in u["modules"].as_array_mut().unwrap() {
                if m["path"] == library.as_str() {
                    m["build_id"] = build_id.into();
                }
            }
        });

        let e = only_panic(&db);
        assert_eq!(e.frames[0].function, "scenario::site_b", "{:#?}", e.frames);
        assert!(e.frames.iter().any(|f| f.in_app), "{:#?}", e.frames);
        let unresolved = e.unresolved.expect("the library's addresses are kept");
        assert_eq!(unresolved.modules.len(), 1, "{unresolved:#?}");
        assert_eq!(unresolved.modules[0].path, library);
        assert!(!unresolved.addresses.is_empty());
        let reason = unresolved.reason.expect("says why");
        assert!(reason.contains(why), "{reason}");
    }
}

// Pins: a program without a build id journaled its panics' addresses anyway, which no
// later open could match to its file: every frame of its panics was lost.
#[test]
fn a_program_without_a_build_id_resolves_its_panics_in_the_hook() {
    let (dir, db) = db_dir();
    let exe = dir.path().join("app");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_scenario")).unwrap();
    // The GNU build id note: name size 4, type 3 (NT_GNU_BUILD_ID), name "GNU\0". Another
    // type makes it a note the loader and readers skip.
    let marker = b"\x04\x00\x00\x00";
    let tail = b"\x03\x00\x00\x00GNU\x00";
    let at = (0..bytes.len().saturating_sub(16))
        .find(|&i| bytes[i..i + 4] == marker[..] && bytes[i + 8..i + 16] == tail[..])
        .expect("the program has a build id note");
    bytes[at + 8] = 0x7f;
    std::fs::write(&exe, &bytes).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("panic-then-abort").arg(&db);
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, None, "{run:?}");

    let e = only_panic(&db);
    assert!(e.unresolved.is_none(), "{:#?}", e.unresolved);
    assert_eq!(e.frames[0].function, "scenario::site_b", "{:#?}", e.frames);
}
