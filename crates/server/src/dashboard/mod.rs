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
//!
//! The parts:
//! - `mod.rs` (here): the router, the shared auth and the JSON answers;
//! - `assets`: the page and its embedded files (CSP, ETags, versioned URLs);
//! - `sessions`: the sessions list (search and project filter) and one session;
//! - `blocks`: a stored message turned into display blocks (text, reasoning,
//!   tool calls paired with their results, other parts);
//! - `usage`: tokens and cost per day, model and project;
//! - `export`: the open session as a download (markdown or JSON);
//! - `markdown`: message markdown to safe HTML.

mod assets;
mod blocks;
mod export;
mod markdown;
mod sessions;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::api::local_same_origin;
use crate::state::AppState;
use crate::store;

pub(crate) use assets::CSP;

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
        .route("/", get(assets::index).fallback_service(api.clone()))
        .route(
            "/assets/{name}",
            get(assets::asset).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/sessions",
            get(sessions::api_sessions).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/session",
            get(sessions::api_session).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/export",
            get(export::api_export).fallback_service(api.clone()),
        )
        .route(
            "/dashboard/api/usage",
            get(usage::api_usage).fallback_service(api.clone()),
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

/// 400 with the reason, for a query value a route cannot use.
fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }))
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
        self.read_with(headers, f, |body| json_response(StatusCode::OK, &body))
            .await
    }

    /// As [`Dash::read`], with `answer` turning the found value into the
    /// response.
    async fn read_with<F, A>(&self, headers: &HeaderMap, f: F, answer: A) -> Response
    where
        F: FnOnce(&Connection, i64) -> rusqlite::Result<Option<Value>> + Send + 'static,
        A: FnOnce(Value) -> Response,
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
            Ok(Ok(Some(body))) => answer(body),
            Ok(Ok(None)) => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "Session not found" }),
            ),
            Ok(Err(failure)) => failure.into_response(),
            Err(e) => Failure::Internal(format!("Error: internal failure: {e}")).into_response(),
        }
    }
}
