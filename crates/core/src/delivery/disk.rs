//! The durable outbox as the plugin uses it: every upsert becomes a file in
//! `$XDG_STATE_HOME/opencode-sync/outbox/` before any network attempt, so `opencode run`
//! exiting, a crash or a SIGKILL loses nothing. Names, order, claims and what an answer
//! means are the core's [`outbox`] model; this module only moves files through the
//! host's file system calls (the [`Fs`] trait, so it is tested natively).

use std::collections::HashMap;

use crate::outbox::{self, Liveness, Record};

/// The file system calls the outbox needs. Paths are plain strings (the host's).
pub trait Fs {
    fn read(&self, path: &str) -> Option<String>;
    /// Names of the files in `dir`; `None` when it cannot be listed (e.g. missing).
    fn list(&self, dir: &str) -> Option<Vec<String>>;
    /// Writes atomically (temporary file + rename), creating private directories.
    fn write(&self, path: &str, text: &str) -> bool;
    /// Writes in place, not atomically: only for this process's own spare files.
    fn overwrite(&self, path: &str, text: &str) -> bool;
    /// `false` when `from` is gone (another process claimed it) or the rename failed.
    fn rename(&self, from: &str, to: &str) -> bool;
    fn remove(&self, path: &str) -> bool;
}

/// Spare files kept at most (see [`outbox::spare_name`]): more than a turn writes at
/// once (its messages, drafts and the session's totals), so steady use creates no files.
const MAX_SPARES: usize = 32;

/// One process's view of the outbox directory.
#[derive(Debug)]
pub struct DiskOutbox {
    dir: String,
    writer: String,
    counter: u64,
    /// This process's draft file of each message in progress, by key.
    drafts: HashMap<String, String>,
    /// Files this process is done with, to write its next records into: creating a file
    /// costs several times what rewriting one and renaming it does.
    spares: Vec<String>,
    /// Done files become spares (until the plugin is disposed).
    recycling: bool,
}

/// Where a record is (see [`DiskOutbox::whereabouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whereabouts {
    Queued,
    Claimed,
    Gone,
}

/// A record loaded from disk at start (left by an earlier process).
#[derive(Debug)]
pub struct Leftover {
    pub file: String,
    pub record: Record,
}

/// What loading the leftovers found.
#[derive(Debug, Default)]
pub struct Scan {
    pub leftovers: Vec<Leftover>,
    pub corrupt: usize,
    /// Live records on disk, including ones another process is sending.
    pub total: usize,
    /// Records another sender is sending: `(session id, queue name, key)`.
    pub held: Vec<(String, String, String)>,
}

impl DiskOutbox {
    pub fn new(dir: String, writer: String) -> Self {
        Self {
            dir,
            writer,
            counter: 0,
            drafts: HashMap::new(),
            spares: Vec::new(),
            recycling: true,
        }
    }

