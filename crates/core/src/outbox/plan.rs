//! Which records go out in what order, from a directory listing alone: superseded
//! records, held sessions, stale claims and drafts, decided by age and by whether
//! their writer still runs.

use super::names::{Entry, RecordName, parse_entry, writer_pid};
use super::{STALE_CLAIM_MS, STALE_DRAFT_MS};

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
    // Records and drafts in queue order: a record's name sorts in the order it was
    // queued, and is unique, so sorting the names sorts the records (one sort, of
    // strings, which the plugin's wasm has anyway).
    let mut in_order = file_names.to_vec();
    in_order.sort_unstable();
    for file in &in_order {
        match parse_entry(file) {
            Entry::Queued(name) if name.draft => drafts.push(name),
            Entry::Queued(name) => {
                final_keys.insert(name.key.clone());
                queued.push(name);
            }
            _ => {}
        }
    }
    for file in file_names {
        match parse_entry(file) {
            Entry::Queued(_) => {}
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
    let mut sent_drafts = Vec::new();
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
            sent_drafts.push(name);
        } else {
            plan.drafts_held += 1;
            plan.total += 1;
        }
    }
    let queued = merge_in_order(queued, sent_drafts);
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
    // At each place: the session records that take it, then the record that was there.
    let mut places: Vec<(Vec<RecordName>, Option<RecordName>)> =
        live.iter().map(|_| (Vec::new(), None)).collect();
    for (i, name) in live.into_iter().enumerate() {
        if name.key.starts_with("session:") {
            let at = first_of_session.get(&name.session_id).copied().unwrap_or(i);
            places[at].0.push(name);
        } else {
            places[i].1 = Some(name);
        }
    }
    let mut blocked = busy_sessions;
    for name in places
        .into_iter()
        .flat_map(|(sessions, record)| sessions.into_iter().chain(record))
    {
        if !blocked.contains(&name.session_id) {
            // Only the oldest record of each session goes in one pass.
            blocked.insert(name.session_id.clone());
            plan.sendable.push(name.clone());
        }
        plan.queued.push(name);
    }
    plan
}

/// Two lists of records in queue order, merged into one.
fn merge_in_order(a: Vec<RecordName>, b: Vec<RecordName>) -> Vec<RecordName> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut b = b.into_iter().peekable();
    for name in a {
        while let Some(earlier) = b.next_if(|other| other.file < name.file) {
            out.push(earlier);
        }
        out.push(name);
    }
    out.extend(b);
    out
}
