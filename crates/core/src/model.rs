//! OpenCode's data as plugins receive it (hook inputs, events) and as it stores it
//! (`opencode.db` rows, the older JSON tree): one set of types, read through serde, so
//! live sync and backfill read the same facts. Every field is optional or defaulted and
//! unknown fields and event types are ignored: OpenCode adds fields often, and a plugin
//! must never break because of that. A value of the wrong type is an error (the input is
//! then ignored), `null` reads as `None` for an `Option`. Parsing goes straight from JSON
//! text to these types (no intermediate `Value`): it runs for most hook calls.

use serde::Deserialize;
use serde_json::Value;

/// Token counts, on sessions, assistant messages and step-finish parts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub input: f64,
    pub output: f64,
    pub reasoning: f64,
    pub cache: CacheTokens,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CacheTokens {
    pub read: f64,
    pub write: f64,
}

/// `{created, updated}` on sessions; `{created, completed?}` on messages.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Times {
    pub created: f64,
    pub updated: Option<f64>,
    pub completed: Option<f64>,
}

/// The session's model: `{id, providerID, variant}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionModel {
    pub id: Option<String>,
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
}

/// A user message's model: `{providerID, modelID}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageModel {
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
    #[serde(rename = "modelID")]
    pub model_id: Option<String>,
}

/// OpenCode's Session (`session.created`/`session.updated` `properties.info`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionInfo {
    pub id: String,
    #[serde(rename = "projectID")]
    pub project_id: Option<String>,
    pub directory: Option<String>,
    pub title: Option<String>,
    #[serde(rename = "parentID")]
    pub parent_id: Option<String>,
    pub model: Option<SessionModel>,
    pub cost: Option<f64>,
    pub tokens: Option<Tokens>,
    pub time: Times,
}

/// OpenCode's Message (`message.updated` `properties.info`), user or assistant.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageInfo {
    pub id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub role: String,
    pub time: Times,
    /// User messages name their model here.
    pub model: Option<MessageModel>,
    /// Assistant messages name their model here.
    #[serde(rename = "modelID")]
    pub model_id: Option<String>,
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
    pub cost: Option<f64>,
    pub tokens: Option<Tokens>,
    pub finish: Option<String>,
    pub error: Option<Value>,
}

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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolState {
    pub status: String,
    pub input: Value,
    pub output: Option<String>,
    pub title: Option<String>,
    pub metadata: ToolMetadata,
    pub error: Option<String>,
    pub time: ToolTimes,
}

/// Only `exit`, from an object; any other JSON is skipped as `IgnoredAny` skips it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolMetadata {
    pub exit: Option<Value>,
}

impl<'de> Deserialize<'de> for ToolMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct Meta;
        impl<'de> Visitor<'de> for Meta {
            type Value = ToolMetadata;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolMetadata, A::Error> {
                let mut meta = ToolMetadata::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "exit" {
                        meta.exit = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(meta)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ToolMetadata, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ToolMetadata::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
            fn visit_unit<E>(self) -> Result<ToolMetadata, E> {
                Ok(ToolMetadata::default())
            }
        }
        d.deserialize_any(Meta)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolTimes {
    pub start: Option<f64>,
    pub end: Option<f64>,
}

/// A message part (`message.part.updated` `properties.part`). One struct for every part
/// type; fields that a type does not have stay empty.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PartInfo {
    pub id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `text` and `reasoning`.
    pub text: Option<String>,
    /// OpenCode-generated text (not typed by the user nor said by the model).
    pub synthetic: Option<bool>,
    /// `tool`.
    #[serde(rename = "callID")]
    pub call_id: Option<String>,
    pub tool: Option<String>,
    pub state: Option<ToolState>,
}

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
    /// `server.instance.disposed`: the instance is ending (1.2 to 1.14 emit it where they
    /// never call the plugin's `dispose`).
    InstanceDisposed,
}

/// The `properties` of each event type, as OpenCode names its fields.
#[derive(Deserialize)]
struct InfoProps<T> {
    info: T,
}

#[derive(Deserialize)]
struct StatusProps {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(default)]
    status: SessionStatus,
}

#[derive(Deserialize)]
struct IdleProps {
    #[serde(rename = "sessionID")]
    session_id: String,
}

#[derive(Deserialize)]
struct PartProps {
    part: PartInfo,
}

#[derive(Deserialize)]
struct RemovedProps {
    #[serde(rename = "messageID")]
    message_id: String,
}

