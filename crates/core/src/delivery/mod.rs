//! Delivery: one state machine for getting queued upserts to the server, which every
//! front end drives: the plugin (through its host's file calls and `fetch`) and the CLI's
//! `sync --flush` (through `std::fs` and its HTTP client). It decides which record goes
//! next (each session's records in order, at most [`Config::max_in_flight`] requests at
//! once, one per session), claims records in the shared outbox directory, backs off with
//! full jitter and `Retry-After` (one pause for every sender), sets aside what the server
//! refuses for good, stops on a refused key, never follows a redirect, and writes each
//! failed attempt's history back into its record so that `opencode-sync status` can
//! show it.
//!
//! In the manner of a sans-I/O protocol crate (quinn-proto): the machine never reads the
//! clock nor waits. Time comes in as `now` (ms since the epoch), files through the
//! [`Fs`] the front end implements, answers through [`Delivery::handle_answer`]; out come
//! requests ([`Delivery::poll_transmit`]), the next time something can happen
//! ([`Delivery::poll_timeout`]) and what to tell the user ([`Delivery::poll_event`]).
//!
//! - [`queue`]: the send queue (arrival order, a newer upsert of a key replaces the
//!   queued one).
//! - [`disk`]: one process's view of the outbox directory: records, drafts, claims,
//!   spares, quarantine, and loading what earlier processes left.
//! - [`pause`]: the one pause policy every sender follows (the backfill too).

pub mod disk;
pub mod pause;
pub mod queue;

use std::collections::VecDeque;

use crate::api::{Endpoint, Outcome, Request};
use crate::engine::Upsert;
use crate::outbox::{Entry, History, Liveness, Record, SOFT_LIMIT_RECORDS, parse_entry};
use crate::retry::RetryPolicy;

pub use pause::Pause;

pub use disk::{DiskOutbox, Fs, Whereabouts};
use queue::{Queued, Requeue, SendQueue};

/// How the machine sends.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests in flight at once, each for another session.
    pub max_in_flight: usize,
    pub policy: RetryPolicy,
    /// How long a session's messages wait for another sender to finish sending that
    /// session's record (the server keeps `createdAt` only when the session record comes
    /// first); a request times out after 30 s.
    pub other_sender_wait_ms: i64,
    /// How often a session waiting for another sender looks again.
    pub other_sender_poll_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_in_flight: 4,
            policy: RetryPolicy::default(),
            other_sender_wait_ms: 35_000,
            other_sender_poll_ms: 100,
        }
    }
}

/// A request to make, and the id its answer comes back with.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmit {
    pub id: u64,
    /// `session:<id>` or `message:<id>`.
    pub key: String,
    pub session_id: String,
    pub request: Request,
    /// A draft of a message its (dead) writer never finished: the session's totals
    /// after it were never sent either (see [`crate::outbox`]).
    pub draft: bool,
}

/// What to tell the user (the plugin logs and toasts; the CLI prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was refused: nothing is sent until [`Delivery::resume`]. `first` is
    /// true the first time since the credentials last changed.
    AuthFailed { reason: String, first: bool },
    /// The server redirects (never followed): sending pauses for the longest backoff,
    /// the records stay queued. Said once until the credentials change.
    Redirected { key: String, reason: String },
    /// The server refused a record for good: it was set aside (quarantine).
    Refused { key: String, reason: String },
    /// A failed attempt (said for the 1st, 10th, 20th, ... in a row).
    Retrying {
        key: String,
        reason: String,
        attempt: u32,
    },
    /// A record could not be written to the outbox: it is kept in memory and still
    /// sent while this process lives. Said for the first failure only; `failures`
    /// counts them all.
    WriteFailed { key: String, failures: usize },
    /// Records earlier processes left are queued.
    Leftovers {
        queued: usize,
        corrupt: usize,
        total: usize,
    },
    /// More than [`SOFT_LIMIT_RECORDS`] wait: none is dropped.
    Backlog { records: usize },
}

/// What became of one answered request (for a front end that counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Delivered,
    /// Put back to be tried again (after a backoff), or given back at close.
    Requeued,
    /// Refused for good and set aside.
    Refused(String),
    /// The key was refused, or the server redirects: sending stopped.
    Halted(String),
    /// No request with that id is in flight.
    Unknown,
}

/// A record being sent.
#[derive(Debug)]
struct Flight {
    id: u64,
    item: Queued,
    /// Its claim name in the outbox, when it has a file.
    claim: Option<String>,
}

