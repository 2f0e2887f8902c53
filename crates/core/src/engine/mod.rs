//! The plugin's brain, sans-I/O: raw hook inputs in, upserts worth sending out. The wasm
//! layer feeds it every hook call (deferred off the hook), sends what it returns, and
//! calls [`Engine::flush`] when OpenCode disposes the plugin.
//!
//! Here: the hooks and upserts, the per-session and per-message state, and the engine
//! itself; `tests`: recorded and scripted hook streams through it.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::{Endpoint, MessagePayload, Request, SessionPayload};
use crate::config::Options;
use crate::json_text::mend_lone_surrogates;
use crate::map::{self, SessionContext};
use crate::model::{ChatMessage, Event, MessageInfo, PartInfo, PluginInput, SessionInfo};
use crate::objects;

/// Which plugin hook produced an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `event({event})`: the input is the event object `{id, type, properties}`.
    Event,
    /// `chat.message(input, output)`: the input is `{"i": input, "o": output}`.
    ChatMessage,
    /// `tool.execute.before(input, output)`: `{"i", "o"}`.
    ToolBefore,
    /// `tool.execute.after(input, output)`: `{"i", "o"}`.
    ToolAfter,
}

impl Hook {
    /// Parses the hook name used by OpenCode (`"event"`, `"chat.message"`,
    /// `"tool.execute.before"`, `"tool.execute.after"`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "event" => Some(Self::Event),
            "chat.message" => Some(Self::ChatMessage),
            "tool.execute.before" => Some(Self::ToolBefore),
            "tool.execute.after" => Some(Self::ToolAfter),
            _ => None,
        }
    }

    /// Whether [`Engine::handle`] can act on this call at all (`event_type` is the
    /// event's `type` for [`Hook::Event`]). The host skips converting the rest: streaming
    /// deltas alone are most of the events. Keep in step with `Engine::handle`.
    pub fn wants(self, event_type: Option<&str>) -> bool {
        match self {
            Self::Event => matches!(
                event_type,
                Some(
                    "session.created"
                        | "session.updated"
                        | "session.status"
                        | "session.idle"
                        | "message.updated"
                        | "message.part.updated"
                        | "message.removed"
                        | "vcs.branch.updated"
                        | "server.instance.disposed"
                )
            ),
            Self::ChatMessage => true,
            Self::ToolBefore | Self::ToolAfter => false,
        }
    }
}

/// Something to store on the server. Upserts with the same [`Upsert::key`] supersede
/// each other: only the newest needs sending.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "lowercase")]
pub enum Upsert {
    Session(SessionPayload),
    Message(MessagePayload),
}

impl Upsert {
    /// `session:<id>` or `message:<id>`.
    pub fn key(&self) -> String {
        match self {
            Self::Session(s) => format!("session:{}", s.external_id),
            Self::Message(m) => format!("message:{}", m.external_id),
        }
    }

    /// The session it belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            Self::Session(s) => &s.external_id,
            Self::Message(m) => &m.session_external_id,
        }
    }

    /// Its own id (session or message id).
    pub fn id(&self) -> &str {
        match self {
            Self::Session(s) => &s.external_id,
            Self::Message(m) => &m.external_id,
        }
    }

    /// The HTTP request that delivers it.
    pub fn request(&self, endpoint: &Endpoint) -> Request {
        match self {
            Self::Session(s) => endpoint.session(s),
            Self::Message(m) => endpoint.message(m),
        }
    }
}

/// What the engine knows about one session.
#[derive(Debug, Default)]
struct SessionState {
    info: Option<SessionInfo>,
    last_model: Option<(String, Option<String>)>,
    /// The payload last emitted, to tell whether anything changed since.
    sent: Option<SessionPayload>,
    busy: bool,
    /// The completed replies seen, in id order (see [`put_by_id`]): the totals of a
    /// session that keeps none.
    replies: Vec<MessageInfo>,
}

/// What the engine knows about one message until it is sent.
#[derive(Debug, Default)]
struct MessageState {
    info: Option<MessageInfo>,
    /// Parts by id; ids sort in creation order, as OpenCode orders them.
    parts: Vec<PartInfo>,
    sent: bool,
}

