//! The read side of the OpenSync API (`/api/sessions`, `/api/sessions/get`,
//! `/api/search`, `/api/stats`, `/api/export`, `/api/context`) over the stored
//! rows: the queries and the JSON shapes of the real backend's `listSessions`,
//! `getSession`, `fullTextSearch`, `getStats`, `exportSession` and
//! `getContext` (in OpenSync's `convex/api.ts`), so scripts written for
//! OpenSync read this server's data. Where this server differs: `getContext`
//! finds its sessions by full-text search (there are no embeddings here),
//! `/api/export` without an id exports every session, and a query value that
//! cannot be used is a 400 ([`BadQuery`]) rather than a silent default.
//!
//! Everything is scoped to one user. Absent (undefined) fields are omitted as
//! Convex omits them, and numbers render as a JavaScript client sees them.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value, json};

use crate::store::{
    self, MESSAGE_COLUMNS, MessageRow, SESSION_COLUMNS, SessionRow, Table, num, put_num, put_str,
};
use crate::sync::part_search_text;

/// Characters of context kept before the first match in a search snippet.
const SNIPPET_BEFORE: usize = 60;
/// Characters kept from the start of the match on.
const SNIPPET_AFTER: usize = 140;

/// Messages of each session `getContext` includes (its last ones).
const CONTEXT_MESSAGES_PER_SESSION: usize = 10;
/// The most sessions one `/api/context` answer draws on.
pub(crate) const MAX_CONTEXT_SESSIONS: usize = 50;

/// A query value a read route cannot use; the route answers 400 with this
/// text as its `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadQuery(pub(crate) String);

/// A session as `listSessions` and `getSession` return it.
pub(crate) fn session_api_json(s: &SessionRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(store::doc_id(Table::Sessions, s.id)));
    m.insert("externalId".into(), json!(s.external_id));
    put_str(&mut m, "title", s.title.as_ref());
    put_str(&mut m, "projectPath", s.project_path.as_ref());
    put_str(&mut m, "projectName", s.project_name.as_ref());
    put_str(&mut m, "model", s.model.as_ref());
    put_str(&mut m, "provider", s.provider.as_ref());
    m.insert("promptTokens".into(), num(s.prompt_tokens));
    m.insert("completionTokens".into(), num(s.completion_tokens));
    m.insert("totalTokens".into(), num(s.total_tokens));
    m.insert("cost".into(), num(s.cost));
    put_num(&mut m, "durationMs", s.duration_ms);
    m.insert("isPublic".into(), json!(false));
    m.insert("messageCount".into(), json!(s.message_count));
    m.insert("createdAt".into(), num(s.created_at));
    m.insert("updatedAt".into(), num(s.updated_at));
    // Not in OpenSync's answer (its backend drops the branch): an addition.
    put_str(&mut m, "gitBranch", s.git_branch.as_ref());
    m
}

/// A message as `getSession` returns it (without its parts).
fn message_api_json(msg: &MessageRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(store::doc_id(Table::Messages, msg.id)));
    m.insert("externalId".into(), json!(msg.external_id));
    m.insert("role".into(), json!(msg.role));
    put_str(&mut m, "textContent", msg.text_content.as_ref());
    put_str(&mut m, "model", msg.model.as_ref());
    put_num(&mut m, "promptTokens", msg.prompt_tokens);
    put_num(&mut m, "completionTokens", msg.completion_tokens);
    put_num(&mut m, "durationMs", msg.duration_ms);
    m.insert("createdAt".into(), num(msg.created_at));
    m
}

/// A `limit` parameter: absent or empty gives `default` (as OpenSync's
/// `parseInt(value || default)`), a whole number (surrounding whitespace
/// allowed; a huge one saturates) is used, and anything else (`abc`, `12abc`,
/// `-3`, `1.5`) is a [`BadQuery`] naming the value, where `parseInt` would
/// quietly read a prefix or answer `NaN`.
pub(crate) fn parse_limit(value: Option<&str>, default: usize) -> Result<usize, BadQuery> {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadQuery(format!(
            "Invalid limit {text:?}: expected a whole number, 0 or more"
        )));
    }
    Ok(digits.parse().unwrap_or(usize::MAX))
}

