//! Every page shows stored text that holds markup as text: each value's escaped form is on
//! the page (so the check is not passed by a page that leaves the value out) and no
//! `<script` is.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::functions::{functions, FunctionsParams};
use super::group_page::trends;
use super::html::Frame;
use super::pages::{events, group, groups, EventsParams, GroupParams, GroupsParams};
use super::releases::{releases, ReleasesParams};
use super::requests_page::{requests, RequestsParams};
use crate::model::event::{Argument, CapturedCall, Frame as EventFrame, Location};
use crate::model::time::now_us;
use crate::store::TrackingLog;
use crate::{Breadcrumb, CrashEvent, Level, SourceContext, Store, TrackedRequest};

const MARKUP: &str = "<script>alert(\"x\")</script>";

/// `what` followed by the markup.
fn hostile(what: &str) -> String {
    format!("{what} {MARKUP}")
}

/// What a page shows for `text`.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn assert_shows_escaped(page: &str, texts: &[String]) {
    assert!(!page.contains("<script"), "unescaped markup in {page}");
    for text in texts {
        assert!(
            page.contains(&escaped(text)),
            "{text:?} not shown in {page}"
        );
    }
}

const FINGERPRINT: &str = "f1ngerpr1nt";

/// A store with one event whose every text holds markup, its release's function counts
/// and two tracked requests.
fn hostile_store(dir: &tempfile::TempDir) -> (Store, CrashEvent) {
    let store = Store::open(dir.path().join("db")).unwrap();
    let now = now_us();
    let mut e = CrashEvent::sample(u128::from(now) << 64, &hostile("message"));
    e.timestamp_us = now;
    e.fingerprint = FINGERPRINT.into();
    e.error_type = hostile("error type");
    e.logger = hostile("logger");
    e.user = hostile("user");
    e.request_path = hostile("/path");
    e.location = Some(Location {
        file: hostile("location"),
        line: 3,
        column: 1,
    });
    e.sources = vec![hostile("cause")];
    e.frames = vec![EventFrame {
        function: hostile("function"),
        file: Some(hostile("file")),
        line: Some(2),
        in_app: true,
        source: Some(SourceContext {
            pre: vec![hostile("line before")],
            line: hostile("source line"),
            post: vec![],
        }),
    }];
    e.calls = vec![CapturedCall {
        function: hostile("call"),
        file: hostile("call file"),
        line: 1,
        args: vec![Argument {
            name: hostile("argument"),
            value: hostile("value"),
        }],
    }];
    e.breadcrumbs = vec![Breadcrumb {
        timestamp_us: now - 1_000,
        level: Level::Info,
        category: hostile("category"),
        message: hostile("crumb"),
        data: BTreeMap::new(),
    }];
    e.tags.insert(hostile("tag"), hostile("tag value"));
    e.extra
        .insert(hostile("extra"), hostile("extra value").into());
    e.payload = serde_json::json!({
        "request": {"url": hostile("url"), "headers": {"x-header": hostile("header")}},
        "job": hostile("payload"),
    });
    e.context.program_version = hostile("release").into();
    e.context.hostname = hostile("host").into();
    e.context.thread_name = Some(hostile("thread"));
    e.context.environment = Cow::Owned(BTreeMap::from([(hostile("VAR"), hostile("var value"))]));
    store.insert_batch(std::slice::from_ref(&e)).unwrap();
    store
        .add_function_counts(&hostile("release"), &[(hostile("counted"), 4, 1)])
        .unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let mut r = TrackedRequest::sample(now, &hostile("/tracked"), 500, 1_000);
    r.query = hostile("q=");
    r.user = hostile("visitor");
    r.method = hostile("GET");
    log.append(&[r], u64::MAX, u64::MAX).unwrap();
    (store, e)
}

