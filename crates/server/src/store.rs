//! SQLite storage: users (API keys), sessions, messages and parts, shaped like
//! the real backend's Convex tables so the upsert rules in `sync` read the same
//! way, plus the full dump that tests assert against.
//!
//! Numbers are stored as SQLite REAL because Convex numbers are float64; they are
//! written back to JSON as integers when they have no fractional part, which is
//! what a JavaScript client sees from the real server.
//!
//! The schema grows by numbered migrations ([`MIGRATIONS`], tracked in
//! `PRAGMA user_version`), so a database written by an older binary opens
//! with its data and gains the new columns.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Map, Value, json};

use crate::error::ServerError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    api_key TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    external_id TEXT NOT NULL,
    title TEXT,
    project_path TEXT,
    project_name TEXT,
    model TEXT,
    provider TEXT,
    source TEXT,
    prompt_tokens REAL NOT NULL,
    completion_tokens REAL NOT NULL,
    total_tokens REAL NOT NULL,
    cost REAL NOT NULL,
    duration_ms REAL,
    searchable_text TEXT,
    message_count INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user_external ON sessions(user_id, external_id);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    external_id TEXT NOT NULL,
    role TEXT NOT NULL,
    text_content TEXT,
    model TEXT,
    prompt_tokens REAL,
    completion_tokens REAL,
    duration_ms REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_external_id ON messages(external_id);
CREATE INDEX IF NOT EXISTS messages_by_session_created ON messages(session_id, created_at);
CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    ord INTEGER NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parts_by_message ON parts(message_id, ord);
";

/// The schema changes after [`SCHEMA`], in order: a database at
/// `user_version` n has had the first n applied. Only ever append.
const MIGRATIONS: &[&str] = &[
    // 1: the git branch the plugin sends with a session (`gitBranch`).
    "ALTER TABLE sessions ADD COLUMN git_branch TEXT;
     CREATE INDEX IF NOT EXISTS sessions_by_user_branch ON sessions(user_id, git_branch);",
];

/// Brings the schema up to date: the base tables, then every migration the
/// database has not had, each in its own transaction with its version.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The database behind one server. One connection, used under a lock: every
/// mutation is a short transaction, as a Convex mutation is.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database; `None` keeps it in memory.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self, ServerError> {
        let open_err = |source| ServerError::OpenDatabase {
            path: path.map_or_else(|| PathBuf::from(":memory:"), Path::to_path_buf),
            source,
        };
        let mut conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(open_err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_err)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrate(&mut conn).map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The connection. A panic while it was held cannot leave a transaction
    /// open (dropping a `Transaction` rolls back), so a poisoned lock is reused.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Adds the key as a user, or re-activates it if it was revoked.
pub(crate) fn add_key(conn: &Connection, key: &str, now: f64) -> Result<(), ServerError> {
    conn.execute(
        "INSERT INTO users (api_key, active, created_at) VALUES (?1, 1, ?2)
         ON CONFLICT(api_key) DO UPDATE SET active = 1",
        params![key, now],
    )?;
    Ok(())
}

/// On a single-owner server: when `key` is new and the database holds exactly one
/// user, that user takes it (a lost or deleted key file must not orphan the sessions
/// stored under the old key). Returns whether the user was given the new key.
pub(crate) fn hand_sole_user_to(conn: &Connection, key: &str) -> Result<bool, ServerError> {
    let n = conn.execute(
        "UPDATE users SET api_key = ?1, active = 1
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE api_key = ?1)
           AND (SELECT COUNT(*) FROM users) = 1",
        params![key],
    )?;
    Ok(n > 0)
}

/// Revokes the key; returns whether it was active.
pub(crate) fn revoke_key(conn: &Connection, key: &str) -> Result<bool, ServerError> {
    let n = conn.execute(
        "UPDATE users SET active = 0 WHERE api_key = ?1 AND active = 1",
        params![key],
    )?;
    Ok(n > 0)
}

