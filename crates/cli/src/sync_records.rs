//! The local record of what `opencode-sync sync` has delivered: one file per deployment
//! and key in the state directory (`$XDG_STATE_HOME/opencode-sync/`), one JSON line per
//! synced session ([`SyncRecord`]), the last line for an id winning.
//!
//! A line is appended as soon as a session is delivered, so an interrupted run loses
//! nothing it finished; a torn last line (a kill mid-write) is ignored when read. When
//! a run ends the file is rewritten compactly (temporary file + rename). Two runs at
//! once only cost resends: upserts are idempotent on the server.
//!
//! Whatever else the file holds (binary bytes, lines of another shape) is skipped line by
//! line, never the file: the sessions those lines recorded are sent again (idempotent),
//! the others are not, and the next run that records anything rewrites the file without
//! them.
//!
//! After a key rotation the new key has no file yet: [`SyncRecords::of_other_keys`] reads
//! what the files of the same deployment's other keys say was delivered, so `sync` does
//! not send the whole history again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use opencode_sync_core::SiteUrl;
use opencode_sync_core::backfill::SyncRecord;

use crate::fsutil::{create_private_dir, write_private_atomically};

/// The record file of one deployment and key.
#[derive(Debug)]
pub struct SyncRecords {
    path: PathBuf,
    header: String,
    records: HashMap<String, SyncRecord>,
    lines: usize,
    append: Option<File>,
    dirty: bool,
    /// Lines that are neither the header nor a record (binary, torn, another shape).
    unreadable: usize,
    /// The file does not end with a newline (a torn last line): the next append starts
    /// one, so the new record is not glued to it.
    needs_newline: bool,
}

