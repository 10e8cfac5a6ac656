//! Sessions: each process that installs the tracker is one session of its release, begun at
//! install and ended clean, errored or crashed. A session is counted in its release once,
//! and ended once: by the process itself at a clean end, from its crash record by the next
//! process that opens the database, or, left open with no record, as crashed at that open.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use crate::error::StoreError;
use crate::store::db::Store;
use crate::store::event_count::from_transaction;
use crate::store::keys;
use crate::store::releases::record;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Not ended yet.
    Open,
    /// Ended cleanly, without an error event.
    Clean,
    /// Ended cleanly after an error event.
    Errored,
    /// A panic in `main`, an abort, a fatal signal, or an end without a clean shutdown.
    Crashed,
}

/// Which session: its process's start and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionKey {
    pub(crate) started_us: u64,
    pub(crate) pid: u32,
}

impl SessionKey {
    fn bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.started_us.to_be_bytes());
        b[8..].copy_from_slice(&self.pid.to_be_bytes());
        b
    }
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    release: String,
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_us: Option<u64>,
}

/// The session of this process, which no open settles while it runs.
static OWN: OnceLock<SessionKey> = OnceLock::new();

/// Names this process's session, which the opens of this process leave open.
pub(crate) fn claim_own(key: SessionKey) {
    let _ = OWN.set(key);
}

impl Store {
    /// Begins a session of `release` (counted in it once); an empty release has none.
    pub(crate) fn begin_session(&self, key: SessionKey, release: &str) -> Result<(), StoreError> {
        if release.is_empty() {
            return Ok(());
        }
        let k = key.bytes();
        (&self.sessions, &self.open_sessions, &self.releases)
            .transaction(|(sessions, open, releases)| {
                if sessions.get(k)?.is_some() {
                    return Ok(());
                }
                let s = Session {
                    release: release.to_owned(),
                    outcome: Outcome::Open,
                    ended_us: None,
                };
                sessions.insert(&k, keys::encode(&s))?;
                open.insert(&k, &[])?;
                record::note_session(releases, release, Some(key.started_us), None)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(from_transaction)
    }

    /// Ends a session: begun here or not (a process that wrote to a spool, or whose begin
    /// never reached the disk), it is counted in its release once, and an ended one is left
    /// as it ended. Says whether this ended it.
    pub(crate) fn end_session(
        &self,
        key: SessionKey,
        release: &str,
        outcome: Outcome,
        ended_us: u64,
    ) -> Result<bool, StoreError> {
        if release.is_empty() || outcome == Outcome::Open {
            return Ok(false);
        }
        let k = key.bytes();
        (&self.sessions, &self.open_sessions, &self.releases)
            .transaction(|(sessions, open, releases)| {
                let stored = sessions
                    .get(k)?
                    .and_then(|v| keys::decode::<Session>(&v, String::new).ok());
                let release = match &stored {
                    Some(s) if s.outcome != Outcome::Open => return Ok(false),
                    Some(s) => s.release.clone(),
                    None => release.to_owned(),
                };
                let s = Session {
                    release: release.clone(),
                    outcome,
                    ended_us: Some(ended_us),
                };
                sessions.insert(&k, keys::encode(&s))?;
                open.remove(&k)?;
                let started = stored.is_none().then_some(key.started_us);
                record::note_session(releases, &release, started, Some((outcome, ended_us)))?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(from_transaction)
    }

    /// Ends the sessions of gone processes as their crash records tell.
    pub(in crate::store) fn end_sessions_of(
        &self,
        ended: &[crate::crash::Ended],
    ) -> Result<(), StoreError> {
        use crate::crash::EndedAs;
        for e in ended {
            let key = SessionKey {
                started_us: e.session_us,
                pid: e.pid,
            };
            let outcome = match e.how {
                EndedAs::Clean => Outcome::Clean,
                EndedAs::Errored => Outcome::Errored,
                EndedAs::Crashed => Outcome::Crashed,
            };
            self.end_session(key, &e.release, outcome, e.at_us)?;
        }
        Ok(())
    }

    /// Ends as crashed the sessions left open by processes that are gone: no process but
    /// this one can hold the database, and this one's own session is left alone. Called at
    /// open, after the crash records have ended the sessions they tell of.
    pub(in crate::store) fn settle_open_sessions(&self) -> Result<usize, StoreError> {
        let own = OWN.get().map(|k| k.bytes());
        let mut settled = 0;
        for item in self.open_sessions.iter() {
            let (k, _) = item?;
            if own.as_ref().is_some_and(|o| o[..] == k[..]) {
                continue;
            }
            let Ok(bytes) = <[u8; 12]>::try_from(&k[..]) else {
                self.open_sessions.remove(&k)?;
                continue;
            };
            let key = SessionKey {
                started_us: u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default()),
                pid: u32::from_be_bytes(bytes[8..].try_into().unwrap_or_default()),
            };
            let release = match self.sessions.get(k)? {
                Some(v) => keys::decode::<Session>(&v, String::new)
                    .map(|s| s.release)
                    .unwrap_or_default(),
                None => String::new(),
            };
            if release.is_empty() {
                self.open_sessions.remove(bytes)?;
                continue;
            }
            // Its end is unknown: the last sign of it is its start.
            if self.end_session(key, &release, Outcome::Crashed, key.started_us)? {
                settled += 1;
            }
        }
        Ok(settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(started_us: u64) -> SessionKey {
        SessionKey { started_us, pid: 7 }
    }

    #[test]
    fn a_session_is_counted_once_and_ended_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        store.begin_session(key(10), "app@1.0.0").unwrap();
        store.begin_session(key(10), "app@1.0.0").unwrap();
        let r = store.release("app@1.0.0").unwrap().unwrap();
        assert_eq!((r.sessions, r.open_sessions()), (1, 1));
        assert!(store
            .end_session(key(10), "app@1.0.0", Outcome::Errored, 20)
            .unwrap());
        // Ended already: a later word (a crash record read at the next open) changes nothing.
        assert!(!store
            .end_session(key(10), "app@1.0.0", Outcome::Crashed, 30)
            .unwrap());
        // A session never begun here (a spooling process) is counted as it ends.
        assert!(store
            .end_session(key(40), "app@1.0.0", Outcome::Clean, 50)
            .unwrap());
        let r = store.release("app@1.0.0").unwrap().unwrap();
        assert_eq!(
            (r.sessions, r.clean, r.errored, r.crashed, r.open_sessions()),
            (2, 1, 1, 0, 0)
        );
        assert_eq!((r.first_seen_us, r.last_seen_us), (10, 50));
        assert_eq!(r.crash_free_rate(), Some(1.0));
        assert_eq!(r.errored_rate(), Some(0.5));
        // No release, no session.
        store.begin_session(key(60), "").unwrap();
        assert_eq!(store.releases().unwrap().len(), 1);
    }

    #[test]
    fn a_session_left_open_is_settled_as_crashed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path).unwrap();
            // Another process's, as it would have begun it.
            store.begin_session(key(5), "2.0.0").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let r = store.release("2.0.0").unwrap().unwrap();
        assert_eq!((r.sessions, r.crashed, r.open_sessions()), (1, 1, 0));
        assert!(store.open_sessions.is_empty());
    }
}
