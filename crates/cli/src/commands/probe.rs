//! The live check shared by `login` and `status`: is the server there, is it an OpenSync
//! server, and does it accept the key?

use std::time::Duration;

use opencode_sync_core::api::{self, Endpoint, HealthResponse, Outcome, SessionListResponse};

use crate::http::Http;

/// How long a check may take per request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What `/health` said.
#[derive(Debug)]
pub enum Reach {
    Up {
        latency: Duration,
    },
    /// Something answered, but not like OpenSync.
    NotOpenSync {
        detail: String,
    },
    Down {
        error: String,
    },
}

/// What the authenticated call said about the key.
#[derive(Debug)]
pub enum KeyCheck {
    Accepted { sessions: usize },
    Rejected { reason: String },
    Unknown { reason: String },
}

#[derive(Debug)]
pub struct Probe {
    pub reach: Reach,
    /// `None` when the server was not reachable, so the key was not tried.
    pub key: Option<KeyCheck>,
}

impl Probe {
    pub fn healthy(&self) -> bool {
        matches!(self.reach, Reach::Up { .. })
            && matches!(self.key, Some(KeyCheck::Accepted { .. }))
    }
}

pub fn run(http: &Http, endpoint: &Endpoint) -> Probe {
    let reach = match http.send(&endpoint.health()) {
        Err(e) => Reach::Down {
            error: e.to_string(),
        },
        Ok(resp) => match serde_json::from_str::<HealthResponse>(&resp.body) {
            Ok(h) if resp.status == 200 && h.status == "ok" => Reach::Up {
                latency: resp.elapsed,
            },
            _ if (300..400).contains(&resp.status) => Reach::NotOpenSync {
                detail: format!(
                    "GET /health answered with a {}",
                    api::redirect_reason(resp.status)
                ),
            },
            _ => Reach::NotOpenSync {
                detail: format!("GET /health answered HTTP {}", resp.status),
            },
        },
    };
    if !matches!(reach, Reach::Up { .. }) {
        return Probe { reach, key: None };
    }
    let key = match http.exchange(&endpoint.session_list()).0 {
        Outcome::Delivered(body) => session_count(body),
        Outcome::AuthFailed(reason) => KeyCheck::Rejected { reason },
        Outcome::Retry { reason, .. } | Outcome::Rejected(reason) | Outcome::Redirected(reason) => {
            KeyCheck::Unknown { reason }
        }
    };
    Probe {
        reach,
        key: Some(key),
    }
}

fn session_count(body: serde_json::Value) -> KeyCheck {
    match serde_json::from_value::<SessionListResponse>(body) {
        Ok(list) => KeyCheck::Accepted {
            sessions: list.session_ids.len(),
        },
        Err(_) => KeyCheck::Unknown {
            reason: "GET /sync/sessions/list answered without a sessionIds list".to_owned(),
        },
    }
}
