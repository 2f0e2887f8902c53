//! Load for `opencode-sync serve`: several clients at once, each on its own connection
//! syncing its own session and messages (one `POST /sync/message` each, optionally the
//! last ones through `/sync/batch`), every request timed; then a check through the read
//! API that every message is stored exactly once. Shared by the concurrency test
//! (`tests/serve.rs`) and the benchmark (`bench/serve_load.rs`), so both measure the
//! same thing.

#![allow(dead_code)] // each user takes part of it

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Messages per `/sync/batch` request.
const BATCH_SIZE: usize = 50;
/// Failures kept as text (the rest are only counted).
const KEPT_FAILURES: usize = 20;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Clients running at once (one thread and one connection each).
    pub clients: usize,
    /// Messages per client.
    pub messages: usize,
    /// Of those, how many (the last ones) go through `/sync/batch` instead.
    pub batched: usize,
    /// Makes ids unique per run, so runs can share a database.
    pub tag: String,
    /// Give up on a request after this long.
    pub timeout: Duration,
}

impl LoadSpec {
    pub fn session_id(&self, client: usize) -> String {
        format!("ses_load_{}_{client}", self.tag)
    }

    pub fn message_id(&self, client: usize, n: usize) -> String {
        format!("msg_load_{}_{client}_{n:05}", self.tag)
    }
}

/// What happened.
#[derive(Debug)]
pub struct LoadReport {
    /// From the moment all clients were released to the last answer.
    pub wall: Duration,
    /// Latency of every `POST /sync/message`, sorted.
    pub message_latencies: Vec<Duration>,
    /// Every request made after the release (messages and batches).
    pub requests: usize,
    /// Requests that were not answered 200 (or a batch with errors).
    pub failed: usize,
    /// The first failures, described.
    pub failures: Vec<String>,
}

impl LoadReport {
    /// The `p`-th percentile (0..=100) of the `/sync/message` latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.message_latencies.is_empty() {
            return Duration::ZERO;
        }
        let last = self.message_latencies.len() - 1;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((p / 100.0) * last as f64).round() as usize;
        self.message_latencies[i.min(last)]
    }

    /// Requests answered per second of wall time.
    pub fn requests_per_sec(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.requests as f64;
        n / self.wall.as_secs_f64().max(1e-9)
    }
}

