//! OpenCode's data as plugins receive it (hook inputs, events) and as it stores it
//! (`opencode.db` rows, the older JSON tree): one set of types, read by one decoder
//! ([`crate::json_read`]), so live sync and backfill read the same facts. Every field is
//! optional or defaulted and unknown fields and event types are ignored: OpenCode adds
//! fields often, and a plugin must never break because of that. Parsing goes straight
//! from JSON text to these types (no intermediate `Value`): it runs for most hook calls.

use std::borrow::Cow;

use serde_json::Value;

use crate::json_read::{self, Decode, Reader};

/// Implements [`Decode`] for a struct read from an object whose fields are all optional:
/// `Type { field: "jsonName", ... }`. Absent fields keep their default; unknown ones are
/// skipped; a field given twice is an error (as with serde's derive).
macro_rules! decode_object {
    ($ty:ident { $($field:ident: $name:literal),+ $(,)? }) => {
        impl Decode for $ty {
            fn decode(r: &mut Reader<'_>) -> json_read::Result<Self> {
                let mut v = Self::default();
                r.object(&[$($name),+], &mut |r, i| {
                    let mut k = 0;
                    $(
                        if i == k {
                            return r.read_into(&mut v.$field);
                        }
                        k += 1;
                    )+
                    let _ = k;
                    Ok(())
                })?;
                Ok(v)
            }
        }
    };
}

/// Token counts, on sessions, assistant messages and step-finish parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokens {
    pub input: f64,
    pub output: f64,
    pub reasoning: f64,
    pub cache: CacheTokens,
}

decode_object!(Tokens {
    input: "input",
    output: "output",
    reasoning: "reasoning",
    cache: "cache"
});

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheTokens {
    pub read: f64,
    pub write: f64,
}

decode_object!(CacheTokens {
    read: "read",
    write: "write"
});

/// `{created, updated}` on sessions; `{created, completed?}` on messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Times {
    pub created: f64,
    pub updated: Option<f64>,
    pub completed: Option<f64>,
}

decode_object!(Times {
    created: "created",
    updated: "updated",
    completed: "completed"
});

/// The session's model: `{id, providerID, variant}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionModel {
    pub id: Option<String>,
    pub provider_id: Option<String>,
}

decode_object!(SessionModel {
    id: "id",
    provider_id: "providerID"
});

/// A user message's model: `{providerID, modelID}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageModel {
    pub provider_id: Option<String>,
    pub model_id: Option<String>,
}

decode_object!(MessageModel {
    provider_id: "providerID",
    model_id: "modelID"
});

/// OpenCode's Session (`session.created`/`session.updated` `properties.info`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionInfo {
    pub id: String,
    pub project_id: Option<String>,
    pub directory: Option<String>,
    pub title: Option<String>,
    pub parent_id: Option<String>,
    pub model: Option<SessionModel>,
    pub cost: Option<f64>,
    pub tokens: Option<Tokens>,
    pub time: Times,
}

decode_object!(SessionInfo {
    id: "id",
    project_id: "projectID",
    directory: "directory",
    title: "title",
    parent_id: "parentID",
    model: "model",
    cost: "cost",
    tokens: "tokens",
    time: "time",
});

/// OpenCode's Message (`message.updated` `properties.info`), user or assistant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageInfo {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub time: Times,
    /// User messages name their model here.
    pub model: Option<MessageModel>,
    /// Assistant messages name their model here.
    pub model_id: Option<String>,
    pub provider_id: Option<String>,
    pub cost: Option<f64>,
    pub tokens: Option<Tokens>,
    pub finish: Option<String>,
    pub error: Option<Value>,
}

decode_object!(MessageInfo {
    id: "id",
    session_id: "sessionID",
    role: "role",
    time: "time",
    model: "model",
    model_id: "modelID",
    provider_id: "providerID",
    cost: "cost",
    tokens: "tokens",
    finish: "finish",
    error: "error",
});

impl MessageInfo {
    /// `provider/model` the message used, whichever role it is.
    pub fn model_and_provider(&self) -> (Option<String>, Option<String>) {
        match &self.model {
            Some(m) if m.model_id.is_some() => (m.model_id.clone(), m.provider_id.clone()),
            _ => (self.model_id.clone(), self.provider_id.clone()),
        }
    }
}

/// A tool call's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolState {
    pub status: String,
    pub input: Value,
    pub output: Option<String>,
    pub title: Option<String>,
    pub metadata: ToolMetadata,
    pub error: Option<String>,
    pub time: ToolTimes,
}

