//! The `opencode-sync-server` binary as a test harness in another language
//! would use it: one JSON line on stdout, control over HTTP, exit when stdin
//! closes or on SIGTERM, clear errors for bad arguments and a busy port.

// Test helpers outside #[test] functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_opencode-sync-server");

fn spawn(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, ready)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prints_urls_serves_and_exits_when_stdin_closes() {
    let (mut child, ready) = spawn(&["--api-key", "osk_bin_key", "--control"]);
    let url = ready["url"].as_str().unwrap();
    let control_url = ready["controlUrl"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(control_url.starts_with("http://127.0.0.1:"));
    assert_ne!(url, control_url);
    assert_eq!(ready.as_object().unwrap().len(), 2);

    let api = Client::with_key(url, "osk_bin_key");
    let r = api.post(
        "/sync/session",
        &json!({"externalId": "s", "title": "from binary"}),
    );
    assert_eq!(r.status, 200);
    let control = Client::new(control_url, None);
    let dump = control.get("/control/dump").body;
    assert_eq!(dump["users"][0]["sessions"][0]["title"], "from binary");
    let r = control.post("/control/faults", &json!([{"kind": "refuse"}]));
    assert_eq!(r.status, 200);
    assert!(api.try_get("/health").is_err());
    control.delete("/control/faults", None);
    assert_eq!(api.get("/health").status, 200);

    drop(child.stdin.take());
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn control_url_is_null_without_control() {
    let (mut child, ready) = spawn(&[]);
    assert_eq!(ready["controlUrl"], Value::Null);
    assert_eq!(
        Client::new(ready["url"].as_str().unwrap(), None)
            .get("/health")
            .status,
        200
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ignored input\n")
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn exits_on_sigterm() {
    let (mut child, _ready) = spawn(&[]);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port, "--api-key", "osk_secret_value"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("osk_secret_value"), "{stderr}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    for args in [
        &["--api-key", "not_osk_secret"][..],
        &["--port", "notaport"],
        &["--bogus"],
        &["--control-port", "1234"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("not_osk_secret"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_non_loopback_host_needs_allow_remote() {
    for host in ["0.0.0.0", "::", "192.0.2.1"] {
        let out = Command::new(BIN)
            .args(["--host", host, "--api-key", "osk_secret_value"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{host}");
        assert!(out.stdout.is_empty(), "{host}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is not a loopback address"), "{stderr}");
        assert!(stderr.contains("--allow-remote"), "{stderr}");
        assert!(!stderr.contains("osk_secret_value"), "{stderr}");
    }
    // Loopback spellings need nothing extra.
    let (mut child, ready) = spawn(&["--host", "127.0.0.2", "--control"]);
    assert!(
        ready["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.2:")
    );
    assert!(
        ready["controlUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.2:")
    );
    drop(child.stdin.take());
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}
