//! Fault injection of the contract server: the ways a real deployment misbehaves that a
//! client's delivery and retry logic must survive.
//!
//! Rules are replaced as a whole (`set`) and combine:
//! - `refuse`: the sync listener is closed, so connections are refused; when no
//!   rule asks for it any more the SAME port is bound again;
//! - `slow`: each matching request waits `delayMs` before it is handled;
//! - `hang`: a matching request is accepted but not answered until the rules no
//!   longer contain a matching `hang` (then it is handled normally), `maxMs`
//!   passes (default 5 minutes; then handled normally), or the server stops
//!   (then it gets 503);
//! - `status`: every `every`-th matching request (counting from when the rules
//!   were set) is answered with `status` and `{"error":"injected"}`, plus
//!   `Retry-After: <retryAfter>` when given; `limit` caps how many times.
//!
//! A rule applies to every request on the sync listener, `/health` and CORS
//! preflights included, unless `paths` restricts it (exact paths, or a prefix
//! ending in `*`). Order per request: slow, then hang, then status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use opencode_sync_server::Shutdown;

use crate::error::ContractError;

/// Default bound on how long a `hang` holds a request.
pub const DEFAULT_HANG_MAX_MS: u64 = 300_000;

/// One fault rule, as JSON `{"kind": "...", ...}` on `POST /control/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Close the sync listener: connections are refused until the rule goes.
    Refuse,
    /// Answer with an HTTP status instead of handling the request.
    Status(StatusFault),
    /// Accept the request and hold it without an answer.
    Hang(HangFault),
    /// Delay the request.
    Slow(SlowFault),
}

/// `{"kind":"status","status":500,"every":5,"retryAfter":2,"limit":3,"paths":[...]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusFault {
    /// The status to answer with (100..=599).
    pub status: u16,
    /// Fire on every n-th matching request (1 = all). Default 1.
    #[serde(default = "one")]
    pub every: u64,
    /// Seconds for a `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Fire at most this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only requests to these paths (exact, or prefix ending in `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// `{"kind":"hang","maxMs":60000,"limit":1,"paths":[...]}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HangFault {
    /// Longest hold in milliseconds (default 300000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
    /// Hold at most this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only requests to these paths (exact, or prefix ending in `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// `{"kind":"slow","delayMs":300,"limit":10,"paths":[...]}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowFault {
    /// Delay in milliseconds.
    pub delay_ms: u64,
    /// Delay at most this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only requests to these paths (exact, or prefix ending in `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

fn one() -> u64 {
    1
}

impl Fault {
    /// `{"kind":"refuse"}`
    pub fn refuse() -> Self {
        Self::Refuse
    }

    /// `{"kind":"status","status":status,"every":every}`
    pub fn status(status: u16, every: u64) -> Self {
        Self::Status(StatusFault {
            status,
            every,
            retry_after: None,
            limit: None,
            paths: None,
        })
    }

    /// `{"kind":"status","status":status,"every":every,"retryAfter":secs}`
    pub fn status_retry_after(status: u16, every: u64, secs: u64) -> Self {
        Self::Status(StatusFault {
            status,
            every,
            retry_after: Some(secs),
            limit: None,
            paths: None,
        })
    }

    /// `{"kind":"hang"}`
    pub fn hang() -> Self {
        Self::Hang(HangFault::default())
    }

    /// `{"kind":"slow","delayMs":ms}`
    pub fn slow(delay_ms: u64) -> Self {
        Self::Slow(SlowFault {
            delay_ms,
            ..SlowFault::default()
        })
    }

