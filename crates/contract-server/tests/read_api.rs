//! The read API (`/api/sessions`, `/api/sessions/get`, `/api/search`,
//! `/api/stats`, `/api/export`, `/api/context`) over real HTTP on loopback,
//! with data stored through the sync routes first: shapes as the real backend
//! returns them, auth, 400/404 answers (a malformed query value included),
//! search in titles, message texts and text parts, stats totals, exports in
//! JSON, markdown and jsonl, context for a prompt, the stored git branch, and
//! that every user only ever reads their own data. Also the loopback-only bind
//! rule of `ServerOptions`.

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{Client, KEY, OTHER_KEY, start};
use opencode_sync_contract_server::{
    ContractError, ContractOptions, ServerError, ServerHandle, ServerOptions, WithControl,
};
use serde_json::{Value, json};

const READ_ROUTES: [&str; 6] = [
    "/api/sessions",
    "/api/sessions/get?id=x",
    "/api/search?q=x",
    "/api/stats",
    "/api/export",
    "/api/context?q=x",
];

fn api(server: &ServerHandle) -> Client {
    Client::with_key(&server.url(), KEY)
}

fn ok(r: &common::Resp) {
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Two sessions for `KEY` (the second updated later) with messages and parts.
fn seed(server: &ServerHandle) -> Client {
    let c = api(server);
    ok(&c.post(
        "/sync/session",
        &json!({
            "externalId": "ses_alpha",
            "title": "Refactor the Outbox flusher",
            "projectPath": "/home/me/alpha",
            "projectName": "alpha",
            "model": "claude-sonnet",
            "provider": "anthropic",
            "promptTokens": 100,
            "completionTokens": 50,
            "cost": 0.25,
            "durationMs": 1200,
            "gitBranch": "feature/outbox"
        }),
    ));
    ok(&c.post(
        "/sync/message",
        &json!({
            "sessionExternalId": "ses_alpha",
            "externalId": "msg_a2",
            "role": "assistant",
            "textContent": "Done: the flusher now retries with jittered backoff.",
            "model": "claude-sonnet",
            "promptTokens": 10,
            "completionTokens": 20,
            "durationMs": 500,
            "createdAt": 1_700_000_000_200_i64,
            "parts": [
                {"type": "text", "content": "Done: the flusher now retries."},
                {"type": "tool-call", "content": {"name": "edit", "args": {"path": "a.rs"}}}
            ]
        }),
    ));
    ok(&c.post(
        "/sync/message",
        &json!({
            "sessionExternalId": "ses_alpha",
            "externalId": "msg_a1",
            "role": "user",
            "textContent": "Please make the flusher resilient",
            "createdAt": 1_700_000_000_100_i64,
            "parts": [{"type": "text", "content": {"text": "Please make the flusher resilient"}}]
        }),
    ));
    server.advance_clock(20_000);
    ok(&c.post(
        "/sync/batch",
        &json!({
            "sessions": [{
                "externalId": "ses_beta",
                "title": "Dashboard colours",
                "model": "gpt-5",
                "promptTokens": 7,
                "completionTokens": 3,
                "cost": 1.5
            }],
            "messages": [{
                "sessionExternalId": "ses_beta",
                "externalId": "msg_b1",
                "role": "user",
                "textContent": "Make the charts use a Zanzibar palette",
                "parts": [{"type": "text", "content": "Make the charts use a Zanzibar palette"}]
            }]
        }),
    ));
    c
}

#[test]
fn sessions_are_listed_newest_first_with_the_real_fields() {
    let server = start();
    let c = seed(&server);
    let r = c.get("/api/sessions");
    ok(&r);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let sessions = r.body["sessions"].as_array().unwrap();
    assert_eq!(r.body.as_object().unwrap().len(), 1);
    let ids: Vec<&str> = sessions
        .iter()
        .map(|s| s["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ses_beta", "ses_alpha"]);

    let alpha = &sessions[1];
    assert_eq!(alpha["id"].as_str().unwrap().len(), 32);
    assert_eq!(alpha["title"], "Refactor the Outbox flusher");
    assert_eq!(alpha["projectPath"], "/home/me/alpha");
    assert_eq!(alpha["projectName"], "alpha");
    assert_eq!(alpha["model"], "claude-sonnet");
    assert_eq!(alpha["provider"], "anthropic");
    assert_eq!(alpha["promptTokens"], 100);
    assert_eq!(alpha["completionTokens"], 50);
    assert_eq!(alpha["totalTokens"], 150);
    assert_eq!(alpha["cost"], 0.25);
    assert_eq!(alpha["durationMs"], 1200);
    assert_eq!(alpha["isPublic"], false);
    assert_eq!(alpha["messageCount"], 2);
    assert!(alpha["createdAt"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(alpha["updatedAt"].as_i64().unwrap() >= alpha["createdAt"].as_i64().unwrap());
    let mut keys: Vec<&str> = alpha
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "completionTokens",
            "cost",
            "createdAt",
            "durationMs",
            "externalId",
            "gitBranch",
            "id",
            "isPublic",
            "messageCount",
            "model",
            "projectName",
            "projectPath",
            "promptTokens",
            "provider",
            "title",
            "totalTokens",
            "updatedAt"
        ]
    );
    // Absent fields are omitted, as Convex omits undefined.
    let beta = &sessions[0];
    assert!(beta.get("projectPath").is_none());
    assert!(beta.get("durationMs").is_none());
    assert!(beta.get("gitBranch").is_none(), "none sent, none shown");
    assert_eq!(beta["totalTokens"], 10);
    // The branch is kept (OpenSync's backend drops it; this server adds it).
    assert_eq!(alpha["gitBranch"], "feature/outbox");

    // The same ids as the sync routes hand out.
    let dump = server.dump().unwrap();
    let stored = common::sessions_of(&dump, KEY);
    assert_eq!(stored[0]["_id"], alpha["id"]);

    // limit, with the default of 50 when absent or empty (a malformed one is
    // a 400: see `malformed_query_values_are_a_400_with_the_reason`).
    let one = c.get("/api/sessions?limit=1").body["sessions"].clone();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["externalId"], "ses_beta");
    assert_eq!(c.get("/api/sessions?limit=0").body, json!({"sessions": []}));
    assert_eq!(
        c.get("/api/sessions?limit=").body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for i in 0..55 {
        c.post("/sync/session", &json!({"externalId": format!("bulk_{i}")}));
    }
    assert_eq!(
        c.get("/api/sessions").body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    assert_eq!(
        c.get("/api/sessions?limit=100").body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        57
    );
}

#[test]
fn a_session_comes_with_its_messages_in_order_and_their_parts() {
    let server = start();
    let c = seed(&server);
    let list = c.get("/api/sessions").body;
    let alpha_id = list["sessions"][1]["id"].as_str().unwrap().to_owned();

    let by_id = c.get(&format!("/api/sessions/get?id={alpha_id}"));
    ok(&by_id);
    let by_external = c.get("/api/sessions/get?id=ses_alpha");
    ok(&by_external);
    assert_eq!(by_id.body, by_external.body);
    let body = by_id.body;
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(body["session"], list["sessions"][1]);

    let messages = body["messages"].as_array().unwrap();
    // Dashboard order: by createdAt, not by arrival.
    assert_eq!(messages[0]["externalId"], "msg_a1");
    assert_eq!(messages[1]["externalId"], "msg_a2");
    let m = &messages[1];
    assert_eq!(m["id"].as_str().unwrap().len(), 32);
    assert_eq!(m["role"], "assistant");
    assert_eq!(
        m["textContent"],
        "Done: the flusher now retries with jittered backoff."
    );
    assert_eq!(m["model"], "claude-sonnet");
    assert_eq!(m["promptTokens"], 10);
    assert_eq!(m["completionTokens"], 20);
    assert_eq!(m["durationMs"], 500);
    assert_eq!(m["createdAt"], 1_700_000_000_200_i64);
    assert_eq!(
        m["parts"],
        json!([
            {"type": "text", "content": "Done: the flusher now retries."},
            {"type": "tool-call", "content": {"name": "edit", "args": {"path": "a.rs"}}}
        ])
    );
    assert!(messages[0].get("model").is_none());
    assert_eq!(
        messages[0]["parts"],
        json!([{"type": "text", "content": {"text": "Please make the flusher resilient"}}])
    );

    // Query strings are decoded as URLSearchParams does.
    c.post("/sync/session", &json!({"externalId": "ses with spaces/&"}));
    let r = c.get("/api/sessions/get?id=ses+with%20spaces%2F%26");
    ok(&r);
    assert_eq!(r.body["session"]["externalId"], "ses with spaces/&");
    assert_eq!(r.body["messages"], json!([]));
}

#[test]
fn get_answers_400_and_404_like_the_real_route() {
    let server = start();
    let c = seed(&server);
    for path in [
        "/api/sessions/get",
        "/api/sessions/get?id=",
        "/api/sessions/get?x=1",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.body, json!({"error": "Missing session ID"}), "{path}");
    }
    for id in ["nope", "js000000000000000000000000000999", "msg_a1"] {
        let r = c.get(&format!("/api/sessions/get?id={id}"));
        assert_eq!(r.status, 404, "{id}");
        assert_eq!(r.body, json!({"error": "Session not found"}), "{id}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
}

#[test]
fn search_finds_titles_message_texts_and_text_parts() {
    let server = start();
    let c = seed(&server);

    // A word of a title, case-insensitively.
    let r = c.get("/api/search?q=OUTBOX");
    ok(&r);
    assert_eq!(r.body.as_object().unwrap().len(), 1);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let hit = &results[0];
    assert_eq!(hit["externalId"], "ses_alpha");
    assert_eq!(hit["id"].as_str().unwrap().len(), 32);
    assert_eq!(hit["title"], "Refactor the Outbox flusher");
    assert_eq!(hit["projectPath"], "/home/me/alpha");
    assert_eq!(hit["model"], "claude-sonnet");
    assert_eq!(hit["totalTokens"], 150);
    assert_eq!(hit["cost"], 0.25);
    assert_eq!(hit["messageCount"], 2);
    assert!(hit["createdAt"].as_i64().is_some());
    assert_eq!(hit["snippet"], "Refactor the Outbox flusher");

    // Only in a message's textContent.
    let r = c.get("/api/search?q=jittered");
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["externalId"], "ses_alpha");
    assert!(
        results[0]["snippet"]
            .as_str()
            .unwrap()
            .contains("jittered backoff"),
        "{:?}",
        results[0]
    );

    // In a text part (and message) of the batch-stored session; word prefixes match.
    let r = c.get("/api/search?q=zanzi");
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["externalId"], "ses_beta");
    assert!(results[0].get("projectPath").is_none());

    // Sessions matching more terms come first; then newest first.
    let r = c.get("/api/search?q=flusher+dashboard");
    let ids: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ses_beta", "ses_alpha"]);
    let r = c.get("/api/search?q=flusher%20outbox%20dashboard&limit=1");
    assert_eq!(r.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["results"][0]["externalId"], "ses_alpha");

    // No match, or only punctuation: an empty list.
    for q in ["kumquat", "%21%21"] {
        let r = c.get(&format!("/api/search?q={q}"));
        ok(&r);
        assert_eq!(r.body, json!({"results": []}), "{q}");
    }

    for path in ["/api/search", "/api/search?q=", "/api/search?limit=3"] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(
            r.body,
            json!({"error": "Missing query parameter 'q'"}),
            "{path}"
        );
    }
}

