//! `opencode-sync login`: get the URL and key (flags, stdin, environment or prompts),
//! prove them against the server, and only then save them.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use opencode_sync_core::api::Endpoint;
use opencode_sync_core::paths::{ENV_API_KEY, ENV_URL, Environment};
use opencode_sync_core::{ApiKey, SiteUrl};

use super::probe::{self, KeyCheck, Reach};
use super::verify;
use crate::cli::LoginArgs;
use crate::config_store::ConfigStore;
use crate::http::Http;
use crate::process_env::ProcessEnv;
use crate::ui;

pub fn run(args: &LoginArgs) -> Result<ExitCode> {
    let store = ConfigStore::locate()?;
    let stored = store.load().ok().flatten();
    let url = read_url(args, stored.as_ref().and_then(|c| c.convex_url.clone()))?;
    let key = read_key(args)?;

    if args.no_verify {
        println!("Not checking the server (--no-verify).");
    } else {
        check(&url, &key)?;
    }

    let (mut cfg, moved) = store.load_for_update()?;
    if let Some(aside) = moved {
        ui::warn(&format!(
            "the old config file was not valid JSON; it was kept as {}",
            aside.display()
        ));
    }
    cfg.set_credentials(&url, &key);
    store.save(&cfg)?;
    println!(
        "Saved {url} and key {} to {}",
        key.masked(),
        store.path.display()
    );
    println!();
    println!("{}", verify::next_step_text());
    Ok(ExitCode::SUCCESS)
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
    let mut prompt = dialoguer::Input::<String>::new()
        .with_prompt("Convex URL (e.g. https://your-project-123.convex.cloud)")
        .validate_with(|input: &String| {
            SiteUrl::parse(input).map(|_| ()).map_err(|e| e.to_string())
        });
    if let Some(stored) = stored {
        prompt = prompt.default(stored);
    }
    let input = prompt
        .interact_text()
        .context("reading the URL from the terminal")?;
    Ok(SiteUrl::parse(&input)?)
}

fn read_key(args: &LoginArgs) -> Result<ApiKey> {
    if let Some(key) = &args.api_key {
        return ApiKey::parse(key).context("invalid --api-key");
    }
    if args.api_key_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the API key from standard input")?;
        if line.trim().is_empty() {
            bail!("--api-key-stdin: standard input was empty");
        }
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
    let input = dialoguer::Password::new()
        .with_prompt("API key (osk_..., from Settings in the OpenSync dashboard; input hidden)")
        .validate_with(|input: &String| ApiKey::parse(input).map(|_| ()).map_err(|e| e.to_string()))
        .interact()
        .context("reading the API key from the terminal")?;
    Ok(ApiKey::parse(&input)?)
}

/// Proves the URL and key, or says exactly why not.
fn check(url: &SiteUrl, key: &ApiKey) -> Result<()> {
    let endpoint = Endpoint::new(url.clone(), key.clone());
    let result = probe::run(&Http::new(probe::TIMEOUT), &endpoint);
    match result.reach {
        Reach::Up { latency } => {
            println!("Server {url} is reachable ({} ms).", latency.as_millis());
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
            println!(
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
