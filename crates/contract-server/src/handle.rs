//! A contract server on its own thread and tokio runtime, for tests (and tools) that are
//! not async themselves: start it, talk to `url()`, drive faults, dump, drop.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use opencode_sync_server::ServerError;

use crate::control::Controller;
use crate::error::ContractError;
use crate::faults::Fault;
use crate::options::ContractOptions;
use crate::reqlog::RequestRecord;
use crate::server::ContractServer;

/// A running server. Dropping it stops the server and waits (bounded) for it.
#[derive(Debug)]
pub struct ServerHandle {
    controller: Controller,
    url: String,
    control_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

type Ready = Result<(String, Option<String>, Controller), ContractError>;

impl ServerHandle {
    /// Starts a server on a new thread; returns once it accepts connections.
    pub fn start(opts: impl Into<ContractOptions>) -> Result<Self, ContractError> {
        let opts = opts.into();
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("opencode-sync-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("opencode-sync-server-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ServerError::Runtime(e.to_string()).into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let server = match ContractServer::bind(opts).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((
                        server.url(),
                        server.control_url(),
                        server.controller(),
                    )));
                    let _ = server
                        .run(async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(ServerError::Io)?;
        let (url, control_url, controller) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(ServerError::Runtime(
                    "the server thread ended before it started".into(),
                )
                .into());
            }
        };
        Ok(Self {
            controller,
            url,
            control_url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` of the sync API.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `http://127.0.0.1:PORT` of the control listener, if it was enabled.
    pub fn control_url(&self) -> Option<String> {
        self.control_url.clone()
    }

    /// In-process control, to hand to other threads or async code.
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// Replaces the fault rules; see [`Controller::set_faults`].
    pub fn set_faults(&self, rules: Vec<Fault>) -> Result<(), ContractError> {
        self.controller.set_faults(rules)
    }

    /// Removes every fault rule; see [`Controller::clear_faults`].
    pub fn clear_faults(&self) -> Result<(), ContractError> {
        self.controller.clear_faults()
    }

    /// Adds a user with this key (or re-activates it).
    pub fn add_key(&self, api_key: &str) -> Result<(), ContractError> {
        self.controller.add_key(api_key)
    }

    /// Revokes a key; returns whether it was active.
    pub fn revoke_key(&self, api_key: &str) -> Result<bool, ContractError> {
        self.controller.revoke_key(api_key)
    }

    /// Everything stored plus the request log, as `GET /control/dump`.
    pub fn dump(&self) -> Result<Value, ContractError> {
        self.controller.dump()
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.controller.requests()
    }

    /// Moves the server clock by `ms`; returns the new now.
    pub fn advance_clock(&self, ms: i64) -> i64 {
        self.controller.advance_clock(ms)
    }

    /// Stops the server and waits for it (also done on drop).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
