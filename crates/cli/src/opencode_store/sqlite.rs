//! `opencode.db` (OpenCode 1.2+), read-only, through SQLite's WAL protocol (see the
//! module above): every column through `ValueRef`, so a wrong type costs a field.
//!
//! The file may hold OpenCode 1.x's tables (`session`, `message`, `part`), OpenCode 2's
//! (`session_v2`, `session_message`: see `v2`), or both: OpenCode 2 copies the 1.x
//! sessions into its own tables with the same ids and keeps the old ones, and a session
//! may go on growing on either side. Both are read and merged by id (see `v2::merge`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use opencode_sync_core::backfill::{MAX_NOTES, SessionSummary, decode_leaving_out};
use opencode_sync_core::model::SessionInfo;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value, json};

use super::rows::{Notes, data_object, left_out_text, message_of, parse_object, part_of, text_of};
use super::v2::{self, V2Tables};
use super::{
    DB_FILE, HistoryStore, Listing, StoredMessage, StoredSession, sort_messages, sort_summaries,
};

/// `opencode.db`, read-only.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// OpenCode 1.x's tables, when the file has them.
    v1: Option<V1Tables>,
    /// OpenCode 2's tables, when the file has them.
    v2: Option<V2Tables>,
    projects: HashMap<String, String>,
}

/// Which optional columns OpenCode 1.x's tables have in this file.
#[derive(Debug)]
struct V1Tables {
    session_columns: Vec<String>,
    message_has_updated: bool,
    part_has_updated: bool,
    part_has_session: bool,
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

/// The column names of `table` (none when there is no such table).
pub(super) fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// One column of a row: its value as JSON (text that is not UTF-8, and a blob, read as
/// lossy text) and what SQLite held, for the notes.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub(super) value: Value,
    /// `NULL`, `an integer`, `a real`, `text`, `a blob`.
    pub(super) kind: &'static str,
    /// Text that was not UTF-8 (read with U+FFFD).
    pub(super) lossy: bool,
}

impl Cell {
    pub(super) fn of(value: ValueRef<'_>) -> Self {
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
    pub(super) fn id(&self) -> Option<String> {
        match (&self.value, self.kind) {
            (Value::String(s), "text") if !s.is_empty() => Some(s.clone()),
            (Value::Number(n), _) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A number column (a time) that may hold anything.
pub(super) fn number_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        _ => None,
    })
}

/// A `data` column (JSON text, or a blob holding it) as an object: [`data_object`], or why
/// not when the column holds something else.
pub(super) type DataColumn = Result<(Map<String, Value>, Option<String>), String>;

/// The `data` column at `i` (see [`DataColumn`]).
pub(super) fn data_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DataColumn> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => data_object("data", b),
        other => Err(format!("data is {}, not JSON text", Cell::of(other).kind)),
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

/// The row of `table` whose id is `id`, column by column.
pub(super) fn row_by_id(
    conn: &Connection,
    table: &str,
    id: &str,
) -> Result<Option<HashMap<String, Cell>>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    Ok(stmt
        .query_row([id], |r| {
            let mut map = HashMap::new();
            for (i, name) in names.iter().enumerate() {
                map.insert(name.clone(), Cell::of(r.get_ref(i)?));
            }
            Ok(map)
        })
        .optional()?)
}

