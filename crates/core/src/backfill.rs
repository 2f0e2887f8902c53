//! Backfill decisions, sans-I/O: which stored sessions `opencode-sync sync` sends, which
//! of their messages, what the local record of a synced session holds, and when the
//! session upsert has to be sent a second time. The CLI reads OpenCode's store and the
//! record file, sends, and asks this module what to do.
//!
//! The mapping itself is [`crate::map`], the same one the live plugin uses; the helpers
//! here only prepare its inputs the way the plugin's engine does (the session's last
//! assistant model, the messages the plugin would have sent).
//!
//! ## The session dedup window
//!
//! OpenSync skips a session update that arrives within 10 s of the row's last update
//! when title, model and project path are unchanged and the token counts are 0 or
//! unchanged (`opensync-api.md`). Messages also touch the row. So:
//! - a session the server does not have yet is created by its first upsert with every
//!   field, and the messages sent after it change none of those fields: one upsert is
//!   enough;
//! - a session sent again (it changed since the last sync) is updated by its first
//!   upsert unless the row was touched within the window, which the CLI knows only for
//!   its own sends (the record's `sentAt`). When that send was recent and the change is
//!   one the server could skip (cost or duration only), the upsert is sent once more
//!   [`CONFIRM_DELAY_MS`] after the session's last message: see [`confirm_needed`].
//!
//! ## Odd rows
//!
//! OpenCode's store is not always what its schema says (a text `time_created`, a
//! non-UTF-8 title, a `data` column that is JSON but not a message). A wrong-typed field
//! costs that field only ([`decode_leaving_out`]); a row that cannot be read at all is
//! left out. Either way the row is named once in the summary as a [`RowNote`], which the
//! session's record keeps, so a later run that skips the unchanged session still names it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::SessionPayload;
use crate::model::{CacheTokens, MessageInfo, PartInfo, SessionInfo, Tokens};
use crate::objects;

/// The server skips unchanged-looking session updates within this long of the last one.
pub const SESSION_DEDUP_WINDOW_MS: i64 = 10_000;
/// How long after a session's last request a confirming upsert is sent (window + slack
/// for clock granularity and request latency).
pub const CONFIRM_DELAY_MS: i64 = SESSION_DEDUP_WINDOW_MS + 1_000;

/// What the CLI keeps about one synced session (one line of the record file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// The session id.
    pub id: String,
    /// The session's `time_updated` (ms) when it was synced.
    pub updated: f64,
    /// The newest update time among the messages (and their parts) that were sent; the
    /// next sync of this session sends the messages updated at or after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_mark: Option<f64>,
    /// Local time (ms) of the session's last request; 0 when nothing was sent (the
    /// session was found on the server).
    #[serde(default)]
    pub sent_at: i64,
    /// What the server was last told about the session, when this CLI told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<SentSession>,
    /// The session's rows that were left out or read in part when it was last read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<RowNote>,
}

/// A row of OpenCode's store that backfill could not read whole: left out entirely
/// (`skipped`), or read without the fields `reason` names. Never holds row content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowNote {
    /// What the row is: `session`, `message` or `part` (or a JSON tree file of one).
    pub table: String,
    /// The row's id, when it has a usable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The session the row belongs to, when it belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Left out entirely (else sent without what `reason` names).
    pub skipped: bool,
    pub reason: String,
}

impl RowNote {
    /// A row left out entirely.
    pub fn skipped(
        table: &str,
        id: Option<&str>,
        session_id: Option<&str>,
        reason: String,
    ) -> Self {
        Self {
            table: table.to_owned(),
            id: id.filter(|i| !i.is_empty()).map(str::to_owned),
            session_id: session_id.filter(|i| !i.is_empty()).map(str::to_owned),
            skipped: true,
            reason,
        }
    }

    /// A row sent without some of its fields.
    pub fn partly_read(
        table: &str,
        id: Option<&str>,
        session_id: Option<&str>,
        reason: String,
    ) -> Self {
        Self {
            skipped: false,
            ..Self::skipped(table, id, session_id, reason)
        }
    }

