//! The plan of a backfill: where OpenCode's history is, the credentials and the sync
//! records of this deployment and key, which sessions the options select, and for each
//! whether to send it (new, changed, missing on the server, forced) or skip it. Nothing
//! is sent here but `--all`'s question to the server about what it already has.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use opencode_sync_core::api::{Endpoint, SessionListResponse};
use opencode_sync_core::backfill::{
    self, Decision, Mode, RowNote, SendReason, SessionFilter, SessionSummary, SkipReason,
    SyncRecord,
};
use opencode_sync_core::config::{Credentials, resolve_credentials};
use opencode_sync_core::delivery::Pause;
use opencode_sync_core::paths;
use opencode_sync_core::retry::RetryPolicy;

use super::report::{Failure, plural};
use super::send::{Sent, Shared};
use crate::cli::SyncArgs;
use crate::config_store::ConfigStore;
use crate::http::Http;
use crate::opencode_store::{HistoryStore, Source};
use crate::process_env::ProcessEnv;
use crate::sync_records::SyncRecords;
use crate::ui;

/// Per-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// OpenCode's own override of the database path.
const ENV_OPENCODE_DB: &str = "OPENCODE_DB";

/// One session to send: what the listing says, why, the messages from which on (`None`:
/// all) and its record from the last run.
pub(super) type Planned = (SessionSummary, SendReason, Option<f64>, Option<SyncRecord>);

/// Everything the sending and the summary need from the planning.
pub(super) struct Plan {
    pub creds: Option<Credentials>,
    pub source: Source,
    pub store: Box<dyn HistoryStore>,
    /// Sessions in the store, and how many of them the options select.
    pub found: usize,
    pub selected: usize,
    /// Problems found before sending (a `--session` that is not in the store).
    pub failures: Vec<Failure>,
    pub records: Option<SyncRecords>,
    pub shared: Shared,
    /// Sending threads (`--jobs`).
    pub jobs: usize,
    /// Rows not read whole: of no session, and of the sessions skipped as unchanged.
    pub notes: Vec<RowNote>,
    /// The sessions to send, in the order they are read.
    pub work: Vec<Planned>,
    pub planned: usize,
    pub unchanged: usize,
    pub found_on_server: usize,
    /// After a key rotation: how many sessions the deployment's other keys had sent.
    pub rotated_from: Option<usize>,
}

/// What there is to read.
pub(super) enum Made {
    Plan(Box<Plan>),
    /// OpenCode's default data directory holds no history (OpenCode has not run here as
    /// this user): nothing to send, which is not a failure.
    NoHistory(PathBuf),
}

/// OpenCode's store where `sync` reads by default (`$OPENCODE_DB`, else OpenCode's
/// data directory), if there is one.
pub(super) fn default_source() -> Option<Source> {
    locate_source(None).ok()?.ok()
}

/// Where to read: `--data-dir`, else `$OPENCODE_DB`, else OpenCode's data directory.
/// A place the user named must hold a history (an error otherwise); the default place
/// may hold none (`Ok(Err(dir))`).
fn locate_source(data_dir: Option<&Path>) -> Result<Result<Source, PathBuf>> {
    if let Some(dir) = data_dir {
        return Source::locate(dir).map(Ok);
    }
    if let Some(db) = std::env::var_os(ENV_OPENCODE_DB).filter(|v| !v.is_empty()) {
        return Source::locate(&PathBuf::from(db)).map(Ok);
    }
    let dir = paths::opencode_data_dir(&ProcessEnv)?;
    // `locate` fails only for a path that is no file: one that does not exist, or a
    // directory with neither OpenCode's database nor its older JSON tree.
    Ok(Source::locate(&dir).map_err(|_| dir))
}

/// The directories `--project` names, as given (absolute) and with links resolved.
fn project_roots(args: &SyncArgs) -> Result<Vec<String>> {
    let mut roots = Vec::new();
    for p in &args.project {
        let absolute =
            std::path::absolute(p).with_context(|| format!("--project {}", p.display()))?;
        roots.push(absolute.to_string_lossy().into_owned());
        if let Ok(real) = absolute.canonicalize() {
            roots.push(real.to_string_lossy().into_owned());
        }
    }
    Ok(roots)
}

