//! The durable outbox on disk, for the CLI: the plugin queues every upsert here before
//! sending it, and `opencode-sync sync --flush` delivers what is left. The decisions
//! (names, order, claims, what an answer means) are the core's [`outbox`] model; this
//! module only lists, reads, renames, writes and deletes files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opencode_sync_core::api::{Endpoint, Outcome};
use opencode_sync_core::delivery::{self, Delivery, DiskOutbox, Event, Fs, Landed};
use opencode_sync_core::outbox::{self, Record};

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
    /// When the queued records may go again, when the server asked for a wait
    /// (`Retry-After`), in ms since the epoch.
    pub next_try_at: Option<i64>,
    /// Why new records cannot be written to the outbox now (read-only, full), if so.
    pub unwritable: Option<String>,
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
    /// Sessions whose drafts (messages a killed OpenCode never finished) were
    /// delivered: their final totals are still to send, from OpenCode's store.
    #[serde(skip)]
    pub drafts_delivered: std::collections::BTreeSet<String>,
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
        let read = |path: PathBuf| Record::decode(&StdFs.read(&path.display().to_string())?).ok();
        let newest_error = |records: &[Record]| {
            records
                .iter()
                .filter(|r| r.history.last_error.is_some())
                .max_by_key(|r| r.history.queued_at)
                .and_then(|r| r.history.last_error.clone())
        };
        // Queued records, and those a dead sender still holds a claim on (a plugin killed
        // mid-send): their history is as telling.
        let queued: Vec<Record> = plan
            .sendable
            .iter()
            .map(|n| self.dir.join(&n.file))
            .chain(plan.reclaim.iter().map(|(claim, _)| self.dir.join(claim)))
            .filter_map(read)
            .collect();
        let aside: Vec<Record> = quarantined
            .iter()
            .filter_map(|(_, p)| read(p.clone()))
            .collect();
        Ok(Counts {
            queued: plan.total - plan.superseded.len() - plan.drafts_held,
            in_progress: plan.drafts_held,
            quarantined: quarantined.len(),
            last_error: newest_error(&queued).or_else(|| newest_error(&aside)),
            next_try_at: queued
                .iter()
                .map(|r| r.history.not_before)
                .max()
                .filter(|&at| at > 0),
            unwritable: self.unwritable(),
        })
    }

    /// Why a record cannot be written to the outbox now, if so: a file is written,
    /// synced and deleted (a full disk refuses the data, a read-only one the file).
    fn unwritable(&self) -> Option<String> {
        let probe = self.dir.join(format!(".probe-{}", std::process::id()));
        let written = crate::fsutil::create_private_dir(&self.dir).and_then(|()| {
            let mut file = fs::File::create(&probe)?;
            io::Write::write_all(&mut file, &[b'\n'; 4096])?;
            file.sync_all()
        });
        let _ = fs::remove_file(&probe);
        written
            .err()
            .map(|e| format!("{} cannot be written: {e}", self.dir.display()))
    }

    /// Sends everything queued, oldest first, retrying transient failures with backoff
    /// until `deadline`, or until `stop` is set (Ctrl-C: the request under way finishes).
    /// Records it could not deliver stay queued. Every decision is the core's
    /// [`Delivery`] machine's, the same the plugin drives: this only moves files through
    /// `std::fs` and requests through [`Http`], and sleeps while the machine waits.
    pub fn drain(
        &self,
        http: &Http,
        endpoint: &Endpoint,
        deadline: Instant,
        stop: &AtomicBool,
    ) -> io::Result<DrainReport> {
        let over = || stop.load(Ordering::SeqCst) || Instant::now() >= deadline;
        let fs = StdFs;
        let config = delivery::Config {
            max_in_flight: 1,
            ..delivery::Config::default()
        };
        let mut machine = Delivery::new(
            config,
            Some(DiskOutbox::new(
                self.dir.display().to_string(),
                self.writer.clone(),
            )),
        );
        // A flush ends soon: it keeps no spare files.
        machine.retire_spares(&fs);
        let mut report = DrainReport::default();
        'drain: while !over() {
            if !machine.has_queued() {
                // Everything queued now, including what a running plugin wrote meanwhile.
                self.with_liveness(|liveness| machine.load_leftovers(&fs, now_ms(), liveness));
                self.take_events(&mut machine, &mut report);
                if !machine.has_queued() {
                    break;
                }
            }
            while let Some(transmit) = machine.poll_transmit(&fs, now_ms(), endpoint) {
                let (outcome, _) = http.exchange(&transmit.request);
                let landed =
                    machine.handle_answer(&fs, now_ms(), transmit.id, &outcome, fastrand::f64());
                match (landed, outcome) {
                    (Landed::Delivered, _) => {
                        report.delivered += 1;
                        if transmit.draft {
                            report.drafts_delivered.insert(transmit.session_id.clone());
                        }
                    }
                    (Landed::Refused(reason), _) => {
                        report.quarantined += 1;
                        report.last_error = Some(reason);
                    }
                    (Landed::Halted(reason), Outcome::AuthFailed(_)) => {
                        report.auth_failed = Some(reason);
                        break 'drain;
                    }
                    (Landed::Halted(reason), _) => {
                        report.last_error = Some(reason.clone());
                        report.redirected = Some(reason);
                        break 'drain;
                    }
                    (Landed::Requeued, Outcome::Retry { reason, .. }) => {
                        report.last_error = Some(reason);
                    }
                    _ => {}
                }
                if over() {
                    break 'drain;
                }
            }
            self.take_events(&mut machine, &mut report);
            // Wait for what the machine waits for (a backoff, another sender), in short
            // steps so that Ctrl-C and the deadline are seen.
            let now = now_ms();
            let wait_ms = machine
                .poll_timeout(now)
                .map_or(500, |at| (at - now).clamp(10, 30_000)) as u64;
            let until = deadline.min(Instant::now() + Duration::from_millis(wait_ms));
            while !over() && Instant::now() < until {
                let left = until.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
        machine.close(&fs);
        report.interrupted = stop.load(Ordering::SeqCst);
        let plan = self.plan(now_ms())?;
        report.remaining = plan.total - plan.superseded.len() - plan.drafts_held;
        Ok(report)
    }

    /// Counts what the machine told: corrupt records it set aside.
    fn take_events(&self, machine: &mut Delivery, report: &mut DrainReport) {
        while let Some(event) = machine.poll_event() {
            if let Event::Leftovers { corrupt, .. } = event
                && corrupt > 0
            {
                crate::ui::warn(&format!(
                    "skipping a corrupt outbox record ({corrupt} in all, set aside in {})",
                    self.quarantine_dir().display()
                ));
                report.corrupt += corrupt;
            }
        }
    }
}

/// The outbox's file calls on `std::fs`, for the core's [`Delivery`] machine. Paths are
/// the machine's strings (the outbox directory joined with `/`).
#[derive(Debug, Clone, Copy)]
struct StdFs;

impl Fs for StdFs {
    fn read(&self, path: &str) -> Option<String> {
        crate::fsutil::read_text_file(Path::new(path), crate::fsutil::RECORD_LIMIT)
            .ok()
            .flatten()
    }
    fn list(&self, dir: &str) -> Option<Vec<String>> {
        let entries = fs::read_dir(dir).ok()?;
        Some(
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
        )
    }
    fn write(&self, path: &str, text: &str) -> bool {
        write_private_atomically(Path::new(path), text.as_bytes()).is_ok()
    }
    fn overwrite(&self, path: &str, text: &str) -> bool {
        self.write(path, text)
    }
    fn rename(&self, from: &str, to: &str) -> bool {
        let to = Path::new(to);
        if let Some(dir) = to.parent()
            && !dir.is_dir()
            && crate::fsutil::create_private_dir(dir).is_err()
        {
            return false;
        }
        fs::rename(from, to).is_ok()
    }
    fn remove(&self, path: &str) -> bool {
        fs::remove_file(path).is_ok()
    }
}
