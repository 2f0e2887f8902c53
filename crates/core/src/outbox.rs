//! The durable outbox, as a model: what a queued record is, how it is named on disk, in
//! what order records go out, and what happens to one after the server answered. The
//! front ends (the wasm plugin through its host, the CLI through `std::fs`) only list,
//! read, write, rename and delete files in the outbox directory.
//!
//! On disk, one record is one file, written atomically (temporary file + rename):
//!
//! ```text
//! <queuedAt:13>-<writer:8>-<counter:6>.<session id>.<kind>.<id>.json
//! ```
//!
//! Names sort in queue order, so the oldest record is the first name. A newer upsert of
//! the same key is a new file and the older file is deleted; it is sent at the older
//! one's turn, and a session's record always before its messages (see [`plan`]).
//! Several processes share the directory: a sender claims a record by renaming it to
//! `<name>.claim-<ms>-<writer>` (rename is atomic; the loser sees "not found"), and
//! returns or deletes it after the attempt. A claim whose writer is known to be dead, or
//! older than [`STALE_CLAIM_MS`], may be taken back. Upserts are idempotent on the
//! server, so the rare double send (a crash between "delivered" and "deleted") is
//! harmless.
//!
//! A message OpenCode is still writing is kept as a *draft*,
//! `<queuedAt>-<writer>-<counter>.<session id>.draft.<id>.json`: nobody sends it while
//! its writer runs (the writer sends the complete message later, which supersedes the
//! draft), and anyone sends it once the writer is dead (killed mid-turn) or the draft is
//! older than [`STALE_DRAFT_MS`]. The writer tag names the process
//! (`<random>p<pid>`, see [`writer_tag`]) so that a reader can tell.
//!
//! A front end that only stores and sends upserts (the plugin) holds them as
//! [`Prepared`]: serialized once, written as the same record text, read back without
//! parsing the payload.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::{Endpoint, Outcome, Request, Route};
use crate::engine::Upsert;
use crate::retry::RetryPolicy;

/// Directory name under the state directory.
pub const DIR: &str = "outbox";
/// Where records the server refused are kept, with the reason, for `status` to show.
pub const QUARANTINE_DIR: &str = "quarantine";
/// A claim this old belongs to a process that died mid-send.
pub const STALE_CLAIM_MS: i64 = 120_000;
/// A draft this old is sent even when its writer seems alive (a reused pid, say): the
/// complete message, if it ever comes, supersedes it on the server.
pub const STALE_DRAFT_MS: i64 = 30 * 60_000;
/// Records beyond this are still written, with a warning: never dropped silently.
pub const SOFT_LIMIT_RECORDS: usize = 50_000;
/// The record format version.
const VERSION: u32 = 1;

/// One queued upsert and its delivery history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(rename = "v")]
    pub version: u32,
    pub queued_at: i64,
    pub attempts: u32,
    /// Not to be sent before this time (ms since the epoch).
    pub not_before: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub upsert: Upsert,
}

impl Record {
    pub fn new(upsert: Upsert, now: i64) -> Self {
        Self {
            version: VERSION,
            queued_at: now,
            attempts: 0,
            not_before: 0,
            last_error: None,
            upsert,
        }
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a record file. A torn or corrupt file is an error to skip, never a panic.
    pub fn decode(text: &str) -> Result<Self, OutboxError> {
        let record: Self =
            serde_json::from_str(text).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        if record.version != VERSION {
            return Err(OutboxError::Corrupt(format!(
                "unknown record version {}",
                record.version
            )));
        }
        Ok(record)
    }
}

/// Which kind of upsert a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Session,
    Message,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Message => "message",
        }
    }
}

/// An upsert serialized once: its payload's JSON is both the request body and, verbatim,
/// the payload of its record ([`Prepared::record`] writes what [`Record::encode`]
/// writes). A record read back with [`Prepared::decode`] is checked like
/// [`Record::decode`] checks it, except that the payload is only required to be JSON
/// with its ids: it is never parsed into the payload types (what the server makes of it
/// decides, as for any request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub kind: Kind,
    pub session_id: String,
    /// Its own id (session or message id).
    pub id: String,
    /// The payload as JSON.
    pub payload: String,
}

