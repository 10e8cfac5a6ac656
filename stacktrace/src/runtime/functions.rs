//! The writer's side of the call counters: now and then, and at every flush (the guard's
//! included), it sums every thread's counts of each `#[capture]` function and adds what is
//! new since the last sum to the database, with the release the process runs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::capture::calls::totals;
use crate::runtime::install::{Runtime, Sink};

/// How often the writer sums the counts while it runs.
const EVERY: Duration = Duration::from_secs(1);

/// What the writer has added to the database so far, by site.
#[derive(Debug, Default)]
pub(crate) struct CallTotals {
    persisted: HashMap<usize, (u64, u64)>,
    last: Option<Instant>,
}

impl CallTotals {
    /// Adds the new counts when a while has passed since the last time.
    pub(crate) fn now_and_then(&mut self, rt: &Runtime) {
        if self.last.is_none_or(|t| t.elapsed() >= EVERY) {
            self.persist(rt);
        }
    }

    /// Adds the counts made since the last time to the database. Counts that could not be
    /// written are tried again the next time. A process that spools (another holds the
    /// database) keeps its counts in memory.
    pub(crate) fn persist(&mut self, rt: &Runtime) {
        self.last = Some(Instant::now());
        let Sink::Store(store) = &*rt.sink else {
            return;
        };
        let mut deltas = Vec::new();
        let mut sums = Vec::new();
        for c in totals() {
            let key = std::ptr::from_ref(c.site) as usize;
            let (calls0, failures0) = self.persisted.get(&key).copied().unwrap_or((0, 0));
            let (calls, failures) = (c.calls.max(calls0), c.failures.max(failures0));
            if (calls, failures) == (calls0, failures0) {
                continue;
            }
            let function = match c.site.name {
                Some(name) => name.to_owned(),
                None => (c.site.path)().to_owned(),
            };
            deltas.push((function, calls - calls0, failures - failures0));
            sums.push((key, (calls, failures)));
        }
        if deltas.is_empty() {
            return;
        }
        let release = &rt.build.process.program_version;
        if store.add_function_counts(release, &deltas).is_ok() {
            self.persisted.extend(sums);
        }
    }
}
