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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use opencode_sync_core::backfill::{
    self, MAX_NOTES, RowNote, SessionSummary, decode_leaving_out, notes_left_off, push_note,
};
use opencode_sync_core::json_text::mend_lone_surrogates;
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

fn sort_summaries(sessions: &mut [SessionSummary]) {
    sessions.sort_by(|a, b| {
        b.time_updated
            .total_cmp(&a.time_updated)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Parses a `data` column (or a JSON file) as an object, an escaped lone surrogate read
/// as U+FFFD; else says why it is no object.
fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(&mend_lone_surrogates(text)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("is JSON but not an object".to_owned()),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// JSON text from raw bytes: lossy UTF-8 (U+FFFD for what is not), and whether it was.
fn text_of(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let lossy = matches!(text, std::borrow::Cow::Owned(_));
    (text, lossy)
}

/// A `data` column or file as an object, and a note on its text when it was not UTF-8;
/// `Err(why)` when it cannot be read at all.
fn data_object(what: &str, bytes: &[u8]) -> Result<(Map<String, Value>, Option<String>), String> {
    let (text, lossy) = text_of(bytes);
    let obj = parse_object(&text).map_err(|why| format!("{what} {why}"))?;
    let note = lossy.then(|| format!("{what} is not valid UTF-8: read with U+FFFD in its place"));
    Ok((obj, note))
}

/// A message's data with its ids folded in: `Err(why)` when it is not a message OpenCode
/// writes (which must not be sent: it would land in a session `""`), else the message
/// and the fields left out for their type. The message always belongs to `session_id`,
/// whatever its data says.
fn message_of(
    mut obj: Map<String, Value>,
    id: &str,
    session_id: &str,
) -> Result<(MessageInfo, Vec<String>), String> {
    obj.insert("id".into(), Value::String(id.to_owned()));
    obj.insert("sessionID".into(), Value::String(session_id.to_owned()));
    let (info, left_out) = decode_leaving_out::<MessageInfo>(obj)
        .ok_or_else(|| "data is not an OpenCode message".to_owned())?;
    if !backfill::is_message(&info) {
        return Err("data is not an OpenCode message (no user or assistant role)".to_owned());
    }
    Ok((info, left_out))
}

/// A part's data with its ids folded in, and the fields left out for their type.
fn part_of(
    mut obj: Map<String, Value>,
    id: &str,
    message_id: &str,
    session_id: &str,
) -> Result<(PartInfo, Vec<String>), String> {
    obj.insert("id".into(), Value::String(id.to_owned()));
    obj.insert("messageID".into(), Value::String(message_id.to_owned()));
    obj.insert("sessionID".into(), Value::String(session_id.to_owned()));
    decode_leaving_out::<PartInfo>(obj).ok_or_else(|| "data is not an OpenCode part".to_owned())
}

/// The reasons a row was read in part, as one note's text.
fn left_out_text(left_out: &[String]) -> Option<String> {
    (!left_out.is_empty()).then(|| {
        format!(
            "data field{} {} of the wrong type left out",
            if left_out.len() == 1 { "" } else { "s" },
            left_out.join(", ")
        )
    })
}

/// Collects a session's notes, bounded by [`MAX_NOTES`].
#[derive(Debug, Default)]
struct Notes {
    list: Vec<RowNote>,
    over: usize,
}

impl Notes {
    fn push(&mut self, note: RowNote) {
        push_note(&mut self.list, &mut self.over, note);
    }

    /// A note for a row read in part, when there is anything to say.
    fn partly(&mut self, table: &str, id: &str, session_id: &str, reasons: Vec<String>) {
        if !reasons.is_empty() {
            self.push(RowNote::partly_read(
                table,
                Some(id),
                Some(session_id),
                reasons.join("; "),
            ));
        }
    }

    fn skipped(&mut self, table: &str, id: Option<&str>, session_id: Option<&str>, why: String) {
        self.push(RowNote::skipped(table, id, session_id, why));
    }

    fn finish(mut self, session_id: Option<&str>) -> Vec<RowNote> {
        self.list.extend(notes_left_off(self.over, session_id));
        self.list
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

/// One column of a row: its value as JSON (text that is not UTF-8, and a blob, read as
/// lossy text) and what SQLite held, for the notes.
#[derive(Debug, Clone)]
struct Cell {
    value: Value,
    /// `NULL`, `an integer`, `a real`, `text`, `a blob`.
    kind: &'static str,
    /// Text that was not UTF-8 (read with U+FFFD).
    lossy: bool,
}

impl Cell {
    fn of(value: ValueRef<'_>) -> Self {
        let (value, kind, lossy) = match value {
            ValueRef::Null => (Value::Null, "NULL", false),
            ValueRef::Integer(i) => (json!(i), "an integer", false),
            ValueRef::Real(f) => (json!(f), "a real", false),
            ValueRef::Text(t) => {
                let (text, lossy) = text_of(t);
                (Value::String(text.into_owned()), "text", lossy)
            }
            ValueRef::Blob(b) => {
                let (text, lossy) = text_of(b);
                (Value::String(text.into_owned()), "a blob", lossy)
            }
        };
        Self { value, kind, lossy }
    }

    /// A usable id: non-empty text.
    fn id(&self) -> Option<String> {
        match (&self.value, self.kind) {
            (Value::String(s), "text") if !s.is_empty() => Some(s.clone()),
            (Value::Number(n), _) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A number column (a time) that may hold anything.
fn number_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        _ => None,
    })
}

/// The session columns the Session's fields come from, for the notes.
const SESSION_FIELD_COLUMNS: &[(&str, &str)] = &[
    ("projectID", "project_id"),
    ("parentID", "parent_id"),
    ("directory", "directory"),
    ("title", "title"),
    ("cost", "cost"),
];

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
        let message_columns = columns(&conn, "message")?;
        let part_columns = columns(&conn, "part")?;
        // A missing table is named as such: the store is not OpenCode's (or not whole),
        // and reading sessions without their parts would send them without text.
        for (table, cols) in [
            ("session", &session_columns),
            ("message", &message_columns),
            ("part", &part_columns),
        ] {
            if cols.is_empty() {
                bail!(
                    "{} has no `{table}` table: is this OpenCode's {DB_FILE}?",
                    path.display()
                );
            }
        }
        for (table, cols, needed) in [
            ("session", &session_columns, &["id"][..]),
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
        if project_columns.iter().any(|c| c == "id")
            && project_columns.iter().any(|c| c == "worktree")
        {
            let mut stmt = conn.prepare("SELECT id, worktree FROM project")?;
            let rows = stmt.query_map([], |r| {
                Ok((Cell::of(r.get_ref(0)?), Cell::of(r.get_ref(1)?)))
            })?;
            for row in rows {
                let (id, worktree) = row?;
                if let (Some(id), Value::String(worktree)) = (id.id(), worktree.value) {
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

    /// The Session as OpenCode's events carry it, from the row's columns, with the id
    /// it was listed under. A column of the wrong type costs its field only (a missing
    /// creation time is taken from the session's `data`, else its update time); what
    /// was odd is one note.
    fn session_info(&self, id: &str, row: &HashMap<String, Cell>) -> (SessionInfo, Vec<String>) {
        let null = Cell::of(ValueRef::Null);
        let get = |name: &str| row.get(name).unwrap_or(&null);
        let mut reasons = Vec::new();
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(id.to_owned()));
        for (field, column) in SESSION_FIELD_COLUMNS {
            if self.has(column) {
                let cell = get(column);
                if cell.lossy {
                    reasons.push(format!(
                        "{column} is not valid UTF-8: read with U+FFFD in its place"
                    ));
                }
                obj.insert((*field).into(), cell.value.clone());
            }
        }
        if self.has("tokens_input") {
            obj.insert(
                "tokens".into(),
                json!({
                    "input": get("tokens_input").value, "output": get("tokens_output").value,
                    "reasoning": get("tokens_reasoning").value,
                    "cache": {"read": get("tokens_cache_read").value, "write": get("tokens_cache_write").value},
                }),
            );
        }
        if let Value::String(model) = &get("model").value {
            match parse_object(model) {
                Ok(model) => {
                    obj.insert("model".into(), Value::Object(model));
                }
                Err(_) => reasons.push("model is not a JSON object: left out".to_owned()),
            }
        }
        obj.insert(
            "time".into(),
            json!({"created": get("time_created").value, "updated": get("time_updated").value}),
        );
        let (mut info, left_out) = decode_leaving_out::<SessionInfo>(obj).unwrap_or_else(|| {
            (
                SessionInfo {
                    id: id.to_owned(),
                    ..SessionInfo::default()
                },
                vec!["every field".to_owned()],
            )
        });
        info.id = id.to_owned();
        for field in &left_out {
            let column = match field.as_str() {
                "time.created" => continue,
                "time.updated" => "time_updated".to_owned(),
                "tokens" => "tokens_*".to_owned(),
                "tokens.cache" => "tokens_cache_*".to_owned(),
                other => SESSION_FIELD_COLUMNS
                    .iter()
                    .find(|(f, _)| *f == other)
                    .map_or_else(
                        || other.replace("tokens.", "tokens_"),
                        |(_, c)| (*c).to_owned(),
                    ),
            };
            let kind = row.get(&column).map_or("of the wrong type", |c| c.kind);
            reasons.push(format!("{column} is {kind}: left out"));
        }
        if left_out.iter().any(|f| f == "time.created") || !self.has("time_created") {
            let from_data = match &get("data").value {
                Value::String(data) => parse_object(data)
                    .ok()
                    .and_then(|d| d.get("time")?.get("created")?.as_f64()),
                _ => None,
            };
            let (created, source) = match (from_data, info.time.updated) {
                (Some(t), _) => (t, "createdAt taken from data"),
                (None, Some(t)) => (t, "createdAt taken from time_updated"),
                (None, None) => (0.0, "createdAt left out"),
            };
            info.time.created = created;
            if self.has("time_created") {
                reasons.push(format!(
                    "time_created is {}: {source}",
                    get("time_created").kind
                ));
            }
        }
        (info, reasons)
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
                    map.insert(name.clone(), Cell::of(r.get_ref(i)?));
                }
                Ok(map)
            })
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut notes = Notes::default();
        let (info, reasons) = self.session_info(id, &row);
        notes.partly("session", id, id, reasons);
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();

        let updated = if self.message_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, {updated}, data FROM message WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], |r| {
            let data = match r.get_ref(2)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => data_object("data", b),
                other => Err(format!("data is {}, not JSON text", Cell::of(other).kind)),
            };
            Ok((Cell::of(r.get_ref(0)?), number_at(r, 1)?, data))
        })?;
        let mut messages = Vec::new();
        let mut index = HashMap::new();
        // Messages left out: their parts go with them, unnamed.
        let mut left_out_messages = HashSet::new();
        for row in rows {
            let (message_id, time_updated, data) = row?;
            let Some(message_id) = message_id.id() else {
                notes.skipped("message", None, Some(id), "it has no id".to_owned());
                continue;
            };
            let read = data.and_then(|(obj, utf8)| {
                message_of(obj, &message_id, id).map(|(info, left_out)| (info, left_out, utf8))
            });
            let (info, left_out, utf8) = match read {
                Ok(read) => read,
                Err(why) => {
                    notes.skipped("message", Some(&message_id), Some(id), why);
                    left_out_messages.insert(message_id);
                    continue;
                }
            };
            notes.partly(
                "message",
                &message_id,
                id,
                utf8.into_iter().chain(left_out_text(&left_out)).collect(),
            );
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
            let data = match r.get_ref(3)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => data_object("data", b),
                other => Err(format!("data is {}, not JSON text", Cell::of(other).kind)),
            };
            Ok((
                Cell::of(r.get_ref(0)?),
                Cell::of(r.get_ref(1)?),
                number_at(r, 2)?,
                data,
            ))
        })?;
        for row in rows {
            let (part_id, message_id, time_updated, data) = row?;
            let message_id = message_id.id().unwrap_or_default();
            let Some(&at) = index.get(&message_id) else {
                if !left_out_messages.contains(&message_id) {
                    let part_id = part_id.id();
                    notes.skipped(
                        "part",
                        part_id.as_deref(),
                        Some(id),
                        format!("its message \"{message_id}\" is not in this session"),
                    );
                }
                continue;
            };
            let Some(part_id) = part_id.id() else {
                notes.skipped(
                    "part",
                    None,
                    Some(id),
                    format!("it has no id (message {message_id})"),
                );
                continue;
            };
            let read = data.and_then(|(obj, utf8)| {
                part_of(obj, &part_id, &message_id, id)
                    .map(|(part, left_out)| (part, left_out, utf8))
            });
            let (part, left_out, utf8) = match read {
                Ok(read) => read,
                Err(why) => {
                    notes.skipped("part", Some(&part_id), Some(id), why);
                    continue;
                }
            };
            notes.partly(
                "part",
                &part_id,
                id,
                utf8.into_iter().chain(left_out_text(&left_out)).collect(),
            );
            let message = &mut messages[at];
            message.mark = message.mark.max(time_updated.unwrap_or(0.0));
            message.parts.push(part);
        }
        sort_messages(&mut messages);
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            notes: notes.finish(Some(id)),
        }))
    }

    /// Messages that belong to no session (no session id, or one no session has): never
    /// sent, since they would create a session `""` or one OpenCode does not have. The
    /// first [`MAX_NOTES`] are named, the rest counted.
    fn orphan_notes(&self, notes: &mut Notes) -> Result<()> {
        const ORPHANS: &str = "FROM message m WHERE m.session_id IS NULL OR m.session_id = ''
               OR NOT EXISTS (SELECT 1 FROM session s WHERE s.id = m.session_id)";
        let total: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) {ORPHANS}"), [], |r| r.get(0))?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, session_id {ORPHANS} ORDER BY id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([MAX_NOTES as i64], |r| {
            Ok((Cell::of(r.get_ref(0)?), Cell::of(r.get_ref(1)?)))
        })?;
        let mut named = 0;
        for row in rows {
            let (message_id, session_id) = row?;
            let why = match session_id.id() {
                Some(s) => format!("its session \"{s}\" is not in the store"),
                None => "it has no session id".to_owned(),
            };
            notes.skipped("message", message_id.id().as_deref(), None, why);
            named += 1;
        }
        notes.over += usize::try_from(total).unwrap_or(0).saturating_sub(named);
        Ok(())
    }
}