#[test]
fn stats_total_what_was_stored() {
    let server = start();
    let c = api(&server);
    let r = c.get("/api/stats");
    ok(&r);
    assert_eq!(
        r.body,
        json!({
            "sessionCount": 0,
            "messageCount": 0,
            "totalTokens": 0,
            "totalCost": 0,
            "totalDurationMs": 0,
            "modelUsage": {}
        })
    );

    seed(&server);
    ok(&c.post(
        "/sync/session",
        &json!({"externalId": "ses_gamma", "promptTokens": 1, "completionTokens": 1, "cost": 0.125}),
    ));
    let r = c.get("/api/stats");
    ok(&r);
    assert_eq!(
        r.body,
        json!({
            "sessionCount": 3,
            "messageCount": 3,
            "totalTokens": 162,
            "totalCost": 1.875,
            "totalDurationMs": 1200,
            "modelUsage": {
                "claude-sonnet": {"tokens": 150, "cost": 0.25, "sessions": 1},
                "gpt-5": {"tokens": 10, "cost": 1.5, "sessions": 1},
                "unknown": {"tokens": 2, "cost": 0.125, "sessions": 1}
            }
        })
    );
}

#[test]
fn reads_need_a_valid_key_and_answer_like_the_sync_routes() {
    let server = start();
    seed(&server);
    let url = server.url();
    let cases = [
        (None, "Missing Authorization header"),
        (Some("Basic abc"), "Missing Authorization header"),
        (
            Some("Bearer eyJhbGciOi.jwt.token"),
            "Invalid or expired token",
        ),
        (Some("Bearer osk_not_a_user"), "Invalid API key"),
    ];
    for (auth, expected) in cases {
        for path in READ_ROUTES {
            let r = Client::new(&url, auth).get(path);
            assert_eq!(r.status, 401, "{auth:?} {path}");
            assert_eq!(r.body, json!({"error": expected}), "{auth:?} {path}");
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        }
    }
    // Auth comes before parameter checks, as in the real routes.
    let r = Client::new(&url, None).get("/api/search");
    assert_eq!(r.status, 401);

    // A revoked key reads nothing.
    assert!(server.revoke_key(KEY).unwrap());
    let r = api(&server).get("/api/sessions");
    assert_eq!((r.status, r.error()), (401, "Invalid API key"));

    // Preflight and wrong methods behave like the other routes.
    let r = Client::new(&url, None).options("/api/sessions");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = Client::new(&url, None).post("/api/sessions", &json!({}));
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "No matching routes found");

    // Every read answer is in the request log.
    let logged: Vec<(String, u16)> = server
        .requests()
        .into_iter()
        .filter(|q| q.path.starts_with("/api/"))
        .map(|q| (q.path, q.status))
        .collect();
    assert!(
        logged.contains(&("/api/stats".to_owned(), 401)),
        "{logged:?}"
    );
}

