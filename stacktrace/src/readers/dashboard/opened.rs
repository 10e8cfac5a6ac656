//! The database of `stacktrace serve`, opened for the requests and closed once idle.
//!
//! sled lets one process open a database. A server that held it for as long as it runs
//! would keep a program that starts meanwhile (or restarts) from it: the program would
//! spool its events, and forward and track nothing, until the server ends. Opened when a
//! request comes and closed after [`IDLE`] without one, the database is the program's again
//! within seconds of the last page (the program tries it every few seconds); while the
//! program has it, pages say so.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::sync::lock;
use crate::{Store, StoreError};

/// How long the database stays open after a request: the pages a visitor opens one after
/// another share one open.
const IDLE: Duration = Duration::from_secs(1);
/// How often the closer looks.
const LOOK: Duration = Duration::from_millis(250);

/// A database path, open while requests come.
#[derive(Debug)]
pub(crate) struct Opened {
    path: PathBuf,
    /// The open database and when it was last used.
    held: Mutex<Option<(Store, Instant)>>,
}

impl Opened {
    /// The database at `path`, closed for now; a thread closes it whenever it has been
    /// idle for [`IDLE`], for as long as this lives.
    pub(crate) fn new(path: &Path) -> Arc<Opened> {
        let opened = Arc::new(Opened {
            path: path.to_path_buf(),
            held: Mutex::new(None),
        });
        let weak = Arc::downgrade(&opened);
        // Without the thread the database stays open between requests, as it did before.
        let _ = std::thread::Builder::new()
            .name("stacktrace-serve-close".into())
            .spawn(move || close_when_idle(&weak));
        opened
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database, opening it first when it is closed.
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> Result<R, StoreError> {
        let mut held = lock(&self.held);
        let store = match held.take() {
            Some((store, _)) => store,
            None => Store::open(&self.path)?,
        };
        let r = f(&store);
        *held = Some((store, Instant::now()));
        Ok(r)
    }
}

fn close_when_idle(opened: &Weak<Opened>) {
    loop {
        std::thread::sleep(LOOK);
        let Some(opened) = opened.upgrade() else {
            return;
        };
        let mut held = lock(&opened.held);
        if held
            .as_ref()
            .is_some_and(|(_, used)| used.elapsed() >= IDLE)
        {
            // Dropped under the lock: a request waits for the close rather than failing
            // on sled's lock, which outlives the handle for a moment.
            drop(held.take());
        }
    }
}