/// A record another sender holds: the rest of its session waits until that sender is
/// done with it (each session's records reach the server in order).
#[derive(Debug)]
struct Waiting {
    session: String,
    /// The record's key and queue name.
    key: String,
    file: String,
    /// This process's copy of it, queued again if the other sender gives it back.
    item: Option<Queued>,
    until: i64,
    next_look: i64,
}

/// The delivery state of one sender process (see the module docs).
#[derive(Debug)]
pub struct Delivery {
    config: Config,
    disk: Option<DiskOutbox>,
    queue: SendQueue,
    in_flight: Vec<Flight>,
    waiting: Vec<Waiting>,
    /// The pause after a failure, which holds every request of this process.
    pause: Pause,
    /// The key was refused: nothing is sent until [`Delivery::resume`].
    auth_failed: bool,
    auth_told: bool,
    redirect_told: bool,
    write_failures: usize,
    /// [`Delivery::close`] was called: nothing more is sent.
    closed: bool,
    next_id: u64,
    events: VecDeque<Event>,
}

impl Delivery {
    /// `disk`: the outbox directory, or `None` to keep records in memory only.
    pub fn new(config: Config, disk: Option<DiskOutbox>) -> Self {
        Self {
            pause: Pause::new(config.policy),
            config,
            disk,
            queue: SendQueue::default(),
            in_flight: Vec::new(),
            waiting: Vec::new(),
            auth_failed: false,
            auth_told: false,
            redirect_told: false,
            write_failures: 0,
            closed: false,
            next_id: 0,
            events: VecDeque::new(),
        }
    }

    /// Whether records are kept on disk.
    pub fn durable(&self) -> bool {
        self.disk.is_some()
    }

    /// Persists each upsert, then queues it (a queued upsert of the same key is
    /// replaced, and its file deleted). A record that cannot be written is kept in
    /// memory and still sent.
    pub fn enqueue(&mut self, fs: &dyn Fs, now: i64, upserts: Vec<Upsert>) {
        for upsert in upserts {
            self.enqueue_record(fs, now, Record::new(&upsert, now));
        }
    }

    /// [`Delivery::enqueue`] of an upsert serialized already (its history is this
    /// queueing's).
    pub fn enqueue_record(&mut self, fs: &dyn Fs, now: i64, record: Record) {
        // A record queued while the server's wait runs carries it too: it may supersede
        // the record that heard it, and the next process must still wait.
        // A newer upsert of a record that failed inherits its failures: it replaces that
        // record (and its file), and `status` must still tell why nothing went out.
        let key = record.key();
        let failed = self
            .queue
            .get(&key)
            .map(|q| &q.record.history)
            .or_else(|| {
                self.in_flight
                    .iter()
                    .find(|f| f.item.key == key)
                    .map(|f| &f.item.record.history)
            })
            .filter(|h| h.attempts > 0);
        let record = record.with_history(History {
            queued_at: now,
            not_before: self.pause.server_wait(now).unwrap_or(0),
            attempts: failed.map_or(0, |h| h.attempts),
            last_error: failed.and_then(|h| h.last_error.clone()),
        });
        let file = match self.disk.as_mut() {
            Some(disk) => {
                let file = disk.persist(fs, &record);
                if file.is_none() {
                    self.write_failures += 1;
                    if self.write_failures == 1 {
                        self.events.push_back(Event::WriteFailed {
                            key: record.key(),
                            failures: 1,
                        });
                    }
                }
                file
            }
            None => None,
        };
        if let Some(old) = self.queue.push(record, file)
            && let Some(disk) = self.disk.as_mut()
        {
            disk.discard(fs, &old);
        }
        if self.queue.len() == SOFT_LIMIT_RECORDS {
            self.events.push_back(Event::Backlog {
                records: SOFT_LIMIT_RECORDS,
            });
        }
    }

    /// Keeps drafts of messages still being written (see [`crate::outbox`]).
    pub fn write_drafts(&mut self, fs: &dyn Fs, now: i64, drafts: &[Upsert]) {
        if let Some(disk) = self.disk.as_mut() {
            for draft in drafts {
                disk.persist_draft(fs, &Record::new(draft, now));
            }
        }
    }

    /// Messages removed (the engine's [`crate::engine::Engine::take_removed`]): their
    /// drafts go.
    pub fn discard_drafts(&mut self, fs: &dyn Fs, keys: &[String]) {
        if let Some(disk) = self.disk.as_mut() {
            for key in keys {
                disk.discard_draft(fs, key);
            }
        }
    }

    /// Records that could not be written to the outbox (kept in memory).
    pub fn write_failures(&self) -> usize {
        self.write_failures
    }

