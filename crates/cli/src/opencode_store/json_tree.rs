//! The older trees of JSON files, read-only: a file that cannot be read is a skipped row,
//! a wrong-typed field costs that field. Two layouts: OpenCode 0.6 to 1.1's `storage/`
//! and 0.5's one tree per project, `project/<slug>/storage/session/{info,message,part}/`.

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

/// The older JSON trees (see [`Layout`]), one `storage/` or 0.5's several.
#[derive(Debug)]
pub struct JsonTreeStore {
    trees: Vec<Tree>,
    /// Session id -> its tree (an index in `trees`) and file, from the last listing.
    files: HashMap<String, (usize, PathBuf)>,
    projects: HashMap<String, String>,
}

/// Where a tree keeps sessions, messages and parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 0.6 to 1.1: `session/<projectID>/<sessionID>.json`,
    /// `message/<sessionID>/<messageID>.json`, `part/<messageID>/<partID>.json`.
    Storage,
    /// 0.5: `session/info/<sessionID>.json`, `session/message/<sessionID>/<messageID>.json`,
    /// `session/part/<sessionID>/<messageID>/<partID>.json`. Sessions have no directory:
    /// it is in their assistant messages' `path.cwd`.
    PerProject,
}

/// One tree of JSON files.
#[derive(Debug)]
struct Tree {
    root: PathBuf,
    layout: Layout,
}

impl Tree {
    /// Whether `dir` is a 0.5 per-project `storage/` tree.
    fn is_per_project(dir: &Path) -> bool {
        dir.join("session").join("info").is_dir()
    }

