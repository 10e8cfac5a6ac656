//! Tests of the block format.

use serde_json::Value;

use super::pack::{
    assemble, body_flags, cut_block, pack_texts, put_len, put_num, with_parts, BlockPacker, Own,
    Texts, BLOCK_V2, BLOCK_VERSION, REQUEST_BODY, SAME_TEXTS, START_APART,
};
use super::read::{block_entries, block_head, BlockHead, Slot};
use crate::model::event::EventId;
use crate::store::keys;
use crate::store::tracking::log::TrackedRequest;

fn full(ts: u64) -> TrackedRequest {
    let mut r = TrackedRequest::sample(ts, "/p", 201, 42);
    r.method = "POST".into();
    r.query = "a=1&é=2".into();
    r.user = "ann".into();
    r.client_addr = "10.0.0.1".into();
    r.headers.insert("host".into(), "example.test".into());
    r.headers.insert("x-long".into(), "v".repeat(300));
    r.request_body = Some("body ✓".into());
    r.request_body_truncated = true;
    r.response_body = Some(String::new());
    r.data.insert("n".into(), Value::from(3));
    r
}

/// The block these requests make, packed in the order given.
fn block_of(requests: &[TrackedRequest]) -> Vec<u8> {
    let mut packer = BlockPacker::default();
    for r in requests {
        assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
    }
    packer.finish()
}

#[test]
fn entries_round_trip_through_a_block() {
    let a = full(10);
    let b = TrackedRequest::sample(20, "/q", 404, 7);
    let block = block_of(&[a.clone(), b.clone()]);
    let head = block_head(b.id, &block).unwrap();
    assert_eq!(
        head,
        BlockHead {
            count: 2,
            min: a.id
        }
    );
    let slots = block_entries(b.id, &block).unwrap();
    let h = slots[0].head().unwrap();
    assert_eq!(
        (h.id, h.duration_us, h.status, h.path),
        (a.id, 42, 201, "/p")
    );
    let back: Vec<TrackedRequest> = slots.into_iter().map(|s| s.request().unwrap()).collect();
    assert_eq!(back, [a.clone(), b]);

    // A start that is not the id's own is kept apart.
    let mut apart = full(30);
    apart.timestamp_us = 29;
    apart.duration_us = u64::MAX;
    assert_eq!(
        decode_block(&block_of(std::slice::from_ref(&apart))),
        [apart]
    );
}

#[test]
fn repeated_texts_are_stored_once_per_block() {
    let requests: Vec<TrackedRequest> = (0..100u64)
        .map(|i| {
            let mut r = full(i);
            r.headers.insert("x-n".into(), i.to_string());
            r
        })
        .collect();
    let block = block_of(&requests);
    // The 300-byte header value and the other texts once, then about 30 bytes an entry.
    assert!(block.len() < 400 + 100 * 40, "{} bytes", block.len());
    let key = requests[99].id;
    let back: Vec<TrackedRequest> = block_entries(key, &block)
        .unwrap()
        .into_iter()
        .map(|s| s.request().unwrap())
        .collect();
    assert_eq!(back.len(), 100);
    assert_eq!(back[42].headers["x-n"], "42");
    let mut expected = full(42);
    expected.id = back[42].id;
    expected.headers.insert("x-n".into(), "42".into());
    assert_eq!(back[42], expected);
}

#[test]
fn a_version_one_value_reads_as_a_block_of_one() {
    let r = full(5);
    let value = keys::encode(&r);
    assert_eq!(
        block_head(r.id, &value).unwrap(),
        BlockHead {
            count: 1,
            min: r.id
        }
    );
    let slots = block_entries(r.id, &value).unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].head().unwrap().path, "/p");
    assert_eq!(slots.into_iter().next().unwrap().request().unwrap(), r);
}

