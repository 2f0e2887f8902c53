//! `opencode-sync-wasm`: the layer the OpenCode plugin runs. It holds the core
//! [`Engine`] and the host's capabilities, and only moves bytes: hook inputs go into the
//! engine, every upsert it returns is written to the durable outbox and queued (a newer
//! upsert replaces a queued one with the same key), and up to [`MAX_SENDERS`] senders
//! deliver them through the host's `fetch`, one request per session at a time,
//! classifying each answer with the core's rules. Records left by an
//! earlier process (offline, killed) are picked up at start. Every decision (what to
//! send, what an answer means, how long to back off) is the core's.
//!
//! The JavaScript side is `npm/index.js`, which builds the host object, defers every
//! hook call off the hook, and catches anything thrown here. A panic poisons the module:
//! every instance turns inactive and stops calling into the engine.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Function, Promise, Reflect};
use opencode_sync_core::api::{Endpoint, Outcome};
use opencode_sync_core::engine::{Engine, Hook, Upsert};
use opencode_sync_core::retry::RetryPolicy;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

pub mod disk;
mod host;
pub mod queue;
pub mod settings;

use disk::DiskOutbox;
pub use host::Host;
use opencode_sync_core::outbox::{Kind, Prepared, SOFT_LIMIT_RECORDS};
use queue::SendQueue;

/// How long `flush()` waits by default, and how long `dispose()` waits.
const DEFAULT_FLUSH_MS: f64 = 2000.0;
/// How often, at most, drafts of the messages in progress are written (what a SIGKILL
/// can lose of a message being written), and how long a turn's totals wait for
/// OpenCode's update after `session.idle` (see [`Engine::release_held`]).
const TICK_MS: u64 = 500;
/// Requests in flight at once, each for another session (one at a time per session keeps
/// a session's records in order, its session record before its messages): one sender
/// alone waits a round trip per record and falls behind a busy OpenCode, and requests
/// that share the event loop's turns cost the runtime less CPU each.
const MAX_SENDERS: usize = 4;
/// How long the sender waits for another process to finish sending a session record
/// before going on with that session's messages (a request times out after 30 s).
const OTHER_SENDER_WAIT_MS: f64 = 35_000.0;

static POISONED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The writer tags of this process's instances: records and claims under another tag
    /// with this process's pid belong to a dead process whose pid was reused.
    static OWN_WRITERS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn poisoned() -> bool {
    POISONED.load(Ordering::Relaxed)
}

/// Sets the panic hook once: it marks the module poisoned (the wasm instance aborts
/// mid-call, so its state can no longer be trusted) and prints the panic.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            POISONED.store(true, Ordering::Relaxed);
            console_error_panic_hook::hook(info);
        }));
    });
}

/// The plugin for one OpenCode instance.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SyncPlugin {
    inner: Option<Rc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    host: Host,
    /// The plugin tuple's options, kept to re-read the credentials after a refused key.
    tuple: Map<String, Value>,
    policy: RetryPolicy,
    engine: RefCell<Engine>,
    state: RefCell<State>,
    /// The durable outbox; `None` when the state directory is unknown (no HOME).
    disk: RefCell<Option<DiskOutbox>>,
}

#[derive(Debug)]
struct State {
    endpoint: Endpoint,
    queue: SendQueue,
    /// Sender tasks running (sending, or waiting out a backoff), at most [`MAX_SENDERS`].
    senders: usize,
    /// Consecutive failed attempts, whichever sender made them: the backoff's exponent.
    attempt: u32,
    /// No request starts before this time (ms since the epoch): a failure's backoff
    /// holds every sender, not only the one that saw it.
    paused_until: f64,
    /// The server refused the key: nothing is sent until the credentials change.
    auth_failed: bool,
    /// The user was told about the refused key.
    toasted: bool,
    /// The user was told the server redirects.
    redirect_told: bool,
    /// `flush()` promises waiting for the queue to settle, with their timeout timers.
    waiters: Vec<(Function, Option<JsValue>)>,
    /// The records being sent, one per session.
    in_flight: Vec<InFlight>,
    /// `dispose()` gave up waiting: the instance sends nothing more, and what is left
    /// stays in the outbox for the next start or `opencode-sync sync --flush`.
    closed: bool,
    /// A tick (drafts, held totals) is scheduled.
    ticking: bool,
}

