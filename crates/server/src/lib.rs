//! An OpenSync-compatible sync server over SQLite.
//!
//! It answers the sync API of OpenSync (`/health`, `/sync/session`,
//! `/sync/message`, `/sync/batch`, `/sync/sessions/list`) and its read API
//! (`/api/sessions`, `/api/sessions/get`, `/api/search`, `/api/stats`) with the same auth,
//! validators, limits, upsert rules and dedup windows as the strictest deployed
//! version of the real Convex backend, so a client that works against it works
//! against the real thing. It is the contract server of the project's tests
//! (in-process through [`ServerHandle`], or as the `opencode-sync-server`
//! binary) and the core of a local `opencode-sync serve`.
//!
//! For tests it adds fault injection ([`Fault`]: refuse, status every n-th,
//! Retry-After, hang, slow), key management, an adjustable clock (to cross the
//! 5 s and 10 s dedup windows without sleeping), a request log and a full dump,
//! in-process through [`Controller`] and over HTTP on a separate control
//! listener (see the `control` module docs for the routes).
//!
//! ```no_run
//! use opencode_sync_server::{Fault, ServerHandle, ServerOptions};
//!
//! # fn main() -> Result<(), opencode_sync_server::ServerError> {
//! let server = ServerHandle::start(ServerOptions::default().with_api_key("osk_test"))?;
//! let base = server.url(); // http://127.0.0.1:PORT
//! server.set_faults(vec![Fault::status_retry_after(429, 3, 2)])?;
//! // ... run the client against `base` ...
//! let stored = server.dump()?;
//! # let _ = (base, stored);
//! # Ok(())
//! # }
//! ```

mod api;
mod clock;
mod conn_limits;
mod connection;
mod control;
mod convex;
mod dashboard;
mod error;
mod faults;
mod handle;
mod read;
mod reqlog;
mod server;
mod shutdown;
mod signals;
mod state;
mod store;
mod sync;

pub use conn_limits::{
    ConnectionLimits, DEFAULT_BODY_MIN_BYTES_PER_SEC, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESPONSE_WRITE_TIMEOUT,
};
pub use control::Controller;
pub use error::ServerError;
pub use faults::{DEFAULT_HANG_MAX_MS, Fault, HangFault, SlowFault, StatusFault};
pub use handle::ServerHandle;
pub use reqlog::RequestRecord;
pub use server::{Server, ServerOptions, serve};
pub use signals::StopSignals;
