//! `opencode-sync verify`: will sync happen the next time OpenCode starts? Checks the
//! credentials' shape (not the network: that is `status`) and that one of OpenCode's
//! config files loads the plugin in the OpenCode that is installed (`opencode --version`
//! on PATH: 1.x reads `plugin`, 2 reads `plugins` and `plugin` and only directories as
//! local paths), says per entry which major loads it, and prints the fix for each problem.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use opencode_sync_core::config::resolve_credentials;
use opencode_sync_core::paths;
use serde_json::{Value, json};

use super::setup::fix_for;
use super::unhealthy;
use crate::cli::VerifyArgs;
use crate::config_store::ConfigStore;
use crate::opencode_config::{self, ConfigFileReport, PLUGIN_NAME, PluginEntry, PluginRef};
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

    // OpenCode configuration, as the installed OpenCode reads it.
    let installed = installed_opencode();
    let major = installed.major();
    let reports = opencode_config::inspect(&ProcessEnv, &project);
    // Entries the installed OpenCode drops: a problem when it loads none of the others.
    let mut dropped = Vec::new();
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
            if let Some(path) = entry
                .reference
                .path()
                .filter(|_| entry.reference.is_missing())
            {
                problems.push(Problem {
                    what: format!(
                        "{} points at {}, which does not exist",
                        r.path.display(),
                        path.display()
                    ),
                    fix: format!(
                        "use \"{PLUGIN_NAME}\" or the file:// URL of a built plugin's directory"
                    ),
                });
                continue;
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
            // Which major drops it: a problem for the installed one, a warning when the
            // installed one is not known.
            for (m, name) in [(1, "1.x"), (2, "2")] {
                let Some(why) = &entry.load_in(m).why_not else {
                    continue;
                };
                let what = format!(
                    "{}: OpenCode {name} does not load {}: {why}",
                    r.path.display(),
                    entry.describe()
                );
                match major {
                    Some(installed) if (installed >= 2) == (m >= 2) => dropped.push(Problem {
                        what,
                        fix: fix_text(entry),
                    }),
                    Some(_) => {}
                    None => warnings.push(format!("{what}{}", fix_for(entry))),
                }
            }
        }
    }
    let loads = |e: &PluginEntry| match major {
        Some(m) => e.load_in(m).loads,
        None => e.opencode1.loads || e.opencode2.loads,
    };
    let loaded: Vec<&ConfigFileReport> = reports
        .iter()
        .filter(|r| r.entries.iter().any(loads))
        .collect();
    let listed = reports.iter().any(|r| !r.entries.is_empty());
    if loaded.is_empty() {
        problems.extend(dropped);
    } else {
        warnings.extend(
            dropped
                .into_iter()
                .map(|p| format!("{}; {}", p.what, p.fix)),
        );
    }
    let global_file = global_config_file()?;
    if !listed {
        problems.push(Problem {
            what: "OpenCode will not load the plugin: no OpenCode config file lists it".to_owned(),
            fix: format!(
                "run `opencode-sync setup` (all projects) or `opencode-sync setup --project` (this project), or add {{ \"plugin\": [\"{PLUGIN_NAME}\"] }} to {} (all projects) or to opencode.json in {} (this project); OpenCode 1.x and 2 both read \"plugin\"",
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
            "opencode": {
                "version": installed.version(),
                "major": major,
                "found": installed.describe(),
            },
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
        outln!("OpenCode");
        outln!("  {}", installed.describe());
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
                "\nReady: OpenCode{} will load the plugin. Run `opencode-sync status` to check the server accepts the key.",
                installed
                    .version()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
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
                PluginRef::File { path, .. } | PluginRef::Directory { path, .. } => {
                    format!("file://{}", path.display())
                }
            };
            let with = if e.options.is_some() {
                " with options"
            } else {
                ""
            };
            let key = if e.key == opencode_config::ConfigKey::Plugins {
                " (from \"plugins\")"
            } else {
                ""
            };
            let majors = match (e.opencode1.loads, e.opencode2.loads) {
                (true, true) => "OpenCode 1.x and 2",
                (true, false) => "OpenCode 1.x only, not 2",
                (false, true) => "OpenCode 2 only, not 1.x",
                (false, false) => "neither OpenCode 1.x nor 2",
            };
            format!("loads {what}{with}{key} in {majors}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fix for an entry the installed OpenCode does not load.
fn fix_text(entry: &PluginEntry) -> String {
    let fix = fix_for(entry);
    if let Some(rest) = fix.strip_prefix("; ") {
        return rest.to_owned();
    }
    format!(
        "list \"{PLUGIN_NAME}\" in \"plugin\" (both majors read it), or run `opencode-sync setup`"
    )
}

/// How long `opencode --version` may take before its version counts as unknown.
const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What `opencode --version` said.
#[derive(Debug)]
enum InstalledOpencode {
    Version(String),
    NotOnPath,
    /// It ran but gave no version (failed, timed out, printed something else).
    Unknown(String),
}

impl InstalledOpencode {
    fn version(&self) -> Option<&str> {
        match self {
            Self::Version(v) => Some(v),
            _ => None,
        }
    }

    fn major(&self) -> Option<u64> {
        self.version()?.split('.').next()?.parse().ok()
    }

    fn describe(&self) -> String {
        match self {
            Self::Version(v) => {
                let reads = if self.major().is_some_and(|m| m >= 2) {
                    "reads \"plugins\" and \"plugin\", local builds as directories"
                } else {
                    "reads \"plugin\""
                };
                format!("{v} (`opencode --version`; {reads})")
            }
            Self::NotOnPath => {
                "version unknown: no `opencode` on PATH (entries are checked for 1.x and 2)"
                    .to_owned()
            }
            Self::Unknown(why) => format!(
                "version unknown: `opencode --version` {why} (entries are checked for 1.x and 2)"
            ),
        }
    }
}

/// Runs `opencode --version`, bounded: a missing, failing, hanging or chatty binary
/// gives no version, never a hang (a reader thread holds the pipe, so a grandchild that
/// keeps it open cannot block us either).
fn installed_opencode() -> InstalledOpencode {
    let spawned = Command::new("opencode")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return InstalledOpencode::NotOnPath,
        Err(e) => return InstalledOpencode::Unknown(format!("could not start: {e}")),
    };
    let deadline = Instant::now() + VERSION_PROBE_TIMEOUT;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.take(4096).read_to_string(&mut text);
            let _ = tx.send(text);
        });
    }
    let output = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (Ok(text), Some(status)) = (output, status) else {
        return InstalledOpencode::Unknown(format!(
            "did not answer within {} s",
            VERSION_PROBE_TIMEOUT.as_secs()
        ));
    };
    if !status.success() {
        return InstalledOpencode::Unknown(format!("failed ({status})"));
    }
    text.split_whitespace()
        .map(|word| word.trim_start_matches('v'))
        .find(|word| {
            let mut parts = word.split('.');
            parts
                .next()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && parts.next().is_some()
        })
        .map_or_else(
            || InstalledOpencode::Unknown("printed no version".to_owned()),
            |v| InstalledOpencode::Version(v.to_owned()),
        )
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
