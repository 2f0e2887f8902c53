//! The plugin's brain, sans-I/O: raw hook inputs in, upserts worth sending out. The wasm
//! layer feeds it every hook call (deferred off the hook), sends what it returns, and
//! calls [`Engine::flush`] when OpenCode disposes the plugin.

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
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const RECORDED: &str =
        include_str!("../../../tests/fixtures/opencode-1.18.33-two-turns-three-tools.jsonl");

    /// Replays the recording; each `init` line starts a new OpenCode process, and the
    /// previous one is disposed (flushed) first. Returns every upsert in order.
    fn replay(options: &Options) -> Vec<Upsert> {
        let mut out = Vec::new();
        let mut engine: Option<Engine> = None;
        for line in RECORDED.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let input = &record["input"];
            let hook = match record["hook"].as_str().unwrap() {
                "init" => {
                    if let Some(mut old) = engine.take() {
                        out.extend(old.flush());
                    }
                    let mut e = Engine::new(input, options.clone());
                    e.set_git_branch(Some("main".into()));
                    engine = Some(e);
                    continue;
                }
                "tool.before" => Hook::ToolBefore,
                "tool.after" => Hook::ToolAfter,
                name => Hook::from_name(name).unwrap(),
            };
            out.extend(engine.as_mut().unwrap().handle(hook, input));
        }
        out.extend(engine.unwrap().flush());
        out
    }

    fn recorded_message_ids() -> BTreeSet<String> {
        RECORDED
            .lines()
            .filter_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["input"]["type"] == "message.updated").then(|| {
                    v["input"]["properties"]["info"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect()
    }

    #[test]
    fn recorded_session_arrives_complete() {
        let upserts = replay(&Options::default());
        let messages: Vec<&MessagePayload> = upserts
            .iter()
            .filter_map(|u| match u {
                Upsert::Message(m) => Some(m),
                Upsert::Session(_) => None,
            })
            .collect();
        // Every message once, none twice.
        let ids: Vec<&str> = messages.iter().map(|m| m.external_id.as_str()).collect();
        let unique: BTreeSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(ids.len(), unique.len(), "{ids:?}");
        assert_eq!(unique, recorded_message_ids());

        let first_user = messages
            .iter()
            .find(|m| m.role == crate::api::Role::User)
            .unwrap();
        assert_eq!(
            first_user.text_content.as_deref(),
            Some("\"read notes and run two commands\"")
        );
        assert_eq!(first_user.created_at, Some(1_795_565_197_923));

        let tool_calls: Vec<&Value> = messages
            .iter()
            .flat_map(|m| m.parts.iter().flatten())
            .filter(|p| p.kind == "tool-call")
            .map(|p| &p.content)
            .collect();
        assert_eq!(tool_calls.len(), 6, "three tool calls per turn");
        assert!(tool_calls.iter().all(|c| c["status"] == "completed"));
        let results = messages
            .iter()
            .flat_map(|m| m.parts.iter().flatten())
            .filter(|p| p.kind == "tool-result")
            .count();
        assert_eq!(results, 6);
        let failing = messages
            .iter()
            .flat_map(|m| m.parts.iter().flatten())
            .find(|p| p.kind == "tool-result" && p.content["exit"] == 3)
            .unwrap();
        assert_eq!(failing.content["output"], "token=[REDACTED]\n");

        for m in &messages {
            let wire = serde_json::to_string(m).unwrap();
            assert!(
                !wire.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
                "{wire}"
            );
            if m.role == crate::api::Role::Assistant {
                assert!(m.duration_ms.is_some() && m.model.as_deref() == Some("mock-1"));
                assert!(m.prompt_tokens.is_some(), "{m:?}");
            }
        }

        let sessions: Vec<&SessionPayload> = upserts
            .iter()
            .filter_map(|u| match u {
                Upsert::Session(s) => Some(s),
                Upsert::Message(_) => None,
            })
            .collect();
        let first = sessions[0];
        assert_eq!(first.title, None, "the placeholder title is never sent");
        assert_eq!(first.created_at, Some(1_795_565_197_869));
        let last = sessions.last().unwrap();
        assert_eq!(last.external_id, "ses_deff965d2ffeduqkQGf3GHnCPe");
        assert_eq!(last.title.as_deref(), Some("Notes review ✓"));
        assert_eq!(last.model.as_deref(), Some("mock-1"));
        assert_eq!(last.provider.as_deref(), Some("mock"));
        assert_eq!(last.project_name.as_deref(), Some("demo"));
        assert_eq!(last.git_branch.as_deref(), Some("main"));
        assert!(last.cost.unwrap() > 0.0);
        assert!(
            last.prompt_tokens.unwrap() > 600,
            "totals of both turns: {last:?}"
        );
        // Few requests: a handful of session upserts per process, not one per event.
        assert!(
            sessions.len() <= 6,
            "{} session upserts: {sessions:#?}",
            sessions.len()
        );
    }

    #[test]
    fn reasoning_and_tool_output_follow_options() {
        let options = Options {
            sync_tool_output: false,
            ..Options::default()
        };
        let upserts = replay(&options);
        let outputs: Vec<&Value> = upserts
            .iter()
            .filter_map(|u| match u {
                Upsert::Message(m) => m.parts.as_ref(),
                Upsert::Session(_) => None,
            })
            .flatten()
            .filter(|p| p.kind == "tool-result")
            .map(|p| &p.content["output"])
            .collect();
        assert!(outputs.iter().all(|o| *o == "(tool output not synced)"));
    }

    #[test]
    fn assistant_messages_in_progress_are_drafted_once_per_change() {
        let mut e = Engine::new(&Value::Null, Options::default());
        let message = |completed: Option<i64>| {
            serde_json::json!({"type": "message.updated", "properties": {"info": {
                "id": "msg_2", "sessionID": "ses_1", "role": "assistant", "modelID": "m",
                "providerID": "p", "time": {"created": 10, "completed": completed},
                "tokens": {"input": 1, "output": 2, "reasoning": 0, "cache": {"read": 0, "write": 0}}
            }}})
        };
        let part = |text: &str| {
            serde_json::json!({"type": "message.part.updated", "properties": {"part": {
                "id": "prt_1", "messageID": "msg_2", "sessionID": "ses_1", "type": "text", "text": text
            }}})
        };
        assert!(!e.drafts_due());
        assert!(e.handle(Hook::Event, &message(None)).is_empty());
        assert!(e.drafts_due());
        let drafts = e.drafts();
        assert_eq!(drafts.len(), 1, "a bare assistant message is drafted too");
        assert_eq!(drafts[0].key(), "message:msg_2");
        assert!(
            !e.drafts_due() && e.drafts().is_empty(),
            "nothing changed since"
        );

        assert!(e.handle(Hook::Event, &part("Half an ans")).is_empty());
        let Upsert::Message(draft) = &e.drafts()[0] else {
            panic!()
        };
        assert_eq!(draft.text_content.as_deref(), Some("Half an ans"));

        let done = e.handle(Hook::Event, &message(Some(20)));
        assert_eq!(done.len(), 1, "complete: sent, and never drafted again");
        assert!(!e.drafts_due() && e.drafts().is_empty());
    }

    #[test]
    fn a_turns_totals_wait_for_the_update_after_idle() {
        let session = |cost: f64, input: u64| {
            serde_json::json!({"type": "session.updated", "properties": {"info": {
                "id": "ses_1", "directory": "/p", "title": "Real title", "cost": cost,
                "tokens": {"input": input, "output": 1, "reasoning": 0, "cache": {"read": 0, "write": 0}},
                "time": {"created": 10, "updated": 20}
            }}})
        };
        let status = |kind: &str| serde_json::json!({"type": "session.status", "properties": {"sessionID": "ses_1", "status": {"type": kind}}});
        let idle =
            serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}});
        let totals = |u: &[Upsert]| -> Vec<(Option<u64>, Option<f64>)> {
            u.iter()
                .filter_map(|u| match u {
                    Upsert::Session(s) => Some((s.prompt_tokens, s.cost)),
                    Upsert::Message(_) => None,
                })
                .collect()
        };
        for then_update in [true, false] {
            let mut e = Engine::new(&Value::Null, Options::default());
            assert_eq!(
                totals(&e.handle(Hook::Event, &session(0.0, 0))),
                [(None, Some(0.0))]
            );
            assert!(e.handle(Hook::Event, &status("busy")).is_empty());
            assert!(
                e.handle(Hook::Event, &session(0.5, 100)).is_empty(),
                "busy: totals wait"
            );
            assert!(e.handle(Hook::Event, &status("idle")).is_empty());
            assert!(
                e.handle(Hook::Event, &idle).is_empty(),
                "idle: held for the final update"
            );
            assert!(e.holds());
            if then_update {
                let out = e.handle(Hook::Event, &session(0.75, 150));
                assert_eq!(
                    totals(&out),
                    [(Some(150), Some(0.75))],
                    "the final totals, once"
                );
                assert!(!e.holds() && e.release_held().is_empty());
            } else {
                assert_eq!(totals(&e.release_held()), [(Some(100), Some(0.5))]);
                assert!(!e.holds() && e.release_held().is_empty());
            }
            assert!(e.flush().is_empty(), "nothing left to send");
        }
    }

    /// Before OpenCode 1.15 a session carries no totals: at the end of a turn they are the
    /// sums over its replies (earlier processes' too), sent at once (1.2-1.14 exit a few ms
    /// after `session.idle`), as backfill sums them.
    #[test]
    fn without_session_totals_the_replies_are_summed_and_sent_at_idle() {
        let session = serde_json::json!({"type": "session.updated", "properties": {"info": {
            "id": "ses_1", "title": "Old release", "time": {"created": 10, "updated": 20}}}});
        let reply = |id: &str, input: u64, cost: f64| {
            serde_json::json!({"id": id, "sessionID": "ses_1", "role": "assistant",
                "modelID": "m", "providerID": "p", "cost": cost,
                "tokens": {"input": input, "output": 5, "reasoning": 1, "cache": {"read": 2, "write": 0}},
                "time": {"created": 11, "completed": 12}})
        };
        let idle =
            serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}});
        // 0.5.x: no `directory` anywhere but `app.path.cwd`.
        let input = serde_json::json!({"app": {"path": {"cwd": "/work/old", "root": "/work/old"}}});
        let mut e = Engine::new(&input, Options::default());
        // A reply of an earlier process, as OpenCode lists it, and one of this process.
        e.note_replies_json(
            &serde_json::json!([{"info": reply("msg_1", 100, 0.25), "parts": []}]).to_string(),
        );
        assert!(!e.handle(Hook::Event, &session).is_empty());
        let done = serde_json::json!({"type": "message.updated", "properties": {"info": reply("msg_2", 200, 0.5)}});
        assert_eq!(e.handle(Hook::Event, &done).len(), 1, "the reply");
        let out = e.handle(Hook::Event, &idle);
        let [Upsert::Session(s)] = out.as_slice() else {
            panic!("the session at idle, not held: {out:?}")
        };
        assert_eq!(s.prompt_tokens, Some(100 + 2 + 200 + 2));
        assert_eq!(s.completion_tokens, Some(12));
        assert_eq!(s.cost, Some(0.75));
        assert_eq!(s.project_path.as_deref(), Some("/work/old"));
        assert!(!e.holds());
        assert!(e.flush().is_empty(), "nothing left to send");
    }

    /// OpenCode 1.15 sends the session update with the last reply's tokens after it has
    /// exited: what is sent at the end is the replies' sum where the session's is behind.
    #[test]
    fn stale_session_totals_give_way_to_the_replies() {
        let session = |input: u64, cost: f64| {
            serde_json::json!({"type": "session.updated", "properties": {"info": {
                "id": "ses_1", "directory": "/p", "title": "T", "cost": cost,
                "tokens": {"input": input, "output": 10, "reasoning": 0, "cache": {"read": 0, "write": 0}},
                "time": {"created": 10, "updated": 20}}}})
        };
        let reply = |id: &str, input: u64, cost: f64| {
            serde_json::json!({"type": "message.updated", "properties": {"info": {
                "id": id, "sessionID": "ses_1", "role": "assistant", "cost": cost,
                "tokens": {"input": input, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}},
                "time": {"created": 11, "completed": 12}}}})
        };
        let mut e = Engine::new(&Value::Null, Options::default());
        e.handle(Hook::Event, &session(0, 0.0));
        e.handle(Hook::Event, &reply("msg_1", 100, 0.25));
        e.handle(Hook::Event, &session(100, 0.25));
        e.handle(Hook::Event, &reply("msg_2", 120, 0.5));
        e.handle(
            Hook::Event,
            &serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}}),
        );
        let out = e.flush();
        let [Upsert::Session(s)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(s.prompt_tokens, Some(220));
        assert_eq!(
            s.completion_tokens,
            Some(10),
            "the session's own where it is ahead"
        );
        assert_eq!(s.cost, Some(0.75));
    }

    #[test]
    fn instance_disposed_sends_what_dispose_would() {
        let mut e = Engine::new(&Value::Null, Options::default());
        let begun = serde_json::json!({"type": "message.updated", "properties": {"info": {
            "id": "msg_1", "sessionID": "ses_1", "role": "assistant", "time": {"created": 1}}}});
        assert!(e.handle(Hook::Event, &begun).is_empty());
        let disposed = serde_json::json!({"type": "server.instance.disposed", "properties": {"directory": "/p"}});
        let out = e.handle(Hook::Event, &disposed);
        assert!(
            matches!(out.as_slice(), [Upsert::Message(m)] if m.external_id == "msg_1"),
            "{out:?}"
        );
    }

    #[test]
    fn a_lone_surrogate_costs_one_character_not_the_part() {
        let mut e = Engine::new(&Value::Null, Options::default());
        // As `JSON.stringify` writes a reply holding half of an emoji's surrogate pair.
        let part = r#"{"type": "message.part.updated", "properties": {"part": {"id": "prt_1",
            "messageID": "msg_2", "sessionID": "ses_1", "type": "text", "text": "Done \ud83d!"}}}"#;
        let done = r#"{"type": "message.updated", "properties": {"info": {"id": "msg_2",
            "sessionID": "ses_1", "role": "assistant", "time": {"created": 10, "completed": 20}}}}"#;
        assert!(e.handle_json(Hook::Event, part).is_empty());
        let sent = e.handle_json(Hook::Event, done);
        let [Upsert::Message(message)] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        assert_eq!(message.text_content.as_deref(), Some("Done \u{fffd}!"));
        assert_eq!(message.parts.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn garbage_is_ignored() {
        let mut e = Engine::new(&Value::Null, Options::default());
        for input in [
            Value::Null,
            serde_json::json!([1, 2]),
            serde_json::json!({"type": "session.updated", "properties": {"info": 5}}),
            serde_json::json!({"type": "message.part.updated", "properties": {"part": {"id": 1}}}),
            serde_json::json!({"type": "brand.new", "properties": {}}),
        ] {
            assert!(e.handle(Hook::Event, &input).is_empty());
            assert!(e.handle(Hook::ChatMessage, &input).is_empty());
        }
        assert!(e.flush().is_empty());
    }
}
