//! Finding out whether OpenCode will load the plugin, by reading OpenCode's own config
//! files the way it does: the global `opencode.json`/`.jsonc` and the project's, written
//! in JSONC (comments and trailing commas allowed). Both majors are read: OpenCode 1.x
//! reads the `plugin` key (a name, `name@version`, a `file://` URL, a `[spec, {options}]`
//! tuple); OpenCode 2 reads `plugins` (a name, a local DIRECTORY as `file:///dir`, `/dir`
//! or `./dir`, a `{"package", "options"}` object) and also the old `plugin` key, converted
//! in memory. Each entry says whether each major loads it, and why not.

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
    /// A module of a local build (`file:///…/npm/index.js`): OpenCode 1.x loads it,
    /// OpenCode 2 drops it (local paths must be directories there).
    File { path: PathBuf, exists: bool },
    /// A local build's directory (`file:///…/npm`): both majors load it (1.x through its
    /// `package.json`, 2 through its `index.js`).
    Directory { path: PathBuf, exists: bool },
}

impl PluginRef {
    /// The local path the entry names, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Package { .. } => None,
            Self::File { path, .. } | Self::Directory { path, .. } => Some(path),
        }
    }

    /// Whether a local path it names is missing.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            Self::File { exists: false, .. } | Self::Directory { exists: false, .. }
        )
    }
}

/// The config key an entry is listed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ConfigKey {
    /// `plugin`: OpenCode 1.x's key, which OpenCode 2 reads too.
    #[serde(rename = "plugin")]
    Plugin,
    /// `plugins`: OpenCode 2's key, which OpenCode 1.x does not read.
    #[serde(rename = "plugins")]
    Plugins,
}

impl ConfigKey {
    pub const ALL: [Self; 2] = [Self::Plugin, Self::Plugins];

    pub fn name(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Plugins => "plugins",
        }
    }
}

/// How an entry is written in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryShape {
    /// `"spec"`.
    String,
    /// `["spec", {options}]` (OpenCode 1.x).
    Tuple,
    /// `{"package": "spec", "options": {...}}` (OpenCode 2).
    Object,
}

/// Whether one OpenCode major loads an entry, and why not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MajorLoad {
    pub loads: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

impl MajorLoad {
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Self {
                loads: true,
                why_not: None,
            },
            Err(why) => Self {
                loads: false,
                why_not: Some(why),
            },
        }
    }
}

/// One entry of a `plugin` or `plugins` array that refers to this plugin.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginEntry {
    pub key: ConfigKey,
    /// The position in its key's list.
    pub index: usize,
    pub shape: EntryShape,
    /// The spec as written in the file (trimmed).
    #[serde(skip)]
    pub spec: String,
    #[serde(flatten)]
    pub reference: PluginRef,
    /// The tuple's or object's options, when it has them.
    pub options: Option<Map<String, Value>>,
    /// Problems with this entry's options (unknown names, bad values).
    pub notes: Vec<String>,
    /// Whether OpenCode 1.x loads it.
    pub opencode1: MajorLoad,
    /// Whether OpenCode 2 loads it.
    pub opencode2: MajorLoad,
}

impl PluginEntry {
    /// Whether OpenCode of this major version loads the entry.
    pub fn load_in(&self, major: u64) -> &MajorLoad {
        if major >= 2 {
            &self.opencode2
        } else {
            &self.opencode1
        }
    }

    /// The entry as written, for messages: `"spec"`, `["spec", {options}]` or
    /// `{"package": "spec", ...}`, with the key when it is `plugins`.
    pub fn describe(&self) -> String {
        let spec = &self.spec;
        let entry = match self.shape {
            EntryShape::String => format!("\"{spec}\""),
            EntryShape::Tuple => format!("[\"{spec}\", {{options}}]"),
            EntryShape::Object => format!("{{\"package\": \"{spec}\", ...}}"),
        };
        match self.key {
            ConfigKey::Plugin => entry,
            ConfigKey::Plugins => format!("{entry} in \"plugins\""),
        }
    }
}

