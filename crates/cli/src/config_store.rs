//! Reading and writing the credentials file. Writes are atomic (a temporary file in the
//! same directory, synced, then renamed over the old one) so a crash never leaves half a
//! file, and the file is created mode 0600 inside a 0700 directory because it holds a
//! secret.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use opencode_sync_core::config::ConfigFile;
use opencode_sync_core::paths;

use crate::process_env::ProcessEnv;

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

/// Creates `path`'s directory (0700 when new), then replaces `path` with `bytes` through
/// a 0600 temporary file in the same directory.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no parent directory"))?;
    create_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    // tempfile creates files 0600 on Unix already; say so explicitly for clarity.
    set_mode(tmp.path(), 0o600)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
