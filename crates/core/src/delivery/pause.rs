//! The one pause policy every sender follows, the plugin's, `sync --flush`'s and the
//! backfill's: a failed attempt pauses every sender of the process (they all talk to
//! the same server), with exponential backoff and full jitter, at least as long as the
//! server's `Retry-After`. Failures of requests that were under way when the pause
//! started count once, not once each, but a longer `Retry-After` among them still
//! extends it. What the server asked for is kept apart: it outlives the process (written
//! into the records that wait), where the process's own backoff does not.

use crate::retry::RetryPolicy;

/// The shared pause (times in ms since the epoch).
#[derive(Debug, Clone)]
pub struct Pause {
    policy: RetryPolicy,
    /// Consecutive failed attempts, whichever sender made them: the backoff exponent.
    attempt: u32,
    /// No request starts before this time.
    until: i64,
    /// The part of it the server asked for (`Retry-After`).
    server_until: i64,
}

impl Pause {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            attempt: 0,
            until: 0,
            server_until: 0,
        }
    }

    /// A failed attempt at `now`; `after_ms` is the server's `Retry-After`, if any, and
    /// `unit_random` uniform in `[0, 1)`. Returns whether it counted as a new failure
    /// (not one of the requests that were under way when the pause began).
    pub fn failed(&mut self, now: i64, after_ms: Option<u64>, unit_random: f64) -> bool {
        let counted = self.until <= now;
        if counted {
            self.attempt = self.attempt.saturating_add(1);
        }
        let delay = self.policy.delay_ms(self.attempt, after_ms, unit_random);
        self.until = self.until.max(now.saturating_add(ms(delay)));
        if let Some(asked) = after_ms {
            self.server_until = self.server_until.max(now.saturating_add(ms(asked)));
        }
        counted
    }

    /// A delivered request: the next failure starts the backoff from the beginning.
    pub fn succeeded(&mut self) {
        self.attempt = 0;
    }

    /// Holds every sender until at least `until` (the longest backoff after a redirect).
    pub fn hold(&mut self, until: i64) {
        self.until = self.until.max(until);
    }

    /// A wait the server asked for earlier (read back from records): honoured as such.
    pub fn honour_server_wait(&mut self, until: i64) {
        self.until = self.until.max(until);
        self.server_until = self.server_until.max(until);
    }

    /// New credentials: no pause.
    pub fn clear(&mut self) {
        *self = Self::new(self.policy);
    }

    /// No request starts before this.
    pub fn until(&self) -> i64 {
        self.until
    }

    /// Whether a request may start at `now`.
    pub fn open(&self, now: i64) -> bool {
        now >= self.until
    }

    /// The wait the server asked for, if it still runs at `now`.
    pub fn server_wait(&self, now: i64) -> Option<i64> {
        (self.server_until > now).then_some(self.server_until)
    }

    /// Consecutive counted failures.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The longest backoff of the policy, in ms.
    pub fn cap_ms(&self) -> u64 {
        self.policy.cap_ms
    }
}

fn ms(delay: u64) -> i64 {
    delay.min(i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_under_way_count_once_and_a_longer_retry_after_still_extends() {
        let mut p = Pause::new(RetryPolicy::default());
        assert!(p.failed(1_000, None, 0.5));
        let first = p.until();
        assert!(first > 1_000 && !p.open(1_000));
        assert!(
            !p.failed(1_001, Some(20_000), 0.5),
            "under way when it began"
        );
        assert_eq!(p.until(), 21_001);
        assert_eq!(p.attempt(), 1);
        assert_eq!(p.server_wait(1_002), Some(21_001));
        assert!(
            p.failed(30_000, None, 0.5),
            "after the pause: a new failure"
        );
        assert_eq!(p.attempt(), 2);
        assert_eq!(p.server_wait(30_000), None);
        p.succeeded();
        assert_eq!(p.attempt(), 0);
    }
}
