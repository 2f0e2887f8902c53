//! What every task of one contract server shares: the product server's admin
//! handle, the clock, the fault rules, the request log, the stop latch and whether
//! the sync port is open.

use std::sync::Arc;

use opencode_sync_server::{Admin, Clock, Shutdown};
use tokio::sync::watch;

use crate::clock::OffsetClock;
use crate::faults::Faults;
use crate::reqlog::RequestLog;

/// Whether the sync listener is currently accepting, as its supervisor reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListenerState {
    /// A supervisor is running (false before `run` and after it ends).
    pub(crate) supervised: bool,
    /// The sync port is bound and accepting.
    pub(crate) listening: bool,
}

/// Shared state of one contract server.
#[derive(Debug)]
pub(crate) struct LabState {
    pub(crate) admin: Admin,
    pub(crate) clock: Arc<OffsetClock>,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    pub(crate) shutdown: Shutdown,
    pub(crate) listener: watch::Sender<ListenerState>,
}

impl LabState {
    pub(crate) fn new(admin: Admin, clock: Arc<OffsetClock>) -> Self {
        Self {
            admin,
            clock,
            faults: Faults::default(),
            log: RequestLog::default(),
            shutdown: Shutdown::default(),
            listener: watch::Sender::new(ListenerState::default()),
        }
    }

    /// The server's now, in ms since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
