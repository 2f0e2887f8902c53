//! `opencode-sync-wasm`: the layer the OpenCode plugin runs. It holds the core
//! [`Engine`] and [`Delivery`] and the host's capabilities, and only moves bytes: hook
//! inputs go into the engine, every upsert it returns goes to the delivery machine (which
//! writes it to the durable outbox), and the requests the machine asks for go out through
//! the host's `fetch`, their answers classified by the core's rules and handed back.
//! Every decision (what to send, when, what an answer means, how long to back off) is
//! the core's.
//!
//! The JavaScript side is `npm/index.js`, which builds the host object, defers every
//! hook call off the hook, and catches anything thrown here. A panic poisons the module:
//! every instance turns inactive and stops calling into the engine.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Function, Promise, Reflect};
use opencode_sync_core::api::Endpoint;
use opencode_sync_core::delivery::{self, Delivery, DiskOutbox, Event};
use opencode_sync_core::engine::{Engine, Hook, Upsert};
use opencode_sync_core::json_text::mend_lone_surrogates;
use opencode_sync_core::plugin_settings;
use opencode_sync_core::v2::{self, Feed, Translator};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

mod host;

pub use host::Host;

/// How long `flush()` waits by default, and how long `dispose()` waits.
const DEFAULT_FLUSH_MS: f64 = 2000.0;
/// How often, at most, drafts of the messages in progress are written (what a SIGKILL
/// can lose of a message being written), and how long a turn's totals wait for
/// OpenCode's update after `session.idle` (see [`Engine::release_held`]).
const TICK_MS: u64 = 500;

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
    engine: RefCell<Engine>,
    /// OpenCode 2's events translated for the engine (this location's sessions only);
    /// made on the first V2 event.
    v2: RefCell<Option<Translator>>,
    /// Every delivery decision: the core's state machine, driven from here.
    delivery: RefCell<Delivery>,
    state: RefCell<State>,
}

#[derive(Debug)]
struct State {
    endpoint: Endpoint,
    /// `flush()` promises waiting for the queue to settle, with their timeout timers.
    waiters: Vec<(Function, Option<JsValue>)>,
    /// `dispose()` gave up waiting: the instance sends nothing more, and what is left
    /// stays in the outbox for the next start or `opencode-sync sync --flush`.
    closed: bool,
    /// A tick (drafts, held totals) is scheduled.
    ticking: bool,
    /// When the delivery machine is woken next (see [`Delivery::poll_timeout`]).
    wake_at: Option<i64>,
    /// The outbox directory, for messages.
    outbox_dir: Option<String>,
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
        let settings = match plugin_settings::load(&host, &host, &tuple) {
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
            .and_then(|worktree| plugin_settings::git_branch(&host, worktree));
        engine.set_git_branch(branch);
        host.log(
            "info",
            &format!("syncing sessions to {}", settings.endpoint.base.host()),
        );
        let outbox_dir = opencode_sync_core::paths::outbox_dir(&host)
            .ok()
            .map(|dir| dir.display().to_string());
        let disk = outbox_dir
            .as_ref()
            .map(|dir| DiskOutbox::new(dir.clone(), writer_tag(&host)));
        if disk.is_none() {
            host.log(
                "warn",
                "no state directory (HOME unset): queued upserts are kept in memory only",
            );
        }
        let inner = Rc::new(Inner {
            host,
            tuple,
            engine: RefCell::new(engine),
            v2: RefCell::new(None),
            delivery: RefCell::new(Delivery::new(delivery::Config::default(), disk)),
            state: RefCell::new(State {
                endpoint: settings.endpoint,
                waiters: Vec::new(),
                closed: false,
                ticking: false,
                wake_at: None,
                outbox_dir,
            }),
        });
        // What earlier processes could not deliver goes out too, off the constructor.
        {
            let inner = Rc::clone(&inner);
            wasm_bindgen_futures::spawn_local(async move { Inner::load_leftovers(&inner) });
        }
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
        let (upserts, tick_due, removed) = {
            let mut engine = inner.engine.borrow_mut();
            let upserts = engine.handle_json(hook, &json);
            let drafts_due = engine.drafts_due() && inner.delivery.borrow().durable();
            (upserts, drafts_due || engine.holds(), engine.take_removed())
        };
        if !removed.is_empty() {
            inner
                .delivery
                .borrow_mut()
                .discard_drafts(&inner.host, &removed);
        }
        Inner::enqueue(inner, upserts);
        if tick_due {
            Inner::schedule_tick(inner);
        }
    }