#[test]
fn damaged_blocks_are_errors_not_panics() {
    let r = full(5);
    let block = block_of(std::slice::from_ref(&r));
    // Every cut and every single-byte change is either read or refused, never a panic.
    for cut in 0..block.len() {
        let _ = block_entries(r.id, &block[..cut]).and_then(|s| {
            s.into_iter()
                .map(Slot::request)
                .collect::<Result<Vec<_>, _>>()
        });
        let _ = block_head(r.id, &block[..cut]);
    }
    for at in 0..block.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = block.clone();
            bad[at] ^= flip;
            if let Ok(slots) = block_entries(r.id, &bad) {
                for s in slots {
                    let _ = s.head();
                    let _ = s.request();
                }
            }
        }
    }
    assert!(block_entries(r.id, &block[..block.len() - 1]).is_err());
    let mut longer = block.clone();
    longer.push(0);
    assert!(block_entries(r.id, &longer)
        .unwrap_err()
        .contains("left over"));
    let mut newer = block.clone();
    newer[0] = 9;
    assert!(block_head(r.id, &newer).unwrap_err().contains("version 9"));
    assert!(block_entries(r.id, &newer).is_err());
    assert!(block_head(r.id, &[]).is_err());
    // A count larger than the bytes could hold is refused before anything is reserved.
    let mut huge = vec![BLOCK_VERSION];
    put_len(&mut huge, usize::MAX >> 8);
    huge.extend_from_slice(&[0; 16]);
    assert!(block_entries(r.id, &huge).is_err());
}

fn decode_block(value: &[u8]) -> Vec<TrackedRequest> {
    let key = EventId(u128::MAX);
    block_entries(key, value)
        .unwrap()
        .into_iter()
        .map(|s| s.request().unwrap())
        .collect()
}

/// A request made of a few repeated texts and a few of its own.
fn varied(ts: u64, pick: &[u8]) -> TrackedRequest {
    let texts = ["", "a", "/p", "x=1", "é✓", "GET", "10.0.0.1"];
    let t = |i: usize| texts[pick.get(i).copied().unwrap_or(0) as usize % texts.len()];
    let mut r = TrackedRequest::sample(ts, t(0), 200 + u16::from(pick[0]), u64::from(pick[1]));
    r.method = t(1).into();
    r.query = t(2).into();
    r.user = format!("{}{}", t(3), pick.len());
    r.client_addr = t(4).into();
    if pick[0].is_multiple_of(2) {
        r.request_body = Some(t(5).repeat(pick[1] as usize % 40));
        r.request_body_truncated = pick[1].is_multiple_of(3);
    }
    if pick[1].is_multiple_of(2) {
        r.response_body = Some(t(6).into());
    }
    for (i, &p) in pick.iter().enumerate().skip(2) {
        r.headers
            .insert(format!("h{}", p % 5), format!("{}{i}", t(i)));
    }
    if pick[0].is_multiple_of(5) {
        r.data.insert("n".into(), Value::from(pick[1]));
    }
    r
}

/// Up to `most` requests' worth of picks for [`varied`].
fn picks(most: usize) -> impl proptest::strategy::Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(0u8..=255, 2..8), 1..most)
}

/// The requests of these picks, a microsecond apart.
fn requests_of(picks: &[Vec<u8>]) -> Vec<TrackedRequest> {
    picks
        .iter()
        .enumerate()
        .map(|(i, p)| varied(1_000 + i as u64, p))
        .collect()
}

