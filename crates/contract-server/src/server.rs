//! Binding and running a contract server inside a tokio runtime: the product
//! server (its clock replaced by the adjustable one, the fault and log layer in
//! front of its API), its sync listener under the `refuse` supervisor, and the
//! optional control listener, all stopped by one shutdown future without hanging
//! on held requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use opencode_sync_server::{Server, bind_listener, drain};
use tokio::net::TcpListener;

use crate::clock::OffsetClock;
use crate::control::{self, Controller};
use crate::error::ContractError;
use crate::layers::faults_and_log;
use crate::options::ContractOptions;
use crate::state::LabState;
use crate::supervisor::{SyncListener, supervise};

/// A bound, not yet running contract server. Must be created and run inside a
/// tokio runtime (with the `net` and `time` drivers enabled).
#[derive(Debug)]
pub struct ContractServer {
    state: Arc<LabState>,
    server: Server,
    control_listener: Option<TcpListener>,
    control_addr: Option<SocketAddr>,
}

impl ContractServer {
    /// Binds the product server on an adjustable clock, and the control listener
    /// when asked for.
    pub async fn bind(opts: impl Into<ContractOptions>) -> Result<Self, ContractError> {
        let mut opts = opts.into();
        opts.check_bind()?;
        let clock = Arc::new(OffsetClock::new(opts.clock_offset_ms));
        opts.server.clock = clock.clone();
        let server = Server::bind(opts.server).await?;
        let state = Arc::new(LabState::new(server.admin(), clock));
        let (control_listener, control_addr) = if opts.control {
            let l = bind_listener(opts.control_bind)?;
            let addr = l.local_addr()?;
            (Some(l), Some(addr))
        } else {
            (None, None)
        };
        Ok(Self {
            state,
            server,
            control_listener,
            control_addr,
        })
    }

    /// The cap on open sync connections in force (see `Server::max_connections`).
    pub fn max_connections(&self) -> usize {
        self.server.max_connections()
    }

    /// `http://HOST:PORT` of the sync API.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://HOST:PORT` of the control listener, if enabled.
    pub fn control_url(&self) -> Option<String> {
        self.control_addr.map(|a| format!("http://{a}"))
    }

    /// In-process control (faults, keys, clock, dump), usable while it runs.
    pub fn controller(&self) -> Controller {
        Controller::new(Arc::clone(&self.state))
    }

    /// Serves until `shutdown` completes. Then it stops accepting, releases held
    /// requests, waits up to 5 s for in-flight ones and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ContractError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.state;
        let stopper = {
            let stop = state.shutdown.clone();
            tokio::spawn(async move {
                shutdown.await;
                stop.trigger();
            })
        };
        let control_task = self.control_listener.map(|listener| {
            let app = control::router(Controller::new(Arc::clone(&state)));
            let stop = state.shutdown.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.wait().await })
                    .await;
            })
        });

        let layer_state = Arc::clone(&state);
        let app = self
            .server
            .router_with(|api| api.layer(from_fn_with_state(layer_state, faults_and_log)));
        let addr = self.server.local_addr();
        let (listener, connections) = self.server.into_parts();
        let sync = SyncListener {
            addr,
            app,
            connections,
        };
        supervise(Arc::clone(&state), listener, sync).await;

        if let Some(task) = control_task {
            drain(task).await;
        }
        stopper.abort();
        Ok(())
    }
}