    /// One line for the summary: `ses_1: message msg_2: skipped: data is not JSON`.
    pub fn line(&self) -> String {
        let what = match (&self.id, self.table.as_str()) {
            (Some(id), "session") if self.session_id.as_deref() == Some(id) => "session".to_owned(),
            (Some(id), table) => format!("{table} {id}"),
            (None, table) => format!("{table} without an id"),
        };
        let head = match &self.session_id {
            Some(s) if what != "session" => format!("{s}: {what}"),
            Some(s) => format!("{s}: session"),
            None => what,
        };
        let skipped = if self.skipped { "skipped: " } else { "" };
        format!("{head}: {skipped}{}", self.reason)
    }
}

/// At most this many notes are kept per session (and for the store as a whole); the rest
/// are counted in one last note, so a store full of broken rows cannot fill memory.
pub const MAX_NOTES: usize = 50;

/// Adds `note` to `notes` unless [`MAX_NOTES`] are there; counts it in `over` then.
pub fn push_note(notes: &mut Vec<RowNote>, over: &mut usize, note: RowNote) {
    if notes.len() < MAX_NOTES {
        notes.push(note);
    } else {
        *over += 1;
    }
}

/// The note that stands for `over` notes left off the list (none when 0).
pub fn notes_left_off(over: usize, session_id: Option<&str>) -> Option<RowNote> {
    (over > 0).then(|| RowNote {
        table: "row".to_owned(),
        id: None,
        session_id: session_id.map(str::to_owned),
        skipped: false,
        reason: format!("and {over} more rows not read whole (not listed)"),
    })
}

/// Decodes `obj` as `T`, leaving out each field whose value has the wrong type (and,
/// inside an object-valued field, only the wrong-typed fields of it): a text where a
/// number belongs costs that field, not the row. Returns the value and the dotted names
/// of what was left out (`cost`, `time.created`), or `None` when even the rest does not
/// decode. The common case (nothing wrong) decodes once.
pub fn decode_leaving_out<T: DeserializeOwned>(
    mut obj: Map<String, Value>,
) -> Option<(T, Vec<String>)> {
    if let Ok(value) = objects::from_value(Value::Object(obj.clone())) {
        return Some((value, Vec::new()));
    }
    let fits = |key: &str, value: &Value| {
        let mut alone = Map::new();
        alone.insert(key.to_owned(), value.clone());
        objects::from_value::<T>(Value::Object(alone)).is_ok()
    };
    let mut left_out = Vec::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let Some(value) = obj.get(&key) else { continue };
        if fits(&key, value) {
            continue;
        }
        if let Value::Object(inner) = value {
            let mut kept = Map::new();
            let mut dropped = Vec::new();
            for (sub, sub_value) in inner {
                let mut one = Map::new();
                one.insert(sub.clone(), sub_value.clone());
                if fits(&key, &Value::Object(one)) {
                    kept.insert(sub.clone(), sub_value.clone());
                } else {
                    dropped.push(format!("{key}.{sub}"));
                }
            }
            let kept = Value::Object(kept);
            if fits(&key, &kept) {
                obj.insert(key, kept);
                left_out.extend(dropped);
                continue;
            }
        }
        obj.remove(&key);
        left_out.push(key);
    }
    objects::from_value(Value::Object(obj))
        .ok()
        .map(|value| (value, left_out))
}

/// Whether a decoded message is one OpenCode writes (a user or an assistant turn): a
/// `data` column that is JSON but another shape decodes to an empty message, which must
/// not be sent.
pub fn is_message(info: &MessageInfo) -> bool {
    matches!(info.role.as_str(), "user" | "assistant")
}

/// The fields of a sent session payload that the server's dedup rule compares, plus a
/// hash of the whole payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentSession {
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
}

impl SentSession {
    pub fn of(payload: &SessionPayload) -> Self {
        Self {
            hash: payload_hash(payload),
            title: payload.title.clone(),
            model: payload.model.clone(),
            project_path: payload.project_path.clone(),
            prompt_tokens: payload.prompt_tokens,
            completion_tokens: payload.completion_tokens,
        }
    }
}

