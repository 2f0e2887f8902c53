//! OpenCode 2's event stream, translated into the events the engine already knows, so
//! that a V2 session goes through the same engine and the same mapping as a V1 one and
//! the dashboard shows it the same way.
//!
//! V2 (`@opencode/cli` 2.x) hands plugins `{id, created, type, data, location?}` from
//! `ctx.event.subscribe()`, with no `message.updated` or `message.part.updated`: a user
//! prompt is `session.inbox.enqueued`, an assistant message is one model step
//! (`session.step.started` … `session.step.ended`), its text, reasoning and tool calls
//! arrive as `session.text.*`, `session.reasoning.*`, `session.tool.*`, and a turn ends
//! with `session.execution.succeeded|failed|interrupted` (`session.idle` is never
//! published). This module keeps what each session has said so far and turns every V2
//! event into the V1 [`Event`]s that say the same (a `Message` with the step's info, a
//! `Part` with the text or tool call so far, `Idle` at a turn's end).
//!
//! In one V2 service every plugin instance (one per project location) sees every
//! location's events. A [`Translator`] belongs to one location and passes on only the
//! events of sessions created there; for an event without `location` whose session it
//! has not seen, it asks ([`Feed::Ask`]) and holds the session's events until the host
//! answers with the session's directory ([`Translator::located`]).
//!
//! Facts: `../shared/opencode-host-v2.md` ("Events a sync plugin needs").

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{
    Event, MessageInfo, PartInfo, SessionInfo, SessionModel, SessionStatus, Times, Tokens,
    ToolMetadata, ToolState, ToolTimes,
};
use crate::objects;

/// Events held per session while its location is asked for; past this the oldest go
/// (a host that never answers must not exhaust the service's memory).
const MAX_HELD_PER_SESSION: usize = 2_000;
/// Sessions whose turn is over kept (their info: title, model, totals, a few hundred
/// bytes each) for their next turn; past this the longest idle are forgotten. A
/// forgotten session that speaks again starts from its next events (the server keeps
/// what it was sent, and a field left out of an upsert is left as stored).
const MAX_FINISHED_KEPT: usize = 1_024;

/// What one V2 event became.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// The engine's events to handle (none for another location's session or an event
    /// type that says nothing worth syncing).
    Events(Vec<Event>),
    /// The event names a session whose location is unknown: ask the host
    /// (`ctx.session.get`) and call [`Translator::located`]; its events wait.
    Ask(String),
}

/// Whether [`Translator::feed`] can act on an event of this `type` at all. The host
/// skips converting the rest: tool input streaming, tool progress, `step.streamed` and
/// `inbox.delivered` alone are a quarter of a session's events, and the stream carries
/// every other kind the service publishes. Keep in step with `Translator::translate`
/// (a test feeds the other types of a V2 stream and checks nothing comes of them).
pub fn wants(kind: &str) -> bool {
    matches!(
        kind,
        "vcs.branch.updated"
            | "session.created"
            | "session.renamed"
            | "session.model.selected"
            | "session.usage.updated"
            | "session.inbox.enqueued"
            | "session.execution.started"
            | "session.step.started"
            | "session.text.started"
            | "session.text.delta"
            | "session.text.ended"
            | "session.reasoning.started"
            | "session.reasoning.delta"
            | "session.reasoning.ended"
            | "session.tool.input.started"
            | "session.tool.called"
            | "session.tool.success"
            | "session.tool.failed"
            | "session.step.ended"
            | "session.step.failed"
            | "session.execution.succeeded"
            | "session.execution.failed"
            | "session.execution.interrupted"
            | "session.deleted"
    )
}

/// The V2 envelope, its `data` read straight into the fields used (an event whose
/// `data` does not fit them is no event to act on).
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    created: Option<f64>,
    #[serde(default)]
    data: Data,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Debug, Clone, Deserialize)]
struct Location {
    #[serde(default)]
    directory: Option<String>,
}

