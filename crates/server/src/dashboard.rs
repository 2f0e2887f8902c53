//! The web dashboard on the sync listener: a small single-page app (plain HTML,
//! CSS and one JavaScript module from `assets/`, embedded in the binary) at `/`,
//! and the JSON it reads under `/dashboard/api/`:
//!
//! - `GET /dashboard/api/sessions?q=&project=&limit=`: the sessions, newest
//!   first, filtered by project and by the full-text search of `/api/search`,
//!   plus the projects for the filter;
//! - `GET /dashboard/api/session?id=`: one session (document id or
//!   `externalId`) with its messages in order, each as display blocks: text
//!   rendered from markdown on the server (raw HTML escaped, unsafe links
//!   dropped), tool calls paired with their results, reasoning, other parts;
//! - `GET /dashboard/api/usage?tz=`: tokens and cost per day (in the
//!   browser's time zone), per model and per project.
//!
//! Auth is the read routes' (`/api/*`): `Authorization: Bearer osk_...`
//! reads that key's data; without a key, only with open reads
//! (`ServerOptions::open_reads`, what `opencode-sync serve` uses on loopback)
//! and only from this machine and the same origin, as the open-reads key's
//! user. Anything else gets a 401 and the page asks for a key, which it keeps
//! in the tab's `sessionStorage`.
//! The dashboard routes send no CORS headers, are not in the request log and
//! see no injected faults. Any other method on these paths, and every other
//! path, is answered by the OpenSync API as before.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::local_same_origin;
use crate::read;
use crate::state::AppState;
use crate::store::{self, SESSION_COLUMNS, SessionRow, Table, num, put_str};

/// The Content-Security-Policy of every dashboard answer: only this origin's
/// own files, no inline script or style, no plugins, no framing.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Sessions listed when the page asks for no limit.
const DEFAULT_LIST_LIMIT: usize = 500;
/// The most sessions one list answer holds.
const MAX_LIST_LIMIT: usize = 5000;

/// One embedded file under `/assets/`.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/icon.svg"),
    },
];

const INDEX_HTML: &str = include_str!("../assets/index.html");

/// FNV-1a, 64 bits: a content hash for ETags and asset versions.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `index.html` with every `{{name}}` replaced by that asset's content hash,
/// so the page links `/assets/app.js?v=<hash>` and a new binary's assets are
/// never taken from a stale cache.
fn index_html() -> &'static (String, String) {
    static INDEX: OnceLock<(String, String)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut html = INDEX_HTML.to_owned();
        for asset in ASSETS {
            html = html.replace(
                &format!("{{{{{}}}}}", asset.name),
                &content_hash(asset.body),
            );
        }
        let etag = format!("\"{}\"", content_hash(html.as_bytes()));
        (html, etag)
    })
}

/// What every dashboard handler shares.
#[derive(Debug, Clone)]
struct Dash {
    state: Arc<AppState>,
}

/// The dashboard routes, falling back to `api` (the OpenSync API router) for
/// every other path and for any method other than GET/HEAD on these paths.
pub(crate) fn router(state: Arc<AppState>, api: Router) -> Router {
    let dash = Dash { state };
    Router::new()
        .route("/", get(index).fallback_service(api.clone()))
        .route("/assets/{name}", get(asset).fallback_service(api.clone()))
        .route(
            "/dashboard/api/sessions",
            get(api_sessions).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/session",
            get(api_session).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/usage",
            get(api_usage).fallback_service(api.clone()),
        )
        .fallback_service(api)
        .with_state(dash)
}

/// Headers every dashboard answer carries.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// A static body with its type, ETag and cache policy (304 when the browser
/// already has it).
fn static_response(
    req_headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    let fresh = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (StatusCode::OK, headers, body).into_response()
}

async fn index(headers: HeaderMap) -> Response {
    let (html, etag) = index_html();
    static_response(
        &headers,
        "text/html; charset=utf-8",
        etag,
        "no-cache",
        html.as_bytes(),
    )
}

