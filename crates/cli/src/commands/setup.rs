//! `opencode-sync setup`: tell OpenCode to load the plugin. Adds `"opencode-sync-plugin"`
//! (or the `--plugin` spec: a pinned version, a `file://` URL to a local build's
//! directory) to OpenCode's global config (or a project's with `--project`): to the
//! `plugins` list of a config that has one (OpenCode 2's key), else to `plugin` (which
//! both majors read). The JSONC is edited through a concrete syntax tree so every other
//! setting, comment and trailing comma stays as written. Does nothing when the plugin is
//! already listed in any form in either key (name, `name@version`, `file://` to a build,
//! `[spec, {options}]` tuple, `{"package", "options"}` object): a second entry would have
//! OpenCode load two copies, each syncing every session. The one change it makes to an
//! existing entry: a build listed by its module (`file:///…/npm/index.js`, which OpenCode 2
//! drops) is pointed at its directory when `--plugin` names that directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use opencode_sync_core::paths::{self, Environment};

use crate::cli::SetupArgs;
use crate::fsutil::{self, CONFIG_LIMIT, read_text_file};
use crate::opencode_config::{self, ConfigFileReport, ConfigKey, PluginEntry, PluginSpec, Scope};
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

/// What a new config file starts with (OpenCode writes the same line itself).
const SCHEMA: &str = "https://opencode.ai/config.json";

