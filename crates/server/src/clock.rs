//! Where the server takes "now" from, so a server embedding this one (the contract
//! server of the tests) can move time without the product carrying a clock offset:
//! `opencode-sync serve` reads the wall clock and nothing else.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch. Every timestamp
/// the server takes (`createdAt`, `updatedAt`, both dedup windows, `/health`) comes
/// from it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, as the server sees it.
    fn now_ms(&self) -> i64;
}

/// The wall clock: what the product server uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        wall_clock_ms()
    }
}

/// Milliseconds since the Unix epoch by the system clock (0 before it).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
