//! The OpenSync upsert rules: what a session, message or batch does to the
//! stored rows. This is the contract of `opensync-api.md`, taken at its
//! strictest where deployed versions differ:
//!
//! - sessions: an omitted field keeps its value, a token count of 0 never
//!   overwrites, `totalTokens = prompt + completion`, `createdAt` only on insert,
//!   and an update within 10 s of the last one is skipped when title, model and
//!   project path are unchanged (strict equality, so omitted equals "not stored")
//!   and tokens are 0 or unchanged — a cost-only change in that window is lost;
//! - messages: keyed by `externalId` across all users; if it exists and
//!   `now - createdAt < 5 s` the update is dropped; a re-send replaces the parts
//!   (all deleted, then the sent ones inserted in order; omitted parts leave
//!   none) and patches text/model/tokens/duration; only a new message bumps the
//!   session's `messageCount`; session tokens are never summed from messages;
//!   a message for an unknown session creates a bare one;
//! - the git branch (`gitBranch`, which this server keeps and OpenSync's
//!   backend drops) is stored on insert and on every later upsert that sends
//!   one, even one the dedup window skips, so a branch switch is never lost
//!   while the Convex-shaped fields keep the real rules exactly;
//! - batches: no `createdAt` anywhere (arrival time is stored); sessions use the
//!   older, looser batch dedup (title, model, prompt tokens); a message re-sent
//!   through the batch loses its parts (the real batch mutation deletes them and
//!   inserts nothing on update).

use serde_json::{Map, Value};

use crate::convex::{ConvexError, MAX_VALUE_BYTES, human_bytes};
use crate::store::{self, MessageRow, SessionRow};

/// Updates to a session within this long of the last one may be skipped.
pub(crate) const SESSION_DEDUP_MS: f64 = 10_000.0;
/// A message whose stored `createdAt` is younger than this is not updated.
pub(crate) const MESSAGE_DEDUP_MS: f64 = 5_000.0;
/// The longest `gitBranch` kept, in bytes (a longer one is ignored).
pub(crate) const GIT_BRANCH_MAX_BYTES: usize = 1024;
/// Length cap of a session's search text.
const SEARCHABLE_MAX_CHARS: usize = 10_000;

/// Why a mutation failed.
#[derive(Debug)]
pub(crate) enum MutationError {
    /// The platform refused it (a limit); the message is what the route reports.
    Convex(ConvexError),
    /// The store failed.
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for MutationError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

impl MutationError {
    /// The text the route puts in `{"error": ...}` (or in a batch's `errors`).
    pub(crate) fn message(&self, function: &str) -> String {
        match self {
            Self::Convex(e) => e.0.clone(),
            Self::Db(e) => {
                ConvexError::in_function(function, &format!("Uncaught Error: storage failed: {e}"))
                    .0
            }
        }
    }
}

fn get_str(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn get_num(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

/// Arguments of a session upsert (already validated).
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInput {
    pub(crate) external_id: String,
    pub(crate) title: Option<String>,
    pub(crate) project_path: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) prompt_tokens: Option<f64>,
    pub(crate) completion_tokens: Option<f64>,
    pub(crate) cost: Option<f64>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) created_at: Option<f64>,
    /// `gitBranch` of a `/sync/session` body (outside the Convex validator,
    /// which does not know it); never set from a batch.
    pub(crate) git_branch: Option<String>,
}

impl SessionInput {
    /// Reads a validated argument object (`SESSION_UPSERT` or `SESSION_BATCH_ITEM`).
    pub(crate) fn from_args(obj: &Map<String, Value>) -> Self {
        Self {
            external_id: get_str(obj, "externalId").unwrap_or_default(),
            title: get_str(obj, "title"),
            project_path: get_str(obj, "projectPath"),
            project_name: get_str(obj, "projectName"),
            model: get_str(obj, "model"),
            provider: get_str(obj, "provider"),
            source: get_str(obj, "source"),
            prompt_tokens: get_num(obj, "promptTokens"),
            completion_tokens: get_num(obj, "completionTokens"),
            cost: get_num(obj, "cost"),
            duration_ms: get_num(obj, "durationMs"),
            created_at: get_num(obj, "createdAt"),
            git_branch: None,
        }
    }
}

/// Arguments of a message upsert (already validated).
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageInput {
    pub(crate) session_external_id: String,
    pub(crate) external_id: String,
    pub(crate) role: String,
    pub(crate) text_content: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) prompt_tokens: Option<f64>,
    pub(crate) completion_tokens: Option<f64>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) source: Option<String>,
    pub(crate) created_at: Option<f64>,
    pub(crate) parts: Option<Vec<(String, Value)>>,
}

