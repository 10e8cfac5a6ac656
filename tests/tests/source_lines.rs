//! Source lines around the app's frames: kept for the test's own frames, not for the
//! standard library's, redacted like every other text, off by a setting.

mod support;

use std::time::Duration;

use stacktrace::{capture, sensitive_variables, Config, CrashEvent, PLACEHOLDER};
use support::cli::{cli, cli_json};
use support::install::{install_once, Installed};
use support::scenario::{db_dir, run_with_limit};

fn installed() -> &'static Installed {
    install_once(|| Config::default().capture_env(false))
}

fn only_event(token: &str) -> CrashEvent {
    let i = installed();
    assert!(i.guard.flush());
    let store = stacktrace::store().expect("installed with a store");
    let mut events: Vec<CrashEvent> = store
        .query()
        .limit(10_000)
        .all()
        .expect("query")
        .into_iter()
        .filter(|e| e.message.contains(token))
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0)
}

#[test]
fn the_tests_own_frames_have_their_lines_and_the_standard_librarys_do_not() {
    installed();
    // Called through `catch_unwind`, so that the standard library has frames in the middle
    // of the stack, between two of the test's.
    let _ = std::panic::catch_unwind(|| {
        stacktrace::capture_error(&std::io::Error::other("lines for own frames"));
        // here
    });
    let e = only_event("lines for own frames");
    let own: Vec<_> = e
        .frames
        .iter()
        .filter(|f| {
            f.in_app
                && f.file
                    .as_deref()
                    .is_some_and(|p| p.ends_with("source_lines.rs"))
        })
        .collect();
    assert!(!own.is_empty(), "{:#?}", e.frames);
    let with_lines: Vec<_> = own.iter().filter(|f| f.source.is_some()).collect();
    assert!(!with_lines.is_empty(), "{:#?}", e.frames);
    let innermost = with_lines[0].source.as_ref().unwrap();
    assert!(
        innermost
            .line
            .contains("capture_error(&std::io::Error::other(\"lines for own frames\"))"),
        "{innermost:#?}"
    );
    assert_eq!(innermost.pre.len(), 5);
    assert_eq!(innermost.post.len(), 5);
    let library: Vec<_> = e
        .frames
        .iter()
        .filter(|f| !f.in_app && f.function.starts_with("std::"))
        .collect();
    assert!(
        !library.is_empty(),
        "a std frame between the test's: {:#?}",
        e.frames
    );
    assert!(library.iter().all(|f| f.source.is_none()), "{library:#?}");
}

#[capture]
#[sensitive_variables(password)]
fn login(user: &str, password: &str) -> Result<(), String> {
    if password == "s3cr3t-in-source-9" {
        return Err(format!("login of {user} refused"));
    }
    Ok(())
}

/// Every source line the event's frames kept.
fn source_lines(e: &CrashEvent) -> Vec<String> {
    e.frames
        .iter()
        .filter_map(|f| f.source.as_ref())
        .flat_map(|s| s.numbered(1).map(|(_, t)| t.to_owned()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_secret_argument_is_scrubbed_from_a_source_line_quoting_it() {
    installed();
    assert!(login("ann", "s3cr3t-in-source-9").is_err());
    let e = only_event("login of ann refused");
    let lines = source_lines(&e);
    // Control: the line that quotes it is there, with the value hidden.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("if password == \"{PLACEHOLDER}\""))),
        "{lines:#?}"
    );
    let stored = serde_json::to_string(&e).unwrap();
    assert!(!stored.contains("s3cr3t-in-source-9"), "{stored}");
}

fn source_event(db: &std::path::Path, setting: Option<&str>) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_functions_scenario"));
    cmd.arg("source").arg(db);
    cmd.env_remove("STACKTRACE_DB");
    match setting {
        Some(v) => cmd.env("STACKTRACE_SOURCE_CONTEXT", v),
        None => cmd.env_remove("STACKTRACE_SOURCE_CONTEXT"),
    };
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    let list = cli_json(db, &["list"]);
    let id = list["events"][0]["id"]
        .as_str()
        .expect("an event")
        .to_owned();
    cli_json(db, &["show", &id])
}

fn has_source(event: &serde_json::Value) -> bool {
    event["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .any(|f| f.get("source").is_some())
}

#[test]
fn the_setting_turns_them_off_and_show_prints_them() {
    let (_on_dir, on) = db_dir();
    let event = source_event(&on, None);
    assert!(has_source(&event), "{event:#}");
    // The text report shows the failing line, marked, with its number.
    let id = event["id"].as_str().unwrap();
    let shown = cli(&on, &["--color", "never", "show", id]);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with('>')
                && l.contains("stacktrace::capture_error(&err)")),
        "{}",
        shown.stdout
    );

    let (_off_dir, off) = db_dir();
    let event = source_event(&off, Some("false"));
    assert!(!has_source(&event), "{event:#}");
}

// Regression: a value hidden by its name (an extra field called `password`) stayed in clear
// in the source line that passed it, and in a message quoting it; it is now scrubbed from
// every text of the event, the source lines included.
#[test]
fn a_value_hidden_by_its_name_is_scrubbed_from_the_source_line_and_the_message() {
    installed();
    let err = std::io::Error::other("token hidden-by-name-77 refused-by-name-check");
    stacktrace::Report::error(&err)
        .extra("password", "hidden-by-name-77")
        .extra("shown", "ControlShown-31")
        .capture();
    let e = only_event("refused-by-name-check");
    let lines = source_lines(&e);
    // Controls: the line that quotes it is kept, with the value hidden; the other field is
    // kept as it was.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!(".extra(\"password\", \"{PLACEHOLDER}\")"))),
        "{lines:#?}"
    );
    assert_eq!(
        e.message,
        format!("token {PLACEHOLDER} refused-by-name-check")
    );
    let stored = serde_json::to_string(&e).unwrap();
    assert!(stored.contains("ControlShown-31"), "{stored}");
    assert!(!stored.contains("hidden-by-name-77"), "{stored}");
}