impl State {
    /// Nothing more will be delivered without new input or new credentials.
    fn settled(&self) -> bool {
        self.senders == 0 && (self.queue.is_empty() || self.auth_failed)
    }

    /// Whether a record of `session` is being sent.
    fn busy(&self, session: &str) -> bool {
        sending(&self.in_flight, session)
    }

    /// The attempt on `session`'s record is over.
    fn land(&mut self, session: &str) {
        if let Some(i) = self.in_flight.iter().position(|f| f.session == session) {
            self.in_flight.swap_remove(i);
        }
    }
}

/// Whether one of the records being sent is `session`'s.
fn sending(in_flight: &[InFlight], session: &str) -> bool {
    in_flight.iter().any(|f| f.session == session)
}

/// A record being sent.
#[derive(Debug)]
struct InFlight {
    session: String,
    /// Its claim and queue names in the outbox, once claimed.
    claim: Option<(String, String)>,
}

#[wasm_bindgen]
impl SyncPlugin {
    /// `host`: the shim's host object. `input`: the plugin input without `client` and
    /// `$`. `options`: the plugin tuple's object, or `null`. Never throws: without usable
    /// credentials (or with `enabled: false`) the plugin is inactive and says why once
    /// through `host.log`.
    #[wasm_bindgen(constructor)]
    pub fn new(host: Host, input: JsValue, options: JsValue) -> SyncPlugin {
        install_panic_hook();
        let input = json_text(&input).unwrap_or_else(|| "null".to_owned());
        let tuple = match to_json(&options) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let settings = match settings::load(&host, &host, &tuple) {
            Ok(settings) => settings,
            Err(inactive) => {
                host.log(inactive.level, &inactive.message);
                return SyncPlugin { inner: None };
            }
        };
        for note in &settings.notes {
            host.log("warn", note);
        }
        let mut engine = Engine::from_json(&input, settings.options);
        let branch = engine
            .worktree()
            .and_then(|worktree| settings::git_branch(&host, worktree));
        engine.set_git_branch(branch);
        host.log(
            "info",
            &format!("syncing sessions to {}", settings.endpoint.base.host()),
        );
        let disk = opencode_sync_core::paths::outbox_dir(&host)
            .ok()
            .map(|dir| DiskOutbox::new(dir.display().to_string(), writer_tag(&host)));
        if disk.is_none() {
            host.log(
                "warn",
                "no state directory (HOME unset): queued upserts are kept in memory only",
            );
        }
        let inner = Rc::new(Inner {
            disk: RefCell::new(disk),
            host,
            tuple,
            policy: RetryPolicy::default(),
            engine: RefCell::new(engine),
            state: RefCell::new(State {
                endpoint: settings.endpoint,
                queue: SendQueue::default(),
                senders: 0,
                attempt: 0,
                paused_until: 0.0,
                auth_failed: false,
                toasted: false,
                redirect_told: false,
                waiters: Vec::new(),
                in_flight: Vec::new(),
                closed: false,
                ticking: false,
            }),
        });
        // What earlier processes could not deliver goes out too, off the constructor.
        wasm_bindgen_futures::spawn_local(Rc::clone(&inner).load_leftovers());
        SyncPlugin { inner: Some(inner) }
    }

    /// False when there are no usable credentials, sync is disabled, or a panic
    /// poisoned the module: the shim then registers no hooks.
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> bool {
        self.live().is_some()
    }

