//! The durable outbox on disk, for the CLI: the plugin queues every upsert here before
//! sending it, and `opencode-sync sync --flush` delivers what is left. The decisions
//! (names, order, claims, what an answer means) are the core's [`outbox`] model; this
//! module only lists, reads, renames, writes and deletes files.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opencode_sync_core::api::Endpoint;
use opencode_sync_core::outbox::{self, Disposition, Record};
use opencode_sync_core::retry::RetryPolicy;

use crate::fsutil::write_private_atomically;
use crate::http::Http;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The outbox directory of one machine.
#[derive(Debug)]
pub struct OutboxDir {
    pub dir: PathBuf,
    writer: String,
}

/// What is waiting, for `status`.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub queued: usize,
    /// Drafts of messages a running OpenCode is still writing (sent if it dies).
    pub in_progress: usize,
    pub quarantined: usize,
    /// The newest error recorded on a queued or quarantined record.
    pub last_error: Option<String>,
}

/// What a drain did.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    pub delivered: usize,
    pub quarantined: usize,
    pub corrupt: usize,
    pub remaining: usize,
    /// Set when the server refused the key (sending stopped, records kept).
    pub auth_failed: Option<String>,
    /// Set when the server answered with a redirect, which is never followed (sending
    /// stopped, records kept).
    pub redirected: Option<String>,
    /// Stopped by Ctrl-C (records kept).
    pub interrupted: bool,
    pub last_error: Option<String>,
}

