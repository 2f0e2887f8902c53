//! `opencode-sync-server`: the contract server as a process, for end-to-end
//! tests in other languages (and manual runs).
//!
//! It prints exactly one JSON line on stdout once it accepts connections,
//! `{"url":"http://127.0.0.1:PORT","controlUrl":"http://127.0.0.1:PORT2"|null}`,
//! then serves until SIGINT/SIGTERM or until its stdin is closed (so a test
//! harness that dies does not leave it running; `--ignore-stdin` turns that off).
//! API keys are never printed.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use opencode_sync_contract_server::{ContractOptions, ContractServer};
use opencode_sync_server::{ServerOptions, StopSignals};
use tokio::sync::oneshot;

/// OpenSync-compatible sync server over SQLite (contract server for tests).
#[derive(Debug, Parser)]
#[command(name = "opencode-sync-server", version)]
struct Args {
    /// Port of the sync API (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on. Anything but loopback needs --allow-remote.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Allow a non-loopback --host, serving other machines (every sync and read
    /// route still needs an API key; the control listener stays on loopback).
    #[arg(long)]
    allow_remote: bool,
    /// SQLite file to keep data in (default: in memory).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// API key to accept (a user per key); repeatable. Must start with osk_.
    #[arg(long = "api-key", value_name = "osk_...")]
    api_keys: Vec<String>,
    /// Answer the read routes (/api/*, the dashboard at /) without a key, with this
    /// key's data, for a browser on this machine (loopback --host only).
    #[arg(long, value_name = "osk_...")]
    open_reads: Option<String>,
    /// Open the control listener (faults, keys, clock, dump) for tests.
    #[arg(long)]
    control: bool,
    /// Port of the control listener (0 = any free port).
    #[arg(long, default_value_t = 0, value_name = "PORT", requires = "control")]
    control_port: u16,
    /// Keep running when stdin is closed (by default that stops the server).
    #[arg(long)]
    ignore_stdin: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args
        .api_keys
        .iter()
        .chain(&args.open_reads)
        .any(|k| !k.starts_with("osk_"))
    {
        eprintln!(
            "opencode-sync-server: error: every --api-key and --open-reads must start with osk_"
        );
        return ExitCode::from(2);
    }
    if !args.host.to_canonical().is_loopback() && !args.allow_remote {
        eprintln!(
            "opencode-sync-server: error: --host {} is not a loopback address, so other machines \
             could connect; add --allow-remote to serve them (every request still needs an API key)",
            args.host
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("opencode-sync-server: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(args));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}

async fn run(args: Args) -> ExitCode {
    // The control listener has no authentication: it never leaves loopback.
    let control_host = match args.host {
        h if h.to_canonical().is_loopback() => h,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let opts = ContractOptions {
        server: ServerOptions {
            bind: SocketAddr::new(args.host, args.port),
            db_path: args.db,
            api_keys: args.api_keys,
            allow_remote: args.allow_remote,
            open_reads: args.open_reads,
            // A contract server for tests and tools: its keys are users of their own.
            sole_owner: false,
            ..ServerOptions::default()
        },
        control: args.control,
        control_bind: SocketAddr::new(control_host, args.control_port),
        clock_offset_ms: 0,
    };
    let server = match ContractServer::bind(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opencode-sync-server: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals = match StopSignals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opencode-sync-server: error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = serde_json::json!({ "url": server.url(), "controlUrl": server.control_url() });
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            eprintln!("opencode-sync-server: error: cannot write to stdout");
            return ExitCode::FAILURE;
        }
    }
    match server.run(stop_signal(signals, !args.ignore_stdin)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opencode-sync-server: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT, SIGTERM or (if `watch_stdin`) end of stdin.
async fn stop_signal(signals: StopSignals, watch_stdin: bool) {
    let stdin_closed = async move {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let (tx, rx) = oneshot::channel::<()>();
        // A plain thread: reading stdin blocks, and it ends with the process.
        let spawned = std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = tx.send(());
            });
        if spawned.is_err() {
            return std::future::pending::<()>().await;
        }
        let _ = rx.await;
    };
    tokio::select! {
        () = signals.recv() => {}
        () = stdin_closed => {}
    }
}
