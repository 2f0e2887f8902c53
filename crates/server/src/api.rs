//! The OpenSync API on the sync listener: `/health`, `/sync/session`,
//! `/sync/message`, `/sync/batch`, `/sync/sessions/list`, the read routes
//! `/api/sessions`, `/api/sessions/get`, `/api/search`, `/api/stats`,
//! `/api/export`, `/api/context` and CORS preflight,
//! answering as the real OpenSync HTTP routes do — same auth order and texts,
//! same status codes, `{"error": String(e)}` for every handler failure — with
//! the fault layer in front and every answer written to the request log.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::convex::{self, ConvexError};
use crate::read::{self, BadQuery, ContextFormat, ExportFormat};
use crate::state::AppState;
use crate::store::{self, Table};
use crate::sync::{self, MessageInput, MutationError, SessionInput, js_truthy};

/// Largest request body read, in bytes (Convex HTTP actions take up to 20 MiB).
const MAX_REQUEST_BYTES: usize = 20 << 20;

/// The sync API router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// An answer before it becomes an HTTP response.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Payload,
}

/// What an answer carries.
#[derive(Debug)]
enum Payload {
    /// Nothing (the CORS preflight).
    Empty,
    Json(Value),
    /// A file to save (the markdown export).
    File(Box<Download>),
}

/// A 200 answer that is a file to save, not JSON.
#[derive(Debug)]
struct Download {
    content_type: &'static str,
    filename: String,
    body: String,
}

/// The CORS headers every answer of the API carries (as OpenSync's `convex/http.ts`
/// sends them); a server that answers in the API's place (a fault rule) sends them too.
pub fn cors_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    headers
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Payload::Json(body),
        }
    }

    fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }

    fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Self::json(status, json!({ "error": message.into() }))
    }

    fn server_error(message: impl Into<String>) -> Self {
        Self::error(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    fn preflight() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: Payload::Empty,
        }
    }

    /// A file download: `Content-Disposition: attachment` with `filename`
    /// (made of ASCII letters, digits, `-` and `.` by the export).
    fn download(content_type: &'static str, filename: String, body: String) -> Self {
        Self {
            body: Payload::File(Box::new(Download {
                content_type,
                filename,
                body,
            })),
            ..Self::json(StatusCode::OK, Value::Null)
        }
    }

    /// 400 for a query value the route cannot use.
    fn bad_query(e: &BadQuery) -> Self {
        Self::error(StatusCode::BAD_REQUEST, e.0.clone())
    }

    fn into_response(self) -> Response {
        let mut headers = cors_headers();
        let body = match self.body {
            Payload::Json(body) => body,
            Payload::Empty => {
                headers.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("86400"),
                );
                return (self.status, headers).into_response();
            }
            Payload::File(file) => return file.into_response(self.status, headers),
        };
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        (self.status, headers, Body::from(body.to_string())).into_response()
    }
}

impl Download {
    /// The file with its type and `Content-Disposition`, after `headers`.
    fn into_response(self, status: StatusCode, mut headers: HeaderMap) -> Response {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        let disposition = format!("attachment; filename=\"{}\"", self.filename);
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        (status, headers, Body::from(self.body)).into_response()
    }
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    route(&state, req).await.into_response()
}

