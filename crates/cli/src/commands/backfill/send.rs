//! Sending: what every sending thread shares ([`Shared`]: the connection pool, the retry
//! policy, the stop flags and the pause a `Retry-After` sets for all), one request with
//! its retries ([`Shared::deliver`]), and one session sent whole ([`sync_session`]: its
//! upsert, then its messages in order).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use opencode_sync_core::api::{Endpoint, Outcome, Request, SessionPayload};
use opencode_sync_core::backfill::{
    self, CONFIRM_DELAY_MS, RowNote, SendReason, SessionSummary, SyncRecord,
};
use opencode_sync_core::config::Options;
use opencode_sync_core::delivery::Pause;
use opencode_sync_core::map::{self, SessionContext};
use opencode_sync_core::model::SessionInfo;
use serde_json::Value;

use super::report::Failure;
use crate::http::Http;
use crate::opencode_store::{StoredMessage, StoredSession};
use crate::outbox_dir::now_ms;

/// Why the whole run stopped early.
#[derive(Debug, Clone)]
pub(super) enum Halt {
    AuthFailed(String),
    GaveUp(String),
    Redirected(String),
}

/// The answer to one request, after retries.
pub(super) enum Sent {
    Delivered(Value),
    Rejected(String),
    /// The run is stopping (Ctrl-C, a refused key, a server that stays unreachable).
    Stopped,
}

/// What every sending thread shares.
pub(super) struct Shared {
    pub(super) http: Http,
    pub(super) endpoint: Option<Endpoint>,
    pub(super) options: Options,
    pub(super) retry_budget: Duration,
    pub(super) dry_run: bool,
    pub(super) interrupted: Arc<AtomicBool>,
    pub(super) halted: AtomicBool,
    pub(super) halt: Mutex<Option<Halt>>,
    /// A failure pauses every thread, not only the one that saw it: the core's one
    /// pause policy, as in the plugin and `sync --flush`.
    pub(super) pause: Mutex<Pause>,
}

impl Shared {
    pub(super) fn stopped(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst) || self.halted.load(Ordering::SeqCst)
    }

    pub(super) fn halt(&self, why: Halt) {
        if let Ok(mut slot) = self.halt.lock()
            && slot.is_none()
        {
            *slot = Some(why);
        }
        self.halted.store(true, Ordering::SeqCst);
    }

    pub(super) fn halted_with(&self) -> Option<Halt> {
        self.halt.lock().ok().and_then(|h| h.clone())
    }

    /// Sleeps until `until` unless the run stops first; returns whether it slept it out.
    pub(super) fn sleep_until(&self, until: Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    /// When the shared pause ends, as an `Instant` (now when there is none).
    fn pause_end(&self) -> Instant {
        let until = self.pause.lock().map_or(0, |p| p.until());
        let wait = u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait)
    }

    /// Sends one request, retrying transient failures for up to `retry_budget`.
    pub(super) fn deliver(&self, request: &Request) -> Sent {
        let started = Instant::now();
        let budget_end = started + self.retry_budget;
        loop {
            // Every thread waits out the pause, but not past its own budget.
            if !self.sleep_until(self.pause_end().min(budget_end)) {
                return Sent::Stopped;
            }
            if self.stopped() {
                return Sent::Stopped;
            }
            let (outcome, _) = self.http.exchange(request);
            match outcome {
                Outcome::Delivered(body) => {
                    if let Ok(mut pause) = self.pause.lock() {
                        pause.succeeded();
                    }
                    return Sent::Delivered(body);
                }
                Outcome::Rejected(reason) => return Sent::Rejected(reason),
                Outcome::AuthFailed(reason) => {
                    self.halt(Halt::AuthFailed(reason));
                    return Sent::Stopped;
                }
                // Retrying cannot help until the URL changes.
                Outcome::Redirected(reason) => {
                    self.halt(Halt::Redirected(reason));
                    return Sent::Stopped;
                }
                Outcome::Retry { after_ms, reason } => {
                    if let Ok(mut pause) = self.pause.lock() {
                        pause.failed(now_ms(), after_ms, fastrand::f64());
                    }
                    // The last attempt is made when the budget runs out, not a backoff
                    // step before it; only a server asking for a longer wait than is
                    // left ends it early.
                    let now = Instant::now();
                    let asked_too_long = after_ms.is_some() && self.pause_end() > budget_end;
                    if now >= budget_end || asked_too_long {
                        self.halt(Halt::GaveUp(reason));
                        return Sent::Stopped;
                    }
                }
            }
        }
    }
}

/// A session to send, with what the reader loaded.
pub(super) struct Job {
    pub(super) summary: SessionSummary,
    pub(super) reason: SendReason,
    pub(super) since: Option<f64>,
    pub(super) prev: Option<SyncRecord>,
    pub(super) session: StoredSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Delivered (or, in a dry run, planned).
    Done,
    Failed,
    /// Not finished because the run stopped.
    Stopped,
    /// Deleted from OpenCode's store between listing and reading.
    Gone,
}

