//! Test control of the contract server: the [`Controller`] (in-process) and the same operations over
//! HTTP on a separate control listener, which stays reachable while the sync
//! port refuses connections.
//!
//! Routes (all JSON; failures are `400 {"error": ...}`):
//! - `GET /control/dump`: everything stored plus the request log and the rules;
//! - `GET /control/faults`: `{"faults": [...]}`;
//!   `POST /control/faults`: a list of rules (or one rule, or `{"faults": [...]}`)
//!   replacing the current ones; it answers once the sync port is closed or
//!   open as the rules ask; `DELETE /control/faults`: no rules;
//! - `POST /control/keys` / `DELETE /control/keys` `{"apiKey":"osk_..."}`: add
//!   (or re-activate) / revoke a user's key;
//! - `GET /control/clock`, `POST /control/clock {"advanceMs": N}`: the server
//!   clock (`{"nowMs", "offsetMs"}`), moved forward by N ms (negative: back);
//! - `GET /control/requests` (`{"requests": [...], "dropped": N}`),
//!   `DELETE /control/requests`: the request log, read or cleared;
//!   `GET /control/requests/count` (`{"count": N}`): how many were logged, dropped ones
//!   included (cheap to poll while waiting for a client to go quiet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use opencode_sync_server::ServerError;

use crate::error::ContractError;
use crate::faults::Fault;
use crate::reqlog::RequestRecord;
use crate::state::{LabState, ListenerState};

/// How long a fault change waits for the sync port to close or re-open.
const LISTENER_WAIT: Duration = Duration::from_secs(10);

/// In-process control of a running server (cheap to clone).
///
/// The blocking methods may wait briefly (database lock, listener state); from
/// async code prefer the `_async` variants.
#[derive(Debug, Clone)]
pub struct Controller {
    state: Arc<LabState>,
}

impl Controller {
    pub(crate) fn new(state: Arc<LabState>) -> Self {
        Self { state }
    }

    /// Replaces the fault rules. Returns once the sync port is closed (rules
    /// with `refuse`) or accepting again (rules without), so a test can connect
    /// right after.
    pub fn set_faults(&self, rules: Vec<Fault>) -> Result<(), ContractError> {
        self.state.faults.set(rules)?;
        let want = !self.state.faults.subscribe().borrow().refuse();
        let deadline = Instant::now() + LISTENER_WAIT;
        loop {
            if settled(*self.state.listener.borrow(), want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(timeout(want));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// [`Controller::set_faults`] for async callers.
    pub async fn set_faults_async(&self, rules: Vec<Fault>) -> Result<(), ContractError> {
        self.state.faults.set(rules)?;
        let want = !self.state.faults.subscribe().borrow().refuse();
        let mut rx = self.state.listener.subscribe();
        match tokio::time::timeout(LISTENER_WAIT, rx.wait_for(|s| settled(*s, want))).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(timeout(want)),
        }
    }

    /// Removes every fault rule (re-opening the sync port if it was closed).
    pub fn clear_faults(&self) -> Result<(), ContractError> {
        self.set_faults(Vec::new())
    }

    /// [`Controller::clear_faults`] for async callers.
    pub async fn clear_faults_async(&self) -> Result<(), ContractError> {
        self.set_faults_async(Vec::new()).await
    }

    /// The rules in force.
    pub fn faults(&self) -> Vec<Fault> {
        self.state.faults.list()
    }

    /// Adds a user with this API key (or re-activates a revoked key).
    pub fn add_key(&self, api_key: &str) -> Result<(), ContractError> {
        Ok(self.state.admin.add_key(api_key)?)
    }

    /// Revokes an API key: later requests with it get 401 `Invalid API key`.
    /// Returns whether the key was active.
    pub fn revoke_key(&self, api_key: &str) -> Result<bool, ContractError> {
        Ok(self.state.admin.revoke_key(api_key)?)
    }

    /// Everything stored (users with their sessions, messages and parts), the
    /// request log, the rules and the clock, as `GET /control/dump` returns it.
    pub fn dump(&self) -> Result<Value, ContractError> {
        let mut out = self.state.admin.dump()?;
        let (requests, dropped) = self.state.log.snapshot();
        if let Value::Object(map) = &mut out {
            map.insert("requests".into(), json!(requests));
            map.insert("requestsDropped".into(), json!(dropped));
            map.insert("faults".into(), json!(self.faults()));
            map.insert("nowMs".into(), json!(self.state.now_ms()));
            map.insert("clockOffsetMs".into(), json!(self.state.clock.offset_ms()));
        }
        Ok(out)
    }

    /// [`Controller::dump`] for async callers (runs off the async threads).
    pub async fn dump_async(&self) -> Result<Value, ContractError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.dump())
            .await
            .map_err(|e| ContractError::Server(ServerError::Runtime(e.to_string())))?
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.log.snapshot().0
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.state.log.clear();
    }

    /// Moves the server clock by `ms` (negative: back); returns the new now.
    /// Every timestamp and both dedup windows follow it.
    pub fn advance_clock(&self, ms: i64) -> i64 {
        self.state.clock.advance(ms)
    }

