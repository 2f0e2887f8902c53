//! A made-up OpenCode history, written as OpenCode 1.18 writes it (`opencode.db` with
//! the real schema, WAL mode) or as older releases did (the JSON `storage/` tree), and
//! what the server must hold after a backfill of it. Shared by the backfill tests
//! (`tests/backfill.rs`) and the benchmark (`bench/backfill.rs`).
//!
//! Each session is a series of turns: a user prompt (text; the first one also carries a
//! synthetic text part), an assistant step that reasons, says something and calls two
//! tools (one completes, one fails), and an assistant answer. Session totals are the
//! sums over the assistant messages and the session model is the last assistant's, as
//! OpenCode computes them, so the JSON tree (which has neither) maps to the same values.

#![allow(clippy::unwrap_used, dead_code)]

use std::fs;
use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The tables `opencode.db` (OpenCode 1.18.33) has for projects, sessions, messages and
/// parts, as `sqlite_master` shows them.
pub const SCHEMA: &str = "
CREATE TABLE `project` (
  `id` text PRIMARY KEY, `worktree` text NOT NULL, `vcs` text, `name` text, `icon_url` text,
  `icon_url_override` text, `icon_color` text, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `time_initialized` integer, `sandboxes` text NOT NULL,
  `commands` text
);
CREATE TABLE `session` (
  `id` text PRIMARY KEY, `project_id` text NOT NULL, `workspace_id` text, `parent_id` text,
  `slug` text NOT NULL, `directory` text NOT NULL, `path` text, `title` text NOT NULL,
  `version` text NOT NULL, `share_url` text, `summary_additions` integer,
  `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `metadata` text,
  `cost` real DEFAULT 0 NOT NULL, `tokens_input` integer DEFAULT 0 NOT NULL,
  `tokens_output` integer DEFAULT 0 NOT NULL, `tokens_reasoning` integer DEFAULT 0 NOT NULL,
  `tokens_cache_read` integer DEFAULT 0 NOT NULL, `tokens_cache_write` integer DEFAULT 0 NOT NULL,
  `revert` text, `permission` text, `agent` text, `model` text, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `time_compacting` integer, `time_archived` integer,
  CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES `project`(`id`) ON DELETE CASCADE
);
CREATE TABLE `message` (
  `id` text PRIMARY KEY, `session_id` text NOT NULL, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `data` text NOT NULL,
  CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`) ON DELETE CASCADE
);
CREATE TABLE `part` (
  `id` text PRIMARY KEY, `message_id` text NOT NULL, `session_id` text NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL,
  CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`) REFERENCES `message`(`id`) ON DELETE CASCADE
);
CREATE INDEX `message_session_time_created_id_idx` ON `message` (`session_id`,`time_created`,`id`);
CREATE INDEX `part_message_id_id_idx` ON `part` (`message_id`,`id`);
CREATE INDEX `part_session_idx` ON `part` (`session_id`);
CREATE INDEX `session_project_idx` ON `session` (`project_id`);
CREATE INDEX `session_parent_idx` ON `session` (`parent_id`);
";

/// [`SCHEMA`] without its `NOT NULL` constraints: the columns OpenCode has, holding
/// what SQLite lets any writer put there (a NULL time, a message without a session).
pub fn loose_schema() -> String {
    SCHEMA.replace(" NOT NULL", "")
}

pub const MODEL: &str = "mock-1";
pub const PROVIDER: &str = "mock";

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub worktree: String,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub id: String,
    pub created: i64,
    pub updated: i64,
    /// The part JSON without ids (the `data` column).
    pub data: Value,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub role: &'static str,
    pub created: i64,
    pub completed: Option<i64>,
    pub updated: i64,
    pub model: String,
    /// input, output, reasoning, cache read, cache write (assistant only).
    pub tokens: [i64; 5],
    pub cost: f64,
    pub parts: Vec<Part>,
}

impl Message {
    /// The Message JSON without ids (the `data` column).
    pub fn data(&self, directory: &str) -> Value {
        if self.role == "user" {
            return json!({
                "role": "user", "time": {"created": self.created}, "agent": "build",
                "model": {"providerID": PROVIDER, "modelID": self.model}, "summary": {"diffs": []},
            });
        }
        let [input, output, reasoning, read, write] = self.tokens;
        let has_tools = self.parts.iter().any(|p| p.data["type"] == "tool");
        let mut time = json!({"created": self.created});
        if let Some(done) = self.completed {
            time["completed"] = json!(done);
        }
        json!({
            "parentID": "msg_parent", "role": "assistant", "mode": "build", "agent": "build",
            "path": {"cwd": directory, "root": directory}, "cost": self.cost,
            "tokens": {"total": input + output + reasoning + read + write, "input": input, "output": output,
                       "reasoning": reasoning, "cache": {"write": write, "read": read}},
            "modelID": self.model, "providerID": PROVIDER, "time": time,
            "finish": if has_tools { "tool-calls" } else { "stop" },
        })
    }

    /// `textContent` the server must hold: non-synthetic text parts joined by "\n\n".
    pub fn text(&self) -> Option<String> {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter(|p| p.data["type"] == "text" && p.data["synthetic"] != true)
            .filter_map(|p| p.data["text"].as_str())
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n\n"))
    }

    /// `(promptTokens, completionTokens)`, 0 meaning "not sent".
    pub fn token_totals(&self) -> (i64, i64) {
        let [input, output, reasoning, read, write] = self.tokens;
        (input + read + write, output + reasoning)
    }

    /// `(toolName, callID, status)` of each tool call.
    pub fn tool_calls(&self) -> Vec<(String, String, String)> {
        self.parts
            .iter()
            .filter(|p| p.data["type"] == "tool")
            .map(|p| {
                (
                    p.data["tool"].as_str().unwrap().to_owned(),
                    p.data["callID"].as_str().unwrap().to_owned(),
                    p.data["state"]["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub project: usize,
    pub directory: String,
    pub title: String,
    pub parent: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub messages: Vec<Message>,
    /// Added to the summed cost (to make a cost-only change).
    pub extra_cost: f64,
}

impl Session {
    /// input, output, reasoning, cache read, cache write: sums over assistant messages.
    pub fn tokens(&self) -> [i64; 5] {
        let mut t = [0; 5];
        for m in self.messages.iter().filter(|m| m.role == "assistant") {
            for (sum, v) in t.iter_mut().zip(m.tokens) {
                *sum += v;
            }
        }
        t
    }

    pub fn cost(&self) -> f64 {
        self.messages
            .iter()
            .filter(|m| m.role == "assistant")
            .fold(0.0, |acc, m| acc + m.cost)
            + self.extra_cost
    }

    pub fn model(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "assistant")
            .map_or_else(|| MODEL.to_owned(), |m| m.model.clone())
    }

    /// A new turn (user prompt + tool step + answer) at `at` (ms); bumps `updated`.
    pub fn add_turn(&mut self, at: i64, secret: Option<&str>) {
        let n = self.messages.len();
        let si = self.id.clone();
        let turn = n / 3;
        let mid = |k: usize| format!("msg_{}_{:04}", &si[4..], n + k);
        let pid = |k: usize, j: usize| format!("prt_{}_{:04}_{j:02}", &si[4..], n + k);
        let part = |k: usize, j: usize, t: i64, data: Value| Part {
            id: pid(k, j),
            created: t,
            updated: t + 5,
            data,
        };
        // The user prompt.
        let mut user_parts = vec![part(
            0,
            0,
            at + 1,
            json!({"type": "text", "text": format!("Question {turn}: what about {}?", self.title)}),
        )];
        if turn == 0 {
            user_parts.push(part(
                0,
                1,
                at + 2,
                json!({"type": "text", "text": "Called the Read tool with notes.txt", "synthetic": true}),
            ));
        }
        self.messages.push(Message {
            id: mid(0),
            role: "user",
            created: at,
            completed: None,
            updated: at + 20,
            model: MODEL.to_owned(),
            tokens: [0; 5],
            cost: 0.0,
            parts: user_parts,
        });
        // A step that reasons, talks and calls two tools.
        let a = at + 1_000;
        let tok = |x: i64| [1_000 + 17 * x, 40 + x, x % 3, 100 * (x % 2), 5 * (x % 3)];
        let cost = |t: [i64; 5]| (t[0] as f64 * 3.0 + t[1] as f64 * 15.0) / 1e6;
        let t1 = tok(n as i64);
        let output = match secret {
            Some(s) => format!("deployed with token={s}\n"),
            None => format!("line {turn}\n"),
        };
        self.messages.push(Message {
            id: mid(1),
            role: "assistant",
            created: a,
            completed: Some(a + 2_500),
            updated: a + 2_510,
            model: MODEL.to_owned(),
            tokens: t1,
            cost: cost(t1),
            parts: vec![
                part(1, 0, a + 10, json!({"type": "step-start", "snapshot": "5eed"})),
                part(1, 1, a + 20, json!({"type": "reasoning", "text": "Let me look.", "time": {"start": a + 20, "end": a + 30}})),
                part(1, 2, a + 40, json!({"type": "text", "text": format!("Running tools for turn {turn}."), "time": {"start": a + 40, "end": a + 50}})),
                part(1, 3, a + 60, json!({"type": "tool", "tool": "bash", "callID": format!("call_{}_{}_0", &si[4..], n),
                    "state": {"status": "completed", "input": {"command": "cat notes.txt", "description": "Read notes"},
                              "output": output, "metadata": {"exit": 0, "truncated": false}, "title": "cat notes.txt",
                              "time": {"start": a + 60, "end": a + 160}}})),
                part(1, 4, a + 70, json!({"type": "tool", "tool": "read", "callID": format!("call_{}_{}_1", &si[4..], n),
                    "state": {"status": "error", "input": {"filePath": "missing.txt"}, "error": "File not found: missing.txt",
                              "time": {"start": a + 70, "end": a + 90}}})),
                part(1, 5, a + 2_400, json!({"type": "step-finish", "reason": "tool-calls", "cost": cost(t1),
                    "tokens": {"input": t1[0], "output": t1[1], "reasoning": t1[2], "cache": {"read": t1[3], "write": t1[4]}}})),
            ],
        });
        // The answer.
        let b = at + 4_000;
        let t2 = tok(n as i64 + 1);
        self.messages.push(Message {
            id: mid(2),
            role: "assistant",
            created: b,
            completed: Some(b + 900),
            updated: b + 910,
            model: MODEL.to_owned(),
            tokens: t2,
            cost: cost(t2),
            parts: vec![
                part(2, 0, b + 10, json!({"type": "step-start", "snapshot": "5eed"})),
                part(2, 1, b + 20, json!({"type": "text", "text": format!("Answer {turn}: all good ✓."), "time": {"start": b + 20, "end": b + 30}})),
                part(2, 2, b + 800, json!({"type": "step-finish", "reason": "stop", "cost": cost(t2),
                    "tokens": {"input": t2[0], "output": t2[1], "reasoning": t2[2], "cache": {"read": t2[3], "write": t2[4]}}})),
            ],
        });
        self.updated = self.updated.max(b + 1_000);
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub projects: Vec<Project>,
    pub sessions: Vec<Session>,
}

/// Where the made-up projects live (never touched on disk).
pub fn project_dir(i: usize) -> String {
    [
        "/work/fixture/alpha",
        "/work/fixture/beta",
        "/work/fixture/gamma",
    ][i % 3]
        .to_owned()
}

impl Fixture {
    /// `sessions` sessions over two projects with `turns` turns each (3 messages a turn);
    /// the fourth session is a subagent of the third. `secret` goes into a tool output.
    pub fn generate(sessions: usize, turns: usize, secret: Option<&str>) -> Self {
        let projects: Vec<Project> = (0..2)
            .map(|i| Project {
                id: format!("{:040x}", 0xabc0 + i),
                worktree: project_dir(i),
            })
            .collect();
        let base = 1_750_000_000_000_i64;
        let sessions = (0..sessions)
            .map(|i| {
                let project = i % 2;
                let created = base + i as i64 * 3_600_000;
                let mut s = Session {
                    id: format!("ses_{i:05}fixture"),
                    project,
                    // Some sessions run in a subdirectory of the project.
                    directory: if i % 5 == 4 {
                        format!("{}/sub", project_dir(project))
                    } else {
                        project_dir(project)
                    },
                    title: format!("Fixture session {i} ({})", ["alpha", "beta"][project]),
                    parent: (i == 3).then(|| "ses_00002fixture".to_owned()),
                    created,
                    updated: created,
                    messages: Vec::new(),
                    extra_cost: 0.0,
                };
                for t in 0..turns {
                    let secret = if t == 0 { secret } else { None };
                    s.add_turn(created + 100 + t as i64 * 60_000, secret);
                }
                s
            })
            .collect();
        Self { projects, sessions }
    }

    pub fn message_count(&self) -> usize {
        self.sessions.iter().map(|s| s.messages.len()).sum()
    }

    pub fn tool_call_count(&self) -> usize {
        self.sessions
            .iter()
            .flat_map(|s| &s.messages)
            .map(|m| m.tool_calls().len())
            .sum()
    }

    /// Writes `opencode.db` (WAL mode, as OpenCode leaves it) at `path`.
    pub fn write_db(&self, path: &Path) {
        self.write_db_with(path, SCHEMA);
    }

    /// Writes `opencode.db` with the tables of `schema` (e.g. [`loose_schema`]).
    pub fn write_db_with(&self, path: &Path, schema: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(schema).unwrap();
        let tx = conn.transaction().unwrap();
        for p in &self.projects {
            tx.execute(
                "INSERT INTO project (id, worktree, vcs, time_created, time_updated, sandboxes) VALUES (?1, ?2, 'git', 1, 1, '[]')",
                params![p.id, p.worktree],
            )
            .unwrap();
        }
        for s in &self.sessions {
            insert_session(&tx, self, s);
        }
        tx.commit().unwrap();
    }

    /// Rewrites one session (row, messages, parts) in an existing `opencode.db`.
    pub fn update_db(&self, path: &Path, session: &Session) {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute("DELETE FROM part WHERE session_id = ?1", [&session.id])
            .unwrap();
        tx.execute("DELETE FROM message WHERE session_id = ?1", [&session.id])
            .unwrap();
        tx.execute("DELETE FROM session WHERE id = ?1", [&session.id])
            .unwrap();
        insert_session(&tx, self, session);
        tx.commit().unwrap();
    }

    /// Writes the older JSON tree under `storage` (sessions without totals or model).
    pub fn write_tree(&self, storage: &Path) {
        let write = |path: &Path, v: &Value| {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
        };
        for p in &self.projects {
            write(
                &storage.join(format!("project/{}.json", p.id)),
                &json!({"id": p.id, "worktree": p.worktree, "vcs": "git", "time": {"created": 1}}),
            );
        }
        for s in &self.sessions {
            let project = &self.projects[s.project].id;
            let mut info = json!({
                "id": s.id, "version": "0.15.31", "projectID": project, "directory": s.directory,
                "title": s.title, "time": {"created": s.created, "updated": s.updated},
            });
            if let Some(parent) = &s.parent {
                info["parentID"] = json!(parent);
            }
            write(
                &storage.join(format!("session/{project}/{}.json", s.id)),
                &info,
            );
            for m in &s.messages {
                let mut data = m.data(&s.directory);
                data["id"] = json!(m.id);
                data["sessionID"] = json!(s.id);
                write(
                    &storage.join(format!("message/{}/{}.json", s.id, m.id)),
                    &data,
                );
                for p in &m.parts {
                    let mut data = p.data.clone();
                    data["id"] = json!(p.id);
                    data["messageID"] = json!(m.id);
                    data["sessionID"] = json!(s.id);
                    write(&storage.join(format!("part/{}/{}.json", m.id, p.id)), &data);
                }
            }
        }
    }

    /// Checks that `sessions` (one user's sessions from the server's dump) hold exactly
    /// this history. Returns a description of the first difference.
    pub fn compare(&self, sessions: &[Value]) -> Result<(), String> {
        if sessions.len() != self.sessions.len() {
            return Err(format!(
                "{} sessions stored, {} in the source",
                sessions.len(),
                self.sessions.len()
            ));
        }
        for s in &self.sessions {
            let stored = sessions
                .iter()
                .find(|v| v["externalId"] == s.id.as_str())
                .ok_or_else(|| format!("session {} not stored", s.id))?;
            let [input, output, reasoning, read, write] = s.tokens();
            let expect = [
                ("title", json!(s.title)),
                ("projectPath", json!(s.directory)),
                (
                    "projectName",
                    json!(s.directory.rsplit('/').next().unwrap()),
                ),
                ("model", json!(s.model())),
                ("provider", json!(PROVIDER)),
                ("source", json!("opencode")),
                ("promptTokens", json!(input + read + write)),
                ("completionTokens", json!(output + reasoning)),
                ("createdAt", json!(s.created)),
                ("durationMs", json!(s.updated - s.created)),
                ("messageCount", json!(s.messages.len())),
            ];
            for (field, want) in expect {
                if stored[field] != want {
                    return Err(format!(
                        "session {} {field}: stored {}, source {want}",
                        s.id, stored[field]
                    ));
                }
            }
            let cost = stored["cost"].as_f64().unwrap_or(-1.0);
            if (cost - s.cost()).abs() > 1e-9 {
                return Err(format!(
                    "session {} cost: stored {cost}, source {}",
                    s.id,
                    s.cost()
                ));
            }
            let messages = stored["messages"].as_array().unwrap();
            if messages.len() != s.messages.len() {
                return Err(format!(
                    "session {}: {} messages stored, {} in the source",
                    s.id,
                    messages.len(),
                    s.messages.len()
                ));
            }
            for m in &s.messages {
                let sm = messages
                    .iter()
                    .find(|v| v["externalId"] == m.id.as_str())
                    .ok_or_else(|| format!("message {} not stored", m.id))?;
                let (prompt, completion) = m.token_totals();
                let num = |n: i64| if n > 0 { json!(n) } else { Value::Null };
                let expect = [
                    ("role", json!(m.role)),
                    ("textContent", m.text().map_or(Value::Null, |t| json!(t))),
                    ("createdAt", json!(m.created)),
                    ("model", json!(m.model)),
                    ("promptTokens", num(prompt)),
                    ("completionTokens", num(completion)),
                ];
                for (field, want) in expect {
                    if sm[field] != want {
                        return Err(format!(
                            "message {} {field}: stored {}, source {want}",
                            m.id, sm[field]
                        ));
                    }
                }
                let calls: Vec<(String, String, String)> = sm["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["type"] == "tool-call")
                    .map(|p| {
                        let c = &p["content"];
                        (
                            c["toolName"].as_str().unwrap_or_default().to_owned(),
                            c["callID"].as_str().unwrap_or_default().to_owned(),
                            c["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                if calls != m.tool_calls() {
                    return Err(format!(
                        "message {} tool calls: stored {calls:?}, source {:?}",
                        m.id,
                        m.tool_calls()
                    ));
                }
                let results = sm["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["type"] == "tool-result")
                    .count();
                if results != calls.len() {
                    return Err(format!(
                        "message {}: {results} tool results for {} calls",
                        m.id,
                        calls.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn insert_session(tx: &rusqlite::Transaction<'_>, fx: &Fixture, s: &Session) {
    let [input, output, reasoning, read, write] = s.tokens();
    tx.execute(
        "INSERT INTO session (id, project_id, parent_id, slug, directory, path, title, version, cost,
            tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write,
            permission, agent, model, time_created, time_updated)
         VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, '1.18.33', ?7, ?8, ?9, ?10, ?11, ?12, '[]', 'build', ?13, ?14, ?15)",
        params![
            s.id,
            fx.projects[s.project].id,
            s.parent,
            format!("slug-{}", s.id),
            s.directory,
            s.title,
            s.cost(),
            input,
            output,
            reasoning,
            read,
            write,
            json!({"id": s.model(), "providerID": PROVIDER, "variant": "default"}).to_string(),
            s.created,
            s.updated,
        ],
    )
    .unwrap();
    let mut message = tx
        .prepare_cached(
            "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .unwrap();
    let mut part = tx
        .prepare_cached(
            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .unwrap();
    for m in &s.messages {
        message
            .execute(params![
                m.id,
                s.id,
                m.created,
                m.updated,
                m.data(&s.directory).to_string()
            ])
            .unwrap();
        for p in &m.parts {
            part.execute(params![
                p.id,
                m.id,
                s.id,
                p.created,
                p.updated,
                p.data.to_string()
            ])
            .unwrap();
        }
    }
}

/// OpenCode 2.0.26's own tables (its DDL), which it adds beside 1.x's in `opencode.db`.
pub const V2_SCHEMA: &str = "
CREATE TABLE `session_v2` (
  `id` text PRIMARY KEY, `project_id` text NOT NULL, `workspace_id` text, `parent_id` text,
  `fork_session_id` text, `fork_boundary` text, `slug` text NOT NULL, `directory` text NOT NULL,
  `path` text, `title` text, `version` text NOT NULL, `share_url` text, `summary_additions` integer,
  `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `metadata` text,
  `cost` real DEFAULT 0 NOT NULL, `tokens_input` integer DEFAULT 0 NOT NULL,
  `tokens_output` integer DEFAULT 0 NOT NULL, `tokens_reasoning` integer DEFAULT 0 NOT NULL,
  `tokens_cache_read` integer DEFAULT 0 NOT NULL, `tokens_cache_write` integer DEFAULT 0 NOT NULL,
  `revert` text, `permission` text, `agent` text, `model` text, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `time_idle` integer, `time_viewed` integer, `idle_outcome` text,
  `time_compacting` integer, `time_archived` integer, `time_suspended` integer,
  `resume_attempts` integer DEFAULT 0 NOT NULL
);
CREATE TABLE `session_message` (
  `id` text PRIMARY KEY, `session_id` text NOT NULL, `type` text NOT NULL, `seq` integer NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL,
  CONSTRAINT `fk_session_message_session_id_session_v2_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session_v2`(`id`) ON DELETE CASCADE
);
CREATE UNIQUE INDEX `session_message_session_seq_idx` ON `session_message` (`session_id`, `seq`);
";