    /// The same rule restricted to `paths` (no effect on `refuse`).
    #[must_use]
    pub fn with_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = Some(paths.into_iter().map(Into::into).collect());
        match &mut self {
            Self::Refuse => {}
            Self::Status(f) => f.paths = list,
            Self::Hang(f) => f.paths = list,
            Self::Slow(f) => f.paths = list,
        }
        self
    }

    /// The same rule applied at most `n` times (no effect on `refuse`).
    #[must_use]
    pub fn with_limit(mut self, n: u64) -> Self {
        match &mut self {
            Self::Refuse => {}
            Self::Status(f) => f.limit = Some(n),
            Self::Hang(f) => f.limit = Some(n),
            Self::Slow(f) => f.limit = Some(n),
        }
        self
    }

    fn paths(&self) -> Option<&[String]> {
        match self {
            Self::Refuse => None,
            Self::Status(f) => f.paths.as_deref(),
            Self::Hang(f) => f.paths.as_deref(),
            Self::Slow(f) => f.paths.as_deref(),
        }
    }

    fn limit(&self) -> Option<u64> {
        match self {
            Self::Refuse => None,
            Self::Status(f) => f.limit,
            Self::Hang(f) => f.limit,
            Self::Slow(f) => f.limit,
        }
    }

    fn matches(&self, path: &str) -> bool {
        self.paths().is_none_or(|paths| {
            paths.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => p == path,
            })
        })
    }

    fn validate(&self) -> Result<(), ContractError> {
        if let Self::Status(f) = self {
            if !(100..=599).contains(&f.status) {
                return Err(ContractError::InvalidFault(format!(
                    "status {} is not an HTTP status",
                    f.status
                )));
            }
            if f.every == 0 {
                return Err(ContractError::InvalidFault(
                    "every must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A rule with its counters (reset whenever the rules are replaced).
#[derive(Debug)]
struct ActiveRule {
    fault: Fault,
    seen: AtomicU64,
    applied: AtomicU64,
}

impl ActiveRule {
    /// Records one applicable request; true when the rule acts on it.
    fn hit(&self) -> bool {
        let every = match &self.fault {
            Fault::Status(f) => f.every.max(1),
            _ => 1,
        };
        let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if !seen.is_multiple_of(every) {
            return false;
        }
        match self.fault.limit() {
            Some(limit) => self
                .applied
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < limit).then_some(n + 1)
                })
                .is_ok(),
            None => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                true
            }
        }
    }
}

/// The rules in force.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Vec<ActiveRule>,
}

impl FaultSet {
    /// Whether the sync listener must be closed.
    pub(crate) fn refuse(&self) -> bool {
        self.rules.iter().any(|r| r.fault == Fault::Refuse)
    }

    fn has_hang_for(&self, path: &str) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.fault, Fault::Hang(_)) && r.fault.matches(path))
    }

    fn faults(&self) -> Vec<Fault> {
        self.rules.iter().map(|r| r.fault.clone()).collect()
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handle the request.
    Proceed,
    /// Answer with this status (and `Retry-After` seconds) instead.
    Inject {
        status: u16,
        retry_after: Option<u64>,
    },
    /// The server is stopping while the request was held.
    ShuttingDown,
}

/// The live rules, observable by the listener supervisor and held requests.
#[derive(Debug)]
pub(crate) struct Faults {
    tx: watch::Sender<Arc<FaultSet>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(FaultSet::default())),
        }
    }
}

impl Faults {
    /// Replaces all rules (counters restart).
    pub(crate) fn set(&self, rules: Vec<Fault>) -> Result<(), ContractError> {
        rules.iter().try_for_each(Fault::validate)?;
        let set = FaultSet {
            rules: rules
                .into_iter()
                .map(|fault| ActiveRule {
                    fault,
                    seen: AtomicU64::new(0),
                    applied: AtomicU64::new(0),
                })
                .collect(),
        };
        self.tx.send_replace(Arc::new(set));
        Ok(())
    }