/// A stable hash (FNV-1a, 64 bit, hex) of a session payload's wire form.
pub fn payload_hash(payload: &SessionPayload) -> String {
    let text = serde_json::to_string(payload).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Whether the server's dedup rule would skip `next` if the row was last updated with
/// `prev` within the window: title, model and project path equal, and each token count
/// either not sent (0) or equal.
pub fn may_be_skipped(prev: &SentSession, next: &SessionPayload) -> bool {
    let tokens_same = |sent: Option<u64>, stored: Option<u64>| {
        sent.unwrap_or(0) == 0 || sent.unwrap_or(0) == stored.unwrap_or(0)
    };
    prev.title == next.title
        && prev.model == next.model
        && prev.project_path == next.project_path
        && tokens_same(next.prompt_tokens, prev.prompt_tokens)
        && tokens_same(next.completion_tokens, prev.completion_tokens)
}

/// Whether the session upsert just sent (at `first_sent_at`, local ms) must be sent once
/// more, [`CONFIRM_DELAY_MS`] after the session's last request, because the server may
/// have skipped it: this CLI touched the row within the window before, and the payload
/// changed only in fields the dedup rule does not compare.
pub fn confirm_needed(
    prev: Option<&SyncRecord>,
    payload: &SessionPayload,
    first_sent_at: i64,
) -> bool {
    let Some(prev) = prev else {
        return false;
    };
    let Some(sent) = &prev.sent else {
        return false;
    };
    prev.sent_at > 0
        && first_sent_at - prev.sent_at < SESSION_DEDUP_WINDOW_MS + 500
        && sent.hash != payload_hash(payload)
        && may_be_skipped(sent, payload)
}

/// The record written once a session and its messages were delivered.
pub fn record_after_send(
    id: &str,
    updated: f64,
    payload: &SessionPayload,
    msg_mark: Option<f64>,
    prev: Option<&SyncRecord>,
    sent_at: i64,
) -> SyncRecord {
    SyncRecord {
        id: id.to_owned(),
        updated,
        // Keep the old mark when no message was sent this time.
        msg_mark: msg_mark.or(prev.and_then(|p| p.msg_mark)),
        sent_at,
        sent: Some(SentSession::of(payload)),
        notes: Vec::new(),
    }
}

/// The record of a session skipped because the server already has it (`--all`): the
/// next run sends it again only when it changes.
pub fn record_on_server(id: &str, updated: f64, msg_mark: Option<f64>) -> SyncRecord {
    SyncRecord {
        id: id.to_owned(),
        updated,
        msg_mark,
        sent_at: 0,
        sent: None,
        notes: Vec::new(),
    }
}

/// How `sync` chooses sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sessions never synced from here, or changed since (the local record decides).
    Changed,
    /// `--all`: the server's session list decides instead of the local record; sessions
    /// changed since the last sync from here are still sent.
    Missing,
    /// `--force`: every selected session, whole.
    Force,
}

/// A stored session as listed, before its messages are read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSummary {
    pub id: String,
    pub title: Option<String>,
    pub directory: Option<String>,
    pub time_created: f64,
    pub time_updated: f64,
}

/// Why a session is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SendReason {
    /// Never synced from here.
    New,
    /// Changed since it was last synced.
    Changed,
    /// The server does not have it (`--all`).
    NotOnServer,
    /// `--force`.
    Forced,
}

/// Why a session is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// Synced from here and unchanged since.
    Unchanged,
    /// The server has it and it has not changed since it was last synced from here.
    OnServer,
}

/// What to do with one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Send {
        reason: SendReason,
        /// Send only the messages updated at or after this time (`None`: all).
        messages_since: Option<f64>,
    },
    Skip(SkipReason),
}

