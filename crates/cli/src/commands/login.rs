//! `opencode-sync login`: get the URL and key (flags, stdin, environment or prompts),
//! prove them against the server, and only then save them. `login --local` instead
//! saves the URL and key of the local server `opencode-sync serve` runs, asking nothing.
//! At the prompts ([`ui::ask`]) Ctrl-D stops with a message and Ctrl-C leaves the
//! terminal's echo on, whatever the shell.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use opencode_sync_core::api::Endpoint;
use opencode_sync_core::paths::{ENV_API_KEY, ENV_URL, Environment};
use opencode_sync_core::{ApiKey, SiteUrl};

use super::probe::{self, KeyCheck, Reach};
use super::verify;
use crate::cli::LoginArgs;
use crate::config_store::{ConfigStore, SetAside};
use crate::fsutil::human_size;
use crate::http::Http;
use crate::local_server::{self, DEFAULT_PORT, LocalServer};
use crate::process_env::ProcessEnv;
use crate::ui;
use crate::ui::outln;

/// The most `--api-key-stdin` reads before the key's line ends (a key is ~45 bytes).
const MAX_KEY_INPUT: u64 = 4096;
/// How many answers a prompt takes before giving up.
const MAX_ATTEMPTS: usize = 5;
/// How long `login --local` waits for the local server to answer.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(args: &LoginArgs) -> Result<ExitCode> {
    if args.local {
        return run_local(args);
    }
    let store = ConfigStore::locate()?;
    let stored = store.load().ok().flatten();
    let url = read_url(args, stored.as_ref().and_then(|c| c.convex_url.clone()))?;
    let key = read_key(args)?;

    if args.no_verify {
        outln!("Not checking the server (--no-verify).");
    } else {
        check(&url, &key)?;
    }

    let (mut cfg, moved) = store.load_for_update()?;
    if let Some(aside) = moved {
        warn_set_aside(&aside);
    }
    cfg.set_credentials(&url, &key);
    store.save(&cfg)?;
    outln!(
        "Saved {url} and key {} to {}",
        key.masked(),
        store.path.display()
    );
    outln!();
    outln!("{}", verify::next_step_text());
    Ok(ExitCode::SUCCESS)
}

/// `login --local`: the local server's URL and its own key (read from its key file, or
/// generated there before the server's first run), saved whether it runs or not.
fn run_local(args: &LoginArgs) -> Result<ExitCode> {
    let local = LocalServer::locate(args.data.as_deref())?;
    let key = local.key()?;
    let url =
        SiteUrl::parse(&local_server::local_url(args.port)).context("invalid local server URL")?;

    let store = ConfigStore::locate()?;
    let (mut cfg, moved) = store.load_for_update()?;
    if let Some(aside) = moved {
        warn_set_aside(&aside);
    }
    cfg.set_credentials(&url, &key.key);
    store.save(&cfg)?;
    if key.created {
        outln!(
            "Generated the local server's API key in {} (mode 0600).",
            local.key_path().display()
        );
    }
    outln!(
        "Saved {url} and the local server's key {} to {}",
        key.key.masked(),
        store.path.display()
    );
    for var in [ENV_URL, ENV_API_KEY] {
        if ProcessEnv.var(var).is_some() {
            ui::warn(&format!(
                "{var} is set in this environment and overrides the saved value; unset it to use the local server"
            ));
        }
    }

    let mut serve = String::from("opencode-sync serve");
    if args.port != DEFAULT_PORT {
        serve.push_str(&format!(" --port {}", args.port));
    }
    if let Some(data) = &args.data {
        serve.push_str(&format!(" --data {}", data.display()));
    }
    if args.no_verify {
        outln!(
            "Not checking the server (--no-verify). Start it with `{serve}` if it is not running."
        );
    } else {
        let endpoint = Endpoint::new(url.clone(), key.key.clone());
        let result = probe::run(&Http::new(LOCAL_TIMEOUT), &endpoint);
        match (result.reach, result.key) {
            (Reach::Up { .. }, Some(KeyCheck::Accepted { sessions })) => outln!(
                "The local server is up at {url} and accepts the key ({sessions} session{} stored).",
                if sessions == 1 { "" } else { "s" }
            ),
            (Reach::Up { .. }, Some(KeyCheck::Rejected { .. })) => ui::warn(&format!(
                "a server answers at {url} but rejects this key: it is not the server of {}; \
                 stop it and run `{serve}`",
                local.dir.display()
            )),
            (Reach::Up { .. }, _) => ui::warn(&format!(
                "a server answers at {url} but could not be asked about the key; check it with \
                 `opencode-sync status`"
            )),
            (Reach::NotOpenSync { detail }, _) => ui::warn(&format!(
                "something else answers at {url} ({detail}); run `{serve}` on a free port \
                 (with --port N, then `opencode-sync login --local --port N`)"
            )),
            (Reach::Down { .. }, _) => outln!(
                "No server answers at {url} yet. Start it with `{serve}` and keep it running \
                 (in another terminal, or as a service); the plugin sends what it queued \
                 meanwhile once it is up."
            ),
        }
    }
    outln!();
    outln!("{}", verify::next_step_text());
    Ok(ExitCode::SUCCESS)
}

