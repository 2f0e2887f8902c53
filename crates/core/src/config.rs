//! The credentials file (`config.json`) and the settings derived from it.
//!
//! The file is JSON: `{"convexUrl": ..., "apiKey": ..., ...options}`. Keys this version
//! does not know are kept on every rewrite, so an older CLI never deletes what a newer
//! plugin stored. `OPENCODE_SYNC_URL` and `OPENCODE_SYNC_API_KEY` override the file, for
//! CI machines that keep secrets in the environment.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api_key::{ApiKey, KeyError};
use crate::endpoint::{SiteUrl, UrlError};
use crate::paths::{ENV_API_KEY, ENV_URL, Environment};

/// JSON key of the deployment URL.
pub const KEY_URL: &str = "convexUrl";
/// JSON key of the API key.
pub const KEY_API_KEY: &str = "apiKey";

/// The credentials file as stored: the two credentials plus every other key, in order.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(rename = "convexUrl", default, skip_serializing_if = "Option::is_none")]
    pub convex_url: Option<String>,
    #[serde(rename = "apiKey", default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Options and keys unknown to this version, preserved verbatim.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("convex_url", &self.convex_url)
            .field("api_key", &self.api_key.as_deref().map(mask_raw))
            .field("rest", &self.rest)
            .finish()
    }
}

/// Why the credentials file could not be read. The inner error is part of the message,
/// not a `source`: a chain printer (anyhow's `{:#}`) would print it twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON: serde_json's reason, with its line and column.
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("the top level must be a JSON object")]
    NotAnObject,
    /// Valid JSON holding a credential of the wrong type: says which key and what it
    /// takes (not "not valid JSON", which sent people looking for a syntax error).
    #[error("{0}")]
    NotAString(NotAString),
}

impl From<serde_json::Error> for ConfigError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

impl From<NotAString> for ConfigError {
    fn from(e: NotAString) -> Self {
        Self::NotAString(e)
    }
}

/// A credential stored as something other than a string. Its own type rather than
/// `serde_json::Error::invalid_type`, which would bring serde's float formatting into the
/// plugin's wasm for the sake of one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{key}\" must be a string (the {}), not {found}", meaning(key))]
pub struct NotAString {
    /// The key whose value has the wrong type.
    pub key: &'static str,
    /// What was found, as serde says it (``integer `5` ``, `sequence`, ...).
    pub found: String,
}

/// What a credential key holds, for a message.
fn meaning(key: &str) -> &'static str {
    if key == KEY_URL {
        "deployment URL"
    } else {
        "API key"
    }
}

impl ConfigFile {
    /// Parses the file's text. An empty file is an empty config; a UTF-8 byte order mark
    /// at the start (Windows editors write one) is skipped.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        // Through a `Value` rather than the derive, so that a credential of the wrong type
        // names its key and what it takes (see [`NotAString`]); the verdicts are the
        // derive's.
        let Value::Object(mut rest) = serde_json::from_str::<Value>(text)? else {
            return Err(ConfigError::NotAnObject);
        };
        let convex_url = take_string(&mut rest, KEY_URL)?;
        let api_key = take_string(&mut rest, KEY_API_KEY)?;
        Ok(Self {
            convex_url,
            api_key,
            rest,
        })
    }

    /// The text to write: pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    }

    /// Stores credentials, keeping every other key.
    pub fn set_credentials(&mut self, url: &SiteUrl, key: &ApiKey) {
        self.convex_url = Some(url.as_str().to_owned());
        self.api_key = Some(key.expose().to_owned());
    }

    /// Removes the credentials, keeping options. Returns which ones were present.
    pub fn clear_credentials(&mut self) -> (bool, bool) {
        (
            self.convex_url.take().is_some(),
            self.api_key.take().is_some(),
        )
    }

    /// Whether nothing at all is stored.
    pub fn is_empty(&self) -> bool {
        self.convex_url.is_none() && self.api_key.is_none() && self.rest.is_empty()
    }

    /// The options stored in this file, with a note for each value that was ignored.
    pub fn options(&self) -> (Options, Vec<String>) {
        Options::default().merged_with(&self.rest)
    }
}

