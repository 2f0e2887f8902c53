//! `opencode-sync sync` (backfill): OpenCode's history, read-only, through the core's
//! one mapping, to the server.
//!
//! One thread reads sessions from the store (a bounded queue keeps memory flat); `--jobs`
//! threads each take a session and send it over a shared connection pool: the session
//! upsert first (a message for an unknown session would create a bare one whose
//! `createdAt` is arrival time, and `createdAt` is kept only on first insert), then its
//! messages in order. Every request goes through the core's `classify` and
//! `RetryPolicy`, as in the plugin: 429/5xx/network errors are retried with backoff and
//! `Retry-After` (which pauses every thread), a 401 stops the run, a refused payload is
//! reported and counted as failed. The batch route is never used (it drops `createdAt`).
//!
//! The main thread shows progress and writes the local record of each session as soon
//! as it is delivered ([`SyncRecords`](crate::sync_records::SyncRecords)), so Ctrl-C
//! (finish the requests in flight, save, exit 130) loses nothing and the next run
//! resumes. Decisions (which sessions, which messages, when to confirm a session upsert)
//! are the core's [`backfill`](opencode_sync_core::backfill) module.
//!
//! A row of OpenCode's store that cannot be read whole is named once in the summary
//! ([`RowNote`](opencode_sync_core::backfill::RowNote): left out, or sent without a
//! field) and kept in the session's record, so later runs that skip the unchanged session
//! name it again. It is not a send failure: the exit code says whether everything that
//! could be read was delivered.
//!
//! A run has three phases, one part each:
//! - [`plan`]: where the history is, the credentials and sync records, which sessions are
//!   selected and which of them to send (asking the server what it has when needed);
//! - [`pool`]: the reader thread, the sending threads and the main thread's bookkeeping
//!   (records written as sessions finish, the confirmations of session totals);
//! - [`report`]: the summary, as text and as JSON, and the exit code.
//!
//! They share [`send`] (one request with retries, one session's upsert and messages,
//! and what every thread sees) and [`progress`] (the bar or plain lines on stderr).

mod plan;
mod pool;
mod progress;
mod report;
mod send;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use serde_json::Value;

use crate::cli::SyncArgs;
use crate::opencode_store::HistoryStore;

pub(crate) use send::session_payload;

/// OpenCode's store where `sync` reads it by default, opened; `None` when there is none
/// (or it cannot be opened).
pub(crate) fn default_store() -> Option<Box<dyn HistoryStore>> {
    plan::default_source()?.open().ok()
}

/// What a backfill did, for `sync` to print and exit with.
#[derive(Debug)]
pub struct Report {
    /// 0 everything delivered, 1 something failed, 130 interrupted.
    pub code: u8,
    pub ok: bool,
    pub json: Value,
}

/// `interrupted` is set by Ctrl-C: the requests in flight finish, then the run stops.
pub fn run(args: &SyncArgs, interrupted: &Arc<AtomicBool>) -> Result<Report> {
    let started = Instant::now();
    let mut plan = match plan::make(args, interrupted)? {
        plan::Made::Plan(plan) => plan,
        plan::Made::NoHistory(dir) => return Ok(report::no_history(args, &dir)),
    };
    let sent = pool::send(args, interrupted, &mut plan);
    Ok(report::summarize(args, interrupted, *plan, sent, started))
}