    /// Feeds one hook call (`"event"`, `"chat.message"`, `"tool.execute.before"`,
    /// `"tool.execute.after"`; the two-argument hooks as `{i, o}`) and starts sending
    /// whatever the engine decided is worth sending.
    ///
    /// Calls the engine cannot act on (see [`Hook::wants`]) are not converted at all.
    /// The rest cross as JSON text: `JSON.stringify` plus `serde_json` costs less than
    /// half of walking the object field by field from wasm (`serde-wasm-bindgen`).
    pub fn handle(&self, hook: &str, input: JsValue) {
        let Some(inner) = self.live() else { return };
        let Some(hook) = Hook::from_name(hook) else {
            return;
        };
        let event_type = match hook {
            Hook::Event => Reflect::get(&input, &JsValue::from_str("type"))
                .ok()
                .and_then(|t| t.as_string()),
            _ => None,
        };
        if !hook.wants(event_type.as_deref()) {
            return;
        }
        let Some(json) = js_sys::JSON::stringify(&input)
            .ok()
            .and_then(|text| text.as_string())
        else {
            return;
        };
        let (upserts, tick_due) = {
            let mut engine = inner.engine.borrow_mut();
            let upserts = engine.handle_json(hook, &json);
            let drafts_due = engine.drafts_due() && inner.disk.borrow().is_some();
            (upserts, drafts_due || engine.holds())
        };
        Inner::enqueue(inner, upserts);
        if tick_due {
            Inner::schedule_tick(inner);
        }
    }

    /// Resolves once everything queued is delivered (or dropped, or waiting for a new
    /// key), or after `timeout_ms` (default 2000), whichever comes first.
    pub fn flush(&self, timeout_ms: Option<f64>) -> Promise {
        match self.live() {
            Some(inner) => {
                Inner::settled_promise(inner, timeout_ms.unwrap_or(DEFAULT_FLUSH_MS), false)
            }
            None => Promise::resolve(&JsValue::UNDEFINED),
        }
    }

    /// OpenCode is disposing the plugin: queues the engine's final upserts (session
    /// totals) and waits up to 2 s for delivery. If that is not enough, the instance
    /// closes: a record in flight goes back to the outbox under its queue name (the
    /// process is about to exit; a claim left behind would hold the record, and the
    /// rest of its session, back from every other sender until it went stale), and
    /// nothing more is sent. What is left waits in the outbox.
    pub fn dispose(&self) -> Promise {
        let Some(inner) = self.live() else {
            return Promise::resolve(&JsValue::UNDEFINED);
        };
        let upserts = inner.engine.borrow_mut().flush();
        Inner::enqueue(inner, upserts);
        // Nothing more is written after this but the final upserts: spares would be left.
        if let Some(disk) = inner.disk.borrow_mut().as_mut() {
            disk.retire_spares(&inner.host);
        }
        Inner::settled_promise(inner, DEFAULT_FLUSH_MS, true)
    }
}

/// A JS value as JSON text, if it is JSON data (a cycle or a `BigInt` is not: `None`).
fn json_text(value: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(value).ok()?.as_string()
}

/// A JS value as JSON, if it is JSON data.
fn to_json(value: &JsValue) -> Option<Value> {
    serde_json::from_str(&json_text(value)?).ok()
}

impl SyncPlugin {
    fn live(&self) -> Option<&Rc<Inner>> {
        if poisoned() {
            return None;
        }
        self.inner.as_ref()
    }
}

/// A tag naming this instance's outbox records and claims, with the process id (see
/// [`opencode_sync_core::outbox::writer_tag`]).
fn writer_tag(host: &Host) -> String {
    let tag = opencode_sync_core::outbox::writer_tag(
        (host.random() * f64::from(u32::MAX)) as u32,
        host.pid(),
    );
    OWN_WRITERS.with(|own| own.borrow_mut().push(tag.clone()));
    tag
}

