//! Finding out whether OpenCode will load the plugin, by reading OpenCode's own config
//! files the way it does: the global `opencode.json`/`.jsonc` and the project's, written
//! in JSONC (comments and trailing commas allowed), with plugin entries given as a name
//! (`opencode-sync-plugin`, `opencode-sync-plugin@1.2.3`), a `file://` URL, or a
//! `[spec, {options}]` tuple.

use std::fs;
use std::path::{Path, PathBuf};

use opencode_sync_core::config::{OPTIONS, Options};
use opencode_sync_core::paths::{self, Environment};
use serde_json::{Map, Value};

/// The npm name of the plugin.
pub const PLUGIN_NAME: &str = "opencode-sync-plugin";

/// Which of OpenCode's config layers a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Project,
    /// The file named by `$OPENCODE_CONFIG`.
    Custom,
}

/// How an entry names the plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "form")]
pub enum PluginRef {
    /// `"opencode-sync-plugin"` or `"opencode-sync-plugin@<version>"`.
    Package { version: Option<String> },
    /// `"file:///…/index.js"` of a local build of this package.
    File { path: PathBuf, exists: bool },
}

/// One entry of a `plugin` array that refers to this plugin.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginEntry {
    pub index: usize,
    #[serde(flatten)]
    pub reference: PluginRef,
    /// The tuple's options object, when the entry is `[spec, {...}]`.
    pub options: Option<Map<String, Value>>,
    /// Problems with this entry's options (unknown names, bad values).
    pub notes: Vec<String>,
}

/// One OpenCode config file that exists.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFileReport {
    pub path: PathBuf,
    pub scope: Scope,
    /// Why the file could not be read or parsed; OpenCode would fail on it too.
    pub error: Option<String>,
    pub entries: Vec<PluginEntry>,
}

/// The config files OpenCode reads for a project directory, in load order.
pub fn candidate_files(env: &dyn Environment, project: &Path) -> Vec<(Scope, PathBuf)> {
    let mut files = Vec::new();
    if let Ok(dir) = paths::opencode_config_dir(env) {
        for name in ["config.json", "opencode.json", "opencode.jsonc"] {
            files.push((Scope::Global, dir.join(name)));
        }
    }
    if let Some(custom) = env.var("OPENCODE_CONFIG") {
        files.push((Scope::Custom, PathBuf::from(custom)));
    }
    // OpenCode looks from the working directory up to the worktree root; outermost first.
    let mut project_files = Vec::new();
    for dir in project.ancestors() {
        for name in ["opencode.jsonc", "opencode.json"] {
            project_files.push((Scope::Project, dir.join(name)));
        }
        for name in ["opencode.jsonc", "opencode.json"] {
            project_files.push((Scope::Project, dir.join(".opencode").join(name)));
        }
        if dir.join(".git").exists() || Some(dir) == env.home_dir().as_deref() {
            break;
        }
    }
    project_files.reverse();
    files.extend(project_files);
    files
}

/// Reads the files that exist and finds this plugin's entries in each.
pub fn inspect(env: &dyn Environment, project: &Path) -> Vec<ConfigFileReport> {
    candidate_files(env, project)
        .into_iter()
        .filter(|(_, path)| path.is_file())
        .map(|(scope, path)| {
            let (error, entries) = match fs::read_to_string(&path) {
                Err(e) => (Some(format!("cannot read: {e}")), Vec::new()),
                Ok(text) => match parse_jsonc(&text) {
                    Err(e) => (Some(e), Vec::new()),
                    Ok(value) => (None, plugin_entries(&value, &path)),
                },
            };
            ConfigFileReport {
                path,
                scope,
                error,
                entries,
            }
        })
        .collect()
}