/// `?type=` of `/api/search`: only `fulltext` (the default) is answered here;
/// `semantic` and `hybrid` need embeddings, which this server does not keep.
pub(crate) fn check_search_type(value: Option<&str>) -> Result<(), BadQuery> {
    match value.filter(|v| !v.is_empty()) {
        None | Some("fulltext") => Ok(()),
        Some(kind @ ("semantic" | "hybrid")) => Err(BadQuery(format!(
            "Search type {kind:?} needs embeddings, which this server does not keep: \
             use type=fulltext"
        ))),
        Some(other) => Err(BadQuery(format!(
            "Invalid type {other:?}: expected fulltext"
        ))),
    }
}

/// SQLite's LIMIT takes an i64; "no limit" is the largest one.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `listSessions`: the user's newest sessions first (by `updatedAt`).
pub(crate) fn list_sessions(
    conn: &Connection,
    user_id: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 \
         ORDER BY updated_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![user_id, sql_limit(limit)], store::session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .iter()
        .map(|s| Value::Object(session_api_json(s)))
        .collect())
}

/// The user's session with this document id, or else with this `externalId`
/// (the first stored, as the sync routes pick it).
fn find_user_session(
    conn: &Connection,
    user_id: i64,
    id: &str,
) -> rusqlite::Result<Option<SessionRow>> {
    if let Some(rowid) = store::parse_doc_id(Table::Sessions, id) {
        let found = conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND user_id = ?2"
            ))?
            .query_row(params![rowid, user_id], store::session_from_row)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND external_id = ?2 \
         ORDER BY id LIMIT 1"
    ))?
    .query_row(params![user_id, id], store::session_from_row)
    .optional()
}

/// A session's messages in dashboard order (`createdAt`, then arrival).
fn session_messages(conn: &Connection, session_id: i64) -> rusqlite::Result<Vec<MessageRow>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY created_at, id"
    ))?
    .query_map(params![session_id], store::message_from_row)?
    .collect()
}

/// A message's parts in order, as `(type, content)`.
fn message_parts(conn: &Connection, message_id: i64) -> rusqlite::Result<Vec<(String, Value)>> {
    conn.prepare_cached("SELECT type, content FROM parts WHERE message_id = ?1 ORDER BY ord, id")?
        .query_map(params![message_id], |r| {
            let content: String = r.get(1)?;
            Ok((
                r.get(0)?,
                serde_json::from_str(&content).unwrap_or(Value::Null),
            ))
        })?
        .collect()
}

/// `getSession`: `{session, messages: [{..., parts: [{type, content}]}]}`, or
/// `None` when the user has no such session.
pub(crate) fn get_session(
    conn: &Connection,
    user_id: i64,
    id: &str,
) -> rusqlite::Result<Option<Value>> {
    let Some(session) = find_user_session(conn, user_id, id)? else {
        return Ok(None);
    };
    let mut messages = Vec::new();
    for msg in session_messages(conn, session.id)? {
        let parts: Vec<Value> = message_parts(conn, msg.id)?
            .into_iter()
            .map(|(kind, content)| json!({ "type": kind, "content": content }))
            .collect();
        let mut m = message_api_json(&msg);
        m.insert("parts".into(), Value::Array(parts));
        messages.push(Value::Object(m));
    }
    Ok(Some(json!({
        "session": Value::Object(session_api_json(&session)),
        "messages": messages,
    })))
}

/// A word of searched text: lowercased, with the char offset it starts at.
fn words(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, c) in text.chars().enumerate() {
        if c.is_alphanumeric() {
            if current.is_empty() {
                start = i;
            }
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            out.push((std::mem::take(&mut current), start));
        }
    }
    if !current.is_empty() {
        out.push((current, start));
    }
    out
}

/// The distinct lowercased terms of a query.
fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for (w, _) in words(query) {
        if !terms.contains(&w) {
            terms.push(w);
        }
    }
    terms
}

/// Up to about 200 characters of `text` around char offset `at`, whitespace
/// collapsed, with `…` where it was cut.
fn snippet(text: &str, at: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let from = at.saturating_sub(SNIPPET_BEFORE);
    let to = chars.len().min(at.saturating_add(SNIPPET_AFTER));
    let body: String = chars[from..to].iter().collect();
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.push_str(&body);
    if to < chars.len() {
        out.push('…');
    }
    out
}

/// How one session matches: the terms it contains and the first match.
#[derive(Debug, Default)]
struct Match {
    terms: Vec<bool>,
    snippet: Option<String>,
}

impl Match {
    fn new(n: usize) -> Self {
        Self {
            terms: vec![false; n],
            snippet: None,
        }
    }