/// The fields of `data` this module reads, whatever the event type (each type has
/// some of them).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    #[serde(rename = "projectID", default)]
    project_id: Option<String>,
    #[serde(rename = "parentID", default)]
    parent_id: Option<String>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    model: Option<SessionModel>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    tokens: Option<Tokens>,
    #[serde(rename = "inboxID", default)]
    inbox_id: Option<String>,
    #[serde(default)]
    item: Option<InboxItem>,
    #[serde(rename = "assistantMessageID", default)]
    assistant_message_id: Option<String>,
    #[serde(default)]
    started: Option<f64>,
    #[serde(default)]
    finish: Option<String>,
    #[serde(default)]
    ordinal: Option<u64>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    text: Option<String>,
    /// A tool call's id (the provider's call id).
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    content: Option<Vec<ContentItem>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct InboxItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Default, Deserialize)]
struct ContentItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// What `ctx.session.get` answers (V2's `Session.Info`), as far as read here.
#[derive(Debug, Default, Deserialize)]
struct V2SessionInfo {
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    directory: Option<String>,
    #[serde(rename = "projectID", default)]
    project_id: Option<String>,
    #[serde(rename = "parentID", default)]
    parent_id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    model: Option<SessionModel>,
    #[serde(default)]
    time: V2Times,
}

#[derive(Debug, Default, Deserialize)]
struct V2Times {
    #[serde(default)]
    created: Option<f64>,
    #[serde(default)]
    updated: Option<f64>,
}

/// What a session has said so far.
#[derive(Debug, Default)]
struct SessionState {
    info: SessionInfo,
    /// Parts of the step in progress, by what names them in V2 (a text's ordinal, a
    /// tool call's id). Their ids count up in order of appearance: the engine orders a
    /// message's parts by id, as V1's ids sort by creation.
    parts: HashMap<String, PartInfo>,
    /// The step in progress (its assistant message).
    step: Option<MessageInfo>,
    /// Whether the step in progress has said something OpenCode keeps (an ended text or
    /// reasoning, a tool call): a step cut short before that leaves no message.
    step_said: bool,
}

/// One plugin instance's translator (see the module docs).
#[derive(Debug)]
pub struct Translator {
    /// The instance's location directory.
    directory: String,
    sessions: HashMap<String, SessionState>,
    /// Whether each session seen is this location's.
    owned: HashMap<String, bool>,
    /// Events of sessions whose location was asked for, in order.
    held: HashMap<String, Vec<String>>,
    /// Sessions whose turn ended, oldest first (see [`MAX_FINISHED_KEPT`]).
    finished: std::collections::VecDeque<String>,
    /// Sessions the host was asked about and answered.
    asked: std::collections::HashSet<String>,
}

impl Translator {
    pub fn new(directory: &str) -> Self {
        Self {
            directory: directory.trim_end_matches(['/', '\\']).to_owned(),
            sessions: HashMap::new(),
            owned: HashMap::new(),
            held: HashMap::new(),
            finished: std::collections::VecDeque::new(),
            asked: std::collections::HashSet::new(),
        }
    }

    fn is_here(&self, directory: &str) -> bool {
        directory.trim_end_matches(['/', '\\']) == self.directory
    }

