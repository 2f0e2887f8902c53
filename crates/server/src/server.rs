//! Binding and running a server inside a tokio runtime: the sync listener (under
//! a supervisor that closes and re-binds the same port for the `refuse` fault,
//! its connections bounded by [`ConnectionLimits`]) and the optional control
//! listener, both stopped by one shutdown future without hanging on held
//! requests.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::clock::Clock;
use crate::conn_limits::{self, ConnectionLimits, ConnectionRegistry};
use crate::connection;
use crate::control::{self, Controller};
use crate::error::ServerError;
use crate::state::{AppState, ListenerState};
use crate::store::{self, Store};

/// How long a stopping server waits for in-flight requests before cutting them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts (50 ms apart) to bind the sync port again after a `refuse`.
const REBIND_ATTEMPTS: u32 = 200;

/// How to start a server. `ServerOptions::default()` is an in-memory server on
/// `127.0.0.1:<any port>` with no users and no control listener.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address of the sync API (port 0 picks a free port).
    pub bind: SocketAddr,
    /// SQLite file to keep data in across restarts; `None` keeps it in memory.
    pub db_path: Option<PathBuf>,
    /// API keys (`osk_...`) to create users for at start.
    pub api_keys: Vec<String>,
    /// Whether to open the HTTP control listener (`/control/*`).
    pub control: bool,
    /// Address of the control listener (port 0 picks a free port).
    pub control_bind: SocketAddr,
    /// Initial offset of the server clock in milliseconds (see `advance_clock`).
    pub clock_offset_ms: i64,
    /// Allow `bind` / `control_bind` on an address other than loopback, i.e.
    /// serving other machines. Off by default: binding elsewhere then fails
    /// with [`ServerError::RemoteBindRefused`]. Every sync and read route needs
    /// an API key either way; the control listener never has authentication.
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
            control: false,
            control_bind: loopback,
            clock_offset_ms: 0,
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

    /// These options with the control listener on.
    #[must_use]
    pub fn with_control(mut self) -> Self {
        self.control = true;
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

    /// Fails unless both listeners are on loopback or `allow_remote` is set,
    /// and, with [`open_reads`](Self::open_reads), unless the sync API is on
    /// loopback.
    pub fn check_bind(&self) -> Result<(), ServerError> {
        if self.open_reads.is_some() && !is_loopback(&self.bind) {
            return Err(ServerError::OpenReadsBeyondLoopback { addr: self.bind });
        }
        if self.allow_remote {
            return Ok(());
        }
        let mut addrs = vec![self.bind];
        if self.control {
            addrs.push(self.control_bind);
        }
        match addrs.into_iter().find(|a| !is_loopback(a)) {
            Some(addr) => Err(ServerError::RemoteBindRefused { addr }),
            None => Ok(()),
        }
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
    control_listener: Option<TcpListener>,
    control_addr: Option<SocketAddr>,
    limits: ConnectionLimits,
    connections: Arc<ConnectionRegistry>,
}

impl Server {
    /// Opens the database, creates the users and binds the listeners. Raises
    /// the process's soft open-file limit to its hard limit where allowed.
    pub async fn bind(opts: ServerOptions) -> Result<Self, ServerError> {
        opts.check_bind()?;
        for key in opts.api_keys.iter().chain(&opts.open_reads) {
            control::check_key(key)?;
        }
        let db_path = opts.db_path.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(db_path.as_deref()))
            .await
            .map_err(|e| ServerError::Runtime(e.to_string()))??;
        let mut state = AppState::new(store, Clock::new(opts.clock_offset_ms));
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
        let connections = ConnectionRegistry::new(opts.limits.effective_max_connections(fd_limit));
        let sync_listener = bind_tcp(opts.bind)?;
        let sync_addr = sync_listener.local_addr()?;
        let (control_listener, control_addr) = if opts.control {
            let l = bind_tcp(opts.control_bind)?;
            let addr = l.local_addr()?;
            (Some(l), Some(addr))
        } else {
            (None, None)
        };
        Ok(Self {
            state,
            key_handed_over,
            sync_listener,
            sync_addr,
            control_listener,
            control_addr,
            limits: opts.limits,
            connections,
        })
    }

    /// The cap on open sync connections in force: `limits.max_connections`,
    /// lowered to a quarter of the open-file limit when that is smaller.
    pub fn max_connections(&self) -> usize {
        self.connections.max()
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
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServerError>
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

        let sync = SyncListener {
            addr: self.sync_addr,
            limits: self.limits,
            connections: self.connections,
        };
        supervise(Arc::clone(&state), self.sync_listener, sync).await;

        if let Some(task) = control_task {
            drain(task).await;
        }
        stopper.abort();
        Ok(())
    }
}

/// Whether `addr` only accepts connections from this machine
/// (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`).
pub(crate) fn is_loopback(addr: &SocketAddr) -> bool {
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
/// right after it was closed.
fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ServerError> {
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

/// What the supervisor needs to serve the sync port again after a `refuse`.
struct SyncListener {
    addr: SocketAddr,
    limits: ConnectionLimits,
    /// One registry for every re-bind, so the cap holds across them.
    connections: Arc<ConnectionRegistry>,
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Refuse,
    Shutdown,
}

/// Serves the sync API, closing the port while a `refuse` rule is in force and
/// binding the same port again when it goes, until shutdown.
async fn supervise(state: Arc<AppState>, first: TcpListener, sync: SyncListener) {
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
        let app = crate::dashboard::router(Arc::clone(&state), api::router(Arc::clone(&state)));
        serving.retain(|h| !h.is_finished());
        serving.push(tokio::spawn(connection::serve_listener(
            listener,
            closed_tx,
            stop_rx,
            app,
            Arc::clone(&sync.connections),
            sync.limits,
        )));
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
async fn rebind(addr: SocketAddr, state: &AppState) -> Option<TcpListener> {
    for _ in 0..REBIND_ATTEMPTS {
        if state.shutdown.is_triggered() {
            return None;
        }
        match bind_tcp(addr) {
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

/// Waits for a serving task to finish, cutting it off after the drain timeout.
async fn drain(task: JoinHandle<()>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
        abort.abort();
    }
}