    /// Marks the terms some word of `text` starts with (case-insensitively);
    /// the first text with a match gives the snippet.
    fn scan(&mut self, terms: &[String], text: &str) {
        for (word, at) in words(text) {
            for (i, term) in terms.iter().enumerate() {
                if word.starts_with(term.as_str()) {
                    self.terms[i] = true;
                    if self.snippet.is_none() {
                        self.snippet = Some(snippet(text, at));
                    }
                }
            }
        }
    }

    fn score(&self) -> usize {
        self.terms.iter().filter(|t| **t).count()
    }
}

/// `fullTextSearch`: the user's sessions whose title, message texts, text
/// parts or stored search text contain words starting with the query's terms,
/// the ones matching most terms first (then newest first), each with the
/// `fullTextSearch` fields plus a `snippet` of the first match.
pub(crate) fn search(
    conn: &Connection,
    user_id: i64,
    query: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Value>> {
    let terms = query_terms(query);
    if terms.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let sessions = conn
        .prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 \
             ORDER BY updated_at DESC, id DESC"
        ))?
        .query_map(params![user_id], store::session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let mut hits: Vec<(usize, SessionRow, Match)> = Vec::new();
    for session in sessions {
        let mut m = Match::new(terms.len());
        if let Some(title) = &session.title {
            m.scan(&terms, title);
        }
        for msg in session_messages(conn, session.id)? {
            if let Some(text) = &msg.text_content {
                m.scan(&terms, text);
            }
            let parts = message_parts(conn, msg.id)?;
            m.scan(&terms, &part_search_text(&parts));
        }
        if let Some(text) = &session.searchable_text {
            m.scan(&terms, text);
        }
        let score = m.score();
        if score > 0 {
            hits.push((score, session, m));
        }
    }
    // Stable: equal scores keep the newest-first order.
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.0));
    Ok(hits
        .into_iter()
        .take(limit)
        .map(|(_, s, m)| {
            let mut out = Map::new();
            out.insert("id".into(), json!(store::doc_id(Table::Sessions, s.id)));
            out.insert("externalId".into(), json!(s.external_id));
            put_str(&mut out, "title", s.title.as_ref());
            put_str(&mut out, "projectPath", s.project_path.as_ref());
            put_str(&mut out, "model", s.model.as_ref());
            out.insert("totalTokens".into(), num(s.total_tokens));
            out.insert("cost".into(), num(s.cost));
            out.insert("messageCount".into(), json!(s.message_count));
            out.insert("createdAt".into(), num(s.created_at));
            out.insert("snippet".into(), json!(m.snippet.unwrap_or_default()));
            Value::Object(out)
        })
        .collect())
}

/// Per-model totals of `getStats`.
#[derive(Debug, Default)]
struct ModelUsage {
    tokens: f64,
    cost: f64,
    sessions: u64,
}

/// `getStats`: totals over the user's sessions and usage per model
/// (`"unknown"` for sessions without one).
pub(crate) fn stats(conn: &Connection, user_id: i64) -> rusqlite::Result<Value> {
    let sessions = conn
        .prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY id"
        ))?
        .query_map(params![user_id], store::session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut tokens = 0.0;
    let mut cost = 0.0;
    let mut messages: i64 = 0;
    let mut duration = 0.0;
    let mut models: BTreeMap<String, ModelUsage> = BTreeMap::new();
    for s in &sessions {
        tokens += s.total_tokens;
        cost += s.cost;
        messages += s.message_count;
        duration += s.duration_ms.unwrap_or(0.0);
        let usage = models
            .entry(s.model.clone().unwrap_or_else(|| "unknown".to_owned()))
            .or_default();
        usage.tokens += s.total_tokens;
        usage.cost += s.cost;
        usage.sessions += 1;
    }
    let model_usage: Map<String, Value> = models
        .into_iter()
        .map(|(model, u)| {
            (
                model,
                json!({ "tokens": num(u.tokens), "cost": num(u.cost), "sessions": u.sessions }),
            )
        })
        .collect();
    Ok(json!({
        "sessionCount": sessions.len(),
        "messageCount": messages,
        "totalTokens": num(tokens),
        "totalCost": num(cost),
        "totalDurationMs": num(duration),
        "modelUsage": model_usage,
    }))
}

// ---------------------------------------------------------------------------
// Export and context