#[test]
fn every_user_reads_only_their_own_data() {
    let server = start();
    server.add_key(OTHER_KEY).unwrap();
    let a = seed(&server);
    let b = Client::with_key(&server.url(), OTHER_KEY);
    ok(&b.post(
        "/sync/session",
        &json!({"externalId": "ses_alpha", "title": "B's own alpha", "cost": 9}),
    ));
    ok(&b.post(
        "/sync/message",
        &json!({"sessionExternalId": "ses_alpha", "externalId": "msg_other",
                "role": "user", "textContent": "private pineapple"}),
    ));

    let listed = b.get("/api/sessions").body;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(listed["sessions"][0]["title"], "B's own alpha");

    // Same externalId: each user gets their own session.
    let mine = b.get("/api/sessions/get?id=ses_alpha").body;
    assert_eq!(mine["session"]["title"], "B's own alpha");
    assert_eq!(mine["messages"].as_array().unwrap().len(), 1);
    let theirs = a.get("/api/sessions/get?id=ses_alpha").body;
    assert_eq!(theirs["session"]["title"], "Refactor the Outbox flusher");

    // Another user's session id is "not found", not a leak.
    let a_beta_id = a.get("/api/sessions/get?id=ses_beta").body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = b.get(&format!("/api/sessions/get?id={a_beta_id}"));
    assert_eq!((r.status, r.error()), (404, "Session not found"));

    assert_eq!(b.get("/api/search?q=zanzibar").body, json!({"results": []}));
    assert_eq!(
        a.get("/api/search?q=pineapple").body,
        json!({"results": []})
    );
    assert_eq!(
        b.get("/api/search?q=pineapple").body["results"][0]["title"],
        "B's own alpha"
    );

    let stats: Value = b.get("/api/stats").body;
    assert_eq!(stats["sessionCount"], 1);
    assert_eq!(stats["messageCount"], 1);
    assert_eq!(stats["totalCost"], 9);
    assert_eq!(a.get("/api/stats").body["sessionCount"], 2);
}

