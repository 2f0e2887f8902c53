//! `opencode-sync serve` and `opencode-sync login --local`: the built binary as a user
//! runs it, in a sandbox HOME, on loopback. The key file is private and never printed,
//! data and key survive a restart (SIGTERM and Ctrl-C both stop it cleanly), reads are
//! open to this machine but sync needs the key, `login --local` points the CLI at it
//! whether it runs or not, bad starts (a busy port, a non-loopback host, an unusable
//! data directory) fail clearly; and 8 clients syncing 1,000 messages each at once lose
//! nothing.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/sandbox.rs"]
mod sandbox;

#[path = "support/load.rs"]
mod load;

use sandbox::{Sandbox, assert_clean_output};

/// Longest wait for a server to start or stop.
const WAIT: Duration = Duration::from_secs(30);

/// A running `opencode-sync serve`.
struct Served {
    child: Child,
    url: String,
    /// Everything it printed on stdout so far (the banner).
    banner: String,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// How a `serve` run ended.
struct Stopped {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Served {
    /// Starts `opencode-sync serve ARGS` and waits (bounded) for its banner.
    fn start(sb: &Sandbox, args: &[&str]) -> Self {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let mut child = sb.command(&all).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child,
            url: String::new(),
            banner: String::new(),
            lines,
            stderr,
        };
        let deadline = Instant::now() + WAIT;
        while !served.banner.contains("Stop with Ctrl-C.") {
            let left = deadline.saturating_duration_since(Instant::now());
            match served.lines.recv_timeout(left) {
                Ok(line) => {
                    served.banner.push_str(&line);
                    served.banner.push('\n');
                }
                Err(_) => {
                    let stopped = served.kill();
                    panic!(
                        "serve did not start (exit {:?}):\n{}{}\n{}",
                        stopped.code, served.banner, stopped.stdout, stopped.stderr
                    );
                }
            }
        }
        let first = served.banner.lines().next().unwrap();
        served.url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        served
    }

