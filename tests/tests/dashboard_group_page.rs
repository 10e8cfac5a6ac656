//! The group page, the group's trends page and the functions page in a headless chromium
//! (see `support::browser`): what a user looks for on each, and a click-through from the
//! groups list to the group, between its events, to an event and back. Screenshots go to
//! `target/tmp/dashboard-screenshots/group-*.png`.

mod support;

use std::time::Duration;

use support::browser::{ensure_browser, Browser};
use support::scenario::{db_dir, run_with_limit};

/// Four reports of one error (users ann, bob, ann, cy; shards eu, eu, us, eu) in `release`.
fn run_group(db: &std::path::Path, release: &str) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_functions_scenario"));
    cmd.arg("group").arg(db).arg(release);
    cmd.env_remove("STACKTRACE_DB");
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn a_group_page_answers_who_where_and_since_when() {
    ensure_browser();
    let (_dir, db) = db_dir();
    run_group(&db, "1.0.0");
    run_group(&db, "1.1.0");
    let server = support::cli::Server::start(&db, &[]);
    let browser = Browser::start();
    let base = &server.url;

    // From the groups list to the group.
    browser.open(&format!("{base}/"));
    browser.wait_for_text("settlement failed");
    browser.screenshot("group-01-list");
    // The checkout's group is listed too, newer.
    assert_eq!(browser.find_all("table.groups tbody tr").len(), 2);
    browser.click_link("settlement failed");
    let text = browser.wait_for_text("Users affected");
    let group_url = browser.url();
    assert!(group_url.contains("/groups/"), "{group_url}");
    assert!(text.contains("settlement failed"), "{text}");

    // Impact: three distinct users, the release it first and last showed in.
    assert_eq!(browser.text_of("#users-affected"), "3");
    assert_eq!(browser.text_of("#first-release"), "1.0.0");
    assert_eq!(browser.text_of("#last-release"), "1.1.0");
    // Events by release: four in each.
    let releases = browser.text_of("table.releases");
    assert_eq!(browser.find_all("table.releases tbody tr").len(), 2);
    for row in ["1.0.0\t4", "1.1.0\t4"] {
        assert!(
            releases.replace(' ', "\t").contains(row) || releases.contains(&row.replace('\t', " ")),
            "{row:?} in {releases:?}"
        );
    }
    // Tag values with their shares: eu on 6 of 8 events.
    let shard = browser.text_of("table.tag[data-tag=shard]");
    assert!(shard.contains("eu") && shard.contains("75%"), "{shard}");
    assert!(shard.contains("us") && shard.contains("25%"), "{shard}");
    let release_tag = browser.text_of("table.tag[data-tag=release]");
    assert!(release_tag.contains("50%"), "{release_tag}");

    // The culprit line with its source, the reporting line marked.
    let current = browser.text_of("#culprit pre.source .current");
    assert!(current.contains("Report::error"), "{current:?}");
    let culprit = browser.text_of("#culprit");
    assert!(culprit.contains("settlement failed"), "{culprit}");
    // The breadcrumbs as a timeline ending with the event: the newest event's two.
    let crumbs = browser.find_all("ol.timeline li.crumb");
    assert_eq!(crumbs.len(), 3);
    let timeline = browser.text_of("ol.timeline");
    assert!(
        timeline.contains("GET /cart/3") && timeline.contains("slow query"),
        "{timeline}"
    );
    assert!(
        timeline.contains(" ms") || timeline.contains(" s"),
        "{timeline}"
    );
    assert!(text.contains("Event 1 of 8"), "{text}");
    assert!(
        browser.find_all("#newer-event").is_empty(),
        "the newest has no newer"
    );
    browser.screenshot("group-02-group");
    browser.script("document.querySelector('table.releases').scrollIntoView()");
    browser.screenshot("group-02b-releases-and-tags");
    browser.script("document.getElementById('event').scrollIntoView()");
    browser.screenshot("group-02c-culprit-and-breadcrumbs");

    // Previous and next event.
    browser.click("#older-event");
    browser.wait_for_text("Event 2 of 8");
    assert!(browser.url().contains("event="), "{}", browser.url());
    assert!(!browser.find_all("#newer-event").is_empty());
    browser.screenshot("group-03-older-event");
    browser.click("#newer-event");
    browser.wait_for_text("Event 1 of 8");

    // The trends page: hourly and daily charts with labelled axes.
    browser.click("#trends-link");
    let text = browser.wait_for_text("Events per hour");
    assert!(text.contains("Events per day"), "{text}");
    assert_eq!(browser.find_all("#hourly svg rect").len(), 48);
    assert_eq!(browser.find_all("#daily svg rect").len(), 30);
    let hour_labels = browser.find_all("#hourly text.x-label");
    assert!(hour_labels.len() >= 8, "{}", hour_labels.len());
    let hourly = browser.text_of("#hourly");
    assert!(hourly.contains(":00"), "{hourly}");
    assert!(!browser.find_all("#daily text.x-label").is_empty());
    assert!(!browser.find_all("#hourly text.y-label").is_empty());
    assert_eq!(
        browser.script("return document.querySelectorAll('script, link, img').length"),
        0
    );
    browser.screenshot("group-04-trends");
    browser.click("#back-to-group");
    browser.wait_for_text("Users affected");

    // To the event, with its source lines, and back.
    browser.click("#open-event");
    let text = browser.wait_for_text("Frames");
    assert!(text.contains("settlement failed"), "{text}");
    assert!(!browser
        .find_all("table.frames pre.source .current")
        .is_empty());
    browser.screenshot("group-05-event");
    browser.back();
    browser.wait_for_text("Users affected");
    assert_eq!(browser.url(), group_url);

    // The functions page: the captured function's calls and failures.
    browser.click("header a[href$='/functions']");
    let text = browser.wait_for_text("Functions");
    assert!(text.contains("functions_scenario::checkout"), "{text}");
    let rows = browser.text_of("table.functions");
    assert!(rows.contains("25.0%"), "{rows}");
    browser.screenshot("group-06-functions");
}