    /// One event of OpenCode 2's stream (`ctx.event.subscribe()`), as it came. Returns
    /// the id of a session to ask the host about (`ctx.session.get`: the event has no
    /// location and the session was not seen here), then to be answered through
    /// [`SyncPlugin::located_v2`]; its events wait meanwhile.
    ///
    /// Events the translator cannot act on (see [`v2::wants`]) are not converted at all.
    #[wasm_bindgen(js_name = handleV2)]
    pub fn handle_v2(&self, event: JsValue) -> Option<String> {
        let inner = self.live()?;
        let kind = Reflect::get(&event, &JsValue::from_str("type"))
            .ok()
            .and_then(|t| t.as_string())?;
        if !v2::wants(&kind) {
            return None;
        }
        let json = json_text(&event)?;
        let feed = {
            let mut v2 = inner.v2.borrow_mut();
            let directory = inner
                .engine
                .borrow()
                .directory()
                .unwrap_or_default()
                .to_owned();
            v2.get_or_insert_with(|| Translator::new(&directory))
                .feed(&mend_lone_surrogates(&json))
        };
        match feed {
            Feed::Events(events) => {
                Inner::handle_events(inner, events);
                None
            }
            Feed::Ask(session_id) => Some(session_id),
        }
    }

    /// The host's answer about a session [`SyncPlugin::handle_v2`] asked for: its
    /// `Session.Info` (`ctx.session.get`), or `null` when the host does not know it.
    #[wasm_bindgen(js_name = locatedV2)]
    pub fn located_v2(&self, session_id: &str, info: JsValue) {
        let Some(inner) = self.live() else { return };
        let info = json_text(&info).map(|text| mend_lone_surrogates(&text).into_owned());
        let events = match inner.v2.borrow_mut().as_mut() {
            Some(v2) => v2.located(session_id, info.as_deref()),
            None => return,
        };
        Inner::handle_events(inner, events);
    }

    /// The replies OpenCode lists for a session this process continues
    /// (`client.session.messages`), for the totals of a session that keeps none (before
    /// OpenCode 1.15; see [`Engine::note_replies_json`]).
    #[wasm_bindgen(js_name = noteReplies)]
    pub fn note_replies(&self, messages: JsValue) {
        let Some(inner) = self.live() else { return };
        if let Some(json) = json_text(&messages) {
            inner.engine.borrow_mut().note_replies_json(&json);
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
        inner.delivery.borrow_mut().retire_spares(&inner.host);
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
    fn now() -> i64 {
        js_sys::Date::now() as i64
    }

    /// Events already read into the model (OpenCode 2's, translated) through the engine.
    fn handle_events(this: &Rc<Self>, events: Vec<opencode_sync_core::model::Event>) {
        if events.is_empty() {
            return;
        }
        let (upserts, tick_due, removed) = {
            let mut engine = this.engine.borrow_mut();
            let upserts: Vec<Upsert> = events
                .into_iter()
                .flat_map(|event| engine.handle_event(event))
                .collect();
            let drafts_due = engine.drafts_due() && this.delivery.borrow().durable();
            (upserts, drafts_due || engine.holds(), engine.take_removed())
        };
        if !removed.is_empty() {
            this.delivery
                .borrow_mut()
                .discard_drafts(&this.host, &removed);
        }
        Self::enqueue(this, upserts);
        if tick_due {
            Self::schedule_tick(this);
        }
    }

    /// Persists each upsert, then queues it, and sends what may go.
    fn enqueue(this: &Rc<Self>, upserts: Vec<Upsert>) {
        if upserts.is_empty() {
            return;
        }
        this.delivery
            .borrow_mut()
            .enqueue(&this.host, Self::now(), upserts);
        Self::drive(this);
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
            let durable = inner.delivery.borrow().durable();
            let (drafts, held) = {
                let mut engine = inner.engine.borrow_mut();
                let drafts = if durable { engine.drafts() } else { Vec::new() };
                (drafts, engine.release_held())
            };
            inner
                .delivery
                .borrow_mut()
                .write_drafts(&inner.host, Self::now(), &drafts);
            Inner::enqueue(&inner, held);
        });
    }

    /// Queues what earlier processes left in the outbox, ahead of this process's own.
    fn load_leftovers(this: &Rc<Self>) {
        let host = &this.host;
        let pid_alive = |pid: u32| host.pid_alive(pid);
        OWN_WRITERS.with(|own| {
            let own = own.borrow();
            let liveness = opencode_sync_core::outbox::PidLiveness {
                own_pid: host.pid(),
                own_tags: &own,
                pid_alive: &pid_alive,
            };
            this.delivery
                .borrow_mut()
                .load_leftovers(host, Self::now(), &liveness);
        });
        Self::drive(this);
    }

