//! Usage (`/dashboard/api/usage`): tokens and cost per day (in the browser's
//! time zone), per model and per project.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sessions::{PROJECT_KEY, project_label};
use super::{Dash, bad_request};
use crate::store::num;

#[derive(Debug, Deserialize)]
pub(super) struct UsageParams {
    /// `Date.prototype.getTimezoneOffset()` of the browser: minutes to add to
    /// local time to get UTC.
    tz: Option<String>,
}

/// `?tz=`: absent or empty is UTC; a whole number of minutes within a day
/// either way is the offset; anything else is the reason for a 400.
fn parse_tz(value: Option<&str>) -> Result<i64, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    text.parse::<i64>()
        .ok()
        .filter(|m| m.abs() <= 24 * 60)
        .ok_or_else(|| {
            format!(
                "Invalid tz {text:?}: expected minutes from UTC, a whole number from -1440 to 1440"
            )
        })
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

pub(super) async fn api_usage(
    State(dash): State<Dash>,
    Query(params): Query<UsageParams>,
    headers: HeaderMap,
) -> Response {
    let tz = match parse_tz(params.tz.as_deref()) {
        Ok(tz) => tz,
        Err(message) => return bad_request(&message),
    };
    dash.read(&headers, move |conn, user| usage(conn, user, tz).map(Some))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_offsets_parse_or_say_why_not() {
        assert_eq!(parse_tz(None), Ok(0));
        assert_eq!(parse_tz(Some("")), Ok(0));
        assert_eq!(parse_tz(Some("-120")), Ok(-120));
        assert_eq!(parse_tz(Some(" 330 ")), Ok(330));
        for bad in ["abc", "1.5", "2000", "-1441"] {
            let err = parse_tz(Some(bad)).unwrap_err();
            assert!(err.starts_with("Invalid tz"), "{bad:?}: {err}");
        }
    }
}