    /// Every session file of the tree.
    fn session_files(&self) -> Result<Vec<PathBuf>> {
        let session_dir = self.root.join("session");
        if self.layout == Layout::PerProject {
            return json_files(&session_dir.join("info"));
        }
        let mut projects: Vec<PathBuf> = fs::read_dir(&session_dir)
            .with_context(|| format!("reading {}", session_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        projects.sort();
        let mut files = Vec::new();
        for project in projects {
            files.extend(json_files(&project)?);
        }
        Ok(files)
    }

    fn message_dir(&self, session_id: &str) -> PathBuf {
        match self.layout {
            Layout::Storage => self.root.join("message").join(session_id),
            Layout::PerProject => self.root.join("session").join("message").join(session_id),
        }
    }

    fn part_dir(&self, session_id: &str, message_id: &str) -> PathBuf {
        match self.layout {
            Layout::Storage => self.root.join("part").join(message_id),
            Layout::PerProject => self
                .root
                .join("session")
                .join("part")
                .join(session_id)
                .join(message_id),
        }
    }
}

/// An assistant message's `path.cwd` and `path.root` (0.5 sessions have no directory).
fn message_paths(obj: &Map<String, Value>) -> (Option<String>, Option<String>) {
    let path = obj.get("path");
    let field = |key: &str| {
        path.and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (field("cwd"), field("root"))
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
    /// `root` is a `storage/` tree (either layout), or 0.5's `project/` directory holding
    /// a `<slug>/storage/` tree per project.
    pub fn open(root: &Path) -> Result<Self> {
        let trees = if Tree::is_per_project(root) {
            vec![Tree {
                root: root.to_owned(),
                layout: Layout::PerProject,
            }]
        } else if root.join("session").is_dir() {
            vec![Tree {
                root: root.to_owned(),
                layout: Layout::Storage,
            }]
        } else {
            let mut slugs: Vec<PathBuf> = fs::read_dir(root)
                .with_context(|| format!("reading {}", root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path().join("storage")))
                .filter(|p| Tree::is_per_project(p))
                .collect();
            slugs.sort();
            slugs
                .into_iter()
                .map(|root| Tree {
                    root,
                    layout: Layout::PerProject,
                })
                .collect()
        };
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
            trees,
            files: HashMap::new(),
            projects,
        })
    }

    /// Whether `dir` holds 0.5's per-project trees (`<slug>/storage/session/info/`).
    pub fn holds_per_project_trees(dir: &Path) -> bool {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| Tree::is_per_project(&e.path().join("storage")))
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

    /// `session/<project>/<id>.json` relative to its tree, for the notes.
    fn relative(&self, path: &Path) -> String {
        self.trees
            .iter()
            .find_map(|t| path.strip_prefix(&t.root).ok())
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

impl HistoryStore for JsonTreeStore {
    fn list(&mut self) -> Result<Listing> {
        self.files.clear();
        let mut notes = Notes::default();
        let mut sessions = Vec::new();
        for (index, tree) in self.trees.iter().enumerate() {
            for file in tree.session_files()? {
                match Self::session_info(&file) {
                    Ok((info, _)) => {
                        sessions.push(summary_of(&info));
                        self.files.insert(info.id.clone(), (index, file));
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
        let Some((tree, (mut info, reasons))) = self
            .files
            .get(id)
            .and_then(|(tree, f)| Some((&self.trees[*tree], Self::session_info(f).ok()?)))
        else {
            return Ok(None);
        };
        let mut reply_paths = (None, None);
        let mut notes = Notes::default();
        notes.partly("session", id, id, reasons);
        let mut project_worktree = info
            .project_id
            .as_ref()
            .and_then(|p| self.projects.get(p))
            .cloned();
        let mut messages = Vec::new();
        for file in json_files(&tree.message_dir(id))? {
            let stem = file_stem(&file);
            let read = read_object(&file).and_then(|(mut obj, utf8)| {
                default_id(&mut obj, "id", &stem);
                if reply_paths.0.is_none() {
                    reply_paths = message_paths(&obj);
                }
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
            for part_file in json_files(&tree.part_dir(id, &info.id))? {
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
        // 0.5 sessions have no directory: the one their replies ran in.
        let (cwd, root) = reply_paths;
        if info.directory.as_deref().is_none_or(str::is_empty) {
            info.directory = cwd;
        }
        if project_worktree.is_none() {
            project_worktree = root;
        }
        Ok(Some(StoredSession {
            info,
            messages,
            project_worktree,
            notes: notes.finish(Some(id)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Source;
    use serde_json::json;
    use std::path::Path;

    fn write(path: &Path, value: &serde_json::Value) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, value.to_string()).unwrap();
    }

    /// OpenCode 0.5's layout, found from the data directory: every session, message and
    /// part, and the directory the session ran in (0.5 keeps it only on the replies).
    #[test]
    fn reads_the_0_5_per_project_layout() {
        let data = tempfile::tempdir().unwrap();
        let tree = data.path().join("project/home-me-app/storage/session");
        write(
            &tree.join("info/ses_1.json"),
            &json!({"id": "ses_1", "version": "0.5.29", "title": "Old one",
                "time": {"created": 100, "updated": 300}}),
        );
        write(
            &tree.join("message/ses_1/msg_1.json"),
            &json!({"id": "msg_1", "sessionID": "ses_1", "role": "user", "time": {"created": 110}}),
        );
        write(
            &tree.join("message/ses_1/msg_2.json"),
            &json!({"id": "msg_2", "sessionID": "ses_1", "role": "assistant",
                "modelID": "m", "providerID": "p", "path": {"cwd": "/home/me/app/src", "root": "/home/me/app"},
                "cost": 0.5, "tokens": {"input": 10, "output": 5, "reasoning": 0, "cache": {"read": 1, "write": 0}},
                "time": {"created": 120, "completed": 130}}),
        );
        write(
            &tree.join("part/ses_1/msg_1/prt_1.json"),
            &json!({"id": "prt_1", "sessionID": "ses_1", "messageID": "msg_1", "type": "text", "text": "hello"}),
        );
        write(
            &tree.join("part/ses_1/msg_2/prt_2.json"),
            &json!({"id": "prt_2", "sessionID": "ses_1", "messageID": "msg_2", "type": "tool",
                "callID": "c1", "tool": "bash", "state": {"status": "completed",
                "input": {"command": "ls"}, "output": "a\n"}}),
        );
        write(
            &tree.join("part/ses_1/msg_2/prt_3.json"),
            &json!({"id": "prt_3", "sessionID": "ses_1", "messageID": "msg_2", "type": "text", "text": "done"}),
        );

        let source = Source::locate(data.path()).unwrap();
        assert_eq!(source.kind(), "json");
        let mut store = source.open().unwrap();
        let listing = store.list().unwrap();
        assert_eq!(listing.sessions.len(), 1);
        assert!(listing.notes.is_empty(), "{:?}", listing.notes);
        let session = store.load("ses_1").unwrap().unwrap();
        assert_eq!(session.info.title.as_deref(), Some("Old one"));
        assert_eq!(session.info.directory.as_deref(), Some("/home/me/app/src"));
        assert_eq!(session.project_worktree.as_deref(), Some("/home/me/app"));
        let ids: Vec<_> = session
            .messages
            .iter()
            .map(|m| m.info.id.as_str())
            .collect();
        assert_eq!(ids, ["msg_1", "msg_2"]);
        let parts: Vec<Vec<&str>> = session
            .messages
            .iter()
            .map(|m| m.parts.iter().map(|p| p.id.as_str()).collect())
            .collect();
        assert_eq!(parts, [vec!["prt_1"], vec!["prt_2", "prt_3"]]);
        assert!(session.notes.is_empty(), "{:?}", session.notes);
    }
}