/// Removes `key` from `map`, keeping the order of the rest: its string, or `None` when it
/// is missing or `null`.
fn take_string(
    map: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, NotAString> {
    let found = match map.shift_remove(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => return Ok(Some(s)),
        // A float in serde_json's shortest form (serde's own writes `1e20` out in full).
        Some(scalar @ (Value::Bool(_) | Value::Number(_))) => {
            let what = match &scalar {
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_f64() => "floating point",
                _ => "integer",
            };
            format!("{what} `{scalar}`")
        }
        Some(Value::Array(_)) => "sequence".to_owned(),
        Some(Value::Object(_)) => "map".to_owned(),
    };
    Err(NotAString { key, found })
}

/// Masks a raw key string that may not even be valid, for diagnostics.
pub fn mask_raw(raw: &str) -> String {
    ApiKey::parse(raw).map_or_else(|_| "(invalid key)".to_owned(), |k| k.masked())
}

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    Env(&'static str),
}

impl Source {
    /// Where, as a sentence says it: "in the config file", "in $OPENCODE_SYNC_URL".
    pub fn place(&self) -> String {
        match self {
            Self::File => "in the config file".to_owned(),
            Self::Env(name) => format!("in ${name}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => f.write_str("config file"),
            Self::Env(name) => write!(f, "${name}"),
        }
    }
}

/// Credentials that are present and well-formed (not yet proven by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub url: SiteUrl,
    pub key: ApiKey,
    pub url_source: Source,
    pub key_source: Source,
}

/// Why there are no usable credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("not logged in: run `opencode-sync login`")]
    NotConfigured,
    #[error("no deployment URL is set: run `opencode-sync login` (or set {ENV_URL})")]
    MissingUrl,
    #[error("no API key is set: run `opencode-sync login` (or set {ENV_API_KEY})")]
    MissingKey,
    #[error("the deployment URL {} is invalid: {error}", origin.place())]
    InvalidUrl { origin: Source, error: UrlError },
    #[error("the API key {} is invalid: {error}", origin.place())]
    InvalidKey { origin: Source, error: KeyError },
}

/// Combines the file (if any) with the environment overrides.
pub fn resolve_credentials(
    file: Option<&ConfigFile>,
    env: &dyn Environment,
) -> Result<Credentials, CredentialsError> {
    let pick = |var: &'static str, stored: Option<&String>| match env.var(var) {
        Some(v) => Some((v, Source::Env(var))),
        None => stored
            .filter(|s| !s.trim().is_empty())
            .map(|s| (s.clone(), Source::File)),
    };
    let url = pick(ENV_URL, file.and_then(|f| f.convex_url.as_ref()));
    let key = pick(ENV_API_KEY, file.and_then(|f| f.api_key.as_ref()));
    let ((url, url_source), (key, key_source)) = match (url, key) {
        (Some(u), Some(k)) => (u, k),
        (None, None) => return Err(CredentialsError::NotConfigured),
        (None, Some(_)) => return Err(CredentialsError::MissingUrl),
        (Some(_), None) => return Err(CredentialsError::MissingKey),
    };
    Ok(Credentials {
        url: SiteUrl::parse(&url).map_err(|error| CredentialsError::InvalidUrl {
            origin: url_source,
            error,
        })?,
        key: ApiKey::parse(&key).map_err(|error| CredentialsError::InvalidKey {
            origin: key_source,
            error,
        })?,
        url_source,
        key_source,
    })
}

/// The kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    Bool,
    /// A byte count within bounds.
    Bytes {
        min: u64,
        max: u64,
    },
}

/// One user-settable option.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every option, as `config set` and the plugin tuple accept them.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "enabled",
        kind: OptionKind::Bool,
        default: "true",
        help: "sync at all (false pauses the plugin without uninstalling it)",
    },
    OptionSpec {
        name: "syncToolOutput",
        kind: OptionKind::Bool,
        default: "true",
        help: "include tool results (truncated to maxToolOutputBytes)",
    },
    OptionSpec {
        name: "maxToolOutputBytes",
        kind: OptionKind::Bytes {
            min: 256,
            max: 262_144,
        },
        default: "16384",
        help: "longest tool output kept per call; the rest is cut and marked as truncated",
    },
    OptionSpec {
        name: "syncReasoning",
        kind: OptionKind::Bool,
        default: "false",
        help: "include the model's reasoning text",
    },
    OptionSpec {
        name: "redact",
        kind: OptionKind::Bool,
        default: "true",
        help: "mask API keys, tokens, private keys and URL passwords before sending",
    },
];

