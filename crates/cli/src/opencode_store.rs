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

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use opencode_sync_core::backfill::SessionSummary;
use opencode_sync_core::model::{MessageInfo, PartInfo, SessionInfo};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value, json};

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
    /// Rows that could not be read (not JSON objects) and were left out.
    pub unreadable: usize,
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
    /// Every session, newest update first (cheap: no messages are read).
    fn list(&mut self) -> Result<Vec<SessionSummary>>;
    /// One session with its messages and parts; `None` when it no longer exists.
    fn load(&mut self, id: &str) -> Result<Option<StoredSession>>;
}

fn summary_of(info: &SessionInfo) -> SessionSummary {
    SessionSummary {
        id: info.id.clone(),
        title: info.title.clone(),
        directory: info.directory.clone(),
        time_created: info.time.created,
        time_updated: info.time.updated.unwrap_or(info.time.created),
    }
}

fn sort_messages(messages: &mut [StoredMessage]) {
    messages.sort_by(|a, b| {
        a.info
            .time
            .created
            .total_cmp(&b.info.time.created)
            .then_with(|| a.info.id.cmp(&b.info.id))
    });
}

/// Parses a `data` column (or a JSON file) as an object.
fn parse_object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

// ---- SQLite ----------------------------------------------------------------------------

/// `opencode.db`, read-only.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Which optional columns this schema has.
    session_columns: Vec<String>,
    message_has_updated: bool,
    part_has_updated: bool,
    part_has_session: bool,
    projects: HashMap<String, String>,
}