impl Inner {
    /// Persists each upsert, then queues it. A queued upsert it replaces loses its file.
    fn enqueue(this: &Rc<Self>, upserts: Vec<Upsert>) {
        if upserts.is_empty() {
            return;
        }
        {
            let now = js_sys::Date::now() as i64;
            let mut disk = this.disk.borrow_mut();
            let mut st = this.state.borrow_mut();
            for upsert in upserts {
                // Serialized once: the record on disk and the request carry the same text.
                let upsert = Prepared::new(&upsert);
                let file = disk
                    .as_mut()
                    .and_then(|d| d.persist(&this.host, &upsert, now));
                if let (Some(old), Some(d)) = (st.queue.push(upsert, file), disk.as_mut()) {
                    d.discard(&this.host, &old);
                }
                if st.queue.len() == SOFT_LIMIT_RECORDS {
                    this.host.log(
                        "warn",
                        &format!("{SOFT_LIMIT_RECORDS} upserts are waiting to be sent; they are kept on disk, none is dropped"),
                    );
                }
            }
        }
        Self::kick(this);
    }

    /// In [`TICK_MS`], off the hook: writes drafts of the messages in progress, and
    /// queues the totals of turns that ended without OpenCode's final update since.
    fn schedule_tick(this: &Rc<Self>) {
        {
            let mut st = this.state.borrow_mut();
            if st.ticking || st.closed {
                return;
            }
            st.ticking = true;
        }
        let inner = Rc::clone(this);
        wasm_bindgen_futures::spawn_local(async move {
            host::sleep(TICK_MS).await;
            inner.state.borrow_mut().ticking = false;
            if poisoned() || inner.state.borrow().closed {
                return;
            }
            let (drafts, held) = {
                let mut engine = inner.engine.borrow_mut();
                let drafts = if inner.disk.borrow().is_some() {
                    engine.drafts()
                } else {
                    Vec::new()
                };
                (drafts, engine.release_held())
            };
            if let Some(disk) = inner.disk.borrow_mut().as_mut() {
                let now = js_sys::Date::now() as i64;
                for draft in &drafts {
                    disk.persist_draft(&inner.host, &Prepared::new(draft), now);
                }
            }
            Inner::enqueue(&inner, held);
        });
    }

    /// Queues what earlier processes left in the outbox, ahead of this process's own.
    async fn load_leftovers(self: Rc<Self>) {
        let scan = {
            let disk = self.disk.borrow();
            let Some(disk) = disk.as_ref() else { return };
            let host = &self.host;
            let pid_alive = |pid: u32| host.pid_alive(pid);
            OWN_WRITERS.with(|own| {
                let own = own.borrow();
                let liveness = opencode_sync_core::outbox::PidLiveness {
                    own_pid: host.pid(),
                    own_tags: &own,
                    pid_alive: &pid_alive,
                };
                disk.scan(host, js_sys::Date::now() as i64, &liveness)
            })
        };
        if scan.corrupt > 0 {
            self.host.log(
                "warn",
                &format!(
                    "{} corrupt outbox record(s) were set aside (outbox/quarantine)",
                    scan.corrupt
                ),
            );
        }
        if scan.total > SOFT_LIMIT_RECORDS {
            self.host.log(
                "warn",
                &format!("{} records are waiting in the outbox; none is dropped, run `opencode-sync sync --flush`", scan.total),
            );
        }
        if scan.leftovers.is_empty() {
            return;
        }
        self.host.log(
            "info",
            &format!(
                "sending {} record(s) left by an earlier OpenCode",
                scan.leftovers.len()
            ),
        );
        let superseded = self.state.borrow_mut().queue.push_leftovers(
            scan.leftovers
                .into_iter()
                .map(|l| (l.upsert, l.file))
                .collect(),
        );
        if let Some(disk) = self.disk.borrow_mut().as_mut() {
            for file in superseded {
                disk.discard(&self.host, &file);
            }
        }
        Self::kick(&self);
    }

