//! `opencode-sync serve`: the OpenSync-compatible server of `opencode-sync-server` as a
//! long-running command with a user's defaults: a fixed port, a data directory that
//! survives restarts, its own API key, loopback only unless asked otherwise, and a clean
//! stop on Ctrl-C or SIGTERM. The server itself (routes, rules, storage) is the library's;
//! this module only decides how it is started and what the user is told.

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use opencode_sync_server::{Server, ServerError, ServerOptions, StopSignals};

use crate::cli::ServeArgs;
use crate::local_server::{DB_FILE, DEFAULT_PORT, LocalServer};
use crate::ui;
use crate::ui::outln;

/// How long a stopping server may take (it waits up to 5 s for requests in flight).
const STOP_TIMEOUT: Duration = Duration::from_secs(8);

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let loopback = args.host.to_canonical().is_loopback();
    if !loopback && !args.allow_remote {
        ui::error(&anyhow!(
            "--host {} is not a loopback address, so other machines could connect; add \
             --allow-remote to serve them (every request, reads included, then needs the API key)",
            args.host
        ));
        return Ok(ExitCode::from(2));
    }

    let local = LocalServer::locate(args.data.as_deref())?;
    let key = local.key()?;
    local.create_db_file()?;
    let open_reads = loopback && !args.require_key;
    let opts = ServerOptions {
        bind: SocketAddr::new(args.host, args.port),
        db_path: Some(local.db_path()),
        api_keys: vec![key.key.expose().to_owned()],
        allow_remote: args.allow_remote,
        open_reads: open_reads.then(|| key.key.expose().to_owned()),
        sole_owner: true,
        ..ServerOptions::default()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("opencode-sync-serve")
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let result = runtime.block_on(async {
        let server = Server::bind(opts)
            .await
            .map_err(|e| explain_start_error(e, &local))?;
        // Installed before the banner: a process that signals as soon as it reads it is
        // never too early.
        let signals = StopSignals::install().context("cannot install the signal handlers")?;
        let url = server.url();
        print_banner(
            args,
            &local,
            &key,
            &url,
            open_reads,
            server.key_handed_over(),
        )?;
        server
            .run(async {
                signals.recv().await;
                eprintln!("opencode-sync serve: stopping…");
            })
            .await
            .context("the server failed")?;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(STOP_TIMEOUT);
    result?;
    outln!("opencode-sync serve: stopped.");
    Ok(ExitCode::SUCCESS)
}

/// A start-up failure, said so the user knows what to do.
fn explain_start_error(err: ServerError, local: &LocalServer) -> anyhow::Error {
    match err {
        ServerError::Bind { addr, source } if source.kind() == ErrorKind::AddrInUse => anyhow!(
            "port {} on {} is already in use (is `opencode-sync serve` already running? \
             `opencode-sync status` tells); stop it or choose another port with --port N",
            addr.port(),
            addr.ip()
        ),
        ServerError::Bind { addr, source } if source.kind() == ErrorKind::PermissionDenied => {
            anyhow!(
                "not allowed to listen on {addr} ({source}); ports below 1024 need privileges: \
                 choose another with --port N"
            )
        }
        ServerError::Bind { addr, source } if source.kind() == ErrorKind::AddrNotAvailable => {
            anyhow!(
                "cannot listen on {addr}: no network interface of this machine has that address"
            )
        }
        ServerError::OpenDatabase { path, source } => anyhow!(
            "cannot open the database {} ({source}); check the data directory {}",
            path.display(),
            local.dir.display()
        ),
        other => anyhow::Error::new(other).context("cannot start the server"),
    }
}

/// What the user needs once it runs: where, where the data is, which key (masked), who
/// may read, and the command that points the plugin here.
fn print_banner(
    args: &ServeArgs,
    local: &LocalServer,
    key: &crate::local_server::ServerKey,
    url: &str,
    open_reads: bool,
    key_handed_over: bool,
) -> Result<()> {
    let port = url.rsplit_once(':').map_or("", |(_, p)| p);
    let mut login = String::from("opencode-sync login --local");
    if port != DEFAULT_PORT.to_string() {
        login.push_str(&format!(" --port {port}"));
    }
    if !local.is_default {
        login.push_str(&format!(
            " --data {}",
            shell_word(&local.dir.display().to_string())
        ));
    }
    let reads = if open_reads {
        "/api/* open to this machine without a key (not to other web sites); sync needs the key"
    } else {
        "sync and read (/api/*) routes need the API key"
    };
    let key_note = if key.created { "new, " } else { "" };
    // The key file was replaced; the sessions of the old key are this key's now.
    let handed_over = if key_handed_over {
        "\n  sessions stored under the previous key are kept: they belong to this key now \
         (run `opencode-sync login --local` again where the old key was in use)"
    } else {
        ""
    };
    let everywhere = if args.host.is_unspecified() {
        " (all interfaces)"
    } else {
        ""
    };
    let text = format!(
        "opencode-sync serve: listening on {url}{everywhere}\n\
         \x20 data     {dir} ({DB_FILE})\n\
         \x20 API key  {masked} ({key_note}in {key_path}, mode 0600){handed_over}\n\
         \x20 access   {reads}\n\
         Point the plugin here: {login}\n\
         Stop with Ctrl-C.",
        dir = local.dir.display(),
        masked = key.key.masked(),
        key_path = local.key_path().display(),
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

/// `text` quoted for a POSIX shell when it needs it.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-~+:@%,=".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("/home/me/data"), "/home/me/data");
        assert_eq!(shell_word("/home/me/my data"), "'/home/me/my data'");
        assert_eq!(shell_word("/it's"), "'/it'\\''s'");
    }

    #[test]
    fn loopback_checks_cover_mapped_addresses() {
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(mapped.to_canonical().is_loopback());
    }
}