/// The Session as OpenCode's events carry it, from a session row's columns (`columns`
/// are the table's: OpenCode 1.x's `session` and 2's `session_v2` name them alike), with
/// the id it was listed under. A column of the wrong type costs its field only (a
/// missing creation time is taken from the session's `data`, else its update time); what
/// was odd is one note.
pub(super) fn session_info(
    columns: &[String],
    id: &str,
    row: &HashMap<String, Cell>,
) -> (SessionInfo, Vec<String>) {
    let has = |column: &str| columns.iter().any(|c| c == column);
    let null = Cell::of(ValueRef::Null);
    let get = |name: &str| row.get(name).unwrap_or(&null);
    let mut reasons = Vec::new();
    let mut obj = Map::new();
    obj.insert("id".into(), Value::String(id.to_owned()));
    for (field, column) in SESSION_FIELD_COLUMNS {
        if has(column) {
            let cell = get(column);
            if cell.lossy {
                reasons.push(format!(
                    "{column} is not valid UTF-8: read with U+FFFD in its place"
                ));
            }
            obj.insert((*field).into(), cell.value.clone());
        }
    }
    if has("tokens_input") {
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
    if left_out.iter().any(|f| f == "time.created") || !has("time_created") {
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
        if has("time_created") {
            reasons.push(format!(
                "time_created is {}: {source}",
                get("time_created").kind
            ));
        }
    }
    (info, reasons)
}

/// Every row of a session table (`session` or `session_v2`, whose `columns` are given)
/// as a summary; a row without a usable id is a note.
pub(super) fn list_sessions(
    conn: &Connection,
    path: &Path,
    table: &str,
    columns: &[String],
    notes: &mut Notes,
) -> Result<Vec<SessionSummary>> {
    let pick = |col: &str| {
        if columns.iter().any(|c| c == col) {
            col.to_owned()
        } else {
            "NULL".to_owned()
        }
    };
    let sql = format!(
        "SELECT id, {}, {}, {}, {} FROM {table}",
        pick("title"),
        pick("directory"),
        pick("time_created"),
        pick("time_updated"),
    );
    let mut sessions = Vec::new();
    let mut stmt = conn.prepare(&sql)?;
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
            row.with_context(|| format!("listing sessions in {}", path.display()))?;
        // An id that is not UTF-8 text could not be looked up again.
        let Some(id) = id.id().filter(|_| !id.lossy) else {
            notes.skipped(
                table,
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
    Ok(sessions)
}

/// Messages (rows of `message_table`) that belong to no session of `session_table` (no
/// session id, or one no session has): never sent, since they would create a session
/// `""` or one OpenCode does not have. The first [`MAX_NOTES`] are named, the rest
/// counted.
pub(super) fn orphan_notes(
    conn: &Connection,
    message_table: &str,
    session_table: &str,
    notes: &mut Notes,
) -> Result<()> {
    let orphans = format!(
        "FROM {message_table} m WHERE m.session_id IS NULL OR m.session_id = ''
           OR NOT EXISTS (SELECT 1 FROM {session_table} s WHERE s.id = m.session_id)"
    );
    let total: i64 = conn.query_row(&format!("SELECT count(*) {orphans}"), [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, session_id {orphans} ORDER BY id LIMIT ?1"
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
        notes.skipped(message_table, message_id.id().as_deref(), None, why);
        named += 1;
    }
    notes.over += usize::try_from(total).unwrap_or(0).saturating_sub(named);
    Ok(())
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
        let v2 = V2Tables::detect(&conn, path)?;
        let session_columns = columns(&conn, "session")?;
        // OpenCode 2 alone: no 1.x tables to read.
        let v1 = if session_columns.is_empty() && v2.is_some() {
            None
        } else {
            Some(V1Tables::detect(&conn, path, session_columns)?)
        };
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
            v1,
            v2,
            conn,
            projects,
        })
    }

    fn read_v1_session(&self, v1: &V1Tables, id: &str) -> Result<Option<StoredSession>> {
        let Some(row) = row_by_id(&self.conn, "session", id)? else {
            return Ok(None);
        };
        let mut notes = Notes::default();
        let (info, reasons) = session_info(&v1.session_columns, id, &row);
        notes.partly("session", id, id, reasons);
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();

        let updated = if v1.message_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, {updated}, data FROM message WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], |r| {
            Ok((Cell::of(r.get_ref(0)?), number_at(r, 1)?, data_at(r, 2)?))
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

        let updated = if v1.part_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let sql = if v1.part_has_session {
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
                Cell::of(r.get_ref(0)?),
                Cell::of(r.get_ref(1)?),
                number_at(r, 2)?,
                data_at(r, 3)?,
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
}

impl V1Tables {
    /// OpenCode 1.x's tables: a missing one is named as such (the store is not
    /// OpenCode's, or not whole, and reading sessions without their parts would send them
    /// without text).
    fn detect(conn: &Connection, path: &Path, session_columns: Vec<String>) -> Result<Self> {
        let message_columns = columns(conn, "message")?;
        let part_columns = columns(conn, "part")?;
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
        Ok(Self {
            message_has_updated: message_columns.iter().any(|c| c == "time_updated"),
            part_has_updated: part_columns.iter().any(|c| c == "time_updated"),
            part_has_session: part_columns.iter().any(|c| c == "session_id"),
            session_columns,
        })
    }
}

impl HistoryStore for SqliteStore {
    fn list(&mut self) -> Result<Listing> {
        let mut notes = Notes::default();
        let v1 = match &self.v1 {
            Some(v1) => {
                let sessions = list_sessions(
                    &self.conn,
                    &self.path,
                    "session",
                    &v1.session_columns,
                    &mut notes,
                )?;
                orphan_notes(&self.conn, "message", "session", &mut notes)?;
                sessions
            }
            None => Vec::new(),
        };
        let v2 = match &self.v2 {
            Some(v2) => v2.list(&self.conn, &self.path, &mut notes)?,
            None => Vec::new(),
        };
        let mut sessions = v2::merge_summaries(v1, v2);
        sort_summaries(&mut sessions);
        Ok(Listing {
            sessions,
            notes: notes.finish(None),
        })
    }

    fn load(&mut self, id: &str) -> Result<Option<StoredSession>> {
        // One read transaction: the session's rows, from either table set, from one
        // snapshot.
        self.conn.execute_batch("BEGIN")?;
        let result = (|| -> Result<Option<StoredSession>> {
            let v1 = match &self.v1 {
                Some(v1) => self.read_v1_session(v1, id)?,
                None => None,
            };
            let v2 = match &self.v2 {
                Some(v2) => v2.read_session(&self.conn, id, &self.projects)?,
                None => None,
            };
            Ok(v2::merge(v1, v2))
        })();
        let end = self.conn.execute_batch("COMMIT");
        let session =
            result.with_context(|| format!("reading session {id} from {}", self.path.display()))?;
        end?;
        Ok(session)
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
