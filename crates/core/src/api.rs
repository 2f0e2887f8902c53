//! The OpenSync sync API (see `opensync-api.md`): wire types, request builders that
//! return plain data for whichever HTTP stack the caller has (native or `fetch`), and the
//! one classifier that decides what a response means for delivery.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_key::ApiKey;
use crate::endpoint::SiteUrl;

/// The value of `source` on everything this tool sends.
pub const SOURCE: &str = "opencode";
/// Sent as `User-Agent` so server logs can tell this client apart.
pub const USER_AGENT: &str = concat!("opencode-sync/", env!("CARGO_PKG_VERSION"));

/// A session upsert for `POST /sync/session`. Omitted fields keep their stored value, so
/// everything unknown stays `None` (a `null` would fail the server's validator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPayload {
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Milliseconds since the epoch; kept by the server only on first insert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// Ignored by today's route, kept by a server that grows the column. Never batched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    /// The parent of a subagent session. Like `gitBranch`: ignored today, never batched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_external_id: Option<String>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
    #[default]
    Unknown,
}

/// One displayable piece of a message: exactly `type` and `content`, nothing else (any
/// other key fails the server's validator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Value,
}

/// A message upsert for `POST /sync/message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePayload {
    pub session_external_id: String,
    pub external_id: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Source time in ms since the epoch: orders the conversation on the dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<Part>>,
}

/// A session inside `/sync/batch`. The batch validators take whole objects and have no
/// `createdAt` or `gitBranch`, so this type cannot carry them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSession {
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl From<SessionPayload> for BatchSession {
    fn from(s: SessionPayload) -> Self {
        Self {
            external_id: s.external_id,
            title: s.title,
            project_path: s.project_path,
            project_name: s.project_name,
            model: s.model,
            provider: s.provider,
            source: s.source,
            prompt_tokens: s.prompt_tokens,
            completion_tokens: s.completion_tokens,
            cost: s.cost,
            duration_ms: s.duration_ms,
        }
    }
}

/// A message inside `/sync/batch` (no `createdAt`: the server stores arrival time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchMessage {
    pub session_external_id: String,
    pub external_id: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<Part>>,
}

impl From<MessagePayload> for BatchMessage {
    fn from(m: MessagePayload) -> Self {
        Self {
            session_external_id: m.session_external_id,
            external_id: m.external_id,
            role: m.role,
            text_content: m.text_content,
            model: m.model,
            source: m.source,
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            duration_ms: m.duration_ms,
            parts: m.parts,
        }
    }
}

/// The body of `POST /sync/batch`. Only for data whose timestamps do not matter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchPayload {
    pub sessions: Vec<BatchSession>,
    pub messages: Vec<BatchMessage>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// `GET /sync/sessions/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionListResponse {
    pub session_ids: Vec<String>,
}

/// `POST /sync/batch` answers 200 even when half of it failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub sessions: u64,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The routes, so a response can be classified by what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Session,
    Message,
    Batch,
    SessionList,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Self::Health => "/health",
            Self::Session => "/sync/session",
            Self::Message => "/sync/message",
            Self::Batch => "/sync/batch",
            Self::SessionList => "/sync/sessions/list",
        }
    }
}

/// A request ready for any HTTP client. `Debug` masks the key.
#[derive(Clone, PartialEq)]
pub struct Request {
    pub route: Route,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if *name == "Authorization" {
                    "Bearer (masked)"
                } else {
                    value
                };
                (*name, shown)
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// Builds requests for one deployment and key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: SiteUrl,
    pub key: ApiKey,
}

impl Endpoint {
    pub fn new(base: SiteUrl, key: ApiKey) -> Self {
        Self { base, key }
    }

    fn request(&self, route: Route, method: Method, body: Option<String>, auth: bool) -> Request {
        let mut headers = vec![
            ("Accept", "application/json".to_owned()),
            ("User-Agent", USER_AGENT.to_owned()),
        ];
        if auth {
            headers.push(("Authorization", format!("Bearer {}", self.key.expose())));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json".to_owned()));
        }
        Request {
            route,
            method,
            url: self.base.join(route.path()),
            headers,
            body,
        }
    }

