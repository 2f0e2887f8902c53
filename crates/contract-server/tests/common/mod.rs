//! Shared helpers of the integration tests: a blocking HTTP client over
//! loopback that never treats a status as an error, and server starters.

#![allow(dead_code)]

use std::time::Duration;

use opencode_sync_contract_server::{ServerHandle, ServerOptions, WithControl};
use serde_json::Value;

pub const KEY: &str = "osk_test_key_1";
pub const OTHER_KEY: &str = "osk_test_key_2";

/// A server with one user (`KEY`) and the control listener.
pub fn start() -> ServerHandle {
    ServerHandle::start(ServerOptions::default().with_api_key(KEY).with_control())
        .expect("server starts")
}

/// An answer: status, headers and the body as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client for one base URL, optionally with an `Authorization` header value.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Client {
    pub fn new(base: &str, auth: Option<&str>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            auth: auth.map(str::to_owned),
        }
    }

    /// A client sending `Authorization: Bearer <key>`.
    pub fn with_key(base: &str, key: &str) -> Self {
        Self::new(base, Some(&format!("Bearer {key}")))
    }

    fn finish(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Resp, ureq::Error> {
        let mut resp = resp?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect::<Vec<_>>();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let text = resp.body_mut().read_to_string()?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Resp {
            status,
            body,
            retry_after,
            headers,
        })
    }

    pub fn try_get(&self, path: &str) -> Result<Resp, ureq::Error> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        Self::finish(req.call())
    }

    pub fn get(&self, path: &str) -> Resp {
        self.try_get(path).expect("GET answered")
    }

    pub fn try_post_raw(&self, path: &str, body: &str) -> Result<Resp, ureq::Error> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        Self::finish(req.send(body))
    }

    pub fn post_raw(&self, path: &str, body: &str) -> Resp {
        self.try_post_raw(path, body).expect("POST answered")
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, &body.to_string())
    }

    pub fn try_post(&self, path: &str, body: &Value) -> Result<Resp, ureq::Error> {
        self.try_post_raw(path, &body.to_string())
    }

    pub fn delete(&self, path: &str, body: Option<&Value>) -> Resp {
        let req = self.agent.delete(format!("{}{path}", self.base));
        let resp = match body {
            Some(b) => req
                .force_send_body()
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            None => req.call(),
        };
        Self::finish(resp).expect("DELETE answered")
    }

    pub fn options(&self, path: &str) -> Resp {
        let req = self.agent.options(format!("{}{path}", self.base));
        Self::finish(req.call()).expect("OPTIONS answered")
    }
}

/// The sessions of the user holding `key`, from a dump.
pub fn sessions_of(dump: &Value, key: &str) -> Vec<Value> {
    dump["users"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["apiKey"] == key)
        .and_then(|u| u["sessions"].as_array().cloned())
        .unwrap_or_default()
}

/// One session of `KEY`'s user by externalId.
pub fn session(server: &ServerHandle, external_id: &str) -> Value {
    let dump = server.dump().expect("dump");
    sessions_of(&dump, KEY)
        .into_iter()
        .find(|s| s["externalId"] == external_id)
        .unwrap_or_else(|| panic!("session {external_id} stored"))
}
