//! The CLI's file access in one place, so every command reads and writes the same
//! careful way. Reads are bounded: a file is opened without blocking (a FIFO where a
//! config should be must not hang the command), checked to be a regular file, and read
//! up to a size limit (not `/dev/zero` until memory runs out). Writes never leave half a
//! file: a temporary file in the same directory, synced, then renamed over the target.
//! Private files (the credentials, queued payloads) are mode 0600 in 0700 directories.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// How large a kind of file may be, and what to call that kind in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    pub max_bytes: u64,
    /// The kind of file, as a sentence names it: "a config file".
    pub what: &'static str,
}

/// A config file (ours or OpenCode's) holds a URL, a key and some settings: kilobytes.
pub const CONFIG_LIMIT: SizeLimit = SizeLimit {
    max_bytes: 16 * 1024 * 1024,
    what: "a config file",
};

/// An outbox record: one message, under Convex's 1 MiB document limit, JSON-escaped.
pub const RECORD_LIMIT: SizeLimit = SizeLimit {
    max_bytes: 8 * 1024 * 1024,
    what: "an outbox record",
};

/// Why a file could not be read. Messages name the file; none shows its contents.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{} is {kind}, not a file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{} is {}; {} is at most {}",
        path.display(),
        human_size(*size),
        limit.what,
        human_size(limit.max_bytes)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: SizeLimit,
    },
    #[error("{} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    /// The cause is part of the message, not a `source`: anyhow's `{:#}` would print it
    /// twice.
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

impl ReadError {
    /// The message without the file's name, for a report that shows the name already:
    /// "it is a FIFO (named pipe), not a file", "cannot read: permission denied".
    pub fn reason(&self) -> String {
        match self {
            Self::NotAFile { kind, .. } => format!("it is {kind}, not a file"),
            Self::TooLarge { size, limit, .. } => format!(
                "it is {}; {} is at most {}",
                human_size(*size),
                limit.what,
                human_size(limit.max_bytes)
            ),
            Self::NotUtf8 { .. } => "it is not UTF-8 text".to_owned(),
            Self::Io { error, .. } => format!("cannot read: {error}"),
        }
    }

    /// Whether the file is there and readable but what it holds is unusable (too large,
    /// not text), as opposed to not being a file or not being readable at all.
    pub fn is_about_contents(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::NotUtf8 { .. })
    }
}

/// The bytes of the regular file at `path` (symlinks followed); `None` when there is no
/// file. Never blocks on a FIFO or a device and never reads more than `limit` allows,
/// even from a file that grows while it is read.
pub fn read_regular_file(path: &Path, limit: SizeLimit) -> Result<Option<Vec<u8>>, ReadError> {
    let io_error = |error: io::Error| ReadError::Io {
        path: path.to_path_buf(),
        error,
    };
    // Checked before opening, so no device is even opened (opening some has effects),
    // and again on the open file, which is what is read.
    match fs::metadata(path) {
        Ok(meta) => check_regular(path, &meta, limit)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    }
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let meta = file.metadata().map_err(io_error)?;
    check_regular(path, &meta, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit.max_bytes {
        let size = fs::metadata(path).map_or(read, |m| m.len().max(read));
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    Ok(Some(bytes))
}

/// [`read_regular_file`] for a text file: its contents must be UTF-8.
pub fn read_text_file(path: &Path, limit: SizeLimit) -> Result<Option<String>, ReadError> {
    read_regular_file(path, limit)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 {
                path: path.to_path_buf(),
            })
        })
        .transpose()
}

fn check_regular(path: &Path, meta: &fs::Metadata, limit: SizeLimit) -> Result<(), ReadError> {
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(meta),
        });
    }
    if meta.len() > limit.max_bytes {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

/// What a file that is not a regular file is, for a message.
pub fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_file() {
        "a file"
    } else {
        "something other than a regular file"
    }
}

/// Opens for reading without waiting: opening a FIFO for reading otherwise blocks until a
/// writer comes, and a terminal device never becomes the controlling terminal.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    Ok(File::from(fd))
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Opens `path` for appending, creating it with `new_mode` (Unix) when missing, and
/// refuses anything but a regular file: opening a FIFO for writing would wait for a
/// reader, and a device is no place for a database.
pub fn open_regular_for_append(path: &Path, new_mode: u32) -> io::Result<File> {
    if let Ok(meta) = fs::metadata(path)
        && !meta.is_file()
    {
        return Err(not_a_file_error(path, &meta));
    }
    let file = open_append_nonblocking(path, new_mode)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_a_file_error(path, &meta));
    }
    Ok(file)
}

fn not_a_file_error(path: &Path, meta: &fs::Metadata) -> io::Error {
    io::Error::other(format!(
        "{} is {}, not a file",
        path.display(),
        file_kind(meta)
    ))
}