    /// This process's writer tag.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.dir)
    }

    /// Writes a record under `file`: into a spare when there is one, then renamed into
    /// place (as atomic as [`Fs::write`]: a torn spare is no record), else a new file.
    fn write_record(&mut self, fs: &dyn Fs, file: &str, text: &str) -> bool {
        if let Some(spare) = self.spares.pop() {
            let spare = self.path(&spare);
            if fs.overwrite(&spare, text) && fs.rename(&spare, &self.path(file)) {
                return true;
            }
            fs.remove(&spare);
        }
        fs.write(&self.path(file), text)
    }

    /// Done with a file (delivered, superseded): kept as a spare while there is room,
    /// else deleted. Gone already (another process took it) is fine.
    fn done_with(&mut self, fs: &dyn Fs, file: &str) {
        let path = self.path(file);
        if self.recycling && self.spares.len() < MAX_SPARES {
            let spare = outbox::spare_name(&self.writer, self.counter);
            self.counter += 1;
            if fs.rename(&path, &self.path(&spare)) {
                self.spares.push(spare);
                return;
            }
        }
        fs.remove(&path);
    }

    /// Deletes the spares and keeps no more: the plugin is being disposed.
    pub fn retire_spares(&mut self, fs: &dyn Fs) {
        self.recycling = false;
        for spare in std::mem::take(&mut self.spares) {
            fs.remove(&self.path(&spare));
        }
    }

    fn quarantine_path(&self, file: &str) -> String {
        format!("{}/{}/{file}", self.dir, outbox::QUARANTINE_DIR)
    }

    /// Persists a record (named by its queue time); returns its file name, or `None`
    /// when the write failed (the record is then only in memory, and still sent).
    /// A draft of the same message is deleted: this supersedes it (and a draft left
    /// behind would be sent, stale, when this process is gone).
    pub fn persist(&mut self, fs: &dyn Fs, record: &Record) -> Option<String> {
        let file = record.file_name(&self.writer, self.counter);
        self.counter += 1;
        let written = self.write_record(fs, &file, &record.encode());
        if !self.drafts.is_empty()
            && let Some(draft) = self.drafts.remove(&record.key())
        {
            self.done_with(fs, &draft);
        }
        written.then_some(file)
    }

    /// Keeps a draft of a message still being written, replacing this process's older
    /// draft of it. Nobody sends it while this process runs (see [`outbox`]).
    pub fn persist_draft(&mut self, fs: &dyn Fs, draft: &Record) {
        let file = draft.draft_file_name(&self.writer, self.counter);
        self.counter += 1;
        if self.write_record(fs, &file, &draft.encode())
            && let Some(old) = self.drafts.insert(draft.key(), file)
        {
            self.done_with(fs, &old);
        }
    }

    /// Deletes this process's draft of `key` (the message was removed): left behind, it
    /// would be sent once this process is gone.
    pub fn discard_draft(&mut self, fs: &dyn Fs, key: &str) {
        if let Some(draft) = self.drafts.remove(key) {
            self.done_with(fs, &draft);
        }
    }

    /// Deletes a record superseded by a newer one (unless someone is sending it).
    pub fn discard(&mut self, fs: &dyn Fs, file: &str) {
        self.done_with(fs, file);
    }

    /// Where the newest record of `key` is now (by queue name): queued, claimed by a
    /// sender, or nowhere (delivered, set aside).
    pub fn find_key(&self, fs: &dyn Fs, key: &str) -> Option<(Whereabouts, String)> {
        let names = fs.list(&self.dir)?;
        let mut found: Option<(Whereabouts, String)> = None;
        for name in &names {
            let (whereabouts, record) = match outbox::parse_entry(name) {
                outbox::Entry::Queued(record) if !record.draft => (Whereabouts::Queued, record),
                outbox::Entry::Claimed { name: record, .. } if !record.draft => {
                    (Whereabouts::Claimed, record)
                }
                _ => continue,
            };
            if record.key == key && found.as_ref().is_none_or(|(_, f)| record.file > *f) {
                found = Some((whereabouts, record.file));
            }
        }
        found
    }

    /// Reads one queued record (`None` when it is gone, claimed or corrupt).
    pub fn read(&self, fs: &dyn Fs, file: &str) -> Option<Record> {
        Record::decode(&fs.read(&self.path(file))?).ok()
    }

    /// Claims a record for sending; `None` when another process took it first.
    pub fn claim(&self, fs: &dyn Fs, file: &str, now: i64) -> Option<String> {
        let claim = outbox::claim_name(file, now, &self.writer);
        fs.rename(&self.path(file), &self.path(&claim))
            .then_some(claim)
    }

    /// Whether some sender holds a claim on `file` (it is being sent).
    pub fn claimed_elsewhere(&self, fs: &dyn Fs, file: &str) -> bool {
        self.whereabouts(fs, file) == Whereabouts::Claimed
    }

    /// Where a record is now: queued under its name, claimed by a sender, or gone
    /// (delivered, superseded or set aside).
    pub fn whereabouts(&self, fs: &dyn Fs, file: &str) -> Whereabouts {
        let Some(names) = fs.list(&self.dir) else {
            return Whereabouts::Gone;
        };
        let prefix = format!("{file}.claim-");
        if names.iter().any(|n| n.starts_with(&prefix)) {
            Whereabouts::Claimed
        } else if names.iter().any(|n| n == file) {
            Whereabouts::Queued
        } else {
            Whereabouts::Gone
        }
    }

    /// Delivered: the claim goes away.
    pub fn delivered(&mut self, fs: &dyn Fs, claim: &str) {
        self.done_with(fs, claim);
    }

    /// Not delivered yet: the record goes back under its queue name.
    pub fn release(&self, fs: &dyn Fs, claim: &str, file: &str) {
        if !fs.rename(&self.path(claim), &self.path(file)) {
            fs.remove(&self.path(claim));
        }
    }

    /// Not delivered yet: the record, rewritten as `text` (its history after the failed
    /// attempt), goes back under its queue name. If it cannot be rewritten, it goes back
    /// as it was.
    pub fn release_with(&self, fs: &dyn Fs, claim: &str, file: &str, text: &str) {
        fs.write(&self.path(claim), text);
        self.release(fs, claim, file);
    }

    /// Refused for good: kept aside with the reason (in its history), for
    /// `opencode-sync status`.
    pub fn quarantine(&self, fs: &dyn Fs, claim: &str, file: &str, record: &Record) {
        fs.write(&self.quarantine_path(file), &record.encode());
        fs.remove(&self.path(claim));
    }

    /// Loads what earlier processes left: takes back claims of dead or stale senders,
    /// deletes superseded records, and reads the rest in queue order (with the drafts of
    /// processes that died mid-message). A corrupt record is set aside.
    pub fn scan(&self, fs: &dyn Fs, now: i64, liveness: &dyn Liveness) -> Scan {
        let mut scan = Scan::default();
        let Some(names) = fs.list(&self.dir) else {
            return scan;
        };
        // Spares a dead process left behind are nobody's.
        for name in &names {
            if outbox::spare_writer(name).is_some_and(|w| !liveness.alive(w)) {
                fs.remove(&self.path(name));
            }
        }
        let mut plan = outbox::plan(&names, now, liveness);
        if !plan.reclaim.is_empty() {
            for (claim, file) in &plan.reclaim {
                fs.rename(&self.path(claim), &self.path(file));
            }
            // The records taken back are queued again: plan once more with them.
            plan = outbox::plan(&fs.list(&self.dir).unwrap_or_default(), now, liveness);
        }
        for file in &plan.superseded {
            fs.remove(&self.path(file));
        }
        scan.total = plan.total - plan.superseded.len();
        scan.held = plan
            .held
            .into_iter()
            .map(|name| (name.session_id, name.file, name.key))
            .collect();
        for name in plan.queued {
            let Some(text) = fs.read(&self.path(&name.file)) else {
                continue; // claimed by another process meanwhile
            };
            match Record::decode(&text) {
                Ok(record) => scan.leftovers.push(Leftover {
                    file: name.file,
                    record,
                }),
                Err(_) => {
                    scan.corrupt += 1;
                    fs.rename(
                        &self.path(&name.file),
                        &self.quarantine_path(&format!("{}.corrupt", name.file)),
                    );
                }
            }
        }
        scan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MessagePayload, SessionPayload};
    use crate::engine::Upsert;
    use crate::outbox::History;

    use crate::delivery::mem_fs::MemFs;

    fn session(id: &str, queued_at: i64) -> Record {
        let payload = SessionPayload {
            external_id: id.into(),
            ..Default::default()
        };
        Record::new(&Upsert::Session(payload), queued_at)
    }

    fn message(id: &str, queued_at: i64) -> Record {
        let payload = MessagePayload {
            session_external_id: "ses_1".into(),
            external_id: id.into(),
            ..Default::default()
        };
        Record::new(&Upsert::Message(payload), queued_at)
    }

    #[test]
    fn a_second_process_picks_up_what_the_first_left() {
        let fs = MemFs::default();
        let mut first = DiskOutbox::new("/o".into(), "aaaa".into());
        let s = first.persist(&fs, &session("ses_1", 10)).unwrap();
        let m = first.persist(&fs, &message("msg_1", 11)).unwrap();
        let m2 = first.persist(&fs, &message("msg_2", 12)).unwrap();
        // msg_1 was being sent when the process died.
        let _claim = first.claim(&fs, &m, 13).unwrap();
        fs.write(
            &format!(
                "/o/{}",
                "0000000000014-aaaa-000003.ses_1.message.msg_3.json"
            ),
            "{torn",
        );

        let second = DiskOutbox::new("/o".into(), "bbbb".into());
        // Within the stale window the claim is respected.
        let scan = second.scan(&fs, 1000, &outbox::AssumeAlive);
        let files: Vec<&str> = scan.leftovers.iter().map(|l| l.file.as_str()).collect();
        assert_eq!(files, [s.as_str(), m2.as_str()]);
        assert_eq!(scan.corrupt, 1);
        assert!(
            fs.read("/o/quarantine/0000000000014-aaaa-000003.ses_1.message.msg_3.json.corrupt")
                .is_some()
        );
        // After it, the dead process's claim is taken back.
        let scan = second.scan(&fs, 13 + outbox::STALE_CLAIM_MS + 1, &outbox::AssumeAlive);
        let files: Vec<&str> = scan.leftovers.iter().map(|l| l.file.as_str()).collect();
        assert_eq!(files, [s.as_str(), m.as_str(), m2.as_str()]);
    }

    /// Writers whose tag ends in `p1` run.
    struct Pid1Runs;
    impl Liveness for Pid1Runs {
        fn alive(&self, writer: &str) -> bool {
            writer.ends_with("p1")
        }
    }

    /// The files in `/o` that are not spares.
    fn records(fs: &MemFs) -> Vec<String> {
        let mut names = fs.list("/o").unwrap();
        names.retain(|n| outbox::spare_writer(n).is_none());
        names
    }

    #[test]
    fn drafts_stay_until_complete_or_their_writer_dies() {
        let fs = MemFs::default();
        let mut live = DiskOutbox::new("/o".into(), "aaaaaaaap1".into());
        live.persist_draft(&fs, &message("msg_1", 10));
        live.persist_draft(&fs, &message("msg_1", 11));
        assert_eq!(records(&fs).len(), 1, "a newer draft replaces the older");
        let reader = DiskOutbox::new("/o".into(), "cccccccc".into());
        let scan = reader.scan(&fs, 12, &Pid1Runs);
        assert!(
            scan.leftovers.is_empty(),
            "the writer runs: its draft is held"
        );
        assert_eq!(scan.total, 1);
        let file = live.persist(&fs, &message("msg_1", 13)).unwrap();
        assert_eq!(records(&fs), [file], "complete: the draft is gone");

        let mut dead = DiskOutbox::new("/o".into(), "bbbbbbbbp2".into());
        dead.persist_draft(&fs, &message("msg_2", 14));
        let scan = reader.scan(&fs, 15, &Pid1Runs);
        let keys: Vec<String> = scan.leftovers.iter().map(|l| l.record.key()).collect();
        assert_eq!(
            keys,
            ["message:msg_1", "message:msg_2"],
            "a dead writer's draft is sent"
        );
    }

    #[test]
    fn done_files_are_rewritten_as_the_next_records() {
        let fs = MemFs::default();
        let mut live = DiskOutbox::new("/o".into(), "aaaaaaaap1".into());
        let first = live.persist(&fs, &session("ses_1", 1)).unwrap();
        let claim = live.claim(&fs, &first, 2).unwrap();
        live.delivered(&fs, &claim);
        let spare = fs.list("/o").unwrap();
        assert_eq!(spare.len(), 1);
        assert_eq!(outbox::spare_writer(&spare[0]), Some("aaaaaaaap1"));
        let next = live.persist(&fs, &message("msg_1", 3)).unwrap();
        assert_eq!(
            fs.list("/o").unwrap(),
            std::slice::from_ref(&next),
            "the spare became the record"
        );
        let text = fs.read(&format!("/o/{next}")).unwrap();
        assert_eq!(Record::decode(&text).unwrap(), message("msg_1", 3));

        // A dead process's spares are deleted by the next start; a live one's are not.
        let mut dead = DiskOutbox::new("/o".into(), "bbbbbbbbp2".into());
        let file = dead.persist(&fs, &session("ses_2", 4)).unwrap();
        let claim = dead.claim(&fs, &file, 5).unwrap();
        dead.delivered(&fs, &claim);
        let claim = live.claim(&fs, &next, 6).unwrap();
        live.delivered(&fs, &claim);
        assert_eq!(fs.list("/o").unwrap().len(), 2);
        let reader = DiskOutbox::new("/o".into(), "cccccccc".into());
        let scan = reader.scan(&fs, 7, &Pid1Runs);
        assert!(scan.leftovers.is_empty() && scan.total == 0);
        let left = fs.list("/o").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(outbox::spare_writer(&left[0]), Some("aaaaaaaap1"));
        // Disposed: no spares left, and none kept any more.
        live.retire_spares(&fs);
        let file = live.persist(&fs, &session("ses_3", 8)).unwrap();
        let claim = live.claim(&fs, &file, 9).unwrap();
        live.delivered(&fs, &claim);
        assert!(fs.list("/o").unwrap().is_empty());
    }

    #[test]
    fn claims_are_exclusive_and_outcomes_move_files() {
        let fs = MemFs::default();
        let mut a = DiskOutbox::new("/o".into(), "aaaa".into());
        let mut b = DiskOutbox::new("/o".into(), "bbbb".into());
        let file = a.persist(&fs, &session("ses_1", 1)).unwrap();
        let claim = a.claim(&fs, &file, 2).unwrap();
        assert!(
            b.claim(&fs, &file, 2).is_none(),
            "only one sender gets a record"
        );
        assert!(b.claimed_elsewhere(&fs, &file));
        a.release(&fs, &claim, &file);
        assert!(!b.claimed_elsewhere(&fs, &file));
        let claim = b.claim(&fs, &file, 3).unwrap();
        b.delivered(&fs, &claim);
        b.retire_spares(&fs);
        assert!(fs.list("/o").unwrap().is_empty());

        let file = a.persist(&fs, &session("ses_2", 4)).unwrap();
        let claim = a.claim(&fs, &file, 5).unwrap();
        let refused = session("ses_2", 4).with_history(History {
            queued_at: 4,
            attempts: 1,
            not_before: 0,
            last_error: Some("too large".into()),
        });
        a.quarantine(&fs, &claim, &file, &refused);
        assert!(fs.list("/o").unwrap().is_empty());
        let kept = fs.read(&format!("/o/quarantine/{file}")).unwrap();
        assert_eq!(
            Record::decode(&kept).unwrap().history.last_error.as_deref(),
            Some("too large")
        );
    }
}