async fn asset(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": "No such asset" }));
    };
    let hash = content_hash(asset.body);
    // The page asks for `?v=<hash>`: that exact content may be kept for good.
    let versioned = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == format!("v={hash}")));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    static_response(
        &headers,
        asset.content_type,
        &format!("\"{hash}\""),
        cache,
        asset.body,
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"opencode-sync dashboard\""),
        );
    }
    (status, headers, body.to_string()).into_response()
}

fn unauthorized(message: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": message, "keyRequired": true }),
    )
}

/// How a request identifies itself, before the database is asked.
#[derive(Debug)]
enum Auth {
    /// An API key, to look up.
    Key(String),
    /// Open reads from this machine: the open-reads key's user.
    Open(i64),
}

/// Why a dashboard read was not answered with data.
#[derive(Debug)]
enum Failure {
    /// 401: no usable key (the page then asks for one).
    Unauthorized(&'static str),
    /// 500.
    Internal(String),
}

impl Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized(message) => unauthorized(message),
            Self::Internal(message) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": message }),
            ),
        }
    }
}

impl Dash {
    /// The request's credentials, or why it needs a key.
    fn auth(&self, headers: &HeaderMap) -> Result<Auth, Failure> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default().trim();
            return match value
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|k| k.starts_with("osk_"))
            {
                Some(key) => Ok(Auth::Key(key.to_owned())),
                None => Err(Failure::Unauthorized("Invalid API key format")),
            };
        }
        match self.state.open_reads_user {
            Some(user) if local_same_origin(headers) => Ok(Auth::Open(user)),
            Some(_) => Err(Failure::Unauthorized(
                "API key required: without one, the dashboard reads only when opened on this \
                 machine as http://127.0.0.1:PORT or http://localhost:PORT",
            )),
            None => Err(Failure::Unauthorized(
                "API key required: this server answers reads only with an API key",
            )),
        }
    }

    /// Authenticates, then runs `f` on the store off the async threads and
    /// answers with its JSON (`None` = 404).
    async fn read<F>(&self, headers: &HeaderMap, f: F) -> Response
    where
        F: FnOnce(&Connection, i64) -> rusqlite::Result<Option<Value>> + Send + 'static,
    {
        let auth = match self.auth(headers) {
            Ok(a) => a,
            Err(failure) => return failure.into_response(),
        };
        let state = Arc::clone(&self.state);
        let result = tokio::task::spawn_blocking(move || {
            let conn = state.store.lock();
            let user = match auth {
                Auth::Open(user) => user,
                Auth::Key(key) => match store::user_for_key(&conn, &key) {
                    Ok(Some(user)) => user,
                    Ok(None) => return Err(Failure::Unauthorized("Invalid API key")),
                    Err(e) => return Err(Failure::Internal(e.to_string())),
                },
            };
            f(&conn, user).map_err(|e| Failure::Internal(format!("Error: {e}")))
        })
        .await;
        match result {
            Ok(Ok(Some(body))) => json_response(StatusCode::OK, &body),
            Ok(Ok(None)) => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "Session not found" }),
            ),
            Ok(Err(failure)) => failure.into_response(),
            Err(e) => Failure::Internal(format!("Error: internal failure: {e}")).into_response(),
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions list

#[derive(Debug, Deserialize)]
struct ListParams {
    q: Option<String>,
    project: Option<String>,
    limit: Option<String>,
}

/// The key a session is filtered and grouped by: its path, else its name,
/// else `""` (no project).
const PROJECT_KEY: &str = "COALESCE(project_path, project_name, '')";

/// A project's display name: its name, else the last segment of its path.
fn project_label(key: &str, name: Option<&str>) -> String {
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let last = key
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    if last.is_empty() {
        "(no project)".to_owned()
    } else {
        last.to_owned()
    }
}

