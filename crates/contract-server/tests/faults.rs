//! Fault injection, in-process and over the control listener: refuse (and the
//! same port coming back), every-n-th status, Retry-After, hang (released by a
//! clear and by shutdown), slow, path restriction.

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Client, KEY, start};
use opencode_sync_contract_server::{Fault, ServerHandle, ServerOptions};
use serde_json::json;

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    }
}

#[test]
fn refuse_closes_the_port_and_clear_reopens_the_same_one() {
    let server = start();
    let c = Client::with_key(&server.url(), KEY);
    assert_eq!(c.get("/health").status, 200);
    let addr = addr_of(&server.url());

    server.set_faults(vec![Fault::refuse()]).unwrap();
    assert!(refused(addr));
    assert!(c.try_get("/health").is_err());
    assert!(
        c.try_post("/sync/session", &json!({"externalId": "s"}))
            .is_err()
    );
    // The control listener stays up meanwhile.
    let control = Client::new(&server.control_url().unwrap(), None);
    assert_eq!(control.get("/control/dump").status, 200);

    server.clear_faults().unwrap();
    assert_eq!(server.url(), format!("http://{addr}"));
    assert_eq!(c.get("/health").status, 200);
    assert_eq!(
        c.post("/sync/session", &json!({"externalId": "s"})).status,
        200
    );

    // Several cycles in a row, over HTTP this time.
    for _ in 0..3 {
        let r = control.post("/control/faults", &json!([{"kind": "refuse"}]));
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(refused(addr));
        assert_eq!(control.delete("/control/faults", None).status, 200);
        assert_eq!(c.get("/health").status, 200);
    }
}

#[test]
fn status_every_nth_request() {
    let server = start();
    let c = Client::with_key(&server.url(), KEY);
    server.set_faults(vec![Fault::status(500, 5)]).unwrap();
    let statuses: Vec<u16> = (0..10)
        .map(|i| {
            c.post("/sync/session", &json!({"externalId": format!("s{i}")}))
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 500, 200, 200, 200, 200, 500]);
    let log = server.requests();
    let injected: Vec<_> = log.iter().filter(|r| r.injected).collect();
    assert_eq!(injected.len(), 2);
    assert!(
        injected
            .iter()
            .all(|r| r.error.as_deref() == Some("injected") && !r.rejected)
    );
    // An injected answer is never applied.
    let dump = server.dump().unwrap();
    assert_eq!(common::sessions_of(&dump, KEY).len(), 8);
}

#[test]
fn status_429_with_retry_after() {
    let server = start();
    let c = Client::with_key(&server.url(), KEY);
    server
        .set_faults(vec![Fault::status_retry_after(429, 3, 2)])
        .unwrap();
    let answers: Vec<_> = (0..6).map(|_| c.get("/sync/sessions/list")).collect();
    for (i, r) in answers.iter().enumerate() {
        if i % 3 == 2 {
            assert_eq!(r.status, 429);
            assert_eq!(r.body, json!({"error": "injected"}));
            assert_eq!(r.retry_after.as_deref(), Some("2"));
        } else {
            assert_eq!(r.status, 200);
            assert_eq!(r.retry_after, None);
        }
    }
}

#[test]
fn hang_holds_until_cleared() {
    let server = start();
    let url = server.url();
    server
        .set_faults(vec![Fault::hang().with_paths(["/sync/session"])])
        .unwrap();
    // Other paths are not held.
    assert_eq!(Client::new(&url, None).get("/health").status, 200);
    let started = Instant::now();
    let held = std::thread::spawn(move || {
        Client::with_key(&url, KEY).post("/sync/session", &json!({"externalId": "held"}))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!held.is_finished());
    server.clear_faults().unwrap();
    let r = held.join().unwrap();
    assert_eq!(r.status, 200, "released requests are handled normally");
    assert!(started.elapsed() >= Duration::from_millis(300));
    common::session(&server, "held");
}

#[test]
fn hang_is_released_at_shutdown() {
    let server = ServerHandle::start(ServerOptions::default().with_api_key(KEY)).unwrap();
    let url = server.url();
    server.set_faults(vec![Fault::hang()]).unwrap();
    let held = std::thread::spawn(move || Client::new(&url, None).try_get("/health"));
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    drop(server);
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "shutdown did not hang"
    );
    let r = held.join().unwrap().expect("the held request is answered");
    assert_eq!(r.status, 503);
    assert_eq!(r.error(), "server is shutting down");
}

