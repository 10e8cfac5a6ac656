//! Releases across processes: the release `install!()` names, groups resolved in a release
//! (an older build's event counts without reopening, a newer one's reopens), and each
//! process counted as a session of its release, ended clean, errored or crashed.

mod support;

use std::path::Path;

use stacktrace::{GroupStatus, Store};
use support::cli::{cli, cli_json};
use support::scenario::{db_dir, run_with_limit, scenario, scenario_command};

/// Runs the release scenario: a process of `release` that ends as `how`.
fn run(db: &Path, release: &str, how: &str) -> support::scenario::Run {
    scenario("release", db, &format!("{release}/{how}"))
}

/// The one group of the scenario's error (`load_config`'s).
fn error_group(store: &Store) -> stacktrace::Group {
    let groups: Vec<_> = store
        .groups(stacktrace::GroupOrder::Count)
        .unwrap()
        .into_iter()
        .filter(|g| g.title.contains("cannot load config"))
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    groups.into_iter().next().unwrap()
}

#[test]
fn install_macro_names_the_release_after_the_crate_unless_one_is_set() {
    let crate_release = concat!("stacktrace-tests@", env!("CARGO_PKG_VERSION"));
    for (set, expected) in [(None, crate_release), (Some("shop@9.1.0"), "shop@9.1.0")] {
        let (_dir, db) = db_dir();
        let mut cmd = scenario_command("release-app", &db, "");
        cmd.env("STACKTRACE_DB", &db)
            .env_remove("STACKTRACE_RELEASE");
        if let Some(release) = set {
            cmd.env("STACKTRACE_RELEASE", release);
        }
        let r = run_with_limit(cmd, std::time::Duration::from_secs(60));
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(!r.stdout.contains("install error"), "{r:?}");
        let store = Store::open(&db).unwrap();
        let events = store.query().run().unwrap().events;
        // The error, the message and the thread's panic all carry it.
        assert_eq!(events.len(), 3, "{events:?}");
        for e in &events {
            assert_eq!(e.release(), expected, "{} {}", e.logger, e.title());
        }
        let release = store
            .release(expected)
            .unwrap()
            .expect("the release is recorded");
        assert_eq!((release.events, release.new_groups), (3, 3));
        assert_eq!((release.sessions, release.errored), (1, 1));
    }
}

#[test]
fn a_bad_release_setting_is_refused_and_no_release_recorded() {
    for bad in ["1.0\nforged: line", &"9".repeat(300)] {
        let (_dir, db) = db_dir();
        let mut cmd = scenario_command("release-app", &db, "");
        cmd.env("STACKTRACE_DB", &db).env("STACKTRACE_RELEASE", bad);
        let r = run_with_limit(cmd, std::time::Duration::from_secs(60));
        assert!(r.stdout.contains("STACKTRACE_RELEASE"), "{r:?}");
        let store = Store::open(&db).unwrap();
        // Refused, so the crate's own name and version is the release instead.
        let names: Vec<_> = store
            .releases()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            names,
            [concat!("stacktrace-tests@", env!("CARGO_PKG_VERSION"))]
        );
    }
}

