//! Binding and running the product server inside a tokio runtime: one sync
//! listener, its connections bounded by [`ConnectionLimits`], stopped by one
//! shutdown future. A server that embeds this one (the contract server of the
//! tests, which closes and re-binds the port and puts its own layers in front of the
//! API) takes the parts with [`Server::router_with`], [`Server::admin`] and
//! [`Server::into_parts`].

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::{Admin, check_key};
use crate::api;
use crate::clock::{Clock, SystemClock};
use crate::conn_limits::{self, ConnectionLimits, ConnectionRegistry};
use crate::connection;
use crate::error::ServerError;
use crate::state::AppState;
use crate::store::{self, Store};

/// How long a stopping server waits for in-flight requests before cutting them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a server. `ServerOptions::default()` is an in-memory server on
/// `127.0.0.1:<any port>` with no users, on the wall clock.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address of the sync API (port 0 picks a free port).
    pub bind: SocketAddr,
    /// SQLite file to keep data in across restarts; `None` keeps it in memory.
    pub db_path: Option<PathBuf>,
    /// API keys (`osk_...`) to create users for at start.
    pub api_keys: Vec<String>,
    /// Where "now" comes from; the wall clock unless a server embedding this one
    /// (the contract server) moves time.
    pub clock: Arc<dyn Clock>,
    /// Allow `bind` on an address other than loopback, i.e. serving other
    /// machines. Off by default: binding elsewhere then fails with
    /// [`ServerError::RemoteBindRefused`]. Every sync and read route needs an
    /// API key either way.
    pub allow_remote: bool,
    /// An API key (a user is created for it) whose data the read routes
    /// (`/api/*`) answer with when a request carries no `Authorization`
    /// header: reads without a key, for a browser on this machine
    /// (`opencode-sync serve`). Only for a loopback `bind` (else
    /// [`ServerError::OpenReadsBeyondLoopback`]), and only for requests
    /// addressed to a loopback host (`Host: 127.0.0.1:PORT`, `localhost`,
    /// `[::1]`) that are not cross-origin (no `Origin`, or `http://` + that
    /// host; `Sec-Fetch-Site`, when sent, `same-origin` or `none`), so other
    /// web pages and DNS rebinding never read the data. Sync routes always
    /// need the key.
    pub open_reads: Option<String>,
    /// The server has one owner (`opencode-sync serve`): when its first API key is new
    /// and the database holds exactly one user, that user takes the key, so the sessions
    /// stored under a key that was lost or deleted stay the owner's.
    pub sole_owner: bool,
    /// Limits on the sync listener's connections: how long a request head, a
    /// body and a stalled response write may take, and how many connections
    /// may be open. The default is the production values.
    pub limits: ConnectionLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            bind: loopback,
            db_path: None,
            api_keys: Vec::new(),
            clock: Arc::new(SystemClock),
            allow_remote: false,
            open_reads: None,
            sole_owner: false,
            limits: ConnectionLimits::default(),
        }
    }
}

impl ServerOptions {
    /// These options plus one API key.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// These options listening on `bind`, which may be a non-loopback address
    /// (sets [`allow_remote`](Self::allow_remote)).
    #[must_use]
    pub fn with_remote_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self.allow_remote = true;
        self
    }

    /// These options answering reads without a key with this key's data
    /// (see [`open_reads`](Self::open_reads)).
    #[must_use]
    pub fn with_open_reads(mut self, key: impl Into<String>) -> Self {
        self.open_reads = Some(key.into());
        self
    }

    /// Fails unless the sync API is on loopback or `allow_remote` is set, and,
    /// with [`open_reads`](Self::open_reads), unless it is on loopback.
    pub fn check_bind(&self) -> Result<(), ServerError> {
        if self.open_reads.is_some() && !is_loopback(&self.bind) {
            return Err(ServerError::OpenReadsBeyondLoopback { addr: self.bind });
        }
        if self.allow_remote || is_loopback(&self.bind) {
            return Ok(());
        }
        Err(ServerError::RemoteBindRefused { addr: self.bind })
    }

    /// These options keeping data in this SQLite file.
    #[must_use]
    pub fn with_db(mut self, path: impl Into<PathBuf>) -> Self {
        self.db_path = Some(path.into());
        self
    }
}

/// A bound, not yet running server. Must be created and run inside a tokio
/// runtime (with the `net` and `time` drivers enabled).
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    key_handed_over: bool,
    sync_listener: TcpListener,
    sync_addr: SocketAddr,
    connections: SyncConnections,
}