/// Parses JSONC as OpenCode does (comments, trailing commas).
pub fn parse_jsonc(text: &str) -> Result<Value, String> {
    let options = jsonc_parser::ParseOptions::default();
    match jsonc_parser::parse_to_serde_value::<Value>(text, &options) {
        Ok(Value::Null) if text.trim().is_empty() => Ok(Value::Object(Map::new())),
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the top level must be a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSONC: {e}")),
    }
}

/// This plugin's entries in a parsed config.
pub fn plugin_entries(config: &Value, config_path: &Path) -> Vec<PluginEntry> {
    let Some(list) = config.get("plugin").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let (spec, options) = match entry {
                Value::String(spec) => (spec.as_str(), None),
                Value::Array(tuple) => {
                    let spec = tuple.first()?.as_str()?;
                    let options = tuple.get(1).and_then(Value::as_object).cloned();
                    (spec, options)
                }
                _ => return None,
            };
            let reference = match_spec(spec, config_path)?;
            let notes = options.as_ref().map(option_notes).unwrap_or_default();
            Some(PluginEntry {
                index,
                reference,
                options,
                notes,
            })
        })
        .collect()
}

fn match_spec(spec: &str, config_path: &Path) -> Option<PluginRef> {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix(PLUGIN_NAME) {
        return match rest {
            "" => Some(PluginRef::Package { version: None }),
            _ => rest.strip_prefix('@').map(|v| PluginRef::Package {
                version: Some(v.to_owned()),
            }),
        };
    }
    let path = spec.strip_prefix("file://")?;
    let path = PathBuf::from(path);
    let path = if path.is_relative() {
        config_path.parent().unwrap_or(Path::new(".")).join(path)
    } else {
        path
    };
    is_this_package(&path).then(|| PluginRef::File {
        exists: path.exists(),
        path,
    })
}

/// A `file://` entry is ours when its path names this package, or when the
/// `package.json` beside the module does.
fn is_this_package(module: &Path) -> bool {
    if module
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with(PLUGIN_NAME))
    {
        return true;
    }
    let dir = if module.is_dir() {
        Some(module)
    } else {
        module.parent()
    };
    dir.and_then(|d| fs::read_to_string(d.join("package.json")).ok())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|pkg| pkg.get("name").and_then(Value::as_str) == Some(PLUGIN_NAME))
}

fn option_notes(options: &Map<String, Value>) -> Vec<String> {
    let (_, mut notes) = Options::default().merged_with(options);
    for key in options.keys() {
        if !OPTIONS.iter().any(|o| o.name == key) {
            notes.push(format!(
                "unknown option \"{key}\" (known: {})",
                OPTIONS
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonc_with_comments_and_trailing_commas() {
        let text = r#"{
  // the model
  "model": "x/y",
  /* plugins */
  "plugin": [
    "other-plugin",
    "opencode-sync-plugin@0.3.1",
    ["opencode-sync-plugin", { "syncReasoning": true, "colour": "red", }],
  ],
}"#;
        let value = parse_jsonc(text).unwrap();
        let entries = plugin_entries(&value, Path::new("/p/opencode.jsonc"));
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].reference,
            PluginRef::Package {
                version: Some("0.3.1".into())
            }
        );
        assert_eq!(entries[1].index, 2);
        assert_eq!(entries[1].notes.len(), 1, "{:?}", entries[1].notes);
        assert!(entries[1].notes[0].contains("unknown option \"colour\""));
    }

    #[test]
    fn look_alikes_are_not_matches() {
        let value =
            parse_jsonc(r#"{"plugin": ["opencode-sync-plugin-extra", "x", 5, []]}"#).unwrap();
        assert!(plugin_entries(&value, Path::new("/p/opencode.json")).is_empty());
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(
            parse_jsonc("{\"plugin\": [")
                .unwrap_err()
                .starts_with("invalid JSONC")
        );
        assert_eq!(
            parse_jsonc("[]").unwrap_err(),
            "the top level must be a JSON object"
        );
        assert_eq!(parse_jsonc("").unwrap(), Value::Object(Map::new()));
    }
}
