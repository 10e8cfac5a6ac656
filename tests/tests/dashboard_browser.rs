//! The dashboard in a real headless browser: Debian's chromium driven through chromedriver's
//! WebDriver API. The browser loads each page from `stacktrace serve`, searches, follows a
//! group to its events, resolves the group, and opens an event whose message holds
//! `<script>`; the test checks what the pages show and saves screenshots under
//! `target/tmp/dashboard-screenshots/`.
//!
//! `scripts/install-browser.sh` installs chromium and chromium-driver when they are missing.

mod support;

use support::browser::{ensure_browser, Browser};

#[test]
fn the_dashboard_works_in_a_headless_browser() {
    ensure_browser();
    let (_dir, db) = support::cli::showcase_db();
    let server = support::cli::Server::start(&db, &[]);
    let browser = Browser::start();
    let base = &server.url;

    // Groups: every group with its trend line, nothing from the markup message executed.
    browser.open(&format!("{base}/"));
    let text = browser.wait_for_text("Groups");
    assert_eq!(browser.title(), "Groups · stacktrace");
    for part in [
        "checkout declined by the provider",
        "panic: failure at site a",
        "panic: failure at site b",
        "scenario::ConfigFileError: cannot load config",
        "<script>document.title='pwned'",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    assert_eq!(browser.find_all("table.groups tbody tr").len(), 5);
    assert_eq!(browser.find_all("table.groups svg.spark").len(), 5);
    assert_eq!(browser.script("return typeof window.__pwned"), "undefined");
    browser.screenshot("01-groups");

    // Search narrows the groups.
    browser.type_into("input[name=q]", "site b");
    browser.click("form.filters button[type=submit]");
    let text = browser.wait_for_text("1 group matches");
    assert!(browser.url().contains("q=site+b"), "{}", browser.url());
    assert_eq!(browser.find_all("table.groups tbody tr").len(), 1);
    assert!(text.contains("panic: failure at site b") && !text.contains("site a"));
    browser.screenshot("02-search");

    // The group: chart, events, status buttons.
    browser.click("table.groups tbody a");
    let text = browser.wait_for_text("Occurrences per hour");
    assert!(
        text.contains("Fingerprint") && text.contains("unresolved"),
        "{text}"
    );
    assert_eq!(browser.find_all("svg.chart rect").len(), 48);
    assert_eq!(browser.find_all("table.events tbody tr").len(), 2);
    let group_url = browser.url();
    browser.screenshot("03-group");

    // Resolving it: the page shows the new status, and the groups filter agrees.
    browser.click("#resolve");
    browser.wait_for_text("Reopen");
    assert_eq!(browser.text_of("#status"), "resolved");
    assert_eq!(browser.url(), group_url);
    browser.screenshot("04-resolved");
    browser.open(&format!("{base}/?status=resolved"));
    browser.wait_for_text("Groups");
    assert_eq!(browser.find_all("table.groups tbody tr").len(), 1);
    assert!(browser
        .text_of("table.groups")
        .contains("failure at site b"));

    // An event of the group: message, frames with the in-app ones marked, environment.
    browser.open(&group_url);
    browser.wait_for_text("Occurrences");
    browser.click("table.events tbody a");
    let text = browser.wait_for_text("Frames");
    for part in ["Message", "failure at site b", "Environment", "Program"] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    assert!(!browser.find_all("table.frames tr.app").is_empty());
    browser.screenshot("05-panic-event");

    // The error event: its source chain.
    browser.open(&format!("{base}/events?type=scenario::ConfigFileError"));
    browser.wait_for_text("Events");
    assert_eq!(browser.find_all("table.events tbody tr").len(), 3);
    browser.click("table.events tbody a");
    let text = browser.wait_for_text("Caused by");
    assert!(text.contains("No such file or directory"), "{text}");
    browser.screenshot("06-error-event");

    // The markup message shows as text and runs nothing.
    browser.open(&format!("{base}/events?q=%3Cscript%3E"));
    browser.wait_for_text("Events");
    browser.click("table.events tbody a");
    let text = browser.wait_for_text("Message");
    assert!(browser.title().contains("<script>"), "{}", browser.title());
    assert_ne!(browser.title(), "pwned");
    assert_eq!(browser.script("return typeof window.__pwned"), "undefined");
    assert_eq!(
        browser.text_of("#message"),
        "<script>document.title='pwned';window.__pwned=1</script><b>bold?</b>"
    );
    assert_eq!(
        browser.script("return document.querySelectorAll('main script, main b').length"),
        0
    );
    assert!(text.contains("mallory") && text.contains("/comments") && text.contains("source"));
    browser.screenshot("07-script-event");
}
