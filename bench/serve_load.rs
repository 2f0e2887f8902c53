//! `opencode-sync serve` load benchmark (a program, not a test): starts the release
//! `opencode-sync serve` on loopback in a fresh data directory, runs 8 clients at once,
//! each syncing its own session and 1,000 messages with one `POST /sync/message` per
//! message over its own connection, and prints requests per second, the latency of
//! `/sync/message` (p50, p99, max), the server's CPU time and peak memory, and whether
//! every message was stored exactly once (checked through `/api/sessions/get`).
//!
//! Run through `scripts/bench`, or:
//!   cargo build --release -p opencode-sync-cli --bins --examples
//!   target/release/examples/serve-load-bench [--clients N] [--messages M]

#[path = "../crates/cli/tests/support/load.rs"]
mod load;
#[path = "proc_stats.rs"]
mod proc_stats;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use proc_stats::{cpu_ticks, vm_hwm_kb};

/// Longest wait for the server to start or stop.
const WAIT: Duration = Duration::from_secs(30);

struct Args {
    clients: usize,
    messages: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        clients: 8,
        messages: 1_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => args.clients = value.parse()?,
            "--messages" => args.messages = value.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.clients == 0 || args.messages == 0 {
        bail!("need at least one client and one message");
    }
    Ok(args)
}

/// The release `opencode-sync` next to this example (`target/release/examples/..`).
fn cli_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot locate the target directory")?;
    let path = dir.join("opencode-sync");
    if !path.is_file() {
        bail!(
            "{} is missing: cargo build --release -p opencode-sync-cli --bins --examples",
            path.display()
        );
    }
    Ok(path)
}

/// The running server; killed if the benchmark fails half-way.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `opencode-sync serve --port 0` with its home in `home`; returns it and its URL.
fn start_server(bin: &Path, home: &Path) -> Result<(Server, String)> {
    let mut child = Command::new(bin)
        .args(["serve", "--port", "0"])
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let server = Server { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            bail!("the server did not start: {text}");
        };
        if let Some(url) = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .filter(|_| line.contains("listening on"))
        {
            return Ok((server, url.to_owned()));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let bin = cli_binary()?;
    let home = tempfile::tempdir()?;
    let (mut server, url) = start_server(&bin, home.path())?;
    let pid = server.child.id();
    let key_file = home.path().join(".local/share/opencode-sync/server-key");
    let key = std::fs::read_to_string(&key_file)
        .with_context(|| format!("cannot read {}", key_file.display()))?
        .trim()
        .to_owned();

    let spec = load::LoadSpec {
        clients: args.clients,
        messages: args.messages,
        batched: 0,
        tag: "bench".to_owned(),
        timeout: Duration::from_secs(60),
    };
    let cpu_before = cpu_ticks(pid);
    let report = load::run_load(&url, &key, &spec);
    let cpu_after = cpu_ticks(pid);
    let stored = load::check_stored(&url, &key, &spec);
    let peak_kb = vm_hwm_kb(pid);

    println!(
        "opencode-sync serve (release, loopback, fresh SQLite file): {} clients x {} messages, \
         one POST /sync/message each",
        args.clients, args.messages
    );
    println!(
        "  {} requests in {:.2} s: {:.0} requests/s",
        report.requests,
        report.wall.as_secs_f64(),
        report.requests_per_sec()
    );
    println!(
        "  /sync/message latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(report.percentile(50.0)),
        ms(report.percentile(99.0)),
        ms(report.percentile(100.0))
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        #[allow(clippy::cast_precision_loss)]
        let secs = (b - a) as f64 / 100.0;
        println!("  server CPU during the load: {secs:.2} s");
    }
    if let Some(kb) = peak_kb {
        println!("  server peak memory: {:.1} MiB", kb as f64 / 1024.0);
    }
    let lost = match &stored {
        Ok(n) => {
            println!(
                "  stored: {n} of {} messages, each exactly once",
                args.clients * args.messages
            );
            false
        }
        Err(e) => {
            println!("  LOST OR DUPLICATED: {e}");
            true
        }
    };
    if report.failed > 0 {
        println!("  {} requests failed, e.g.:", report.failed);
        for f in report.failures.iter().take(5) {
            println!("    {f}");
        }
    }

    // A clean stop (SIGTERM), as a user's Ctrl-C.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + WAIT;
    while server.child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if lost || report.failed > 0 {
        bail!("the server lost, duplicated or refused messages");
    }
    Ok(())
}
