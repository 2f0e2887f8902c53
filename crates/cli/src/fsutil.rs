//! File writes that never leave half a file: a temporary file in the same directory,
//! synced, then renamed over the target. Private files (the credentials, queued
//! payloads) are mode 0600 in 0700 directories.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `bytes`, creating the directory (0700) if needed.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no parent directory"))?;
    create_private_dir(dir)?;
    // tempfile creates the file 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` and its parents; new directories are 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
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

/// Replaces `path` with `bytes` through a temporary file in the same directory and a
/// rename, keeping the permissions of the file it replaces; a new file gets `new_mode` on
/// Unix, and a missing directory is created with the usual permissions. For files that
/// are not ours (OpenCode's config): a symlink is followed and its target replaced.
pub fn replace_atomically(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    let path = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no parent directory"))?;
    fs::create_dir_all(dir)?;
    let permissions = match fs::metadata(&path) {
        Ok(meta) => Some(meta.permissions()),
        Err(_) => new_permissions(new_mode),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if let Some(permissions) = permissions {
        tmp.as_file().set_permissions(permissions)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(unix)]
fn new_permissions(mode: u32) -> Option<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn new_permissions(_mode: u32) -> Option<fs::Permissions> {
    None // what the temporary file got
}