async fn route(state: &Arc<AppState>, req: Request) -> Reply {
    if req.method() == Method::OPTIONS {
        return Reply::preflight();
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let result = match (method, path.as_str()) {
        (Method::GET, "/health") => Ok(Reply::ok(
            json!({ "status": "ok", "timestamp": state.clock.now_ms() }),
        )),
        (Method::POST, "/sync/session") => sync_session(state, req).await,
        (Method::POST, "/sync/message") => sync_message(state, req).await,
        (Method::POST, "/sync/batch") => sync_batch(state, req).await,
        (Method::GET, "/sync/sessions/list") => list_sessions(state, req).await,
        (Method::GET, "/api/sessions") => api_sessions(state, req).await,
        (Method::GET, "/api/sessions/get") => api_session_get(state, req).await,
        (Method::GET, "/api/search") => api_search(state, req).await,
        (Method::GET, "/api/stats") => api_stats(state, req).await,
        (Method::GET, "/api/export") => api_export(state, req).await,
        (Method::GET, "/api/context") => api_context(state, req).await,
        _ => Ok(Reply::error(
            StatusCode::NOT_FOUND,
            "No matching routes found",
        )),
    };
    result.unwrap_or_else(|reply| reply)
}

/// The `Authorization` header as `fetch`'s `Headers.get` returns it.
fn authorization(headers: &HeaderMap) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn unauthorized(message: &str) -> Reply {
    Reply::error(StatusCode::UNAUTHORIZED, message)
}

/// Authenticates like the real routes: `Bearer osk_...` is an API key, any
/// other `Bearer` is a JWT (never valid here). `/sync/sessions/list` accepts
/// only API keys and says so differently.
async fn authenticate(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    api_key_only: bool,
) -> Result<i64, Reply> {
    let header = authorization(headers).unwrap_or_default();
    if let Some(key) = header
        .strip_prefix("Bearer ")
        .filter(|k| k.starts_with("osk_"))
    {
        let key = key.to_owned();
        let user = run_db(state, move |conn| store::user_for_key(conn, &key)).await?;
        return match user {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(unauthorized("Invalid API key")),
            Err(e) => Err(unauthorized(&format!("API key validation failed: {e}"))),
        };
    }
    if api_key_only {
        return Err(unauthorized("Invalid API key format"));
    }
    if !header.starts_with("Bearer ") {
        return Err(unauthorized("Missing Authorization header"));
    }
    Err(unauthorized("Invalid or expired token"))
}

/// Authenticates a read route: as [`authenticate`], except that with open
/// reads (`ServerOptions::open_reads`) a request without an `Authorization`
/// header that comes from this machine, not from another site, reads as the
/// server's own user.
async fn authenticate_read(state: &Arc<AppState>, headers: &HeaderMap) -> Result<i64, Reply> {
    if let Some(user) = state.open_reads_user
        && !headers.contains_key(header::AUTHORIZATION)
        && local_same_origin(headers)
    {
        return Ok(user);
    }
    authenticate(state, headers, false).await
}

/// Whether a request is addressed to a loopback host (so not a DNS-rebound
/// name) and is not a cross-origin browser request: no `Origin` or exactly
/// `http://` + its `Host`, and `Sec-Fetch-Site` (when sent) `same-origin` or
/// `none` (typed in the address bar).
pub(crate) fn local_same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_loopback_host(h))
    else {
        return false;
    };
    let origin_ok = headers.get(header::ORIGIN).is_none_or(|origin| {
        origin
            .to_str()
            .is_ok_and(|o| o.strip_prefix("http://") == Some(host))
    });
    let site_ok = headers.get("sec-fetch-site").is_none_or(|site| {
        site.to_str()
            .is_ok_and(|s| s == "same-origin" || s == "none")
    });
    origin_ok && site_ok
}

/// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT` (port optional).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Runs `f` on the store off the async threads.
async fn run_db<T, F>(state: &Arc<AppState>, f: F) -> Result<T, Reply>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> T + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut conn = state.store.lock();
        f(&mut conn)
    })
    .await
    .map_err(|e| Reply::server_error(format!("Error: internal failure: {e}")))
}

/// Runs a mutation in one transaction (rolled back on error).
fn in_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, MutationError>,
) -> Result<T, MutationError> {
    let tx = conn.transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// `await request.json()`: the body as JSON, or the `SyntaxError` text.
async fn read_json(req: Request) -> Result<Value, Reply> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_REQUEST_BYTES)
        .await
        .map_err(|e| match crate::connection::is_body_timeout(&e) {
            true => Reply::error(
                StatusCode::REQUEST_TIMEOUT,
                "Request body not received in time",
            ),
            false => Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large (maximum 20 MiB)",
            ),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::server_error(
            "SyntaxError: Unexpected end of JSON input",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Reply::server_error(format!("SyntaxError: Invalid JSON: {e}")))
}

/// `body[key]` with JavaScript semantics: reading from `null` throws.
fn js_get<'a>(body: &'a Value, key: &str) -> Result<Option<&'a Value>, Reply> {
    match body {
        Value::Null => Err(Reply::server_error(format!(
            "TypeError: Cannot read properties of null (reading '{key}')"
        ))),
        Value::Object(map) => Ok(map.get(key)),
        _ => Ok(None),
    }
}

/// Copies `fields` of `body` that are present (an absent one is `undefined`).
fn copy_fields(body: &Value, fields: &[&str], into: &mut Map<String, Value>) -> Result<(), Reply> {
    for field in fields {
        if let Some(v) = js_get(body, field)? {
            into.insert((*field).to_owned(), v.clone());
        }
    }
    Ok(())
}

