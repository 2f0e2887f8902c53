//! SIGINT (Ctrl-C) and SIGTERM for a server run as a process: the contract server's
//! binary and `opencode-sync serve` stop on the same signals, the same way.

/// The stop signals, installed up front: install them before telling anyone the server
/// is ready, so a process that signals as soon as it reads that is never too early.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Completes on the first signal.
    #[cfg(unix)]
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Completes on the first Ctrl-C (never, if it cannot be watched).
    #[cfg(not(unix))]
    pub async fn recv(self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
