//! The server's keys and data from outside the HTTP API: what a server embedding
//! this one (the contract server of the tests) adds and revokes keys with and dumps
//! everything through. `opencode-sync serve` itself only checks keys at start.

use std::sync::Arc;

use serde_json::Value;

use crate::error::ServerError;
use crate::state::AppState;
use crate::store;

/// Keys and stored data of one server (cheap to clone). The blocking methods take
/// the database lock; from async code run them with `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct Admin {
    state: Arc<AppState>,
}

impl Admin {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// Adds a user with this API key (or re-activates a revoked key).
    pub fn add_key(&self, api_key: &str) -> Result<(), ServerError> {
        check_key(api_key)?;
        let conn = self.state.store.lock();
        store::add_key(&conn, api_key, self.state.now())
    }

    /// Revokes an API key: later requests with it get 401 `Invalid API key`.
    /// Returns whether the key was active.
    pub fn revoke_key(&self, api_key: &str) -> Result<bool, ServerError> {
        let conn = self.state.store.lock();
        store::revoke_key(&conn, api_key)
    }

    /// Everything stored: users with their sessions, messages and parts.
    pub fn dump(&self) -> Result<Value, ServerError> {
        let conn = self.state.store.lock();
        store::dump(&conn)
    }
}

/// A key OpenSync could have issued.
pub(crate) fn check_key(key: &str) -> Result<(), ServerError> {
    let ok = key.len() > 4
        && key.len() <= 512
        && key.starts_with("osk_")
        && key.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ServerError::InvalidApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_look_like_opensync_keys() {
        assert!(check_key("osk_abc123").is_ok());
        assert!(check_key("osk_").is_err());
        assert!(check_key("sk_abc").is_err());
        assert!(check_key("osk_a b").is_err());
    }
}