decode_object!(ToolState {
    status: "status",
    input: "input",
    output: "output",
    title: "title",
    metadata: "metadata",
    error: "error",
    time: "time",
});

/// What the mapping uses of a tool call's `metadata`: a shell command's `exit` code. The
/// rest is skipped unread (a shell's metadata repeats its whole output): any JSON is
/// accepted (what serde reads as `IgnoredAny` inside an object or array, any valid scalar
/// on its own), a value that is not an object has no exit code, and a repeated `exit`
/// counts as its last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolMetadata {
    pub exit: Option<Value>,
}

impl Decode for ToolMetadata {
    fn decode(r: &mut Reader<'_>) -> json_read::Result<Self> {
        let mut metadata = Self::default();
        match r.peek() {
            Some(b'{') => {}
            Some(b'[') => {
                r.skip()?;
                return Ok(metadata);
            }
            _ => {
                r.value()?;
                return Ok(metadata);
            }
        }
        r.object_keys(&mut |r, key| {
            if key == "exit" {
                metadata.exit = Some(r.value()?);
                Ok(())
            } else {
                r.skip()
            }
        })?;
        Ok(metadata)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolTimes {
    pub start: Option<f64>,
    pub end: Option<f64>,
}

decode_object!(ToolTimes {
    start: "start",
    end: "end"
});

/// A message part (`message.part.updated` `properties.part`). One struct for every part
/// type; fields that a type does not have stay empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartInfo {
    pub id: String,
    pub message_id: String,
    pub session_id: String,
    pub kind: String,
    /// `text` and `reasoning`.
    pub text: Option<String>,
    /// OpenCode-generated text (not typed by the user nor said by the model).
    pub synthetic: Option<bool>,
    /// `tool`.
    pub call_id: Option<String>,
    pub tool: Option<String>,
    pub state: Option<ToolState>,
}

decode_object!(PartInfo {
    id: "id",
    message_id: "messageID",
    session_id: "sessionID",
    kind: "type",
    text: "text",
    synthetic: "synthetic",
    call_id: "callID",
    tool: "tool",
    state: "state",
});

/// The events the engine acts on, parsed straight from the `event` hook's JSON
/// (`{id, type, properties}`, `type` before `properties`, as OpenCode writes it). Any
/// other type fails to parse, and is ignored.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `session.created` and `session.updated`.
    Session { info: SessionInfo },
    /// `session.status`.
    Status {
        session_id: String,
        status: SessionStatus,
    },
    /// `session.idle`.
    Idle { session_id: String },
    /// `message.updated`.
    Message { info: MessageInfo },
    /// `message.part.updated`.
    Part { part: PartInfo },
    /// `message.removed`.
    MessageRemoved { message_id: String },
    /// `vcs.branch.updated`.
    Branch { branch: Option<String> },
}

/// Reads `type`, then parses `properties` straight into that type's fields: one pass,
/// no intermediate value. `type` must come before `properties` (as OpenCode writes
/// it); an unknown type is an error, and the event is ignored.
impl Decode for Event {
    fn decode(r: &mut Reader<'_>) -> json_read::Result<Self> {
        let mut kind: Option<Cow<'_, str>> = None;
        let mut event = None;
        r.object_keys(&mut |r, key| {
            match key {
                "type" => kind = Some(r.str()?),
                "properties" => match kind.as_deref() {
                    Some(kind) => event = Some(properties(r, kind)?),
                    None => return Err(r.error("`properties` before `type`")),
                },
                _ => r.skip()?,
            }
            Ok(())
        })?;
        event.ok_or_else(|| r.error("an event without `type` and `properties`"))
    }
}

/// The `properties` of each event type, as OpenCode names its fields.
fn properties(r: &mut Reader<'_>, kind: &str) -> json_read::Result<Event> {
    Ok(match kind {
        "session.created" | "session.updated" => Event::Session {
            info: required(r, "info")?,
        },
        "session.status" => {
            let (mut session_id, mut status) = (None, SessionStatus::default());
            r.object(&["sessionID", "status"], &mut |r, i| {
                if i == 0 {
                    session_id = Some(r.read()?);
                } else {
                    status = r.read()?;
                }
                Ok(())
            })?;
            Event::Status {
                session_id: session_id.ok_or_else(|| r.error("missing field `sessionID`"))?,
                status,
            }
        }
        "session.idle" => Event::Idle {
            session_id: required(r, "sessionID")?,
        },
        "message.updated" => Event::Message {
            info: required(r, "info")?,
        },
        "message.part.updated" => Event::Part {
            part: required(r, "part")?,
        },
        "message.removed" => Event::MessageRemoved {
            message_id: required(r, "messageID")?,
        },
        "vcs.branch.updated" => Event::Branch {
            branch: field::<Option<String>>(r, "branch")?.flatten(),
        },
        _ => return Err(r.error("ignored event type")),
    })
}

