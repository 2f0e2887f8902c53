//! The one error type of the library, so callers (`opencode-sync serve`, the
//! contract server) can report start-up failures without knowing which layer
//! failed.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong starting or stopping the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound (port in use, permission, bad address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A listener was asked for on a non-loopback address without
    /// `ServerOptions::allow_remote`.
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, so other machines could \
         connect; set allow_remote (`--allow-remote`) to serve them (every sync and read route \
         still needs an API key)"
    )]
    RemoteBindRefused {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// Reads without a key (`ServerOptions::open_reads`) were asked for on a
    /// listener other machines can reach.
    #[error(
        "refusing to answer reads without an API key on {addr}: it is not a loopback address; \
         beyond loopback every read needs the key"
    )]
    OpenReadsBeyondLoopback {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// The SQLite database file could not be opened or initialised.
    #[error("cannot open database {path}: {source}")]
    OpenDatabase {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A query against the store failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// An API key that OpenSync would never issue (it must start with `osk_`).
    /// The key itself is never part of the message.
    #[error("API keys must start with `osk_` and contain no whitespace")]
    InvalidApiKey,
    /// The server thread or runtime could not be started or died.
    #[error("server runtime failed: {0}")]
    Runtime(String),
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