impl MessageState {
    /// An assistant message being written: worth a draft, so that a process killed
    /// mid-turn does not take it along (see [`crate::outbox`]).
    fn in_progress(&self) -> bool {
        !self.sent && self.info.as_ref().is_some_and(|i| i.role == "assistant")
    }
}

/// Per-process sync state for one OpenCode instance.
#[derive(Debug)]
pub struct Engine {
    input: PluginInput,
    options: Options,
    git_branch: Option<String>,
    sessions: HashMap<String, SessionState>,
    messages: HashMap<String, MessageState>,
    /// Messages in progress changed since their last draft (see [`Engine::drafts`]).
    drafts_due: IdSet,
    /// Sessions whose turn ended with totals not sent yet: they wait for the session
    /// update OpenCode sends right after `session.idle` with the final ones (see
    /// [`Engine::release_held`]).
    held: IdSet,
    /// Keys of messages removed (see [`Engine::take_removed`]).
    removed: Vec<String>,
}

impl Engine {
    /// `input` is the plugin function's input without `client` and `$`.
    pub fn new(input: &Value, options: Options) -> Self {
        Self::from_json(&input.to_string(), options)
    }

    /// [`Engine::new`] with the input as JSON text, parsed straight into its type (the
    /// plugin has it as text).
    pub fn from_json(input: &str, options: Options) -> Self {
        Self {
            input: objects::from_str::<PluginInput>(&mend_lone_surrogates(input))
                .unwrap_or_default(),
            options,
            git_branch: None,
            sessions: HashMap::new(),
            messages: HashMap::new(),
            drafts_due: IdSet::default(),
            held: IdSet::default(),
            removed: Vec::new(),
        }
    }