fn percent_encode_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn json_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => Value::Null,
    }
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(10))?;
                // Touches the WAL index: fails here if the -shm cannot be created.
                c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                Ok(c)
            })
            .or_else(|first| {
                let wal = path.with_file_name(format!(
                    "{}-wal",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
                if wal.exists() {
                    return Err(first);
                }
                // No WAL and nowhere to put its index: nobody can be writing, so the file
                // can be read as immutable.
                let uri = format!("file:{}?immutable=1", percent_encode_path(path));
                let c = Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?;
                c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                Ok(c)
            })
            .with_context(|| format!("opening {} read-only", path.display()))?;
        let session_columns = columns(&conn, "session")?;
        if session_columns.is_empty() {
            bail!(
                "{} has no session table: it is not an OpenCode store",
                path.display()
            );
        }
        let message_columns = columns(&conn, "message")?;
        let part_columns = columns(&conn, "part")?;
        for (table, cols, needed) in [
            ("session", &session_columns, &["id", "time_created"][..]),
            (
                "message",
                &message_columns,
                &["id", "session_id", "data"][..],
            ),
            ("part", &part_columns, &["id", "message_id", "data"][..]),
        ] {
            for col in needed {
                if !cols.iter().any(|c| c == col) {
                    bail!(
                        "{}: table {table} has no column {col}; this OpenCode schema is not supported",
                        path.display()
                    );
                }
            }
        }
        let mut projects = HashMap::new();
        let project_columns = columns(&conn, "project")?;
        if project_columns.iter().any(|c| c == "worktree") {
            let mut stmt = conn.prepare("SELECT id, worktree FROM project")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                if let (id, Some(worktree)) = row? {
                    projects.insert(id, worktree);
                }
            }
        }
        Ok(Self {
            path: path.to_owned(),
            message_has_updated: message_columns.iter().any(|c| c == "time_updated"),
            part_has_updated: part_columns.iter().any(|c| c == "time_updated"),
            part_has_session: part_columns.iter().any(|c| c == "session_id"),
            session_columns,
            conn,
            projects,
        })
    }

    fn has(&self, column: &str) -> bool {
        self.session_columns.iter().any(|c| c == column)
    }

    /// The Session as OpenCode's events carry it, from the row's columns.
    fn session_info(&self, row: &HashMap<String, Value>) -> SessionInfo {
        let get = |name: &str| row.get(name).cloned().unwrap_or(Value::Null);
        let mut obj = Map::new();
        obj.insert("id".into(), get("id"));
        for (field, column) in [
            ("projectID", "project_id"),
            ("parentID", "parent_id"),
            ("directory", "directory"),
            ("title", "title"),
            ("cost", "cost"),
        ] {
            if self.has(column) {
                obj.insert(field.into(), get(column));
            }
        }
        if self.has("tokens_input") {
            obj.insert(
                "tokens".into(),
                json!({
                    "input": get("tokens_input"),
                    "output": get("tokens_output"),
                    "reasoning": get("tokens_reasoning"),
                    "cache": {"read": get("tokens_cache_read"), "write": get("tokens_cache_write")},
                }),
            );
        }
        if let Some(Value::String(model)) = row.get("model") {
            obj.insert(
                "model".into(),
                serde_json::from_str(model).unwrap_or(Value::Null),
            );
        }
        obj.insert(
            "time".into(),
            json!({"created": get("time_created"), "updated": get("time_updated")}),
        );
        serde_json::from_value(Value::Object(obj)).unwrap_or_default()
    }

    fn read_session(&self, id: &str) -> Result<Option<StoredSession>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM session WHERE id = ?1")?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let row = stmt
            .query_row([id], |r| {
                let mut map = HashMap::new();
                for (i, name) in names.iter().enumerate() {
                    map.insert(name.clone(), json_of(r.get_ref(i)?));
                }
                Ok(map)
            })
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let info = self.session_info(&row);
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();

        let mut unreadable = 0;
        let updated = if self.message_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, {updated}, data FROM message WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<f64>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut messages = Vec::new();
        let mut index = HashMap::new();
        for row in rows {
            let (message_id, time_updated, data) = row?;
            let Some(mut obj) = data.as_deref().and_then(parse_object) else {
                unreadable += 1;
                continue;
            };
            obj.insert("id".into(), Value::String(message_id.clone()));
            obj.insert("sessionID".into(), Value::String(id.to_owned()));
            let info: MessageInfo = serde_json::from_value(Value::Object(obj)).unwrap_or_default();
            let mark = time_updated
                .unwrap_or(0.0)
                .max(info.time.completed.unwrap_or(0.0))
                .max(info.time.created);
            index.insert(message_id, messages.len());
            messages.push(StoredMessage {
                info,
                parts: Vec::new(),
                mark,
            });
        }

        let updated = if self.part_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let sql = if self.part_has_session {
            format!(
                "SELECT id, message_id, {updated}, data FROM part WHERE session_id = ?1 ORDER BY message_id, id"
            )
        } else {
            format!(
                "SELECT id, message_id, {updated}, data FROM part WHERE message_id IN (SELECT id FROM message WHERE session_id = ?1) ORDER BY message_id, id"
            )
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<f64>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for row in rows {
            let (part_id, message_id, time_updated, data) = row?;
            let Some(&at) = index.get(&message_id) else {
                continue;
            };
            let Some(mut obj) = data.as_deref().and_then(parse_object) else {
                unreadable += 1;
                continue;
            };
            obj.insert("id".into(), Value::String(part_id));
            obj.insert("messageID".into(), Value::String(message_id));
            obj.insert("sessionID".into(), Value::String(id.to_owned()));
            let part: PartInfo = serde_json::from_value(Value::Object(obj)).unwrap_or_default();
            let message = &mut messages[at];
            message.mark = message.mark.max(time_updated.unwrap_or(0.0));
            message.parts.push(part);
        }
        sort_messages(&mut messages);
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            unreadable,
        }))
    }
}

impl HistoryStore for SqliteStore {
    fn list(&mut self) -> Result<Vec<SessionSummary>> {
        let pick = |col: &str| {
            if self.has(col) {
                col.to_owned()
            } else {
                "NULL".to_owned()
            }
        };
        let sql = format!(
            "SELECT id, {}, {}, time_created, {} FROM session",
            pick("title"),
            pick("directory"),
            pick("time_updated"),
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            let created = r.get::<_, Option<f64>>(3)?.unwrap_or(0.0);
            Ok(SessionSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                directory: r.get(2)?,
                time_created: created,
                time_updated: r.get::<_, Option<f64>>(4)?.unwrap_or(created),
            })
        })?;
        let mut out = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| format!("listing sessions in {}", self.path.display()))?;
        out.sort_by(|a, b| {
            b.time_updated
                .total_cmp(&a.time_updated)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    fn load(&mut self, id: &str) -> Result<Option<StoredSession>> {
        // One read transaction: the session row, its messages and parts from one snapshot.
        self.conn.execute_batch("BEGIN")?;
        let result = self.read_session(id);
        let end = self.conn.execute_batch("COMMIT");
        let session =
            result.with_context(|| format!("reading session {id} from {}", self.path.display()))?;
        end?;
        Ok(session)
    }
}

// ---- JSON tree -------------------------------------------------------------------------

/// The older `storage/` tree: `session/<projectID>/<sessionID>.json`,
/// `message/<sessionID>/<messageID>.json`, `part/<messageID>/<partID>.json`.
#[derive(Debug)]
pub struct JsonTreeStore {
    root: PathBuf,
    /// Session id -> its file, from the last listing.
    files: HashMap<String, PathBuf>,
    projects: HashMap<String, String>,
}

fn mtime_ms(path: &Path) -> f64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// The `*.json` files directly in `dir` (none when it does not exist), sorted by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn read_object(path: &Path) -> Option<Map<String, Value>> {
    parse_object(&fs::read_to_string(path).ok()?)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sets `key` to `value` unless the object already has a non-empty string there.
fn default_id(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if obj
        .get(key)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert(key.into(), Value::String(value.to_owned()));
    }
}

