//! Reading and writing the credentials file. Writes are atomic (a temporary file in the
//! same directory, synced, then renamed over the old one) so a crash never leaves half a
//! file, and the file is created mode 0600 inside a 0700 directory because it holds a
//! secret.

use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};
use opencode_sync_core::config::ConfigFile;
use opencode_sync_core::paths;

use crate::fsutil::write_private_atomically;
use crate::process_env::ProcessEnv;

/// A config file holds a URL, a key and a few options: kilobytes.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The credentials file and what it holds.
#[derive(Debug)]
pub struct ConfigStore {
    pub path: PathBuf,
}

impl ConfigStore {
    /// The store at the standard location.
    pub fn locate() -> Result<Self> {
        Ok(Self {
            path: paths::config_file(&ProcessEnv)?,
        })
    }

    /// The file's contents; `None` when it does not exist.
    pub fn load(&self) -> Result<Option<ConfigFile>> {
        // Not a FIFO or a device (reading one would block or never end), not huge.
        match fs::metadata(&self.path) {
            Ok(meta) if !meta.is_file() => {
                anyhow::bail!("{} is not a regular file", self.path.display())
            }
            Ok(meta) if meta.len() > MAX_CONFIG_BYTES => anyhow::bail!(
                "{} is {} bytes: too large for a config file",
                self.path.display(),
                meta.len()
            ),
            _ => {}
        }
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        ConfigFile::from_json(&text)
            .map(Some)
            .with_context(|| format!("{} is not a valid config file", self.path.display()))
    }

    /// Loads for a rewrite. A corrupt file is moved aside (never deleted) so the user
    /// keeps whatever was in it, and the rewrite starts from an empty config.
    pub fn load_for_update(&self) -> Result<(ConfigFile, Option<PathBuf>)> {
        match self.load() {
            Ok(cfg) => Ok((cfg.unwrap_or_default(), None)),
            Err(err) if self.path.exists() && err.downcast_ref::<io::Error>().is_none() => {
                let aside = self.path.with_extension("json.corrupt");
                fs::rename(&self.path, &aside).with_context(|| {
                    format!("cannot move the unreadable {} aside", self.path.display())
                })?;
                Ok((ConfigFile::default(), Some(aside)))
            }
            Err(err) => Err(err),
        }
    }

    /// Writes the file atomically with owner-only permissions.
    pub fn save(&self, cfg: &ConfigFile) -> Result<()> {
        write_private_atomically(&self.path, cfg.to_json().as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Deletes the file; `false` when it was not there.
    pub fn remove(&self) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", self.path.display())),
        }
    }
}