#[test]
fn binding_beyond_loopback_needs_allow_remote() {
    let anywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let opts = ServerOptions {
        bind: anywhere,
        ..ServerOptions::default().with_api_key(KEY)
    };
    let err = ServerHandle::start(opts).unwrap_err();
    assert!(
        matches!(err, ContractError::Server(ServerError::RemoteBindRefused { addr }) if addr == anywhere),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("0.0.0.0:0"), "{text}");
    assert!(text.contains("allow_remote"), "{text}");

    // The control listener (no auth at all) follows the same rule.
    let opts = ContractOptions {
        control_bind: "[::]:0".parse().unwrap(),
        ..ServerOptions::default().with_control()
    };
    assert!(matches!(
        opts.check_bind(),
        Err(ContractError::Server(ServerError::RemoteBindRefused { .. }))
    ));
    assert!(ServerOptions::default().with_control().check_bind().is_ok());

    let allowed = ServerOptions::default().with_remote_bind(anywhere);
    assert!(allowed.allow_remote);
    assert!(allowed.check_bind().is_ok());
    // Loopback in every spelling is fine without it.
    for addr in [
        "127.0.0.1:0",
        "127.1.2.3:0",
        "[::1]:0",
        "[::ffff:127.0.0.1]:0",
    ] {
        let opts = ServerOptions {
            bind: addr.parse().unwrap(),
            ..ServerOptions::default()
        };
        assert!(opts.check_bind().is_ok(), "{addr}");
    }
}

