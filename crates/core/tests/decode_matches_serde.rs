//! Differential test: [`opencode_sync_core::json_read`] reads OpenCode's data exactly as
//! the serde derive it replaced did. `serde_model` is the old model (serde derive +
//! serde_json, kept here as the oracle only); both decode the same text (the recorded
//! hook stream, then the same with values replaced, removed, duplicated or cut short, and
//! random JSON), and must agree on whether it decodes and on every field (compared
//! through `Debug`, which prints both the same way).

mod support;

use opencode_sync_core::json_read;
use opencode_sync_core::model;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{RECORDED, mutate};

#[allow(dead_code, unused_qualifications, missing_debug_implementations)]
mod serde_model {
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
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<ToolMetadata, A::Error> {
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
                fn visit_seq<A: SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<ToolMetadata, A::Error> {
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
                            other => {
                                map.next_value::<IgnoredAny>()?;
                                return Err(A::Error::custom(format!(
                                    "ignored event type {other}"
                                )));
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
    }

    /// OpenCode's Project.
    #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
    #[serde(default)]
    pub struct Project {
        pub id: Option<String>,
        pub worktree: Option<String>,
        pub vcs: Option<String>,
    }
}

/// The recorded hook inputs, as JSON text.
fn recorded() -> Vec<String> {
    RECORDED
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["input"].to_string())
        .collect()
}

/// Both decoders agree on `text`, for every type read from a whole text.
fn agree(text: &str) -> Result<(), TestCaseError> {
    fn one<Old, New>(text: &str) -> Result<(), TestCaseError>
    where
        Old: serde::de::DeserializeOwned + std::fmt::Debug,
        New: json_read::Decode + std::fmt::Debug,
    {
        let old = format!("{:?}", serde_json::from_str::<Old>(text).ok());
        let new = format!("{:?}", json_read::from_str::<New>(text).ok());
        prop_assert_eq!(old, new, "{} for {}", std::any::type_name::<New>(), text);
        Ok(())
    }
    one::<serde_model::Event, model::Event>(text)?;
    one::<serde_model::ChatMessage, model::ChatMessage>(text)?;
    one::<serde_model::PluginInput, model::PluginInput>(text)?;
    one::<serde_model::SessionInfo, model::SessionInfo>(text)?;
    one::<serde_model::MessageInfo, model::MessageInfo>(text)?;
    one::<serde_model::PartInfo, model::PartInfo>(text)?;
    one::<serde_model::ToolState, model::ToolState>(text)?;
    Ok(())
}

const KEYS: &[&str] = &[
    "type",
    "properties",
    "info",
    "part",
    "id",
    "sessionID",
    "messageID",
    "role",
    "time",
    "created",
    "completed",
    "updated",
    "tokens",
    "input",
    "output",
    "reasoning",
    "cache",
    "read",
    "write",
    "cost",
    "state",
    "status",
    "text",
    "synthetic",
    "tool",
    "callID",
    "metadata",
    "error",
    "title",
    "modelID",
    "providerID",
    "model",
    "directory",
    "parentID",
    "projectID",
    "branch",
    "finish",
    "start",
    "end",
    "o",
    "message",
    "parts",
    "worktree",
    "project",
    "vcs",
];

const EVENT_TYPES: &[&str] = &[
    "session.created",
    "session.updated",
    "session.status",
    "session.idle",
    "message.updated",
    "message.part.updated",
    "message.removed",
    "vcs.branch.updated",
    "message.part.delta",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        (0u32..4000).prop_map(|n| Value::from(f64::from(n) / 1000.0)),
        "\\PC{0,12}".prop_map(Value::String),
        "[\\\\\"é😀\u{1}\u{2028}a]{0,8}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| Value::String(k.to_owned())),
        prop::sample::select(EVENT_TYPES).prop_map(|k| Value::String(k.to_owned())),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
                        1 => "\\PC{0,6}"
                    ],
                    inner
                ),
                0..7
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Inserts `"key": value,` after the `nth` `{` of `text` (a duplicate key, often).
fn insert_field(text: &str, nth: usize, key: &str, value: &Value) -> String {
    let opens: Vec<usize> = text.match_indices('{').map(|(i, _)| i).collect();
    if opens.is_empty() {
        return text.to_owned();
    }
    let at = opens[nth % opens.len()] + 1;
    format!("{}{}:{},{}", &text[..at], json!(key), value, &text[at..])
}

#[test]
fn recorded_stream_decodes_the_same() {
    for text in recorded() {
        agree(&text).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        for key in ["properties", "o", "i"] {
            if let Some(inner) = v.get(key) {
                agree(&inner.to_string()).unwrap();
                for inner_key in ["info", "part", "message"] {
                    if let Some(x) = inner.get(inner_key) {
                        agree(&x.to_string()).unwrap();
                    }
                }
            }
        }
    }
}

