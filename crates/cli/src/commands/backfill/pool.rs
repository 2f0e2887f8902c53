//! The sending pool: one reader thread loads the planned sessions in order (a bounded
//! queue keeps it at most `--jobs` ahead), `--jobs` threads send them
//! ([`sync_session`]), and the main thread counts, shows progress and writes each
//! session's record as soon as it is delivered. Session upserts the server may have
//! skipped (its dedup window) are sent again at the end, then recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use opencode_sync_core::backfill::SyncRecord;

use super::plan::Plan;
use super::progress::Progress;
use super::report::{Failure, plural};
use super::send::{Confirm, Event, Job, Sent, SessionResult, Status, sync_session};
use crate::cli::SyncArgs;

/// What the sending did, for the summary.
pub(super) struct Sending {
    pub results: Vec<SessionResult>,
    /// The first failure to write the sync records, if any.
    pub record_error: Option<String>,
}

/// Sends the plan's sessions; failures and row notes are added to the plan's.
pub(super) fn send(args: &SyncArgs, interrupted: &Arc<AtomicBool>, plan: &mut Plan) -> Sending {
    let Plan {
        store,
        work,
        shared,
        records,
        failures,
        notes,
        jobs,
        planned,
        ..
    } = plan;
    let (jobs, planned) = (*jobs, *planned);
    let plan = std::mem::take(work);
    let shared = &*shared;

    let mut progress = Progress::new(planned, args.json, args.dry_run);
    let mut results: Vec<SessionResult> = Vec::new();
    let mut confirms: Vec<(Confirm, Option<SyncRecord>)> = Vec::new();
    let mut record_error: Option<String> = None;
    let mut announced_stop = false;

    if planned > 0 {
        let (event_tx, event_rx) = mpsc::channel::<Event>();
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(jobs);
        let job_rx = Arc::new(Mutex::new(job_rx));
        thread::scope(|scope| {
            // The reader: loads sessions in plan order, never more than `jobs` ahead.
            let reader_events = event_tx.clone();
            let shared_ref = shared;
            scope.spawn(move || {
                for (summary, reason, since, prev) in plan {
                    if shared_ref.stopped() {
                        break;
                    }
                    let session = match store.load(&summary.id) {
                        Ok(Some(s)) => s,
                        Ok(None) => {
                            // Deleted in OpenCode since it was listed.
                            let _ = reader_events.send(Event::Done(Box::new(SessionResult {
                                id: summary.id.clone(),
                                title: summary.title.clone(),
                                project_path: summary.directory.clone(),
                                reason,
                                status: Status::Gone,
                                messages: 0,
                                tools: 0,
                                record: None,
                                confirm: None,
                            })));
                            continue;
                        }
                        Err(e) => {
                            let _ = reader_events.send(Event::Failure(Failure {
                                session_id: summary.id.clone(),
                                title: summary.title.clone(),
                                message_id: None,
                                reason: format!("{e:#}"),
                            }));
                            let _ = reader_events.send(Event::Done(Box::new(SessionResult {
                                id: summary.id.clone(),
                                title: summary.title.clone(),
                                project_path: summary.directory.clone(),
                                reason,
                                status: Status::Failed,
                                messages: 0,
                                tools: 0,
                                record: None,
                                confirm: None,
                            })));
                            continue;
                        }
                    };
                    let job = Job {
                        summary,
                        reason,
                        since,
                        prev,
                        session,
                    };
                    if job_tx.send(job).is_err() {
                        break; // every sender stopped
                    }
                }
            });
            for _ in 0..jobs {
                let rx = Arc::clone(&job_rx);
                let events = event_tx.clone();
                scope.spawn(move || {
                    loop {
                        if shared_ref.stopped() {
                            break;
                        }
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => break,
                        };
                        let Ok(job) = job else { break };
                        let result = sync_session(shared_ref, job, &events);
                        let _ = events.send(Event::Done(Box::new(result)));
                    }
                });
            }
            drop(job_rx);
            drop(event_tx);

            loop {
                let event = match event_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(event) => Some(event),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                if interrupted.load(Ordering::SeqCst) && !announced_stop {
                    announced_stop = true;
                    progress.println(
                        "Interrupted: finishing the requests in flight and saving (Ctrl-C again to quit now)...",
                    );
                }
                match event {
                    Some(Event::Message { tools }) => {
                        progress.messages += 1;
                        progress.tools += tools as u64;
                    }
                    Some(Event::Failure(f)) => {
                        progress.println(&format!("failed: {}", f.line()));
                        failures.push(f);
                    }
                    Some(Event::Notes(n)) => notes.extend(n),
                    Some(Event::Done(mut result)) => {
                        progress.sessions += 1;
                        if result.status == Status::Done && !args.dry_run {
                            let record = result.record.take();
                            match result.confirm.take() {
                                Some(confirm) => confirms.push((confirm, record)),
                                None => {
                                    if let (Some(records), Some(record)) =
                                        (records.as_mut(), record)
                                        && let Err(e) = records.put(record)
                                    {
                                        record_error.get_or_insert(format!(
                                            "could not write {}: {e}",
                                            records.path().display()
                                        ));
                                    }
                                }
                            }
                        }
                        results.push(*result);
                    }
                    None => {}
                }
                progress.update();
            }
        });
    }

    // Session upserts the server may have skipped (dedup window): send them again once
    // the window has passed, then record those sessions.
    if !confirms.is_empty() && !shared.stopped() {
        confirms.sort_by_key(|(c, _)| c.at);
        let wait = confirms
            .last()
            .map(|(c, _)| c.at.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        progress.status(&format!(
            "waiting {:.0} s to confirm {} (the server's 10 s session dedup window)",
            wait.as_secs_f64().ceil(),
            plural(confirms.len(), "session's totals", "sessions' totals")
        ));
        for (confirm, record) in confirms.drain(..) {
            if !shared.sleep_until(confirm.at) {
                break;
            }
            match shared.deliver(&confirm.request) {
                Sent::Delivered(_) => {
                    if let (Some(records), Some(record)) = (records.as_mut(), record)
                        && let Err(e) = records.put(record)
                    {
                        record_error.get_or_insert(format!(
                            "could not write {}: {e}",
                            records.path().display()
                        ));
                    }
                }
                Sent::Rejected(reason) => failures.push(Failure {
                    session_id: record.map(|r| r.id).unwrap_or_default(),
                    title: None,
                    message_id: None,
                    reason,
                }),
                Sent::Stopped => break,
            }
        }
    }
    progress.finish();
    if let Some(records) = records.as_mut()
        && let Err(e) = records.finish()
    {
        record_error.get_or_insert(format!("could not write {}: {e}", records.path().display()));
    }

    Sending {
        results,
        record_error,
    }
}