#[test]
fn resolved_in_a_release_only_a_newer_release_reopens() {
    let (_dir, db) = db_dir();
    assert_eq!(run(&db, "1.0.0", "error").code, Some(0));
    let fingerprint = {
        let store = Store::open(&db).unwrap();
        error_group(&store).fingerprint
    };
    let r = cli(&db, &["resolve", &fingerprint, "--in-release", "1.0.0"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("resolved in 1.0.0"), "{r:?}");

    // The same release and an older build: counted, still resolved.
    assert_eq!(run(&db, "1.0.0", "error").code, Some(0));
    assert_eq!(run(&db, "0.9.0", "error").code, Some(0));
    {
        let store = Store::open(&db).unwrap();
        let g = error_group(&store);
        assert_eq!(
            (g.count, g.status, g.regressed),
            (3, GroupStatus::Resolved, false)
        );
        assert_eq!(g.resolved_in.unwrap().release, "1.0.0");
    }
    // A newer release: a regression.
    assert_eq!(run(&db, "1.1.0", "error").code, Some(0));
    let store = Store::open(&db).unwrap();
    let g = error_group(&store);
    assert_eq!(
        (g.count, g.status, g.regressed),
        (4, GroupStatus::Unresolved, true)
    );
    assert!(g.resolved_in.is_none());
    assert_eq!(g.first_release, "1.0.0");
}

#[test]
fn resolved_in_the_current_release_by_the_tool_and_plain_resolve_reopens_on_any() {
    let (_dir, db) = db_dir();
    assert_eq!(run(&db, "2.0.0", "error").code, Some(0));
    assert_eq!(run(&db, "1.5.0", "error").code, Some(0));
    let fingerprint = error_group(&Store::open(&db).unwrap()).fingerprint;
    // Without a value: the newest release seen, 2.0.0 though 1.5.0 was seen last.
    let g = cli_json(&db, &["resolve", &fingerprint, "--in-release"]);
    assert_eq!(g["resolved_in"]["release"], "2.0.0", "{g}");
    assert_eq!(run(&db, "1.5.0", "error").code, Some(0));
    assert_eq!(
        error_group(&Store::open(&db).unwrap()).status,
        GroupStatus::Resolved
    );
    // Resolved outright, an old build's event reopens it as before.
    assert_eq!(cli(&db, &["resolve", &fingerprint]).code, Some(0));
    assert_eq!(run(&db, "1.5.0", "error").code, Some(0));
    let g = error_group(&Store::open(&db).unwrap());
    assert_eq!((g.status, g.regressed), (GroupStatus::Unresolved, true));
}

#[test]
fn session_outcomes_per_release_are_exact() {
    let (_dir, db) = db_dir();
    for (release, how, code) in [
        ("1.0.0", "clean", Some(0)),
        ("1.0.0", "clean", Some(0)),
        ("1.0.0", "error", Some(0)),
        ("1.0.0", "panic", Some(101)),
        ("1.0.0", "abort", None),
        ("2.0.0", "clean", Some(0)),
        ("2.0.0", "error", Some(0)),
        ("2.0.0", "abort", None),
    ] {
        let r = run(&db, release, how);
        assert_eq!(r.code, code, "{release} {how}: {r:?}");
    }
    // Killed (SIGKILL) while it runs: it could say nothing, and is settled as crashed.
    kill_when_ready(&db, "3.0.0");
    {
        // Every event carries its release: the crash events of the aborts too.
        let store = Store::open(&db).unwrap();
        let mut crashes: Vec<_> = store
            .query()
            .run()
            .unwrap()
            .events
            .into_iter()
            .filter(|e| e.logger == "crash" && e.error_type == "SIGABRT")
            .map(|e| e.release().to_owned())
            .collect();
        crashes.sort();
        assert_eq!(crashes, ["1.0.0", "2.0.0"]);
    }
    let list = cli_json(&db, &["releases"]);
    let of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no release {name} in {list}"))
    };
    let counts = |r: &serde_json::Value| {
        ["sessions", "clean", "errored", "crashed", "open"].map(|k| r[k].as_u64().unwrap())
    };
    // Newest first.
    assert_eq!(list[0]["name"], "3.0.0", "{list}");
    assert_eq!(counts(&of("3.0.0")), [1, 0, 0, 1, 0]);
    let (one, two) = (of("1.0.0"), of("2.0.0"));
    assert_eq!(counts(&one), [5, 2, 1, 2, 0], "{one}");
    assert_eq!(counts(&two), [3, 1, 1, 1, 0], "{two}");
    let rate = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    assert!((rate(&one, "crash_free_rate") - 0.6).abs() < 1e-9, "{one}");
    assert!((rate(&one, "errored_rate") - 0.2).abs() < 1e-9, "{one}");
    // The error's group began in 1.0.0, and so did the panic's and the abort's.
    assert_eq!(one["new_groups"], 3, "{one}");
    assert_eq!(two["new_groups"], 0, "{two}");

    // Side by side.
    let cmp = cli_json(&db, &["releases", "--compare", "1.0.0", "2.0.0"]);
    assert_eq!(cmp["a"]["sessions"], 5);
    assert_eq!(cmp["b"]["sessions"], 3);
    let text = cli(&db, &["releases", "--compare", "1.0.0", "2.0.0"]);
    assert!(
        text.stdout.contains("crash-free") && text.stdout.contains("60.0%"),
        "{text:?}"
    );
    let table = cli(&db, &["releases"]);
    assert!(table.stdout.contains("CRASH-FREE"), "{table:?}");
    // Read again: settled once, counted once.
    assert_eq!(counts(&of_again(&db, "1.0.0")), [5, 2, 1, 2, 0]);
}