#[test]
fn the_groups_page_escapes_titles_and_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let frame = Frame::default();
    let page = groups(&store, &frame, &GroupsParams::default()).unwrap();
    assert_shows_escaped(&page, &[hostile("error type"), hostile("message")]);
    let searched = GroupsParams {
        q: hostile("error type"),
        ..GroupsParams::default()
    };
    let page = groups(&store, &frame, &searched).unwrap();
    assert!(page.contains("1 group matches"), "{page}");
    assert_shows_escaped(&page, &[hostile("error type")]);
}

#[test]
fn the_events_page_escapes_events_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let p = EventsParams {
        user: hostile("user"),
        ..EventsParams::default()
    };
    let page = events(&store, &Frame::default(), &p).unwrap();
    assert!(page.contains("<table class=\"events\">"), "{page}");
    assert_shows_escaped(
        &page,
        &[hostile("message"), hostile("user"), hostile("/path")],
    );
}

#[test]
fn a_groups_page_escapes_its_details() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let page = group(
        &store,
        &Frame::default(),
        FINGERPRINT,
        &GroupParams::default(),
        "token",
    )
    .unwrap();
    assert_shows_escaped(
        &page,
        &[
            hostile("error type"),
            hostile("release"),
            hostile("tag"),
            hostile("tag value"),
            hostile("function"),
            hostile("source line"),
            hostile("category"),
            hostile("crumb"),
            hostile("user"),
        ],
    );
}

#[test]
fn a_groups_trends_page_escapes_its_title() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let page = trends(&store, &Frame::default(), FINGERPRINT).unwrap();
    assert!(page.contains("<div id=\"hourly\">"));
    assert_shows_escaped(&page, &[hostile("error type")]);
}

#[test]
fn an_events_page_escapes_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let (store, e) = hostile_store(&dir);
    let page = super::event_page::event(&store, &Frame::default(), &e.id.to_string()).unwrap();
    assert_shows_escaped(
        &page,
        &[
            "message",
            "logger",
            "location",
            "cause",
            "function",
            "line before",
            "source line",
            "call",
            "call file",
            "argument",
            "value",
            "url",
            "header",
            "tag",
            "tag value",
            "extra",
            "release",
            "host",
            "thread",
            "VAR",
            "var value",
            "user",
            "/path",
        ]
        .map(hostile),
    );
    // The rest of the payload is shown as JSON, its quotes escaped by JSON first.
    assert!(page.contains(r#"payload &lt;script&gt;alert(\&quot;x\&quot;)&lt;/script&gt;"#));
}

#[test]
fn the_releases_page_escapes_names() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let both = ReleasesParams {
        a: hostile("release"),
        b: hostile("release"),
    };
    let page = releases(&store, &Frame::default(), &both).unwrap();
    assert!(page.contains("<table id=\"comparison\">"), "{page}");
    assert!(page.contains("<table id=\"releases\">"), "{page}");
    assert_shows_escaped(&page, &[hostile("release")]);
}

#[test]
fn the_functions_page_escapes_names_releases_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let page = functions(&store, &Frame::default(), &FunctionsParams::default()).unwrap();
    assert!(page.contains("<table class=\"functions\">"), "{page}");
    assert_shows_escaped(&page, &[hostile("counted"), hostile("release")]);
    let filtered = FunctionsParams {
        q: hostile("counted"),
        release: hostile("release"),
    };
    let page = functions(&store, &Frame::default(), &filtered).unwrap();
    assert!(page.contains("<table class=\"functions\">"), "{page}");
    assert_shows_escaped(&page, &[hostile("counted"), hostile("release")]);
}

#[test]
fn the_requests_page_escapes_requests_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = hostile_store(&dir);
    let p = RequestsParams {
        path: hostile("/tracked"),
        ..RequestsParams::default()
    };
    let page = requests(&store, &Frame::default(), &p).unwrap();
    assert!(page.contains("id=\"covered\""), "{page}");
    assert_shows_escaped(
        &page,
        &[
            hostile("/tracked"),
            format!("?{}", hostile("q=")),
            hostile("visitor"),
            hostile("GET"),
        ],
    );
}