/// Why `config set` refused a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("\"{0}\" is a credential: use `opencode-sync login` to change it")]
    Credential(String),
    #[error("unknown option \"{name}\"; known options: {known}")]
    Unknown { name: String, known: String },
    #[error("{name} takes true or false, not \"{value}\"")]
    NotBool { name: String, value: String },
    #[error("{name} takes a whole number of bytes from {min} to {max}, not \"{value}\"")]
    OutOfRange {
        name: String,
        value: String,
        min: u64,
        max: u64,
    },
}

impl OptionSpec {
    /// Finds an option by its JSON name.
    pub fn find(name: &str) -> Result<&'static Self, OptionError> {
        if name == KEY_URL || name == KEY_API_KEY {
            return Err(OptionError::Credential(name.to_owned()));
        }
        OPTIONS
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| OptionError::Unknown {
                name: name.to_owned(),
                known: OPTIONS
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Parses a command-line value into the JSON value stored.
    pub fn parse_value(&self, value: &str) -> Result<Value, OptionError> {
        let v = value.trim();
        match self.kind {
            OptionKind::Bool => match v.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Ok(Value::Bool(true)),
                "false" | "off" | "no" | "0" => Ok(Value::Bool(false)),
                _ => Err(OptionError::NotBool {
                    name: self.name.to_owned(),
                    value: value.to_owned(),
                }),
            },
            OptionKind::Bytes { min, max } => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(Value::from)
                .ok_or_else(|| OptionError::OutOfRange {
                    name: self.name.to_owned(),
                    value: value.to_owned(),
                    min,
                    max,
                }),
        }
    }

    /// Checks a stored JSON value, as written by hand or by another version.
    fn check(&self, value: &Value) -> Result<Value, OptionError> {
        match (self.kind, value) {
            (OptionKind::Bool, Value::Bool(_)) => Ok(value.clone()),
            (OptionKind::Bytes { .. }, Value::Number(n)) if n.is_u64() => {
                self.parse_value(&n.to_string())
            }
            (_, Value::String(text)) => self.parse_value(text),
            _ => self.parse_value(&value.to_string()),
        }
    }
}

/// How much of an unknown key a note shows (a key is a name, not a place for a text).
const SHOWN_KEY_CHARS: usize = 60;
/// How alike (Jaro-Winkler, ignoring case) an unknown key and an option must be for the
/// option to be offered as what was meant.
const LIKELY_TYPO: f64 = 0.85;

/// The option an unknown `name` most likely meant: the closest known name, when it is
/// close enough to be a typo (`syncReasonning`, `maxtooloutputbytes`, `redacted`).
pub fn closest_option(name: &str) -> Option<&'static str> {
    let name = lowercase_against_ascii(name);
    OPTIONS
        .iter()
        .map(|o| {
            (
                o.name,
                strsim::jaro_winkler(&name, &o.name.to_ascii_lowercase()),
            )
        })
        .filter(|(_, score)| *score >= LIKELY_TYPO)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(option, _)| option)
}

/// `name` lowercased for a Jaro-Winkler comparison with an ASCII name: what
/// `str::to_lowercase` gives as far as that comparison can tell (how many characters there
/// are, and which are which ASCII character; no other character is equal to one of an
/// ASCII name), without Unicode's case tables (17 KB of the plugin's wasm). Only two
/// characters lowercase to ASCII, and only one to more than one character.
fn lowercase_against_ascii(name: &str) -> String {
    let mut lower = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            // LATIN CAPITAL LETTER I WITH DOT ABOVE: `i` and a combining dot above.
            '\u{130}' => lower.push_str("i\u{307}"),
            // KELVIN SIGN.
            '\u{212a}' => lower.push('k'),
            c => lower.push(c.to_ascii_lowercase()),
        }
    }
    lower
}

