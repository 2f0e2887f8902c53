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
//! Every sender holds a queued upsert as a [`Record`]: serialized once, written as the
//! record text, read back without parsing the payload. What happens to a record after
//! the server answered is the delivery machine's to decide ([`crate::delivery`]).
//!
//! The parts, in the order a record lives through them:
//! - `record`: what is in a record file ([`Record`], [`History`]), encoded and decoded;
//! - `names`: what is in a file name ([`file_name`], [`parse_entry`], writer tags,
//!   spare names, claims);
//! - `plan`: which records go out in what order ([`plan`]), and which writers still
//!   run ([`Liveness`]).

mod names;
mod plan;
mod record;

pub use names::{
    Entry, RecordName, claim_name, draft_file_name, file_name, parse_entry, spare_name,
    spare_writer, writer_pid, writer_tag,
};
pub use plan::{AssumeAlive, Liveness, PidLiveness, Plan, plan};
pub use record::{History, Kind, OutboxError, Record};

/// Directory name under the state directory.
pub const DIR: &str = crate::paths::OUTBOX_DIR_NAME;
/// Where records the server refused are kept, with the reason, for `status` to show.
pub const QUARANTINE_DIR: &str = "quarantine";
/// A claim this old belongs to a process that died mid-send.
pub const STALE_CLAIM_MS: i64 = 120_000;
/// A draft this old is sent even when its writer seems alive (a reused pid, say): the
/// complete message, if it ever comes, supersedes it on the server.
pub const STALE_DRAFT_MS: i64 = 30 * 60_000;
/// Records beyond this are still written, with a warning: never dropped silently.
pub const SOFT_LIMIT_RECORDS: usize = 50_000;

#[cfg(test)]
mod tests;
