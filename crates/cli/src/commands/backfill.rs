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
//! as it is delivered ([`SyncRecords`]), so Ctrl-C (finish the requests in flight, save,
//! exit 130) loses nothing and the next run resumes. Decisions (which sessions, which
//! messages, when to confirm a session upsert) are the core's [`backfill`] module.
//!
//! A row of OpenCode's store that cannot be read whole is named once in the summary
//! ([`RowNote`]: left out, or sent without a field) and kept in the session's record, so
//! later runs that skip the unchanged session name it again. It is not a send failure:
//! the exit code says whether everything that could be read was delivered.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use opencode_sync_core::api::{Endpoint, Outcome, Request, SessionListResponse};
use opencode_sync_core::backfill::{
    self, CONFIRM_DELAY_MS, Decision, Mode, RowNote, SendReason, SessionFilter, SessionSummary,
    SkipReason, SyncRecord,
};
use opencode_sync_core::config::{Credentials, Options, resolve_credentials};
use opencode_sync_core::map::{self, SessionContext};
use opencode_sync_core::paths;
use opencode_sync_core::retry::RetryPolicy;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::SyncArgs;
use crate::config_store::ConfigStore;
use crate::http::Http;
use crate::opencode_store::{Source, StoredSession};
use crate::outbox_dir::now_ms;
use crate::process_env::ProcessEnv;
use crate::sync_records::SyncRecords;
use crate::ui;
use crate::ui::outln;

/// Per-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Plain progress lines (when stderr is not a terminal) at most this often.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// OpenCode's own override of the database path.
const ENV_OPENCODE_DB: &str = "OPENCODE_DB";

/// What a backfill did, for `sync` to print and exit with.
#[derive(Debug)]
pub struct Report {
    /// 0 everything delivered, 1 something failed, 130 interrupted.
    pub code: u8,
    pub ok: bool,
    pub json: Value,
}

/// One problem, listed in the summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    reason: String,
}

impl Failure {
    fn line(&self) -> String {
        let what = match &self.message_id {
            Some(m) => format!("message {m}"),
            None => "session".to_owned(),
        };
        let title = self
            .title
            .as_deref()
            .map(|t| format!(" \"{}\"", shorten(t, 60)))
            .unwrap_or_default();
        format!("{}{title}: {what}: {}", self.session_id, self.reason)
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Why the whole run stopped early.
#[derive(Debug, Clone)]
enum Halt {
    AuthFailed(String),
    GaveUp(String),
    Redirected(String),
}

/// The answer to one request, after retries.
enum Sent {
    Delivered(Value),
    Rejected(String),
    /// The run is stopping (Ctrl-C, a refused key, a server that stays unreachable).
    Stopped,
}

/// What every sending thread shares.
struct Shared {
    http: Http,
    endpoint: Option<Endpoint>,
    options: Options,
    policy: RetryPolicy,
    retry_budget: Duration,
    dry_run: bool,
    interrupted: Arc<AtomicBool>,
    halted: AtomicBool,
    halt: Mutex<Option<Halt>>,
    /// A `Retry-After` pauses every thread, not only the one that got it.
    pause_until: Mutex<Option<Instant>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst) || self.halted.load(Ordering::SeqCst)
    }

    fn halt(&self, why: Halt) {
        if let Ok(mut slot) = self.halt.lock()
            && slot.is_none()
        {
            *slot = Some(why);
        }
        self.halted.store(true, Ordering::SeqCst);
    }

    fn halted_with(&self) -> Option<Halt> {
        self.halt.lock().ok().and_then(|h| h.clone())
    }

    /// Sleeps until `until` unless the run stops first; returns whether it slept it out.
    fn sleep_until(&self, until: Instant) -> bool {
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

    /// Sends one request, retrying transient failures for up to `retry_budget`.
    fn deliver(&self, request: &Request) -> Sent {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let pause = self.pause_until.lock().ok().and_then(|p| *p);
            if let Some(until) = pause
                && !self.sleep_until(until)
            {
                return Sent::Stopped;
            }
            if self.stopped() {
                return Sent::Stopped;
            }
            let (outcome, _) = self.http.exchange(request);
            match outcome {
                Outcome::Delivered(body) => return Sent::Delivered(body),
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
                    attempt += 1;
                    let delay = Duration::from_millis(self.policy.delay_ms(
                        attempt,
                        after_ms,
                        fastrand::f64(),
                    ));
                    // The last attempt is made when the budget runs out, not a backoff
                    // step before it; only a server asking for a longer wait than is
                    // left ends it early.
                    let left = self.retry_budget.saturating_sub(started.elapsed());
                    if left.is_zero() || (after_ms.is_some() && delay > left) {
                        self.halt(Halt::GaveUp(reason));
                        return Sent::Stopped;
                    }
                    let delay = delay.min(left);
                    let until = Instant::now() + delay;
                    if after_ms.is_some()
                        && let Ok(mut p) = self.pause_until.lock()
                    {
                        *p = Some(p.map_or(until, |old| old.max(until)));
                    }
                    if !self.sleep_until(until) {
                        return Sent::Stopped;
                    }
                }
            }
        }
    }
}

