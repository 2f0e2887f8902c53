//! `opencode-sync verify`: will sync happen the next time OpenCode starts? Checks the
//! credentials' shape (not the network: that is `status`) and that one of OpenCode's
//! config files loads the plugin, and prints the fix for each problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use opencode_sync_core::config::resolve_credentials;
use opencode_sync_core::paths;
use serde_json::{Value, json};

use super::unhealthy;
use crate::cli::VerifyArgs;
use crate::config_store::ConfigStore;
use crate::opencode_config::{self, ConfigFileReport, PLUGIN_NAME, PluginRef};
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

/// One thing that stops sync, and how to fix it.
#[derive(Debug, serde::Serialize)]
struct Problem {
    what: String,
    fix: String,
}

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let project = match &args.project {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let project = project.canonicalize().unwrap_or(project);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    // Credentials.
    let store = ConfigStore::locate()?;
    warnings.extend(store.permission_warning());
    let credentials = match store.load() {
        Err(e) => {
            problems.push(Problem {
                what: format!("{e:#}"),
                fix: "run `opencode-sync login` (the unreadable file is kept aside)".to_owned(),
            });
            None
        }
        Ok(file) => {
            // Options the plugin ignores (unknown names, with the option a misspelt one
            // likely meant; bad values).
            for note in file.iter().flat_map(|f| f.options().1) {
                warnings.push(format!("{}: {note}", store.path.display()));
            }
            match resolve_credentials(file.as_ref(), &ProcessEnv) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(Problem {
                        what: e.to_string(),
                        fix: "run `opencode-sync login`".to_owned(),
                    });
                    None
                }
            }
        }
    };

    // OpenCode configuration.
    let reports = opencode_config::inspect(&ProcessEnv, &project);
    for r in &reports {
        if let Some(err) = &r.error {
            problems.push(Problem {
                what: format!("{}: {err}", r.path.display()),
                fix: "fix the file: OpenCode cannot start with it either".to_owned(),
            });
        }
        for note in &r.notes {
            warnings.push(format!("{}: {note}", r.path.display()));
        }
        for entry in &r.entries {
            if let PluginRef::File {
                path,
                exists: false,
            } = &entry.reference
            {
                problems.push(Problem {
                    what: format!(
                        "{} points at {}, which does not exist",
                        r.path.display(),
                        path.display()
                    ),
                    fix: format!("use \"{PLUGIN_NAME}\" or the path of a built plugin"),
                });
            }
            for note in &entry.notes {
                warnings.push(format!("{}: {note}", r.path.display()));
            }
            if entry.options.as_ref().and_then(|o| o.get("enabled")) == Some(&Value::Bool(false)) {
                warnings.push(format!(
                    "{}: the plugin is listed with \"enabled\": false",
                    r.path.display()
                ));
            }
        }
    }
    let loaded: Vec<&ConfigFileReport> = reports.iter().filter(|r| !r.entries.is_empty()).collect();
    let global_file = global_config_file()?;
    if loaded.is_empty() {
        problems.push(Problem {
            what: "OpenCode will not load the plugin: no OpenCode config file lists it".to_owned(),
            fix: format!(
                "run `opencode-sync setup` (all projects) or `opencode-sync setup --project` (this project), or add {{ \"plugin\": [\"{PLUGIN_NAME}\"] }} to {} (all projects) or to opencode.json in {} (this project)",
                global_file.display(),
                project.display()
            ),
        });
    }

    if args.json {
        ui::print_json(&json!({
            "ok": problems.is_empty(),
            "project": project,
            "credentials": credentials.as_ref().map(|c| json!({
                "url": c.url.as_str(),
                "apiKey": c.key.masked(),
                "urlSource": c.url_source.to_string(),
                "apiKeySource": c.key_source.to_string(),
            })),
            "opencodeConfigs": reports,
            "pluginLoaded": !loaded.is_empty(),
            "problems": problems,
            "warnings": warnings,
        }));
    } else {
        outln!("Credentials");
        if let Some(c) = &credentials {
            outln!(
                "  {} {} with key {} ({})",
                ui::mark(true),
                c.url,
                c.key.masked(),
                c.key_source
            );
        }
        outln!("OpenCode config (project {})", project.display());
        if reports.is_empty() {
            outln!("  (no OpenCode config files found)");
        }
        for r in &reports {
            let listed = describe_entries(r);
            outln!(
                "  {} {} [{:?}]: {listed}",
                ui::mark(r.error.is_none()),
                r.path.display(),
                r.scope
            );
        }
        for w in &warnings {
            ui::warn(w);
        }
        if problems.is_empty() {
            outln!(
                "\nReady: OpenCode will load the plugin. Run `opencode-sync status` to check the server accepts the key."
            );
        } else {
            outln!();
            for p in &problems {
                outln!("  {} {}", ui::mark(false), p.what);
                outln!("        fix: {}", p.fix);
            }
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        unhealthy()
    })
}

fn describe_entries(r: &ConfigFileReport) -> String {
    if r.error.is_some() {
        return "unreadable".to_owned();
    }
    if r.entries.is_empty() {
        return format!("does not list {PLUGIN_NAME}");
    }
    r.entries
        .iter()
        .map(|e| {
            let what = match &e.reference {
                PluginRef::Package { version: None } => PLUGIN_NAME.to_owned(),
                PluginRef::Package { version: Some(v) } => format!("{PLUGIN_NAME}@{v}"),
                PluginRef::File { path, .. } => format!("file://{}", path.display()),
            };
            if e.options.is_some() {
                format!("loads {what} with options")
            } else {
                format!("loads {what}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn global_config_file() -> Result<PathBuf> {
    let dir = paths::opencode_config_dir(&ProcessEnv)?;
    let jsonc = dir.join("opencode.jsonc");
    Ok(if jsonc.is_file() {
        jsonc
    } else {
        dir.join("opencode.json")
    })
}

/// What `login` prints as the next step, depending on whether OpenCode already loads
/// the plugin from the current directory's point of view.
pub fn next_step_text() -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let reports = opencode_config::inspect(&ProcessEnv, Path::new(&cwd));
    if let Some(r) = reports.iter().find(|r| !r.entries.is_empty()) {
        return format!(
            "OpenCode already loads the plugin ({}). Start OpenCode and your sessions sync automatically.",
            r.path.display()
        );
    }
    let global = global_config_file().map_or_else(
        |_| "~/.config/opencode/opencode.json".to_owned(),
        |p| p.display().to_string(),
    );
    format!(
        "Next step: tell OpenCode to load the plugin: run `opencode-sync setup` (all projects),\n\
         or add this to {global} (all projects) or to opencode.json in your project:\n\n  {{\n    \"plugin\": [\"{PLUGIN_NAME}\"]\n  }}\n\n\
         Then run `opencode-sync verify` to check the setup."
    )
}