proptest::proptest! {
    /// Packed from their parts greedily under a size, every block is as big as the
    /// packer said, stays under the size unless it holds one entry, leaves no trace of
    /// an entry it refused, and reads back the entries given; a cut block reads back
    /// the rest and keeps no text only the cut entries used.
    #[test]
    fn packed_blocks_are_the_size_announced_and_cut_cleanly(
        picks in picks(60),
        max in 40usize..3000,
        cut_at in 0usize..1000,
    ) {
        let requests = requests_of(&picks);
        let mut packer = BlockPacker::default();
        let mut blocks = Vec::new();
        let mut next = 0;
        while next < requests.len() {
            let mut taken = Vec::new();
            while next < requests.len()
                && with_parts(&requests[next], |p| packer.push_parts(p, max))
            {
                taken.push(next);
                next += 1;
            }
            proptest::prop_assert!(!taken.is_empty(), "an empty block takes its first entry");
            let size = packer.size();
            let value = packer.finish();
            proptest::prop_assert_eq!(value.len(), size);
            if taken.len() > 1 {
                proptest::prop_assert!(value.len() <= max, "{} > {}", value.len(), max);
            }
            // A refused entry left the block as if it had never been offered.
            let alone: Vec<TrackedRequest> =
                taken.iter().map(|&i| requests[i].clone()).collect();
            proptest::prop_assert_eq!(&value, &block_of(&alone));
            blocks.push((taken, value));
        }
        let mut back = Vec::new();
        for (taken, value) in &blocks {
            let head = block_head(EventId(0), value).unwrap();
            proptest::prop_assert_eq!(head.count, taken.len());
            proptest::prop_assert_eq!(head.min, requests[taken[0]].id);
            back.extend(decode_block(value));
        }
        proptest::prop_assert_eq!(&back, &requests);

        let whole = block_of(&requests);
        let cut = cut_at % requests.len();
        let kept = cut_block(&whole, cut).unwrap();
        proptest::prop_assert_eq!(decode_block(&kept), requests[cut..].to_vec());
        // The very block the remaining entries make on their own.
        proptest::prop_assert_eq!(&kept, &block_of(&requests[cut..]));
        proptest::prop_assert!(cut_block(&whole, requests.len()).is_err());
    }

    /// Rewound to a mark, a packer holds what it held at the mark: the entries, their
    /// bytes and their texts, as if nothing had been added since.
    #[test]
    fn a_rewound_packer_is_the_packer_at_its_mark(picks in picks(30), at in 0usize..30) {
        let requests = requests_of(&picks);
        let at = at % requests.len();
        let mut packer = BlockPacker::default();
        for r in &requests[..at] {
            proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
        }
        let mark = packer.mark();
        for r in &requests[at..] {
            proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
        }
        packer.rewind(mark);
        // A mark from before a finished block takes back the whole block being packed,
        // part of an entry included.
        let stale = packer.mark();
        let _ = packer.finish();
        with_parts(&requests[0], |p| pack_texts(p, &mut packer.texts, &mut packer.packed));
        packer.rewind(stale);
        proptest::prop_assert_eq!(packer.len(), 0);
        proptest::prop_assert!(packer.packed.is_empty() && packer.texts.table.is_empty());
        for r in &requests[..at] {
            proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
        }
        // Packed on after the rewind, the block is the one the entries make in one go.
        let last = &requests[requests.len() - 1];
        proptest::prop_assert!(with_parts(last, |p| packer.push_parts(p, usize::MAX)));
        let mut expected = requests[..at].to_vec();
        expected.push(last.clone());
        proptest::prop_assert_eq!(packer.finish(), block_of(&expected));
    }
}

#[test]
fn a_damaged_block_is_refused_by_the_cut_never_a_panic() {
    let block = block_of(&[full(0), full(1), full(2)]);
    for cut in 0..block.len() {
        assert!(cut_block(&block[..cut], 1).is_err());
    }
    for at in 0..block.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = block.clone();
            bad[at] ^= flip;
            if let Ok(kept) = cut_block(&bad, 1) {
                // Whatever is read is read whole, or refused.
                if let Ok(slots) = block_entries(EventId(0), &kept) {
                    for s in slots {
                        let _ = s.request();
                    }
                }
            }
        }
    }
    // A text that is not UTF-8 is refused when it is kept.
    let mut bad = block.clone();
    let at = bad.windows(2).position(|w| w == "é".as_bytes()).unwrap();
    bad[at + 1] = b'(';
    assert!(cut_block(&bad, 1).unwrap_err().contains("text"));
    assert!(cut_block(&keys::encode(&full(1)), 0).is_err());
}

