//! `opencode-sync setup`: tell OpenCode to load the plugin. Adds `"opencode-sync-plugin"`
//! (or the `--plugin` spec: a pinned version, a `file://` URL to a local build) to the
//! `plugin` list of OpenCode's global config (or of a project's with `--project`),
//! editing the JSONC through a concrete syntax tree so every other setting, comment and
//! trailing comma stays as written. Does nothing when the plugin is already listed in any
//! form (name, `name@version`, `file://` to a build of it, `[spec, {options}]` tuple): a
//! second entry would have OpenCode load two copies, each syncing every session.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use opencode_sync_core::paths::{self, Environment};

use crate::cli::SetupArgs;
use crate::fsutil::{self, CONFIG_LIMIT, read_text_file};
use crate::opencode_config::{self, ConfigFileReport, PluginSpec, Scope};
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

    // Already listed in a file of that layer: nothing to do.
    let reports: Vec<ConfigFileReport> = opencode_config::inspect(&ProcessEnv, &dir)
        .into_iter()
        .filter(|r| r.scope == scope)
        .collect();
    // Without --plugin any form will do; with it, another form is kept (and said so):
    // adding a second entry would load two copies of the plugin.
    if let Some(r) = reports.iter().find(|r| !r.entries.is_empty()) {
        let listed: Vec<String> = r.entries.iter().map(describe).collect();
        let same = r.entries.iter().any(|e| wanted.is_listed_as(&e.reference));
        if args.plugin.is_none() || same {
            outln!(
                "{} already loads the plugin ({}); nothing to change.",
                r.path.display(),
                listed.join(", ")
            );
        } else {
            let gone = r.entries.iter().any(|e| {
                matches!(
                    e.reference,
                    opencode_config::PluginRef::File { exists: false, .. }
                )
            });
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

    let file = target_file(&dir);
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
    let new = add_plugin(old.as_deref().unwrap_or(""), old.is_none(), &wanted, &file)
        .with_context(|| {
            format!(
                "cannot add the plugin to {}; nothing was changed",
                file.display()
            )
        })?;

    if args.dry_run {
        match &old {
            Some(_) => outln!("Would add \"{spec}\" to {}:\n", file.display()),
            None => outln!("Would create {} for {where_}:\n", file.display()),
        }
        ui::out(format_args!("{}", diff(old.as_deref().unwrap_or(""), &new)));
        outln!("\n(dry run: nothing was written)");
        return Ok(ExitCode::SUCCESS);
    }

    // A new global file may later hold provider keys: private. A project's is shared.
    let new_mode = if scope == Scope::Global { 0o600 } else { 0o644 };
    fsutil::replace_atomically(&file, new.as_bytes(), new_mode)
        .with_context(|| format!("cannot write {}", file.display()))?;
    match old {
        Some(_) => outln!(
            "Added \"{spec}\" to {}{through} ({where_}).",
            file.display()
        ),
        None => outln!(
            "Created {}{through} for {where_}, loading \"{spec}\".",
            file.display()
        ),
    }
    outln!(
        "OpenCode loads the plugin from its next start. Run `opencode-sync verify` to check the whole setup."
    );
    Ok(ExitCode::SUCCESS)
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
    // The last `plugin` key when there are several: the one OpenCode reads.
    let plugin = object
        .properties()
        .into_iter()
        .rev()
        .find(|prop| prop.decoded_name().as_deref() == Some("plugin"));
    match plugin {
        Some(prop) => match prop.array_value() {
            Some(list) => {
                list.append(name);
            }
            None => bail!("\"plugin\" is not a list"),
        },
        None => {
            object.append("plugin", CstInputValue::Array(vec![name]));
        }
    }
    let mut out = format!("{bom}{root}");
    if (new_file || text.ends_with('\n')) && !out.ends_with('\n') {
        out.push_str(if text.contains("\r\n") { "\r\n" } else { "\n" });
    }

    // What OpenCode will read: the same document, now listing the plugin.
    let value = opencode_config::parse_jsonc(&out).map_err(anyhow::Error::msg)?;
    let entries = opencode_config::plugin_entries(&value, file);
    if !entries.iter().any(|e| wanted.is_listed_as(&e.reference)) {
        bail!("the edited file does not list the plugin (please report this)");
    }
    Ok(out)
}

fn describe(entry: &opencode_config::PluginEntry) -> String {
    let spec = &entry.spec;
    if entry.options.is_some() {
        format!("[\"{spec}\", {{options}}]")
    } else {
        format!("\"{spec}\"")
    }
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