    /// Keys of messages removed since the last call, whose drafts are to go too.
    pub fn take_removed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.removed)
    }

    /// The project's branch, when the host could read `.git/HEAD` (see [`crate::git`]).
    pub fn set_git_branch(&mut self, branch: Option<String>) {
        self.git_branch = branch;
    }

    /// The instance's directory (OpenCode 2: its location's).
    pub fn directory(&self) -> Option<&str> {
        self.input.directory.as_deref()
    }

    /// The directory whose `.git/HEAD` names the branch.
    pub fn worktree(&self) -> Option<&str> {
        self.input
            .project
            .as_ref()
            .and_then(|p| p.worktree.as_deref())
            .filter(|w| *w != "/")
            .or(self.input.worktree.as_deref().filter(|w| *w != "/"))
            .or(self.input.app_root().filter(|w| *w != "/"))
            .or(self.input.directory())
    }

    /// Feeds one hook call as a JSON value (see [`Engine::handle_json`]).
    pub fn handle(&mut self, hook: Hook, input: &Value) -> Vec<Upsert> {
        self.handle_json(hook, &input.to_string())
    }

    /// Feeds one event already read into the model (OpenCode 2's, translated by
    /// [`crate::v2::Translator`]).
    pub fn handle_event(&mut self, event: Event) -> Vec<Upsert> {
        let mut out = Vec::new();
        self.on_event(event, &mut out);
        out
    }

    /// Feeds one hook call given as JSON text, parsed straight into the model types.
    /// Malformed or unknown input is ignored, never an error.
    pub fn handle_json(&mut self, hook: Hook, json: &str) -> Vec<Upsert> {
        let mut out = Vec::new();
        // A model's lone surrogate must not cost the part it is in.
        let json = &*mend_lone_surrogates(json);
        match hook {
            Hook::Event => {
                if let Ok(event) = objects::from_str::<Event>(json) {
                    self.on_event(event, &mut out);
                }
            }
            Hook::ChatMessage => {
                let Ok(ChatMessage { o }) = objects::from_str::<ChatMessage>(json) else {
                    return out;
                };
                if let Some(info) = o.message.filter(|m| !m.id.is_empty()) {
                    for mut part in o.parts.into_iter().filter(|p| !p.id.is_empty()) {
                        part.message_id.clone_from(&info.id);
                        self.store_part(part);
                    }
                    self.on_message(info, &mut out);
                }
            }
            // Tool parts carry everything these hooks do, in order, with ids.
            Hook::ToolBefore | Hook::ToolAfter => {}
        }
        out
    }

    fn on_event(&mut self, event: Event, out: &mut Vec<Upsert>) {
        match event {
            Event::Session { info } if !info.id.is_empty() => self.on_session(info, out),
            Event::Status { session_id, status } if status.kind == "idle" => {
                self.on_idle(session_id, out);
            }
            Event::Status { session_id, status } => {
                self.sessions.entry(session_id).or_default().busy = status.kind == "busy";
            }
            Event::Idle { session_id } => self.on_idle(session_id, out),
            Event::InstanceDisposed => out.extend(self.flush()),
            Event::Message { info } if !info.id.is_empty() => self.on_message(info, out),
            Event::Part { part } if !part.id.is_empty() => {
                let message_id = part.message_id.clone();
                self.store_part(part);
                self.maybe_emit_message(&message_id, out);
            }
            Event::MessageRemoved { message_id } => {
                self.messages.remove(&message_id);
                self.drafts_due.remove(&message_id);
                self.removed.push(format!("message:{message_id}"));
            }
            Event::Branch {
                branch: Some(branch),
            } if !branch.is_empty() => self.git_branch = Some(branch),
            _ => {}
        }
    }

    /// A turn ended: what never completed is sent with what arrived. A session that keeps
    /// no totals of its own (before OpenCode 1.15) has its final ones now, summed from its
    /// replies, and is sent at once: no update follows, and 1.2 to 1.14 exit a few ms
    /// later. Otherwise its totals wait for OpenCode's update that follows (see
    /// [`Engine::release_held`]).
    fn on_idle(&mut self, session_id: String, out: &mut Vec<Upsert>) {
        let state = self.sessions.entry(session_id.clone()).or_default();
        state.busy = false;
        let own_totals = state
            .info
            .as_ref()
            .is_some_and(|i| i.tokens.is_some() || i.cost.is_some());
        self.emit_pending_messages(Some(&session_id), out);
        if !own_totals {
            self.emit_session_if_changed(&session_id, out);
        } else if self.unsent_payload(&session_id).is_some() {
            self.held.insert(&session_id);
        }
    }

    fn on_session(&mut self, info: SessionInfo, out: &mut Vec<Upsert>) {
        let id = info.id.clone();
        let state = self.sessions.entry(id.clone()).or_default();
        state.info = Some(info);
        let current = self.session_payload(&id);
        let state = self.sessions.entry(id.clone()).or_default();
        let emit = match (&state.sent, &current) {
            (_, None) => false,
            (None, Some(_)) => true,
            // A new title or model shows at once; totals wait for the turn to end
            // (OpenCode sends the final ones just after `session.idle`).
            (Some(sent), Some(now)) => {
                sent.title != now.title
                    || sent.model != now.model
                    || (!state.busy && totals(sent) != totals(now))
            }
        };
        if let (true, Some(payload)) = (emit, current) {
            state.sent = Some(payload.clone());
            out.push(Upsert::Session(payload));
            self.held.remove(&id);
        }
    }

    /// The replies of sessions this process continues, as OpenCode lists them
    /// (`client.session.messages`: `[{info, parts}, ...]`): a session that keeps no totals
    /// of its own (before 1.15) counts the replies of earlier processes too. Nothing is
    /// sent for them (they were sent when they completed). Malformed input is ignored.
    pub fn note_replies_json(&mut self, json: &str) {
        #[derive(serde::Deserialize)]
        struct Listed {
            info: MessageInfo,
        }
        let Ok(listed) = objects::from_str::<Vec<Listed>>(&mend_lone_surrogates(json)) else {
            return;
        };
        for Listed { info } in listed {
            if info.role == "assistant" && !info.id.is_empty() && info.time.completed.is_some() {
                let state = self.sessions.entry(info.session_id.clone()).or_default();
                put_by_id(&mut state.replies, info, |m| &m.id);
            }
        }
    }

    /// Whether a turn's totals wait for OpenCode's last session update: the host calls
    /// [`Engine::release_held`] a moment later, in case that update never comes.
    pub fn holds(&self) -> bool {
        !self.held.0.is_empty()
    }

    /// Sends the totals that turns ended with and no session update brought since.
    /// (`session.idle` comes just before the update with the final totals: sending at
    /// both would cost a request per turn.)
    pub fn release_held(&mut self) -> Vec<Upsert> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.held.0) {
            self.emit_session_if_changed(&id, &mut out);
        }
        out
    }

    fn on_message(&mut self, info: MessageInfo, out: &mut Vec<Upsert>) {
        if info.role == "assistant"
            && let (Some(model), provider) = info.model_and_provider()
        {
            self.sessions
                .entry(info.session_id.clone())
                .or_default()
                .last_model = Some((model, provider));
        }
        let id = info.id.clone();
        let state = self.messages.entry(id.clone()).or_default();
        if !state.sent {
            state.info = Some(info);
            if state.in_progress() {
                self.drafts_due.insert(&id);
            }
            self.maybe_emit_message(&id, out);
        }
    }

    fn store_part(&mut self, part: PartInfo) {
        let state = self.messages.entry(part.message_id.clone()).or_default();
        if !state.sent {
            if state.in_progress() {
                self.drafts_due.insert(&part.message_id);
            }
            put_by_id(&mut state.parts, part, |p| &p.id);
        }
    }

    /// Whether [`Engine::drafts`] has something to return: an assistant message in
    /// progress changed since its last draft.
    pub fn drafts_due(&self) -> bool {
        !self.drafts_due.0.is_empty()
    }

    /// Snapshots of the assistant messages in progress that changed since the last call,
    /// as they would be sent if the process ended now. The host keeps them as outbox
    /// drafts (never sent while this process runs) and drops each when the complete
    /// message is queued. Cheap to skip: call it on a timer, not per event.
    pub fn drafts(&mut self) -> Vec<Upsert> {
        let ids = std::mem::take(&mut self.drafts_due.0);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(state) = self.messages.get(&id).filter(|m| m.in_progress()) else {
                continue;
            };
            let Some(info) = state.info.as_ref() else {
                continue;
            };
            let parts = state.parts.clone();
            out.push(Upsert::Message(map::message_payload(
                info,
                &parts,
                &self.options,
            )));
        }
        out
    }

    /// A message is sent once, when complete: an assistant message when OpenCode marks
    /// it completed, a user message once its text is there.
    fn maybe_emit_message(&mut self, id: &str, out: &mut Vec<Upsert>) {
        let Some(state) = self.messages.get(id) else {
            return;
        };
        let Some(info) = state.info.as_ref().filter(|_| !state.sent) else {
            return;
        };
        let complete = match info.role.as_str() {
            "assistant" => info.time.completed.is_some(),
            _ => state
                .parts
                .iter()
                .any(|p| p.kind == "text" && p.synthetic != Some(true) && p.text.is_some()),
        };
        if complete {
            self.emit_message(id, out);
        }
    }

    fn emit_message(&mut self, id: &str, out: &mut Vec<Upsert>) {
        let Some(state) = self.messages.get_mut(id) else {
            return;
        };
        let Some(info) = state.info.as_ref() else {
            return;
        };
        let parts = std::mem::take(&mut state.parts);
        out.push(Upsert::Message(map::message_payload(
            info,
            &parts,
            &self.options,
        )));
        state.sent = true;
        if let Some(info) = state.info.take().filter(|i| i.role == "assistant") {
            // Its tokens and cost count towards a session that keeps no totals of its own.
            let state = self.sessions.entry(info.session_id.clone()).or_default();
            put_by_id(&mut state.replies, info, |m| &m.id);
        }
        self.drafts_due.remove(id);
    }

    /// Messages that never completed (an aborted turn) are sent with what arrived
    /// rather than lost: an assistant message even with no parts (OpenCode keeps it),
    /// a user message once it has parts.
    fn emit_pending_messages(&mut self, session: Option<&str>, out: &mut Vec<Upsert>) {
        let mut pending: Vec<String> = self
            .messages
            .iter()
            .filter(|(_, m)| !m.sent)
            .filter(|(_, m)| {
                m.info.as_ref().is_some_and(|i| {
                    session.is_none_or(|s| i.session_id == s)
                        && (!m.parts.is_empty() || i.role == "assistant")
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        pending.sort_unstable();
        for id in pending {
            self.emit_message(&id, out);
        }
    }

    fn session_payload(&self, id: &str) -> Option<SessionPayload> {
        let state = self.sessions.get(id)?;
        let info = state.info.as_ref()?;
        let ctx = SessionContext {
            last_model: state.last_model.clone(),
            git_branch: self.git_branch.clone(),
            fallback_directory: self.input.directory().map(str::to_owned),
        };
        if state.replies.is_empty() {
            return Some(map::session_payload(info, &ctx, &self.options));
        }
        // The replies' totals, summed as backfill does: the session's own before OpenCode
        // 1.15 (it keeps none), and where its own are behind them (1.15 sends the update
        // with the last reply's tokens after it exits) the larger of each.
        let mut summed = info.clone();
        summed.tokens = None;
        summed.cost = None;
        crate::backfill::fill_missing_totals(&mut summed, &state.replies);
        if let (Some(own), Some(sum)) = (&info.tokens, &mut summed.tokens) {
            sum.input = sum.input.max(own.input);
            sum.output = sum.output.max(own.output);
            sum.reasoning = sum.reasoning.max(own.reasoning);
            sum.cache.read = sum.cache.read.max(own.cache.read);
            sum.cache.write = sum.cache.write.max(own.cache.write);
        } else if info.tokens.is_some() {
            summed.tokens.clone_from(&info.tokens);
        }
        if let Some(own) = info.cost.filter(|c| c.is_finite()) {
            summed.cost = Some(summed.cost.map_or(own, |sum| sum.max(own)));
        }
        Some(map::session_payload(&summed, &ctx, &self.options))
    }

    /// The session's payload, if it differs from the one last emitted.
    fn unsent_payload(&self, id: &str) -> Option<SessionPayload> {
        let current = self.session_payload(id)?;
        (self.sessions.get(id)?.sent.as_ref() != Some(&current)).then_some(current)
    }

    fn emit_session_if_changed(&mut self, id: &str, out: &mut Vec<Upsert>) {
        self.held.remove(id);
        if let Some(current) = self.unsent_payload(id) {
            let state = self.sessions.entry(id.to_owned()).or_default();
            state.sent = Some(current.clone());
            out.push(Upsert::Session(current));
        }
    }

    /// What is still worth sending when the plugin is disposed: messages that never
    /// completed and sessions whose totals changed since they were last sent.
    pub fn flush(&mut self) -> Vec<Upsert> {
        let mut out = Vec::new();
        self.emit_pending_messages(None, &mut out);
        let mut ids: Vec<String> = self.sessions.keys().cloned().collect();
        ids.sort_unstable();
        for id in ids {
            self.emit_session_if_changed(&id, &mut out);
        }
        out
    }
}

/// Puts `item` into `list`, kept in order of `id` (a map by id: an item with the same id
/// is replaced). Sorted vectors rather than B-trees for the engine's few entries at a
/// time: the same order, and no B-tree code in the plugin's wasm (18 KB).
fn put_by_id<T>(list: &mut Vec<T>, item: T, id: impl Fn(&T) -> &str) {
    match list.binary_search_by(|x| id(x).cmp(id(&item))) {
        Ok(at) => list[at] = item,
        Err(at) => list.insert(at, item),
    }
}

/// A set of ids in order (see [`put_by_id`]).
#[derive(Debug, Default)]
struct IdSet(Vec<String>);

impl IdSet {
    fn insert(&mut self, id: &str) {
        if let Err(at) = self.find(id) {
            self.0.insert(at, id.to_owned());
        }
    }

    fn remove(&mut self, id: &str) {
        if let Ok(at) = self.find(id) {
            self.0.remove(at);
        }
    }

    fn find(&self, id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|x| x.as_str().cmp(id))
    }
}

/// The fields that change as a session runs (durations aside).
fn totals(p: &SessionPayload) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        p.prompt_tokens,
        p.completion_tokens,
        p.cost.map(f64::to_bits),
    )
}

#[cfg(test)]
mod tests;