/// An entry repeated from the one before, with its own id, start, duration and status,
/// packs to the same bytes as the same entry packed from its parts (which finds that it
/// repeats the texts before); a packer with no entry, or without room, repeats nothing.
#[test]
fn a_repeated_entry_packs_as_the_entry_from_its_parts() {
    let mut requests = Vec::new();
    for (i, ts) in [100, 101, 105, 200, 201].into_iter().enumerate() {
        let mut r = full(ts);
        r.duration_us = 1000 * i as u64;
        r.status = [201, 200, 500, 201, 204][i];
        requests.push(r);
    }
    // A start apart from the id's, then one that is not: the flag follows each entry.
    requests[2].timestamp_us = 99;
    let mut other = TrackedRequest::sample(150, "/other", 404, 3);
    other.timestamp_us = 150;
    requests.insert(3, other);
    let expected = block_of(&requests);

    let mut packer = BlockPacker::default();
    let own = |r: &TrackedRequest| Own {
        id: r.id,
        timestamp_us: r.timestamp_us,
        duration_us: r.duration_us,
        status: r.status,
    };
    assert!(!packer.push_repeat(own(&requests[0]), usize::MAX));
    assert_eq!(packer.len(), 0);
    for (i, r) in requests.iter().enumerate() {
        let like_previous = i > 0 && i != 3 && i != 4;
        if like_previous {
            assert!(packer.push_repeat(own(r), usize::MAX));
        } else {
            assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
        }
    }
    let block = packer.finish();
    assert_eq!(block, expected);
    let back: Vec<TrackedRequest> = block_entries(requests[5].id, &block)
        .unwrap()
        .into_iter()
        .map(|s| s.request().unwrap())
        .collect();
    assert_eq!(back, requests);

    // Without room for one more, nothing is added, and the block is as it was.
    let mut packer = BlockPacker::default();
    assert!(with_parts(&requests[0], |p| packer.push_parts(p, usize::MAX)));
    let r = &requests[1];
    assert!(!packer.push_repeat(own(r), 10));
    assert_eq!(packer.len(), 1);
    assert_eq!(packer.finish(), block_of(&requests[..1]));
}

/// Requests of one endpoint a few microseconds apart, with ids counted up as a take counts
/// them, each with its own duration and status.
fn busy(n: u64) -> Vec<TrackedRequest> {
    (0..n)
        .map(|i| {
            let mut r = full(1_000 + 3 * i);
            r.id = EventId::with_low(r.timestamp_us, (u64::MAX - 5).wrapping_add(i));
            r.duration_us = 700 + 13 * i;
            r.status = [200, 201, 404][i as usize % 3];
            r
        })
        .collect()
}

/// The entry bytes at the end of a block whose last entry took `len` bytes.
fn last_entry_at(block: &[u8], len: usize) -> usize {
    block.len() - len
}

#[test]
fn an_entry_that_repeats_the_texts_before_takes_a_few_bytes() {
    // The random halves count up across their wrap-around: each step is still small.
    let requests = busy(200);
    let block = block_of(&requests);
    let texts = block_of(&requests[..1]).len();
    let per_entry = (block.len() - texts) as f64 / 199.0;
    assert!(per_entry <= 9.0, "{per_entry} bytes an entry");
    assert_eq!(decode_block(&block), requests);
    // Control: the same requests, each with a header of its own, take their texts each.
    let mut own: Vec<TrackedRequest> = requests.clone();
    for (i, r) in own.iter_mut().enumerate() {
        r.headers.insert("x-n".into(), i.to_string());
    }
    let block = block_of(&own);
    let per_entry = (block.len() - texts) as f64 / 199.0;
    assert!(per_entry >= 15.0, "{per_entry} bytes an entry");
    assert_eq!(decode_block(&block), own);
}

#[test]
fn a_cut_gives_the_first_entry_kept_its_texts_back() {
    // Runs of the same texts: entries 1, 2, 4 and 6 repeat the texts before them.
    let mut requests = busy(8);
    for i in [3, 4] {
        requests[i].path = "/other".into();
    }
    requests[7].response_body = None;
    let whole = block_of(&requests);
    for cut in 0..requests.len() {
        let kept = cut_block(&whole, cut).unwrap();
        assert_eq!(decode_block(&kept), requests[cut..], "cut {cut}");
        assert_eq!(kept, block_of(&requests[cut..]), "cut {cut}");
    }
}