impl Message {
    /// The `session_message` `data` OpenCode 2's migration writes for this message (the
    /// user's text; an assistant step's parts as `content` items, tools with `state`).
    pub fn v2_data(&self) -> Value {
        if self.role == "user" {
            return json!({"time": {"created": self.created}, "text": self.text().unwrap_or_default(), "files": []});
        }
        let content: Vec<Value> = self
            .parts
            .iter()
            .filter_map(|p| {
                let d = &p.data;
                match d["type"].as_str()? {
                    "text" => Some(json!({"type": "text", "text": d["text"]})),
                    "reasoning" => Some(json!({"type": "reasoning", "text": d["text"]})),
                    "tool" => {
                        let s = &d["state"];
                        let mut state = json!({"status": s["status"], "input": s["input"]});
                        if s["status"] == "error" {
                            state["error"] = json!({"type": "tool.execution", "message": s["error"]});
                        } else {
                            state["content"] = json!([{"type": "text", "text": s["output"]}]);
                            state["metadata"] = s["metadata"].clone();
                        }
                        Some(json!({"type": "tool", "id": d["callID"], "name": d["tool"], "executed": false,
                            "state": state,
                            "time": {"created": s["time"]["start"], "ran": s["time"]["start"], "completed": s["time"]["end"]}}))
                    }
                    _ => None,
                }
            })
            .collect();
        let [input, output, reasoning, read, write] = self.tokens;
        let mut time = json!({"created": self.created});
        if let Some(done) = self.completed {
            time["completed"] = json!(done);
        }
        json!({
            "time": time, "agent": "build", "model": {"id": self.model, "providerID": PROVIDER},
            "content": content, "finish": if content.iter().any(|c| c["type"] == "tool") { "tool-calls" } else { "stop" },
            "cost": self.cost,
            "tokens": {"input": input, "output": output, "reasoning": reasoning, "cache": {"read": read, "write": write}},
        })
    }
}

