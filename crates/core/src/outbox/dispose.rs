//! What happens to a record after an attempt, from the server's answer: deleted,
//! retried later, quarantined, or sending paused.

use super::record::Record;
use crate::api::Outcome;
use crate::retry::RetryPolicy;

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