pub fn run(args: &SetupArgs) -> Result<ExitCode> {
    let wanted = args.plugin.clone().unwrap_or_else(PluginSpec::default_name);
    let spec = &wanted.text;
    let (scope, dir) = match &args.project {
        None => (Scope::Global, paths::opencode_config_dir(&ProcessEnv)?),
        Some(dir) => (Scope::Project, project_dir(dir.as_deref())?),
    };
    let where_ = match scope {
        Scope::Global => "OpenCode's global config (all projects)".to_owned(),
        _ => format!("the project {}", dir.display()),
    };

    if let Some(module) = &wanted.given_module {
        outln!(
            "{module} is the module of a build; listing its directory \"{spec}\" instead, \
             which OpenCode 1.x and 2 both load (OpenCode 2 loads only directories)."
        );
    }

    // Already listed in a file of that layer: nothing to do.
    let reports: Vec<ConfigFileReport> = opencode_config::inspect(&ProcessEnv, &dir)
        .into_iter()
        .filter(|r| r.scope == scope)
        .collect();
    let mut edit = Edit::Add;
    // Without --plugin any form will do; with it, another form is kept (and said so):
    // adding a second entry would load two copies of the plugin.
    if let Some(r) = reports.iter().find(|r| !r.entries.is_empty()) {
        let listed: Vec<String> = r.entries.iter().map(PluginEntry::describe).collect();
        let same = r.entries.iter().any(|e| wanted.is_listed_as(&e.reference));
        let module_form = r.entries.iter().find(|e| wanted.is_module_of(&e.reference));
        if let (false, Some(entry)) = (same, module_form) {
            edit = Edit::Repoint {
                file: r.path.clone(),
                key: entry.key,
                index: entry.index,
                was: entry.describe(),
            };
        } else {
            if args.plugin.is_none() || same {
                outln!(
                    "{} already loads the plugin ({}); nothing to change.",
                    r.path.display(),
                    listed.join(", ")
                );
                warn_about_majors(r);
            } else {
                let gone = r.entries.iter().any(|e| e.reference.is_missing());
                ui::warn(&format!(
                    "{} already lists the plugin as {}; not adding \"{spec}\": OpenCode would \
                     load both, each syncing every session.{}",
                    r.path.display(),
                    listed.join(", "),
                    if gone {
                        " The listed file does not exist any more, so OpenCode cannot load it."
                    } else {
                        ""
                    }
                ));
                outln!(
                    "OpenCode keeps loading {}. To load \"{spec}\" instead, replace that entry in {} \
                     (or remove it and run this command again).",
                    listed.join(", "),
                    r.path.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    }

    let file = match &edit {
        Edit::Add => target_file(&dir),
        Edit::Repoint { file, .. } => file.clone(),
    };
    for r in reports.iter().filter(|r| r.path != file) {
        if let Some(err) = &r.error {
            ui::warn(&format!("{}: {err}", r.path.display()));
        }
    }
    let old = read_text_file(&file, CONFIG_LIMIT)?;
    if let Some(note) = old
        .as_deref()
        .and_then(opencode_config::duplicate_plugin_keys_note)
    {
        ui::warn(&format!(
            "{}: {note}; the plugin goes into the last one",
            file.display()
        ));
    }
    // A symlink (dotfiles kept in a repository) is written through, also when it
    // dangles: the file it points at is created, the link stays.
    let written = fsutil::write_target(&file)
        .with_context(|| format!("cannot follow the symbolic link {}", file.display()))?;
    let through = if written == file {
        String::new()
    } else {
        format!(" (through the link to {})", written.display())
    };
    let text = old.as_deref().unwrap_or("");
    let new = match &edit {
        Edit::Add => add_plugin(text, old.is_none(), &wanted, &file),
        Edit::Repoint { key, index, .. } => repoint_entry(text, *key, *index, &wanted, &file),
    }
    .with_context(|| {
        format!(
            "cannot add the plugin to {}; nothing was changed",
            file.display()
        )
    })?;

    if args.dry_run {
        match (&old, &edit) {
            (_, Edit::Repoint { was, .. }) => {
                outln!("Would point {was} in {} at \"{spec}\":\n", file.display())
            }
            (Some(_), Edit::Add) => outln!("Would add \"{spec}\" to {}:\n", file.display()),
            (None, Edit::Add) => outln!("Would create {} for {where_}:\n", file.display()),
        }
        ui::out(format_args!("{}", diff(old.as_deref().unwrap_or(""), &new)));
        outln!("\n(dry run: nothing was written)");
        return Ok(ExitCode::SUCCESS);
    }

    // A new global file may later hold provider keys: private. A project's is shared.
    let new_mode = if scope == Scope::Global { 0o600 } else { 0o644 };
    fsutil::replace_atomically(&file, new.as_bytes(), new_mode)
        .with_context(|| format!("cannot write {}", file.display()))?;
    match (old, &edit) {
        (_, Edit::Repoint { was, .. }) => outln!(
            "Pointed {was} in {}{through} at its directory \"{spec}\": OpenCode 2 loads \
             only directories, OpenCode 1.x loads both.",
            file.display()
        ),
        (Some(_), Edit::Add) => outln!(
            "Added \"{spec}\" to {}{through} ({where_}).",
            file.display()
        ),
        (None, Edit::Add) => outln!(
            "Created {}{through} for {where_}, loading \"{spec}\".",
            file.display()
        ),
    }
    outln!(
        "OpenCode loads the plugin from its next start. Run `opencode-sync verify` to check the whole setup."
    );
    Ok(ExitCode::SUCCESS)
}

/// What `setup` changes in a config file.
enum Edit {
    /// Append the spec to the list.
    Add,
    /// Point the entry `index` of `key` (this build, listed by its module) at the
    /// directory, keeping its shape and options.
    Repoint {
        file: PathBuf,
        key: ConfigKey,
        index: usize,
        was: String,
    },
}

/// Warns about the entries OpenCode 2 does not load (the module form it drops), with the
/// fix. (A `plugins` entry, which 1.x never reads, is what an OpenCode 2 config holds:
/// `verify` judges it against the installed OpenCode.)
fn warn_about_majors(r: &ConfigFileReport) {
    for e in &r.entries {
        if let Some(why) = &e.opencode2.why_not {
            ui::warn(&format!(
                "{}: OpenCode 2 does not load {}: {why}{}",
                r.path.display(),
                e.describe(),
                fix_for(e)
            ));
        }
    }
}

/// How to make an entry load in both majors, when there is a simple way.
pub fn fix_for(e: &PluginEntry) -> String {
    match &e.reference {
        opencode_config::PluginRef::File { path, .. } if !e.reference.is_missing() => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            format!(
                "; list its directory instead: `opencode-sync setup --plugin file://{}`",
                dir.display().to_string().replace(' ', "%20")
            )
        }
        _ => String::new(),
    }
}

/// `--project` without a directory: the git repository around the current directory
/// (the outermost place OpenCode reads a project config from), else the current directory.
fn project_dir(given: Option<&Path>) -> Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let home = ProcessEnv.home_dir();
            let mut root = None;
            for d in cwd.ancestors() {
                if d.join(".git").exists() {
                    root = Some(d.to_path_buf());
                    break;
                }
                if Some(d) == home.as_deref() {
                    break;
                }
            }
            root.unwrap_or(cwd)
        }
    };
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