/// Runs a process of `release` that waits, and kills it once it is installed.
fn kill_when_ready(db: &Path, release: &str) {
    use std::io::BufRead;
    let mut cmd = scenario_command("release", db, &format!("{release}/hang"));
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start the scenario");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn of_again(db: &Path, name: &str) -> serde_json::Value {
    let list = cli_json(db, &["releases"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap()
}

#[test]
fn the_tool_refuses_bad_releases_and_unknown_groups_and_releases() {
    let (_dir, db) = db_dir();
    assert_eq!(run(&db, "1.0.0", "error").code, Some(0));
    let fingerprint = error_group(&Store::open(&db).unwrap()).fingerprint;
    let huge = "1".repeat(10_000);
    for bad in ["", "   ", "1.0\u{1b}[31m", "1.0\nforged", huge.as_str()] {
        let r = cli(&db, &["resolve", &fingerprint, "--in-release", bad]);
        assert_eq!(r.code, Some(2), "{bad:?}: {r:?}");
        assert!(r.stderr.contains("invalid release"), "{r:?}");
        // The message quotes the start of a huge name only.
        assert!(r.stderr.len() < 1_000, "{}", r.stderr.len());
    }
    // Nothing changed by the refusals; a good one works (the control).
    assert_eq!(
        error_group(&Store::open(&db).unwrap()).status,
        GroupStatus::Unresolved
    );
    let r = cli(&db, &["resolve", &fingerprint, "--in-release", "1.0.0"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = cli(&db, &["resolve", "ffffffffffff", "--in-release", "1.0.0"]);
    assert_eq!(r.code, Some(3), "{r:?}");
    let r = cli(&db, &["releases", "--compare", "1.0.0", "9.9.9"]);
    assert_eq!(r.code, Some(3), "{r:?}");
    let r = cli(&db, &["releases", "--compare", "1.0.0"]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn releases_that_are_not_versions_are_ordered_by_first_seen() {
    let (_dir, db) = db_dir();
    // "zulu" is seen first, so "alpha" is newer whatever their names say.
    assert_eq!(run(&db, "zulu", "error").code, Some(0));
    let fingerprint = error_group(&Store::open(&db).unwrap()).fingerprint;
    assert_eq!(
        cli(&db, &["resolve", &fingerprint, "--in-release", "zulu"]).code,
        Some(0)
    );
    assert_eq!(run(&db, "alpha", "error").code, Some(0));
    let g = error_group(&Store::open(&db).unwrap());
    assert_eq!((g.status, g.regressed), (GroupStatus::Unresolved, true));
    // And back: resolved in alpha, an event of zulu (seen before it) leaves it resolved.
    assert_eq!(
        cli(&db, &["resolve", &fingerprint, "--in-release", "alpha"]).code,
        Some(0)
    );
    assert_eq!(run(&db, "zulu", "error").code, Some(0));
    let g = error_group(&Store::open(&db).unwrap());
    assert_eq!((g.status, g.count), (GroupStatus::Resolved, 3));
    let names: Vec<_> = Store::open(&db)
        .unwrap()
        .releases()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["zulu", "alpha"]);
}
