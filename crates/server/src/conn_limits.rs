//! How much of the server one client may hold, and for how long: the limits on
//! a connection's request head and body, the cap on open connections (with the
//! registry that enforces it), and the open-file limit the cap must stay under.
//! Without them idle or trickling connections (slowloris) stayed open for ever
//! and enough of them used up the file descriptors until `/health` timed out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[cfg(unix)]
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::sync::Notify;

/// Default [`ConnectionLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ConnectionLimits::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ConnectionLimits::body_min_bytes_per_sec`] (64 KiB/s).
pub const DEFAULT_BODY_MIN_BYTES_PER_SEC: u64 = 64 << 10;
/// Default [`ConnectionLimits::response_write_timeout`].
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ConnectionLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The cap never takes more than this share of the open-file limit: connections
/// being closed, SQLite's files, the listeners and refusals need the rest.
const FD_LIMIT_SHARE: u64 = 4;
/// The cap is never below this, whatever the open-file limit says.
const MIN_MAX_CONNECTIONS: usize = 8;

/// Limits on each connection of the sync listener (`ServerOptions::limits`).
/// The defaults are the production values (documented in the crate README);
/// tests lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must have arrived this long after the connection opened
    /// or after the previous response on it, however it trickles in; else the
    /// connection is closed (with `408` when part of a head came). So this is
    /// also the keep-alive idle timeout.
    pub header_read_timeout: Duration,
    /// Once a handler reads a request body, the body must have arrived within
    /// this time plus one second per [`body_min_bytes_per_sec`] received;
    /// else the request is answered `408` and the connection closed.
    ///
    /// [`body_min_bytes_per_sec`]: Self::body_min_bytes_per_sec
    pub body_read_timeout: Duration,
    /// How fast a long body must at least arrive (see `body_read_timeout`).
    pub body_min_bytes_per_sec: u64,
    /// A response that cannot be written for this long (the client reads
    /// nothing, its receive window stays shut) closes the connection. Any
    /// progress starts it again, so slow readers of long answers are fine.
    pub response_write_timeout: Duration,
    /// Most connections open at once (lowered to a quarter of the process's
    /// open-file limit when that is smaller). A connection beyond it closes the
    /// oldest one that has no request in progress; when every one is busy, it
    /// is answered `503` with `Retry-After: 1` and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            body_min_bytes_per_sec: DEFAULT_BODY_MIN_BYTES_PER_SEC,
            response_write_timeout: DEFAULT_RESPONSE_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// The connection cap in force for a process whose soft open-file limit is
    /// `fd_limit` (`None`: unlimited).
    pub(crate) fn effective_max_connections(&self, fd_limit: Option<u64>) -> usize {
        let by_fds = fd_limit
            .map(|n| usize::try_from(n / FD_LIMIT_SHARE).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX)
            .max(MIN_MAX_CONNECTIONS);
        self.max_connections.clamp(1, by_fds)
    }
}

/// Raises the soft open-file limit to the hard one where allowed and returns
/// the soft limit now in force (`None`: unlimited).
#[cfg(unix)]
pub(crate) fn raise_fd_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Refused (e.g. macOS rejects "unlimited" for files): keep the old one.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    getrlimit(Resource::Nofile).current
}

/// Windows has no soft open-file limit to raise (sockets are bounded by memory): `None`,
/// so only the configured connection limit applies.
#[cfg(not(unix))]
pub(crate) fn raise_fd_limit() -> Option<u64> {
    None
}

/// The open connections of the sync port, across every re-bind of it, so the
/// cap holds for the whole server.
#[derive(Debug)]
pub(crate) struct ConnectionRegistry {
    max: usize,
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    next_id: u64,
    /// Every open connection, oldest first, closing ones included.
    open: BTreeMap<u64, Arc<ConnectionSlot>>,
    /// Open connections that were not asked to close (what the cap counts).
    live: usize,
}

/// One open connection as the registry and its task share it.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSlot {
    in_flight: AtomicUsize,
    /// Set (under the registry lock) once it was chosen to make room.
    evicted: AtomicBool,
    evict: Notify,
}

impl ConnectionSlot {
    /// Counts a request in progress until the returned guard drops (with the
    /// response body, once it is written).
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestInProgress {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestInProgress(Arc::clone(self))
    }

    /// Whether a request is in progress on this connection.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Completes once the registry wants this connection closed.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A request in progress on a connection (see [`ConnectionSlot::begin_request`]).
#[derive(Debug)]
pub(crate) struct RequestInProgress(Arc<ConnectionSlot>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place in the registry; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Admitted {
    registry: Arc<ConnectionRegistry>,
    id: u64,
    slot: Arc<ConnectionSlot>,
}

impl Admitted {
    pub(crate) fn slot(&self) -> &Arc<ConnectionSlot> {
        &self.slot
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.open.remove(&self.id);
        if !self.slot.evicted.load(Ordering::Acquire) {
            inner.live -= 1;
        }
    }
}

impl ConnectionRegistry {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            inner: Mutex::new(RegistryInner::default()),
        })
    }

    /// The cap in force.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives a new connection a place: a free one, or the place of the oldest
    /// connection without a request in progress (asked to close). `None` when
    /// every open connection is busy, or too many are still closing (open
    /// descriptors stay below twice the cap).
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut inner = self.lock();
        if inner.live >= self.max {
            if inner.open.len() >= self.max.saturating_mul(2) {
                return None;
            }
            let victim = inner
                .open
                .values()
                .find(|s| !s.evicted.load(Ordering::Acquire) && !s.busy())?;
            victim.evicted.store(true, Ordering::Release);
            victim.evict.notify_one();
            inner.live -= 1;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(ConnectionSlot::default());
        inner.open.insert(id, Arc::clone(&slot));
        inner.live += 1;
        Some(Admitted {
            registry: Arc::clone(self),
            id,
            slot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_the_smaller_of_the_option_and_a_quarter_of_the_fd_limit() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.effective_max_connections(None), 512);
        assert_eq!(limits.effective_max_connections(Some(1_048_576)), 512);
        assert_eq!(limits.effective_max_connections(Some(1024)), 256);
        assert_eq!(limits.effective_max_connections(Some(10)), 8);
    }

    #[test]
    fn a_full_registry_evicts_the_oldest_idle_connection_and_refuses_when_all_are_busy() {
        let registry = ConnectionRegistry::new(2);
        let first = registry.admit().expect("room");
        let second = registry.admit().expect("room");
        let _busy = second.slot().begin_request();
        let third = registry.admit().expect("the idle first one makes room");
        assert!(first.slot().evicted.load(Ordering::Acquire));
        assert!(!second.slot().evicted.load(Ordering::Acquire));
        let _busy_too = third.slot().begin_request();
        assert!(registry.admit().is_none(), "every live connection is busy");
        drop(first);
        assert!(
            registry.admit().is_none(),
            "the evicted one no longer counted"
        );
        drop(_busy);
        assert!(registry.admit().is_some(), "second is idle again");
    }
}