/// The file to edit in a config directory: `opencode.jsonc` when it exists (OpenCode
/// reads it after `opencode.json`, and it is what OpenCode itself creates), else
/// `opencode.json`, existing or new.
///
/// Anything named `opencode.jsonc` counts (a FIFO is then refused when read, a dangling
/// link is written through), so setup never edits a file OpenCode would not read last.
fn target_file(dir: &Path) -> PathBuf {
    let jsonc = dir.join("opencode.jsonc");
    if fs::symlink_metadata(&jsonc).is_ok() {
        jsonc
    } else {
        dir.join("opencode.json")
    }
}

/// Appends the plugin's spec to the `plugin` list of a JSONC document (creating the list,
/// or the document), keeping everything else byte for byte. `file` is where the document
/// lives (a relative `file://` entry is resolved against it).
fn add_plugin(text: &str, new_file: bool, wanted: &PluginSpec, file: &Path) -> Result<String> {
    // A byte order mark (Windows editors write one) is kept, but the parser must not see it.
    let body = opencode_config::strip_bom(text);
    let bom = &text[..text.len() - body.len()];
    let text = body;
    let root = CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|e| anyhow::anyhow!("invalid JSONC: {e}"))?;
    if root.value().is_some_and(|v| v.as_object().is_none()) {
        bail!("the top level is not a JSON object");
    }
    let object = root.object_value_or_set();
    if new_file {
        object.append("$schema", CstInputValue::String(SCHEMA.to_owned()));
    }
    let name = CstInputValue::String(wanted.text.clone());
    // A config with `plugins` is OpenCode 2's: the entry goes there. Else into `plugin`,
    // which both majors read. The last key when there are several: the one OpenCode reads.
    let last = |key: ConfigKey| {
        object
            .properties()
            .into_iter()
            .rev()
            .find(|prop| prop.decoded_name().as_deref() == Some(key.name()))
    };
    let (key, list) = match last(ConfigKey::Plugins) {
        Some(prop) => (ConfigKey::Plugins, Some(prop)),
        None => (ConfigKey::Plugin, last(ConfigKey::Plugin)),
    };
    match list {
        Some(prop) => match prop.array_value() {
            Some(list) => {
                list.append(name);
            }
            None => bail!("\"{}\" is not a list", key.name()),
        },
        None => {
            object.append(key.name(), CstInputValue::Array(vec![name]));
        }
    }
    let mut out = format!("{bom}{root}");
    if (new_file || text.ends_with('\n')) && !out.ends_with('\n') {
        out.push_str(if text.contains("\r\n") { "\r\n" } else { "\n" });
    }
    check_lists(&out, wanted, file)?;
    Ok(out)
}

/// What OpenCode will read: the edited document lists the plugin as wanted.
fn check_lists(out: &str, wanted: &PluginSpec, file: &Path) -> Result<()> {
    let value = opencode_config::parse_jsonc(out).map_err(anyhow::Error::msg)?;
    let entries = opencode_config::plugin_entries(&value, file);
    if !entries.iter().any(|e| wanted.is_listed_as(&e.reference)) {
        bail!("the edited file does not list the plugin (please report this)");
    }
    Ok(())
}

/// Replaces the spec of entry `index` of the last `key` list (a string, a tuple's first
/// element, an object's `package`) with the wanted one, keeping everything else.
fn repoint_entry(
    text: &str,
    key: ConfigKey,
    index: usize,
    wanted: &PluginSpec,
    file: &Path,
) -> Result<String> {
    let body = opencode_config::strip_bom(text);
    let bom = &text[..text.len() - body.len()];
    let root = CstRootNode::parse(body, &ParseOptions::default())
        .map_err(|e| anyhow::anyhow!("invalid JSONC: {e}"))?;
    let object = root
        .object_value()
        .context("the top level is not a JSON object")?;
    let list = object
        .properties()
        .into_iter()
        .rev()
        .find(|prop| prop.decoded_name().as_deref() == Some(key.name()))
        .and_then(|prop| prop.array_value())
        .with_context(|| format!("\"{}\" is not a list", key.name()))?;
    let element = list
        .elements()
        .into_iter()
        .nth(index)
        .context("the entry moved while being edited")?;
    let spec = if let Some(tuple) = element.as_array() {
        tuple.elements().into_iter().next()
    } else if let Some(object) = element.as_object() {
        object.get("package").and_then(|p| p.value())
    } else {
        Some(element)
    };
    spec.and_then(|s| s.as_string_lit())
        .context("the entry is not a string")?
        .replace_with(CstInputValue::String(wanted.text.clone()));
    let out = format!("{bom}{root}");
    check_lists(&out, wanted, file)?;
    Ok(out)
}

