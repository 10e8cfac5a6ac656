//! log and tracing integrations, breadcrumbs, tokio tasks, filters and per-user limits,
//! each scenario in a process of its own.

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::{CrashEvent, DropReason, Level, Store};
use support::scenario::{db_dir, run_with_limit, Run};

fn run(name: &str, db: &std::path::Path) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_integrations_scenario"));
    cmd.arg(name).arg(db);
    run_with_limit(cmd, Duration::from_secs(60))
}

fn events(db: &std::path::Path) -> Vec<CrashEvent> {
    let mut e = Store::open(db).unwrap().query().all().unwrap();
    e.reverse(); // oldest first
    e
}

fn stdout_line<'a>(run: &'a Run, prefix: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {run:?}"))
}

#[test]
fn log_errors_become_events_lower_levels_breadcrumbs_and_the_wrapped_logger_gets_all() {
    let (_dir, db) = db_dir();
    let run = run("log", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(stdout_line(&run, "received "), "4");
    let line: u32 = stdout_line(&run, "line ").parse().unwrap();
    let events = events(&db);
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.logger, "billing");
    assert_eq!(e.level, Level::Error);
    assert_eq!(e.message, "card declined for order 7");
    let loc = e.location.as_ref().unwrap();
    assert!(loc.file.ends_with("integrations_scenario.rs"));
    assert_eq!(loc.line, line);
    assert_eq!(e.tags["module"], "integrations_scenario");
    let crumbs: Vec<_> = e
        .breadcrumbs
        .iter()
        .filter(|b| b.category == "shop" || b.category == "integrations_scenario")
        .map(|b| (b.level, b.category.as_str(), b.message.as_str()))
        .collect();
    assert_eq!(
        crumbs,
        [
            (Level::Debug, "shop", "looking up order 7"),
            (Level::Info, "shop", "charging order 7"),
            (
                Level::Warning,
                "integrations_scenario",
                "retrying the provider"
            ),
        ]
    );
}