/// A session to send, with what the reader loaded.
struct Job {
    summary: SessionSummary,
    reason: SendReason,
    since: Option<f64>,
    prev: Option<SyncRecord>,
    session: StoredSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Delivered (or, in a dry run, planned).
    Done,
    Failed,
    /// Not finished because the run stopped.
    Stopped,
    /// Deleted from OpenCode's store between listing and reading.
    Gone,
}

/// A session upsert to send again once the dedup window has passed.
struct Confirm {
    at: Instant,
    request: Request,
}

struct SessionResult {
    id: String,
    title: Option<String>,
    project_path: Option<String>,
    reason: SendReason,
    status: Status,
    messages: usize,
    tools: usize,
    record: Option<SyncRecord>,
    confirm: Option<Confirm>,
}

enum Event {
    Message {
        tools: usize,
    },
    Failure(Failure),
    /// Rows of a session that were left out or read in part.
    Notes(Vec<RowNote>),
    Done(Box<SessionResult>),
}

/// Maps and sends one session: the session upsert, then its messages in order.
fn sync_session(shared: &Shared, job: Job, events: &mpsc::Sender<Event>) -> SessionResult {
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
    backfill::fill_missing_totals(&mut info, messages.iter().map(|m| &m.info));
    let ctx = SessionContext {
        last_model: backfill::last_model(messages.iter().map(|m| &m.info)),
        // The branch a past session ran on is not recorded anywhere; omitted, a branch
        // the server already has is kept.
        git_branch: None,
        fallback_directory: project_worktree,
    };
    let payload = map::session_payload(&info, &ctx, &shared.options);
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

/// Counts and rate, on a progress bar (terminal) or as plain lines.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    started: Instant,
    last_line: Instant,
    sessions: u64,
    total: u64,
    messages: u64,
    tools: u64,
}