fn mutation_reply(function: &str, e: &MutationError) -> Reply {
    Reply::server_error(e.message(function))
}

fn convex_reply(e: &ConvexError) -> Reply {
    Reply::server_error(e.0.clone())
}

async fn sync_session(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    const FUNCTION: &str = "sessions:upsert";
    let user = authenticate(state, req.headers(), false).await?;
    let body = read_json(req).await?;
    // `body.externalId || body.sessionId`
    let external_id = match js_get(&body, "externalId")? {
        Some(v) if js_truthy(v) => Some(v),
        _ => js_get(&body, "sessionId")?,
    };
    let Some(external_id) = external_id.filter(|v| js_truthy(v)) else {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "Missing externalId or sessionId",
        ));
    };
    let mut args = Map::new();
    args.insert("externalId".into(), external_id.clone());
    copy_fields(
        &body,
        &[
            "title",
            "projectPath",
            "projectName",
            "model",
            "provider",
            "source",
            "promptTokens",
            "completionTokens",
            "cost",
            "durationMs",
            "createdAt",
        ],
        &mut args,
    )?;
    let args = Value::Object(args);
    convex::check_args(FUNCTION, &convex::SESSION_UPSERT, &args).map_err(|e| convex_reply(&e))?;
    let mut input = SessionInput::from_args(args.as_object().unwrap_or(&Map::new()));
    // Not a Convex field: kept when it is a non-empty string of at most
    // `GIT_BRANCH_MAX_BYTES`, else ignored as OpenSync's backend ignores it.
    input.git_branch = js_get(&body, "gitBranch")?
        .and_then(Value::as_str)
        .filter(|b| !b.trim().is_empty() && b.len() <= sync::GIT_BRANCH_MAX_BYTES)
        .map(str::to_owned);
    let now = state.now();
    let id = run_db(state, move |conn| {
        in_tx(conn, |tx| sync::upsert_session(tx, user, &input, now))
    })
    .await?
    .map_err(|e| mutation_reply(FUNCTION, &e))?;
    Ok(Reply::ok(
        json!({ "ok": true, "sessionId": store::doc_id(Table::Sessions, id) }),
    ))
}

async fn sync_message(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    const FUNCTION: &str = "messages:upsert";
    let user = authenticate(state, req.headers(), false).await?;
    let body = read_json(req).await?;
    let mut args = Map::new();
    copy_fields(
        &body,
        &[
            "sessionExternalId",
            "externalId",
            "role",
            "textContent",
            "model",
            "promptTokens",
            "completionTokens",
            "durationMs",
            "source",
            "createdAt",
            "parts",
        ],
        &mut args,
    )?;
    let args = Value::Object(args);
    convex::check_args(FUNCTION, &convex::MESSAGE_UPSERT, &args).map_err(|e| convex_reply(&e))?;
    let input = MessageInput::from_args(args.as_object().unwrap_or(&Map::new()));
    let now = state.now();
    let id = run_db(state, move |conn| {
        in_tx(conn, |tx| sync::upsert_message(tx, user, &input, now))
    })
    .await?
    .map_err(|e| mutation_reply(FUNCTION, &e))?;
    Ok(Reply::ok(
        json!({ "ok": true, "messageId": store::doc_id(Table::Messages, id) }),
    ))
}

/// `value && value.length > 0` in JavaScript, for the batch halves.
fn js_nonempty(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(o)) => o
            .get("length")
            .and_then(Value::as_f64)
            .is_some_and(|n| n > 0.0),
        _ => false,
    }
}