#[test]
fn hang_max_bounds_the_hold() {
    let server = start();
    let control = Client::new(&server.control_url().unwrap(), None);
    let r = control.post("/control/faults", &json!([{"kind": "hang", "maxMs": 200}]));
    assert_eq!(r.status, 200);
    let t = Instant::now();
    assert_eq!(Client::new(&server.url(), None).get("/health").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn slow_delays_requests() {
    let server = start();
    let c = Client::with_key(&server.url(), KEY);
    server.set_faults(vec![Fault::slow(300)]).unwrap();
    let t = Instant::now();
    assert_eq!(
        c.post("/sync/session", &json!({"externalId": "s"})).status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(server.requests()[0].duration_ms >= 300);
    server.clear_faults().unwrap();
    let t = Instant::now();
    c.get("/health");
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[test]
fn rules_combine_and_respect_paths() {
    let server = start();
    let c = Client::with_key(&server.url(), KEY);
    server
        .set_faults(vec![
            Fault::slow(100).with_paths(["/sync/*"]),
            Fault::status(503, 1)
                .with_paths(["/sync/message"])
                .with_limit(1),
        ])
        .unwrap();
    let t = Instant::now();
    assert_eq!(c.get("/health").status, 200);
    assert!(t.elapsed() < Duration::from_millis(100));
    let msg = json!({"sessionExternalId": "s", "externalId": "m", "role": "user"});
    let t = Instant::now();
    assert_eq!(c.post("/sync/message", &msg).status, 503);
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(c.post("/sync/message", &msg).status, 200);
}

#[test]
fn control_routes_over_http() {
    let server = start();
    let control = Client::new(&server.control_url().unwrap(), None);
    let api = Client::with_key(&server.url(), "osk_added_later");

    // Keys.
    assert_eq!(api.get("/sync/sessions/list").status, 401);
    let r = control.post("/control/keys", &json!({"apiKey": "osk_added_later"}));
    assert_eq!(r.status, 200);
    assert_eq!(api.get("/sync/sessions/list").status, 200);
    let r = control.delete("/control/keys", Some(&json!({"apiKey": "osk_added_later"})));
    assert_eq!(r.body, json!({"ok": true, "revoked": true}));
    assert_eq!(api.get("/sync/sessions/list").error(), "Invalid API key");
    assert_eq!(
        control
            .post("/control/keys", &json!({"apiKey": "bad"}))
            .status,
        400
    );

    // Faults.
    let r = control.post(
        "/control/faults",
        &json!([{"kind": "status", "status": 500, "every": 2}]),
    );
    assert_eq!(
        r.body["faults"],
        json!([{"kind": "status", "status": 500, "every": 2}])
    );
    assert_eq!(
        control.get("/control/faults").body["faults"][0]["status"],
        500
    );
    assert_eq!(
        control
            .post("/control/faults", &json!([{"kind": "teleport"}]))
            .status,
        400
    );
    assert_eq!(
        control
            .post(
                "/control/faults",
                &json!([{"kind": "status", "status": 99}])
            )
            .status,
        400
    );
    assert_eq!(control.post_raw("/control/faults", "{oops").status, 400);
    assert_eq!(
        control.delete("/control/faults", None).body["faults"],
        json!([])
    );

    // Clock.
    let before = control.get("/control/clock").body["nowMs"]
        .as_i64()
        .unwrap();
    let r = control.post("/control/clock", &json!({"advanceMs": 60_000}));
    assert_eq!(r.body["offsetMs"], 60_000);
    assert!(r.body["nowMs"].as_i64().unwrap() >= before + 60_000);
    let health = Client::new(&server.url(), None).get("/health");
    assert!(health.body["timestamp"].as_i64().unwrap() >= before + 60_000);

    // Requests and dump.
    let r = control.get("/control/requests");
    let logged = r.body["requests"].as_array().unwrap().len();
    assert!(logged > 0);
    // The control API's own requests are not logged: the count is what the list held.
    assert_eq!(control.get("/control/requests/count").body["count"], logged);
    assert_eq!(control.delete("/control/requests", None).status, 200);
    assert_eq!(control.get("/control/requests/count").body["count"], 0);
    let dump = control.get("/control/dump").body;
    assert_eq!(dump["requests"], json!([]));
    assert!(dump["users"].as_array().unwrap().len() >= 2);
    assert_eq!(control.get("/control/nothing").status, 404);
}

#[test]
fn no_control_listener_unless_asked() {
    let server = ServerHandle::start(ServerOptions::default()).unwrap();
    assert_eq!(server.control_url(), None);
    // The in-process controller still works.
    server.add_key(KEY).unwrap();
    let r = Client::with_key(&server.url(), KEY).get("/sync/sessions/list");
    assert_eq!(r.status, 200);
}