    fn port(&self) -> u16 {
        self.url.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// Sends `signal` (TERM or INT) and waits (bounded) for the exit.
    fn stop_with(mut self, signal: &str) -> Stopped {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }

    fn kill(&mut self) -> Stopped {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Stopped {
            code: None,
            stdout: self.lines.try_iter().collect::<Vec<_>>().join("\n"),
            stderr: String::new(),
        }
    }

    fn finish(mut self) -> Stopped {
        let code = self.child.wait().unwrap().code();
        // The pipes close with the process: both readers end.
        let mut stdout = std::mem::take(&mut self.banner);
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let (tx, rx) = mpsc::channel();
        let stderr_thread = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        std::thread::spawn(move || {
            let _ = tx.send(stderr_thread.join().unwrap_or_default());
        });
        let stderr = rx.recv_timeout(WAIT).unwrap_or_default();
        Stopped {
            code,
            stdout,
            stderr,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A blocking client that never treats a status as an error.
fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn get(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = http().get(url);
    if let Some(key) = key {
        req = req.header("Authorization", &format!("Bearer {key}"));
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(url: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http().post(url).header("Content-Type", "application/json");
    if let Some(key) = key {
        req = req.header("Authorization", &format!("Bearer {key}"));
    }
    let mut resp = req.send(body.to_string()).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn default_data_dir(sb: &Sandbox) -> PathBuf {
    sb.home().join(".local/share/opencode-sync")
}

fn read_key(dir: &Path) -> String {
    fs::read_to_string(dir.join("server-key"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `osk_abcd…wxyz` of a key.
fn masked(key: &str) -> String {
    format!("osk_{}…{}", &key[4..8], &key[key.len() - 4..])
}

/// A loopback port nothing listens on (just released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_keeps_a_private_key_and_the_data_across_restarts() {
    let sb = Sandbox::new();
    let data = default_data_dir(&sb);
    let served = Served::start(&sb, &["--port", "0"]);
    let key = read_key(&data);
    assert!(key.starts_with("osk_") && key.len() >= 4 + 32, "{key}");
    assert!(key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    #[cfg(unix)]
    {
        assert_eq!(mode(&data.join("server-key")), 0o600);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("opensync.db")), 0o600);
    }
    let banner = served.banner.clone();
    assert!(banner.contains(&masked(&key)), "{banner}");
    assert!(banner.contains("(new, in "), "{banner}");
    assert!(banner.contains(&data.display().to_string()), "{banner}");
    assert!(
        banner.contains("opencode-sync login --local --port "),
        "{banner}"
    );
    assert!(served.url.starts_with("http://127.0.0.1:"), "{banner}");

    let url = served.url.clone();
    let (status, health) = get(&format!("{url}/health"), None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    // Sync needs the key; with it, a session and a message are stored.
    let session = json!({"externalId": "ses_serve1", "title": "Served session",
                         "projectPath": "/p/app", "projectName": "app", "model": "m1",
                         "promptTokens": 12, "completionTokens": 3, "cost": 0.5});
    let (status, _) = post(&format!("{url}/sync/session"), None, &session);
    assert_eq!(status, 401);
    let (status, _) = post(
        &format!("{url}/sync/session"),
        Some("osk_NotTheServersKeyAtAll0000000001"),
        &session,
    );
    assert_eq!(status, 401);
    let (status, body) = post(&format!("{url}/sync/session"), Some(&key), &session);
    assert_eq!(status, 200, "{body}");
    let message = json!({"sessionExternalId": "ses_serve1", "externalId": "msg_serve1",
                         "role": "user", "textContent": "hello served world",
                         "createdAt": 1_750_000_000_000_u64,
                         "parts": [{"type": "text", "content": "hello served world"}]});
    let (status, body) = post(&format!("{url}/sync/message"), Some(&key), &message);
    assert_eq!(status, 200, "{body}");

    // Reads are open to this machine (no key), and the key works too.
    let (status, listed) = get(&format!("{url}/api/sessions"), None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["sessions"][0]["externalId"], "ses_serve1");
    let (status, _) = get(&format!("{url}/api/stats"), Some(&key));
    assert_eq!(status, 200);
    let (_, found) = get(&format!("{url}/api/search?q=served"), None);
    assert_eq!(found["results"][0]["externalId"], "ses_serve1");

    let stopped = served.stop_with("TERM");
    assert_eq!(
        stopped.code,
        Some(0),
        "{}\n{}",
        stopped.stdout,
        stopped.stderr
    );
    assert!(stopped.stdout.contains("stopped"), "{}", stopped.stdout);
    assert_clean_output(&["serve"], &stopped.stdout, &stopped.stderr, &[&key]);

    // Again, on a fixed port this time: the same key, the same data.
    let port = free_port();
    let served = Served::start(&sb, &["--port", &port.to_string()]);
    assert_eq!(served.port(), port);
    assert_eq!(read_key(&data), key, "the key is kept");
    assert!(!served.banner.contains("new, "), "{}", served.banner);
    let url = served.url.clone();
    let (status, got) = get(&format!("{url}/api/sessions/get?id=ses_serve1"), None);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["session"]["title"], "Served session");
    assert_eq!(got["session"]["totalTokens"], 15);
    assert_eq!(got["session"]["messageCount"], 1);
    assert_eq!(got["messages"][0]["textContent"], "hello served world");
    assert_eq!(got["messages"][0]["createdAt"], 1_750_000_000_000_u64);
    assert_eq!(
        got["messages"][0]["parts"][0]["content"],
        "hello served world"
    );

    // Ctrl-C stops it cleanly too.
    let stopped = served.stop_with("INT");
    assert_eq!(
        stopped.code,
        Some(0),
        "{}\n{}",
        stopped.stdout,
        stopped.stderr
    );
    assert_clean_output(&["serve"], &stopped.stdout, &stopped.stderr, &[&key]);
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port released"
    );

    // The key file deleted: a new key, which owns the sessions stored under the old one.
    fs::remove_file(data.join("server-key")).unwrap();
    let served = Served::start(&sb, &["--port", "0"]);
    let new_key = read_key(&data);
    assert_ne!(new_key, key);
    assert!(served.banner.contains("(new, in "), "{}", served.banner);
    assert!(
        served
            .banner
            .contains("sessions stored under the previous key are kept"),
        "{}",
        served.banner
    );
    let url = served.url.clone();
    for reader in [None, Some(new_key.as_str())] {
        let (status, listed) = get(&format!("{url}/api/sessions"), reader);
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["sessions"][0]["externalId"], "ses_serve1");
    }
    let (status, _) = get(&format!("{url}/api/stats"), Some(&key));
    assert_eq!(status, 401, "the old key no longer works");
    let stopped = served.stop_with("TERM");
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert_clean_output(
        &["serve"],
        &stopped.stdout,
        &stopped.stderr,
        &[&key, &new_key],
    );

    // A restart with that key says nothing more about it.
    let served = Served::start(&sb, &["--port", "0"]);
    assert!(!served.banner.contains("previous key"), "{}", served.banner);
    served.stop_with("TERM");
}

#[test]
fn login_local_points_the_cli_at_the_local_server_running_or_not() {
    let sb = Sandbox::new();
    let data = sb.home().join("my data");
    let data_arg = data.to_str().unwrap();
    let port = free_port();
    let port_arg = port.to_string();

    // Not running yet: the key is generated, the credentials saved, and it says how to start.
    let out = sb.run(&["login", "--local", "--port", &port_arg, "--data", data_arg]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let key = read_key(&data);
    assert_clean_output(&["login"], &out.stdout, &out.stderr, &[&key]);
    assert!(out.stdout.contains(&masked(&key)), "{}", out.stdout);
    assert!(out.stdout.contains("No server answers"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "opencode-sync serve --port {port} --data {data_arg}"
        )),
        "{}",
        out.stdout
    );
    #[cfg(unix)]
    assert_eq!(mode(&data.join("server-key")), 0o600);
    let cfg: Value = serde_json::from_str(&fs::read_to_string(sb.config_path()).unwrap()).unwrap();
    assert_eq!(cfg["convexUrl"], format!("http://127.0.0.1:{port}"));
    assert_eq!(cfg["apiKey"], key.as_str());
    #[cfg(unix)]
    assert_eq!(mode(&sb.config_path()), 0o600);

    // The server then uses that very key, and the CLI's status is healthy.
    let served = Served::start(&sb, &["--port", &port_arg, "--data", data_arg]);
    assert!(!served.banner.contains("new, "), "{}", served.banner);
    assert!(
        served
            .banner
            .contains(&format!("--port {port} --data '{data_arg}'")),
        "{}",
        served.banner
    );
    let out = sb.run(&["login", "--local", "--port", &port_arg, "--data", data_arg]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("The local server is up"),
        "{}",
        out.stdout
    );
    assert_clean_output(&["login"], &out.stdout, &out.stderr, &[&key]);
    let status = sb.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert_clean_output(&["status"], &status.stdout, &status.stderr, &[&key]);

    // Another data directory's key is rejected: saved all the same, with a warning.
    let out = sb.run(&["login", "--local", "--port", &port_arg]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("rejects this key"), "{}", out.stderr);

    // --local takes no URL or key of its own.
    let out = sb.run(&["login", "--local", "--url", "https://x.convex.cloud"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = sb.run(&["login", "--port", "7421"]);
    assert_eq!(out.code, 2, "{}", out.stderr);

    let stopped = served.stop_with("TERM");
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
}

#[test]
fn reads_need_the_key_with_require_key() {
    let sb = Sandbox::new();
    let served = Served::start(&sb, &["--port", "0", "--require-key"]);
    let key = read_key(&default_data_dir(&sb));
    assert!(
        served
            .banner
            .contains("read (/api/*) routes need the API key")
    );
    let (status, body) = get(&format!("{}/api/sessions", served.url), None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("Missing Authorization header"))
    );
    let (status, _) = get(&format!("{}/api/sessions", served.url), Some(&key));
    assert_eq!(status, 200);
    assert_eq!(served.stop_with("TERM").code, Some(0));
}

#[test]
fn bad_starts_fail_clearly() {
    let sb = Sandbox::new();

    // A non-loopback host needs --allow-remote (nothing is bound, no key made).
    for host in ["0.0.0.0", "::", "192.168.1.20"] {
        let out = sb.run(&["serve", "--host", host, "--port", "0"]);
        assert_eq!(out.code, 2, "{host}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("--allow-remote"), "{}", out.stderr);
        assert!(
            out.stderr.contains("not a loopback address"),
            "{}",
            out.stderr
        );
    }
    assert!(!default_data_dir(&sb).exists());
    let out = sb.run(&["serve", "--host", "not-an-ip"]);
    assert_eq!(out.code, 2, "{}", out.stderr);

    // A busy port.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sb.run(&["serve", "--port", &port]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("already in use"), "{}", out.stderr);
    assert!(out.stderr.contains("--port"), "{}", out.stderr);
    let key = read_key(&default_data_dir(&sb));
    assert_clean_output(&["serve"], &out.stdout, &out.stderr, &[&key]);
    drop(taken);

    // A data "directory" that is a file; a damaged key file.
    let file = sb.home().join("a-file");
    fs::write(&file, "x").unwrap();
    let out = sb.run(&["serve", "--port", "0", "--data", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("not a directory"), "{}", out.stderr);
    let broken = sb.home().join("broken");
    fs::create_dir(&broken).unwrap();
    fs::write(broken.join("server-key"), "not a key\n").unwrap();
    let out = sb.run(&["serve", "--port", "0", "--data", broken.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("does not hold a usable API key"),
        "{}",
        out.stderr
    );
}

#[test]
fn eight_clients_syncing_1000_messages_each_at_once_lose_nothing() {
    let sb = Sandbox::new();
    let served = Served::start(&sb, &["--port", "0"]);
    let data = default_data_dir(&sb);
    let key = read_key(&data);
    let spec = load::LoadSpec {
        clients: 8,
        messages: 1_000,
        batched: 200,
        tag: "t".to_owned(),
        timeout: Duration::from_secs(60),
    };
    let report = load::run_load(&served.url, &key, &spec);
    assert_eq!(report.failed, 0, "{:#?}", report.failures);
    assert_eq!(report.message_latencies.len(), 8 * 800);
    eprintln!(
        "8 clients x 1,000 messages (800 /sync/message + 4 /sync/batch each, debug build): \
         {} requests in {:.2} s, {:.0} requests/s, /sync/message p50 {:.1} ms, p99 {:.1} ms",
        report.requests,
        report.wall.as_secs_f64(),
        report.requests_per_sec(),
        report.percentile(50.0).as_secs_f64() * 1000.0,
        report.percentile(99.0).as_secs_f64() * 1000.0,
    );
    let stored = load::check_stored(&served.url, &key, &spec).unwrap();
    assert_eq!(stored, 8_000);
    let stats = load::get_json(&served.url, &key, "/api/stats", spec.timeout).unwrap();
    assert_eq!(stats["messageCount"], 8_000);
    assert_eq!(stats["sessionCount"], 8);

    // All of it is still there after a restart.
    let stopped = served.stop_with("TERM");
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let served = Served::start(&sb, &["--port", "0"]);
    assert_eq!(load::check_stored(&served.url, &key, &spec).unwrap(), 8_000);
    assert_eq!(served.stop_with("TERM").code, Some(0));
}
