//! Tests of the postings: run sizes, reads within bounds, late ids, repeated additions, values apart, merged reads, forgetting, and event words.

use super::*;

fn id(t: u64, r: u64) -> EventId {
    EventId((u128::from(t) << 64) | u128::from(r))
}

fn postings() -> (tempfile::TempDir, Postings) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let p = Postings::new(
        db.open_tree("runs").unwrap(),
        db.open_tree("words").unwrap(),
        db.open_tree("meta").unwrap(),
    );
    (dir, p)
}

fn add(p: &Postings, field: Field, value: &str, ids: &[EventId]) {
    let mut a = Additions::default();
    for i in ids {
        a.add(field, value.as_bytes(), *i);
    }
    a.apply(p).unwrap();
}

fn read(p: &Postings, field: Field, value: &str, lower: EventId, upper: EventId) -> Vec<EventId> {
    p.descending(field, value.as_bytes(), lower, upper)
        .map(Result::unwrap)
        .collect()
}

const ALL: (EventId, EventId) = (EventId(0), EventId(u128::MAX));

/// Runs stay at most MAX_RUN ids, however many ids a batch brings and wherever late
/// ids land, and reading gives every id once.
#[test]
fn runs_stay_small_enough_for_sled_to_keep_them_inline() {
    let (_dir, p) = postings();
    let first: Vec<_> = (0..1000).map(|t| id(t * 2 + 10, 0)).collect();
    add(&p, Field::User, "ann", &first);
    // Late ids, inside the span of runs already written.
    let late: Vec<_> = (0..700).map(|t| id(t * 2 + 11, 0)).collect();
    add(&p, Field::User, "ann", &late);
    for run in p.runs.iter() {
        let (_, v) = run.unwrap();
        assert!(v.len() / 16 <= MAX_RUN, "a run of {} ids", v.len() / 16);
    }
    let mut want: Vec<_> = first.iter().chain(&late).copied().collect();
    want.sort_unstable();
    want.reverse();
    assert_eq!(read(&p, Field::User, "ann", ALL.0, ALL.1), want);
}

#[test]
fn batches_read_back_newest_first_within_bounds() {
    let (_d, p) = postings();
    let first: Vec<_> = (1..=200).map(|t| id(t, 0)).collect();
    let second: Vec<_> = (201..=300).map(|t| id(t, 0)).collect();
    add(&p, Field::User, "ann", &first);
    add(&p, Field::User, "ann", &second);
    add(&p, Field::User, "bob", &[id(150, 1)]);
    let mut want: Vec<_> = first.iter().chain(&second).copied().collect();
    want.reverse();
    assert_eq!(read(&p, Field::User, "ann", ALL.0, ALL.1), want);
    assert_eq!(
        read(&p, Field::User, "ann", id(100, 0), id(250, 0)),
        (100..250).rev().map(|t| id(t, 0)).collect::<Vec<_>>()
    );
    assert_eq!(read(&p, Field::User, "bob", ALL.0, ALL.1), [id(150, 1)]);
    assert!(read(&p, Field::User, "carl", ALL.0, ALL.1).is_empty());
    assert!(read(&p, Field::Level, "ann", ALL.0, ALL.1).is_empty());
}

#[test]
fn short_runs_are_extended_and_late_ids_join_the_run_covering_them() {
    let (_d, p) = postings();
    for t in 0..300 {
        add(&p, Field::Fingerprint, "fp", &[id(10 + t * 10, 0)]);
    }
    // 300 single-id batches make 3 runs, not 300.
    assert_eq!(
        p.runs
            .scan_prefix(prefix(Field::Fingerprint, b"fp"))
            .count(),
        3
    );
    // Ids older than what is indexed, one inside a run, one between runs, one before all.
    add(
        &p,
        Field::Fingerprint,
        "fp",
        &[id(15, 0), id(1285, 0), id(1, 0)],
    );
    // Duplicates are kept once.
    add(
        &p,
        Field::Fingerprint,
        "fp",
        &[id(20, 0), id(3000, 0), id(3005, 0)],
    );
    let got = read(&p, Field::Fingerprint, "fp", ALL.0, ALL.1);
    let mut want: Vec<_> = (0..300).map(|t| id(10 + t * 10, 0)).collect();
    want.extend([id(15, 0), id(1285, 0), id(1, 0), id(3005, 0)]);
    want.sort();
    want.reverse();
    assert_eq!(got, want);
}

