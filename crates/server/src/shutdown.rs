//! A stop latch shared by tasks that must all stop together, so that stopping
//! never hangs: a listener's connections close once their request in progress is
//! answered; the contract server also releases held requests with it.

use std::sync::Arc;

use tokio::sync::watch;

/// A latch: once triggered it stays triggered.
#[derive(Debug, Clone)]
pub struct Shutdown {
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
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once a stop was asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}