    /// Starts one more sender when a queued record could go now (its session is not
    /// being sent) and fewer than [`MAX_SENDERS`] run, unless a refused key that the
    /// credentials file has not replaced yet stops them. A running sender takes the next
    /// record as soon as it is done with one, so one more is all a new record needs.
    fn kick(this: &Rc<Self>) {
        {
            let st = this.state.borrow();
            if st.senders >= MAX_SENDERS || st.closed || !st.queue.any(|session| !st.busy(session))
            {
                return;
            }
        }
        if this.state.borrow().auth_failed && !this.reload_credentials() {
            return;
        }
        this.state.borrow_mut().senders += 1;
        wasm_bindgen_futures::spawn_local(Rc::clone(this).run());
    }

    /// After a refused key: picks up credentials that changed since (`opencode-sync
    /// login` while OpenCode runs). Returns whether sending may resume.
    fn reload_credentials(&self) -> bool {
        let Ok(settings) = settings::load(&self.host, &self.host, &self.tuple) else {
            return false;
        };
        let mut st = self.state.borrow_mut();
        let same = settings.endpoint.base.as_str() == st.endpoint.base.as_str()
            && settings.endpoint.key == st.endpoint.key;
        if same {
            return false;
        }
        self.host.log(
            "info",
            &format!(
                "new credentials found; syncing to {} again",
                settings.endpoint.base.host()
            ),
        );
        st.endpoint = settings.endpoint;
        st.auth_failed = false;
        st.toasted = false;
        st.redirect_told = false;
        true
    }

    /// One sender: takes the first queued record whose session no other sender is
    /// sending, sends it, and goes on until no record can go (the queue is empty, or
    /// holds only sessions being sent) or the key is refused.
    async fn run(self: Rc<Self>) {
        loop {
            if poisoned() {
                return;
            }
            let pause = self.state.borrow().paused_until - js_sys::Date::now();
            if pause > 0.0 {
                host::sleep(pause.ceil() as u64).await;
                continue;
            }
            let next = {
                let mut st = self.state.borrow_mut();
                if st.auth_failed || st.closed {
                    None
                } else {
                    let State {
                        queue, in_flight, ..
                    } = &mut *st;
                    let item = queue.pop_where(|session| !sending(in_flight, session));
                    item.map(|item| {
                        st.in_flight.push(InFlight {
                            session: item.upsert.session_id.clone(),
                            claim: None,
                        });
                        (item.upsert.request(&st.endpoint), item)
                    })
                }
            };
            let Some((request, item)) = next else {
                self.stop_sending();
                return;
            };
            let session = item.upsert.session_id.clone();
            // Claim the record so no other process sends it at the same time. Gone means
            // another process (or `opencode-sync sync --flush`) already has it.
            let claimed = match (&item.file, self.disk.borrow().as_ref()) {
                (Some(file), Some(disk)) => disk
                    .claim(&self.host, file, js_sys::Date::now() as i64)
                    .ok_or(file.clone())
                    .map(Some),
                _ => Ok(None),
            };
            let claim = match claimed {
                Ok(claim) => claim,
                Err(file) => {
                    // A session record another sender holds must reach the server
                    // before this session's messages, which would create a bare
                    // session otherwise (`createdAt` is kept only on insert). The
                    // session stays marked as being sent meanwhile.
                    if item.upsert.kind == Kind::Session {
                        self.wait_for_other_sender(&file).await;
                    }
                    self.state.borrow_mut().land(&session);
                    continue;
                }
            };
            if let (Some(claim), Some(file)) = (&claim, &item.file) {
                let mut st = self.state.borrow_mut();
                if let Some(flight) = st.in_flight.iter_mut().find(|f| f.session == session) {
                    flight.claim = Some((claim.clone(), file.clone()));
                }
            }
            let outcome = host::send(&request).await;
            if poisoned() {
                return;
            }
            let closed = {
                let mut st = self.state.borrow_mut();
                st.land(&session);
                st.closed
            };
            if closed {
                // `dispose` gave the record back to the outbox meanwhile: leave it there
                // (delivered or not, a later sender sends it again; upserts are
                // idempotent).
                self.stop_sending();
                return;
            }
            match outcome {
                Outcome::Delivered(_) => {
                    self.state.borrow_mut().attempt = 0;
                    self.end_claim(claim.as_deref());
                }
                Outcome::Retry { after_ms, reason } => {
                    let key = item.key.clone();
                    self.put_back(item, claim.as_deref());
                    self.back_off(&key, after_ms, &reason);
                }
                Outcome::AuthFailed(reason) => {
                    self.state.borrow_mut().attempt = 0;
                    self.put_back(item, claim.as_deref());
                    self.refused_key(&reason);
                }
                Outcome::Redirected(reason) => {
                    let key = item.key.clone();
                    self.put_back(item, claim.as_deref());
                    self.misdirected(&key, &reason);
                }
                Outcome::Rejected(reason) => {
                    self.state.borrow_mut().attempt = 0;
                    if let (Some(claim), Some(file), Some(disk)) =
                        (&claim, &item.file, self.disk.borrow().as_ref())
                    {
                        disk.quarantine(
                            &self.host,
                            claim,
                            file,
                            &item.upsert,
                            &reason,
                            js_sys::Date::now() as i64,
                        );
                    }
                    self.host.log(
                        "warn",
                        &format!("OpenSync refused {}, dropped it: {reason}", item.key),
                    );
                }
            }
        }
    }

