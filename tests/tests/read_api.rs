//! The read API over a database filled by a program: filters answered from indexes, paging,
//! groups, retention, export and stats.

mod support;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use stacktrace::{GroupOrder, Level, QueryError, Store};
use support::scenario::{db_dir, scenario};

fn filled(n: usize) -> (tempfile::TempDir, Store) {
    let (dir, db) = db_dir();
    let run = scenario("fill", &db, &n.to_string());
    assert_eq!(run.code, Some(0), "{run:?}");
    let store = Store::open(&db).unwrap();
    (dir, store)
}

#[test]
fn filters_select_by_each_indexed_field_and_text() {
    let (_dir, store) = filled(200);
    assert_eq!(store.query().count().unwrap(), 200);
    assert_eq!(store.query().level(Level::Fatal).count().unwrap(), 50);
    assert_eq!(store.query().user("ann").count().unwrap(), 100);
    assert_eq!(store.query().request_path("/cart").count().unwrap(), 100);
    assert_eq!(
        store
            .query()
            .user("ann")
            .request_path("/cart")
            .count()
            .unwrap(),
        50
    );
    assert_eq!(store.query().user("nobody").count().unwrap(), 0);
    // A value that extends another with a NUL byte does not match it.
    assert_eq!(store.query().user("an").count().unwrap(), 0);
    assert_eq!(store.query().text("EVENT 17 OF").count().unwrap(), 1);
    let fatal = store.query().level(Level::Fatal).run().unwrap().events;
    assert!(fatal
        .iter()
        .all(|e| e.level == Level::Fatal && e.user == "cy"));
    let fp = fatal[0].fingerprint.clone();
    let same = store.query().fingerprint(&fp).all().unwrap();
    assert!(!same.is_empty() && same.iter().all(|e| e.fingerprint == fp));
}

#[test]
fn results_are_newest_first_and_cursor_pages_cover_everything_once() {
    let (_dir, store) = filled(120);
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut last_id = None;
    let mut pages = 0;
    loop {
        let mut q = store.query().level(Level::Error).limit(7);
        if let Some(c) = &cursor {
            q = q.after(c);
        }
        let page = q.run().unwrap();
        for e in &page.events {
            assert!(seen.insert(e.id), "duplicate {}", e.id);
            if let Some(prev) = last_id {
                assert!(e.id < prev, "newest first");
            }
            last_id = Some(e.id);
        }
        pages += 1;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(pages, 5);
}

#[test]
fn time_range_and_bad_inputs() {
    let (_dir, store) = filled(40);
    let all = store.query().all().unwrap();
    let newest = all[0].timestamp_us;
    let oldest = all[all.len() - 1].timestamp_us;
    assert_eq!(
        store
            .query()
            .since_us(oldest)
            .until_us(newest)
            .count()
            .unwrap(),
        40
    );
    assert_eq!(store.query().since_us(newest + 1).count().unwrap(), 0);
    assert_eq!(
        store
            .query()
            .until(SystemTime::now() - Duration::from_secs(3600))
            .count()
            .unwrap(),
        0
    );
    let err = store.query().after("not-a-cursor").run().unwrap_err();
    assert!(matches!(err, QueryError::BadCursor(_)));
    assert!(err.to_string().contains("not-a-cursor"));
    let err = store.query().since_us(10).until_us(5).run().unwrap_err();
    assert!(matches!(err, QueryError::BadRange { .. }), "{err}");
}

#[test]
fn groups_order_and_status_changes() {
    let (_dir, store) = filled(40);
    let by_count = store.groups(GroupOrder::Count).unwrap();
    assert_eq!(by_count.len(), 40, "messages group by their text");
    let by_last = store.groups(GroupOrder::LastSeen).unwrap();
    assert!(by_last
        .windows(2)
        .all(|w| w[0].last_seen_us >= w[1].last_seen_us));
    let fp = &by_count[0].fingerprint;
    assert_eq!(
        store.ignore(fp).unwrap().unwrap().status,
        stacktrace::GroupStatus::Ignored
    );
    assert_eq!(
        store.reopen(fp).unwrap().unwrap().status,
        stacktrace::GroupStatus::Unresolved
    );
    assert!(store.resolve("no-such-group").unwrap().is_none());
}

#[test]
fn retention_by_age_and_count_removes_events_and_index_entries() {
    let (_dir, store) = filled(60);
    let all = store.query().all().unwrap();
    let cut = all[19].timestamp_us;
    let older = all.iter().filter(|e| e.timestamp_us < cut).count() as u64;
    assert!(older >= 1, "events have distinct enough times");
    let removed = store.purge_before(stacktrace::from_us(cut)).unwrap();
    assert_eq!(removed, older);
    let left = store.query().count().unwrap();
    assert_eq!(left, 60 - removed);
    // Index entries went with their events: indexed queries agree with the scan.
    let by_user: u64 = ["ann", "bob", "cy"]
        .iter()
        .map(|u| store.query().user(*u).count().unwrap())
        .sum();
    assert_eq!(by_user, left);
    assert_eq!(store.keep_latest(5).unwrap(), left - 5);
    assert_eq!(store.query().count().unwrap(), 5);
    assert_eq!(
        store.query().level(Level::Fatal).all().unwrap().len() as u64,
        store
            .query()
            .all()
            .unwrap()
            .iter()
            .filter(|e| e.level == Level::Fatal)
            .count() as u64
    );
    assert_eq!(store.keep_latest(10).unwrap(), 0);
    assert_eq!(store.stats().unwrap().events, 5);
}

#[test]
fn export_csv_and_json_lines() {
    let (_dir, store) = filled(30);
    let mut csv = Vec::new();
    let n = store.query().user("bob").export_csv(&mut csv).unwrap();
    assert_eq!(n, 8, "bob is every fourth event from the second");
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,time,level,logger,error_type,message,request_path,user,fingerprint,location"
    );
    assert_eq!(lines.len(), 9);
    assert!(lines[1].contains(",warning,message,,event ") && lines[1].contains(",/cart,bob,"));
    assert!(lines[1].contains("T") && lines[1].contains("Z,"));

    let mut jsonl = Vec::new();
    assert_eq!(store.query().limit(4).export_jsonl(&mut jsonl).unwrap(), 4);
    let events: Vec<stacktrace::CrashEvent> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events, store.query().limit(4).run().unwrap().events);
}

#[test]
fn stats_count_events_groups_and_size() {
    let (_dir, store) = filled(25);
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, 25);
    assert_eq!(stats.groups, 25);
    assert!(stats.size_on_disk > 0);
    assert_eq!(stats.dropped.len(), stacktrace::DROP_REASONS.len());
}

#[test]
fn get_of_unknown_id_is_none() {
    let (_dir, store) = filled(1);
    let id: stacktrace::EventId = "00000000000000000000000000000001".parse().unwrap();
    assert!(store.get(id).unwrap().is_none());
}
