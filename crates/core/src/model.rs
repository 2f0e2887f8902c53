//! OpenCode's data as plugins receive it (hook inputs, events) and as it stores it
//! (`opencode.db` rows, the older JSON tree): one set of serde types for both, so live
//! sync and backfill read the same facts. Every field is optional or defaulted and
//! unknown fields are ignored: OpenCode adds fields often, and a plugin must never break
//! because of that.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserialises any JSON number (or a missing/null/mistyped value) as `f64`, defaulting
/// to 0. OpenCode's counters are integers today, but a float must not fail the event.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Value::deserialize(d)?.as_f64().unwrap_or_default())
}

fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Value::deserialize(d)?.as_f64())
}

/// Any nested object: a null or mistyped value becomes the default instead of an error.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).unwrap_or_default())
}

fn lenient_opt<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        _ => String::new(),
    })
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

/// Token counts, on sessions, assistant messages and step-finish parts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Tokens {
    #[serde(deserialize_with = "lenient_f64")]
    pub input: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub output: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub reasoning: f64,
    #[serde(deserialize_with = "lenient")]
    pub cache: CacheTokens,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CacheTokens {
    #[serde(deserialize_with = "lenient_f64")]
    pub read: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub write: f64,
}

/// `{created, updated}` on sessions; `{created, completed?}` on messages.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Times {
    #[serde(deserialize_with = "lenient_f64")]
    pub created: f64,
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub updated: Option<f64>,
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub completed: Option<f64>,
}

/// The session's model: `{id, providerID, variant}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionModel {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub id: Option<String>,
    #[serde(rename = "providerID", deserialize_with = "lenient_opt_string")]
    pub provider_id: Option<String>,
}

/// A user message's model: `{providerID, modelID}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageModel {
    #[serde(rename = "providerID", deserialize_with = "lenient_opt_string")]
    pub provider_id: Option<String>,
    #[serde(rename = "modelID", deserialize_with = "lenient_opt_string")]
    pub model_id: Option<String>,
}

/// OpenCode's Session (`session.created`/`session.updated` `properties.info`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(rename = "projectID", deserialize_with = "lenient_opt_string")]
    pub project_id: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub directory: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub title: Option<String>,
    #[serde(rename = "parentID", deserialize_with = "lenient_opt_string")]
    pub parent_id: Option<String>,
    #[serde(deserialize_with = "lenient_opt")]
    pub model: Option<SessionModel>,
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub cost: Option<f64>,
    #[serde(deserialize_with = "lenient_opt")]
    pub tokens: Option<Tokens>,
    #[serde(deserialize_with = "lenient")]
    pub time: Times,
}

/// OpenCode's Message (`message.updated` `properties.info`), user or assistant.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(rename = "sessionID", deserialize_with = "lenient_string")]
    pub session_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub role: String,
    #[serde(deserialize_with = "lenient")]
    pub time: Times,
    /// User messages name their model here.
    #[serde(deserialize_with = "lenient_opt")]
    pub model: Option<MessageModel>,
    /// Assistant messages name their model here.
    #[serde(rename = "modelID", deserialize_with = "lenient_opt_string")]
    pub model_id: Option<String>,
    #[serde(rename = "providerID", deserialize_with = "lenient_opt_string")]
    pub provider_id: Option<String>,
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub cost: Option<f64>,
    #[serde(deserialize_with = "lenient_opt")]
    pub tokens: Option<Tokens>,
    #[serde(deserialize_with = "lenient_opt_string")]
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
    #[serde(deserialize_with = "lenient_string")]
    pub status: String,
    pub input: Value,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub output: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub title: Option<String>,
    pub metadata: Value,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub error: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub time: ToolTimes,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolTimes {
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub start: Option<f64>,
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub end: Option<f64>,
}

/// A message part (`message.part.updated` `properties.part`). One struct for every part
/// type; fields that a type does not have stay empty.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PartInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(rename = "messageID", deserialize_with = "lenient_string")]
    pub message_id: String,
    #[serde(rename = "sessionID", deserialize_with = "lenient_string")]
    pub session_id: String,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
    /// `text` and `reasoning`.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub text: Option<String>,
    /// OpenCode-generated text (not typed by the user nor said by the model).
    #[serde(deserialize_with = "lenient_opt")]
    pub synthetic: Option<bool>,
    /// `tool`.
    #[serde(rename = "callID", deserialize_with = "lenient_opt_string")]
    pub call_id: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub tool: Option<String>,
    #[serde(deserialize_with = "lenient_opt")]
    pub state: Option<ToolState>,
}

/// An `event` hook payload: `{id, type, properties}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
    pub properties: Value,
}

/// The plugin function's input, minus the SDK client and shell.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PluginInput {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub directory: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub worktree: Option<String>,
    #[serde(deserialize_with = "lenient_opt")]
    pub project: Option<Project>,
}

/// OpenCode's Project.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(deserialize_with = "lenient_opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub worktree: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub vcs: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_of_missing_mistyped_and_unknown_fields() {
        let info: SessionInfo = serde_json::from_value(json!({
            "id": "ses_1", "title": 5, "cost": "free", "tokens": {"input": 1.0, "cache": null},
            "brandNew": {"x": 1}, "time": {"created": 10}
        }))
        .unwrap();
        assert_eq!(info.id, "ses_1");
        assert_eq!(info.title, None);
        assert_eq!(info.cost, None);
        assert_eq!(info.tokens.unwrap().input, 1.0);
        assert_eq!(info.time.created, 10.0);
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
