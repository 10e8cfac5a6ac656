//! The pending event: what a source takes on the calling thread, before it is resolved,
//! redacted and stored; and the enrichers that integrations register to add to it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::capture::trace::RawTrace;
use crate::capture::user_hook::UserHook;
use crate::model::breadcrumb::Breadcrumb;
use crate::model::event::{CapturedCall, EventId, Level, Location};

/// Adds what an integration knows on the calling thread (the request being handled) to a
/// new pending event.
pub(crate) type Enricher = fn(&mut PendingEvent);

/// The registered enrichers, in order of registration: a slot is set once and never
/// changes, so reading them takes no lock (the panic hook builds pending events too).
static ENRICHERS: [OnceLock<Enricher>; 4] = [const { OnceLock::new() }; 4];

/// Registers an enricher, called for every pending event made from now on. An integration
/// registers its own once; `false` when every slot is taken.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn register_enricher(enrich: Enricher) -> bool {
    ENRICHERS.iter().any(|slot| slot.set(enrich).is_ok())
}

/// An event as taken on the calling thread: cheap to build, not yet redacted or resolved.
/// A source of the secret values current on this thread beyond the active calls' (the
/// credentials of the request being served): registered by an integration, read when a
/// breadcrumb is copied into the crash record.
pub(crate) type SecretSource = fn(&mut Vec<String>);

static SECRET_SOURCES: [OnceLock<SecretSource>; 4] = [const { OnceLock::new() }; 4];

/// Registers a source of current secrets; `false` when every slot is taken.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn register_secret_source(source: SecretSource) -> bool {
    SECRET_SOURCES.iter().any(|slot| slot.set(source).is_ok())
}

/// The secret values current on this thread: the sensitive arguments of the active
/// `#[capture]` calls and what the registered sources add.
// Read by the crash record, which only Linux keeps.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn current_secrets(out: &mut Vec<String>) {
    crate::capture::chain::active_secret_texts(out);
    for source in SECRET_SOURCES.iter().map_while(OnceLock::get) {
        // What a source added before it panicked is kept: more secrets hide more.
        SECRET_SOURCE.call(|| source(out));
    }
}

/// The enrichers and the secret sources, as their panics are said. They are the
/// integrations' own code, written not to panic; a panic is caught off the panic hook
/// (inside it nothing can catch it, see [`crate::capture::user_hook`]).
static ENRICHER: UserHook = UserHook::new("enricher", "the event is kept as it left it");
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
static SECRET_SOURCE: UserHook = UserHook::new(
    "secret source",
    "the secrets it found before it panicked are kept",
);

#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub(crate) id: EventId,
    pub(crate) timestamp_us: u64,
    pub(crate) level: Level,
    pub(crate) logger: String,
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) sources: Vec<String>,
    pub(crate) location: Option<Location>,
    pub(crate) calls: Vec<CapturedCall>,
    pub(crate) secrets: Vec<String>,
    pub(crate) trace: Option<RawTrace>,
    /// The capturing thread; its name and id are read when the event is built.
    pub(crate) thread: std::thread::Thread,
    pub(crate) request_path: String,
    pub(crate) user: String,
    pub(crate) client_addr: String,
    pub(crate) breadcrumbs: Vec<Breadcrumb>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: BTreeMap<String, Value>,
    pub(crate) payload: Value,
    /// What the event is grouped by in place of its frames and message, when its source
    /// knows better (the HTTP layer: the route).
    pub(crate) grouping: Option<String>,
}

impl PendingEvent {
    /// A new event of the current thread at `timestamp_us`.
    pub(crate) fn new(timestamp_us: u64, level: Level, logger: impl Into<String>) -> Self {
        let mut p = PendingEvent {
            id: EventId::new(timestamp_us),
            timestamp_us,
            level,
            logger: logger.into(),
            error_type: String::new(),
            message: String::new(),
            sources: Vec::new(),
            location: None,
            calls: Vec::new(),
            secrets: Vec::new(),
            trace: None,
            thread: std::thread::current(),
            request_path: String::new(),
            user: String::new(),
            client_addr: String::new(),
            breadcrumbs: Vec::new(),
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            payload: Value::Null,
            grouping: None,
        };
        for enrich in ENRICHERS.iter().map_while(OnceLock::get) {
            ENRICHER.call(|| enrich(&mut p));
        }
        p
    }

    /// Adds the chain of captured functions active on this thread or task (after those its
    /// task inherited from where it was spawned), and the values they hold as sensitive.
    pub(crate) fn with_active_calls(self) -> Self {
        let mut p = self.with_inherited_calls();
        let snap = crate::capture::chain::snapshot();
        p.calls.extend(snap.calls);
        p.secrets.extend(snap.secrets);
        p
    }

    /// Adds the calls (and their secrets) that the task being polled inherited from where
    /// it was spawned: the outermost part of every event's chain.
    pub(crate) fn with_inherited_calls(mut self) -> Self {
        if let Some(inherited) = crate::capture::inherit::current() {
            self.calls.extend(inherited.calls.iter().cloned());
            self.secrets.extend(inherited.secrets.iter().cloned());
        }
        self
    }
}
