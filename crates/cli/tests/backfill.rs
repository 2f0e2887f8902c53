//! `opencode-sync sync` (backfill): the built binary reads a made-up OpenCode history
//! (an `opencode.db` with the real schema, or the older JSON tree) and sends it to the
//! contract server over loopback; what the server stores is compared with the source.
//! Every command's output is checked for the full API key and for panics.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

#[path = "support/opencode_fixture.rs"]
mod opencode_fixture;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opencode_fixture::Fixture;
use opencode_sync_contract_server::{Fault, ServerHandle, ServerOptions};
use serde_json::{Value, json};

const KEY: &str = "osk_TestKeyAbCdEfGhIjKlMnOpQrStUv0001";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A home of its own (config, state and OpenCode data under it) and a server.
struct Env {
    dir: tempfile::TempDir,
    server: ServerHandle,
    /// A fake token that must never reach the server (redaction is on by default).
    secret: String,
}

fn random_alnum(n: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| ALNUM[fastrand::usize(..ALNUM.len())] as char)
        .collect()
}

impl Env {
    fn new() -> Self {
        let server = ServerHandle::start(ServerOptions::default().with_api_key(KEY)).unwrap();
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
            server,
            secret: format!("ghp_{}", random_alnum(36)),
        };
        let out = env.run_with_stdin(
            &["login", "--url", &env.server.url(), "--api-key-stdin"],
            Some(&format!("{KEY}\n")),
        );
        assert_eq!(out.code, 0, "{}", out.all());
        // Forget login's own request: tests count what `sync` sends.
        env.server.controller().clear_requests();
        env
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `$XDG_DATA_HOME/opencode` (the default place `sync` reads).
    fn data_dir(&self) -> PathBuf {
        self.home().join("data/opencode")
    }

    fn db(&self) -> PathBuf {
        self.data_dir().join("opencode.db")
    }

    fn state_dir(&self) -> PathBuf {
        self.home().join("state/opencode-sync")
    }

    fn fixture(&self, sessions: usize, turns: usize) -> Fixture {
        Fixture::generate(sessions, turns, Some(&self.secret))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opencode-sync"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("XDG_CONFIG_HOME", self.home().join("config"))
            .env("XDG_STATE_HOME", self.home().join("state"))
            .env("XDG_DATA_HOME", self.home().join("data"))
            .current_dir(self.home())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        self.finish(args, child)
    }