/// The user an active key belongs to.
pub(crate) fn user_for_key(conn: &Connection, key: &str) -> Result<Option<i64>, ServerError> {
    Ok(conn
        .query_row(
            "SELECT id FROM users WHERE api_key = ?1 AND active = 1",
            params![key],
            |r| r.get(0),
        )
        .optional()?)
}

/// Which Convex table an id belongs to (only changes the id's prefix).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    Users,
    Sessions,
    Messages,
    Parts,
}

const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn id_prefix(table: Table) -> &'static str {
    match table {
        Table::Users => "jh",
        Table::Sessions => "js",
        Table::Messages => "k5",
        Table::Parts => "m7",
    }
}

/// An opaque 32-character id in the style of a Convex document id.
pub(crate) fn doc_id(table: Table, rowid: i64) -> String {
    const ALPHABET: &[u8; 32] = ID_ALPHABET;
    let prefix = id_prefix(table);
    let mut n = u64::try_from(rowid).unwrap_or(0);
    let mut digits = [b'0'; 30];
    for slot in digits.iter_mut().rev() {
        // `n % 32` is below 32, so the index is in range.
        *slot = ALPHABET[usize::try_from(n % 32).unwrap_or(0)];
        n /= 32;
    }
    format!("{prefix}{}", String::from_utf8_lossy(&digits))
}

/// The row id behind a [`doc_id`] of `table`, or `None` if `id` is not one.
pub(crate) fn parse_doc_id(table: Table, id: &str) -> Option<i64> {
    let digits = id.strip_prefix(id_prefix(table))?;
    if digits.len() != 30 {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        let d = ID_ALPHABET.iter().position(|&a| a == b)?;
        n = n.checked_mul(32)?.checked_add(u64::try_from(d).ok()?)?;
    }
    i64::try_from(n).ok()
}

/// A stored session, column for column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) external_id: String,
    pub(crate) title: Option<String>,
    pub(crate) project_path: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) prompt_tokens: f64,
    pub(crate) completion_tokens: f64,
    pub(crate) total_tokens: f64,
    pub(crate) cost: f64,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) searchable_text: Option<String>,
    pub(crate) message_count: i64,
    pub(crate) created_at: f64,
    pub(crate) updated_at: f64,
    /// The git branch the plugin last sent (`gitBranch`), if any.
    pub(crate) git_branch: Option<String>,
}

pub(crate) const SESSION_COLUMNS: &str = "id, user_id, external_id, title, project_path, project_name, \
    model, provider, source, prompt_tokens, completion_tokens, total_tokens, cost, duration_ms, \
    searchable_text, message_count, created_at, updated_at, git_branch";

pub(crate) fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        external_id: r.get(2)?,
        title: r.get(3)?,
        project_path: r.get(4)?,
        project_name: r.get(5)?,
        model: r.get(6)?,
        provider: r.get(7)?,
        source: r.get(8)?,
        prompt_tokens: r.get(9)?,
        completion_tokens: r.get(10)?,
        total_tokens: r.get(11)?,
        cost: r.get(12)?,
        duration_ms: r.get(13)?,
        searchable_text: r.get(14)?,
        message_count: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
        git_branch: r.get(18)?,
    })
}

/// The session `(user, externalId)`, first by insertion as Convex's index returns it.
pub(crate) fn find_session(
    tx: &Transaction<'_>,
    user_id: i64,
    external_id: &str,
) -> rusqlite::Result<Option<SessionRow>> {
    tx.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND external_id = ?2 \
             ORDER BY id LIMIT 1"
    ))?
    .query_row(params![user_id, external_id], session_from_row)
    .optional()
}