impl MessageInput {
    /// Reads a validated argument object (`MESSAGE_UPSERT` or `MESSAGE_BATCH_ITEM`).
    pub(crate) fn from_args(obj: &Map<String, Value>) -> Self {
        let parts = obj.get("parts").and_then(Value::as_array).map(|items| {
            items
                .iter()
                .map(|p| {
                    (
                        p.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        p.get("content").cloned().unwrap_or(Value::Null),
                    )
                })
                .collect()
        });
        Self {
            session_external_id: get_str(obj, "sessionExternalId").unwrap_or_default(),
            external_id: get_str(obj, "externalId").unwrap_or_default(),
            role: get_str(obj, "role").unwrap_or_default(),
            text_content: get_str(obj, "textContent"),
            model: get_str(obj, "model"),
            prompt_tokens: get_num(obj, "promptTokens"),
            completion_tokens: get_num(obj, "completionTokens"),
            duration_ms: get_num(obj, "durationMs"),
            source: get_str(obj, "source"),
            created_at: get_num(obj, "createdAt"),
            parts,
        }
    }
}

/// `args.source || "opencode"`, with the backend's one rename.
fn insert_source(source: Option<&str>) -> String {
    match source {
        Some("cursor") => "cursor-sync".to_owned(),
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "opencode".to_owned(),
    }
}

/// JavaScript's `a || b` for numbers.
fn or_num(a: f64, b: f64) -> f64 {
    if a == 0.0 { b } else { a }
}

fn new_session_row(user_id: i64, input: &SessionInput, created_at: f64, now: f64) -> SessionRow {
    let prompt = input.prompt_tokens.unwrap_or(0.0);
    let completion = input.completion_tokens.unwrap_or(0.0);
    SessionRow {
        id: 0,
        user_id,
        external_id: input.external_id.clone(),
        title: input.title.clone(),
        project_path: input.project_path.clone(),
        project_name: input.project_name.clone(),
        model: input.model.clone(),
        provider: input.provider.clone(),
        source: Some(insert_source(input.source.as_deref())),
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cost: input.cost.unwrap_or(0.0),
        duration_ms: input.duration_ms,
        searchable_text: input.title.clone(),
        message_count: 0,
        created_at,
        updated_at: now,
        git_branch: input.git_branch.clone(),
    }
}