/// A GET with exactly these headers (no others, not even `Host` unless given),
/// over a raw connection; returns the status and body.
fn raw_get(server: &ServerHandle, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn open_reads_answer_this_machine_without_a_key_and_nobody_else() {
    let server = ServerHandle::start(ServerOptions::default().with_open_reads(KEY)).unwrap();
    server.add_key(OTHER_KEY).unwrap();
    seed(&server);
    let host = server.url().trim_start_matches("http://").to_owned();
    let port = host.rsplit_once(':').unwrap().1.to_owned();
    let localhost = format!("localhost:{port}");

    // Keyless reads from this machine see the open-reads key's data, on every route.
    let listed = Client::new(&server.url(), None).get("/api/sessions");
    ok(&listed);
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 2);
    for path in READ_ROUTES {
        let (status, _) = raw_get(&server, path, &[("Host", &host)]);
        assert_ne!(status, 401, "{path}");
    }
    let same_origin = format!("http://{localhost}");
    for headers in [
        vec![
            ("Host", localhost.as_str()),
            ("Origin", same_origin.as_str()),
        ],
        vec![("Host", host.as_str()), ("Sec-Fetch-Site", "same-origin")],
    ] {
        let (status, body) = raw_get(&server, "/api/stats", &headers);
        assert_eq!(
            (status, &body["sessionCount"]),
            (200, &json!(2)),
            "{headers:?}"
        );
    }

    // Other web pages, DNS rebinding and requests without a Host get the usual 401.
    for headers in [
        vec![],
        vec![("Host", "attacker.example")],
        vec![
            ("Host", host.as_str()),
            ("Origin", "http://attacker.example"),
        ],
        vec![("Host", host.as_str()), ("Origin", "null")],
        vec![("Host", host.as_str()), ("Sec-Fetch-Site", "cross-site")],
    ] {
        let (status, body) = raw_get(&server, "/api/sessions", &headers);
        assert_eq!(status, 401, "{headers:?}");
        assert_eq!(body, json!({"error": "Missing Authorization header"}));
    }

    // A key given is checked as always, and reads as its own user.
    let r = Client::with_key(&server.url(), "osk_not_a_user").get("/api/sessions");
    assert_eq!((r.status, r.error()), (401, "Invalid API key"));
    let other = Client::with_key(&server.url(), OTHER_KEY).get("/api/sessions");
    assert_eq!(other.body, json!({"sessions": []}));

    // Sync routes always need the key.
    let r = Client::new(&server.url(), None).get("/sync/sessions/list");
    assert_eq!(r.status, 401);
    let r = Client::new(&server.url(), None).post(
        "/sync/session",
        &json!({"externalId": "ses_sneaky", "title": "no key"}),
    );
    assert_eq!(r.status, 401);

    // Never beyond loopback, even with allow_remote.
    let anywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let opts = ServerOptions::default()
        .with_remote_bind(anywhere)
        .with_open_reads(KEY);
    let err = opts.check_bind().unwrap_err();
    assert!(
        matches!(err, ServerError::OpenReadsBeyondLoopback { addr } if addr == anywhere),
        "{err:?}"
    );
    // Nor with a key OpenSync would not issue.
    let err = ServerHandle::start(ServerOptions::default().with_open_reads("nope")).unwrap_err();
    assert!(
        matches!(err, ContractError::Server(ServerError::InvalidApiKey)),
        "{err:?}"
    );
}

