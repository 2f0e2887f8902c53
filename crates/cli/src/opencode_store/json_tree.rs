//! The older `storage/` tree of JSON files, read-only: a file that cannot be read is a
//! skipped row, a wrong-typed field costs that field.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use opencode_sync_core::backfill::decode_leaving_out;
use opencode_sync_core::model::SessionInfo;
use serde_json::{Map, Value};

use super::rows::{Notes, data_object, left_out_text, message_of, part_of};
use super::{
    HistoryStore, Listing, StoredMessage, StoredSession, sort_messages, sort_summaries, summary_of,
};

/// The older `storage/` tree: `session/<projectID>/<sessionID>.json`,
/// `message/<sessionID>/<messageID>.json`, `part/<messageID>/<partID>.json`.
#[derive(Debug)]
pub struct JsonTreeStore {
    root: PathBuf,
    /// Session id -> its file, from the last listing.
    files: HashMap<String, PathBuf>,
    projects: HashMap<String, String>,
}

fn mtime_ms(path: &Path) -> f64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// The `*.json` files directly in `dir` (none when it does not exist), sorted by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A JSON file as an object (see [`data_object`]); `Err(why)` when it cannot be read.
fn read_object(path: &Path) -> Result<(Map<String, Value>, Option<String>), String> {
    let bytes = fs::read(path).map_err(|e| format!("file cannot be read ({e})"))?;
    data_object("file", &bytes)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sets `key` to `value` unless the object already has a non-empty string there.
fn default_id(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if obj
        .get(key)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert(key.into(), Value::String(value.to_owned()));
    }
}

impl JsonTreeStore {
    pub fn open(root: &Path) -> Result<Self> {
        let mut projects = HashMap::new();
        for file in json_files(&root.join("project"))? {
            if let Ok((obj, _)) = read_object(&file)
                && let Some(worktree) = obj.get("worktree").and_then(Value::as_str)
            {
                let id = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| file_stem(&file), str::to_owned);
                projects.insert(id, worktree.to_owned());
            }
        }
        Ok(Self {
            root: root.to_owned(),
            files: HashMap::new(),
            projects,
        })
    }

    /// A session file, leniently (as a row: a wrong type costs that field, a missing
    /// creation time is the update time); `Err(why)` when it is no session at all.
    fn session_info(path: &Path) -> Result<(SessionInfo, Vec<String>), String> {
        let (mut obj, utf8) = read_object(path)?;
        default_id(&mut obj, "id", &file_stem(path));
        if let Some(project) = path.parent().map(file_stem) {
            default_id(&mut obj, "projectID", &project);
        }
        let (mut info, left_out) = decode_leaving_out::<SessionInfo>(obj)
            .ok_or_else(|| "file is not an OpenCode session".to_owned())?;
        if info.id.is_empty() {
            return Err("file has no session id".to_owned());
        }
        if left_out.iter().any(|f| f == "time.created") {
            info.time.created = info.time.updated.unwrap_or(0.0);
        }
        Ok((
            info,
            utf8.into_iter().chain(left_out_text(&left_out)).collect(),
        ))
    }

    /// `session/<project>/<id>.json` relative to the tree, for the notes.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

impl HistoryStore for JsonTreeStore {
    fn list(&mut self) -> Result<Listing> {
        let session_dir = self.root.join("session");
        let mut projects: Vec<PathBuf> = fs::read_dir(&session_dir)
            .with_context(|| format!("reading {}", session_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        projects.sort();
        self.files.clear();
        let mut notes = Notes::default();
        let mut sessions = Vec::new();
        for project in projects {
            for file in json_files(&project)? {
                match Self::session_info(&file) {
                    Ok((info, _)) => {
                        sessions.push(summary_of(&info));
                        self.files.insert(info.id.clone(), file);
                    }
                    Err(why) => notes.skipped(
                        "session",
                        Some(&file_stem(&file)),
                        None,
                        format!("{}: {why}", self.relative(&file)),
                    ),
                }
            }
        }
        sort_summaries(&mut sessions);
        Ok(Listing {
            sessions,
            notes: notes.finish(None),
        })
    }

    fn load(&mut self, id: &str) -> Result<Option<StoredSession>> {
        let Some((info, reasons)) = self.files.get(id).and_then(|f| Self::session_info(f).ok())
        else {
            return Ok(None);
        };
        let mut notes = Notes::default();
        notes.partly("session", id, id, reasons);
        let project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();
        let mut messages = Vec::new();
        for file in json_files(&self.root.join("message").join(id))? {
            let stem = file_stem(&file);
            let read = read_object(&file).and_then(|(mut obj, utf8)| {
                default_id(&mut obj, "id", &stem);
                let message_id = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(&stem)
                    .to_owned();
                message_of(obj, &message_id, id).map(|(info, left_out)| (info, left_out, utf8))
            });
            let (info, left_out, utf8) = match read {
                Ok(read) => read,
                Err(why) => {
                    notes.skipped("message", Some(&stem), Some(id), why);
                    continue;
                }
            };
            notes.partly(
                "message",
                &info.id,
                id,
                utf8.into_iter().chain(left_out_text(&left_out)).collect(),
            );
            let mut mark = mtime_ms(&file);
            let mut parts = Vec::new();
            for part_file in json_files(&self.root.join("part").join(&info.id))? {
                let stem = file_stem(&part_file);
                let read = read_object(&part_file).and_then(|(mut obj, utf8)| {
                    default_id(&mut obj, "id", &stem);
                    let part_id = obj
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or(&stem)
                        .to_owned();
                    part_of(obj, &part_id, &info.id, id)
                        .map(|(part, left_out)| (part, left_out, utf8))
                });
                let (part, left_out, utf8) = match read {
                    Ok(read) => read,
                    Err(why) => {
                        notes.skipped("part", Some(&stem), Some(id), why);
                        continue;
                    }
                };
                notes.partly(
                    "part",
                    &part.id,
                    id,
                    utf8.into_iter().chain(left_out_text(&left_out)).collect(),
                );
                mark = mark.max(mtime_ms(&part_file));
                parts.push(part);
            }
            parts.sort_by(|a, b| a.id.cmp(&b.id));
            messages.push(StoredMessage { info, parts, mark });
        }
        sort_messages(&mut messages);
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            notes: notes.finish(Some(id)),
        }))
    }
}