/// `sessions:upsert` (the `/sync/session` route). Returns the session's row id.
pub(crate) fn upsert_session(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    input: &SessionInput,
    now: f64,
) -> Result<i64, MutationError> {
    let prompt = input.prompt_tokens.unwrap_or(0.0);
    let completion = input.completion_tokens.unwrap_or(0.0);
    let Some(existing) = store::find_session(tx, user_id, &input.external_id)? else {
        let row = new_session_row(user_id, input, input.created_at.unwrap_or(now), now);
        return Ok(store::insert_session(tx, &row)?);
    };

    let unchanged = input.title == existing.title
        && input.model == existing.model
        && input.project_path == existing.project_path
        && (prompt == 0.0 || prompt == existing.prompt_tokens)
        && (completion == 0.0 || completion == existing.completion_tokens);
    if unchanged && now - existing.updated_at < SESSION_DEDUP_MS {
        if input.git_branch.is_some() && input.git_branch != existing.git_branch {
            store::set_git_branch(tx, existing.id, input.git_branch.as_deref())?;
        }
        return Ok(existing.id);
    }

    let mut row = existing.clone();
    row.updated_at = now;
    if input.git_branch.is_some() {
        row.git_branch.clone_from(&input.git_branch);
    }
    if let Some(title) = &input.title
        && existing.title.as_ref() != Some(title)
    {
        row.title = Some(title.clone());
        row.searchable_text = Some(title.clone());
    }
    if input.project_path.is_some() {
        row.project_path.clone_from(&input.project_path);
    }
    if input.project_name.is_some() {
        row.project_name.clone_from(&input.project_name);
    }
    if input.model.is_some() {
        row.model.clone_from(&input.model);
    }
    if input.provider.is_some() {
        row.provider.clone_from(&input.provider);
    }
    if input.source.is_some() {
        row.source.clone_from(&input.source);
    }
    if prompt > 0.0 {
        row.prompt_tokens = prompt;
    }
    if completion > 0.0 {
        row.completion_tokens = completion;
    }
    if prompt > 0.0 || completion > 0.0 {
        row.total_tokens =
            or_num(prompt, existing.prompt_tokens) + or_num(completion, existing.completion_tokens);
    }
    if let Some(cost) = input.cost {
        row.cost = cost;
    }
    if input.duration_ms.is_some() {
        row.duration_ms = input.duration_ms;
    }
    store::update_session(tx, &row)?;
    Ok(existing.id)
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchCounts {
    pub(crate) inserted: usize,
    pub(crate) updated: usize,
    pub(crate) skipped: usize,
}

/// `sessions:batchUpsert`: one transaction for all sessions.
pub(crate) fn batch_sessions(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    inputs: &[SessionInput],
    now: f64,
) -> Result<BatchCounts, MutationError> {
    let mut counts = BatchCounts::default();
    for input in inputs {
        let prompt = input.prompt_tokens.unwrap_or(0.0);
        let completion = input.completion_tokens.unwrap_or(0.0);
        let Some(existing) = store::find_session(tx, user_id, &input.external_id)? else {
            store::insert_session(tx, &new_session_row(user_id, input, now, now))?;
            counts.inserted += 1;
            continue;
        };
        let unchanged = input.title == existing.title
            && input.model == existing.model
            && (prompt == 0.0 || prompt == existing.prompt_tokens);
        if unchanged && now - existing.updated_at < SESSION_DEDUP_MS {
            counts.skipped += 1;
            continue;
        }
        let mut row = existing.clone();
        row.updated_at = now;
        if input.title.is_some() {
            row.title.clone_from(&input.title);
        }
        if input.project_path.is_some() {
            row.project_path.clone_from(&input.project_path);
        }
        if input.project_name.is_some() {
            row.project_name.clone_from(&input.project_name);
        }
        if input.model.is_some() {
            row.model.clone_from(&input.model);
        }
        if input.provider.is_some() {
            row.provider.clone_from(&input.provider);
        }
        if input.source.is_some() {
            row.source.clone_from(&input.source);
        }
        if prompt > 0.0 {
            row.prompt_tokens = prompt;
            row.total_tokens = prompt + or_num(completion, existing.completion_tokens);
        }
        if completion > 0.0 {
            row.completion_tokens = completion;
            row.total_tokens = or_num(prompt, existing.prompt_tokens) + completion;
        }
        if let Some(cost) = input.cost {
            row.cost = cost;
        }
        if input.duration_ms.is_some() {
            row.duration_ms = input.duration_ms;
        }
        store::update_session(tx, &row)?;
        counts.updated += 1;
    }
    Ok(counts)
}

/// The text a part contributes to search: `text` parts only, content as a
/// string or `{text}` / `{content}`.
pub(crate) fn part_search_text(parts: &[(String, Value)]) -> String {
    let pieces: Vec<String> = parts
        .iter()
        .filter(|(kind, _)| kind == "text")
        .filter_map(|(_, content)| {
            let v = match content {
                Value::String(s) => Some(Value::String(s.clone())),
                Value::Object(o) => o
                    .get("text")
                    .filter(|v| js_truthy(v))
                    .or_else(|| o.get("content").filter(|v| js_truthy(v)))
                    .cloned(),
                _ => None,
            }?;
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (!s.is_empty()).then_some(s)
        })
        .collect();
    pieces.join(" ")
}

fn append_search(current: Option<&str>, text: &str) -> String {
    let joined = format!("{} {text}", current.unwrap_or_default());
    joined.chars().take(SEARCHABLE_MAX_CHARS).collect()
}

/// JavaScript truthiness of a JSON value.
pub(crate) fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Refuses a message whose document plus parts would not fit a Convex document.
fn check_message_size(
    function: &str,
    row: &MessageRow,
    parts: &[(String, Value)],
) -> Result<(), MutationError> {
    // The message document as stored, plus each part document.
    let doc = serde_json::json!({
        "sessionId": store::doc_id(store::Table::Sessions, row.session_id),
        "externalId": row.external_id,
        "role": row.role,
        "textContent": row.text_content,
        "model": row.model,
        "promptTokens": row.prompt_tokens,
        "completionTokens": row.completion_tokens,
        "durationMs": row.duration_ms,
        "createdAt": row.created_at,
    });
    let mut size = doc.to_string().len();
    for (kind, content) in parts {
        // messageId (32) + order + field names: a fixed overhead per part.
        size += 64 + kind.len() + content.to_string().len();
    }
    if size > MAX_VALUE_BYTES {
        return Err(MutationError::Convex(ConvexError::in_function(
            function,
            &format!(
                "Uncaught Error: Value is too large ({} > maximum size 1 MiB): message text plus parts",
                human_bytes(size)
            ),
        )));
    }
    Ok(())
}

/// `messages:upsert` (the `/sync/message` route). Returns the message's row id.
pub(crate) fn upsert_message(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    input: &MessageInput,
    now: f64,
) -> Result<i64, MutationError> {
    const FUNCTION: &str = "messages:upsert";
    let existing = store::find_message(tx, &input.external_id)?;
    if let Some(existing) = &existing
        && now - existing.created_at < MESSAGE_DEDUP_MS
    {
        return Ok(existing.id);
    }

    let mut session = match store::find_session(tx, user_id, &input.session_external_id)? {
        Some(s) => s,
        None => {
            let row = bare_session(user_id, &input.session_external_id, input, now);
            let id = store::insert_session(tx, &row)?;
            SessionRow { id, ..row }
        }
    };

    let parts = input.parts.clone().unwrap_or_default();
    let (message_id, is_new) = match existing {
        Some(existing) => {
            let row = MessageRow {
                text_content: input.text_content.clone().or(existing.text_content.clone()),
                model: input.model.clone().or(existing.model.clone()),
                prompt_tokens: input.prompt_tokens.or(existing.prompt_tokens),
                completion_tokens: input.completion_tokens.or(existing.completion_tokens),
                duration_ms: input.duration_ms.or(existing.duration_ms),
                ..existing
            };
            check_message_size(FUNCTION, &row, &parts)?;
            store::update_message(tx, &row)?;
            store::delete_parts(tx, row.id)?;
            (row.id, false)
        }
        None => {
            let row = MessageRow {
                id: 0,
                session_id: session.id,
                external_id: input.external_id.clone(),
                role: input.role.clone(),
                text_content: input.text_content.clone(),
                model: input.model.clone(),
                prompt_tokens: input.prompt_tokens,
                completion_tokens: input.completion_tokens,
                duration_ms: input.duration_ms,
                created_at: input.created_at.unwrap_or(now),
            };
            check_message_size(FUNCTION, &row, &parts)?;
            (store::insert_message(tx, &row)?, true)
        }
    };
    store::insert_parts(tx, message_id, &parts)?;

    let text = part_search_text(&parts);
    if is_new || !text.is_empty() {
        session.updated_at = now;
        if is_new {
            session.message_count += 1;
        }
        if !text.is_empty() {
            session.searchable_text =
                Some(append_search(session.searchable_text.as_deref(), &text));
        }
        store::update_session(tx, &session)?;
    }
    Ok(message_id)
}

/// The session a message for an unknown session creates: no title, tokens 0.
fn bare_session(user_id: i64, external_id: &str, first: &MessageInput, now: f64) -> SessionRow {
    SessionRow {
        id: 0,
        user_id,
        external_id: external_id.to_owned(),
        title: None,
        project_path: None,
        project_name: None,
        model: first.model.clone(),
        provider: None,
        source: Some(insert_source(first.source.as_deref())),
        prompt_tokens: 0.0,
        completion_tokens: 0.0,
        total_tokens: 0.0,
        cost: 0.0,
        duration_ms: None,
        searchable_text: None,
        message_count: 0,
        created_at: now,
        updated_at: now,
        git_branch: None,
    }
}

/// What `messages:batchUpsert` did: counts plus per-message errors.
#[derive(Debug, Default)]
pub(crate) struct MessageBatchResult {
    pub(crate) counts: BatchCounts,
    pub(crate) errors: Vec<String>,
}

/// `messages:batchUpsert`: grouped by session (first appearance order), one
/// transaction; a message that fails is reported and the rest go on.
pub(crate) fn batch_messages(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    inputs: &[MessageInput],
    now: f64,
) -> Result<MessageBatchResult, MutationError> {
    const FUNCTION: &str = "messages:batchUpsert";
    let mut groups: Vec<(&str, Vec<&MessageInput>)> = Vec::new();
    for input in inputs {
        match groups
            .iter_mut()
            .find(|(sid, _)| *sid == input.session_external_id)
        {
            Some((_, group)) => group.push(input),
            None => groups.push((&input.session_external_id, vec![input])),
        }
    }

    let mut result = MessageBatchResult::default();
    for (session_external_id, group) in groups {
        let mut session = match store::find_session(tx, user_id, session_external_id)? {
            Some(s) => s,
            None => {
                let Some(first) = group.first() else { continue };
                let row = bare_session(user_id, session_external_id, first, now);
                let id = store::insert_session(tx, &row)?;
                SessionRow { id, ..row }
            }
        };
        let mut new_messages = 0;
        let mut texts = Vec::new();
        for input in group {
            let existing = store::find_message(tx, &input.external_id)?;
            if let Some(existing) = existing {
                if now - existing.created_at < MESSAGE_DEDUP_MS {
                    result.counts.skipped += 1;
                    continue;
                }
                let row = MessageRow {
                    text_content: input.text_content.clone().or(existing.text_content.clone()),
                    model: input.model.clone().or(existing.model.clone()),
                    prompt_tokens: input.prompt_tokens.or(existing.prompt_tokens),
                    completion_tokens: input.completion_tokens.or(existing.completion_tokens),
                    duration_ms: input.duration_ms.or(existing.duration_ms),
                    ..existing
                };
                if let Err(e) = check_message_size(FUNCTION, &row, &[]) {
                    result
                        .errors
                        .push(format!("{}: {}", input.external_id, e.message(FUNCTION)));
                    continue;
                }
                store::update_message(tx, &row)?;
                // The real batch mutation deletes the parts of an updated message
                // and inserts none: parts sent again through the batch are lost.
                store::delete_parts(tx, row.id)?;
                result.counts.updated += 1;
                continue;
            }
            let parts = input.parts.clone().unwrap_or_default();
            let row = MessageRow {
                id: 0,
                session_id: session.id,
                external_id: input.external_id.clone(),
                role: input.role.clone(),
                text_content: input.text_content.clone(),
                model: input.model.clone(),
                prompt_tokens: input.prompt_tokens,
                completion_tokens: input.completion_tokens,
                duration_ms: input.duration_ms,
                created_at: now,
            };
            if let Err(e) = check_message_size(FUNCTION, &row, &parts) {
                result
                    .errors
                    .push(format!("{}: {}", input.external_id, e.message(FUNCTION)));
                continue;
            }
            let id = store::insert_message(tx, &row)?;
            store::insert_parts(tx, id, &parts)?;
            result.counts.inserted += 1;
            new_messages += 1;
            let text = part_search_text(&parts);
            if !text.is_empty() {
                texts.push(text);
            }
        }
        if new_messages > 0 || !texts.is_empty() {
            session.message_count += new_messages;
            if !texts.is_empty() {
                session.searchable_text = Some(append_search(
                    session.searchable_text.as_deref(),
                    &texts.join(" "),
                ));
            }
            session.updated_at = now;
            store::update_session(tx, &session)?;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use serde_json::json;

    fn setup() -> (Store, i64) {
        let store = Store::open(None).unwrap();
        let user = {
            let conn = store.lock();
            store::add_key(&conn, "osk_t", 0.0).unwrap();
            store::user_for_key(&conn, "osk_t").unwrap().unwrap()
        };
        (store, user)
    }

    fn session(store: &Store, user: i64, external_id: &str) -> SessionRow {
        let mut conn = store.lock();
        let tx = conn.transaction().unwrap();
        store::find_session(&tx, user, external_id)
            .unwrap()
            .unwrap()
    }

    fn with_tx<T>(store: &Store, f: impl FnOnce(&rusqlite::Transaction<'_>) -> T) -> T {
        let mut conn = store.lock();
        let tx = conn.transaction().unwrap();
        let out = f(&tx);
        tx.commit().unwrap();
        out
    }

    #[test]
    fn session_tokens_zero_never_overwrite_and_total_is_sum() {
        let (store, user) = setup();
        let first = SessionInput {
            external_id: "s".into(),
            prompt_tokens: Some(100.0),
            completion_tokens: Some(20.0),
            ..Default::default()
        };
        with_tx(&store, |tx| {
            upsert_session(tx, user, &first, 1_000.0).unwrap()
        });
        let zero = SessionInput {
            external_id: "s".into(),
            title: Some("t".into()),
            prompt_tokens: Some(0.0),
            completion_tokens: Some(30.0),
            ..Default::default()
        };
        with_tx(&store, |tx| {
            upsert_session(tx, user, &zero, 2_000.0).unwrap()
        });
        let s = session(&store, user, "s");
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens, s.total_tokens),
            (100.0, 30.0, 130.0)
        );
    }

    #[test]
    fn session_dedup_drops_cost_only_change_inside_window() {
        let (store, user) = setup();
        let input = SessionInput {
            external_id: "s".into(),
            title: Some("t".into()),
            ..Default::default()
        };
        with_tx(&store, |tx| upsert_session(tx, user, &input, 0.0).unwrap());
        let cost = SessionInput {
            cost: Some(1.5),
            ..input.clone()
        };
        with_tx(&store, |tx| {
            upsert_session(tx, user, &cost, 9_999.0).unwrap()
        });
        assert_eq!(session(&store, user, "s").cost, 0.0);
        with_tx(&store, |tx| {
            upsert_session(tx, user, &cost, 10_000.0).unwrap()
        });
        assert_eq!(session(&store, user, "s").cost, 1.5);
    }

    #[test]
    fn omitted_title_counts_as_a_change() {
        let (store, user) = setup();
        let input = SessionInput {
            external_id: "s".into(),
            title: Some("t".into()),
            ..Default::default()
        };
        with_tx(&store, |tx| upsert_session(tx, user, &input, 0.0).unwrap());
        let cost_only = SessionInput {
            external_id: "s".into(),
            cost: Some(2.0),
            ..Default::default()
        };
        with_tx(&store, |tx| {
            upsert_session(tx, user, &cost_only, 1.0).unwrap()
        });
        let s = session(&store, user, "s");
        assert_eq!(s.cost, 2.0);
        assert_eq!(s.title.as_deref(), Some("t"));
    }

    #[test]
    fn search_text_from_text_parts() {
        let parts = vec![
            ("text".to_owned(), json!("hello")),
            ("tool-call".to_owned(), json!({"name": "x"})),
            ("text".to_owned(), json!({"text": "world"})),
            ("text".to_owned(), json!("")),
        ];
        assert_eq!(part_search_text(&parts), "hello world");
    }

    #[test]
    fn batch_update_loses_parts() {
        let (store, user) = setup();
        let msg = MessageInput {
            session_external_id: "s".into(),
            external_id: "m".into(),
            role: "user".into(),
            parts: Some(vec![("text".into(), json!("a"))]),
            ..Default::default()
        };
        with_tx(&store, |tx| {
            batch_messages(tx, user, std::slice::from_ref(&msg), 0.0).unwrap()
        });
        let r = with_tx(&store, |tx| {
            batch_messages(tx, user, &[msg], 6_000.0).unwrap()
        });
        assert_eq!(r.counts.updated, 1);
        let conn = store.lock();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM parts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
