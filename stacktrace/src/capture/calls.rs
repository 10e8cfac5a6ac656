//! Calls and failures of each `#[capture]` function, counted on the calling thread and
//! summed by the writer now and then.
//!
//! # Cost
//!
//! A call adds one to a counter that only its own thread writes: a thread-local pointer
//! read, the site's slot number read, the chunk read, and a load and a store of a relaxed
//! atomic, with no atomic read-modify-write and no cache line shared between threads. The
//! writer reads every thread's counters with relaxed loads: a count it reads may be a few
//! calls behind, never torn, and the next sum catches up. A thread's first call of a site
//! (which may give the site its slot, make the thread's counters or a chunk of them) is one
//! cold call; being a call, it makes the function keep the values it needs after it in
//! registers its callee saves, the one cost of counting besides the count itself.
//!
//! # Lifetime of a thread's counters
//!
//! A thread's counters are made on its first counted call and listed in [`THREADS`]. When
//! the thread ends, its counts are added to those of the ended threads and its counters, zeroed, go back
//! to a free list for the next new thread, under the lock the writer sums under: a count is
//! never read twice nor lost, and a program that starts many short threads keeps as many
//! counter sets as it ever had threads at once.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::capture::chain::Site;

/// Sites in one chunk of a thread's counters.
const CHUNK: usize = 256;
/// Chunks a thread may have: sites beyond `CHUNK * CHUNKS` are not counted.
const CHUNKS: usize = 256;

/// A site's slot in every thread's counters, given on its first counted call.
#[derive(Debug)]
pub struct CallSlot(AtomicU32);

impl CallSlot {
    /// A slot not given yet.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        CallSlot(AtomicU32::new(0))
    }
}

#[derive(Debug, Default)]
struct Pair {
    calls: AtomicU64,
    failures: AtomicU64,
}

type Chunk = [Pair; CHUNK];

/// One thread's counters, by slot.
struct Counters {
    chunks: [OnceLock<Box<Chunk>>; CHUNKS],
}

impl Counters {
    fn new() -> Self {
        Counters {
            chunks: [const { OnceLock::new() }; CHUNKS],
        }
    }

    /// The pair of `slot` when its chunk is made already; `None` for a slot past the last
    /// chunk (`usize::MAX` among them).
    #[inline]
    fn made(&self, slot: usize) -> Option<&Pair> {
        let chunk = self.chunks.get(slot / CHUNK)?.get()?;
        Some(&chunk[slot % CHUNK])
    }

    fn pair(&self, slot: usize) -> Option<&Pair> {
        let chunk = self.chunks.get(slot / CHUNK)?;
        let chunk = match chunk.get() {
            Some(c) => c,
            None => chunk.get_or_init(|| Box::new(std::array::from_fn(|_| Pair::default()))),
        };
        Some(&chunk[slot % CHUNK])
    }