    /// Feeds one event as JSON text (what `JSON.stringify` of it gives).
    pub fn feed(&mut self, json: &str) -> Feed {
        let Ok(Envelope {
            kind,
            created,
            data,
            location,
        }) = objects::from_str::<Envelope>(json)
        else {
            return Feed::Events(Vec::new());
        };
        let Some(session_id) = data.session_id.clone().filter(|s| !s.is_empty()) else {
            // Events of no session: the branch.
            return Feed::Events(match kind.as_str() {
                "vcs.branch.updated" => {
                    let here = location
                        .as_ref()
                        .and_then(|l| l.directory.as_deref())
                        .is_none_or(|d| self.is_here(d));
                    if here {
                        vec![Event::Branch {
                            branch: data.branch,
                        }]
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            });
        };
        // Whose session is it? Its creation, or any event's location, says.
        let directory = data
            .location
            .as_ref()
            .or(location.as_ref())
            .and_then(|l| l.directory.as_deref());
        if let Some(directory) = directory
            && !self.owned.contains_key(&session_id)
        {
            let here = self.is_here(directory);
            self.owned.insert(session_id.clone(), here);
        }
        // A session of this location met mid-life (this instance started after its
        // creation: a new service process, a location loaded again) is asked about
        // too: its creation time, title and model come from the host.
        let known = self.sessions.contains_key(&session_id) || kind == "session.created";
        match self.owned.get(&session_id) {
            Some(true) if known || self.asked.contains(&session_id) => {
                Feed::Events(self.translate(&kind, created.unwrap_or_default(), data, &session_id))
            }
            Some(false) => Feed::Events(Vec::new()),
            _ => {
                let held = self.held.entry(session_id.clone()).or_default();
                let first = held.is_empty();
                if held.len() >= MAX_HELD_PER_SESSION {
                    held.remove(0);
                }
                held.push(json.to_owned());
                if first {
                    Feed::Ask(session_id)
                } else {
                    Feed::Events(Vec::new())
                }
            }
        }
    }

    /// The host's answer for a session asked about: its `Session.Info` as JSON text
    /// (`ctx.session.get`), or `None` when the host does not know it (then it is not
    /// this location's). Returns the events its held V2 events became.
    pub fn located(&mut self, session_id: &str, info: Option<&str>) -> Vec<Event> {
        let info: Option<V2SessionInfo> = info.and_then(|text| objects::from_str(text).ok());
        let directory = info.as_ref().and_then(|i| {
            i.location
                .as_ref()
                .and_then(|l| l.directory.clone())
                .or(i.directory.clone())
        });
        let owned = match (self.owned.get(session_id), &directory) {
            (Some(&known), _) => known,
            (None, Some(d)) => self.is_here(d),
            (None, None) => false,
        };
        self.owned.insert(session_id.to_owned(), owned);
        self.asked.insert(session_id.to_owned());
        if owned
            && let Some(info) = info
            && !self.sessions.contains_key(session_id)
        {
            let state = self.sessions.entry(session_id.to_owned()).or_default();
            state.info = SessionInfo {
                id: session_id.to_owned(),
                project_id: info.project_id,
                directory: directory.or_else(|| Some(self.directory.clone())),
                title: info.title,
                parent_id: info.parent_id,
                model: info.model,
                cost: None,
                tokens: None,
                time: Times {
                    created: info.time.created.unwrap_or_default(),
                    updated: info.time.updated,
                    completed: None,
                },
            };
        }
        let held = self.held.remove(session_id).unwrap_or_default();
        let mut out = Vec::new();
        for json in held {
            if let Feed::Events(events) = self.feed(&json) {
                out.extend(events);
            }
        }
        out
    }

    /// A session's turn is over: it is kept for its next turn, and the longest idle
    /// sessions past [`MAX_FINISHED_KEPT`] are forgotten (a service runs for days).
    fn finished(&mut self, session_id: &str) {
        self.finished.retain(|id| id != session_id);
        self.finished.push_back(session_id.to_owned());
        while self.finished.len() > MAX_FINISHED_KEPT {
            let Some(oldest) = self.finished.pop_front() else {
                break;
            };
            if self.sessions.get(&oldest).is_some_and(|s| s.step.is_none()) {
                self.sessions.remove(&oldest);
                self.owned.remove(&oldest);
                self.asked.remove(&oldest);
            }
        }
    }

    /// Sessions this translator keeps state for (for tests of its memory).
    pub fn sessions_kept(&self) -> usize {
        self.sessions.len()
    }

    fn translate(&mut self, kind: &str, at: f64, data: Data, session_id: &str) -> Vec<Event> {
        let state = self.sessions.entry(session_id.to_owned()).or_default();
        if state.info.id.is_empty() {
            state.info.id = session_id.to_owned();
            state.info.directory = Some(self.directory.clone());
            state.info.time.created = at;
        }
        let mut out = Vec::new();
        let mut forget = false;
        let mut deleted = false;
        match kind {
            "session.created" => {
                state.info.project_id = data.project_id;
                state.info.parent_id = data.parent_id;
                if let Some(dir) = data.location.and_then(|l| l.directory) {
                    state.info.directory = Some(dir);
                }
                if data.title.is_some() {
                    state.info.title = data.title;
                }
                if let Some(model) = data.model {
                    state.info.model = Some(model);
                }
                state.info.time.created = at;
                state.info.time.updated = Some(at);
                out.push(session_event(state));
            }
            "session.renamed" => {
                state.info.title = data.title;
                out.push(session_event(state));
            }
            "session.model.selected" => {
                if let Some(model) = data.model {
                    state.info.model = Some(model);
                    out.push(session_event(state));
                }
            }
            "session.usage.updated" => {
                state.info.cost = data.cost;
                state.info.tokens = data.tokens;
                out.push(session_event(state));
            }
            // A turn's totals wait for its end, as V1's do (`session.status` busy): the
            // usage reported after every step is sent with the turn's last.
            "session.execution.started" => out.push(Event::Status {
                session_id: session_id.to_owned(),
                status: SessionStatus {
                    kind: "busy".into(),
                },
            }),
            "session.inbox.enqueued" => {
                let Some(item) = data.item.filter(|i| i.kind == "user") else {
                    return out;
                };
                let Some(id) = data.inbox_id else { return out };
                let text = item
                    .payload
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(Event::Message {
                    info: MessageInfo {
                        id: id.clone(),
                        session_id: session_id.to_owned(),
                        role: "user".into(),
                        time: Times {
                            created: at,
                            ..Times::default()
                        },
                        ..MessageInfo::default()
                    },
                });
                out.push(Event::Part {
                    part: PartInfo {
                        id: format!("{id}-text"),
                        message_id: id,
                        session_id: session_id.to_owned(),
                        kind: "text".into(),
                        text: Some(text),
                        ..PartInfo::default()
                    },
                });
            }
            "session.step.started" => {
                let Some(id) = data.assistant_message_id else {
                    return out;
                };
                let model = data.model.unwrap_or_default();
                let info = MessageInfo {
                    id,
                    session_id: session_id.to_owned(),
                    role: "assistant".into(),
                    time: Times {
                        created: data.started.unwrap_or(at),
                        ..Times::default()
                    },
                    model_id: model.id,
                    provider_id: model.provider_id,
                    ..MessageInfo::default()
                };
                state.parts.clear();
                state.step_said = false;
                state.step = Some(info.clone());
                out.push(Event::Message { info });
            }
            "session.text.started"
            | "session.text.delta"
            | "session.text.ended"
            | "session.reasoning.started"
            | "session.reasoning.delta"
            | "session.reasoning.ended" => {
                let Some(message_id) = data.assistant_message_id else {
                    return out;
                };
                let reasoning = kind.starts_with("session.reasoning.");
                let part_kind = if reasoning { "reasoning" } else { "text" };
                let name = format!("{part_kind}-{}", data.ordinal.unwrap_or(0));
                let id = format!("{message_id}-p{:04}", state.parts.len());
                let part = state.parts.entry(name).or_insert_with(|| PartInfo {
                    id,
                    message_id,
                    session_id: session_id.to_owned(),
                    kind: part_kind.into(),
                    text: Some(String::new()),
                    ..PartInfo::default()
                });
                match kind.rsplit('.').next() {
                    Some("delta") => {
                        if let (Some(text), Some(delta)) = (part.text.as_mut(), data.delta) {
                            text.push_str(&delta);
                        }
                    }
                    Some("ended") => {
                        part.text = data.text.or(part.text.take());
                        state.step_said = true;
                    }
                    _ => {}
                }
                out.push(Event::Part { part: part.clone() });
            }
            "session.tool.input.started"
            | "session.tool.called"
            | "session.tool.success"
            | "session.tool.failed" => {
                let (Some(message_id), Some(call_id)) = (data.assistant_message_id, data.id) else {
                    return out;
                };
                let id = format!("{message_id}-p{:04}", state.parts.len());
                let part = state
                    .parts
                    .entry(format!("tool-{call_id}"))
                    .or_insert_with(|| PartInfo {
                        id,
                        message_id,
                        session_id: session_id.to_owned(),
                        kind: "tool".into(),
                        call_id: Some(call_id.clone()),
                        tool: data.name.clone(),
                        state: Some(ToolState {
                            status: "pending".into(),
                            input: Value::Object(serde_json::Map::new()),
                            ..ToolState::default()
                        }),
                        ..PartInfo::default()
                    });
                if part.tool.is_none() {
                    part.tool = data.name.clone();
                }
                let tool = part.state.get_or_insert_with(ToolState::default);
                match kind {
                    "session.tool.called" => {
                        state.step_said = true;
                        tool.status = "running".into();
                        if let Some(input) = data.input {
                            tool.input = input;
                        }
                        tool.time = ToolTimes {
                            start: Some(at),
                            end: None,
                        };
                    }
                    "session.tool.success" | "session.tool.failed" => {
                        let output = content_text(data.content.as_deref());
                        tool.time.end = Some(at);
                        if tool.time.start.is_none() {
                            tool.time.start = Some(at);
                        }
                        tool.metadata = ToolMetadata {
                            exit: data
                                .metadata
                                .as_ref()
                                .and_then(|m| m.get("exit"))
                                .filter(|e| e.is_number())
                                .cloned(),
                        };
                        if kind == "session.tool.success" {
                            tool.status = "completed".into();
                            tool.output = Some(output);
                        } else {
                            tool.status = "error".into();
                            tool.error = Some(error_text(data.error.as_ref()));
                            if !output.is_empty() {
                                tool.output = Some(output);
                            }
                        }
                    }
                    _ => {}
                }
                out.push(Event::Part { part: part.clone() });
            }
            "session.step.ended" | "session.step.failed" => {
                let Some(mut info) = state.step.take() else {
                    return out;
                };
                if data.assistant_message_id.is_some_and(|id| id != info.id) {
                    state.step = Some(info);
                    return out;
                }
                info.time.completed = Some(at);
                // The session was last updated by its last step (OpenCode 2's
                // `time_updated`), not by the renames and usage reports after it.
                state.info.time.updated = Some(at);
                info.cost = data.cost;
                info.tokens = data.tokens;
                info.finish = data.finish;
                if kind == "session.step.failed" {
                    info.error = data.error;
                }
                state.parts.clear();
                out.push(Event::Message { info });
            }
            "session.execution.succeeded"
            | "session.execution.failed"
            | "session.execution.interrupted" => {
                // A step cut short (interrupted) ends with the turn: what it said so far
                // goes, as OpenCode keeps it; one that said nothing yet leaves no message
                // (OpenCode keeps an empty, unfinished row, which backfill skips too).
                if let Some(mut info) = state.step.take() {
                    state.parts.clear();
                    if state.step_said {
                        info.time.completed = Some(at);
                        out.push(Event::Message { info });
                    } else {
                        out.push(Event::MessageRemoved {
                            message_id: info.id,
                        });
                    }
                }
                out.push(Event::Idle {
                    session_id: session_id.to_owned(),
                });
                out.push(session_event(state));
                forget = true;
            }
            "session.deleted" => deleted = true,
            _ => {}
        }
        if forget {
            self.finished(session_id);
        }
        if deleted {
            self.sessions.remove(session_id);
            self.owned.remove(session_id);
            self.asked.remove(session_id);
            self.finished.retain(|id| id != session_id);
        }
        out
    }
}

/// The session as the engine sees it after an update.
fn session_event(state: &SessionState) -> Event {
    Event::Session {
        info: state.info.clone(),
    }
}

/// A tool result's text: its text items, joined.
fn content_text(content: Option<&[ContentItem]>) -> String {
    content
        .unwrap_or_default()
        .iter()
        .filter(|c| c.kind == "text")
        .filter_map(|c| c.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A V2 error (`{type, message}`, or text) as one line.
fn error_text(error: Option<&Value>) -> String {
    match error {
        Some(Value::String(s)) => s.clone(),
        Some(e) => e
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string()),
        None => "failed".into(),
    }
}

#[cfg(test)]
mod tests;