struct ClientResult {
    started: Instant,
    finished: Instant,
    latencies: Vec<Duration>,
    requests: usize,
    failed: usize,
    failures: Vec<String>,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// POSTs `body`; `Err` describes a failure.
fn post(agent: &ureq::Agent, url: &str, auth: &str, body: &Value) -> Result<Value, String> {
    let mut resp = agent
        .post(url)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
    if status != 200 {
        return Err(format!("POST {url}: HTTP {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST {url}: {e}: {text}"))
}

fn message(spec: &LoadSpec, client: usize, n: usize, with_time: bool) -> Value {
    let text = format!("client {client} message {n}: the quick brown fox syncs the lazy dog");
    let mut m = json!({
        "sessionExternalId": spec.session_id(client),
        "externalId": spec.message_id(client, n),
        "role": if n.is_multiple_of(2) { "user" } else { "assistant" },
        "textContent": text,
        "source": "opencode",
        "parts": [{"type": "text", "content": text}],
    });
    if with_time {
        #[allow(clippy::cast_precision_loss)]
        let at = 1_750_000_000_000.0 + (client * 1_000_000 + n) as f64;
        m["createdAt"] = json!(at);
    }
    m
}

fn run_client(base: &str, key: &str, spec: &LoadSpec, client: usize, go: &Barrier) -> ClientResult {
    let agent = agent(spec.timeout);
    let auth = format!("Bearer {key}");
    let mut out = ClientResult {
        started: Instant::now(),
        finished: Instant::now(),
        latencies: Vec::with_capacity(spec.messages),
        requests: 0,
        failed: 0,
        failures: Vec::new(),
    };
    let fail = |out: &mut ClientResult, e: String| {
        out.failed += 1;
        if out.failures.len() < KEPT_FAILURES {
            out.failures.push(format!("client {client}: {e}"));
        }
    };
    let session = json!({
        "externalId": spec.session_id(client),
        "title": format!("Load client {client}"),
        "projectPath": "/work/load",
        "projectName": "load",
        "source": "opencode",
    });
    if let Err(e) = post(&agent, &format!("{base}/sync/session"), &auth, &session) {
        fail(&mut out, e);
    }
    go.wait();
    out.started = Instant::now();
    let singles = spec.messages - spec.batched.min(spec.messages);
    let message_url = format!("{base}/sync/message");
    for n in 0..singles {
        let body = message(spec, client, n, true);
        let t = Instant::now();
        let result = post(&agent, &message_url, &auth, &body);
        out.latencies.push(t.elapsed());
        out.requests += 1;
        if let Err(e) = result {
            fail(&mut out, e);
        }
    }
    let batch_url = format!("{base}/sync/batch");
    let mut n = singles;
    while n < spec.messages {
        let end = (n + BATCH_SIZE).min(spec.messages);
        let messages: Vec<Value> = (n..end).map(|i| message(spec, client, i, false)).collect();
        out.requests += 1;
        match post(&agent, &batch_url, &auth, &json!({ "messages": messages })) {
            Ok(answer) if answer["errors"].as_array().is_none_or(Vec::is_empty) => {}
            Ok(answer) => fail(&mut out, format!("batch errors: {}", answer["errors"])),
            Err(e) => fail(&mut out, e),
        }
        n = end;
    }
    out.finished = Instant::now();
    out
}

/// Runs `spec.clients` clients at once against `base` (released together once each has
/// created its session) and waits for them all; every request is bounded by
/// `spec.timeout`.
pub fn run_load(base: &str, key: &str, spec: &LoadSpec) -> LoadReport {
    let go = Arc::new(Barrier::new(spec.clients));
    let results: Vec<ClientResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.clients)
            .map(|client| {
                let go = Arc::clone(&go);
                s.spawn(move || run_client(base, key, spec, client, &go))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load client panicked"))
            .collect()
    });
    let started = results.iter().map(|r| r.started).min();
    let finished = results.iter().map(|r| r.finished).max();
    let wall = match (started, finished) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let mut message_latencies: Vec<Duration> =
        results.iter().flat_map(|r| r.latencies.clone()).collect();
    message_latencies.sort_unstable();
    LoadReport {
        wall,
        message_latencies,
        requests: results.iter().map(|r| r.requests).sum(),
        failed: results.iter().map(|r| r.failed).sum(),
        failures: results.into_iter().flat_map(|r| r.failures).collect(),
    }
}

/// GETs a read route with the key; the answer as JSON.
pub fn get_json(base: &str, key: &str, route: &str, timeout: Duration) -> Result<Value, String> {
    let url = format!("{base}{route}");
    let mut resp = agent(timeout)
        .get(&url)
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if status != 200 {
        return Err(format!("GET {url}: HTTP {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}"))
}

/// Checks through `/api/sessions/get` that every client's session holds each of its
/// messages exactly once (and nothing else), and its `messageCount` says so. Returns
/// the number of messages found.
pub fn check_stored(base: &str, key: &str, spec: &LoadSpec) -> Result<usize, String> {
    let mut total = 0;
    for client in 0..spec.clients {
        let id = spec.session_id(client);
        let got = get_json(
            base,
            key,
            &format!("/api/sessions/get?id={id}"),
            spec.timeout,
        )?;
        let stored: Vec<String> = got["messages"]
            .as_array()
            .ok_or_else(|| format!("{id}: no messages list in {got}"))?
            .iter()
            .map(|m| m["externalId"].as_str().unwrap_or_default().to_owned())
            .collect();
        let distinct: BTreeSet<&String> = stored.iter().collect();
        let expected: BTreeSet<String> = (0..spec.messages)
            .map(|n| spec.message_id(client, n))
            .collect();
        if distinct.len() != stored.len() {
            return Err(format!(
                "{id}: {} messages stored, {} distinct: some twice",
                stored.len(),
                distinct.len()
            ));
        }
        let missing: Vec<&String> = expected.iter().filter(|m| !distinct.contains(m)).collect();
        if !missing.is_empty() || stored.len() != spec.messages {
            return Err(format!(
                "{id}: {} of {} messages stored; missing {} (first: {:?})",
                stored.len(),
                spec.messages,
                missing.len(),
                missing.first()
            ));
        }
        let count = &got["session"]["messageCount"];
        if count.as_u64() != u64::try_from(spec.messages).ok() {
            return Err(format!(
                "{id}: messageCount {count}, expected {}",
                spec.messages
            ));
        }
        total += stored.len();
    }
    Ok(total)
}