/// Inserts `row` (its `id` is ignored); returns the new id.
pub(crate) fn insert_session(tx: &Transaction<'_>, row: &SessionRow) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO sessions (user_id, external_id, title, project_path, project_name, model, \
         provider, source, prompt_tokens, completion_tokens, total_tokens, cost, duration_ms, \
         searchable_text, message_count, created_at, updated_at, git_branch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        row.user_id,
        row.external_id,
        row.title,
        row.project_path,
        row.project_name,
        row.model,
        row.provider,
        row.source,
        row.prompt_tokens,
        row.completion_tokens,
        row.total_tokens,
        row.cost,
        row.duration_ms,
        row.searchable_text,
        row.message_count,
        row.created_at,
        row.updated_at,
        row.git_branch,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Writes every mutable column of `row` back.
pub(crate) fn update_session(tx: &Transaction<'_>, row: &SessionRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET title = ?2, project_path = ?3, project_name = ?4, model = ?5, \
         provider = ?6, source = ?7, prompt_tokens = ?8, completion_tokens = ?9, \
         total_tokens = ?10, cost = ?11, duration_ms = ?12, searchable_text = ?13, \
         message_count = ?14, updated_at = ?15, git_branch = ?16 WHERE id = ?1",
    )?
    .execute(params![
        row.id,
        row.title,
        row.project_path,
        row.project_name,
        row.model,
        row.provider,
        row.source,
        row.prompt_tokens,
        row.completion_tokens,
        row.total_tokens,
        row.cost,
        row.duration_ms,
        row.searchable_text,
        row.message_count,
        row.updated_at,
        row.git_branch,
    ])?;
    Ok(())
}

/// Sets only a session's git branch (nothing else, not `updatedAt`).
pub(crate) fn set_git_branch(
    tx: &Transaction<'_>,
    session_id: i64,
    branch: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE sessions SET git_branch = ?2 WHERE id = ?1")?
        .execute(params![session_id, branch])?;
    Ok(())
}

/// A stored message, column for column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MessageRow {
    pub(crate) id: i64,
    pub(crate) session_id: i64,
    pub(crate) external_id: String,
    pub(crate) role: String,
    pub(crate) text_content: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) prompt_tokens: Option<f64>,
    pub(crate) completion_tokens: Option<f64>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) created_at: f64,
}

pub(crate) const MESSAGE_COLUMNS: &str = "id, session_id, external_id, role, text_content, model, \
    prompt_tokens, completion_tokens, duration_ms, created_at";

pub(crate) fn message_from_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        session_id: r.get(1)?,
        external_id: r.get(2)?,
        role: r.get(3)?,
        text_content: r.get(4)?,
        model: r.get(5)?,
        prompt_tokens: r.get(6)?,
        completion_tokens: r.get(7)?,
        duration_ms: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// The message with this `externalId`, looked up across all users as the real
/// backend's `by_external_id` index does.
pub(crate) fn find_message(
    tx: &Transaction<'_>,
    external_id: &str,
) -> rusqlite::Result<Option<MessageRow>> {
    tx.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE external_id = ?1 ORDER BY id LIMIT 1"
    ))?
    .query_row(params![external_id], message_from_row)
    .optional()
}

/// Inserts `row` (its `id` is ignored); returns the new id.
pub(crate) fn insert_message(tx: &Transaction<'_>, row: &MessageRow) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO messages (session_id, external_id, role, text_content, model, prompt_tokens, \
         completion_tokens, duration_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        row.session_id,
        row.external_id,
        row.role,
        row.text_content,
        row.model,
        row.prompt_tokens,
        row.completion_tokens,
        row.duration_ms,
        row.created_at,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Writes the patchable columns of `row` back (never its session, role or time).
pub(crate) fn update_message(tx: &Transaction<'_>, row: &MessageRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE messages SET text_content = ?2, model = ?3, prompt_tokens = ?4, \
         completion_tokens = ?5, duration_ms = ?6 WHERE id = ?1",
    )?
    .execute(params![
        row.id,
        row.text_content,
        row.model,
        row.prompt_tokens,
        row.completion_tokens,
        row.duration_ms,
    ])?;
    Ok(())
}

/// Deletes every part of a message.
pub(crate) fn delete_parts(tx: &Transaction<'_>, message_id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM parts WHERE message_id = ?1")?
        .execute(params![message_id])?;
    Ok(())
}

/// Inserts parts in order (`order` = index).
pub(crate) fn insert_parts(
    tx: &Transaction<'_>,
    message_id: i64,
    parts: &[(String, Value)],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO parts (message_id, ord, type, content) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (order, (kind, content)) in parts.iter().enumerate() {
        let order = i64::try_from(order).unwrap_or(i64::MAX);
        stmt.execute(params![message_id, order, kind, content.to_string()])?;
    }
    Ok(())
}

