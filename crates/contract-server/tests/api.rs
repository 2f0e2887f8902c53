//! The sync API over real HTTP on loopback: auth, every route, validators,
//! limits, upsert rules and both dedup windows (crossed by moving the server
//! clock, not by sleeping).

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, KEY, OTHER_KEY, session, sessions_of, start};
use serde_json::{Value, json};

fn api(server: &opencode_sync_contract_server::ServerHandle) -> Client {
    Client::with_key(&server.url(), KEY)
}

#[test]
fn health_needs_no_auth() {
    let server = start();
    let r = Client::new(&server.url(), None).get("/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert!(r.body["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn auth_answers_like_the_real_routes() {
    let server = start();
    let url = server.url();
    let body = json!({"externalId": "s1"});
    let cases = [
        (None, "Missing Authorization header"),
        (Some("Basic abc"), "Missing Authorization header"),
        (Some("bearer osk_x"), "Missing Authorization header"),
        (
            Some("Bearer eyJhbGciOi.jwt.token"),
            "Invalid or expired token",
        ),
        (Some("Bearer osk_not_a_user"), "Invalid API key"),
    ];
    for (auth, expected) in cases {
        for path in ["/sync/session", "/sync/message", "/sync/batch"] {
            let r = Client::new(&url, auth).post(path, &body);
            assert_eq!(r.status, 401, "{auth:?} {path}");
            assert_eq!(r.body, json!({"error": expected}), "{auth:?} {path}");
        }
    }
    // The list route only knows API keys.
    let r = Client::new(&url, Some("Bearer jwt")).get("/sync/sessions/list");
    assert_eq!((r.status, r.error()), (401, "Invalid API key format"));
    let r = Client::new(&url, None).get("/sync/sessions/list");
    assert_eq!((r.status, r.error()), (401, "Invalid API key format"));
    let r = Client::new(&url, Some("Bearer osk_nobody")).get("/sync/sessions/list");
    assert_eq!((r.status, r.error()), (401, "Invalid API key"));
    // Nothing was stored by any of them.
    assert!(sessions_of(&server.dump().unwrap(), KEY).is_empty());
}

#[test]
fn session_route_copies_known_fields_and_ignores_others() {
    let server = start();
    let r = api(&server).post(
        "/sync/session",
        &json!({
            "externalId": "ses_1",
            "title": "Fix the parser",
            "projectPath": "/home/u/p",
            "projectName": "p",
            "model": "gpt-x",
            "provider": "openai",
            "source": "opencode",
            "promptTokens": 100,
            "completionTokens": 20,
            "cost": 0.25,
            "durationMs": 1234,
            "createdAt": 1_700_000_000_000_i64,
            "gitBranch": "main",
            "somethingElse": {"nested": null}
        }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["sessionId"].as_str().unwrap().len(), 32);
    let s = session(&server, "ses_1");
    assert_eq!(s["title"], "Fix the parser");
    assert_eq!(s["projectPath"], "/home/u/p");
    assert_eq!(s["projectName"], "p");
    assert_eq!(s["model"], "gpt-x");
    assert_eq!(s["provider"], "openai");
    assert_eq!(s["source"], "opencode");
    assert_eq!(s["promptTokens"], 100);
    assert_eq!(s["completionTokens"], 20);
    assert_eq!(s["totalTokens"], 120);
    assert_eq!(s["cost"], 0.25);
    assert_eq!(s["durationMs"], 1234);
    assert_eq!(s["createdAt"], 1_700_000_000_000_i64);
    assert_eq!(s["messageCount"], 0);
    // Not an OpenSync field, but this server keeps it (OpenSync ignores it).
    assert_eq!(s["gitBranch"], "main");
    assert!(s.get("somethingElse").is_none());

    let list = api(&server).get("/sync/sessions/list");
    assert_eq!(list.status, 200);
    assert_eq!(list.body, json!({"sessionIds": ["ses_1"]}));
}

#[test]
fn session_id_alias_and_missing_id() {
    let server = start();
    let c = api(&server);
    let r = c.post(
        "/sync/session",
        &json!({"sessionId": "claude_1", "title": "t"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(session(&server, "claude_1")["title"], "t");
    for body in [json!({"title": "x"}), json!({"externalId": ""}), json!([])] {
        let r = c.post("/sync/session", &body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body, json!({"error": "Missing externalId or sessionId"}));
    }
}

#[test]
fn null_or_wrong_type_is_an_argument_validation_error() {
    let server = start();
    let c = api(&server);
    let bad_sessions = [
        json!({"externalId": "s", "title": null}),
        json!({"externalId": "s", "promptTokens": "12"}),
        json!({"externalId": "s", "cost": null}),
        json!({"externalId": 42}),
        json!({"externalId": "s", "createdAt": "2024-01-01"}),
    ];
    for body in bad_sessions {
        let r = c.post("/sync/session", &body);
        assert_eq!(r.status, 500, "{body}");
        assert!(
            r.error().contains("ArgumentValidationError"),
            "{body}: {}",
            r.error()
        );
    }
    let base = json!({"sessionExternalId": "s", "externalId": "m", "role": "user"});
    let bad_messages = [
        ("textContent", json!(null)),
        ("model", json!(null)),
        ("promptTokens", json!("1")),
        ("role", json!("bot")),
        ("parts", json!(null)),
        ("parts", json!({"type": "text"})),
        ("createdAt", json!(null)),
        ("externalId", json!(null)),
    ];
    for (field, value) in bad_messages {
        let mut body = base.clone();
        body[field] = value;
        let r = c.post("/sync/message", &body);
        assert_eq!(r.status, 500, "{body}");
        assert!(
            r.error().contains("ArgumentValidationError"),
            "{body}: {}",
            r.error()
        );
    }
    let r = c.post("/sync/message", &json!({"externalId": "m", "role": "user"}));
    assert_eq!(r.status, 500);
    assert!(r.error().contains("sessionExternalId"), "{}", r.error());
    assert!(sessions_of(&server.dump().unwrap(), KEY).is_empty());
    // Every one of them is logged as rejected.
    let rejected = server.requests().iter().filter(|r| r.rejected).count();
    assert_eq!(rejected, 5 + 8 + 1);
}

#[test]
fn parts_must_be_exactly_type_and_content() {
    let server = start();
    let c = api(&server);
    let message = |parts: Value| json!({"sessionExternalId": "s", "externalId": "m", "role": "assistant", "parts": parts});
    for parts in [
        json!([{"type": "text", "content": "hi", "id": "prt_1"}]),
        json!([{"type": "text", "text": "hi"}]),
        json!([{"type": "text"}]),
        json!([{"content": "hi"}]),
        json!([{"type": 3, "content": "hi"}]),
        json!(["text"]),
    ] {
        let r = c.post("/sync/message", &message(parts.clone()));
        assert_eq!(r.status, 500, "{parts}");
        assert!(
            r.error().contains("ArgumentValidationError"),
            "{parts}: {}",
            r.error()
        );
    }
    // content is any JSON, null included.
    let ok = message(json!([
        {"type": "text", "content": "hi"},
        {"type": "tool-call", "content": {"name": "bash", "args": {"cmd": "ls"}}},
        {"type": "tool-result", "content": null}
    ]));
    let r = c.post("/sync/message", &ok);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = session(&server, "s");
    let parts = &s["messages"][0]["parts"];
    assert_eq!(parts[0]["content"], "hi");
    assert_eq!(parts[1]["content"]["args"]["cmd"], "ls");
    assert_eq!(parts[2]["content"], Value::Null);
    assert_eq!(
        parts
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["order"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn message_route_stores_fields_and_counts_messages() {
    let server = start();
    let c = api(&server);
    c.post("/sync/session", &json!({"externalId": "s", "title": "T"}));
    let r = c.post(
        "/sync/message",
        &json!({
            "sessionExternalId": "s",
            "externalId": "msg_1",
            "role": "user",
            "textContent": "hello",
            "model": "m1",
            "promptTokens": 5,
            "completionTokens": 7,
            "durationMs": 300,
            "source": "opencode",
            "createdAt": 1_700_000_000_123_i64,
            "parts": [{"type": "text", "content": "hello"}],
            "ignored": true
        }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["messageId"].as_str().unwrap().len(), 32);
    c.post(
        "/sync/message",
        &json!({"sessionExternalId": "s", "externalId": "msg_2", "role": "assistant",
                "promptTokens": 1000, "completionTokens": 2000}),
    );
    let s = session(&server, "s");
    assert_eq!(s["messageCount"], 2);
    // Session tokens are never summed from messages.
    assert_eq!(s["totalTokens"], 0);
    let m = &s["messages"][0];
    assert_eq!(m["externalId"], "msg_1");
    assert_eq!(m["role"], "user");
    assert_eq!(m["textContent"], "hello");
    assert_eq!(m["model"], "m1");
    assert_eq!(m["promptTokens"], 5);
    assert_eq!(m["completionTokens"], 7);
    assert_eq!(m["durationMs"], 300);
    assert_eq!(m["createdAt"], 1_700_000_000_123_i64);
    assert!(m.get("ignored").is_none());
    // Without createdAt the arrival time is stored.
    let arrival = s["messages"][1]["createdAt"].as_i64().unwrap();
    assert!((arrival - server.controller().now_ms()).abs() < 60_000);
}

#[test]
fn message_dedup_window_drops_updates_of_young_messages() {
    let server = start();
    let c = api(&server);
    let first = json!({"sessionExternalId": "s", "externalId": "m", "role": "assistant",
        "textContent": "partial", "parts": [{"type": "text", "content": "partial"}]});
    assert_eq!(c.post("/sync/message", &first).status, 200);
    let complete = json!({"sessionExternalId": "s", "externalId": "m", "role": "assistant",
        "textContent": "complete answer",
        "parts": [{"type": "text", "content": "complete"}, {"type": "text", "content": "answer"}]});
    // Within 5 s of the stored createdAt: 200, and dropped.
    let r = c.post("/sync/message", &complete);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ok"], true);
    let m = session(&server, "s")["messages"][0].clone();
    assert_eq!(m["textContent"], "partial");
    assert_eq!(m["parts"].as_array().unwrap().len(), 1);
    // Past the window: applied, parts replaced in order, count unchanged.
    server.advance_clock(5_001);
    assert_eq!(c.post("/sync/message", &complete).status, 200);
    let s = session(&server, "s");
    assert_eq!(s["messageCount"], 1);
    let m = &s["messages"][0];
    assert_eq!(m["textContent"], "complete answer");
    let parts: Vec<&str> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["complete", "answer"]);
}

#[test]
fn message_with_old_created_at_is_updated_at_once() {
    let server = start();
    let c = api(&server);
    let old = server.controller().now_ms() - 10_000;
    let msg = |text: &str, parts: Value| {
        json!({"sessionExternalId": "s", "externalId": "m", "role": "user", "createdAt": old,
               "textContent": text, "parts": parts})
    };
    c.post(
        "/sync/message",
        &msg("one", json!([{"type": "text", "content": "one"}])),
    );
    c.post(
        "/sync/message",
        &msg(
            "two",
            json!([{"type": "text", "content": "two"}, {"type": "file", "content": {"path": "x"}}]),
        ),
    );
    let s = session(&server, "s");
    let m = &s["messages"][0];
    assert_eq!(m["textContent"], "two");
    assert_eq!(m["createdAt"], old);
    assert_eq!(m["parts"].as_array().unwrap().len(), 2);
    assert_eq!(m["parts"][0]["content"], "two");
    assert_eq!(s["messageCount"], 1);
    // A re-send without parts leaves none.
    c.post(
        "/sync/message",
        &json!({"sessionExternalId": "s", "externalId": "m", "role": "user"}),
    );
    let m = session(&server, "s")["messages"][0].clone();
    assert_eq!(m["parts"], json!([]));
    assert_eq!(m["textContent"], "two");
}

#[test]
fn session_dedup_window_loses_cost_only_changes() {
    let server = start();
    let c = api(&server);
    let base = json!({"externalId": "s", "title": "T", "model": "m", "projectPath": "/p"});
    c.post("/sync/session", &base);
    let mut costly = base.clone();
    costly["cost"] = json!(1.5);
    costly["provider"] = json!("p2");
    c.post("/sync/session", &costly);
    let s = session(&server, "s");
    assert_eq!(s["cost"], 0);
    assert!(s.get("provider").is_none());
    // A title change inside the window is applied.
    let mut retitled = costly.clone();
    retitled["title"] = json!("T2");
    c.post("/sync/session", &retitled);
    let s = session(&server, "s");
    assert_eq!(
        (s["title"].as_str(), s["cost"].as_f64()),
        (Some("T2"), Some(1.5))
    );
    // Same values again after the window: applied (updatedAt moves).
    let mut later = retitled.clone();
    later["cost"] = json!(2.5);
    c.post("/sync/session", &later);
    assert_eq!(session(&server, "s")["cost"], 1.5);
    server.advance_clock(10_001);
    c.post("/sync/session", &later);
    let s = session(&server, "s");
    assert_eq!(s["cost"], 2.5);
    assert!(s["updatedAt"].as_i64().unwrap() > s["createdAt"].as_i64().unwrap() + 10_000);
}

#[test]
fn tokens_zero_never_overwrite_and_created_at_only_on_insert() {
    let server = start();
    let c = api(&server);
    c.post(
        "/sync/session",
        &json!({"externalId": "s", "promptTokens": 100, "completionTokens": 50, "createdAt": 1_000}),
    );
    c.post(
        "/sync/session",
        &json!({"externalId": "s", "promptTokens": 0, "completionTokens": 80, "createdAt": 2_000}),
    );
    let s = session(&server, "s");
    assert_eq!(s["promptTokens"], 100);
    assert_eq!(s["completionTokens"], 80);
    assert_eq!(s["totalTokens"], 180);
    assert_eq!(s["createdAt"], 1_000);
    server.advance_clock(10_001);
    c.post(
        "/sync/session",
        &json!({"externalId": "s", "promptTokens": 0, "completionTokens": 0}),
    );
    let s = session(&server, "s");
    assert_eq!(
        (s["promptTokens"].as_i64(), s["totalTokens"].as_i64()),
        (Some(100), Some(180))
    );
}

#[test]
fn message_for_unknown_session_creates_a_bare_one() {
    let server = start();
    let c = api(&server);
    let r = c.post(
        "/sync/message",
        &json!({"sessionExternalId": "late", "externalId": "m1", "role": "user", "textContent": "hi"}),
    );
    assert_eq!(r.status, 200);
    let s = session(&server, "late");
    assert!(s.get("title").is_none());
    assert_eq!(s["totalTokens"], 0);
    assert_eq!(s["source"], "opencode");
    assert_eq!(s["messageCount"], 1);
    // A later session sync fills it in.
    server.advance_clock(10_001);
    c.post(
        "/sync/session",
        &json!({"externalId": "late", "title": "Later", "promptTokens": 9}),
    );
    let s = session(&server, "late");
    assert_eq!(s["title"], "Later");
    assert_eq!(s["totalTokens"], 9);
    assert_eq!(s["messageCount"], 1);
}

#[test]
fn batch_reports_failures_inside_a_200() {
    let server = start();
    let c = api(&server);
    let r = c.post(
        "/sync/batch",
        &json!({
            "sessions": [{"externalId": "b1", "title": "B"}],
            "messages": [{"sessionExternalId": "b1", "externalId": "bm1", "role": "user",
                          "parts": [{"type": "text", "content": "x"}]}]
        }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"ok": true, "sessions": 1, "messages": 1, "errors": []})
    );

    // createdAt fails the sessions half; the messages half still runs.
    let r = c.post(
        "/sync/batch",
        &json!({
            "sessions": [{"externalId": "b2", "createdAt": 5}],
            "messages": [{"sessionExternalId": "b2", "externalId": "bm2", "role": "user"}]
        }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["sessions"].as_i64(), r.body["messages"].as_i64()),
        (Some(0), Some(1))
    );
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    let e = errors[0].as_str().unwrap();
    assert!(e.starts_with("Sessions batch error:"), "{e}");
    assert!(
        e.contains("ArgumentValidationError") && e.contains("createdAt"),
        "{e}"
    );

    // An unknown field fails the messages half, whole.
    let r = c.post(
        "/sync/batch",
        &json!({
            "sessions": [{"externalId": "b3"}],
            "messages": [
                {"sessionExternalId": "b3", "externalId": "ok", "role": "user"},
                {"sessionExternalId": "b3", "externalId": "bad", "role": "user", "gitBranch": "main"}
            ]
        }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["sessions"].as_i64(), r.body["messages"].as_i64()),
        (Some(1), Some(0))
    );
    let e = r.body["errors"][0].as_str().unwrap();
    assert!(
        e.starts_with("Messages batch error:") && e.contains("gitBranch"),
        "{e}"
    );
    let dump = server.dump().unwrap();
    let ids: Vec<String> = sessions_of(&dump, KEY)
        .iter()
        .map(|s| s["externalId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["b1", "b2", "b3"]);
    assert_eq!(session(&server, "b3")["messageCount"], 0);
    // Both are logged as rejected although the status was 200.
    let log = server.requests();
    assert_eq!(log.iter().filter(|r| r.rejected).count(), 2);
    assert!(log.iter().all(|r| r.status == 200));
}

#[test]
fn batch_ignores_missing_or_empty_halves_and_stores_arrival_time() {
    let server = start();
    let c = api(&server);
    let r = c.post("/sync/batch", &json!({}));
    assert_eq!(
        r.body,
        json!({"ok": true, "sessions": 0, "messages": 0, "errors": []})
    );
    let r = c.post("/sync/batch", &json!({"sessions": [], "messages": []}));
    assert_eq!(r.body["errors"], json!([]));
    let r = c.post("/sync/batch", &json!({"sessions": "nope"}));
    assert!(
        r.body["errors"][0]
            .as_str()
            .unwrap()
            .contains("ArgumentValidationError")
    );
    let r = c.post_raw("/sync/batch", "null");
    assert_eq!(r.status, 500);
    assert!(r.error().starts_with("TypeError"), "{}", r.error());
    c.post(
        "/sync/batch",
        &json!({"messages": [{"sessionExternalId": "s", "externalId": "m", "role": "user"}]}),
    );
    let created = session(&server, "s")["messages"][0]["createdAt"]
        .as_i64()
        .unwrap();
    assert!((created - server.controller().now_ms()).abs() < 60_000);
}

#[test]
fn malformed_json_is_a_500_with_the_parse_error() {
    let server = start();
    let c = api(&server);
    for path in ["/sync/session", "/sync/message", "/sync/batch"] {
        for body in ["{not json", "", "{\"externalId\": \"s\""] {
            let r = c.post_raw(path, body);
            assert_eq!(r.status, 500, "{path} {body:?}");
            assert!(
                r.error().starts_with("SyntaxError"),
                "{path}: {}",
                r.error()
            );
        }
    }
    let r = c.post_raw("/sync/session", "null");
    assert_eq!(r.status, 500);
    assert!(r.error().contains("Cannot read properties of null"));
}

#[test]
fn convex_limits_are_enforced() {
    let server = start();
    let c = api(&server);
    let msg = |extra: Value| {
        let mut m = json!({"sessionExternalId": "s", "externalId": "m", "role": "tool"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let big = "x".repeat((1 << 20) + 1);
    let near = "y".repeat(600 * 1024);
    let cases = [
        ("long string", msg(json!({"textContent": big}))),
        (
            "text plus parts near 1 MiB",
            msg(
                json!({"textContent": near.clone(), "parts": [{"type": "tool-result", "content": near}]}),
            ),
        ),
        (
            "too many parts",
            msg(json!({"parts": vec![json!({"type": "t", "content": 1}); 8193]})),
        ),
        (
            "wide object",
            msg(json!({"parts": [{"type": "tool-call", "content": {"args":
                (0..1025).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}}]})),
        ),
        (
            "dollar key",
            msg(json!({"parts": [{"type": "t", "content": {"$ref": "x"}}]})),
        ),
        (
            "underscore key",
            msg(json!({"parts": [{"type": "t", "content": {"_id": "x"}}]})),
        ),
    ];
    for (name, body) in cases {
        let r = c.post("/sync/message", &body);
        assert_eq!(r.status, 500, "{name}");
        assert!(!r.error().is_empty(), "{name}");
    }
    assert!(sessions_of(&server.dump().unwrap(), KEY).is_empty());
    // Just inside the limits is fine.
    let ok = msg(json!({"textContent": "z".repeat(400 * 1024),
        "parts": vec![json!({"type": "t", "content": 1}); 8192]}));
    assert_eq!(c.post("/sync/message", &ok).status, 200);
    // A 1 MiB string in a session title fails too.
    let r = c.post(
        "/sync/session",
        &json!({"externalId": "s2", "title": "t".repeat((1 << 20) + 1)}),
    );
    assert_eq!(r.status, 500);
}

#[test]
fn cors_preflight_and_unknown_routes() {
    let server = start();
    let c = Client::new(&server.url(), None);
    for path in ["/sync/session", "/anything/else"] {
        let r = c.options(path);
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET, POST, DELETE, OPTIONS")
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("Authorization, Content-Type")
        );
        assert_eq!(r.header("access-control-max-age"), Some("86400"));
    }
    let r = api(&server).get("/sync/session");
    assert_eq!(r.status, 404);
    let r = api(&server).get("/api/no-such-route");
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "No matching routes found");
}

#[test]
fn data_is_per_user_and_revoked_keys_fail() {
    let server = start();
    server.add_key(OTHER_KEY).unwrap();
    let a = api(&server);
    let b = Client::with_key(&server.url(), OTHER_KEY);
    a.post(
        "/sync/session",
        &json!({"externalId": "same", "title": "A"}),
    );
    b.post(
        "/sync/session",
        &json!({"externalId": "same", "title": "B"}),
    );
    b.post("/sync/session", &json!({"externalId": "only-b"}));
    assert_eq!(
        a.get("/sync/sessions/list").body["sessionIds"],
        json!(["same"])
    );
    assert_eq!(
        b.get("/sync/sessions/list").body["sessionIds"],
        json!(["same", "only-b"])
    );
    let dump = server.dump().unwrap();
    assert_eq!(sessions_of(&dump, KEY)[0]["title"], "A");
    assert_eq!(sessions_of(&dump, OTHER_KEY)[0]["title"], "B");

    assert!(server.revoke_key(OTHER_KEY).unwrap());
    let r = b.post("/sync/session", &json!({"externalId": "x"}));
    assert_eq!((r.status, r.error()), (401, "Invalid API key"));
    assert_eq!(a.get("/sync/sessions/list").status, 200);
    server.add_key(OTHER_KEY).unwrap();
    assert_eq!(
        b.get("/sync/sessions/list").body["sessionIds"],
        json!(["same", "only-b"])
    );
    assert!(server.add_key("not_a_key").is_err());
}

#[test]
fn request_log_records_every_answer() {
    let server = start();
    let c = api(&server);
    c.get("/health");
    c.post("/sync/session", &json!({"externalId": "s"}));
    c.post("/sync/session", &json!({"externalId": "s", "title": null}));
    let log = server.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/health", 200)
    );
    assert!(!log[1].rejected && log[1].error.is_none());
    assert!(log[2].rejected && log[2].status == 500);
    assert!(
        log[2]
            .error
            .as_deref()
            .unwrap()
            .contains("ArgumentValidationError")
    );
    let dump = server.dump().unwrap();
    assert_eq!(dump["requests"].as_array().unwrap().len(), 3);
    assert_eq!(dump["requests"][2]["rejected"], true);
}

#[test]
fn git_branch_is_kept_and_follows_every_upsert_that_sends_one() {
    let server = start();
    let c = api(&server);
    let post = |body: Value| {
        let r = c.post("/sync/session", &body);
        assert_eq!(r.status, 200, "{body}: {:?}", r.body);
    };
    post(json!({"externalId": "ses_b", "title": "T", "gitBranch": "main"}));
    let first = session(&server, "ses_b");
    assert_eq!(first["gitBranch"], "main");

    // A branch switch inside the 10 s dedup window is kept, and only the
    // branch changes: the Convex fields keep the real rules (cost lost, no
    // new updatedAt).
    post(json!({"externalId": "ses_b", "title": "T", "gitBranch": "feature/x", "cost": 9}));
    let s = session(&server, "ses_b");
    assert_eq!(s["gitBranch"], "feature/x");
    assert_eq!(s["cost"], 0);
    assert_eq!(s["updatedAt"], first["updatedAt"]);

    // Omitted, empty, not a string or absurdly long: the stored one stays.
    server.advance_clock(10_001);
    post(json!({"externalId": "ses_b", "title": "T2"}));
    post(json!({"externalId": "ses_b", "title": "T3", "gitBranch": ""}));
    post(json!({"externalId": "ses_b", "title": "T4", "gitBranch": 7}));
    post(json!({"externalId": "ses_b", "title": "T5", "gitBranch": null}));
    post(json!({"externalId": "ses_b", "title": "T6", "gitBranch": "x".repeat(1025)}));
    let s = session(&server, "ses_b");
    assert_eq!(
        (&s["title"], &s["gitBranch"]),
        (&json!("T6"), &json!("feature/x"))
    );

    // Outside the window it changes with the rest.
    server.advance_clock(10_001);
    post(json!({"externalId": "ses_b", "title": "T7", "gitBranch": "release/1.0"}));
    assert_eq!(session(&server, "ses_b")["gitBranch"], "release/1.0");

    // The batch validator still refuses it, as the real one does.
    let r = c.post(
        "/sync/batch",
        &json!({"sessions": [{"externalId": "ses_c", "gitBranch": "main"}]}),
    );
    let e = r.body["errors"][0].as_str().unwrap_or_default();
    assert!(
        e.starts_with("Sessions batch error:") && e.contains("gitBranch"),
        "{:?}",
        r.body
    );
}