/// The note for a key that is no option. Shown quoted and escaped, cut short if long;
/// a credential's value is never shown (only its name).
fn unknown_option_note(key: &str) -> String {
    if key == KEY_URL || key == KEY_API_KEY {
        return format!(
            "ignored \"{key}\": credentials are not read from here; `opencode-sync login` stores them"
        );
    }
    let shown: String = if key.chars().count() > SHOWN_KEY_CHARS {
        let cut: String = key.chars().take(SHOWN_KEY_CHARS - 1).collect();
        format!("{:?}", format!("{cut}…"))
    } else {
        format!("{key:?}")
    };
    match closest_option(key) {
        Some(option) => format!("ignored unknown option {shown}: did you mean \"{option}\"?"),
        None => format!(
            "ignored unknown option {shown}; the options are {}",
            OPTIONS
                .iter()
                .map(|o| o.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The effective options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub enabled: bool,
    pub sync_tool_output: bool,
    pub max_tool_output_bytes: u64,
    pub sync_reasoning: bool,
    pub redact: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            enabled: true,
            sync_tool_output: true,
            max_tool_output_bytes: 16_384,
            sync_reasoning: false,
            redact: true,
        }
    }
}

impl Options {
    /// Applies the known options found in `map` (the file, or the plugin tuple's object)
    /// on top of `self`. A known key with a bad value, and a key that is no option, is
    /// ignored with a note naming it (and, for a misspelt name, the option it is
    /// closest to), so one typo never disables the plugin and is never silently lost.
    pub fn merged_with(mut self, map: &Map<String, Value>) -> (Self, Vec<String>) {
        let mut notes = Vec::new();
        for spec in OPTIONS {
            let Some(raw) = map.get(spec.name) else {
                continue;
            };
            match spec.check(raw) {
                Ok(value) => self.set(spec.name, &value),
                Err(e) => notes.push(format!("ignored option: {e}")),
            }
        }
        notes.extend(
            map.keys()
                .filter(|key| !OPTIONS.iter().any(|o| o.name == key.as_str()))
                .map(|key| unknown_option_note(key)),
        );
        (self, notes)
    }

    fn set(&mut self, name: &str, value: &Value) {
        let flag = value.as_bool().unwrap_or_default();
        match name {
            "enabled" => self.enabled = flag,
            "syncToolOutput" => self.sync_tool_output = flag,
            "syncReasoning" => self.sync_reasoning = flag,
            "redact" => self.redact = flag,
            "maxToolOutputBytes" => {
                self.max_tool_output_bytes = value.as_u64().unwrap_or(self.max_tool_output_bytes);
            }
            _ => {}
        }
    }

    /// The options as `(name, value)` pairs, in [`OPTIONS`] order, for display.
    pub fn entries(&self) -> Vec<(&'static str, Value)> {
        OPTIONS
            .iter()
            .map(|spec| {
                let value = match spec.name {
                    "enabled" => Value::Bool(self.enabled),
                    "syncToolOutput" => Value::Bool(self.sync_tool_output),
                    "syncReasoning" => Value::Bool(self.sync_reasoning),
                    "redact" => Value::Bool(self.redact),
                    _ => Value::from(self.max_tool_output_bytes),
                };
                (spec.name, value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::tests::MapEnv;
    use proptest::prelude::*;

    const KEY: &str = "osk_0123456789abcdefghijklmnopqrstuv";

    #[test]
    fn round_trip_preserves_unknown_keys_and_order() {
        let text = r#"{
  "convexUrl": "https://x.convex.cloud",
  "apiKey": "osk_0123456789abcdefghijklmnopqrstuv",
  "zeta": {"nested": [1, 2, {"a": null}]},
  "syncReasoning": true,
  "alpha": "kept"
}
"#;
        let mut cfg = ConfigFile::from_json(text).unwrap();
        cfg.set_credentials(
            &SiteUrl::parse("https://y.convex.cloud").unwrap(),
            &ApiKey::parse(KEY).unwrap(),
        );
        let out = cfg.to_json();
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["convexUrl"], "https://y.convex.site");
        assert_eq!(back["zeta"]["nested"][2]["a"], Value::Null);
        assert_eq!(back["alpha"], "kept");
        let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["convexUrl", "apiKey", "zeta", "syncReasoning", "alpha"]
        );
    }

    #[test]
    fn clear_keeps_options() {
        let mut cfg =
            ConfigFile::from_json(r#"{"convexUrl":"https://x.convex.site","redact":false}"#)
                .unwrap();
        assert_eq!(cfg.clear_credentials(), (true, false));
        assert_eq!(cfg.to_json().trim(), "{\n  \"redact\": false\n}");
        assert!(!cfg.is_empty());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(matches!(
            ConfigFile::from_json("[1]"),
            Err(ConfigError::NotAnObject)
        ));
        assert!(matches!(
            ConfigFile::from_json("{\"convexUrl\": 5}"),
            Err(ConfigError::NotAString(_))
        ));
        assert!(matches!(
            ConfigFile::from_json("{oops"),
            Err(ConfigError::Json(_))
        ));
        assert_eq!(
            ConfigFile::from_json("  \n").unwrap(),
            ConfigFile::default()
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_what_it_takes() {
        assert_eq!(
            ConfigFile::from_json("{\"apiKey\": 5}")
                .unwrap_err()
                .to_string(),
            "\"apiKey\" must be a string (the API key), not integer `5`"
        );
        assert_eq!(
            ConfigFile::from_json("{\"convexUrl\": [\"https://x.convex.site\"]}")
                .unwrap_err()
                .to_string(),
            "\"convexUrl\" must be a string (the deployment URL), not sequence"
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let cfg = ConfigFile::from_json("\u{feff}{\"redact\": false}\n").unwrap();
        assert_eq!(cfg.rest["redact"], Value::Bool(false));
        assert_eq!(
            ConfigFile::from_json("\u{feff}").unwrap(),
            ConfigFile::default()
        );
        // Only at the start: elsewhere it is still an error.
        assert!(ConfigFile::from_json("{\"a\": 1}\u{feff}").is_err());
    }

    #[test]
    fn config_text_is_judged_as_the_derive_judges_it() {
        for text in [
            r#"{"convexUrl":"https://x.convex.site","apiKey":null,"a":1,"redact":false}"#,
            r#"{"z":[1],"apiKey":"k","convexUrl":"u","b":{"c":null}}"#,
            r#"{"convexUrl": 5}"#,
            r#"{"convexUrl": -5}"#,
            r#"{"convexUrl": 1.5}"#,
            r#"{"convexUrl": -0}"#,
            r#"{"convexUrl": 2.0}"#,
            r#"{"apiKey": "a\"b", "convexUrl": "\u00e9"}"#,
            r#"{"apiKey": true}"#,
            r#"{"apiKey": [1]}"#,
            r#"{"apiKey": {"x": 1}}"#,
            r#"{"convexUrl": "u", "convexUrl": 7}"#,
            "{}",
        ] {
            let derived = serde_json::from_str::<Value>(text)
                .and_then(serde_json::from_value::<ConfigFile>)
                .map_err(|e| e.to_string());
            // The same verdicts, and what was found worded as serde words it.
            let by_hand = ConfigFile::from_json(text).map_err(|e| match e {
                ConfigError::NotAString(e) => {
                    format!("invalid type: {}, expected a string", e.found)
                }
                other => other.to_string(),
            });
            assert_eq!(by_hand, derived, "{text}");
            if let Ok(cfg) = by_hand {
                let keys: Vec<&String> = cfg.rest.keys().collect();
                let derived_keys: Vec<String> = derived.unwrap().rest.keys().cloned().collect();
                assert_eq!(keys, derived_keys.iter().collect::<Vec<_>>(), "{text}");
            }
        }
    }

    #[test]
    fn debug_masks_the_key() {
        let cfg = ConfigFile {
            api_key: Some(KEY.to_owned()),
            ..ConfigFile::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("osk_0123…stuv"), "{shown}");
    }

    #[test]
    fn env_overrides_file() {
        let file = ConfigFile::from_json(&format!(
            r#"{{"convexUrl":"https://file.convex.cloud","apiKey":"{KEY}"}}"#
        ))
        .unwrap();
        let env = MapEnv::new("/h", &[(ENV_URL, "http://127.0.0.1:9/")]);
        let c = resolve_credentials(Some(&file), &env).unwrap();
        assert_eq!(c.url.as_str(), "http://127.0.0.1:9");
        assert_eq!(c.url_source, Source::Env(ENV_URL));
        assert_eq!(c.key_source, Source::File);

        let env = MapEnv::new("/h", &[]);
        let c = resolve_credentials(Some(&file), &env).unwrap();
        assert_eq!(c.url.as_str(), "https://file.convex.site");

        let other = "osk_zyxwvutsrqponmlkjihgfedcba9876";
        let env = MapEnv::new(
            "/h",
            &[(ENV_URL, "https://e.convex.site"), (ENV_API_KEY, other)],
        );
        let c = resolve_credentials(None, &env).unwrap();
        assert_eq!(c.key.expose(), other);
        assert_eq!(c.key_source, Source::Env(ENV_API_KEY));
    }

    #[test]
    fn missing_and_invalid_credentials() {
        let env = MapEnv::new("/h", &[]);
        assert_eq!(
            resolve_credentials(None, &env),
            Err(CredentialsError::NotConfigured)
        );
        let only_key = ConfigFile {
            api_key: Some(KEY.into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_credentials(Some(&only_key), &env),
            Err(CredentialsError::MissingUrl)
        );
        let env = MapEnv::new("/h", &[(ENV_URL, "http://example.com")]);
        let err = resolve_credentials(Some(&only_key), &env).unwrap_err();
        assert!(matches!(err, CredentialsError::InvalidUrl { .. }));
        assert!(err.to_string().starts_with(
            "the deployment URL in $OPENCODE_SYNC_URL is invalid: http:// is only allowed"
        ));
        let env = MapEnv::new(
            "/h",
            &[(ENV_URL, "https://x.convex.site"), (ENV_API_KEY, "nope")],
        );
        let err = resolve_credentials(None, &env).unwrap_err();
        assert_eq!(
            err,
            CredentialsError::InvalidKey {
                origin: Source::Env(ENV_API_KEY),
                error: KeyError::MissingPrefix
            }
        );
    }

    #[test]
    fn options_defaults_overrides_and_bad_values() {
        let (opts, notes) = ConfigFile::default().options();
        assert_eq!(opts, Options::default());
        assert!(notes.is_empty());

        let cfg = ConfigFile::from_json(
            r#"{"syncReasoning": true, "maxToolOutputBytes": 1024, "redact": "sometimes", "enabled": "false"}"#,
        )
        .unwrap();
        let (opts, notes) = cfg.options();
        assert!(opts.sync_reasoning);
        assert_eq!(opts.max_tool_output_bytes, 1024);
        assert!(opts.redact, "a bad value keeps the default");
        assert!(!opts.enabled, "a quoted boolean is understood");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("redact takes true or false"), "{notes:?}");
    }

    #[test]
    fn unknown_options_are_noted_with_the_option_they_likely_meant() {
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"syncReasonning": true, "MaxToolOutputBytes": 9, "colour": "red", "redact": false}"#,
        )
        .unwrap();
        let (opts, notes) = Options::default().merged_with(&map);
        assert!(!opts.redact, "known options still apply");
        assert!(
            !opts.sync_reasoning,
            "a misspelt option is not guessed into effect"
        );
        assert_eq!(
            notes,
            [
                "ignored unknown option \"syncReasonning\": did you mean \"syncReasoning\"?",
                "ignored unknown option \"MaxToolOutputBytes\": did you mean \"maxToolOutputBytes\"?",
                "ignored unknown option \"colour\"; the options are enabled, syncToolOutput, maxToolOutputBytes, syncReasoning, redact",
            ]
        );
        assert_eq!(closest_option("redacted"), Some("redact"));
        assert_eq!(closest_option("enable"), Some("enabled"));
        assert_eq!(closest_option("zzz"), None);
    }

    /// What an ASCII name can tell of a lowercased text: its characters, ASCII or not.
    fn seen_by_ascii(text: &str) -> Vec<Option<char>> {
        text.chars().map(|c| c.is_ascii().then_some(c)).collect()
    }

    #[test]
    fn lowercasing_against_ascii_names_is_str_to_lowercase_for_every_character() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let text = format!("A{c}b{c}");
            assert_eq!(
                seen_by_ascii(&lowercase_against_ascii(&text)),
                seen_by_ascii(&text.to_lowercase()),
                "U+{:04X}",
                u32::from(c)
            );
        }
        for o in OPTIONS {
            assert_eq!(o.name.to_ascii_lowercase(), o.name.to_lowercase());
        }
        for typo in [
            "ſyncToolOutput",
            "\u{212a}edact",
            "ENABLED\u{130}",
            "ΣyncReasoning",
        ] {
            let score = |lower: &str| {
                OPTIONS
                    .iter()
                    .map(|o| strsim::jaro_winkler(lower, &o.name.to_lowercase()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                score(&lowercase_against_ascii(typo)),
                score(&typo.to_lowercase()),
                "{typo}"
            );
        }
    }

    #[test]
    fn an_unknown_key_is_shown_escaped_and_short_and_a_credential_never_with_its_value() {
        let long = format!("x\n{}", "y".repeat(500));
        let map: Map<String, Value> = [
            (long.clone(), Value::Bool(true)),
            (KEY_API_KEY.to_owned(), Value::from(KEY)),
        ]
        .into_iter()
        .collect();
        let (_, notes) = Options::default().merged_with(&map);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("\"x\\nyyy"), "{}", notes[0]);
        assert!(notes[0].len() < 250, "{}", notes[0]);
        assert!(!notes.iter().any(|n| n.contains(KEY)), "{notes:?}");
        assert!(notes[1].contains("`opencode-sync login`"), "{}", notes[1]);
    }

    #[test]
    fn option_specs() {
        assert_eq!(
            OptionSpec::find("apiKey").unwrap_err(),
            OptionError::Credential("apiKey".into())
        );
        let err = OptionSpec::find("colour").unwrap_err().to_string();
        assert!(
            err.contains("known options: enabled, syncToolOutput"),
            "{err}"
        );
        let spec = OptionSpec::find("maxToolOutputBytes").unwrap();
        assert_eq!(spec.parse_value("2048").unwrap(), Value::from(2048));
        assert!(spec.parse_value("10").is_err());
        assert!(spec.parse_value("-5").is_err());
        let spec = OptionSpec::find("redact").unwrap();
        assert_eq!(spec.parse_value("off").unwrap(), Value::Bool(false));
        // Every default parses as a value of its own kind.
        for spec in OPTIONS {
            assert!(spec.parse_value(spec.default).is_ok(), "{}", spec.name);
        }
        assert_eq!(
            Options::default()
                .entries()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
            OPTIONS
                .iter()
                .map(|s| (s.name.to_string(), s.default.to_string()))
                .collect::<Vec<_>>()
        );
    }

    proptest! {
        /// Any JSON object survives a read and rewrite unchanged.
        #[test]
        fn arbitrary_objects_round_trip(
            entries in proptest::collection::btree_map("[a-zA-Z]{1,8}", any::<i64>(), 0..8),
            strings in proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,12}", 0..4),
        ) {
            let mut map = Map::new();
            for (k, v) in entries { map.insert(k, Value::from(v)); }
            for (k, v) in strings { map.insert(format!("s_{k}"), Value::from(v)); }
            let text = Value::Object(map.clone()).to_string();
            match ConfigFile::from_json(&text) {
                Ok(cfg) => {
                    let back: Value = serde_json::from_str(&cfg.to_json()).unwrap();
                    prop_assert_eq!(back, Value::Object(map));
                }
                // Only a credential key with a non-string value is refused.
                Err(_) => prop_assert!(map.contains_key(KEY_URL) || map.contains_key(KEY_API_KEY)),
            }
        }
    }
}