impl Prepared {
    pub fn new(upsert: &Upsert) -> Self {
        let (kind, payload) = match upsert {
            Upsert::Session(s) => (Kind::Session, serde_json::to_string(s)),
            Upsert::Message(m) => (Kind::Message, serde_json::to_string(m)),
        };
        Self {
            kind,
            session_id: upsert.session_id().to_owned(),
            id: upsert.id().to_owned(),
            payload: payload.unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    /// As [`Upsert::key`].
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }

    /// As [`Upsert::request`].
    pub fn request(&self, endpoint: &Endpoint) -> Request {
        let route = match self.kind {
            Kind::Session => Route::Session,
            Kind::Message => Route::Message,
        };
        endpoint.post_json(route, self.payload.clone())
    }

    /// As [`file_name`].
    pub fn file_name(&self, queued_at: i64, writer: &str, counter: u64) -> String {
        name_of(
            self.kind.as_str(),
            &self.session_id,
            &self.id,
            queued_at,
            writer,
            counter,
        )
    }

    /// As [`draft_file_name`].
    pub fn draft_file_name(&self, queued_at: i64, writer: &str, counter: u64) -> String {
        name_of(
            "draft",
            &self.session_id,
            &self.id,
            queued_at,
            writer,
            counter,
        )
    }

    /// The record file's text: exactly [`Record::encode`] of a record of this upsert
    /// queued at `queued_at` with these attempts and error (and no `notBefore`).
    pub fn record(&self, queued_at: i64, attempts: u32, last_error: Option<&str>) -> String {
        self.record_with(&History {
            queued_at,
            attempts,
            not_before: 0,
            last_error: last_error.map(str::to_owned),
        })
    }

    /// The record file's text with its delivery history: exactly [`Record::encode`] of
    /// a record of this upsert with that history.
    pub fn record_with(&self, history: &History) -> String {
        let History {
            queued_at,
            attempts,
            not_before,
            last_error,
        } = history;
        let mut text = String::with_capacity(self.payload.len() + 128);
        let _ = write!(
            text,
            r#"{{"v":{VERSION},"queuedAt":{queued_at},"attempts":{attempts},"notBefore":{not_before},"#
        );
        if let Some(error) = last_error {
            text.push_str(r#""lastError":"#);
            text.push_str(&serde_json::to_string(error).unwrap_or_default());
            text.push(',');
        }
        let _ = write!(
            text,
            r#""upsert":{{"kind":"{}","payload":{}}}}}"#,
            self.kind.as_str(),
            self.payload
        );
        text
    }

    /// Reads a record file (see the type's docs). A torn or corrupt file is an error.
    /// The fields it does not use are still checked as [`Record::decode`] checks them
    /// (required, of their type, not repeated), so that what one calls corrupt is
    /// corrupt for the other; the payload is borrowed as raw text, never parsed into
    /// the payload types.
    pub fn decode(text: &str) -> Result<Self, OutboxError> {
        Self::decode_with_history(text).map(|(prepared, _)| prepared)
    }

    /// [`Prepared::decode`], with the record's delivery history.
    pub fn decode_with_history(text: &str) -> Result<(Self, History), OutboxError> {
        let corrupt = |e: serde_json::Error| OutboxError::Corrupt(e.to_string());
        let raw: RawRecord<'_> = serde_json::from_str(text).map_err(corrupt)?;
        if raw.version != VERSION {
            return Err(OutboxError::Corrupt(format!(
                "unknown record version {}",
                raw.version
            )));
        }
        let payload = raw.upsert.payload.get();
        let ids: PayloadIds = serde_json::from_str(payload).map_err(corrupt)?;
        let session_id = match raw.upsert.kind {
            Kind::Session => ids.external_id.clone(),
            Kind::Message => ids.session_external_id.ok_or_else(|| {
                OutboxError::Corrupt("missing field `sessionExternalId`".to_owned())
            })?,
        };
        let prepared = Self {
            kind: raw.upsert.kind,
            session_id,
            id: ids.external_id,
            payload: payload.to_owned(),
        };
        let history = History {
            queued_at: raw.queued_at,
            attempts: raw.attempts,
            not_before: raw.not_before,
            last_error: raw.last_error,
        };
        Ok((prepared, history))
    }
}

/// A record's delivery history: when it was queued, how often sending it failed, the
/// last failure, and when it may go again (ms since the epoch; 0: at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub queued_at: i64,
    pub attempts: u32,
    pub not_before: i64,
    pub last_error: Option<String>,
}

/// A record with its payload left as text (see [`Prepared::decode`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(rename = "v")]
    version: u32,
    queued_at: i64,
    attempts: u32,
    not_before: i64,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(borrow)]
    upsert: RawUpsert<'a>,
}

#[derive(Deserialize)]
struct RawUpsert<'a> {
    kind: Kind,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The ids in a payload: `externalId` required, `sessionExternalId` optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadIds {
    external_id: String,
    #[serde(default)]
    session_external_id: Option<String>,
}

/// Problems with one record file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("corrupt outbox record: {0}")]
    Corrupt(String),
}

/// What a file name in the outbox directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A queued record.
    Queued(RecordName),
    /// A record some process is sending.
    Claimed {
        name: RecordName,
        claimed_at: i64,
        writer: String,
    },
    /// Temporary files and anything else: not ours to touch.
    Other,
}

/// The parts of a record's file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordName {
    /// The full file name (`….json`); sorts in queue order.
    pub file: String,
    pub session_id: String,
    /// `session:<id>` or `message:<id>`, as [`Upsert::key`] (a draft has its message's
    /// key).
    pub key: String,
    /// A snapshot of a message still being written (see the module docs).
    pub draft: bool,
}