    /// The rules in force.
    pub(crate) fn list(&self) -> Vec<Fault> {
        self.tx.borrow().faults()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<FaultSet>> {
        self.tx.subscribe()
    }

    /// Applies slow, hang and status rules to a request for `path`.
    pub(crate) async fn before_request(&self, path: &str, shutdown: &Shutdown) -> Verdict {
        let set = self.tx.borrow().clone();
        for rule in &set.rules {
            if let Fault::Slow(slow) = &rule.fault
                && rule.fault.matches(path)
                && rule.hit()
            {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(slow.delay_ms)) => {}
                    () = shutdown.wait() => return Verdict::ShuttingDown,
                }
            }
        }
        for rule in &set.rules {
            if let Fault::Hang(hang) = &rule.fault
                && rule.fault.matches(path)
                && rule.hit()
            {
                let max = hang.max_ms.unwrap_or(DEFAULT_HANG_MAX_MS);
                if !self.hold(path, Duration::from_millis(max), shutdown).await {
                    return Verdict::ShuttingDown;
                }
                break;
            }
        }
        let mut verdict = Verdict::Proceed;
        for rule in &set.rules {
            if let Fault::Status(status) = &rule.fault {
                // Every matching rule counts the request; the first that fires wins.
                if rule.fault.matches(path) && rule.hit() && verdict == Verdict::Proceed {
                    verdict = Verdict::Inject {
                        status: status.status,
                        retry_after: status.retry_after,
                    };
                }
            }
        }
        verdict
    }

    /// Holds until no hang rule matches `path`, `max` passes (true) or the
    /// server stops (false).
    async fn hold(&self, path: &str, max: Duration, shutdown: &Shutdown) -> bool {
        let mut rx = self.tx.subscribe();
        let deadline = tokio::time::sleep(max);
        tokio::pin!(deadline);
        loop {
            if !rx.borrow_and_update().has_hang_for(path) {
                return true;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return true },
                () = &mut deadline => return true,
                () = shutdown.wait() => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_parse_from_json() {
        let rules: Vec<Fault> = serde_json::from_value(json!([
            {"kind": "refuse"},
            {"kind": "status", "status": 500, "every": 5},
            {"kind": "status", "status": 429, "every": 3, "retryAfter": 2},
            {"kind": "hang"},
            {"kind": "slow", "delayMs": 300, "paths": ["/sync/*"]}
        ]))
        .unwrap();
        assert_eq!(rules[0], Fault::refuse());
        assert_eq!(rules[1], Fault::status(500, 5));
        assert_eq!(rules[2], Fault::status_retry_after(429, 3, 2));
        assert_eq!(rules[3], Fault::hang());
        assert_eq!(rules[4], Fault::slow(300).with_paths(["/sync/*"]));
        let back = serde_json::to_value(&rules[2]).unwrap();
        assert_eq!(
            back,
            json!({"kind": "status", "status": 429, "every": 3, "retryAfter": 2})
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<Fault, _> =
            serde_json::from_value(json!({"kind": "status", "status": 500, "evrey": 2}));
        assert!(r.is_err());
        let r: Result<Fault, _> = serde_json::from_value(json!({"kind": "explode"}));
        assert!(r.is_err());
    }

    #[test]
    fn paths_match_exact_and_prefix() {
        let f = Fault::hang().with_paths(["/health", "/sync/*"]);
        assert!(f.matches("/health"));
        assert!(f.matches("/sync/batch"));
        assert!(!f.matches("/healthz"));
        assert!(Fault::hang().matches("/anything"));
    }

    #[tokio::test]
    async fn every_nth_with_limit() {
        let faults = Faults::default();
        faults
            .set(vec![Fault::status(503, 2).with_limit(2)])
            .unwrap();
        let shutdown = Shutdown::default();
        let mut fired = Vec::new();
        for _ in 0..8 {
            fired.push(faults.before_request("/x", &shutdown).await != Verdict::Proceed);
        }
        assert_eq!(
            fired,
            [false, true, false, true, false, false, false, false]
        );
    }

    #[test]
    fn invalid_rules_are_refused() {
        let faults = Faults::default();
        assert!(faults.set(vec![Fault::status(0, 1)]).is_err());
        assert!(faults.set(vec![Fault::status(500, 0)]).is_err());
    }
}