impl HistoryStore for SqliteStore {
    fn list(&mut self) -> Result<Listing> {
        let pick = |col: &str| {
            if self.has(col) {
                col.to_owned()
            } else {
                "NULL".to_owned()
            }
        };
        let sql = format!(
            "SELECT id, {}, {}, {}, {} FROM session",
            pick("title"),
            pick("directory"),
            pick("time_created"),
            pick("time_updated"),
        );
        let mut notes = Notes::default();
        let mut sessions = Vec::new();
        {
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map([], |r| {
                let text = |i: usize| -> rusqlite::Result<Option<String>> {
                    Ok(match Cell::of(r.get_ref(i)?).value {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                };
                Ok((
                    Cell::of(r.get_ref(0)?),
                    text(1)?,
                    text(2)?,
                    number_at(r, 3)?,
                    number_at(r, 4)?,
                ))
            })?;
            for row in rows {
                let (id, title, directory, created, updated) =
                    row.with_context(|| format!("listing sessions in {}", self.path.display()))?;
                // An id that is not UTF-8 text could not be looked up again.
                let Some(id) = id.id().filter(|_| !id.lossy) else {
                    notes.skipped(
                        "session",
                        None,
                        None,
                        format!("its id is {}, not usable text", id.kind),
                    );
                    continue;
                };
                sessions.push(SessionSummary {
                    id,
                    title,
                    directory,
                    // The same fallbacks as `session_info`, so the record's time matches.
                    time_created: created.or(updated).unwrap_or(0.0),
                    time_updated: updated.or(created).unwrap_or(0.0),
                });
            }
        }
        self.orphan_notes(&mut notes)?;
        sort_summaries(&mut sessions);
        Ok(Listing {
            sessions,
            notes: notes.finish(None),
        })
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

/// A JSON file as an object (see [`data_object`]); `Err(why)` when it cannot be read.
fn read_object(path: &Path) -> Result<(Map<String, Value>, Option<String>), String> {
    let bytes = fs::read(path).map_err(|e| format!("file cannot be read ({e})"))?;
    data_object("file", &bytes)
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
            if let Ok((obj, _)) = read_object(&file)
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

    /// A session file, leniently (as a row: a wrong type costs that field, a missing
    /// creation time is the update time); `Err(why)` when it is no session at all.
    fn session_info(path: &Path) -> Result<(SessionInfo, Vec<String>), String> {
        let (mut obj, utf8) = read_object(path)?;
        default_id(&mut obj, "id", &file_stem(path));
        if let Some(project) = path.parent().map(file_stem) {
            default_id(&mut obj, "projectID", &project);
        }
        let (mut info, left_out) = decode_leaving_out::<SessionInfo>(obj)
            .ok_or_else(|| "file is not an OpenCode session".to_owned())?;
        if info.id.is_empty() {
            return Err("file has no session id".to_owned());
        }
        if left_out.iter().any(|f| f == "time.created") {
            info.time.created = info.time.updated.unwrap_or(0.0);
        }
        Ok((
            info,
            utf8.into_iter().chain(left_out_text(&left_out)).collect(),
        ))
    }

    /// `session/<project>/<id>.json` relative to the tree, for the notes.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

impl HistoryStore for JsonTreeStore {
    fn list(&mut self) -> Result<Listing> {
        let session_dir = self.root.join("session");
        let mut projects: Vec<PathBuf> = fs::read_dir(&session_dir)
            .with_context(|| format!("reading {}", session_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        projects.sort();
        self.files.clear();
        let mut notes = Notes::default();
        let mut sessions = Vec::new();
        for project in projects {
            for file in json_files(&project)? {
                match Self::session_info(&file) {
                    Ok((info, _)) => {
                        sessions.push(summary_of(&info));
                        self.files.insert(info.id.clone(), file);
                    }
                    Err(why) => notes.skipped(
                        "session",
                        Some(&file_stem(&file)),
                        None,
                        format!("{}: {why}", self.relative(&file)),
                    ),
                }
            }
        }
        sort_summaries(&mut sessions);
        Ok(Listing {
            sessions,
            notes: notes.finish(None),
        })
    }

    fn load(&mut self, id: &str) -> Result<Option<StoredSession>> {
        let Some((info, reasons)) = self.files.get(id).and_then(|f| Self::session_info(f).ok())
        else {
            return Ok(None);
        };
        let mut notes = Notes::default();
        notes.partly("session", id, id, reasons);
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();
        let mut messages = Vec::new();
        for file in json_files(&self.root.join("message").join(id))? {
            let stem = file_stem(&file);
            let read = read_object(&file).and_then(|(mut obj, utf8)| {
                default_id(&mut obj, "id", &stem);
                let message_id = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(&stem)
                    .to_owned();
                message_of(obj, &message_id, id).map(|(info, left_out)| (info, left_out, utf8))
            });
            let (info, left_out, utf8) = match read {
                Ok(read) => read,
                Err(why) => {
                    notes.skipped("message", Some(&stem), Some(id), why);
                    continue;
                }
            };
            notes.partly(
                "message",
                &info.id,
                id,
                utf8.into_iter().chain(left_out_text(&left_out)).collect(),
            );
            let mut mark = mtime_ms(&file);
            let mut parts = Vec::new();
            for part_file in json_files(&self.root.join("part").join(&info.id))? {
                let stem = file_stem(&part_file);
                let read = read_object(&part_file).and_then(|(mut obj, utf8)| {
                    default_id(&mut obj, "id", &stem);
                    let part_id = obj
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or(&stem)
                        .to_owned();
                    part_of(obj, &part_id, &info.id, id)
                        .map(|(part, left_out)| (part, left_out, utf8))
                });
                let (part, left_out, utf8) = match read {
                    Ok(read) => read,
                    Err(why) => {
                        notes.skipped("part", Some(&stem), Some(id), why);
                        continue;
                    }
                };
                notes.partly(
                    "part",
                    &part.id,
                    id,
                    utf8.into_iter().chain(left_out_text(&left_out)).collect(),
                );
                mark = mark.max(mtime_ms(&part_file));
                parts.push(part);
            }
            parts.sort_by(|a, b| a.id.cmp(&b.id));
            messages.push(StoredMessage { info, parts, mark });
        }
        sort_messages(&mut messages);
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            notes: notes.finish(Some(id)),
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
