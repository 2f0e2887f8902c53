//! The contract server's layer in front of the product server's API routes: fault
//! injection (slow, hang, status) before the request reaches the API, and every
//! answer written to the request log after it.
//!
//! It wraps the API router only (through `Server::router_with`), so the dashboard's
//! own pages are neither delayed nor logged, as before the split.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::Verdict;
use crate::reqlog::RequestRecord;
use crate::state::LabState;

/// Largest answer read back for the log (the API's answers are far smaller).
const MAX_LOGGED_BODY_BYTES: usize = 64 << 20;

/// Applies the fault rules to one API request, then logs its answer.
pub(crate) async fn faults_and_log(
    State(state): State<Arc<LabState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let timestamp = state.now_ms();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let (response, injected) = match state.faults.before_request(&path, &state.shutdown).await {
        Verdict::Proceed => (next.run(req).await, false),
        Verdict::Inject {
            status,
            retry_after,
        } => (injected_answer(status, retry_after, "injected"), true),
        Verdict::ShuttingDown => (injected_answer(503, None, "server is shutting down"), true),
    };
    let status = response.status().as_u16();
    let (response, error, batch_rejected) = read_errors(response, &path).await;
    state.log.push(RequestRecord {
        method,
        path,
        status,
        error,
        injected,
        rejected: (status >= 400 && !injected) || batch_rejected,
        timestamp,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    response
}

/// An answer a fault rule gives instead of the API: `{"error": message}` with the
/// API's CORS headers and, when given, `Retry-After`.
fn injected_answer(status: u16, retry_after: Option<u64>, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = opencode_sync_server::cors_headers();
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({ "error": message }).to_string();
    (status, headers, Body::from(body)).into_response()
}

/// The log's view of an answer: the `error` text of a failed one, or a batch's
/// `errors` joined by newlines (then `true`: the payload was not fully accepted).
/// Only failed answers and batch answers are read; the answer is passed on as it was.
async fn read_errors(response: Response, path: &str) -> (Response, Option<String>, bool) {
    let failed = response.status().as_u16() >= 400;
    if !failed && path != "/sync/batch" {
        return (response, None, false);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_LOGGED_BODY_BYTES)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let batch_errors: Vec<&str> = value
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let error = if !batch_errors.is_empty() {
        Some(batch_errors.join("\n"))
    } else if failed {
        value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
    } else {
        None
    };
    let batch_rejected = !batch_errors.is_empty();
    (
        Response::from_parts(parts, Body::from(bytes)),
        error,
        batch_rejected,
    )
}
