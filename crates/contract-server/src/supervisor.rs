//! The contract server's sync listener under a supervisor: it closes the port while
//! a `refuse` fault is in force and binds the SAME port again when the rule goes,
//! every listener served by the product server's connection handling (so the cap
//! on open connections holds across re-binds), until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use opencode_sync_server::{DRAIN_TIMEOUT, SyncConnections, bind_listener, drain};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::state::{LabState, ListenerState};

/// Attempts (50 ms apart) to bind the sync port again after a `refuse`.
const REBIND_ATTEMPTS: u32 = 200;

/// What the supervisor needs to serve the sync port again after a `refuse`.
pub(crate) struct SyncListener {
    pub(crate) addr: SocketAddr,
    pub(crate) app: Router,
    /// One connection handling for every re-bind, so the cap holds across them.
    pub(crate) connections: SyncConnections,
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Refuse,
    Shutdown,
}

/// Serves the sync API, closing the port while a `refuse` rule is in force and
/// binding the same port again when it goes, until shutdown.
pub(crate) async fn supervise(state: Arc<LabState>, first: TcpListener, sync: SyncListener) {
    let addr = sync.addr;
    let mut next = Some(first);
    let mut serving: Vec<JoinHandle<()>> = Vec::new();
    let mut faults = state.faults.subscribe();
    let set_listening = |listening| {
        state.listener.send_replace(ListenerState {
            supervised: true,
            listening,
        });
    };
    set_listening(false);

    loop {
        let listener = match next.take() {
            Some(l) => l,
            None => match rebind(addr, &state).await {
                Some(l) => l,
                None => break,
            },
        };
        let (closed_tx, closed_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        serving.retain(|h| !h.is_finished());
        let connections = sync.connections.clone();
        let app = sync.app.clone();
        serving.push(tokio::spawn(async move {
            connections.serve(listener, app, closed_tx, stop_rx).await;
        }));
        set_listening(true);

        let stop = loop {
            if faults.borrow_and_update().refuse() {
                break Stop::Refuse;
            }
            tokio::select! {
                changed = faults.changed() => if changed.is_err() { break Stop::Shutdown },
                () = state.shutdown.wait() => break Stop::Shutdown,
            }
        };
        let _ = stop_tx.send(());
        // Resolves when the listener is dropped (and `closed_tx` with it).
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, closed_rx).await;
        set_listening(false);
        if stop == Stop::Shutdown {
            break;
        }

        let resume = loop {
            if !faults.borrow_and_update().refuse() {
                break true;
            }
            tokio::select! {
                changed = faults.changed() => if changed.is_err() { break false },
                () = state.shutdown.wait() => break false,
            }
        };
        if !resume {
            break;
        }
    }

    for task in serving {
        drain(task).await;
    }
    state.listener.send_replace(ListenerState::default());
}

/// Binds `addr` again, retrying while the old socket is still going away.
async fn rebind(addr: SocketAddr, state: &LabState) -> Option<TcpListener> {
    for _ in 0..REBIND_ATTEMPTS {
        if state.shutdown.is_triggered() {
            return None;
        }
        match bind_listener(addr) {
            Ok(l) => return Some(l),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    eprintln!(
        "opencode-sync-server: could not bind {addr} again after a refuse fault; the sync API stays down"
    );
    // Stay down until shutdown rather than spinning.
    state.shutdown.wait().await;
    None
}