/// Why OpenCode 1.x does not load an entry, if it does not.
fn opencode1_load(
    key: ConfigKey,
    shape: EntryShape,
    spec: &str,
    r: &PluginRef,
) -> Result<(), String> {
    if key == ConfigKey::Plugins {
        return Err("OpenCode 1.x reads only the \"plugin\" key, not \"plugins\"".to_owned());
    }
    if shape == EntryShape::Object {
        return Err(
            "OpenCode 1.x does not read {\"package\": ...} objects (it reads [spec, {options}])"
                .to_owned(),
        );
    }
    if let Some(path) = r.path() {
        if r.is_missing() {
            return Err(format!("{} does not exist", path.display()));
        }
        if !spec.starts_with("file:") {
            return Err("OpenCode 1.x loads a local build from a file:// URL only".to_owned());
        }
    }
    Ok(())
}

/// Why OpenCode 2 does not load an entry, if it does not.
fn opencode2_load(key: ConfigKey, shape: EntryShape, r: &PluginRef) -> Result<(), String> {
    if key == ConfigKey::Plugins && shape == EntryShape::Tuple {
        return Err(
            "OpenCode 2 reads {\"package\": ..., \"options\": ...} objects in \"plugins\", not \
             [spec, {options}] tuples"
                .to_owned(),
        );
    }
    match r {
        PluginRef::Package { .. } => Ok(()),
        _ if r.is_missing() => Err(format!(
            "{} does not exist",
            r.path().unwrap_or(Path::new("")).display()
        )),
        PluginRef::File { .. } => Err(
            "OpenCode 2 loads only directories from a local path: it drops a module file \
             (\"configured plugin path must be a directory\")"
                .to_owned(),
        ),
        PluginRef::Directory { .. } => Ok(()),
    }
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

/// The line of each top-level `key` (`"plugin"`, `"plugins"`) in a JSONC document, in
/// order (OpenCode, like `JSON.parse`, reads only the last one when there are several).
pub fn plugin_key_lines(text: &str, key: ConfigKey) -> Vec<usize> {
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
        .filter(|prop| prop.name.as_str() == key.name())
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

/// What to say about a document with more than one `plugin` (or `plugins`) key; `None`
/// when each appears once at most.
pub fn duplicate_plugin_keys_note(text: &str) -> Option<String> {
    ConfigKey::ALL.into_iter().find_map(|key| {
        let lines = plugin_key_lines(text, key);
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
            "it has {} \"{}\" keys (lines {} and {last}); OpenCode reads only the last \
             one (line {last}) and ignores the earlier list{s}: merge {them} into one",
            lines.len(),
            key.name(),
            earlier.join(", "),
        ))
    })
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

/// This plugin's entries in a parsed config, `plugin` first, then `plugins` (the order
/// OpenCode 2 merges them in).
pub fn plugin_entries(config: &Value, config_path: &Path) -> Vec<PluginEntry> {
    ConfigKey::ALL
        .into_iter()
        .flat_map(|key| {
            let list = config.get(key.name()).and_then(Value::as_array);
            list.into_iter()
                .flatten()
                .enumerate()
                .filter_map(move |(index, entry)| entry_of(key, index, entry, config_path))
        })
        .collect()
}

fn entry_of(
    key: ConfigKey,
    index: usize,
    entry: &Value,
    config_path: &Path,
) -> Option<PluginEntry> {
    let (shape, spec, options) = match entry {
        Value::String(spec) => (EntryShape::String, spec.as_str(), None),
        Value::Array(tuple) => {
            let spec = tuple.first()?.as_str()?;
            let options = tuple.get(1).and_then(Value::as_object).cloned();
            (EntryShape::Tuple, spec, options)
        }
        Value::Object(object) => {
            let spec = object.get("package")?.as_str()?;
            let options = object.get("options").and_then(Value::as_object).cloned();
            (EntryShape::Object, spec, options)
        }
        _ => return None,
    };
    let reference = match_spec(spec, config_path)?;
    let notes = options.as_ref().map(option_notes).unwrap_or_default();
    let spec = spec.trim().to_owned();
    Some(PluginEntry {
        key,
        index,
        shape,
        opencode1: MajorLoad::from(opencode1_load(key, shape, &spec, &reference)),
        opencode2: MajorLoad::from(opencode2_load(key, shape, &reference)),
        spec,
        reference,
        options,
        notes,
    })
}

/// The local path a spec names: a `file://` URL, or (OpenCode 2's forms) an absolute
/// path or one starting with `./` or `../`.
fn local_path(spec: &str) -> Option<PathBuf> {
    if spec.starts_with("file:") {
        return file_url_path(spec);
    }
    (spec.starts_with('/') || spec.starts_with("./") || spec.starts_with("../"))
        .then(|| PathBuf::from(spec))
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
    let path = local_path(spec)?;
    let path = if path.is_relative() {
        config_path.parent().unwrap_or(Path::new(".")).join(path)
    } else {
        path
    };
    if !is_this_package(&path) {
        return None;
    }
    let exists = path.exists();
    Some(
        if path.is_dir() || (!exists && !looks_like_a_module(&path)) {
            PluginRef::Directory { path, exists }
        } else {
            PluginRef::File { path, exists }
        },
    )
}

/// Whether a path that does not exist names a module file rather than a directory.
fn looks_like_a_module(path: &Path) -> bool {
    path.extension().is_some_and(|ext| {
        ["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx"]
            .iter()
            .any(|m| ext == *m)
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
/// `opencode-sync-plugin@VERSION`) or by a `file://` URL to the directory of a build of
/// it that exists (the form both OpenCode majors load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The entry as it goes into the list (trimmed, otherwise as given).
    pub text: String,
    pub reference: PluginRef,
    /// The module URL given, when it was turned into its directory's.
    pub given_module: Option<String>,
}

impl PluginSpec {
    /// The default entry: the npm name, unpinned.
    pub fn default_name() -> Self {
        Self {
            text: PLUGIN_NAME.to_owned(),
            reference: PluginRef::Package { version: None },
            given_module: None,
        }
    }

    /// Parses and checks a `--plugin` value; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let accepted = format!(
            "give {PLUGIN_NAME}, {PLUGIN_NAME}@VERSION, or a file:// URL to a build of it \
             (file:///ABSOLUTE/PATH/npm)"
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
                    || "file:///ABSOLUTE/PATH/npm".to_owned(),
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
                        given_module: None,
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

    /// A `file://` URL to a build: its directory's URL. A module in it (`npm/index.js`,
    /// what 1.x-era setups listed) is turned into the directory, which OpenCode 1.x loads
    /// through its `package.json` and OpenCode 2 through its `index.js`.
    fn parse_file_url(text: &str) -> Result<Self, String> {
        let example = "file:///home/me/opencode-sync-plugin/npm";
        let path = file_url_path(text)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| {
                format!("a file:// URL needs an absolute path (three slashes), like {example}")
            })?;
        let (text, dir, given_module) = if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let url = text.rsplit_once('/').map_or(text, |(dir_url, _)| dir_url);
            (url.to_owned(), dir, Some(text.to_owned()))
        } else if path.is_dir() {
            let url = text
                .strip_suffix('/')
                .filter(|u| u.len() > "file:///".len());
            (url.unwrap_or(text).to_owned(), path, None)
        } else {
            return Err(format!(
                "there is no {} (a checkout's npm directory has the plugin after scripts/build)",
                path.display()
            ));
        };
        if !is_this_package(&dir) || !dir.join("package.json").is_file() {
            return Err(format!(
                "{} is not a build of {PLUGIN_NAME} (no package.json naming it); point at \
                 the npm directory of a checkout, or the directory of an installed package",
                dir.display()
            ));
        }
        if !dir.join("index.js").is_file() {
            return Err(format!(
                "{} has no index.js: build the plugin first (scripts/build)",
                dir.display()
            ));
        }
        Ok(Self {
            text,
            reference: PluginRef::Directory {
                path: dir,
                exists: true,
            },
            given_module,
        })
    }

    /// Whether a listed entry is this very spec (same version, or same directory).
    pub fn is_listed_as(&self, listed: &PluginRef) -> bool {
        let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        match (&self.reference, listed) {
            (PluginRef::Package { version: a }, PluginRef::Package { version: b }) => a == b,
            (PluginRef::File { path: a, .. }, PluginRef::File { path: b, .. })
            | (PluginRef::Directory { path: a, .. }, PluginRef::Directory { path: b, .. }) => {
                canonical(a) == canonical(b)
            }
            _ => false,
        }
    }

    /// Whether a listed entry is the same build as this directory spec, named by its
    /// module (`file:///…/npm/index.js`): the form OpenCode 2 drops.
    pub fn is_module_of(&self, listed: &PluginRef) -> bool {
        let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        match (&self.reference, listed) {
            (PluginRef::Directory { path: dir, .. }, PluginRef::File { path: module, .. }) => {
                module
                    .parent()
                    .is_some_and(|m| canonical(m) == canonical(dir))
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
        assert_eq!(plugin_key_lines(text, ConfigKey::Plugin), vec![2, 4]);
        assert_eq!(
            duplicate_plugin_keys_note(text).unwrap(),
            "it has 2 \"plugin\" keys (lines 2 and 4); OpenCode reads only the last one \
             (line 4) and ignores the earlier list: merge it into one"
        );
        assert_eq!(duplicate_plugin_keys_note("{\"plugin\": []}"), None);
        assert_eq!(duplicate_plugin_keys_note("{oops"), None);
    }

    #[test]
    fn each_entry_says_which_major_loads_it() {
        let value = parse_jsonc(
            r#"{
  "plugin": ["opencode-sync-plugin", {"package": "opencode-sync-plugin"},
             "file:///gone/opencode-sync-plugin/npm/index.js"],
  "plugins": [{"package": "opencode-sync-plugin@1.0.0", "options": {"syncReasoning": true}},
              ["opencode-sync-plugin", {}], "/gone/opencode-sync-plugin/npm", "-other"],
}"#,
        )
        .unwrap();
        let entries = plugin_entries(&value, Path::new("/p/opencode.json"));
        let seen: Vec<(ConfigKey, usize, EntryShape, bool, bool)> = entries
            .iter()
            .map(|e| {
                (
                    e.key,
                    e.index,
                    e.shape,
                    e.opencode1.loads,
                    e.opencode2.loads,
                )
            })
            .collect();
        use ConfigKey::{Plugin, Plugins};
        use EntryShape::{Object, String, Tuple};
        assert_eq!(
            seen,
            vec![
                (Plugin, 0, String, true, true),
                (Plugin, 1, Object, false, true),
                (Plugin, 2, String, false, false),
                (Plugins, 0, Object, false, true),
                (Plugins, 1, Tuple, false, false),
                (Plugins, 2, String, false, false),
            ]
        );
        assert!(matches!(
            entries[2].reference,
            PluginRef::File { exists: false, .. }
        ));
        assert!(matches!(
            entries[5].reference,
            PluginRef::Directory { exists: false, .. }
        ));
        assert_eq!(entries[3].options.as_ref().unwrap().len(), 1);
        assert!(
            entries[3]
                .opencode1
                .why_not
                .as_deref()
                .unwrap()
                .contains("\"plugin\" key"),
            "{:?}",
            entries[3]
        );
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