    fn finish(&self, args: &[&str], child: Child) -> Output {
        let out = child.wait_with_output().unwrap();
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !output.all().contains(KEY),
            "`opencode-sync {}` printed the full API key:\n{}",
            args.join(" "),
            output.all()
        );
        assert!(
            !output.stderr.contains("panicked"),
            "panic: {}",
            output.stderr
        );
        output
    }

    fn sync(&self, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["sync", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let v = out.json();
        (out, v)
    }

    /// The user's sessions as stored, each with its messages and parts.
    fn stored(&self) -> Vec<Value> {
        let dump = self.server.dump().unwrap();
        assert!(
            !dump.to_string().contains(&self.secret),
            "a secret reached the server"
        );
        dump["users"][0]["sessions"].as_array().unwrap().clone()
    }

    /// Requests to `/sync/*` so far, as `(method, path, status)`.
    fn sync_requests(&self) -> Vec<(String, String, u16)> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/sync/"))
            .map(|r| (r.method.clone(), r.path.clone(), r.status))
            .collect()
    }

    fn count(&self, path: &str) -> usize {
        self.sync_requests()
            .iter()
            .filter(|(_, p, _)| p == path)
            .count()
    }

    fn record_files(&self) -> Vec<PathBuf> {
        fs::read_dir(self.state_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn assert_ok(out: &Output) {
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn sqlite_history_is_stored_exactly_then_only_changes_are_sent() {
    let env = Env::new();
    let mut fx = env.fixture(6, 2);
    fx.write_db(&env.db());

    // First run: everything, exactly as in the store.
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["source"]["kind"], "sqlite");
    assert_eq!(v["sessions"]["sent"], 6);
    assert_eq!(v["messages"]["sent"], fx.message_count());
    assert_eq!(v["toolCalls"], fx.tool_call_count());
    fx.compare(&env.stored()).unwrap();
    assert!(
        env.sync_requests()
            .iter()
            .all(|(_, p, s)| *s == 200 && p != "/sync/batch"),
        "{:?}",
        env.sync_requests()
    );
    // Each session went before its messages.
    let order: Vec<String> = env.sync_requests().into_iter().map(|r| r.1).collect();
    assert_eq!(order[0], "/sync/session");
    let records = env.record_files();
    assert_eq!(records.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&records[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Second run: nothing at all goes out.
    let before = env.sync_requests().len();
    let out = env.run(&["sync"]);
    assert_ok(&out);
    assert!(
        out.stdout.contains("Nothing to send: 6 sessions")
            && out.stdout.contains("6 unchanged since the last sync"),
        "{}",
        out.stdout
    );
    assert_eq!(env.sync_requests().len(), before);

    // One session gets a new turn (as OpenCode would write it): only it is sent, and
    // only its new messages (plus the newest old one, at the boundary).
    let updated_at = |env: &Env| -> Vec<(String, Value)> {
        env.stored()
            .iter()
            .map(|s| {
                (
                    s["externalId"].as_str().unwrap().to_owned(),
                    s["updatedAt"].clone(),
                )
            })
            .collect()
    };
    let untouched_before = updated_at(&env);
    let changed = fx.sessions[2].clone();
    let at = changed.updated + 60_000;
    fx.sessions[2].add_turn(at, None);
    fx.update_db(&env.db(), &fx.sessions[2]);
    let before = env.sync_requests().len();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 1, "{v}");
    assert_eq!(v["sessions"]["skipped"]["unchanged"], 5);
    let new_requests = &env.sync_requests()[before..];
    assert_eq!(
        new_requests
            .iter()
            .filter(|(_, p, _)| p == "/sync/session")
            .count(),
        1
    );
    let messages_sent = v["messages"]["sent"].as_u64().unwrap();
    assert!(
        (3..=4).contains(&messages_sent),
        "only the new turn (and the boundary message): {v}"
    );
    fx.compare(&env.stored()).unwrap();
    for ((id, after), (_, was)) in updated_at(&env).iter().zip(&untouched_before) {
        if *id != changed.id {
            assert_eq!(after, was, "session {id} was touched");
        }
    }
}

#[test]
fn json_tree_history_is_stored_exactly() {
    let env = Env::new();
    let fx = env.fixture(5, 2);
    let storage = env.home().join("old-opencode/storage");
    fx.write_tree(&storage);
    let data_dir = storage.parent().unwrap().to_str().unwrap().to_owned();
    let (out, v) = env.sync(&["--data-dir", &data_dir]);
    assert_ok(&out);
    assert_eq!(v["source"]["kind"], "json");
    assert_eq!(v["sessions"]["sent"], 5);
    fx.compare(&env.stored()).unwrap();
    // The storage directory itself works too, and nothing is sent again.
    let before = env.sync_requests().len();
    let (out, v) = env.sync(&["--data-dir", storage.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 0, "{v}");
    assert_eq!(env.sync_requests().len(), before);
}

#[test]
fn all_skips_what_the_server_already_has() {
    let env = Env::new();
    let fx = env.fixture(6, 1);
    fx.write_db(&env.db());
    // Two sessions reach the server first; then the local record is lost.
    let (out, _) = env.sync(&[
        "--session",
        &fx.sessions[0].id,
        "--session",
        &fx.sessions[1].id,
    ]);
    assert_ok(&out);
    for f in env.record_files() {
        fs::remove_file(f).unwrap();
    }
    let before = env.count("/sync/session");
    let (out, v) = env.sync(&["--all"]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["skipped"]["onServer"], 2, "{v}");
    assert_eq!(v["sessions"]["sent"], 4);
    assert_eq!(env.count("/sync/session") - before, 4);
    assert_eq!(env.count("/sync/sessions/list"), 1);
    fx.compare(&env.stored()).unwrap();
    // The skipped ones are recorded too: a plain run now has nothing to send.
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 0, "{v}");
    // --force sends everything again, and the server still holds each message once.
    let (out, v) = env.sync(&["--force"]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 6);
    fx.compare(&env.stored()).unwrap();
}

#[test]
fn dry_run_sends_and_records_nothing() {
    let env = Env::new();
    let fx = env.fixture(4, 1);
    fx.write_db(&env.db());
    let out = env.run(&["sync", "--dry-run"]);
    assert_ok(&out);
    assert!(
        out.stdout.contains(&format!(
            "Would send 4 sessions ({} messages, {} tool calls)",
            fx.message_count(),
            fx.tool_call_count()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&fx.sessions[0].id), "{}", out.stdout);
    assert!(out.stdout.contains("Dry run: nothing was sent."));
    let (out, v) = env.sync(&["--dry-run"]);
    assert_ok(&out);
    assert_eq!(v["plan"].as_array().unwrap().len(), 4);
    assert_eq!(v["plan"][0]["reason"], "new");
    assert!(env.sync_requests().is_empty(), "{:?}", env.sync_requests());
    assert!(env.record_files().is_empty());
    // And before login too.
    let out = env.run(&["logout"]);
    assert_ok(&out);
    let out = env.run(&["sync", "--dry-run"]);
    assert_ok(&out);
    assert!(
        out.stdout.contains("Would send 4 sessions"),
        "{}",
        out.stdout
    );
}

#[test]
fn filters_select_sessions() {
    let env = Env::new();
    let fx = env.fixture(10, 1);
    fx.write_db(&env.db());
    let to_send = |args: &[&str]| {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let (out, v) = env.sync(&all);
        assert_ok(&out);
        v["sessions"]["toSend"].as_u64().unwrap()
    };
    assert_eq!(to_send(&[]), 10);
    assert_eq!(to_send(&["--session", &fx.sessions[7].id]), 1);
    // Even sessions are in alpha (one of them in alpha/sub), odd ones in beta.
    assert_eq!(to_send(&["--project", "/work/fixture/alpha"]), 5);
    assert_eq!(to_send(&["--project", "/work/fixture/alpha/sub"]), 1);
    assert_eq!(to_send(&["--project", "/work/fixture/beta/"]), 5);
    // Sessions are an hour apart from 2025-06-15T15:06:40Z.
    assert_eq!(to_send(&["--since", "2025-06-15T19:00:00Z"]), 6);
    assert_eq!(to_send(&["--since", "2030-01-01"]), 0);
    let out = env.run(&["sync", "--since", "last tuesday"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("expected a date"), "{}", out.stderr);
    // An unknown id is a failure, named.
    let out = env.run(&["sync", "--dry-run", "--session", "ses_nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("ses_nope"), "{}", out.stdout);
}

#[test]
fn a_rejected_key_stops_everything_with_a_clear_message() {
    let env = Env::new();
    let fx = env.fixture(8, 1);
    fx.write_db(&env.db());
    env.server.revoke_key(KEY).unwrap();
    let out = env.run(&["sync"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("API key rejected by 127.0.0.1: Invalid API key")
            && out.stderr.contains("opencode-sync login"),
        "{}",
        out.all()
    );
    assert!(
        env.sync_requests().len() <= 6,
        "at most one request per thread: {:?}",
        env.sync_requests()
    );
    // --all stops at the session list the same way.
    let out = env.run(&["sync", "--all"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("API key rejected by 127.0.0.1") && !out.stdout.contains("Sent"),
        "{}",
        out.all()
    );
    // Nothing was recorded as synced: with the key back, everything goes.
    env.server.add_key(KEY).unwrap();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 8);
    fx.compare(&env.stored()).unwrap();
}

#[test]
fn transient_faults_are_retried_to_completion() {
    let env = Env::new();
    let fx = env.fixture(6, 2);
    fx.write_db(&env.db());
    env.server
        .set_faults(vec![
            Fault::status_retry_after(429, 7, 1).with_limit(3),
            Fault::status(500, 5),
        ])
        .unwrap();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 6);
    fx.compare(&env.stored()).unwrap();
    let statuses: Vec<u16> = env.sync_requests().iter().map(|r| r.2).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    assert!(statuses.iter().filter(|s| **s == 500).count() >= 5);
}

#[test]
fn a_server_that_keeps_failing_is_retried_for_the_whole_timeout() {
    let env = Env::new();
    let fx = env.fixture(1, 1);
    fx.write_db(&env.db());
    env.server.set_faults(vec![Fault::status(503, 1)]).unwrap();
    let started = Instant::now();
    let out = env.run(&["sync", "--timeout", "3"]);
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("could not deliver to http://127.0.0.1")
            && out.stderr.contains("for 3 s"),
        "{}",
        out.all()
    );
    // The last attempt is made when the 3 s are up, not a backoff step before.
    assert!(took.as_secs_f64() >= 2.9, "gave up after {took:?}");
    assert!(took.as_secs_f64() < 15.0, "gave up after {took:?}");
    let last = env.sync_requests().len();
    assert!(last >= 3, "{last} attempts in 3 s");
    assert!(
        env.record_files()
            .iter()
            .all(|f| fs::read_to_string(f).unwrap().is_empty())
    );
}

#[test]
fn refused_messages_are_reported_and_the_rest_is_delivered() {
    let env = Env::new();
    let mut fx = env.fixture(3, 1);
    // A message over Convex's 1 MiB document limit even after truncation: its text.
    let huge = "z".repeat(300 * 1024);
    for p in fx.sessions[1].messages[0].parts.iter_mut() {
        if p.data["type"] == "text" && p.data["synthetic"] != true {
            p.data["text"] = Value::String(huge.clone());
        }
    }
    let first = fx.sessions[1].messages[0].parts[0].clone();
    fx.sessions[1].messages[0].parts.extend((0..4).map(|k| {
        let mut extra = first.clone();
        extra.id = format!("{}_x{k}", extra.id);
        extra
    }));
    fx.write_db(&env.db());
    let (out, v) = env.sync(&[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(v["sessions"]["failed"], 1, "{v}");
    assert_eq!(v["messages"]["failed"], 1);
    let failure = &v["failures"][0];
    assert_eq!(failure["messageId"], fx.sessions[1].messages[0].id.as_str());
    assert!(
        failure["reason"].as_str().unwrap().contains("too large"),
        "{failure}"
    );
    assert!(out.stderr.contains("failed: "), "{}", out.stderr);
    // The other sessions (and the failed session's other messages) were delivered; the
    // failed one is tried again next time.
    let stored = env.stored();
    assert_eq!(stored.len(), 3);
    let (out, v) = env.sync(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(v["sessions"]["toSend"], 1, "{v}");
}

#[test]
fn interrupted_runs_exit_130_and_the_next_run_resumes_without_duplicates() {
    let env = Env::new();
    let fx = env.fixture(8, 3);
    fx.write_db(&env.db());
    env.server.set_faults(vec![Fault::slow(120)]).unwrap();
    let child = env.command(&["sync"]).stdin(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Interrupt once some sessions are complete (and recorded), not all.
    let recorded = |env: &Env| {
        env.record_files()
            .iter()
            .map(|f| fs::read_to_string(f).unwrap_or_default().lines().count())
            .sum::<usize>()
            .saturating_sub(1)
    };
    while recorded(&env) == 0 {
        assert!(Instant::now() < deadline, "the sync made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped_at = Instant::now();
    let out = env.finish(&["sync"], child);
    assert_eq!(out.code, 130, "{}", out.all());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "stops within the requests in flight"
    );
    assert!(
        out.stdout.contains("Run `opencode-sync sync` again"),
        "{}",
        out.stdout
    );
    let partial: usize = env
        .stored()
        .iter()
        .map(|s| s["messageCount"].as_u64().unwrap() as usize)
        .sum();
    assert!(partial < fx.message_count(), "the run was cut short");

    env.server.clear_faults().unwrap();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    let sent = v["sessions"]["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < 8, "resumes where it stopped: {v}");
    assert_eq!(
        v["sessions"]["skipped"]["unchanged"].as_u64().unwrap() + sent,
        8
    );
    fx.compare(&env.stored()).unwrap();
}

#[test]
fn reads_while_opencode_writes_to_the_store() {
    let env = Env::new();
    let fx = env.fixture(6, 2);
    fx.write_db(&env.db());
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, db) = (Arc::clone(&stop), Arc::clone(&written), env.db());
        let mut more = Fixture::generate(400, 1, None);
        for s in &mut more.sessions {
            s.id = s.id.replace("fixture", "written");
            for m in &mut s.messages {
                m.id = m.id.replace("fixture", "written");
            }
        }
        std::thread::spawn(move || {
            let mut conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            for s in &more.sessions {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let tx = conn.transaction().unwrap();
                tx.execute(
                    "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
                     VALUES (?1, ?2, 's', ?3, ?4, '1.18.33', ?5, ?6)",
                    rusqlite::params![s.id, more.projects[s.project].id, s.directory, s.title, s.created, s.updated],
                )
                .unwrap();
                for m in &s.messages {
                    tx.execute(
                        "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                        rusqlite::params![m.id, s.id, m.created, m.updated, m.data(&s.directory).to_string()],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
                written.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = env.run(&["sync"]);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_ok(&out);
    assert!(written.load(Ordering::SeqCst) > 0);
    // What was written meanwhile goes with the next run; the store is intact.
    let (out, _) = env.sync(&[]);
    assert_ok(&out);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let sessions: i64 = conn
        .query_row("SELECT count(*) FROM session", [], |r| r.get(0))
        .unwrap();
    assert_eq!(env.stored().len() as i64, sessions);
}

#[test]
fn a_cost_only_change_right_after_a_sync_is_confirmed_after_the_dedup_window() {
    let env = Env::new();
    let mut fx = env.fixture(2, 1);
    fx.write_db(&env.db());
    let (out, _) = env.sync(&[]);
    assert_ok(&out);
    // Within 10 s of that sync, only the session's cost (and time) change: the server
    // would skip that update, so the CLI sends it again once the window has passed.
    fx.sessions[0].extra_cost = 0.5;
    fx.sessions[0].updated += 1;
    fx.update_db(&env.db(), &fx.sessions[0]);
    let before = env.count("/sync/session");
    let started = Instant::now();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 1);
    assert_eq!(
        env.count("/sync/session") - before,
        2,
        "sent, then confirmed"
    );
    assert!(started.elapsed() >= Duration::from_secs(10));
    fx.compare(&env.stored()).unwrap();
}

#[test]
fn flush_then_backfill_when_both_are_asked() {
    let env = Env::new();
    let fx = env.fixture(2, 1);
    fx.write_db(&env.db());
    let (out, v) = env.sync(&["--flush", "--all"]);
    assert_ok(&out);
    assert_eq!(v["flush"]["ok"], true, "{v}");
    assert_eq!(v["backfill"]["sessions"]["sent"], 2, "{v}");
    fx.compare(&env.stored()).unwrap();
    // --flush alone touches only the outbox.
    let out = env.run(&["sync", "--flush"]);
    assert_ok(&out);
    assert!(
        out.stdout.contains("Delivered 0 queued records"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Nothing to send"), "{}", out.stdout);
    // --dry-run is for the backfill only.
    assert_eq!(env.run(&["sync", "--flush", "--dry-run"]).code, 2);
}

/// Runs SQL against the store as another writer would (without OpenCode's checks).
fn store_exec(db: &Path, sql: &str, params: impl rusqlite::Params) {
    open_store(db).execute(sql, params).unwrap();
}

fn open_store(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    conn
}

/// `(table, id or session id, skipped)` of each note in a `--json` summary.
fn row_notes(v: &Value) -> Vec<(String, String, bool)> {
    let mut notes: Vec<_> = v["rows"]["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows.notes: {v}"))
        .iter()
        .map(|n| {
            let id = n["id"].as_str().or(n["sessionId"].as_str()).unwrap_or("");
            (
                n["table"].as_str().unwrap().to_owned(),
                id.to_owned(),
                n["skipped"].as_bool().unwrap(),
            )
        })
        .collect();
    notes.sort();
    notes
}

#[test]
fn odd_rows_cost_only_themselves_and_are_named_once_on_every_run() {
    let env = Env::new();
    let fx = env.fixture(7, 1);
    let db = env.db();
    fx.write_db_with(&db, &opencode_fixture::loose_schema());
    let s = &fx.sessions;
    // Wrong-typed session columns: a text and a NULL time, a non-UTF-8 title, a text cost.
    store_exec(
        &db,
        "UPDATE session SET time_created = 'yesterday' WHERE id = ?1",
        [&s[1].id],
    );
    store_exec(
        &db,
        "UPDATE session SET time_created = NULL WHERE id = ?1",
        [&s[2].id],
    );
    store_exec(
        &db,
        "UPDATE session SET title = CAST(X'466FFF6F' AS TEXT) WHERE id = ?1",
        [&s[3].id],
    );
    store_exec(
        &db,
        "UPDATE session SET cost = 'free' WHERE id = ?1",
        [&s[4].id],
    );
    // Session 5: messages whose data is JSON of another shape (one with a part, which
    // used to land in a session ""), a binary part, and a message whose parts hold a
    // non-UTF-8 byte and a model's half emoji (a lone surrogate escape).
    let s5 = &s[5].id;
    let msg = "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, 1, 1, ?3)";
    let part = "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, 1, 1, ?4)";
    store_exec(
        &db,
        msg,
        ["msg_shape", s5, r#"{"role": 5, "time": {"created": 1}}"#],
    );
    store_exec(
        &db,
        part,
        [
            "prt_shape",
            "msg_shape",
            s5,
            r#"{"type": "text", "text": "lost"}"#,
        ],
    );
    store_exec(&db, msg, ["msg_array", s5, "[1, 2]"]);
    let good_message = &s[5].messages[0].id;
    let conn = open_store(&db);
    conn.execute(
        part,
        rusqlite::params!["prt_blob", good_message, s5, vec![0xffu8, 0x00, 0x9c, 0x7b]],
    )
    .unwrap();
    let created = s[5].updated - 10;
    store_exec(
        &db,
        msg,
        [
            "msg_odd",
            s5,
            &format!(r#"{{"role": "user", "time": {{"created": {created}}}}}"#),
        ],
    );
    conn.execute(
        "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_odd_1', 'msg_odd', ?1, 1, 1, CAST(?2 AS TEXT))",
        rusqlite::params![s5, b"{\"type\": \"text\", \"text\": \"caf\xff!\"}".to_vec()],
    )
    .unwrap();
    store_exec(
        &db,
        part,
        [
            "prt_odd_2",
            "msg_odd",
            s5,
            r#"{"type": "text", "text": "a\ud83d b"}"#,
        ],
    );
    // Messages of no session.
    store_exec(
        &db,
        "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES ('msg_no_session', NULL, 1, 1, '{\"role\": \"user\"}')",
        [],
    );
    store_exec(&db, msg, ["msg_empty_session", "", r#"{"role": "user"}"#]);
    store_exec(
        &db,
        msg,
        ["msg_gone_session", "ses_gone", r#"{"role": "user"}"#],
    );
    store_exec(
        &db,
        part,
        [
            "prt_gone",
            "msg_gone_session",
            "ses_gone",
            r#"{"type": "text", "text": "x"}"#,
        ],
    );
    drop(conn);

    // A bad row does not block a run about another session.
    let (out, v) = env.sync(&["--dry-run", "--session", &s[0].id]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 1, "{v}");

    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["sessions"]["sent"], 7, "{v}");
    let expected = vec![
        ("message".to_owned(), "msg_array".to_owned(), true),
        ("message".to_owned(), "msg_empty_session".to_owned(), true),
        ("message".to_owned(), "msg_gone_session".to_owned(), true),
        ("message".to_owned(), "msg_no_session".to_owned(), true),
        ("message".to_owned(), "msg_shape".to_owned(), true),
        ("part".to_owned(), "prt_blob".to_owned(), true),
        ("part".to_owned(), "prt_odd_1".to_owned(), false),
        ("session".to_owned(), s[1].id.clone(), false),
        ("session".to_owned(), s[2].id.clone(), false),
        ("session".to_owned(), s[3].id.clone(), false),
        ("session".to_owned(), s[4].id.clone(), false),
    ];
    assert_eq!(row_notes(&v), expected, "{v}");
    assert_eq!(v["rows"]["skipped"], 6, "{v}");

    // Every good session and message arrived; no phantom session.
    let stored = env.stored();
    let mut ids: Vec<&str> = stored
        .iter()
        .map(|s| s["externalId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, s.iter().map(|s| s.id.as_str()).collect::<Vec<_>>());
    let by_id = |id: &str| {
        stored
            .iter()
            .find(|v| v["externalId"] == id)
            .unwrap()
            .clone()
    };
    for session in s {
        let stored = by_id(&session.id);
        let messages: Vec<&str> = stored["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["externalId"].as_str().unwrap())
            .collect();
        for m in &session.messages {
            assert!(
                messages.contains(&m.id.as_str()),
                "{} lacks {}",
                session.id,
                m.id
            );
        }
    }
    let untouched = Fixture {
        projects: fx.projects.clone(),
        sessions: vec![s[0].clone(), s[6].clone()],
    };
    let pick: Vec<Value> = stored
        .iter()
        .filter(|v| v["externalId"] == s[0].id.as_str() || v["externalId"] == s[6].id.as_str())
        .cloned()
        .collect();
    untouched.compare(&pick).unwrap();
    // A wrong-typed column cost that field only.
    assert_eq!(
        by_id(&s[1].id)["createdAt"],
        s[1].updated,
        "from time_updated"
    );
    assert_eq!(by_id(&s[1].id)["title"], s[1].title.as_str());
    assert_eq!(by_id(&s[2].id)["createdAt"], s[2].updated);
    assert_eq!(by_id(&s[3].id)["title"], "Fo\u{fffd}o");
    assert_eq!(by_id(&s[3].id)["createdAt"], s[3].created);
    let cost = &by_id(&s[4].id)["cost"];
    assert!(cost.is_null() || cost == 0.0, "{cost}");
    assert_eq!(by_id(&s[4].id)["createdAt"], s[4].created);
    // The odd message arrived, U+FFFD in place of what was not text.
    let s5_stored = by_id(s5);
    let odd = s5_stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["externalId"] == "msg_odd")
        .unwrap_or_else(|| panic!("msg_odd not stored: {s5_stored}"))
        .clone();
    assert_eq!(odd["textContent"], "caf\u{fffd}!\n\na\u{fffd} b");
    assert_eq!(
        s5_stored["messages"].as_array().unwrap().len(),
        s[5].messages.len() + 1
    );

    // A second run sends nothing new and names the same rows, once each.
    let before = env.sync_requests().len();
    let out = env.run(&["sync"]);
    assert_ok(&out);
    assert!(out.stdout.contains("Nothing to send"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Not read whole: 11 rows"),
        "{}",
        out.stdout
    );
    for (_, id, skipped) in &expected {
        let lines: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| {
                l.contains(&format!(" {id}:"))
                    || l.trim_start().starts_with(&format!("{id}: session:"))
            })
            .collect();
        assert_eq!(lines.len(), 1, "{id} named once:\n{}", out.stdout);
        assert_eq!(lines[0].contains(": skipped: "), *skipped, "{}", lines[0]);
    }
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(row_notes(&v), expected, "{v}");
    assert_eq!(env.sync_requests().len(), before, "nothing sent again");
}

#[test]
fn a_binary_record_file_costs_only_its_own_lines() {
    let env = Env::new();
    let fx = env.fixture(3, 1);
    fx.write_db(&env.db());
    let (out, _) = env.sync(&[]);
    assert_ok(&out);
    let records = env.record_files();
    assert_eq!(records.len(), 1);
    fs::write(&records[0], b"\xff\xfe\x00\x01binary\n\x89PNG\r\n\x1a\n").unwrap();
    let (out, v) = env.sync(&["--session", &fx.sessions[1].id]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 1, "{v}");
    assert!(out.stderr.contains("unreadable lines"), "{}", out.stderr);
    // The file was rewritten without them, holding the session just sent.
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert!(!out.stderr.contains("unreadable"), "{}", out.stderr);
    assert_eq!(v["sessions"]["skipped"]["unchanged"], 1, "{v}");
    assert_eq!(v["sessions"]["sent"], 2, "{v}");
    fx.compare(&env.stored()).unwrap();
}

#[test]
fn a_database_without_a_part_table_is_named_as_such() {
    let env = Env::new();
    let fx = env.fixture(2, 1);
    fx.write_db(&env.db());
    store_exec(&env.db(), "DROP TABLE part", []);
    let out = env.run(&["sync"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("has no `part` table: is this OpenCode's opencode.db?"),
        "{}",
        out.stderr
    );
    assert!(env.sync_requests().is_empty());
}

#[test]
fn odd_files_in_the_json_tree_cost_only_themselves() {
    let env = Env::new();
    let fx = env.fixture(3, 1);
    let storage = env.home().join("old-opencode/storage");
    fx.write_tree(&storage);
    let s0 = &fx.sessions[0].id;
    let messages = storage.join("message").join(s0);
    // JSON of another shape, with a part; a binary file; a session file that is no JSON.
    fs::write(
        messages.join("msg_shape.json"),
        r#"{"role": 5, "sessionID": 7}"#,
    )
    .unwrap();
    fs::create_dir_all(storage.join("part/msg_shape")).unwrap();
    fs::write(
        storage.join("part/msg_shape/prt_x.json"),
        r#"{"type": "text", "text": "lost"}"#,
    )
    .unwrap();
    fs::write(messages.join("msg_binary.json"), b"\xff\x00\x9c").unwrap();
    let project = &fx.projects[0].id;
    fs::write(
        storage.join(format!("session/{project}/ses_broken.json")),
        "{not json",
    )
    .unwrap();
    let (out, v) = env.sync(&["--data-dir", storage.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(
        row_notes(&v),
        vec![
            ("message".to_owned(), "msg_binary".to_owned(), true),
            ("message".to_owned(), "msg_shape".to_owned(), true),
            ("session".to_owned(), "ses_broken".to_owned(), true),
        ],
        "{v}"
    );
    fx.compare(&env.stored()).unwrap();
}

/// One odd row in an otherwise good store: what to write, and the note it gets
/// (`None`: nothing to name).
struct OddRow {
    name: &'static str,
    write: fn(&Path, &Fixture),
    note: Option<(&'static str, &'static str, bool)>,
    /// Checks what the server holds of the odd session (the second one).
    check: fn(&Value, &Fixture),
}

#[test]
fn each_odd_row_alone_costs_only_itself() {
    let cases = [
        OddRow {
            name: "text time_created",
            write: |db, fx| {
                store_exec(
                    db,
                    "UPDATE session SET time_created = '2025-06-15' WHERE id = ?1",
                    [&fx.sessions[1].id],
                );
            },
            note: Some(("session", "ses_00001fixture", false)),
            check: |s, fx| assert_eq!(s["createdAt"], fx.sessions[1].updated),
        },
        OddRow {
            name: "NULL time_created",
            write: |db, fx| {
                store_exec(
                    db,
                    "UPDATE session SET time_created = NULL WHERE id = ?1",
                    [&fx.sessions[1].id],
                );
            },
            note: Some(("session", "ses_00001fixture", false)),
            check: |s, fx| assert_eq!(s["createdAt"], fx.sessions[1].updated),
        },
        OddRow {
            name: "text cost",
            write: |db, fx| {
                store_exec(
                    db,
                    "UPDATE session SET cost = 'n/a' WHERE id = ?1",
                    [&fx.sessions[1].id],
                );
            },
            note: Some(("session", "ses_00001fixture", false)),
            check: |s, fx| {
                assert_eq!(s["title"], fx.sessions[1].title.as_str());
                assert!(s["cost"].is_null() || s["cost"] == 0.0, "{}", s["cost"]);
            },
        },
        OddRow {
            name: "non-UTF-8 title",
            write: |db, fx| {
                store_exec(
                    db,
                    "UPDATE session SET title = CAST(X'61FE62' AS TEXT) WHERE id = ?1",
                    [&fx.sessions[1].id],
                );
            },
            note: Some(("session", "ses_00001fixture", false)),
            check: |s, _| assert_eq!(s["title"], "a\u{fffd}b"),
        },
        OddRow {
            name: "message data of another shape, with a part",
            write: |db, fx| {
                let s = &fx.sessions[1].id;
                store_exec(
                    db,
                    "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES ('msg_x', ?1, 1, 1, '{\"role\": [], \"id\": 3}')",
                    [s],
                );
                store_exec(
                    db,
                    "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_x', 'msg_x', ?1, 1, 1, '{\"type\": \"text\", \"text\": \"t\"}')",
                    [s],
                );
            },
            note: Some(("message", "msg_x", true)),
            check: |_, _| {},
        },
        OddRow {
            name: "message without a session",
            write: |db, _| {
                store_exec(
                    db,
                    "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES ('msg_x', NULL, 1, 1, '{\"role\": \"user\"}')",
                    [],
                );
                store_exec(
                    db,
                    "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_x', 'msg_x', '', 1, 1, '{\"type\": \"text\", \"text\": \"t\"}')",
                    [],
                );
            },
            note: Some(("message", "msg_x", true)),
            check: |_, _| {},
        },
        OddRow {
            name: "non-UTF-8 part",
            write: |db, fx| {
                let m = &fx.sessions[1].messages[0];
                open_store(db)
                    .execute(
                        "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_utf8', ?1, ?2, 1, 1, CAST(?3 AS TEXT))",
                        rusqlite::params![m.id, fx.sessions[1].id, b"{\"type\": \"reasoning\", \"text\": \"r\xff\"}".to_vec()],
                    )
                    .unwrap();
            },
            note: Some(("part", "prt_utf8", false)),
            check: |_, _| {},
        },
        OddRow {
            name: "blob part",
            write: |db, fx| {
                let m = &fx.sessions[1].messages[0];
                open_store(db)
                    .execute(
                        "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_blob', ?1, ?2, 1, 1, ?3)",
                        rusqlite::params![m.id, fx.sessions[1].id, vec![0x00u8, 0xff, 0x10]],
                    )
                    .unwrap();
            },
            note: Some(("part", "prt_blob", true)),
            check: |_, _| {},
        },
        OddRow {
            name: "a lone surrogate escape",
            write: |db, fx| {
                let s = &fx.sessions[1];
                let data = format!(
                    r#"{{"role": "user", "time": {{"created": {}}}}}"#,
                    s.updated - 1
                );
                store_exec(
                    db,
                    "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES ('msg_half', ?1, 1, 1, ?2)",
                    [&s.id, &data],
                );
                store_exec(
                    db,
                    "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES ('prt_half', 'msg_half', ?1, 1, 1, ?2)",
                    [&s.id, r#"{"type": "text", "text": "a\ud83d b"}"#],
                );
            },
            note: None,
            check: |s, _| {
                let half = s["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["externalId"] == "msg_half");
                assert_eq!(
                    half.map(|m| m["textContent"].clone()),
                    Some(Value::from("a\u{fffd} b")),
                    "{s}"
                );
            },
        },
    ];
    for case in cases {
        let env = Env::new();
        let fx = env.fixture(2, 1);
        fx.write_db_with(&env.db(), &opencode_fixture::loose_schema());
        (case.write)(&env.db(), &fx);
        let (out, v) = env.sync(&[]);
        assert_eq!(out.code, 0, "{}: {}", case.name, out.all());
        // Every good session and message arrived, and nothing else.
        let stored = env.stored();
        let mut ids: Vec<&str> = stored
            .iter()
            .map(|s| s["externalId"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            ["ses_00000fixture", "ses_00001fixture"],
            "{}",
            case.name
        );
        Fixture {
            projects: fx.projects.clone(),
            sessions: vec![fx.sessions[0].clone()],
        }
        .compare(
            &stored
                .iter()
                .filter(|s| s["externalId"] == "ses_00000fixture")
                .cloned()
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let odd = stored
            .iter()
            .find(|s| s["externalId"] == "ses_00001fixture")
            .unwrap();
        for m in &fx.sessions[1].messages {
            assert!(
                odd["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["externalId"] == m.id.as_str()),
                "{}: {} lacks {}",
                case.name,
                fx.sessions[1].id,
                m.id
            );
        }
        (case.check)(odd, &fx);
        let want: Vec<(String, String, bool)> = case
            .note
            .iter()
            .map(|(t, id, skipped)| ((*t).to_owned(), (*id).to_owned(), *skipped))
            .collect();
        assert_eq!(row_notes(&v), want, "{}: {v}", case.name);
    }
}

/// A new key for the same account (the sessions stay the user's) must not send the whole
/// history again: the server says which sessions it has, the old key's records which of
/// them changed since.
#[test]
fn a_key_rotation_sends_only_what_the_server_lacks_and_what_changed() {
    const NEW_KEY: &str = "osk_TestKeyZyXwVuTsRqPoNmLkJiHgFe0002";
    let db = tempfile::tempdir().unwrap();
    let start = |key: &str, bind: Option<std::net::SocketAddr>| {
        let mut opts = ServerOptions::default()
            .with_api_key(key)
            .with_db(db.path().join("server.db"));
        // The one user takes a new key, as `opencode-sync serve` does.
        opts.sole_owner = true;
        if let Some(bind) = bind {
            opts.bind = bind;
        }
        ServerHandle::start(opts).unwrap()
    };
    let server = start(KEY, None);
    let addr: std::net::SocketAddr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        server,
        secret: format!("ghp_{}", random_alnum(36)),
    };
    let login = |env: &Env, key: &str| {
        let out = env.run_with_stdin(
            &["login", "--url", &env.server.url(), "--api-key-stdin"],
            Some(&format!("{key}\n")),
        );
        assert_eq!(out.code, 0, "{}", out.all());
    };
    login(&env, KEY);
    let mut fx = env.fixture(6, 2);
    fx.write_db(&env.db());
    // Five of the six sessions reach the server with the old key.
    let mut first = Vec::new();
    for s in &fx.sessions[..5] {
        first.extend(["--session", s.id.as_str()]);
    }
    let (out, v) = env.sync(&first);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 5, "{v}");
    // One of them gets a new turn.
    let at = fx.sessions[2].updated + 60_000;
    fx.sessions[2].add_turn(at, None);
    fx.update_db(&env.db(), &fx.sessions[2]);

    // The key is rotated: same server, same address, same user, new key.
    let Env {
        dir,
        server,
        secret,
    } = env;
    server.shutdown();
    let env = Env {
        dir,
        server: start(NEW_KEY, Some(addr)),
        secret,
    };
    assert_eq!(
        env.server.dump().unwrap()["users"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    login(&env, NEW_KEY);
    env.server.controller().clear_requests();

    let out = env.run(&["sync"]);
    assert_ok(&out);
    assert!(
        out.stdout.contains("New API key for 127.0.0.1")
            && out
                .stdout
                .contains("5 sessions were synced there with another key")
            && out
                .stdout
                .contains("only the sessions it lacks and those changed since"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Sent 2 sessions") && out.stdout.contains("4 unchanged"),
        "{}",
        out.stdout
    );
    assert_eq!(env.count("/sync/sessions/list"), 1);
    assert_eq!(env.count("/sync/session"), 2, "{:?}", env.sync_requests());
    // The changed session's new turn only (plus the boundary message), the missing one whole.
    let missing = fx.sessions[5].messages.len();
    let messages = env.count("/sync/message");
    assert!(
        (missing + 3..=missing + 4).contains(&messages),
        "{messages} messages for {missing} + the new turn"
    );
    fx.compare(&env.stored()).unwrap();

    // The new key has its own records now: nothing more to send.
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 0, "{v}");
    assert_eq!(v["keyRotation"], Value::Null, "{v}");
    assert_eq!(env.count("/sync/session"), 2);
}

/// A new key of another account on the same deployment: that account has none of the
/// sessions, so all of them go (the old records never hide a session from the server).
#[test]
fn a_new_key_of_another_account_gets_every_session() {
    const NEW_KEY: &str = "osk_TestKeyZyXwVuTsRqPoNmLkJiHgFe0002";
    let env = Env::new();
    let fx = env.fixture(4, 1);
    fx.write_db(&env.db());
    let (out, _) = env.sync(&[]);
    assert_ok(&out);
    env.server.controller().add_key(NEW_KEY).unwrap();
    let out = env.run_with_stdin(
        &["login", "--url", &env.server.url(), "--api-key-stdin"],
        Some(&format!("{NEW_KEY}\n")),
    );
    assert_ok(&out);
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 4, "{v}");
    assert_eq!(v["keyRotation"]["sessionsSentWithOtherKeys"], 4, "{v}");
}

/// The recorded OpenCode 2.0.26 database (five sessions: tools, a failing tool, a
/// subagent and its child, a plan-mode session with a synthetic reminder), a copy of the
/// shared recording in tests/fixtures.
const RECORDED_V2_SQL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/opencode-2.0.26-sessions.sql"
);

/// A `session_v2` row: id, directory, title, cost, the five token counts, created, updated.
type V2SessionRow = (String, String, String, f64, [i64; 5], i64, i64);

/// What the server must hold for an OpenCode 2 store, read from its own rows: every
/// `session_v2` row with its totals, every user and assistant `session_message` row
/// (one message per step; `idle` and `synthetic` rows are none) with its tool calls.
fn assert_server_holds_v2_store(db: &Path, stored: &[Value]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, directory, title, cost, tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write, time_created, time_updated FROM session_v2")
        .unwrap();
    let sessions: Vec<V2SessionRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), sessions.len(), "one stored session per row");
    for (id, directory, title, cost, [input, output, reasoning, read, write], created, updated) in
        &sessions
    {
        let got = stored
            .iter()
            .find(|s| s["externalId"] == id.as_str())
            .unwrap_or_else(|| panic!("session {id} not stored"));
        let rows: Vec<(String, String, Value)> = conn
            .prepare(
                "SELECT id, type, data FROM session_message WHERE session_id = ?1 ORDER BY seq",
            )
            .unwrap()
            .query_map([id], |r| {
                let data: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&data).unwrap()))
            })
            .unwrap()
            .map(Result::unwrap)
            .filter(|(_, kind, _)| kind == "user" || kind == "assistant")
            .collect();
        let last_model = rows
            .iter()
            .rev()
            .find(|(_, kind, _)| kind == "assistant")
            .map(|(_, _, d)| d["model"].clone())
            .unwrap();
        let want = [
            ("title", json!(title)),
            ("projectPath", json!(directory)),
            ("projectName", json!(directory.rsplit('/').next().unwrap())),
            ("model", last_model["id"].clone()),
            ("provider", last_model["providerID"].clone()),
            ("promptTokens", json!(input + read + write)),
            ("completionTokens", json!(output + reasoning)),
            ("createdAt", json!(created)),
            ("durationMs", json!(updated - created)),
            ("messageCount", json!(rows.len())),
        ];
        for (field, want) in want {
            assert_eq!(got[field], want, "session {id} {field}");
        }
        assert!(
            (got["cost"].as_f64().unwrap() - cost).abs() < 1e-12,
            "session {id} cost"
        );
        let messages = got["messages"].as_array().unwrap();
        assert_eq!(messages.len(), rows.len(), "session {id} messages");
        for (mid, kind, data) in &rows {
            let m = messages
                .iter()
                .find(|m| m["externalId"] == mid.as_str())
                .unwrap_or_else(|| panic!("message {mid} not stored"));
            assert_eq!(m["role"], kind.as_str(), "{mid}");
            assert_eq!(m["createdAt"], data["time"]["created"], "{mid} createdAt");
            let texts: Vec<&str> = if kind == "user" {
                vec![data["text"].as_str().unwrap()]
            } else {
                data["content"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["type"] == "text")
                    .map(|c| c["text"].as_str().unwrap())
                    .collect()
            };
            let text = (!texts.is_empty()).then(|| json!(texts.join("\n\n")));
            assert_eq!(m["textContent"], text.unwrap_or(Value::Null), "{mid} text");
            if kind == "user" {
                continue;
            }
            assert_eq!(m["model"], data["model"]["id"], "{mid} model");
            let t = &data["tokens"];
            let prompt = t["input"].as_i64().unwrap()
                + t["cache"]["read"].as_i64().unwrap()
                + t["cache"]["write"].as_i64().unwrap();
            assert_eq!(m["promptTokens"], json!(prompt), "{mid} promptTokens");
            let parts = m["parts"].as_array().unwrap();
            let calls: Vec<&Value> = parts.iter().filter(|p| p["type"] == "tool-call").collect();
            let results: Vec<&Value> = parts
                .iter()
                .filter(|p| p["type"] == "tool-result")
                .collect();
            let tools: Vec<&Value> = data["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["type"] == "tool")
                .collect();
            assert_eq!(
                (calls.len(), results.len()),
                (tools.len(), tools.len()),
                "{mid} tools"
            );
            for ((tool, call), result) in tools.iter().zip(&calls).zip(&results) {
                let (call, result, state) = (&call["content"], &result["content"], &tool["state"]);
                assert_eq!(call["toolName"], tool["name"], "{mid}");
                assert_eq!(call["callID"], tool["id"], "{mid}");
                assert_eq!(call["status"], state["status"], "{mid}");
                assert_eq!(call["args"], state["input"], "{mid} args");
                let output = match state["status"].as_str().unwrap() {
                    "error" => state["error"]["message"].clone(),
                    _ => json!(
                        state["content"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| c["text"].as_str().unwrap())
                            .collect::<String>()
                    ),
                };
                assert_eq!(result["output"], output, "{mid} output");
                if state["status"] == "error" {
                    assert_eq!(result["error"], output, "{mid} error");
                }
                assert_eq!(result["exit"], state["metadata"]["exit"], "{mid} exit");
                let ms = tool["time"]["completed"].as_i64().unwrap()
                    - tool["time"]["ran"].as_i64().unwrap();
                assert_eq!(result["durationMs"], json!(ms), "{mid} durationMs");
            }
        }
    }
}

#[test]
fn an_opencode2_store_is_stored_exactly_then_nothing_is_sent_again() {
    let env = Env::new();
    fs::create_dir_all(env.data_dir()).unwrap();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch(&fs::read_to_string(RECORDED_V2_SQL).unwrap())
        .unwrap();
    drop(conn);

    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 5, "{v}");
    // 21 rows: 5 `idle` and 1 `synthetic` are no messages; 4 tool calls in all.
    assert_eq!(v["messages"]["sent"], 15, "{v}");
    assert_eq!(v["toolCalls"], 4, "{v}");
    assert_eq!(v["rows"]["notes"], json!([]), "{v}");
    assert_server_holds_v2_store(&env.db(), &env.stored());
    assert_eq!(env.count("/sync/session"), 5);
    assert_eq!(env.count("/sync/message"), 15, "every message once");

    let before = env.sync_requests().len();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 0, "{v}");
    assert_eq!(
        env.sync_requests().len(),
        before,
        "the second run sends nothing"
    );
}

#[test]
fn opencode1_tables_and_their_opencode2_copies_send_each_session_once_the_newer_side_winning() {
    let env = Env::new();
    let mut fx = env.fixture(5, 1);
    let db = env.db();
    fx.write_db(&db);
    fx.write_v2_copy(&db);
    // Session 0 goes on in OpenCode 2 only (a new turn, renamed there); session 1 in
    // OpenCode 1.x only (a new turn in its tables, its V2 copy left as it was).
    let mut in_v2 = fx.sessions[0].clone();
    in_v2.add_turn(in_v2.updated + 60_000, None);
    fx.update_v2(&db, &in_v2, "Continued in OpenCode 2");
    let v1_copy = fx.sessions[1].clone();
    let at = fx.sessions[1].updated + 60_000;
    fx.sessions[1].add_turn(at, None);
    fx.update_db(&db, &fx.sessions[1]);
    assert!(fx.sessions[1].messages.len() > v1_copy.messages.len());

    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 5, "{v}");
    assert_eq!(v["rows"]["notes"], json!([]), "{v}");
    let mut expected: Vec<(String, String, Vec<String>)> = fx
        .sessions
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.title.clone(),
                s.messages.iter().map(|m| m.id.clone()).collect(),
            )
        })
        .collect();
    expected[0] = (
        in_v2.id.clone(),
        "Continued in OpenCode 2".to_owned(),
        in_v2.messages.iter().map(|m| m.id.clone()).collect(),
    );
    let total: usize = expected.iter().map(|e| e.2.len()).sum();
    assert_eq!(v["messages"]["sent"], total, "{v}");
    assert_eq!(env.count("/sync/session"), 5, "each session once");
    assert_eq!(env.count("/sync/message"), total, "each message once");
    let stored = env.stored();
    assert_eq!(stored.len(), 5);
    for (id, title, messages) in &expected {
        let got = stored
            .iter()
            .find(|s| s["externalId"] == id.as_str())
            .unwrap();
        assert_eq!(got["title"], title.as_str(), "{id}");
        let mut ids: Vec<&str> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["externalId"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = messages.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(ids, want, "{id}: every message of the newer side, once");
    }
    // The totals are the winning side's: session 0's V2 row counts its V2-only turn.
    let s0 = stored
        .iter()
        .find(|s| s["externalId"] == in_v2.id.as_str())
        .unwrap();
    let [input, _, _, read, write] = in_v2.tokens();
    assert_eq!(s0["promptTokens"], json!(input + read + write));
    let s1 = stored
        .iter()
        .find(|s| s["externalId"] == fx.sessions[1].id.as_str())
        .unwrap();
    let [input, _, _, read, write] = fx.sessions[1].tokens();
    assert_eq!(s1["promptTokens"], json!(input + read + write));

    // Nothing goes out again.
    let before = env.sync_requests().len();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["toSend"], 0, "{v}");
    assert_eq!(env.sync_requests().len(), before);
}

#[test]
fn odd_opencode2_rows_cost_only_themselves() {
    let env = Env::new();
    fs::create_dir_all(env.data_dir()).unwrap();
    let conn = open_store(&env.db());
    conn.execute_batch(&fs::read_to_string(RECORDED_V2_SQL).unwrap())
        .unwrap();
    let s = "ses_ee23fe547ffeGrZPc2puP1wUU1";
    let add = |id: &str, kind: &str, seq: i64, data: &str| {
        conn.execute(
            "INSERT INTO session_message VALUES (?1, ?2, ?3, ?4, 1791500491990, 1791500491990, ?5)",
            rusqlite::params![id, s, kind, seq, data],
        )
        .unwrap();
    };
    add("msg_notjson", "user", 100, "{not json");
    add("msg_unknown", "hologram", 101, "{}");
    // A step whose cost is text and whose second content item is no item: the rest of it
    // is sent.
    add(
        "msg_oddstep",
        "assistant",
        102,
        r#"{"time":{"created":1791500491980,"completed":1791500491985},"model":{"id":"m1","providerID":"fake"},"cost":"cheap","content":[{"type":"text","text":"Still here."},7]}"#,
    );
    // A message of a session that does not exist.
    add(
        "msg_orphan",
        "user",
        103,
        r#"{"time":{"created":1},"text":"lost"}"#,
    );
    conn.execute(
        "UPDATE session_message SET session_id = 'ses_missing' WHERE id = 'msg_orphan'",
        [],
    )
    .unwrap();
    drop(conn);

    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(v["sessions"]["sent"], 5, "{v}");
    assert_eq!(v["messages"]["sent"], 16, "the odd step is sent, {v}");
    assert_eq!(
        row_notes(&v),
        [
            ("session_message".to_owned(), "msg_notjson".to_owned(), true),
            (
                "session_message".to_owned(),
                "msg_oddstep".to_owned(),
                false
            ),
            ("session_message".to_owned(), "msg_orphan".to_owned(), true),
            ("session_message".to_owned(), "msg_unknown".to_owned(), true),
        ],
        "{v}"
    );
    let stored = env.stored();
    let session = stored.iter().find(|x| x["externalId"] == s).unwrap();
    let step = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["externalId"] == "msg_oddstep")
        .unwrap();
    assert_eq!(step["textContent"], "Still here.");
    // Named again on the next run, nothing sent.
    let before = env.sync_requests().len();
    let (out, v) = env.sync(&[]);
    assert_ok(&out);
    assert_eq!(env.sync_requests().len(), before);
    assert_eq!(row_notes(&v).len(), 4, "{v}");
}
