//! Reading and writing the credentials file. Reads are bounded (see
//! [`crate::fsutil::read_text_file`]: a FIFO or a device never blocks, a huge file is
//! refused). Writes are atomic (a temporary file in the same directory, synced, then
//! renamed over the old one) so a crash never leaves half a file, and the file is
//! created mode 0600 inside a 0700 directory because it holds a secret: a directory left
//! wider is tightened on every write, and a file found wider is warned about
//! ([`ConfigStore::permission_warning`]) by the commands that read it.

use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};
use opencode_sync_core::config::{ConfigError, ConfigFile};
use opencode_sync_core::paths;

use crate::fsutil::{CONFIG_LIMIT, ReadError, read_text_file, write_private_atomically};
use crate::process_env::ProcessEnv;

/// How many `.corrupt` backups of the config file are kept before a rewrite refuses.
const MAX_BACKUPS: usize = 1000;

/// The credentials file and what it holds.
#[derive(Debug)]
pub struct ConfigStore {
    pub path: PathBuf,
}

/// Why the credentials file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The cause is part of the message (anyhow's `{:#}` would print a `source` twice).
    #[error("{} is not a valid config file: {error}", path.display())]
    Invalid { path: PathBuf, error: ConfigError },
}

impl LoadError {
    /// Whether the file is there but what it holds is unusable (not JSON, not text, too
    /// large), so a rewrite may move it aside; not when it is no file at all (a FIFO, a
    /// device) or cannot be read (permissions), which the user has to sort out.
    pub fn is_about_contents(&self) -> bool {
        match self {
            Self::Read(e) => e.is_about_contents(),
            Self::Invalid { .. } => true,
        }
    }
}

/// A config file that could not be used, kept under another name for the user.
#[derive(Debug)]
pub struct SetAside {
    /// Where it is now.
    pub path: PathBuf,
    /// Why it was set aside (names the file, never shows its contents).
    pub reason: String,
}

impl ConfigStore {
    /// The store at the standard location.
    pub fn locate() -> Result<Self> {
        Ok(Self {
            path: paths::config_file(&ProcessEnv)?,
        })
    }

    /// The file's contents; `None` when it does not exist.
    pub fn load(&self) -> Result<Option<ConfigFile>, LoadError> {
        let Some(text) = read_text_file(&self.path, CONFIG_LIMIT)? else {
            return Ok(None);
        };
        ConfigFile::from_json(&text)
            .map(Some)
            .map_err(|error| LoadError::Invalid {
                path: self.path.clone(),
                error,
            })
    }

    /// Loads for a rewrite. A file whose contents are unusable is moved aside (never
    /// deleted, never over an earlier one: `config.json.corrupt`, then `.corrupt.1`, ...)
    /// so the user keeps whatever was in it, and the rewrite starts from an empty config.
    pub fn load_for_update(&self) -> Result<(ConfigFile, Option<SetAside>)> {
        match self.load() {
            Ok(cfg) => Ok((cfg.unwrap_or_default(), None)),
            Err(err) if err.is_about_contents() => {
                let aside = self
                    .free_backup_path()
                    .with_context(|| format!("{err}; every name for a backup of it is taken"))?;
                fs::rename(&self.path, &aside).with_context(|| {
                    format!("{err}; cannot move it aside to {}", aside.display())
                })?;
                Ok((
                    ConfigFile::default(),
                    Some(SetAside {
                        path: aside,
                        reason: err.to_string(),
                    }),
                ))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The first of `config.json.corrupt`, `config.json.corrupt.1`, ... that is free.
    fn free_backup_path(&self) -> Option<PathBuf> {
        let first = self.path.with_extension("json.corrupt");
        std::iter::once(first.clone())
            .chain((1..MAX_BACKUPS).map(|n| {
                let mut name = first.clone().into_os_string();
                name.push(format!(".{n}"));
                PathBuf::from(name)
            }))
            .find(|p| fs::symlink_metadata(p).is_err())
    }

    /// Writes the file atomically with owner-only permissions, and tightens its directory
    /// to 0700 when it is wider (saying so).
    pub fn save(&self, cfg: &ConfigFile) -> Result<()> {
        write_private_atomically(&self.path, cfg.to_json().as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.tighten_dir();
        Ok(())
    }

    /// Sets the directory to 0700 when group or others have any access to it.
    fn tighten_dir(&self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;

            use crate::ui;
            let Some(dir) = self.path.parent() else {
                return;
            };
            let Ok(meta) = fs::metadata(dir) else { return };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 == 0 {
                return;
            }
            match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
                Ok(()) => ui::warn(&format!(
                    "{} was mode {mode:04o}; set it to 0700, as it holds your API key",
                    dir.display()
                )),
                Err(e) => ui::warn(&format!(
                    "{} is mode {mode:04o} and could not be set to 0700 ({e}): run `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                )),
            }
        }
    }

    /// A warning with the fix when the file's mode is wider than 0600 (others on the
    /// machine may read the key); `None` when it is private or not there.
    pub fn permission_warning(&self) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&self.path).ok()?;
            let mode = meta.permissions().mode() & 0o777;
            (mode & !0o600 != 0).then(|| {
                format!(
                    "{} has mode {mode:04o}, wider than 0600: other users of this machine may read the API key in it; run `chmod 600 {}`",
                    self.path.display(),
                    self.path.display()
                )
            })
        }
        #[cfg(not(unix))]
        {
            None
        }
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