impl Server {
    /// Opens the database, creates the users and binds the sync listener. Raises
    /// the process's soft open-file limit to its hard limit where allowed.
    pub async fn bind(opts: ServerOptions) -> Result<Self, ServerError> {
        opts.check_bind()?;
        for key in opts.api_keys.iter().chain(&opts.open_reads) {
            check_key(key)?;
        }
        let db_path = opts.db_path.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(db_path.as_deref()))
            .await
            .map_err(|e| ServerError::Runtime(e.to_string()))??;
        let mut state = AppState::new(store, opts.clock);
        let mut key_handed_over = false;
        {
            let conn = state.store.lock();
            if let (true, Some(key)) = (opts.sole_owner, opts.api_keys.first()) {
                key_handed_over = store::hand_sole_user_to(&conn, key)?;
            }
            for key in opts.api_keys.iter().chain(&opts.open_reads) {
                store::add_key(&conn, key, state.now())?;
            }
            state.open_reads_user = match &opts.open_reads {
                Some(key) => store::user_for_key(&conn, key)?,
                None => None,
            };
        }
        let state = Arc::new(state);
        let fd_limit = conn_limits::raise_fd_limit();
        let connections = SyncConnections {
            registry: ConnectionRegistry::new(opts.limits.effective_max_connections(fd_limit)),
            limits: opts.limits,
        };
        let sync_listener = bind_listener(opts.bind)?;
        let sync_addr = sync_listener.local_addr()?;
        Ok(Self {
            state,
            key_handed_over,
            sync_listener,
            sync_addr,
            connections,
        })
    }

    /// The cap on open sync connections in force: `limits.max_connections`,
    /// lowered to a quarter of the open-file limit when that is smaller.
    pub fn max_connections(&self) -> usize {
        self.connections.registry.max()
    }

    /// Whether the sole owner's sessions were handed to a new key at start (see
    /// [`ServerOptions::sole_owner`]).
    pub fn key_handed_over(&self) -> bool {
        self.key_handed_over
    }

    /// Address of the sync API.
    pub fn local_addr(&self) -> SocketAddr {
        self.sync_addr
    }

    /// `http://HOST:PORT` of the sync API.
    pub fn url(&self) -> String {
        format!("http://{}", self.sync_addr)
    }

    /// The keys and the stored data, for a server embedding this one.
    pub fn admin(&self) -> Admin {
        Admin::new(Arc::clone(&self.state))
    }

    /// Everything the sync listener answers (the dashboard pages and the OpenSync
    /// API), with `wrap_api` applied to the API routes alone: where a server
    /// embedding this one puts its layers (the contract server's fault injection
    /// and request log). The dashboard's own pages are never wrapped.
    pub fn router_with(&self, wrap_api: impl FnOnce(Router) -> Router) -> Router {
        let api = wrap_api(api::router(Arc::clone(&self.state)));
        crate::dashboard::router(Arc::clone(&self.state), api)
    }

    /// The bound sync listener and its connection handling, for a server that
    /// serves them its own way (the contract server re-binds the port for its
    /// `refuse` fault).
    pub fn into_parts(self) -> (TcpListener, SyncConnections) {
        (self.sync_listener, self.connections)
    }

    /// Serves until `shutdown` completes. Then it stops accepting, lets requests
    /// in progress finish (up to [`DRAIN_TIMEOUT`]) and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let app = self.router_with(|api| api);
        let (listener, connections) = self.into_parts();
        let (closed_tx, _closed_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let serving = tokio::spawn(async move {
            connections.serve(listener, app, closed_tx, stop_rx).await;
        });
        shutdown.await;
        let _ = stop_tx.send(());
        drain(serving).await;
        Ok(())
    }
}

/// How the sync listener serves connections: the time limits and one registry of
/// open connections, so the cap holds across every listener that shares it.
#[derive(Debug, Clone)]
pub struct SyncConnections {
    registry: Arc<ConnectionRegistry>,
    limits: ConnectionLimits,
}

impl SyncConnections {
    /// Accepts on `listener` until `stop` fires, serving each connection with
    /// `app` under the limits. Then it closes the listener (dropping `closed`
    /// tells the caller the port is free), asks every connection to close once
    /// its request in progress is answered, and returns when all are closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        closed: oneshot::Sender<()>,
        stop: oneshot::Receiver<()>,
    ) {
        connection::serve_listener(
            listener,
            closed,
            stop,
            app,
            Arc::clone(&self.registry),
            self.limits,
        )
        .await;
    }
}

/// Whether `addr` only accepts connections from this machine
/// (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Binds, serves until `shutdown` completes, and returns: the entry point for
/// running the server inside an existing tokio runtime (`opencode-sync serve`).
pub async fn serve<F>(opts: ServerOptions, shutdown: F) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    Server::bind(opts).await?.run(shutdown).await
}

/// A listening socket with `SO_REUSEADDR`, so the same port can be bound again
/// right after it was closed (a restarted server, or the contract server's
/// `refuse` fault going away).
pub fn bind_listener(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind_err = |source| ServerError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    socket.listen(1024).map_err(bind_err)
}

/// Waits for a serving task to finish, cutting it off after [`DRAIN_TIMEOUT`].
pub async fn drain(task: JoinHandle<()>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
        abort.abort();
    }
}