    /// The server's now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }
}

fn settled(state: ListenerState, want_listening: bool) -> bool {
    !state.supervised || state.listening == want_listening
}

fn timeout(want_listening: bool) -> ContractError {
    ContractError::ListenerTimeout(if want_listening { "re-open" } else { "close" })
}

/// The control router.
pub(crate) fn router(controller: Controller) -> Router {
    Router::new()
        .route("/control/dump", get(dump))
        .route(
            "/control/faults",
            get(list_faults).post(set_faults).delete(clear_faults),
        )
        .route(
            "/control/keys",
            axum::routing::post(add_key).delete(revoke_key),
        )
        .route("/control/clock", get(clock).post(advance_clock))
        .route("/control/requests", get(requests).delete(clear_requests))
        .route("/control/requests/count", get(request_count))
        .fallback(|| async { bad(StatusCode::NOT_FOUND, "no such control route") })
        .with_state(controller)
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn bad(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A control request that cannot be carried out: answered `400 {"error": ...}`.
#[derive(Debug)]
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        bad(StatusCode::BAD_REQUEST, &self.0)
    }
}

fn parse(body: &Bytes) -> Result<Value, BadRequest> {
    serde_json::from_slice(body).map_err(|e| BadRequest(format!("invalid JSON: {e}")))
}

async fn dump(State(c): State<Controller>) -> Response {
    match c.dump_async().await {
        Ok(v) => ok(v),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn list_faults(State(c): State<Controller>) -> Response {
    ok(json!({ "faults": c.faults() }))
}

fn parse_rules(value: Value) -> Result<Vec<Fault>, BadRequest> {
    let list = match value {
        Value::Object(mut map) if map.contains_key("faults") => {
            map.remove("faults").unwrap_or(Value::Null)
        }
        Value::Object(map) => Value::Array(vec![Value::Object(map)]),
        other => other,
    };
    serde_json::from_value(list).map_err(|e| BadRequest(format!("invalid fault rules: {e}")))
}

async fn set_faults(State(c): State<Controller>, body: Bytes) -> Response {
    let rules = match parse(&body).and_then(parse_rules) {
        Ok(rules) => rules,
        Err(e) => return e.into_response(),
    };
    match c.set_faults_async(rules).await {
        Ok(()) => ok(json!({ "ok": true, "faults": c.faults() })),
        Err(e @ ContractError::InvalidFault(_)) => bad(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn clear_faults(State(c): State<Controller>) -> Response {
    match c.clear_faults_async().await {
        Ok(()) => ok(json!({ "ok": true, "faults": [] })),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn key_of(body: &Bytes) -> Result<String, BadRequest> {
    let v = parse(body)?;
    v.get("apiKey")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BadRequest("body must be {\"apiKey\": \"osk_...\"}".into()))
}

async fn add_key(State(c): State<Controller>, body: Bytes) -> Response {
    let key = match key_of(&body) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let result = tokio::task::spawn_blocking(move || c.add_key(&key)).await;
    match result {
        Ok(Ok(())) => ok(json!({ "ok": true })),
        Ok(Err(e @ ContractError::Server(ServerError::InvalidApiKey))) => {
            bad(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Ok(Err(e)) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn revoke_key(State(c): State<Controller>, body: Bytes) -> Response {
    let key = match key_of(&body) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match tokio::task::spawn_blocking(move || c.revoke_key(&key)).await {
        Ok(Ok(revoked)) => ok(json!({ "ok": true, "revoked": revoked })),
        Ok(Err(e)) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn clock_json(c: &Controller) -> Value {
    json!({ "ok": true, "nowMs": c.now_ms(), "offsetMs": c.state.clock.offset_ms() })
}

async fn clock(State(c): State<Controller>) -> Response {
    ok(clock_json(&c))
}

async fn advance_clock(State(c): State<Controller>, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let Some(ms) = v.get("advanceMs").and_then(Value::as_i64) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "body must be {\"advanceMs\": <integer milliseconds>}",
        );
    };
    c.advance_clock(ms);
    ok(clock_json(&c))
}

async fn requests(State(c): State<Controller>) -> Response {
    let (requests, dropped) = c.state.log.snapshot();
    ok(json!({ "requests": requests, "dropped": dropped }))
}

async fn request_count(State(c): State<Controller>) -> Response {
    ok(json!({ "count": c.state.log.count() }))
}

async fn clear_requests(State(c): State<Controller>) -> Response {
    c.clear_requests();
    ok(json!({ "ok": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_three_shapes() {
        let one = parse_rules(json!({"kind": "hang"})).unwrap();
        let list = parse_rules(json!([{"kind": "hang"}])).unwrap();
        let wrapped = parse_rules(json!({"faults": [{"kind": "hang"}]})).unwrap();
        assert_eq!(one, list);
        assert_eq!(list, wrapped);
        assert!(parse_rules(json!([{"kind": "nope"}])).is_err());
    }
}