async fn sync_batch(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    const SESSIONS_FN: &str = "sessions:batchUpsert";
    const MESSAGES_FN: &str = "messages:batchUpsert";
    let user = authenticate(state, req.headers(), false).await?;
    let body = read_json(req).await?;
    let mut errors = Vec::new();
    let mut session_count = 0;
    let mut message_count = 0;

    let sessions = js_get(&body, "sessions")?;
    if js_nonempty(sessions) {
        let args = json!({ "sessions": sessions.cloned().unwrap_or(Value::Null) });
        match convex::check_args(SESSIONS_FN, &convex::SESSION_BATCH, &args) {
            Err(e) => errors.push(format!("Sessions batch error: {e}")),
            Ok(()) => {
                let inputs: Vec<SessionInput> = args["sessions"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_object)
                            .map(SessionInput::from_args)
                            .collect()
                    })
                    .unwrap_or_default();
                let now = state.now();
                match run_db(state, move |conn| {
                    in_tx(conn, |tx| sync::batch_sessions(tx, user, &inputs, now))
                })
                .await?
                {
                    Ok(counts) => session_count = counts.inserted + counts.updated,
                    Err(e) => {
                        errors.push(format!("Sessions batch error: {}", e.message(SESSIONS_FN)))
                    }
                }
            }
        }
    }

    let messages = js_get(&body, "messages")?;
    if js_nonempty(messages) {
        let args = json!({ "messages": messages.cloned().unwrap_or(Value::Null) });
        match convex::check_args(MESSAGES_FN, &convex::MESSAGE_BATCH, &args) {
            Err(e) => errors.push(format!("Messages batch error: {e}")),
            Ok(()) => {
                let inputs: Vec<MessageInput> = args["messages"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_object)
                            .map(MessageInput::from_args)
                            .collect()
                    })
                    .unwrap_or_default();
                let now = state.now();
                match run_db(state, move |conn| {
                    in_tx(conn, |tx| sync::batch_messages(tx, user, &inputs, now))
                })
                .await?
                {
                    Ok(result) => {
                        message_count = result.counts.inserted + result.counts.updated;
                        errors.extend(result.errors);
                    }
                    Err(e) => {
                        errors.push(format!("Messages batch error: {}", e.message(MESSAGES_FN)))
                    }
                }
            }
        }
    }

    Ok(Reply::ok(json!({
        "ok": true,
        "sessions": session_count,
        "messages": message_count,
        "errors": errors,
    })))
}

async fn list_sessions(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate(state, req.headers(), true).await?;
    let ids = run_db(state, move |conn| store::list_external_ids(conn, user))
        .await?
        .map_err(|e| Reply::server_error(format!("Error: {e}")))?;
    Ok(Reply::ok(json!({ "sessionIds": ids })))
}

/// `url.searchParams.get(name)`: the first value of a query parameter.
fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(key) == name).then(|| form_decode(value))
    })
}

/// `application/x-www-form-urlencoded` decoding as `URLSearchParams` does it:
/// `+` is a space, `%XX` a byte, invalid escapes stay as they are, and invalid
/// UTF-8 becomes U+FFFD.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_failed(e: &rusqlite::Error) -> Reply {
    Reply::server_error(format!("Error: {e}"))
}

async fn api_sessions(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let limit = read::parse_limit(query_param(&req, "limit").as_deref(), 50)
        .map_err(|e| Reply::bad_query(&e))?;
    let sessions = run_db(state, move |conn| read::list_sessions(conn, user, limit))
        .await?
        .map_err(|e| read_failed(&e))?;
    Ok(Reply::ok(json!({ "sessions": sessions })))
}

async fn api_session_get(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let Some(id) = query_param(&req, "id").filter(|id| !id.is_empty()) else {
        return Ok(Reply::error(StatusCode::BAD_REQUEST, "Missing session ID"));
    };
    let found = run_db(state, move |conn| read::get_session(conn, user, &id))
        .await?
        .map_err(|e| read_failed(&e))?;
    Ok(found.map_or_else(
        || Reply::error(StatusCode::NOT_FOUND, "Session not found"),
        Reply::ok,
    ))
}

async fn api_search(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let limit = read::parse_limit(query_param(&req, "limit").as_deref(), 20)
        .map_err(|e| Reply::bad_query(&e))?;
    read::check_search_type(query_param(&req, "type").as_deref())
        .map_err(|e| Reply::bad_query(&e))?;
    let Some(query) = query_param(&req, "q").filter(|q| !q.is_empty()) else {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "Missing query parameter 'q'",
        ));
    };
    let results = run_db(state, move |conn| read::search(conn, user, &query, limit))
        .await?
        .map_err(|e| read_failed(&e))?;
    Ok(Reply::ok(json!({ "results": results })))
}

async fn api_stats(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let stats = run_db(state, move |conn| read::stats(conn, user))
        .await?
        .map_err(|e| read_failed(&e))?;
    Ok(Reply::ok(stats))
}

