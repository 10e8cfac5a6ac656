//! Tests of request tracking: records, entries, the queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::entry::{cached_headers, HeaderCache, Headers, Record, HEAD};
use super::queue::{tracking_counts, with_record, Following, Inbox, Queue, INBOX_BYTES, REST_KEPT};
use crate::integrations::http::body::CapturedFrames;
use crate::integrations::http::request::{redact_headers, RequestHead, RequestState};
use crate::integrations::http::request_redaction::{Redaction, SensitiveBody};
use crate::sync::lock;

fn record_bytes(f: &Following) -> Vec<u8> {
    with_record(f.clone(), |record| {
        let mut out = Vec::new();
        record.write(&mut out);
        out
    })
}

#[test]
fn headers_redacted_once_a_take_are_those_redacted_each_time() {
    let fields =
        crate::pipeline::redact::fields::FieldRedactor::new(&["session".into(), "card".into()]);
    let redact = ["authorization".to_owned(), "x-internal".to_owned()];
    let third = vec![
        ("referer", "https://u:sec-3@b.test/"),
        ("host", "a.test"),
        ("cookie", "a=1; session=sec-2"),
        ("accept", "x"),
        ("accept", "y"),
    ];
    let maps: Vec<http::HeaderMap> = [
        vec![("host", "a.test"), ("authorization", "Bearer sec-1")],
        vec![
            ("host", "a.test"),
            ("cookie", "a=1; session=sec-2"),
            ("cookie", "b=2"),
            ("x-internal-id", "7"),
        ],
        third.clone(),
        // The same again, then one that differs part way: found by position first.
        third,
        vec![
            ("referer", "https://u:sec-3@b.test/"),
            ("host", "b.test"),
            ("cookie", "a=1; session=sec-2"),
            ("accept", "y"),
        ],
    ]
    .into_iter()
    .map(|pairs| {
        let mut m = http::HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                http::HeaderName::from_static(n),
                http::HeaderValue::from_static(v),
            );
        }
        m
    })
    .collect();
    let heads: Vec<RequestHead> = maps
        .iter()
        .map(|m| {
            let mut req = http::Request::get("/").body(()).unwrap();
            *req.headers_mut() = m.clone();
            RequestHead::new(&req.into_parts().0)
        })
        .collect();
    let mut cache = HeaderCache::default();
    for (m, head) in maps.iter().zip(&heads) {
        let nothing = SensitiveBody::Nothing;
        let mut r = Redaction::new(&fields, &redact, &nothing);
        let each_time = redact_headers(&mut r, m.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
        let r_cached = Redaction::new(&fields, &redact, &nothing);
        let mut found = Vec::new();
        let cached: Vec<(&str, String)> = cached_headers(
            &r_cached,
            &Headers {
                count: head.header_count(),
                bytes: head.header_bytes(),
            },
            &mut cache,
            &mut found,
        )
        .into_iter()
        .map(|(n, v)| (n, v.into_owned()))
        .collect();
        assert_eq!(cached, each_time);
        // The secrets found are those found each time, from the cache as well.
        found.sort();
        found.dedup();
        let mut expected = r.secrets.clone();
        expected.sort();
        assert_eq!(found, expected);
        assert!(
            cached.iter().all(|(_, v)| !v.contains("sec-")),
            "{cached:?}"
        );
    }
    assert!(cache.stored.len() < maps.iter().map(http::HeaderMap::len).sum::<usize>());
}

