//! `opencode-sync logout`: forget the URL and key. Options stay; the file goes away when
//! nothing else is left in it. Running it twice is fine.

use std::process::ExitCode;

use anyhow::Result;
use opencode_sync_core::config::mask_raw;
use opencode_sync_core::paths::{ENV_API_KEY, ENV_URL, Environment};

use crate::config_store::ConfigStore;
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

pub fn run() -> Result<ExitCode> {
    let store = ConfigStore::locate()?;
    let (mut cfg, moved) = store.load_for_update()?;
    if let Some(aside) = &moved {
        outln!(
            "{}; moved it to {} (it may hold your key: delete it when you no longer need it).",
            aside.reason,
            aside.path.display()
        );
    }
    let key = cfg.api_key.clone();
    let (had_url, had_key) = cfg.clear_credentials();
    if !had_url && !had_key {
        if moved.is_none() {
            outln!(
                "Not logged in: no credentials stored in {}.",
                store.path.display()
            );
        }
    } else {
        if cfg.is_empty() {
            store.remove()?;
        } else {
            store.save(&cfg)?;
        }
        let what = match (had_url, key) {
            (true, Some(key)) => format!("the URL and API key {}", mask_raw(&key)),
            (false, Some(key)) => format!("API key {}", mask_raw(&key)),
            _ => "the URL".to_owned(),
        };
        outln!("Removed {what} from {}.", store.path.display());
    }
    for var in [ENV_URL, ENV_API_KEY] {
        if ProcessEnv.var(var).is_some() {
            ui::warn(&format!(
                "{var} is set in your environment and still applies; unset it to log out completely"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
