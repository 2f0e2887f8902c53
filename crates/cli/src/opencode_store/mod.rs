//! OpenCode's own history, read-only, for `opencode-sync sync`: the SQLite store
//! (`opencode.db`, OpenCode 1.2+) or the older JSON tree (`storage/`), behind one
//! interface that yields the core's model values ([`SessionInfo`], [`MessageInfo`],
//! [`PartInfo`]) built exactly as the plugin receives them in events: the row's columns
//! (or `data` JSON) with the ids folded back in.
//!
//! The database is opened with `SQLITE_OPEN_READ_ONLY` and read through SQLite's WAL
//! protocol, so it is safe while OpenCode writes to it: nothing is ever written to the
//! database, and each session is read inside one read transaction (a consistent
//! snapshot). Like any SQLite reader, the connection may create the `-wal`/`-shm`
//! companions when they are missing (with the database file's owner and mode); where
//! it cannot (a read-only directory, so no writer can exist) the file is opened
//! `immutable`.
//!
//! Rows are read leniently (see `backfill`'s "Odd rows"): every column through
//! [`ValueRef`] (text that is not UTF-8 is read with U+FFFD, a wrong type costs that
//! field), every JSON text through [`mend_lone_surrogates`], and a row that cannot be
//! read at all is left out with a [`RowNote`] saying why, never the whole session or run.
//!
//! The parts:
//! - this file: what a store yields ([`StoredSession`], [`Listing`]), where it is
//!   ([`Source`]) and the [`HistoryStore`] both kinds implement;
//! - `rows`: the lenient reading of one row's JSON (a message, a part) and the notes;
//! - `sqlite`: `opencode.db`;
//! - `json_tree`: the older `storage/` tree.

mod json_tree;
mod rows;
mod sqlite;
mod v2;

pub use json_tree::JsonTreeStore;
pub use sqlite::SqliteStore;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use opencode_sync_core::backfill::{RowNote, SessionSummary};
use opencode_sync_core::model::{MessageInfo, PartInfo, SessionInfo};

/// The database file OpenCode 1.2+ writes in its data directory.
pub const DB_FILE: &str = "opencode.db";
/// The directory older releases wrote JSON files into.
pub const JSON_DIR: &str = "storage";

/// One message with its parts (in id order, which is creation order).
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub info: MessageInfo,
    pub parts: Vec<PartInfo>,
    /// The newest update time (ms) of the message or any of its parts.
    pub mark: f64,
}

/// One session as stored, with its messages in conversation order.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub info: SessionInfo,
    pub messages: Vec<StoredMessage>,
    /// The project's worktree, for a session without a directory.
    pub project_worktree: Option<String>,
    /// The session's rows that were left out or read in part, one note per row.
    pub notes: Vec<RowNote>,
}

/// Every session, and the rows that belong to none (a message without a session, a
/// session row without a usable id).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Newest update first.
    pub sessions: Vec<SessionSummary>,
    pub notes: Vec<RowNote>,
}

/// Where the history is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Sqlite(PathBuf),
    JsonTree(PathBuf),
}

impl Source {
    /// Finds the store under `path`: OpenCode's data directory (holding `opencode.db`,
    /// else `storage/`), a database file, or a `storage` directory itself.
    pub fn locate(path: &Path) -> Result<Self> {
        if path.is_file() {
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if !path.is_dir() {
            bail!(
                "no OpenCode history at {}: the directory does not exist (OpenCode keeps it in $XDG_DATA_HOME/opencode; pass --data-dir DIR)",
                path.display()
            );
        }
        let db = path.join(DB_FILE);
        if db.is_file() {
            return Ok(Self::Sqlite(db));
        }
        let tree = path.join(JSON_DIR);
        if tree.join("session").is_dir() {
            return Ok(Self::JsonTree(tree));
        }
        if path.join("session").is_dir() {
            return Ok(Self::JsonTree(path.to_owned()));
        }
        // OpenCode 0.5: one tree per project, `project/<slug>/storage/`.
        let per_project = path.join("project");
        if JsonTreeStore::holds_per_project_trees(&per_project) {
            return Ok(Self::JsonTree(per_project));
        }
        if JsonTreeStore::holds_per_project_trees(path) {
            return Ok(Self::JsonTree(path.to_owned()));
        }
        bail!(
            "no OpenCode history in {}: neither {DB_FILE} nor {JSON_DIR}/session/ is there",
            path.display()
        )
    }

    /// `sqlite` or `json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::JsonTree(_) => "json",
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Sqlite(p) | Self::JsonTree(p) => p,
        }
    }

    pub fn open(&self) -> Result<Box<dyn HistoryStore>> {
        Ok(match self {
            Self::Sqlite(p) => Box::new(SqliteStore::open(p)?),
            Self::JsonTree(p) => Box::new(JsonTreeStore::open(p)?),
        })
    }
}

/// A readable OpenCode history.
pub trait HistoryStore: Send {
    /// Every session, newest update first (cheap: no message data is read).
    fn list(&mut self) -> Result<Listing>;
    /// One session with its messages and parts; `None` when it no longer exists.
    fn load(&mut self, id: &str) -> Result<Option<StoredSession>>;
}

pub(super) fn summary_of(info: &SessionInfo) -> SessionSummary {
    SessionSummary {
        id: info.id.clone(),
        title: info.title.clone(),
        directory: info.directory.clone(),
        time_created: info.time.created,
        time_updated: info.time.updated.unwrap_or(info.time.created),
    }
}

pub(super) fn sort_messages(messages: &mut [StoredMessage]) {
    messages.sort_by(|a, b| {
        a.info
            .time
            .created
            .total_cmp(&b.info.time.created)
            .then_with(|| a.info.id.cmp(&b.info.id))
    });
}

pub(super) fn sort_summaries(sessions: &mut [SessionSummary]) {
    sessions.sort_by(|a, b| {
        b.time_updated
            .total_cmp(&a.time_updated)
            .then_with(|| a.id.cmp(&b.id))
    });
}
