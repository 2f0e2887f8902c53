//! `/dashboard/api/export?id=&format=`: the session page's export button. The
//! same export as `/api/export` (markdown, OpenSync's `exportSession` JSON or
//! jsonl) under the dashboard's auth, always sent as a download named after
//! the session.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{Dash, bad_request, security_headers};
use crate::read::{self, ExportFormat};

#[derive(Debug, Deserialize)]
pub(super) struct ExportParams {
    id: Option<String>,
    format: Option<String>,
}

/// The export as a file: markdown and jsonl as their text, JSON pretty-printed.
fn download(format: ExportFormat, found: &Value) -> Response {
    let (content_type, body, filename) = match format {
        ExportFormat::Json => {
            let title = found["session"]["title"].as_str();
            (
                "application/json",
                serde_json::to_string_pretty(found).unwrap_or_default(),
                read::export_filename(title, "json"),
            )
        }
        ExportFormat::Markdown | ExportFormat::Jsonl => (
            if format == ExportFormat::Markdown {
                "text/markdown; charset=utf-8"
            } else {
                "application/x-ndjson"
            },
            found["content"].as_str().unwrap_or_default().to_owned(),
            found["filename"].as_str().unwrap_or("session").to_owned(),
        ),
    };
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (StatusCode::OK, headers, body).into_response()
}

pub(super) async fn api_export(
    State(dash): State<Dash>,
    Query(params): Query<ExportParams>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = params.id.filter(|id| !id.is_empty()) else {
        return bad_request("Missing session ID");
    };
    let format = match ExportFormat::parse(params.format.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request(&e.0),
    };
    dash.read_with(
        &headers,
        move |conn, user| read::export_session(conn, user, &id, format),
        move |found| download(format, &found),
    )
    .await
}
