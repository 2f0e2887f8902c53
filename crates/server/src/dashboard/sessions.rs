//! The sessions list (`/dashboard/api/sessions`: newest first, filtered by
//! project, by git branch and by the full-text search of `/api/search`, with
//! the projects and branches to filter by) and one session
//! (`/dashboard/api/session`: the `getSession` answer as display blocks).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::blocks::message_view;
use super::{Dash, bad_request, json_response};
use crate::read;
use crate::store::{self, SESSION_COLUMNS, SessionRow, Table, put_str};

/// Sessions listed when the page asks for no limit.
const DEFAULT_LIST_LIMIT: usize = 500;
/// The most sessions one list answer holds.
const MAX_LIST_LIMIT: usize = 5000;

#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    q: Option<String>,
    project: Option<String>,
    /// A git branch; `""` lists the sessions without one.
    branch: Option<String>,
    limit: Option<String>,
}

/// The key a session is filtered and grouped by: its path, else its name,
/// else `""` (no project).
pub(super) const PROJECT_KEY: &str = "COALESCE(project_path, project_name, '')";

/// A project's display name: its name, else the last segment of its path.
pub(super) fn project_label(key: &str, name: Option<&str>) -> String {
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

fn list_sessions(
    conn: &Connection,
    user: i64,
    params: &ListParams,
    limit: usize,
) -> rusqlite::Result<Value> {
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
             AND (?3 IS NULL OR COALESCE(git_branch, '') = ?3) \
             ORDER BY updated_at DESC, id DESC"
        ))?
        .query_map(
            params![user, params.project.as_deref(), params.branch.as_deref()],
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
    let branches = conn
        .prepare(
            "SELECT COALESCE(git_branch, '') AS b, COUNT(*) FROM sessions \
             WHERE user_id = ?1 GROUP BY b ORDER BY MAX(updated_at) DESC",
        )?
        .query_map(params![user], |r| {
            let key: String = r.get(0)?;
            let label = if key.is_empty() {
                "(no branch)".to_owned()
            } else {
                key.clone()
            };
            Ok(json!({ "key": key, "label": label, "sessions": r.get::<_, i64>(1)? }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(json!({
        "sessions": sessions,
        "total": total,
        "projects": projects,
        "branches": branches,
    }))
}

pub(super) async fn api_sessions(
    State(dash): State<Dash>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Response {
    let limit = match read::parse_limit(params.limit.as_deref(), DEFAULT_LIST_LIMIT) {
        Ok(limit) => limit.min(MAX_LIST_LIMIT),
        Err(e) => return bad_request(&e.0),
    };
    dash.read(&headers, move |conn, user| {
        list_sessions(conn, user, &params, limit).map(Some)
    })
    .await
}
// ---------------------------------------------------------------------------
// One session

#[derive(Debug, Deserialize)]
pub(super) struct SessionParams {
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

pub(super) async fn api_session(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_labels() {
        assert_eq!(project_label("/home/me/app", Some("app")), "app");
        assert_eq!(project_label("/home/me/app/", None), "app");
        assert_eq!(project_label("C:\\src\\web", None), "web");
        assert_eq!(project_label("", None), "(no project)");
    }
}