    /// A failed attempt pauses every sender. Failures of requests that were under way
    /// when another sender's failure started the pause count once, not once each, but
    /// a longer `Retry-After` among them still extends the pause.
    fn back_off(&self, key: &str, after_ms: Option<u64>, reason: &str) {
        let now = js_sys::Date::now();
        let (attempt, counted) = {
            let mut st = self.state.borrow_mut();
            let counted = st.paused_until <= now;
            if counted {
                st.attempt = st.attempt.saturating_add(1);
            }
            let delay = self
                .policy
                .delay_ms(st.attempt, after_ms, self.host.random());
            st.paused_until = st.paused_until.max(now + delay as f64);
            (st.attempt, counted)
        };
        if counted && (attempt == 1 || attempt.is_multiple_of(10)) {
            self.host.log(
                "warn",
                &format!("could not deliver {key} ({reason}); retrying (attempt {attempt})"),
            );
        }
    }

    /// Waits (bounded) until no other sender holds a claim on `file`.
    async fn wait_for_other_sender(&self, file: &str) {
        let give_up = js_sys::Date::now() + OTHER_SENDER_WAIT_MS;
        loop {
            let busy = self
                .disk
                .borrow()
                .as_ref()
                .is_some_and(|d| d.claimed_elsewhere(&self.host, file));
            if !busy || poisoned() || self.state.borrow().closed || js_sys::Date::now() >= give_up {
                return;
            }
            host::sleep(100).await;
        }
    }

    /// Delivered (or superseded): the claimed record is done.
    fn end_claim(&self, claim: Option<&str>) {
        if let (Some(claim), Some(disk)) = (claim, self.disk.borrow_mut().as_mut()) {
            disk.delivered(&self.host, claim);
        }
    }

    /// Not delivered: back to the front of the queue and under its queue name on disk,
    /// unless a newer upsert of the same key replaced it meanwhile.
    fn put_back(&self, item: queue::Queued, claim: Option<&str>) {
        let file = item.file.clone();
        let requeued = self.state.borrow_mut().queue.requeue(item);
        match (claim, file, self.disk.borrow_mut().as_mut()) {
            (Some(claim), Some(file), Some(disk)) if requeued => {
                disk.release(&self.host, claim, &file)
            }
            (Some(claim), _, Some(disk)) => disk.delivered(&self.host, claim),
            _ => {}
        }
    }

