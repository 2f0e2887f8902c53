//! The files of the local OpenSync server, shared by `opencode-sync serve` (which runs
//! it) and `opencode-sync login --local` (which points the plugin at it), so both agree
//! on where it lives and on its API key without the key ever being typed or printed:
//! the data directory (`$XDG_DATA_HOME/opencode-sync`, 0700), the SQLite database in
//! it, and the server's own key, generated once from the operating system's CSPRNG and
//! kept in a 0600 file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use opencode_sync_core::ApiKey;
use opencode_sync_core::paths;

use crate::fsutil::{SizeLimit, create_private_dir, open_regular_for_append, read_text_file};
use crate::process_env::ProcessEnv;

/// The port `serve` listens on and `login --local` points at by default.
pub const DEFAULT_PORT: u16 = 7420;
/// The database file inside the data directory.
pub const DB_FILE: &str = "opensync.db";
/// The API key file inside the data directory.
pub const KEY_FILE: &str = "server-key";
/// Random characters after `osk_` (dashboard keys have 32).
const KEY_BODY_LEN: usize = 40;
/// A key file holds one key (45 bytes and a newline); anything much larger is not one.
const KEY_FILE_LIMIT: SizeLimit = SizeLimit {
    max_bytes: 4096,
    what: "a key file",
};
const KEY_ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `http://127.0.0.1:PORT`: where a local server is reached from this machine.
pub fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The local server's data directory and the files in it.
#[derive(Debug, Clone)]
pub struct LocalServer {
    /// The data directory (absolute).
    pub dir: PathBuf,
    /// Whether `dir` is the default one (so commands printed for the user can omit it).
    pub is_default: bool,
}

/// The server's API key and whether this call generated it.
#[derive(Debug)]
pub struct ServerKey {
    pub key: ApiKey,
    pub created: bool,
}

impl LocalServer {
    /// `dir`, or the default `$XDG_DATA_HOME/opencode-sync` (`~/.local/share/opencode-sync`).
    pub fn locate(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(dir) => Ok(Self {
                dir: std::path::absolute(dir)
                    .with_context(|| format!("invalid data directory {}", dir.display()))?,
                is_default: false,
            }),
            None => Ok(Self {
                dir: paths::data_dir(&ProcessEnv)?,
                is_default: true,
            }),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// Creates the data directory (0700) when it is missing.
    pub fn create_dir(&self) -> Result<()> {
        if self.dir.exists() && !self.dir.is_dir() {
            return Err(anyhow!(
                "the data directory {} is not a directory",
                self.dir.display()
            ));
        }
        create_private_dir(&self.dir)
            .with_context(|| format!("cannot create the data directory {}", self.dir.display()))
    }

    /// The server's API key: read from the key file, or generated and written there
    /// (0600) when there is none yet. Two processes doing this at once end up with the
    /// same key: the file is only ever created whole, never replaced.
    pub fn key(&self) -> Result<ServerKey> {
        self.create_dir()?;
        let path = self.key_path();
        if let Some(key) = read_key(&path)? {
            return Ok(ServerKey {
                key,
                created: false,
            });
        }
        let key = generate_key()?;
        match create_key_file(&path, &key) {
            Ok(()) => Ok(ServerKey { key, created: true }),
            // Someone else created it first: theirs is the key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let key = read_key(&path)?.ok_or_else(|| {
                    anyhow!("{} vanished while it was being read", path.display())
                })?;
                Ok(ServerKey {
                    key,
                    created: false,
                })
            }
            Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
    }

    /// Creates the (empty) database file 0600 before SQLite opens it, so the database,
    /// which holds the synced conversations, and its `-wal`/`-shm` files (SQLite gives
    /// them the database's permissions) are private.
    /// A FIFO or a device there is refused, not opened (that would block, or worse).
    pub fn create_db_file(&self) -> Result<()> {
        let path = self.db_path();
        open_regular_for_append(&path, 0o600)
            .map(drop)
            .with_context(|| format!("cannot create the database {}", path.display()))
    }
}

/// The key in `path`; `None` when the file does not exist. A key file readable by
/// others is made private again (with a warning). Bounded: a FIFO or a device there is
/// refused, not read.
fn read_key(path: &Path) -> Result<Option<ApiKey>> {
    let Some(text) = read_text_file(path, KEY_FILE_LIMIT)
        .map_err(|e| anyhow!("{e}; move it away to have a new key generated"))?
    else {
        return Ok(None);
    };
    let key = ApiKey::parse(&text).map_err(|e| {
        anyhow!(
            "{} does not hold a usable API key ({e}); move it away to have a new key generated",
            path.display()
        )
    })?;
    keep_private(path)?;
    Ok(Some(key))
}

#[cfg(unix)]
fn keep_private(path: &Path) -> Result<()> {
    use crate::ui;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
        ui::warn(&format!(
            "{} was readable by other users (mode {:o}); it is 0600 now",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// Writes the key to a private temporary file in the same directory and links it into
/// place only if no key file exists: never half a file, never a replaced key.
fn create_key_file(path: &Path, key: &ApiKey) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the key file has no parent directory"))?;
    // tempfile creates the file 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-key-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    tmp.write_all(key.expose().as_bytes())?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

/// `osk_` and 40 characters drawn uniformly from `[A-Za-z0-9]` with the operating
/// system's CSPRNG (about 238 bits).
pub fn generate_key() -> Result<ApiKey> {
    let mut body = String::with_capacity(KEY_BODY_LEN);
    let mut buf = [0u8; 64];
    while body.len() < KEY_BODY_LEN {
        getrandom::fill(&mut buf)
            .map_err(|e| anyhow!("the system's random number generator failed: {e}"))?;
        // 248 = 4 * 62: bytes below it map to the alphabet without bias.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if body.len() == KEY_BODY_LEN {
                break;
            }
            body.push(char::from(KEY_ALPHABET[usize::from(b % 62)]));
        }
    }
    ApiKey::parse(&format!("osk_{body}")).map_err(|e| anyhow!("generated a bad key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn generated_keys_are_valid_distinct_and_alphanumeric() {
        let a = generate_key().expect("key");
        let b = generate_key().expect("key");
        assert_ne!(a, b);
        let body = &a.expose()["osk_".len()..];
        assert_eq!(body.len(), KEY_BODY_LEN);
        assert!(body.bytes().all(|c| c.is_ascii_alphanumeric()), "{body}");
    }

    #[test]
    fn the_key_is_created_once_privately_and_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = LocalServer {
            dir: dir.path().join("data"),
            is_default: false,
        };
        let first = local.key().expect("created");
        assert!(first.created);
        let again = local.key().expect("read");
        assert!(!again.created);
        assert_eq!(first.key, again.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&local.key_path()), 0o600);
            assert_eq!(mode(&local.dir), 0o700);
            fs::set_permissions(local.key_path(), fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert_eq!(local.key().expect("read").key, first.key);
            assert_eq!(mode(&local.key_path()), 0o600);
        }
        // Nothing left behind but the key.
        let names: Vec<_> = fs::read_dir(&local.dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn a_damaged_key_file_is_an_error_that_does_not_show_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = LocalServer {
            dir: dir.path().to_path_buf(),
            is_default: false,
        };
        fs::write(local.key_path(), "osk_short secret\n").expect("write");
        let err = local.key().expect_err("damaged").to_string();
        assert!(err.contains("does not hold a usable API key"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = LocalServer {
            dir: dir.path().to_path_buf(),
            is_default: false,
        };
        let keys: Vec<ApiKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| local.key().expect("key").key))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
    }
}
