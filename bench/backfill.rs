//! Backfill benchmark (a program, not a test): generates an OpenCode store of 1,000
//! sessions and 50,000 messages (with parts: text, reasoning, tool calls, steps) in the
//! real `opencode.db` schema, runs the release `opencode-sync sync` against the release
//! contract server on loopback, and prints wall time, messages per second, the sync
//! process's peak memory (VmHWM, sampled from /proc) and the time of a no-op re-run.
//!
//! Run through `scripts/bench`, or:
//!   cargo build --release -p opencode-sync-cli -p opencode-sync-server --examples
//!   target/release/examples/backfill-bench [--sessions N] [--messages M] [--jobs J]
//! Goals: >= 2,000 messages/s, < 150 MB peak, no-op re-run < 1 s.

#[path = "../crates/cli/tests/support/opencode_fixture.rs"]
mod opencode_fixture;
#[path = "proc_stats.rs"]
mod proc_stats;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use opencode_fixture::Fixture;
use proc_stats::{cpu_ticks, vm_hwm_kb};
use serde_json::Value;

/// A made-up key for the local server only.
const KEY: &str = "osk_BenchKeyAbCdEfGhIjKlMnOpQrStUv0001";

struct Args {
    sessions: usize,
    messages: usize,
    jobs: u32,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        sessions: 1_000,
        messages: 50_000,
        jobs: 6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sessions" => args.sessions = value.parse()?,
            "--messages" => args.messages = value.parse()?,
            "--jobs" => args.jobs = value.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.sessions == 0 || args.messages < args.sessions {
        bail!("need at least one message per session");
    }
    Ok(args)
}

/// The release binaries next to this example (`target/release/examples/..`).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot locate target dir")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: cargo build --release -p opencode-sync-cli -p opencode-sync-server",
            path.display()
        );
    }
    Ok(path)
}

struct Run {
    wall: Duration,
    peak_kb: Option<u64>,
    cpu_ticks: Option<u64>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs a command, sampling its peak memory until it exits.
fn measured(mut cmd: Command) -> Result<Run> {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let cpu = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, cpu, done) = (Arc::clone(&peak), Arc::clone(&cpu), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(kb) = vm_hwm_kb(pid) {
                    peak.fetch_max(kb, Ordering::SeqCst);
                }
                if let Some(t) = cpu_ticks(pid) {
                    cpu.fetch_max(t, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output()?;
    let wall = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let kb = peak.load(Ordering::SeqCst);
    Ok(Run {
        wall,
        peak_kb: (kb > 0).then_some(kb),
        cpu_ticks: Some(cpu.load(Ordering::SeqCst)).filter(|t| *t > 0),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let cli = sibling("opencode-sync")?;
    let server_bin = sibling("opencode-sync-server")?;
    // BENCH_KEEP=1 keeps the generated home (store, config, records) and prints where.
    let tmp = tempfile::tempdir()?;
    let home = tmp.path();
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("home: {} (kept)", home.display());
    }

    // The store: whole turns of 3 messages, cut to the wanted count per session.
    let per_session = args.messages / args.sessions;
    let started = Instant::now();
    let mut fx = Fixture::generate(args.sessions, per_session.div_ceil(3), None);
    for s in &mut fx.sessions {
        s.messages.truncate(per_session);
    }
    let db = home.join("data/opencode/opencode.db");
    fx.write_db(&db);
    let parts: usize = fx
        .sessions
        .iter()
        .flat_map(|s| &s.messages)
        .map(|m| m.parts.len())
        .sum();
    let db_mb = std::fs::metadata(&db)?.len() as f64 / 1e6;
    println!(
        "store: {} sessions, {} messages, {parts} parts, {} tool calls; opencode.db {db_mb:.0} MB (generated in {:.1} s)",
        fx.sessions.len(),
        fx.message_count(),
        fx.tool_call_count(),
        started.elapsed().as_secs_f64()
    );

    let mut server = Server(
        Command::new(&server_bin)
            .args(["--api-key", KEY, "--ignore-stdin"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()?,
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let ready: Value = serde_json::from_str(&line).context("server's ready line")?;
    let url = ready["url"].as_str().context("server url")?.to_owned();

    let command = |args: &[&str]| {
        let mut cmd = Command::new(&cli);
        cmd.args(args)
            .env_clear()
            .env("HOME", home)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_DATA_HOME", home.join("data"));
        cmd
    };
    let mut login = command(&["login", "--url", &url, "--api-key-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    login
        .stdin
        .take()
        .context("login stdin")?
        .write_all(format!("{KEY}\n").as_bytes())?;
    if !login.wait()?.success() {
        bail!("login failed");
    }

    let jobs = args.jobs.to_string();
    let server_cpu_before = cpu_ticks(server.0.id());
    let first = measured(command(&["sync", "--json", "--jobs", &jobs]))?;
    let server_cpu = cpu_ticks(server.0.id())
        .zip(server_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    if first.code != Some(0) {
        bail!(
            "sync failed ({:?}):\n{}\n{}",
            first.code,
            first.stdout,
            first.stderr
        );
    }
    let report: Value = serde_json::from_str(&first.stdout)?;
    let messages = report["messages"]["sent"].as_u64().unwrap_or(0);
    let sessions = report["sessions"]["sent"].as_u64().unwrap_or(0);
    if messages != fx.message_count() as u64 || sessions != fx.sessions.len() as u64 {
        bail!("incomplete backfill: {report}");
    }
    let rate = messages as f64 / first.wall.as_secs_f64();
    let noop = measured(command(&["sync", "--json"]))?;
    let noop_report: Value = serde_json::from_str(&noop.stdout)?;
    if noop.code != Some(0) || noop_report["sessions"]["toSend"] != 0 {
        bail!("the re-run was not a no-op: {}", noop.stdout);
    }
    drop(server);
    if std::env::var_os("BENCH_KEEP").is_some() {
        let _ = tmp.keep();
    }

    let mb = |kb: Option<u64>| {
        kb.map_or_else(
            || "n/a".to_owned(),
            |k| format!("{:.1} MB", k as f64 / 1024.0),
        )
    };
    println!(
        "backfill: {sessions} sessions, {messages} messages, {} tool calls in {:.2} s wall = {rate:.0} messages/s (goal >= 2000), --jobs {}",
        report["toolCalls"],
        first.wall.as_secs_f64(),
        args.jobs
    );
    let secs = |t: Option<u64>| {
        t.map_or_else(
            || "n/a".to_owned(),
            |t| format!("{:.1} s", t as f64 / 100.0),
        )
    };
    println!(
        "peak memory of `opencode-sync sync`: {} (goal < 150 MB); CPU: sync {}, server {} (2 cores shared)",
        mb(first.peak_kb),
        secs(first.cpu_ticks),
        secs(server_cpu)
    );
    println!(
        "no-op re-run: {:.3} s wall (goal < 1 s), peak {}",
        noop.wall.as_secs_f64(),
        mb(noop.peak_kb)
    );
    Ok(())
}
