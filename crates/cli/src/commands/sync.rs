//! `opencode-sync sync`: backfill OpenCode's history ([`super::backfill`]) and/or
//! deliver what the plugin queued in the outbox (`--flush`).
//!
//! - `sync --flush` alone only drains the outbox (several OpenCode processes may be
//!   draining it at the same time; claims keep them from sending a record twice);
//! - `sync` backfills;
//! - `sync --flush` with any backfill option drains the outbox first, then backfills.
//!   In that order the backfill, which reads OpenCode's current store, has the last
//!   word over older queued upserts of the same sessions.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use opencode_sync_core::api::{Endpoint, Outcome};
use opencode_sync_core::config::{Credentials, resolve_credentials};
use opencode_sync_core::engine::Upsert;
use opencode_sync_core::paths;
use serde_json::{Value, json};

use super::{backfill, unhealthy};
use crate::cli::SyncArgs;
use crate::config_store::ConfigStore;
use crate::http::Http;
use crate::outbox_dir::OutboxDir;
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

/// Per-request timeout while draining (or `--timeout`, when shorter).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a flush did.
struct Flushed {
    /// Everything delivered.
    ok: bool,
    json: Value,
    /// Sending stopped for good: the key was refused or the server redirects.
    halted: bool,
    interrupted: bool,
}

pub fn run(args: &SyncArgs) -> Result<ExitCode> {
    // Ctrl-C: the requests under way finish, what is done is kept, exit 130. A second
    // Ctrl-C quits at once (delivered records are gone from the outbox and every finished
    // session is recorded; a claim left behind is taken back by the next sender, which
    // sees this process is gone).
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        crate::interrupt::on_ctrl_c(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let mut flushed: Option<(bool, Value)> = None;
    if args.flush {
        let store = ConfigStore::locate()?;
        let creds = resolve_credentials(store.load()?.as_ref(), &ProcessEnv)?;
        let flush = flush(args, &creds, &interrupted)?;
        // No backfill after a refused key, a redirect or a Ctrl-C.
        if !args.backfill() || flush.halted || flush.interrupted {
            if args.json {
                ui::print_json(&flush.json);
            }
            return Ok(if flush.interrupted {
                ExitCode::from(130)
            } else if flush.ok {
                ExitCode::SUCCESS
            } else {
                unhealthy()
            });
        }
        flushed = Some((flush.ok, flush.json));
    }
    let report = backfill::run(args, &interrupted)?;
    let code = match &flushed {
        Some((false, _)) if report.code == 0 => 1,
        _ => report.code,
    };
    if args.json {
        match flushed {
            Some((flush_ok, flush_report)) => ui::print_json(&json!({
                "ok": flush_ok && report.ok,
                "flush": flush_report,
                "backfill": report.json,
            })),
            None => ui::print_json(&report.json),
        }
    }
    Ok(ExitCode::from(code))
}

/// Drains the outbox; prints the text report unless `--json`.
fn flush(args: &SyncArgs, creds: &Credentials, interrupted: &AtomicBool) -> Result<Flushed> {
    let outbox = OutboxDir::new(paths::outbox_dir(&ProcessEnv)?);
    let endpoint = Endpoint::new(creds.url.clone(), creds.key.clone());
    let timeout = Duration::from_secs(args.timeout);
    let deadline = Instant::now() + timeout;
    let report = outbox
        .drain(
            &Http::new(REQUEST_TIMEOUT.min(timeout)),
            &endpoint,
            deadline,
            interrupted,
        )
        .with_context(|| format!("draining {}", outbox.dir.display()))?;
    let totals = final_totals(&report.drafts_delivered, &endpoint, timeout);
    let ok = report.remaining == 0
        && report.auth_failed.is_none()
        && report.redirected.is_none()
        && totals.failed.is_empty();
    if !args.json {
        outln!(
            "Delivered {} queued record{} to {}.",
            report.delivered,
            if report.delivered == 1 { "" } else { "s" },
            creds.url
        );
        if totals.sent > 0 {
            outln!(
                "Sent the final totals of {} session(s) a killed OpenCode left mid-turn, from OpenCode's store.",
                totals.sent
            );
        }
        for (id, why) in &totals.failed {
            outln!("Could not send the final totals of {id}: {why}");
        }
        if report.quarantined > 0 {
            outln!(
                "{} record(s) refused by the server were set aside (see `opencode-sync status`).",
                report.quarantined
            );
        }
        if report.corrupt > 0 {
            outln!(
                "{} corrupt record(s) were skipped and set aside.",
                report.corrupt
            );
        }
        if let Some(reason) = &report.auth_failed {
            outln!(
                "Stopped: API key rejected by {}: {reason}. Run `opencode-sync login` with a new key; the {} queued record(s) are kept.",
                creds.url.host(),
                report.remaining
            );
        } else if let Some(reason) = &report.redirected {
            outln!(
                "Stopped: {} answered with a {reason}. The {} queued record(s) are kept; they go out once the URL is right.",
                creds.url.host(),
                report.remaining
            );
        } else if report.interrupted {
            outln!(
                "Interrupted: {} record(s) still queued. They go out with the next OpenCode start or `opencode-sync sync --flush`.",
                report.remaining
            );
        } else if report.remaining > 0 {
            outln!(
                "{} record(s) still queued{}. Run `opencode-sync sync --flush` again later.",
                report.remaining,
                report
                    .last_error
                    .as_deref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(Flushed {
        ok,
        halted: report.auth_failed.is_some() || report.redirected.is_some(),
        interrupted: report.interrupted,
        json: json!({
            "ok": ok,
            "outbox": outbox.dir,
            "report": report,
            "finalTotals": {"sent": totals.sent, "failed": totals.failed},
        }),
    })
}

/// What sending the final totals of interrupted sessions did.
#[derive(Debug, Default)]
struct FinalTotals {
    sent: usize,
    failed: Vec<(String, String)>,
}

/// A killed OpenCode never saw its last turn end, so the session's totals it had sent
/// are those of the turn before: for each session whose drafts the flush delivered, the
/// session upsert again, as OpenCode's store has it now (totals summed from the replies
/// where the store has none, exactly as backfill does). No store here (another machine's
/// outbox, say): nothing to add.
fn final_totals(
    sessions: &BTreeSet<String>,
    endpoint: &Endpoint,
    timeout: Duration,
) -> FinalTotals {
    let mut out = FinalTotals::default();
    if sessions.is_empty() {
        return out;
    }
    let Some(mut store) = backfill::default_store() else {
        return out;
    };
    let options = ConfigStore::locate()
        .ok()
        .and_then(|s| s.load().ok().flatten())
        .map(|f| f.options().0)
        .unwrap_or_default();
    let http = Http::new(REQUEST_TIMEOUT.min(timeout));
    for id in sessions {
        let session = match store.load(id) {
            Ok(Some(session)) => session,
            Ok(None) => continue,
            Err(e) => {
                out.failed.push((id.clone(), format!("{e:#}")));
                continue;
            }
        };
        let mut info = session.info;
        let payload = backfill::session_payload(
            &mut info,
            &session.messages,
            session.project_worktree,
            &options,
        );
        match http.exchange(&Upsert::Session(payload).request(endpoint)).0 {
            Outcome::Delivered(_) => out.sent += 1,
            Outcome::Retry { reason, .. }
            | Outcome::AuthFailed(reason)
            | Outcome::Rejected(reason)
            | Outcome::Redirected(reason) => out.failed.push((id.clone(), reason)),
        }
    }
    out
}