impl JsonTreeStore {
    pub fn open(root: &Path) -> Result<Self> {
        let mut projects = HashMap::new();
        for file in json_files(&root.join("project"))? {
            if let Some(obj) = read_object(&file)
                && let Some(worktree) = obj.get("worktree").and_then(Value::as_str)
            {
                let id = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| file_stem(&file), str::to_owned);
                projects.insert(id, worktree.to_owned());
            }
        }
        Ok(Self {
            root: root.to_owned(),
            files: HashMap::new(),
            projects,
        })
    }

    fn session_info(path: &Path) -> Option<SessionInfo> {
        let mut obj = read_object(path)?;
        default_id(&mut obj, "id", &file_stem(path));
        if let Some(project) = path.parent().map(file_stem) {
            default_id(&mut obj, "projectID", &project);
        }
        serde_json::from_value(Value::Object(obj)).ok()
    }
}

impl HistoryStore for JsonTreeStore {
    fn list(&mut self) -> Result<Vec<SessionSummary>> {
        let session_dir = self.root.join("session");
        let mut projects: Vec<PathBuf> = fs::read_dir(&session_dir)
            .with_context(|| format!("reading {}", session_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        projects.sort();
        self.files.clear();
        let mut out = Vec::new();
        for project in projects {
            for file in json_files(&project)? {
                if let Some(info) = Self::session_info(&file).filter(|i| !i.id.is_empty()) {
                    out.push(summary_of(&info));
                    self.files.insert(info.id.clone(), file);
                }
            }
        }
        out.sort_by(|a, b| {
            b.time_updated
                .total_cmp(&a.time_updated)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    fn load(&mut self, id: &str) -> Result<Option<StoredSession>> {
        let Some(info) = self.files.get(id).and_then(|f| Self::session_info(f)) else {
            return Ok(None);
        };
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();
        let mut unreadable = 0;
        let mut messages = Vec::new();
        for file in json_files(&self.root.join("message").join(id))? {
            let Some(mut obj) = read_object(&file) else {
                unreadable += 1;
                continue;
            };
            default_id(&mut obj, "id", &file_stem(&file));
            default_id(&mut obj, "sessionID", id);
            let info: MessageInfo = serde_json::from_value(Value::Object(obj)).unwrap_or_default();
            let mut mark = mtime_ms(&file);
            let mut parts = Vec::new();
            for part_file in json_files(&self.root.join("part").join(&info.id))? {
                let Some(mut obj) = read_object(&part_file) else {
                    unreadable += 1;
                    continue;
                };
                default_id(&mut obj, "id", &file_stem(&part_file));
                default_id(&mut obj, "messageID", &info.id);
                default_id(&mut obj, "sessionID", id);
                if let Ok(part) = serde_json::from_value::<PartInfo>(Value::Object(obj)) {
                    mark = mark.max(mtime_ms(&part_file));
                    parts.push(part);
                }
            }
            parts.sort_by(|a, b| a.id.cmp(&b.id));
            messages.push(StoredMessage { info, parts, mark });
        }
        sort_messages(&mut messages);
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            unreadable,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_are_escaped() {
        assert_eq!(
            percent_encode_path(Path::new("/a b/c?d#e%.db")),
            "/a%20b/c%3Fd%23e%25.db"
        );
    }
}