    /// Makes every request the delivery machine allows now, tells the user what it has
    /// to say, arms a timer for when it can do more, and resolves `flush()` promises once
    /// it has settled. Called after every input: new upserts, an answer, a timer.
    fn drive(this: &Rc<Self>) {
        if poisoned() || this.state.borrow().closed {
            return;
        }
        if this.delivery.borrow().auth_failed()
            && this.delivery.borrow().has_queued()
            && this.reload_credentials()
        {
            this.delivery.borrow_mut().resume();
        }
        loop {
            let transmit = {
                let endpoint = this.state.borrow().endpoint.clone();
                this.delivery
                    .borrow_mut()
                    .poll_transmit(&this.host, Self::now(), &endpoint)
            };
            let Some(transmit) = transmit else { break };
            let inner = Rc::clone(this);
            wasm_bindgen_futures::spawn_local(async move {
                let outcome = host::send(&transmit.request).await;
                if poisoned() {
                    return;
                }
                inner.delivery.borrow_mut().handle_answer(
                    &inner.host,
                    Self::now(),
                    transmit.id,
                    &outcome,
                    inner.host.random(),
                );
                Inner::drive(&inner);
            });
        }
        this.tell();
        Self::arm_wake(this);
        if this.delivery.borrow().settled() {
            this.resolve_waiters();
        }
    }

    /// A timer for the machine's next timeout, unless an earlier one is armed. It does
    /// not hold the host open (a backoff must never delay OpenCode's exit).
    fn arm_wake(this: &Rc<Self>) {
        let now = Self::now();
        let Some(at) = this.delivery.borrow().poll_timeout(now) else {
            return;
        };
        {
            let mut st = this.state.borrow_mut();
            if st.wake_at.is_some_and(|armed| armed <= at) {
                return;
            }
            st.wake_at = Some(at);
        }
        let inner = Rc::clone(this);
        wasm_bindgen_futures::spawn_local(async move {
            host::sleep(at.saturating_sub(now).max(0) as u64).await;
            {
                let mut st = inner.state.borrow_mut();
                if st.wake_at == Some(at) {
                    st.wake_at = None;
                }
            }
            Inner::drive(&inner);
        });
    }

    /// Logs (and toasts) what the delivery machine has to say.
    fn tell(&self) {
        loop {
            let event = self.delivery.borrow_mut().poll_event();
            let Some(event) = event else { return };
            let host_name = self.state.borrow().endpoint.base.host().to_owned();
            match event {
                Event::AuthFailed { reason, first } => {
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
                Event::Redirected { key, reason } => {
                    self.host.log(
                        "error",
                        &format!(
                            "{host_name} answered {key} with a {reason}; the records stay queued"
                        ),
                    );
                    self.host.toast(
                        &format!(
                            "OpenSync at {host_name} answers with a redirect, which is not followed. Check the URL with `opencode-sync status`."
                        ),
                        "error",
                    );
                }
                Event::Refused { key, reason } => self.host.log(
                    "warn",
                    &format!("OpenSync refused {key}, set it aside (outbox/quarantine): {reason}"),
                ),
                Event::Retrying {
                    key,
                    reason,
                    attempt,
                } => self.host.log(
                    "warn",
                    &format!("could not deliver {key} ({reason}); retrying (attempt {attempt})"),
                ),
                Event::WriteFailed { key, .. } => {
                    let dir = self.state.borrow().outbox_dir.clone().unwrap_or_default();
                    self.host.log(
                        "warn",
                        &format!(
                            "could not write {key} to the outbox ({dir}: read-only or full?): it is kept in memory and sent while OpenCode runs; what cannot be sent before it exits, `opencode-sync sync` backfills from OpenCode's store"
                        ),
                    );
                }
                Event::Leftovers {
                    queued, corrupt, ..
                } => {
                    if corrupt > 0 {
                        self.host.log(
                            "warn",
                            &format!(
                                "{corrupt} corrupt outbox record(s) were set aside (outbox/quarantine)"
                            ),
                        );
                    }
                    if queued > 0 {
                        self.host.log(
                            "info",
                            &format!("sending {queued} record(s) left by an earlier OpenCode"),
                        );
                    }
                }
                Event::Backlog { records } => self.host.log(
                    "warn",
                    &format!(
                        "{records} records are waiting to be sent; they are kept on disk, none is dropped (`opencode-sync sync --flush` sends them too)"
                    ),
                ),
            }
        }
    }

    /// After a refused key: picks up credentials that changed since (`opencode-sync
    /// login` while OpenCode runs). Returns whether sending may resume.
    fn reload_credentials(&self) -> bool {
        let Ok(settings) = plugin_settings::load(&self.host, &self.host, &self.tuple) else {
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
        true
    }

    fn resolve_waiters(&self) {
        let waiters = std::mem::take(&mut self.state.borrow_mut().waiters);
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
            if this.delivery.borrow().settled() {
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
            this.state.borrow_mut().waiters.push((resolve, timer));
        })
    }

    /// Stops sending for good (see [`SyncPlugin::dispose`]): the records in flight go
    /// back under their queue names, and everything queued stays in the outbox.
    fn close(&self) {
        self.state.borrow_mut().closed = true;
        let kept = self.delivery.borrow_mut().close(&self.host);
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