#[test]
fn malformed_query_values_are_a_400_with_the_reason() {
    let server = start();
    let c = seed(&server);
    for (path, names) in [
        ("/api/sessions?limit=abc", "\"abc\""),
        ("/api/sessions?limit=12abc", "\"12abc\""),
        ("/api/sessions?limit=-3", "\"-3\""),
        ("/api/sessions?limit=1.5", "\"1.5\""),
        ("/api/search?q=flusher&limit=x", "\"x\""),
        ("/api/search?q=flusher&type=semantic", "embeddings"),
        ("/api/search?q=flusher&type=fuzzy", "\"fuzzy\""),
        ("/api/export?format=pdf", "\"pdf\""),
        ("/api/export?limit=%2B4", "\"+4\""),
        ("/api/export?id=ses_alpha&format=html", "\"html\""),
        ("/api/context?q=flusher&limit=five", "\"five\""),
        ("/api/context?q=flusher&format=xml", "\"xml\""),
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert!(r.error().contains(names), "{path}: {}", r.error());
        assert_eq!(r.body.as_object().unwrap().len(), 1, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    // Well-formed values still answer.
    for path in [
        "/api/sessions?limit=%201%20",
        "/api/search?q=flusher&type=fulltext&limit=",
        "/api/export?format=json&limit=1",
        "/api/context?q=flusher&format=text&limit=2",
    ] {
        ok(&c.get(path));
    }
}

#[test]
fn export_answers_one_session_in_each_format_like_export_session() {
    let server = start();
    let c = seed(&server);
    let alpha_id = c.get("/api/sessions/get?id=ses_alpha").body["session"]["id"].clone();

    // JSON (the default): OpenSync's OpenAI messages shape, text parts joined,
    // `textContent` when a message has no text part.
    let r = c.get("/api/export?id=ses_alpha");
    ok(&r);
    assert_eq!(
        r.body,
        json!({
            "session": {
                "id": alpha_id,
                "title": "Refactor the Outbox flusher",
                "model": "claude-sonnet",
                "gitBranch": "feature/outbox"
            },
            "messages": [
                {"role": "user", "content": "Please make the flusher resilient"},
                {"role": "assistant", "content": "Done: the flusher now retries."}
            ]
        })
    );
    // By document id, and as `sessionId`, the same.
    let by_doc_id = c.get(&format!("/api/export?id={}", alpha_id.as_str().unwrap()));
    assert_eq!(by_doc_id.body, r.body);
    assert_eq!(c.get("/api/export?sessionId=ses_alpha").body, r.body);

    // Markdown: a download, with the header lines and every message.
    let md = c.get("/api/export?id=ses_alpha&format=markdown");
    ok(&md);
    assert_eq!(
        md.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(
        md.header("content-disposition"),
        Some("attachment; filename=\"Refactor-the-Outbox-flusher.md\"")
    );
    let text = md.body.as_str().unwrap();
    assert!(
        text.starts_with(
            "# Refactor the Outbox flusher\n\n- **Project:** /home/me/alpha\n\
             - **Model:** claude-sonnet\n- **Branch:** feature/outbox\n\
             - **Tokens:** 150\n- **Cost:** $0.2500\n\n---\n\n"
        ),
        "{text}"
    );
    let user = text
        .find("## User\n\nPlease make the flusher resilient\n\n")
        .unwrap();
    let assistant = text
        .find("## Assistant\n\nDone: the flusher now retries.\n\n")
        .unwrap();
    assert!(user < assistant, "{text}");

    // jsonl: `{content, filename}` as OpenSync answers it.
    let jsonl = c.get("/api/export?id=ses_alpha&format=jsonl");
    ok(&jsonl);
    assert_eq!(jsonl.body["filename"], "Refactor-the-Outbox-flusher.jsonl");
    let lines: Vec<Value> = jsonl.body["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, r.body["messages"].as_array().unwrap().clone());

    // Unknown, empty, or another user's session.
    let r = c.get("/api/export?id=ses_nope");
    assert_eq!((r.status, r.error()), (404, "Session not found"));
    let r = c.get("/api/export?id=");
    assert_eq!((r.status, r.error()), (400, "Missing session ID"));
    server.add_key(OTHER_KEY).unwrap();
    let other = Client::with_key(&server.url(), OTHER_KEY);
    assert_eq!(other.get("/api/export?id=ses_alpha").status, 404);
    assert_eq!(other.get("/api/export").body, json!({"sessions": []}));
}

#[test]
fn export_without_an_id_answers_every_session() {
    let server = start();
    let c = seed(&server);
    let all = c.get("/api/export");
    ok(&all);
    let sessions = all.body["sessions"].as_array().unwrap();
    let titles: Vec<&str> = sessions
        .iter()
        .map(|s| s["session"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Dashboard colours", "Refactor the Outbox flusher"]);
    assert_eq!(
        sessions[0]["messages"],
        json!([{"role": "user", "content": "Make the charts use a Zanzibar palette"}])
    );
    assert_eq!(
        c.get("/api/export?limit=1").body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let md = c.get("/api/export?format=markdown");
    ok(&md);
    assert_eq!(
        md.header("content-disposition"),
        Some("attachment; filename=\"opencode-sessions.md\"")
    );
    let text = md.body.as_str().unwrap();
    for needle in [
        "# Dashboard colours\n",
        "Make the charts use a Zanzibar palette",
        "# Refactor the Outbox flusher\n",
        "Done: the flusher now retries.",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }

    let jsonl = c.get("/api/export?format=jsonl");
    let lines: Vec<Value> = jsonl.body["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l["sessionId"].as_str().unwrap().len() == 32)
    );
}

#[test]
fn context_finds_sessions_by_text_and_answers_like_get_context() {
    let server = start();
    let c = seed(&server);
    let alpha_id = c.get("/api/sessions/get?id=ses_alpha").body["session"]["id"].clone();

    // Text (the default): the matching session with its messages, for a prompt.
    let r = c.get("/api/context?q=resilient%20flusher");
    ok(&r);
    assert_eq!(r.body["sessionCount"], 1);
    assert_eq!(r.body.as_object().unwrap().len(), 2);
    assert_eq!(
        r.body["text"],
        "Relevant coding sessions for: \"resilient flusher\"\n\n\
         --- Session: Refactor the Outbox flusher ---\n\
         Project: /home/me/alpha\nModel: claude-sonnet\n\n\
         [USER]\nPlease make the flusher resilient\n\n\
         [ASSISTANT]\nDone: the flusher now retries.\n\n\n"
    );

    // Messages, each with its session.
    let r = c.get("/api/context?q=zanzibar%20OR%20flusher&format=messages");
    ok(&r);
    assert_eq!(r.body["sessionCount"], 2);
    let messages = r.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert!(messages.contains(&json!({
        "role": "user",
        "content": "Please make the flusher resilient",
        "metadata": {"sessionId": alpha_id, "sessionTitle": "Refactor the Outbox flusher"}
    })));

    // Bounded by limit; nothing found is an empty answer; q is required.
    assert_eq!(
        c.get("/api/context?q=zanzibar%20flusher&limit=1").body["sessionCount"],
        1
    );
    assert_eq!(
        c.get("/api/context?q=nothinglikethis").body,
        json!({"text": "Relevant coding sessions for: \"nothinglikethis\"\n\n", "sessionCount": 0})
    );
    for path in ["/api/context", "/api/context?q="] {
        let r = c.get(path);
        assert_eq!(
            (r.status, r.error()),
            (400, "Missing query parameter 'q'"),
            "{path}"
        );
    }
}

#[test]
fn context_keeps_only_each_sessions_last_ten_messages() {
    let server = start();
    let c = api(&server);
    ok(&c.post(
        "/sync/session",
        &json!({"externalId": "long", "title": "Long talk"}),
    ));
    for i in 0..14 {
        ok(&c.post(
            "/sync/message",
            &json!({"sessionExternalId": "long", "externalId": format!("m{i:02}"),
                    "role": "user", "textContent": format!("turn {i:02} about tortoises"),
                    "createdAt": 1_700_000_000_000_i64 + i}),
        ));
    }
    let r = c.get("/api/context?q=tortoises&format=messages");
    let contents: Vec<&str> = r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (4..14)
        .map(|i| format!("turn {i:02} about tortoises"))
        .collect();
    assert_eq!(contents, expected);
}
