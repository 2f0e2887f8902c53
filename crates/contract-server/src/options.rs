//! How to start a contract server: the product server's options plus the control
//! listener and the clock's initial offset.

use std::net::{Ipv4Addr, SocketAddr};

use opencode_sync_server::{ServerError, ServerOptions, is_loopback};

use crate::error::ContractError;

/// The product server's [`ServerOptions`] plus what only tests use. A plain
/// `ServerOptions` converts into these with the control listener off.
#[derive(Debug, Clone)]
pub struct ContractOptions {
    /// The server itself (its `clock` is replaced by the contract server's).
    pub server: ServerOptions,
    /// Whether to open the HTTP control listener (`/control/*`).
    pub control: bool,
    /// Address of the control listener (port 0 picks a free port). It has no
    /// authentication: anything but loopback needs `server.allow_remote`.
    pub control_bind: SocketAddr,
    /// Initial offset of the server clock in milliseconds (see `advance_clock`).
    pub clock_offset_ms: i64,
}

impl From<ServerOptions> for ContractOptions {
    fn from(server: ServerOptions) -> Self {
        Self {
            server,
            control: false,
            control_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            clock_offset_ms: 0,
        }
    }
}

impl Default for ContractOptions {
    fn default() -> Self {
        ServerOptions::default().into()
    }
}

impl ContractOptions {
    /// These options with the control listener on.
    #[must_use]
    pub fn with_control(mut self) -> Self {
        self.control = true;
        self
    }

    /// The product server's check, and the control listener only on loopback
    /// unless `allow_remote` is set.
    pub fn check_bind(&self) -> Result<(), ContractError> {
        self.server.check_bind()?;
        if self.control && !self.server.allow_remote && !is_loopback(&self.control_bind) {
            return Err(ServerError::RemoteBindRefused {
                addr: self.control_bind,
            }
            .into());
        }
        Ok(())
    }
}

/// `ServerOptions::default().with_api_key(KEY).with_control()`: the control
/// listener on, from the product server's options.
pub trait WithControl {
    /// These options, as contract server options with the control listener on.
    fn with_control(self) -> ContractOptions;
}

impl WithControl for ServerOptions {
    fn with_control(self) -> ContractOptions {
        ContractOptions::from(self).with_control()
    }
}
