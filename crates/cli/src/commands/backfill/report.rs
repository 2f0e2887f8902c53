//! The end of a backfill: what was sent, skipped and failed, the rows not read whole and
//! why the run stopped, as text (unless `--json`) and as the JSON report, with the exit
//! code (0 everything delivered, 1 something failed, 130 interrupted).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use opencode_sync_core::backfill::SendReason;
use serde::Serialize;
use serde_json::{Value, json};

use super::Report;
use super::plan::Plan;
use super::pool::Sending;
use super::send::{Halt, SessionResult, Status};
use crate::cli::SyncArgs;
use crate::ui;
use crate::ui::outln;

/// One problem, listed in the summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Failure {
    pub(super) session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message_id: Option<String>,
    pub(super) reason: String,
}

impl Failure {
    pub(super) fn line(&self) -> String {
        let what = match &self.message_id {
            Some(m) => format!("message {m}"),
            None => "session".to_owned(),
        };
        let title = self
            .title
            .as_deref()
            .map(|t| format!(" \"{}\"", shorten(t, 60)))
            .unwrap_or_default();
        format!("{}{title}: {what}: {}", self.session_id, self.reason)
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// `1 session`, `2 sessions`.
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report of a run that found no OpenCode history at the default place: nothing to
/// send, exit 0, and where it looked.
pub(super) fn no_history(args: &SyncArgs, dir: &Path) -> Report {
    let text = format!(
        "No OpenCode history at {}: nothing to send. OpenCode keeps it there once it has \
         run as this user; if yours is elsewhere, pass --data-dir DIR.",
        dir.display()
    );
    if !args.json {
        outln!("{text}");
    }
    let json = json!({
        "ok": true,
        "dryRun": args.dry_run,
        "interrupted": false,
        "source": null,
        "noHistoryAt": dir,
        "server": null,
        "sessions": {"found": 0, "selected": 0, "toSend": 0, "sent": 0, "failed": 0, "remaining": 0},
        "messages": {"sent": 0, "failed": 0},
        "stopped": null,
        "note": text,
    });
    Report {
        code: 0,
        ok: true,
        json,
    }
}

/// Prints the summary (unless `--json`) and builds the report.
pub(super) fn summarize(
    args: &SyncArgs,
    interrupted: &Arc<AtomicBool>,
    plan: Plan,
    sent: Sending,
    started: Instant,
) -> Report {
    let Plan {
        creds,
        source,
        found,
        selected,
        failures,
        shared,
        mut notes,
        planned,
        unchanged,
        found_on_server,
        rotated_from,
        ..
    } = plan;
    let Sending {
        results,
        record_error,
    } = sent;
    let interrupted = interrupted.load(Ordering::SeqCst);
    let halt = shared.halted_with();
    let done: Vec<&SessionResult> = results
        .iter()
        .filter(|r| r.status == Status::Done)
        .collect();
    let sent_sessions = if args.dry_run { 0 } else { done.len() };
    let failed_sessions = results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count()
        + failures
            .iter()
            .filter(|f| f.reason.starts_with("no such session"))
            .count();
    let gone = results.iter().filter(|r| r.status == Status::Gone).count();
    let messages: usize = done.iter().map(|r| r.messages).sum();
    // Sessions finish in any order: the rows of no session first, then by session.
    notes.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let skipped_rows = notes.iter().filter(|n| n.skipped).count();
    let tools: usize = done.iter().map(|r| r.tools).sum();
    let failed_messages = failures.iter().filter(|f| f.message_id.is_some()).count();
    let remaining = planned.saturating_sub(
        results
            .iter()
            .filter(|r| r.status != Status::Stopped)
            .count(),
    );
    let elapsed = started.elapsed();
    let rate = if elapsed.as_secs_f64() > 0.0 && !args.dry_run {
        messages as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let host = creds.as_ref().map(|c| c.url.host().to_owned());
    let server = creds.as_ref().map(|c| c.url.to_string());
    let stop_text = match (&halt, interrupted) {
        (Some(Halt::AuthFailed(reason)), _) => Some(format!(
            "API key rejected by {}: {reason}. Run `opencode-sync login` with a new key, then `opencode-sync sync` again.",
            host.as_deref().unwrap_or("the server")
        )),
        (Some(Halt::GaveUp(reason)), _) => Some(format!(
            "could not deliver to {} for {} s ({reason}); stopped. Run `opencode-sync sync` again later: it resumes.",
            server.as_deref().unwrap_or("the server"),
            args.timeout
        )),
        (Some(Halt::Redirected(reason)), _) => Some(format!(
            "{} answered with a {reason}; stopped. Run `opencode-sync sync` again once the URL is right: it resumes.",
            server.as_deref().unwrap_or("the server")
        )),
        (None, true) => Some(format!(
            "interrupted: {} still to send. Run `opencode-sync sync` again to resume.",
            plural(remaining, "session", "sessions")
        )),
        (None, false) => None,
    };
    let ok = failures.is_empty()
        && failed_sessions == 0
        && halt.is_none()
        && !interrupted
        && record_error.is_none();
    let code = if interrupted && halt.is_none() {
        130
    } else if ok {
        0
    } else {
        1
    };

    let rotation_text = rotated_from.map(|n| {
        format!(
            "New API key for {}: {} synced there with another key; the server was asked which \
             it has, so only the sessions it lacks and those changed since are sent.",
            host.as_deref().unwrap_or("the server"),
            plural(n, "session was", "sessions were"),
        )
    });
    if !args.json {
        if let Some(text) = &rotation_text {
            outln!("{text}");
        }
        let from = source.path().display();
        let to = server.as_deref().unwrap_or("(not logged in)");
        if args.dry_run {
            outln!(
                "Would send {} ({}, {}) from {from} to {to}:",
                plural(done.len(), "session", "sessions"),
                plural(messages, "message", "messages"),
                plural(tools, "tool call", "tool calls"),
            );
            for r in &done {
                outln!(
                    "  {}  {:<12} {:>5} msgs {:>5} tools  {}  {}",
                    r.id,
                    reason_text(r.reason),
                    r.messages,
                    r.tools,
                    r.title
                        .as_deref()
                        .map_or_else(|| "(untitled)".to_owned(), |t| shorten(t, 50)),
                    r.project_path.as_deref().unwrap_or("")
                );
            }
        } else if planned == 0 && failures.is_empty() && halt.is_none() {
            outln!(
                "Nothing to send: {} in {from} {}.",
                plural(selected, "session", "sessions"),
                if selected == 1 {
                    "is up to date"
                } else {
                    "are up to date"
                }
            );
        } else if planned > 0 {
            outln!(
                "Sent {} ({}, {}) from {from} to {to} in {:.1} s ({rate:.0} messages/s).",
                plural(sent_sessions, "session", "sessions"),
                plural(messages, "message", "messages"),
                plural(tools, "tool call", "tool calls"),
                elapsed.as_secs_f64(),
            );
        }
        if unchanged + found_on_server + gone > 0 {
            let mut parts = Vec::new();
            if unchanged > 0 {
                parts.push(format!("{unchanged} unchanged since the last sync"));
            }
            if found_on_server > 0 {
                parts.push(format!("{found_on_server} already on the server"));
            }
            if gone > 0 {
                parts.push(format!("{gone} deleted in OpenCode meanwhile"));
            }
            outln!(
                "Skipped {}: {}.",
                plural(unchanged + found_on_server + gone, "session", "sessions"),
                parts.join(", ")
            );
        }
        if !failures.is_empty() {
            outln!(
                "Failed: {}, {}:",
                plural(failed_sessions, "session", "sessions"),
                plural(failed_messages, "message", "messages")
            );
            for f in &failures {
                outln!("  {}", f.line());
            }
        }
        if !notes.is_empty() {
            outln!(
                "Not read whole: {} of OpenCode's store ({skipped_rows} skipped, not sent; the others sent without what is named):",
                plural(notes.len(), "row", "rows")
            );
            for n in &notes {
                outln!("  {}", n.line());
            }
        }
        if let Some(e) = &record_error {
            ui::warn(e);
        }
        if let Some(text) = &stop_text {
            if halt.is_some() {
                eprintln!("error: {text}");
            } else {
                outln!("{}{}", text[..1].to_uppercase(), &text[1..]);
            }
        }
        if args.dry_run {
            outln!("Dry run: nothing was sent.");
        }
    }

    let plan_json: Vec<Value> = if args.dry_run {
        done.iter()
            .map(|r| {
                json!({
                    "id": r.id, "title": r.title, "projectPath": r.project_path,
                    "reason": r.reason, "messages": r.messages, "toolCalls": r.tools,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let json = json!({
        "ok": ok,
        "dryRun": args.dry_run,
        "interrupted": interrupted,
        "source": {"kind": source.kind(), "path": source.path()},
        "server": server,
        "sessions": {
            "found": found,
            "selected": selected,
            "toSend": planned,
            "sent": sent_sessions,
            "failed": failed_sessions,
            "remaining": remaining,
            "skipped": {"unchanged": unchanged, "onServer": found_on_server, "deleted": gone},
        },
        "messages": {"sent": if args.dry_run { 0 } else { messages }, "failed": failed_messages},
        "toolCalls": if args.dry_run { 0 } else { tools },
        "elapsedMs": elapsed.as_millis() as u64,
        "messagesPerSecond": (rate * 10.0).round() / 10.0,
        "failures": failures,
        "rows": {"skipped": skipped_rows, "partlyRead": notes.len() - skipped_rows, "notes": notes},
        "stopped": stop_text,
        "keyRotation": rotated_from.map(|n| json!({"sessionsSentWithOtherKeys": n, "note": rotation_text})),
        "plan": plan_json,
    });
    Report { code, ok, json }
}

fn reason_text(reason: SendReason) -> &'static str {
    match reason {
        SendReason::New => "new",
        SendReason::Changed => "changed",
        SendReason::NotOnServer => "not-on-server",
        SendReason::Forced => "forced",
    }
}
