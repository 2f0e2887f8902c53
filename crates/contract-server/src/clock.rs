//! The contract server's notion of "now": the wall clock shifted by an adjustable
//! offset.
//!
//! The dedup windows of the real backend (10 s for sessions, 5 s for messages)
//! are what clients must be tested against, and tests must not sleep through
//! them: advancing the offset moves every timestamp the server takes
//! (`createdAt`, `updatedAt`, the windows, the request log) at once. The product
//! server takes this clock through `ServerOptions::clock`.

use std::sync::atomic::{AtomicI64, Ordering};

use opencode_sync_server::{Clock, wall_clock_ms};

/// Wall clock plus an offset in milliseconds.
#[derive(Debug, Default)]
pub(crate) struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub(crate) fn new(offset_ms: i64) -> Self {
        Self {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// Moves the clock forward (or back, with a negative value); returns the new now.
    pub(crate) fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
        self.now_ms()
    }

    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        wall_clock_ms().saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_by_the_offset() {
        let clock = OffsetClock::new(0);
        let before = clock.now_ms();
        let after = clock.advance(10_001);
        assert!(after - before >= 10_001, "{before} -> {after}");
        assert_eq!(clock.offset_ms(), 10_001);
    }
}