impl RecordName {
    /// When it was queued (ms since the epoch), from the name.
    pub fn queued_at(&self) -> Option<i64> {
        self.file.get(..13)?.parse().ok()
    }

    /// The tag of the process that wrote it, from the name.
    pub fn writer(&self) -> Option<&str> {
        let order = self.file.split('.').next()?;
        let (_, rest) = order.split_once('-')?;
        Some(rest.rsplit_once('-')?.0)
    }
}

/// A writer tag for a process: `<random>p<pid>` (the pid lets other processes tell
/// whether it still runs; the random part tells apart instances in one process and a
/// pid reused by a later process).
pub fn writer_tag(random: u32, pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("{random:08x}p{pid}"),
        None => format!("{random:08x}"),
    }
}

/// The pid in a writer tag made by [`writer_tag`].
pub fn writer_pid(writer: &str) -> Option<u32> {
    writer.rsplit_once('p')?.1.parse().ok()
}

/// Tells whether the process behind a writer tag still runs. Sure answers only:
/// `false` means known dead; anything unknown is alive.
pub trait Liveness {
    fn alive(&self, writer: &str) -> bool;
}

/// Every writer counts as alive: only age frees claims and drafts.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeAlive;

impl Liveness for AssumeAlive {
    fn alive(&self, _writer: &str) -> bool {
        true
    }
}

/// Liveness by pid: this process's own tags are alive, another tag with this process's
/// pid belongs to a dead process whose pid was reused, and any other pid is asked of the
/// system through `pid_alive`.
pub struct PidLiveness<'a> {
    pub own_pid: Option<u32>,
    pub own_tags: &'a [String],
    pub pid_alive: &'a dyn Fn(u32) -> bool,
}

impl std::fmt::Debug for PidLiveness<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PidLiveness")
            .field("own_pid", &self.own_pid)
            .field("own_tags", &self.own_tags)
            .finish_non_exhaustive()
    }
}

impl Liveness for PidLiveness<'_> {
    fn alive(&self, writer: &str) -> bool {
        let Some(pid) = writer_pid(writer) else {
            return true;
        };
        if self.own_pid == Some(pid) {
            return self.own_tags.iter().any(|t| t == writer);
        }
        (self.pid_alive)(pid)
    }
}

/// Makes ids safe for a file name (OpenCode ids are `[A-Za-z0-9_]`, so this is a no-op
/// for them; anything else is replaced, and the full key is in the file anyway).
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '~'
            }
        })
        .take(120)
        .collect()
}

/// The file name for a new record. `writer` is the writing process's tag (see
/// [`writer_tag`]); `counter` increases within it.
pub fn file_name(upsert: &Upsert, queued_at: i64, writer: &str, counter: u64) -> String {
    let kind = match upsert {
        Upsert::Session(_) => "session",
        Upsert::Message(_) => "message",
    };
    name_of(
        kind,
        upsert.session_id(),
        upsert.id(),
        queued_at,
        writer,
        counter,
    )
}

/// The file name for a draft of a message still being written.
pub fn draft_file_name(upsert: &Upsert, queued_at: i64, writer: &str, counter: u64) -> String {
    name_of(
        "draft",
        upsert.session_id(),
        upsert.id(),
        queued_at,
        writer,
        counter,
    )
}

fn name_of(
    kind: &str,
    session_id: &str,
    id: &str,
    queued_at: i64,
    writer: &str,
    counter: u64,
) -> String {
    format!(
        "{:013}-{}-{:06}.{}.{kind}.{}.json",
        queued_at.max(0),
        safe(writer),
        counter % 1_000_000,
        safe(session_id),
        safe(id)
    )
}

/// A spare file: a record file a writer is done with (delivered, superseded), kept to
/// write its next record into, since rewriting a file costs a fraction of creating one
/// (`spare-<writer>-<n>`). Not a record ([`parse_entry`] says [`Entry::Other`]); a dead
/// writer's spares are for deleting (see [`spare_writer`]).
pub fn spare_name(writer: &str, n: u64) -> String {
    format!("spare-{}-{n}", safe(writer))
}

/// The writer of a spare file named by [`spare_name`].
pub fn spare_writer(file_name: &str) -> Option<&str> {
    let (writer, n) = file_name.strip_prefix("spare-")?.rsplit_once('-')?;
    n.parse::<u64>().ok().map(|_| writer)
}

/// The claim name a sender renames a record to.
pub fn claim_name(file: &str, now: i64, writer: &str) -> String {
    format!("{file}.claim-{:013}-{}", now.max(0), safe(writer))
}

