//! OpenCode 2's tables in `opencode.db`, read as the same model values OpenCode 1.x's
//! rows give, so the one mapping (`opencode_sync_core::map`) sends a V2 session exactly
//! like a V1 one.
//!
//! OpenCode 2 keeps a session in `session_v2` (the same columns as 1.x's `session`) and
//! its history in `session_message`: one row per user prompt, per assistant model STEP
//! (each becomes one assistant message), per finished turn (`idle`) and per other event
//! of the conversation (`synthetic`, `compaction`, `*-switched`, ...). A row's `data` is
//! the message JSON without `id` and `type`; there is no part table, an assistant step's
//! parts are its `data.content` items (`text`, `reasoning`, `tool`). A tool item's
//! `state` carries `{status, input, content, metadata.exit, error}`; a `subagent` call's
//! child is its own `session_v2` row with `parent_id`.
//!
//! OpenCode 2 copies every 1.x session into its tables with the same session and
//! message ids and keeps the 1.x tables, which 1.x goes on writing if it runs again: a
//! session may have grown on either side since. [`merge`] keeps each session once (the
//! newer `time_updated` wins) and each message once by id (the newer row wins).
//!
//! Rows are read as leniently as 1.x's (see `rows`): a wrong-typed field costs that
//! field, a row that cannot be read at all costs itself, each named once in a note.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, bail};
use opencode_sync_core::backfill::SessionSummary;
use opencode_sync_core::model::{MessageInfo, PartInfo};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::rows::{Notes, left_out_text, message_of, part_of};
use super::sqlite::{
    Cell, columns, data_at, list_sessions, number_at, orphan_notes, row_by_id, session_info,
};
use super::{DB_FILE, StoredMessage, StoredSession, sort_messages};

/// OpenCode 2's session table.
pub(super) const SESSION_TABLE: &str = "session_v2";
/// OpenCode 2's message table.
pub(super) const MESSAGE_TABLE: &str = "session_message";

/// `session_message` types that are part of a conversation but no message the dashboard
/// shows: they are passed over without a note. `idle` ends a turn; the others are
/// OpenCode's own reminders, compactions, shell commands and switches.
const NOT_MESSAGES: &[&str] = &[
    "idle",
    "synthetic",
    "system",
    "skill",
    "shell",
    "compaction",
    "agent-switched",
    "model-switched",
    "location-switched",
];

/// OpenCode 2's tables in this file and which optional columns they have.
#[derive(Debug)]
pub(super) struct V2Tables {
    session_columns: Vec<String>,
    message_has_updated: bool,
    message_has_seq: bool,
}