    fn post<T: Serialize>(&self, route: Route, payload: &T) -> Request {
        // Serialising these plain structs cannot fail; fall back to an empty object so the
        // server reports the problem rather than the client panicking.
        let body = serde_json::to_string(payload).unwrap_or_else(|_| "{}".to_owned());
        self.post_json(route, body)
    }

    /// `POST` of a body already serialized (see [`crate::outbox::Record`]).
    pub fn post_json(&self, route: Route, body: String) -> Request {
        self.request(route, Method::Post, Some(body), true)
    }

    /// `GET /health` (no key sent).
    pub fn health(&self) -> Request {
        self.request(Route::Health, Method::Get, None, false)
    }

    /// `GET /sync/sessions/list`: also the cheapest call that proves the key.
    pub fn session_list(&self) -> Request {
        self.request(Route::SessionList, Method::Get, None, true)
    }

    /// `POST /sync/session`.
    pub fn session(&self, payload: &SessionPayload) -> Request {
        self.post(Route::Session, payload)
    }

    /// `POST /sync/message`.
    pub fn message(&self, payload: &MessagePayload) -> Request {
        self.post(Route::Message, payload)
    }

    /// `POST /sync/batch`.
    pub fn batch(&self, payload: &BatchPayload) -> Request {
        self.post(Route::Batch, payload)
    }
}

/// What a response means for delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored. Carries the parsed body.
    Delivered(Value),
    /// Transient: try again, after the server's `Retry-After` if it gave one.
    Retry {
        after_ms: Option<u64>,
        reason: String,
    },
    /// The key was refused: stop sending until the credentials change.
    AuthFailed(String),
    /// The server refused this payload: retrying the same bytes cannot succeed.
    Rejected(String),
    /// The server answered with a redirect. It is never followed: the key and every
    /// payload would go to another address. Nothing was delivered, and trying again
    /// cannot help until the URL (or the proxy in the way) changes: stop sending, keep
    /// the records, and say so.
    Redirected(String),
}

/// Markers of a Convex validation or limit failure inside a 500: the payload is at fault.
const PAYLOAD_FAULTS: &[&str] = &[
    "ArgumentValidationError",
    "does not match validator",
    "extra field",
    "is too large",
    "is too long",
    "too many fields",
    "which is reserved",
];

/// Classifies a response. `retry_after` is the raw `Retry-After` header, if any.
pub fn classify(route: Route, status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error: Option<String> = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let raw_message = || error.as_deref().unwrap_or(body);
    let message = || server_text(raw_message());
    match status {
        200..=299 => match (route, parsed) {
            (Route::Batch, Some(v)) => {
                let reply: BatchResponse = crate::objects::from_str(body).unwrap_or_default();
                if reply.errors.is_empty() {
                    Outcome::Delivered(v)
                } else {
                    Outcome::Rejected(server_text(&reply.errors.join("; ")))
                }
            }
            // Every answer of the API says `"ok": true`; a `false` is a refusal.
            (_, Some(v)) if v.get("ok") == Some(&Value::Bool(false)) => {
                Outcome::Rejected(format!("HTTP {status} with \"ok\": false: {}", message()))
            }
            (_, Some(v)) => Outcome::Delivered(v),
            // A proxy or captive portal answering for the server: not delivered.
            (_, None) => Outcome::Retry {
                after_ms: None,
                reason: format!("HTTP {status} with a body that is not JSON"),
            },
        },
        // The API never redirects: a wrong URL, or a proxy or captive portal in the way.
        300..=399 => Outcome::Redirected(redirect_reason(status)),
        401 | 403 => Outcome::AuthFailed(message()),
        429 | 503 => Outcome::Retry {
            after_ms: retry_after.and_then(parse_retry_after),
            reason: format!("HTTP {status}: {}", message()),
        },
        500 => {
            if PAYLOAD_FAULTS.iter().any(|m| raw_message().contains(m)) {
                Outcome::Rejected(message())
            } else {
                Outcome::Retry {
                    after_ms: retry_after.and_then(parse_retry_after),
                    reason: format!("HTTP 500: {}", message()),
                }
            }
        }
        408 | 425 | 500..=599 => Outcome::Retry {
            after_ms: retry_after.and_then(parse_retry_after),
            reason: format!("HTTP {status}: {}", message()),
        },
        _ => Outcome::Rejected(format!("HTTP {status}: {}", message())),
    }
}