// Pins: completing a batch cut short after its index entries were written applies them
// again; each id must stay indexed once, in runs of the same layout.
#[test]
fn applying_the_same_additions_again_changes_nothing() {
    let (_d, p) = postings();
    let ids: Vec<_> = (0..600).map(|t| id(t * 3, 0)).collect();
    add(&p, Field::User, "ann", &ids[..40]);
    let snapshot = |p: &Postings| -> Vec<(Vec<u8>, Vec<u8>)> {
        p.runs
            .iter()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect()
    };
    // A short last run extended, then runs split past the limit.
    for batch in [&ids[40..50], &ids[50..]] {
        add(&p, Field::User, "ann", batch);
        let once = snapshot(&p);
        add(&p, Field::User, "ann", batch);
        assert_eq!(snapshot(&p), once);
    }
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(read(&p, Field::User, "ann", ALL.0, ALL.1), want);
}

#[test]
fn values_with_a_shared_start_or_a_nul_stay_apart() {
    let (_d, p) = postings();
    add(&p, Field::User, "ann", &[id(1, 0)]);
    add(&p, Field::User, "ann\0x", &[id(2, 0)]);
    add(&p, Field::User, "an", &[id(3, 0)]);
    assert_eq!(read(&p, Field::User, "ann", ALL.0, ALL.1), [id(1, 0)]);
    assert_eq!(read(&p, Field::User, "ann\0x", ALL.0, ALL.1), [id(2, 0)]);
    assert_eq!(read(&p, Field::User, "an", ALL.0, ALL.1), [id(3, 0)]);
}

#[test]
fn merged_reads_interleave_and_drop_duplicates() {
    let (_d, p) = postings();
    add(&p, Field::Word, "a", &[id(1, 0), id(3, 0), id(5, 0)]);
    add(&p, Field::Word, "b", &[id(2, 0), id(3, 0), id(6, 0)]);
    let got: Vec<_> = p
        .descending_any(
            &[(Field::Word, b"a".to_vec()), (Field::Word, b"b".to_vec())],
            ALL.0,
            ALL.1,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [6, 5, 3, 2, 1].map(|t| id(t, 0)));
}

#[test]
fn forgetting_deletes_whole_runs_below_the_boundary_only() {
    let (_d, p) = postings();
    add(
        &p,
        Field::Level,
        "e",
        &(0..200).map(|t| id(t, 0)).collect::<Vec<_>>(),
    );
    add(
        &p,
        Field::Level,
        "e",
        &(200..400).map(|t| id(t, 0)).collect::<Vec<_>>(),
    );
    p.set_purged_below(id(250, 0)).unwrap();
    p.forget_below(id(250, 0)).unwrap();
    assert_eq!(p.purged_below().unwrap(), id(250, 0));
    // The first run is gone; the straddling one stays whole (readers check its ids).
    assert_eq!(read(&p, Field::Level, "e", ALL.0, ALL.1).len(), 200);
    p.set_purged_below(id(10, 0)).unwrap();
    assert_eq!(
        p.purged_below().unwrap(),
        id(250, 0),
        "the boundary never moves back"
    );
}

#[test]
fn event_words_are_lower_case_and_overflow_is_marked() {
    let mut w = event_words("Card DECLINED: order-1042", "app::PayError");
    w.sort();
    assert_eq!(
        w,
        ["app", "card", "declined", "order", "payerror", "1042"]
            .map(str::to_owned)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let long = "x".repeat(MAX_WORD + 1);
    assert!(event_words(&format!("a {long}"), "").contains(&OVERFLOW.to_owned()));
    let many: String = (0..MAX_WORDS + 5).map(|i| format!("w{i} ")).collect();
    let w = event_words(&many, "");
    assert_eq!(w.len(), MAX_WORDS + 1);
    assert!(w.contains(&OVERFLOW.to_owned()));
    assert!(!event_words("plain words", "").contains(&OVERFLOW.to_owned()));
    // Ids are not words of the vocabulary; short numbers are.
    let w = event_words("request 3f2b9c1e8d7a6b5c failed for order 104217", "");
    assert!(w.contains(&OVERFLOW.to_owned()) && w.contains(&"104217".to_owned()));
    assert!(!w.iter().any(|w| w.starts_with("3f2b")));
}
