//! Sends the core's plain [`Request`]s over native HTTP (ureq with rustls, system proxy
//! settings honoured) and hands the response back for the core to classify.

use std::time::{Duration, Instant};

use opencode_sync_core::api::{self, Method, Outcome, Request};

/// Responses larger than this are not read in full (API answers are tiny).
const BODY_LIMIT: u64 = 8 * 1024 * 1024;

/// An HTTP client with the CLI's timeouts.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
}

/// A response, reduced to what classification needs.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
    pub elapsed: Duration,
}

/// The request never produced a response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

impl Http {
    pub fn new(timeout: Duration) -> Self {
        Self::build(
            ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .timeout_connect(Some(timeout.min(Duration::from_secs(10)))),
        )
    }

    /// A client for many requests from `connections` threads at once (clones share the
    /// pool of idle connections). Each phase of a request has its own timeout but the
    /// name lookup has none: with one, ureq resolves on a new thread for every request,
    /// which costs more than the request itself on loopback. (The system resolver's own
    /// timeouts still apply.)
    pub fn for_bulk(timeout: Duration, connections: usize) -> Self {
        Self::build(
            ureq::Agent::config_builder()
                .max_idle_connections_per_host(connections.max(1))
                .max_idle_connections(connections.max(10))
                .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
                .timeout_send_request(Some(timeout))
                .timeout_send_body(Some(timeout))
                .timeout_recv_response(Some(timeout))
                .timeout_recv_body(Some(timeout)),
        )
    }

    fn build(config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>) -> Self {
        let config = config
            .http_status_as_error(false)
            .user_agent(api::USER_AGENT)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build();
        Self {
            agent: config.new_agent(),
        }
    }

    /// Sends one request.
    pub fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let start = Instant::now();
        let result = match (request.method, &request.body) {
            (Method::Get, _) => {
                let mut builder = self.agent.get(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                builder.call()
            }
            (Method::Post, body) => {
                let mut builder = self.agent.post(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                builder.send(body.as_deref().unwrap_or_default())
            }
        };
        let mut response = result.map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(describe)?;
        Ok(Response {
            status,
            retry_after,
            body,
            elapsed: start.elapsed(),
        })
    }

    /// Sends and classifies; a transport failure is a retryable outcome.
    pub fn exchange(&self, request: &Request) -> (Outcome, Option<Response>) {
        match self.send(request) {
            Ok(resp) => (
                api::classify(
                    request.route,
                    resp.status,
                    resp.retry_after.as_deref(),
                    &resp.body,
                ),
                Some(resp),
            ),
            Err(e) => (
                Outcome::Retry {
                    after_ms: None,
                    reason: e.to_string(),
                },
                None,
            ),
        }
    }
}

/// A short human description of why no response arrived.
fn describe(err: ureq::Error) -> TransportError {
    use std::io::ErrorKind;
    let text = match &err {
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
            ErrorKind::TimedOut => "timed out".to_owned(),
            _ => format!("network error: {io}"),
        },
        ureq::Error::Timeout(_) => "timed out waiting for the server".to_owned(),
        ureq::Error::HostNotFound => "host not found (check the URL and your DNS)".to_owned(),
        ureq::Error::ConnectionFailed => "could not connect".to_owned(),
        ureq::Error::BodyExceedsLimit(_) => "the response was too large".to_owned(),
        ureq::Error::Tls(msg) => format!("TLS error: {msg}"),
        ureq::Error::Rustls(e) => format!("TLS error: {e}"),
        other => other.to_string(),
    };
    TransportError(text)
}