impl V2Tables {
    /// `None` when the file has no `session_v2` table (OpenCode 1.x's files already hold
    /// an empty `session_message`); an error when it has one without the rest.
    pub(super) fn detect(conn: &Connection, path: &Path) -> Result<Option<Self>> {
        let session_columns = columns(conn, SESSION_TABLE)?;
        if session_columns.is_empty() {
            return Ok(None);
        }
        let message_columns = columns(conn, MESSAGE_TABLE)?;
        if message_columns.is_empty() {
            bail!(
                "{} has a `{SESSION_TABLE}` table but no `{MESSAGE_TABLE}` table: is this OpenCode's {DB_FILE}?",
                path.display()
            );
        }
        for (table, cols, needed) in [
            (SESSION_TABLE, &session_columns, &["id"][..]),
            (
                MESSAGE_TABLE,
                &message_columns,
                &["id", "session_id", "type", "data"][..],
            ),
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
        Ok(Some(Self {
            message_has_updated: message_columns.iter().any(|c| c == "time_updated"),
            message_has_seq: message_columns.iter().any(|c| c == "seq"),
            session_columns,
        }))
    }

    /// Every `session_v2` row as a summary, and notes on rows that belong to none.
    pub(super) fn list(
        &self,
        conn: &Connection,
        path: &Path,
        notes: &mut Notes,
    ) -> Result<Vec<SessionSummary>> {
        let sessions = list_sessions(conn, path, SESSION_TABLE, &self.session_columns, notes)?;
        orphan_notes(conn, MESSAGE_TABLE, SESSION_TABLE, notes)?;
        Ok(sessions)
    }

    /// One session from `session_v2` + `session_message`; `None` when it has no row.
    pub(super) fn read_session(
        &self,
        conn: &Connection,
        id: &str,
        projects: &HashMap<String, String>,
    ) -> Result<Option<StoredSession>> {
        let Some(row) = row_by_id(conn, SESSION_TABLE, id)? else {
            return Ok(None);
        };
        let mut notes = Notes::default();
        let (mut info, reasons) = session_info(&self.session_columns, id, &row);
        notes.partly(SESSION_TABLE, id, id, reasons);
        // The totals columns default to 0: all zero is "no totals", which the backfill
        // then sums from the steps (as for stores that keep none).
        let zero = info.tokens.as_ref().is_none_or(|t| {
            t.input == 0.0
                && t.output == 0.0
                && t.reasoning == 0.0
                && t.cache.read == 0.0
                && t.cache.write == 0.0
        }) && info.cost.is_none_or(|c| c == 0.0);
        if zero {
            info.tokens = None;
            info.cost = None;
        }
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| projects.get(p))
            .cloned();

        let updated = if self.message_has_updated {
            "time_updated"
        } else {
            "0"
        };
        let order = if self.message_has_seq {
            "seq, id"
        } else {
            "id"
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, type, {updated}, data FROM {MESSAGE_TABLE} WHERE session_id = ?1 ORDER BY {order}"
        ))?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                Cell::of(r.get_ref(0)?),
                Cell::of(r.get_ref(1)?),
                number_at(r, 2)?,
                data_at(r, 3)?,
            ))
        })?;
        let mut messages = Vec::new();
        for row in rows {
            let (message_id, kind, time_updated, data) = row?;
            let Some(message_id) = message_id.id() else {
                notes.skipped(MESSAGE_TABLE, None, Some(id), "it has no id".to_owned());
                continue;
            };
            let kind = match kind.value {
                Value::String(kind) => kind,
                _ => {
                    notes.skipped(
                        MESSAGE_TABLE,
                        Some(&message_id),
                        Some(id),
                        format!("its type is {}, not text", kind.kind),
                    );
                    continue;
                }
            };
            if NOT_MESSAGES.contains(&kind.as_str()) {
                continue;
            }
            if kind != "user" && kind != "assistant" {
                notes.skipped(
                    MESSAGE_TABLE,
                    Some(&message_id),
                    Some(id),
                    format!("type \"{kind}\" is not one OpenCode 2 writes"),
                );
                continue;
            }
            let read = data.and_then(|(obj, utf8)| {
                message_of_row(&kind, obj, &message_id, id).map(|(message, reasons)| {
                    let reasons: Vec<String> = utf8.into_iter().chain(reasons).collect();
                    (message, reasons)
                })
            });
            let (info, parts, reasons) = match read {
                Ok(((info, parts), reasons)) => (info, parts, reasons),
                Err(why) => {
                    notes.skipped(MESSAGE_TABLE, Some(&message_id), Some(id), why);
                    continue;
                }
            };
            notes.partly(MESSAGE_TABLE, &message_id, id, reasons);
            let mark = time_updated
                .unwrap_or(0.0)
                .max(info.time.completed.unwrap_or(0.0))
                .max(info.time.created);
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

/// A message with its parts.
type MessageWithParts = (MessageInfo, Vec<PartInfo>);

/// A `user` or `assistant` row's data as the message and parts OpenCode 1.x would have
/// stored for it, and what was left out; `Err(why)` when it is no message at all.
fn message_of_row(
    kind: &str,
    data: Map<String, Value>,
    message_id: &str,
    session_id: &str,
) -> Result<(MessageWithParts, Vec<String>), String> {
    let mut obj = Map::new();
    obj.insert("role".into(), json!(kind));
    if let Some(time) = data.get("time") {
        obj.insert("time".into(), time.clone());
    }
    let mut reasons = Vec::new();
    let mut part_data = Vec::new();
    if kind == "user" {
        match data.get("text") {
            Some(Value::String(text)) => part_data.push(json!({"type": "text", "text": text})),
            None | Some(Value::Null) => {}
            Some(_) => reasons.push("data field text of the wrong type left out".to_owned()),
        }
    } else {
        match data.get("model") {
            Some(Value::Object(model)) => {
                for (from, to) in [("id", "modelID"), ("providerID", "providerID")] {
                    if let Some(v) = model.get(from) {
                        obj.insert(to.into(), v.clone());
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => reasons.push("data field model of the wrong type left out".to_owned()),
        }
        for field in ["cost", "tokens", "finish", "error"] {
            if let Some(v) = data.get(field) {
                obj.insert(field.into(), v.clone());
            }
        }
        match data.get("content") {
            Some(Value::Array(items)) => {
                for (k, item) in items.iter().enumerate() {
                    match part_of_item(item) {
                        Ok(Some(part)) => part_data.push(part),
                        Ok(None) => {}
                        Err(why) => reasons.push(format!("content item {k} {why}: left out")),
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => reasons.push("data field content of the wrong type left out".to_owned()),
        }
    }
    let (info, left_out) = message_of(obj, message_id, session_id)?;
    let left_out: Vec<String> = left_out
        .into_iter()
        .map(|f| match f.as_str() {
            "modelID" => "model.id".to_owned(),
            "providerID" => "model.providerID".to_owned(),
            _ => f,
        })
        .collect();
    reasons.extend(left_out_text(&left_out));
    let mut parts = Vec::new();
    for (k, data) in part_data.into_iter().enumerate() {
        let Value::Object(data) = data else { continue };
        let part_id = format!("{message_id}:{k}");
        match part_of(data, &part_id, message_id, session_id) {
            Ok((part, left_out)) => {
                if let Some(text) = left_out_text(&left_out) {
                    reasons.push(format!("content item {k}: {text}"));
                }
                parts.push(part);
            }
            Err(why) => reasons.push(format!("content item {k}: {why}: left out")),
        }
    }
    Ok(((info, parts), reasons))
}

/// One `content` item as the part OpenCode 1.x would have stored (without its ids):
/// `None` for an item kind the dashboard does not show, `Err` for one that is no item.
fn part_of_item(item: &Value) -> Result<Option<Value>, &'static str> {
    let Value::Object(item) = item else {
        return Err("is not an object");
    };
    let field = |name: &str| item.get(name).cloned().unwrap_or(Value::Null);
    Ok(match item.get("type").and_then(Value::as_str) {
        Some(kind @ ("text" | "reasoning")) => Some(json!({"type": kind, "text": field("text")})),
        Some("tool") => Some(tool_part(item)),
        Some(_) => None,
        None => return Err("has no type"),
    })
}

/// A `tool` content item as a 1.x tool part: `state.content`'s text items joined are the
/// output, `state.error.message` the error, `metadata.exit` the exit code, and the call
/// runs from `time.ran` (when it started running, as 1.x's `time.start`; else
/// `time.created`) to `time.completed`.
fn tool_part(item: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let state = item
        .get("state")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let time = item
        .get("time")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let status = match state.get("status") {
        // A call whose input is still streaming: 1.x calls that `pending`.
        Some(Value::String(s)) if s == "streaming" => json!("pending"),
        Some(s) => s.clone(),
        None => Value::Null,
    };
    let output = match state.get("content") {
        Some(Value::Array(items)) => {
            let texts: Vec<&str> = items
                .iter()
                .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| json!(texts.concat()))
        }
        _ => None,
    };
    let error = match state.get("error") {
        Some(Value::Object(e)) => e.get("message").cloned(),
        Some(Value::String(s)) => Some(json!(s)),
        _ => None,
    };
    let mut tool_state = Map::new();
    tool_state.insert("status".into(), status);
    tool_state.insert(
        "input".into(),
        state.get("input").cloned().unwrap_or_else(|| json!({})),
    );
    if let Some(output) = output {
        tool_state.insert("output".into(), output);
    }
    if let Some(error) = error {
        tool_state.insert("error".into(), error);
    }
    if let Some(metadata) = state.get("metadata") {
        tool_state.insert("metadata".into(), metadata.clone());
    }
    let start = time
        .get("ran")
        .filter(|v| v.is_number())
        .or_else(|| time.get("created"));
    let mut times = Map::new();
    if let Some(start) = start {
        times.insert("start".into(), start.clone());
    }
    if let Some(end) = time.get("completed") {
        times.insert("end".into(), end.clone());
    }
    tool_state.insert("time".into(), Value::Object(times));
    json!({
        "type": "tool",
        "callID": item.get("id").cloned().unwrap_or(Value::Null),
        "tool": item.get("name").cloned().unwrap_or(Value::Null),
        "state": tool_state,
    })
}

/// The newer of a session's time: `time.updated`, else `time.created`.
fn updated_of(s: &StoredSession) -> f64 {
    s.info.time.updated.unwrap_or(s.info.time.created)
}

/// One session read from both table sets, kept once: the session row of the side
/// updated later (OpenCode 1.x's on a tie: it is the original), every message once by
/// id (the row updated later; 1.x's on a tie), in conversation order.
pub(super) fn merge(v1: Option<StoredSession>, v2: Option<StoredSession>) -> Option<StoredSession> {
    let (v1, v2) = match (v1, v2) {
        (Some(v1), Some(v2)) => (v1, v2),
        (one, None) | (None, one) => return one,
    };
    let v2_wins = updated_of(&v2) > updated_of(&v1);
    let (mut winner, other) = if v2_wins { (v2, v1) } else { (v1, v2) };
    let mut index: HashMap<String, usize> = winner
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.info.id.clone(), i))
        .collect();
    for message in other.messages {
        match index.get(&message.info.id) {
            Some(&at) => {
                let kept = &mut winner.messages[at];
                // The other side's copy wins when it was updated later, or on a tie
                // when it is 1.x's.
                if message.mark > kept.mark || (message.mark == kept.mark && v2_wins) {
                    *kept = message;
                }
            }
            None => {
                index.insert(message.info.id.clone(), winner.messages.len());
                winner.messages.push(message);
            }
        }
    }
    sort_messages(&mut winner.messages);
    if winner.project_worktree.is_none() {
        winner.project_worktree = other.project_worktree;
    }
    winner.notes.extend(other.notes);
    Some(winner)
}

/// The sessions listed from both table sets, each id once with the later update time.
pub(super) fn merge_summaries(
    v1: Vec<SessionSummary>,
    v2: Vec<SessionSummary>,
) -> Vec<SessionSummary> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<SessionSummary> = Vec::with_capacity(v1.len() + v2.len());
    for summary in v1.into_iter().chain(v2) {
        match index.get(&summary.id) {
            Some(&at) => {
                if summary.time_updated > out[at].time_updated {
                    out[at] = summary;
                }
            }
            None => {
                index.insert(summary.id.clone(), out.len());
                out.push(summary);
            }
        }
    }
    out
}