/// A line diff of an edit that inserts or changes one run of lines, with two lines of
/// context: enough to show what `setup` adds.
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = String::new();
    for line in &a[prefix.saturating_sub(2)..prefix] {
        out.push_str(&format!("  {line}\n"));
    }
    for line in &a[prefix..a.len() - suffix] {
        out.push_str(&format!("- {line}\n"));
    }
    for line in &b[prefix..b.len() - suffix] {
        out.push_str(&format!("+ {line}\n"));
    }
    for line in a[a.len() - suffix..].iter().take(2) {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(text: &str, new_file: bool) -> Result<String> {
        let file = Path::new("/p/opencode.json");
        add_plugin(text, new_file, &PluginSpec::default_name(), file)
    }

    #[test]
    fn adds_a_pinned_version_as_given() {
        let wanted = PluginSpec::parse(" opencode-sync-plugin@0.2.0 ").unwrap();
        let file = Path::new("/p/opencode.json");
        assert_eq!(
            add_plugin(
                "{\"plugin\": [\"opencode-sync-plugin-extra\"]}",
                false,
                &wanted,
                file
            )
            .unwrap(),
            "{\"plugin\": [\"opencode-sync-plugin-extra\", \"opencode-sync-plugin@0.2.0\"]}"
        );
    }

    #[test]
    fn appends_to_an_existing_list_keeping_comments_and_trailing_commas() {
        let text = "{\n  // the model\n  \"model\": \"x/y\",\n  /* plugins */\n  \"plugin\": [\n    \"other\", // mine\n  ],\n}\n";
        assert_eq!(
            add(text, false).unwrap(),
            "{\n  // the model\n  \"model\": \"x/y\",\n  /* plugins */\n  \"plugin\": [\n    \"other\", // mine\n    \"opencode-sync-plugin\",\n  ],\n}\n"
        );
    }

    #[test]
    fn adds_the_list_when_there_is_none() {
        assert_eq!(
            add("{\n\t\"model\": \"x\", // c\n}\n", false).unwrap(),
            "{\n\t\"model\": \"x\", // c\n\t\"plugin\": [\"opencode-sync-plugin\"],\n}\n"
        );
        assert_eq!(
            add("", true).unwrap(),
            "{\n  \"$schema\": \"https://opencode.ai/config.json\",\n  \"plugin\": [\"opencode-sync-plugin\"]\n}\n"
        );
        assert_eq!(
            add("{}", false).unwrap(),
            "{\n  \"plugin\": [\"opencode-sync-plugin\"]\n}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        let err = |t: &str| add(t, false).unwrap_err().to_string();
        assert!(
            err("{\"plugin\": [").starts_with("invalid JSONC"),
            "{}",
            err("{\"plugin\": [")
        );
        assert_eq!(err("[1]"), "the top level is not a JSON object");
        assert_eq!(err("{\"plugin\": \"x\"}"), "\"plugin\" is not a list");
    }

    #[test]
    fn keeps_a_byte_order_mark_and_edits_the_last_plugin_key_as_opencode_reads_it() {
        assert_eq!(
            add("\u{feff}{\"plugin\": []}\n", false).unwrap(),
            "\u{feff}{\"plugin\": [\"opencode-sync-plugin\"]}\n"
        );
        assert_eq!(
            add("{\"plugin\": [\"a\"],\n \"plugin\": [\"b\"]}", false).unwrap(),
            "{\"plugin\": [\"a\"],\n \"plugin\": [\"b\", \"opencode-sync-plugin\"]}"
        );
    }

    #[test]
    fn diff_shows_the_inserted_line_with_context() {
        let old = "{\n  \"plugin\": [\n    \"a\"\n  ]\n}\n";
        let new = add(old, false).unwrap();
        assert_eq!(
            diff(old, &new),
            "  {\n    \"plugin\": [\n-     \"a\"\n+     \"a\",\n+     \"opencode-sync-plugin\"\n    ]\n  }\n"
        );
        assert_eq!(diff("", "{\n}\n"), "+ {\n+ }\n");
    }
}
