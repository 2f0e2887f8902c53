//! The contract server of the project's tests: the product sync server
//! (`opencode-sync-server`, the server behind `opencode-sync serve`) with what only
//! tests need wrapped around it, so none of it is on the product's code path.
//!
//! - fault injection ([`Fault`]: refuse, status every n-th, Retry-After, hang, slow)
//!   and the request log, one layer in front of the product's API routes (`layers`);
//! - `refuse` closes and re-binds the sync port, under a supervisor (`supervisor`);
//! - an adjustable clock (to cross the 5 s and 10 s dedup windows without
//!   sleeping), handed to the product server as its clock (`clock`);
//! - key management and a full dump, in-process through [`Controller`] and over
//!   HTTP on a separate control listener (`control`, see its docs for the routes);
//! - [`ServerHandle`], a server on its own thread for synchronous tests, and the
//!   `opencode-sync-server` binary the end-to-end suites start.
//!
//! ```no_run
//! use opencode_sync_contract_server::{Fault, ServerHandle, ServerOptions, WithControl};
//!
//! # fn main() -> Result<(), opencode_sync_contract_server::ContractError> {
//! let server = ServerHandle::start(ServerOptions::default().with_api_key("osk_test").with_control())?;
//! let base = server.url(); // http://127.0.0.1:PORT
//! server.set_faults(vec![Fault::status_retry_after(429, 3, 2)])?;
//! // ... run the client against `base` ...
//! let stored = server.dump()?;
//! # let _ = (base, stored);
//! # Ok(())
//! # }
//! ```

mod clock;
mod control;
mod error;
mod faults;
mod handle;
mod layers;
mod options;
mod reqlog;
mod server;
mod state;
mod supervisor;

pub use control::Controller;
pub use error::ContractError;
pub use faults::{DEFAULT_HANG_MAX_MS, Fault, HangFault, SlowFault, StatusFault};
pub use handle::ServerHandle;
pub use options::{ContractOptions, WithControl};
pub use reqlog::RequestRecord;
pub use server::ContractServer;

// The product server's types the contract server's users need, so tests depend on
// this crate alone.
pub use opencode_sync_server::{
    ConnectionLimits, DEFAULT_BODY_MIN_BYTES_PER_SEC, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESPONSE_WRITE_TIMEOUT, Server,
    ServerError, ServerOptions,
};
