//! The server's address, looked up once and kept, so that a pooled connection is not
//! preceded by a lookup on a thread of its own for every envelope.
//!
//! `ureq` looks the host up before it takes a connection from its pool, and with a timeout
//! set it does that lookup on a new thread: one thread spawned per envelope, the largest
//! part of a send to a server on the same network. [`KeptAddress`] does the first lookup
//! the same way (on a thread, within the timeout) and answers from memory afterwards, until
//! the address is [`KEPT_FOR`] old or a send failed (a server that moved is found again).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up address is used before it is looked up again.
pub(crate) const KEPT_FOR: Duration = Duration::from_secs(60);

/// One address kept: for which host and port, since when.
#[derive(Debug)]
struct Kept {
    authority: String,
    at: Instant,
    addrs: ResolvedSocketAddrs,
}

/// A resolver that keeps the last answer for [`KEPT_FOR`]; clones share what is kept.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeptAddress {
    kept: Arc<Mutex<Option<Kept>>>,
    /// Lookups that went to the system resolver, for the tests to count.
    #[cfg(test)]
    lookups: Arc<std::sync::atomic::AtomicU64>,
}

impl KeptAddress {
    /// Drops what is kept, so that the next send looks the host up again.
    pub(crate) fn forget(&self) {
        *crate::sync::lock(&self.kept) = None;
    }

    /// How many lookups went to the system resolver.
    #[cfg(test)]
    pub(crate) fn lookups(&self) -> u64 {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Resolver for KeptAddress {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        if let Some(kept) = crate::sync::lock(&self.kept).as_ref() {
            if kept.authority == authority && kept.at.elapsed() < KEPT_FOR {
                return Ok(kept.addrs.clone());
            }
        }
        // Outside the lock: a slow lookup holds no other sender up.
        #[cfg(test)]
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        *crate::sync::lock(&self.kept) = Some(Kept {
            authority: authority.to_owned(),
            at: Instant::now(),
            addrs: addrs.clone(),
        });
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &KeptAddress, uri: &str) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let uri: Uri = uri.parse().unwrap();
        let config = Config::default();
        let timeout = NextTimeout {
            after: Duration::from_secs(5).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        r.resolve(&uri, &config, timeout)
    }

    // Regression: every envelope spawned a thread to look the server's host up again.
    #[test]
    fn a_host_is_looked_up_once_until_forgotten() {
        let r = KeptAddress::default();
        let first = resolve(&r, "http://127.0.0.1:9/api/1/envelope/").unwrap();
        let second = resolve(&r, "http://127.0.0.1:9/api/1/envelope/").unwrap();
        assert_eq!(first[..], second[..]);
        assert_eq!(r.lookups(), 1);
        // Another host or port is looked up, and so is a forgotten one.
        let other = resolve(&r, "http://127.0.0.1:10/api/1/envelope/").unwrap();
        assert_eq!(other[0].port(), 10);
        assert_eq!(r.lookups(), 2);
        r.forget();
        resolve(&r, "http://127.0.0.1:10/api/1/envelope/").unwrap();
        assert_eq!(r.lookups(), 3);
    }

    #[test]
    fn a_host_that_does_not_resolve_is_an_error_and_not_kept() {
        let r = KeptAddress::default();
        assert!(resolve(&r, "http://no-such-host.invalid:9/").is_err());
        assert!(resolve(&r, "http://no-such-host.invalid:9/").is_err());
        assert_eq!(r.lookups(), 2);
    }
}