#[test]
fn a_queued_record_reads_back_whole() {
    let req = http::Request::post("/login?next=%2Fhome&token=t")
        .header("accept", "text/html")
        .header("cookie", "a=1")
        .header("cookie", "session=s")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .unwrap();
    let parts = req.into_parts().0;
    let state = Arc::new(RequestState::new(
        &parts,
        Some("10.0.0.7".into()),
        Some(serde_json::json!({"username": "ann"})),
        64,
    ));
    {
        let mut shared = lock(&state.shared);
        shared.body.push(b"user=ann&card=4111", 18);
        shared.sensitive.add(&["card", "pin"]);
        shared.data.insert("cart".into(), Value::from(3));
    }
    let mut response = CapturedFrames::new(64);
    response.push(&Bytes::from_static(b"welcome"));
    let started = std::time::Instant::now();
    let f = Following {
        state: state.clone(),
        started,
        caps: (10, 20),
        status: 201,
        duration_us: 1234,
        body_limit: 64,
        response,
        response_type: Some(http::HeaderValue::from_static("text/plain")),
    };
    let mut bytes = record_bytes(&f);
    let first_len = bytes.len();
    bytes.extend(record_bytes(&f));

    let (r, next) = Record::read(&bytes, 0).unwrap();
    assert_eq!(next, first_len);
    assert_eq!(
        (r.started_us, r.duration_us, r.status),
        (crate::model::time::wall_us_of(started), 1234, 201)
    );
    assert_eq!((r.caps, r.body_limit), ((10, 20), 64));
    assert_eq!((r.method, r.path), ("POST", "/login"));
    assert_eq!(r.query, Some("next=%2Fhome&token=t"));
    assert_eq!(r.client_addr, Some("10.0.0.7"));
    let pairs: Vec<(&str, &[u8])> = r.headers.pairs().collect();
    let expected: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(pairs, expected);
    assert_eq!(r.request_body, Some((&b"user=ann&card=4111"[..], 18)));
    assert_eq!(r.response_body, (&b"welcome"[..], 7));
    assert_eq!(r.response_type, Some(&b"text/plain"[..]));
    let user: Value = serde_json::from_slice(r.user).unwrap();
    assert_eq!(user["username"], "ann");
    assert_eq!(
        r.sensitive,
        SensitiveBody::Names(vec!["card".into(), "pin".into()])
    );
    let data: Value = serde_json::from_slice(r.data).unwrap();
    assert_eq!(data["cart"], 3);
    let (_, end) = Record::read(&bytes, next).unwrap();
    assert_eq!(end, bytes.len());

    // Each thread queues into an inbox of its own; a take empties them all, and
    // forgets those of threads that have ended.
    let q = Queue::new(None);
    q.push(f.clone());
    let (mut taken, mut spares) = (Vec::new(), Vec::new());
    q.take_all(&mut taken, &mut spares);
    assert_eq!(taken, [bytes[..first_len].to_vec()]);
    taken.clear();
    // The second request repeats the first, whole in the same buffer: it is queued as its
    // start, duration and status alone.
    q.push(f.clone());
    q.push(f.clone());
    std::thread::scope(|s| {
        s.spawn(|| q.push(f.clone()));
    });
    assert_eq!(lock(&q.inboxes).len(), 2);
    q.take_all(&mut taken, &mut spares);
    let mut sizes: Vec<usize> = taken.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [first_len, first_len + HEAD]);
    taken.clear();
    // A scope ends before its threads' locals are dropped: give that a moment.
    for _ in 0..200 {
        q.take_all(&mut taken, &mut spares);
        if lock(&q.inboxes).len() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(taken.is_empty());
    assert_eq!(
        lock(&q.inboxes).len(),
        1,
        "the ended thread's inbox is gone"
    );
    assert!(q.all_empty());
    // A thread's inbox belongs to one queue: another queue gets one of its own.
    let other = Queue::new(None);
    other.push(f.clone());
    assert!(q.all_empty());
    assert_eq!(lock(&other.inboxes).len(), 1);
    assert!(!other.all_empty());

    // A full inbox takes nothing more, and counts what it turns away.
    let full = Mutex::new(Inbox {
        bytes: vec![0; INBOX_BYTES - 8],
        ..Inbox::default()
    });
    let before = tracking_counts();
    q.push_to(&full, f.clone());
    let after = tracking_counts();
    assert_eq!(after.dropped_full, before.dropped_full + 1);
    assert_eq!(after.dropped(), before.dropped() + 1);
    assert_eq!(lock(&full).bytes.len(), INBOX_BYTES - 8);
    assert_eq!(
        lock(&full).queued,
        1,
        "turned away, and counted as handed over"
    );
    let handed: u64 = lock(&other.inboxes).iter().map(|i| lock(i).queued).sum();
    assert_eq!(handed, 1);

    // A cut record is refused, never read past its end.
    for cut in 0..first_len {
        assert!(Record::read(&bytes[..cut], 0).is_none());
    }

    // A request that is the tracker's alone is taken whole and read without the lock: the
    // same record as when it was shared.
    drop(state);
    assert_eq!(Arc::strong_count(&f.state), 1);
    let mut alone = Vec::new();
    with_record(f, |record| record.write(&mut alone));
    assert_eq!(alone, bytes[..first_len]);
}

