//! Data, users and revocations survive a restart on the same database file.

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, KEY, session};
use opencode_sync_contract_server::{ServerHandle, ServerOptions};
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
