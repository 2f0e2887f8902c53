//! An OpenSync-compatible sync server over SQLite: the server behind
//! `opencode-sync serve`.
//!
//! It answers the sync API of OpenSync (`/health`, `/sync/session`,
//! `/sync/message`, `/sync/batch`, `/sync/sessions/list`) and its read API
//! (`/api/sessions`, `/api/sessions/get`, `/api/search`, `/api/stats`) with the same auth,
//! validators, limits, upsert rules and dedup windows as the strictest deployed
//! version of the real Convex backend, so a client that works against it works
//! against the real thing, and serves a small dashboard at `/`.
//!
//! Fault injection, the control listener, the adjustable clock and the request log
//! the tests need are not here: the contract server (crate
//! `opencode-sync-contract-server`) embeds this one through [`Server::router_with`],
//! [`Server::admin`], [`Server::into_parts`] and [`ServerOptions::clock`].
//!
//! ```no_run
//! use opencode_sync_server::{ServerOptions, serve};
//!
//! # async fn run() -> Result<(), opencode_sync_server::ServerError> {
//! let opts = ServerOptions::default().with_api_key("osk_test");
//! serve(opts, async { /* until Ctrl-C */ }).await?;
//! # Ok(())
//! # }
//! ```

mod admin;
mod api;
mod clock;
mod conn_limits;
mod connection;
mod convex;
mod dashboard;
mod error;
mod read;
mod server;
mod shutdown;
mod signals;
mod state;
mod store;
mod sync;

pub use admin::Admin;
pub use api::cors_headers;
pub use clock::{Clock, SystemClock, wall_clock_ms};
pub use conn_limits::{
    ConnectionLimits, DEFAULT_BODY_MIN_BYTES_PER_SEC, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESPONSE_WRITE_TIMEOUT,
};
pub use error::ServerError;
pub use server::{
    DRAIN_TIMEOUT, Server, ServerOptions, SyncConnections, bind_listener, drain, is_loopback, serve,
};
pub use shutdown::Shutdown;
pub use signals::StopSignals;