/// Decides one session. `on_server` is known in [`Mode::Missing`] only.
pub fn decide(
    mode: Mode,
    record: Option<&SyncRecord>,
    summary: &SessionSummary,
    on_server: Option<bool>,
) -> Decision {
    let changed = record.map(|r| r.updated != summary.time_updated);
    let since = record.and_then(|r| r.msg_mark);
    match (mode, changed, on_server) {
        (Mode::Force, _, _) => Decision::Send {
            reason: SendReason::Forced,
            messages_since: None,
        },
        (Mode::Missing, _, Some(false)) => Decision::Send {
            reason: SendReason::NotOnServer,
            messages_since: None,
        },
        (_, Some(true), _) => Decision::Send {
            reason: SendReason::Changed,
            messages_since: since,
        },
        (_, Some(false), _) => Decision::Skip(SkipReason::Unchanged),
        (Mode::Missing, None, Some(true)) => Decision::Skip(SkipReason::OnServer),
        (_, None, _) => Decision::Send {
            reason: SendReason::New,
            messages_since: None,
        },
    }
}

/// Whether a message whose newest update (its own or a part's) is `mark` goes out when
/// only messages since `since` are wanted.
pub fn message_selected(since: Option<f64>, mark: f64) -> bool {
    since.is_none_or(|s| mark >= s)
}

/// Whether the live plugin would ever have sent this message: one with parts, or a
/// completed assistant message (the engine sends a user message once its text arrives,
/// an assistant message when completed, and whatever has parts when the turn ends).
pub fn worth_sending(info: &MessageInfo, parts: &[PartInfo]) -> bool {
    !parts.is_empty() || (info.role == "assistant" && info.time.completed.is_some())
}

/// `(model, provider)` of the latest assistant message that names one: the plugin's
/// `SessionContext::last_model`. `messages` are in conversation order.
pub fn last_model<'a>(
    messages: impl DoubleEndedIterator<Item = &'a MessageInfo>,
) -> Option<(String, Option<String>)> {
    messages
        .rev()
        .filter(|m| m.role == "assistant")
        .find_map(|m| match m.model_and_provider() {
            (Some(model), provider) => Some((model, provider)),
            _ => None,
        })
}

/// Older OpenCode releases (the JSON `storage/` tree) kept no running totals on the
/// session: when it has neither tokens nor cost, they are the sums over its assistant
/// messages, as OpenCode 1.2+ computes them.
pub fn fill_missing_totals<'a>(
    info: &mut SessionInfo,
    messages: impl IntoIterator<Item = &'a MessageInfo>,
) {
    if info.tokens.is_some() || info.cost.is_some() {
        return;
    }
    let mut tokens = Tokens::default();
    let mut cost = 0.0;
    let mut any = false;
    for m in messages.into_iter().filter(|m| m.role == "assistant") {
        if let Some(t) = &m.tokens {
            tokens.input += t.input;
            tokens.output += t.output;
            tokens.reasoning += t.reasoning;
            tokens.cache = CacheTokens {
                read: tokens.cache.read + t.cache.read,
                write: tokens.cache.write + t.cache.write,
            };
            any = true;
        }
        if let Some(c) = m.cost.filter(|c| c.is_finite()) {
            cost += c;
            any = true;
        }
    }
    if any {
        info.tokens = Some(tokens);
        info.cost = Some(cost);
    }
}

/// `--since`, `--project` and `--session`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFilter {
    /// Sessions updated at or after this time (ms since the epoch).
    pub since_ms: Option<f64>,
    /// Sessions whose directory is one of these or inside one (absolute paths).
    pub projects: Vec<String>,
    /// Only these session ids.
    pub ids: Vec<String>,
}

impl SessionFilter {
    pub fn matches(&self, s: &SessionSummary) -> bool {
        self.since_ms.is_none_or(|t| s.time_updated >= t)
            && (self.ids.is_empty() || self.ids.contains(&s.id))
            && (self.projects.is_empty()
                || s.directory
                    .as_deref()
                    .is_some_and(|d| self.projects.iter().any(|p| path_within(d, p))))
    }
}