/// A finished request to `path` answered with `body`, `status` after `duration_us`.
fn following(path: &str, body: &'static [u8], status: u16, duration_us: u64) -> Following {
    let parts = http::Request::get(path)
        .header("accept", "*/*")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let mut response = CapturedFrames::new(64);
    response.push(&Bytes::from_static(body));
    Following {
        state: Arc::new(RequestState::new(&parts, None, None, 64)),
        started: std::time::Instant::now(),
        caps: (10, 20),
        status,
        duration_us,
        body_limit: 64,
        response,
        response_type: None,
    }
}

#[test]
fn a_request_that_repeats_the_last_whole_one_is_queued_as_its_own_three() {
    let a = following("/a", b"ok", 200, 10);
    let a_again = following("/a", b"ok", 503, 77);
    let b = following("/b", b"ok", 200, 10);
    let inbox = Mutex::new(Inbox::default());
    let q = Queue::new(None);
    for f in [&a, &a_again, &b, &a, &a_again] {
        q.push_to(&inbox, f.clone());
    }
    let bytes = std::mem::take(&mut lock(&inbox).bytes);
    let mut kinds = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (repeat, own, next) = Record::own(&bytes, at).expect("each record reads");
        // A repeat holds its own three, and is no whole record.
        assert_eq!(Record::read(&bytes, at).is_none(), repeat);
        assert_eq!(Record::split(&bytes, at).is_none(), repeat);
        if repeat {
            assert_eq!(next - at, HEAD);
        } else {
            let (record, end) = Record::read(&bytes, at).unwrap();
            assert_eq!(end, next);
            assert_eq!(record.varying(), own);
        }
        kinds.push((repeat, own.1, own.2));
        at = next;
    }
    // `b` differs past its three, and the `a` after it is whole again: a repeat repeats
    // the whole record queued last.
    assert_eq!(
        kinds,
        [
            (false, 10, 200),
            (true, 77, 503),
            (false, 10, 200),
            (false, 10, 200),
            (true, 77, 503)
        ]
    );
    assert_eq!(lock(&inbox).queued, 5);

    // A buffer the worker swapped in is empty: its first record is whole, whatever came
    // before.
    q.push_to(&inbox, a_again.clone());
    let bytes = std::mem::take(&mut lock(&inbox).bytes);
    let (repeat, own, next) = Record::own(&bytes, 0).unwrap();
    assert!(!repeat);
    assert_eq!((own.1, own.2, next), (77, 503, bytes.len()));

    // A large request leaves no large buffer behind once a smaller one follows it.
    let big = {
        let parts = http::Request::get("/big")
            .header("x-big", "b".repeat(REST_KEPT * 2))
            .body(())
            .unwrap()
            .into_parts()
            .0;
        Following {
            state: Arc::new(RequestState::new(&parts, None, None, 64)),
            ..following("/big", b"ok", 200, 10)
        }
    };
    q.push_to(&inbox, big.clone());
    assert!(
        lock(&inbox).last.capacity() > REST_KEPT,
        "the large one is kept"
    );
    q.push_to(&inbox, a.clone());
    {
        let held = lock(&inbox);
        assert!(held.last.capacity() <= REST_KEPT && held.next.capacity() <= REST_KEPT);
    }

    // A repeat's length is exact: a longer or shorter one is refused, as is a cut one.
    let mut repeat = Vec::new();
    Record::put_repeat(&mut repeat, (1, 2, 3));
    assert_eq!(Record::own(&repeat, 0), Some((true, (1, 2, 3), HEAD)));
    for cut in 0..HEAD {
        assert!(Record::own(&repeat[..cut], 0).is_none());
    }
    let mut longer = repeat.clone();
    longer[0] += 1;
    longer.push(0);
    assert!(Record::own(&longer, 0).is_none());
    let mut shorter = repeat.clone();
    shorter[0] -= 1;
    shorter.pop();
    assert!(Record::own(&shorter, 0).is_none());
}
