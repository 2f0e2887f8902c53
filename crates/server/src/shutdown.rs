//! One stop signal shared by every task of a server, so that stopping never
//! hangs: listeners stop accepting, held (`hang`) and delayed (`slow`) requests
//! are released, and the supervisor knows not to re-bind.

use std::sync::Arc;

use tokio::sync::watch;

/// A latch: once triggered it stays triggered.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Shutdown {
    /// Asks everything to stop.
    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub(crate) fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once a stop was asked for.
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}