#[test]
fn a_repeat_that_cannot_be_resolved_is_refused() {
    let requests = busy(2);
    let mut packer = BlockPacker::default();
    assert!(with_parts(&requests[0], |p| packer.push_parts(p, usize::MAX)));
    let first = packer.packed.len();
    assert!(with_parts(&requests[1], |p| packer.push_parts(p, usize::MAX)));
    let second = packer.packed.len() - first;
    let block = packer.finish();
    let at = last_entry_at(&block, second);
    assert_eq!(
        block[at] & SAME_TEXTS,
        SAME_TEXTS,
        "the second entry repeats"
    );
    assert_eq!(decode_block(&block), requests);

    // A repeat keeping other bodies than the texts it repeats.
    let mut bad = block.clone();
    bad[at] ^= REQUEST_BODY;
    let err = block_entries(EventId(0), &bad).unwrap_err();
    assert!(err.contains("other bodies"), "{err}");
    // A repeat with bytes after its own fields.
    let mut packer = BlockPacker::default();
    assert!(with_parts(&requests[0], |p| packer.push_parts(p, usize::MAX)));
    let mut longer = packer.finish();
    let one = longer.len() - first;
    longer[one] |= SAME_TEXTS;
    assert!(block_entries(EventId(0), &longer).is_err());
    // A first entry that repeats: nothing before it to repeat.
    let mut alone = Vec::new();
    let own = Own {
        id: requests[0].id,
        timestamp_us: requests[0].timestamp_us,
        duration_us: 1,
        status: 200,
    };
    super::pack::put_fixed(&mut alone, own, SAME_TEXTS, own.id);
    let block = assemble(own.id, &[b"GET".as_slice()], &alone, &[alone.len()]);
    let err = block_entries(EventId(0), &block).unwrap_err();
    assert!(err.contains("repeats the texts of none"), "{err}");
    assert!(cut_block(&block, 0).is_err());
}

/// A block as version 2 wrote it: each entry's whole id, its duration, status and flags,
/// then its texts.
fn v2_block(requests: &[TrackedRequest]) -> Vec<u8> {
    let mut texts = Texts::default();
    let mut packed = Vec::new();
    let mut ends = Vec::new();
    for r in requests {
        with_parts(r, |p| {
            packed.extend_from_slice(&r.id.to_bytes());
            put_num(&mut packed, r.duration_us);
            put_num(&mut packed, u64::from(r.status));
            let apart = r.timestamp_us != r.id.timestamp_us();
            packed.push(body_flags(p) | if apart { START_APART } else { 0 });
            if apart {
                packed.extend_from_slice(&r.timestamp_us.to_le_bytes());
            }
            pack_texts(p, &mut texts, &mut packed);
        });
        ends.push(packed.len());
    }
    let mut block = assemble(requests[0].id, &texts.table, &packed, &ends);
    block[0] = BLOCK_V2;
    block
}

#[test]
fn a_version_two_block_is_still_read_and_cut() {
    let mut requests = busy(5);
    requests[2].timestamp_us -= 1;
    requests[3].path = "/other".into();
    let block = v2_block(&requests);
    assert_eq!(
        block_head(EventId(0), &block).unwrap(),
        BlockHead {
            count: 5,
            min: requests[0].id
        }
    );
    assert_eq!(decode_block(&block), requests);
    let kept = cut_block(&block, 2).unwrap();
    assert_eq!(kept[0], BLOCK_VERSION);
    assert_eq!(decode_block(&kept), requests[2..]);
    // Damaged, it is refused, never a panic.
    for at in 0..block.len() {
        let mut bad = block.clone();
        bad[at] ^= 0x80;
        if let Ok(slots) = block_entries(EventId(0), &bad) {
            for s in slots {
                let _ = s.request();
            }
        }
        let _ = cut_block(&bad, 1);
    }
    assert!(block_entries(EventId(0), &block[..block.len() - 1]).is_err());
}