    /// Each slot's counts, added to `into` (grown as needed).
    fn add_to(&self, into: &mut Vec<(u64, u64)>) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            let Some(chunk) = chunk.get() else { continue };
            for (i, p) in chunk.iter().enumerate() {
                let (calls, failures) = (
                    p.calls.load(Ordering::Relaxed),
                    p.failures.load(Ordering::Relaxed),
                );
                if calls == 0 && failures == 0 {
                    continue;
                }
                let slot = c * CHUNK + i;
                if into.len() <= slot {
                    into.resize(slot + 1, (0, 0));
                }
                into[slot].0 += calls;
                into[slot].1 += failures;
            }
        }
    }

    fn zero(&self) {
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            for p in chunk.iter() {
                p.calls.store(0, Ordering::Relaxed);
                p.failures.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The sites given a slot, by slot.
static SITES: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

/// Counters of the live threads, the counts of the ended ones, and counters to reuse.
struct Threads {
    live: Vec<&'static Counters>,
    retired: Vec<(u64, u64)>,
    free: Vec<&'static Counters>,
}

static THREADS: Mutex<Threads> = Mutex::new(Threads {
    live: Vec::new(),
    retired: Vec::new(),
    free: Vec::new(),
});

thread_local! {
    /// This thread's counters: a plain cell without a destructor, the cheapest
    /// thread-local there is.
    static MINE: Cell<Option<&'static Counters>> = const { Cell::new(None) };
    /// Gives the counters back when the thread ends; set with them.
    static RETIRE: Retire = const { Retire(Cell::new(None)) };
}

struct Retire(Cell<Option<&'static Counters>>);

impl Drop for Retire {
    fn drop(&mut self) {
        let Some(mine) = self.0.take() else { return };
        let _ = MINE.try_with(|m| m.set(None));
        let mut t = crate::sync::lock(&THREADS);
        let mut retired = std::mem::take(&mut t.retired);
        mine.add_to(&mut retired);
        t.retired = retired;
        mine.zero();
        t.live.retain(|c| !std::ptr::eq(*c, mine));
        t.free.push(mine);
    }
}

/// This thread's counters, made (or reused) on first use; `None` while the thread ends.
#[cold]
fn make_mine() -> Option<&'static Counters> {
    let registered = RETIRE
        .try_with(|r| {
            if let Some(c) = r.0.get() {
                return c;
            }
            let mut t = crate::sync::lock(&THREADS);
            // Counters live as long as the program: a thread that ends leaves them to the
            // next new one.
            let c = t
                .free
                .pop()
                .unwrap_or_else(|| Box::leak(Box::new(Counters::new())));
            t.live.push(c);
            r.0.set(Some(c));
            c
        })
        .ok()?;
    let _ = MINE.try_with(|m| m.set(Some(registered)));
    Some(registered)
}

/// The slot of `site`, given on first use; `None` when every slot is taken.
#[inline]
fn slot_of(site: &'static Site) -> Option<usize> {
    match site.calls.0.load(Ordering::Relaxed) {
        0 => give_slot(site),
        n => Some(n as usize - 1),
    }
}

#[cold]
fn give_slot(site: &'static Site) -> Option<usize> {
    let mut sites = crate::sync::lock(&SITES);
    // Another thread may have given it meanwhile.
    match site.calls.0.load(Ordering::Relaxed) {
        0 => {}
        n => return Some(n as usize - 1),
    }
    if sites.len() >= CHUNK * CHUNKS {
        return None;
    }
    sites.push(site);
    let n = sites.len();
    site.calls.0.store(n as u32, Ordering::Relaxed);
    Some(n - 1)
}

#[inline]
fn with_pair(site: &'static Site, f: impl FnOnce(&Pair)) {
    let Some(slot) = slot_of(site) else { return };
    let mine = match MINE.try_with(Cell::get) {
        Ok(Some(c)) => c,
        Ok(None) => match make_mine() {
            Some(c) => c,
            None => return,
        },
        Err(_) => return,
    };
    if let Some(p) = mine.pair(slot) {
        f(p);
    }
}

/// Only this thread writes its counters: a load and a store, no atomic read-modify-write.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Counts a call of `site`. The path taken on every call but a thread's first of a site
/// is inlined where the call is: two loads to find the counter, one branch, and the bump;
/// the rest is one cold call.
#[inline]
pub(crate) fn count_call(site: &'static Site) {
    // The slot less one: `usize::MAX` while the site has none, a slot no counters hold.
    let slot = (site.calls.0.load(Ordering::Relaxed) as usize).wrapping_sub(1);
    let pair = match MINE.try_with(Cell::get) {
        Ok(Some(mine)) => mine.made(slot),
        _ => None,
    };
    match pair {
        Some(p) => bump(&p.calls),
        None => count_first_call(site),
    }
}

/// A call of `site` whose counter is not made yet on this thread (or whose site has no
/// slot yet).
#[cold]
#[inline(never)]
fn count_first_call(site: &'static Site) {
    with_pair(site, |p| bump(&p.calls));
}

/// Counts a failure of `site` (an `Err` returned or a panic through it).
#[cold]
pub(crate) fn count_failure(site: &'static Site) {
    with_pair(site, |p| bump(&p.failures));
}

/// The counts of one function so far.
#[derive(Clone, Debug)]
pub(crate) struct SiteCounts {
    pub(crate) site: &'static Site,
    pub(crate) calls: u64,
    pub(crate) failures: u64,
}

/// Every counted function's calls and failures since the program started, summed over
/// its threads, live and ended.
pub(crate) fn totals() -> Vec<SiteCounts> {
    let sums = {
        let t = crate::sync::lock(&THREADS);
        let mut sums = t.retired.clone();
        for c in &t.live {
            c.add_to(&mut sums);
        }
        sums
    };
    let sites = crate::sync::lock(&SITES);
    sums.into_iter()
        .enumerate()
        .filter(|(_, (calls, failures))| *calls > 0 || *failures > 0)
        .filter_map(|(slot, (calls, failures))| {
            Some(SiteCounts {
                site: sites.get(slot)?,
                calls,
                failures,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Level;

    fn site(path: &'static str) -> &'static Site {
        Box::leak(Box::new(Site {
            path: || "calls::tests",
            name: Some(path),
            file: file!(),
            line: line!(),
            level: Level::Error,
            reports_errors: true,
            calls: CallSlot::new(),
            args: &[],
        }))
    }

    fn counts_of(site: &'static Site) -> (u64, u64) {
        totals()
            .into_iter()
            .find(|c| std::ptr::eq(c.site, site))
            .map_or((0, 0), |c| (c.calls, c.failures))
    }

    #[test]
    fn counts_are_summed_over_live_and_ended_threads() {
        let s = site("calls::tests::summed");
        for _ in 0..3 {
            count_call(s);
        }
        count_failure(s);
        std::thread::spawn(move || {
            for _ in 0..5 {
                count_call(s);
            }
            count_failure(s);
        })
        .join()
        .unwrap();
        assert_eq!(counts_of(s), (8, 2));
        // The ended thread's counters are reused without counting twice.
        std::thread::spawn(move || count_call(s)).join().unwrap();
        assert_eq!(counts_of(s), (9, 2));
    }

    #[test]
    fn only_a_panic_out_of_a_counted_body_is_a_failure() {
        use crate::capture::chain::{call, Frame};
        let s = site("calls::tests::unwind");
        let frame = Frame::new(s, &[]);
        count_call(s);
        // Control: a body that returns is no failure.
        assert_eq!(call::<true, _>(&frame, || 5), 5);
        assert_eq!(counts_of(s), (1, 0));
        // A panic caught inside the body does not reach the call.
        let caught = call::<true, _>(&frame, || std::panic::catch_unwind(|| panic!("inner")));
        assert!(caught.is_err());
        assert_eq!(counts_of(s), (1, 0));
        let out = std::panic::catch_unwind(|| call::<true, _>(&frame, || panic!("boom")));
        assert!(out.is_err());
        assert_eq!(counts_of(s), (1, 1));
        // An uncounted call counts nothing.
        let out = std::panic::catch_unwind(|| call::<false, _>(&frame, || panic!("boom")));
        assert!(out.is_err());
        assert_eq!(counts_of(s), (1, 1));
    }

    #[test]
    fn a_panic_out_of_a_counted_poll_is_a_failure_and_a_dropped_future_is_not() {
        use crate::capture::chain::{Frame, Instrumented};
        use std::future::Future;
        use std::panic::AssertUnwindSafe;
        use std::task::{Context, Poll, Waker};
        let s = site("calls::tests::poll");
        let frame = Frame::new(s, &[]);
        let mut cx = Context::from_waker(Waker::noop());
        // Control: a future dropped while pending (cancelled) is no failure.
        let mut pending = Box::pin(Instrumented::<_, true>::new(
            &frame,
            std::future::pending::<()>(),
        ));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        drop(pending);
        assert_eq!(counts_of(s), (0, 0));
        let mut failing = Box::pin(Instrumented::<_, true>::new(&frame, async {
            panic!("boom")
        }));
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| failing.as_mut().poll(&mut cx)));
        assert!(out.is_err());
        assert_eq!(counts_of(s), (0, 1));
        let mut uncounted = Box::pin(Instrumented::<_, false>::new(&frame, async {
            panic!("boom")
        }));
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| uncounted.as_mut().poll(&mut cx)));
        assert!(out.is_err());
        assert_eq!(counts_of(s), (0, 1));
        let mut ready = Box::pin(Instrumented::<_, true>::new(&frame, async { 7 }));
        assert_eq!(ready.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(counts_of(s), (0, 1));
    }

    #[test]
    fn a_site_never_called_is_not_listed() {
        let called = site("calls::tests::called");
        let idle = site("calls::tests::idle");
        count_call(called);
        let listed = totals();
        assert!(listed.iter().any(|c| std::ptr::eq(c.site, called)));
        assert!(!listed.iter().any(|c| std::ptr::eq(c.site, idle)));
    }
}
