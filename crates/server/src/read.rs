//! The read side of the OpenSync API (`/api/sessions`, `/api/sessions/get`,
//! `/api/search`, `/api/stats`) over the stored rows: the queries and the JSON
//! shapes of the real backend's `listSessions`, `getSession`, `fullTextSearch`
//! and `getStats`, so scripts written for OpenSync read this server's data.
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

/// `parseInt(value || default)` for a `limit` parameter: leading whitespace,
/// an optional sign and digits; anything else falls back to `default`, and a
/// negative limit gives nothing.
pub(crate) fn parse_limit(value: Option<&str>, default: usize) -> usize {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return default;
    };
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return default;
    }
    if negative {
        return 0;
    }
    digits[..end].parse().unwrap_or(usize::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_parse_int() {
        assert_eq!(parse_limit(None, 50), 50);
        assert_eq!(parse_limit(Some(""), 50), 50);
        assert_eq!(parse_limit(Some("7"), 50), 7);
        assert_eq!(parse_limit(Some(" 12abc"), 50), 12);
        assert_eq!(parse_limit(Some("abc"), 50), 50);
        assert_eq!(parse_limit(Some("-3"), 50), 0);
        assert_eq!(parse_limit(Some("+4"), 50), 4);
        assert_eq!(parse_limit(Some("99999999999999999999999"), 50), usize::MAX);
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