/// `?format=` of `/api/export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    /// The default: `{session: {id, title, model}, messages: [{role, content}]}`.
    Json,
    /// `text/markdown`, sent as a download.
    Markdown,
    /// `{content, filename}` with one `{role, content}` JSON line per message.
    Jsonl,
}

impl ExportFormat {
    /// Absent or empty is `json`; anything but `json`, `markdown`, `jsonl` is
    /// a [`BadQuery`].
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, BadQuery> {
        match value.filter(|v| !v.is_empty()) {
            None | Some("json") => Ok(Self::Json),
            Some("markdown") => Ok(Self::Markdown),
            Some("jsonl") => Ok(Self::Jsonl),
            Some(other) => Err(BadQuery(format!(
                "Invalid format {other:?}: expected json, markdown or jsonl"
            ))),
        }
    }
}

/// `?format=` of `/api/context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextFormat {
    /// The default: `{text, sessionCount}`, plain text for an LLM prompt.
    Text,
    /// `{messages: [{role, content, metadata}], sessionCount}`.
    Messages,
}

impl ContextFormat {
    /// Absent or empty is `text`; `messages` (OpenSync answers it for any
    /// other value) is the message list; anything else is a [`BadQuery`].
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, BadQuery> {
        match value.filter(|v| !v.is_empty()) {
            None | Some("text") => Ok(Self::Text),
            Some("messages") => Ok(Self::Messages),
            Some(other) => Err(BadQuery(format!(
                "Invalid format {other:?}: expected text or messages"
            ))),
        }
    }
}

/// OpenSync's `getTextContent`: a part's content as text (a string, else its
/// `text`, else its `content`).
fn content_text(content: &Value) -> &str {
    match content {
        Value::String(s) => s,
        Value::Object(o) => o
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .or_else(|| o.get("content").and_then(Value::as_str))
            .unwrap_or_default(),
        _ => "",
    }
}

