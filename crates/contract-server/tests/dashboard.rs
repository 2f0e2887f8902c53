//! The web dashboard over real HTTP on loopback: the page at `/` with its
//! Content-Security-Policy, the embedded assets with their types and caching,
//! the `/dashboard/api/*` shapes over data stored through the sync routes
//! (markdown rendered with raw HTML escaped, tool calls paired with results,
//! usage per day, model and project), the git-branch filter, the session
//! export download, 400s for malformed query values, and who may read without
//! a key (the read routes' rule: open reads, from this machine, same origin).

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, KEY, OTHER_KEY, start};
use opencode_sync_contract_server::{ServerHandle, ServerOptions, WithControl};
use serde_json::{Value, json};

/// An answer read off the socket as it came.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `host:port` of a server (loopback even when it listens on all addresses).
fn authority(server: &ServerHandle) -> String {
    let url = server.url();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    format!("127.0.0.1:{}", addr.port())
}

/// One HTTP/1.1 request with exactly these headers (`Host` defaults to the
/// server's address), read to the end.
fn request(server: &ServerHandle, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    let addr = authority(server);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Raw {
        status: status.parse().unwrap(),
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn get(server: &ServerHandle, path: &str) -> Raw {
    request(server, "GET", path, &[])
}

fn get_with(server: &ServerHandle, path: &str, headers: &[(&str, &str)]) -> Raw {
    request(server, "GET", path, headers)
}

fn ok(r: &common::Resp) {
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

/// Stores, through the sync routes: for `KEY`, "Fix the parser" (project
/// alpha, two messages, a bash call with its result, markdown and an XSS
/// attempt in the text) and "Write docs" (project beta, a day later); for
/// `OTHER_KEY`, "Someone else's" (project gamma).
fn seed(server: &ServerHandle) {
    let a = Client::with_key(&server.url(), KEY);
    let b = Client::with_key(&server.url(), OTHER_KEY);
    ok(&a.post(
        "/sync/session",
        &json!({
            "externalId": "ses_parser",
            "title": "Fix the parser",
            "projectPath": "/home/me/alpha",
            "projectName": "alpha",
            "model": "claude-sonnet-4",
            "provider": "anthropic",
            "source": "opencode",
            "promptTokens": 1200,
            "completionTokens": 300,
            "cost": 0.0125,
            "durationMs": 65_000,
            "createdAt": T0,
            "gitBranch": "fix/parser"
        }),
    ));
    ok(&a.post(
        "/sync/message",
        &json!({
            "sessionExternalId": "ses_parser",
            "externalId": "msg_u1",
            "role": "user",
            "textContent": "Please fix **parse_limit** <script>alert('x')</script>",
            "createdAt": T0 + 1000,
            "parts": [{"type": "text", "content": "Please fix **parse_limit** <script>alert('x')</script>"}]
        }),
    ));
    ok(&a.post(
        "/sync/message",
        &json!({
            "sessionExternalId": "ses_parser",
            "externalId": "msg_a1",
            "role": "assistant",
            "textContent": "Running the tests.\n\nDone: `parse_limit` handles signs.",
            "model": "claude-sonnet-4",
            "promptTokens": 900,
            "completionTokens": 250,
            "durationMs": 4000,
            "createdAt": T0 + 2000,
            "parts": [
                {"type": "text", "content": "Running the tests."},
                {"type": "tool-call", "content": {"toolName": "bash", "callID": "call_1",
                    "args": {"command": "cargo test -p demo", "description": "Run tests"},
                    "status": "completed", "title": "cargo test -p demo"}},
                {"type": "tool-result", "content": {"output": "running 3 tests\ntest result: ok",
                    "exit": 0, "durationMs": 1234}},
                {"type": "text", "content": "Done: `parse_limit` handles signs."}
            ]
        }),
    ));
    ok(&a.post(
        "/sync/session",
        &json!({
            "externalId": "ses_docs",
            "title": "Write docs",
            "projectPath": "/home/me/beta",
            "projectName": "beta",
            "model": "gpt-5",
            "promptTokens": 100,
            "completionTokens": 50,
            "cost": 0.5,
            "createdAt": T0 + DAY
        }),
    ));
    ok(&b.post(
        "/sync/session",
        &json!({
            "externalId": "ses_other",
            "title": "Someone else's",
            "projectPath": "/srv/gamma",
            "gitBranch": "secret-branch",
            "model": "gpt-5",
            "promptTokens": 10,
            "completionTokens": 5,
            "cost": 1.0,
            "createdAt": T0
        }),
    ));
}

/// A server with open reads for `KEY` (as `opencode-sync serve` runs) and a
/// second user, `OTHER_KEY`, both seeded.
fn two_users() -> ServerHandle {
    let server = ServerHandle::start(
        ServerOptions::default()
            .with_open_reads(KEY)
            .with_api_key(OTHER_KEY)
            .with_control(),
    )
    .unwrap();
    seed(&server);
    server
}

#[test]
fn the_page_is_served_with_a_strict_csp() {
    let server = start();
    let r = get(&server, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("access-control-allow-origin"), None);
    let html = r.text();
    assert!(
        html.contains("<script type=\"module\" src=\"/assets/app.js?v="),
        "{html}"
    );
    assert!(
        html.contains("<link rel=\"stylesheet\" href=\"/assets/app.css?v="),
        "{html}"
    );
    // No inline script or style for the CSP to block.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="));

    let etag = r.header("etag").unwrap().to_owned();
    let again = get_with(&server, "/", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // HEAD works as GET without the body.
    let head = request(&server, "HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn assets_are_embedded_with_types_and_cache_headers() {
    let server = start();
    let html = get(&server, "/").text();
    let version = |name: &str| -> String {
        let at = html.find(&format!("/assets/{name}?v=")).unwrap() + name.len() + 11;
        html[at..at + 16].to_owned()
    };
    for (name, content_type, marker) in [
        (
            "app.js",
            "text/javascript; charset=utf-8",
            "/dashboard/api/",
        ),
        ("app.css", "text/css; charset=utf-8", "prefers-color-scheme"),
        ("icon.svg", "image/svg+xml", "<svg"),
    ] {
        let v = version(name);
        let r = get(&server, &format!("/assets/{name}?v={v}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(content_type), "{name}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{name}"
        );
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{v}\"").as_str()),
            "{name}"
        );
        assert!(r.text().contains(marker), "{name}");
        assert!(r.header("content-security-policy").is_some());
        // Unversioned: revalidated every time; a matching ETag gets a 304.
        let plain = get(&server, &format!("/assets/{name}"));
        assert_eq!(plain.header("cache-control"), Some("no-cache"));
        let cached = get_with(
            &server,
            &format!("/assets/{name}"),
            &[("If-None-Match", &format!("\"{v}\""))],
        );
        assert_eq!(cached.status, 304, "{name}");
    }
    // Nothing is fetched from elsewhere at run time.
    let js = get(&server, &format!("/assets/app.js?v={}", version("app.js"))).text();
    let js = js.replace(SVG_NS, "");
    assert!(!js.contains("http://") && !js.contains("https://"));
    let r = get(&server, "/assets/nope.js");
    assert_eq!(r.status, 404);
}

/// The one absolute URL the script holds: the SVG namespace (not fetched).
const SVG_NS: &str = "http://www.w3.org/2000/svg";

#[test]
fn other_methods_and_paths_still_reach_the_opensync_api() {
    let server = start();
    let r = request(&server, "POST", "/", &[("Content-Length", "0")]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "No matching routes found");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = request(&server, "OPTIONS", "/dashboard/api/sessions", &[]);
    assert_eq!(r.status, 204);
    let r = get(&server, "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = get(&server, "/api/sessions");
    assert_eq!(r.status, 401, "the OpenSync read routes keep their auth");
    // Dashboard requests are not in the request log; the others are.
    get(&server, "/dashboard/api/sessions");
    let logged: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|q| (q.method, q.path))
        .collect();
    let has = |m: &str, p: &str| logged.iter().any(|(lm, lp)| lm == m && lp == p);
    assert!(!has("GET", "/dashboard/api/sessions"), "{logged:?}");
    assert!(has("OPTIONS", "/dashboard/api/sessions"), "{logged:?}");
    assert!(has("GET", "/health"), "{logged:?}");
}

#[test]
fn the_sessions_list_filters_by_project_and_full_text() {
    let server = two_users();
    let r = get(&server, "/dashboard/api/sessions");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    // Keyless from this machine: the open-reads user's sessions, newest first.
    assert_eq!(body["total"], 2);
    let titles: Vec<&str> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Write docs", "Fix the parser"]);
    let parser = &body["sessions"][1];
    for (key, want) in [
        ("externalId", json!("ses_parser")),
        ("project", json!("alpha")),
        ("projectKey", json!("/home/me/alpha")),
        ("projectPath", json!("/home/me/alpha")),
        ("model", json!("claude-sonnet-4")),
        ("provider", json!("anthropic")),
        ("promptTokens", json!(1200)),
        ("completionTokens", json!(300)),
        ("totalTokens", json!(1500)),
        ("cost", json!(0.0125)),
        ("durationMs", json!(65_000)),
        ("messageCount", json!(2)),
        ("createdAt", json!(T0)),
    ] {
        assert_eq!(parser[key], want, "{key} in {parser}");
    }
    assert!(parser["id"].as_str().unwrap().starts_with("js"));
    assert!(parser["updatedAt"].as_f64().unwrap() > 0.0);
    assert!(parser.get("snippet").is_none());
    // A project without a name is labelled by its path's last segment.
    let other = get_with(
        &server,
        "/dashboard/api/sessions",
        &[("Authorization", &format!("Bearer {OTHER_KEY}"))],
    )
    .json();
    assert_eq!(other["sessions"][0]["project"], "gamma");
    assert_eq!(other["total"], 1);
    let projects: Vec<(String, i64)> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_owned(),
                p["sessions"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        projects,
        [("beta".to_owned(), 1), ("alpha".to_owned(), 1)],
        "most recently updated first"
    );

    let r = get(
        &server,
        "/dashboard/api/sessions?project=%2Fhome%2Fme%2Fbeta",
    )
    .json();
    assert_eq!(r["total"], 1);
    assert_eq!(r["sessions"][0]["title"], "Write docs");
    assert_eq!(
        r["projects"].as_array().unwrap().len(),
        2,
        "all projects stay listed"
    );

    // Full text: message words, not only titles; each hit with its snippet.
    let r = get(&server, "/dashboard/api/sessions?q=handles%20SIGNS").json();
    assert_eq!(r["total"], 1, "{r}");
    assert_eq!(r["sessions"][0]["externalId"], "ses_parser");
    let snippet = r["sessions"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("handles signs"), "{r}");
    let r = get(
        &server,
        "/dashboard/api/sessions?q=docs&project=%2Fhome%2Fme%2Falpha",
    )
    .json();
    assert_eq!(r["total"], 0);
    let r = get(&server, "/dashboard/api/sessions?q=nothing-like-this").json();
    assert_eq!(r["sessions"], json!([]));
    let r = get(&server, "/dashboard/api/sessions?limit=1").json();
    assert_eq!(
        (r["total"].as_i64(), r["sessions"].as_array().unwrap().len()),
        (Some(2), 1)
    );
}

#[test]
fn the_session_page_has_rendered_markdown_and_tool_calls() {
    let server = two_users();
    let list = get(&server, "/dashboard/api/sessions?q=parser").json();
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let r = get(&server, &format!("/dashboard/api/session?id={id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["session"]["title"], "Fix the parser");
    assert_eq!(body["session"]["project"], "alpha");
    assert_eq!(body["session"]["totalTokens"], 1500);
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);

    // Markdown on the server, with the raw <script> shown as text.
    let user = &messages[0];
    assert_eq!(user["blocks"].as_array().unwrap().len(), 1);
    let html = user["blocks"][0]["html"].as_str().unwrap();
    assert!(html.contains("<strong>parse_limit</strong>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(\u{27}x\u{27})&lt;/script&gt;"),
        "{html}"
    );

    let a = &messages[1];
    assert_eq!(a["model"], "claude-sonnet-4");
    assert_eq!(a["promptTokens"], 900);
    assert_eq!(a["completionTokens"], 250);
    assert_eq!(a["durationMs"], 4000);
    assert_eq!(a["createdAt"], T0 + 2000);
    assert_eq!(a["externalId"], "msg_a1");
    let kinds: Vec<&str> = a["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text", "tool", "text"]);
    assert_eq!(
        a["blocks"][1],
        json!({
            "kind": "tool",
            "name": "bash",
            "callId": "call_1",
            "status": "completed",
            "title": "cargo test -p demo",
            "args": {"command": "cargo test -p demo", "description": "Run tests"},
            "output": "running 3 tests\ntest result: ok",
            "exit": 0,
            "durationMs": 1234
        })
    );
    assert_eq!(
        a["blocks"][2]["html"],
        "<p>Done: <code>parse_limit</code> handles signs.</p>\n"
    );

    // By externalId too; unknown and missing ids.
    let r = get(&server, "/dashboard/api/session?id=ses_parser").json();
    assert_eq!(r["session"]["id"], json!(id));
    let r = get(&server, "/dashboard/api/session?id=ses_nope");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("Session not found"))
    );
    let r = get(&server, "/dashboard/api/session");
    assert_eq!(r.status, 400);
}

#[test]
fn usage_is_per_day_model_and_project() {
    let server = two_users();
    let r = get(&server, "/dashboard/api/usage?tz=0");
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(
        u["totals"],
        json!({"sessions": 2, "messages": 2, "promptTokens": 1300, "completionTokens": 350,
               "totalTokens": 1650, "cost": 0.5125})
    );
    assert_eq!(
        u["byDay"],
        json!([
            {"day": "2023-11-14", "sessions": 1, "promptTokens": 1200, "completionTokens": 300,
             "totalTokens": 1500, "cost": 0.0125},
            {"day": "2023-11-15", "sessions": 1, "promptTokens": 100, "completionTokens": 50,
             "totalTokens": 150, "cost": 0.5}
        ])
    );
    let models: Vec<(String, i64, f64)> = u["byModel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["totalTokens"].as_i64().unwrap(),
                m["cost"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("claude-sonnet-4".to_owned(), 1500, 0.0125),
            ("gpt-5".to_owned(), 150, 0.5)
        ]
    );
    let projects: Vec<&str> = u["byProject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["alpha", "beta"]);

    // Days are the browser's: at UTC+2 the first session started on the 15th.
    let u = get(&server, "/dashboard/api/usage?tz=-120").json();
    let days: Vec<&str> = u["byDay"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["day"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2023-11-15", "2023-11-16"]);

    // A key scopes the usage to its user.
    let u = get_with(
        &server,
        "/dashboard/api/usage",
        &[("Authorization", &format!("Bearer {OTHER_KEY}"))],
    )
    .json();
    assert_eq!(u["totals"]["sessions"], 1);
    assert_eq!(u["totals"]["cost"], 1);
}

#[test]
fn a_key_scopes_reads_to_its_user() {
    let server = two_users();
    let auth = format!("Bearer {KEY}");
    let r = get_with(
        &server,
        "/dashboard/api/sessions",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["total"], 2);
    assert_eq!(body["projects"].as_array().unwrap().len(), 2);
    let r = get_with(
        &server,
        "/dashboard/api/sessions",
        &[("Authorization", &format!("Bearer {OTHER_KEY}"))],
    );
    assert_eq!(r.json()["sessions"][0]["externalId"], "ses_other");
    assert_eq!(r.json()["total"], 1);
    let r = get_with(
        &server,
        "/dashboard/api/session?id=ses_other",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 404, "another user's session is not found");
    let r = get_with(
        &server,
        "/dashboard/api/sessions?q=someone",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.json()["total"], 0);

    for (value, error) in [
        ("Bearer osk_unknown", "Invalid API key"),
        ("Bearer not-a-key", "Invalid API key format"),
        ("Basic dXNlcjpwYXNz", "Invalid API key format"),
    ] {
        let r = get_with(
            &server,
            "/dashboard/api/sessions",
            &[("Authorization", value)],
        );
        assert_eq!(r.status, 401, "{value}");
        assert_eq!(r.json()["error"], error);
        assert_eq!(r.json()["keyRequired"], true);
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    }
    // A revoked key stops working.
    server.revoke_key(OTHER_KEY).unwrap();
    let other = format!("Bearer {OTHER_KEY}");
    let r = get_with(
        &server,
        "/dashboard/api/usage",
        &[("Authorization", &other)],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn keyless_reads_need_open_reads_this_machine_and_the_same_origin() {
    let server = two_users();
    let port = authority(&server).split(':').nth(1).unwrap().to_owned();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = get_with(&server, "/dashboard/api/sessions", &[("Host", &host)]);
        assert_eq!(r.status, 200, "{host}");
    }
    // A page on another site, or this server under another name (DNS
    // rebinding), gets a 401 and no data.
    for headers in [
        vec![("Host", format!("attacker.example:{port}"))],
        vec![("Sec-Fetch-Site", "cross-site".to_owned())],
        vec![("Origin", "http://attacker.example".to_owned())],
        vec![(
            "Origin",
            format!("http://127.0.0.1:{}", port.parse::<u32>().unwrap() + 1),
        )],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in [
            "/dashboard/api/sessions",
            "/dashboard/api/session?id=ses_parser",
            "/dashboard/api/usage",
        ] {
            let r = get_with(&server, path, &headers);
            assert_eq!(r.status, 401, "{path} {headers:?}");
            assert_eq!(r.json()["keyRequired"], true);
            assert!(!r.text().contains("parser"));
        }
        // With a key it is fine.
        let mut with_key = headers.clone();
        let auth = format!("Bearer {KEY}");
        with_key.push(("Authorization", &auth));
        assert_eq!(
            get_with(&server, "/dashboard/api/sessions", &with_key).status,
            200
        );
    }
    // The page itself is static and always served.
    let r = get_with(&server, "/", &[("Host", "attacker.example")]);
    assert_eq!(r.status, 200);

    // Without open reads (the contract server's default) every read needs the key.
    let closed = start();
    for path in ["/dashboard/api/sessions", "/dashboard/api/usage"] {
        let r = get(&closed, path);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("only with an API key")
        );
        let r = get_with(
            &closed,
            path,
            &[("Authorization", &format!("Bearer {KEY}"))],
        );
        assert_eq!(r.status, 200, "{path}");
    }
}

#[test]
fn a_server_open_to_other_machines_always_needs_a_key() {
    let server = ServerHandle::start(
        ServerOptions::default()
            .with_api_key(KEY)
            .with_remote_bind("0.0.0.0:0".parse().unwrap()),
    )
    .unwrap();
    seed_one(&server);
    let r = get(&server, "/dashboard/api/sessions");
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("only with an API key")
    );
    let r = get_with(
        &server,
        "/dashboard/api/sessions",
        &[("Authorization", &format!("Bearer {KEY}"))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 1);
    assert_eq!(get(&server, "/").status, 200);
}

fn seed_one(server: &ServerHandle) {
    let c = Client::new(
        &format!("http://{}", authority(server)),
        Some(&format!("Bearer {KEY}")),
    );
    ok(&c.post(
        "/sync/session",
        &json!({"externalId": "ses_1", "title": "One"}),
    ));
}

#[test]
fn the_sessions_list_filters_by_git_branch() {
    let server = two_users();
    let body = get(&server, "/dashboard/api/sessions").json();
    // The branches to filter by: the user's own, newest first, "" for none.
    assert_eq!(
        body["branches"],
        json!([
            {"key": "", "label": "(no branch)", "sessions": 1},
            {"key": "fix/parser", "label": "fix/parser", "sessions": 1}
        ])
    );
    assert_eq!(body["sessions"][1]["gitBranch"], "fix/parser");
    assert!(body["sessions"][0].get("gitBranch").is_none());

    let titles = |path: &str| -> Vec<String> {
        let r = get(&server, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        titles("/dashboard/api/sessions?branch=fix%2Fparser"),
        ["Fix the parser"]
    );
    assert_eq!(titles("/dashboard/api/sessions?branch="), ["Write docs"]);
    assert!(titles("/dashboard/api/sessions?branch=secret-branch").is_empty());
    assert!(
        titles("/dashboard/api/sessions?branch=fix%2Fparser&project=%2Fhome%2Fme%2Fbeta")
            .is_empty()
    );
    assert_eq!(
        titles("/dashboard/api/sessions?branch=fix%2Fparser&q=tests"),
        ["Fix the parser"]
    );

    // The session page shows it.
    let page = get(&server, "/dashboard/api/session?id=ses_parser").json();
    assert_eq!(page["session"]["gitBranch"], "fix/parser");
}

#[test]
fn the_open_session_exports_as_a_download() {
    let server = two_users();
    let r = get(
        &server,
        "/dashboard/api/export?id=ses_parser&format=markdown",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"Fix-the-parser.md\"")
    );
    assert!(r.header("content-security-policy").is_some());
    let md = r.text();
    assert!(md.starts_with("# Fix the parser\n"), "{md}");
    assert!(md.contains("- **Branch:** fix/parser\n"), "{md}");
    assert!(
        md.contains("## User\n\nPlease fix **parse_limit** <script>alert('x')</script>\n\n"),
        "{md}"
    );
    assert!(
        md.contains("Running the tests.\n\nDone: `parse_limit` handles signs."),
        "{md}"
    );

    let r = get(&server, "/dashboard/api/export?id=ses_parser");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"Fix-the-parser.json\"")
    );
    let body = r.json();
    assert_eq!(body["session"]["title"], "Fix the parser");
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);

    // Not found, not given, not a format, not this user's.
    assert_eq!(get(&server, "/dashboard/api/export?id=nope").status, 404);
    let r = get(&server, "/dashboard/api/export");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("Missing session ID"))
    );
    let r = get(&server, "/dashboard/api/export?id=ses_parser&format=pdf");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("\"pdf\""));
    assert_eq!(
        get(&server, "/dashboard/api/export?id=ses_other").status,
        404
    );
    // From another site: a key is needed.
    let r = get_with(
        &server,
        "/dashboard/api/export?id=ses_parser",
        &[("Origin", "http://attacker.example")],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn malformed_dashboard_query_values_are_a_400_with_the_reason() {
    let server = two_users();
    for (path, names) in [
        ("/dashboard/api/sessions?limit=abc", "\"abc\""),
        ("/dashboard/api/sessions?limit=-1", "\"-1\""),
        ("/dashboard/api/usage?tz=abc", "\"abc\""),
        ("/dashboard/api/usage?tz=99999", "\"99999\""),
        (
            "/dashboard/api/export?id=ses_parser&format=html",
            "\"html\"",
        ),
    ] {
        let r = get(&server, path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(names), "{path}: {error}");
    }
    for path in [
        "/dashboard/api/sessions?limit=1",
        "/dashboard/api/sessions?limit=",
        "/dashboard/api/usage?tz=-60",
        "/dashboard/api/usage?tz=",
    ] {
        assert_eq!(get(&server, path).status, 200, "{path}");
    }
}