/// A session as the dashboard lists it: the read API's session, plus the project to
/// show and group by, and the source.
fn session_json(s: &SessionRow) -> Value {
    let mut m = read::session_api_json(s);
    m.remove("isPublic");
    let key = s
        .project_path
        .clone()
        .or_else(|| s.project_name.clone())
        .unwrap_or_default();
    m.insert(
        "project".into(),
        json!(project_label(&key, s.project_name.as_deref())),
    );
    m.insert("projectKey".into(), json!(key));
    put_str(&mut m, "source", s.source.as_ref());
    Value::Object(m)
}

/// The session document ids matching `query` in `/api/search`'s full-text
/// sense (titles, message texts, text parts), with each one's snippet.
fn search_hits(
    conn: &Connection,
    user: i64,
    query: &str,
) -> rusqlite::Result<HashMap<String, String>> {
    let mut hits = HashMap::new();
    for hit in read::search(conn, user, query, usize::MAX)? {
        if let Some(id) = hit["id"].as_str() {
            let snippet = hit["snippet"].as_str().unwrap_or_default().to_owned();
            hits.insert(id.to_owned(), snippet);
        }
    }
    Ok(hits)
}

fn list_sessions(conn: &Connection, user: i64, params: &ListParams) -> rusqlite::Result<Value> {
    let limit = read::parse_limit(params.limit.as_deref(), DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    let query = params.q.as_deref().map(str::trim).unwrap_or_default();
    let hits = if query.is_empty() {
        None
    } else {
        Some(search_hits(conn, user, query)?)
    };
    let rows = conn
        .prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE user_id = ?1 AND (?2 IS NULL OR {PROJECT_KEY} = ?2) \
             ORDER BY updated_at DESC, id DESC"
        ))?
        .query_map(
            params![user, params.project.as_deref()],
            store::session_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut total = 0;
    let mut sessions = Vec::new();
    for row in &rows {
        let snippet = match &hits {
            None => None,
            Some(hits) => match hits.get(&store::doc_id(Table::Sessions, row.id)) {
                Some(s) => Some(s),
                None => continue,
            },
        };
        total += 1;
        if sessions.len() < limit {
            let mut s = session_json(row);
            if let (Some(snippet), Value::Object(m)) = (snippet, &mut s) {
                m.insert("snippet".into(), json!(snippet));
            }
            sessions.push(s);
        }
    }
    let projects = conn
        .prepare(&format!(
            "SELECT {PROJECT_KEY} AS k, MAX(project_name), COUNT(*) FROM sessions \
             WHERE user_id = ?1 GROUP BY k ORDER BY MAX(updated_at) DESC"
        ))?
        .query_map(params![user], |r| {
            let key: String = r.get(0)?;
            let name: Option<String> = r.get(1)?;
            let count: i64 = r.get(2)?;
            Ok(json!({
                "key": key,
                "label": project_label(&key, name.as_deref()),
                "sessions": count,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(json!({
        "sessions": sessions,
        "total": total,
        "projects": projects,
    }))
}

async fn api_sessions(
    State(dash): State<Dash>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Response {
    dash.read(&headers, move |conn, user| {
        list_sessions(conn, user, &params).map(Some)
    })
    .await
}

// ---------------------------------------------------------------------------
// One session

#[derive(Debug, Deserialize)]
struct SessionParams {
    id: Option<String>,
}

fn get_session(conn: &Connection, user: i64, id: &str) -> rusqlite::Result<Option<Value>> {
    // The OpenSync `getSession` answer, turned into display blocks.
    let Some(mut found) = read::get_session(conn, user, id)? else {
        return Ok(None);
    };
    let messages: Vec<Value> = found["messages"]
        .as_array()
        .map(|ms| ms.iter().map(message_view).collect())
        .unwrap_or_default();
    let mut session = found["session"].take();
    if let Value::Object(m) = &mut session {
        let key = m
            .get("projectPath")
            .or_else(|| m.get("projectName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = m.get("projectName").and_then(Value::as_str);
        m.insert("project".into(), json!(project_label(&key, name)));
        m.insert("projectKey".into(), json!(key));
    }
    Ok(Some(json!({ "session": session, "messages": messages })))
}

async fn api_session(
    State(dash): State<Dash>,
    Query(params): Query<SessionParams>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = params.id.filter(|id| !id.is_empty()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "Missing session ID" }),
        );
    };
    dash.read(&headers, move |conn, user| get_session(conn, user, &id))
        .await
}

/// The text of a `text`/`reasoning` part: a string, or `{text}` / `{content}`.
fn part_text(content: &Value) -> Option<String> {
    let v = match content {
        Value::Object(o) => o.get("text").or_else(|| o.get("content"))?,
        other => other,
    };
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::String(_) | Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A JSON value as display text: strings as they are, the rest pretty-printed.
fn display_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn first<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()))
}

/// A tool call as a display block (its result is merged in later).
fn tool_block(content: &Value) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("kind".into(), json!("tool"));
    let empty = Map::new();
    let o = content.as_object().unwrap_or(&empty);
    let name = first(o, &["toolName", "name", "tool"])
        .and_then(Value::as_str)
        .unwrap_or("tool");
    b.insert("name".into(), json!(name));
    for (from, to) in [
        ("callID", "callId"),
        ("status", "status"),
        ("title", "title"),
    ] {
        if let Some(v) = o.get(from).and_then(Value::as_str) {
            b.insert(to.into(), json!(v));
        }
    }
    if let Some(args) = first(o, &["args", "arguments", "input"]) {
        b.insert("args".into(), args.clone());
    }
    b
}

/// Merges a `tool-result` part into its call's block.
fn merge_result(block: &mut Map<String, Value>, content: &Value) {
    match content {
        Value::Object(o) => {
            if let Some(out) = first(o, &["output", "result"]) {
                block.insert("output".into(), json!(display_text(out)));
            }
            if let Some(err) = o.get("error").filter(|e| !e.is_null()) {
                block.insert("error".into(), json!(display_text(err)));
                block.insert("status".into(), json!("error"));
            }
            for key in ["exit", "durationMs", "truncated"] {
                if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
                    block.insert(key.into(), v.clone());
                }
            }
        }
        Value::Null => {}
        other => {
            block.insert("output".into(), json!(display_text(other)));
        }
    }
    block.insert("hasResult".into(), json!(true));
    if !block.contains_key("status") {
        block.insert("status".into(), json!("completed"));
    }
}

/// The blocks a message displays, in part order: text (markdown as HTML),
/// reasoning, tool calls with their results, other parts as JSON. A message
/// without text parts shows its `textContent` first.
fn message_blocks(text_content: Option<&str>, parts: &[Value]) -> Vec<Value> {
    let mut blocks: Vec<Map<String, Value>> = Vec::new();
    for part in parts {
        let kind = part["type"].as_str().unwrap_or_default();
        let content = &part["content"];
        match kind {
            "text" | "reasoning" => {
                if let Some(text) = part_text(content) {
                    let mut b = Map::new();
                    b.insert("kind".into(), json!(kind));
                    b.insert("html".into(), json!(render_markdown(&text)));
                    blocks.push(b);
                }
            }
            "tool-call" => blocks.push(tool_block(content)),
            "tool-result" => {
                let call_id = content.get("callID").and_then(Value::as_str);
                // Its call: the same callID, else the latest call still waiting.
                let target = blocks.iter_mut().rev().find(|b| {
                    b.get("kind") == Some(&json!("tool"))
                        && !b.contains_key("hasResult")
                        && call_id.is_none_or(|id| {
                            b.get("callId")
                                .and_then(Value::as_str)
                                .is_none_or(|c| c == id)
                        })
                });
                match target {
                    Some(b) => merge_result(b, content),
                    None => {
                        let mut b = tool_block(&Value::Null);
                        merge_result(&mut b, content);
                        blocks.push(b);
                    }
                }
            }
            _ => {
                let mut b = Map::new();
                b.insert("kind".into(), json!("part"));
                b.insert("type".into(), json!(kind));
                b.insert("content".into(), json!(display_text(content)));
                blocks.push(b);
            }
        }
    }
    let has_text = blocks.iter().any(|b| b.get("kind") == Some(&json!("text")));
    if let Some(text) = text_content.filter(|t| !t.is_empty() && !has_text) {
        let mut b = Map::new();
        b.insert("kind".into(), json!("text"));
        b.insert("html".into(), json!(render_markdown(text)));
        blocks.insert(0, b);
    }
    for b in &mut blocks {
        b.remove("hasResult");
    }
    blocks.into_iter().map(Value::Object).collect()
}

/// A `getSession` message as the session page shows it.
fn message_view(msg: &Value) -> Value {
    let mut m = Map::new();
    for key in [
        "id",
        "externalId",
        "role",
        "model",
        "promptTokens",
        "completionTokens",
        "durationMs",
        "createdAt",
    ] {
        if let Some(v) = msg.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    let parts = msg["parts"].as_array().map_or(&[][..], Vec::as_slice);
    m.insert(
        "blocks".into(),
        Value::Array(message_blocks(msg["textContent"].as_str(), parts)),
    );
    Value::Object(m)
}

// ---------------------------------------------------------------------------
// Usage

#[derive(Debug, Deserialize)]
struct UsageParams {
    /// `Date.prototype.getTimezoneOffset()` of the browser: minutes to add to
    /// local time to get UTC.
    tz: Option<String>,
}

fn usage(conn: &Connection, user: i64, tz_offset_min: i64) -> rusqlite::Result<Value> {
    let totals = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(message_count), 0), COALESCE(SUM(prompt_tokens), 0), \
         COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), \
         COALESCE(SUM(cost), 0) FROM sessions WHERE user_id = ?1",
        params![user],
        |r| {
            Ok(json!({
                "sessions": r.get::<_, i64>(0)?,
                "messages": r.get::<_, i64>(1)?,
                "promptTokens": num(r.get(2)?),
                "completionTokens": num(r.get(3)?),
                "totalTokens": num(r.get(4)?),
                "cost": num(r.get(5)?),
            }))
        },
    )?;
    let by_day = conn
        .prepare(
            "SELECT strftime('%Y-%m-%d', created_at / 1000.0 - ?2 * 60, 'unixepoch') AS day, \
             COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), SUM(cost) \
             FROM sessions WHERE user_id = ?1 GROUP BY day ORDER BY day",
        )?
        .query_map(params![user, tz_offset_min], |r| {
            Ok(json!({
                "day": r.get::<_, Option<String>>(0)?,
                "sessions": r.get::<_, i64>(1)?,
                "promptTokens": num(r.get(2)?),
                "completionTokens": num(r.get(3)?),
                "totalTokens": num(r.get(4)?),
                "cost": num(r.get(5)?),
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let by_model = conn
        .prepare(
            "SELECT COALESCE(model, 'unknown') AS k, COUNT(*), SUM(total_tokens), SUM(cost) \
             FROM sessions WHERE user_id = ?1 GROUP BY k \
             ORDER BY SUM(total_tokens) DESC, SUM(cost) DESC, k",
        )?
        .query_map(params![user], |r| {
            let key: String = r.get(0)?;
            Ok(json!({
                "key": key,
                "label": key,
                "sessions": r.get::<_, i64>(1)?,
                "totalTokens": num(r.get(2)?),
                "cost": num(r.get(3)?),
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let by_project = conn
        .prepare(&format!(
            "SELECT {PROJECT_KEY} AS k, MAX(project_name), COUNT(*), SUM(total_tokens), \
             SUM(cost) FROM sessions WHERE user_id = ?1 GROUP BY k \
             ORDER BY SUM(total_tokens) DESC, SUM(cost) DESC, k"
        ))?
        .query_map(params![user], |r| {
            let key: String = r.get(0)?;
            let name: Option<String> = r.get(1)?;
            Ok(json!({
                "key": key,
                "label": project_label(&key, name.as_deref()),
                "sessions": r.get::<_, i64>(2)?,
                "totalTokens": num(r.get(3)?),
                "cost": num(r.get(4)?),
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(json!({
        "totals": totals,
        "byDay": by_day,
        "byModel": by_model,
        "byProject": by_project,
    }))
}

async fn api_usage(
    State(dash): State<Dash>,
    Query(params): Query<UsageParams>,
    headers: HeaderMap,
) -> Response {
    let tz = params
        .tz
        .as_deref()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(-24 * 60, 24 * 60);
    dash.read(&headers, move |conn, user| usage(conn, user, tz).map(Some))
        .await
}

// ---------------------------------------------------------------------------
// Markdown

/// Whether a link target is safe to follow: `http:`, `https:`, `mailto:` or
/// no scheme at all (relative, `#anchor`). `javascript:`, `data:` and the rest
/// are not.
fn safe_url(url: &str) -> bool {
    let url: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    let end = url.find(['/', '?', '#']).unwrap_or(url.len());
    match url[..end].find(':') {
        None => true,
        Some(i) => {
            let scheme = url[..i].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
    }
}

/// Message markdown as HTML (CommonMark with tables, strikethrough and task
/// lists). Raw HTML in the input is shown as text, never passed through;
/// links with an unsafe target lose the link (their text stays); images
/// become links to the image (nothing is loaded).
pub(crate) fn render_markdown(src: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // For each open link or image: whether its start was kept (so its end is).
    let mut open: Vec<bool> = Vec::new();
    let events = Parser::new_ext(src, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
            CowStr::Borrowed(""),
        )))),
        Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::CodeBlock)),
        // An image becomes a link to it.
        Event::Start(
            Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }
            | Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            },
        ) => {
            let keep = safe_url(&dest_url) && !open.contains(&true);
            open.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            let kept = open.pop().unwrap_or(false);
            kept.then_some(Event::End(TagEnd::Link))
        }
        other => Some(other),
    });
    let mut html = String::with_capacity(src.len() + src.len() / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_the_usual_things() {
        let html =
            render_markdown("Use **bold**, `code` and\n\n```rust\nfn main() {}\n```\n\n- a\n- b");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(
            html.contains("<pre><code class=\"language-rust\">fn main() {}"),
            "{html}"
        );
        assert!(html.contains("<li>a</li>"), "{html}");
        let table = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |");
        assert!(table.contains("<table>"), "{table}");
    }

    #[test]
    fn raw_html_is_escaped_never_passed_through() {
        for src in [
            "<script>alert(1)</script>",
            "hello <script>alert(1)</script> there",
            "<img src=x onerror=alert(1)>",
            "text <img src=x onerror=alert(1)> more",
            "<div onclick=\"alert(1)\">x</div>\n\nnext",
            "<!-- comment --><iframe src=\"https://example.invalid\"></iframe>",
            "<style>body{display:none}</style>",
        ] {
            let html = render_markdown(src);
            for bad in ["<script", "<img", "<div", "<iframe", "<style", "<!--"] {
                assert!(!html.contains(bad), "{src:?} gave {html:?}");
            }
            assert!(html.contains("&lt;"), "{src:?} gave {html:?}");
        }
        let html = render_markdown("<script>alert(1)</script>");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn unsafe_links_lose_their_target() {
        for src in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x]( java\tscript:alert(1))",
            "[x](data:text/html,<script>alert(1)</script>)",
            "[x](vbscript:msgbox)",
            "<javascript:alert(1)>",
            "![x](javascript:alert(1))",
        ] {
            let html = render_markdown(src);
            assert!(
                !html.contains("<a") && !html.contains("href"),
                "{src:?} gave {html:?}"
            );
            assert!(!html.contains("<img"), "{src:?} gave {html:?}");
        }
        let html = render_markdown("[docs](https://example.com/a?b=1&c=\"2\") and [rel](/x#y)");
        assert!(
            html.contains("href=\"https://example.com/a?b=1&amp;c=%222%22\""),
            "{html}"
        );
        assert!(html.contains("href=\"/x#y\""), "{html}");
        let html = render_markdown("![a cat](https://example.com/cat.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/cat.png\">a cat</a>"),
            "{html}"
        );
    }

    #[test]
    fn urls_are_classified() {
        assert!(safe_url("https://a"));
        assert!(safe_url("HTTP://a"));
        assert!(safe_url("mailto:a@b"));
        assert!(safe_url("/path:with-colon"));
        assert!(safe_url("#top"));
        assert!(safe_url("relative/a:b"));
        assert!(!safe_url("javascript:x"));
        assert!(!safe_url("  javascript:x"));
        assert!(!safe_url("data:x"));
        assert!(!safe_url("file:///etc/passwd"));
    }

    #[test]
    fn tool_calls_pair_with_their_results() {
        let parts = vec![
            json!({"type": "text", "content": "Running **it**."}),
            json!({"type": "tool-call", "content": {"toolName": "bash", "callID": "c1",
                "args": {"command": "ls"}, "status": "completed", "title": "ls"}}),
            json!({"type": "tool-call", "content": {"name": "read", "callID": "c2",
                "arguments": {"filePath": "a"}}}),
            json!({"type": "tool-result", "content": {"callID": "c2", "error": "missing"}}),
            json!({"type": "tool-result", "content": {"output": "a\nb", "exit": 0, "durationMs": 12}}),
            json!({"type": "tool-result", "content": "orphan"}),
            json!({"type": "step-start", "content": {"snapshot": "abc"}}),
        ];
        let blocks = message_blocks(Some("Running **it**."), &parts);
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|b| b["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["text", "tool", "tool", "tool", "part"]);
        assert_eq!(blocks[0]["html"], "<p>Running <strong>it</strong>.</p>\n");
        assert_eq!(blocks[1]["name"], "bash");
        assert_eq!(blocks[1]["args"], json!({"command": "ls"}));
        assert_eq!(blocks[1]["output"], "a\nb");
        assert_eq!(blocks[1]["exit"], 0);
        assert_eq!(blocks[1]["durationMs"], 12);
        assert_eq!(blocks[1]["status"], "completed");
        assert_eq!(blocks[2]["name"], "read");
        assert_eq!(blocks[2]["status"], "error");
        assert_eq!(blocks[2]["error"], "missing");
        assert_eq!(blocks[3]["output"], "orphan");
        assert!(blocks.iter().all(|b| b.get("hasResult").is_none()));
    }

    #[test]
    fn text_content_shows_when_no_text_part_does() {
        let blocks = message_blocks(Some("Hi *there*"), &[]);
        assert_eq!(
            blocks,
            vec![json!({"kind": "text", "html": "<p>Hi <em>there</em></p>\n"})]
        );
        let blocks = message_blocks(
            Some("ignored"),
            &[json!({"type": "text", "content": {"text": "shown"}})],
        );
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["html"], "<p>shown</p>\n");
    }

    #[test]
    fn the_index_links_versioned_assets() {
        let (html, etag) = index_html();
        assert!(!html.contains("{{"), "{html}");
        for asset in ASSETS {
            let url = format!("/assets/{}?v={}", asset.name, content_hash(asset.body));
            assert!(html.contains(&url), "{url} not in the page");
        }
        assert!(etag.starts_with('"') && etag.len() == 18);
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "no inline script or style"
        );
    }

    #[test]
    fn project_labels() {
        assert_eq!(project_label("/home/me/app", Some("app")), "app");
        assert_eq!(project_label("/home/me/app/", None), "app");
        assert_eq!(project_label("C:\\src\\web", None), "web");
        assert_eq!(project_label("", None), "(no project)");
    }
}
