//! Finding out whether OpenCode will load the plugin, by reading OpenCode's own config
//! files the way it does: the global `opencode.json`/`.jsonc` and the project's, written
//! in JSONC (comments and trailing commas allowed), with plugin entries given as a name
//! (`opencode-sync-plugin`, `opencode-sync-plugin@1.2.3`), a `file://` URL, or a
//! `[spec, {options}]` tuple.

use std::fs;
use std::path::{Path, PathBuf};

use opencode_sync_core::config::Options;
use opencode_sync_core::paths::{self, Environment};
use serde_json::{Map, Value};

use crate::fsutil::{CONFIG_LIMIT, SizeLimit, read_text_file};

/// A package's `package.json` is kilobytes; a module's neighbour larger than this is not
/// ours to parse.
const PACKAGE_JSON_LIMIT: SizeLimit = SizeLimit {
    max_bytes: 1024 * 1024,
    what: "a package.json",
};

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
    /// The spec as written in the file (trimmed).
    #[serde(skip)]
    pub spec: String,
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
    /// What is odd about the file but does not stop OpenCode (two `plugin` keys).
    pub notes: Vec<String>,
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

/// Reads the files that exist and finds this plugin's entries in each. Anything at a
/// config's path counts, a FIFO or a directory too (reported, never read: reads are
/// bounded, see [`read_text_file`]).
pub fn inspect(env: &dyn Environment, project: &Path) -> Vec<ConfigFileReport> {
    candidate_files(env, project)
        .into_iter()
        .filter(|(_, path)| path.exists())
        .map(|(scope, path)| {
            let mut notes = Vec::new();
            let (error, entries) = match read_text_file(&path, CONFIG_LIMIT) {
                Err(e) => (Some(e.reason()), Vec::new()),
                Ok(None) => (Some("it vanished while being read".to_owned()), Vec::new()),
                Ok(Some(text)) => match parse_jsonc(&text) {
                    Err(e) => (Some(e), Vec::new()),
                    Ok(value) => {
                        notes.extend(duplicate_plugin_keys_note(&text));
                        (None, plugin_entries(&value, &path))
                    }
                },
            };
            ConfigFileReport {
                path,
                scope,
                error,
                entries,
                notes,
            }
        })
        .collect()
}

/// The line of each top-level `"plugin"` key in a JSONC document, in order (OpenCode,
/// like `JSON.parse`, reads only the last one when there are several).
pub fn plugin_key_lines(text: &str) -> Vec<usize> {
    let text = strip_bom(text);
    let collect = jsonc_parser::CollectOptions::default();
    let Ok(parsed) = jsonc_parser::parse_to_ast(text, &collect, &Default::default()) else {
        return Vec::new();
    };
    let Some(jsonc_parser::ast::Value::Object(object)) = parsed.value else {
        return Vec::new();
    };
    object
        .properties
        .iter()
        .filter(|prop| prop.name.as_str() == "plugin")
        .map(|prop| {
            let start = prop.range.start.min(text.len());
            text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        })
        .collect()
}

/// What to say about a document with more than one `plugin` key; `None` for one or none.
pub fn duplicate_plugin_keys_note(text: &str) -> Option<String> {
    let lines = plugin_key_lines(text);
    let (last, earlier) = lines.split_last()?;
    if earlier.is_empty() {
        return None;
    }
    let earlier: Vec<String> = earlier.iter().map(ToString::to_string).collect();
    let (s, them) = if earlier.len() == 1 {
        ("", "it")
    } else {
        ("s", "them")
    };
    Some(format!(
        "it has {} \"plugin\" keys (lines {} and {last}); OpenCode reads only the last \
         one (line {last}) and ignores the earlier list{s}: merge {them} into one",
        lines.len(),
        earlier.join(", "),
    ))
}

/// `text` without the UTF-8 byte order mark some Windows editors write at its start
/// (OpenCode reads such a file; the JSONC parser does not skip the mark itself).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parses JSONC as OpenCode does (comments, trailing commas, a byte order mark).
pub fn parse_jsonc(text: &str) -> Result<Value, String> {
    let text = strip_bom(text);
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
                spec: spec.trim().to_owned(),
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
    let path = file_url_path(spec)?;
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

/// The path of a `file://` URL, percent-escapes (`%20`) decoded; `None` for anything
/// else.
pub fn file_url_path(spec: &str) -> Option<PathBuf> {
    let rest = spec.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            #[allow(clippy::cast_possible_truncation)] // two hex digits fit a byte
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out).into_owned()))
}

/// What `setup --plugin SPEC` lists: this plugin by npm name (`opencode-sync-plugin`,
/// `opencode-sync-plugin@VERSION`) or by a `file://` URL to a build of it that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The entry as it goes into the `plugin` list (trimmed, otherwise as given).
    pub text: String,
    pub reference: PluginRef,
}

impl PluginSpec {
    /// The default entry: the npm name, unpinned.
    pub fn default_name() -> Self {
        Self {
            text: PLUGIN_NAME.to_owned(),
            reference: PluginRef::Package { version: None },
        }
    }