#[test]
fn tracing_errors_carry_fields_span_fields_error_chain_and_breadcrumbs() {
    let (_dir, db) = db_dir();
    let run = run("tracing", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    let line: u32 = stdout_line(&run, "line ").parse().unwrap();
    let events = events(&db);
    assert_eq!(events.len(), 2, "{events:#?}");

    let e = &events[0];
    assert_eq!(e.logger, "integrations_scenario");
    assert_eq!(e.message, "card declined");
    assert_eq!(e.error_type, "ParseIntError");
    assert_eq!(e.location.as_ref().unwrap().line, line);
    assert_eq!(e.extra["fields"]["amount"], "12,50");
    assert_eq!(e.extra["fields"]["error"], "invalid digit found in string");
    assert_eq!(e.extra["spans"][0]["name"], "checkout");
    assert_eq!(e.extra["spans"][0]["fields"]["order"], 7);
    assert_eq!(e.extra["spans"][0]["fields"]["customer"], "ann");
    assert_eq!(e.extra["spans"][1]["name"], "charge");
    assert_eq!(e.extra["spans"][1]["fields"]["attempt"], 2);
    assert_eq!(e.breadcrumbs.len(), 1);
    assert_eq!(e.breadcrumbs[0].message, "charging");
    assert_eq!(e.breadcrumbs[0].data["step"], 1);

    // Without an `error` field: the message, no type, and no breadcrumbs left over.
    let plain = &events[1];
    assert_eq!(plain.message, "plain failure");
    assert_eq!(plain.error_type, "");
    assert_eq!(plain.extra["fields"]["code"], 5);
    assert!(plain.breadcrumbs.is_empty());
}

#[test]
fn a_thousand_breadcrumbs_then_an_event_attach_exactly_the_last_hundred() {
    let (_dir, db) = db_dir();
    assert_eq!(run("breadcrumbs", &db).code, Some(0));
    let events = events(&db);
    let crumbs: Vec<_> = events[0]
        .breadcrumbs
        .iter()
        .map(|b| b.message.clone())
        .collect();
    let expected: Vec<_> = (900..1000).map(|i| format!("step {i}")).collect();
    assert_eq!(crumbs, expected);
    assert!(
        events[1].breadcrumbs.is_empty(),
        "each breadcrumb goes to one event"
    );
}

#[test]
fn task_panics_carry_their_spawner_context_and_no_other_tasks() {
    let (_dir, db) = db_dir();
    let run = run("tasks", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("a failed: true") && run.stdout.contains("b failed: false"));
    let events = events(&db);
    let by_message = |m: &str| {
        events
            .iter()
            .find(|e| e.message == m)
            .unwrap_or_else(|| panic!("no event {m:?} in {events:#?}"))
    };

    // Spawned through the helper from `handle_order(1)`: that call, with its argument.
    let a = by_message("task of order 1 failed");
    assert_eq!(a.calls.len(), 1, "{:#?}", a.calls);
    assert!(a.calls[0].function.ends_with("handle_order"));
    assert_eq!(a.calls[0].args[0].name, "order");
    assert_eq!(a.calls[0].args[0].value, "1");
    // Its own breadcrumb only, although task 2 ran interleaved on the same thread.
    let crumbs: Vec<_> = a.breadcrumbs.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(crumbs, ["crumb of order 1"]);

    // Spawned with plain `tokio::spawn`: no inherited context, and none of another task.
    let c = by_message("plain task of order 3 failed");
    assert!(c.calls.is_empty(), "{:#?}", c.calls);

    // `spawn_blocking` through the helper, from no captured call: nothing inherited.
    let blocking = by_message("blocking work failed");
    assert!(blocking.calls.is_empty());
}

#[test]
fn each_filter_drops_and_counts_and_before_store_can_redact() {
    let (_dir, db) = db_dir();
    let run = run("filters", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    for line in [
        "type kept: false",
        "message kept: false",
        "path kept: false",
    ] {
        assert!(run.stdout.contains(line), "{line}: {run:?}");
    }
    let store = Store::open(&db).unwrap();
    let events = store.query().all().unwrap();
    let messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"keep me") && messages.contains(&"a kept panic"));
    let kept = events.iter().find(|e| e.message == "keep me").unwrap();
    assert_eq!(kept.extra["session"], "[removed by before_store]");
    // The scenario turns source lines off (its code quotes the values below): the panic has
    // the app's frames, which would have them, and none has them.
    let panic = events.iter().find(|e| e.message == "a kept panic").unwrap();
    assert!(panic.frames.iter().any(|f| f.in_app), "{:#?}", panic.frames);
    assert!(panic.frames.iter().all(|f| f.source.is_none()));
    assert!(events.iter().all(|e| e.tags["seen_by"] == "before_store"));
    // Three ignore rules and one before_store drop.
    assert_eq!(store.dropped().unwrap()[&DropReason::Filtered], 4);
    let raw = stacktrace_tests::raw_bytes(&db);
    assert!(!stacktrace_tests::contains(&raw, b"session-value-abc123"));
    assert!(!stacktrace_tests::contains(&raw, b"drop me please"));
}

#[test]
fn a_bad_filter_pattern_is_reported_and_capture_goes_on() {
    let (_dir, db) = db_dir();
    let run = run("bad-filter", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains(r#"install error: invalid setting ignore_messages = "(unclosed" (error: unclosed group)"#),
        "{run:?}"
    );
    assert!(run.stdout.contains("kept: true"));
}

#[test]
fn a_noisy_user_does_not_use_up_another_users_budget() {
    let (_dir, db) = db_dir();
    let run = run("per-user", &db);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(stdout_line(&run, "noisy kept "), "5");
    assert_eq!(stdout_line(&run, "quiet kept "), "true");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().user("noisy").count().unwrap(), 5);
    assert_eq!(store.query().user("quiet").count().unwrap(), 1);
    assert_eq!(store.dropped().unwrap()[&DropReason::RateLimited], 995);
}