    /// Queues what earlier processes left in the outbox, ahead of this process's own
    /// records, and honours the longest backoff they carry (a server's `Retry-After`
    /// outlives the process that heard it).
    pub fn load_leftovers(&mut self, fs: &dyn Fs, now: i64, liveness: &dyn Liveness) {
        let Some(disk) = self.disk.as_ref() else {
            return;
        };
        let scan = disk.scan(fs, now, liveness);
        let queued = scan.leftovers.len();
        if queued > 0 || scan.corrupt > 0 {
            self.events.push_back(Event::Leftovers {
                queued,
                corrupt: scan.corrupt,
                total: scan.total,
            });
        }
        if scan.total > SOFT_LIMIT_RECORDS {
            self.events.push_back(Event::Backlog {
                records: scan.total,
            });
        }
        let not_before = scan
            .leftovers
            .iter()
            .map(|l| l.record.history.not_before)
            .max()
            .unwrap_or(0);
        if not_before > now {
            self.pause.honour_server_wait(not_before);
        }
        // Sessions another sender is sending wait until it is done with that record.
        for (session, file, key) in scan.held {
            let own = self
                .in_flight
                .iter()
                .any(|f| f.item.file.as_deref() == Some(file.as_str()));
            let known = self.waiting.iter().any(|w| w.file == file);
            if !own && !known {
                self.waiting.push(Waiting {
                    session,
                    key,
                    file,
                    item: None,
                    until: now.saturating_add(self.config.other_sender_wait_ms),
                    next_look: now.saturating_add(self.config.other_sender_poll_ms),
                });
            }
        }
        let superseded = self.queue.push_leftovers(
            scan.leftovers
                .into_iter()
                .map(|l| (l.record, l.file))
                .collect(),
        );
        if let Some(disk) = self.disk.as_mut() {
            for file in superseded {
                disk.discard(fs, &file);
            }
        }
    }

