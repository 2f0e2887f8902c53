//! What every request of one server shares: the store, the clock and the user whose
//! data keyless local reads see.

use std::sync::Arc;

use crate::clock::Clock;
use crate::store::Store;

/// Shared state of one server.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    /// The user whose data keyless local reads see (`ServerOptions::open_reads`).
    pub(crate) open_reads_user: Option<i64>,
}

impl AppState {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
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
