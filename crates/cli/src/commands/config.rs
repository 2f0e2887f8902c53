//! `opencode-sync config`: show where settings live and what they are, and change
//! options. Credentials are changed by `login`/`logout` only.

use std::process::ExitCode;

use anyhow::{Context, Result};
use opencode_sync_core::config::{KEY_API_KEY, KEY_URL, OPTIONS, OptionSpec, mask_raw};
use opencode_sync_core::endpoint::SiteUrl;
use opencode_sync_core::paths::{ENV_API_KEY, ENV_URL, Environment};
use opencode_sync_core::redact::redact;
use serde_json::{Map, Value, json};

use crate::cli::{ConfigAction, ConfigArgs};
use crate::config_store::ConfigStore;
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

pub fn run(args: ConfigArgs) -> Result<ExitCode> {
    let store = ConfigStore::locate()?;
    match args.action {
        None => show(&store, args.json),
        Some(ConfigAction::Path) => {
            outln!("{}", store.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(ConfigAction::Set { key, value }) => {
            let spec = OptionSpec::find(&key)?;
            let value = spec.parse_value(&value)?;
            update(&store, |rest| {
                rest.insert(spec.name.to_owned(), value.clone());
            })?;
            outln!("Set {} = {value} in {}", spec.name, store.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(ConfigAction::Unset { key }) => {
            let spec = OptionSpec::find(&key)?;
            update(&store, |rest| {
                rest.shift_remove(spec.name);
            })?;
            outln!("{} is back to its default ({})", spec.name, spec.default);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn update(store: &ConfigStore, change: impl FnOnce(&mut Map<String, Value>)) -> Result<()> {
    let mut cfg = store.load()?.unwrap_or_default();
    change(&mut cfg.rest);
    store.save(&cfg)
}

fn show(store: &ConfigStore, as_json: bool) -> Result<ExitCode> {
    let cfg = store
        .load()
        .context("run `opencode-sync login` to write a fresh one, or fix the file")?;
    let exists = cfg.is_some();
    let permission_warning = store.permission_warning();
    let cfg = cfg.unwrap_or_default();
    let (options, notes) = cfg.options();
    let unknown: Vec<&String> = cfg
        .rest
        .keys()
        .filter(|k| !OPTIONS.iter().any(|o| o.name == k.as_str()))
        .collect();
    let overrides: Vec<&str> = [ENV_URL, ENV_API_KEY]
        .into_iter()
        .filter(|v| ProcessEnv.var(v).is_some())
        .collect();
    let masked_key = cfg.api_key.as_deref().map(mask_raw);
    // The URL as written, unless it holds a secret (a key pasted into the wrong field),
    // and where requests go when that differs (`.convex.cloud` -> `.convex.site`).
    let url_shown = cfg
        .convex_url
        .as_deref()
        .map(|raw| redact(raw).into_owned());
    let url_note = cfg
        .convex_url
        .as_deref()
        .map(|raw| match SiteUrl::parse(raw) {
            Ok(url) if url.as_str() != raw.trim() => format!(" (requests go to {url})"),
            Ok(_) => String::new(),
            Err(e) => format!(" (not usable: {e})"),
        })
        .unwrap_or_default();

    if as_json {
        let opts: Map<String, Value> = options
            .entries()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        ui::print_json(&json!({
            "path": store.path,
            "exists": exists,
            KEY_URL: url_shown,
            KEY_API_KEY: masked_key,
            "options": opts,
            "otherKeys": unknown,
            "envOverrides": overrides,
            "notes": notes,
            "warnings": permission_warning.as_slice(),
        }));
        return Ok(ExitCode::SUCCESS);
    }

    outln!(
        "Config file: {}{}",
        store.path.display(),
        if exists { "" } else { " (not created yet)" }
    );
    outln!(
        "URL:         {}{url_note}",
        url_shown.as_deref().unwrap_or("(not set)")
    );
    outln!(
        "API key:     {}",
        masked_key.as_deref().unwrap_or("(not set)")
    );
    outln!("Options:");
    for (spec, (name, value)) in OPTIONS.iter().zip(options.entries()) {
        let origin = if cfg.rest.contains_key(name) {
            "set"
        } else {
            "default"
        };
        outln!(
            "  {name:<20} {:<8} ({origin}) {}",
            value.to_string(),
            spec.help
        );
    }
    for var in overrides {
        outln!("Override:    ${var} is set and takes precedence over the file");
    }
    // Unknown keys (kept as they are) and bad values, each with what to do.
    for note in notes {
        ui::warn(&note);
    }
    if let Some(warning) = &permission_warning {
        ui::warn(warning);
    }
    Ok(ExitCode::SUCCESS)
}