    /// The next request to make now, if any: the first queued record whose session is
    /// not being sent, claimed in the outbox. `None` while paused, halted, closed, at
    /// [`Config::max_in_flight`], or when nothing can go.
    pub fn poll_transmit(
        &mut self,
        fs: &dyn Fs,
        now: i64,
        endpoint: &Endpoint,
    ) -> Option<Transmit> {
        if self.closed
            || self.auth_failed
            || !self.pause.open(now)
            || self.in_flight.len() >= self.config.max_in_flight
        {
            return None;
        }
        self.look_at_waiting(fs, now);
        loop {
            let (in_flight, waiting) = (&self.in_flight, &self.waiting);
            let item = self.queue.pop_where(|session| {
                !in_flight
                    .iter()
                    .any(|f| f.item.record.session_id == session)
                    && !waiting.iter().any(|w| w.session == session)
            })?;
            // Claim it so no other process sends it at the same time. Gone means another
            // process (or `sync --flush`) has it, or is done with it.
            let claim = match (&item.file, self.disk.as_ref()) {
                (Some(file), Some(disk)) => match disk.claim(fs, file, now) {
                    Some(claim) => Some(claim),
                    None => {
                        // Another sender has it, or it was superseded by a newer record
                        // of its key (which goes first then), or it is done with.
                        match disk.find_key(fs, &item.key) {
                            Some((Whereabouts::Claimed, file)) => {
                                let mine = item.file.as_deref() == Some(file.as_str());
                                self.waiting.push(Waiting {
                                    session: item.record.session_id.clone(),
                                    key: item.key.clone(),
                                    file,
                                    item: mine.then_some(item),
                                    until: now.saturating_add(self.config.other_sender_wait_ms),
                                    next_look: now.saturating_add(self.config.other_sender_poll_ms),
                                });
                            }
                            Some((_, newer)) if item.file.as_deref() != Some(newer.as_str()) => {
                                if let Some(record) = disk.read(fs, &newer) {
                                    let stale = self.queue.push_leftovers(vec![(record, newer)]);
                                    if let Some(disk) = self.disk.as_mut() {
                                        for file in stale {
                                            disk.discard(fs, &file);
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                        continue;
                    }
                },
                _ => None,
            };
            let id = self.next_id;
            self.next_id += 1;
            let draft = item
                .file
                .as_deref()
                .is_some_and(|f| matches!(parse_entry(f), Entry::Queued(name) if name.draft));
            let transmit = Transmit {
                id,
                key: item.key.clone(),
                session_id: item.record.session_id.clone(),
                request: item.record.request(endpoint),
                draft,
            };
            self.in_flight.push(Flight { id, item, claim });
            return Some(transmit);
        }
    }

    /// Records another sender held: once it is done with one (gone: delivered or set
    /// aside) the rest of the session goes on; given back, the record is queued again
    /// at the front. After [`Config::other_sender_wait_ms`] the session goes on anyway
    /// (that sender is stuck), without the record.
    fn look_at_waiting(&mut self, fs: &dyn Fs, now: i64) {
        if self.waiting.is_empty() {
            return;
        }
        let Some(disk) = self.disk.as_mut() else {
            self.waiting.clear();
            return;
        };
        let poll = self.config.other_sender_poll_ms;
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &mut self.waiting[i];
            if now >= w.until {
                self.waiting.swap_remove(i);
                continue;
            }
            if now < w.next_look {
                i += 1;
                continue;
            }
            w.next_look = now.saturating_add(poll);
            match disk.find_key(fs, &w.key) {
                Some((Whereabouts::Claimed, file)) => {
                    // Still out (perhaps a newer record of it, which ours is older than).
                    if file != w.file {
                        w.file = file;
                        if let Some(older) = w.item.take().and_then(|item| item.file) {
                            disk.discard(fs, &older);
                        }
                    }
                    i += 1;
                }
                Some((_, file)) => {
                    // Given back (or superseded by a record queued meanwhile): it goes
                    // first here, the newest of it.
                    let w = self.waiting.swap_remove(i);
                    match w.item {
                        Some(item) if item.file.as_deref() == Some(file.as_str()) => {
                            let own = item.file.clone();
                            match self.queue.requeue(item) {
                                Requeue::Requeued | Requeue::AlreadyQueued => {}
                                Requeue::Superseded => {
                                    if let Some(own) = own {
                                        disk.discard(fs, &own);
                                    }
                                }
                                Requeue::Replaced(older) => {
                                    if let Some(older) = older {
                                        disk.discard(fs, &older);
                                    }
                                }
                            }
                        }
                        item => match disk.read(fs, &file) {
                            Some(record) => {
                                if let Some(older) = item.and_then(|item| item.file) {
                                    disk.discard(fs, &older);
                                }
                                for stale in self.queue.push_leftovers(vec![(record, file)]) {
                                    disk.discard(fs, &stale);
                                }
                            }
                            // Claimed again meanwhile: look again later.
                            None => self.waiting.push(Waiting { item, ..w }),
                        },
                    }
                }
                None => {
                    // Done with (delivered or set aside). A newer upsert of it queued
                    // here goes at its turn.
                    let w = self.waiting.swap_remove(i);
                    self.queue.promote(&w.key);
                }
            }
        }
    }

    /// The answer to request `id`. `unit_random` is uniform in `[0, 1)` (the backoff's
    /// jitter).
    pub fn handle_answer(
        &mut self,
        fs: &dyn Fs,
        now: i64,
        id: u64,
        outcome: &Outcome,
        unit_random: f64,
    ) -> Landed {
        let Some(i) = self.in_flight.iter().position(|f| f.id == id) else {
            return Landed::Unknown;
        };
        let Flight { item, claim, .. } = self.in_flight.swap_remove(i);
        if self.closed {
            // `close` gave the record back already; delivered or not, it stays queued for
            // a later sender (upserts are idempotent).
            return Landed::Requeued;
        }
        match outcome {
            Outcome::Delivered(_) => {
                self.pause.succeeded();
                if let (Some(claim), Some(disk)) = (claim, self.disk.as_mut()) {
                    disk.delivered(fs, &claim);
                }
                Landed::Delivered
            }
            Outcome::Retry { after_ms, reason } => {
                let counted = self.pause.failed(now, *after_ms, unit_random);
                let key = item.key.clone();
                let failed = self.failed(item, now, reason);
                self.put_back(fs, failed, claim);
                let attempt = self.pause.attempt();
                if counted && (attempt == 1 || attempt.is_multiple_of(10)) {
                    self.events.push_back(Event::Retrying {
                        key,
                        reason: reason.clone(),
                        attempt,
                    });
                }
                Landed::Requeued
            }
            Outcome::AuthFailed(reason) => {
                self.pause.succeeded();
                self.put_back(fs, item, claim);
                self.auth_failed = true;
                let first = !self.auth_told;
                self.auth_told = true;
                self.events.push_back(Event::AuthFailed {
                    reason: reason.clone(),
                    first,
                });
                Landed::Halted(reason.clone())
            }
            Outcome::Redirected(reason) => {
                let longest = self.pause.cap_ms().min(i64::MAX as u64) as i64;
                self.pause.hold(now.saturating_add(longest));
                let key = item.key.clone();
                let failed = self.failed(item, now, reason);
                self.put_back(fs, failed, claim);
                if !self.redirect_told {
                    self.redirect_told = true;
                    self.events.push_back(Event::Redirected {
                        key,
                        reason: reason.clone(),
                    });
                }
                Landed::Halted(reason.clone())
            }
            Outcome::Rejected(reason) => {
                self.pause.succeeded();
                let mut refused = item.record.clone();
                refused.history.attempts += 1;
                refused.history.last_error = Some(reason.clone());
                if let (Some(claim), Some(file), Some(disk)) =
                    (&claim, &item.file, self.disk.as_mut())
                {
                    disk.quarantine(fs, claim, file, &refused);
                }
                self.events.push_back(Event::Refused {
                    key: item.key,
                    reason: reason.clone(),
                });
                Landed::Refused(reason.clone())
            }
        }
    }

    /// The item with one more failed attempt in its history. Its `not_before` is the
    /// wait the server asked for, if any: that holds for the next process too, where this
    /// process's own backoff does not (after an outage the next OpenCode start or a
    /// `sync --flush` tries at once).
    fn failed(&self, mut item: Queued, now: i64, reason: &str) -> Queued {
        let history = &mut item.record.history;
        history.attempts = history.attempts.saturating_add(1);
        history.last_error = Some(reason.to_owned());
        history.not_before = self.pause.server_wait(now).unwrap_or(0);
        item
    }

    /// Not delivered: back to the front of the queue and, with its history, under its
    /// queue name on disk, unless a newer upsert of the same key replaced it meanwhile.
    fn put_back(&mut self, fs: &dyn Fs, item: Queued, claim: Option<String>) {
        let file = item.file.clone();
        let text = item.record.encode();
        let requeued = self.queue.requeue(item);
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        match (requeued, claim, file) {
            (Requeue::Requeued | Requeue::AlreadyQueued, Some(claim), Some(file)) => {
                disk.release_with(fs, &claim, &file, &text);
            }
            (Requeue::Replaced(older), claim, file) => {
                if let (Some(claim), Some(file)) = (claim, file) {
                    disk.release_with(fs, &claim, &file, &text);
                }
                if let Some(older) = older {
                    disk.discard(fs, &older);
                }
            }
            (Requeue::Superseded, Some(claim), _) => disk.delivered(fs, &claim),
            _ => {}
        }
    }

    /// When [`Delivery::poll_transmit`] may have something again (a pause or a wait
    /// ends), if anything is queued; `None` when only new input, an answer or
    /// [`Delivery::resume`] can change that.
    pub fn poll_timeout(&self, now: i64) -> Option<i64> {
        if self.closed || self.auth_failed || self.queue.is_empty() {
            return None;
        }
        let wait = self.waiting.iter().map(|w| w.next_look.min(w.until)).min();
        if !self.pause.open(now) {
            return Some(self.pause.until().max(wait.unwrap_or(0)));
        }
        wait
    }

    /// What to tell the user, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// New credentials: sending resumes, and a refused key or a redirect is told again.
    pub fn resume(&mut self) {
        self.auth_failed = false;
        self.auth_told = false;
        self.redirect_told = false;
        self.pause.clear();
    }

    /// Whether the key was refused (nothing is sent until [`Delivery::resume`]).
    pub fn auth_failed(&self) -> bool {
        self.auth_failed
    }

    /// Nothing more will be delivered without new input, new credentials or time:
    /// nothing in flight, and nothing queued (or the key refused).
    pub fn settled(&self) -> bool {
        self.in_flight.is_empty() && (self.queue.is_empty() || self.auth_failed)
    }

    /// Whether a record could go now or later (queued, not halted).
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records kept: queued ones and those in flight.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Stops sending for good (the process is about to exit): records in flight go back
    /// under their queue names, everything queued stays in the outbox. Returns how many
    /// records are left for the next start or `sync --flush` (0 without an outbox).
    pub fn close(&mut self, fs: &dyn Fs) -> usize {
        self.closed = true;
        let in_flight = std::mem::take(&mut self.in_flight);
        let Some(disk) = self.disk.as_mut() else {
            return 0;
        };
        let mut kept = self.queue.len();
        for flight in in_flight {
            if let (Some(claim), Some(file)) = (flight.claim, flight.item.file) {
                disk.release(fs, &claim, &file);
                kept += 1;
            }
        }
        kept
    }

    /// The plugin is being disposed: no spare files are kept any more.
    pub fn retire_spares(&mut self, fs: &dyn Fs) {
        if let Some(disk) = self.disk.as_mut() {
            disk.retire_spares(fs);
        }
    }
}

#[cfg(test)]
pub(crate) mod mem_fs;

#[cfg(test)]
mod tests;