    /// Parses and checks a `--plugin` value; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let accepted = format!(
            "give {PLUGIN_NAME}, {PLUGIN_NAME}@VERSION, or a file:// URL to a build of it \
             (file:///ABSOLUTE/PATH/npm/index.js)"
        );
        if text.is_empty() {
            return Err(format!("empty; {accepted}"));
        }
        if text.starts_with("file:") {
            return Self::parse_file_url(text);
        }
        let looks_like_path = text.starts_with(['/', '.', '~', '\\'])
            || text.contains('\\')
            || [".js", ".mjs", ".cjs", ".ts"]
                .iter()
                .any(|ext| text.ends_with(ext));
        if looks_like_path {
            let hint = std::path::absolute(text)
                .ok()
                .filter(|_| !text.starts_with('~'))
                .map_or_else(
                    || "file:///ABSOLUTE/PATH/npm/index.js".to_owned(),
                    |p| format!("file://{}", p.display()),
                );
            return Err(format!(
                "looks like a path: give a local build as a file:// URL with an absolute path, like {hint}"
            ));
        }
        if let Some(rest) = text.strip_prefix(PLUGIN_NAME) {
            if rest.is_empty() {
                return Ok(Self::default_name());
            }
            if let Some(version) = rest.strip_prefix('@') {
                let ok = !version.is_empty()
                    && version
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-+~^<>=*_".contains(&b));
                if ok {
                    return Ok(Self {
                        text: text.to_owned(),
                        reference: PluginRef::Package {
                            version: Some(version.to_owned()),
                        },
                    });
                }
                return Err(format!(
                    "{version:?} is not a version (like 0.1.0, ^0.1.0 or latest)"
                ));
            }
        }
        if text.contains("://") || text.contains(':') {
            return Err(format!(
                "only an npm name or a file:// URL is supported; {accepted}"
            ));
        }
        Err(format!(
            "not this plugin: setup lists only {PLUGIN_NAME} (add other plugins to the \
             \"plugin\" list yourself); {accepted}"
        ))
    }

    fn parse_file_url(text: &str) -> Result<Self, String> {
        let example = "file:///home/me/opencode-sync-plugin/npm/index.js";
        let path = file_url_path(text)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| {
                format!("a file:// URL needs an absolute path (three slashes), like {example}")
            })?;
        if path.is_dir() {
            return Err(format!(
                "{} is a directory; name the plugin's module in it, like file://{}",
                path.display(),
                path.join("index.js").display()
            ));
        }
        if !path.is_file() {
            return Err(format!(
                "there is no file {} (a checkout's npm/index.js is there after scripts/build)",
                path.display()
            ));
        }
        if !is_this_package(&path) {
            return Err(format!(
                "{} is not a build of {PLUGIN_NAME} (no package.json naming it beside the \
                 file); point at npm/index.js of a checkout, or index.js of an installed package",
                path.display()
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            reference: PluginRef::File { path, exists: true },
        })
    }

    /// Whether a listed entry is this very spec (same version, or same file).
    pub fn is_listed_as(&self, listed: &PluginRef) -> bool {
        match (&self.reference, listed) {
            (PluginRef::Package { version: a }, PluginRef::Package { version: b }) => a == b,
            (PluginRef::File { path: a, .. }, PluginRef::File { path: b, .. }) => {
                let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                canonical(a) == canonical(b)
            }
            _ => false,
        }
    }
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
    dir.and_then(|d| read_text_file(&d.join("package.json"), PACKAGE_JSON_LIMIT).ok())
        .flatten()
        .and_then(|text| serde_json::from_str::<Value>(strip_bom(&text)).ok())
        .is_some_and(|pkg| pkg.get("name").and_then(Value::as_str) == Some(PLUGIN_NAME))
}

/// Problems with a tuple's options: bad values and unknown names (with the option a
/// misspelt one likely meant), as the core words them for the plugin's log.
fn option_notes(options: &Map<String, Value>) -> Vec<String> {
    Options::default().merged_with(options).1
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
    fn file_urls_are_decoded() {
        assert_eq!(
            file_url_path("file:///a%20b/%C3%A9/x%2.js%"),
            Some(PathBuf::from("/a b/é/x%2.js%"))
        );
        assert_eq!(file_url_path("/a/b"), None);
        let value =
            parse_jsonc(r#"{"plugin": ["file:///x/opencode-sync-plugin%20copy/index.js"]}"#)
                .unwrap();
        let entries = plugin_entries(&value, Path::new("/p/opencode.json"));
        assert_eq!(
            entries[0].reference,
            PluginRef::File {
                path: PathBuf::from("/x/opencode-sync-plugin copy/index.js"),
                exists: false
            }
        );
        assert_eq!(
            entries[0].spec,
            "file:///x/opencode-sync-plugin%20copy/index.js"
        );
    }

    #[test]
    fn look_alikes_are_not_matches() {
        let value =
            parse_jsonc(r#"{"plugin": ["opencode-sync-plugin-extra", "x", 5, []]}"#).unwrap();
        assert!(plugin_entries(&value, Path::new("/p/opencode.json")).is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_duplicate_plugin_keys_are_named_by_line() {
        let text = "\u{feff}{\n  \"plugin\": [\"opencode-sync-plugin\"],\n  \"model\": \"x\",\n  \"plugin\": [\"other\"]\n}";
        let value = parse_jsonc(text).unwrap();
        // The last key wins, as in OpenCode: the plugin is not loaded.
        assert!(plugin_entries(&value, Path::new("/p/opencode.json")).is_empty());
        assert_eq!(plugin_key_lines(text), vec![2, 4]);
        assert_eq!(
            duplicate_plugin_keys_note(text).unwrap(),
            "it has 2 \"plugin\" keys (lines 2 and 4); OpenCode reads only the last one \
             (line 4) and ignores the earlier list: merge it into one"
        );
        assert_eq!(duplicate_plugin_keys_note("{\"plugin\": []}"), None);
        assert_eq!(duplicate_plugin_keys_note("{oops"), None);
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