impl Fixture {
    /// Adds OpenCode 2's tables to the `opencode.db` at `path` and copies every session
    /// into them as its 1.x migration does: the same session and message ids, one `idle`
    /// row after each turn's answer.
    pub fn write_v2_copy(&self, path: &Path) {
        let mut conn = Connection::open(path).unwrap();
        conn.execute_batch(V2_SCHEMA).unwrap();
        let tx = conn.transaction().unwrap();
        for s in &self.sessions {
            insert_v2_session(&tx, self, s);
        }
        tx.commit().unwrap();
    }

    /// Rewrites one session (row and messages) in the OpenCode 2 tables at `path`, titled
    /// `title` there.
    pub fn update_v2(&self, path: &Path, session: &Session, title: &str) {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute(
            "DELETE FROM session_message WHERE session_id = ?1",
            [&session.id],
        )
        .unwrap();
        tx.execute("DELETE FROM session_v2 WHERE id = ?1", [&session.id])
            .unwrap();
        let mut renamed = session.clone();
        renamed.title = title.to_owned();
        insert_v2_session(&tx, self, &renamed);
        tx.commit().unwrap();
    }
}

fn insert_v2_session(tx: &rusqlite::Transaction<'_>, fx: &Fixture, s: &Session) {
    let [input, output, reasoning, read, write] = s.tokens();
    tx.execute(
        "INSERT INTO session_v2 (id, project_id, parent_id, slug, directory, path, title, version, cost,
            tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write,
            time_created, time_updated, idle_outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, '2.0.26', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'succeeded')",
        params![
            s.id,
            fx.projects[s.project].id,
            s.parent,
            format!("slug-{}", s.id),
            s.directory,
            s.title,
            s.cost(),
            input,
            output,
            reasoning,
            read,
            write,
            s.created,
            s.updated,
        ],
    )
    .unwrap();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .unwrap();
    let mut seq = 0;
    for (i, m) in s.messages.iter().enumerate() {
        seq += 1;
        insert
            .execute(params![
                m.id,
                s.id,
                m.role,
                seq,
                m.created,
                m.updated,
                m.v2_data().to_string()
            ])
            .unwrap();
        // A turn ends after its answer (the third message of each turn).
        if i % 3 == 2 {
            seq += 1;
            let at = m.completed.unwrap_or(m.updated) + 1;
            insert
                .execute(params![
                    format!("{}_idle", m.id),
                    s.id,
                    "idle",
                    seq,
                    at,
                    at,
                    json!({"time": {"created": at}, "outcome": "succeeded"}).to_string()
                ])
                .unwrap();
        }
    }
}