/// A message's text parts, or its `textContent` when none has text.
fn message_texts(conn: &Connection, msg: &MessageRow) -> rusqlite::Result<Vec<String>> {
    let texts: Vec<String> = message_parts(conn, msg.id)?
        .iter()
        .filter(|(kind, _)| kind == "text")
        .map(|(_, content)| content_text(content).to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if !texts.is_empty() {
        return Ok(texts);
    }
    Ok(msg.text_content.iter().cloned().collect())
}

/// `session.title.replace(/[^a-z0-9]/gi, "-") || "session"` plus the extension.
pub(crate) fn export_filename(title: Option<&str>, extension: &str) -> String {
    let stem: String = title
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = if stem.is_empty() { "session" } else { &stem };
    format!("{stem}.{extension}")
}

/// One session as markdown, as `exportSession` writes it (plus a `Branch`
/// line when the branch is known).
fn session_markdown(conn: &Connection, s: &SessionRow) -> rusqlite::Result<String> {
    let mut md = format!("# {}\n\n", s.title.as_deref().unwrap_or("Untitled"));
    md += &format!(
        "- **Project:** {}\n",
        s.project_path.as_deref().unwrap_or("N/A")
    );
    md += &format!("- **Model:** {}\n", s.model.as_deref().unwrap_or("N/A"));
    if let Some(branch) = &s.git_branch {
        md += &format!("- **Branch:** {branch}\n");
    }
    md += &format!("- **Tokens:** {}\n", num(s.total_tokens));
    md += &format!("- **Cost:** ${:.4}\n\n---\n\n", s.cost);
    for msg in session_messages(conn, s.id)? {
        let who = if msg.role == "user" {
            "User"
        } else {
            "Assistant"
        };
        md += &format!("## {who}\n\n");
        for text in message_texts(conn, &msg)? {
            md += &text;
            md += "\n\n";
        }
    }
    Ok(md)
}

/// `{role, content}` for each message of a session, text parts joined by a
/// newline (the OpenAI messages shape of `exportSession`).
fn session_chat(conn: &Connection, s: &SessionRow) -> rusqlite::Result<Vec<Value>> {
    session_messages(conn, s.id)?
        .iter()
        .map(|msg| {
            Ok(json!({
                "role": msg.role,
                "content": message_texts(conn, msg)?.join("\n"),
            }))
        })
        .collect()
}

/// `{session: {id, title, model}, messages}` of the JSON export.
fn session_export_json(conn: &Connection, s: &SessionRow) -> rusqlite::Result<Value> {
    let mut head = Map::new();
    head.insert("id".into(), json!(store::doc_id(Table::Sessions, s.id)));
    put_str(&mut head, "title", s.title.as_ref());
    put_str(&mut head, "model", s.model.as_ref());
    put_str(&mut head, "gitBranch", s.git_branch.as_ref());
    Ok(json!({ "session": head, "messages": session_chat(conn, s)? }))
}

/// `exportSession` of one session (document id or `externalId`), `None` when
/// the user has none such: the JSON shape, or `{content, filename}` for
/// markdown and jsonl.
pub(crate) fn export_session(
    conn: &Connection,
    user_id: i64,
    id: &str,
    format: ExportFormat,
) -> rusqlite::Result<Option<Value>> {
    let Some(s) = find_user_session(conn, user_id, id)? else {
        return Ok(None);
    };
    let title = s.title.as_deref();
    Ok(Some(match format {
        ExportFormat::Json => session_export_json(conn, &s)?,
        ExportFormat::Markdown => json!({
            "content": session_markdown(conn, &s)?,
            "filename": export_filename(title, "md"),
        }),
        ExportFormat::Jsonl => {
            let lines: Vec<String> = session_chat(conn, &s)?
                .iter()
                .map(Value::to_string)
                .collect();
            json!({ "content": lines.join("\n"), "filename": export_filename(title, "jsonl") })
        }
    }))
}

/// Every session of the user (newest first, at most `limit`) in one export:
/// `{sessions: [<json export>...]}`, or `{content, filename}` with the
/// sessions' markdown one after the other, or their jsonl lines each with its
/// `sessionId`.
pub(crate) fn export_all(
    conn: &Connection,
    user_id: i64,
    format: ExportFormat,
    limit: usize,
) -> rusqlite::Result<Value> {
    let sessions = conn
        .prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 \
             ORDER BY updated_at DESC, id DESC LIMIT ?2"
        ))?
        .query_map(params![user_id, sql_limit(limit)], store::session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(match format {
        ExportFormat::Json => {
            let all = sessions
                .iter()
                .map(|s| session_export_json(conn, s))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            json!({ "sessions": all })
        }
        ExportFormat::Markdown => {
            let parts = sessions
                .iter()
                .map(|s| session_markdown(conn, s))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            json!({ "content": parts.join("\n"), "filename": "opencode-sessions.md" })
        }
        ExportFormat::Jsonl => {
            let mut lines = Vec::new();
            for s in &sessions {
                let id = store::doc_id(Table::Sessions, s.id);
                for mut line in session_chat(conn, s)? {
                    if let Value::Object(m) = &mut line {
                        m.insert("sessionId".into(), json!(id));
                    }
                    lines.push(line.to_string());
                }
            }
            json!({ "content": lines.join("\n"), "filename": "opencode-sessions.jsonl" })
        }
    })
}