fn warn_set_aside(aside: &SetAside) {
    ui::warn(&format!(
        "{}; it was kept as {}",
        aside.reason,
        aside.path.display()
    ));
}

fn read_url(args: &LoginArgs, stored: Option<String>) -> Result<SiteUrl> {
    if let Some(url) = &args.url {
        return SiteUrl::parse(url).context("invalid --url");
    }
    if let Some(url) = ProcessEnv.var(ENV_URL) {
        return SiteUrl::parse(&url).with_context(|| format!("invalid ${ENV_URL}"));
    }
    if args.api_key_stdin || !ui::stdin_is_tty() {
        bail!(
            "no deployment URL given and standard input is not a terminal, so I cannot ask: \
             pass --url URL (or set {ENV_URL})"
        );
    }
    let question = match &stored {
        Some(stored) => format!("Convex URL [{stored}]: "),
        None => "Convex URL (e.g. https://your-project-123.convex.cloud): ".to_owned(),
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(answer) = ui::ask(&question, false)? else {
            bail!("no URL given (end of input at the prompt); nothing was saved");
        };
        let answer = match (answer.trim(), &stored) {
            ("", Some(stored)) => stored.clone(),
            (answer, _) => answer.to_owned(),
        };
        match SiteUrl::parse(&answer) {
            Ok(url) => return Ok(url),
            Err(e) => ui::warn(&format!("{e}; try again (Ctrl-D to stop)")),
        }
    }
    bail!("no valid URL after {MAX_ATTEMPTS} tries; nothing was saved")
}

fn read_key(args: &LoginArgs) -> Result<ApiKey> {
    if let Some(key) = &args.api_key {
        return ApiKey::parse(key).context("invalid --api-key");
    }
    if args.api_key_stdin {
        let line = read_key_line(std::io::stdin().lock())?;
        return ApiKey::parse(&line).context("invalid API key on standard input");
    }
    if let Some(key) = ProcessEnv.var(ENV_API_KEY) {
        return ApiKey::parse(&key).with_context(|| format!("invalid ${ENV_API_KEY}"));
    }
    if !ui::stdin_is_tty() {
        bail!(
            "no API key given and standard input is not a terminal, so I cannot ask: \
             pass --api-key-stdin and pipe the key in (or set {ENV_API_KEY})"
        );
    }
    for _ in 0..MAX_ATTEMPTS {
        let Some(answer) = ui::ask(
            "API key (osk_..., from Settings in the OpenSync dashboard; input hidden): ",
            true,
        )?
        else {
            bail!("no API key given (end of input at the prompt); nothing was saved");
        };
        match ApiKey::parse(answer.trim()) {
            Ok(key) => return Ok(key),
            // The error names what is wrong with the key, never the key.
            Err(e) => ui::warn(&format!("{e}; try again (Ctrl-D to stop)")),
        }
    }
    bail!("no valid API key after {MAX_ATTEMPTS} tries; nothing was saved")
}