/// `{name: T, ...}`'s `T`, if present.
fn field<T: Decode>(r: &mut Reader<'_>, name: &str) -> json_read::Result<Option<T>> {
    let mut value = None;
    r.object(&[name], &mut |r, _| {
        value = Some(r.read()?);
        Ok(())
    })?;
    Ok(value)
}

/// `{name: T, ...}`'s `T`, which must be present.
fn required<T: Decode>(r: &mut Reader<'_>, name: &str) -> json_read::Result<T> {
    field(r, name)?.ok_or_else(|| r.error("missing field"))
}

/// `session.status`'s `{type: "busy" | "idle" | ...}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStatus {
    pub kind: String,
}

decode_object!(SessionStatus { kind: "type" });

/// The `chat.message` hook's `{i: input, o: {message, parts}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMessage {
    pub o: ChatMessageOutput,
}

decode_object!(ChatMessage { o: "o" });

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMessageOutput {
    pub message: Option<MessageInfo>,
    pub parts: Vec<PartInfo>,
}

decode_object!(ChatMessageOutput {
    message: "message",
    parts: "parts"
});

/// The plugin function's input, minus the SDK client and shell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginInput {
    pub directory: Option<String>,
    pub worktree: Option<String>,
    pub project: Option<Project>,
}

decode_object!(PluginInput {
    directory: "directory",
    worktree: "worktree",
    project: "project"
});

/// OpenCode's Project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    pub id: Option<String>,
    pub worktree: Option<String>,
    pub vcs: Option<String>,
}

decode_object!(Project {
    id: "id",
    worktree: "worktree",
    vcs: "vcs"
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_of_missing_null_and_unknown_fields() {
        let info: SessionInfo = json_read::from_value(&json!({
            "id": "ses_1", "title": null, "tokens": {"input": 1, "cache": {"read": 2}},
            "brandNew": {"x": 1}, "time": {"created": 10}
        }))
        .unwrap();
        assert_eq!(info.id, "ses_1");
        assert_eq!(info.title, None);
        assert_eq!(info.cost, None);
        let tokens = info.tokens.unwrap();
        assert_eq!(
            (tokens.input, tokens.cache.read, tokens.output),
            (1.0, 2.0, 0.0)
        );
        assert_eq!(info.time.created, 10.0);
    }

    #[test]
    fn events_by_type() {
        let parse = |v: Value| json_read::from_str::<Event>(&v.to_string()).unwrap();
        assert!(matches!(
            parse(json!({"id": "e", "type": "session.updated", "properties": {"sessionID": "s", "info": {"id": "s"}}})),
            Event::Session { info } if info.id == "s"
        ));
        assert!(matches!(
            parse(json!({"type": "session.status", "properties": {"sessionID": "s", "status": {"type": "busy"}}, "id": "e"})),
            Event::Status { status, .. } if status.kind == "busy"
        ));
        for other in [
            json!({"type": "brand.new", "properties": {"x": [1, 2]}}),
            json!({"type": "message.part.delta", "properties": {"delta": "x"}}),
        ] {
            assert!(json_read::from_str::<Event>(&other.to_string()).is_err());
        }
        assert!(
            json_read::from_str::<Event>("{\"type\": \"session.idle\", \"properties\": 5}")
                .is_err()
        );
    }

    #[test]
    fn message_model_from_either_role() {
        let user: MessageInfo = json_read::from_value(&json!({
            "id": "m", "role": "user", "model": {"providerID": "p", "modelID": "m1"}
        }))
        .unwrap();
        assert_eq!(
            user.model_and_provider(),
            (Some("m1".into()), Some("p".into()))
        );
        let asst: MessageInfo = json_read::from_value(&json!({
            "id": "m", "role": "assistant", "modelID": "m2", "providerID": "q"
        }))
        .unwrap();
        assert_eq!(
            asst.model_and_provider(),
            (Some("m2".into()), Some("q".into()))
        );
    }
}