/// Why a redirect was not followed, for logs, `status` and records.
pub fn redirect_reason(status: u16) -> String {
    format!(
        "HTTP {status} redirect, not followed (requests go only to the configured URL: check it \
         with `opencode-sync config`; a proxy or captive portal may be in the way)"
    )
}

/// The longest server text kept in a reason, in characters.
const MAX_SERVER_TEXT: usize = 300;

/// Server text made fit to print, log and store: secrets masked (a server may echo the
/// key it was sent), control characters (terminal escapes, newlines) and runs of
/// whitespace made one space, at most [`MAX_SERVER_TEXT`] characters.
fn server_text(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return "(empty body)".to_owned();
    }
    // Masked before it is cut: a cut secret might no longer look like one.
    let mut out = crate::redact::redact(&out).into_owned();
    if let Some((cut, _)) = out.char_indices().nth(MAX_SERVER_TEXT) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The longest delay a `Retry-After` asks for that is honoured (a day), in ms.
const MAX_RETRY_AFTER_MS: u64 = 86_400_000;

/// `Retry-After` in delta-seconds, as milliseconds (at most a day). (The HTTP-date form
/// is rare for APIs; callers fall back to their own backoff when this returns `None`.)
///
/// Accepts what `f64`'s parser accepts, finite and not negative (`1.5`, `+2`, `.5`,
/// `1e3`, `-0`), and gives what `(seconds * 1000.0) as u64` gave, without `str::parse`
/// (whose tables cost the plugin's wasm about 13 KB): exactly for up to 15 significant
/// digits and exponents within ±22; beyond that (no server sends it) the decimal is
/// read exactly, which may differ by the last millisecond.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let text = value.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    // The exponent, saturated (its digits may be many): value = digits * 10^(exp - frac).
    let mut exp: i64 = 0;
    if let Some(e) = exponent {
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => (-1, d),
            None => (1, e.strip_prefix('+').unwrap_or(e)),
        };
        if digits.is_empty() || !all_digits(digits) {
            return None;
        }
        for b in digits.bytes() {
            exp = (exp * 10 + i64::from(b - b'0')).min(1_000_000);
        }
        exp *= sign;
    }
    let digits: Vec<u8> = int
        .bytes()
        .chain(frac.bytes())
        .skip_while(|&b| b == b'0')
        .collect();
    if digits.is_empty() {
        return Some(0);
    }
    // The value is 0.<digits> * 10^integer_digits.
    let integer_digits = digits.len() as i64 + exp - frac.len() as i64;
    if negative {
        // Below half the least f64 (2.470_328_229_206_232_7e-324), `f64` read -0.
        let negative_zero = integer_digits < -323
            || (integer_digits == -323 && digits.as_slice() <= b"24703282292062327".as_slice());
        return negative_zero.then_some(0);
    }
    // Up to 15 digits times a power of ten up to 10^22: both exact as `f64`, so one
    // rounding gives what `str::parse` gives (Clinger's fast path), and the delay is
    // computed from it as before, rounding included.
    let significant = digits.len() - digits.iter().rev().take_while(|&&b| b == b'0').count();
    let exp10 = integer_digits - significant as i64;
    if significant <= 15 && (-22..=22).contains(&exp10) {
        let n = digits[..significant]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64;
        let pow = (0..exp10.unsigned_abs()).fold(1.0, |p, _| p * 10.0);
        let seconds = if exp10 >= 0 { n * pow } else { n / pow };
        return Some((seconds * 1000.0).min(MAX_RETRY_AFTER_MS as f64) as u64);
    }
    // Otherwise exactly: that times 1000, rounded down.
    let point = integer_digits + 3;
    // Past f64::MAX (1.797_693_134_862_315_8e308) `f64` read infinity, refused.
    if integer_digits > 309
        || (integer_digits == 309 && digits.as_slice() >= b"17976931348623158".as_slice())
    {
        return None;
    }
    if point > 8 {
        return Some(MAX_RETRY_AFTER_MS);
    }
    let whole = usize::try_from(point).unwrap_or(0);
    let ms = (0..whole).fold(0u64, |ms, i| {
        ms * 10 + u64::from(digits.get(i).map_or(0, |d| d - b'0'))
    });
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEY: &str = "osk_0123456789abcdefghijklmnopqrstuv";

    fn endpoint() -> Endpoint {
        Endpoint::new(
            SiteUrl::parse("https://x.convex.cloud").unwrap(),
            ApiKey::parse(KEY).unwrap(),
        )
    }

    #[test]
    fn builders() {
        let e = endpoint();
        let h = e.health();
        assert_eq!(
            (h.method, h.url.as_str()),
            (Method::Get, "https://x.convex.site/health")
        );
        assert!(h.headers.iter().all(|(n, _)| *n != "Authorization"));

        let l = e.session_list();
        assert_eq!(l.url, "https://x.convex.site/sync/sessions/list");
        assert!(
            l.headers
                .contains(&("Authorization", format!("Bearer {KEY}")))
        );
        assert!(!format!("{l:?}").contains(KEY));

        let s = e.session(&SessionPayload {
            external_id: "ses_1".into(),
            title: Some("Fix".into()),
            created_at: Some(5),
            ..Default::default()
        });
        assert_eq!(s.url, "https://x.convex.site/sync/session");
        let body: Value = serde_json::from_str(s.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"externalId": "ses_1", "title": "Fix", "createdAt": 5})
        );

        let m = e.message(&MessagePayload {
            session_external_id: "ses_1".into(),
            external_id: "msg_1".into(),
            role: Role::Assistant,
            parts: Some(vec![Part {
                kind: "text".into(),
                content: json!("hi"),
            }]),
            ..Default::default()
        });
        let body: Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"sessionExternalId": "ses_1", "externalId": "msg_1", "role": "assistant",
                   "parts": [{"type": "text", "content": "hi"}]})
        );
    }

    #[test]
    fn batch_drops_fields_its_validators_refuse() {
        let session = SessionPayload {
            external_id: "ses_1".into(),
            created_at: Some(1),
            git_branch: Some("main".into()),
            ..Default::default()
        };
        let message = MessagePayload {
            session_external_id: "ses_1".into(),
            external_id: "m".into(),
            created_at: Some(1),
            ..Default::default()
        };
        let payload = BatchPayload {
            sessions: vec![session.into()],
            messages: vec![message.into()],
        };
        let text = endpoint().batch(&payload).body.unwrap();
        assert!(
            !text.contains("createdAt") && !text.contains("gitBranch"),
            "{text}"
        );
    }

    #[test]
    fn server_text_is_masked_flattened_and_bounded() {
        use Outcome::*;
        let r = Route::Message;
        let echo = format!(r#"{{"error":"key Bearer {KEY} is bad"}}"#);
        let Rejected(reason) = classify(r, 418, None, &echo) else {
            panic!("a 418 is a refusal")
        };
        assert_eq!(reason, "HTTP 418: key Bearer [REDACTED] is bad");
        let AuthFailed(reason) = classify(r, 401, None, &echo) else {
            panic!("a 401 is an auth failure")
        };
        assert!(!reason.contains(KEY), "{reason}");
        let Retry { reason, .. } =
            classify(r, 502, None, "\u{1b}[2J\u{1b}[31mEVIL\nforged: ok\r\n")
        else {
            panic!("a 502 is retried")
        };
        assert_eq!(reason, "HTTP 502: [2J [31mEVIL forged: ok");
        let Retry { reason, .. } = classify(r, 503, None, &"x ".repeat(3_000_000)) else {
            panic!("a 503 is retried")
        };
        assert!(reason.chars().count() < 320, "{}", reason.len());
        assert!(reason.ends_with('…'));
        assert!(
            matches!(classify(r, 302, None, ""), Redirected(reason) if reason.starts_with("HTTP 302 redirect, not followed"))
        );
        assert!(matches!(
            classify(r, 200, None, r#"{"ok":false,"error":"nope"}"#),
            Rejected(reason) if reason.ends_with("nope")
        ));
    }

    #[test]
    fn classify_every_status() {
        use Outcome::*;
        let r = Route::Session;
        assert_eq!(
            classify(r, 200, None, r#"{"ok":true,"sessionId":"k1"}"#),
            Delivered(json!({"ok": true, "sessionId": "k1"}))
        );
        assert!(matches!(
            classify(r, 200, None, "<html>portal</html>"),
            Retry { .. }
        ));
        assert_eq!(
            classify(r, 401, None, r#"{"error":"Invalid API key"}"#),
            AuthFailed("Invalid API key".into())
        );
        assert_eq!(
            classify(r, 403, None, ""),
            AuthFailed("(empty body)".into())
        );
        assert_eq!(
            classify(r, 429, Some("2"), r#"{"error":"slow down"}"#),
            Retry {
                after_ms: Some(2000),
                reason: "HTTP 429: slow down".into()
            }
        );
        assert_eq!(
            classify(r, 503, Some("soon"), ""),
            Retry {
                after_ms: None,
                reason: "HTTP 503: (empty body)".into()
            }
        );
        assert_eq!(
            classify(r, 500, None, r#"{"error":"Error: something broke"}"#),
            Retry {
                after_ms: None,
                reason: "HTTP 500: Error: something broke".into()
            }
        );
        let validation = r#"{"error":"ArgumentValidationError: Value does not match validator.\nPath: .title\nValue: null"}"#;
        assert!(
            matches!(classify(r, 500, None, validation), Rejected(m) if m.contains("Path: .title"))
        );
        for limit in [
            "Uncaught Error: Value is too large (1.2 MiB > maximum size 1 MiB)",
            "Uncaught Error: String is too long (1048577 > maximum size 1 MiB)",
            "Uncaught Error: Array length is too long (8193 > maximum length 8192)",
            "Uncaught Error: Object has too many fields (1025 > maximum number 1024)",
            "Uncaught Error: Field name $x starts with a '$', which is reserved.",
        ] {
            let body = serde_json::json!({ "error": limit }).to_string();
            assert_eq!(classify(r, 500, None, &body), Rejected(limit.into()));
        }
        for status in [408, 425, 502, 504, 599] {
            assert!(
                matches!(classify(r, status, None, ""), Retry { .. }),
                "{status}"
            );
        }
        assert_eq!(
            classify(
                r,
                400,
                None,
                r#"{"error":"Missing externalId or sessionId"}"#
            ),
            Rejected("HTTP 400: Missing externalId or sessionId".into())
        );
        // A redirect is a wrong URL or somebody in the way (the API never redirects):
        // never followed, never set aside.
        for status in [301, 302, 303, 307, 308] {
            assert!(matches!(classify(r, status, None, "x"), Redirected(_)));
        }
        for status in [404, 405, 413, 422] {
            assert!(
                matches!(classify(r, status, None, "x"), Rejected(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn batch_errors_inside_a_200_are_rejections() {
        let ok = r#"{"ok":true,"sessions":1,"messages":2,"errors":[]}"#;
        assert!(matches!(
            classify(Route::Batch, 200, None, ok),
            Outcome::Delivered(_)
        ));
        let half = r#"{"ok":true,"sessions":0,"messages":2,"errors":["Sessions batch error: ArgumentValidationError: Object contains extra field `createdAt`"]}"#;
        assert_eq!(
            classify(Route::Batch, 200, None, half),
            Outcome::Rejected(
                "Sessions batch error: ArgumentValidationError: Object contains extra field `createdAt`".into()
            )
        );
    }

    #[test]
    fn batch_responses_skip_unknown_fields_and_refuse_wrong_types() {
        // Unknown fields skipped, missing ones defaulted; a wrong type, a repeated field,
        // a wrong length or trailing text refused.
        let want = [
            true, true, true, true, false, false, false, false, false, false, false, false, false,
        ];
        for (body, want) in [
            r#"{"ok":true,"sessions":1,"messages":2,"errors":[]}"#,
            r#"{"ok":false,"errors":["a","b\n"],"extra":{"x":[1]}}"#,
            r#"{}"#,
            r#"[true, 3]"#,
            r#"[true, 3, 4, ["e"], 5]"#,
            r#"{"errors":["a"],"errors":["b"]}"#,
            r#"{"errors":null}"#,
            r#"{"errors":["a"],"sessions":-1}"#,
            r#"{"errors":["a"],"sessions":1.0}"#,
            r#"{"errors":["a"],"ok":"yes"}"#,
            r#"{"errors":[1]}"#,
            r#"{"errors":["a"]} x"#,
            "null",
        ]
        .into_iter()
        .zip(want)
        {
            assert_eq!(
                serde_json::from_str::<BatchResponse>(body).is_ok(),
                want,
                "{body}"
            );
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(2000));
        assert_eq!(parse_retry_after(" 0.5 "), Some(500));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("1e12"), Some(86_400_000));
        for (text, want) in [
            ("+2", Some(2000)),
            (".5", Some(500)),
            ("5.", Some(5000)),
            ("-0", Some(0)),
            ("-0.0e5", Some(0)),
            ("0.0005", Some(0)),
            ("1.2345", Some(1234)),
            ("8.03", Some(8029)),
            ("1E-3", Some(1)),
            ("12e+1", Some(120_000)),
            ("86400", Some(86_400_000)),
            ("86401", Some(86_400_000)),
            ("1e308", Some(86_400_000)),
            ("1.7976931348623157e308", Some(86_400_000)),
            ("1.7976931348623159e308", None),
            ("1e309", None),
            ("1e999999999999", None),
            ("1e-999999999999", Some(0)),
            ("007", Some(7000)),
            ("", None),
            (".", None),
            ("-.", None),
            ("e5", None),
            ("1e", None),
            ("1e+", None),
            ("1.2.3", None),
            ("--1", None),
            ("+-1", None),
            ("-1e-9", None),
            ("-1e-324", Some(0)),
            ("-2.4e-324", Some(0)),
            ("-2.5e-324", None),
            ("inf", None),
            ("NaN", None),
            ("0x10", None),
            ("1 2", None),
        ] {
            assert_eq!(parse_retry_after(text), want, "{text:?}");
        }
    }

    /// The reading of `Retry-After` before it was exact: through `f64`.
    fn retry_after_through_f64(value: &str) -> Option<u64> {
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1000.0).min(86_400_000.0) as u64)
    }

    proptest! {
        /// Any number a server would send reads as it did through `f64`.
        #[test]
        fn retry_after_reads_as_through_f64(
            text in "[+-]?[0-9]{0,8}(\\.[0-9]{0,7})?([eE][+-]?[0-9]{1,3})?|[ \\PC]{0,12}"
        ) {
            prop_assert_eq!(parse_retry_after(&text), retry_after_through_f64(&text), "{:?}", text);
        }

        #[test]
        fn classify_never_panics(status in 0u16..1000, body in "\\PC{0,200}", ra in proptest::option::of("\\PC{0,10}")) {
            for route in [Route::Health, Route::Session, Route::Message, Route::Batch, Route::SessionList] {
                let _ = classify(route, status, ra.as_deref(), &body);
            }
        }
    }
}