/// Reads the store and the records and decides, per selected session, what to do.
pub(super) fn make(args: &SyncArgs, interrupted: &Arc<AtomicBool>) -> Result<Made> {
    let config = ConfigStore::locate()?.load()?;
    let options = config.as_ref().map(|c| c.options().0).unwrap_or_default();
    // A dry run works before `login` (nothing is sent; every session counts as new).
    let creds: Option<Credentials> = match resolve_credentials(config.as_ref(), &ProcessEnv) {
        Ok(c) => Some(c),
        Err(_) if args.dry_run && !args.all => None,
        Err(e) => return Err(e.into()),
    };
    let source = match locate_source(args.data_dir.as_deref())? {
        Ok(source) => source,
        Err(dir) => return Ok(Made::NoHistory(dir)),
    };
    let mut store = source.open()?;
    let listing = store.list()?;
    let listed = listing.sessions;
    let filter = SessionFilter {
        since_ms: args.since,
        projects: project_roots(args)?,
        ids: args.session.clone(),
    };
    let selected: Vec<SessionSummary> = listed
        .iter()
        .filter(|s| filter.matches(s))
        .cloned()
        .collect();

    let mut failures: Vec<Failure> = Vec::new();
    for id in &args.session {
        if !listed.iter().any(|s| s.id == *id) {
            failures.push(Failure {
                session_id: id.clone(),
                title: None,
                message_id: None,
                reason: format!("no such session in {}", source.path().display()),
            });
        }
    }

    let mut records = match &creds {
        Some(c) => {
            let dir = paths::state_dir(&ProcessEnv)?;
            let path = SyncRecords::path_for(&dir, &c.url, &c.key.masked());
            Some(
                SyncRecords::load(path.clone(), &c.url)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
        }
        None => None,
    };
    // A key rotation (no records for this key, some for the same deployment under
    // another): those records are the baseline and the server says which sessions it
    // has, so only the sessions it lacks and those changed since go out.
    let baseline: HashMap<String, SyncRecord> = match (&creds, &records) {
        (Some(c), Some(own)) if own.is_empty() && !args.force => {
            SyncRecords::of_other_keys(&paths::state_dir(&ProcessEnv)?, &c.url, own.path())
        }
        _ => HashMap::new(),
    };
    let rotated = !baseline.is_empty();
    if let Some(r) = records.as_ref().filter(|r| r.unreadable_lines() > 0) {
        ui::warn(&format!(
            "skipped {} in {} (their sessions are sent again; the file is rewritten without them)",
            plural(r.unreadable_lines(), "unreadable line", "unreadable lines"),
            r.path().display()
        ));
    }

    let jobs = usize::from(args.jobs);
    let retry_budget = Duration::from_secs(args.timeout);
    let shared = Shared {
        http: Http::for_bulk(REQUEST_TIMEOUT.min(retry_budget), jobs + 1),
        endpoint: creds
            .as_ref()
            .map(|c| Endpoint::new(c.url.clone(), c.key.clone())),
        options,
        pause: Mutex::new(Pause::new(RetryPolicy::default())),
        retry_budget,
        dry_run: args.dry_run,
        interrupted: Arc::clone(interrupted),
        halted: AtomicBool::new(false),
        halt: Mutex::new(None),
    };

    // --all (or a key rotation): what the server already has.
    let ask_server = args.all || rotated;
    let on_server: Option<HashSet<String>> = if ask_server {
        let endpoint = shared
            .endpoint
            .as_ref()
            .context("--all needs credentials: run `opencode-sync login`")?;
        match shared.deliver(&endpoint.session_list()) {
            Sent::Delivered(body) => Some(
                serde_json::from_value::<SessionListResponse>(body)
                    .context("the server's session list is not {\"sessionIds\": [...]}")?
                    .session_ids
                    .into_iter()
                    .collect(),
            ),
            Sent::Rejected(reason) => bail!("the server refused to list its sessions: {reason}"),
            Sent::Stopped => None,
        }
    } else {
        None
    };

    let mode = if args.force {
        Mode::Force
    } else if ask_server {
        Mode::Missing
    } else {
        Mode::Changed
    };
    // Rows of no session are named unless the run is about named sessions only.
    let mut notes: Vec<RowNote> = if args.session.is_empty() {
        listing.notes
    } else {
        Vec::new()
    };
    let mut plan = Vec::new();
    let (mut unchanged, mut found_on_server) = (0usize, 0usize);
    let listing_ok = !ask_server || on_server.is_some();
    if listing_ok {
        for summary in &selected {
            let own = records.as_ref().and_then(|r| r.get(&summary.id)).cloned();
            let from_baseline = own.is_none();
            let prev = own.or_else(|| baseline.get(&summary.id).cloned());
            let on = on_server.as_ref().map(|set| set.contains(&summary.id));
            match backfill::decide(mode, prev.as_ref(), summary, on) {
                Decision::Send {
                    reason,
                    messages_since,
                } => plan.push((summary.clone(), reason, messages_since, prev)),
                Decision::Skip(SkipReason::Unchanged) => {
                    unchanged += 1;
                    // Unchanged since another key sent it: recorded for this key too.
                    if from_baseline
                        && !args.dry_run
                        && let (Some(r), Some(p)) = (records.as_mut(), prev.as_ref())
                    {
                        r.put(p.clone())
                            .with_context(|| format!("writing {}", r.path().display()))?;
                    }
                    // Its odd rows are still there: named again from the record.
                    notes.extend(prev.map(|p| p.notes).unwrap_or_default());
                }
                Decision::Skip(SkipReason::OnServer) => {
                    found_on_server += 1;
                    if !args.dry_run
                        && let Some(r) = records.as_mut()
                    {
                        r.put(backfill::record_on_server(
                            &summary.id,
                            summary.time_updated,
                            None,
                        ))
                        .with_context(|| format!("writing {}", r.path().display()))?;
                    }
                }
            }
        }
    }
    let planned = plan.len();
    Ok(Made::Plan(Box::new(Plan {
        creds,
        source,
        store,
        found: listed.len(),
        selected: selected.len(),
        failures,
        records,
        shared,
        jobs,
        notes,
        work: plan,
        planned,
        unchanged,
        found_on_server,
        rotated_from: rotated.then_some(baseline.len()),
    })))
}