impl OutboxDir {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            writer: outbox::writer_tag(fastrand::u32(..), Some(std::process::id())),
        }
    }

    /// Plans from the directory as it is now, telling dead writers (their claims and
    /// drafts are free) by pid.
    fn plan(&self, now: i64) -> io::Result<outbox::Plan> {
        let names = self.list()?;
        Ok(self.with_liveness(|liveness| outbox::plan(&names, now, liveness)))
    }

    /// Runs `f` with the liveness of writers by pid (this process's own tag is alive).
    fn with_liveness<R>(&self, f: impl FnOnce(&dyn outbox::Liveness) -> R) -> R {
        let own = [self.writer.clone()];
        f(&outbox::PidLiveness {
            own_pid: Some(std::process::id()),
            own_tags: &own,
            pid_alive: &crate::process_env::pid_alive,
        })
    }

    /// Deletes the spare files of plugins that are gone (a killed OpenCode leaves its
    /// spares behind; a running one's are its own to reuse).
    fn sweep_dead_spares(&self) -> io::Result<()> {
        let names = self.list()?;
        let dead: Vec<&String> = self.with_liveness(|liveness| {
            names
                .iter()
                .filter(|n| outbox::spare_writer(n).is_some_and(|w| !liveness.alive(w)))
                .collect()
        });
        for name in dead {
            match fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where refused records are kept aside.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.join(outbox::QUARANTINE_DIR)
    }

    /// File names in the directory (none when it does not exist).
    fn list(&self) -> io::Result<Vec<String>> {
        match fs::read_dir(&self.dir) {
            Ok(entries) => Ok(entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Counts queued and quarantined records.
    pub fn counts(&self) -> io::Result<Counts> {
        let plan = self.plan(now_ms())?;
        let quarantined = match fs::read_dir(self.quarantine_dir()) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                    Some((modified, e.path()))
                })
                .collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        let newest_error = |paths: &mut dyn Iterator<Item = PathBuf>| {
            paths
                .filter_map(|p| Record::decode(&fs::read_to_string(p).ok()?).ok())
                .filter(|r| r.last_error.is_some())
                .max_by_key(|r| r.queued_at)
                .and_then(|r| r.last_error)
        };
        let mut queued_paths = plan.sendable.iter().map(|n| self.dir.join(&n.file));
        let mut q_paths = quarantined.iter().map(|(_, p)| p.clone());
        Ok(Counts {
            queued: plan.total - plan.superseded.len() - plan.drafts_held,
            in_progress: plan.drafts_held,
            quarantined: quarantined.len(),
            last_error: newest_error(&mut queued_paths).or_else(|| newest_error(&mut q_paths)),
        })
    }

    /// Sends everything queued, oldest first, retrying transient failures with backoff
    /// until `deadline`, or until `stop` is set (Ctrl-C: the request under way finishes).
    /// Records it could not deliver stay queued.
    pub fn drain(
        &self,
        http: &Http,
        endpoint: &Endpoint,
        deadline: Instant,
        stop: &AtomicBool,
    ) -> io::Result<DrainReport> {
        let over = || stop.load(Ordering::SeqCst) || Instant::now() >= deadline;
        let policy = RetryPolicy::default();
        let mut report = DrainReport::default();
        // Records this drain put back, and when they may go again. (Backoffs set by
        // other senders are not honoured: a user running `sync --flush` wants a try now.)
        let mut backoff: HashMap<String, i64> = HashMap::new();
        self.sweep_dead_spares()?;
        loop {
            let now = now_ms();
            let plan = self.plan(now)?;
            let reclaimed = plan
                .reclaim
                .iter()
                .filter(|(claim, record)| {
                    fs::rename(self.dir.join(claim), self.dir.join(record)).is_ok()
                })
                .count();
            for file in &plan.superseded {
                let _ = fs::remove_file(self.dir.join(file));
            }
            if reclaimed > 0 {
                continue; // the records taken back are queued again: plan once more
            }
            report.remaining = plan.total - plan.superseded.len();
            if plan.sendable.is_empty() || over() {
                report.interrupted = stop.load(Ordering::SeqCst);
                return Ok(report);
            }
            let mut earliest_retry: Option<i64> = None;
            let mut progressed = false;
            // Each session whose oldest record may go sends its records in order, in
            // this pass, until one of them has to wait (a retry, or another sender took
            // it): one directory listing per pass, not one per record.
            let mut open: HashSet<&str> = plan
                .sendable
                .iter()
                .map(|n| n.session_id.as_str())
                .collect();
            for name in &plan.queued {
                if !open.contains(name.session_id.as_str()) {
                    continue;
                }
                if over() {
                    break;
                }
                if let Some(&at) = backoff.get(&name.file).filter(|&&at| at > now_ms()) {
                    earliest_retry = Some(earliest_retry.map_or(at, |e| e.min(at)));
                    open.remove(name.session_id.as_str());
                    continue;
                }
                let record_path = self.dir.join(&name.file);
                let claim_path =
                    self.dir
                        .join(outbox::claim_name(&name.file, now_ms(), &self.writer));
                match fs::rename(&record_path, &claim_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // Another sender has it: the rest of its session waits.
                        open.remove(name.session_id.as_str());
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let record = match fs::read_to_string(&claim_path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Record::decode(&t).map_err(|e| e.to_string()))
                {
                    Ok(r) => r,
                    Err(reason) => {
                        crate::ui::warn(&format!(
                            "skipping a corrupt outbox record {}: {reason}",
                            name.file
                        ));
                        self.move_to_quarantine(&claim_path, &format!("{}.corrupt", name.file))?;
                        report.corrupt += 1;
                        progressed = true;
                        continue;
                    }
                };
                let (outcome, _) = http.exchange(&record.upsert.request(endpoint));
                match outbox::dispose(record, &outcome, now_ms(), &policy, fastrand::f64()) {
                    Disposition::Delete => {
                        fs::remove_file(&claim_path)?;
                        report.delivered += 1;
                        progressed = true;
                    }
                    Disposition::Retry(updated) => {
                        report.last_error.clone_from(&updated.last_error);
                        earliest_retry = Some(
                            earliest_retry
                                .map_or(updated.not_before, |e| e.min(updated.not_before)),
                        );
                        backoff.insert(name.file.clone(), updated.not_before);
                        self.release(&claim_path, &record_path, &updated)?;
                        open.remove(name.session_id.as_str());
                    }
                    Disposition::Quarantine(updated) => {
                        report.last_error.clone_from(&updated.last_error);
                        write_private_atomically(&claim_path, updated.encode().as_bytes())?;
                        self.move_to_quarantine(&claim_path, &name.file)?;
                        report.quarantined += 1;
                        progressed = true;
                    }
                    Disposition::PauseAuth(reason) => {
                        fs::rename(&claim_path, &record_path)?;
                        report.auth_failed = Some(reason);
                        report.remaining = self.plan(now_ms())?.total;
                        return Ok(report);
                    }
                    Disposition::Misdirected(updated) => {
                        self.release(&claim_path, &record_path, &updated)?;
                        report.redirected.clone_from(&updated.last_error);
                        report.last_error = updated.last_error;
                        report.remaining = self.plan(now_ms())?.total;
                        return Ok(report);
                    }
                }
            }
            if !progressed {
                let wait_ms =
                    earliest_retry.map_or(500, |t| (t - now_ms()).clamp(50, 30_000)) as u64;
                let until = deadline.min(Instant::now() + Duration::from_millis(wait_ms));
                while !over() && Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
        }
    }

    /// Writes the updated record back under its queue name, ending the claim.
    fn release(&self, claim: &Path, record_path: &Path, updated: &Record) -> io::Result<()> {
        write_private_atomically(claim, updated.encode().as_bytes())?;
        fs::rename(claim, record_path)
    }

    fn move_to_quarantine(&self, from: &Path, name: &str) -> io::Result<()> {
        let dir = self.quarantine_dir();
        crate::fsutil::create_private_dir(&dir)?;
        fs::rename(from, dir.join(name))
    }
}