    /// Stops sending, keeps the queue, and tells the user once.
    /// The server redirects (never followed): every sender pauses for the longest
    /// backoff, the records stay queued, and the user is told once.
    fn misdirected(&self, key: &str, reason: &str) {
        let (host_name, first) = {
            let mut st = self.state.borrow_mut();
            st.paused_until = st
                .paused_until
                .max(js_sys::Date::now() + self.policy.cap_ms as f64);
            let first = !st.redirect_told;
            st.redirect_told = true;
            (st.endpoint.base.host().to_owned(), first)
        };
        if first {
            self.host.log(
                "error",
                &format!("{host_name} answered {key} with a {reason}; the records stay queued"),
            );
            self.host.toast(
                &format!(
                    "OpenSync at {host_name} answers with a redirect, which is not followed. Check the URL with `opencode-sync status`."
                ),
                "error",
            );
        }
    }

    fn refused_key(&self, reason: &str) {
        let (host_name, first) = {
            let mut st = self.state.borrow_mut();
            st.auth_failed = true;
            let first = !st.toasted;
            st.toasted = true;
            (st.endpoint.base.host().to_owned(), first)
        };
        self.host.log(
            "error",
            &format!(
                "OpenSync rejected the API key for {host_name} ({reason}); syncing is paused until the key changes"
            ),
        );
        if first {
            self.host.toast(
                &format!(
                    "OpenSync rejected the API key for {host_name}. Run `opencode-sync login` with a new key from Settings."
                ),
                "error",
            );
        }
    }

    fn stop_sending(&self) {
        let waiters = {
            let mut st = self.state.borrow_mut();
            st.senders = st.senders.saturating_sub(1);
            if st.settled() {
                std::mem::take(&mut st.waiters)
            } else {
                Vec::new()
            }
        };
        for (resolve, timer) in waiters {
            if let Some(timer) = timer {
                host::clear_timer(&timer);
            }
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    /// A promise that resolves when the queue settles or after `timeout_ms`. Its timer
    /// keeps the host alive: this is what `dispose` waits on before the process exits.
    /// With `close_on_timeout`, the instance closes when the time is up.
    fn settled_promise(this: &Rc<Self>, timeout_ms: f64, close_on_timeout: bool) -> Promise {
        Promise::new(&mut |resolve, _reject| {
            let mut st = this.state.borrow_mut();
            if st.settled() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
                return;
            }
            let timer = if close_on_timeout {
                let inner = Rc::clone(this);
                let done = resolve.clone();
                let on_timeout = Closure::once_into_js(move || {
                    inner.close();
                    let _ = done.call0(&JsValue::UNDEFINED);
                });
                on_timeout
                    .dyn_ref::<Function>()
                    .and_then(|f| host::timer(f, timeout_ms, true))
            } else {
                host::timer(&resolve, timeout_ms, true)
            };
            st.waiters.push((resolve, timer));
        })
    }

    /// Stops sending for good (see [`SyncPlugin::dispose`]): the records in flight go
    /// back under their queue names, and everything queued stays in the outbox.
    fn close(&self) {
        let (in_flight, queued) = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            (std::mem::take(&mut st.in_flight), st.queue.len())
        };
        let disk = self.disk.borrow();
        let kept = match disk.as_ref() {
            Some(disk) => {
                let mut released = 0;
                for (claim, file) in in_flight.into_iter().filter_map(|f| f.claim) {
                    disk.release(&self.host, &claim, &file);
                    released += 1;
                }
                queued + released
            }
            None => 0,
        };
        if kept > 0 {
            self.host.log(
                "info",
                &format!(
                    "{kept} record(s) not delivered yet stay in the outbox for the next start or `opencode-sync sync --flush`"
                ),
            );
        }
    }
}