/// `getContext`: the sessions matching `query` (full-text, best first, at
/// most `limit`), each with its last messages' text, as one prompt-ready
/// `text` or as a `messages` list with each message's session.
pub(crate) fn context(
    conn: &Connection,
    user_id: i64,
    query: &str,
    limit: usize,
    format: ContextFormat,
) -> rusqlite::Result<Value> {
    let hits = search(conn, user_id, query, limit.min(MAX_CONTEXT_SESSIONS))?;
    let mut sessions = Vec::new();
    for hit in &hits {
        if let Some(s) = hit["id"]
            .as_str()
            .map(|id| find_user_session(conn, user_id, id))
            .transpose()?
            .flatten()
        {
            sessions.push(s);
        }
    }
    let last_messages = |s: &SessionRow| -> rusqlite::Result<Vec<(String, String)>> {
        let messages = session_messages(conn, s.id)?;
        let skip = messages.len().saturating_sub(CONTEXT_MESSAGES_PER_SESSION);
        messages[skip..]
            .iter()
            .map(|m| Ok((m.role.clone(), message_texts(conn, m)?.join("\n"))))
            .collect()
    };
    if format == ContextFormat::Text {
        let mut text = format!("Relevant coding sessions for: \"{query}\"\n\n");
        for s in &sessions {
            text += &format!(
                "--- Session: {} ---\n",
                s.title.as_deref().unwrap_or("Untitled")
            );
            text += &format!("Project: {}\n", s.project_path.as_deref().unwrap_or("N/A"));
            text += &format!("Model: {}\n\n", s.model.as_deref().unwrap_or("N/A"));
            for (role, content) in last_messages(s)? {
                text += &format!("[{}]\n{content}\n\n", role.to_uppercase());
            }
            text += "\n";
        }
        return Ok(json!({ "text": text, "sessionCount": sessions.len() }));
    }
    let mut messages = Vec::new();
    for s in &sessions {
        let mut metadata = Map::new();
        metadata.insert(
            "sessionId".into(),
            json!(store::doc_id(Table::Sessions, s.id)),
        );
        put_str(&mut metadata, "sessionTitle", s.title.as_ref());
        for (role, content) in last_messages(s)? {
            messages.push(json!({ "role": role, "content": content, "metadata": metadata }));
        }
    }
    Ok(json!({ "messages": messages, "sessionCount": sessions.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_or_a_bad_query() {
        assert_eq!(parse_limit(None, 50), Ok(50));
        assert_eq!(parse_limit(Some(""), 50), Ok(50));
        assert_eq!(parse_limit(Some("7"), 50), Ok(7));
        assert_eq!(parse_limit(Some(" 12 "), 50), Ok(12));
        assert_eq!(parse_limit(Some("0"), 50), Ok(0));
        assert_eq!(
            parse_limit(Some("99999999999999999999999"), 50),
            Ok(usize::MAX)
        );
        for bad in ["abc", "12abc", "-3", "+4", "1.5", " ", "1e3", "０"] {
            let err = parse_limit(Some(bad), 50).unwrap_err();
            assert!(err.0.starts_with("Invalid limit"), "{bad:?}: {err}");
            assert!(err.0.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn formats_parse_or_say_what_is_expected() {
        assert_eq!(ExportFormat::parse(None), Ok(ExportFormat::Json));
        assert_eq!(ExportFormat::parse(Some("")), Ok(ExportFormat::Json));
        assert_eq!(
            ExportFormat::parse(Some("markdown")),
            Ok(ExportFormat::Markdown)
        );
        assert_eq!(ExportFormat::parse(Some("jsonl")), Ok(ExportFormat::Jsonl));
        let err = ExportFormat::parse(Some("pdf")).unwrap_err();
        assert!(
            err.0.contains("\"pdf\"") && err.0.contains("markdown"),
            "{err}"
        );
        assert_eq!(ContextFormat::parse(None), Ok(ContextFormat::Text));
        assert_eq!(
            ContextFormat::parse(Some("messages")),
            Ok(ContextFormat::Messages)
        );
        assert!(ContextFormat::parse(Some("xml")).is_err());
        assert_eq!(check_search_type(Some("fulltext")), Ok(()));
        assert!(check_search_type(Some("semantic")).is_err());
    }

    #[test]
    fn export_filenames_like_opensync() {
        assert_eq!(
            export_filename(Some("Fix the parser!"), "md"),
            "Fix-the-parser-.md"
        );
        assert_eq!(export_filename(Some(""), "md"), "session.md");
        assert_eq!(export_filename(None, "jsonl"), "session.jsonl");
        assert_eq!(export_filename(Some("é/\"\n"), "md"), "----.md");
    }

    #[test]
    fn part_content_text_like_get_text_content() {
        assert_eq!(content_text(&json!("a")), "a");
        assert_eq!(content_text(&json!({"text": "b"})), "b");
        assert_eq!(content_text(&json!({"content": "c"})), "c");
        assert_eq!(content_text(&json!({"text": "", "content": "d"})), "d");
        assert_eq!(content_text(&json!(3)), "");
    }

    #[test]
    fn words_are_lowercased_with_char_offsets() {
        assert_eq!(
            words("Héllo, WORLD-wide"),
            vec![
                ("héllo".to_owned(), 0),
                ("world".to_owned(), 7),
                ("wide".to_owned(), 13)
            ]
        );
        assert_eq!(query_terms("a A b"), vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn snippets_cut_long_text_around_the_match() {
        let text = format!("{} needle {}", "x ".repeat(100), "y ".repeat(100));
        let at = text.find("needle").unwrap_or(0);
        let s = snippet(&text, at);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("needle"));
        assert_eq!(snippet("short  text", 0), "short text");
    }

    #[test]
    fn matching_is_by_word_prefix() {
        let terms = query_terms("Rust sync");
        let mut m = Match::new(terms.len());
        m.scan(&terms, "Trusted syncing");
        assert_eq!(m.terms, vec![false, true]);
        assert_eq!(m.snippet.as_deref(), Some("Trusted syncing"));
    }
}