#[cfg(unix)]
fn open_append_nonblocking(path: &Path, new_mode: u32) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags, RawMode};
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NONBLOCK
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    // mode_t is u16 on macOS, u32 on Linux; permission bits fit either.
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(new_mode as RawMode))?;
    Ok(File::from(fd))
}

#[cfg(not(unix))]
fn open_append_nonblocking(path: &Path, _new_mode: u32) -> io::Result<File> {
    fs::OpenOptions::new().append(true).create(true).open(path)
}

/// A byte count as people read it: "512 bytes", "4 KiB", "100 MiB", "1.5 GiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
    }
    #[allow(clippy::cast_precision_loss)] // one decimal shown
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {unit}")
}

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
/// are not ours (OpenCode's config): a symlink is followed and its target replaced, or
/// created when the link dangles (dotfiles kept in a repository stay links).
pub fn replace_atomically(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    let path = write_target(path)?;
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

/// How many symlinks [`write_target`] follows before giving up (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// The file that writing `path` should replace: where its chain of symlinks ends, also
/// when that file does not exist yet (so a dangling link is written through, not
/// replaced by a regular file); `path` itself when it is not a link.
pub fn write_target(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                // A relative target is relative to the link's directory (an absolute one
                // replaces the whole path in `join`).
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(_) => return Ok(fs::canonicalize(&current).unwrap_or(current)),
            // Not there (yet): named from its nearest existing directory, without `..`.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let named = current.ancestors().skip(1).find_map(|dir| {
                    let rest = current.strip_prefix(dir).ok()?;
                    let no_parent_steps = rest
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                    no_parent_steps
                        .then(|| fs::canonicalize(dir).ok())
                        .flatten()
                        .map(|dir| dir.join(rest))
                });
                return Ok(named.unwrap_or(current));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} is a chain of more than {MAX_SYMLINK_HOPS} symbolic links (a loop?)",
        path.display()
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: SizeLimit = SizeLimit {
        max_bytes: 8,
        what: "a test file",
    };

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }

    #[test]
    fn reads_a_file_within_the_limit_and_nothing_when_there_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        assert!(read_text_file(&path, SMALL).expect("missing").is_none());
        fs::write(&path, "12345678").expect("write");
        assert_eq!(
            read_text_file(&path, SMALL).expect("read").as_deref(),
            Some("12345678")
        );
        fs::write(&path, "123456789").expect("write");
        let err = read_text_file(&path, SMALL).expect_err("too large");
        assert!(err.is_about_contents());
        assert_eq!(
            err.to_string(),
            format!(
                "{} is 9 bytes; a test file is at most 8 bytes",
                path.display()
            )
        );
        fs::write(&path, b"\xff\xfe").expect("write");
        let err = read_text_file(&path, SMALL).expect_err("not text");
        assert_eq!(
            err.to_string(),
            format!("{} is not UTF-8 text", path.display())
        );
        let err = read_text_file(dir.path(), SMALL).expect_err("a directory");
        assert!(!err.is_about_contents());
        assert!(
            err.to_string().ends_with("is a directory, not a file"),
            "{err}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let err = read_regular_file(&fifo, SMALL).expect_err("a FIFO");
        assert!(
            err.to_string()
                .contains("is a FIFO (named pipe), not a file"),
            "{err}"
        );
        let err = open_regular_for_append(&fifo, 0o600).expect_err("a FIFO");
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let err = read_regular_file(&zero, SMALL).expect_err("a device");
        assert!(err.to_string().contains("is a device, not a file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_is_written_through_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("opencode.json");
        std::os::unix::fs::symlink("dotfiles/opencode.json", &link).expect("symlink");
        let real_dir = fs::canonicalize(dir.path()).expect("canonical");
        assert_eq!(
            write_target(&link).expect("target"),
            real_dir.join("dotfiles/opencode.json")
        );
        // Named without `..` once its directory exists.
        fs::create_dir(dir.path().join("dotfiles")).expect("mkdir");
        let up = dir.path().join("dotfiles/up.json");
        std::os::unix::fs::symlink("../dotfiles/x.json", &up).expect("symlink");
        assert_eq!(
            write_target(&up).expect("target"),
            real_dir.join("dotfiles/x.json")
        );
        replace_atomically(&link, b"{}", 0o600).expect("write");
        assert!(fs::symlink_metadata(&link).expect("link").is_symlink());
        assert_eq!(
            fs::read_to_string(dir.path().join("dotfiles/opencode.json")).expect("target"),
            "{}"
        );
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).expect("symlink");
        let err = write_target(&looped).expect_err("a loop");
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }
}
