//! What every task of one server shares: the store, the clock, the fault rules,
//! the request log, the stop signal and whether the sync port is open.

use tokio::sync::watch;

use crate::clock::Clock;
use crate::faults::Faults;
use crate::reqlog::RequestLog;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Whether the sync listener is currently accepting, as its supervisor reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListenerState {
    /// A supervisor is running (false before `run` and after it ends).
    pub(crate) supervised: bool,
    /// The sync port is bound and accepting.
    pub(crate) listening: bool,
}

/// Shared state of one server.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) clock: Clock,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    pub(crate) shutdown: Shutdown,
    pub(crate) listener: watch::Sender<ListenerState>,
    /// The user whose data keyless local reads see (`ServerOptions::open_reads`).
    pub(crate) open_reads_user: Option<i64>,
}

impl AppState {
    pub(crate) fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            clock,
            faults: Faults::default(),
            log: RequestLog::default(),
            shutdown: Shutdown::default(),
            listener: watch::Sender::new(ListenerState::default()),
            open_reads_user: None,
        }
    }

    /// Timestamps are float64 milliseconds, as in Convex.
    pub(crate) fn now(&self) -> f64 {
        // Millisecond timestamps are far below 2^53: exact.
        #[allow(clippy::cast_precision_loss)]
        let now = self.clock.now_ms() as f64;
        now
    }
}