/// Classifies a directory entry.
pub fn parse_entry(file_name: &str) -> Entry {
    if let Some((file, claim)) = file_name.split_once(".claim-") {
        let Some(name) = parse_record_name(file) else {
            return Entry::Other;
        };
        let Some((at, writer)) = claim.split_once('-') else {
            return Entry::Other;
        };
        return match at.parse() {
            Ok(claimed_at) => Entry::Claimed {
                name,
                claimed_at,
                writer: writer.to_owned(),
            },
            Err(_) => Entry::Other,
        };
    }
    parse_record_name(file_name).map_or(Entry::Other, Entry::Queued)
}

fn parse_record_name(file: &str) -> Option<RecordName> {
    let stem = file.strip_suffix(".json")?;
    let mut fields = stem.split('.');
    let (_order, session, kind, id) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let (key_kind, draft) = match kind {
        "session" => ("session", false),
        "message" => ("message", false),
        "draft" => ("message", true),
        _ => return None,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(RecordName {
        file: file.to_owned(),
        session_id: session.to_owned(),
        key: format!("{key_kind}:{id}"),
        draft,
    })
}

/// What to do with the directory, given its listing: which records to send in what
/// order, which claims to take back, which older duplicates to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Queued records in send order. A record whose session has an older record
    /// claimed by a live sender is held back, so a session's records arrive in order
    /// (the session before its messages: the server keeps `createdAt` only on insert).
    pub sendable: Vec<RecordName>,
    /// Every live queued record (superseded ones excluded), in send order: queue order,
    /// except that a session's record goes at the place of its session's oldest live
    /// record. What a process that sends strictly in order loads at start.
    pub queued: Vec<RecordName>,
    /// Stale claims to rename back to their record name.
    pub reclaim: Vec<(String, String)>,
    /// Records a live sender has claimed (by their queue names): the rest of their
    /// sessions waits until they are done.
    pub held: Vec<RecordName>,
    /// Files superseded by a newer record of the same key.
    pub superseded: Vec<String>,
    /// Drafts of messages their (live) writers are still writing: not to be sent.
    pub drafts_held: usize,
    /// Queued plus claimed records, and held drafts.
    pub total: usize,
}

/// Plans a drain from a directory listing. `liveness` tells which writers are dead:
/// their claims are taken back at once and their drafts are sent.
pub fn plan(file_names: &[String], now: i64, liveness: &dyn Liveness) -> Plan {
    let mut queued = Vec::new();
    let mut drafts = Vec::new();
    let mut final_keys = std::collections::HashSet::new();
    let mut busy_sessions = std::collections::HashSet::new();
    let mut plan = Plan::default();
    for file in file_names {
        match parse_entry(file) {
            Entry::Queued(name) if name.draft => drafts.push(name),
            Entry::Queued(name) => {
                final_keys.insert(name.key.clone());
                queued.push(name);
            }
            Entry::Claimed {
                name,
                claimed_at,
                writer,
            } => {
                plan.total += 1;
                if !name.draft {
                    final_keys.insert(name.key.clone());
                }
                if now.saturating_sub(claimed_at) > STALE_CLAIM_MS || !liveness.alive(&writer) {
                    plan.reclaim.push((file.clone(), name.file.clone()));
                } else {
                    busy_sessions.insert(name.session_id.clone());
                    plan.held.push(name);
                }
            }
            Entry::Other => {}
        }
    }
    // A draft gives way to the complete message, and to a newer draft. One whose writer
    // still runs is held; one whose writer died is sent like any record.
    drafts.sort_unstable();
    let mut newest_draft = std::collections::HashMap::new();
    for (i, name) in drafts.iter().enumerate() {
        newest_draft.insert(name.key.clone(), i);
    }
    for (i, name) in drafts.into_iter().enumerate() {
        if final_keys.contains(&name.key) || newest_draft.get(&name.key) != Some(&i) {
            plan.superseded.push(name.file);
            continue;
        }
        let stale = name
            .queued_at()
            .is_none_or(|at| now.saturating_sub(at) > STALE_DRAFT_MS);
        let writer_alive = name.writer().is_some_and(|w| liveness.alive(w));
        if stale || !writer_alive {
            queued.push(name);
        } else {
            plan.drafts_held += 1;
            plan.total += 1;
        }
    }
    queued.sort_unstable();
    plan.total += queued.len();
    // Newest record per key wins; older ones are superseded.
    let mut newest = std::collections::HashMap::new();
    for (i, name) in queued.iter().enumerate() {
        newest.insert(name.key.clone(), i);
    }
    let mut live = Vec::with_capacity(queued.len());
    for (i, name) in queued.into_iter().enumerate() {
        if newest.get(&name.key) == Some(&i) {
            live.push(name);
        } else {
            plan.superseded.push(name.file);
        }
    }
    // A newer session record replaces an older one at the older one's turn: a session's
    // record goes out before its messages (the first record of a session creates it on
    // the server, and `createdAt` is kept only then). Its file, written later, sorts
    // after messages queued meanwhile, so it takes the place of its session's oldest
    // live record.
    let mut first_of_session = std::collections::HashMap::new();
    for (i, name) in live.iter().enumerate() {
        first_of_session.entry(name.session_id.clone()).or_insert(i);
    }
    let mut live: Vec<((usize, bool), RecordName)> = live
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let place = if name.key.starts_with("session:") {
                (
                    first_of_session.get(&name.session_id).copied().unwrap_or(i),
                    false,
                )
            } else {
                (i, true)
            };
            (place, name)
        })
        .collect();
    live.sort_unstable_by_key(|(place, _)| *place);
    let mut blocked = busy_sessions;
    for (_, name) in live {
        if !blocked.contains(&name.session_id) {
            // Only the oldest record of each session goes in one pass.
            blocked.insert(name.session_id.clone());
            plan.sendable.push(name.clone());
        }
        plan.queued.push(name);
    }
    plan
}

