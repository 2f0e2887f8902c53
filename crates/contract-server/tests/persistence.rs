//! Data, users and revocations survive a restart on the same database file,
//! and a database written before a schema migration opens with its data and
//! gains the new columns.

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, KEY, session};
use opencode_sync_contract_server::{ServerHandle, ServerOptions};
use rusqlite::Connection;
use serde_json::json;

#[test]
fn data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    {
        let server =
            ServerHandle::start(ServerOptions::default().with_db(&db).with_api_key(KEY)).unwrap();
        server.add_key("osk_revoked").unwrap();
        server.revoke_key("osk_revoked").unwrap();
        let c = Client::with_key(&server.url(), KEY);
        c.post(
            "/sync/session",
            &json!({"externalId": "s", "title": "Kept", "promptTokens": 3}),
        );
        c.post(
            "/sync/message",
            &json!({"sessionExternalId": "s", "externalId": "m", "role": "user",
                    "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]}),
        );
    }
    // No key on the command line this time: the user is in the database.
    let server = ServerHandle::start(ServerOptions::default().with_db(&db)).unwrap();
    let c = Client::with_key(&server.url(), KEY);
    assert_eq!(
        c.get("/sync/sessions/list").body["sessionIds"],
        json!(["s"])
    );
    let s = session(&server, "s");
    assert_eq!(s["title"], "Kept");
    assert_eq!(s["totalTokens"], 3);
    assert_eq!(s["messageCount"], 1);
    assert_eq!(s["messages"][0]["parts"][1]["content"], "b");
    let r = Client::with_key(&server.url(), "osk_revoked").get("/sync/sessions/list");
    assert_eq!(r.error(), "Invalid API key");
}

#[test]
fn unusable_database_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = ServerHandle::start(
        ServerOptions::default().with_db(dir.path().join("missing-dir").join("x.db")),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot open database"), "{err}");
}

/// The schema as the first released server wrote it (before `git_branch`).
const SCHEMA_V0: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, api_key TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
    external_id TEXT NOT NULL, title TEXT, project_path TEXT, project_name TEXT, model TEXT,
    provider TEXT, source TEXT, prompt_tokens REAL NOT NULL, completion_tokens REAL NOT NULL,
    total_tokens REAL NOT NULL, cost REAL NOT NULL, duration_ms REAL, searchable_text TEXT,
    message_count INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX sessions_by_user_external ON sessions(user_id, external_id);
CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    external_id TEXT NOT NULL, role TEXT NOT NULL, text_content TEXT, model TEXT,
    prompt_tokens REAL, completion_tokens REAL, duration_ms REAL, created_at REAL NOT NULL);
CREATE TABLE parts (id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL REFERENCES messages(id),
    ord INTEGER NOT NULL, type TEXT NOT NULL, content TEXT NOT NULL);
";

#[test]
fn a_database_from_before_the_branch_column_keeps_its_data_and_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(SCHEMA_V0).unwrap();
        conn.execute(
            "INSERT INTO users (api_key, active, created_at) VALUES (?1, 1, 1)",
            [KEY],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sessions (user_id, external_id, title, prompt_tokens, completion_tokens, \
             total_tokens, cost, message_count, created_at, updated_at) \
             VALUES (1, 'old', 'From before', 1, 2, 3, 0.5, 0, 1000, 1000)",
            [],
        )
        .unwrap();
    }
    {
        let server = ServerHandle::start(ServerOptions::default().with_db(&db)).unwrap();
        let c = Client::with_key(&server.url(), KEY);
        let listed = c.get("/api/sessions");
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        assert_eq!(listed.body["sessions"][0]["title"], "From before");
        assert!(listed.body["sessions"][0].get("gitBranch").is_none());
        let r = c.post(
            "/sync/session",
            &json!({"externalId": "old", "title": "Now on a branch", "gitBranch": "main"}),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // Opened again (the migration is not applied twice), the branch is there.
    let server = ServerHandle::start(ServerOptions::default().with_db(&db)).unwrap();
    let s = session(&server, "old");
    assert_eq!(
        (&s["title"], &s["gitBranch"]),
        (&json!("Now on a branch"), &json!("main"))
    );
    assert_eq!(s["totalTokens"], 3);
    drop(server);
    let conn = Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}