#[test]
fn edge_cases_decode_the_same() {
    for text in [
        r#"{"type": "session.updated", "properties": {"info": {"id": "s", "time": [5, 6]}}}"#,
        r#"{"type": "session.updated", "properties": {"info": {"id": "s", "time": [5, 6, 7, 8]}}}"#,
        r#"{"type": "session.updated", "properties": {"info": ["s", "p"]}}"#,
        r#"{"type": "session.updated", "properties": ["x"]}"#,
        r#"{"type": "session.updated", "properties": []}"#,
        r#"{"type": "session.status", "properties": ["s"]}"#,
        r#"{"type": "session.status", "properties": {"sessionID": "s", "status": null}}"#,
        r#"{"type": "vcs.branch.updated", "properties": {"branch": null}}"#,
        r#"{"type": "vcs.branch.updated", "properties": {}}"#,
        r#"{"type": "vcs.branch.updated", "properties": {"branch": "a", "branch": "b"}}"#,
        r#"{"type": "session.idle", "type": "session.idle", "properties": {"sessionID": "s"}}"#,
        r#"{"type": "session.idle", "properties": {"sessionID": "s"}, "properties": {"sessionID": "t"}}"#,
        r#"{"properties": {"sessionID": "s"}, "type": "session.idle"}"#,
        r#"{"type": null, "properties": {}}"#,
        r#"{"type": "message.removed", "properties": {"messageID": "\ud83d\ude00"}}"#,
        r#"{"type": "message.removed", "properties": {"messageID": "\ud83d"}}"#,
        r#"{"type": "message.removed", "properties": {"messageID": "m", "x": "\ud83d"}}"#,
        r#"{"o": {"parts": null}}"#,
        r#"{"o": {"parts": [], "message": null}}"#,
        r#"{"o": {"parts": [{"id": "p", "state": {"input": null, "metadata": null, "error": null}}]}}"#,
        r#"[{"parts": [["p", "m", "s", "text", "hi"]]}]"#,
        r#"{"id": "s", "cost": 1e400}"#,
        r#"{"id": "s", "cost": 123456789012345678901234567890}"#,
        r#"{"id": "s", "cost": -0}"#,
        r#"{"id": "s", "cost": 0.1e1}"#,
        r#"{"id": "s", "cost": 1.7976931348623157e308}"#,
        r#"{"id": "s", "cost": 4.9e-324}"#,
        r#"{"id": "s", "cost": 2.2250738585072011e-308}"#,
        r#"{"id": "s", "tokens": {"input": 9007199254740993}}"#,
        r#"{"id": "s", "id": "t"}"#,
        r#"{"id": 5}"#,
        r#"{"id": "s"} x"#,
        r#"{"id": "s",}"#,
        " {\"id\" : \"s\" } \n",
        "{\"id\": \"a\u{7f}b\"}",
        "{\"id\": \"tab\there\"}",
        r#"{"directory": "/", "worktree": "/w", "project": {"id": "p", "worktree": "/w", "vcs": "git"}}"#,
        r#"{"state": {"input": {"a": [1, {"b": "\u0000"}]}, "metadata": 5, "time": {"start": 1}}}"#,
        r#"{"state": {"input": {"a": "\ud800"}}}"#,
        r#"{"state": {"metadata": {"exit": 3, "output": "\ud800", "exit": 4}}}"#,
        r#"{"state": {"metadata": {"exit": "\ud800"}}}"#,
        r#"{"state": {"metadata": ["\ud800", {"exit": 1}]}}"#,
        r#"{"state": {"metadata": "\ud800"}}"#,
        r#"{"state": {"metadata": "ok"}}"#,
        r#"{"state": {"metadata": 1e400}}"#,
        r#"{"state": {"metadata": {"exit": 1e400}}}"#,
        r#"{"state": {"metadata": {"exit": 2}, "metadata": {}}}"#,
        "",
        "null",
        "[]",
        "{}",
    ] {
        agree(text).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_recorded_input_decodes_the_same(
        i in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 1..6),
        replacement in prop::option::of(arb_json()),
    ) {
        let texts = recorded();
        let mut v: Value = serde_json::from_str(i.get::<String>(&texts)).unwrap();
        mutate(&mut v, &path, replacement);
        agree(&v.to_string())?;
    }

    #[test]
    fn duplicated_fields_decode_the_same(
        i in any::<prop::sample::Index>(),
        nth in any::<usize>(),
        key in prop::sample::select(KEYS),
        value in arb_json(),
    ) {
        let texts = recorded();
        agree(&insert_field(i.get::<String>(&texts), nth, key, &value))?;
    }

    #[test]
    fn cut_input_decodes_the_same(i in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let texts = recorded();
        let text = i.get::<String>(&texts);
        let end = cut.index(text.len() + 1);
        if let Some(prefix) = text.get(..end) {
            agree(prefix)?;
        }
    }

    #[test]
    fn random_events_decode_the_same(
        kind in prop::sample::select(EVENT_TYPES),
        props in arb_json(),
        info in arb_json(),
    ) {
        agree(&json!({"type": kind, "properties": props}).to_string())?;
        agree(&json!({"type": kind, "properties": {"sessionID": "s", "info": info.clone(), "part": info.clone(), "messageID": "m", "branch": info.clone(), "status": info.clone()}}).to_string())?;
        agree(&json!({"o": {"message": info.clone(), "parts": [info.clone()]}}).to_string())?;
        agree(&info.to_string())?;
    }
}