/// Whether `path` is `root` or inside it, comparing whole path components (`/a/bc` is
/// not inside `/a/b`). Both are absolute; `/` and `\` both separate components.
pub fn path_within(path: &str, root: &str) -> bool {
    let trim = |s: &str| s.trim_end_matches(['/', '\\']).to_owned();
    let (path, root) = (trim(path), trim(root));
    if root.is_empty() {
        // The filesystem root contains everything absolute.
        return path.is_empty() || path.starts_with(['/', '\\']);
    }
    path == root || (path.starts_with(&root) && path[root.len()..].starts_with(['/', '\\']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(id: &str, updated: f64) -> SessionSummary {
        SessionSummary {
            id: id.into(),
            time_updated: updated,
            directory: Some("/home/dev/app".into()),
            ..Default::default()
        }
    }

    fn record(id: &str, updated: f64, mark: Option<f64>) -> SyncRecord {
        SyncRecord {
            id: id.into(),
            updated,
            msg_mark: mark,
            sent_at: 1,
            sent: None,
            notes: Vec::new(),
        }
    }

    fn send(reason: SendReason, since: Option<f64>) -> Decision {
        Decision::Send {
            reason,
            messages_since: since,
        }
    }

    #[test]
    fn decisions_in_every_mode() {
        let s = summary("s", 20.0);
        let same = record("s", 20.0, Some(15.0));
        let old = record("s", 10.0, Some(9.0));
        use Mode::*;
        // Default: the local record decides.
        assert_eq!(decide(Changed, None, &s, None), send(SendReason::New, None));
        assert_eq!(
            decide(Changed, Some(&same), &s, None),
            Decision::Skip(SkipReason::Unchanged)
        );
        assert_eq!(
            decide(Changed, Some(&old), &s, None),
            send(SendReason::Changed, Some(9.0))
        );
        // --all: the server decides; local changes still go.
        assert_eq!(
            decide(Missing, None, &s, Some(true)),
            Decision::Skip(SkipReason::OnServer)
        );
        assert_eq!(
            decide(Missing, Some(&same), &s, Some(true)),
            Decision::Skip(SkipReason::Unchanged)
        );
        assert_eq!(
            decide(Missing, Some(&old), &s, Some(true)),
            send(SendReason::Changed, Some(9.0))
        );
        assert_eq!(
            decide(Missing, Some(&same), &s, Some(false)),
            send(SendReason::NotOnServer, None)
        );
        assert_eq!(
            decide(Missing, None, &s, Some(false)),
            send(SendReason::NotOnServer, None)
        );
        // --force: everything, whole.
        assert_eq!(
            decide(Force, Some(&same), &s, None),
            send(SendReason::Forced, None)
        );
    }

    #[test]
    fn message_selection_includes_the_boundary() {
        assert!(message_selected(None, 0.0));
        assert!(message_selected(Some(10.0), 10.0));
        assert!(message_selected(Some(10.0), 11.0));
        assert!(!message_selected(Some(10.0), 9.0));
    }

    fn payload(title: &str, prompt: u64, cost: f64) -> SessionPayload {
        SessionPayload {
            external_id: "s".into(),
            title: Some(title.into()),
            model: Some("m".into()),
            project_path: Some("/p".into()),
            prompt_tokens: (prompt > 0).then_some(prompt),
            completion_tokens: Some(5),
            cost: Some(cost),
            ..Default::default()
        }
    }

    #[test]
    fn dedup_rule_mirrors_the_server() {
        let prev = SentSession::of(&payload("T", 100, 0.1));
        assert!(may_be_skipped(&prev, &payload("T", 100, 0.2)));
        assert!(
            may_be_skipped(&prev, &payload("T", 0, 0.2)),
            "0 tokens never count"
        );
        assert!(!may_be_skipped(&prev, &payload("T", 101, 0.1)));
        assert!(!may_be_skipped(&prev, &payload("U", 100, 0.1)));
    }

    #[test]
    fn confirming_upsert_only_when_the_server_may_have_skipped_a_real_change() {
        let first = payload("T", 100, 0.1);
        let prev = record_after_send("s", 10.0, &first, Some(5.0), None, 100_000);
        // Cost-only change, within the window of our last send: confirm.
        assert!(confirm_needed(
            Some(&prev),
            &payload("T", 100, 0.2),
            105_000
        ));
        // Same change after the window: the first upsert lands.
        assert!(!confirm_needed(
            Some(&prev),
            &payload("T", 100, 0.2),
            111_000
        ));
        // Nothing changed: a skipped upsert loses nothing.
        assert!(!confirm_needed(Some(&prev), &first, 105_000));
        // Tokens changed: never skipped.
        assert!(!confirm_needed(
            Some(&prev),
            &payload("T", 150, 0.2),
            105_000
        ));
        // Never sent from here (new, or found on the server).
        assert!(!confirm_needed(None, &first, 105_000));
        let found = record_on_server("s", 10.0, None);
        assert!(!confirm_needed(
            Some(&found),
            &payload("T", 100, 0.2),
            105_000
        ));
    }

    #[test]
    fn records_keep_the_mark_and_round_trip() {
        let p = payload("T", 100, 0.1);
        let prev = record_after_send("s", 10.0, &p, Some(5.0), None, 7);
        let next = record_after_send("s", 12.0, &p, None, Some(&prev), 9);
        assert_eq!(next.msg_mark, Some(5.0));
        let line = serde_json::to_string(&next).unwrap();
        let back: SyncRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, next);
        let minimal: SyncRecord = serde_json::from_str(r#"{"id":"x","updated":3}"#).unwrap();
        assert_eq!(minimal, record_on_server("x", 3.0, None));
        assert_eq!(payload_hash(&p), payload_hash(&p.clone()));
        assert_ne!(payload_hash(&p), payload_hash(&payload("T", 100, 0.2)));
    }

    fn message(v: Value) -> MessageInfo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn messages_the_plugin_would_send() {
        let part: PartInfo = serde_json::from_value(json!({"id": "p", "type": "text"})).unwrap();
        let user = message(json!({"id": "m", "role": "user"}));
        let done = message(
            json!({"id": "a", "role": "assistant", "time": {"created": 1, "completed": 2}}),
        );
        let open = message(json!({"id": "b", "role": "assistant", "time": {"created": 1}}));
        assert!(worth_sending(&user, std::slice::from_ref(&part)));
        assert!(!worth_sending(&user, &[]));
        assert!(worth_sending(&done, &[]));
        assert!(!worth_sending(&open, &[]));
    }

    #[test]
    fn last_model_is_the_latest_assistant_one() {
        let ms = [
            message(
                json!({"id": "1", "role": "user", "model": {"providerID": "u", "modelID": "user-model"}}),
            ),
            message(json!({"id": "2", "role": "assistant", "modelID": "m1", "providerID": "p1"})),
            message(json!({"id": "3", "role": "assistant", "modelID": "m2", "providerID": "p2"})),
            message(json!({"id": "4", "role": "assistant"})),
        ];
        assert_eq!(
            last_model(ms.iter()),
            Some(("m2".into(), Some("p2".into())))
        );
        assert_eq!(last_model(ms[..1].iter()), None);
    }

    #[test]
    fn totals_are_summed_only_when_the_session_has_none() {
        let ms = vec![
            message(
                json!({"id": "1", "role": "assistant", "cost": 0.5, "tokens": {"input": 10, "output": 2, "reasoning": 1, "cache": {"read": 3, "write": 4}}}),
            ),
            message(json!({"id": "2", "role": "user", "cost": 9.0, "tokens": {"input": 99}})),
            message(
                json!({"id": "3", "role": "assistant", "cost": 0.25, "tokens": {"input": 5, "output": 1}}),
            ),
        ];
        let mut old: SessionInfo =
            serde_json::from_value(json!({"id": "s", "time": {"created": 1}})).unwrap();
        fill_missing_totals(&mut old, &ms);
        let t = old.tokens.unwrap();
        assert_eq!(
            (t.input, t.output, t.reasoning, t.cache.read, t.cache.write),
            (15.0, 3.0, 1.0, 3.0, 4.0)
        );
        assert_eq!(old.cost, Some(0.75));

        let mut new: SessionInfo =
            serde_json::from_value(json!({"id": "s", "cost": 0.1, "tokens": {"input": 1}}))
                .unwrap();
        fill_missing_totals(&mut new, &ms);
        assert_eq!(new.cost, Some(0.1));
        assert_eq!(new.tokens.unwrap().input, 1.0);

        let mut empty: SessionInfo = serde_json::from_value(json!({"id": "s"})).unwrap();
        fill_missing_totals(&mut empty, []);
        assert_eq!((empty.tokens, empty.cost), (None, None));
    }

    #[test]
    fn filters() {
        let s = SessionSummary {
            id: "ses_1".into(),
            directory: Some("/home/dev/app/sub".into()),
            time_updated: 1000.0,
            ..Default::default()
        };
        assert!(SessionFilter::default().matches(&s));
        let f = |since: Option<f64>, projects: &[&str], ids: &[&str]| SessionFilter {
            since_ms: since,
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            ids: ids.iter().map(|i| (*i).to_owned()).collect(),
        };
        assert!(f(Some(1000.0), &[], &[]).matches(&s));
        assert!(!f(Some(1001.0), &[], &[]).matches(&s));
        assert!(f(None, &["/home/dev/app"], &[]).matches(&s));
        assert!(f(None, &["/home/dev/app/"], &[]).matches(&s));
        assert!(f(None, &["/elsewhere", "/home/dev/app/sub"], &[]).matches(&s));
        assert!(!f(None, &["/home/dev/ap"], &[]).matches(&s));
        assert!(f(None, &[], &["ses_2", "ses_1"]).matches(&s));
        assert!(!f(None, &[], &["ses_2"]).matches(&s));
        let nowhere = SessionSummary {
            directory: None,
            ..s.clone()
        };
        assert!(!f(None, &["/"], &[]).matches(&nowhere));
    }

    #[test]
    fn path_containment() {
        assert!(path_within("/a/b", "/a/b"));
        assert!(path_within("/a/b/c", "/a/b"));
        assert!(!path_within("/a/bc", "/a/b"));
        assert!(path_within("/a", "/"));
        assert!(path_within("C:\\src\\app\\x", "C:\\src\\app"));
    }

    #[test]
    fn a_wrong_typed_field_costs_that_field_only() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let (session, left_out) = decode_leaving_out::<SessionInfo>(obj(json!({
            "id": "ses_1", "title": "kept", "cost": "0.5",
            "time": {"created": "yesterday", "updated": 20},
            "tokens": {"input": 3, "output": null},
        })))
        .unwrap();
        assert_eq!(session.id, "ses_1");
        assert_eq!(session.title.as_deref(), Some("kept"));
        assert_eq!(session.cost, None);
        assert_eq!(
            (session.time.created, session.time.updated),
            (0.0, Some(20.0))
        );
        assert_eq!(session.tokens.unwrap().input, 3.0);
        assert_eq!(left_out, ["cost", "time.created", "tokens.output"]);
        // Nothing wrong: nothing left out.
        let (m, left_out) =
            decode_leaving_out::<MessageInfo>(obj(json!({"id": "m", "role": "user"}))).unwrap();
        assert!(left_out.is_empty() && is_message(&m));
        // JSON of another shape is no message.
        let (m, left_out) =
            decode_leaving_out::<MessageInfo>(obj(json!({"id": "m", "role": 5}))).unwrap();
        assert_eq!(left_out, ["role"]);
        assert!(!is_message(&m));
    }

    #[test]
    fn row_notes_read_as_one_line_and_are_bounded() {
        let n = RowNote::skipped(
            "message",
            Some("msg_1"),
            Some("ses_1"),
            "data is not JSON".into(),
        );
        assert_eq!(n.line(), "ses_1: message msg_1: skipped: data is not JSON");
        let n = RowNote::partly_read(
            "session",
            Some("ses_1"),
            Some("ses_1"),
            "cost is text".into(),
        );
        assert_eq!(n.line(), "ses_1: session: cost is text");
        let n = RowNote::skipped("message", None, None, "no id".into());
        assert_eq!(n.line(), "message without an id: skipped: no id");
        let mut notes = Vec::new();
        let mut over = 0;
        for _ in 0..MAX_NOTES + 3 {
            push_note(&mut notes, &mut over, n.clone());
        }
        assert_eq!((notes.len(), over), (MAX_NOTES, 3));
        assert!(
            notes_left_off(over, None)
                .unwrap()
                .line()
                .contains("3 more")
        );
        assert!(notes_left_off(0, None).is_none());
    }
}
