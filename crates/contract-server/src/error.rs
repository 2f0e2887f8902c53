//! The contract server's error: the product server's, plus what only test control
//! can get wrong (a fault rule, a listener that does not follow a rule in time).

use opencode_sync_server::ServerError;

/// Everything that can go wrong starting or controlling the contract server.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// Starting or running the product server failed (same message).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A fault rule that cannot be applied.
    #[error("invalid fault rule: {0}")]
    InvalidFault(String),
    /// The sync listener did not reach the state a fault change asked for in time
    /// (for example the port was taken by someone else while it was closed).
    #[error("the sync listener did not {0} in time")]
    ListenerTimeout(&'static str),
}

impl From<std::io::Error> for ContractError {
    fn from(e: std::io::Error) -> Self {
        Self::Server(ServerError::Io(e))
    }
}