#[derive(Deserialize)]
struct BranchProps {
    #[serde(default)]
    branch: Option<String>,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

/// Reads `type`, then parses `properties` straight into that type's fields: one pass,
/// no intermediate value (hand written because serde's adjacently tagged enums buffer
/// the content, which doubles both the work and the wasm code).
struct EventVisitor;

impl<'de> serde::de::Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an OpenCode event object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        use serde::de::{Error, IgnoredAny};
        let mut kind: Option<std::borrow::Cow<'de, str>> = None;
        let mut event = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value()?),
                "properties" => {
                    let kind = kind
                        .as_deref()
                        .ok_or_else(|| A::Error::custom("`properties` before `type`"))?;
                    event = Some(match kind {
                        "session.created" | "session.updated" => Event::Session {
                            info: map.next_value::<InfoProps<SessionInfo>>()?.info,
                        },
                        "session.status" => {
                            let p: StatusProps = map.next_value()?;
                            Event::Status {
                                session_id: p.session_id,
                                status: p.status,
                            }
                        }
                        "session.idle" => Event::Idle {
                            session_id: map.next_value::<IdleProps>()?.session_id,
                        },
                        "message.updated" => Event::Message {
                            info: map.next_value::<InfoProps<MessageInfo>>()?.info,
                        },
                        "message.part.updated" => Event::Part {
                            part: map.next_value::<PartProps>()?.part,
                        },
                        "message.removed" => Event::MessageRemoved {
                            message_id: map.next_value::<RemovedProps>()?.message_id,
                        },
                        "vcs.branch.updated" => Event::Branch {
                            branch: map.next_value::<BranchProps>()?.branch,
                        },
                        "server.instance.disposed" => {
                            map.next_value::<IgnoredAny>()?;
                            Event::InstanceDisposed
                        }
                        other => {
                            map.next_value::<IgnoredAny>()?;
                            return Err(A::Error::custom(format!("ignored event type {other}")));
                        }
                    });
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        event.ok_or_else(|| A::Error::custom("an event without `type` and `properties`"))
    }
}

/// `session.status`'s `{type: "busy" | "idle" | ...}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionStatus {
    #[serde(rename = "type")]
    pub kind: String,
}

/// The `chat.message` hook's `{i: input, o: {message, parts}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChatMessage {
    pub o: ChatMessageOutput,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChatMessageOutput {
    pub message: Option<MessageInfo>,
    pub parts: Vec<PartInfo>,
}

/// The plugin function's input, minus the SDK client and shell.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PluginInput {
    pub directory: Option<String>,
    pub worktree: Option<String>,
    pub project: Option<Project>,
    /// OpenCode 0.5.x passes `{client, app, $}`: no `directory`, but `app.path.cwd`.
    pub app: Option<AppInfo>,
}

impl PluginInput {
    /// The instance's directory: `directory`, else 0.5.x's `app.path.cwd`.
    pub fn directory(&self) -> Option<&str> {
        self.directory
            .as_deref()
            .or_else(|| self.app.as_ref()?.path.as_ref()?.cwd.as_deref())
    }

    /// 0.5.x's project root, `app.path.root`.
    pub fn app_root(&self) -> Option<&str> {
        self.app.as_ref()?.path.as_ref()?.root.as_deref()
    }
}

/// OpenCode 0.5.x's App.Info, as far as the plugin reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AppInfo {
    pub path: Option<AppPath>,
}

/// `app.path`: the directory OpenCode runs in and its project root.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AppPath {
    pub cwd: Option<String>,
    pub root: Option<String>,
}

/// OpenCode's Project.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Project {
    pub id: Option<String>,
    pub worktree: Option<String>,
    pub vcs: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_of_missing_null_and_unknown_fields() {
        let info: SessionInfo = serde_json::from_value(json!({
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
        let parse = |v: Value| serde_json::from_str::<Event>(&v.to_string()).unwrap();
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
            assert!(serde_json::from_str::<Event>(&other.to_string()).is_err());
        }
        assert!(
            serde_json::from_str::<Event>("{\"type\": \"session.idle\", \"properties\": 5}")
                .is_err()
        );
    }

    #[test]
    fn wrong_types_and_repeats_are_refused_nulls_are_none() {
        for bad in [
            json!({"id": 5}),
            json!({"id": "s", "cost": "0.1"}),
            json!({"id": "s", "tokens": {"input": "1"}}),
            json!({"id": "s", "time": {"created": null}}),
            json!({"id": "s", "model": 5}),
            json!(["s", 1]),
        ] {
            assert!(
                serde_json::from_value::<SessionInfo>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_str::<SessionInfo>(r#"{"id": "a", "id": "b"}"#).is_err());
        let part: PartInfo = serde_json::from_value(json!({
            "id": "p", "type": "tool", "text": null, "state": {"status": "completed",
            "input": {"x": [1]}, "metadata": [1, 2], "time": {"start": null}}
        }))
        .unwrap();
        let state = part.state.unwrap();
        assert_eq!(
            (part.text, state.metadata.exit, state.time.start),
            (None, None, None)
        );
        for metadata in [
            json!({"exit": 3, "output": "x"}),
            json!({"output": {}, "exit": 3}),
        ] {
            let state: ToolState = serde_json::from_value(json!({"metadata": metadata})).unwrap();
            assert_eq!(state.metadata.exit, Some(json!(3)));
        }
    }

    #[test]
    fn message_model_from_either_role() {
        let user: MessageInfo = serde_json::from_value(json!({
            "id": "m", "role": "user", "model": {"providerID": "p", "modelID": "m1"}
        }))
        .unwrap();
        assert_eq!(
            user.model_and_provider(),
            (Some("m1".into()), Some("p".into()))
        );
        let asst: MessageInfo = serde_json::from_value(json!({
            "id": "m", "role": "assistant", "modelID": "m2", "providerID": "q"
        }))
        .unwrap();
        assert_eq!(
            asst.model_and_provider(),
            (Some("m2".into()), Some("q".into()))
        );
    }
}
