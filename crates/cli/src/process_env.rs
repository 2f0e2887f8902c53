//! The real process environment, as the core's [`Environment`] sees it.

use std::path::PathBuf;

use opencode_sync_core::paths::Environment;

/// Reads `std::env` and the platform's home directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        etcetera::home_dir().ok()
    }
}