/// FNV-1a 64 of `text`, hex.
fn fnv(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl SyncRecords {
    /// The file for `url` and the key shown as `masked_key` (the key itself never goes
    /// into a name or a file), under `state_dir`.
    pub fn path_for(state_dir: &Path, url: &SiteUrl, masked_key: &str) -> PathBuf {
        let id = fnv(&format!("{}\n{masked_key}", url.as_str()));
        state_dir.join(format!("synced-{id}.jsonl"))
    }

    /// Loads the records (none when the file does not exist).
    pub fn load(path: PathBuf, url: &SiteUrl) -> io::Result<Self> {
        let header = serde_json::json!({"v": 1, "server": url.as_str(), "note": NOTE}).to_string();
        let mut records = HashMap::new();
        let mut lines = 0;
        let mut unreadable = 0;
        let mut needs_newline = false;
        match fs::read(&path) {
            Ok(bytes) => {
                needs_newline = !bytes.is_empty() && !bytes.ends_with(b"\n");
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    lines += 1;
                    match serde_json::from_slice::<SyncRecord>(line) {
                        Ok(record) if !record.id.is_empty() => {
                            records.insert(record.id.clone(), record);
                        }
                        _ if is_header(line) => {}
                        _ => unreadable += 1,
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            path,
            header,
            records,
            lines,
            append: None,
            dirty: false,
            unreadable,
            needs_newline,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many lines of the file were skipped as unreadable when it was loaded.
    pub fn unreadable_lines(&self) -> usize {
        self.unreadable
    }

    pub fn get(&self, id: &str) -> Option<&SyncRecord> {
        self.records.get(id)
    }

    /// Whether no session is recorded (no file, or nothing readable in it).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What was delivered to the deployment at `url` under other keys than the one whose
    /// file is `own` (after a key rotation): each session's newest record (by its update
    /// time) over every other record file in `state_dir` whose header names `url`. A file
    /// that cannot be read costs only itself.
    pub fn of_other_keys(
        state_dir: &Path,
        url: &SiteUrl,
        own: &Path,
    ) -> HashMap<String, SyncRecord> {
        let mut merged: HashMap<String, SyncRecord> = HashMap::new();
        let Ok(entries) = fs::read_dir(state_dir) else {
            return merged;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path == own
                || !name.starts_with("synced-")
                || !name.ends_with(".jsonl")
                || !entry.file_type().is_ok_and(|t| t.is_file())
                || header_server(&path).as_deref() != Some(url.as_str())
            {
                continue;
            }
            let Ok(other) = Self::load(path, url) else {
                continue;
            };
            for (id, record) in other.records {
                match merged.get(&id) {
                    Some(kept) if kept.updated >= record.updated => {}
                    _ => {
                        merged.insert(id, record);
                    }
                }
            }
        }
        merged
    }

    /// Records a session now (appends one line).
    pub fn put(&mut self, record: SyncRecord) -> io::Result<()> {
        let line = serde_json::to_string(&record).map_err(io::Error::other)?;
        if self
            .append
            .as_ref()
            .is_some_and(|file| replaced(file, &self.path))
        {
            // Another run compacted the file meanwhile (a new file under the name): append
            // to that one, or this line would go to the old, unlinked file.
            self.append = None;
            self.needs_newline = false;
        }
        if self.append.is_none() {
            let dir = self
                .path
                .parent()
                .ok_or_else(|| io::Error::other("the record file has no directory"))?;
            create_private_dir(dir)?;
            let fresh = !self.path.exists();
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            // Windows refuses to rename over a file open without FILE_SHARE_DELETE: a
            // second `sync` compacting the file (`finish`) while this one appends would
            // fail. Share read, write and delete (0x1 | 0x2 | 0x4), as Unix does.
            #[cfg(windows)]
            {
                use std::os::windows::fs::OpenOptionsExt;
                options.share_mode(0x1 | 0x2 | 0x4);
            }
            let mut file = options.open(&self.path)?;
            if fresh {
                file.write_all(format!("{}\n", self.header).as_bytes())?;
                self.lines += 1;
            } else if self.needs_newline {
                file.write_all(b"\n")?;
            }
            self.needs_newline = false;
            self.append = Some(file);
        }
        if let Some(file) = self.append.as_mut() {
            // One write per line: a kill leaves at worst a torn last line.
            file.write_all(format!("{line}\n").as_bytes())?;
        }
        self.lines += 1;
        self.dirty = true;
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    /// Ends a run: rewrites the file compactly when it holds many superseded lines,
    /// else makes the appended lines durable.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if self.unreadable > 0 || self.lines > 2 * self.records.len() + 16 {
            let mut ids: Vec<&String> = self.records.keys().collect();
            ids.sort();
            let mut text = format!("{}\n", self.header);
            for id in ids {
                if let Ok(line) = serde_json::to_string(&self.records[id]) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            self.append = None;
            match write_private_atomically(&self.path, text.as_bytes()) {
                Ok(()) => {
                    self.lines = self.records.len() + 1;
                    self.unreadable = 0;
                }
                // Windows (wine always, Windows when a handle does not share delete)
                // refuses to rename over a file another `sync` holds open: compacting is
                // only tidying, every record is appended already, and the next run
                // compacts.
                Err(e) if cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(e),
            }
        } else if let Some(file) = &self.append {
            file.sync_data()?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Whether the file at `path` is no longer the one `file` has open (replaced by a rename).
#[cfg(unix)]
fn replaced(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => (open.dev(), open.ino()) != (named.dev(), named.ino()),
        _ => true,
    }
}

/// Windows refuses the rename while the file is open here (see [`SyncRecords::finish`]).
#[cfg(not(unix))]
fn replaced(_file: &File, _path: &Path) -> bool {
    false
}

/// The longest first line [`header_server`] reads (a header is ~150 bytes).
const MAX_HEADER: u64 = 4096;

/// The deployment a record file is for, from its header line; `None` when the first line
/// is no header.
fn header_server(path: &Path) -> Option<String> {
    use std::io::{BufRead, BufReader, Read};
    let mut line = Vec::new();
    BufReader::new(File::open(path).ok()?.take(MAX_HEADER))
        .read_until(b'\n', &mut line)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(line.trim_ascii()).ok()?;
    header.get("v")?;
    header.get("server")?.as_str().map(str::to_owned)
}

/// Whether `line` is the file's header (`{"v": 1, ...}`).
fn is_header(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| v.get("v").is_some())
}

const NOTE: &str =
    "sessions delivered by `opencode-sync sync`; delete this file to send everything again";

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> SiteUrl {
        SiteUrl::parse("http://127.0.0.1:9").unwrap()
    }

    fn rec(id: &str, updated: f64) -> SyncRecord {
        opencode_sync_core::backfill::record_on_server(id, updated, None)
    }

    #[test]
    fn append_reload_torn_line_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = SyncRecords::path_for(dir.path(), &url(), "osk_abcd…wxyz");
        let mut r = SyncRecords::load(path.clone(), &url()).unwrap();
        r.put(rec("a", 1.0)).unwrap();
        r.put(rec("b", 1.0)).unwrap();
        r.put(rec("a", 2.0)).unwrap();
        // That run ends (a run still appending meanwhile: see the next test).
        drop(r);
        // A kill mid-write.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"c\",\"upd")
            .unwrap();
        let mut again = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(again.get("a").unwrap().updated, 2.0);
        assert!(again.get("c").is_none());
        for i in 0..40 {
            again.put(rec("a", f64::from(i))).unwrap();
        }
        again.finish().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let last = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(last.get("a").unwrap().updated, 39.0);
        assert_eq!(last.get("b").unwrap().updated, 1.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn compacting_while_another_run_appends_loses_nothing() {
        // Two `sync` runs at once: one still holds the file open to append while the
        // other ends and compacts it (refused on Windows, done elsewhere): no error, no
        // record lost, and the first run's later appends are still read.
        let dir = tempfile::tempdir().unwrap();
        let path = SyncRecords::path_for(dir.path(), &url(), "osk_abcd…wxyz");
        let mut first = SyncRecords::load(path.clone(), &url()).unwrap();
        first.put(rec("a", 1.0)).unwrap();
        let mut second = SyncRecords::load(path.clone(), &url()).unwrap();
        for i in 0..40 {
            second.put(rec("b", f64::from(i))).unwrap();
        }
        second.finish().unwrap();
        first.put(rec("c", 1.0)).unwrap();
        first.finish().unwrap();
        let read = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(read.get("a").unwrap().updated, 1.0);
        assert_eq!(read.get("b").unwrap().updated, 39.0);
        assert_eq!(
            read.get("c").map(|r| r.updated),
            Some(1.0),
            "an append after the other run compacted the file"
        );
    }

    #[test]
    fn the_records_of_other_keys_for_the_same_deployment_are_merged_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let other_url = SiteUrl::parse("http://127.0.0.1:10").unwrap();
        let own = SyncRecords::path_for(dir.path(), &url(), "osk_new…0003");
        for (masked, server, records) in [
            ("osk_old…0001", url(), vec![rec("a", 1.0), rec("b", 5.0)]),
            ("osk_old…0002", url(), vec![rec("a", 3.0), rec("b", 2.0)]),
            ("osk_elsewhere", other_url.clone(), vec![rec("c", 9.0)]),
            ("osk_new…0003", url(), vec![rec("d", 9.0)]),
        ] {
            let path = SyncRecords::path_for(dir.path(), &server, masked);
            let mut r = SyncRecords::load(path, &server).unwrap();
            for record in records {
                r.put(record).unwrap();
            }
            r.finish().unwrap();
        }
        fs::write(dir.path().join("synced-garbage.jsonl"), b"\xff\xfe").unwrap();
        let merged = SyncRecords::of_other_keys(dir.path(), &url(), &own);
        let mut ids: Vec<(&str, f64)> = merged
            .iter()
            .map(|(k, v)| (k.as_str(), v.updated))
            .collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(ids, [("a", 3.0), ("b", 5.0)]);
        assert!(SyncRecords::of_other_keys(&dir.path().join("none"), &url(), &own).is_empty());
    }

    #[test]
    fn binary_lines_cost_only_themselves_and_a_torn_line_is_not_glued_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = SyncRecords::path_for(dir.path(), &url(), "osk_abcd…wxyz");
        let mut r = SyncRecords::load(path.clone(), &url()).unwrap();
        r.put(rec("a", 1.0)).unwrap();
        drop(r);
        // Binary bytes (not UTF-8) in the middle, and a torn last line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\xff\xfe\x00garbage\n{\"id\":\"b\",\"updated\":2}\n{\"id\":\"c\",\"up")
            .unwrap();
        drop(file);
        let mut r = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(r.unreadable_lines(), 2);
        assert_eq!(r.get("a").unwrap().updated, 1.0);
        assert_eq!(r.get("b").unwrap().updated, 2.0);
        r.put(rec("d", 4.0)).unwrap();
        // Read back before `finish`: the appended record stands on its own line.
        let again = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(again.get("d").unwrap().updated, 4.0);
        // The run's end rewrites the file without the unreadable lines.
        r.finish().unwrap();
        let clean = SyncRecords::load(path.clone(), &url()).unwrap();
        assert_eq!(clean.unreadable_lines(), 0);
        assert!(["a", "b", "d"].iter().all(|id| clean.get(id).is_some()));
    }
}