/// What to do with a record after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Delivered: delete it.
    Delete,
    /// Try again later: write this updated record back.
    Retry(Record),
    /// The server refused it for good: move it to quarantine with the reason.
    Quarantine(Record),
    /// The key was refused: put the record back unchanged and stop sending until the
    /// credentials change.
    PauseAuth(String),
    /// The server redirects (never followed): write this record back (its last error
    /// names the redirect) and stop sending, since retrying cannot help until the URL
    /// changes.
    Misdirected(Record),
}

/// Decides a record's fate from the server's answer.
pub fn dispose(
    mut record: Record,
    outcome: &Outcome,
    now: i64,
    policy: &RetryPolicy,
    unit_random: f64,
) -> Disposition {
    match outcome {
        Outcome::Delivered(_) => Disposition::Delete,
        Outcome::AuthFailed(reason) => Disposition::PauseAuth(reason.clone()),
        Outcome::Rejected(reason) => {
            record.last_error = Some(reason.clone());
            record.attempts += 1;
            Disposition::Quarantine(record)
        }
        Outcome::Redirected(reason) => {
            record.attempts += 1;
            record.last_error = Some(reason.clone());
            Disposition::Misdirected(record)
        }
        Outcome::Retry { after_ms, reason } => {
            record.attempts += 1;
            record.last_error = Some(reason.clone());
            let delay = policy.delay_ms(record.attempts, *after_ms, unit_random);
            record.not_before = now.saturating_add(delay as i64);
            Disposition::Retry(record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MessagePayload, SessionPayload};
    use proptest::prelude::*;

    fn session(id: &str) -> Upsert {
        Upsert::Session(SessionPayload {
            external_id: id.into(),
            title: Some("t".into()),
            cost: Some(0.25),
            ..Default::default()
        })
    }

    fn message(session: &str, id: &str) -> Upsert {
        Upsert::Message(MessagePayload {
            session_external_id: session.into(),
            external_id: id.into(),
            ..Default::default()
        })
    }

    #[test]
    fn records_round_trip_and_corruption_is_an_error() {
        let r = Record::new(session("ses_1"), 5);
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        let text = r.encode();
        assert!(Record::decode(&text[..text.len() / 2]).is_err());
        assert!(Record::decode("").is_err());
        assert!(Record::decode(&text.replace("\"v\":1", "\"v\":9")).is_err());
    }

    #[test]
    fn prepared_upserts_write_and_read_the_same_records() {
        let mut with_error = session("ses_1");
        if let Upsert::Session(s) = &mut with_error {
            s.title = Some("a \"quoted\" title\nwith ✓".into());
        }
        for u in [session("ses_1"), message("ses_1", "msg_2"), with_error] {
            let p = Prepared::new(&u);
            assert_eq!(p.key(), u.key());
            assert_eq!(p.file_name(7, "w", 3), file_name(&u, 7, "w", 3));
            assert_eq!(p.draft_file_name(7, "w", 3), draft_file_name(&u, 7, "w", 3));
            let endpoint = Endpoint::new(
                crate::endpoint::SiteUrl::parse("https://x.convex.site").unwrap(),
                crate::api_key::ApiKey::parse("osk_0123456789abcdefghijklmnopqrstuv").unwrap(),
            );
            assert_eq!(p.request(&endpoint), u.request(&endpoint));
            let text = p.record(5, 0, None);
            assert_eq!(text, Record::new(u.clone(), 5).encode());
            assert_eq!(Prepared::decode(&text).unwrap(), p);
            let mut failed = Record::new(u.clone(), 6);
            failed.attempts = 1;
            failed.last_error = Some("HTTP 400: \"bad\"\n".into());
            assert_eq!(p.record(6, 1, Some("HTTP 400: \"bad\"\n")), failed.encode());
            assert_eq!(Prepared::decode(&failed.encode()).unwrap(), p);
        }
        let text = Record::new(message("s", "m"), 1).encode();
        for bad in [
            "",
            &text[..text.len() / 2],
            text.replace("\"v\":1", "\"v\":9").as_str(),
            text.replace("\"message\"", "\"other\"").as_str(),
            text.replace("\"sessionExternalId\"", "\"x\"").as_str(),
            text.replace("\"externalId\"", "\"y\"").as_str(),
            text.replace("\"queuedAt\":1", "\"queuedAt\":\"1\"")
                .as_str(),
        ] {
            assert!(Prepared::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_parse_back() {
        let name = file_name(&message("ses_1", "msg_2"), 1_795_565_197_869, "a1b2c3d4", 7);
        assert_eq!(
            name,
            "1795565197869-a1b2c3d4-000007.ses_1.message.msg_2.json"
        );
        let Entry::Queued(parsed) = parse_entry(&name) else {
            panic!()
        };
        assert_eq!(parsed.key, "message:msg_2");
        assert_eq!(parsed.session_id, "ses_1");
        let claim = claim_name(&name, 99, "w");
        assert!(matches!(
            parse_entry(&claim),
            Entry::Claimed { claimed_at: 99, .. }
        ));
        for other in [
            ".tmp-123",
            "x.json",
            "a.b.c.d.e.json",
            "1.s.other.i.json",
            "1.s.session.i.json.claim-zz-w",
        ] {
            assert_eq!(parse_entry(other), Entry::Other, "{other}");
        }
    }

    #[test]
    fn plan_orders_supersedes_and_keeps_session_order() {
        let f = |u: &Upsert, t: i64| file_name(u, t, "w", 0);
        let s1 = f(&session("s1"), 1);
        let m1 = f(&message("s1", "m1"), 2);
        let s2 = f(&session("s2"), 3);
        let s1_newer = f(&session("s1"), 4);
        let m2_claimed = claim_name(&f(&message("s3", "m2"), 5), 20_000, "other");
        let m3 = f(&message("s3", "m3"), 6);
        let stale = claim_name(&f(&message("s4", "m4"), 7), 0, "dead");
        let files = vec![
            m3.clone(),
            s1_newer.clone(),
            m1.clone(),
            s2.clone(),
            s1.clone(),
            m2_claimed,
            stale.clone(),
            ".x.tmp".into(),
        ];
        let p = plan(&files, 130_000, &AssumeAlive);
        assert_eq!(p.superseded, vec![s1]);
        // s1's newest record was written after m1, yet it goes first, at the place of
        // s1's oldest live record (the server keeps a session's createdAt only when its
        // first record creates it); s3 waits for its claimed record; s2 is independent.
        let order: Vec<&str> = p.sendable.iter().map(|n| n.file.as_str()).collect();
        assert_eq!(order, vec![s1_newer.as_str(), s2.as_str()]);
        let queued: Vec<&str> = p.queued.iter().map(|n| n.file.as_str()).collect();
        assert_eq!(
            queued,
            vec![s1_newer.as_str(), m1.as_str(), s2.as_str(), m3.as_str()]
        );
        assert_eq!(p.reclaim.len(), 1);
        assert_eq!(p.reclaim[0].0, stale);
        assert_eq!(p.total, 7);
    }

    /// Writers `…p1` run; every other pid is dead.
    struct OnlyPid1;
    impl Liveness for OnlyPid1 {
        fn alive(&self, writer: &str) -> bool {
            writer_pid(writer) == Some(1)
        }
    }

    #[test]
    fn spares_are_not_records() {
        let name = spare_name("a1b2c3d4p42", 7);
        assert_eq!(parse_entry(&name), Entry::Other);
        assert_eq!(spare_writer(&name), Some("a1b2c3d4p42"));
        for other in [
            "spare-",
            "spare-x",
            "spare-w-x",
            "x.spare-w-1",
            "1.s.session.i.json",
        ] {
            assert_eq!(spare_writer(other), None, "{other}");
        }
    }

    #[test]
    fn writer_tags_name_the_process() {
        let tag = writer_tag(0xa1b2_c3d4, Some(4242));
        assert_eq!(tag, "a1b2c3d4p4242");
        assert_eq!(writer_pid(&tag), Some(4242));
        assert_eq!(writer_pid(&writer_tag(7, None)), None);
        let name = file_name(&message("s", "m"), 1_795_565_197_869, &tag, 3);
        let Entry::Queued(parsed) = parse_entry(&name) else {
            panic!()
        };
        assert_eq!(parsed.writer(), Some(tag.as_str()));
        assert_eq!(parsed.queued_at(), Some(1_795_565_197_869));
        assert!(!parsed.draft);

        let own = vec![tag.clone()];
        let live = |pid: u32| pid == 10;
        let check = PidLiveness {
            own_pid: Some(4242),
            own_tags: &own,
            pid_alive: &live,
        };
        assert!(check.alive(&tag), "this process");
        assert!(!check.alive("00000001p4242"), "a dead process with our pid");
        assert!(check.alive("00000001p10"));
        assert!(!check.alive("00000001p11"));
        assert!(check.alive("00000001"), "no pid: unknown, so alive");
    }

    #[test]
    fn drafts_wait_for_their_writer_and_give_way_to_the_complete_message() {
        let now = 10_000_000;
        let live_draft = draft_file_name(&message("s1", "m1"), now - 10, "aaaaaaaap1", 0);
        let dead_draft = draft_file_name(&message("s2", "m2"), now - 10, "bbbbbbbbp2", 0);
        let old_draft = draft_file_name(&message("s3", "m3"), 1, "ccccccccp1", 0);
        let done = draft_file_name(&message("s4", "m4"), now - 10, "aaaaaaaap1", 1);
        let done_final = file_name(&message("s4", "m4"), now - 5, "aaaaaaaap1", 2);
        let older_draft = draft_file_name(&message("s1", "m1"), now - 20, "aaaaaaaap1", 3);
        let Entry::Queued(parsed) = parse_entry(&live_draft) else {
            panic!()
        };
        assert!(parsed.draft);
        assert_eq!(parsed.key, "message:m1");

        let files = vec![
            live_draft.clone(),
            dead_draft.clone(),
            old_draft.clone(),
            done.clone(),
            done_final.clone(),
            older_draft.clone(),
        ];
        let p = plan(&files, now, &OnlyPid1);
        let queued: Vec<&str> = p.queued.iter().map(|n| n.file.as_str()).collect();
        assert_eq!(
            queued,
            [old_draft.as_str(), dead_draft.as_str(), done_final.as_str()]
        );
        let mut superseded = p.superseded.clone();
        superseded.sort();
        let mut want = vec![done, older_draft];
        want.sort();
        assert_eq!(superseded, want);
        assert_eq!(p.drafts_held, 1, "the live writer's draft is held");
        assert_eq!(p.total, 4);
        // Everyone alive: only the stale draft goes.
        let p = plan(&files, now, &AssumeAlive);
        assert_eq!(p.drafts_held, 2);
    }

    #[test]
    fn a_dead_senders_claim_is_taken_back_at_once() {
        let file = file_name(&message("s", "m"), 5, "w", 0);
        let dead = claim_name(&file, 10, "bbbbbbbbp2");
        let live = claim_name(&file_name(&message("t", "n"), 5, "w", 1), 10, "aaaaaaaap1");
        let p = plan(&[dead.clone(), live], 20, &OnlyPid1);
        assert_eq!(p.reclaim, vec![(dead, file)]);
    }

    #[test]
    fn dispositions() {
        let policy = RetryPolicy::default();
        let r = Record::new(session("s"), 0);
        assert_eq!(
            dispose(
                r.clone(),
                &Outcome::Delivered(serde_json::Value::Null),
                10,
                &policy,
                0.5
            ),
            Disposition::Delete
        );
        let Disposition::Retry(next) = dispose(
            r.clone(),
            &Outcome::Retry {
                after_ms: Some(2000),
                reason: "HTTP 429".into(),
            },
            10,
            &policy,
            0.5,
        ) else {
            panic!()
        };
        assert_eq!((next.attempts, next.not_before), (1, 2010));
        assert_eq!(next.last_error.as_deref(), Some("HTTP 429"));
        assert!(
            matches!(dispose(r.clone(), &Outcome::Rejected("bad".into()), 0, &policy, 0.5), Disposition::Quarantine(q) if q.last_error.as_deref() == Some("bad"))
        );
        assert_eq!(
            dispose(
                r.clone(),
                &Outcome::AuthFailed("no".into()),
                0,
                &policy,
                0.5
            ),
            Disposition::PauseAuth("no".into())
        );
        let Disposition::Misdirected(kept) =
            dispose(r, &Outcome::Redirected("HTTP 307".into()), 0, &policy, 0.5)
        else {
            panic!("a redirect stops sending and keeps the record")
        };
        assert_eq!(
            (kept.attempts, kept.last_error.as_deref()),
            (1, Some("HTTP 307"))
        );
    }

    #[test]
    fn odd_records_are_read_or_refused_as_the_derive_does() {
        let p = r#"{"externalId":"s","sessionExternalId":"t"}"#;
        // Unit variants as names or `{"name": null}`, records as arrays, unknown fields
        // skipped, a lone surrogate only where it is read; wrong types, repeated fields
        // and a wrong length refused.
        let want = [
            true, true, false, false, false, true, false, false, false, false, false, true, false,
            true, true, false, true, true, true,
        ];
        for (text, want) in [
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":{{"session":null}},"payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":{{"session":1}},"payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":{{}},"payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":{{"session":null,"x":null}},"payload":{p}}}}}"#),
            format!(r#"[1, -5, 4294967295, -1, null, ["session", {p}]]"#),
            format!(r#"[1, -5, 4294967296, -1, null, ["session", {p}]]"#),
            format!(r#"[1, -5, 0, -1, ["session", {p}]]"#),
            format!(r#"{{"v":1,"queuedAt":1.5,"attempts":0,"notBefore":0,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":-0,"attempts":0,"notBefore":0,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"lastError":7,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"lastError":null,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":"message","payload":{p}}}}}"#),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":"message","payload":{p},"x":[]}},"y":{{}}}}"#),
            r#"{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{"kind":"session","payload":["a","b"]}}"#.to_owned(),
            r#"{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{"kind":"session","payload":{"externalId":"\ud800"}}}"#.to_owned(),
            r#"{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{"kind":"session","payload":{"externalId":"a","deep":"\ud800"}}}"#.to_owned(),
            format!(r#"{{"v":1,"queuedAt":1,"attempts":0,"notBefore":0,"upsert":{{"kind":"session","payload":{{"externalId":"a","deep":{}1{}}}}}}}"#, "[".repeat(200), "]".repeat(200)),
            format!(r#" {{ "v" : 1 , "queuedAt" : 1 , "attempts" : 0 , "notBefore" : 0 , "upsert" : {{ "kind" : "message" , "payload" :  {p}  }} }} "#),
        ]
        .into_iter()
        .zip(want)
        {
            assert_eq!(Prepared::decode(&text).is_ok(), want, "{text}");
        }
    }

    fn arb_upsert() -> impl Strategy<Value = (Upsert, Option<String>)> {
        (
            any::<bool>(),
            "\\PC{0,8}",
            "[a-z_]{0,8}",
            proptest::option::of("\\PC{0,12}"),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
            proptest::option::of("\\PC{0,12}"),
        )
            .prop_map(|(is_session, sid, id, title, cost, error)| {
                let upsert = if is_session {
                    Upsert::Session(SessionPayload {
                        external_id: sid,
                        title,
                        cost,
                        ..Default::default()
                    })
                } else {
                    Upsert::Message(MessagePayload {
                        session_external_id: sid,
                        external_id: id,
                        text_content: title,
                        parts: Some(vec![crate::api::Part {
                            kind: "tool".into(),
                            content: serde_json::json!({"input": {"n": cost, "a": [[1], {}]}}),
                        }]),
                        ..Default::default()
                    })
                };
                (upsert, error)
            })
    }

    proptest! {
        /// Records written by this code read back as written; cut short they are
        /// refused; altered, the raw read agrees with the full parse.
        #[test]
        fn records_read_as_the_derive_read_them(
            (upsert, error) in arb_upsert(),
            queued_at in any::<i64>(),
            attempts in any::<u32>(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(&b"{}[],:\"\\0-1.e n"[..]),
        ) {
            let p = Prepared::new(&upsert);
            let text = p.record(queued_at, attempts, error.as_deref());
            let mut record = Record::new(upsert, queued_at);
            record.attempts = attempts;
            record.last_error = error;
            prop_assert_eq!(&text, &record.encode());
            prop_assert_eq!(Prepared::decode(&text).ok(), Some(p.clone()));
            // A record cut short (a torn write) is corrupt, never a shorter record.
            if let Some(prefix) = text.get(..cut.index(text.len())) {
                prop_assert!(Prepared::decode(prefix).is_err());
                prop_assert!(Record::decode(prefix).is_err());
            }
            // Altered, it is refused or read as some upsert, never a panic; what the full
            // parse accepts, the raw read accepts too, with the same ids.
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(altered) = String::from_utf8(bytes)
                && let Ok(full) = Record::decode(&altered)
            {
                let raw = Prepared::decode(&altered);
                prop_assert!(raw.is_ok(), "{}", altered);
                let raw = raw.map(|r| r.key()).unwrap_or_default();
                prop_assert_eq!(raw, full.upsert.key());
            }
        }

        #[test]
        fn decode_never_panics(text in "\\PC{0,300}") {
            let _ = Record::decode(&text);
            let _ = Prepared::decode(&text);
        }

        #[test]
        fn parse_entry_never_panics(name in "[a-z0-9._~-]{0,80}") {
            let _ = parse_entry(&name);
        }

        #[test]
        fn plan_sends_each_key_at_most_once(ops in proptest::collection::vec((0u8..3, 0u8..4, any::<bool>()), 0..40)) {
            let files: Vec<String> = ops.iter().enumerate().map(|(t, (s, m, is_session))| {
                let sid = format!("s{s}");
                let u = if *is_session { session(&sid) } else { message(&sid, &format!("m{s}{m}")) };
                file_name(&u, t as i64, "w", t as u64)
            }).collect();
            let p = plan(&files, 0, &AssumeAlive);
            let mut keys: Vec<&str> = p.sendable.iter().map(|n| n.key.as_str()).collect();
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            prop_assert_eq!(keys.len(), n);
            prop_assert_eq!(p.sendable.len() + p.superseded.len() <= files.len(), true);
        }
    }
}
