//! What is in a file name in the outbox directory: the queue order, the writer, the
//! session and key of a record, whether it is a draft or claimed, and the names of
//! spare files.

use crate::engine::Upsert;

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

pub(super) fn name_of(
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