/// `/api/export`: one session (`?id=`, as OpenSync names it, or
/// `?sessionId=`; a document id or an `externalId`) or, with neither, every
/// session (at most `?limit=`); `?format=json` (default), `markdown` (a
/// `text/markdown` download) or `jsonl` (`{content, filename}`).
async fn api_export(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let format = ExportFormat::parse(query_param(&req, "format").as_deref())
        .map_err(|e| Reply::bad_query(&e))?;
    let limit = read::parse_limit(query_param(&req, "limit").as_deref(), usize::MAX)
        .map_err(|e| Reply::bad_query(&e))?;
    let id = query_param(&req, "id").or_else(|| query_param(&req, "sessionId"));
    if id.as_deref() == Some("") {
        return Ok(Reply::error(StatusCode::BAD_REQUEST, "Missing session ID"));
    }
    let found = run_db(state, move |conn| match id {
        Some(id) => read::export_session(conn, user, &id, format),
        None => read::export_all(conn, user, format, limit).map(Some),
    })
    .await?
    .map_err(|e| read_failed(&e))?;
    let Some(found) = found else {
        return Ok(Reply::error(StatusCode::NOT_FOUND, "Session not found"));
    };
    Ok(export_reply(format, found))
}

/// The export's answer: markdown as a download, the rest as JSON.
fn export_reply(format: ExportFormat, mut found: Value) -> Reply {
    if format != ExportFormat::Markdown {
        return Reply::ok(found);
    }
    let content = match found["content"].take() {
        Value::String(s) => s,
        _ => String::new(),
    };
    let filename = found["filename"]
        .as_str()
        .unwrap_or("session.md")
        .to_owned();
    Reply::download("text/markdown; charset=utf-8", filename, content)
}

/// `/api/context?q=`: the sessions best matching `q` (full-text; at most
/// `?limit=`, default 5, capped) with their last messages, as `?format=text`
/// (default) or `messages`.
async fn api_context(state: &Arc<AppState>, req: Request) -> Result<Reply, Reply> {
    let user = authenticate_read(state, req.headers()).await?;
    let Some(query) = query_param(&req, "q").filter(|q| !q.is_empty()) else {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "Missing query parameter 'q'",
        ));
    };
    let limit = read::parse_limit(query_param(&req, "limit").as_deref(), 5)
        .map_err(|e| Reply::bad_query(&e))?;
    let format = ContextFormat::parse(query_param(&req, "format").as_deref())
        .map_err(|e| Reply::bad_query(&e))?;
    let context = run_db(state, move |conn| {
        read::context(conn, user, &query, limit, format)
    })
    .await?
    .map_err(|e| read_failed(&e))?;
    Ok(Reply::ok(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_matches_url_search_params() {
        assert_eq!(form_decode("a+b%20c"), "a b c");
        assert_eq!(form_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        h
    }

    #[test]
    fn keyless_reads_only_from_this_machine_and_the_same_origin() {
        for ok in [
            &[("host", "127.0.0.1:7420")][..],
            &[
                ("host", "localhost:7420"),
                ("origin", "http://localhost:7420"),
            ],
            &[("host", "[::1]:7420"), ("sec-fetch-site", "same-origin")],
            &[("host", "127.0.0.1:7420"), ("sec-fetch-site", "none")],
        ] {
            assert!(local_same_origin(&headers(ok)), "{ok:?}");
        }
        for bad in [
            &[][..],
            &[("host", "evil.example:7420")],
            &[("host", "192.168.1.5:7420")],
            &[
                ("host", "127.0.0.1:7420"),
                ("origin", "http://evil.example"),
            ],
            &[
                ("host", "127.0.0.1:7420"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            &[("host", "127.0.0.1:7420"), ("origin", "null")],
            &[("host", "127.0.0.1:7420"), ("sec-fetch-site", "cross-site")],
            &[("host", "localhost:7420"), ("sec-fetch-site", "same-site")],
            &[("host", "[::1]x")],
        ] {
            assert!(!local_same_origin(&headers(bad)), "{bad:?}");
        }
    }

    #[test]
    fn first_query_value_wins() {
        let req = Request::builder()
            .uri("/api/search?q=one&q=two&limit=")
            .body(Body::empty())
            .expect("request");
        assert_eq!(query_param(&req, "q").as_deref(), Some("one"));
        assert_eq!(query_param(&req, "limit").as_deref(), Some(""));
        assert_eq!(query_param(&req, "id"), None);
    }
}