/// A session upsert to send again once the dedup window has passed.
pub(super) struct Confirm {
    pub(super) at: Instant,
    pub(super) request: Request,
}

pub(super) struct SessionResult {
    pub(super) id: String,
    pub(super) title: Option<String>,
    pub(super) project_path: Option<String>,
    pub(super) reason: SendReason,
    pub(super) status: Status,
    pub(super) messages: usize,
    pub(super) tools: usize,
    pub(super) record: Option<SyncRecord>,
    pub(super) confirm: Option<Confirm>,
}

pub(super) enum Event {
    Message {
        tools: usize,
    },
    Failure(Failure),
    /// Rows of a session that were left out or read in part.
    Notes(Vec<RowNote>),
    Done(Box<SessionResult>),
}

/// A stored session's upsert: its totals summed from the replies where the store has
/// none, its model from the latest reply where it names none.
pub(crate) fn session_payload(
    info: &mut SessionInfo,
    messages: &[StoredMessage],
    project_worktree: Option<String>,
    options: &Options,
) -> SessionPayload {
    backfill::fill_missing_totals(info, messages.iter().map(|m| &m.info));
    let ctx = SessionContext {
        last_model: backfill::last_model(messages.iter().map(|m| &m.info)),
        // The branch a past session ran on is not recorded anywhere; omitted, a branch
        // the server already has is kept.
        git_branch: None,
        fallback_directory: project_worktree,
    };
    map::session_payload(info, &ctx, options)
}

/// Maps and sends one session: the session upsert, then its messages in order.
pub(super) fn sync_session(
    shared: &Shared,
    job: Job,
    events: &mpsc::Sender<Event>,
) -> SessionResult {
    let Job {
        summary,
        reason,
        since,
        prev,
        session,
    } = job;
    let StoredSession {
        mut info,
        messages,
        project_worktree,
        notes,
    } = session;
    if !notes.is_empty() {
        let _ = events.send(Event::Notes(notes.clone()));
    }
    let payload = session_payload(&mut info, &messages, project_worktree, &shared.options);
    let mark = messages
        .iter()
        .map(|m| m.mark)
        .fold(None, |acc: Option<f64>, m| {
            Some(acc.map_or(m, |a| a.max(m)))
        });
    let selected: Vec<_> = messages
        .iter()
        .filter(|m| {
            backfill::worth_sending(&m.info, &m.parts) && backfill::message_selected(since, m.mark)
        })
        .collect();
    let mut result = SessionResult {
        id: summary.id.clone(),
        title: payload.title.clone(),
        project_path: payload.project_path.clone(),
        reason,
        status: Status::Done,
        messages: 0,
        tools: 0,
        record: None,
        confirm: None,
    };
    let failure = |message_id: Option<&str>, reason: String| Failure {
        session_id: summary.id.clone(),
        title: payload.title.clone(),
        message_id: message_id.map(str::to_owned),
        reason,
    };

    let endpoint = match (&shared.endpoint, shared.dry_run) {
        (Some(endpoint), false) => endpoint,
        _ => {
            result.messages = selected.len();
            result.tools = selected
                .iter()
                .flat_map(|m| &m.parts)
                .filter(|p| p.kind == "tool")
                .count();
            return result;
        }
    };

    let first_sent_at = now_ms();
    match shared.deliver(&endpoint.session(&payload)) {
        Sent::Delivered(_) => {}
        Sent::Rejected(reason) => {
            let _ = events.send(Event::Failure(failure(None, reason)));
            result.status = Status::Failed;
            return result;
        }
        Sent::Stopped => {
            result.status = Status::Stopped;
            return result;
        }
    }
    for message in selected {
        if shared.stopped() {
            result.status = Status::Stopped;
            return result;
        }
        let wire = map::message_payload(&message.info, &message.parts, &shared.options);
        let tools = wire
            .parts
            .iter()
            .flatten()
            .filter(|p| p.kind == "tool-call")
            .count();
        match shared.deliver(&endpoint.message(&wire)) {
            Sent::Delivered(_) => {
                result.messages += 1;
                result.tools += tools;
                let _ = events.send(Event::Message { tools });
            }
            Sent::Rejected(reason) => {
                let _ = events.send(Event::Failure(failure(Some(&message.info.id), reason)));
                result.status = Status::Failed;
            }
            Sent::Stopped => {
                result.status = Status::Stopped;
                return result;
            }
        }
    }
    if result.status == Status::Done {
        let updated = info.time.updated.unwrap_or(summary.time_updated);
        let mut record = backfill::record_after_send(
            &summary.id,
            updated,
            &payload,
            mark,
            prev.as_ref(),
            now_ms(),
        );
        record.notes = notes;
        result.record = Some(record);
        if backfill::confirm_needed(prev.as_ref(), &payload, first_sent_at) {
            result.confirm = Some(Confirm {
                at: Instant::now() + Duration::from_millis(CONFIRM_DELAY_MS as u64),
                request: endpoint.session(&payload),
            });
        }
    }
    result
}