/// The `externalId`s of a user's sessions, in insertion order.
pub(crate) fn list_external_ids(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT external_id FROM sessions WHERE user_id = ?1 ORDER BY id")?;
    let ids = stmt
        .query_map(params![user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// A Convex number as a JavaScript client would see it in JSON.
pub(crate) fn num(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < EXACT {
        // In range and integral, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        return json!(n as i64);
    }
    json!(n)
}

pub(crate) fn put_str(map: &mut Map<String, Value>, key: &str, v: Option<&String>) {
    if let Some(v) = v {
        map.insert(key.to_owned(), json!(v));
    }
}

pub(crate) fn put_num(map: &mut Map<String, Value>, key: &str, v: Option<f64>) {
    if let Some(v) = v {
        map.insert(key.to_owned(), num(v));
    }
}

/// JSON of a session as stored; absent (undefined) fields are omitted as Convex does.
pub(crate) fn session_json(s: &SessionRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_id".into(), json!(doc_id(Table::Sessions, s.id)));
    m.insert("userId".into(), json!(doc_id(Table::Users, s.user_id)));
    m.insert("externalId".into(), json!(s.external_id));
    put_str(&mut m, "title", s.title.as_ref());
    put_str(&mut m, "projectPath", s.project_path.as_ref());
    put_str(&mut m, "projectName", s.project_name.as_ref());
    put_str(&mut m, "model", s.model.as_ref());
    put_str(&mut m, "provider", s.provider.as_ref());
    put_str(&mut m, "source", s.source.as_ref());
    put_num(&mut m, "promptTokens", Some(s.prompt_tokens));
    put_num(&mut m, "completionTokens", Some(s.completion_tokens));
    put_num(&mut m, "totalTokens", Some(s.total_tokens));
    put_num(&mut m, "cost", Some(s.cost));
    put_num(&mut m, "durationMs", s.duration_ms);
    m.insert("isPublic".into(), json!(false));
    put_str(&mut m, "searchableText", s.searchable_text.as_ref());
    m.insert("messageCount".into(), json!(s.message_count));
    put_num(&mut m, "createdAt", Some(s.created_at));
    put_num(&mut m, "updatedAt", Some(s.updated_at));
    put_str(&mut m, "gitBranch", s.git_branch.as_ref());
    m
}

fn message_json(msg: &MessageRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_id".into(), json!(doc_id(Table::Messages, msg.id)));
    m.insert(
        "sessionId".into(),
        json!(doc_id(Table::Sessions, msg.session_id)),
    );
    m.insert("externalId".into(), json!(msg.external_id));
    m.insert("role".into(), json!(msg.role));
    put_str(&mut m, "textContent", msg.text_content.as_ref());
    put_str(&mut m, "model", msg.model.as_ref());
    put_num(&mut m, "promptTokens", msg.prompt_tokens);
    put_num(&mut m, "completionTokens", msg.completion_tokens);
    put_num(&mut m, "durationMs", msg.duration_ms);
    put_num(&mut m, "createdAt", Some(msg.created_at));
    m
}

/// Everything stored, nested user -> sessions -> messages (dashboard order:
/// `createdAt`, then arrival) -> parts (in order). API keys are included: the
/// dump is test tooling, served only on the control listener.
pub(crate) fn dump(conn: &Connection) -> Result<Value, ServerError> {
    let mut users_stmt =
        conn.prepare("SELECT id, api_key, active, created_at FROM users ORDER BY id")?;
    let users = users_stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut sessions_stmt = conn.prepare(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY id"
    ))?;
    let mut messages_stmt = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY created_at, id"
    ))?;
    let mut parts_stmt = conn.prepare(
        "SELECT id, ord, type, content FROM parts WHERE message_id = ?1 ORDER BY ord, id",
    )?;

    let mut out_users = Vec::with_capacity(users.len());
    for (user_id, api_key, active, created_at) in users {
        let sessions = sessions_stmt
            .query_map(params![user_id], session_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out_sessions = Vec::with_capacity(sessions.len());
        for s in &sessions {
            let messages = messages_stmt
                .query_map(params![s.id], message_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out_messages = Vec::with_capacity(messages.len());
            for msg in &messages {
                let parts = parts_stmt
                    .query_map(params![msg.id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let parts: Vec<Value> = parts
                    .into_iter()
                    .map(|(id, order, kind, content)| {
                        json!({
                            "_id": doc_id(Table::Parts, id),
                            "type": kind,
                            "content": serde_json::from_str::<Value>(&content).unwrap_or(Value::Null),
                            "order": order,
                        })
                    })
                    .collect();
                let mut m = message_json(msg);
                m.insert("parts".into(), Value::Array(parts));
                out_messages.push(Value::Object(m));
            }
            let mut m = session_json(s);
            m.insert("messages".into(), Value::Array(out_messages));
            out_sessions.push(Value::Object(m));
        }
        out_users.push(json!({
            "_id": doc_id(Table::Users, user_id),
            "apiKey": api_key,
            "active": active,
            "createdAt": num(created_at),
            "sessions": out_sessions,
        }));
    }
    Ok(json!({ "users": out_users }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_fixed_width() {
        let a = doc_id(Table::Sessions, 1);
        let b = doc_id(Table::Sessions, 2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(doc_id(Table::Messages, 1), a);
    }

    #[test]
    fn ids_parse_back() {
        for rowid in [0, 1, 31, 32, 1_000_003, i64::MAX] {
            assert_eq!(
                parse_doc_id(Table::Sessions, &doc_id(Table::Sessions, rowid)),
                Some(rowid)
            );
        }
        assert_eq!(
            parse_doc_id(Table::Sessions, &doc_id(Table::Messages, 7)),
            None
        );
        assert_eq!(parse_doc_id(Table::Sessions, "js123"), None);
        assert_eq!(parse_doc_id(Table::Sessions, "ses_abc"), None);
        let bad = format!("js{}", "i".repeat(30)); // `i` is not in the alphabet
        assert_eq!(parse_doc_id(Table::Sessions, &bad), None);
    }

    #[test]
    fn numbers_render_like_javascript() {
        assert_eq!(num(3.0), json!(3));
        assert_eq!(num(0.25), json!(0.25));
        assert_eq!(num(-2.0), json!(-2));
    }

    #[test]
    fn keys_add_revoke_readd() {
        let store = Store::open(None).unwrap();
        let conn = store.lock();
        add_key(&conn, "osk_a", 1.0).unwrap();
        let user = user_for_key(&conn, "osk_a").unwrap().unwrap();
        assert!(revoke_key(&conn, "osk_a").unwrap());
        assert!(!revoke_key(&conn, "osk_a").unwrap());
        assert_eq!(user_for_key(&conn, "osk_a").unwrap(), None);
        add_key(&conn, "osk_a", 2.0).unwrap();
        assert_eq!(user_for_key(&conn, "osk_a").unwrap(), Some(user));
    }

    #[test]
    fn only_a_sole_user_is_handed_a_new_key() {
        let store = Store::open(None).unwrap();
        let conn = store.lock();
        assert!(!hand_sole_user_to(&conn, "osk_a").unwrap(), "no user yet");
        add_key(&conn, "osk_a", 1.0).unwrap();
        let user = user_for_key(&conn, "osk_a").unwrap();
        assert!(!hand_sole_user_to(&conn, "osk_a").unwrap(), "its own key");
        assert!(hand_sole_user_to(&conn, "osk_b").unwrap());
        assert_eq!(user_for_key(&conn, "osk_b").unwrap(), user);
        assert_eq!(user_for_key(&conn, "osk_a").unwrap(), None);
        add_key(&conn, "osk_c", 2.0).unwrap();
        assert!(!hand_sole_user_to(&conn, "osk_d").unwrap(), "two users");
        assert_eq!(user_for_key(&conn, "osk_d").unwrap(), None);
    }
}
