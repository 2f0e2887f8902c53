//! `opencode-sync status`: are we set up, and does sync work right now? Exits non-zero
//! when it does not, so scripts can gate on it.

use std::process::ExitCode;

use anyhow::Result;
use opencode_sync_core::api::Endpoint;
use opencode_sync_core::config::{Credentials, CredentialsError, resolve_credentials};
use opencode_sync_core::paths;
use serde_json::{Value, json};

use super::probe::{self, KeyCheck, Probe, Reach};
use super::unhealthy;
use crate::config_store::ConfigStore;
use crate::http::Http;
use crate::outbox_dir::{Counts, OutboxDir};
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

pub fn run(as_json: bool) -> Result<ExitCode> {
    let store = ConfigStore::locate()?;
    let permission_warning = store.permission_warning();
    let file = store.load();
    let (file, file_error) = match file {
        Ok(f) => (f, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    // `"enabled": false` in the file switches the plugin off whatever the server says (an
    // opencode.json tuple option can too; `verify` reads those).
    let enabled = file.as_ref().is_none_or(|f| f.options().0.enabled);
    let creds = resolve_credentials(file.as_ref(), &ProcessEnv);
    let probe = creds.as_ref().ok().map(|c| {
        let endpoint = Endpoint::new(c.url.clone(), c.key.clone());
        probe::run(&Http::new(probe::TIMEOUT), &endpoint)
    });
    let server_ok = probe.as_ref().is_some_and(Probe::healthy);
    let healthy = enabled && server_ok;
    let outbox_dir = paths::outbox_dir(&ProcessEnv).ok().map(OutboxDir::new);
    let outbox = outbox_dir
        .as_ref()
        .and_then(|dir| dir.counts().ok())
        .unwrap_or_default();

    if as_json {
        let mut out = to_json(
            &store,
            file_error.as_deref(),
            &creds,
            probe.as_ref(),
            healthy,
        );
        out["enabled"] = json!(enabled);
        out["warnings"] = json!(permission_warning.as_slice());
        out["outbox"] = serde_json::to_value(&outbox).unwrap_or_default();
        ui::print_json(&out);
    } else {
        print_text(
            &store,
            file_error.as_deref(),
            &creds,
            probe.as_ref(),
            enabled,
        );
        print_outbox(&outbox, outbox_dir.as_ref(), server_ok);
        if let Some(warning) = &permission_warning {
            ui::warn(warning);
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        unhealthy()
    })
}

fn print_text(
    store: &ConfigStore,
    file_error: Option<&str>,
    creds: &Result<Credentials, CredentialsError>,
    probe: Option<&Probe>,
    enabled: bool,
) {
    outln!("Config file: {}", store.path.display());
    if let Some(err) = file_error {
        outln!("  FAIL  {err}");
    }
    let c = match creds {
        Ok(c) => c,
        // Unreadable, so "not logged in" would be beside the point.
        Err(CredentialsError::NotConfigured) if file_error.is_some() => {
            outln!(
                "Status:      not syncing: the config file cannot be read; fix it, or run `opencode-sync login` to write a fresh one (the old one is kept aside)"
            );
            return;
        }
        Err(e) => {
            outln!("Status:      not syncing: {e}");
            return;
        }
    };
    outln!("URL:         {} (from {})", c.url, c.url_source);
    outln!("API key:     {} (from {})", c.key.masked(), c.key_source);
    let Some(probe) = probe else { return };
    match &probe.reach {
        Reach::Up { latency } => outln!("Server:      reachable ({} ms)", latency.as_millis()),
        Reach::Down { error } => outln!(
            "Server:      UNREACHABLE: {error} ({})",
            c.url.join("/health")
        ),
        Reach::NotOpenSync { detail } => outln!("Server:      not an OpenSync server: {detail}"),
    }
    match &probe.key {
        Some(KeyCheck::Accepted { sessions }) => {
            outln!("Key:         accepted ({sessions} sessions on the server)");
        }
        Some(KeyCheck::Rejected { reason }) => outln!(
            "Key:         REJECTED by {}: {reason}. Generate a new key in the dashboard and run `opencode-sync login`",
            c.url.host()
        ),
        Some(KeyCheck::Unknown { reason }) => outln!("Key:         not checked: {reason}"),
        None => outln!("Key:         not checked (server unreachable)"),
    }
    if !enabled {
        outln!(
            "Status:      NOT SYNCING: the plugin is switched off (\"enabled\": false); `opencode-sync config set enabled true` turns it on"
        );
    } else if probe.healthy() {
        outln!("Status:      ok, sessions will sync");
    } else {
        outln!("Status:      NOT SYNCING");
    }
}

/// `server_ok`: whether `sync --flush` would deliver what is queued now (the flush does
/// not look at the `enabled` option).
fn print_outbox(outbox: &Counts, dir: Option<&OutboxDir>, server_ok: bool) {
    if let Some(why) = &outbox.unwritable {
        outln!("Outbox:      NOT WRITABLE: {why}");
        outln!(
            "             The plugin keeps what it cannot queue in memory while OpenCode runs; once the outbox is writable again, `opencode-sync sync` sends what OpenCode stored meanwhile."
        );
    }
    if outbox.queued == 0 && outbox.quarantined == 0 {
        match outbox.in_progress {
            0 if outbox.unwritable.is_some() => {}
            0 => outln!("Outbox:      empty (everything was delivered)"),
            n => outln!(
                "Outbox:      nothing queued; {n} message(s) a running OpenCode is still writing"
            ),
        }
        return;
    }
    outln!(
        "Outbox:      {} queued, {} refused by the server and set aside",
        outbox.queued,
        outbox.quarantined
    );
    if let Some(err) = &outbox.last_error {
        outln!("Last error:  {err}");
    }
    if let Some(at) = outbox.next_try_at {
        let wait_s = ((at - crate::outbox_dir::now_ms()).max(0) as u64).div_ceil(1000);
        let when = jiff::Timestamp::from_millisecond(at)
            .map(|t| t.strftime("%H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let due = match wait_s {
            0 => "due now".to_owned(),
            s => format!("in {s} s"),
        };
        outln!("Next try:    at {when} ({due}), as the server asked (Retry-After)");
    }
    if outbox.queued > 0 && server_ok {
        outln!("             `opencode-sync sync --flush` sends what is queued now");
    }
    if let Some(dir) = dir.filter(|_| outbox.quarantined > 0) {
        outln!(
            "Set aside:   in {} (each file holds the record and the server's reason; move one back into {} to send it again)",
            dir.quarantine_dir().display(),
            dir.dir.display()
        );
    }
}

fn to_json(
    store: &ConfigStore,
    file_error: Option<&str>,
    creds: &Result<Credentials, CredentialsError>,
    probe: Option<&Probe>,
    healthy: bool,
) -> Value {
    let mut out = json!({
        "healthy": healthy,
        "configPath": store.path,
        "configError": file_error,
    });
    match creds {
        Err(e) => {
            out["configured"] = json!(false);
            out["problem"] = json!(e.to_string());
        }
        Ok(c) => {
            out["configured"] = json!(true);
            out["url"] = json!(c.url.as_str());
            out["urlSource"] = json!(c.url_source.to_string());
            out["apiKey"] = json!(c.key.masked());
            out["apiKeySource"] = json!(c.key_source.to_string());
        }
    }
    if let Some(p) = probe {
        out["server"] = match &p.reach {
            Reach::Up { latency } => {
                json!({"reachable": true, "latencyMs": latency.as_millis() as u64})
            }
            Reach::Down { error } => json!({"reachable": false, "error": error}),
            Reach::NotOpenSync { detail } => {
                json!({"reachable": true, "openSync": false, "error": detail})
            }
        };
        out["key"] = match &p.key {
            Some(KeyCheck::Accepted { sessions }) => {
                json!({"accepted": true, "sessions": sessions})
            }
            Some(KeyCheck::Rejected { reason }) => json!({"accepted": false, "error": reason}),
            Some(KeyCheck::Unknown { reason }) => json!({"accepted": null, "error": reason}),
            None => json!({"accepted": null}),
        };
    }
    out
}
