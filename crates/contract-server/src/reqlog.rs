//! The log of every request the sync listener answered, so tests can assert
//! what a client actually did ("no request was rejected", "it retried after the
//! 429", "nothing was sent while offline") without scraping output.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Oldest entries are dropped past this many (and counted in `dropped`).
const MAX_ENTRIES: usize = 100_000;
/// Error texts are cut to this many bytes in the log.
const MAX_ERROR_BYTES: usize = 2_000;

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// The `error` text of a failed answer, or a batch's `errors` joined by newlines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True when the answer came from a fault rule, not from the API.
    pub injected: bool,
    /// True when the payload was not (fully) accepted: any status >= 400 that was
    /// not injected, or a 200 batch with `errors`.
    pub rejected: bool,
    /// Server time (ms since epoch, clock offset included) when it arrived.
    pub timestamp: i64,
    /// Time to answer, in milliseconds (fault delays included).
    pub duration_ms: u64,
}

/// The bounded log.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<RequestRecord>,
    dropped: u64,
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn push(&self, mut record: RequestRecord) {
        if let Some(e) = &mut record.error
            && e.len() > MAX_ERROR_BYTES
        {
            let mut end = MAX_ERROR_BYTES;
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            e.truncate(end);
            e.push_str("...");
        }
        let mut inner = self.lock();
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.pop_front();
            inner.dropped += 1;
        }
        inner.entries.push_back(record);
    }

    /// How many requests were logged (kept and dropped): cheap to poll while waiting
    /// for a client to go quiet.
    pub(crate) fn count(&self) -> u64 {
        let inner = self.lock();
        inner.entries.len() as u64 + inner.dropped
    }

    /// Every entry kept, oldest first, and how many were dropped.
    pub(crate) fn snapshot(&self) -> (Vec<RequestRecord>, u64) {
        let inner = self.lock();
        (inner.entries.iter().cloned().collect(), inner.dropped)
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.dropped = 0;
    }
}