impl Progress {
    fn new(total: usize, json: bool, dry_run: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (tty && !dry_run).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} sessions  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            plain: !tty && !json && !dry_run,
            started: now,
            last_line: now,
            sessions: 0,
            total: total as u64,
            messages: 0,
            tools: 0,
        }
    }

    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.messages as f64 / secs
        } else {
            0.0
        }
    }

    fn text(&self) -> String {
        format!(
            "{} messages, {} tool calls, {:.0} messages/s",
            self.messages,
            self.tools,
            self.rate()
        )
    }

    fn update(&mut self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.sessions);
            bar.set_message(self.text());
        } else if self.plain && self.last_line.elapsed() >= PLAIN_PROGRESS_EVERY {
            self.last_line = Instant::now();
            eprintln!(
                "sync: {}/{} sessions, {}",
                self.sessions,
                self.total,
                self.text()
            );
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn status(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None if self.plain => eprintln!("sync: {text}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Where to read: `--data-dir`, else `$OPENCODE_DB`, else OpenCode's data directory.
fn locate_source(args: &SyncArgs) -> Result<Source> {
    if let Some(dir) = &args.data_dir {
        return Source::locate(dir);
    }
    if let Some(db) = std::env::var_os(ENV_OPENCODE_DB).filter(|v| !v.is_empty()) {
        return Source::locate(&PathBuf::from(db));
    }
    Source::locate(&paths::opencode_data_dir(&ProcessEnv)?)
}

/// The directories `--project` names, as given (absolute) and with links resolved.
fn project_roots(args: &SyncArgs) -> Result<Vec<String>> {
    let mut roots = Vec::new();
    for p in &args.project {
        let absolute =
            std::path::absolute(p).with_context(|| format!("--project {}", p.display()))?;
        roots.push(absolute.to_string_lossy().into_owned());
        if let Ok(real) = absolute.canonicalize() {
            roots.push(real.to_string_lossy().into_owned());
        }
    }
    Ok(roots)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `interrupted` is set by Ctrl-C: the requests in flight finish, then the run stops.
pub fn run(args: &SyncArgs, interrupted: &Arc<AtomicBool>) -> Result<Report> {
    let started = Instant::now();
    let config = ConfigStore::locate()?.load()?;
    let options = config.as_ref().map(|c| c.options().0).unwrap_or_default();
    // A dry run works before `login` (nothing is sent; every session counts as new).
    let creds: Option<Credentials> = match resolve_credentials(config.as_ref(), &ProcessEnv) {
        Ok(c) => Some(c),
        Err(_) if args.dry_run && !args.all => None,
        Err(e) => return Err(e.into()),
    };
    let source = locate_source(args)?;
    let mut store = source.open()?;
    let listing = store.list()?;
    let listed = listing.sessions;
    let filter = SessionFilter {
        since_ms: args.since,
        projects: project_roots(args)?,
        ids: args.session.clone(),
    };
    let selected: Vec<SessionSummary> = listed
        .iter()
        .filter(|s| filter.matches(s))
        .cloned()
        .collect();

    let mut failures: Vec<Failure> = Vec::new();
    for id in &args.session {
        if !listed.iter().any(|s| s.id == *id) {
            failures.push(Failure {
                session_id: id.clone(),
                title: None,
                message_id: None,
                reason: format!("no such session in {}", source.path().display()),
            });
        }
    }

    let mut records = match &creds {
        Some(c) => {
            let dir = paths::state_dir(&ProcessEnv)?;
            let path = SyncRecords::path_for(&dir, &c.url, &c.key.masked());
            Some(
                SyncRecords::load(path.clone(), &c.url)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
        }
        None => None,
    };
    if let Some(r) = records.as_ref().filter(|r| r.unreadable_lines() > 0) {
        ui::warn(&format!(
            "skipped {} in {} (their sessions are sent again; the file is rewritten without them)",
            plural(r.unreadable_lines(), "unreadable line", "unreadable lines"),
            r.path().display()
        ));
    }

    let jobs = usize::from(args.jobs);
    let retry_budget = Duration::from_secs(args.timeout);
    let shared = Shared {
        http: Http::for_bulk(REQUEST_TIMEOUT.min(retry_budget), jobs + 1),
        endpoint: creds
            .as_ref()
            .map(|c| Endpoint::new(c.url.clone(), c.key.clone())),
        options,
        policy: RetryPolicy::default(),
        retry_budget,
        dry_run: args.dry_run,
        interrupted: Arc::clone(interrupted),
        halted: AtomicBool::new(false),
        halt: Mutex::new(None),
        pause_until: Mutex::new(None),
    };

    // --all: what the server already has.
    let on_server: Option<HashSet<String>> = if args.all {
        let endpoint = shared
            .endpoint
            .as_ref()
            .context("--all needs credentials: run `opencode-sync login`")?;
        match shared.deliver(&endpoint.session_list()) {
            Sent::Delivered(body) => Some(
                serde_json::from_value::<SessionListResponse>(body)
                    .context("the server's session list is not {\"sessionIds\": [...]}")?
                    .session_ids
                    .into_iter()
                    .collect(),
            ),
            Sent::Rejected(reason) => bail!("the server refused to list its sessions: {reason}"),
            Sent::Stopped => None,
        }
    } else {
        None
    };

    let mode = if args.force {
        Mode::Force
    } else if args.all {
        Mode::Missing
    } else {
        Mode::Changed
    };
    // Rows of no session are named unless the run is about named sessions only.
    let mut notes: Vec<RowNote> = if args.session.is_empty() {
        listing.notes
    } else {
        Vec::new()
    };
    let mut plan = Vec::new();
    let (mut unchanged, mut found_on_server) = (0usize, 0usize);
    let listing_ok = !args.all || on_server.is_some();
    if listing_ok {
        for summary in &selected {
            let prev = records.as_ref().and_then(|r| r.get(&summary.id)).cloned();
            let on = on_server.as_ref().map(|set| set.contains(&summary.id));
            match backfill::decide(mode, prev.as_ref(), summary, on) {
                Decision::Send {
                    reason,
                    messages_since,
                } => plan.push((summary.clone(), reason, messages_since, prev)),
                Decision::Skip(SkipReason::Unchanged) => {
                    unchanged += 1;
                    // Its odd rows are still there: named again from the record.
                    notes.extend(prev.map(|p| p.notes).unwrap_or_default());
                }
                Decision::Skip(SkipReason::OnServer) => {
                    found_on_server += 1;
                    if !args.dry_run
                        && let Some(r) = records.as_mut()
                    {
                        r.put(backfill::record_on_server(
                            &summary.id,
                            summary.time_updated,
                            None,
                        ))
                        .with_context(|| format!("writing {}", r.path().display()))?;
                    }
                }
            }
        }
    }
    let planned = plan.len();

    let mut progress = Progress::new(planned, args.json, args.dry_run);
    let mut results: Vec<SessionResult> = Vec::new();
    let mut confirms: Vec<(Confirm, Option<SyncRecord>)> = Vec::new();
    let mut record_error: Option<String> = None;
    let mut announced_stop = false;

    if planned > 0 {
        let (event_tx, event_rx) = mpsc::channel::<Event>();
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(jobs);
        let job_rx = Arc::new(Mutex::new(job_rx));
        thread::scope(|scope| {
            // The reader: loads sessions in plan order, never more than `jobs` ahead.
            let reader_events = event_tx.clone();
            let shared_ref = &shared;
            scope.spawn(move || {
                for (summary, reason, since, prev) in plan {
                    if shared_ref.stopped() {
                        break;
                    }
                    let session = match store.load(&summary.id) {
                        Ok(Some(s)) => s,
                        Ok(None) => {
                            // Deleted in OpenCode since it was listed.
                            let _ = reader_events.send(Event::Done(Box::new(SessionResult {
                                id: summary.id.clone(),
                                title: summary.title.clone(),
                                project_path: summary.directory.clone(),
                                reason,
                                status: Status::Gone,
                                messages: 0,
                                tools: 0,
                                record: None,
                                confirm: None,
                            })));
                            continue;
                        }
                        Err(e) => {
                            let _ = reader_events.send(Event::Failure(Failure {
                                session_id: summary.id.clone(),
                                title: summary.title.clone(),
                                message_id: None,
                                reason: format!("{e:#}"),
                            }));
                            let _ = reader_events.send(Event::Done(Box::new(SessionResult {
                                id: summary.id.clone(),
                                title: summary.title.clone(),
                                project_path: summary.directory.clone(),
                                reason,
                                status: Status::Failed,
                                messages: 0,
                                tools: 0,
                                record: None,
                                confirm: None,
                            })));
                            continue;
                        }
                    };
                    let job = Job {
                        summary,
                        reason,
                        since,
                        prev,
                        session,
                    };
                    if job_tx.send(job).is_err() {
                        break; // every sender stopped
                    }
                }
            });
            for _ in 0..jobs {
                let rx = Arc::clone(&job_rx);
                let events = event_tx.clone();
                scope.spawn(move || {
                    loop {
                        if shared_ref.stopped() {
                            break;
                        }
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => break,
                        };
                        let Ok(job) = job else { break };
                        let result = sync_session(shared_ref, job, &events);
                        let _ = events.send(Event::Done(Box::new(result)));
                    }
                });
            }
            drop(job_rx);
            drop(event_tx);

            loop {
                let event = match event_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(event) => Some(event),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                if interrupted.load(Ordering::SeqCst) && !announced_stop {
                    announced_stop = true;
                    progress.println(
                        "Interrupted: finishing the requests in flight and saving (Ctrl-C again to quit now)...",
                    );
                }
                match event {
                    Some(Event::Message { tools }) => {
                        progress.messages += 1;
                        progress.tools += tools as u64;
                    }
                    Some(Event::Failure(f)) => {
                        progress.println(&format!("failed: {}", f.line()));
                        failures.push(f);
                    }
                    Some(Event::Notes(n)) => notes.extend(n),
                    Some(Event::Done(mut result)) => {
                        progress.sessions += 1;
                        if result.status == Status::Done && !args.dry_run {
                            let record = result.record.take();
                            match result.confirm.take() {
                                Some(confirm) => confirms.push((confirm, record)),
                                None => {
                                    if let (Some(records), Some(record)) =
                                        (records.as_mut(), record)
                                        && let Err(e) = records.put(record)
                                    {
                                        record_error.get_or_insert(format!(
                                            "could not write {}: {e}",
                                            records.path().display()
                                        ));
                                    }
                                }
                            }
                        }
                        results.push(*result);
                    }
                    None => {}
                }
                progress.update();
            }
        });
    }

    // Session upserts the server may have skipped (dedup window): send them again once
    // the window has passed, then record those sessions.
    if !confirms.is_empty() && !shared.stopped() {
        confirms.sort_by_key(|(c, _)| c.at);
        let wait = confirms
            .last()
            .map(|(c, _)| c.at.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        progress.status(&format!(
            "waiting {:.0} s to confirm {} (the server's 10 s session dedup window)",
            wait.as_secs_f64().ceil(),
            plural(confirms.len(), "session's totals", "sessions' totals")
        ));
        for (confirm, record) in confirms.drain(..) {
            if !shared.sleep_until(confirm.at) {
                break;
            }
            match shared.deliver(&confirm.request) {
                Sent::Delivered(_) => {
                    if let (Some(records), Some(record)) = (records.as_mut(), record)
                        && let Err(e) = records.put(record)
                    {
                        record_error.get_or_insert(format!(
                            "could not write {}: {e}",
                            records.path().display()
                        ));
                    }
                }
                Sent::Rejected(reason) => failures.push(Failure {
                    session_id: record.map(|r| r.id).unwrap_or_default(),
                    title: None,
                    message_id: None,
                    reason,
                }),
                Sent::Stopped => break,
            }
        }
    }
    progress.finish();
    if let Some(records) = records.as_mut()
        && let Err(e) = records.finish()
    {
        record_error.get_or_insert(format!("could not write {}: {e}", records.path().display()));
    }

    // ---- summary --------------------------------------------------------------------
    let interrupted = interrupted.load(Ordering::SeqCst);
    let halt = shared.halted_with();
    let done: Vec<&SessionResult> = results
        .iter()
        .filter(|r| r.status == Status::Done)
        .collect();
    let sent_sessions = if args.dry_run { 0 } else { done.len() };
    let failed_sessions = results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count()
        + failures
            .iter()
            .filter(|f| f.reason.starts_with("no such session"))
            .count();
    let gone = results.iter().filter(|r| r.status == Status::Gone).count();
    let messages: usize = done.iter().map(|r| r.messages).sum();
    // Sessions finish in any order: the rows of no session first, then by session.
    notes.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let skipped_rows = notes.iter().filter(|n| n.skipped).count();
    let tools: usize = done.iter().map(|r| r.tools).sum();
    let failed_messages = failures.iter().filter(|f| f.message_id.is_some()).count();
    let remaining = planned.saturating_sub(
        results
            .iter()
            .filter(|r| r.status != Status::Stopped)
            .count(),
    );
    let elapsed = started.elapsed();
    let rate = if elapsed.as_secs_f64() > 0.0 && !args.dry_run {
        messages as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let host = creds.as_ref().map(|c| c.url.host().to_owned());
    let server = creds.as_ref().map(|c| c.url.to_string());
    let stop_text = match (&halt, interrupted) {
        (Some(Halt::AuthFailed(reason)), _) => Some(format!(
            "API key rejected by {}: {reason}. Run `opencode-sync login` with a new key, then `opencode-sync sync` again.",
            host.as_deref().unwrap_or("the server")
        )),
        (Some(Halt::GaveUp(reason)), _) => Some(format!(
            "could not deliver to {} for {} s ({reason}); stopped. Run `opencode-sync sync` again later: it resumes.",
            server.as_deref().unwrap_or("the server"),
            args.timeout
        )),
        (Some(Halt::Redirected(reason)), _) => Some(format!(
            "{} answered with a {reason}; stopped. Run `opencode-sync sync` again once the URL is right: it resumes.",
            server.as_deref().unwrap_or("the server")
        )),
        (None, true) => Some(format!(
            "interrupted: {} still to send. Run `opencode-sync sync` again to resume.",
            plural(remaining, "session", "sessions")
        )),
        (None, false) => None,
    };
    let ok = failures.is_empty()
        && failed_sessions == 0
        && halt.is_none()
        && !interrupted
        && record_error.is_none();
    let code = if interrupted && halt.is_none() {
        130
    } else if ok {
        0
    } else {
        1
    };

    if !args.json {
        let from = source.path().display();
        let to = server.as_deref().unwrap_or("(not logged in)");
        if args.dry_run {
            outln!(
                "Would send {} ({}, {}) from {from} to {to}:",
                plural(done.len(), "session", "sessions"),
                plural(messages, "message", "messages"),
                plural(tools, "tool call", "tool calls"),
            );
            for r in &done {
                outln!(
                    "  {}  {:<12} {:>5} msgs {:>5} tools  {}  {}",
                    r.id,
                    reason_text(r.reason),
                    r.messages,
                    r.tools,
                    r.title
                        .as_deref()
                        .map_or_else(|| "(untitled)".to_owned(), |t| shorten(t, 50)),
                    r.project_path.as_deref().unwrap_or("")
                );
            }
        } else if planned == 0 && failures.is_empty() && halt.is_none() {
            outln!(
                "Nothing to send: {} in {from} {}.",
                plural(selected.len(), "session", "sessions"),
                if selected.len() == 1 {
                    "is up to date"
                } else {
                    "are up to date"
                }
            );
        } else if planned > 0 {
            outln!(
                "Sent {} ({}, {}) from {from} to {to} in {:.1} s ({rate:.0} messages/s).",
                plural(sent_sessions, "session", "sessions"),
                plural(messages, "message", "messages"),
                plural(tools, "tool call", "tool calls"),
                elapsed.as_secs_f64(),
            );
        }
        if unchanged + found_on_server + gone > 0 {
            let mut parts = Vec::new();
            if unchanged > 0 {
                parts.push(format!("{unchanged} unchanged since the last sync"));
            }
            if found_on_server > 0 {
                parts.push(format!("{found_on_server} already on the server"));
            }
            if gone > 0 {
                parts.push(format!("{gone} deleted in OpenCode meanwhile"));
            }
            outln!(
                "Skipped {}: {}.",
                plural(unchanged + found_on_server + gone, "session", "sessions"),
                parts.join(", ")
            );
        }
        if !failures.is_empty() {
            outln!(
                "Failed: {}, {}:",
                plural(failed_sessions, "session", "sessions"),
                plural(failed_messages, "message", "messages")
            );
            for f in &failures {
                outln!("  {}", f.line());
            }
        }
        if !notes.is_empty() {
            outln!(
                "Not read whole: {} of OpenCode's store ({skipped_rows} skipped, not sent; the others sent without what is named):",
                plural(notes.len(), "row", "rows")
            );
            for n in &notes {
                outln!("  {}", n.line());
            }
        }
        if let Some(e) = &record_error {
            ui::warn(e);
        }
        if let Some(text) = &stop_text {
            if halt.is_some() {
                eprintln!("error: {text}");
            } else {
                outln!("{}{}", text[..1].to_uppercase(), &text[1..]);
            }
        }
        if args.dry_run {
            outln!("Dry run: nothing was sent.");
        }
    }

    let plan_json: Vec<Value> = if args.dry_run {
        done.iter()
            .map(|r| {
                json!({
                    "id": r.id, "title": r.title, "projectPath": r.project_path,
                    "reason": r.reason, "messages": r.messages, "toolCalls": r.tools,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let json = json!({
        "ok": ok,
        "dryRun": args.dry_run,
        "interrupted": interrupted,
        "source": {"kind": source.kind(), "path": source.path()},
        "server": server,
        "sessions": {
            "found": listed.len(),
            "selected": selected.len(),
            "toSend": planned,
            "sent": sent_sessions,
            "failed": failed_sessions,
            "remaining": remaining,
            "skipped": {"unchanged": unchanged, "onServer": found_on_server, "deleted": gone},
        },
        "messages": {"sent": if args.dry_run { 0 } else { messages }, "failed": failed_messages},
        "toolCalls": if args.dry_run { 0 } else { tools },
        "elapsedMs": elapsed.as_millis() as u64,
        "messagesPerSecond": (rate * 10.0).round() / 10.0,
        "failures": failures,
        "rows": {"skipped": skipped_rows, "partlyRead": notes.len() - skipped_rows, "notes": notes},
        "stopped": stop_text,
        "plan": plan_json,
    });
    Ok(Report { code, ok, json })
}

fn reason_text(reason: SendReason) -> &'static str {
    match reason {
        SendReason::New => "new",
        SendReason::Changed => "changed",
        SendReason::NotOnServer => "not-on-server",
        SendReason::Forced => "forced",
    }
}