/// The first line of `input`, read bounded: at most [`MAX_KEY_INPUT`] bytes before the
/// line ends (`/dev/zero` or a large file piped in by mistake is refused, not read to
/// the end). Returns at the line break, so a key typed at a terminal needs no Ctrl-D.
/// What was read is never shown.
fn read_key_line(input: impl BufRead) -> Result<String> {
    let mut bytes = Vec::new();
    input
        .take(MAX_KEY_INPUT + 1)
        .read_until(b'\n', &mut bytes)
        .context("reading the API key from standard input")?;
    let line = match bytes.strip_suffix(b"\n") {
        Some(line) => line,
        None if bytes.len() as u64 > MAX_KEY_INPUT => bail!(
            "--api-key-stdin: standard input holds more than {} without a line break; an API \
             key is about 40 characters: pipe in just the key",
            human_size(MAX_KEY_INPUT)
        ),
        None => &bytes[..],
    };
    let Ok(line) = std::str::from_utf8(line) else {
        bail!("--api-key-stdin: standard input is not text; pipe in just the key");
    };
    if line.trim().is_empty() {
        bail!("--api-key-stdin: standard input was empty");
    }
    Ok(line.to_owned())
}

/// Proves the URL and key, or says exactly why not.
fn check(url: &SiteUrl, key: &ApiKey) -> Result<()> {
    let endpoint = Endpoint::new(url.clone(), key.clone());
    let result = probe::run(&Http::new(probe::TIMEOUT), &endpoint);
    match result.reach {
        Reach::Up { latency } => {
            outln!("Server {url} is reachable ({} ms).", latency.as_millis());
        }
        Reach::Down { error } => {
            bail!(
                "could not reach {}: {error}. Nothing was saved; check the URL and your network, \
                 or use --no-verify to save anyway",
                url.join("/health")
            )
        }
        Reach::NotOpenSync { detail } => {
            bail!("{url} does not look like an OpenSync server ({detail}). Nothing was saved")
        }
    }
    match result.key {
        Some(KeyCheck::Accepted { sessions }) => {
            outln!(
                "API key {} accepted ({sessions} session{} on the server).",
                key.masked(),
                if sessions == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Some(KeyCheck::Rejected { reason }) => Err(anyhow!(
            "API key rejected by {}: {reason}. Nothing was saved. Generate a new key in the \
             OpenSync dashboard (Settings > Generate API Key) and run `opencode-sync login` again",
            url.host()
        )),
        Some(KeyCheck::Unknown { reason }) => {
            bail!("could not check the API key with {url}: {reason}. Nothing was saved")
        }
        None => bail!("could not check the API key with {url}. Nothing was saved"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_line_is_read_bounded_and_never_shown() {
        let read = |input: &[u8]| read_key_line(input).map_err(|e| format!("{e:#}"));
        assert_eq!(read(b"osk_abc\r\nmore\n").as_deref(), Ok("osk_abc\r"));
        assert_eq!(read(b"osk_abc").as_deref(), Ok("osk_abc"));
        // A line as long as allowed, then one byte too many.
        let long = vec![b'k'; 4096];
        assert_eq!(read(&long).map(|l| l.len()), Ok(4096));
        let mut too_long = vec![b'k'; 4097];
        too_long.extend_from_slice(b"\n");
        let err = read(&too_long).unwrap_err();
        assert!(
            err.contains("more than 4 KiB without a line break"),
            "{err}"
        );
        assert!(!err.contains("kkkk"), "{err}");
        let err = read(b"osk_\xff\xfe\n").unwrap_err();
        assert!(err.contains("is not text"), "{err}");
        assert!(read(b"  \n").unwrap_err().contains("was empty"));
        assert!(read(b"").unwrap_err().contains("was empty"));
    }

    #[test]
    fn reading_stops_at_the_line_break() {
        // A reader that fails past the first line: a terminal still waiting for input.
        struct Typed(&'static [u8]);
        impl std::io::Read for Typed {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("read past the line"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let typed = std::io::BufReader::new(Typed(b"osk_abc\n"));
        assert_eq!(read_key_line(typed).expect("one line"), "osk_abc");
    }
}
